//! Running a tune: search stages on seeded samples of the train split, the choice, its
//! selection stability, and one final run of the choice and the baselines on held-out
//! people.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::Rng;
use serde::Serialize;

use super::objective::{Objective, PersonValues, Score};
use super::spec::{Strategy, Tune};
use crate::backend::SharedModel;
use crate::data::persuasionforgood::Split;
use crate::dialogue::events::Measure;
use crate::eval::metrics::{ComparisonCounts, Evaluation, Metric};
use crate::eval::{read_metrics, EvalOptions};
use crate::experiment::budget::{Budget, Prices, Spend};
use crate::experiment::population::Population;
use crate::experiment::progress::{RunEvent, RunProgress};
use crate::experiment::{Shard, StopCause};
use crate::report::Written;
use crate::workflow::sweep::{
    evaluate_sweep, run_sweep, summary::STATED_FOLDER, Cell, SweepError, SweepEvalOptions, SweepOptions,
};

/// The tune folder's record of what it did and which split each stage read.
pub const TUNE_MANIFEST: &str = "tune.json";

/// How a tune is run.
#[derive(Debug, Clone, Default)]
pub struct TuneOptions {
    /// Continue a tune already (partly) run in the folder.
    pub resume: bool,
    /// Who hears how the runs go.
    pub progress: RunProgress,
    /// Overrides the file's `out`.
    pub out: Option<PathBuf>,
    /// Extra prices, over the file's.
    pub prices: Prices,
    /// Overrides the file's budget where set.
    pub budget: Budget,
    /// Stop starting a run's dialogues after this many failed in a row (0: never).
    pub max_consecutive_failures: usize,
    /// Overrides the file's `replicates` where set.
    pub replicates: Option<usize>,
    /// Bootstrap settings of every evaluation (its seed seeds the intervals).
    pub eval: EvalOptions,
    /// What stops the runs early, keeping finished dialogues (default: Ctrl-C).
    pub interrupt: crate::experiment::Interrupt,
    /// Run only this shard of the current stage's dialogues (the first stage not yet
    /// scored, or the held-out runs), into `shards/STAGE/I-of-N/`, and stop. A later run
    /// without a shard merges every shard of that stage before it goes on.
    pub shard: Option<Shard>,
    /// Stop after the first stage this run scores (merging its shards first), before the
    /// next stage's dialogues start: one step of a cluster driver's loop.
    pub stage_only: bool,
}

/// One candidate evaluated at one stage.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The stage, from 0.
    pub stage: usize,
    /// The split the stage read (always `train`).
    pub split: Split,
    /// People the candidate was run on.
    pub people: usize,
    /// The candidate.
    pub cell: Cell,
    /// Its run directory.
    pub dir: PathBuf,
    /// The objective on those people.
    pub score: Score,
    /// Whether it went on to the next stage (or, at the last stage, was chosen).
    pub kept: bool,
}

/// One search stage: which people it read and which candidates it ran.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// The stage, from 0.
    pub index: usize,
    /// The split it read: always `train`.
    pub split: Split,
    /// How many train people it ran each candidate on (a seeded sample; every stage's
    /// people include the previous stage's).
    pub people: usize,
    /// The candidates it ran.
    pub candidates: Vec<String>,
    /// Its folder (a sweep folder).
    pub dir: PathBuf,
}

/// One arm of the held-out comparison.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    /// `chosen` or `baseline`.
    pub kind: &'static str,
    /// The arm's settings.
    pub cell: Cell,
    /// Its run directory.
    pub dir: PathBuf,
    /// The objective on the held-out people.
    pub score: Score,
    /// KS statistic with its interval.
    pub ks: Option<Metric>,
    /// Its p-value.
    pub ks_pvalue: Option<f64>,
    /// Paired L1 with its interval.
    pub l1_paired: Option<Metric>,
    /// Density L1 with its interval.
    pub l1_density: Option<Metric>,
    /// The counts behind the figures (simulated, human, paired, missing, failed).
    pub counts: Option<ComparisonCounts>,
    /// Simulated mean.
    pub mean: Option<Metric>,
}

/// What a tune did.
#[derive(Debug, Clone, Serialize)]
pub struct TuneSummary {
    /// The tune folder.
    pub out_dir: PathBuf,
    /// What was minimised.
    pub objective: Objective,
    /// How the search went.
    pub strategy: Strategy,
    /// Train people available (after `train_n`).
    pub train_people: usize,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Every candidate at every stage.
    pub trials: Vec<Trial>,
    /// The chosen setting (`None` when the search stopped early).
    pub chosen: Option<Cell>,
    /// The chosen setting's objective at the last stage, on train people.
    pub chosen_train: Option<Score>,
    /// The share of resamples of the last stage's train people in which the chosen setting
    /// still has the lowest objective among that stage's candidates.
    pub stability: Option<f64>,
    /// Resamples behind `stability`.
    pub stability_resamples: usize,
    /// Held-out people the choice and the baselines ran on.
    pub test_people: usize,
    /// The held-out comparison: the choice first, then the baselines.
    pub held_out: Vec<HeldOut>,
    /// The human values of the held-out people (mean, with its interval).
    pub human_test_mean: Option<Metric>,
    /// Held-out objective of the choice minus its train objective (positive: the train
    /// score was optimistic).
    pub optimism_gap: Option<f64>,
    /// The held-out comparison report (`test/report.md`, `.html`), with the stated measure's
    /// under `test/stated/` when the scenario records one.
    #[serde(skip)]
    pub test_report: Option<Written>,
    /// What the models produced over the whole tune.
    pub spend: Spend,
    /// Why the runs stopped before the end, if they did (budget, failures, an interrupt);
    /// resuming continues.
    pub stop: Option<StopCause>,
    /// Why the search ended without a choice although nothing stopped it (no candidate of
    /// a stage could be scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unscored: Option<String>,
    /// Where the tune paused as asked ([`TuneOptions::shard`], [`TuneOptions::stage_only`]);
    /// `--resume` goes on from there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<Paused>,
}

/// Where a tune paused as asked.
#[derive(Debug, Clone, Serialize)]
pub struct Paused {
    /// The stage it paused at: `train stage S`, or `held-out`.
    pub stage: String,
    /// The shard it ran of that stage, when it ran one.
    pub shard: Option<Shard>,
    /// Whether that stage is scored (`stage_only`) or still waits for its shards to be
    /// merged by a run without a shard.
    pub scored: bool,
}

/// Why a tune failed.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// A sweep step (reading the file, running candidates) failed.
    #[error(transparent)]
    Sweep(#[from] SweepError),
    /// The population could not be loaded.
    #[error(transparent)]
    Population(#[from] crate::experiment::population::PopulationError),
    /// A report or evaluation could not be written or read.
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
    /// The population has no train people.
    #[error("the population `{0}` has no train people")]
    NoTrainPeople(String),
}

/// The people of each stage: stage `s` of `stages` runs on `max(start, n / eta^(stages-1-s))`
/// people, so that the last stage runs every train person used.
pub fn stage_sizes(strategy: Strategy, candidates: usize, people: usize) -> Vec<usize> {
    match strategy {
        Strategy::Grid => vec![people],
        Strategy::Halving { start, eta } => {
            let mut stages = 1;
            let mut left = candidates;
            while left > 1 {
                left = left.div_ceil(eta);
                stages += 1;
            }
            // The last halving leaves one: the choice is made at the stage before it.
            let stages = (stages - 1).max(1);
            (0..stages)
                .map(|s| {
                    let shrink = eta.saturating_pow((stages - 1 - s) as u32).max(1);
                    (people / shrink).max(start.min(people)).min(people)
                })
                .collect()
        }
    }
}

/// The train population in a seeded order: every stage takes its first `n`.
fn train_population(tune: &Tune) -> Result<Population, TuneError> {
    let sweep = &tune.sweep;
    let mut p = Population::load_split(&sweep.population, Some(Split::Train))?;
    let mut order: Vec<usize> = (0..p.members.len()).collect();
    order.shuffle(&mut crate::seed::rng(crate::seed::derive_named(sweep.seed, "tune/train-people")));
    order.truncate(tune.train_n.unwrap_or(usize::MAX).min(order.len()));
    if order.is_empty() {
        return Err(TuneError::NoTrainPeople(sweep.population.clone()));
    }
    p.members = order.iter().map(|i| p.members[*i].clone()).collect();
    if let Some(r) = &mut p.reference {
        r.participant_ids = order.iter().filter_map(|i| r.participant_ids.get(*i).cloned()).collect();
    }
    Ok(p)
}

/// The first `n` people of `p`.
fn first(p: &Population, n: usize) -> Population {
    let mut q = p.clone();
    q.members.truncate(n);
    if let Some(r) = &mut q.reference {
        r.participant_ids.truncate(n);
    }
    q
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TuneError + '_ {
    move |source| TuneError::Io { path: path.to_path_buf(), source }
}

/// The shard folders of the stage whose folder is `dir` (`OUT/shards/NAME/`), NAME being the
/// stage folder's path below `OUT` with `/` as `-` (`train-stage-0`, `test`).
fn shards_dir(out: &Path, dir: &Path) -> PathBuf {
    let name = dir.strip_prefix(out).unwrap_or(dir).to_string_lossy().replace(['/', '\\'], "-");
    out.join("shards").join(name)
}

/// The marker a stage's folder gets once every candidate of it has run and been evaluated:
/// shard runs read the stage's scores back instead of running it again.
const STAGE_SCORED: &str = "stage-scored.json";

/// Whether the stage in `dir` was run to the end and evaluated.
fn stage_scored(dir: &Path) -> bool {
    dir.join(STAGE_SCORED).is_file()
}

/// Each cell's evaluation of the objective's measure in the stage folder `dir` (`None`
/// where a cell could not be evaluated).
fn read_evaluations(tune: &Tune, dir: &Path, cells: &[Cell]) -> Vec<Option<Evaluation>> {
    cells
        .iter()
        .map(|c| {
            let cell_dir = dir.join(&c.name);
            let metrics_dir = if tune.objective.measure == Measure::Stated {
                cell_dir.join(STATED_FOLDER)
            } else {
                cell_dir
            };
            read_metrics(&metrics_dir).ok()
        })
        .collect()
}

/// What one stage's run gave: each cell's evaluation, what the runs spent, why they
/// stopped, and whether only a shard ran (nothing evaluated then).
struct StageOutcome {
    evaluations: Vec<Option<Evaluation>>,
    spend: Spend,
    stopped: Option<StopCause>,
    shard_only: bool,
}

/// Runs `cells` on `population` into `dir` and evaluates them, after merging the shards
/// already run of this stage; with [`TuneOptions::shard`], runs only that shard into the
/// stage's shard folder and evaluates nothing.
#[allow(clippy::too_many_arguments)]
async fn run_stage(
    tune: &Tune,
    models: &HashMap<String, SharedModel>,
    options: &TuneOptions,
    budget: Budget,
    cells: &[Cell],
    population: Population,
    out: &Path,
    dir: &Path,
) -> Result<StageOutcome, TuneError> {
    let shards = shards_dir(out, dir);
    let (sweep_out, resume, merge_shards) = match options.shard {
        Some(s) => (shards.join(format!("{}-of-{}", s.index, s.count)), true, Vec::new()),
        None => (dir.to_path_buf(), options.resume, shard_folders(&shards)?),
    };
    let sweep_options = SweepOptions {
        resume,
        progress: options.progress.clone(),
        out: Some(sweep_out),
        prices: options.prices.clone(),
        budget,
        max_consecutive_failures: options.max_consecutive_failures,
        replicates: options.replicates,
        cells: Some(cells.to_vec()),
        population: Some(population),
        interrupt: options.interrupt.clone(),
        shard: options.shard,
        merge_shards,
    };
    let summary = run_sweep(&tune.sweep, models, &sweep_options).await?;
    let stopped = summary.stop.clone();
    if stopped.is_some() || options.shard.is_some() {
        // Scores of cut-short candidates, or of one shard, would mislead; a run without a
        // shard (`--resume`) merges, finishes and scores them.
        return Ok(StageOutcome {
            evaluations: vec![None; cells.len()],
            spend: summary.spend,
            stopped,
            shard_only: options.shard.is_some(),
        });
    }
    let eval_options = SweepEvalOptions { eval: options.eval.clone(), ..SweepEvalOptions::default() };
    evaluate_sweep(dir, cells, tune.sweep.human_spec().as_deref(), &eval_options, None).await?;
    let marker = dir.join(STAGE_SCORED);
    let names: Vec<&str> = cells.iter().map(|c| c.name.as_str()).collect();
    let record = serde_json::json!({ "candidates": names });
    crate::fsutil::write_atomic(&marker, format!("{record:#}\n").as_bytes()).map_err(io(&marker))?;
    Ok(StageOutcome {
        evaluations: read_evaluations(tune, dir, cells),
        spend: summary.spend,
        stopped,
        shard_only: false,
    })
}

/// The shard sweep folders in `shards` (`I-of-N`), in name order; none when it is missing.
fn shard_folders(shards: &Path) -> Result<Vec<PathBuf>, TuneError> {
    let entries = match std::fs::read_dir(shards) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(shards)(e)),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_string_lossy().contains("-of-"))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The share of `resamples` resamples of the people in which `chosen` keeps the lowest
/// objective among `finalists`.
fn selection_stability(
    objective: &Objective,
    finalists: &[(usize, &Evaluation)],
    chosen: usize,
    resamples: usize,
    seed: u64,
) -> Option<f64> {
    if finalists.len() < 2 || resamples == 0 {
        return None;
    }
    let people: Vec<BTreeMap<String, PersonValues>> =
        finalists.iter().map(|(_, e)| objective.people(e)).collect();
    let distinct: Vec<Option<f64>> = finalists
        .iter()
        .map(|(_, e)| objective.score(e).terms.get(&super::objective::Distance::Distinct1).copied().flatten())
        .collect();
    // Common people: those every finalist has values for.
    let ids: Vec<&String> =
        people[0].keys().filter(|id| people.iter().all(|p| p.contains_key(*id))).collect();
    if ids.is_empty() {
        return None;
    }
    let mut rng = crate::seed::rng(seed);
    let mut wins = 0usize;
    for _ in 0..resamples {
        let draw: Vec<&String> = (0..ids.len()).map(|_| ids[rng.random_range(0..ids.len())]).collect();
        let best = finalists
            .iter()
            .enumerate()
            .filter_map(|(i, (index, _))| {
                let sample: Vec<&PersonValues> = draw.iter().map(|id| &people[i][*id]).collect();
                objective.score_people(&sample, distinct[i]).map(|v| (v, *index))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        wins += usize::from(best.is_some_and(|(_, index)| index == chosen));
    }
    Some(wins as f64 / resamples as f64)
}

/// The search: every stage's candidates on its train people, the best kept; returns the
/// choice and the last stage's candidates with their evaluations, or `None` when a stop or
/// an unscorable stage ended the search (recorded in `summary`).
#[allow(clippy::too_many_arguments)]
async fn search(
    tune: &Tune,
    models: &HashMap<String, SharedModel>,
    options: &TuneOptions,
    budget: Budget,
    train: &Population,
    sizes: &[usize],
    out: &Path,
    summary: &mut TuneSummary,
) -> Result<Option<(Cell, Vec<(Cell, Option<Evaluation>)>)>, TuneError> {
    let mut field: Vec<Cell> = tune.sweep.cells();
    let mut last: Vec<(Cell, Option<Evaluation>)> = Vec::new();
    for (s, people) in sizes.iter().enumerate() {
        let dir = out.join("train").join(format!("stage-{s}"));
        options.progress.emit(RunEvent::Phase {
            name: format!(
                "train stage {}/{}: {} candidates on {people} train people",
                s + 1,
                sizes.len(),
                field.len()
            ),
        });
        summary.stages.push(Stage {
            index: s,
            split: Split::Train,
            people: *people,
            candidates: field.iter().map(|c| c.name.clone()).collect(),
            dir: dir.clone(),
        });
        write_manifest(out, tune, summary, options)?;
        let scored_before = stage_scored(&dir);
        let outcome = if options.shard.is_some() && scored_before {
            // Scored by an earlier run: read back, so a shard runs only the current stage.
            StageOutcome {
                evaluations: read_evaluations(tune, &dir, &field),
                spend: Spend::default(),
                stopped: None,
                shard_only: false,
            }
        } else {
            run_stage(
                tune,
                models,
                options,
                budget.minus(&summary.spend),
                &field,
                first(train, *people),
                out,
                &dir,
            )
            .await?
        };
        summary.spend += &outcome.spend;
        if outcome.shard_only {
            // A shard stopped early (budget, failures, Ctrl-C) says why; one that ran to
            // its end pauses for the merge.
            match outcome.stopped {
                Some(stop) => summary.stop = Some(stop),
                None => {
                    summary.paused = Some(Paused {
                        stage: format!("train stage {s}"),
                        shard: options.shard,
                        scored: false,
                    })
                }
            }
            return Ok(None);
        }
        let (evaluations, stopped) = (outcome.evaluations, outcome.stopped);
        let mut scored: Vec<(usize, Score)> = evaluations
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.as_ref().map_or_else(no_score, |e| tune.objective.score(e))))
            .collect();
        scored.sort_by(|a, b| match (a.1.value, b.1.value) {
            (Some(x), Some(y)) => x.total_cmp(&y).then(a.0.cmp(&b.0)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.cmp(&b.0),
        });
        let keep = match tune.strategy {
            Strategy::Halving { eta, .. } if s + 1 < sizes.len() => field.len().div_ceil(eta),
            _ => 1,
        };
        let kept: Vec<usize> =
            scored.iter().filter(|(_, sc)| sc.value.is_some()).take(keep).map(|(i, _)| *i).collect();
        for (i, score) in scored {
            summary.trials.push(Trial {
                stage: s,
                split: Split::Train,
                people: *people,
                cell: field[i].clone(),
                dir: dir.join(&field[i].name),
                score,
                kept: kept.contains(&i),
            });
        }
        if stopped.is_some() {
            summary.stop = stopped;
            return Ok(None);
        }
        if kept.is_empty() {
            summary.unscored = Some(format!("no candidate of train stage {s} could be scored"));
            return Ok(None);
        }
        if options.stage_only && !scored_before {
            summary.paused = Some(Paused { stage: format!("train stage {s}"), shard: None, scored: true });
            return Ok(None);
        }
        last = field.iter().cloned().zip(evaluations).collect();
        field = kept.iter().map(|i| field[*i].clone()).collect();
    }
    Ok(Some((field[0].clone(), last)))
}

/// The held-out people, read once: the choice and the baselines run on them and are
/// compared with their real values.
async fn prove(
    tune: &Tune,
    models: &HashMap<String, SharedModel>,
    options: &TuneOptions,
    budget: Budget,
    chosen: &Cell,
    out: &Path,
    summary: &mut TuneSummary,
) -> Result<(), TuneError> {
    let mut test = Population::load_split(&tune.sweep.population, Some(Split::Test))?;
    let n = tune.test_n.unwrap_or(test.members.len()).min(test.members.len());
    test = first(&test, n);
    summary.test_people = n;
    let mut arms = vec![Cell { name: format!("chosen-{}", chosen.name), ..chosen.clone() }];
    arms.extend(tune.sweep.baseline_cells());
    let dir = out.join("test");
    options.progress.emit(RunEvent::Phase {
        name: format!("held-out: the choice and {} baselines on {n} test people", arms.len() - 1),
    });
    if options.shard.is_some() && stage_scored(&dir) {
        summary.paused = Some(Paused { stage: "held-out".into(), shard: options.shard, scored: true });
        return Ok(());
    }
    let outcome =
        run_stage(tune, models, options, budget.minus(&summary.spend), &arms, test, out, &dir).await?;
    summary.spend += &outcome.spend;
    summary.stop = outcome.stopped;
    if outcome.shard_only {
        if summary.stop.is_none() {
            summary.paused = Some(Paused { stage: "held-out".into(), shard: options.shard, scored: false });
        }
        return Ok(());
    }
    let evaluations = outcome.evaluations;
    for (i, (cell, e)) in arms.iter().zip(&evaluations).enumerate() {
        let o = e.as_ref().and_then(|e| e.numeric.iter().find(|o| o.key == tune.objective.outcome));
        let c = o.and_then(|o| o.comparison.as_ref());
        if i == 0 {
            summary.human_test_mean = o.and_then(|o| o.human.as_ref()).map(|h| h.mean.clone());
        }
        summary.held_out.push(HeldOut {
            kind: if i == 0 { "chosen" } else { "baseline" },
            cell: cell.clone(),
            dir: dir.join(&cell.name),
            score: e.as_ref().map_or_else(no_score, |e| tune.objective.score(e)),
            ks: c.map(|c| c.ks.statistic.clone()),
            ks_pvalue: c.and_then(|c| c.ks.pvalue),
            l1_paired: c.map(|c| c.l1_paired.clone()),
            l1_density: c.map(|c| c.l1_density_pfg.clone()),
            counts: c.map(|c| c.counts),
            mean: o.map(|o| o.simulated.mean.clone()),
        });
    }
    Ok(())
}

/// Runs `tune` with backends from `models` (keyed by spec; see
/// [`crate::workflow::sweep::Sweep::model_specs`]): every search stage reads only the train
/// split; the chosen setting and the baselines then run once on the held-out people.
pub async fn run_tune(
    tune: &Tune,
    models: &HashMap<String, SharedModel>,
    options: &TuneOptions,
) -> Result<TuneSummary, TuneError> {
    let out = options.out.clone().unwrap_or_else(|| tune.sweep.out.clone());
    let folder = crate::fsutil::FolderKind { what: "a vsim tune folder", manifest: TUNE_MANIFEST };
    // Shards of one tune start side by side in one folder.
    crate::rundir::claim_workflow_dir(&out, folder, options.resume || options.shard.is_some())
        .map_err(|e| TuneError::Sweep(SweepError::Run(crate::experiment::runner::RunError::RunDir(e))))?;
    let budget = tune.sweep.budget.overridden_by(&options.budget);
    let train = train_population(tune)?;
    let candidates = tune.sweep.cells();
    let sizes = stage_sizes(tune.strategy, candidates.len(), train.members.len());
    let mut summary = TuneSummary {
        out_dir: out.clone(),
        objective: tune.objective.clone(),
        strategy: tune.strategy,
        train_people: train.members.len(),
        stages: Vec::new(),
        trials: Vec::new(),
        chosen: None,
        chosen_train: None,
        stability: None,
        stability_resamples: tune.bootstrap,
        test_people: 0,
        held_out: Vec::new(),
        human_test_mean: None,
        optimism_gap: None,
        test_report: None,
        spend: Spend::default(),
        stop: None,
        unscored: None,
        paused: None,
    };
    let Some((chosen, last)) =
        search(tune, models, options, budget, &train, &sizes, &out, &mut summary).await?
    else {
        write_manifest(&out, tune, &summary, options)?;
        return Ok(summary);
    };
    let finalists: Vec<(usize, &Evaluation)> =
        last.iter().filter_map(|(c, e)| e.as_ref().map(|e| (c.index, e))).collect();
    summary.chosen_train = last
        .iter()
        .find(|(c, _)| c.index == chosen.index)
        .and_then(|(_, e)| e.as_ref())
        .map(|e| tune.objective.score(e));
    summary.stability = selection_stability(
        &tune.objective,
        &finalists,
        chosen.index,
        tune.bootstrap,
        crate::seed::derive_named(tune.sweep.seed, "tune/stability"),
    );
    summary.chosen = Some(chosen.clone());
    write_manifest(&out, tune, &summary, options)?;

    // The held-out people, read once: the choice and the baselines.
    prove(tune, models, options, budget, &chosen, &out, &mut summary).await?;
    // A shard never writes the report: the run that merges the shards does.
    if summary.paused.is_some() || options.shard.is_some() {
        write_manifest(&out, tune, &summary, options)?;
        return Ok(summary);
    }
    summary.optimism_gap = match (&summary.held_out.first(), &summary.chosen_train) {
        (Some(h), Some(t)) => h.score.value.zip(t.value).map(|(test, train)| test - train),
        _ => None,
    };
    let test_dir = out.join("test");
    let report =
        if tune.objective.measure == Measure::Stated { test_dir.join(STATED_FOLDER) } else { test_dir };
    summary.test_report =
        Some(Written { markdown: report.join("report.md"), html: report.join("report.html") });
    write_manifest(&out, tune, &summary, options)?;
    super::report::write_tune_report(&out, &summary)?;
    Ok(summary)
}

fn no_score() -> Score {
    Score {
        value: None,
        ci: None,
        terms: BTreeMap::new(),
        note: Some("not evaluated (no completed dialogue?)".into()),
    }
}

/// `tune.json`: the tune file, the objective, and every stage with the split it read.
///
/// A shard run writes it only when it is missing (to mark the folder as a tune's): shards
/// run side by side, and the run that merges them records what they did.
fn write_manifest(
    out: &Path,
    tune: &Tune,
    summary: &TuneSummary,
    options: &TuneOptions,
) -> Result<(), TuneError> {
    if options.shard.is_some() && out.join(TUNE_MANIFEST).exists() {
        return Ok(());
    }
    let manifest = serde_json::json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "tune_file": tune.sweep.file,
        "scenario": tune.sweep.scenario.source,
        "population": tune.sweep.population,
        "seed": tune.sweep.seed,
        "role": tune.sweep.role,
        "objective": summary.objective,
        "objective_text": summary.objective.describe(),
        "strategy": summary.strategy,
        "train_people": summary.train_people,
        "train_people_rule": "a seeded shuffle of the train split (seed derived from the tune seed and \
            `tune/train-people`), cut to train_n; every stage takes its first people",
        "stages": summary.stages,
        "held_out": {
            "split": Split::Test,
            "people": summary.test_people,
            "read": if summary.chosen.is_some() && !summary.held_out.is_empty() {
                "once, after the choice"
            } else {
                "not yet"
            },
        },
        "chosen": summary.chosen,
        "stability": summary.stability,
        "optimism_gap": summary.optimism_gap,
        "stop": summary.stop,
        "unscored": summary.unscored,
        "paused": summary.paused,
        "summary": summary,
    });
    let path = out.join(TUNE_MANIFEST);
    crate::fsutil::write_atomic(&path, format!("{manifest:#}\n").as_bytes()).map_err(io(&path))
}
