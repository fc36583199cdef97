//! The shape a reply must take, described once by the gathering engine and sent to every
//! backend as a JSON schema (servers take it as `response_format`; the embedded model
//! turns it into a grammar in [`crate::backend::grammar`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::backend::{ChatRequest, OutputSchema};

/// What a reply must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputConstraint {
    /// `{"responses": [{"text": str, "probability": number}, ...]}` with between
    /// `min_items` and `max_items` entries; `with_probability: false` drops the
    /// probability field (the `sequence` method).
    Candidates {
        /// Fewest entries allowed.
        min_items: usize,
        /// Most entries allowed.
        max_items: usize,
        /// Whether each entry carries a `probability`.
        with_probability: bool,
        /// Whether a `reasoning` string precedes the list (the `vs-cot` method).
        with_reasoning: bool,
    },
    /// `{"answer": number}` in `[min, max]`: `minimum`/`maximum` in the JSON schema, and a
    /// grammar that admits only that range for the embedded model.
    Number {
        /// Smallest admissible answer.
        min: f64,
        /// Largest admissible answer.
        max: f64,
    },
    /// `{"answer": one of the choices}`.
    Choice {
        /// The admissible answers, verbatim.
        choices: Vec<String>,
    },
    /// Several answers to an outcome question, each with its probability when
    /// `with_probability` (the method under test answering it):
    /// `{"responses": [{"answer": ANSWER, "probability": number}, ...]}` with between
    /// `min_items` and `max_items` entries.
    Answers {
        /// The type of each answer.
        answer: AnswerShape,
        /// Fewest entries allowed.
        min_items: usize,
        /// Most entries allowed.
        max_items: usize,
        /// Whether each entry carries a `probability`.
        with_probability: bool,
    },
    /// Reasoning, then one reply (the `cot` method): `{"reasoning": str, "response": ...}`,
    /// the response free text (bounded as a candidate's text is) or an answer of a type.
    Reasoned {
        /// The type of the response when it is an answer; `None`: free text.
        answer: Option<AnswerShape>,
    },
    /// `{"answer": ANSWER}` or `{"answer": null}`: what a role stated, if it stated anything.
    Stated {
        /// The type of the answer, when there is one.
        answer: AnswerShape,
    },
}

/// A number or a category: the type of one answer inside [`OutputConstraint::Answers`] and
/// [`OutputConstraint::Stated`], and so of an outcome, a survey item and an evaluated
/// outcome (`Choice` is a category). Its serialized form is part of the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnswerShape {
    /// A number in `[min, max]` (bounded digit by digit in the embedded model's grammar).
    Number {
        /// Smallest admissible answer.
        min: f64,
        /// Largest admissible answer.
        max: f64,
    },
    /// One of the choices.
    Choice {
        /// The admissible answers, verbatim.
        choices: Vec<String>,
    },
}

impl AnswerShape {
    fn json_schema(&self) -> Value {
        match self {
            AnswerShape::Number { min, max } => json!({"type": "number", "minimum": min, "maximum": max}),
            AnswerShape::Choice { choices } => json!({"type": "string", "enum": choices}),
        }
    }

    /// The inverse of [`json_schema`](Self::json_schema).
    fn from_json_schema(schema: &Value) -> Option<Self> {
        if let Some(choices) = schema.get("enum") {
            let choices =
                choices.as_array()?.iter().map(|c| c.as_str().map(String::from)).collect::<Option<_>>()?;
            return Some(AnswerShape::Choice { choices });
        }
        Some(AnswerShape::Number {
            min: schema.get("minimum")?.as_f64()?,
            max: schema.get("maximum")?.as_f64()?,
        })
    }
}

impl OutputConstraint {
    /// A short name for `response_format.json_schema.name`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Candidates { .. } => "verbalized_candidates",
            Self::Number { .. } => "numeric_answer",
            Self::Answers { .. } => "answer_distribution",
            Self::Stated { .. } => "stated_answer",
            Self::Reasoned { .. } => "reasoned_response",
            Self::Choice { .. } => "categorical_answer",
        }
    }

    /// What a backend is sent: the [`name`](Self::name) and the
    /// [`json_schema`](Self::json_schema).
    /// Built once per constraint and shared: a run asks with the same few on every call.
    pub fn output_schema(&self) -> OutputSchema {
        /// Schemas built so far (a run uses a handful; emptied past 64).
        static BUILT: LazyLock<Mutex<Vec<(OutputConstraint, OutputSchema)>>> = LazyLock::new(Mutex::default);
        let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, schema)) = built.iter().find(|(c, _)| c == self) {
            return schema.clone();
        }
        let schema = OutputSchema { name: self.name().to_string(), schema: Arc::new(self.json_schema()) };
        if built.len() >= 64 {
            built.clear();
        }
        built.push((self.clone(), schema.clone()));
        schema
    }

    /// The constraint `request` asks for, read back from its schema: for a backend written
    /// in Rust (a scripted test model, say) that answers by shape. `None` when the request
    /// has no schema or one vsim does not write.
    pub fn of(request: &ChatRequest) -> Option<Self> {
        let sent = request.output_schema.as_ref()?;
        let schema = &sent.schema;
        let props = schema.get("properties")?;
        let list = |responses: &Value| -> Option<(usize, usize, bool, Value)> {
            let items = responses.get("items")?;
            Some((
                usize::try_from(responses.get("minItems")?.as_u64()?).ok()?,
                usize::try_from(responses.get("maxItems")?.as_u64()?).ok()?,
                items.get("properties")?.get("probability").is_some(),
                items.get("properties")?.clone(),
            ))
        };
        Some(match sent.name.as_str() {
            "verbalized_candidates" => {
                let (min_items, max_items, with_probability, _) = list(props.get("responses")?)?;
                let with_reasoning = props.get("reasoning").is_some();
                Self::Candidates { min_items, max_items, with_probability, with_reasoning }
            }
            "numeric_answer" => match AnswerShape::from_json_schema(props.get("answer")?)? {
                AnswerShape::Number { min, max } => Self::Number { min, max },
                AnswerShape::Choice { .. } => return None,
            },
            "categorical_answer" => match AnswerShape::from_json_schema(props.get("answer")?)? {
                AnswerShape::Choice { choices } => Self::Choice { choices },
                AnswerShape::Number { .. } => return None,
            },
            "answer_distribution" => {
                let (min_items, max_items, with_probability, item) = list(props.get("responses")?)?;
                let answer = AnswerShape::from_json_schema(item.get("answer")?)?;
                Self::Answers { answer, min_items, max_items, with_probability }
            }
            "reasoned_response" => {
                let response = props.get("response")?;
                let free = response.get("type").and_then(Value::as_str) == Some("string")
                    && response.get("enum").is_none();
                Self::Reasoned {
                    answer: if free { None } else { Some(AnswerShape::from_json_schema(response)?) },
                }
            }
            "stated_answer" => {
                let answer = props.get("answer")?.get("anyOf")?.get(0)?;
                Self::Stated { answer: AnswerShape::from_json_schema(answer)? }
            }
            _ => return None,
        })
    }

    /// JSON schema (strict-mode compatible: every object closed, every property required).
    /// A candidate's text carries `maxLength` ([`MAX_TEXT_CHARS`]); the OpenAI-compatible
    /// backend sends the schema again without it to a server that rejects the keyword.
    pub fn json_schema(&self) -> Value {
        match self {
            Self::Candidates { min_items, max_items, with_probability, with_reasoning } => {
                let mut item_props = serde_json::Map::new();
                item_props.insert("text".into(), json!({"type": "string", "maxLength": MAX_TEXT_CHARS}));
                let mut required = vec![json!("text")];
                if *with_probability {
                    item_props.insert("probability".into(), json!({"type": "number"}));
                    required.push(json!("probability"));
                }
                let item = json!({
                    "type": "object",
                    "properties": item_props,
                    "required": required,
                    "additionalProperties": false,
                });
                let mut props = serde_json::Map::new();
                let mut top_required = Vec::new();
                if *with_reasoning {
                    props.insert("reasoning".into(), json!({"type": "string"}));
                    top_required.push(json!("reasoning"));
                }
                props.insert(
                    "responses".into(),
                    json!({"type": "array", "items": item, "minItems": min_items, "maxItems": max_items}),
                );
                top_required.push(json!("responses"));
                json!({
                    "type": "object",
                    "properties": props,
                    "required": top_required,
                    "additionalProperties": false,
                })
            }
            Self::Number { min, max } => json!({
                "type": "object",
                "properties": {"answer": {"type": "number", "minimum": min, "maximum": max}},
                "required": ["answer"],
                "additionalProperties": false,
            }),
            Self::Choice { choices } => json!({
                "type": "object",
                "properties": {"answer": {"type": "string", "enum": choices}},
                "required": ["answer"],
                "additionalProperties": false,
            }),
            Self::Answers { answer, min_items, max_items, with_probability } => {
                let mut props = serde_json::Map::new();
                props.insert("answer".into(), answer.json_schema());
                let mut required = vec![json!("answer")];
                if *with_probability {
                    props.insert("probability".into(), json!({"type": "number"}));
                    required.push(json!("probability"));
                }
                json!({
                    "type": "object",
                    "properties": {"responses": {
                        "type": "array",
                        "items": {"type": "object", "properties": props, "required": required, "additionalProperties": false},
                        "minItems": min_items,
                        "maxItems": max_items,
                    }},
                    "required": ["responses"],
                    "additionalProperties": false,
                })
            }
            Self::Reasoned { answer } => json!({
                "type": "object",
                "properties": {
                    "reasoning": {"type": "string"},
                    "response": answer.as_ref().map_or_else(|| json!({"type": "string"}), AnswerShape::json_schema),
                },
                "required": ["reasoning", "response"],
                "additionalProperties": false,
            }),
            Self::Stated { answer } => json!({
                "type": "object",
                "properties": {"answer": {"anyOf": [answer.json_schema(), {"type": "null"}]}},
                "required": ["answer"],
                "additionalProperties": false,
            }),
        }
    }
}

/// The most characters a candidate's text may have: `maxLength` in its JSON schema. A small model otherwise writes
/// one string until `max_tokens` cuts the reply short.
pub const MAX_TEXT_CHARS: usize = 600;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::grammar::gbnf_from_schema;
    use crate::backend::grammar::testing::matcher;

    /// The embedded model's grammar for `c`, as a regex over whole replies.
    fn grammar(c: &OutputConstraint) -> (String, regex::Regex) {
        let g = gbnf_from_schema(&c.json_schema()).unwrap();
        let re = matcher(&g);
        (g, re)
    }

    fn every_kind() -> Vec<OutputConstraint> {
        let number = AnswerShape::Number { min: 0.0, max: 2.0 };
        let choice = AnswerShape::Choice { choices: vec!["Yes".into(), "a \"b\"".into()] };
        vec![
            OutputConstraint::Candidates {
                min_items: 5,
                max_items: 5,
                with_probability: true,
                with_reasoning: false,
            },
            OutputConstraint::Candidates {
                min_items: 1,
                max_items: 8,
                with_probability: false,
                with_reasoning: true,
            },
            OutputConstraint::Number { min: 1.0, max: 7.0 },
            OutputConstraint::Choice { choices: vec!["a".into(), "b".into()] },
            OutputConstraint::Answers {
                answer: number.clone(),
                min_items: 2,
                max_items: 4,
                with_probability: true,
            },
            OutputConstraint::Answers {
                answer: choice.clone(),
                min_items: 1,
                max_items: 3,
                with_probability: false,
            },
            OutputConstraint::Reasoned { answer: None },
            OutputConstraint::Reasoned { answer: Some(number.clone()) },
            OutputConstraint::Reasoned { answer: Some(choice) },
            OutputConstraint::Stated { answer: number },
        ]
    }

    #[test]
    fn every_constraint_is_read_back_from_the_schema_it_sends_and_has_a_grammar() {
        for c in every_kind() {
            let request = ChatRequest { output_schema: Some(c.output_schema()), ..Default::default() };
            assert_eq!(OutputConstraint::of(&request), Some(c.clone()));
            gbnf_from_schema(&c.json_schema()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
        assert_eq!(OutputConstraint::of(&ChatRequest::default()), None);
    }

    #[test]
    fn candidates_schema_bounds_items_and_text() {
        let c = OutputConstraint::Candidates {
            min_items: 5,
            max_items: 5,
            with_probability: true,
            with_reasoning: false,
        };
        let s = c.json_schema();
        assert_eq!(s["properties"]["responses"]["minItems"], 5);
        let text = &s["properties"]["responses"]["items"]["properties"]["text"];
        assert_eq!(text, &json!({"type": "string", "maxLength": MAX_TEXT_CHARS}));
        assert_eq!(s["properties"]["responses"]["items"]["required"], json!(["text", "probability"]));
        let (g, _) = grammar(&c);
        assert!(g.contains(&format!("char{{0,{}}}", MAX_TEXT_CHARS - 1)), "{g}");
    }

    #[test]
    fn grammar_repeats_items_between_bounds() {
        let c = OutputConstraint::Candidates {
            min_items: 1,
            max_items: 8,
            with_probability: true,
            with_reasoning: false,
        };
        let (g, _) = grammar(&c);
        assert!(g.contains("{0,7}"), "{g}");
        let (g, _) = grammar(&OutputConstraint::Choice { choices: vec!["yes".into(), "a \"b\"".into()] });
        assert!(g.contains(r#""\"yes\"""#), "{g}");
    }

    #[test]
    fn reasoned_grammar_takes_reasoning_then_a_response_of_its_type() {
        let number = AnswerShape::Number { min: 0.0, max: 2.0 };
        let choice = AnswerShape::Choice { choices: vec!["Yes".into(), "No".into()] };
        for (answer, good, bad) in [
            (None, r#"{"reasoning": "They care.", "response": "I'll give $1."}"#, r#"{"response": "x"}"#),
            (
                Some(number),
                r#"{"reasoning": "ok", "response": 1.5}"#,
                r#"{"reasoning": "ok", "response": 7}"#,
            ),
            (
                Some(choice),
                r#"{"reasoning": "ok", "response": "No"}"#,
                r#"{"reasoning": "ok", "response": "Maybe"}"#,
            ),
        ] {
            let c = OutputConstraint::Reasoned { answer };
            let (g, root) = grammar(&c);
            assert!(root.is_match(good), "{good}\n{g}");
            assert!(!root.is_match(bad), "{bad}\n{g}");
            assert_eq!(c.json_schema()["required"], json!(["reasoning", "response"]));
        }
    }

    #[test]
    fn number_and_stated_grammars_admit_only_the_range() {
        let (g, root) = grammar(&OutputConstraint::Number { min: 0.0, max: 2.0 });
        assert!(root.is_match(r#"{"answer": 1.5}"#), "{g}");
        assert!(!root.is_match(r#"{"answer": 2.5}"#), "{g}");
        assert!(!root.is_match(r#"{"answer": 20}"#), "{g}");
        let (g, root) =
            grammar(&OutputConstraint::Stated { answer: AnswerShape::Number { min: 0.0, max: 2.0 } });
        for (reply, ok) in
            [(r#"{"answer": null}"#, true), (r#"{"answer": 0.25}"#, true), (r#"{"answer": 999}"#, false)]
        {
            assert_eq!(root.is_match(reply), ok, "{reply}\n{g}");
        }
    }

    #[test]
    fn candidate_texts_must_say_something() {
        let (g, root) = grammar(&OutputConstraint::Candidates {
            min_items: 1,
            max_items: 2,
            with_probability: true,
            with_reasoning: false,
        });
        for ok in [
            r#"{"responses": [{"text": "Sure...", "probability": 0.3}]}"#,
            r#"{"responses": [{"text": "... well, maybe \"later\"", "probability": 0.3}, {"text": "1", "probability": 0.7}]}"#,
            r#"{"responses": [{"text": "¿Por qué no?", "probability": 1}]}"#,
        ] {
            assert!(root.is_match(ok), "{ok} should match\n{g}");
        }
        for example in [
            r#"{"responses": [{"text": "...", "probability": 0.3}]}"#,
            r#"{"responses": [{"text": "Sure", "probability": 0.5}, {"text": " \u2026 ", "probability": 0.5}]}"#,
            r#"{"responses": [{"text": "", "probability": 0.3}]}"#,
            r#"{"responses": [{"text": "- _", "probability": 0.3}]}"#,
            r#"{"responses": [{"probability": 0.3, "text": "Sure"}]}"#,
        ] {
            let example = example.replace("\\u2026", "\u{2026}");
            assert!(!root.is_match(&example), "{example} should not match\n{g}");
        }
    }

    #[test]
    fn number_schema_carries_the_bounds() {
        let s = OutputConstraint::Number { min: 0.0, max: 2.0 }.json_schema();
        assert_eq!(s["properties"]["answer"], json!({"type": "number", "minimum": 0.0, "maximum": 2.0}));
    }
}
