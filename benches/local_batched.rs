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
//! evaluation included, over the sum of completion tokens; the median of the runs. Each
//! local engine at each N runs in a process of its own (see `measure_in_child`: llama.cpp's
//! OpenMP thread teams slow each other down when a process holds more than one). The goals: batched at least 1.0x the server at every N, and batched at N = 4
//! and 8 over batched at N = 1 at least 0.9 of the bound: llama.cpp's own decode rate of N
//! sequences stepping together over its rate for one (`LocalModel::decode_rate`, no
//! sampling), measured in the same run beside it. The last columns put each batched run
//! beside the bound of its own replies: the decode rates of 1 to N sequences, stepped
//! through the replies' lengths, so that the tail where the longest replies finish alone
//! counts on both sides.
//!
//! A second table runs whole dialogues the way `vsim run` does: N two-agent dialogues at
//! once, agents alternating for [`DIALOGUE_TURNS`] turns, each turn a VS request whose prompt
//! is the speaker's persona and the conversation so far (so prompts grow, and each agent's
//! prefix comes back on its next turn). It reports the wall time of all N dialogues and the
//! prompt tokens evaluated and reused, with the sequential path at concurrency 1 as the
//! baseline a run without batching has. Its engines share one process, one after another:
//! an engine that runs after another may be slowed by the first one's idle thread team.
//!
//! Run: `cargo bench --bench local_batched` (`-- requests` or `-- dialogues` for one table).
//! `VSIM_BENCH_THREADS=N` sets the threads (default: all cores), `VSIM_BENCH_REPS` the runs
//! per figure of the first table (default 3), `VSIM_BENCH_DIALOGUES` the N of the second
//! (default 8).

#[path = "support/llama_server.rs"]
mod llama_server;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use llama_server::{LlamaServer, Sampling};
use vsim::backend::local::{LocalConfig, LocalModel};
use vsim::backend::{ChatModel, ChatRequest, Message};
use vsim::vs::{ItemShape, Method};

/// Concurrent requests measured.
const LEVELS: [usize; 3] = [1, 4, 8];

/// Context per sequence, as `vsim run` gives each dialogue.
const N_CTX: u32 = 2048;

/// Turns of each dialogue in the second table.
const DIALOGUE_TURNS: usize = 6;

/// Decode steps timed for the bound.
const BOUND_STEPS: usize = 48;

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Ok(what) = std::env::var(CHILD) {
        return rt.block_on(child(&what));
    }
    rt.block_on(run())
}

/// Set in a child process: `ENGINE:N` (`sequential` or `batched`), the one measurement it
/// makes (see [`measure_in_child`]).
const CHILD: &str = "VSIM_BENCH_LOCAL_CHILD";

/// What a child measured, printed as one JSON line after [`RESULT`].
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Measured {
    /// Aggregate tokens/s of each run.
    runs: Vec<f64>,
    /// Each run's reply lengths in tokens.
    lengths: Vec<Vec<u64>>,
    /// llama.cpp's decode rate of k = 1..N sequences stepping together (batched only).
    decode: Vec<f64>,
}

const RESULT: &str = "MEASURED ";

/// Runs one engine at one N in a fresh process of this bench and reads back what it
/// measured. llama.cpp's CPU backend keeps an OpenMP thread team per thread that decodes,
/// and a process holding more teams than cores steps every one of them slower (one sequence
/// measured 127 tokens/s alone and 74 once another model's thread had decoded in the same
/// process): side by side in one process, each engine would slow the other.
fn measure_in_child(engine: &str, n: usize) -> Result<Measured> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args().skip(1))
        .env(CHILD, format!("{engine}:{n}"))
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(out.status.success(), "the {engine} measurement at N = {n} failed ({})", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT))
        .with_context(|| format!("the {engine} measurement at N = {n} printed no result"))?;
    Ok(serde_json::from_str(line)?)
}

/// The child's side of [`measure_in_child`].
async fn child(what: &str) -> Result<()> {
    let (engine, n) = what.split_once(':').context("ENGINE:N")?;
    let n: usize = n.parse()?;
    let (path, base, reps) = settings()?;
    let sequences = if engine == "batched" { n } else { 1 };
    let model = LocalModel::load(&path, LocalConfig { sequences, ..base })?;
    let mut measured = Measured::default();
    for round in 0..reps {
        let (rate, lengths) = round_local(&model, n, round).await?;
        measured.runs.push(rate);
        measured.lengths.push(lengths);
    }
    if engine == "batched" {
        // The hardware bound, measured here and now on the thread that decodes: llama.cpp
        // stepping k sequences at a time (no sampling, no grammar), for every k up to N.
        for k in 1..=n {
            measured.decode.push(median(
                (0..reps).map(|_| model.decode_rate(k, BOUND_STEPS)).collect::<Result<Vec<_>, _>>()?,
            ));
        }
    }
    println!("{RESULT}{}", serde_json::to_string(&measured)?);
    Ok(())
}

/// The model file, the model settings and the runs per figure the bench uses.
fn settings() -> Result<(PathBuf, LocalConfig, usize)> {
    let path = vsim::model_store::ensure(&vsim::model_store::SMOLLM2, &vsim::progress::Progress::silent())
        .context("fetching the default model")?;
    let threads = std::env::var("VSIM_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let reps: usize = std::env::var("VSIM_BENCH_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    Ok((path, LocalConfig { threads, n_ctx: Some(N_CTX), ..LocalConfig::default() }, reps))
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
    let r = ChatRequest::new(vec![
        Message::system("You are a person with your own views. You answer with JSON only."),
        Message::user(format!(
            "Give 5 different replies you might say to: '{}' Return JSON {{\"responses\": [{{\"text\": ..., \
             \"probability\": ...}}, ...]}} with probabilities that sum to 1.",
            TOPICS[i % TOPICS.len()]
        )),
    ]);
    vs_sampling(r, 256, (round * 1000 + i) as u64)
}

/// `r` sampled as every measured VS request is: temperature 1, a seed, and the schema of
/// exactly 5 candidates with probabilities.
fn vs_sampling(mut r: ChatRequest, max_tokens: u32, seed: u64) -> ChatRequest {
    r.temperature = Some(1.0);
    r.max_tokens = Some(max_tokens);
    r.seed = Some(seed);
    r.output_schema = ItemShape::Text.constraint(Method::VsStandard, 5, 5).map(|c| c.output_schema());
    r
}

/// Aggregate tokens/s of N concurrent requests on `model`, and each reply's length in
/// tokens.
async fn round_local(model: &LocalModel, n: usize, round: usize) -> Result<(f64, Vec<u64>)> {
    model.clear_cache();
    let start = Instant::now();
    let replies = futures::future::join_all((0..n).map(|i| model.chat(request(i, round)))).await;
    let secs = start.elapsed().as_secs_f64();
    let mut lengths = Vec::with_capacity(n);
    for r in replies {
        lengths.push(r?.usage.map_or(0, |u| u.completion_tokens));
    }
    Ok((lengths.iter().sum::<u64>() as f64 / secs, lengths))
}

/// The most batching could give on replies of these `lengths`: llama.cpp decoding them
/// together, each step holding every reply not yet finished (`rates[k - 1]`: its decode rate
/// of k sequences stepping together, tokens/s), with no prompt to evaluate, no sampling and
/// no grammar. Returns tokens/s. Unlike the decode rate at N, it counts the tail where the
/// longest replies step on alone, which any batching of these requests has.
fn workload_bound(lengths: &[u64], rates: &[f64]) -> f64 {
    let longest = lengths.iter().copied().max().unwrap_or(0);
    let mut secs = 0.0;
    for step in 0..longest {
        let active = lengths.iter().filter(|&&l| l > step).count();
        secs += active as f64 / rates[active - 1];
    }
    lengths.iter().sum::<u64>() as f64 / secs.max(1e-9)
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

/// Turn `turn` of dialogue `d`: the speaker's persona, then the conversation so far.
fn turn_request(d: usize, turn: usize, history: &[String]) -> ChatRequest {
    const PERSONAS: [&str; 2] = [
        "You are a volunteer for Save the Children, talking with another participant of an online \
         study. You want to persuade them to donate part of their $2 task payment to the charity. \
         You are warm and concrete: you mention what small amounts buy, and you answer doubts.",
        "You are a participant of an online study, a 34-year-old nurse from Ohio who is careful \
         with money and a little sceptical of charities, talking with another participant. You \
         answer in your own voice, briefly, and you decide for yourself whether to donate.",
    ];
    let names = ["Persuader", "Persuadee"];
    let speaker = turn % 2;
    let transcript: Vec<String> =
        history.iter().enumerate().map(|(t, line)| format!("{}: {line}", names[t % 2])).collect();
    let r = ChatRequest::new(vec![
        Message::system(PERSONAS[speaker]),
        Message::user(format!(
            "The conversation so far:\n{}\n\nGive 5 different next replies {} might say. Return JSON \
             {{\"responses\": [{{\"text\": ..., \"probability\": ...}}, ...]}} with probabilities that sum \
             to 1.",
            if transcript.is_empty() { "(nothing yet)".to_string() } else { transcript.join("\n") },
            names[speaker]
        )),
    ]);
    vs_sampling(r, 320, (d * 100 + turn) as u64)
}

/// The first candidate's text of a VS reply: the line the dialogue goes on with.
fn first_text(content: &str) -> String {
    serde_json::from_str::<serde_json::Value>(content)
        .ok()
        .and_then(|v| v["responses"][0]["text"].as_str().map(str::to_string))
        .unwrap_or_else(|| content.chars().take(200).collect())
}

/// Runs `n` dialogues at once through `chat` (a request to the reply's text and generated
/// tokens); returns the wall time in seconds and the tokens generated.
async fn dialogues<F, Fut>(n: usize, chat: F) -> Result<(f64, u64)>
where
    F: Fn(ChatRequest) -> Fut,
    Fut: std::future::Future<Output = Result<(String, u64)>>,
{
    let chat = &chat;
    let start = Instant::now();
    let runs = (0..n).map(|d| async move {
        let (mut history, mut tokens) = (Vec::new(), 0);
        for turn in 0..DIALOGUE_TURNS {
            let (text, generated) = chat(turn_request(d, turn, &history)).await?;
            tokens += generated;
            history.push(first_text(&text));
        }
        Ok::<u64, anyhow::Error>(tokens)
    });
    let done = futures::future::join_all(runs).await;
    let secs = start.elapsed().as_secs_f64();
    Ok((secs, done.into_iter().sum::<Result<u64>>()?))
}

/// [`dialogues`] on the embedded model, with its prompt counters.
async fn dialogues_local(model: &LocalModel, n: usize) -> Result<(f64, u64, String)> {
    model.clear_cache();
    let before = model.stats();
    let (secs, tokens) = dialogues(n, |r| async move {
        let reply = model.chat(r).await?;
        Ok((reply.content, reply.usage.map_or(0, |u| u.completion_tokens)))
    })
    .await?;
    let after = model.stats();
    let prompt = format!(
        "{} evaluated, {} reused",
        after.prompt_tokens_evaluated - before.prompt_tokens_evaluated,
        after.prompt_tokens_reused - before.prompt_tokens_reused
    );
    Ok((secs, tokens, prompt))
}

/// The second table: whole dialogues, N at once.
async fn dialogue_table(path: &Path, base: &LocalConfig, reference: Option<&Path>, n: usize) -> Result<()> {
    println!(
        "\n{n} two-agent dialogues of {DIALOGUE_TURNS} VS turns (k = 5) at once: wall time to the last turn"
    );
    println!("{:<28}  {:>7}  {:>12}  prompt tokens", "engine", "wall s", "generated/s");
    let row = |name: &str, secs: f64, tokens: u64, prompt: &str| {
        println!("{name:<28}  {secs:>7.1}  {:>12.1}  {prompt}", tokens as f64 / secs);
    };
    let sequential = LocalModel::load(path, LocalConfig { sequences: 1, ..base.clone() })?;
    let (secs, tokens, prompt) = dialogues_local(&sequential, 1).await?;
    let one = secs;
    row("sequential, 1 dialogue", secs, tokens, &prompt);
    let (secs, tokens, prompt) = dialogues_local(&sequential, n).await?;
    row(&format!("sequential, {n} at once"), secs, tokens, &prompt);
    let sequential_n = secs;
    drop(sequential);
    let batched = LocalModel::load(path, LocalConfig { sequences: n, ..base.clone() })?;
    let (secs, tokens, prompt) = dialogues_local(&batched, n).await?;
    row(&format!("batched, {n} sequences"), secs, tokens, &prompt);
    let batched_n = secs;
    drop(batched);
    if let Some(bin) = reference {
        let server = LlamaServer::start_parallel(bin, path, base.threads, N_CTX, n).await?;
        let sampling = Sampling { top_k: base.top_k, min_p: base.min_p };
        let server = &server;
        let (secs, tokens) = dialogues(n, |r| async move {
            let (text, t) = server.chat_with_text(&r, sampling, true).await?;
            Ok((text, t.predicted_n))
        })
        .await?;
        row(&format!("server, --parallel {n}"), secs, tokens, "-");
    }
    println!(
        "batched vs sequential at {n} at once: {:.2}x faster; {n} dialogues batched took {:.1}x one dialogue's time",
        sequential_n / batched_n,
        batched_n / one
    );
    Ok(())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn run() -> Result<()> {
    let (path, base, reps) = settings()?;
    let threads = base.threads;
    let reference: Option<PathBuf> = std::env::var_os("VSIM_REFERENCE_SERVER").map(PathBuf::from);
    let sampling = Sampling { top_k: base.top_k, min_p: base.min_p };
    let args: Vec<String> = std::env::args().collect();
    let only = |table: &str| args.iter().any(|a| a == table);
    let (requests, dialogues) = match (only("requests"), only("dialogues")) {
        (false, false) => (true, true),
        picked => picked,
    };
    println!(
        "model {}, {threads} threads, {N_CTX} tokens of context per sequence, {reps} runs per figure (median)",
        path.display()
    );
    let dialogue_n = std::env::var("VSIM_BENCH_DIALOGUES").ok().and_then(|n| n.parse().ok()).unwrap_or(8);
    if !requests {
        return dialogue_table(&path, &base, reference.as_deref(), dialogue_n).await;
    }
    println!("aggregate generated tokens/s of N concurrent VS requests (k = 5, JSON schema)\n");
    println!(
        "{:>3}  {:>11}  {:>9}  {:>9}  {:>15}  {:>14}  {:>14}  {:>8}  {:>11}  {:>11}  reply tokens (per run)",
        "N",
        "sequential",
        "batched",
        "server",
        "batched/server",
        "batched/own N=1",
        "bound (decode)",
        "of bound",
        "decode tok/s",
        "of workload"
    );
    let mut batched_one = f64::NAN;
    let mut decode_one = f64::NAN;
    for n in LEVELS {
        let server = match &reference {
            Some(bin) => Some(LlamaServer::start_parallel(bin, Path::new(&path), threads, N_CTX, n).await?),
            None => None,
        };
        let mut srv_runs = Vec::new();
        for round in 0..reps {
            if let Some(s) = &server {
                srv_runs.push(round_server(s, n, round, sampling).await?);
            }
        }
        drop(server);
        // Each engine in a process of its own (see `measure_in_child`).
        let seq_runs = measure_in_child("sequential", n)?.runs;
        let Measured { runs: bat_runs, lengths: bat_lengths, decode: rates } =
            measure_in_child("batched", n)?;
        let (seq, bat) = (median(seq_runs), median(bat_runs.clone()));
        let decode = rates[n - 1];
        // Each batched round against the bound of its own replies' lengths.
        let of_workload = median(
            bat_runs
                .iter()
                .zip(&bat_lengths)
                .map(|(rate, lengths)| rate / workload_bound(lengths, &rates))
                .collect(),
        );
        let spread = bat_lengths
            .iter()
            .map(|l| {
                let (lo, hi) = (l.iter().min().copied().unwrap_or(0), l.iter().max().copied().unwrap_or(0));
                format!("{lo}-{hi}")
            })
            .collect::<Vec<_>>()
            .join(" ");
        if n == 1 {
            batched_one = bat;
            decode_one = decode;
        }
        let bound = decode / decode_one;
        let srv = if srv_runs.is_empty() { f64::NAN } else { median(srv_runs) };
        let fmt = |x: f64| if x.is_nan() { "-".to_string() } else { format!("{x:.1}") };
        let ratio = |x: f64| if x.is_nan() { "-".to_string() } else { format!("{x:.2}x") };
        println!(
            "{n:>3}  {:>11}  {:>9}  {:>9}  {:>15}  {:>14}  {:>14}  {:>8}  {:>11}  {:>11}  {spread}",
            fmt(seq),
            fmt(bat),
            fmt(srv),
            ratio(bat / srv),
            ratio(bat / batched_one),
            ratio(bound),
            format!("{:.2}", bat / batched_one / bound),
            fmt(decode),
            format!("{of_workload:.2}"),
        );
    }
    println!(
        "\ngoals: batched/server >= 1.00x at every N; batched/own N=1 >= 0.9 of the bound at N = 4 and 8 \
         (bound: llama.cpp's decode rate of N sequences stepping together over its rate for one, {BOUND_STEPS} steps)\n\
         of workload: batched tokens/s over llama.cpp's decode rate on the same replies' lengths (each step \
         holding the replies not yet finished; no prompt, sampling or grammar), median over runs"
    );
    if dialogues {
        dialogue_table(&path, &base, reference.as_deref(), dialogue_n).await?;
    }
    Ok(())
}
