//! llama.cpp's own HTTP server as the reference the embedded backend is measured against:
//! started on the same GGUF file, threads and context length, fed the same requests, and
//! timed by its own clock (the `timings` object of each reply), so HTTP costs nothing.

// Shared by the local_backend and local_batched benches, each of which uses a part.
#![allow(dead_code)]
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use vsim::backend::ChatRequest;

/// A running `llama-server`, killed on drop.
pub struct LlamaServer {
    child: Child,
    base_url: String,
    client: reqwest::Client,
}

/// The server's own measurement of one request.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Timings {
    /// Prompt tokens taken from the slot's cache.
    pub cache_n: u64,
    /// Prompt tokens evaluated.
    pub prompt_n: u64,
    pub prompt_ms: f64,
    /// Tokens generated.
    pub predicted_n: u64,
    pub predicted_ms: f64,
}

/// Sampling settings sent with every request, so that the server runs the same sampler
/// chain as the embedded backend (top-k, top-p, min-p, temperature, seeded draw).
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    pub top_k: u32,
    pub min_p: f32,
}

impl LlamaServer {
    /// Starts `binary` on `model` and waits until it serves. Two slots of `n_ctx` tokens,
    /// one per agent of a two-agent dialogue (the embedded backend keeps a slot per agent
    /// too), and no host-memory prompt cache, which would carry state from one measured
    /// replay into the next.
    pub async fn start(binary: &Path, model: &Path, threads: usize, n_ctx: u32) -> Result<Self> {
        Self::start_parallel(binary, model, threads, n_ctx, 2).await
    }

    /// [`LlamaServer::start`] with `parallel` slots of `n_ctx` tokens each, decoded together
    /// (llama.cpp's continuous batching).
    pub async fn start_parallel(
        binary: &Path,
        model: &Path,
        threads: usize,
        n_ctx: u32,
        parallel: usize,
    ) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::env::temp_dir().join(format!("vsim-bench-llama-server-{port}.log"));
        let child = Command::new(binary)
            .args(["--model", &model.display().to_string()])
            .args(["--threads", &threads.to_string(), "--threads-batch", &threads.to_string()])
            .args(["--ctx-size", &(parallel as u32 * n_ctx).to_string(), "--parallel", &parallel.to_string()])
            .args(["--cache-ram", "0"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server =
            Self { child, base_url: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("llama-server exited with {status} before serving; see {}", log.display());
            }
            let health = server.client.get(format!("{}/health", server.base_url)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("llama-server did not come up in 120 s; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends `request` to the OpenAI-compatible endpoint (a constraint goes as
    /// `response_format: json_schema`, which the server turns into a grammar) and returns
    /// the server's timings. `cache_prompt: false` evaluates the whole prompt afresh.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        sampling: Sampling,
        cache_prompt: bool,
    ) -> Result<Timings> {
        Ok(self.chat_with_text(request, sampling, cache_prompt).await?.1)
    }

    /// [`LlamaServer::chat`], with the reply's text.
    pub async fn chat_with_text(
        &self,
        request: &ChatRequest,
        sampling: Sampling,
        cache_prompt: bool,
    ) -> Result<(String, Timings)> {
        let mut body = json!({
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature.unwrap_or(0.8),
            "top_p": request.top_p.unwrap_or(1.0),
            "top_k": sampling.top_k,
            "min_p": sampling.min_p,
            "samplers": ["top_k", "top_p", "min_p", "temperature"],
            "seed": request.seed.unwrap_or(0),
            "cache_prompt": cache_prompt,
        });
        if let Some(s) = &request.output_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": s.name, "schema": s.schema, "strict": true},
            });
        }
        let url = format!("{}/v1/chat/completions", self.base_url);
        let reply = self.client.post(url).json(&body).send().await?;
        let status = reply.status();
        let text = reply.text().await?;
        if !status.is_success() {
            bail!("llama-server answered {status}: {text}");
        }
        let reply: Value = serde_json::from_str(&text).context("llama-server reply")?;
        let timings = reply.get("timings").context("llama-server reply has no timings")?;
        let text = reply["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_string();
        Ok((text, Timings::deserialize(timings)?))
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
