//! The scenario file as written (serde form), before validation.
//!
//! Fields that validation may reject are `Spanned`, so errors can name their line.

use serde::Deserialize;
use toml::Spanned;

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    /// The scenario's name.
    pub name: Spanned<String>,
    /// What the scenario is about, in words.
    #[serde(default)]
    pub description: Option<String>,
    /// Default population: a directory of persona files (relative to the scenario file).
    #[serde(default)]
    pub population: Option<Spanned<String>>,
    /// `[defaults]`: settings of every role that does not set its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// `[[roles]]`, in order.
    pub roles: Spanned<Vec<RawRole>>,
    /// `[turns]`: the turn graph and limits.
    pub turns: Spanned<RawTurns>,
    /// `[[outcomes]]`, in order.
    #[serde(default)]
    pub outcomes: Vec<RawOutcome>,
    /// Overrides of the built-in method instruction templates.
    #[serde(default)]
    pub prompts: Option<toml::Value>,
}

/// The `[defaults]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    /// Model spec of roles that name none.
    pub model: Option<Spanned<String>>,
    /// Sampling temperature, in [0, 2].
    pub temperature: Option<Spanned<f64>>,
    /// Nucleus-sampling mass, in [0, 1].
    pub top_p: Option<Spanned<f64>>,
    /// Cap on each reply's length, in tokens.
    pub max_tokens: Option<Spanned<i64>>,
    /// Send a JSON schema / grammar with list methods (default true).
    pub use_schema: Option<bool>,
}

/// One `[[roles]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    /// The role's id, unique in the scenario.
    pub id: Spanned<String>,
    /// Display name used in other agents' view of the conversation.
    pub name: Option<String>,
    /// System prompt template (minijinja) with persona slots.
    pub system: Spanned<String>,
    /// The prompting method's name.
    pub method: Option<Spanned<String>>,
    /// A number (fixed k) or "model-decided".
    pub k: Option<Spanned<toml::Value>>,
    /// Upper bound for model-decided k.
    pub k_max: Option<Spanned<i64>>,
    /// The selection's name: "weighted", "uniform" or "argmax".
    pub selection: Option<Spanned<String>>,
    /// The paper's τ: the threshold stated in the prompt ("responses each with a
    /// probability below τ"), which reaches into the tails of the distribution.
    pub tau: Option<Spanned<f64>>,
    /// A post-hoc floor: candidates below it are dropped before selection (keeping at least
    /// `min_keep`).
    pub min_prob: Option<Spanned<f64>>,
    /// Fewest candidates `min_prob` leaves.
    pub min_keep: Option<Spanned<i64>>,
    /// Replies gathered per turn (N): the turn-level candidate budget.
    pub candidates: Option<Spanned<i64>>,
    /// Refused with a pointer to `tau` (its old name).
    pub prompt_tau: Option<Spanned<f64>>,
    /// Sampling temperature, in [0, 2].
    pub temperature: Option<Spanned<f64>>,
    /// Nucleus-sampling mass, in [0, 1].
    pub top_p: Option<Spanned<f64>>,
    /// Cap on each reply's length, in tokens.
    pub max_tokens: Option<Spanned<i64>>,
    /// The role's model spec.
    pub model: Option<Spanned<String>>,
    /// Where the persona comes from: "population", "paired", "none" or "id:PERSONA_ID".
    pub persona: Option<Spanned<String>>,
    /// Which of the persona's attributes the prompt shows (default: all).
    pub persona_attributes: Option<Spanned<Vec<String>>>,
}

/// The `[turns]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTurns {
    /// fixed | round-robin | random-neighbour | moderator
    pub policy: Option<Spanned<String>>,
    /// Id of the role that speaks first.
    pub first: Option<Spanned<String>>,
    /// `[from, to]` role-id pairs: `to` may speak after `from`.
    #[serde(default)]
    pub edges: Option<Vec<Spanned<Vec<Spanned<String>>>>>,
    /// Id of the moderating role, for the `moderator` policy.
    pub moderator: Option<Spanned<String>>,
    /// The dialogue ends after this many turns.
    pub max_turns: Spanned<i64>,
    /// Regular expressions; an utterance matching one ends the dialogue.
    #[serde(default)]
    pub stop_patterns: Vec<Spanned<String>>,
    /// Text shown to the first speaker before anyone has spoken.
    pub opening: Option<String>,
}

/// One `[[outcomes]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutcome {
    /// The outcome's name.
    pub name: Spanned<String>,
    /// Id of the role asked.
    pub role: Spanned<String>,
    /// The question, asked after the dialogue.
    pub question: Spanned<String>,
    /// "number" or "category"
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// Smallest valid number.
    pub min: Option<f64>,
    /// Largest valid number.
    pub max: Option<f64>,
    /// The valid categories, for `type = "category"`.
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
