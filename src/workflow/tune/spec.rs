//! The tune file: a sweep file (scenario, population, role, the search space as a grid or
//! arms, pinned models, budget) with a `[tune]` table (objective, search strategy, sizes)
//! and `[[baselines]]`, read and validated into a [`Tune`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::objective::{Distance, Objective};
use crate::data::persuasionforgood::Split;
use crate::dialogue::events::Measure;
use crate::workflow::sweep::{Sweep, SweepError};

/// How candidates are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Every candidate on every train person used.
    Grid,
    /// Successive halving: every candidate on a small seeded sample of the train people,
    /// the best `1/eta` kept, the sample grown `eta` times, until one is left or the sample
    /// holds every train person used.
    Halving {
        /// People in the first stage.
        start: usize,
        /// The factor the field shrinks and the sample grows by.
        eta: usize,
    },
}

/// A validated tune file.
#[derive(Debug, Clone)]
pub struct Tune {
    /// The search space and everything a sweep has (population, role, models, budget).
    pub sweep: Sweep,
    /// What is minimised.
    pub objective: Objective,
    /// How candidates are searched.
    pub strategy: Strategy,
    /// Train people used at most (a seeded sample of the train split; default all).
    pub train_n: Option<usize>,
    /// Held-out people the choice and the baselines run on (the first of the test split;
    /// default all).
    pub test_n: Option<usize>,
    /// Resamples of train people behind the selection stability.
    pub bootstrap: usize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTune {
    outcome: Option<String>,
    measure: Option<String>,
    objective: Option<toml::Value>,
    strategy: Option<String>,
    start: Option<usize>,
    eta: Option<usize>,
    train_n: Option<usize>,
    test_n: Option<usize>,
    bootstrap: Option<usize>,
}

/// Reads and validates a tune file; relative paths in it are relative to the file.
pub fn load_tune(path: &Path) -> Result<Tune, SweepError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| SweepError::Io { path: path.to_path_buf(), source })?;
    parse_tune(path, &text)
}

/// Parses the text of a tune file at `path`.
// Long on purpose: validates the tune table field by field; each check is a few lines and names its field.
pub fn parse_tune(path: &Path, text: &str) -> Result<Tune, SweepError> {
    let sweep = crate::workflow::sweep::spec::parse_sweep_file(path, text, true)?;
    let invalid = |field: &str, reason: String| SweepError::Invalid {
        file: path.to_path_buf(),
        field: field.to_string(),
        reason,
    };
    let Some(table) = sweep.tune.clone() else {
        return Err(invalid("tune", "a tune file has a [tune] table (objective, strategy, sizes)".into()));
    };
    let raw = RawTune::deserialize(table).map_err(|e| invalid("tune", e.message().to_string()))?;
    // The search reads the train split only; the held-out people are read once, at the end.
    match sweep.split {
        None | Some(Split::Train) => {}
        Some(other) => {
            return Err(invalid(
                "split",
                format!(
                    "`{other}`: a tune searches on the train split only and proves its choice on the test \
                     split at the end; remove `split`"
                ),
            ))
        }
    }
    if !sweep.population.starts_with("pfg:") && !sweep.population.starts_with("p4g:") {
        return Err(invalid(
            "population",
            format!(
                "`{}`: a tune needs people with real values and a train/test split (`pfg:DIR`)",
                sweep.population
            ),
        ));
    }
    if sweep.human.as_deref() == Some("none") {
        return Err(invalid("human", "a tune compares with human data; remove `human = \"none\"`".into()));
    }
    if sweep.n.is_some() {
        return Err(invalid("n", "a tune sizes its stages itself: use tune.train_n and tune.test_n".into()));
    }
    let outcomes: Vec<(String, bool)> = sweep
        .scenario
        .outcomes
        .iter()
        .filter(|o| matches!(o.kind, crate::vs::AnswerShape::Number { .. }))
        .map(|o| (format!("{}.{}", sweep.scenario.roles[o.role].id, o.name), o.stated))
        .collect();
    let (outcome, stated) = match &raw.outcome {
        Some(key) => outcomes.iter().find(|(k, _)| k == key).cloned().ok_or_else(|| {
            let have: Vec<&str> = outcomes.iter().map(|(k, _)| k.as_str()).collect();
            invalid(
                "tune.outcome",
                format!("`{key}` is not a numeric outcome of the scenario (it has: {})", have.join(", ")),
            )
        })?,
        None => outcomes.first().cloned().ok_or_else(|| {
            invalid("tune.outcome", "the scenario declares no numeric outcome to tune on".into())
        })?,
    };
    // The outcome's own value (the answer through the method) unless the file asks for the
    // stated one, the paper's measure for PersuasionForGood (the shipped tune file does).
    let measure = match raw.measure.as_deref() {
        None | Some("answer") => Measure::Answer,
        Some("stated") if stated => Measure::Stated,
        Some("stated") => {
            return Err(invalid("tune.measure", format!("`{outcome}` does not record the stated measure")))
        }
        Some(other) => {
            return Err(invalid("tune.measure", format!("`{other}`: expected `stated` or `answer`")))
        }
    };
    let weights: BTreeMap<Distance, f64> = match &raw.objective {
        None => [(Distance::Ks, 1.0)].into(),
        Some(toml::Value::String(name)) => {
            [(name.parse::<Distance>().map_err(|e| invalid("tune.objective", e))?, 1.0)].into()
        }
        Some(toml::Value::Table(t)) => {
            let mut w = BTreeMap::new();
            for (name, v) in t {
                let d = name.parse::<Distance>().map_err(|e| invalid("tune.objective", e))?;
                let x = v
                    .as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .ok_or_else(|| {
                        invalid(&format!("tune.objective.{name}"), "a weight is a positive number".into())
                    })?;
                w.insert(d, x);
            }
            if w.is_empty() {
                return Err(invalid("tune.objective", "name at least one distance".into()));
            }
            w
        }
        Some(_) => {
            return Err(invalid(
                "tune.objective",
                "a distance name (`ks`) or a table of weights (`{ ks = 1.0, distinct1 = 0.5 }`)".into(),
            ))
        }
    };
    let role = sweep.role.clone();
    let objective = Objective { outcome, measure, weights, role };
    let strategy = match raw.strategy.as_deref().unwrap_or("halving") {
        "grid" => Strategy::Grid,
        "halving" => {
            let eta = raw.eta.unwrap_or(2);
            if eta < 2 {
                return Err(invalid("tune.eta", "keeps 1/eta of the field each stage: at least 2".into()));
            }
            let start = raw.start.unwrap_or(20);
            if start < 2 {
                return Err(invalid("tune.start", "at least 2 people in the first stage".into()));
            }
            Strategy::Halving { start, eta }
        }
        other => return Err(invalid("tune.strategy", format!("`{other}`: expected `grid` or `halving`"))),
    };
    for (field, v) in [("tune.train_n", raw.train_n), ("tune.test_n", raw.test_n)] {
        if v == Some(0) {
            return Err(invalid(field, "at least 1 person".into()));
        }
    }
    if sweep.cells().len() < 2 && sweep.arms.len() < 2 {
        return Err(invalid("grid", "a tune chooses among at least two candidates".into()));
    }
    Ok(Tune {
        objective,
        strategy,
        train_n: raw.train_n,
        test_n: raw.test_n,
        bootstrap: raw.bootstrap.unwrap_or(200),
        sweep,
    })
}
