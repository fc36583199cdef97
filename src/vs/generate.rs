//! The one engine that asks a model for items: build the method's prompt, call the
//! backend, parse, check, retry once.
//!
//! Every asker goes through it: a dialogue turn (free text), an outcome question (a number
//! within bounds or one of given options) and a survey item (one of its options) differ
//! only in their [`ItemShape`]. [`Generator::generate`] is one call of a method;
//! [`Generator::generate_n`] gathers N items with the paper's call counts (Table 1).
//!
//! The method table is [`Method`] itself ([`Method::calls_for`],
//! [`Method::continues_conversation`], [`Method::asks_for_list`],
//! [`Method::is_verbalized`]) with its first and follow-up templates in
//! [`PromptTemplates`]; the shape adds one sentence to the instruction, its constraint and
//! its check ([`ItemShape`]). Adding a method means a variant of [`Method`], its entries
//! there, its templates, and its parse in [`parse_reply`].

use std::borrow::Cow;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::item::{Checked, ItemShape};
use super::parse::{parse_candidates_with, parse_cot, parse_single, ParseOptions};
use super::prompt::TemplateError;
use super::OutputConstraint;
use super::{Candidate, KSpec, Method, ParseError, ParsedReply, PromptTemplates, Repair};
use crate::backend::{BackendError, ChatModel, ChatRequest, Message, Role, Usage};
use crate::seed;

/// Everything needed for one generation step.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The conversation so far from the speaker's point of view (system prompt first).
    pub messages: Vec<Message>,
    /// The prompting method.
    pub method: Method,
    /// How many candidates a list method asks for.
    pub k: KSpec,
    /// Verbalized-probability threshold stated in the prompt.
    pub tau: Option<f64>,
    /// Sampling temperature; `None` leaves the backend's default.
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass; `None` leaves the backend's default.
    pub top_p: Option<f32>,
    /// Cap on each reply's length, in tokens.
    pub max_tokens: Option<u32>,
    /// Seed of the first call; later calls' seeds derive from it.
    pub seed: u64,
    /// Send a JSON schema / grammar with list methods.
    pub use_schema: bool,
    /// What each item is: free text (a turn) or an answer of a given type.
    pub shape: ItemShape,
}

impl GenerateRequest {
    /// A request with `k` = 5, no tau, the backend's default sampling parameters, seed 0 and
    /// the schema on.
    pub fn new(messages: Vec<Message>, method: Method) -> Self {
        Self {
            messages,
            method,
            k: KSpec::Fixed { k: 5 },
            tau: None,
            temperature: None,
            top_p: None,
            max_tokens: None,
            seed: 0,
            use_schema: true,
            shape: ItemShape::Text,
        }
    }
}

/// A record of one backend call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The reply exactly as the backend returned it.
    pub raw: String,
    /// Wall-clock time of the call, in milliseconds.
    pub latency_ms: u64,
    /// Token counts, when the backend reported them.
    pub usage: Option<Usage>,
    /// Whether the reply came from the response cache.
    pub cached: bool,
    /// The seed sent with the call.
    #[serde(default)]
    pub seed: u64,
    /// Why the reply could not be parsed (the call was then retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

/// The candidates of one step and how they were obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The candidates, in the order the model gave them.
    pub candidates: Vec<Candidate>,
    /// The model's reasoning, for methods that ask for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Every backend call, retries included, in order.
    pub calls: Vec<CallRecord>,
    /// Tokens all the calls used.
    pub usage: Usage,
    /// Items of accepted replies that broke the shape asked for, with why (answers only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

/// Why a generation step failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A backend call failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The reply, and the reply to the retry, could not be parsed.
    #[error("unparseable reply after retry: {error}")]
    Unparseable {
        /// Why the retry's reply did not parse.
        error: ParseError,
        /// The step's backend calls, the two unparseable ones last: kept so that a failed
        /// turn's raw replies reach the transcript.
        calls: Vec<CallRecord>,
    },
    /// A prompt template did not render.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl GenerateError {
    /// Why a call was not sent, when the run's budget refused it.
    pub(crate) fn budget_reached(&self) -> Option<&str> {
        match self {
            Self::Backend(e) => e.budget_reached(),
            _ => None,
        }
    }
}

impl Generation {
    /// A gathering that gave no usable item: the calls it made (their raw replies, seeds
    /// and usage), no candidates. Askers that go on without an answer (an outcome, a survey
    /// item) keep its calls through this.
    pub(crate) fn without_items(calls: Vec<CallRecord>) -> Self {
        finish(Vec::new(), calls)
    }
}

impl GenerateError {
    /// The backend calls made before the failure, when they are known (an unparseable
    /// reply); empty otherwise.
    pub fn calls(&self) -> &[CallRecord] {
        match self {
            Self::Unparseable { calls, .. } => calls,
            _ => &[],
        }
    }
}

/// Runs generation steps with a set of prompt templates.
#[derive(Debug, Clone, Default)]
pub struct Generator {
    /// The instruction templates of each method.
    pub templates: PromptTemplates,
}

/// The outcome of one call (with its retry, if any).
struct Step {
    /// The reply's items that fit the shape.
    parsed: ParsedReply,
    /// Items of the reply that broke the shape, with why.
    refused: Vec<String>,
    /// The conversation including the accepted reply, for follow-up prompts.
    conversation: Vec<Message>,
}

impl Generator {
    /// A generator using `templates`.
    pub fn new(templates: PromptTemplates) -> Self {
        Self { templates }
    }

    /// One step of `req.method` against `model`: one call (plus one retry on an unparseable
    /// reply). For `multi-turn` and `vs-multi` this is the first call of the conversation.
    ///
    /// The instruction is appended to the last message after a blank line when that is a user
    /// message, and sent as a new user message otherwise. On an unparseable reply (or one
    /// whose every item breaks the shape) the conversation is extended with that reply and a
    /// user message naming the error, and sent again with seed `seed::derive(req.seed, 1)`;
    /// a second failure is [`GenerateError::Unparseable`].
    pub async fn generate(
        &self,
        model: &dyn ChatModel,
        req: &GenerateRequest,
    ) -> Result<Generation, GenerateError> {
        let instruction = self.instruction(req, false)?;
        let messages = with_instruction(&req.messages, &instruction);
        let mut calls = Vec::new();
        let step = self.call(model, req, Cow::Owned(messages), req.seed, &mut calls).await?;
        Ok(finish(vec![step], calls))
    }

    /// `n` items of `req.method` with the paper's call counts ([`Method::calls_for`]):
    /// - `direct`, `cot`: n independent calls;
    /// - `sequence`, `vs-standard`, `vs-cot`: ceil(n / k) independent calls;
    /// - `multi-turn`: n calls in one conversation, each after the first asking for another;
    /// - `vs-multi`: ceil(n / k) calls in one conversation, each after the first asking for
    ///   k more.
    ///
    /// Here k is `req.k.max()`. The first call uses `req.seed` (so `n` ≤ k gives the same as
    /// [`Generator::generate`]); call i > 0 uses `seed::derive(seed::derive_named(req.seed,
    /// "call"), i)`. The items of all calls are pooled in call order and cut to the first
    /// `n`; their probabilities (each call's summing to 1) are then renormalised over the
    /// pooled list, so an item keeps its weight relative to the others of its call and every
    /// call counts equally.
    ///
    /// Duplicates: within one reply, items with the same text (up to whitespace; for an
    /// answer, the same checked value) are merged, summing their probabilities (recorded as
    /// [`Repair::Merged`]); across calls they are kept, since how often a reply recurs is
    /// what a diversity comparison measures and what uniform selection over independent
    /// calls samples by. A model-decided k can give fewer than `n` items. Reasoning of
    /// several calls is joined with blank lines.
    pub async fn generate_n(
        &self,
        model: &dyn ChatModel,
        req: &GenerateRequest,
        n: usize,
    ) -> Result<Generation, GenerateError> {
        if n == 0 {
            return Ok(finish(Vec::new(), Vec::new()));
        }
        let n_calls = req.method.calls_for(n, req.k.max());
        let same_conversation = req.method.continues_conversation();
        let first_messages = with_instruction(&req.messages, &self.instruction(req, false)?);
        let follow_up = if same_conversation { Some(self.instruction(req, true)?) } else { None };
        let call_seeds = seed::derive_named(req.seed, "call");

        let mut calls = Vec::new();
        let mut steps = Vec::with_capacity(n_calls);
        let mut conversation: Option<Vec<Message>> = None;
        for i in 0..n_calls {
            let call_seed = if i == 0 { req.seed } else { seed::derive(call_seeds, i as u64) };
            let messages = match (&follow_up, conversation.take()) {
                (Some(more), Some(mut conv)) => {
                    conv.push(Message::user(more.clone()));
                    Cow::Owned(conv)
                }
                _ => Cow::Borrowed(first_messages.as_slice()),
            };
            let mut step = self.call(model, req, messages, call_seed, &mut calls).await?;
            if same_conversation {
                conversation = Some(std::mem::take(&mut step.conversation));
            }
            steps.push(step);
        }
        let mut gen = finish(steps, calls);
        gen.candidates.truncate(n);
        renormalise(&mut gen.candidates);
        Ok(gen)
    }

    /// The method's first instruction (or, with `follow_up`, the one that continues its
    /// conversation), followed by the shape's sentence when the items are answers.
    fn instruction(&self, req: &GenerateRequest, follow_up: bool) -> Result<String, TemplateError> {
        let base = if follow_up {
            self.templates.follow_up(req.method, req.k, req.tau)?
        } else {
            self.templates.instruction(req.method, req.k, req.tau)?
        };
        Ok(match req.shape.instruction(req.method) {
            Some(sentence) => format!("{base}\n{sentence}"),
            None => base,
        })
    }

    /// One call with `messages`, retried once on an unparseable reply. The step keeps the
    /// conversation only for a method whose next call continues it; the messages are
    /// copied once, into the request, when the reply parses.
    async fn call(
        &self,
        model: &dyn ChatModel,
        req: &GenerateRequest,
        messages: Cow<'_, [Message]>,
        call_seed: u64,
        calls: &mut Vec<CallRecord>,
    ) -> Result<Step, GenerateError> {
        let (raw, result) = self.call_once(model, req, messages.to_vec(), call_seed, calls).await?;
        let err = match result {
            Ok((parsed, refused)) => {
                let conversation = if req.method.continues_conversation() {
                    let mut conversation = messages.into_owned();
                    conversation.push(Message::assistant(raw));
                    conversation
                } else {
                    Vec::new()
                };
                return Ok(Step { parsed, refused, conversation });
            }
            Err(e) => e,
        };
        // A list or a reasoned reply is JSON; a plain reply is prose.
        let json = req.method.asks_for_list() || req.method.reasons_first();
        let mut retry = messages.into_owned();
        retry.push(Message::assistant(raw));
        retry.push(Message::user(self.templates.retry_message(&err.to_string(), json)?));
        let retry_seed = seed::derive(call_seed, 1);
        let (raw, result) = self.call_once(model, req, retry.clone(), retry_seed, calls).await?;
        match result {
            Ok((parsed, refused)) => {
                retry.push(Message::assistant(raw));
                Ok(Step { parsed, refused, conversation: retry })
            }
            Err(error) => Err(GenerateError::Unparseable { error, calls: calls.clone() }),
        }
    }

    /// One backend call, its parse and its check, recorded in `calls`.
    async fn call_once(
        &self,
        model: &dyn ChatModel,
        req: &GenerateRequest,
        messages: Vec<Message>,
        call_seed: u64,
        calls: &mut Vec<CallRecord>,
    ) -> Result<(String, Result<(ParsedReply, Vec<String>), ParseError>), GenerateError> {
        let request = ChatRequest {
            messages,
            temperature: req.temperature,
            top_p: req.top_p,
            max_tokens: req.max_tokens,
            seed: Some(call_seed),
            stop: Vec::new(),
            output_schema: constraint_for(req).map(|c| c.output_schema()),
        };
        let started = Instant::now();
        let response = model.chat(request).await?;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let parsed = parse_reply(req.method, req.k, &response.content)
            .and_then(|parsed| check_items(parsed, &req.shape));
        calls.push(CallRecord {
            raw: response.content.clone(),
            latency_ms,
            usage: response.usage,
            cached: response.cached,
            seed: call_seed,
            parse_error: parsed.as_ref().err().map(|e| e.to_string()),
        });
        Ok((response.content, parsed))
    }
}

/// The output constraint of the request's method and shape, when the schema is on.
pub(crate) fn constraint_for(req: &GenerateRequest) -> Option<OutputConstraint> {
    if !req.use_schema {
        return None;
    }
    req.shape.constraint(req.method, req.k.min(), req.k.max())
}

/// Parses a reply as `method` asks for it.
pub fn parse_reply(method: Method, k: KSpec, raw: &str) -> Result<ParsedReply, ParseError> {
    let spec = method.spec();
    if spec.list {
        parse_candidates_with(raw, &ParseOptions { k: Some(k), ignore_probabilities: !spec.probabilities })
    } else if spec.reasoning {
        parse_cot(raw)
    } else {
        parse_single(raw)
    }
}

/// Checks a parsed reply's items against `shape`: free text passes whole; an answer keeps
/// its checked value as its text, items with the same value merge (summing probabilities),
/// and the others are set aside with why. A reply with no item that fits is
/// [`ParseError::NoAnswer`], so it is asked again like an unparseable one.
pub(crate) fn check_items(
    parsed: ParsedReply,
    shape: &ItemShape,
) -> Result<(ParsedReply, Vec<String>), ParseError> {
    if *shape == ItemShape::Text {
        return Ok((parsed, Vec::new()));
    }
    let mut kept: Vec<Candidate> = Vec::with_capacity(parsed.candidates.len());
    let mut refused = Vec::new();
    for mut c in parsed.candidates {
        match shape.check(&c.text) {
            Checked::Valid { text, .. } => match kept.iter_mut().find(|k| k.text == text) {
                Some(first) => {
                    first.probability += c.probability;
                    first.raw_probability = match (first.raw_probability, c.raw_probability) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                    match first.repairs.iter_mut().find_map(|r| match r {
                        Repair::Merged { duplicates } => Some(duplicates),
                        _ => None,
                    }) {
                        Some(d) => *d += 1,
                        None => first.repairs.push(Repair::Merged { duplicates: 1 }),
                    }
                }
                None => {
                    c.text = text;
                    kept.push(c);
                }
            },
            Checked::Refused(why) => refused.push(why),
            Checked::Nothing => refused.push(format!("`{}` is not an answer", c.text.trim())),
        }
    }
    if kept.is_empty() {
        let why =
            if refused.is_empty() { "the reply held no answer".to_string() } else { refused.join("; ") };
        return Err(ParseError::NoAnswer(why));
    }
    renormalise(&mut kept);
    Ok((ParsedReply { candidates: kept, reasoning: parsed.reasoning }, refused))
}

/// `messages` with `instruction` appended to the last user message after a blank line, or
/// as a new user message when the last message is not from the user.
pub(crate) fn with_instruction(messages: &[Message], instruction: &str) -> Vec<Message> {
    let mut out = messages.to_vec();
    match out.last_mut() {
        Some(last) if last.role == Role::User => {
            if last.content.trim().is_empty() {
                last.content = instruction.to_string();
            } else {
                last.content = format!("{}\n\n{}", last.content.trim_end(), instruction);
            }
        }
        _ => out.push(Message::user(instruction)),
    }
    out
}

fn finish(steps: Vec<Step>, calls: Vec<CallRecord>) -> Generation {
    let mut usage = Usage::default();
    for c in &calls {
        if let Some(u) = c.usage {
            usage += u;
        }
    }
    let reasonings: Vec<String> = steps.iter().filter_map(|s| s.parsed.reasoning.clone()).collect();
    let reasoning = if reasonings.is_empty() { None } else { Some(reasonings.join("\n\n")) };
    let refused = steps.iter().flat_map(|s| s.refused.iter().cloned()).collect();
    let candidates = steps.into_iter().flat_map(|s| s.parsed.candidates).collect();
    Generation { candidates, reasoning, calls, usage, refused }
}

/// Rescales probabilities to sum to 1 (uniform when they sum to 0).
fn renormalise(candidates: &mut [Candidate]) {
    let sum: f64 = candidates.iter().map(|c| c.probability).filter(|p| p.is_finite() && *p > 0.0).sum();
    let n = candidates.len() as f64;
    for c in candidates.iter_mut() {
        let p = if c.probability.is_finite() && c.probability > 0.0 { c.probability } else { 0.0 };
        c.probability = if sum > 0.0 { p / sum } else { 1.0 / n };
    }
}
