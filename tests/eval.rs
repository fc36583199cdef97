//! `vsim eval` on hand-built run directories: exact metric values, missing outcomes,
//! pairing, language metrics, the selection check, error messages, embeddings, and the real
//! PersuasionForGood data when it is present.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vsim::dialogue::events::Event;
use vsim::eval::human::{HumanLabel, HumanValue};
use vsim::eval::metrics::Metric;
use vsim::eval::{evaluate, EvalError, EvalOptions, Evaluation, HumanReference, RunData, Split};
use vsim::rundir::transcript::TranscriptWriter;

const KEY: &str = "persuadee.donation";

/// A candidate as (text, normalised probability, stated probability).
type Cand = (String, f64, Option<f64>);

/// One dialogue of a hand-built run.
struct Dlg {
    population_id: Option<String>,
    /// (speaker, method, candidates as (text, normalised, stated), chosen index)
    turns: Vec<(&'static str, &'static str, Vec<Cand>, usize)>,
    /// `None`: the dialogue failed (no end event).
    outcome: Option<Value>,
    repairs: Vec<Value>,
}

fn dlg(pid: Option<&str>, outcome: Option<Value>) -> Dlg {
    Dlg {
        population_id: pid.map(str::to_string),
        turns: vec![
            ("persuader", "direct", vec![("Would you donate?".into(), 1.0, None)], 0),
            (
                "persuadee",
                "vs-standard",
                vec![("Maybe.".into(), 0.6, Some(0.6)), ("No.".into(), 0.4, Some(0.4))],
                0,
            ),
        ],
        outcome,
        repairs: Vec::new(),
    }
}

fn ev(v: Value) -> Event {
    serde_json::from_value(v).expect("valid event")
}

fn events(id: &str, index: usize, d: &Dlg) -> Vec<Event> {
    let mut out = vec![ev(json!({
        "event": "begin", "dialogue": id, "index": index, "seed": 7, "scenario": "persuasion_for_good",
        "population_id": d.population_id,
        "agents": [
            {"role": "persuader", "name": "Persuader", "method": "direct", "model": "scripted", "system_prompt": "p"},
            {"role": "persuadee", "name": "Persuadee", "method": "vs-standard", "model": "scripted", "system_prompt": "q"}
        ]
    }))];
    for (t, (speaker, method, cands, chosen)) in d.turns.iter().enumerate() {
        let candidates: Vec<Value> = cands
            .iter()
            .map(|(text, p, raw)| json!({"text": text, "probability": p, "raw_probability": raw, "repairs": d.repairs}))
            .collect();
        out.push(ev(json!({
            "event": "turn", "dialogue": id, "turn": t, "speaker": speaker, "method": method,
            "candidates": candidates,
            "choice": {"index": chosen, "draw": 0.25, "eligible": (0..cands.len()).collect::<Vec<_>>(),
                       "rule": {"selection": "weighted", "min_keep": 1}},
            "text": cands[*chosen].0,
            "calls": [{"raw": "{}", "latency_ms": 1, "usage": null, "cached": false, "seed": 1}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
            "latency_ms": 1
        })));
    }
    match &d.outcome {
        Some(v) => {
            let value = if v.is_null() { Value::Null } else { v.clone() };
            let source = if v.is_null() { "missing" } else { "question" };
            out.push(ev(json!({
                "event": "outcome", "dialogue": id, "role": "persuadee", "name": "donation", "value": value,
                "source": source, "raw": "", "usage": {"prompt_tokens": 0, "completion_tokens": 0}
            })));
            out.push(ev(json!({
                "event": "end", "dialogue": id, "turns": d.turns.len(), "reason": "max_turns",
                "usage": {"prompt_tokens": 0, "completion_tokens": 0}
            })));
        }
        None => {
            out.push(ev(json!({"event": "error", "dialogue": id, "turn": 1, "message": "backend timed out"})))
        }
    }
    out
}

fn config(population: &str) -> Value {
    json!({
        "vsim_version": "0.1.0",
        "scenario": {"name": "persuasion_for_good", "outcomes": [
            {"name": "donation", "role": "persuadee", "question": "How much?", "kind": {"type": "number", "min": 0.0, "max": 2.0}}
        ]},
        "population": population, "n": 3, "seed": 7
    })
}

fn write_run(dir: &Path, dialogues: &[Dlg], cfg: Option<Value>) {
    std::fs::create_dir_all(dir).unwrap();
    if let Some(c) = cfg {
        std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&c).unwrap()).unwrap();
    }
    let mut w = TranscriptWriter::open(&dir.join("transcripts.jsonl")).unwrap();
    for (i, d) in dialogues.iter().enumerate() {
        w.append(&events(&format!("d{i:03}"), i, d)).unwrap();
    }
}

fn human(values: &[(&str, f64)]) -> HumanReference {
    let mut numeric = BTreeMap::new();
    numeric.insert(
        KEY.to_string(),
        values.iter().map(|(id, v)| HumanValue { id: id.to_string(), value: *v }).collect(),
    );
    HumanReference {
        source: "hand-made".into(),
        participants: values.len(),
        numeric,
        ..HumanReference::default()
    }
}

async fn eval_dir(dir: &Path, h: Option<&HumanReference>, opts: &EvalOptions) -> Evaluation {
    let run = RunData::load(dir).unwrap();
    evaluate(&run, h, opts, None).await.unwrap()
}

fn est(m: &Metric) -> f64 {
    m.estimate().unwrap_or_else(|| panic!("not computed: {m:?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test]
async fn known_values_against_a_hand_made_human_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let dialogues = [
        dlg(Some("p1"), Some(json!(0.0))),
        dlg(Some("p2"), Some(json!(0.5))),
        dlg(Some("p3"), Some(json!(1.0))),
    ];
    write_run(&dir, &dialogues, Some(config("pfg:somewhere")));
    let h = human(&[("p1", 0.0), ("p2", 1.0), ("p3", 1.0), ("p4", 2.0)]);
    let opts = EvalOptions {
        bins: Some(vsim::stats::Bins { lo: 0.0, hi: 2.0, n: 2 }),
        bootstrap: 200,
        ..EvalOptions::default()
    };
    let e = eval_dir(&dir, Some(&h), &opts).await;
    assert_eq!(e.numeric.len(), 1);
    let o = &e.numeric[0];
    assert_eq!(o.key, KEY);
    assert_eq!(o.simulated_values, vec![0.0, 0.5, 1.0]);
    assert_eq!((o.counts.valid, o.counts.missing, o.counts.failed), (3, 0, 0));
    let c = o.comparison.as_ref().expect("compared");
    // CDFs at 0, 0.5, 1, 2: (1/3, 1/4), (2/3, 1/4), (1, 3/4), (1, 1) -> D = 5/12.
    assert!(close(est(&c.ks.statistic), 5.0 / 12.0));
    // scipy.stats.ks_2samp([0, .5, 1], [0, 1, 1, 2]).pvalue
    assert!((c.ks.pvalue.unwrap() - 0.885_714_285_714_285_8).abs() < 1e-12);
    assert_eq!(c.ks.method.as_deref(), Some("exact"));
    // ∫|F_a - F_b| = 1/12·0.5 + 5/12·0.5 + 1/4·1 = 1/2.
    assert!(close(est(&c.wasserstein1), 0.5));
    // Pairs (0, 0), (0.5, 1), (1, 1).
    assert_eq!((c.counts.paired, c.counts.simulated_unpaired), (3, 0));
    assert!(close(est(&c.l1_paired), 1.0 / 6.0));
    // Bins [0, 1), [1, 2]: (2/3, 1/3) vs (1/4, 3/4).
    assert!(close(est(&c.l1_histogram), 5.0 / 6.0));
    // 20 bins of 0.1: (1/3 at 0, 0.5, 1) vs (1/4 at 0, 1/2 at 1, 1/4 at 2).
    assert!(close(est(&c.l1_density_pfg), 5.0 / 6.0));
    for m in [&c.ks.statistic, &c.wasserstein1, &c.l1_paired, &c.l1_histogram] {
        let (lo, hi) = m.ci().expect("interval");
        assert!(lo <= hi && lo >= 0.0, "{m:?}");
    }
    assert_eq!(o.human.as_ref().unwrap().n, 4);
    assert!(close(est(&o.simulated.mean), 0.5));
    assert_eq!(o.pairs.iter().map(|p| p.human).collect::<Vec<_>>(), vec![0.0, 1.0, 1.0]);
    // Seeded: the same evaluation again is identical; another seed moves the intervals only.
    assert_eq!(eval_dir(&dir, Some(&h), &opts).await, e);
    let other = eval_dir(&dir, Some(&h), &EvalOptions { seed: 99, ..opts.clone() }).await;
    let oc = other.numeric[0].comparison.as_ref().unwrap();
    assert!(close(est(&oc.wasserstein1), 0.5));
}

#[tokio::test]
async fn missing_outcomes_are_counted_never_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let dialogues = [
        dlg(None, Some(json!(1.0))),
        dlg(None, Some(Value::Null)),
        dlg(None, Some(json!(2.0))),
        dlg(None, None),
        dlg(None, Some(json!("a lot"))),
    ];
    write_run(&dir, &dialogues, Some(config("personas")));
    let e = eval_dir(&dir, None, &EvalOptions { bootstrap: 50, ..EvalOptions::default() }).await;
    let o = &e.numeric[0];
    assert_eq!((o.counts.valid, o.counts.missing, o.counts.invalid, o.counts.failed), (2, 1, 1, 1));
    assert_eq!(o.simulated_values, vec![1.0, 2.0]);
    assert!(close(est(&o.simulated.mean), 1.5), "a missing value must not count as 0");
    assert_eq!(o.simulated.share_zero, Some(0.0));
    assert_eq!((e.counts.dialogues, e.counts.completed, e.counts.failed), (5, 4, 1));
    assert_eq!(e.counts.errors, vec!["d003: backend timed out".to_string()]);
    assert!(o.comparison.is_none());
    // The library names no command-line flag; `vsim eval` adds its own hint.
    assert_eq!(e.human_note.as_deref(), Some("no human data given"));
}

/// A value outside the outcome's declared range [0, 2], as a hand-edited transcript may hold,
/// is invalid when read back, as it is at extraction: never compared.
#[tokio::test]
async fn an_outcome_outside_its_range_is_invalid_when_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let dialogues = [
        dlg(None, Some(json!(1.0))),
        dlg(None, Some(json!(-5))),
        dlg(None, Some(json!(1e308))),
        dlg(None, Some(json!("2.5"))),
        dlg(None, Some(json!(2))),
        dlg(None, Some(json!(0))),
    ];
    write_run(&dir, &dialogues, Some(config("personas")));
    let e = eval_dir(&dir, None, &EvalOptions { bootstrap: 20, ..EvalOptions::default() }).await;
    let o = &e.numeric[0];
    assert_eq!((o.counts.valid, o.counts.invalid), (3, 3));
    assert_eq!(o.simulated_values, vec![1.0, 2.0, 0.0]);
}

/// A torn last line (a write cut short) is left out and said so.
#[tokio::test]
async fn a_torn_last_line_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir, &[dlg(None, Some(json!(1.0)))], Some(config("personas")));
    let e = eval_dir(&dir, None, &EvalOptions { bootstrap: 20, ..EvalOptions::default() }).await;
    assert!(!e.counts.torn_last_line);
    let mut f = std::fs::OpenOptions::new().append(true).open(dir.join("transcripts.jsonl")).unwrap();
    std::io::Write::write_all(&mut f, br#"{"event":"begin","dialogue":"d0"#).unwrap();
    let e = eval_dir(&dir, None, &EvalOptions { bootstrap: 20, ..EvalOptions::default() }).await;
    assert!(e.counts.torn_last_line);
    assert_eq!(e.counts.dialogues, 1);
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["eval", dir.to_str().unwrap(), "--embedder", "none", "--bootstrap", "20"])
        .assert()
        .success()
        .stderr(predicates::str::contains("is not a whole event"));
}

/// A dialogue completed twice in one transcript (edited or joined by hand) is named, and its
/// latest attempt is the one evaluated.
#[tokio::test]
async fn a_dialogue_completed_twice_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir, &[dlg(None, Some(json!(1.0))), dlg(None, Some(json!(0.5)))], Some(config("personas")));
    let mut w = TranscriptWriter::open(&dir.join("transcripts.jsonl")).unwrap();
    w.append(&events("d000", 0, &dlg(None, Some(json!(2.0))))).unwrap();
    let e = eval_dir(&dir, None, &EvalOptions { bootstrap: 20, ..EvalOptions::default() }).await;
    assert_eq!(e.counts.completed_more_than_once, ["d000"]);
    assert_eq!(e.numeric[0].simulated_values, vec![2.0, 0.5]);
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["eval", dir.to_str().unwrap(), "--embedder", "none", "--bootstrap", "20"])
        .assert()
        .success()
        .stderr(predicates::str::contains("1 dialogues are completed more than once"))
        .stderr(predicates::str::contains(": d000"));
}

#[tokio::test]
async fn unpaired_population_reports_paired_l1_as_not_applicable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir, &[dlg(None, Some(json!(0.0))), dlg(None, Some(json!(2.0)))], Some(config("personas")));
    let h = human(&[("x-persuadee", 0.0), ("y-persuadee", 1.0)]);
    let e = eval_dir(&dir, Some(&h), &EvalOptions { bootstrap: 0, ..EvalOptions::default() }).await;
    let c = e.numeric[0].comparison.as_ref().unwrap();
    match &c.l1_paired {
        Metric::NotApplicable { reason } => assert!(reason.contains("not applicable"), "{reason}"),
        other => panic!("expected not applicable, got {other:?}"),
    }
    // Other metrics still computed, without intervals when --bootstrap 0.
    assert!(close(est(&c.wasserstein1), 0.5));
    assert_eq!(c.wasserstein1.ci(), None);
}

#[tokio::test]
async fn language_selection_check_and_repair_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let vs = |chosen: usize| {
        (
            "persuadee",
            "vs-standard",
            vec![
                ("hello there".to_string(), 0.6, Some(0.6)),
                ("hello again".to_string(), 0.3, Some(0.3)),
                ("no".to_string(), 0.1, Some(0.1)),
            ],
            chosen,
        )
    };
    let mut a = dlg(None, Some(json!(1.0)));
    a.turns = vec![vs(0), vs(1)];
    a.repairs = vec![json!({"kind": "code_fence"})];
    let mut b = dlg(None, Some(json!(1.0)));
    b.turns = vec![vs(0)];
    write_run(&dir, &[a, b], Some(config("personas")));
    let e = eval_dir(&dir, None, &EvalOptions { bootstrap: 20, ..EvalOptions::default() }).await;
    let t = e.linguistic.iter().find(|t| t.role == "persuadee").unwrap();
    // Dialogue a: "hello there", "hello again"; dialogue b: "hello there".
    assert_eq!(t.simulated.utterances, 3);
    // Per dialogue: a = 3/4, b = 2/2 -> mean 7/8.
    assert!(close(est(&t.simulated.distinct[0].per_dialogue), 0.875));
    // Bigrams: a = 2/2, b = 1/1.
    assert!(close(est(&t.simulated.distinct[1].per_dialogue), 1.0));
    // No human side: no pooled value (it would depend on the corpus size alone).
    assert_eq!(t.simulated.distinct[0].pooled, None);
    assert_eq!(t.simulated.pooled_dialogues, 0);
    assert!(t.simulated.flesch_kincaid_grade.is_some());
    assert!(t.human.is_none());
    // Selection check: three weighted turns, probabilities 0.6 / 0.3 / 0.1, chosen 0, 1, 0.
    let sel = e.selection_check.iter().find(|c| c.role == "persuadee").unwrap();
    assert_eq!((sel.rule.as_str(), sel.turns, sel.candidates, sel.impossible), ("weighted", 3, 9, 0));
    let bin = |i: usize| &sel.bins[i];
    assert_eq!((bin(6).n, bin(6).chosen), (3, 2));
    assert!(close(bin(6).chosen_frequency.unwrap(), 2.0 / 3.0));
    assert!(close(bin(6).mean_expected.unwrap(), 0.6));
    assert!(close(bin(3).chosen_frequency.unwrap(), 1.0 / 3.0));
    assert_eq!(bin(1).chosen_frequency, Some(0.0));
    assert_eq!(bin(9).n, 0);
    let gap = (1.0f64 / 3.0) * ((0.6f64 - 2.0 / 3.0).abs() + (0.3f64 - 1.0 / 3.0).abs() + 0.1);
    assert!((sel.mean_abs_gap.unwrap() - gap).abs() < 1e-12);
    // The persuader's turns have one candidate: nothing to check.
    assert!(e.selection_check.iter().all(|c| c.role != "persuader"));
    // Stated probabilities: every turn states 0.6 + 0.3 + 0.1 = 1.
    let st = e.stated_probabilities.iter().find(|s| s.role == "persuadee").unwrap();
    assert_eq!((st.turns, st.candidates, st.unstated, st.turns_summed), (3, 9, 0, 3));
    assert!(est(&st.mean_abs_sum_error) < 1e-12);
    assert_eq!(est(&st.share_renormalised), 0.0);
    assert!(close(est(&st.mean_max_probability), 0.6));
    assert!(e.stated_probabilities.iter().all(|s| s.role != "persuader"));
    // Repairs: the two turns of dialogue a carry code_fence on all three candidates.
    let r = e.counts.repairs.get("code_fence").unwrap();
    assert_eq!((r.turns, r.candidates), (2, 6));
    assert_eq!(e.counts.turns, 3);
    assert!(!e.semantic.computed);
    assert!(e.semantic.reason.as_deref().unwrap().contains("no embedder"));
}

#[tokio::test]
async fn categorical_outcome_against_human_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let dialogues =
        [dlg(None, Some(json!("yes"))), dlg(None, Some(json!("yes"))), dlg(None, Some(json!("no")))];
    let mut cfg = config("personas");
    cfg["scenario"]["outcomes"][0]["kind"] =
        json!({"type": "category", "categories": ["yes", "no", "maybe"]});
    write_run(&dir, &dialogues, Some(cfg));
    let mut h = HumanReference { source: "hand-made".into(), ..HumanReference::default() };
    h.categorical.insert(
        KEY.into(),
        ["yes", "no", "no", "no"]
            .iter()
            .map(|l| HumanLabel { id: String::new(), label: l.to_string() })
            .collect(),
    );
    let e = eval_dir(&dir, Some(&h), &EvalOptions { bootstrap: 100, ..EvalOptions::default() }).await;
    assert!(e.numeric.is_empty());
    let o = &e.categorical[0];
    let labels: Vec<&str> = o.categories.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["yes", "no", "maybe"]);
    assert!(close(est(&o.categories[0].simulated), 2.0 / 3.0));
    assert_eq!(o.categories[1].human, Some(0.75));
    assert_eq!(o.categories[2].simulated_count, 0);
    assert!(close(est(&o.total_variation), 5.0 / 12.0));
    // JS divergence in bits of (2/3, 1/3, 0) vs (1/4, 3/4, 0); scipy's distance squared.
    assert!((est(&o.jensen_shannon) - 0.130_197_848_929_158_87).abs() < 1e-12);
    assert!(o.total_variation.ci().is_some());
}

#[tokio::test]
async fn run_without_outcomes_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    // Every dialogue failed: nothing to evaluate.
    let failed = tmp.path().join("failed");
    write_run(&failed, &[dlg(None, None), dlg(None, None)], Some(config("personas")));
    let run = RunData::load(&failed).unwrap();
    let err = evaluate(&run, None, &EvalOptions::default(), None).await.unwrap_err();
    assert!(matches!(err, EvalError::NoOutcomes { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("no outcomes to evaluate") && msg.contains("2 failed") && msg.contains("resume the run"),
        "{msg}"
    );
    // Dialogues that neither ended nor recorded an error: no error events to point at.
    let cut = tmp.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    let mut w = TranscriptWriter::open(&cut.join("transcripts.jsonl")).unwrap();
    let mut evs = events("d000", 0, &dlg(None, None));
    assert!(matches!(evs.pop(), Some(Event::Error(_))));
    w.append(&evs).unwrap();
    let err = evaluate(&RunData::load(&cut).unwrap(), None, &EvalOptions::default(), None).await.unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains("error events") && msg.contains("none recorded an error"), "{msg}");
    // Not a run directory at all.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let msg = RunData::load(&empty).unwrap_err().to_string();
    assert!(msg.contains("not a run directory") && msg.contains("transcripts.jsonl"), "{msg}");
    // The command line says so with exit code 2.
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["eval", failed.to_str().unwrap(), "--embedder", "none"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no outcomes to evaluate"));
}

/// The 37 columns of full_info.csv, in the release's order.
const INFO_HEADER: &str = "B2,B3,B4,B6,B7,extrovert.x,agreeable.x,conscientious.x,neurotic.x,open.x,care.x,fairness.x,loyalty.x,authority.x,purity.x,freedom.x,conform.x,tradition.x,benevolence.x,universalism.x,self_direction.x,stimulation.x,hedonism.x,achievement.x,power.x,security.x,rational.x,intuitive.x,age.x,sex.x,race.x,edu.x,marital.x,employment.x,income.x,religion.x,ideology.x";

fn info_row(dialogue: &str, user: &str, role: u8, donation: &str) -> String {
    let mut cells =
        vec![dialogue.to_string(), user.to_string(), role.to_string(), donation.to_string(), "10".into()];
    cells.extend(std::iter::repeat_n("3".to_string(), 23));
    cells.extend(
        ["30", "Female", "White", "Bachelor", "Single", "Employed", "5", "None", "Moderate"]
            .map(String::from),
    );
    cells.join(",")
}

fn tiny_pfg(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let info = [
        INFO_HEADER.to_string(),
        info_row("d1", "u1", 0, "0"),
        info_row("d1", "u2", 1, "0.5"),
        info_row("d2", "u3", 0, "1"),
        info_row("d2", "u4", 1, "3"),
        info_row("d3", "u5", 0, "0"),
        info_row("d3", "u6", 1, "NA"),
    ]
    .join("\n");
    std::fs::write(dir.join("full_info.csv"), info + "\n").unwrap();
    let dialog = ",Unit,Turn,B4,B2\n0,Hello! Would you give?,0,0,d1\n1,Hi. Maybe a little.,0,1,d1\n2,Please do,1,0,d1\n3,OK then.,1,1,d1\n4,Hey,0,0,d2\n5,No.,0,1,d2\n";
    std::fs::write(dir.join("full_dialog.csv"), dialog).unwrap();
    dir.to_path_buf()
}

#[test]
fn tiny_pfg_reference_is_filtered_and_paired_by_persona_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_pfg(&tmp.path().join("pfg"));
    let spec = format!("pfg:{}", dir.display());
    let h = HumanReference::load(&spec, Split::All).unwrap();
    // d2's persuadee gave $3 (above the $2 payment) and d3's has no donation: both dropped.
    assert_eq!(h.participants, 1);
    assert_eq!(h.numeric[KEY].len(), 1);
    assert_eq!(h.numeric[KEY][0].id, "d1-persuadee");
    assert_eq!(h.numeric[KEY][0].value, 0.5);
    assert_eq!(
        h.utterances["persuadee"],
        vec![vec!["Hi. Maybe a little.".to_string(), "OK then.".to_string()]]
    );
    assert_eq!(h.utterances["persuader"].len(), 1);
    assert!(h.filter_summary.contains("kept"), "{}", h.filter_summary);
}

#[test]
fn human_data_with_a_missing_file_or_column_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tiny_pfg(&tmp.path().join("pfg"));
    let spec = format!("pfg:{}", dir.display());
    std::fs::remove_file(dir.join("full_dialog.csv")).unwrap();
    let msg = HumanReference::load(&spec, Split::All).unwrap_err().to_string();
    assert!(msg.contains("full_dialog.csv") && msg.contains(&spec), "{msg}");

    let dir = tiny_pfg(&tmp.path().join("pfg2"));
    let info = std::fs::read_to_string(dir.join("full_info.csv")).unwrap().replacen(",B6,", ",donation,", 1);
    std::fs::write(dir.join("full_info.csv"), info).unwrap();
    let msg = HumanReference::load(&format!("pfg:{}", dir.display()), Split::All).unwrap_err().to_string();
    assert!(msg.contains("missing column `B6`") && msg.contains("full_info.csv"), "{msg}");

    let msg = HumanReference::load("survey:x", Split::All).unwrap_err().to_string();
    assert!(msg.contains("expected `pfg:DIR`"), "{msg}");
    // The command line reports it as bad input (exit 2).
    let run = tmp.path().join("run");
    write_run(&run, &[dlg(None, Some(json!(1.0)))], Some(config("personas")));
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args([
            "eval",
            run.to_str().unwrap(),
            "--human",
            &format!("pfg:{}", tmp.path().join("nope").display()),
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("full_info.csv"));
}

#[tokio::test]
async fn metrics_json_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(
        &dir,
        &[dlg(Some("p1"), Some(json!(0.5))), dlg(Some("p2"), Some(Value::Null))],
        Some(config("pfg:x")),
    );
    let h = human(&[("p1", 0.0), ("p2", 2.0)]);
    let e = eval_dir(&dir, Some(&h), &EvalOptions { bootstrap: 30, ..EvalOptions::default() }).await;
    let path = vsim::eval::write_metrics(&dir, &e).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("NaN"));
    let back = vsim::eval::read_metrics(&dir).unwrap();
    // serde_json may round the last bit of a float when parsing: compare with a tolerance.
    assert_json_close(&serde_json::to_value(&back).unwrap(), &serde_json::to_value(&e).unwrap(), "");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["numeric"][0]["counts"]["missing"], 1);
    assert_eq!(v["numeric"][0]["comparison"]["ks"]["statistic"]["status"], "computed");
}

fn assert_json_close(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_json_close(p, q, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            for (k, p) in x {
                assert_json_close(p, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Embeds each text as a fixed vector by its first letter (a → x axis, others → y axis).
struct FakeEmbedder;

#[async_trait::async_trait]
impl vsim::eval::Embedder for FakeEmbedder {
    fn id(&self) -> String {
        "fake".into()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, vsim::eval::EmbedError> {
        Ok(texts.iter().map(|t| if t.starts_with('a') { vec![1.0, 0.0] } else { vec![0.0, 1.0] }).collect())
    }
}

#[tokio::test]
async fn semantic_diversity_with_an_embedder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut a = dlg(None, Some(json!(1.0)));
    a.turns = vec![
        ("persuadee", "direct", vec![("apples".into(), 1.0, None)], 0),
        ("persuadee", "direct", vec![("bananas".into(), 1.0, None)], 0),
        ("persuadee", "direct", vec![("avocado".into(), 1.0, None)], 0),
    ];
    write_run(&dir, &[a], Some(config("personas")));
    let run = RunData::load(&dir).unwrap();
    let e =
        evaluate(&run, None, &EvalOptions { bootstrap: 0, ..EvalOptions::default() }, Some(&FakeEmbedder))
            .await
            .unwrap();
    assert!(e.semantic.computed);
    assert_eq!(e.semantic.embedder.as_deref(), Some("fake"));
    let s = e.semantic.roles.iter().find(|r| r.role == "persuadee").unwrap();
    // Pairs: (apples, bananas) cos 0, (apples, avocado) cos 1, (bananas, avocado) cos 0.
    assert!(close(est(&s.simulated.per_dialogue), 2.0 / 3.0));
    assert_eq!((s.simulated.utterances, s.simulated.used), (3, 1));
    assert!(s.human.is_none() && s.pooled.is_none());
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn openai_embedder_reads_embeddings_and_keeps_the_key_out_of_errors() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use vsim::eval::Embedder;
    let ok = axum::Router::new().route(
        "/v1/embeddings",
        post(|body: axum::Json<Value>| async move {
            let n = body["input"].as_array().map_or(0, Vec::len);
            // Out of order, as servers may return them; `index` says where each belongs.
            let data: Vec<Value> = (0..n)
                .rev()
                .map(|i| json!({"object": "embedding", "index": i, "embedding": [i as f64, 1.0]}))
                .collect();
            axum::Json(json!({"object": "list", "data": data, "model": body["model"]}))
        }),
    );
    let base = serve(ok).await;
    let e = vsim::eval::OpenAiEmbedder::new(&base, "emb", Some("sk-secret-123".into())).unwrap();
    let texts: Vec<String> = (0..70).map(|i| format!("text {i}")).collect();
    let v = e.embed(&texts).await.unwrap();
    assert_eq!(v.len(), 70);
    // Two batches (64 + 6), each re-ordered by index.
    assert_eq!(v[3], vec![3.0, 1.0]);
    assert_eq!(v[66], vec![2.0, 1.0]);

    let echo = axum::Router::new().route(
        "/v1/embeddings",
        post(|headers: HeaderMap| async move {
            let auth = headers.get("authorization").and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
            (StatusCode::UNAUTHORIZED, format!("{{\"error\": \"bad key: {auth}\"}}"))
        }),
    );
    let base = serve(echo).await;
    let e = vsim::eval::OpenAiEmbedder::new(&base, "emb", Some("sk-secret-123".into())).unwrap();
    let err = e.embed(&["x".to_string()]).await.unwrap_err();
    let msg = format!("{err} {err:?} {e:?}");
    assert!(msg.contains("401") && msg.contains("***"), "{msg}");
    assert!(!msg.contains("sk-secret-123"), "{msg}");
    // An evaluation with a failing embedder still completes and says why (the persuader
    // speaks twice in the second dialogue: something to embed).
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut twice = dlg(None, Some(json!(0.0)));
    twice.turns.push(twice.turns[0].clone());
    write_run(&dir, &[dlg(None, Some(json!(1.0))), twice], Some(config("personas")));
    let run = RunData::load(&dir).unwrap();
    let ev = evaluate(&run, None, &EvalOptions { bootstrap: 0, ..EvalOptions::default() }, Some(&e))
        .await
        .unwrap();
    assert!(!ev.semantic.computed);
    let reason = ev.semantic.reason.unwrap();
    assert!(reason.contains("embedding failed") && !reason.contains("sk-secret-123"), "{reason}");
    assert!(vsim::eval::OpenAiEmbedder::from_spec("openai:").is_err());
    assert!(vsim::eval::OpenAiEmbedder::from_spec("cohere:x")
        .unwrap_err()
        .to_string()
        .contains("openai:MODEL"));
}

fn real_pfg() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/persuasionforgood");
    if dir.join("full_info.csv").is_file() && dir.join("full_dialog.csv").is_file() {
        Some(dir)
    } else {
        eprintln!("note: {} not found; skipping the real-data check", dir.display());
        None
    }
}

#[tokio::test]
async fn real_persuasionforgood_reference_levels() {
    let Some(dir) = real_pfg() else { return };
    let spec = format!("pfg:{}", dir.display());
    let all = HumanReference::load(&spec, Split::All).unwrap();
    // 1,017 persuadees; dropped: no donation or outside $0..$2 (35 above $2).
    assert_eq!(all.participants, 982);
    assert_eq!(all.numeric[KEY].len(), 982);
    assert!(all.numeric[KEY].iter().all(|v| (0.0..=2.0).contains(&v.value)));
    assert_eq!(all.utterances["persuadee"].len(), 982);
    let test = HumanReference::load(&spec, Split::Test).unwrap();
    let train = HumanReference::load(&spec, Split::Train).unwrap();
    assert_eq!((test.participants, train.participants), (200, 782));

    // A small simulated run of real persuadees, paired by persona id.
    let ids: Vec<String> = all.numeric[KEY].iter().take(3).map(|v| v.id.clone()).collect();
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let dialogues: Vec<Dlg> =
        ids.iter().zip([0.0, 1.0, 2.0]).map(|(id, v)| dlg(Some(id), Some(json!(v)))).collect();
    write_run(&run_dir, &dialogues, Some(config(&spec)));
    let e = eval_dir(&run_dir, Some(&all), &EvalOptions { bootstrap: 100, ..EvalOptions::default() }).await;
    let o = &e.numeric[0];
    assert_eq!(o.human.as_ref().unwrap().n, 982);
    assert_eq!(o.comparison.as_ref().unwrap().counts.paired, 3);
    let h = e.human.as_ref().unwrap();
    assert_eq!((h.participants, h.dialogues), (982, 982));
    // Human reference levels of the persuadees' language.
    let t = e.linguistic.iter().find(|t| t.role == "persuadee").unwrap().human.as_ref().unwrap();
    assert!(t.utterances > 5000, "{}", t.utterances);
    // Pooled only over as many human dialogues as there are simulated ones.
    assert_eq!(t.pooled_dialogues, 3);
    let d1 = est(&t.distinct[0].per_dialogue);
    assert!(d1 > 0.3 && d1 < 1.0, "Distinct-1 within a dialogue: {d1}");
    let fk = t.flesch_kincaid_grade.unwrap();
    assert!((0.0..12.0).contains(&fk), "{fk}");
}

/// People whose real value and simulated values come from one discrete distribution (with
/// ties, as donations have): `shift` moves every simulated value up, within the range.
fn replicated_people(people: usize, replicates: usize, shift: f64) -> (Vec<Dlg>, Vec<(String, f64)>) {
    use rand::Rng;
    let mut rng = vsim::seed::rng(20261207);
    let draw = |rng: &mut rand_chacha::ChaCha8Rng| f64::from(rng.random_range(0..=8u8)) * 0.25;
    let humans: Vec<(String, f64)> = (0..people).map(|p| (format!("p{p:03}"), draw(&mut rng))).collect();
    let mut dialogues = Vec::new();
    for _ in 0..replicates {
        for (id, _) in &humans {
            let v = (draw(&mut rng) + shift).min(2.0);
            dialogues.push(dlg(Some(id), Some(json!(v))));
        }
    }
    (dialogues, humans)
}

async fn calibrated(dir: &Path, shift: f64) -> (Evaluation, Vec<(String, f64)>) {
    let (dialogues, humans) = replicated_people(150, 6, shift);
    write_run(dir, &dialogues, Some(config("personas")));
    let pairs: Vec<(&str, f64)> = humans.iter().map(|(id, v)| (id.as_str(), *v)).collect();
    let e =
        eval_dir(dir, Some(&human(&pairs)), &EvalOptions { bootstrap: 50, ..EvalOptions::default() }).await;
    (e, humans)
}

#[tokio::test]
async fn pit_is_uniform_when_people_are_simulated_like_humans_and_not_when_shifted() {
    let tmp = tempfile::tempdir().unwrap();
    let (e, _) = calibrated(&tmp.path().join("same"), 0.0).await;
    let c = e.numeric[0].calibration.as_ref().expect("replicates give a calibration");
    assert_eq!((c.people, c.values, c.replicates_min, c.replicates_max), (150, 900, 6, 6));
    assert!(c.uniformity.pvalue > 0.05, "calibrated PIT rejected: {:?}", c.uniformity);
    let (e, _) = calibrated(&tmp.path().join("shifted"), 0.5).await;
    let c = e.numeric[0].calibration.as_ref().unwrap();
    assert!(c.uniformity.pvalue < 1e-4, "shifted PIT accepted: {:?}", c.uniformity);
    // Shifted up, real values fall low among their own simulated values.
    assert!(c.pit_histogram[..3].iter().sum::<u64>() > c.pit_histogram[7..].iter().sum::<u64>());
}

/// Type-7 quantile of sorted values, written again here to check the library's.
fn quantile7(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - h.floor()) * (sorted[hi] - sorted[lo])
}

#[tokio::test]
async fn calibration_agrees_with_a_recomputation_from_the_run_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let (e, humans) = calibrated(&dir, 0.25).await;
    let c = e.numeric[0].calibration.as_ref().unwrap();
    // The simulated values per person, read straight from the transcript.
    let text = std::fs::read_to_string(dir.join("transcripts.jsonl")).unwrap();
    let mut person_of = BTreeMap::new();
    let mut sims: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v["event"].as_str() {
            Some("begin") => {
                person_of.insert(v["dialogue"].to_string(), v["population_id"].as_str().unwrap().to_string());
            }
            Some("outcome") => {
                let person = person_of[&v["dialogue"].to_string()].clone();
                sims.entry(person).or_default().push(v["value"].as_f64().unwrap());
            }
            _ => {}
        }
    }
    let real: BTreeMap<&str, f64> = humans.iter().map(|(id, v)| (id.as_str(), *v)).collect();
    let mut covered = [0usize; 2];
    for (p, person) in c.persons.iter().enumerate() {
        let mut s = sims[&person.population_id].clone();
        s.sort_by(f64::total_cmp);
        let y = real[person.population_id.as_str()];
        assert_eq!(person.human, y);
        let below = s.iter().filter(|x| **x < y).count() as f64;
        let ties = s.iter().filter(|x| **x == y).count() as f64;
        let r = s.len() as f64 + 1.0;
        assert!(person.pit >= below / r && person.pit <= (below + ties + 1.0) / r, "person {p}: {person:?}");
        for (i, level) in [0.5, 0.9].iter().enumerate() {
            let (lo, hi) = (quantile7(&s, (1.0 - level) / 2.0), quantile7(&s, (1.0 + level) / 2.0));
            covered[i] += usize::from(lo <= y && y <= hi);
        }
    }
    assert_eq!([c.coverage[0].covered, c.coverage[1].covered], covered);
    assert!(close(est(&c.coverage[0].share), covered[0] as f64 / 150.0));
    // Variance split: pooled 1/n variance = mean within-person variance + variance of means.
    let all: Vec<f64> = sims.values().flatten().copied().collect();
    let m = all.iter().sum::<f64>() / all.len() as f64;
    let total = all.iter().map(|x| (x - m).powi(2)).sum::<f64>() / all.len() as f64;
    let within = sims
        .values()
        .map(|s| {
            let mm = s.iter().sum::<f64>() / s.len() as f64;
            s.iter().map(|x| (x - mm).powi(2)).sum::<f64>()
        })
        .sum::<f64>()
        / all.len() as f64;
    assert!((c.variance.total - total).abs() < 1e-9 && (c.variance.within - within).abs() < 1e-9);
    assert!((c.variance.between - (total - within)).abs() < 1e-9);
    let hm = humans.iter().map(|h| h.1).sum::<f64>() / 150.0;
    let hv = humans.iter().map(|h| (h.1 - hm).powi(2)).sum::<f64>() / 150.0;
    assert!((c.variance.human_between - hv).abs() < 1e-9);
    // And everything is in metrics.json.
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["numeric"][0]["calibration"]["people"], 150);
}
