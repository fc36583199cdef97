//! Runs a survey: respondent i belongs to group `groups[i % G]` and answers every item in a
//! fresh conversation (as in OpinionQA), with seeds from (survey seed, respondent index,
//! item). Each respondent is written to the transcript whole, like a dialogue: a `begin`, a
//! `turn` per item with the option distribution and the draw, an `outcome` per item, `end`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::FutureExt;
use serde_json::json;

use super::questionnaire::Item;
use super::spec::SurveySpec;
use crate::backend::{Message, SharedModel, Usage};
use crate::dialogue::events::{
    AgentInfo, BeginEvent, EndEvent, EndReason, ErrorEvent, Event, OutcomeEvent, TurnEvent,
};
use crate::dialogue::DialogueRecord;
use crate::experiment::budget::{Budget, Meter, Prices};
use crate::experiment::progress::RunProgress;
use crate::experiment::runner::{completed_ids, drive, Drive, RunError, RunSummary, Unit};
use crate::outcome::OutcomeSource;
use crate::rundir::outcomes::OutcomeCounts;
use crate::rundir::transcript::{completed_attempt, read_events, TranscriptError, TranscriptWriter};
use crate::rundir::{open_for_writing, Manifest, PinnedInput, RoleModelName, RunKind, Shard, SurveyManifest};
use crate::seed;
use crate::vs::AnswerShape;
use crate::vs::{select, GenerateError, GenerateRequest, Generation, Generator, ItemShape};

/// How to run a survey.
#[derive(Debug, Clone)]
pub struct SurveyRunConfig {
    /// Respondents in all (default: per_group × groups).
    pub n: Option<usize>,
    /// The experiment seed; each respondent's seed derives from it and its index.
    pub seed: u64,
    /// Respondents in flight at once.
    pub concurrency: usize,
    /// The run directory written to.
    pub out_dir: PathBuf,
    /// Continue an existing run directory: run only missing or failed respondents.
    pub resume: bool,
    /// Who hears how the run goes (silent by default).
    pub progress: RunProgress,
    /// The model spec as recorded in transcripts.
    pub model_name: String,
    /// Run only this slice of the respondents (merged shards equal an unsharded run).
    pub shard: Option<Shard>,
    /// Token and cost caps.
    pub budget: Budget,
    /// Prices per model, for the cost cap and the cost report.
    pub prices: Prices,
    /// Stop starting respondents after this many failed in a row (0: never).
    pub max_consecutive_failures: usize,
    /// What stops the run early, keeping finished respondents (default: Ctrl-C).
    pub interrupt: crate::experiment::Interrupt,
}

/// Survey run failures.
#[derive(Debug, thiserror::Error)]
pub enum SurveyRunError {
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
    /// The run could not be set up or driven.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The system prompt template did not render.
    #[error("system prompt template: {0}")]
    Template(String),
}

impl SurveyRunError {
    /// Whether the survey was refused for what it was asked to do (exit code 2).
    pub fn is_input(&self) -> bool {
        match self {
            SurveyRunError::Run(e) => e.is_input(),
            SurveyRunError::Template(_) => true,
            SurveyRunError::Io { .. } | SurveyRunError::Transcript(_) => false,
        }
    }
}

/// The run manifest of `spec` under `config`, with its inputs pinned.
fn survey_manifest(spec: &SurveySpec, config: &SurveyRunConfig, n: usize) -> Result<Manifest, RunError> {
    let mut manifest = Manifest::new(RunKind::Survey, n, config.seed);
    manifest.shard = config.shard;
    manifest.models = vec![RoleModelName { role: "respondent".into(), model: config.model_name.clone() }];
    manifest.inputs.push(PinnedInput::pin("survey", &spec.source)?);
    for (role, path) in &spec.inputs {
        manifest.inputs.push(PinnedInput::pin(role, path)?);
    }
    manifest.survey = Some(SurveyManifest {
        name: spec.name.clone(),
        source: spec.source.clone(),
        attribute: spec.attribute.clone(),
        groups: spec.groups.clone(),
        items: spec.questionnaire.items.iter().map(|i| i.key.clone()).collect(),
        method: spec.sampling.method,
        selection: spec.sampling.rule.selection,
    });
    Ok(manifest)
}

/// Runs (or resumes) the survey and writes its run directory, through the experiment
/// runner: seeds, concurrency, resume with the manifest check, shards, budget, Ctrl-C.
pub async fn run_survey(
    spec: &SurveySpec,
    model: SharedModel,
    config: &SurveyRunConfig,
) -> Result<RunSummary, SurveyRunError> {
    if let Some(s) = config.shard {
        Shard::new(s.index, s.count).map_err(RunError::Shard)?;
    }
    let n = config.n.unwrap_or(spec.per_group * spec.groups.len());
    let manifest = survey_manifest(spec, config, n)?;
    // Every group's prompt renders before anything runs.
    let systems: std::collections::HashMap<String, String> = spec
        .groups
        .iter()
        .map(|g| Ok((g.clone(), render_system(spec, g)?)))
        .collect::<Result<_, SurveyRunError>>()?;
    let meter = Meter::with_budget(config.budget);
    let model = meter.wrap(&config.model_name, model, &config.prices);
    if config.budget.max_cost_usd.is_some() && !meter.unpriced().is_empty() {
        return Err(RunError::Unpriced(meter.unpriced()).into());
    }
    let run = open_for_writing(&config.out_dir, &manifest, config.resume).map_err(RunError::from)?;
    let done = completed_ids(&run.transcript)?;
    let planned = (0..n).filter(|i| config.shard.is_none_or(|s| s.contains(*i))).count();
    let pending: Vec<usize> = (0..n)
        .filter(|i| config.shard.is_none_or(|s| s.contains(*i)) && !done.contains(&respondent_id(*i)))
        .collect();
    let skipped = planned - pending.len();
    let spec = Arc::new(spec.clone());
    let systems = Arc::new(systems);
    // One generator (its templates) for every respondent and item.
    let generator = Arc::new(Generator::default());
    let make = |i: usize| -> Result<Unit, RunError> {
        let (spec, model, systems, generator) =
            (spec.clone(), model.clone(), systems.clone(), generator.clone());
        let (name, s) = (config.model_name.clone(), config.seed);
        Ok(async move { respond(&spec, &systems, &generator, model, &name, s, i).await }.boxed())
    };
    let d = Drive {
        concurrency: config.concurrency,
        budget: config.budget,
        meter: &meter,
        progress: config.progress.clone(),
        unit: "respondents",
        max_consecutive_failures: config.max_consecutive_failures,
        total: planned as u64,
        already: skipped as u64,
        interrupt: config.interrupt.clone(),
    };
    let mut writer = TranscriptWriter::open(&run.transcript)?;
    let driven = drive(pending, make, &mut writer, &d).await?;
    drop(writer);
    let events = read_events(&run.transcript)?;
    let items: Vec<String> = spec.questionnaire.items.iter().map(|i| i.key.clone()).collect();
    let counts = write_answers_csv(&run.dir.join(crate::rundir::OUTCOMES), &items, &events)?;
    Ok(RunSummary {
        out_dir: run.dir.clone(),
        counts,
        ran: driven.ran,
        skipped,
        planned,
        failed_now: driven.failed_now,
        usage: driven.usage,
        spend: meter.spend(),
        stop: driven.stop(),
        unanswered_now: driven.unanswered_now,
        not_started: driven.not_started,
        shard: config.shard,
    })
}

/// The id of respondent `i`.
pub(crate) fn respondent_id(i: usize) -> String {
    RunKind::Survey.unit_id(i)
}

fn render_system(spec: &SurveySpec, group: &str) -> Result<String, SurveyRunError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.render_str(&spec.system, json!({"group": group, "attribute": spec.attribute_label}))
        .map(|s| s.trim().to_string())
        .map_err(|e| SurveyRunError::Template(e.to_string()))
}

/// The user message for one item: the question and its options. The method's instruction
/// and what one answer may be follow it, from the gathering engine.
pub(crate) fn item_prompt(item: &Item) -> String {
    let options: Vec<String> = item.options.iter().map(|o| format!("- {o}")).collect();
    format!("Question: {}\nOptions:\n{}", item.question.trim(), options.join("\n"))
}

async fn respond(
    spec: &SurveySpec,
    systems: &std::collections::HashMap<String, String>,
    generator: &Generator,
    model: SharedModel,
    model_name: &str,
    survey_seed: u64,
    index: usize,
) -> DialogueRecord {
    let id = respondent_id(index);
    let group = &spec.groups[index % spec.groups.len()];
    let rseed = seed::derive(survey_seed, index as u64);
    let system = systems.get(group).cloned().unwrap_or_default();
    let mut events = vec![Event::Begin(BeginEvent {
        dialogue: id.clone(),
        index: index as u64,
        seed: rseed,
        scenario: spec.name.clone(),
        population_id: Some(group.clone()),
        agents: vec![AgentInfo {
            role: "respondent".into(),
            name: "Respondent".into(),
            method: spec.sampling.method,
            model: model_name.to_string(),
            persona_id: Some(group.clone()),
            system_prompt: system.clone(),
        }],
    })];
    let mut rng = seed::rng(seed::derive_named(rseed, "select"));
    let rule = spec.sampling.rule;
    let mut usage = Usage::default();
    for (turn, item) in spec.questionnaire.items.iter().enumerate() {
        let call_seed = seed::derive_named(rseed, &item.key);
        let messages = vec![Message::system(system.clone()), Message::user(item_prompt(item))];
        let result = ask_item(spec, generator, model.as_ref(), item, messages, call_seed).await;
        let Generation { candidates, reasoning, calls, usage: item_usage, .. } = match result {
            Ok(x) => x,
            Err(e) => {
                events.push(Event::Error(ErrorEvent {
                    dialogue: id,
                    turn: Some(turn),
                    message: e.to_string(),
                    calls: Vec::new(),
                }));
                let budget_cut = e.budget_reached().map(str::to_string);
                return DialogueRecord { events, failed: true, usage, budget_cut };
            }
        };
        usage += item_usage;
        let (value, source, text, choice) = if candidates.is_empty() {
            (None, OutcomeSource::Missing, String::new(), None)
        } else {
            let choice = select(&candidates, &rule, &mut rng);
            let text = candidates[choice.index].text.clone();
            (Some(json!(text)), OutcomeSource::Question, text, Some(choice))
        };
        let raw = calls.last().map(|c| c.raw.clone()).unwrap_or_default();
        if let Some(choice) = choice {
            events.push(Event::Turn(TurnEvent {
                dialogue: id.clone(),
                turn,
                speaker: "respondent".into(),
                method: spec.sampling.method,
                candidates,
                choice,
                text,
                reasoning,
                next_speaker: None,
                latency_ms: calls.iter().map(|c| c.latency_ms).sum(),
                calls,
                usage: item_usage,
            }));
        }
        events.push(Event::Outcome(OutcomeEvent {
            dialogue: id.clone(),
            role: "respondent".into(),
            name: item.key.clone(),
            value,
            source,
            raw,
            reason: None,
            usage: item_usage,
            measure: Default::default(),
            distribution: None,
        }));
    }
    events.push(Event::End(EndEvent {
        dialogue: id,
        turns: spec.questionnaire.items.len(),
        reason: EndReason::MaxTurns,
        usage,
    }));
    DialogueRecord { events, failed: false, usage, budget_cut: None }
}

/// Asks one item through the gathering engine with the survey's method, k, τ and N, the
/// item's options as the answer shape. Returns the gathering: its answers (none when no
/// reply, retry included, held a usable one), the reasoning of methods that ask for it, and
/// the calls made. A backend error is an `Err`.
async fn ask_item(
    spec: &SurveySpec,
    generator: &Generator,
    model: &dyn crate::backend::ChatModel,
    item: &Item,
    messages: Vec<Message>,
    call_seed: u64,
) -> Result<Generation, GenerateError> {
    let s = &spec.sampling;
    let req = GenerateRequest {
        messages,
        method: s.method,
        k: s.k,
        tau: s.tau,
        temperature: spec.temperature,
        top_p: None,
        max_tokens: spec.max_tokens.or(Some(400)),
        seed: call_seed,
        use_schema: spec.use_schema,
        shape: ItemShape::Answer(AnswerShape::Choice { choices: item.options.clone() }),
    };
    match generator.generate_n(model, &req, s.items()).await {
        Ok(gen) => Ok(gen),
        Err(GenerateError::Unparseable { calls, .. }) => Ok(Generation::without_items(calls)),
        Err(e) => Err(e),
    }
}

/// `outcomes.csv` for a survey: one row per respondent, one column per item. A respondent
/// who finished without one usable answer has status `unanswered`, not `completed`.
pub(crate) fn write_answers_csv(
    path: &Path,
    items: &[String],
    events: &std::collections::BTreeMap<String, Vec<Event>>,
) -> Result<OutcomeCounts, SurveyRunError> {
    let err =
        |e: csv::Error| SurveyRunError::Io { path: path.to_path_buf(), source: std::io::Error::other(e) };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header =
        vec!["respondent".to_string(), "index".into(), "seed".into(), "group".into(), "status".into()];
    header.extend(items.iter().map(|key| format!("respondent.{key}")));
    w.write_record(&header).map_err(err)?;
    let mut counts = OutcomeCounts { dialogues: events.len(), ..OutcomeCounts::default() };
    let mut rows: Vec<(u64, Vec<String>)> = Vec::new();
    for (id, evs) in events {
        let Some(Event::Begin(b)) = evs.iter().rev().find(|e| matches!(e, Event::Begin(_))) else { continue };
        let mut row = vec![
            id.clone(),
            b.index.to_string(),
            b.seed.to_string(),
            b.population_id.clone().unwrap_or_default(),
        ];
        match completed_attempt(evs) {
            Some(attempt) => {
                let answers: Vec<String> = items
                    .iter()
                    .map(|key| {
                        let v = attempt.iter().find_map(|e| match e {
                            Event::Outcome(o) if &o.name == key => Some(o.value.clone()),
                            _ => None,
                        });
                        match v.flatten() {
                            Some(serde_json::Value::String(s)) => s,
                            _ => String::new(),
                        }
                    })
                    .collect();
                for (key, _) in items.iter().zip(&answers).filter(|(_, a)| a.is_empty()) {
                    *counts.missing.entry(format!("respondent.{key}")).or_default() += 1;
                }
                if crate::rundir::outcomes::unanswered(answers.iter().map(|a| !a.is_empty())) {
                    counts.unanswered += 1;
                    row.push("unanswered".into());
                } else {
                    counts.completed += 1;
                    row.push("completed".into());
                }
                row.extend(answers);
            }
            None => {
                counts.failed += 1;
                row.push("failed".into());
                row.extend(items.iter().map(|_| String::new()));
            }
        }
        rows.push((b.index, row));
    }
    // In respondent order (ids sort as text, which breaks past five digits).
    rows.sort_by_key(|(index, _)| *index);
    for (_, row) in rows {
        w.write_record(&row).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| SurveyRunError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    crate::fsutil::write_atomic(path, &bytes)
        .map_err(|source| SurveyRunError::Io { path: path.to_path_buf(), source })?;
    Ok(counts)
}
