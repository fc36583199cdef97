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

/// The sampling settings a front end takes as text (the CLI's `vsim sample` flags, the
/// Python module's `sample` keywords), checked in one place by [`SampleSettings::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSettings<'a> {
    /// The method's name (`vs-standard`, `direct`, ...).
    pub method: &'a str,
    /// Candidates per call: a number, or `model-decided`.
    pub k: &'a str,
    /// The most candidates a model-decided k may give.
    pub k_max: usize,
    /// The selection rule's name (`weighted`, `uniform`, `argmax`).
    pub selection: &'a str,
    /// The probability floor of the selection rule.
    pub min_prob: Option<f64>,
    /// Candidates the floor always keeps.
    pub min_keep: usize,
    /// The paper's τ.
    pub tau: Option<f64>,
    /// Responses to draw (`None`: the method's default).
    pub n: Option<usize>,
}

/// A sampling setting that cannot be used, named as the user wrote it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct SettingError {
    /// The setting (`k`, `tau`, ...).
    pub setting: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl SampleSettings<'_> {
    /// The method, k and selection rule these settings name, or the first one that is
    /// unusable.
    pub fn check(&self) -> Result<(Method, KSpec, super::SelectionRule), SettingError> {
        let bad = |setting: &'static str, reason: String| SettingError { setting, reason };
        let method: Method =
            self.method.parse().map_err(|e: super::method::UnknownMethod| bad("method", e.to_string()))?;
        if self.k.trim() == "0" {
            return Err(bad("k", "must be at least 1 (or \"model-decided\")".into()));
        }
        if self.k_max == 0 {
            return Err(bad("k_max", "must be at least 1".into()));
        }
        let k = KSpec::parse(self.k, self.k_max).map_err(|e| bad("k", e))?;
        let selection = self
            .selection
            .parse()
            .map_err(|e: super::select::UnknownSelection| bad("selection", e.to_string()))?;
        for (setting, value) in [("tau", self.tau), ("min_prob", self.min_prob)] {
            if let Some(v) = value.filter(|v| !(0.0..=1.0).contains(v)) {
                return Err(bad(setting, format!("must be within [0, 1], got {v}")));
            }
        }
        if self.min_keep == 0 {
            return Err(bad("min_keep", "must be at least 1".into()));
        }
        if self.n == Some(0) {
            return Err(bad("n", "must be at least 1".into()));
        }
        Ok((method, k, super::SelectionRule { selection, min_prob: self.min_prob, min_keep: self.min_keep }))
    }
}

/// One prompt to draw N responses for with one method: what `vsim sample` and the Python
/// module's `sample` ask.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRequest {
    /// The user prompt.
    pub prompt: String,
    /// The system prompt.
    pub system: String,
    /// The prompting method.
    pub method: super::Method,
    /// Candidates per call for list methods (one-reply methods ask for one).
    pub k: KSpec,
    /// The paper's τ, stated in the prompt of VS methods (ignored by the others).
    pub tau: Option<f64>,
    /// Sampling temperature (default: the backend's).
    pub temperature: Option<f32>,
    /// Completion token limit per call.
    pub max_tokens: Option<u32>,
    /// The seed every call's seed and the choice derive from.
    pub seed: u64,
}

impl SampleRequest {
    /// The generator's request: k only for list methods, τ only for VS methods.
    pub(crate) fn generate_request(&self) -> super::GenerateRequest {
        let method = self.method;
        super::GenerateRequest {
            messages: vec![
                crate::backend::Message::system(self.system.clone()),
                crate::backend::Message::user(self.prompt.clone()),
            ],
            method,
            k: if method.asks_for_list() { self.k } else { KSpec::Fixed { k: 1 } },
            tau: self.tau.filter(|_| method.is_verbalized()),
            temperature: self.temperature,
            top_p: None,
            max_tokens: self.max_tokens,
            seed: self.seed,
            use_schema: true,
            shape: super::ItemShape::Text,
        }
    }

    /// Responses a dialogue turn gathers with this method (the default N).
    pub fn default_n(&self) -> usize {
        self.method.default_items(self.generate_request().k)
    }

    /// Draws `n` responses under Table 1's call budget.
    pub async fn draw(
        &self,
        model: &dyn crate::backend::ChatModel,
        n: usize,
    ) -> Result<MethodSample, super::generate::GenerateError> {
        let req = self.generate_request();
        let g = super::Generator::default().generate_n(model, &req, n).await?;
        Ok(MethodSample {
            method: req.method,
            k: req.k,
            tau: req.tau,
            candidates: g.candidates,
            calls: g.calls,
            usage: g.usage,
            reasoning: g.reasoning,
            choice: None,
        })
    }
}

impl MethodSample {
    /// Chooses one response by `rule` with the request's seed (the same draw as `vsim
    /// sample`), records it and returns it; none when there are no responses.
    pub fn choose(&mut self, rule: &super::SelectionRule, seed: u64) -> Option<Choice> {
        if self.candidates.is_empty() {
            return None;
        }
        let mut rng = crate::seed::rng(crate::seed::derive_named(seed, "select"));
        let choice = super::select(&self.candidates, rule, &mut rng);
        self.choice = Some(choice.clone());
        Some(choice)
    }
}
