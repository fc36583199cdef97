//! Errors from loading and rendering personas. File errors carry the path, 1-based line and
//! column, and the field, so a user can jump straight to the mistake.

use std::fmt;
use std::path::PathBuf;

/// Why a persona could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum PersonaError {
    /// The file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a field is missing, unknown or of the wrong kind.
    #[error("{}:{line}:{column}: {}{message}", path.display(), FieldPrefix(field.as_deref()))]
    Invalid {
        /// The persona file.
        path: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column (in characters) of the offending text.
        column: usize,
        /// Dotted field path (e.g. `id`, `attributes.age`) where it could be determined.
        field: Option<String>,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Two files of one directory declare the same id.
    #[error(
        "{}:{line}: field `id`: duplicate persona id `{id}` (already used by {}); expected ids to be unique",
        path.display(),
        first.display()
    )]
    DuplicateId {
        /// The duplicated id.
        id: String,
        /// The file that declares it a second time.
        path: PathBuf,
        /// 1-based line of its `id` there.
        line: usize,
        /// The file that declared it first.
        first: PathBuf,
    },
    /// A template could not be rendered for a persona (syntax error, undefined slot, ...).
    #[error("persona `{id}`: template error{}: {message}", LinePrefix(*line))]
    Template {
        /// The persona's id.
        id: String,
        /// 1-based line in the template, where known.
        line: Option<usize>,
        /// The template engine's message.
        message: String,
    },
}

impl PersonaError {
    /// The 1-based line the error points at, where it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            PersonaError::Invalid { line, .. } | PersonaError::DuplicateId { line, .. } => Some(*line),
            PersonaError::Template { line, .. } => *line,
            PersonaError::Io { .. } => None,
        }
    }
}

struct FieldPrefix<'a>(Option<&'a str>);

impl fmt::Display for FieldPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, "field `{field}`: "),
            None => Ok(()),
        }
    }
}

struct LinePrefix(Option<usize>);

impl fmt::Display for LinePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, " at template line {line}"),
            None => Ok(()),
        }
    }
}
