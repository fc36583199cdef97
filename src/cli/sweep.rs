//! `vsim sweep`: run a scenario over several settings with common random numbers, evaluate
//! every cell against the human data and write one comparison report.

use std::collections::HashMap;
use std::path::PathBuf;

use super::run::BudgetArgs;
use super::{BackendArgs, CliError, CliResult};
use vsim::eval::{EvalOptions, HumanReference, Split};
use vsim::experiment::StopCause;
use vsim::workflow::sweep::{
    evaluate_sweep, load_sweep, run_sweep, CellEvalStatus, SweepError, SweepEvalOptions, SweepOptions,
};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  vsim sweep scenarios/sweep_persuasion.toml
  vsim sweep scenarios/sweep_paper.toml --population pfg:data/persuasionforgood --model openai:gpt-4o-mini
  vsim sweep scenarios/sweep_persuasion.toml --out runs/sweep1 --max-cost 20 --price gpt-4o-mini=0.15,0.60
  vsim sweep scenarios/sweep_persuasion.toml --out runs/sweep1 --resume
  vsim sweep scenarios/sweep_persuasion.toml --model openai:mock@http://127.0.0.1:8089/v1 --n 4 --concurrency 8

Each cell (a [grid] combination or one of the [[arms]]) is a run directory under OUT. When the
cells have run, each is evaluated as `vsim eval` would (metrics.json, report.md, report.html in
the cell's directory), against the human reference of exactly the people it simulated, and
OUT/report.md and OUT/report.html compare the cells side by side with the human reference (as
`vsim report` would). The human data is --human, else the file's `human`, else the population's
own data when the population is `pfg:DIR`; without human data the cells are still evaluated and
compared, without the human column. A cell that cannot be evaluated is reported and the exit
code is 1; the other cells are evaluated and compared all the same.")]
pub struct SweepArgs {
    /// The sweep file (TOML): scenario, role, n, seed and a [grid] or [[arms]] of settings.
    pub sweep: PathBuf,
    /// Output directory (default: the file's `out`, else runs/SWEEP-NAME).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue an interrupted sweep: cells finish their missing dialogues.
    #[arg(long)]
    pub resume: bool,
    /// Model for roles without their own (overrides the file's `model`).
    #[arg(long, value_name = "SPEC")]
    pub model: Option<String>,
    /// Population (overrides the file's): a persona directory or `pfg:DIR`.
    #[arg(long, value_name = "SPEC")]
    pub population: Option<String>,
    /// Which participants of a `pfg:` population are simulated: test (200, fixed split),
    /// train or all (overrides the file's `split`; default test).
    #[arg(long, value_name = "SPLIT", value_parser = ["all", "test", "train"])]
    pub split: Option<String>,
    /// Dialogues per cell (overrides the file's `n`; default: the population's size).
    #[arg(long, value_name = "N")]
    pub n: Option<usize>,
    /// Simulate each person R times in every cell (overrides the file's `replicates`).
    #[arg(long, value_name = "R")]
    pub replicates: Option<usize>,
    /// Dialogues in flight at once in each cell (overrides the file's `concurrency`).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Human reference data: `pfg:DIR`, or `none` for no comparison with people (overrides
    /// the file's `human`; default: the population's data when it is `pfg:DIR`).
    #[arg(long, value_name = "SPEC")]
    pub human: Option<String>,
    /// Embedding model for semantic diversity, as `vsim eval --embedder`: `minilm` (offline,
    /// fetched once; the default), `dir:PATH`, `openai:MODEL[@BASE_URL]`, or `none`.
    #[arg(long, value_name = "SPEC", default_value = "minilm")]
    pub embedder: String,
    /// Bootstrap resamples per interval (0: no intervals).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub bootstrap: usize,
    /// Seed of the bootstrap intervals only (the dialogues' seed is the file's `seed`).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub bootstrap_seed: u64,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

// Long on purpose: the command's steps in the order the user sees them (read and override the file, check the human data and embedder before any dialogue, run, report the cells, evaluate, print the comparison), each printing as it goes.
pub async fn run(args: SweepArgs) -> CliResult {
    let text = std::fs::read_to_string(&args.sweep)
        .map_err(|e| CliError::input(anyhow::Error::new(e).context(args.sweep.display().to_string())))?;
    if vsim::workflow::tune::survey::names_a_survey(&text) {
        return run_survey_sweep(&args, &text).await;
    }
    let mut sweep = load_sweep(&args.sweep).map_err(CliError::input)?;
    if let Some(m) = &args.model {
        vsim::backend::spec::ModelSpec::parse(m).map_err(CliError::input)?;
        sweep.model = Some(m.clone());
    }
    if let Some(p) = &args.population {
        sweep.population = p.clone();
    }
    if let Some(s) = &args.split {
        sweep.split = Some(s.parse::<Split>().map_err(CliError::input)?);
    }
    if let Some(n) = args.n {
        if n == 0 {
            return Err(CliError::input(anyhow::anyhow!("--n must be at least 1")));
        }
        sweep.n = Some(n);
    }
    if let Some(c) = args.concurrency {
        if c == 0 {
            return Err(CliError::input(anyhow::anyhow!("--concurrency must be at least 1")));
        }
        sweep.concurrency = c;
    }
    if let Some(h) = &args.human {
        sweep.human = Some(if h.trim().eq_ignore_ascii_case("none") { "none".into() } else { h.clone() });
    }
    let human = sweep.human_spec();
    // Check the human data and open the embedder before any dialogue runs, so that a wrong
    // path or a missing model does not surface only after hours of simulation.
    if let Some(spec) = &human {
        HumanReference::load(spec, sweep.split.unwrap_or_default()).map_err(CliError::input)?;
    }
    let (embedder, no_embedder_reason) = match args.embedder.trim() {
        "none" | "" => (None, None),
        spec => match super::open_embedder_for_eval(spec).await? {
            Ok(e) => (Some(e), None),
            Err(reason) => (None, Some(reason)),
        },
    };
    let mut models = HashMap::new();
    for spec in sweep.model_specs() {
        let m = super::open_model_for(&spec, &args.backend, sweep.concurrency).await?;
        models.insert(spec, m);
    }
    let options = SweepOptions {
        resume: args.resume,
        progress: super::progress::run_progress(
            args.quiet,
            &args.out.clone().unwrap_or_else(|| sweep.out.clone()),
        ),
        out: args.out.clone(),
        prices: args.budget.prices()?,
        budget: args.budget.budget()?,
        max_consecutive_failures: args.budget.max_consecutive_failures,
        replicates: args.replicates,
        ..SweepOptions::default()
    };
    let summary = run_sweep(&sweep, &models, &options).await.map_err(|e| match e {
        SweepError::Run(ref r) if r.is_input() => CliError::input(e),
        SweepError::Population(_) | SweepError::MissingModel(_) | SweepError::Invalid { .. } => {
            CliError::input(e)
        }
        other => CliError::failed(other),
    })?;
    let mut failed = 0;
    for r in &summary.cells {
        failed += r.stats.failed;
        let status = if r.summary.is_some() { "" } else { " (not run)" };
        outln!(
            "{}: {} dialogues, {} completed, {} failed{status}",
            r.dir.display(),
            r.stats.dialogues,
            r.stats.completed,
            r.stats.failed
        );
    }
    outln!(
        "{}: {} cells; summary in summary.csv and summary.md; {}",
        summary.out_dir.display(),
        summary.cells.len(),
        summary.spend
    );
    match &summary.stop {
        Some(StopCause::Budget { reason }) => outln!("stopped for budget: {reason}; continue with --resume"),
        Some(StopCause::Interrupted) => {
            errln!("interrupted; to continue, run the same command again with --resume");
            return Ok(vsim::experiment::interrupt::received().map_or(130, |s| s.exit_code()));
        }
        Some(StopCause::ConsecutiveFailures { reason }) => {
            errln!("stopped: {reason}; no later cell was started. Fix the cause and continue with --resume");
            return Ok(1);
        }
        None => {}
    }

    let eval_options = SweepEvalOptions {
        eval: EvalOptions {
            seed: args.bootstrap_seed,
            bootstrap: args.bootstrap,
            no_embedder_reason,
            ..EvalOptions::default()
        },
        ..SweepEvalOptions::default()
    };
    let cells: Vec<_> = summary.cells.iter().map(|r| r.cell.clone()).collect();
    // Evaluated on a task of its own, so that Ctrl-C and SIGTERM stop the evaluation too
    // (it computes without pausing; the runs are kept, and every file it writes is replaced
    // whole, so stopping part-way leaves each cell evaluated or not).
    let (out_dir, human_spec) = (summary.out_dir.clone(), human.clone());
    let evaluating = tokio::spawn(async move {
        evaluate_sweep(&out_dir, &cells, human_spec.as_deref(), &eval_options, embedder.as_deref()).await
    });
    let evaluated = tokio::select! {
        joined = evaluating => {
            joined.map_err(|e| CliError::failed(anyhow::anyhow!("the evaluation stopped: {e}")))?
        }
        signal = vsim::experiment::interrupt::wait_for_signal() => {
            errln!("interrupted during the evaluation; the cells' runs are kept: run the sweep again with --resume");
            return Ok(signal.exit_code());
        }
    };
    let evaluation = evaluated.map_err(|e| match e {
        vsim::report::ReportError::Locked(_) => CliError::input(e),
        other => CliError::failed(other),
    })?;
    match &evaluation.human {
        Some(spec) => outln!("human reference: {spec}"),
        None => outln!(
            "note: no human data (population {}); the cells are compared without a human column \
             (pass --human pfg:DIR)",
            sweep.population
        ),
    }
    let cut_by_budget = |dir: &std::path::Path| {
        summary.cells.iter().any(|r| {
            r.dir == dir
                && r.stats.completed == 0
                && r.summary.as_ref().is_some_and(|s| s.stop.as_ref().is_some_and(|c| c.budget().is_some()))
        })
    };
    let mut problems = 0;
    for c in &evaluation.cells {
        match &c.status {
            CellEvalStatus::Evaluated { metrics, semantic_missing, .. } => {
                outln!("evaluated {}", metrics.display());
                if let Some(why) = semantic_missing {
                    errln!("warning: {}: semantic diversity {why}", c.dir.display());
                    problems += 1;
                }
            }
            CellEvalStatus::NotRun => outln!("{}: not evaluated (not run)", c.dir.display()),
            // A cell the budget stopped before any dialogue finished has nothing to evaluate
            // yet: not a failure, as a budget stop is not.
            CellEvalStatus::Failed(_) if cut_by_budget(&c.dir) => outln!(
                "{}: not evaluated (the budget stopped it before any dialogue finished; --resume continues)",
                c.dir.display()
            ),
            CellEvalStatus::Failed(e) => {
                errln!("error: {}: not evaluated: {e}", c.dir.display());
                problems += 1;
            }
        }
    }
    for n in &evaluation.notes {
        errln!("note: {n}");
    }
    // The paper's measure first: the donation each persuadee stated in the dialogue.
    if let Some(written) = &evaluation.stated_comparison {
        outln!("stated measure (what each role stated in the dialogue; the paper's headline for PersuasionForGood):");
        outln!("wrote {}", written.markdown.display());
        outln!("wrote {}", written.html.display());
        outln!("answer measure (each role's answer to the outcome question, through its own method):");
    }
    match &evaluation.comparison {
        Some(written) => {
            outln!("wrote {}", written.markdown.display());
            outln!("wrote {}", written.html.display());
        }
        None if problems == 0 => outln!("no cell has a finished dialogue yet; nothing to evaluate"),
        None => errln!("error: no cell could be evaluated; no comparison report was written"),
    }
    Ok(if failed > 0 || problems > 0 { 1 } else { 0 })
}

/// `vsim sweep` of a survey sweep file: every candidate answers every item; one comparison
/// against the human subgroups in OUT/report/.
async fn run_survey_sweep(args: &SweepArgs, text: &str) -> CliResult {
    use vsim::workflow::tune::survey::{parse_survey_sweep, run_survey_sweep, SurveyTuneError};
    let mut sweep = parse_survey_sweep(&args.sweep, text).map_err(CliError::input)?;
    for (flag, given) in [
        ("--population", args.population.is_some()),
        ("--split", args.split.is_some()),
        ("--n", args.n.is_some()),
        ("--replicates", args.replicates.is_some()),
        ("--human", args.human.is_some()),
    ] {
        if given {
            return Err(CliError::input(anyhow::anyhow!(
                "{flag} applies to dialogue sweeps; a survey's respondents and human data come from its survey file"
            )));
        }
    }
    if let Some(m) = &args.model {
        vsim::backend::spec::ModelSpec::parse(m).map_err(CliError::input)?;
        sweep.model = Some(m.clone());
    }
    if let Some(c) = args.concurrency {
        sweep.concurrency = c.max(1);
    }
    let (models, notes) = vsim::experiment::launch::open_models(
        sweep.model_specs(),
        &args.backend.options(),
        sweep.concurrency,
    )
    .await
    .map_err(super::launch_error)?;
    super::print_notes(&notes);
    let options =
        super::tune::survey_options(args.resume, args.quiet, args.out.as_deref(), &sweep.out, &args.budget)?;
    let summary = run_survey_sweep(&sweep, &models, &options).await.map_err(|e| match &e {
        SurveyTuneError::Run(r) if r.is_input() => CliError::input(e),
        _ => CliError::failed(e),
    })?;
    for c in &summary.cells {
        let per: Vec<String> = c.representativeness.iter().map(|(g, r)| format!("{g} {r:.3}")).collect();
        outln!(
            "{}: {} respondents, {} missing answers; representativeness by subgroup: {}",
            c.dir.display(),
            c.respondents,
            c.missing_answers,
            if per.is_empty() { "n/a".to_string() } else { per.join(", ") }
        );
    }
    if let Some(stop) = &summary.stop {
        errln!("{stop}; to continue, run the same command again with --resume");
        if let vsim::experiment::StopCause::Interrupted = stop {
            return Ok(vsim::experiment::interrupt::received().map_or(130, |s| s.exit_code()));
        }
    }
    if let Some(r) = &summary.report {
        outln!("wrote {}", r.markdown.display());
        outln!("wrote {}", r.html.display());
    }
    outln!("{}: {} cells; {}", summary.out_dir.display(), summary.cells.len(), summary.spend);
    Ok(0)
}
