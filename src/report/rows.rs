//! Every metric of an [`Evaluation`] as table rows, so that the Markdown table, the HTML
//! table and the side-by-side comparison all list the same things in the same order. The
//! rows of the distances between simulated and human samples come from their entries in
//! [`crate::eval::registry`].

use serde::Serialize;

use crate::eval::metrics::*;
use crate::eval::registry::{DistanceRow, RowValue};
use crate::stats::format::num;

/// One row of the metrics table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRow {
    /// The group it belongs to, e.g. `Outcome persuadee.donation`.
    pub section: String,
    /// The metric's name.
    pub name: String,
    /// The simulated value (or the distance between simulated and human).
    pub value: String,
    /// The bootstrap interval, `[lo, hi]`, or empty.
    pub ci: String,
    /// The human reference level, or empty.
    pub human: String,
    /// Why a value is missing, or what it is based on.
    pub note: String,
}

impl MetricRow {
    /// The identity used to line rows up across runs.
    pub fn key(&self) -> String {
        format!("{}\u{1f}{}", self.section, self.name)
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), num)
}

fn ci_text(m: &Metric) -> String {
    m.ci().map(|(lo, hi)| format!("[{}, {}]", num(lo), num(hi))).unwrap_or_default()
}

fn value_text(m: &Metric) -> String {
    m.estimate().map_or_else(|| "n/a".into(), num)
}

/// A value with its interval in one cell (for the human column and comparisons).
pub(crate) fn with_ci(m: &Metric) -> String {
    match (m.estimate(), m.ci()) {
        (Some(v), Some((lo, hi))) => format!("{} [{}, {}]", num(v), num(lo), num(hi)),
        (Some(v), None) => num(v),
        (None, _) => "n/a".into(),
    }
}

fn note_of(m: &Metric) -> String {
    match m {
        Metric::NotApplicable { reason } => reason.clone(),
        Metric::Computed { ci_note: Some(n), .. } => n.clone(),
        Metric::Computed { .. } => String::new(),
    }
}

struct Rows {
    section: String,
    rows: Vec<MetricRow>,
}

impl Rows {
    fn push(&mut self, name: impl Into<String>, value: String, ci: String, human: String, note: String) {
        self.rows.push(MetricRow {
            section: self.section.clone(),
            name: name.into(),
            value,
            ci,
            human,
            note,
        });
    }

    fn metric(&mut self, name: impl Into<String>, m: &Metric, human: String, note: String) {
        let n = note_of(m);
        let note = match (note.is_empty(), n.is_empty()) {
            (true, _) => n,
            (false, true) => note,
            (false, false) => format!("{note}; {n}"),
        };
        self.push(name, value_text(m), ci_text(m), human, note);
    }

    /// The rows of the distances of the [`crate::eval::registry`].
    fn distances(&mut self, rows: Vec<DistanceRow>) {
        for d in rows {
            match d.value {
                RowValue::Metric(m) => self.metric(d.name, &m, String::new(), d.note),
                RowValue::Number(x) => self.push(d.name, opt(x), String::new(), String::new(), d.note),
            }
        }
    }

    fn count(&mut self, name: impl Into<String>, v: usize, human: Option<usize>, note: &str) {
        self.push(
            name,
            v.to_string(),
            String::new(),
            human.map(|h| h.to_string()).unwrap_or_default(),
            note.into(),
        );
    }
}

/// The calibration rows of one outcome: who is counted, PIT, coverage, variance split.
fn calibration_rows(r: &mut Rows, c: &crate::eval::calibration::Calibration) {
    r.push(
        "people / simulated values / replicates per person",
        format!("{} / {} / {}–{}", c.people, c.values, c.replicates_min, c.replicates_max),
        String::new(),
        String::new(),
        format!(
            "people with a real value and at least two simulated values; {} paired people with one value left out",
            c.people_single
        ),
    );
    r.push(
        "PIT uniformity: KS D (p-value)",
        format!("{} (p = {})", num(c.uniformity.statistic), num(c.uniformity.pvalue)),
        String::new(),
        "0 (uniform)".into(),
        c.definitions.get("pit").cloned().unwrap_or_default(),
    );
    r.push(
        "PIT histogram: people per tenth of [0, 1]",
        c.pit_histogram.iter().map(u64::to_string).collect::<Vec<_>>().join(" "),
        String::new(),
        format!("{} each (uniform)", num(c.people as f64 / c.pit_histogram.len() as f64)),
        "too many at the ends: the simulation is too narrow or biased for individuals; too many in the middle: \
         too wide"
            .into(),
    );
    for cov in &c.coverage {
        r.metric(
            format!("coverage of the central {:.0}% interval", cov.level * 100.0),
            &cov.share,
            num(cov.level),
            format!(
                "{} of {} people; {}",
                cov.covered,
                c.people,
                c.definitions.get("coverage").cloned().unwrap_or_default()
            ),
        );
    }
    let v = &c.variance;
    r.push(
        "simulated variance: total = between + within",
        format!("{} = {} + {}", num(v.total), num(v.between), num(v.within)),
        String::new(),
        String::new(),
        c.definitions.get("variance").cloned().unwrap_or_default(),
    );
    r.push(
        "share of simulated variance between people (ICC)",
        format!("{} ({})", opt(v.share_between), opt(v.icc)),
        String::new(),
        String::new(),
        "the share due to who the person is; near 0: every persona is played alike".into(),
    );
    r.push(
        "between-person variance",
        num(v.between),
        String::new(),
        num(v.human_between),
        "human: the variance of the same people's real values".into(),
    );
}

/// The rows of one evaluation, in report order.
pub fn metric_rows(e: &Evaluation) -> Vec<MetricRow> {
    let mut r = Rows { section: String::new(), rows: Vec::new() };
    numeric_rows(&mut r, e);
    categorical_rows(&mut r, e);
    language_rows(&mut r, e);
    selection_rows(&mut r, e);
    probability_rows(&mut r, e);
    count_rows(&mut r, e);
    r.rows
}

/// Counts, summaries and distances of each numeric outcome (and its calibration).
fn numeric_rows(r: &mut Rows, e: &Evaluation) {
    for o in &e.numeric {
        r.section = format!("Outcome {}", o.key);
        let hs = o.human.as_ref();
        r.count("n (valid values)", o.counts.valid, hs.map(|h| h.n), "");
        r.count(
            "missing (never counted as 0)",
            o.counts.missing,
            None,
            "completed dialogues with no extractable value",
        );
        r.count("invalid", o.counts.invalid, None, "values of the wrong type");
        r.count("failed dialogues", o.counts.failed, None, "no outcome");
        r.metric("mean", &o.simulated.mean, hs.map(|h| with_ci(&h.mean)).unwrap_or_default(), String::new());
        r.push(
            "median",
            opt(o.simulated.median),
            String::new(),
            hs.map(|h| opt(h.median)).unwrap_or_default(),
            String::new(),
        );
        r.push(
            "standard deviation",
            opt(o.simulated.sd),
            String::new(),
            hs.map(|h| opt(h.sd)).unwrap_or_default(),
            String::new(),
        );
        r.push(
            "share of zeros",
            opt(o.simulated.share_zero),
            String::new(),
            hs.map(|h| opt(h.share_zero)).unwrap_or_default(),
            String::new(),
        );
        match &o.comparison {
            Some(c) => {
                let n = &c.counts;
                r.push(
                    "compared: simulated / human / paired",
                    format!("{} / {} / {}", n.simulated, n.human, n.paired),
                    String::new(),
                    String::new(),
                    format!(
                        "not compared: {} missing, {} invalid, {} failed; {} simulated values without a real \
                         counterpart, {} real people without a simulated value",
                        n.missing, n.invalid, n.failed, n.simulated_unpaired, n.human_unpaired
                    ),
                );
                r.distances(c.distance_rows());
                if let Some(cal) = &o.calibration {
                    r.section = format!("Outcome {}: per-person calibration (replicates)", o.key);
                    calibration_rows(r, cal);
                }
            }
            None => {
                let why = o.comparison_note.clone().or_else(|| e.human_note.clone()).unwrap_or_default();
                r.push("comparison with human data", "n/a".into(), String::new(), String::new(), why);
            }
        }
    }
}

/// Shares and distances of each categorical outcome.
fn categorical_rows(r: &mut Rows, e: &Evaluation) {
    for o in &e.categorical {
        r.section = format!("Outcome {}", o.key);
        r.count("n (valid values)", o.counts.valid, o.n_human, "");
        r.count("missing (never counted as a category)", o.counts.missing, None, "");
        r.count("invalid", o.counts.invalid, None, "");
        r.count("failed dialogues", o.counts.failed, None, "no outcome");
        for c in &o.categories {
            let human = match (c.human, c.human_count) {
                (Some(h), Some(n)) => format!("{} ({n})", num(h)),
                _ => String::new(),
            };
            r.metric(
                format!("share: {}", c.label),
                &c.simulated,
                human,
                format!("{} dialogues", c.simulated_count),
            );
        }
        r.distances(o.distance_rows());
    }
}

/// Distinct-N, semantic diversity and readability of each role.
fn language_rows(r: &mut Rows, e: &Evaluation) {
    for t in &e.linguistic {
        r.section = format!("Language: {}", t.role);
        let h = t.human.as_ref();
        r.count("utterances", t.simulated.utterances, h.map(|h| h.utterances), "");
        r.count("dialogues", t.simulated.dialogues, h.map(|h| h.dialogues), "with an utterance of the role");
        for (i, d) in t.simulated.distinct.iter().enumerate() {
            let hd = h.and_then(|h| h.distinct.get(i));
            r.metric(
                format!("Distinct-{}, per dialogue (mean, CI)", d.n),
                &d.per_dialogue,
                hd.map(|x| with_ci(&x.per_dialogue)).unwrap_or_default(),
                "within each dialogue, averaged over dialogues".into(),
            );
        }
        let sem = e.semantic.roles.iter().find(|s| s.role == t.role).filter(|_| e.semantic.computed);
        let not_computed = || e.semantic.reason.clone().unwrap_or_default();
        match sem {
            Some(s) => {
                let side = |x: &SemanticSide| {
                    format!(
                        "{} of {} dialogues ({} with a single utterance skipped, {} embedded)",
                        x.used, x.dialogues, x.too_short, x.embedded
                    )
                };
                let mut note = format!("simulated: {}", side(&s.simulated));
                if let Some(hs) = &s.human {
                    note.push_str(&format!("; human: {}", side(hs)));
                }
                note.push_str(&format!("; at most {} dialogues embedded per side", e.semantic.max_dialogues));
                r.metric(
                    "semantic diversity, per dialogue (mean, CI)",
                    &s.simulated.per_dialogue,
                    s.human.as_ref().map(|x| with_ci(&x.per_dialogue)).unwrap_or_default(),
                    note,
                );
            }
            None => r.push(
                "semantic diversity, per dialogue (mean, CI)",
                "n/a".into(),
                String::new(),
                String::new(),
                not_computed(),
            ),
        }
        r.push(
            "Flesch–Kincaid grade",
            opt(t.simulated.flesch_kincaid_grade),
            String::new(),
            h.map(|h| opt(h.flesch_kincaid_grade)).unwrap_or_default(),
            "all utterances together".into(),
        );
        let pooled_note = |n: usize| {
            let d = if n == 1 { "dialogue" } else { "dialogues" };
            format!("pooled over {n} {d} per side (equal-size samples)")
        };
        const NOT_POOLED: &str = "not computed: a pooled value depends on how many dialogues are pooled, \
                                  so it is only given on equal-size samples of both sides, and there are no \
                                  human utterances of this role";
        let n = t.simulated.pooled_dialogues;
        for (i, d) in t.simulated.distinct.iter().enumerate() {
            let hd = h.and_then(|h| h.distinct.get(i));
            let name = format!("Distinct-{}, pooled over equal-size samples", d.n);
            if n > 0 {
                r.push(
                    name,
                    opt(d.pooled),
                    String::new(),
                    hd.map(|x| opt(x.pooled)).unwrap_or_default(),
                    pooled_note(n),
                );
            } else {
                r.push(name, "n/a".into(), String::new(), String::new(), NOT_POOLED.into());
            }
        }
        let name = "semantic diversity, pooled over equal-size samples";
        match (sem, sem.and_then(|s| s.pooled.as_ref())) {
            (Some(_), Some(p)) => r.push(
                name,
                opt(p.simulated),
                String::new(),
                opt(p.human),
                format!(
                    "{}: {} simulated, {} human utterances",
                    pooled_note(p.dialogues_per_side),
                    p.utterances_simulated,
                    p.utterances_human
                ),
            ),
            (Some(_), None) => r.push(name, "n/a".into(), String::new(), String::new(), NOT_POOLED.into()),
            (None, _) => r.push(name, "n/a".into(), String::new(), String::new(), not_computed()),
        }
    }
}

/// Whether each role's choices follow its selection rule.
fn selection_rows(r: &mut Rows, e: &Evaluation) {
    for c in &e.selection_check {
        r.section = format!("Selection check: {}, {}", c.role, c.rule);
        r.count("turns checked", c.turns, None, "turns with two or more candidates");
        r.count("candidates", c.candidates, None, "");
        r.push(
            "selection check (expected under the rule vs chosen): mean gap",
            opt(c.mean_abs_gap),
            String::new(),
            String::new(),
            format!(
                "Σ n_b/N · |mean expected − share chosen| over {} bins of the choice probability the rule \
                 gives each candidate; near 0 when the sampler follows the rule",
                c.bins.len()
            ),
        );
        r.push(
            "selection check: z of the chosen candidates' expected probability",
            opt(c.z),
            String::new(),
            String::new(),
            match c.p_value {
                Some(p) => format!("p = {} (two-sided); far from 0: choices do not follow the rule", num(p)),
                None => "not applicable: the rule is deterministic; see impossible choices".into(),
            },
        );
        r.count(
            "selection check: impossible choices",
            c.impossible,
            None,
            "turns whose chosen candidate has probability 0 under the rule",
        );
    }
}

/// What each verbalized role's stated probabilities look like.
fn probability_rows(r: &mut Rows, e: &Evaluation) {
    for s in &e.stated_probabilities {
        r.section = format!("Stated probabilities: {}", s.role);
        r.count("verbalized-sampling turns", s.turns, None, "");
        r.count("candidates", s.candidates, None, "");
        r.push(
            "mean candidates per turn",
            opt(s.mean_candidates),
            String::new(),
            String::new(),
            String::new(),
        );
        r.push(
            "share of candidates without a stated probability",
            opt(s.share_unstated),
            String::new(),
            String::new(),
            format!("{} of {}; the parser filled them in", s.unstated, s.candidates),
        );
        r.metric(
            "mean |Σ stated − 1| per turn",
            &s.mean_abs_sum_error,
            String::new(),
            format!("{} turns from one reply with every probability stated", s.turns_summed),
        );
        r.metric(
            "share of turns rescaled to sum to 1",
            &s.share_renormalised,
            String::new(),
            "|Σ stated − 1| > 1e-6".into(),
        );
        r.metric(
            "mean largest probability (normalised)",
            &s.mean_max_probability,
            String::new(),
            String::new(),
        );
        r.metric(
            "mean normalised entropy (H / ln k)",
            &s.mean_normalised_entropy,
            String::new(),
            "1: uniform over the candidates; 0: all on one".into(),
        );
    }
}

/// Counts of dialogues, turns, candidates, retries and repairs.
fn count_rows(r: &mut Rows, e: &Evaluation) {
    r.section = "Counts".into();
    let c = &e.counts;
    r.count("dialogues", c.dialogues, None, "");
    r.count("completed", c.completed, None, "");
    r.count("failed", c.failed, None, "latest attempt did not end");
    r.count("turns", c.turns, None, "");
    r.count("candidates", c.candidates, None, "");
    r.count("parse retries", c.parse_retries, None, "model calls whose reply could not be parsed");
    for (kind, n) in &c.repairs {
        r.push(
            format!("repair: {kind}"),
            n.turns.to_string(),
            String::new(),
            String::new(),
            format!("turns ({} candidates)", n.candidates),
        );
    }
}
