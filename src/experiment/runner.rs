//! The experiment runner: one dialogue per population assignment, run concurrently with
//! seeds derived from (experiment seed, dialogue index), so results never depend on the
//! concurrency level, completion order or sharding; finished dialogues are never lost or
//! repeated. It also meters tokens and cost, stops starting dialogues once a budget is
//! spent, and runs one deterministic shard of an experiment when asked.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::dialogue::run::Extractors;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::budget::{Budget, Meter, Prices, Spend};
use super::outcomes::{outcome_columns, write_outcomes_csv_from_transcript, OutcomeCounts};
use super::population::Population;
use super::transcript::{completed_dialogue_ids, TranscriptError, TranscriptWriter};
use crate::backend::{SharedModel, Usage};
use crate::dialogue::{run_dialogue, AgentSetup, DialogueSetup};
use crate::persona::Persona;
use crate::scenario::{PersonaSource, Scenario};
use crate::seed;
use crate::vs::Generator;

/// The model playing one role.
#[derive(Clone)]
pub struct RoleModel {
    /// The model spec as written in transcripts (e.g. `local`, `openai:gpt-4o-mini`).
    pub name: String,
    pub model: SharedModel,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Number of dialogues (default: one per population member).
    pub n: Option<usize>,
    pub seed: u64,
    /// Dialogues in flight at once.
    pub concurrency: usize,
    pub out_dir: PathBuf,
    /// Continue an existing run directory: run only missing or failed dialogues.
    pub resume: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// One slice of an experiment: the dialogues whose index `i` has `i % count == index`.
/// Shards of one experiment share its seed, so merged shards equal an unsharded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count` (`index < count`).
    pub fn new(index: usize, count: usize) -> Result<Self, String> {
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: expected I/N with 0 <= I < N"));
        }
        Ok(Self { index, count })
    }

    /// Whether dialogue `i` belongs to this shard.
    pub fn contains(&self, i: usize) -> bool {
        self.count > 0 && i % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) =
            s.split_once('/').ok_or_else(|| format!("invalid shard `{s}`: expected I/N, e.g. 0/4"))?;
        let parse = |x: &str| {
            x.trim().parse::<usize>().map_err(|_| format!("invalid shard `{s}`: expected I/N, e.g. 0/4"))
        };
        Self::new(parse(i)?, parse(n)?)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a run may do beyond [`RunConfig`]: run one shard, stop at a budget, price models.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub shard: Option<Shard>,
    pub budget: Budget,
    pub prices: Prices,
    /// The models of outcomes' `stated_model`, by spec (metered like the roles' models).
    pub extractors: crate::dialogue::run::Extractors,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub out_dir: PathBuf,
    pub counts: OutcomeCounts,
    /// Dialogues run by this invocation.
    pub ran: usize,
    /// Dialogues already complete from an earlier invocation.
    pub skipped: usize,
    pub failed_now: usize,
    /// Tokens of this invocation's dialogues as recorded in their events (cache hits
    /// included).
    pub usage: Usage,
    /// What the models produced for this invocation (cache hits excluded) and its cost.
    pub spend: Spend,
    /// Stopped early by Ctrl-C; `--resume` continues.
    pub interrupted: bool,
    /// Why the run stopped starting dialogues before the end, when a budget was reached.
    pub budget_stop: Option<String>,
    /// Dialogues of this invocation never started (budget or interruption).
    pub not_started: usize,
    pub shard: Option<Shard>,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    #[error("{} already holds a run; pass --resume to continue it or choose another --out", .0.display())]
    Exists(PathBuf),
    #[error("cannot resume {}: its configuration differs ({field}); start a new run directory", dir.display())]
    ConfigMismatch { dir: PathBuf, field: String },
    #[error("role `{role}`: {reason}")]
    Persona { role: String, reason: String },
    #[error("expected {expected} role models, got {got}")]
    Models { expected: usize, got: usize },
    #[error("invalid shard: {0}")]
    Shard(String),
    #[error("population `{0}` has no members")]
    EmptyPopulation(String),
    #[error("a cost cap needs a price for every model; none for: {}; add --price MODEL=IN_PER_MTOK,OUT_PER_MTOK", .0.join(", "))]
    Unpriced(Vec<String>),
    #[error("the stated_model `{0}` of an outcome was not opened")]
    MissingExtractor(String),
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
    let n = config.n.unwrap_or(population.members.len());
    let mut resolved = json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "scenario": scenario.resolved(),
        "population": population.spec,
        "n": n,
        "seed": config.seed,
        "models": scenario.roles.iter().zip(models).map(|(r, m)| json!({"role": r.id, "model": m.name})).collect::<Vec<_>>(),
    });
    if let Some(shard) = options.shard {
        resolved["shard"] = json!(shard);
    }
    if let Some(reference) = &population.reference {
        resolved["population_reference"] = json!(reference);
    }
    if population.members.is_empty() {
        return Err(RunError::EmptyPopulation(population.spec.clone()));
    }
    let generator = Arc::new(Generator::new(scenario.templates.clone()));
    let meter = Meter::default();
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
    for index in 0..n.min(population.members.len()) {
        build_setup(&scenario, population, &metered, &extractors, &generator, config.seed, index)?;
    }
    let transcript_path = prepare_run_dir(
        dir,
        &resolved,
        config.resume,
        &["scenario", "population", "population_reference", "n", "seed", "models", "shard"],
    )?;
    let done = completed_ids(&transcript_path)?;
    let planned = (0..n).filter(|i| options.shard.is_none_or(|s| s.contains(*i))).count();
    let pending: Vec<usize> = (0..n)
        .filter(|i| options.shard.is_none_or(|s| s.contains(*i)) && !done.contains(&dialogue_id(*i)))
        .collect();
    let skipped = planned - pending.len();
    let make = |index: usize| {
        build_setup(&scenario, population, &metered, &extractors, &generator, config.seed, index)
    };

    let drive = Drive {
        concurrency: config.concurrency,
        budget: options.budget,
        meter: &meter,
        progress: config.progress,
        total: planned as u64,
        already: skipped as u64,
    };
    drive_to_summary(dir, &scenario, &transcript_path, pending, make, &drive, options.shard).await
}

/// Drives `pending` into the transcript at `transcript_path`, rebuilds `outcomes.csv` in
/// `dir` from the transcript and summarises the invocation.
pub(crate) async fn drive_to_summary(
    dir: &Path,
    scenario: &Scenario,
    transcript_path: &Path,
    pending: Vec<usize>,
    make: impl Fn(usize) -> Result<DialogueSetup, RunError>,
    d: &Drive<'_>,
    shard: Option<Shard>,
) -> Result<RunSummary, RunError> {
    let mut writer = TranscriptWriter::open(transcript_path)?;
    let driven = drive(pending, make, &mut writer, d).await?;
    drop(writer);

    let counts = write_outcomes_csv_from_transcript(
        &dir.join("outcomes.csv"),
        &outcome_columns(scenario),
        transcript_path,
    )?;
    Ok(RunSummary {
        out_dir: dir.to_path_buf(),
        counts,
        ran: driven.ran,
        skipped: d.already as usize,
        failed_now: driven.failed_now,
        usage: driven.usage,
        spend: d.meter.spend(),
        interrupted: driven.interrupted,
        budget_stop: driven.budget_stop,
        not_started: driven.not_started,
        shard,
    })
}

/// Creates the run directory and writes `config.json`, refusing to overwrite an existing run
/// unless `resume`, and refusing to resume one whose `compare` fields differ. Returns the
/// transcript path.
pub(crate) fn prepare_run_dir(
    dir: &Path,
    resolved: &serde_json::Value,
    resume: bool,
    compare: &[&str],
) -> Result<PathBuf, RunError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let transcript_path = dir.join("transcripts.jsonl");
    let config_path = dir.join("config.json");
    if std::fs::metadata(&transcript_path).map(|m| m.len() > 0).unwrap_or(false) {
        if !resume {
            return Err(RunError::Exists(dir.to_path_buf()));
        }
        if let Ok(text) = std::fs::read_to_string(&config_path) {
            let old: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            for field in compare {
                if old.get(field) != resolved.get(field) {
                    return Err(RunError::ConfigMismatch {
                        dir: dir.to_path_buf(),
                        field: field.to_string(),
                    });
                }
            }
        }
    }
    write_atomic(&config_path, &serde_json::to_vec_pretty(resolved).unwrap_or_default())
        .map_err(io(&config_path))?;
    Ok(transcript_path)
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
    pub progress: bool,
    /// Dialogues this invocation is responsible for, finished ones included.
    pub total: u64,
    /// Of those, already finished before this invocation.
    pub already: u64,
}

/// What driving did.
pub(crate) struct Driven {
    pub ran: usize,
    pub failed_now: usize,
    pub usage: Usage,
    pub interrupted: bool,
    pub budget_stop: Option<String>,
    pub not_started: usize,
}

/// Runs the dialogues `pending` (built by `make` as they start) with at most `concurrency`
/// in flight, writing each finished dialogue whole.
/// Before each start the budget is checked; once it is spent nothing new starts, and the
/// dialogues in flight finish and are written. Ctrl-C stops at once (finished dialogues are
/// on disk; `--resume` continues).
pub(crate) async fn drive(
    pending: Vec<usize>,
    make: impl Fn(usize) -> Result<DialogueSetup, RunError>,
    writer: &mut TranscriptWriter,
    d: &Drive<'_>,
) -> Result<Driven, RunError> {
    let bar = if d.progress { ProgressBar::new(d.total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} dialogues · ETA {eta} · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(d.already);
    bar.reset_eta();
    let message = |failed: usize| {
        let spend = d.meter.spend();
        let done = bar.position().saturating_sub(failed as u64);
        format!("{done} done, {failed} failed · {spend}")
    };
    bar.set_message(message(0));

    let mut queue = pending.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let mut out = Driven {
        ran: 0,
        failed_now: 0,
        usage: Usage::default(),
        interrupted: false,
        budget_stop: None,
        not_started: 0,
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        while out.budget_stop.is_none() && in_flight.len() < d.concurrency.max(1) && queue.len() > 0 {
            if let Some(reason) = d.budget.reached(&d.meter.spend()) {
                bar.println(format!(
                    "{reason}: no new dialogues start; the {} in flight finish",
                    in_flight.len()
                ));
                out.budget_stop = Some(reason);
                break;
            }
            if let Some(index) = queue.next() {
                in_flight.push(run_dialogue(make(index)?));
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
                writer.append_many(batch.iter().map(|r| r.events.as_slice()))?;
                for record in batch {
                    out.ran += 1;
                    out.usage += record.usage;
                    if record.failed {
                        out.failed_now += 1;
                        if let Some(crate::dialogue::Event::Error(e)) = record.events.last() {
                            bar.println(format!("dialogue {} failed: {}", e.dialogue, e.message));
                        }
                    }
                    bar.inc(1);
                }
                bar.set_message(message(out.failed_now));
            }
            _ = &mut ctrl_c => {
                out.interrupted = true;
                bar.println("interrupted: finished dialogues are saved; run again with --resume to continue");
                break;
            }
            _ = tick.tick(), if d.progress => {
                bar.set_message(message(out.failed_now));
                bar.tick();
            }
        }
    }
    out.not_started = queue.len() + if out.interrupted { in_flight.len() } else { 0 };
    bar.finish_and_clear();
    Ok(out)
}

/// The id of dialogue `index` (sortable).
pub fn dialogue_id(index: usize) -> String {
    format!("d{index:05}")
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

fn build_setup(
    scenario: &Arc<Scenario>,
    population: &Population,
    models: &[RoleModel],
    extractors: &Extractors,
    generator: &Arc<Generator>,
    experiment_seed: u64,
    index: usize,
) -> Result<DialogueSetup, RunError> {
    let member = &population.members[index % population.members.len()];
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
        seed: seed::derive(experiment_seed, index as u64),
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
        ctx.insert("persona".into(), persona_value(p));
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
    env.render_str(&role.system, serde_json::Value::Object(ctx))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("system prompt template: {e}"))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
