//! The Markdown reports: the same tables as the HTML page, without plots or transcripts.

use std::fmt::Write as _;

use super::rows::{metric_rows, MetricRow};
use super::Comparison;
use crate::eval::metrics::Evaluation;
use crate::stats::format::num;

/// How vsim's PersuasionForGood split relates to the paper's, stated in every report that
/// compares with it.
pub(crate) const PFG_SPLIT_NOTE: &str = "the split is vsim's, not the paper's: the paper keeps 939 dialogues \
    (739 train, 200 test) \"after filtering out dialogues with inconsistent donation amounts\", a rule its text \
    does not state; vsim keeps every persuadee whose recorded donation is in [0, 2] (982 in the release) and \
    takes a seeded 200 as the test split";

/// Escapes text for a Markdown table cell (also against raw HTML in renderers that allow it).
pub fn cell(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn header(out: &mut String, e: &Evaluation) {
    let _ = writeln!(out, "- run: `{}`", cell(&e.run_dir));
    if let Some(s) = &e.scenario {
        let _ = writeln!(out, "- scenario: {}", cell(s));
    }
    let _ = writeln!(out, "- outcomes measured as: {}", measure_text(e.measure));
    if let Some(p) = &e.population {
        let _ = writeln!(out, "- population: `{}`", cell(p));
    }
    for r in &e.roles {
        let _ = writeln!(
            out,
            "- role **{}**: method {}; selection {}; model {}",
            cell(&r.role),
            cell(&r.methods.join(", ")),
            cell(&if r.selection.is_empty() { "n/a".to_string() } else { r.selection.join(", ") }),
            cell(&r.models.join(", "))
        );
    }
}

fn human_section(out: &mut String, e: &Evaluation) {
    let _ = writeln!(out, "\n## Human reference\n");
    match &e.human {
        Some(h) => {
            let _ = writeln!(out, "- people compared: {}", cell(&h.people));
            let _ = writeln!(
                out,
                "- source: `{}`, split `{}` (fixed split seed {}, over persuadees ordered by dialogue id)",
                cell(&h.source),
                h.split,
                h.split_seed
            );
            let _ = writeln!(out, "- filter: {}", cell(&h.filter));
            let _ = writeln!(out, "- {}", cell(&h.filter_summary));
            if h.source.starts_with("pfg:") || h.filter.contains("donation") {
                let _ = writeln!(out, "- {PFG_SPLIT_NOTE}");
            }
            let _ = writeln!(
                out,
                "- participants in the reference: {}; dialogues: {}",
                h.participants, h.dialogues
            );
        }
        None => {
            let _ = writeln!(out, "{}", cell(e.human_note.as_deref().unwrap_or("none")));
        }
    }
}

fn metrics_table(out: &mut String, rows: &[MetricRow], ci_label: &str) {
    let mut section = "";
    for r in rows {
        if r.section != section {
            section = &r.section;
            let _ = writeln!(out, "\n### {}\n", cell(section));
            let _ = writeln!(out, "| metric | simulated | {ci_label} | human reference | note |");
            let _ = writeln!(out, "| --- | ---: | --- | ---: | --- |");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            cell(&r.name),
            cell(&r.value),
            cell(&r.ci),
            cell(&r.human),
            cell(&r.note)
        );
    }
}

fn selection_tables(out: &mut String, e: &Evaluation) {
    if e.selection_check.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Selection check (expected under the rule vs chosen)\n");
    let _ = writeln!(
        out,
        "Candidates binned by the probability their selection rule gives them; a sampler that \
         follows its rule chooses each bin's candidates about as often as expected."
    );
    for c in &e.selection_check {
        let _ = writeln!(out, "\n### {}, {}\n", cell(&c.role), cell(&c.rule));
        let _ =
            writeln!(out, "| expected probability | candidates | mean expected | share chosen | chosen |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: |");
        for b in &c.bins {
            let o = |x: Option<f64>| x.map_or_else(String::new, num);
            let _ = writeln!(
                out,
                "| [{:.1}, {:.1}{} | {} | {} | {} | {} |",
                b.lo,
                b.hi,
                if b.hi >= 1.0 { "]" } else { ")" },
                b.n,
                o(b.mean_expected),
                o(b.chosen_frequency),
                b.chosen
            );
        }
    }
}

/// The Markdown report of one run.
pub fn run_markdown(e: &Evaluation) -> String {
    let mut out = format!("# vsim evaluation: {}\n\n", cell(&e.label));
    header(&mut out, e);
    human_section(&mut out, e);
    let _ = writeln!(
        out,
        "\n## Metrics\n\nIntervals: {:.0}% percentile bootstrap, {} resamples, seed {} (simulated and human \
         samples resampled independently; pairs resampled as pairs).",
        e.bootstrap.confidence * 100.0,
        e.bootstrap.resamples,
        e.bootstrap.seed
    );
    metrics_table(&mut out, &metric_rows(e), &format!("{:.0}% CI", e.bootstrap.confidence * 100.0));
    selection_tables(&mut out, e);
    if !e.counts.errors.is_empty() {
        let _ = writeln!(out, "\n## Failed dialogues\n");
        for m in &e.counts.errors {
            let _ = writeln!(out, "- {}", cell(m));
        }
    }
    let _ = writeln!(out, "\nPlots and the dialogue browser are in `report.html`.");
    out
}

/// The Markdown report comparing runs.
pub(crate) fn comparison_markdown(c: &Comparison) -> String {
    let mut out = String::from("# vsim comparison\n\n");
    out.push_str(&super::headline::headline_markdown(&c.headlines()));
    for (i, e) in c.runs.iter().enumerate() {
        let _ = writeln!(out, "## Run {}: {}\n", i + 1, cell(&e.label));
        header(&mut out, e);
        let _ = writeln!(out);
    }
    if let Some(e) = c.runs.iter().find(|e| e.human.is_some()) {
        human_section(&mut out, e);
    }
    for n in &c.notes {
        let _ = writeln!(out, "\n> {}", cell(n));
    }
    let _ = writeln!(out, "\n## Metrics\n\nEach cell: estimate [{}% CI].", (c.confidence() * 100.0).round());
    let mut section = "";
    for row in &c.table {
        if row.section != section {
            section = &row.section;
            let _ = writeln!(out, "\n### {}\n", cell(section));
            let names: Vec<String> = c.runs.iter().map(|e| cell(&e.label)).collect();
            let _ = writeln!(out, "| metric | {} | human reference |", names.join(" | "));
            let _ = writeln!(out, "| --- |{} --- |", " ---: |".repeat(c.runs.len()));
        }
        let cells: Vec<String> = row.values.iter().map(|v| cell(v)).collect();
        let _ = writeln!(out, "| {} | {} | {} |", cell(&row.name), cells.join(" | "), cell(&row.human));
    }
    out
}

/// What an evaluation's outcomes are, in words.
pub(crate) fn measure_text(m: crate::dialogue::events::Measure) -> &'static str {
    match m {
        crate::dialogue::events::Measure::Answer => {
            "answers to the outcome questions, through each role's method and selection rule"
        }
        crate::dialogue::events::Measure::Stated => {
            "what each role stated in the dialogue (read by an extractor call)"
        }
    }
}

/// Renders a Markdown report as HTML (tables included). Raw HTML in the text is shown as
/// text, never passed through: a report quotes model output and file names.
pub(crate) fn to_html(markdown: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser};
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_becomes_html_with_tables_and_no_raw_html() {
        let html = super::to_html("# T\n\n| a | b |\n| --- | --- |\n| 1 | <script>x</script> |\n");
        assert!(
            html.contains("<h1>T</h1>") && html.contains("<table>") && html.contains("<td>1</td>"),
            "{html}"
        );
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"), "{html}");
    }
}
