//! Reading candidates from lines: numbered or bulleted lists, `Response 1:` /
//! `Probability:` blocks and YAML-like entries.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::candidates::is_placeholder;
use super::items::{ListFound, RawItem, Stated};
use super::prose::{
    clean_text, cut_bracket_start, cut_spec_start, digit_near, is_key_start, looks_cut, number_stated,
    split_item, starts_with_word, stated_from, BARE_PROB, KEY_WORDS, LABEL_WORDS, LEAD_BRACKET, LEAD_SEP,
};
use super::{Repair, TEXT_KEYS};

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
    Regex::new(r"^[*_]{0,2}[\(\[]?(?:(?:(?P<n>\d{1,3})(?:[.)\]:]|\s+[-–—])|(?P<l>[A-Ha-h])[.)\]])[*_]{0,2}(?:\s+(?P<rest>.*))?|(?P<tn>\d{1,3})\t(?P<trest>.*))$")
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
        // `1<TAB>Sure<TAB>0.4`: a numbered column.
        (Mark::Number, mark_number(&c), c.name("rest").or_else(|| c.name("trest")).map_or("", |m| m.as_str()))
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
    match (c.name("n").or_else(|| c.name("tn")), c.name("l")) {
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
    pub(super) fn new(mark: Mark, indent: usize, number: Option<u32>, line: usize) -> Self {
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
pub(super) fn line_list(body: &str) -> Option<ListFound> {
    line_list_of(body).or_else(|| {
        // `Sure (60%) | No (40%)`, `Sure: 0.6; No: 0.4`: items on one line, each with its
        // probability, separated by `|` or `;`.
        let mut nonblank = body.lines().filter(|l| !l.trim().is_empty());
        let line = nonblank.next().filter(|_| nonblank.next().is_none())?;
        let sep = ['|', ';'].into_iter().find(|&c| line.contains(c))?;
        let parts: Vec<&str> = line.split(sep).map(str::trim).filter(|p| !p.is_empty()).collect();
        if parts.len() < 2 || !parts.iter().all(|p| split_item(p, &mut Vec::new()).1.is_value()) {
            return None;
        }
        line_list_of(&(parts.join("\n") + "\n"))
    })
}

fn line_list_of(body: &str) -> Option<ListFound> {
    let rows: Vec<std::borrow::Cow<'_, str>> = body.lines().take(MAX_LINES).map(pipe_row).collect();
    let lines: Vec<&str> = rows.iter().map(|r| r.as_ref()).collect();
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

/// A row of a table without a header separator (`| Sure. | 0.4 |`, `| 1 | Sure. | 0.4 |`) as a
/// line whose cells are separated by ` | `, without its outer pipes or an index cell, so that
/// the text and its probability read as any separated line; other lines as they are.
fn pipe_row(line: &str) -> std::borrow::Cow<'_, str> {
    let t = line.trim();
    let Some(inner) = t.strip_prefix('|').and_then(|r| r.strip_suffix('|')) else {
        return line.into();
    };
    let mut cells: Vec<&str> = inner.split('|').map(str::trim).collect();
    if cells.len() < 2 {
        return line.into();
    }
    if cells.len() > 2
        && (cells[0] == "#" || (cells[0].len() <= 3 && cells[0].chars().all(|c| c.is_ascii_digit())))
    {
        cells.remove(0);
    }
    cells.join(" | ").into()
}

#[cfg(test)]
mod tests {
    use super::*;

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
