//! `vsim eval`'s language metrics within dialogues (Distinct-N, semantic diversity), their
//! pooled values on equal-size samples, the selection check and the stated probabilities,
//! on hand-built run directories.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use vsim::dialogue::events::Event;
use vsim::eval::metrics::Metric;
use vsim::eval::{evaluate, EvalOptions, Evaluation, HumanReference, RunData};
use vsim::rundir::transcript::TranscriptWriter;
use vsim::vs::{select, Candidate, Selection, SelectionRule};

/// One turn: speaker, candidates as (text, normalised, stated), chosen index, rule.
struct Turn {
    speaker: &'static str,
    method: &'static str,
    candidates: Vec<(String, f64, Option<f64>)>,
    chosen: usize,
    rule: SelectionRule,
}

/// A persuadee turn saying `text` directly (one candidate).
fn says(text: &str) -> Turn {
    Turn {
        speaker: "persuadee",
        method: "direct",
        candidates: vec![(text.to_string(), 1.0, None)],
        chosen: 0,
        rule: SelectionRule::default(),
    }
}

/// A verbalized-sampling persuadee turn with stated probabilities `p` (normalised here).
fn vs_turn(p: &[f64], chosen: usize, rule: SelectionRule) -> Turn {
    let sum: f64 = p.iter().sum();
    Turn {
        speaker: "persuadee",
        method: "vs-standard",
        candidates: p.iter().enumerate().map(|(i, x)| (format!("reply {i}"), x / sum, Some(*x))).collect(),
        chosen,
        rule,
    }
}

fn ev(v: Value) -> Event {
    serde_json::from_value(v).expect("valid event")
}

fn write_run(dir: &Path, dialogues: &[Vec<Turn>]) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = json!({
        "scenario": {"name": "persuasion_for_good", "outcomes": [
            {"name": "donation", "role": "persuadee", "kind": {"type": "number", "min": 0.0, "max": 2.0}}
        ]},
        "population": "personas"
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let mut w = TranscriptWriter::open(&dir.join("transcripts.jsonl")).unwrap();
    let zero = json!({"prompt_tokens": 0, "completion_tokens": 0});
    for (i, turns) in dialogues.iter().enumerate() {
        let id = format!("d{i:03}");
        let mut evs = vec![ev(json!({
            "event": "begin", "dialogue": id, "index": i, "seed": 1, "scenario": "persuasion_for_good",
            "agents": [{"role": "persuadee", "name": "Persuadee", "method": "vs-standard", "model": "scripted", "system_prompt": ""}]
        }))];
        for (t, turn) in turns.iter().enumerate() {
            let candidates: Vec<Value> = turn
                .candidates
                .iter()
                .map(|(text, p, raw)| json!({"text": text, "probability": p, "raw_probability": raw, "repairs": []}))
                .collect();
            evs.push(ev(json!({
                "event": "turn", "dialogue": id, "turn": t, "speaker": turn.speaker, "method": turn.method,
                "candidates": candidates,
                "choice": {"index": turn.chosen, "draw": 0.5, "eligible": (0..turn.candidates.len()).collect::<Vec<_>>(),
                           "rule": turn.rule},
                "text": turn.candidates[turn.chosen].0,
                "calls": [{"raw": "{}", "latency_ms": 1, "usage": null, "cached": false, "seed": 1}],
                "usage": zero, "latency_ms": 1
            })));
        }
        evs.push(ev(json!({
            "event": "outcome", "dialogue": id, "role": "persuadee", "name": "donation", "value": 1.0,
            "source": "question", "raw": "", "usage": zero
        })));
        evs.push(ev(json!({"event": "end", "dialogue": id, "turns": turns.len(), "reason": "max_turns", "usage": zero})));
        w.append(&evs).unwrap();
    }
}

/// A human reference holding only persuadee utterances, per dialogue.
fn human_utterances(dialogues: &[&[&str]]) -> HumanReference {
    let mut utterances = BTreeMap::new();
    utterances.insert(
        "persuadee".to_string(),
        dialogues.iter().map(|d| d.iter().map(|s| s.to_string()).collect()).collect(),
    );
    HumanReference { source: "hand-made".into(), utterances, ..HumanReference::default() }
}

/// Embeds a text by its first letter: `a` → (1, 0), anything else → (0, 1).
struct FirstLetter;

#[async_trait::async_trait]
impl vsim::eval::Embedder for FirstLetter {
    fn id(&self) -> String {
        "first-letter".into()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, vsim::eval::EmbedError> {
        Ok(texts.iter().map(|t| if t.starts_with('a') { vec![1.0, 0.0] } else { vec![0.0, 1.0] }).collect())
    }
}

async fn eval(
    dir: &Path,
    human: Option<&HumanReference>,
    opts: EvalOptions,
    embedder: Option<&dyn vsim::eval::Embedder>,
) -> Evaluation {
    let run = RunData::load(dir).unwrap();
    evaluate(&run, human, &opts, embedder).await.unwrap()
}

fn est(m: &Metric) -> f64 {
    m.estimate().unwrap_or_else(|| panic!("not computed: {m:?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test]
async fn semantic_diversity_is_computed_within_each_dialogue_then_averaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(
        &dir,
        &[
            // Pairs: cos 0, 1, 0 -> 1 - 1/3 = 2/3.
            vec![says("apples"), says("bananas"), says("avocado")],
            // One pair, cos 1 -> 0.
            vec![says("apples"), says("avocado")],
            // A single utterance: no pair, skipped and counted.
            vec![says("berries")],
        ],
    );
    // Human: (1, 0) vs (0, 1) -> 1; two y-vectors -> 0; one single utterance.
    let h = human_utterances(&[&["apple", "berry"], &["banana", "cherry"], &["kiwi"]]);
    let opts = EvalOptions { bootstrap: 50, ..EvalOptions::default() };
    let e = eval(&dir, Some(&h), opts.clone(), Some(&FirstLetter)).await;
    assert!(e.semantic.computed, "{:?}", e.semantic.reason);
    let s = e.semantic.roles.iter().find(|r| r.role == "persuadee").unwrap();
    // Mean over dialogues (2/3 + 0) / 2; all six utterances pooled would give 1 - 7/15.
    assert!(close(est(&s.simulated.per_dialogue), 1.0 / 3.0), "{:?}", s.simulated);
    let sim = &s.simulated;
    assert_eq!((sim.dialogues, sim.too_short, sim.embedded, sim.used, sim.utterances), (3, 1, 2, 2, 5));
    let (lo, hi) = s.simulated.per_dialogue.ci().expect("an interval over dialogues");
    assert!(lo <= 1.0 / 3.0 && 1.0 / 3.0 <= hi && lo >= 0.0 && hi <= 2.0 / 3.0 + 1e-12, "[{lo}, {hi}]");
    let hs = s.human.as_ref().expect("human side");
    assert!(close(est(&hs.per_dialogue), 0.5));
    assert_eq!((hs.dialogues, hs.too_short, hs.used), (3, 1, 2));
    // Pooled on equal-size samples: both sides have two embedded dialogues.
    let p = s.pooled.as_ref().expect("pooled on equal-size samples");
    assert_eq!(p.dialogues_per_side, 2);
    // Simulated: a a a a b -> 6 of 10 pairs similar -> 0.4; human: a b b b -> 3 of 6 -> 0.5.
    assert!(close(p.simulated.unwrap(), 0.4));
    assert!(close(p.human.unwrap(), 0.5));
    assert_eq!((p.utterances_simulated, p.utterances_human), (5, 4));
    // metrics.json reads back, and the reports say which figure is which.
    vsim::eval::write_metrics(&dir, &e).unwrap();
    let back = vsim::eval::read_metrics(&dir).unwrap();
    let b = &back.semantic.roles[0];
    assert!((est(&b.simulated.per_dialogue) - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(b.pooled.as_ref().map(|p| p.dialogues_per_side), Some(2));
    let md = vsim::report::markdown::run_markdown(&back);
    let html = vsim::report::html::run_html(&back, None, 10).unwrap();
    for s in [
        "semantic diversity, per dialogue (mean, CI)",
        "semantic diversity, pooled over equal-size samples",
        "pooled over 2 dialogues per side (equal-size samples)",
        "Distinct-2, per dialogue (mean, CI)",
    ] {
        assert!(md.contains(s) && html.contains(s), "the reports lack {s}");
    }
    // Per-dialogue rows come before pooled ones.
    assert!(md.find("Distinct-1, per dialogue").unwrap() < md.find("Distinct-1, pooled").unwrap());

    // The cap bounds the dialogues embedded per side, and the pooled samples with it.
    let capped = eval(&dir, Some(&h), EvalOptions { embed_max: 1, ..opts.clone() }, Some(&FirstLetter)).await;
    let c = &capped.semantic.roles[0];
    assert_eq!(capped.semantic.max_dialogues, 1);
    assert_eq!((c.simulated.dialogues, c.simulated.embedded, c.simulated.used), (3, 1, 1));
    let v = est(&c.simulated.per_dialogue);
    assert!(close(v, 2.0 / 3.0) || close(v, 0.0), "{v}");
    assert_eq!(c.pooled.as_ref().unwrap().dialogues_per_side, 1);
    // Seeded: the same evaluation gives the same sample.
    assert_eq!(
        eval(&dir, Some(&h), EvalOptions { embed_max: 1, ..opts.clone() }, Some(&FirstLetter)).await,
        capped
    );

    // Without a human side there is no pooled value.
    let alone = eval(&dir, None, opts, Some(&FirstLetter)).await;
    let a = &alone.semantic.roles[0];
    assert!(a.human.is_none() && a.pooled.is_none());
    assert!(close(est(&a.simulated.per_dialogue), 1.0 / 3.0));
}

#[tokio::test]
async fn pooled_distinct_n_uses_equal_size_samples_of_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // Three simulated dialogues saying the same thing.
    write_run(&dir, &[vec![says("hello world")], vec![says("hello world")], vec![says("hello world")]]);
    // Five human dialogues, each with one word of its own.
    let words = ["one", "two", "three", "four", "five"];
    let hd: Vec<[&str; 2]> = words.iter().map(|w| ["hello world", *w]).collect();
    let hd: Vec<&[&str]> = hd.iter().map(|d| d.as_slice()).collect();
    let h = human_utterances(&hd);
    let opts = EvalOptions { bootstrap: 20, ..EvalOptions::default() };
    let e = eval(&dir, Some(&h), opts.clone(), None).await;
    let t = e.linguistic.iter().find(|t| t.role == "persuadee").unwrap();
    let ht = t.human.as_ref().unwrap();
    assert_eq!((t.simulated.dialogues, ht.dialogues), (3, 5));
    assert_eq!((t.simulated.pooled_dialogues, ht.pooled_dialogues), (3, 3));
    // Simulated: 2 distinct of 6 unigrams.
    assert!(close(t.simulated.distinct[0].pooled.unwrap(), 1.0 / 3.0));
    // Human, three of five dialogues: hello world + 3 own words = 5 distinct of 9 (all five
    // would give 7 of 15).
    assert!(close(ht.distinct[0].pooled.unwrap(), 5.0 / 9.0), "{:?}", ht.distinct[0]);
    // Per dialogue (the primary figure): 1 on both sides, whatever the corpus size.
    assert!(close(est(&t.simulated.distinct[0].per_dialogue), 1.0));
    assert!(close(est(&ht.distinct[0].per_dialogue), 1.0));

    // The other way round: more simulated than human dialogues.
    let h2 = human_utterances(&hd[..2]);
    let e = eval(&dir, Some(&h2), opts.clone(), None).await;
    let t = &e.linguistic[0];
    assert_eq!((t.simulated.pooled_dialogues, t.human.as_ref().unwrap().pooled_dialogues), (2, 2));
    assert!(close(t.simulated.distinct[0].pooled.unwrap(), 0.5));
    assert!(close(t.human.as_ref().unwrap().distinct[0].pooled.unwrap(), 4.0 / 6.0));

    // No human side: the pooled value is left out.
    let e = eval(&dir, None, opts, None).await;
    assert_eq!(e.linguistic[0].simulated.pooled_dialogues, 0);
    assert!(e.linguistic[0].simulated.distinct.iter().all(|d| d.pooled.is_none()));
}

/// `n` weighted turns over probabilities 0.6 / 0.3 / 0.1, the i-th choosing `choose(i)`.
fn weighted_turns(n: usize, choose: impl Fn(usize) -> usize) -> Vec<Vec<Turn>> {
    vec![(0..n).map(|i| vs_turn(&[0.6, 0.3, 0.1], choose(i), SelectionRule::default())).collect()]
}

#[tokio::test]
async fn selection_check_passes_choices_that_follow_the_weighted_rule() {
    let tmp = tempfile::tempdir().unwrap();
    // Exactly the expected frequencies: 12, 6 and 2 of 20.
    let dir = tmp.path().join("exact");
    write_run(
        &dir,
        &weighted_turns(20, |i| {
            if i < 12 {
                0
            } else if i < 18 {
                1
            } else {
                2
            }
        }),
    );
    let e = eval(&dir, None, EvalOptions { bootstrap: 0, ..EvalOptions::default() }, None).await;
    let c = &e.selection_check[0];
    assert_eq!((c.role.as_str(), c.rule.as_str(), c.turns, c.candidates), ("persuadee", "weighted", 20, 60));
    assert!(c.mean_abs_gap.unwrap() < 1e-12, "{c:?}");
    assert!(c.z.unwrap().abs() < 1e-9, "{c:?}");
    assert_eq!(c.impossible, 0);

    // Choices drawn by the sampler itself, over varied probabilities.
    let dir = tmp.path().join("sampled");
    let mut rng = vsim::seed::rng(11);
    let rule = SelectionRule::default();
    let dialogues: Vec<Vec<Turn>> = (0..40)
        .map(|d| {
            (0..10)
                .map(|t| {
                    let a = 1.0 + ((d * 7 + t * 3) % 5) as f64;
                    let p = [a, 2.0, 1.0, 0.5];
                    let sum: f64 = p.iter().sum();
                    let cands: Vec<Candidate> = p
                        .iter()
                        .map(|x| Candidate {
                            text: format!("{x}"),
                            probability: x / sum,
                            raw_probability: Some(x / sum),
                            repairs: Vec::new(),
                        })
                        .collect();
                    let chosen = select(&cands, &rule, &mut rng).index;
                    vs_turn(&p.map(|x| x / sum), chosen, rule)
                })
                .collect()
        })
        .collect();
    write_run(&dir, &dialogues);
    let e = eval(&dir, None, EvalOptions { bootstrap: 0, ..EvalOptions::default() }, None).await;
    let c = &e.selection_check[0];
    assert_eq!((c.turns, c.impossible), (400, 0));
    assert!(c.mean_abs_gap.unwrap() < 0.05, "{c:?}");
    assert!(c.z.unwrap().abs() < 3.5, "{c:?}");
}

#[tokio::test]
async fn selection_check_flags_choices_that_break_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    // The rule says weighted, but the most probable candidate is always chosen.
    let dir = tmp.path().join("argmax");
    write_run(&dir, &weighted_turns(20, |_| 0));
    let e = eval(&dir, None, EvalOptions { bootstrap: 0, ..EvalOptions::default() }, None).await;
    let c = &e.selection_check[0];
    // Bins: 0.6 chosen always, 0.3 and 0.1 never -> (0.4 + 0.3 + 0.1) / 3.
    assert!(close(c.mean_abs_gap.unwrap(), 0.8 / 3.0), "{c:?}");
    // Σ e = 20 · 0.6 against 20 · 0.46, sd sqrt(20 · 0.0324).
    let z = (12.0 - 9.2) / (20.0f64 * 0.0324).sqrt();
    assert!((c.z.unwrap() - z).abs() < 1e-9, "{c:?}");
    assert!(c.p_value.unwrap() < 0.001);

    // Argmax rule: the second candidate can never be chosen; there is no z for a rule
    // without chance.
    let dir = tmp.path().join("rules");
    let argmax = SelectionRule::new(Selection::Argmax);
    let tau = SelectionRule::default().with_min_prob(0.2, 1);
    write_run(
        &dir,
        &[vec![
            vs_turn(&[0.6, 0.3, 0.1], 0, argmax),
            vs_turn(&[0.6, 0.3, 0.1], 1, argmax),
            // Under min_prob 0.2 the third candidate is filtered out: expected 0.6/0.9, 0.3/0.9, 0.
            vs_turn(&[0.6, 0.3, 0.1], 2, tau),
            vs_turn(&[0.6, 0.3, 0.1], 0, tau),
        ]],
    );
    let e = eval(&dir, None, EvalOptions { bootstrap: 0, ..EvalOptions::default() }, None).await;
    let a = e.selection_check.iter().find(|c| c.rule == "argmax").unwrap();
    assert_eq!((a.turns, a.impossible, a.z), (2, 1, None));
    // Bins: expected 0 (four candidates, one chosen) and 1 (two, one chosen).
    assert!(close(a.mean_abs_gap.unwrap(), 4.0 / 6.0 * 0.25 + 2.0 / 6.0 * 0.5), "{a:?}");
    let t = e.selection_check.iter().find(|c| c.rule.starts_with("weighted, min_prob 0.2")).unwrap();
    assert_eq!((t.turns, t.impossible), (2, 1));
    assert!(close(t.bins[6].mean_expected.unwrap(), 2.0 / 3.0));
}

#[tokio::test]
async fn stated_probabilities_are_described_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let rule = SelectionRule::default();
    let mut unstated = vs_turn(&[0.5, 0.5], 0, rule);
    unstated.candidates[1].2 = None;
    write_run(
        &dir,
        &[vec![
            // Sums to 0.8: rescaled to 0.625 / 0.375.
            vs_turn(&[0.5, 0.3], 0, rule),
            // Sums to 1, uniform over four.
            vs_turn(&[0.25, 0.25, 0.25, 0.25], 1, rule),
            // One probability missing: not in the sum statistics.
            unstated,
        ]],
    );
    let e = eval(&dir, None, EvalOptions { bootstrap: 30, ..EvalOptions::default() }, None).await;
    let s = &e.stated_probabilities[0];
    assert_eq!((s.turns, s.candidates, s.unstated, s.turns_summed), (3, 8, 1, 2));
    assert!(close(s.share_unstated.unwrap(), 1.0 / 8.0));
    assert!(close(est(&s.mean_abs_sum_error), 0.1));
    assert!(close(est(&s.share_renormalised), 0.5));
    assert!(close(est(&s.mean_max_probability), (0.625 + 0.25 + 0.5) / 3.0));
    let h2 = |p: &[f64]| -> f64 { -p.iter().map(|x| x * x.ln()).sum::<f64>() / (p.len() as f64).ln() };
    let entropy = (h2(&[0.625, 0.375]) + 1.0 + 1.0) / 3.0;
    assert!((est(&s.mean_normalised_entropy) - entropy).abs() < 1e-12);
    assert!(close(s.mean_candidates.unwrap(), 8.0 / 3.0));
}
