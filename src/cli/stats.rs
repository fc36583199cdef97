//! `vsim stats`: statistics on files of numbers.

use std::path::PathBuf;

use super::{CliError, CliResult};
use vsim::stats::ks::{ks_2samp, KsMode};

#[derive(clap::Subcommand, Debug)]
pub enum StatsCommand {
    /// Two-sample Kolmogorov–Smirnov test (two-sided), as scipy.stats.ks_2samp.
    #[command(after_help = "Example:\n  vsim stats ks simulated.txt human.txt --json\n\nEach file holds one number per line; blank lines and lines starting with # are skipped.")]
    Ks {
        file_a: PathBuf,
        file_b: PathBuf,
        /// auto (exact for samples up to 10,000, else asymptotic), exact or asymptotic.
        #[arg(long, default_value = "auto", value_parser = ["auto", "exact", "asymptotic"])]
        method: String,
        /// Print {"statistic", "pvalue", "method", "n1", "n2"}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: StatsCommand) -> CliResult {
    match cmd {
        StatsCommand::Ks { file_a, file_b, method, json } => {
            let a = vsim::stats::read_numbers(&file_a).map_err(CliError::input)?;
            let b = vsim::stats::read_numbers(&file_b).map_err(CliError::input)?;
            let mode = match method.as_str() {
                "exact" => KsMode::Exact,
                "asymptotic" => KsMode::Asymptotic,
                _ => KsMode::Auto,
            };
            let r = ks_2samp(&a, &b, mode).map_err(CliError::input)?;
            let method = match r.method_used {
                KsMode::Exact => "exact",
                _ => "asymptotic",
            };
            if json {
                let out = serde_json::json!({
                    "statistic": r.statistic, "pvalue": r.pvalue, "method": method, "n1": r.n1, "n2": r.n2,
                });
                println!("{out}");
            } else {
                println!("D = {:.6}  p = {:.6}  ({method}; n1 = {}, n2 = {})", r.statistic, r.pvalue, r.n1, r.n2);
            }
            Ok(0)
        }
    }
}
