//! The distance registry against both outputs of an evaluation: every entry reaches
//! `metrics.json` and a report row of its own, in Markdown and HTML. Kept here, above the
//! evaluation layer, because it reads the reports.

use std::collections::BTreeSet;

use crate::eval::metrics::Metric;
use crate::eval::registry::tests::{evaluation, outcome, run_and_human, CATEGORICAL_KEY, NUMERIC_KEY};
use crate::eval::registry::*;
use crate::eval::{evaluate, EvalOptions, Evaluation};

/// Checks one list against a container's JSON, its statistics and the report rows of its
/// section.
fn check(
    list: &[Entry],
    json: &serde_json::Value,
    fixed: &[&str],
    distances: Vec<(&'static str, &Metric)>,
    rows: &[&crate::report::MetricRow],
) {
    let keys: Vec<&str> = list.iter().map(|e| e.key).collect();
    assert!(!keys.is_empty());
    // metrics.json holds every entry under its key, and nothing else beside the fixed fields.
    let fields: BTreeSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = keys.iter().chain(fixed).copied().collect();
    assert_eq!(fields, expected);
    assert_eq!(distances.iter().map(|(k, _)| *k).collect::<Vec<_>>(), keys);
    for (key, m) in distances {
        assert!(m.estimate().is_some() && m.ci().is_some(), "{key} not computed: {m:?}");
    }
    // Every entry has a report row of its own, with a value.
    for e in list {
        let row = rows.iter().find(|r| r.name.starts_with(e.label));
        let row = row.unwrap_or_else(|| panic!("no report row for {}", e.key));
        assert_ne!(row.value, "n/a", "{}", e.key);
    }
    let labels: BTreeSet<&str> = list.iter().map(|e| e.label).collect();
    assert_eq!(labels.len(), list.len(), "labels are distinct");
    let seeds: BTreeSet<&str> = list.iter().map(|e| e.seed).collect();
    assert_eq!(seeds.len(), list.len(), "seed names are distinct");
}

#[tokio::test]
async fn every_entry_reaches_metrics_json_and_report_rows() {
    let e = evaluation().await;
    let json = serde_json::to_value(&e).unwrap();
    let rows = crate::report::metric_rows(&e);
    let section = |key: &str| -> Vec<&crate::report::MetricRow> {
        rows.iter().filter(|r| r.section == format!("Outcome {key}")).collect()
    };

    let numeric = e.numeric[0].comparison.as_ref().unwrap();
    check(
        NUMERIC_DISTANCES,
        &json["numeric"][0]["comparison"],
        &["counts", "bins", "outside_bins"],
        numeric.distances(),
        &section(NUMERIC_KEY),
    );
    let categorical = &e.categorical[0];
    check(
        CATEGORICAL_DISTANCES,
        &json["categorical"][0],
        &["key", "role", "name", "counts", "categories", "n_human"],
        categorical.distances(),
        &section(CATEGORICAL_KEY),
    );
    // metrics.json reads back as written.
    assert_eq!(serde_json::from_value::<Evaluation>(json).unwrap(), e);
    // And both reports show every entry.
    let markdown = crate::report::markdown::run_markdown(&e);
    let html = crate::report::html::run_html(&e, None, 0).unwrap();
    for entry in NUMERIC_DISTANCES.iter().chain(CATEGORICAL_DISTANCES) {
        assert!(markdown.contains(&crate::report::markdown::cell(entry.label)), "{}", entry.key);
        assert!(html.contains(&html_escaped(entry.label)), "{}", entry.key);
    }
}

/// Text as the HTML template escapes it.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

#[tokio::test]
async fn not_applicable_distances_say_why_in_metrics_and_rows() {
    let (mut run, human) = run_and_human();
    for d in &mut run.dialogues {
        d.outcomes.clear();
        d.outcomes.push(outcome(&d.id, "donation", serde_json::Value::Null));
    }
    let e = evaluate(&run, Some(&human), &EvalOptions::default(), None).await.unwrap();
    let c = e.numeric[0].comparison.as_ref().unwrap();
    for (key, m) in c.distances() {
        assert_eq!(m, &Metric::na("no simulated values"), "{key}");
    }
    let rows = crate::report::metric_rows(&e);
    for entry in NUMERIC_DISTANCES {
        let row = rows.iter().find(|r| r.name.starts_with(entry.label)).unwrap();
        assert_eq!(row.value, "n/a", "{}", entry.key);
        assert!(row.note.ends_with("no simulated values"), "{}: {}", entry.key, row.note);
    }
}
