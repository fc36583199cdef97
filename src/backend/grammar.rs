//! A JSON schema turned into a GBNF grammar, for backends that constrain decoding with one
//! (the embedded llama.cpp model). The one place a schema becomes a grammar.
//!
//! Written here rather than taken from llama.cpp's own converter
//! (`json_schema_to_grammar`): that one ignores a number's `minimum`/`maximum`, so a small
//! model answers 999 to a question bounded by [0, 2]; and it lets a string be empty or
//! only dots, which a small model late in a long dialogue writes by copying the prompt's
//! format example (`{"text": "...", ...}`).
//!
//! The subset read is what structured-output APIs take in strict mode:
//! - `object` with `properties`, every one of them `required`, written in the order
//!   `required` lists them (a schema's own map has no order once parsed);
//! - `array` with `items`, `minItems`, `maxItems`;
//! - `string` with `maxLength` (600 when absent), or with `enum`;
//! - `number` and `integer`, with `minimum`/`maximum`; `boolean`; `null`;
//! - `enum` and `const` of any JSON values; `anyOf`/`oneOf`; `type` as a list.
//!
//! Annotations (`title`, `description`, `additionalProperties: false`, `$schema`) are
//! ignored; any other keyword is refused, so a schema is never silently loosened.
//!
//! Two rules of the grammar are choices, stated here once:
//! - a free string holds at least one character that is not a space, a dot, an ellipsis,
//!   `_` or `-`, and at most `maxLength` characters from that one on (after up to 20 such
//!   leading characters);
//! - a bounded number has at most [`NUMBER_DECIMALS`] decimals and no leading zeros,
//!   bounded digit by digit ([`gbnf_number_range`]); an unbounded one has at most 7 integer
//!   digits and 6 decimals (a probability, a score), so a model cannot ramble in digits.

use serde_json::{Map, Value};

/// A schema the converter cannot honour.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the output schema cannot be turned into a grammar at `{at}`: {why}")]
pub struct GrammarError {
    /// Where in the schema, as a JSON pointer.
    pub at: String,
    /// What is wrong there.
    pub why: String,
}

/// The most characters a string without `maxLength` may have.
pub(crate) const DEFAULT_MAX_STRING_CHARS: u64 = 600;

/// Decimals a bounded number may have: cents for money, and enough for a rating or a
/// share; more would only let a small model ramble in digits.
pub const NUMBER_DECIMALS: usize = 2;

/// Largest bound handled digit by digit: every integer up to here is exact in an `f64`.
const LARGEST_BOUND: f64 = 1e15;

/// Rules every grammar may use.
const COMMON: &str = r#"ws ::= [ \t\n]{0,4}
char ::= [^"\\\x00-\x1f] | "\\" ["\\/bfnrt]
filler ::= [._ \t\u2026-]
solid ::= [^"\\\x00-\x1f._ \t\u2026-] | "\\" ["\\/bfnrt]
number ::= "-"? ("0" | [1-9] [0-9]{0,6}) ("." [0-9]{1,6})?
integer ::= "-"? ("0" | [1-9] [0-9]{0,15})
"#;

/// A GBNF grammar (start rule `root`) that accepts exactly the compact JSON documents of
/// `schema`, with up to four whitespace characters between tokens.
pub fn gbnf_from_schema(schema: &Value) -> Result<String, GrammarError> {
    let mut grammar = Converter::default();
    let root = grammar.expression(schema, "")?;
    let mut out = format!("root ::= {root}\n");
    for (name, body) in &grammar.rules {
        out.push_str(&format!("{name} ::= {body}\n"));
    }
    out.push_str(COMMON);
    Ok(out)
}

/// Named rules gathered while converting: array items and strings, whose bodies are long
/// enough (a string's `char{0,599}` becomes hundreds of rules inside llama.cpp) to be
/// written once and referred to.
#[derive(Default)]
struct Converter {
    rules: Vec<(String, String)>,
}

impl Converter {
    /// The name of a rule with `body`, added under a name built from `stem` unless a rule
    /// with the same body exists.
    fn rule(&mut self, stem: &str, body: String) -> String {
        if let Some((name, _)) = self.rules.iter().find(|(_, b)| *b == body) {
            return name.clone();
        }
        let taken = |n: &str| self.rules.iter().any(|(name, _)| name == n);
        let mut name = stem.to_string();
        let mut i = 2;
        while taken(&name) {
            name = format!("{stem}{i}");
            i += 1;
        }
        self.rules.push((name.clone(), body));
        name
    }

    fn expression(&mut self, schema: &Value, at: &str) -> Result<String, GrammarError> {
        let fail = |why: String| GrammarError { at: if at.is_empty() { "/".into() } else { at.into() }, why };
        let Value::Object(map) = schema else {
            return Err(fail(format!("expected a schema object, found {schema}")));
        };
        for key in map.keys() {
            if !KNOWN_KEYWORDS.contains(&key.as_str()) {
                return Err(fail(format!("the keyword `{key}` is not supported")));
            }
        }
        if let Some(values) = map.get("enum") {
            let Value::Array(values) = values else { return Err(fail("`enum` is not a list".into())) };
            if values.is_empty() {
                return Err(fail("`enum` lists no value".into()));
            }
            return Ok(alternatives(values.iter().map(literal).collect()));
        }
        if let Some(value) = map.get("const") {
            return Ok(literal(value));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(options) = map.get(key) {
                let Value::Array(options) = options else {
                    return Err(fail(format!("`{key}` is not a list")));
                };
                let alts = options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| self.expression(o, &format!("{at}/{key}/{i}")))
                    .collect::<Result<Vec<_>, _>>()?;
                if alts.is_empty() {
                    return Err(fail(format!("`{key}` lists no schema")));
                }
                return Ok(alternatives(alts));
            }
        }
        match map.get("type") {
            Some(Value::String(kind)) => self.typed(kind, map, at),
            Some(Value::Array(kinds)) => {
                let alts = kinds
                    .iter()
                    .map(|k| match k {
                        Value::String(kind) => self.typed(kind, map, at),
                        other => Err(fail(format!("`type` lists {other}"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(alternatives(alts))
            }
            Some(other) => Err(fail(format!("`type` is {other}"))),
            None => {
                Err(fail("no `type`, `enum`, `const` or `anyOf`: any JSON value is not supported".into()))
            }
        }
    }

    /// The expression for one `type`, reading that type's keywords from `map`.
    fn typed(&mut self, kind: &str, map: &Map<String, Value>, at: &str) -> Result<String, GrammarError> {
        self.typed_here(kind, map, at).map_err(|why| match why {
            Nested(e) => e,
            Here(why) => GrammarError { at: if at.is_empty() { "/".into() } else { at.into() }, why },
        })
    }

    fn typed_here(&mut self, kind: &str, map: &Map<String, Value>, at: &str) -> Result<String, Failure> {
        match kind {
            "object" => self.object(map, at),
            "array" => self.array(map, at),
            "string" => {
                let max = match map.get("maxLength") {
                    None => DEFAULT_MAX_STRING_CHARS,
                    Some(v) => v.as_u64().filter(|&n| n >= 1).ok_or(format!("`maxLength` is {v}"))?,
                };
                let body = format!(r#""\"" filler{{0,20}} solid char{{0,{}}} "\"""#, max - 1);
                let stem =
                    if max == DEFAULT_MAX_STRING_CHARS { "text".to_string() } else { format!("text{max}-") };
                Ok(self.rule(stem.trim_end_matches('-'), body))
            }
            "number" | "integer" => {
                let bound = |key: &str| match map.get(key) {
                    None => Ok(None),
                    Some(v) => v.as_f64().map(Some).ok_or(format!("`{key}` is {v}")),
                };
                let (min, max) = (bound("minimum")?, bound("maximum")?);
                let decimals = if kind == "integer" { 0 } else { NUMBER_DECIMALS };
                Ok(match (min, max) {
                    (None, None) => kind.to_string(),
                    (min, max) => format!(
                        "({})",
                        gbnf_number_range(
                            min.unwrap_or(-LARGEST_BOUND),
                            max.unwrap_or(LARGEST_BOUND),
                            decimals
                        )
                    ),
                })
            }
            "boolean" => Ok(r#"("true" | "false")"#.to_string()),
            "null" => Ok(r#""null""#.to_string()),
            other => Err(Here(format!("the type `{other}` is not supported"))),
        }
    }

    fn object(&mut self, map: &Map<String, Value>, at: &str) -> Result<String, Failure> {
        let empty = Map::new();
        let properties = match map.get("properties") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(other) => return Err(Here(format!("`properties` is {other}"))),
        };
        let required: Vec<&str> = match map.get("required") {
            None => Vec::new(),
            Some(Value::Array(r)) => r
                .iter()
                .map(|v| v.as_str().ok_or(format!("`required` lists {v}")))
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(Here(format!("`required` is {other}"))),
        };
        if let Some(optional) = properties.keys().find(|k| !required.contains(&k.as_str())) {
            return Err(Here(format!("the property `{optional}` is not required (every property must be)")));
        }
        let mut members = Vec::new();
        for name in required {
            let schema = properties.get(name).ok_or(format!("`{name}` is required but has no schema"))?;
            let value = self.expression(schema, &format!("{at}/properties/{name}")).map_err(Nested)?;
            members.push(format!("{} ws \":\" ws {value}", literal(&Value::String(name.to_string()))));
        }
        Ok(if members.is_empty() {
            r#""{" ws "}""#.to_string()
        } else {
            format!(r#""{{" ws {} ws "}}""#, members.join(r#" ws "," ws "#))
        })
    }

    fn array(&mut self, map: &Map<String, Value>, at: &str) -> Result<String, Failure> {
        let items = map.get("items").ok_or("an array without `items`")?;
        let item = self.expression(items, &format!("{at}/items")).map_err(Nested)?;
        let item = self.rule("item", item);
        let count = |key: &str| match map.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(format!("`{key}` is {v}")),
        };
        let min = count("minItems")?.unwrap_or(0);
        let max = count("maxItems")?;
        if max.is_some_and(|m| m < min) {
            return Err(Here(format!("`maxItems` is below `minItems` ({min})")));
        }
        if max == Some(0) {
            return Ok(r#""[" ws "]""#.to_string());
        }
        // After the first item: between min-1 and max-1 more.
        let more = match max {
            Some(max) => format!("{{{},{}}}", min.saturating_sub(1), max - 1),
            None => format!("{{{},}}", min.saturating_sub(1)),
        };
        let list = format!(r#"{item} (ws "," ws {item}){more}"#);
        Ok(if min == 0 { format!(r#""[" ws ({list})? ws "]""#) } else { format!(r#""[" ws {list} ws "]""#) })
    }
}

/// Why a keyword's value failed: a message for this place, or an error from deeper in.
enum Failure {
    Here(String),
    Nested(GrammarError),
}
use Failure::{Here, Nested};

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Here(why)
    }
}

impl From<&str> for Failure {
    fn from(why: &str) -> Self {
        Here(why.to_string())
    }
}

/// Keywords the converter reads or may safely ignore.
const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "maxLength",
    "minimum",
    "maximum",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "title",
    "description",
    "$schema",
];

/// `a` alone, or `(a | b | ...)`.
fn alternatives(alts: Vec<String>) -> String {
    if alts.len() == 1 {
        alts.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", alts.join(" | "))
    }
}

/// A GBNF literal matching the compact JSON of `value` (a string with its quotes).
fn literal(value: &Value) -> String {
    format!("{:?}", value.to_string())
}

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

/// What tests of grammars share: a GBNF grammar read as a regular expression.
#[cfg(test)]
pub(crate) mod testing {
    /// The regex equivalent of a GBNF grammar in the subset the constraints use (literals,
    /// classes, groups, `|`, `?`, `{m,n}`, rule references), expanded from `rule`.
    pub(crate) fn gbnf_regex(grammar: &str, rule: &str) -> String {
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

    /// A regex that matches what `grammar`'s `root` rule accepts.
    pub(crate) fn matcher(grammar: &str) -> regex::Regex {
        regex::RegexBuilder::new(&format!("^(?:{})$", gbnf_regex(grammar, "root")))
            .size_limit(1 << 26)
            .build()
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::matcher;
    use super::*;
    use serde_json::json;

    fn number_matcher(min: f64, max: f64) -> regex::Regex {
        let g = gbnf_from_schema(&json!({"type": "number", "minimum": min, "maximum": max})).unwrap();
        matcher(&g)
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
        let g = gbnf_from_schema(&json!({
            "type": "object",
            "properties": {"answer": {"type": "number", "minimum": 0.0, "maximum": 2.0}},
            "required": ["answer"],
            "additionalProperties": false,
        }))
        .unwrap();
        let root = matcher(&g);
        assert!(root.is_match(r#"{"answer": 1.5}"#), "{g}");
        assert!(!root.is_match(r#"{"answer": 2.5}"#), "{g}");
        assert!(!root.is_match(r#"{"answer": 20}"#), "{g}");
    }

    #[test]
    fn objects_follow_the_order_of_required_and_arrays_their_bounds() {
        let schema = json!({
            "type": "object",
            "properties": {
                "z": {"type": "array", "items": {"type": "boolean"}, "minItems": 0, "maxItems": 2},
                "a": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 3}, {"type": "null"}]},
                "m": {"type": "string", "maxLength": 3},
            },
            "required": ["z", "a", "m"],
        });
        let g = gbnf_from_schema(&schema).unwrap();
        let root = matcher(&g);
        for ok in [r#"{"z": [], "a": null, "m": "abc"}"#, r#"{"z":[true, false],"a":3,"m":"..x"}"#] {
            assert!(root.is_match(ok), "{ok}\n{g}");
        }
        for bad in [
            r#"{"a": 1, "z": [], "m": "x"}"#,
            r#"{"z": [true, true, true], "a": 1, "m": "x"}"#,
            r#"{"z": [], "a": 4, "m": "x"}"#,
            r#"{"z": [], "a": 1.5, "m": "x"}"#,
            r#"{"z": [], "a": 1, "m": "abcd"}"#,
            r#"{"z": [], "a": 1, "m": "..."}"#,
            r#"{"z": [], "a": 1}"#,
        ] {
            assert!(!root.is_match(bad), "{bad}\n{g}");
        }
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_with_its_place() {
        for (schema, at, why) in [
            (json!({"type": "string", "pattern": "^a$"}), "/", "`pattern`"),
            (json!({"type": "object", "properties": {"a": {"type": "string"}}}), "/", "not required"),
            (
                json!({"type": "object", "properties": {"a": {"$ref": "#/x"}}, "required": ["a"]}),
                "/properties/a",
                "`$ref`",
            ),
            (json!({"type": "array", "items": {"type": "date"}}), "/items", "`date`"),
            (json!({}), "/", "any JSON value"),
        ] {
            let err = gbnf_from_schema(&schema).unwrap_err();
            assert!(err.to_string().contains(at) && err.to_string().contains(why), "{schema}: {err}");
        }
    }
}
