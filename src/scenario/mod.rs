//! Scenario files: roles with prompt templates and methods, the turn graph, limits and
//! outcomes. Loading is two-stage: [`raw`] (serde, with spans) then [`Scenario`]
//! (validated), so every error names the file, line and field.

pub mod error;
pub mod graph;
pub mod input;
pub(crate) mod load;
pub mod raw;

use std::path::PathBuf;

use regex::Regex;
use serde::Serialize;

pub use error::ScenarioError;
pub use graph::{TurnGraph, TurnPolicy};
pub use input::{input_kind, InputKind};
pub use load::{load_scenario, parse_scenario, DEFAULT_K_MAX};

use crate::outcome::{OutcomeFallback, OutcomeSpec};
use crate::vs::{KSpec, Method, PromptTemplates, Sampling, Selection};

/// Names a system template may use.
pub(crate) const TEMPLATE_SLOTS: [&str; 5] = ["persona", "role", "partner", "scenario", "roles"];

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario's name.
    pub name: String,
    /// What the scenario is about, in words.
    pub description: Option<String>,
    /// The file it was loaded from.
    pub source: PathBuf,
    /// Default population directory (absolute or relative to the working directory).
    pub population: Option<PathBuf>,
    /// The roles, in declaration order.
    pub roles: Vec<RoleSpec>,
    /// Who may speak after whom.
    pub graph: TurnGraph,
    /// The dialogue ends after this many turns.
    pub max_turns: usize,
    /// An utterance matching any of these ends the dialogue.
    pub stop_patterns: Vec<Regex>,
    /// Text shown to the first speaker before anyone has spoken.
    pub opening: String,
    /// Questions asked privately after the dialogue, in order.
    pub outcomes: Vec<OutcomeSpec>,
    /// The method instruction templates, with the scenario's overrides.
    pub templates: PromptTemplates,
    /// Send a JSON schema / grammar with list methods.
    pub use_schema: bool,
    /// The run's model spec when the command line gives none (`[defaults] model`).
    pub default_model: Option<String>,
}

/// One role (one agent per dialogue).
#[derive(Debug, Clone, Serialize)]
pub struct RoleSpec {
    /// The role's id, unique in the scenario.
    pub id: String,
    /// Display name used in other agents' view of the conversation.
    pub name: String,
    /// System prompt template (minijinja) with persona slots.
    pub system: String,
    /// Where `system` is written (file, and the line its first template line is on), so a
    /// template that fails to render names file:line. `None` for roles built in code.
    #[serde(skip)]
    pub system_origin: Option<(std::path::PathBuf, usize)>,
    /// How the role gathers its candidates and picks one: method, k, τ, rule, N.
    #[serde(flatten)]
    pub sampling: Sampling,
    /// Sampling temperature; `None` leaves the backend's default.
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass; `None` leaves the backend's default.
    pub top_p: Option<f32>,
    /// Cap on each reply's length, in tokens.
    pub max_tokens: Option<u32>,
    /// The role's model spec; `None`: the run's model.
    pub model: Option<String>,
    /// Where the role's persona comes from.
    pub persona: PersonaSource,
    /// Which of the persona's attributes its prompt shows (`None`: all of them), so that a
    /// study can ask how much of who a person is the model needs to see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona_attributes: Option<Vec<String>>,
}

/// Where a role's persona comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonaSource {
    /// The dialogue's population member.
    Population,
    /// The population member's partner (e.g. the persuader paired with a PersuasionForGood
    /// persuadee); none when the population has no pairs.
    Paired,
    /// No persona.
    None,
    /// A persona with this id from the population directory.
    Fixed(String),
}

impl Scenario {
    /// Index of a role by id.
    pub(crate) fn role_index(&self, id: &str) -> Option<usize> {
        self.roles.iter().position(|r| r.id == id)
    }

    /// The resolved configuration as JSON (written to the run directory).
    pub fn resolved(&self) -> serde_json::Value {
        let roles = &self.roles;
        serde_json::json!({
            "name": self.name,
            // As text (lossily, never a panic, for a path that is not UTF-8).
            "source": self.source.to_string_lossy(),
            "roles": roles,
            "turns": {
                "policy": self.graph.policy,
                "first": roles[self.graph.first].id,
                "moderator": self.graph.moderator.map(|m| roles[m].id.clone()),
                "edges": self.graph.edges().into_iter().map(|(a, b)| [roles[a].id.clone(), roles[b].id.clone()]).collect::<Vec<_>>(),
                "max_turns": self.max_turns,
                "stop_patterns": self.stop_patterns.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "opening": self.opening,
            },
            "outcomes": self.outcomes.iter().map(|o| serde_json::json!({
                "name": o.name,
                "role": roles[o.role].id,
                "question": o.question,
                "kind": crate::outcome::recorded_kind(&o.kind),
                "fallback_regex": match &o.fallback {
                    Some(OutcomeFallback::Regex(r)) => Some(r.as_str()),
                    _ => None,
                },
                "fallback": o.fallback.as_ref().map(|f| match f {
                    OutcomeFallback::Regex(_) => "regex",
                    OutcomeFallback::Money(_) => "money",
                }),
                "payment": match &o.fallback {
                    Some(OutcomeFallback::Money(m)) => Some(m.payment()),
                    _ => None,
                },
                // Who answers: the role's own method unless the outcome names one.
                "method": o.method.unwrap_or(roles[o.role].sampling.method),
                "stated": o.stated,
                "stated_model": o.stated_model,
            })).collect::<Vec<_>>(),
            "use_schema": self.use_schema,
            "templates": self.templates,
        })
    }

    /// The model specs of the outcomes' stated-measure extractors (`stated_model`), each once.
    pub(crate) fn stated_models(&self) -> std::collections::BTreeSet<String> {
        self.outcomes.iter().filter_map(|o| o.stated_model.clone()).collect()
    }

    /// Changes one setting of one role (from the command line, a sweep or Python): a new
    /// method drops what does not apply to it ([`Sampling::set_method`]); the role's
    /// settings are then checked again as a whole.
    pub fn override_role(&mut self, o: &RoleOverride) -> Result<(), OverrideError> {
        let idx = self.role_index(o.role.trim()).ok_or_else(|| OverrideError::UnknownRole {
            role: o.role.clone(),
            setting: o.setting.name(),
            roles: self.roles.iter().map(|r| r.id.clone()).collect::<Vec<_>>().join(", "),
        })?;
        let spec = &mut self.roles[idx];
        match &o.setting {
            RoleSetting::Method(m) => spec.sampling.set_method(*m),
            RoleSetting::K(k) => spec.sampling.k = *k,
            RoleSetting::Selection(s) => {
                // Asked for by name: weighing what has no probabilities is refused even for
                // one candidate a turn, where it would silently act as any other rule.
                if *s == Selection::Weighted && !spec.sampling.method.is_verbalized() {
                    return Err(OverrideError::Refused {
                        role: o.role.clone(),
                        setting: "selection",
                        field: "selection",
                        reason: format!(
                            "`{}` gives no probabilities, so weighted selection has nothing to weigh: use \
                             \"uniform\" or a vs-* method",
                            spec.sampling.method
                        ),
                    });
                }
                spec.sampling.rule.selection = *s
            }
            RoleSetting::Model(m) => spec.model = Some(m.clone()),
        }
        spec.sampling.check().map_err(|(field, reason)| OverrideError::Refused {
            role: o.role.clone(),
            setting: o.setting.name(),
            field,
            reason,
        })
    }
}

/// One setting of one role changed from outside its scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleOverride {
    /// The role's id.
    pub role: String,
    /// The new setting.
    pub setting: RoleSetting,
}

/// A role setting that can be changed from outside the scenario file.
#[derive(Debug, Clone, PartialEq)]
pub enum RoleSetting {
    /// The prompting method.
    Method(Method),
    /// Candidates per call.
    K(KSpec),
    /// How one candidate is chosen.
    Selection(Selection),
    /// The role's model spec.
    Model(String),
}

impl RoleSetting {
    /// The setting's name: `method`, `k`, `selection` or `model`.
    pub fn name(&self) -> &'static str {
        match self {
            RoleSetting::Method(_) => "method",
            RoleSetting::K(_) => "k",
            RoleSetting::Selection(_) => "selection",
            RoleSetting::Model(_) => "model",
        }
    }

    /// The setting `name` with `value` as a scenario file writes it (`vs-standard`; `5` or
    /// `model-decided`, bounded by [`DEFAULT_K_MAX`]; `weighted`; a model spec).
    pub fn parse(name: &str, value: &str) -> Result<Self, String> {
        let value = value.trim();
        match name {
            "method" => value.parse::<Method>().map(RoleSetting::Method).map_err(|e| e.to_string()),
            "k" => KSpec::parse(value, DEFAULT_K_MAX).map(RoleSetting::K),
            "selection" => value.parse::<Selection>().map(RoleSetting::Selection).map_err(|e| e.to_string()),
            "model" if !value.is_empty() => Ok(RoleSetting::Model(value.to_string())),
            "model" => Err("expected a model spec".into()),
            other => Err(format!("unknown role setting `{other}`; settings: method, k, selection, model")),
        }
    }
}

/// Why a role override was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OverrideError {
    /// No role has this id.
    #[error("unknown role `{role}`; roles: {roles}")]
    UnknownRole {
        /// The id given.
        role: String,
        /// The setting it was to change.
        setting: &'static str,
        /// The scenario's role ids.
        roles: String,
    },
    /// The role's settings make no sense together after the change.
    #[error("role `{role}` after setting its {setting}: `{field}`: {reason}")]
    Refused {
        /// The role's id.
        role: String,
        /// The setting changed.
        setting: &'static str,
        /// The setting at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
}
