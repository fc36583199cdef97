//! An on-disk response cache around any backend.
//!
//! Re-running an experiment (to resume it, to recompute a report, to debug one dialogue)
//! should not pay for the same model calls twice. A reply is stored under the SHA-256 of the
//! canonical JSON of `{"backend": id, "request": request}`, which covers the model, every
//! message, every sampling parameter, the seed and the output schema. Replies are appended
//! to pack files, one JSON line each, and found through an index in memory (module `pack`); they
//! are not synced to disk: after a crash an entry may be missing, and a line that cannot be
//! read back is treated as a miss and stored again. The cache is best-effort: failing to
//! write it never fails a request. Folders of the earlier file-per-reply layout
//! (`{key[0..2]}/{key}.json`) are still read.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{BackendError, ChatModel, ChatRequest, ChatResponse};
use pack::{Found, Packs};

mod pack;

/// Whether the cache is read and written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheMode {
    /// Answer from the cache when possible; store new replies.
    #[default]
    ReadWrite,
    /// Always ask the model; store (overwrite) its replies.
    Refresh,
    /// Neither read nor write.
    Off,
}

impl fmt::Display for CacheMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadWrite => "read-write",
            Self::Refresh => "refresh",
            Self::Off => "off",
        })
    }
}

impl FromStr for CacheMode {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read-write" | "readwrite" | "rw" | "on" => Ok(Self::ReadWrite),
            "refresh" => Ok(Self::Refresh),
            "off" | "none" => Ok(Self::Off),
            other => Err(BackendError::Config(format!(
                "unknown cache mode {other:?}; expected read-write, refresh or off"
            ))),
        }
    }
}

/// `$VSIM_CACHE_DIR/responses` when that is set, else `vsim/responses` in the user's cache
/// directory (or, on systems without one, in the temporary directory).
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("VSIM_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("responses"),
        None => dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("vsim").join("responses"),
    }
}

/// What a cache line (or an earlier layout's file) holds; `key` comes first, as the index
/// reads it.
#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    key: Cow<'a, str>,
    backend: Cow<'a, str>,
    response: Cow<'a, ChatResponse>,
}

/// A backend whose replies are cached on disk.
#[derive(Debug)]
pub struct CachedModel<M> {
    inner: M,
    dir: PathBuf,
    mode: CacheMode,
    /// The folder's packs, shared with every other wrapper over it in this process.
    packs: Arc<Packs>,
}

impl<M: ChatModel> CachedModel<M> {
    /// Caches `inner`'s replies under `dir` (created when first written).
    pub fn new(inner: M, dir: impl Into<PathBuf>, mode: CacheMode) -> Self {
        let dir = dir.into();
        let packs = pack::open(&dir);
        Self { inner, dir, mode, packs }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The directory the cache's packs are written to (in `packs/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the cache is read and written.
    pub fn mode(&self) -> CacheMode {
        self.mode
    }

    /// The cache key for `request`: lowercase hex SHA-256 of the canonical JSON of
    /// `{"backend": inner.id(), "request": request}`.
    pub fn key(&self, request: &ChatRequest) -> String {
        cache_key(&self.inner.id(), request)
    }

    /// The stored reply for `key`, if there is a readable one.
    async fn read(&self, key: &str) -> Option<ChatResponse> {
        // The earlier layout's file, when the reply came from one; else the cache folder.
        let (bytes, legacy) = match self.packs.get(key).await {
            Ok(Found::Line(line)) => (line, None),
            Ok(Found::Missing) => return None,
            Ok(Found::TryLegacy) => {
                let path = legacy_path(&self.dir, key);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => (bytes, Some(path)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot read cached reply; asking the model");
                        return None;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read cached reply; asking the model");
                return None;
            }
        };
        let place = legacy.as_deref().unwrap_or(&self.dir);
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(entry) if entry.key == key => {
                Some(ChatResponse { cached: true, ..entry.response.into_owned() })
            }
            Ok(_) => {
                tracing::warn!(path = %place.display(), "cached reply has another key; storing it again");
                None
            }
            Err(e) => {
                tracing::warn!(path = %place.display(), error = %e, "corrupt cached reply; storing it again");
                None
            }
        }
    }

    /// Stores `response` under `key`; failures are logged, not returned.
    async fn write(&self, key: &str, response: &ChatResponse) {
        let entry = Entry {
            key: Cow::Borrowed(key),
            backend: self.inner.id().into(),
            response: Cow::Borrowed(response),
        };
        let stored = match serde_json::to_vec(&entry) {
            Ok(line) => self.packs.put(&entry.key, &line).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = stored {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write cached reply");
        }
    }
}

/// Where the earlier layout stored the reply for `key`: `{dir}/{key[0..2]}/{key}.json`.
fn legacy_path(dir: &Path, key: &str) -> PathBuf {
    let shard = key.get(..2).unwrap_or("__");
    dir.join(shard).join(format!("{key}.json"))
}

#[async_trait::async_trait]
impl<M: ChatModel> ChatModel for CachedModel<M> {
    fn id(&self) -> String {
        self.inner.id()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, BackendError> {
        if self.mode == CacheMode::Off {
            return self.inner.chat(request).await;
        }
        let key = self.key(&request);
        if self.mode == CacheMode::ReadWrite {
            if let Some(hit) = self.read(&key).await {
                tracing::debug!(key = %key, "cache hit");
                return Ok(hit);
            }
        }
        let response = self.inner.chat(request).await?;
        self.write(&key, &response).await;
        Ok(response)
    }
}

/// Hex SHA-256 of the canonical JSON of `{"backend": backend, "request": request}`: compact,
/// with every object's keys in sorted order. It is written straight into the hash from the
/// request's fields in that order; building the request's JSON tree to sort it took most of
/// what the cache cost per call.
fn cache_key(backend: &str, request: &ChatRequest) -> String {
    let mut hasher = Sha256::new();
    let doc = KeyDoc { backend, request: KeyRequest::of(request) };
    // Writing into a hash cannot fail, and these types always serialise.
    let _ = serde_json::to_writer(&mut hasher, &doc);
    hex::encode(hasher.finalize())
}

/// `{"backend", "request"}` as the key hashes it.
#[derive(Serialize)]
struct KeyDoc<'a> {
    backend: &'a str,
    request: KeyRequest<'a>,
}

/// A [`ChatRequest`]'s fields in sorted order, as its JSON tree would hold them (an `f32`
/// becomes the `f64` of the same value there).
#[derive(Serialize)]
struct KeyRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    messages: Vec<KeyMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_schema: Option<KeySchema<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
}

impl<'a> KeyRequest<'a> {
    fn of(request: &'a ChatRequest) -> Self {
        // Every field named, so that a new one cannot be left out of the key unnoticed.
        let ChatRequest { messages, temperature, top_p, max_tokens, seed, stop, output_schema } = request;
        Self {
            max_tokens: *max_tokens,
            messages: messages.iter().map(|m| KeyMessage { content: &m.content, role: m.role }).collect(),
            output_schema: output_schema
                .as_ref()
                .map(|s| KeySchema { name: &s.name, schema: Sorted(s.schema.as_ref()) }),
            seed: *seed,
            stop,
            temperature: temperature.map(f64::from),
            top_p: top_p.map(f64::from),
        }
    }
}

#[derive(Serialize)]
struct KeyMessage<'a> {
    content: &'a str,
    role: super::Role,
}

#[derive(Serialize)]
struct KeySchema<'a> {
    name: &'a str,
    schema: Sorted<'a>,
}

/// A JSON value serialised with every object's keys in sorted order, whatever map type
/// serde_json was built with.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    out.serialize_entry(k, &Sorted(v))?;
                }
                out.end()
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Message;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"d": [true, null, "x\"y"], "c": 2.5}});
        assert_eq!(
            serde_json::to_string(&Sorted(&v)).unwrap(),
            r#"{"a":{"c":2.5,"d":[true,null,"x\"y"]},"b":1}"#
        );
    }

    /// The key as it was first computed, so that caches written then are still hits: the
    /// request's JSON tree, written with sorted keys by hand.
    fn key_from_the_tree(backend: &str, request: &ChatRequest) -> String {
        fn write_canonical(value: &Value, out: &mut String) {
            match value {
                Value::Object(map) => {
                    let mut entries: Vec<_> = map.iter().collect();
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                    out.push('{');
                    for (i, (k, v)) in entries.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&Value::String(k.clone()).to_string());
                        out.push(':');
                        write_canonical(v, out);
                    }
                    out.push('}');
                }
                Value::Array(items) => {
                    out.push('[');
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write_canonical(v, out);
                    }
                    out.push(']');
                }
                scalar => out.push_str(&scalar.to_string()),
            }
        }
        let request = serde_json::to_value(request).unwrap();
        let doc = serde_json::json!({ "backend": backend, "request": request });
        let mut canonical = String::new();
        write_canonical(&doc, &mut canonical);
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }

    #[test]
    fn the_key_is_the_hash_of_the_requests_sorted_json_tree() {
        let schema = serde_json::json!({"type": "object", "properties": {"z": {"maxLength": 600}, "a": {"minimum": 0.5}}});
        let full = ChatRequest {
            messages: vec![Message::system("be \"brief\"\n"), Message::user("Héllo"), Message::assistant("")],
            temperature: Some(0.8),
            top_p: Some(0.95),
            max_tokens: Some(512),
            seed: Some(u64::MAX),
            stop: vec!["\n\n".into(), "</s>".into()],
            output_schema: Some(crate::backend::OutputSchema { name: "vs".into(), schema: Arc::new(schema) }),
        };
        let bare = ChatRequest::new(vec![Message::user("hi")]);
        for request in [&full, &bare, &ChatRequest { temperature: Some(1.1), ..bare.clone() }] {
            assert_eq!(
                cache_key("openai:m@http://h/v1", request),
                key_from_the_tree("openai:m@http://h/v1", request)
            );
        }
    }

    #[test]
    fn key_depends_on_backend_and_every_parameter() {
        let base = ChatRequest { seed: Some(1), ..ChatRequest::new(vec![Message::user("hi")]) };
        let key = cache_key("m", &base);
        assert_eq!(key.len(), 64);
        assert_eq!(key, cache_key("m", &base.clone()));
        assert_ne!(key, cache_key("other", &base));
        let variants = [
            ChatRequest { seed: Some(2), ..base.clone() },
            ChatRequest { temperature: Some(0.5), ..base.clone() },
            ChatRequest { top_p: Some(0.9), ..base.clone() },
            ChatRequest { max_tokens: Some(10), ..base.clone() },
            ChatRequest { stop: vec!["\n".into()], ..base.clone() },
            ChatRequest { messages: vec![Message::system("hi")], ..base.clone() },
        ];
        for v in variants {
            assert_ne!(key, cache_key("m", &v), "{v:?}");
        }
    }

    #[test]
    fn modes_parse_and_print() {
        for mode in [CacheMode::ReadWrite, CacheMode::Refresh, CacheMode::Off] {
            assert_eq!(mode.to_string().parse::<CacheMode>().unwrap(), mode);
        }
        assert!("sometimes".parse::<CacheMode>().is_err());
    }
}
