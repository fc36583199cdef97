//! The transcript as tables, for data-frame front ends (the Python module): one row per
//! turn and one per candidate, of the latest attempt of every dialogue (the attempt
//! `outcomes.csv` reports), in dialogue order. Columns are held column-wise, the shape a
//! data frame is built from.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::dialogue::events::{Event, TurnEvent};

use super::transcript::{for_each_event, TranscriptError};

/// One row per turn.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct TurnTable {
    /// The dialogue's id.
    pub dialogue: Vec<String>,
    /// The dialogue's index in the run.
    pub index: Vec<u64>,
    /// The turn's number, from 0.
    pub turn: Vec<usize>,
    /// The speaking role's id.
    pub speaker: Vec<String>,
    /// The prompting method.
    pub method: Vec<String>,
    /// Candidates the model gave.
    pub k: Vec<usize>,
    /// The chosen candidate's position among them, from 0.
    pub chosen: Vec<usize>,
    /// Its normalised probability.
    pub chosen_probability: Vec<Option<f64>>,
    /// The selection rule (`weighted`, `uniform`, `argmax`).
    pub selection: Vec<String>,
    /// The rule's probability floor, if any.
    pub min_prob: Vec<Option<f64>>,
    /// The uniform draw in [0, 1) (none for argmax).
    pub draw: Vec<Option<f64>>,
    /// The chosen reply.
    pub text: Vec<String>,
    /// The model's reasoning before its candidates (`vs-cot`).
    pub reasoning: Vec<Option<String>>,
    /// For a moderator's turn: whom it picked to speak next.
    pub next_speaker: Vec<Option<String>>,
    /// Model calls the turn took.
    pub calls: Vec<usize>,
    /// Prompt tokens of the turn's calls.
    pub prompt_tokens: Vec<u64>,
    /// Completion tokens of the turn's calls.
    pub completion_tokens: Vec<u64>,
    /// Wall-clock time of the turn, in milliseconds.
    pub latency_ms: Vec<u64>,
}

/// One row per candidate of every turn.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct CandidateTable {
    /// The dialogue's id.
    pub dialogue: Vec<String>,
    /// The dialogue's index in the run.
    pub index: Vec<u64>,
    /// The turn's number, from 0.
    pub turn: Vec<usize>,
    /// The speaking role's id.
    pub speaker: Vec<String>,
    /// The candidate's position in the model's reply, from 0.
    pub candidate: Vec<usize>,
    /// The candidate reply.
    pub text: Vec<String>,
    /// Its normalised probability (a turn's candidates sum to 1).
    pub probability: Vec<f64>,
    /// The probability as the model stated it (none when it stated none).
    pub raw_probability: Vec<Option<f64>>,
    /// Whether it was the one chosen.
    pub chosen: Vec<bool>,
    /// Whether it passed the rule's probability floor.
    pub eligible: Vec<bool>,
    /// The kinds of repair the parser applied, comma-separated (empty: taken as written).
    pub repairs: Vec<String>,
}

/// The turn and candidate tables of a run's transcript.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Tables {
    /// One row per turn.
    pub turns: TurnTable,
    /// One row per candidate.
    pub candidates: CandidateTable,
}

/// Reads the tables of the transcript at `path`, one line at a time.
pub fn read_tables(path: &Path) -> Result<Tables, TranscriptError> {
    // The latest attempt's turns per dialogue: a `begin` starts the dialogue over.
    let mut attempts: BTreeMap<String, (u64, Vec<TurnEvent>)> = BTreeMap::new();
    for_each_event(path, |e| match e {
        Event::Begin(b) => {
            attempts.insert(b.dialogue, (b.index, Vec::new()));
        }
        Event::Turn(t) => {
            if let Some((_, turns)) = attempts.get_mut(&t.dialogue) {
                turns.push(t);
            }
        }
        _ => {}
    })?;
    let mut ordered: Vec<_> = attempts.into_values().collect();
    ordered.sort_by_key(|(index, _)| *index);
    let mut tables = Tables::default();
    for (index, turns) in ordered {
        for t in turns {
            tables.add(index, t);
        }
    }
    Ok(tables)
}

impl Tables {
    fn add(&mut self, index: u64, t: TurnEvent) {
        let c = &mut self.candidates;
        for (i, cand) in t.candidates.iter().enumerate() {
            c.dialogue.push(t.dialogue.clone());
            c.index.push(index);
            c.turn.push(t.turn);
            c.speaker.push(t.speaker.clone());
            c.candidate.push(i);
            c.text.push(cand.text.clone());
            c.probability.push(cand.probability);
            c.raw_probability.push(cand.raw_probability);
            c.chosen.push(i == t.choice.index);
            c.eligible.push(t.choice.eligible.contains(&i));
            c.repairs.push(repair_kinds(&cand.repairs));
        }
        let r = &mut self.turns;
        r.dialogue.push(t.dialogue);
        r.index.push(index);
        r.turn.push(t.turn);
        r.speaker.push(t.speaker);
        r.method.push(t.method.to_string());
        r.k.push(t.candidates.len());
        r.chosen.push(t.choice.index);
        r.chosen_probability.push(t.candidates.get(t.choice.index).map(|c| c.probability));
        r.selection.push(t.choice.rule.selection.to_string());
        r.min_prob.push(t.choice.rule.min_prob);
        r.draw.push(t.choice.draw);
        r.text.push(t.text);
        r.reasoning.push(t.reasoning);
        r.next_speaker.push(t.next_speaker);
        r.calls.push(t.calls.len());
        r.prompt_tokens.push(t.usage.prompt_tokens);
        r.completion_tokens.push(t.usage.completion_tokens);
        r.latency_ms.push(t.latency_ms);
    }
}

/// The repairs' kinds as written in the transcript (`code_fence,single_quotes`).
fn repair_kinds(repairs: &[crate::vs::Repair]) -> String {
    repairs
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .filter_map(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .collect::<Vec<_>>()
        .join(",")
}
