//! Survey evaluation: simulated answer distributions per subgroup against human ones.
//!
//! For each item and subgroup, over the substantive options (refusals are left out and
//! counted separately; both distributions renormalised):
//! - total variation `TV = ½ Σ|p − q|` and `L1 = Σ|p − q|`;
//! - Jensen–Shannon divergence (base 2, in [0, 1]);
//! - for ordinal items, Wasserstein-1 on the ordinal values, OpinionQA's normalised
//!   representativeness `1 − W1 / (max ordinal − min ordinal)`, and the two-sample KS test
//!   on the answers as ordinal values (ties handled as in scipy).
//!
//! The denominator is the largest W1 possible on the item, all mass on the lowest ordinal
//! value against all mass on the highest: `max − min` of the ordinal values, as OpinionQA's
//! reference code computes it (`get_max_wd`). The paper writes it as `N − 1` (N options),
//! which is the same only when the ordinal values are 1, 2, …, N; items where the two differ
//! (e.g. values 1, 2, 1.5 for "safer / more dangerous / neither") are listed in the report
//! ([`SurveyReport::denominator_differs`]).
//!
//! A subgroup's representativeness is the mean of the normalised score over its ordinal
//! items; the overall score is the mean over subgroups. Refusals are counted on both sides:
//! the simulated answers that chose the refusal option and the human ones (OpinionQA's
//! aggregates hold only answers given, so a human refusal is an answer of the refusal
//! option).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::questionnaire::Item;
use super::spec::SurveySpec;
use crate::dialogue::events::Event;
use crate::rundir::transcript::{completed_attempt, read_events, TranscriptError};
use crate::stats::distances::{JENSEN_SHANNON, TOTAL_VARIATION};
use crate::stats::ks::{ks_2samp_counts, KsMode};

/// One item × subgroup comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemGroupMetrics {
    /// The item's key.
    pub item: String,
    /// The subgroup.
    pub group: String,
    /// Simulated substantive answers.
    pub n_simulated: usize,
    /// Human substantive answers (weighted counts).
    pub n_human: f64,
    /// Simulated answers that chose the refusal option (left out of `simulated`).
    pub refused_simulated: usize,
    /// Human answers of the refusal option (left out of `human`).
    pub refused_human: f64,
    /// Distributions over the substantive options, in option order.
    pub simulated: Vec<f64>,
    /// The human distribution over the same options (empty without human data).
    pub human: Vec<f64>,
    /// Total variation distance.
    pub tv: Option<f64>,
    /// L1 distance (twice the total variation).
    pub l1: Option<f64>,
    /// Jensen–Shannon divergence.
    pub js: Option<f64>,
    /// Wasserstein-1 distance over the ordinal values (ordinal items only).
    pub wasserstein: Option<f64>,
    /// 1 − W1 / `representativeness_denominator` (ordinal items only).
    pub representativeness: Option<f64>,
    /// The W1 that `representativeness` divides by: max − min of the ordinal values.
    pub representativeness_denominator: Option<f64>,
    /// Two-sample KS `D` over the ordinal values (ordinal items only).
    pub ks_statistic: Option<f64>,
    /// The KS p-value.
    pub ks_pvalue: Option<f64>,
}

/// How the representativeness denominator is chosen, in words (for reports).
pub const DENOMINATOR: &str = "max − min of the item's ordinal values (OpinionQA's reference code)";

/// An ordinal item whose `max − min` of the ordinal values differs from the paper's
/// `N − 1` (N substantive options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenominatorDifference {
    /// The item's key.
    pub item: String,
    /// max − min of the ordinal values: the denominator used.
    pub range: f64,
    /// The number of substantive options − 1: the paper's denominator.
    pub options_minus_one: usize,
}

/// A whole survey's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyReport {
    /// The survey's name.
    pub survey: String,
    /// The attribute that defines subgroups.
    pub attribute: String,
    /// One row per item and subgroup, items in questionnaire order.
    pub rows: Vec<ItemGroupMetrics>,
    /// group -> mean representativeness over ordinal items.
    pub representativeness: BTreeMap<String, f64>,
    /// Mean of the subgroups' representativeness.
    pub overall_representativeness: Option<f64>,
    /// The representativeness denominator in words ([`DENOMINATOR`]).
    pub representativeness_denominator: String,
    /// The survey's ordinal items where the paper's `N − 1` would give another denominator.
    pub denominator_differs: Vec<DenominatorDifference>,
    /// Mean total variation over the rows that have one.
    pub mean_tv: Option<f64>,
    /// Simulated answers that could not be read as one of the item's options.
    pub missing_answers: usize,
    /// Refusals over all items and subgroups: simulated answers and human ones.
    pub refused_simulated: usize,
    /// Human refusals (weighted counts).
    pub refused_human: f64,
    /// Subgroups with no human answer to any item of the survey: compared with nothing, so
    /// left out of representativeness (named, never skipped silently).
    pub groups_without_human: Vec<String>,
    /// Items without distinct ordinal values (nominal, or all values equal): they have no
    /// Wasserstein distance, so no representativeness (named, never dropped silently).
    pub items_without_order: Vec<String>,
}

/// The representativeness denominator of an ordinal item: max − min of its ordinal values
/// (`None` for nominal items).
pub fn ordinal_range(item: &Item) -> Option<f64> {
    let ord = item.ordinal.as_ref().filter(|_| item.is_ordinal())?;
    let lo = ord.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ord.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (hi > lo).then_some(hi - lo)
}

/// The ordinal items among `items` whose range differs from the paper's `N − 1`.
pub fn denominator_differences<'a>(items: impl IntoIterator<Item = &'a Item>) -> Vec<DenominatorDifference> {
    items
        .into_iter()
        .filter_map(|item| {
            let range = ordinal_range(item)?;
            let options_minus_one = item.substantive().len().saturating_sub(1);
            ((range - options_minus_one as f64).abs() > 1e-12).then(|| DenominatorDifference {
                item: item.key.clone(),
                range,
                options_minus_one,
            })
        })
        .collect()
}

/// Simulated answer counts: item -> group -> count per option, and missing answers.
pub(crate) fn simulated_counts(
    spec: &SurveySpec,
    events: &BTreeMap<String, Vec<Event>>,
) -> (BTreeMap<String, BTreeMap<String, Vec<usize>>>, usize) {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    let mut missing = 0;
    for evs in events.values() {
        let Some(attempt) = completed_attempt(evs) else { continue };
        let Some(Event::Begin(b)) = attempt.first() else { continue };
        let group = b.population_id.clone().unwrap_or_default();
        for e in attempt {
            if let Event::Outcome(o) = e {
                let Some(item) = spec.questionnaire.item(&o.name) else { continue };
                let counts = out
                    .entry(item.key.clone())
                    .or_default()
                    .entry(group.clone())
                    .or_insert_with(|| vec![0; item.options.len()]);
                match o
                    .value
                    .as_ref()
                    .and_then(|v| v.as_str())
                    .and_then(|s| item.options.iter().position(|x| x == s))
                {
                    Some(i) => counts[i] += 1,
                    None => missing += 1,
                }
            }
        }
    }
    (out, missing)
}

/// Compares a survey run directory with the survey's human data.
pub fn evaluate(spec: &SurveySpec, run_dir: &Path) -> Result<SurveyReport, TranscriptError> {
    let events = read_events(&run_dir.join("transcripts.jsonl"))?;
    let (sim, missing) = simulated_counts(spec, &events);
    let mut rows = Vec::new();
    for item in &spec.questionnaire.items {
        for group in &spec.groups {
            let s: Vec<usize> = sim
                .get(&item.key)
                .and_then(|g| g.get(group))
                .cloned()
                .unwrap_or_else(|| vec![0; item.options.len()]);
            let h: Option<Vec<f64>> =
                spec.human.as_ref().and_then(|h| h.counts.get(&item.key)).and_then(|g| g.get(group)).cloned();
            rows.push(compare_item(item, group, &s, h.as_deref()));
        }
    }
    let mut representativeness = BTreeMap::new();
    for group in &spec.groups {
        let scores: Vec<f64> =
            rows.iter().filter(|r| &r.group == group).filter_map(|r| r.representativeness).collect();
        if !scores.is_empty() {
            representativeness.insert(group.clone(), scores.iter().sum::<f64>() / scores.len() as f64);
        }
    }
    let overall = (!representativeness.is_empty())
        .then(|| representativeness.values().sum::<f64>() / representativeness.len() as f64);
    let groups_without_human: Vec<String> = spec
        .groups
        .iter()
        .filter(|g| rows.iter().filter(|r| &r.group == *g).all(|r| r.n_human == 0.0))
        .cloned()
        .collect();
    let tvs: Vec<f64> = rows.iter().filter_map(|r| r.tv).collect();
    let refused_simulated = rows.iter().map(|r| r.refused_simulated).sum();
    let refused_human = rows.iter().map(|r| r.refused_human).sum();
    Ok(SurveyReport {
        survey: spec.name.clone(),
        attribute: spec.attribute.clone(),
        rows,
        representativeness,
        overall_representativeness: overall,
        representativeness_denominator: DENOMINATOR.to_string(),
        denominator_differs: denominator_differences(&spec.questionnaire.items),
        mean_tv: (!tvs.is_empty()).then(|| tvs.iter().sum::<f64>() / tvs.len() as f64),
        missing_answers: missing,
        refused_simulated,
        refused_human,
        groups_without_human,
        items_without_order: spec
            .questionnaire
            .items
            .iter()
            .filter(|i| ordinal_range(i).is_none())
            .map(|i| i.key.clone())
            .collect(),
    })
}

/// Compares one item for one group (`human` counts per option, or none).
pub fn compare_item(
    item: &Item,
    group: &str,
    simulated: &[usize],
    human: Option<&[f64]>,
) -> ItemGroupMetrics {
    let subst = item.substantive();
    let sim: Vec<f64> = subst.iter().map(|&i| simulated.get(i).copied().unwrap_or(0) as f64).collect();
    let hum: Vec<f64> =
        human.map(|h| subst.iter().map(|&i| h.get(i).copied().unwrap_or(0.0)).collect()).unwrap_or_default();
    // Summed from +0.0: an empty sum of floats is -0.0, which reads as "-0" in a report.
    let n_sim: f64 = sim.iter().fold(0.0, |a, b| a + b);
    let n_hum: f64 = hum.iter().fold(0.0, |a, b| a + b);
    let refused_simulated = item.refused.and_then(|r| simulated.get(r).copied()).unwrap_or(0);
    let refused_human = item.refused.and_then(|r| human.and_then(|h| h.get(r).copied())).unwrap_or(0.0);
    let norm = |v: &[f64], n: f64| -> Vec<f64> {
        if n > 0.0 {
            v.iter().map(|x| x / n).collect()
        } else {
            vec![0.0; v.len()]
        }
    };
    let (p, q) = (norm(&sim, n_sim), norm(&hum, n_hum));
    let comparable = n_sim > 0.0 && n_hum > 0.0;
    let tv = comparable.then(|| TOTAL_VARIATION.statistic(&p, &q, None).ok()).flatten();
    let js = comparable.then(|| JENSEN_SHANNON.statistic(&p, &q, None).ok()).flatten();
    let (mut wasserstein, mut representativeness, mut ks_statistic, mut ks_pvalue) = (None, None, None, None);
    let denominator = ordinal_range(item);
    if let (true, Some(ord)) = (comparable, item.ordinal.as_ref().filter(|_| item.is_ordinal())) {
        let w1 = ordinal_w1(ord, &p, &q);
        wasserstein = Some(w1);
        representativeness = denominator.map(|d| 1.0 - w1 / d);
        // Whole counts (weighted human counts rounded), compared as weighted ECDFs: a count is
        // never expanded into a list of answers, however large it is.
        let whole = |counts: &[f64]| -> Vec<u64> { counts.iter().map(|c| c.round() as u64).collect() };
        if let Ok(r) = ks_2samp_counts(ord, &whole(&sim), &whole(&hum), KsMode::Auto) {
            ks_statistic = Some(r.statistic);
            ks_pvalue = Some(r.pvalue);
        }
    }
    ItemGroupMetrics {
        item: item.key.clone(),
        group: group.to_string(),
        n_simulated: n_sim as usize,
        n_human: n_hum,
        refused_simulated,
        refused_human,
        simulated: p,
        human: q,
        tv,
        l1: tv.map(|t| 2.0 * t),
        js,
        wasserstein,
        representativeness,
        representativeness_denominator: denominator,
        ks_statistic,
        ks_pvalue,
    }
}

/// W1 between two distributions on the same ordinal support (values need not be sorted).
pub(crate) fn ordinal_w1(values: &[f64], p: &[f64], q: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let (mut fp, mut fq, mut w) = (0.0, 0.0, 0.0);
    for win in idx.windows(2) {
        fp += p[win[0]];
        fq += q[win[0]];
        w += (fp - fq).abs() * (values[win[1]] - values[win[0]]);
    }
    w
}

impl SurveyReport {
    /// The denominator choice in a few words, naming the items where the paper's would differ.
    pub(crate) fn denominator_note(&self) -> String {
        let mut s = format!("denominator: {}", self.representativeness_denominator);
        if !self.denominator_differs.is_empty() {
            let items: Vec<String> = self
                .denominator_differs
                .iter()
                .map(|d| {
                    format!(
                        "{}: max − min {}, options − 1 = {}",
                        d.item,
                        fmt_num(d.range),
                        d.options_minus_one
                    )
                })
                .collect();
            s.push_str(&format!("; the paper's options − 1 differs for {}", items.join("; ")));
        }
        s
    }

    /// One line: overall representativeness with its denominator, mean TV, missing answers and
    /// refusals on both sides.
    pub fn summary_line(&self) -> String {
        let mut line = format!(
            "overall representativeness {} ({}), mean TV {}, {} missing answers, refusals: {} simulated, {} human",
            fmt3(self.overall_representativeness),
            self.denominator_note(),
            fmt3(self.mean_tv),
            self.missing_answers,
            self.refused_simulated,
            fmt_num(self.refused_human)
        );
        if !self.groups_without_human.is_empty() {
            line.push_str(&format!(
                "; no human answers for {} (left out of representativeness)",
                self.groups_without_human.join(", ")
            ));
        }
        if !self.items_without_order.is_empty() {
            line.push_str(&format!(
                "; items without distinct ordinal values (no representativeness): {}",
                self.items_without_order.join(", ")
            ));
        }
        line
    }

    /// A Markdown report: the representativeness summary, then a table per item.
    pub fn to_markdown(&self) -> String {
        let f = fmt3;
        let mut s = format!("# Survey report: {}\n\nSubgroups by `{}`.\n\n", self.survey, self.attribute);
        s.push_str(
            "## Representativeness (1 − W1 / (max − min of the ordinal values), mean over ordinal items)\n\n\
             | group | representativeness |\n| --- | --- |\n",
        );
        for (g, r) in &self.representativeness {
            s.push_str(&format!("| {g} | {r:.3} |\n"));
        }
        for g in &self.groups_without_human {
            s.push_str(&format!("| {g} | no human answers in the data |\n"));
        }
        if !self.items_without_order.is_empty() {
            s.push_str(&format!(
                "\nLeft out of representativeness, having no distinct ordinal values: {}.\n",
                self.items_without_order.join(", ")
            ));
        }
        let marker = match self.denominator_differs.len() {
            0 => String::new(),
            n => format!(
                " (÷ max − min; the paper's options − 1 differs for {n} item{}, below)",
                if n == 1 { "" } else { "s" }
            ),
        };
        s.push_str(&format!("| **overall** | **{}**{marker} |\n\n", f(self.overall_representativeness)));
        s.push_str(&format!(
            "Denominator: {}, the largest W1 possible on the item; not the paper's number of options − 1.",
            self.representativeness_denominator
        ));
        if self.denominator_differs.is_empty() {
            s.push_str(" The two agree on every ordinal item here.\n\n");
        } else {
            s.push_str(" They differ for:\n\n| item | max − min (used) | options − 1 (paper) |\n| --- | --- | --- |\n");
            for d in &self.denominator_differs {
                s.push_str(&format!("| {} | {} | {} |\n", d.item, fmt_num(d.range), d.options_minus_one));
            }
            s.push('\n');
        }
        s.push_str(&format!(
            "Mean total variation over items and groups: {}. Missing answers: {}. \
             Refusals (left out of every distribution): {} simulated, {} human.\n\n",
            f(self.mean_tv),
            self.missing_answers,
            self.refused_simulated,
            fmt_num(self.refused_human)
        ));
        let mut item = String::new();
        for r in &self.rows {
            if r.item != item {
                if !item.is_empty() {
                    s.push('\n');
                }
                item = r.item.clone();
                s.push_str(&format!(
                    "## {item}\n\n| group | n sim | n human | refused sim | refused human | TV | JS | W1 | repr. | KS D | KS p |\n\
                     | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
                ));
            }
            let differs = self.denominator_differs.iter().find(|d| d.item == r.item);
            let repr = match (r.representativeness, differs) {
                (Some(v), Some(d)) => {
                    format!(
                        "{v:.3} (÷ {}, max − min; options − 1 = {})",
                        fmt_num(d.range),
                        d.options_minus_one
                    )
                }
                (v, _) => f(v),
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.group,
                r.n_simulated,
                fmt_num(r.n_human),
                r.refused_simulated,
                fmt_num(r.refused_human),
                f(r.tv),
                f(r.js),
                f(r.wasserstein),
                repr,
                f(r.ks_statistic),
                f(r.ks_pvalue)
            ));
        }
        s
    }
}

fn fmt3(x: Option<f64>) -> String {
    x.map_or("–".to_string(), |v| format!("{v:.3}"))
}

/// A count or ordinal value: whole numbers without decimals, others as they are.
fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}
