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
#[error("invalid model spec `{spec}`: {reason}; expected `local`, `local:PATH.gguf`, `openai:MODEL` or `openai:MODEL@BASE_URL`")]
pub struct ModelSpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ModelSpec {
    /// Parses a `--model` value (surrounding whitespace ignored).
    pub fn parse(spec: &str) -> Result<Self, ModelSpecError> {
        let s = spec.trim();
        let err = |reason: &str| ModelSpecError { spec: spec.to_string(), reason: reason.to_string() };
        if s == "local" || s == "local:default" {
            return Ok(Self::LocalDefault);
        }
        if let Some(path) = s.strip_prefix("local:") {
            if path.is_empty() {
                return Err(err("missing path after `local:`"));
            }
            return Ok(Self::LocalPath(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("openai:") {
            let (model, base_url) = match rest.split_once('@') {
                Some((m, u)) => (m, Some(u)),
                None => (rest, None),
            };
            if model.is_empty() {
                return Err(err("missing model name after `openai:`"));
            }
            if let Some(u) = base_url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(err("base URL must start with http:// or https://"));
                }
                if let Err(e) = reqwest::Url::parse(u) {
                    return Err(err(&format!("base URL `{u}` is not a valid URL ({e})")));
                }
            }
            return Ok(Self::OpenAi { model: model.to_string(), base_url: base_url.map(str::to_string) });
        }
        Err(err("unknown backend"))
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
