//! `ks_2samp` and `kstwo_sf` against SciPy.
//!
//! Reference values were produced with SciPy 1.17.1 / NumPy 2.4 (Python 3.11) by
//! `scipy.stats.ks_2samp(a, b, method=m)` for m in auto/exact/asymp and by
//! `scipy.stats.kstwo.sf(x, n)`, printed with `repr(float(...))`. The large samples are
//! generated identically on both sides by `lcg` below (integer arithmetic and one exact
//! division), e.g. in Python `[((i*7919 + 0) % 10007) / 10007 * 1.0 + 0.0 for i in range(3000)]`.

use vsim::stats::kolmogorov::kstwo_sf;
use vsim::stats::{ks_2samp, KsMode, StatsError};

fn lcg(n: u64, mul: u64, add: u64, modulus: u64, scale: f64, offset: f64) -> Vec<f64> {
    (0..n).map(|i| ((i * mul + add) % modulus) as f64 / modulus as f64 * scale + offset).collect()
}

fn sample(name: &str) -> (Vec<f64>, Vec<f64>) {
    let v = |s: &[f64]| s.to_vec();
    match name {
        "equal_small" => (v(&[0.61, 0.29, 0.06, 0.59, -1.73]), v(&[-0.74, 0.51, -0.56, 0.39, 1.28])),
        "unequal_small" => (
            v(&[1.2, 3.4, 0.5, 2.2, 5.1, 0.9, 4.4]),
            v(&[0.3, 2.5, 1.1, 6.0, 3.3, 0.2, 4.9, 5.5, 2.8, 7.1, 1.9]),
        ),
        "donation_ties" => (
            v(&[0., 0., 0., 0.5, 1., 1., 1., 2., 2., 0.25, 0., 0.5, 1., 0., 2., 0., 0., 1.5, 0.1, 1.]),
            v(&[0., 0., 0., 0., 0., 0.5, 0.5, 1., 1., 2., 0., 0., 0., 1., 0., 0.1, 0., 0.]),
        ),
        "likert_ties" => (
            v(&[1., 2., 2., 3., 3., 3., 4., 4., 5., 5., 5., 5., 2., 3., 4.]),
            v(&[1., 1., 2., 2., 2., 3., 3., 4., 5., 1., 2., 2., 3., 1., 2., 3., 4., 2., 1., 1., 2., 3.]),
        ),
        "identical" => (v(&[0.5, 1., 1.5, 2., 2.]), v(&[0.5, 1., 1.5, 2., 2.])),
        "disjoint_unequal" => (
            v(&[1., 2., 3., 4., 5., 6., 7., 8.]),
            v(&[10., 11., 12., 13., 14., 15., 16., 17., 18., 19., 20., 21.]),
        ),
        "disjoint_equal" => (v(&[1., 2., 3.]), v(&[4., 5., 6.])),
        "large_equal_3000" => (lcg(3000, 7919, 0, 10007, 1.0, 0.0), lcg(3000, 6007, 13, 9973, 1.05, 0.0)),
        "large_unequal_1000_1500" => {
            (lcg(1000, 7919, 0, 10007, 1.0, 0.0), lcg(1500, 6007, 13, 9973, 1.0, 0.02))
        }
        "auto_asymp_12000_400" => (lcg(12000, 7919, 0, 10007, 1.0, 0.0), lcg(400, 6007, 13, 9973, 1.0, 0.03)),
        "mid_600_600" => (lcg(600, 7919, 0, 10007, 1.0, 0.0), lcg(600, 6007, 13, 9973, 1.1, 0.0)),
        "small_20_20" => (lcg(20, 7919, 0, 10007, 1.0, 0.0), lcg(20, 6007, 13, 9973, 1.3, 0.0)),
        "fallback_50000_49999" => {
            (lcg(50000, 7919, 0, 100003, 1.0, 0.0), lcg(49999, 6007, 13, 99991, 1.0, 0.004))
        }
        other => panic!("unknown case {other}"),
    }
}

/// (case, method, D, p) from SciPy.
const KS_REFERENCE: &[(&str, &str, f64, f64)] = &[
    ("equal_small", "auto", 0.2, 1.0),
    ("equal_small", "exact", 0.2, 1.0),
    ("equal_small", "asymp", 0.20000000000000007, 1.0),
    ("unequal_small", "auto", 0.2727272727272727, 0.8294369029663147),
    ("unequal_small", "exact", 0.2727272727272727, 0.8294369029663147),
    ("unequal_small", "asymp", 0.2727272727272727, 0.8499846321972543),
    ("donation_ties", "auto", 0.26666666666666666, 0.42097045997998755),
    ("donation_ties", "exact", 0.26666666666666666, 0.42097045997998755),
    ("donation_ties", "asymp", 0.2666666666666666, 0.46613395175197536),
    ("likert_ties", "auto", 0.3696969696969697, 0.1329824318057905),
    ("likert_ties", "exact", 0.3696969696969697, 0.1329824318057905),
    ("likert_ties", "asymp", 0.3696969696969697, 0.13055978370748977),
    ("identical", "auto", 0.0, 1.0),
    ("identical", "exact", 0.0, 1.0),
    ("identical", "asymp", 0.0, 1.0),
    ("disjoint_unequal", "auto", 1.0, 1.5876796062554575e-05),
    ("disjoint_unequal", "exact", 1.0, 1.5876796062554575e-05),
    ("disjoint_unequal", "asymp", 1.0, 0.0),
    ("disjoint_equal", "auto", 1.0, 0.09999999999999999),
    ("disjoint_equal", "exact", 1.0, 0.09999999999999999),
    ("disjoint_equal", "asymp", 1.0, 0.0),
    ("large_equal_3000", "auto", 0.04733333333333333, 0.0024065120840911754),
    ("large_equal_3000", "exact", 0.04733333333333333, 0.0024065120840911754),
    ("large_equal_3000", "asymp", 0.04733333333333334, 0.0023294684653827552),
    ("large_unequal_1000_1500", "auto", 0.022333333333333334, 0.9211315264642486),
    ("large_unequal_1000_1500", "exact", 0.022333333333333334, 0.9211315264642486),
    ("large_unequal_1000_1500", "asymp", 0.022333333333333316, 0.9190904676277442),
    ("auto_asymp_12000_400", "auto", 0.03208333333333335, 0.8082626528614224),
    ("auto_asymp_12000_400", "exact", 0.03208333333333333, 0.8089662047763393),
    ("auto_asymp_12000_400", "asymp", 0.03208333333333335, 0.8082626528614224),
    ("mid_600_600", "auto", 0.09166666666666666, 0.012888917414279943),
    ("mid_600_600", "exact", 0.09166666666666666, 0.012888917414279943),
    ("mid_600_600", "asymp", 0.09166666666666667, 0.012088826930662157),
    ("small_20_20", "auto", 0.2, 0.8319696107963263),
    ("small_20_20", "exact", 0.2, 0.8319696107963263),
    ("small_20_20", "asymp", 0.20000000000000007, 0.7487190399999994),
    ("fallback_50000_49999", "auto", 0.004053587871757414, 0.8043223661124687),
    ("fallback_50000_49999", "exact", 0.004053587871757414, 0.8043223661124687),
    ("fallback_50000_49999", "asymp", 0.004053587871757414, 0.8043223661124687),
];

/// The method each reference case actually used. SciPy falls back to the asymptotic
/// p-value for "equal_small" because its exact series sums to 1.0000000000000002 there,
/// and for "fallback_50000_49999" because lcm(50000, 49999) exceeds 32-bit lattice range.
fn expected_method(case: &str, method: &str) -> KsMode {
    match (case, method) {
        (_, "asymp") => KsMode::Asymptotic,
        ("equal_small", _) | ("fallback_50000_49999", _) => KsMode::Asymptotic,
        ("auto_asymp_12000_400", "auto") => KsMode::Asymptotic,
        _ => KsMode::Exact,
    }
}

fn mode(m: &str) -> KsMode {
    match m {
        "auto" => KsMode::Auto,
        "exact" => KsMode::Exact,
        _ => KsMode::Asymptotic,
    }
}

fn assert_p_close(got: f64, want: f64, what: &str) {
    if want == 0.0 {
        assert!(got.abs() < 1e-300, "{what}: p = {got}, want 0");
    } else {
        let rel = (got - want).abs() / want.abs();
        assert!(rel < 1e-8, "{what}: p = {got:e}, want {want:e} (rel {rel:e})");
    }
}

#[test]
fn ks_2samp_matches_scipy() {
    for &(case, method, d, p) in KS_REFERENCE {
        let (a, b) = sample(case);
        let r = ks_2samp(&a, &b, mode(method)).unwrap();
        let what = format!("{case}/{method}");
        assert!((r.statistic - d).abs() < 1e-10, "{what}: D = {}, want {d}", r.statistic);
        assert_p_close(r.pvalue, p, &what);
        assert_eq!(r.method_used, expected_method(case, method), "{what}");
        assert_eq!((r.n1, r.n2), (a.len(), b.len()), "{what}");
    }
}

#[test]
fn ks_2samp_is_symmetric_and_order_free() {
    let (a, b) = sample("donation_ties");
    let ab = ks_2samp(&a, &b, KsMode::Auto).unwrap();
    let ba = ks_2samp(&b, &a, KsMode::Auto).unwrap();
    assert_eq!(ab.statistic, ba.statistic);
    assert!((ab.pvalue - ba.pvalue).abs() < 1e-14);
    let mut shuffled = a.clone();
    shuffled.reverse();
    assert_eq!(ks_2samp(&shuffled, &b, KsMode::Auto).unwrap(), ab);
}

#[test]
fn infinities_are_ordinary_points() {
    // SciPy: ks_2samp([-inf, 0, 1], [0.5, 2, inf], method="exact") -> (2/3, 0.6).
    let r = ks_2samp(&[f64::NEG_INFINITY, 0.0, 1.0], &[0.5, 2.0, f64::INFINITY], KsMode::Exact).unwrap();
    assert!((r.statistic - 2.0 / 3.0).abs() < 1e-12);
    assert_p_close(r.pvalue, 0.6, "infinite values");
}

#[test]
fn empty_and_nan_samples_are_errors() {
    assert!(matches!(ks_2samp(&[], &[1.0], KsMode::Auto), Err(StatsError::EmptySample { which: "a" })));
    assert!(matches!(ks_2samp(&[1.0], &[], KsMode::Auto), Err(StatsError::EmptySample { which: "b" })));
    let err = ks_2samp(&[1.0, 2.0], &[0.5, f64::NAN], KsMode::Auto).unwrap_err();
    assert!(matches!(err, StatsError::InvalidValue { which: "b", index: 1, .. }), "{err}");
}

#[test]
fn result_serialises_with_lowercase_method() {
    let r = ks_2samp(&[1.0, 2.0], &[3.0, 4.0], KsMode::Auto).unwrap();
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["method_used"], "exact");
    assert_eq!(json["n1"], 2);
    assert_eq!(json["statistic"], 1.0);
}

/// (n, x, kstwo.sf(x, n)) from SciPy, one or more per algorithm region: Ruben–Gambino
/// at both ends, Durbin/MTW, Pomeranz, exact Smirnov (x >= 0.5 and large n·x²), its
/// approximation for n > 10^6, and Pelz–Good.
const KSTWO_REFERENCE: &[(u64, f64, f64)] = &[
    (5, 0.3, 0.664),
    (20, 0.3, 0.04306706665851623),
    (20, 0.48, 9.252575770947909e-05),
    (10, 0.6, 0.0005681672000000003),
    (10, 0.95, 1.9531250000000172e-13),
    (10, 0.08, 0.9999978058034054),
    (1000, 0.02, 0.8108971656895577),
    (1000, 0.01, 0.9999496745370611),
    (1000, 0.06, 0.001428597887952891),
    (1000, 0.7, 0.0),
    (200000, 0.002, 0.39995085369038097),
    (2000000, 0.0015, 0.00024657290508461606),
    (300, 0.0015, 1.0),
    (300, 0.003, 1.0),
    (140, 0.05, 0.8576480297656114),
    (141, 0.05, 0.854845693009663),
    (50, 0.15, 0.19026366518248072),
    (100000, 0.004, 0.08130148920222469),
];

#[test]
fn kstwo_sf_matches_scipy() {
    for &(n, x, sf) in KSTWO_REFERENCE {
        assert_p_close(kstwo_sf(n, x), sf, &format!("kstwo.sf({x}, {n})"));
    }
}

mod props {
    use proptest::prelude::*;
    use vsim::stats::kolmogorov::kstwo_sf;
    use vsim::stats::{ks_2samp, KsMode};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn ks_outputs_are_probabilities(
            a in prop::collection::vec(-1e6f64..1e6, 1..60),
            b in prop::collection::vec(prop_oneof![Just(0.0), Just(1.0), -1e6f64..1e6], 1..60),
        ) {
            for mode in [KsMode::Auto, KsMode::Exact, KsMode::Asymptotic] {
                let r = ks_2samp(&a, &b, mode).unwrap();
                prop_assert!((0.0..=1.0).contains(&r.statistic));
                if a.len() + b.len() > 2 {
                    prop_assert!((0.0..=1.0).contains(&r.pvalue), "{r:?}");
                }
            }
        }

        #[test]
        fn kstwo_sf_is_a_probability(n in 1u64..20_000, x in 0.0f64..1.0) {
            let p = kstwo_sf(n, x);
            prop_assert!((0.0..=1.0).contains(&p), "kstwo_sf({n}, {x}) = {p}");
        }
    }
}
