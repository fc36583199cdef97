//! Parsing and repair of candidate lists as real models emit them.
//!
//! Asked for `{"responses": [{"text": .., "probability": ..}]}`, models wrap the object in
//! code fences or prose, rename keys, give percentages, forget probabilities, repeat
//! themselves or get cut off. [`parse_candidates`] recovers what it can and records every
//! repair, so that a transcript shows how each candidate was obtained.
//!
//! Where repairs are recorded: a repair of one item (a percentage, a missing probability, a
//! merged duplicate) is on that candidate only; a repair of the whole reply (a code fence,
//! syntax fixes, dropped or cut items, normalisation) is copied onto every candidate, first,
//! so that a candidate stored alone still says everything that was done to obtain it.
//! Positions in repairs are 0-based indices into the list as the model wrote it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::KSpec;

/// One candidate reply with its verbalized probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub text: String,
    /// Normalised probability (the candidates of one reply sum to 1).
    pub probability: f64,
    /// The probability as the model stated it, after unit repair but before normalisation
    /// (`None` when the model gave none).
    pub raw_probability: Option<f64>,
    /// What was repaired to obtain this candidate (always serialised, so that an empty list
    /// visibly means "taken as written").
    #[serde(default)]
    pub repairs: Vec<Repair>,
}

/// A repair applied while parsing; serialised as `{"kind": "snake_case_name", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Repair {
    /// A `<think>...</think>` block before the answer was set aside (kept as reasoning).
    ThinkBlock,
    /// The JSON was inside a ``` code fence.
    CodeFence,
    /// The JSON was surrounded by other text.
    SurroundingText,
    /// Single-quoted strings were turned into JSON strings.
    SingleQuotes,
    /// Commas before `]` or `}` were removed.
    TrailingCommas,
    /// Object keys without quotes were quoted.
    UnquotedKeys,
    /// Non-JSON literals (`NaN`, `Infinity`, `None`, `True`, `False`, `undefined`) were replaced.
    NonJsonLiterals,
    /// A number followed by `%` outside a string was read as a percentage.
    BarePercent,
    /// Raw newlines or tabs inside strings were escaped.
    ControlCharacters,
    /// The reply was cut off; the complete items were kept and the brackets closed.
    ClosedTruncated,
    /// The reply was a bare JSON array rather than `{"responses": [...]}`.
    BareArray,
    /// The `{"responses": [...]}` object was wrapped in a one-element array.
    WrappedInArray,
    /// The list was under `key` rather than `responses`.
    ListKey { key: String },
    /// The reply was a single candidate object rather than a list.
    SingleObject,
    /// No JSON: the candidates were read from a numbered or bulleted list.
    NumberedList,
    /// The text was under `key` rather than `text`.
    TextKey { key: String },
    /// The probability was under `key` rather than `probability`.
    ProbabilityKey { key: String },
    /// The text was not a string (e.g. a number) and was converted.
    TextNotString,
    /// The item was a plain string with no probability.
    PlainStringItem,
    /// The probability was given as a string (`"0.7"`, `"70%"`).
    ProbabilityString { value: String },
    /// The probability was a percentage (a `%` sign, or some value in the reply above 1)
    /// and was divided by 100; `stated` is the number as written.
    PercentScaled { stated: f64 },
    /// The probability was missing and was filled in (see [`parse_candidates`]).
    MissingProbability,
    /// The probability was not a finite number and was treated as missing.
    InvalidProbability { value: String },
    /// The probability was negative and was set to 0.
    NegativeProbability { value: f64 },
    /// `duplicates` later items with the same text were merged into this one, summing
    /// their probabilities.
    Merged { duplicates: usize },
    /// An item with an empty or whitespace-only text was dropped.
    DroppedEmpty { position: usize },
    /// An item with no text field was dropped.
    DroppedNoText { position: usize },
    /// More items than allowed: the first `kept` of `found` were kept.
    Truncated { found: usize, kept: usize },
    /// Fewer items than the fixed k asked for.
    FewerThanRequested { found: usize, requested: usize },
    /// The probabilities summed to `sum`, not 1, and were rescaled.
    Normalized { sum: f64 },
    /// No usable probabilities (all missing or zero): every candidate got the same.
    Uniform,
    /// Surrounding quotation marks were removed from a single reply.
    QuotesStripped,
    /// A single reply was wrapped in JSON (e.g. `{"response": ...}`) and was unwrapped.
    UnwrappedJson,
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedReply {
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

/// A reply that could not be recovered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("reply is empty")]
    Empty,
    #[error("reply contains no candidates: {0}")]
    NoCandidates(String),
    #[error("reply is not valid JSON, even after repair: {0}")]
    InvalidJson(String),
    #[error(
        "JSON has no list of responses: expected an array under \"responses\", found keys [{}]",
        .found_keys.join(", ")
    )]
    NoList { found_keys: Vec<String> },
    #[error("no item of the list has a text: expected a \"text\" field in each item")]
    NoText,
    #[error("reply has no final response: {0}")]
    NoResponse(String),
}

/// How [`parse_candidates_with`] reads a reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// The number of candidates asked for: more are cut to `k.max()`, fewer than a fixed k
    /// are recorded. `None`: no bound.
    pub k: Option<KSpec>,
    /// Ignore stated probabilities and give every candidate the same (the `sequence`
    /// method, which asks for none); nothing about probabilities is then recorded.
    pub ignore_probabilities: bool,
}

/// Keys under which a list of candidates is looked for, `responses` first.
const LIST_KEYS: [&str; 8] =
    ["responses", "candidates", "replies", "items", "answers", "outputs", "options", "samples"];
/// Keys under which a candidate's text is looked for, `text` first.
const TEXT_KEYS: [&str; 9] =
    ["text", "response", "reply", "content", "answer", "message", "utterance", "output", "candidate"];
/// Keys under which a candidate's probability is looked for, `probability` first.
const PROB_KEYS: [&str; 8] =
    ["probability", "prob", "confidence", "p", "score", "weight", "likelihood", "percentage"];
/// Keys under which reasoning is looked for.
const REASONING_KEYS: [&str; 6] = ["reasoning", "thinking", "thoughts", "thought", "analysis", "rationale"];

/// How many start positions the JSON scan tries, bounding the work on long prose.
const MAX_SCAN_STARTS: usize = 64;

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
pub fn parse_candidates_with(raw: &str, opts: &ParseOptions) -> Result<ParsedReply, ParseError> {
    let pre = preprocess(raw);
    if pre.body.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let mut first_err: Option<ParseError> = None;
    let found_json = json_values(&pre.body);
    // A list in prose is read only when the reply has no JSON at all: a JSON reply that
    // holds no usable list is better retried with its error than read as prose.
    let try_list = found_json.is_empty();
    for found in found_json {
        match list_from_value(&found.value) {
            Ok(list) if found.nested && list.repairs.contains(&Repair::SingleObject) => {
                first_err.get_or_insert(ParseError::InvalidJson(
                    "the list does not parse; only one of its items does".into(),
                ));
            }
            Ok(list) => {
                let mut reply_repairs = pre.repairs.clone();
                reply_repairs.extend(found.repairs);
                reply_repairs.extend(list.repairs);
                let reasoning = list.reasoning.or_else(|| pre.thinking.clone());
                match build_candidates(list.items, reply_repairs, opts) {
                    Ok(candidates) => return Ok(ParsedReply { candidates, reasoning }),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let items = if try_list { numbered_list(&pre.body) } else { Vec::new() };
    if !items.is_empty() {
        let mut reply_repairs = pre.repairs.clone();
        reply_repairs.push(Repair::NumberedList);
        if let Ok(candidates) = build_candidates(items, reply_repairs, opts) {
            return Ok(ParsedReply { candidates, reasoning: pre.thinking });
        }
    }
    Err(first_err.unwrap_or_else(|| no_json_error(&pre.body)))
}

/// The error for a reply in which no JSON value was found: the JSON error at the first
/// bracket when there is one, else "no candidates".
fn no_json_error(body: &str) -> ParseError {
    let t = body.trim();
    match t.find(['{', '[']).map(|i| serde_json::from_str::<Value>(&t[i..])) {
        Some(Err(e)) => ParseError::InvalidJson(e.to_string()),
        _ => ParseError::NoCandidates("no JSON object or array and no numbered list found".into()),
    }
}

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
    if let Some((value, mut json_repairs)) = whole_json(body).filter(|(v, _)| v.is_object() || v.is_array()) {
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
/// `Response:` / `Final response:` / `Answer:` / `Final answer:` begins the reply.
pub fn parse_cot(raw: &str) -> Result<ParsedReply, ParseError> {
    let pre = preprocess(raw);
    if pre.body.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    for found in json_values(&pre.body) {
        let Value::Object(map) = &found.value else { continue };
        let Some((key, text)) = COT_TEXT_KEYS.iter().find_map(|k| {
            get_key(map, k).and_then(|(key, v)| v.as_str().map(|s| (key.to_string(), s.trim().to_string())))
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
    Err(ParseError::NoResponse(
        "expected a JSON object {\"reasoning\": ..., \"response\": ...} or a line starting with \"Response:\""
            .into(),
    ))
}

/// Keys under which a chain-of-thought reply's final text is looked for.
const COT_TEXT_KEYS: [&str; 8] =
    ["response", "final_response", "final_answer", "answer", "reply", "text", "output", "message"];

// ---------------------------------------------------------------------------------------
// Pre-processing and JSON extraction

struct Preprocessed {
    body: String,
    thinking: Option<String>,
    repairs: Vec<Repair>,
}

/// Sets aside a `<think>` block that reasoning models put before their answer.
fn preprocess(raw: &str) -> Preprocessed {
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
struct Found {
    value: Value,
    repairs: Vec<Repair>,
    /// Found inside a bracketed span that did not parse: a lone candidate object here is
    /// more likely one item of a broken list than the answer.
    nested: bool,
}

/// The whole body as JSON (strictly or after cheap repairs), or the content of a body that
/// is exactly one code fence.
fn whole_json(body: &str) -> Option<(Value, Vec<Repair>)> {
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

/// Every JSON value the reply plausibly contains, most likely first: the whole reply, the
/// contents of code fences, then balanced `{...}`/`[...]` spans in the text.
fn json_values(body: &str) -> Vec<Found> {
    let mut out = Vec::new();
    let t = body.trim();
    let mut whole = false;
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        if v.is_object() || v.is_array() {
            out.push(Found { value: v, repairs: Vec::new(), nested: false });
            whole = true;
        }
    }
    for (_, _, inner) in code_fences(t) {
        for mut found in scan_json(inner) {
            found.repairs.insert(0, Repair::CodeFence);
            out.push(found);
        }
    }
    for found in scan_json(t) {
        if whole && !found.repairs.contains(&Repair::SurroundingText) {
            // The whole reply again; already listed.
            continue;
        }
        out.push(found);
    }
    out
}

/// Code fences as (start, end, inner content without the language tag line).
fn code_fences(s: &str) -> Vec<(usize, usize, &str)> {
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
fn scan_json(s: &str) -> Vec<Found> {
    let bytes = s.as_bytes();
    let trimmed = s.trim();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut starts = 0;
    let mut failed_until = 0;
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
                out.push(Found { value, repairs, nested: start < failed_until });
                if closed {
                    pos = end;
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

/// Parses `src` after cheap, recorded repairs of what models get wrong in JSON.
fn lenient_parse(src: &str) -> Option<(Value, Vec<Repair>)> {
    let (fixed, repairs) = lenient_fix(src);
    if repairs.is_empty() {
        return None;
    }
    serde_json::from_str::<Value>(&fixed).ok().map(|v| (v, repairs))
}

/// One pass over `src` outside strings: single quotes, trailing commas, unquoted keys,
/// non-JSON literals, bare percentages, raw newlines in strings, and a cut-off end (closed
/// after the last complete value inside a list or object).
fn lenient_fix(src: &str) -> (String, Vec<Repair>) {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 8);
    let mut repairs: Vec<Repair> = Vec::new();
    let mut stack: Vec<char> = Vec::new();
    // (length of `out`, stack) after the last complete value closed inside a container.
    let mut safe: Option<(usize, Vec<char>)> = None;
    let mut i = 0;
    let mut truncated = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                let quote = c;
                if quote == '\'' {
                    note(Repair::SingleQuotes, &mut repairs);
                }
                out.push('"');
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    let d = chars[i];
                    if d == '\\' {
                        let next = chars.get(i + 1).copied();
                        match next {
                            Some('\'') if quote == '\'' => out.push('\''),
                            Some(n) => {
                                out.push('\\');
                                out.push(n);
                            }
                            None => {}
                        }
                        i += 2;
                        continue;
                    }
                    if d == quote {
                        closed = true;
                        i += 1;
                        break;
                    }
                    match d {
                        '"' => out.push_str("\\\""),
                        '\n' => {
                            note(Repair::ControlCharacters, &mut repairs);
                            out.push_str("\\n");
                        }
                        '\r' => {
                            note(Repair::ControlCharacters, &mut repairs);
                            out.push_str("\\r");
                        }
                        '\t' => {
                            note(Repair::ControlCharacters, &mut repairs);
                            out.push_str("\\t");
                        }
                        d if (d as u32) < 0x20 => {
                            note(Repair::ControlCharacters, &mut repairs);
                            out.push(' ');
                        }
                        d => out.push(d),
                    }
                    i += 1;
                }
                if !closed {
                    truncated = true;
                    break;
                }
                out.push('"');
            }
            '{' | '[' => {
                stack.push(c);
                out.push(c);
                i += 1;
            }
            '}' | ']' => {
                stack.pop();
                out.push(c);
                i += 1;
                if stack.is_empty() {
                    // The value is complete; anything after it is not part of it.
                    break;
                }
                safe = Some((out.len(), stack.clone()));
            }
            ',' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if matches!(chars.get(j), Some('}') | Some(']')) {
                    note(Repair::TrailingCommas, &mut repairs);
                } else {
                    out.push(',');
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == '_' || (c == '-' && next_is_alpha(&chars, i)) => {
                let neg = c == '-';
                let start = if neg { i + 1 } else { i };
                let mut j = start;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let word: String = chars[start..j].iter().collect();
                let mut k = j;
                while k < chars.len() && chars[k].is_whitespace() {
                    k += 1;
                }
                if !neg && chars.get(k) == Some(&':') && stack.last() == Some(&'{') {
                    note(Repair::UnquotedKeys, &mut repairs);
                    out.push('"');
                    out.push_str(&word);
                    out.push('"');
                } else {
                    let lit = match word.as_str() {
                        "true" | "false" | "null" if !neg => word.clone(),
                        "True" if !neg => "true".into(),
                        "False" if !neg => "false".into(),
                        "NaN" | "Infinity" | "inf" | "None" | "undefined" => "null".into(),
                        _ => {
                            // Not something we know how to fix; keep it and let the parse fail.
                            let mut w = String::new();
                            if neg {
                                w.push('-');
                            }
                            w.push_str(&word);
                            w
                        }
                    };
                    if lit != word {
                        note(Repair::NonJsonLiterals, &mut repairs);
                    }
                    out.push_str(&lit);
                }
                i = j;
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                let mut j = i;
                while j < chars.len()
                    && (chars[j].is_ascii_digit() || matches!(chars[j], '.' | 'e' | 'E' | '+' | '-'))
                {
                    j += 1;
                }
                let num: String = chars[i..j].iter().collect();
                let mut k = j;
                while k < chars.len() && chars[k] == ' ' {
                    k += 1;
                }
                if chars.get(k) == Some(&'%') {
                    note(Repair::BarePercent, &mut repairs);
                    out.push('"');
                    out.push_str(&num);
                    out.push_str("%\"");
                    i = k + 1;
                } else {
                    out.push_str(&num);
                    i = j;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if truncated || !stack.is_empty() {
        if let Some((len, open)) = safe {
            out.truncate(len);
            for b in open.iter().rev() {
                out.push(if *b == '{' { '}' } else { ']' });
            }
            note(Repair::ClosedTruncated, &mut repairs);
        }
    }
    (out, repairs)
}

fn note(r: Repair, repairs: &mut Vec<Repair>) {
    if !repairs.contains(&r) {
        repairs.push(r);
    }
}

fn next_is_alpha(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic())
}

// ---------------------------------------------------------------------------------------
// From JSON to items

/// An item as the model gave it, before probability repair.
struct RawItem {
    position: usize,
    text: String,
    stated: Stated,
    repairs: Vec<Repair>,
}

/// A probability as stated.
#[derive(Debug, Clone)]
enum Stated {
    Missing,
    Invalid(String),
    Value { v: f64, percent: bool },
}

struct ListFound {
    items: Vec<RawItem>,
    repairs: Vec<Repair>,
    reasoning: Option<String>,
}

/// Looks `name` up case-insensitively; returns the key as written and its value.
fn get_key<'a>(map: &'a Map<String, Value>, name: &str) -> Option<(&'a str, &'a Value)> {
    if let Some((k, v)) = map.get_key_value(name) {
        return Some((k.as_str(), v));
    }
    map.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(k, v)| (k.as_str(), v))
}

fn reasoning_from(map: &Map<String, Value>) -> Option<String> {
    REASONING_KEYS.iter().find_map(|k| {
        get_key(map, k).and_then(|(_, v)| v.as_str()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    })
}

fn list_from_value(v: &Value) -> Result<ListFound, ParseError> {
    match v {
        Value::Array(items) => {
            if let [inner @ Value::Object(map)] = items.as_slice() {
                if LIST_KEYS.iter().any(|k| get_key(map, k).is_some_and(|(_, v)| v.is_array())) {
                    let mut list = list_from_value(inner)?;
                    list.repairs.insert(0, Repair::WrappedInArray);
                    return Ok(list);
                }
            }
            let (items, dropped) = raw_items(items)?;
            let mut repairs = vec![Repair::BareArray];
            repairs.extend(dropped);
            Ok(ListFound { items, repairs, reasoning: None })
        }
        Value::Object(map) => {
            let reasoning = reasoning_from(map);
            for name in LIST_KEYS {
                if let Some((key, Value::Array(items))) = get_key(map, name) {
                    let mut repairs = if key == "responses" {
                        Vec::new()
                    } else {
                        vec![Repair::ListKey { key: key.to_string() }]
                    };
                    let (items, dropped) = raw_items(items)?;
                    repairs.extend(dropped);
                    return Ok(ListFound { items, repairs, reasoning });
                }
            }
            if TEXT_KEYS.iter().any(|k| get_key(map, k).is_some_and(|(_, v)| v.is_string())) {
                let (items, _) = raw_items(std::slice::from_ref(v))?;
                return Ok(ListFound { items, repairs: vec![Repair::SingleObject], reasoning });
            }
            // Any other key holding a list of objects or strings.
            for (key, value) in map {
                if let Value::Array(items) = value {
                    if items.iter().any(|i| i.is_object() || i.is_string()) {
                        let mut repairs = vec![Repair::ListKey { key: key.clone() }];
                        let (items, dropped) = raw_items(items)?;
                        repairs.extend(dropped);
                        return Ok(ListFound { items, repairs, reasoning });
                    }
                }
            }
            Err(ParseError::NoList { found_keys: map.keys().cloned().collect() })
        }
        other => {
            Err(ParseError::InvalidJson(format!("expected an object or an array, found {}", kind_of(other))))
        }
    }
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
fn raw_items(values: &[Value]) -> Result<(Vec<RawItem>, Vec<Repair>), ParseError> {
    if values.is_empty() {
        return Err(ParseError::NoCandidates("the list is empty".into()));
    }
    let mut items = Vec::new();
    let mut dropped = Vec::new();
    for (position, value) in values.iter().enumerate() {
        match value {
            Value::String(s) => items.push(RawItem {
                position,
                text: s.clone(),
                stated: Stated::Missing,
                repairs: vec![Repair::PlainStringItem],
            }),
            Value::Object(map) => {
                let mut repairs = Vec::new();
                let text = TEXT_KEYS.iter().find_map(|name| {
                    let (key, v) = get_key(map, name)?;
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => {
                            repairs.push(Repair::TextNotString);
                            n.to_string()
                        }
                        Value::Bool(b) => {
                            repairs.push(Repair::TextNotString);
                            b.to_string()
                        }
                        _ => return None,
                    };
                    if key != "text" {
                        repairs.insert(0, Repair::TextKey { key: key.to_string() });
                    }
                    Some(text)
                });
                let Some(text) = text else {
                    dropped.push(Repair::DroppedNoText { position });
                    continue;
                };
                let stated = match PROB_KEYS.iter().find_map(|name| get_key(map, name)) {
                    None => Stated::Missing,
                    Some((key, v)) => {
                        if key != "probability" {
                            repairs.push(Repair::ProbabilityKey { key: key.to_string() });
                        }
                        stated_of(v, &mut repairs)
                    }
                };
                items.push(RawItem { position, text, stated, repairs });
            }
            _ => dropped.push(Repair::DroppedNoText { position }),
        }
    }
    if items.is_empty() {
        return Err(ParseError::NoText);
    }
    Ok((items, dropped))
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
            stated_of_str(t)
        }
        other => Stated::Invalid(other.to_string()),
    }
}

/// `"0.7"`, `"70%"`, `"70 %"`; anything else is invalid.
fn stated_of_str(t: &str) -> Stated {
    let (num, percent) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (t, false),
    };
    match num.parse::<f64>() {
        Ok(f) if f.is_finite() => Stated::Value { v: f, percent },
        _ => Stated::Invalid(t.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Probability repair and the final list

/// An item after unit repair.
struct Resolved {
    text: String,
    raw: Option<f64>,
    /// Non-negative finite weight, or `None` when missing.
    weight: Option<f64>,
    repairs: Vec<Repair>,
    merged: usize,
}

fn build_candidates(
    items: Vec<RawItem>,
    mut reply_repairs: Vec<Repair>,
    opts: &ParseOptions,
) -> Result<Vec<Candidate>, ParseError> {
    // Drop empty texts.
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        if item.text.trim().is_empty() {
            reply_repairs.push(Repair::DroppedEmpty { position: item.position });
        } else {
            kept.push(item);
        }
    }
    if kept.is_empty() {
        return Err(ParseError::NoCandidates("every text is empty".into()));
    }

    let mut resolved = resolve_probabilities(kept, opts.ignore_probabilities);

    // Merge duplicates (same text up to whitespace), keeping the first occurrence.
    let mut merged: Vec<Resolved> = Vec::with_capacity(resolved.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(resolved.len());
    for r in resolved.drain(..) {
        let key = r.text.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(first) = seen.get(&key).and_then(|&pos| merged.get_mut(pos)) {
            first.merged += 1;
            first.raw = match (first.raw, r.raw) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            first.weight = match (first.weight, r.weight) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            for rep in r.repairs {
                if !first.repairs.contains(&rep) {
                    first.repairs.push(rep);
                }
            }
        } else {
            seen.insert(key, merged.len());
            merged.push(r);
        }
    }
    for m in &mut merged {
        if m.merged > 0 {
            m.repairs.push(Repair::Merged { duplicates: m.merged });
        }
    }

    // Bound the count.
    if let Some(k) = opts.k {
        let max = k.max().max(1);
        if merged.len() > max {
            reply_repairs.push(Repair::Truncated { found: merged.len(), kept: max });
            merged.truncate(max);
        } else if let KSpec::Fixed { k } = k {
            if merged.len() < k {
                reply_repairs.push(Repair::FewerThanRequested { found: merged.len(), requested: k });
            }
        }
    }

    // Normalise.
    let weights: Vec<f64> = merged.iter().map(|m| m.weight.unwrap_or(0.0)).collect();
    let max = weights.iter().copied().fold(0.0f64, f64::max);
    let probabilities: Vec<f64> = if max > 0.0 && max.is_finite() {
        let scaled: Vec<f64> = weights.iter().map(|w| w / max).collect();
        let sum_scaled: f64 = scaled.iter().sum();
        let sum = sum_scaled * max;
        if !opts.ignore_probabilities && (sum - 1.0).abs() > 1e-6 {
            reply_repairs.push(Repair::Normalized { sum: if sum.is_finite() { sum } else { f64::MAX } });
        }
        scaled.iter().map(|s| s / sum_scaled).collect()
    } else {
        if !opts.ignore_probabilities {
            reply_repairs.push(Repair::Uniform);
        }
        let n = merged.len() as f64;
        vec![1.0 / n; merged.len()]
    };

    Ok(merged
        .into_iter()
        .zip(probabilities)
        .map(|(m, probability)| {
            let mut repairs = reply_repairs.clone();
            for r in m.repairs {
                if !repairs.contains(&r) {
                    repairs.push(r);
                }
            }
            Candidate { text: m.text.trim().to_string(), probability, raw_probability: m.raw, repairs }
        })
        .collect())
}

fn resolve_probabilities(items: Vec<RawItem>, ignore: bool) -> Vec<Resolved> {
    if ignore {
        return items
            .into_iter()
            .map(|i| {
                let repairs = i
                    .repairs
                    .into_iter()
                    .filter(|r| {
                        !matches!(r, Repair::ProbabilityKey { .. } | Repair::ProbabilityString { .. })
                    })
                    .collect();
                Resolved { text: i.text, raw: None, weight: Some(1.0), repairs, merged: 0 }
            })
            .collect();
    }
    let scale_all = items.iter().any(|i| matches!(i.stated, Stated::Value { v, percent: false } if v > 1.0));
    let mut out: Vec<Resolved> = items
        .into_iter()
        .map(|i| {
            let mut repairs = i.repairs;
            let (raw, weight) = match i.stated {
                Stated::Missing => {
                    repairs.push(Repair::MissingProbability);
                    (None, None)
                }
                Stated::Invalid(value) => {
                    repairs.push(Repair::InvalidProbability { value });
                    (None, None)
                }
                Stated::Value { v, percent } => {
                    let p = if percent || scale_all {
                        repairs.push(Repair::PercentScaled { stated: v });
                        v / 100.0
                    } else {
                        v
                    };
                    if p < 0.0 {
                        repairs.push(Repair::NegativeProbability { value: p });
                        (Some(p), Some(0.0))
                    } else {
                        (Some(p), Some(p))
                    }
                }
            };
            Resolved { text: i.text, raw, weight, repairs, merged: 0 }
        })
        .collect();

    let known: Vec<f64> = out.iter().filter_map(|r| r.weight).collect();
    let n_missing = out.len() - known.len();
    if n_missing > 0 && !known.is_empty() {
        let sum: f64 = known.iter().sum();
        let leftover = 1.0 - sum;
        let fill = if leftover > 1e-9 { leftover / n_missing as f64 } else { sum / known.len() as f64 };
        let fill = if fill.is_finite() && fill >= 0.0 { fill } else { 0.0 };
        for r in &mut out {
            if r.weight.is_none() {
                r.weight = Some(fill);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Plain text

/// Items of a numbered (`1.`, `1)`, `(1)`) or bulleted (`-`, `*`, `•`) list; a trailing
/// `(0.4)`, `(probability: 40%)` or `- probability: 0.4` is read as the probability.
fn numbered_list(body: &str) -> Vec<RawItem> {
    let mut items = Vec::new();
    for line in body.lines() {
        let Some(rest) = list_item_text(line) else { continue };
        let rest = rest.trim();
        let (text, stated) = split_trailing_probability(rest);
        let text = clean_list_text(text);
        items.push(RawItem { position: items.len(), text, stated, repairs: Vec::new() });
    }
    items
}

fn list_item_text(line: &str) -> Option<&str> {
    let t = line.trim_start();
    for bullet in ["- ", "* ", "• ", "– "] {
        if let Some(rest) = t.strip_prefix(bullet) {
            return Some(rest);
        }
    }
    let t2 = t.strip_prefix('(').unwrap_or(t);
    let digits = t2.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=3).contains(&digits) {
        let rest = &t2[digits..];
        for sep in [". ", ") ", ": ", ".\t", ")\t"] {
            if let Some(r) = rest.strip_prefix(sep) {
                return Some(r);
            }
        }
    }
    None
}

const LABELS: [&str; 5] = ["probability", "prob", "confidence", "likelihood", "p"];

fn split_trailing_probability(s: &str) -> (&str, Stated) {
    // "(0.4)" / "[40%]" / "(probability: 0.4)".
    if let Some(close) = s.chars().last().filter(|c| *c == ')' || *c == ']') {
        let open = if close == ')' { '(' } else { '[' };
        if let Some(o) = s.rfind(open) {
            let inner = &s[o + 1..s.len() - 1];
            if let Some(stated) = labelled_number(inner, false) {
                return (&s[..o], stated);
            }
        }
    }
    // "... - probability: 0.4" / "... | p = 40%".
    let lower = s.to_ascii_lowercase();
    for label in LABELS {
        if let Some(idx) = lower.rfind(label) {
            let before_ok = idx == 0 || !lower.as_bytes()[idx - 1].is_ascii_alphanumeric();
            if before_ok {
                if let Some(stated) = labelled_number(&s[idx..], true) {
                    let text = s[..idx].trim_end().trim_end_matches(['-', '–', '—', '|', ',', ';', '(']);
                    return (text, stated);
                }
            }
        }
    }
    (s, Stated::Missing)
}

/// `[label [:=]] number[%]`; with `need_label` the label is required.
fn labelled_number(s: &str, need_label: bool) -> Option<Stated> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let mut rest = t;
    let mut had_label = false;
    for label in LABELS {
        if lower.starts_with(label) {
            let after = &t[label.len()..];
            let after_trim = after.trim_start();
            if let Some(r) = after_trim.strip_prefix(':').or_else(|| after_trim.strip_prefix('=')) {
                rest = r;
                had_label = true;
                break;
            }
        }
    }
    if need_label && !had_label {
        return None;
    }
    match stated_of_str(rest.trim()) {
        s @ Stated::Value { .. } => Some(s),
        _ => None,
    }
}

fn clean_list_text(s: &str) -> String {
    let t = s.trim().trim_matches('*').trim();
    strip_quotes(t).0.trim().to_string()
}

/// Removes one pair of surrounding quotation marks when the text has no other of them.
fn strip_quotes(s: &str) -> (String, bool) {
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
