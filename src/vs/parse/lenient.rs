//! Cheap, recorded repairs of JSON as models get it wrong: quotes, trailing commas, unquoted
//! keys, comments, bare percentages, raw newlines and cut-off ends.

use serde_json::Value;

use super::Repair;

/// Parses `src` after cheap, recorded repairs of what models get wrong in JSON.
pub(super) fn lenient_parse(src: &str) -> Option<(Value, Vec<Repair>)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
