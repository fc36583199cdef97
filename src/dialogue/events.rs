//! Transcript events: one JSON object per line of `transcripts.jsonl`.

use serde::{Deserialize, Serialize};

use crate::backend::Usage;
use crate::vs::{CallRecord, Candidate, Choice, Method};

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Begin(BeginEvent),
    Turn(TurnEvent),
    Outcome(OutcomeEvent),
    End(EndEvent),
    Error(ErrorEvent),
}

impl Event {
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
    pub dialogue: String,
    pub index: u64,
    pub seed: u64,
    pub scenario: String,
    /// Population member this dialogue was built around (e.g. a participant id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_id: Option<String>,
    pub agents: Vec<AgentInfo>,
}

/// One agent of a dialogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub role: String,
    pub name: String,
    pub method: Method,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona_id: Option<String>,
    /// The rendered system prompt the agent received.
    pub system_prompt: String,
}

/// One turn: every candidate, the rule, the draw and the choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnEvent {
    pub dialogue: String,
    pub turn: usize,
    pub speaker: String,
    pub method: Method,
    pub candidates: Vec<Candidate>,
    pub choice: Choice,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// For a moderator's turn: whom the moderator picked to speak next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_speaker: Option<String>,
    pub calls: Vec<CallRecord>,
    pub usage: Usage,
    pub latency_ms: u64,
}

/// How an outcome was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeSource {
    /// The answer to the private final question.
    Question,
    /// The fallback regex over the answer or the role's utterances.
    Regex,
    /// The money fallback: the last donation stated in the answer or the role's utterances.
    Money,
    /// A value was read but breaks the outcome's declaration (e.g. outside its range): the
    /// event's `value` is null, `reason` says why and `raw` keeps the answer; it is counted
    /// as invalid and never compared.
    Invalid,
    /// Could not be extracted (counted, never silently zero).
    Missing,
    /// Read from what the role said in the dialogue by an extractor call (the `stated`
    /// measure).
    Stated,
}

/// Which measurement of an outcome an event holds: the role's answer to the question
/// (through its method), or what it stated in the dialogue. `vsim eval --measure` picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    #[default]
    Answer,
    Stated,
}

impl Measure {
    pub fn is_answer(&self) -> bool {
        *self == Measure::Answer
    }
}

/// An outcome of one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeEvent {
    pub dialogue: String,
    pub role: String,
    pub name: String,
    /// A number or a category, or null when missing.
    pub value: Option<serde_json::Value>,
    pub source: OutcomeSource,
    /// The model's raw answer to the question.
    pub raw: String,
    /// Why the value was refused (with `source: invalid`); absent in older transcripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub usage: Usage,
    /// The answer (default) or the stated measure.
    #[serde(default, skip_serializing_if = "Measure::is_answer")]
    pub measure: Measure,
    /// Every answer a list method gave, with the rule's choice (absent for one answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<crate::outcome::through_method::AnswerDistribution>,
}

/// Why a dialogue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    MaxTurns,
    StopPattern,
}

/// A dialogue finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndEvent {
    pub dialogue: String,
    pub turns: usize,
    pub reason: EndReason,
    pub usage: Usage,
}

/// A dialogue failed; it is counted and can be re-run with `--resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub dialogue: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
    pub message: String,
}
