//! Tuning a survey: the wave's questions are split into train and held-out items by a fixed
//! rule over their ids; every candidate answers the train items only, the best is chosen on
//! them, and the choice and the baselines then answer the held-out items once, reported per
//! subgroup.
//!
//! A survey tune file names `survey` (instead of a scenario and a role), the candidates as a
//! `[grid]` or `[[arms]]` (method, k, selection, tau, min_prob, model, temperature,
//! max_tokens, system prompt), a `[tune]` table and `[[baselines]]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::SharedModel;
use crate::experiment::budget::{Budget, Prices, Spend};
use crate::experiment::progress::{RunEvent, RunProgress};
use crate::experiment::StopCause;
use crate::survey::eval::SurveyReport;
use crate::survey::run::{run_survey, SurveyRunConfig, SurveyRunError};
use crate::survey::SurveySpec;
use crate::workflow::sweep::grid::{baseline_cells, expand_cells};
use crate::workflow::sweep::spec::{parse_cell_space, RawArm, RawGrid};
use crate::workflow::sweep::{Cell, SweepError};

/// The fixed seed of the question split: an item is held out when the hash of its id under
/// this seed falls in the held-out share, so the split depends on nothing but the ids.
pub(crate) const QUESTION_SPLIT_SEED: u64 = 20_240_611;

/// The question split rule, in words (recorded in `tune.json`).
pub const QUESTION_SPLIT_RULE: &str = "an item is held out when seed::derive_named(20240611, item id) mod \
    10000 < held_out × 10000 (a fixed hash of the id, so the same wave always splits the same way); a \
    split that leaves either side empty is refused";

/// What a survey tune minimises over the (item, subgroup) pairs with human answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyObjective {
    /// `1 − representativeness` (OpinionQA's 1 − W1 / range), averaged over subgroups.
    Representativeness,
    /// Mean total variation.
    Tv,
    /// Mean Jensen–Shannon divergence.
    Js,
    /// Mean Wasserstein-1 over ordinal values.
    Wasserstein,
}

/// Resamples of the train items behind a survey tune's selection stability.
pub const STABILITY_RESAMPLES: usize = 200;

/// How often `chosen` keeps the lowest objective when the train items are resampled (the
/// rows of every item drawn, as many items as there are, with replacement).
fn item_stability(
    objective: SurveyObjective,
    candidates: &[(usize, &SurveyReport)],
    chosen: usize,
    items: &[String],
    seed: u64,
) -> Option<f64> {
    use rand::Rng;
    if candidates.len() < 2 || items.is_empty() {
        return None;
    }
    let mut rng = crate::seed::rng(crate::seed::derive_named(seed, "tune/survey-stability"));
    let mut wins = 0;
    for _ in 0..STABILITY_RESAMPLES {
        let draw: Vec<&String> = (0..items.len()).map(|_| &items[rng.random_range(0..items.len())]).collect();
        let best = candidates
            .iter()
            .filter_map(|(index, r)| {
                let rows: Vec<&crate::survey::eval::ItemGroupMetrics> = draw
                    .iter()
                    .flat_map(|item| r.rows.iter().filter(move |row| &row.item == *item))
                    .collect();
                objective.score_rows(&rows).map(|v| (v, *index))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        wins += usize::from(best.is_some_and(|(_, i)| i == chosen));
    }
    Some(wins as f64 / STABILITY_RESAMPLES as f64)
}

impl SurveyObjective {
    /// The objective over some (item, subgroup) rows: representativeness averaged within each
    /// subgroup, then over subgroups, as the survey report does; the others averaged over rows.
    pub(crate) fn score_rows(self, rows: &[&crate::survey::eval::ItemGroupMetrics]) -> Option<f64> {
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        match self {
            Self::Representativeness => {
                let mut by_group: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
                for r in rows {
                    if let Some(x) = r.representativeness {
                        by_group.entry(&r.group).or_default().push(x);
                    }
                }
                let groups: Vec<f64> = by_group.values().filter_map(|v| mean(v)).collect();
                mean(&groups).map(|x| 1.0 - x)
            }
            Self::Tv => mean(&rows.iter().filter_map(|r| r.tv).collect::<Vec<_>>()),
            Self::Js => mean(&rows.iter().filter_map(|r| r.js).collect::<Vec<_>>()),
            Self::Wasserstein => mean(&rows.iter().filter_map(|r| r.wasserstein).collect::<Vec<_>>()),
        }
    }

    /// The objective of one evaluated survey (`None` when nothing was compared).
    pub fn score(self, r: &SurveyReport) -> Option<f64> {
        self.score_rows(&r.rows.iter().collect::<Vec<_>>())
    }
}

/// A validated survey tune file.
#[derive(Debug, Clone)]
pub struct SurveyTune {
    /// The tune file.
    pub file: PathBuf,
    /// The survey with every item.
    pub survey: SurveySpec,
    /// The candidates.
    pub cells: Vec<Cell>,
    /// The baselines, run beside the choice on the held-out items.
    pub baselines: Vec<Cell>,
    /// System prompts by name, for the `system` axis.
    pub system_prompts: BTreeMap<String, String>,
    /// What is minimised.
    pub objective: SurveyObjective,
    /// The items the search answers.
    pub train_items: Vec<String>,
    /// The items only the choice and the baselines answer, at the end.
    pub held_out_items: Vec<String>,
    /// The experiment seed.
    pub seed: u64,
    /// Respondents in flight at once.
    pub concurrency: usize,
    /// The output folder.
    pub out: PathBuf,
    /// The model of candidates without their own (default: the survey's, else `local`).
    pub model: Option<String>,
    /// A cap on the whole tune.
    pub budget: Budget,
    /// Prices per model.
    pub prices: Prices,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSurveyTune {
    survey: String,
    seed: Option<u64>,
    concurrency: Option<usize>,
    out: Option<String>,
    model: Option<String>,
    #[serde(default)]
    grid: RawGrid,
    #[serde(default)]
    arms: Vec<RawArm>,
    #[serde(default)]
    baselines: Vec<RawArm>,
    #[serde(default)]
    system_prompts: BTreeMap<String, String>,
    tune: Option<RawSurveyTuneTable>,
    #[serde(default)]
    budget: RawBudget,
    prices: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_tokens_total: Option<u64>,
    max_cost: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSurveyTuneTable {
    objective: Option<String>,
    held_out: Option<f64>,
}

/// Whether the TOML `text` is a survey sweep or tune file (it names a `survey`).
pub fn names_a_survey(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("survey"))
}

/// Splits `items` by [`QUESTION_SPLIT_RULE`] into (train, held out).
pub fn split_questions(items: &[String], held_out: f64) -> (Vec<String>, Vec<String>) {
    let threshold = (held_out * 10_000.0).round() as u64;
    items
        .iter()
        .cloned()
        .partition(|id| crate::seed::derive_named(QUESTION_SPLIT_SEED, id) % 10_000 >= threshold)
}

/// Parses a survey tune file at `path` (with a `[tune]` table).
pub fn parse_survey_tune(path: &Path, text: &str) -> Result<SurveyTune, SweepError> {
    parse_survey_file(path, text, true)
}

/// Parses a survey sweep file at `path`: a survey tune file without `[tune]` and
/// baselines, whose candidates all answer every item.
pub fn parse_survey_sweep(path: &Path, text: &str) -> Result<SurveyTune, SweepError> {
    parse_survey_file(path, text, false)
}

// Long on purpose: validates the survey tune file field by field; each check is a few lines and names its field.
fn parse_survey_file(path: &Path, text: &str, tuning: bool) -> Result<SurveyTune, SweepError> {
    let file = path.to_path_buf();
    let raw: RawSurveyTune = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!("line {}: ", crate::fsutil::line_col(text, s.start).0))
            .unwrap_or_default();
        SweepError::Syntax { file: file.clone(), reason: format!("{at}{}", e.message().trim()) }
    })?;
    let invalid =
        |field: &str, reason: String| SweepError::Invalid { file: file.clone(), field: field.into(), reason };
    let base = path.parent().unwrap_or(Path::new("."));
    let survey = crate::survey::load_survey(&base.join(&raw.survey), None)
        .map_err(|e| invalid("survey", e.to_string()))?;
    if survey.human.is_none() {
        return Err(invalid("survey", "a tune compares with human answers: the survey has none".into()));
    }
    let space = parse_cell_space(
        &raw.grid,
        &raw.arms,
        &raw.baselines,
        &BTreeMap::new(),
        &raw.system_prompts,
        &invalid,
    )?;
    let cells = expand_cells(&space.grid, &space.arms);
    let baselines = baseline_cells(&space.baselines);
    if tuning && cells.len() < 2 {
        return Err(invalid("grid", "a tune chooses among at least two candidates".into()));
    }
    let table = match (tuning, raw.tune) {
        (true, Some(t)) => t,
        (true, None) => return Err(invalid("tune", "a tune file has a [tune] table".into())),
        (false, Some(_)) => {
            return Err(invalid("tune", "a [tune] table belongs to a tune file, not a sweep file".into()))
        }
        (false, None) => RawSurveyTuneTable { objective: None, held_out: None },
    };
    if !tuning && !baselines.is_empty() {
        return Err(invalid("baselines", "baselines belong to a tune file (with a [tune] table)".into()));
    }
    for c in cells.iter().chain(&baselines) {
        if c.persona.is_some() {
            return Err(invalid(
                "persona",
                "survey respondents have no persona attributes to choose from".into(),
            ));
        }
        apply(&survey, c, &raw.system_prompts)
            .sampling
            .check()
            .map_err(|(field, reason)| invalid(field, format!("candidate `{}`: {reason}", c.name)))?;
    }
    let objective = match table.objective.as_deref().unwrap_or("representativeness") {
        "representativeness" => SurveyObjective::Representativeness,
        "tv" => SurveyObjective::Tv,
        "js" => SurveyObjective::Js,
        "wasserstein" => SurveyObjective::Wasserstein,
        other => {
            return Err(invalid(
                "tune.objective",
                format!("`{other}`: expected representativeness, tv, js or wasserstein"),
            ))
        }
    };
    let held_out = table.held_out.unwrap_or(1.0 / 3.0);
    if !(held_out > 0.0 && held_out < 1.0) {
        return Err(invalid("tune.held_out", format!("{held_out}: the share of items held out, in (0, 1)")));
    }
    let ids: Vec<String> = survey.questionnaire.items.iter().map(|i| i.key.clone()).collect();
    let (train_items, held_out_items) =
        if tuning { split_questions(&ids, held_out) } else { (ids.clone(), Vec::new()) };
    if tuning && (train_items.is_empty() || held_out_items.is_empty()) {
        return Err(invalid(
            "tune.held_out",
            format!(
                "the survey's {} items split into {} train and {} held out: each side needs at least one",
                ids.len(),
                train_items.len(),
                held_out_items.len()
            ),
        ));
    }
    let prices = match &raw.prices {
        Some(t) => Prices::from_toml_table(t, &file.display().to_string())
            .map_err(|e| invalid("prices", e.to_string()))?,
        None => Prices::default(),
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("tune").to_string();
    Ok(SurveyTune {
        file,
        survey,
        cells,
        baselines,
        system_prompts: raw.system_prompts,
        objective,
        train_items,
        held_out_items,
        seed: raw.seed.unwrap_or(0),
        concurrency: raw.concurrency.unwrap_or(4).max(1),
        out: raw.out.map(PathBuf::from).unwrap_or_else(|| PathBuf::from("runs").join(stem)),
        model: raw.model,
        budget: Budget { max_tokens_total: raw.budget.max_tokens_total, max_cost_usd: raw.budget.max_cost },
        prices,
    })
}

/// `survey` with `cell`'s settings.
fn apply(survey: &SurveySpec, cell: &Cell, prompts: &BTreeMap<String, String>) -> SurveySpec {
    let mut s = survey.clone();
    if let Some(m) = cell.method {
        s.sampling.set_method(m);
    }
    if let Some(k) = cell.k {
        s.sampling.k = k;
    }
    if let Some(sel) = cell.selection {
        s.sampling.rule.selection = sel;
    }
    if let Some(t) = cell.tau {
        s.sampling.tau = t;
    }
    if let Some(p) = cell.min_prob {
        s.sampling.rule.min_prob = p;
    }
    if let Some(m) = &cell.model {
        s.model = Some(m.clone());
    }
    if let Some(t) = cell.temperature {
        s.temperature = Some(t);
    }
    if let Some(t) = cell.max_tokens {
        s.max_tokens = Some(t);
    }
    if let Some(text) = cell.system.as_ref().and_then(|n| prompts.get(n)) {
        s.system = text.clone();
    }
    s
}

/// `survey` asking only `items`.
fn only(mut survey: SurveySpec, items: &[String]) -> SurveySpec {
    survey.questionnaire.items.retain(|i| items.contains(&i.key));
    survey
}

impl SurveyTune {
    /// The model spec of `cell`.
    pub(crate) fn model_of(&self, cell: &Cell) -> String {
        cell.model
            .clone()
            .or(self.model.clone())
            .or(self.survey.model.clone())
            .unwrap_or_else(|| "local".into())
    }

    /// Every model spec the tune uses, each once.
    pub fn model_specs(&self) -> std::collections::BTreeSet<String> {
        self.cells.iter().chain(&self.baselines).map(|c| self.model_of(c)).collect()
    }
}

/// One survey candidate's result.
#[derive(Debug, Clone, Serialize)]
pub struct SurveyTrial {
    /// The candidate.
    pub cell: Cell,
    /// Its run directory.
    pub dir: PathBuf,
    /// The objective (`None` when nothing could be compared).
    pub score: Option<f64>,
    /// Mean representativeness per subgroup.
    pub representativeness: BTreeMap<String, f64>,
    /// Respondents, and answers that could not be read.
    pub respondents: usize,
    /// Simulated answers that could not be read as an option.
    pub missing_answers: usize,
}

/// What a survey tune did.
#[derive(Debug, Clone, Serialize)]
pub struct SurveyTuneSummary {
    /// The tune folder.
    pub out_dir: PathBuf,
    /// What was minimised.
    pub objective: SurveyObjective,
    /// The train items and the held-out ones.
    pub train_items: Vec<String>,
    /// See `train_items`.
    pub held_out_items: Vec<String>,
    /// Every candidate on the train items.
    pub trials: Vec<SurveyTrial>,
    /// The chosen candidate.
    pub chosen: Option<Cell>,
    /// Its train objective.
    pub chosen_train: Option<f64>,
    /// The share of [`STABILITY_RESAMPLES`] resamples of the train items in which the choice
    /// still has the lowest objective.
    pub stability: Option<f64>,
    /// The choice (first) and the baselines on the held-out items.
    pub held_out: Vec<SurveyTrial>,
    /// Held-out objective of the choice minus its train objective.
    pub optimism_gap: Option<f64>,
    /// What the models produced.
    pub spend: Spend,
    /// Why the runs stopped early, if they did.
    pub stop: Option<StopCause>,
}

/// How a survey tune runs.
#[derive(Debug, Clone, Default)]
pub struct SurveyTuneOptions {
    /// Continue a tune already (partly) run in the folder.
    pub resume: bool,
    /// Who hears how the runs go.
    pub progress: RunProgress,
    /// Overrides the file's `out`.
    pub out: Option<PathBuf>,
    /// Overrides the file's budget where set.
    pub budget: Budget,
    /// Extra prices (e.g. from the command line), over the file's.
    pub prices: Prices,
    /// Stop starting respondents after this many failed in a row (0: never).
    pub max_consecutive_failures: usize,
    /// What stops the runs early (default: Ctrl-C).
    pub interrupt: crate::experiment::Interrupt,
}

/// Runs and evaluates `cells` on `items` into `dir`.
#[allow(clippy::too_many_arguments)]
async fn run_cells(
    tune: &SurveyTune,
    models: &std::collections::HashMap<String, SharedModel>,
    options: &SurveyTuneOptions,
    spend: &mut Spend,
    budget: Budget,
    cells: &[Cell],
    items: &[String],
    dir: &Path,
) -> Result<(Vec<SurveyTrial>, Vec<(String, SurveyReport)>, Option<StopCause>), SurveyTuneError> {
    let mut trials = Vec::new();
    let mut reports = Vec::new();
    for cell in cells {
        options.progress.emit(RunEvent::Stage { index: cell.index, name: cell.name.clone() });
        let spec = only(apply(&tune.survey, cell, &tune.system_prompts), items);
        let model_name = tune.model_of(cell);
        let model = models
            .get(&model_name)
            .cloned()
            .ok_or_else(|| SurveyTuneError::MissingModel(model_name.clone()))?;
        let cell_dir = dir.join(&cell.name);
        let config = SurveyRunConfig {
            n: None,
            seed: tune.seed,
            concurrency: tune.concurrency,
            out_dir: cell_dir.clone(),
            resume: options.resume,
            progress: options.progress.clone(),
            model_name,
            shard: None,
            budget: budget.minus(spend),
            prices: {
                let mut prices = tune.prices.clone();
                prices.extend(options.prices.clone());
                prices
            },
            max_consecutive_failures: options.max_consecutive_failures,
            interrupt: options.interrupt.clone(),
        };
        let summary = run_survey(&spec, model, &config).await?;
        *spend += &summary.spend;
        if summary.stop.is_some() {
            return Ok((trials, reports, summary.stop));
        }
        let report = crate::survey::eval::evaluate(&spec, &cell_dir).map_err(SurveyRunError::from)?;
        let metrics = cell_dir.join("metrics.json");
        crate::fsutil::write_atomic(&metrics, &serde_json::to_vec_pretty(&report).unwrap_or_default())
            .map_err(|source| SurveyRunError::Io { path: metrics, source })?;
        trials.push(SurveyTrial {
            cell: cell.clone(),
            dir: cell_dir,
            score: tune.objective.score(&report),
            representativeness: report.representativeness.clone(),
            respondents: summary.counts.dialogues,
            missing_answers: report.missing_answers,
        });
        reports.push((cell.name.clone(), report));
    }
    Ok((trials, reports, None))
}

/// A refused or unusable output folder, as a survey run would report it.
fn run_dir_error(e: crate::rundir::RunDirError) -> SurveyTuneError {
    SurveyTuneError::Run(SurveyRunError::Run(crate::experiment::runner::RunError::RunDir(e)))
}

/// Why a survey tune failed.
#[derive(Debug, thiserror::Error)]
pub enum SurveyTuneError {
    /// A survey run failed.
    #[error(transparent)]
    Run(#[from] SurveyRunError),
    /// No backend was opened for a model spec the tune uses.
    #[error("no model opened for `{0}`")]
    MissingModel(String),
    /// A report could not be written.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs a survey tune: every candidate on the train items, the choice by the objective,
/// then the choice and the baselines once on the held-out items, compared per subgroup.
pub async fn run_survey_tune(
    tune: &SurveyTune,
    models: &std::collections::HashMap<String, SharedModel>,
    options: &SurveyTuneOptions,
) -> Result<SurveyTuneSummary, SurveyTuneError> {
    let out = options.out.clone().unwrap_or_else(|| tune.out.clone());
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SurveyTuneError::Io { path, source }
    };
    let folder = crate::fsutil::FolderKind { what: "a vsim tune folder", manifest: super::TUNE_MANIFEST };
    crate::rundir::claim_workflow_dir(&out, folder, options.resume).map_err(run_dir_error)?;
    let budget = tune.budget.overridden_by(&options.budget);
    let mut summary = SurveyTuneSummary {
        out_dir: out.clone(),
        objective: tune.objective,
        train_items: tune.train_items.clone(),
        held_out_items: tune.held_out_items.clone(),
        trials: Vec::new(),
        chosen: None,
        chosen_train: None,
        stability: None,
        held_out: Vec::new(),
        optimism_gap: None,
        spend: Spend::default(),
        stop: None,
    };
    write_survey_manifest(&out, tune, &summary)?;
    options.progress.emit(RunEvent::Phase {
        name: format!("train: {} candidates on {} train items", tune.cells.len(), tune.train_items.len()),
    });
    let (trials, train_reports, stop) = run_cells(
        tune,
        models,
        options,
        &mut summary.spend,
        budget,
        &tune.cells,
        &tune.train_items,
        &out.join("train"),
    )
    .await?;
    summary.trials = trials;
    if stop.is_some() {
        summary.stop = stop;
        write_survey_manifest(&out, tune, &summary)?;
        return Ok(summary);
    }
    let best = summary
        .trials
        .iter()
        .filter_map(|t| t.score.map(|s| (s, t)))
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cell.index.cmp(&b.1.cell.index)));
    let Some((score, best)) = best else {
        write_survey_manifest(&out, tune, &summary)?;
        return Ok(summary);
    };
    let chosen = best.cell.clone();
    summary.chosen_train = Some(score);
    let scored: Vec<(usize, &SurveyReport)> = summary
        .trials
        .iter()
        .zip(&train_reports)
        .filter(|(t, _)| t.score.is_some())
        .map(|(t, (_, r))| (t.cell.index, r))
        .collect();
    summary.stability = item_stability(tune.objective, &scored, chosen.index, &tune.train_items, tune.seed);
    summary.chosen = Some(chosen.clone());
    write_survey_manifest(&out, tune, &summary)?;
    let mut arms = vec![Cell { name: format!("chosen-{}", chosen.name), ..chosen }];
    arms.extend(tune.baselines.iter().cloned());
    options.progress.emit(RunEvent::Phase {
        name: format!(
            "held-out: the choice and {} baselines on {} held-out items",
            arms.len() - 1,
            tune.held_out_items.len()
        ),
    });
    let test_dir = out.join("test");
    let (held_out, reports, stop) =
        run_cells(tune, models, options, &mut summary.spend, budget, &arms, &tune.held_out_items, &test_dir)
            .await?;
    summary.held_out = held_out;
    summary.stop = stop;
    summary.optimism_gap =
        summary.held_out.first().and_then(|h| h.score).zip(summary.chosen_train).map(|(t, s)| t - s);
    if !reports.is_empty() {
        crate::report::survey::write_survey_comparison(&test_dir.join("report"), &reports)?;
    }
    write_survey_manifest(&out, tune, &summary)?;
    let markdown = survey_tune_markdown(tune, &summary);
    let md = out.join("report.md");
    crate::fsutil::write_atomic(&md, markdown.as_bytes()).map_err(io(&md))?;
    let html = out.join("report.html");
    let page =
        crate::report::survey::page("vsim tune (survey)", &crate::report::markdown::to_html(&markdown));
    crate::fsutil::write_atomic(&html, page.as_bytes()).map_err(io(&html))?;
    Ok(summary)
}

fn write_survey_manifest(
    out: &Path,
    tune: &SurveyTune,
    summary: &SurveyTuneSummary,
) -> Result<(), SurveyTuneError> {
    let manifest = serde_json::json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "tune_file": tune.file,
        "survey": tune.survey.source,
        "seed": tune.seed,
        "objective": tune.objective,
        "question_split": {
            "rule": QUESTION_SPLIT_RULE,
            "train": tune.train_items,
            "held_out": tune.held_out_items,
        },
        "stages": [{"items": "train", "candidates": tune.cells.iter().map(|c| &c.name).collect::<Vec<_>>()}],
        "held_out": {"items": "held_out", "read": if summary.held_out.is_empty() { "not yet" } else { "once, after the choice" }},
        "summary": summary,
    });
    let path = out.join(super::TUNE_MANIFEST);
    crate::fsutil::write_atomic(&path, format!("{manifest:#}\n").as_bytes())
        .map_err(|source| SurveyTuneError::Io { path, source })
}

/// The survey tune's Markdown report.
pub(crate) fn survey_tune_markdown(tune: &SurveyTune, s: &SurveyTuneSummary) -> String {
    use std::fmt::Write as _;
    let num = crate::stats::format::num;
    let opt = |x: Option<f64>| x.map_or_else(|| "n/a".into(), num);
    let mut out = String::from("# vsim tune (survey)\n\n");
    let objective = serde_json::to_value(s.objective).ok().and_then(|v| v.as_str().map(str::to_string));
    let _ = writeln!(
        out,
        "Objective: {} (lower is better; representativeness enters as 1 − representativeness), over the \
         (item, subgroup) pairs with human answers.\n",
        objective.unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "Protocol: the survey's items were split by a fixed rule over their ids ({QUESTION_SPLIT_RULE}): {} train \
         items ({}) and {} held-out items ({}). Every candidate answered the train items only; the held-out items \
         were asked once, after the choice, of the chosen setting and the baselines. `tune.json` records the split.\n",
        s.train_items.len(),
        s.train_items.join(", "),
        s.held_out_items.len(),
        s.held_out_items.join(", ")
    );
    if let Some(stop) = &s.stop {
        let _ = writeln!(out, "**Stopped before the end:** {stop}; resume to continue.\n");
    }
    if let Some(c) = &s.chosen {
        let _ = writeln!(out, "## Choice\n\n- chosen: `{}`", c.name);
        let _ = writeln!(out, "- train objective: {}", opt(s.chosen_train));
        let _ = writeln!(
            out,
            "- selection stability: {} (the share of {STABILITY_RESAMPLES} resamples of the train items in which the \
             choice still has the lowest objective)",
            opt(s.stability)
        );
        let _ = writeln!(out, "- held-out objective: {}", opt(s.held_out.first().and_then(|h| h.score)));
        let _ = writeln!(out, "- optimism gap (held-out minus train): {}\n", opt(s.optimism_gap));
    }
    let groups: Vec<&String> = tune.survey.groups.iter().collect();
    let table = |out: &mut String, title: &str, rows: &[SurveyTrial]| {
        let _ = writeln!(out, "## {title}\n");
        let _ = writeln!(
            out,
            "| candidate | objective | respondents | missing answers | {} |",
            groups.iter().map(|g| format!("representativeness: {g}")).collect::<Vec<_>>().join(" | ")
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: |{}", " ---: |".repeat(groups.len()));
        for t in rows {
            let per: Vec<String> =
                groups.iter().map(|g| opt(t.representativeness.get(*g).copied())).collect();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                t.cell.name,
                opt(t.score),
                t.respondents,
                t.missing_answers,
                per.join(" | ")
            );
        }
        let _ = writeln!(out);
    };
    if !s.held_out.is_empty() {
        table(&mut out, "Held-out items, per subgroup (the figures to report)", &s.held_out);
        let _ = writeln!(
            out,
            "Every item and subgroup: `test/report/report.md` and `test/report/report.html`.\n"
        );
    }
    table(&mut out, "Trials (train items)", &s.trials);
    out
}

/// What a survey sweep did.
#[derive(Debug, Clone, Serialize)]
pub struct SurveySweepSummary {
    /// The sweep folder.
    pub out_dir: PathBuf,
    /// Every candidate on every item, with its objective and per-subgroup representativeness.
    pub cells: Vec<SurveyTrial>,
    /// The comparison of the cells against the human subgroups (`report/report.md`, `.html`).
    #[serde(skip)]
    pub report: Option<crate::report::Written>,
    /// What the models produced.
    pub spend: Spend,
    /// Why the runs stopped early, if they did.
    pub stop: Option<StopCause>,
}

/// Runs every candidate of a survey sweep on every item (`OUT/CELL/`, each evaluated into its
/// `metrics.json`) and compares them against the human subgroups in `OUT/report/`.
pub async fn run_survey_sweep(
    sweep: &SurveyTune,
    models: &std::collections::HashMap<String, SharedModel>,
    options: &SurveyTuneOptions,
) -> Result<SurveySweepSummary, SurveyTuneError> {
    let out = options.out.clone().unwrap_or_else(|| sweep.out.clone());
    let folder = crate::fsutil::FolderKind {
        what: "a vsim sweep folder",
        manifest: crate::workflow::sweep::run::SWEEP_MANIFEST,
    };
    crate::rundir::claim_workflow_dir(&out, folder, options.resume).map_err(run_dir_error)?;
    let manifest_path = out.join(folder.manifest);
    let manifest = serde_json::json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "sweep_file": sweep.file,
        "survey": sweep.survey.source,
        "seed": sweep.seed,
        "common_random_numbers": "every cell uses the same seed: respondent i has the same subgroup and seed in every cell",
        "cells": sweep.cells,
    });
    crate::fsutil::write_atomic(&manifest_path, format!("{manifest:#}\n").as_bytes())
        .map_err(|source| SurveyTuneError::Io { path: manifest_path.clone(), source })?;
    let budget = sweep.budget.overridden_by(&options.budget);
    let mut spend = Spend::default();
    let (cells, reports, stop) =
        run_cells(sweep, models, options, &mut spend, budget, &sweep.cells, &sweep.train_items, &out).await?;
    let report = if reports.is_empty() {
        None
    } else {
        Some(crate::report::survey::write_survey_comparison(&out.join("report"), &reports)?)
    };
    Ok(SurveySweepSummary { out_dir: out, cells, report, spend, stop })
}
