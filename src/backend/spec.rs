//! `--model SPEC` strings: which backend and model to use.
//!
//! - `local` — the embedded default model (fetched once into the cache directory);
//! - `local:PATH` — any GGUF file;
//! - `openai:MODEL` — an OpenAI-compatible server at `OPENAI_BASE_URL` (default OpenAI);
//! - `openai:MODEL@URL` — the same server kind at an explicit base URL, e.g.
//!   `openai:llama3@http://localhost:11434/v1` for Ollama.

use std::fmt;
use std::path::PathBuf;

/// A parsed model spec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelSpec {
    /// `local`: the embedded default model.
    LocalDefault,
    /// `local:PATH`: a GGUF file run by the embedded backend.
    LocalPath(PathBuf),
    /// `openai:MODEL[@URL]`: an OpenAI-compatible server.
    OpenAi {
        /// The model name the server knows it by.
        model: String,
        /// The server's base URL; `None` reads `OPENAI_BASE_URL`.
        base_url: Option<String>,
    },
}

/// A spec that cannot be parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid model spec `{spec}`: {reason}; expected {}", expected_forms())]
pub struct ModelSpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One kind of backend a spec can name: the prefix before the first `:`, the forms it takes
/// (for messages) and how the rest of the spec is read.
struct Kind {
    prefix: &'static str,
    forms: &'static str,
    parse: fn(Option<&str>) -> Result<ModelSpec, String>,
}

/// Every backend kind. Adding a backend means a row here, a [`ModelSpec`] variant and its
/// arm in [`super::factory::open_model`].
const KINDS: &[Kind] = &[
    Kind { prefix: "local", forms: "`local`, `local:PATH.gguf`", parse: parse_local },
    Kind { prefix: "openai", forms: "`openai:MODEL`, `openai:MODEL@BASE_URL`", parse: parse_openai },
];

fn expected_forms() -> String {
    KINDS.iter().map(|k| k.forms).collect::<Vec<_>>().join(", ")
}

fn parse_local(rest: Option<&str>) -> Result<ModelSpec, String> {
    match rest {
        None | Some("default") => Ok(ModelSpec::LocalDefault),
        Some("") => Err("missing path after `local:`".into()),
        Some(path) => Ok(ModelSpec::LocalPath(PathBuf::from(path))),
    }
}

fn parse_openai(rest: Option<&str>) -> Result<ModelSpec, String> {
    let rest = rest.unwrap_or_default();
    let (model, base_url) = match rest.split_once('@') {
        Some((m, u)) => (m, Some(u)),
        None => (rest, None),
    };
    if model.is_empty() {
        return Err("missing model name after `openai:`".into());
    }
    if let Some(u) = base_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err("base URL must start with http:// or https://".into());
        }
        if let Err(e) = reqwest::Url::parse(u) {
            return Err(format!("base URL `{u}` is not a valid URL ({e})"));
        }
    }
    Ok(ModelSpec::OpenAi { model: model.to_string(), base_url: base_url.map(str::to_string) })
}

impl ModelSpec {
    /// Parses a `--model` value (surrounding whitespace ignored).
    pub fn parse(spec: &str) -> Result<Self, ModelSpecError> {
        let s = spec.trim();
        let (prefix, rest) = match s.split_once(':') {
            Some((p, r)) => (p, Some(r)),
            None => (s, None),
        };
        let kind = KINDS.iter().find(|k| k.prefix == prefix);
        let parsed = kind.map_or_else(|| Err("unknown backend".to_string()), |k| (k.parse)(rest));
        parsed.map_err(|reason| ModelSpecError { spec: spec.to_string(), reason })
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalDefault => f.write_str("local"),
            Self::LocalPath(p) => write!(f, "local:{}", p.display()),
            Self::OpenAi { model, base_url: None } => write!(f, "openai:{model}"),
            Self::OpenAi { model, base_url: Some(u) } => write!(f, "openai:{model}@{u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_forms() {
        assert_eq!(ModelSpec::parse("local").unwrap(), ModelSpec::LocalDefault);
        assert_eq!(ModelSpec::parse("local:/m/x.gguf").unwrap(), ModelSpec::LocalPath("/m/x.gguf".into()));
        assert_eq!(
            ModelSpec::parse("openai:gpt-4o-mini").unwrap(),
            ModelSpec::OpenAi { model: "gpt-4o-mini".into(), base_url: None }
        );
        assert_eq!(
            ModelSpec::parse("openai:llama3@http://localhost:11434/v1").unwrap().to_string(),
            "openai:llama3@http://localhost:11434/v1"
        );
        assert!(ModelSpec::parse("gpt4").is_err());
        assert!(ModelSpec::parse("openai:").is_err());
        assert!(ModelSpec::parse("openai:x@ftp://a").is_err());
        let e = ModelSpec::parse("openai:x@http://[::1").unwrap_err().to_string();
        assert!(e.contains("not a valid URL"), "{e}");
    }
}
