//! `vsim sweep`: run a scenario over a grid of settings with common random numbers.

use std::collections::HashMap;
use std::path::PathBuf;

use super::run::BudgetArgs;
use super::{BackendArgs, CliError, CliResult};
use vsim::experiment::sweep::{load_sweep, run_sweep, SweepError, SweepOptions};
use vsim::experiment::RunError;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  vsim sweep scenarios/sweep_persuasion.toml\n  vsim sweep scenarios/sweep_persuasion.toml --out runs/sweep1 --max-cost 20 --price gpt-4o-mini=0.15,0.60\n  vsim sweep scenarios/sweep_persuasion.toml --out runs/sweep1 --resume"
)]
pub struct SweepArgs {
    /// The sweep file (TOML): scenario, role, n, seed and a [grid] of settings.
    pub sweep: PathBuf,
    /// Output directory (default: the file's `out`, else runs/SWEEP-NAME).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue an interrupted sweep: cells finish their missing dialogues.
    #[arg(long)]
    pub resume: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub async fn run(args: SweepArgs) -> CliResult {
    let sweep = load_sweep(&args.sweep).map_err(CliError::input)?;
    let mut models = HashMap::new();
    for spec in sweep.model_specs() {
        let m = super::open_model(&spec, &args.backend).await?;
        models.insert(spec, m);
    }
    let options = SweepOptions {
        resume: args.resume,
        progress: !args.quiet,
        out: args.out.clone(),
        prices: args.budget.prices()?,
        budget: args.budget.budget()?,
    };
    let summary = run_sweep(&sweep, &models, &options).await.map_err(|e| match e {
        SweepError::Run(RunError::Exists(_) | RunError::ConfigMismatch { .. } | RunError::Unpriced(_))
        | SweepError::Population(_)
        | SweepError::MissingModel(_) => CliError::input(e),
        other => CliError::failed(other),
    })?;
    let mut failed = 0;
    for r in &summary.cells {
        failed += r.stats.failed;
        let status = if r.summary.is_some() { "" } else { " (not run)" };
        println!(
            "{}: {} dialogues, {} completed, {} failed{status}",
            r.dir.display(),
            r.stats.dialogues,
            r.stats.completed,
            r.stats.failed
        );
    }
    println!(
        "{}: {} cells; summary in summary.csv and summary.md; {}",
        summary.out_dir.display(),
        summary.cells.len(),
        summary.spend
    );
    if let Some(reason) = &summary.budget_stop {
        println!("stopped for budget: {reason}; continue with --resume");
    }
    if summary.interrupted {
        return Ok(130);
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
