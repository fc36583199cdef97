//! Outcome extraction: a private final question whose answer is constrained to the outcome's
//! type, with a regex or the money reader over the role's words as the fallback. A value that
//! cannot be extracted is reported as missing, never as zero; one outside the outcome's range
//! is reported as invalid, never clamped.

pub mod money;
pub mod through_method;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::Usage;
use crate::vs::AnswerShape;
use crate::vs::Checked;
use crate::vs::Method;

/// An outcome's type as the run manifest records it: `{"type": "number", "min", "max"}` or
/// `{"type": "category", "categories": [...]}` (the words of scenario files).
pub fn recorded_kind(kind: &AnswerShape) -> Value {
    match kind {
        AnswerShape::Number { min, max } => serde_json::json!({"type": "number", "min": min, "max": max}),
        AnswerShape::Choice { choices } => serde_json::json!({"type": "category", "categories": choices}),
    }
}

/// Reads an outcome's type recorded by [`recorded_kind`].
pub(crate) fn read_recorded_kind(v: &Value) -> Result<AnswerShape, String> {
    let number =
        |key: &str| v.get(key).and_then(Value::as_f64).ok_or(format!("a number outcome needs `{key}`"));
    match v.get("type").and_then(Value::as_str) {
        Some("number") => Ok(AnswerShape::Number { min: number("min")?, max: number("max")? }),
        Some("category") => {
            let categories = v
                .get("categories")
                .and_then(Value::as_array)
                .ok_or("a category outcome needs `categories`")?;
            let choices = categories
                .iter()
                .map(|c| c.as_str().map(str::to_string).ok_or("categories are strings"))
                .collect::<Result<_, _>>()?;
            Ok(AnswerShape::Choice { choices })
        }
        other => Err(format!("unknown outcome type {other:?}: expected number or category")),
    }
}

/// A question asked privately of a role after the dialogue.
#[derive(Debug, Clone)]
pub struct OutcomeSpec {
    /// The outcome's name, unique per role.
    pub name: String,
    /// Index of the role asked.
    pub role: usize,
    /// The question, asked after the dialogue.
    pub question: String,
    /// The type of the answer: a number in a range, or one of the categories (`Choice`).
    pub kind: AnswerShape,
    /// What reads the outcome from the role's words when the answer cannot be used.
    pub fallback: Option<OutcomeFallback>,
    /// The method that answers the question; `None`: the role's own method, k, τ and rule.
    pub method: Option<Method>,
    /// Also record what the role stated in the dialogue, read by a constrained extractor
    /// call (the `stated` measure).
    pub stated: bool,
    /// The model spec of that extractor call; `None`: the role's own model.
    pub stated_model: Option<String>,
}

/// What reads an outcome from the role's own words when the answer to the question cannot
/// be used.
#[derive(Debug, Clone)]
pub enum OutcomeFallback {
    /// `fallback_regex`: the first capture group (or the whole match) of the last match.
    Regex(Regex),
    /// `fallback = "money"`: the last donation stated (see [`money`]).
    Money(money::MoneyReader),
}

/// How an outcome was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeSource {
    /// The answer to the private final question.
    Question,
    /// The fallback regex over the answer or the role's utterances.
    Regex,
    /// The money fallback: the last donation stated in the answer or the role's utterances.
    Money,
    /// A value was read but breaks the outcome's declaration (e.g. outside its range): the
    /// event's `value` is null, `reason` says why and `raw` keeps the answer; it is counted
    /// as invalid and never compared.
    Invalid,
    /// Could not be extracted (counted, never silently zero).
    Missing,
    /// Read from what the role said in the dialogue by an extractor call (the `stated`
    /// measure).
    Stated,
}

/// The result of extracting one outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// A number or a category, or `None` when missing or refused.
    pub value: Option<Value>,
    /// How the value was obtained.
    pub source: OutcomeSource,
    /// The model's raw answer.
    pub raw: String,
    /// Why a value that was read was refused (with [`OutcomeSource::Invalid`]).
    pub reason: Option<String>,
    /// Tokens the extraction's calls used.
    pub usage: Usage,
}

/// The question with the answer format spelled out (for servers without schema support).
pub(crate) fn question_text(spec: &OutcomeSpec) -> String {
    let format = match &spec.kind {
        AnswerShape::Number { min, max } => {
            format!("Answer with only a JSON object {{\"answer\": NUMBER}} where NUMBER is between {min} and {max}.")
        }
        AnswerShape::Choice { choices: categories } => {
            let list: Vec<String> = categories.iter().map(|c| format!("\"{c}\"")).collect();
            format!(
                "Answer with only a JSON object {{\"answer\": CHOICE}} where CHOICE is one of {}.",
                list.join(", ")
            )
        }
    };
    format!("{}\n\n{}", spec.question.trim(), format)
}

/// Reads an outcome from `raw`, the answer to its question, else with the outcome's fallback
/// from the answer and then the role's utterances `own_words`, newest first. The first text
/// that yields a value decides: a value outside the outcome's range makes the outcome
/// invalid (with the reason) rather than sending the search further back.
pub fn extract(spec: &OutcomeSpec, raw: String, own_words: &[String], usage: Usage) -> Extracted {
    let (reading, source) = match read_answer(&raw, &spec.kind) {
        Reading::Nothing => fallback(spec, &raw, own_words),
        reading => (reading, OutcomeSource::Question),
    };
    let (value, source, reason) = match reading {
        Reading::Valid(v) => (Some(v), source, None),
        Reading::Refused(why) => (None, OutcomeSource::Invalid, Some(format!("{}: {why}", origin(source)))),
        Reading::Nothing => (None, OutcomeSource::Missing, None),
    };
    Extracted { value, source, raw, reason, usage }
}

/// Where a refused value was read, for its reason.
fn origin(source: OutcomeSource) -> &'static str {
    match source {
        OutcomeSource::Regex => "fallback regex",
        OutcomeSource::Money => "money fallback",
        _ => "answer",
    }
}

/// What reading one text found.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    /// A value that fits the outcome.
    Valid(Value),
    /// A value that breaks the outcome's declaration, and why.
    Refused(String),
    Nothing,
}

/// The fallback's reading of the answer, else of the role's utterances from the newest.
fn fallback(spec: &OutcomeSpec, raw: &str, own_words: &[String]) -> (Reading, OutcomeSource) {
    let Some(fb) = &spec.fallback else { return (Reading::Nothing, OutcomeSource::Missing) };
    let source = match fb {
        OutcomeFallback::Regex(_) => OutcomeSource::Regex,
        OutcomeFallback::Money(_) => OutcomeSource::Money,
    };
    let texts = std::iter::once(raw).chain(own_words.iter().rev().map(String::as_str));
    let reading = texts
        .map(|t| fallback_reading(fb, t, &spec.kind))
        .find(|r| *r != Reading::Nothing)
        .unwrap_or(Reading::Nothing);
    (reading, source)
}

/// One text read by the fallback, checked against the outcome's type.
fn fallback_reading(fb: &OutcomeFallback, text: &str, kind: &AnswerShape) -> Reading {
    match fb {
        OutcomeFallback::Regex(re) => regex_value(re, text, kind),
        OutcomeFallback::Money(reader) => match reader.stated(text) {
            Some(x) => check_value(&serde_json::json!(x), kind),
            None => Reading::Nothing,
        },
    }
}

/// Parses an answer: a JSON object `{"answer": ...}` (also inside prose or fences), or a
/// bare value, checked against the outcome's type.
pub(crate) fn parse_answer(raw: &str, kind: &AnswerShape) -> Option<Value> {
    match read_answer(raw, kind) {
        Reading::Valid(v) => Some(v),
        Reading::Refused(_) | Reading::Nothing => None,
    }
}

/// [`parse_answer`], telling a value outside the outcome's range from no value.
fn read_answer(raw: &str, kind: &AnswerShape) -> Reading {
    let candidate = json_answer(raw).or_else(|| {
        let t = raw.trim().trim_matches('"').trim();
        (!t.is_empty()).then(|| Value::String(t.to_string()))
    });
    candidate.map_or(Reading::Nothing, |c| check_value(&c, kind))
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

/// A value checked against the outcome's type, by the engine's one check
/// ([`crate::vs::item::check_value`]): a number outside `[min, max]` is refused.
fn check_value(v: &Value, kind: &AnswerShape) -> Reading {
    match crate::vs::item::check_value(v, kind) {
        Checked::Valid { value, .. } => Reading::Valid(value),
        Checked::Refused(why) => Reading::Refused(why),
        Checked::Nothing => Reading::Nothing,
    }
}

/// The last match of `re` in `text` (its first capture group if it has one), as a value.
fn regex_value(re: &Regex, text: &str, kind: &AnswerShape) -> Reading {
    let last = re.captures_iter(text).last();
    match last.as_ref().and_then(|caps| caps.get(1).or_else(|| caps.get(0))) {
        Some(m) => check_value(&Value::String(m.as_str().to_string()), kind),
        None => Reading::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num() -> AnswerShape {
        AnswerShape::Number { min: 0.0, max: 2.0 }
    }

    #[test]
    fn recorded_kinds_keep_the_manifest_words() {
        let cat = AnswerShape::Choice { choices: vec!["yes".into(), "no".into()] };
        let recorded = recorded_kind(&cat);
        assert_eq!(recorded, serde_json::json!({"type": "category", "categories": ["yes", "no"]}));
        assert_eq!(read_recorded_kind(&recorded).unwrap(), cat);
        let recorded = recorded_kind(&num());
        assert_eq!(recorded, serde_json::json!({"type": "number", "min": 0.0, "max": 2.0}));
        assert_eq!(
            read_recorded_kind(&serde_json::json!({"type": "number", "min": 0, "max": 2})).unwrap(),
            num()
        );
        assert!(read_recorded_kind(&serde_json::json!({"type": "choice"})).is_err());
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
        let k = AnswerShape::Choice { choices: vec!["yes".into(), "no".into()] };
        assert_eq!(parse_answer(r#"{"answer": "Yes"}"#, &k), Some(Value::String("yes".into())));
        assert_eq!(parse_answer("I vote no.", &k), Some(Value::String("no".into())));
        assert_eq!(parse_answer("maybe", &k), None);
    }

    #[test]
    fn regex_takes_last_match_group() {
        let re = Regex::new(r"\$(\d+(?:\.\d+)?)").unwrap();
        assert_eq!(
            regex_value(&re, "I'll give $0.50, no wait, $1", &num()),
            Reading::Valid(serde_json::json!(1.0))
        );
    }

    fn spec(fallback: Option<OutcomeFallback>) -> OutcomeSpec {
        OutcomeSpec {
            name: "donation".into(),
            role: 0,
            question: "How much?".into(),
            kind: num(),
            fallback,
            method: None,
            stated: false,
            stated_model: None,
        }
    }

    fn money() -> Option<OutcomeFallback> {
        Some(OutcomeFallback::Money(money::MoneyReader::new(2.0)))
    }

    fn words(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn an_answer_out_of_range_is_invalid_with_its_reason() {
        let e =
            extract(&spec(money()), r#"{"answer": 5}"#.into(), &words(&["I'll give $1"]), Usage::default());
        assert_eq!((e.value, e.source), (None, OutcomeSource::Invalid));
        assert_eq!(e.reason.as_deref(), Some("answer: 5 is outside [0, 2]"));
        assert_eq!(e.raw, r#"{"answer": 5}"#);
    }

    #[test]
    fn the_money_fallback_reads_the_newest_statement() {
        let said = words(&["I earned $2 too.", "I'll donate $1.", "Actually, make it 50 cents."]);
        let e = extract(&spec(money()), "I am not sure.".into(), &said, Usage::default());
        assert_eq!((e.value, e.source, e.reason), (Some(serde_json::json!(0.5)), OutcomeSource::Money, None));
        let e = extract(&spec(money()), "I'd give $1,000.".into(), &said, Usage::default());
        assert_eq!((e.value, e.source), (None, OutcomeSource::Invalid));
        assert_eq!(e.reason.as_deref(), Some("money fallback: 1000 is outside [0, 2]"));
        let e = extract(&spec(None), "I am not sure.".into(), &said, Usage::default());
        assert_eq!((e.value, e.source), (None, OutcomeSource::Missing));
    }
}
