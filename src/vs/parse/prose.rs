//! Reading probabilities written in prose next to a text (`Sure (0.4)`, `40%: Sure`), and
//! recognising ones cut off at the end of a reply.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::items::Stated;
use super::single::strip_quotes;
use super::{Repair, PROB_KEYS, TEXT_KEYS};

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
/// `... — 40%`, `... | p = 0.4`, `..., probability: 0.4`, `...<TAB>0.4` at the end of a text.
static TRAIL_SEP: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(r"(?i)(?P<sep>\s*[-–—|~:,;→=/·•]+|\s*=>|\s*->|\s)\s*[*_]*\s*SPEC\s*[*_]*\s*[.,;!]?\s*$")
});
/// `(0.4) ...`, `[40%] ...` before a text.
pub(super) static LEAD_BRACKET: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(r"(?i)^[*_]*\s*[\(\[\{]\s*[*_]*\s*SPEC\s*[*_]*\s*[\)\]\}]\s*[*_]*\s*[:\-–—|]?\s*[*_]*\s*")
});
/// `0.4 — ...`, `40%: ...`, `Probability 0.4: ...` before a text.
pub(super) static LEAD_SEP: LazyLock<Regex> =
    LazyLock::new(|| spec_regex(r"(?i)^[*_]*\s*SPEC\s*[*_]*\s*(?:[:\-–—|=/·•]|->|=>|→|\t)\s*[*_]*\s*"));
/// What may follow a quoted text: its probability in any form.
static AFTER_QUOTE: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(
        r"(?i)^[*_]*\s*(?:[-–—|:,;→~]+\s*)?[*_]*\s*[\(\[\{]?\s*[*_]*\s*SPEC\s*[*_]*\s*[\)\]\}]?\s*[*_]*\s*[.,;!]?\s*$",
    )
});
/// A line that is only a probability: `(0.4)`, `40%`, `*p = 0.4*`.
pub(super) static BARE_PROB: LazyLock<Regex> = LazyLock::new(|| {
    spec_regex(r"(?i)^[*_]*\s*[\(\[\{]?\s*[*_]*\s*SPEC\s*[*_]*\s*[\)\]\}]?\s*[*_]*\s*[.,;]?$")
});
/// A value that starts with a number: `0.4`, `40%`, `~0.4 (fairly likely)`, `**0.4**`.
static VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[*_\s\(\[~≈]*(?:about|approx\.?|approximately|around)?\s*(?P<num>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<pct>%|percent)?")
        .expect("valid regex")
});

/// The probability a match of one of the regexes above states, and whether it is clearly a
/// probability (labelled, a percentage, or a decimal) rather than any number.
pub(super) fn stated_from(c: &Captures) -> Option<(Stated, bool)> {
    let num = c.name("num")?.as_str();
    let v: f64 = num.parse().ok()?;
    let percent = c.name("pct").is_some();
    let clear = c.name("label").is_some() || percent || c.name("word").is_some() || num.contains('.');
    Some((Stated::Value { v, percent }, clear))
}

/// A probability value as written in a tag, a table cell or after a `Probability:` label:
/// the number it starts with (a `%` makes it a percentage); no number is invalid, nothing
/// is missing.
pub(super) fn number_stated(s: &str) -> Stated {
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
pub(super) fn split_item(s: &str, repairs: &mut Vec<Repair>) -> (String, Stated) {
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
        // Only whitespace before the number: a tab is a column separator (`Sure.<TAB>0.4`,
        // `Sure.<TAB>40`), and so are two spaces or more before a clear probability.
        let spec_start = c.name("label").or_else(|| c.name("num")).map_or(t.len(), |m| m.start());
        let gap = &t[start..spec_start];
        let blank = gap.chars().all(char::is_whitespace);
        let tab = blank && gap.contains('\t');
        let aligned = blank && gap.chars().count() >= 2;
        if let Some((stated, clear)) = stated_from(&c).filter(|_| !t[..start].trim().is_empty()) {
            if if spaced { labelled || tab || (aligned && clear) } else { clear } {
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
pub(super) fn digit_near(t: &str, start: bool) -> bool {
    let b = t.as_bytes();
    let window = if start { &b[..b.len().min(48)] } else { &b[b.len().saturating_sub(48)..] };
    window.iter().any(u8::is_ascii_digit)
}

/// Whether `t`, after emphasis, brackets and heading marks, starts with one of `words`
/// (case-insensitive): a cheap test before a label regex.
pub(super) fn starts_with_word(t: &str, words: &[&str]) -> bool {
    let t = t.trim_start_matches(|c: char| matches!(c, '*' | '_' | '#' | '(' | '[') || c.is_whitespace());
    let head = t.as_bytes();
    words.iter().any(|w| head.len() >= w.len() && head[..w.len()].eq_ignore_ascii_case(w.as_bytes()))
}

/// Words a `Response 1:` label starts with.
pub(super) const LABEL_WORDS: [&str; 9] =
    ["response", "reply", "option", "candidate", "answer", "choice", "sample", "variant", "alternative"];
/// Words a `key: value` line starts with.
pub(super) const KEY_WORDS: [&str; 18] = [
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
pub(super) fn clean_text(s: &str, after_spec: bool, repairs: &mut Vec<Repair>) -> String {
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
pub(super) fn cut_spec_start(text: &str) -> Option<usize> {
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
pub(super) fn cut_bracket_start(text: &str) -> Option<usize> {
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
pub(super) fn is_key_start(text: &str) -> bool {
    let t = text.trim().to_ascii_lowercase();
    !t.is_empty()
        && t.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
        && TEXT_KEYS.iter().chain(PROB_KEYS.iter()).any(|k| k.starts_with(t.as_str()))
}

/// Whether a text looks cut off: an unclosed quote, or an end mid-sentence.
pub(super) fn looks_cut(text: &str) -> bool {
    let t = text.trim_end();
    let Some(last) = t.chars().last() else { return true };
    let opened = t.starts_with(['"', '\u{201c}']) && !t[1..].contains(['"', '\u{201d}']);
    opened || last.is_alphanumeric() || matches!(last, ',' | ';' | ':' | '-' | '–' | '—' | '(' | '$' | '\'')
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
}
