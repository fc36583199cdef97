//! Embeddings for semantic diversity (see [`crate::embed::semantic_diversity`]: one minus
//! the mean pairwise cosine similarity of a role's utterances within one dialogue, negatives
//! counted as 0).
//!
//! Any [`Embedder`] serves: an OpenAI-compatible endpoint ([`OpenAiEmbedder`],
//! `--embedder openai:MODEL` or `openai:MODEL@BASE_URL`) or an offline model of
//! [`crate::embed`] (`minilm`, `dir:PATH`). They are defined in [`crate::embed`] and
//! re-exported here, where the evaluation uses them.

pub use crate::embed::{EmbedError, Embedder, OpenAiEmbedder};
