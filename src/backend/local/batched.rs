//! Continuous batching: one llama.cpp context holding several sequences, driven by one
//! scheduler thread. Each step puts the next piece of every active request into one batch
//! (the sampled token of each request that is decoding, then chunks of waiting prompts,
//! up to `n_batch` tokens), so the weights are read once per step for all of them, as
//! llama.cpp's server does. Samplers and grammars are per request; a dropped request is
//! cancelled between steps.
//!
//! Prefix reuse across turns: a dialogue has several agents, each sending its own growing
//! prompt, so the context keeps [`CACHE_PER_ACTIVE`] sequences per request that may run at
//! once, and a request goes to the idle sequence sharing the longest prefix with its prompt
//! (else an empty one, else the least recently used). Each sequence has its own KV stream of
//! `n_ctx` tokens (llama.cpp's non-unified cache): a token attends over its own sequence
//! only, where a unified cache would make every token's attention span all sequences'
//! cells, which measured several times slower on a multi-agent run.
//!
//! llama.cpp splits a batch over several streams into micro-batches of consecutive sequence
//! ids, so running requests are kept on sequences `0..n`: a request starts on sequence `n`
//! (its prefix swapped in), and when one finishes the last running one is swapped into its
//! place, through one spare stream ([`Scheduler::compact`]). Scattered, each request got a
//! micro-batch of its own and batching gained nothing on whole runs.
//!
//! Batch composition changes llama.cpp's rounding, so a seeded request's reply may depend
//! on what shares its batches: this path is for throughput. The sequential path (one
//! request at a time on its own context, see [`super`]) stays the bit-exact one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::generate::{common_prefix, digest_bits, sample_next, ReplyTokens};
use super::{local_err, CancelOnDrop, Counters, GenParams, GenerationReport, Inner};
use crate::backend::{BackendError, ChatResponse, Usage};

type Reply = Result<(ChatResponse, GenerationReport), BackendError>;

/// Cached sequences per request that may run at once: one per agent of a two-agent
/// dialogue, so that each agent's next turn finds its prompt's prefix evaluated.
pub(super) const CACHE_PER_ACTIVE: usize = 2;

/// One request waiting for, or holding, a sequence.
struct Job {
    prompt: Vec<LlamaToken>,
    params: GenParams,
    cancel: Arc<AtomicBool>,
    reply: tokio::sync::oneshot::Sender<Reply>,
    started: Instant,
}

/// What the scheduler thread is sent.
enum Work {
    /// A request to generate in the shared batch.
    Generate(Job),
    /// Other work for the thread that decodes (it holds the model's OpenMP thread team),
    /// run between two steps.
    Run(Box<dyn FnOnce() + Send>),
}

/// The handle requests are sent through; the scheduler thread ends when it is dropped.
pub(super) struct Batcher {
    jobs: mpsc::Sender<Work>,
}

impl Batcher {
    /// Creates the shared context (so that one too large for memory fails at load time) and
    /// starts the scheduler thread.
    pub(super) fn start(inner: &Inner, sequences: usize) -> Result<Self, BackendError> {
        let cached = sequences * CACHE_PER_ACTIVE;
        // One more KV stream than the cache's, kept empty for swapping two sequences.
        let ctx = inner.new_batched_context(sequences, cached + 1)?;
        let scheduler = Scheduler {
            model: inner.model,
            ctx,
            counters: inner.counters.clone(),
            n_batch: inner.n_batch as usize,
            n_ctx_seq: inner.n_ctx as usize,
            grammar_first: inner.config.grammar_first,
            prefix_reuse: inner.config.prefix_reuse,
            seqs: (0..cached).map(|_| Seq::default()).collect(),
            max_active: sequences,
            clock: 0,
        };
        let (jobs, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("vsim-llama-batch".into())
            .spawn(move || scheduler.run(rx))
            .map_err(|e| local_err(format!("could not start the batch scheduler: {e}")))?;
        Ok(Self { jobs })
    }

    /// Generates the reply to `prompt` (already tokenized) in the shared batch.
    pub(super) async fn generate(&self, prompt: Vec<LlamaToken>, params: GenParams) -> Reply {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let _on_drop = CancelOnDrop(cancel.clone());
        let job = Job { prompt, params, cancel, reply, started: Instant::now() };
        self.jobs.send(Work::Generate(job)).map_err(|_| local_err("the batch scheduler has stopped"))?;
        rx.await.map_err(|_| local_err("the batch scheduler stopped before replying"))?
    }

    /// Runs `work` on the scheduler thread between two steps and waits for its result,
    /// blocking the calling thread.
    pub(super) fn run_on_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, BackendError> {
        let (tx, rx) = mpsc::channel();
        let run = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs.send(Work::Run(run)).map_err(|_| local_err("the batch scheduler has stopped"))?;
        rx.recv().map_err(|_| local_err("the batch scheduler stopped before running the work"))
    }
}

/// A request being served on a sequence.
struct Active {
    job: Job,
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
    /// Index of the next prompt token to evaluate.
    next_prompt: usize,
    /// The sampled token to evaluate next (decoding), if any.
    pending: Option<LlamaToken>,
    /// Where this sequence's logits are in the batch just decoded.
    logits: Option<i32>,
    /// The reply so far.
    output: ReplyTokens,
    report: GenerationReport,
    decode_start: Option<Instant>,
}

/// One sequence of the shared context.
#[derive(Default)]
struct Seq {
    /// The tokens its KV cache holds (positions 0..len).
    tokens: Vec<LlamaToken>,
    last_used: u64,
    active: Option<Active>,
}

struct Scheduler {
    model: &'static LlamaModel,
    ctx: LlamaContext<'static>,
    counters: Arc<Counters>,
    n_batch: usize,
    /// Context length of each sequence.
    n_ctx_seq: usize,
    grammar_first: bool,
    prefix_reuse: bool,
    seqs: Vec<Seq>,
    /// Requests running at once, at most.
    max_active: usize,
    clock: u64,
}

impl Scheduler {
    fn run(mut self, rx: mpsc::Receiver<Work>) {
        let mut queue: VecDeque<Job> = VecDeque::new();
        let mut batch = LlamaBatch::new(self.n_batch.max(self.seqs.len()), self.seqs.len() as i32);
        let take = |work: Work, queue: &mut VecDeque<Job>| match work {
            Work::Generate(job) => queue.push_back(job),
            Work::Run(run) => run(),
        };
        loop {
            let busy = self.seqs.iter().any(|s| s.active.is_some());
            if !busy && queue.is_empty() {
                match rx.recv() {
                    Ok(work) => take(work, &mut queue),
                    Err(_) => return,
                }
            }
            for work in rx.try_iter() {
                take(work, &mut queue);
            }
            self.drop_cancelled(&mut queue);
            self.compact();
            self.admit(&mut queue);
            if self.step(&mut batch) {
                self.sample();
            }
        }
    }

    /// Ends the requests whose futures were dropped.
    fn drop_cancelled(&mut self, queue: &mut VecDeque<Job>) {
        let cancelled = |job: &Job| job.cancel.load(Ordering::Relaxed);
        for seq in &mut self.seqs {
            if seq.active.as_ref().is_some_and(|a| cancelled(&a.job)) {
                if let Some(a) = seq.active.take() {
                    self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                    let _ = a.job.reply.send(Err(BackendError::Cancelled));
                }
            }
        }
        queue.retain(|job| {
            let keep = !cancelled(job);
            if !keep {
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            keep
        });
    }

    /// Gives waiting requests free sequences: the one sharing the longest prefix with the
    /// prompt, else an empty one, else the least recently used. The request runs on the first
    /// sequence after the running ones (see [`Scheduler::compact`]): a useful prefix is swapped
    /// there; otherwise what that sequence held replaces the one given up.
    fn admit(&mut self, queue: &mut VecDeque<Job>) {
        while let Some(job) = queue.pop_front() {
            let running = self.running();
            if running >= self.max_active {
                queue.push_front(job);
                return;
            }
            // Every prompt starts with the chat template's few tokens, so a match counts only
            // when it covers a tenth of the prompt (llama.cpp's server uses the same share for
            // its slots); otherwise the request takes an empty sequence, else the least
            // recently used, and leaves other agents' prefixes in place.
            let useful = (job.prompt.len() / 10).max(1);
            let free = self.seqs.iter().enumerate().filter(|(_, s)| s.active.is_none());
            let best = free
                .map(|(i, s)| {
                    let shared = if self.prefix_reuse { common_prefix(&s.tokens, &job.prompt) } else { 0 };
                    let rank = (if shared >= useful { shared } else { 0 }, s.tokens.is_empty());
                    (i, shared, rank, s.last_used)
                })
                .max_by_key(|&(_, _, rank, used)| (rank, std::cmp::Reverse(used)));
            let Some((index, shared, (useful_shared, _), _)) = best else {
                queue.push_front(job);
                return;
            };
            if let Err(e) = self.check(&job.prompt) {
                let _ = job.reply.send(Err(e));
                continue;
            }
            let target = running;
            let shared = if index == target { shared } else { useful_shared };
            if index != target {
                if shared > 0 {
                    self.swap_seqs(index, target);
                } else {
                    // Nothing worth keeping comes to `target`: one copy saves what it held
                    // (none when it is empty) over the sequence given up, and `target`
                    // starts afresh.
                    if !self.seqs[target].tokens.is_empty() {
                        let _ = self.ctx.copy_kv_cache_seq(target as i32, index as i32, None, None);
                        self.seqs[index].tokens = std::mem::take(&mut self.seqs[target].tokens);
                        self.seqs[index].last_used = self.seqs[target].last_used;
                    }
                    let _ = self.ctx.clear_kv_cache_seq(Some(target as u32), None, None);
                    self.seqs[target].tokens.clear();
                }
            }
            self.activate(target, shared, job);
        }
    }

    /// Requests running: they hold sequences `0..running`.
    fn running(&self) -> usize {
        self.seqs.iter().take_while(|s| s.active.is_some()).count()
    }

    /// Keeps the running requests on sequences `0..n` by swapping the last one into each gap a
    /// finished request left. With a KV stream per sequence, llama.cpp decodes only
    /// consecutive sequence ids in one micro-batch, so scattered requests would each get a
    /// micro-batch of their own and the weights would be read once per request, not per step.
    fn compact(&mut self) {
        loop {
            let Some(gap) = self.seqs.iter().position(|s| s.active.is_none()) else { return };
            let Some(last) = self.seqs.iter().rposition(|s| s.active.is_some()) else { return };
            if last < gap {
                return;
            }
            self.swap_seqs(gap, last);
        }
    }

    /// Exchanges what sequences `a` and `b` hold, running request included, through the
    /// spare KV stream after the cache's. llama.cpp copies whole streams before the next
    /// decode, in the order asked for.
    fn swap_seqs(&mut self, a: usize, b: usize) {
        let spare = self.seqs.len() as i32;
        let _ = self.ctx.copy_kv_cache_seq(a as i32, spare, None, None);
        let _ = self.ctx.copy_kv_cache_seq(b as i32, a as i32, None, None);
        let _ = self.ctx.copy_kv_cache_seq(spare, b as i32, None, None);
        let _ = self.ctx.clear_kv_cache_seq(Some(spare as u32), None, None);
        self.seqs.swap(a, b);
    }

    /// Checks that a request fits its sequence.
    fn check(&self, prompt: &[LlamaToken]) -> Result<(), BackendError> {
        if prompt.is_empty() {
            return Err(local_err("the prompt is empty after tokenization"));
        }
        if prompt.len() >= self.n_ctx_seq {
            return Err(local_err(format!(
                "the prompt has {} tokens but each sequence's context holds {}; shorten the history or \
                 raise n_ctx",
                prompt.len(),
                self.n_ctx_seq
            )));
        }
        Ok(())
    }

    /// Puts `job` on sequence `index`, keeping the first `shared` tokens it holds (at least
    /// the prompt's last token is evaluated, for its logits).
    fn activate(&mut self, index: usize, shared: usize, job: Job) {
        let grammar = match &job.params.grammar {
            Some(g) => match LlamaSampler::grammar(self.model, g, "root") {
                Ok(s) => Some(s),
                Err(e) => {
                    let _ = job
                        .reply
                        .send(Err(local_err(format!("llama.cpp rejected the output grammar ({e}):\n{g}"))));
                    return;
                }
            },
            None => None,
        };
        self.clock += 1;
        let seq_id = index as u32;
        let seq = &mut self.seqs[index];
        seq.last_used = self.clock;
        let mut reuse = shared.min(job.prompt.len() - 1);
        if reuse < seq.tokens.len() {
            let removed =
                matches!(self.ctx.clear_kv_cache_seq(Some(seq_id), Some(reuse as u32), None), Ok(true));
            if !removed {
                let _ = self.ctx.clear_kv_cache_seq(Some(seq_id), None, None);
                reuse = 0;
            }
            seq.tokens.truncate(reuse);
        }
        let prompt_len = job.prompt.len();
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.counters.prompt_tokens.fetch_add(prompt_len as u64, Ordering::Relaxed);
        self.counters.prompt_tokens_reused.fetch_add(reuse as u64, Ordering::Relaxed);
        let report = GenerationReport {
            prompt_tokens: prompt_len as u64,
            prompt_tokens_reused: reuse as u64,
            ..Default::default()
        };
        let max_new = (job.params.max_tokens as usize).min(self.n_ctx_seq.saturating_sub(prompt_len));
        let output = ReplyTokens::new(max_new, &job.params.stop);
        let chain = job.params.chain();
        seq.active = Some(Active {
            job,
            chain,
            grammar,
            next_prompt: reuse,
            pending: None,
            logits: None,
            output,
            report,
            decode_start: None,
        });
    }

    /// Decodes one batch: the pending token of every decoding request, and prompt chunks in
    /// what room is left. Tokens go in sequence order: with a KV stream per sequence, llama.cpp
    /// splits a batch into micro-batches of consecutive sequence ids, in batch order.
    /// Returns whether anything was decoded.
    fn step(&mut self, batch: &mut LlamaBatch<'static>) -> bool {
        batch.clear();
        let mut added: Vec<(usize, usize)> = Vec::new(); // (sequence, tokens added)
        let decoding =
            self.seqs.iter().filter(|s| s.active.as_ref().is_some_and(|a| a.pending.is_some())).count();
        let mut prompt_room = self.n_batch.saturating_sub(decoding);
        for (i, seq) in self.seqs.iter_mut().enumerate() {
            let Some(a) = seq.active.as_mut() else { continue };
            a.logits = None;
            if let Some(token) = a.pending {
                if batch.add(token, seq.tokens.len() as i32, &[i as i32], true).is_ok() {
                    a.logits = Some(batch.n_tokens() - 1);
                    added.push((i, 1));
                }
                continue;
            }
            let budget = prompt_room;
            if budget == 0 || a.next_prompt >= a.job.prompt.len() {
                continue;
            }
            let end = (a.next_prompt + budget).min(a.job.prompt.len());
            let start_pos = seq.tokens.len();
            let mut n = 0;
            for (k, &tok) in a.job.prompt[a.next_prompt..end].iter().enumerate() {
                let last = a.next_prompt + k + 1 == a.job.prompt.len();
                if batch.add(tok, (start_pos + k) as i32, &[i as i32], last).is_err() {
                    break;
                }
                n += 1;
                if last {
                    a.logits = Some(batch.n_tokens() - 1);
                }
            }
            if n > 0 {
                prompt_room -= n;
                added.push((i, n));
            }
        }
        if added.is_empty() {
            return false;
        }
        let decode_start = Instant::now();
        let mut decoded = self.ctx.decode(batch);
        tracing::trace!(
            tokens = batch.n_tokens(),
            seqs = ?added,
            ms = decode_start.elapsed().as_millis() as u64,
            "batched step"
        );
        // The cache may be too fragmented for the batch: drop idle sequences and try again.
        while matches!(decoded, Err(llama_cpp_2::DecodeError::NoKvCacheSlot)) && self.evict_idle() {
            decoded = self.ctx.decode(batch);
        }
        if let Err(e) = decoded {
            // The batch may be partly in the caches: its sequences start afresh.
            for (i, _) in added {
                let _ = self.ctx.clear_kv_cache_seq(Some(i as u32), None, None);
                let seq = &mut self.seqs[i];
                seq.tokens.clear();
                if let Some(a) = seq.active.take() {
                    let _ = a.job.reply.send(Err(local_err(format!("batched decoding failed: {e}"))));
                }
            }
            return false;
        }
        for (i, n) in added {
            let seq = &mut self.seqs[i];
            let Some(a) = seq.active.as_mut() else { continue };
            match a.pending.take() {
                Some(token) => seq.tokens.push(token),
                None => {
                    seq.tokens.extend_from_slice(&a.job.prompt[a.next_prompt..a.next_prompt + n]);
                    a.next_prompt += n;
                    a.report.prompt_tokens_evaluated += n as u64;
                    self.counters.prompt_tokens_evaluated.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        true
    }

    /// Drops the least recently used idle sequence that holds tokens; false when none does.
    fn evict_idle(&mut self) -> bool {
        let victim = self
            .seqs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active.is_none() && !s.tokens.is_empty())
            .min_by_key(|(_, s)| s.last_used)
            .map(|(i, _)| i);
        let Some(i) = victim else { return false };
        let _ = self.ctx.clear_kv_cache_seq(Some(i as u32), None, None);
        self.seqs[i].tokens.clear();
        true
    }

    /// Samples the next token of every sequence whose logits the last batch produced, and
    /// finishes the requests that are done.
    fn sample(&mut self) {
        let vocab = self.model.vocab();
        for seq in &mut self.seqs {
            let Some(a) = seq.active.as_mut() else { continue };
            let Some(idx) = a.logits.take() else { continue };
            if a.decode_start.is_none() {
                a.report.prompt_eval = a.job.started.elapsed();
                a.report.prompt_logits_digest = digest_bits(self.ctx.get_logits_ith(idx));
                a.report.time_to_first_token = a.job.started.elapsed();
                a.decode_start = Some(Instant::now());
            }
            let sampled = sample_next(
                &self.ctx,
                idx,
                &mut a.chain,
                &mut a.grammar,
                self.grammar_first,
                &mut a.report,
                &self.counters,
            );
            let token = match sampled {
                Ok(t) => t,
                Err(e) => {
                    if let Some(a) = seq.active.take() {
                        let _ = a.job.reply.send(Err(e));
                    }
                    continue;
                }
            };
            let finish = if a.output.is_full() {
                Some("length")
            } else {
                a.output.push(token, &vocab, &a.job.params.stop, &mut a.grammar, &mut a.chain)
            };
            match finish {
                None => a.pending = Some(token),
                Some(reason) => {
                    if let Some(a) = seq.active.take() {
                        self.counters.completion_tokens.fetch_add(a.output.generated, Ordering::Relaxed);
                        let (reply, result) = finished(a, reason);
                        let _ = reply.send(Ok(result));
                    }
                }
            }
        }
    }
}

/// The response and report of a finished request, and where to send them.
fn finished(
    a: Active,
    reason: &str,
) -> (tokio::sync::oneshot::Sender<Reply>, (ChatResponse, GenerationReport)) {
    let Active { job, output: ReplyTokens { out, generated, .. }, mut report, decode_start, .. } = a;
    report.completion_tokens = generated;
    report.generation = decode_start.map(|t| t.elapsed()).unwrap_or_default();
    let response = ChatResponse {
        content: String::from_utf8_lossy(&out).into_owned(),
        usage: Some(Usage { prompt_tokens: job.prompt.len() as u64, completion_tokens: generated }),
        finish_reason: Some(reason.to_string()),
        cached: false,
    };
    (job.reply, (response, report))
}
