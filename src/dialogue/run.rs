//! Runs one dialogue: starts an agent per role, drives the turn machine, and returns the
//! dialogue's events (written whole by the caller).

use std::sync::Arc;

use super::agent::{AgentError, AgentHandle};
use super::events::{AgentInfo, BeginEvent, EndEvent, ErrorEvent, Event, Measure, OutcomeEvent, TurnEvent};
use super::machine::{DialogueMachine, Step};
use crate::backend::{SharedModel, Usage};
use crate::scenario::Scenario;
use crate::seed;
use crate::vs::Generator;

/// One agent's part in a dialogue.
#[derive(Clone)]
pub struct AgentSetup {
    /// The backend the agent speaks through.
    pub model: SharedModel,
    /// The model spec as shown in transcripts.
    pub model_name: String,
    /// The persona the agent plays, if any.
    pub persona_id: Option<String>,
    /// The agent's rendered system prompt.
    pub system_prompt: String,
}

/// The models that read outcomes' stated measure (`stated_model`), by model spec.
#[derive(Clone, Default)]
pub struct Extractors(pub Arc<std::collections::HashMap<String, SharedModel>>);

impl std::fmt::Debug for Extractors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Everything one dialogue needs.
#[derive(Clone)]
pub struct DialogueSetup {
    /// The dialogue's id.
    pub id: String,
    /// The dialogue's position in the run, from 0.
    pub index: u64,
    /// The dialogue's seed.
    pub seed: u64,
    /// Population member the dialogue is built around, if any.
    pub population_id: Option<String>,
    /// The scenario played.
    pub scenario: Arc<Scenario>,
    /// One per role, in role order.
    pub agents: Vec<AgentSetup>,
    /// Generates each turn's candidates.
    pub generator: Arc<Generator>,
    /// Models of outcomes' `stated_model`, by spec.
    pub extractors: Extractors,
    /// Recorded turns replayed before the dialogue continues (a branch of an earlier
    /// dialogue): copied into this dialogue's events and fed to the turn machine as spoken,
    /// without calling any model. Empty for a fresh dialogue.
    pub prefix: Vec<TurnEvent>,
}

/// A finished (or failed) dialogue.
#[derive(Debug, Clone)]
pub struct DialogueRecord {
    /// The dialogue's transcript events, in order.
    pub events: Vec<Event>,
    /// Whether it ended with an error event.
    pub failed: bool,
    /// Tokens the dialogue used.
    pub usage: Usage,
    /// Why its last call was not sent, when the run's budget refused it: the dialogue was
    /// cut at the cap rather than failed.
    pub budget_cut: Option<String>,
}

/// Runs the dialogue to its end; failures become an error event, never a panic.
// Long on purpose: the turn loop, the outcome questions and the record share the agents, the
// events and the usage of one dialogue; the steps are in the order they happen.
pub async fn run_dialogue(setup: DialogueSetup) -> DialogueRecord {
    let scenario = setup.scenario.clone();
    let mut events = vec![Event::Begin(BeginEvent {
        dialogue: setup.id.clone(),
        index: setup.index,
        seed: setup.seed,
        scenario: scenario.name.clone(),
        population_id: setup.population_id.clone(),
        agents: scenario
            .roles
            .iter()
            .zip(&setup.agents)
            .map(|(r, a)| AgentInfo {
                role: r.id.clone(),
                name: r.name.clone(),
                method: r.sampling.method,
                model: a.model_name.clone(),
                persona_id: a.persona_id.clone(),
                system_prompt: a.system_prompt.clone(),
            })
            .collect(),
    })];
    let agents: Vec<AgentHandle> = scenario
        .roles
        .iter()
        .zip(&setup.agents)
        .map(|(r, a)| {
            let agent_seed = seed::derive_named(setup.seed, &format!("agent/{}", r.id));
            AgentHandle::spawn(
                r.clone(),
                a.model.clone(),
                setup.generator.clone(),
                agent_seed,
                scenario.use_schema,
                setup.extractors.clone(),
            )
        })
        .collect();
    let prompts = setup.agents.iter().map(|a| a.system_prompt.clone()).collect();
    let mut machine = DialogueMachine::new(
        scenario.clone(),
        prompts,
        seed::rng(seed::derive_named(setup.seed, "turn-graph")),
    );
    let mut usage = Usage::default();
    let mut last_turn: Option<usize> = None;
    for (i, recorded) in setup.prefix.iter().enumerate() {
        let Some(role) = scenario.role_index(&recorded.speaker) else {
            events.push(Event::Error(ErrorEvent {
                dialogue: setup.id.clone(),
                turn: Some(i),
                message: format!("replayed turn {i}: the scenario has no role `{}`", recorded.speaker),
                calls: Vec::new(),
            }));
            return DialogueRecord { events, failed: true, usage, budget_cut: None };
        };
        let next = recorded.next_speaker.as_deref().and_then(|id| scenario.role_index(id));
        machine.replay_utterance(role, recorded.text.clone(), next);
        events.push(Event::Turn(TurnEvent { dialogue: setup.id.clone(), turn: i, ..recorded.clone() }));
    }

    let result: Result<(), AgentError> = async {
        loop {
            match machine.step() {
                Step::Speak { role, turn, messages } => {
                    last_turn = Some(turn);
                    let spoken = agents[role].speak(turn, messages).await?;
                    let chosen = &spoken.generation.candidates[spoken.choice.index];
                    let text = chosen.text.clone();
                    usage += spoken.generation.usage;
                    let r = &scenario.roles[role];
                    events.push(Event::Turn(TurnEvent {
                        dialogue: setup.id.clone(),
                        turn,
                        speaker: r.id.clone(),
                        method: r.sampling.method,
                        candidates: spoken.generation.candidates,
                        choice: spoken.choice,
                        text: text.clone(),
                        reasoning: spoken.generation.reasoning,
                        next_speaker: None,
                        calls: spoken.generation.calls,
                        usage: spoken.generation.usage,
                        latency_ms: spoken.latency_ms,
                    }));
                    machine.record_utterance(role, text);
                }
                Step::PickNext { moderator, options, messages } => {
                    let names: Vec<String> =
                        options.iter().map(|&o| scenario.roles[o].name.clone()).collect();
                    let turn = machine.history().len();
                    let pick = agents[moderator].pick(turn, messages, names).await?;
                    if let Some(Event::Turn(t)) = events.last_mut() {
                        t.next_speaker = Some(scenario.roles[options[pick.option]].id.clone());
                    }
                    machine.record_pick(pick.option);
                }
                Step::AskOutcome { outcome, role, messages } => {
                    let spec = scenario.outcomes[outcome].clone();
                    let answered = agents[role].answer(spec.clone(), messages).await?;
                    let event = |e: crate::outcome::Extracted, measure, distribution| {
                        Event::Outcome(OutcomeEvent {
                            dialogue: setup.id.clone(),
                            role: scenario.roles[role].id.clone(),
                            name: spec.name.clone(),
                            value: e.value,
                            source: e.source,
                            raw: e.raw,
                            reason: e.reason,
                            usage: e.usage,
                            measure,
                            distribution,
                        })
                    };
                    usage += answered.extracted.usage;
                    events.push(event(answered.extracted, Measure::Answer, answered.distribution));
                    if let Some(stated) = answered.stated {
                        usage += stated.usage;
                        events.push(event(stated, Measure::Stated, None));
                    }
                    machine.record_outcome();
                }
                Step::Done(reason) => {
                    events.push(Event::End(EndEvent {
                        dialogue: setup.id.clone(),
                        turns: machine.history().len(),
                        reason,
                        usage,
                    }));
                    return Ok(());
                }
            }
        }
    }
    .await;

    let mut budget_cut = None;
    let failed = match result {
        Ok(()) => false,
        Err(e) => {
            budget_cut = e.budget_reached().map(str::to_string);
            events.push(Event::Error(ErrorEvent {
                dialogue: setup.id.clone(),
                turn: last_turn,
                message: e.to_string(),
                calls: e.calls().to_vec(),
            }));
            true
        }
    };
    DialogueRecord { events, failed, usage, budget_cut }
}
