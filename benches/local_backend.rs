//! Embedded-model measurements, printed side by side in one run: prompt and generation
//! throughput (free, grammar-constrained the lazy way, grammar applied first), time to first
//! token, and prompt tokens evaluated over a simulated 10-turn dialogue with and without
//! prefix reuse.
//!
//! With `VSIM_REFERENCE_SERVER=/path/to/llama-server` the same requests also go, interleaved,
//! to llama.cpp's own server started on the same model file, threads and context length, and
//! the run ends with the ratio embedded / server for each measurement (target: at least 0.9).
//! `scripts/bench_reference.sh` builds that server from source and runs this bench with it.
//!
//! Run: `cargo bench --bench local_backend` (fetches the default model on first use).
//! `VSIM_BENCH_THREADS=N` overrides the thread count (default: all cores); on a machine busy
//! with other work, 1 thread gives steadier numbers. `VSIM_BENCH_SHOW_RUNS=1` also prints
//! every run's rate, in order.

#[path = "support/llama_server.rs"]
mod llama_server;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use llama_server::{LlamaServer, Sampling, Timings};
use vsim::backend::local::{GenerationReport, LocalConfig, LocalModel};
use vsim::backend::{ChatRequest, Message};
use vsim::vs::{ItemShape, Method};

/// The speed the embedded backend should reach relative to llama.cpp's server.
const TARGET_RATIO: f64 = 0.9;

/// Runs per measurement. Variants run interleaved and the table shows the median and the
/// best run, so that load from other processes on the machine skews them least.
const REPS: u64 = 7;

/// Replays of the 10-turn dialogue when comparing with the reference server.
const DIALOGUE_REPS: usize = 3;

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run())
}

/// Per-run (tokens, seconds, time to first token) of one measurement.
#[derive(Default)]
struct Runs {
    runs: Vec<(u64, f64, Duration)>,
    resamples: u64,
}

impl Runs {
    fn add(&mut self, tokens: u64, time: Duration, ttft: Duration) {
        self.runs.push((tokens, time.as_secs_f64(), ttft));
    }
    fn add_generation(&mut self, r: &GenerationReport) {
        self.add(r.completion_tokens, r.generation, r.time_to_first_token);
        self.resamples += r.grammar_resamples;
    }
    fn add_server_prompt(&mut self, t: &Timings) {
        let ms = Duration::from_secs_f64(t.prompt_ms / 1e3);
        self.add(t.prompt_n, ms, ms);
    }
    /// The server times generation from its first sampled token, so its first token is
    /// free; like its own `predicted_per_second`, count the steps after it.
    fn add_server_generation(&mut self, t: &Timings) {
        let ttft = Duration::from_secs_f64(t.prompt_ms / 1e3);
        self.add(t.predicted_n.saturating_sub(1), Duration::from_secs_f64(t.predicted_ms / 1e3), ttft);
    }
    fn tokens(&self) -> u64 {
        self.runs.iter().map(|r| r.0).sum()
    }
    /// Tokens per second of each run, in run order.
    fn rates(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.0 as f64 / r.1.max(1e-9)).collect()
    }
    fn median_rate(&self) -> f64 {
        median(self.rates())
    }
    fn best_rate(&self) -> f64 {
        self.rates().into_iter().fold(0.0, f64::max)
    }
    /// Median over runs of this run's rate / `other`'s run at the same place in the
    /// interleaving: pairs ran seconds apart, so drifts in machine load cancel.
    fn median_ratio(&self, other: &Runs) -> f64 {
        median(self.rates().iter().zip(other.rates()).map(|(a, b)| a / b.max(1e-9)).collect())
    }
    fn median_ttft(&self) -> Duration {
        let mut v: Vec<Duration> = self.runs.iter().map(|r| r.2).collect();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
    fn row(&self, name: &str) {
        if std::env::var_os("VSIM_BENCH_SHOW_RUNS").is_some() {
            let rates: Vec<String> = self.rates().iter().map(|r| format!("{r:.0}")).collect();
            println!("  runs (t/s, in order): {}", rates.join(" "));
        }
        println!(
            "{:<46} {:>7} {:>11.1} {:>9.1} {:>12.1?}",
            name,
            self.tokens(),
            self.median_rate(),
            self.best_rate(),
            self.median_ttft()
        );
    }
}

async fn run() -> Result<()> {
    let path = vsim::model_store::ensure(&vsim::model_store::SMOLLM2, &vsim::progress::Progress::silent())?;
    let mut config = LocalConfig::default();
    if let Some(n) = std::env::var("VSIM_BENCH_THREADS").ok().and_then(|v| v.parse().ok()) {
        config.threads = n;
    }
    println!("model: {}  threads: {}", path.display(), config.threads);
    let lazy = LocalModel::load(&path, config.clone())?;
    let grammar_first = LocalModel::load(&path, LocalConfig { grammar_first: true, ..config.clone() })?;
    let reference = match std::env::var_os("VSIM_REFERENCE_SERVER") {
        Some(binary) => {
            let binary = Path::new(&binary);
            let server = LlamaServer::start(binary, &path, config.threads, lazy.n_ctx()).await?;
            println!("reference: {} (same model, threads and context)", binary.display());
            Some(server)
        }
        None => None,
    };
    let sampling = Sampling { top_k: config.top_k, min_p: config.min_p };
    println!("context: {} tokens, {REPS} runs each, interleaved\n", lazy.n_ctx());

    // Prompt evaluation: a ~500-token persona prompt evaluated from scratch.
    let persona = "The persuadee is a 34-year-old teacher from Ohio who volunteers at a food \
        bank, is agreeable and conscientious, values family and fairness, and is cautious \
        about online charities after a bad experience. ";
    let long_prompt = ChatRequest {
        max_tokens: Some(1),
        temperature: Some(0.0),
        ..ChatRequest::new(vec![
            Message::system(persona.repeat(12)),
            Message::user("Summarise the persona in one word."),
        ])
    };

    // Generation: free text vs a vs-standard candidate list.
    let free_req = |seed| ChatRequest {
        max_tokens: Some(128),
        temperature: Some(0.8),
        seed: Some(seed),
        ..ChatRequest::new(vec![Message::user(
            "Write a short story about a lighthouse keeper who finds a message in a bottle.",
        )])
    };
    let vs_req = |seed| ChatRequest {
        max_tokens: Some(200),
        temperature: Some(0.8),
        seed: Some(seed),
        output_schema: ItemShape::Text.constraint(Method::VsStandard, 5, 5).map(|c| c.output_schema()),
        ..ChatRequest::new(vec![
            Message::system("You answer with JSON only."),
            Message::user(
                "Give 5 different short replies a person might say when asked to donate to \
                 Save the Children, each with its probability.",
            ),
        ])
    };

    let mut prompt = Runs::default();
    let (mut free, mut constrained, mut constrained_first) =
        (Runs::default(), Runs::default(), Runs::default());
    let (mut ref_prompt, mut ref_free, mut ref_constrained) =
        (Runs::default(), Runs::default(), Runs::default());
    for seed in 0..REPS {
        lazy.clear_cache();
        let (_, r) = lazy.chat_with_report(long_prompt.clone()).await?;
        prompt.add(r.prompt_tokens_evaluated, r.prompt_eval, r.time_to_first_token);
        // Cold caches, so that time to first token includes the prompt (and grammar setup).
        lazy.clear_cache();
        free.add_generation(&lazy.chat_with_report(free_req(seed)).await?.1);
        lazy.clear_cache();
        constrained.add_generation(&lazy.chat_with_report(vs_req(seed)).await?.1);
        grammar_first.clear_cache();
        constrained_first.add_generation(&grammar_first.chat_with_report(vs_req(seed)).await?.1);
        if let Some(server) = &reference {
            ref_prompt.add_server_prompt(&server.chat(&long_prompt, sampling, false).await?);
            ref_free.add_server_generation(&server.chat(&free_req(seed), sampling, false).await?);
            ref_constrained.add_server_generation(&server.chat(&vs_req(seed), sampling, false).await?);
        }
    }

    println!(
        "{:<46} {:>7} {:>11} {:>9} {:>12}",
        "measurement", "tokens", "median t/s", "best t/s", "median TTFT"
    );
    prompt.row("prompt eval, ~500 tokens");
    free.row("generation, free");
    constrained.row("generation, grammar (lazy check + resample)");
    constrained_first.row("generation, grammar applied first");
    println!(
        "grammar resamples (lazy): {} of {} tokens; lazy / grammar-first median speed: {:.2}x\n",
        constrained.resamples,
        constrained.tokens(),
        constrained.median_rate() / constrained_first.median_rate().max(1e-9)
    );
    if reference.is_some() {
        ref_prompt.row("llama-server: prompt eval, ~500 tokens");
        ref_free.row("llama-server: generation, free");
        ref_constrained.row("llama-server: generation, JSON schema grammar");
        println!("\n{:<46} {:>7} {:>9}", "embedded / llama-server (median of run pairs)", "ratio", "target");
        for (name, ours, theirs) in [
            ("prompt eval", &prompt, &ref_prompt),
            ("generation, free", &free, &ref_free),
            ("generation, grammar", &constrained, &ref_constrained),
        ] {
            let ratio = ours.median_ratio(theirs);
            let verdict = if ratio >= TARGET_RATIO { "met" } else { "MISSED" };
            println!("{name:<46} {ratio:>6.2}x {:>5.2}x {verdict}", TARGET_RATIO);
        }
        println!();
    }

    // A 10-turn dialogue between two agents; each turn the speaker sees the whole history.
    lazy.clear_cache();
    let before = lazy.stats();
    let (requests, with_time) = dialogue_with(&lazy).await?;
    let after = lazy.stats();
    let with_prompt = after.prompt_tokens - before.prompt_tokens;
    let with_evaluated = after.prompt_tokens_evaluated - before.prompt_tokens_evaluated;
    let no_reuse = LocalModel::load(&path, LocalConfig { prefix_reuse: false, ..config })?;
    let started = std::time::Instant::now();
    for r in &requests {
        no_reuse.chat_with_report(r.clone()).await?;
    }
    let without_time = started.elapsed();
    let without = no_reuse.stats();
    println!("10-turn dialogue (2 agents with ~100-token role prompts, 32-token replies)");
    println!("{:<28} {:>14} {:>14} {:>10}", "", "prompt tokens", "evaluated", "wall");
    println!("{:<28} {:>14} {:>14} {:>10.1?}", "with prefix reuse", with_prompt, with_evaluated, with_time);
    println!(
        "{:<28} {:>14} {:>14} {:>10.1?}",
        "without prefix reuse", without.prompt_tokens, without.prompt_tokens_evaluated, without_time
    );
    println!(
        "evaluated-token ratio (without / with): {:.2}x",
        without.prompt_tokens_evaluated as f64 / with_evaluated.max(1) as f64
    );
    if let Some(server) = &reference {
        // The server keeps its slot's KV cache between requests (`cache_prompt`), its own
        // form of prefix reuse. Replay the same ten requests through both, interleaved, each
        // from a cold cache (the server's first request skips its cache).
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut evaluated, mut cached) = (0, 0);
        for _ in 0..DIALOGUE_REPS {
            lazy.clear_cache();
            let started = std::time::Instant::now();
            for r in &requests {
                lazy.chat_with_report(r.clone()).await?;
            }
            ours.push(started.elapsed().as_secs_f64());
            let started = std::time::Instant::now();
            (evaluated, cached) = (0, 0);
            // Each agent's first turn from scratch; later turns may use the slot's cache.
            for (i, r) in requests.iter().enumerate() {
                let t = server.chat(r, sampling, i > 1).await?;
                evaluated += t.prompt_n;
                cached += t.cache_n;
            }
            theirs.push(started.elapsed().as_secs_f64());
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "{:<28} {:>14} {:>14} {:>10.1?}",
            "llama-server, prompt cache",
            evaluated + cached,
            evaluated,
            Duration::from_secs_f64(theirs)
        );
        println!(
            "dialogue wall time over {DIALOGUE_REPS} replays (median): embedded {:.2?}, llama-server \
             {:.2?}; speed ratio {:.2}x",
            Duration::from_secs_f64(ours),
            Duration::from_secs_f64(theirs),
            theirs / ours.max(1e-9)
        );
    }
    Ok(())
}

/// The middle value (the upper one of an even count); 0 for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the dialogue on `model`; returns every request it made (to replay elsewhere) and
/// the wall time.
async fn dialogue_with(model: &LocalModel) -> Result<(Vec<ChatRequest>, Duration)> {
    let systems = [
        "You are Alice, a volunteer for Save the Children, chatting online with Bob, another \
         participant in a study. Bob was paid $2 for the task. Your goal is to persuade him to \
         donate some or all of it to Save the Children, which helps children in developing \
         countries with health care, education and safety. Be friendly and honest, answer his \
         questions, use facts and personal appeals, and do not pressure him. Keep replies short.",
        "You are Bob, a 34-year-old teacher from Ohio taking part in an online study. You were \
         paid $2 for the task. You are agreeable and conscientious, you value family and \
         fairness, and you are cautious about online charities after a bad experience. Another \
         participant will talk to you. Answer naturally, as yourself. Keep replies short.",
    ];
    let mut transcript: Vec<(usize, String)> = vec![(1, "Hi! What is this chat about?".into())];
    let mut requests = Vec::new();
    let started = std::time::Instant::now();
    for turn in 0..10 {
        let speaker = turn % 2;
        let mut messages = vec![Message::system(systems[speaker])];
        for (who, text) in &transcript {
            messages.push(if *who == speaker {
                Message::assistant(text.clone())
            } else {
                Message::user(text.clone())
            });
        }
        let request = ChatRequest {
            max_tokens: Some(32),
            temperature: Some(0.7),
            seed: Some(turn as u64),
            ..ChatRequest::new(messages)
        };
        let (reply, _) = model.chat_with_report(request.clone()).await.context("dialogue turn")?;
        transcript.push((speaker, reply.content.trim().to_string()));
        requests.push(request);
    }
    Ok((requests, started.elapsed()))
}
