//! Two-sample two-sided Kolmogorov–Smirnov test, matching `scipy.stats.ks_2samp`.
//!
//! The statistic is `D = sup_x |F_a(x) - F_b(x)|` with both empirical CDFs evaluated at
//! every pooled value, so tied values (common in donation amounts) are handled exactly.
//! The p-value follows SciPy's `method=` choice:
//! - exact, for `n1 == n2`: the alternating binomial series of `_compute_prob_outside_square`;
//! - exact, otherwise: the lattice-path recursion of `_compute_outer_prob_inside_method`
//!   (Hodges 1958, in Viehmann's 2021 "1 - p" form), which is what SciPy runs for the
//!   two-sided test (`_count_paths_outside_method` is only used for one-sided tests);
//! - asymptotic: `kstwo.sf(D, round(n1·n2/(n1+n2)))`, see [`super::kolmogorov`].
//!
//! As in SciPy, an exact computation that is not possible (`lcm(n1, n2)` too large for
//! 32-bit lattice coordinates) or not trustworthy (a result outside `[0, 1]`) falls back
//! to the asymptotic p-value; [`KsResult::method_used`] says which one was used.

use serde::{Deserialize, Serialize};

use super::kolmogorov::kstwo_sf;
use super::StatsError;

/// Above this sample size, [`KsMode::Auto`] uses the asymptotic p-value (SciPy's `MAX_AUTO_N`).
pub(crate) const MAX_AUTO_N: usize = 10_000;

/// How the p-value is computed (SciPy's `method`: `auto`, `exact`, `asymp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KsMode {
    /// Exact when `max(n1, n2) <= 10000`, else asymptotic.
    Auto,
    /// The exact distribution of `D` under the null hypothesis.
    Exact,
    /// The one-sample distribution at the effective sample size `round(n1·n2/(n1+n2))`.
    Asymptotic,
}

/// The outcome of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KsResult {
    /// `D = sup |F_a - F_b|`, in `[0, 1]`.
    pub statistic: f64,
    /// Two-sided p-value, in `[0, 1]`. NaN only for the asymptotic method with
    /// `n1 == n2 == 1`, where the effective size rounds to 0 (as in SciPy).
    pub pvalue: f64,
    /// [`KsMode::Exact`] or [`KsMode::Asymptotic`]: the method actually used.
    pub method_used: KsMode,
    /// Size of the first sample.
    pub n1: usize,
    /// Size of the second sample.
    pub n2: usize,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn sorted_checked(values: &[f64], which: &'static str) -> Result<Vec<f64>, StatsError> {
    if values.is_empty() {
        return Err(StatsError::EmptySample { which });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| v.is_nan()) {
        return Err(StatsError::InvalidValue { which, index, value });
    }
    let mut v = values.to_vec();
    // No NaN is left, so `partial_cmp` is total here; -0.0 and 0.0 compare equal as in NumPy.
    v.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
    Ok(v)
}

/// `D = max(max(F_a - F_b), max(F_b - F_a))` over all pooled values, with
/// `F(x) = #{values <= x} / n` exactly as SciPy's `searchsorted(..., side='right') / n`.
fn statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut max_s = f64::NEG_INFINITY;
    let mut min_s = f64::INFINITY;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max_s = max_s.max(diff);
        min_s = min_s.min(diff);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    if min_s > max_s {
        min_s
    } else {
        max_s
    }
}

/// `P(D_{n,n} >= h/n)`: twice an alternating binomial series, evaluated Horner-like with
/// each term divided by `binom(2n, n)` to avoid cancellation (SciPy's
/// `_compute_prob_outside_square`).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (nf, hf) = (n as f64, h as f64);
    let mut p = 0.0;
    let mut k = (nf / hf).floor() as i64;
    let (n, h) = (n as i64, h as i64);
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = ((n - k * h - j) as f64) * p1 / ((n + k * h + j + 1) as f64);
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// Proportion of lattice paths from `(0,0)` to `(m,n)` that leave the band
/// `|x/m - y/n| < h/lcm(m,n)`, by the "inside" recursion computing `1 - p` directly
/// (SciPy's `_compute_outer_prob_inside_method`). Returns NaN if the window bookkeeping
/// ever goes out of range, which makes the caller fall back to the asymptotic value.
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let mgf = mg as f64;

    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mgf).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1).max(0) as usize;
    let mut a = vec![1.0f64; len_a];
    for x in a.iter_mut().take(maxj.max(0) as usize) {
        *x = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((((ng * i - h) as f64) / mgf).floor() as i64 + 1).max(0).min(n);
        maxj = ((((ng * i + h) as f64) / mgf).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        let fi = i as f64;
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let src = jj + minj - lastminj;
            let prev = match usize::try_from(src).ok().and_then(|s| a.get(s)) {
                Some(&p) => p,
                None => return f64::NAN,
            };
            val = (prev * fi + val * j as f64) / (fi + j as f64);
            match a.get_mut(jj as usize) {
                Some(slot) => *slot = val,
                None => return f64::NAN,
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            // Entries carried over beyond the new window are "all paths still inside".
            let start = (maxj - minj) as usize;
            let end = (start + (lastlen - curlen) as usize).min(a.len());
            for x in a.iter_mut().take(end).skip(start) {
                *x = 1.0;
            }
        }
    }
    let last = maxj - minj - 1;
    usize::try_from(last).ok().and_then(|l| a.get(l)).copied().unwrap_or(f64::NAN)
}

/// Exact two-sided p-value; `None` if it cannot be computed reliably. Also returns `D`
/// snapped to the lattice `h / lcm(n1, n2)`, as SciPy reports it.
fn exact_pvalue(n1: u64, n2: u64, d: f64) -> (f64, Option<f64>) {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return (d, Some(1.0));
    }
    let prob = if n1 == n2 { prob_outside_square(n1, h) } else { outer_prob_inside(n1, n2, g, h) };
    if (0.0..=1.0).contains(&prob) {
        (d, Some(prob))
    } else {
        (d, None)
    }
}

/// Asymptotic two-sided p-value: `kstwo.sf(d, round(n1·n2/(n1+n2)))`.
fn asymptotic_pvalue(n1: usize, n2: usize, d: f64) -> f64 {
    let (m, n) = if n1 >= n2 { (n1 as f64, n2 as f64) } else { (n2 as f64, n1 as f64) };
    let en = m * n / (m + n);
    let n_eff = en.round_ties_even() as u64;
    kstwo_sf(n_eff, d).clamp(0.0, 1.0)
}

/// Two-sample two-sided Kolmogorov–Smirnov test of `a` against `b`, as
/// `scipy.stats.ks_2samp(a, b, method=...)`.
///
/// Errors if either sample is empty or contains NaN (infinities are fine: they are
/// ordinary points of the ECDF).
pub fn ks_2samp(a: &[f64], b: &[f64], mode: KsMode) -> Result<KsResult, StatsError> {
    let a = sorted_checked(a, "a")?;
    let b = sorted_checked(b, "b")?;
    let (n1, n2) = (a.len(), b.len());
    let d = statistic_sorted(&a, &b);
    Ok(with_pvalue(n1, n2, d, mode))
}

/// [`ks_2samp`] of two samples given as counts over the same `values` (sample `a` holds
/// `values[i]` `counts_a[i]` times): the same result as expanding the counts into samples,
/// computed from the two weighted ECDFs, so memory does not grow with the counts.
pub(crate) fn ks_2samp_counts(
    values: &[f64],
    counts_a: &[u64],
    counts_b: &[u64],
    mode: KsMode,
) -> Result<KsResult, StatsError> {
    let total = |counts: &[u64]| counts.iter().fold(0u64, |s, c| s.saturating_add(*c));
    let (n1, n2) = (total(counts_a), total(counts_b));
    if n1 == 0 {
        return Err(StatsError::EmptySample { which: "a" });
    }
    if n2 == 0 {
        return Err(StatsError::EmptySample { which: "b" });
    }
    let count = |counts: &[u64], i: usize| counts.get(i).copied().unwrap_or(0);
    let mut order: Vec<usize> =
        (0..values.len()).filter(|&i| count(counts_a, i) > 0 || count(counts_b, i) > 0).collect();
    if let Some(&index) = order.iter().find(|&&i| values[i].is_nan()) {
        let which = if count(counts_a, index) > 0 { "a" } else { "b" };
        return Err(StatsError::InvalidValue { which, index, value: values[index] });
    }
    order.sort_by(|&x, &y| values[x].total_cmp(&values[y]));
    let (mut ca, mut cb) = (0u64, 0u64);
    let (mut max_s, mut min_s) = (f64::NEG_INFINITY, f64::INFINITY);
    for (pos, &i) in order.iter().enumerate() {
        ca = ca.saturating_add(count(counts_a, i));
        cb = cb.saturating_add(count(counts_b, i));
        // Equal values are one point of the ECDFs: compare after the last of them.
        if order.get(pos + 1).is_some_and(|&next| values[next] == values[i]) {
            continue;
        }
        let diff = ca as f64 / n1 as f64 - cb as f64 / n2 as f64;
        max_s = max_s.max(diff);
        min_s = min_s.min(diff);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    let d = if min_s > max_s { min_s } else { max_s };
    let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(with_pvalue(to_usize(n1), to_usize(n2), d, mode))
}

/// The test's result for statistic `d` of samples of sizes `n1` and `n2`.
fn with_pvalue(n1: usize, n2: usize, d: f64, mode: KsMode) -> KsResult {
    let mut d = d;

    let mut method = match mode {
        KsMode::Auto if n1.max(n2) <= MAX_AUTO_N => KsMode::Exact,
        KsMode::Auto => KsMode::Asymptotic,
        KsMode::Exact => {
            let g = gcd(n1 as u64, n2 as u64);
            let (n1g, n2g) = ((n1 as u64 / g) as f64, (n2 as u64 / g) as f64);
            if n1g >= f64::from(i32::MAX) / n2g {
                tracing::warn!(
                    n1,
                    n2,
                    "exact KS p-value impossible for these sizes; using the asymptotic one"
                );
                KsMode::Asymptotic
            } else {
                KsMode::Exact
            }
        }
        KsMode::Asymptotic => KsMode::Asymptotic,
    };

    let mut pvalue = f64::NAN;
    if method == KsMode::Exact {
        let (d_lattice, p) = exact_pvalue(n1 as u64, n2 as u64, d);
        d = d_lattice;
        match p {
            Some(p) => pvalue = p,
            None => {
                tracing::warn!(n1, n2, "exact KS p-value unsuccessful; using the asymptotic one");
                method = KsMode::Asymptotic;
            }
        }
    }
    if method == KsMode::Asymptotic {
        pvalue = asymptotic_pvalue(n1, n2, d);
    }
    KsResult { statistic: d, pvalue: pvalue.clamp(0.0, 1.0), method_used: method, n1, n2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_give_what_their_expanded_samples_give_without_expanding_them() {
        let values = [1.0, 3.0, 2.0, 3.0];
        let (ca, cb) = ([4u64, 0, 7, 2], [1u64, 5, 2, 0]);
        let expand = |c: &[u64]| -> Vec<f64> {
            values.iter().zip(c).flat_map(|(v, n)| std::iter::repeat_n(*v, *n as usize)).collect()
        };
        for mode in [KsMode::Auto, KsMode::Exact, KsMode::Asymptotic] {
            let whole = ks_2samp(&expand(&ca), &expand(&cb), mode).unwrap();
            let counted = ks_2samp_counts(&values, &ca, &cb, mode).unwrap();
            assert_eq!(whole, counted, "{mode:?}");
        }
        // Counts far beyond memory: 1e20 saturates, nothing is allocated for it.
        let huge = ks_2samp_counts(&[1.0, 2.0], &[u64::MAX, 3], &[5, u64::MAX], KsMode::Auto).unwrap();
        assert!(huge.statistic > 0.99 && huge.pvalue.is_finite(), "{huge:?}");
        assert!(matches!(
            ks_2samp_counts(&[1.0], &[0], &[1], KsMode::Auto),
            Err(StatsError::EmptySample { .. })
        ));
    }

    #[test]
    fn statistic_with_ties_uses_all_pooled_points() {
        let a = [0.0, 0.0, 1.0, 1.0];
        let b = [0.0, 1.0, 1.0, 1.0];
        // F_a(0) = 1/2, F_b(0) = 1/4; both 1 at x = 1.
        assert_eq!(statistic_sorted(&a, &b), 0.25);
    }

    #[test]
    fn square_method_small_case() {
        // n = 2, h = 2 (D = 1): only 2 of the C(4,2) = 6 orderings are fully separated.
        assert!((prob_outside_square(2, 2) - 2.0 / 6.0).abs() < 1e-15);
        // Inside method agrees with the square method on equal sizes.
        assert!((outer_prob_inside(3, 3, 3, 3) - prob_outside_square(3, 3)).abs() < 1e-15);
    }
}
