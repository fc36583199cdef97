//! `vsim data`: fetch the human reference data and check what a dataset directory holds
//! before a run or an evaluation relies on it.

use std::path::PathBuf;

use super::{CliError, CliResult};
use vsim::data::fetch::{
    default_opinionqa_dir, default_pfg_dir, fetch_convokit_corpus, fetch_opinionqa_w26, is_opinionqa_w26,
    OPINIONQA_W26_FILES, OPINIONQA_W26_URL, PFG_CORPUS_URL,
};
use vsim::data::persuasionforgood::{PfgDataset, PfgRole, Split, SPLIT_SEED};

/// Datasets `vsim data fetch` knows where to find.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// PersuasionForGood, as ConvoKit publishes it (`persuasionforgood-corpus`).
    Persuasionforgood,
    /// OpinionQA's Pew wave-26 aggregates (`W26`), checked against pinned sha256s.
    Opinionqa,
}

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Download a dataset into the user's data directory (or --dir) and print where it is.
    #[command(after_help = fetch_help())]
    Fetch {
        /// Which dataset.
        #[arg(value_enum)]
        dataset: Dataset,
        /// Where to put it (default: <data dir>/vsim/datasets/persuasionforgood-corpus, or
        /// <data dir>/vsim/datasets/opinionqa/W26).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Download again even if the directory already holds a readable corpus.
        #[arg(long)]
        force: bool,
        /// Download from this URL instead (a mirror of ConvoKit's zip, or of OpinionQA's W26
        /// folder).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Counts, the consistency filter and the split sizes of a dataset (either layout).
    #[command(after_help = "Examples:
  vsim data summary pfg:data/persuasionforgood
  vsim data summary pfg:~/.local/share/vsim/datasets/persuasionforgood-corpus --split train

SPEC is pfg:DIR with DIR holding full_info.csv and full_dialog.csv (the original release) or a
ConvoKit persuasionforgood-corpus (utterances.jsonl, speakers.json, conversations.json).")]
    Summary {
        /// The dataset: `pfg:DIR`.
        spec: String,
        /// Which persuadees to report on: test (200, the fixed split that `vsim run` and
        /// `vsim eval` use), train or all.
        #[arg(long, default_value = "test", value_name = "SPLIT", value_parser = ["all", "test", "train"])]
        split: String,
    },
}

/// The examples of `vsim data fetch --help`, and where each dataset comes from, for a
/// download by hand on a machine without network access.
fn fetch_help() -> String {
    let files: Vec<&str> = OPINIONQA_W26_FILES.iter().map(|(name, _)| *name).collect();
    format!(
        "Examples:
  vsim data fetch persuasionforgood
  vsim data fetch persuasionforgood --dir data/persuasionforgood
  vsim data fetch opinionqa --dir data/opinionqa/W26

Where the data comes from, for a download by hand where this machine has no network:
  persuasionforgood: {PFG_CORPUS_URL}
    unzip it and pass the directory as --population pfg:DIR / --human pfg:DIR
  opinionqa: {OPINIONQA_W26_URL}/FILE
    for each FILE of {}, into one directory, passed as --population opinionqa:DIR
    (or `opinionqa = \"DIR\"` in a survey file); each file is checked against its pinned sha256",
        files.join(", ")
    )
}

pub async fn run(cmd: DataCommand) -> CliResult {
    match cmd {
        DataCommand::Fetch { dataset: Dataset::Persuasionforgood, dir, force, url } => {
            let dest = match dir {
                Some(d) => d,
                None => default_pfg_dir().map_err(CliError::failed)?,
            };
            if !force && dest.exists() {
                if let Ok(data) = PfgDataset::load_any(&dest) {
                    errln!("already there ({} dialogues); --force downloads it again", data.dialogues.len());
                    outln!("{}", dest.display());
                    return Ok(0);
                }
            }
            let url = url.unwrap_or_else(|| PFG_CORPUS_URL.to_string());
            let data = fetch_convokit_corpus(&url, &dest, &super::model::download_progress())
                .await
                .map_err(CliError::failed)?;
            errln!(
                "fetched {} participants in {} dialogues; use it as --population pfg:{dir} / --human pfg:{dir}",
                data.participants.len(),
                data.dialogues.len(),
                dir = dest.display()
            );
            outln!("{}", dest.display());
            Ok(0)
        }
        DataCommand::Fetch { dataset: Dataset::Opinionqa, dir, force, url } => {
            let dest = match dir {
                Some(d) => d,
                None => default_opinionqa_dir().map_err(CliError::failed)?,
            };
            if !force && is_opinionqa_w26(&dest) {
                errln!("already there (every file matches its sha256); --force downloads it again");
                outln!("{}", dest.display());
                return Ok(0);
            }
            let url = url.unwrap_or_else(|| OPINIONQA_W26_URL.to_string());
            fetch_opinionqa_w26(&url, &dest, &super::model::download_progress())
                .await
                .map_err(CliError::failed)?;
            errln!(
                "fetched OpinionQA wave 26; use it as `opinionqa = \"{dir}\"` in a survey scenario or \
                 --population opinionqa:{dir}",
                dir = dest.display()
            );
            outln!("{}", dest.display());
            Ok(0)
        }
        DataCommand::Summary { spec, split } => summary(&spec, &split),
    }
}

fn summary(spec: &str, split: &str) -> CliResult {
    let Some(dir) = spec.strip_prefix("pfg:").filter(|d| !d.trim().is_empty()) else {
        return Err(CliError::input(anyhow::anyhow!(
            "invalid dataset spec `{spec}`: expected `pfg:DIR` (PersuasionForGood, either layout)"
        )));
    };
    let split: Split = split.parse().map_err(CliError::input)?;
    let data = PfgDataset::load_any(vsim::data::expand_home(dir)).map_err(CliError::input)?;
    let utterances: usize = data.dialogues.values().map(Vec::len).sum();
    let count = |role| data.with_role(role).count();
    outln!("dataset: {spec}");
    outln!(
        "participants: {} ({} persuaders, {} persuadees)",
        data.participants.len(),
        count(PfgRole::Persuader),
        count(PfgRole::Persuadee)
    );
    outln!("dialogues: {}", data.dialogues.len());
    outln!("utterances: {utterances}");
    let chosen = data.protocol_split(split).map_err(CliError::input)?;
    outln!("filter: {}", chosen.filter);
    outln!(
        "split (fixed seed {SPLIT_SEED}, persuadees ordered by dialogue id): test {}, train {}",
        chosen.test_size,
        chosen.kept_persuadees - chosen.test_size
    );
    outln!("selected: {split} ({} persuadees)", chosen.persuadees.len());
    Ok(0)
}
