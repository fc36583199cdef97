//! A sentence-transformers BERT model run in-process with candle: tokenize (truncating at
//! the model's `max_seq_length`), run BERT, mean-pool over the attention mask, L2-normalise
//! — the pipeline sentence-transformers runs for all-MiniLM-L6-v2.
//!
//! Texts are sorted by token count and embedded in batches (padded to the longest in each
//! batch), so padding stays small; matrix products use candle's CPU backend, which spreads
//! over all cores (`RAYON_NUM_THREADS` limits it).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{Tokenizer, TruncationParams};

use super::encoder::{BertConfig, BertEncoder};
use super::{EmbedError, EmbedSpec, Embedder};
use crate::model_store::{self, MINILM, SENTENCE_TRANSFORMERS_REQUIRED};
use crate::progress::Progress;

/// Texts per forward pass unless set with [`BertEmbedder::with_batch_size`].
pub(crate) const DEFAULT_BATCH_SIZE: usize = 32;
/// Sequence length when the folder has no `sentence_bert_config.json` (always capped by the
/// model's position embeddings).
const FALLBACK_MAX_SEQ_LEN: usize = 512;

struct Inner {
    model: BertEncoder,
    tokenizer: Tokenizer,
    dim: usize,
    max_seq_len: usize,
    pad_id: u32,
    tokenizer_path: PathBuf,
}

/// A loaded sentence-embedding model. Cheap to clone (the weights are shared).
#[derive(Clone)]
pub struct BertEmbedder {
    inner: Arc<Inner>,
    id: String,
    batch_size: usize,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("id", &self.id)
            .field("dim", &self.inner.dim)
            .field("max_seq_len", &self.inner.max_seq_len)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl BertEmbedder {
    /// The default model, all-MiniLM-L6-v2, from the cache; fetched first when missing
    /// (reporting to `progress`).
    pub fn minilm(progress: &Progress) -> Result<Self, EmbedError> {
        let dir = model_store::ensure(&MINILM, progress)?;
        Self::load(&dir, "minilm").map_err(|e| damaged_cache_hint(e, &dir))
    }

    /// The model named by `spec` (see [`BertEmbedder::minilm`] and [`BertEmbedder::load`]);
    /// its id is the spec as written by `Display` (`minilm`, `dir:PATH`).
    pub fn open(spec: &EmbedSpec, progress: &Progress) -> Result<Self, EmbedError> {
        match spec {
            EmbedSpec::MiniLm => Self::minilm(progress),
            EmbedSpec::Dir(dir) => Self::load(dir, spec.to_string()),
        }
    }

    /// Loads a sentence-transformers model folder (BERT with mean pooling): `config.json`,
    /// `tokenizer.json` and `model.safetensors`, plus `sentence_bert_config.json` and
    /// `1_Pooling/config.json` when present. `id` names it in reports.
    pub fn load(dir: &Path, id: impl Into<String>) -> Result<Self, EmbedError> {
        model_store::check_model_dir(dir, SENTENCE_TRANSFORMERS_REQUIRED)?;
        let config_path = dir.join("config.json");
        let config = read_config(&config_path)?;
        check_pooling(dir)?;
        let max_seq_len = read_max_seq_len(dir)?.min(config.max_position_embeddings);
        if max_seq_len < 4 {
            return Err(EmbedError::BadModel {
                path: config_path,
                reason: format!("a maximum sequence length of {max_seq_len} tokens is too short"),
            });
        }

        let tok_path = dir.join("tokenizer.json");
        let tok_err = |reason: String| EmbedError::Tokenizer { path: tok_path.clone(), reason };
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| tok_err(e.to_string()))?;
        // The shipped tokenizer.json pads and truncates to 128; sentence-transformers
        // truncates at max_seq_length instead and pads per batch (done here by hand).
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_seq_len, ..Default::default() }))
            .map_err(|e| tok_err(e.to_string()))?;
        tokenizer.with_padding(None);
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > config.vocab_size {
            return Err(tok_err(format!(
                "it has {vocab} tokens but the model only {}; tokenizer.json belongs to another model",
                config.vocab_size
            )));
        }

        let weights = dir.join("model.safetensors");
        let bad_weights = |reason: String| EmbedError::BadModel { path: weights.clone(), reason };
        let data = fs::read(&weights).map_err(|source| EmbedError::Io {
            action: "read",
            path: weights.clone(),
            source,
        })?;
        let vb = VarBuilder::from_buffered_safetensors(data, DType::F32, &Device::Cpu)
            .map_err(|e| bad_weights(format!("not a usable safetensors file ({e})")))?;
        let model = BertEncoder::load(vb, &config)
            .map_err(|e| bad_weights(format!("does not match config.json ({e})")))?;
        let pad_id = u32::try_from(config.pad_token_id).ok().filter(|&p| (p as usize) < config.vocab_size);
        Ok(Self {
            inner: Arc::new(Inner {
                model,
                tokenizer,
                dim: config.hidden_size,
                max_seq_len,
                pad_id: pad_id.unwrap_or(0),
                tokenizer_path: tok_path.clone(),
            }),
            id: id.into(),
            batch_size: DEFAULT_BATCH_SIZE,
        })
    }

    /// Texts per forward pass (at least 1). Larger batches use the cores better, up to the
    /// point where padding to the longest text in a batch costs more than it saves.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The embedding dimension (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.inner.dim
    }

    /// The longest input in word pieces, special tokens included; longer texts are cut.
    pub fn max_seq_len(&self) -> usize {
        self.inner.max_seq_len
    }

    /// Embeds `texts` on the calling thread (one unit-length vector per text, in order).
    /// For synchronous callers; async code should use [`Embedder::embed`].
    pub fn embed_blocking<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings =
            self.inner.tokenizer.encode_batch(inputs, true).map_err(|e| EmbedError::Tokenizer {
                path: self.inner.tokenizer_path.clone(),
                reason: format!("could not tokenize: {e}"),
            })?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
        let mut out = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<(&[u32], &[u32])> =
                chunk.iter().map(|&i| (encodings[i].get_ids(), encodings[i].get_type_ids())).collect();
            let vectors = self.forward(&batch).map_err(|e| EmbedError::Compute(e.to_string()))?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One padded batch through BERT, then masked mean pooling and L2 normalisation.
    fn forward(&self, batch: &[(&[u32], &[u32])]) -> candle_core::Result<Vec<Vec<f32>>> {
        let inner = &*self.inner;
        let len = batch.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0).max(1);
        let n = batch.len();
        let mut ids = vec![inner.pad_id; n * len];
        let mut types = vec![0u32; n * len];
        let mut mask = vec![0u32; n * len];
        for (row, (tok, ty)) in batch.iter().enumerate() {
            let at = row * len;
            ids[at..at + tok.len()].copy_from_slice(tok);
            for (k, t) in ty.iter().take(tok.len()).enumerate() {
                types[at + k] = *t;
            }
            mask[at..at + tok.len()].fill(1);
        }
        let device = Device::Cpu;
        let ids_t = Tensor::from_vec(ids, (n, len), &device)?;
        let types_t = Tensor::from_vec(types, (n, len), &device)?;
        let mask_t = Tensor::from_vec(mask.clone(), (n, len), &device)?;
        let hidden = inner.model.forward(&ids_t, &types_t, &mask_t)?.to_vec3::<f32>()?;
        Ok(hidden
            .iter()
            .enumerate()
            .map(|(row, tokens)| {
                let mut pooled = vec![0f32; inner.dim];
                let mut count = 0f32;
                for (k, h) in tokens.iter().enumerate() {
                    if mask[row * len + k] == 1 {
                        count += 1.0;
                        for (p, x) in pooled.iter_mut().zip(h) {
                            *p += x;
                        }
                    }
                }
                let count = count.max(1e-9);
                pooled.iter_mut().for_each(|p| *p /= count);
                let norm = pooled.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                pooled.iter_mut().for_each(|p| *p /= norm);
                pooled
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Embedder for BertEmbedder {
    fn id(&self) -> String {
        self.id.clone()
    }

    /// Runs on tokio's blocking pool when called on a runtime, else on the calling thread.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let this = self.clone();
                let texts = texts.to_vec();
                handle
                    .spawn_blocking(move || this.embed_blocking(&texts))
                    .await
                    .map_err(|e| EmbedError::Compute(format!("the embedding task failed: {e}")))?
            }
            Err(_) => self.embed_blocking(texts),
        }
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, EmbedError> {
    let text = fs::read_to_string(path).map_err(|source| EmbedError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| EmbedError::BadModel { path: path.to_path_buf(), reason: format!("invalid JSON: {e}") })
}

fn read_config(path: &Path) -> Result<BertConfig, EmbedError> {
    let value = read_json(path)?;
    let bad = |reason: String| EmbedError::BadModel { path: path.to_path_buf(), reason };
    if let Some(kind) = value.get("model_type").and_then(|v| v.as_str()) {
        if kind != "bert" {
            return Err(bad(format!("model_type is `{kind}`, but only BERT models are supported")));
        }
    }
    let config: BertConfig =
        serde_json::from_value(value).map_err(|e| bad(format!("not a BERT config: {e}")))?;
    if config.hidden_size == 0
        || config.num_attention_heads == 0
        || !config.hidden_size.is_multiple_of(config.num_attention_heads)
        || config.vocab_size == 0
        || config.type_vocab_size == 0
    {
        return Err(bad("implausible sizes (hidden_size, num_attention_heads, vocab_size)".into()));
    }
    Ok(config)
}

/// `max_seq_length` from `sentence_bert_config.json`, else the fallback.
fn read_max_seq_len(dir: &Path) -> Result<usize, EmbedError> {
    let path = dir.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok(FALLBACK_MAX_SEQ_LEN);
    }
    let value = read_json(&path)?;
    match value.get("max_seq_length") {
        None | Some(serde_json::Value::Null) => Ok(FALLBACK_MAX_SEQ_LEN),
        Some(v) => v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| EmbedError::BadModel {
            path,
            reason: format!("max_seq_length must be a positive integer, got {v}"),
        }),
    }
}

/// Accepts a folder whose pooling is plain mean pooling (or that has no pooling config).
fn check_pooling(dir: &Path) -> Result<(), EmbedError> {
    let path = dir.join("1_Pooling").join("config.json");
    if !path.is_file() {
        return Ok(());
    }
    let value = read_json(&path)?;
    let modes: Vec<(&str, bool)> = value
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("pooling_mode_").map(|m| (m, v.as_bool().unwrap_or(false)))
                })
                .collect()
        })
        .unwrap_or_default();
    let on: Vec<&str> = modes.iter().filter(|(_, on)| *on).map(|(m, _)| *m).collect();
    if on == ["mean_tokens"] {
        Ok(())
    } else {
        Err(EmbedError::BadModel {
            path,
            reason: format!(
                "pooling {} is not supported; only mean pooling (pooling_mode_mean_tokens) is",
                if on.is_empty() { "(none)".to_string() } else { on.join(" + ") }
            ),
        })
    }
}

/// Adds to a load error of the cached default model how to repair the cache.
fn damaged_cache_hint(e: EmbedError, dir: &Path) -> EmbedError {
    let hint = |reason: String| {
        format!(
            "{reason}; the cached model seems damaged: delete {} and run `vsim model fetch embed`",
            dir.display()
        )
    };
    match e {
        EmbedError::BadModel { path, reason } => EmbedError::BadModel { path, reason: hint(reason) },
        EmbedError::Tokenizer { path, reason } => EmbedError::Tokenizer { path, reason: hint(reason) },
        other => other,
    }
}
