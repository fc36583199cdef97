//! Scenario files: roles with prompt templates and methods, the turn graph, limits and
//! outcomes. Loading is two-stage: [`raw`] (serde, with spans) then [`Scenario`]
//! (validated), so every error names the file, line and field.

pub mod error;
pub mod graph;
mod load;
pub mod raw;

use std::path::PathBuf;

use regex::Regex;
use serde::Serialize;

pub use error::ScenarioError;
pub use graph::{TurnGraph, TurnPolicy};
pub use load::{load_scenario, parse_k, parse_scenario, DEFAULT_K_MAX};

use crate::vs::{KSpec, Method, PromptTemplates, SelectionRule};

/// Names a system template may use.
pub const TEMPLATE_SLOTS: [&str; 5] = ["persona", "role", "partner", "scenario", "roles"];

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub source: PathBuf,
    /// Default population directory (absolute or relative to the working directory).
    pub population: Option<PathBuf>,
    pub roles: Vec<RoleSpec>,
    pub graph: TurnGraph,
    pub max_turns: usize,
    pub stop_patterns: Vec<Regex>,
    pub opening: String,
    pub outcomes: Vec<OutcomeSpec>,
    pub templates: PromptTemplates,
    pub use_schema: bool,
    pub default_model: Option<String>,
}

/// One role (one agent per dialogue).
#[derive(Debug, Clone, Serialize)]
pub struct RoleSpec {
    pub id: String,
    pub name: String,
    pub system: String,
    pub method: Method,
    pub k: KSpec,
    pub rule: SelectionRule,
    pub prompt_tau: Option<f64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub model: Option<String>,
    pub persona: PersonaSource,
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

/// A question asked privately of a role after the dialogue.
#[derive(Debug, Clone)]
pub struct OutcomeSpec {
    pub name: String,
    pub role: usize,
    pub question: String,
    pub kind: OutcomeKind,
    pub fallback: Option<Regex>,
}

/// The type of an outcome's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OutcomeKind {
    Number { min: f64, max: f64 },
    Category { categories: Vec<String> },
}

impl Scenario {
    /// Index of a role by id.
    pub fn role_index(&self, id: &str) -> Option<usize> {
        self.roles.iter().position(|r| r.id == id)
    }

    /// The resolved configuration as JSON (written to the run directory).
    pub fn resolved(&self) -> serde_json::Value {
        let roles = &self.roles;
        serde_json::json!({
            "name": self.name,
            "source": self.source,
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
                "kind": o.kind,
                "fallback_regex": o.fallback.as_ref().map(|r| r.as_str()),
            })).collect::<Vec<_>>(),
            "use_schema": self.use_schema,
            "templates": self.templates,
        })
    }

    /// Applies a `ROLE=VALUE` override of a role's method, k, selection or model from the
    /// command line.
    pub fn override_role(&mut self, field: &str, assignment: &str) -> Result<(), String> {
        let (role, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("expected ROLE=VALUE for --role-{field}, got `{assignment}`"))?;
        let ids: Vec<String> = self.roles.iter().map(|r| r.id.clone()).collect();
        let idx = self
            .role_index(role.trim())
            .ok_or_else(|| format!("unknown role `{role}` in --role-{field}; roles: {}", ids.join(", ")))?;
        let spec = &mut self.roles[idx];
        let value = value.trim();
        match field {
            "method" => spec.method = value.parse::<Method>().map_err(|e| e.to_string())?,
            "k" => {
                spec.k = load::parse_k(value, spec.k.max()).map_err(|e| format!("--role-k {role}: {e}"))?
            }
            "selection" => {
                spec.rule.selection = value.parse::<crate::vs::Selection>().map_err(|e| e.to_string())?
            }
            "model" => spec.model = Some(value.to_string()),
            other => return Err(format!("unknown role override `{other}`")),
        }
        Ok(())
    }
}
