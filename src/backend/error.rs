//! Errors a backend can return, classified for the retry layer.

use std::time::Duration;

/// Why a chat request failed. Messages never contain an API key.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The server answered with a non-success status.
    #[error("HTTP {status} from {endpoint}: {body_excerpt}")]
    Http { status: u16, endpoint: String, body_excerpt: String, retry_after: Option<Duration> },
    #[error("request to {endpoint} timed out after {after:?}")]
    Timeout { endpoint: String, after: Duration },
    #[error("could not connect to {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    /// The server answered 2xx but the body was not a chat completion.
    #[error("malformed response from {endpoint}: {reason}; body starts: {body_excerpt}")]
    Malformed { endpoint: String, reason: String, body_excerpt: String },
    #[error("backend configuration: {0}")]
    Config(String),
    #[error("embedded model: {0}")]
    Local(String),
    #[error("scripted backend: {0}")]
    Scripted(String),
    #[error("request cancelled")]
    Cancelled,
}

impl BackendError {
    /// Transient failures worth retrying: 429, 5xx, timeouts, connection errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { status, .. } => *status == 429 || (500..600).contains(status),
            Self::Timeout { .. } | Self::Connect { .. } => true,
            _ => false,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// At most `max` characters of `body`, on a char boundary, with an ellipsis when cut.
pub fn excerpt(body: &str, max: usize) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed.to_string(),
    }
}
