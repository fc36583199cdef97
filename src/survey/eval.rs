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
//! A subgroup's representativeness is the mean of the normalised score over its ordinal
//! items; the overall score is the mean over subgroups.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::questionnaire::Item;
use super::spec::SurveySpec;
use crate::dialogue::events::Event;
use crate::experiment::transcript::{completed_attempt, read_events, TranscriptError};
use crate::stats::compare::{jensen_shannon, total_variation};
use crate::stats::ks::{ks_2samp, KsMode};

/// One item × subgroup comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemGroupMetrics {
    pub item: String,
    pub group: String,
    pub n_simulated: usize,
    pub n_human: f64,
    pub refused_simulated: usize,
    /// Distributions over the substantive options, in option order.
    pub simulated: Vec<f64>,
    pub human: Vec<f64>,
    pub tv: Option<f64>,
    pub l1: Option<f64>,
    pub js: Option<f64>,
    pub wasserstein: Option<f64>,
    pub representativeness: Option<f64>,
    pub ks_statistic: Option<f64>,
    pub ks_pvalue: Option<f64>,
}

/// A whole survey's comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyReport {
    pub survey: String,
    pub attribute: String,
    pub rows: Vec<ItemGroupMetrics>,
    /// group -> mean representativeness over ordinal items.
    pub representativeness: BTreeMap<String, f64>,
    pub overall_representativeness: Option<f64>,
    pub mean_tv: Option<f64>,
    pub missing_answers: usize,
}

/// Simulated answer counts: item -> group -> count per option, and missing answers.
pub fn simulated_counts(
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
    let tvs: Vec<f64> = rows.iter().filter_map(|r| r.tv).collect();
    Ok(SurveyReport {
        survey: spec.name.clone(),
        attribute: spec.attribute.clone(),
        rows,
        representativeness,
        overall_representativeness: overall,
        mean_tv: (!tvs.is_empty()).then(|| tvs.iter().sum::<f64>() / tvs.len() as f64),
        missing_answers: missing,
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
    let n_sim: f64 = sim.iter().sum();
    let n_hum: f64 = hum.iter().sum();
    let refused_simulated = item.refused.and_then(|r| simulated.get(r).copied()).unwrap_or(0);
    let norm = |v: &[f64], n: f64| -> Vec<f64> {
        if n > 0.0 {
            v.iter().map(|x| x / n).collect()
        } else {
            vec![0.0; v.len()]
        }
    };
    let (p, q) = (norm(&sim, n_sim), norm(&hum, n_hum));
    let comparable = n_sim > 0.0 && n_hum > 0.0;
    let tv = comparable.then(|| total_variation(&p, &q).ok()).flatten();
    let js = comparable.then(|| jensen_shannon(&p, &q).ok()).flatten();
    let (mut wasserstein, mut representativeness, mut ks_statistic, mut ks_pvalue) = (None, None, None, None);
    if let (true, Some(ord)) = (comparable, item.ordinal.as_ref().filter(|_| item.is_ordinal())) {
        let w1 = ordinal_w1(ord, &p, &q);
        let lo = ord.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ord.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        wasserstein = Some(w1);
        representativeness = (hi > lo).then(|| 1.0 - w1 / (hi - lo));
        let expand = |counts: &[f64]| -> Vec<f64> {
            counts.iter().zip(ord).flat_map(|(c, v)| std::iter::repeat_n(*v, c.round() as usize)).collect()
        };
        if let Ok(r) = ks_2samp(&expand(&sim), &expand(&hum), KsMode::Auto) {
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
        simulated: p,
        human: q,
        tv,
        l1: tv.map(|t| 2.0 * t),
        js,
        wasserstein,
        representativeness,
        ks_statistic,
        ks_pvalue,
    }
}

/// W1 between two distributions on the same ordinal support (values need not be sorted).
pub fn ordinal_w1(values: &[f64], p: &[f64], q: &[f64]) -> f64 {
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
    /// A Markdown report: the representativeness summary, then a table per item.
    pub fn to_markdown(&self) -> String {
        let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.3}"));
        let mut s = format!("# Survey report: {}\n\nSubgroups by `{}`.\n\n", self.survey, self.attribute);
        s.push_str("## Representativeness (1 − W1 / range, mean over ordinal items)\n\n| group | representativeness |\n| --- | --- |\n");
        for (g, r) in &self.representativeness {
            s.push_str(&format!("| {g} | {r:.3} |\n"));
        }
        s.push_str(&format!(
            "| **overall** | **{}** |\n\nMean total variation over items and groups: {}. Missing answers: {}.\n\n",
            f(self.overall_representativeness),
            f(self.mean_tv),
            self.missing_answers
        ));
        let mut item = String::new();
        for r in &self.rows {
            if r.item != item {
                item = r.item.clone();
                s.push_str(&format!(
                    "## {item}\n\n| group | n sim | n human | TV | JS | W1 | repr. | KS D | KS p |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
                ));
            }
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.group,
                r.n_simulated,
                r.n_human,
                f(r.tv),
                f(r.js),
                f(r.wasserstein),
                f(r.representativeness),
                f(r.ks_statistic),
                f(r.ks_pvalue)
            ));
        }
        s
    }
}
