//! Errors a backend can return, classified for the retry layer.

use std::time::Duration;

/// Why a chat request failed. Messages never contain an API key.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The server answered with a non-success status.
    #[error("HTTP {status} from {endpoint}: {body_excerpt}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The URL called, any password redacted.
        endpoint: String,
        /// The start of the response body (key scrubbed), with a hint for the usual causes.
        body_excerpt: String,
        /// How long the server asked the client to wait (`Retry-After` or `retry-after-ms`).
        retry_after: Option<Duration>,
    },
    /// The request took longer than the configured timeout.
    #[error("request to {endpoint} timed out after {after:?}")]
    Timeout {
        /// The URL called, any password redacted.
        endpoint: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The connection failed or was dropped mid-request.
    #[error("could not connect to {endpoint}: {reason}")]
    Connect {
        /// The URL called, any password redacted.
        endpoint: String,
        /// The transport error's chain of causes, key scrubbed.
        reason: String,
    },
    /// The server answered 2xx but the body was not a chat completion.
    #[error("malformed response from {endpoint}: {reason}; body starts: {body_excerpt}")]
    Malformed {
        /// The URL called, any password redacted.
        endpoint: String,
        /// What was wrong with the body.
        reason: String,
        /// The start of the response body, key scrubbed.
        body_excerpt: String,
    },
    /// The backend is misconfigured (bad URL, unknown option); retrying will not help.
    #[error("backend configuration: {0}")]
    Config(String),
    /// The embedded model failed to load or to generate.
    #[error("embedded model: {0}")]
    Local(String),
    /// The scripted test backend failed, e.g. it ran out of replies.
    #[error("scripted backend: {0}")]
    Scripted(String),
    /// The request was abandoned before it completed (its caller went away).
    #[error("request cancelled")]
    Cancelled,
    /// The run's token or cost cap was reached before this call: it was not sent.
    #[error("{BUDGET_STOP}: {0}")]
    BudgetReached(String),
}

/// How a call refused for the run's budget announces itself in a dialogue's error event.
pub(crate) const BUDGET_STOP: &str = "not sent, the run's budget is spent";

impl BackendError {
    /// Why the call was not sent, when the run's budget refused it
    /// ([`BackendError::BudgetReached`]).
    pub(crate) fn budget_reached(&self) -> Option<&str> {
        match self {
            Self::BudgetReached(reason) => Some(reason),
            _ => None,
        }
    }

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
