//! An OpenAI-compatible mock server for tests and benchmarks.
//!
//! Experiments at scale must survive rate limits, server errors, stalls and malformed
//! replies, and the runner's throughput and memory must be measured without paying for a
//! model. The mock answers `POST /v1/chat/completions` and `POST /v1/embeddings` with
//! replies that depend only on the request (so runs against it are reproducible), honours
//! `response_format` JSON schemas (a verbalized candidate list with as many items as the
//! schema allows, `{"answer": ...}` for number and choice schemas, plain text otherwise),
//! fills `usage`, and injects faults at configured rates: 429 (with `Retry-After`) or 500,
//! and stalls longer than a client's timeout. Fault draws come from a seeded RNG; they
//! never change what a successful reply says.

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
use serde_json::{json, Value};

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
    #[error("mock server configuration: {0}")]
    Config(String),
    #[error("mock server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters of what the mock did, for tests that check faults really happened.
#[derive(Debug, Default)]
pub struct MockStats {
    pub chat_requests: AtomicU64,
    pub embedding_requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub server_errors: AtomicU64,
    pub stalled: AtomicU64,
    pub malformed: AtomicU64,
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

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/v1`, as an OpenAI base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

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
    (status, axum::Json(json!({"error": {"message": message, "type": kind}}))).into_response()
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
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            MockStats::bump(&shared.stats.bad_requests);
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("body is not JSON: {e}"),
            );
        }
    };
    let Some(messages) = request.get("messages").filter(|m| m.is_array()) else {
        MockStats::bump(&shared.stats.bad_requests);
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "`messages` must be an array",
        );
    };
    // The reply depends on the whole request body (messages, model, seed, parameters).
    let hash = seed::derive_named(config.seed, &String::from_utf8_lossy(&body));
    let mut rng = seed::rng(hash);
    let schema = request.pointer("/response_format/json_schema/schema");
    let malformed = match config.style {
        MockStyle::Vs => false,
        MockStyle::Malformed => true,
        MockStyle::Mixed => hash.is_multiple_of(3),
    };
    let content = reply_content(schema, malformed, &mut rng);
    if malformed {
        MockStats::bump(&shared.stats.malformed);
    }
    let prompt_tokens = messages
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m.get("content").and_then(Value::as_str)).map(approx_tokens).sum())
        .unwrap_or(1);
    let completion_tokens = approx_tokens(&content);
    let model = request.get("model").and_then(Value::as_str).unwrap_or("mock");
    axum::Json(json!({
        "id": format!("chatcmpl-mock-{hash:016x}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }))
    .into_response()
}

/// Roughly four characters per token, as for English text.
fn approx_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4).max(1)
}

const OPENERS: [&str; 8] =
    ["Well,", "Honestly,", "Hmm,", "Sure,", "I see.", "Okay,", "Right,", "To be fair,"];
const BODIES: [&str; 12] = [
    "I could give a little, maybe fifty cents.",
    "I need the money myself, so I will keep it.",
    "that sounds like a good cause, I can donate a dollar.",
    "I'd like to know more about how the money is used.",
    "I usually donate to local charities instead.",
    "let me think about it for a moment.",
    "I'll give the whole two dollars, why not.",
    "I'm not sure this is the right time for me.",
    "children's health matters to me, count me in for some.",
    "I don't trust online donation requests much.",
    "maybe a quarter, that is what I can spare.",
    "I agree with you, helping kids is important.",
];

fn sentence(rng: &mut ChaCha8Rng) -> String {
    let opener = OPENERS[rng.random_range(0..OPENERS.len())];
    let body = BODIES[rng.random_range(0..BODIES.len())];
    format!("{opener} {body}")
}

/// The reply text for a request with `schema` (the `response_format` JSON schema, if any).
fn reply_content(schema: Option<&Value>, malformed: bool, rng: &mut ChaCha8Rng) -> String {
    let Some(schema) = schema else { return sentence(rng) };
    if let Some(list) = schema.pointer("/properties/responses") {
        let min = list.get("minItems").and_then(Value::as_u64).unwrap_or(1).max(1) as usize;
        let max = list.get("maxItems").and_then(Value::as_u64).unwrap_or(min as u64).max(min as u64) as usize;
        let n = rng.random_range(min..=max.min(min + 100));
        let with_probability = list.pointer("/items/properties/probability").is_some();
        let with_reasoning = schema.pointer("/properties/reasoning").is_some();
        // Several answers to an outcome question, each in the answer's type and range.
        if let Some(answer) = list.pointer("/items/properties/answer") {
            let responses: Vec<Value> = (0..n)
                .map(|_| {
                    let a = answer_value(answer, rng);
                    if with_probability {
                        json!({"answer": a, "probability": ((1.0 / n as f64) * 100.0).round() / 100.0})
                    } else {
                        json!({"answer": a})
                    }
                })
                .collect();
            return json!({"responses": responses}).to_string();
        }
        // A distribution over given options: one entry per option, in order.
        let options: Option<Vec<String>> = list
            .pointer("/items/properties/text/enum")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect());
        let texts = match options {
            Some(o) if !o.is_empty() => o,
            _ => (0..n).map(|_| sentence(rng)).collect(),
        };
        return candidates_content(texts, with_probability, with_reasoning, malformed, rng);
    }
    if let Some(answer) = schema.pointer("/properties/answer") {
        // `{"anyOf": [ANSWER, null]}`: what a role stated; the mock always states something.
        let answer = answer.pointer("/anyOf/0").unwrap_or(answer);
        if let Some(choices) = answer.get("enum").and_then(Value::as_array).filter(|c| !c.is_empty()) {
            let pick = &choices[rng.random_range(0..choices.len())];
            return if malformed {
                format!("I would say {}.", pick.as_str().unwrap_or_default())
            } else {
                json!({"answer": pick}).to_string()
            };
        }
        let lo = answer.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
        let hi = answer.get("maximum").and_then(Value::as_f64).unwrap_or(lo + 1.0).max(lo);
        let x = lo + (hi - lo) * rng.random::<f64>();
        let x = (x * 100.0).round() / 100.0;
        return if malformed { format!("I think about ${x:.2}.") } else { json!({"answer": x}).to_string() };
    }
    sentence(rng)
}

/// A value of an answer schema: one of its `enum`, else a number in its range.
fn answer_value(answer: &Value, rng: &mut ChaCha8Rng) -> Value {
    if let Some(choices) = answer.get("enum").and_then(Value::as_array).filter(|c| !c.is_empty()) {
        return choices[rng.random_range(0..choices.len())].clone();
    }
    let lo = answer.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
    let hi = answer.get("maximum").and_then(Value::as_f64).unwrap_or(lo + 1.0).max(lo);
    json!(((lo + (hi - lo) * rng.random::<f64>()) * 100.0).round() / 100.0)
}

fn candidates_content(
    texts: Vec<String>,
    with_probability: bool,
    with_reasoning: bool,
    malformed: bool,
    rng: &mut ChaCha8Rng,
) -> String {
    let weights: Vec<f64> = texts.iter().map(|_| 0.05 + rng.random::<f64>()).collect();
    let total: f64 = weights.iter().sum();
    let items: Vec<(String, f64)> =
        texts.into_iter().zip(&weights).map(|(t, w)| (t, ((w / total) * 100.0).round() / 100.0)).collect();
    if !malformed {
        let responses: Vec<Value> = items
            .iter()
            .map(|(text, p)| {
                if with_probability {
                    json!({"text": text, "probability": p})
                } else {
                    json!({"text": text})
                }
            })
            .collect();
        let mut top = serde_json::Map::new();
        if with_reasoning {
            top.insert("reasoning".into(), json!("Considering how this person would react."));
        }
        top.insert("responses".into(), Value::Array(responses));
        return Value::Object(top).to_string();
    }
    let entry = |(text, p): &(String, f64), percent: bool| {
        let text = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
        match (with_probability, percent) {
            (false, _) => format!("{{\"text\": {text}}}"),
            (true, false) => format!("{{\"text\": {text}, \"probability\": {p}}}"),
            (true, true) => format!("{{\"text\": {text}, \"probability\": \"{:.0}%\"}}", p * 100.0),
        }
    };
    let list = |percent: bool| items.iter().map(|i| entry(i, percent)).collect::<Vec<_>>().join(",\n  ");
    match rng.random_range(0..5u8) {
        // Fenced, with a trailing comma.
        0 => format!("```json\n{{\"responses\": [\n  {},\n]}}\n```", list(false)),
        // Percentages as strings.
        1 => format!("{{\"responses\": [{}]}}", list(true)),
        // Prose around the JSON.
        2 => format!("Here are my responses:\n{{\"responses\": [{}]}}\nI hope this helps.", list(false)),
        // A bare list, no wrapper object.
        3 => format!("[{}]", list(false)),
        // Cut off mid-list.
        _ => {
            let full = format!("{{\"responses\": [{}]}}", list(false));
            let cut = full.len() * 2 / 3;
            let mut end = cut;
            while !full.is_char_boundary(end) {
                end -= 1;
            }
            full[..end].to_string()
        }
    }
}

async fn embeddings(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    MockStats::bump(&shared.stats.embedding_requests);
    let config = &shared.config;
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            MockStats::bump(&shared.stats.bad_requests);
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("body is not JSON: {e}"),
            );
        }
    };
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
        }
        _ => {
            MockStats::bump(&shared.stats.bad_requests);
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "`input` must be a string or an array of strings",
            );
        }
    };
    let dims = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .map(|d| d as usize)
        .unwrap_or(config.embedding_dims)
        .clamp(1, 8192);
    let model = request.get("model").and_then(Value::as_str).unwrap_or("mock-embedding");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": unit_vector(config.seed, text, dims)}))
        .collect();
    let tokens: u64 = inputs.iter().map(|t| approx_tokens(t)).sum();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}

/// A pseudo-random unit vector that depends only on `seed` and `text` (normal coordinates
/// by Box–Muller, so directions are uniform on the sphere).
pub fn unit_vector(seed_value: u64, text: &str, dims: usize) -> Vec<f64> {
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
mod tests {
    use super::*;

    #[test]
    fn candidate_schema_gets_items_within_bounds() {
        let c = crate::backend::OutputConstraint::Candidates {
            min_items: 3,
            max_items: 3,
            with_probability: true,
            with_reasoning: false,
        };
        let schema = c.json_schema();
        let mut rng = seed::rng(1);
        let text = reply_content(Some(&schema), false, &mut rng);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["responses"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn unit_vectors_are_unit_and_deterministic() {
        let a = unit_vector(1, "hello", 64);
        assert_eq!(a, unit_vector(1, "hello", 64));
        assert_ne!(a, unit_vector(1, "hellp", 64));
        assert!((a.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9);
    }
}
