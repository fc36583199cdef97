//! `vsim sample` draws N responses under Table 1's call budget, and `vsim stats text` reads
//! the `--json` file it writes back, one row per method.

use vsim::mock::{MockConfig, MockServer};
use vsim::vs::{Method, SampleSet};

fn vsim(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vsim")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn n_responses_take_the_paper_call_counts_and_stats_text_reads_them() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start(MockConfig { seed: 4, ..MockConfig::default() })).unwrap();
    let model = format!("openai:mock@{}", server.base_url());
    let base = ["--model", model.as_str(), "--no-cache", "--embedder", "none"];

    // One method: 12 responses with k = 5 take ceil(12 / 5) = 3 calls.
    let (code, stdout, stderr) = vsim(
        &[
            &["sample", "Tell me a joke", "--method", "vs-standard", "--k", "5", "--n", "12", "--json"],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    let set = SampleSet::from_json(&stdout).unwrap();
    assert_eq!(set.n, 12);
    assert_eq!((set.runs[0].calls.len(), set.runs[0].candidates.len()), (3, 12));
    assert!(set.runs[0].choice.is_some());

    // Several methods: N calls for direct and multi-turn, ceil(N/k) for list methods.
    let (code, stdout, stderr) = vsim(
        &[
            &[
                "sample",
                "Tell me a joke",
                "--methods",
                "direct,multi-turn,sequence,vs-multi",
                "--k",
                "3",
                "--n",
                "6",
                "--json",
            ],
            &base[..],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    let set = SampleSet::from_json(&stdout).unwrap();
    let calls: Vec<(Method, usize, usize)> =
        set.runs.iter().map(|r| (r.method, r.calls.len(), r.candidates.len())).collect();
    assert_eq!(
        calls,
        [
            (Method::Direct, 6, 6),
            (Method::MultiTurn, 6, 6),
            (Method::Sequence, 2, 6),
            (Method::VsMulti, 2, 6)
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jokes.json");
    std::fs::write(&file, &stdout).unwrap();
    let (code, stdout, stderr) =
        vsim(&["stats", "text", file.to_str().unwrap(), "--embedder", "none", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2]["method"], "sequence");
    assert_eq!(rows[2]["utterances"], 6);
    assert!(rows[2]["distinct_1"].as_f64().is_some());

    // A method without probabilities chooses uniformly unless told otherwise.
    let (code, stdout, stderr) =
        vsim(&[&["sample", "Tell me a joke", "--method", "sequence", "--k", "3"], &base[..]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("by uniform"), "{stdout}");
    let (code, stdout, stderr) = vsim(&[&["sample", "Tell me a joke", "--k", "3"], &base[..]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("by weighted"), "{stdout}");

    // The side-by-side table.
    let (code, stdout, stderr) = vsim(
        &[&["sample", "Tell me a joke", "--methods", "direct,vs-standard", "--n", "4"], &base[..]].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Distinct-1") && stdout.contains("vs-standard"), "{stdout}");
}

/// The settings both front ends take are checked in one place, and an error names the
/// setting as the user wrote it.
#[test]
fn sample_settings_name_the_setting_that_is_wrong() {
    use vsim::vs::sample_set::SampleSettings;
    let ok = SampleSettings {
        method: "vs-standard",
        k: "5",
        k_max: 10,
        selection: "weighted",
        min_prob: None,
        min_keep: 1,
        tau: None,
        n: None,
    };
    let (method, k, rule) = ok.check().unwrap();
    assert_eq!(method, Method::VsStandard);
    assert_eq!(k, vsim::vs::KSpec::Fixed { k: 5 });
    assert_eq!(rule.min_keep, 1);
    for (bad, setting) in [
        (SampleSettings { method: "telepathy", ..ok }, "method"),
        (SampleSettings { k: "0", ..ok }, "k"),
        (SampleSettings { k: "many", ..ok }, "k"),
        (SampleSettings { k_max: 0, ..ok }, "k_max"),
        (SampleSettings { selection: "vibes", ..ok }, "selection"),
        (SampleSettings { tau: Some(1.5), ..ok }, "tau"),
        (SampleSettings { min_prob: Some(-0.1), ..ok }, "min_prob"),
        (SampleSettings { min_keep: 0, ..ok }, "min_keep"),
        (SampleSettings { n: Some(0), ..ok }, "n"),
    ] {
        assert_eq!(bad.check().unwrap_err().setting, setting, "{bad:?}");
    }
}
