//! One generation on a context slot, in three stages: reusing the KV cache of the prompt
//! prefix the slot already holds, evaluating the rest of the prompt, and decoding the reply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;

use super::{local_err, lock, Counters, GenParams, GenerationReport, Inner, Slot, WIDE_BATCH};
use crate::backend::{BackendError, ChatResponse, Usage};

/// Splits `total` tokens into as few batches of at most `max` as possible, of near-equal
/// size, so that with `max >= 2 * WIDE_BATCH` every batch is at least `WIDE_BATCH` wide
/// (unless `total` itself is smaller).
fn batch_sizes(total: usize, max: usize) -> Vec<usize> {
    if total == 0 {
        return Vec::new();
    }
    let n = total.div_ceil(max.max(1));
    let (base, extra) = (total / n, total % n);
    (0..n).map(|i| base + usize::from(i < extra)).collect()
}

/// FNV-1a over the bit patterns of `values`.
pub(super) fn digest_bits(values: &[f32]) -> u64 {
    values
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, v| (h ^ u64::from(v.to_bits())).wrapping_mul(0x100_0000_01b3))
}

pub(super) fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Returns a slot to the pool when the generation ends, however it ends.
struct SlotGuard<'a> {
    inner: &'a Inner,
    index: usize,
    slot: Option<Slot>,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let mut slots = lock(&self.inner.slots);
            if let Some(place) = slots.get_mut(self.index) {
                *place = Some(slot);
            }
        }
    }
}

/// One generation on a checked-out slot, from its prompt's reused prefix on: the slot's
/// context and token bookkeeping, the request's cancel flag, and what it has cost so far.
struct Generation<'a> {
    inner: &'a Inner,
    ctx: &'a mut LlamaContext<'static>,
    /// The tokens the KV cache holds (sequence 0, positions 0..len).
    cached: &'a mut Vec<LlamaToken>,
    /// How many leading `cached` tokens were evaluated as prompt in wide batches.
    reusable: &'a mut usize,
    prompt: &'a [LlamaToken],
    /// Leading prompt tokens whose cached state is reused.
    reuse: usize,
    cancel: &'a AtomicBool,
    /// When the blocking work started.
    started: Instant,
    report: GenerationReport,
}

impl Inner {
    /// Takes a free slot for `prompt`: the one whose cached tokens share the longest prefix
    /// with it, provided that prefix is at least half of what the slot holds or half of the
    /// prompt; otherwise the least recently used slot. The threshold keeps a request that
    /// shares only a few tokens (say, another agent's "<|im_start|>system\nYou are") from
    /// evicting a dialogue that would continue in that slot.
    fn checkout(&self, prompt: &[LlamaToken]) -> Result<SlotGuard<'_>, BackendError> {
        let mut slots = lock(&self.slots);
        let free = || slots.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (i, s)));
        let continuing = free()
            .filter(|_| self.config.prefix_reuse)
            .map(|(i, s)| (i, common_prefix(s.reusable_tokens(), prompt), s))
            .filter(|(_, shared, s)| *shared > 0 && (2 * shared >= s.reusable || 2 * shared >= prompt.len()))
            .max_by_key(|(_, shared, s)| (*shared, std::cmp::Reverse(s.last_used)))
            .map(|(i, _, _)| i);
        let index = continuing
            .or_else(|| free().min_by_key(|(_, s)| s.last_used).map(|(i, _)| i))
            .ok_or_else(|| local_err("no free context slot"))?;
        let slot = slots[index].take();
        Ok(SlotGuard { inner: self, index, slot })
    }

    /// Generates the reply to `prompt_text` on the best slot for it: reuses the slot's
    /// cached prefix ([`Inner::reuse_prefix`]), evaluates the rest of the prompt
    /// ([`Generation::evaluate_prompt`]) and decodes the reply ([`Generation::decode_reply`]).
    pub(super) fn generate(
        &self,
        prompt_text: &str,
        params: &GenParams,
        cancel: &AtomicBool,
    ) -> Result<(ChatResponse, GenerationReport), BackendError> {
        let started = Instant::now();
        let prompt = self.tokenize(prompt_text);
        let n_ctx = self.n_ctx as usize;
        if prompt.is_empty() {
            return Err(local_err("the prompt is empty after tokenization"));
        }
        if prompt.len() >= n_ctx {
            return Err(local_err(format!(
                "the prompt has {} tokens but the context holds {n_ctx}; shorten the history or \
                 raise n_ctx",
                prompt.len()
            )));
        }
        let mut grammar = match &params.grammar {
            Some(g) => Some(
                LlamaSampler::grammar(self.model, g, "root")
                    .map_err(|e| local_err(format!("llama.cpp rejected the output grammar ({e}):\n{g}")))?,
            ),
            None => None,
        };
        let mut chain = params.chain();

        let mut guard = self.checkout(&prompt)?;
        let slot = guard.slot.as_mut().ok_or_else(|| local_err("context slot missing"))?;
        let mut generation = self.reuse_prefix(slot, &prompt, cancel, started)?;
        let (batch, logits_index) = generation.evaluate_prompt()?;
        let (out, finish, generated) =
            generation.decode_reply(batch, logits_index, params, &mut grammar, &mut chain)?;

        let content = String::from_utf8_lossy(&out).into_owned();
        let response = ChatResponse {
            content,
            usage: Some(Usage { prompt_tokens: prompt.len() as u64, completion_tokens: generated }),
            finish_reason: Some(finish.to_string()),
            cached: false,
        };
        Ok((response, generation.report))
    }

    /// The first stage: keeps the prefix of `prompt` that `slot`'s KV cache already holds,
    /// but evaluates at least a wide batch's worth of the prompt (see the module docs of
    /// [`super`]), so that the last token's logits start the reply. Drops the rest of the
    /// cache, and counts the request.
    fn reuse_prefix<'a>(
        &'a self,
        slot: &'a mut Slot,
        prompt: &'a [LlamaToken],
        cancel: &'a AtomicBool,
        started: Instant,
    ) -> Result<Generation<'a>, BackendError> {
        slot.last_used = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        if slot.ctx.is_none() {
            slot.ctx = Some(self.new_context(false)?);
        }
        let mut reuse = if self.config.prefix_reuse {
            common_prefix(slot.reusable_tokens(), prompt).min(prompt.len().saturating_sub(WIDE_BATCH))
        } else {
            0
        };
        let Slot { ctx, tokens: cached, reusable, .. } = slot;
        let ctx = ctx.as_mut().ok_or_else(|| local_err("context missing"))?;
        if reuse < cached.len() {
            let removed =
                reuse > 0 && matches!(ctx.clear_kv_cache_seq(Some(0), Some(reuse as u32), None), Ok(true));
            if !removed {
                ctx.clear_kv_cache();
                reuse = 0;
            }
            cached.truncate(reuse);
        }
        *reusable = (*reusable).min(reuse);
        tracing::debug!(
            model = %self.id,
            prompt_tokens = prompt.len(),
            reused = reuse,
            evaluated = prompt.len() - reuse,
            "local generation"
        );

        let counters = &self.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters.prompt_tokens.fetch_add(prompt.len() as u64, Ordering::Relaxed);
        counters.prompt_tokens_reused.fetch_add(reuse as u64, Ordering::Relaxed);

        let report = GenerationReport {
            prompt_tokens: prompt.len() as u64,
            prompt_tokens_reused: reuse as u64,
            ..Default::default()
        };
        Ok(Generation { inner: self, ctx, cached, reusable, prompt, reuse, cancel, started, report })
    }
}

impl Generation<'_> {
    /// After a failed decode the KV cache may hold part of a batch: starts the slot afresh
    /// next time, and returns `e`.
    fn fail(&mut self, e: BackendError) -> BackendError {
        self.ctx.clear_kv_cache();
        self.cached.clear();
        *self.reusable = 0;
        e
    }

    /// Counts a cancelled generation.
    fn cancelled(&self) -> BackendError {
        self.inner.counters.cancelled.fetch_add(1, Ordering::Relaxed);
        BackendError::Cancelled
    }

    /// The second stage: evaluates the prompt after the reused prefix in batches of near-equal
    /// width. Returns the batch (for decoding to go on with) and the index of the logits the
    /// reply starts from.
    fn evaluate_prompt(&mut self) -> Result<(LlamaBatch<'static>, i32), BackendError> {
        let prompt = self.prompt;
        let eval_start = Instant::now();
        let n_batch = self.inner.n_batch as usize;
        let mut batch = LlamaBatch::new(n_batch, 1);
        let mut logits_index = 0i32;
        let mut offset = self.reuse;
        let mut all_wide = true;
        for size in batch_sizes(prompt.len() - self.reuse, n_batch) {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(self.cancelled());
            }
            let chunk = &prompt[offset..offset + size];
            offset += size;
            batch.clear();
            let start = self.cached.len();
            for (i, &tok) in chunk.iter().enumerate() {
                let pos = (start + i) as i32;
                let last = start + i + 1 == prompt.len();
                batch.add(tok, pos, &[0], last).map_err(|e| local_err(format!("batch: {e}")))?;
            }
            let decode_start = Instant::now();
            let decoded = self.ctx.decode(&mut batch);
            tracing::trace!(tokens = size, ms = decode_start.elapsed().as_millis() as u64, "prompt chunk");
            if let Err(e) = decoded {
                let e = local_err(format!("prompt evaluation failed: {e}"));
                return Err(self.fail(e));
            }
            self.cached.extend_from_slice(chunk);
            // Only tokens evaluated in wide batches match a cold evaluation of a longer prompt.
            all_wide &= size >= WIDE_BATCH;
            if all_wide {
                *self.reusable = self.cached.len();
            }
            self.inner.counters.prompt_tokens_evaluated.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            self.report.prompt_tokens_evaluated += chunk.len() as u64;
            logits_index = batch.n_tokens() - 1;
        }
        self.report.prompt_eval = eval_start.elapsed();
        self.report.prompt_logits_digest = digest_bits(self.ctx.get_logits_ith(logits_index));
        Ok((batch, logits_index))
    }

    /// The third stage: samples the reply token by token from the logits at `logits_index`,
    /// under the output grammar when there is one, until an end-of-generation token, a stop
    /// string, `max_tokens` or the end of the context. Returns the reply's bytes, the finish
    /// reason and the number of tokens generated.
    fn decode_reply(
        &mut self,
        mut batch: LlamaBatch<'static>,
        mut logits_index: i32,
        params: &GenParams,
        grammar: &mut Option<LlamaSampler>,
        chain: &mut LlamaSampler,
    ) -> Result<(Vec<u8>, &'static str, u64), BackendError> {
        let gen_start = Instant::now();
        let vocab = self.inner.model.vocab();
        let n_ctx = self.inner.n_ctx as usize;
        let max_new = (params.max_tokens as usize).min(n_ctx.saturating_sub(self.cached.len()));
        let mut reply = ReplyTokens::new(max_new, &params.stop);
        let mut finish = "length";
        while !reply.is_full() {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(self.cancelled());
            }
            let token = sample_next(
                self.ctx,
                logits_index,
                chain,
                grammar,
                self.inner.config.grammar_first,
                &mut self.report,
                &self.inner.counters,
            )?;
            if reply.generated == 0 {
                self.report.time_to_first_token = self.started.elapsed();
            }
            if let Some(reason) = reply.push(token, &vocab, &params.stop, grammar, chain) {
                finish = reason;
                break;
            }
            batch.clear();
            batch
                .add(token, self.cached.len() as i32, &[0], true)
                .map_err(|e| local_err(format!("batch: {e}")))?;
            if let Err(e) = self.ctx.decode(&mut batch) {
                let e = local_err(format!("generation failed: {e}"));
                return Err(self.fail(e));
            }
            self.cached.push(token);
            logits_index = 0;
        }
        let ReplyTokens { out, generated, .. } = reply;
        self.report.generation = gen_start.elapsed();
        self.report.completion_tokens = generated;
        self.inner.counters.completion_tokens.fetch_add(generated, Ordering::Relaxed);
        Ok((out, finish, generated))
    }
}

/// A reply being generated, token by token: its bytes and token count so far, and when it
/// must end. Both decoding paths (one request at a time, and batched) take every sampled
/// token through [`ReplyTokens::push`], so they end replies the same way.
pub(super) struct ReplyTokens {
    pub(super) out: Vec<u8>,
    pub(super) generated: u64,
    max_new: usize,
    max_stop: usize,
}

impl ReplyTokens {
    /// An empty reply that may grow to `max_new` tokens and ends at any of `stop`.
    pub(super) fn new(max_new: usize, stop: &[String]) -> Self {
        Self {
            out: Vec::new(),
            generated: 0,
            max_new,
            max_stop: stop.iter().map(String::len).max().unwrap_or(0),
        }
    }

    /// Whether the length limit allows no further token.
    pub(super) fn is_full(&self) -> bool {
        self.generated as usize >= self.max_new
    }

    /// Takes `token`, sampled under `grammar` when there is one. An end-of-generation token
    /// ends the reply (`stop`). Any other is accepted by the grammar and the chain and its
    /// piece appended; then a stop string (cut off, `stop`) or the length limit (`length`)
    /// may end it. `None`: decode the token and sample the next.
    pub(super) fn push(
        &mut self,
        token: LlamaToken,
        vocab: &LlamaVocab<'_>,
        stop: &[String],
        grammar: &mut Option<LlamaSampler>,
        chain: &mut LlamaSampler,
    ) -> Option<&'static str> {
        if vocab.is_eog(token) {
            return Some("stop");
        }
        if let Some(g) = grammar.as_mut() {
            // Only ever called with a token the grammar accepts (see `sample_next`); without
            // a grammar, the chain's own `sample` has accepted it already.
            g.accept(token);
            chain.accept(token);
        }
        self.generated += 1;
        let before = self.out.len();
        vocab.token_to_piece_into(token, &mut self.out, false, None);
        if self.max_stop > 0 {
            let from = before.saturating_sub(self.max_stop.saturating_sub(1));
            if let Some(cut) = find_stop(&self.out, from, stop) {
                self.out.truncate(cut);
                return Some("stop");
            }
        }
        self.is_full().then_some("length")
    }
}

/// Samples the next token from the logits at `idx`: from `chain` alone, or under `grammar`
/// (see [`sample_constrained`]), counting a resampling in `report` and `counters`.
pub(super) fn sample_next(
    ctx: &LlamaContext<'static>,
    idx: i32,
    chain: &mut LlamaSampler,
    grammar: &mut Option<LlamaSampler>,
    grammar_first: bool,
    report: &mut GenerationReport,
    counters: &Counters,
) -> Result<LlamaToken, BackendError> {
    let Some(g) = grammar.as_mut() else { return Ok(chain.sample(ctx, idx)) };
    let (token, resampled) = sample_constrained(ctx, idx, chain, g, grammar_first)?;
    if resampled {
        report.grammar_resamples += 1;
        counters.grammar_resamples.fetch_add(1, Ordering::Relaxed);
    }
    Ok(token)
}

/// Samples a token that `grammar` accepts: first without the grammar (cheap), and only if
/// the grammar rejects that token, again with the grammar applied to all candidates.
/// Returns the token and whether the resampling was needed. With `grammar_first`, skips the
/// cheap attempt.
pub(super) fn sample_constrained(
    ctx: &LlamaContext<'static>,
    idx: i32,
    chain: &mut LlamaSampler,
    grammar: &mut LlamaSampler,
    grammar_first: bool,
) -> Result<(LlamaToken, bool), BackendError> {
    if !grammar_first {
        let mut cur = ctx.token_data_array_ith(idx);
        chain.apply(&mut cur);
        if let Some(token) = cur.selected_token() {
            let mut single = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 1.0, 0.0)], false);
            grammar.apply(&mut single);
            if single.data.first().is_some_and(|d| d.logit().is_finite()) {
                return Ok((token, false));
            }
        }
    }
    let mut cur = ctx.token_data_array_ith(idx);
    grammar.apply(&mut cur);
    if !cur.data.iter().any(|d| d.logit().is_finite()) {
        return Err(local_err("the output grammar allows no next token"));
    }
    chain.apply(&mut cur);
    let chosen = cur
        .selected
        .and_then(|i| cur.data.get(i))
        .filter(|d| d.logit().is_finite())
        .map(|d| d.id())
        .ok_or_else(|| local_err("sampling under the output grammar selected no token"))?;
    Ok((chosen, !grammar_first))
}

/// Byte offset of the earliest stop string that ends at or after `from`.
pub(super) fn find_stop(out: &[u8], from: usize, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter_map(|s| {
            let s = s.as_bytes();
            let start = from.min(out.len());
            out[start..].windows(s.len()).position(|w| w == s).map(|p| p + start)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_the_prompt_and_are_all_wide() {
        for total in 0..2000 {
            for max in [128, 200, 512] {
                let sizes = batch_sizes(total, max);
                assert_eq!(sizes.iter().sum::<usize>(), total, "{total} {max}");
                assert_eq!(sizes.len(), total.div_ceil(max), "{total} {max}");
                let narrowest = WIDE_BATCH.min(total);
                assert!(sizes.iter().all(|&s| s <= max && s >= narrowest), "{total} {max}: {sizes:?}");
            }
        }
    }

    #[test]
    fn stop_strings_are_found_across_piece_boundaries() {
        let out = b"hello wor";
        assert_eq!(find_stop(out, 0, &["lo w".into()]), Some(3));
        assert_eq!(find_stop(out, 4, &["lo w".into()]), None);
        assert_eq!(find_stop(out, 0, &["zz".into(), "o".into()]), Some(4));
    }
}
