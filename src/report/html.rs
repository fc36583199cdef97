//! The self-contained HTML pages: inline CSS and SVG, a few lines of inline script, nothing
//! fetched from the network. All text from transcripts and data goes through the template
//! engine's HTML escaping; the SVG plots escape their own text.

use std::collections::HashMap;

use serde::Serialize;

use super::rows::{metric_rows, MetricRow};
use super::svg::{self, Series, HUMAN_COLOR};
use super::{Comparison, ReportError};
use crate::eval::metrics::{Evaluation, NumericOutcome};
use crate::eval::run::RunData;
use crate::stats::format::num;
use crate::stats::Bins;

const TEMPLATE: &str = include_str!("template.html");

const CSS: &str = r#"
:root { --fg: #1d232b; --muted: #5b6571; --line: #dde2e8; --bg: #f6f8fa; --accent: #1f6fb4; --ok: #1a7f37; --bad: #c62828; --warn: #a15c00; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
header { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); background: var(--bg); }
h1 { margin: 0 0 2px; font-size: 22px; }
h2 { margin: 28px 0 10px; font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { margin: 18px 0 8px; font-size: 15px; }
.sub { margin: 0 0 8px; color: var(--muted); }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 0 28px 40px; max-width: 1240px; }
code { font-size: 12.5px; background: var(--bg); padding: 1px 4px; border-radius: 3px; word-break: break-all; }
.note { color: var(--muted); margin: 6px 0; }
.bad { color: var(--bad); } .warn { color: var(--warn); }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
table { border-collapse: collapse; }
table.kv th { text-align: left; font-weight: 600; color: var(--muted); padding: 3px 14px 3px 0; vertical-align: top; white-space: nowrap; }
table.kv td { padding: 3px 0; }
table.metrics { width: 100%; margin: 8px 0 14px; font-size: 13px; }
table.metrics.narrow { width: auto; }
table.metrics th, table.metrics td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.metrics thead th { background: var(--bg); position: sticky; top: 0; }
table.metrics tr.section th { background: #eef3f9; font-weight: 600; padding-top: 7px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.human { color: #444; }
td.rownote { color: var(--muted); font-size: 12px; max-width: 360px; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
svg.plot { border: 1px solid var(--line); border-radius: 4px; max-width: 100%; height: auto; }
svg .title { font: 600 13px system-ui, sans-serif; fill: #1d232b; }
svg .tick { font: 11px system-ui, sans-serif; fill: #555; }
svg .axis { font: 12px system-ui, sans-serif; fill: #333; }
svg .legend { font: 11.5px system-ui, sans-serif; fill: #333; }
.controls input { margin-left: 10px; padding: 3px 6px; width: 280px; }
details.dialogue { border: 1px solid var(--line); border-radius: 5px; margin: 6px 0; background: #fff; }
details.dialogue > summary { cursor: pointer; padding: 7px 10px; background: var(--bg); list-style-position: inside; }
details.dialogue[open] > summary { border-bottom: 1px solid var(--line); }
summary span { margin-right: 12px; }
.did { font-weight: 600; }
.pid { color: var(--muted); font-size: 12px; }
.status { font-size: 11px; padding: 1px 6px; border-radius: 8px; }
.status.completed { background: #dafbe1; color: var(--ok); }
.status.failed { background: #ffebe9; color: var(--bad); }
.turns { color: var(--muted); font-size: 12px; }
.outcome .real { color: var(--muted); }
.turn { padding: 8px 12px; border-bottom: 1px dashed var(--line); }
.turnhead { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.speaker { font-weight: 700; color: var(--fg); text-transform: capitalize; }
.reasoning { font-size: 12px; color: var(--muted); font-style: italic; margin: 2px 0 4px; white-space: pre-wrap; }
ol.cands { list-style: none; margin: 0; padding: 0; }
li.cand { display: grid; grid-template-columns: 120px 130px 1fr; gap: 10px; align-items: start; padding: 3px 6px; border-left: 3px solid transparent; }
li.cand.chosen { border-left-color: var(--ok); background: #f0faf2; }
li.cand.ineligible { opacity: 0.55; }
.bar { display: block; height: 10px; margin-top: 5px; background: #e8ecf0; border-radius: 2px; overflow: hidden; }
.bar span { display: block; height: 100%; background: var(--accent); }
li.cand.chosen .bar span { background: var(--ok); }
.prob { font-variant-numeric: tabular-nums; font-size: 12.5px; }
.text { white-space: pre-wrap; word-break: break-word; }
.mark { color: var(--ok); font-style: normal; font-size: 12px; }
li.cand.ineligible .mark { color: var(--warn); }
.repairs { color: var(--warn); }
"#;

#[derive(Serialize)]
struct Nav {
    id: &'static str,
    label: &'static str,
}

#[derive(Serialize)]
struct MissingView {
    key: String,
    missing: usize,
    invalid: usize,
    failed: usize,
}

#[derive(Serialize)]
struct RunView<'a> {
    label: &'a str,
    color: &'static str,
    dir: &'a str,
    link: Option<String>,
    scenario: Option<&'a str>,
    measure: &'static str,
    population: Option<&'a str>,
    roles: &'a [crate::eval::metrics::RoleInfo],
    counts: &'a crate::eval::metrics::Counts,
    missing: Vec<MissingView>,
}

#[derive(Serialize)]
struct OutcomeView {
    key: String,
    note: Option<String>,
    plots: Vec<String>,
}

#[derive(Serialize)]
struct TableRow {
    name: String,
    values: Vec<String>,
    human: String,
    note: String,
}

#[derive(Serialize)]
struct SectionView {
    name: String,
    rows: Vec<TableRow>,
}

#[derive(Serialize)]
struct BinView {
    range: String,
    n: usize,
    expected: String,
    chosen: String,
    count: usize,
}

#[derive(Serialize)]
struct SelectionTable {
    title: String,
    bins: Vec<BinView>,
}

#[derive(Serialize)]
struct CandidateView {
    text: String,
    pct: String,
    prob: String,
    stated: Option<String>,
    chosen: bool,
    eligible: bool,
    repairs: String,
}

#[derive(Serialize)]
struct TurnView {
    turn: usize,
    speaker: String,
    method: String,
    rule: String,
    draw: Option<String>,
    reasoning: Option<String>,
    candidates: Vec<CandidateView>,
}

#[derive(Serialize)]
struct DialogueOutcomeView {
    key: String,
    simulated: String,
    human: Option<String>,
}

#[derive(Serialize)]
struct DialogueView {
    id: String,
    population_id: Option<String>,
    status: &'static str,
    error: Option<String>,
    outcomes: Vec<DialogueOutcomeView>,
    turns: Vec<TurnView>,
}

#[derive(Serialize)]
struct BrowserView {
    note: String,
    dialogues: Vec<DialogueView>,
}

#[derive(Serialize)]
struct Page<'a> {
    title: String,
    subtitle: String,
    version: &'static str,
    css: &'static str,
    nav: Vec<Nav>,
    runs: Vec<RunView<'a>>,
    notes: Vec<String>,
    human: Option<&'a crate::eval::metrics::HumanInfo>,
    human_note: String,
    outcomes: Vec<OutcomeView>,
    ci_note: String,
    columns: Vec<String>,
    /// Whether rows carry notes (a single run's table does; a comparison does not).
    show_notes: bool,
    sections: Vec<SectionView>,
    selection: Vec<String>,
    selection_tables: Vec<SelectionTable>,
    errors: Vec<String>,
    browser: Option<BrowserView>,
    /// The figures a reader comes for, first.
    headlines: Vec<super::headline::Headline>,
    /// How a PersuasionForGood split relates to the paper's.
    pfg_split_note: &'static str,
}

fn render(page: &Page<'_>) -> Result<String, ReportError> {
    let mut env = minijinja::Environment::new();
    // The name ends in .html, so every `{{ }}` is HTML-escaped unless marked `|safe`.
    env.add_template("report.html", TEMPLATE).map_err(|e| ReportError::Template(e.to_string()))?;
    let tmpl = env.get_template("report.html").map_err(|e| ReportError::Template(e.to_string()))?;
    tmpl.render(page).map_err(|e| ReportError::Template(e.to_string()))
}

fn nav(has_selection: bool, has_browser: bool) -> Vec<Nav> {
    let mut n = vec![
        Nav { id: "setup", label: "Run" },
        Nav { id: "human", label: "Human reference" },
        Nav { id: "outcomes", label: "Outcomes" },
        Nav { id: "metrics", label: "All metrics" },
    ];
    if has_selection {
        n.push(Nav { id: "selection", label: "Selection check" });
    }
    if has_browser {
        n.push(Nav { id: "dialogues", label: "Dialogues" });
    }
    n
}

fn run_view<'a>(e: &'a Evaluation, color: &'static str, link: Option<String>) -> RunView<'a> {
    RunView {
        label: &e.label,
        color,
        dir: &e.run_dir,
        link,
        scenario: e.scenario.as_deref(),
        measure: super::markdown::measure_text(e.measure),
        population: e.population.as_deref(),
        roles: &e.roles,
        counts: &e.counts,
        missing: e
            .numeric
            .iter()
            .map(|o| (o.key.clone(), o.counts))
            .chain(e.categorical.iter().map(|o| (o.key.clone(), o.counts)))
            .map(|(key, c)| MissingView { key, missing: c.missing, invalid: c.invalid, failed: c.failed })
            .collect(),
    }
}

/// Bins for plotting an outcome: those of the comparison, else 20 over the declared or
/// observed range.
fn plot_bins(o: &NumericOutcome) -> Bins {
    if let Some(c) = &o.comparison {
        return c.bins;
    }
    let all = o.simulated_values.iter().chain(&o.human_values).copied();
    let lo = o.min.unwrap_or_else(|| all.clone().fold(f64::INFINITY, f64::min));
    let hi = o.max.unwrap_or_else(|| all.fold(f64::NEG_INFINITY, f64::max));
    if lo.is_finite() && hi.is_finite() && hi > lo {
        Bins { lo, hi, n: 20 }
    } else {
        let lo = if lo.is_finite() { lo } else { 0.0 };
        Bins { lo, hi: lo + 1.0, n: 10 }
    }
}

/// Histogram and ECDF plots of one outcome across runs, with the human sample when known.
fn outcome_plots(key: &str, runs: &[(&str, &'static str, &NumericOutcome)]) -> Vec<String> {
    let Some((_, _, first)) = runs.first() else { return Vec::new() };
    let bins = plot_bins(first);
    let human = runs.iter().map(|r| r.2).find(|o| !o.human_values.is_empty());
    let mut series: Vec<Series<'_>> = Vec::new();
    if let Some(h) = human {
        series.push(Series {
            label: "human".into(),
            color: HUMAN_COLOR,
            values: &h.human_values,
            filled: true,
        });
    }
    for (label, color, o) in runs {
        series.push(Series {
            label: format!("simulated: {label}"),
            color,
            values: &o.simulated_values,
            filled: false,
        });
    }
    let mut plots = vec![
        svg::histogram(&format!("{key}: histogram"), key, &bins, &series),
        svg::ecdf(&format!("{key}: ECDF"), key, (bins.lo, bins.hi), &series),
    ];
    plots.extend(pit_plot(key, runs));
    plots
}

/// The PIT histogram of the runs with replicates, over a flat reference (what a
/// calibrated simulation gives): one value at the middle of each bin.
fn pit_plot(key: &str, runs: &[(&str, &'static str, &NumericOutcome)]) -> Option<String> {
    let n = crate::eval::calibration::PIT_BINS;
    let uniform: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
    let pits: Vec<(&str, &'static str, Vec<f64>)> = runs
        .iter()
        .filter_map(|(label, color, o)| {
            o.calibration.as_ref().map(|c| (*label, *color, c.persons.iter().map(|p| p.pit).collect()))
        })
        .collect();
    if pits.is_empty() {
        return None;
    }
    let mut series = vec![Series {
        label: "calibrated (uniform)".into(),
        color: HUMAN_COLOR,
        values: &uniform,
        filled: true,
    }];
    for (label, color, values) in &pits {
        series.push(Series { label: format!("PIT: {label}"), color, values, filled: false });
    }
    let bins = Bins { lo: 0.0, hi: 1.0, n };
    Some(svg::histogram(
        &format!("{key}: where each real value falls among the same person's simulated values (PIT)"),
        "PIT",
        &bins,
        &series,
    ))
}

fn categorical_plots(e: &[(&str, &'static str, &crate::eval::metrics::CategoricalOutcome)]) -> Vec<String> {
    let Some((_, _, first)) = e.first() else { return Vec::new() };
    let labels: Vec<String> = first.categories.iter().map(|c| c.label.clone()).collect();
    let mut series: Vec<(String, &'static str, Vec<f64>)> = Vec::new();
    if first.n_human.is_some() {
        series.push((
            "human".into(),
            HUMAN_COLOR,
            first.categories.iter().map(|c| c.human.unwrap_or(0.0)).collect(),
        ));
    }
    for (label, color, o) in e {
        let shares = labels
            .iter()
            .map(|l| {
                o.categories
                    .iter()
                    .find(|c| &c.label == l)
                    .and_then(|c| c.simulated.estimate())
                    .unwrap_or(0.0)
            })
            .collect();
        series.push((format!("simulated: {label}"), color, shares));
    }
    vec![svg::bars(&format!("{}: shares", first.key), &labels, &series)]
}

fn sections_from(rows: &[(String, String, Vec<String>, String, String)]) -> Vec<SectionView> {
    let mut out: Vec<SectionView> = Vec::new();
    for (section, name, values, human, note) in rows {
        if out.last().is_none_or(|s| &s.name != section) {
            out.push(SectionView { name: section.clone(), rows: Vec::new() });
        }
        if let Some(s) = out.last_mut() {
            s.rows.push(TableRow {
                name: name.clone(),
                values: values.clone(),
                human: human.clone(),
                note: note.clone(),
            });
        }
    }
    out
}

/// Selection-check plots (one per role and rule, every run overlaid) and bin tables.
fn selection_views(runs: &[(&str, &'static str, &Evaluation)]) -> (Vec<String>, Vec<SelectionTable>) {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for (_, _, e) in runs {
        for c in &e.selection_check {
            if !keys.contains(&(c.role.as_str(), c.rule.as_str())) {
                keys.push((&c.role, &c.rule));
            }
        }
    }
    let find = |e: &'_ Evaluation, role: &str, rule: &str| {
        e.selection_check.iter().find(|c| c.role == role && c.rule == rule).cloned()
    };
    let mut plots = Vec::new();
    let mut tables = Vec::new();
    for (role, rule) in keys {
        let checks: Vec<(&str, &'static str, crate::eval::metrics::SelectionCheck)> = runs
            .iter()
            .filter_map(|(label, color, e)| Some((*label, *color, find(e, role, rule)?)))
            .collect();
        let series: Vec<(String, &'static str, &[crate::eval::metrics::SelectionBin])> = checks
            .iter()
            .map(|(label, color, c)| {
                let z = c.z.map_or_else(String::new, |z| format!(", z {}", num(z)));
                (
                    format!("{label} (mean gap {}{z})", c.mean_abs_gap.map_or_else(|| "n/a".into(), num)),
                    *color,
                    c.bins.as_slice(),
                )
            })
            .collect();
        plots.push(svg::selection_check(&format!("selection check: {role}, {rule}"), &series));
        for (label, _, c) in &checks {
            let o = |x: Option<f64>| x.map_or_else(String::new, num);
            tables.push(SelectionTable {
                title: if runs.len() > 1 {
                    format!("{role}, {rule} — {label}")
                } else {
                    format!("{role}, {rule}")
                },
                bins: c
                    .bins
                    .iter()
                    .map(|b| BinView {
                        range: format!("[{:.1}, {:.1}{}", b.lo, b.hi, if b.hi >= 1.0 { "]" } else { ")" }),
                        n: b.n,
                        expected: o(b.mean_expected),
                        chosen: o(b.chosen_frequency),
                        count: b.chosen,
                    })
                    .collect(),
            });
        }
    }
    (plots, tables)
}

fn outcome_value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), num),
        other => other.to_string(),
    }
}

fn browser(e: &Evaluation, run: &RunData, max: usize) -> BrowserView {
    // Real participants' values by (dialogue, outcome).
    let mut real: HashMap<(&str, &str), f64> = HashMap::new();
    for o in &e.numeric {
        for p in &o.pairs {
            real.insert((p.dialogue.as_str(), o.key.as_str()), p.human);
        }
    }
    let total = run.dialogues.len();
    let shown = total.min(max);
    let dialogues = run
        .dialogues
        .iter()
        .take(max)
        .map(|d| DialogueView {
            id: d.id.clone(),
            population_id: d.population_id.clone(),
            status: if d.completed { "completed" } else { "failed" },
            error: d.error.clone().filter(|_| !d.completed),
            outcomes: run
                .outcomes
                .iter()
                .filter(|_| d.completed)
                .map(|decl| DialogueOutcomeView {
                    key: decl.key.clone(),
                    simulated: d
                        .outcome(&decl.key)
                        .and_then(|o| o.value.as_ref())
                        .map_or_else(|| "missing".to_string(), outcome_value_text),
                    human: real.get(&(d.id.as_str(), decl.key.as_str())).map(|v| num(*v)),
                })
                .collect(),
            turns: d
                .turns
                .iter()
                .map(|t| {
                    let rule = &t.choice.rule;
                    TurnView {
                        turn: t.turn,
                        speaker: t.speaker.clone(),
                        method: t.method.to_string(),
                        rule: match rule.min_prob {
                            Some(p) => format!("{}, min_prob {p} (keep ≥ {})", rule.selection, rule.min_keep),
                            None => rule.selection.to_string(),
                        },
                        draw: t.choice.draw.map(|d| format!("{d:.4}")),
                        reasoning: t.reasoning.clone().filter(|r| !r.trim().is_empty()),
                        candidates: t
                            .candidates
                            .iter()
                            .enumerate()
                            .map(|(i, c)| {
                                let p = if c.probability.is_finite() {
                                    c.probability.clamp(0.0, 1.0)
                                } else {
                                    0.0
                                };
                                CandidateView {
                                    text: c.text.clone(),
                                    pct: format!("{:.1}", p * 100.0),
                                    prob: num(p),
                                    stated: c
                                        .raw_probability
                                        .filter(|r| (r - c.probability).abs() > 1e-9)
                                        .map(num),
                                    chosen: i == t.choice.index,
                                    eligible: t.choice.eligible.is_empty() || t.choice.eligible.contains(&i),
                                    repairs: c
                                        .repairs
                                        .iter()
                                        .filter_map(|r| {
                                            serde_json::to_value(r)
                                                .ok()?
                                                .get("kind")?
                                                .as_str()
                                                .map(str::to_string)
                                        })
                                        .collect::<Vec<_>>()
                                        .join(", "),
                                }
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    let note = if shown < total {
        format!("Showing the first {shown} of {total} dialogues (raise the number of dialogues shown to see more). Each turn lists every candidate with its probability; the chosen one is marked.")
    } else {
        format!("{total} dialogues. Each turn lists every candidate with its probability; the chosen one is marked.")
    };
    BrowserView { note, dialogues }
}

fn ci_note(e: &Evaluation) -> String {
    if e.bootstrap.resamples == 0 {
        return "No bootstrap intervals (0 bootstrap resamples were asked for).".into();
    }
    format!(
        "Intervals: {:.0}% percentile bootstrap, {} resamples, seed {}; simulated and human samples are resampled \
         independently, pairs as pairs.",
        e.bootstrap.confidence * 100.0,
        e.bootstrap.resamples,
        e.bootstrap.seed
    )
}

/// The HTML page of one run; with `run`, a browser of its first `max_dialogues` dialogues.
pub fn run_html(e: &Evaluation, run: Option<&RunData>, max_dialogues: usize) -> Result<String, ReportError> {
    let color = svg::run_color(0);
    let rows: Vec<MetricRow> = metric_rows(e);
    let table: Vec<(String, String, Vec<String>, String, String)> = rows
        .into_iter()
        .map(|r| {
            let value = if r.ci.is_empty() { r.value } else { format!("{} {}", r.value, r.ci) };
            (r.section, r.name, vec![value], r.human, r.note)
        })
        .collect();
    let mut outcomes: Vec<OutcomeView> = e
        .numeric
        .iter()
        .map(|o| OutcomeView {
            key: o.key.clone(),
            note: o.comparison_note.clone().or_else(|| e.human_note.clone()),
            plots: outcome_plots(&o.key, &[(&e.label, color, o)]),
        })
        .collect();
    outcomes.extend(e.categorical.iter().map(|o| OutcomeView {
        key: o.key.clone(),
        note: None,
        plots: categorical_plots(&[(&e.label, color, o)]),
    }));
    let (selection, selection_tables) = selection_views(&[(&e.label, color, e)]);
    let browser = run.map(|r| browser(e, r, max_dialogues));
    let page = Page {
        title: format!("vsim evaluation: {}", e.label),
        subtitle: e.scenario.clone().unwrap_or_default(),
        version: env!("CARGO_PKG_VERSION"),
        css: CSS,
        nav: nav(!selection.is_empty(), browser.is_some()),
        runs: vec![run_view(e, color, None)],
        notes: Vec::new(),
        human: e.human.as_ref(),
        human_note: e.human_note.clone().unwrap_or_default(),
        outcomes,
        ci_note: ci_note(e),
        columns: vec![format!("simulated [{:.0}% CI]", e.bootstrap.confidence * 100.0)],
        show_notes: true,
        sections: sections_from(&table),
        selection,
        selection_tables,
        errors: e.counts.errors.clone(),
        browser,
        headlines: Vec::new(),
        pfg_split_note: super::markdown::PFG_SPLIT_NOTE,
    };
    render(&page)
}

/// The HTML page comparing runs side by side; `links` are paths to each run's own report.
pub(crate) fn comparison_html(c: &Comparison, links: &[Option<String>]) -> Result<String, ReportError> {
    let labelled: Vec<(&str, &'static str, &Evaluation)> =
        c.runs.iter().enumerate().map(|(i, e)| (e.label.as_str(), svg::run_color(i), e)).collect();
    let mut keys: Vec<&str> = Vec::new();
    for e in &c.runs {
        for o in &e.numeric {
            if !keys.contains(&o.key.as_str()) {
                keys.push(&o.key);
            }
        }
    }
    let mut outcomes: Vec<OutcomeView> = keys
        .iter()
        .map(|key| {
            let runs: Vec<(&str, &'static str, &NumericOutcome)> = labelled
                .iter()
                .filter_map(|(l, col, e)| Some((*l, *col, e.numeric.iter().find(|o| o.key == *key)?)))
                .collect();
            OutcomeView { key: key.to_string(), note: None, plots: outcome_plots(key, &runs) }
        })
        .collect();
    let mut ckeys: Vec<&str> = Vec::new();
    for e in &c.runs {
        for o in &e.categorical {
            if !ckeys.contains(&o.key.as_str()) {
                ckeys.push(&o.key);
            }
        }
    }
    for key in ckeys {
        let runs: Vec<_> = labelled
            .iter()
            .filter_map(|(l, col, e)| Some((*l, *col, e.categorical.iter().find(|o| o.key == key)?)))
            .collect();
        outcomes.push(OutcomeView { key: key.to_string(), note: None, plots: categorical_plots(&runs) });
    }
    let (selection, selection_tables) = selection_views(&labelled);
    let table: Vec<(String, String, Vec<String>, String, String)> = c
        .table
        .iter()
        .map(|r| (r.section.clone(), r.name.clone(), r.values.clone(), r.human.clone(), String::new()))
        .collect();
    let human = c.runs.iter().find_map(|e| e.human.as_ref());
    let page = Page {
        title: format!("vsim comparison: {}", c.runs.iter().map(|e| e.label.as_str()).collect::<Vec<_>>().join(" vs ")),
        subtitle: format!("{} runs", c.runs.len()),
        version: env!("CARGO_PKG_VERSION"),
        css: CSS,
        nav: nav(!selection.is_empty(), false),
        runs: labelled
            .iter()
            .enumerate()
            .map(|(i, (_, col, e))| run_view(e, col, links.get(i).cloned().flatten()))
            .collect(),
        notes: c.notes.clone(),
        human,
        human_note: "no run was evaluated against human data".into(),
        outcomes,
        ci_note: format!(
            "Each cell: estimate [{:.0}% bootstrap interval]. Notes on individual values are in each run's own report.",
            c.confidence() * 100.0
        ),
        columns: c.runs.iter().map(|e| e.label.clone()).collect(),
        show_notes: false,
        sections: sections_from(&table),
        selection,
        selection_tables,
        errors: Vec::new(),
        browser: None,
        headlines: c.headlines(),
        pfg_split_note: super::markdown::PFG_SPLIT_NOTE,
    };
    render(&page)
}

/// A one-cell rendering of a metric row, as used in comparison tables.
pub(crate) fn row_cell(r: &MetricRow) -> String {
    if r.ci.is_empty() {
        r.value.clone()
    } else {
        format!("{} {}", r.value, r.ci)
    }
}
