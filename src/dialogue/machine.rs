//! The turn state machine: whose turn it is, with what history, and when the dialogue ends.
//!
//! It does no I/O: the driver asks [`DialogueMachine::step`] what to do next, performs the
//! model call, and feeds the result back. That keeps every rule testable without a runtime.

use std::collections::VecDeque;
use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::events::EndReason;
use crate::backend::{Message, Role};
use crate::scenario::{Scenario, TurnPolicy};

/// One utterance of the shared history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utterance {
    /// Index of the speaker in the scenario's roles.
    pub role: usize,
    /// What was said.
    pub text: String,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `role` speaks turn `turn`, seeing `messages` (its system prompt and the history).
    Speak {
        /// Index of the speaking role in the scenario's roles.
        role: usize,
        /// Number of the turn, from 0.
        turn: usize,
        /// The conversation as the role sees it.
        messages: Vec<Message>,
    },
    /// The moderator picks who speaks next among `options`.
    PickNext {
        /// Index of the moderating role.
        moderator: usize,
        /// Indices of the roles that may speak next.
        options: Vec<usize>,
        /// The conversation as the moderator sees it.
        messages: Vec<Message>,
    },
    /// Ask `role` the private question of outcome `outcome` (index into the scenario's).
    AskOutcome {
        /// Index of the outcome in the scenario's outcomes.
        outcome: usize,
        /// Index of the role that answers.
        role: usize,
        /// The conversation as the role sees it.
        messages: Vec<Message>,
    },
    /// Nothing left to do.
    Done(EndReason),
}

/// The state of one dialogue.
pub struct DialogueMachine {
    scenario: Arc<Scenario>,
    system_prompts: Vec<String>,
    history: Vec<Utterance>,
    next: usize,
    pending_pick: Option<Vec<usize>>,
    end: Option<EndReason>,
    outcomes_left: VecDeque<usize>,
    rng: ChaCha8Rng,
}

impl DialogueMachine {
    /// `system_prompts[i]` is role i's rendered system prompt; `rng` drives random-neighbour
    /// choices.
    pub fn new(scenario: Arc<Scenario>, system_prompts: Vec<String>, rng: ChaCha8Rng) -> Self {
        let next = scenario.graph.first;
        let outcomes_left = (0..scenario.outcomes.len()).collect();
        Self {
            scenario,
            system_prompts,
            history: Vec::new(),
            next,
            pending_pick: None,
            end: None,
            outcomes_left,
            rng,
        }
    }

    /// Everything said so far, in order.
    pub fn history(&self) -> &[Utterance] {
        &self.history
    }

    /// The next thing to do.
    pub fn step(&mut self) -> Step {
        if self.end.is_none() && self.history.len() >= self.scenario.max_turns {
            self.end = Some(EndReason::MaxTurns);
        }
        match self.end {
            None => match &self.pending_pick {
                Some(options) => {
                    let moderator = self.scenario.graph.moderator.unwrap_or(self.next);
                    Step::PickNext { moderator, options: options.clone(), messages: self.view(moderator) }
                }
                None => {
                    Step::Speak { role: self.next, turn: self.history.len(), messages: self.view(self.next) }
                }
            },
            Some(reason) => match self.outcomes_left.front() {
                Some(&outcome) => {
                    let role = self.scenario.outcomes[outcome].role;
                    Step::AskOutcome { outcome, role, messages: self.view(role) }
                }
                None => Step::Done(reason),
            },
        }
    }

    /// Records what `role` said and decides who speaks next.
    pub(crate) fn record_utterance(&mut self, role: usize, text: String) {
        let stop = self.scenario.stop_patterns.iter().any(|p| p.is_match(&text));
        self.history.push(Utterance { role, text });
        if stop {
            self.end = Some(EndReason::StopPattern);
            return;
        }
        let graph = &self.scenario.graph;
        let options = graph.successors(role);
        if options.len() == 1 {
            self.next = options[0];
        } else if graph.policy == TurnPolicy::Moderator && Some(role) == graph.moderator {
            self.pending_pick = Some(options);
        } else {
            self.next = options[self.rng.random_range(0..options.len())];
        }
    }

    /// Replays a recorded utterance (to continue a dialogue from its transcript): records it
    /// as [`Self::record_utterance`] does, then, when the original named who spoke next (a
    /// moderator's pick), makes that role the next speaker instead of asking again.
    pub(crate) fn replay_utterance(&mut self, role: usize, text: String, next_speaker: Option<usize>) {
        self.record_utterance(role, text);
        if let Some(next) = next_speaker.filter(|&n| n < self.scenario.roles.len()) {
            self.pending_pick = None;
            self.next = next;
        }
    }

    /// Records the moderator's pick (an index into the offered options).
    pub(crate) fn record_pick(&mut self, option: usize) {
        if let Some(options) = self.pending_pick.take() {
            self.next = options[option.min(options.len() - 1)];
        }
    }

    /// Marks the current outcome question as answered.
    pub(crate) fn record_outcome(&mut self) {
        self.outcomes_left.pop_front();
    }

    /// The conversation from `role`'s point of view: its system prompt, its own utterances as
    /// the assistant's, the others' as the user's (prefixed with the speaker's name when more
    /// than two roles take part), consecutive user messages merged.
    pub(crate) fn view(&self, role: usize) -> Vec<Message> {
        let many = self.scenario.roles.len() > 2;
        let mut messages = vec![Message::system(self.system_prompts[role].clone())];
        for u in &self.history {
            if u.role == role {
                if messages.last().map(|m| m.role) == Some(Role::System) {
                    messages.push(Message::user(self.scenario.opening.clone()));
                }
                messages.push(Message::assistant(u.text.clone()));
            } else {
                let text = if many {
                    format!("{}: {}", self.scenario.roles[u.role].name, u.text)
                } else {
                    u.text.clone()
                };
                match messages.last_mut() {
                    Some(last) if last.role == Role::User => {
                        last.content.push_str("\n\n");
                        last.content.push_str(&text);
                    }
                    _ => messages.push(Message::user(text)),
                }
            }
        }
        if messages.len() == 1 {
            messages.push(Message::user(self.scenario.opening.clone()));
        }
        messages
    }
}
