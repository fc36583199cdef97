//! Seeded selection among candidates.
//!
//! A rule is an optional probability floor `min_prob` (drop candidates below it, but
//! keep at least `min_keep`, the most probable ones) followed by one of: weighted by the
//! verbalized probabilities, uniform over the eligible candidates, or argmax. Every random
//! choice is one draw `u` in [0, 1) from the caller's RNG, recorded in the [`Choice`], so a
//! turn can be replayed from the transcript alone.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::Candidate;

/// How one candidate is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// Probability-weighted by the verbalized probabilities.
    #[default]
    Weighted,
    /// Uniform over the eligible candidates (also accepted as `random`).
    #[serde(alias = "random")]
    Uniform,
    /// The most probable candidate, lowest index on ties; no draw.
    Argmax,
}

impl Selection {
    /// Every selection.
    pub const ALL: [Selection; 3] = [Selection::Weighted, Selection::Uniform, Selection::Argmax];

    /// The selection's name as written in specs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Selection::Weighted => "weighted",
            Selection::Uniform => "uniform",
            Selection::Argmax => "argmax",
        }
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown selection name; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown selection `{0}`; valid selections: weighted, uniform (alias: random), argmax")]
pub struct UnknownSelection(pub String);

impl FromStr for Selection {
    type Err = UnknownSelection;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "weighted" => Ok(Selection::Weighted),
            "uniform" | "random" => Ok(Selection::Uniform),
            "argmax" => Ok(Selection::Argmax),
            _ => Err(UnknownSelection(s.to_string())),
        }
    }
}

/// The full rule: selection, an optional post-hoc probability floor and the minimum kept
/// after it. The floor is not the paper's τ: τ is stated in the prompt ("responses each with
/// a probability below τ") and reaches into the tails, while `min_prob` drops candidates
/// after the fact. Transcripts written before the rename call the floor `tau`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SelectionRule {
    /// How one of the eligible candidates is chosen.
    pub selection: Selection,
    /// Probability floor in [0, 1]: candidates below it are not eligible.
    #[serde(default, alias = "tau", skip_serializing_if = "Option::is_none")]
    pub min_prob: Option<f64>,
    /// Fewest candidates kept eligible, the most probable, whatever the floor.
    #[serde(default = "default_min_keep")]
    pub min_keep: usize,
}

fn default_min_keep() -> usize {
    1
}

impl Default for SelectionRule {
    fn default() -> Self {
        Self::new(Selection::Weighted)
    }
}

/// A rule that cannot be applied as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// `min_prob` is not a number in [0, 1].
    #[error("min_prob must be a number in [0, 1], got {0}")]
    MinProbOutOfRange(f64),
    /// `min_keep` is 0.
    #[error("min_keep must be at least 1")]
    MinKeepZero,
}

/// Why [`try_select`] could not choose.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectError {
    /// There were no candidates.
    #[error("no candidates to choose from")]
    NoCandidates,
    /// The rule is invalid.
    #[error(transparent)]
    Rule(#[from] RuleError),
}

impl SelectionRule {
    /// `selection` with no probability floor and `min_keep` 1.
    pub fn new(selection: Selection) -> Self {
        Self { selection, min_prob: None, min_keep: 1 }
    }

    /// The same rule with a probability floor.
    pub fn with_min_prob(mut self, min_prob: f64, min_keep: usize) -> Self {
        self.min_prob = Some(min_prob);
        self.min_keep = min_keep;
        self
    }

    /// Checks `min_prob` in [0, 1] and `min_keep` ≥ 1; call it where rules are read from users.
    pub fn validate(&self) -> Result<(), RuleError> {
        if let Some(p) = self.min_prob {
            if !(0.0..=1.0).contains(&p) {
                return Err(RuleError::MinProbOutOfRange(p));
            }
        }
        if self.min_keep == 0 {
            return Err(RuleError::MinKeepZero);
        }
        Ok(())
    }
}

/// What was chosen and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Index into the candidates as given.
    pub index: usize,
    /// The uniform draw in [0, 1) (`None` for argmax).
    pub draw: Option<f64>,
    /// Indices (ascending) that passed the `min_prob` floor.
    pub eligible: Vec<usize>,
    /// The rule applied.
    pub rule: SelectionRule,
}

/// Choose one of `candidates` by `rule`, drawing at most one number from `rng`.
///
/// Never panics: a rule that fails [`SelectionRule::validate`] is applied as leniently as
/// possible (a NaN floor is ignored, the floor is clamped to [0, 1], `min_keep` 0 counts as 1), and
/// an empty `candidates` gives index 0 with no eligible candidates; use [`try_select`] to
/// have those cases reported instead. Weighted selection over eligible candidates whose
/// probabilities are all zero (or not finite) falls back to uniform.
pub fn select<R: Rng + ?Sized>(candidates: &[Candidate], rule: &SelectionRule, rng: &mut R) -> Choice {
    let eligible = eligible(candidates, rule);
    if eligible.is_empty() {
        return Choice { index: 0, draw: None, eligible, rule: *rule };
    }
    let (index, draw) = match rule.selection {
        Selection::Argmax => {
            let best = eligible
                .iter()
                .copied()
                .fold(None::<usize>, |best, i| match best {
                    Some(b) if weight(&candidates[b]) >= weight(&candidates[i]) => Some(b),
                    _ => Some(i),
                })
                .unwrap_or(eligible[0]);
            (best, None)
        }
        Selection::Uniform => {
            let u = draw_unit(rng);
            (eligible[uniform_pos(u, eligible.len())], Some(u))
        }
        Selection::Weighted => {
            let u = draw_unit(rng);
            let total: f64 = eligible.iter().map(|&i| weight(&candidates[i])).sum();
            if total > 0.0 && total.is_finite() {
                let target = u * total;
                let mut cum = 0.0;
                let mut chosen = None;
                for &i in &eligible {
                    let w = weight(&candidates[i]);
                    cum += w;
                    if w > 0.0 && target < cum {
                        chosen = Some(i);
                        break;
                    }
                }
                // Round-off can leave `target` at the very top: take the last positive one.
                let last_positive = eligible.iter().rev().copied().find(|&i| weight(&candidates[i]) > 0.0);
                (chosen.or(last_positive).unwrap_or(eligible[0]), Some(u))
            } else {
                (eligible[uniform_pos(u, eligible.len())], Some(u))
            }
        }
    };
    Choice { index, draw, eligible, rule: *rule }
}

/// [`select`], reporting an invalid rule or empty candidates as errors.
pub fn try_select<R: Rng + ?Sized>(
    candidates: &[Candidate],
    rule: &SelectionRule,
    rng: &mut R,
) -> Result<Choice, SelectError> {
    rule.validate()?;
    if candidates.is_empty() {
        return Err(SelectError::NoCandidates);
    }
    Ok(select(candidates, rule, rng))
}

/// The indices (ascending) that pass the `min_prob` floor, at least `min_keep` of them.
pub fn eligible(candidates: &[Candidate], rule: &SelectionRule) -> Vec<usize> {
    let n = candidates.len();
    let Some(floor) = rule.min_prob.filter(|t| !t.is_nan()).map(|t| t.clamp(0.0, 1.0)) else {
        return (0..n).collect();
    };
    let passing = candidates.iter().filter(|c| weight(c) >= floor).count();
    let keep = passing.max(rule.min_keep.max(1)).min(n);
    // Most probable first, ties by index; those at or above the floor are exactly the first `passing`.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| weight(&candidates[b]).total_cmp(&weight(&candidates[a])).then(a.cmp(&b)));
    let mut kept: Vec<usize> = order.into_iter().take(keep).collect();
    kept.sort_unstable();
    kept
}

/// A candidate's probability as a usable weight (NaN, infinite and negative count as 0).
fn weight(c: &Candidate) -> f64 {
    if c.probability.is_finite() && c.probability > 0.0 {
        c.probability
    } else {
        0.0
    }
}

fn draw_unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    rng.random::<f64>()
}

fn uniform_pos(u: f64, n: usize) -> usize {
    ((u * n as f64).floor() as usize).min(n - 1)
}
