//! Embeddings for semantic diversity (see [`crate::embed::semantic_diversity`]: one minus
//! the mean pairwise cosine similarity of a role's utterances within one dialogue, negatives
//! counted as 0).
//!
//! Any [`Embedder`] serves: an OpenAI-compatible endpoint ([`OpenAiEmbedder`],
//! `--embedder openai:MODEL` or `openai:MODEL@BASE_URL`) or an offline model of
//! [`crate::embed`] (`minilm`, `dir:PATH`). They are defined in [`crate::embed`] and
//! re-exported here, where the evaluation uses them.

pub use crate::embed::{EmbedError, Embedder, OpenAiEmbedder};

/// Up to `max` of `texts` (non-empty ones), a seeded sample without replacement when there
/// are more, kept in their original order.
pub fn sample_texts(texts: &[String], max: usize, seed: u64) -> Vec<String> {
    let usable: Vec<&String> = texts.iter().filter(|t| !t.trim().is_empty()).collect();
    super::compute::sample_indices(usable.len(), max, seed).into_iter().map(|i| usable[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_seeded_ordered_and_skip_blank_texts() {
        let texts: Vec<String> =
            (0..50).map(|i| if i % 10 == 0 { " ".into() } else { format!("t{i}") }).collect();
        let a = sample_texts(&texts, 10, 3);
        assert_eq!(a, sample_texts(&texts, 10, 3));
        assert_ne!(a, sample_texts(&texts, 10, 4));
        assert_eq!(a.len(), 10);
        let pos: Vec<usize> = a.iter().map(|t| texts.iter().position(|x| x == t).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "original order kept");
        assert_eq!(sample_texts(&texts, 100, 3).len(), 45);
    }
}
