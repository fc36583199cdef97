//! Populations: who the agents play. A directory of persona files, or the participants of
//! a human dataset (PersuasionForGood persuadees, each paired with their real persuader).

use std::path::{Path, PathBuf};

use crate::persona::{load_persona_dir, Persona};

/// One population member: the persona a dialogue is built around and, where the data has
/// one, the partner it was paired with.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub persona: Persona,
    pub partner: Option<Persona>,
}

/// A population in a fixed order (dialogue i plays member i mod len).
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    /// How it was specified, for the resolved configuration.
    pub spec: String,
    pub members: Vec<Member>,
    /// Every persona by id, for roles with `persona = "id:..."`.
    pub all: Vec<Persona>,
}

/// A population that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PopulationError {
    #[error(transparent)]
    Persona(#[from] crate::persona::PersonaError),
    #[error(transparent)]
    Data(#[from] crate::data::persuasionforgood::DataError),
    #[error("population `{0}` is empty")]
    Empty(String),
    #[error("invalid population `{spec}`: {reason}")]
    Invalid { spec: String, reason: String },
}

impl Population {
    /// Loads `spec`: `DIR` (persona files) or `pfg:PATH` (PersuasionForGood's `full_info.csv`,
    /// or a directory holding it).
    pub fn load(spec: &str) -> Result<Self, PopulationError> {
        let population = if let Some(path) = spec.strip_prefix("pfg:").or_else(|| spec.strip_prefix("p4g:")) {
            Self::persuasion_for_good(spec, Path::new(path))?
        } else {
            let personas = load_persona_dir(spec)?;
            Population {
                spec: spec.to_string(),
                members: personas.iter().map(|p| Member { persona: p.clone(), partner: None }).collect(),
                all: personas,
            }
        };
        if population.members.is_empty() {
            return Err(PopulationError::Empty(spec.to_string()));
        }
        Ok(population)
    }

    fn persuasion_for_good(spec: &str, path: &Path) -> Result<Self, PopulationError> {
        use crate::data::persuasionforgood::{persona_from_participant, read_full_info, PfgRole};
        // full_info.csv alone is enough for personas; anything else (a ConvoKit corpus
        // directory, say) goes through the format-detecting loader.
        let file: PathBuf = if path.is_dir() { path.join("full_info.csv") } else { path.to_path_buf() };
        let participants = if file.is_file() && file.extension().is_some_and(|e| e == "csv") {
            read_full_info(&file)?
        } else {
            crate::data::persuasionforgood::PfgDataset::load_any(path)?.participants
        };
        let mut members = Vec::new();
        let mut all = Vec::new();
        for p in participants.iter().filter(|p| p.role == PfgRole::Persuadee) {
            let partner = participants
                .iter()
                .find(|q| q.role == PfgRole::Persuader && q.dialogue_id == p.dialogue_id)
                .map(persona_from_participant);
            let persona = persona_from_participant(p);
            all.push(persona.clone());
            if let Some(q) = &partner {
                all.push(q.clone());
            }
            members.push(Member { persona, partner });
        }
        Ok(Population { spec: spec.to_string(), members, all })
    }

    /// A persona by id.
    pub fn find(&self, id: &str) -> Option<&Persona> {
        self.all.iter().find(|p| p.id == id)
    }
}
