//! The registry of distances between simulated and human samples: every distance that
//! `vsim eval` computes, writes to `metrics.json` and shows in the reports is declared here,
//! once.
//!
//! An entry ([`Distance`]) says:
//! - its key in `metrics.json` (its field name in the `registry!` invocations below);
//! - its label, the beginning of its report row's name;
//! - the statistic ([`Statistic`]): a function of the simulated and the human sample, or a
//!   mean of a value per matched pair;
//! - its interval ([`Interval`]): a seeded percentile bootstrap (both samples resampled
//!   independently, or pairs as pairs), or none; and the name its seed derives from;
//! - when it does not apply, and why (e.g. the PersuasionForGood density outside `[0, 2]`);
//! - what is stored (a [`Metric`], or more, as the KS p-value) and its report rows.
//!
//! Two lists use them: [`NUMERIC_DISTANCES`], stored in each numeric outcome's
//! [`NumericComparison`], and [`CATEGORICAL_DISTANCES`], stored in each
//! [`CategoricalOutcome`]. The evaluation computes every entry of a list (into
//! [`NumericDistances`], [`CategoricalDistances`]), `metrics.json` holds each under its
//! key, and the report tables (Markdown, HTML, comparisons of runs) show each entry's rows
//! ([`NumericComparison::distance_rows`]).
//!
//! # Adding a distance
//!
//! 1. Write the statistic, usually in [`crate::stats`], as a function of two samples, and
//!    declare it in the statistics registry ([`crate::stats::distances`]): its key, what it
//!    is and how it is computed. `vsim stats` and Python's `vsim.stats` offer it from there.
//! 2. Declare its entry beside the others below: a `const` [`Distance`] naming that
//!    declaration (`def`), with its label,
//!    seed name, statistic, interval, applicability, what it stores and its rows (the
//!    helpers [`always`], [`metric_only`] and [`one_row`] cover the usual case).
//! 3. Add one line `key: Type = ENTRY,` to the `distances` block of [`NumericComparison`] or
//!    [`CategoricalOutcome`] in the `registry!` invocations, where its report rows should
//!    appear; `key` is its field in `metrics.json` (never rename one: old files would no
//!    longer read).
//!
//! Nothing else changes: the evaluation, `metrics.json`, the reports and the comparison of
//! runs pick it up, and the test `every_entry_reaches_metrics_json_and_report_rows` checks
//! that it does. Each interval's seed derives from the outcome key and the entry's seed
//! name only, so adding an entry never changes another's interval.

use serde::{Deserialize, Serialize};

use super::compute::{mean, Boot};
use super::metrics::{CategoryShare, ComparisonCounts, KsMetric, Metric, OutcomeCounts};
use crate::stats::distances::{self as defs, DistanceDef};
use crate::stats::format::{num, short};
use crate::stats::{ks_2samp, Bins, KsMode, StatsError};

/// A statistic of the simulated and the human sample, which may read the samples' context
/// `S` (such as the bins).
pub(crate) type TwoSampleFn<S> = fn(&S, &[f64], &[f64]) -> Result<f64, StatsError>;

/// How a distance is computed from its samples `S`.
pub enum Statistic<S> {
    /// A function of the simulated and the human sample (and of the samples' context, such
    /// as the bins); an interval resamples both samples independently.
    Samples(TwoSampleFn<S>),
    /// The mean over matched (simulated, human) pairs of a value per pair; an interval
    /// resamples the pairs.
    PairMean(fn(f64, f64) -> f64),
}

/// Whether a distance gets an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// A seeded percentile bootstrap interval (none when the evaluation asks for 0
    /// resamples).
    Bootstrap,
    /// The estimate alone.
    None,
}

/// How an entry's interval resamples, in [`Entry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resampling {
    /// Simulated and human samples, each at its own size, independently.
    IndependentSamples,
    /// Matched pairs, as pairs.
    Pairs,
    /// No interval.
    None,
}

/// What an entry stores: a [`Metric`], or a structure around one.
pub trait DistanceValue {
    /// The value when the distance does not apply, saying why.
    fn not_applicable(reason: &str) -> Self;
    /// The statistic itself.
    fn headline(&self) -> &Metric;
}

impl DistanceValue for Metric {
    fn not_applicable(reason: &str) -> Self {
        Metric::na(reason)
    }

    fn headline(&self) -> &Metric {
        self
    }
}

impl DistanceValue for KsMetric {
    fn not_applicable(reason: &str) -> Self {
        KsMetric { statistic: Metric::na(reason), pvalue: None, method: None }
    }

    fn headline(&self) -> &Metric {
        &self.statistic
    }
}

/// The samples a distance is computed on.
pub trait Samples {
    /// The outcome key (`role.name`); an interval's seed derives from `{key}/{seed name}`.
    fn key(&self) -> &str;
    /// The simulated sample.
    fn simulated(&self) -> &[f64];
    /// The human sample.
    fn human(&self) -> &[f64];
    /// Matched (simulated, human) pairs, for [`Statistic::PairMean`].
    fn pairs(&self) -> &[(f64, f64)];
}

/// One numeric outcome's values, as its distances see them.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericSamples {
    /// The outcome key, `role.name`.
    pub key: String,
    /// Valid simulated values, in run order.
    pub simulated: Vec<f64>,
    /// Human values, in the reference's order.
    pub human: Vec<f64>,
    /// (simulated, real) of each dialogue paired with its real participant.
    pub pairs: Vec<(f64, f64)>,
    /// Why no dialogue is paired, when none is.
    pub unpaired: Option<String>,
    /// The bins of the histogram L1.
    pub bins: Bins,
    /// The outcome's declared range, when the scenario gave one.
    pub min: Option<f64>,
    /// Upper end of the declared range.
    pub max: Option<f64>,
}

impl Samples for NumericSamples {
    fn key(&self) -> &str {
        &self.key
    }
    fn simulated(&self) -> &[f64] {
        &self.simulated
    }
    fn human(&self) -> &[f64] {
        &self.human
    }
    fn pairs(&self) -> &[(f64, f64)] {
        &self.pairs
    }
}

/// One categorical outcome's values, as its distances see them: each value is the index of
/// its category (as `f64`, so that the bootstrap resamples them like numbers).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CategoricalSamples {
    /// The outcome key, `role.name`.
    pub key: String,
    /// Category indices of the valid simulated values, in run order.
    pub simulated: Vec<f64>,
    /// Category indices of the human values.
    pub human: Vec<f64>,
    /// Number of categories (indices are below it).
    pub categories: usize,
}

impl CategoricalSamples {
    /// Counts per category of a sample of indices.
    pub fn counts(&self, values: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; self.categories];
        for &i in values {
            if let Some(x) = c.get_mut(i as usize) {
                *x += 1.0;
            }
        }
        c
    }
}

impl Samples for CategoricalSamples {
    fn key(&self) -> &str {
        &self.key
    }
    fn simulated(&self) -> &[f64] {
        &self.simulated
    }
    fn human(&self) -> &[f64] {
        &self.human
    }
    fn pairs(&self) -> &[(f64, f64)] {
        &[]
    }
}

/// The value of a report row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowValue {
    /// A statistic, with its interval or why it is missing.
    Metric(Metric),
    /// A plain number (`None`: not available).
    Number(Option<f64>),
}

/// A report row of a distance; the report adds its section, and a metric's own note (why
/// it is missing, why it has no interval) to `note`.
#[derive(Debug, Clone, PartialEq)]
pub struct DistanceRow {
    /// The row's name.
    pub name: String,
    /// The row's value.
    pub value: RowValue,
    /// Details shown beside the value (empty for none).
    pub note: String,
}

impl DistanceRow {
    /// A row showing a statistic.
    pub fn metric(name: impl Into<String>, m: &Metric, note: impl Into<String>) -> DistanceRow {
        DistanceRow { name: name.into(), value: RowValue::Metric(m.clone()), note: note.into() }
    }

    /// A row showing a plain number.
    pub fn number(name: impl Into<String>, x: Option<f64>, note: impl Into<String>) -> DistanceRow {
        DistanceRow { name: name.into(), value: RowValue::Number(x), note: note.into() }
    }
}

/// A distance between the simulated and the human samples `S`, stored as `T` in the
/// container `C` (which its report rows may also read, e.g. for the bins).
pub struct Distance<S, C, T> {
    /// The distance as the statistics registry declares it: its key (which must be the key
    /// it is stored under), what it is and how it is computed.
    pub def: &'static DistanceDef,
    /// The beginning of its report row's name (the rows may add details).
    pub label: &'static str,
    /// Its interval is seeded by `{outcome key}/{seed}`: changing it changes the intervals.
    pub seed: &'static str,
    /// How the value is computed.
    pub statistic: Statistic<S>,
    /// Whether it gets an interval.
    pub interval: Interval,
    /// `Err(why)` when the distance does not apply to these samples.
    pub applies: fn(&S) -> Result<(), String>,
    /// The stored value, from the statistic as computed (with its interval).
    pub store: fn(Metric, &S) -> T,
    /// Its report rows, given its label, its value and its container.
    pub rows: fn(&'static str, &T, &C) -> Vec<DistanceRow>,
}

/// What an entry is, for listing: the registry without its functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Its key in `metrics.json`.
    pub key: &'static str,
    /// What it is, in one line (from the statistics registry).
    pub about: &'static str,
    /// The beginning of its report row's name.
    pub label: &'static str,
    /// The name its interval's seed derives from.
    pub seed: &'static str,
    /// How its interval resamples.
    pub resampling: Resampling,
}

impl<S, C, T> Distance<S, C, T> {
    /// The entry stored under `key`, which must be its registry key (checked as the lists
    /// are built, at compile time).
    pub const fn entry(&self, key: &'static str) -> Entry {
        assert!(same_str(key, self.def.key), "a distance is stored under its registry key");
        let resampling = match (&self.statistic, self.interval) {
            (_, Interval::None) => Resampling::None,
            (Statistic::Samples(_), Interval::Bootstrap) => Resampling::IndependentSamples,
            (Statistic::PairMean(_), Interval::Bootstrap) => Resampling::Pairs,
        };
        Entry { key, about: self.def.about, label: self.label, seed: self.seed, resampling }
    }
}

/// `a == b`, in a `const fn`.
const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl<S: Samples, C, T: DistanceValue> Distance<S, C, T> {
    /// The distance on `samples`, with its interval under `boot`.
    pub(crate) fn compute(&self, samples: &S, boot: &Boot) -> T {
        if let Err(why) = (self.applies)(samples) {
            return T::not_applicable(&why);
        }
        let name = format!("{}/{}", samples.key(), self.seed);
        let metric = match (&self.statistic, self.interval) {
            (Statistic::Samples(f), Interval::Bootstrap) => {
                boot.two(&name, samples.simulated(), samples.human(), |a, b| f(samples, a, b))
            }
            (Statistic::Samples(f), Interval::None) => match f(samples, samples.simulated(), samples.human())
            {
                Ok(v) => Metric::value(v),
                Err(e) => Metric::na(e.to_string()),
            },
            (Statistic::PairMean(f), interval) => {
                let values: Vec<f64> = samples.pairs().iter().map(|&(s, h)| f(s, h)).collect();
                match interval {
                    Interval::Bootstrap => boot.one(&name, &values, mean),
                    Interval::None if values.is_empty() => Metric::na("no values"),
                    Interval::None => Metric::value(mean(&values)),
                }
            }
        };
        (self.store)(metric, samples)
    }
}

/// Applies to any samples.
pub fn always<S>(_: &S) -> Result<(), String> {
    Ok(())
}

/// Stores the statistic as computed.
pub fn metric_only<S>(m: Metric, _: &S) -> Metric {
    m
}

/// One row: the label and the statistic, with no note.
pub fn one_row<T: DistanceValue, C>(label: &'static str, value: &T, _: &C) -> Vec<DistanceRow> {
    vec![DistanceRow::metric(label, value.headline(), "")]
}

/// Declares a container of distances: a serialised struct with some fixed fields and one
/// field per distance entry (its key in `metrics.json`), the list of its entries, and
/// `$Distances`, the distances alone, to compute them.
macro_rules! registry {
    (
        $(#[$cmeta:meta])*
        pub struct $Container:ident {
            $( $(#[$fmeta:meta])* pub $field:ident: $fty:ty, )*
        }
        $(#[$dmeta:meta])*
        distances $Distances:ident of $Samples:ty, listed in $LIST:ident {
            $( $(#[$emeta:meta])* $key:ident: $ty:ty = $entry:ident, )+
        }
    ) => {
        $(#[$cmeta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $Container {
            $( $(#[$fmeta])* pub $field: $fty, )*
            $( $(#[$emeta])* pub $key: $ty, )+
        }

        $(#[$dmeta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $Distances {
            $( $(#[$emeta])* pub $key: $ty, )+
        }

        #[doc = concat!("The distances of [`", stringify!($Container), "`], in report order.")]
        pub const $LIST: &[Entry] = &[ $( $entry.entry(stringify!($key)), )+ ];

        impl $Distances {
            /// Every distance on `samples`, with intervals under `boot`.
            pub(crate) fn compute(samples: &$Samples, boot: &Boot) -> Self {
                Self { $( $key: $entry.compute(samples, boot), )+ }
            }

            /// Every distance not applicable, for one reason.
            pub(crate) fn not_applicable(reason: &str) -> Self {
                Self { $( $key: DistanceValue::not_applicable(reason), )+ }
            }
        }

        impl $Container {
            /// The container of its fields and `distances`.
            #[allow(clippy::too_many_arguments)]
            pub fn new($( $field: $fty, )* distances: $Distances) -> Self {
                Self { $( $field, )* $( $key: distances.$key, )+ }
            }

            /// Each distance's key in `metrics.json` and its statistic, in report order.
            pub fn distances(&self) -> Vec<(&'static str, &Metric)> {
                vec![ $( (stringify!($key), DistanceValue::headline(&self.$key)), )+ ]
            }

            /// The report rows of every distance, in order.
            pub fn distance_rows(&self) -> Vec<DistanceRow> {
                let mut rows = Vec::new();
                $( rows.extend(($entry.rows)($entry.label, &self.$key, self)); )+
                rows
            }
        }
    };
}

registry! {
    /// Simulated against human values of one numeric outcome.
    pub struct NumericComparison {
        /// How many values each figure rests on.
        pub counts: ComparisonCounts,
        /// The bins of `l1_histogram`.
        pub bins: Bins,
        /// Simulated and human values outside `bins` (not in the histograms).
        pub outside_bins: [u64; 2],
    }
    /// The distances of a [`NumericComparison`].
    distances NumericDistances of NumericSamples, listed in NUMERIC_DISTANCES {
        /// The two-sample Kolmogorov–Smirnov test.
        ks: KsMetric = KS,
        /// Mean `|simulated - real|` over dialogues paired with their real participant.
        l1_paired: Metric = L1_PAIRED,
        /// L1 between normalised histograms over `bins`.
        l1_histogram: Metric = L1_HISTOGRAM,
        /// The density variant over `numpy.linspace(0, 2, 21)` (PersuasionForGood donations).
        l1_density_pfg: Metric = L1_DENSITY_PFG,
        /// Wasserstein-1 (earth mover's) distance, in the outcome's units.
        wasserstein1: Metric = WASSERSTEIN1,
    }
}

registry! {
    /// One categorical outcome.
    pub struct CategoricalOutcome {
        /// The outcome key, `role.name`.
        pub key: String,
        /// The id of the role the outcome belongs to.
        pub role: String,
        /// The outcome's name.
        pub name: String,
        /// Valid, missing, invalid and failed counts.
        pub counts: OutcomeCounts,
        /// Every category with its simulated and human shares.
        pub categories: Vec<CategoryShare>,
        /// Human values compared, when there is human data.
        pub n_human: Option<usize>,
    }
    /// The distances of a [`CategoricalOutcome`].
    distances CategoricalDistances of CategoricalSamples, listed in CATEGORICAL_DISTANCES {
        /// Total variation distance to the human distribution.
        total_variation: Metric = TOTAL_VARIATION,
        /// Jensen–Shannon divergence (bits) to the human distribution.
        jensen_shannon: Metric = JENSEN_SHANNON,
    }
}

/// Two-sample Kolmogorov–Smirnov `D` (as `scipy.stats.ks_2samp`), with its p-value.
pub const KS: Distance<NumericSamples, NumericComparison, KsMetric> = Distance {
    def: &defs::KS,
    label: "KS statistic D",
    seed: "ks",
    // Resamples need only D; the asymptotic mode skips the exact p-value's cost.
    statistic: Statistic::Samples(|_, a, b| defs::KS.statistic(a, b, None)),
    interval: Interval::Bootstrap,
    applies: always,
    store: |statistic, s| match ks_2samp(&s.simulated, &s.human, KsMode::Auto) {
        Ok(r) => KsMetric {
            statistic,
            pvalue: r.pvalue.is_finite().then_some(r.pvalue),
            method: Some(if r.method_used == KsMode::Exact { "exact" } else { "asymptotic" }.to_string()),
        },
        Err(_) => KsMetric { statistic, pvalue: None, method: None },
    },
    rows: |label, ks, _| {
        let p = ks.pvalue.map(|p| format!("p = {}", num(p))).unwrap_or_default();
        let method = ks.method.clone().unwrap_or_default();
        let note = [p, method].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ");
        vec![
            DistanceRow::metric(label, &ks.statistic, note),
            DistanceRow::number("KS p-value", ks.pvalue, "two-sided"),
        ]
    },
};

/// Mean `|simulated − real|` over dialogues paired with their real participant.
pub(crate) const L1_PAIRED: Distance<NumericSamples, NumericComparison, Metric> = Distance {
    def: &defs::L1_PAIRED,
    label: "L1 paired (mean |sim − real|)",
    seed: "l1_paired",
    statistic: Statistic::PairMean(|s, h| (s - h).abs()),
    interval: Interval::Bootstrap,
    applies: |s| s.unpaired.clone().map_or(Ok(()), Err),
    store: metric_only,
    rows: |label, m, c| vec![DistanceRow::metric(label, m, format!("{} pairs", c.counts.paired))],
};

/// L1 between the normalised histograms of both samples over the outcome's bins.
pub(crate) const L1_HISTOGRAM: Distance<NumericSamples, NumericComparison, Metric> = Distance {
    def: &defs::L1_HISTOGRAM,
    label: "L1 histogram",
    seed: "l1_histogram",
    statistic: Statistic::Samples(|s, a, b| defs::L1_HISTOGRAM.statistic(a, b, Some(&s.bins))),
    interval: Interval::Bootstrap,
    applies: always,
    store: metric_only,
    rows: |label, m, c| {
        let b = &c.bins;
        let outside = if c.outside_bins.iter().any(|x| *x > 0) {
            format!("outside the bins: {} simulated, {} human", c.outside_bins[0], c.outside_bins[1])
        } else {
            String::new()
        };
        let name = format!("{label} ({} bins on [{}, {}])", b.n, short(b.lo), short(b.hi));
        vec![DistanceRow::metric(name, m, outside)]
    },
};

/// The PersuasionForGood density L1 over `numpy.linspace(0, 2, 21)`.
pub(crate) const L1_DENSITY_PFG: Distance<NumericSamples, NumericComparison, Metric> = Distance {
    def: &defs::L1_DENSITY_PFG,
    label: "L1 density (21 edges on [0, 2])",
    seed: "l1_density_pfg",
    statistic: Statistic::Samples(|_, a, b| defs::L1_DENSITY_PFG.statistic(a, b, None)),
    interval: Interval::Bootstrap,
    applies: |s| {
        if s.min.is_none_or(|m| m >= 0.0) && s.max.is_none_or(|m| m <= 2.0) {
            Ok(())
        } else {
            Err("defined for values in [0, 2] (PersuasionForGood donations)".into())
        }
    },
    store: metric_only,
    rows: one_row,
};

/// Wasserstein-1 between the two samples.
pub(crate) const WASSERSTEIN1: Distance<NumericSamples, NumericComparison, Metric> = Distance {
    def: &defs::WASSERSTEIN1,
    label: "Wasserstein-1",
    seed: "wasserstein1",
    statistic: Statistic::Samples(|_, a, b| defs::WASSERSTEIN1.statistic(a, b, None)),
    interval: Interval::Bootstrap,
    applies: always,
    store: metric_only,
    rows: one_row,
};

/// Total variation distance between the category shares.
pub(crate) const TOTAL_VARIATION: Distance<CategoricalSamples, CategoricalOutcome, Metric> = Distance {
    def: &defs::TOTAL_VARIATION,
    label: "total variation",
    seed: "tv",
    statistic: Statistic::Samples(|s, a, b| {
        defs::TOTAL_VARIATION.statistic(&s.counts(a), &s.counts(b), None)
    }),
    interval: Interval::Bootstrap,
    applies: always,
    store: metric_only,
    rows: one_row,
};

/// Jensen–Shannon divergence (bits) between the category shares.
pub(crate) const JENSEN_SHANNON: Distance<CategoricalSamples, CategoricalOutcome, Metric> = Distance {
    def: &defs::JENSEN_SHANNON,
    label: "Jensen–Shannon divergence (bits)",
    seed: "js",
    statistic: Statistic::Samples(|s, a, b| defs::JENSEN_SHANNON.statistic(&s.counts(a), &s.counts(b), None)),
    interval: Interval::Bootstrap,
    applies: always,
    store: metric_only,
    rows: one_row,
};

/// Shared by the registry's own tests and the report's, which check that every entry
/// reaches the reports.
#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;
    use crate::dialogue::events::{Measure, OutcomeEvent};
    use crate::eval::human::{HumanLabel, HumanValue};
    use crate::eval::run::{OutcomeDecl, RunData, RunDialogue};
    use crate::eval::{evaluate, EvalOptions, Evaluation, HumanReference};
    use crate::stats::{l1_density_pfg, wasserstein1};
    use crate::vs::AnswerShape;

    pub(crate) const NUMERIC_KEY: &str = "persuadee.donation";
    pub(crate) const CATEGORICAL_KEY: &str = "persuadee.answer";

    pub(crate) fn outcome(dialogue: &str, name: &str, value: serde_json::Value) -> OutcomeEvent {
        serde_json::from_value(json!({
            "dialogue": dialogue, "role": "persuadee", "name": name, "value": value,
            "source": "question", "raw": "", "usage": {"prompt_tokens": 0, "completion_tokens": 0}
        }))
        .unwrap()
    }

    /// A run of five dialogues with a numeric and a categorical outcome, every dialogue paired
    /// with a human participant, so that every distance applies.
    pub(crate) fn run_and_human() -> (RunData, HumanReference) {
        let sim = [0.0, 0.5, 1.0, 1.0, 2.0];
        let labels = ["yes", "no", "yes", "yes", "no"];
        let dialogues = (0..sim.len())
            .map(|i| {
                let id = format!("d{i}");
                RunDialogue {
                    id: id.clone(),
                    index: i as u64,
                    population_id: Some(format!("p{i}")),
                    agents: Vec::new(),
                    completed: true,
                    turns: Vec::new(),
                    outcomes: vec![
                        outcome(&id, "donation", json!(sim[i])),
                        outcome(&id, "answer", json!(labels[i])),
                    ],
                    error: None,
                    completed_attempts: 1,
                }
            })
            .collect();
        let decl = |name: &str, kind| OutcomeDecl {
            key: format!("persuadee.{name}"),
            role: "persuadee".into(),
            name: name.into(),
            kind,
        };
        let run = RunData {
            dir: PathBuf::from("run"),
            manifest: None,
            dialogues,
            outcomes: vec![
                decl("donation", AnswerShape::Number { min: 0.0, max: 2.0 }),
                decl("answer", AnswerShape::Choice { choices: vec!["yes".into(), "no".into()] }),
            ],
            measure: Measure::Answer,
            torn_last_line: false,
        };
        let real = [0.0, 0.0, 1.5, 2.0, 0.25, 1.0];
        let real_labels = ["no", "no", "yes", "no", "yes", "no"];
        let human = HumanReference {
            source: "test".into(),
            numeric: BTreeMap::from([(
                NUMERIC_KEY.to_string(),
                real.iter().enumerate().map(|(i, v)| HumanValue { id: format!("p{i}"), value: *v }).collect(),
            )]),
            categorical: BTreeMap::from([(
                CATEGORICAL_KEY.to_string(),
                real_labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| HumanLabel { id: format!("p{i}"), label: l.to_string() })
                    .collect(),
            )]),
            ..HumanReference::default()
        };
        (run, human)
    }

    pub(crate) async fn evaluation() -> Evaluation {
        let (run, human) = run_and_human();
        let opts = EvalOptions { bootstrap: 20, ..EvalOptions::default() };
        evaluate(&run, Some(&human), &opts, None).await.unwrap()
    }

    #[tokio::test]
    async fn intervals_are_seeded_by_outcome_key_and_seed_name() {
        let e = evaluation().await;
        let boot = Boot { resamples: 20, confidence: 0.95, seed: 0 };
        let o = &e.numeric[0];
        let (s, h) = (&o.simulated_values, &o.human_values);
        let c = o.comparison.as_ref().unwrap();
        let name = |seed: &str| format!("{NUMERIC_KEY}/{seed}");
        assert_eq!(c.wasserstein1, boot.two(&name("wasserstein1"), s, h, wasserstein1));
        assert_eq!(c.l1_density_pfg, boot.two(&name("l1_density_pfg"), s, h, l1_density_pfg));
        let diffs: Vec<f64> = o.pairs.iter().map(|p| (p.simulated - p.human).abs()).collect();
        assert_eq!(c.l1_paired, boot.one(&name("l1_paired"), &diffs, mean));
        let ks = |a: &[f64], b: &[f64]| ks_2samp(a, b, KsMode::Asymptotic).map(|r| r.statistic);
        assert_eq!(c.ks.statistic, boot.two(&name("ks"), s, h, ks));
        assert_eq!(c.ks.pvalue, Some(ks_2samp(s, h, KsMode::Exact).unwrap().pvalue));
    }

    #[test]
    fn entries_describe_their_resampling() {
        let by_key = |key: &str| NUMERIC_DISTANCES.iter().find(|e| e.key == key).unwrap().resampling;
        assert_eq!(by_key("l1_paired"), Resampling::Pairs);
        assert_eq!(by_key("ks"), Resampling::IndependentSamples);
        assert!(CATEGORICAL_DISTANCES.iter().all(|e| e.resampling == Resampling::IndependentSamples));
    }
}
