//! The mock against the real client and runner: every prompt method, with and without a
//! schema in `response_format`, ends in parsed candidates.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::backend::cache::CacheMode;
use crate::backend::factory::{open_model, BackendOptions};
use crate::backend::spec::ModelSpec;
use crate::dialogue::events::{Event, TurnEvent};
use crate::experiment::{run_experiment, Population, RoleModel, RunConfig, RunSummary};
use crate::outcome::OutcomeSource;
use crate::rundir::transcript::read_events;
use crate::scenario::parse_scenario;
use crate::vs::Method;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `n` dialogues of `toml` against `server`, `response_format` on or off; returns the
/// summary and every event.
async fn run(server: &MockServer, toml: &str, n: usize, response_format: bool) -> (RunSummary, Vec<Event>) {
    let scenario = parse_scenario(Path::new("mock.toml"), toml).unwrap();
    let spec = ModelSpec::OpenAi { model: "mock".into(), base_url: Some(server.base_url()) };
    let options = BackendOptions { cache: CacheMode::Off, response_format, ..Default::default() };
    let model = open_model(&spec, &options).await.unwrap();
    let models: Vec<RoleModel> = scenario
        .roles
        .iter()
        .map(|_| RoleModel { name: "openai:mock".into(), model: model.clone() })
        .collect();
    let population = Population::load(root().join("personas").to_str().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = RunConfig {
        n: Some(n),
        seed: 9,
        concurrency: 4,
        out_dir: dir.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment(Arc::new(scenario), &population, &models, &config).await.unwrap();
    let events =
        read_events(&dir.path().join("transcripts.jsonl")).unwrap().into_values().flatten().collect();
    (summary, events)
}

fn turns(events: &[Event]) -> impl Iterator<Item = &TurnEvent> {
    events.iter().filter_map(|e| match e {
        Event::Turn(t) => Some(t),
        _ => None,
    })
}

/// Every turn has candidates, parsed from the first reply of every call.
fn assert_parsed_first_time(events: &[Event]) {
    for t in turns(events) {
        assert!(!t.candidates.is_empty(), "{t:?}");
        for call in &t.calls {
            assert_eq!(call.parse_error, None, "{} ({}): {}", t.speaker, t.method.as_str(), call.raw);
        }
    }
}

#[tokio::test]
async fn a_cot_role_gets_its_reasoning_and_reply() {
    let server = MockServer::start(MockConfig { seed: 3, ..MockConfig::default() }).await.unwrap();
    let toml = r#"
name = "cot"
[[roles]]
id = "a"
system = "You ask for a donation."
[[roles]]
id = "b"
method = "cot"
system = "You are asked for a donation."
[turns]
first = "a"
max_turns = 4
"#;
    let (summary, events) = run(&server, toml, 3, true).await;
    assert_eq!((summary.counts.completed, summary.counts.failed), (3, 0));
    assert_parsed_first_time(&events);
    let cot: Vec<&TurnEvent> = turns(&events).filter(|t| t.method == Method::Cot).collect();
    assert_eq!(cot.len(), 6, "two turns of b in each of 3 dialogues");
    for t in cot {
        assert_eq!((t.calls.len(), t.candidates.len()), (1, 1));
        assert!(t.reasoning.as_deref().is_some_and(|r| !r.is_empty()), "{t:?}");
        assert!(!t.text.contains('{'), "{}", t.text);
    }
    assert_eq!(MockStats::get(&server.stats().bad_requests), 0);
}

#[tokio::test]
async fn without_response_format_every_method_is_answered_in_plain_shapes() {
    let server = MockServer::start(MockConfig { seed: 5, ..MockConfig::default() }).await.unwrap();
    let role = |id: &str, method: &str| {
        format!("[[roles]]\nid = \"{id}\"\nmethod = \"{method}\"\nsystem = \"You are {id}.\"\n")
    };
    let roles: String = [
        ("direct", "direct"),
        ("cot", "cot"),
        ("sequence", "sequence"),
        ("multi", "multi-turn"),
        ("vs", "vs-standard"),
        ("vscot", "vs-cot"),
        ("vsmulti", "vs-multi"),
    ]
    .iter()
    .map(|(id, m)| role(id, m))
    .collect();
    let toml = format!(
        r#"
name = "every method"
{roles}
[turns]
policy = "round-robin"
first = "direct"
max_turns = 7
[[outcomes]]
name = "donation"
role = "vs"
type = "number"
min = 0
max = 2
question = "How much do you donate?"
stated = true
[[outcomes]]
name = "vote"
role = "direct"
type = "category"
categories = ["yes", "no"]
question = "Do you vote yes or no?"
[[outcomes]]
name = "rating"
role = "cot"
type = "number"
min = 1
max = 7
question = "How do you rate the talk?"
"#
    );
    let n = 6;
    let (summary, events) = run(&server, &toml, n, false).await;
    assert_eq!((summary.counts.completed, summary.counts.failed), (n, 0));
    assert_parsed_first_time(&events);
    let methods: BTreeSet<&str> = turns(&events).map(|t| t.method.as_str()).collect();
    assert_eq!(methods.len(), 7, "{methods:?}");
    // The list replies came in several plain-text shapes, not only the JSON asked for.
    let shapes: BTreeSet<&str> = turns(&events)
        .filter(|t| t.method.asks_for_list())
        .flat_map(|t| &t.calls)
        .map(|c| {
            let raw = c.raw.as_str();
            if raw.contains("<response>") {
                "tags"
            } else if raw.contains("|---") {
                "table"
            } else if raw.contains("Response 1:") {
                "labelled"
            } else if raw.contains("- text:") {
                "yaml"
            } else if raw.contains("1. ") {
                "numbered"
            } else if raw.contains("- ") {
                "bullets"
            } else {
                "json"
            }
        })
        .collect();
    assert!(shapes.len() >= 4, "{shapes:?}");
    let outcomes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Outcome(o) => Some(o),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 4 * n, "three questions and one stated measure per dialogue");
    for o in outcomes {
        assert!(o.value.is_some(), "{o:?}");
        assert!(matches!(o.source, OutcomeSource::Question | OutcomeSource::Stated), "{o:?}");
    }
    assert_eq!(MockStats::get(&server.stats().bad_requests), 0);
}

#[test]
fn unit_vectors_are_unit_and_deterministic() {
    let a = unit_vector(1, "hello", 64);
    assert_eq!(a, unit_vector(1, "hello", 64));
    assert_ne!(a, unit_vector(1, "hellp", 64));
    assert!((a.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9);
}
