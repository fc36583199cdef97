//! Reading a candidate list: the shapes a reply may take, tried in order from the most
//! explicit, and the entry points [`parse_candidates`] and [`parse_candidates_with`].

use std::borrow::Cow;

use serde_json::Value;

use super::extract::{code_fences, json_values, preprocess, whole_json_value, Found, Preprocessed};
use super::items::{get_key, list_from_value, stated_of_str, ListFound, Stated};
use super::lines::line_list;
use super::normalize::build_candidates;
use super::table::table_list;
use super::tags::tag_list;
use super::{ParseError, ParseOptions, ParsedReply, Repair, LIST_KEYS, TEXT_KEYS};
use crate::vs::KSpec;

/// Parse a raw reply into candidates with normalised probabilities, at most `k.max()` of them.
///
/// Probability repairs, in order: a `%` sign or any value above 1 means percentages (divided
/// by 100); non-finite values count as missing, negative ones as 0; missing ones get the
/// mass the stated ones leave (1 minus their sum, shared equally) or, when they already sum
/// to 1 or more, the stated ones' mean; duplicates (same text up to whitespace) are merged
/// by summing; the first `k.max()` are kept; the rest are normalised to sum to 1 (all zero
/// or missing: uniform).
pub fn parse_candidates(raw: &str, k: Option<KSpec>) -> Result<ParsedReply, ParseError> {
    parse_candidates_with(raw, &ParseOptions { k, ignore_probabilities: false })
}

/// [`parse_candidates`] with options.
///
/// The shapes a reply may take are tried in this order, the most explicit first, so that a
/// looser reading never shadows a stricter one:
/// 1. JSON that is the whole reply, a code fence's content, or a JSON string holding either:
///    the format asked for;
/// 2. XML-like `<response>` tags: the VS paper's own prompt format; explicit tags cannot be
///    prose, and they come before JSON found inside prose because a response's text may
///    hold brackets;
/// 3. JSON inside prose: a candidate list, or candidate objects one after another;
/// 4. a markdown table with a header separator row;
/// 5. lines: numbered or bulleted items, `Response 1:` / `Probability:` blocks, YAML-like
///    `- text:` entries, each with its probability before or after the text, or on a line
///    of its own;
/// 6. a JSON array of plain strings inside prose: last, because after a list item `[40%]`
///    is a probability, not a list.
///
/// Shapes 4 to 6 are not tried when the reply holds JSON meant as the candidate list (it
/// starts as JSON, or has a list or text key): reading its insides as prose would invent
/// candidates, and its own error says better what to ask for again.
pub fn parse_candidates_with(raw: &str, opts: &ParseOptions) -> Result<ParsedReply, ParseError> {
    parse_candidates_impl(raw, opts, true)
}

/// [`parse_candidates_with`] without its shortcut for a reply that is one JSON value: what
/// the shortcut must always agree with (checked over the mock's replies in its tests).
#[cfg(test)]
pub(crate) fn parse_candidates_searching(raw: &str, opts: &ParseOptions) -> Result<ParsedReply, ParseError> {
    parse_candidates_impl(raw, opts, false)
}

fn parse_candidates_impl(raw: &str, opts: &ParseOptions, shortcut: bool) -> Result<ParsedReply, ParseError> {
    let pre = preprocess(raw);
    if pre.body.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    if super::nested_too_deep(&pre.body) {
        return Err(super::too_deep_error());
    }
    // Most replies are exactly one JSON value that reads as the list. The search below
    // takes that value first and reads it on its own (no other value shares its group), so
    // taking it here gives the same reply without scanning it for every value inside; when
    // it does not read as a list, the search runs as always.
    if shortcut {
        if let Some(whole) = whole_json_value(&pre.body) {
            if let Some(reply) = from_json(vec![whole], &pre, opts, &mut None, &mut None) {
                return Ok(reply);
            }
        }
    }
    let mut first_err: Option<ParseError> = None;
    let found = json_values(&pre.body);
    let json_claims = json_attempt(&pre.body) || found.iter().any(|f| claims_list(&f.value, 0));
    let (strong, embedded): (Vec<Found>, Vec<Found>) = found.into_iter().partition(|f| !f.embedded());
    let mut weak = None;
    if let Some(reply) = from_json(strong, &pre, opts, &mut first_err, &mut weak) {
        return Ok(reply);
    }
    let bodies = text_bodies(&pre.body);
    if let Some(reply) = from_text(&bodies, tag_list, &pre, opts, &mut first_err) {
        return Ok(reply);
    }
    if let Some(reply) = from_json(embedded, &pre, opts, &mut first_err, &mut weak) {
        return Ok(reply);
    }
    if !json_claims {
        for shape in [table_list as Shape, line_list] {
            if let Some(reply) = from_text(&bodies, shape, &pre, opts, &mut first_err) {
                return Ok(reply);
            }
        }
        if let Some((list, repairs)) = weak {
            let reasoning = pre.thinking.clone();
            if let Ok(candidates) = build_candidates(list.items, repairs, opts) {
                return Ok(ParsedReply { candidates, reasoning });
            }
        }
    }
    Err(first_err.unwrap_or_else(|| no_json_error(&pre.body)))
}

/// A reader of one text shape.
type Shape = fn(&str) -> Option<ListFound>;

/// Candidates from the first of `found` that yields a usable list. Candidate objects one
/// after another in one text are read as one list; a bare array of plain strings inside
/// prose is held back in `weak`.
fn from_json(
    found: Vec<Found>,
    pre: &Preprocessed,
    opts: &ParseOptions,
    first_err: &mut Option<ParseError>,
    weak: &mut Option<(ListFound, Vec<Repair>)>,
) -> Option<ParsedReply> {
    let lists: Vec<(Found, Result<ListFound, ParseError>)> = found
        .into_iter()
        .map(|f| {
            let list = list_from_value(&f.value, &pre.body);
            (f, list)
        })
        .collect();
    let is_single = |l: &Result<ListFound, ParseError>| {
        matches!(l, Ok(l) if l.repairs.contains(&Repair::SingleObject)
            && !l.items.iter().all(|i| is_placeholder(&i.text)))
    };
    let mut i = 0;
    while i < lists.len() {
        let (found, list) = &lists[i];
        i += 1;
        let mut list = match list {
            Ok(list) => list.clone(),
            Err(e) => {
                first_err.get_or_insert(e.clone());
                continue;
            }
        };
        if list.items.iter().all(|item| is_placeholder(&item.text)) {
            // An example of the format (`{"text": "...", ...}`), not an answer.
            continue;
        }
        let mut repairs = pre.repairs.clone();
        repairs.extend(found.repairs.iter().cloned());
        if list.repairs.contains(&Repair::SingleObject) {
            if found.nested {
                first_err.get_or_insert(ParseError::InvalidJson(
                    "the list does not parse; only one of its items does".into(),
                ));
                continue;
            }
            let mut end = i;
            while end < lists.len()
                && lists[end].0.group == found.group
                && !lists[end].0.nested
                && is_single(&lists[end].1)
            {
                end += 1;
            }
            if end > i {
                let members = &lists[i - 1..end];
                let mut items = Vec::new();
                for (position, (_, member)) in members.iter().enumerate() {
                    if let Ok(member) = member {
                        items.extend(member.items.iter().cloned().map(|mut item| {
                            item.position = position;
                            item
                        }));
                    }
                }
                let blank = members.iter().all(|(f, _)| f.lead_blank)
                    && members.last().is_some_and(|(f, _)| f.trail_blank);
                if blank {
                    repairs.retain(|r| *r != Repair::SurroundingText);
                }
                list.items = items;
                for r in &mut list.repairs {
                    if *r == Repair::SingleObject {
                        *r = Repair::ObjectSequence;
                    }
                }
                i = end;
            }
        } else if found.embedded() && is_weak(&list) {
            if weak.is_none() {
                let mut held = repairs;
                held.extend(list.repairs.iter().cloned());
                *weak = Some((list, held));
            }
            continue;
        }
        repairs.extend(list.repairs);
        let reasoning = list.reasoning.or_else(|| pre.thinking.clone());
        match build_candidates(list.items, repairs, opts) {
            Ok(candidates) => return Some(ParsedReply { candidates, reasoning }),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    None
}

/// The texts a text shape is looked for in, with the repairs reading from each implies: the
/// decoded string when the whole reply is one JSON string, else each code fence's content,
/// then the whole reply.
fn text_bodies(body: &str) -> Vec<(Cow<'_, str>, Vec<Repair>)> {
    let t = body.trim();
    if t.starts_with('"') {
        if let Ok(Value::String(s)) = serde_json::from_str::<Value>(t) {
            return vec![(Cow::Owned(s), vec![Repair::StringEncodedJson])];
        }
    }
    let mut out: Vec<(Cow<'_, str>, Vec<Repair>)> = code_fences(t)
        .into_iter()
        .map(|(_, _, inner)| (Cow::Borrowed(inner), vec![Repair::CodeFence]))
        .collect();
    out.push((Cow::Borrowed(body), Vec::new()));
    out
}

/// Candidates from the first of `bodies` in which `shape` finds a usable list.
fn from_text(
    bodies: &[(Cow<'_, str>, Vec<Repair>)],
    shape: Shape,
    pre: &Preprocessed,
    opts: &ParseOptions,
    first_err: &mut Option<ParseError>,
) -> Option<ParsedReply> {
    for (text, body_repairs) in bodies {
        let Some(list) = shape(text) else { continue };
        let mut repairs = pre.repairs.clone();
        repairs.extend(body_repairs.iter().cloned());
        repairs.extend(list.repairs);
        match build_candidates(list.items, repairs, opts) {
            Ok(candidates) => {
                let reasoning = list.reasoning.or_else(|| pre.thinking.clone());
                return Some(ParsedReply { candidates, reasoning });
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    None
}

/// Whether the reply starts as JSON (an object, or an array of objects, arrays or strings),
/// possibly inside a code fence.
fn json_attempt(body: &str) -> bool {
    let t = body.trim_start();
    let t = match t.strip_prefix("```") {
        Some(rest) => rest.split_once('\n').map_or("", |(_, r)| r).trim_start(),
        None => t,
    };
    let mut chars = t.chars();
    match chars.next() {
        Some('{') => true,
        Some('[') => matches!(chars.find(|c| !c.is_whitespace()), Some('{' | '[' | '"' | '\'')),
        _ => false,
    }
}

/// Whether a JSON value is meant as the candidate list: an object with a list key (not
/// only placeholder items) or a text, or holding such an object; an array holding one.
fn claims_list(v: &Value, depth: usize) -> bool {
    match v {
        Value::Object(map) => {
            LIST_KEYS.iter().any(|k| get_key(map, k).is_some_and(|(_, v)| !only_placeholders(v)))
                || TEXT_KEYS.iter().any(|k| {
                    get_key(map, k).and_then(|(_, v)| v.as_str()).is_some_and(|s| !is_placeholder(s))
                })
                || (depth < 2 && map.values().any(|v| v.is_object() && claims_list(v, depth + 1)))
        }
        Value::Array(items) => depth < 2 && items.iter().any(|i| i.is_object() && claims_list(i, depth + 1)),
        _ => false,
    }
}

/// A list whose every item is a placeholder (an example of the format).
fn only_placeholders(v: &Value) -> bool {
    let Value::Array(items) = v else { return false };
    !items.is_empty()
        && items.iter().all(|i| match i {
            Value::String(s) => is_placeholder(s),
            Value::Object(map) => TEXT_KEYS
                .iter()
                .find_map(|k| get_key(map, k).and_then(|(_, v)| v.as_str()))
                .is_some_and(is_placeholder),
            _ => false,
        })
}

/// A text that stands for one in an example of the format: `...`, `<text>`, `your response`.
pub(super) fn is_placeholder(s: &str) -> bool {
    let t = s.trim();
    if t.chars().all(|c| matches!(c, '.' | '\u{2026}' | '_' | '-') || c.is_whitespace()) {
        return !t.is_empty();
    }
    let lower = t.to_ascii_lowercase();
    (t.starts_with('<') && t.ends_with('>') && !t[1..t.len() - 1].contains(['<', '>']))
        || matches!(lower.as_str(), "text" | "response" | "your response" | "response text" | "string")
}

/// A text that is only a number or a percentage (`"40%"`, `"0.4"`): a probability, never a
/// candidate's text.
pub(super) fn is_number_like(s: &str) -> bool {
    matches!(stated_of_str(s.trim()), Stated::Value { .. })
}

/// A bare array of plain strings found inside prose.
fn is_weak(list: &ListFound) -> bool {
    list.repairs.first() == Some(&Repair::BareArray)
        && list.items.iter().all(|i| i.repairs.contains(&Repair::PlainStringItem))
}

/// The error for a reply in which no candidates were found: the JSON error at the first
/// bracket when there is one, else "no candidates".
fn no_json_error(body: &str) -> ParseError {
    let t = body.trim();
    match t.find(['{', '[']).map(|i| serde_json::from_str::<Value>(&t[i..])) {
        Some(Err(e)) => ParseError::InvalidJson(e.to_string()),
        _ => ParseError::NoCandidates(
            "no JSON, no <response> tags, no table and no numbered or bulleted list found".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::extract::unescape_json_text;
    use super::*;

    #[test]
    fn what_counts_as_a_json_answer() {
        assert!(json_attempt("```json\n{\"a\": 1"));
        assert!(json_attempt("  [ {\"text\": 1}]"));
        assert!(!json_attempt("[0.4] Sure"));
        assert!(!json_attempt("[1] Sure"));
        assert!(claims_list(&serde_json::json!({"result": {"responses": [{"text": "A"}]}}), 0));
        assert!(!claims_list(&serde_json::json!({"responses": [{"text": "..."}]}), 0));
        assert!(!claims_list(&serde_json::json!(["40%"]), 0));
        assert!(is_placeholder("…") && is_placeholder("<text>") && is_placeholder("Your response"));
        assert!(!is_placeholder("?!") && !is_placeholder(""));
        assert_eq!(unescape_json_text(r#"{\"a\": \"b\"}"#).as_deref(), Some(r#"{"a": "b"}"#));
        assert_eq!(unescape_json_text(r#"{"a": "b \"c\""}"#), None);
    }
}
