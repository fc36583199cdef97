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
//!
//! Each stage has its own module: `candidates` tries the shapes in order, `extract` and
//! `lenient` find and repair JSON, `items` reads candidate items from it, `tags`, `table`,
//! `lines` and `prose` read the other shapes, `normalize` repairs probabilities and builds
//! the final list, and `single` reads one-reply answers.

use serde::{Deserialize, Serialize};

use super::KSpec;

mod candidates;
mod extract;
mod items;
mod lenient;
mod lines;
mod normalize;
mod prose;
mod single;
mod table;
mod tags;

#[cfg(test)]
pub(crate) use candidates::parse_candidates_searching;
pub use candidates::{parse_candidates, parse_candidates_with};
pub use single::{parse_cot, parse_single};

/// The deepest bracket nesting a reply may have: a candidate list needs 3 levels, and
/// serde_json reads no deeper than 128. A reply nested deeper is refused in one pass before
/// any parsing, because the shapes tried on it cost time that grows with the square of the
/// nesting.
pub(crate) const MAX_NESTING: usize = 128;

/// Whether `text` nests brackets (`{`, `[`) deeper than [`MAX_NESTING`], counted over the
/// whole text (inside strings too, which only ever over-counts).
pub(crate) fn nested_too_deep(text: &str) -> bool {
    let mut depth = 0usize;
    for b in text.bytes() {
        match b {
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The error for a reply nested deeper than [`MAX_NESTING`].
fn too_deep_error() -> ParseError {
    ParseError::InvalidJson(format!("brackets nested deeper than {MAX_NESTING} levels"))
}

/// One candidate reply with its verbalized probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The reply text.
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
    /// Typographic quotes (`“text”: “Sure”`, `‘…’`, `«…»`) were read as JSON string
    /// delimiters.
    TypographicQuotes,
    /// Quotes inside a text that were not escaped (`"He said "no" and left"`) were kept as
    /// part of the text.
    UnescapedQuotes,
    /// Commas missing between values (`"Sure" "probability"`, `} {`) were inserted.
    MissingCommas,
    /// Numbers written `.6` or with a decimal comma (`0,6`) were read as decimals.
    NumberFormat,
    /// Python tuples (`("Sure", 0.6)`) were read as lists.
    TupleBrackets,
    /// The reply was cut off; the complete items were kept and the brackets closed.
    ClosedTruncated,
    /// The reply was cut off inside the first candidate's text, before any item was
    /// complete (a model writing one string until `max_tokens`): the text up to the cut was
    /// kept, and its probability, never written, is missing.
    TextCut,
    /// The reply was a bare JSON array rather than `{"responses": [...]}`.
    BareArray,
    /// The `{"responses": [...]}` object was wrapped in a one-element array.
    WrappedInArray,
    /// The list was inside another object, under `key` (one repair per level).
    WrappedObject {
        /// The enclosing object's key.
        key: String,
    },
    /// JSON was encoded as a JSON string (the whole reply, or a field holding JSON text, or
    /// quotes escaped as `\"`) and was decoded.
    StringEncodedJson,
    /// The list was under `key` rather than `responses`.
    ListKey {
        /// The key the list was under.
        key: String,
    },
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
    CutOff {
        /// Whether the last, cut item was dropped.
        dropped: bool,
    },
    /// A style label before the text (`**Warm:** "Sure!"`) was removed; `label` as written.
    TextLabel {
        /// The label removed.
        label: String,
    },
    /// The text was under `key` rather than `text`.
    TextKey {
        /// The key the text was under.
        key: String,
    },
    /// The text (or the probability) was inside an object or a list rather than a plain
    /// value; `path` says where it was found (`text.content`, `text[0]`).
    NestedValue {
        /// The keys followed down to the value, joined with dots.
        path: String,
    },
    /// The probability was under `key` rather than `probability`.
    ProbabilityKey {
        /// The key the probability was under.
        key: String,
    },
    /// The text was not a string (e.g. a number) and was converted.
    TextNotString,
    /// The item was a plain string with no probability.
    PlainStringItem,
    /// The probability was given as a string (`"0.7"`, `"70%"`).
    ProbabilityString {
        /// The string as written.
        value: String,
    },
    /// The probability was a percentage (a `%` sign, or some value in the reply above 1)
    /// and was divided by 100; `stated` is the number as written.
    PercentScaled {
        /// The number as written.
        stated: f64,
    },
    /// The probability was missing and was filled in (see [`parse_candidates`]).
    MissingProbability,
    /// The probability was not a finite number and was treated as missing.
    InvalidProbability {
        /// The value as written.
        value: String,
    },
    /// The probability was negative and was set to 0.
    NegativeProbability {
        /// The value as written.
        value: f64,
    },
    /// `duplicates` later items with the same text were merged into this one, summing
    /// their probabilities.
    Merged {
        /// How many later items were merged in.
        duplicates: usize,
    },
    /// An item with an empty or whitespace-only text was dropped.
    DroppedEmpty {
        /// The item's 0-based position in the list as written.
        position: usize,
    },
    /// An item with no text field was dropped.
    DroppedNoText {
        /// The item's 0-based position in the list as written.
        position: usize,
    },
    /// More items than allowed: the first `kept` of `found` were kept.
    Truncated {
        /// Items in the reply.
        found: usize,
        /// Items kept.
        kept: usize,
    },
    /// Fewer items than the fixed k asked for.
    FewerThanRequested {
        /// Items in the reply.
        found: usize,
        /// The k asked for.
        requested: usize,
    },
    /// The probabilities summed to `sum`, not 1, and were rescaled.
    Normalized {
        /// The sum before rescaling.
        sum: f64,
    },
    /// No usable probabilities (all missing or zero): every candidate got the same.
    Uniform,
    /// Surrounding quotation marks were removed from a single reply.
    QuotesStripped,
    /// A single reply was wrapped in JSON (e.g. `{"response": ...}`) and was unwrapped.
    UnwrappedJson,
    /// A reasoned reply had neither JSON nor a `Response:` line: its last paragraph was taken
    /// as the response and the paragraphs before it as the reasoning.
    ProseResponse,
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedReply {
    /// The candidates, in the order the model wrote them.
    pub candidates: Vec<Candidate>,
    /// Reasoning given before the answer (a `reasoning` field or a `<think>` block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

/// A reply that could not be recovered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The reply is empty or only whitespace.
    #[error("reply is empty")]
    Empty,
    /// No shape that holds candidates was found, or the list held none.
    #[error("reply contains no candidates: {0}")]
    NoCandidates(String),
    /// The reply's JSON could not be read, even after repair.
    #[error("reply is not valid JSON, even after repair: {0}")]
    InvalidJson(String),
    /// The JSON holds no list of responses.
    #[error(
        "JSON has no list of responses: expected an array under \"responses\", found keys [{}]",
        .found_keys.join(", ")
    )]
    NoList {
        /// The top-level keys the JSON had.
        found_keys: Vec<String>,
    },
    /// No item of the list has a text.
    #[error("no item of the list has a text: expected a \"text\" field in each item")]
    NoText,
    /// A one-reply answer has no final response.
    #[error("reply has no final response: {0}")]
    NoResponse(String),
    /// Every item broke the shape asked for (an answer outside its range, or not one of
    /// the options); the reasons, joined.
    #[error("no usable answer: {0}")]
    NoAnswer(String),
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
