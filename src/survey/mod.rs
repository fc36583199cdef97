//! Survey-response simulation ("silicon samples"): a population of personas defined by
//! subgroup attributes answers questionnaire items, directly or through a verbalized
//! distribution over the options; answer distributions per subgroup are compared with
//! human survey data.
//!
//! - [`questionnaire`]: items and options; [`opinionqa`]: OpinionQA human aggregates;
//! - [`spec`]: survey files (`kind = "survey"`); [`run`]: the respondent runner;
//! - [`eval`]: per-item, per-subgroup distances and the representativeness summary.

pub mod eval;
pub mod opinionqa;
pub mod pyliteral;
pub mod questionnaire;
pub mod run;
pub mod spec;

use std::path::{Path, PathBuf};

pub use questionnaire::{Item, Questionnaire};
pub use spec::{load_survey, SurveySpec};

/// Survey input that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    /// A file could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file is malformed.
    #[error("{}: {message}", file.display())]
    Csv {
        /// The file.
        file: PathBuf,
        /// The CSV reader's message.
        message: String,
    },
    /// A JSON file is malformed or not of the expected shape.
    #[error("{}: {message}", file.display())]
    Json {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A field has a value that cannot be used.
    #[error("{}:{line}: `{field}`: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The line, 1-based.
        line: usize,
        /// The field (or column).
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A required CSV column is absent.
    #[error("{}: missing column `{column}`", file.display())]
    MissingColumn {
        /// The CSV file.
        file: PathBuf,
        /// The column that is absent.
        column: String,
    },
    /// The human data has a question the questionnaire lacks.
    #[error("{}: question `{key}` is not in {}", file.display(), info.display())]
    MissingQuestion {
        /// The human data file.
        file: PathBuf,
        /// The question's key.
        key: String,
        /// The questionnaire file (`info.csv`).
        info: PathBuf,
    },
    /// The subgroup attribute is not one the data has.
    #[error("unknown subgroup attribute `{attribute}`; known: {known}")]
    UnknownAttribute {
        /// The attribute asked for.
        attribute: String,
        /// The attributes there are, comma-separated.
        known: String,
    },
    /// A subgroup is not in the data.
    #[error("unknown subgroup `{group}` for {attribute}; groups in the data: {known}")]
    UnknownGroup {
        /// The subgroup asked for.
        group: String,
        /// The attribute.
        attribute: String,
        /// The subgroups in the data, comma-separated.
        known: String,
    },
    /// An item is not in the questionnaire.
    #[error("unknown item `{key}`; it is not in the questionnaire")]
    UnknownItem {
        /// The item key asked for.
        key: String,
    },
    /// An item has no human answers for the attribute.
    #[error("item `{key}` has no human data for {attribute}")]
    NoHumanData {
        /// The item's key.
        key: String,
        /// The attribute.
        attribute: String,
    },
}

impl SurveyError {
    pub(crate) fn io(file: &Path, source: std::io::Error) -> Self {
        SurveyError::Io { file: file.to_path_buf(), source }
    }
    pub(crate) fn csv(file: &Path, e: csv::Error) -> Self {
        SurveyError::Csv { file: file.to_path_buf(), message: e.to_string() }
    }
}
