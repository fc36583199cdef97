//! The town hall scenario: a moderator and five residents; the moderator picks who speaks
//! next; every resident speaks; each casts a private vote.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{ChatRequest, SharedModel};
use vsim::dialogue::events::Event;
use vsim::experiment::{run_experiment, Population, RoleModel, RunConfig};
use vsim::rundir::transcript::read_events;
use vsim::scenario::load_scenario;
use vsim::vs::OutputConstraint;

#[tokio::test]
async fn town_hall_runs_with_every_resident_speaking_and_voting() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let scenario = load_scenario(&root.join("scenarios/town_hall.toml")).unwrap();
    assert!(scenario.roles.len() >= 5, "a moderator and at least four residents");
    let picks = Arc::new(AtomicUsize::new(0));
    let model = {
        let picks = picks.clone();
        ScriptedModel::from_fn(move |req: &ChatRequest| {
            let n = req.messages.len();
            Ok(match &OutputConstraint::of(req) {
                Some(OutputConstraint::Candidates { max_items, .. }) => {
                    let items: Vec<String> = (0..(*max_items).min(3))
                        .map(|i| format!(r#"{{"text": "opinion {i} at {n}", "probability": 0.{}}}"#, i + 2))
                        .collect();
                    format!(r#"{{"responses": [{}]}}"#, items.join(","))
                }
                // The moderator invites residents in rotation.
                Some(OutputConstraint::Choice { choices }) if choices.len() > 3 => {
                    let i = picks.fetch_add(1, Ordering::SeqCst);
                    format!(r#"{{"answer": "{}"}}"#, choices[i % choices.len()])
                }
                Some(OutputConstraint::Choice { choices }) => {
                    format!(r#"{{"answer": "{}"}}"#, choices[n % choices.len()])
                }
                Some(OutputConstraint::Answers {
                    answer: vsim::vs::AnswerShape::Choice { choices }, ..
                }) => {
                    format!(
                        r#"{{"responses": [{{"answer": "{}", "probability": 1.0}}]}}"#,
                        choices[n % choices.len()]
                    )
                }
                _ => format!("Let us hear from the next resident ({n})."),
            })
        })
    };
    let shared: SharedModel = Arc::new(model);
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: shared.clone() }).collect();
    let population = Population::load(root.join("personas").to_str().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = RunConfig {
        n: Some(1),
        seed: 3,
        concurrency: 1,
        out_dir: dir.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment(Arc::new(scenario.clone()), &population, &models, &config).await.unwrap();
    assert_eq!(summary.counts.completed, 1);

    let events = read_events(&dir.path().join("transcripts.jsonl")).unwrap();
    let evs = &events["d00000"];
    let speakers: BTreeSet<String> = evs
        .iter()
        .filter_map(|e| if let Event::Turn(t) = e { Some(t.speaker.clone()) } else { None })
        .collect();
    let all: BTreeSet<String> = scenario.roles.iter().map(|r| r.id.clone()).collect();
    assert_eq!(speakers, all, "every agent speaks");
    let votes: Vec<_> =
        evs.iter().filter_map(|e| if let Event::Outcome(o) = e { Some(o) } else { None }).collect();
    assert_eq!(votes.len(), scenario.roles.len() - 1);
    for v in votes {
        assert_eq!(v.name, "vote");
        let value = v.value.as_ref().and_then(|x| x.as_str()).unwrap();
        assert!(["yes", "no", "abstain"].contains(&value));
    }
    let csv = std::fs::read_to_string(dir.path().join("outcomes.csv")).unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains("teacher.vote,electrician.vote,farmer.vote,nurse.vote,banker.vote"));
}
