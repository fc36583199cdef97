//! Experiments: populations, the concurrent runner (seeds, resume, budget, shards), the
//! transcript file and `outcomes.csv`, and what builds on runs: sweeps over settings,
//! merging shard directories, and branching a recorded dialogue.

pub mod branch;
pub mod budget;
pub mod interrupt;
pub mod launch;
pub mod merge;
pub mod population;
pub mod progress;
pub mod runner;
pub mod sweep;

pub use crate::rundir::{outcomes, transcript};

pub use budget::{Budget, Prices, Spend};
pub use interrupt::{Interrupt, InterruptTrigger, StopSignal};
pub use launch::{prepare, LaunchError, PreparedRun, RunRequest};
pub use population::{Member, Population, PopulationError, PopulationReference, PFG_FILTER};
pub use progress::{RunEvent, RunProgress};
pub use runner::{
    run_experiment, run_experiment_with, RoleModel, RunConfig, RunError, RunOptions, RunSummary, Shard,
};
