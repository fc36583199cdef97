//! Probability repair and the final candidate list: units, missing values, duplicates,
//! the cut to `k` and normalisation.

use std::collections::HashMap;

use super::items::{RawItem, Stated};
use super::{Candidate, ParseError, ParseOptions, Repair};
use crate::vs::KSpec;

/// An item after unit repair.
struct Resolved {
    text: String,
    raw: Option<f64>,
    /// Non-negative finite weight, or `None` when missing.
    weight: Option<f64>,
    repairs: Vec<Repair>,
    merged: usize,
}

pub(super) fn build_candidates(
    items: Vec<RawItem>,
    mut reply_repairs: Vec<Repair>,
    opts: &ParseOptions,
) -> Result<Vec<Candidate>, ParseError> {
    // Drop empty texts.
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        if item.text.trim().is_empty() {
            reply_repairs.push(Repair::DroppedEmpty { position: item.position });
        } else {
            kept.push(item);
        }
    }
    if kept.is_empty() {
        return Err(ParseError::NoCandidates("every text is empty".into()));
    }

    let mut resolved = resolve_probabilities(kept, opts.ignore_probabilities);

    // Merge duplicates (same text up to whitespace), keeping the first occurrence.
    let mut merged: Vec<Resolved> = Vec::with_capacity(resolved.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(resolved.len());
    for r in resolved.drain(..) {
        let key = r.text.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(first) = seen.get(&key).and_then(|&pos| merged.get_mut(pos)) {
            first.merged += 1;
            first.raw = match (first.raw, r.raw) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            first.weight = match (first.weight, r.weight) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            for rep in r.repairs {
                if !first.repairs.contains(&rep) {
                    first.repairs.push(rep);
                }
            }
        } else {
            seen.insert(key, merged.len());
            merged.push(r);
        }
    }
    for m in &mut merged {
        if m.merged > 0 {
            m.repairs.push(Repair::Merged { duplicates: m.merged });
        }
    }

    // Bound the count.
    if let Some(k) = opts.k {
        let max = k.max().max(1);
        if merged.len() > max {
            reply_repairs.push(Repair::Truncated { found: merged.len(), kept: max });
            merged.truncate(max);
        } else if let KSpec::Fixed { k } = k {
            if merged.len() < k {
                reply_repairs.push(Repair::FewerThanRequested { found: merged.len(), requested: k });
            }
        }
    }

    // Normalise.
    let weights: Vec<f64> = merged.iter().map(|m| m.weight.unwrap_or(0.0)).collect();
    let max = weights.iter().copied().fold(0.0f64, f64::max);
    let probabilities: Vec<f64> = if max > 0.0 && max.is_finite() {
        let scaled: Vec<f64> = weights.iter().map(|w| w / max).collect();
        let sum_scaled: f64 = scaled.iter().sum();
        let sum = sum_scaled * max;
        if !opts.ignore_probabilities && (sum - 1.0).abs() > 1e-6 {
            reply_repairs.push(Repair::Normalized { sum: if sum.is_finite() { sum } else { f64::MAX } });
        }
        scaled.iter().map(|s| s / sum_scaled).collect()
    } else {
        if !opts.ignore_probabilities {
            reply_repairs.push(Repair::Uniform);
        }
        let n = merged.len() as f64;
        vec![1.0 / n; merged.len()]
    };

    Ok(merged
        .into_iter()
        .zip(probabilities)
        .map(|(m, probability)| {
            let mut repairs = reply_repairs.clone();
            for r in m.repairs {
                if !repairs.contains(&r) {
                    repairs.push(r);
                }
            }
            Candidate { text: m.text.trim().to_string(), probability, raw_probability: m.raw, repairs }
        })
        .collect())
}

fn resolve_probabilities(items: Vec<RawItem>, ignore: bool) -> Vec<Resolved> {
    if ignore {
        return items
            .into_iter()
            .map(|i| {
                let repairs = i
                    .repairs
                    .into_iter()
                    .filter(|r| {
                        !matches!(r, Repair::ProbabilityKey { .. } | Repair::ProbabilityString { .. })
                    })
                    .collect();
                Resolved { text: i.text, raw: None, weight: Some(1.0), repairs, merged: 0 }
            })
            .collect();
    }
    let scale_all = items.iter().any(|i| matches!(i.stated, Stated::Value { v, percent: false } if v > 1.0));
    let mut out: Vec<Resolved> = items
        .into_iter()
        .map(|i| {
            let mut repairs = i.repairs;
            let (raw, weight) = match i.stated {
                Stated::Missing => {
                    repairs.push(Repair::MissingProbability);
                    (None, None)
                }
                Stated::Invalid(value) => {
                    repairs.push(Repair::InvalidProbability { value });
                    (None, None)
                }
                Stated::Value { v, percent } => {
                    let p = if percent || scale_all {
                        repairs.push(Repair::PercentScaled { stated: v });
                        v / 100.0
                    } else {
                        v
                    };
                    if p < 0.0 {
                        repairs.push(Repair::NegativeProbability { value: p });
                        (Some(p), Some(0.0))
                    } else {
                        (Some(p), Some(p))
                    }
                }
            };
            Resolved { text: i.text, raw, weight, repairs, merged: 0 }
        })
        .collect();

    let known: Vec<f64> = out.iter().filter_map(|r| r.weight).collect();
    let n_missing = out.len() - known.len();
    if n_missing > 0 && !known.is_empty() {
        let sum: f64 = known.iter().sum();
        let leftover = 1.0 - sum;
        let fill = if leftover > 1e-9 { leftover / n_missing as f64 } else { sum / known.len() as f64 };
        let fill = if fill.is_finite() && fill >= 0.0 { fill } else { 0.0 };
        for r in &mut out {
            if r.weight.is_none() {
                r.weight = Some(fill);
            }
        }
    }
    out
}
