//! The shape a reply must take, described once and rendered both as a JSON schema (for
//! servers' `response_format`) and as a GBNF grammar (for the embedded model).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What a reply must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputConstraint {
    /// `{"responses": [{"text": str, "probability": number}, ...]}` with between
    /// `min_items` and `max_items` entries; `with_probability: false` drops the
    /// probability field (the `sequence` method).
    Candidates {
        /// Fewest entries allowed.
        min_items: usize,
        /// Most entries allowed.
        max_items: usize,
        /// Whether each entry carries a `probability`.
        with_probability: bool,
        /// Whether a `reasoning` string precedes the list (the `vs-cot` method).
        with_reasoning: bool,
    },
    /// `{"answer": number}` in `[min, max]`: `minimum`/`maximum` in the JSON schema, and a
    /// grammar that admits only that range (see [`gbnf_number_range`]) for the embedded model.
    Number {
        /// Smallest admissible answer.
        min: f64,
        /// Largest admissible answer.
        max: f64,
    },
    /// `{"answer": one of the choices}`.
    Choice {
        /// The admissible answers, verbatim.
        choices: Vec<String>,
    },
    /// Several answers to an outcome question, each with its probability when
    /// `with_probability` (the method under test answering it):
    /// `{"responses": [{"answer": ANSWER, "probability": number}, ...]}` with between
    /// `min_items` and `max_items` entries.
    Answers {
        /// The type of each answer.
        answer: AnswerShape,
        /// Fewest entries allowed.
        min_items: usize,
        /// Most entries allowed.
        max_items: usize,
        /// Whether each entry carries a `probability`.
        with_probability: bool,
    },
    /// Reasoning, then one reply (the `cot` method): `{"reasoning": str, "response": ...}`,
    /// the response free text (bounded as a candidate's text is) or an answer of a type.
    Reasoned {
        /// The type of the response when it is an answer; `None`: free text.
        answer: Option<AnswerShape>,
    },
    /// `{"answer": ANSWER}` or `{"answer": null}`: what a role stated, if it stated anything.
    Stated {
        /// The type of the answer, when there is one.
        answer: AnswerShape,
    },
}

/// A number or a category: the type of one answer inside [`OutputConstraint::Answers`] and
/// [`OutputConstraint::Stated`], and so of an outcome, a survey item and an evaluated
/// outcome (`Choice` is a category). Its serialized form is part of the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnswerShape {
    /// A number in `[min, max]` (bounded in the grammar as [`gbnf_number_range`] says).
    Number {
        /// Smallest admissible answer.
        min: f64,
        /// Largest admissible answer.
        max: f64,
    },
    /// One of the choices.
    Choice {
        /// The admissible answers, verbatim.
        choices: Vec<String>,
    },
}

impl AnswerShape {
    fn json_schema(&self) -> Value {
        match self {
            AnswerShape::Number { min, max } => json!({"type": "number", "minimum": min, "maximum": max}),
            AnswerShape::Choice { choices } => json!({"type": "string", "enum": choices}),
        }
    }

    /// The GBNF alternatives of one answer.
    fn gbnf(&self) -> String {
        match self {
            AnswerShape::Number { min, max } => gbnf_number_range(*min, *max, NUMBER_DECIMALS),
            AnswerShape::Choice { choices } => {
                choices.iter().map(|c| gbnf_literal(c)).collect::<Vec<_>>().join(" | ")
            }
        }
    }
}

impl OutputConstraint {
    /// A short name for `response_format.json_schema.name`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Candidates { .. } => "verbalized_candidates",
            Self::Number { .. } => "numeric_answer",
            Self::Answers { .. } => "answer_distribution",
            Self::Stated { .. } => "stated_answer",
            Self::Reasoned { .. } => "reasoned_response",
            Self::Choice { .. } => "categorical_answer",
        }
    }

    /// JSON schema (strict-mode compatible: every object closed, every property required).
    /// A candidate's text carries `maxLength` ([`MAX_TEXT_CHARS`]), as the embedded grammar
    /// bounds it; [`json_schema_with`](Self::json_schema_with) leaves the bound out for
    /// servers that reject the keyword.
    pub fn json_schema(&self) -> Value {
        self.json_schema_with(true)
    }

    /// Whether [`json_schema`](Self::json_schema) bounds a text's length (candidate lists).
    pub fn bounds_text(&self) -> bool {
        matches!(self, Self::Candidates { .. })
    }

    /// [`json_schema`](Self::json_schema), with or without `maxLength` on candidate texts.
    pub fn json_schema_with(&self, bound_text: bool) -> Value {
        match self {
            Self::Candidates { min_items, max_items, with_probability, with_reasoning } => {
                let mut item_props = serde_json::Map::new();
                let text = if bound_text {
                    json!({"type": "string", "maxLength": MAX_TEXT_CHARS})
                } else {
                    json!({"type": "string"})
                };
                item_props.insert("text".into(), text);
                let mut required = vec![json!("text")];
                if *with_probability {
                    item_props.insert("probability".into(), json!({"type": "number"}));
                    required.push(json!("probability"));
                }
                let item = json!({
                    "type": "object",
                    "properties": item_props,
                    "required": required,
                    "additionalProperties": false,
                });
                let mut props = serde_json::Map::new();
                let mut top_required = Vec::new();
                if *with_reasoning {
                    props.insert("reasoning".into(), json!({"type": "string"}));
                    top_required.push(json!("reasoning"));
                }
                props.insert(
                    "responses".into(),
                    json!({"type": "array", "items": item, "minItems": min_items, "maxItems": max_items}),
                );
                top_required.push(json!("responses"));
                json!({
                    "type": "object",
                    "properties": props,
                    "required": top_required,
                    "additionalProperties": false,
                })
            }
            Self::Number { min, max } => json!({
                "type": "object",
                "properties": {"answer": {"type": "number", "minimum": min, "maximum": max}},
                "required": ["answer"],
                "additionalProperties": false,
            }),
            Self::Choice { choices } => json!({
                "type": "object",
                "properties": {"answer": {"type": "string", "enum": choices}},
                "required": ["answer"],
                "additionalProperties": false,
            }),
            Self::Answers { answer, min_items, max_items, with_probability } => {
                let mut props = serde_json::Map::new();
                props.insert("answer".into(), answer.json_schema());
                let mut required = vec![json!("answer")];
                if *with_probability {
                    props.insert("probability".into(), json!({"type": "number"}));
                    required.push(json!("probability"));
                }
                json!({
                    "type": "object",
                    "properties": {"responses": {
                        "type": "array",
                        "items": {"type": "object", "properties": props, "required": required, "additionalProperties": false},
                        "minItems": min_items,
                        "maxItems": max_items,
                    }},
                    "required": ["responses"],
                    "additionalProperties": false,
                })
            }
            Self::Reasoned { answer } => json!({
                "type": "object",
                "properties": {
                    "reasoning": {"type": "string"},
                    "response": answer.as_ref().map_or_else(|| json!({"type": "string"}), AnswerShape::json_schema),
                },
                "required": ["reasoning", "response"],
                "additionalProperties": false,
            }),
            Self::Stated { answer } => json!({
                "type": "object",
                "properties": {"answer": {"anyOf": [answer.json_schema(), {"type": "null"}]}},
                "required": ["answer"],
                "additionalProperties": false,
            }),
        }
    }

    /// A GBNF grammar for llama.cpp that accepts exactly this shape (compact JSON with
    /// optional whitespace). A `Number` answer is bounded by [`gbnf_number_range`]; the
    /// probabilities inside candidate lists are not range-checked here (the parser repairs
    /// them).
    /// Strings stop at 600 characters: a small model otherwise rambles inside one string
    /// until `max_tokens` cuts the JSON short (seen in a 20-turn persuasion dialogue). The
    /// bound costs ~20 ms of grammar set-up per request.
    pub fn gbnf(&self) -> String {
        let common = r#"ws ::= [ \t\n]{0,4}
string ::= "\"" char{0,600} "\""
char ::= [^"\\\x00-\x1f] | "\\" ["\\/bfnrt]
number ::= "-"? ("0" | [1-9] [0-9]{0,6}) ("." [0-9]{1,6})?
"#;
        match self {
            Self::Candidates { min_items, max_items, with_probability, with_reasoning } => {
                let min = (*min_items).max(1);
                let max = (*max_items).max(min);
                let item = if *with_probability {
                    r#"item ::= "{" ws "\"text\"" ws ":" ws text ws "," ws "\"probability\"" ws ":" ws number ws "}""#
                } else {
                    r#"item ::= "{" ws "\"text\"" ws ":" ws text ws "}""#
                };
                let reasoning =
                    if *with_reasoning { r#""\"reasoning\"" ws ":" ws string ws "," ws "# } else { "" };
                let rest = max - 1;
                let min_rest = min - 1;
                format!(
                    "root ::= \"{{\" ws {reasoning}\"\\\"responses\\\"\" ws \":\" ws \"[\" ws item (ws \",\" ws item){{{min_rest},{rest}}} ws \"]\" ws \"}}\"\n{item}\n{CANDIDATE_TEXT}{common}"
                )
            }
            Self::Number { min, max } => {
                let amount = gbnf_number_range(*min, *max, NUMBER_DECIMALS);
                format!(
                    "root ::= \"{{\" ws \"\\\"answer\\\"\" ws \":\" ws amount ws \"}}\"\namount ::= {amount}\n{common}"
                )
            }
            Self::Answers { answer, min_items, max_items, with_probability } => {
                let min = (*min_items).max(1);
                let max = (*max_items).max(min);
                let probability = if *with_probability {
                    r#" ws "," ws "\"probability\"" ws ":" ws number"#
                } else {
                    ""
                };
                format!(
                    "root ::= \"{{\" ws \"\\\"responses\\\"\" ws \":\" ws \"[\" ws item (ws \",\" ws item){{{},{}}} ws \"]\" ws \"}}\"\nitem ::= \"{{\" ws \"\\\"answer\\\"\" ws \":\" ws answer{probability} ws \"}}\"\nanswer ::= {}\n{common}",
                    min - 1,
                    max - 1,
                    answer.gbnf()
                )
            }
            Self::Reasoned { answer } => {
                let response = match answer {
                    Some(a) => format!("response ::= {}\n", a.gbnf()),
                    None => format!("response ::= text\n{CANDIDATE_TEXT}"),
                };
                format!(
                    "root ::= \"{{\" ws \"\\\"reasoning\\\"\" ws \":\" ws string ws \",\" ws \"\\\"response\\\"\" ws \":\" ws response ws \"}}\"\n{response}{common}"
                )
            }
            Self::Stated { answer } => format!(
                "root ::= \"{{\" ws \"\\\"answer\\\"\" ws \":\" ws (answer | \"null\") ws \"}}\"\nanswer ::= {}\n{common}",
                answer.gbnf()
            ),
            Self::Choice { choices } => {
                let alts: Vec<String> = choices.iter().map(|c| gbnf_literal(c)).collect();
                format!(
                    "root ::= \"{{\" ws \"\\\"answer\\\"\" ws \":\" ws ({}) ws \"}}\"\n{common}",
                    alts.join(" | ")
                )
            }
        }
    }
}

/// The most characters a candidate's text may have: the embedded grammar's cap on every
/// string, and `maxLength` in the JSON schema sent to servers. A small model otherwise writes
/// one string until `max_tokens` cuts the reply short.
pub const MAX_TEXT_CHARS: usize = 600;

/// A candidate's text in the grammar: a JSON string with at least one character that is not
/// a dot, an ellipsis, `_`, `-` or a space, and at most 600 characters from the first such
/// one (the cap of every other string). A small model late in
/// a long dialogue otherwise copies the prompt's format example (`{"text": "...", ...}`)
/// into every candidate: a reply the parser rightly takes for an example, not an answer
/// (seen in the README's 20-turn demo, where both the call and its retry did it).
const CANDIDATE_TEXT: &str = r#"text ::= "\"" filler{0,20} solid char{0,599} "\""
filler ::= [._ \t\u2026-]
solid ::= [^"\\\x00-\x1f._ \t\u2026-] | "\\" ["\\/bfnrt]
"#;

/// A GBNF literal matching the JSON string encoding of `s`.
fn gbnf_literal(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    format!("{json:?}")
}

/// Decimals the embedded model may write in a numeric answer: cents for money, and enough
/// for a rating or a share; more would only let a small model ramble in digits.
pub const NUMBER_DECIMALS: usize = 2;

/// Largest bound handled digit by digit: every integer up to here is exact in an `f64`.
const LARGEST_BOUND: f64 = 1e15;

/// A GBNF expression for the JSON numbers in `[min, max]` with at most `decimals` decimals
/// and no leading zeros, e.g. for [0, 2] with 2 decimals:
/// `[0-1] ("." [0-9]{1,2})? | "2" ("." "0"{1,2})?`.
///
/// Integer bounds are exact. A fractional bound widens to the enclosing integer range
/// (`[0.5, 1.5]` admits `[0, 2]`), and the outcome check records what lies outside as
/// invalid; bounds beyond ±10^15 are clamped there, and bounds that form no range (NaN,
/// `min > max`) admit all of ±10^15. `-0` is admitted when the range reaches below zero.
pub fn gbnf_number_range(min: f64, max: f64, decimals: usize) -> String {
    let lo = min.floor().clamp(-LARGEST_BOUND, LARGEST_BOUND);
    let hi = max.ceil().clamp(-LARGEST_BOUND, LARGEST_BOUND);
    let (lo, hi) =
        if lo <= hi { (lo as i64, hi as i64) } else { (-LARGEST_BOUND as i64, LARGEST_BOUND as i64) };
    let mut alternatives = Vec::new();
    if hi >= 0 {
        alternatives.push(magnitudes(lo.max(0).unsigned_abs(), hi.unsigned_abs(), decimals));
    }
    if lo < 0 {
        let smallest = if hi >= 0 { 0 } else { hi.unsigned_abs() };
        alternatives.push(format!("\"-\" ({})", magnitudes(smallest, lo.unsigned_abs(), decimals)));
    }
    alternatives.join(" | ")
}

/// Non-negative numbers in `[a, b]` (integers, `a <= b`): any fraction below `b`, and `b`
/// itself only with zeros after the point.
fn magnitudes(a: u64, b: u64, decimals: usize) -> String {
    let (any, zeros) = if decimals == 0 {
        (String::new(), String::new())
    } else {
        (format!(" (\".\" [0-9]{{1,{decimals}}})?"), format!(" (\".\" \"0\"{{1,{decimals}}})?"))
    };
    let top = format!("\"{b}\"{zeros}");
    if a == b {
        return top;
    }
    let below: Vec<String> = integer_pieces(a, b - 1).iter().map(|p| render_pieces(p)).collect();
    let below = if below.len() == 1 { below[0].clone() } else { format!("({})", below.join(" | ")) };
    format!("{below}{any} | {top}")
}

/// One position of a digit pattern: a fixed digit or a range of digits.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Digit {
    Fixed(u8),
    Span(u8, u8),
}

/// Digit patterns that together match exactly the decimal integers in `[a, b]` without
/// leading zeros: one group per digit count, each split the way a range becomes a regex.
fn integer_pieces(a: u64, b: u64) -> Vec<Vec<Digit>> {
    let mut out = Vec::new();
    let mut low = a;
    while low <= b {
        let width = digits(low).len();
        let widest = if width >= 20 { u64::MAX } else { 10u64.pow(width as u32) - 1 };
        let high = b.min(widest);
        out.extend(same_width(&digits(low), &digits(high)));
        if high == b {
            break;
        }
        low = high + 1;
    }
    out
}

fn digits(n: u64) -> Vec<u8> {
    n.to_string().bytes().map(|c| c - b'0').collect()
}

/// Patterns for the integers between two digit strings of equal length.
fn same_width(lo: &[u8], hi: &[u8]) -> Vec<Vec<Digit>> {
    let Some((&l, lo_rest)) = lo.split_first() else { return vec![Vec::new()] };
    let (&h, hi_rest) = hi.split_first().expect("equal widths");
    if l == h {
        return same_width(lo_rest, hi_rest).into_iter().map(|p| prefixed(Digit::Fixed(l), p)).collect();
    }
    let n = lo_rest.len();
    let lo_is_floor = lo_rest.iter().all(|&d| d == 0);
    let hi_is_ceiling = hi_rest.iter().all(|&d| d == 9);
    let mut out = Vec::new();
    let first_full = if lo_is_floor { l } else { l + 1 };
    let last_full = if hi_is_ceiling { h } else { h - 1 };
    if !lo_is_floor {
        out.extend(same_width(lo_rest, &vec![9; n]).into_iter().map(|p| prefixed(Digit::Fixed(l), p)));
    }
    if first_full <= last_full {
        let lead = if first_full == last_full {
            Digit::Fixed(first_full)
        } else {
            Digit::Span(first_full, last_full)
        };
        out.push(prefixed(lead, vec![Digit::Span(0, 9); n]));
    }
    if !hi_is_ceiling {
        out.extend(same_width(&vec![0; n], hi_rest).into_iter().map(|p| prefixed(Digit::Fixed(h), p)));
    }
    out
}

fn prefixed(first: Digit, mut rest: Vec<Digit>) -> Vec<Digit> {
    rest.insert(0, first);
    rest
}

/// GBNF for one pattern: runs of fixed digits as one literal, runs of `[0-9]` counted.
fn render_pieces(pattern: &[Digit]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        let run = pattern[i..].iter().take_while(|&&d| d == pattern[i]).count();
        match pattern[i] {
            Digit::Fixed(_) => {
                let fixed: String = pattern[i..]
                    .iter()
                    .map_while(|d| match d {
                        Digit::Fixed(x) => Some(char::from(b'0' + x)),
                        Digit::Span(..) => None,
                    })
                    .collect();
                i += fixed.len();
                parts.push(format!("\"{fixed}\""));
                continue;
            }
            Digit::Span(a, b) if run > 1 => parts.push(format!("[{a}-{b}]{{{run}}}")),
            Digit::Span(a, b) => parts.push(format!("[{a}-{b}]")),
        }
        i += run;
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_schema_bounds_items() {
        let c = OutputConstraint::Candidates {
            min_items: 5,
            max_items: 5,
            with_probability: true,
            with_reasoning: false,
        };
        let s = c.json_schema();
        assert_eq!(s["properties"]["responses"]["minItems"], 5);
        let text = &s["properties"]["responses"]["items"]["properties"]["text"];
        assert_eq!(text, &json!({"type": "string", "maxLength": MAX_TEXT_CHARS}));
        assert!(c.gbnf().contains(&format!("char{{0,{}}}", MAX_TEXT_CHARS - 1)), "{}", c.gbnf());
        let unbounded = c.json_schema_with(false);
        assert_eq!(
            unbounded["properties"]["responses"]["items"]["properties"]["text"],
            json!({"type": "string"})
        );
        assert_eq!(s["properties"]["responses"]["items"]["required"], json!(["text", "probability"]));
    }

    #[test]
    fn grammar_repeats_items_between_bounds() {
        let c = OutputConstraint::Candidates {
            min_items: 1,
            max_items: 8,
            with_probability: true,
            with_reasoning: false,
        };
        let g = c.gbnf();
        assert!(g.contains("{0,7}"), "{g}");
        let c = OutputConstraint::Choice { choices: vec!["yes".into(), "a \"b\"".into()] };
        assert!(c.gbnf().contains(r#""\"yes\"""#), "{}", c.gbnf());
    }

    /// The regex equivalent of a GBNF grammar in the subset the constraints use (literals,
    /// classes, groups, `|`, `?`, `{m,n}`, rule references), expanded from `rule`.
    fn gbnf_regex(grammar: &str, rule: &str) -> String {
        let rules: std::collections::HashMap<&str, &str> =
            grammar.lines().filter_map(|l| l.split_once(" ::= ")).map(|(n, b)| (n.trim(), b)).collect();
        let body = rules.get(rule).unwrap_or_else(|| panic!("no rule `{rule}` in\n{grammar}"));
        let chars: Vec<char> = body.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                ' ' => i += 1,
                '"' => {
                    i += 1;
                    while chars[i] != '"' {
                        if chars[i] == '\\' {
                            i += 1;
                        }
                        out.push_str(&regex::escape(&chars[i].to_string()));
                        i += 1;
                    }
                    i += 1;
                }
                '[' | '{' => {
                    let close = if chars[i] == '[' { ']' } else { '}' };
                    while chars[i] != close {
                        out.push(chars[i]);
                        i += 1;
                    }
                    out.push(close);
                    i += 1;
                }
                '(' => {
                    out.push_str("(?:");
                    i += 1;
                }
                c @ (')' | '|' | '?' | '*' | '+') => {
                    out.push(c);
                    i += 1;
                }
                c if c.is_ascii_alphabetic() => {
                    let name: String =
                        chars[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '-').collect();
                    i += name.len();
                    out.push_str(&format!("(?:{})", gbnf_regex(grammar, &name)));
                }
                c => panic!("unexpected `{c}` in {body}"),
            }
        }
        out
    }

    #[test]
    fn reasoned_grammar_takes_reasoning_then_a_response_of_its_type() {
        let number = AnswerShape::Number { min: 0.0, max: 2.0 };
        let choice = AnswerShape::Choice { choices: vec!["Yes".into(), "No".into()] };
        for (answer, good, bad) in [
            (None, r#"{"reasoning": "They care.", "response": "I'll give $1."}"#, r#"{"response": "x"}"#),
            (
                Some(number),
                r#"{"reasoning": "ok", "response": 1.5}"#,
                r#"{"reasoning": "ok", "response": 7}"#,
            ),
            (
                Some(choice),
                r#"{"reasoning": "ok", "response": "No"}"#,
                r#"{"reasoning": "ok", "response": "Maybe"}"#,
            ),
        ] {
            let c = OutputConstraint::Reasoned { answer };
            let g = c.gbnf();
            let root = regex::Regex::new(&format!("^(?:{})$", gbnf_regex(&g, "root"))).unwrap();
            assert!(root.is_match(good), "{good}\n{g}");
            assert!(!root.is_match(bad), "{bad}\n{g}");
            assert_eq!(c.json_schema()["required"], json!(["reasoning", "response"]));
        }
    }

    fn number_matcher(min: f64, max: f64) -> regex::Regex {
        let g = OutputConstraint::Number { min, max }.gbnf();
        regex::Regex::new(&format!("^(?:{})$", gbnf_regex(&g, "amount"))).unwrap()
    }

    /// Strings around every boundary and digit-count change of `[lo, hi]`, well-formed or not.
    fn probes(lo: i64, hi: i64) -> Vec<String> {
        let mut ints: Vec<i64> = Vec::new();
        let mut around = |c: i64| ints.extend((c - 12)..=(c + 12));
        for c in [lo, hi, 0] {
            around(c);
        }
        let mut p = 1i64;
        while p <= hi.unsigned_abs().max(lo.unsigned_abs()) as i64 * 10 {
            around(p);
            around(-p);
            p *= 10;
        }
        let fractions = ["", ".0", ".00", ".5", ".05", ".50", ".99", ".000", ".001", ".125", "."];
        let mut out = Vec::new();
        for n in ints {
            for f in fractions {
                out.push(format!("{n}{f}"));
            }
            if n == 0 {
                out.extend(["-0.5", "-0.05", "-0", "-0.0"].map(String::from));
            }
        }
        out.extend(["", "-", "01", "00", "+1", ".5", "1e0", "1 ", "- 1", "0x1", "1.5.5"].map(String::from));
        out
    }

    /// Whether `s` is a JSON number with at most two decimals in `[lo, hi]`; `None` for a
    /// negative zero, which the grammar admits only when the range goes below zero.
    fn expected(s: &str, lo: f64, hi: f64) -> Option<bool> {
        static CANONICAL: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"^-?(0|[1-9][0-9]*)(\.[0-9]{1,2})?$").unwrap());
        if !CANONICAL.is_match(s) {
            return Some(false);
        }
        let x: f64 = s.parse().unwrap();
        if s.starts_with('-') && x == 0.0 {
            return None;
        }
        Some(x >= lo && x <= hi)
    }

    #[test]
    fn number_grammar_admits_exactly_the_range() {
        let ranges = [
            (0, 2),
            (0, 0),
            (1, 7),
            (0, 10),
            (0, 100),
            (-3, 7),
            (-15, -4),
            (-100, 0),
            (7, 1234),
            (99, 101),
            (-1005, 20030),
            (123_456, 9_876_543),
        ];
        for (lo, hi) in ranges {
            let re = number_matcher(lo as f64, hi as f64);
            for s in probes(lo, hi) {
                if let Some(want) = expected(&s, lo as f64, hi as f64) {
                    assert_eq!(re.is_match(&s), want, "[{lo}, {hi}] `{s}` grammar: {re}");
                }
            }
        }
    }

    #[test]
    fn fractional_bounds_widen_to_the_enclosing_integers() {
        let re = number_matcher(0.5, 2.25);
        for s in probes(0, 3) {
            if let Some(want) = expected(&s, 0.0, 3.0) {
                assert_eq!(re.is_match(&s), want, "`{s}`: {re}");
            }
        }
    }

    #[test]
    fn money_range_grammar_reads_as_expected() {
        assert_eq!(gbnf_number_range(0.0, 2.0, 2), r#"[0-1] ("." [0-9]{1,2})? | "2" ("." "0"{1,2})?"#);
        assert_eq!(gbnf_number_range(0.0, 2.0, 0), r#"[0-1] | "2""#);
        assert_eq!(
            gbnf_number_range(-5.0, 120.0, 2),
            r#"([0-9] | [1-9] [0-9] | "1" [0-1] [0-9]) ("." [0-9]{1,2})? | "120" ("." "0"{1,2})? | "-" ([0-4] ("." [0-9]{1,2})? | "5" ("." "0"{1,2})?)"#
        );
        let g = OutputConstraint::Number { min: 0.0, max: 2.0 }.gbnf();
        let root = regex::Regex::new(&format!("^(?:{})$", gbnf_regex(&g, "root"))).unwrap();
        assert!(root.is_match(r#"{"answer": 1.5}"#), "{g}");
        assert!(!root.is_match(r#"{"answer": 2.5}"#), "{g}");
        assert!(!root.is_match(r#"{"answer": 20}"#), "{g}");
    }

    #[test]
    fn candidate_texts_must_say_something() {
        let g = OutputConstraint::Candidates {
            min_items: 1,
            max_items: 2,
            with_probability: true,
            with_reasoning: false,
        }
        .gbnf();
        let root = regex::RegexBuilder::new(&format!("^(?:{})$", gbnf_regex(&g, "root")))
            .size_limit(1 << 26)
            .build()
            .unwrap();
        for ok in [
            r#"{"responses": [{"text": "Sure...", "probability": 0.3}]}"#,
            r#"{"responses": [{"text": "... well, maybe \"later\"", "probability": 0.3}, {"text": "1", "probability": 0.7}]}"#,
            r#"{"responses": [{"text": "¿Por qué no?", "probability": 1}]}"#,
        ] {
            assert!(root.is_match(ok), "{ok} should match\n{g}");
        }
        for example in [
            r#"{"responses": [{"text": "...", "probability": 0.3}]}"#,
            r#"{"responses": [{"text": "Sure", "probability": 0.5}, {"text": " \u2026 ", "probability": 0.5}]}"#,
            r#"{"responses": [{"text": "", "probability": 0.3}]}"#,
            r#"{"responses": [{"text": "- _", "probability": 0.3}]}"#,
        ] {
            let example = example.replace("\\u2026", "\u{2026}");
            assert!(!root.is_match(&example), "{example} should not match\n{g}");
        }
    }

    #[test]
    fn number_schema_carries_the_bounds() {
        let s = OutputConstraint::Number { min: 0.0, max: 2.0 }.json_schema();
        assert_eq!(s["properties"]["answer"], json!({"type": "number", "minimum": 0.0, "maximum": 2.0}));
    }
}
