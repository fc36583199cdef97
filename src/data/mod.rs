//! Human reference datasets, read from any path a user gives (never bundled).
//!
//! - [`persuasionforgood`]: the PersuasionForGood donation dialogues (Wang et al., 2019):
//!   participants, utterances, personas built from survey answers, a consistency filter and
//!   a seeded train/test split.
//! - [`convokit`]: the same corpus as ConvoKit distributes it (`persuasionforgood-corpus`).
//! - [`fetch`]: downloading ConvoKit's zip of the corpus into the user's data directory.

pub mod convokit;
pub mod fetch;
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
    /// A JSON file, or one line of a JSON Lines file, is not valid JSON.
    #[error("{}: line {line}: malformed JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        line: u64,
        #[source]
        source: serde_json::Error,
    },
    /// A JSON record lacks a field the reader relies on.
    #[error("{}: {item}: missing field `{field}`", path.display())]
    MissingField { path: PathBuf, item: String, field: String },
    /// A JSON field does not hold what the reader requires.
    #[error("{}: {item}, field `{field}`: found {value}, expected {expected}", path.display())]
    JsonField { path: PathBuf, item: String, field: String, value: String, expected: String },
    /// A path holds neither known layout of the dataset.
    #[error(
        "{}: not a PersuasionForGood dataset: expected full_info.csv and full_dialog.csv (the \
         original release) or utterances.jsonl, speakers.json and conversations.json (ConvoKit's \
         persuasionforgood-corpus)",
        path.display()
    )]
    UnknownFormat { path: PathBuf },
    /// The path does not exist.
    #[error(
        "{}: no such file or directory; expected a directory holding full_info.csv and \
         full_dialog.csv, or ConvoKit's persuasionforgood-corpus (vsim data fetch persuasionforgood)",
        path.display()
    )]
    Missing { path: PathBuf },
    /// A split asked for more test items than there are.
    #[error("cannot take a test set of {requested} from {available} participants")]
    SplitTooLarge { requested: usize, available: usize },
}
