//! Outcome questions go through the method under test: a VS role answers with a verbalized
//! distribution over answers in the constrained shape and its own seeded rule picks one (the
//! whole distribution is recorded); an outcome may name its own method; the `stated`
//! measure reads what the role said, and `vsim eval --measure stated` evaluates it.

use std::path::Path;
use std::sync::Arc;

use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{ChatRequest, SharedModel};
use vsim::dialogue::events::{Event, Measure, OutcomeEvent};
use vsim::eval::RunData;
use vsim::experiment::{run_experiment, Population, RoleModel, RunConfig};
use vsim::outcome::OutcomeSource;
use vsim::rundir::transcript::read_events;
use vsim::scenario::parse_scenario;
use vsim::vs::{AnswerShape, OutputConstraint};

fn scenario(outcome_extra: &str) -> vsim::scenario::Scenario {
    let text = format!(
        r#"
name = "outcomes"
[[roles]]
id = "asker"
system = "You ask."
[[roles]]
id = "giver"
system = "You give."
method = "vs-standard"
k = 3
[turns]
first = "asker"
max_turns = 2
[[outcomes]]
name = "donation"
role = "giver"
type = "number"
min = 0
max = 2
question = "How much do you donate?"
{outcome_extra}
"#
    );
    parse_scenario(Path::new("outcomes.toml"), &text).unwrap()
}

/// Three answers (one out of range) for list questions, 0.25 for a single answer, and "I
/// said $1.50" for the stated extractor.
fn model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Answers {
                answer: AnswerShape::Number { min, max },
                with_probability,
                ..
            }) => {
                assert_eq!((*min, *max), (0.0, 2.0));
                assert!(with_probability);
                r#"{"responses": [{"answer": 0.5, "probability": 0.6}, {"answer": 1.0, "probability": 0.3}, {"answer": 7, "probability": 0.1}]}"#.to_string()
            }
            Some(OutputConstraint::Number { .. }) => r#"{"answer": 0.25}"#.to_string(),
            Some(OutputConstraint::Stated { .. }) => {
                let prompt = &req.messages.last().unwrap().content;
                assert!(prompt.contains("I can give $1.50"), "{prompt}");
                r#"{"answer": 1.5}"#.to_string()
            }
            Some(OutputConstraint::Candidates { max_items, .. }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|i| format!(r#"{{"text": "I can give $1.50 ({i})", "probability": 0.3}}"#))
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(", "))
            }
            _ => "Would you give?".to_string(),
        })
    })
}

async fn run(outcome_extra: &str, n: usize, dir: &Path) -> Vec<OutcomeEvent> {
    let scenario = scenario(outcome_extra);
    let shared: SharedModel = Arc::new(model());
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: shared.clone() }).collect();
    let personas = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas");
    let population = Population::load(personas.to_str().unwrap()).unwrap();
    let config = RunConfig {
        n: Some(n),
        seed: 9,
        concurrency: 2,
        out_dir: dir.to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment(Arc::new(scenario), &population, &models, &config).await.unwrap();
    assert_eq!(summary.counts.failed, 0);
    let events = read_events(&dir.join("transcripts.jsonl")).unwrap();
    events
        .values()
        .flatten()
        .filter_map(|e| match e {
            Event::Outcome(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_vs_role_answers_with_a_distribution_and_its_own_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let outcomes = run("", 40, tmp.path()).await;
    assert_eq!(outcomes.len(), 40);
    let mut values = Vec::new();
    for o in &outcomes {
        let d = o.distribution.as_ref().expect("a list method records its distribution");
        assert_eq!(d.method.to_string(), "vs-standard");
        // The out-of-range answer is refused and recorded, never clamped.
        assert_eq!(d.candidates.len(), 2);
        assert_eq!(d.refused.len(), 1, "{:?}", d.refused);
        assert!((d.candidates[0].probability - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(d.candidates[1].raw_probability, Some(0.3));
        assert_eq!(d.choice.rule.selection.to_string(), "weighted");
        let v = o.value.as_ref().unwrap().as_f64().unwrap();
        assert_eq!(d.candidates[d.choice.index].text.parse::<f64>().unwrap(), v);
        assert_eq!(o.source, OutcomeSource::Question);
        values.push(v);
    }
    // Weighted by 2/3 and 1/3: both answers occur.
    assert!(values.contains(&0.5) && values.contains(&1.0), "{values:?}");

    // Reproducible to the draw.
    let again = tempfile::tempdir().unwrap();
    let second = run("", 40, again.path()).await;
    let key = |os: &[OutcomeEvent]| {
        let mut v: Vec<(String, String)> =
            os.iter().map(|o| (o.dialogue.clone(), o.value.as_ref().unwrap().to_string())).collect();
        v.sort();
        v
    };
    assert_eq!(key(&outcomes), key(&second));
}

#[tokio::test]
async fn an_outcome_may_name_its_own_method() {
    let tmp = tempfile::tempdir().unwrap();
    let outcomes = run("method = \"direct\"", 2, tmp.path()).await;
    for o in outcomes {
        assert!(o.distribution.is_none());
        assert_eq!(o.value.unwrap().as_f64(), Some(0.25));
    }
}

#[tokio::test]
async fn the_stated_measure_is_recorded_separately_and_evaluated_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let outcomes = run("stated = true", 3, tmp.path()).await;
    let stated: Vec<&OutcomeEvent> = outcomes.iter().filter(|o| o.measure == Measure::Stated).collect();
    assert_eq!(stated.len(), 3);
    assert!(stated
        .iter()
        .all(|o| o.value.as_ref().unwrap().as_f64() == Some(1.5) && o.source == OutcomeSource::Stated));
    let csv = std::fs::read_to_string(tmp.path().join("outcomes.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.contains("giver.donation") && header.contains("giver.donation.stated"), "{header}");
    assert!(csv.lines().nth(1).unwrap().contains(",1.5"), "{csv}");

    let answers = RunData::load(tmp.path()).unwrap();
    let said = RunData::load_measure(tmp.path(), Measure::Stated).unwrap();
    let value = |r: &RunData| r.dialogues[0].outcome("giver.donation").unwrap().value.clone().unwrap();
    assert_ne!(value(&answers).as_f64(), Some(1.5));
    assert_eq!(value(&said).as_f64(), Some(1.5));
    let e = vsim::eval::evaluate(
        &said,
        None,
        &vsim::eval::EvalOptions { bootstrap: 0, ..Default::default() },
        None,
    )
    .await
    .unwrap();
    assert_eq!(e.measure, Measure::Stated);
    assert_eq!(e.numeric[0].simulated_values, [1.5, 1.5, 1.5]);

    // `vsim eval --measure stated` names its line as outcomes.csv names the column.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
        .arg("eval")
        .arg(tmp.path())
        .args(["--measure", "stated", "--embedder", "none", "--bootstrap", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l.starts_with("giver.donation.stated: n = 3")), "{stdout}");
}

#[test]
fn answer_lists_are_constrained_in_schema_and_grammar() -> anyhow::Result<()> {
    let c = OutputConstraint::Answers {
        answer: AnswerShape::Number { min: 0.0, max: 2.0 },
        min_items: 3,
        max_items: 3,
        with_probability: true,
    };
    let s = c.json_schema();
    let answer = &s["properties"]["responses"]["items"]["properties"]["answer"];
    assert_eq!((answer["minimum"].as_f64(), answer["maximum"].as_f64()), (Some(0.0), Some(2.0)));
    assert_eq!(s["properties"]["responses"]["minItems"], 3);
    let g = vsim::backend::grammar::gbnf_from_schema(&s)?;
    assert!(g.contains("\"\\\"answer\\\"\" ws \":\" ws (") && g.contains("\"2\""), "{g}");
    let stated =
        OutputConstraint::Stated { answer: AnswerShape::Choice { choices: vec!["yes".into(), "no".into()] } };
    assert!(vsim::backend::grammar::gbnf_from_schema(&stated.json_schema())?.contains("\"null\""));
    assert_eq!(stated.json_schema()["properties"]["answer"]["anyOf"][1]["type"], "null");
    Ok(())
}

#[tokio::test]
async fn the_stated_measure_can_be_read_by_another_model() {
    use vsim::experiment::{run_experiment_with, RunError, RunOptions};
    let scenario =
        Arc::new(scenario("stated = true\nstated_model = \"openai:reader@http://127.0.0.1:9/v1\""));
    let shared: SharedModel = Arc::new(model());
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: shared.clone() }).collect();
    let personas = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas");
    let population = Population::load(personas.to_str().unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = RunConfig {
        n: Some(2),
        seed: 9,
        concurrency: 1,
        out_dir: tmp.path().join("a"),
        resume: false,
        progress: Default::default(),
    };
    // Not opened: refused before anything runs.
    let err = run_experiment_with(scenario.clone(), &population, &models, &config, &RunOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::MissingExtractor(_)), "{err}");

    let reader = ScriptedModel::from_fn(|req: &ChatRequest| {
        assert!(matches!(OutputConstraint::of(req), Some(OutputConstraint::Stated { .. })));
        Ok(r#"{"answer": null}"#.to_string())
    });
    let extractors = vsim::dialogue::run::Extractors(Arc::new(
        [("openai:reader@http://127.0.0.1:9/v1".to_string(), Arc::new(reader.clone()) as SharedModel)].into(),
    ));
    let options = RunOptions { extractors, ..RunOptions::default() };
    run_experiment_with(scenario, &population, &models, &config, &options).await.unwrap();
    assert_eq!(reader.requests().len(), 2);
    let events = read_events(&tmp.path().join("a/transcripts.jsonl")).unwrap();
    let stated: Vec<&OutcomeEvent> = events
        .values()
        .flatten()
        .filter_map(|e| match e {
            Event::Outcome(o) if o.measure == Measure::Stated => Some(o),
            _ => None,
        })
        .collect();
    // "null": nothing stated, recorded as missing.
    assert!(stated.iter().all(|o| o.value.is_none() && o.source == OutcomeSource::Missing));
}

/// The outcome calls of a role with `settings`, from a one-dialogue run.
async fn outcome_calls(settings: &str) -> (Vec<ChatRequest>, OutcomeEvent) {
    let text = format!(
        r#"
name = "outcomes"
[[roles]]
id = "asker"
system = "You ask."
[[roles]]
id = "giver"
system = "You give."
{settings}
[turns]
first = "asker"
max_turns = 2
[[outcomes]]
name = "donation"
role = "giver"
type = "number"
min = 0
max = 2
question = "How much do you donate?"
"#
    );
    let scenario = Arc::new(parse_scenario(Path::new("o.toml"), &text).unwrap());
    let m = model();
    let shared: SharedModel = Arc::new(m.clone());
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: shared.clone() }).collect();
    let personas = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas");
    let population = Population::load(personas.to_str().unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = RunConfig {
        n: Some(1),
        seed: 4,
        concurrency: 1,
        out_dir: tmp.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    run_experiment(scenario, &population, &models, &config).await.unwrap();
    let calls: Vec<ChatRequest> = m
        .requests()
        .into_iter()
        .filter(|r| r.messages.iter().any(|msg| msg.content.contains("How much do you donate?")))
        .collect();
    let events = read_events(&tmp.path().join("transcripts.jsonl")).unwrap();
    let outcome = events["d00000"]
        .iter()
        .find_map(|e| match e {
            Event::Outcome(o) => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    (calls, outcome)
}

#[tokio::test]
async fn outcome_answers_are_gathered_as_turns_gather_candidates() {
    // direct: one answer, no distribution.
    let (calls, o) = outcome_calls("method = \"direct\"").await;
    assert_eq!(calls.len(), 1);
    assert!(o.distribution.is_none());

    // direct with N = 3: three independent single answers, uniform choice.
    let (calls, o) = outcome_calls("method = \"direct\"\ncandidates = 3").await;
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| matches!(OutputConstraint::of(c), Some(OutputConstraint::Number { .. }))));
    let d = o.distribution.unwrap();
    assert_eq!((d.candidates.len(), d.choice.rule.selection.to_string()), (3, "uniform".to_string()));

    // multi-turn: a first answer, then another in the same conversation.
    let (calls, o) = outcome_calls("method = \"multi-turn\"").await;
    assert_eq!(calls.len(), 2);
    let second = calls[1].messages.last().unwrap().content.clone();
    // The method's own follow-up, then what one answer may be.
    assert!(
        second.contains("another response") && second.contains("ANSWER is a number between 0 and 2"),
        "{second}"
    );
    assert!(calls[1].messages.iter().any(|m| m.content.contains("0.25")));
    assert_eq!(o.distribution.unwrap().candidates.len(), 2);

    // vs-multi with k = 2: two lists in one conversation, the second asking for 2 more.
    let (calls, o) = outcome_calls("method = \"vs-multi\"\nk = 2").await;
    assert_eq!(calls.len(), 2);
    assert!(calls[0].messages.last().unwrap().content.contains("confidence"));
    let more = calls[1].messages.last().unwrap().content.clone();
    assert!(more.contains("2 more responses") && more.contains("confidence"), "{more}");
    // Each list gives three answers; the one parser keeps the first k = 2 of each (as it
    // does for turns, recording the cut), both valid: four in all.
    let d = o.distribution.unwrap();
    assert_eq!((d.candidates.len(), d.refused.len()), (4, 0));
}

#[tokio::test]
async fn a_reply_whose_every_answer_is_refused_is_asked_again_with_the_reason() {
    // The first list of answers is all out of range; asked again in the same conversation
    // with why, the model answers in range. Both calls are recorded in the outcome's raw.
    let model = ScriptedModel::from_fn(|req: &ChatRequest| {
        let last = &req.messages.last().unwrap().content;
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Answers { .. }) if last.contains("no usable answer") => {
                assert!(last.contains("999 is outside [0, 2]"), "{last}");
                r#"{"responses": [{"answer": 1.25, "probability": 1.0}]}"#.to_string()
            }
            Some(OutputConstraint::Answers { .. }) => {
                r#"{"responses": [{"answer": 999, "probability": 0.5}, {"answer": 899, "probability": 0.5}]}"#
                    .to_string()
            }
            Some(OutputConstraint::Candidates { max_items, .. }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|i| format!(r#"{{"text": "Hi ({i})", "probability": 0.3}}"#))
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(", "))
            }
            _ => "Would you give?".to_string(),
        })
    });
    let scenario = scenario("");
    let shared: SharedModel = Arc::new(model);
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: shared.clone() }).collect();
    let personas = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas");
    let population = Population::load(personas.to_str().unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = RunConfig {
        n: Some(1),
        seed: 2,
        concurrency: 1,
        out_dir: tmp.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    run_experiment(Arc::new(scenario), &population, &models, &config).await.unwrap();
    let events = read_events(&tmp.path().join("transcripts.jsonl")).unwrap();
    let o = events["d00000"]
        .iter()
        .find_map(|e| match e {
            Event::Outcome(o) => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(o.value.unwrap().as_f64(), Some(1.25));
    assert_eq!(o.source, OutcomeSource::Question);
    assert!(o.raw.contains("999") && o.raw.contains("1.25"), "{}", o.raw);
}
