//! Survey files: which questionnaire, which human data, which subgroups, and how
//! respondents answer.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::opinionqa::{load_counts, load_info, HumanCounts};
use super::questionnaire::{load_questionnaire, Questionnaire};
use super::SurveyError;
use crate::scenario::load::{read_sampling, SamplingFields};
use crate::vs::{Method, Sampling};

/// A validated survey.
#[derive(Debug, Clone)]
pub struct SurveySpec {
    /// The survey's name.
    pub name: String,
    /// The survey file.
    pub source: PathBuf,
    /// The items asked.
    pub questionnaire: Questionnaire,
    /// Human counts for the subgroup attribute, when the survey has human data.
    pub human: Option<HumanCounts>,
    /// The attribute that defines subgroups (e.g. `POLIDEOLOGY`) and how prompts name it.
    pub attribute: String,
    /// How prompts name the attribute.
    pub attribute_label: String,
    /// The subgroups simulated, in order.
    pub groups: Vec<String>,
    /// Respondents per subgroup.
    pub per_group: usize,
    /// How respondents answer each item: any of the seven methods, with k, τ, the
    /// selection rule and N, validated as a dialogue role's are.
    pub sampling: Sampling,
    /// The model spec used when the command line gives none.
    pub model: Option<String>,
    /// Sampling temperature; `None` leaves the backend's default.
    pub temperature: Option<f32>,
    /// Cap on each reply's length, in tokens.
    pub max_tokens: Option<u32>,
    /// System prompt template; slots: `group`, `attribute`.
    pub system: String,
    /// Send a JSON schema / grammar with each question.
    pub use_schema: bool,
    /// The files the survey was read from besides its own (the OpinionQA wave directory as
    /// `human data`, or a `questionnaire` file), to pin in the run's manifest.
    pub inputs: Vec<(&'static str, PathBuf)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSurvey {
    kind: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// An OpinionQA wave directory (info.csv + {ATTRIBUTE}_data.json), relative to this file.
    #[serde(default)]
    opinionqa: Option<Spanned<String>>,
    /// A TOML questionnaire, relative to this file (when there is no OpinionQA directory).
    #[serde(default)]
    questionnaire: Option<Spanned<String>>,
    #[serde(default)]
    items: Option<Vec<Spanned<String>>>,
    attribute: Spanned<String>,
    #[serde(default)]
    attribute_label: Option<String>,
    #[serde(default)]
    groups: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    per_group: Option<Spanned<i64>>,
    #[serde(default)]
    method: Option<Spanned<String>>,
    #[serde(default)]
    k: Option<Spanned<toml::Value>>,
    #[serde(default)]
    k_max: Option<Spanned<i64>>,
    #[serde(default)]
    selection: Option<Spanned<String>>,
    #[serde(default)]
    tau: Option<Spanned<f64>>,
    #[serde(default)]
    min_prob: Option<Spanned<f64>>,
    #[serde(default)]
    min_keep: Option<Spanned<i64>>,
    #[serde(default)]
    candidates: Option<Spanned<i64>>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u32>,
    system: String,
    #[serde(default)]
    use_schema: Option<bool>,
}

/// Reads and validates a survey file. `wave_override` replaces the file's OpinionQA directory.
// Long on purpose: validates the survey file field by field in file order, each check a few lines that need the file's spans for its line numbers.
pub fn load_survey(path: &Path, wave_override: Option<&Path>) -> Result<SurveySpec, SurveyError> {
    let text = std::fs::read_to_string(path).map_err(|e| SurveyError::io(path, e))?;
    let line = |offset: usize| crate::fsutil::line_col(&text, offset).0;
    let err = |span: std::ops::Range<usize>, field: &str, message: String| SurveyError::Invalid {
        file: path.to_path_buf(),
        line: line(span.start),
        field: field.to_string(),
        message,
    };
    let raw: RawSurvey = toml::from_str(&text)
        .map_err(|e| err(e.span().unwrap_or(0..0), "syntax", e.message().trim().to_string()))?;
    let _ = (&raw.kind, &raw.description);
    let base = path.parent().unwrap_or(Path::new("."));
    let wave: Option<PathBuf> = wave_override
        .map(Path::to_path_buf)
        .or_else(|| raw.opinionqa.as_ref().map(|w| base.join(w.get_ref())));
    let mut questionnaire = match (&wave, &raw.questionnaire) {
        (Some(dir), _) => load_info(dir)?,
        (None, Some(q)) => load_questionnaire(&base.join(q.get_ref()))?,
        (None, None) => {
            return Err(err(
                0..0,
                "opinionqa",
                "expected `opinionqa = \"DIR\"` or `questionnaire = \"FILE\"`".into(),
            ))
        }
    };
    let attribute = raw.attribute.get_ref().trim().to_ascii_uppercase();
    let human = match &wave {
        Some(dir) => Some(load_counts(dir, &attribute, &questionnaire).map_err(|e| match e {
            SurveyError::UnknownAttribute { attribute, known } => err(
                raw.attribute.span(),
                "attribute",
                format!("unknown subgroup attribute `{attribute}`; known: {known}"),
            ),
            other => other,
        })?),
        None => None,
    };

    // Items: the listed ones, else every item with human data (else all).
    let keys: Vec<String> = match &raw.items {
        Some(list) => {
            let mut keys: Vec<String> = Vec::new();
            for k in list {
                if keys.contains(k.get_ref()) {
                    return Err(err(k.span(), "items", format!("duplicate item `{}`", k.get_ref())));
                }
                if questionnaire.item(k.get_ref()).is_none() {
                    return Err(err(
                        k.span(),
                        "items",
                        format!("unknown item `{}`; it is not in the questionnaire", k.get_ref()),
                    ));
                }
                if let Some(h) = &human {
                    if !h.counts.contains_key(k.get_ref()) {
                        return Err(err(
                            k.span(),
                            "items",
                            format!("item `{}` has no human data for {attribute}", k.get_ref()),
                        ));
                    }
                }
                keys.push(k.get_ref().clone());
            }
            keys
        }
        None => match &human {
            Some(h) => questionnaire
                .items
                .iter()
                .filter(|i| h.counts.contains_key(&i.key))
                .map(|i| i.key.clone())
                .collect(),
            None => questionnaire.items.iter().map(|i| i.key.clone()).collect(),
        },
    };
    questionnaire.items.retain(|i| keys.contains(&i.key));
    if questionnaire.items.is_empty() {
        return Err(err(0..0, "items", "no items to ask".into()));
    }

    let groups: Vec<String> = match (&raw.groups, &human) {
        (Some(list), h) => {
            let mut out: Vec<String> = Vec::new();
            for g in list {
                // A subgroup listed twice would be simulated and compared twice.
                if let Some(first) = out.iter().position(|o| o.trim() == g.get_ref().trim()) {
                    return Err(err(
                        g.span(),
                        "groups",
                        format!(
                            "duplicate subgroup `{}` (already given as groups[{first}])",
                            g.get_ref().trim()
                        ),
                    ));
                }
                if let Some(h) = h {
                    if !h.groups.contains(g.get_ref()) {
                        return Err(err(
                            g.span(),
                            "groups",
                            format!(
                                "unknown subgroup `{}` for {attribute}; groups in the data: {}",
                                g.get_ref(),
                                h.groups.join(", ")
                            ),
                        ));
                    }
                }
                out.push(g.get_ref().clone());
            }
            out
        }
        (None, Some(h)) => h.substantive_groups(),
        (None, None) => {
            return Err(err(
                raw.attribute.span(),
                "groups",
                "expected `groups = [...]` (there is no human data to take them from)".into(),
            ))
        }
    };
    if groups.is_empty() {
        return Err(err(raw.attribute.span(), "groups", "no subgroups".into()));
    }
    let per_group = match &raw.per_group {
        None => 10,
        Some(n) if (1..=100_000).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            return Err(err(
                n.span(),
                "per_group",
                format!("expected a count from 1 to 100000, got {}", n.get_ref()),
            ))
        }
    };
    let fields = SamplingFields {
        method: raw.method.as_ref(),
        k: raw.k.as_ref(),
        k_max: raw.k_max.as_ref(),
        selection: raw.selection.as_ref(),
        tau: raw.tau.as_ref(),
        min_prob: raw.min_prob.as_ref(),
        min_keep: raw.min_keep.as_ref(),
        candidates: raw.candidates.as_ref(),
        prompt_tau: None,
    };
    let sampling =
        read_sampling(&fields, Method::VsStandard, 0..0, &|span, field, message| err(span, field, message))?;
    let attribute_label =
        raw.attribute_label.clone().unwrap_or_else(|| default_label(&attribute).to_string());
    Ok(SurveySpec {
        name: raw.name,
        source: path.to_path_buf(),
        questionnaire,
        human,
        attribute,
        attribute_label,
        groups,
        per_group,
        sampling,
        model: raw.model,
        temperature: raw.temperature.map(|t| t as f32),
        max_tokens: raw.max_tokens,
        system: raw.system,
        use_schema: raw.use_schema.unwrap_or(true),
        inputs: match (&wave, &raw.questionnaire) {
            (Some(dir), _) => vec![("human data", dir.clone())],
            (None, Some(q)) => vec![("questionnaire", base.join(q.get_ref()))],
            (None, None) => Vec::new(),
        },
    })
}

/// How prompts name an OpinionQA attribute.
pub(crate) fn default_label(attribute: &str) -> &'static str {
    match attribute {
        "POLIDEOLOGY" => "political ideology",
        "POLPARTY" | "NONE" => "political party",
        "SEX" => "sex",
        "AGE" => "age group",
        "EDUCATION" => "education",
        _ => "group",
    }
}
