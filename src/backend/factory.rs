//! Opens a backend from a [`ModelSpec`], wrapped in the retry/limit layer and the cache.

use std::path::PathBuf;
use std::sync::Arc;

use super::cache::{default_cache_dir, CacheMode, CachedModel};
use super::openai::{OpenAiConfig, OpenAiModel};
use super::resilient::{ResilienceConfig, Resilient};
use super::spec::ModelSpec;
use super::{BackendError, SharedModel};

/// How backends are opened.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Whether the response cache is read and written.
    pub cache: CacheMode,
    /// Response cache directory (default: the user's cache directory).
    pub cache_dir: Option<PathBuf>,
    /// Retries, timeouts and concurrency limits for server backends.
    pub resilience: ResilienceConfig,
    /// Send JSON schemas in `response_format` (turn off for servers that reject it).
    pub response_format: bool,
    /// Where download progress goes when the default model must be fetched (default: nowhere).
    pub progress: crate::progress::Progress,
    /// Threads for the embedded model (default: all cores).
    pub threads: Option<usize>,
    /// Requests the embedded model decodes together in one batch (continuous batching;
    /// replies may then depend on what shares the batch). 1, the default, decodes one
    /// request at a time, bit-exact. Runs set it to their concurrency unless asked to be
    /// deterministic.
    pub local_sequences: usize,
    /// Keep the embedded model on its bit-exact sequential path whatever the concurrency.
    pub deterministic: bool,
}

impl BackendOptions {
    /// These options for `concurrent` requests at once: the embedded model batches that many
    /// sequences, unless `deterministic`.
    pub fn for_concurrency(mut self, concurrent: usize) -> Self {
        self.local_sequences = if self.deterministic { 1 } else { concurrent.max(1) };
        self
    }
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self {
            cache: CacheMode::ReadWrite,
            cache_dir: None,
            resilience: ResilienceConfig::default(),
            response_format: true,
            progress: crate::progress::Progress::silent(),
            threads: None,
            local_sequences: 1,
            deterministic: false,
        }
    }
}

/// The backend settings a front end lets its user set (the CLI's flags, the Python
/// module's keywords), in the units they are written in. [`BackendSettings::options`] is
/// the one place they become [`BackendOptions`]; the defaults are the flags' defaults.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// Bypass the on-disk response cache.
    pub no_cache: bool,
    /// Response cache directory (default: the user's cache directory).
    pub cache_dir: Option<PathBuf>,
    /// Send no JSON schema in `response_format`.
    pub no_response_format: bool,
    /// Concurrent requests per server backend (at least 1; default 8).
    pub max_requests: usize,
    /// Requests-per-minute limit per server backend.
    pub rpm: Option<u32>,
    /// Per-request timeout in seconds (at least 1; default 120).
    pub timeout_secs: u64,
    /// Retries after a transient error (default: [`ResilienceConfig`]'s).
    pub max_retries: u32,
    /// Threads for the embedded model (default: all cores).
    pub threads: Option<usize>,
    /// Keep the embedded model on its bit-exact sequential path.
    pub deterministic: bool,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            no_cache: false,
            cache_dir: None,
            no_response_format: false,
            max_requests: ResilienceConfig::default().max_concurrency,
            rpm: None,
            timeout_secs: 120,
            max_retries: ResilienceConfig::default().max_retries,
            threads: None,
            deterministic: false,
        }
    }
}

impl BackendSettings {
    /// These settings as options; a fetch of the default model reports to `progress`.
    pub fn options(&self, progress: crate::progress::Progress) -> BackendOptions {
        let mut o = BackendOptions {
            cache: if self.no_cache { CacheMode::Off } else { CacheMode::ReadWrite },
            cache_dir: self.cache_dir.clone(),
            response_format: !self.no_response_format,
            threads: self.threads,
            deterministic: self.deterministic,
            progress,
            ..Default::default()
        };
        o.resilience.max_concurrency = self.max_requests.max(1);
        o.resilience.requests_per_minute = self.rpm;
        o.resilience.max_retries = self.max_retries;
        o.resilience.request_timeout = Some(std::time::Duration::from_secs(self.timeout_secs.max(1)));
        o
    }
}

/// Why a backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The backend could not be set up.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The embedded model's file could not be found or fetched.
    #[error(transparent)]
    ModelStore(#[from] crate::model_store::ModelStoreError),
    /// An embedded model was asked for in a build without the `local` feature.
    #[error("the embedded model is not available in this build (compiled without the `local` feature); use an OpenAI-compatible server (openai:MODEL or openai:MODEL@URL)")]
    NoLocal,
    /// A `local:PATH` model file that is not there: bad input, not a failure while running.
    #[error("local:{}: no such model file (a GGUF file, e.g. local:/models/model.gguf)", .0.display())]
    NoModelFile(std::path::PathBuf),
}

impl OpenError {
    /// Whether the spec asked for something that is not there (exit code 2), rather than
    /// the backend failing to open.
    pub fn is_input(&self) -> bool {
        matches!(self, OpenError::NoModelFile(_))
    }
}

/// Opens `spec` with `options`.
pub async fn open_model(spec: &ModelSpec, options: &BackendOptions) -> Result<SharedModel, OpenError> {
    let dir = options.cache_dir.clone().unwrap_or_else(default_cache_dir);
    match spec {
        ModelSpec::OpenAi { model, base_url } => {
            let config = openai_config(model, base_url.as_deref(), options);
            let inner = Resilient::new(OpenAiModel::new(config)?, options.resilience.clone());
            Ok(Arc::new(CachedModel::new(inner, dir, options.cache)))
        }
        #[cfg(feature = "local")]
        ModelSpec::LocalDefault | ModelSpec::LocalPath(_) => {
            use super::local::{LocalConfig, LocalModel};
            let path = match spec {
                ModelSpec::LocalPath(p) if !p.is_file() => return Err(OpenError::NoModelFile(p.clone())),
                ModelSpec::LocalPath(p) => p.clone(),
                _ => {
                    let progress = options.progress.clone();
                    tokio::task::spawn_blocking(move || {
                        crate::model_store::ensure(&crate::model_store::SMOLLM2, &progress)
                    })
                    .await
                    .map_err(|e| BackendError::Local(format!("model fetch task failed: {e}")))??
                }
            };
            let mut config = LocalConfig::default();
            if let Some(t) = options.threads {
                config.threads = t;
            }
            config.sequences = if options.deterministic { 1 } else { options.local_sequences.max(1) };
            let model = tokio::task::spawn_blocking(move || LocalModel::load(&path, config))
                .await
                .map_err(|e| BackendError::Local(format!("model load task failed: {e}")))??;
            Ok(Arc::new(CachedModel::new(model, dir, options.cache)))
        }
        #[cfg(not(feature = "local"))]
        ModelSpec::LocalDefault | ModelSpec::LocalPath(_) => Err(OpenError::NoLocal),
    }
}

/// The configuration an `openai:MODEL[@BASE_URL]` spec opens with: the environment's key and
/// base URL, the spec's URL over it.
pub(crate) fn openai_config(model: &str, base_url: Option<&str>, options: &BackendOptions) -> OpenAiConfig {
    let mut config = OpenAiConfig::from_env(model).with_response_format(options.response_format);
    if let Some(url) = base_url {
        config.base_url = url.trim_end_matches('/').to_string();
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_options_with_floors_on_counts_and_timeouts() {
        let o = BackendSettings { no_cache: true, max_requests: 0, timeout_secs: 0, ..Default::default() }
            .options(crate::progress::Progress::silent());
        assert_eq!(o.cache, CacheMode::Off);
        assert_eq!(o.resilience.max_concurrency, 1);
        assert_eq!(o.resilience.request_timeout, Some(std::time::Duration::from_secs(1)));
        let d = BackendSettings::default().options(crate::progress::Progress::silent());
        assert_eq!(d.cache, CacheMode::ReadWrite);
        assert!(d.response_format);
        assert_eq!(d.resilience.max_retries, ResilienceConfig::default().max_retries);
        assert_eq!(d.resilience.max_concurrency, 8);
    }
}
