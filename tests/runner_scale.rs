//! Experiments at scale: a thousand dialogues through injected faults, SIGKILL and resume,
//! shards merged back into one run, budget caps, sweeps with common random numbers,
//! branching a recorded dialogue, and the mock server itself.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use vsim::backend::factory::{open_model, BackendOptions};
use vsim::backend::resilient::ResilienceConfig;
use vsim::backend::scripted::ScriptedModel;
use vsim::backend::spec::ModelSpec;
use vsim::backend::{cache::CacheMode, ChatRequest, SharedModel};
use vsim::dialogue::events::Event;
use vsim::experiment::{
    run_experiment_with, Budget, Population, Prices, RoleModel, RunConfig, RunError, RunOptions, RunSummary,
    Shard,
};
use vsim::mock::{MockConfig, MockServer, MockStats, MockStyle};
use vsim::rundir::transcript::read_events;
use vsim::scenario::{parse_scenario, Scenario};
use vsim::vs::OutputConstraint;
use vsim::workflow::branch::{load_branch, run_branch, BranchConfig, BranchRequest};
use vsim::workflow::merge::{merge_runs, MergeError};
use vsim::workflow::sweep::{load_sweep, run_sweep, SweepOptions};

mod common;
use common::{root, tiny_toml};

fn tiny(max_turns: usize) -> Scenario {
    parse_scenario(&root().join("scenarios/tiny.toml"), &tiny_toml(max_turns)).unwrap()
}

fn population() -> Population {
    Population::load(root().join("personas").to_str().unwrap()).unwrap()
}

/// A deterministic fake whose replies depend on the whole request (messages and seed), so
/// that a changed history or seed changes what follows.
fn fake_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        let joined: String =
            req.messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\u{1}");
        let h = vsim::seed::derive_named(req.seed.unwrap_or(0), &joined);
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Candidates { max_items, .. }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|i| {
                        format!(
                            r#"{{"text": "option {i} ({:x})", "probability": {}}}"#,
                            h % 9973,
                            (i + 1) as f64 / 10.0
                        )
                    })
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(", "))
            }
            Some(OutputConstraint::Number { .. }) => format!(r#"{{"answer": {}}}"#, (h % 5) as f64 * 0.5),
            Some(OutputConstraint::Answers { answer: vsim::vs::AnswerShape::Number { .. }, .. }) => {
                format!(r#"{{"responses": [{{"answer": {}, "probability": 1.0}}]}}"#, (h % 5) as f64 * 0.5)
            }
            Some(OutputConstraint::Choice { choices }) => {
                format!(r#"{{"answer": "{}"}}"#, choices[(h as usize) % choices.len()])
            }
            _ => format!("Please donate ({:x}).", h % 65521),
        })
    })
}

fn role_models(scenario: &Scenario, model: SharedModel, name: &str) -> Vec<RoleModel> {
    scenario.roles.iter().map(|_| RoleModel { name: name.into(), model: model.clone() }).collect()
}

fn config(n: usize, seed: u64, concurrency: usize, dir: &Path, resume: bool) -> RunConfig {
    RunConfig {
        n: Some(n),
        seed,
        concurrency,
        out_dir: dir.to_path_buf(),
        resume,
        progress: Default::default(),
    }
}

async fn run_fake(
    scenario: &Scenario,
    cfg: &RunConfig,
    options: &RunOptions,
) -> Result<RunSummary, RunError> {
    let model: SharedModel = Arc::new(fake_model());
    run_experiment_with(
        Arc::new(scenario.clone()),
        &population(),
        &role_models(scenario, model, "scripted"),
        cfg,
        options,
    )
    .await
}

/// Transcript events as JSON with timing removed, grouped by dialogue in file order.
fn normalized(dir: &Path) -> Vec<String> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("latency_ms");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (_, evs) in read_events(&dir.join("transcripts.jsonl")).unwrap() {
        for e in evs {
            let mut v = serde_json::to_value(&e).unwrap();
            strip(&mut v);
            out.push(v.to_string());
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every dialogue id once, each with exactly one `begin` and one `end`.
fn assert_each_dialogue_once(dir: &Path, n: usize) {
    let events = read_events(&dir.join("transcripts.jsonl")).unwrap();
    let expected: BTreeSet<String> = (0..n).map(|i| format!("d{i:05}")).collect();
    assert_eq!(events.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for (id, evs) in &events {
        let begins = evs.iter().filter(|e| matches!(e, Event::Begin(_))).count();
        let ends = evs.iter().filter(|e| matches!(e, Event::End(_))).count();
        // What ended an attempt in an error, for a failure's message.
        let errors: Vec<&str> = evs
            .iter()
            .filter_map(|e| match e {
                Event::Error(error) => Some(error.message.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!((begins, ends), (1, 1), "{id} must be written exactly once; its errors: {errors:?}");
    }
}

async fn mock_model(server: &MockServer, resilience: ResilienceConfig) -> SharedModel {
    let spec = ModelSpec::OpenAi { model: "mock".into(), base_url: Some(server.base_url()) };
    let options = BackendOptions { cache: CacheMode::Off, resilience, ..Default::default() };
    open_model(&spec, &options).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_dialogues_survive_errors_and_stalls() {
    let server = MockServer::start(MockConfig {
        error_rate: 0.10,
        timeout_rate: 0.02,
        stall: Duration::from_secs(3),
        retry_after: Duration::from_millis(5),
        seed: 11,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let resilience = ResilienceConfig {
        max_retries: 12,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(40),
        max_concurrency: 128,
        requests_per_minute: None,
        request_timeout: Some(Duration::from_millis(400)),
    };
    let model = mock_model(&server, resilience).await;
    let scenario = tiny(2);
    let dir = tempfile::tempdir().unwrap();
    let summary = run_experiment_with(
        Arc::new(scenario.clone()),
        &population(),
        &role_models(&scenario, model, "openai:mock"),
        &config(1000, 3, 128, dir.path(), false),
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!((summary.counts.completed, summary.counts.failed, summary.ran), (1000, 0, 1000));
    assert_each_dialogue_once(dir.path(), 1000);
    let csv = read(&dir.path().join("outcomes.csv"));
    let indices: Vec<usize> =
        csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(indices, (0..1000).collect::<Vec<_>>());
    let stats = server.stats();
    assert!(MockStats::get(&stats.rate_limited) > 0, "429s were injected");
    assert!(MockStats::get(&stats.server_errors) > 0, "500s were injected");
    assert!(MockStats::get(&stats.stalled) > 0, "stalls were injected");
    // Every dialogue makes 3 calls; faults add retries on top.
    assert!(MockStats::get(&stats.chat_requests) > 3000);
    assert!(summary.spend.calls >= 3000, "{:?}", summary.spend);
    assert!(summary.spend.usage.total() > 0);
}

/// Lines of the transcript that end a dialogue.
fn ended(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("transcripts.jsonl"))
        .map(|t| t.lines().filter(|l| l.contains(r#""event":"end""#)).count())
        .unwrap_or(0)
}

#[test]
fn sigkill_then_resume_gives_the_uninterrupted_outcomes() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt
        .block_on(MockServer::start(MockConfig {
            latency: Duration::from_millis(15),
            seed: 2,
            ..MockConfig::default()
        }))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let scenario_path = tmp.path().join("tiny.toml");
    std::fs::write(&scenario_path, tiny_toml(4)).unwrap();
    let n = 40;
    let vsim = |out: &Path, cache: &Path, resume: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vsim"));
        cmd.arg("run")
            .arg(&scenario_path)
            .args(["--n", &n.to_string(), "--seed", "5", "--concurrency", "4", "--quiet", "--timeout", "10"])
            .arg("--model")
            .arg(format!("openai:mock@{}", server.base_url()))
            .arg("--out")
            .arg(out)
            .arg("--cache-dir")
            .arg(cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };

    let reference = tmp.path().join("reference");
    let status = vsim(&reference, &tmp.path().join("cache-ref"), false).status().unwrap();
    assert!(status.success(), "{status}");

    let crashed = tmp.path().join("crashed");
    let cache = tmp.path().join("cache-crash");
    let mut kills = 0;
    for (i, threshold) in [0, 3, 12, 25].into_iter().enumerate() {
        let mut child = vsim(&crashed, &cache, i > 0).spawn().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let started = crashed.join("config.json").exists();
            if started && ended(&crashed) >= threshold {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(kills >= 2, "the run was killed mid-way ({kills} kills)");
    let status = vsim(&crashed, &cache, true).status().unwrap();
    assert!(status.success(), "{status}");

    let text = read(&crashed.join("transcripts.jsonl"));
    assert!(text.ends_with('\n'));
    for (i, line) in text.lines().enumerate() {
        serde_json::from_str::<Event>(line)
            .unwrap_or_else(|e| panic!("line {}: torn or invalid: {e}", i + 1));
    }
    assert_each_dialogue_once(&crashed, n);
    assert_eq!(read(&crashed.join("outcomes.csv")), read(&reference.join("outcomes.csv")));
    drop(server);
    rt.shutdown_background();
}

#[tokio::test]
async fn shards_merged_equal_an_unsharded_run() {
    let scenario = tiny(4);
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    run_fake(&scenario, &config(10, 9, 3, &whole, false), &RunOptions::default()).await.unwrap();
    let mut shards = Vec::new();
    for i in 0..3 {
        let dir = tmp.path().join(format!("shard{i}"));
        let options = RunOptions { shard: Some(Shard::new(i, 3).unwrap()), ..Default::default() };
        let s = run_fake(&scenario, &config(10, 9, 2, &dir, false), &options).await.unwrap();
        assert_eq!(s.counts.completed, [4, 3, 3][i]);
        let cfg: serde_json::Value = serde_json::from_str(&read(&dir.join("config.json"))).unwrap();
        assert_eq!(cfg["shard"], serde_json::json!({"index": i, "count": 3}));
        shards.push(dir);
    }
    let merged = tmp.path().join("merged");
    let report = merge_runs(&merged, &shards).unwrap();
    assert!(report.missing.is_empty() && report.duplicates.is_empty());
    assert_eq!((report.dialogues, report.counts.completed), (10, 10));
    assert_eq!(normalized(&merged), normalized(&whole));
    assert_eq!(read(&merged.join("outcomes.csv")), read(&whole.join("outcomes.csv")));
    // The merged directory continues like the unsharded run.
    let resumed =
        run_fake(&scenario, &config(10, 9, 2, &merged, true), &RunOptions::default()).await.unwrap();
    assert_eq!((resumed.ran, resumed.skipped), (0, 10));

    // Merging copies every event byte for byte (floats round-trip exactly).
    let ordered = tmp.path().join("ordered");
    run_fake(&scenario, &config(10, 9, 1, &ordered, false), &RunOptions::default()).await.unwrap();
    let copy = tmp.path().join("copy");
    merge_runs(&copy, std::slice::from_ref(&ordered)).unwrap();
    assert_eq!(read(&copy.join("transcripts.jsonl")), read(&ordered.join("transcripts.jsonl")));

    // Missing and duplicate dialogues are reported.
    let partial = merge_runs(&tmp.path().join("partial"), &shards[..2]).unwrap();
    assert_eq!(partial.missing, vec![2, 5, 8]);
    let twice =
        merge_runs(&tmp.path().join("twice"), &[shards[0].clone(), shards[0].clone(), shards[1].clone()])
            .unwrap();
    assert_eq!(twice.duplicates.len(), 4);
    assert_eq!(twice.dialogues, 7);

    // A hand-edited shard: one dialogue completed twice in its transcript, another without
    // its `begin` line. Both are reported; the second is left out and counted missing.
    let edited = tmp.path().join("edited");
    std::fs::create_dir(&edited).unwrap();
    std::fs::copy(shards[0].join("config.json"), edited.join("config.json")).unwrap();
    let text = read(&shards[0].join("transcripts.jsonl"));
    let of = |id: &str| -> Vec<&str> {
        text.lines().filter(|l| l.contains(&format!("\"dialogue\":\"{id}\""))).collect()
    };
    let (first, second) = (of("d00000"), of("d00003"));
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.contains("\"dialogue\":\"d00003\"")).collect();
    lines.extend(&first);
    lines.extend(second.iter().filter(|l| !l.contains("\"event\":\"begin\"")));
    std::fs::write(edited.join("transcripts.jsonl"), lines.join("\n") + "\n").unwrap();
    let report =
        merge_runs(&tmp.path().join("from-edited"), &[edited, shards[1].clone(), shards[2].clone()]).unwrap();
    assert_eq!(
        report.duplicates.iter().map(|(id, dirs)| (id.as_str(), dirs.len())).collect::<Vec<_>>(),
        [("d00000", 2)]
    );
    assert_eq!(report.without_begin.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["d00003"]);
    assert_eq!(report.missing, vec![3]);

    // A different experiment is refused.
    let other = tmp.path().join("other");
    let options = RunOptions { shard: Some(Shard::new(2, 3).unwrap()), ..Default::default() };
    run_fake(&scenario, &config(10, 10, 2, &other, false), &options).await.unwrap();
    let err = merge_runs(&tmp.path().join("bad"), &[shards[0].clone(), other]).unwrap_err();
    assert!(matches!(err, MergeError::Mismatch { ref field, .. } if field == "seed"), "{err}");
    // So is resuming a shard directory as another shard.
    let options = RunOptions { shard: Some(Shard::new(1, 3).unwrap()), ..Default::default() };
    let err = run_fake(&scenario, &config(10, 9, 2, &shards[0], true), &options).await.unwrap_err();
    assert!(
        matches!(err, RunError::RunDir(vsim::rundir::RunDirError::Mismatch { ref field, .. }) if field == "shard"),
        "{err}"
    );
}

#[tokio::test]
async fn budget_caps_stop_cleanly_and_resume_finishes() {
    let scenario = tiny(4);
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let reference =
        run_fake(&scenario, &config(30, 4, 2, &full, false), &RunOptions::default()).await.unwrap();
    let per_dialogue = reference.spend.usage.total() / 30;
    assert!(per_dialogue > 0);

    let capped = tmp.path().join("capped");
    let budget = Budget { max_tokens_total: Some(per_dialogue * 5), max_cost_usd: None };
    let s =
        run_fake(&scenario, &config(30, 4, 2, &capped, false), &RunOptions { budget, ..Default::default() })
            .await
            .unwrap();
    assert!(s.stop.as_ref().and_then(|c| c.budget()).unwrap().contains("token budget"), "{:?}", s.stop);
    assert!(s.counts.completed >= 4 && s.counts.completed < 30, "{}", s.counts.completed);
    assert_eq!(s.counts.failed, 0, "dialogues cut at the cap are not failures");
    assert_eq!(s.counts.dialogues, s.ran);
    assert_eq!(s.not_started, 30 - s.ran);
    let resumed =
        run_fake(&scenario, &config(30, 4, 2, &capped, true), &RunOptions::default()).await.unwrap();
    assert_eq!(resumed.counts.completed, 30);
    assert!(resumed.stop.is_none());
    assert_eq!(read(&capped.join("outcomes.csv")), read(&full.join("outcomes.csv")));

    // A cost cap: prices per model, and a refusal when a model has none.
    let mut prices = Prices::default();
    prices.add_entry("scripted=1000,2000").unwrap();
    let dir = tmp.path().join("cost");
    let budget = Budget { max_tokens_total: None, max_cost_usd: Some(0.5) };
    let s = run_fake(
        &scenario,
        &config(30, 4, 1, &dir, false),
        &RunOptions { budget, prices, ..Default::default() },
    )
    .await
    .unwrap();
    assert!(s.stop.as_ref().and_then(|c| c.budget()).unwrap().contains("cost budget"), "{:?}", s.stop);
    assert!(s.spend.cost_usd.unwrap() >= 0.5 && s.counts.completed < 30);
    let err = run_fake(
        &scenario,
        &config(3, 4, 1, &tmp.path().join("unpriced"), false),
        &RunOptions { budget, ..Default::default() },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RunError::Unpriced(_)), "{err}");
}

/// The largest number of tokens one model call used in a run's transcript.
fn largest_call(dir: &Path) -> u64 {
    let events = vsim::rundir::transcript::read_events(&dir.join("transcripts.jsonl")).unwrap();
    events
        .values()
        .flatten()
        .filter_map(|e| match e {
            vsim::dialogue::Event::Turn(t) => t.calls.iter().filter_map(|c| c.usage).map(|u| u.total()).max(),
            vsim::dialogue::Event::Outcome(o) => Some(o.usage.total()),
            _ => None,
        })
        .max()
        .unwrap()
}

#[tokio::test]
async fn budget_caps_hold_at_concurrency_8() {
    let scenario = tiny(4);
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    let reference =
        run_fake(&scenario, &config(40, 4, 8, &full, false), &RunOptions::default()).await.unwrap();
    let largest = largest_call(&full);
    let cap = reference.spend.usage.total() / 8;
    let capped = tmp.path().join("capped");
    let budget = Budget { max_tokens_total: Some(cap), max_cost_usd: None };
    let s =
        run_fake(&scenario, &config(40, 4, 8, &capped, false), &RunOptions { budget, ..Default::default() })
            .await
            .unwrap();
    let spent = s.spend.usage.total();
    assert!(spent <= cap + 8 * largest, "spent {spent} over the cap {cap} by more than 8 calls of {largest}");
    assert!(s.stop.as_ref().is_some_and(|c| c.budget().is_some()) && s.counts.completed < 40);
    assert_eq!(s.counts.failed, 0, "dialogues cut at the cap are not failures");
    assert_whole_lines_resume(&scenario, &capped, &full).await;

    // The same for a cost cap.
    let mut prices = Prices::default();
    prices.add_entry("scripted=1000,2000").unwrap();
    let dir = tmp.path().join("cost");
    let max_cost = 0.2;
    let s = run_fake(
        &scenario,
        &config(40, 4, 8, &dir, false),
        &RunOptions {
            budget: Budget { max_tokens_total: None, max_cost_usd: Some(max_cost) },
            prices,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let cost = s.spend.cost_usd.unwrap();
    assert!(cost <= max_cost + 8.0 * largest as f64 * 2000.0 / 1e6, "spent ${cost} over ${max_cost}");
    assert!(s.stop.as_ref().and_then(|c| c.budget()).unwrap().contains("cost budget"));
}

/// Resuming a capped run finishes it with exactly the outcomes of the uncapped run.
async fn assert_whole_lines_resume(scenario: &Scenario, capped: &Path, full: &Path) {
    let resumed = run_fake(scenario, &config(40, 4, 8, capped, true), &RunOptions::default()).await.unwrap();
    assert_eq!(resumed.counts.completed, 40);
    assert_eq!(read(&capped.join("outcomes.csv")), read(&full.join("outcomes.csv")));
}

#[tokio::test]
async fn sweep_writes_one_run_per_cell_with_common_random_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("tiny.toml"), tiny_toml(2)).unwrap();
    let sweep_file = tmp.path().join("grid.toml");
    std::fs::write(
        &sweep_file,
        format!(
            r#"
scenario = "tiny.toml"
role = "persuadee"
n = 3
seed = 21
concurrency = 2
model = "scripted"
out = "{}"
[grid]
method = ["vs-standard", "vs-cot"]
selection = ["weighted", "uniform"]
[prices]
scripted = [1.0, 2.0]
"#,
            tmp.path().join("out").display()
        ),
    )
    .unwrap();
    let sweep = load_sweep(&sweep_file).unwrap();
    assert_eq!(sweep.model_specs().into_iter().collect::<Vec<_>>(), vec!["scripted".to_string()]);
    let model: SharedModel = Arc::new(fake_model());
    let models: HashMap<String, SharedModel> = [("scripted".to_string(), model)].into();
    let summary = run_sweep(&sweep, &models, &SweepOptions::default()).await.unwrap();
    assert_eq!(summary.cells.len(), 4);
    let mut begins: Vec<Vec<(u64, Option<String>)>> = Vec::new();
    for cell in &summary.cells {
        assert_eq!(cell.stats.completed, 3);
        assert!(cell.stats.cost_usd.unwrap() > 0.0);
        let cfg: serde_json::Value = serde_json::from_str(&read(&cell.dir.join("config.json"))).unwrap();
        let persuadee = &cfg["scenario"]["roles"][1];
        assert_eq!(persuadee["method"], cell.cell.method.unwrap().to_string());
        assert_eq!(persuadee["rule"]["selection"], cell.cell.selection.unwrap().to_string());
        let events = read_events(&cell.dir.join("transcripts.jsonl")).unwrap();
        begins.push(
            events
                .values()
                .map(|evs| match &evs[0] {
                    Event::Begin(b) => (b.seed, b.population_id.clone()),
                    other => panic!("begin expected, got {other:?}"),
                })
                .collect(),
        );
    }
    assert!(begins.windows(2).all(|w| w[0] == w[1]), "same personas and seeds in every cell");
    let out = tmp.path().join("out");
    let csv = read(&out.join("summary.csv"));
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.lines().next().unwrap().contains("persuadee.donation.mean"));
    assert!(read(&out.join("summary.md")).contains("| 000-vs-standard-weighted |"));
    assert!(out.join("sweep.json").exists());

    // Errors name the file and the field or line.
    let err = vsim::workflow::sweep::parse_sweep(
        &sweep_file,
        "scenario = \"tiny.toml\"\nrole = \"persuadee\"\n[grid]\nmethod = [\"vs-fancy\"]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("grid.toml") && err.contains("grid.method") && err.contains("vs-fancy"), "{err}");
    let err = vsim::workflow::sweep::parse_sweep(
        &sweep_file,
        "scenario = \"tiny.toml\"\nrole = \"persuadee\"\nbogus = 1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 3") && err.contains("bogus"), "{err}");

    // The example sweep file parses.
    let example = load_sweep(&root().join("scenarios/sweep_persuasion.toml")).unwrap();
    assert!(example.cells().len() >= 4);
}

#[tokio::test]
async fn branch_replays_the_prefix_exactly_and_differs_after() {
    let scenario = tiny(8);
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    std::fs::write(tmp.path().join("tiny.toml"), tiny_toml(8)).unwrap();
    run_fake(&scenario, &config(2, 13, 2, &run_dir, false), &RunOptions::default()).await.unwrap();
    let original = read_events(&run_dir.join("transcripts.jsonl")).unwrap().remove("d00001").unwrap();
    let turns = |evs: &[Event]| -> Vec<vsim::dialogue::events::TurnEvent> {
        evs.iter().filter_map(|e| if let Event::Turn(t) = e { Some(t.clone()) } else { None }).collect()
    };
    let orig_turns = turns(&original);
    let t = 3;
    let j = (orig_turns[t].choice.index + 1) % orig_turns[t].candidates.len();

    let request = BranchRequest {
        run_dir: run_dir.clone(),
        dialogue: "d00001".into(),
        turn: t,
        candidate: j,
        scenario_path: Some(tmp.path().join("tiny.toml")),
        allow_changed_inputs: false,
    };
    let source = load_branch(&request).unwrap();
    let model: SharedModel = Arc::new(fake_model());
    let models = role_models(&scenario, model, "scripted");
    let out = tmp.path().join("branch");
    let cfg = BranchConfig {
        n: 2,
        concurrency: 2,
        out_dir: out.clone(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_branch(&source, &models, &cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(summary.counts.completed, 2);

    let Event::Begin(orig_begin) = &original[0] else { panic!("begin expected") };
    let branches = read_events(&out.join("transcripts.jsonl")).unwrap();
    let mut after = Vec::new();
    for (i, (id, evs)) in branches.iter().enumerate() {
        let Event::Begin(b) = &evs[0] else { panic!("begin expected") };
        assert_eq!(b.seed, vsim::seed::derive(orig_begin.seed, i as u64));
        assert_eq!(b.agents, orig_begin.agents);
        let bt = turns(evs);
        assert_eq!(bt.len(), 8);
        for k in 0..t {
            let mut expected = orig_turns[k].clone();
            expected.dialogue = id.clone();
            assert_eq!(bt[k], expected, "turn {k} is replayed exactly");
        }
        assert_eq!(bt[t].text, orig_turns[t].candidates[j].text);
        assert_ne!(bt[t].text, orig_turns[t].text);
        assert_eq!(bt[t].choice.index, j);
        assert_ne!(bt[t + 1].text, orig_turns[t + 1].text, "the dialogue continues from the new reply");
        after.push(bt[t + 1..].iter().map(|x| x.text.clone()).collect::<Vec<_>>());
    }
    assert_ne!(after[0], after[1], "branches differ by seed");
    let cfg: serde_json::Value = serde_json::from_str(&read(&out.join("config.json"))).unwrap();
    assert_eq!(cfg["branch"]["turn"], t);
    assert_eq!(cfg["branch"]["candidate"], j);
    assert_eq!(cfg["branch"]["dialogue"], "d00001");
    assert_eq!(read(&out.join("outcomes.csv")).lines().count(), 3);

    // Out-of-range requests are refused with a clear message.
    let bad = BranchRequest { candidate: 99, ..request.clone() };
    assert!(load_branch(&bad).unwrap_err().to_string().contains("no candidate 99"));
    let bad = BranchRequest { turn: 50, ..request };
    assert!(load_branch(&bad).unwrap_err().to_string().contains("no turn 50"));
}

#[tokio::test]
async fn mock_server_speaks_the_openai_shapes() {
    let server = MockServer::start(MockConfig {
        error_rate: 1.0,
        retry_after: Duration::from_millis(1500),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let mut statuses = BTreeSet::new();
    for _ in 0..20 {
        let r =
            client.post(format!("{}/chat/completions", server.base_url())).json(&body).send().await.unwrap();
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "2");
            assert_eq!(r.headers()["retry-after-ms"], "1500");
        }
        statuses.insert(r.status().as_u16());
    }
    assert_eq!(statuses, BTreeSet::from([429, 500]));

    let server =
        MockServer::start(MockConfig { style: MockStyle::Vs, ..MockConfig::default() }).await.unwrap();
    let url = format!("{}/chat/completions", server.base_url());
    let schema = OutputConstraint::Candidates {
        min_items: 4,
        max_items: 4,
        with_probability: true,
        with_reasoning: false,
    };
    let with_schema = |c: &OutputConstraint| {
        serde_json::json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": c.name(), "schema": c.json_schema()}},
        })
    };
    let reply: serde_json::Value =
        client.post(&url).json(&with_schema(&schema)).send().await.unwrap().json().await.unwrap();
    let content: serde_json::Value =
        serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["responses"].as_array().unwrap().len(), 4);
    assert!(reply["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let number = OutputConstraint::Number { min: 0.0, max: 2.0 };
    let reply: serde_json::Value =
        client.post(&url).json(&with_schema(&number)).send().await.unwrap().json().await.unwrap();
    let content: serde_json::Value =
        serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    let x = content["answer"].as_f64().unwrap();
    assert!((0.0..=2.0).contains(&x));
    let plain: serde_json::Value = client.post(&url).json(&body).send().await.unwrap().json().await.unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    )
    .is_err());
    // Same request, same reply.
    let again: serde_json::Value = client.post(&url).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(plain["choices"], again["choices"]);

    let emb: serde_json::Value = client
        .post(format!("{}/embeddings", server.base_url()))
        .json(&serde_json::json!({"model": "e", "input": ["a", "b"], "dimensions": 16}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = emb["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let v: Vec<f64> = data[0]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(v.len(), 16);
    assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9);

    // Malformed replies still reach the parser, which repairs most of them.
    let server =
        MockServer::start(MockConfig { style: MockStyle::Malformed, ..MockConfig::default() }).await.unwrap();
    let reply: serde_json::Value = client
        .post(format!("{}/chat/completions", server.base_url()))
        .json(&with_schema(&schema))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let content = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(content)
        .map(|v| v.get("responses").is_none())
        .unwrap_or(true));
    assert_eq!(MockStats::get(&server.stats().malformed), 1);
}

#[test]
fn cli_shards_merge_branch_and_sweep_against_the_mock() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start(MockConfig { seed: 4, ..MockConfig::default() })).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let scenario_path = tmp.path().join("tiny.toml");
    std::fs::write(&scenario_path, tiny_toml(4)).unwrap();
    let model = format!("openai:mock@{}", server.base_url());
    let vsim = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_vsim"))
            .args(args)
            .args(["--no-cache", "--quiet"])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let p = |x: &Path| x.display().to_string();
    let s = p(&scenario_path);
    let (s0, s1) = (tmp.path().join("s0"), tmp.path().join("s1"));
    for (i, dir) in [&s0, &s1].into_iter().enumerate() {
        let shard = format!("{i}/2");
        let (code, stdout, stderr) = vsim(&[
            "run",
            &s,
            "--n",
            "6",
            "--seed",
            "8",
            "--model",
            &model,
            "--shard",
            &shard,
            "--out",
            &p(dir),
        ]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.contains(&format!("[shard {i}/2]")), "{stdout}");
        assert!(stdout.contains("tokens"), "{stdout}");
    }
    let merged = tmp.path().join("merged");
    let out = Command::new(env!("CARGO_BIN_EXE_vsim"))
        .args(["merge", &p(&merged), &p(&s0), &p(&s1)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("6 of 6 dialogues"));
    let out = Command::new(env!("CARGO_BIN_EXE_vsim"))
        .args(["merge", &p(&tmp.path().join("m2")), &p(&s0)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "missing dialogues are reported");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing dialogue indices: 1, 3, 5"));

    let branch = tmp.path().join("branch");
    let (code, stdout, stderr) = vsim(&[
        "branch",
        &p(&merged),
        "--dialogue",
        "d00002",
        "--turn",
        "1",
        "--candidate",
        "2",
        "--n",
        "2",
        "--model",
        &model,
        "--out",
        &p(&branch),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("2 dialogues (2 completed"), "{stdout}");

    let capped = tmp.path().join("capped");
    let (code, stdout, stderr) = vsim(&[
        "run",
        &s,
        "--n",
        "30",
        "--seed",
        "8",
        "--model",
        &model,
        "--out",
        &p(&capped),
        "--concurrency",
        "1",
        "--price",
        "mock=1000,1000",
        "--max-cost",
        "0.5",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("stopped for budget: cost budget reached"), "{stdout}");

    let sweep_file = tmp.path().join("sweep.toml");
    std::fs::write(
        &sweep_file,
        format!(
            "scenario = \"tiny.toml\"\nrole = \"persuadee\"\nn = 2\nmodel = \"{model}\"\n[grid]\nk = [2, 3]\ntau = [\"none\", 0.2]\n"
        ),
    )
    .unwrap();
    let sweep_out = tmp.path().join("sweep-out");
    let (code, stdout, stderr) =
        vsim(&["sweep", &p(&sweep_file), "--out", &p(&sweep_out), "--embedder", "none", "--bootstrap", "50"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("4 cells"), "{stdout}");
    assert!(sweep_out.join("001-k2-tau0.2/outcomes.csv").exists());
    // Every cell is evaluated and compared, here without human data (hand-written personas).
    assert!(sweep_out.join("001-k2-tau0.2/metrics.json").exists());
    assert!(stdout.contains("no human data"), "{stdout}");
    assert!(std::fs::read_to_string(sweep_out.join("report.md")).unwrap().contains("| 003-k3-tau0.2 |"));
    drop(server);
    rt.shutdown_background();
}

#[tokio::test]
async fn replicates_repeat_each_person_with_seeds_that_leave_replicate_zero_unchanged() {
    let scenario = tiny(2);
    let tmp = tempfile::tempdir().unwrap();
    let (once, thrice) = (tmp.path().join("once"), tmp.path().join("thrice"));
    run_fake(&scenario, &config(3, 5, 4, &once, false), &RunOptions::default()).await.unwrap();
    let options = RunOptions { replicates: 3, ..RunOptions::default() };
    let summary = run_fake(&scenario, &config(3, 5, 4, &thrice, false), &options).await.unwrap();
    assert_eq!((summary.planned, summary.counts.completed), (9, 9));
    assert_each_dialogue_once(&thrice, 9);
    // Replicate 0 of every person is the dialogue a run without replicates gives.
    let once_events = normalized(&once);
    let thrice_events = normalized(&thrice);
    assert_eq!(thrice_events[..once_events.len()], once_events[..]);
    // Dialogue r * 3 + p plays person p, each time with its own seed.
    let events = read_events(&thrice.join("transcripts.jsonl")).unwrap();
    let begins: Vec<_> = events
        .values()
        .map(|evs| match &evs[0] {
            Event::Begin(b) => (b.population_id.clone().unwrap(), b.seed),
            other => panic!("first event {other:?}"),
        })
        .collect();
    for (i, (person, _)) in begins.iter().enumerate() {
        assert_eq!(person, &begins[i % 3].0, "dialogue {i}");
    }
    assert_eq!(begins.iter().map(|b| b.1).collect::<BTreeSet<_>>().len(), 9, "seeds are distinct");
    assert_eq!(begins[4].1, vsim::experiment::runner::replicate_seed(5, 1, 1));
    let manifest: serde_json::Value = serde_json::from_str(&read(&thrice.join("config.json"))).unwrap();
    assert_eq!((manifest["n"].as_u64(), manifest["replicates"].as_u64()), (Some(9), Some(3)));
    // Resuming with another number of replicates would mix two experiments.
    let other = RunOptions { replicates: 2, ..RunOptions::default() };
    let err = run_fake(&scenario, &config(3, 5, 4, &thrice, true), &other).await.unwrap_err();
    assert!(err.to_string().contains("configuration differs"), "{err}");
    let err = run_fake(
        &scenario,
        &config(3, 5, 4, &tmp.path().join("zero"), false),
        &RunOptions { replicates: 0, ..RunOptions::default() },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("between 1 and"), "{err}");
}
