//! `vsim serve-mock`: an OpenAI-compatible mock server for trying runs, tests and benchmarks.

use std::time::Duration;

use super::{CliError, CliResult};
use vsim::mock::{MockConfig, MockStyle};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Every prompt method is answered: as the request's JSON schema says, or, without one \
(--no-response-format), as the prompt asks, in the plain-text shapes models use (numbered lists, \
<response> tags, tables, ...), drawn from the request's seed.\n\nExamples:\n  vsim serve-mock --port 8089 --latency-ms 100\n  vsim run scenarios/persuasion_for_good.toml --model openai:mock@http://127.0.0.1:8089/v1 --no-cache --n 50\n  vsim run scenarios/persuasion_for_good.toml --model openai:mock@http://127.0.0.1:8089/v1 --no-cache --no-response-format\n  vsim serve-mock --error-rate 0.1 --timeout-rate 0.02 --style mixed --seed 7"
)]
pub struct ServeMockArgs {
    /// Port on 127.0.0.1 (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction of chat requests answered 429 (with Retry-After) or 500.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction of chat requests that stall for --stall-secs (beyond a client's timeout).
    #[arg(long, default_value_t = 0.0)]
    pub timeout_rate: f64,
    /// How long a stalled request waits, in seconds.
    #[arg(long, default_value_t = 600)]
    pub stall_secs: u64,
    /// The wait a 429 asks for, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub retry_after_ms: u64,
    /// Reply style: vs (well-formed), malformed (needs repair), mixed (a third malformed).
    #[arg(long, default_value = "vs")]
    pub style: String,
    /// Seed of the replies and of the fault draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub async fn run(args: ServeMockArgs) -> CliResult {
    let style: MockStyle = args.style.parse().map_err(CliError::input)?;
    let config = MockConfig {
        latency: Duration::from_millis(args.latency_ms),
        error_rate: args.error_rate,
        timeout_rate: args.timeout_rate,
        stall: Duration::from_secs(args.stall_secs),
        retry_after: Duration::from_millis(args.retry_after_ms),
        style,
        seed: args.seed,
        ..MockConfig::default()
    };
    // Checked before binding, so a bad rate is reported as bad input.
    let _checked = vsim::mock::router(config.clone()).map_err(CliError::input)?;
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| CliError::failed(anyhow::anyhow!("cannot bind {}:{}: {e}", args.host, args.port)))?;
    let addr = listener.local_addr().map_err(CliError::failed)?;
    outln!(
        "serving an OpenAI-compatible mock on http://{addr}/v1 (model spec: openai:mock@http://{addr}/v1)"
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::select! {
        r = vsim::mock::serve(config, listener) => r.map_err(CliError::failed)?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(0)
}
