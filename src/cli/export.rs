//! `vsim export`: run directories in other tools' formats.

use std::path::PathBuf;

use super::{CliError, CliResult};

#[derive(clap::Subcommand, Debug)]
pub enum ExportCommand {
    /// A ConvoKit corpus (load it with convokit.Corpus(filename=OUT_DIR)).
    #[command(
        after_help = "Example:\n  vsim export convokit runs/persuasion_for_good-seed0 corpus/\n  python -c 'import convokit; print(convokit.Corpus(filename=\"corpus\").print_summary_stats())'"
    )]
    Convokit { run_dir: PathBuf, out_dir: PathBuf },
}

pub fn run(cmd: ExportCommand) -> CliResult {
    match cmd {
        ExportCommand::Convokit { run_dir, out_dir } => {
            let c = vsim::export::convokit::export_convokit(&run_dir, &out_dir).map_err(|e| match e {
                vsim::export::convokit::ExportError::NotARun(_) => CliError::input(e),
                other => CliError::failed(other),
            })?;
            outln!(
                "{}: {} conversations, {} utterances, {} speakers",
                out_dir.display(),
                c.conversations,
                c.utterances,
                c.speakers
            );
            Ok(0)
        }
    }
}
