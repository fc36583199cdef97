//! Personas: who an agent plays.
//!
//! A [`Persona`] comes from a `personas/*.toml` file ([`load_persona_file`],
//! [`load_persona_dir`]) or from a row of a human dataset (see
//! `data::persuasionforgood::persona_from_participant`). It is turned into prompt
//! text either by [`Persona::render`] (a plain profile) or by [`Persona::render_with`] (a
//! minijinja template with persona slots).
//!
//! Persona file format:
//! ```toml
//! id = "night_nurse"            # required: letters, digits, '_' or '-'
//! name = "Dana Whitfield"       # optional
//! description = "..."           # optional free text
//! [attributes]                  # optional: flat strings, numbers or booleans
//! age = 41
//! occupation = "ICU nurse"
//! ```

mod attributes;
mod error;
mod file;
mod render;

use serde::{Deserialize, Serialize};

pub use error::PersonaError;
pub use file::{load_persona_dir, load_persona_file, parse_persona};
pub use render::is_missing_value;

/// One persona. Attributes are an ordered list rather than a map so that a profile renders
/// in the order its author wrote it (age before occupation before values), reproducibly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Persona {
    /// Stable identifier (`[A-Za-z0-9_-]+`); names the persona in transcripts and outcomes.
    pub id: String,
    /// Display name, if the persona has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-text description, rendered before the attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `(key, value)` pairs in authoring order; serialized as a map. Numbers and booleans
    /// from files are kept as their text (`34`, `4.5`, `true`).
    #[serde(default, with = "attributes")]
    pub attributes: Vec<(String, String)>,
    /// Where the persona came from (a file path, a dataset row), for provenance in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Persona {
    /// A persona with only an id; fill the other fields directly or with the `with_*` helpers.
    pub fn new(id: impl Into<String>) -> Self {
        Persona { id: id.into(), name: None, description: None, attributes: Vec::new(), source: None }
    }

    /// Appends an attribute (builder style). A later value for an existing key replaces it
    /// in place, so the key keeps its first position.
    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_attribute(key, value);
        self
    }

    /// Sets an attribute, replacing an existing value in place or appending a new key.
    pub(crate) fn set_attribute(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }

    /// The value of attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Checks a persona id: non-empty, ASCII letters, digits, `_` and `-` only, so that ids are
/// safe in file names, CSV cells and log lines. Returns what is wrong, for error messages.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(
            "expected a non-empty id of ASCII letters, digits, '_' or '-', found an empty string".to_string()
        );
    }
    match id.chars().enumerate().find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-')) {
        Some((pos, c)) => Err(format!(
            "expected only ASCII letters, digits, '_' or '-' in the id, found {c:?} at position {}",
            pos + 1
        )),
        None => Ok(()),
    }
}
