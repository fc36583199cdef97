//! Questionnaires: items with question text, options, ordinal values for ordered options,
//! and a refusal option marked as such. Read from a TOML file or from OpinionQA's info.csv.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::SurveyError;

/// One survey item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The item's key, unique in the questionnaire.
    pub key: String,
    /// The question text.
    pub question: String,
    /// Answer options in order (including the refusal option, if any).
    pub options: Vec<String>,
    /// Ordinal value of each substantive (non-refusal) option, in option order; `None` for
    /// nominal items.
    pub ordinal: Option<Vec<f64>>,
    /// Index of the refusal option ("Refused", "Don't know", ...), if there is one.
    pub refused: Option<usize>,
}

impl Item {
    /// Indices of the substantive options (all but the refusal).
    pub(crate) fn substantive(&self) -> Vec<usize> {
        (0..self.options.len()).filter(|&i| Some(i) != self.refused).collect()
    }

    /// True when the options are ordered with distinct ordinal values.
    pub(crate) fn is_ordinal(&self) -> bool {
        match &self.ordinal {
            Some(v) => {
                let mut s = v.clone();
                s.sort_by(f64::total_cmp);
                s.windows(2).all(|w| w[0] < w[1])
            }
            None => false,
        }
    }
}

/// A list of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Questionnaire {
    /// The questionnaire's name.
    pub name: String,
    /// The items, in order.
    pub items: Vec<Item>,
}

impl Questionnaire {
    /// The item with `key`.
    pub fn item(&self, key: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.key == key)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestionnaire {
    name: String,
    items: Vec<RawItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    key: Spanned<String>,
    question: Spanned<String>,
    #[serde(default)]
    options: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    ordinal: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    refused: Option<Spanned<String>>,
}

/// Reads a TOML questionnaire.
pub fn load_questionnaire(path: &Path) -> Result<Questionnaire, SurveyError> {
    let text = std::fs::read_to_string(path).map_err(|e| SurveyError::io(path, e))?;
    parse_questionnaire(path, &text)
}

/// Parses TOML questionnaire text (`path` names it in errors).
pub(crate) fn parse_questionnaire(path: &Path, text: &str) -> Result<Questionnaire, SurveyError> {
    let err = |span: std::ops::Range<usize>, field: &str, msg: String| SurveyError::Invalid {
        file: path.to_path_buf(),
        line: crate::fsutil::line_col(text, span.start).0,
        field: field.to_string(),
        message: msg,
    };
    let raw: RawQuestionnaire = toml::from_str(text)
        .map_err(|e| err(e.span().unwrap_or(0..0), "syntax", e.message().trim().to_string()))?;
    let mut items = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (n, r) in raw.items.into_iter().enumerate() {
        let f = |name: &str| format!("items[{n}].{name}");
        let key = r.key.get_ref().trim().to_string();
        if key.is_empty() {
            return Err(err(r.key.span(), &f("key"), "expected a non-empty item key".into()));
        }
        if !seen.insert(key.clone()) {
            return Err(err(r.key.span(), &f("key"), format!("duplicate item `{key}`")));
        }
        let options: Vec<Spanned<String>> = match r.options {
            Some(o)
                if o.get_ref().len() >= 2 && o.get_ref().iter().all(|s| !s.get_ref().trim().is_empty()) =>
            {
                o.into_inner()
            }
            Some(o) => {
                return Err(err(o.span(), &f("options"), "expected at least two non-empty options".into()))
            }
            None => {
                return Err(err(r.question.span(), &f("options"), format!("item `{key}` has no options")))
            }
        };
        // Answers are matched to options by their text, so two equal options (up to
        // surrounding spaces) could never be told apart.
        for (j, o) in options.iter().enumerate() {
            let text = o.get_ref().trim();
            if let Some(first) = options[..j].iter().position(|p| p.get_ref().trim() == text) {
                return Err(err(
                    o.span(),
                    &format!("items[{n}].options[{j}]"),
                    format!("duplicate option `{text}` in item `{key}` (already given as options[{first}])"),
                ));
            }
        }
        let options: Vec<String> = options.into_iter().map(Spanned::into_inner).collect();
        let refused = match &r.refused {
            None => None,
            Some(s) => Some(options.iter().position(|o| o == s.get_ref()).ok_or_else(|| {
                err(s.span(), &f("refused"), format!("`{}` is not one of the item's options", s.get_ref()))
            })?),
        };
        let substantive = options.len() - usize::from(refused.is_some());
        let ordinal = match r.ordinal {
            None => None,
            Some(o) if o.get_ref().len() == substantive && o.get_ref().iter().all(|x| x.is_finite()) => {
                Some(o.into_inner())
            }
            Some(o) => {
                return Err(err(
                    o.span(),
                    &f("ordinal"),
                    format!("expected {substantive} finite values (one per non-refusal option)"),
                ))
            }
        };
        items.push(Item { key, question: r.question.into_inner(), options, ordinal, refused });
    }
    Ok(Questionnaire { name: raw.name, items })
}
