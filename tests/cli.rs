//! The command line's handling of bad input (exit code 2, a message that says what is
//! valid) and of `vsim parse` and `vsim stats ks` on good input.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;

fn vsim() -> Command {
    Command::cargo_bin("vsim").unwrap()
}

#[test]
fn unknown_method_lists_valid_ones() {
    vsim()
        .args(["sample", "hi", "--method", "vs-magic"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown method `vs-magic`"))
        .stderr(predicate::str::contains("vs-standard"));
}

#[test]
fn unknown_selection_lists_valid_ones() {
    vsim()
        .args(["sample", "hi", "--selection", "best"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("weighted").and(predicate::str::contains("argmax")));
}

#[test]
fn k_zero_and_tau_out_of_range_are_rejected() {
    vsim().args(["sample", "hi", "--k", "0"]).assert().code(2).stderr(predicate::str::contains("--k"));
    vsim().args(["sample", "hi", "--tau", "1.5"]).assert().code(2).stderr(predicate::str::contains("[0, 1]"));
    vsim().args(["sample", "hi", "--tau", "-0.1"]).assert().code(2);
    vsim().args(["parse", "--k", "0"]).assert().code(2);
}

#[test]
fn bad_model_spec_is_bad_input() {
    vsim()
        .args(["sample", "hi", "--model", "gpt-4"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid model spec"));
}

#[test]
fn parse_prints_normalised_candidates_as_json() {
    let reply = "Sure! Here you go:\n```json\n{\"responses\": [{\"text\": \"Hi\", \"probability\": \"60%\"}, {\"response\": \"Hello\", \"prob\": 20}]}\n```";
    let out = vsim().args(["parse", "--k", "2", "--json"]).write_stdin(reply).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = v["candidates"].as_array().unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0]["text"], "Hi");
    assert!((c[0]["probability"].as_f64().unwrap() - 0.75).abs() < 1e-12);
    assert!((c[0]["raw_probability"].as_f64().unwrap() - 0.6).abs() < 1e-12);
    assert_eq!(c[1]["text"], "Hello");
    assert!(c[0]["repairs"].as_array().is_some());
}

#[test]
fn parse_unrecoverable_reply_exits_non_zero_with_reason() {
    vsim()
        .args(["parse", "--json"])
        .write_stdin("")
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot be recovered"));
}

#[test]
fn stats_ks_reads_files_and_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, "0\n0.5\n1\n").unwrap();
    std::fs::write(&b, "# human\n1\n1.5\n2\n").unwrap();
    let out = vsim().args(["stats", "ks"]).arg(&a).arg(&b).arg("--json").output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // D = 2/3 (ECDFs differ most at 0.5); exact two-sided p = 0.6 (scipy.stats.ks_2samp).
    assert!((v["statistic"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert!((v["pvalue"].as_f64().unwrap() - 0.6).abs() < 1e-9, "{v}");

    std::fs::write(&b, "1\n2\nabc\n").unwrap();
    vsim().args(["stats", "ks"]).arg(&a).arg(&b).assert().code(2).stderr(
        predicate::str::contains("b.txt")
            .and(predicate::str::contains("3"))
            .and(predicate::str::contains("abc")),
    );
    vsim()
        .args(["stats", "ks"])
        .arg(&a)
        .arg(dir.path().join("missing.txt"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.txt"));
}

#[test]
fn help_shows_examples() {
    for cmd in [
        vec!["sample", "--help"],
        vec!["parse", "--help"],
        vec!["stats", "ks", "--help"],
        vec!["run", "--help"],
    ] {
        vsim().args(&cmd).assert().success().stdout(predicate::str::contains("Example"));
    }
}

/// A reader that stops early (`| head -1`) ends vsim quietly, as it does other Unix tools,
/// never with a panic (exit 101).
#[test]
#[cfg(unix)]
fn a_closed_stdout_is_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let data = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/persuasionforgood"));
    if !data.exists() {
        eprintln!("skipping: {} not found", data.display());
        return;
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
        .args(["data", "summary"])
        .arg(format!("pfg:{}", data.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before vsim writes its first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(13), "ended by SIGPIPE, as `head` expects: {stderr}");
}

/// `vsim sample` refuses what a scenario refuses: k for a one-reply method, τ and weighted
/// selection without probabilities; before any model is opened.
#[test]
fn sample_refuses_settings_the_method_cannot_use() {
    for (args, flag) in [
        (vec!["--method", "direct", "--k", "5"], "--k"),
        (vec!["--method", "cot", "--k", "5", "--tau", "0.1"], "--k"),
        (vec!["--method", "direct", "--tau", "0.1"], "--tau"),
        (vec!["--method", "multi-turn", "--min-prob", "0.1"], "--min-prob"),
        (vec!["--method", "sequence", "--selection", "weighted"], "--selection"),
    ] {
        vsim()
            .args(["sample", "hi", "--model", "local:/no/such/model.gguf"])
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!("error: {flag}:")));
    }
}

/// A `local:` model file that is not there is bad input (exit 2), as everywhere else.
#[test]
fn a_missing_local_model_file_is_bad_input() {
    vsim()
        .args(["sample", "hi", "--model", "local:/no/such/model.gguf"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such model file"));
}

/// Log lines carry no colour codes when stderr is not a terminal (batch logs, pipes).
#[test]
fn log_lines_are_plain_text_off_a_terminal() {
    let (_reserved, port) = common::refusing_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
        .env("RUST_LOG", "debug")
        .args(["sample", "hi", "--no-cache", "--model"])
        .arg(format!("openai:m@http://127.0.0.1:{port}/v1"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DEBUG"), "log lines are there: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no escape codes: {stderr}");
}

/// `pfg:~/DIR` is read from the home directory, as the help's example writes it.
#[test]
fn a_tilde_in_a_data_spec_is_the_home_directory() {
    let data = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/persuasionforgood"));
    if !data.exists() {
        eprintln!("skipping: {} not found", data.display());
        return;
    }
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(std::path::absolute(data).unwrap(), home.path().join("pfg")).unwrap();
    vsim()
        .env("HOME", home.path())
        .args(["data", "summary", "pfg:~/pfg"])
        .assert()
        .success()
        .stdout(predicate::str::contains("participants:"));
}

/// `data fetch --help` shows where each dataset comes from; a download that fails says what
/// to do by hand for that dataset and leaves no empty folder behind.
#[test]
fn a_failed_fetch_says_what_to_do_and_leaves_nothing() {
    vsim()
        .args(["data", "fetch", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(vsim::data::fetch::PFG_CORPUS_URL))
        .stdout(predicate::str::contains("info.csv"))
        .stdout(predicate::str::contains("raw.githubusercontent.com/tatsu-lab/opinions_qa"));
    let (_reserved, port) = common::refusing_port();
    let url = format!("http://127.0.0.1:{port}/data");
    let tmp = tempfile::tempdir().unwrap();
    for (dataset, hint, wrong) in
        [("opinionqa", "opinionqa:DIR", "pfg:DIR"), ("persuasionforgood", "pfg:DIR", "opinionqa:DIR")]
    {
        let dir = tmp.path().join("data").join("nested").join(dataset);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
            .args(["data", "fetch", dataset, "--url", &url, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(hint) && !stderr.contains(wrong), "{dataset}: {stderr}");
        assert!(stderr.to_lowercase().contains("connection refused"), "{stderr}");
        assert!(!tmp.path().join("data").exists(), "{dataset}: an empty folder was left");
    }
}

/// A server that drops the connection mid-handshake (here: plain HTTP where TLS was asked
/// for) is an error with its cause, never a process killed by SIGPIPE without a word.
#[test]
fn a_connection_the_server_drops_is_an_error_with_its_cause() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
        .args(["sample", "hi", "--no-cache", "--model"])
        .arg(format!("openai:m@https://127.0.0.1:{port}/v1"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{:?}: {stderr}", out.status);
    assert!(stderr.contains(&format!("cannot reach https://127.0.0.1:{port}/v1/models: ")), "{stderr}");
    assert!(stderr.contains("client error (Connect): "), "the cause follows: {stderr}");
    assert!(stderr.contains("TLS failed"), "{stderr}");
}

/// A refused role override names the flag it came from; the library's own message names
/// none.
#[test]
fn a_refused_role_override_names_its_flag() {
    let tmp = tempfile::tempdir().unwrap();
    for (flag, value, expected) in [
        ("--role-k", "persuader=3", "--role-k: role `persuader` after setting its k"),
        (
            "--role-method",
            "nobody=direct",
            "--role-method: unknown role `nobody`; roles: persuader, persuadee",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["run", "scenarios/persuasion_for_good.toml", flag, value, "--n", "1", "--out"])
            .arg(tmp.path().join("run"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}
