//! `vsim parse`: how a raw reply is parsed and repaired.

use std::io::Read;

use super::{CliError, CliResult};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  echo '```json\n  {\"responses\": [{\"text\": \"Hi\", \"probability\": \"70%\"}, {\"text\": \"Hello\"}]}\n  ```' | vsim parse --k 2 --json"
)]
pub struct ParseArgs {
    /// Expected number of candidates (extra ones are dropped and recorded).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub k: Option<u32>,
    /// Print JSON: {"candidates": [{"text", "probability", "raw_probability", "repairs"}]}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ParseArgs) -> CliResult {
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .map_err(|e| CliError::input(anyhow::anyhow!("cannot read stdin: {e}")))?;
    let k = args.k.map(|k| vsim::vs::KSpec::Fixed { k: k as usize });
    let parsed = vsim::vs::parse_candidates(&raw, k)
        .map_err(|e| CliError::failed(anyhow::anyhow!("reply cannot be recovered: {e}")))?;
    if args.json {
        let out = serde_json::json!({"candidates": parsed.candidates});
        outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        super::sample::print_candidates(&parsed.candidates, None);
    }
    Ok(0)
}
