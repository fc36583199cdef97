//! Scenario errors that name the file, line and field, and say what was expected.

use std::path::PathBuf;

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file could not be read.
    #[error("{}: cannot read scenario file: {source}", file.display())]
    Io {
        /// The scenario file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A field is missing, malformed or inconsistent with another.
    #[error("{}:{line}:{column}: `{field}`: {message}", file.display())]
    Invalid {
        /// The scenario file.
        file: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column (in characters) of the offending value.
        column: usize,
        /// The field's path, e.g. `roles[0].k`.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
}

/// Maps byte offsets in a source text to 1-based line and column (character) numbers.
#[derive(Debug, Clone)]
pub(crate) struct SourceMap {
    /// The file the text was read from.
    pub file: PathBuf,
    text: String,
}

impl SourceMap {
    /// A map of `text`, read from `file`.
    pub fn new(file: PathBuf, text: &str) -> Self {
        Self { file, text: text.to_string() }
    }

    /// The text from `offset` on (empty past the end).
    pub(crate) fn text_from(&self, offset: usize) -> &str {
        self.text.get(offset..).unwrap_or_default()
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        crate::fsutil::line_col(&self.text, offset)
    }

    /// An error at `span` for `field`.
    pub fn error(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        let (line, column) = self.position(span.start);
        ScenarioError::Invalid {
            file: self.file.clone(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let m = SourceMap::new("x.toml".into(), "ab\ncd\n\nef");
        assert_eq!(m.position(0), (1, 1));
        assert_eq!(m.position(1), (1, 2));
        assert_eq!(m.position(3), (2, 1));
        assert_eq!(m.position(7), (4, 1));
        let m = SourceMap::new("x.toml".into(), "é = 1\nx");
        assert_eq!(m.position(4), (1, 4), "columns count characters");
    }
}
