//! The advisory lock on a run directory: one writing process at a time. The lock is the
//! operating system's (`flock` on Unix), so it goes away with the process that held it, and
//! a lock left behind by a killed process never blocks; the file records the holder's pid so
//! that a refused process can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a run directory.
pub(crate) const LOCK_FILE: &str = ".vsim.lock";

/// Why a run directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error("{} is in use by another vsim process (pid {pid}); wait for it to finish or stop it", dir.display())]
    Held {
        /// The run directory.
        dir: PathBuf,
        /// The holder's process id, as its lock file records it.
        pid: String,
    },
    /// The lock file could not be opened or locked.
    #[error("{}: cannot lock the run directory: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; dropping it releases the directory.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Locks `dir` (which must exist) for writing, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io { path: path.clone(), source };
        let mut file = crate::fsutil::open_no_follow(
            OpenOptions::new().create(true).truncate(false).read(true).write(true),
            &path,
        )
        .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let pid = if pid.is_empty() { "unknown".to_string() } else { pid.to_string() };
                return Err(LockError::Held { dir: dir.to_path_buf(), pid });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        // The host too: on storage shared by a cluster's nodes a pid alone names nobody.
        writeln!(file, "{} on {}", std::process::id(), hostname()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// This machine's name, as well as it can be found without a dependency.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_pid_and_a_released_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        match RunLock::acquire(dir.path()) {
            Err(LockError::Held { pid, .. }) => {
                assert!(pid.starts_with(&format!("{} on ", std::process::id())))
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
