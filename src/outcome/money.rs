//! Reading a donation from what a person wrote, for the `money` fallback of a number outcome.
//!
//! People state amounts in many forms ("$1.50", "1.50 dollars", "50 cents", "50¢", "$.50",
//! "a dollar and a half", "half", "all of it", "nothing"), and they also mention money that
//! is not their donation ("I earned $2", "out of my $2", "the $2 payment"). The reader
//! finds every amount, decides from the words around it whether it is stated as a donation,
//! and keeps the last one stated as a donation: people revise ("$1... actually, make it 50
//! cents"), and the last statement is what they settled on.
//!
//! The rules, in the order they apply to one amount:
//! - forms: `$N`, `N$`, `N dollars|bucks|usd`, `N cents|¢|c`, number words up to
//!   ninety-nine ("twenty-five cents"), "a/one dollar", "half a dollar", "a dollar and a
//!   half", "$1 and 50 cents", "a dollar fifty", coins ("a quarter", "two dimes");
//!   `$1,000` reads as 1000 (and the range check then refuses it, rather than truncating);
//! - `all|whole|entire|full` before it ("the whole $2", "all of my $2") make it a donation
//!   of that amount;
//! - the pot is not a donation: after "out of", "from", "of my/the" or "half of" ("$1 out
//!   of my $2"), before a payment word ("the $2 payment", "$2 for this task", "the $2 we
//!   earned", "$2 each"), or after an earning verb ("I earned $2", "we each got $2");
//! - an amount kept states the rest of the payment as the donation ("I'll keep $1.50" is
//!   0.50, "I'll keep my $2" is 0, "that leaves me 50 cents" is 1.50); an amount after
//!   "than" ("no more than $1") is a bound, not a statement;
//! - a negated donation verb refuses the amount after it ("I can't give $2"), and with no
//!   amount after it in its clause states 0 ("I won't donate", "not donate anything", "no
//!   donation", "I'll pass"); "not" before an amount refuses it ("but not the whole $2");
//! - shares of the payment ("half", "a quarter of it", "10%", "all of it", "everything",
//!   "nothing", "none", "not a cent") count only after a donation verb ("I'll donate
//!   half"), with a money word ("half of my payment"), or as a whole short answer ("Half.");
//! - a bare number counts only right after a donation verb ("I'll donate 1.50", "give
//!   two") or as a whole short answer ("Probably 1.50").
//!
//! Word boundaries hold throughout: text is split into whole words and numbers first, so
//! "$20" is 20 (never 2), "someone" is no "one", and "mp3" no amount.

use std::sync::LazyLock;

use regex::Regex;

/// Reads donations relative to the payment the speaker holds: "half" is half of it, "all of
/// it" is all of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MoneyReader {
    payment: f64,
}

impl MoneyReader {
    /// A reader for a speaker who holds `payment` (e.g. 2.0 for the $2 task payment).
    pub fn new(payment: f64) -> Self {
        Self { payment }
    }

    /// The payment "half" and "all of it" refer to.
    pub fn payment(&self) -> f64 {
        self.payment
    }

    /// The last donation stated in `text`, as written: "$1,000" is 1000, not truncated.
    pub fn stated(&self, text: &str) -> Option<f64> {
        let normalized = normalize(text);
        let tokens = tokenize(&normalized);
        let found = mentions(&tokens);
        found.iter().enumerate().rev().find_map(|(n, m)| self.donation_of(&tokens, m, &found[n + 1..]))
    }

    /// The last stated donation when it lies in `[min, max]`; `None` when there is none or
    /// it lies outside (refused, never clamped).
    pub fn donation(&self, text: &str, min: f64, max: f64) -> Option<f64> {
        self.stated(text).filter(|x| (min..=max).contains(x))
    }

    /// The donation one mention states, if it states one.
    fn donation_of(&self, t: &[Tok<'_>], m: &Mention, later: &[Mention]) -> Option<f64> {
        match *m {
            Mention::Amount { start, end, value } => self.amount_donation(t, start, end, value),
            Mention::Bare { value, .. } => Some(value),
            Mention::Share { start, fraction, with_money } => {
                let share = fraction * self.payment;
                if refused_phrase(t, start) {
                    return None;
                }
                match cue_before(t, start) {
                    Cue::Donate => Some(share),
                    Cue::Keep => Some(self.payment - share),
                    Cue::None if with_money || answer_like(t, start) => Some(share),
                    _ => None,
                }
            }
            Mention::Refusal { at } => {
                let clause_end = clause_end(t, at);
                let answered = later.iter().any(|l| l.start() > at && l.start() < clause_end);
                (!answered).then_some(0.0)
            }
        }
    }

    /// Whether an amount is stated as a donation, from the words around it.
    fn amount_donation(&self, t: &[Tok<'_>], start: usize, end: usize, value: f64) -> Option<f64> {
        if refused_phrase(t, start) {
            return None;
        }
        if whole_before(t, start) {
            return Some(value);
        }
        if pot_before(t, start) || payment_after(t, end) {
            return None;
        }
        if left_after(t, end) {
            return (value <= self.payment).then_some(self.payment - value);
        }
        match cue_before(t, start) {
            Cue::Donate | Cue::None => Some(value),
            Cue::Keep if value <= self.payment => Some(self.payment - value),
            _ => None,
        }
    }
}

/// One word, number or sign of the text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    Num(f64),
    Word(&'a str),
    Dollar,
    Cent,
    Percent,
    /// Punctuation that ends a clause.
    Break,
    /// A number glued to letters ("mp3", "2nd"): never an amount.
    Other,
}

/// Something in the text that may state a donation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mention {
    /// An amount of money, tokens `start..end`.
    Amount { start: usize, end: usize, value: f64 },
    /// A number without a unit right after a donation verb, or as a short answer.
    Bare { at: usize, value: f64 },
    /// A share of the payment (1 is all of it); `with_money` when a money word says what it
    /// is a share of.
    Share { start: usize, fraction: f64, with_money: bool },
    /// A negated donation verb.
    Refusal { at: usize },
}

impl Mention {
    fn start(&self) -> usize {
        match *self {
            Mention::Amount { start, .. } | Mention::Share { start, .. } => start,
            Mention::Bare { at, .. } | Mention::Refusal { at } => at,
        }
    }
}

/// What the nearest telling word before a mention (in its clause) says about it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cue {
    Donate,
    Refuse,
    Earn,
    Keep,
    Compare,
    None,
}

const DONATE: &str = "donate donates donated donating donation donations give gives gave giving given \
    contribute contributes contributed contributing contribution chip pledge pledged pledging offer \
    offered offering spare send sending sent put putting do doing go going say settle commit part afford \
    spend take transfer deduct deducted pay";
const EARN: &str = "earn earned earning earns got get gets getting receive received receiving receives \
    paid make made making makes won own";
/// Verbs of keeping money; "save" is left out, as it names the charity.
const KEEP: &str = "keep keeping kept keeps hold holding retain leave leaves leaving";
const NEGATORS: &str = "not never cannot won't wont can't cant don't dont didn't didnt wouldn't wouldnt \
    shouldn't couldn't isn't aren't unable refuse decline";
/// Words between a negator and a verb that undo the negation ("I don't mind giving").
const UNNEGATE: &str = "mind hesitate wait problem doubt forget sure";
const DETERMINERS: &str = "my the our your this that these those";
const WHOLE: &str = "all whole entire full";
const PAYMENT_WORDS: &str = "payment payments pay paycheck bonus reward earnings wage wages compensation \
    fee salary income";
const TASK_WORDS: &str = "task study hit survey chat job work conversation participating participation \
    taking completing doing experiment";
const MONEY_WORDS: &str = "money payment pay earnings bonus cash reward amount sum dollars wage";
/// Words a share of the pot stands after ("half of the $2").
const SHARE_OF: &str = "half part portion some most bit much any rest quarter third";
/// Words that may sit between a donation verb and a bare number ("give them 1").
const FILLERS: &str = "them it about around maybe like only just probably roughly exactly perhaps";
/// Words that may follow a bare number that is an amount ("donate 1 to them").
const AFTER_BARE: &str = "to for now today and towards toward then please instead of";
/// How far back a cue word is looked for.
const CUE_WINDOW: usize = 8;
/// How far back a negator is looked for from its verb ("don't really want to donate").
const NEGATION_WINDOW: usize = 4;

/// Lower case with typographic apostrophes made plain, so the word lists stay small.
fn normalize(text: &str) -> String {
    text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
}

static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
          (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
        | (?P<word>[a-z]+(?:'[a-z]+)*)
        | (?P<dollar>\$)
        | (?P<cent>¢)
        | (?P<percent>%)
        | (?P<brk>[.!?;:,()\[\]\n]|\s[-–—]+\s|[–—])",
    )
    .expect("the token pattern is valid")
});

/// Splits normalized text into words, numbers, signs and clause breaks.
fn tokenize(text: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    for c in TOKEN.captures_iter(text) {
        if let Some(m) = c.name("num") {
            out.extend(number_tokens(text, m.start(), m.end()));
        } else if let Some(m) = c.name("word") {
            out.push(Tok::Word(m.as_str()));
        } else if c.name("dollar").is_some() {
            out.push(Tok::Dollar);
        } else if c.name("cent").is_some() {
            out.push(Tok::Cent);
        } else if c.name("percent").is_some() {
            out.push(Tok::Percent);
        } else {
            out.push(Tok::Break);
        }
    }
    glue_units(out)
}

/// A number, unless it is glued to letters that are no unit ("mp3", "2nd").
fn number_tokens(text: &str, start: usize, end: usize) -> Option<Tok<'_>> {
    let glued_left = text[..start].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
    let suffix: String = text[end..].chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    let unit_suffix = suffix.is_empty()
        || is_dollar_word(&suffix)
        || is_cent_word(&suffix)
        || suffix == "c"
        || suffix == "percent";
    if glued_left || !unit_suffix {
        return Some(Tok::Other);
    }
    text[start..end].replace(',', "").parse::<f64>().ok().map(Tok::Num)
}

/// Turns a glued "c" after a number ("50c") into a cent sign.
fn glue_units(tokens: Vec<Tok<'_>>) -> Vec<Tok<'_>> {
    let mut out: Vec<Tok<'_>> = Vec::with_capacity(tokens.len());
    for t in tokens {
        let after_number = matches!(out.last(), Some(Tok::Num(_)));
        out.push(if after_number && t == Tok::Word("c") { Tok::Cent } else { t });
    }
    out
}

fn word<'a>(t: &[Tok<'a>], i: usize) -> Option<&'a str> {
    match t.get(i) {
        Some(Tok::Word(w)) => Some(w),
        _ => None,
    }
}

fn word_in(t: &[Tok<'_>], i: usize, list: &str) -> bool {
    word(t, i).is_some_and(|w| among(w, list))
}

/// Whether `w` is one of the space-separated words of `list`.
fn among(w: &str, list: &str) -> bool {
    list.split_whitespace().any(|x| x == w)
}

fn ends_clause(t: &[Tok<'_>], i: usize) -> bool {
    matches!(t.get(i), None | Some(Tok::Break))
}

fn is_dollar_word(w: &str) -> bool {
    matches!(w, "dollar" | "dollars" | "buck" | "bucks" | "usd")
}

fn is_cent_word(w: &str) -> bool {
    matches!(w, "cent" | "cents")
}

/// Words that may open a short answer ("Probably half.").
const LEADS: &str = "about around maybe probably perhaps just only ok okay well so um hmm i'd i'll say \
    roughly exactly";

/// Whether the mention at `start` is a whole short answer: at most four words, with only
/// openers before it ("Half.", "Nothing, sorry.", "Probably 1.50").
fn answer_like(t: &[Tok<'_>], start: usize) -> bool {
    let words = t.iter().filter(|x| matches!(x, Tok::Word(_) | Tok::Num(_))).count();
    let opened = t[..start].iter().all(|x| match x {
        Tok::Word(w) => among(w, LEADS),
        Tok::Break => true,
        _ => false,
    });
    words <= 4 && opened
}

/// The index of the first clause break at or after `i`.
fn clause_end(t: &[Tok<'_>], i: usize) -> usize {
    (i..t.len()).find(|&k| t[k] == Tok::Break).unwrap_or(t.len())
}

/// Number words from zero to ninety-nine ("twenty five", "twenty-five").
fn number_word_at(t: &[Tok<'_>], i: usize) -> Option<(f64, usize)> {
    let first = small_number(word(t, i)?)?;
    if first >= 20 && first % 10 == 0 {
        if let Some(ones) = word(t, i + 1).and_then(small_number).filter(|n| (1..10).contains(n)) {
            return Some(((first + ones) as f64, i + 2));
        }
    }
    Some((first as f64, i + 1))
}

fn small_number(w: &str) -> Option<u32> {
    const UNITS: &str = "zero one two three four five six seven eight nine ten eleven twelve thirteen \
        fourteen fifteen sixteen seventeen eighteen nineteen";
    const TENS: &str = "twenty thirty forty fifty sixty seventy eighty ninety";
    if let Some(n) = UNITS.split_whitespace().position(|u| u == w) {
        return Some(n as u32);
    }
    TENS.split_whitespace().position(|u| u == w).map(|n| 20 + 10 * n as u32)
}

/// A count before a unit: a number, a number word, or "a"/"an" (one).
fn quantity_at(t: &[Tok<'_>], i: usize) -> Option<(f64, usize)> {
    match t.get(i)? {
        Tok::Num(x) => Some((*x, i + 1)),
        Tok::Word("a" | "an") => Some((1.0, i + 1)),
        Tok::Word(_) => number_word_at(t, i),
        _ => None,
    }
}

/// Every mention, in text order; each token belongs to at most one.
fn mentions(t: &[Tok<'_>]) -> Vec<Mention> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let (found, next) = mention_at(t, i);
        out.extend(found);
        i = next;
    }
    out
}

/// The mention starting at `i`, if any, and the index after it.
fn mention_at(t: &[Tok<'_>], i: usize) -> (Option<Mention>, usize) {
    if let Some((value, end)) = amount_at(t, i) {
        return (Some(Mention::Amount { start: i, end, value }), end);
    }
    if let Some((fraction, with_money, end)) = share_at(t, i) {
        return (Some(Mention::Share { start: i, fraction, with_money }), end);
    }
    if let Some((value, end)) = bare_amount(t, i) {
        return (Some(Mention::Bare { at: i, value }), end);
    }
    (refusal_at(t, i).then_some(Mention::Refusal { at: i }), i + 1)
}

/// An amount of money starting at `i`, with the index after it.
fn amount_at(t: &[Tok<'_>], i: usize) -> Option<(f64, usize)> {
    dollar_sign_amount(t, i)
        .or_else(|| unit_amount(t, i))
        .or_else(|| half_dollar(t, i))
        .or_else(|| coins(t, i))
}

/// `$N`, `$ N`, `$.50`, `$1,000`, `N$`, optionally followed by a dollar word and cents.
fn dollar_sign_amount(t: &[Tok<'_>], i: usize) -> Option<(f64, usize)> {
    let (dollars, mut j) = match (t.get(i)?, t.get(i + 1)) {
        (Tok::Dollar, Some(Tok::Num(x))) => (*x, i + 2),
        (Tok::Num(x), Some(Tok::Dollar)) => (*x, i + 2),
        _ => return None,
    };
    if word(t, j).is_some_and(is_dollar_word) {
        j += 1;
    }
    let (cents, end) = cents_tail(t, j);
    Some((dollars + cents, end))
}

/// `N dollars` (with cents after it), `N cents`, `N¢`, in digits or words.
fn unit_amount(t: &[Tok<'_>], i: usize) -> Option<(f64, usize)> {
    let (n, j) = quantity_at(t, i)?;
    if word(t, j).is_some_and(is_dollar_word) {
        let (cents, end) = cents_tail(t, j + 1);
        return Some((n + cents, end));
    }
    if t.get(j) == Some(&Tok::Cent) || word(t, j).is_some_and(is_cent_word) {
        return Some((n / 100.0, j + 1));
    }
    None
}

/// "half a dollar", "half a buck".
fn half_dollar(t: &[Tok<'_>], i: usize) -> Option<(f64, usize)> {
    let shape =
        word(t, i) == Some("half") && word_in(t, i + 1, "a an") && word(t, i + 2).is_some_and(is_dollar_word);
    shape.then_some((0.5, i + 3))
}

/// "a quarter", "two dimes", "a penny"; "a quarter of it" is a share, not a coin.
fn coins(t: &[Tok<'_>], i: usize) -> Option<(f64, usize)> {
    let (n, j) = quantity_at(t, i)?;
    let worth = match word(t, j)? {
        "penny" | "pennies" => 0.01,
        "nickel" | "nickels" => 0.05,
        "dime" | "dimes" => 0.10,
        "quarter" | "quarters" => 0.25,
        _ => return None,
    };
    (word(t, j + 1) != Some("of")).then_some((n * worth, j + 1))
}

/// Cents after a dollar amount: "and a half", "and 50 cents", "50 cents", or a bare
/// "fifty" ending the clause ("a dollar fifty"). Returns (0, j) when there are none.
fn cents_tail(t: &[Tok<'_>], j: usize) -> (f64, usize) {
    let with_and = word(t, j) == Some("and");
    let k = if with_and { j + 1 } else { j };
    if word(t, k) == Some("a") && word(t, k + 1) == Some("half") {
        return (0.5, k + 2);
    }
    let Some((c, m)) = quantity_at(t, k).filter(|(c, _)| *c < 100.0 && c.fract() == 0.0) else {
        return (0.0, j);
    };
    if word(t, k) == Some("a") {
        return (0.0, j);
    }
    if t.get(m) == Some(&Tok::Cent) || word(t, m).is_some_and(is_cent_word) {
        return (c / 100.0, m + 1);
    }
    if !with_and && ends_clause(t, m) {
        return (c / 100.0, m);
    }
    (0.0, j)
}

/// A share of the payment at `i`: the fraction, whether a money word names what it is a
/// share of, and the index after it (and after that money word).
fn share_at(t: &[Tok<'_>], i: usize) -> Option<(f64, bool, usize)> {
    if let Some(found) = percent_at(t, i) {
        return Some(found);
    }
    match word(t, i)? {
        "half" if !word_in(t, i + 1, "a an") => Some(with_object(0.5, t, i + 1)),
        "a" if word(t, i + 1) == Some("quarter") && word(t, i + 2) == Some("of") => {
            Some(with_object(0.25, t, i + 2))
        }
        "everything" => Some((1.0, false, i + 1)),
        "all" => all_of(t, i),
        "it" if word(t, i + 1) == Some("all") => Some((1.0, false, i + 2)),
        "whole" | "entire" | "full" if word_in(t, i + 1, "thing lot amount sum payment money") => {
            Some((1.0, true, i + 2))
        }
        "my" | "the" if word_in(t, i + 1, "money payment earnings pay") => Some((1.0, false, i + 2)),
        "nothing" | "none" | "zero" => Some(with_object(0.0, t, i + 1)),
        "not" if word_in(t, i + 1, "a one single") => not_a_cent(t, i),
        _ => None,
    }
}

/// "10%", "50 percent", "100% of it".
fn percent_at(t: &[Tok<'_>], i: usize) -> Option<(f64, bool, usize)> {
    let Some(Tok::Num(x)) = t.get(i) else { return None };
    let sign = t.get(i + 1) == Some(&Tok::Percent) || word(t, i + 1) == Some("percent");
    sign.then(|| with_object(x / 100.0, t, i + 2))
}

/// A share followed by what it is a share of, if a money word names it ("half of my $2").
fn with_object(fraction: f64, t: &[Tok<'_>], j: usize) -> (f64, bool, usize) {
    match money_object(t, j) {
        Some(end) => (fraction, true, end),
        None => (fraction, false, j),
    }
}

/// "all of it", "all of that", "all (of) my money"; "all of my $2" is left to the amount.
fn all_of(t: &[Tok<'_>], i: usize) -> Option<(f64, bool, usize)> {
    let of = word(t, i + 1) == Some("of");
    let k = if of { i + 2 } else { i + 1 };
    if of && word_in(t, k, "it that this") {
        return Some((1.0, false, k + 1));
    }
    let named = word_in(t, k, DETERMINERS) && word_in(t, k + 1, MONEY_WORDS);
    named.then_some((1.0, true, k + 2))
}

/// "not a cent", "not one penny", "not a single dime".
fn not_a_cent(t: &[Tok<'_>], i: usize) -> Option<(f64, bool, usize)> {
    let k = if word(t, i + 2) == Some("single") { i + 3 } else { i + 2 };
    word_in(t, k, "cent penny dime dollar").then_some((0.0, true, k + 1))
}

/// The end of a money word naming what a share is of: "of my payment", "of the $2", "of
/// it" does not count (it may be anything).
fn money_object(t: &[Tok<'_>], j: usize) -> Option<usize> {
    let k = if word(t, j) == Some("of") { j + 1 } else { j };
    let k = if word_in(t, k, DETERMINERS) { k + 1 } else { k };
    if word_in(t, k, MONEY_WORDS) {
        return Some(k + 1);
    }
    amount_at(t, k).map(|(_, end)| end)
}

/// A number without a unit right after a donation verb ("I'll donate 1.50") or as a short
/// answer ("Probably 1.50.").
fn bare_amount(t: &[Tok<'_>], i: usize) -> Option<(f64, usize)> {
    let (x, end) = match t.get(i) {
        Some(Tok::Num(x)) => (*x, i + 1),
        Some(Tok::Word(_)) => number_word_at(t, i)?,
        _ => return None,
    };
    let mut k = i;
    while k > 0 && word_in(t, k - 1, FILLERS) {
        k -= 1;
    }
    let verb = k > 0 && word_in(t, k - 1, DONATE) && !negated(t, k - 1);
    let after = ends_clause(t, end) || word_in(t, end, AFTER_BARE);
    ((verb || answer_like(t, i)) && after).then_some((x, end))
}

/// A negated donation verb ("won't donate"), "no donation", or "I'll pass".
fn refusal_at(t: &[Tok<'_>], i: usize) -> bool {
    let no_donation = word(t, i) == Some("no") && word_in(t, i + 1, "donation donations");
    let pass = word(t, i) == Some("pass")
        && i.checked_sub(1).is_some_and(|p| word_in(t, p, "i'll i'd will to gonna"))
        && (ends_clause(t, i + 1) || word_in(t, i + 1, "on this for today"));
    let negated_verb = word_in(t, i, DONATE) && !word_in(t, i, "do doing go going say") && negated(t, i);
    no_donation || pass || negated_verb
}

/// Whether a negator stands shortly before the verb at `v`, in its clause.
fn negated(t: &[Tok<'_>], v: usize) -> bool {
    for k in (v.saturating_sub(NEGATION_WINDOW)..v).rev() {
        match t[k] {
            Tok::Break => return false,
            Tok::Word(w) if among(w, UNNEGATE) => return false,
            Tok::Word(w) if among(w, NEGATORS) => return true,
            _ => {}
        }
    }
    false
}

/// The nearest telling word before `start` in its clause, stopping at another amount.
fn cue_before(t: &[Tok<'_>], start: usize) -> Cue {
    for k in (start.saturating_sub(CUE_WINDOW)..start).rev() {
        match t[k] {
            Tok::Break | Tok::Num(_) | Tok::Dollar | Tok::Cent | Tok::Percent => return Cue::None,
            Tok::Word(w) => {
                if let Some(cue) = cue_word(t, k, w) {
                    return cue;
                }
            }
            Tok::Other => {}
        }
    }
    Cue::None
}

/// What the word `w` at `k` says about an amount after it, if anything.
fn cue_word(t: &[Tok<'_>], k: usize, w: &str) -> Option<Cue> {
    let before = k.checked_sub(1).and_then(|p| word(t, p));
    let after = word(t, k + 1);
    let cue = match w {
        "than" => Cue::Compare,
        "make" | "made" | "makes" if matches!(after, Some("it" | "that")) => Cue::Donate,
        "given" if matches!(before, Some("was" | "were" | "been" | "are" | "is")) => Cue::Earn,
        "pay" if matches!(after, Some("us" | "me" | "you" | "them" | "each" | "everyone")) => Cue::Earn,
        "have" | "has" | "had"
            if matches!(
                before,
                Some("i" | "we" | "they" | "you" | "each" | "both" | "only" | "still" | "just")
            ) =>
        {
            Cue::Earn
        }
        _ if among(w, EARN) => Cue::Earn,
        _ if among(w, KEEP) => Cue::Keep,
        _ if among(w, DONATE) => {
            if negated(t, k) {
                Cue::Refuse
            } else {
                Cue::Donate
            }
        }
        _ => return None,
    };
    Some(cue)
}

/// "not" or "never" just before an amount or share, past determiners and `all`/`whole`:
/// "but not the whole $2", "never all of it".
fn refused_phrase(t: &[Tok<'_>], start: usize) -> bool {
    let mut k = start;
    while k > 0 {
        k -= 1;
        match word(t, k) {
            Some("not" | "never") => return true,
            Some(w) if among(w, DETERMINERS) || among(w, WHOLE) || matches!(w, "of" | "even" | "quite") => {}
            _ => return false,
        }
    }
    false
}

/// "left" or "remaining" right after an amount: what is kept ("50 cents left").
fn left_after(t: &[Tok<'_>], end: usize) -> bool {
    word_in(t, end, "left remaining leftover")
}

/// `all`, `whole`, `entire` or `full` just before an amount: "the whole $2", "all of my $2".
fn whole_before(t: &[Tok<'_>], start: usize) -> bool {
    let mut k = start;
    let mut skipped = 0;
    while k > 0 && skipped < 3 {
        k -= 1;
        match word(t, k) {
            Some(w) if among(w, WHOLE) => return true,
            Some(w) if among(w, DETERMINERS) || w == "of" => skipped += 1,
            _ => return false,
        }
    }
    false
}

/// An amount named as the pot a donation comes out of: "out of my $2", "from the $2",
/// "of my $2", "half of $2".
fn pot_before(t: &[Tok<'_>], start: usize) -> bool {
    let Some(mut k) = start.checked_sub(1) else { return false };
    let has_determiner = word_in(t, k, DETERMINERS);
    if has_determiner {
        let Some(p) = k.checked_sub(1) else { return false };
        k = p;
    }
    match word(t, k) {
        Some("from") => true,
        Some("of") => {
            let owner = k.checked_sub(1).and_then(|p| word(t, p));
            has_determiner || matches!(owner, Some("out")) || owner.is_some_and(|o| among(o, SHARE_OF))
        }
        _ => false,
    }
}

/// Words after an amount that make it the payment: "$2 payment", "$2 for this task", "the
/// $2 we earned", "$2 each".
fn payment_after(t: &[Tok<'_>], end: usize) -> bool {
    let mut k = end;
    while word_in(t, k, "task hit study survey mturk turk total base") {
        k += 1;
    }
    if word_in(t, k, PAYMENT_WORDS) || word(t, end) == Some("each") {
        return true;
    }
    if word(t, end) == Some("for") && (end + 1..end + 4).any(|j| word_in(t, j, TASK_WORDS)) {
        return true;
    }
    let k = if word_in(t, end, "that which") { end + 1 } else { end };
    let subject = word_in(t, k, "i we you they each both");
    let verb = word_in(t, k + 1, EARN)
        || word_in(t, k + 1, "were was are have had get got")
        || (word(t, k + 1) == Some("each") && word_in(t, k + 2, EARN));
    subject && verb
}
