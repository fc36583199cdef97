//! PersuasionForGood as ConvoKit distributes it (`persuasionforgood-corpus`), read into the
//! same [`PfgDataset`] as the original CSV release, so that either can feed populations and
//! human references.
//!
//! Fields relied on (everything else is ignored):
//! - `conversations.json`: `{id: {"meta": {...}}}` (or `{id: {...}}`); per conversation
//!   `user_er` / `user_ee` (persuader and persuadee ids; `persuader_id` / `persuadee_id`
//!   are accepted too) are required; `dialogue_id` (default: the conversation id),
//!   `donation_er` and `donation_ee` (dollars) are optional.
//! - `speakers.json` (older corpora: `users.json`): `{id: {"meta": {...}}}` (or `{id: {...}}`)
//!   with the survey answers under the names of `full_info.csv`, with or without its `.x`
//!   suffix (`age`, `sex`, `extrovert`, `self_direction`, ...); each is optional. Every
//!   persuader and persuadee must have an entry.
//! - `utterances.jsonl`: one object a line with `conversation_id` (older: `root`), `speaker`
//!   (older: `user`) and `text`; `meta.role` (0 persuader, 1 persuadee) when present,
//!   otherwise the role follows from the speaker.
//!
//! Python's `json` writes missing values as bare `NaN`, which is not JSON; such tokens (and
//! `Infinity`) are read as null. Utterances keep file order; turns are numbered as in
//! `full_dialog.csv`: a new turn starts when the persuader speaks after the persuadee.
//! A participant's `row` is its 1-based position in the dataset (conversations sorted by
//! dialogue id, persuader before persuadee, the order of `full_info.csv`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::persuasionforgood::{
    BigFive, MoralFoundations, PfgDataset, PfgParticipant, PfgRole, PfgUtterance, SchwartzValues,
    FULL_DIALOG, FULL_INFO,
};
use super::DataError;
use crate::persona::is_missing_value;

/// The name ConvoKit publishes the corpus under (and the directory it unpacks to).
pub(crate) const CORPUS_NAME: &str = "persuasionforgood-corpus";
/// One utterance a line.
pub const UTTERANCES: &str = "utterances.jsonl";
/// Speakers and their survey answers.
pub const SPEAKERS: &str = "speakers.json";
/// The name of [`SPEAKERS`] in corpora written by ConvoKit before 2.3.
pub(crate) const LEGACY_SPEAKERS: &str = "users.json";
/// Conversations, with the donations and who played which role.
pub const CONVERSATIONS: &str = "conversations.json";

/// True if `dir` looks like a ConvoKit corpus (it has [`UTTERANCES`]).
pub(crate) fn is_convokit_dir(dir: &Path) -> bool {
    dir.join(UTTERANCES).is_file()
}

impl PfgDataset {
    /// Reads a ConvoKit `persuasionforgood-corpus` directory (see the module docs).
    pub fn load_convokit(dir: impl AsRef<Path>) -> Result<PfgDataset, DataError> {
        read_convokit(dir.as_ref())
    }

    /// Reads either layout: a directory holding `full_info.csv` and `full_dialog.csv`, a
    /// ConvoKit corpus directory, a directory holding an unpacked `persuasionforgood-corpus`,
    /// or one of the files `full_info.csv` / `utterances.jsonl` itself.
    pub fn load_any(path: impl AsRef<Path>) -> Result<PfgDataset, DataError> {
        let path = path.as_ref();
        if path.is_file() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let parent = path.parent().unwrap_or(Path::new("."));
            return match name {
                FULL_INFO | FULL_DIALOG => PfgDataset::load(parent),
                UTTERANCES | SPEAKERS | CONVERSATIONS => read_convokit(parent),
                _ => Err(DataError::UnknownFormat { path: path.to_path_buf() }),
            };
        }
        if !path.is_dir() {
            return Err(DataError::Missing { path: path.to_path_buf() });
        }
        if path.join(FULL_INFO).is_file() {
            PfgDataset::load(path)
        } else if is_convokit_dir(path) {
            read_convokit(path)
        } else if is_convokit_dir(&path.join(CORPUS_NAME)) {
            read_convokit(&path.join(CORPUS_NAME))
        } else {
            Err(DataError::UnknownFormat { path: path.to_path_buf() })
        }
    }
}

/// One conversation's metadata.
struct Conversation {
    dialogue_id: String,
    persuader: String,
    persuadee: String,
    donation_er: Option<f64>,
    donation_ee: Option<f64>,
}

/// Reads a ConvoKit corpus directory into a [`PfgDataset`].
pub(crate) fn read_convokit(dir: &Path) -> Result<PfgDataset, DataError> {
    let conv_path = dir.join(CONVERSATIONS);
    let mut conversations = read_conversations(&conv_path)?;
    conversations.sort_by(|a, b| a.1.dialogue_id.cmp(&b.1.dialogue_id).then(a.0.cmp(&b.0)));

    let mut speakers_path = dir.join(SPEAKERS);
    if !speakers_path.is_file() && dir.join(LEGACY_SPEAKERS).is_file() {
        speakers_path = dir.join(LEGACY_SPEAKERS);
    }
    let speakers = read_object_file(&speakers_path)?;

    let by_id: HashMap<&str, &Conversation> = conversations.iter().map(|(id, c)| (id.as_str(), c)).collect();
    let dialogues = read_utterances(&dir.join(UTTERANCES), &by_id)?;

    let mut participants = Vec::with_capacity(conversations.len() * 2);
    for (conv_id, c) in &conversations {
        let turns = dialogues
            .get(&c.dialogue_id)
            .and_then(|u| u.iter().map(|u| u.turn).max())
            .and_then(|t| t.checked_add(1));
        for (role, user, donation) in [
            (PfgRole::Persuader, &c.persuader, c.donation_er),
            (PfgRole::Persuadee, &c.persuadee, c.donation_ee),
        ] {
            let item = format!("speaker `{user}` ({role} of conversation `{conv_id}`)");
            let entry = speakers.get(user).ok_or_else(|| DataError::MissingField {
                path: speakers_path.clone(),
                item: format!("the {role} of conversation `{conv_id}` in {CONVERSATIONS}"),
                field: user.clone(),
            })?;
            let fields = Fields { path: &speakers_path, item, meta: meta_of(entry) };
            participants.push(fields.participant(
                participants.len() as u64 + 1,
                &c.dialogue_id,
                user,
                role,
                donation,
                turns,
            )?);
        }
    }
    Ok(PfgDataset { participants, dialogues })
}

fn read_conversations(path: &Path) -> Result<Vec<(String, Conversation)>, DataError> {
    let object = read_object_file(path)?;
    let mut out = Vec::with_capacity(object.len());
    for (id, entry) in &object {
        let f = Fields { path, item: format!("conversation `{id}`"), meta: meta_of(entry) };
        let persuader = f.required_id(&["user_er", "persuader_id"])?;
        let persuadee = f.required_id(&["user_ee", "persuadee_id"])?;
        let dialogue_id = f.opt_text(&["dialogue_id"])?.unwrap_or_else(|| id.clone());
        out.push((
            id.clone(),
            Conversation {
                dialogue_id,
                persuader,
                persuadee,
                donation_er: f.opt_f64(&["donation_er"])?,
                donation_ee: f.opt_f64(&["donation_ee"])?,
            },
        ));
    }
    Ok(out)
}

fn read_utterances(
    path: &Path,
    conversations: &HashMap<&str, &Conversation>,
) -> Result<BTreeMap<String, Vec<PfgUtterance>>, DataError> {
    let text = read_text(path)?;
    let mut out: BTreeMap<String, Vec<PfgUtterance>> = BTreeMap::new();
    // Per dialogue: the current turn and the role of the last utterance.
    let mut state: HashMap<String, (u32, PfgRole)> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&null_non_finite(line))
            .map_err(|source| DataError::Json { path: path.to_path_buf(), line: line_no, source })?;
        let Value::Object(record) = &value else {
            return Err(DataError::JsonField {
                path: path.to_path_buf(),
                item: format!("line {line_no}"),
                field: "(the line)".into(),
                value: kind(&value).into(),
                expected: "a JSON object (one utterance)".into(),
            });
        };
        let id = record.get("id").map(scalar_text).unwrap_or_default();
        let f = Fields { path, item: format!("line {line_no} (utterance `{id}`)"), meta: record };
        let conv_id = f.required_id(&["conversation_id", "root"])?;
        let speaker = f.required_id(&["speaker", "user"])?;
        let text = match f.get(&["text"]) {
            None => return Err(f.missing("text")),
            Some((_, Value::Null)) => String::new(),
            Some((_, Value::String(s))) => s.clone(),
            Some((key, other)) => return Err(f.bad(&key, other, "a string")),
        };
        let conv = conversations.get(conv_id.as_str()).ok_or_else(|| DataError::JsonField {
            path: path.to_path_buf(),
            item: f.item.clone(),
            field: "conversation_id".into(),
            value: format!("{conv_id:?}"),
            expected: format!("a conversation listed in {CONVERSATIONS}"),
        })?;
        let meta = record.get("meta").and_then(Value::as_object);
        let role = match meta.and_then(|m| m.get("role")).filter(|v| !v.is_null()) {
            Some(v) => role_of(v).ok_or_else(|| f.bad("meta.role", v, "0 (persuader) or 1 (persuadee)"))?,
            None if speaker == conv.persuader => PfgRole::Persuader,
            None if speaker == conv.persuadee => PfgRole::Persuadee,
            None => {
                return Err(DataError::MissingField {
                    path: path.to_path_buf(),
                    item: f.item.clone(),
                    field: "meta.role (and the speaker is neither user_er nor user_ee)".into(),
                })
            }
        };
        let turn = match state.get(&conv.dialogue_id) {
            None => 0,
            Some(&(t, PfgRole::Persuadee)) if role == PfgRole::Persuader => t.saturating_add(1),
            Some(&(t, _)) => t,
        };
        state.insert(conv.dialogue_id.clone(), (turn, role));
        out.entry(conv.dialogue_id.clone()).or_default().push(PfgUtterance { turn, role, text });
    }
    Ok(out)
}

/// A JSON object (a corpus record or its `meta`) and what to name it in errors.
struct Fields<'a> {
    path: &'a Path,
    item: String,
    meta: &'a Map<String, Value>,
}

impl Fields<'_> {
    /// The first of `keys` present and not null, also tried with and without `.x`.
    fn get(&self, keys: &[&str]) -> Option<(String, &Value)> {
        keys.iter()
            .flat_map(|k| {
                let alt = k.strip_suffix(".x").map_or_else(|| format!("{k}.x"), str::to_string);
                [k.to_string(), alt]
            })
            .find_map(|k| self.meta.get(&k).filter(|v| !v.is_null()).map(|v| (k, v)))
    }

    fn missing(&self, field: &str) -> DataError {
        DataError::MissingField {
            path: self.path.to_path_buf(),
            item: self.item.clone(),
            field: field.into(),
        }
    }

    fn bad(&self, field: &str, value: &Value, expected: &str) -> DataError {
        let mut shown = value.to_string();
        if shown.len() > 80 {
            let cut = (0..=77).rev().find(|&i| shown.is_char_boundary(i)).unwrap_or(0);
            shown.truncate(cut);
            shown.push_str("...");
        }
        DataError::JsonField {
            path: self.path.to_path_buf(),
            item: self.item.clone(),
            field: field.into(),
            value: shown,
            expected: expected.into(),
        }
    }

    /// An id: a non-empty string or a number.
    fn required_id(&self, keys: &[&str]) -> Result<String, DataError> {
        match self.get(keys) {
            None => Err(self.missing(&keys.join("` or `"))),
            Some((key, v)) => match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(self.bad(&key, other, "a non-empty string or a number")),
            },
        }
    }

    fn opt_text(&self, keys: &[&str]) -> Result<Option<String>, DataError> {
        match self.get(keys) {
            None => Ok(None),
            Some((_, Value::String(s))) => {
                let s = s.trim();
                Ok((!is_missing_value(s)).then(|| s.to_string()))
            }
            Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
            Some((_, Value::Bool(b))) => Ok(Some(b.to_string())),
            Some((key, other)) => Err(self.bad(&key, other, "a string, a number or null")),
        }
    }

    fn opt_f64(&self, keys: &[&str]) -> Result<Option<f64>, DataError> {
        let expected = "a number, or null / NA when missing";
        match self.get(keys) {
            None => Ok(None),
            Some((_, Value::Number(n))) => Ok(n.as_f64().filter(|v| v.is_finite())),
            Some((key, Value::String(s))) => {
                let s = s.trim();
                if is_missing_value(s) {
                    return Ok(None);
                }
                match s.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Some(v)),
                    _ => Err(self.bad(&key, &Value::String(s.to_string()), expected)),
                }
            }
            Some((key, other)) => Err(self.bad(&key, other, expected)),
        }
    }

    fn opt_whole(&self, key: &str, max: u32) -> Result<Option<u32>, DataError> {
        let Some(v) = self.opt_f64(&[key])? else { return Ok(None) };
        if v.fract() == 0.0 && v >= 0.0 && v <= f64::from(max) {
            Ok(Some(v as u32))
        } else {
            let (k, value) = self.get(&[key]).unwrap_or((key.to_string(), &Value::Null));
            Err(self.bad(&k, value, &format!("a whole number from 0 to {max}, or null when missing")))
        }
    }

    fn participant(
        &self,
        row: u64,
        dialogue_id: &str,
        user: &str,
        role: PfgRole,
        donation: Option<f64>,
        turns: Option<u32>,
    ) -> Result<PfgParticipant, DataError> {
        let score = |key: &str| self.opt_f64(&[key]);
        let text = |key: &str| self.opt_text(&[key]);
        Ok(PfgParticipant {
            row,
            dialogue_id: dialogue_id.to_string(),
            user_id: user.to_string(),
            role,
            donation,
            turns,
            big_five: BigFive {
                extraversion: score("extrovert")?,
                agreeableness: score("agreeable")?,
                conscientiousness: score("conscientious")?,
                neuroticism: score("neurotic")?,
                openness: score("open")?,
            },
            moral_foundations: MoralFoundations {
                care: score("care")?,
                fairness: score("fairness")?,
                loyalty: score("loyalty")?,
                authority: score("authority")?,
                purity: score("purity")?,
                freedom: score("freedom")?,
            },
            values: SchwartzValues {
                conformity: score("conform")?,
                tradition: score("tradition")?,
                benevolence: score("benevolence")?,
                universalism: score("universalism")?,
                self_direction: score("self_direction")?,
                stimulation: score("stimulation")?,
                hedonism: score("hedonism")?,
                achievement: score("achievement")?,
                power: score("power")?,
                security: score("security")?,
            },
            rational: score("rational")?,
            intuitive: score("intuitive")?,
            age: self.opt_whole("age", 150)?,
            sex: text("sex")?,
            race: text("race")?,
            education: text("edu")?,
            marital_status: text("marital")?,
            employment: text("employment")?,
            income_code: self.opt_whole("income", u32::MAX)?,
            religion: text("religion")?,
            ideology: text("ideology")?,
        })
    }
}

/// A record's metadata: its `meta` object, or the record itself in older corpora.
fn meta_of(entry: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match entry {
        Value::Object(o) => match o.get("meta") {
            Some(Value::Object(meta)) => meta,
            _ => o,
        },
        _ => EMPTY.get_or_init(Map::new),
    }
}

fn role_of(v: &Value) -> Option<PfgRole> {
    let code = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "persuader" | "er" => return Some(PfgRole::Persuader),
            "persuadee" | "ee" => return Some(PfgRole::Persuadee),
            other => other.parse().ok()?,
        },
        _ => return None,
    };
    if code == 0.0 {
        Some(PfgRole::Persuader)
    } else if code == 1.0 {
        Some(PfgRole::Persuadee)
    } else {
        None
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn read_text(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
}

/// Reads a whole-file JSON object keyed by id.
fn read_object_file(path: &Path) -> Result<Map<String, Value>, DataError> {
    let text = read_text(path)?;
    let value: Value = serde_json::from_str(&null_non_finite(&text)).map_err(|source| DataError::Json {
        path: PathBuf::from(path),
        line: source.line() as u64,
        source,
    })?;
    match value {
        Value::Object(o) => Ok(o),
        other => Err(DataError::JsonField {
            path: path.to_path_buf(),
            item: "the file".into(),
            field: "(top level)".into(),
            value: kind(&other).into(),
            expected: "a JSON object keyed by id".into(),
        }),
    }
}

/// Replaces the bare `NaN`, `Infinity` and `-Infinity` tokens that Python's `json` writes
/// (outside strings) with `null`, so that the text parses as JSON.
pub(crate) fn null_non_finite(text: &str) -> Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["NaN", "-Infinity", "Infinity"].into_iter().find(|t| rest.starts_with(t))
        {
            out.push_str("null");
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_tokens_become_null_outside_strings_only() {
        let text = r#"{"a": NaN, "b": -Infinity, "c": "NaN \" Infinity", "d": [Infinity]}"#;
        let fixed = null_non_finite(text);
        assert_eq!(fixed, r#"{"a": null, "b": null, "c": "NaN \" Infinity", "d": [null]}"#);
        assert!(serde_json::from_str::<Value>(&fixed).is_ok());
        assert!(matches!(null_non_finite("{\"x\": 1}"), Cow::Borrowed(_)));
    }

    #[test]
    fn roles_parse_from_codes_and_names() {
        assert_eq!(role_of(&serde_json::json!(0)), Some(PfgRole::Persuader));
        assert_eq!(role_of(&serde_json::json!(1.0)), Some(PfgRole::Persuadee));
        assert_eq!(role_of(&serde_json::json!("1")), Some(PfgRole::Persuadee));
        assert_eq!(role_of(&serde_json::json!(2)), None);
        assert_eq!(role_of(&serde_json::json!([0])), None);
    }
}
