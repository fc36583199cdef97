//! `vsim merge`: join shard run directories into one run directory.

use std::path::PathBuf;

use super::{CliError, CliResult};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  vsim merge runs/pfg runs/pfg-shard0 runs/pfg-shard1 runs/pfg-shard2 runs/pfg-shard3\n  vsim merge runs/pfg runs/pfg-shard*"
)]
pub struct MergeArgs {
    /// The merged run directory to write (must not hold a run).
    pub out_dir: PathBuf,
    /// Run directories of the same experiment (typically its shards).
    #[arg(required = true)]
    pub shard_dirs: Vec<PathBuf>,
}

pub fn run(args: MergeArgs) -> CliResult {
    use vsim::workflow::merge::{merge_runs, MergeError};
    let report = merge_runs(&args.out_dir, &args.shard_dirs).map_err(|e| match e {
        MergeError::Io { .. } | MergeError::Transcript(_) => CliError::failed(e),
        other => CliError::input(other),
    })?;
    // A survey's units are respondents, with answers; a dialogue run's, dialogues with outcomes.
    let survey =
        vsim::rundir::read_manifest(&report.out_dir).is_ok_and(|m| m.kind == vsim::rundir::RunKind::Survey);
    let (one, many, values) =
        if survey { ("respondent", "respondents", "answer") } else { ("dialogue", "dialogues", "outcome") };
    for (id, dirs) in &report.duplicates {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        errln!(
            "duplicate {one} {id} in {} (kept the first directory's latest completed copy)",
            dirs.join(", ")
        );
    }
    for (id, dir) in &report.without_begin {
        errln!("{one} {id} in {} has no begin event; left out", dir.display());
    }
    if !report.missing.is_empty() {
        let shown: Vec<String> = report.missing.iter().take(20).map(|i| i.to_string()).collect();
        let more = report.missing.len().saturating_sub(20);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        errln!("missing {one} indices: {}{more}", shown.join(", "));
    }
    let c = &report.counts;
    outln!(
        "{}: {} of {} {many} ({} completed, {} without any {values}, {} failed), {} missing, {} duplicates",
        report.out_dir.display(),
        report.dialogues,
        report.n,
        c.completed,
        c.unanswered,
        c.failed,
        report.missing.len(),
        report.duplicates.len()
    );
    let whole = report.missing.is_empty() && report.without_begin.is_empty();
    Ok(if whole && c.failed == 0 && c.unanswered == 0 { 0 } else { 1 })
}
