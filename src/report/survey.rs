//! Reports of evaluated surveys: one run as a self-contained HTML page beside its
//! `report.md` (`vsim eval`), and several runs side by side (`vsim report`): the
//! representativeness of every subgroup, mean total variation, missing answers and refusals,
//! with the answer distributions as bars, simulated beside human.

use std::fmt::Write as _;
use std::path::Path;

use super::svg::{bars, esc, run_color, HUMAN_COLOR};
use super::{write, ReportError, Written};
use crate::survey::eval::SurveyReport;

/// Bar charts drawn at most per page (one per item and subgroup), to bound its size.
const MAX_CHARTS: usize = 60;

/// Writes `report.html` of one evaluated survey into `dir` (its `report.md` is
/// [`SurveyReport::to_markdown`]); returns the path.
pub fn write_survey_html(dir: &Path, report: &SurveyReport) -> Result<std::path::PathBuf, ReportError> {
    write(dir.join("report.html"), &survey_html(report))
}

/// One evaluated survey as a self-contained HTML page: the Markdown report's tables, then
/// each item's answer distribution per subgroup, simulated beside human.
pub(crate) fn survey_html(report: &SurveyReport) -> String {
    let mut body = markdown_to_html(&report.to_markdown());
    body.push_str("<h2>Answer distributions</h2>\n<p class=\"note\">Shares over the substantive options (refusals left out), in the item's option order.</p>\n<div class=\"plots\">\n");
    for row in report.rows.iter().take(MAX_CHARTS) {
        let options = row.simulated.len().max(row.human.len());
        let categories: Vec<String> = (1..=options).map(|i| format!("option {i}")).collect();
        let series = vec![
            (format!("simulated (n = {})", row.n_simulated), run_color(0), row.simulated.clone()),
            ("human".to_string(), HUMAN_COLOR, row.human.clone()),
        ];
        body.push_str(&bars(&format!("{} · {}", row.item, row.group), &categories, &series));
        body.push('\n');
    }
    body.push_str("</div>\n");
    if report.rows.len() > MAX_CHARTS {
        let _ = writeln!(
            body,
            "<p class=\"note\">{} more item × subgroup distributions are in metrics.json.</p>",
            report.rows.len() - MAX_CHARTS
        );
    }
    page(&format!("Survey report: {}", report.survey), &body)
}

/// Several evaluated surveys side by side, as Markdown: one column per run.
pub(crate) fn survey_comparison_markdown(runs: &[(String, SurveyReport)]) -> String {
    let mut s = String::from("# Survey runs compared\n\n");
    let names: Vec<&str> = runs.iter().map(|(n, _)| n.as_str()).collect();
    let _ = writeln!(s, "| metric | {} |", names.join(" | "));
    let _ = writeln!(s, "| --- |{}", " --- |".repeat(runs.len()));
    let row = |s: &mut String, label: &str, cell: &dyn Fn(&SurveyReport) -> String| {
        let cells: Vec<String> = runs.iter().map(|(_, r)| cell(r)).collect();
        let _ = writeln!(s, "| {label} | {} |", cells.join(" | "));
    };
    let f3 = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.3}"));
    row(&mut s, "survey", &|r| r.survey.clone());
    row(&mut s, "subgroups by", &|r| r.attribute.clone());
    row(&mut s, "**overall representativeness**", &|r| format!("**{}**", f3(r.overall_representativeness)));
    let mut groups: Vec<&String> = runs.iter().flat_map(|(_, r)| r.representativeness.keys()).collect();
    groups.sort();
    groups.dedup();
    for g in &groups {
        row(&mut s, &format!("representativeness: {g}"), &|r| f3(r.representativeness.get(*g).copied()));
    }
    row(&mut s, "mean total variation", &|r| f3(r.mean_tv));
    row(&mut s, "missing answers", &|r| r.missing_answers.to_string());
    row(&mut s, "refusals: simulated / human", &|r| format!("{} / {}", r.refused_simulated, r.refused_human));
    row(&mut s, "item × subgroup comparisons", &|r| r.rows.len().to_string());
    s.push('\n');
    if let Some((_, first)) = runs.first() {
        let _ = writeln!(
            s,
            "Representativeness: 1 − W1 / (max − min of the ordinal values), mean over ordinal items; {}.",
            first.denominator_note()
        );
    }
    s
}

/// Several evaluated surveys side by side, as a self-contained HTML page.
pub(crate) fn survey_comparison_html(runs: &[(String, SurveyReport)]) -> String {
    let mut body = markdown_to_html(&survey_comparison_markdown(runs));
    let mut groups: Vec<String> =
        runs.iter().flat_map(|(_, r)| r.representativeness.keys().cloned()).collect();
    groups.sort();
    groups.dedup();
    let series: Vec<(String, &'static str, Vec<f64>)> = runs
        .iter()
        .enumerate()
        .map(|(i, (name, r))| {
            (
                name.clone(),
                run_color(i),
                groups.iter().map(|g| r.representativeness.get(g).copied().unwrap_or(0.0)).collect(),
            )
        })
        .collect();
    body.push_str("<div class=\"plots\">\n");
    body.push_str(&bars("Representativeness per subgroup", &groups, &series));
    body.push_str("\n</div>\n");
    page("Survey runs compared", &body)
}

/// Writes `report.md` and `report.html` comparing evaluated surveys into `out_dir`.
pub fn write_survey_comparison(
    out_dir: &Path,
    runs: &[(String, SurveyReport)],
) -> Result<Written, ReportError> {
    if runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    // Only into an empty folder or a comparison folder of its own, as every report.
    crate::fsutil::claim_dir(out_dir, super::COMPARISON_FOLDER)
        .map_err(|source| ReportError::Io { path: out_dir.to_path_buf(), source })?;
    let manifest = serde_json::json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "kind": "comparison",
        "runs": runs.iter().map(|(name, _)| name).collect::<Vec<_>>(),
    });
    super::write(out_dir.join(super::COMPARISON_MANIFEST), &format!("{manifest:#}\n"))?;
    Ok(Written {
        markdown: write(out_dir.join("report.md"), &survey_comparison_markdown(runs))?,
        html: write(out_dir.join("report.html"), &survey_comparison_html(runs))?,
    })
}

/// A page around `body`: inline CSS, nothing fetched (also the tune reports').
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<p class=\"note\">vsim {version}</p>\n{body}</main>\n</body>\n</html>\n",
        title = esc(title),
        version = env!("CARGO_PKG_VERSION"),
    )
}

const CSS: &str = "body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: #1d232b; } \
main { padding: 10px 28px 40px; max-width: 1240px; } h1 { font-size: 22px; } \
h2 { font-size: 18px; border-bottom: 1px solid #dde2e8; padding-bottom: 4px; margin-top: 28px; } \
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; } \
th, td { padding: 4px 10px; border-bottom: 1px solid #dde2e8; text-align: left; } \
thead th { background: #f6f8fa; } .note { color: #5b6571; } \
.plots { display: flex; flex-wrap: wrap; gap: 12px; } \
svg.plot { border: 1px solid #dde2e8; border-radius: 4px; max-width: 100%; height: auto; } \
svg .title { font: 600 13px system-ui, sans-serif; } svg .tick { font: 11px system-ui, sans-serif; fill: #555; } \
svg .axis { font: 12px system-ui, sans-serif; } svg .legend { font: 11.5px system-ui, sans-serif; }";

/// The Markdown the survey reports write, as HTML: headings, pipe tables (the row after the
/// header is the separator), `**bold**` and paragraphs; all text escaped.
fn markdown_to_html(md: &str) -> String {
    let mut out = String::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    let flush = |table: &mut Vec<Vec<String>>, out: &mut String| {
        if table.is_empty() {
            return;
        }
        out.push_str("<table>\n");
        for (i, cells) in table.iter().enumerate() {
            if i == 1 && cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) {
                continue;
            }
            let tag = if i == 0 { "th" } else { "td" };
            let row: String = cells.iter().map(|c| format!("<{tag}>{}</{tag}>", inline(c))).collect();
            let _ = writeln!(
                out,
                "{}<tr>{row}</tr>{}",
                if i == 0 { "<thead>" } else { "" },
                if i == 0 { "</thead>" } else { "" }
            );
        }
        out.push_str("</table>\n");
        table.clear();
    };
    for line in md.lines() {
        let t = line.trim();
        if let Some(inner) = t.strip_prefix('|') {
            let cells = inner.trim_end_matches('|').split('|').map(|c| c.trim().to_string()).collect();
            table.push(cells);
            continue;
        }
        flush(&mut table, &mut out);
        if t.is_empty() {
            continue;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && t[level..].starts_with(' ') {
            let _ = writeln!(out, "<h{level}>{}</h{level}>", inline(t[level..].trim()));
        } else {
            let _ = writeln!(out, "<p>{}</p>", inline(t));
        }
    }
    flush(&mut table, &mut out);
    out
}

/// One line of Markdown text as HTML: escaped, `**bold**` and `` `code` `` kept.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut bold = false;
    let mut code = false;
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**").filter(|_| !code) {
            out.push_str(if bold { "</b>" } else { "<b>" });
            bold = !bold;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('`') {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = r;
        } else {
            let n = rest
                .find(['*', '`'])
                .filter(|&n| n > 0)
                .unwrap_or_else(|| rest.chars().next().map_or(1, char::len_utf8));
            out.push_str(&esc(&rest[..n]));
            rest = &rest[n..];
        }
    }
    if code {
        out.push_str("</code>");
    }
    if bold {
        out.push_str("</b>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_and_emphasis_become_escaped_html() {
        let html =
            markdown_to_html("# A <b>\n\n| g | r |\n| --- | --- |\n| **all** | 0.5 & `x` |\nDone * here.");
        assert!(html.contains("<h1>A &lt;b&gt;</h1>"), "{html}");
        assert!(html.contains("<thead><tr><th>g</th><th>r</th></tr></thead>"), "{html}");
        assert!(html.contains("<td><b>all</b></td><td>0.5 &amp; <code>x</code></td>"), "{html}");
        assert!(!html.contains("---"), "{html}");
        assert!(html.contains("<p>Done * here.</p>"), "{html}");
    }
}
