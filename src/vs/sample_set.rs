//! N responses to one prompt per method, drawn under Table 1's call budget: what `vsim
//! sample --json` writes and `vsim stats text` reads back, so a diversity comparison of
//! methods can be repeated from the file alone (every call's raw reply and seed is kept).

use serde::{Deserialize, Serialize};

use super::{CallRecord, Candidate, Choice, KSpec, Method};
use crate::backend::Usage;

/// One prompt sampled with one or more methods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleSet {
    /// The user prompt.
    pub prompt: String,
    /// The system prompt.
    pub system: String,
    /// The model spec sampled.
    pub model: String,
    /// Responses asked for per method (N).
    pub n: usize,
    /// The seed of every method's first call.
    pub seed: u64,
    /// One entry per method, in the order asked for.
    pub runs: Vec<MethodSample>,
}

/// The N responses of one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSample {
    /// The method.
    pub method: Method,
    /// Candidates asked for per call (1 for one-reply methods).
    pub k: KSpec,
    /// The paper's τ stated in the prompt, if any.
    #[serde(default)]
    pub tau: Option<f64>,
    /// The N responses, in the order they were generated.
    pub candidates: Vec<Candidate>,
    /// Every backend call, in order (⌈N/k⌉ for list methods, N for one-reply methods).
    pub calls: Vec<CallRecord>,
    /// Tokens all the calls used.
    pub usage: Usage,
    /// The model's reasoning, for methods that ask for it.
    #[serde(default)]
    pub reasoning: Option<String>,
    /// The reply chosen by the selection rule, when one was chosen.
    #[serde(default)]
    pub choice: Option<Choice>,
}

impl MethodSample {
    /// The response texts, in order.
    pub fn responses(&self) -> Vec<&str> {
        self.candidates.iter().map(|c| c.text.as_str()).collect()
    }
}

impl SampleSet {
    /// Reads a sample file written by [`SampleSet::to_json`].
    pub fn from_json(text: &str) -> Result<SampleSet, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The file's text (pretty JSON).
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and lists always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
