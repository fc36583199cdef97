//! # vsim
//!
//! Dialogue simulation with Verbalized Sampling (VS): agents with personas converse turn by
//! turn; at each turn the speaker's model returns k candidate replies with verbalized
//! probabilities and one is chosen by a stated, seeded rule. Simulated outcomes are compared
//! with human data.
//!
//! One engine asks every question ([`vs::Generator::generate_n`]): a dialogue turn, an
//! outcome answer and a survey item differ only in their [`vs::ItemShape`]. Here it gathers
//! an answer between 0 and 2 from the built-in mock server with VS-Standard, k = 3, and a
//! seeded rule picks one:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use vsim::backend::{factory::open_model, factory::BackendOptions, spec::ModelSpec, Message};
//! use vsim::mock::{MockConfig, MockServer};
//! use vsim::vs::{select, AnswerShape, GenerateRequest, Generator, ItemShape, KSpec, Method, SelectionRule, Selection};
//!
//! let server = MockServer::start(MockConfig::default()).await?;
//! let spec = ModelSpec::parse(&format!("openai:mock@{}", server.base_url()))?;
//! let options = BackendOptions { cache: vsim::backend::cache::CacheMode::Off, ..BackendOptions::default() };
//! let model = open_model(&spec, &options).await?;
//!
//! let mut req = GenerateRequest::new(
//!     vec![Message::user("How many of your $2 would you donate to Save the Children?")],
//!     Method::VsStandard,
//! );
//! req.k = KSpec::Fixed { k: 3 };
//! req.shape = ItemShape::Answer(AnswerShape::Number { min: 0.0, max: 2.0 });
//! let gathered = Generator::default().generate_n(model.as_ref(), &req, 3).await?;
//! assert!(!gathered.candidates.is_empty() && gathered.calls.len() == 1);
//!
//! let mut rng = vsim::seed::rng(7);
//! let choice = select(&gathered.candidates, &SelectionRule::new(Selection::Weighted), &mut rng);
//! let donation: f64 = gathered.candidates[choice.index].text.parse()?;
//! assert!((0.0..=2.0).contains(&donation));
//! # Ok(())
//! # }
//! ```
//!
//! ## Layers
//!
//! Bottom to top; a module imports only from layers below its own (`tests/layers.rs`
//! reads every `crate::` path of `src/` and keeps this list honest). The command line
//! (`src/cli`) and the Python module wrap the library and add their own hints.
//!
//! 0. `seed`: deterministic seed derivation;
//! 1. `fsutil`, `text`, `progress`, `stats`: files, text excerpts, progress events,
//!    distances and linguistic metrics;
//! 2. `wheel`, `persona`: fetching packages, personas;
//! 3. `model_store`, `data`: model weights, human datasets;
//! 4. `backend`: the [`backend::ChatModel`] trait, OpenAI-compatible HTTP, the embedded
//!    model (a request's JSON schema as its grammar), the scripted test backend, retry/limit
//!    and cache wrappers;
//! 5. `vs`, `embed`: the gathering engine (methods, output constraints, parser, selection),
//!    sentence embeddings;
//! 6. `outcome`: outcome specs and how an answer is read;
//! 7. `scenario`: scenario files, roles, the turn graph;
//! 8. `dialogue`: the turn state machine, agents, transcript events;
//! 9. `rundir`: the run directory's manifest, transcript and tables;
//! 10. `experiment`, `export`: the runner (concurrency, seeds, resume, budget), exports;
//! 11. `survey`, `eval`, `mock`: survey runs, evaluation, the mock server;
//! 12. `report`: Markdown and HTML reports;
//! 13. `workflow`: sweeps, merges and branches, which combine runs and evaluation, and the
//!     remedies of errors, read through every layer's wrappers.

#![deny(missing_docs)]

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
pub mod text;
pub mod vs;
mod wheel;
pub mod workflow;
