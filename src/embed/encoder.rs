//! The BERT encoder that sentence-transformers models such as all-MiniLM-L6-v2 run:
//! embeddings, then `num_hidden_layers` blocks of self-attention and feed-forward, each
//! followed by a residual LayerNorm (Hugging Face's `BertModel`, inference only).
//!
//! Written here on candle-nn's layers rather than taken from candle-transformers: that
//! crate compiles every model family it ships (over a hundred) to give us this one, which
//! made it the longest single step of a fresh build after llama.cpp. The weight names are
//! Hugging Face's, so any BERT checkpoint in safetensors loads.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// The fields of a BERT `config.json` the encoder needs (others are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct BertConfig {
    /// Word pieces in the vocabulary.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Transformer blocks.
    pub num_hidden_layers: usize,
    /// Attention heads per block (`hidden_size` must be a multiple).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    #[serde(default)]
    /// The feed-forward activation (`gelu` when absent).
    pub hidden_act: Activation,
    /// The longest input, in word pieces.
    pub max_position_embeddings: usize,
    /// Segment (token type) ids.
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    /// LayerNorm's epsilon (1e-12 when absent).
    pub layer_norm_eps: f64,
    #[serde(default)]
    /// The padding token's id (0 when absent).
    pub pad_token_id: usize,
    /// Only absolute position embeddings exist in BERT checkpoints sentence-transformers
    /// ships; relative ones are refused when the config is read.
    #[serde(default)]
    pub position_embedding_type: PositionEmbedding,
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

/// The feed-forward activation, named as Hugging Face names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Activation {
    /// The exact GELU (with erf), BERT's own.
    #[default]
    Gelu,
    /// The tanh approximation of GELU.
    #[serde(alias = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_approximate")]
    GeluTanh,
    /// max(0, x).
    Relu,
}

/// How positions enter the embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PositionEmbedding {
    /// A learned vector per position.
    #[default]
    Absolute,
}

struct Embeddings {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(vb: VarBuilder, c: &BertConfig) -> Result<Self> {
        Ok(Self {
            words: embedding(c.vocab_size, c.hidden_size, vb.pp("word_embeddings"))?,
            positions: embedding(c.max_position_embeddings, c.hidden_size, vb.pp("position_embeddings"))?,
            token_types: embedding(c.type_vocab_size, c.hidden_size, vb.pp("token_type_embeddings"))?,
            norm: layer_norm(c.hidden_size, c.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, ids: &Tensor, types: &Tensor) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?;
        let x = (self.words.forward(ids)? + self.token_types.forward(types)?)?
            .broadcast_add(&self.positions.forward(&positions)?)?;
        self.norm.forward(&x)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
    head_size: usize,
    activation: Activation,
}

impl Layer {
    fn load(vb: VarBuilder, c: &BertConfig) -> Result<Self> {
        let (h, attn) = (c.hidden_size, vb.pp("attention"));
        Ok(Self {
            query: linear(h, h, attn.pp("self").pp("query"))?,
            key: linear(h, h, attn.pp("self").pp("key"))?,
            value: linear(h, h, attn.pp("self").pp("value"))?,
            attention_out: linear(h, h, attn.pp("output").pp("dense"))?,
            attention_norm: layer_norm(h, c.layer_norm_eps, attn.pp("output").pp("LayerNorm"))?,
            intermediate: linear(h, c.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: linear(c.intermediate_size, h, vb.pp("output").pp("dense"))?,
            output_norm: layer_norm(h, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: c.num_attention_heads,
            head_size: h / c.num_attention_heads,
            activation: c.hidden_act,
        })
    }

    /// `(batch, len, hidden)` to `(batch, heads, len, head_size)`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, len, _) = x.dims3()?;
        x.reshape((b, len, self.heads, self.head_size))?.transpose(1, 2)?.contiguous()
    }

    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        let q = self.split_heads(&self.query.forward(x)?)?;
        let k = self.split_heads(&self.key.forward(x)?)?;
        let v = self.split_heads(&self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? / (self.head_size as f64).sqrt())?.broadcast_add(mask_bias)?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.flatten_from(D::Minus2)?;
        let attended = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&attended)?;
        let inner = match self.activation {
            Activation::Gelu => inner.gelu_erf()?,
            Activation::GeluTanh => inner.gelu()?,
            Activation::Relu => inner.relu()?,
        };
        self.output_norm.forward(&(self.output.forward(&inner)? + attended)?)
    }
}

/// A loaded BERT encoder.
pub(crate) struct BertEncoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl BertEncoder {
    /// Loads the weights under `vb`, with or without the `bert.` prefix that checkpoints
    /// saved from a task model carry.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        let vb =
            if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let embeddings = Embeddings::load(vb.pp("embeddings"), config)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { embeddings, layers })
    }

    /// The last hidden states, `(batch, len, hidden)`, of `ids` and `types` (`(batch, len)`,
    /// u32); `mask` (`(batch, len)`, 1 for a token, 0 for padding) keeps attention off the
    /// padding.
    pub(crate) fn forward(&self, ids: &Tensor, types: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let x = self.embeddings.forward(ids, types)?;
        // 0 where attended, the lowest f32 where masked, as Hugging Face's extended mask.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(1)?.unsqueeze(1)?;
        let mask_bias = ((mask.ones_like()? - &mask)? * f64::from(f32::MIN))?;
        self.layers.iter().try_fold(x, |x, layer| layer.forward(&x, &mask_bias))
    }
}
