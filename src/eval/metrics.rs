//! The evaluation of one run as written to `metrics.json`, and read back by `vsim report`.
//!
//! Every metric that may be impossible to compute is a [`Metric`]: either a value (with a
//! bootstrap interval when one could be computed) or the reason it does not apply, so a
//! report never shows a made-up number.
//!
//! The distances between simulated and human samples are declared in
//! [`super::registry`], which also defines the structs holding them ([`NumericComparison`],
//! [`CategoricalOutcome`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::registry::{CategoricalOutcome, NumericComparison};

/// A statistic with its bootstrap interval, or why it was not computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Metric {
    /// The statistic could be computed.
    Computed {
        /// The statistic on the full sample.
        estimate: f64,
        /// Lower end of the percentile bootstrap interval.
        #[serde(default)]
        lo: Option<f64>,
        /// Upper end of the interval.
        #[serde(default)]
        hi: Option<f64>,
        /// Why there is no interval, when there is none although resamples were asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ci_note: Option<String>,
    },
    /// The statistic does not apply to this run (too few values, no human data, ...).
    NotApplicable {
        /// Why, in words.
        reason: String,
    },
}

impl Metric {
    /// A value with no interval; a non-finite value becomes [`Metric::NotApplicable`]
    /// (JSON has no NaN, and a NaN in a table would look like a result).
    pub fn value(estimate: f64) -> Metric {
        if estimate.is_finite() {
            Metric::Computed { estimate, lo: None, hi: None, ci_note: None }
        } else {
            Metric::na(format!("the statistic is not finite ({estimate})"))
        }
    }

    /// A value with an interval.
    pub(crate) fn with_ci(estimate: f64, lo: f64, hi: f64) -> Metric {
        match Metric::value(estimate) {
            Metric::Computed { estimate, .. } if lo.is_finite() && hi.is_finite() => {
                Metric::Computed { estimate, lo: Some(lo), hi: Some(hi), ci_note: None }
            }
            other => other,
        }
    }

    /// A metric that does not apply, for `reason`.
    pub fn na(reason: impl Into<String>) -> Metric {
        Metric::NotApplicable { reason: reason.into() }
    }

    /// The estimate, when computed.
    pub fn estimate(&self) -> Option<f64> {
        match self {
            Metric::Computed { estimate, .. } => Some(*estimate),
            Metric::NotApplicable { .. } => None,
        }
    }

    /// The interval, when there is one.
    pub fn ci(&self) -> Option<(f64, f64)> {
        match self {
            Metric::Computed { lo: Some(lo), hi: Some(hi), .. } => Some((*lo, *hi)),
            _ => None,
        }
    }
}

/// How intervals were computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapSettings {
    /// Resamples per interval (0: no intervals).
    pub resamples: usize,
    /// Confidence level of the intervals, e.g. 0.95.
    pub confidence: f64,
    /// The seed every interval's own seed derives from (by metric name).
    pub seed: u64,
}

/// Who played a role and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// The role's id.
    pub role: String,
    /// Prompt method(s) seen for the role, e.g. `vs-standard`.
    pub methods: Vec<String>,
    /// Model spec(s) seen for the role.
    pub models: Vec<String>,
    /// Selection rule(s) seen in its turns, e.g. `weighted` or `uniform, tau 0.1`.
    pub selection: Vec<String>,
}

/// The human reference a run was compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanInfo {
    /// The spec the data was loaded from, e.g. `pfg:../data/persuasionforgood`.
    pub source: String,
    /// The data split compared with (`test`, `train` or `all`).
    pub split: String,
    /// Seed of the train/test split.
    pub split_seed: u64,
    /// How rows were filtered, in words.
    pub filter: String,
    /// What the filter kept and dropped, in words.
    pub filter_summary: String,
    /// Participants in the reference.
    pub participants: usize,
    /// Dialogues whose utterances gave the linguistic reference levels.
    pub dialogues: usize,
    /// Who the human people are, relative to the run, in words.
    #[serde(default)]
    pub people: String,
    /// The simulated people are the reference's own participants (paired one to one).
    #[serde(default)]
    pub same_people: bool,
}

/// Repairs of one kind: replies (turns) that needed it and candidates carrying it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairCount {
    /// Turns whose reply needed the repair.
    pub turns: usize,
    /// Candidates carrying the repair.
    pub candidates: usize,
}

/// Counts over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Dialogues in the run.
    pub dialogues: usize,
    /// Dialogues whose latest attempt ended.
    pub completed: usize,
    /// Dialogues whose latest attempt did not end (their outcomes are not counted).
    pub failed: usize,
    /// Turns of the latest attempts (also of failed dialogues, up to the failure).
    pub turns: usize,
    /// Candidates of those turns.
    pub candidates: usize,
    /// Parse repairs by kind (the `kind` of a transcript repair).
    pub repairs: BTreeMap<String, RepairCount>,
    /// Model calls whose reply could not be parsed and were retried.
    pub parse_retries: usize,
    /// Up to ten error messages of failed dialogues, `dialogue: message`.
    pub errors: Vec<String>,
    /// Dialogues completed more than once in the transcript (edited or joined by hand); the
    /// latest attempt of each is the one evaluated.
    #[serde(default)]
    pub completed_more_than_once: Vec<String>,
    /// The transcript's last line was not a whole event (a write cut short) and was left out.
    #[serde(default)]
    pub torn_last_line: bool,
}

/// Validity counts for one outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Completed dialogues with a usable value.
    pub valid: usize,
    /// Completed dialogues where the outcome could not be extracted.
    pub missing: usize,
    /// Completed dialogues with a value of the wrong type (e.g. text for a number).
    pub invalid: usize,
    /// Failed dialogues (no outcome at all).
    pub failed: usize,
}

/// Descriptive statistics of a numeric sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// The mean with a bootstrap interval.
    pub mean: Metric,
    /// The median.
    pub median: Option<f64>,
    /// Sample standard deviation (n - 1).
    pub sd: Option<f64>,
    /// The smallest value.
    pub min: Option<f64>,
    /// The largest value.
    pub max: Option<f64>,
    /// Share of values equal to 0 (e.g. no donation).
    pub share_zero: Option<f64>,
}

/// The KS test between simulated and human values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KsMetric {
    /// `D`, with a bootstrap interval.
    pub statistic: Metric,
    /// The test's p-value.
    pub pvalue: Option<f64>,
    /// `exact` or `asymptotic`.
    pub method: Option<String>,
}

/// The sample sizes behind a comparison: every figure is stated with them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComparisonCounts {
    /// Simulated values compared (valid outcomes of completed dialogues).
    pub simulated: usize,
    /// Human values compared (the reference people with a recorded value).
    pub human: usize,
    /// Simulated values paired with the same person's real value (`l1_paired`).
    pub paired: usize,
    /// Completed dialogues whose outcome could not be extracted (never counted as 0).
    pub missing: usize,
    /// Completed dialogues with a value of the wrong type.
    pub invalid: usize,
    /// Dialogues that did not complete.
    pub failed: usize,
    /// Simulated values with no counterpart among the human people.
    pub simulated_unpaired: usize,
    /// Human people with no valid simulated value (failed, missing, invalid or not run).
    pub human_unpaired: usize,
}

/// A simulated dialogue's value next to its real participant's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// The simulated dialogue's id.
    pub dialogue: String,
    /// The participant's persona id.
    pub population_id: String,
    /// The dialogue's value.
    pub simulated: f64,
    /// The participant's recorded value.
    pub human: f64,
}

/// One numeric outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericOutcome {
    /// `role.name`, the outcome's key.
    pub key: String,
    /// The id of the role the outcome belongs to.
    pub role: String,
    /// The outcome's name.
    pub name: String,
    /// Declared range, when the scenario gave one.
    pub min: Option<f64>,
    /// Upper end of the declared range.
    pub max: Option<f64>,
    /// Valid, missing, invalid and failed counts.
    pub counts: OutcomeCounts,
    /// Statistics of the simulated values.
    pub simulated: Summary,
    /// Statistics of the human values, when there are any.
    pub human: Option<Summary>,
    /// `None` when there is no human sample for this outcome (see `comparison_note`).
    pub comparison: Option<NumericComparison>,
    /// Why there is no comparison, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_note: Option<String>,
    /// The samples themselves, for plots (simulated in run order).
    pub simulated_values: Vec<f64>,
    /// The human values, in the reference's order.
    pub human_values: Vec<f64>,
    /// Simulated values paired with the same person's real value, in run order.
    pub pairs: Vec<Pair>,
    /// Per-person calibration, when people were simulated more than once (replicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<super::calibration::Calibration>,
}

/// One category of a categorical outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryShare {
    /// The category.
    pub label: String,
    /// Valid simulated values in the category.
    pub simulated_count: usize,
    /// Share among valid simulated values, with a bootstrap interval.
    pub simulated: Metric,
    /// Human values in the category, when there is human data.
    pub human_count: Option<usize>,
    /// Share among the human values.
    pub human: Option<f64>,
}

/// Distinct-N of a role's utterances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistinctN {
    /// The n-gram length.
    pub n: usize,
    /// The primary figure, as the paper defines it: each dialogue's Distinct-N (the role's
    /// utterances in that dialogue pooled; dialogues with no n-gram skipped), averaged over
    /// dialogues, with a bootstrap interval over dialogues. It does not depend on how many
    /// dialogues there are.
    pub per_dialogue: Metric,
    /// Over all utterances of [`TextMetrics::pooled_dialogues`] dialogues drawn at random,
    /// the same number on both sides. A pooled value falls as the corpus grows, so it is
    /// only given next to an equal-size sample of the other side: `None` without human
    /// utterances of the role (or with no n-gram).
    pub pooled: Option<f64>,
}

/// Linguistic metrics of one role's utterances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextMetrics {
    /// Utterances of the role.
    pub utterances: usize,
    /// Dialogues with at least one utterance of the role.
    pub dialogues: usize,
    /// Tokens in those utterances (as [`crate::stats::text::tokens`] splits them).
    pub tokens: usize,
    /// Distinct-1, -2 and -3.
    pub distinct: Vec<DistinctN>,
    /// Dialogues pooled for [`DistinctN::pooled`]: the smaller side's dialogue count, a
    /// seeded sample on the larger side; 0 when no pooled figure was computed.
    pub pooled_dialogues: usize,
    /// Flesch–Kincaid grade of all utterances together (each utterance ends a sentence).
    pub flesch_kincaid_grade: Option<f64>,
}

/// Linguistic metrics of a role, simulated and (when known) human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleText {
    /// The role's id.
    pub role: String,
    /// Metrics of the simulated utterances.
    pub simulated: TextMetrics,
    /// Metrics of the human utterances of the same role, when known.
    pub human: Option<TextMetrics>,
}

/// Semantic diversity within dialogues, on one side (simulated or human) of one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticSide {
    /// The primary figure, as the paper defines it: per dialogue, 1 − the mean pairwise
    /// cosine similarity (negatives as 0) of the embeddings of the role's utterances in that
    /// dialogue; averaged over dialogues, with a bootstrap interval over dialogues.
    pub per_dialogue: Metric,
    /// Dialogues with at least one utterance of the role.
    pub dialogues: usize,
    /// Of those, dialogues with fewer than two utterances of the role (no pair: skipped).
    pub too_short: usize,
    /// Dialogues embedded: the others, up to [`Semantic::max_dialogues`] (a seeded sample
    /// beyond that).
    pub embedded: usize,
    /// Embedded dialogues in the mean (those with a pair of defined similarity).
    pub used: usize,
    /// Utterances embedded.
    pub utterances: usize,
}

/// Semantic diversity of utterances pooled across dialogues, on equal-size samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PooledSemantic {
    /// Embedded dialogues drawn per side: the smaller side's count, a seeded sample on the
    /// larger side.
    pub dialogues_per_side: usize,
    /// 1 − mean pairwise cosine similarity over all utterances of the drawn dialogues.
    pub simulated: Option<f64>,
    /// The same on the human side.
    pub human: Option<f64>,
    /// Utterances pooled on each side.
    pub utterances_simulated: usize,
    /// Human utterances pooled.
    pub utterances_human: usize,
}

/// Semantic diversity of one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleSemantic {
    /// The role's id.
    pub role: String,
    /// Diversity of the simulated utterances.
    pub simulated: SemanticSide,
    /// Diversity of the human utterances of the same role, when known.
    pub human: Option<SemanticSide>,
    /// Pooled across dialogues on equal-size samples of both sides; `None` without human
    /// utterances of the role (a pooled value depends on corpus size, so it is not given for
    /// one side alone).
    pub pooled: Option<PooledSemantic>,
}

/// Semantic diversity, when an embedder was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Semantic {
    /// Whether semantic diversity was computed.
    pub computed: bool,
    /// Why it was not computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The embedder's id, when one was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
    /// Dialogues embedded at most per role and side (a seeded sample beyond that), to bound
    /// the cost of embedding.
    pub max_dialogues: usize,
    /// One entry per role.
    pub roles: Vec<RoleSemantic>,
}

/// One bin of the selection check: candidates grouped by their choice probability under the
/// selection rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectionBin {
    /// Lower edge of the bin.
    pub lo: f64,
    /// Upper edge of the bin.
    pub hi: f64,
    /// Candidates whose expected choice probability fell in the bin.
    pub n: usize,
    /// Of those, how many were chosen.
    pub chosen: usize,
    /// Mean expected choice probability under the rule.
    pub mean_expected: Option<f64>,
    /// Share of the bin's candidates that were chosen.
    pub chosen_frequency: Option<f64>,
}

/// Whether choices honour the selection rule, for one role and rule.
///
/// Each candidate's expected choice probability follows from the rule and the candidates
/// alone (weighted: its normalised probability among the candidates passing the tau
/// filter; uniform: 1/k of those; argmax: 1 for the most probable, 0 for the others), so
/// chosen frequencies far from it mean the sampler does not do what the rule says. It says
/// nothing about whether the model's probabilities are right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectionCheck {
    /// The role's id.
    pub role: String,
    /// The rule, as in [`RoleInfo::selection`].
    pub rule: String,
    /// Turns with at least two candidates (the turns checked).
    pub turns: usize,
    /// Candidates of those turns.
    pub candidates: usize,
    /// Candidates grouped by expected choice probability.
    pub bins: Vec<SelectionBin>,
    /// `Σ_b n_b/N · |mean_expected_b − chosen_frequency_b|`.
    pub mean_abs_gap: Option<f64>,
    /// `(Σ_t e_t − Σ_t E[e_t]) / sqrt(Σ_t Var[e_t])`, where `e_t` is the expected probability
    /// of the candidate chosen at turn `t` (under the rule `E[e_t] = Σ_i p_i²`, `Var[e_t] =
    /// Σ_i p_i³ − (Σ_i p_i²)²`): near 0 when choices follow the rule, large and positive
    /// when likely candidates are chosen too often. `None` for a deterministic rule (no
    /// variance); see `impossible`.
    pub z: Option<f64>,
    /// Two-sided normal p-value of `z`.
    pub p_value: Option<f64>,
    /// Turns whose chosen candidate could not be chosen under the rule (probability 0).
    pub impossible: usize,
}

/// The model's stated (verbalized) probabilities of one role, as written.
///
/// Nothing here compares them with an outcome: these describe the stated distributions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatedProbabilities {
    /// The role's id.
    pub role: String,
    /// Verbalized-sampling turns of the role.
    pub turns: usize,
    /// Candidates of those turns.
    pub candidates: usize,
    /// Candidates without a stated probability (the parser filled one in).
    pub unstated: usize,
    /// `unstated / candidates`.
    pub share_unstated: Option<f64>,
    /// Turns whose candidates come from one reply and all carry a stated probability: the
    /// turns the stated sum is measured on.
    pub turns_summed: usize,
    /// Mean over those turns of `|Σ stated − 1|`, with an interval over turns.
    pub mean_abs_sum_error: Metric,
    /// Share of those turns whose stated sum is off 1 by more than 1e-6 (and was rescaled).
    pub share_renormalised: Metric,
    /// Mean over turns of the largest normalised probability.
    pub mean_max_probability: Metric,
    /// Mean over turns with at least two candidates of the normalised distribution's entropy
    /// divided by `ln k` (1: uniform, 0: all mass on one candidate).
    pub mean_normalised_entropy: Metric,
    /// Mean candidates per turn.
    pub mean_candidates: Option<f64>,
}

/// The evaluation of one run (`metrics.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Version of vsim that wrote the evaluation.
    pub vsim_version: String,
    /// The run directory evaluated.
    pub run_dir: String,
    /// The outcomes' measure: `answer` (the answer to the outcome question, through the
    /// role's method) or `stated` (what the role said in the dialogue).
    #[serde(default)]
    pub measure: crate::dialogue::events::Measure,
    /// Short name of the run (its directory name).
    pub label: String,
    /// The scenario's name, from the run's configuration.
    pub scenario: Option<String>,
    /// The population spec, from the run's configuration.
    pub population: Option<String>,
    /// Who played each role and how.
    pub roles: Vec<RoleInfo>,
    /// How intervals were computed.
    pub bootstrap: BootstrapSettings,
    /// The human reference, or `None` (see `human_note`).
    pub human: Option<HumanInfo>,
    /// Why there is no human reference, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_note: Option<String>,
    /// Counts over the run.
    pub counts: Counts,
    /// Numeric outcomes.
    pub numeric: Vec<NumericOutcome>,
    /// Categorical outcomes.
    pub categorical: Vec<CategoricalOutcome>,
    /// Linguistic metrics per role.
    pub linguistic: Vec<RoleText>,
    /// Semantic diversity per role.
    pub semantic: Semantic,
    /// Per role and selection rule: do the choices follow the rule?
    pub selection_check: Vec<SelectionCheck>,
    /// Per role using verbalized sampling: the stated probabilities themselves.
    pub stated_probabilities: Vec<StatedProbabilities>,
}
