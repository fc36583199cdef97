//! Reading one-reply answers: plain replies ([`parse_single`]) and chain-of-thought
//! replies ([`parse_cot`]).

use serde_json::Value;

use super::extract::{json_values, preprocess, whole_json};
use super::items::{get_key, reasoning_from};
use super::{Candidate, ParseError, ParsedReply, Repair, LIST_KEYS, TEXT_KEYS};

/// Parse a one-reply answer (the `direct` and `multi-turn` methods): whitespace and
/// surrounding quotes are stripped, and a reply wrapped in a JSON object (`{"response": ...}`
/// or a candidate list, whose first text is taken) is unwrapped. The candidate has
/// probability 1.
pub fn parse_single(raw: &str) -> Result<ParsedReply, ParseError> {
    let pre = preprocess(raw);
    let body = pre.body.trim();
    if body.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut repairs = pre.repairs.clone();
    let mut text = body.to_string();
    // A reply nested deeper than any JSON that could be read is taken as text.
    let json = if super::nested_too_deep(body) { None } else { whole_json(body) };
    if let Some((value, mut json_repairs)) = json.filter(|(v, _)| v.is_object() || v.is_array()) {
        if let Some(t) = single_text_from_value(&value) {
            repairs.append(&mut json_repairs);
            repairs.push(Repair::UnwrappedJson);
            text = t;
        }
    }
    let (text, stripped) = strip_quotes(text.trim());
    if stripped {
        repairs.push(Repair::QuotesStripped);
    }
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(ParsedReply {
        candidates: vec![Candidate { text, probability: 1.0, raw_probability: None, repairs }],
        reasoning: pre.thinking,
    })
}

/// Parse a chain-of-thought answer: a JSON object `{"reasoning": ..., "response": ...}`
/// (alternative key names accepted), or else prose whose last line starting with
/// `Response:` / `Final response:` / `Answer:` / `Final answer:` begins the reply, or else
/// prose whose last paragraph is taken as the reply ([`Repair::ProseResponse`]).
pub fn parse_cot(raw: &str) -> Result<ParsedReply, ParseError> {
    let pre = preprocess(raw);
    if pre.body.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    if super::nested_too_deep(&pre.body) {
        return Err(super::too_deep_error());
    }
    for found in json_values(&pre.body) {
        let Value::Object(map) = &found.value else { continue };
        // A number is the response too: the schema of a numeric answer asks for one
        // (`{"reasoning": "...", "response": 0}`), and schema-following servers write it so.
        let Some((key, text)) = COT_TEXT_KEYS.iter().find_map(|k| {
            get_key(map, k).and_then(|(key, v)| match v {
                Value::String(s) => Some((key.to_string(), s.trim().to_string())),
                Value::Number(n) => Some((key.to_string(), n.to_string())),
                _ => None,
            })
        }) else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        let mut repairs = pre.repairs.clone();
        repairs.extend(found.repairs);
        if key != "response" {
            repairs.push(Repair::TextKey { key });
        }
        let reasoning = reasoning_from(map).or(pre.thinking.clone());
        return Ok(ParsedReply {
            candidates: vec![Candidate { text, probability: 1.0, raw_probability: None, repairs }],
            reasoning,
        });
    }
    if let Some((reasoning, text)) = marker_split(&pre.body) {
        let (text, stripped) = strip_quotes(text.trim());
        let mut repairs = pre.repairs.clone();
        if stripped {
            repairs.push(Repair::QuotesStripped);
        }
        let text = text.trim().to_string();
        if !text.is_empty() {
            let reasoning = Some(reasoning).filter(|r| !r.is_empty()).or(pre.thinking);
            return Ok(ParsedReply {
                candidates: vec![Candidate { text, probability: 1.0, raw_probability: None, repairs }],
                reasoning,
            });
        }
    }
    // Prose only: the last paragraph is the response, what comes before it the reasoning.
    let body = pre.body.trim();
    let (reasoning, last) = match body.rsplit_once("\n\n") {
        Some((before, last)) if !last.trim().is_empty() => (Some(before.trim().to_string()), last),
        _ => (None, body),
    };
    let (text, stripped) = strip_quotes(last.trim());
    let mut repairs = pre.repairs.clone();
    repairs.push(Repair::ProseResponse);
    if stripped {
        repairs.push(Repair::QuotesStripped);
    }
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(ParseError::NoResponse("the reply holds no text".into()));
    }
    Ok(ParsedReply {
        candidates: vec![Candidate { text, probability: 1.0, raw_probability: None, repairs }],
        reasoning: reasoning.filter(|r| !r.is_empty()).or(pre.thinking),
    })
}

/// Keys under which a chain-of-thought reply's final text is looked for.
const COT_TEXT_KEYS: [&str; 8] =
    ["response", "final_response", "final_answer", "answer", "reply", "text", "output", "message"];
/// Removes one pair of surrounding quotation marks when the text has no other of them.
pub(super) fn strip_quotes(s: &str) -> (String, bool) {
    for (open, close) in [('"', '"'), ('\u{201c}', '\u{201d}'), ('\'', '\''), ('\u{2018}', '\u{2019}')] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            if !inner.contains(open) && !inner.contains(close) {
                return (inner.to_string(), true);
            }
        }
    }
    (s.to_string(), false)
}

/// The text of a reply that is one response wrapped in JSON.
fn single_text_from_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => {
            for name in TEXT_KEYS {
                if let Some((_, Value::String(s))) = get_key(map, name) {
                    return Some(s.clone());
                }
            }
            let list = LIST_KEYS.iter().find_map(|n| get_key(map, n)).map(|(_, v)| v)?;
            single_text_from_value(list)
        }
        Value::Array(items) => items.first().and_then(single_text_from_value),
        _ => None,
    }
}

/// Splits prose at the last `Response:`-style marker line: (reasoning, reply).
fn marker_split(body: &str) -> Option<(String, String)> {
    const MARKERS: [&str; 6] =
        ["final response:", "final answer:", "response:", "answer:", "reply:", "final reply:"];
    let mut offset = 0;
    let mut found: Option<(usize, usize)> = None;
    for line in body.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        let cleaned = trimmed.trim_start_matches(['*', '#', ' ']);
        let skipped = trimmed.len() - cleaned.len();
        for m in MARKERS {
            if cleaned.get(..m.len()).is_some_and(|p| p.eq_ignore_ascii_case(m)) {
                let after = cleaned[m.len()..].trim_start_matches(['*', ' ']);
                let text_start = offset + lead + skipped + (cleaned.len() - after.len());
                found = Some((offset, text_start));
                break;
            }
        }
        offset += line.len();
    }
    let (line_start, text_start) = found?;
    let reasoning = body.get(..line_start)?.trim().to_string();
    let text = body.get(text_start..)?.trim().to_string();
    Some((reasoning, text))
}
