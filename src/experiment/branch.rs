//! Branching a recorded dialogue: what would have happened had another candidate been
//! chosen at turn T?
//!
//! The turns before T are replayed exactly from the transcript (no model is called), turn
//! T's text is replaced by candidate J of that turn, and the dialogue then continues M
//! times, branch i with seed `derive(original dialogue seed, i)`. The result is an ordinary
//! run directory whose `config.json` records where the branch came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::budget::Meter;
use super::runner::{
    completed_ids, dialogue_id, drive_to_summary, prepare_run_dir, Drive, RoleModel, RunError, RunOptions,
    RunSummary,
};
use super::transcript::{read_events, TranscriptError};
use crate::dialogue::events::{BeginEvent, TurnEvent};
use crate::dialogue::{AgentSetup, DialogueSetup, Event};
use crate::scenario::{load_scenario, Scenario};
use crate::seed;
use crate::vs::Generator;

/// Which dialogue to branch, where, and how.
#[derive(Debug, Clone)]
pub struct BranchRequest {
    pub run_dir: PathBuf,
    /// The dialogue id, e.g. `d00003`.
    pub dialogue: String,
    /// The turn (0-based, as in the transcript) whose text is replaced.
    pub turn: usize,
    /// The candidate (0-based index into that turn's candidates) taken instead.
    pub candidate: usize,
    /// The scenario file, when it is no longer at the path recorded in `config.json`.
    pub scenario_path: Option<PathBuf>,
}

/// A dialogue prepared for branching.
#[derive(Debug, Clone)]
pub struct BranchSource {
    pub request: BranchRequest,
    pub scenario: Scenario,
    /// The original run's `config.json`.
    pub config: Value,
    /// The original dialogue's `begin` event (agents, system prompts, seed).
    pub begin: BeginEvent,
    /// Turns 0..=T as replayed: T with candidate J's text.
    pub prefix: Vec<TurnEvent>,
    /// The model spec of each role in the original run, in role order.
    pub role_models: Vec<String>,
}

/// How many branches to run, and where.
#[derive(Debug, Clone)]
pub struct BranchConfig {
    pub n: usize,
    pub concurrency: usize,
    pub out_dir: PathBuf,
    pub resume: bool,
    pub progress: bool,
}

/// Why a dialogue cannot be branched.
#[derive(Debug, thiserror::Error)]
pub enum BranchError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    #[error("{}: config.json is not valid JSON: {reason}", dir.display())]
    BadConfig { dir: PathBuf, reason: String },
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error("the scenario file {} changed since the run (`{field}` differs); pass the original with --scenario", path.display())]
    ScenarioChanged { path: PathBuf, field: String },
    #[error("no dialogue `{dialogue}` in {}", run_dir.display())]
    NoDialogue { run_dir: PathBuf, dialogue: String },
    #[error("dialogue `{dialogue}` has no turn {turn} (it has {turns} turns, numbered from 0)")]
    NoTurn { dialogue: String, turn: usize, turns: usize },
    #[error("turn {turn} of `{dialogue}` has {candidates} candidates (numbered from 0); there is no candidate {candidate}")]
    NoCandidate { dialogue: String, turn: usize, candidate: usize, candidates: usize },
    #[error("dialogue `{0}` does not match the scenario's roles")]
    Roles(String),
}

/// Reads the run directory and prepares dialogue `request.dialogue` for branching at
/// `request.turn` with `request.candidate`.
pub fn load_branch(request: &BranchRequest) -> Result<BranchSource, BranchError> {
    let dir = &request.run_dir;
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .map_err(|source| BranchError::Io { path: config_path, source })?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| BranchError::BadConfig { dir: dir.clone(), reason: e.to_string() })?;
    let recorded = config.get("scenario").cloned().unwrap_or_default();
    let path = match &request.scenario_path {
        Some(p) => p.clone(),
        None => PathBuf::from(recorded.get("source").and_then(Value::as_str).unwrap_or_default()),
    };
    let mut scenario = load_scenario(&path)?;
    apply_recorded_roles(&mut scenario, &recorded);
    if let Some(field) = first_difference(&scenario.resolved(), &recorded) {
        return Err(BranchError::ScenarioChanged { path, field });
    }

    let mut all = read_events(&dir.join("transcripts.jsonl"))?;
    let events = all.remove(&request.dialogue).ok_or_else(|| BranchError::NoDialogue {
        run_dir: dir.clone(),
        dialogue: request.dialogue.clone(),
    })?;
    let start = events.iter().rposition(|e| matches!(e, Event::Begin(_))).unwrap_or(0);
    let attempt = &events[start..];
    let Some(Event::Begin(begin)) = attempt.first().cloned() else {
        return Err(BranchError::NoDialogue { run_dir: dir.clone(), dialogue: request.dialogue.clone() });
    };
    let turns: Vec<TurnEvent> =
        attempt.iter().filter_map(|e| if let Event::Turn(t) = e { Some(t.clone()) } else { None }).collect();
    let Some(at) = turns.get(request.turn) else {
        return Err(BranchError::NoTurn {
            dialogue: request.dialogue.clone(),
            turn: request.turn,
            turns: turns.len(),
        });
    };
    let Some(candidate) = at.candidates.get(request.candidate) else {
        return Err(BranchError::NoCandidate {
            dialogue: request.dialogue.clone(),
            turn: request.turn,
            candidate: request.candidate,
            candidates: at.candidates.len(),
        });
    };
    let mut replaced = at.clone();
    replaced.text = candidate.text.clone();
    replaced.choice.index = request.candidate;
    replaced.choice.draw = None;
    replaced.next_speaker = None;
    let mut prefix = turns[..request.turn].to_vec();
    prefix.push(replaced);

    if begin.agents.len() != scenario.roles.len()
        || begin.agents.iter().zip(&scenario.roles).any(|(a, r)| a.role != r.id)
    {
        return Err(BranchError::Roles(request.dialogue.clone()));
    }
    let role_models: Vec<String> = scenario
        .roles
        .iter()
        .zip(&begin.agents)
        .map(|(r, a)| {
            config
                .get("models")
                .and_then(Value::as_array)
                .and_then(|ms| {
                    ms.iter().find(|m| m.get("role").and_then(Value::as_str) == Some(r.id.as_str()))
                })
                .and_then(|m| m.get("model").and_then(Value::as_str))
                .unwrap_or(a.model.as_str())
                .to_string()
        })
        .collect();
    Ok(BranchSource { request: request.clone(), scenario, config, begin, prefix, role_models })
}

/// Sets each role's method, k, rule and sampling settings to those recorded in the run (so
/// command-line overrides of the original run carry over).
fn apply_recorded_roles(scenario: &mut Scenario, recorded: &Value) {
    let Some(roles) = recorded.get("roles").and_then(Value::as_array) else { return };
    for (spec, rec) in scenario.roles.iter_mut().zip(roles) {
        fn take<T: serde::de::DeserializeOwned>(rec: &Value, key: &str, into: &mut T) {
            if let Some(v) = rec.get(key).and_then(|v| serde_json::from_value(v.clone()).ok()) {
                *into = v;
            }
        }
        take(rec, "method", &mut spec.method);
        take(rec, "k", &mut spec.k);
        take(rec, "rule", &mut spec.rule);
        take(rec, "tau", &mut spec.tau);
        take(rec, "candidates", &mut spec.candidates);
        take(rec, "temperature", &mut spec.temperature);
        take(rec, "top_p", &mut spec.top_p);
        take(rec, "max_tokens", &mut spec.max_tokens);
        take(rec, "model", &mut spec.model);
    }
}

/// The first top-level field (other than `source`) where two resolved scenarios differ.
fn first_difference(now: &Value, recorded: &Value) -> Option<String> {
    let keys: std::collections::BTreeSet<&String> =
        now.as_object().into_iter().chain(recorded.as_object()).flat_map(|o| o.keys()).collect();
    keys.into_iter()
        .filter(|k| k.as_str() != "source")
        .find(|k| now.get(k.as_str()) != recorded.get(k.as_str()))
        .cloned()
}

/// Runs `config.n` continuations of `source`, written as a run directory.
pub async fn run_branch(
    source: &BranchSource,
    models: &[RoleModel],
    config: &BranchConfig,
    options: &RunOptions,
) -> Result<RunSummary, RunError> {
    let scenario = Arc::new(source.scenario.clone());
    if models.len() != scenario.roles.len() {
        return Err(RunError::Models { expected: scenario.roles.len(), got: models.len() });
    }
    let req = &source.request;
    let resolved = json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "scenario": source.config.get("scenario"),
        "population": source.config.get("population"),
        "n": config.n,
        "seed": source.begin.seed,
        "models": scenario.roles.iter().zip(models).map(|(r, m)| json!({"role": r.id, "model": m.name})).collect::<Vec<_>>(),
        "branch": {
            "from": req.run_dir,
            "dialogue": req.dialogue,
            "turn": req.turn,
            "candidate": req.candidate,
            "text": source.prefix.last().map(|t| t.text.clone()),
            "dialogue_seed": source.begin.seed,
            "experiment_seed": source.config.get("seed"),
        },
    });
    let meter = Meter::default();
    let metered: Vec<RoleModel> = models
        .iter()
        .map(|m| RoleModel {
            name: m.name.clone(),
            model: meter.wrap(&m.name, m.model.clone(), &options.prices),
        })
        .collect();
    let extractors = super::runner::meter_extractors(&scenario, &meter, options)?;
    if options.budget.max_cost_usd.is_some() && !meter.unpriced().is_empty() {
        return Err(RunError::Unpriced(meter.unpriced()));
    }
    let dir = &config.out_dir;
    let transcript_path =
        prepare_run_dir(dir, &resolved, config.resume, &["scenario", "n", "seed", "models", "branch"])?;
    let done = completed_ids(&transcript_path)?;

    let generator = Arc::new(Generator::new(scenario.templates.clone()));
    let pending: Vec<usize> = (0..config.n).filter(|i| !done.contains(&dialogue_id(*i))).collect();
    let make = |i: usize| {
        Ok(DialogueSetup {
            id: dialogue_id(i),
            index: i as u64,
            seed: seed::derive(source.begin.seed, i as u64),
            population_id: source.begin.population_id.clone(),
            scenario: scenario.clone(),
            extractors: extractors.clone(),
            agents: source
                .begin
                .agents
                .iter()
                .zip(&metered)
                .map(|(a, m)| AgentSetup {
                    model: m.model.clone(),
                    model_name: m.name.clone(),
                    persona_id: a.persona_id.clone(),
                    system_prompt: a.system_prompt.clone(),
                })
                .collect(),
            generator: generator.clone(),
            prefix: source.prefix.clone(),
        })
    };
    let drive = Drive {
        concurrency: config.concurrency,
        budget: options.budget,
        meter: &meter,
        progress: config.progress,
        total: config.n as u64,
        already: (config.n - pending.len()) as u64,
    };
    drive_to_summary(dir, &scenario, &transcript_path, pending, make, &drive, None).await
}

/// The default output directory of a branch: `RUN_DIR/branches/DIALOGUE-tT-cJ`.
pub fn default_branch_dir(run_dir: &Path, dialogue: &str, turn: usize, candidate: usize) -> PathBuf {
    run_dir.join("branches").join(format!("{dialogue}-t{turn}-c{candidate}"))
}
