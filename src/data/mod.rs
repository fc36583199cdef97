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

/// `path` with a leading `~` (alone or before `/`) replaced by the user's home directory,
/// as a shell would: in a spec such as `pfg:~/data` the shell leaves `~` alone. Other paths,
/// and `~` where no home directory is known, are kept as written.
pub fn expand_home(path: &str) -> PathBuf {
    let rest = match path.strip_prefix('~') {
        Some("") => "",
        Some(r) if r.starts_with('/') || r.starts_with(std::path::MAIN_SEPARATOR) => &r[1..],
        _ => return PathBuf::from(path),
    };
    match dirs::home_dir() {
        Some(home) if rest.is_empty() => home,
        Some(home) => home.join(rest),
        None => PathBuf::from(path),
    }
}

/// Why a dataset could not be read. Every variant names the file; row-level errors also
/// name the data row (1-based, header excluded) and the file line, for spreadsheets and
/// editors alike.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The CSV itself is malformed (e.g. a row with the wrong number of cells).
    #[error("{}: line {line}: malformed CSV: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The file line, 1-based.
        line: u64,
        /// The CSV reader's error.
        #[source]
        source: csv::Error,
    },
    /// A required column is absent from the header.
    #[error("{}: missing column `{column}` in the header; expected columns: {expected}", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column that is absent.
        column: String,
        /// Every column the reader needs, comma-separated.
        expected: String,
    },
    /// A cell does not hold what its column requires.
    #[error(
        "{}: row {row} (line {line}), column `{column}`: found {value:?}, expected {expected}",
        path.display()
    )]
    Field {
        /// The file.
        path: PathBuf,
        /// The data row, 1-based, header excluded.
        row: u64,
        /// The file line, 1-based.
        line: u64,
        /// The cell's column.
        column: String,
        /// The cell as written.
        value: String,
        /// What the column requires, in words.
        expected: String,
    },
    /// A JSON file, or one line of a JSON Lines file, is not valid JSON.
    #[error("{}: line {line}: malformed JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The file line, 1-based.
        line: u64,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A JSON record lacks a field the reader relies on.
    #[error("{}: {item}: missing field `{field}`", path.display())]
    MissingField {
        /// The file.
        path: PathBuf,
        /// Which record, in words (e.g. ``line 12 (utterance `u3`)``).
        item: String,
        /// The field that is absent.
        field: String,
    },
    /// A JSON field does not hold what the reader requires.
    #[error("{}: {item}, field `{field}`: found {value}, expected {expected}", path.display())]
    JsonField {
        /// The file.
        path: PathBuf,
        /// Which record, in words.
        item: String,
        /// The field.
        field: String,
        /// The value as written (JSON).
        value: String,
        /// What the field requires, in words.
        expected: String,
    },
    /// A path holds neither known layout of the dataset.
    #[error(
        "{}: not a PersuasionForGood dataset: expected full_info.csv and full_dialog.csv (the \
         original release) or utterances.jsonl, speakers.json and conversations.json (ConvoKit's \
         persuasionforgood-corpus)",
        path.display()
    )]
    UnknownFormat {
        /// The path given.
        path: PathBuf,
    },
    /// The path does not exist.
    #[error(
        "{}: no such file or directory; expected a directory holding full_info.csv and \
         full_dialog.csv, or ConvoKit's persuasionforgood-corpus (vsim data fetch persuasionforgood)",
        path.display()
    )]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// A split asked for more test items than there are.
    #[error("cannot take a test set of {requested} from {available} participants")]
    SplitTooLarge {
        /// Test items asked for.
        requested: usize,
        /// Participants there are.
        available: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let Some(home) = dirs::home_dir() else { return };
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("~/data/pfg"), home.join("data/pfg"));
        assert_eq!(expand_home("data/~/x"), PathBuf::from("data/~/x"));
        assert_eq!(expand_home("~other/x"), PathBuf::from("~other/x"));
        assert_eq!(expand_home("/abs"), PathBuf::from("/abs"));
    }
}
