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

use crate::vs::{KSpec, Method, PromptTemplates, Selection, SelectionRule};

/// Names a system template may use.
pub const TEMPLATE_SLOTS: [&str; 5] = ["persona", "role", "partner", "scenario", "roles"];

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
    /// The prompting method the role speaks with.
    pub method: Method,
    /// Candidates asked for per call (1 for one-reply methods).
    pub k: KSpec,
    /// How one candidate is chosen per turn.
    pub rule: SelectionRule,
    /// The paper's τ, stated in the prompt ("responses each with a probability below τ").
    pub tau: Option<f64>,
    /// Replies gathered per turn (N) when the scenario sets it; see
    /// [`RoleSpec::turn_candidates`] for the default.
    pub candidates: Option<usize>,
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
}

impl RoleSpec {
    /// Replies gathered per turn (N), the turn-level candidate budget of Table 1: `candidates`
    /// when set, else one call's worth for `direct`, `cot` (1) and the list methods
    /// `sequence`, `vs-standard`, `vs-cot` (k, or the bound of a model-decided k), and two
    /// calls' worth for the methods that continue a conversation: `multi-turn` (2: a reply,
    /// then "another") and `vs-multi` (2k: k, then "k more").
    pub fn turn_candidates(&self) -> usize {
        self.candidates.unwrap_or_else(|| default_turn_candidates(self.method, self.k))
    }

    /// Switches to `method` (a command-line or sweep override), dropping what does not apply
    /// to it: k for one-reply methods (and the default k of 5 for a list method coming from
    /// one), τ and `min_prob` and weighted selection for methods without probabilities, and
    /// an explicit `candidates` (the new method's default applies).
    pub fn set_method(&mut self, method: Method) {
        let was_list = self.method.asks_for_list();
        let was_verbalized = self.method.is_verbalized();
        self.method = method;
        if !method.asks_for_list() {
            self.k = KSpec::Fixed { k: 1 };
        } else if !was_list {
            self.k = KSpec::Fixed { k: load::DEFAULT_K };
        }
        if method.is_verbalized() && !was_verbalized && self.rule.selection == Selection::Uniform {
            // The default for methods with probabilities.
            self.rule.selection = Selection::Weighted;
        }
        if !method.is_verbalized() {
            self.tau = None;
            self.rule.min_prob = None;
            if self.rule.selection != Selection::Uniform {
                self.rule.selection = Selection::Uniform;
            }
        }
        self.candidates = None;
    }

    /// The combinations of method, k, τ, `min_prob`, selection and `candidates` that make no
    /// sense, as `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let m = self.method;
        if !m.asks_for_list() && self.k != (KSpec::Fixed { k: 1 }) {
            return Err((
                "k",
                format!("`{m}` asks for one reply per call; set `candidates` for several replies per turn"),
            ));
        }
        if !m.is_verbalized() && self.tau.is_some() {
            return Err((
                "tau",
                format!("τ is stated in the prompts of vs-standard, vs-cot and vs-multi; `{m}` asks for no probabilities"),
            ));
        }
        if !m.is_verbalized() && self.rule.min_prob.is_some() {
            return Err(("min_prob", format!("`{m}` gives no probabilities to filter by")));
        }
        if !m.is_verbalized() && self.rule.selection != Selection::Uniform && self.turn_candidates() > 1 {
            return Err((
                "selection",
                format!(
                    "`{m}` gives no probabilities, so {} selection has nothing to weigh: use \"uniform\"",
                    self.rule.selection
                ),
            ));
        }
        if let KSpec::ModelDecided { .. } = self.k {
            if m == Method::VsMulti {
                return Err(("k", "vs-multi asks for \"k more\" in each follow-up: give a fixed k".into()));
            }
            if self.candidates.is_some() {
                return Err((
                    "candidates",
                    "with a model-decided k a turn is one call, so `candidates` cannot be met: give a fixed k".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The default turn-level candidate budget of `method` with `k` (see
/// [`RoleSpec::turn_candidates`]).
pub fn default_turn_candidates(method: Method, k: KSpec) -> usize {
    match method {
        Method::Direct | Method::Cot => 1,
        Method::MultiTurn => 2,
        Method::Sequence | Method::VsStandard | Method::VsCot => k.max(),
        Method::VsMulti => 2 * k.max(),
    }
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
    /// The outcome's name, unique per role.
    pub name: String,
    /// Index of the role asked.
    pub role: usize,
    /// The question, asked after the dialogue.
    pub question: String,
    /// The type of the answer.
    pub kind: OutcomeKind,
    /// What reads the outcome from the role's words when the answer cannot be used.
    pub fallback: Option<OutcomeFallback>,
    /// The method that answers the question; `None`: the role's own method, k, τ and rule.
    pub method: Option<Method>,
    /// Also record what the role stated in the dialogue, read by a constrained extractor
    /// call (the `stated` measure).
    pub stated: bool,
    /// The model spec of that extractor call; `None`: the role's own model.
    pub stated_model: Option<String>,
}

/// What reads an outcome from the role's own words when the answer to the question cannot
/// be used.
#[derive(Debug, Clone)]
pub enum OutcomeFallback {
    /// `fallback_regex`: the first capture group (or the whole match) of the last match.
    Regex(Regex),
    /// `fallback = "money"`: the last donation stated (see [`crate::outcome::money`]).
    Money(crate::outcome::money::MoneyReader),
}

/// The type of an outcome's answer.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum OutcomeKind {
    /// A number in `[min, max]`.
    Number {
        /// Smallest valid answer.
        min: f64,
        /// Largest valid answer.
        max: f64,
    },
    /// One of the categories.
    Category {
        /// The valid answers.
        categories: Vec<String>,
    },
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
                "kind": o.kind,
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
                "method": o.method.unwrap_or(roles[o.role].method),
                "stated": o.stated,
                "stated_model": o.stated_model,
            })).collect::<Vec<_>>(),
            "use_schema": self.use_schema,
            "templates": self.templates,
        })
    }

    /// The model specs of the outcomes' stated-measure extractors (`stated_model`), each once.
    pub fn stated_models(&self) -> std::collections::BTreeSet<String> {
        self.outcomes.iter().filter_map(|o| o.stated_model.clone()).collect()
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
            "method" => spec.set_method(value.parse::<Method>().map_err(|e| e.to_string())?),
            "k" => {
                spec.k = load::parse_k(value, DEFAULT_K_MAX.max(spec.k.max()))
                    .map_err(|e| format!("--role-k {role}: {e}"))?
            }
            "selection" => {
                let selection = value.parse::<crate::vs::Selection>().map_err(|e| e.to_string())?;
                // Asked for by name: weighing what has no probabilities is refused even for
                // one candidate a turn, where it would silently act as any other rule.
                if selection == crate::vs::Selection::Weighted && !spec.method.is_verbalized() {
                    return Err(format!(
                        "--role-selection {role}=weighted: `{}` gives no probabilities, so weighted selection has \
                         nothing to weigh: use \"uniform\" or a vs-* method",
                        spec.method
                    ));
                }
                spec.rule.selection = selection
            }
            "model" => spec.model = Some(value.to_string()),
            other => return Err(format!("unknown role override `{other}`")),
        }
        spec.check().map_err(|(bad, reason)| format!("role `{role}` after --role-{field}: `{bad}`: {reason}"))
    }
}
