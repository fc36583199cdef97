//! The OpenAI-compatible backend against an in-process HTTP server on 127.0.0.1: the exact
//! request body, error classification, retries through `Resilient`, and that the API key
//! never leaks into errors, logs or cache files.

mod common;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use vsim::backend::cache::{CacheMode, CachedModel};
use vsim::backend::openai::{OpenAiConfig, OpenAiModel};
use vsim::backend::resilient::{ResilienceConfig, Resilient};
use vsim::backend::{BackendError, ChatModel, ChatRequest, Message, Usage};
use vsim::vs::{ItemShape, Method, OutputConstraint};

const KEY: &str = "sk-test-SECRET123";
const SECRET: &str = "SECRET123";

/// One scripted reply of the fake server.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
    /// Append the request's `Authorization` header to the body, as a careless server might.
    echo_auth: bool,
}

impl Reply {
    fn ok(content: &str) -> Self {
        Self::status(200, completion(content, "stop", 10, 5).to_string())
    }
    fn status(status: u16, body: impl Into<String>) -> Self {
        Self { status, headers: vec![], body: body.into(), delay: Duration::ZERO, echo_auth: false }
    }
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    fn echoing_auth(mut self) -> Self {
        self.echo_auth = true;
        self
    }
}

fn completion(content: &str, finish: &str, prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    })
}

/// A request as the server saw it.
struct Seen {
    at: Instant,
    authorization: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Server {
    replies: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

impl Server {
    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    fn body(&self, i: usize) -> Value {
        self.seen.lock().unwrap()[i].body.clone()
    }
    fn gap(&self, i: usize) -> Duration {
        let seen = self.seen.lock().unwrap();
        seen[i + 1].at - seen[i].at
    }
}

async fn handle(State(server): State<Arc<Server>>, headers: HeaderMap, body: String) -> Response {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let reply = server.replies.lock().unwrap().pop_front().unwrap_or_else(|| Reply::ok("default"));
    server.seen.lock().unwrap().push(Seen {
        at: Instant::now(),
        authorization: authorization.clone(),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    tokio::time::sleep(reply.delay).await;
    let mut text = reply.body;
    if reply.echo_auth {
        text.push_str(&format!(" (you sent: {})", authorization.unwrap_or_default()));
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), text).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// Starts a server answering with `replies` in order (then a default completion); returns
/// its base URL.
async fn serve(replies: Vec<Reply>) -> Result<(String, Arc<Server>)> {
    let server = Arc::new(Server { replies: Mutex::new(replies.into()), ..Default::default() });
    let app = Router::new().route("/v1/chat/completions", post(handle)).with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/v1/"), server))
}

fn model(base_url: &str) -> Result<OpenAiModel> {
    Ok(OpenAiModel::new(
        OpenAiConfig::new(base_url, "test-model").with_api_key(KEY).with_timeout(Duration::from_secs(5)),
    )?)
}

/// Short backoff so real-time retries stay quick.
fn quick_retries() -> ResilienceConfig {
    ResilienceConfig {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..Default::default()
    }
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![Message::user("Hello")])
}

fn candidates_request() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::system("You are Ann."), Message::user("Would you donate?")],
        temperature: Some(0.7),
        top_p: Some(0.95),
        max_tokens: Some(256),
        seed: Some(42),
        stop: vec!["END".into()],
        output_schema: ItemShape::Text.constraint(Method::VsStandard, 5, 5).map(|c| c.output_schema()),
    }
}

#[tokio::test]
async fn sends_the_exact_request_body_with_the_json_schema() -> Result<()> {
    let (url, server) = serve(vec![Reply::ok(r#"{"responses":[]}"#)]).await?;
    let reply = model(&url)?.chat(candidates_request()).await?;
    assert_eq!(reply.content, r#"{"responses":[]}"#);
    assert!(!reply.cached);

    let expected = json!({
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "You are Ann."},
            {"role": "user", "content": "Would you donate?"},
        ],
        "temperature": 0.7,
        "top_p": 0.95,
        "max_tokens": 256,
        "seed": 42,
        "stop": ["END"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "verbalized_candidates",
                "strict": true,
                "schema": {
                    "type": "object",
                    "properties": {
                        "responses": {
                            "type": "array",
                            "minItems": 5,
                            "maxItems": 5,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "text": {"type": "string", "maxLength": 600},
                                    "probability": {"type": "number"},
                                },
                                "required": ["text", "probability"],
                                "additionalProperties": false,
                            },
                        },
                    },
                    "required": ["responses"],
                    "additionalProperties": false,
                },
            },
        },
    });
    assert_eq!(server.body(0), expected);
    let auth = server.seen.lock().unwrap()[0].authorization.clone();
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-SECRET123"));
    Ok(())
}

#[tokio::test]
async fn a_numeric_answer_is_sent_with_its_bounds() -> Result<()> {
    let (url, server) = serve(vec![Reply::ok(r#"{"answer": 1}"#)]).await?;
    let mut request = hello();
    request.output_schema = Some(OutputConstraint::Number { min: 0.0, max: 2.0 }.output_schema());
    model(&url)?.chat(request).await?;
    let format = &server.body(0)["response_format"];
    assert_eq!(format["json_schema"]["name"], "numeric_answer");
    assert_eq!(
        format["json_schema"]["schema"]["properties"]["answer"],
        json!({"type": "number", "minimum": 0.0, "maximum": 2.0})
    );
    Ok(())
}

#[tokio::test]
async fn omits_unset_parameters_and_the_key_when_there_is_none() -> Result<()> {
    let (url, server) = serve(vec![]).await?;
    OpenAiModel::new(OpenAiConfig::new(&url, "m"))?.chat(hello()).await?;
    assert_eq!(server.body(0), json!({"model": "m", "messages": [{"role": "user", "content": "Hello"}]}));
    assert_eq!(server.seen.lock().unwrap()[0].authorization, None);
    Ok(())
}

#[tokio::test]
async fn without_response_format_the_schema_is_not_sent() -> Result<()> {
    let (url, server) = serve(vec![]).await?;
    let config = OpenAiConfig::new(&url, "m").with_api_key(KEY).with_response_format(false);
    OpenAiModel::new(config)?.chat(candidates_request()).await?;
    let body = server.body(0);
    assert!(body.get("response_format").is_none(), "{body}");
    assert_eq!(body["seed"], 42);
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(2));
    Ok(())
}

#[tokio::test]
async fn reads_usage_and_finish_reason() -> Result<()> {
    let body = completion("cut sho", "length", 123, 45).to_string();
    let (url, _server) = serve(vec![Reply::status(200, body)]).await?;
    let reply = model(&url)?.chat(hello()).await?;
    assert_eq!(reply.content, "cut sho");
    assert_eq!(reply.finish_reason.as_deref(), Some("length"));
    assert_eq!(reply.usage, Some(Usage { prompt_tokens: 123, completion_tokens: 45 }));
    Ok(())
}

#[tokio::test]
async fn honours_retry_after_on_429() -> Result<()> {
    let limited = || Reply::status(429, r#"{"error":{"message":"slow down"}}"#).header("retry-after", "1");
    let (url, server) = serve(vec![limited(), limited()]).await?;

    // The bare model reports the status and the server's hint.
    let err = model(&url)?.chat(hello()).await.unwrap_err();
    match &err {
        BackendError::Http { status, endpoint, body_excerpt, retry_after } => {
            assert_eq!(*status, 429);
            assert_eq!(endpoint, &format!("{url}chat/completions"));
            assert!(body_excerpt.contains("slow down"), "{body_excerpt}");
            assert_eq!(*retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected HTTP 429, got {other:?}"),
    }
    assert!(err.is_retryable());

    // Through `Resilient` it waits at least that long, then succeeds.
    let resilient = Resilient::new(model(&url)?, quick_retries());
    let reply = resilient.chat(hello()).await?;
    assert_eq!(reply.content, "default");
    assert_eq!(server.requests(), 3);
    assert!(server.gap(1) >= Duration::from_secs(1), "retried after {:?}", server.gap(1));
    Ok(())
}

#[tokio::test]
async fn retries_server_errors() -> Result<()> {
    let (url, server) =
        serve(vec![Reply::status(500, "boom"), Reply::status(502, "bad gateway"), Reply::ok("third time")])
            .await?;
    let reply = Resilient::new(model(&url)?, quick_retries()).chat(hello()).await?;
    assert_eq!(reply.content, "third time");
    assert_eq!(server.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn times_out_and_retries() -> Result<()> {
    let slow = || Reply::ok("too late").delayed(Duration::from_secs(5));
    let (url, server) = serve(vec![slow(), slow(), Reply::ok("in time")]).await?;
    let config = OpenAiConfig::new(&url, "m").with_api_key(KEY).with_timeout(Duration::from_millis(300));

    let err = OpenAiModel::new(config.clone())?.chat(hello()).await.unwrap_err();
    assert!(
        matches!(&err, BackendError::Timeout { after, .. } if *after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.is_retryable());

    let reply = Resilient::new(OpenAiModel::new(config)?, quick_retries()).chat(hello()).await?;
    assert_eq!(reply.content, "in time");
    assert_eq!(server.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn malformed_bodies_are_reported_and_not_retried() -> Result<()> {
    let (url, server) = serve(vec![
        Reply::status(200, "this is not json"),
        Reply::status(200, r#"{"choices": []}"#),
        Reply::status(200, r#"{"choices": [{"message": {"role": "assistant", "content": null}}]}"#),
    ])
    .await?;
    let resilient = Resilient::new(model(&url)?, quick_retries());
    for n in 1..=3 {
        let err = resilient.chat(hello()).await.unwrap_err();
        assert!(matches!(err, BackendError::Malformed { .. }), "{err:?}");
        assert!(!err.is_retryable());
        assert_eq!(server.requests(), n);
    }
    // The server answers normally again.
    assert_eq!(model(&url)?.chat(hello()).await?.content, "default");
    Ok(())
}

#[tokio::test]
async fn unauthorized_is_clear_and_not_retried() -> Result<()> {
    let body = r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#;
    let (url, server) = serve(vec![Reply::status(401, body)]).await?;
    let err = Resilient::new(model(&url)?, quick_retries()).chat(hello()).await.unwrap_err();
    assert!(matches!(err, BackendError::Http { status: 401, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("OPENAI_API_KEY"), "{message}");
    assert!(message.contains("Incorrect API key provided"), "{message}");
    assert_eq!(server.requests(), 1);
    Ok(())
}

#[tokio::test]
async fn a_redirect_is_reported_with_its_target_and_not_followed() -> Result<()> {
    let moved = Reply::status(307, "").header("location", "https://api.example.org/v1/chat/completions");
    let (url, server) = serve(vec![moved, Reply::ok("never reached")]).await?;
    let err = Resilient::new(model(&url)?, quick_retries()).chat(hello()).await.unwrap_err();
    assert!(matches!(err, BackendError::Http { status: 307, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("redirects to https://api.example.org/v1/chat/completions"), "{message}");
    assert_eq!(server.requests(), 1);
    Ok(())
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() -> Result<()> {
    let (_reserved, port) = common::refusing_port();
    let err = model(&format!("http://127.0.0.1:{port}/v1"))?.chat(hello()).await.unwrap_err();
    assert!(matches!(err, BackendError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    // The cause, not only "error sending request".
    assert!(err.to_string().to_lowercase().contains("connection refused"), "{err}");
    Ok(())
}

#[tokio::test]
async fn the_preflight_check_names_the_cause_of_an_unreachable_server() -> Result<()> {
    let (_reserved, port) = common::refusing_port();
    let config = OpenAiConfig::new(format!("http://127.0.0.1:{port}/v1"), "m");
    let err = vsim::backend::preflight::check(&config).await.unwrap_err();
    let message = err.to_string();
    assert!(message.to_lowercase().contains("connection refused"), "{message}");
    assert!(!message.contains("for url"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_schema_rejected_for_max_length_is_sent_again_without_it() -> Result<()> {
    let rejected = r#"{"error":{"message":"Invalid schema for response_format 'verbalized_candidates': 'maxLength' is not permitted."}}"#;
    let (url, server) =
        serve(vec![Reply::status(400, rejected), Reply::ok("first"), Reply::ok("second")]).await?;
    let model = model(&url)?;
    assert_eq!(model.chat(candidates_request()).await?.content, "first");
    assert_eq!(model.chat(candidates_request()).await?.content, "second");
    let text = |i: usize| {
        server.body(i)["response_format"]["json_schema"]["schema"]["properties"]["responses"]["items"]
            ["properties"]["text"]
            .clone()
    };
    assert_eq!(text(0), json!({"type": "string", "maxLength": 600}));
    assert_eq!(text(1), json!({"type": "string"}));
    // Once rejected, the bound is left out from the start.
    assert_eq!(text(2), json!({"type": "string"}));
    assert_eq!(server.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn other_bad_requests_are_not_sent_again() -> Result<()> {
    let (url, server) =
        serve(vec![Reply::status(400, r#"{"error":{"message":"context length exceeded"}}"#)]).await?;
    let err = model(&url)?.chat(candidates_request()).await.unwrap_err();
    assert!(matches!(err, BackendError::Http { status: 400, .. }), "{err:?}");
    assert_eq!(server.requests(), 1);
    Ok(())
}

/// Collects formatted tracing output.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[tokio::test]
async fn the_key_never_leaks() -> Result<()> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (url, server) = serve(vec![
        // Retried (and logged) errors whose bodies repeat the key.
        Reply::status(500, "upstream failed").echoing_auth(),
        Reply::status(429, "rate limited").header("retry-after", "0").echoing_auth(),
        Reply::ok("fine"),
        // Errors returned to the caller, again repeating the key.
        Reply::status(401, "Incorrect API key").echoing_auth(),
        Reply::status(200, "not json at all").echoing_auth(),
        Reply::ok("also fine"),
    ])
    .await?;
    let cache_dir = tempfile::tempdir()?;
    let config = OpenAiConfig::new(&url, "m").with_api_key(KEY);
    let stack = CachedModel::new(
        Resilient::new(OpenAiModel::new(config.clone())?, quick_retries()),
        cache_dir.path(),
        CacheMode::ReadWrite,
    );

    let mut texts = vec![format!("{config:?}"), format!("{:?}", stack.inner().inner()), stack.id()];
    assert_eq!(stack.chat(hello()).await?.content, "fine");
    let err = stack.chat(ChatRequest { seed: Some(1), ..hello() }).await.unwrap_err();
    assert!(matches!(err, BackendError::Http { status: 401, .. }), "{err:?}");
    texts.extend([err.to_string(), format!("{err:?}")]);
    let err = stack.chat(ChatRequest { seed: Some(2), ..hello() }).await.unwrap_err();
    assert!(matches!(err, BackendError::Malformed { .. }), "{err:?}");
    texts.extend([err.to_string(), format!("{err:?}")]);
    assert_eq!(stack.chat(ChatRequest { seed: Some(3), ..hello() }).await?.content, "also fine");
    assert!(stack.chat(hello()).await?.cached);

    // The server did get the key, and said it back.
    assert_eq!(server.requests(), 6);
    assert!(server
        .seen
        .lock()
        .unwrap()
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer sk-test-SECRET123")));
    assert!(texts[3].contains("Bearer ***"), "the echoed key is redacted: {}", texts[3]);

    for text in &texts {
        assert!(!text.contains(SECRET), "key leaked: {text}");
    }
    // Both replies, in this process's one pack.
    let files = files_under(cache_dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let content = std::fs::read_to_string(&files[0])?;
    assert_eq!(content.lines().count(), 2, "{content}");
    assert!(!content.contains(SECRET), "key in cache file {}: {content}", files[0].display());
    let log = String::from_utf8(capture.0.lock().unwrap().clone())?;
    assert!(log.contains("retrying"), "retries are logged: {log}");
    assert!(!log.contains(SECRET), "key in log: {log}");
    Ok(())
}
