//! Embeddings from any OpenAI-compatible `/embeddings` endpoint (`--embedder openai:MODEL`
//! or `openai:MODEL@BASE_URL`; the server from `OPENAI_BASE_URL`, the key from
//! `OPENAI_API_KEY`).
//!
//! Requests travel the same road as chat completions: [`OpenAiModel`] sends them (the key
//! only in the `Authorization` header, scrubbed from every error) and [`Resilient`] retries
//! rate limits, server errors, timeouts and dropped connections with backoff, honouring
//! `Retry-After`, within its concurrency and rate limits. An evaluation embeds thousands of
//! utterances, so one transient 429 must not cost it its semantic-diversity figures.

use std::borrow::Cow;
use std::fmt;

use super::{EmbedError, Embedder};
use crate::backend::openai::{OpenAiConfig, OpenAiModel};
use crate::backend::resilient::{ResilienceConfig, Resilient};
use crate::backend::wire::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
use crate::backend::ChatModel;

/// Texts sent per request.
pub(crate) const BATCH: usize = 64;
/// The endpoint, relative to the base URL.
const PATH: &str = "embeddings";
/// What [`OpenAiEmbedder::from_spec`] accepts, for its errors.
const EXPECTED_SPEC: &str = "`openai:MODEL` or `openai:MODEL@BASE_URL`";

/// An OpenAI-compatible embeddings endpoint, with retries and limits.
pub struct OpenAiEmbedder {
    http: Resilient<OpenAiModel>,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `OpenAiModel`'s own `Debug` redacts the key.
        f.debug_struct("OpenAiEmbedder")
            .field("server", self.http.inner())
            .field("resilience", self.http.config())
            .finish()
    }
}

impl OpenAiEmbedder {
    /// `openai:MODEL` or `openai:MODEL@BASE_URL`; base URL otherwise from `OPENAI_BASE_URL`
    /// (default OpenAI's), key from `OPENAI_API_KEY` (empty values count as unset). Retries
    /// follow [`ResilienceConfig::default`].
    pub fn from_spec(spec: &str) -> Result<Self, EmbedError> {
        let err = |reason: &str| EmbedError::BadSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
            expected: EXPECTED_SPEC,
        };
        let rest = spec.trim().strip_prefix("openai:").ok_or_else(|| err("unknown kind"))?;
        let (model, base) = match rest.split_once('@') {
            Some((m, u)) => (m, Some(u)),
            None => (rest, None),
        };
        if model.trim().is_empty() {
            return Err(err("missing model name after `openai:`"));
        }
        let mut config = OpenAiConfig::from_env(model);
        if let Some(url) = base {
            config.base_url = url.trim().trim_end_matches('/').to_string();
        }
        Self::with_config(config, ResilienceConfig::default())
    }

    /// An embedder for `model` at `base_url` (up to and including the API version), with
    /// default retries.
    pub fn new(base_url: &str, model: &str, api_key: Option<String>) -> Result<Self, EmbedError> {
        let mut config = OpenAiConfig::new(base_url.trim().trim_end_matches('/'), model);
        config.api_key = api_key;
        Self::with_config(config, ResilienceConfig::default())
    }

    /// An embedder for the server and model in `config` (its `response_format` setting is
    /// unused), retrying and limiting requests as `resilience` says. Checks the
    /// configuration; makes no request.
    pub(crate) fn with_config(
        config: OpenAiConfig,
        resilience: ResilienceConfig,
    ) -> Result<Self, EmbedError> {
        Ok(Self { http: Resilient::new(OpenAiModel::new(config)?, resilience) })
    }

    /// One request's vectors, in the order of `texts`.
    async fn batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let server = self.http.inner();
        let body = EmbeddingsRequest {
            model: Cow::Borrowed(&server.config().model),
            input: EmbeddingInput::Many(Cow::Borrowed(texts)),
            dimensions: None,
        };
        let text = self.http.call(&server.id(), || server.post_json(PATH, &body)).await?;
        parse_embeddings(&text, texts.len())
            .map_err(|reason| EmbedError::from(server.malformed_reply(PATH, &reason, &text)))
    }
}

#[async_trait::async_trait]
impl Embedder for OpenAiEmbedder {
    fn id(&self) -> String {
        self.http.inner().id()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.batch(chunk).await?);
        }
        Ok(out)
    }
}

/// The `n` vectors of an embeddings reply, placed by their `index` (servers may return them
/// out of order); the reason when the reply is not that.
fn parse_embeddings(body: &str, n: usize) -> Result<Vec<Vec<f32>>, String> {
    let reply: EmbeddingsResponse =
        serde_json::from_str(body).map_err(|e| format!("not an embeddings reply ({e})"))?;
    if reply.data.len() != n {
        return Err(format!("{} embeddings for {n} texts", reply.data.len()));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
    for (pos, item) in reply.data.into_iter().enumerate() {
        match out.get_mut(item.index.unwrap_or(pos)) {
            Some(slot) if !item.embedding.is_empty() => {
                *slot = Some(item.embedding.into_iter().map(|x| x as f32).collect());
            }
            _ => return Err(format!("item {pos} has no usable embedding or a bad index")),
        }
    }
    out.into_iter().map(|v| v.ok_or_else(|| "an embedding is missing".to_string())).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use serde_json::{json, Value};

    use super::*;
    use crate::backend::BackendError;

    const KEY: &str = "sk-test-SECRET123";

    /// Serves `/v1/embeddings`: the first `failures` requests get `status` (with the
    /// request's `Authorization` header echoed in the body, as a careless server might),
    /// the rest get one vector per input. Returns the base URL and the request count.
    async fn server(status: StatusCode, failures: usize) -> (String, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route(
                "/v1/embeddings",
                post(
                    move |State(calls): State<Arc<AtomicUsize>>,
                          headers: HeaderMap,
                          body: axum::Json<Value>| async move {
                        let call = calls.fetch_add(1, Ordering::SeqCst);
                        let reply: Response = if call < failures {
                            let auth =
                                headers.get("authorization").and_then(|h| h.to_str().ok()).unwrap_or("");
                            (status, [("retry-after-ms", "5")], format!("overloaded; you sent {auth}"))
                                .into_response()
                        } else {
                            let n = body["input"].as_array().map_or(0, Vec::len);
                            let data: Vec<Value> =
                                (0..n).map(|i| json!({"index": i, "embedding": [i as f64, 1.0]})).collect();
                            axum::Json(json!({"object": "list", "data": data})).into_response()
                        };
                        reply
                    },
                ),
            )
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/v1"), calls)
    }

    fn embedder(base: &str, max_retries: u32) -> OpenAiEmbedder {
        let config = OpenAiConfig::new(base, "emb").with_api_key(KEY);
        let resilience = ResilienceConfig {
            max_retries,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            ..ResilienceConfig::default()
        };
        OpenAiEmbedder::with_config(config, resilience).unwrap()
    }

    #[tokio::test]
    async fn a_rate_limit_or_server_error_is_retried_then_succeeds() {
        for status in [StatusCode::TOO_MANY_REQUESTS, StatusCode::INTERNAL_SERVER_ERROR] {
            let (base, calls) = server(status, 1).await;
            let texts: Vec<String> = (0..3).map(|i| format!("text {i}")).collect();
            let v = embedder(&base, 3).embed(&texts).await.unwrap();
            assert_eq!(v, vec![vec![0.0, 1.0], vec![1.0, 1.0], vec![2.0, 1.0]], "{status}");
            assert_eq!(calls.load(Ordering::SeqCst), 2, "one failure, one retry ({status})");
        }
    }

    #[tokio::test]
    async fn retries_end_with_a_classified_error_without_the_key() {
        let (base, calls) = server(StatusCode::SERVICE_UNAVAILABLE, usize::MAX).await;
        let e = embedder(&base, 2);
        let err = e.embed(&["x".to_string()]).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "the first attempt and two retries");
        assert!(matches!(err, EmbedError::Remote(BackendError::Http { status: 503, .. })), "{err}");
        let msg = format!("{err} {err:?} {e:?}");
        assert!(msg.contains("/v1/embeddings") && msg.contains("***"), "{msg}");
        assert!(!msg.contains("SECRET123"), "{msg}");
    }

    #[tokio::test]
    async fn a_permanent_error_is_not_retried() {
        let (base, calls) = server(StatusCode::UNAUTHORIZED, usize::MAX).await;
        let err = embedder(&base, 5).embed(&["x".to_string()]).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
    }

    #[test]
    fn replies_are_placed_by_index_and_checked() {
        let out = r#"{"data": [{"index": 1, "embedding": [2]}, {"index": 0, "embedding": [1]}]}"#;
        assert_eq!(parse_embeddings(out, 2).unwrap(), vec![vec![1.0], vec![2.0]]);
        for bad in [
            "",
            "{}",
            r#"{"data": [{"index": 0, "embedding": []}]}"#,
            r#"{"data": [{"index": 5, "embedding": [1]}]}"#,
        ] {
            assert!(parse_embeddings(bad, 1).is_err(), "{bad}");
        }
        assert!(parse_embeddings(r#"{"data": []}"#, 1).unwrap_err().contains("0 embeddings for 1"));
    }

    #[test]
    fn specs_and_urls_are_checked() {
        assert!(OpenAiEmbedder::new("ftp://x/v1", "m", None).is_err());
        assert!(OpenAiEmbedder::new("http://x/v1", "m", Some("bad\nkey".into())).is_err());
        let e = OpenAiEmbedder::new("http://user:pw@localhost:1/v1/", "m", Some("sk-1".into())).unwrap();
        assert_eq!(e.id(), "openai:m@http://user:***@localhost:1/v1");
        assert!(!format!("{e:?}").contains("sk-1"));
        assert!(OpenAiEmbedder::from_spec("openai:").is_err());
        let err = OpenAiEmbedder::from_spec("cohere:x").unwrap_err().to_string();
        assert!(err.contains("expected `openai:MODEL`"), "{err}");
        let e = OpenAiEmbedder::from_spec("openai:emb@http://localhost:9/v1/").unwrap();
        assert_eq!(e.id(), "openai:emb@http://localhost:9/v1");
    }
}
