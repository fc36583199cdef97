//! The experiment runner: one dialogue per population assignment, run concurrently with
//! seeds derived from (experiment seed, dialogue index), so results never depend on the
//! concurrency level or completion order; finished dialogues are never lost or repeated.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::outcomes::{write_outcomes_csv, OutcomeCounts};
use super::population::Population;
use super::transcript::{completed_attempt, read_events, TranscriptError, TranscriptWriter};
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
    pub usage: Usage,
    /// Stopped early by Ctrl-C; `--resume` continues.
    pub interrupted: bool,
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
}

/// Runs (or resumes) an experiment and writes its run directory.
pub async fn run_experiment(
    scenario: Arc<Scenario>,
    population: &Population,
    models: &[RoleModel],
    config: &RunConfig,
) -> Result<RunSummary, RunError> {
    if models.len() != scenario.roles.len() {
        return Err(RunError::Models { expected: scenario.roles.len(), got: models.len() });
    }
    let dir = &config.out_dir;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let transcript_path = dir.join("transcripts.jsonl");
    let config_path = dir.join("config.json");
    let n = config.n.unwrap_or(population.members.len());
    let resolved = json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "scenario": scenario.resolved(),
        "population": population.spec,
        "n": n,
        "seed": config.seed,
        "models": scenario.roles.iter().zip(models).map(|(r, m)| json!({"role": r.id, "model": m.name})).collect::<Vec<_>>(),
    });
    if transcript_path.exists() && std::fs::metadata(&transcript_path).map(|m| m.len() > 0).unwrap_or(false) {
        if !config.resume {
            return Err(RunError::Exists(dir.clone()));
        }
        if let Ok(text) = std::fs::read_to_string(&config_path) {
            let old: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            for field in ["scenario", "population", "n", "seed", "models"] {
                if old.get(field) != resolved.get(field) {
                    return Err(RunError::ConfigMismatch { dir: dir.clone(), field: field.to_string() });
                }
            }
        }
    }
    write_atomic(&config_path, &serde_json::to_vec_pretty(&resolved).unwrap_or_default()).map_err(io(&config_path))?;

    let done: std::collections::HashSet<String> = if transcript_path.exists() {
        read_events(&transcript_path)?
            .into_iter()
            .filter(|(_, evs)| completed_attempt(evs).is_some())
            .map(|(id, _)| id)
            .collect()
    } else {
        Default::default()
    };

    let generator = Arc::new(Generator::new(scenario.templates.clone()));
    let mut setups = Vec::new();
    for index in 0..n {
        let id = dialogue_id(index);
        if done.contains(&id) {
            continue;
        }
        setups.push(build_setup(&scenario, population, models, &generator, config.seed, index)?);
    }
    let skipped = n - setups.len();

    let bar = if config.progress { ProgressBar::new(n as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} dialogues, ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(skipped as u64);

    let mut writer = TranscriptWriter::open(&transcript_path)?;
    let mut stream = futures::stream::iter(setups).map(run_dialogue).buffer_unordered(config.concurrency.max(1));
    let (mut ran, mut failed_now, mut usage, mut interrupted) = (0, 0, Usage::default(), false);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            next = stream.next() => {
                let Some(record) = next else { break };
                writer.append(&record.events)?;
                ran += 1;
                usage += record.usage;
                if record.failed {
                    failed_now += 1;
                    if let Some(crate::dialogue::Event::Error(e)) = record.events.last() {
                        bar.println(format!("dialogue {} failed: {}", e.dialogue, e.message));
                    }
                }
                bar.inc(1);
                bar.set_message(format!("({failed_now} failed, {} tokens)", usage.total()));
            }
            _ = &mut ctrl_c => {
                interrupted = true;
                bar.println("interrupted: finished dialogues are saved; run again with --resume to continue");
                break;
            }
        }
    }
    bar.finish_and_clear();
    drop(writer);

    let events = read_events(&transcript_path)?;
    let counts = write_outcomes_csv(&dir.join("outcomes.csv"), &scenario, &events)?;
    Ok(RunSummary { out_dir: dir.clone(), counts, ran, skipped, failed_now, usage, interrupted })
}

/// The id of dialogue `index` (sortable).
pub fn dialogue_id(index: usize) -> String {
    format!("d{index:05}")
}

fn build_setup(
    scenario: &Arc<Scenario>,
    population: &Population,
    models: &[RoleModel],
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
            PersonaSource::Fixed(id) => population
                .find(id)
                .map(Some)
                .ok_or_else(|| RunError::Persona { role: r.id.clone(), reason: format!("no persona with id `{id}` in the population") }),
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
    ctx.insert("scenario".into(), json!({"name": scenario.name, "description": scenario.description.clone().unwrap_or_default()}));
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
