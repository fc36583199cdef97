//! Populations: who the agents play. A directory of persona files, or the participants of
//! a human dataset (PersuasionForGood persuadees, each paired with their real persuader).
//!
//! A PersuasionForGood population is the comparison protocol's reference people: the
//! persuadees kept by the consistency filter, in one split (`test` by default), ordered by
//! dialogue id ([`PfgDataset::protocol_split`]). The run records who they are
//! ([`crate::rundir::PopulationReference`]) so that evaluation compares exactly the same people.

use std::path::{Path, PathBuf};

use crate::data::persuasionforgood::{persona_from_participant, PfgDataset, PfgRole, Split, PFG_FILTER};
use crate::persona::{load_persona_dir, Persona};
use crate::rundir::PopulationReference;

/// One population member: the persona a dialogue is built around and, where the data has
/// one, the partner it was paired with.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The persona the dialogue is built around.
    pub persona: Persona,
    /// The partner it was paired with in the data, if any.
    pub partner: Option<Persona>,
}

/// A population in a fixed order (dialogue i plays member i mod len).
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// How it was specified, for the resolved configuration.
    pub spec: String,
    /// The members, in order.
    pub members: Vec<Member>,
    /// Every persona by id, for roles with `persona = "id:..."`.
    pub all: Vec<Persona>,
    /// Who the members are in the human data, for a population drawn from it.
    pub reference: Option<PopulationReference>,
}

/// A population that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PopulationError {
    /// A persona file could not be read.
    #[error(transparent)]
    Persona(#[from] crate::persona::PersonaError),
    /// The dataset could not be read.
    #[error(transparent)]
    Data(#[from] crate::data::persuasionforgood::DataError),
    /// The population has no members.
    #[error("population `{0}` is empty")]
    Empty(String),
    /// The population spec cannot be used.
    #[error("invalid population `{spec}`: {reason}")]
    Invalid {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A split was given for a directory of persona files.
    #[error("population `{spec}`: a split ({split}) applies only to a population drawn from data (`pfg:DIR`), not to a directory of persona files")]
    SplitWithoutData {
        /// The spec as given.
        spec: String,
        /// The split given.
        split: Split,
    },
}

impl Population {
    /// Loads `spec` with the default split: `DIR` (persona files) or `pfg:PATH`
    /// (PersuasionForGood's `full_info.csv`, or a directory holding it; its `test` split).
    pub fn load(spec: &str) -> Result<Self, PopulationError> {
        Self::load_split(spec, None)
    }

    /// Loads `spec`; `split` chooses the part of a data population (default `test`) and is
    /// refused for persona files.
    pub fn load_split(spec: &str, split: Option<Split>) -> Result<Self, PopulationError> {
        let population = if let Some(path) = spec.strip_prefix("pfg:").or_else(|| spec.strip_prefix("p4g:")) {
            Self::persuasion_for_good(spec, &crate::data::expand_home(path), split.unwrap_or_default())?
        } else {
            if let Some(split) = split {
                return Err(PopulationError::SplitWithoutData { spec: spec.to_string(), split });
            }
            let personas = load_persona_dir(spec)?;
            Population {
                spec: spec.to_string(),
                members: personas.iter().map(|p| Member { persona: p.clone(), partner: None }).collect(),
                all: personas,
                reference: None,
            }
        };
        if population.members.is_empty() {
            return Err(PopulationError::Empty(spec.to_string()));
        }
        Ok(population)
    }

    /// The file or directory the population was read from, and what it is to the run
    /// (`human data` for a data set, `personas` for persona files), to pin in the manifest.
    pub fn input(&self) -> Option<(&'static str, PathBuf)> {
        let (role, path) = match self.spec.strip_prefix("pfg:").or_else(|| self.spec.strip_prefix("p4g:")) {
            Some(path) => ("human data", crate::data::expand_home(path)),
            None => ("personas", PathBuf::from(&self.spec)),
        };
        path.exists().then_some((role, path))
    }

    fn persuasion_for_good(spec: &str, path: &Path, split: Split) -> Result<Self, PopulationError> {
        use crate::data::persuasionforgood::read_full_info;
        // full_info.csv alone is enough for personas; anything else (a ConvoKit corpus
        // directory, say) goes through the format-detecting loader.
        let file: PathBuf = if path.is_dir() { path.join("full_info.csv") } else { path.to_path_buf() };
        let data = if file.is_file() && file.extension().is_some_and(|e| e == "csv") {
            PfgDataset { participants: read_full_info(&file)?, dialogues: Default::default() }
        } else {
            PfgDataset::load_any(path)?
        };
        let chosen = data.protocol_split(split)?;
        let mut members = Vec::new();
        let mut all = Vec::new();
        for p in &chosen.persuadees {
            // The partner is looked up unfiltered: a persuader's own donation does not matter.
            let partner = data.participant(&p.dialogue_id, PfgRole::Persuader).map(persona_from_participant);
            let persona = persona_from_participant(p);
            all.push(persona.clone());
            if let Some(q) = &partner {
                all.push(q.clone());
            }
            members.push(Member { persona, partner });
        }
        let reference = PopulationReference {
            dataset: "persuasionforgood".into(),
            split,
            split_seed: crate::data::persuasionforgood::SPLIT_SEED,
            test_size: chosen.test_size,
            filter: PFG_FILTER.into(),
            filter_summary: chosen.filter.to_string(),
            participant_ids: members.iter().map(|m| m.persona.id.clone()).collect(),
        };
        Ok(Population { spec: spec.to_string(), members, all, reference: Some(reference) })
    }

    /// A persona by id.
    pub fn find(&self, id: &str) -> Option<&Persona> {
        self.all.iter().find(|p| p.id == id)
    }
}
