//! Experiments: populations, the concurrent runner, the transcript file and `outcomes.csv`.

pub mod outcomes;
pub mod population;
pub mod runner;
pub mod transcript;

pub use population::{Member, Population, PopulationError};
pub use runner::{run_experiment, RoleModel, RunConfig, RunError, RunSummary};
