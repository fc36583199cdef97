//! End-to-end dialogue tests with a scripted backend: the persuasion scenario event by
//! event, reproducibility at any concurrency, resume, and a moderated three-agent scenario.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{ChatRequest, SharedModel};
use vsim::dialogue::events::Event;
use vsim::experiment::{run_experiment, Population, RoleModel, RunConfig};
use vsim::outcome::OutcomeSource;
use vsim::rundir::transcript::read_events;
use vsim::scenario::{load_scenario, parse_scenario, Scenario};
use vsim::vs::{AnswerShape, OutputConstraint};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A deterministic fake model: replies depend only on the request.
fn fake_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        let last = req.messages.last().map(|m| m.content.clone()).unwrap_or_default();
        let n_msgs = req.messages.len();
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Candidates { max_items, .. }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|i| {
                        format!(
                            r#"{{"text": "reply {i} to message {n_msgs}", "probability": {}}}"#,
                            (i + 1) as f64 / 10.0
                        )
                    })
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(", "))
            }
            Some(OutputConstraint::Number { .. }) => {
                format!(r#"{{"answer": {}}}"#, (n_msgs % 5) as f64 * 0.25)
            }
            // An outcome asked through a list method: two answers with probabilities.
            Some(OutputConstraint::Answers { answer: AnswerShape::Number { .. }, .. }) => {
                format!(
                    r#"{{"responses": [{{"answer": {}, "probability": 0.7}}, {{"answer": 2, "probability": 0.3}}]}}"#,
                    (n_msgs % 5) as f64 * 0.25
                )
            }
            Some(OutputConstraint::Answers { answer: AnswerShape::Choice { choices }, .. }) => {
                format!(
                    r#"{{"responses": [{{"answer": "{}", "probability": 1.0}}]}}"#,
                    choices[n_msgs % choices.len()]
                )
            }
            Some(OutputConstraint::Choice { choices }) => {
                format!(r#"{{"answer": "{}"}}"#, choices[n_msgs % choices.len()])
            }
            None if last.contains("speak next") => "ask someone".to_string(),
            _ => format!("Message {n_msgs}: please consider donating."),
        })
    })
}

fn models(scenario: &Scenario, model: &ScriptedModel) -> Vec<RoleModel> {
    let shared: SharedModel = Arc::new(model.clone());
    scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: shared.clone() }).collect()
}

async fn run(
    scenario: &Scenario,
    n: usize,
    concurrency: usize,
    dir: &Path,
    resume: bool,
) -> vsim::experiment::RunSummary {
    run_on(scenario, &fake_model(), n, concurrency, dir, resume).await
}

/// [`run`] with every role on `model`.
async fn run_on(
    scenario: &Scenario,
    model: &ScriptedModel,
    n: usize,
    concurrency: usize,
    dir: &Path,
    resume: bool,
) -> vsim::experiment::RunSummary {
    let population = Population::load(root().join("personas").to_str().unwrap()).unwrap();
    let config = RunConfig {
        n: Some(n),
        seed: 42,
        concurrency,
        out_dir: dir.to_path_buf(),
        resume,
        progress: Default::default(),
    };
    run_experiment(Arc::new(scenario.clone()), &population, &models(scenario, model), &config).await.unwrap()
}

/// Transcript lines with timing removed, sorted by dialogue then file order.
fn normalized_transcript(dir: &Path) -> Vec<String> {
    let events = read_events(&dir.join("transcripts.jsonl")).unwrap();
    let mut out = Vec::new();
    for (_, evs) in events {
        for e in evs {
            let mut v = serde_json::to_value(&e).unwrap();
            strip_timing(&mut v);
            out.push(v.to_string());
        }
    }
    out
}

fn strip_timing(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("latency_ms");
            m.values_mut().for_each(strip_timing);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_timing),
        _ => {}
    }
}

#[tokio::test]
async fn persuasion_dialogue_event_by_event() {
    let scenario = load_scenario(&root().join("scenarios/persuasion_for_good.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&scenario, 1, 1, dir.path(), false).await;
    assert_eq!((summary.counts.completed, summary.counts.failed), (1, 0));

    let events = read_events(&dir.path().join("transcripts.jsonl")).unwrap();
    let evs = &events["d00000"];
    assert_eq!(
        evs.len(),
        1 + 20 + 2 + 1,
        "begin, 20 turns, 2 outcomes (the answer and the stated donation), end"
    );
    let Event::Begin(begin) = &evs[0] else { panic!("first event must be begin") };
    assert_eq!(begin.index, 0);
    assert_eq!(begin.seed, vsim::seed::derive(42, 0));
    assert_eq!(begin.agents.len(), 2);
    assert_eq!(begin.agents[1].persona_id.as_deref(), Some(begin.population_id.as_deref().unwrap()));
    assert!(begin.agents[1].system_prompt.contains("About you:"));
    for (i, e) in evs[1..21].iter().enumerate() {
        let Event::Turn(t) = e else { panic!("event {i} must be a turn") };
        assert_eq!(t.turn, i);
        if i % 2 == 0 {
            assert_eq!(t.speaker, "persuader");
            assert_eq!(t.candidates.len(), 1);
            assert_eq!(t.candidates[0].probability, 1.0);
            assert_eq!(t.text, format!("Message {}: please consider donating.", i + 2));
        } else {
            assert_eq!(t.speaker, "persuadee");
            assert_eq!(t.candidates.len(), 5);
            let sum: f64 = t.candidates.iter().map(|c| c.probability).sum();
            assert!((sum - 1.0).abs() < 1e-9);
            assert_eq!(t.candidates[4].raw_probability, Some(0.5));
            assert!(t.choice.draw.is_some());
            assert_eq!(t.text, t.candidates[t.choice.index].text);
        }
    }
    let Event::Outcome(o) = &evs[21] else { panic!("outcome expected") };
    assert_eq!(
        (o.role.as_str(), o.name.as_str(), o.source),
        ("persuadee", "donation", OutcomeSource::Question)
    );
    assert!(o.value.as_ref().unwrap().as_f64().is_some());
    let Event::Outcome(stated) = &evs[22] else { panic!("stated outcome expected") };
    assert_eq!((stated.column().as_str(), stated.value.as_ref()), ("persuadee.donation.stated", None));
    let Event::End(end) = &evs[23] else { panic!("end expected") };
    assert_eq!(end.turns, 20);

    let csv = std::fs::read_to_string(dir.path().join("outcomes.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "dialogue,index,seed,population_id,status,turns,end_reason,persuadee.donation,persuadee.donation.stated,prompt_tokens,completion_tokens"
    );
    assert!(lines.next().unwrap().starts_with("d00000,0,"));
    assert!(dir.path().join("config.json").exists());
}

#[tokio::test]
async fn same_seed_same_transcript_at_any_concurrency() {
    let scenario = load_scenario(&root().join("scenarios/persuasion_for_good.toml")).unwrap();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    run(&scenario, 6, 1, a.path(), false).await;
    run(&scenario, 6, 8, b.path(), false).await;
    run(&scenario, 6, 1, c.path(), false).await;
    assert_eq!(normalized_transcript(a.path()), normalized_transcript(b.path()));
    assert_eq!(normalized_transcript(a.path()), normalized_transcript(c.path()));
    let csv = |d: &Path| std::fs::read_to_string(d.join("outcomes.csv")).unwrap();
    assert_eq!(csv(a.path()), csv(b.path()));
}

#[tokio::test]
async fn resume_runs_only_missing_dialogues_and_refuses_overwrite() {
    let scenario = load_scenario(&root().join("scenarios/persuasion_for_good.toml")).unwrap();
    let full = tempfile::tempdir().unwrap();
    run(&scenario, 4, 2, full.path(), false).await;

    // Keep two finished dialogues plus a torn line, as a crash would leave.
    let part = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(full.path().join("transcripts.jsonl")).unwrap();
    let kept: Vec<&str> =
        text.lines().filter(|l| l.contains("\"d00000\"") || l.contains("\"d00002\"")).collect();
    std::fs::write(part.path().join("transcripts.jsonl"), format!("{}\n{{\"event\":\"tur", kept.join("\n")))
        .unwrap();
    std::fs::copy(full.path().join("config.json"), part.path().join("config.json")).unwrap();

    let population = Population::load(root().join("personas").to_str().unwrap()).unwrap();
    let config = RunConfig {
        n: Some(4),
        seed: 42,
        concurrency: 2,
        out_dir: part.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let err =
        run_experiment(Arc::new(scenario.clone()), &population, &models(&scenario, &fake_model()), &config)
            .await
            .unwrap_err();
    // The library says what is wrong and names no flag; the front ends add their own hint.
    assert!(err.to_string().contains("already holds a run") && !err.to_string().contains("--"), "{err}");
    assert_eq!(
        vsim::workflow::remedy::remedy(&err),
        Some(vsim::workflow::remedy::Remedy::ResumeOrAnotherFolder)
    );

    let summary = run(&scenario, 4, 2, part.path(), true).await;
    assert_eq!((summary.ran, summary.skipped), (2, 2));
    assert_eq!(normalized_transcript(full.path()), normalized_transcript(part.path()));
    assert_eq!(
        std::fs::read_to_string(full.path().join("outcomes.csv")).unwrap(),
        std::fs::read_to_string(part.path().join("outcomes.csv")).unwrap()
    );
}

#[tokio::test]
async fn failed_dialogue_is_recorded_and_counted() {
    let scenario = load_scenario(&root().join("scenarios/persuasion_for_good.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let broken =
        ScriptedModel::from_fn(|_| Err(vsim::backend::BackendError::Scripted("server exploded".into())));
    let summary = run_on(&scenario, &broken, 2, 2, dir.path(), false).await;
    assert_eq!((summary.counts.failed, summary.failed_now), (2, 2));
    let events = read_events(&dir.path().join("transcripts.jsonl")).unwrap();
    let Some(Event::Error(e)) = events["d00001"].last() else { panic!("error event expected") };
    assert!(e.message.contains("server exploded"));
    assert_eq!(e.turn, Some(0));
}

/// A turn that fails because no reply parsed keeps both raw replies in its error event, so
/// the cause can be read from the transcript.
#[tokio::test]
async fn unparseable_turn_keeps_its_raw_replies() {
    let scenario = load_scenario(&root().join("scenarios/persuasion_for_good.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The persuader's one-reply method takes any text; the persuadee's VS list does not.
    let parrot = ScriptedModel::from_fn(|_| Ok("... and so on".to_string()));
    let summary = run_on(&scenario, &parrot, 1, 1, dir.path(), false).await;
    assert_eq!(summary.counts.failed, 1);
    let events = read_events(&dir.path().join("transcripts.jsonl")).unwrap();
    let Some(Event::Error(e)) = events["d00000"].last() else { panic!("error event expected") };
    assert!(e.message.contains("unparseable reply after retry"), "{}", e.message);
    assert_eq!(e.turn, Some(1));
    let raw: Vec<&str> = e.calls.iter().map(|c| c.raw.as_str()).collect();
    assert_eq!(raw, ["... and so on", "... and so on"]);
    assert!(e.calls.iter().all(|c| c.parse_error.is_some()));
}

const TOWN: &str = r#"
name = "three"
[[roles]]
id = "chair"
name = "Chair"
system = "You chair a meeting of {{ roles | length }} people."
[[roles]]
id = "ann"
name = "Ann"
system = "You are {{ persona.name }}."
persona = "population"
method = "vs-standard"
k = 3
[[roles]]
id = "bob"
name = "Bob"
system = "You are Bob."
[turns]
policy = "moderator"
moderator = "chair"
first = "chair"
max_turns = 9
[[outcomes]]
name = "vote"
role = "ann"
type = "category"
categories = ["yes", "no"]
question = "Do you support the proposal?"
[[outcomes]]
name = "vote"
role = "bob"
type = "category"
categories = ["yes", "no"]
question = "Do you support the proposal?"
"#;

#[tokio::test]
async fn moderator_picks_speakers_in_a_three_agent_scenario() {
    let scenario = parse_scenario(Path::new("three.toml"), TOWN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&scenario, 2, 2, dir.path(), false).await;
    assert_eq!(summary.counts.completed, 2);
    let events = read_events(&dir.path().join("transcripts.jsonl")).unwrap();
    for evs in events.values() {
        let turns: Vec<_> =
            evs.iter().filter_map(|e| if let Event::Turn(t) = e { Some(t) } else { None }).collect();
        assert_eq!(turns.len(), 9);
        for (i, t) in turns.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(t.speaker, "chair");
                let next = t.next_speaker.as_deref();
                if i + 1 < turns.len() {
                    assert_eq!(next, Some(turns[i + 1].speaker.as_str()), "the chair's pick speaks next");
                }
            } else {
                assert_ne!(t.speaker, "chair");
            }
        }
        // Other agents see who said what.
        let votes: Vec<_> =
            evs.iter().filter_map(|e| if let Event::Outcome(o) = e { Some(o) } else { None }).collect();
        assert_eq!(votes.len(), 2);
        assert!(votes.iter().all(|v| v.value.is_some()));
    }
}

#[tokio::test]
async fn convokit_export_has_the_documented_fields() {
    let scenario = load_scenario(&root().join("scenarios/persuasion_for_good.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(&scenario, 2, 2, dir.path(), false).await;
    let out = dir.path().join("corpus");
    let counts = vsim::export::convokit::export_convokit(dir.path(), &out).unwrap();
    assert_eq!((counts.conversations, counts.utterances, counts.speakers), (2, 40, 4));
    // Again into its own corpus folder; never into a folder of other files (the run's own).
    vsim::export::convokit::export_convokit(dir.path(), &out).unwrap();
    let refused = vsim::export::convokit::export_convokit(dir.path(), dir.path()).unwrap_err();
    assert!(refused.to_string().contains("not a corpus exported by vsim"), "{refused}");

    let utts: Vec<serde_json::Value> = std::fs::read_to_string(out.join("utterances.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let speakers: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("speakers.json")).unwrap()).unwrap();
    let convos: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("conversations.json")).unwrap()).unwrap();
    for (i, u) in utts.iter().enumerate() {
        for field in ["id", "speaker", "conversation_id", "reply_to", "timestamp", "text", "meta"] {
            assert!(u.get(field).is_some(), "utterance lacks {field}: {u}");
        }
        assert!(speakers.get(u["speaker"].as_str().unwrap()).is_some(), "speaker is declared");
        let conv = u["conversation_id"].as_str().unwrap();
        assert!(convos.get(conv).is_some(), "conversation is declared");
        // The conversation id is the id of its first utterance; others reply to the previous.
        if u["reply_to"].is_null() {
            assert_eq!(u["id"], u["conversation_id"]);
        } else {
            assert_eq!(u["reply_to"], utts[i - 1]["id"]);
        }
    }
    let outcomes = &convos["d00000-t000"]["meta"]["outcomes"];
    assert!(outcomes["persuadee.donation"].is_number(), "{outcomes}");
    // The stated measure has its own key (the fake model states nothing: null, never 0).
    assert!(outcomes["persuadee.donation.stated"].is_null(), "{outcomes}");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("index.json")).unwrap()).unwrap();
    for key in ["utterances-index", "speakers-index", "conversations-index", "overall-index"] {
        assert!(index[key].is_object(), "{key}");
    }
    assert_eq!(index["utterances-index"]["turn"], serde_json::json!(["<class 'int'>"]));
    assert_eq!(index["version"], 1);
    assert!(out.join("corpus.json").exists());
}

#[tokio::test]
async fn resume_answers_lost_dialogues_from_the_response_cache() {
    use vsim::backend::cache::{CacheMode, CachedModel};
    let scenario = load_scenario(&root().join("scenarios/persuasion_for_good.toml")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let counting = fake_model();
    let cached: SharedModel =
        Arc::new(CachedModel::new(counting.clone(), cache.path(), CacheMode::ReadWrite));
    let roles: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: cached.clone() }).collect();
    let population = Population::load(root().join("personas").to_str().unwrap()).unwrap();
    let config = |resume| RunConfig {
        n: Some(2),
        seed: 42,
        concurrency: 2,
        out_dir: dir.path().to_path_buf(),
        resume,
        progress: Default::default(),
    };
    let first =
        run_experiment(Arc::new(scenario.clone()), &population, &roles, &config(false)).await.unwrap();
    assert_eq!(
        (first.spend.calls, first.spend.cached_calls),
        (44, 0),
        "20 turns, the outcome's answer and the stated donation's extractor call each"
    );
    let reference = normalized_transcript(dir.path());

    // A crash lost dialogue d00001 after its model calls were made (and cached).
    let path = dir.path().join("transcripts.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("\"d00001\"")).collect();
    std::fs::write(&path, format!("{}\n", kept.join("\n"))).unwrap();
    let calls_before = counting.requests().len();

    let resumed =
        run_experiment(Arc::new(scenario.clone()), &population, &roles, &config(true)).await.unwrap();
    assert_eq!((resumed.ran, resumed.skipped), (1, 1));
    assert_eq!(counting.requests().len(), calls_before, "no model call is repeated");
    assert_eq!((resumed.spend.calls, resumed.spend.cached_calls), (0, 22));
    let events = read_events(&path).unwrap();
    for e in &events["d00001"] {
        if let Event::Turn(t) = e {
            assert!(t.calls.iter().all(|c| c.cached), "turn {} came from the cache", t.turn);
        }
    }
    // Apart from the cache flags, the transcript is what the first run wrote.
    let uncached = |lines: Vec<String>| -> Vec<String> {
        lines.into_iter().map(|l| l.replace("\"cached\":true", "\"cached\":false")).collect()
    };
    assert_eq!(uncached(normalized_transcript(dir.path())), uncached(reference));
}

#[tokio::test]
async fn branch_of_a_moderated_dialogue_replays_the_moderators_picks() {
    use vsim::workflow::branch::{load_branch, run_branch, BranchConfig, BranchRequest};
    let tmp = tempfile::tempdir().unwrap();
    let scenario_path = tmp.path().join("three.toml");
    std::fs::write(&scenario_path, TOWN).unwrap();
    let scenario = load_scenario(&scenario_path).unwrap();
    let run_dir = tmp.path().join("run");
    run(&scenario, 1, 1, &run_dir, false).await;
    let original = read_events(&run_dir.join("transcripts.jsonl")).unwrap().remove("d00000").unwrap();
    let turns = |evs: &[Event]| -> Vec<vsim::dialogue::events::TurnEvent> {
        evs.iter().filter_map(|e| if let Event::Turn(t) = e { Some(t.clone()) } else { None }).collect()
    };
    let orig = turns(&original);
    let t = (2..orig.len()).find(|&i| orig[i].speaker == "ann").expect("ann speaks after turn 2");
    let j = (orig[t].choice.index + 1) % orig[t].candidates.len();
    let request = BranchRequest {
        run_dir: run_dir.clone(),
        dialogue: "d00000".into(),
        turn: t,
        candidate: j,
        scenario_path: None,
        allow_changed_inputs: false,
    };
    let source = load_branch(&request).unwrap();
    let out = tmp.path().join("branch");
    let config = BranchConfig {
        n: 1,
        concurrency: 1,
        out_dir: out.clone(),
        resume: false,
        progress: Default::default(),
    };
    let summary =
        run_branch(&source, &models(&scenario, &fake_model()), &config, &Default::default()).await.unwrap();
    assert_eq!(summary.counts.completed, 1);
    let branched = turns(&read_events(&out.join("transcripts.jsonl")).unwrap()["d00000"]);
    assert_eq!(branched.len(), 9);
    assert_eq!(&branched[..t], &orig[..t], "turns before {t}, with the chair's picks, are replayed");
    assert_eq!(branched[t].text, orig[t].candidates[j].text);
    for w in branched.windows(2).filter(|w| w[0].speaker == "chair") {
        assert_eq!(w[0].next_speaker.as_deref(), Some(w[1].speaker.as_str()), "the chair's pick speaks next");
    }
}
