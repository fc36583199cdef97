//! The on-disk response cache: hits, misses, modes, corrupt files and atomic writes.

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

#[tokio::test]
async fn files_are_sharded_by_key_and_hold_the_reply() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cache = CachedModel::new(counting(), dir.path(), CacheMode::ReadWrite);
    cache.chat(request(1)).await?;
    let key = cache.key(&request(1));
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let path = dir.path().join(&key[..2]).join(format!("{key}.json"));
    assert_eq!(cache.path_for_key(&key), path);
    assert_eq!(files_under(dir.path()), vec![path.clone()]);
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    assert_eq!(stored["key"], key.as_str());
    assert_eq!(stored["response"]["content"], "reply 1");
    assert!(stored["response"].get("cached").is_none());
    Ok(())
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
async fn corrupt_files_are_misses_and_get_overwritten() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inner = counting();
    let cache = CachedModel::new(inner.clone(), dir.path(), CacheMode::ReadWrite);
    let key = cache.key(&request(1));
    let path = cache.path_for_key(&key);
    std::fs::create_dir_all(path.parent().unwrap())?;
    for garbage in
        ["{\"key\": \"trunc", "", "{\"key\":\"0000\",\"backend\":\"x\",\"response\":{\"content\":\"x\"}}"]
    {
        std::fs::write(&path, garbage)?;
        let reply = cache.chat(request(1)).await?;
        assert!(!reply.cached, "{garbage:?} was read as a hit");
    }
    assert_eq!(inner.requests().len(), 3);
    let hit = cache.chat(request(1)).await?;
    assert!(hit.cached);
    assert_eq!(hit.content, "reply 3");
    Ok(())
}

#[tokio::test]
async fn writes_leave_no_temporary_files() -> Result<()> {
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
    let files = files_under(dir.path());
    assert_eq!(files.len(), 7, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
        assert_eq!(format!("{}.json", stored["key"].as_str().unwrap_or_default()), name);
    }
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
