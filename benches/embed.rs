//! Sentence-embedding throughput of all-MiniLM-L6-v2 on this machine's cores: sentences per
//! second at batch sizes 1 and 32, on dialogue-like utterances (10–40 words).
//!
//! Run: `cargo bench --bench embed` (fetches the model on first use). `RAYON_NUM_THREADS`
//! limits the cores used.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use vsim::embed::BertEmbedder;

/// Utterances per measurement.
const N: usize = 256;

fn utterances() -> Vec<String> {
    let openers = ["I think", "Honestly,", "Well,", "You know,", "To be fair,", "Sure,", "Hmm,", "Look,"];
    let bodies = [
        "donating to Save the Children sounds like a good idea, but I need to think about it",
        "I am not sure that my money would reach the children who need it most",
        "one dollar is not much for me, so I could give that much today",
        "the charity spends most of its budget on food, schooling and medical care for kids in crisis",
        "could you tell me more about how the donations are used in war zones",
        "I already give to a local food bank every month, so I will pass this time",
        "that is a moving story and I would like to help if I can",
        "how do I know this organisation is trustworthy and not wasting the funds on overhead",
    ];
    (0..N)
        .map(|i| format!("{} {}.", openers[i % openers.len()], bodies[(i / openers.len()) % bodies.len()]))
        .collect()
}

fn measure(model: &BertEmbedder, texts: &[String], batch: usize) -> Result<(f64, Duration)> {
    let model = model.clone().with_batch_size(batch);
    // Warm-up: allocations, thread pool start-up.
    model.embed_blocking(&texts[..batch.min(texts.len())])?;
    let start = Instant::now();
    let out = model.embed_blocking(texts)?;
    let elapsed = start.elapsed();
    anyhow::ensure!(out.len() == texts.len(), "got {} vectors for {} texts", out.len(), texts.len());
    Ok((texts.len() as f64 / elapsed.as_secs_f64().max(1e-9), elapsed))
}

fn main() -> Result<()> {
    let t0 = Instant::now();
    let model =
        BertEmbedder::minilm(&vsim::progress::Progress::silent()).context("loading all-MiniLM-L6-v2")?;
    let load = t0.elapsed();
    let texts = utterances();
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!("all-MiniLM-L6-v2 (candle, CPU, {threads} threads); model load {:.2} s", load.as_secs_f64());
    println!("{:>6} {:>10} {:>14}", "batch", "texts", "sentences/s");
    let mut rates = Vec::new();
    for batch in [1, 32] {
        let (rate, elapsed) = measure(&model, &texts, batch)?;
        println!("{batch:>6} {:>10} {rate:>14.1}   ({:.2} s)", texts.len(), elapsed.as_secs_f64());
        rates.push(rate);
    }
    println!("batch 32 / batch 1: {:.2}x", rates[1] / rates[0]);
    Ok(())
}
