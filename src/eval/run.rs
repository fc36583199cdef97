//! A run directory read back for evaluation: the manifest (for outcome types and ranges,
//! and who the population is) and, per dialogue, its latest attempt from `transcripts.jsonl`.
//!
//! The transcript is the source of truth (`outcomes.csv` is rebuilt from it), so outcomes
//! are taken from the outcome events of each dialogue's latest *completed* attempt. A
//! dialogue whose latest attempt did not end is failed: its outcomes count as failed,
//! never as missing and never as zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::EvalError;
use crate::dialogue::events::{AgentInfo, Event, Measure, OutcomeEvent, TurnEvent};
use crate::rundir::transcript::read_events_noting_torn;
use crate::vs::AnswerShape;

use crate::rundir::{read_manifest_if_any, Manifest};
pub use crate::rundir::{MANIFEST as CONFIG, TRANSCRIPTS};

/// A number outcome without a declared range.
pub(crate) const UNBOUNDED: AnswerShape = AnswerShape::Number { min: f64::NEG_INFINITY, max: f64::INFINITY };

/// One outcome of the scenario, keyed `role.name` as in `outcomes.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeDecl {
    /// `role.name`, as in `outcomes.csv`.
    pub key: String,
    /// The id of the role the outcome belongs to.
    pub role: String,
    /// The outcome's name.
    pub name: String,
    /// Its type, as declared in the scenario or inferred from the values: a number outcome
    /// without a declared range has the unbounded one (infinite ends); the categories of a
    /// category outcome (`Choice`) are the declared ones, and others seen are added when
    /// counting.
    pub kind: AnswerShape,
}

/// One dialogue's latest attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDialogue {
    /// The dialogue's id.
    pub id: String,
    /// Position in the run (dialogues are ordered by it).
    pub index: u64,
    /// The population member the dialogue was built around (a PersuasionForGood persona id
    /// such as `20180904-045349_715_live-persuadee`).
    pub population_id: Option<String>,
    /// Who played each role, from the begin event.
    pub agents: Vec<AgentInfo>,
    /// The latest attempt ended normally.
    pub completed: bool,
    /// Turns of the latest attempt (also of a failed one, up to the failure).
    pub turns: Vec<TurnEvent>,
    /// Outcome events of the latest attempt when it completed; empty otherwise.
    pub outcomes: Vec<OutcomeEvent>,
    /// The last error message of a failed attempt.
    pub error: Option<String>,
    /// Attempts that ran from a `begin` to an `end`: more than one only in a transcript
    /// edited or joined by hand (the latest is the one evaluated).
    pub completed_attempts: usize,
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
    /// The run directory.
    pub dir: PathBuf,
    /// The manifest (`config.json`), when present.
    pub manifest: Option<Manifest>,
    /// Dialogues in run order.
    pub dialogues: Vec<RunDialogue>,
    /// Declared outcomes first (scenario order), then any others seen in the transcript.
    pub outcomes: Vec<OutcomeDecl>,
    /// Which measurement the outcomes are: the answers, or what the roles stated.
    pub measure: Measure,
    /// The transcript's last line is not a whole event (a write cut short) and was left out.
    pub torn_last_line: bool,
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
        let manifest = read_manifest_if_any(&dir)
            .map_err(|e| EvalError::Config { path: dir.join(CONFIG), reason: e.to_string() })?;
        let (events, torn_last_line) = read_events_noting_torn(&transcript)?;
        let mut dialogues: Vec<RunDialogue> =
            events.iter().map(|(id, evs)| dialogue_from_events(id, evs, measure)).collect();
        dialogues.sort_by(|a, b| a.index.cmp(&b.index).then_with(|| a.id.cmp(&b.id)));
        let mut outcomes = manifest.as_ref().map(declared_outcomes).unwrap_or_default();
        add_observed_outcomes(&mut outcomes, &dialogues);
        Ok(RunData { dir, manifest, dialogues, outcomes, measure, torn_last_line })
    }

    /// The scenario name from the configuration.
    pub fn scenario(&self) -> Option<String> {
        self.manifest.as_ref()?.scenario_name()
    }

    /// The population spec from the configuration (`pfg:...` or a persona directory).
    pub fn population(&self) -> Option<String> {
        self.manifest.as_ref()?.population.clone()
    }

    /// Who the population's members are in the human data, for a population drawn from it
    /// (`config.json`'s `population_reference`, written by `vsim run`).
    pub fn population_reference(&self) -> Option<crate::rundir::PopulationReference> {
        self.manifest.as_ref()?.population_reference.clone()
    }

    /// The number of dialogues the run was configured for (`n` in `config.json`).
    pub(crate) fn planned_dialogues(&self) -> Option<usize> {
        Some(self.manifest.as_ref()?.n)
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
        completed_attempts: 0,
    };
    let mut open = false;
    for e in events {
        match e {
            Event::Begin(_) => open = true,
            Event::End(_) if open => {
                d.completed_attempts += 1;
                open = false;
            }
            _ => {}
        }
    }
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

/// The outcomes the manifest's resolved scenario declared.
fn declared_outcomes(manifest: &Manifest) -> Vec<OutcomeDecl> {
    manifest
        .declared_outcomes()
        .into_iter()
        .map(|o| OutcomeDecl {
            key: format!("{}.{}", o.role, o.name),
            kind: o.kind.unwrap_or(UNBOUNDED),
            role: o.role,
            name: o.name,
        })
        .collect()
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
        let kind = if numeric { UNBOUNDED } else { AnswerShape::Choice { choices: Vec::new() } };
        decls.push(OutcomeDecl { key, role, name, kind });
    }
}
