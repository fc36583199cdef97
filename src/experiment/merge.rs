//! Joining run directories (typically the shards of one experiment run on several machines)
//! into one run directory that reads like an unsharded run.
//!
//! Directories are merged only when their configurations agree (scenario, population, n,
//! seed, models); dialogues present in more than one directory and dialogues missing from
//! all of them are reported, not silently dropped or invented. `outcomes.csv` is rebuilt
//! from the merged transcript.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::outcomes::{outcome_columns_from_config, write_outcomes_csv_with, OutcomeCounts};
use super::runner::dialogue_id;
use super::transcript::{completed_attempt, read_events, TranscriptError};
use crate::dialogue::Event;

/// Configuration fields that must agree between merged directories.
pub const MERGE_FIELDS: [&str; 6] = ["scenario", "population", "population_reference", "n", "seed", "models"];

/// What a merge produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MergeReport {
    pub out_dir: PathBuf,
    /// The experiment's number of dialogues.
    pub n: usize,
    /// Dialogues written to the merged transcript.
    pub dialogues: usize,
    /// Indices in `0..n` found in no directory.
    pub missing: Vec<usize>,
    /// Dialogue ids found in more than one directory, with the directories; the first
    /// directory holding a completed attempt was kept.
    pub duplicates: Vec<(String, Vec<PathBuf>)>,
    pub counts: OutcomeCounts,
}

/// Why directories could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    #[error("nothing to merge: give at least one run directory")]
    NoInputs,
    #[error("{}: no readable config.json ({reason}); is it a run directory?", dir.display())]
    NoConfig { dir: PathBuf, reason: String },
    #[error("{} does not match {}: `{field}` differs; only runs of the same experiment can be merged", dir.display(), first.display())]
    Mismatch { dir: PathBuf, first: PathBuf, field: String },
    #[error("{} already holds a run; choose an empty output directory", .0.display())]
    Exists(PathBuf),
}

fn read_config(dir: &Path) -> Result<Value, MergeError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| MergeError::NoConfig { dir: dir.to_path_buf(), reason: e.to_string() })?;
    serde_json::from_str(&text)
        .map_err(|e| MergeError::NoConfig { dir: dir.to_path_buf(), reason: e.to_string() })
}

/// Merges the run directories `inputs` into `out_dir` (which must not hold a run).
pub fn merge_runs(out_dir: &Path, inputs: &[PathBuf]) -> Result<MergeReport, MergeError> {
    let first_dir = inputs.first().ok_or(MergeError::NoInputs)?;
    let first = read_config(first_dir)?;
    for dir in &inputs[1..] {
        let config = read_config(dir)?;
        for field in MERGE_FIELDS {
            if config.get(field) != first.get(field) {
                return Err(MergeError::Mismatch {
                    dir: dir.clone(),
                    first: first_dir.clone(),
                    field: field.into(),
                });
            }
        }
    }
    let transcript_out = out_dir.join("transcripts.jsonl");
    if std::fs::metadata(&transcript_out).map(|m| m.len() > 0).unwrap_or(false) {
        return Err(MergeError::Exists(out_dir.to_path_buf()));
    }

    // For each dialogue: the directories holding it, and the events chosen.
    let mut seen: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut chosen: BTreeMap<String, (u64, Vec<Event>)> = BTreeMap::new();
    for dir in inputs {
        let path = dir.join("transcripts.jsonl");
        if !path.exists() {
            continue;
        }
        for (id, events) in read_events(&path)? {
            seen.entry(id.clone()).or_default().push(dir.clone());
            let index = events
                .iter()
                .find_map(|e| match e {
                    Event::Begin(b) => Some(b.index),
                    _ => None,
                })
                .unwrap_or(u64::MAX);
            let complete = completed_attempt(&events).is_some();
            match chosen.get(&id) {
                Some((_, kept)) if completed_attempt(kept).is_some() || !complete => {}
                _ => {
                    chosen.insert(id, (index, events));
                }
            }
        }
    }
    let n = first.get("n").and_then(Value::as_u64).unwrap_or(0) as usize;
    let missing: Vec<usize> = (0..n).filter(|i| !chosen.contains_key(&dialogue_id(*i))).collect();
    let duplicates: Vec<(String, Vec<PathBuf>)> =
        seen.into_iter().filter(|(_, dirs)| dirs.len() > 1).collect();

    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Io { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    let mut config = first.clone();
    if let Some(obj) = config.as_object_mut() {
        obj.remove("shard");
        obj.insert(
            "merged_from".into(),
            Value::Array(inputs.iter().map(|d| Value::String(d.display().to_string())).collect()),
        );
    }
    let config_path = out_dir.join("config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap_or_default())
        .map_err(io(&config_path))?;

    // Written to a temporary file and renamed, so the merged transcript appears whole.
    let mut ordered: Vec<(u64, String, Vec<Event>)> =
        chosen.into_iter().map(|(id, (i, evs))| (i, id, evs)).collect();
    ordered.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut tmp = tempfile::NamedTempFile::new_in(out_dir).map_err(io(out_dir))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        for (_, _, events) in &ordered {
            for e in events {
                serde_json::to_writer(&mut w, e).map_err(|e| io(&transcript_out)(e.into()))?;
                w.write_all(b"\n").map_err(io(&transcript_out))?;
            }
        }
        w.flush().map_err(io(&transcript_out))?;
    }
    tmp.as_file().sync_all().map_err(io(&transcript_out))?;
    tmp.persist(&transcript_out).map_err(|e| io(&transcript_out)(e.error))?;

    let events: BTreeMap<String, Vec<Event>> = ordered.into_iter().map(|(_, id, evs)| (id, evs)).collect();
    let columns = outcome_columns_from_config(&first);
    let counts = write_outcomes_csv_with(&out_dir.join("outcomes.csv"), &columns, &events)?;
    Ok(MergeReport {
        out_dir: out_dir.to_path_buf(),
        n,
        dialogues: events.len(),
        missing,
        duplicates,
        counts,
    })
}
