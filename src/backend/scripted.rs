//! A scripted backend for tests: replies given in order, or computed by a function.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{BackendError, ChatModel, ChatRequest, ChatResponse, Usage};

type ReplyFn = dyn Fn(&ChatRequest) -> Result<String, BackendError> + Send + Sync;

enum Script {
    Queue(Mutex<VecDeque<Result<String, BackendError>>>),
    Function(Box<ReplyFn>),
}

/// Replies from a script, recording every request it saw.
#[derive(Clone)]
pub struct ScriptedModel {
    name: String,
    script: Arc<Script>,
    seen: Arc<Mutex<Vec<ChatRequest>>>,
}

impl ScriptedModel {
    /// Replies in order; a request after the last reply is an error.
    pub fn from_replies<I, S>(replies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::from_results(replies.into_iter().map(|s| Ok(s.into())))
    }

    /// Replies or errors in order.
    pub fn from_results<I>(results: I) -> Self
    where
        I: IntoIterator<Item = Result<String, BackendError>>,
    {
        Self::new(Script::Queue(Mutex::new(results.into_iter().collect())))
    }

    /// Replies computed from each request (must be deterministic for reproducible tests).
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(&ChatRequest) -> Result<String, BackendError> + Send + Sync + 'static,
    {
        Self::new(Script::Function(Box::new(f)))
    }

    fn new(script: Script) -> Self {
        Self { name: "scripted".into(), script: Arc::new(script), seen: Arc::default() }
    }

    /// Rename the backend (its `id()`), e.g. to tell two roles apart.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.seen.lock().expect("scripted lock").clone()
    }
}

#[async_trait::async_trait]
impl ChatModel for ScriptedModel {
    fn id(&self) -> String {
        self.name.clone()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, BackendError> {
        let reply = match &*self.script {
            Script::Queue(q) => q
                .lock()
                .expect("scripted lock")
                .pop_front()
                .unwrap_or_else(|| Err(BackendError::Scripted("no more scripted replies".into()))),
            Script::Function(f) => f(&request),
        };
        self.seen.lock().expect("scripted lock").push(request.clone());
        let content = reply?;
        let prompt_tokens =
            request.messages.iter().map(|m| m.content.split_whitespace().count() as u64).sum();
        let completion_tokens = content.split_whitespace().count() as u64;
        Ok(ChatResponse {
            content,
            usage: Some(Usage { prompt_tokens, completion_tokens }),
            finish_reason: Some("stop".into()),
            cached: false,
        })
    }
}
