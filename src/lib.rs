//! # vsim
//!
//! Dialogue simulation with Verbalized Sampling (VS): agents with personas converse turn by
//! turn; at each turn the speaker's model returns k candidate replies with verbalized
//! probabilities and one is chosen by a stated, seeded rule. Simulated outcomes are compared
//! with human data.
//!
//! Layout:
//! - [`backend`]: the [`backend::ChatModel`] trait, OpenAI-compatible HTTP, the embedded
//!   model, the scripted test backend, retry/limit and cache wrappers;
//! - [`vs`]: prompt methods, the candidate parser, selection rules;
//! - [`stats`]: KS and other distances, linguistic metrics;
//! - [`seed`]: deterministic seed derivation.

#![warn(missing_docs)]

pub mod backend;
pub mod data;
pub mod dialogue;
pub mod embed;
pub mod eval;
pub mod experiment;
pub mod export;
pub mod fsutil;
pub mod mock;
pub mod model_store;
pub mod outcome;
pub mod persona;
pub mod progress;
pub mod report;
pub mod rundir;
pub mod scenario;
pub mod seed;
pub mod stats;
pub mod survey;
pub mod vs;
mod wheel;
