//! The headline of a report: the figures a reader comes for, first. Per numeric outcome
//! and per arm: KS (with its p-value), paired L1 and density L1, each with its interval, and
//! the counts they rest on; the human row beside them.

use serde::Serialize;

use super::rows::with_ci;
use crate::eval::metrics::Evaluation;
use crate::stats::format::num;

/// One arm's headline figures for one outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadlineRow {
    /// The arm (a run's label).
    pub arm: String,
    /// KS `D [lo, hi]`.
    pub ks: String,
    /// The KS p-value.
    pub ks_p: String,
    /// Paired L1 `[lo, hi]`.
    pub l1_paired: String,
    /// Density L1 `[lo, hi]`.
    pub l1_density: String,
    /// Simulated mean `[lo, hi]`.
    pub mean: String,
    /// `simulated / human / paired / missing / failed`.
    pub counts: String,
}

/// The headline of one outcome across arms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadlineTable {
    /// The outcome's key.
    pub outcome: String,
    /// One row per arm.
    pub rows: Vec<HeadlineRow>,
    /// The human mean `[lo, hi]` and how many people (from the first arm with human data).
    pub human: String,
}

/// A headline block: what it measures and why it leads, and its tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Headline {
    /// What the block measures.
    pub title: String,
    /// Why it is there, or where its full report is.
    pub why: String,
    /// One table per numeric outcome.
    pub tables: Vec<HeadlineTable>,
}

/// The headline tables of `runs`, one per numeric outcome compared with human data, in the
/// order outcomes first appear.
pub(crate) fn headline_tables(runs: &[Evaluation]) -> Vec<HeadlineTable> {
    let mut keys: Vec<&str> = Vec::new();
    for e in runs {
        for o in e.numeric.iter().filter(|o| o.comparison.is_some()) {
            if !keys.contains(&o.key.as_str()) {
                keys.push(&o.key);
            }
        }
    }
    keys.into_iter()
        .map(|key| {
            let mut human = String::new();
            let rows = runs
                .iter()
                .filter_map(|e| {
                    let o = e.numeric.iter().find(|o| o.key == key)?;
                    if human.is_empty() {
                        if let Some(h) = &o.human {
                            human = format!("{} (n = {})", with_ci(&h.mean), h.n);
                        }
                    }
                    let c = o.comparison.as_ref()?;
                    let n = &c.counts;
                    Some(HeadlineRow {
                        arm: e.label.clone(),
                        ks: with_ci(&c.ks.statistic),
                        ks_p: c.ks.pvalue.map_or_else(|| "n/a".into(), num),
                        l1_paired: with_ci(&c.l1_paired),
                        l1_density: with_ci(&c.l1_density_pfg),
                        mean: with_ci(&o.simulated.mean),
                        counts: format!(
                            "{} / {} / {} / {} / {}",
                            n.simulated, n.human, n.paired, n.missing, n.failed
                        ),
                    })
                })
                .collect();
            HeadlineTable { outcome: key.to_string(), rows, human }
        })
        .collect()
}

/// The Markdown of headline blocks.
pub(crate) fn headline_markdown(blocks: &[Headline]) -> String {
    use std::fmt::Write as _;
    let cell = super::markdown::cell;
    let mut out = String::new();
    if blocks.iter().all(|b| b.tables.is_empty()) {
        return out;
    }
    let _ = writeln!(out, "## Headline\n");
    for b in blocks.iter().filter(|b| !b.tables.is_empty()) {
        let _ = writeln!(out, "### {}\n\n{}\n", cell(&b.title), cell(&b.why));
        for t in &b.tables {
            let _ = writeln!(out, "**{}**\n", cell(&t.outcome));
            let _ = writeln!(
                out,
                "| arm | KS D [CI] | KS p | paired L1 [CI] | density L1 [CI] | mean [CI] | simulated / human / paired / missing / failed |"
            );
            let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | --- |");
            for r in &t.rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    cell(&r.arm),
                    r.ks,
                    r.ks_p,
                    r.l1_paired,
                    r.l1_density,
                    r.mean,
                    r.counts
                );
            }
            if !t.human.is_empty() {
                let _ = writeln!(out, "| human | | | | | {} | |", t.human);
            }
            let _ = writeln!(out);
        }
    }
    out
}
