//! The metric computations behind [`super::evaluate`]: outcomes, counts, language, the
//! selection check and the stated probabilities. Nothing here fails: a metric that cannot
//! be computed says why.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use statrs::distribution::{ContinuousCDF, Normal};
use statrs::statistics::{Data, Median, Statistics};

use super::human::HumanReference;
use super::metrics::*;
use super::registry::{CategoricalDistances, CategoricalSamples, NumericDistances, NumericSamples};
use super::run::{OutcomeDecl, RunData, RunDialogue};
use crate::outcome::OutcomeSource;
use crate::stats::text::{distinct_n, flesch_kincaid_grade_utterances, tokens, Pooling};
use crate::stats::{bootstrap_ci, histogram, Bins, StatsError};
use crate::vs::AnswerShape;
use crate::vs::{Candidate, Selection, SelectionRule};

/// Bootstrap settings with a seed per metric name, so that adding a metric never changes
/// another's interval.
pub(crate) struct Boot {
    pub resamples: usize,
    pub confidence: f64,
    pub seed: u64,
}

impl Boot {
    fn seed_for(&self, name: &str) -> u64 {
        crate::seed::derive_named(self.seed, name)
    }

    /// A two-sample statistic with an interval from resampling both samples independently.
    pub fn two<F>(&self, name: &str, a: &[f64], b: &[f64], stat: F) -> Metric
    where
        F: Fn(&[f64], &[f64]) -> Result<f64, StatsError>,
    {
        let estimate = match stat(a, b) {
            Ok(v) => v,
            Err(e) => return Metric::na(e.to_string()),
        };
        self.interval(
            estimate,
            bootstrap_ci(a, b, &stat, self.resamples.max(1), self.confidence, self.seed_for(name)),
        )
    }

    /// A one-sample statistic (a mean, a share) with an interval from resampling the sample.
    pub fn one<F>(&self, name: &str, values: &[f64], stat: F) -> Metric
    where
        F: Fn(&[f64]) -> f64,
    {
        if values.is_empty() {
            return Metric::na("no values");
        }
        let estimate = stat(values);
        // The second sample is a placeholder that the statistic ignores: this reuses the
        // two-sample percentile bootstrap, with its interpolation and seeding, for one sample.
        let ci = bootstrap_ci(
            values,
            &[0.0],
            |a, _| Ok(stat(a)),
            self.resamples.max(1),
            self.confidence,
            self.seed_for(name),
        );
        self.interval(estimate, ci)
    }

    fn interval(&self, estimate: f64, ci: Result<crate::stats::Ci, StatsError>) -> Metric {
        if self.resamples == 0 {
            return Metric::value(estimate);
        }
        match ci {
            Ok(ci) => Metric::with_ci(estimate, ci.lo, ci.hi),
            Err(e) => match Metric::value(estimate) {
                Metric::Computed { estimate, .. } => Metric::Computed {
                    estimate,
                    lo: None,
                    hi: None,
                    ci_note: Some(format!("no interval: {e}")),
                },
                na => na,
            },
        }
    }
}

/// The mean of a sample (NaN when empty).
pub(crate) fn mean(v: &[f64]) -> f64 {
    v.mean()
}

pub(crate) fn summary(boot: &Boot, name: &str, v: &[f64]) -> Summary {
    let n = v.len();
    Summary {
        n,
        mean: boot.one(&format!("{name}/mean"), v, mean),
        median: (n > 0).then(|| Data::new(v.to_vec()).median()),
        sd: (n > 1).then(|| v.std_dev()),
        min: v.iter().copied().reduce(f64::min),
        max: v.iter().copied().reduce(f64::max),
        share_zero: (n > 0).then(|| v.iter().filter(|x| **x == 0.0).count() as f64 / n as f64),
    }
}

/// A number from an outcome value: a JSON number, or a string holding one.
fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|x| x.is_finite())
}

/// Whether `x` lies within the declared bounds (inclusive; a missing bound does not limit).
fn in_range(x: f64, min: Option<f64>, max: Option<f64>) -> bool {
    min.is_none_or(|lo| x >= lo) && max.is_none_or(|hi| x <= hi)
}

/// The value of outcome `key` in each dialogue, classified.
enum Observed<'a> {
    Failed,
    Missing,
    /// Read but refused at extraction (e.g. outside the declared range): never compared.
    Invalid,
    Value(&'a RunDialogue, &'a Value),
}

fn observe<'a>(run: &'a RunData, key: &str) -> Vec<Observed<'a>> {
    run.dialogues
        .iter()
        .map(|d| {
            if !d.completed {
                return Observed::Failed;
            }
            let outcome = d.outcome(key);
            if outcome.is_some_and(|o| o.source == OutcomeSource::Invalid) {
                return Observed::Invalid;
            }
            match outcome.and_then(|o| o.value.as_ref()) {
                None | Some(Value::Null) => Observed::Missing,
                Some(v) => Observed::Value(d, v),
            }
        })
        .collect()
}

/// Default histogram bins: 10 over the declared range, else over the pooled data range.
fn default_bins(min: Option<f64>, max: Option<f64>, values: &[f64]) -> Bins {
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo.is_finite() && hi.is_finite() && lo < hi {
            return Bins { lo, hi, n: 10 };
        }
    }
    let lo = values.iter().copied().reduce(f64::min).unwrap_or(0.0);
    let hi = values.iter().copied().reduce(f64::max).unwrap_or(1.0);
    Bins { lo, hi: if hi > lo { hi } else { lo + 1.0 }, n: 10 }
}

// Long on purpose: reads, counts, pairs and compares one outcome in one pass so that every figure rests on the same counted values.
pub(crate) fn numeric_outcome(
    decl: &OutcomeDecl,
    run: &RunData,
    human: Option<&HumanReference>,
    bins: Option<Bins>,
    boot: &Boot,
) -> NumericOutcome {
    // The declared range; an undeclared one is unbounded.
    let (min, max) = match decl.kind {
        AnswerShape::Number { min, max } => (min.is_finite().then_some(min), max.is_finite().then_some(max)),
        AnswerShape::Choice { .. } => (None, None),
    };
    let mut counts = OutcomeCounts::default();
    let mut sim: Vec<(&RunDialogue, f64)> = Vec::new();
    for o in observe(run, &decl.key) {
        match o {
            Observed::Failed => counts.failed += 1,
            Observed::Missing => counts.missing += 1,
            Observed::Invalid => counts.invalid += 1,
            // A number outside the declared range is invalid wherever it is read (a
            // hand-edited transcript included), never compared.
            Observed::Value(d, v) => match as_number(v).filter(|x| in_range(*x, min, max)) {
                Some(x) => {
                    counts.valid += 1;
                    sim.push((d, x));
                }
                None => counts.invalid += 1,
            },
        }
    }
    let simulated_values: Vec<f64> = sim.iter().map(|(_, x)| *x).collect();
    let key = &decl.key;
    let simulated = summary(boot, &format!("{key}/simulated"), &simulated_values);
    let mut out = NumericOutcome {
        key: key.clone(),
        role: decl.role.clone(),
        name: decl.name.clone(),
        min,
        max,
        counts,
        simulated,
        human: None,
        comparison: None,
        comparison_note: None,
        simulated_values,
        human_values: Vec::new(),
        pairs: Vec::new(),
        calibration: None,
    };
    let Some(human) = human else { return out };
    let Some(hvals) = human.numeric.get(key).filter(|v| !v.is_empty()) else {
        let have: Vec<&str> = human.numeric.keys().map(String::as_str).collect();
        out.comparison_note =
            Some(format!("the human data has no values of `{key}` (it has: {})", have.join(", ")));
        return out;
    };
    let h: Vec<f64> = hvals.iter().map(|v| v.value).collect();
    out.human = Some(summary(boot, &format!("{key}/human"), &h));
    out.human_values = h.clone();
    let s = &out.simulated_values;
    let bins = bins.unwrap_or_else(|| default_bins(min, max, &[s.as_slice(), h.as_slice()].concat()));
    // Pairs: a simulated dialogue's population id is its real participant's persona id.
    let by_id: HashMap<&str, f64> = hvals.iter().map(|v| (v.id.as_str(), v.value)).collect();
    let any_ids = sim.iter().any(|(d, _)| d.population_id.is_some());
    for (d, x) in &sim {
        if let Some(&hv) = d.population_id.as_deref().and_then(|id| by_id.get(id)) {
            out.pairs.push(Pair {
                dialogue: d.id.clone(),
                population_id: d.population_id.clone().unwrap_or_default(),
                simulated: *x,
                human: hv,
            });
        }
    }
    let paired = out.pairs.len();
    let paired_people: BTreeSet<&str> = out.pairs.iter().map(|p| p.population_id.as_str()).collect();
    let counts = ComparisonCounts {
        simulated: s.len(),
        human: h.len(),
        paired,
        missing: out.counts.missing,
        invalid: out.counts.invalid,
        failed: out.counts.failed,
        simulated_unpaired: s.len() - paired,
        human_unpaired: h.len() - paired_people.len(),
    };
    let unpaired = if !any_ids {
        Some(
            "not applicable: the run's dialogues carry no population ids (e.g. hand-written personas), \
             so none is paired with a real participant"
                .to_string(),
        )
    } else if paired == 0 {
        Some(format!(
            "no simulated dialogue's population id matches a participant of the human reference ({} split)",
            human.split
        ))
    } else {
        None
    };
    let outside = |v: &[f64]| histogram(v, &bins).map(|hh| hh.below + hh.above).unwrap_or(0);
    let outside_bins = [outside(s), outside(&h)];
    let distances = if s.is_empty() {
        NumericDistances::not_applicable("no simulated values")
    } else {
        let samples = NumericSamples {
            key: key.clone(),
            simulated: s.clone(),
            human: h,
            pairs: out.pairs.iter().map(|p| (p.simulated, p.human)).collect(),
            unpaired,
            bins,
            min,
            max,
        };
        NumericDistances::compute(&samples, boot)
    };
    out.comparison = Some(NumericComparison::new(counts, bins, outside_bins, distances));
    out.calibration = super::calibration::calibration(key, &out.pairs, boot);
    out
}

pub(crate) fn categorical_outcome(
    decl: &OutcomeDecl,
    run: &RunData,
    human: Option<&HumanReference>,
    boot: &Boot,
) -> CategoricalOutcome {
    let declared = match &decl.kind {
        AnswerShape::Choice { choices } => choices.clone(),
        AnswerShape::Number { .. } => Vec::new(),
    };
    let mut counts = OutcomeCounts::default();
    let mut labels: Vec<String> = Vec::new();
    for o in observe(run, &decl.key) {
        match o {
            Observed::Failed => counts.failed += 1,
            Observed::Missing => counts.missing += 1,
            Observed::Invalid => counts.invalid += 1,
            Observed::Value(_, Value::String(s)) => {
                counts.valid += 1;
                labels.push(s.clone());
            }
            Observed::Value(_, Value::Number(n)) => {
                counts.valid += 1;
                labels.push(n.to_string());
            }
            Observed::Value(_, Value::Bool(b)) => {
                counts.valid += 1;
                labels.push(b.to_string());
            }
            Observed::Value(..) => counts.invalid += 1,
        }
    }
    let human_labels: Option<Vec<String>> = human
        .and_then(|h| h.categorical.get(&decl.key))
        .filter(|v| !v.is_empty())
        .map(|v| v.iter().map(|l| l.label.clone()).collect());
    let mut all: Vec<String> = Vec::new();
    for c in &declared {
        if !all.contains(c) {
            all.push(c.clone());
        }
    }
    let extra: BTreeSet<&String> =
        labels.iter().chain(human_labels.iter().flatten()).filter(|l| !declared.contains(l)).collect();
    all.extend(extra.into_iter().cloned());
    let index: HashMap<&str, usize> = all.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    // Every label is in `all` by construction; `filter_map` keeps this total all the same.
    let encode = |ls: &[String]| -> Vec<f64> {
        ls.iter().filter_map(|l| index.get(l.as_str()).map(|&i| i as f64)).collect()
    };
    let sim_idx = encode(&labels);
    let hum_idx = human_labels.as_deref().map(encode);
    let categories = all
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let ind: Vec<f64> = sim_idx.iter().map(|&x| f64::from(u8::from(x as usize == i))).collect();
            let hc = hum_idx.as_ref().map(|h| h.iter().filter(|&&x| x as usize == i).count());
            CategoryShare {
                label: label.clone(),
                simulated_count: ind.iter().filter(|x| **x > 0.0).count(),
                simulated: boot.one(&format!("{}/share/{label}", decl.key), &ind, mean),
                human_count: hc,
                human: hc.zip(hum_idx.as_ref()).map(|(c, h)| c as f64 / h.len() as f64),
            }
        })
        .collect();
    let n_human = hum_idx.as_ref().map(Vec::len);
    let distances = match hum_idx {
        None => CategoricalDistances::not_applicable(if human.is_none() {
            "no human data given"
        } else {
            "the human data has no values of this outcome"
        }),
        Some(_) if sim_idx.is_empty() => CategoricalDistances::not_applicable("no simulated values"),
        Some(h) => CategoricalDistances::compute(
            &CategoricalSamples {
                key: decl.key.clone(),
                simulated: sim_idx,
                human: h,
                categories: all.len(),
            },
            boot,
        ),
    };
    CategoricalOutcome::new(
        decl.key.clone(),
        decl.role.clone(),
        decl.name.clone(),
        counts,
        categories,
        n_human,
        distances,
    )
}

/// Linguistic metrics of one role's utterances, given per dialogue; the pooled Distinct-N is
/// left to [`role_text`], which sees both sides.
pub(crate) fn text_metrics(boot: &Boot, name: &str, dialogues: &[Vec<String>]) -> TextMetrics {
    let all: Vec<&str> = dialogues.iter().flatten().map(String::as_str).collect();
    let distinct = (1..=3)
        .map(|n| {
            let per: Vec<f64> = dialogues.iter().filter_map(|d| distinct_n(d, n, Pooling::Pooled)).collect();
            let per_dialogue = if per.is_empty() {
                Metric::na(format!("no dialogue has an utterance of {n} or more tokens"))
            } else {
                boot.one(&format!("{name}/distinct_{n}"), &per, mean)
            };
            DistinctN { n, per_dialogue, pooled: None }
        })
        .collect();
    TextMetrics {
        utterances: all.len(),
        dialogues: dialogues.iter().filter(|d| !d.is_empty()).count(),
        tokens: all.iter().map(|t| tokens(t).len()).sum(),
        distinct,
        pooled_dialogues: 0,
        flesch_kincaid_grade: flesch_kincaid_grade_utterances(&all),
    }
}

/// Linguistic metrics of a role on both sides. Distinct-N pooled across dialogues is
/// computed only with a human side, on equal-size samples: as many dialogues (with at least
/// one utterance of the role) from each side as the smaller side has, a seeded sample on the
/// larger one, since a pooled value falls as the corpus grows.
pub(crate) fn role_text(
    boot: &Boot,
    role: &str,
    simulated: &[Vec<String>],
    human: Option<&[Vec<String>]>,
) -> RoleText {
    let mut sim = text_metrics(boot, &format!("text/{role}/simulated"), simulated);
    let mut hum = human.map(|h| text_metrics(boot, &format!("text/{role}/human"), h));
    if let (Some(h_dialogues), Some(hm)) = (human, hum.as_mut()) {
        let s = equal_size_pool(simulated, h_dialogues, boot.seed, &format!("pooled-distinct/{role}"));
        if let Some((n, s_texts, h_texts)) = s {
            for (metrics, texts) in [(&mut sim, &s_texts), (&mut *hm, &h_texts)] {
                metrics.pooled_dialogues = n;
                for d in &mut metrics.distinct {
                    d.pooled = distinct_n(texts, d.n, Pooling::Pooled);
                }
            }
        }
    }
    RoleText { role: role.to_string(), simulated: sim, human: hum }
}

/// The utterances of `n` dialogues of each side, `n` the smaller side's count of dialogues
/// with an utterance; each side's sample is seeded by `name`. `None` when a side has none.
fn equal_size_pool<'a>(
    a: &'a [Vec<String>],
    b: &'a [Vec<String>],
    seed: u64,
    name: &str,
) -> Option<(usize, Vec<&'a str>, Vec<&'a str>)> {
    let a: Vec<&Vec<String>> = a.iter().filter(|d| !d.is_empty()).collect();
    let b: Vec<&Vec<String>> = b.iter().filter(|d| !d.is_empty()).collect();
    let n = a.len().min(b.len());
    if n == 0 {
        return None;
    }
    let pool = |side: &[&'a Vec<String>], which: &str| -> Vec<&'a str> {
        let seed = crate::seed::derive_named(seed, &format!("{name}/{which}"));
        sample_indices(side.len(), n, seed)
            .into_iter()
            .flat_map(|i| side[i].iter().map(String::as_str))
            .collect()
    };
    Some((n, pool(&a, "simulated"), pool(&b, "human")))
}

/// Up to `max` of the indices `0..len`, a seeded sample without replacement when there are
/// more, in ascending order.
pub(crate) fn sample_indices(len: usize, max: usize, seed: u64) -> Vec<usize> {
    use rand::RngCore;
    if len <= max {
        return (0..len).collect();
    }
    let mut idx: Vec<usize> = (0..len).collect();
    let mut rng = crate::seed::rng(seed);
    for i in 0..max {
        let j = i + ((u128::from(rng.next_u64()) * (idx.len() - i) as u128) >> 64) as usize;
        idx.swap(i, j);
    }
    let mut chosen = idx[..max].to_vec();
    chosen.sort_unstable();
    chosen
}

/// Roles in order of first appearance (agents of the begin events, then speakers).
pub(crate) fn roles_in_order(run: &RunData) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in &run.dialogues {
        for r in d.agents.iter().map(|a| &a.role).chain(d.turns.iter().map(|t| &t.speaker)) {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

/// A role's chosen utterances per completed dialogue.
pub(crate) fn role_texts(run: &RunData, role: &str) -> Vec<Vec<String>> {
    run.dialogues
        .iter()
        .filter(|d| d.completed)
        .map(|d| d.turns.iter().filter(|t| t.speaker == role).map(|t| t.text.clone()).collect())
        .collect()
}

pub(crate) fn role_infos(run: &RunData) -> Vec<RoleInfo> {
    roles_in_order(run)
        .into_iter()
        .map(|role| {
            let mut methods = BTreeSet::new();
            let mut models = BTreeSet::new();
            let mut selection = BTreeSet::new();
            for d in &run.dialogues {
                for a in d.agents.iter().filter(|a| a.role == role) {
                    methods.insert(a.method.to_string());
                    models.insert(a.model.clone());
                }
                for t in d.turns.iter().filter(|t| t.speaker == role) {
                    methods.insert(t.method.to_string());
                    selection.insert(rule_label(&t.choice.rule));
                }
            }
            RoleInfo {
                role,
                methods: methods.into_iter().collect(),
                models: models.into_iter().collect(),
                selection: selection.into_iter().collect(),
            }
        })
        .collect()
}

pub(crate) fn counts(run: &RunData) -> Counts {
    let mut c =
        Counts { dialogues: run.dialogues.len(), torn_last_line: run.torn_last_line, ..Counts::default() };
    for d in &run.dialogues {
        if d.completed_attempts > 1 {
            c.completed_more_than_once.push(d.id.clone());
        }
        if d.completed {
            c.completed += 1;
        } else {
            c.failed += 1;
            if c.errors.len() < 10 {
                let msg = d.error.as_deref().unwrap_or("the dialogue did not finish (no end event)");
                c.errors.push(format!("{}: {msg}", d.id));
            }
        }
        for t in &d.turns {
            c.turns += 1;
            c.candidates += t.candidates.len();
            c.parse_retries += t.calls.iter().filter(|call| call.parse_error.is_some()).count();
            let mut in_turn: BTreeSet<String> = BTreeSet::new();
            for cand in &t.candidates {
                let kinds: BTreeSet<String> = cand.repairs.iter().map(repair_kind).collect();
                for k in kinds {
                    c.repairs.entry(k.clone()).or_default().candidates += 1;
                    in_turn.insert(k);
                }
            }
            for k in in_turn {
                c.repairs.entry(k).or_default().turns += 1;
            }
        }
    }
    c
}

/// The `kind` tag a repair is stored under in transcripts.
fn repair_kind(r: &crate::vs::Repair) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Bins of expected choice probability in the selection check.
pub const SELECTION_CHECK_BINS: usize = 10;

/// A selection rule as shown in reports, e.g. `weighted` or `uniform, min_prob 0.1, min_keep 1`.
fn rule_label(r: &SelectionRule) -> String {
    match r.min_prob {
        Some(p) => format!("{}, min_prob {p}, min_keep {}", r.selection, r.min_keep),
        None => r.selection.to_string(),
    }
}

/// A candidate's probability as the sampler weighs it (NaN, infinite, negative: 0).
fn weight(c: &Candidate) -> f64 {
    if c.probability.is_finite() && c.probability > 0.0 {
        c.probability
    } else {
        0.0
    }
}

/// Each candidate's probability of being chosen under `rule`, from the candidates alone:
/// 0 outside the tau filter; weighted: the normalised probability among those passing it
/// (uniform when they all weigh 0); uniform: 1/k of them; argmax: 1 for the most probable
/// (lowest index on ties).
pub(crate) fn expected_choice(candidates: &[Candidate], rule: &SelectionRule) -> Vec<f64> {
    let mut p = vec![0.0; candidates.len()];
    let eligible = crate::vs::select::eligible(candidates, rule);
    if eligible.is_empty() {
        return p;
    }
    let uniform = 1.0 / eligible.len() as f64;
    match rule.selection {
        Selection::Argmax => {
            let mut best = eligible[0];
            for &i in &eligible[1..] {
                if weight(&candidates[i]) > weight(&candidates[best]) {
                    best = i;
                }
            }
            p[best] = 1.0;
        }
        Selection::Uniform => eligible.iter().for_each(|&i| p[i] = uniform),
        Selection::Weighted => {
            let total: f64 = eligible.iter().map(|&i| weight(&candidates[i])).sum();
            for &i in &eligible {
                p[i] =
                    if total > 0.0 && total.is_finite() { weight(&candidates[i]) / total } else { uniform };
            }
        }
    }
    p
}

/// Accumulated evidence of one (role, rule) for the selection check.
#[derive(Default)]
struct SelectionTally {
    turns: usize,
    /// Per candidate: (expected choice probability, chosen).
    candidates: Vec<(f64, bool)>,
    /// Σ_t e_t, Σ_t E[e_t], Σ_t Var[e_t] (see [`SelectionCheck::z`]).
    sum_chosen: f64,
    sum_mean: f64,
    sum_var: f64,
    impossible: usize,
}

/// The selection check of every role and rule, over turns with at least two candidates.
pub(crate) fn selection_check(run: &RunData) -> Vec<SelectionCheck> {
    let order = roles_in_order(run);
    let mut by: BTreeMap<(usize, String), (String, SelectionTally)> = BTreeMap::new();
    for t in run.dialogues.iter().flat_map(|d| &d.turns).filter(|t| t.candidates.len() >= 2) {
        let rank = order.iter().position(|r| *r == t.speaker).unwrap_or(usize::MAX);
        let rule = rule_label(&t.choice.rule);
        let (_, tally) =
            by.entry((rank, rule)).or_insert_with(|| (t.speaker.clone(), SelectionTally::default()));
        let p = expected_choice(&t.candidates, &t.choice.rule);
        tally.turns += 1;
        for (i, pi) in p.iter().enumerate() {
            tally.candidates.push((*pi, i == t.choice.index));
        }
        let chosen = p.get(t.choice.index).copied().unwrap_or(0.0);
        if chosen <= 0.0 {
            tally.impossible += 1;
        }
        let s2: f64 = p.iter().map(|x| x * x).sum();
        let s3: f64 = p.iter().map(|x| x * x * x).sum();
        tally.sum_chosen += chosen;
        tally.sum_mean += s2;
        tally.sum_var += (s3 - s2 * s2).max(0.0);
    }
    by.into_iter()
        .map(|((_, rule), (role, t))| {
            let k = SELECTION_CHECK_BINS;
            let mut bins: Vec<(usize, usize, f64)> = vec![(0, 0, 0.0); k];
            for (p, chosen) in &t.candidates {
                let b = ((p * k as f64).floor() as usize).min(k - 1);
                bins[b].0 += 1;
                bins[b].1 += usize::from(*chosen);
                bins[b].2 += p;
            }
            let bins: Vec<SelectionBin> = bins
                .into_iter()
                .enumerate()
                .map(|(i, (n, chosen, sum))| SelectionBin {
                    lo: i as f64 / k as f64,
                    hi: (i + 1) as f64 / k as f64,
                    n,
                    chosen,
                    mean_expected: (n > 0).then(|| sum / n as f64),
                    chosen_frequency: (n > 0).then(|| chosen as f64 / n as f64),
                })
                .collect();
            let total = t.candidates.len();
            let mean_abs_gap = (total > 0).then(|| {
                bins.iter()
                    .filter_map(|b| {
                        Some(b.n as f64 / total as f64 * (b.mean_expected? - b.chosen_frequency?).abs())
                    })
                    .sum()
            });
            // Below this the rule is deterministic in every turn: a z-score means nothing.
            let z = (t.sum_var > 1e-12).then(|| (t.sum_chosen - t.sum_mean) / t.sum_var.sqrt());
            SelectionCheck {
                role,
                rule,
                turns: t.turns,
                candidates: total,
                bins,
                mean_abs_gap,
                z,
                p_value: z.map(|z| 2.0 * Normal::standard().sf(z.abs())),
                impossible: t.impossible,
            }
        })
        .collect()
}

/// The stated probabilities of every role that speaks by verbalized sampling.
pub(crate) fn stated_probabilities(run: &RunData, boot: &Boot) -> Vec<StatedProbabilities> {
    #[derive(Default)]
    struct Tally {
        turns: usize,
        candidates: usize,
        unstated: usize,
        sum_errors: Vec<f64>,
        renormalised: Vec<f64>,
        max_p: Vec<f64>,
        entropy: Vec<f64>,
    }
    let order = roles_in_order(run);
    let mut by: BTreeMap<usize, (String, Tally)> = BTreeMap::new();
    for t in run.dialogues.iter().flat_map(|d| &d.turns).filter(|t| t.method.is_verbalized()) {
        let rank = order.iter().position(|r| *r == t.speaker).unwrap_or(usize::MAX);
        let (_, y) = by.entry(rank).or_insert_with(|| (t.speaker.clone(), Tally::default()));
        y.turns += 1;
        y.candidates += t.candidates.len();
        let stated: Vec<f64> =
            t.candidates.iter().filter_map(|c| c.raw_probability.filter(|p| p.is_finite())).collect();
        y.unstated += t.candidates.len() - stated.len();
        // Candidates pooled from several replies each sum to 1 per reply, not together.
        let one_reply = t.calls.iter().filter(|c| c.parse_error.is_none()).count() <= 1;
        if one_reply && !stated.is_empty() && stated.len() == t.candidates.len() {
            let err = (stated.iter().sum::<f64>() - 1.0).abs();
            y.sum_errors.push(err);
            y.renormalised.push(f64::from(u8::from(err > 1e-6)));
        }
        let w: Vec<f64> = t.candidates.iter().map(weight).collect();
        let total: f64 = w.iter().sum();
        if total > 0.0 && total.is_finite() {
            let p: Vec<f64> = w.iter().map(|x| x / total).collect();
            y.max_p.push(p.iter().copied().fold(0.0, f64::max));
            if p.len() >= 2 {
                let h: f64 = p.iter().filter(|x| **x > 0.0).map(|x| -x * x.ln()).sum();
                y.entropy.push(h / (p.len() as f64).ln());
            }
        }
    }
    by.into_values()
        .map(|(role, y)| StatedProbabilities {
            share_unstated: (y.candidates > 0).then(|| y.unstated as f64 / y.candidates as f64),
            turns_summed: y.sum_errors.len(),
            mean_abs_sum_error: boot.one(&format!("stated/{role}/sum_error"), &y.sum_errors, mean),
            share_renormalised: boot.one(&format!("stated/{role}/renormalised"), &y.renormalised, mean),
            mean_max_probability: boot.one(&format!("stated/{role}/max_probability"), &y.max_p, mean),
            mean_normalised_entropy: boot.one(&format!("stated/{role}/entropy"), &y.entropy, mean),
            mean_candidates: (y.turns > 0).then(|| y.candidates as f64 / y.turns as f64),
            role,
            turns: y.turns,
            candidates: y.candidates,
            unstated: y.unstated,
        })
        .collect()
}
