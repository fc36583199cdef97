//! Retries, concurrency and rate limits, and a request timeout around any backend.
//!
//! Servers fail transiently (rate limits, overloaded replicas, dropped connections) and an
//! experiment sends thousands of requests, so every backend call goes through [`Resilient`]:
//! transient errors are retried with exponential backoff and full jitter (waiting at least
//! as long as the server's `Retry-After`), while errors that a retry cannot fix (a rejected
//! key, a bad request, a malformed reply) are returned at once.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::{BackendError, ChatModel, ChatRequest, ChatResponse};

/// Retries so far in this process, by cause (`HTTP 429`, `timeout`, ...): a count to report
/// at intervals and in summaries instead of a log line per retry.
static RETRIES: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The cause of a retry, as counted.
fn retry_cause(err: &BackendError) -> String {
    match err {
        BackendError::Http { status, .. } => format!("HTTP {status}"),
        BackendError::Timeout { .. } => "timeout".into(),
        BackendError::Connect { .. } => "connection".into(),
        other => other.to_string().chars().take(40).collect(),
    }
}

/// Counts a retry of `err`; returns how many there have been for its cause.
fn count_retry(err: &BackendError) -> u64 {
    let mut counts = RETRIES.lock().unwrap_or_else(|p| p.into_inner());
    let n = counts.entry(retry_cause(err)).or_default();
    *n += 1;
    *n
}

/// Retries made so far by every resilient backend in this process, by cause.
pub(crate) fn retry_counts() -> std::collections::BTreeMap<String, u64> {
    RETRIES.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `HTTP 429 ×12, timeout ×2`, or `None` when there were no retries.
pub fn retry_summary() -> Option<String> {
    let counts = retry_counts();
    (!counts.is_empty())
        .then(|| counts.iter().map(|(c, n)| format!("{c} ×{n}")).collect::<Vec<_>>().join(", "))
}

/// Longest wait a server's `Retry-After` can impose when `max_delay` is shorter; beyond this
/// the request is retried anyway (and most likely told to wait again).
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// How hard to try, and how fast to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResilienceConfig {
    /// Retries after the first attempt (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// Backoff before the first retry (before jitter); doubles with every retry.
    pub base_delay: Duration,
    /// Upper bound for the exponential backoff.
    pub max_delay: Duration,
    /// Requests in flight at once (at least 1).
    pub max_concurrency: usize,
    /// Requests started per minute, spaced evenly; `None` or `Some(0)` for no limit.
    pub requests_per_minute: Option<u32>,
    /// Limit for each attempt; `None` leaves it to the backend.
    pub request_timeout: Option<Duration>,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_concurrency: 8,
            requests_per_minute: None,
            request_timeout: None,
        }
    }
}

impl ResilienceConfig {
    /// The wait before retry number `retry` (0-based): uniform in `[0, min(max_delay,
    /// base_delay * 2^retry)]`, and never less than the server's `retry_after` (capped at
    /// the larger of `max_delay` and one minute).
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let ceiling = self.base_delay.saturating_mul(2u32.saturating_pow(retry)).min(self.max_delay);
        // Not `mul_f64`: that panics when a huge `max_delay` rounds up past `Duration::MAX`.
        let jittered =
            Duration::try_from_secs_f64(ceiling.as_secs_f64() * rng.random::<f64>()).unwrap_or(ceiling);
        let floor = retry_after.map_or(Duration::ZERO, |ra| ra.min(self.max_delay.max(RETRY_AFTER_CAP)));
        jittered.max(floor)
    }
}

/// Spaces request starts evenly: one every `interval`, no bursts.
#[derive(Debug)]
struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    fn per_minute(rpm: u32) -> Option<Self> {
        (rpm > 0).then(|| Self { interval: Duration::from_secs(60) / rpm, next: Mutex::new(None) })
    }

    /// Waits for this request's slot.
    async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A backend with retries, a concurrency limit, an optional rate limit and a per-attempt
/// timeout. Share one per backend (behind an `Arc`) so the limits apply to all its users.
#[derive(Debug)]
pub struct Resilient<M> {
    inner: M,
    config: ResilienceConfig,
    permits: Semaphore,
    rate: Option<RateLimiter>,
}

impl<M> Resilient<M> {
    /// Wraps `inner`; the limits apply to every request sent through this wrapper.
    pub fn new(inner: M, config: ResilienceConfig) -> Self {
        let permits = Semaphore::new(config.max_concurrency.clamp(1, Semaphore::MAX_PERMITS));
        let rate = config.requests_per_minute.and_then(RateLimiter::per_minute);
        Self { inner, config, permits, rate }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// How hard it tries and how fast it goes.
    pub fn config(&self) -> &ResilienceConfig {
        &self.config
    }

    /// Runs any request to the wrapped backend (`request` is called once per attempt) under
    /// these limits, retrying transient errors. `endpoint` names the backend in timeouts
    /// and logs. [`ChatModel::chat`] goes through here; so can other requests to the same
    /// server (embeddings), sharing its limits.
    pub async fn call<T, F, Fut>(&self, endpoint: &str, mut request: F) -> Result<T, BackendError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        let mut retry = 0;
        loop {
            let err = match self.attempt(endpoint, request()).await {
                Ok(reply) => return Ok(reply),
                Err(err) => err,
            };
            if !err.is_retryable() || retry >= self.config.max_retries {
                return Err(err);
            }
            let delay = self.config.backoff(retry, err.retry_after(), &mut rand::rng());
            retry += 1;
            // One warning per cause; later retries are counted (see [`retry_counts`]) and
            // logged at debug level, so a flaky server does not flood a batch job's log.
            if count_retry(&err) == 1 {
                tracing::warn!(
                    backend = %endpoint,
                    error = %err,
                    "retrying after a transient backend error (further retries for this cause are counted, not logged)"
                );
            } else {
                tracing::debug!(
                    backend = %endpoint,
                    retry,
                    max_retries = self.config.max_retries,
                    delay_ms = delay.as_millis() as u64,
                    error = %err,
                    "retrying after a transient backend error"
                );
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: holds a concurrency permit only while the request is in flight, so
    /// requests waiting out a backoff do not block others.
    async fn attempt<T>(
        &self,
        endpoint: &str,
        request: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let _permit = self.permits.acquire().await.map_err(|_| BackendError::Cancelled)?;
        if let Some(rate) = &self.rate {
            rate.acquire().await;
        }
        match self.config.request_timeout {
            Some(after) => match tokio::time::timeout(after, request).await {
                Ok(result) => result,
                Err(_) => Err(BackendError::Timeout { endpoint: endpoint.to_string(), after }),
            },
            None => request.await,
        }
    }
}

#[async_trait::async_trait]
impl<M: ChatModel> ChatModel for Resilient<M> {
    fn id(&self) -> String {
        self.inner.id()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, BackendError> {
        let inner = &self.inner;
        self.call(&inner.id(), || inner.chat(request.clone())).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex as StdMutex};

    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Replays a list of outcomes (then succeeds), recording when each call started and
    /// how many ran at once.
    #[derive(Default)]
    struct Flaky {
        outcomes: StdMutex<Vec<Result<(), BackendError>>>,
        starts: StdMutex<Vec<Instant>>,
        work: Duration,
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Flaky {
        fn new(mut outcomes: Vec<Result<(), BackendError>>) -> Self {
            outcomes.reverse();
            Self { outcomes: StdMutex::new(outcomes), ..Default::default() }
        }
        fn calls(&self) -> usize {
            self.starts.lock().unwrap().len()
        }
        fn gaps(&self) -> Vec<Duration> {
            let starts = self.starts.lock().unwrap();
            starts.windows(2).map(|w| w[1] - w[0]).collect()
        }
    }

    #[async_trait::async_trait]
    impl ChatModel for Flaky {
        fn id(&self) -> String {
            "flaky".into()
        }
        async fn chat(&self, _: ChatRequest) -> Result<ChatResponse, BackendError> {
            self.starts.lock().unwrap().push(Instant::now());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.work).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            let outcome = self.outcomes.lock().unwrap().pop().unwrap_or(Ok(()));
            outcome.map(|()| ChatResponse { content: "ok".into(), ..Default::default() })
        }
    }

    fn http(status: u16, retry_after: Option<Duration>) -> BackendError {
        BackendError::Http { status, endpoint: "e".into(), body_excerpt: String::new(), retry_after }
    }

    fn fast() -> ResilienceConfig {
        ResilienceConfig {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            ..Default::default()
        }
    }

    #[test]
    fn backoff_is_bounded_and_respects_retry_after() {
        let config = fast();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for retry in 0..40 {
            let d = config.backoff(retry, None, &mut rng);
            let ceiling = Duration::from_millis(100).saturating_mul(2u32.saturating_pow(retry));
            assert!(d <= ceiling.min(config.max_delay), "retry {retry}: {d:?}");
            let d = config.backoff(retry, Some(Duration::from_secs(5)), &mut rng);
            assert!(d >= Duration::from_secs(5), "{d:?}");
            let d = config.backoff(retry, Some(Duration::from_secs(3600)), &mut rng);
            assert_eq!(d, RETRY_AFTER_CAP);
        }
        let unbounded = ResilienceConfig { base_delay: Duration::MAX, max_delay: Duration::MAX, ..config };
        assert!(unbounded.backoff(u32::MAX, Some(Duration::MAX), &mut rng) <= Duration::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_then_succeeds() {
        let inner = Arc::new(Flaky::new(vec![Err(http(500, None)), Err(http(503, None))]));
        let model = Resilient::new(inner.clone(), fast());
        assert_eq!(model.chat(ChatRequest::default()).await.unwrap().content, "ok");
        assert_eq!(inner.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_at_least_retry_after() {
        let inner = Arc::new(Flaky::new(vec![Err(http(429, Some(Duration::from_secs(2))))]));
        let model = Resilient::new(inner.clone(), fast());
        model.chat(ChatRequest::default()).await.unwrap();
        assert_eq!(inner.calls(), 2);
        assert!(inner.gaps()[0] >= Duration::from_secs(2), "{:?}", inner.gaps());
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        for err in [http(401, None), http(400, None), BackendError::Config("x".into())] {
            let inner = Arc::new(Flaky::new(vec![Err(err)]));
            let model = Resilient::new(inner.clone(), fast());
            assert!(model.chat(ChatRequest::default()).await.is_err());
            assert_eq!(inner.calls(), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries() {
        let inner = Arc::new(Flaky::new((0..10).map(|_| Err(http(502, None))).collect()));
        let model = Resilient::new(inner.clone(), ResilienceConfig { max_retries: 3, ..fast() });
        let err = model.chat(ChatRequest::default()).await.unwrap_err();
        assert!(matches!(err, BackendError::Http { status: 502, .. }));
        assert_eq!(inner.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_attempts_time_out_and_are_retried() {
        let inner = Arc::new(Flaky { work: Duration::from_secs(10), ..Flaky::new(vec![]) });
        let config =
            ResilienceConfig { max_retries: 2, request_timeout: Some(Duration::from_secs(1)), ..fast() };
        let model = Resilient::new(inner.clone(), config);
        let err = model.chat(ChatRequest::default()).await.unwrap_err();
        assert!(
            matches!(err, BackendError::Timeout { ref endpoint, after } if endpoint == "flaky" && after == Duration::from_secs(1))
        );
        assert_eq!(inner.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn limits_concurrency() {
        let inner = Arc::new(Flaky { work: Duration::from_millis(50), ..Flaky::new(vec![]) });
        let model =
            Arc::new(Resilient::new(inner.clone(), ResilienceConfig { max_concurrency: 3, ..fast() }));
        let calls = (0..10).map(|_| {
            let model = model.clone();
            tokio::spawn(async move { model.chat(ChatRequest::default()).await })
        });
        for result in futures::future::join_all(calls).await {
            result.unwrap().unwrap();
        }
        assert_eq!(inner.calls(), 10);
        assert_eq!(inner.peak.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_per_minute() {
        let inner = Arc::new(Flaky::new(vec![]));
        let config = ResilienceConfig { requests_per_minute: Some(120), ..fast() };
        let model = Arc::new(Resilient::new(inner.clone(), config));
        let calls = (0..4).map(|_| {
            let model = model.clone();
            tokio::spawn(async move { model.chat(ChatRequest::default()).await })
        });
        for result in futures::future::join_all(calls).await {
            result.unwrap().unwrap();
        }
        let mut starts = inner.starts.lock().unwrap().clone();
        starts.sort();
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(500), "{starts:?}");
        }
    }
}
