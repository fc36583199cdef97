//! Human reference datasets, read from any path a user gives (never bundled).
//!
//! - [`persuasionforgood`]: the PersuasionForGood donation dialogues (Wang et al., 2019):
//!   participants, utterances, personas built from survey answers, a consistency filter and
//!   a seeded train/test split.

pub mod persuasionforgood;

use std::path::PathBuf;

/// Why a dataset could not be read. Every variant names the file; row-level errors also
/// name the data row (1-based, header excluded) and the file line, for spreadsheets and
/// editors alike.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV itself is malformed (e.g. a row with the wrong number of cells).
    #[error("{}: line {line}: malformed CSV: {source}", path.display())]
    Csv {
        path: PathBuf,
        line: u64,
        #[source]
        source: csv::Error,
    },
    /// A required column is absent from the header.
    #[error("{}: missing column `{column}` in the header; expected columns: {expected}", path.display())]
    MissingColumn { path: PathBuf, column: String, expected: String },
    /// A cell does not hold what its column requires.
    #[error(
        "{}: row {row} (line {line}), column `{column}`: found {value:?}, expected {expected}",
        path.display()
    )]
    Field { path: PathBuf, row: u64, line: u64, column: String, value: String, expected: String },
    /// A split asked for more test items than there are.
    #[error("cannot take a test set of {requested} from {available} participants")]
    SplitTooLarge { requested: usize, available: usize },
}
