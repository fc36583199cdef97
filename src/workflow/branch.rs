//! Branching a recorded dialogue: what would have happened had another candidate been
//! chosen at turn T?
//!
//! The turns before T are replayed exactly from the transcript (no model is called), turn
//! T's text is replaced by candidate J of that turn, and the dialogue then continues M
//! times, branch i with seed `derive(original dialogue seed, i)`. The result is an ordinary
//! run directory whose manifest records where the branch came from. The scenario is read
//! from the path pinned in the original run's manifest, and refused if it changed since.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::dialogue::events::{BeginEvent, TurnEvent};
use crate::dialogue::{AgentSetup, DialogueSetup, Event};
use crate::experiment::budget::Meter;
use crate::experiment::runner::{
    completed_ids, dialogue_id, drive_to_summary, Drive, RoleModel, RunError, RunOptions, RunSummary,
};
use crate::rundir::transcript::{read_events, TranscriptError};
use crate::rundir::{
    open_for_writing, read_manifest, BranchOrigin, InputChange, Manifest, RunDirError, RunKind,
};
use crate::scenario::{load_scenario, Scenario};
use crate::seed;
use crate::vs::Generator;

/// Which dialogue to branch, where, and how.
#[derive(Debug, Clone)]
pub struct BranchRequest {
    /// The original run's directory.
    pub run_dir: PathBuf,
    /// The dialogue id, e.g. `d00003`.
    pub dialogue: String,
    /// The turn (0-based, as in the transcript) whose text is replaced.
    pub turn: usize,
    /// The candidate (0-based index into that turn's candidates) taken instead.
    pub candidate: usize,
    /// The scenario file, when it is no longer at the path recorded in `config.json`.
    pub scenario_path: Option<PathBuf>,
    /// Go on although the run's scenario file changed since the run (the resolved scenario
    /// must still agree).
    pub allow_changed_inputs: bool,
}

/// A dialogue prepared for branching.
#[derive(Debug, Clone)]
pub struct BranchSource {
    /// What was asked for.
    pub request: BranchRequest,
    /// The original run's scenario, checked unchanged.
    pub scenario: Scenario,
    /// The original run's manifest.
    pub manifest: Manifest,
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
    /// Branches to run (M).
    pub n: usize,
    /// Branches in flight at once.
    pub concurrency: usize,
    /// The run directory the branches are written to.
    pub out_dir: PathBuf,
    /// Continue an existing branch directory: run only missing or failed branches.
    pub resume: bool,
    /// Who hears how the run goes.
    pub progress: crate::experiment::progress::RunProgress,
}

/// Why a dialogue cannot be branched.
#[derive(Debug, thiserror::Error)]
pub enum BranchError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The original transcript could not be read.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// A run directory could not be read or opened for writing.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// The scenario file changed since the run.
    #[error("{change}; give the original scenario, or allow changed inputs to go on")]
    InputChanged {
        /// What changed.
        change: InputChange,
    },
    /// The run's manifest records no scenario.
    #[error("{}: the run records no scenario; is it a dialogue run?", .0.display())]
    NoScenario(PathBuf),
    /// The scenario file could not be loaded.
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// The scenario resolves differently from the one the run recorded.
    #[error("the scenario file {} changed since the run (`{field}` differs); give the original scenario", path.display())]
    ScenarioChanged {
        /// The scenario file read.
        path: PathBuf,
        /// The first field that differs.
        field: String,
    },
    /// The run has no such dialogue.
    #[error("no dialogue `{dialogue}` in {}", run_dir.display())]
    NoDialogue {
        /// The run directory.
        run_dir: PathBuf,
        /// The dialogue id asked for.
        dialogue: String,
    },
    /// The dialogue has no such turn.
    #[error("dialogue `{dialogue}` has no turn {turn} (it has {turns} turns, numbered from 0)")]
    NoTurn {
        /// The dialogue's id.
        dialogue: String,
        /// The turn asked for.
        turn: usize,
        /// Turns the dialogue has.
        turns: usize,
    },
    /// The turn has no such candidate.
    #[error("turn {turn} of `{dialogue}` has {candidates} candidates (numbered from 0); there is no candidate {candidate}")]
    NoCandidate {
        /// The dialogue's id.
        dialogue: String,
        /// The turn.
        turn: usize,
        /// The candidate asked for.
        candidate: usize,
        /// Candidates the turn has.
        candidates: usize,
    },
    /// The dialogue's agents do not match the scenario's roles.
    #[error("dialogue `{0}` does not match the scenario's roles")]
    Roles(String),
}

/// Reads the run directory and prepares dialogue `request.dialogue` for branching at
/// `request.turn` with `request.candidate`.
pub fn load_branch(request: &BranchRequest) -> Result<BranchSource, BranchError> {
    let dir = &request.run_dir;
    let manifest = read_manifest(dir)?;
    let recorded = manifest.scenario.clone().ok_or_else(|| BranchError::NoScenario(dir.clone()))?;
    let pinned = manifest.input("scenario");
    let path = match (&request.scenario_path, pinned) {
        (Some(p), _) => p.clone(),
        (None, Some(pin)) => {
            if let Some(change) = pin.change().filter(|_| !request.allow_changed_inputs) {
                return Err(BranchError::InputChanged { change });
            }
            pin.path.clone()
        }
        (None, None) => manifest.scenario_source().ok_or_else(|| BranchError::NoScenario(dir.clone()))?,
    };
    let mut scenario = load_scenario(&path)?;
    apply_recorded_roles(&mut scenario, &recorded);
    if let Some(field) = first_difference(&scenario.resolved(), &recorded) {
        return Err(BranchError::ScenarioChanged { path, field });
    }

    let mut all = read_events(&dir.join(crate::rundir::TRANSCRIPTS))?;
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
            manifest
                .models
                .iter()
                .find(|m| m.role == r.id)
                .map_or(a.model.as_str(), |m| m.model.as_str())
                .to_string()
        })
        .collect();
    Ok(BranchSource { request: request.clone(), scenario, manifest, begin, prefix, role_models })
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
        take(rec, "method", &mut spec.sampling.method);
        take(rec, "k", &mut spec.sampling.k);
        take(rec, "rule", &mut spec.sampling.rule);
        take(rec, "tau", &mut spec.sampling.tau);
        take(rec, "candidates", &mut spec.sampling.candidates);
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
    let mut manifest = Manifest::new(RunKind::Branch, config.n, source.begin.seed);
    manifest.scenario = source.manifest.scenario.clone();
    manifest.population = source.manifest.population.clone();
    manifest.inputs = source.manifest.inputs.clone();
    manifest.models = crate::experiment::runner::role_model_names(&scenario, models);
    manifest.branch = Some(BranchOrigin {
        from: std::path::absolute(&req.run_dir).unwrap_or_else(|_| req.run_dir.clone()),
        dialogue: req.dialogue.clone(),
        turn: req.turn,
        candidate: req.candidate,
        text: source.prefix.last().map(|t| t.text.clone()),
        dialogue_seed: source.begin.seed,
        experiment_seed: source.manifest.seed,
    });
    let meter = Meter::with_budget(options.budget);
    let metered: Vec<RoleModel> = models
        .iter()
        .map(|m| RoleModel {
            name: m.name.clone(),
            model: meter.wrap(&m.name, m.model.clone(), &options.prices),
        })
        .collect();
    let extractors = crate::experiment::runner::meter_extractors(&scenario, &meter, options)?;
    if options.budget.max_cost_usd.is_some() && !meter.unpriced().is_empty() {
        return Err(RunError::Unpriced(meter.unpriced()));
    }
    let dir = &config.out_dir;
    let run = open_for_writing(dir, &manifest, config.resume)?;
    let done = completed_ids(&run.transcript)?;

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
        progress: config.progress.clone(),
        unit: "branches",
        max_consecutive_failures: options.max_consecutive_failures,
        total: config.n as u64,
        already: (config.n - pending.len()) as u64,
        interrupt: options.interrupt.clone(),
    };
    drive_to_summary(&run, &scenario, pending, make, &drive, None).await
}

/// The default output directory of a branch: `RUN_DIR/branches/DIALOGUE-tT-cJ`.
pub fn default_branch_dir(run_dir: &Path, dialogue: &str, turn: usize, candidate: usize) -> PathBuf {
    run_dir.join("branches").join(format!("{dialogue}-t{turn}-c{candidate}"))
}
