//! Everything `vsim run` does before the runner starts, for every front end (the CLI and
//! the Python module): the scenario with its role overrides, the population, one backend
//! per model spec (each server checked before any dialogue starts), the run directory and
//! the options. One place, so that both front ends run exactly the same experiment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::factory::{open_model, openai_config, BackendOptions, OpenError};
use crate::backend::preflight::PreflightError;
use crate::backend::spec::{ModelSpec, ModelSpecError};
use crate::backend::SharedModel;
use crate::data::persuasionforgood::Split;
use crate::dialogue::run::Extractors;
use crate::scenario::{Scenario, ScenarioError};

use super::population::{Population, PopulationError};
use super::progress::RunProgress;
use super::runner::{run_experiment_with, RoleModel, RunConfig, RunError, RunOptions, RunSummary};

/// What to run: the settings of `vsim run`.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// A persona directory or `pfg:PATH` (default: the scenario's `population`, else
    /// `./personas`).
    pub population: Option<String>,
    /// For a `pfg:` population, which participants (default: the test split).
    pub split: Option<Split>,
    /// Number of dialogues (default: one per population member).
    pub n: Option<usize>,
    /// The model of every role without its own (default: the scenario's, else `local`).
    pub model: Option<String>,
    /// Role settings changed from the scenario file's, applied in order.
    pub role_overrides: Vec<crate::scenario::RoleOverride>,
    /// The experiment seed.
    pub seed: u64,
    /// Dialogues in flight at once.
    pub concurrency: usize,
    /// The run directory (default: `runs/SCENARIO-seedS`).
    pub out: Option<PathBuf>,
    /// Continue an existing run directory.
    pub resume: bool,
    /// Shard, budget, prices, failure limit and interrupt (its extractors are opened here).
    pub options: RunOptions,
    /// How backends are opened.
    pub backend: BackendOptions,
}

impl RunRequest {
    /// A request for `scenario` with every other setting at `vsim run`'s default.
    pub fn new(scenario: impl Into<PathBuf>) -> Self {
        Self {
            scenario: scenario.into(),
            population: None,
            split: None,
            n: None,
            model: None,
            role_overrides: Vec::new(),
            seed: 0,
            concurrency: 4,
            out: None,
            resume: false,
            options: RunOptions::default(),
            backend: BackendOptions::default(),
        }
    }
}

/// Why a run could not be prepared or run.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The scenario file could not be read.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
    /// A role override was refused.
    #[error(transparent)]
    Override(#[from] crate::scenario::OverrideError),
    /// The population could not be loaded.
    #[error(transparent)]
    Population(#[from] PopulationError),
    /// A model spec could not be parsed.
    #[error(transparent)]
    Spec(#[from] ModelSpecError),
    /// A server backend failed its check before the run.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// A backend could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The run itself could not start or finish.
    #[error(transparent)]
    Run(#[from] RunError),
}

impl LaunchError {
    /// Whether the run was refused for what it was asked to do (exit code 2) rather than
    /// failing while doing it (exit code 1).
    pub fn is_input(&self) -> bool {
        match self {
            LaunchError::Scenario(_)
            | LaunchError::Invalid(_)
            | LaunchError::Override(_)
            | LaunchError::Population(_)
            | LaunchError::Spec(_) => true,
            LaunchError::Preflight(e) => e.is_input(),
            LaunchError::Open(e) => e.is_input(),
            LaunchError::Run(e) => e.is_input(),
        }
    }
}

/// A run ready to start: everything resolved and every backend open.
pub struct PreparedRun {
    /// The scenario, overrides applied.
    pub scenario: Arc<Scenario>,
    /// The population the dialogues are built around.
    pub population: Population,
    /// The model of each role, in role order.
    pub models: Vec<RoleModel>,
    /// How to run (its `progress` is silent until the caller sets it).
    pub config: RunConfig,
    /// Shard, budget, prices, extractors, failure limit and interrupt.
    pub options: RunOptions,
    /// Said about `n` when it exceeds the population (members are simulated more than once).
    pub cycle_note: Option<String>,
    /// Worth telling the user, not stopping the run (e.g. a server that does not list the
    /// model).
    pub notes: Vec<String>,
}

impl PreparedRun {
    /// Runs (or resumes) the experiment.
    pub async fn run(&self) -> Result<RunSummary, RunError> {
        run_experiment_with(
            self.scenario.clone(),
            &self.population,
            &self.models,
            &self.config,
            &self.options,
        )
        .await
    }
}

/// Resolves `request` and opens its backends.
pub async fn prepare(request: RunRequest) -> Result<PreparedRun, LaunchError> {
    let mut scenario = crate::scenario::load_scenario(&request.scenario)?;
    for o in &request.role_overrides {
        scenario.override_role(o)?;
    }
    if request.concurrency == 0 {
        return Err(LaunchError::Invalid("concurrency must be at least 1".into()));
    }
    if request.n == Some(0) {
        return Err(LaunchError::Invalid("n must be at least 1".into()));
    }
    if let Some(n) = request.n.filter(|n| *n > super::runner::MAX_DIALOGUES) {
        return Err(LaunchError::Invalid(format!(
            "{n} dialogues is more than the limit of {}",
            super::runner::MAX_DIALOGUES
        )));
    }
    let population_spec = match (&request.population, &scenario.population) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p.display().to_string(),
        (None, None) => "personas".to_string(),
    };
    let population = Population::load_split(&population_spec, request.split)?;
    let members = population.members.len();
    let cycle_note = request.n.filter(|n| *n > members).map(|n| {
        format!(
            "note: n = {n} is more than the population's {members} members: dialogue i plays member i mod \
             {members}, so members are simulated more than once"
        )
    });

    // The embedded model decodes as many dialogues' requests together as can be in flight.
    let in_flight = request.concurrency.min(request.n.unwrap_or(members).max(1));
    let backend = request.backend.clone().for_concurrency(in_flight);
    // One backend per distinct spec, shared by every dialogue. A role's own model wins.
    let default_model =
        request.model.clone().or(scenario.default_model.clone()).unwrap_or_else(|| "local".to_string());
    let mut opened = OpenedModels::default();
    let mut models = Vec::new();
    for role in &scenario.roles {
        let spec = role.model.clone().unwrap_or_else(|| default_model.clone());
        let model = opened.open(&spec, &backend).await?;
        models.push(RoleModel { name: spec, model });
    }
    let mut options = request.options;
    options.extractors = opened.extractors(&scenario, &backend).await?;

    let out_dir =
        request.out.unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", scenario.name, request.seed)));
    let config = RunConfig {
        n: request.n,
        seed: request.seed,
        concurrency: request.concurrency,
        out_dir,
        resume: request.resume,
        progress: RunProgress::silent(),
    };
    Ok(PreparedRun {
        scenario: Arc::new(scenario),
        population,
        models,
        config,
        options,
        cycle_note,
        notes: opened.notes,
    })
}

/// Backends opened so far, by spec, and what their checks had to say.
#[derive(Default)]
pub struct OpenedModels {
    models: HashMap<String, SharedModel>,
    /// Notes from the checks of server backends.
    pub notes: Vec<String>,
}

impl OpenedModels {
    /// The backend of `spec`, opened (and a server checked) the first time it is asked for.
    pub async fn open(&mut self, spec: &str, backend: &BackendOptions) -> Result<SharedModel, LaunchError> {
        if let Some(m) = self.models.get(spec) {
            return Ok(m.clone());
        }
        let (model, note) = open_checked(spec, backend).await?;
        self.notes.extend(note);
        self.models.insert(spec.to_string(), model.clone());
        Ok(model)
    }

    /// The models of `scenario`'s `stated_model`s (reusing those already open).
    pub async fn extractors(
        &mut self,
        scenario: &Scenario,
        backend: &BackendOptions,
    ) -> Result<Extractors, LaunchError> {
        let mut out = HashMap::new();
        for spec in scenario.stated_models() {
            let model = self.open(&spec, backend).await?;
            out.insert(spec, model);
        }
        Ok(Extractors(Arc::new(out)))
    }
}

/// Opens one backend per spec of `specs` (each server checked first), sized for
/// `concurrent` requests; returns them by spec, with the notes worth showing.
pub async fn open_models(
    specs: impl IntoIterator<Item = String>,
    backend: &BackendOptions,
    concurrent: usize,
) -> Result<(HashMap<String, SharedModel>, Vec<String>), LaunchError> {
    let options = backend.clone().for_concurrency(concurrent);
    let mut models = HashMap::new();
    let mut notes = Vec::new();
    for spec in specs {
        let (model, note) = open_checked(&spec, &options).await?;
        notes.extend(note);
        models.insert(spec, model);
    }
    Ok((models, notes))
}

/// Parses and opens a model spec; a server backend is checked first (fail fast), and what
/// the check notes without failing comes back beside the model.
pub async fn open_checked(
    spec: &str,
    backend: &BackendOptions,
) -> Result<(SharedModel, Option<String>), LaunchError> {
    let parsed = ModelSpec::parse(spec)?;
    let mut note = None;
    if let ModelSpec::OpenAi { model, base_url } = &parsed {
        let config = openai_config(model, base_url.as_deref(), backend);
        note = crate::backend::preflight::check(&config).await?;
    }
    Ok((open_model(&parsed, backend).await?, note))
}
