//! Dialogues: the I/O-free turn [`machine`], agents as tokio actors ([`agent`]), the driver
//! that runs one dialogue ([`run`]) and the transcript [`events`] it produces.

pub mod agent;
pub mod events;
pub mod machine;
pub mod run;

pub use events::Event;
pub use machine::{DialogueMachine, Step, Utterance};
pub use run::{run_dialogue, AgentSetup, DialogueRecord, DialogueSetup};
