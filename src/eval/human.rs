//! Human reference data for evaluation: outcome samples, the ids that pair them with
//! simulated dialogues, and utterances per role for the linguistic reference levels.
//!
//! `pfg:DIR` reads PersuasionForGood (`full_info.csv` and `full_dialog.csv` in `DIR`). The
//! people are the comparison protocol's ([`PfgDataset::protocol_split`]): persuadees with a
//! recorded donation in $0 to $2 (the task payment), in the `test` (200 persuadees, fixed
//! seed), `train` or `all` split. [`HumanReference::for_run`] narrows them to the people a
//! run simulated, so that a run of `--population pfg:DIR` is compared with exactly its own
//! participants: their donations (outcome `persuadee.donation`, each tagged with the
//! persona id `{dialogue}-persuadee` that the simulated persuadee carries) and the
//! utterances of their dialogues, per role.

use std::collections::{BTreeMap, HashMap};

use crate::data::persuasionforgood::PFG_FILTER;
use crate::data::persuasionforgood::{
    DataError, PfgDataset, PfgParticipant, PfgRole, ProtocolSplit, MAX_DONATION,
};
pub use crate::data::persuasionforgood::{Split, UnknownSplit};
use crate::rundir::PopulationReference;

use super::run::RunData;

/// Why human reference data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HumanError {
    /// The `--human` spec is not one this version reads.
    #[error("invalid human data spec `{spec}`: {reason}; expected `pfg:DIR` (PersuasionForGood: a directory holding full_info.csv and full_dialog.csv, or ConvoKit's persuasionforgood-corpus)")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The dataset's files could not be read (the message names the file, and for bad
    /// content the row and column).
    #[error("human data `{spec}`: {error}")]
    Data {
        /// The spec as given.
        spec: String,
        /// The dataset's error.
        error: Box<DataError>,
    },
    /// Nothing left after filtering and splitting.
    #[error("human data `{spec}`: no persuadee is left after filtering and taking the `{split}` split")]
    Empty {
        /// The spec as given.
        spec: String,
        /// The split taken.
        split: Split,
    },
    /// The run simulated one split and evaluation asked for another.
    #[error(
        "the run simulated the participants of the `{run}` split, and evaluation asked for the `{asked}` split: \
         that would compare different people. Compare the run's own participants, or ask for the \
         other split explicitly to compare with the `{asked}` split anyway (pairs only where ids overlap)"
    )]
    SplitMismatch {
        /// The split the run simulated.
        run: Split,
        /// The split evaluation asked for.
        asked: Split,
    },
    /// The run's recorded participants are not in this data's split (another data set, or
    /// an edited one).
    #[error(
        "human data `{spec}`: {missing} of the run's {total} participants (e.g. `{example}`) are not in its \
         `{split}` split; the run was made from other data: pass the directory its population came from"
    )]
    OtherData {
        /// The spec as given.
        spec: String,
        /// The split compared with.
        split: Split,
        /// The run's participants not found in the split.
        missing: usize,
        /// The run's participants.
        total: usize,
        /// One participant id that was not found.
        example: String,
    },
}

/// One human outcome value with the population id that pairs it with a simulated dialogue.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanValue {
    /// The participant's persona id.
    pub id: String,
    /// The recorded value.
    pub value: f64,
}

/// One human categorical outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanLabel {
    /// The participant's persona id.
    pub id: String,
    /// The recorded category.
    pub label: String,
}

/// A human reference, ready to compare a run with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HumanReference {
    /// The spec it was loaded from, e.g. `pfg:../data/persuasionforgood`.
    pub source: String,
    /// The data split the people are from.
    pub split: Split,
    /// Seed of the train/test split: the fixed [`crate::data::persuasionforgood::SPLIT_SEED`].
    pub split_seed: u64,
    /// How rows were filtered, in words.
    pub filter: String,
    /// What the filter kept and dropped, in words.
    pub filter_summary: String,
    /// Participants (e.g. persuadees) in the reference.
    pub participants: usize,
    /// Persona ids of the reference's participants, in population order.
    pub participant_ids: Vec<String>,
    /// Who the reference people are, relative to the run, in words (for reports).
    pub people: String,
    /// The run's simulated people are the reference's own participants (a population drawn
    /// from this data and split), so every simulated value has its real counterpart.
    pub same_people: bool,
    /// Numeric outcomes by key `role.name`.
    pub numeric: BTreeMap<String, Vec<HumanValue>>,
    /// Categorical outcomes by key `role.name`.
    pub categorical: BTreeMap<String, Vec<HumanLabel>>,
    /// Utterances per role: one list per dialogue, each in order.
    pub utterances: BTreeMap<String, Vec<Vec<String>>>,
}

impl HumanReference {
    /// Every persuadee of one split of `pfg:DIR` (the only kind so far).
    pub fn load(spec: &str, split: Split) -> Result<HumanReference, HumanError> {
        let data = load_pfg(spec)?;
        Self::from_pfg(spec, &data, split)
    }

    /// Every persuadee of one split of an already loaded PersuasionForGood dataset.
    pub(crate) fn from_pfg(
        spec: &str,
        data: &PfgDataset,
        split: Split,
    ) -> Result<HumanReference, HumanError> {
        let chosen = protocol_split(spec, data, split)?;
        let people = format!("all {} persuadees of the `{split}` split", chosen.persuadees.len());
        let all: Vec<&PfgParticipant> = chosen.persuadees.iter().collect();
        Self::from_participants(spec, data, &chosen, &all, people, false)
    }

    /// The reference for `run`: the same people the run simulated. A run whose population
    /// was drawn from PersuasionForGood (`--population pfg:DIR`) records its split and
    /// participants; the reference is then exactly the participants its `n` dialogues
    /// played (each once, also those whose dialogue failed or gave no value), in the run's
    /// own split unless `split` names another, which is refused unless `other_split`. A
    /// run of hand-written personas is compared with every persuadee of `split` (default
    /// `test`), and the reference says so.
    pub fn for_run(
        spec: &str,
        run: &RunData,
        split: Option<Split>,
        other_split: bool,
    ) -> Result<HumanReference, HumanError> {
        let recorded: Option<PopulationReference> = run.population_reference();
        let split = match (split, &recorded) {
            (Some(asked), Some(r)) if asked != r.split && !other_split => {
                return Err(HumanError::SplitMismatch { run: r.split, asked })
            }
            (Some(asked), _) => asked,
            (None, Some(r)) => r.split,
            (None, None) => Split::default(),
        };
        let data = load_pfg(spec)?;
        let chosen = protocol_split(spec, &data, split)?;
        let Some(r) = recorded.filter(|r| r.split == split) else {
            let mut h = Self::from_pfg(spec, &data, split)?;
            h.people = match run.population_reference() {
                Some(r) => format!(
                    "all {} persuadees of the `{split}` split, while the run simulated the `{}` split \
                     (compared on request; pairs only where ids overlap)",
                    h.participants, r.split
                ),
                None => format!(
                    "all {} persuadees of the `{split}` split; the run's personas ({}) are not participants \
                     of this data, so the distributions are compared without pairing",
                    h.participants,
                    run.population().unwrap_or_else(|| "unknown population".into())
                ),
            };
            return Ok(h);
        };
        // The people of the run's dialogues: with `people = n / replicates`, dialogue i plays
        // participant (i mod people) mod len, and a shard's directory holds only its own
        // indices.
        let n = run.planned_dialogues().unwrap_or(run.dialogues.len());
        let replicates = run.manifest.as_ref().map_or(1, |m| m.replicates.max(1));
        let people = (n / replicates).max(1);
        let shard = run.manifest.as_ref().and_then(|m| m.shard);
        let len = r.participant_ids.len().max(1);
        let mut seen = std::collections::HashSet::new();
        let ids: Vec<&String> = (0..n)
            .filter(|i| shard.is_none_or(|s| s.contains(*i)))
            .filter_map(|i| r.participant_ids.get((i % people) % len))
            .filter(|id| seen.insert(id.as_str()))
            .collect();
        let times = if replicates > 1 {
            format!("; each person was simulated {replicates} times (replicates), each paired with their one real value")
        } else if n > r.participant_ids.len() {
            format!(
                "; with n = {n} dialogues each person was simulated about {:.1} times",
                n as f64 / len as f64
            )
        } else {
            String::new()
        };
        let shard_note = shard.map(|s| format!(" (shard {}/{})", s.index, s.count)).unwrap_or_default();
        let by_id: HashMap<String, &PfgParticipant> =
            chosen.persuadees.iter().map(|p| (p.persona_id(), p)).collect();
        let missing: Vec<&&String> = ids.iter().filter(|id| !by_id.contains_key(id.as_str())).collect();
        if let Some(example) = missing.first() {
            return Err(HumanError::OtherData {
                spec: spec.into(),
                split,
                missing: missing.len(),
                total: ids.len(),
                example: example.to_string(),
            });
        }
        let people_list: Vec<&PfgParticipant> = ids.iter().map(|id| by_id[id.as_str()]).collect();
        let which = if people_list.len() == chosen.persuadees.len() {
            "the whole split".to_string()
        } else if shard.is_some() {
            format!("this shard's share of the {} in the split", chosen.persuadees.len())
        } else {
            format!(
                "the first {} of the {} in the split, ordered by dialogue id",
                people_list.len(),
                chosen.persuadees.len()
            )
        };
        let people = format!(
            "the {} participants of the `{split}` split that the run simulated{shard_note} ({which}); each \
             simulated persuadee is paired with the same person's real value, and the human sample holds \
             every one of them, also those whose simulation failed or gave no value{times}",
            people_list.len()
        );
        Self::from_participants(spec, &data, &chosen, &people_list, people, true)
    }

    fn from_participants(
        spec: &str,
        data: &PfgDataset,
        chosen: &ProtocolSplit,
        persuadees: &[&PfgParticipant],
        people: String,
        same_people: bool,
    ) -> Result<HumanReference, HumanError> {
        if persuadees.is_empty() {
            return Err(HumanError::Empty { spec: spec.into(), split: chosen.split });
        }
        let mut donations = Vec::with_capacity(persuadees.len());
        let mut utterances: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for p in persuadees {
            if let Some(d) = p.donation.filter(|d| d.is_finite() && (0.0..=MAX_DONATION).contains(d)) {
                donations.push(HumanValue { id: p.persona_id(), value: d });
            }
            if let Some(utts) = data.dialogue(&p.dialogue_id) {
                for role in [PfgRole::Persuader, PfgRole::Persuadee] {
                    let texts: Vec<String> =
                        utts.iter().filter(|u| u.role == role).map(|u| u.text.clone()).collect();
                    utterances.entry(role.as_str().to_string()).or_default().push(texts);
                }
            }
        }
        let mut numeric = BTreeMap::new();
        numeric.insert("persuadee.donation".to_string(), donations);
        Ok(HumanReference {
            source: spec.to_string(),
            split: chosen.split,
            split_seed: crate::data::persuasionforgood::SPLIT_SEED,
            filter: PFG_FILTER.to_string(),
            filter_summary: chosen.filter.to_string(),
            participants: persuadees.len(),
            participant_ids: persuadees.iter().map(|p| p.persona_id()).collect(),
            people,
            same_people,
            numeric,
            categorical: BTreeMap::new(),
            utterances,
        })
    }
}

fn load_pfg(spec: &str) -> Result<PfgDataset, HumanError> {
    let Some(dir) = spec.strip_prefix("pfg:").or_else(|| spec.strip_prefix("p4g:")) else {
        return Err(HumanError::BadSpec { spec: spec.into(), reason: "unknown kind".into() });
    };
    if dir.trim().is_empty() {
        return Err(HumanError::BadSpec {
            spec: spec.into(),
            reason: "missing directory after `pfg:`".into(),
        });
    }
    PfgDataset::load_any(crate::data::expand_home(dir))
        .map_err(|error| HumanError::Data { spec: spec.into(), error: Box::new(error) })
}

fn protocol_split(spec: &str, data: &PfgDataset, split: Split) -> Result<ProtocolSplit, HumanError> {
    data.protocol_split(split).map_err(|error| HumanError::Data { spec: spec.into(), error: Box::new(error) })
}

/// The human reference a run is compared with, and where it came from.
pub struct HumanChoice {
    /// The reference (none for a run of hand-written personas without `human`).
    pub reference: Option<HumanReference>,
    /// Its spec (`pfg:DIR`).
    pub spec: Option<String>,
    /// Taken from the run's own population, as pinned at run time, not given by the caller.
    pub from_run: bool,
    /// The pinned human data changed since the run, and going on was asked for.
    pub changed: Option<crate::rundir::InputChange>,
}

/// Resolves the human reference of `run`: `human` when given (`none`: no human data, as a
/// sweep's `human = "none"`), else the run's own `pfg:` population as pinned at run time (its
/// data refused when changed since, unless `allow_changed_inputs`).
pub fn human_for_run(
    run: &RunData,
    human: Option<&str>,
    split: Option<Split>,
    other_split: bool,
    allow_changed_inputs: bool,
) -> Result<HumanChoice, super::EvalError> {
    if human.is_some_and(|h| h.trim().eq_ignore_ascii_case("none")) {
        return Ok(HumanChoice { reference: None, spec: None, from_run: false, changed: None });
    }
    let pinned = run
        .population_reference()
        .and(run.manifest.as_ref())
        .and_then(|m| m.input("human data"))
        .filter(|_| human.is_none());
    let changed = pinned.and_then(|pin| pin.change());
    if let Some(c) = &changed {
        if !allow_changed_inputs {
            return Err(super::EvalError::ChangedInput(c.clone()));
        }
    }
    let spec = match (human, pinned) {
        (Some(h), _) => Some(h.to_string()),
        (None, Some(pin)) => Some(format!("pfg:{}", pin.path.display())),
        (None, None) => run
            .population_reference()
            .and(run.population())
            .filter(|p| p.starts_with("pfg:") || p.starts_with("p4g:")),
    };
    let reference =
        spec.as_deref().map(|s| HumanReference::for_run(s, run, split, other_split)).transpose()?;
    Ok(HumanChoice { reference, from_run: human.is_none() && spec.is_some(), spec, changed })
}
