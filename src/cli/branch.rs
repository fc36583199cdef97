//! `vsim branch`: continue a recorded dialogue as if another candidate had been chosen.

use std::path::PathBuf;

use super::run::{summary_line, BudgetArgs};
use super::{BackendArgs, CliError, CliResult};
use vsim::experiment::{RoleModel, RunOptions, StopCause};
use vsim::workflow::branch::{
    default_branch_dir, load_branch, run_branch, BranchConfig, BranchError, BranchRequest,
};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Turns and candidates are numbered from 0, as in transcripts.jsonl.\n\nExamples:\n  vsim branch runs/pfg --dialogue d00003 --turn 5 --candidate 2\n  vsim branch runs/pfg --dialogue d00003 --turn 5 --candidate 2 --n 20 --out runs/pfg-d3-t5-c2\n  vsim branch runs/pfg --dialogue d00003 --turn 5 --candidate 0 --model openai:gpt-4o"
)]
pub struct BranchArgs {
    /// The run directory holding the dialogue.
    pub run_dir: PathBuf,
    /// Dialogue id (e.g. d00003).
    #[arg(long)]
    pub dialogue: String,
    /// The turn whose chosen reply is replaced.
    #[arg(long)]
    pub turn: usize,
    /// The candidate of that turn taken instead.
    #[arg(long)]
    pub candidate: usize,
    /// Number of continuations (branch i has seed derive(dialogue seed, i)).
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Output run directory (default: RUN_DIR/branches/DIALOGUE-tT-cJ).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Model for every role (default: each role's model in the original run).
    #[arg(long)]
    pub model: Option<String>,
    /// The scenario file, if it moved since the run.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Go on although the scenario file pinned by the run changed since (its resolved
    /// settings must still agree with the run's).
    #[arg(long)]
    pub allow_changed_inputs: bool,
    /// Continuations in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Finish an interrupted branch run.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

pub async fn run(args: BranchArgs) -> CliResult {
    if args.n == 0 || args.concurrency == 0 {
        return Err(CliError::input(anyhow::anyhow!("--n and --concurrency must be at least 1")));
    }
    super::check_n(args.n)?;
    let request = BranchRequest {
        run_dir: args.run_dir.clone(),
        dialogue: args.dialogue.clone(),
        turn: args.turn,
        candidate: args.candidate,
        scenario_path: args.scenario.clone(),
        allow_changed_inputs: args.allow_changed_inputs,
    };
    let source = load_branch(&request).map_err(|e| match e {
        BranchError::Io { .. } => CliError::failed(e),
        other => CliError::input(other),
    })?;
    let backend = args.backend.options().for_concurrency(args.concurrency.min(args.n));
    let mut opened = vsim::experiment::launch::OpenedModels::default();
    let mut models = Vec::new();
    for spec in &source.role_models {
        let spec = args.model.clone().unwrap_or_else(|| spec.clone());
        let model = opened.open(&spec, &backend).await.map_err(super::launch_error)?;
        models.push(RoleModel { name: spec, model });
    }
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_branch_dir(&args.run_dir, &args.dialogue, args.turn, args.candidate));
    let config = BranchConfig {
        n: args.n,
        concurrency: args.concurrency,
        out_dir: out_dir.clone(),
        resume: args.resume,
        progress: super::progress::run_progress(args.quiet, &out_dir),
    };
    let options = RunOptions {
        shard: None,
        budget: args.budget.budget()?,
        prices: args.budget.prices()?,
        extractors: opened.extractors(&source.scenario, &backend).await.map_err(super::launch_error)?,
        max_consecutive_failures: args.budget.max_consecutive_failures,
        ..Default::default()
    };
    super::print_notes(&opened.notes);
    let summary = run_branch(&source, &models, &config, &options).await.map_err(|e| {
        if e.is_input() {
            CliError::input(e)
        } else {
            CliError::failed(e)
        }
    })?;
    let line = summary_line(&summary);
    super::progress::append_run_log(&out_dir, &line);
    super::progress::report_retries(&out_dir);
    outln!("{line}");
    Ok(match summary.stop {
        Some(StopCause::Interrupted) => {
            vsim::experiment::interrupt::received().map_or(130, |s| s.exit_code())
        }
        Some(StopCause::ConsecutiveFailures { .. }) => 1,
        _ if summary.counts.failed > 0 || summary.unanswered_now > 0 => 1,
        _ => 0,
    })
}
