//! Linguistic metrics of dialogue text: Distinct-N and the Flesch–Kincaid grade level.
//!
//! Tokenisation (shared by both): text is lowercased and split into maximal runs of
//! Unicode alphanumeric characters; an apostrophe (`'` or `’`, stored as `'`) stays
//! inside a token only when it sits between two alphanumerics (`don't`, `children's`),
//! so quotes and leading/trailing apostrophes are separators. Everything else
//! (punctuation, symbols, whitespace) separates tokens; `$1.50` gives `1` and `50`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use statrs::statistics::Statistics;

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// The tokens of `text`, as described in the module documentation.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if is_apostrophe(c) && !cur.is_empty() && chars.peek().is_some_and(|n| n.is_alphanumeric()) {
            cur.push('\'');
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// How Distinct-N aggregates over several texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Unique n-grams over all texts divided by all n-grams of all texts (corpus level:
    /// repetition *across* texts lowers it).
    Pooled,
    /// The mean over texts of each text's own ratio (texts with no n-gram are skipped).
    PerTextMean,
}

/// Distinct-N: the number of distinct n-grams of tokens divided by the number of n-grams.
/// N-grams never span two texts. In `(0, 1]`; `None` if `n == 0` or there is no n-gram at
/// all (every text shorter than `n` tokens).
pub fn distinct_n<S: AsRef<str>>(texts: &[S], n: usize, pooling: Pooling) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let toks: Vec<Vec<String>> = texts.iter().map(|t| tokens(t.as_ref())).collect();
    match pooling {
        Pooling::Pooled => {
            let mut seen: HashSet<&[String]> = HashSet::new();
            let mut total = 0usize;
            for t in &toks {
                for g in t.windows(n) {
                    seen.insert(g);
                    total += 1;
                }
            }
            (total > 0).then(|| seen.len() as f64 / total as f64)
        }
        Pooling::PerTextMean => {
            let ratios: Vec<f64> = toks
                .iter()
                .filter(|t| t.len() >= n)
                .map(|t| {
                    let grams: HashSet<&[String]> = t.windows(n).collect();
                    grams.len() as f64 / (t.len() + 1 - n) as f64
                })
                .collect();
            (!ratios.is_empty()).then(|| ratios.iter().mean())
        }
    }
}

fn is_vowel(c: char) -> bool {
    matches!(
        c,
        'a' | 'e'
            | 'i'
            | 'o'
            | 'u'
            | 'y'
            | 'à'
            | 'á'
            | 'â'
            | 'ä'
            | 'è'
            | 'é'
            | 'ê'
            | 'ë'
            | 'ì'
            | 'í'
            | 'î'
            | 'ï'
            | 'ò'
            | 'ó'
            | 'ô'
            | 'ö'
            | 'ù'
            | 'ú'
            | 'û'
            | 'ü'
    )
}

/// Estimated syllables of one word, by a vowel-group heuristic:
/// 1. keep the word's letters only, lowercased (`don't` → `dont`); no letters → 0;
/// 2. a word of at most 3 letters has 1 syllable;
/// 3. otherwise count maximal groups of vowels (`a e i o u y` and their accented forms;
///    a leading `y` is a consonant), then drop one for a silent ending:
///    - final `e` (`make`, `donate`), except after a vowel (`free`, `canoe`) or in a
///      consonant + `le` ending (`table`, `people`);
///    - final `ed` after a consonant other than `t`/`d` (`helped`; not `wanted`);
///    - final `es` after a consonant other than `s`, `x`, `z`, or `ch`/`sh`/`ce`/`ge`
///      (`makes`; not `boxes`, `wishes`, `changes`);
///
///    but never below 1.
pub fn syllables(word: &str) -> usize {
    let w: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect();
    let len = w.len();
    if len == 0 {
        return 0;
    }
    if len <= 3 {
        return 1;
    }
    let vowel_at = |i: usize| is_vowel(w[i]) && !(i == 0 && w[i] == 'y');
    let mut groups = 0usize;
    let mut in_group = false;
    for i in 0..len {
        let v = vowel_at(i);
        if v && !in_group {
            groups += 1;
        }
        in_group = v;
    }
    let consonant_at = |i: usize| w[i].is_alphabetic() && !vowel_at(i);
    let last = w[len - 1];
    let prev = w[len - 2];
    let silent = if last == 'e' {
        let le_ending = prev == 'l' && consonant_at(len - 3);
        consonant_at(len - 2) && !le_ending
    } else if last == 'd' && prev == 'e' {
        let p = w[len - 3];
        consonant_at(len - 3) && p != 't' && p != 'd'
    } else if last == 's' && prev == 'e' {
        let p = w[len - 3];
        let pp = w[len - 4];
        let sibilant =
            matches!(p, 's' | 'x' | 'z') || (p == 'h' && matches!(pp, 'c' | 's')) || matches!(p, 'c' | 'g');
        consonant_at(len - 3) && !sibilant
    } else {
        false
    };
    if silent && groups > 1 {
        groups -= 1;
    }
    groups.max(1)
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '»')
}

/// Splits `text` into sentences: a sentence ends at a run of `.`, `!`, `?` or `…`
/// (optionally followed by closing quotes or brackets) that is followed by whitespace
/// or the end of the text. So `$1.50` and `e.g.x` do not split, while abbreviations
/// such as `Mr. Smith` do (a known limitation of punctuation-based splitting).
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let idx: Vec<(usize, char)> = text.char_indices().collect();
    let mut start = 0usize;
    let mut i = 0usize;
    while i < idx.len() {
        if is_terminator(idx[i].1) {
            let mut j = i;
            while j < idx.len() && is_terminator(idx[j].1) {
                j += 1;
            }
            while j < idx.len() && is_closer(idx[j].1) {
                j += 1;
            }
            if j == idx.len() || idx[j].1.is_whitespace() {
                let end = idx.get(j).map_or(text.len(), |(b, _)| *b);
                out.push(&text[start..end]);
                start = end;
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out.into_iter().map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// Words for readability: tokens with at least one letter (bare numbers are not words).
fn words(text: &str) -> Vec<String> {
    tokens(text).into_iter().filter(|t| t.chars().any(char::is_alphabetic)).collect()
}

/// Flesch–Kincaid grade level:
/// `0.39 · words/sentences + 11.8 · syllables/words − 15.59`.
///
/// Words are tokens containing a letter, sentences are the pieces of [`sentences`] that
/// contain a word, and syllables come from [`syllables`]. `None` for a text with no word.
pub fn flesch_kincaid_grade(text: &str) -> Option<f64> {
    flesch_kincaid_grade_utterances(&[text])
}

/// [`flesch_kincaid_grade`] over many utterances together, each ending a sentence (chat
/// messages often lack final punctuation, and joining them would run sentences together).
pub fn flesch_kincaid_grade_utterances<S: AsRef<str>>(texts: &[S]) -> Option<f64> {
    let mut n_words = 0usize;
    let mut n_sentences = 0usize;
    let mut n_syllables = 0usize;
    for s in texts.iter().flat_map(|t| sentences(t.as_ref())) {
        let ws = words(s);
        if ws.is_empty() {
            continue;
        }
        n_sentences += 1;
        n_words += ws.len();
        n_syllables += ws.iter().map(|w| syllables(w)).sum::<usize>();
    }
    if n_words == 0 {
        return None;
    }
    let (w, s, y) = (n_words as f64, n_sentences as f64, n_syllables as f64);
    Some(0.39 * (w / s) + 11.8 * (y / w) - 15.59)
}
