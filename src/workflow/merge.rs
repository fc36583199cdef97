//! Joining run directories (typically the shards of one experiment run on several machines)
//! into one run directory that reads like an unsharded run.
//!
//! Directories are merged only when their manifests describe the same experiment (kind,
//! scenario, population, n, seed, models, input digests); dialogues present in more than one directory and dialogues missing from
//! all of them are reported, not silently dropped or invented. `outcomes.csv` is rebuilt
//! from the merged transcript.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dialogue::Event;
use crate::rundir::outcomes::{write_outcomes_csv_with, OutcomeCounts};
use crate::rundir::transcript::{completed_attempt, read_events, TranscriptError};
use crate::rundir::{read_manifest, Manifest, RunDirError, RunLock};

/// What a merge produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MergeReport {
    /// The merged run directory.
    pub out_dir: PathBuf,
    /// The experiment's number of dialogues.
    pub n: usize,
    /// Dialogues written to the merged transcript.
    pub dialogues: usize,
    /// Indices in `0..n` found in no directory.
    pub missing: Vec<usize>,
    /// Dialogue ids completed more than once (in several directories, or twice in one
    /// transcript), with the directory of each completed copy (or of the one incomplete
    /// copy); the first directory holding a completed attempt was kept, and of its copies
    /// the latest.
    pub duplicates: Vec<(String, Vec<PathBuf>)>,
    /// Dialogue ids whose events have no `begin` (a hand-edited or damaged transcript), with
    /// their directory: left out of the merged run, so their indices count as missing.
    pub without_begin: Vec<(String, PathBuf)>,
    /// Dialogue and outcome counts of the merged run.
    pub counts: OutcomeCounts,
}

/// Why directories could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A transcript could not be read.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// No run directory was given.
    #[error("nothing to merge: give at least one run directory")]
    NoInputs,
    /// A run directory could not be read.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// Two directories hold runs of different experiments.
    #[error("{} does not match {}: `{field}` differs; only runs of the same experiment can be merged", dir.display(), first.display())]
    Mismatch {
        /// The directory that differs.
        dir: PathBuf,
        /// The first directory given, which the others must match.
        first: PathBuf,
        /// The first manifest field that differs.
        field: String,
    },
    /// The output directory already holds a run.
    #[error("{} already holds a run; choose an empty output directory", .0.display())]
    Exists(PathBuf),
}

/// Merges the run directories `inputs` into `out_dir` (which must not hold a run).
// Long on purpose: checks every shard against the others before anything is written, then writes the merged run: one order, one place.
pub fn merge_runs(out_dir: &Path, inputs: &[PathBuf]) -> Result<MergeReport, MergeError> {
    let first_dir = inputs.first().ok_or(MergeError::NoInputs)?;
    let first = read_manifest(first_dir)?;
    for dir in &inputs[1..] {
        let other = read_manifest(dir)?;
        if let Some(field) = first.experiment_difference(&other, false) {
            return Err(MergeError::Mismatch {
                dir: dir.clone(),
                first: first_dir.clone(),
                field: field.into(),
            });
        }
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MergeError::Io { path, source }
    };
    crate::fsutil::claim_dir(out_dir, crate::rundir::RUN_FOLDER).map_err(io(out_dir))?;
    let _lock = RunLock::acquire(out_dir).map_err(RunDirError::from)?;
    let transcript_out = out_dir.join(crate::rundir::TRANSCRIPTS);
    if std::fs::metadata(&transcript_out).map(|m| m.len() > 0).unwrap_or(false) {
        return Err(MergeError::Exists(out_dir.to_path_buf()));
    }

    // For each dialogue: the directories holding it, and the events chosen.
    let mut seen: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut chosen: BTreeMap<String, (u64, Vec<Event>)> = BTreeMap::new();
    let mut without_begin = Vec::new();
    for dir in inputs {
        let path = dir.join(crate::rundir::TRANSCRIPTS);
        if !path.exists() {
            continue;
        }
        for (id, events) in read_events(&path)? {
            if !events.iter().any(|e| matches!(e, Event::Begin(_))) {
                without_begin.push((id, dir.clone()));
                continue;
            }
            let copies = completed_attempts(&events).max(1);
            seen.entry(id.clone()).or_default().extend(std::iter::repeat_n(dir.clone(), copies));
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
    let n = first.n;
    let missing: Vec<usize> = (0..n).filter(|i| !chosen.contains_key(&first.unit_id(*i))).collect();
    let duplicates: Vec<(String, Vec<PathBuf>)> =
        seen.into_iter().filter(|(_, dirs)| dirs.len() > 1).collect();

    let merged = Manifest {
        shard: None,
        merged_from: inputs.iter().map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())).collect(),
        ..first.clone()
    };
    crate::rundir::write_manifest(out_dir, &merged)?;

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
    crate::fsutil::refuse_link(&transcript_out).map_err(io(&transcript_out))?;
    tmp.persist(&transcript_out).map_err(|e| io(&transcript_out)(e.error))?;

    let events: BTreeMap<String, Vec<Event>> = ordered.into_iter().map(|(_, id, evs)| (id, evs)).collect();
    let outcomes_path = out_dir.join(crate::rundir::OUTCOMES);
    let counts = match &first.survey {
        // A survey's table has its own columns (group, status, one per item).
        Some(survey) => crate::survey::run::write_answers_csv(&outcomes_path, &survey.items, &events)
            .map_err(|e| MergeError::Io { path: outcomes_path.clone(), source: std::io::Error::other(e) })?,
        None => write_outcomes_csv_with(&outcomes_path, &first.outcome_columns(), &events)?,
    };
    Ok(MergeReport {
        out_dir: out_dir.to_path_buf(),
        n,
        dialogues: events.len(),
        missing,
        duplicates,
        without_begin,
        counts,
    })
}

/// How many attempts of one dialogue's events ran from a `begin` to an `end`.
fn completed_attempts(events: &[Event]) -> usize {
    let (mut open, mut completed) = (false, 0);
    for e in events {
        match e {
            Event::Begin(_) => open = true,
            Event::End(_) if open => {
                completed += 1;
                open = false;
            }
            _ => {}
        }
    }
    completed
}
