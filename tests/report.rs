//! Reports: sections, plots, the dialogue browser, HTML escaping of transcript text, and
//! the side-by-side comparison (`vsim report`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use vsim::dialogue::events::Event;
use vsim::eval::human::HumanValue;
use vsim::eval::{evaluate, EvalOptions, Evaluation, HumanReference, RunData};
use vsim::report::{write_comparison, write_run_report, Comparison};
use vsim::rundir::transcript::TranscriptWriter;

const XSS: &str = "<script>alert(\"pwned\")</script> & <img src=x onerror=alert(1)>";

fn ev(v: Value) -> Event {
    serde_json::from_value(v).expect("valid event")
}

/// A run of `values.len()` dialogues; the persuadee speaks by `method` with three candidates,
/// the first of which is `XSS` in dialogue 0.
fn write_run(dir: &Path, method: &str, values: &[Option<f64>]) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = json!({
        "scenario": {"name": "persuasion_for_good", "outcomes": [
            {"name": "donation", "role": "persuadee", "kind": {"type": "number", "min": 0.0, "max": 2.0}}
        ]},
        "population": "pfg:data"
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let mut w = TranscriptWriter::open(&dir.join("transcripts.jsonl")).unwrap();
    for (i, v) in values.iter().enumerate() {
        let id = format!("d{i}");
        let first = if i == 0 { XSS.to_string() } else { format!("I could give ${i}.") };
        let cands = [(first, 0.5), ("Not today.".to_string(), 0.3), ("Let me think.".to_string(), 0.2)];
        let candidates: Vec<Value> = cands
            .iter()
            .map(|(t, p)| json!({"text": t, "probability": p, "raw_probability": p * 100.0 / 100.0, "repairs": [{"kind": "code_fence"}]}))
            .collect();
        let mut evs = vec![
            ev(
                json!({"event": "begin", "dialogue": id, "index": i, "seed": 1, "scenario": "persuasion_for_good",
                "population_id": format!("p{i}-persuadee"),
                "agents": [{"role": "persuadee", "name": "Persuadee", "method": method, "model": "scripted", "system_prompt": ""}]}),
            ),
            ev(json!({"event": "turn", "dialogue": id, "turn": 0, "speaker": "persuadee", "method": method,
                "candidates": candidates,
                "choice": {"index": 0, "draw": 0.1, "eligible": [0, 1, 2], "rule": {"selection": "weighted", "min_keep": 1}},
                "text": cands[0].0, "calls": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0}, "latency_ms": 0})),
            ev(
                json!({"event": "outcome", "dialogue": id, "role": "persuadee", "name": "donation", "value": v,
                "source": if v.is_some() { "question" } else { "missing" }, "raw": "",
                "usage": {"prompt_tokens": 0, "completion_tokens": 0}}),
            ),
            ev(
                json!({"event": "end", "dialogue": id, "turns": 1, "reason": "max_turns", "usage": {"prompt_tokens": 0, "completion_tokens": 0}}),
            ),
        ];
        if i == values.len() - 1 && values.len() > 2 {
            // The last dialogue fails after its turn.
            evs.truncate(2);
            evs.push(ev(json!({"event": "error", "dialogue": id, "message": "<b>server</b> said no"})));
        }
        w.append(&evs).unwrap();
    }
}

fn human() -> HumanReference {
    let mut numeric = BTreeMap::new();
    numeric.insert(
        "persuadee.donation".to_string(),
        [0.0, 0.0, 0.5, 1.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, v)| HumanValue { id: format!("p{i}-persuadee"), value: *v })
            .collect(),
    );
    let mut utterances = BTreeMap::new();
    utterances.insert("persuadee".to_string(), vec![vec!["Sure, I will give a dollar.".to_string()]]);
    HumanReference {
        source: "pfg:<data>".into(),
        filter: "a recorded donation between $0 and $2".into(),
        filter_summary: "kept 5 of 5".into(),
        participants: 5,
        numeric,
        utterances,
        ..HumanReference::default()
    }
}

async fn evaluated(dir: &Path, method: &str, values: &[Option<f64>]) -> (Evaluation, RunData) {
    write_run(dir, method, values);
    let run = RunData::load(dir).unwrap();
    let e = evaluate(&run, Some(&human()), &EvalOptions { bootstrap: 50, ..EvalOptions::default() }, None)
        .await
        .unwrap();
    (e, run)
}

#[tokio::test]
async fn run_report_has_every_section_and_escapes_transcript_text() {
    let tmp = tempfile::tempdir().unwrap();
    // A directory name with markup, too: it becomes the run's label.
    let dir = tmp.path().join("run-<u>x");
    let (e, run) = evaluated(&dir, "vs-standard", &[Some(0.0), None, Some(1.5), Some(2.0)]).await;
    let written = write_run_report(&dir, &e, Some(&run), 100).unwrap();
    let html = std::fs::read_to_string(&written.html).unwrap();
    let md = std::fs::read_to_string(&written.markdown).unwrap();

    // No transcript or label text reaches the page unescaped.
    assert!(!html.contains("<script>alert"), "unescaped script in the page");
    assert!(!html.contains("<img src=x"), "unescaped img in the page");
    assert!(!html.contains("<b>server</b>"));
    assert!(!html.contains("<u>x"));
    assert!(html.contains("&lt;script&gt;alert("), "the candidate is shown, escaped");
    assert!(html.contains("&lt;b&gt;server&lt;"), "the failure message is shown, escaped");
    assert!(html.contains("pfg:&lt;data&gt;"));
    // The page's only script is its own, and nothing is fetched from elsewhere.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));

    for id in ["setup", "human", "outcomes", "metrics", "selection", "dialogues"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "missing section {id}");
    }
    // Histogram, ECDF and selection-check plots.
    assert!(html.matches("<svg").count() >= 3);
    assert!(html.contains("persuadee.donation: histogram") && html.contains("persuadee.donation: ECDF"));
    assert!(html.contains("selection check: persuadee, weighted"));
    assert!(!html.to_lowercase().contains("calibration"), "nothing here measures calibration");
    // Metrics with intervals, human levels and counts.
    for s in [
        "KS statistic D",
        "Wasserstein-1",
        "L1 paired",
        "L1 density (21 edges on [0, 2])",
        "missing (never counted as 0)",
        "repair: code_fence",
        "Distinct-1, per dialogue (mean, CI)",
        "Distinct-1, pooled over equal-size samples",
        "pooled over 1 dialogue per side (equal-size samples)",
        "selection check (expected under the rule vs chosen): mean gap",
        "share of turns rescaled to sum to 1",
        "Flesch–Kincaid grade",
    ] {
        assert!(html.contains(s), "html lacks {s}");
        assert!(md.contains(s), "markdown lacks {s}");
    }
    // Browser: candidates with bars, the chosen one marked, the real participant beside.
    assert!(html.contains("✓ chosen"));
    assert_eq!(html.matches("class=\"cand chosen\"").count(), 4, "one chosen candidate per turn");
    assert!(html.contains("style=\"width: 50.0%\""));
    assert!(html.contains("real participant: <b>0.000</b>"));
    assert!(html.contains("missing"));
    // Markdown: sections, escaped too.
    for s in [
        "# vsim evaluation: run-&lt;u&gt;x",
        "## Human reference",
        "### Outcome persuadee.donation",
        "### Selection check: persuadee, weighted",
        "### Stated probabilities: persuadee",
        "## Selection check (expected under the rule vs chosen)",
        "## Failed dialogues",
    ] {
        assert!(md.contains(s), "markdown lacks {s}:\n{md}");
    }
    assert!(!md.contains("<b>server</b>"));
}

#[tokio::test]
async fn dialogue_browser_is_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let (e, run) =
        evaluated(&dir, "vs-standard", &[Some(0.0), Some(1.0), Some(1.0), Some(2.0), Some(0.5)]).await;
    let html = vsim::report::html::run_html(&e, Some(&run), 2).unwrap();
    assert_eq!(html.matches("<details class=\"dialogue\"").count(), 2);
    assert!(html.contains("Showing the first 2 of 5 dialogues"));
    // Without run data there is no browser section.
    let html = vsim::report::html::run_html(&e, None, 2).unwrap();
    assert!(!html.contains("<section id=\"dialogues\">"));
}

#[tokio::test]
async fn comparison_lines_up_runs_and_overlays_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let (direct, _) =
        evaluated(&tmp.path().join("a/direct"), "direct", &[Some(0.0), Some(0.0), Some(0.0)]).await;
    let (vs, _) =
        evaluated(&tmp.path().join("b/vs"), "vs-standard", &[Some(0.0), Some(1.0), Some(2.0), Some(0.5)])
            .await;
    let (vs2, _) = evaluated(&tmp.path().join("c/vs"), "vs-standard", &[Some(1.0), Some(1.0)]).await;
    let c = Comparison::new(vec![direct, vs, vs2]).unwrap();
    let labels: Vec<&str> = c.runs.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["direct", "vs", "vs (2)"]);
    let ks = c.table.iter().find(|r| r.name == "KS statistic D").unwrap();
    assert_eq!(ks.values.len(), 3);
    assert!(ks.values.iter().all(|v| v.contains('[')), "{:?}", ks.values);
    let mean =
        c.table.iter().find(|r| r.section == "Outcome persuadee.donation" && r.name == "mean").unwrap();
    assert!(mean.values[0].starts_with("0.000"));
    assert!(mean.human.starts_with("0.700"), "{}", mean.human);
    // The direct run states no probabilities: its cells stay empty.
    let max_p = c.table.iter().find(|r| r.name == "mean largest probability (normalised)").unwrap();
    assert_eq!(max_p.values[0], "");
    assert!(max_p.values[1].starts_with("0.500"), "{:?}", max_p.values);
    // Its choices are checked against its rule all the same.
    let gap = c.table.iter().find(|r| r.name.ends_with("mean gap")).unwrap();
    assert!(gap.values.iter().all(|v| !v.is_empty()), "{:?}", gap.values);
    // Sections stay whole and in report order although the first run lacks a section.
    let sections: Vec<&str> = c.table.iter().map(|r| r.section.as_str()).collect();
    let mut runs: Vec<&str> = sections.clone();
    runs.dedup();
    assert_eq!(
        runs,
        [
            "Outcome persuadee.donation",
            "Language: persuadee",
            "Selection check: persuadee, weighted",
            "Stated probabilities: persuadee",
            "Counts"
        ]
    );

    let out = tmp.path().join("cmp");
    let written = write_comparison(&out, &c).unwrap();
    let html = std::fs::read_to_string(written.html).unwrap();
    let md = std::fs::read_to_string(written.markdown).unwrap();
    assert!(html.contains("vsim comparison: direct vs vs vs vs (2)"));
    // One histogram and one ECDF with every run overlaid on the human sample.
    assert_eq!(html.matches("class=\"title\">persuadee.donation: histogram<").count(), 1);
    for l in ["simulated: direct", "simulated: vs (2)", "human (n=5)"] {
        assert!(html.contains(l), "plot legend lacks {l}");
    }
    assert!(md.contains("| metric | direct | vs | vs (2) | human reference |"));
    assert!(Comparison::new(Vec::new()).is_err());
}

#[test]
fn report_command_needs_evaluated_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    write_run(&dir, "direct", &[Some(1.0)]);
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["report", dir.to_str().unwrap(), "--out", tmp.path().join("out").to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("run `vsim eval"));
}

#[test]
fn eval_then_report_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("direct");
    let b = tmp.path().join("vs");
    write_run(&a, "direct", &[Some(0.0), Some(1.0)]);
    write_run(&b, "vs-standard", &[Some(0.5), Some(2.0), Some(1.0)]);
    for dir in [&a, &b] {
        assert_cmd::Command::cargo_bin("vsim")
            .unwrap()
            .args([
                "eval",
                dir.to_str().unwrap(),
                "--bootstrap",
                "50",
                "--bins",
                "0,2,4",
                "--embedder",
                "none",
            ])
            .assert()
            .success()
            .stdout(predicates::str::contains("persuadee.donation: n = "));
        for f in ["metrics.json", "report.md", "report.html"] {
            assert!(dir.join(f).is_file(), "{f} not written");
        }
    }
    let m: Value = serde_json::from_str(&std::fs::read_to_string(b.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["numeric"][0]["counts"]["failed"], 1);
    // `--human none` means no human data, as a sweep's `human = "none"` does.
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["eval", b.to_str().unwrap(), "--human", "none", "--bootstrap", "20", "--embedder", "none"])
        .assert()
        .success();
    let out = tmp.path().join("cmp");
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["report", a.to_str().unwrap(), b.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .assert()
        .success();
    assert!(out.join("report.html").is_file() && out.join("report.md").is_file());
    // Bad bins are bad input.
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["eval", a.to_str().unwrap(), "--bins", "2,0,4"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("invalid bins"));
}

/// `vsim report --out` writes only into an empty folder or a report folder of its own: never
/// over an evaluated run's own report, nor into someone else's folder.
#[tokio::test]
async fn a_comparison_is_written_only_into_an_empty_or_its_own_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let (e, _) = evaluated(&run, "direct", &[Some(0.0), Some(1.0)]).await;
    vsim::eval::write_metrics(&run, &e).unwrap();
    std::fs::write(run.join("report.md"), "the run's own report").unwrap();
    let c = Comparison::new(vec![e]).unwrap();

    let refused = write_comparison(&run, &c).unwrap_err();
    assert!(refused.to_string().contains("not a vsim report folder"), "{refused}");
    assert!(vsim::fsutil::chain_has_refusal(&refused));
    assert_eq!(std::fs::read_to_string(run.join("report.md")).unwrap(), "the run's own report");

    let foreign = tmp.path().join("notes");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("report.md"), "mine").unwrap();
    assert!(write_comparison(&foreign, &c).is_err());
    assert_eq!(std::fs::read_to_string(foreign.join("report.md")).unwrap(), "mine");

    let out = tmp.path().join("cmp");
    write_comparison(&out, &c).unwrap();
    write_comparison(&out, &c).expect("a report folder is rewritten by the next report");
    assert!(out.join("comparison.json").is_file());

    // From the command line: bad input, exit code 2, naming the folder.
    assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .arg("report")
        .arg(&run)
        .arg("--out")
        .arg(&foreign)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(foreign.display().to_string()));
}
