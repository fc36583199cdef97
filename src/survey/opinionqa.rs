//! OpinionQA human response aggregates (Pew American Trends Panel waves, as published with
//! "Whose Opinions Do Language Models Reflect?").
//!
//! `info.csv` gives the items; `{ATTRIBUTE}_data.json` gives, per question and group, how
//! many respondents chose each answer. Quirks handled here:
//! - `MC_options` is broken for answers containing commas, so the answer list comes from
//!   info.csv's `references` (a Python list literal, read with [`super::pyliteral`]);
//! - answers nobody in a group chose are missing from the group's dict: counted as 0;
//! - counts are stored as floats; they are unweighted respondent counts;
//! - `NONE_data.json` holds the party groups, not an overall group: the overall
//!   distribution is the sum over any file's groups;
//! - `Refused` is both an answer option (marked as the refusal) and, in the party and
//!   ideology files, a group of respondents who declined to say; AGE has an empty `nan`
//!   group. Both are left out of the default group list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::pyliteral::{self, PyValue};
use super::questionnaire::{Item, Questionnaire};
use super::SurveyError;

/// Demographic attributes with a `{ATTRIBUTE}_data.json` file.
pub(crate) const ATTRIBUTES: [&str; 6] = ["POLIDEOLOGY", "POLPARTY", "SEX", "AGE", "EDUCATION", "NONE"];

/// Human answer counts per item and group, aligned with each item's options.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HumanCounts {
    /// The attribute that defines the groups, e.g. `POLIDEOLOGY`.
    pub attribute: String,
    /// Groups in the file, sorted as in the file (alphabetically).
    pub groups: Vec<String>,
    /// item key -> group -> count per option.
    pub counts: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
}

impl HumanCounts {
    /// Groups with respondents, without the "declined to say" groups (`Refused`, `nan`).
    pub fn substantive_groups(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| !matches!(g.as_str(), "Refused" | "nan"))
            .filter(|g| {
                self.counts.values().any(|by| by.get(*g).is_some_and(|c| c.iter().sum::<f64>() > 0.0))
            })
            .cloned()
            .collect()
    }

    /// Counts of `item` summed over all groups (the overall distribution).
    pub fn overall(&self, item: &str) -> Option<Vec<f64>> {
        let by = self.counts.get(item)?;
        let n = by.values().next()?.len();
        let mut out = vec![0.0; n];
        for c in by.values() {
            for (o, x) in out.iter_mut().zip(c) {
                *o += x;
            }
        }
        Some(out)
    }
}

/// Reads `info.csv` of a wave directory into a questionnaire.
pub fn load_info(dir: &Path) -> Result<Questionnaire, SurveyError> {
    let path = dir.join("info.csv");
    let mut reader = csv::Reader::from_path(&path).map_err(|e| SurveyError::csv(&path, e))?;
    let headers = reader.headers().map_err(|e| SurveyError::csv(&path, e))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| SurveyError::MissingColumn { file: path.clone(), column: name.to_string() })
    };
    let (key_c, q_c, ref_c, ord_c) =
        (col("key")?, col("question")?, col("references")?, col("option_ordinal")?);
    let mut items = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| SurveyError::csv(&path, e))?;
        // The record's own line (a quoted field may span several), else counted from the header.
        let line = record.position().map_or(row + 2, |p| p.line() as usize);
        let field = |c: usize| record.get(c).unwrap_or("").to_string();
        let bad = |column: &str, message: String| SurveyError::Invalid {
            file: path.clone(),
            line,
            field: column.to_string(),
            message,
        };
        let options: Vec<String> = match pyliteral::parse(&field(ref_c)) {
            Ok(PyValue::List(v)) => v
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("references", "expected a list of strings".into()))?,
            Ok(_) => return Err(bad("references", "expected a list of strings".into())),
            Err(e) => return Err(bad("references", e)),
        };
        if options.len() < 2 {
            return Err(bad("references", "an item needs at least two options".into()));
        }
        for (j, o) in options.iter().enumerate() {
            if options[..j].contains(o) {
                return Err(bad("references", format!("duplicate option `{o}`")));
            }
        }
        let key = field(key_c);
        if items.iter().any(|i: &Item| i.key == key) {
            return Err(bad("key", format!("duplicate item `{key}`")));
        }
        let refused = options.iter().position(|o| o == "Refused");
        let ordinal: Vec<f64> = match pyliteral::parse(&field(ord_c)) {
            Ok(PyValue::List(v)) => v
                .iter()
                .map(PyValue::as_f64)
                .collect::<Option<_>>()
                .ok_or_else(|| bad("option_ordinal", "expected a list of numbers".into()))?,
            Ok(_) => return Err(bad("option_ordinal", "expected a list of numbers".into())),
            Err(e) => return Err(bad("option_ordinal", e)),
        };
        if let Some(v) = ordinal.iter().find(|v| !v.is_finite()) {
            // A NaN would make the item silently nominal, dropping it from representativeness.
            return Err(bad("option_ordinal", format!("{v} is not a finite number")));
        }
        let substantive = options.len() - usize::from(refused.is_some());
        if ordinal.len() != substantive {
            return Err(bad(
                "option_ordinal",
                format!("{} values for {substantive} non-refusal options", ordinal.len()),
            ));
        }
        let mut item = Item { key, question: field(q_c), options, ordinal: Some(ordinal), refused };
        if !item.is_ordinal() {
            // Nominal answers (e.g. all ordinal values equal): no ordinal comparison.
            item.ordinal = None;
        }
        items.push(item);
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    Ok(Questionnaire { name, items })
}

/// Reads `{attribute}_data.json` of a wave directory, aligned with `questionnaire`.
pub fn load_counts(
    dir: &Path,
    attribute: &str,
    questionnaire: &Questionnaire,
) -> Result<HumanCounts, SurveyError> {
    let attribute = attribute.trim().to_ascii_uppercase();
    let path: PathBuf = dir.join(format!("{attribute}_data.json"));
    if !ATTRIBUTES.contains(&attribute.as_str()) && !path.exists() {
        return Err(SurveyError::UnknownAttribute { attribute, known: ATTRIBUTES.join(", ") });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| SurveyError::io(&path, e))?;
    let root: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| SurveyError::Json { file: path.clone(), message: e.to_string() })?;
    let obj = root.as_object().ok_or_else(|| SurveyError::Json {
        file: path.clone(),
        message: "expected an object keyed by question".into(),
    })?;
    let mut counts = BTreeMap::new();
    let mut groups: Vec<String> = Vec::new();
    for (key, q) in obj {
        let item = questionnaire.item(key).ok_or_else(|| SurveyError::MissingQuestion {
            file: path.clone(),
            key: key.clone(),
            info: dir.join("info.csv"),
        })?;
        let qobj = q.as_object().ok_or_else(|| SurveyError::Json {
            file: path.clone(),
            message: format!("question `{key}`: expected an object"),
        })?;
        let mut by_group = BTreeMap::new();
        for (group, answers) in qobj {
            if group == "MC_options" || group == "question_text" {
                continue;
            }
            if !groups.contains(group) {
                groups.push(group.clone());
            }
            let mut c = vec![0.0; item.options.len()];
            for (answer, n) in answers.as_object().into_iter().flatten() {
                let i = item.options.iter().position(|o| o == answer).ok_or_else(|| SurveyError::Json {
                    file: path.clone(),
                    message: format!("question `{key}`, group `{group}`: answer `{answer}` is not among the item's options"),
                })?;
                c[i] = n.as_f64().filter(|x| x.is_finite() && *x >= 0.0).ok_or_else(|| SurveyError::Json {
                    file: path.clone(),
                    message: format!("question `{key}`, group `{group}`: count for `{answer}` is not a non-negative number"),
                })?;
            }
            by_group.insert(group.clone(), c);
        }
        counts.insert(key.clone(), by_group);
    }
    groups.sort();
    Ok(HumanCounts { attribute, groups, counts })
}
