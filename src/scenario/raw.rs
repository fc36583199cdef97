//! The scenario file as written (serde form), before validation.
//!
//! Fields that validation may reject are `Spanned`, so errors can name their line.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Default population: a directory of persona files (relative to the scenario file).
    #[serde(default)]
    pub population: Option<Spanned<String>>,
    #[serde(default)]
    pub defaults: RawDefaults,
    pub roles: Spanned<Vec<RawRole>>,
    pub turns: Spanned<RawTurns>,
    #[serde(default)]
    pub outcomes: Vec<RawOutcome>,
    /// Overrides of the built-in method instruction templates.
    #[serde(default)]
    pub prompts: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub model: Option<Spanned<String>>,
    pub temperature: Option<Spanned<f64>>,
    pub top_p: Option<Spanned<f64>>,
    pub max_tokens: Option<Spanned<i64>>,
    /// Send a JSON schema / grammar with list methods (default true).
    pub use_schema: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub id: Spanned<String>,
    /// Display name used in other agents' view of the conversation.
    pub name: Option<String>,
    /// System prompt template (minijinja) with persona slots.
    pub system: Spanned<String>,
    pub method: Option<Spanned<String>>,
    /// A number (fixed k) or "model-decided".
    pub k: Option<Spanned<toml::Value>>,
    /// Upper bound for model-decided k.
    pub k_max: Option<Spanned<i64>>,
    pub selection: Option<Spanned<String>>,
    /// The paper's τ: the threshold stated in the prompt ("responses each with a
    /// probability below τ"), which reaches into the tails of the distribution.
    pub tau: Option<Spanned<f64>>,
    /// A post-hoc floor: candidates below it are dropped before selection (keeping at least
    /// `min_keep`).
    pub min_prob: Option<Spanned<f64>>,
    pub min_keep: Option<Spanned<i64>>,
    /// Replies gathered per turn (N): the turn-level candidate budget.
    pub candidates: Option<Spanned<i64>>,
    /// Refused with a pointer to `tau` (its old name).
    pub prompt_tau: Option<Spanned<f64>>,
    pub temperature: Option<Spanned<f64>>,
    pub top_p: Option<Spanned<f64>>,
    pub max_tokens: Option<Spanned<i64>>,
    pub model: Option<Spanned<String>>,
    /// Where the persona comes from: "population", "paired", "none" or "id:PERSONA_ID".
    pub persona: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTurns {
    /// fixed | round-robin | random-neighbour | moderator
    pub policy: Option<Spanned<String>>,
    pub first: Option<Spanned<String>>,
    #[serde(default)]
    pub edges: Option<Vec<Spanned<Vec<Spanned<String>>>>>,
    pub moderator: Option<Spanned<String>>,
    pub max_turns: Spanned<i64>,
    #[serde(default)]
    pub stop_patterns: Vec<Spanned<String>>,
    /// Text shown to the first speaker before anyone has spoken.
    pub opening: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutcome {
    pub name: Spanned<String>,
    pub role: Spanned<String>,
    pub question: Spanned<String>,
    /// "number" or "category"
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[serde(default)]
    pub categories: Option<Spanned<Vec<String>>>,
    /// Fallback when the answer to the question cannot be used: first capture group (or the
    /// whole match) of the last match in the role's utterances.
    pub fallback_regex: Option<Spanned<String>>,
    /// A built-in fallback by name: "money" reads the last donation the role stated.
    pub fallback: Option<Spanned<String>>,
    /// For `fallback = "money"`: the payment "half" and "all of it" refer to (default `max`).
    pub payment: Option<Spanned<f64>>,
    /// The method that answers the question (default: the role's own).
    pub method: Option<Spanned<String>>,
    /// Also record what the role stated in the dialogue (the `stated` measure).
    pub stated: Option<bool>,
    /// The model that reads the stated measure (default: the role's own).
    pub stated_model: Option<Spanned<String>>,
}
