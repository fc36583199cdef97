//! Per-person calibration of a numeric outcome, from replicates: is the simulation right
//! about individuals, and does its spread come from who people are?
//!
//! A run with replicates simulates each person several times; each person has one real
//! value. For every person with a real value and at least two simulated values:
//! - the probability integral transform (PIT) of the real value within the person's own
//!   simulated values, randomised for ties so that it is exactly uniform when the real value
//!   behaves like one more replicate;
//! - whether the real value lies in the central 50% and 90% intervals of those values;
//! - over all such people, a split of the simulated variance into between-person and
//!   within-person parts, beside the variance of the same people's real values.
//!
//! Every definition that is a choice is written into [`Calibration`] next to its number.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::compute::{mean, Boot};
use super::metrics::{Metric, Pair};
use crate::stats::kolmogorov::kstwo_sf;

/// Bins of the PIT histogram (equal widths on [0, 1]).
pub(crate) const PIT_BINS: usize = 10;

/// The central intervals whose coverage is reported.
pub const COVERAGE_LEVELS: [f64; 2] = [0.5, 0.9];

const PIT_DEFINITION: &str =
    "randomised rank PIT: u = (#{s < y} + V * (#{s = y} + 1)) / (R + 1), with s the \
    person's R simulated values, y the real value and V ~ U(0, 1) from the evaluation seed; exactly uniform \
    when y is exchangeable with the simulated values";
const UNIFORMITY_DEFINITION: &str = "one-sample Kolmogorov-Smirnov test of the PIT values against U(0, 1), \
    exact two-sided p-value";
const COVERAGE_DEFINITION: &str = "the real value lies in [q((1 - level) / 2), q((1 + level) / 2)] of the \
    person's simulated values, closed, with linearly interpolated sample quantiles (type 7); with few \
    replicates the intervals are coarse";
const VARIANCE_DEFINITION: &str = "law of total variance over the pooled simulated values, with 1/n \
    variances: total = within (the per-person variances, weighted by their values) + between (the variance \
    of per-person means, weighted); share_between = between / total, which still holds the sampling noise of \
    each person's mean; icc is the one-way ANOVA ICC(1), which removes it; human_between is the 1/n variance \
    of the same people's real values";

/// One person's real value within their own simulated values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonCalibration {
    /// The person's persona id.
    pub population_id: String,
    /// The person's real value.
    pub human: f64,
    /// How many simulated values the person has.
    pub simulated: usize,
    /// The mean of those values.
    pub simulated_mean: f64,
    /// The randomised PIT of the real value.
    pub pit: f64,
    /// Whether the real value lies in each central interval of [`COVERAGE_LEVELS`].
    pub covered: Vec<bool>,
}

/// The uniformity test of the PIT values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uniformity {
    /// What was tested, and how.
    pub test: String,
    /// The KS statistic `D`.
    pub statistic: f64,
    /// Its p-value.
    pub pvalue: f64,
}

/// The share of people whose real value lies in the central interval at `level`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// The interval's nominal coverage (0.5, 0.9).
    pub level: f64,
    /// People covered.
    pub covered: usize,
    /// The share covered, with a bootstrap interval over people.
    pub share: Metric,
}

/// Where the simulated spread comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VarianceSplit {
    /// Variance of all simulated values of the people counted.
    pub total: f64,
    /// The part between people (their means' variance).
    pub between: f64,
    /// The part within people (replicate noise).
    pub within: f64,
    /// `between / total` (`None` when there is no variance at all).
    pub share_between: Option<f64>,
    /// One-way ANOVA intraclass correlation ICC(1) (`None` when undefined).
    pub icc: Option<f64>,
    /// Variance of the same people's real values, for comparison with `between`.
    pub human_between: f64,
}

/// Per-person calibration of one numeric outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// People with a real value and at least two simulated values: the people counted.
    pub people: usize,
    /// Paired people left out because they have a single simulated value.
    pub people_single: usize,
    /// Simulated values of the people counted.
    pub values: usize,
    /// The fewest and most simulated values of one counted person.
    pub replicates_min: usize,
    /// See `replicates_min`.
    pub replicates_max: usize,
    /// Each counted person, ordered by id.
    pub persons: Vec<PersonCalibration>,
    /// PIT histogram: people per tenth of [0, 1].
    pub pit_histogram: Vec<u64>,
    /// Whether the PIT values look uniform.
    pub uniformity: Uniformity,
    /// Coverage of the central intervals.
    pub coverage: Vec<Coverage>,
    /// The variance split.
    pub variance: VarianceSplit,
    /// How each figure is defined (`pit`, `uniformity`, `coverage`, `variance`).
    pub definitions: BTreeMap<String, String>,
}

/// Calibration from the pairs of one outcome (every simulated value with its person's real
/// value); `None` when no person has two simulated values (a run without replicates).
pub(crate) fn calibration(key: &str, pairs: &[Pair], boot: &Boot) -> Option<Calibration> {
    let mut by_person: BTreeMap<&str, (f64, Vec<f64>)> = BTreeMap::new();
    for p in pairs {
        by_person
            .entry(p.population_id.as_str())
            .or_insert_with(|| (p.human, Vec::new()))
            .1
            .push(p.simulated);
    }
    let people_single = by_person.values().filter(|(_, s)| s.len() < 2).count();
    by_person.retain(|_, (_, s)| s.len() >= 2);
    if by_person.is_empty() {
        return None;
    }
    let mut rng = crate::seed::rng(crate::seed::derive_named(boot.seed, &format!("{key}/pit")));
    let persons: Vec<PersonCalibration> = by_person
        .iter()
        .map(|(id, (y, s))| {
            let v: f64 = rng.random();
            PersonCalibration {
                population_id: id.to_string(),
                human: *y,
                simulated: s.len(),
                simulated_mean: mean(s),
                pit: randomised_pit(*y, s, v),
                covered: COVERAGE_LEVELS.iter().map(|l| covers(s, *y, *l)).collect(),
            }
        })
        .collect();
    let pits: Vec<f64> = persons.iter().map(|p| p.pit).collect();
    let coverage = COVERAGE_LEVELS
        .iter()
        .enumerate()
        .map(|(i, level)| {
            let hits: Vec<f64> = persons.iter().map(|p| f64::from(u8::from(p.covered[i]))).collect();
            Coverage {
                level: *level,
                covered: hits.iter().filter(|h| **h > 0.0).count(),
                share: boot.one(&format!("{key}/coverage{level}"), &hits, mean),
            }
        })
        .collect();
    let groups: Vec<&[f64]> = by_person.values().map(|(_, s)| s.as_slice()).collect();
    let humans: Vec<f64> = by_person.values().map(|(y, _)| *y).collect();
    let sizes: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let definitions = [
        ("pit", PIT_DEFINITION),
        ("uniformity", UNIFORMITY_DEFINITION),
        ("coverage", COVERAGE_DEFINITION),
        ("variance", VARIANCE_DEFINITION),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Some(Calibration {
        people: persons.len(),
        people_single,
        values: sizes.iter().sum(),
        replicates_min: sizes.iter().copied().min().unwrap_or(0),
        replicates_max: sizes.iter().copied().max().unwrap_or(0),
        pit_histogram: pit_histogram(&pits),
        uniformity: uniformity(&pits),
        persons,
        coverage,
        variance: variance_split(&groups, &humans),
        definitions,
    })
}

/// The randomised rank PIT of `y` among `sims`, with `v` uniform on [0, 1).
pub(crate) fn randomised_pit(y: f64, sims: &[f64], v: f64) -> f64 {
    let below = sims.iter().filter(|s| **s < y).count() as f64;
    let ties = sims.iter().filter(|s| **s == y).count() as f64;
    (below + v * (ties + 1.0)) / (sims.len() as f64 + 1.0)
}

/// People per tenth of [0, 1] (1.0 falls in the last bin).
fn pit_histogram(pits: &[f64]) -> Vec<u64> {
    let mut bins = vec![0u64; PIT_BINS];
    for u in pits {
        let i = ((u * PIT_BINS as f64).floor() as usize).min(PIT_BINS - 1);
        bins[i] += 1;
    }
    bins
}

/// One-sample KS of `pits` against U(0, 1).
fn uniformity(pits: &[f64]) -> Uniformity {
    let mut sorted = pits.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let statistic = sorted
        .iter()
        .enumerate()
        .map(|(i, u)| ((i as f64 + 1.0) / n - u).max(u - i as f64 / n))
        .fold(0.0, f64::max);
    Uniformity {
        test: UNIFORMITY_DEFINITION.to_string(),
        statistic,
        pvalue: kstwo_sf(sorted.len() as u64, statistic),
    }
}

/// Sample quantile of sorted `s` at `p` (type 7: linear interpolation between order statistics).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Whether `y` lies in the central `level` interval of `sims` (not empty).
fn covers(sims: &[f64], y: f64, level: f64) -> bool {
    let mut sorted = sims.to_vec();
    sorted.sort_by(f64::total_cmp);
    let lo = quantile(&sorted, (1.0 - level) / 2.0);
    let hi = quantile(&sorted, (1.0 + level) / 2.0);
    (lo..=hi).contains(&y)
}

fn population_variance(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64
}

/// The law-of-total-variance split of `groups` (each with at least two values), and ICC(1).
fn variance_split(groups: &[&[f64]], humans: &[f64]) -> VarianceSplit {
    let all: Vec<f64> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let n = all.len() as f64;
    let grand = mean(&all);
    let within = groups.iter().map(|g| population_variance(g) * g.len() as f64).sum::<f64>() / n;
    let between = groups.iter().map(|g| (mean(g) - grand).powi(2) * g.len() as f64).sum::<f64>() / n;
    let total = population_variance(&all);
    // One-way ANOVA with unequal group sizes: n0 is the effective group size.
    let k = groups.len() as f64;
    let ss_between = between * n;
    let ss_within = within * n;
    let icc = (k > 1.0 && n > k).then(|| {
        let msb = ss_between / (k - 1.0);
        let msw = ss_within / (n - k);
        let n0 = (n - groups.iter().map(|g| (g.len() as f64).powi(2)).sum::<f64>() / n) / (k - 1.0);
        let denom = msb + (n0 - 1.0) * msw;
        (denom > 0.0).then(|| (msb - msw) / denom)
    });
    VarianceSplit {
        total,
        between,
        within,
        share_between: (total > 0.0).then(|| between / total),
        icc: icc.flatten(),
        human_between: population_variance(humans),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(id: &str, sim: f64, human: f64) -> Pair {
        Pair { dialogue: String::new(), population_id: id.into(), simulated: sim, human }
    }

    #[test]
    fn pit_counts_below_and_spreads_ties() {
        assert_eq!(randomised_pit(5.0, &[1.0, 2.0, 3.0], 0.5), (3.0 + 0.5) / 4.0);
        assert_eq!(randomised_pit(0.0, &[1.0, 2.0, 3.0], 0.0), 0.0);
        // Ties: y equal to two of three values spreads over ranks 1..=3.
        assert_eq!(randomised_pit(2.0, &[1.0, 2.0, 2.0], 0.0), 0.25);
        assert_eq!(randomised_pit(2.0, &[1.0, 2.0, 2.0], 1.0), 1.0);
    }

    #[test]
    fn coverage_uses_interpolated_quantiles() {
        let s = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert!(covers(&s, 2.0, 0.5));
        assert!(covers(&s, 1.0, 0.5));
        assert!(!covers(&s, 0.9, 0.5));
        assert!(covers(&s, 0.3, 0.9));
        assert!(!covers(&s, 4.5, 0.9));
    }

    #[test]
    fn variance_split_adds_up_and_separates_people() {
        // Two people, no within spread: all variance is between.
        let split = variance_split(&[&[0.0, 0.0], &[2.0, 2.0]], &[0.0, 2.0]);
        assert_eq!((split.total, split.between, split.within), (1.0, 1.0, 0.0));
        assert_eq!(split.share_between, Some(1.0));
        assert_eq!(split.icc, Some(1.0));
        assert_eq!(split.human_between, 1.0);
        // Same means, all within.
        let split = variance_split(&[&[0.0, 2.0], &[0.0, 2.0]], &[1.0, 1.0]);
        assert_eq!((split.between, split.within), (0.0, 1.0));
        assert!((split.between + split.within - split.total).abs() < 1e-12);
        assert!(split.icc.unwrap() < 0.0);
    }

    #[test]
    fn no_replicates_means_no_calibration() {
        let boot = Boot { resamples: 0, confidence: 0.95, seed: 1 };
        assert!(calibration("x", &[pair("a", 1.0, 1.0), pair("b", 1.0, 2.0)], &boot).is_none());
        let c = calibration("x", &[pair("a", 1.0, 1.0), pair("a", 2.0, 1.0), pair("b", 1.0, 2.0)], &boot)
            .expect("one person with two values");
        assert_eq!((c.people, c.people_single, c.values), (1, 1, 2));
        assert_eq!(c.pit_histogram.iter().sum::<u64>(), 1);
    }
}
