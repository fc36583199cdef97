//! Outcome extraction: a private final question whose answer is constrained to the outcome's
//! type, with a regex over the role's words as the fallback. A value that cannot be
//! extracted is reported as missing, never as zero.

use regex::Regex;
use serde_json::Value;

use crate::backend::{ChatModel, ChatRequest, Message, OutputConstraint, Role, Usage};
use crate::dialogue::events::OutcomeSource;
use crate::scenario::{OutcomeKind, OutcomeSpec};

/// The result of extracting one outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    pub value: Option<Value>,
    pub source: OutcomeSource,
    pub raw: String,
    pub usage: Usage,
}

/// The output constraint for an outcome's answer.
pub fn constraint(kind: &OutcomeKind) -> OutputConstraint {
    match kind {
        OutcomeKind::Number { min, max } => OutputConstraint::Number { min: *min, max: *max },
        OutcomeKind::Category { categories } => OutputConstraint::Choice { choices: categories.clone() },
    }
}

/// The question with the answer format spelled out (for servers without schema support).
pub fn question_text(spec: &OutcomeSpec) -> String {
    let format = match &spec.kind {
        OutcomeKind::Number { min, max } => {
            format!("Answer with only a JSON object {{\"answer\": NUMBER}} where NUMBER is between {min} and {max}.")
        }
        OutcomeKind::Category { categories } => {
            let list: Vec<String> = categories.iter().map(|c| format!("\"{c}\"")).collect();
            format!(
                "Answer with only a JSON object {{\"answer\": CHOICE}} where CHOICE is one of {}.",
                list.join(", ")
            )
        }
    };
    format!("{}\n\n{}", spec.question.trim(), format)
}

/// Asks `spec`'s question of the role whose conversation is `messages`, then parses the
/// answer; falls back to the regex over the answer and the role's own utterances.
pub async fn ask(
    model: &dyn ChatModel,
    spec: &OutcomeSpec,
    mut messages: Vec<Message>,
    seed: u64,
    temperature: Option<f32>,
    use_schema: bool,
) -> Result<Extracted, crate::backend::BackendError> {
    let own_words: Vec<String> =
        messages.iter().filter(|m| m.role == Role::Assistant).map(|m| m.content.clone()).collect();
    messages.push(Message::user(question_text(spec)));
    let request = ChatRequest {
        messages,
        temperature,
        max_tokens: Some(64),
        seed: Some(seed),
        constraint: use_schema.then(|| constraint(&spec.kind)),
        ..Default::default()
    };
    let response = model.chat(request).await?;
    let usage = response.usage.unwrap_or_default();
    let raw = response.content;
    if let Some(v) = parse_answer(&raw, &spec.kind) {
        return Ok(Extracted { value: Some(v), source: OutcomeSource::Question, raw, usage });
    }
    if let Some(re) = &spec.fallback {
        let texts = std::iter::once(raw.as_str()).chain(own_words.iter().rev().map(String::as_str));
        for text in texts {
            if let Some(v) = regex_value(re, text, &spec.kind) {
                return Ok(Extracted { value: Some(v), source: OutcomeSource::Regex, raw, usage });
            }
        }
    }
    Ok(Extracted { value: None, source: OutcomeSource::Missing, raw, usage })
}

/// Parses an answer: a JSON object `{"answer": ...}` (also inside prose or fences), or a
/// bare value, checked against the outcome's type.
pub fn parse_answer(raw: &str, kind: &OutcomeKind) -> Option<Value> {
    let candidate = json_answer(raw).or_else(|| {
        let t = raw.trim().trim_matches('"').trim();
        (!t.is_empty()).then(|| Value::String(t.to_string()))
    })?;
    check_value(&candidate, kind)
}

fn json_answer(raw: &str) -> Option<Value> {
    let start = raw.find('{')?;
    let end = raw.rfind('}')?;
    if end <= start {
        return None;
    }
    let v: Value = serde_json::from_str(&raw[start..=end]).ok()?;
    let obj = v.as_object()?;
    obj.get("answer").or_else(|| obj.values().next()).cloned()
}

fn check_value(v: &Value, kind: &OutcomeKind) -> Option<Value> {
    match kind {
        OutcomeKind::Number { min, max } => {
            let x = match v {
                Value::Number(n) => n.as_f64()?,
                Value::String(s) => parse_number(s)?,
                _ => return None,
            };
            (x.is_finite() && x >= *min && x <= *max).then(|| serde_json::json!(x))
        }
        OutcomeKind::Category { categories } => {
            let s = match v {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            match_category(&s, categories).map(Value::String)
        }
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim().trim_start_matches('$').trim().trim_end_matches(['.', ',']);
    t.parse::<f64>().ok()
}

/// Exact (case-insensitive) match first, then a single category mentioned in the text.
fn match_category(s: &str, categories: &[String]) -> Option<String> {
    let lower = s.to_lowercase();
    if let Some(c) = categories.iter().find(|c| c.to_lowercase() == lower) {
        return Some(c.clone());
    }
    let mentioned: Vec<&String> = categories.iter().filter(|c| lower.contains(&c.to_lowercase())).collect();
    (mentioned.len() == 1).then(|| mentioned[0].clone())
}

/// The last match of `re` in `text` (its first capture group if it has one), as a value.
fn regex_value(re: &Regex, text: &str, kind: &OutcomeKind) -> Option<Value> {
    let caps = re.captures_iter(text).last()?;
    let m = caps.get(1).or_else(|| caps.get(0))?;
    check_value(&Value::String(m.as_str().to_string()), kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num() -> OutcomeKind {
        OutcomeKind::Number { min: 0.0, max: 2.0 }
    }

    #[test]
    fn parses_json_and_bare_numbers() {
        assert_eq!(parse_answer(r#"{"answer": 0.5}"#, &num()), Some(serde_json::json!(0.5)));
        assert_eq!(parse_answer(r#"Sure! {"answer": "1.25"}"#, &num()), Some(serde_json::json!(1.25)));
        assert_eq!(parse_answer("$1", &num()), Some(serde_json::json!(1.0)));
        assert_eq!(parse_answer(r#"{"answer": 5}"#, &num()), None);
        assert_eq!(parse_answer("no idea", &num()), None);
    }

    #[test]
    fn categories_match_case_insensitively() {
        let k = OutcomeKind::Category { categories: vec!["yes".into(), "no".into()] };
        assert_eq!(parse_answer(r#"{"answer": "Yes"}"#, &k), Some(Value::String("yes".into())));
        assert_eq!(parse_answer("I vote no.", &k), Some(Value::String("no".into())));
        assert_eq!(parse_answer("maybe", &k), None);
    }

    #[test]
    fn regex_takes_last_match_group() {
        let re = Regex::new(r"\$(\d+(?:\.\d+)?)").unwrap();
        assert_eq!(regex_value(&re, "I'll give $0.50, no wait, $1", &num()), Some(serde_json::json!(1.0)));
    }
}
