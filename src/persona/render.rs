//! Turning a persona into prompt text: a plain profile, or a minijinja template.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use super::{Persona, PersonaError};

/// Cell values that datasets use for "no answer". They are never rendered into a prompt:
/// a model told "Religion: NA" invents a meaning for it.
const MISSING_MARKERS: [&str; 4] = ["na", "n/a", "nan", "null"];

/// True for an empty value or a missing-value marker (`NA`, `N/A`, `nan`, `null`, any case).
pub fn is_missing_value(value: &str) -> bool {
    let value = value.trim();
    value.is_empty() || MISSING_MARKERS.iter().any(|m| value.eq_ignore_ascii_case(m))
}

/// The persona as seen by templates: `persona.id`, `persona.name`, `persona.description`,
/// `persona.source`, `persona.attributes.KEY` and `persona.profile` (the default rendering).
/// Absent fields and missing attribute values are left out, so that with strict undefined
/// handling a template that relies on them fails instead of printing an empty slot.
#[derive(Serialize)]
struct TemplateView<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    attributes: BTreeMap<&'a str, &'a str>,
    profile: String,
}

fn present(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !is_missing_value(v))
}

/// `marital_status` -> `Marital status`.
fn label(key: &str) -> String {
    let words: Vec<&str> = key.split(['_', '-', ' ']).filter(|w| !w.is_empty()).collect();
    let joined = words.join(" ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => key.to_string(),
    }
}

impl Persona {
    /// A plain, third-person profile: `Name: ...`, the description, then one
    /// `Label: value` line per attribute in authoring order. Missing values are skipped;
    /// a persona with nothing to say renders as an empty string.
    pub fn render(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        if let Some(name) = present(self.name.as_ref()) {
            lines.push(format!("Name: {name}"));
        }
        if let Some(description) = present(self.description.as_ref()) {
            lines.push(description.to_string());
        }
        for (key, value) in &self.attributes {
            if !is_missing_value(value) {
                lines.push(format!("{}: {}", label(key), value.trim()));
            }
        }
        lines.join("\n")
    }

    /// Renders a minijinja template with this persona bound to `persona`: the slots are
    /// `persona.id`, `persona.name`, `persona.description`, `persona.source`,
    /// `persona.attributes.KEY` and `persona.profile` ([`Persona::render`]). Undefined slots
    /// are errors (strict mode), so a typo such as `{{ persona.atributes.age }}` or a
    /// persona lacking the attribute a template needs is reported, never rendered blank.
    /// Use `{% if persona.attributes.age is defined %}` for optional slots.
    pub fn render_with(&self, template: &str) -> Result<String, PersonaError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let view = TemplateView {
            id: &self.id,
            name: present(self.name.as_ref()),
            description: present(self.description.as_ref()),
            source: present(self.source.as_ref()),
            attributes: self
                .attributes
                .iter()
                .filter(|(_, v)| !is_missing_value(v))
                .map(|(k, v)| (k.as_str(), v.trim()))
                .collect(),
            profile: self.render(),
        };
        env.render_str(template, minijinja::context! { persona => view }).map_err(|err| {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            // minijinja does not say which expression was undefined; the line does.
            let line = err.line();
            if let Some(text) = line.and_then(|n| template.lines().nth(n.saturating_sub(1))) {
                message.push_str(&format!("; template line: `{}`", text.trim()));
            }
            PersonaError::Template { id: self.id.clone(), line, message }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_words() {
        assert_eq!(label("marital_status"), "Marital status");
        assert_eq!(label("age"), "Age");
        assert_eq!(label("big-five openness"), "Big five openness");
        assert_eq!(label("_"), "_");
    }

    #[test]
    fn missing_markers() {
        for v in ["", "  ", "NA", "na", "N/A", "nan", "NaN", "null"] {
            assert!(is_missing_value(v), "{v:?}");
        }
        for v in ["0", "none", "Nancy", "NAB"] {
            assert!(!is_missing_value(v), "{v:?}");
        }
    }
}
