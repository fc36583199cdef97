//! The run directory: the one contract every kind of run (dialogues, surveys, sweep cells,
//! branches, merges) writes and every reader (eval, report, export, branch, merge) reads.
//!
//! ```text
//! RUN_DIR/
//!   config.json        the manifest (typed, versioned; see [`Manifest`])
//!   transcripts.jsonl  every event of every attempt, appended one whole dialogue at a time
//!   outcomes.csv       one row per dialogue, rebuilt from the transcript
//!   .vsim.lock         held while a process writes here
//! ```

pub mod lock;
pub mod manifest;
pub mod outcomes;
pub mod tables;
pub mod transcript;

use std::path::{Path, PathBuf};

pub use lock::{LockError, RunLock};
pub use manifest::{
    BranchOrigin, InputChange, Manifest, PinError, PinnedInput, PopulationReference, RecordedOutcome,
    RoleModelName, RunKind, Shard, SurveyManifest, MANIFEST_VERSION,
};
pub use transcript::TranscriptError;

/// The manifest's file name.
pub const MANIFEST: &str = "config.json";
/// The transcript's file name.
pub const TRANSCRIPTS: &str = "transcripts.jsonl";
/// The outcome table's file name.
pub(crate) const OUTCOMES: &str = "outcomes.csv";

/// The files vsim writes in a run folder (the CLI's `run.log` and the evaluation's files
/// included): none may be a link, which a write would follow out of the folder.
pub(crate) const RUN_FILES: &[&str] = &[
    MANIFEST,
    TRANSCRIPTS,
    OUTCOMES,
    lock::LOCK_FILE,
    "run.log",
    "metrics.json",
    "report.md",
    "report.html",
    "stated",
];

/// A run folder, recognised by its manifest.
pub(crate) const RUN_FOLDER: crate::fsutil::FolderKind =
    crate::fsutil::FolderKind { what: "a vsim run folder", manifest: MANIFEST };

/// Why a run directory cannot be opened, created or resumed.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The directory has no readable `config.json`.
    #[error("{}: no readable {MANIFEST} ({reason}); is it a run directory?", dir.display())]
    NoManifest {
        /// The directory.
        dir: PathBuf,
        /// Why the manifest could not be read.
        reason: String,
    },
    /// The manifest was written by a newer vsim.
    #[error("{}: {MANIFEST} was written by a newer vsim (manifest version {found}; this one reads up to {MANIFEST_VERSION})", dir.display())]
    NewerManifest {
        /// The directory.
        dir: PathBuf,
        /// The manifest version found.
        found: u32,
    },
    /// The directory could not be locked.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The directory already holds a run, and resuming was not asked for.
    #[error("{} already holds a run; resume it, or write to another folder", .0.display())]
    Exists(PathBuf),
    /// Resuming was asked for, but the directory holds another experiment.
    #[error("cannot resume {}: its configuration differs ({field}); start a new run directory", dir.display())]
    Mismatch {
        /// The directory.
        dir: PathBuf,
        /// The first setting that differs.
        field: String,
    },
    /// The transcript could not be read.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
}

/// A run directory opened for writing: locked until dropped.
#[derive(Debug)]
pub(crate) struct WritableRun {
    /// The run directory.
    pub dir: PathBuf,
    /// `dir/transcripts.jsonl`.
    pub transcript: PathBuf,
    _lock: RunLock,
}

/// Claims `dir` for a workflow of `kind` (a tune, a survey sweep): refused unless empty or
/// of that kind, and, unless `resume`, unless its manifest is not there yet.
pub(crate) fn claim_workflow_dir(
    dir: &Path,
    kind: crate::fsutil::FolderKind,
    resume: bool,
) -> Result<(), RunDirError> {
    crate::fsutil::claim_dir(dir, kind)
        .map_err(|source| RunDirError::Io { path: dir.to_path_buf(), source })?;
    if !resume && dir.join(kind.manifest).exists() {
        return Err(RunDirError::Exists(dir.to_path_buf()));
    }
    Ok(())
}

/// Creates (or, with `resume`, reopens) the run directory `dir` for `manifest`: refuses a
/// folder that is neither empty nor a run folder, locks it, refuses to overwrite a run unless
/// resuming, refuses to resume another experiment, and writes the manifest.
pub(crate) fn open_for_writing(
    dir: &Path,
    manifest: &Manifest,
    resume: bool,
) -> Result<WritableRun, RunDirError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RunDirError::Io { path, source }
    };
    crate::fsutil::claim_dir(dir, RUN_FOLDER).map_err(io(dir))?;
    // Refused before any work, rather than when the first write would follow the link.
    for name in RUN_FILES {
        let path = dir.join(name);
        crate::fsutil::refuse_link(&path).map_err(io(&path))?;
    }
    let lock = RunLock::acquire(dir)?;
    let transcript = dir.join(TRANSCRIPTS);
    if std::fs::metadata(&transcript).map(|m| m.len() > 0).unwrap_or(false) {
        if !resume {
            return Err(RunDirError::Exists(dir.to_path_buf()));
        }
        if dir.join(MANIFEST).exists() {
            let old = read_manifest(dir)?;
            if let Some(field) = manifest.experiment_difference(&old, true) {
                return Err(RunDirError::Mismatch { dir: dir.to_path_buf(), field: field.to_string() });
            }
        }
    }
    write_manifest(dir, manifest)?;
    Ok(WritableRun { dir: dir.to_path_buf(), transcript, _lock: lock })
}

/// Reads `dir/config.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, RunDirError> {
    let path = dir.join(MANIFEST);
    let no = |reason: String| RunDirError::NoManifest { dir: dir.to_path_buf(), reason };
    let text = std::fs::read_to_string(&path).map_err(|e| no(e.to_string()))?;
    let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|e| no(e.to_string()))?;
    if value.get("manifest_version").is_none() {
        manifest::upgrade_unversioned(&mut value);
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| no(e.to_string()))?;
    if manifest.manifest_version > MANIFEST_VERSION {
        return Err(RunDirError::NewerManifest { dir: dir.to_path_buf(), found: manifest.manifest_version });
    }
    Ok(manifest)
}

/// Reads `dir/config.json` when there is one (a directory of bare transcripts has none).
pub fn read_manifest_if_any(dir: &Path) -> Result<Option<Manifest>, RunDirError> {
    if dir.join(MANIFEST).exists() {
        read_manifest(dir).map(Some)
    } else {
        Ok(None)
    }
}

/// Writes `dir/config.json` whole (a reader never sees half of it).
pub(crate) fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), RunDirError> {
    let path = dir.join(MANIFEST);
    let mut bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| RunDirError::Io { path: path.clone(), source: e.into() })?;
    bytes.push(b'\n');
    crate::fsutil::write_atomic(&path, &bytes).map_err(|source| RunDirError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_is_created_locked_and_resumed_only_as_the_same_experiment() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let m = Manifest::new(RunKind::Dialogue, 3, 1);
        let w = open_for_writing(&run, &m, false).unwrap();
        assert!(matches!(open_for_writing(&run, &m, true), Err(RunDirError::Lock(_))));
        std::fs::write(&w.transcript, "{}\n").unwrap();
        drop(w);
        assert!(matches!(open_for_writing(&run, &m, false), Err(RunDirError::Exists(_))));
        let mut other = m.clone();
        other.seed = 9;
        match open_for_writing(&run, &other, true) {
            Err(RunDirError::Mismatch { field, .. }) => assert_eq!(field, "seed"),
            x => panic!("expected a mismatch, got {x:?}"),
        }
        open_for_writing(&run, &m, true).unwrap();
        assert_eq!(read_manifest(&run).unwrap(), m);
    }
}
