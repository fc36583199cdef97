//! What one gathered item is: a free-text reply (a dialogue turn), a number within bounds
//! (an outcome question) or one of given options (an outcome category, a survey item).
//!
//! The shape decides three things the gathering engine needs and nothing else: the
//! sentence appended to a method's instruction, the output constraint sent to the backend,
//! and the check an item's text must pass to count.

use serde_json::Value;

use super::Method;
use super::{AnswerShape, OutputConstraint};

/// The shape of one gathered item.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ItemShape {
    /// Free text: a dialogue turn's reply.
    #[default]
    Text,
    /// A bounded number or one of given options.
    Answer(AnswerShape),
}

/// What checking one item's text found.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// The item fits the shape: its value (a JSON number or string) and its canonical text
    /// (`0.5`, the option verbatim).
    Valid {
        /// The value.
        value: Value,
        /// The value as the item's text.
        text: String,
    },
    /// The item holds a value that breaks the shape, and why.
    Refused(String),
    /// The item holds no value of the shape.
    Nothing,
}

impl ItemShape {
    /// The sentence that follows a method's instruction for this shape: none for free text;
    /// for an answer, what one answer may be and where it goes (`ANSWER is a number between
    /// 0 and 2`), in the words of the list methods (each `"text"`) or the one-reply methods.
    pub fn instruction(&self, method: Method) -> Option<String> {
        let ItemShape::Answer(answer) = self else { return None };
        let domain = domain(answer);
        Some(if method.asks_for_list() {
            format!("Each response is one answer, where {domain}: write ANSWER alone as its \"text\".")
        } else {
            format!("Your response is one answer, where {domain}: write ANSWER alone as the response.")
        })
    }

    /// The output constraint of `method` gathering items of this shape, between `min_items`
    /// and `max_items` per call for a list method; `cot` asks for reasoning, then the
    /// response. `direct` and `multi-turn` send none for free text.
    pub fn constraint(&self, method: Method, min_items: usize, max_items: usize) -> Option<OutputConstraint> {
        match (self, method.asks_for_list()) {
            (ItemShape::Text, true) => Some(OutputConstraint::Candidates {
                min_items,
                max_items,
                with_probability: method.is_verbalized(),
                with_reasoning: method.reasons_first(),
            }),
            (ItemShape::Text, false) if method.reasons_first() => {
                Some(OutputConstraint::Reasoned { answer: None })
            }
            (ItemShape::Text, false) => None,
            // `vs-cot` answers too: its reasoning is asked for in the prompt, not the schema.
            (ItemShape::Answer(answer), true) => Some(OutputConstraint::Answers {
                answer: answer.clone(),
                min_items,
                max_items,
                with_probability: method.is_verbalized(),
            }),
            (ItemShape::Answer(answer), false) if method.reasons_first() => {
                Some(OutputConstraint::Reasoned { answer: Some(answer.clone()) })
            }
            (ItemShape::Answer(AnswerShape::Number { min, max }), false) => {
                Some(OutputConstraint::Number { min: *min, max: *max })
            }
            (ItemShape::Answer(AnswerShape::Choice { choices }), false) => {
                Some(OutputConstraint::Choice { choices: choices.clone() })
            }
        }
    }

    /// Checks one item's text: free text always fits; an answer must parse as the shape's
    /// value (see [`check_value`]).
    pub fn check(&self, text: &str) -> Checked {
        match self {
            ItemShape::Text => {
                Checked::Valid { value: Value::String(text.to_string()), text: text.to_string() }
            }
            ItemShape::Answer(answer) => {
                let t = text.trim();
                // An answer object (`{"answer": 0.5}`, as a constrained one-reply call writes
                // it) or a JSON scalar is read as its value.
                if let Ok(v) = serde_json::from_str::<Value>(t) {
                    let inner = match &v {
                        Value::Object(o) => o.get("answer").or_else(|| o.values().next()).cloned(),
                        Value::Number(_) | Value::String(_) | Value::Bool(_) => Some(v.clone()),
                        _ => None,
                    };
                    if let Some(inner) = inner {
                        return check_value(&inner, answer);
                    }
                }
                let t = t.trim_matches('"').trim();
                if t.is_empty() {
                    return Checked::Nothing;
                }
                check_value(&Value::String(t.to_string()), answer)
            }
        }
    }
}

/// What one answer may be, in the prompt's words: `ANSWER is a number between 0 and 2` or
/// `ANSWER is one of "a", "b"`.
fn domain(answer: &AnswerShape) -> String {
    match answer {
        AnswerShape::Number { min, max } => format!("ANSWER is a number between {min} and {max}"),
        AnswerShape::Choice { choices } => {
            let list: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
            format!("ANSWER is one of {}", list.join(", "))
        }
    }
}

/// A value checked against an answer's type. A number (or a numeric string, `$1.50` and a
/// trailing full stop allowed) outside `[min, max]` is refused, never clamped. A choice
/// matches an option exactly, then case-insensitively, then as the single option the text
/// mentions, then as an option's 1-based number.
pub fn check_value(v: &Value, answer: &AnswerShape) -> Checked {
    match answer {
        AnswerShape::Number { min, max } => {
            let x = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => parse_number(s),
                _ => None,
            };
            match x.filter(|x| x.is_finite()) {
                None => Checked::Nothing,
                Some(x) if x < *min || x > *max => Checked::Refused(format!("{x} is outside [{min}, {max}]")),
                Some(x) => {
                    let value = serde_json::json!(x);
                    Checked::Valid { text: value.to_string(), value }
                }
            }
        }
        AnswerShape::Choice { choices } => {
            let s = match v {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Checked::Nothing,
            };
            match match_choice(&s, choices) {
                Some(c) => Checked::Valid { value: Value::String(c.clone()), text: c },
                None => Checked::Nothing,
            }
        }
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim().trim_start_matches('$').trim().trim_end_matches(['.', ',']);
    t.parse::<f64>().ok()
}

fn match_choice(s: &str, choices: &[String]) -> Option<String> {
    if let Some(c) = choices.iter().find(|c| c.as_str() == s) {
        return Some(c.clone());
    }
    let lower = s.to_lowercase();
    if let Some(c) = choices.iter().find(|c| c.to_lowercase() == lower) {
        return Some(c.clone());
    }
    let mentioned: Vec<&String> = choices.iter().filter(|c| lower.contains(&c.to_lowercase())).collect();
    if mentioned.len() == 1 {
        return Some(mentioned[0].clone());
    }
    s.parse::<usize>().ok().filter(|n| (1..=choices.len()).contains(n)).map(|n| choices[n - 1].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number() -> ItemShape {
        ItemShape::Answer(AnswerShape::Number { min: 0.0, max: 2.0 })
    }

    #[test]
    fn numbers_are_checked_against_their_range_never_clamped() {
        assert_eq!(
            number().check("$1.50."),
            Checked::Valid { value: serde_json::json!(1.5), text: "1.5".into() }
        );
        assert_eq!(number().check("999"), Checked::Refused("999 is outside [0, 2]".into()));
        assert_eq!(number().check("about a dollar"), Checked::Nothing);
        assert_eq!(number().check("NaN"), Checked::Nothing);
        assert_eq!(
            number().check(r#"{"answer": 0.25}"#),
            Checked::Valid { value: serde_json::json!(0.25), text: "0.25".into() }
        );
    }

    #[test]
    fn choices_match_exactly_then_loosely_then_by_number() {
        let shape =
            ItemShape::Answer(AnswerShape::Choice { choices: vec!["Agree".into(), "Disagree".into()] });
        let valid = |t: &str| Checked::Valid { value: Value::String(t.into()), text: t.into() };
        assert_eq!(shape.check("Agree"), valid("Agree"));
        assert_eq!(shape.check("\"disagree\""), valid("Disagree"));
        assert_eq!(shape.check("2"), valid("Disagree"));
        assert_eq!(shape.check("maybe"), Checked::Nothing);
        // "Disagree" mentions "agree" too: two options mentioned is no answer.
        assert_eq!(shape.check("I disagree"), Checked::Nothing);
    }

    #[test]
    fn free_text_sends_the_same_constraints_as_before_and_answers_their_own() {
        assert_eq!(ItemShape::Text.instruction(Method::VsStandard), None);
        assert!(ItemShape::Text.constraint(Method::Direct, 1, 1).is_none());
        assert_eq!(
            ItemShape::Text.constraint(Method::Cot, 1, 1),
            Some(OutputConstraint::Reasoned { answer: None })
        );
        let c = number().constraint(Method::VsStandard, 5, 5);
        assert!(matches!(c, Some(OutputConstraint::Answers { with_probability: true, .. })));
        assert!(matches!(number().constraint(Method::Direct, 1, 1), Some(OutputConstraint::Number { .. })));
        assert!(number()
            .instruction(Method::Sequence)
            .unwrap()
            .contains("ANSWER is a number between 0 and 2"));
    }
}
