//! The money reader against phrasings of a donation out of a $2 payment (each row a text and
//! the donation it states within [0, 2], or `None`), its declaration in scenario files, and
//! how `vsim eval` counts a value refused as out of range.

use std::path::Path;

use serde_json::{json, Value};
use vsim::dialogue::events::Event;
use vsim::outcome::money::MoneyReader;
use vsim::outcome::OutcomeFallback;
use vsim::scenario::{load_scenario, parse_scenario, Scenario};

const PAYMENT: f64 = 2.0;

/// (text, donation in [0, 2])
const CASES: &[(&str, Option<f64>)] = &[
    // Dollar signs and units.
    ("$1", Some(1.0)),
    ("I'll donate $1.50 to Save the Children.", Some(1.5)),
    ("Sure, put me down for $ 1", Some(1.0)),
    ("I can do $.50", Some(0.5)),
    ("I'll give 1.50 dollars", Some(1.5)),
    ("I'll give 1 dollar", Some(1.0)),
    ("Okay, 2$ it is", Some(2.0)),
    ("I'd like to contribute $2.00", Some(2.0)),
    ("I can spare 50 cents", Some(0.5)),
    ("50¢ is what I can give", Some(0.5)),
    ("maybe 75c", Some(0.75)),
    ("I'll donate 5 cents", Some(0.05)),
    // Words.
    ("I'll give a dollar", Some(1.0)),
    ("One dollar, final answer.", Some(1.0)),
    ("I'll donate two dollars", Some(2.0)),
    ("I'd give two bucks", Some(2.0)),
    ("Half a dollar is fine", Some(0.5)),
    ("I'll give a dollar and a half", Some(1.5)),
    ("one dollar and fifty cents", Some(1.5)),
    ("How about a dollar fifty.", Some(1.5)),
    ("I'll give $1 and 50 cents", Some(1.5)),
    ("fifty cents", Some(0.5)),
    ("twenty-five cents", Some(0.25)),
    ("I'll donate ten cents", Some(0.1)),
    ("I can give a quarter", Some(0.25)),
    ("zero dollars", Some(0.0)),
    // Shares of the payment.
    ("I'll donate half", Some(1.0)),
    ("I'll donate half of my payment", Some(1.0)),
    ("I'll give half of my $2", Some(1.0)),
    ("Half.", Some(1.0)),
    ("I'll donate all of it", Some(2.0)),
    ("I'm donating everything", Some(2.0)),
    ("I'll give the whole $2", Some(2.0)),
    ("I'll donate all of my $2", Some(2.0)),
    ("Let's do it all", Some(2.0)),
    ("I'll keep half", Some(1.0)),
    // Nothing.
    ("Nothing.", Some(0.0)),
    ("I'll donate nothing", Some(0.0)),
    ("I won't donate", Some(0.0)),
    ("Sorry, I'm not going to donate anything today.", Some(0.0)),
    ("I'd rather not donate anything", Some(0.0)),
    ("I don't really want to donate.", Some(0.0)),
    ("Not a single cent.", Some(0.0)),
    ("I'll keep my $2", Some(0.0)),
    ("I'd rather keep the money.", Some(0.0)),
    ("I'll donate $0", Some(0.0)),
    // Bare numbers after a donation verb, or as the whole answer.
    ("I will donate 0.5", Some(0.5)),
    ("I'd give 1 to them", Some(1.0)),
    ("Probably 1.50", Some(1.5)),
    // The payment is not the donation.
    ("I earned $2", None),
    ("we each got $2 for this task", None),
    ("The $2 payment is not much.", None),
    ("I'll donate $1 out of my $2", Some(1.0)),
    ("Out of my $2, I'll give 50 cents.", Some(0.5)),
    ("I'll give 1 dollar of the $2 we earned", Some(1.0)),
    ("I'll donate $1.50 of my $2 task payment", Some(1.5)),
    ("I got paid $2 for this, so I'll donate a dollar", Some(1.0)),
    ("I only have $2 but I'll give $1", Some(1.0)),
    ("I'll keep $1.50 and donate the rest", Some(0.5)),
    ("I'll keep $1 and donate $1", Some(1.0)),
    // Revisions: the last donation stated wins.
    ("I'll give $1... actually, make it $1.50", Some(1.5)),
    ("I was going to give $1 but I'll do 50 cents", Some(0.5)),
    ("Maybe $2? No, I'll do $1.", Some(1.0)),
    ("I can't donate $2, but $1 is fine", Some(1.0)),
    // Out of range: read whole, then refused rather than truncated.
    ("I'll donate $20", None),
    ("I'd give $1,000 if I could", None),
    ("ten dollars", None),
    ("$2.50", None),
    // Not about a donation, or not an amount at all.
    ("Thanks for everything!", None),
    ("Half the children there lack clean water.", None),
    ("I agree with all of it, it is a good cause.", None),
    ("Someone told me about it", None),
    ("I listened to an mp3 about it", None),
    ("I won't donate more than $1", None),
    ("I don't mind giving $1", Some(1.0)),
    ("", None),
    // Phrasings from simulated chats.
    ("That sounds like a great cause! I think I'll donate $0.50 of my earnings.", Some(0.5)),
    ("I'll donate $1 — half of what I earned.", Some(1.0)),
    ("How much are you donating?", None),
    ("I'm not comfortable donating right now.", Some(0.0)),
    ("I'd be willing to give $1, but not the whole $2.", Some(1.0)),
    ("$1 is all I can spare.", Some(1.0)),
    ("I'll donate 1 of my 2 dollars.", Some(1.0)),
    ("I'm going to keep my money for now.", Some(0.0)),
    ("I want to help but $2 is a lot for me. Maybe $0.75?", Some(0.75)),
    ("I'd like to donate 100% of it", Some(2.0)),
    ("I'll donate 10 percent.", Some(0.2)),
    ("I was paid $2, and I'm donating $2.", Some(2.0)),
    ("I'll donate $1.50. That leaves me with 50 cents.", Some(1.5)),
    ("I'll donate $1 and have $1 left", Some(1.0)),
    ("I'll donate two.", Some(2.0)),
    ("No donation from me, sorry.", Some(0.0)),
    ("I'll pass this time.", Some(0.0)),
    ("I'll donate 50", None),
    ("I'll donate a quarter of my payment.", Some(0.5)),
    ("I'd rather not say.", None),
    ("I don't think I can donate much, maybe 20 cents", Some(0.2)),
    ("I can't give you the full $2, but I'll give 1", Some(1.0)),
    ("I'll donate one dollar to save the children and keep the other one.", Some(1.0)),
];

#[test]
fn reads_donations_from_phrasings() {
    let reader = MoneyReader::new(PAYMENT);
    let mut wrong = Vec::new();
    for (text, want) in CASES {
        let got = reader.donation(text, 0.0, PAYMENT);
        let close = match (got, want) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            (None, None) => true,
            _ => false,
        };
        if !close {
            wrong.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{} of {} wrong:\n{}", wrong.len(), CASES.len(), wrong.join("\n"));
    assert!(CASES.len() >= 40);
}

proptest::proptest! {
    #[test]
    fn no_text_makes_the_reader_panic(text in "[ $¢%.,0-9a-z'’—-]{0,60}|\\PC{0,60}") {
        let _ = MoneyReader::new(PAYMENT).stated(&text);
    }
}

#[test]
fn out_of_range_amounts_are_read_whole() {
    let reader = MoneyReader::new(PAYMENT);
    assert_eq!(reader.stated("I'd give $1,000 if I could"), Some(1000.0));
    assert_eq!(reader.stated("I'll donate $20"), Some(20.0));
    assert_eq!(reader.stated("ten dollars"), Some(10.0));
}

#[test]
fn half_and_all_follow_the_payment() {
    let reader = MoneyReader::new(10.0);
    assert_eq!(reader.stated("I'll donate half"), Some(5.0));
    assert_eq!(reader.stated("I'll give all of it"), Some(10.0));
    assert_eq!(reader.stated("I'll keep $4 and give the rest"), Some(6.0));
}

const SCENARIO: &str = r#"name = "t"
[[roles]]
id = "a"
system = "You are A."
[[roles]]
id = "b"
system = "You are B."
[turns]
first = "a"
max_turns = 2
[[outcomes]]
name = "donation"
role = "a"
type = "number"
min = 0
max = 2
question = "How much?"
"#;

/// `scenario` with `extra` appended to its outcome, as the file `money.toml`.
fn parse(scenario: &str, extra: &str) -> Result<Scenario, String> {
    parse_scenario(Path::new("money.toml"), &format!("{scenario}{extra}\n")).map_err(|e| e.to_string())
}

fn money_payment(s: &Scenario) -> Option<f64> {
    match &s.outcomes.iter().find(|o| o.name == "donation")?.fallback {
        Some(OutcomeFallback::Money(m)) => Some(m.payment()),
        _ => None,
    }
}

#[test]
fn the_money_fallback_is_declared_by_name() -> anyhow::Result<()> {
    let declared = parse(SCENARIO, "fallback = \"money\"").map_err(anyhow::Error::msg)?;
    assert_eq!(money_payment(&declared), Some(2.0), "the payment defaults to `max`");
    let declared = parse(SCENARIO, "fallback = \"money\"\npayment = 5").map_err(anyhow::Error::msg)?;
    assert_eq!(money_payment(&declared), Some(5.0));
    let persuasion = load_scenario(Path::new("scenarios/persuasion_for_good.toml"))?;
    assert_eq!(money_payment(&persuasion), Some(2.0));
    Ok(())
}

#[test]
fn fallback_errors_name_the_file_line_and_field() {
    let category =
        SCENARIO.replace("type = \"number\"", "type = \"category\"\ncategories = [\"yes\", \"no\"]");
    let cases = [
        (
            SCENARIO,
            "fallback = \"cash\"",
            "money.toml:18:",
            "`outcomes[0].fallback`: unknown fallback `cash`",
        ),
        (SCENARIO, "fallback = \"money\"\nfallback_regex = '\\d'", "money.toml:18:", "not both"),
        (SCENARIO, "payment = 2", "money.toml:18:", "`outcomes[0].payment`"),
        (SCENARIO, "fallback = \"money\"\npayment = -1", "money.toml:19:", "expected a finite amount"),
        (category.as_str(), "fallback = \"money\"", "money.toml:19:", "reads numbers"),
    ];
    for (scenario, extra, place, message) in cases {
        let e = parse(scenario, extra).map(|_| ()).unwrap_err();
        assert!(e.starts_with(place) && e.contains(message), "{extra}: {e}");
    }
}

/// A finished dialogue whose donation outcome has the event fields `outcome`.
fn dialogue(i: usize, outcome: Value) -> Vec<Event> {
    let id = format!("d{i}");
    let usage = json!({"prompt_tokens": 0, "completion_tokens": 0});
    let agent = json!({"role": "persuadee", "name": "Persuadee", "method": "direct", "model": "scripted",
        "system_prompt": "q"});
    let mut o = json!({"event": "outcome", "dialogue": id, "role": "persuadee", "name": "donation",
        "raw": "", "usage": usage});
    o.as_object_mut().unwrap().extend(outcome.as_object().unwrap().clone());
    [
        json!({"event": "begin", "dialogue": id, "index": i, "seed": 1, "scenario": "persuasion_for_good",
            "agents": [agent]}),
        o,
        json!({"event": "end", "dialogue": id, "turns": 0, "reason": "max_turns", "usage": usage}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).expect("a valid event"))
    .collect()
}

#[tokio::test]
async fn eval_counts_an_out_of_range_outcome_as_invalid_and_never_compares_it() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let outcome = json!({"name": "donation", "role": "persuadee", "question": "How much?",
        "kind": {"type": "number", "min": 0.0, "max": 2.0}});
    let config = json!({"vsim_version": "0.1.0", "population": "personas", "n": 3, "seed": 1,
        "scenario": {"name": "persuasion_for_good", "outcomes": [outcome]}});
    std::fs::write(dir.join("config.json"), config.to_string())?;
    let mut w = vsim::rundir::transcript::TranscriptWriter::open(&dir.join("transcripts.jsonl"))?;
    // An older event without `reason`, a money reading, and an answer of 5 refused as invalid.
    w.append(&dialogue(0, json!({"value": 1.0, "source": "question"})))?;
    w.append(&dialogue(1, json!({"value": 0.5, "source": "money"})))?;
    let reason = "answer: 5 is outside [0, 2]";
    let invalid = json!({"value": null, "source": "invalid", "raw": "{\"answer\": 5}", "reason": reason});
    w.append(&dialogue(2, invalid))?;
    drop(w);
    let run = vsim::eval::RunData::load(dir)?;
    let e = vsim::eval::evaluate(&run, None, &vsim::eval::EvalOptions::default(), None).await?;
    let o = &e.numeric[0];
    assert_eq!((o.counts.valid, o.counts.invalid, o.counts.missing), (2, 1, 0));
    assert_eq!(o.simulated_values, vec![1.0, 0.5]);
    let refused = run.dialogues[2].outcome("persuadee.donation").expect("the outcome");
    assert_eq!(refused.reason.as_deref(), Some(reason));
    Ok(())
}
