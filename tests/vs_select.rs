//! Selection rules: empirical frequencies, ties, the tau filter and reproducibility.

use vsim::seed;
use vsim::vs::select::{eligible, try_select, RuleError, SelectError};
use vsim::vs::{select, Candidate, Selection, SelectionRule};

fn cands(ps: &[f64]) -> Vec<Candidate> {
    ps.iter()
        .enumerate()
        .map(|(i, &p)| Candidate {
            text: format!("c{i}"),
            probability: p,
            raw_probability: Some(p),
            repairs: vec![],
        })
        .collect()
}

fn frequencies(candidates: &[Candidate], rule: &SelectionRule, draws: usize, s: u64) -> Vec<f64> {
    let mut rng = seed::rng(s);
    let mut counts = vec![0usize; candidates.len()];
    for _ in 0..draws {
        let choice = select(candidates, rule, &mut rng);
        counts[choice.index] += 1;
    }
    counts.into_iter().map(|c| c as f64 / draws as f64).collect()
}

#[test]
fn weighted_draws_match_probabilities() {
    let ps = [0.5, 0.25, 0.15, 0.07, 0.03];
    let freq = frequencies(&cands(&ps), &SelectionRule::new(Selection::Weighted), 10_000, 7);
    for (f, p) in freq.iter().zip(ps) {
        assert!((f - p).abs() < 0.02, "frequency {f} vs probability {p}: {freq:?}");
    }
}

#[test]
fn uniform_draws_ignore_probabilities() {
    let ps = [0.7, 0.2, 0.05, 0.05];
    let freq = frequencies(&cands(&ps), &SelectionRule::new(Selection::Uniform), 10_000, 11);
    for f in &freq {
        assert!((f - 0.25).abs() < 0.02, "{freq:?}");
    }
}

#[test]
fn weighted_draw_is_recorded_and_replayable() {
    let c = cands(&[0.2, 0.5, 0.3]);
    let rule = SelectionRule::new(Selection::Weighted);
    let choice = select(&c, &rule, &mut seed::rng(3));
    let u = choice.draw.expect("weighted records its draw");
    assert!((0.0..1.0).contains(&u));
    // The recorded draw alone determines the index: walk the cumulative sum.
    let expected = if u < 0.2 {
        0
    } else if u < 0.7 {
        1
    } else {
        2
    };
    assert_eq!(choice.index, expected, "u = {u}");
    assert_eq!(choice.eligible, vec![0, 1, 2]);
    assert_eq!(choice.rule, rule);
}

#[test]
fn uniform_index_is_floor_of_u_times_n() {
    let c = cands(&[0.9, 0.05, 0.05]);
    let mut rng = seed::rng(5);
    for _ in 0..100 {
        let choice = select(&c, &SelectionRule::new(Selection::Uniform), &mut rng);
        let u = choice.draw.unwrap();
        assert_eq!(choice.index, (u * 3.0).floor() as usize);
    }
}

#[test]
fn argmax_takes_the_lowest_index_on_ties_and_draws_nothing() {
    let c = cands(&[0.2, 0.4, 0.4]);
    let choice = select(&c, &SelectionRule::new(Selection::Argmax), &mut seed::rng(1));
    assert_eq!(choice.index, 1);
    assert_eq!(choice.draw, None);
    let c = cands(&[0.1, 0.3, 0.6]);
    assert_eq!(select(&c, &SelectionRule::new(Selection::Argmax), &mut seed::rng(1)).index, 2);
}

#[test]
fn tau_filter_drops_low_probability_candidates() {
    let c = cands(&[0.05, 0.4, 0.08, 0.47]);
    let rule = SelectionRule::new(Selection::Uniform).with_min_prob(0.1, 1);
    assert_eq!(eligible(&c, &rule), vec![1, 3]);
    let mut rng = seed::rng(9);
    for _ in 0..200 {
        let choice = select(&c, &rule, &mut rng);
        assert!(choice.index == 1 || choice.index == 3);
        assert_eq!(choice.eligible, vec![1, 3]);
    }
}

#[test]
fn tau_filter_keeps_min_keep_most_probable_with_ties_by_index() {
    let c = cands(&[0.05, 0.02, 0.05, 0.01, 0.03]);
    // Nothing passes tau = 0.5; keep the two most probable: 0.05 at 0 and 2.
    let rule = SelectionRule::new(Selection::Weighted).with_min_prob(0.5, 2);
    assert_eq!(eligible(&c, &rule), vec![0, 2]);
    // Three kept: the tie at 0.05 first, then 0.03 at index 4.
    let rule = SelectionRule::new(Selection::Weighted).with_min_prob(0.5, 3);
    assert_eq!(eligible(&c, &rule), vec![0, 2, 4]);
    // min_keep above the number of candidates keeps them all.
    let rule = SelectionRule::new(Selection::Weighted).with_min_prob(0.5, 10);
    assert_eq!(eligible(&c, &rule), vec![0, 1, 2, 3, 4]);
}

#[test]
fn weighted_over_the_filtered_set_renormalises() {
    let c = cands(&[0.6, 0.3, 0.1]);
    let rule = SelectionRule::new(Selection::Weighted).with_min_prob(0.2, 1);
    let freq = frequencies(&c, &rule, 10_000, 21);
    assert_eq!(freq[2], 0.0);
    assert!((freq[0] - 2.0 / 3.0).abs() < 0.02, "{freq:?}");
    assert!((freq[1] - 1.0 / 3.0).abs() < 0.02, "{freq:?}");
}

#[test]
fn weighted_with_all_zero_probabilities_falls_back_to_uniform() {
    let c = cands(&[0.0, 0.0]);
    let freq = frequencies(&c, &SelectionRule::new(Selection::Weighted), 10_000, 2);
    assert!((freq[0] - 0.5).abs() < 0.02, "{freq:?}");
}

#[test]
fn zero_probability_candidates_are_never_drawn_by_weight() {
    let c = cands(&[0.0, 1.0, 0.0]);
    let freq = frequencies(&c, &SelectionRule::new(Selection::Weighted), 1_000, 4);
    assert_eq!(freq, vec![0.0, 1.0, 0.0]);
}

#[test]
fn same_seed_same_choice() {
    let c = cands(&[0.3, 0.3, 0.2, 0.2]);
    for selection in Selection::ALL {
        let rule = SelectionRule::new(selection);
        let a: Vec<_> = {
            let mut rng = seed::rng(99);
            (0..50).map(|_| select(&c, &rule, &mut rng)).collect()
        };
        let b: Vec<_> = {
            let mut rng = seed::rng(99);
            (0..50).map(|_| select(&c, &rule, &mut rng)).collect()
        };
        assert_eq!(a, b);
    }
}

#[test]
fn selection_names_parse() {
    assert_eq!("weighted".parse::<Selection>().unwrap(), Selection::Weighted);
    assert_eq!("Uniform".parse::<Selection>().unwrap(), Selection::Uniform);
    assert_eq!("random".parse::<Selection>().unwrap(), Selection::Uniform);
    assert_eq!(" argmax ".parse::<Selection>().unwrap(), Selection::Argmax);
    let err = "greedy".parse::<Selection>().unwrap_err().to_string();
    for name in ["weighted", "uniform", "random", "argmax", "greedy"] {
        assert!(err.contains(name), "{err}");
    }
    let rule: SelectionRule = toml::from_str("selection = \"random\"\ntau = 0.1").unwrap();
    assert_eq!(rule, SelectionRule::new(Selection::Uniform).with_min_prob(0.1, 1));
}

#[test]
fn invalid_rules_are_reported() {
    assert_eq!(
        SelectionRule::new(Selection::Weighted).with_min_prob(1.5, 1).validate(),
        Err(RuleError::MinProbOutOfRange(1.5))
    );
    assert_eq!(
        SelectionRule::new(Selection::Weighted).with_min_prob(-0.1, 1).validate(),
        Err(RuleError::MinProbOutOfRange(-0.1))
    );
    assert!(SelectionRule::new(Selection::Weighted).with_min_prob(f64::NAN, 1).validate().is_err());
    assert_eq!(
        SelectionRule::new(Selection::Weighted).with_min_prob(0.2, 0).validate(),
        Err(RuleError::MinKeepZero)
    );
    assert_eq!(SelectionRule::new(Selection::Argmax).with_min_prob(0.0, 1).validate(), Ok(()));
    let mut rng = seed::rng(0);
    assert_eq!(try_select(&[], &SelectionRule::default(), &mut rng), Err(SelectError::NoCandidates));
    let bad = SelectionRule::new(Selection::Uniform).with_min_prob(0.2, 0);
    assert_eq!(try_select(&cands(&[1.0]), &bad, &mut rng), Err(SelectError::Rule(RuleError::MinKeepZero)));
    // The lenient `select` never panics, even on empty input or a broken rule.
    let choice = select(&[], &bad, &mut rng);
    assert!(choice.eligible.is_empty());
    let c = cands(&[0.5, f64::NAN, -1.0, f64::INFINITY]);
    let choice = select(&c, &SelectionRule::new(Selection::Weighted).with_min_prob(f64::NAN, 0), &mut rng);
    assert_eq!(choice.index, 0);
}
