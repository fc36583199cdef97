//! Loading `personas/*.toml`. Errors point at the file, line, column and field, using the
//! byte spans toml reports, and say what was expected.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{attributes, check_id, Persona, PersonaError};
use crate::fsutil::line_col;

/// The on-disk shape. Unknown fields are rejected so that a typo (`descripton`) is an error
/// rather than a silently missing description.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonaFile {
    #[serde(default)]
    id: Option<Spanned<String>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, with = "attributes")]
    attributes: Vec<(String, String)>,
}

/// Reads and validates one persona file. `source` is set to the file's path.
pub fn load_persona_file(path: impl AsRef<Path>) -> Result<Persona, PersonaError> {
    load_with_id_line(path.as_ref()).map(|(persona, _)| persona)
}

/// Parses persona TOML held in memory; `path` is only used in error messages and `source`.
pub fn parse_persona(text: &str, path: impl AsRef<Path>) -> Result<Persona, PersonaError> {
    parse_with_id_line(text, path.as_ref()).map(|(persona, _)| persona)
}

/// Loads every `*.toml` file directly inside `dir` (not recursively), ordered by file name
/// and then id, so a population has the same order on every machine. Two files with the
/// same id are an error naming both.
pub fn load_persona_dir(dir: impl AsRef<Path>) -> Result<Vec<Persona>, PersonaError> {
    let dir = dir.as_ref();
    let io_err = |source| PersonaError::Io { path: dir.to_path_buf(), source };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));

    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut personas: Vec<(PathBuf, Persona)> = Vec::with_capacity(files.len());
    for path in files {
        let (persona, id_line) = load_with_id_line(&path)?;
        if let Some(first) = seen.get(&persona.id) {
            return Err(PersonaError::DuplicateId {
                id: persona.id,
                path,
                line: id_line,
                first: first.clone(),
            });
        }
        seen.insert(persona.id.clone(), path.clone());
        personas.push((path, persona));
    }
    personas.sort_by(|(pa, a), (pb, b)| pa.file_name().cmp(&pb.file_name()).then_with(|| a.id.cmp(&b.id)));
    Ok(personas.into_iter().map(|(_, persona)| persona).collect())
}

fn load_with_id_line(path: &Path) -> Result<(Persona, usize), PersonaError> {
    let text =
        fs::read_to_string(path).map_err(|source| PersonaError::Io { path: path.to_path_buf(), source })?;
    parse_with_id_line(&text, path)
}

fn parse_with_id_line(text: &str, path: &Path) -> Result<(Persona, usize), PersonaError> {
    let file: PersonaFile = toml::from_str(text).map_err(|err| toml_error(path, text, &err))?;
    let Some(id) = file.id else {
        return Err(PersonaError::Invalid {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            field: Some("id".to_string()),
            message: "missing required field; expected a line such as id = \"retired_teacher\" \
                      (ASCII letters, digits, '_' or '-')"
                .to_string(),
        });
    };
    let (line, column) = line_col(text, id.span().start);
    let id = id.into_inner();
    check_id(&id).map_err(|message| PersonaError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        field: Some("id".to_string()),
        message,
    })?;
    let persona = Persona {
        id,
        name: non_empty(file.name),
        description: non_empty(file.description),
        attributes: file.attributes,
        source: Some(path.display().to_string()),
    };
    Ok((persona, line))
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

fn toml_error(path: &Path, text: &str, err: &toml::de::Error) -> PersonaError {
    let start = err.span().map_or(0, |span| span.start);
    let (line, column) = line_col(text, start);
    PersonaError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        field: field_at_line(text, line),
        message: err.message().trim().to_string(),
    }
}

/// The dotted field at `line`: the key assigned there (prefixed by the enclosing table
/// header), the header itself on a `[table]` line, or the key whose multi-line string spans
/// the line. toml does not expose the key path of an error, so it is read off the source.
fn field_at_line(text: &str, line: usize) -> Option<String> {
    let mut table: Option<String> = None;
    let mut open: Option<(&str, Option<String>)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if let Some((delim, key)) = &open {
            if number == line {
                return key.as_ref().map(|k| join_key(table.as_deref(), k));
            }
            if raw.matches(delim).count() % 2 == 1 {
                open = None;
            }
            continue;
        }
        let trimmed = raw.trim_start();
        let header = header_of(trimmed);
        let key = key_of(trimmed);
        if number == line {
            return match (header, key) {
                (Some(h), _) => Some(h),
                (None, Some(k)) => Some(join_key(table.as_deref(), &k)),
                (None, None) => None,
            };
        }
        if let Some(h) = header {
            table = Some(h);
        }
        for delim in ["\"\"\"", "'''"] {
            if raw.matches(delim).count() % 2 == 1 {
                open = Some((delim, key));
                break;
            }
        }
    }
    None
}

fn join_key(table: Option<&str>, key: &str) -> String {
    match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    }
}

fn header_of(trimmed: &str) -> Option<String> {
    let inner = trimmed.strip_prefix("[[").or_else(|| trimmed.strip_prefix('['))?;
    let name = inner.split(']').next()?.trim();
    (!name.is_empty()).then(|| name.replace(['"', '\''], ""))
}

fn key_of(trimmed: &str) -> Option<String> {
    if trimmed.starts_with('#') || trimmed.starts_with('[') {
        return None;
    }
    let key = trimmed.split('=').next()?.trim();
    let plausible = trimmed.contains('=')
        && !key.is_empty()
        && key.chars().all(|c| c.is_alphanumeric() || "_-.\"' ".contains(c));
    plausible.then(|| key.replace(['"', '\''], "").replace(' ', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_at_line_tracks_tables_and_multiline_strings() {
        let text = "id = \"x\"\ndescription = \"\"\"\nage = 3\n\"\"\"\n[attributes]\nage = 34\n[attributes.big_five]\n";
        assert_eq!(field_at_line(text, 1).as_deref(), Some("id"));
        assert_eq!(field_at_line(text, 3).as_deref(), Some("description"));
        assert_eq!(field_at_line(text, 6).as_deref(), Some("attributes.age"));
        assert_eq!(field_at_line(text, 7).as_deref(), Some("attributes.big_five"));
        assert_eq!(field_at_line(text, 99), None);
    }
}
