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

    /// The method's name as written in specs and on the command line (`vs-standard`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Direct => "direct",
            Method::Cot => "cot",
            Method::Sequence => "sequence",
            Method::MultiTurn => "multi-turn",
            Method::VsStandard => "vs-standard",
            Method::VsCot => "vs-cot",
            Method::VsMulti => "vs-multi",
        }
    }

    /// True for the methods that ask for k candidates in one call.
    pub fn asks_for_list(self) -> bool {
        matches!(self, Method::Sequence | Method::VsStandard | Method::VsCot | Method::VsMulti)
    }

    /// True for the methods whose candidates carry verbalized probabilities.
    pub fn is_verbalized(self) -> bool {
        matches!(self, Method::VsStandard | Method::VsCot | Method::VsMulti)
    }

    /// True for the methods whose calls after the first continue one conversation
    /// ("another", "k more"); the others make independent calls.
    pub fn continues_conversation(self) -> bool {
        matches!(self, Method::MultiTurn | Method::VsMulti)
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
        match self {
            Method::Direct | Method::Cot => 1,
            Method::MultiTurn => 2,
            Method::Sequence | Method::VsStandard | Method::VsCot => k.max(),
            Method::VsMulti => 2 * k.max(),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown method name; the message lists the valid ones.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown method `{0}`; valid methods: direct, cot, sequence, multi-turn, vs-standard, vs-cot, vs-multi"
)]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Method::ALL.into_iter().find(|m| m.as_str() == norm).ok_or_else(|| UnknownMethod(s.to_string()))
    }
}

/// How many candidates a list method asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
