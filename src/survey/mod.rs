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
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Csv { file: PathBuf, message: String },
    #[error("{}: {message}", file.display())]
    Json { file: PathBuf, message: String },
    #[error("{}:{line}: `{field}`: {message}", file.display())]
    Invalid { file: PathBuf, line: usize, field: String, message: String },
    #[error("{}: missing column `{column}`", file.display())]
    MissingColumn { file: PathBuf, column: String },
    #[error("{}: question `{key}` is not in {}", file.display(), info.display())]
    MissingQuestion { file: PathBuf, key: String, info: PathBuf },
    #[error("unknown subgroup attribute `{attribute}`; known: {known}")]
    UnknownAttribute { attribute: String, known: String },
    #[error("unknown subgroup `{group}` for {attribute}; groups in the data: {known}")]
    UnknownGroup { group: String, attribute: String, known: String },
    #[error("unknown item `{key}`; it is not in the questionnaire")]
    UnknownItem { key: String },
    #[error("item `{key}` has no human data for {attribute}")]
    NoHumanData { key: String, attribute: String },
}

impl SurveyError {
    pub(crate) fn io(file: &Path, source: std::io::Error) -> Self {
        SurveyError::Io { file: file.to_path_buf(), source }
    }
    pub(crate) fn csv(file: &Path, e: csv::Error) -> Self {
        SurveyError::Csv { file: file.to_path_buf(), message: e.to_string() }
    }
}

/// True when the TOML file at `path` declares `kind = "survey"`.
pub fn is_survey_file(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("kind").and_then(|k| k.as_str().map(|s| s == "survey")))
        .unwrap_or(false)
}
