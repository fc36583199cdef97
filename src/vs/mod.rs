//! The Verbalized Sampling engine: prompt methods ([`method`], [`prompt`]), the candidate
//! parser that repairs what real models emit ([`parse`]), seeded selection rules
//! ([`mod@select`]) and the call loop that ties them to a backend ([`generate`]).

pub mod constraint;
pub mod generate;
pub mod item;
pub mod method;
pub mod parse;
pub mod prompt;
pub mod sample_set;
pub mod sampling;
pub mod select;

pub use constraint::{AnswerShape, OutputConstraint};
pub use generate::{CallRecord, GenerateError, GenerateRequest, Generation, Generator};
pub use item::{Checked, ItemShape};
pub use method::{KSpec, Method};
pub use parse::{parse_candidates, Candidate, ParseError, ParsedReply, Repair};
pub use prompt::PromptTemplates;
pub use sample_set::{MethodSample, SampleSet};
pub use sampling::Sampling;
pub use select::{select, Choice, Selection, SelectionRule};
