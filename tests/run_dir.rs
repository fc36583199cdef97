//! The run-directory contract through the CLI: one writer at a time, no torn line after a
//! failed write, inputs pinned at run time and checked by the readers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use vsim::mock::{MockConfig, MockServer};

mod common;
use common::root;

/// The shared tiny scenario with two turns.
fn tiny_toml() -> String {
    common::tiny_toml(2)
}

struct Fixture {
    _rt: tokio::runtime::Runtime,
    server: MockServer,
    tmp: tempfile::TempDir,
    scenario: PathBuf,
}

fn fixture(latency_ms: u64) -> Fixture {
    fixture_with(MockConfig { latency: Duration::from_millis(latency_ms), seed: 3, ..MockConfig::default() })
}

/// The tiny scenario and a mock server answering as `config` says.
fn fixture_with(config: MockConfig) -> Fixture {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start(config)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    std::fs::write(&scenario, tiny_toml()).unwrap();
    Fixture { _rt: rt, server, tmp, scenario }
}

impl Fixture {
    /// `vsim run` of the scenario against the mock into `out`, with `args`.
    fn command(&self, out: &Path, n: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vsim"));
        cmd.arg("run")
            .arg(&self.scenario)
            .args(["--n", &n.to_string(), "--no-cache"])
            .arg("--model")
            .arg(format!("openai:mock@{}", self.server.base_url()))
            .arg("--out")
            .arg(out)
            .args(args);
        cmd
    }

    /// [`Fixture::command`] with seed 5, one dialogue at a time, quietly, and `extra`.
    fn run(&self, out: &Path, n: usize, extra: &[&str]) -> Command {
        let mut cmd = self.command(out, n, &["--seed", "5", "--concurrency", "1", "--quiet"]);
        cmd.args(extra);
        cmd
    }
}

fn ends(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("transcripts.jsonl"))
        .map(|t| t.lines().filter(|l| l.contains(r#""event":"end""#)).count())
        .unwrap_or(0)
}

/// Every line of the transcript is a whole JSON event, and the file ends with a newline.
fn assert_whole_lines(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("transcripts.jsonl")).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "the transcript ends mid-line");
    for (i, line) in text.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("line {} is not whole JSON ({e}): {line}", i + 1));
    }
}

#[test]
fn a_second_process_on_a_run_directory_is_refused_naming_the_first() {
    let f = fixture(40);
    let out = f.tmp.path().join("run");
    let n = 12;
    let mut first = f.run(&out, n, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    while !out.join("config.json").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = f.run(&out, n, &["--resume"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    assert!(first.wait().unwrap().success());
    assert_eq!(ends(&out), n, "every dialogue ran exactly once");

    // The lock left by a killed process does not block the next one.
    let killed = f.tmp.path().join("killed");
    let mut child = f.run(&killed, n, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    while ends(&killed) < 1 {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = f.run(&killed, n, &["--resume"]).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(ends(&killed), n);
}

#[test]
fn a_write_that_fails_part_way_leaves_no_torn_line() {
    let f = fixture(0);
    let out = f.tmp.path().join("run");
    let n = 30;
    // The file-size limit makes a write fail part-way through, as a full disk does.
    // (bash's `ulimit -f` counts 1024-byte blocks; SIGXFSZ is ignored so the write errs.)
    let run = f.run(&out, n, &[]);
    let args: Vec<String> = std::iter::once(run.get_program())
        .chain(run.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let limited = Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -f 24; trap '' XFSZ; exec {}", args.join(" ")))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert!(!limited.status.success(), "the limited run should fail: {stderr}");
    assert!(stderr.contains("transcripts.jsonl"), "the error names the file: {stderr}");
    let size = std::fs::metadata(out.join("transcripts.jsonl")).unwrap().len();
    assert!(size > 0 && size <= 24 * 1024, "{size}");
    assert_whole_lines(&out);
    let kept = ends(&out);
    assert!(kept > 0 && kept < n, "{kept} dialogues kept");

    let resumed = f.run(&out, n, &["--resume"]).output().unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_whole_lines(&out);
    assert_eq!(ends(&out), n);
}

#[test]
fn inputs_are_pinned_and_an_edited_scenario_is_named_before_branching() {
    let f = fixture(0);
    let out = f.tmp.path().join("run");
    assert!(f.run(&out, 2, &[]).status().unwrap().success());
    // The same run again without --resume: the library says what is wrong, the command line
    // which flags fix it.
    let again = f.run(&out, 2, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already holds a run"), "{stderr}");
    assert!(stderr.contains("hint: pass --resume to continue it, or choose another --out"), "{stderr}");
    let manifest = vsim::rundir::read_manifest(&out).unwrap();
    assert_eq!(manifest.manifest_version, vsim::rundir::MANIFEST_VERSION);
    let scenario = manifest.input("scenario").unwrap();
    assert!(scenario.path.is_absolute());
    assert_eq!(scenario.path, std::fs::canonicalize(&f.scenario).unwrap());
    assert!(manifest.input("personas").unwrap().path.is_absolute());

    let branch = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vsim"))
            .current_dir(f.tmp.path())
            .args(["branch"])
            .arg(&out)
            .args([
                "--dialogue",
                "d00000",
                "--turn",
                "1",
                "--candidate",
                "0",
                "--n",
                "1",
                "--quiet",
                "--no-cache",
            ])
            .arg("--model")
            .arg(format!("openai:mock@{}", f.server.base_url()))
            .args(extra)
            .output()
            .unwrap()
    };
    // A comment changes the file but not the experiment.
    let mut text = std::fs::read_to_string(&f.scenario).unwrap();
    text.push_str("# edited after the run\n");
    std::fs::write(&f.scenario, text).unwrap();
    let refused = branch(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("scenario") && stderr.contains("changed since the run"), "{stderr}");
    assert!(
        stderr.contains("hint: pass the original with --scenario, or --allow-changed-inputs"),
        "{stderr}"
    );
    let allowed = branch(&["--allow-changed-inputs"]);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    let b = vsim::rundir::read_manifest(&out.join("branches/d00000-t1-c0")).unwrap();
    assert_eq!(b.kind, vsim::rundir::RunKind::Branch);
    assert!(b.branch.unwrap().from.is_absolute());
}

#[test]
fn a_dead_port_or_a_missing_key_fails_before_any_dialogue() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    std::fs::write(&scenario, tiny_toml()).unwrap();
    let (_reserved, port) = common::refusing_port();
    let run = |model: &str| {
        let started = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_vsim"))
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .arg("run")
            .arg(&scenario)
            .args(["--n", "12", "--quiet", "--no-cache", "--model", model, "--out"])
            .arg(tmp.path().join("run"))
            .output()
            .unwrap();
        (out, started.elapsed())
    };
    let (dead, took) = run(&format!("openai:mock@http://127.0.0.1:{port}/v1"));
    let stderr = String::from_utf8_lossy(&dead.stderr);
    assert_eq!(dead.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot reach") && stderr.contains(&port.to_string()), "{stderr}");
    // The cause itself, not only reqwest's "error sending request for url".
    assert!(stderr.to_lowercase().contains("connection refused"), "{stderr}");
    assert!(!stderr.contains("for url"), "{stderr}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(!tmp.path().join("run/transcripts.jsonl").exists(), "no dialogue started");

    let (keyless, _) = run("openai:gpt-4o-mini");
    let stderr = String::from_utf8_lossy(&keyless.stderr);
    assert_eq!(keyless.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("OPENAI_API_KEY"), "{stderr}");
}

#[tokio::test]
async fn repeated_failures_stop_the_run_and_resume_continues() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use vsim::backend::scripted::ScriptedModel;
    use vsim::backend::{BackendError, SharedModel};
    use vsim::experiment::{run_experiment_with, Population, RoleModel, RunConfig, RunOptions};

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tiny.toml");
    std::fs::write(&path, tiny_toml()).unwrap();
    let scenario = Arc::new(vsim::scenario::load_scenario(&path).unwrap());
    let population = Population::load(root().join("personas").to_str().unwrap()).unwrap();
    let healthy = Arc::new(AtomicBool::new(false));
    let h = healthy.clone();
    let model: SharedModel = Arc::new(ScriptedModel::from_fn(move |_| {
        if h.load(Ordering::SeqCst) {
            Ok(r#"{"responses": [{"text": "1", "probability": 1.0}]}"#.into())
        } else {
            Err(BackendError::Config("the server is down".into()))
        }
    }));
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: model.clone() }).collect();
    let config = |resume| RunConfig {
        n: Some(30),
        seed: 1,
        concurrency: 1,
        out_dir: tmp.path().join("run"),
        resume,
        progress: Default::default(),
    };
    let options = RunOptions { max_consecutive_failures: 4, ..RunOptions::default() };
    let s =
        run_experiment_with(scenario.clone(), &population, &models, &config(false), &options).await.unwrap();
    let Some(vsim::experiment::StopCause::ConsecutiveFailures { reason: halted }) = s.stop else {
        panic!("the run stops: {:?}", s.stop)
    };
    assert!(
        halted.contains("4 dialogues in a row failed") && halted.contains("the server is down"),
        "{halted}"
    );
    assert_eq!((s.ran, s.not_started), (4, 26));

    healthy.store(true, Ordering::SeqCst);
    let s = run_experiment_with(scenario, &population, &models, &config(true), &options).await.unwrap();
    assert!(s.stop.is_none());
    assert_eq!((s.ran, s.counts.failed, s.counts.dialogues), (30, 0, 30));
}

#[test]
fn a_template_that_fails_to_render_names_its_file_and_line() {
    let f = fixture(0);
    let text = tiny_toml().replace(
        "system = \"You are {{ persona.name }}.\"",
        "system = \"\"\"\nYou are {{ persona.name }}.\nYou live in {{ persona.profil }}.\n\"\"\"",
    );
    assert!(text.contains("persona.profil"));
    std::fs::write(&f.scenario, &text).unwrap();
    let line = text.lines().position(|l| l.contains("persona.profil")).unwrap() + 1;
    let out = f.run(&f.tmp.path().join("run"), 1, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let at = format!("{}:{line}:", f.scenario.display());
    assert!(stderr.contains(&at), "expected `{at}` in: {stderr}");
    assert!(stderr.contains("profil"), "{stderr}");
}

#[test]
fn a_failing_batch_run_says_why_in_plain_lines_and_in_run_log() {
    let f = fixture_with(MockConfig { error_rate: 1.0, seed: 1, ..MockConfig::default() });
    let out_dir = f.tmp.path().join("run");
    let out = f.command(&out_dir, 14, &["--concurrency", "1", "--max-retries", "0"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // stderr is not a terminal here: plain lines, one per failed dialogue with its cause.
    assert!(!stderr.contains('\u{1b}'), "no escape codes: {stderr}");
    for i in 0..10 {
        assert!(stderr.contains(&format!("d{i:05} failed: ")), "d{i:05} in: {stderr}");
    }
    assert!(stderr.contains("HTTP 429") || stderr.contains("HTTP 500"), "{stderr}");
    assert!(stderr.contains("stopping: 10 dialogues in a row failed"), "{stderr}");
    assert!(stdout.contains("4 not started"), "{stdout}");
    let log = std::fs::read_to_string(out_dir.join("run.log")).unwrap();
    assert!(
        log.contains("d00000 failed: ") && log.contains("stopping: 10 dialogues in a row failed"),
        "{log}"
    );
    assert!(log.contains("14 dialogues") || log.contains("10 dialogues ("), "the summary is logged: {log}");
}

#[test]
fn evaluation_without_the_default_embedder_reports_everything_else() {
    let f = fixture(0);
    let out = f.tmp.path().join("run");
    assert!(f.run(&out, 3, &[]).status().unwrap().success());
    // An empty model cache and no pip: the offline embedding model cannot be had.
    let offline = |cmd: &mut Command| {
        cmd.env("VSIM_CACHE_DIR", f.tmp.path().join("empty-cache"))
            .env("VSIM_PYTHON", "/nonexistent/python3");
    };
    let mut eval = Command::new(env!("CARGO_BIN_EXE_vsim"));
    offline(&mut eval);
    let done = eval.arg("eval").arg(&out).args(["--bootstrap", "20"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("vsim model fetch embed") && stderr.contains("--embedder none"), "{stderr}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["semantic"]["computed"], false);
    let reason = metrics["semantic"]["reason"].as_str().unwrap();
    assert!(reason.contains("vsim model fetch embed"), "{reason}");
    assert!(out.join("report.md").exists() && out.join("report.html").exists());

    let mut stats = Command::new(env!("CARGO_BIN_EXE_vsim"));
    offline(&mut stats);
    let lines = f.tmp.path().join("lines.txt");
    std::fs::write(&lines, "a first line\na second line\n").unwrap();
    let text = stats.args(["stats", "text"]).arg(&lines).output().unwrap();
    assert_eq!(text.status.code(), Some(0), "{}", String::from_utf8_lossy(&text.stderr));
    assert!(String::from_utf8_lossy(&text.stderr).contains("vsim model fetch embed"));
}

#[test]
fn retries_are_counted_by_cause_not_logged_one_by_one() {
    let f = fixture_with(MockConfig {
        error_rate: 0.3,
        retry_after: Duration::from_millis(5),
        seed: 4,
        ..MockConfig::default()
    });
    let out_dir = f.tmp.path().join("run");
    let out =
        f.command(&out_dir, 8, &["--concurrency", "2", "--quiet", "--max-retries", "10"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings = stderr.lines().filter(|l| l.contains("retrying after")).count();
    assert!(warnings <= 2, "one warning per cause (429, 500), got {warnings}: {stderr}");
    let summary = stderr.lines().find(|l| l.starts_with("retries after transient backend errors:")).unwrap();
    let counted: u64 =
        summary.split('×').skip(1).map(|x| x.split(',').next().unwrap().trim().parse::<u64>().unwrap()).sum();
    assert!(counted > warnings as u64, "{summary}");
    assert!(std::fs::read_to_string(out_dir.join("run.log")).unwrap().contains(summary));
}

/// A run of more dialogues than people says so once, and a run stopped early counts its
/// dialogues against those it is to have ("0 of 16").
#[test]
fn the_population_note_is_said_once_and_a_short_run_counts_of_its_total() {
    let f = fixture(0);
    let out_dir = f.tmp.path().join("run");
    let out = f.run(&out_dir, 16, &["--max-tokens-total", "1"]).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "a budget stop is not a failure: {stdout}\n{stderr}");
    let both = format!("{stdout}{stderr}");
    assert_eq!(both.matches("more than the population").count(), 1, "{both}");
    assert!(stdout.contains(" of 16 dialogues"), "{stdout}");
}

/// Ctrl-C: the run stops, says so once with how to continue, and exits 130.
#[test]
#[cfg(unix)]
fn ctrl_c_is_reported_once() {
    let f = fixture(300);
    let out_dir = f.tmp.path().join("run");
    let child = f
        .command(&out_dir, 4, &["--concurrency", "1", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the run to start (its manifest is written), then interrupt it.
    for _ in 0..200 {
        if out_dir.join("config.json").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sends SIGINT to the child this test spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert_eq!(stderr.matches("interrupted").count(), 1, "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(stdout.contains(" of 4 dialogues"), "{stdout}");
    assert!(std::fs::read_to_string(out_dir.join("run.log")).unwrap().contains("interrupted"));
}
