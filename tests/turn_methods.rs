//! Every prompt method inside a dialogue, with the turn-level candidate budget of Table 1:
//! calls per turn and candidates per turn, one conversation for multi-turn and vs-multi,
//! the paper's τ in the prompt and the `min_prob` floor at selection.

use std::path::Path;
use std::sync::Arc;

use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{ChatRequest, Role, SharedModel};
use vsim::dialogue::events::{Event, TurnEvent};
use vsim::experiment::{run_experiment, Population, RoleModel, RunConfig};
use vsim::rundir::transcript::read_events;
use vsim::scenario::{parse_scenario, RoleOverride, RoleSetting};
use vsim::vs::OutputConstraint;

/// A scenario where `a` speaks directly and `b` uses `settings` (TOML lines of a role).
fn scenario(settings: &str) -> vsim::scenario::Scenario {
    let text = format!(
        r#"
name = "methods"
[[roles]]
id = "a"
system = "You are A."
[[roles]]
id = "b"
system = "You are B."
{settings}
[turns]
first = "a"
max_turns = 2
"#
    );
    parse_scenario(Path::new("methods.toml"), &text).unwrap()
}

/// Replies in whatever shape the request asks for, numbering the calls of a conversation.
fn model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        let n = req.messages.iter().filter(|m| m.role == Role::Assistant).count();
        let last = req.messages.last().map(|m| m.content.as_str()).unwrap_or("");
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Candidates { max_items, with_probability, .. }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|i| {
                        if *with_probability {
                            format!(r#"{{"text": "c{n}-{i}", "probability": {}}}"#, 0.5 / (i + 1) as f64)
                        } else {
                            format!(r#"{{"text": "c{n}-{i}"}}"#)
                        }
                    })
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(", "))
            }
            _ if last.contains("step by step") => {
                format!(r#"{{"reasoning": "think", "response": "cot {n} {}"}}"#, req.seed.unwrap_or(0) % 97)
            }
            _ => format!("reply {n} seed {}", req.seed.unwrap_or(0) % 97),
        })
    })
}

/// B's only turn (turn 1) of a one-dialogue run.
async fn b_turn(settings: &str) -> (TurnEvent, ScriptedModel) {
    let scenario = scenario(settings);
    let m = model();
    let shared: SharedModel = Arc::new(m.clone());
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: shared.clone() }).collect();
    let personas = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas");
    let population = Population::load(personas.to_str().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = RunConfig {
        n: Some(1),
        seed: 3,
        concurrency: 1,
        out_dir: dir.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment(Arc::new(scenario), &population, &models, &config).await.unwrap();
    assert_eq!(summary.counts.failed, 0, "{settings}");
    let events = read_events(&dir.path().join("transcripts.jsonl")).unwrap();
    let turn = events["d00000"]
        .iter()
        .find_map(|e| match e {
            Event::Turn(t) if t.speaker == "b" => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    (turn, m)
}

fn texts(t: &TurnEvent) -> Vec<&str> {
    t.candidates.iter().map(|c| c.text.as_str()).collect()
}

#[tokio::test]
async fn one_reply_methods_draw_n_independent_replies() {
    let (t, _) = b_turn("method = \"direct\"").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (1, 1));

    let (t, _) = b_turn("method = \"direct\"\ncandidates = 3").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (3, 3));
    // Independent calls: each with its own seed, none seeing another's reply.
    let seeds: std::collections::BTreeSet<u64> = t.calls.iter().map(|c| c.seed).collect();
    assert_eq!(seeds.len(), 3);
    assert!(texts(&t).iter().all(|x| x.starts_with("reply 0 ")), "{:?}", texts(&t));
    assert!(t.candidates.iter().all(|c| (c.probability - 1.0 / 3.0).abs() < 1e-12));
    assert_eq!(t.choice.rule.selection.to_string(), "uniform");

    let (t, _) = b_turn("method = \"cot\"\ncandidates = 2").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (2, 2));
}

#[tokio::test]
async fn multi_turn_asks_for_another_reply_in_the_same_conversation() {
    let (t, m) = b_turn("method = \"multi-turn\"").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (2, 2), "default: a reply, then another");
    // The second call continues the first: it carries the first reply and asks for another.
    let second = m.requests().into_iter().last().unwrap();
    assert!(second
        .messages
        .iter()
        .any(|msg| msg.role == Role::Assistant && msg.content.starts_with("reply 0")));
    assert!(second.messages.last().unwrap().content.contains("another response"));
    assert_eq!(texts(&t)[1].split(' ').nth(1), Some("1"), "{:?}", texts(&t));

    let (t, _) = b_turn("method = \"multi-turn\"\ncandidates = 4").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (4, 4));
}

#[tokio::test]
async fn list_methods_take_ceil_n_over_k_calls() {
    let (t, _) = b_turn("method = \"vs-standard\"\nk = 5").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (1, 5));

    let (t, _) = b_turn("method = \"sequence\"\nk = 3\ncandidates = 7").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (3, 7));
    assert_eq!(t.choice.rule.selection.to_string(), "uniform");

    let (t, _) = b_turn("method = \"vs-cot\"\nk = 2\ncandidates = 4").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (2, 4));
    let sum: f64 = t.candidates.iter().map(|c| c.probability).sum();
    assert!((sum - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn vs_multi_asks_for_k_more_with_confidence_in_one_conversation() {
    let (t, m) = b_turn("method = \"vs-multi\"\nk = 2").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (2, 4), "default: k, then k more");
    let requests = m.requests();
    let b_calls: Vec<&ChatRequest> =
        requests.iter().filter(|r| r.messages[0].content == "You are B.").collect();
    assert_eq!(b_calls.len(), 2);
    assert!(b_calls[0].messages.last().unwrap().content.contains("\"confidence\""));
    let more = &b_calls[1].messages.last().unwrap().content;
    assert!(more.contains("2 more responses") && more.contains("confidence"), "{more}");
    // The follow-up sees the first list.
    assert!(b_calls[1]
        .messages
        .iter()
        .any(|msg| msg.role == Role::Assistant && msg.content.contains("c0-0")));
    assert_eq!(texts(&t), ["c0-0", "c0-1", "c1-0", "c1-1"]);

    let (t, _) = b_turn("method = \"vs-multi\"\nk = 2\ncandidates = 5").await;
    assert_eq!((t.calls.len(), t.candidates.len()), (3, 5));
}

#[tokio::test]
async fn tau_is_stated_in_the_prompt_and_min_prob_filters_at_selection() {
    let (t, m) = b_turn("method = \"vs-standard\"\nk = 4\ntau = 0.1").await;
    let b_call = m.requests().into_iter().find(|r| r.messages[0].content == "You are B.").unwrap();
    assert!(b_call.messages.last().unwrap().content.contains("probability below 0.1"));
    assert_eq!(t.choice.eligible, [0, 1, 2, 3], "τ alone filters nothing");

    // Stated 0.5, 0.25, 0.167, 0.125 (normalised 0.48, 0.24, 0.16, 0.12): a floor of 0.2
    // keeps the first two.
    let (t, m) = b_turn("method = \"vs-standard\"\nk = 4\nmin_prob = 0.2").await;
    let b_call = m.requests().into_iter().find(|r| r.messages[0].content == "You are B.").unwrap();
    assert!(!b_call.messages.last().unwrap().content.contains("probability below"));
    assert_eq!(t.choice.eligible, [0, 1]);
    assert_eq!(t.choice.rule.min_prob, Some(0.2));
}

#[test]
fn command_line_method_overrides_drop_what_does_not_apply() {
    let mut s = scenario("method = \"vs-standard\"\nk = 5\ntau = 0.1\nmin_prob = 0.05");
    let set = |role: &str, name: &str, value: &str| RoleOverride {
        role: role.into(),
        setting: RoleSetting::parse(name, value).unwrap(),
    };
    s.override_role(&set("b", "method", "direct")).unwrap();
    let b = &s.roles[1].sampling;
    assert_eq!((b.items(), b.tau, b.rule.min_prob), (1, None, None));
    assert_eq!(b.rule.selection.to_string(), "uniform");
    // Weighted selection asked for on a method without probabilities, one candidate a turn.
    let err = s.override_role(&set("b", "selection", "weighted")).unwrap_err().to_string();
    assert!(err.contains("nothing to weigh") && !err.contains("--"), "{err}");
    s.override_role(&set("b", "method", "sequence")).unwrap();
    assert_eq!(s.roles[1].sampling.items(), 5);
    let err = s.override_role(&set("b", "selection", "weighted")).unwrap_err().to_string();
    assert!(err.contains("nothing to weigh"), "{err}");
    let err = s.override_role(&set("a", "k", "3")).unwrap_err().to_string();
    assert!(err.contains("one reply per call") && !err.contains("--"), "{err}");
    let err = s.override_role(&set("c", "k", "3")).unwrap_err().to_string();
    assert!(err.contains("unknown role `c`; roles: a, b"), "{err}");
    assert!(RoleSetting::parse("temperature", "1").is_err());
}
