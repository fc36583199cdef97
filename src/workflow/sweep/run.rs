//! Running a sweep's cells, one run directory each, under one budget.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::grid::Cell;
use super::spec::Sweep;
use super::summary::{summarize_run, write_summary_tables, RunStats};
use super::SweepError;
use crate::backend::SharedModel;
use crate::experiment::budget::{Budget, Prices, Spend};
use crate::experiment::population::Population;
use crate::experiment::progress::{RunEvent, RunProgress};
use crate::experiment::runner::{
    run_experiment_with, RoleModel, RunConfig, RunError, RunOptions, RunSummary,
};
use crate::experiment::StopCause;
use crate::rundir::outcomes::outcome_columns;
use crate::rundir::PinnedInput;

/// The sweep directory's record of what it ran.
pub(crate) const SWEEP_MANIFEST: &str = "sweep.json";

/// `sweep.json`: the sweep as run, next to its cells' own run directories (each with its
/// manifest); written, not read back.
#[derive(serde::Serialize)]
struct SweepManifest<'a> {
    vsim_version: &'static str,
    sweep_file: &'a std::path::Path,
    scenario: &'a std::path::Path,
    /// The sweep file and scenario as they were when the sweep started.
    inputs: Vec<PinnedInput>,
    population: &'a str,
    split: Option<crate::data::persuasionforgood::Split>,
    population_reference: Option<&'a crate::rundir::PopulationReference>,
    human: Option<String>,
    role: &'a str,
    n: Option<usize>,
    seed: u64,
    replicates: usize,
    common_random_numbers: &'static str,
    min_keep: usize,
    grid: &'a super::spec::Grid,
    arms: &'a [super::spec::Arm],
    budget: Budget,
    prices: &'a Prices,
    cells: &'a [super::grid::Cell],
    /// The shard of every cell this folder holds, when it holds one.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<crate::experiment::Shard>,
}

/// How a sweep is run.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// Continue cells already (partly) run.
    pub resume: bool,
    /// Who hears how the cells go (silent by default).
    pub progress: RunProgress,
    /// Overrides the sweep file's `out`.
    pub out: Option<PathBuf>,
    /// Extra prices (e.g. from the command line), over the file's.
    pub prices: Prices,
    /// Overrides the file's budget where set.
    pub budget: Budget,
    /// Stop starting a cell's dialogues after this many failed in a row (0: never).
    pub max_consecutive_failures: usize,
    /// Overrides the file's `replicates` where set.
    pub replicates: Option<usize>,
    /// Runs these cells instead of the file's (a tune's surviving candidates), keeping
    /// their names and indices.
    pub cells: Option<Vec<Cell>>,
    /// Simulates these people instead of the file's population (a tune's seeded
    /// subsample of the train split).
    pub population: Option<Population>,
    /// What stops the cells early, keeping finished dialogues (default: Ctrl-C).
    pub interrupt: crate::experiment::Interrupt,
    /// Runs only this shard of every cell's dialogues (a tune stage spread over machines).
    pub shard: Option<crate::experiment::Shard>,
    /// Sweep folders of this sweep's shards: a cell whose run directory holds no transcript
    /// yet is first merged from the same cell of each of them (see [`crate::workflow::merge`]),
    /// then resumed, so only what no shard finished runs here.
    pub merge_shards: Vec<PathBuf>,
}

/// One cell's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CellResult {
    /// The cell's settings.
    pub cell: Cell,
    /// The cell's run directory.
    pub dir: PathBuf,
    /// `None` when the cell was not run (the sweep's budget was spent first).
    pub summary: Option<RunSummary>,
    /// Outcome statistics of the cell's run directory.
    pub stats: RunStats,
}

/// What a sweep did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepSummary {
    /// The sweep's output directory.
    pub out_dir: PathBuf,
    /// Every cell, in order.
    pub cells: Vec<CellResult>,
    /// What the models produced over the whole sweep, and its cost.
    pub spend: Spend,
    /// Why the sweep stopped before the end, when it did: a cell's cause, a budget's
    /// reason in the sweep's own figures (serialized as in [`RunSummary`]).
    pub stop: Option<StopCause>,
}

/// What a resumed sweep must share with the one that started its folder: the same cells, in
/// the same order, over the same people and seeds.
const SAME_SWEEP: [&str; 6] = ["cells", "n", "seed", "population", "split", "role"];

/// Refuses to resume the sweep folder of `manifest_path` with another sweep (a changed or
/// reordered arm, another sweep file with the same `out`), before `sweep.json` is rewritten.
fn refuse_another_sweep(
    manifest_path: &Path,
    manifest: &SweepManifest,
    file: &Path,
) -> Result<(), SweepError> {
    let Ok(text) = std::fs::read_to_string(manifest_path) else { return Ok(()) };
    let io = |e: serde_json::Error| SweepError::Io { path: manifest_path.to_path_buf(), source: e.into() };
    let old: serde_json::Value = serde_json::from_str(&text).map_err(io)?;
    // Through text, as the old one came: an `f32` such as a temperature of 0.7 becomes
    // 0.699999988079071 in a `Value` but "0.7" in the file.
    let new: serde_json::Value =
        serde_json::from_slice(&serde_json::to_vec(manifest).map_err(io)?).map_err(io)?;
    for key in SAME_SWEEP {
        if old.get(key) != new.get(key) {
            return Err(SweepError::Invalid {
                file: file.to_path_buf(),
                field: key.to_string(),
                reason: format!(
                    "differs from the sweep that started {} (its `{key}`); resume with that sweep \
                     as it was, or choose another out",
                    manifest_path.parent().unwrap_or(manifest_path).display()
                ),
            });
        }
    }
    Ok(())
}

/// Merges the cell `name` of each shard sweep folder in `shards` into the cell's run
/// directory `dir`, unless `dir` already holds a transcript (merged before, or run here).
fn merge_cell_shards(dir: &Path, name: &str, shards: &[PathBuf]) -> Result<(), SweepError> {
    let transcript = dir.join(crate::rundir::TRANSCRIPTS);
    if std::fs::metadata(&transcript).is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    let inputs: Vec<PathBuf> =
        shards.iter().map(|s| s.join(name)).filter(|d| d.join(crate::rundir::MANIFEST).is_file()).collect();
    if inputs.is_empty() {
        return Ok(());
    }
    crate::workflow::merge::merge_runs(dir, &inputs).map_err(SweepError::Merge)?;
    Ok(())
}

/// Runs every cell of `sweep` in order, each as a run directory under the output directory,
/// with backends from `models` (keyed by model spec; see [`Sweep::model_specs`]). Writes
/// `sweep.json`, `summary.csv` and `summary.md`.
// Long on purpose: claiming the folder, pinning the inputs and running the cells under one budget must happen in this order in one place, so that a refused sweep writes nothing.
pub async fn run_sweep(
    sweep: &Sweep,
    models: &HashMap<String, SharedModel>,
    options: &SweepOptions,
) -> Result<SweepSummary, SweepError> {
    let out = options.out.clone().unwrap_or_else(|| sweep.out.clone());
    let sweep_folder = crate::fsutil::FolderKind { what: "a vsim sweep folder", manifest: SWEEP_MANIFEST };
    crate::fsutil::claim_dir(&out, sweep_folder)
        .map_err(|source| SweepError::Io { path: out.clone(), source })?;
    let _lock = crate::rundir::RunLock::acquire(&out)
        .map_err(|e| SweepError::Run(RunError::RunDir(crate::rundir::RunDirError::Lock(e))))?;
    // A sweep that has run here is continued only with --resume: refuse before sweep.json
    // is rewritten to describe something other than the cells beside it.
    if !options.resume && out.join(SWEEP_MANIFEST).exists() {
        return Err(SweepError::Run(RunError::RunDir(crate::rundir::RunDirError::Exists(out.clone()))));
    }
    let population = match &options.population {
        Some(p) => p.clone(),
        None => Population::load_split(&sweep.population, sweep.split)?,
    };
    let mut prices = sweep.prices.clone();
    prices.extend(options.prices.clone());
    let budget = sweep.budget.overridden_by(&options.budget);
    let cells = options.cells.clone().unwrap_or_else(|| sweep.cells());
    // A cell's folder that is a link would take the cell's writes out of the sweep folder.
    for name in cells.iter().map(|c| c.name.as_str()).chain([SWEEP_MANIFEST, "summary.csv", "summary.md"]) {
        let path = out.join(name);
        crate::fsutil::refuse_link(&path).map_err(|source| SweepError::Io { path, source })?;
    }
    let mut inputs = vec![PinnedInput::pin("sweep", &sweep.file).map_err(RunError::from)?];
    if sweep.scenario.source.is_file() {
        inputs.push(PinnedInput::pin("scenario", &sweep.scenario.source).map_err(RunError::from)?);
    }
    let manifest = SweepManifest {
        vsim_version: env!("CARGO_PKG_VERSION"),
        sweep_file: &sweep.file,
        scenario: &sweep.scenario.source,
        inputs,
        population: &sweep.population,
        split: sweep.split,
        population_reference: population.reference.as_ref(),
        human: sweep.human_spec(),
        role: &sweep.role,
        n: sweep.n,
        seed: sweep.seed,
        replicates: options.replicates.unwrap_or(sweep.replicates),
        common_random_numbers:
            "every cell uses the same seed: dialogue i has the same persona and seed in every cell",
        min_keep: sweep.min_keep,
        grid: &sweep.grid,
        arms: &sweep.arms,
        budget,
        prices: &prices,
        cells: &cells,
        shard: options.shard,
    };
    let manifest_path = out.join(SWEEP_MANIFEST);
    if options.resume {
        refuse_another_sweep(&manifest_path, &manifest, &sweep.file)?;
    }
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| SweepError::Io { path: manifest_path.clone(), source: e.into() })?;
    crate::fsutil::write_atomic(&manifest_path, &bytes)
        .map_err(|source| SweepError::Io { path: manifest_path, source })?;

    let columns = outcome_columns(&sweep.scenario);
    let mut results = Vec::new();
    let mut total = Spend::default();
    let mut stop: Option<StopCause> = None;
    for cell in cells {
        let dir = out.join(&cell.name);
        let scenario = sweep.cell_scenario(&cell);
        let summary = if stop.is_some() {
            None
        } else {
            let mut role_models = Vec::new();
            for spec in sweep.role_models(&scenario) {
                let model =
                    models.get(&spec).cloned().ok_or_else(|| SweepError::MissingModel(spec.clone()))?;
                role_models.push(RoleModel { name: spec, model });
            }
            options.progress.emit(RunEvent::Stage { index: cell.index, name: cell.name.clone() });
            let config = RunConfig {
                n: sweep.n,
                seed: sweep.seed,
                concurrency: sweep.concurrency,
                out_dir: dir.clone(),
                resume: options.resume,
                progress: options.progress.clone(),
            };
            let left = budget.minus(&total);
            let extractors = crate::dialogue::run::Extractors(Arc::new(
                scenario
                    .stated_models()
                    .into_iter()
                    .filter_map(|spec| models.get(&spec).map(|m| (spec, m.clone())))
                    .collect(),
            ));
            if !options.merge_shards.is_empty() {
                merge_cell_shards(&dir, &cell.name, &options.merge_shards)?;
            }
            let run_options = RunOptions {
                shard: options.shard,
                budget: left,
                prices: prices.clone(),
                extractors,
                max_consecutive_failures: options.max_consecutive_failures,
                interrupt: options.interrupt.clone(),
                replicates: options.replicates.unwrap_or(sweep.replicates),
            };
            let summary =
                run_experiment_with(Arc::new(scenario), &population, &role_models, &config, &run_options)
                    .await?;
            total += &summary.spend;
            // The sweep's own figures, not the cell's share of what was left.
            stop = summary.stop.clone().map(|cause| match cause {
                StopCause::Budget { reason } => {
                    StopCause::Budget { reason: budget.stop_reason(&total).unwrap_or(reason) }
                }
                other => other,
            });
            Some(summary)
        };
        let stats = summarize_run(&dir, &columns, &prices)?;
        results.push(CellResult { cell, dir, summary, stats });
    }
    write_summary_tables(&out, &columns, &results)?;
    Ok(SweepSummary { out_dir: out, cells: results, spend: total, stop })
}
