//! Sweeps: one scenario and population run over several settings of one role, with common
//! random numbers: every cell uses the same experiment seed, so dialogue i plays the same
//! persona with the same dialogue seed in every cell and differences between cells come from
//! the settings alone.
//!
//! The cells are either a grid (method × k × selection × tau × model) or a list of explicit
//! arms, since a protocol's arms are rarely a cartesian product (direct, sequence with k = 5,
//! VS with k = 5 and weighted selection, VS with a model-decided k and uniform selection).
//!
//! Each cell is an ordinary run directory under the sweep's output directory; a combined
//! table of outcome means, missing outcomes and failures per cell is written as
//! `summary.csv` and `summary.md`. [`evaluate_sweep`] then evaluates every cell against the
//! human reference of exactly the people it simulated and writes one comparison report
//! (`report.md`, `report.html`) with a column per cell.
//!
//! The stages live in their own modules: [`spec`] reads and validates the sweep file,
//! [`grid`] expands it into cells, [`run`] runs the cells and [`summary`] summarises and
//! evaluates them.

use std::path::PathBuf;

use crate::experiment::population::PopulationError;
use crate::experiment::runner::RunError;
use crate::rundir::transcript::TranscriptError;
use crate::scenario::ScenarioError;

pub mod grid;
pub mod run;
pub mod spec;
pub mod summary;

pub use grid::Cell;
pub use run::{run_sweep, CellResult, SweepOptions, SweepSummary};
pub use spec::{load_sweep, parse_sweep, Arm, Grid, Sweep};
pub use summary::{
    evaluate_sweep, summarize_run, CellEvalError, CellEvalStatus, CellEvaluation, OutcomeStats, RunStats,
    SweepEvalOptions, SweepEvaluation,
};

/// Why a sweep cannot be read or run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The sweep file is not valid TOML of the expected form.
    #[error("{}: {reason}", file.display())]
    Syntax {
        /// The sweep file.
        file: PathBuf,
        /// The parser's message, with its position.
        reason: String,
    },
    /// A field of the sweep file has a value that cannot be used.
    #[error("{}: field `{field}`: {reason}", file.display())]
    Invalid {
        /// The sweep file.
        file: PathBuf,
        /// The field's name.
        field: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The scenario could not be loaded.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The population could not be loaded.
    #[error(transparent)]
    Population(#[from] PopulationError),
    /// A cell's run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A cell's transcript could not be read.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// A model the sweep needs was not opened.
    #[error("no backend was opened for model `{0}`")]
    MissingModel(String),
    /// A cell's shard run directories could not be merged.
    #[error("merging a cell's shards: {0}")]
    Merge(crate::workflow::merge::MergeError),
}
