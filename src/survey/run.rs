//! Runs a survey: respondent i belongs to group `groups[i % G]` and answers every item in a
//! fresh conversation (as in OpinionQA), with seeds from (survey seed, respondent index,
//! item). Each respondent is written to the transcript whole, like a dialogue: a `begin`, a
//! `turn` per item with the option distribution and the draw, an `outcome` per item, `end`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::questionnaire::Item;
use super::spec::SurveySpec;
use crate::backend::{ChatRequest, Message, OutputConstraint, SharedModel, Usage};
use crate::dialogue::events::{
    AgentInfo, BeginEvent, EndEvent, EndReason, ErrorEvent, Event, OutcomeEvent, OutcomeSource, TurnEvent,
};
use crate::experiment::transcript::{completed_attempt, read_events, TranscriptError, TranscriptWriter};
use crate::scenario::OutcomeKind;
use crate::seed;
use crate::vs::{parse_candidates, select, CallRecord, Candidate, Method, SelectionRule};

/// How to run a survey.
#[derive(Debug, Clone)]
pub struct SurveyRunConfig {
    /// Respondents in all (default: per_group × groups).
    pub n: Option<usize>,
    pub seed: u64,
    pub concurrency: usize,
    pub out_dir: PathBuf,
    pub resume: bool,
    pub progress: bool,
    /// The model spec as recorded in transcripts.
    pub model_name: String,
}

/// What a survey run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SurveyRunSummary {
    pub respondents: usize,
    pub completed: usize,
    pub failed: usize,
    pub ran: usize,
    pub skipped: usize,
    pub missing_answers: usize,
    pub usage: Usage,
}

/// Survey run failures.
#[derive(Debug, thiserror::Error)]
pub enum SurveyRunError {
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
    #[error("system prompt template: {0}")]
    Template(String),
}

/// Runs (or resumes) the survey and writes its run directory.
pub async fn run_survey(
    spec: &SurveySpec,
    model: SharedModel,
    config: &SurveyRunConfig,
) -> Result<SurveyRunSummary, SurveyRunError> {
    let dir = &config.out_dir;
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| SurveyRunError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let transcript = dir.join("transcripts.jsonl");
    if transcript.exists()
        && std::fs::metadata(&transcript).map(|m| m.len() > 0).unwrap_or(false)
        && !config.resume
    {
        return Err(SurveyRunError::Exists(dir.clone()));
    }
    let n = config.n.unwrap_or(spec.per_group * spec.groups.len());
    let resolved = json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "kind": "survey",
        "survey": spec.name,
        "source": spec.source,
        "attribute": spec.attribute,
        "groups": spec.groups,
        "items": spec.questionnaire.items.iter().map(|i| &i.key).collect::<Vec<_>>(),
        "method": spec.method,
        "selection": spec.selection,
        "model": config.model_name,
        "n": n,
        "seed": config.seed,
    });
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&resolved).unwrap_or_default())
        .map_err(io(&config_path))?;

    let done: std::collections::HashSet<String> = if transcript.exists() {
        read_events(&transcript)?
            .into_iter()
            .filter(|(_, e)| completed_attempt(e).is_some())
            .map(|(id, _)| id)
            .collect()
    } else {
        Default::default()
    };
    let todo: Vec<usize> = (0..n).filter(|i| !done.contains(&respondent_id(*i))).collect();
    let skipped = n - todo.len();
    let spec = Arc::new(spec.clone());
    let bar = if config.progress { ProgressBar::new(n as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} respondents, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(skipped as u64);
    let mut writer = TranscriptWriter::open(&transcript)?;
    let mut stream = futures::stream::iter(todo)
        .map(|i| {
            let spec = spec.clone();
            let model = model.clone();
            let name = config.model_name.clone();
            let s = config.seed;
            async move { respond(&spec, model, &name, s, i).await }
        })
        .buffer_unordered(config.concurrency.max(1));
    let (mut ran, mut failed_now, mut usage) = (0, 0, Usage::default());
    while let Some(result) = stream.next().await {
        let (events, failed, u) = result?;
        writer.append(&events)?;
        ran += 1;
        usage += u;
        failed_now += usize::from(failed);
        bar.inc(1);
        bar.set_message(format!("({failed_now} failed)"));
    }
    bar.finish_and_clear();
    drop(writer);
    let events = read_events(&transcript)?;
    let (completed, failed, missing) = write_answers_csv(&dir.join("outcomes.csv"), &spec, &events)?;
    Ok(SurveyRunSummary {
        respondents: events.len(),
        completed,
        failed,
        ran,
        skipped,
        missing_answers: missing,
        usage,
    })
}

/// The id of respondent `i`.
pub fn respondent_id(i: usize) -> String {
    format!("r{i:05}")
}

fn render_system(spec: &SurveySpec, group: &str) -> Result<String, SurveyRunError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.render_str(&spec.system, json!({"group": group, "attribute": spec.attribute_label}))
        .map(|s| s.trim().to_string())
        .map_err(|e| SurveyRunError::Template(e.to_string()))
}

/// The user message for one item.
pub fn item_prompt(item: &Item, method: Method) -> String {
    let options: Vec<String> = item.options.iter().map(|o| format!("- {o}")).collect();
    let ask = match method {
        Method::Direct => {
            "Answer with only a JSON object {\"answer\": OPTION}, where OPTION is exactly one of the options.".to_string()
        }
        _ => "For each option, give the probability that you would choose it. Answer with only a JSON object \
              {\"responses\": [{\"text\": OPTION, \"probability\": P}, ...]} listing every option exactly once, \
              with probabilities that sum to 1."
            .to_string(),
    };
    format!("Question: {}\nOptions:\n{}\n\n{ask}", item.question.trim(), options.join("\n"))
}

async fn respond(
    spec: &SurveySpec,
    model: SharedModel,
    model_name: &str,
    survey_seed: u64,
    index: usize,
) -> Result<(Vec<Event>, bool, Usage), SurveyRunError> {
    let id = respondent_id(index);
    let group = &spec.groups[index % spec.groups.len()];
    let rseed = seed::derive(survey_seed, index as u64);
    let system = render_system(spec, group)?;
    let mut events = vec![Event::Begin(BeginEvent {
        dialogue: id.clone(),
        index: index as u64,
        seed: rseed,
        scenario: spec.name.clone(),
        population_id: Some(group.clone()),
        agents: vec![AgentInfo {
            role: "respondent".into(),
            name: "Respondent".into(),
            method: spec.method,
            model: model_name.to_string(),
            persona_id: Some(group.clone()),
            system_prompt: system.clone(),
        }],
    })];
    let mut rng = seed::rng(seed::derive_named(rseed, "select"));
    let rule = SelectionRule::new(spec.selection);
    let mut usage = Usage::default();
    for (turn, item) in spec.questionnaire.items.iter().enumerate() {
        let call_seed = seed::derive_named(rseed, &item.key);
        let messages = vec![Message::system(system.clone()), Message::user(item_prompt(item, spec.method))];
        let result = ask_item(spec, model.as_ref(), item, messages, call_seed).await;
        let (candidates, calls) = match result {
            Ok(x) => x,
            Err(message) => {
                events.push(Event::Error(ErrorEvent { dialogue: id, turn: Some(turn), message }));
                return Ok((events, true, usage));
            }
        };
        let item_usage = calls.iter().filter_map(|c| c.usage).fold(Usage::default(), |mut a, u| {
            a += u;
            a
        });
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
                method: spec.method,
                candidates,
                choice,
                text,
                reasoning: None,
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
    Ok((events, false, usage))
}

/// Asks one item; on an unusable reply asks once more with the problem stated. Returns the
/// candidates (one per option for VS, the chosen option for direct; empty when the answer
/// could not be used) and the calls made. A backend error is an `Err`.
async fn ask_item(
    spec: &SurveySpec,
    model: &dyn crate::backend::ChatModel,
    item: &Item,
    mut messages: Vec<Message>,
    call_seed: u64,
) -> Result<(Vec<Candidate>, Vec<CallRecord>), String> {
    let constraint = match spec.method {
        Method::Direct => OutputConstraint::Choice { choices: item.options.clone() },
        _ => OutputConstraint::Distribution { options: item.options.clone() },
    };
    let mut calls = Vec::new();
    for attempt in 0..2u64 {
        let request = ChatRequest {
            messages: messages.clone(),
            temperature: spec.temperature,
            max_tokens: spec.max_tokens.or(Some(400)),
            seed: Some(if attempt == 0 { call_seed } else { seed::derive(call_seed, attempt) }),
            constraint: spec.use_schema.then(|| constraint.clone()),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let response = model.chat(request).await.map_err(|e| e.to_string())?;
        let parsed = match spec.method {
            Method::Direct => parse_direct(&response.content, item),
            _ => parse_distribution(&response.content, item),
        };
        calls.push(CallRecord {
            raw: response.content.clone(),
            latency_ms: started.elapsed().as_millis() as u64,
            usage: response.usage,
            cached: response.cached,
            parse_error: parsed.as_ref().err().cloned(),
            seed: if attempt == 0 { call_seed } else { seed::derive(call_seed, attempt) },
        });
        match parsed {
            Ok(c) => return Ok((c, calls)),
            Err(problem) => {
                messages.push(Message::assistant(response.content));
                messages.push(Message::user(format!(
                    "Your answer could not be used: {problem}. Reply again with only the JSON object, using the options exactly as written."
                )));
            }
        }
    }
    Ok((Vec::new(), calls))
}

fn parse_direct(raw: &str, item: &Item) -> Result<Vec<Candidate>, String> {
    let kind = OutcomeKind::Category { categories: item.options.clone() };
    match crate::outcome::parse_answer(raw, &kind) {
        Some(serde_json::Value::String(s)) => {
            Ok(vec![Candidate { text: s, probability: 1.0, raw_probability: None, repairs: Vec::new() }])
        }
        _ => Err("the answer is not one of the options".into()),
    }
}

/// Maps a verbalized distribution onto the item's options: every option gets a candidate
/// (probability 0 when the model left it out); texts that match no option are dropped.
pub fn parse_distribution(raw: &str, item: &Item) -> Result<Vec<Candidate>, String> {
    let parsed = parse_candidates(raw, None).map_err(|e| e.to_string())?;
    let mut probs = vec![0.0; item.options.len()];
    let mut raws: Vec<Option<f64>> = vec![None; item.options.len()];
    let mut matched = false;
    for c in &parsed.candidates {
        if let Some(i) = match_option(&c.text, item) {
            probs[i] += c.raw_probability.unwrap_or(c.probability);
            raws[i] = Some(raws[i].unwrap_or(0.0) + c.raw_probability.unwrap_or(c.probability));
            matched = true;
        }
    }
    let total: f64 = probs.iter().sum();
    if !matched || total.is_nan() || total <= 0.0 {
        return Err("no probability was given for any of the options".into());
    }
    Ok(item
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| Candidate {
            text: o.clone(),
            probability: probs[i] / total,
            raw_probability: raws[i],
            repairs: Vec::new(),
        })
        .collect())
}

/// An option by exact text, case-insensitive text, or 1-based number.
fn match_option(text: &str, item: &Item) -> Option<usize> {
    let t = text.trim().trim_matches('"').trim();
    item.options
        .iter()
        .position(|o| o == t)
        .or_else(|| item.options.iter().position(|o| o.eq_ignore_ascii_case(t)))
        .or_else(|| t.parse::<usize>().ok().filter(|n| (1..=item.options.len()).contains(n)).map(|n| n - 1))
}

/// `outcomes.csv` for a survey: one row per respondent, one column per item.
fn write_answers_csv(
    path: &Path,
    spec: &SurveySpec,
    events: &std::collections::BTreeMap<String, Vec<Event>>,
) -> Result<(usize, usize, usize), SurveyRunError> {
    let err =
        |e: csv::Error| SurveyRunError::Io { path: path.to_path_buf(), source: std::io::Error::other(e) };
    let mut w = csv::Writer::from_path(path).map_err(err)?;
    let mut header =
        vec!["respondent".to_string(), "index".into(), "seed".into(), "group".into(), "status".into()];
    header.extend(spec.questionnaire.items.iter().map(|i| format!("respondent.{}", i.key)));
    w.write_record(&header).map_err(err)?;
    let (mut completed, mut failed, mut missing) = (0, 0, 0);
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
                completed += 1;
                row.push("completed".into());
                for item in &spec.questionnaire.items {
                    let v = attempt.iter().find_map(|e| match e {
                        Event::Outcome(o) if o.name == item.key => Some(o.value.clone()),
                        _ => None,
                    });
                    match v.flatten() {
                        Some(serde_json::Value::String(s)) => row.push(s),
                        _ => {
                            missing += 1;
                            row.push(String::new())
                        }
                    }
                }
            }
            None => {
                failed += 1;
                row.push("failed".into());
                row.extend(spec.questionnaire.items.iter().map(|_| String::new()));
            }
        }
        w.write_record(&row).map_err(err)?;
    }
    w.flush().map_err(|e| SurveyRunError::Io { path: path.to_path_buf(), source: e })?;
    Ok((completed, failed, missing))
}
