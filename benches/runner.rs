//! Runner benchmarks, printed as numbers (no pass/fail):
//!
//! - `throughput`: dialogues against `vsim serve-mock` at 100 ms latency with 256 in flight;
//!   achieved requests/s over the ideal (concurrency / latency), target ≥ 0.9;
//! - `ratio`: 1,024 dialogues of 21 sequential calls each, all in flight against
//!   `vsim serve-mock` at 100 ms latency, beside a minimal client making the same calls in
//!   the same process against the same server: the wall-time ratio (target >= 0.95) and
//!   CPU time per model call of each; `ratio-cached`: the same with vsim's response cache
//!   on (a fresh folder: every call a miss and a stored reply, as a first `vsim run`);
//! - `cpu`: CPU time per simulated turn with an instant backend (prompt building, parsing,
//!   selection, transcript writing), as turns per second per core;
//! - `rss`: peak resident memory (VmHWM) with 10,000 dialogues in flight against
//!   `vsim serve-mock` and at most 1,000 HTTP requests open (`--max-requests 1000`), target
//!   < 500 MB; `rss-all-open`: the same with all 10,000 requests open at once; `rss-idle`
//!   (only on request): the dialogues' own share, with a backend that never answers.
//!
//! Each part runs in a fresh process so that peak memory is its own:
//!
//! ```sh
//! cargo bench --bench runner              # throughput, ratio, ratio-cached, cpu, rss, rss-all-open
//! cargo bench --bench runner -- rss       # one of them
//! cargo bench --bench runner -- rss-idle  # the runner's own share of `rss` (no HTTP)
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vsim::backend::factory::{open_model, BackendOptions};
use vsim::backend::resilient::ResilienceConfig;
use vsim::backend::scripted::ScriptedModel;
use vsim::backend::spec::ModelSpec;
use vsim::backend::{cache::CacheMode, ChatRequest, SharedModel};
use vsim::experiment::{run_experiment_with, Population, RoleModel, RunConfig, RunOptions, RunSummary};
use vsim::scenario::{load_scenario, parse_scenario, Scenario};
use vsim::vs::OutputConstraint;

/// The allocator the command line uses, so that the figures are the command line's.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PARTS: [&str; 6] = ["throughput", "ratio", "ratio-cached", "cpu", "rss", "rss-all-open"];

fn main() {
    if let Ok(part) = std::env::var("VSIM_BENCH_PART") {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        match part.as_str() {
            "throughput" => rt.block_on(throughput()),
            "ratio" => rt.block_on(ratio(false)),
            "ratio-cached" => rt.block_on(ratio(true)),
            "cpu" => rt.block_on(cpu_per_turn()),
            "rss" => rt.block_on(peak_rss(1_000)),
            "rss-all-open" => rt.block_on(peak_rss(10_000)),
            "rss-idle" => rt.block_on(idle_rss()),
            other => eprintln!("unknown part `{other}`; parts: {}", PARTS.join(", ")),
        }
        return;
    }
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| PARTS.contains(&a.as_str()) || a == "rss-idle")
        .collect::<Vec<_>>();
    let parts: Vec<String> =
        if chosen.is_empty() { PARTS.iter().map(|s| s.to_string()).collect() } else { chosen };
    let me = std::env::current_exe().expect("own path");
    for part in parts {
        let status = Command::new(&me).env("VSIM_BENCH_PART", &part).status().expect("run part");
        if !status.success() {
            eprintln!("{part}: failed ({status})");
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A short persuasion-like scenario: a direct persuader, a VS persuadee (k = 5), a numeric
/// outcome; `max_turns` turns plus one outcome question per dialogue.
fn short_scenario(max_turns: usize) -> Scenario {
    let text = format!(
        r#"
name = "bench"
[[roles]]
id = "persuader"
name = "Persuader"
method = "direct"
system = "You ask the other worker to donate part of their $2 payment to Save the Children."
[[roles]]
id = "persuadee"
name = "Persuadee"
method = "vs-standard"
k = 5
persona = "population"
system = "You are {{{{ persona.name }}}}. {{{{ persona.profile }}}}"
[turns]
policy = "fixed"
first = "persuader"
edges = [["persuader", "persuadee"], ["persuadee", "persuader"]]
max_turns = {max_turns}
[[outcomes]]
name = "donation"
role = "persuadee"
type = "number"
min = 0
max = 2
question = "How much of your $2 do you donate?"
"#
    );
    parse_scenario(&root().join("scenarios/bench.toml"), &text).expect("bench scenario")
}

fn population() -> Population {
    Population::load(root().join("personas").to_str().expect("utf-8 path")).expect("personas")
}

/// `vsim serve-mock` in its own process, stopped when dropped.
struct MockProcess {
    child: Child,
    base_url: String,
}

impl MockProcess {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vsim"))
            .args(["serve-mock", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start vsim serve-mock");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("mock address");
        let start = line.find("http://").expect("mock prints its URL");
        let base_url = line[start..].split_whitespace().next().expect("url").to_string();
        Self { child, base_url }
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn mock_model(url: &str, max_requests: usize) -> SharedModel {
    mock_model_cached(url, max_requests, None).await
}

/// [`mock_model`] with the response cache on (read-write, as `vsim run` has it unless told
/// otherwise) in `cache_dir`.
async fn mock_model_cached(url: &str, max_requests: usize, cache_dir: Option<&Path>) -> SharedModel {
    let spec = ModelSpec::OpenAi { model: "mock".into(), base_url: Some(url.to_string()) };
    let resilience = ResilienceConfig {
        max_concurrency: max_requests,
        request_timeout: Some(Duration::from_secs(60)),
        ..ResilienceConfig::default()
    };
    let options = BackendOptions {
        cache: if cache_dir.is_some() { CacheMode::ReadWrite } else { CacheMode::Off },
        cache_dir: cache_dir.map(Path::to_path_buf),
        resilience,
        ..Default::default()
    };
    open_model(&spec, &options).await.expect("mock backend")
}

async fn run(
    scenario: &Scenario,
    model: SharedModel,
    n: usize,
    concurrency: usize,
    dir: &Path,
) -> RunSummary {
    run_seeded(scenario, model, n, concurrency, dir, 1).await
}

async fn run_seeded(
    scenario: &Scenario,
    model: SharedModel,
    n: usize,
    concurrency: usize,
    dir: &Path,
    seed: u64,
) -> RunSummary {
    let models: Vec<RoleModel> = scenario
        .roles
        .iter()
        .map(|_| RoleModel { name: "openai:mock".into(), model: model.clone() })
        .collect();
    let config = RunConfig {
        n: Some(n),
        seed,
        concurrency,
        out_dir: dir.to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment_with(
        Arc::new(scenario.clone()),
        &population(),
        &models,
        &config,
        &RunOptions::default(),
    )
    .await
    .expect("run");
    assert_eq!(summary.counts.failed, 0, "no dialogue may fail in a benchmark");
    summary
}

async fn throughput() {
    let latency = Duration::from_millis(100);
    let concurrency = 256;
    let mock = MockProcess::start(&["--latency-ms", "100"]);
    let model = mock_model(&mock.base_url, concurrency).await;
    let scenario = short_scenario(2);
    let dir = tempfile::tempdir().expect("tempdir");
    // Warm up connections, then measure.
    run(&scenario, model.clone(), concurrency, concurrency, &dir.path().join("warm")).await;
    let n = concurrency * 12;
    let started = Instant::now();
    let summary = run(&scenario, model, n, concurrency, &dir.path().join("run")).await;
    let secs = started.elapsed().as_secs_f64();
    let requests = summary.spend.calls as f64;
    let achieved = requests / secs;
    let ideal = concurrency as f64 / latency.as_secs_f64();
    println!(
        "throughput: {n} dialogues, {requests} requests in {secs:.2} s at concurrency {concurrency}, latency {} ms: \
         {achieved:.0} req/s of an ideal {ideal:.0} req/s = {:.3} (target >= 0.9)",
        latency.as_millis(),
        achieved / ideal
    );
}

/// What the minimal client sends: one VS turn request of realistic size, with its schema.
fn minimal_body() -> String {
    let schema = OutputConstraint::Candidates {
        min_items: 5,
        max_items: 5,
        with_probability: true,
        with_reasoning: false,
    }
    .json_schema();
    serde_json::json!({
        "model": "mock",
        "messages": [
            {"role": "system", "content": "You are a worker on a crowdsourcing site. You were paid $2 for this task."},
            {"role": "user", "content": "Would you consider donating part of your payment to Save the Children? \
                Generate 5 responses, each with its probability, as JSON."},
        ],
        "temperature": 1.0,
        "max_tokens": 400,
        "response_format": {"type": "json_schema", "json_schema": {"name": "candidates", "schema": schema, "strict": true}},
    })
    .to_string()
}

/// `dialogues` tasks, each making `calls` sequential POSTs of `body` and reading each reply
/// whole: the least a client can do for the same calls. Returns the wall seconds.
async fn minimal_client(url: &str, body: &str, dialogues: usize, calls: usize) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(dialogues).build().expect("client");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..dialogues {
        let (client, url, body) = (client.clone(), url.to_string(), body.to_string());
        tasks.spawn(async move {
            for _ in 0..calls {
                let reply = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("minimal client request");
                assert!(reply.status().is_success());
                reply.bytes().await.expect("minimal client reply");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("minimal client task");
    }
    started.elapsed().as_secs_f64()
}

/// 1,024 dialogues at once, 20 turns and an outcome question each (21 sequential calls),
/// against a server answering after 100 ms: vsim's wall time beside a minimal client's for
/// the same number of sequential calls, and each one's CPU per call.
///
/// `cached`: vsim with its response cache on, in a fresh folder, so that every call is a miss
/// and a stored reply: the first run of `vsim run` without `--no-cache`.
async fn ratio(cached: bool) {
    let (dialogues, turns) = (1024, 20);
    let calls = turns + 1;
    let mock = MockProcess::start(&["--latency-ms", "100"]);
    let url = format!("{}/chat/completions", mock.base_url.trim_end_matches('/'));
    let body = minimal_body();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache_dir = dir.path().join("cache");
    let model = mock_model_cached(&mock.base_url, dialogues, cached.then_some(cache_dir.as_path())).await;
    // Warm both up: connections open, pages touched.
    minimal_client(&url, &body, dialogues, 1).await;
    // Another seed than the run's, so that with the cache on no warm-up reply answers the
    // run's first turns: every measured call is a miss.
    run_seeded(&short_scenario(1), model.clone(), dialogues, dialogues, &dir.path().join("warm"), 2).await;

    let cpu = cpu_seconds();
    let minimal = minimal_client(&url, &body, dialogues, calls).await;
    let minimal_cpu = cpu_seconds() - cpu;
    let cpu = cpu_seconds();
    let started = Instant::now();
    let summary = run(&short_scenario(turns), model, dialogues, dialogues, &dir.path().join("run")).await;
    let vsim = started.elapsed().as_secs_f64();
    let vsim_cpu = cpu_seconds() - cpu;
    let vsim_calls = summary.spend.calls as f64;
    let minimal_calls = (dialogues * calls) as f64;
    println!(
        "{}: {dialogues} dialogues x {calls} sequential calls at 100 ms (floor {:.1} s): minimal client {minimal:.2} s, \
         vsim {vsim:.2} s ({vsim_calls} calls) = {:.3} (target >= 0.95); CPU per call: vsim {:.0} us, minimal client {:.0} us \
         (this process only; the mock server runs beside it on the same cores)",
        if cached { "ratio-cached (response cache on)" } else { "ratio" },
        calls as f64 * 0.1,
        minimal / vsim,
        vsim_cpu / vsim_calls * 1e6,
        minimal_cpu / minimal_calls * 1e6,
    );
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of /proc/PID/stat (utime, stime), in clock ticks of 1/100 s.
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// An instant backend with replies of realistic size.
fn instant_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        let n = req.messages.len();
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Candidates { max_items, .. }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|i| {
                        format!(
                            r#"{{"text": "Reply {i} at message {n}: I am not sure about donating, but children's health matters to me, so maybe a little.", "probability": {}}}"#,
                            (i + 1) as f64 / 15.0
                        )
                    })
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(", "))
            }
            // The outcome answer through a list method, and what was stated in the chat.
            Some(OutputConstraint::Answers { .. }) => {
                r#"{"responses": [{"answer": 0.5, "probability": 0.6}, {"answer": 1, "probability": 0.4}]}"#
                    .to_string()
            }
            Some(OutputConstraint::Number { .. } | OutputConstraint::Stated { .. }) => {
                r#"{"answer": 0.5}"#.to_string()
            }
            Some(OutputConstraint::Choice { choices }) => format!(r#"{{"answer": "{}"}}"#, choices[0]),
            _ => format!("Message {n}: would you consider giving part of your payment to Save the Children?"),
        })
    })
}

async fn cpu_per_turn() {
    let scenario = load_scenario(&root().join("scenarios/persuasion_for_good.toml")).expect("scenario");
    let model: SharedModel = Arc::new(instant_model());
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 300;
    let before = cpu_seconds();
    let started = Instant::now();
    let summary = run(&scenario, model, n, 16, dir.path()).await;
    let cpu = cpu_seconds() - before;
    let wall = started.elapsed().as_secs_f64();
    let turns = (n * scenario.max_turns) as f64;
    println!(
        "cpu: {n} dialogues x {} turns (+1 outcome each) with an instant backend: {cpu:.2} CPU s, {wall:.2} s wall; \
         {:.0} turns/s per core ({:.1} us CPU per turn); {} transcript bytes",
        scenario.max_turns,
        turns / cpu.max(1e-9),
        cpu / turns * 1e6,
        std::fs::metadata(dir.path().join("transcripts.jsonl")).map(|m| m.len()).unwrap_or(0)
    );
    assert_eq!(summary.counts.completed, n);
}

/// This process's peak resident set size in kB (VmHWM).
fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

/// 10,000 dialogues in flight, with at most `max_requests` HTTP requests open at once (as
/// `--max-requests`); `rss` uses 1,000, `rss-all-open` one request per dialogue.
async fn peak_rss(max_requests: usize) {
    let dialogues = 10_000;
    let mock = MockProcess::start(&["--latency-ms", "100"]);
    let model = mock_model(&mock.base_url, max_requests).await;
    let scenario = short_scenario(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let before = vm_hwm_kb();
    let started = Instant::now();
    let summary = run(&scenario, model, dialogues, dialogues, dir.path()).await;
    let secs = started.elapsed().as_secs_f64();
    let peak = vm_hwm_kb();
    println!(
        "rss: {} dialogues all in flight ({max_requests} HTTP requests at most), {} requests in {secs:.1} s; \
         peak RSS (VmHWM) {:.0} MB (before the run {:.0} MB; target < 500 MB)",
        summary.counts.completed,
        summary.spend.calls,
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

/// A backend that never answers: dialogues wait on their first call forever.
struct Silent;

#[async_trait::async_trait]
impl vsim::backend::ChatModel for Silent {
    fn id(&self) -> String {
        "silent".into()
    }
    async fn chat(&self, _: ChatRequest) -> Result<vsim::backend::ChatResponse, vsim::backend::BackendError> {
        std::future::pending().await
    }
}

/// Memory of 10,000 started dialogues without any HTTP: the runner's own share of `rss`.
async fn idle_rss() {
    let dialogues = 10_000;
    let scenario = short_scenario(2);
    let model: SharedModel = Arc::new(Silent);
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "silent".into(), model: model.clone() }).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RunConfig {
        n: Some(dialogues),
        seed: 1,
        concurrency: dialogues,
        out_dir: dir.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let population = population();
    let options = RunOptions::default();
    let run = run_experiment_with(Arc::new(scenario), &population, &models, &config, &options);
    let _ = tokio::time::timeout(Duration::from_secs(3), run).await;
    println!(
        "rss-idle: {dialogues} dialogues started and waiting on their first model call: peak RSS {:.0} MB",
        vm_hwm_kb() as f64 / 1024.0
    );
}
