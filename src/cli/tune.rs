//! `vsim tune`: choose a role's settings on the train split, then run the choice and the
//! baselines once on held-out people.

use std::path::PathBuf;

use super::run::BudgetArgs;
use super::{BackendArgs, CliError, CliResult};
use vsim::eval::EvalOptions;
use vsim::experiment::launch::open_models;
use vsim::workflow::sweep::SweepError;
use vsim::workflow::tune::{load_tune, run_tune, TuneError, TuneOptions};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  vsim tune scenarios/tune_persuasion.toml --model openai:gpt-4o-mini
  vsim tune scenarios/tune_persuasion.toml --population pfg:DIR --model openai:gpt-4o-mini
  vsim tune scenarios/tune_persuasion.toml --model openai:mock@http://127.0.0.1:8089/v1 --out runs/tune1
  vsim tune scenarios/tune_persuasion.toml --out runs/tune1 --resume
  vsim tune scenarios/tune_persuasion.toml --out runs/tune1 --shard 3/16      (one shard of the current stage)
  vsim tune scenarios/tune_persuasion.toml --out runs/tune1 --resume --stage-only  (merge it, score it, stop)
  vsim tune scenarios/tune_survey_w26.toml --model openai:gpt-4o-mini

A tune file is a sweep file (the search space as a [grid] or [[arms]]) with a [tune] table:
objective (ks, l1_paired, l1_density, wasserstein, or a weighted sum such as
{ ks = 1.0, distinct1 = 0.5 }), outcome, measure (stated or answer), strategy (halving or grid),
start, eta, train_n, test_n, bootstrap; and [[baselines]] run beside the choice on the held-out
people. Every search stage reads only the train split; the test split is read once, at the end.
OUT holds train/stage-N/ (one sweep folder per stage), test/ (the held-out comparison, with
plots), tune.json (which split each stage read), trials.csv, report.md and report.html.

A file that names `survey = \"FILE\"` tunes a survey instead: its items are split into train and
held-out items by a fixed rule over their ids ([tune] held_out, default 1/3); candidates answer
the train items, the choice and the baselines the held-out ones, reported per subgroup.")]
pub struct TuneArgs {
    /// The tune file (TOML).
    pub tune: PathBuf,
    /// Output directory (default: the file's `out`, else runs/TUNE-NAME).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue an interrupted tune: stages already run are read back.
    #[arg(long)]
    pub resume: bool,
    /// Model for roles without their own (overrides the file's `model`).
    #[arg(long, value_name = "SPEC")]
    pub model: Option<String>,
    /// The people (overrides the file's `population`): `pfg:DIR`, whose train split is
    /// searched and whose test split is held out.
    #[arg(long, value_name = "SPEC")]
    pub population: Option<String>,
    /// Simulate each person R times (overrides the file's `replicates`).
    #[arg(long, value_name = "R")]
    pub replicates: Option<usize>,
    /// Run only shard I of N of the current stage's dialogues (the first stage not yet
    /// scored, or the held-out runs) into OUT/shards/, then stop; shards run side by side on
    /// any machines sharing OUT.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<vsim::experiment::Shard>,
    /// Merge the current stage's shards, finish and score that stage, and stop before the
    /// next one starts (with --resume: one step of a cluster driver's loop).
    #[arg(long, conflicts_with = "shard")]
    pub stage_only: bool,
    /// Bootstrap resamples per interval (0: no intervals).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub bootstrap: usize,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub async fn run(args: TuneArgs) -> CliResult {
    let text = std::fs::read_to_string(&args.tune)
        .map_err(|e| CliError::input(anyhow::Error::new(e).context(args.tune.display().to_string())))?;
    if vsim::workflow::tune::survey::names_a_survey(&text) {
        return run_survey_tune(&args, &text).await;
    }
    let mut tune = load_tune(&args.tune).map_err(CliError::input)?;
    if let Some(p) = &args.population {
        if !p.starts_with("pfg:") && !p.starts_with("p4g:") {
            return Err(CliError::input(anyhow::anyhow!(
                "--population {p}: a tune needs people with real values and a train/test split (pfg:DIR)"
            )));
        }
        tune.sweep.population = p.clone();
    }
    if let Some(m) = &args.model {
        vsim::backend::spec::ModelSpec::parse(m).map_err(CliError::input)?;
        tune.sweep.model = Some(m.clone());
    }
    let (models, notes) =
        open_models(tune.sweep.model_specs(), &args.backend.options(), tune.sweep.concurrency)
            .await
            .map_err(super::launch_error)?;
    super::print_notes(&notes);
    let out = args.out.clone().unwrap_or_else(|| tune.sweep.out.clone());
    let options = TuneOptions {
        resume: args.resume,
        progress: super::progress::run_progress(args.quiet, &out),
        out: args.out.clone(),
        prices: args.budget.prices()?,
        budget: args.budget.budget()?,
        max_consecutive_failures: args.budget.max_consecutive_failures,
        replicates: args.replicates,
        eval: EvalOptions { bootstrap: args.bootstrap, ..EvalOptions::default() },
        shard: args.shard,
        stage_only: args.stage_only,
        ..TuneOptions::default()
    };
    let candidates = tune.sweep.cells().len();
    errln!("tune: {candidates} candidates; objective: {}", tune.objective.describe());
    let summary = run_tune(&tune, &models, &options).await.map_err(|e| match e {
        TuneError::Sweep(SweepError::Run(ref r)) if r.is_input() => CliError::input(e),
        TuneError::Sweep(
            SweepError::Invalid { .. } | SweepError::MissingModel(_) | SweepError::Population(_),
        )
        | TuneError::Population(_)
        | TuneError::NoTrainPeople(_) => CliError::input(e),
        other => CliError::failed(other),
    })?;
    for t in &summary.trials {
        outln!(
            "train stage {} ({} people): {} objective {}{}",
            t.stage,
            t.people,
            t.cell.name,
            t.score.value.map_or_else(|| "n/a".into(), |v| format!("{v:.4}")),
            if t.kept { "  kept" } else { "" }
        );
    }
    if let Some(stop) = &summary.stop {
        // A shard continues itself; a whole tune needs --resume.
        let again = if args.shard.is_some() { "" } else { " with --resume" };
        errln!("{stop}; to continue, run the same command again{again}");
        match stop {
            vsim::experiment::StopCause::Interrupted => {
                return Ok(vsim::experiment::interrupt::received().map_or(130, |s| s.exit_code()))
            }
            vsim::experiment::StopCause::ConsecutiveFailures { .. } => return Ok(1),
            vsim::experiment::StopCause::Budget { .. } if summary.chosen.is_none() => return Ok(0),
            vsim::experiment::StopCause::Budget { .. } => {}
        }
    }
    if let Some(p) = &summary.paused {
        print_pause(p, &args, &summary.out_dir);
        return Ok(0);
    }
    if let Some(why) = &summary.unscored {
        errln!("no choice: {why}");
        return Ok(1);
    }
    print_choice(&summary);
    outln!("{}: report.md, report.html, trials.csv, tune.json; {}", summary.out_dir.display(), summary.spend);
    Ok(0)
}

/// Where a tune paused as asked, and the command that goes on.
fn print_pause(p: &vsim::workflow::tune::Paused, args: &TuneArgs, out: &std::path::Path) {
    let go_on = format!("vsim tune {} --out {} --resume", args.tune.display(), out.display());
    match (p.shard, p.scored) {
        (Some(_), true) => {
            outln!("the tune in {} is finished; nothing left for a shard (see its report.md)", out.display())
        }
        (Some(s), false) => outln!(
            "{}: shard {s} done; once every shard has finished, merge them and go on with: {go_on}",
            p.stage
        ),
        (None, _) => outln!(
            "{}: scored; run the next stage's shards (--shard I/N), or all of it here: {go_on}",
            p.stage
        ),
    }
}

/// The choice, the held-out comparison and the optimism gap, a line each.
fn print_choice(summary: &vsim::workflow::tune::TuneSummary) {
    if let Some(c) = &summary.chosen {
        outln!(
            "chosen: {} (train objective {}; selection stability {} over {} resamples)",
            c.name,
            summary
                .chosen_train
                .as_ref()
                .and_then(|s| s.value)
                .map_or_else(|| "n/a".into(), |v| format!("{v:.4}")),
            summary.stability.map_or_else(|| "n/a".into(), |v| format!("{v:.2}")),
            summary.stability_resamples
        );
    }
    for h in &summary.held_out {
        let n = h.counts.map_or_else(String::new, |n| {
            format!(
                " (simulated {}, human {}, paired {}, missing {}, failed {})",
                n.simulated, n.human, n.paired, n.missing, n.failed
            )
        });
        let f = |m: &Option<vsim::eval::Metric>| {
            m.as_ref().and_then(|m| m.estimate()).map_or_else(|| "n/a".into(), |v| format!("{v:.3}"))
        };
        outln!(
            "held-out {} {}: objective {}; KS D = {}, L1 paired = {}, L1 density = {}{n}",
            h.kind,
            h.cell.name,
            h.score.value.map_or_else(|| "n/a".into(), |v| format!("{v:.4}")),
            f(&h.ks),
            f(&h.l1_paired),
            f(&h.l1_density)
        );
    }
    if let Some(g) = summary.optimism_gap {
        outln!("optimism gap (held-out minus train objective): {g:+.4}");
    }
}

/// How a survey tune or sweep runs, from the command line: `out` over the file's
/// `file_out`, the progress bars, the budget, the prices and the failure limit.
pub(super) fn survey_options(
    resume: bool,
    quiet: bool,
    out: Option<&std::path::Path>,
    file_out: &std::path::Path,
    budget: &BudgetArgs,
) -> Result<vsim::workflow::tune::survey::SurveyTuneOptions, CliError> {
    Ok(vsim::workflow::tune::survey::SurveyTuneOptions {
        resume,
        progress: super::progress::run_progress(quiet, out.unwrap_or(file_out)),
        out: out.map(std::path::Path::to_path_buf),
        budget: budget.budget()?,
        prices: budget.prices()?,
        max_consecutive_failures: budget.max_consecutive_failures,
        ..Default::default()
    })
}

/// `vsim tune` of a survey tune file: train items, the choice, the held-out items.
async fn run_survey_tune(args: &TuneArgs, text: &str) -> CliResult {
    use vsim::workflow::tune::survey::{parse_survey_tune, run_survey_tune, SurveyTuneError};
    let mut tune = parse_survey_tune(&args.tune, text).map_err(CliError::input)?;
    if let Some(m) = &args.model {
        vsim::backend::spec::ModelSpec::parse(m).map_err(CliError::input)?;
        tune.model = Some(m.clone());
    }
    for (flag, given) in
        [("--replicates", args.replicates.is_some()), ("--population", args.population.is_some())]
    {
        if given {
            return Err(CliError::input(anyhow::anyhow!(
                "{flag} applies to dialogue tunes; a survey's respondents come from its survey file"
            )));
        }
    }
    if args.shard.is_some() || args.stage_only {
        return Err(CliError::input(anyhow::anyhow!(
            "--shard and --stage-only apply to dialogue tunes; a survey tune runs on one machine"
        )));
    }
    let (models, notes) = open_models(tune.model_specs(), &args.backend.options(), tune.concurrency)
        .await
        .map_err(super::launch_error)?;
    super::print_notes(&notes);
    let options = survey_options(args.resume, args.quiet, args.out.as_deref(), &tune.out, &args.budget)?;
    errln!(
        "tune: {} candidates on {} train items; {} items held out",
        tune.cells.len(),
        tune.train_items.len(),
        tune.held_out_items.len()
    );
    let summary = run_survey_tune(&tune, &models, &options).await.map_err(|e| match &e {
        SurveyTuneError::Run(r) if r.is_input() => CliError::input(e),
        _ => CliError::failed(e),
    })?;
    let f = |x: Option<f64>| x.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"));
    for t in &summary.trials {
        outln!("train items: {} objective {}", t.cell.name, f(t.score));
    }
    if let Some(stop) = &summary.stop {
        errln!("{stop}; to continue, run the same command again with --resume");
        if let vsim::experiment::StopCause::Interrupted = stop {
            return Ok(vsim::experiment::interrupt::received().map_or(130, |s| s.exit_code()));
        }
    }
    match &summary.chosen {
        Some(c) => outln!(
            "chosen: {} (train objective {}; selection stability {} over resampled train items)",
            c.name,
            f(summary.chosen_train),
            summary.stability.map_or_else(|| "n/a".into(), |v| format!("{v:.2}"))
        ),
        None if summary.stop.is_none() => {
            errln!("no candidate could be scored on the train items");
            return Ok(1);
        }
        None => {}
    }
    for h in &summary.held_out {
        outln!("held-out items: {} objective {} ({} respondents)", h.cell.name, f(h.score), h.respondents);
    }
    if let Some(g) = summary.optimism_gap {
        outln!("optimism gap (held-out minus train objective): {g:+.4}");
    }
    outln!(
        "{}: report.md, report.html, tune.json, test/report/; {}",
        summary.out_dir.display(),
        summary.spend
    );
    Ok(0)
}
