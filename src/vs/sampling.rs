//! How a speaker gathers items and picks one: a method, k, τ, the selection rule and how
//! many items an ask gathers. Dialogue roles and survey respondents hold one each, so both
//! take every method and both are validated by the one [`Sampling::check`].

use serde::Serialize;

use super::{KSpec, Method, Selection, SelectionRule};

/// k when a list method's file gives none.
pub(crate) const DEFAULT_K: usize = 5;

/// A speaker's sampling settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sampling {
    /// The prompting method.
    pub method: Method,
    /// Candidates asked for per call (1 for one-reply methods).
    pub k: KSpec,
    /// How one candidate is chosen.
    pub rule: SelectionRule,
    /// The paper's τ, stated in the prompt ("responses each with a probability below τ").
    pub tau: Option<f64>,
    /// Items gathered per ask (N) when set; see [`Sampling::items`] for the default.
    pub candidates: Option<usize>,
}

impl Sampling {
    /// `method` with its defaults: k = 5 for list methods (1 otherwise), weighted selection
    /// for methods with probabilities (uniform otherwise), no τ, no floor.
    pub fn new(method: Method) -> Self {
        let k = KSpec::Fixed { k: if method.asks_for_list() { DEFAULT_K } else { 1 } };
        let selection = if method.is_verbalized() { Selection::Weighted } else { Selection::Uniform };
        Self {
            method,
            k,
            rule: SelectionRule { selection, min_prob: None, min_keep: 1 },
            tau: None,
            candidates: None,
        }
    }

    /// Items gathered per ask (N), the turn-level budget of Table 1: `candidates` when set,
    /// else [`Method::default_items`].
    pub fn items(&self) -> usize {
        self.candidates.unwrap_or_else(|| self.method.default_items(self.k))
    }

    /// Switches to `method` (a command-line or sweep override), dropping what does not apply
    /// to it: k for one-reply methods (and the default k of 5 for a list method coming from
    /// one), τ and `min_prob` and weighted selection for methods without probabilities, and
    /// an explicit `candidates` (the new method's default applies).
    pub fn set_method(&mut self, method: Method) {
        let was_list = self.method.asks_for_list();
        let was_verbalized = self.method.is_verbalized();
        self.method = method;
        if !method.asks_for_list() {
            self.k = KSpec::Fixed { k: 1 };
        } else if !was_list {
            self.k = KSpec::Fixed { k: DEFAULT_K };
        }
        if method.is_verbalized() && !was_verbalized && self.rule.selection == Selection::Uniform {
            // The default for methods with probabilities.
            self.rule.selection = Selection::Weighted;
        }
        if !method.is_verbalized() {
            self.tau = None;
            self.rule.min_prob = None;
            self.rule.selection = Selection::Uniform;
        }
        self.candidates = None;
    }

    /// The combinations of method, k, τ, `min_prob`, selection and `candidates` that make no
    /// sense, as `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let m = self.method;
        if !m.asks_for_list() && self.k != (KSpec::Fixed { k: 1 }) {
            return Err((
                "k",
                format!("`{m}` asks for one reply per call; set `candidates` for several replies per turn"),
            ));
        }
        if !m.is_verbalized() && self.tau.is_some() {
            return Err((
                "tau",
                format!("τ is stated in the prompts of vs-standard, vs-cot and vs-multi; `{m}` asks for no probabilities"),
            ));
        }
        if !m.is_verbalized() && self.rule.min_prob.is_some() {
            return Err(("min_prob", format!("`{m}` gives no probabilities to filter by")));
        }
        if !m.is_verbalized() && self.rule.selection != Selection::Uniform && self.items() > 1 {
            return Err((
                "selection",
                format!(
                    "`{m}` gives no probabilities, so {} selection has nothing to weigh: use \"uniform\"",
                    self.rule.selection
                ),
            ));
        }
        if let KSpec::ModelDecided { .. } = self.k {
            if m == Method::VsMulti {
                return Err(("k", "vs-multi asks for \"k more\" in each follow-up: give a fixed k".into()));
            }
            if self.candidates.is_some() {
                return Err((
                    "candidates",
                    "with a model-decided k a turn is one call, so `candidates` cannot be met: give a fixed k".into(),
                ));
            }
        }
        Ok(())
    }
}
