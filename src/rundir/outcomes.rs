//! `outcomes.csv`: one row per dialogue, sorted by dialogue index, rebuilt from the
//! transcript so it always agrees with it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::dialogue::events::Event;
use crate::scenario::Scenario;

use super::transcript::{for_each_frame_event, TranscriptError};

/// Counts over a run's dialogues.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutcomeCounts {
    /// Dialogues in the transcript.
    pub dialogues: usize,
    /// Ended with at least one outcome value (or with no outcomes declared).
    pub completed: usize,
    /// Ended, but without a single outcome value: not counted as completed.
    pub unanswered: usize,
    /// Dialogues whose latest attempt did not end.
    pub failed: usize,
    /// Outcomes that could not be extracted (per `role.name`).
    pub missing: BTreeMap<String, usize>,
}

/// The outcome columns of a scenario: `role.name`, in the scenario's order.
pub(crate) fn outcome_columns(scenario: &Scenario) -> Vec<String> {
    let mut columns = Vec::new();
    for o in &scenario.outcomes {
        let key = format!("{}.{}", scenario.roles[o.role].id, o.name);
        columns.push(key.clone());
        if o.stated {
            columns.push(format!("{key}.stated"));
        }
    }
    columns
}

/// The one definition of a dialogue (or respondent) that ended unanswered: it was asked
/// outcome questions and not one outcome, of any measure, got a value. Takes whether each
/// outcome of the attempt has a value.
pub fn unanswered(values_present: impl IntoIterator<Item = bool>) -> bool {
    let mut asked = false;
    for present in values_present {
        if present {
            return false;
        }
        asked = true;
    }
    asked
}

/// Writes `outcomes.csv` with the given outcome `columns` (`role.name`).
pub(crate) fn write_outcomes_csv_with(
    path: &Path,
    columns: &[String],
    events: &BTreeMap<String, Vec<Event>>,
) -> Result<OutcomeCounts, TranscriptError> {
    let mut rows = Rows::default();
    events.values().flatten().for_each(|e| rows.add(e));
    rows.write(path, columns)
}

/// Writes `outcomes.csv` straight from a transcript file, reading it line by line (only one
/// small row per dialogue is held in memory).
pub(crate) fn write_outcomes_csv_from_transcript(
    path: &Path,
    columns: &[String],
    transcript: &Path,
) -> Result<OutcomeCounts, TranscriptError> {
    let mut rows = Rows::default();
    if transcript.exists() {
        for_each_frame_event(transcript, |e| rows.add(&e))?;
    }
    rows.write(path, columns)
}

/// What `outcomes.csv` needs of a dialogue's latest attempt.
#[derive(Default)]
struct Row {
    index: u64,
    seed: u64,
    population_id: String,
    /// `role.name` → value (`None`: missing).
    outcomes: Vec<(String, Option<serde_json::Value>)>,
    /// Set by the attempt's `end` event.
    end: Option<(usize, String, u64, u64)>,
}

/// Rows by dialogue id; `None` for a dialogue with events but no `begin`.
#[derive(Default)]
struct Rows(BTreeMap<String, Option<Row>>);

impl Rows {
    fn add(&mut self, e: &Event) {
        let slot = self.0.entry(e.dialogue().to_string()).or_default();
        match e {
            Event::Begin(b) => {
                *slot = Some(Row {
                    index: b.index,
                    seed: b.seed,
                    population_id: b.population_id.clone().unwrap_or_default(),
                    ..Row::default()
                })
            }
            Event::Outcome(o) => {
                if let Some(row) = slot {
                    // The stated measure has its own column, `role.name.stated`.
                    row.outcomes.push((o.column(), o.value.clone()));
                }
            }
            Event::End(end) => {
                if let Some(row) = slot {
                    let reason = serde_json::to_value(end.reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    row.end = Some((end.turns, reason, end.usage.prompt_tokens, end.usage.completion_tokens));
                }
            }
            Event::Turn(_) | Event::Error(_) => {}
        }
    }

    fn write(self, path: &Path, columns: &[String]) -> Result<OutcomeCounts, TranscriptError> {
        let io = |e: csv::Error| TranscriptError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        };
        let mut counts = OutcomeCounts::default();
        let mut rows: Vec<(u64, Vec<String>)> = Vec::new();
        for (id, row) in self.0 {
            counts.dialogues += 1;
            let Some(r) = row else { continue };
            let mut out = vec![id, r.index.to_string(), r.seed.to_string(), r.population_id];
            match r.end {
                Some((turns, reason, prompt, completion)) => {
                    let status = if !unanswered(r.outcomes.iter().map(|(_, v)| v.is_some())) {
                        counts.completed += 1;
                        "completed"
                    } else {
                        counts.unanswered += 1;
                        "unanswered"
                    };
                    let mut values: BTreeMap<String, String> = BTreeMap::new();
                    for (key, value) in r.outcomes {
                        let v = match value {
                            Some(serde_json::Value::String(s)) => s,
                            Some(v) => v.to_string(),
                            None => {
                                *counts.missing.entry(key.clone()).or_default() += 1;
                                String::new()
                            }
                        };
                        values.insert(key, v);
                    }
                    out.extend([status.to_string(), turns.to_string(), reason]);
                    out.extend(columns.iter().map(|c| values.get(c).cloned().unwrap_or_default()));
                    out.extend([prompt.to_string(), completion.to_string()]);
                }
                None => {
                    counts.failed += 1;
                    out.extend(["failed".to_string(), String::new(), String::new()]);
                    out.extend(columns.iter().map(|_| String::new()));
                    out.extend([String::new(), String::new()]);
                }
            }
            rows.push((r.index, out));
        }
        rows.sort_by_key(|(i, _)| *i);
        // Built in memory and replaced whole: a reader never sees half a table.
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> =
            ["dialogue", "index", "seed", "population_id", "status", "turns", "end_reason"]
                .map(String::from)
                .to_vec();
        header.extend(columns.iter().cloned());
        header.extend(["prompt_tokens".to_string(), "completion_tokens".to_string()]);
        w.write_record(&header).map_err(io)?;
        for (_, row) in rows {
            w.write_record(&row).map_err(io)?;
        }
        let bytes = w.into_inner().map_err(|e| TranscriptError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        crate::fsutil::write_atomic(path, &bytes)
            .map_err(|source| TranscriptError::Io { path: path.to_path_buf(), source })?;
        Ok(counts)
    }
}
