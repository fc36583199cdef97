//! Finding JSON in a reply: setting aside a `<think>` block, code fences, JSON encoded in
//! strings, and balanced `{...}`/`[...]` spans inside prose.

use serde_json::Value;

use super::lenient::lenient_parse;
use super::{Repair, MAX_DEPTH, MAX_SCAN_STARTS};

pub(super) struct Preprocessed {
    pub(super) body: String,
    pub(super) thinking: Option<String>,
    pub(super) repairs: Vec<Repair>,
}

/// Sets aside a `<think>` block that reasoning models put before their answer.
pub(super) fn preprocess(raw: &str) -> Preprocessed {
    let raw = raw.trim_start_matches('\u{feff}');
    if let Some(end) = raw.rfind("</think>") {
        let before = &raw[..end];
        let start = before.find("<think>").map(|i| i + "<think>".len()).unwrap_or(0);
        let thinking = before.get(start..).unwrap_or("").trim().to_string();
        let body = raw[end + "</think>".len()..].to_string();
        return Preprocessed {
            body,
            thinking: Some(thinking).filter(|t| !t.is_empty()),
            repairs: vec![Repair::ThinkBlock],
        };
    }
    Preprocessed { body: raw.to_string(), thinking: None, repairs: Vec::new() }
}

/// A JSON value found in a reply, with the repairs needed to read it.
pub(super) struct Found {
    pub(super) value: Value,
    pub(super) repairs: Vec<Repair>,
    /// Found inside a bracketed span that did not parse: a lone candidate object here is
    /// more likely one item of a broken list than the answer.
    pub(super) nested: bool,
    /// Values from one scan of one text share a group: candidate objects one after another
    /// are read as one list only within a group.
    pub(super) group: usize,
    /// Only whitespace or commas lie between this value and the one found before it (or
    /// the start of the text).
    pub(super) lead_blank: bool,
    /// Only whitespace follows this value.
    pub(super) trail_blank: bool,
}

impl Found {
    /// The whole of a text, which is one JSON object or array: the first value of `group`.
    fn whole(value: Value, group: usize) -> Self {
        Self { value, repairs: Vec::new(), nested: false, group, lead_blank: true, trail_blank: true }
    }

    /// Found inside other text rather than being the whole of it.
    pub(super) fn embedded(&self) -> bool {
        self.repairs.contains(&Repair::SurroundingText)
    }
}

/// The whole body as JSON (strictly or after cheap repairs), or the content of a body that
/// is exactly one code fence.
pub(super) fn whole_json(body: &str) -> Option<(Value, Vec<Repair>)> {
    let t = body.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return Some((v, Vec::new()));
    }
    if t.starts_with('{') || t.starts_with('[') {
        if let Some((v, r)) = lenient_parse(t) {
            return Some((v, r));
        }
    }
    let fences = code_fences(t);
    if fences.len() == 1 {
        let (start, end, inner) = fences[0];
        if start == 0 && end == t.len() {
            if let Ok(v) = serde_json::from_str::<Value>(inner.trim()) {
                return Some((v, vec![Repair::CodeFence]));
            }
        }
    }
    None
}

/// The first of [`json_values`] when the whole reply is one JSON object or array, found
/// without scanning the reply for the values inside it (most replies are exactly that).
pub(super) fn whole_json_value(body: &str) -> Option<Found> {
    match serde_json::from_str::<Value>(body.trim()) {
        Ok(value) if value.is_object() || value.is_array() => Some(Found::whole(value, 1)),
        _ => None,
    }
}

/// Every JSON value the reply plausibly contains, most likely first: the whole reply (or
/// the JSON a whole-reply string encodes), the contents of code fences, then balanced
/// `{...}`/`[...]` spans in the text.
pub(super) fn json_values(body: &str) -> Vec<Found> {
    let mut groups = 0;
    json_values_in(body, 0, &mut groups)
}

fn json_values_in(body: &str, depth: usize, groups: &mut usize) -> Vec<Found> {
    let mut out = Vec::new();
    let t = body.trim();
    let mut whole = false;
    match serde_json::from_str::<Value>(t) {
        Ok(v) if v.is_object() || v.is_array() => {
            *groups += 1;
            out.push(Found::whole(v, *groups));
            whole = true;
        }
        Ok(Value::String(s)) if depth < MAX_DEPTH => return encoded_values(&s, depth, groups),
        _ => {}
    }
    if !whole && depth < MAX_DEPTH && t.contains("\\\"") {
        // `{\"responses\": ...}`: a JSON string's content without its quotes.
        if let Some(s) = unescape_json_text(t) {
            let inner = encoded_values(&s, depth, groups);
            if !inner.is_empty() {
                return inner;
            }
        }
    }
    if depth < MAX_DEPTH {
        for (_, _, inner) in code_fences(t) {
            for mut found in json_values_in(inner, depth + 1, groups) {
                found.repairs.insert(0, Repair::CodeFence);
                out.push(found);
            }
        }
    }
    *groups += 1;
    for found in scan_json(t, *groups) {
        if whole && !found.embedded() {
            // The whole reply again; already listed.
            continue;
        }
        out.push(found);
    }
    out
}

/// The values in a decoded JSON string, marked as such.
fn encoded_values(s: &str, depth: usize, groups: &mut usize) -> Vec<Found> {
    let mut out = json_values_in(s, depth + 1, groups);
    for found in &mut out {
        found.repairs.insert(0, Repair::StringEncodedJson);
    }
    out
}

/// Decodes text that is a JSON string's content without its quotes (`{\"a\": 1}`); `None`
/// when it is not (a raw quote, an invalid escape) or decoding changes nothing.
pub(super) fn unescape_json_text(t: &str) -> Option<String> {
    if !t.contains(['{', '[']) {
        return None;
    }
    let escaped = t.replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t");
    serde_json::from_str::<String>(&format!("\"{escaped}\"")).ok().filter(|s| s != t)
}

/// JSON held in a string field (`"[{\"text\": ...}]"`), when the string is an object or an
/// array.
pub(super) fn json_in_string(s: &str) -> Option<Value> {
    let t = s.trim();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<Value>(t)
        .ok()
        .or_else(|| lenient_parse(t).map(|(v, _)| v))
        .filter(|v| v.is_object() || v.is_array())
}

/// Code fences as (start, end, inner content without the language tag line).
pub(super) fn code_fences(s: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rel) = s[pos..].find("```") {
        let open = pos + rel;
        let after_ticks = open + 3;
        // The language tag runs to the end of the opening line.
        let content_start = match s[after_ticks..].find('\n') {
            Some(nl) => after_ticks + nl + 1,
            None => break,
        };
        let Some(close_rel) = s[content_start..].find("```") else {
            // Unclosed fence (cut-off reply): everything after the opening line.
            out.push((open, s.len(), &s[content_start..]));
            break;
        };
        let close = content_start + close_rel;
        out.push((open, close + 3, &s[content_start..close]));
        pos = close + 3;
    }
    out
}

/// Balanced JSON spans in `s`, each parsed strictly or after cheap repairs.
fn scan_json(s: &str, group: usize) -> Vec<Found> {
    let bytes = s.as_bytes();
    let trimmed = s.trim();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut starts = 0;
    let mut failed_until = 0;
    let mut prev_end = 0;
    while pos < bytes.len() && starts < MAX_SCAN_STARTS {
        let Some(rel) = bytes[pos..].iter().position(|&b| b == b'{' || b == b'[') else { break };
        let start = pos + rel;
        starts += 1;
        let (end, closed) = match balanced_end(bytes, start) {
            Some(end) => (end, true),
            None => (bytes.len(), false),
        };
        // `start` and `end` sit next to ASCII bytes, hence on char boundaries.
        let span = &s[start..end];
        let parsed = if closed {
            serde_json::from_str::<Value>(span).ok().map(|v| (v, Vec::new())).or_else(|| lenient_parse(span))
        } else {
            lenient_parse(span)
        };
        match parsed {
            Some((value, mut repairs)) if value.is_object() || value.is_array() => {
                if span.trim() != trimmed {
                    repairs.insert(0, Repair::SurroundingText);
                }
                let lead_blank = s
                    .get(prev_end.min(start)..start)
                    .is_some_and(|g| g.chars().all(|c| c.is_whitespace() || c == ','));
                let trail_blank = s[end..].trim().is_empty();
                out.push(Found {
                    value,
                    repairs,
                    nested: start < failed_until,
                    group,
                    lead_blank,
                    trail_blank,
                });
                if closed {
                    pos = end;
                    prev_end = end;
                } else {
                    // Closing a cut-off span is a guess: look inside it too.
                    failed_until = failed_until.max(end);
                    pos = start + 1;
                }
            }
            // The start may be a stray bracket in prose (whose quotes then mis-pair), so
            // the scan goes on inside the span, remembering that it failed.
            _ => {
                if closed {
                    failed_until = failed_until.max(end);
                }
                pos = start + 1;
            }
        }
    }
    out
}

/// End (exclusive) of the bracketed value starting at `start`, skipping double-quoted
/// strings; `None` when it never closes.
fn balanced_end(s: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    for (i, &b) in s.iter().enumerate().skip(start) {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}
