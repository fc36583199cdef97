//! Reports of evaluated runs: Markdown, and a self-contained HTML page with SVG plots
//! (histograms and ECDFs of simulated vs human outcomes, selection-check curves), a table of
//! every metric with its interval and the human reference level, and a dialogue browser
//! showing every candidate of every turn with the chosen one marked.
//!
//! - [`write_run_report`]: `report.md` and `report.html` of one run (`vsim eval`);
//! - [`Comparison`], [`write_comparison`]: several runs side by side (`vsim report`);
//! - [`survey`]: the same for evaluated surveys.

pub mod headline;
pub mod html;
pub mod markdown;
#[cfg(test)]
mod registry_tests;
pub mod rows;
pub mod survey;
pub mod svg;

use std::path::{Path, PathBuf};

use crate::eval::metrics::Evaluation;
use crate::eval::run::RunData;

pub use rows::{metric_rows, MetricRow};

/// Dialogues shown in a run's browser by default (each shows every candidate of every turn,
/// so thousands would make a page of many megabytes).
pub const DEFAULT_MAX_DIALOGUES: usize = 200;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The report template did not render.
    #[error("report template: {0}")]
    Template(String),
    /// A comparison was asked for with no run.
    #[error("nothing to compare: no run given")]
    NoRuns,
    /// Another process writes the folder.
    #[error(transparent)]
    Locked(#[from] crate::rundir::LockError),
}

/// The paths a report was written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The Markdown report (`report.md`).
    pub markdown: PathBuf,
    /// The HTML report (`report.html`).
    pub html: PathBuf,
}

fn write(path: PathBuf, text: &str) -> Result<PathBuf, ReportError> {
    crate::fsutil::write_atomic(&path, text.as_bytes())
        .map_err(|source| ReportError::Io { path: path.clone(), source })?;
    Ok(path)
}

/// The manifest of a folder written by [`write_comparison`].
pub const COMPARISON_MANIFEST: &str = "comparison.json";

/// A comparison folder, recognised by its manifest.
const COMPARISON_FOLDER: crate::fsutil::FolderKind =
    crate::fsutil::FolderKind { what: "a vsim report folder", manifest: COMPARISON_MANIFEST };

/// Writes `report.md` and `report.html` of one run into `dir` (usually the run directory).
pub fn write_run_report(
    dir: &Path,
    evaluation: &Evaluation,
    run: Option<&RunData>,
    max_dialogues: usize,
) -> Result<Written, ReportError> {
    let html = html::run_html(evaluation, run, max_dialogues)?;
    Ok(Written {
        markdown: write(dir.join("report.md"), &markdown::run_markdown(evaluation))?,
        html: write(dir.join("report.html"), &html)?,
    })
}

/// One metric across runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ComparisonRow {
    /// The group the row belongs to, e.g. `Outcome persuadee.donation`.
    pub section: String,
    /// The metric's name.
    pub name: String,
    /// One cell per run (`estimate [lo, hi]`, or empty when the run lacks the metric).
    pub values: Vec<String>,
    /// The human reference level (from the first run that has one).
    pub human: String,
}

/// Several evaluated runs lined up metric by metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The runs, in the order given.
    pub runs: Vec<Evaluation>,
    /// One row per metric.
    pub table: Vec<ComparisonRow>,
    /// Caveats, e.g. runs compared with different human references.
    pub notes: Vec<String>,
    /// Headline blocks of other measures that lead this report's own (a sweep's answers
    /// report leads with the stated measure, the paper's headline).
    pub leads: Vec<headline::Headline>,
}

impl Comparison {
    /// Lines the runs' metrics up; rows appear in order of first appearance.
    pub fn new(mut runs: Vec<Evaluation>) -> Result<Comparison, ReportError> {
        if runs.is_empty() {
            return Err(ReportError::NoRuns);
        }
        // Runs in different parents may share a directory name: number repeated labels.
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for e in &mut runs {
            let n = seen.entry(e.label.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                e.label = format!("{} ({n})", e.label);
            }
        }
        let mut order: Vec<String> = Vec::new();
        let mut rows: std::collections::HashMap<String, ComparisonRow> = std::collections::HashMap::new();
        for (i, e) in runs.iter().enumerate() {
            for r in metric_rows(e) {
                let key = r.key();
                let entry = rows.entry(key.clone()).or_insert_with(|| {
                    order.push(key.clone());
                    ComparisonRow {
                        section: r.section.clone(),
                        name: r.name.clone(),
                        values: vec![String::new(); runs.len()],
                        human: String::new(),
                    }
                });
                entry.values[i] = html::row_cell(&r);
                if entry.human.is_empty() {
                    entry.human = r.human.clone();
                }
            }
        }
        // Keep each section's rows together (a run may add rows to a section, or a section,
        // that earlier runs lacked), sections in report order, rows in order of appearance.
        let mut table: Vec<ComparisonRow> = order.into_iter().filter_map(|k| rows.remove(&k)).collect();
        let mut sections: Vec<String> = Vec::new();
        for r in &table {
            if !sections.contains(&r.section) {
                sections.push(r.section.clone());
            }
        }
        sections.sort_by_key(|s| section_rank(s));
        table.sort_by_key(|r| sections.iter().position(|s| *s == r.section));
        let mut notes = Vec::new();
        if runs.iter().any(|e| e.measure != runs[0].measure) {
            notes.push("The runs measure their outcomes differently (answers vs stated values).".to_string());
        }
        // Runs compare with the same human people only when they simulated the same ones.
        let refs: Vec<Option<(String, String, u64, String)>> = runs
            .iter()
            .map(|e| {
                e.human.as_ref().map(|h| (h.source.clone(), h.split.clone(), h.split_seed, h.people.clone()))
            })
            .collect();
        if refs.iter().any(Option::is_some) && refs.iter().any(Option::is_none) {
            let without: Vec<&str> =
                runs.iter().filter(|e| e.human.is_none()).map(|e| e.label.as_str()).collect();
            notes.push(format!("Not evaluated against human data: {}.", without.join(", ")));
        }
        let distinct: std::collections::BTreeSet<&(String, String, u64, String)> =
            refs.iter().flatten().collect();
        if distinct.len() > 1 {
            notes.push(
                "The runs were evaluated against different human references (source, split, seed or the \
                 people simulated); the human column shows the first run's."
                    .to_string(),
            );
        }
        let settings: std::collections::BTreeSet<String> =
            runs.iter().map(|e| format!("{}/{}", e.bootstrap.resamples, e.bootstrap.confidence)).collect();
        if settings.len() > 1 {
            notes.push("The runs' intervals use different bootstrap settings.".to_string());
        }
        Ok(Comparison { runs, table, notes, leads: Vec::new() })
    }

    /// The headline blocks, in order: the leads, then this comparison's own measure.
    pub fn headlines(&self) -> Vec<headline::Headline> {
        let mut blocks = self.leads.clone();
        if let Some(first) = self.runs.first() {
            blocks.push(headline::Headline {
                title: format!("As measured in this report: {}", markdown::measure_text(first.measure)),
                why: "Per arm, the distances of the simulated values from the human ones (paired L1 only where a \
                      simulated person is a real participant), with bootstrap intervals and the counts they rest on; \
                      every metric follows below."
                    .into(),
                tables: headline::headline_tables(&self.runs),
            });
        }
        blocks
    }

    /// The confidence level of the first run's intervals.
    pub fn confidence(&self) -> f64 {
        self.runs.first().map_or(0.95, |e| e.bootstrap.confidence)
    }
}

/// Where a section goes in a report: outcomes, language, selection check, stated
/// probabilities, then counts.
fn section_rank(section: &str) -> u8 {
    if section.starts_with("Outcome ") {
        0
    } else if section.starts_with("Language: ") {
        1
    } else if section.starts_with("Selection check: ") {
        2
    } else if section.starts_with("Stated probabilities: ") {
        3
    } else {
        4
    }
}

/// Writes `report.md` and `report.html` comparing the runs into `out_dir` (created if
/// needed), with its manifest `comparison.json`. A folder that is neither empty nor such a
/// report folder (a run folder included) is refused. The HTML links each run's own
/// `report.html` where one exists.
pub fn write_comparison(out_dir: &Path, comparison: &Comparison) -> Result<Written, ReportError> {
    crate::fsutil::claim_dir(out_dir, COMPARISON_FOLDER)
        .map_err(|source| ReportError::Io { path: out_dir.to_path_buf(), source })?;
    let manifest = serde_json::json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "kind": "comparison",
        "runs": comparison.runs.iter().map(|e| e.run_dir.clone()).collect::<Vec<_>>(),
    });
    write(out_dir.join(COMPARISON_MANIFEST), &format!("{manifest:#}\n"))?;
    write_comparison_files(out_dir, comparison)
}

/// `report.md` and `report.html` of a comparison, written into a folder already claimed (a
/// sweep writes them into its own folder).
pub(crate) fn write_comparison_files(
    out_dir: &Path,
    comparison: &Comparison,
) -> Result<Written, ReportError> {
    let links: Vec<Option<String>> = comparison
        .runs
        .iter()
        .map(|e| {
            let p = Path::new(&e.run_dir).join("report.html");
            p.canonicalize().ok().map(|p| p.display().to_string())
        })
        .collect();
    let html = html::comparison_html(comparison, &links)?;
    Ok(Written {
        markdown: write(out_dir.join("report.md"), &markdown::comparison_markdown(comparison))?,
        html: write(out_dir.join("report.html"), &html)?,
    })
}
