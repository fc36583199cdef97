//! Agents as tokio actors: each owns its role's method, backend handle and selection RNG,
//! and answers requests from the dialogue driver over a channel.

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, oneshot};

use crate::backend::{BackendError, ChatRequest, Message, SharedModel};
use crate::outcome::through_method::{ask_stated, ask_through, AnswerDistribution, AnswerMethod};
use crate::outcome::OutcomeSpec;
use crate::outcome::{self, Extracted};
use crate::scenario::RoleSpec;
use crate::seed;
use crate::vs::{select, Choice, GenerateError, GenerateRequest, Generation, Generator};
use crate::vs::{AnswerShape, OutputConstraint};

/// A finished turn: the candidates and which one was chosen.
#[derive(Debug, Clone)]
pub(crate) struct Spoken {
    /// The candidates generated for the turn, with their calls and usage.
    pub generation: Generation,
    /// Which candidate the role's rule chose, and how.
    pub choice: Choice,
    /// Wall-clock time of the turn, in milliseconds.
    pub latency_ms: u64,
}

/// The moderator's pick of the next speaker.
#[derive(Debug, Clone)]
pub(crate) struct Pick {
    /// Index of the chosen role among the options offered.
    pub option: usize,
}

/// Why an agent could not act.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentError {
    /// The candidates could not be generated.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// A model call failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The model's reply held no usable candidate.
    #[error("the model returned no candidates")]
    NoCandidates,
    /// The agent's task ended before it replied.
    #[error("agent stopped")]
    Stopped,
}

impl AgentError {
    /// The backend calls of the failed turn, when they are known (see
    /// [`GenerateError::calls`]).
    pub fn calls(&self) -> &[crate::vs::CallRecord] {
        match self {
            Self::Generate(e) => e.calls(),
            _ => &[],
        }
    }

    /// Why a call was not sent, when the run's budget refused it.
    pub(crate) fn budget_reached(&self) -> Option<&str> {
        match self {
            Self::Generate(e) => e.budget_reached(),
            Self::Backend(e) => e.budget_reached(),
            _ => None,
        }
    }
}

enum Request {
    Speak {
        turn: usize,
        messages: Vec<Message>,
        reply: oneshot::Sender<Result<Spoken, AgentError>>,
    },
    Pick {
        turn: usize,
        messages: Vec<Message>,
        options: Vec<String>,
        reply: oneshot::Sender<Result<Pick, AgentError>>,
    },
    Answer {
        spec: OutcomeSpec,
        messages: Vec<Message>,
        reply: oneshot::Sender<Result<Answered, AgentError>>,
    },
}

/// An outcome answered by a role: the measured value (with the distribution a list method
/// gave) and, when asked for, what the role stated in the dialogue.
#[derive(Debug, Clone)]
pub(crate) struct Answered {
    /// The value measured through the role's method.
    pub extracted: Extracted,
    /// Every answer a list method gave, with the rule's choice.
    pub distribution: Option<AnswerDistribution>,
    /// What the role stated in the dialogue, when the outcome asks for it.
    pub stated: Option<Extracted>,
}

/// The driver's handle to a running agent; the actor stops when the handle is dropped.
pub(crate) struct AgentHandle {
    tx: mpsc::Sender<Box<Request>>,
}

struct Agent {
    role: RoleSpec,
    model: SharedModel,
    generator: Arc<Generator>,
    /// Seed of this agent in this dialogue; call seeds derive from it.
    seed: u64,
    rng: ChaCha8Rng,
    use_schema: bool,
    /// Models that read the stated measure of outcomes with a `stated_model`.
    extractors: super::run::Extractors,
}

impl AgentHandle {
    /// Starts the actor for `role` with its dialogue-level `seed`.
    pub fn spawn(
        role: RoleSpec,
        model: SharedModel,
        generator: Arc<Generator>,
        seed: u64,
        use_schema: bool,
        extractors: super::run::Extractors,
    ) -> Self {
        // Requests travel boxed: tokio allocates a channel's slots 32 at a time, and 32 unboxed
        // requests took 6 KB per agent, about 12 KB of every dialogue in flight.
        let (tx, mut rx) = mpsc::channel::<Box<Request>>(4);
        let mut agent = Agent {
            role,
            model,
            generator,
            seed,
            rng: seed::rng(seed::derive_named(seed, "select")),
            use_schema,
            extractors,
        };
        tokio::spawn(async move {
            while let Some(request) = rx.recv().await {
                // Each request's work is boxed while it runs, so that an idle agent's task
                // (every agent between its turns) does not hold room for the largest of them.
                match *request {
                    Request::Speak { turn, messages, reply } => {
                        let _ = reply.send(Box::pin(agent.speak(turn, messages)).await);
                    }
                    Request::Pick { turn, messages, options, reply } => {
                        let _ = reply.send(Box::pin(agent.pick(turn, messages, options)).await);
                    }
                    Request::Answer { spec, messages, reply } => {
                        let _ = reply.send(Box::pin(agent.answer(&spec, messages)).await);
                    }
                }
            }
        });
        Self { tx }
    }

    /// Generates the role's candidates for `turn` and chooses one by its rule.
    pub async fn speak(&self, turn: usize, messages: Vec<Message>) -> Result<Spoken, AgentError> {
        self.call(|reply| Request::Speak { turn, messages, reply }).await
    }

    /// Asks the moderator, privately, which of `options` (role names) speaks next; a reply
    /// naming none of them falls back to a seeded uniform pick.
    pub async fn pick(
        &self,
        turn: usize,
        messages: Vec<Message>,
        options: Vec<String>,
    ) -> Result<Pick, AgentError> {
        self.call(|reply| Request::Pick { turn, messages, options, reply }).await
    }

    /// Asks the role the outcome's private question.
    pub async fn answer(&self, spec: OutcomeSpec, messages: Vec<Message>) -> Result<Answered, AgentError> {
        self.call(|reply| Request::Answer { spec, messages, reply }).await
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, AgentError>>) -> Request,
    ) -> Result<T, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Box::new(make(tx))).await.map_err(|_| AgentError::Stopped)?;
        rx.await.map_err(|_| AgentError::Stopped)?
    }
}

impl Agent {
    async fn speak(&mut self, turn: usize, messages: Vec<Message>) -> Result<Spoken, AgentError> {
        let started = std::time::Instant::now();
        let request = GenerateRequest {
            messages,
            method: self.role.sampling.method,
            k: self.role.sampling.k,
            tau: self.role.sampling.tau,
            temperature: self.role.temperature,
            top_p: self.role.top_p,
            max_tokens: self.role.max_tokens,
            seed: seed::derive_named(self.seed, &format!("turn-{turn}")),
            use_schema: self.use_schema,
            shape: crate::vs::ItemShape::Text,
        };
        // The turn's candidates under Table 1's call budget: ⌈N/k⌉ calls of a list method, N
        // calls of a one-reply method; multi-turn and vs-multi in one conversation.
        let generation =
            self.generator.generate_n(self.model.as_ref(), &request, self.role.sampling.items()).await?;
        if generation.candidates.is_empty() {
            return Err(AgentError::NoCandidates);
        }
        let choice = select(&generation.candidates, &self.role.sampling.rule, &mut self.rng);
        Ok(Spoken { generation, choice, latency_ms: started.elapsed().as_millis() as u64 })
    }

    /// Asks the moderator, privately, who speaks next; a reply naming no option falls back
    /// to a seeded uniform pick.
    async fn pick(
        &mut self,
        turn: usize,
        mut messages: Vec<Message>,
        options: Vec<String>,
    ) -> Result<Pick, AgentError> {
        let list = options.iter().map(|o| format!("\"{o}\"")).collect::<Vec<_>>().join(", ");
        messages.push(Message::user(format!(
            "Who should speak next? Answer with only a JSON object {{\"answer\": NAME}} where NAME is one of {list}."
        )));
        let request = ChatRequest {
            messages,
            temperature: self.role.temperature,
            max_tokens: Some(32),
            seed: Some(seed::derive_named(self.seed, &format!("pick-{turn}"))),
            output_schema: self
                .use_schema
                .then(|| OutputConstraint::Choice { choices: options.clone() }.output_schema()),
            ..Default::default()
        };
        let raw = self.model.chat(request).await?.content;
        let kind = AnswerShape::Choice { choices: options.clone() };
        let option = match outcome::parse_answer(&raw, &kind) {
            Some(serde_json::Value::String(name)) => options.iter().position(|o| *o == name),
            _ => None,
        };
        let option = match option {
            Some(i) => i,
            None => {
                use rand::Rng;
                self.rng.random_range(0..options.len())
            }
        };
        Ok(Pick { option })
    }

    /// Answers an outcome question through the role's method (or the outcome's own), with
    /// the role's k, τ and seeded rule, and, when the outcome asks for it, reads what the
    /// role stated in the dialogue.
    async fn answer(&mut self, spec: &OutcomeSpec, messages: Vec<Message>) -> Result<Answered, AgentError> {
        let seed = seed::derive_named(self.seed, &format!("outcome-{}", spec.name));
        let mut sampling = self.role.sampling;
        if let Some(m) = spec.method.filter(|m| *m != sampling.method) {
            sampling.set_method(m);
        }
        let how = AnswerMethod {
            method: sampling.method,
            n: sampling.items(),
            k: sampling.k,
            tau: sampling.tau,
            rule: sampling.rule,
        };
        let own_words: Vec<String> = messages
            .iter()
            .filter(|m| m.role == crate::backend::Role::Assistant)
            .map(|m| m.content.clone())
            .collect();
        let (extracted, distribution) = ask_through(
            &self.generator,
            self.model.as_ref(),
            spec,
            &how,
            messages,
            seed,
            self.role.temperature,
            self.use_schema,
            &mut self.rng,
        )
        .await?;
        let stated = if spec.stated {
            let seed = seed::derive_named(self.seed, &format!("stated-{}", spec.name));
            let model = match &spec.stated_model {
                Some(m) => self.extractors.0.get(m).cloned().ok_or_else(|| {
                    AgentError::Backend(BackendError::Config(format!(
                        "the stated_model `{m}` was not opened"
                    )))
                })?,
                None => self.model.clone(),
            };
            Some(ask_stated(model.as_ref(), spec, &self.role.name, &own_words, seed, self.use_schema).await?)
        } else {
            None
        };
        Ok(Answered { extracted, distribution, stated })
    }
}
