//! Parsing and repair of candidate lists as real models emit them.
//!
//! Asked for `{"responses": [{"text": .., "probability": ..}]}`, models wrap the object in
//! code fences, prose or another object, encode it as a string, rename keys, give
//! percentages, forget probabilities, repeat themselves or get cut off. Without an enforced
//! schema they also answer in other shapes: XML-like `<response>` tags (the format of the VS
//! paper's own prompts), markdown tables, numbered or bulleted lists with a probability on
//! each line, `Response 1:` / `Probability:` blocks and YAML-like lists.
//! [`parse_candidates`] recovers what it can and records every repair, so that a transcript
//! shows how each candidate was obtained. It never takes a line of prose for a candidate:
//! every candidate comes from a JSON item, a tag, a table row, a list item, or a line that
//! carries its own probability next to at least one other such line.
//!
//! Where repairs are recorded: a repair of one item (a percentage, a missing probability, a
//! merged duplicate) is on that candidate only; a repair of the whole reply (a code fence,
//! the shape it was read from, syntax fixes, dropped or cut items, normalisation) is copied
//! onto every candidate, first, so that a candidate stored alone still says everything that
//! was done to obtain it. Positions in repairs are 0-based indices into the list as the model
//! wrote it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::{Captures, Regex};
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
    /// `//` or `/* */` comments outside strings were removed.
    Comments,
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
    /// The list was inside another object, under `key` (one repair per level).
    WrappedObject { key: String },
    /// JSON was encoded as a JSON string (the whole reply, or a field holding JSON text, or
    /// quotes escaped as `\"`) and was decoded.
    StringEncodedJson,
    /// The list was under `key` rather than `responses`.
    ListKey { key: String },
    /// The reply was a single candidate object rather than a list.
    SingleObject,
    /// The candidates were separate JSON objects one after another rather than one list.
    ObjectSequence,
    /// The items were the values of an object keyed by name or number rather than a list.
    KeyedItems,
    /// Texts and probabilities were under numbered keys (`response_1`, `probability_1`, ...).
    NumberedKeys,
    /// The candidates were an object mapping each text to its probability
    /// (`{"Yes": 0.6, "No": 0.4}`).
    ProbabilityMap,
    /// The item was a `[text, probability]` pair.
    PairItem,
    /// No JSON: the candidates were XML-like tags (`<response><text>..</text>
    /// <probability>..</probability></response>`, or `<response probability="..">..`).
    XmlTags,
    /// No JSON: the candidates were the rows of a markdown table.
    MarkdownTable,
    /// No JSON: the candidates were read from a numbered or bulleted list, or from lines
    /// each ending with its probability.
    NumberedList,
    /// No JSON: the candidates were `Response 1: ..` / `Text: ..` blocks, each with a
    /// `Probability: ..` line or none.
    LabelledBlocks,
    /// No JSON: the candidates were YAML-like entries (`- text: ..` / `  probability: ..`).
    YamlList,
    /// The reply was cut off mid-list (with no brackets to close): the complete items were
    /// kept; the last item was `dropped` when its text was cut, or else kept without the
    /// probability that was cut.
    CutOff { dropped: bool },
    /// A style label before the text (`**Warm:** "Sure!"`) was removed; `label` as written.
    TextLabel { label: String },
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
const TEXT_KEYS: [&str; 12] = [
    "text",
    "response",
    "reply",
    "content",
    "answer",
    "message",
    "utterance",
    "output",
    "candidate",
    "option",
    "choice",
    "statement",
];
/// Keys under which a candidate's probability is looked for, `probability` first.
const PROB_KEYS: [&str; 9] =
    ["probability", "prob", "confidence", "p", "score", "weight", "likelihood", "percentage", "chance"];
/// Keys under which reasoning is looked for.
const REASONING_KEYS: [&str; 6] = ["reasoning", "thinking", "thoughts", "thought", "analysis", "rationale"];

/// How many start positions the JSON scan tries, bounding the work on long prose.
const MAX_SCAN_STARTS: usize = 64;
/// How deep wrapper objects, nested arrays and JSON encoded in strings are followed.
const MAX_DEPTH: usize = 4;

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
    let pre = preprocess(raw);
    if pre.body.trim().is_empty() {
        return Err(ParseError::Empty);
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
fn is_placeholder(s: &str) -> bool {
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
fn is_number_like(s: &str) -> bool {
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
    /// Values from one scan of one text share a group: candidate objects one after another
    /// are read as one list only within a group.
    group: usize,
    /// Only whitespace or commas lie between this value and the one found before it (or
    /// the start of the text).
    lead_blank: bool,
    /// Only whitespace follows this value.
    trail_blank: bool,
}

impl Found {
    /// Found inside other text rather than being the whole of it.
    fn embedded(&self) -> bool {
        self.repairs.contains(&Repair::SurroundingText)
    }
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

/// Every JSON value the reply plausibly contains, most likely first: the whole reply (or
/// the JSON a whole-reply string encodes), the contents of code fences, then balanced
/// `{...}`/`[...]` spans in the text.
fn json_values(body: &str) -> Vec<Found> {
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
            out.push(Found {
                value: v,
                repairs: Vec::new(),
                nested: false,
                group: *groups,
                lead_blank: true,
                trail_blank: true,
            });
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
fn unescape_json_text(t: &str) -> Option<String> {
    if !t.contains(['{', '[']) {
        return None;
    }
    let escaped = t.replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t");
    serde_json::from_str::<String>(&format!("\"{escaped}\"")).ok().filter(|s| s != t)
}

/// JSON held in a string field (`"[{\"text\": ...}]"`), when the string is an object or an
/// array.
fn json_in_string(s: &str) -> Option<Value> {
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

/// Parses `src` after cheap, recorded repairs of what models get wrong in JSON.
fn lenient_parse(src: &str) -> Option<(Value, Vec<Repair>)> {
    let (fixed, repairs) = lenient_fix(src);
    if repairs.is_empty() {
        return None;
    }
    serde_json::from_str::<Value>(&fixed).ok().map(|v| (v, repairs))
}

/// One pass over `src` outside strings: single quotes, trailing commas, unquoted keys,
/// non-JSON literals, comments, bare percentages, raw newlines in strings, and a cut-off end (closed
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
            '/' if matches!(chars.get(i + 1), Some('/' | '*')) => {
                note(Repair::Comments, &mut repairs);
                if chars[i + 1] == '/' {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                } else {
                    i += 2;
                    while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                        i += 1;
                    }
                    i = (i + 2).min(chars.len());
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    if !truncated && !stack.is_empty() {
        if let Some(closed) = close_cut_value(&out, &stack) {
            note(Repair::ClosedTruncated, &mut repairs);
            return (closed, repairs);
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

/// Closes JSON cut off outside a string (`{"text": "C", "probability": 0.`): a number or
/// literal cut mid-way is dropped (it may be wrong) and the brackets are closed, so that an
/// item whose text is complete is kept without its probability. A cut inside a string is
/// left to the caller: the string may have been the item's text.
fn close_cut_value(out: &str, stack: &[char]) -> Option<String> {
    let mut s = out.trim_end();
    s = s.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')).trim_end();
    while let Some(r) = s.strip_suffix(',') {
        s = r.trim_end();
    }
    let closers: String = stack.iter().rev().map(|b| if *b == '{' { '}' } else { ']' }).collect();
    let tails: &[&str] = if s.ends_with(':') { &[" null"] } else { &["", ": null"] };
    tails.iter().find_map(|tail| {
        let attempt = format!("{s}{tail}{closers}");
        serde_json::from_str::<Value>(&attempt).is_ok().then_some(attempt)
    })
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
#[derive(Debug, Clone)]
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

impl Stated {
    fn is_missing(&self) -> bool {
        matches!(self, Stated::Missing)
    }

    fn is_value(&self) -> bool {
        matches!(self, Stated::Value { .. })
    }
}

/// Items read from one shape, with the repairs of the whole reply that reading implies.
#[derive(Debug, Clone)]
struct ListFound {
    items: Vec<RawItem>,
    repairs: Vec<Repair>,
    reasoning: Option<String>,
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

/// The candidate list in a JSON value; `src` is the text it came from, whose key order an
/// object's entries are read in (JSON objects are unordered once parsed).
fn list_from_value(v: &Value, src: &str) -> Result<ListFound, ParseError> {
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
    let Some(text) = text_field(map, &mut repairs) else {
        if depth < MAX_DEPTH && map.len() == 1 {
            if let Some((key, Value::Object(inner))) = map.iter().next() {
                let mut item = item_from_object(inner, position, depth + 1)?;
                item.repairs.insert(0, Repair::WrappedObject { key: key.clone() });
                return Some(item);
            }
        }
        return None;
    };
    let prob = PROB_KEYS.iter().find_map(|name| get_key(map, name)).or_else(|| {
        map.iter().map(|(k, v)| (k.as_str(), v)).find(|(k, _)| {
            let k = k.to_ascii_lowercase();
            ["prob", "likel", "confid", "percent", "chance"].iter().any(|p| k.contains(p))
        })
    });
    let stated = match prob {
        None => Stated::Missing,
        Some((key, v)) => {
            if key != "probability" {
                repairs.push(Repair::ProbabilityKey { key: key.to_string() });
            }
            stated_of(v, &mut repairs)
        }
    };
    Some(RawItem { position, text, stated, repairs })
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
// XML-like tags

/// Elements a candidate may be wrapped in, most usual first.
const BLOCK_TAGS: [&str; 8] =
    ["response", "candidate", "item", "option", "reply", "sample", "answer", "choice"];
/// Elements a probability may be in (`<p>` is left out: it is a paragraph).
const PROB_TAGS: [&str; 8] =
    ["probability", "prob", "confidence", "likelihood", "score", "weight", "percentage", "chance"];
/// How many tags are read, bounding the work on long replies.
const MAX_TAGS: usize = 4096;

/// A tag in the text: its name lower-cased with a trailing number dropped (`Response_2` is
/// `response`), its byte range, and the range of its attributes.
struct Tag {
    name: String,
    written: String,
    close: bool,
    self_close: bool,
    start: usize,
    end: usize,
    attrs: (usize, usize),
}

/// The tags of `s`, in order. A `<` that does not start a well-formed tag (`<3`, a cut-off
/// `<probab`) is text.
fn scan_tags(s: &str) -> Vec<Tag> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(rel) = b[i..].iter().position(|&c| c == b'<') {
        let start = i + rel;
        i = start + 1;
        let close = b.get(i) == Some(&b'/');
        let name_start = if close { i + 1 } else { i };
        let mut j = name_start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'-' | b':')) {
            j += 1;
        }
        if j == name_start || !b[name_start].is_ascii_alphabetic() {
            continue;
        }
        let Some(gt) = b[j..].iter().take(1000).position(|&c| c == b'>' || c == b'<') else { continue };
        if b[j + gt] == b'<' {
            continue;
        }
        let end = j + gt + 1;
        let attrs = &s[j..end - 1];
        let written = &s[name_start..j];
        out.push(Tag {
            name: written
                .to_ascii_lowercase()
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '_' || c == '-')
                .to_string(),
            written: written.to_string(),
            close,
            self_close: !close && attrs.trim_end().ends_with('/'),
            start,
            end,
            attrs: (j, end - 1),
        });
        i = end;
        if out.len() >= MAX_TAGS {
            break;
        }
    }
    out
}

/// An element: the index of its opening tag and, when it was closed, of its closing one.
#[derive(Clone, Copy)]
struct Element {
    open: usize,
    close: Option<usize>,
}

/// The outermost elements named `name` (nested ones of the same name belong to them); the
/// last may be unclosed.
fn elements(tags: &[Tag], name: &str) -> Vec<Element> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut open = None;
    for (i, t) in tags.iter().enumerate() {
        if t.name != name {
            continue;
        }
        if t.self_close {
            if depth == 0 {
                out.push(Element { open: i, close: Some(i) });
            }
        } else if !t.close {
            if depth == 0 {
                open = Some(i);
            }
            depth += 1;
        } else if depth > 0 {
            depth -= 1;
            if depth == 0 {
                if let Some(o) = open.take() {
                    out.push(Element { open: o, close: Some(i) });
                }
            }
        }
    }
    if let Some(o) = open {
        out.push(Element { open: o, close: None });
    }
    out
}

/// A child element's content and whether it was complete.
struct Child {
    written: String,
    content: String,
    complete: bool,
    /// Byte range of the whole child, tags included.
    range: (usize, usize),
}

/// The first child named one of `names` among `tags[from..to]`, the parent's content
/// ending at `end`.
fn child(s: &str, tags: &[Tag], from: usize, to: usize, end: usize, names: &[&str]) -> Option<Child> {
    let (i, open) = tags[from..to]
        .iter()
        .enumerate()
        .find(|(_, t)| !t.close && names.contains(&t.name.as_str()))
        .map(|(i, t)| (from + i, t))?;
    if open.self_close {
        return None;
    }
    let close = tags[i + 1..to].iter().find(|t| t.close && t.name == open.name);
    let (content, complete, range_end) = match close {
        Some(c) => (&s[open.end..c.start], true, c.end),
        None => match partial_tag_start(&s[open.end..end]) {
            // `<text>Sure.</te`: the text ended where the closing tag began.
            Some(cut) => (&s[open.end..open.end + cut], true, end),
            None => (&s[open.end..end], false, end),
        },
    };
    Some(Child {
        written: open.written.clone(),
        content: decode_entities(content),
        complete,
        range: (open.start, range_end),
    })
}

/// Where a tag cut off at the end of `s` begins (`... </te`), if one is.
fn partial_tag_start(s: &str) -> Option<usize> {
    let lt = s.rfind('<')?;
    let tail = s[lt + 1..].strip_prefix('/').unwrap_or(&s[lt + 1..]);
    let name_like = tail.chars().next().is_none_or(|c| c.is_ascii_alphabetic())
        && tail.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    name_like.then_some(lt)
}

/// `name="value"` attributes.
fn attributes(s: &str) -> Vec<(String, String)> {
    static ATTR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"([A-Za-z_][\w\-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>/]+))"#).expect("valid regex")
    });
    ATTR.captures_iter(s)
        .map(|c| {
            let v = c.get(2).or(c.get(3)).or(c.get(4)).map_or("", |m| m.as_str());
            (c[1].to_string(), decode_entities(v))
        })
        .collect()
}

/// The five XML entities, numeric character references and CDATA sections.
fn decode_entities(s: &str) -> String {
    let s = s.trim();
    let s = s.strip_prefix("<![CDATA[").and_then(|r| r.strip_suffix("]]>")).unwrap_or(s);
    if !s.contains('&') {
        return s.to_string();
    }
    static ENTITY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"&(amp|lt|gt|quot|apos|#\d{1,7}|#[xX][0-9a-fA-F]{1,6});").expect("valid regex")
    });
    ENTITY
        .replace_all(s, |c: &Captures| {
            let e = &c[1];
            let ch = match e {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ if e.starts_with("#x") || e.starts_with("#X") => {
                    u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
                }
                _ => e[1..].parse::<u32>().ok().and_then(char::from_u32),
            };
            ch.map_or_else(|| c[0].to_string(), String::from)
        })
        .into_owned()
}

/// One candidate read from an element.
struct TagItem {
    text: Option<String>,
    text_key: Option<String>,
    stated: Stated,
    prob_key: Option<String>,
    /// The element was cut off.
    cut: bool,
}

/// Candidates in XML-like tags: `<response>` elements (or `<candidate>`, `<item>`, ...) each
/// with a `<text>` and a `<probability>` (or `<confidence>`, ...) child, a `probability`
/// attribute, or the text as its content; else `<text>` elements each followed by its
/// probability. The element name whose elements carry the most probabilities, then texts,
/// wins, so that `<item><response>..</response><probability>..` is read by `item`.
fn tag_list(body: &str) -> Option<ListFound> {
    if !body.contains('<') {
        return None;
    }
    let tags = scan_tags(body);
    if tags.is_empty() {
        return None;
    }
    let reasoning = REASONING_KEYS.iter().find_map(|name| {
        let el = elements(&tags, name).into_iter().find(|e| e.close.is_some())?;
        let (open, close) = (&tags[el.open], &tags[el.close?]);
        Some(decode_entities(&body[open.end..close.start.max(open.end)])).filter(|r| !r.is_empty())
    });
    let mut best: Option<((usize, usize), Vec<TagItem>)> = None;
    for name in BLOCK_TAGS {
        let items: Vec<TagItem> =
            elements(&tags, name).into_iter().map(|el| tag_item(body, &tags, el, name)).collect();
        let score = (
            items.iter().filter(|i| i.stated.is_value()).count(),
            items.iter().filter(|i| i.text.as_deref().is_some_and(|t| !t.is_empty())).count(),
        );
        if score.1 > 0 && best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, items));
        }
    }
    let items = match best {
        Some((_, items)) => items,
        None => text_elements(body, &tags),
    };
    let mut repairs = vec![Repair::XmlTags];
    let mut out = Vec::new();
    for item in items {
        let Some(text) = item.text.filter(|t| !t.trim().is_empty() && !is_placeholder(t)) else {
            if item.cut {
                repairs.push(Repair::CutOff { dropped: true });
            }
            continue;
        };
        if item.cut {
            repairs.push(Repair::CutOff { dropped: false });
        }
        let mut item_repairs = Vec::new();
        if let Some(key) = item.text_key.filter(|k| !k.eq_ignore_ascii_case("text")) {
            item_repairs.push(Repair::TextKey { key });
        }
        if let Some(key) = item.prob_key.filter(|k| !k.eq_ignore_ascii_case("probability")) {
            item_repairs.push(Repair::ProbabilityKey { key });
        }
        let text = strip_quotes(text.trim()).0.trim().to_string();
        out.push(RawItem { position: out.len(), text, stated: item.stated, repairs: item_repairs });
    }
    (!out.is_empty()).then_some(ListFound { items: out, repairs, reasoning })
}

/// The candidate in one element named `name`.
fn tag_item(s: &str, tags: &[Tag], el: Element, name: &str) -> TagItem {
    let open = &tags[el.open];
    let closed = el.close.is_some();
    let (to, end) = match el.close {
        Some(c) => (c, tags[c].start.max(open.end)),
        None => (tags.len(), s.len()),
    };
    let from = (el.open + 1).min(to);
    let attrs = attributes(&s[open.attrs.0..open.attrs.1]);
    let text_names: Vec<&str> = TEXT_KEYS.iter().copied().filter(|n| *n != name).collect();
    let prob = child(s, tags, from, to, end, &PROB_TAGS);
    let (stated, prob_key, prob_complete) = match &prob {
        Some(p) if p.complete => (number_stated(&p.content), Some(p.written.clone()), true),
        Some(p) => (Stated::Missing, Some(p.written.clone()), false),
        None => match attrs.iter().find(|(k, _)| PROB_KEYS.contains(&k.to_ascii_lowercase().as_str())) {
            Some((k, v)) => (number_stated(v), Some(k.clone()), true),
            None => (Stated::Missing, None, false),
        },
    };
    let (text, text_key) = match child(s, tags, from, to, end, &text_names) {
        Some(c) if c.complete => (Some(c.content), Some(c.written)),
        Some(_) => (None, None),
        None => match attrs.iter().find(|(k, _)| text_names.contains(&k.to_ascii_lowercase().as_str())) {
            Some((k, v)) => (Some(v.clone()), Some(k.clone())),
            None if open.self_close => (None, None),
            None => (content_text(s, tags, from, to, open.end, end, prob.as_ref(), closed), None),
        },
    };
    let cut = !closed;
    let stated = if cut && !prob_complete { Stated::Missing } else { stated };
    TagItem { text, text_key, stated, prob_key, cut }
}

/// An element's own text: its content without the probability child and without tags;
/// `None` when the element was cut off before its text was known to be complete.
#[allow(clippy::too_many_arguments)]
fn content_text(
    s: &str,
    tags: &[Tag],
    from: usize,
    to: usize,
    start: usize,
    end: usize,
    prob: Option<&Child>,
    closed: bool,
) -> Option<String> {
    let end = match (closed, prob) {
        (true, _) => end,
        // Cut off after the text: it ended where the probability began.
        (false, Some(p)) => p.range.0,
        (false, None) => start + partial_tag_start(&s[start..end])?,
    };
    let mut text = String::new();
    let mut pos = start;
    for t in &tags[from..to] {
        if t.start >= end {
            break;
        }
        if t.start < pos {
            continue;
        }
        text.push_str(&s[pos..t.start]);
        pos = match prob {
            Some(p) if p.range.0 == t.start => p.range.1.min(end).max(t.end),
            _ => t.end,
        };
    }
    if pos < end {
        text.push_str(&s[pos..end]);
    }
    Some(decode_entities(&text))
}

/// `<text>` elements with no wrapper, each followed by its probability element.
fn text_elements(s: &str, tags: &[Tag]) -> Vec<TagItem> {
    let texts = elements(tags, "text");
    let mut out = Vec::new();
    for (n, el) in texts.iter().enumerate() {
        let open = &tags[el.open];
        let next = texts.get(n + 1).map_or(tags.len(), |e| e.open);
        let (content, complete) = match el.close {
            Some(c) => (decode_entities(&s[open.end..tags[c].start.max(open.end)]), true),
            None => match partial_tag_start(&s[open.end..]) {
                Some(cut) => (decode_entities(&s[open.end..open.end + cut]), true),
                None => (String::new(), false),
            },
        };
        let after = el.close.map_or(tags.len(), |c| c + 1);
        let prob = child(
            s,
            tags,
            after.min(next),
            next,
            if next < tags.len() { tags[next].start } else { s.len() },
            &PROB_TAGS,
        );
        let (stated, prob_key, prob_cut) = match prob {
            Some(p) if p.complete => (number_stated(&p.content), Some(p.written), false),
            Some(p) => (Stated::Missing, Some(p.written), true),
            None => (Stated::Missing, None, false),
        };
        out.push(TagItem {
            text: complete.then_some(content),
            text_key: Some(open.written.clone()),
            stated,
            prob_key,
            cut: !complete || prob_cut,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Probabilities written in prose

/// A probability as written next to a text: an optional label (`probability:`, `p=`,
/// `confidence`), a number, an optional `%`, an optional trailing word (`40% chance`).
const SPEC: &str = r"(?P<label>(?:estimated\s+|verbali[sz]ed\s+)?(?:probability|prob\.?|p|confidence|conf\.?|likelihood|chance|weight|score)\s*(?:[:=≈~]|is|of)?\s*)?(?:about|approx\.?|approximately|around|~|≈)?\s*(?P<num>\d{1,3}(?:\.\d+)?|\.\d+)\s*(?P<pct>%|percent)?(?P<word>\s*(?:probability|prob\.?|chance|likely|likelihood|confidence))?";

fn spec_regex(pattern: &str) -> Regex {
    Regex::new(&pattern.replace("SPEC", SPEC)).expect("valid regex")
}

/// `... (0.4)`, `... [40%]`, `... (probability: 0.4)` at the end of a text.
static TRAIL_BRACKET: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(r"(?i)\s*[*_]*\s*[\(\[\{]\s*[*_]*\s*SPEC\s*[*_]*\s*[\)\]\}]\s*[*_]*\s*[.,;!]?\s*[*_]*\s*$")
});
/// `... — 40%`, `... | p = 0.4`, `..., probability: 0.4` at the end of a text.
static TRAIL_SEP: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(r"(?i)(?P<sep>\s*[-–—|~:,;→]+|\s*=>|\s*->|\s)\s*[*_]*\s*SPEC\s*[*_]*\s*[.,;!]?\s*$")
});
/// `(0.4) ...`, `[40%] ...` before a text.
static LEAD_BRACKET: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(r"(?i)^[*_]*\s*[\(\[\{]\s*[*_]*\s*SPEC\s*[*_]*\s*[\)\]\}]\s*[*_]*\s*[:\-–—|]?\s*[*_]*\s*")
});
/// `0.4 — ...`, `40%: ...`, `Probability 0.4: ...` before a text.
static LEAD_SEP: LazyLock<Regex> =
    LazyLock::new(|| spec_regex(r"(?i)^[*_]*\s*SPEC\s*[*_]*\s*(?:[:\-–—|]|->|→)\s*[*_]*\s*"));
/// What may follow a quoted text: its probability in any form.
static AFTER_QUOTE: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(
        r"(?i)^[*_]*\s*(?:[-–—|:,;→~]+\s*)?[*_]*\s*[\(\[\{]?\s*[*_]*\s*SPEC\s*[*_]*\s*[\)\]\}]?\s*[*_]*\s*[.,;!]?\s*$",
    )
});
/// A line that is only a probability: `(0.4)`, `40%`, `*p = 0.4*`.
static BARE_PROB: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(r"(?i)^[*_]*\s*[\(\[\{]?\s*[*_]*\s*SPEC\s*[*_]*\s*[\)\]\}]?\s*[*_]*\s*[.,;]?$")
});
/// A value that starts with a number: `0.4`, `40%`, `~0.4 (fairly likely)`, `**0.4**`.
static VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[*_\s\(\[~≈]*(?:about|approx\.?|approximately|around)?\s*(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<pct>%|percent)?")
        .expect("valid regex")
});

/// The probability a match of one of the regexes above states, and whether it is clearly a
/// probability (labelled, a percentage, or a decimal) rather than any number.
fn stated_from(c: &Captures) -> Option<(Stated, bool)> {
    let num = c.name("num")?.as_str();
    let v: f64 = num.parse().ok()?;
    let percent = c.name("pct").is_some();
    let clear = c.name("label").is_some() || percent || c.name("word").is_some() || num.contains('.');
    Some((Stated::Value { v, percent }, clear))
}

/// A probability value as written in a tag, a table cell or after a `Probability:` label:
/// the number it starts with (a `%` makes it a percentage); no number is invalid, nothing
/// is missing.
fn number_stated(s: &str) -> Stated {
    let t = s.trim();
    if t.is_empty() {
        return Stated::Missing;
    }
    match VALUE
        .captures(t)
        .and_then(|c| Some((c.name("num")?.as_str().parse::<f64>().ok()?, c.name("pct").is_some())))
    {
        Some((v, percent)) if v.is_finite() => Stated::Value { v, percent },
        _ => Stated::Invalid(t.to_string()),
    }
}

/// An item's text and the probability written before it, after it (bracketed, after a
/// separator, or labelled), or after its closing quote; the text is cleaned of emphasis,
/// quotes and a style label.
fn split_item(s: &str, repairs: &mut Vec<Repair>) -> (String, Stated) {
    let t = s.trim();
    // Every probability has a digit; looking for one first keeps prose cheap.
    if !digit_near(t, true) && !digit_near(t, false) {
        return (clean_text(t, false, repairs), Stated::Missing);
    }
    for re in [&*LEAD_BRACKET, &*LEAD_SEP].into_iter().filter(|_| digit_near(t, true)) {
        if let Some(c) = re.captures(t) {
            let rest = &t[c.get(0).map_or(0, |m| m.end())..];
            if let Some((stated, true)) = stated_from(&c).filter(|_| !rest.trim().is_empty()) {
                return (clean_text(rest, false, repairs), stated);
            }
        }
    }
    if let Some((inner, stated)) = quoted_then_spec(t) {
        return (clean_text(inner, false, repairs), stated);
    }
    if !digit_near(t, false) {
        return (clean_text(t, false, repairs), Stated::Missing);
    }
    if let Some(c) = TRAIL_BRACKET.captures(t) {
        let start = c.get(0).map_or(t.len(), |m| m.start());
        if let Some((stated, true)) = stated_from(&c).filter(|_| !t[..start].trim().is_empty()) {
            return (clean_text(&t[..start], true, repairs), stated);
        }
    }
    if let Some(c) = TRAIL_SEP.captures(t) {
        let start = c.get(0).map_or(t.len(), |m| m.start());
        let spaced = c.name("sep").is_some_and(|m| m.as_str().trim().is_empty());
        let labelled = c.name("label").is_some();
        if let Some((stated, clear)) = stated_from(&c).filter(|_| !t[..start].trim().is_empty()) {
            if if spaced { labelled } else { clear } {
                // `Sure (probability: 0.4` with its bracket never closed.
                let text = cut_bracket_start(&t[..start]).map_or(&t[..start], |o| &t[..o]);
                if !text.trim().is_empty() {
                    return (clean_text(text, true, repairs), stated);
                }
            }
        }
    }
    (clean_text(t, false, repairs), Stated::Missing)
}

/// Whether a digit is among the first (`start`) or last 48 bytes of `t`, where a probability
/// written with a text would be.
fn digit_near(t: &str, start: bool) -> bool {
    let b = t.as_bytes();
    let window = if start { &b[..b.len().min(48)] } else { &b[b.len().saturating_sub(48)..] };
    window.iter().any(u8::is_ascii_digit)
}

/// Whether `t`, after emphasis, brackets and heading marks, starts with one of `words`
/// (case-insensitive): a cheap test before a label regex.
fn starts_with_word(t: &str, words: &[&str]) -> bool {
    let t = t.trim_start_matches(|c: char| matches!(c, '*' | '_' | '#' | '(' | '[') || c.is_whitespace());
    let head = t.as_bytes();
    words.iter().any(|w| head.len() >= w.len() && head[..w.len()].eq_ignore_ascii_case(w.as_bytes()))
}

/// Words a `Response 1:` label starts with.
const LABEL_WORDS: [&str; 9] =
    ["response", "reply", "option", "candidate", "answer", "choice", "sample", "variant", "alternative"];
/// Words a `key: value` line starts with.
const KEY_WORDS: [&str; 18] = [
    "estimated",
    "verbali",
    "prob",
    "p",
    "confidence",
    "likelihood",
    "chance",
    "weight",
    "score",
    "percentage",
    "text",
    "response",
    "reply",
    "content",
    "answer",
    "message",
    "utterance",
    "output",
];

/// `"Sure, I'll give $1." 0.4`: a quoted text with nothing after it but a probability.
fn quoted_then_spec(t: &str) -> Option<(&str, Stated)> {
    let body = t.trim_start_matches(['*', '_']);
    let open = body.chars().next()?;
    let close = match open {
        '"' => '"',
        '\u{201c}' => '\u{201d}',
        '\u{201e}' => '\u{201c}',
        '\u{ab}' => '\u{bb}',
        '\'' => '\'',
        '\u{2018}' => '\u{2019}',
        _ => return None,
    };
    let inner_start = open.len_utf8();
    let close_at = body[inner_start..].rfind(close)? + inner_start;
    let inner = &body[inner_start..close_at];
    let rest = &body[close_at + close.len_utf8()..];
    if inner.trim().is_empty() || rest.trim().trim_matches(['*', '_']).is_empty() {
        return None;
    }
    let c = AFTER_QUOTE.captures(rest)?;
    let (stated, _) = stated_from(&c)?;
    Some((inner, stated))
}

/// A list item's text without emphasis, surrounding quotes or a style label; `after_spec`:
/// a probability was cut from its end, so separators left there go too.
fn clean_text(s: &str, after_spec: bool, repairs: &mut Vec<Repair>) -> String {
    let mut t = s.trim();
    if after_spec {
        t = t.trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, '-' | '–' | '—' | '|' | ',' | ';' | ':' | '→' | '~')
        });
    }
    if let Some((label, rest)) = style_label(t) {
        repairs.push(Repair::TextLabel { label: label.to_string() });
        t = rest;
    }
    let t = t.trim_matches(|c: char| c == '*' || c.is_whitespace());
    let t = match t.strip_prefix('_').and_then(|r| r.strip_suffix('_')) {
        Some(inner) if !inner.contains('_') => inner.trim(),
        _ => t,
    };
    strip_quotes(t).0.trim().to_string()
}

/// A short label before the text proper: `**Warm:** Sure!`, `**Warm** — Sure!`, a bold line
/// above the text, or `Warm: "Sure!"`.
fn style_label(t: &str) -> Option<(&str, &str)> {
    static BOLD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?s)^(?:\*\*|__)(?P<label>[^*_\n]{1,60}?)(?::\s*(?:\*\*|__)|\s*(?:\*\*|__)\s*[:\-–—]|\s*(?:\*\*|__)\s*\n)\s*(?P<rest>\S.*)$")
            .expect("valid regex")
    });
    static QUOTED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"(?s)^(?P<label>[A-Za-z][A-Za-z /&'-]{0,40}?)\s*:\s*(?P<rest>["“].*["”])$"#)
            .expect("valid regex")
    });
    let bold = t.starts_with("**") || t.starts_with("__");
    let quoted = t.contains(':') && t.ends_with(['"', '\u{201d}']);
    for re in [(&*BOLD, bold), (&*QUOTED, quoted)].into_iter().filter(|(_, may)| *may).map(|(re, _)| re) {
        if let Some(c) = re.captures(t) {
            let (label, rest) = (c.name("label")?, c.name("rest")?);
            let l = label.as_str().trim();
            if !l.is_empty() && !l.ends_with(['.', '!', '?']) && l.split_whitespace().count() <= 6 {
                return Some((l, rest.as_str()));
            }
        }
    }
    None
}

/// Where a probability cut off at the end of `text` begins (`... (0.`, `... (prob`,
/// `... —`), if one does.
fn cut_spec_start(text: &str) -> Option<usize> {
    let t = text.trim_end();
    if let Some(o) = cut_bracket_start(t) {
        return Some(o);
    }
    [" - ", " — ", " – ", " | ", "—", "–", " -", " |"]
        .iter()
        .filter_map(|sep| t.rfind(sep).map(|i| (i, i + sep.len())))
        .max_by_key(|(i, _)| *i)
        .filter(|(_, after)| is_partial_spec(&t[*after..]))
        .map(|(i, _)| i)
}

/// Where a bracketed probability never closed begins (`... (0.4`, `... (prob`), if one does.
fn cut_bracket_start(text: &str) -> Option<usize> {
    let t = text.trim_end();
    let o = t.rfind(['(', '[', '{'])?;
    (!t[o..].contains([')', ']', '}']) && is_partial_spec(&t[o + 1..])).then_some(o)
}

/// The start of a probability: a label or part of one, then part of a number.
fn is_partial_spec(s: &str) -> bool {
    const WORDS: [&str; 6] = ["probability", "prob", "confidence", "likelihood", "chance", "p"];
    let s = s.trim().trim_start_matches(['*', '_']).trim_start().to_ascii_lowercase();
    let letters = s.chars().take_while(|c| c.is_ascii_alphabetic()).count();
    let (word, rest) = s.split_at(letters);
    if !word.is_empty() && !WORDS.iter().any(|w| w.starts_with(word)) {
        return false;
    }
    if !word.is_empty() && !WORDS.contains(&word) && !rest.is_empty() {
        return false;
    }
    rest.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | ':' | '=' | '~' | '.' | '%'))
}

/// A text that is a field name or the start of one (`t`, `respon`, `probability`): what is
/// left of a `key: value` line cut inside its key.
fn is_key_start(text: &str) -> bool {
    let t = text.trim().to_ascii_lowercase();
    !t.is_empty()
        && t.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
        && TEXT_KEYS.iter().chain(PROB_KEYS.iter()).any(|k| k.starts_with(t.as_str()))
}

/// Whether a text looks cut off: an unclosed quote, or an end mid-sentence.
fn looks_cut(text: &str) -> bool {
    let t = text.trim_end();
    let Some(last) = t.chars().last() else { return true };
    let opened = t.starts_with(['"', '\u{201c}']) && !t[1..].contains(['"', '\u{201d}']);
    opened || last.is_alphanumeric() || matches!(last, ',' | ';' | ':' | '-' | '–' | '—' | '(' | '$' | '\'')
}

// ---------------------------------------------------------------------------------------
// Markdown tables

/// A table row's cells, and whether the row ended with a `|`.
fn table_cells(line: &str) -> (Vec<String>, bool) {
    let t = line.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let closed = t.ends_with('|') && !t.ends_with("\\|");
    let t = if closed { &t[..t.len() - 1] } else { t };
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cell).trim().to_string()),
            c => cell.push(c),
        }
    }
    cells.push(cell.trim().to_string());
    (cells, closed)
}

fn is_separator_row(line: &str) -> bool {
    let t = line.trim();
    if !t.contains('-') || !(t.contains('|') || t.starts_with(['-', ':'])) {
        return false;
    }
    let (cells, _) = table_cells(t);
    !cells.is_empty()
        && cells.iter().all(|c| {
            let c = c.trim().trim_start_matches(':').trim_end_matches(':');
            !c.is_empty() && c.chars().all(|ch| ch == '-')
        })
}

/// Cell `j` of a row, empty when the row is short.
fn cell(row: &(Vec<String>, bool), j: usize) -> &str {
    row.0.get(j).map_or("", String::as_str)
}

/// A header cell lower-cased, without emphasis.
fn header_name(h: &str) -> String {
    h.trim().trim_matches(['*', '_', '`']).trim().to_ascii_lowercase()
}

fn is_prob_header(h: &str) -> bool {
    h == "p"
        || h == "pr"
        || ["prob", "likelihood", "confidence", "chance", "weight", "score", "percent", "%"]
            .iter()
            .any(|w| h.contains(w))
}

fn is_text_header(h: &str) -> bool {
    [
        "response",
        "text",
        "reply",
        "candidate",
        "content",
        "answer",
        "message",
        "utterance",
        "output",
        "option",
        "statement",
        "what",
    ]
    .iter()
    .any(|w| h.contains(w))
}

/// Candidates in a markdown table: the first table (a header row, a `|---|` row, data rows)
/// with a text column (named like `response` or `text`, else the widest one that is not a
/// number) and a probability column (named like `probability`, else the one whose every
/// cell is a decimal or a percentage). A last row cut off keeps its text when the text cell
/// was complete.
fn table_list(body: &str) -> Option<ListFound> {
    if !body.contains('|') {
        return None;
    }
    let lines: Vec<&str> = body.lines().collect();
    let ends_cut = !body.ends_with(['\n', '\r']);
    for i in 1..lines.len() {
        if !is_separator_row(lines[i]) || !lines[i - 1].contains('|') {
            continue;
        }
        let (header, header_closed) = table_cells(lines[i - 1]);
        if header.len() < 2 {
            continue;
        }
        let rows: Vec<(Vec<String>, bool)> = lines[i + 1..]
            .iter()
            .take_while(|l| l.contains('|') && !l.trim().is_empty())
            .map(|l| table_cells(l))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let last_is_end = i + rows.len() == lines.len() - 1 && ends_cut;
        let names: Vec<String> = header.iter().map(|h| header_name(h)).collect();
        let numeric_col = |j: usize| {
            let mut any_clear = false;
            let all = rows.iter().filter(|r| !cell(r, j).is_empty()).all(|r| {
                let c = cell(r, j).trim_matches(['*', '_']);
                any_clear |= c.contains(['.', '%']);
                number_stated(c).is_value() && c.len() <= 24
            });
            all && any_clear
        };
        let prob_col = names
            .iter()
            .position(|n| is_prob_header(n))
            .or_else(|| (0..header.len()).find(|&j| numeric_col(j)));
        let text_col =
            names.iter().enumerate().position(|(j, n)| Some(j) != prob_col && is_text_header(n)).or_else(
                || {
                    (0..header.len())
                        .filter(|&j| {
                            Some(j) != prob_col && !rows.iter().all(|r| number_stated(cell(r, j)).is_value())
                        })
                        .max_by_key(|&j| rows.iter().map(|r| cell(r, j).len()).sum::<usize>())
                },
            );
        let Some(text_col) = text_col else { continue };
        let mut repairs = vec![Repair::MarkdownTable];
        let mut items = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            let (cells, closed) = row;
            let partial = r + 1 == rows.len()
                && last_is_end
                && ((header_closed && !closed) || cells.len() < header.len());
            // In a cut row only the cells before the last are complete.
            let complete = |j: usize| !partial || j + 1 < cells.len();
            if !complete(text_col) {
                repairs.push(Repair::CutOff { dropped: true });
                continue;
            }
            let mut item_repairs = Vec::new();
            let text = clean_text(cell(row, text_col), false, &mut item_repairs);
            if text.is_empty() || is_placeholder(&text) {
                continue;
            }
            let stated = match prob_col {
                Some(j) if complete(j) => number_stated(cell(row, j).trim_matches(['*', '_'])),
                _ => Stated::Missing,
            };
            if partial {
                repairs.push(Repair::CutOff { dropped: false });
            }
            items.push(RawItem { position: items.len(), text, stated, repairs: item_repairs });
        }
        if !items.is_empty() {
            return Some(ListFound { items, repairs, reasoning: None });
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Lists, labelled blocks and YAML-like entries

/// How many lines are read, bounding the work on long replies.
const MAX_LINES: usize = 2000;
/// How far ahead a line of text looks for its item's probability line.
const MAX_LOOKAHEAD: usize = 20;

/// How a list item was introduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// `1.`, `1)`, `(1)`, `[1]`, `1:`, `**1.**`
    Number,
    /// `-`, `*`, `•`, `+`, ...
    Bullet,
    /// `Response 1:`, `**Option A**`, `### Response 2 (0.3)`
    Label,
    /// `Text: ...` or `Probability: ...` with no marker.
    Key,
    /// A probability first: `0.4 - ...`, `[40%] ...`.
    Lead,
    /// No marker: a line that ends with its probability (`Sure. (0.4)`), or is followed by
    /// a line that is only one.
    Plain,
}

/// Which field a `key: value` line gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Text,
    Prob,
}

static NUMBER_MARK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[*_]{0,2}[\(\[]?(?:(?P<n>\d{1,3})(?:[.)\]:]|\s+[-–—])|(?P<l>[A-Ha-h])[.)\]])[*_]{0,2}(?:\s+(?P<rest>.*))?$")
        .expect("valid regex")
});
static BULLET_MARK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[-*•–—+·▪►◦➤]\s+(?P<rest>.*)$").expect("valid regex"));
static LABEL_MARK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:#{1,6}\s*)?[*_]{0,3}\s*(?:response|reply|option|candidate|answer|choice|sample|variant|alternative)(?:\s*#?\s*(?P<n>\d{1,3})|(?:\s+|\s*#\s*|_)(?P<l>(?-i:[A-H])))\b\s*[*_]{0,3}\s*(?:[\(\[](?P<spec>[^\)\]]*)[\)\]])?\s*[*_]{0,3}\s*(?:[:.)\-–—]+|$)\s*[*_]{0,3}\s*(?P<rest>.*)$")
        .expect("valid regex")
});
static KEY_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[*_\(\[\s]*(?P<key>estimated probability|verbali[sz]ed probability|probability|prob|p|confidence|likelihood|chance|weight|score|percentage|text|response|reply|content|answer|message|utterance|output|candidate)\s*[*_]*\s*[:=]\s*[*_]*\s*(?P<value>.*)$")
        .expect("valid regex")
});

/// A line's list marker: its kind, number, the rest of the line, and a probability written
/// in a label (`Response 1 (0.3):`).
fn classify(t: &str) -> Option<(Mark, Option<u32>, &str, Option<&str>)> {
    let (mark, number, rest) = if let Some(c) = NUMBER_MARK.captures(t) {
        (Mark::Number, mark_number(&c), c.name("rest").map_or("", |m| m.as_str()))
    } else if let Some(c) = BULLET_MARK.captures(t) {
        (Mark::Bullet, None, c.name("rest").map_or("", |m| m.as_str()))
    } else if let Some(c) = starts_with_word(t, &LABEL_WORDS).then(|| LABEL_MARK.captures(t)).flatten() {
        let spec = c.name("spec").map(|m| m.as_str());
        return Some((Mark::Label, mark_number(&c), c.name("rest").map_or("", |m| m.as_str()), spec));
    } else if let Some(lead) =
        digit_near(t, true).then(|| LEAD_BRACKET.captures(t).or_else(|| LEAD_SEP.captures(t))).flatten()
    {
        // `0.4 - Sure.`: the probability is the marker; the line stays whole for `split_item`.
        let rest = &t[lead.get(0).map_or(0, |m| m.end())..];
        return match stated_from(&lead) {
            Some((_, true)) if !rest.trim().is_empty() => Some((Mark::Lead, None, t, None)),
            _ => None,
        };
    } else {
        return None;
    };
    // `- Response 1: ...`: a label after the marker.
    match starts_with_word(rest, &LABEL_WORDS).then(|| LABEL_MARK.captures(rest)).flatten() {
        Some(c) => {
            let spec = c.name("spec").map(|m| m.as_str());
            Some((mark, number, c.name("rest").map_or("", |m| m.as_str()), spec))
        }
        None => Some((mark, number, rest, None)),
    }
}

/// A marker's number: `n` as written, or letter `l` counted from `a` as 1.
fn mark_number(c: &Captures) -> Option<u32> {
    match (c.name("n"), c.name("l")) {
        (Some(n), _) => n.as_str().parse().ok(),
        (None, Some(l)) => {
            l.as_str().chars().next().map(|ch| ch.to_ascii_lowercase() as u32 - 'a' as u32 + 1)
        }
        _ => None,
    }
}

/// `Probability: 0.4`, `**Text:** ...`: the field, the key as written, the value.
fn key_line(t: &str) -> Option<(KeyKind, &str, &str)> {
    if !starts_with_word(t, &KEY_WORDS) {
        return None;
    }
    let c = KEY_LINE.captures(t)?;
    let key = c.name("key")?.as_str();
    let lower = key.to_ascii_lowercase();
    let kind = if TEXT_KEYS.contains(&lower.as_str()) { KeyKind::Text } else { KeyKind::Prob };
    let value = c.name("value").map_or("", |m| m.as_str());
    Some((kind, key, value))
}

/// A line that is only a probability (`(0.4)`, `40%`, `*p = 0.4*`).
fn bare_prob_line(t: &str) -> Option<Stated> {
    let c = BARE_PROB.captures(t)?;
    match stated_from(&c)? {
        (stated, true) => Some(stated),
        _ => None,
    }
}

/// A cut-off start of a probability label on the last line (`Probab`).
fn is_label_prefix(t: &str) -> bool {
    let w = t
        .trim_matches(|c: char| matches!(c, '*' | '_' | '-' | '(' | '[') || c.is_whitespace())
        .to_ascii_lowercase();
    !w.is_empty()
        && w.chars().all(|c| c.is_ascii_alphabetic())
        && ["probability", "confidence", "likelihood"].iter().any(|l| l.starts_with(w.as_str()))
}

/// One item while lines are read.
struct LineItem {
    mark: Mark,
    indent: usize,
    number: Option<u32>,
    lines: Vec<String>,
    text_key: Option<String>,
    /// The text is still to come on the next lines (`Response 1:` alone, `text: |`).
    open_text: bool,
    /// YAML folded (`>`) text is joined with spaces.
    folded: bool,
    stated: Stated,
    prob_key: Option<String>,
    /// The probability was cut off at the end of the reply.
    prob_cut: bool,
    last_line: usize,
    /// The first line read as text and probability, while it is the only line.
    first: Option<(String, Stated, Vec<Repair>)>,
}

impl LineItem {
    fn new(mark: Mark, indent: usize, number: Option<u32>, line: usize) -> Self {
        LineItem {
            mark,
            indent,
            number,
            lines: Vec::new(),
            text_key: None,
            open_text: false,
            folded: false,
            stated: Stated::Missing,
            prob_key: None,
            prob_cut: false,
            last_line: line,
            first: None,
        }
    }

    fn has_text(&self) -> bool {
        self.lines.iter().any(|l| !l.trim().is_empty())
    }

    /// Whether the item has its probability, on a line of its own or written with its text.
    fn has_prob(&self) -> bool {
        self.stated.is_value() || self.first.as_ref().is_some_and(|(_, s, _)| s.is_value())
    }

    /// Adds a line of text.
    fn push_line(&mut self, line: &str) {
        self.first = if self.lines.is_empty() {
            let mut repairs = Vec::new();
            let (text, stated) = split_item(line, &mut repairs);
            Some((text, stated, repairs))
        } else {
            None
        };
        self.lines.push(line.to_string());
        self.open_text = false;
    }

    fn set_text(&mut self, value: &str) {
        let v = value.trim();
        if matches!(v, "|" | "|-" | "|+" | ">" | ">-" | ">+") {
            self.open_text = true;
            self.folded = v.starts_with('>');
        } else if v.is_empty() {
            self.open_text = true;
        } else {
            self.push_line(v);
        }
    }

    /// Takes a `Probability:` value; one cut off at the end of the reply (`0.`, empty) is
    /// recorded as cut rather than read.
    fn set_prob(&mut self, key: &str, value: &str, at_cut_end: bool) {
        let v = value.trim().trim_matches(['*', '_']);
        self.prob_key = Some(key.to_string());
        if at_cut_end
            && (v.is_empty() || (v.ends_with('.') && v.chars().all(|c| c.is_ascii_digit() || c == '.')))
        {
            self.prob_cut = true;
            self.stated = Stated::Missing;
        } else {
            self.stated = number_stated(v);
        }
    }
}

/// The items of `lines`, by marker, key lines and continuation lines; prose that belongs to
/// no item is skipped.
fn line_items(lines: &[&str], cut_end: bool) -> Vec<LineItem> {
    let last_nonblank = lines.iter().rposition(|l| !l.trim().is_empty()).unwrap_or(0);
    let mut items: Vec<LineItem> = Vec::new();
    let mut cur: Option<usize> = None;
    let mut gap = false;
    // The line just before, when it was prose.
    let mut prose_line: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            gap = true;
            continue;
        }
        let at = At {
            line: i,
            indent: line
                .chars()
                .take_while(|c| c.is_whitespace())
                .map(|c| if c == '\t' { 4 } else { 1 })
                .sum(),
            cut_end: cut_end && i == last_nonblank,
        };
        let c = cur.filter(|&c| c < items.len());
        let before = std::mem::replace(&mut gap, false);
        if let Some((mark, number, rest, spec)) = classify(t) {
            let key = if matches!(mark, Mark::Label | Mark::Lead) { None } else { key_line(rest) };
            cur = Some(match key {
                Some(kv) => key_into(&mut items, c, mark, number, &at, kv, None),
                None => marked_into(&mut items, c, mark, number, &at, rest, spec),
            });
            continue;
        }
        let after_prose = prose_line.filter(|&p| p + 1 == i && c.is_none()).map(|p| lines[p].trim());
        if let Some(kv) = key_line(t) {
            cur = Some(key_into(&mut items, c, Mark::Key, None, &at, kv, after_prose));
            continue;
        }
        if let (Some(text), Some(stated)) = (after_prose, bare_prob_line(t)) {
            // `Sure, I'd give.` then `(probability: 0.3)` below it.
            let mut item = LineItem::new(Mark::Plain, at.indent, None, i - 1);
            item.push_line(text);
            item.stated = stated;
            item.last_line = i;
            items.push(item);
            cur = Some(items.len() - 1);
            continue;
        }
        if let Some(c) = c.filter(|&c| prose_into(&mut items[c], lines, t, &at, before)) {
            items[c].last_line = i;
            continue;
        }
        if ends_with_prob(t) {
            let mut item = LineItem::new(Mark::Plain, at.indent, None, i);
            item.push_line(t);
            items.push(item);
            cur = Some(items.len() - 1);
            continue;
        }
        // Prose: it ends the item before it.
        cur = None;
        prose_line = Some(i);
    }
    items
}

/// Where a line is: its index, its indentation, and whether the reply was cut off on it.
struct At {
    line: usize,
    indent: usize,
    cut_end: bool,
}

/// A `key: value` line: its field for the current item when that lacks it, else a new item
/// introduced by `mark`. A probability line right after a line of prose (`after_prose`)
/// makes that prose an item. Returns the item the line went to.
fn key_into(
    items: &mut Vec<LineItem>,
    cur: Option<usize>,
    mark: Mark,
    number: Option<u32>,
    at: &At,
    (kind, key, value): (KeyKind, &str, &str),
    after_prose: Option<&str>,
) -> usize {
    match (kind, cur) {
        (KeyKind::Prob, Some(c)) if !items[c].has_prob() && !items[c].prob_cut => {
            items[c].set_prob(key, value, at.cut_end);
            items[c].last_line = at.line;
            return c;
        }
        (KeyKind::Text, Some(c)) if !items[c].has_text() && !items[c].open_text => {
            items[c].set_text(value);
            items[c].text_key = Some(key.to_string());
            items[c].last_line = at.line;
            return c;
        }
        _ => {}
    }
    let mut item = match (kind, after_prose) {
        (KeyKind::Prob, Some(text)) => {
            // `Sure, I'd give.` then `Probability: 0.3` below it.
            let mut item = LineItem::new(Mark::Plain, at.indent, None, at.line - 1);
            item.push_line(text);
            item
        }
        _ => LineItem::new(mark, at.indent, number, at.line),
    };
    match kind {
        KeyKind::Prob => item.set_prob(key, value, at.cut_end),
        KeyKind::Text => {
            item.set_text(value);
            item.text_key = Some(key.to_string());
        }
    }
    item.last_line = at.line;
    items.push(item);
    items.len() - 1
}

/// A line with a list marker and no key: the text of the current item when that has none
/// yet (`Response 1:` then `- Sure, ...`), a note under it (a deeper bullet, skipped), or a
/// new item. Returns the item the line went to.
fn marked_into(
    items: &mut Vec<LineItem>,
    cur: Option<usize>,
    mark: Mark,
    number: Option<u32>,
    at: &At,
    rest: &str,
    spec: Option<&str>,
) -> usize {
    if let Some(c) = cur {
        let it = &items[c];
        if !it.has_text() && (it.open_text || it.mark != mark || at.indent > it.indent) {
            items[c].push_line(rest);
            items[c].last_line = at.line;
            return c;
        }
        if mark == Mark::Bullet && it.mark != Mark::Bullet && at.indent > it.indent {
            return c;
        }
    }
    let mut item = LineItem::new(mark, at.indent, number, at.line);
    item.set_text(rest);
    if mark != Mark::Label && rest.trim().is_empty() {
        item.open_text = true;
    }
    if let Some(stated) = spec.and_then(|s| stated_from(&BARE_PROB.captures(s.trim())?).map(|(st, _)| st)) {
        item.stated = stated;
    }
    items.push(item);
    items.len() - 1
}

/// A line without marker or key, for the current item: a probability cut off at the end of
/// the reply (`Probab`), its probability alone (`(0.4)`), or more of its text, which is
/// taken while the item still waits for its text, or, with no blank line between, when the
/// line is indented deeper or the item's probability is yet to come. `gap`: a blank line
/// came before. Returns whether the line was taken.
fn prose_into(item: &mut LineItem, lines: &[&str], t: &str, at: &At, gap: bool) -> bool {
    if at.cut_end && item.has_text() && item.stated.is_missing() && is_label_prefix(t) {
        item.prob_cut = true;
        return true;
    }
    if item.has_text() && !item.has_prob() && !gap {
        if let Some(stated) = bare_prob_line(t) {
            item.stated = stated;
            return true;
        }
    }
    let continues = if !item.has_text() {
        item.open_text && (!gap || item.mark == Mark::Label)
    } else {
        !gap && (at.indent > item.indent
            || (!item.has_prob() && (prob_line_follows(lines, at.line) || ends_with_prob(t))))
    };
    if continues {
        item.push_line(t);
    }
    continues
}

/// Whether a line ends with a probability (`... (0.4)`): the last line of an item's text.
fn ends_with_prob(t: &str) -> bool {
    split_item(t, &mut Vec::new()).1.is_value()
}

/// Whether a probability line for the current item comes before the next item or blank.
fn prob_line_follows(lines: &[&str], i: usize) -> bool {
    for line in lines.iter().skip(i + 1).take(MAX_LOOKAHEAD) {
        let t = line.trim();
        if t.is_empty() {
            return false;
        }
        if let Some((mark, _, rest, _)) = classify(t) {
            return mark != Mark::Label && matches!(key_line(rest), Some((KeyKind::Prob, _, _)));
        }
        match key_line(t) {
            Some((KeyKind::Prob, _, _)) => return true,
            Some((KeyKind::Text, _, _)) => return false,
            None => {}
        }
        if bare_prob_line(t).is_some() {
            return true;
        }
    }
    false
}

/// One item read off its lines.
struct LineCandidate {
    mark: Mark,
    indent: usize,
    number: Option<u32>,
    text: String,
    stated: Stated,
    repairs: Vec<Repair>,
    keyed: bool,
    prob_cut: bool,
    last_line: usize,
    /// The item's lines as written, when its probability was looked for in them.
    raw: Option<String>,
}

fn line_candidate(item: LineItem) -> LineCandidate {
    let joined = if item.folded { item.lines.join(" ") } else { item.lines.join("\n") };
    let mut repairs = Vec::new();
    let searched = item.stated.is_missing() && !item.prob_cut;
    let (text, stated) = if searched {
        match item.first {
            Some((text, stated, first_repairs)) if item.lines.len() == 1 => {
                repairs = first_repairs;
                (text, stated)
            }
            _ => split_item(&joined, &mut repairs),
        }
    } else {
        (clean_text(&joined, false, &mut repairs), item.stated)
    };
    if let Some(key) =
        item.text_key.as_ref().filter(|k| !k.eq_ignore_ascii_case("text") && item.mark != Mark::Key)
    {
        repairs.insert(0, Repair::TextKey { key: key.clone() });
    }
    if let Some(key) = item.prob_key.filter(|k| !k.eq_ignore_ascii_case("probability")) {
        repairs.push(Repair::ProbabilityKey { key });
    }
    LineCandidate {
        mark: item.mark,
        indent: item.indent,
        number: item.number,
        text,
        stated,
        repairs,
        keyed: item.text_key.is_some(),
        prob_cut: item.prob_cut,
        last_line: item.last_line,
        raw: searched.then_some(joined),
    }
}

/// Items grouped into runs: a run goes on past deeper items (notes under an item, which
/// form runs of their own) and ends at a shallower item, at another kind of marker on its
/// level, or where numbering goes back down. Runs of one kind and depth separated only by
/// shallower items without probabilities (`- Positive:` above its own sub-list) are joined.
fn line_runs(candidates: Vec<LineCandidate>) -> Vec<Vec<LineCandidate>> {
    let mut runs: Vec<Vec<LineCandidate>> = Vec::new();
    // Runs still open, by depth: (mark, indent, index into `runs`).
    let mut open: Vec<(Mark, usize, usize)> = Vec::new();
    // Per run, of the items since its last one: none (`None`), or whether all were shallower
    // and without a probability.
    let mut since: Vec<Option<bool>> = Vec::new();
    for c in candidates {
        open.retain(|&(_, indent, _)| indent <= c.indent + 1);
        let level = open.iter().position(|&(_, indent, _)| indent.abs_diff(c.indent) <= 1);
        let target = level.and_then(|l| {
            let (mark, _, r) = open[l];
            let p = runs[r].last()?;
            (mark == c.mark && !matches!((p.number, c.number), (Some(a), Some(b)) if b <= a)).then_some(r)
        });
        let dest = match target {
            Some(r) => r,
            None => {
                if let Some(l) = level {
                    open.remove(l);
                }
                // A run of the same kind and depth that only shallower headings interrupted.
                let join = (0..runs.len()).rev().find(|&r| {
                    since[r] == Some(true)
                        && runs[r].last().is_some_and(|p| {
                            p.mark == c.mark
                                && p.indent == c.indent
                                && !matches!((p.number, c.number), (Some(a), Some(b)) if b <= a)
                        })
                });
                let r = join.unwrap_or_else(|| {
                    runs.push(Vec::new());
                    since.push(None);
                    runs.len() - 1
                });
                open.push((c.mark, c.indent, r));
                r
            }
        };
        let (indent, plain) = (c.indent, !c.stated.is_value());
        runs[dest].push(c);
        for (r, s) in since.iter_mut().enumerate() {
            *s = if r == dest {
                None
            } else {
                Some(s.unwrap_or(true) && plain && runs[r].last().is_some_and(|p| p.indent > indent + 1))
            };
        }
    }
    runs
}

/// Candidates in lines: numbered or bulleted items (`1. Sure (0.4)`, `- "Sure" — 40%`,
/// `* Sure [0.4]`), `Response 1:` or `Text:` blocks with a `Probability:` line, YAML-like
/// entries (`- text: Sure` / `  probability: 0.4`).
///
/// Items of one kind and indentation in a row form a run (a number going back down starts
/// a new one); the run with the most stated probabilities, then the most items, then the
/// first, is the list, so that numbered reasoning before it or notes after it are left
/// out. A reply cut off in its last item keeps that item's text when only the probability
/// was cut, and drops the item when its text looks cut.
fn line_list(body: &str) -> Option<ListFound> {
    let lines: Vec<&str> = body.lines().take(MAX_LINES).collect();
    let cut_end = !body.ends_with(['\n', '\r']) && body.lines().count() <= MAX_LINES;
    let last_nonblank = lines.iter().rposition(|l| !l.trim().is_empty())?;
    let candidates: Vec<LineCandidate> = line_items(&lines, cut_end)
        .into_iter()
        .map(line_candidate)
        .filter(|c| !c.text.is_empty() && !is_placeholder(&c.text))
        .collect();
    let runs = line_runs(candidates);
    let score = |run: &Vec<LineCandidate>| (run.iter().filter(|c| c.stated.is_value()).count(), run.len());
    let mut best: Option<Vec<LineCandidate>> = None;
    for run in runs {
        if best.as_ref().is_none_or(|b| score(&run) > score(b)) {
            best = Some(run);
        }
    }
    let mut run = best?;
    let stated = run.iter().filter(|c| c.stated.is_value()).count();
    if (run[0].mark == Mark::Key && stated == 0 && run.len() < 2)
        || (matches!(run[0].mark, Mark::Lead | Mark::Plain) && run.len() < 2)
    {
        // `Answer: ...`, `0.5: that's fair.` or `I'd say so (p = 0.9).` alone is prose.
        return None;
    }
    let mut repairs = vec![match run[0].mark {
        Mark::Label | Mark::Key => Repair::LabelledBlocks,
        Mark::Bullet | Mark::Number if run.iter().filter(|c| c.keyed).count() * 2 > run.len() => {
            if run[0].mark == Mark::Bullet {
                Repair::YamlList
            } else {
                Repair::LabelledBlocks
            }
        }
        _ => Repair::NumberedList,
    }];
    if let Some(last) = run.last_mut().filter(|l| cut_end && l.last_line == last_nonblank) {
        let others = stated - usize::from(last.stated.is_value());
        let open = last.raw.as_deref().and_then(|raw| Some((raw, cut_bracket_start(raw)?)));
        if last.prob_cut {
            repairs.push(Repair::CutOff { dropped: false });
        } else if let Some((raw, o)) = open.filter(|(raw, o)| !raw[..*o].trim().is_empty()) {
            // `3. Maybe later (0.1`: the number may be cut too.
            let (text, stated) = split_item(&raw[..o], &mut Vec::new());
            last.text = text;
            last.stated = if stated.is_value() { stated } else { Stated::Missing };
            repairs.push(Repair::CutOff { dropped: false });
        } else if last.stated.is_missing() && is_key_start(&last.text) {
            // `- te`: cut inside a `text:` key.
            run.pop();
            repairs.push(Repair::CutOff { dropped: true });
        } else if last.stated.is_missing() {
            if let Some(cut) = cut_spec_start(&last.text).filter(|&c| !last.text[..c].trim().is_empty()) {
                let mut r = Vec::new();
                last.text = clean_text(&last.text[..cut], true, &mut r);
                repairs.push(Repair::CutOff { dropped: false });
            } else if looks_cut(&last.text) {
                let n = run.len();
                let others_complete = n > 1 && run[..n - 1].iter().all(|c| !looks_cut(&c.text));
                if others > 0 || others_complete {
                    run.pop();
                    repairs.push(Repair::CutOff { dropped: true });
                }
            }
        }
    }
    if run.is_empty() || run.iter().all(|c| c.text.is_empty()) {
        return None;
    }
    let items = run
        .into_iter()
        .enumerate()
        .map(|(position, c)| RawItem { position, text: c.text, stated: c.stated, repairs: c.repairs })
        .collect();
    Some(ListFound { items, repairs, reasoning: None })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> (String, Option<f64>) {
        let (text, stated) = split_item(s, &mut Vec::new());
        let v = match stated {
            Stated::Value { v, percent } => Some(if percent { v / 100.0 } else { v }),
            _ => None,
        };
        (text, v)
    }

    #[test]
    fn probabilities_written_with_a_text() {
        let cases: &[(&str, &str, Option<f64>)] = &[
            ("Sure (0.4)", "Sure", Some(0.4)),
            ("Sure [40%]", "Sure", Some(0.4)),
            ("Sure (probability: 0.4).", "Sure", Some(0.4)),
            ("Sure — p = 0.4", "Sure", Some(0.4)),
            ("\"Sure, fine.\" 0.4", "Sure, fine.", Some(0.4)),
            ("\"Sure\" — 40%", "Sure", Some(0.4)),
            ("(0.4) Sure", "Sure", Some(0.4)),
            ("40%: Sure", "Sure", Some(0.4)),
            ("Sure. Probability: 0.4", "Sure.", Some(0.4)),
            ("**Warm:** \"Sure!\" (0.4)", "Sure!", Some(0.4)),
            // Numbers that are not probabilities.
            ("I'd give $0.50", "I'd give $0.50", None),
            ("I'd give 40% of it", "I'd give 40% of it", None),
            ("Give me 2 (or 3)", "Give me 2 (or 3)", None),
            ("It's 50-50", "It's 50-50", None),
        ];
        for (raw, text, p) in cases {
            assert_eq!(split(raw), (text.to_string(), *p), "{raw}");
        }
    }

    #[test]
    fn cut_probabilities_are_found() {
        assert_eq!(cut_spec_start("Maybe later (0."), Some(12));
        assert_eq!(cut_spec_start("Maybe later (prob"), Some(12));
        assert_eq!(cut_spec_start("Maybe later —"), Some("Maybe later ".len()));
        assert_eq!(cut_spec_start("Maybe later (I think"), None);
        assert_eq!(cut_spec_start("Maybe (0.3) later"), None);
        assert!(is_partial_spec("probability: 0.3"));
        assert!(is_partial_spec("pro"));
        assert!(!is_partial_spec("pro 3"));
        assert!(looks_cut("I could give a lit"));
        assert!(looks_cut("\"I could give."));
        assert!(!looks_cut("I could give."));
    }

    #[test]
    fn table_rows_and_separators() {
        assert_eq!(table_cells("| a | b \\| c |"), (vec!["a".to_string(), "b | c".to_string()], true));
        assert_eq!(table_cells("a | b"), (vec!["a".to_string(), "b".to_string()], false));
        assert!(is_separator_row("|---|:---:|"));
        assert!(is_separator_row("--- | ---"));
        assert!(!is_separator_row("| - | text |"));
        assert!(!is_separator_row("- a bullet"));
    }

    #[test]
    fn tags_and_entities() {
        let s = "<Response_2 p='0.3'>a &amp; b &#39;c&#x27;</Response_2><3 <probab";
        let tags = scan_tags(s);
        assert_eq!(tags.len(), 2);
        assert_eq!(
            (tags[0].name.as_str(), tags[0].written.as_str(), tags[0].close),
            ("response", "Response_2", false)
        );
        assert!(tags[1].close);
        assert_eq!(
            attributes(&s[tags[0].attrs.0..tags[0].attrs.1]),
            vec![("p".to_string(), "0.3".to_string())]
        );
        assert_eq!(decode_entities("a &amp; b &#39;c&#x27; &bogus;"), "a & b 'c' &bogus;");
        assert_eq!(decode_entities("<![CDATA[x < y]]>"), "x < y");
        assert_eq!(partial_tag_start("Sure.</te"), Some(5));
        assert_eq!(partial_tag_start("Sure <3"), None);
    }

    #[test]
    fn json_cut_outside_a_string_is_closed() {
        let (fixed, repairs) = lenient_fix(r#"{"responses": [{"text": "A", "probability": 0."#);
        assert_eq!(fixed, r#"{"responses": [{"text": "A", "probability": null}]}"#);
        assert_eq!(repairs, vec![Repair::ClosedTruncated]);
        let (fixed, _) = lenient_fix(r#"{"responses": [{"text": "A"}, {"text": "B", "prob"#);
        assert_eq!(fixed, r#"{"responses": [{"text": "A"}]}"#);
        let (fixed, repairs) = lenient_fix("{\"a\": 1, // note\n\"b\": 2 /* x */}");
        assert_eq!(serde_json::from_str::<Value>(&fixed).unwrap(), serde_json::json!({"a": 1, "b": 2}));
        assert_eq!(repairs, vec![Repair::Comments]);
    }

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

    #[test]
    fn runs_skip_notes_and_restart_with_numbering() {
        let items = |body: &str| {
            let lines: Vec<&str> = body.lines().collect();
            line_runs(line_items(&lines, false).into_iter().map(line_candidate).collect())
                .into_iter()
                .map(|run| run.into_iter().map(|c| c.text).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        assert_eq!(items("- A (0.4)\n  - a note\n- B (0.6)"), vec![vec!["A", "B"], vec!["a note"]]);
        assert_eq!(items("1. x\n2. y\n\n1. A (0.5)\n2. B (0.5)"), vec![vec!["x", "y"], vec!["A", "B"]]);
        assert_eq!(
            items("- Warm:\n  - A (0.3)\n- Cold:\n  - B (0.7)"),
            vec![vec!["Warm:", "Cold:"], vec!["A", "B"]]
        );
    }
}
