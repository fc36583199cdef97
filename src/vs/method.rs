//! Prompt methods (the paper's Table 1) and how many candidates to ask for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A prompt method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// One reply per call.
    Direct,
    /// Reasoning, then one reply, per call.
    Cot,
    /// k replies in one call, without probabilities.
    Sequence,
    /// One reply per call, asking for another in the same conversation each time.
    MultiTurn,
    /// k replies in one call, each with a verbalized probability.
    VsStandard,
    /// Reasoning, then k replies with verbalized probabilities, in one call.
    VsCot,
    /// k replies with verbalized probabilities per call, asking for k more in the same
    /// conversation each time.
    VsMulti,
}

/// One row of the paper's Table 1: what a method asks a model for, and how. Everything
/// the gathering engine, the parser and the output constraints know of a method is read
/// from here; adding a method means a [`Method`] variant, a row of [`Method::TABLE`] and
/// its prompt templates (`vs::prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSpec {
    /// The method.
    pub method: Method,
    /// Its name in specs and on the command line (`vs-standard`).
    pub name: &'static str,
    /// Asks for k items in one call (else one).
    pub list: bool,
    /// Each item carries a verbalized probability.
    pub probabilities: bool,
    /// Reasoning comes first, then the reply (`cot`) or the list (`vs-cot`).
    pub reasoning: bool,
    /// Calls after the first continue one conversation ("another", "k more"); otherwise
    /// every call is independent.
    pub continues: bool,
    /// Calls' worth of items one ask gathers when nothing sets N: Table 1's turn-level
    /// budget (two for the methods that continue a conversation).
    pub default_calls: usize,
}

impl Method {
    /// Every method, in the paper's order.
    pub const ALL: [Method; 7] = [
        Method::Direct,
        Method::Cot,
        Method::Sequence,
        Method::MultiTurn,
        Method::VsStandard,
        Method::VsCot,
        Method::VsMulti,
    ];

    /// Table 1, one row per method, in the order of [`Method::ALL`].
    pub const TABLE: [MethodSpec; 7] = [
        row(Method::Direct, "direct", false, false, false, false, 1),
        row(Method::Cot, "cot", false, false, true, false, 1),
        row(Method::Sequence, "sequence", true, false, false, false, 1),
        row(Method::MultiTurn, "multi-turn", false, false, false, true, 2),
        row(Method::VsStandard, "vs-standard", true, true, false, false, 1),
        row(Method::VsCot, "vs-cot", true, true, true, false, 1),
        row(Method::VsMulti, "vs-multi", true, true, false, true, 2),
    ];

    /// The method's row of [`Method::TABLE`].
    pub fn spec(self) -> &'static MethodSpec {
        &Self::TABLE[self as usize]
    }

    /// The method's name as written in specs and on the command line (`vs-standard`).
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// True for the methods that ask for k candidates in one call.
    pub fn asks_for_list(self) -> bool {
        self.spec().list
    }

    /// True for the methods whose candidates carry verbalized probabilities.
    pub fn is_verbalized(self) -> bool {
        self.spec().probabilities
    }

    /// True for the methods that reason before they answer (`cot`, `vs-cot`).
    pub fn reasons_first(self) -> bool {
        self.spec().reasoning
    }

    /// True for the methods whose calls after the first continue one conversation
    /// ("another", "k more"); the others make independent calls.
    pub fn continues_conversation(self) -> bool {
        self.spec().continues
    }

    /// Calls for `n` items with `k` per call (Table 1): n for the one-reply methods,
    /// ceil(n / k) for the list methods.
    pub fn calls_for(self, n: usize, k: usize) -> usize {
        if self.asks_for_list() {
            n.div_ceil(k.max(1))
        } else {
            n
        }
    }

    /// Items gathered per ask (N) when nothing sets it, the turn-level budget of Table 1:
    /// one call's worth for `direct`, `cot` (1) and `sequence`, `vs-standard`, `vs-cot` (k,
    /// or the bound of a model-decided k), and two calls' worth for the methods that
    /// continue a conversation: `multi-turn` (2: a reply, then "another") and `vs-multi`
    /// (2k: k, then "k more").
    pub fn default_items(self, k: KSpec) -> usize {
        let per_call = if self.asks_for_list() { k.max() } else { 1 };
        self.spec().default_calls * per_call
    }
}

/// A row of [`Method::TABLE`], in its column order.
const fn row(
    method: Method,
    name: &'static str,
    list: bool,
    probabilities: bool,
    reasoning: bool,
    continues: bool,
    default_calls: usize,
) -> MethodSpec {
    MethodSpec { method, name, list, probabilities, reasoning, continues, default_calls }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown method name; the message lists the valid ones.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown method `{name}`; valid methods: {valid}", name = .0, valid = Method::TABLE.map(|m| m.name).join(", "))]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Method::TABLE
            .iter()
            .find(|m| m.name == norm)
            .map(|m| m.method)
            .ok_or_else(|| UnknownMethod(s.to_string()))
    }
}

/// How many candidates a list method asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum KSpec {
    /// "Generate k responses".
    Fixed {
        /// Candidates asked for.
        k: usize,
    },
    /// "Generate all plausible responses" (at most `max`, for the grammar and the parser).
    ModelDecided {
        /// Most candidates accepted.
        max: usize,
    },
}

impl KSpec {
    /// Parses a k value: a positive integer (1 to 100) or "model-decided" (also "model",
    /// "auto", "all") with the bound `k_max`.
    pub fn parse(value: &str, k_max: usize) -> Result<KSpec, String> {
        let v = value.trim().to_ascii_lowercase();
        if matches!(v.as_str(), "model-decided" | "model" | "auto" | "all") {
            return Ok(KSpec::ModelDecided { max: k_max.max(1) });
        }
        match v.parse::<i64>() {
            Ok(k) if (1..=100).contains(&k) => Ok(KSpec::Fixed { k: k as usize }),
            Ok(k) => Err(format!("k must be between 1 and 100, got {k}")),
            Err(_) => Err(format!("expected a positive integer or \"model-decided\", got `{value}`")),
        }
    }

    /// The upper bound on candidates.
    pub fn max(self) -> usize {
        match self {
            KSpec::Fixed { k } => k,
            KSpec::ModelDecided { max } => max,
        }
    }
    /// The lower bound on candidates.
    pub fn min(self) -> usize {
        match self {
            KSpec::Fixed { k } => k,
            KSpec::ModelDecided { .. } => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_row_per_method_and_gives_table_1s_budgets() {
        for (i, m) in Method::ALL.into_iter().enumerate() {
            assert_eq!(m.spec().method, m, "row {i} is another method's");
            assert_eq!(m.as_str().parse::<Method>().unwrap(), m);
        }
        let k = KSpec::Fixed { k: 5 };
        let budget: Vec<(usize, usize)> =
            Method::ALL.iter().map(|m| (m.default_items(k), m.calls_for(m.default_items(k), 5))).collect();
        // direct, cot, sequence, multi-turn, vs-standard, vs-cot, vs-multi
        assert_eq!(budget, [(1, 1), (1, 1), (5, 1), (2, 2), (5, 1), (5, 1), (10, 2)]);
        let err = "vs-fancy".parse::<Method>().unwrap_err().to_string();
        assert!(err.contains("`vs-fancy`") && err.contains("direct, cot, sequence"), "{err}");
    }
}
