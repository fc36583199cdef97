//! Human reference data for evaluation: outcome samples, the ids that pair them with
//! simulated dialogues, and utterances per role for the linguistic reference levels.
//!
//! `pfg:DIR` reads PersuasionForGood (`full_info.csv` and `full_dialog.csv` in `DIR`). The
//! persuadees are filtered with [`PfgDataset::filter_consistent`]: a donation must be
//! recorded and lie in $0 to $2 (the task payment), so rows with no donation, a negative
//! one or one above $2 (35 rows, up to $700) are dropped. Then a split is chosen: `all`,
//! or the `test` (200 persuadees) / `train` part of [`PfgDataset::train_test_split`] with
//! the given seed. The reference is every kept persuadee of the split: their donations
//! (outcome `persuadee.donation`, each tagged with the persona id `{dialogue}-persuadee`
//! that `--population pfg:DIR` gives the simulated persuadee) and the utterances of their
//! dialogues, per role.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::data::persuasionforgood::{
    persona_from_participant, DataError, PfgDataset, PfgParticipant, PfgRole, DEFAULT_TEST_SIZE, MAX_DONATION,
};

/// Which persuadees of the human data form the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Every persuadee kept by the filter.
    #[default]
    All,
    /// The held-out test set ([`DEFAULT_TEST_SIZE`] persuadees).
    Test,
    /// The rest.
    Train,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::All => "all",
            Split::Test => "test",
            Split::Train => "train",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown split name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown split `{0}`; valid splits: all, test, train")]
pub struct UnknownSplit(pub String);

impl FromStr for Split {
    type Err = UnknownSplit;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Split::All),
            "test" => Ok(Split::Test),
            "train" => Ok(Split::Train),
            _ => Err(UnknownSplit(s.to_string())),
        }
    }
}

/// Why human reference data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HumanError {
    /// The `--human` spec is not one this version reads.
    #[error("invalid human data spec `{spec}`: {reason}; expected `pfg:DIR` (PersuasionForGood: a directory holding full_info.csv and full_dialog.csv, or ConvoKit's persuasionforgood-corpus)")]
    BadSpec { spec: String, reason: String },
    /// The dataset's files could not be read (the message names the file, and for bad
    /// content the row and column).
    #[error("human data `{spec}`: {error}")]
    Data { spec: String, error: Box<DataError> },
    /// Nothing left after filtering and splitting.
    #[error("human data `{spec}`: no persuadee is left after filtering and taking the `{split}` split")]
    Empty { spec: String, split: Split },
}

/// One human outcome value with the population id that pairs it with a simulated dialogue.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanValue {
    pub id: String,
    pub value: f64,
}

/// One human categorical outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanLabel {
    pub id: String,
    pub label: String,
}

/// A human reference, ready to compare a run with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HumanReference {
    /// The spec it was loaded from, e.g. `pfg:../data/persuasionforgood`.
    pub source: String,
    pub split: Split,
    /// Seed of the train/test split (unused for `all`).
    pub split_seed: u64,
    /// How rows were filtered, in words.
    pub filter: String,
    /// What the filter kept and dropped, in words.
    pub filter_summary: String,
    /// Participants (e.g. persuadees) in the reference.
    pub participants: usize,
    /// Numeric outcomes by key `role.name`.
    pub numeric: BTreeMap<String, Vec<HumanValue>>,
    /// Categorical outcomes by key `role.name`.
    pub categorical: BTreeMap<String, Vec<HumanLabel>>,
    /// Utterances per role: one list per dialogue, each in order.
    pub utterances: BTreeMap<String, Vec<Vec<String>>>,
}

/// The filter applied to PersuasionForGood participants, in words (for reports).
pub const PFG_FILTER: &str = "persuadees with a recorded donation between $0 and $2 \
     (the task payment); rows with no donation, a negative one or one above $2 are dropped";

impl HumanReference {
    /// Loads a spec: `pfg:DIR` (the only kind so far).
    pub fn load(spec: &str, split: Split, split_seed: u64) -> Result<HumanReference, HumanError> {
        let Some(dir) = spec.strip_prefix("pfg:").or_else(|| spec.strip_prefix("p4g:")) else {
            return Err(HumanError::BadSpec { spec: spec.into(), reason: "unknown kind".into() });
        };
        if dir.trim().is_empty() {
            return Err(HumanError::BadSpec {
                spec: spec.into(),
                reason: "missing directory after `pfg:`".into(),
            });
        }
        let data = PfgDataset::load_any(PathBuf::from(dir))
            .map_err(|error| HumanError::Data { spec: spec.into(), error: Box::new(error) })?;
        Self::from_pfg(spec, &data, split, split_seed)
    }

    /// The reference from an already loaded PersuasionForGood dataset (filtered here).
    pub fn from_pfg(
        spec: &str,
        data: &PfgDataset,
        split: Split,
        split_seed: u64,
    ) -> Result<HumanReference, HumanError> {
        let (kept, report) = data.filter_consistent();
        let persuadees: Vec<PfgParticipant> = match split {
            Split::All => kept.with_role(PfgRole::Persuadee).cloned().collect(),
            Split::Test | Split::Train => {
                let size = DEFAULT_TEST_SIZE.min(kept.with_role(PfgRole::Persuadee).count());
                let s = kept
                    .train_test_split(size, split_seed)
                    .map_err(|error| HumanError::Data { spec: spec.into(), error: Box::new(error) })?;
                if split == Split::Test {
                    s.test
                } else {
                    s.train
                }
            }
        };
        if persuadees.is_empty() {
            return Err(HumanError::Empty { spec: spec.into(), split });
        }
        let mut donations = Vec::with_capacity(persuadees.len());
        let mut utterances: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for p in &persuadees {
            if let Some(d) = p.donation.filter(|d| d.is_finite() && (0.0..=MAX_DONATION).contains(d)) {
                donations.push(HumanValue { id: persona_from_participant(p).id, value: d });
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
            split,
            split_seed,
            filter: PFG_FILTER.to_string(),
            filter_summary: report.to_string(),
            participants: persuadees.len(),
            numeric,
            categorical: BTreeMap::new(),
            utterances,
        })
    }
}
