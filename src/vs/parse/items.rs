//! From a JSON value to candidate items: where the list is, each item's text, and its
//! probability as stated.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::candidates::is_number_like;
use super::extract::json_in_string;
use super::prose::split_item;
use super::{ParseError, Repair, LIST_KEYS, MAX_DEPTH, PROB_KEYS, REASONING_KEYS, TEXT_KEYS};

/// An item as the model gave it, before probability repair.
#[derive(Debug, Clone)]
pub(super) struct RawItem {
    pub(super) position: usize,
    pub(super) text: String,
    pub(super) stated: Stated,
    pub(super) repairs: Vec<Repair>,
}

/// A probability as stated.
#[derive(Debug, Clone)]
pub(super) enum Stated {
    Missing,
    Invalid(String),
    Value { v: f64, percent: bool },
}

impl Stated {
    pub(super) fn is_missing(&self) -> bool {
        matches!(self, Stated::Missing)
    }

    pub(super) fn is_value(&self) -> bool {
        matches!(self, Stated::Value { .. })
    }
}

/// Items read from one shape, with the repairs of the whole reply that reading implies.
#[derive(Debug, Clone)]
pub(super) struct ListFound {
    pub(super) items: Vec<RawItem>,
    pub(super) repairs: Vec<Repair>,
    pub(super) reasoning: Option<String>,
}

impl ListFound {
    /// `self` with `before` recorded ahead of its own repairs, and `reasoning` unless it
    /// has some.
    fn after(mut self, before: Vec<Repair>, reasoning: Option<String>) -> Self {
        self.repairs.splice(0..0, before);
        self.reasoning = self.reasoning.or(reasoning);
        self
    }
}

/// Looks `name` up case-insensitively; returns the key as written and its value.
pub(super) fn get_key<'a>(map: &'a Map<String, Value>, name: &str) -> Option<(&'a str, &'a Value)> {
    if let Some((k, v)) = map.get_key_value(name) {
        return Some((k.as_str(), v));
    }
    map.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(k, v)| (k.as_str(), v))
}

pub(super) fn reasoning_from(map: &Map<String, Value>) -> Option<String> {
    REASONING_KEYS.iter().find_map(|k| {
        get_key(map, k).and_then(|(_, v)| v.as_str()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    })
}

/// The candidate list in a JSON value; `src` is the text it came from, whose key order an
/// object's entries are read in (JSON objects are unordered once parsed).
pub(super) fn list_from_value(v: &Value, src: &str) -> Result<ListFound, ParseError> {
    list_at(v, src, 0)
}

fn list_at(v: &Value, src: &str, depth: usize) -> Result<ListFound, ParseError> {
    match v {
        Value::Array(items) => array_list(items, src, depth),
        Value::Object(map) => object_list(map, src, depth),
        Value::String(s) if depth < MAX_DEPTH => match json_in_string(s) {
            Some(inner) => Ok(list_at(&inner, s, depth + 1)?.after(vec![Repair::StringEncodedJson], None)),
            None => Err(ParseError::InvalidJson("expected an object or an array, found a string".into())),
        },
        other => {
            Err(ParseError::InvalidJson(format!("expected an object or an array, found {}", kind_of(other))))
        }
    }
}

fn array_list(items: &[Value], src: &str, depth: usize) -> Result<ListFound, ParseError> {
    if let [inner] = items {
        let wrapped = match inner {
            Value::Object(map) => {
                LIST_KEYS.iter().any(|k| get_key(map, k).is_some_and(|(_, v)| v.is_array()))
            }
            Value::Array(_) => depth < MAX_DEPTH && pair_of(inner).is_none(),
            _ => false,
        };
        if wrapped {
            return Ok(list_at(inner, src, depth + 1)?.after(vec![Repair::WrappedInArray], None));
        }
    }
    let (items, dropped) = raw_items(items, depth)?;
    let mut repairs = vec![Repair::BareArray];
    repairs.extend(dropped);
    Ok(ListFound { items, repairs, reasoning: None })
}

/// The list in an object, looked for in this order: an array (or JSON text, or keyed
/// items) under a list key; JSON text under a text key; numbered keys; the object itself as
/// one candidate; an array of objects or strings under any key; keyed items; a wrapper
/// object (or JSON text) under any key, followed down; texts mapped to probabilities.
fn object_list(map: &Map<String, Value>, src: &str, depth: usize) -> Result<ListFound, ParseError> {
    let reasoning = reasoning_from(map);
    let mut inner_err = None;
    for name in LIST_KEYS {
        let Some((key, value)) = get_key(map, name) else { continue };
        let mut before =
            if key == "responses" { Vec::new() } else { vec![Repair::ListKey { key: key.to_string() }] };
        match value {
            Value::Array(items) => {
                let (items, dropped) = raw_items(items, depth)?;
                let mut repairs = before;
                repairs.extend(dropped);
                return Ok(ListFound { items, repairs, reasoning });
            }
            Value::String(s) if depth < MAX_DEPTH => {
                if let Some(inner) = json_in_string(s) {
                    before.push(Repair::StringEncodedJson);
                    return Ok(list_at(&inner, s, depth + 1)?.after(before, reasoning));
                }
            }
            Value::Object(inner) if depth < MAX_DEPTH => {
                if let Some(list) = keyed_items(inner, src, depth + 1) {
                    return Ok(list.after(before, reasoning));
                }
                match object_list(inner, src, depth + 1) {
                    Ok(list) => {
                        return Ok(list.after(vec![Repair::WrappedObject { key: key.to_string() }], reasoning))
                    }
                    Err(e) => {
                        inner_err.get_or_insert(e);
                    }
                }
            }
            _ => {}
        }
    }
    if depth < MAX_DEPTH {
        // `{"response": "{\"responses\": [...]}"}`: the list encoded under a text key.
        for name in TEXT_KEYS {
            if let Some((key, Value::String(s))) = get_key(map, name) {
                if let Some(Ok(list)) = json_in_string(s).map(|inner| list_at(&inner, s, depth + 1)) {
                    let before =
                        vec![Repair::WrappedObject { key: key.to_string() }, Repair::StringEncodedJson];
                    return Ok(list.after(before, reasoning));
                }
            }
        }
    }
    if let Some(list) = numbered_keys(map) {
        return Ok(list.after(Vec::new(), reasoning));
    }
    if TEXT_KEYS.iter().any(|k| get_key(map, k).is_some_and(|(_, v)| v.is_string())) {
        let (items, _) = raw_items(std::slice::from_ref(&Value::Object(map.clone())), depth)?;
        return Ok(ListFound { items, repairs: vec![Repair::SingleObject], reasoning });
    }
    // Any other key holding a list of objects or strings.
    for (key, value) in map {
        if let Value::Array(items) = value {
            if items.iter().any(|i| i.is_object() || i.is_string()) {
                let mut repairs = vec![Repair::ListKey { key: key.clone() }];
                let (items, dropped) = raw_items(items, depth)?;
                repairs.extend(dropped);
                return Ok(ListFound { items, repairs, reasoning });
            }
        }
    }
    if let Some(list) = keyed_items(map, src, depth).filter(|l| !l.repairs.contains(&Repair::ProbabilityMap))
    {
        return Ok(list.after(Vec::new(), reasoning));
    }
    if depth < MAX_DEPTH {
        // A wrapper: `{"result": {"responses": [...]}}`, `{"data": "[...]"}`.
        for (key, value) in source_order(map, src) {
            let found = match value {
                Value::Object(inner) => object_list(inner, src, depth + 1)
                    .map(|l| (l, vec![Repair::WrappedObject { key: key.clone() }])),
                Value::String(s) => match json_in_string(s) {
                    Some(inner) => list_at(&inner, s, depth + 1).map(|l| {
                        (l, vec![Repair::WrappedObject { key: key.clone() }, Repair::StringEncodedJson])
                    }),
                    None => continue,
                },
                _ => continue,
            };
            match found {
                Ok((list, before)) => return Ok(list.after(before, reasoning)),
                Err(e) => {
                    inner_err.get_or_insert(e);
                }
            }
        }
    }
    if let Some(list) = keyed_items(map, src, depth) {
        return Ok(list.after(Vec::new(), reasoning));
    }
    match inner_err {
        Some(e) if !matches!(e, ParseError::NoList { .. }) => Err(e),
        _ => Err(ParseError::NoList { found_keys: map.keys().cloned().collect() }),
    }
}

/// Items that are an object's values rather than a list's: objects keyed by name or number
/// (`{"1": {"text": ..}, "2": ..}`), strings keyed by number, or texts mapped to their
/// probabilities (`{"Yes": 0.6, "No": 0.4}`), in the order the keys were written.
fn keyed_items(map: &Map<String, Value>, src: &str, depth: usize) -> Option<ListFound> {
    if map.is_empty() {
        return None;
    }
    let entries = source_order(map, src);
    if entries.iter().all(|(_, v)| v.is_object()) {
        let items: Vec<RawItem> = entries
            .iter()
            .enumerate()
            .filter_map(|(position, (_, v))| item_from_object(v.as_object()?, position, depth + 1))
            .collect();
        if items.len() == entries.len() {
            return Some(ListFound { items, repairs: vec![Repair::KeyedItems], reasoning: None });
        }
    }
    if entries.iter().all(|(k, v)| v.is_string() && k.trim().parse::<u32>().is_ok()) {
        let items = entries
            .iter()
            .enumerate()
            .map(|(position, (_, v))| RawItem {
                position,
                text: v.as_str().unwrap_or_default().to_string(),
                stated: Stated::Missing,
                repairs: vec![Repair::PlainStringItem],
            })
            .collect();
        return Some(ListFound { items, repairs: vec![Repair::KeyedItems], reasoning: None });
    }
    if entries.len() >= 2 && entries.iter().all(|(k, v)| !is_structural_key(k) && is_numeric_value(v)) {
        let items = entries
            .iter()
            .enumerate()
            .map(|(position, (k, v))| {
                let mut repairs = Vec::new();
                let stated = stated_of(v, &mut repairs);
                repairs.retain(|r| !matches!(r, Repair::ProbabilityString { .. }));
                RawItem { position, text: k.to_string(), stated, repairs }
            })
            .collect();
        return Some(ListFound { items, repairs: vec![Repair::ProbabilityMap], reasoning: None });
    }
    None
}

/// `{"response_1": "..", "probability_1": 0.4, "response_2": ..}`.
fn numbered_keys(map: &Map<String, Value>) -> Option<ListFound> {
    static KEY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^([A-Za-z]+(?:[ _][A-Za-z]+)?)[ _-]?#?(\d{1,3})$").expect("valid regex")
    });
    // Per number: the text and the probability.
    let mut groups: BTreeMap<u32, (Option<&str>, Option<&Value>)> = BTreeMap::new();
    for (key, value) in map {
        let Some(c) = KEY.captures(key.trim()) else { continue };
        let base = c[1].to_ascii_lowercase();
        let Ok(n) = c[2].parse::<u32>() else { continue };
        if TEXT_KEYS.contains(&base.as_str()) {
            if let Value::String(s) = value {
                groups.entry(n).or_default().0 = Some(s);
            }
        } else if PROB_KEYS.contains(&base.as_str()) || base.contains("prob") {
            groups.entry(n).or_default().1 = Some(value);
        }
    }
    let items: Vec<RawItem> = groups
        .into_values()
        .filter_map(|(text, prob)| Some((text?, prob)))
        .enumerate()
        .map(|(position, (text, prob))| {
            let mut repairs = Vec::new();
            let stated = prob.map_or(Stated::Missing, |v| stated_of(v, &mut repairs));
            RawItem { position, text: text.to_string(), stated, repairs }
        })
        .collect();
    (!items.is_empty()).then(|| ListFound { items, repairs: vec![Repair::NumberedKeys], reasoning: None })
}

/// A key that names a field rather than holding a candidate's text.
fn is_structural_key(k: &str) -> bool {
    let k = k.trim().to_ascii_lowercase();
    LIST_KEYS.contains(&k.as_str())
        || TEXT_KEYS.contains(&k.as_str())
        || PROB_KEYS.contains(&k.as_str())
        || REASONING_KEYS.contains(&k.as_str())
        || matches!(k.as_str(), "k" | "n" | "count" | "total" | "sum" | "id" | "index" | "rank" | "number")
}

fn is_numeric_value(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::String(s) => is_number_like(s),
        _ => false,
    }
}

/// An object's entries in the order their keys appear in `src` (those not found last).
fn source_order<'a>(map: &'a Map<String, Value>, src: &str) -> Vec<(&'a String, &'a Value)> {
    let mut entries: Vec<(usize, &String, &Value)> = map
        .iter()
        .map(|(k, v)| {
            let quoted = serde_json::to_string(k).unwrap_or_default();
            let pos = src.find(&quoted).or_else(|| src.find(k.as_str())).unwrap_or(usize::MAX);
            (pos, k, v)
        })
        .collect();
    entries.sort_by_key(|e| e.0);
    entries.into_iter().map(|(_, k, v)| (k, v)).collect()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Items with a text, and the repairs recording those dropped for having none.
fn raw_items(values: &[Value], depth: usize) -> Result<(Vec<RawItem>, Vec<Repair>), ParseError> {
    if values.is_empty() {
        return Err(ParseError::NoCandidates("the list is empty".into()));
    }
    // `[{"Sure.": 0.6}, {"No.": 0.4}]`: each item maps its text to its probability.
    let text_as_key = values.len() >= 2 && values.iter().all(|v| single_text_key(v).is_some());
    let mut items = Vec::new();
    let mut dropped = Vec::new();
    for (position, value) in values.iter().enumerate() {
        if text_as_key {
            if let Some((text, prob)) = single_text_key(value) {
                let mut repairs = vec![Repair::ProbabilityMap];
                let stated = stated_of(prob, &mut repairs);
                repairs.retain(|r| !matches!(r, Repair::ProbabilityString { .. }));
                items.push(RawItem { position, text: text.to_string(), stated, repairs });
                continue;
            }
        }
        match value {
            Value::String(s) => items.push(plain_string_item(s, position)),
            Value::Object(map) => match item_from_object(map, position, depth) {
                Some(item) => items.push(item),
                None => dropped.push(Repair::DroppedNoText { position }),
            },
            Value::Array(_) => match pair_of(value) {
                Some((text, prob)) => {
                    let mut repairs = vec![Repair::PairItem];
                    let stated = stated_of(prob, &mut repairs);
                    items.push(RawItem { position, text: text.to_string(), stated, repairs });
                }
                None => dropped.push(Repair::DroppedNoText { position }),
            },
            _ => dropped.push(Repair::DroppedNoText { position }),
        }
    }
    if items.is_empty() {
        return Err(ParseError::NoText);
    }
    Ok((items, dropped))
}

/// A plain string item; a probability written in it (`"Sure. (0.4)"`) is read off.
fn plain_string_item(s: &str, position: usize) -> RawItem {
    let mut repairs = vec![Repair::PlainStringItem];
    let (text, stated) = match split_item(s, &mut repairs) {
        (text, stated @ Stated::Value { .. }) => (text, stated),
        _ => {
            repairs.truncate(1);
            (s.to_string(), Stated::Missing)
        }
    };
    RawItem { position, text, stated, repairs }
}

/// `{"Sure.": 0.6}`: an object with one entry, a text mapped to a number.
fn single_text_key(v: &Value) -> Option<(&str, &Value)> {
    let Value::Object(map) = v else { return None };
    let (k, v) = map.iter().next().filter(|_| map.len() == 1)?;
    (!is_structural_key(k) && is_numeric_value(v) && !k.trim().is_empty()).then_some((k.as_str(), v))
}

/// `["Sure.", 0.6]`: a text and its probability.
fn pair_of(v: &Value) -> Option<(&str, &Value)> {
    match v.as_array()?.as_slice() {
        [Value::String(text), prob] if is_numeric_value(prob) => Some((text, prob)),
        _ => None,
    }
}

/// A candidate object: its text (under `text`, another text key, or a key naming a text)
/// and its probability; one holding the candidate one level down
/// (`{"response_1": {"text": ..}}`) is followed.
fn item_from_object(map: &Map<String, Value>, position: usize, depth: usize) -> Option<RawItem> {
    let mut repairs = Vec::new();
    // The object the text was found in, when it was nested: its probability may be there.
    let mut holder = None;
    let text = match text_field(map, &mut repairs) {
        Some(text) => text,
        None => {
            if depth < MAX_DEPTH && map.len() == 1 {
                if let Some((key, Value::Object(inner))) = map.iter().next() {
                    let mut item = item_from_object(inner, position, depth + 1)?;
                    item.repairs.insert(0, Repair::WrappedObject { key: key.clone() });
                    return Some(item);
                }
            }
            // `{"text": {"content": "Sure"}, ...}`: the text one or more levels down.
            let (text, path, inner) = TEXT_KEYS.iter().find_map(|name| {
                let (key, v) = get_key(map, name)?;
                let (text, below, inner) = nested_text(v, depth + 1)?;
                Some((text, format!("{key}{below}"), inner.or(v.as_object())))
            })?;
            repairs.push(Repair::NestedValue { path });
            holder = inner;
            text
        }
    };
    let prob = probability_field(map).or_else(|| holder.and_then(probability_field));
    let stated = match prob {
        None => Stated::Missing,
        Some((key, v)) => {
            if key != "probability" {
                repairs.push(Repair::ProbabilityKey { key: key.to_string() });
            }
            match nested_number(v, 0) {
                Some((below, n)) => {
                    repairs.push(Repair::NestedValue { path: format!("{key}{below}") });
                    stated_of(n, &mut repairs)
                }
                None => stated_of(v, &mut repairs),
            }
        }
    };
    Some(RawItem { position, text, stated, repairs })
}

/// A candidate's probability: under a probability key, else under a key that names one.
fn probability_field(map: &Map<String, Value>) -> Option<(&str, &Value)> {
    PROB_KEYS.iter().find_map(|name| get_key(map, name)).or_else(|| {
        map.iter().map(|(k, v)| (k.as_str(), v)).find(|(k, _)| {
            let k = k.to_ascii_lowercase();
            ["prob", "likel", "confid", "percent", "chance"].iter().any(|p| k.contains(p))
        })
    })
}

/// Keys under which a nested object holds its text, besides the text keys.
const VALUE_KEYS: [&str; 5] = ["value", "body", "string", "words", "en"];

/// A nested text, the path below the value it was found in, and the innermost object
/// that held it.
type NestedText<'a> = (String, String, Option<&'a Map<String, Value>>);

/// A text held inside a value rather than as one (`{"content": "Sure"}`, `["Sure"]`,
/// `{"value": {"text": "Sure"}}`): the text, the path below the value (`.content`, `[0]`),
/// and the innermost object that held it.
fn nested_text(v: &Value, depth: usize) -> Option<NestedText<'_>> {
    if depth > MAX_DEPTH {
        return None;
    }
    match v {
        Value::Object(map) => {
            for name in TEXT_KEYS.iter().chain(VALUE_KEYS.iter()) {
                let Some((key, inner)) = get_key(map, name) else { continue };
                if let Value::String(s) = inner {
                    if !s.trim().is_empty() {
                        return Some((s.clone(), format!(".{key}"), Some(map)));
                    }
                }
                if let Some((text, below, holder)) = nested_text(inner, depth + 1) {
                    return Some((text, format!(".{key}{below}"), holder.or(Some(map))));
                }
            }
            // An object with one string in it, besides fields that are not the text.
            let mut strings = map.iter().filter(|(k, v)| {
                let k = k.trim().to_ascii_lowercase();
                v.is_string()
                    && !PROB_KEYS.contains(&k.as_str())
                    && !REASONING_KEYS.contains(&k.as_str())
                    && !["type", "style", "tone", "id", "role", "format", "lang", "language"]
                        .contains(&k.as_str())
            });
            match (strings.next(), strings.next()) {
                (Some((key, Value::String(s))), None) if !s.trim().is_empty() => {
                    Some((s.clone(), format!(".{key}"), Some(map)))
                }
                _ => None,
            }
        }
        Value::Array(items) => {
            if let [only] = items.as_slice() {
                if let Value::String(s) = only {
                    return (!s.trim().is_empty()).then(|| (s.clone(), "[0]".to_string(), None));
                }
                let (text, below, holder) = nested_text(only, depth + 1)?;
                return Some((text, format!("[0]{below}"), holder));
            }
            // Sentences given one by one (`["Sure.", "I can give $1."]`), or content parts
            // (`[{"type": "text", "text": "Sure."}, ...]`).
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Some(s.clone()),
                    other => nested_text(other, depth + 1).map(|(text, _, _)| text),
                })
                .collect::<Option<_>>()?;
            let text = parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ");
            (!text.is_empty()).then(|| (text, "[..]".to_string(), None))
        }
        _ => None,
    }
}

/// A probability held inside an object rather than as a number (`{"value": 0.4}`): the path
/// below the key and the value.
fn nested_number(v: &Value, depth: usize) -> Option<(String, &Value)> {
    let Value::Object(map) = v else { return None };
    if depth >= MAX_DEPTH {
        return None;
    }
    for name in ["value"].iter().chain(PROB_KEYS.iter()) {
        let Some((key, inner)) = get_key(map, name) else { continue };
        if is_numeric_value(inner) {
            return Some((format!(".{key}"), inner));
        }
        if let Some((below, n)) = nested_number(inner, depth + 1) {
            return Some((format!(".{key}{below}"), n));
        }
    }
    let mut numbers = map.iter().filter(|(_, v)| is_numeric_value(v));
    match (numbers.next(), numbers.next()) {
        (Some((key, n)), None) => Some((format!(".{key}"), n)),
        _ => None,
    }
}

/// A candidate's text: under a text key, else under a key that names a text
/// (`response_text`, `reply_content`).
fn text_field(map: &Map<String, Value>, repairs: &mut Vec<Repair>) -> Option<String> {
    let named = TEXT_KEYS.iter().find_map(|name| get_key(map, name).filter(|(_, v)| text_value(v).is_some()));
    let (key, v) = named.or_else(|| {
        map.iter().map(|(k, v)| (k.as_str(), v)).find(|(k, v)| {
            let k = k.to_ascii_lowercase();
            v.is_string()
                && ["text", "response", "reply", "content", "utterance", "message"]
                    .iter()
                    .any(|t| k.contains(t))
                && !["prob", "reason", "explan", "rational", "type", "style", "tone", "id"]
                    .iter()
                    .any(|p| k.contains(p))
        })
    })?;
    let (text, converted) = text_value(v)?;
    if key != "text" {
        repairs.push(Repair::TextKey { key: key.to_string() });
    }
    if converted {
        repairs.push(Repair::TextNotString);
    }
    Some(text)
}

/// A text field's value as text, and whether it had to be converted from a number or a
/// boolean.
fn text_value(v: &Value) -> Option<(String, bool)> {
    match v {
        Value::String(s) => Some((s.clone(), false)),
        Value::Number(n) => Some((n.to_string(), true)),
        Value::Bool(b) => Some((b.to_string(), true)),
        _ => None,
    }
}

fn stated_of(v: &Value, repairs: &mut Vec<Repair>) -> Stated {
    match v {
        Value::Null => Stated::Missing,
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => Stated::Value { v: f, percent: false },
            _ => Stated::Invalid(n.to_string()),
        },
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Stated::Missing;
            }
            repairs.push(Repair::ProbabilityString { value: s.clone() });
            match stated_of_str(t) {
                // `"0.6 (likely)"`, `"~0.4"`, `"about 40 percent"`: the number it starts with.
                Stated::Invalid(_) => match super::prose::number_stated(t) {
                    stated @ Stated::Value { .. } => stated,
                    _ => Stated::Invalid(t.to_string()),
                },
                stated => stated,
            }
        }
        other => Stated::Invalid(other.to_string()),
    }
}

/// `"0.7"`, `"70%"`, `"70 %"`; anything else is invalid.
pub(super) fn stated_of_str(t: &str) -> Stated {
    let (num, percent) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (t, false),
    };
    match num.parse::<f64>() {
        Ok(f) if f.is_finite() => Stated::Value { v: f, percent },
        _ => Stated::Invalid(t.to_string()),
    }
}
