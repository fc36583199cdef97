//! An OpenAI-compatible mock server for tests and benchmarks.
//!
//! Experiments at scale must survive rate limits, server errors, stalls and malformed
//! replies, and the runner's throughput and memory must be measured without paying for a
//! model. The mock answers `POST /v1/chat/completions` and `POST /v1/embeddings` in the
//! wire format the client speaks ([`crate::backend::wire`]), with replies that depend only
//! on the request (so runs against it are reproducible). It answers every prompt method,
//! outcome question and survey item: as the `response_format` JSON schema says when one is
//! sent, else as the prompt's instruction asks, in one of the plain-text shapes models use
//! without a schema. It fills `usage`, and injects faults at configured rates: 429 (with
//! `Retry-After`) or 500, and stalls longer than a client's timeout. Fault draws come from a
//! seeded RNG; they never change what a successful reply says.

mod reply;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use self::reply::Ask;
use crate::backend::wire::{
    ChatCompletion, ChatCompletionRequest, Choice, CompletionUsage, Embedding, EmbeddingsRequest,
    EmbeddingsResponse, EmbeddingsUsage, ErrorBody, ReplyMessage,
};
use crate::seed;

/// What successful chat replies look like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MockStyle {
    /// Well-formed JSON that matches the requested schema.
    #[default]
    Vs,
    /// Replies the candidate parser has to repair (code fences, trailing commas,
    /// percentages, prose around the JSON, cut-off lists), or cannot.
    Malformed,
    /// A third of the replies malformed, chosen by the request's hash.
    Mixed,
}

impl FromStr for MockStyle {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vs" => Ok(Self::Vs),
            "malformed" => Ok(Self::Malformed),
            "mixed" => Ok(Self::Mixed),
            other => {
                Err(MockError::Config(format!("unknown style `{other}`; expected vs, malformed or mixed")))
            }
        }
    }
}

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Delay before every answer (errors included).
    pub latency: Duration,
    /// Fraction of chat requests answered with 429 (with `Retry-After`) or 500, half each.
    pub error_rate: f64,
    /// Fraction of chat requests that stall for [`MockConfig::stall`] before answering.
    pub timeout_rate: f64,
    /// How long a stalled request waits; longer than the client's timeout.
    pub stall: Duration,
    /// The wait a 429 asks for (`Retry-After` in whole seconds, rounded up, and
    /// `retry-after-ms` exactly).
    pub retry_after: Duration,
    /// What successful chat replies look like.
    pub style: MockStyle,
    /// Seed of the fault draws and of every reply's content.
    pub seed: u64,
    /// Embedding length when a request does not give `dimensions`.
    pub embedding_dims: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            error_rate: 0.0,
            timeout_rate: 0.0,
            stall: Duration::from_secs(600),
            retry_after: Duration::from_secs(1),
            style: MockStyle::Vs,
            seed: 0,
            embedding_dims: 256,
        }
    }
}

/// Why the mock could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// A setting is invalid (e.g. an unknown style).
    #[error("mock server configuration: {0}")]
    Config(String),
    /// The listening socket could not be opened or served.
    #[error("mock server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters of what the mock did, for tests that check faults really happened.
#[derive(Debug, Default)]
pub struct MockStats {
    /// Chat requests received.
    pub chat_requests: AtomicU64,
    /// Embedding requests received.
    pub embedding_requests: AtomicU64,
    /// Chat requests answered with 429.
    pub rate_limited: AtomicU64,
    /// Chat requests answered with 500.
    pub server_errors: AtomicU64,
    /// Chat requests stalled before answering.
    pub stalled: AtomicU64,
    /// Chat replies made malformed on purpose.
    pub malformed: AtomicU64,
    /// Requests refused with 400 (body not JSON, or not the route's request).
    pub bad_requests: AtomicU64,
}

impl MockStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A counter's current value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Shared {
    config: MockConfig,
    faults: Mutex<ChaCha8Rng>,
    stats: Arc<MockStats>,
}

/// The mock's routes, and the counters they update.
pub fn router(config: MockConfig) -> Result<(Router, Arc<MockStats>), MockError> {
    for (name, rate) in [("error rate", config.error_rate), ("timeout rate", config.timeout_rate)] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(MockError::Config(format!("{name} must be in [0, 1], got {rate}")));
        }
    }
    if config.error_rate + config.timeout_rate > 1.0 {
        return Err(MockError::Config("error rate + timeout rate must not exceed 1".into()));
    }
    let stats = Arc::new(MockStats::default());
    let shared = Arc::new(Shared {
        faults: Mutex::new(seed::rng(seed::derive_named(config.seed, "faults"))),
        config,
        stats: stats.clone(),
    });
    let router = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { "ok" }))
        .with_state(shared);
    Ok((router, stats))
}

/// Serves the mock on `listener` until the task is dropped or the listener fails.
pub async fn serve(config: MockConfig, listener: tokio::net::TcpListener) -> Result<(), MockError> {
    let (router, _) = router(config)?;
    axum::serve(listener, router).await?;
    Ok(())
}

/// A mock running in the background on 127.0.0.1; stopped when dropped.
pub struct MockServer {
    addr: SocketAddr,
    stats: Arc<MockStats>,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Binds 127.0.0.1 on a free port and serves `config` there.
    pub async fn start(config: MockConfig) -> Result<Self, MockError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (router, stats) = router(config)?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "mock server stopped");
            }
        });
        Ok(Self { addr, stats, task })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`, as an OpenAI base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// What the server has done so far.
    pub fn stats(&self) -> &MockStats {
        &self.stats
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Fault {
    None,
    RateLimited,
    ServerError,
    Stall,
}

impl Shared {
    fn draw_fault(&self) -> Fault {
        let (u, v) = {
            let mut rng = self.faults.lock().unwrap_or_else(|p| p.into_inner());
            (rng.random::<f64>(), rng.random::<f64>())
        };
        let c = &self.config;
        if u < c.error_rate {
            if v < 0.5 {
                Fault::RateLimited
            } else {
                Fault::ServerError
            }
        } else if u < c.error_rate + c.timeout_rate {
            Fault::Stall
        } else {
            Fault::None
        }
    }
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, axum::Json(ErrorBody::new(kind, message))).into_response()
}

/// A 400 for a body that is not JSON or not the request the route takes, counted.
fn bad_request(stats: &MockStats, what: &str, e: &serde_json::Error) -> Response {
    MockStats::bump(&stats.bad_requests);
    let message = if e.is_syntax() || e.is_eof() {
        format!("body is not JSON: {e}")
    } else {
        format!("not {what}: {e}")
    };
    error_response(StatusCode::BAD_REQUEST, "invalid_request_error", &message)
}

async fn models() -> impl IntoResponse {
    axum::Json(json!({"object": "list", "data": [{"id": "mock", "object": "model", "owned_by": "vsim"}]}))
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    MockStats::bump(&shared.stats.chat_requests);
    let config = &shared.config;
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    match shared.draw_fault() {
        Fault::RateLimited => {
            MockStats::bump(&shared.stats.rate_limited);
            let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, "rate_limit", "mock rate limit");
            let secs = config.retry_after.as_secs() + u64::from(config.retry_after.subsec_nanos() > 0);
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            headers.insert("retry-after-ms", HeaderValue::from(config.retry_after.as_millis() as u64));
            return response;
        }
        Fault::ServerError => {
            MockStats::bump(&shared.stats.server_errors);
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "mock server error");
        }
        Fault::Stall => {
            MockStats::bump(&shared.stats.stalled);
            tokio::time::sleep(config.stall).await;
        }
        Fault::None => {}
    }
    let request: ChatCompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&shared.stats, "a chat completion request", &e),
    };
    // The reply depends on the whole request body (messages, model, seed, parameters).
    let hash = seed::derive_named(config.seed, &String::from_utf8_lossy(&body));
    let mut rng = seed::rng(hash);
    let schema = request.schema();
    let ask = match schema {
        Some(schema) => Ask::from_schema(schema),
        None => Ask::from_prompt(&request.messages),
    };
    let malformed = match config.style {
        MockStyle::Vs => false,
        MockStyle::Malformed => true,
        MockStyle::Mixed => hash.is_multiple_of(3),
    };
    let content = reply::content(&ask, schema.is_some(), malformed, &mut rng);
    if malformed {
        MockStats::bump(&shared.stats.malformed);
    }
    let prompt_tokens: u64 = request.messages.iter().map(|m| approx_tokens(&m.content)).sum();
    let completion_tokens = approx_tokens(&content);
    let model = if request.model.is_empty() { "mock" } else { request.model.as_ref() };
    axum::Json(ChatCompletion {
        id: Some(format!("chatcmpl-mock-{hash:016x}")),
        object: Some("chat.completion".into()),
        created: Some(0),
        model: Some(model.to_string()),
        choices: Some(vec![Choice {
            index: Some(0),
            message: Some(ReplyMessage {
                role: Some("assistant".into()),
                content: Some(content),
                refusal: None,
            }),
            finish_reason: Some("stop".into()),
        }]),
        usage: Some(CompletionUsage::new(prompt_tokens, completion_tokens)),
        error: None,
    })
    .into_response()
}

/// Roughly four characters per token, as for English text.
fn approx_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4).max(1)
}

async fn embeddings(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    MockStats::bump(&shared.stats.embedding_requests);
    let config = &shared.config;
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    let request: EmbeddingsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&shared.stats, "an embeddings request", &e),
    };
    let dims = request.dimensions.unwrap_or(config.embedding_dims).clamp(1, 8192);
    let model = if request.model.is_empty() { "mock-embedding" } else { request.model.as_ref() };
    let inputs = request.input.texts();
    let data: Vec<Embedding> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| Embedding {
            object: Some("embedding".into()),
            index: Some(i),
            embedding: unit_vector(config.seed, text, dims),
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|t| approx_tokens(t)).sum();
    axum::Json(EmbeddingsResponse {
        object: Some("list".into()),
        data,
        model: Some(model.to_string()),
        usage: Some(EmbeddingsUsage { prompt_tokens: Some(tokens), total_tokens: Some(tokens) }),
    })
    .into_response()
}

/// A pseudo-random unit vector that depends only on `seed` and `text` (normal coordinates
/// by Box–Muller, so directions are uniform on the sphere).
pub(crate) fn unit_vector(seed_value: u64, text: &str, dims: usize) -> Vec<f64> {
    let mut rng = seed::rng(seed::derive_named(seed_value, text));
    let mut v: Vec<f64> = (0..dims)
        .map(|_| {
            let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else if let Some(first) = v.first_mut() {
        *first = 1.0;
    }
    v
}

#[cfg(test)]
mod tests;
