//! Cheap, recorded repairs of JSON as models get it wrong: quotes, trailing commas, unquoted
//! keys, comments, bare percentages, raw newlines and cut-off ends.

use serde_json::Value;

use super::Repair;

/// Parses `src` after cheap, recorded repairs of what models get wrong in JSON.
///
/// Typographic quotes (`“text”: “Sure”`) are read as string delimiters only when the reply
/// holds some and reading them so yields JSON: a reply whose strings merely contain them
/// (`"He said “no”"`) is read as written.
///
/// Quotes inside a text that the model did not escape (`"He said "no" and left"`) are read
/// as part of the text, in a last pass, when a quote is followed by words rather than by
/// JSON structure.
pub(super) fn lenient_parse(src: &str) -> Option<(Value, Vec<Repair>)> {
    if src.chars().any(|c| quote_family(c).is_some()) {
        let (fixed, repairs) = lenient_fix(src, Pass { typographic: true, loose_quotes: false });
        if repairs.contains(&Repair::TypographicQuotes) {
            if let Ok(v) = serde_json::from_str::<Value>(&fixed) {
                return Some((v, repairs));
            }
        }
    }
    let (fixed, repairs) = lenient_fix(src, Pass::PLAIN);
    if !repairs.is_empty() {
        if let Ok(v) = serde_json::from_str::<Value>(&fixed) {
            return Some((v, repairs));
        }
    }
    if src.matches('"').count() > 2 {
        let (fixed, repairs) = lenient_fix(src, Pass { typographic: false, loose_quotes: true });
        if repairs.contains(&Repair::UnescapedQuotes) {
            return serde_json::from_str::<Value>(&fixed).ok().map(|v| (v, repairs));
        }
    }
    None
}

/// What one pass of [`lenient_fix`] reads besides plain JSON strings.
#[derive(Debug, Clone, Copy)]
struct Pass {
    /// Typographic quotes outside strings open strings.
    typographic: bool,
    /// A `"` inside a string ends it only where JSON structure follows.
    loose_quotes: bool,
}

impl Pass {
    const PLAIN: Pass = Pass { typographic: false, loose_quotes: false };
}

/// Which family of quotes a typographic quote belongs to: `Some(true)` for double quotes
/// (`“ ” „ ‟ « » ″ ＂`), `Some(false)` for single ones (`‘ ’ ‚ ‛ ‹ › ′`).
fn quote_family(c: char) -> Option<bool> {
    match c {
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{ab}' | '\u{bb}' | '\u{2033}' | '\u{ff02}' => {
            Some(true)
        }
        '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2039}' | '\u{203a}' | '\u{2032}' => {
            Some(false)
        }
        _ => None,
    }
}

/// Whether a typographic quote at `i` closes the string it opened: it is one of the opener's
/// family (or the ASCII quote of that family) and what follows is JSON structure: the end, a
/// `}` or `]`, a `:` before a value, or a `,` before a key or a value. A quote followed by
/// words (`“He said “no”, then left”`) is part of the text.
fn closes_typographic(chars: &[char], i: usize, double: bool) -> bool {
    let c = chars[i];
    let ascii = if double { '"' } else { '\'' };
    if c != ascii && quote_family(c) != Some(double) {
        return false;
    }
    let next = |from: usize| (from..chars.len()).find(|&j| !chars[j].is_whitespace());
    let Some(j) = next(i + 1) else { return true };
    let value_start = |k: Option<usize>| match k {
        None => true,
        Some(k) => {
            let d = chars[k];
            if matches!(d, '"' | '\'' | '{' | '[' | ']' | '}' | '-' | '.') || d.is_ascii_digit() {
                return true;
            }
            if quote_family(d).is_some() {
                return true;
            }
            let word: String =
                chars[k..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_').collect();
            let after = next(k + word.len());
            matches!(word.as_str(), "true" | "false" | "null" | "True" | "False" | "None" | "NaN")
                || (!word.is_empty() && after.is_some_and(|a| chars[a] == ':'))
        }
    };
    match chars[j] {
        '}' | ']' => true,
        ':' | ',' => value_start(next(j + 1)),
        _ => false,
    }
}

/// One pass over `src` outside strings: single quotes, trailing commas, unquoted keys,
/// non-JSON literals, comments, bare percentages, raw newlines in strings, and a cut-off end (closed
/// after the last complete value inside a list or object), missing commas between values,
/// and numbers written `.6` or `0,6`. See [`Pass`] for what else a pass reads.
// Long on purpose: one pass of a character-level repair machine whose states share the cursor and the output buffer; split, each part would need all of them.
fn lenient_fix(src: &str, pass: Pass) -> (String, Vec<Repair>) {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 8);
    let mut repairs: Vec<Repair> = Vec::new();
    let mut stack: Vec<char> = Vec::new();
    // (length of `out`, stack) after the last complete value closed inside a container.
    let mut safe: Option<(usize, Vec<char>)> = None;
    // Where in `out` the last string opened.
    let mut string_start = 0;
    let mut i = 0;
    let mut truncated = false;
    while i < chars.len() {
        let c = chars[i];
        let family = if pass.typographic { quote_family(c) } else { None };
        let opens_value = c == '"' || c == '\'' || c == '{' || c == '[' || c == '(' || family.is_some();
        if opens_value && !stack.is_empty() && ends_value(&out) {
            // `"Sure" "probability"`, `} {`: the comma between two values is missing.
            note(Repair::MissingCommas, &mut repairs);
            out.push(',');
        }
        match c {
            c if c == '"' || c == '\'' || family.is_some() => {
                let quote = c;
                if family.is_some() {
                    note(Repair::TypographicQuotes, &mut repairs);
                } else if quote == '\'' {
                    note(Repair::SingleQuotes, &mut repairs);
                }
                // A value's text may hold quotes a model forgot to escape; a key may not.
                let loose = pass.loose_quotes
                    && quote == '"'
                    && match out.trim_end().chars().last() {
                        Some(':' | '[') => true,
                        Some(',') => stack.last() == Some(&'['),
                        _ => false,
                    };
                string_start = out.len();
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
                    let closes = match family {
                        Some(double) => closes_typographic(&chars, i, double),
                        None if loose => d == '"' && closes_typographic(&chars, i, true),
                        // `"probability”: 0.4`: opened plainly, closed typographically.
                        None if pass.typographic && quote == '"' && quote_family(d) == Some(true) => {
                            let closes = closes_typographic(&chars, i, true);
                            if closes {
                                note(Repair::TypographicQuotes, &mut repairs);
                            }
                            closes
                        }
                        None => d == quote,
                    };
                    if closes {
                        closed = true;
                        i += 1;
                        break;
                    }
                    match d {
                        '"' => {
                            if quote == '"' {
                                note(Repair::UnescapedQuotes, &mut repairs);
                            }
                            out.push_str("\\\"");
                        }
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
            '{' | '[' | '(' => {
                // `("Sure", 0.6)`: a Python tuple is a list.
                let c = if c == '(' {
                    note(Repair::TupleBrackets, &mut repairs);
                    '['
                } else {
                    c
                };
                stack.push(c);
                out.push(c);
                i += 1;
            }
            '}' | ']' | ')' if c != ')' || stack.last() == Some(&'[') => {
                let c = if c == ')' { ']' } else { c };
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
                let mut num: String = chars[i..j].iter().collect();
                if let Some(rest) = num.strip_prefix('.').or_else(|| num.strip_prefix("-.")) {
                    // `.6`, `-.5`
                    note(Repair::NumberFormat, &mut repairs);
                    num = format!("{}0.{rest}", if num.starts_with('-') { "-" } else { "" });
                }
                if let Some(end) = decimal_comma(&chars, j, &num, &out) {
                    // `"probability": 0,6}`
                    note(Repair::NumberFormat, &mut repairs);
                    num.push('.');
                    num.extend(&chars[j + 1..end]);
                    j = end;
                }
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
    if truncated && safe.is_none() {
        if let Some(closed) = close_cut_string(&out, string_start, &stack) {
            note(Repair::TextCut, &mut repairs);
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

/// Closes JSON cut off inside a string value before any item was complete
/// (`{"responses": [{"text": "I would like to`): the string ends at the cut and the brackets
/// are closed, so that a first candidate whose text never ended (a model rambling until
/// `max_tokens`) is kept up to the cut. A half-written escape at the cut is dropped; a cut
/// inside a key, or in a value that is only whitespace, is not closed.
fn close_cut_string(out: &str, start: usize, stack: &[char]) -> Option<String> {
    let before = out.get(..start)?;
    if !before.trim_end().ends_with(':') || stack.is_empty() {
        return None;
    }
    let closers: String = stack.iter().rev().map(|b| if *b == '{' { '}' } else { ']' }).collect();
    let mut content = out.get(start + 1..)?;
    // A cut escape (`\u20`, `\`) leaves at most five characters that do not parse.
    for _ in 0..6 {
        let trimmed = content.trim_end();
        if trimmed.is_empty() {
            return None;
        }
        let attempt = format!("{before}\"{trimmed}\"{closers}");
        if serde_json::from_str::<Value>(&attempt).is_ok() {
            return Some(attempt);
        }
        let mut end = content.len() - 1;
        while !content.is_char_boundary(end) {
            end -= 1;
        }
        content = &content[..end];
    }
    None
}

/// Whether `out` ends (before whitespace) with a complete value: a string, an object, a
/// list, a number or a literal, so that another value right after it lacks a comma.
fn ends_value(out: &str) -> bool {
    out.trim_end().chars().last().is_some_and(|c| matches!(c, '"' | '}' | ']') || c.is_ascii_alphanumeric())
}

/// Where a decimal written with a comma ends (`0,6` as an object's last value: `: 0,6}`),
/// given the integer part `num` ending at `j`; `None` for anything else (`[0,6]` is a list).
fn decimal_comma(chars: &[char], j: usize, num: &str, out: &str) -> Option<usize> {
    if chars.get(j) != Some(&',') || num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !out.trim_end().ends_with(':') {
        return None;
    }
    let end = (j + 1..chars.len()).find(|&k| !chars[k].is_ascii_digit()).unwrap_or(chars.len());
    if end == j + 1 {
        return None;
    }
    let next = (end..chars.len()).find(|&k| !chars[k].is_whitespace());
    next.is_some_and(|k| chars[k] == '}').then_some(end)
}

fn note(r: Repair, repairs: &mut Vec<Repair>) {
    if !repairs.contains(&r) {
        repairs.push(r);
    }
}

fn next_is_alpha(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cut_outside_a_string_is_closed() {
        let (fixed, repairs) = lenient_fix(r#"{"responses": [{"text": "A", "probability": 0."#, Pass::PLAIN);
        assert_eq!(fixed, r#"{"responses": [{"text": "A", "probability": null}]}"#);
        assert_eq!(repairs, vec![Repair::ClosedTruncated]);
        let (fixed, _) = lenient_fix(r#"{"responses": [{"text": "A"}, {"text": "B", "prob"#, Pass::PLAIN);
        assert_eq!(fixed, r#"{"responses": [{"text": "A"}]}"#);
        let (fixed, repairs) = lenient_fix("{\"a\": 1, // note\n\"b\": 2 /* x */}", Pass::PLAIN);
        assert_eq!(serde_json::from_str::<Value>(&fixed).unwrap(), serde_json::json!({"a": 1, "b": 2}));
        assert_eq!(repairs, vec![Repair::Comments]);
    }
}
