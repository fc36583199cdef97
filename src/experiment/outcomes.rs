//! `outcomes.csv`: one row per dialogue, sorted by dialogue index, rebuilt from the
//! transcript so it always agrees with it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::dialogue::events::Event;
use crate::scenario::Scenario;

use super::transcript::{completed_attempt, TranscriptError};

/// Counts over a run's dialogues.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutcomeCounts {
    pub dialogues: usize,
    pub completed: usize,
    pub failed: usize,
    /// Outcomes that could not be extracted (per `role.name`).
    pub missing: BTreeMap<String, usize>,
}

/// The outcome columns of a scenario: `role.name`, in the scenario's order.
pub fn outcome_columns(scenario: &Scenario) -> Vec<String> {
    scenario.outcomes.iter().map(|o| format!("{}.{}", scenario.roles[o.role].id, o.name)).collect()
}

/// The outcome columns recorded in a run's `config.json` (its resolved scenario).
pub fn outcome_columns_from_config(config: &serde_json::Value) -> Vec<String> {
    config
        .pointer("/scenario/outcomes")
        .and_then(|o| o.as_array())
        .map(|list| {
            list.iter()
                .map(|o| {
                    let s = |k: &str| o.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                    format!("{}.{}", s("role"), s("name"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `outcomes.csv` from the grouped transcript events and returns the counts.
pub fn write_outcomes_csv(
    path: &Path,
    scenario: &Scenario,
    events: &BTreeMap<String, Vec<Event>>,
) -> Result<OutcomeCounts, TranscriptError> {
    write_outcomes_csv_with(path, &outcome_columns(scenario), events)
}

/// Writes `outcomes.csv` with the given outcome `columns` (`role.name`).
pub fn write_outcomes_csv_with(
    path: &Path,
    columns: &[String],
    events: &BTreeMap<String, Vec<Event>>,
) -> Result<OutcomeCounts, TranscriptError> {
    let io =
        |e: csv::Error| TranscriptError::Io { path: path.to_path_buf(), source: std::io::Error::other(e) };
    let columns = columns.to_vec();
    let mut rows: Vec<(u64, Vec<String>)> = Vec::new();
    let mut counts = OutcomeCounts::default();
    for (id, evs) in events {
        counts.dialogues += 1;
        let begin = evs.iter().rev().find_map(|e| match e {
            Event::Begin(b) => Some(b),
            _ => None,
        });
        let Some(begin) = begin else { continue };
        let mut row = vec![
            id.clone(),
            begin.index.to_string(),
            begin.seed.to_string(),
            begin.population_id.clone().unwrap_or_default(),
        ];
        match completed_attempt(evs) {
            Some(attempt) => {
                counts.completed += 1;
                let mut values: BTreeMap<String, String> = BTreeMap::new();
                let (mut turns, mut reason, mut prompt, mut completion) = (0, String::new(), 0, 0);
                for e in attempt {
                    match e {
                        Event::Outcome(o) => {
                            let key = format!("{}.{}", o.role, o.name);
                            let v = match &o.value {
                                Some(serde_json::Value::String(s)) => s.clone(),
                                Some(v) => v.to_string(),
                                None => {
                                    *counts.missing.entry(key.clone()).or_default() += 1;
                                    String::new()
                                }
                            };
                            values.insert(key, v);
                        }
                        Event::End(end) => {
                            turns = end.turns;
                            reason = serde_json::to_value(end.reason)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default();
                            prompt = end.usage.prompt_tokens;
                            completion = end.usage.completion_tokens;
                        }
                        _ => {}
                    }
                }
                row.extend(["completed".to_string(), turns.to_string(), reason]);
                row.extend(columns.iter().map(|c| values.get(c).cloned().unwrap_or_default()));
                row.extend([prompt.to_string(), completion.to_string()]);
            }
            None => {
                counts.failed += 1;
                row.extend(["failed".to_string(), String::new(), String::new()]);
                row.extend(columns.iter().map(|_| String::new()));
                row.extend([String::new(), String::new()]);
            }
        }
        rows.push((begin.index, row));
    }
    rows.sort_by_key(|(i, _)| *i);
    let mut w = csv::Writer::from_path(path).map_err(io)?;
    let mut header: Vec<String> =
        ["dialogue", "index", "seed", "population_id", "status", "turns", "end_reason"]
            .map(String::from)
            .to_vec();
    header.extend(columns);
    header.extend(["prompt_tokens".to_string(), "completion_tokens".to_string()]);
    w.write_record(&header).map_err(io)?;
    for (_, row) in rows {
        w.write_record(&row).map_err(io)?;
    }
    w.flush().map_err(|e| TranscriptError::Io { path: path.to_path_buf(), source: e })?;
    Ok(counts)
}
