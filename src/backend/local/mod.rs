//! The embedded llama.cpp backend: a GGUF model run in-process, so vsim works offline with
//! no server and no key.
//!
//! - Generation runs on long-lived compute threads (see `backend::compute_threads`) behind a
//!   semaphore; dropping the future cancels the work between tokens.
//! - Prompts are formatted with the model's own chat template (from the GGUF metadata).
//! - Sampling is seeded: the same seed and prompt give the same reply (a request without a
//!   seed gets a random one); temperature 0 is greedy.
//! - Constrained output uses the request's JSON schema as a GBNF grammar
//!   ([`gbnf_from_schema`]), applied the way
//!   llama.cpp's own sampler does it: sample freely, and only when the grammar rejects that
//!   token apply the grammar to the whole vocabulary and resample. Most tokens of a JSON
//!   reply are accepted on the first try, so this costs less than filtering all 49k
//!   candidates on every step.
//! - A small pool of contexts ("slots") keeps each one's evaluated tokens; a request goes to
//!   the slot sharing the longest token prefix with its prompt and only the rest is
//!   evaluated, so an agent's successive turns in a dialogue cost time linear in the new text.
//!
//! Reuse does not change replies. llama.cpp's CPU attention takes different code paths, with
//! different rounding, for batches narrower than 64 tokens, for batches of 64 or more (its
//! tiled flash attention) and for single tokens over a long cache (split-KV), and a model this
//! small turns such differences into different text. Within the tiled path a token's result
//! does not depend on which batch it is in. So prompts are evaluated in batches of 64 to
//! `n_batch` tokens: a request that reuses a cached prefix evaluates at least its last 64
//! prompt tokens again; only tokens evaluated in such wide batches as part of a prompt are
//! reused, not a prompt shorter than 64 tokens and not a slot's own generated reply (the next
//! turn evaluates it again as prompt). The cached state is then bit-identical to evaluating
//! the prompt from scratch, and the reply to a seeded request does not depend on what ran
//! before it. Wide batches are also the fast ones: prompt evaluation runs at the speed of
//! llama.cpp's own server.
//!
//! Loaded models stay in memory for the life of the process (contexts borrow them), and
//! loading the same file again reuses the loaded weights.
//!
//! One generation runs in three stages, each its own function in the `generate` module:
//! prefix reuse (picking a slot and keeping its cached prefix), prompt evaluation (the rest of
//! the prompt in wide batches) and decoding (sampling the reply token by token).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::Semaphore;

mod batched;
mod generate;

use super::compute_threads;
use super::grammar::gbnf_from_schema;
use super::{BackendError, ChatModel, ChatRequest, ChatResponse, Role};

/// Sent as the system message when a request has none: SmolLM2's template would otherwise
/// add its own ("You are a helpful AI assistant named SmolLM...").
pub(crate) const DEFAULT_SYSTEM_PROMPT: &str = "You are a helpful assistant.";

/// Settings for [`LocalModel::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct LocalConfig {
    /// CPU threads per generation (default: all available cores).
    pub threads: usize,
    /// Context length in tokens; `None` = 4096, or the model's training length if smaller.
    pub n_ctx: Option<u32>,
    /// Reply length when the request does not set `max_tokens`.
    pub max_tokens: u32,
    /// Number of cached contexts kept for prefix reuse.
    pub slots: usize,
    /// Generations run at once (at most `slots`). Each one already uses `threads` threads,
    /// so more than one helps only with cores to spare.
    pub max_concurrency: usize,
    /// Temperature when the request does not set one.
    pub temperature: f32,
    /// Min-p filter (drop tokens below `min_p` x the top token's probability); 0 = off.
    pub min_p: f32,
    /// Top-k filter applied before sampling; 0 = off.
    pub top_k: u32,
    /// Reuse evaluated prompt prefixes across requests (off only for measurements).
    pub prefix_reuse: bool,
    /// Most tokens per prompt-evaluation batch (at least 128; default 512, as llama.cpp's
    /// server). Batches are split evenly, so none is narrower than 64 tokens unless the
    /// whole prompt is (see the module docs). Each slot's context keeps compute buffers
    /// sized by it: ~107 MB at 512 for the default model, more for bigger models.
    pub n_batch: u32,
    /// Apply the output grammar to every candidate on every step instead of only when the
    /// freely sampled token breaks it (slower; for measurements).
    pub grammar_first: bool,
    /// Requests decoded together in one shared context (continuous batching, see the
    /// `batched` module); 1 keeps the sequential, bit-exact path. The shared context holds
    /// `n_ctx` tokens per sequence.
    pub sequences: usize,
    /// Layers offloaded to the GPU: all of them in a build with the `cuda` feature, none
    /// otherwise (a CPU build ignores it).
    pub gpu_layers: u32,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(4),
            n_ctx: None,
            max_tokens: 512,
            slots: 4,
            max_concurrency: 1,
            temperature: 0.8,
            min_p: 0.05,
            top_k: 40,
            prefix_reuse: true,
            n_batch: 512,
            grammar_first: false,
            sequences: 1,
            gpu_layers: if cfg!(feature = "cuda") { u32::MAX } else { 0 },
        }
    }
}

/// Counters over the life of a [`LocalModel`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalStats {
    /// Generations started.
    pub requests: u64,
    /// Prompt tokens of all requests.
    pub prompt_tokens: u64,
    /// Prompt tokens actually run through the model.
    pub prompt_tokens_evaluated: u64,
    /// Prompt tokens whose cached state was reused instead.
    pub prompt_tokens_reused: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Steps where the freely sampled token broke the grammar and was resampled.
    pub grammar_resamples: u64,
    /// Generations abandoned because their request was dropped.
    pub cancelled: u64,
}

/// What one generation cost, for measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GenerationReport {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Prompt tokens actually run through the model.
    pub prompt_tokens_evaluated: u64,
    /// Prompt tokens whose cached state was reused instead.
    pub prompt_tokens_reused: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Steps where the freely sampled token broke the grammar and was resampled.
    pub grammar_resamples: u64,
    /// Fingerprint of the bits of the logits the reply starts from: equal digests mean the
    /// prompt's evaluated state was bit-identical (used to check that reuse changes nothing).
    pub prompt_logits_digest: u64,
    /// Time spent evaluating the prompt.
    pub prompt_eval: Duration,
    /// From the start of the blocking work to the first sampled token.
    pub time_to_first_token: Duration,
    /// Time spent sampling and evaluating the reply.
    pub generation: Duration,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    prompt_tokens: AtomicU64,
    prompt_tokens_evaluated: AtomicU64,
    prompt_tokens_reused: AtomicU64,
    completion_tokens: AtomicU64,
    grammar_resamples: AtomicU64,
    cancelled: AtomicU64,
}

/// One cached context and the tokens its KV cache holds (sequence 0, positions 0..len).
struct Slot {
    ctx: Option<LlamaContext<'static>>,
    tokens: Vec<LlamaToken>,
    /// How many leading `tokens` were evaluated as prompt (the rest was generated); only
    /// these are reused, see the module docs.
    reusable: usize,
    last_used: u64,
}

struct Inner {
    model: &'static LlamaModel,
    backend: &'static LlamaBackend,
    id: String,
    config: LocalConfig,
    n_ctx: u32,
    n_batch: u32,
    template: LlamaChatTemplate,
    slots: Mutex<Vec<Option<Slot>>>,
    clock: AtomicU64,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    embed_ctx: Mutex<Option<LlamaContext<'static>>>,
    /// The continuous-batching scheduler, when `config.sequences > 1`.
    batcher: Option<batched::Batcher>,
}

/// A GGUF model run in-process by llama.cpp. Cheap to clone (shared state).
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("id", &self.inner.id)
            .field("n_ctx", &self.inner.n_ctx)
            .field("config", &self.inner.config)
            .finish()
    }
}

fn local_err(msg: impl Into<String>) -> BackendError {
    BackendError::Local(msg.into())
}

/// The process-wide llama.cpp backend; llama.cpp may be initialised only once.
fn backend() -> Result<&'static LlamaBackend, BackendError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every load step to stderr; keep it quiet unless asked for.
            let verbose = std::env::var_os("VSIM_LLAMA_LOG").is_some_and(|v| !v.is_empty());
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(verbose));
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| local_err(format!("could not initialise llama.cpp: {e}")))
}

/// Models loaded so far, by canonical path; each is loaded once and kept for the process.
fn loaded_models() -> &'static Mutex<HashMap<PathBuf, &'static LlamaModel>> {
    static MODELS: OnceLock<Mutex<HashMap<PathBuf, &'static LlamaModel>>> = OnceLock::new();
    MODELS.get_or_init(Default::default)
}

/// How a model file is loaded: with `gpu_layers` offloaded (llama.cpp caps it at the
/// model's layer count).
fn model_params(config: &LocalConfig) -> LlamaModelParams {
    LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers)
}

/// llama.cpp may adjust model fields while creating a context, so contexts are created one
/// at a time.
fn context_creation_lock() -> &'static Mutex<()> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LocalModel {
    /// Loads a GGUF model. Fails with a message that says what to do when the file is
    /// missing, not a GGUF, or rejected by llama.cpp.
    pub fn load(path: &Path, config: LocalConfig) -> Result<LocalModel, BackendError> {
        if !path.exists() {
            return Err(local_err(format!(
                "model file {} does not exist; run `vsim model fetch` for the default model or \
                 pass the path of a .gguf file",
                path.display()
            )));
        }
        crate::model_store::check_gguf_header(path).map_err(|e| local_err(e.to_string()))?;
        let backend = backend()?;
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let model = {
            let mut models = lock(loaded_models());
            match models.get(&canonical) {
                Some(m) => *m,
                None => {
                    let loaded = LlamaModel::load_from_file(backend, &canonical, &model_params(&config))
                        .map_err(|e| {
                            local_err(format!(
                                "llama.cpp could not load {} ({e}); the file is corrupt or not \
                                     a supported model: fetch it again with `vsim model fetch` or \
                                     point at another .gguf",
                                path.display()
                            ))
                        })?;
                    let leaked: &'static LlamaModel = Box::leak(Box::new(loaded));
                    models.insert(canonical.clone(), leaked);
                    leaked
                }
            }
        };

        let train = model.n_ctx_train();
        let default_ctx = if train == 0 { 4096 } else { train.min(4096) };
        let n_ctx = config.n_ctx.filter(|&n| n > 0).unwrap_or(default_ctx).max(64);
        let n_batch = config.n_batch.clamp(2 * WIDE_BATCH as u32, 4096).min(n_ctx);
        let template = model
            .chat_template(None)
            .or_else(|_| LlamaChatTemplate::new("chatml"))
            .map_err(|e| local_err(format!("chat template: {e}")))?;
        let mut config = config;
        config.threads = config.threads.max(1);
        config.slots = config.slots.max(1);
        config.max_concurrency = config.max_concurrency.clamp(1, config.slots);
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        config.sequences = config.sequences.clamp(1, 64);
        // Batched replies depend on what shares the batch, so the response cache keeps them
        // apart from the sequential path's, whose replies are a function of the request.
        let mode = if config.sequences > 1 { "+batched" } else { "" };
        let id = format!("local:{}{mode}", file_name.unwrap_or_else(|| path.display().to_string()));
        let permits = Arc::new(Semaphore::new(config.max_concurrency));
        let slots = (0..config.slots)
            .map(|_| Some(Slot { ctx: None, tokens: Vec::new(), reusable: 0, last_used: 0 }))
            .collect();
        let mut inner = Inner {
            model,
            backend,
            id,
            config,
            n_ctx,
            n_batch,
            template,
            slots: Mutex::new(slots),
            clock: AtomicU64::new(0),
            permits,
            counters: Arc::new(Counters::default()),
            embed_ctx: Mutex::new(None),
            batcher: None,
        };
        if inner.config.sequences > 1 {
            inner.batcher = Some(batched::Batcher::start(&inner, inner.config.sequences)?);
        }
        // Create the first context now, so that a model that cannot run fails at load time
        // (the batched path created its shared one already).
        if inner.batcher.is_none() {
            let mut slots = lock(&inner.slots);
            if let Some(Some(slot)) = slots.first_mut() {
                slot.ctx = Some(inner.new_context(false)?);
            }
        }
        Ok(LocalModel { inner: Arc::new(inner) })
    }

    /// The context length in use.
    pub fn n_ctx(&self) -> u32 {
        self.inner.n_ctx
    }

    /// The configuration in use (after defaults and limits were applied).
    pub fn config(&self) -> &LocalConfig {
        &self.inner.config
    }

    /// Counters since load.
    pub fn stats(&self) -> LocalStats {
        let c = &self.inner.counters;
        LocalStats {
            requests: c.requests.load(Ordering::Relaxed),
            prompt_tokens: c.prompt_tokens.load(Ordering::Relaxed),
            prompt_tokens_evaluated: c.prompt_tokens_evaluated.load(Ordering::Relaxed),
            prompt_tokens_reused: c.prompt_tokens_reused.load(Ordering::Relaxed),
            completion_tokens: c.completion_tokens.load(Ordering::Relaxed),
            grammar_resamples: c.grammar_resamples.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
        }
    }

    /// Forgets all cached prompt state (the next requests evaluate their prompts in full).
    pub fn clear_cache(&self) {
        let mut slots = lock(&self.inner.slots);
        for slot in slots.iter_mut().flatten() {
            if let Some(ctx) = slot.ctx.as_mut() {
                ctx.clear_kv_cache();
            }
            slot.tokens.clear();
            slot.reusable = 0;
        }
    }

    /// Tokens per second that llama.cpp decodes when `sequences` sequences step together, one
    /// token each per step, for `steps` steps after a short prompt, with this model's threads
    /// and context size, and without sampling: the most that batching `sequences` requests
    /// can give on this machine (compare with `decode_rate(1, steps)`). Blocks the calling
    /// thread; a fresh context, so the model's caches are untouched.
    ///
    /// It runs on the thread that decodes this model's requests (the batch scheduler's, or
    /// the first compute thread's), never on the caller's: llama.cpp's CPU backend keeps an
    /// OpenMP thread team per calling thread, and once a process holds more teams than it has
    /// cores, every team steps slower (measured: one sequence at 127 tokens/s alone, 74 once
    /// another thread had decoded).
    pub fn decode_rate(&self, sequences: usize, steps: usize) -> Result<f64, BackendError> {
        let inner = self.inner.clone();
        let measure = move || inner.decode_rate_here(sequences, steps);
        match &self.inner.batcher {
            Some(batcher) => batcher.run_on_thread(measure)?,
            None => futures::executor::block_on(compute_threads::run(measure))
                .map_err(|e| local_err(format!("measuring the decode rate failed: {e}")))?,
        }
    }

    /// Like [`ChatModel::chat`], also returning what the generation cost.
    pub async fn chat_with_report(
        &self,
        request: ChatRequest,
    ) -> Result<(ChatResponse, GenerationReport), BackendError> {
        let params = GenParams::from_request(&request, &self.inner.config)?;
        let prompt = self.inner.format_prompt(&request)?;
        if let Some(batcher) = &self.inner.batcher {
            let tokens = self.inner.tokenize(&prompt);
            return batcher.generate(tokens, params).await;
        }
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| local_err("model is shutting down"))?;
        let cancel = Arc::new(AtomicBool::new(false));
        let _on_drop = CancelOnDrop(cancel.clone());
        let inner = self.inner.clone();
        let task = compute_threads::run(move || inner.generate(&prompt, &params, &cancel));
        let result = task.await;
        // Released only now that the compute thread has marked itself idle: released inside
        // the job, the next request could find that thread still busy and start another,
        // and a second OpenMP team in the process slowed every generation by about a third.
        drop(permit);
        result.map_err(|e| local_err(format!("generation failed: {e}")))?
    }

    /// Embeds each text (mean-pooled, L2-normalised last hidden states, texts truncated to
    /// 512 tokens). Works with any GGUF llama.cpp can run; a chat model gives usable but
    /// weak sentence embeddings, an embedding model (e.g. bge-small-en-v1.5 or
    /// nomic-embed-text-v1.5 as GGUF) gives good ones.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, BackendError> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| local_err("model is shutting down"))?;
        let inner = self.inner.clone();
        let result = compute_threads::run(move || inner.embed_blocking(&texts)).await;
        // After the thread is idle again, as in `chat_with_report`.
        drop(permit);
        result.map_err(|e| local_err(format!("embedding failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl ChatModel for LocalModel {
    fn id(&self) -> String {
        self.inner.id.clone()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, BackendError> {
        self.chat_with_report(request).await.map(|(response, _)| response)
    }
}

/// Sets the flag when the request future is dropped, so the blocking work stops early.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Validated sampling settings of one request.
#[derive(Debug, Clone)]
struct GenParams {
    temperature: f32,
    top_p: f32,
    min_p: f32,
    top_k: u32,
    seed: u32,
    max_tokens: u32,
    stop: Vec<String>,
    grammar: Option<String>,
}

impl GenParams {
    fn from_request(request: &ChatRequest, config: &LocalConfig) -> Result<Self, BackendError> {
        let temperature = request.temperature.unwrap_or(config.temperature);
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(BackendError::Config(format!(
                "temperature must be a finite number >= 0, got {temperature}"
            )));
        }
        let top_p = request.top_p.unwrap_or(1.0);
        if !top_p.is_finite() || top_p <= 0.0 || top_p > 1.0 {
            return Err(BackendError::Config(format!("top_p must be in (0, 1], got {top_p}")));
        }
        let min_p = if config.min_p.is_finite() { config.min_p.clamp(0.0, 1.0) } else { 0.0 };
        let seed = match request.seed {
            Some(s) => fold_seed(s),
            None => fold_seed(rand::random::<u64>()),
        };
        let max_tokens = request.max_tokens.unwrap_or(config.max_tokens);
        let stop = request.stop.iter().filter(|s| !s.is_empty()).cloned().collect();
        let grammar = match &request.output_schema {
            Some(s) => Some(gbnf_from_schema(&s.schema).map_err(|e| BackendError::Config(e.to_string()))?),
            None => None,
        };
        Ok(Self { temperature, top_p, min_p, top_k: config.top_k, seed, max_tokens, stop, grammar })
    }

    /// The sampler chain without the grammar: filters, temperature, then a seeded draw
    /// (or argmax at temperature 0).
    fn chain(&self) -> LlamaSampler {
        if self.temperature <= 0.0 {
            return LlamaSampler::chain_simple([LlamaSampler::greedy()]);
        }
        let mut samplers = Vec::new();
        if self.top_k > 0 {
            samplers.push(LlamaSampler::top_k(i32::try_from(self.top_k).unwrap_or(i32::MAX)));
        }
        if self.top_p < 1.0 {
            samplers.push(LlamaSampler::top_p(self.top_p, 1));
        }
        if self.min_p > 0.0 {
            samplers.push(LlamaSampler::min_p(self.min_p, 1));
        }
        samplers.push(LlamaSampler::temp(self.temperature));
        samplers.push(LlamaSampler::dist(self.seed));
        LlamaSampler::chain_simple(samplers)
    }
}

/// A 64-bit request seed as llama.cpp's 32-bit one; `u32::MAX` means "random" to llama.cpp
/// and is avoided.
fn fold_seed(seed: u64) -> u32 {
    let folded = (seed ^ (seed >> 32)) as u32;
    if folded == u32::MAX {
        folded - 1
    } else {
        folded
    }
}

impl Slot {
    fn reusable_tokens(&self) -> &[LlamaToken] {
        &self.tokens[..self.reusable.min(self.tokens.len())]
    }
}

/// The fewest tokens a prompt batch takes llama.cpp's tiled CPU attention with (its query
/// tile, `GGML_FA_TILE_Q`); see the module docs.
const WIDE_BATCH: usize = 64;

impl Inner {
    /// [`LocalModel::decode_rate`], on the calling thread. A few steps run untimed first:
    /// the first steps of a batch shape plan its graph.
    fn decode_rate_here(&self, sequences: usize, steps: usize) -> Result<f64, BackendError> {
        const WARM_UP_STEPS: usize = 4;
        let inner = self;
        let sequences = sequences.max(1);
        let mut ctx = inner.new_batched_context(sequences, sequences)?;
        let prompt =
            inner.tokenize("You are a worker on a crowdsourcing site. Would you donate part of your pay?");
        let last = *prompt.last().ok_or_else(|| local_err("the prompt has no tokens"))?;
        let mut batch =
            LlamaBatch::new((prompt.len() * sequences).max(inner.n_batch as usize), sequences as i32);
        let add = |batch: &mut LlamaBatch, token, pos: usize, seq: usize, logits| {
            batch.add(token, pos as i32, &[seq as i32], logits).map_err(|e| local_err(format!("batch: {e}")))
        };
        for seq in 0..sequences {
            for (pos, &token) in prompt.iter().enumerate() {
                add(&mut batch, token, pos, seq, pos + 1 == prompt.len())?;
            }
        }
        ctx.decode(&mut batch).map_err(|e| local_err(format!("decoding the prompt: {e}")))?;
        let mut started = std::time::Instant::now();
        for step in 0..WARM_UP_STEPS + steps {
            if step == WARM_UP_STEPS {
                started = std::time::Instant::now();
            }
            batch.clear();
            for seq in 0..sequences {
                add(&mut batch, last, prompt.len() + step, seq, true)?;
            }
            ctx.decode(&mut batch).map_err(|e| local_err(format!("decoding step {step}: {e}")))?;
        }
        Ok((sequences * steps) as f64 / started.elapsed().as_secs_f64().max(1e-9))
    }

    fn new_context(&self, embeddings: bool) -> Result<LlamaContext<'static>, BackendError> {
        let threads = i32::try_from(self.config.threads).unwrap_or(i32::MAX);
        let mut params = LlamaContextParams::default().with_n_threads(threads).with_n_threads_batch(threads);
        params = if embeddings {
            params
                .with_n_ctx(NonZeroU32::new(512))
                .with_n_batch(512)
                .with_n_ubatch(512)
                .with_embeddings(true)
                .with_pooling_type(LlamaPoolingType::Mean)
        } else {
            params
                .with_n_ctx(NonZeroU32::new(self.n_ctx))
                .with_n_batch(self.n_batch)
                .with_n_ubatch(self.n_batch)
        };
        let _creating = lock(context_creation_lock());
        self.model.new_context(self.backend, params).map_err(|e| {
            local_err(format!(
                "could not create a llama.cpp context of {} tokens ({e}); try a smaller n_ctx",
                self.n_ctx
            ))
        })
    }

    /// The context shared by `sequences` batched requests: `cached` sequences, each with its
    /// own KV stream of `n_ctx` tokens.
    fn new_batched_context(
        &self,
        sequences: usize,
        cached: usize,
    ) -> Result<LlamaContext<'static>, BackendError> {
        let threads = i32::try_from(self.config.threads).unwrap_or(i32::MAX);
        let total = self.n_ctx.saturating_mul(cached as u32);
        let params = LlamaContextParams::default()
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_n_ctx(NonZeroU32::new(total))
            .with_n_batch(self.n_batch)
            .with_n_ubatch(self.n_batch)
            .with_n_seq_max(cached as u32)
            .with_kv_unified(false);
        let _creating = lock(context_creation_lock());
        self.model.new_context(self.backend, params).map_err(|e| {
            local_err(format!(
                "could not create a llama.cpp context of {sequences} sequences of {} tokens ({e}); try \
                 fewer sequences at once (a lower concurrency) or a smaller n_ctx",
                self.n_ctx
            ))
        })
    }

    fn format_prompt(&self, request: &ChatRequest) -> Result<String, BackendError> {
        let mut chat = Vec::with_capacity(request.messages.len() + 1);
        if request.messages.first().map(|m| m.role) != Some(Role::System) {
            chat.push(("system", DEFAULT_SYSTEM_PROMPT.to_string()));
        }
        for m in &request.messages {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            chat.push((role, m.content.clone()));
        }
        let chat = chat
            .into_iter()
            .map(|(role, content)| LlamaChatMessage::new(role.to_string(), content))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::Config(format!("message cannot be sent to the model: {e}")))?;
        self.model
            .apply_chat_template(&self.template, &chat, true)
            .map_err(|e| local_err(format!("applying the model's chat template failed: {e}")))
    }

    fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), true, true)
    }

    fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        let mut guard = lock(&self.embed_ctx);
        if guard.is_none() {
            *guard = Some(self.new_context(true)?);
        }
        let ctx = guard.as_mut().ok_or_else(|| local_err("embedding context missing"))?;
        let unsupported = |why: String| {
            local_err(format!(
                "{} cannot produce embeddings with llama.cpp ({why}); point the embedding model \
                 at an embedding GGUF such as bge-small-en-v1.5 or nomic-embed-text-v1.5",
                self.id
            ))
        };
        let mut batch = LlamaBatch::new(512, 1);
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let mut tokens = self.model.vocab().tokenize(text.as_bytes(), true, false);
            tokens.truncate(512);
            if tokens.is_empty() {
                tokens.push(self.model.vocab().bos());
            }
            ctx.clear_kv_cache();
            batch.clear();
            for (i, &t) in tokens.iter().enumerate() {
                batch.add(t, i as i32, &[0], true).map_err(|e| local_err(format!("batch: {e}")))?;
            }
            ctx.decode(&mut batch).map_err(|e| unsupported(e.to_string()))?;
            let emb = ctx.embeddings_seq_ith(0).map_err(|_| unsupported("no pooled embedding".into()))?;
            let norm = emb.iter().map(|x| x * x).sum::<f32>().sqrt();
            if !norm.is_finite() || norm == 0.0 {
                return Err(unsupported("degenerate embedding".into()));
            }
            out.push(emb.iter().map(|x| x / norm).collect());
        }
        ctx.clear_kv_cache();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_fold_and_avoid_the_random_marker() {
        assert_eq!(fold_seed(7), 7);
        assert_ne!(fold_seed(u32::MAX as u64), u32::MAX);
        assert_ne!(fold_seed(1), fold_seed(1 << 32 | 2));
    }

    #[test]
    fn bad_sampling_settings_are_config_errors() {
        let mut r = ChatRequest::new(vec![]);
        r.temperature = Some(f32::NAN);
        assert!(matches!(GenParams::from_request(&r, &LocalConfig::default()), Err(BackendError::Config(_))));
        r.temperature = Some(0.5);
        r.top_p = Some(0.0);
        assert!(matches!(GenParams::from_request(&r, &LocalConfig::default()), Err(BackendError::Config(_))));
    }
}
