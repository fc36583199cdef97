//! What the candidate parser makes of replies that real models send when no JSON schema is
//! enforced: each shape is read into candidates with their raw and normalised
//! probabilities, and every repair is named, so nothing is silently guessed.
//!
//!     cargo run --example parse_replies

use vsim::vs::parse_candidates;

fn main() {
    let replies = [
        r#"{"responses": [{"text": "Sure, $1.", "probability": 0.6}, {"text": "No, thanks.", "probability": 0.4}]}"#,
        "<response><text>I'll give a dollar.</text><probability>0.7</probability></response>\n<response><text>Maybe later.</text><probability>0.3</probability></response>",
        "| # | response | probability |\n|---|---|---|\n| 1 | Happy to help | 60% |\n| 2 | Not today | 40% |",
        "Here are my responses:\n1. I'd donate half (probability: 0.5)\n2. I'll pass (probability: 0.3)\n3. All of it! (probability: 0.2)",
        r#"{"result": {"responses": [{"response": "Count me in", "confidence": 0.8}, {"response": "I'm not sure", "confidence": 0.2}]}}"#,
    ];
    for raw in replies {
        println!("--- {}", raw.lines().next().unwrap_or_default());
        match parse_candidates(raw, None) {
            Ok(parsed) => {
                for c in &parsed.candidates {
                    let kinds: Vec<String> = c
                        .repairs
                        .iter()
                        .filter_map(|r| {
                            serde_json::to_value(r).ok()?.get("kind")?.as_str().map(str::to_string)
                        })
                        .collect();
                    println!(
                        "  {:.2} (stated {:?})  {}  [{}]",
                        c.probability,
                        c.raw_probability,
                        c.text,
                        kinds.join(", ")
                    );
                }
            }
            Err(e) => println!("  not parsed: {e}"),
        }
    }
}
