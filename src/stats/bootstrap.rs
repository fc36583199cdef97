//! Percentile bootstrap confidence intervals for two-sample statistics.
//!
//! Each resample draws `a` and `b` independently with replacement at their own sizes
//! (the two groups are independent, e.g. simulated vs human participants), recomputes
//! the statistic, and the interval is read off the percentiles of those values. The RNG
//! is the project's seeded ChaCha8, so equal inputs and seed give an identical interval.

use rand::Rng;
use serde::Serialize;

use super::StatsError;

/// A point estimate with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ci {
    /// The statistic on the original samples.
    pub estimate: f64,
    /// Lower bound: the `(1 - confidence)/2` percentile of the bootstrap values.
    pub lo: f64,
    /// Upper bound: the `(1 + confidence)/2` percentile of the bootstrap values.
    pub hi: f64,
}

/// Percentile of sorted `v` at `q ∈ [0, 1]`, with linear interpolation between order
/// statistics (NumPy's default `percentile` method, Hyndman–Fan type 7).
///
/// Written out rather than taken from `statrs`, whose `quantile` is Hyndman–Fan type 8: the
/// intervals would no longer match NumPy's.
fn percentile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (v[lo.min(v.len() - 1)], v[hi]);
    a + (b - a) * t
}

/// Percentile bootstrap CI of `statistic(a, b)`.
///
/// `n_resamples` resamples (at least 1; 1000–10000 is usual) at `confidence` in `(0, 1)`
/// (e.g. 0.95), seeded by `seed`. Errors on empty samples, invalid parameters, or if the
/// statistic fails or returns a non-finite value on the data or any resample.
pub fn bootstrap_ci<F>(
    a: &[f64],
    b: &[f64],
    mut statistic: F,
    n_resamples: usize,
    confidence: f64,
    seed: u64,
) -> Result<Ci, StatsError>
where
    F: FnMut(&[f64], &[f64]) -> Result<f64, StatsError>,
{
    if a.is_empty() {
        return Err(StatsError::EmptySample { which: "a" });
    }
    if b.is_empty() {
        return Err(StatsError::EmptySample { which: "b" });
    }
    if n_resamples == 0 {
        return Err(StatsError::InvalidParameter {
            name: "n_resamples",
            reason: "must be at least 1".into(),
        });
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(StatsError::InvalidParameter {
            name: "confidence",
            reason: format!("must lie strictly between 0 and 1, got {confidence}"),
        });
    }
    let estimate = statistic(a, b)?;
    let mut rng = crate::seed::rng(seed);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    let mut values = Vec::with_capacity(n_resamples);
    for resample in 0..n_resamples {
        for x in ra.iter_mut() {
            *x = a[rng.random_range(0..a.len())];
        }
        for x in rb.iter_mut() {
            *x = b[rng.random_range(0..b.len())];
        }
        let value = statistic(&ra, &rb)?;
        if !value.is_finite() {
            return Err(StatsError::NonFiniteStatistic { resample, value });
        }
        values.push(value);
    }
    values.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    Ok(Ci { estimate, lo: percentile_sorted(&values, alpha), hi: percentile_sorted(&values, 1.0 - alpha) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&v, 0.0), 1.0);
        assert_eq!(percentile_sorted(&v, 1.0), 4.0);
        // numpy.percentile([1, 2, 3, 4], 25) == 1.75
        assert!((percentile_sorted(&v, 0.25) - 1.75).abs() < 1e-15);
    }
}
