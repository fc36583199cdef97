//! `vsim report`: several evaluated runs side by side.

use std::path::PathBuf;

use super::{CliError, CliResult};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  vsim eval runs/direct --human pfg:data/persuasionforgood
  vsim eval runs/vs --human pfg:data/persuasionforgood
  vsim report runs/direct runs/vs --out reports/direct-vs-vs

Reads each run's metrics.json (written by `vsim eval`) and writes OUT/report.md and
OUT/report.html: one table with every metric per run, the runs' outcome histograms and ECDFs
overlaid with the human reference, and their selection-check curves.")]
pub struct ReportArgs {
    /// Run directories evaluated with `vsim eval`.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub run_dirs: Vec<PathBuf>,
    /// Where to write report.md and report.html (created if needed).
    #[arg(long, default_value = "vsim-report", value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(a: ReportArgs) -> CliResult {
    let surveys: Vec<&PathBuf> = a.run_dirs.iter().filter(|d| super::survey::is_survey_run(d)).collect();
    if surveys.len() == a.run_dirs.len() {
        return super::survey::report(&a.run_dirs, &a.out);
    }
    if let Some(survey) = surveys.first() {
        return Err(CliError::input(anyhow::anyhow!(
            "{} is a survey run and the others are not: a report compares surveys with surveys, \
             dialogue runs with dialogue runs",
            survey.display()
        )));
    }
    let runs = a
        .run_dirs
        .iter()
        .map(|d| vsim::eval::read_metrics(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError::input)?;
    let comparison = vsim::report::Comparison::new(runs).map_err(CliError::input)?;
    let written = vsim::report::write_comparison(&a.out, &comparison).map_err(CliError::failed)?;
    for n in &comparison.notes {
        errln!("note: {n}");
    }
    outln!("wrote {}", written.markdown.display());
    outln!("wrote {}", written.html.display());
    Ok(0)
}
