//! A run directory read back for evaluation: the resolved configuration (for outcome types
//! and ranges) and, per dialogue, its latest attempt from `transcripts.jsonl`.
//!
//! The transcript is the source of truth (`outcomes.csv` is rebuilt from it), so outcomes
//! are taken from the outcome events of each dialogue's latest *completed* attempt. A
//! dialogue whose latest attempt did not end is failed: its outcomes count as failed,
//! never as missing and never as zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::EvalError;
use crate::dialogue::events::{AgentInfo, Event, Measure, OutcomeEvent, TurnEvent};
use crate::experiment::transcript::read_events;

/// File names inside a run directory.
pub const TRANSCRIPTS: &str = "transcripts.jsonl";
/// The resolved configuration written by `vsim run`.
pub const CONFIG: &str = "config.json";

/// The type of an outcome, as declared in the scenario or inferred from the values.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeType {
    /// A number, with the declared range when the scenario gave one.
    Number { min: Option<f64>, max: Option<f64> },
    /// One of a set of labels (the declared ones; others seen are added when counting).
    Category { categories: Vec<String> },
}

/// One outcome of the scenario, keyed `role.name` as in `outcomes.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeDecl {
    pub key: String,
    pub role: String,
    pub name: String,
    pub kind: OutcomeType,
}

/// One dialogue's latest attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDialogue {
    pub id: String,
    /// Position in the run (dialogues are ordered by it).
    pub index: u64,
    /// The population member the dialogue was built around (a PersuasionForGood persona id
    /// such as `20180904-045349_715_live-persuadee`).
    pub population_id: Option<String>,
    pub agents: Vec<AgentInfo>,
    /// The latest attempt ended normally.
    pub completed: bool,
    /// Turns of the latest attempt (also of a failed one, up to the failure).
    pub turns: Vec<TurnEvent>,
    /// Outcome events of the latest attempt when it completed; empty otherwise.
    pub outcomes: Vec<OutcomeEvent>,
    /// The last error message of a failed attempt.
    pub error: Option<String>,
}

impl RunDialogue {
    /// The outcome event for `role.name`, if the completed attempt has one.
    pub fn outcome(&self, key: &str) -> Option<&OutcomeEvent> {
        self.outcomes.iter().find(|o| format!("{}.{}", o.role, o.name) == key)
    }
}

/// A run directory's contents as needed for evaluation and the dialogue browser.
#[derive(Debug, Clone, PartialEq)]
pub struct RunData {
    pub dir: PathBuf,
    /// `config.json`, when present.
    pub config: Option<Value>,
    /// Dialogues in run order.
    pub dialogues: Vec<RunDialogue>,
    /// Declared outcomes first (scenario order), then any others seen in the transcript.
    pub outcomes: Vec<OutcomeDecl>,
    /// Which measurement the outcomes are: the answers, or what the roles stated.
    pub measure: Measure,
}

impl RunData {
    /// Reads `dir/config.json` (optional) and `dir/transcripts.jsonl` (required), with the
    /// answers to the outcome questions as the outcomes.
    pub fn load(dir: impl AsRef<Path>) -> Result<RunData, EvalError> {
        Self::load_measure(dir, Measure::Answer)
    }

    /// [`RunData::load`] with the outcomes of one measure: the answers, or what the roles
    /// stated in the dialogue (outcomes declared with `stated = true`).
    pub fn load_measure(dir: impl AsRef<Path>, measure: Measure) -> Result<RunData, EvalError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(EvalError::NotARunDir { dir, reason: "no such directory".into() });
        }
        let transcript = dir.join(TRANSCRIPTS);
        if !transcript.is_file() {
            return Err(EvalError::NotARunDir { dir, reason: format!("it holds no {TRANSCRIPTS}") });
        }
        let config_path = dir.join(CONFIG);
        let config = match std::fs::read_to_string(&config_path) {
            Ok(text) => Some(
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| EvalError::Config { path: config_path.clone(), reason: e.to_string() })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(EvalError::Io { path: config_path, source }),
        };
        let events = read_events(&transcript)?;
        let mut dialogues: Vec<RunDialogue> =
            events.iter().map(|(id, evs)| dialogue_from_events(id, evs, measure)).collect();
        dialogues.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.id.cmp(&b.id)));
        let mut outcomes = config.as_ref().map(declared_outcomes).unwrap_or_default();
        add_observed_outcomes(&mut outcomes, &dialogues);
        Ok(RunData { dir, config, dialogues, outcomes, measure })
    }

    /// The scenario name from the configuration.
    pub fn scenario(&self) -> Option<String> {
        self.config.as_ref()?.pointer("/scenario/name")?.as_str().map(str::to_string)
    }

    /// The population spec from the configuration (`pfg:...` or a persona directory).
    pub fn population(&self) -> Option<String> {
        self.config.as_ref()?.get("population")?.as_str().map(str::to_string)
    }

    /// Who the population's members are in the human data, for a population drawn from it
    /// (`config.json`'s `population_reference`, written by `vsim run`).
    pub fn population_reference(&self) -> Option<crate::experiment::PopulationReference> {
        serde_json::from_value(self.config.as_ref()?.get("population_reference")?.clone()).ok()
    }

    /// The number of dialogues the run was configured for (`n` in `config.json`).
    pub fn planned_dialogues(&self) -> Option<usize> {
        usize::try_from(self.config.as_ref()?.get("n")?.as_u64()?).ok()
    }

    /// A short name for the run: its directory name.
    pub fn label(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string())
    }
}

fn dialogue_from_events(id: &str, events: &[Event], measure: Measure) -> RunDialogue {
    let start = events.iter().rposition(|e| matches!(e, Event::Begin(_)));
    let attempt = start.map_or(events, |s| &events[s..]);
    let mut d = RunDialogue {
        id: id.to_string(),
        index: u64::MAX,
        population_id: None,
        agents: Vec::new(),
        completed: false,
        turns: Vec::new(),
        outcomes: Vec::new(),
        error: None,
    };
    for e in attempt {
        match e {
            Event::Begin(b) => {
                d.index = b.index;
                d.population_id = b.population_id.clone();
                d.agents = b.agents.clone();
            }
            Event::Turn(t) => d.turns.push(t.clone()),
            Event::Outcome(o) if o.measure == measure => d.outcomes.push(o.clone()),
            Event::Outcome(_) => {}
            Event::End(_) => d.completed = start.is_some(),
            Event::Error(err) => d.error = Some(err.message.clone()),
        }
    }
    if start.is_none() {
        d.error.get_or_insert_with(|| "the transcript has no begin event for this dialogue".into());
    }
    if !d.completed {
        d.outcomes.clear();
    }
    d
}

/// Outcomes from `config.json`'s `scenario.outcomes` (as written by `Scenario::resolved`).
fn declared_outcomes(config: &Value) -> Vec<OutcomeDecl> {
    let Some(list) = config.pointer("/scenario/outcomes").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for o in list {
        let (Some(name), Some(role)) =
            (o.get("name").and_then(Value::as_str), o.get("role").and_then(Value::as_str))
        else {
            continue;
        };
        let kind = o.get("kind");
        let kind = match kind.and_then(|k| k.get("type")).and_then(Value::as_str) {
            Some("category") => OutcomeType::Category {
                categories: kind
                    .and_then(|k| k.get("categories"))
                    .and_then(Value::as_array)
                    .map(|c| c.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            },
            _ => OutcomeType::Number {
                min: kind.and_then(|k| k.get("min")).and_then(Value::as_f64),
                max: kind.and_then(|k| k.get("max")).and_then(Value::as_f64),
            },
        };
        out.push(OutcomeDecl { key: format!("{role}.{name}"), role: role.into(), name: name.into(), kind });
    }
    out
}

/// Adds outcomes seen in the transcript but not declared: numeric when every value seen is
/// a number, categorical otherwise.
fn add_observed_outcomes(decls: &mut Vec<OutcomeDecl>, dialogues: &[RunDialogue]) {
    let mut seen: BTreeMap<String, (String, String, bool)> = BTreeMap::new();
    for o in dialogues.iter().flat_map(|d| &d.outcomes) {
        let key = format!("{}.{}", o.role, o.name);
        let entry = seen.entry(key).or_insert_with(|| (o.role.clone(), o.name.clone(), true));
        if matches!(o.value, Some(ref v) if !v.is_number()) {
            entry.2 = false;
        }
    }
    for (key, (role, name, numeric)) in seen {
        if decls.iter().any(|d| d.key == key) {
            continue;
        }
        let kind = if numeric {
            OutcomeType::Number { min: None, max: None }
        } else {
            OutcomeType::Category { categories: Vec::new() }
        };
        decls.push(OutcomeDecl { key, role, name, kind });
    }
}
