//! Embeddings for semantic diversity (see [`crate::embed::semantic_diversity`]: one minus
//! the mean pairwise cosine similarity of a role's utterances within one dialogue, negatives
//! counted as 0).
//!
//! [`OpenAiEmbedder`] calls any OpenAI-compatible `/v1/embeddings` endpoint
//! (`--embedder openai:MODEL` or `openai:MODEL@BASE_URL`; the server from
//! `OPENAI_BASE_URL`, the key from `OPENAI_API_KEY`). The key is sent as a bearer token and
//! scrubbed from every error message. [`InProcess`] adapts the offline models of
//! [`crate::embed`] (`minilm`, `dir:PATH`).

use std::time::Duration;

use serde_json::{json, Value};

/// Where requests go when neither the spec nor `OPENAI_BASE_URL` names a server.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Texts sent per request.
pub const BATCH: usize = 64;
const REDACTED: &str = "***";
const EXCERPT: usize = 300;

/// Why embeddings could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("invalid embedder `{spec}`: {reason}; expected `openai:MODEL` or `openai:MODEL@BASE_URL`")]
    Spec { spec: String, reason: String },
    #[error("embedder configuration: {0}")]
    Config(String),
    #[error("cannot reach {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("{endpoint} answered HTTP {status}: {body}")]
    Http { endpoint: String, status: u16, body: String },
    #[error("{endpoint} sent an unexpected reply: {reason}")]
    Malformed { endpoint: String, reason: String },
    #[error(transparent)]
    Model(#[from] crate::embed::EmbedError),
}

/// Turns texts into vectors.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// A name for reports, e.g. `openai:text-embedding-3-small@https://api.openai.com/v1`.
    fn id(&self) -> String;
    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// An OpenAI-compatible embeddings endpoint.
pub struct OpenAiEmbedder {
    model: String,
    api_key: Option<String>,
    client: reqwest::Client,
    url: reqwest::Url,
    /// The endpoint for messages, with any URL password removed.
    endpoint: String,
}

impl std::fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("model", &self.model)
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl OpenAiEmbedder {
    /// `openai:MODEL` or `openai:MODEL@BASE_URL`; base URL otherwise from `OPENAI_BASE_URL`,
    /// key from `OPENAI_API_KEY` (empty values count as unset).
    pub fn from_spec(spec: &str) -> Result<Self, EmbedError> {
        let err = |reason: &str| EmbedError::Spec { spec: spec.to_string(), reason: reason.to_string() };
        let rest = spec.trim().strip_prefix("openai:").ok_or_else(|| err("unknown kind"))?;
        let (model, base) = match rest.split_once('@') {
            Some((m, u)) => (m, Some(u.to_string())),
            None => (rest, None),
        };
        if model.trim().is_empty() {
            return Err(err("missing model name after `openai:`"));
        }
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let base = base.or_else(|| env("OPENAI_BASE_URL")).unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        Self::new(&base, model, env("OPENAI_API_KEY"))
    }

    /// An embedder for `model` at `base_url` (up to and including the API version).
    pub fn new(base_url: &str, model: &str, api_key: Option<String>) -> Result<Self, EmbedError> {
        if let Some(key) = &api_key {
            if key.is_empty() || reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).is_err() {
                return Err(EmbedError::Config(
                    "OPENAI_API_KEY is empty or contains characters not allowed in an HTTP header".into(),
                ));
            }
        }
        let base = base_url.trim().trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/embeddings"))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| EmbedError::Config("the base URL must be an http:// or https:// URL".into()))?;
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("vsim/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EmbedError::Config(format!("could not build the HTTP client: {e}")))?;
        Ok(Self { model: model.to_string(), api_key, client, url, endpoint: shown.to_string() })
    }

    fn scrub(&self, text: &str) -> String {
        let text: String = match self.api_key.as_deref() {
            Some(key) if !key.is_empty() => text.replace(key, REDACTED),
            _ => text.to_string(),
        };
        if text.chars().count() > EXCERPT {
            format!("{}…", text.chars().take(EXCERPT).collect::<String>())
        } else {
            text
        }
    }

    async fn batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = json!({"model": self.model, "input": texts});
        let mut req = self.client.post(self.url.clone()).json(&body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let connect = |e: reqwest::Error| EmbedError::Connect {
            endpoint: self.endpoint.clone(),
            reason: self.scrub(&e.without_url().to_string()),
        };
        let resp = req.send().await.map_err(connect)?;
        let status = resp.status();
        let text = resp.text().await.map_err(connect)?;
        if !status.is_success() {
            return Err(EmbedError::Http {
                endpoint: self.endpoint.clone(),
                status: status.as_u16(),
                body: self.scrub(&text),
            });
        }
        let malformed = |reason: String| EmbedError::Malformed {
            endpoint: self.endpoint.clone(),
            reason: self.scrub(&reason),
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| malformed(format!("not JSON ({e})")))?;
        let data =
            v.get("data").and_then(Value::as_array).ok_or_else(|| malformed("no `data` array".into()))?;
        if data.len() != texts.len() {
            return Err(malformed(format!("{} embeddings for {} texts", data.len(), texts.len())));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for (pos, item) in data.iter().enumerate() {
            let i = item.get("index").and_then(Value::as_u64).map_or(pos, |i| i as usize);
            let vec: Option<Vec<f32>> = item
                .get("embedding")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|x| x.as_f64().map(|f| f as f32)).collect());
            match (out.get_mut(i), vec) {
                (Some(slot), Some(v)) if !v.is_empty() => *slot = Some(v),
                _ => return Err(malformed(format!("item {pos} has no usable embedding or a bad index"))),
            }
        }
        out.into_iter().map(|v| v.ok_or_else(|| malformed("an embedding is missing".into()))).collect()
    }
}

#[async_trait::async_trait]
impl Embedder for OpenAiEmbedder {
    fn id(&self) -> String {
        format!("openai:{}@{}", self.model, self.endpoint.trim_end_matches("/embeddings"))
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.batch(chunk).await?);
        }
        Ok(out)
    }
}

/// An offline model of [`crate::embed`] behind this module's [`Embedder`].
pub struct InProcess(pub std::sync::Arc<dyn crate::embed::Embedder>);

#[async_trait::async_trait]
impl Embedder for InProcess {
    fn id(&self) -> String {
        self.0.id()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(self.0.embed(texts).await?)
    }
}

/// Up to `max` of `texts` (non-empty ones), a seeded sample without replacement when there
/// are more, kept in their original order.
pub fn sample_texts(texts: &[String], max: usize, seed: u64) -> Vec<String> {
    let usable: Vec<&String> = texts.iter().filter(|t| !t.trim().is_empty()).collect();
    super::compute::sample_indices(usable.len(), max, seed).into_iter().map(|i| usable[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_seeded_ordered_and_skip_blank_texts() {
        let texts: Vec<String> =
            (0..50).map(|i| if i % 10 == 0 { " ".into() } else { format!("t{i}") }).collect();
        let a = sample_texts(&texts, 10, 3);
        assert_eq!(a, sample_texts(&texts, 10, 3));
        assert_ne!(a, sample_texts(&texts, 10, 4));
        assert_eq!(a.len(), 10);
        let pos: Vec<usize> = a.iter().map(|t| texts.iter().position(|x| x == t).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "original order kept");
        assert_eq!(sample_texts(&texts, 100, 3).len(), 45);
    }

    #[test]
    fn specs_and_urls_are_checked() {
        assert!(OpenAiEmbedder::new("ftp://x/v1", "m", None).is_err());
        assert!(OpenAiEmbedder::new("http://x/v1", "m", Some("bad\nkey".into())).is_err());
        let e = OpenAiEmbedder::new("http://user:pw@localhost:1/v1/", "m", Some("sk-1".into())).unwrap();
        assert_eq!(e.id(), "openai:m@http://user@localhost:1/v1");
        assert!(!format!("{e:?}").contains("sk-1"));
    }
}
