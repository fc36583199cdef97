//! A tune's report: `trials.csv` (every candidate at every stage), `report.md` and a
//! self-contained `report.html` with the trials' train scores and their intervals. The
//! held-out comparison's own report (plots, every metric) is the sweep comparison under
//! `test/`.

use std::fmt::Write as _;
use std::path::Path;

use super::run::{TuneError, TuneSummary};
use crate::eval::metrics::Metric;
use crate::report::markdown::cell;
use crate::report::svg;
use crate::stats::format::num;

fn metric(m: &Option<Metric>) -> String {
    m.as_ref().map_or_else(|| "n/a".into(), crate::report::rows::with_ci)
}

fn score_text(v: Option<f64>, ci: Option<(f64, f64)>) -> String {
    match (v, ci) {
        (Some(v), Some((lo, hi))) => format!("{} [{}, {}]", num(v), num(lo), num(hi)),
        (Some(v), None) => num(v),
        _ => "n/a".into(),
    }
}

/// The Markdown report.
pub(crate) fn tune_markdown(s: &TuneSummary) -> String {
    let mut out = String::from("# vsim tune\n\n");
    let _ = writeln!(out, "Objective: {}.\n", cell(&s.objective.describe()));
    let _ = writeln!(
        out,
        "Protocol: every search stage read only the **train** split ({} people: a seeded shuffle of the split), \
         for the simulated people and the human reference alike, with common random numbers across \
         candidates. The **test** split ({} people) was read once, after the choice, to run the chosen \
         setting and the baselines. `tune.json` records the split each stage read.\n",
        s.train_people, s.test_people
    );
    if let Some(stop) = &s.stop {
        let _ =
            writeln!(out, "**Stopped before the end:** {}; resume to continue.\n", cell(&stop.to_string()));
    }
    if let Some(why) = &s.unscored {
        let _ = writeln!(out, "**No choice:** {}.\n", cell(why));
    }
    if let Some(c) = &s.chosen {
        let _ = writeln!(out, "## Choice\n");
        let _ = writeln!(out, "- chosen: `{}`", cell(&c.name));
        if let Some(t) = &s.chosen_train {
            let _ = writeln!(out, "- train objective (last stage): {}", score_text(t.value, t.ci));
        }
        if let Some(h) = s.held_out.first() {
            let _ = writeln!(out, "- held-out objective: {}", score_text(h.score.value, h.score.ci));
        }
        let _ = writeln!(
            out,
            "- optimism gap (held-out minus train; positive: the train score flattered the choice): {}",
            s.optimism_gap.map_or_else(|| "n/a".into(), num)
        );
        let _ = writeln!(
            out,
            "- selection stability: {} (the share of {} resamples of the last stage's train people in which \
             the choice still has the lowest objective among that stage's candidates; language terms are \
             not resampled)\n",
            s.stability.map_or_else(|| "n/a".into(), num),
            s.stability_resamples
        );
    }
    if !s.held_out.is_empty() {
        let _ = writeln!(out, "## Held-out comparison ({} test people)\n", s.test_people);
        let _ = writeln!(
            out,
            "| arm | | objective | KS D [CI] (p) | paired L1 [CI] | density L1 [CI] | mean [CI] | simulated / human / paired / missing / failed |"
        );
        let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |");
        for h in &s.held_out {
            let counts = h.counts.map_or_else(
                || "n/a".into(),
                |n| format!("{} / {} / {} / {} / {}", n.simulated, n.human, n.paired, n.missing, n.failed),
            );
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} (p = {}) | {} | {} | {} | {} |",
                cell(&h.cell.name),
                h.kind,
                score_text(h.score.value, h.score.ci),
                metric(&h.ks),
                h.ks_pvalue.map_or_else(|| "n/a".into(), num),
                metric(&h.l1_paired),
                metric(&h.l1_density),
                metric(&h.mean),
                counts
            );
        }
        let _ = writeln!(out, "| human | | | | | | {} | |", metric(&s.human_test_mean));
        let _ = writeln!(out, "\nEvery metric, with plots: `test/report.md` and `test/report.html`.\n");
    }
    let _ = writeln!(out, "## Trials (train split)\n");
    let _ = writeln!(out, "| stage | people | candidate | objective [CI] | kept | note |");
    let _ = writeln!(out, "| ---: | ---: | --- | ---: | --- | --- |");
    for t in &s.trials {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | {} | {} | {} |",
            t.stage,
            t.people,
            cell(&t.cell.name),
            score_text(t.score.value, t.score.ci),
            if t.kept { "yes" } else { "" },
            cell(t.score.note.as_deref().unwrap_or(""))
        );
    }
    out
}

/// The HTML report: the trials' train scores with intervals, then the Markdown's tables.
pub(crate) fn tune_html(s: &TuneSummary) -> String {
    let stages = s.stages.len();
    let items: Vec<svg::IntervalPoint> = s
        .trials
        .iter()
        .filter_map(|t| t.score.value.map(|v| (v, t.score.ci, svg::run_color(t.stage))))
        .collect();
    let legend: Vec<(String, &'static str)> = (0..stages)
        .map(|i| (format!("stage {i} ({} train people)", s.stages[i].people), svg::run_color(i)))
        .collect();
    let plot =
        svg::intervals("Train objective of every trial, with its interval", "objective", &items, &legend);
    let body = crate::report::markdown::to_html(&tune_markdown(s));
    // The plot goes after the choice, before the tables.
    let body = match body.find("<h2>Held-out") {
        Some(i) => format!("{}<div class=\"plots\">{plot}</div>\n{}", &body[..i], &body[i..]),
        None => format!("{body}<div class=\"plots\">{plot}</div>\n"),
    };
    crate::report::survey::page("vsim tune", &body)
}

/// Writes `trials.csv`, `report.md` and `report.html` into `out`.
pub(crate) fn write_tune_report(out: &Path, s: &TuneSummary) -> Result<(), TuneError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TuneError::Io { path, source }
    };
    let csv_path = out.join("trials.csv");
    let mut w = csv::Writer::from_writer(Vec::new());
    let row_err =
        |e: csv::Error| TuneError::Io { path: out.join("trials.csv"), source: std::io::Error::other(e) };
    w.write_record(["stage", "split", "people", "candidate", "objective", "ci_lo", "ci_hi", "kept", "dir"])
        .map_err(row_err)?;
    for t in &s.trials {
        let f = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
        w.write_record([
            t.stage.to_string(),
            t.split.to_string(),
            t.people.to_string(),
            t.cell.name.clone(),
            f(t.score.value),
            f(t.score.ci.map(|c| c.0)),
            f(t.score.ci.map(|c| c.1)),
            t.kept.to_string(),
            t.dir.display().to_string(),
        ])
        .map_err(row_err)?;
    }
    let bytes = w.into_inner().map_err(|e| TuneError::Io {
        path: csv_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    crate::fsutil::write_atomic(&csv_path, &bytes).map_err(io(&csv_path))?;
    let md = out.join("report.md");
    crate::fsutil::write_atomic(&md, tune_markdown(s).as_bytes()).map_err(io(&md))?;
    let html = out.join("report.html");
    crate::fsutil::write_atomic(&html, tune_html(s).as_bytes()).map_err(io(&html))
}
