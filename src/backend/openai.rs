//! OpenAI-compatible chat completions over HTTP.
//!
//! Works with any server that speaks `POST {base_url}/chat/completions` (OpenAI, vLLM, Ollama,
//! llama.cpp's server, OpenRouter, ...). The API key travels only in the `Authorization`
//! header; it is redacted from `Debug` output, never part of [`ChatModel::id`], and scrubbed
//! from every error message in case a server or transport echoes it back.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Serialize;

use super::{wire, BackendError, ChatModel, ChatRequest, ChatResponse, Usage};
use crate::text::excerpt;

/// Where requests go when `OPENAI_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// How long a request may take by default; generous because candidate lists are long replies.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How many characters of a server's error body are kept in an error message.
const BODY_EXCERPT_CHARS: usize = 300;

/// Stand-in for the API key wherever text might otherwise contain it.
const REDACTED: &str = "***";

/// How to reach an OpenAI-compatible server.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// Base URL up to and including the API version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Bearer token; `None` for local servers that need none.
    pub api_key: Option<String>,
    /// The model name sent with every request.
    pub model: String,
    /// Send `response_format: json_schema` for constrained requests. Turn off for servers that
    /// reject it; the prompt already asks for the JSON shape.
    pub use_response_format: bool,
    /// Limit for one whole request (connect, send, and reading the reply).
    pub timeout: Duration,
}

impl OpenAiConfig {
    /// A configuration for `model` at `base_url`, without a key.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            use_response_format: true,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Reads `OPENAI_BASE_URL` (default [`DEFAULT_BASE_URL`]) and `OPENAI_API_KEY`; empty
    /// values count as unset.
    pub fn from_env(model: impl Into<String>) -> Self {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let base_url = non_empty("OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        Self { api_key: non_empty("OPENAI_API_KEY"), ..Self::new(base_url, model) }
    }

    /// Sets the bearer token.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets [`use_response_format`](Self::use_response_format).
    pub fn with_response_format(mut self, on: bool) -> Self {
        self.use_response_format = on;
        self
    }

    /// Sets the limit for one whole request.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &display_url(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| REDACTED))
            .field("model", &self.model)
            .field("use_response_format", &self.use_response_format)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A model served by an OpenAI-compatible server.
pub struct OpenAiModel {
    config: OpenAiConfig,
    client: reqwest::Client,
    /// `{base_url}/chat/completions`, as requests are sent.
    url: reqwest::Url,
    /// The same endpoint for messages: trailing slash trimmed, any URL password redacted.
    endpoint: String,
    /// `openai:{model}@{base_url}`, redacted like `endpoint`.
    id: String,
    /// Whether schemas bound a candidate's text with `maxLength`; cleared once the server
    /// rejects the keyword (see [`rejects_schema`]).
    bound_text: AtomicBool,
}

impl fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiModel").field("id", &self.id).field("config", &self.config).finish()
    }
}

impl OpenAiModel {
    /// Checks the configuration and builds the HTTP client (no request is made).
    pub fn new(config: OpenAiConfig) -> Result<Self, BackendError> {
        if config.model.trim().is_empty() {
            return Err(BackendError::Config("the OpenAI model name is empty".into()));
        }
        if config.timeout.is_zero() {
            return Err(BackendError::Config("the OpenAI request timeout must be above zero".into()));
        }
        if let Some(key) = &config.api_key {
            // Checked here so a bad key fails once, clearly, without echoing it.
            if key.is_empty() || reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).is_err() {
                return Err(BackendError::Config(
                    "OPENAI_API_KEY is empty or contains characters not allowed in an HTTP header".into(),
                ));
            }
        }
        let base = config.base_url.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/chat/completions")).map_err(|e| {
            BackendError::Config(format!("invalid OpenAI base URL {:?}: {e}", display_url(base)))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BackendError::Config(format!(
                "OpenAI base URL {:?} must start with http:// or https://",
                display_url(base)
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("vsim/", env!("CARGO_PKG_VERSION")))
            // An API is called at its own URL: a redirect is reported with its target (as
            // OpenAI's Python client does), which also keeps the key from following it, and
            // saves the redirect policy's work on every request.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BackendError::Config(format!("could not build the HTTP client: {e}")))?;
        let endpoint = display_url(url.as_str());
        let id = format!("openai:{}@{}", config.model, display_url(base));
        Ok(Self { config, client, url, endpoint, id, bound_text: AtomicBool::new(true) })
    }

    /// The configuration this backend was opened with.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// The JSON body for `request`; `strip_max_length`: the schema is sent without its
    /// `maxLength` keywords (a copy, made only when it has any).
    fn body<'a>(
        &'a self,
        request: &'a ChatRequest,
        strip_max_length: bool,
    ) -> wire::ChatCompletionRequest<'a> {
        let response_format = match (&request.output_schema, self.config.use_response_format) {
            (Some(s), true) => {
                let schema = if strip_max_length && s.uses("maxLength") {
                    Cow::Owned(s.without("maxLength"))
                } else {
                    Cow::Borrowed(s.schema.as_ref())
                };
                Some(wire::ResponseFormat::json_schema(s.name.as_str(), schema))
            }
            _ => None,
        };
        wire::ChatCompletionRequest {
            model: Cow::Borrowed(&self.config.model),
            messages: Cow::Borrowed(&request.messages),
            temperature: request.temperature,
            top_p: request.top_p,
            max_tokens: request.max_tokens,
            seed: request.seed,
            stop: Cow::Borrowed(&request.stop),
            response_format,
        }
    }

    /// Replaces the API key with `***` wherever it occurs in `text`.
    fn scrub(&self, text: &str) -> String {
        match self.config.api_key.as_deref() {
            Some(key) if !key.is_empty() => text.replace(key, REDACTED),
            _ => text.to_string(),
        }
    }

    /// POSTs `body` as JSON to `{base_url}/{path}` (e.g. `embeddings`) with the API key and
    /// returns the text of a 2xx reply. Failures come classified for [`super::resilient`]
    /// (429 and 5xx with the server's `Retry-After`, timeouts, connection errors), with the
    /// key scrubbed, just as for chat completions; wrap the model in a
    /// [`super::resilient::Resilient`] and send through its `call` to retry them.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        body: &(impl Serialize + Sync),
    ) -> Result<String, BackendError> {
        let base = self.config.base_url.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/{}", path.trim_start_matches('/'))).map_err(|e| {
            BackendError::Config(format!(
                "invalid OpenAI endpoint {:?}: {e}",
                display_url(&format!("{base}/{path}"))
            ))
        })?;
        let endpoint = display_url(url.as_str());
        self.send(url, &endpoint, body).await
    }

    /// An error for a 2xx reply from `{base_url}/{path}` that is not what was asked for,
    /// with the key scrubbed from the reason and the body excerpt.
    pub(crate) fn malformed_reply(&self, path: &str, reason: &str, body: &str) -> BackendError {
        let base = self.config.base_url.trim().trim_end_matches('/');
        BackendError::Malformed {
            endpoint: display_url(&format!("{base}/{}", path.trim_start_matches('/'))),
            reason: self.scrub(reason),
            body_excerpt: excerpt(&self.scrub(body), BODY_EXCERPT_CHARS),
        }
    }

    /// Sends one request and returns the reply's text when it is a success.
    async fn send(
        &self,
        url: reqwest::Url,
        endpoint: &str,
        body: &(impl Serialize + Sync),
    ) -> Result<String, BackendError> {
        let mut builder = self.client.post(url).json(body);
        if let Some(key) = &self.config.api_key {
            // `bearer_auth` marks the header sensitive, so reqwest never prints it.
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().await.map_err(|e| self.transport_error(endpoint, e))?;
        let status = response.status();
        // Only a failure's headers are read (`Retry-After`, `Location`).
        let headers = if status.is_success() { HeaderMap::new() } else { response.headers().clone() };
        let text = response.text().await.map_err(|e| self.transport_error(endpoint, e))?;
        if !status.is_success() {
            tracing::debug!(endpoint = %endpoint, status = status.as_u16(), "request failed");
            return Err(self.status_error(endpoint, status, &headers, &text));
        }
        Ok(text)
    }

    /// A transport failure as a [`BackendError`], with the key scrubbed from its text.
    fn transport_error(&self, endpoint: &str, err: reqwest::Error) -> BackendError {
        if err.is_timeout() {
            return BackendError::Timeout { endpoint: endpoint.to_string(), after: self.config.timeout };
        }
        let is_builder = err.is_builder();
        let reason = self.scrub(&transport_reason(err));
        if is_builder {
            BackendError::Config(format!("could not build a request to {endpoint}: {reason}"))
        } else {
            // Connect failures and connections dropped mid-request alike: worth a retry.
            BackendError::Connect { endpoint: endpoint.to_string(), reason }
        }
    }

    /// A non-success reply as a [`BackendError::Http`], with a hint for the usual causes.
    fn status_error(
        &self,
        endpoint: &str,
        status: reqwest::StatusCode,
        headers: &HeaderMap,
        body: &str,
    ) -> BackendError {
        let said = excerpt(&self.scrub(body), BODY_EXCERPT_CHARS);
        let body_excerpt = match status.as_u16() {
            401 => {
                let why = if self.config.api_key.is_some() {
                    "the server rejected the API key; check OPENAI_API_KEY"
                } else {
                    "no API key was sent; set OPENAI_API_KEY"
                };
                format!("{why} (server said: {said})")
            }
            404 => format!(
                "check the model name {:?} and OPENAI_BASE_URL (server said: {said})",
                self.config.model
            ),
            300..=399 => {
                let to = headers.get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("?");
                format!(
                    "the server redirects to {}; use that address in the model spec or OPENAI_BASE_URL (server said: {said})",
                    excerpt(&self.scrub(to), 200)
                )
            }
            _ => said,
        };
        BackendError::Http {
            status: status.as_u16(),
            endpoint: endpoint.to_string(),
            body_excerpt,
            retry_after: retry_after(headers, SystemTime::now()),
        }
    }

    /// A 2xx body as a [`ChatResponse`].
    fn parse_completion(&self, body: &str) -> Result<ChatResponse, BackendError> {
        let malformed = |reason: String| BackendError::Malformed {
            endpoint: self.endpoint.clone(),
            reason: self.scrub(&reason),
            body_excerpt: excerpt(&self.scrub(body), BODY_EXCERPT_CHARS),
        };
        let completion: wire::ChatCompletion = match serde_json::from_str(body) {
            Ok(w) => w,
            Err(e) => return Err(malformed(format!("not a chat completion ({e})"))),
        };
        if let Some(error) = completion.error {
            return Err(malformed(format!("the server reported an error: {}", error.message())));
        }
        let Some(choice) = completion.choices.and_then(|c| c.into_iter().next()) else {
            return Err(malformed("the reply has no choices".into()));
        };
        let message = choice.message.unwrap_or_default();
        let Some(content) = message.content else {
            let reason = match message.refusal {
                Some(refusal) => format!("the model refused: {refusal}"),
                None => "the reply's message has no content".into(),
            };
            return Err(malformed(reason));
        };
        let usage = completion.usage.map(|u| Usage {
            prompt_tokens: u.prompt_tokens.unwrap_or(0),
            completion_tokens: u.completion_tokens.unwrap_or(0),
        });
        Ok(ChatResponse { content, usage, finish_reason: choice.finish_reason, cached: false })
    }
}

#[async_trait::async_trait]
impl ChatModel for OpenAiModel {
    fn id(&self) -> String {
        self.id.clone()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, BackendError> {
        let bound_text = self.bound_text.load(Ordering::Relaxed);
        let bounded = self.config.use_response_format
            && bound_text
            && request.output_schema.as_ref().is_some_and(|s| s.uses("maxLength"));
        let body = self.body(&request, !bound_text);
        tracing::debug!(
            endpoint = %self.endpoint,
            model = %self.config.model,
            messages = request.messages.len(),
            constrained = body.response_format.is_some(),
            "chat completion request"
        );
        let text = match self.send(self.url.clone(), &self.endpoint, &body).await {
            Err(e) if bounded && rejects_schema(&e) => {
                // A server whose schema support lacks `maxLength`: send the schema without it,
                // and keep leaving it out once that is accepted.
                tracing::debug!(endpoint = %self.endpoint, error = %e, "schema with maxLength rejected; sending it without");
                let again = self.send(self.url.clone(), &self.endpoint, &self.body(&request, true)).await;
                if !matches!(&again, Err(e) if rejects_schema(e)) {
                    self.bound_text.store(false, Ordering::Relaxed);
                }
                again?
            }
            other => other?,
        };
        let reply = self.parse_completion(&text)?;
        tracing::debug!(
            endpoint = %self.endpoint,
            finish_reason = reply.finish_reason.as_deref().unwrap_or(""),
            completion_tokens = reply.usage.map(|u| u.completion_tokens).unwrap_or(0),
            "chat completion received"
        );
        Ok(reply)
    }
}

/// Whether a server refused a request for its JSON schema (an unsupported keyword such as
/// `maxLength`, or a schema its grammar converter cannot handle), so that the same request
/// without the text bound may succeed: a 400, 422 or 500 whose body names the keyword, the
/// schema or the grammar.
fn rejects_schema(err: &BackendError) -> bool {
    match err {
        BackendError::Http { status: 400 | 422 | 500, body_excerpt, .. } => {
            let body = body_excerpt.to_ascii_lowercase();
            ["maxlength", "max_length", "schema", "grammar", "response_format"]
                .iter()
                .any(|k| body.contains(k))
        }
        _ => false,
    }
}

/// How long the server asked us to wait: OpenAI's `retry-after-ms` when present, else
/// `Retry-After` as delay-seconds or an HTTP-date (relative to `now`; a past date is zero).
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = header("retry-after-ms").and_then(parse_seconds_or_ms(1e-3)) {
        return Some(ms);
    }
    let value = header(RETRY_AFTER.as_str())?;
    if let Some(d) = parse_seconds_or_ms(1.0)(value) {
        return Some(d);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses a non-negative number of units (`scale` seconds each).
fn parse_seconds_or_ms(scale: f64) -> impl Fn(&str) -> Option<Duration> {
    move |s| {
        let n: f64 = s.parse().ok()?;
        // Cap at a day: anything longer is not a retry hint we would honour anyway.
        (n.is_finite() && n >= 0.0).then(|| Duration::from_secs_f64((n * scale).min(86_400.0)))
    }
}

/// A transport failure (connection refused, a failed name lookup, a TLS failure, a timeout)
/// with its whole chain of causes, without the URL: reqwest's own message stops at "error
/// sending request". Never contains a key (reqwest marks the `Authorization` header
/// sensitive).
pub(crate) fn transport_reason(err: reqwest::Error) -> String {
    let chain = error_chain(&err.without_url());
    // rustls names what went wrong, not that it was TLS: say so.
    let lower = chain.to_ascii_lowercase();
    let tls =
        ["certificate", "handshake", "corrupt message", "tls", "peer sent"].iter().any(|w| lower.contains(w));
    if tls {
        format!("TLS failed ({chain}); a local server usually speaks http://, not https://")
    } else {
        chain
    }
}

/// An error and its sources, joined with ": ".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// `url` with a trailing slash trimmed and any embedded password replaced by `***`.
fn display_url(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    match reqwest::Url::parse(trimmed) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some(REDACTED));
            parsed.as_str().trim_end_matches('/').to_string()
        }
        _ => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_ms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(&headers(&[("retry-after", "7")]), now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(42));
        assert_eq!(retry_after(&headers(&[("retry-after", &later)]), now), Some(Duration::from_secs(42)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(retry_after(&headers(&[("retry-after", &past)]), now), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7"), ("retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")]), now), None);
        assert_eq!(retry_after(&headers(&[]), now), None);
    }

    #[test]
    fn urls_lose_passwords_and_trailing_slashes() {
        assert_eq!(display_url("http://localhost:8000/v1/"), "http://localhost:8000/v1");
        assert_eq!(display_url("https://user:hunter2@example.com/v1"), "https://user:***@example.com/v1");
    }

    #[test]
    fn config_debug_and_id_hide_the_key() {
        let config = OpenAiConfig::new("http://127.0.0.1:1/v1/", "m").with_api_key("sk-abc");
        assert!(!format!("{config:?}").contains("sk-abc"));
        let model = OpenAiModel::new(config).unwrap();
        assert_eq!(model.id(), "openai:m@http://127.0.0.1:1/v1");
        assert!(!format!("{model:?}").contains("sk-abc"));
    }

    #[test]
    fn bad_configurations_are_rejected() {
        assert!(matches!(
            OpenAiModel::new(OpenAiConfig::new("not a url", "m")),
            Err(BackendError::Config(_))
        ));
        assert!(matches!(
            OpenAiModel::new(OpenAiConfig::new("ftp://x/v1", "m")),
            Err(BackendError::Config(_))
        ));
        let bad_key = OpenAiConfig::new("http://x/v1", "m").with_api_key("sk-\nSECRET");
        let err = OpenAiModel::new(bad_key).unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
        let zero = OpenAiConfig::new("http://x/v1", "m").with_timeout(Duration::ZERO);
        assert!(matches!(OpenAiModel::new(zero), Err(BackendError::Config(_))));
    }

    #[test]
    fn parses_completions_and_rejects_non_completions() {
        let model = OpenAiModel::new(OpenAiConfig::new("http://x/v1", "m")).unwrap();
        let ok = r#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
                    "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
        let reply = model.parse_completion(ok).unwrap();
        assert_eq!(reply.content, "hi");
        assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
        assert_eq!(reply.usage, Some(Usage { prompt_tokens: 3, completion_tokens: 1 }));
        for bad in [
            "",
            "<html>",
            "{}",
            r#"{"choices":[]}"#,
            r#"{"choices":[{"message":{"content":null}}]}"#,
            r#"{"error":{"message":"overloaded"}}"#,
            r#"{"choices":"x"}"#,
        ] {
            assert!(matches!(model.parse_completion(bad), Err(BackendError::Malformed { .. })), "{bad}");
        }
    }
}
