//! The on-disk response cache: hits, misses, modes, its packs, corrupt lines, the earlier
//! layout and concurrent writes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Result;
use vsim::backend::cache::{default_cache_dir, CacheMode, CachedModel};
use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{BackendError, ChatModel, ChatRequest, Message};

/// A backend answering "reply N" to its N-th call (from 1).
fn counting() -> ScriptedModel {
    let calls = Arc::new(AtomicUsize::new(0));
    ScriptedModel::from_fn(move |_| Ok(format!("reply {}", calls.fetch_add(1, Ordering::SeqCst) + 1)))
}

fn request(seed: u64) -> ChatRequest {
    ChatRequest { seed: Some(seed), temperature: Some(0.8), ..ChatRequest::new(vec![Message::user("Hi")]) }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn hit_after_miss_calls_the_model_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = counting();
    let cache = CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite);

    let first = cache.chat(request(1)).await?;
    assert!(!first.cached);
    assert_eq!(first.content, "reply 1");
    let second = cache.chat(request(1)).await?;
    assert!(second.cached);
    assert_eq!(second.content, "reply 1");
    assert_eq!(second.usage, first.usage);
    assert_eq!(second.finish_reason, first.finish_reason);
    assert_eq!(inner.requests().len(), 1);

    // A fresh wrapper over the same directory (a later run) hits too.
    let again = CachedModel::new(counting(), dir.path(), CacheMode::ReadWrite);
    assert_eq!(again.chat(request(1)).await?.content, "reply 1");
    assert_eq!(again.inner().requests().len(), 0);
    Ok(())
}

#[tokio::test]
async fn another_seed_or_backend_is_a_miss() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = counting();
    let cache = CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite);
    assert_eq!(cache.chat(request(1)).await?.content, "reply 1");
    let other = cache.chat(request(2)).await?;
    assert!(!other.cached);
    assert_eq!(other.content, "reply 2");
    assert_eq!(inner.requests().len(), 2);

    let renamed = CachedModel::new(counting().named("other-model"), dir.path(), CacheMode::ReadWrite);
    assert!(!renamed.chat(request(1)).await?.cached);
    Ok(())
}

/// The lines of every pack under `dir`.
fn pack_lines(dir: &Path) -> Vec<serde_json::Value> {
    let packs = files_under(dir);
    assert!(packs.iter().all(|p| p.parent() == Some(&dir.join("packs"))), "{packs:?}");
    let text: String = packs.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn replies_are_lines_of_a_pack_with_their_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cache = CachedModel::new(counting(), dir.path(), CacheMode::ReadWrite);
    cache.chat(request(1)).await?;
    let key = cache.key(&request(1));
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let files = files_under(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|x| x == "jsonl"), "{files:?}");
    let lines = pack_lines(dir.path());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["key"], key.as_str());
    assert_eq!(lines[0]["response"]["content"], "reply 1");
    assert!(lines[0]["response"].get("cached").is_none());
    Ok(())
}

#[tokio::test]
async fn replies_of_the_earlier_file_per_reply_layout_are_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = counting();
    let key = CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite).key(&request(1));
    let shard = dir.path().join(&key[..2]);
    std::fs::create_dir_all(&shard)?;
    let entry =
        serde_json::json!({"key": key, "backend": "scripted", "response": {"content": "stored before"}});
    std::fs::write(shard.join(format!("{key}.json")), serde_json::to_string_pretty(&entry)?)?;
    let other = cache_key_file(
        dir.path(),
        &CachedModel::new(counting(), dir.path(), CacheMode::Off).key(&request(2)),
    );
    std::fs::create_dir_all(other.parent().unwrap())?;
    std::fs::write(&other, "{\"key\": \"trunc")?;

    let cache = CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite);
    let hit = cache.chat(request(1)).await?;
    assert!(hit.cached);
    assert_eq!(hit.content, "stored before");
    // A corrupt file of that layout is a miss, stored again in a pack.
    assert!(!cache.chat(request(2)).await?.cached);
    assert!(cache.chat(request(2)).await?.cached);
    assert_eq!(inner.requests().len(), 1);
    Ok(())
}

/// Where the earlier layout kept the reply for `key`.
fn cache_key_file(dir: &Path, key: &str) -> PathBuf {
    dir.join(&key[..2]).join(format!("{key}.json"))
}

#[tokio::test]
async fn off_mode_bypasses_the_cache() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = counting();
    // Something cached already is not read either.
    CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite).chat(request(1)).await?;
    let before = files_under(dir.path());

    let cache = CachedModel::new(inner.clone(), dir.path(), CacheMode::Off);
    assert_eq!(cache.chat(request(1)).await?.content, "reply 2");
    assert_eq!(cache.chat(request(3)).await?.content, "reply 3");
    assert_eq!(inner.requests().len(), 3);
    assert_eq!(files_under(dir.path()), before);
    Ok(())
}

#[tokio::test]
async fn refresh_ignores_reads_but_writes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = counting();
    CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite).chat(request(1)).await?;
    let refresh = CachedModel::new(inner.clone(), dir.path(), CacheMode::Refresh);
    let fresh = refresh.chat(request(1)).await?;
    assert!(!fresh.cached);
    assert_eq!(fresh.content, "reply 2");
    let read = CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite).chat(request(1)).await?;
    assert!(read.cached);
    assert_eq!(read.content, "reply 2");
    assert_eq!(inner.requests().len(), 2);
    Ok(())
}

#[tokio::test]
async fn errors_are_not_cached() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = ScriptedModel::from_results([
        Err(BackendError::Http {
            status: 503,
            endpoint: "e".into(),
            body_excerpt: "busy".into(),
            retry_after: None,
        }),
        Ok("recovered".to_string()),
    ]);
    let cache = CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite);
    assert!(cache.chat(request(1)).await.is_err());
    assert!(files_under(dir.path()).is_empty());
    assert_eq!(cache.chat(request(1)).await?.content, "recovered");
    assert!(cache.chat(request(1)).await?.cached);
    assert_eq!(inner.requests().len(), 2);
    Ok(())
}

#[tokio::test]
async fn corrupt_and_torn_lines_are_misses_and_get_stored_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = counting();
    let key = CachedModel::new(counting(), dir.path(), CacheMode::Off).key(&request(1));
    std::fs::create_dir_all(dir.path().join("packs"))?;
    let pack = dir.path().join("packs").join("0000000000000-1-0.jsonl");
    // A line with the key and broken JSON after it; a torn last line; another key's entry.
    let garbage = [
        format!("{{\"key\":\"{key}\" garbage\n"),
        format!("{{\"key\":\"{key}\",\"backend\":\"x\",\"response\":{{\"content\":\"torn"),
    ];
    for text in &garbage {
        std::fs::write(&pack, text)?;
        let cache = CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite);
        let reply = cache.chat(request(1)).await?;
        assert!(!reply.cached, "{text:?} was read as a hit");
        assert!(cache.chat(request(1)).await?.cached, "stored again after {text:?}");
        // The next wrapper reads the packs afresh.
        drop(cache);
        for file in files_under(dir.path()) {
            if file != pack {
                std::fs::remove_file(file)?;
            }
        }
    }
    assert_eq!(inner.requests().len(), 2);
    Ok(())
}

#[tokio::test]
async fn concurrent_writes_give_whole_lines_that_a_later_run_reads() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cache = Arc::new(CachedModel::new(counting(), dir.path(), CacheMode::ReadWrite));
    // Concurrent writers, some for the same key.
    let calls = (0..20u64).map(|i| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.chat(request(i % 7)).await })
    });
    for result in futures::future::join_all(calls).await {
        result??;
    }
    let lines = pack_lines(dir.path());
    let keys: std::collections::BTreeSet<String> =
        lines.iter().map(|l| l["key"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(keys.len(), 7, "{lines:?}");
    drop(cache);

    let later = CachedModel::new(counting(), dir.path(), CacheMode::ReadWrite);
    for i in 0..7 {
        assert!(later.chat(request(i)).await?.cached, "request {i}");
    }
    assert_eq!(later.inner().requests().len(), 0);
    Ok(())
}

#[test]
fn default_dir_follows_vsim_cache_dir() {
    // The only test in this binary that touches the environment.
    std::env::set_var("VSIM_CACHE_DIR", "/tmp/vsim-test-cache");
    assert_eq!(default_cache_dir(), PathBuf::from("/tmp/vsim-test-cache/responses"));
    std::env::remove_var("VSIM_CACHE_DIR");
    assert!(default_cache_dir().ends_with("vsim/responses"), "{:?}", default_cache_dir());
}
