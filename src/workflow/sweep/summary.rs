//! Summarising and evaluating a sweep's cells: per-cell outcome statistics, the combined
//! `summary.csv`/`summary.md` table, and the per-cell and comparison reports.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::grid::{k_label, Cell};
use super::run::CellResult;
use super::SweepError;
use crate::backend::Usage;
use crate::dialogue::events::Measure;
use crate::dialogue::Event;
use crate::eval::embed::Embedder;
use crate::eval::{
    evaluate, write_metrics, EvalError, EvalOptions, Evaluation, HumanError, HumanReference, RunData,
};
use crate::experiment::budget::Prices;
use crate::report::{write_comparison_files, write_run_report, Comparison, ReportError, Written};
use crate::rundir::transcript::{for_each_event, TranscriptError};

/// Outcome statistics of one run directory.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RunStats {
    /// Dialogues in the transcript.
    pub dialogues: usize,
    /// Dialogues whose latest attempt ended.
    pub completed: usize,
    /// Dialogues whose latest attempt did not end.
    pub failed: usize,
    /// Per outcome column (`role.name`).
    pub outcomes: BTreeMap<String, OutcomeStats>,
    /// Tokens recorded in the completed dialogues (cache hits included).
    pub usage: Usage,
    /// Their cost at the given prices, when every model used has one.
    pub cost_usd: Option<f64>,
}

/// One outcome's values across a run's completed dialogues.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OutcomeStats {
    /// Number of numeric values.
    pub n: usize,
    /// Mean of the numeric values.
    pub mean: Option<f64>,
    /// Sample standard deviation (n - 1) of the numeric values.
    pub sd: Option<f64>,
    /// Completed dialogues without a value.
    pub missing: usize,
    /// Counts of categorical values.
    pub categories: BTreeMap<String, usize>,
}

/// Summarises a run directory's transcript: counts, outcome means and categories, missing
/// outcomes, tokens and cost.
pub fn summarize_run(dir: &Path, columns: &[String], prices: &Prices) -> Result<RunStats, TranscriptError> {
    /// The latest attempt of one dialogue.
    #[derive(Default)]
    struct Attempt {
        models: HashMap<String, String>,
        usage: Usage,
        cost: Option<f64>,
        outcomes: Vec<(String, Option<Value>)>,
        ended: bool,
    }
    impl Attempt {
        fn charge(&mut self, role: &str, usage: Usage, prices: &Prices) {
            self.usage += usage;
            let price = self.models.get(role).and_then(|m| prices.lookup(m));
            self.cost = match (self.cost, price) {
                (Some(c), Some(p)) => Some(c + p.cost(usage)),
                (Some(c), None) if usage.total() == 0 => Some(c),
                _ => None,
            };
        }
    }

    let mut stats = RunStats::default();
    for c in columns {
        stats.outcomes.insert(c.clone(), OutcomeStats::default());
    }
    let path = dir.join("transcripts.jsonl");
    if !path.exists() {
        return Ok(stats);
    }
    // Read line by line, keeping one small record per dialogue.
    let mut attempts: BTreeMap<String, Attempt> = BTreeMap::new();
    for_each_event(&path, |e| match e {
        Event::Begin(b) => {
            let models = b.agents.into_iter().map(|a| (a.role, a.model)).collect();
            attempts.insert(b.dialogue, Attempt { models, cost: Some(0.0), ..Attempt::default() });
        }
        Event::Turn(t) => {
            if let Some(a) = attempts.get_mut(&t.dialogue) {
                a.charge(&t.speaker, t.usage, prices);
            }
        }
        Event::Outcome(o) => {
            if let Some(a) = attempts.get_mut(&o.dialogue) {
                a.charge(&o.role, o.usage, prices);
                // The stated measure has its own column, as in outcomes.csv.
                a.outcomes.push((o.column(), o.value));
            }
        }
        Event::End(end) => {
            if let Some(a) = attempts.get_mut(&end.dialogue) {
                a.ended = true;
            }
        }
        Event::Error(_) => {}
    })?;

    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut cost = Some(0.0);
    for attempt in attempts.into_values() {
        stats.dialogues += 1;
        if !attempt.ended {
            stats.failed += 1;
            continue;
        }
        stats.completed += 1;
        stats.usage += attempt.usage;
        cost = cost.zip(attempt.cost).map(|(a, b)| a + b);
        for (key, value) in attempt.outcomes {
            let entry = stats.outcomes.entry(key.clone()).or_default();
            match value {
                Some(Value::Number(x)) => values.entry(key).or_default().extend(x.as_f64()),
                Some(Value::String(s)) => *entry.categories.entry(s).or_default() += 1,
                Some(other) => *entry.categories.entry(other.to_string()).or_default() += 1,
                None => entry.missing += 1,
            }
        }
    }
    for (key, xs) in values {
        let entry = stats.outcomes.entry(key).or_default();
        entry.n = xs.len();
        if !xs.is_empty() {
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            entry.mean = Some(mean);
            if xs.len() > 1 {
                let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
                entry.sd = Some(var.sqrt());
            }
        }
    }
    stats.cost_usd = if prices.is_empty() { None } else { cost };
    Ok(stats)
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

/// The models a cell's run used, from its manifest: each distinct spec once, in role order.
fn models_used(dir: &Path) -> String {
    let Ok(Some(manifest)) = crate::rundir::read_manifest_if_any(dir) else { return String::new() };
    let mut seen: Vec<String> = Vec::new();
    for m in manifest.models {
        if !seen.contains(&m.model) {
            seen.push(m.model);
        }
    }
    seen.join(" / ")
}

/// The combined table: one row per cell.
fn summary_rows(columns: &[String], results: &[CellResult]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> =
        ["cell", "method", "k", "selection", "tau", "min_prob", "model", "dialogues", "completed", "failed"]
            .map(String::from)
            .to_vec();
    for c in columns {
        header.extend([
            format!("{c}.mean"),
            format!("{c}.sd"),
            format!("{c}.categories"),
            format!("{c}.missing"),
        ]);
    }
    header.extend(["tokens".to_string(), "cost_usd".to_string()]);
    let rows = results
        .iter()
        .map(|r| {
            let c = &r.cell;
            let mut row = vec![
                c.name.clone(),
                c.method.map(|m| m.to_string()).unwrap_or_default(),
                c.k.map(k_label).unwrap_or_default(),
                c.selection.map(|s| s.to_string()).unwrap_or_default(),
                c.tau.map(|t| t.map(|x| x.to_string()).unwrap_or_else(|| "none".into())).unwrap_or_default(),
                c.min_prob
                    .map(|t| t.map(|x| x.to_string()).unwrap_or_else(|| "none".into()))
                    .unwrap_or_default(),
                c.model.clone().unwrap_or_else(|| models_used(&r.dir)),
                r.stats.dialogues.to_string(),
                r.stats.completed.to_string(),
                r.stats.failed.to_string(),
            ];
            for col in columns {
                let o = r.stats.outcomes.get(col).cloned().unwrap_or_default();
                let cats = o.categories.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ");
                row.extend([fmt_opt(o.mean, 4), fmt_opt(o.sd, 4), cats, o.missing.to_string()]);
            }
            row.extend([r.stats.usage.total().to_string(), fmt_opt(r.stats.cost_usd, 6)]);
            row
        })
        .collect();
    (header, rows)
}

pub(super) fn write_summary_tables(
    out: &Path,
    columns: &[String],
    results: &[CellResult],
) -> Result<(), SweepError> {
    let (header, rows) = summary_rows(columns, results);
    let csv_path = out.join("summary.csv");
    let csv_err = |e: csv::Error| SweepError::Io { path: csv_path.clone(), source: std::io::Error::other(e) };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).map_err(csv_err)?;
    for row in &rows {
        w.write_record(row).map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| SweepError::Io {
        path: csv_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    crate::fsutil::write_atomic(&csv_path, &bytes)
        .map_err(|source| SweepError::Io { path: csv_path.clone(), source })?;

    let cell = |s: &str| s.replace('|', "\\|");
    let mut md = String::from("# Sweep summary\n\n");
    md.push_str(&format!("| {} |\n", header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
    md.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
    for row in &rows {
        md.push_str(&format!("| {} |\n", row.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
    }
    let md_path = out.join("summary.md");
    crate::fsutil::write_atomic(&md_path, md.as_bytes())
        .map_err(|source| SweepError::Io { path: md_path, source })
}

/// Why one cell could not be evaluated; the other cells are evaluated all the same.
#[derive(Debug, thiserror::Error)]
pub enum CellEvalError {
    /// The run could not be evaluated.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The human reference could not be loaded.
    #[error(transparent)]
    Human(#[from] HumanError),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// What became of one cell's evaluation.
#[derive(Debug)]
pub enum CellEvalStatus {
    /// `metrics.json`, `report.md` and `report.html` are in the cell's directory.
    Evaluated {
        /// The cell's `metrics.json`.
        metrics: PathBuf,
        /// The cell's report files.
        report: Written,
        /// Why semantic diversity is missing although an embedder was given.
        semantic_missing: Option<String>,
    },
    /// The cell's directory holds no transcript (e.g. the budget was spent first).
    NotRun,
    /// The evaluation failed.
    Failed(CellEvalError),
}

/// One cell's evaluation.
#[derive(Debug)]
pub struct CellEvaluation {
    /// The cell's settings.
    pub cell: Cell,
    /// The cell's run directory.
    pub dir: PathBuf,
    /// What became of its evaluation.
    pub status: CellEvalStatus,
}

/// What evaluating a sweep did.
#[derive(Debug)]
pub struct SweepEvaluation {
    /// Every cell, in order.
    pub cells: Vec<CellEvaluation>,
    /// The human reference the cells were compared with, if any.
    pub human: Option<String>,
    /// The comparison report (`OUT/report.md`, `OUT/report.html`), when any cell was
    /// evaluated: the answers to the outcome questions, through each cell's method.
    pub comparison: Option<Written>,
    /// The comparison of the stated measure (`OUT/stated/report.md`, `.html`), when the
    /// scenario declares outcomes with `stated = true`: what each role stated in the
    /// dialogue, the measure the Verbalized Sampling paper reports for PersuasionForGood.
    pub stated_comparison: Option<Written>,
    /// The comparison's caveats, e.g. cells compared with different references.
    pub notes: Vec<String>,
}

impl SweepEvaluation {
    /// Cells whose evaluation failed.
    pub fn failed(&self) -> impl Iterator<Item = (&CellEvaluation, &CellEvalError)> {
        self.cells.iter().filter_map(|c| match &c.status {
            CellEvalStatus::Failed(e) => Some((c, e)),
            _ => None,
        })
    }
}

/// How the cells of a sweep are evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepEvalOptions {
    /// The same options as a single run's evaluation; the seed seeds the bootstrap only.
    pub eval: EvalOptions,
    /// Dialogues shown in each cell's dialogue browser.
    pub max_dialogues: usize,
}

impl Default for SweepEvalOptions {
    fn default() -> Self {
        Self { eval: EvalOptions::default(), max_dialogues: crate::report::DEFAULT_MAX_DIALOGUES }
    }
}

/// The folder, in a cell and in the sweep's own folder, that holds the stated measure's
/// evaluation (as `vsim eval --measure stated` writes it).
pub(crate) const STATED_FOLDER: &str = "stated";

/// Evaluates every cell under `out_dir` as `vsim eval` does a run: against `human` narrowed
/// to exactly the people the cell simulated (in the split the cell recorded), writing
/// `metrics.json`, `report.md` and `report.html` into the cell's directory. Then writes one
/// comparison report of every evaluated cell into `out_dir` (the same report as
/// `vsim report`). A cell that cannot be evaluated (say, every dialogue failed) is
/// recorded as failed and left out of the comparison; only a comparison that cannot be
/// written is an error.
// Long on purpose: evaluates every cell, both measures, and writes both comparisons under one lock of the sweep folder.
pub async fn evaluate_sweep(
    out_dir: &Path,
    cells: &[Cell],
    human: Option<&str>,
    options: &SweepEvalOptions,
    embedder: Option<&dyn Embedder>,
) -> Result<SweepEvaluation, ReportError> {
    // Held while the cells' metrics and the comparison are written: a second sweep on the
    // same folder is refused instead of writing the same files at the same time.
    let _lock = crate::rundir::RunLock::acquire(out_dir)?;
    /// One measure of one cell, evaluated and written into `out` (the cell's folder for the
    /// answers, its `stated/` folder for the stated measure, as `vsim eval` writes them).
    async fn measure(
        run: &RunData,
        out: &Path,
        human: Option<&str>,
        options: &SweepEvalOptions,
        embedder: Option<&dyn Embedder>,
    ) -> Result<(Evaluation, PathBuf, Written), CellEvalError> {
        let reference = human.map(|spec| HumanReference::for_run(spec, run, None, false)).transpose()?;
        let evaluation = evaluate(run, reference.as_ref(), &options.eval, embedder).await?;
        if out != run.dir {
            crate::fsutil::refuse_link(out)
                .and_then(|()| std::fs::create_dir_all(out))
                .map_err(|source| ReportError::Io { path: out.to_path_buf(), source })?;
        }
        let metrics = write_metrics(out, &evaluation)?;
        let report = write_run_report(out, &evaluation, Some(run), options.max_dialogues)?;
        Ok((evaluation, metrics, report))
    }

    async fn one(
        dir: &Path,
        human: Option<&str>,
        options: &SweepEvalOptions,
        embedder: Option<&dyn Embedder>,
    ) -> Result<(Evaluation, Option<Evaluation>, CellEvalStatus), CellEvalError> {
        let run = RunData::load(dir)?;
        let (evaluation, metrics, report) = measure(&run, dir, human, options, embedder).await?;
        // The stated measure, when the scenario declares one.
        let stated_run = RunData::load_measure(dir, Measure::Stated)?;
        let stated = if stated_run.dialogues.iter().any(|d| !d.outcomes.is_empty()) {
            Some(measure(&stated_run, &dir.join(STATED_FOLDER), human, options, embedder).await?.0)
        } else {
            None
        };
        let semantic_missing = (embedder.is_some() && !evaluation.semantic.computed)
            .then(|| evaluation.semantic.reason.clone().unwrap_or_else(|| "not computed".into()));
        Ok((evaluation, stated, CellEvalStatus::Evaluated { metrics, report, semantic_missing }))
    }

    let mut evaluations = Vec::new();
    let mut stated_evaluations = Vec::new();
    let mut results = Vec::with_capacity(cells.len());
    for cell in cells {
        let dir = out_dir.join(&cell.name);
        let status = if !dir.join("transcripts.jsonl").is_file() {
            CellEvalStatus::NotRun
        } else {
            match one(&dir, human, options, embedder).await {
                Ok((evaluation, stated, status)) => {
                    evaluations.push(evaluation);
                    stated_evaluations.extend(stated);
                    status
                }
                Err(e) => CellEvalStatus::Failed(e),
            }
        };
        results.push(CellEvaluation { cell: cell.clone(), dir, status });
    }
    // The stated measure first: the answers' report leads with its headline.
    let stated =
        if stated_evaluations.is_empty() { None } else { Some(Comparison::new(stated_evaluations)?) };
    let stated_comparison = match &stated {
        None => None,
        Some(stated) => {
            let stated_dir = out_dir.join(STATED_FOLDER);
            crate::fsutil::refuse_link(&stated_dir)
                .and_then(|()| std::fs::create_dir_all(&stated_dir))
                .map_err(|source| ReportError::Io { path: stated_dir.clone(), source })?;
            Some(write_comparison_files(&stated_dir, stated)?)
        }
    };
    let (comparison, notes) = if evaluations.is_empty() {
        (None, Vec::new())
    } else {
        let mut comparison = Comparison::new(evaluations)?;
        if let Some(stated) = &stated {
            comparison.leads.push(crate::report::headline::Headline {
                title: format!(
                    "The stated measure: {} (every metric in `{STATED_FOLDER}/report.md`)",
                    crate::report::markdown::measure_text(Measure::Stated)
                ),
                why: if stated.runs.iter().any(|e| e.human.as_ref().is_some_and(|h| h.source.starts_with("pfg:"))) {
                    "It leads because it is what the Verbalized Sampling paper measures for PersuasionForGood: the \
                     final donation read from the conversation. The answers through each arm's method follow as a \
                     second measure; in the VS arms they are drawn from a verbalized distribution whatever happened \
                     in the dialogue."
                } else {
                    "It leads because it reads what happened in the dialogue, whatever each arm's method does with \
                     the closing question; the answers through each arm's method follow as a second measure."
                }
                .into(),
                tables: crate::report::headline::headline_tables(&stated.runs),
            });
        }
        (Some(write_comparison_files(out_dir, &comparison)?), comparison.notes)
    };
    Ok(SweepEvaluation {
        cells: results,
        human: human.map(str::to_string),
        comparison,
        stated_comparison,
        notes,
    })
}
