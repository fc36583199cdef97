//! What a tune minimises: one distance between simulated and human values of an outcome,
//! or a declared weighted sum of distances (which may include a linguistic one), read from
//! an evaluation, and recomputed on resampled people for the selection stability.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dialogue::events::Measure;
use crate::eval::metrics::{Evaluation, Metric, NumericOutcome};
use crate::stats::{ks_2samp, l1_density_pfg, l1_paired, wasserstein1, KsMode};

/// A distance an objective may weigh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// The two-sample KS statistic `D`.
    Ks,
    /// Mean `|simulated - real|` over simulated values paired with their person.
    L1Paired,
    /// The PersuasionForGood density L1 over 21 edges on [0, 2].
    L1Density,
    /// Wasserstein-1, in the outcome's units.
    Wasserstein,
    /// `|Distinct-1 simulated - Distinct-1 human|` of the tuned role (per dialogue, averaged).
    Distinct1,
}

impl std::str::FromStr for Distance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ks" => Distance::Ks,
            "l1_paired" => Distance::L1Paired,
            "l1_density" => Distance::L1Density,
            "wasserstein" | "wasserstein1" => Distance::Wasserstein,
            "distinct1" => Distance::Distinct1,
            other => {
                return Err(format!(
                    "`{other}`: expected ks, l1_paired, l1_density, wasserstein or distinct1"
                ))
            }
        })
    }
}

impl std::fmt::Display for Distance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Distance::Ks => "ks",
            Distance::L1Paired => "l1_paired",
            Distance::L1Density => "l1_density",
            Distance::Wasserstein => "wasserstein",
            Distance::Distinct1 => "distinct1",
        })
    }
}

/// The objective: lower is better.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    /// The outcome compared, `role.name`.
    pub outcome: String,
    /// Which measure of it: stated in the dialogue, or answered through the method.
    pub measure: Measure,
    /// Each distance's weight in the sum.
    pub weights: BTreeMap<Distance, f64>,
    /// The tuned role, whose language `distinct1` measures.
    pub role: String,
}

/// One candidate's objective on one set of people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// The weighted sum (`None` when a term could not be computed).
    pub value: Option<f64>,
    /// Its bootstrap interval, when the objective is a single distance with one.
    pub ci: Option<(f64, f64)>,
    /// Each term before weighting.
    pub terms: BTreeMap<Distance, Option<f64>>,
    /// Why the score is missing, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One person's simulated values and real value, for recomputing the objective on resampled
/// people.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonValues {
    /// Every simulated value of the person.
    pub simulated: Vec<f64>,
    /// The person's real value.
    pub human: f64,
}

impl Objective {
    /// Says what is minimised, for reports.
    pub fn describe(&self) -> String {
        let terms: Vec<String> = self.weights.iter().map(|(d, w)| format!("{w} × {d}")).collect();
        let measure = match self.measure {
            Measure::Stated => "the value stated in the dialogue",
            Measure::Answer => "the answer through the method",
        };
        format!("{} of `{}` ({measure}), lower is better", terms.join(" + "), self.outcome)
    }

    fn outcome<'a>(&self, e: &'a Evaluation) -> Option<&'a NumericOutcome> {
        e.numeric.iter().find(|o| o.key == self.outcome)
    }

    /// The objective read from an evaluation of one candidate.
    pub fn score(&self, e: &Evaluation) -> Score {
        let o = self.outcome(e);
        let cmp = o.and_then(|o| o.comparison.as_ref());
        let metric = |d: Distance| -> Option<&Metric> {
            let c = cmp?;
            Some(match d {
                Distance::Ks => &c.ks.statistic,
                Distance::L1Paired => &c.l1_paired,
                Distance::L1Density => &c.l1_density_pfg,
                Distance::Wasserstein => &c.wasserstein1,
                Distance::Distinct1 => return None,
            })
        };
        let distinct = || {
            let t = e.linguistic.iter().find(|t| t.role == self.role)?;
            let sim = t.simulated.distinct.first()?.per_dialogue.estimate()?;
            let human = t.human.as_ref()?.distinct.first()?.per_dialogue.estimate()?;
            Some((sim - human).abs())
        };
        let terms: BTreeMap<Distance, Option<f64>> = self
            .weights
            .keys()
            .map(|d| {
                (
                    *d,
                    if *d == Distance::Distinct1 {
                        distinct()
                    } else {
                        metric(*d).and_then(Metric::estimate)
                    },
                )
            })
            .collect();
        let value = terms.iter().map(|(d, v)| v.map(|v| v * self.weights[d])).sum::<Option<f64>>();
        let ci = match self.weights.iter().next() {
            Some((d, w)) if self.weights.len() == 1 => {
                metric(*d).and_then(Metric::ci).map(|(lo, hi)| (lo * w, hi * w))
            }
            _ => None,
        };
        let note = value.is_none().then(|| match (o, cmp) {
            (None, _) => format!("no values of `{}`", self.outcome),
            (Some(o), None) => {
                o.comparison_note.clone().unwrap_or_else(|| "no comparison with human data".into())
            }
            _ => "a term could not be computed (no human language for distinct1?)".into(),
        });
        Score { value, ci, terms, note }
    }

    /// The people behind `e`'s comparison, by id: each one's simulated values and real value.
    pub fn people(&self, e: &Evaluation) -> BTreeMap<String, PersonValues> {
        let mut out: BTreeMap<String, PersonValues> = BTreeMap::new();
        for p in self.outcome(e).map(|o| o.pairs.as_slice()).unwrap_or_default() {
            out.entry(p.population_id.clone())
                .or_insert_with(|| PersonValues { simulated: Vec::new(), human: p.human })
                .simulated
                .push(p.simulated);
        }
        out
    }

    /// The objective recomputed on `people` (resampled), with `distinct1` held at
    /// `fixed_distinct` (language is not resampled).
    pub(crate) fn score_people(&self, people: &[&PersonValues], fixed_distinct: Option<f64>) -> Option<f64> {
        let sim: Vec<f64> = people.iter().flat_map(|p| p.simulated.iter().copied()).collect();
        let human: Vec<f64> = people.iter().map(|p| p.human).collect();
        let (ps, ph): (Vec<f64>, Vec<f64>) =
            people.iter().flat_map(|p| p.simulated.iter().map(move |s| (*s, p.human))).unzip();
        self.weights
            .iter()
            .map(|(d, w)| {
                let v = match d {
                    Distance::Ks => ks_2samp(&sim, &human, KsMode::Auto).ok().map(|r| r.statistic),
                    Distance::L1Paired => l1_paired(&ps, &ph).ok(),
                    Distance::L1Density => l1_density_pfg(&sim, &human).ok(),
                    Distance::Wasserstein => wasserstein1(&sim, &human).ok(),
                    Distance::Distinct1 => fixed_distinct,
                };
                v.map(|v| v * w)
            })
            .sum()
    }
}
