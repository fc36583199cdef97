//! Kolmogorov–Smirnov distribution functions behind the p-values of [`super::ks`].
//!
//! [`kstwo_sf`] is the survival function of the one-sample two-sided statistic `D_n`
//! (SciPy's `scipy.stats.kstwo.sf`), and [`smirnov_sf`] that of the one-sided `D_n^+`
//! (SciPy's `scipy.special.smirnov`). Both follow SciPy's choice of algorithm region by
//! region (Simard & L'Ecuyer 2011): Ruben–Gambino closed forms at the ends, the
//! Durbin matrix (Marsaglia–Tsang–Wang) and Pomeranz recursions for small `n·x²`,
//! Pelz–Good's expansion for large `n`, and twice the exact Smirnov tail elsewhere.
//!
//! None of this is in `statrs`, which has neither the finite-`n` Kolmogorov distribution
//! nor the one-sided Smirnov one, so the math is written out here; the Stirling series of
//! `ln(n!/nⁿ)` is too, since `ln Γ(n+1) − n·ln n` from `statrs` loses digits to
//! cancellation for large `n`.
//!
//! The one difference is arithmetic: SciPy evaluates the Smirnov sum in double-double
//! precision, while this port sums the (all positive) Birnbaum–Tingey terms in `f64`
//! with each term's binomial carried as mantissa and exponent and its powers taken in
//! log space. That keeps the relative error near 1e-12 for `n` up to 10⁶, well inside
//! the 1e-8 agreement the tests check against SciPy's values.

/// 2^128 and 2^-128: the rescaling steps SciPy uses to keep intermediates in range.
const EP128: f64 = f64::from_bits((1023 + 128) << 52);
const EM128: f64 = f64::from_bits((1023 - 128) << 52);
const E128: i32 = 128;

const LOG_2PI: f64 = 1.837_877_066_409_345_3;
const SQRT_2PI: f64 = 2.506_628_274_631_000_7;
const SQRT3: f64 = 1.732_050_807_568_877_2;
const PI: f64 = std::f64::consts::PI;
const MIN_LOG_EXP: f64 = -708.0;
/// Cephes' MINLOG: `ln(2^-1075)`; below it `exp` underflows to zero.
const CEPHES_MINLOG: f64 = -745.133_219_101_941_2;
/// Above this `n`, the Smirnov tail is approximated (as SciPy does) rather than summed.
const SMIRNOV_MAX_COMPUTE_N: u64 = 1_000_000;

/// Stirling-series coefficients `B_2j / (2j (2j-1))`, highest order first.
const STIRLING_COEFFS: [f64; 8] = [
    -2.955_065_359_477_124_2e-2,
    6.410_256_410_256_41e-3,
    -1.917_526_917_526_917_5e-3,
    8.417_508_417_508_417e-4,
    -5.952_380_952_380_953e-4,
    7.936_507_936_507_937e-4,
    -2.777_777_777_777_778e-3,
    8.333_333_333_333_333e-2,
];

fn clip_prob(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// `ldexp`: `x · 2^e`, split so that a large `|e|` neither overflows nor underflows early.
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
        if x.is_infinite() {
            return x;
        }
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
        if x == 0.0 {
            return x;
        }
    }
    // |e| <= 1000 here, so the cast is lossless.
    x * 2f64.powi(e as i32)
}

/// `frexp` for finite positive `x`: `(m, e)` with `x = m · 2^e` and `m ∈ [0.5, 1)`.
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let mut x = x;
    let mut adj = 0i64;
    if x.abs() < f64::MIN_POSITIVE {
        x *= 2f64.powi(64);
        adj = -64;
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1022;
    let man = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (man, exp + adj)
}

/// `ln(n! / n^n)` by Stirling's series, with `n·ln n` removed up front.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let y = rn / n;
    let poly = STIRLING_COEFFS.iter().fold(0.0, |acc, c| acc * y + c);
    n.ln() / 2.0 - n + LOG_2PI / 2.0 + rn * poly
}

/// Survival function `P(D_n >= x)` of the one-sample two-sided KS statistic for a
/// sample of size `n` (SciPy's `kstwo.sf(x, n)`, i.e. `_kolmogn(n, x, cdf=False)`).
///
/// Returns NaN for `n == 0` or a NaN `x`, as SciPy does.
pub fn kstwo_sf(n: u64, x: f64) -> f64 {
    if n == 0 || x.is_nan() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: 1/(2n) <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            let base = 2.0 * t - 1.0;
            (1..=n).fold(1.0, |acc, i| acc * ((i as f64) * (1.0 / nf) * base))
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip_prob(1.0 - prob);
    }
    if t >= nf - 1.0 {
        // Ruben–Gambino: x >= 1 - 1/n.
        return clip_prob(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        // D_n^+ >= x and D_n^- >= x cannot both happen: the tail is exactly twice Smirnov's.
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754_693 {
            return clip_prob(1.0 - durbin_mtw_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip_prob(1.0 - pomeranz_cdf(n, x));
        }
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip_prob(2.0 * smirnov_sf(n, x));
    }
    let cdf =
        if n <= 100_000 && nf * x.powf(1.5) <= 1.4 { durbin_mtw_cdf(n, x) } else { pelz_good_cdf(n, x) };
    clip_prob(1.0 - cdf)
}

/// Square-matrix product for the Durbin recursion (row-major, `m × m`).
fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            let row_b = &b[k * m..(k + 1) * m];
            let row_o = &mut out[i * m..(i + 1) * m];
            for (o, bkj) in row_o.iter_mut().zip(row_b) {
                *o += aik * bkj;
            }
        }
    }
    out
}

/// `P(D_n <= d)` by Durbin's matrix algorithm as arranged by Marsaglia, Tsang and Wang.
fn durbin_mtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;

    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powi(j as i32)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }

    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let kk = (k - 1) * m + (k - 1);
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut hexpnt: i64 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
            // Not in SciPy: also rescale the running product, which SciPy leaves to
            // grow; this only matters where SciPy itself would overflow.
            if hpwr[kk].abs() > EP128 {
                hpwr.iter_mut().for_each(|x| *x /= EP128);
                expnt += i64::from(E128);
            }
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[kk].abs() > EP128 {
            hm.iter_mut().for_each(|x| *x /= EP128);
            hexpnt += i64::from(E128);
        }
        nn /= 2;
    }

    let mut p = hpwr[kk];
    for i in 1..=n {
        p = (i as f64) * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= i64::from(E128);
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    clip_prob(p)
}

/// Endpoints of the non-zero window of row `i` in Pomeranz's recursion.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let ip1div2 = (i + 1) / 2;
        let ip1mod2 = (i + 1) % 2;
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Full discrete convolution, as `numpy.convolve(a, b)`.
fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, ai) in a.iter().enumerate() {
        for (j, bj) in b.iter().enumerate() {
            out[i + j] += ai * bj;
        }
    }
    out
}

/// Python-style slice `v[start..end]` with clamping (no wrap-around for negatives).
fn py_slice(v: &[f64], start: i64, end: i64) -> &[f64] {
    let len = v.len() as i64;
    let s = start.clamp(0, len) as usize;
    let e = end.clamp(0, len) as usize;
    if s >= e {
        &[]
    } else {
        &v[s..e]
    }
}

/// `P(D_n <= x)` by Pomeranz's recursion (1974).
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let ni = n as i64;
    let nf = n as f64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)).max(1) as usize;
    let mut gpower = vec![1.0; npwrs];
    let mut twogpower = vec![1.0; npwrs];
    let mut onem2gpower = vec![1.0; npwrs];
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        let mf = m as f64;
        gpower[m] = gpower[m - 1] * g_over_n / mf;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / mf;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / mf;
    }

    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let mut expnt: i64 = 0;

    let (mut j1, _) = pomeranz_j1j2(0, ni, ll, ceilf, roundf);
    for i in 1..(2 * ni + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.iter_mut().for_each(|x| *x = 0.0);
        let (next_j1, j2) = pomeranz_j1j2(i, ni, ll, ceilf, roundf);
        j1 = next_j1;
        let pwrs = if i == 1 || i == 2 * ni + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let seg = py_slice(&v0, k1 - v0s, k1 - v0s + ln2);
            let conv = convolve(seg, py_slice(pwrs, 0, ln2));
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            let src = py_slice(&conv, conv_start, conv_start + conv_len);
            for (dst, s) in v1.iter_mut().zip(src) {
                *dst = *s;
            }
            let maxv = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < maxv && maxv < EM128 {
                v1.iter_mut().for_each(|x| *x *= EP128);
                expnt -= i64::from(E128);
            }
            v1s = v0s + j1 - k1;
        }
    }

    let idx = ni - v1s;
    let mut ans = if idx >= 0 { v1.get(idx as usize).copied().unwrap_or(f64::NAN) } else { f64::NAN };
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += i64::from(E128);
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    clip_prob(ans)
}

/// Pelz–Good approximation to `P(D_n <= x)` (1976), for large `n`.
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let (zsquared, zthree, zfour, zsix) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;

    let qlog = -pi2 / 8.0 / zsquared;
    if qlog < MIN_LOG_EXP {
        return 0.0;
    }
    let q = qlog.exp();

    let k1a = -zsquared;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi4 * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi2 * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powi(8);

    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil().max(0.0) as u64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (msq, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf((8 * kk) as f64);
        let coeffs =
            [1.0, k1a + k1b * msq, k2a + k2b * msq + k2c * m4, k3a + k3b * msq + k3c * m4 + k3d * m6];
        for (ki, c) in k.iter_mut().zip(coeffs) {
            *ki = *ki * qpower + c;
        }
    }
    let div = [z, 6.0 * zfour, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (ki, d) in k.iter_mut().zip(div) {
        *ki = *ki * q * SQRT_2PI / d;
    }

    let q2 = (-pi2 / 2.0 / zsquared).exp();
    let sqrt3z = SQRT3 * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for kk in (1..=maxk).rev() {
        let ksq = (kk * kk) as f64;
        let kspi = PI * kk as f64;
        let qp = q2.powf(ksq);
        k2extra += ksq * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    k[2] += k2extra * pi2 * SQRT_2PI / (-36.0 * zthree);
    k[3] += k3extra * pi2 * SQRT_2PI / (216.0 * zsix);
    for (i, ki) in k.iter_mut().enumerate() {
        *ki /= nf.powf(i as f64 / 2.0);
    }
    k.iter().sum()
}

/// `floor(n·x)` and the fractional part of `n·x`, both from the exact product.
fn mod_nx(n: u64, x: f64) -> (i64, f64) {
    let nf = n as f64;
    let hi = nf * x;
    let lo = nf.mul_add(x, -hi);
    let mut fl = hi.floor();
    let mut alpha = (hi - fl) + lo;
    if alpha < 0.0 {
        fl -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        fl += 1.0;
        alpha -= 1.0;
    }
    (fl as i64, alpha)
}

/// Survival function `P(D_n^+ >= x)` of the one-sided KS statistic (SciPy's
/// `scipy.special.smirnov(n, x)`), by the Birnbaum–Tingey sum.
///
/// Returns NaN outside `0 <= x <= 1` or for `n == 0`.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let ni = i64::try_from(n).unwrap_or(i64::MAX);
    let (nxfl, alpha) = mod_nx(n, x);
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        // x <= 1/n.
        let cdf = x * (1.0 + x).powf(nf - 1.0);
        return clip_prob(1.0 - cdf);
    }
    if -2.0 * nf * x * x < CEPHES_MINLOG {
        return 0.0;
    }
    if nxfl >= ni - 1 {
        return clip_prob((1.0 - x).powf(nf));
    }
    if n > SMIRNOV_MAX_COMPUTE_N {
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        // SciPy takes whichever of sf and cdf is the smaller directly, the other as 1 - it.
        let sf = if logp < -std::f64::consts::LN_2 { logp.exp() } else { 1.0 + logp.exp_m1() };
        return clip_prob(sf);
    }

    // sf = x · Σ_{v=0}^{n-⌊nx⌋-1} C(n,v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1); all terms > 0.
    let n_terms = ni - nxfl;
    let vmid = ni / 2;
    let (mut c_man, mut c_exp) = (1.0f64, 0i64);
    let mut sum = 0.0f64;
    let mut comp = 0.0f64;
    for v in 0..n_terms {
        let vf = v as f64;
        // 1 - x - v/n and x + v/n, from the exact split n·x = nxfl + alpha.
        let b1 = ((ni - v - nxfl) as f64 - alpha) / nf;
        let b2 = ((nxfl + v) as f64 + alpha) / nf;
        let log_term =
            c_man.ln() + (c_exp as f64) * std::f64::consts::LN_2 + (nf - vf) * b1.ln() + (vf - 1.0) * b2.ln();
        let term = log_term.exp();
        if term.is_finite() && term != 0.0 {
            // Neumaier summation.
            let s = sum + term;
            if sum.abs() >= term.abs() {
                comp += (sum - s) + term;
            } else {
                comp += (term - s) + sum;
            }
            sum = s;
            let remaining = (n_terms - v) as f64;
            if 4.0 * remaining * term < f64::EPSILON * (sum + comp) && v != n_terms - 1 {
                break;
            }
        } else if v > vmid {
            break;
        }
        // C(n, v+1) = C(n, v) · (n - v) / (v + 1), renormalised to keep the mantissa in range.
        let (m, e) = frexp(c_man * ((ni - v) as f64 / (v + 1) as f64));
        c_man = m;
        c_exp += e;
    }
    clip_prob(x * (sum + comp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_and_ldexp_round_trip() {
        for x in [1.0, 0.75, 3.5e300, 1e-310, 123.456] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m), "{x}: {m}");
            assert_eq!(ldexp(m, e), x);
        }
    }

    #[test]
    fn smirnov_closed_forms() {
        // n = 1: D+ is uniform on [0, 1].
        assert_eq!(smirnov_sf(1, 0.3), 0.7);
        // x >= 1 - 1/n: (1 - x)^n.
        assert!((smirnov_sf(4, 0.8) - 0.2f64.powi(4)).abs() < 1e-15);
        // n = 2, 1/2 <= x < 1 handled above; 0 < x <= 1/2: sf = 1 - x(1+x).
        assert!((smirnov_sf(2, 0.25) - (1.0 - 0.25 * 1.25)).abs() < 1e-15);
    }

    #[test]
    fn kstwo_closed_forms() {
        // n = 1: D_1 = max(U, 1 - U), P(D_1 >= x) = 2(1 - x) for x >= 1/2.
        assert!((kstwo_sf(1, 0.7) - 0.6).abs() < 1e-15);
        assert_eq!(kstwo_sf(5, 0.05), 1.0);
        assert_eq!(kstwo_sf(5, 1.0), 0.0);
        assert!(kstwo_sf(0, 0.5).is_nan());
    }

    #[test]
    fn extreme_sizes_stay_in_range() {
        for x in [1e-12, 1e-6, 0.01, 0.3, 0.5, 0.99] {
            for n in [u64::MAX, 1 << 62, 10_000_000] {
                let p = kstwo_sf(n, x);
                assert!((0.0..=1.0).contains(&p), "kstwo_sf({n}, {x}) = {p}");
                let s = smirnov_sf(n, x);
                assert!((0.0..=1.0).contains(&s), "smirnov_sf({n}, {x}) = {s}");
            }
        }
    }
}
