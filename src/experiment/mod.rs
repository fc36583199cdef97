//! Experiments: populations, the concurrent runner (seeds, resume, budget, shards), the
//! transcript file and `outcomes.csv`, and what builds on runs: sweeps over settings,
//! merging shard directories, and branching a recorded dialogue.

pub mod budget;
pub mod interrupt;
pub mod launch;
pub mod population;
pub mod progress;
pub mod runner;
pub mod stop;

pub use budget::{Budget, Prices, Spend};
pub use interrupt::{Interrupt, InterruptTrigger, StopSignal};
pub use launch::{prepare, LaunchError, PreparedRun, RunRequest};
pub use population::{Member, Population, PopulationError};
pub use progress::{RunEvent, RunProgress};
pub use runner::{
    run_experiment, run_experiment_with, RoleModel, RunConfig, RunError, RunOptions, RunSummary, Shard,
};
pub use stop::StopCause;
