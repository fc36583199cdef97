//! The shape a reply must take, described once and rendered both as a JSON schema (for
//! servers' `response_format`) and as a GBNF grammar (for the embedded model).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What a reply must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputConstraint {
    /// `{"responses": [{"text": str, "probability": number}, ...]}` with between
    /// `min_items` and `max_items` entries; `with_probability: false` drops the
    /// probability field (the `sequence` method).
    Candidates { min_items: usize, max_items: usize, with_probability: bool, with_reasoning: bool },
    /// `{"answer": number}` in `[min, max]`.
    Number { min: f64, max: f64 },
    /// `{"answer": one of the choices}`.
    Choice { choices: Vec<String> },
    /// A verbalized distribution over fixed options (survey items):
    /// `{"responses": [{"text": OPTION, "probability": number}, ...]}`, one entry per option.
    Distribution { options: Vec<String> },
}

impl OutputConstraint {
    /// A short name for `response_format.json_schema.name`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Candidates { .. } => "verbalized_candidates",
            Self::Number { .. } => "numeric_answer",
            Self::Choice { .. } => "categorical_answer",
            Self::Distribution { .. } => "option_distribution",
        }
    }

    /// JSON schema (strict-mode compatible: every object closed, every property required).
    pub fn json_schema(&self) -> Value {
        match self {
            Self::Candidates { min_items, max_items, with_probability, with_reasoning } => {
                let mut item_props = serde_json::Map::new();
                item_props.insert("text".into(), json!({"type": "string"}));
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
            Self::Distribution { options } => json!({
                "type": "object",
                "properties": {"responses": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string", "enum": options},
                            "probability": {"type": "number"},
                        },
                        "required": ["text", "probability"],
                        "additionalProperties": false,
                    },
                    "minItems": options.len(),
                    "maxItems": options.len(),
                }},
                "required": ["responses"],
                "additionalProperties": false,
            }),
        }
    }

    /// A GBNF grammar for llama.cpp that accepts exactly this shape (compact JSON with
    /// optional whitespace). Numbers are not range-checked by the grammar; the parser does.
    /// Strings stop at 600 characters: a small model otherwise rambles inside one string
    /// until `max_tokens` cuts the JSON short (seen in a 20-turn persuasion dialogue). The
    /// bound costs ~20 ms of grammar set-up per request.
    pub fn gbnf(&self) -> String {
        let common = r#"ws ::= [ \t\n]{0,4}
string ::= "\"" char{0,600} "\""
char ::= [^"\\\x00-\x1f] | "\\" ["\\/bfnrt]
number ::= "-"? ("0" | [1-9] [0-9]{0,6}) ("." [0-9]{1,6})?
"#;
        match self {
            Self::Candidates { min_items, max_items, with_probability, with_reasoning } => {
                let min = (*min_items).max(1);
                let max = (*max_items).max(min);
                let item = if *with_probability {
                    r#"item ::= "{" ws "\"text\"" ws ":" ws string ws "," ws "\"probability\"" ws ":" ws number ws "}""#
                } else {
                    r#"item ::= "{" ws "\"text\"" ws ":" ws string ws "}""#
                };
                let reasoning =
                    if *with_reasoning { r#""\"reasoning\"" ws ":" ws string ws "," ws "# } else { "" };
                let rest = max - 1;
                let min_rest = min - 1;
                format!(
                    "root ::= \"{{\" ws {reasoning}\"\\\"responses\\\"\" ws \":\" ws \"[\" ws item (ws \",\" ws item){{{min_rest},{rest}}} ws \"]\" ws \"}}\"\n{item}\n{common}"
                )
            }
            Self::Number { .. } => {
                format!("root ::= \"{{\" ws \"\\\"answer\\\"\" ws \":\" ws number ws \"}}\"\n{common}")
            }
            Self::Distribution { options } => {
                // One entry per option, in the given order, so every option gets a probability.
                let items: Vec<String> = options
                    .iter()
                    .map(|o| {
                        format!(
                            "\"{{\" ws \"\\\"text\\\"\" ws \":\" ws {} ws \",\" ws \"\\\"probability\\\"\" ws \":\" ws number ws \"}}\"",
                            gbnf_literal(o)
                        )
                    })
                    .collect();
                format!(
                    "root ::= \"{{\" ws \"\\\"responses\\\"\" ws \":\" ws \"[\" ws {} ws \"]\" ws \"}}\"\n{common}",
                    items.join(" ws \",\" ws ")
                )
            }
            Self::Choice { choices } => {
                let alts: Vec<String> = choices.iter().map(|c| gbnf_literal(c)).collect();
                format!(
                    "root ::= \"{{\" ws \"\\\"answer\\\"\" ws \":\" ws ({}) ws \"}}\"\n{common}",
                    alts.join(" | ")
                )
            }
        }
    }
}

/// A GBNF literal matching the JSON string encoding of `s`.
fn gbnf_literal(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    format!("{json:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_schema_bounds_items() {
        let c = OutputConstraint::Candidates {
            min_items: 5,
            max_items: 5,
            with_probability: true,
            with_reasoning: false,
        };
        let s = c.json_schema();
        assert_eq!(s["properties"]["responses"]["minItems"], 5);
        assert_eq!(s["properties"]["responses"]["items"]["required"], json!(["text", "probability"]));
    }

    #[test]
    fn grammar_repeats_items_between_bounds() {
        let c = OutputConstraint::Candidates {
            min_items: 1,
            max_items: 8,
            with_probability: true,
            with_reasoning: false,
        };
        let g = c.gbnf();
        assert!(g.contains("{0,7}"), "{g}");
        let c = OutputConstraint::Choice { choices: vec!["yes".into(), "a \"b\"".into()] };
        assert!(c.gbnf().contains(r#""\"yes\"""#), "{}", c.gbnf());
    }

    #[test]
    fn distribution_lists_every_option() {
        let c = OutputConstraint::Distribution { options: vec!["Very safe".into(), "Refused".into()] };
        let s = c.json_schema();
        assert_eq!(s["properties"]["responses"]["minItems"], 2);
        assert_eq!(s["properties"]["responses"]["items"]["properties"]["text"]["enum"][1], "Refused");
        let g = c.gbnf();
        assert!(g.contains(r#""\"Very safe\"""#), "{g}");
        assert!(g.starts_with("root ::= "), "{g}");
    }
}
