//! What vsim never does, whatever it is pointed at, sent or answered: write into a folder
//! that is not a run, write through a link out of its folder, leave `outcomes.csv` behind
//! the transcript when it is terminated, die because the reader of its output went away, or
//! pass a model's or a server's control characters to the terminal or the log.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use vsim::mock::{MockConfig, MockServer};

mod common;

struct Fixture {
    _rt: tokio::runtime::Runtime,
    server: MockServer,
    tmp: tempfile::TempDir,
    scenario: PathBuf,
}

/// The tiny two-turn scenario and a mock server answering after `latency_ms`.
fn fixture(latency_ms: u64) -> Fixture {
    let config = MockConfig { latency: Duration::from_millis(latency_ms), seed: 3, ..MockConfig::default() };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start(config)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    std::fs::write(&scenario, common::tiny_toml(2)).unwrap();
    Fixture { _rt: rt, server, tmp, scenario }
}

impl Fixture {
    /// `vsim run` of the scenario against the mock into `out`: `n` dialogues, one at a time.
    fn run(&self, out: &Path, n: usize, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vsim"));
        cmd.arg("run")
            .arg(&self.scenario)
            .args(["--n", &n.to_string(), "--no-cache", "--seed", "5", "--concurrency", "1"])
            .arg("--model")
            .arg(format!("openai:mock@{}", self.server.base_url()))
            .arg("--out")
            .arg(out)
            .args(extra);
        cmd
    }
}

/// Dialogues with an `end` event in the transcript.
fn ends(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("transcripts.jsonl"))
        .map(|t| t.lines().filter(|l| l.contains(r#""event":"end""#)).count())
        .unwrap_or(0)
}

/// Rows of `outcomes.csv` with status `completed`.
fn completed_rows(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("outcomes.csv"))
        .map(|t| t.lines().filter(|l| l.contains(",completed,")).count())
        .unwrap_or(0)
}

#[test]
fn a_folder_that_is_not_a_run_is_refused_and_left_as_it_was() {
    let f = fixture(0);
    // A project folder with its own config.json: `--out .` there must not replace it.
    let project = f.tmp.path().join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("config.json"), r#"{"name": "my project"}"#).unwrap();
    std::fs::write(project.join("outcomes.csv"), "mine").unwrap();
    let out = f.run(&project, 1, &["--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&project.display().to_string()) && stderr.contains("not a vsim run folder"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(project.join("config.json")).unwrap(), r#"{"name": "my project"}"#);
    assert_eq!(std::fs::read_to_string(project.join("outcomes.csv")).unwrap(), "mine");
    let names: Vec<_> = std::fs::read_dir(&project).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "nothing was added: {names:?}");

    // `--resume` into a folder without a manifest is refused too, before any dialogue runs.
    let bare = f.tmp.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    std::fs::write(bare.join("transcripts.jsonl"), "").unwrap();
    std::fs::write(bare.join("notes.txt"), "x").unwrap();
    let out = f.run(&bare, 1, &["--quiet", "--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(bare.join("transcripts.jsonl")).unwrap(), "");

    // An `--out` that is a file.
    let file = f.tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = f.run(&file, 1, &["--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()) && stderr.contains("not a folder"), "{stderr}");

    // An empty folder, and then the run folder itself, are fine.
    let empty = f.tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(f.run(&empty, 1, &["--quiet"]).output().unwrap().status.success());
    assert!(f.run(&empty, 1, &["--quiet", "--resume"]).output().unwrap().status.success());
}

#[cfg(unix)]
#[test]
fn no_file_is_written_through_a_link_out_of_the_run_folder() {
    let f = fixture(0);
    let run = f.tmp.path().join("run");
    assert!(f.run(&run, 2, &["--quiet"]).output().unwrap().status.success());
    let outside = f.tmp.path().join("precious.txt");
    for name in ["outcomes.csv", "transcripts.jsonl", "run.log", ".vsim.lock", "config.json"] {
        std::fs::write(&outside, "precious").unwrap();
        let file = run.join(name);
        let kept = f.tmp.path().join("kept");
        std::fs::rename(&file, &kept).unwrap();
        std::os::unix::fs::symlink(&outside, &file).unwrap();
        let out = f.run(&run, 3, &["--quiet", "--resume"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let named = stderr.contains(&format!("{name}: is a symbolic link"))
            || stderr.contains(&format!("its {name} is a link"));
        assert!(named, "{name}: {stderr}");
        assert!(!stderr.contains("caused by"), "the reason is said once: {stderr}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious", "{name} was written through");
        std::fs::remove_file(&file).unwrap();
        std::fs::rename(&kept, &file).unwrap();
    }
    assert_eq!(ends(&run), 2, "no dialogue ran while a link was there");

    // `vsim eval` does not write its files through links either.
    for name in ["metrics.json", "report.md", "report.html"] {
        std::fs::write(&outside, "precious").unwrap();
        let file = run.join(name);
        let _ = std::fs::remove_file(&file);
        std::os::unix::fs::symlink(&outside, &file).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_vsim"))
            .arg("eval")
            .arg(&run)
            .args(["--embedder", "none", "--bootstrap", "20"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(&format!("{name}: is a symbolic link")), "{name}: {stderr}");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious", "{name} was written through");
        std::fs::remove_file(&file).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn sigterm_keeps_finished_work_and_outcomes_agree_with_the_transcript() {
    let f = fixture(30);
    let run = f.tmp.path().join("run");
    let n = 40;
    for round in 0..2 {
        let extra: &[&str] = if round == 0 { &["--quiet"] } else { &["--quiet", "--resume"] };
        let child = f.run(&run, n, extra).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let before = ends(&run);
        while ends(&run) < before + 2 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: a plain kill(2) of the child this test started.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(143), "round {round}: {stderr}");
        let done = ends(&run);
        assert!(done > before && done < n, "round {round}: {done} of {n}");
        assert_eq!(completed_rows(&run), done, "round {round}: outcomes.csv agrees with the transcript");
        assert!(stdout.contains("completed") && stdout.contains("already done"), "the summary: {stdout}");
        let log = std::fs::read_to_string(run.join("run.log")).unwrap();
        assert!(log.matches("interrupted").count() > round, "round {round}: {log}");
        assert!(log.contains("already done"), "the summary is logged: {log}");
    }
    assert!(f.run(&run, n, &["--quiet", "--resume"]).output().unwrap().status.success());
    assert_eq!((ends(&run), completed_rows(&run)), (n, n));
}

/// `vsim run … 2>&1 | head -2`: the reader goes away, the run goes on and finishes.
#[test]
fn a_reader_that_goes_away_does_not_stop_the_run() {
    let f = fixture(20);
    let run = f.tmp.path().join("run");
    let n = 30;
    let mut child = f
        .run(&run, n, &[])
        .env("VSIM_PROGRESS_SECS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!((ends(&run), completed_rows(&run)), (n, n));
}

/// A server whose replies and errors carry terminal escapes: a window title, a clipboard
/// write (OSC 52), a clear screen. Answers `/v1/chat/completions` with `status` and `body`.
fn hostile_server(rt: &tokio::runtime::Runtime, status: u16, body: String) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let body = body.clone();
            async move {
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

const ESCAPES: &str = "\u{1b}]0;pwned\u{7}\u{1b}]52;c;Zm9v\u{7}\u{1b}[2J\u{9b}";

#[test]
fn model_and_server_text_reaches_the_terminal_and_the_log_escaped() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let list = serde_json::json!({"responses": [
        {"text": format!("Sure{ESCAPES}!"), "probability": 0.7},
        {"text": "No.", "probability": 0.3}
    ]});
    let reply = serde_json::json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": list.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1}
    });
    let url = hostile_server(&rt, 200, reply.to_string());
    let out = Command::new(env!("CARGO_BIN_EXE_vsim"))
        .args(["sample", "Say yes", "--k", "2", "--no-cache", "--model"])
        .arg(format!("openai:m@{url}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{9b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    assert!(stdout.contains("Sure\\x1b]0;pwned\\x07"), "shown, escaped: {stdout}");

    // A server's error body in a failure line, on stderr and in run.log.
    let url = hostile_server(&rt, 400, format!("{{\"error\": \"bad{ESCAPES}\"}}"));
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("tiny.toml");
    std::fs::write(&scenario, common::tiny_toml(2)).unwrap();
    let dir = tmp.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_vsim"))
        .arg("run")
        .arg(&scenario)
        .args(["--n", "1", "--no-cache", "--max-retries", "0", "--model"])
        .arg(format!("openai:m@{url}"))
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
    for (what, text) in [("stderr", &*stderr), ("run.log", &*log)] {
        assert!(text.contains("d00000 failed"), "{what}: {text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\u{9b}'), "{what}: {text:?}");
    }
}

/// Refusals before any work: a count beyond its bound is checked before memory is taken for
/// it, and a scenario path that is not UTF-8 is named, not a panic. Both exit with code 2.
#[test]
fn bad_counts_and_paths_are_refused_before_any_work() {
    let f = fixture(0);
    let out = f.tmp.path().join("run");
    let huge = f.run(&out, 10_000_000_000, &["--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&huge.stderr);
    assert_eq!(huge.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("10000000000 dialogues") && stderr.contains("limit"), "{stderr}");
    assert!(!out.exists(), "nothing was written");
    // The same bound for branches and survey respondents.
    let vsim = || Command::new(env!("CARGO_BIN_EXE_vsim"));
    let branch = vsim()
        .arg("branch")
        .arg(&out)
        .args(["--dialogue", "d00000", "--turn", "0", "--candidate", "0", "--n", "10000000000"])
        .output()
        .unwrap();
    assert_eq!(branch.status.code(), Some(2), "{}", String::from_utf8_lossy(&branch.stderr));
    assert!(String::from_utf8_lossy(&branch.stderr).contains("--n 10000000000"));
    let wave = common::root().join("../shared/data/opinionqa/W26");
    if wave.is_dir() {
        let survey = vsim()
            .arg("run")
            .arg(common::root().join("scenarios/survey_opinionqa_w26.toml"))
            .arg(format!("--population=opinionqa:{}", wave.display()))
            .args(["--n", "10000000000", "--model", "openai:m@http://127.0.0.1:9", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&survey.stderr);
        assert_eq!(survey.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--n 10000000000"), "{stderr}");
    }

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = f.tmp.path().join(std::ffi::OsStr::from_bytes(b"sc\xffenario.toml"));
        std::fs::copy(&f.scenario, &odd).unwrap();
        let run = Command::new(env!("CARGO_BIN_EXE_vsim"))
            .arg("run")
            .arg(&odd)
            .args(["--n", "1", "--no-cache", "--quiet", "--model"])
            .arg(format!("openai:mock@{}", f.server.base_url()))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{stderr}");
        assert!(!stderr.contains("panicked") && stderr.contains("not valid UTF-8"), "{stderr}");
    }
}

/// `--resume` on a transcript with a line that is not an event is bad input (exit code 2,
/// naming the file and line), as `vsim eval` says of it.
#[test]
fn resuming_a_damaged_transcript_is_bad_input() {
    let f = fixture(0);
    let run = f.tmp.path().join("run");
    assert!(f.run(&run, 2, &["--quiet"]).output().unwrap().status.success());
    let transcript = run.join("transcripts.jsonl");
    let text = std::fs::read_to_string(&transcript).unwrap();
    std::fs::write(&transcript, format!("not an event\n{text}")).unwrap();
    let out = f.run(&run, 2, &["--quiet", "--resume"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("transcripts.jsonl:1:"), "{stderr}");
}

/// An output that is a file, for every command that writes a folder: exit code 2, naming it
/// (it was 'File exists (os error 17)', exit 1), and the file left as it was.
#[test]
fn an_output_that_is_a_file_is_bad_input_for_every_writer() {
    let f = fixture(0);
    let run = f.tmp.path().join("run");
    assert!(f.run(&run, 1, &["--quiet"]).output().unwrap().status.success());
    let eval = Command::new(env!("CARGO_BIN_EXE_vsim"))
        .arg("eval")
        .arg(&run)
        .args(["--embedder", "none", "--bootstrap", "20"])
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let file = f.tmp.path().join("file");
    std::fs::write(&file, "mine").unwrap();
    let run_s = run.to_str().unwrap();
    let file_s = file.to_str().unwrap();
    for args in [
        vec!["merge", file_s, run_s],
        vec!["report", run_s, "--out", file_s],
        vec!["export", "convokit", run_s, file_s],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_vsim")).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(file_s) && stderr.contains("not a folder"), "{args:?}: {stderr}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    }
}

/// Ctrl-C during a sweep's evaluation stops it (exit 130) instead of being ignored until
/// every cell is evaluated; the cells' runs are kept.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_sweep_while_it_evaluates() {
    let f = fixture(0);
    let sweep = f.tmp.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "scenario = \"tiny.toml\"\nrole = \"persuadee\"\nn = 4\nmodel = \"openai:mock@{}\"\n[grid]\nk = [2, 3, 4]\n",
            f.server.base_url()
        ),
    )
    .unwrap();
    let out = f.tmp.path().join("sweep-out");
    // A bootstrap this large makes each cell's evaluation take a while.
    let child = Command::new(env!("CARGO_BIN_EXE_vsim"))
        .arg("sweep")
        .arg(&sweep)
        .arg("--out")
        .arg(&out)
        .args(["--embedder", "none", "--bootstrap", "200000", "--quiet", "--no-cache"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while !out.join("000-k2/metrics.json").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: a plain kill(2) of the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted during the evaluation"), "{stderr}");
    for cell in ["000-k2", "001-k3", "002-k4"] {
        assert_eq!(ends(&out.join(cell)), 4, "{cell}'s run is kept");
    }
}
