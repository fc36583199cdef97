//! Reading XML-like `<response>` tags, the format of the VS paper's own prompts.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::candidates::is_placeholder;
use super::items::{ListFound, RawItem, Stated};
use super::prose::number_stated;
use super::single::strip_quotes;
use super::{Repair, PROB_KEYS, REASONING_KEYS, TEXT_KEYS};

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
    /// The reply was cut off inside the text child: `text` is what came before the cut.
    text_cut: bool,
}

/// Candidates in XML-like tags: `<response>` elements (or `<candidate>`, `<item>`, ...) each
/// with a `<text>` and a `<probability>` (or `<confidence>`, ...) child, a `probability`
/// attribute, or the text as its content; else `<text>` elements each followed by its
/// probability. The element name whose elements carry the most probabilities, then texts,
/// wins, so that `<item><response>..</response><probability>..` is read by `item`.
pub(super) fn tag_list(body: &str) -> Option<ListFound> {
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
    let count = items.len();
    for (position, mut item) in items.into_iter().enumerate() {
        if item.text_cut {
            // Only a first candidate cut inside its text is kept (up to the cut); a later one
            // is dropped, as the complete ones before it stand.
            if out.is_empty() && position + 1 == count {
                repairs.push(Repair::TextCut);
                item.cut = false;
            } else {
                item.text = None;
            }
        }
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
    let mut text_cut = false;
    let (text, text_key) = match child(s, tags, from, to, end, &text_names) {
        Some(c) if c.complete => (Some(c.content), Some(c.written)),
        Some(c) => {
            text_cut = true;
            let before = partial_tag_start(&c.content).map_or(c.content.as_str(), |at| &c.content[..at]);
            (Some(before.trim_end().to_string()), Some(c.written))
        }
        None => match attrs.iter().find(|(k, _)| text_names.contains(&k.to_ascii_lowercase().as_str())) {
            Some((k, v)) => (Some(v.clone()), Some(k.clone())),
            None if open.self_close => (None, None),
            None => (content_text(s, tags, from, to, open.end, end, prob.as_ref(), closed), None),
        },
    };
    let cut = !closed;
    let stated = if cut && !prob_complete { Stated::Missing } else { stated };
    TagItem { text, text_key, stated, prob_key, cut, text_cut }
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
            text_cut: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
