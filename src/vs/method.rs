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
