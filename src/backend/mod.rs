//! Chat backends: one trait ([`ChatModel`]) over every way vsim can talk to a model.
//!
//! - [`openai`]: any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama,
//!   llama.cpp's server, OpenRouter, ...).
//! - `local`: the embedded llama.cpp model (feature `local`).
//! - [`scripted`]: replies given in order or by a function, for tests.
//! - [`resilient`] and [`cache`]: wrappers that add retries, limits and an on-disk cache
//!   around any backend.
//!
//! [`spec`] turns a `--model SPEC` string into a configured backend.
//!
//! The layer knows nothing of vsim's domain: a request is messages, sampling parameters and,
//! when the reply has a shape, a JSON schema ([`OutputSchema`]) as OpenAI's API takes it.
//! Servers get the schema as `response_format`; the embedded model gets it as a grammar
//! ([`grammar`]).

pub mod cache;
#[cfg(feature = "local")]
mod compute_threads;
pub mod error;
pub mod factory;
pub mod grammar;
#[cfg(feature = "local")]
pub mod local;
pub mod openai;
pub mod preflight;
pub mod resilient;
pub mod scripted;
pub mod spec;
pub mod wire;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use error::BackendError;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation (persona, task).
    System,
    /// The other side of the conversation, as the model sees it.
    User,
    /// The model's own earlier turns.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: Role::System, content: content.into() }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: Role::User, content: content.into() }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: Role::Assistant, content: content.into() }
    }
}

/// A chat request; everything that influences the reply is in here (and so in the cache key).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// Sampling temperature; `None` leaves the backend's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass; `None` leaves the backend's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Cap on the reply's length, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling seed, for backends that honour one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Strings that end the reply when generated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// The JSON schema the reply must follow; backends enforce it as well as they can
    /// (servers as `response_format`, the embedded model as a grammar).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<OutputSchema>,
}

/// A JSON schema for a reply, named, as OpenAI's `response_format.json_schema` carries it.
/// The schema is shared: a run sends the same few schemas on every call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    /// A short name for the shape (`response_format.json_schema.name`).
    pub name: String,
    /// The schema itself.
    pub schema: Arc<Value>,
}

impl OutputSchema {
    /// Whether any subschema uses `keyword`.
    pub fn uses(&self, keyword: &str) -> bool {
        fn walk(schema: &Value, keyword: &str) -> bool {
            match schema {
                Value::Object(map) => map.iter().any(|(k, v)| {
                    k == keyword
                        || if k == "properties" {
                            subschemas(v).any(|s| walk(s, keyword))
                        } else {
                            walk(v, keyword)
                        }
                }),
                Value::Array(items) => items.iter().any(|s| walk(s, keyword)),
                _ => false,
            }
        }
        walk(&self.schema, keyword)
    }

    /// The schema with `keyword` removed from every subschema, for a server that rejects it
    /// (a property of that name stays).
    pub fn without(&self, keyword: &str) -> Value {
        fn strip(schema: &Value, keyword: &str) -> Value {
            match schema {
                Value::Object(map) => Value::Object(
                    map.iter()
                        .filter(|(k, _)| *k != keyword)
                        .map(|(k, v)| {
                            let v = match (k.as_str(), v) {
                                ("properties", Value::Object(props)) => Value::Object(
                                    props.iter().map(|(name, s)| (name.clone(), strip(s, keyword))).collect(),
                                ),
                                _ => strip(v, keyword),
                            };
                            (k.clone(), v)
                        })
                        .collect(),
                ),
                Value::Array(items) => Value::Array(items.iter().map(|s| strip(s, keyword)).collect()),
                other => other.clone(),
            }
        }
        strip(&self.schema, keyword)
    }
}

/// The values of a `properties` map: subschemas, whose keys are property names.
fn subschemas(properties: &Value) -> impl Iterator<Item = &Value> {
    properties.as_object().into_iter().flat_map(|m| m.values())
}

impl ChatRequest {
    /// A request for `messages` with every sampling parameter left to the backend.
    pub fn new(messages: Vec<Message>) -> Self {
        Self { messages, ..Default::default() }
    }
}

/// Token counts as reported by the server (or counted by the embedded model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the request's messages.
    pub prompt_tokens: u64,
    /// Tokens generated in the reply.
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt and completion tokens together.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.prompt_tokens += rhs.prompt_tokens;
        self.completion_tokens += rhs.completion_tokens;
    }
}

/// A model's reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The reply text.
    pub content: String,
    /// Token counts, when the backend reports them.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Why generation stopped (`stop`, `length`, ...), as the backend reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// True when the reply came from the on-disk cache rather than the model.
    #[serde(default, skip_serializing)]
    pub cached: bool,
}

/// Anything that answers chat requests.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// A stable description of the backend and model (e.g. `openai:gpt-4o-mini@https://...`);
    /// part of the cache key, never contains a secret.
    fn id(&self) -> String;

    /// Sends one request and waits for the reply.
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, BackendError>;
}

/// Shared handle to a backend.
pub type SharedModel = Arc<dyn ChatModel>;

#[async_trait::async_trait]
impl<T: ChatModel + ?Sized> ChatModel for Arc<T> {
    fn id(&self) -> String {
        (**self).id()
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, BackendError> {
        (**self).chat(request).await
    }
}
