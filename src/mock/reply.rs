//! What a chat request asks for, and the mock's reply in that shape.
//!
//! The shape comes from the request's JSON schema when it sends one. Without a schema (a
//! client run with `--no-response-format`, or a method that sends none, like `cot`) it
//! comes from the instruction in the prompt, as a model would read it; and the reply then
//! takes one of the plain-text shapes real models send when nothing enforces JSON
//! (numbered lists, `<response>` tags, tables, labelled blocks, ...), drawn from the
//! request's seeded RNG so that the same request always gets the same shape.

use std::sync::LazyLock;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde_json::{json, Value};

use crate::backend::{Message, Role};

/// What a request asks the reply to be.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ask {
    /// One free-text reply.
    Text,
    /// Step-by-step reasoning, then one reply: `{"reasoning": .., "response": ..}`; the
    /// response is an answer of the given domain when the prompt states one.
    Cot(Option<Answer>),
    /// Between `min` and `max` candidate replies (`{"responses": [{"text", "probability"}]}`),
    /// or one entry per option when `options` are given.
    Candidates { min: usize, max: usize, probability: bool, reasoning: bool, options: Option<Vec<String>> },
    /// Between `min` and `max` answers to an outcome question.
    Answers { answer: Answer, min: usize, max: usize, probability: bool },
    /// `{"answer": ..}`.
    Answer(Answer),
}

/// The domain of an answer.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Answer {
    Choice(Vec<Value>),
    Number { lo: f64, hi: f64 },
}

/// How the engine's prompts state an answer's domain (`ANSWER is a number between 0 and 2`).
const ANSWER_IS: &str = "ANSWER is ";

/// How the mock reasons, where reasoning is asked for.
const REASONING: &str = "Considering how this person would react.";

/// How many items beyond `minItems` the mock may write, however many `maxItems` allows.
const MAX_EXTRA_ITEMS: usize = 100;

impl Ask {
    /// The shape a `response_format` JSON schema describes (see
    /// [`crate::vs::OutputConstraint::json_schema`]); free text when it is none of them.
    pub(super) fn from_schema(schema: &Value) -> Self {
        if let Some(list) = schema.pointer("/properties/responses") {
            let min = list.get("minItems").and_then(Value::as_u64).unwrap_or(1).max(1) as usize;
            let max = list.get("maxItems").and_then(Value::as_u64).map_or(min, |m| m as usize).max(min);
            let probability = list.pointer("/items/properties/probability").is_some();
            if let Some(answer) = list.pointer("/items/properties/answer") {
                return Self::Answers { answer: Answer::from_schema(answer), min, max, probability };
            }
            let options: Option<Vec<String>> = list
                .pointer("/items/properties/text/enum")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .filter(|o: &Vec<String>| !o.is_empty());
            let reasoning = schema.pointer("/properties/reasoning").is_some();
            return Self::Candidates { min, max, probability, reasoning, options };
        }
        if let Some(response) = schema.pointer("/properties/response") {
            let answer = (response.get("enum").is_some() || response.get("minimum").is_some())
                .then(|| Answer::from_schema(response));
            return Self::Cot(answer);
        }
        if let Some(answer) = schema.pointer("/properties/answer") {
            // `{"anyOf": [ANSWER, null]}`: what a role stated; the mock always states something.
            return Self::Answer(Answer::from_schema(answer.pointer("/anyOf/0").unwrap_or(answer)));
        }
        Self::Text
    }

    /// The shape the prompt's instruction asks for: the last user message, or, when that
    /// asks to try again, the latest earlier one that asks for a shape.
    pub(super) fn from_prompt(messages: &[Message]) -> Self {
        let mut asked = messages.iter().rev().filter(|m| m.role == Role::User).map(|m| m.content.as_str());
        let Some(last) = asked.next() else { return Self::Text };
        if let Some(ask) = Self::from_instruction(last) {
            return ask;
        }
        if last.contains("Reply again") {
            if let Some(ask) = asked.find_map(Self::from_instruction) {
                return ask;
            }
        }
        Self::Text
    }

    /// The shape one instruction spells out (the built-in prompts of every method, outcome
    /// question and survey item), if any.
    fn from_instruction(text: &str) -> Option<Self> {
        let probability = text.contains("\"probability\"") || text.contains("\"confidence\"");
        let options = option_lines(text);
        if text.contains("\"responses\"") {
            let (min, max) = match &options {
                Some(o) => (o.len(), o.len()),
                None => item_count(text),
            };
            if text.contains("\"answer\"") || text.contains(ANSWER_IS) {
                let answer = Answer::from_instruction(text, options.as_deref())?;
                return Some(Self::Answers { answer, min, max, probability });
            }
            let reasoning = text.contains("\"reasoning\"");
            return Some(Self::Candidates { min, max, probability, reasoning, options });
        }
        if text.contains("\"reasoning\"") && text.contains("\"response\"") {
            let answer = if text.contains(ANSWER_IS) {
                Answer::from_instruction(text, options.as_deref())
            } else {
                None
            };
            return Some(Self::Cot(answer));
        }
        if text.contains("{\"answer\"") || text.contains(ANSWER_IS) {
            return Answer::from_instruction(text, options.as_deref()).map(Self::Answer);
        }
        None
    }
}

impl Answer {
    /// One of the schema's `enum`, else a number in its range.
    fn from_schema(schema: &Value) -> Self {
        if let Some(choices) = schema.get("enum").and_then(Value::as_array).filter(|c| !c.is_empty()) {
            return Self::Choice(choices.clone());
        }
        let lo = schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
        let hi = schema.get("maximum").and_then(Value::as_f64).unwrap_or(lo + 1.0).max(lo);
        Self::Number { lo, hi }
    }

    /// `NUMBER is between 0 and 2`, `CHOICE is one of "a", "b"`, or `OPTION is exactly one
    /// of the options` with the item's options.
    fn from_instruction(text: &str, options: Option<&[String]>) -> Option<Self> {
        static BETWEEN: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"\b[A-Z]+ is (?:a number )?between (-?\d+(?:\.\d+)?) and (-?\d+(?:\.\d+)?)")
                .expect("valid regex")
        });
        static ONE_OF: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r#"\b[A-Z]+ is one of ((?:"[^"]*"(?:, )?)+)"#).expect("valid regex"));
        static QUOTED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#""([^"]*)""#).expect("valid regex"));
        if let Some(c) = BETWEEN.captures(text) {
            let lo: f64 = c[1].parse().ok()?;
            let hi: f64 = c[2].parse().ok()?;
            return Some(Self::Number { lo, hi: hi.max(lo) });
        }
        if let Some(c) = ONE_OF.captures(text) {
            let choices: Vec<Value> = QUOTED.captures_iter(&c[1]).map(|q| json!(&q[1])).collect();
            return (!choices.is_empty()).then_some(Self::Choice(choices));
        }
        if text.contains("one of the options") {
            let choices: Vec<Value> = options?.iter().map(|o| json!(o)).collect();
            return (!choices.is_empty()).then_some(Self::Choice(choices));
        }
        None
    }

    /// A value in the domain.
    fn draw(&self, rng: &mut ChaCha8Rng) -> Value {
        match self {
            Self::Choice(choices) => choices[rng.random_range(0..choices.len())].clone(),
            Self::Number { lo, hi } => json!(cents(lo + (hi - lo) * rng.random::<f64>())),
        }
    }
}

/// How many items an instruction asks for: `exactly 5 objects`, `at most 8`, `3 more`, ...;
/// one to five when it does not say.
fn item_count(text: &str) -> (usize, usize) {
    static EXACT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:exactly (\d+) objects|\b(\d+) (?:different|more) (?:answers|responses)|Generate (\d+) responses)")
            .expect("valid regex")
    });
    static AT_MOST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"at most (\d+)").expect("valid regex"));
    let number =
        |c: regex::Captures| c.iter().skip(1).flatten().find_map(|m| m.as_str().parse::<usize>().ok());
    if let Some(k) = EXACT.captures(text).and_then(number).filter(|&k| k > 0) {
        return (k, k);
    }
    if let Some(max) = AT_MOST.captures(text).and_then(number).filter(|&k| k > 0) {
        return (1, max);
    }
    (1, 5)
}

/// The `- OPTION` lines under an `Options:` line (a survey item).
fn option_lines(text: &str) -> Option<Vec<String>> {
    let (_, after) = text.split_once("Options:\n")?;
    let options: Vec<String> = after
        .lines()
        .map_while(|l| l.strip_prefix("- "))
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .collect();
    (!options.is_empty()).then_some(options)
}

/// `x` rounded to cents.
fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

const OPENERS: [&str; 8] =
    ["Well,", "Honestly,", "Hmm,", "Sure,", "I see.", "Okay,", "Right,", "To be fair,"];
const BODIES: [&str; 12] = [
    "I could give a little, maybe fifty cents.",
    "I need the money myself, so I will keep it.",
    "that sounds like a good cause, I can donate a dollar.",
    "I'd like to know more about how the money is used.",
    "I usually donate to local charities instead.",
    "let me think about it for a moment.",
    "I'll give the whole two dollars, why not.",
    "I'm not sure this is the right time for me.",
    "children's health matters to me, count me in for some.",
    "I don't trust online donation requests much.",
    "maybe a quarter, that is what I can spare.",
    "I agree with you, helping kids is important.",
];

fn sentence(rng: &mut ChaCha8Rng) -> String {
    let opener = OPENERS[rng.random_range(0..OPENERS.len())];
    let body = BODIES[rng.random_range(0..BODIES.len())];
    format!("{opener} {body}")
}

/// The reply to `ask`. `schema` says whether the request sent a schema (else the plain-text
/// shapes are drawn); `malformed` asks for a reply the parser has to repair, or cannot.
pub(super) fn content(ask: &Ask, schema: bool, malformed: bool, rng: &mut ChaCha8Rng) -> String {
    match ask {
        Ask::Text => sentence(rng),
        Ask::Cot(answer) => cot(answer.as_ref(), schema, malformed, rng),
        Ask::Candidates { min, max, probability, reasoning, options } => {
            let n = rng.random_range(*min..=(*max).min(min + MAX_EXTRA_ITEMS));
            let texts = match options {
                Some(o) => o.clone(),
                None => (0..n).map(|_| sentence(rng)).collect(),
            };
            // Options must come back exactly as written, so they always travel as JSON.
            let plain = !schema && !malformed && options.is_none();
            candidates(texts, *probability, *reasoning, malformed, plain, rng)
        }
        Ask::Answers { answer, min, max, probability } => {
            let n = rng.random_range(*min..=(*max).min(min + MAX_EXTRA_ITEMS));
            let responses: Vec<Value> = (0..n)
                .map(|_| {
                    let a = answer.draw(rng);
                    if *probability {
                        json!({"answer": a, "probability": cents(1.0 / n as f64)})
                    } else {
                        json!({"answer": a})
                    }
                })
                .collect();
            json!({"responses": responses}).to_string()
        }
        Ask::Answer(Answer::Choice(choices)) => {
            let pick = &choices[rng.random_range(0..choices.len())];
            if malformed {
                format!("I would say {}.", pick.as_str().unwrap_or_default())
            } else {
                json!({"answer": pick}).to_string()
            }
        }
        Ask::Answer(answer @ Answer::Number { .. }) => {
            let x = answer.draw(rng);
            if malformed {
                format!("I think about ${:.2}.", x.as_f64().unwrap_or_default())
            } else {
                json!({"answer": x}).to_string()
            }
        }
    }
}

/// Reasoning and one reply: JSON under a schema; without one, JSON, fenced JSON or prose
/// ending in a `Response:` line; malformed, JSON with a trailing comma in a fence.
fn cot(answer: Option<&Answer>, schema: bool, malformed: bool, rng: &mut ChaCha8Rng) -> String {
    // A number stays a JSON number, as the schema of a numeric answer asks and servers that
    // follow it write it; the prose and malformed shapes carry its text.
    let value = match answer {
        Some(a) => a.draw(rng),
        None => Value::String(sentence(rng)),
    };
    let response = match &value {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let object = json!({"reasoning": REASONING, "response": value});
    if malformed {
        let text = serde_json::to_string(&response).unwrap_or_else(|_| "\"\"".into());
        return format!("```json\n{{\n  \"reasoning\": \"{REASONING}\",\n  \"response\": {text},\n}}\n```");
    }
    if schema {
        return object.to_string();
    }
    match rng.random_range(0..3u8) {
        0 => object.to_string(),
        1 => format!("```json\n{}\n```", serde_json::to_string_pretty(&object).unwrap_or_default()),
        _ => format!("{REASONING} I should answer briefly.\n\nResponse: {response}"),
    }
}

/// How many plain-text list shapes [`plain_list`] writes.
const PLAIN_SHAPES: u8 = 7;

fn candidates(
    texts: Vec<String>,
    with_probability: bool,
    with_reasoning: bool,
    malformed: bool,
    plain: bool,
    rng: &mut ChaCha8Rng,
) -> String {
    let weights: Vec<f64> = texts.iter().map(|_| 0.05 + rng.random::<f64>()).collect();
    let total: f64 = weights.iter().sum();
    let items: Vec<(String, f64)> =
        texts.into_iter().zip(&weights).map(|(t, w)| (t, cents(w / total))).collect();
    if plain {
        let shape = rng.random_range(0..PLAIN_SHAPES);
        if shape > 0 {
            return plain_list(shape, &items, with_probability, with_reasoning);
        }
    }
    if !malformed {
        let responses: Vec<Value> = items
            .iter()
            .map(|(text, p)| {
                if with_probability {
                    json!({"text": text, "probability": p})
                } else {
                    json!({"text": text})
                }
            })
            .collect();
        let mut top = serde_json::Map::new();
        if with_reasoning {
            top.insert("reasoning".into(), json!(REASONING));
        }
        top.insert("responses".into(), Value::Array(responses));
        return Value::Object(top).to_string();
    }
    let entry = |(text, p): &(String, f64), percent: bool| {
        let text = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
        match (with_probability, percent) {
            (false, _) => format!("{{\"text\": {text}}}"),
            (true, false) => format!("{{\"text\": {text}, \"probability\": {p}}}"),
            (true, true) => format!("{{\"text\": {text}, \"probability\": \"{:.0}%\"}}", p * 100.0),
        }
    };
    let list = |percent: bool| items.iter().map(|i| entry(i, percent)).collect::<Vec<_>>().join(",\n  ");
    match rng.random_range(0..5u8) {
        // Fenced, with a trailing comma.
        0 => format!("```json\n{{\"responses\": [\n  {},\n]}}\n```", list(false)),
        // Percentages as strings.
        1 => format!("{{\"responses\": [{}]}}", list(true)),
        // Prose around the JSON.
        2 => format!("Here are my responses:\n{{\"responses\": [{}]}}\nI hope this helps.", list(false)),
        // A bare list, no wrapper object.
        3 => format!("[{}]", list(false)),
        // Cut off mid-list.
        _ => {
            let full = format!("{{\"responses\": [{}]}}", list(false));
            let cut = full.len() * 2 / 3;
            let mut end = cut;
            while !full.is_char_boundary(end) {
                end -= 1;
            }
            full[..end].to_string()
        }
    }
}

/// A candidate list in one of the shapes models use without a schema (`shape` from 1 to
/// [`PLAIN_SHAPES`] - 1), with a line of reasoning first when asked for.
fn plain_list(shape: u8, items: &[(String, f64)], with_probability: bool, with_reasoning: bool) -> String {
    let percent = |p: f64| format!("{:.0}%", p * 100.0);
    let lines: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, (text, p))| {
            let n = i + 1;
            match (shape, with_probability) {
                // A numbered list.
                (1, true) => format!("{n}. {text} (probability: {p})"),
                (1, false) => format!("{n}. {text}"),
                // The VS paper's own tags.
                (2, true) => {
                    format!("<response>\n<text>{text}</text>\n<probability>{p}</probability>\n</response>")
                }
                (2, false) => format!("<response>\n<text>{text}</text>\n</response>"),
                // Markdown table rows.
                (3, true) => format!("| {n} | {text} | {p} |"),
                (3, false) => format!("| {n} | {text} |"),
                // Labelled blocks.
                (4, true) => format!("Response {n}: {text}\nProbability: {p}\n"),
                (4, false) => format!("Response {n}: {text}\n"),
                // A bulleted list with percentages.
                (5, true) => format!("- {text} ({})", percent(*p)),
                (5, false) => format!("- {text}"),
                // YAML-like entries.
                (_, true) => format!("- text: {text}\n  probability: {p}"),
                (_, false) => format!("- text: {text}"),
            }
        })
        .collect();
    let body = match shape {
        3 if with_probability => {
            format!("| # | Response | Probability |\n|---|---|---|\n{}", lines.join("\n"))
        }
        3 => format!("| # | Response |\n|---|---|\n{}", lines.join("\n")),
        1 => format!("Here are my responses:\n\n{}", lines.join("\n")),
        _ => lines.join("\n"),
    };
    if with_reasoning {
        format!("{REASONING} Each reply below is one I could give.\n\n{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;
    use crate::vs::parse::{parse_candidates_with, parse_cot, ParseOptions};
    use crate::vs::KSpec;
    use crate::vs::{AnswerShape, OutputConstraint};

    fn items(n: usize) -> Vec<(String, f64)> {
        let mut rng = seed::rng(7);
        (0..n).map(|i| (sentence(&mut rng), [0.5, 0.3, 0.15, 0.05, 0.0][i % 5])).collect()
    }

    #[test]
    fn every_plain_list_shape_parses_to_the_items_written() {
        for shape in 1..PLAIN_SHAPES {
            for with_probability in [true, false] {
                for with_reasoning in [true, false] {
                    let written = items(4);
                    let raw = plain_list(shape, &written, with_probability, with_reasoning);
                    let opts = ParseOptions {
                        k: Some(KSpec::Fixed { k: 4 }),
                        ignore_probabilities: !with_probability,
                    };
                    let parsed = parse_candidates_with(&raw, &opts).unwrap_or_else(|e| panic!("{e}\n{raw}"));
                    let texts: Vec<&str> = parsed.candidates.iter().map(|c| c.text.as_str()).collect();
                    let expected: Vec<&str> = written.iter().map(|(t, _)| t.as_str()).collect();
                    assert_eq!(texts, expected, "shape {shape}:\n{raw}");
                    if with_probability {
                        let stated: Vec<Option<f64>> =
                            parsed.candidates.iter().map(|c| c.raw_probability).collect();
                        let want: Vec<Option<f64>> = written.iter().map(|(_, p)| Some(*p)).collect();
                        assert_eq!(stated, want, "shape {shape}:\n{raw}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_parsers_shortcut_for_a_whole_json_reply_agrees_with_its_full_search() {
        use crate::vs::parse::parse_candidates_searching;
        let (mut compared, mut whole_json) = (0, 0);
        for i in 0..300u64 {
            let rng = &mut seed::rng(i);
            let (probability, reasoning) = (i % 2 == 0, i % 3 == 0);
            let options =
                (i % 5 == 0).then(|| vec!["yes".to_string(), "no".to_string(), "maybe".to_string()]);
            let ask = Ask::Candidates { min: 1, max: 6, probability, reasoning, options };
            for (schema, malformed) in [(true, false), (false, false), (false, true)] {
                let raw = content(&ask, schema, malformed, rng);
                whole_json +=
                    usize::from(serde_json::from_str::<Value>(raw.trim()).is_ok_and(|v| v.is_object()));
                for k in [Some(KSpec::Fixed { k: 5 }), Some(KSpec::ModelDecided { max: 3 }), None] {
                    let opts = ParseOptions { k, ignore_probabilities: !probability };
                    assert_eq!(
                        parse_candidates_with(&raw, &opts),
                        parse_candidates_searching(&raw, &opts),
                        "{raw}"
                    );
                    compared += 1;
                }
            }
        }
        // Hand-written whole-JSON replies the shortcut must leave to the search.
        for raw in [
            r#"{"responses": [{"text": "...", "probability": 0.5}]}"#,
            r#"{"text": "one item only", "probability": 0.4}"#,
            r#"[{"text": "a", "probability": 0.5}, {"text": "b", "probability": 0.5}]"#,
            r#"{"note": "no list here"}"#,
            r#"{"responses": []}"#,
            r#"{"responses": [{"text": "", "probability": 1}]}"#,
            r#"["just", "strings"]"#,
        ] {
            let opts = ParseOptions { k: None, ignore_probabilities: false };
            assert_eq!(parse_candidates_with(raw, &opts), parse_candidates_searching(raw, &opts), "{raw}");
            compared += 1;
        }
        assert!(compared > 2_000);
        // The shortcut's case is common among them, not a corner.
        assert!(whole_json > 300, "{whole_json} whole JSON replies");
    }

    #[test]
    fn every_cot_shape_parses() {
        for i in 0..40 {
            for (schema, malformed) in [(true, false), (false, false), (false, true)] {
                let raw = cot(None, schema, malformed, &mut seed::rng(i));
                let parsed = parse_cot(&raw).unwrap_or_else(|e| panic!("{e}\n{raw}"));
                assert!(parsed.reasoning.is_some_and(|r| r.contains("Considering")), "{raw}");
                assert!(BODIES.iter().any(|b| parsed.candidates[0].text.ends_with(b)), "{raw}");
            }
        }
    }

    #[test]
    fn candidate_schema_gets_items_within_bounds() {
        let c = OutputConstraint::Candidates {
            min_items: 3,
            max_items: 3,
            with_probability: true,
            with_reasoning: false,
        };
        let ask = Ask::from_schema(&c.json_schema());
        let text = content(&ask, true, false, &mut seed::rng(1));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["responses"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn every_schema_is_read() {
        let number = AnswerShape::Number { min: 0.0, max: 2.0 };
        let cases = [
            (
                OutputConstraint::Candidates {
                    min_items: 2,
                    max_items: 6,
                    with_probability: false,
                    with_reasoning: true,
                },
                Ask::Candidates { min: 2, max: 6, probability: false, reasoning: true, options: None },
            ),
            (
                OutputConstraint::Number { min: 1.0, max: 7.0 },
                Ask::Answer(Answer::Number { lo: 1.0, hi: 7.0 }),
            ),
            (
                OutputConstraint::Choice { choices: vec!["a".into(), "b".into()] },
                Ask::Answer(Answer::Choice(vec![json!("a"), json!("b")])),
            ),
            (
                OutputConstraint::Answers {
                    answer: number.clone(),
                    min_items: 3,
                    max_items: 3,
                    with_probability: true,
                },
                Ask::Answers {
                    answer: Answer::Number { lo: 0.0, hi: 2.0 },
                    min: 3,
                    max: 3,
                    probability: true,
                },
            ),
            (OutputConstraint::Stated { answer: number }, Ask::Answer(Answer::Number { lo: 0.0, hi: 2.0 })),
        ];
        for (constraint, ask) in cases {
            assert_eq!(Ask::from_schema(&constraint.json_schema()), ask, "{constraint:?}");
        }
        let cot = json!({"properties": {"reasoning": {"type": "string"}, "response": {"type": "string"}}});
        assert_eq!(Ask::from_schema(&cot), Ask::Cot(None));
        assert_eq!(Ask::from_schema(&json!({"type": "string"})), Ask::Text);
    }

    #[test]
    fn every_built_in_instruction_is_read() {
        let templates = crate::vs::PromptTemplates::default();
        let render = |method, k| templates.instruction(method, k, None).unwrap();
        let more = |method, k| templates.follow_up(method, k, None).unwrap();
        use crate::vs::Method;
        let fixed = KSpec::Fixed { k: 4 };
        let cases = [
            (render(Method::Direct, fixed), None),
            (render(Method::MultiTurn, fixed), None),
            (more(Method::MultiTurn, fixed), None),
            (
                more(Method::VsMulti, fixed),
                Some(Ask::Candidates { min: 4, max: 4, probability: true, reasoning: false, options: None }),
            ),
            (render(Method::Cot, fixed), Some(Ask::Cot(None))),
            (
                render(Method::Sequence, fixed),
                Some(Ask::Candidates { min: 4, max: 4, probability: false, reasoning: false, options: None }),
            ),
            (
                render(Method::VsStandard, KSpec::ModelDecided { max: 8 }),
                Some(Ask::Candidates { min: 1, max: 8, probability: true, reasoning: false, options: None }),
            ),
            (
                render(Method::VsCot, fixed),
                Some(Ask::Candidates { min: 4, max: 4, probability: true, reasoning: true, options: None }),
            ),
            (
                render(Method::VsMulti, fixed),
                Some(Ask::Candidates { min: 4, max: 4, probability: true, reasoning: false, options: None }),
            ),
            (
                "Would you donate?\n\nAnswer with only a JSON object {\"answer\": NUMBER} where NUMBER is between 0 and 2.".into(),
                Some(Ask::Answer(Answer::Number { lo: 0.0, hi: 2.0 })),
            ),
            (
                "Who should speak next? Answer with only a JSON object {\"answer\": NAME} where NAME is one of \"Ann\", \"Bo\".".into(),
                Some(Ask::Answer(Answer::Choice(vec![json!("Ann"), json!("Bo")]))),
            ),
            (
                "Q?\n\nGive 3 different answers you could give each with its probability. Return only a JSON object {\"responses\": [{\"answer\": ANSWER, \"probability\": P}, ...]} where ANSWER is a number between 0.5 and 10.".into(),
                Some(Ask::Answers { answer: Answer::Number { lo: 0.5, hi: 10.0 }, min: 3, max: 3, probability: true }),
            ),
            (
                "Question: Safe?\nOptions:\n- Very safe\n- Refused\n\nFor each option, give the probability that you would choose it. Answer with only a JSON object {\"responses\": [{\"text\": OPTION, \"probability\": P}, ...]} listing every option exactly once.".into(),
                Some(Ask::Candidates {
                    min: 2,
                    max: 2,
                    probability: true,
                    reasoning: false,
                    options: Some(vec!["Very safe".into(), "Refused".into()]),
                }),
            ),
            (
                "Question: Safe?\nOptions:\n- Very safe\n- Refused\n\nAnswer with only a JSON object {\"answer\": OPTION}, where OPTION is exactly one of the options.".into(),
                Some(Ask::Answer(Answer::Choice(vec![json!("Very safe"), json!("Refused")]))),
            ),
        ];
        for (text, ask) in cases {
            assert_eq!(Ask::from_instruction(&text), ask, "{text}");
        }
    }

    #[test]
    fn a_retry_is_read_as_the_instruction_it_repeats() {
        let templates = crate::vs::PromptTemplates::default();
        let instruction = templates.instruction(crate::vs::Method::Cot, KSpec::Fixed { k: 1 }, None).unwrap();
        let retry = templates.retry_message("no JSON", true).unwrap();
        let messages = vec![
            Message::system("You are Ann."),
            Message::user(format!("Hello.\n\n{instruction}")),
            Message::assistant("Hi."),
            Message::user(retry),
        ];
        assert_eq!(Ask::from_prompt(&messages), Ask::Cot(None));
        assert_eq!(Ask::from_prompt(&messages[..1]), Ask::Text);
        assert_eq!(Ask::from_prompt(&[Message::user("hi")]), Ask::Text);
    }
}
