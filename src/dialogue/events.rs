//! Transcript events: one JSON object per line of `transcripts.jsonl`.

use serde::{Deserialize, Serialize};

use crate::backend::Usage;
use crate::outcome::OutcomeSource;
use crate::vs::{CallRecord, Candidate, Choice, Method};

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The dialogue started.
    Begin(BeginEvent),
    /// A role spoke.
    Turn(TurnEvent),
    /// A role's outcome was measured.
    Outcome(OutcomeEvent),
    /// The dialogue finished.
    End(EndEvent),
    /// The dialogue failed.
    Error(ErrorEvent),
}

impl Event {
    /// The id of the dialogue the event belongs to.
    pub fn dialogue(&self) -> &str {
        match self {
            Event::Begin(e) => &e.dialogue,
            Event::Turn(e) => &e.dialogue,
            Event::Outcome(e) => &e.dialogue,
            Event::End(e) => &e.dialogue,
            Event::Error(e) => &e.dialogue,
        }
    }
}

/// A dialogue starts: who plays whom, with which seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeginEvent {
    /// The dialogue's id.
    pub dialogue: String,
    /// The dialogue's position in the run, from 0.
    pub index: u64,
    /// The dialogue's seed; every call and choice seed derives from it.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: String,
    /// Population member this dialogue was built around (e.g. a participant id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_id: Option<String>,
    /// One per role, in the scenario's role order.
    pub agents: Vec<AgentInfo>,
}

/// One agent of a dialogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The role's id in the scenario.
    pub role: String,
    /// The role's display name.
    pub name: String,
    /// The prompting method the role speaks with.
    pub method: Method,
    /// The model spec the role runs on.
    pub model: String,
    /// The persona the role was given, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona_id: Option<String>,
    /// The rendered system prompt the agent received.
    pub system_prompt: String,
}

/// One turn: every candidate, the rule, the draw and the choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnEvent {
    /// The dialogue's id.
    pub dialogue: String,
    /// Number of the turn, from 0.
    pub turn: usize,
    /// The speaking role's id.
    pub speaker: String,
    /// The method the speaker used.
    pub method: Method,
    /// Every candidate reply, in the order the model gave them.
    pub candidates: Vec<Candidate>,
    /// Which candidate was chosen, by which rule and draw.
    pub choice: Choice,
    /// The chosen reply: what the other roles hear.
    pub text: String,
    /// The model's reasoning before its candidates (the `vs-cot` method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// For a moderator's turn: whom the moderator picked to speak next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_speaker: Option<String>,
    /// The model calls the turn took.
    pub calls: Vec<CallRecord>,
    /// Tokens the turn's calls used.
    pub usage: Usage,
    /// Wall-clock time of the turn, in milliseconds.
    pub latency_ms: u64,
}

/// Which measurement of an outcome an event holds: the role's answer to the question
/// (through its method), or what it stated in the dialogue. `vsim eval --measure` picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The role's answer to the outcome's question, through its method.
    #[default]
    Answer,
    /// What the role stated in the dialogue, read by an extractor call.
    Stated,
}

impl Measure {
    /// Whether this is the default measure (left out of serialised events).
    pub(crate) fn is_answer(&self) -> bool {
        *self == Measure::Answer
    }
}

/// An outcome of one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeEvent {
    /// The dialogue's id.
    pub dialogue: String,
    /// The id of the role the outcome belongs to.
    pub role: String,
    /// The outcome's name.
    pub name: String,
    /// A number or a category, or null when missing.
    pub value: Option<serde_json::Value>,
    /// How the value was obtained.
    pub source: OutcomeSource,
    /// The model's raw answer to the question.
    pub raw: String,
    /// Why the value was refused (with `source: invalid`); absent in older transcripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Tokens the outcome's calls used.
    pub usage: Usage,
    /// The answer (default) or the stated measure.
    #[serde(default, skip_serializing_if = "Measure::is_answer")]
    pub measure: Measure,
    /// Every answer a list method gave, with the rule's choice (absent for one answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<crate::outcome::through_method::AnswerDistribution>,
}

impl OutcomeEvent {
    /// The outcome's column in `outcomes.csv` and its key in summaries and exports:
    /// `role.name`, with `.stated` for the stated measure.
    pub fn column(&self) -> String {
        let suffix = if self.measure.is_answer() { "" } else { ".stated" };
        format!("{}.{}{suffix}", self.role, self.name)
    }
}

/// Why a dialogue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The scenario's `max_turns` was reached.
    MaxTurns,
    /// An utterance matched one of the scenario's stop patterns.
    StopPattern,
}

/// A dialogue finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndEvent {
    /// The dialogue's id.
    pub dialogue: String,
    /// Number of turns spoken.
    pub turns: usize,
    /// Why it ended.
    pub reason: EndReason,
    /// Tokens the whole dialogue used, outcomes included.
    pub usage: Usage,
}

/// A dialogue failed; it is counted and can be re-run with `--resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// The dialogue's id.
    pub dialogue: String,
    /// The last turn started before the failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
    /// What went wrong.
    pub message: String,
    /// The failed turn's backend calls with their raw replies, when the failure was a
    /// reply that did not parse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<crate::vs::CallRecord>,
}
