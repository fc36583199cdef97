//! The experiment runner: one dialogue per population assignment, run concurrently with
//! seeds derived from (experiment seed, dialogue index), so results never depend on the
//! concurrency level, completion order or sharding; finished dialogues are never lost or
//! repeated. It also meters tokens and cost, stops starting dialogues once a budget is
//! spent, and runs one deterministic shard of an experiment when asked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dialogue::run::Extractors;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde_json::json;

use crate::rundir::{
    open_for_writing, Manifest, PinError, PinnedInput, RoleModelName, RunDirError, RunKind, WritableRun,
};

use super::budget::{Budget, Meter, Prices, Spend};
use super::population::Population;
use super::progress::{RunEvent, RunProgress};
use crate::backend::{SharedModel, Usage};
use crate::dialogue::run::DialogueRecord;
use crate::dialogue::{run_dialogue, AgentSetup, DialogueSetup};
use crate::persona::Persona;
use crate::rundir::outcomes::{
    outcome_columns, unanswered, write_outcomes_csv_from_transcript, OutcomeCounts,
};
use crate::rundir::transcript::{completed_dialogue_ids, TranscriptError, TranscriptWriter};
use crate::scenario::{PersonaSource, Scenario};
use crate::seed;
use crate::vs::Generator;

/// The model playing one role.
#[derive(Clone)]
pub struct RoleModel {
    /// The model spec as written in transcripts (e.g. `local`, `openai:gpt-4o-mini`).
    pub name: String,
    /// The backend.
    pub model: SharedModel,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Number of dialogues (default: one per population member).
    pub n: Option<usize>,
    /// The experiment seed; each dialogue's seed derives from it and the dialogue's index.
    pub seed: u64,
    /// Dialogues in flight at once.
    pub concurrency: usize,
    /// The run directory written to.
    pub out_dir: PathBuf,
    /// Continue an existing run directory: run only missing or failed dialogues.
    pub resume: bool,
    /// Who hears how the run goes (silent by default).
    pub progress: RunProgress,
}

pub use crate::rundir::Shard;

/// What a run may do beyond [`RunConfig`]: run one shard, stop at a budget, price models,
/// stop after repeated failures.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Run only this shard of the dialogues.
    pub shard: Option<Shard>,
    /// Token and cost caps.
    pub budget: Budget,
    /// Prices per model, for the cost cap and the cost report.
    pub prices: Prices,
    /// The models of outcomes' `stated_model`, by spec (metered like the roles' models).
    pub extractors: crate::dialogue::run::Extractors,
    /// Stop starting dialogues after this many failed in a row (0: never), so a dead or
    /// misconfigured backend costs minutes, not hours; `--resume` continues.
    pub max_consecutive_failures: usize,
    /// What stops the run early, keeping finished dialogues (default: Ctrl-C).
    pub interrupt: super::Interrupt,
    /// How many times each person is simulated (default 1). Replicate `r` of person `p` is
    /// dialogue `r × n + p`, with seed [`replicate_seed`]; every replicate of a person is
    /// paired with that person's one real value when the run is evaluated.
    pub replicates: usize,
}

/// The most replicates of one person a run may have.
pub(crate) const MAX_REPLICATES: usize = 10_000;

/// The seed of replicate `replicate` of person `person`: replicate 0 keeps the seed a run
/// without replicates gives (derived from the experiment seed and the person's index), and
/// later replicates derive from it, so adding replicates or people changes no other
/// dialogue's seed.
pub fn replicate_seed(experiment_seed: u64, person: usize, replicate: usize) -> u64 {
    let base = seed::derive(experiment_seed, person as u64);
    if replicate == 0 {
        base
    } else {
        seed::derive(base, replicate as u64)
    }
}

/// The most dialogues one experiment may have (`n`): checked before anything is allocated
/// for them.
pub const MAX_DIALOGUES: usize = 1_000_000;

/// Failed dialogues in a row after which a run stops starting new ones, by default.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: usize = 10;

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            shard: None,
            budget: Budget::default(),
            prices: Prices::default(),
            extractors: Default::default(),
            max_consecutive_failures: DEFAULT_MAX_CONSECUTIVE_FAILURES,
            interrupt: super::Interrupt::default(),
            replicates: 1,
        }
    }
}

/// What a run did: a run of dialogues, or a survey's (whose dialogues are its respondents,
/// and whose missing outcomes are unusable answers, keyed `respondent.ITEM`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    /// The run directory.
    pub out_dir: PathBuf,
    /// Dialogue and outcome counts over the whole run directory.
    pub counts: OutcomeCounts,
    /// Dialogues run by this invocation.
    pub ran: usize,
    /// Dialogues already complete from an earlier invocation.
    pub skipped: usize,
    /// Dialogues the run (or its shard) is to have in all, done or not.
    pub planned: usize,
    /// Dialogues of this invocation that failed.
    pub failed_now: usize,
    /// Tokens of this invocation's dialogues as recorded in their events (cache hits
    /// included).
    pub usage: Usage,
    /// What the models produced for this invocation (cache hits excluded) and its cost.
    pub spend: Spend,
    /// Why the run stopped before the end, when it did (serialized as `stop`, `null` when it
    /// ran to the end).
    pub stop: Option<super::StopCause>,
    /// Dialogues of this invocation that ended without a single outcome value (those of
    /// earlier invocations are in `counts.unanswered` only).
    pub unanswered_now: usize,
    /// Dialogues of this invocation never started (budget or interruption).
    pub not_started: usize,
    /// The shard run, when only one was.
    pub shard: Option<Shard>,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The transcript could not be read or written.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// The run directory could not be opened (or does not match the run asked for).
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// An input file could not be pinned in the manifest.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// A role's persona could not be found or its system prompt not rendered.
    #[error("role `{role}`: {reason}")]
    Persona {
        /// The role's id.
        role: String,
        /// What went wrong.
        reason: String,
    },
    /// The number of role models differs from the number of roles.
    #[error("expected {expected} role models, got {got}")]
    Models {
        /// Roles in the scenario.
        expected: usize,
        /// Models given.
        got: usize,
    },
    /// The shard index or count is invalid.
    #[error("invalid shard: {0}")]
    Shard(String),
    /// The population has no members.
    #[error("population `{0}` has no members")]
    EmptyPopulation(String),
    /// More dialogues were asked for than one experiment may have.
    #[error("n = {0} dialogues is more than the limit of {MAX_DIALOGUES}")]
    TooManyDialogues(usize),
    /// The number of replicates is out of range.
    #[error("replicates = {0}: each person is simulated between 1 and {MAX_REPLICATES} times")]
    Replicates(usize),
    /// A cost cap was set but some models have no price.
    #[error("a cost cap needs a price for every model; none for: {}", .0.join(", "))]
    Unpriced(Vec<String>),
    /// An outcome's `stated_model` was not opened.
    #[error("the stated_model `{0}` of an outcome was not opened")]
    MissingExtractor(String),
}

impl RunError {
    /// Whether the run was refused for what it was asked to do (a bad request, exit code 2)
    /// rather than failing while doing it.
    pub fn is_input(&self) -> bool {
        if crate::fsutil::chain_has_refusal(self) {
            return true;
        }
        // A transcript line that is not an event is a damaged input, as `eval` says too.
        if matches!(
            self,
            RunError::Transcript(TranscriptError::BadLine { .. })
                | RunError::RunDir(RunDirError::Transcript(TranscriptError::BadLine { .. }))
        ) {
            return true;
        }
        match self {
            RunError::RunDir(e) => !matches!(e, RunDirError::Io { .. } | RunDirError::Transcript(_)),
            RunError::Pin(_)
            | RunError::Shard(_)
            | RunError::Unpriced(_)
            | RunError::TooManyDialogues(_)
            | RunError::Replicates(_) => true,
            RunError::Persona { .. }
            | RunError::Models { .. }
            | RunError::EmptyPopulation(_)
            | RunError::MissingExtractor(_)
            | RunError::Io { .. }
            | RunError::Transcript(_) => false,
        }
    }
}

/// Runs (or resumes) an experiment and writes its run directory.
pub async fn run_experiment(
    scenario: Arc<Scenario>,
    population: &Population,
    models: &[RoleModel],
    config: &RunConfig,
) -> Result<RunSummary, RunError> {
    run_experiment_with(scenario, population, models, config, &RunOptions::default()).await
}

/// [`run_experiment`] with a shard, a budget and prices.
pub async fn run_experiment_with(
    scenario: Arc<Scenario>,
    population: &Population,
    models: &[RoleModel],
    config: &RunConfig,
    options: &RunOptions,
) -> Result<RunSummary, RunError> {
    if models.len() != scenario.roles.len() {
        return Err(RunError::Models { expected: scenario.roles.len(), got: models.len() });
    }
    if let Some(s) = options.shard {
        Shard::new(s.index, s.count).map_err(RunError::Shard)?;
    }
    let dir = &config.out_dir;
    let people = config.n.unwrap_or(population.members.len());
    let replicates = options.replicates;
    if !(1..=MAX_REPLICATES).contains(&replicates) {
        return Err(RunError::Replicates(replicates));
    }
    let n = people
        .checked_mul(replicates)
        .filter(|n| *n <= MAX_DIALOGUES)
        .ok_or(RunError::TooManyDialogues(people.saturating_mul(replicates)))?;
    let mut manifest = Manifest::new(RunKind::Dialogue, n, config.seed);
    manifest.replicates = replicates;
    manifest.scenario = Some(scenario.resolved());
    manifest.population = Some(population.spec.clone());
    manifest.population_reference = population.reference.clone();
    manifest.shard = options.shard;
    manifest.models = role_model_names(&scenario, models);
    if scenario.source.is_file() {
        manifest.inputs.push(PinnedInput::pin("scenario", &scenario.source)?);
    }
    if let Some((role, path)) = population.input() {
        manifest.inputs.push(PinnedInput::pin(role, &path)?);
    }
    if population.members.is_empty() {
        return Err(RunError::EmptyPopulation(population.spec.clone()));
    }
    let generator = Arc::new(Generator::new(scenario.templates.clone()));
    let meter = Meter::with_budget(options.budget);
    let metered: Vec<RoleModel> = models
        .iter()
        .map(|m| RoleModel {
            name: m.name.clone(),
            model: meter.wrap(&m.name, m.model.clone(), &options.prices),
        })
        .collect();
    let extractors = meter_extractors(&scenario, &meter, options)?;
    if options.budget.max_cost_usd.is_some() && !meter.unpriced().is_empty() {
        return Err(RunError::Unpriced(meter.unpriced()));
    }
    // A dialogue's prompts depend only on its population member, so checking one dialogue
    // per member finds every error before anything runs; dialogues are then built as they
    // start, keeping memory flat however many there are.
    let people = People { count: people, replicates };
    for index in 0..people.count.min(population.members.len()) {
        build_setup(&scenario, population, &metered, &extractors, &generator, config.seed, people, index)?;
    }
    let run = open_for_writing(dir, &manifest, config.resume)?;
    let done = completed_ids(&run.transcript)?;
    let planned = (0..n).filter(|i| options.shard.is_none_or(|s| s.contains(*i))).count();
    let pending: Vec<usize> = (0..n)
        .filter(|i| options.shard.is_none_or(|s| s.contains(*i)) && !done.contains(&dialogue_id(*i)))
        .collect();
    let skipped = planned - pending.len();
    let make = |index: usize| {
        build_setup(&scenario, population, &metered, &extractors, &generator, config.seed, people, index)
    };

    let drive = Drive {
        concurrency: config.concurrency,
        budget: options.budget,
        meter: &meter,
        progress: config.progress.clone(),
        unit: "dialogues",
        max_consecutive_failures: options.max_consecutive_failures,
        total: planned as u64,
        already: skipped as u64,
        interrupt: options.interrupt.clone(),
    };
    drive_to_summary(&run, &scenario, pending, make, &drive, options.shard).await
}

/// The model of each role, in role order, as the manifest records them.
pub(crate) fn role_model_names(scenario: &Scenario, models: &[RoleModel]) -> Vec<RoleModelName> {
    scenario
        .roles
        .iter()
        .zip(models)
        .map(|(r, m)| RoleModelName { role: r.id.clone(), model: m.name.clone() })
        .collect()
}

/// Drives `pending` into the run's transcript, rebuilds `outcomes.csv` from the transcript
/// and summarises the invocation.
pub(crate) async fn drive_to_summary(
    run: &WritableRun,
    scenario: &Scenario,
    pending: Vec<usize>,
    make: impl Fn(usize) -> Result<DialogueSetup, RunError>,
    d: &Drive<'_>,
    shard: Option<Shard>,
) -> Result<RunSummary, RunError> {
    let mut writer = TranscriptWriter::open(&run.transcript)?;
    let driven = drive(pending, |i| make(i).map(|setup| run_dialogue(setup).boxed()), &mut writer, d).await?;
    drop(writer);

    let counts = write_outcomes_csv_from_transcript(
        &run.dir.join(crate::rundir::OUTCOMES),
        &outcome_columns(scenario),
        &run.transcript,
    )?;
    Ok(RunSummary {
        out_dir: run.dir.clone(),
        counts,
        ran: driven.ran,
        skipped: d.already as usize,
        planned: d.total as usize,
        failed_now: driven.failed_now,
        usage: driven.usage,
        spend: d.meter.spend(),
        stop: driven.stop(),
        unanswered_now: driven.unanswered_now,
        not_started: driven.not_started,
        shard,
    })
}

/// Ids of the dialogues of a transcript that have a completed attempt.
pub(crate) fn completed_ids(transcript_path: &Path) -> Result<HashSet<String>, RunError> {
    if !transcript_path.exists() {
        return Ok(HashSet::new());
    }
    Ok(completed_dialogue_ids(transcript_path)?)
}

/// How to drive a batch of dialogues.
pub(crate) struct Drive<'a> {
    pub concurrency: usize,
    pub budget: Budget,
    pub meter: &'a Meter,
    pub progress: RunProgress,
    /// What is being run, for progress messages: `dialogues`, `respondents`.
    pub unit: &'static str,
    /// Stop starting after this many failures in a row (0: never).
    pub max_consecutive_failures: usize,
    /// Dialogues this invocation is responsible for, finished ones included.
    pub total: u64,
    /// Of those, already finished before this invocation.
    pub already: u64,
    /// What stops the batch early.
    pub interrupt: super::Interrupt,
}

/// What driving did.
pub(crate) struct Driven {
    pub ran: usize,
    pub failed_now: usize,
    pub usage: Usage,
    pub interrupted: bool,
    pub budget_stop: Option<String>,
    pub halted: Option<String>,
    pub not_started: usize,
    /// Dialogues cut at the cap (a call refused for the budget); included in `not_started`.
    pub cut_by_budget: usize,
    /// Dialogues of this invocation that ended without a single outcome value.
    pub unanswered_now: usize,
}

impl Driven {
    /// Why the batch stopped before the end, when it did.
    pub fn stop(&self) -> Option<super::StopCause> {
        super::StopCause::of(self.interrupted, self.halted.clone(), self.budget_stop.clone())
    }
}

/// Whether `record` ended without a single outcome value ([`unanswered`]).
fn record_unanswered(record: &DialogueRecord) -> bool {
    !record.failed
        && unanswered(record.events.iter().filter_map(|e| match e {
            crate::dialogue::Event::Outcome(o) => Some(o.value.is_some()),
            _ => None,
        }))
}

/// The budget reason when `record` failed only because a call was refused at the cap.
fn cut_by_budget(record: &DialogueRecord) -> Option<String> {
    record.budget_cut.clone().filter(|_| record.failed)
}

/// One dialogue (or survey respondent) to run: it resolves to its events, never fails.
pub(crate) type Unit = futures::future::BoxFuture<'static, DialogueRecord>;

/// Runs the dialogues `pending` (built by `make` as they start) with at most `concurrency`
/// in flight, writing each finished dialogue whole.
/// Before each start the budget is checked; once it is spent nothing new starts, and the
/// dialogues in flight finish and are written. An interrupt (Ctrl-C) stops at once (finished dialogues are
/// on disk; `--resume` continues).
// Long on purpose: the one loop that starts, joins and records dialogues under concurrency, budget, failure and interrupt limits; its state is shared by every branch of the select.
pub(crate) async fn drive(
    pending: Vec<usize>,
    make: impl Fn(usize) -> Result<Unit, RunError>,
    writer: &mut TranscriptWriter,
    d: &Drive<'_>,
) -> Result<Driven, RunError> {
    let progress = &d.progress;
    progress.emit(RunEvent::Started { total: d.total, already: d.already, unit: d.unit });
    let mut done = d.already;
    let mut queue = pending.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let mut out = Driven {
        ran: 0,
        failed_now: 0,
        usage: Usage::default(),
        interrupted: false,
        budget_stop: None,
        halted: None,
        not_started: 0,
        cut_by_budget: 0,
        unanswered_now: 0,
    };
    let mut failures_in_a_row = 0;
    let interrupted = d.interrupt.wait();
    tokio::pin!(interrupted);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        while out.budget_stop.is_none()
            && out.halted.is_none()
            && in_flight.len() < d.concurrency.max(1)
            && queue.len() > 0
        {
            if let Some(reason) = d.budget.reached(&d.meter.spend()) {
                progress.emit(RunEvent::BudgetStop { reason: reason.clone(), in_flight: in_flight.len() });
                out.budget_stop = Some(reason);
                break;
            }
            if let Some(index) = queue.next() {
                in_flight.push(make(index)?);
            }
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            next = in_flight.next() => {
                let Some(first) = next else { continue };
                // Dialogues that finished together are written with one flush.
                let mut batch = vec![first];
                while batch.len() < 4096 {
                    match in_flight.next().now_or_never() {
                        Some(Some(record)) => batch.push(record),
                        _ => break,
                    }
                }
                // Dialogues cut at the cap before their next call are not written, so
                // `--resume` runs them whole; they count as not started, not as failed.
                let (cut, finished): (Vec<_>, Vec<_>) =
                    batch.into_iter().map(|r| (cut_by_budget(&r), r)).partition(|(c, _)| c.is_some());
                writer.append_many(finished.iter().map(|(_, r)| r.events.as_slice()))?;
                for (reason, record) in cut {
                    let reason = reason.unwrap_or_default();
                    out.cut_by_budget += 1;
                    out.usage += record.usage;
                    if out.budget_stop.is_none() {
                        progress.emit(RunEvent::BudgetStop { reason: reason.clone(), in_flight: in_flight.len() });
                        out.budget_stop = Some(reason);
                    }
                }
                for (_, record) in finished {
                    out.ran += 1;
                    done += 1;
                    out.usage += record.usage;
                    out.unanswered_now += usize::from(record_unanswered(&record));
                    let error = if record.failed {
                        out.failed_now += 1;
                        Some(match record.events.last() {
                            Some(crate::dialogue::Event::Error(e)) => e.message.clone(),
                            _ => "failed".to_string(),
                        })
                    } else {
                        None
                    };
                    let id = record.events.first().map(|e| e.dialogue().to_string()).unwrap_or_default();
                    match &error {
                        Some(cause) => {
                            failures_in_a_row += 1;
                            if d.max_consecutive_failures > 0
                                && failures_in_a_row >= d.max_consecutive_failures
                                && out.halted.is_none()
                            {
                                let reason = format!(
                                    "{failures_in_a_row} {} in a row failed, the last with: {cause}",
                                    d.unit
                                );
                                progress.emit(RunEvent::Halted { reason: reason.clone() });
                                out.halted = Some(reason);
                            }
                        }
                        None => failures_in_a_row = 0,
                    }
                    progress.emit(RunEvent::Finished {
                        id,
                        error,
                        done,
                        failed: out.failed_now as u64,
                        spend: d.meter.spend(),
                    });
                }
            }
            _ = &mut interrupted => {
                out.interrupted = true;
                progress.emit(RunEvent::Interrupted);
                break;
            }
            _ = tick.tick(), if progress.is_active() => {
                progress.emit(RunEvent::Tick { done, failed: out.failed_now as u64, spend: d.meter.spend() });
            }
        }
    }
    out.not_started = queue.len() + out.cut_by_budget + if out.interrupted { in_flight.len() } else { 0 };
    progress.emit(RunEvent::Ended);
    Ok(out)
}

/// The id of dialogue `index` (sortable).
pub fn dialogue_id(index: usize) -> String {
    RunKind::Dialogue.unit_id(index)
}

/// The extractor models of `scenario`'s `stated_model`s from `options`, metered; a missing
/// one is an error before anything runs.
pub(crate) fn meter_extractors(
    scenario: &Scenario,
    meter: &Meter,
    options: &RunOptions,
) -> Result<Extractors, RunError> {
    let mut out = std::collections::HashMap::new();
    for spec in scenario.stated_models() {
        let model =
            options.extractors.0.get(&spec).ok_or_else(|| RunError::MissingExtractor(spec.clone()))?;
        out.insert(spec.clone(), meter.wrap(&spec, model.clone(), &options.prices));
    }
    Ok(Extractors(Arc::new(out)))
}

/// How dialogue indices map to people: `count` people, each run `replicates` times.
#[derive(Debug, Clone, Copy)]
struct People {
    count: usize,
    replicates: usize,
}

impl People {
    /// The person and replicate of dialogue `index` (replicate-major, so a run stopped early
    /// has covered people before it repeats them).
    fn of(self, index: usize) -> (usize, usize) {
        (index % self.count, index / self.count)
    }
}

#[allow(clippy::too_many_arguments)]
fn build_setup(
    scenario: &Arc<Scenario>,
    population: &Population,
    models: &[RoleModel],
    extractors: &Extractors,
    generator: &Arc<Generator>,
    experiment_seed: u64,
    people: People,
    index: usize,
) -> Result<DialogueSetup, RunError> {
    let (person, replicate) = people.of(index);
    debug_assert!(replicate < people.replicates);
    let member = &population.members[person % population.members.len()];
    let personas: Vec<Option<&Persona>> = scenario
        .roles
        .iter()
        .map(|r| match &r.persona {
            PersonaSource::Population => Ok(Some(&member.persona)),
            PersonaSource::Paired => Ok(member.partner.as_ref()),
            PersonaSource::None => Ok(None),
            PersonaSource::Fixed(id) => population.find(id).map(Some).ok_or_else(|| RunError::Persona {
                role: r.id.clone(),
                reason: format!("no persona with id `{id}` in the population"),
            }),
        })
        .collect::<Result<_, _>>()?;
    let mut agents = Vec::new();
    for (i, role) in scenario.roles.iter().enumerate() {
        let partner = personas.iter().enumerate().find(|(j, p)| *j != i && p.is_some()).and_then(|(_, p)| *p);
        let system_prompt = render_system(scenario, i, personas[i], partner)
            .map_err(|reason| RunError::Persona { role: role.id.clone(), reason })?;
        agents.push(AgentSetup {
            model: models[i].model.clone(),
            model_name: models[i].name.clone(),
            persona_id: personas[i].map(|p| p.id.clone()),
            system_prompt,
        });
    }
    Ok(DialogueSetup {
        id: dialogue_id(index),
        index: index as u64,
        seed: replicate_seed(experiment_seed, person, replicate),
        population_id: Some(member.persona.id.clone()),
        scenario: scenario.clone(),
        agents,
        generator: generator.clone(),
        extractors: extractors.clone(),
        prefix: Vec::new(),
    })
}

fn persona_value(p: &Persona) -> serde_json::Value {
    let attributes: serde_json::Map<String, serde_json::Value> =
        p.attributes.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "id": p.id,
        "name": p.name.clone().unwrap_or_else(|| p.id.clone()),
        "description": p.description.clone().unwrap_or_default(),
        "attributes": attributes,
        "profile": p.render(),
    })
}

/// Renders role `i`'s system prompt with its persona (and its partner's) in the slots.
pub fn render_system(
    scenario: &Scenario,
    i: usize,
    persona: Option<&Persona>,
    partner: Option<&Persona>,
) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let role = &scenario.roles[i];
    let mut ctx = serde_json::Map::new();
    if let Some(p) = persona {
        let shown = match &role.persona_attributes {
            Some(keys) => {
                let mut shown = p.clone();
                shown.attributes.retain(|(k, _)| keys.iter().any(|key| key == k));
                std::borrow::Cow::Owned(shown)
            }
            None => std::borrow::Cow::Borrowed(p),
        };
        ctx.insert("persona".into(), persona_value(&shown));
    }
    if let Some(p) = partner {
        ctx.insert("partner".into(), persona_value(p));
    }
    ctx.insert("role".into(), json!({"id": role.id, "name": role.name}));
    ctx.insert(
        "roles".into(),
        json!(scenario.roles.iter().map(|r| json!({"id": r.id, "name": r.name})).collect::<Vec<_>>()),
    );
    ctx.insert(
        "scenario".into(),
        json!({"name": scenario.name, "description": scenario.description.clone().unwrap_or_default()}),
    );
    env.render_str(&role.system, serde_json::Value::Object(ctx)).map(|s| s.trim().to_string()).map_err(|e| {
        let what = e.detail().map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind()));
        match (&role.system_origin, e.line()) {
            (Some((file, first)), Some(line)) => {
                let text = role.system.lines().nth(line - 1).unwrap_or_default().trim();
                format!("{}:{}: system prompt template: {what} in `{text}`", file.display(), first + line - 1)
            }
            (Some((file, first)), None) => {
                format!("{}:{first}: system prompt template: {what}", file.display())
            }
            (None, _) => format!("system prompt template: {e}"),
        }
    })
}
