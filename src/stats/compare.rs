//! Distances between simulated and human outcome distributions.
//!
//! Numeric samples: [`l1_paired`] (matched pairs), [`l1_histogram`] and [`l1_density_pfg`]
//! (binned), [`wasserstein1`] (exact, 1-D). Categorical distributions (vectors of
//! weights or counts over the same categories): [`total_variation`], [`jensen_shannon`];
//! [`category_counts`] builds such vectors from labels.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use statrs::statistics::Statistics;

use super::StatsError;

fn check_finite(values: &[f64], which: &'static str) -> Result<(), StatsError> {
    if values.is_empty() {
        return Err(StatsError::EmptySample { which });
    }
    match values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(StatsError::InvalidValue { which, index, value }),
        None => Ok(()),
    }
}

/// Mean absolute difference `mean_i |sim_i - human_i|` over matched pairs (e.g. each
/// simulated persona's donation against the real participant's).
///
/// Errors on different lengths, empty input or non-finite values.
pub fn l1_paired(sim: &[f64], human: &[f64]) -> Result<f64, StatsError> {
    if sim.len() != human.len() {
        return Err(StatsError::LengthMismatch { left: sim.len(), right: human.len() });
    }
    check_finite(sim, "sim")?;
    check_finite(human, "human")?;
    Ok(sim.iter().zip(human).map(|(s, h)| (s - h).abs()).mean())
}

/// `n` equal-width bins over `[lo, hi]`; every bin is half-open `[e_i, e_{i+1})` except
/// the last, which also holds `hi` (NumPy's convention).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bins {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Upper edge of the last bin (inclusive).
    pub hi: f64,
    /// Number of bins.
    pub n: usize,
}

/// The bins of the PersuasionForGood donation comparisons: `numpy.linspace(0, 2, 21)`
/// as edges, i.e. 20 bins of $0.10 over `[0, 2]`.
pub const PFG_BINS: Bins = Bins { lo: 0.0, hi: 2.0, n: 20 };

impl Bins {
    /// Checks that the range is finite and non-empty and that there is at least one bin.
    pub fn validate(&self) -> Result<(), StatsError> {
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            return Err(StatsError::InvalidParameter {
                name: "bins",
                reason: format!("need finite lo < hi, got [{}, {}]", self.lo, self.hi),
            });
        }
        if self.n == 0 {
            return Err(StatsError::InvalidParameter {
                name: "bins",
                reason: "need at least one bin".into(),
            });
        }
        Ok(())
    }

    /// The `n + 1` edges, computed as `numpy.linspace(lo, hi, n + 1)` so that values on an
    /// edge (e.g. a donation of exactly 0.3) land in the same bin as with NumPy.
    pub fn edges(&self) -> Vec<f64> {
        let step = (self.hi - self.lo) / self.n as f64;
        let mut e: Vec<f64> = (0..=self.n).map(|i| i as f64 * step + self.lo).collect();
        if let Some(last) = e.last_mut() {
            *last = self.hi;
        }
        e
    }

    /// The bin holding `x`, or `None` outside `[lo, hi]` (or NaN).
    fn index(&self, edges: &[f64], x: f64) -> Option<usize> {
        if !(x >= self.lo && x <= self.hi) {
            return None;
        }
        // Number of edges <= x, minus one; `hi` itself goes into the last bin.
        let k = edges.partition_point(|e| *e <= x);
        Some(k.saturating_sub(1).min(self.n - 1))
    }
}

/// Counts per bin, plus the values that fell outside the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// The bins counted into.
    pub bins: Bins,
    /// One count per bin.
    pub counts: Vec<u64>,
    /// Values below `lo`.
    pub below: u64,
    /// Values above `hi`.
    pub above: u64,
}

impl Histogram {
    /// Number of values inside the range.
    pub fn in_range(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Fractions per bin (counts over the in-range total), or `None` if no value is in range.
    pub fn proportions(&self) -> Option<Vec<f64>> {
        let total = self.in_range();
        if total == 0 {
            return None;
        }
        Some(self.counts.iter().map(|&c| c as f64 / total as f64).collect())
    }
}

/// Histogram of `values` over `bins`. Values outside `[lo, hi]` are not binned (as in
/// `numpy.histogram`) but counted in [`Histogram::below`] / [`Histogram::above`].
///
/// Errors on invalid bins or NaN values.
pub fn histogram(values: &[f64], bins: &Bins) -> Result<Histogram, StatsError> {
    bins.validate()?;
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| v.is_nan()) {
        return Err(StatsError::InvalidValue { which: "values", index, value });
    }
    let edges = bins.edges();
    let mut h = Histogram { bins: *bins, counts: vec![0; bins.n], below: 0, above: 0 };
    for &x in values {
        match bins.index(&edges, x) {
            Some(i) => h.counts[i] += 1,
            None if x < bins.lo => h.below += 1,
            None => h.above += 1,
        }
    }
    Ok(h)
}

/// L1 distance `Σ_i |p_i - q_i|` between the normalised histograms of `a` and `b`
/// (each normalised over its in-range values). In `[0, 2]`; 0 iff the binned shapes agree.
///
/// Errors on invalid bins, NaN values, or a sample with no value in range.
pub fn l1_histogram(a: &[f64], b: &[f64], bins: &Bins) -> Result<f64, StatsError> {
    let pa = proportions_of(a, bins, "a")?;
    let pb = proportions_of(b, bins, "b")?;
    Ok(pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).sum())
}

fn proportions_of(values: &[f64], bins: &Bins, which: &'static str) -> Result<Vec<f64>, StatsError> {
    let h = histogram(values, bins).map_err(|e| match e {
        StatsError::InvalidValue { index, value, .. } => StatsError::InvalidValue { which, index, value },
        other => other,
    })?;
    h.proportions().ok_or(StatsError::NoValuesInRange { which, lo: bins.lo, hi: bins.hi })
}

/// The L1 distance between donation distributions used in the PersuasionForGood
/// comparisons of the Verbalized Sampling evaluation code:
///
/// ```text
/// edges = numpy.linspace(0, 2, 21)          # 21 edges: 20 bins of $0.10 over [0, 2]
/// p, _ = numpy.histogram(a, edges, density=True)
/// q, _ = numpy.histogram(b, edges, density=True)
/// L1 = sum(|p - q|) * (edges[1] - edges[0])
/// ```
///
/// Densities times the bin width are the in-range proportions, so this equals
/// [`l1_histogram`] with [`PFG_BINS`] (up to rounding) and lies in `[0, 2]`. Values
/// outside `[0, 2]` are ignored, as NumPy does.
pub fn l1_density_pfg(a: &[f64], b: &[f64]) -> Result<f64, StatsError> {
    let bins = PFG_BINS;
    let edges = bins.edges();
    let density = |values: &[f64], which: &'static str| -> Result<Vec<f64>, StatsError> {
        let h = histogram(values, &bins).map_err(|e| match e {
            StatsError::InvalidValue { index, value, .. } => StatsError::InvalidValue { which, index, value },
            other => other,
        })?;
        let total = h.in_range();
        if total == 0 {
            return Err(StatsError::NoValuesInRange { which, lo: bins.lo, hi: bins.hi });
        }
        // NumPy: counts / diff(edges) / counts.sum().
        Ok(h.counts
            .iter()
            .zip(edges.windows(2))
            .map(|(&c, w)| c as f64 / (w[1] - w[0]) / total as f64)
            .collect())
    };
    let p = density(a, "a")?;
    let q = density(b, "b")?;
    let width = edges[1] - edges[0];
    Ok(p.iter().zip(&q).map(|(x, y)| (x - y).abs()).sum::<f64>() * width)
}

/// First Wasserstein (earth mover's) distance between the empirical distributions of
/// `a` and `b`: `∫ |F_a(x) - F_b(x)| dx`, computed exactly from the sorted samples as
/// `scipy.stats.wasserstein_distance(a, b)` does. In the units of the values.
///
/// Errors on empty samples or non-finite values.
pub fn wasserstein1(a: &[f64], b: &[f64]) -> Result<f64, StatsError> {
    check_finite(a, "a")?;
    check_finite(b, "b")?;
    let mut sa = a.to_vec();
    let mut sb = b.to_vec();
    sa.sort_by(f64::total_cmp);
    sb.sort_by(f64::total_cmp);
    let mut all: Vec<f64> = sa.iter().chain(&sb).copied().collect();
    all.sort_by(f64::total_cmp);
    let (na, nb) = (sa.len() as f64, sb.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    // Half of each gap, summed, then doubled: exact scalings by 2 that keep a gap between
    // values near ±f64::MAX from overflowing; a gap where the ECDFs agree adds nothing
    // (never 0 · ∞).
    let mut half = 0.0;
    for w in all.windows(2) {
        let x = w[0];
        while i < sa.len() && sa[i] <= x {
            i += 1;
        }
        while j < sb.len() && sb[j] <= x {
            j += 1;
        }
        let gap = (i as f64 / na - j as f64 / nb).abs();
        if gap > 0.0 {
            half += gap * (w[1] / 2.0 - w[0] / 2.0);
        }
    }
    let total = 2.0 * half;
    if !total.is_finite() {
        return Err(StatsError::InvalidParameter {
            name: "samples",
            reason: "their Wasserstein distance is larger than the largest float".into(),
        });
    }
    Ok(total)
}

/// Normalises a vector of non-negative weights (probabilities or counts) to sum to 1.
fn normalise(p: &[f64], which: &'static str) -> Result<Vec<f64>, StatsError> {
    if p.is_empty() {
        return Err(StatsError::InvalidDistribution { which, reason: "no categories".into() });
    }
    if let Some((i, v)) = p.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
        return Err(StatsError::InvalidDistribution {
            which,
            reason: format!("weight {v} at index {i} is not a finite non-negative number"),
        });
    }
    let total: f64 = p.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Err(StatsError::InvalidDistribution { which, reason: format!("weights sum to {total}") });
    }
    Ok(p.iter().map(|v| v / total).collect())
}

fn normalise_pair(p: &[f64], q: &[f64]) -> Result<(Vec<f64>, Vec<f64>), StatsError> {
    if p.len() != q.len() {
        return Err(StatsError::LengthMismatch { left: p.len(), right: q.len() });
    }
    Ok((normalise(p, "p")?, normalise(q, "q")?))
}

/// Total variation distance `½ Σ_i |p_i - q_i|` between two categorical distributions
/// over the same categories, given as weights or counts (each is normalised first).
/// In `[0, 1]`.
pub fn total_variation(p: &[f64], q: &[f64]) -> Result<f64, StatsError> {
    let (p, q) = normalise_pair(p, q)?;
    Ok(0.5 * p.iter().zip(&q).map(|(a, b)| (a - b).abs()).sum::<f64>())
}

/// `x · ln(x / y)` with the conventions `0 · ln(0/y) = 0` (SciPy's `rel_entr` for `y > 0`).
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Jensen–Shannon **divergence** in bits between two categorical distributions over the
/// same categories (weights or counts, each normalised first):
/// `JS = ½ KL(p‖m) + ½ KL(q‖m)` with `m = (p + q)/2` and logarithms base 2, so it lies
/// in `[0, 1]` (0 iff `p == q`, 1 iff their supports are disjoint).
///
/// Note that `scipy.spatial.distance.jensenshannon(p, q, base=2)` returns the
/// Jensen–Shannon *distance*, the square root of this value.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> Result<f64, StatsError> {
    let (p, q) = normalise_pair(p, q)?;
    let mut left = 0.0;
    let mut right = 0.0;
    for (a, b) in p.iter().zip(&q) {
        let m = (a + b) / 2.0;
        left += rel_entr(*a, m);
        right += rel_entr(*b, m);
    }
    let js = (left + right) / 2.0 / std::f64::consts::LN_2;
    Ok(js.clamp(0.0, 1.0))
}

/// Aligned category counts of two labelled samples, ready for [`total_variation`] and
/// [`jensen_shannon`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryCounts {
    /// Every label seen in either sample, sorted.
    pub labels: Vec<String>,
    /// Counts of each label in the first sample.
    pub a: Vec<f64>,
    /// Counts of each label in the second sample.
    pub b: Vec<f64>,
}

/// Counts the labels of `a` and `b` over the union of their labels (so a category seen
/// in only one sample gets a zero count in the other).
pub fn category_counts<S: AsRef<str>>(a: &[S], b: &[S]) -> CategoryCounts {
    let mut map: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for s in a {
        map.entry(s.as_ref()).or_default().0 += 1.0;
    }
    for s in b {
        map.entry(s.as_ref()).or_default().1 += 1.0;
    }
    let mut out = CategoryCounts { labels: Vec::new(), a: Vec::new(), b: Vec::new() };
    for (label, (ca, cb)) in map {
        out.labels.push(label.to_string());
        out.a.push(ca);
        out.b.push(cb);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_values_follow_numpy_linspace() {
        let edges = PFG_BINS.edges();
        assert_eq!(edges.len(), 21);
        // 3 * 0.1 = 0.30000000000000004 > 0.3, so 0.3 lands in bin 2 as with NumPy.
        let h = histogram(&[0.3, 2.0, 0.0, -0.1, 2.5], &PFG_BINS).unwrap();
        assert_eq!(h.counts[2], 1);
        assert_eq!(h.counts[19], 1);
        assert_eq!(h.counts[0], 1);
        assert_eq!((h.below, h.above), (1, 1));
    }
}
