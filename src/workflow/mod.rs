//! Workflows that combine runs with evaluation and reports: sweeps over settings, merging
//! shards, and branching a dialogue from one of its turns. They sit above `eval` and
//! `report`, which sit above the runs they read.

pub mod branch;
pub mod merge;
pub mod remedy;
pub mod sweep;
pub mod tune;
