//! What an input file asks to run: [`InputKind`], decided by [`input_kind`].

use std::path::Path;

/// What an input file of a run describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A scenario: dialogues between roles.
    Dialogue,
    /// A survey (`kind = "survey"`): respondents answering a questionnaire.
    Survey,
}

/// What the TOML file at `path` asks to run: a survey when it declares `kind = "survey"`,
/// else dialogues. A file that cannot be read or parsed counts as a scenario, whose loader
/// then says what is wrong with it.
pub fn input_kind(path: &Path) -> InputKind {
    let survey = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.get("kind").and_then(|k| k.as_str()) == Some("survey"));
    if survey {
        InputKind::Survey
    } else {
        InputKind::Dialogue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_of_input_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        assert_eq!(input_kind(&file("s.toml", "kind = \"survey\"\n")), InputKind::Survey);
        assert_eq!(input_kind(&file("d.toml", "name = \"x\"\n")), InputKind::Dialogue);
        assert_eq!(input_kind(&file("bad.toml", "kind = \n")), InputKind::Dialogue);
        assert_eq!(input_kind(&dir.path().join("absent.toml")), InputKind::Dialogue);
    }
}
