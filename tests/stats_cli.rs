//! `vsim stats l1|wasserstein|tv|js|text`: known values, JSON output, help examples, and
//! bad input (exit code 2 with a clear message).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;
use serde_json::Value;

fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn vsim() -> Command {
    Command::cargo_bin("vsim").unwrap()
}

fn json(args: &[&str]) -> Value {
    let out = vsim().args(args).arg("--json").assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

fn close(v: &Value, x: f64) -> bool {
    v.as_f64().is_some_and(|y| (x - y).abs() < 1e-12)
}

struct Files {
    _tmp: tempfile::TempDir,
    a: String,
    b: String,
    b3: String,
    la: String,
    lb: String,
}

fn files() -> Files {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let s = |p: PathBuf| p.to_str().unwrap().to_string();
    Files {
        a: s(file(d, "a.txt", "0\n0.5\n1\n")),
        b: s(file(d, "b.txt", "# human\n0\n1\n\n1\n2\n")),
        b3: s(file(d, "b3.txt", "0\n1\n1\n")),
        la: s(file(d, "la.txt", "yes\nyes\nno\n")),
        lb: s(file(d, "lb.txt", "yes\n no \n\nno\nno\n")),
        _tmp: tmp,
    }
}

#[test]
fn l1_variants() {
    let f = files();
    // Default: 21-edge density L1 on [0, 2]: (1/3 at 0, 0.5, 1) vs (1/4 at 0, 1/2 at 1, 1/4 at 2).
    let v = json(&["stats", "l1", &f.a, &f.b]);
    assert!(close(&v["statistic"], 5.0 / 6.0), "{v}");
    assert_eq!(v["variant"], "density_pfg");
    assert_eq!(v["bins"]["n"], 20);
    assert_eq!((v["n1"].as_u64(), v["n2"].as_u64()), (Some(3), Some(4)));
    // Two bins [0, 1), [1, 2]: (2/3, 1/3) vs (1/4, 3/4).
    let v = json(&["stats", "l1", &f.a, &f.b, "--bins", "0,2,2"]);
    assert!(close(&v["statistic"], 5.0 / 6.0), "{v}");
    assert_eq!(v["variant"], "histogram");
    // Paired: |0-0|, |0.5-1|, |1-1| -> 1/6.
    let v = json(&["stats", "l1", &f.a, &f.b3, "--paired"]);
    assert!(close(&v["statistic"], 1.0 / 6.0), "{v}");
    assert_eq!(v["bins"], Value::Null);
    vsim().args(["stats", "l1", &f.a, &f.b]).assert().success().stdout(contains("L1 = 0.833333"));
}

#[test]
fn wasserstein_tv_js() {
    let f = files();
    let v = json(&["stats", "wasserstein", &f.a, &f.b]);
    assert!(close(&v["statistic"], 0.5), "{v}");
    // Labels (no: 1/3, yes: 2/3) vs (no: 3/4, yes: 1/4); labels are trimmed.
    let v = json(&["stats", "tv", &f.la, &f.lb]);
    assert!(close(&v["statistic"], 5.0 / 12.0), "{v}");
    assert_eq!(v["labels"], serde_json::json!(["no", "yes"]));
    assert_eq!(v["counts_a"], serde_json::json!([1.0, 2.0]));
    assert_eq!(v["counts_b"], serde_json::json!([3.0, 1.0]));
    let v = json(&["stats", "js", &f.la, &f.lb]);
    // scipy.spatial.distance.jensenshannon([1/3, 2/3], [3/4, 1/4], base=2) ** 2
    assert!((v["statistic"].as_f64().unwrap() - 0.130_197_848_929_158_87).abs() < 1e-12, "{v}");
    vsim()
        .args(["stats", "js", &f.la, &f.la])
        .assert()
        .success()
        .stdout(contains("JS divergence (bits) = 0.000000"));
}

#[test]
fn text_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let p = file(tmp.path(), "u.txt", "hello there\n\nhello again\n");
    let v = json(&["stats", "text", p.to_str().unwrap(), "--embedder", "none"]);
    assert_eq!(v["utterances"], 2);
    assert!(close(&v["distinct_1"], 0.75), "{v}");
    assert!(close(&v["distinct_2"], 1.0), "{v}");
    assert_eq!(v["distinct_3"], Value::Null, "no line has three tokens");
    // Two sentences (each line ends one), 4 words, 7 syllables (hel-lo there hel-lo a-gain).
    let fk = 0.39 * (4.0 / 2.0) + 11.8 * (7.0 / 4.0) - 15.59;
    assert!((v["flesch_kincaid_grade"].as_f64().unwrap() - fk).abs() < 1e-9, "{v}");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6);
    assert_eq!(v["semantic_diversity"], Value::Null, "skipped with --embedder none");
    vsim()
        .args(["stats", "text", p.to_str().unwrap(), "--embedder", "none"])
        .assert()
        .success()
        .stdout(contains("Distinct-2 (pooled)   1.0000"));
}

#[test]
fn text_semantic_diversity_with_the_offline_embedder() {
    let tmp = tempfile::tempdir().unwrap();
    let same = file(tmp.path(), "same.txt", "I would like to donate.\nI would like to donate.\n");
    let v = json(&["stats", "text", same.to_str().unwrap()]);
    assert!(v["semantic_diversity"].as_f64().unwrap().abs() < 1e-6, "identical utterances: {v}");
    let varied = file(tmp.path(), "varied.txt", "I would like to donate.\nThe weather is cold in Oslo.\n");
    let v = json(&["stats", "text", varied.to_str().unwrap()]);
    assert!(v["semantic_diversity"].as_f64().unwrap() > 0.3, "{v}");
}

#[test]
fn help_shows_examples() {
    for (cmd, example) in [
        ("l1", "vsim stats l1 simulated.txt human.txt --paired"),
        ("wasserstein", "vsim stats wasserstein simulated.txt human.txt"),
        ("tv", "vsim stats tv simulated_votes.txt"),
        ("js", "vsim stats js simulated_votes.txt"),
        ("text", "vsim stats text utterances.txt --json"),
    ] {
        vsim()
            .args(["stats", cmd, "--help"])
            .assert()
            .success()
            .stdout(contains("Example"))
            .stdout(contains(example));
    }
    vsim().args(["stats", "l1", "--help"]).assert().success().stdout(contains("numpy.linspace(0, 2, 21)"));
}

#[test]
fn bad_input_exits_with_code_2() {
    let f = files();
    let tmp = tempfile::tempdir().unwrap();
    let empty = file(tmp.path(), "empty.txt", "\n# nothing\n");
    let words = file(tmp.path(), "words.txt", "1\ntwo\n");
    // Utterance files have no comments: only blank lines are skipped.
    let blank = file(tmp.path(), "blank.txt", "\n  \n");
    let empty = empty.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["stats", "l1", &f.a, words.to_str().unwrap()], "expected a finite number"),
        (vec!["stats", "l1", &f.a, empty], "holds no numbers"),
        (vec!["stats", "l1", &f.a, &f.b, "--paired"], "differ in length"),
        (vec!["stats", "l1", &f.a, &f.b, "--bins", "0,2"], "invalid bins"),
        (vec!["stats", "l1", &f.a, &f.b, "--bins", "2,0,5"], "invalid bins"),
        (vec!["stats", "l1", &f.a, &f.b, "--bins", "0,2,0"], "at least one bin"),
        (vec!["stats", "wasserstein", &f.a, "/no/such/file"], "/no/such/file"),
        (vec!["stats", "tv", &f.la, empty], "holds no labels"),
        (vec!["stats", "js", "/no/such/labels", &f.la], "cannot read /no/such/labels"),
        (vec!["stats", "text", blank.to_str().unwrap()], "holds no utterances"),
        (vec!["stats", "text", "/no/such/text"], "cannot read /no/such/text"),
    ];
    for (args, msg) in cases {
        vsim().args(&args).assert().code(2).stderr(contains(msg));
    }
    // Values outside [0, 2] only: nothing to bin.
    let far = file(tmp.path(), "far.txt", "5\n7\n");
    vsim()
        .args(["stats", "l1", &f.a, far.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("histogram range"));
}

/// Every distance of the library's registry is a `vsim stats` command (or a variant of
/// one) that computes what the registry does.
#[test]
fn every_registry_distance_is_a_command() {
    use vsim::stats::distances::{Compute, DISTANCES};
    let f = files();
    let (a, b3) = ([0.0, 0.5, 1.0], [0.0, 1.0, 1.0]);
    for d in DISTANCES {
        let mut args = vec!["stats", d.command];
        let expected = match d.compute {
            Compute::Distributions(_) => {
                args.extend([f.la.as_str(), f.lb.as_str()]);
                // yes/no counts of la.txt and lb.txt.
                d.statistic(&[2.0, 1.0], &[1.0, 3.0], None).unwrap()
            }
            Compute::Paired(_) => {
                args.extend([f.a.as_str(), f.b3.as_str(), "--paired"]);
                d.statistic(&a, &b3, None).unwrap()
            }
            Compute::Binned(_) => {
                args.extend([f.a.as_str(), f.b3.as_str(), "--bins", "0,1,4"]);
                let bins = vsim::stats::Bins { lo: 0.0, hi: 1.0, n: 4 };
                d.statistic(&a, &b3, Some(&bins)).unwrap()
            }
            Compute::Samples(_) | Compute::Test(_) => {
                args.extend([f.a.as_str(), f.b3.as_str()]);
                d.statistic(&a, &b3, None).unwrap()
            }
        };
        let v = json(&args);
        assert!((v["statistic"].as_f64().unwrap() - expected).abs() < 1e-12, "{}: {v}", d.key);
    }
}
