//! Many dialogues on the embedded model at once: aggregate generated tokens per second for
//! 1, 4 and 8 concurrent VS requests (k = 5, JSON-schema constrained, distinct prompts and
//! seeds), side by side in one run:
//!
//! - `sequential`: the bit-exact path (`--deterministic`), one request at a time;
//! - `batched`: continuous batching over N sequences of one context (the default of
//!   `vsim run --concurrency N`);
//! - `server`: llama.cpp's own server with `--parallel N` (its continuous batching), on the
//!   same model file, threads, context per sequence, prompts and schema, when
//!   `VSIM_REFERENCE_SERVER=/path/to/llama-server` is set (`scripts/bench_reference.sh
//!   --batched` builds it and runs this bench).
//!
//! Every figure is wall time from sending the N requests to the last reply, prompt
//! evaluation included, over the sum of completion tokens; the median of the runs, which are
//! interleaved. The goals: batched at least 1.0x the server at every N, and at N = 8 at least
//! 2x batched at N = 1.
//!
//! Run: `cargo bench --bench local_batched`. `VSIM_BENCH_THREADS=N` sets the threads (default:
//! all cores), `VSIM_BENCH_REPS` the runs per figure (default 3).

#[path = "support/llama_server.rs"]
mod llama_server;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use llama_server::{LlamaServer, Sampling};
use vsim::backend::local::{LocalConfig, LocalModel};
use vsim::backend::{ChatModel, ChatRequest, Message, OutputConstraint};

/// Concurrent requests measured.
const LEVELS: [usize; 3] = [1, 4, 8];

/// Context per sequence, as `vsim run` gives each dialogue.
const N_CTX: u32 = 2048;

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run())
}

/// Request `i` of a round: its own question and seed, as N dialogues' persuadees would send.
fn request(i: usize, round: usize) -> ChatRequest {
    const TOPICS: [&str; 8] = [
        "Would you donate part of your task payment to Save the Children?",
        "Should the town build a new park or a new parking lot?",
        "Would you lend your neighbour your car for a week?",
        "Is it worth paying more for locally grown food?",
        "Would you volunteer at the food bank this weekend?",
        "Should the library stay open later on weekdays?",
        "Would you sign a petition for safer bike lanes?",
        "Would you give two dollars to a stranger collecting for a charity?",
    ];
    let mut r = ChatRequest::new(vec![
        Message::system("You are a person with your own views. You answer with JSON only."),
        Message::user(format!(
            "Give 5 different replies you might say to: '{}' Return JSON {{\"responses\": [{{\"text\": ..., \
             \"probability\": ...}}, ...]}} with probabilities that sum to 1.",
            TOPICS[i % TOPICS.len()]
        )),
    ]);
    r.temperature = Some(1.0);
    r.max_tokens = Some(256);
    r.seed = Some((round * 1000 + i) as u64);
    r.constraint = Some(OutputConstraint::Candidates {
        min_items: 5,
        max_items: 5,
        with_probability: true,
        with_reasoning: false,
    });
    r
}

/// Aggregate tokens/s of N concurrent requests on `model`.
async fn round_local(model: &LocalModel, n: usize, round: usize) -> Result<f64> {
    model.clear_cache();
    let start = Instant::now();
    let replies = futures::future::join_all((0..n).map(|i| model.chat(request(i, round)))).await;
    let secs = start.elapsed().as_secs_f64();
    let mut tokens = 0;
    for r in replies {
        tokens += r?.usage.map_or(0, |u| u.completion_tokens);
    }
    Ok(tokens as f64 / secs)
}

/// Aggregate tokens/s of N concurrent requests on the reference server.
async fn round_server(server: &LlamaServer, n: usize, round: usize, sampling: Sampling) -> Result<f64> {
    let requests: Vec<ChatRequest> = (0..n).map(|i| request(i, round)).collect();
    let start = Instant::now();
    let replies = futures::future::join_all(requests.iter().map(|r| server.chat(r, sampling, false))).await;
    let secs = start.elapsed().as_secs_f64();
    let mut tokens = 0;
    for t in replies {
        tokens += t?.predicted_n;
    }
    Ok(tokens as f64 / secs)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn run() -> Result<()> {
    let path = vsim::model_store::ensure(&vsim::model_store::SMOLLM2, &vsim::progress::Progress::silent())
        .context("fetching the default model")?;
    let threads = std::env::var("VSIM_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let reps: usize = std::env::var("VSIM_BENCH_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let reference: Option<PathBuf> = std::env::var_os("VSIM_REFERENCE_SERVER").map(PathBuf::from);
    let base = LocalConfig { threads, n_ctx: Some(N_CTX), ..LocalConfig::default() };
    let sampling = Sampling { top_k: base.top_k, min_p: base.min_p };
    println!(
        "model {}, {threads} threads, {N_CTX} tokens of context per sequence, {reps} runs per figure (median)",
        path.display()
    );
    println!("aggregate generated tokens/s of N concurrent VS requests (k = 5, JSON schema)\n");
    println!(
        "{:>3}  {:>11}  {:>9}  {:>9}  {:>15}  {:>14}",
        "N", "sequential", "batched", "server", "batched/server", "batched/own N=1"
    );
    let mut batched_one = f64::NAN;
    for n in LEVELS {
        let sequential = LocalModel::load(&path, LocalConfig { sequences: 1, ..base.clone() })?;
        let batched = LocalModel::load(&path, LocalConfig { sequences: n, ..base.clone() })?;
        let server = match &reference {
            Some(bin) => Some(LlamaServer::start_parallel(bin, Path::new(&path), threads, N_CTX, n).await?),
            None => None,
        };
        let (mut seq_runs, mut bat_runs, mut srv_runs) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..reps {
            seq_runs.push(round_local(&sequential, n, round).await?);
            bat_runs.push(round_local(&batched, n, round).await?);
            if let Some(s) = &server {
                srv_runs.push(round_server(s, n, round, sampling).await?);
            }
        }
        let (seq, bat) = (median(seq_runs), median(bat_runs));
        if n == 1 {
            batched_one = bat;
        }
        let srv = if srv_runs.is_empty() { f64::NAN } else { median(srv_runs) };
        let fmt = |x: f64| if x.is_nan() { "-".to_string() } else { format!("{x:.1}") };
        let ratio = |x: f64| if x.is_nan() { "-".to_string() } else { format!("{x:.2}x") };
        println!(
            "{n:>3}  {:>11}  {:>9}  {:>9}  {:>15}  {:>14}",
            fmt(seq),
            fmt(bat),
            fmt(srv),
            ratio(bat / srv),
            ratio(bat / batched_one)
        );
    }
    println!("\ngoals: batched/server >= 1.00x at every N; batched/own N=1 >= 2.00x at N = 8");
    Ok(())
}
