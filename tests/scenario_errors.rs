//! Broken scenario and persona files: each gives a clear error naming the file and line,
//! exit code 2 from `vsim run`, and no panic.

use std::path::Path;

use assert_cmd::Command;

const GOOD: &str = r#"name = "t"
[[roles]]
id = "a"
system = "You are A."
[[roles]]
id = "b"
system = "You are {{ persona.name }}."
persona = "population"
method = "vs-standard"
k = 5
[turns]
first = "a"
max_turns = 4
"#;

/// (description, scenario text, expected line, expected fragment of the message)
fn cases() -> Vec<(&'static str, String, usize, &'static str)> {
    vec![
        ("unknown method", GOOD.replace("method = \"vs-standard\"", "method = \"vs-fancy\""), 9, "valid methods: direct, cot"),
        ("k = 0", GOOD.replace("k = 5", "k = 0"), 10, "k must be between 1 and 100"),
        ("unknown role in edge", GOOD.replace("max_turns = 4", "max_turns = 4\nedges = [[\"a\", \"c\"], [\"b\", \"a\"]]"), 14, "unknown role `c`"),
        ("no path back", r#"name = "t"
[[roles]]
id = "a"
system = "A"
[[roles]]
id = "b"
system = "B"
[[roles]]
id = "c"
system = "C"
[turns]
policy = "random-neighbour"
edges = [["a", "b"], ["b", "a"], ["a", "c"]]
max_turns = 4
"#.to_string(), 11, "no path back to the first speaker"),
        ("template slot with no value", GOOD.replace("You are A.", "You are {{ nickname }}."), 4, "template slot `nickname` has no value"),
        ("persona slot without persona", GOOD.replace("You are A.", "You are {{ persona.name }}."), 4, "the role has no persona"),
        ("unknown field", GOOD.replace("k = 5", "k = 5\ntemprature = 0.7"), 11, "unknown field `temprature`"),
        ("bad TOML", GOOD.replace("id = \"a\"", "id = \"a"), 3, ""),
        ("tau out of range", GOOD.replace("k = 5", "k = 5\ntau = 1.5"), 11, "expected a probability in [0, 1]"),
        ("unknown selection", GOOD.replace("k = 5", "k = 5\nselection = \"best\""), 11, "weighted"),
        ("unknown policy", GOOD.replace("first = \"a\"", "first = \"a\"\npolicy = \"chaos\""), 13, "unknown turn policy"),
        ("unknown first speaker", GOOD.replace("first = \"a\"", "first = \"z\""), 12, "unknown role `z`"),
        ("duplicate role", GOOD.replace("id = \"b\"", "id = \"a\""), 6, "duplicate role id"),
        ("number outcome without range", format!("{GOOD}[[outcomes]]\nname = \"x\"\nrole = \"b\"\ntype = \"number\"\nquestion = \"How much?\"\n"), 17, "needs finite `min` and `max`"),
        ("bad model spec", GOOD.replace("k = 5", "k = 5\nmodel = \"gpt4\""), 11, "invalid model spec"),
        ("k on a one-reply method", GOOD.replace("\"vs-standard\"", "\"direct\""), 10, "asks for one reply per call"),
        ("tau without probabilities", GOOD.replace("\"vs-standard\"\nk = 5", "\"sequence\"\nk = 5\ntau = 0.1"), 11, "stated in the prompts of vs-standard"),
        ("min_prob without probabilities", GOOD.replace("\"vs-standard\"\nk = 5", "\"sequence\"\nk = 5\nmin_prob = 0.1"), 11, "no probabilities to filter by"),
        ("weighted without probabilities", GOOD.replace("\"vs-standard\"\nk = 5", "\"sequence\"\nk = 5\nselection = \"weighted\""), 11, "nothing to weigh"),
        ("candidates with a model-decided k", GOOD.replace("k = 5", "k = \"model-decided\"\ncandidates = 10"), 11, "cannot be met"),
        ("vs-multi with a model-decided k", GOOD.replace("\"vs-standard\"\nk = 5", "\"vs-multi\"\nk = \"model-decided\""), 10, "k more"),
        ("prompt_tau renamed", GOOD.replace("k = 5", "k = 5\nprompt_tau = 0.1"), 11, "now `tau`"),
    ]
}

#[test]
fn broken_scenarios_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    for (what, text, line, fragment) in cases() {
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, &text).unwrap();
        let err = vsim::scenario::load_scenario(&path).expect_err(what);
        let msg = err.to_string();
        let prefix = format!("{}:{line}:", path.display());
        assert!(msg.starts_with(&prefix), "{what}: expected `{prefix}...`, got `{msg}`");
        assert!(msg.contains(fragment), "{what}: expected `{fragment}` in `{msg}`");

        let out = Command::cargo_bin("vsim").unwrap().arg("run").arg(&path).arg("--quiet").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&prefix), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}

#[test]
fn good_scenario_and_shipped_scenarios_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.toml");
    std::fs::write(&path, GOOD).unwrap();
    vsim::scenario::load_scenario(&path).unwrap();
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for entry in std::fs::read_dir(scenarios).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        // Dialogue scenarios declare roles; surveys and sweeps are checked by their own tests.
        let table: toml::Table = std::fs::read_to_string(&p).unwrap().parse().unwrap();
        if table.contains_key("roles") {
            vsim::scenario::load_scenario(&p).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn broken_persona_file_in_population_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, GOOD).unwrap();
    let personas = dir.path().join("people");
    std::fs::create_dir(&personas).unwrap();
    std::fs::write(personas.join("x.toml"), "id = \"x\"\nname = \"X\"\nage = 3\n").unwrap();
    let out = Command::cargo_bin("vsim")
        .unwrap()
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--population", personas.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("x.toml:3"), "{stderr}");
}
