//! Distribution comparisons, the bootstrap and `read_numbers`.
//!
//! Reference values marked "SciPy"/"NumPy" were produced with SciPy 1.17.1 / NumPy 2.4:
//! `scipy.stats.wasserstein_distance(a, b)`,
//! `scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2` (the divergence), and the
//! PersuasionForGood L1 as `sum(|h1 - h2|) * 0.1` with
//! `h = numpy.histogram(x, bins=numpy.linspace(0, 2, 21), density=True)[0]`.

use std::io::Write;

use vsim::stats::{
    bootstrap_ci, category_counts, histogram, jensen_shannon, l1_density_pfg, l1_histogram, l1_paired,
    read_numbers, total_variation, wasserstein1, Bins, StatsError, PFG_BINS,
};

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol * want.abs().max(1.0)
}

#[test]
fn l1_paired_is_mean_absolute_difference() {
    assert_eq!(l1_paired(&[0.0, 1.0, 2.0], &[0.5, 1.0, 1.0]).unwrap(), 0.5);
    assert!(matches!(l1_paired(&[1.0, 2.0], &[1.0]), Err(StatsError::LengthMismatch { left: 2, right: 1 })));
    assert!(matches!(l1_paired(&[], &[]), Err(StatsError::EmptySample { .. })));
    assert!(matches!(
        l1_paired(&[1.0, f64::NAN], &[1.0, 2.0]),
        Err(StatsError::InvalidValue { which: "sim", index: 1, .. })
    ));
}

#[test]
fn histogram_matches_numpy_edges() {
    // NumPy: histogram([...], bins=linspace(0, 2, 21))[0]; 0.3 and 0.6 fall below the
    // float edges 0.30000000000000004 and 0.6000000000000001.
    let h = histogram(&[0.3, 0.3, 0.6, 0.7, 1.9, 2.0, 0.1, 0.2, 1.0, 0.0], &PFG_BINS).unwrap();
    assert_eq!(h.counts, vec![1, 1, 3, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    assert_eq!((h.below, h.above), (0, 0));
    // NumPy: histogram([...], bins=linspace(0, 3, 11))[0]; out-of-range values dropped.
    let bins = Bins { lo: 0.0, hi: 3.0, n: 10 };
    let h = histogram(&[0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, -0.5], &bins).unwrap();
    assert_eq!(h.counts, vec![0, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    assert_eq!((h.below, h.above, h.in_range()), (1, 0, 7));
}

#[test]
fn invalid_bins_are_rejected() {
    for bins in [
        Bins { lo: 1.0, hi: 1.0, n: 3 },
        Bins { lo: 0.0, hi: 1.0, n: 0 },
        Bins { lo: 0.0, hi: f64::NAN, n: 2 },
    ] {
        assert!(matches!(histogram(&[0.5], &bins), Err(StatsError::InvalidParameter { name: "bins", .. })));
    }
}

#[test]
fn l1_histogram_between_normalised_histograms() {
    let bins = Bins { lo: 0.0, hi: 4.0, n: 4 };
    // a: [1/2, 1/2, 0, 0], b: [0, 1/4, 1/4, 1/2] -> 1/2 + 1/4 + 1/4 + 1/2 = 1.5
    let d = l1_histogram(&[0.5, 1.5], &[1.5, 2.5, 3.5, 4.0], &bins).unwrap();
    assert!(close(d, 1.5, 1e-15));
    assert_eq!(l1_histogram(&[0.1, 0.2], &[0.3], &bins).unwrap(), 0.0);
    assert!(matches!(
        l1_histogram(&[9.0], &[1.0], &bins),
        Err(StatsError::NoValuesInRange { which: "a", .. })
    ));
}

#[test]
fn l1_density_pfg_matches_reference_code() {
    let donations_a = [0., 0., 0., 0.5, 1., 1., 1., 2., 2., 0.25, 0., 0.5, 1., 0., 2., 0., 0., 1.5, 0.1, 1.];
    let donations_b = [0., 0., 0., 0., 0., 0.5, 0.5, 1., 1., 2., 0., 0., 0., 1., 0., 0.1, 0., 0.];
    let cases: [(&[f64], &[f64], f64); 3] = [
        (&donations_a, &donations_b, 0.5555555555555555),
        (&[0.3, 0.3, 0.6, 0.7, 1.9, 2.0], &[0.0, 0.3, 0.31, 1.0], 1.5),
        (&[0., 0., 0.], &[2., 2.], 2.0000000000000013),
    ];
    for (a, b, want) in cases {
        let got = l1_density_pfg(a, b).unwrap();
        assert!(close(got, want, 1e-12), "{got} vs {want}");
        // The same quantity as the L1 between proportions over the same bins.
        assert!(close(l1_histogram(a, b, &PFG_BINS).unwrap(), want, 1e-12));
    }
}

#[test]
fn wasserstein1_matches_scipy() {
    let cases: [(&[f64], &[f64], f64); 4] = [
        (&[0., 1., 3.], &[5., 6., 8.], 5.0),
        (&[0., 0., 0.5, 1., 2., 2.], &[0., 0.1, 0.1, 1.5], 0.5083333333333334),
        (&[3.4, 3.9, 7.5, 7.8], &[4.5, 1.4], 2.7),
        (&[1., 1., 1., 1.], &[1., 1.], 0.0),
    ];
    for (a, b, want) in cases {
        let got = wasserstein1(a, b).unwrap();
        assert!(close(got, want, 1e-12), "{got} vs {want}");
        assert!(close(wasserstein1(b, a).unwrap(), want, 1e-12));
    }
    assert!(matches!(wasserstein1(&[], &[1.0]), Err(StatsError::EmptySample { which: "a" })));
    assert!(matches!(
        wasserstein1(&[1.0], &[f64::INFINITY]),
        Err(StatsError::InvalidValue { which: "b", .. })
    ));
}

/// Values near ±f64::MAX: identical samples are at distance 0 (not 0 · ∞ = NaN), a distance
/// within range is exact, and one beyond the largest float is an error, never NaN or ∞.
#[test]
fn wasserstein1_at_the_ends_of_the_floats_is_finite_or_an_error() {
    let extreme = [-1e308, 1e308];
    assert_eq!(wasserstein1(&extreme, &extreme).unwrap(), 0.0);
    assert_eq!(wasserstein1(&[-1e308, 0.0], &[0.0, 0.0]).unwrap(), 5e307);
    assert_eq!(wasserstein1(&[f64::MAX], &[f64::MAX / 2.0]).unwrap(), f64::MAX / 2.0);
    assert!(matches!(wasserstein1(&[-1e308], &[1e308]), Err(StatsError::InvalidParameter { .. })));
}

#[test]
fn total_variation_of_categorical_distributions() {
    assert!(close(total_variation(&[0.5, 0.5, 0.0], &[0.0, 0.1, 0.9]).unwrap(), 0.9, 1e-15));
    // Counts are normalised: [2, 2] ~ [0.5, 0.5].
    assert_eq!(total_variation(&[2.0, 2.0], &[0.5, 0.5]).unwrap(), 0.0);
    assert!(close(total_variation(&[1.0, 0.0], &[0.0, 3.0]).unwrap(), 1.0, 1e-15));
    assert!(matches!(total_variation(&[1.0], &[0.5, 0.5]), Err(StatsError::LengthMismatch { .. })));
    assert!(matches!(total_variation(&[0.0, 0.0], &[0.5, 0.5]), Err(StatsError::InvalidDistribution { .. })));
    assert!(matches!(
        total_variation(&[-1.0, 2.0], &[0.5, 0.5]),
        Err(StatsError::InvalidDistribution { .. })
    ));
}

#[test]
fn jensen_shannon_divergence_matches_scipy() {
    let cases: [(&[f64], &[f64], f64); 5] = [
        (&[0.5, 0.5, 0.], &[0., 0.1, 0.9], 0.8049932735054937),
        (&[1., 0.], &[0., 1.], 1.0),
        (&[1., 2., 3., 4.], &[4., 3., 2., 1.], 0.15356065532898452),
        (&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5], 0.0),
        (&[10., 0., 5.], &[3., 3., 3.], 0.20751874963942188),
    ];
    for (p, q, want) in cases {
        let got = jensen_shannon(p, q).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!((jensen_shannon(q, p).unwrap() - want).abs() < 1e-12);
    }
}

#[test]
fn category_counts_align_labels() {
    let c = category_counts(&["yes", "no", "yes"], &["no", "maybe"]);
    assert_eq!(c.labels, vec!["maybe", "no", "yes"]);
    assert_eq!(c.a, vec![0.0, 1.0, 2.0]);
    assert_eq!(c.b, vec![1.0, 1.0, 0.0]);
    // p = [0, 1/3, 2/3], q = [1/2, 1/2, 0]: TV = (1/2 + 1/6 + 2/3) / 2 = 2/3.
    assert!(close(total_variation(&c.a, &c.b).unwrap(), 2.0 / 3.0, 1e-15));
}

fn mean_diff(a: &[f64], b: &[f64]) -> Result<f64, StatsError> {
    Ok(a.iter().sum::<f64>() / a.len() as f64 - b.iter().sum::<f64>() / b.len() as f64)
}

#[test]
fn bootstrap_is_seeded_and_brackets_the_estimate() {
    let a: Vec<f64> = (0..40).map(|i| (i % 7) as f64).collect();
    let b: Vec<f64> = (0..25).map(|i| (i % 5) as f64 + 1.5).collect();
    let ci = bootstrap_ci(&a, &b, mean_diff, 2000, 0.95, 7).unwrap();
    assert_eq!(ci, bootstrap_ci(&a, &b, mean_diff, 2000, 0.95, 7).unwrap());
    assert_ne!(ci, bootstrap_ci(&a, &b, mean_diff, 2000, 0.95, 8).unwrap());
    assert!((ci.estimate - mean_diff(&a, &b).unwrap()).abs() < 1e-15);
    assert!(ci.lo < ci.estimate && ci.estimate < ci.hi, "{ci:?}");
    // A wider level gives a wider interval from the same resamples.
    let wide = bootstrap_ci(&a, &b, mean_diff, 2000, 0.99, 7).unwrap();
    assert!(wide.lo <= ci.lo && wide.hi >= ci.hi);
}

#[test]
fn bootstrap_resamples_each_sample_at_its_own_size() {
    let ci =
        bootstrap_ci(&[1.0; 3], &[2.0; 5], |a, b| Ok((a.len() * 10 + b.len()) as f64), 50, 0.9, 1).unwrap();
    assert_eq!((ci.estimate, ci.lo, ci.hi), (35.0, 35.0, 35.0));
    // Constant samples: every resample gives the same statistic.
    let ci = bootstrap_ci(&[1.0; 4], &[3.0; 6], mean_diff, 100, 0.95, 3).unwrap();
    assert_eq!((ci.lo, ci.hi), (-2.0, -2.0));
}

#[test]
fn bootstrap_rejects_bad_input() {
    let a = [1.0, 2.0];
    assert!(matches!(
        bootstrap_ci(&[], &a, mean_diff, 10, 0.9, 0),
        Err(StatsError::EmptySample { which: "a" })
    ));
    assert!(matches!(
        bootstrap_ci(&a, &a, mean_diff, 0, 0.9, 0),
        Err(StatsError::InvalidParameter { name: "n_resamples", .. })
    ));
    for c in [0.0, 1.0, f64::NAN] {
        assert!(matches!(
            bootstrap_ci(&a, &a, mean_diff, 10, c, 0),
            Err(StatsError::InvalidParameter { name: "confidence", .. })
        ));
    }
    assert!(matches!(
        bootstrap_ci(&a, &a, |_, _| Ok(f64::NAN), 10, 0.9, 0),
        Err(StatsError::NonFiniteStatistic { resample: 0, .. })
    ));
    // Errors of the statistic itself are passed through.
    assert!(matches!(
        bootstrap_ci(&a, &[1.0], l1_paired, 10, 0.9, 0),
        Err(StatsError::LengthMismatch { .. })
    ));
}

#[test]
fn read_numbers_skips_blanks_and_comments() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(f, "# donations\n1\n\n  2.5   # half\n-3e2\r\n0\n").unwrap();
    assert_eq!(read_numbers(f.path()).unwrap(), vec![1.0, 2.5, -300.0, 0.0]);
}

#[test]
fn read_numbers_reports_file_line_and_text() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(f, "1\n# ok\n$2.00\n").unwrap();
    let err = read_numbers(f.path()).unwrap_err();
    match &err {
        StatsError::Parse { path, line, text } => {
            assert_eq!(path, f.path());
            assert_eq!(*line, 3);
            assert_eq!(text, "$2.00");
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&f.path().display().to_string()) && msg.contains(":3:") && msg.contains("$2.00"),
        "{msg}"
    );

    let mut g = tempfile::NamedTempFile::new().unwrap();
    writeln!(g, "nan").unwrap();
    assert!(matches!(read_numbers(g.path()), Err(StatsError::Parse { line: 1, .. })));
}

#[test]
fn read_numbers_names_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file.txt");
    let err = read_numbers(&missing).unwrap_err();
    assert!(matches!(err, StatsError::Read { .. }));
    assert!(err.to_string().contains("no-such-file.txt"), "{err}");
}
