//! What a user can do about an error, named once, so that each front end words it its own
//! way: the command line as a flag (`--resume`), Python as a keyword argument
//! (`resume=True`). Library messages say what is wrong and name no flag.
//!
//! Errors wrap one another transparently (a run's [`RunDirError`] inside a sweep's
//! [`SweepError`]), so a wrapped error never shows in a chain of causes on its own: the
//! remedy is read here, in the top layer, through every wrapper that can carry one.

use std::error::Error;

use crate::backend::factory::OpenError;
use crate::data::fetch::FetchError;
use crate::eval::{EvalError, HumanError};
use crate::experiment::{LaunchError, RunError};
use crate::rundir::RunDirError;
use crate::survey::run::SurveyRunError;
use crate::workflow::branch::BranchError;
use crate::workflow::merge::MergeError;
use crate::workflow::sweep::{CellEvalError, SweepError};
use crate::workflow::tune::survey::SurveyTuneError;
use crate::workflow::tune::TuneError;

/// Something the user can do that fixes an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// The output folder holds a run: resume it, or write to another folder.
    ResumeOrAnotherFolder,
    /// The inputs changed since the run: give the original scenario, or allow the change.
    OriginalScenarioOrAllowChange,
    /// The scenario resolves differently from the run's: give the original.
    OriginalScenario,
    /// A cost cap needs a price for every model.
    PriceEveryModel,
    /// The system has no user data folder: name one.
    DataFolder,
    /// This build has no embedded model: use an OpenAI-compatible server.
    ServerModel,
    /// Evaluation asked for another split than the run simulated: compare the run's own, or
    /// ask for the other split explicitly.
    RunSplitOrOtherSplit,
    /// An input the run pinned changed: restore it, or allow the change.
    RestoreInputOrAllowChange,
}

/// The remedy for `error`, when one is known; look at each cause of a chain in turn.
pub fn remedy(error: &(dyn Error + 'static)) -> Option<Remedy> {
    read(error, run_dir)
        .or_else(|| read(error, run))
        .or_else(|| read(error, launch))
        .or_else(|| read(error, open))
        .or_else(|| read(error, survey))
        .or_else(|| read(error, sweep))
        .or_else(|| read(error, tune))
        .or_else(|| read(error, survey_tune))
        .or_else(|| read(error, merge))
        .or_else(|| read(error, branch))
        .or_else(|| read(error, eval))
        .or_else(|| read(error, human))
        .or_else(|| read(error, cell))
        .or_else(|| read(error, fetch))
        .flatten()
}

/// `Some(remedy_of(e))` when `error` is a `T`.
fn read<T: Error + 'static>(
    error: &(dyn Error + 'static),
    remedy_of: fn(&T) -> Option<Remedy>,
) -> Option<Option<Remedy>> {
    error.downcast_ref::<T>().map(remedy_of)
}

fn tune(e: &TuneError) -> Option<Remedy> {
    match e {
        TuneError::Sweep(e) => sweep(e),
        _ => None,
    }
}

fn survey_tune(e: &SurveyTuneError) -> Option<Remedy> {
    match e {
        SurveyTuneError::Run(e) => survey(e),
        _ => None,
    }
}

fn branch(e: &BranchError) -> Option<Remedy> {
    match e {
        BranchError::InputChanged { .. } => Some(Remedy::OriginalScenarioOrAllowChange),
        BranchError::ScenarioChanged { .. } => Some(Remedy::OriginalScenario),
        BranchError::RunDir(e) => run_dir(e),
        _ => None,
    }
}

fn cell(e: &CellEvalError) -> Option<Remedy> {
    match e {
        CellEvalError::Eval(e) => eval(e),
        CellEvalError::Human(e) => human(e),
        _ => None,
    }
}

fn fetch(e: &FetchError) -> Option<Remedy> {
    matches!(e, FetchError::NoDataDir).then_some(Remedy::DataFolder)
}

fn eval(e: &EvalError) -> Option<Remedy> {
    match e {
        EvalError::ChangedInput(_) => Some(Remedy::RestoreInputOrAllowChange),
        EvalError::Human(e) => human(e),
        _ => None,
    }
}

fn human(e: &HumanError) -> Option<Remedy> {
    matches!(e, HumanError::SplitMismatch { .. }).then_some(Remedy::RunSplitOrOtherSplit)
}

fn run_dir(e: &RunDirError) -> Option<Remedy> {
    matches!(e, RunDirError::Exists(_)).then_some(Remedy::ResumeOrAnotherFolder)
}

fn run(e: &RunError) -> Option<Remedy> {
    match e {
        RunError::RunDir(e) => run_dir(e),
        RunError::Unpriced(_) => Some(Remedy::PriceEveryModel),
        _ => None,
    }
}

fn open(e: &OpenError) -> Option<Remedy> {
    matches!(e, OpenError::NoLocal).then_some(Remedy::ServerModel)
}

fn launch(e: &LaunchError) -> Option<Remedy> {
    match e {
        LaunchError::Run(e) => run(e),
        LaunchError::Open(e) => open(e),
        _ => None,
    }
}

fn survey(e: &SurveyRunError) -> Option<Remedy> {
    match e {
        SurveyRunError::Run(e) => run(e),
        _ => None,
    }
}

fn sweep(e: &SweepError) -> Option<Remedy> {
    match e {
        SweepError::Run(e) => run(e),
        SweepError::Merge(e) => merge(e),
        _ => None,
    }
}

fn merge(e: &MergeError) -> Option<Remedy> {
    match e {
        MergeError::RunDir(e) => run_dir(e),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_remedy_is_found_through_every_wrapper() {
        let exists = || RunDirError::Exists(PathBuf::from("out"));
        let sweep: SweepError = RunError::RunDir(exists()).into();
        for (error, want) in [
            (Box::new(exists()) as Box<dyn Error>, Some(Remedy::ResumeOrAnotherFolder)),
            (Box::new(LaunchError::Run(RunError::RunDir(exists()))), Some(Remedy::ResumeOrAnotherFolder)),
            (Box::new(TuneError::Sweep(sweep)), Some(Remedy::ResumeOrAnotherFolder)),
            (Box::new(LaunchError::Open(OpenError::NoLocal)), Some(Remedy::ServerModel)),
            (Box::new(RunError::Unpriced(vec!["m".into()])), Some(Remedy::PriceEveryModel)),
            (Box::new(FetchError::NoDataDir), Some(Remedy::DataFolder)),
            (Box::new(LaunchError::Invalid("x".into())), None),
        ] {
            assert_eq!(remedy(error.as_ref()), want, "{error}");
        }
    }
}
