//! `vsim run`: run a scenario over a population and write the run directory.

use std::path::PathBuf;

use super::{BackendArgs, CliError, CliResult};
use vsim::experiment::{RunOptions, RunRequest, StopCause};
use vsim::scenario::{RoleOverride, RoleSetting};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  vsim run scenarios/persuasion_for_good.toml --n 4\n  vsim run scenarios/persuasion_for_good.toml --population pfg:data/persuasionforgood \\\n      --model openai:gpt-4o-mini --concurrency 16 --out runs/pfg-gpt4o  (the 200 test-split participants)\n  vsim run scenarios/persuasion_for_good.toml --role-method persuadee=sequence --role-k persuadee=model-decided \\\n      --role-selection persuadee=uniform\n  vsim run scenarios/persuasion_for_good.toml --out runs/pfg --resume\n  vsim run scenarios/persuasion_for_good.toml --model openai:gpt-4o-mini --price gpt-4o-mini=0.15,0.60 --max-cost 5\n  vsim run scenarios/persuasion_for_good.toml --n 1000 --shard 3/8 --out runs/pfg-shard3"
)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// A directory of persona files, or pfg:PATH (PersuasionForGood full_info.csv or its
    /// directory). Default: the scenario's `population`, else ./personas.
    #[arg(long, value_name = "SPEC")]
    pub population: Option<String>,
    /// For a pfg: population, which persuadees to simulate: test (the 200 held-out
    /// participants, fixed split; the default), train or all; always only those with a
    /// recorded donation between $0 and $2.
    #[arg(long, value_name = "SPLIT", value_parser = ["test", "train", "all"])]
    pub split: Option<String>,
    /// Number of dialogues (default: one per population member). Fewer takes the first n
    /// members (a pfg: split is ordered by dialogue id); more cycles over them.
    #[arg(long)]
    pub n: Option<usize>,
    /// Simulate each person R times (seeds from the experiment seed, the person and the
    /// replicate); `vsim eval` then reports per-person calibration (PIT, coverage) and how
    /// much of the spread comes from who the person is.
    #[arg(long, value_name = "R", default_value_t = 1)]
    pub replicates: usize,
    /// Model for every role without its own (local, local:PATH, openai:MODEL[@URL]).
    #[arg(long, env = "VSIM_MODEL")]
    pub model: Option<String>,
    /// Override a role's method: ROLE=METHOD (repeatable).
    #[arg(long, value_name = "ROLE=METHOD")]
    pub role_method: Vec<String>,
    /// Override a role's k: ROLE=K or ROLE=model-decided (repeatable).
    #[arg(long, value_name = "ROLE=K")]
    pub role_k: Vec<String>,
    /// Override a role's selection: ROLE=weighted|uniform|argmax (repeatable).
    #[arg(long, value_name = "ROLE=SELECTION")]
    pub role_selection: Vec<String>,
    /// Override a role's model: ROLE=SPEC (repeatable).
    #[arg(long, value_name = "ROLE=SPEC")]
    pub role_model: Vec<String>,
    /// Experiment seed; dialogue seeds derive from it and the dialogue index.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Dialogues in flight at once (results do not depend on it, except the embedded model's
    /// batched replies: see --deterministic).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Run directory (default: runs/SCENARIO-seedS).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run: only missing or failed dialogues are run.
    #[arg(long)]
    pub resume: bool,
    /// Run one deterministic slice: the dialogues whose index i has i % N == I.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<vsim::experiment::Shard>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Token and cost caps, model prices, and when to give up on a failing backend.
#[derive(clap::Args, Debug, Clone)]
pub struct BudgetArgs {
    /// Send no further model call once the models have produced this many tokens (prompt +
    /// completion, cache hits excluded); dialogues cut there rerun with --resume.
    #[arg(long, value_name = "N")]
    pub max_tokens_total: Option<u64>,
    /// Send no further model call once this many dollars are spent (needs a price per model).
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Price of a model in dollars per million input and output tokens (repeatable); MODEL
    /// is a model spec or its model name.
    #[arg(long, value_name = "MODEL=IN,OUT")]
    pub price: Vec<String>,
    /// A TOML file with a [prices] table: MODEL = [IN_PER_MTOK, OUT_PER_MTOK].
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Stop starting dialogues after this many failed in a row (0: never); --resume
    /// continues once the cause is fixed.
    #[arg(long, value_name = "N", default_value_t = vsim::experiment::runner::DEFAULT_MAX_CONSECUTIVE_FAILURES)]
    pub max_consecutive_failures: usize,
}

impl BudgetArgs {
    pub fn budget(&self) -> Result<vsim::experiment::Budget, CliError> {
        if let Some(c) = self.max_cost {
            if !(c.is_finite() && c >= 0.0) {
                return Err(CliError::input(anyhow::anyhow!(
                    "--max-cost must be a non-negative number of dollars"
                )));
            }
        }
        Ok(vsim::experiment::Budget { max_tokens_total: self.max_tokens_total, max_cost_usd: self.max_cost })
    }

    pub fn prices(&self) -> Result<vsim::experiment::Prices, CliError> {
        let mut prices = match &self.prices {
            Some(path) => vsim::experiment::Prices::from_toml_file(path).map_err(CliError::input)?,
            None => vsim::experiment::Prices::default(),
        };
        for p in &self.price {
            prices.add_entry(p).map_err(CliError::input)?;
        }
        Ok(prices)
    }
}

/// The one-line summary of a run.
pub fn summary_line(summary: &vsim::experiment::RunSummary) -> String {
    let c = &summary.counts;
    let missing: usize = c.missing.values().sum();
    let shard = summary.shard.map(|s| format!(" [shard {s}]")).unwrap_or_default();
    // A run stopped early (Ctrl-C, a budget) holds fewer dialogues than it is to have.
    let dialogues = if c.dialogues < summary.planned {
        format!("{} of {} dialogues", c.dialogues, summary.planned)
    } else {
        format!("{} dialogues", c.dialogues)
    };
    let mut line = format!(
        "{}{shard}: {dialogues} ({} completed, {} without any outcome, {} failed; {} run now, {} already done), {} missing outcomes, {} ({} model calls, {} cached)",
        summary.out_dir.display(),
        c.completed,
        c.unanswered,
        c.failed,
        summary.ran,
        summary.skipped,
        missing,
        summary.spend,
        summary.spend.calls,
        summary.spend.cached_calls,
    );
    line.push_str(&stop_clause(summary.stop.as_ref(), summary.not_started));
    line
}

/// What a summary line says of why a run stopped starting work: a budget or repeated
/// failures (an interrupt is said on its own line).
pub fn stop_clause(stop: Option<&StopCause>, not_started: usize) -> String {
    match stop {
        Some(StopCause::Budget { reason }) => {
            format!("; stopped for budget: {reason}, {not_started} not started")
        }
        Some(StopCause::ConsecutiveFailures { reason }) => {
            format!("; stopped after repeated failures ({reason}), {not_started} not started")
        }
        Some(StopCause::Interrupted) | None => String::new(),
    }
}

/// The library's request for these arguments.
fn request(args: &RunArgs) -> Result<RunRequest, CliError> {
    let mut role_overrides = Vec::new();
    for (field, list) in [
        ("method", &args.role_method),
        ("k", &args.role_k),
        ("selection", &args.role_selection),
        ("model", &args.role_model),
    ] {
        for assignment in list {
            let hint = |e: String| CliError::input(anyhow::anyhow!("--role-{field} {assignment}: {e}"));
            let (role, value) =
                assignment.split_once('=').ok_or_else(|| hint("expected ROLE=VALUE".into()))?;
            let setting = RoleSetting::parse(field, value).map_err(hint)?;
            role_overrides.push(RoleOverride { role: role.trim().to_string(), setting });
        }
    }
    Ok(RunRequest {
        scenario: args.scenario.clone(),
        population: args.population.clone(),
        split: args.split.as_deref().map(str::parse).transpose().map_err(CliError::input)?,
        n: args.n,
        model: args.model.clone(),
        role_overrides,
        seed: args.seed,
        concurrency: args.concurrency,
        out: args.out.clone(),
        resume: args.resume,
        options: RunOptions {
            shard: args.shard,
            budget: args.budget.budget()?,
            prices: args.budget.prices()?,
            max_consecutive_failures: args.budget.max_consecutive_failures,
            replicates: args.replicates,
            ..RunOptions::default()
        },
        backend: args.backend.options(),
    })
}

pub async fn run(args: RunArgs) -> CliResult {
    let request = request(&args)?;
    let mut prepared = vsim::experiment::prepare(request).await.map_err(super::launch_error)?;
    if let Some(note) = &prepared.cycle_note {
        errln!("{note}");
    }
    super::print_notes(&prepared.notes);
    let out_dir = prepared.config.out_dir.clone();
    prepared.config.progress = super::progress::run_progress(args.quiet, &out_dir);
    let summary =
        prepared
            .run()
            .await
            .map_err(|e| if e.is_input() { CliError::input(e) } else { CliError::failed(e) })?;
    // The note on n above the population was said before the run; it is not repeated.
    let population = &prepared.population;
    let members = population.members.len();
    let line = summary_line(&summary);
    super::progress::append_run_log(&out_dir, &line);
    super::progress::report_retries(&out_dir);
    outln!("{line}");
    if let Some(r) = &population.reference {
        outln!(
            "population: {} participants of the `{}` split of {} ({})",
            members,
            r.split,
            population.spec,
            r.filter_summary
        );
    }
    let resume_hint = || {
        let shard = args.shard.map(|s| format!(" --shard {s}")).unwrap_or_default();
        format!(
            "run the same command again with --resume (vsim run {} --out {}{shard} ... --resume)",
            args.scenario.display(),
            summary.out_dir.display()
        )
    };
    match &summary.stop {
        Some(StopCause::Interrupted) => {
            errln!("interrupted; to continue, {}", resume_hint());
            return Ok(vsim::experiment::interrupt::received().map_or(130, |s| s.exit_code()));
        }
        Some(StopCause::ConsecutiveFailures { reason }) => {
            errln!("stopped: {reason}. Fix the cause, then {}", resume_hint());
            return Ok(1);
        }
        Some(StopCause::Budget { .. }) if summary.not_started > 0 => {
            errln!("to continue later, {}", resume_hint());
        }
        Some(StopCause::Budget { .. }) | None => {}
    }
    if summary.counts.unanswered > 0 {
        errln!(
            "{} dialogues ended without a single outcome value ({} of them now); they are not counted as \
             completed, and --resume does not run them again",
            summary.counts.unanswered,
            summary.unanswered_now
        );
    }
    // Unanswered dialogues fail the invocation that produced them, not every later resume.
    Ok(if summary.counts.failed > 0 || summary.unanswered_now > 0 { 1 } else { 0 })
}
