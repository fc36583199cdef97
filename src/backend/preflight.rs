//! A check of an OpenAI-compatible backend before a run starts any dialogue: the server is
//! reachable, a key is there where the endpoint needs one and is accepted, and the model is
//! one the server lists. A dead port or a missing key then costs one second, not one failed
//! dialogue after another.

use std::time::Duration;

use serde::Deserialize;

use super::openai::OpenAiConfig;

/// Why a backend is not usable.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Network trouble that persisted through the retries (may be transient).
    #[error("cannot reach {endpoint}: {reason}; is the server running and the URL right?")]
    Unreachable {
        /// The server's base URL.
        endpoint: String,
        /// The last failure seen.
        reason: String,
    },
    /// The endpoint needs an API key and none is set.
    #[error("{endpoint} needs an API key and OPENAI_API_KEY is not set")]
    MissingKey {
        /// The server's base URL.
        endpoint: String,
    },
    /// The server refused the API key.
    #[error("{endpoint} rejected the API key (HTTP {status}); check OPENAI_API_KEY")]
    KeyRejected {
        /// The server's base URL.
        endpoint: String,
        /// The HTTP status it answered with (401 or 403).
        status: u16,
    },
    /// The server does not list the requested model.
    #[error("{endpoint} does not serve the model `{model}`; it lists: {}", listed.join(", "))]
    UnknownModel {
        /// The server's base URL.
        endpoint: String,
        /// The model asked for.
        model: String,
        /// The first models the server lists (at most twelve).
        listed: Vec<String>,
    },
}

impl PreflightError {
    /// Whether the cause is the request itself (key, model), not the network.
    pub fn is_input(&self) -> bool {
        !matches!(self, PreflightError::Unreachable { .. })
    }
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<ListedModel>,
}

#[derive(Deserialize)]
struct ListedModel {
    id: String,
}

/// Hosts that serve only models they list and always need a key.
fn is_openai(base_url: &str) -> bool {
    base_url.contains("://api.openai.com")
}

/// Checks the backend of `config`. Returns a note for something worth saying that does not
/// stop the run (a model a self-hosted server does not list: llama.cpp's server, for one,
/// answers under any model name).
pub async fn check(config: &OpenAiConfig) -> Result<Option<String>, PreflightError> {
    let endpoint = format!("{}/models", config.base_url.trim_end_matches('/'));
    if config.api_key.is_none() && is_openai(&config.base_url) {
        return Err(PreflightError::MissingKey { endpoint: config.base_url.clone() });
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| PreflightError::Unreachable { endpoint: endpoint.clone(), reason: e.to_string() })?;
    let mut last = String::new();
    for wait in [Duration::ZERO, Duration::from_millis(300), Duration::from_millis(1000)] {
        tokio::time::sleep(wait).await;
        let mut request = client.get(&endpoint);
        if let Some(key) = &config.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                // The whole chain of causes: reqwest's own message is "error sending request".
                last = super::openai::transport_reason(e);
                continue;
            }
        };
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(match config.api_key {
                None => PreflightError::MissingKey { endpoint: config.base_url.clone() },
                Some(_) => PreflightError::KeyRejected { endpoint: config.base_url.clone(), status },
            });
        }
        if (500..600).contains(&status) || status == 429 {
            last = format!("HTTP {status}");
            continue;
        }
        if !response.status().is_success() {
            // A server without a model list (404 and the like) can still serve chat.
            return Ok(None);
        }
        let listed: Vec<String> = match response.json::<ModelList>().await {
            Ok(list) => list.data.into_iter().map(|m| m.id).collect(),
            Err(_) => return Ok(None),
        };
        let known = listed.is_empty()
            || listed
                .iter()
                .any(|id| id == &config.model || id.strip_suffix(":latest") == Some(&config.model));
        if known {
            return Ok(None);
        }
        let shown: Vec<String> = listed.iter().take(12).cloned().collect();
        if is_openai(&config.base_url) {
            return Err(PreflightError::UnknownModel {
                endpoint: config.base_url.clone(),
                model: config.model.clone(),
                listed: shown,
            });
        }
        return Ok(Some(format!(
            "{} does not list the model `{}` (it lists: {}); going on, as some servers answer under any name",
            config.base_url,
            config.model,
            shown.join(", ")
        )));
    }
    Err(PreflightError::Unreachable { endpoint, reason: last })
}
