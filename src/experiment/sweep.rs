//! Sweeps: one scenario and population run over several settings of one role, with common
//! random numbers: every cell uses the same experiment seed, so dialogue i plays the same
//! persona with the same dialogue seed in every cell and differences between cells come from
//! the settings alone.
//!
//! The cells are either a grid (method × k × selection × tau × model) or a list of explicit
//! arms, since a protocol's arms are rarely a cartesian product (direct, sequence with k = 5,
//! VS with k = 5 and weighted selection, VS with a model-decided k and uniform selection).
//!
//! Each cell is an ordinary run directory under the sweep's output directory; a combined
//! table of outcome means, missing outcomes and failures per cell is written as
//! `summary.csv` and `summary.md`. [`evaluate_sweep`] then evaluates every cell against the
//! human reference of exactly the people it simulated and writes one comparison report
//! (`report.md`, `report.html`) with a column per cell.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::budget::{Budget, Prices, Spend};
use super::outcomes::outcome_columns;
use super::population::{Population, PopulationError};
use super::runner::{run_experiment_with, RoleModel, RunConfig, RunError, RunOptions, RunSummary};
use super::transcript::{for_each_event, TranscriptError};
use crate::backend::{SharedModel, Usage};
use crate::data::persuasionforgood::Split;
use crate::dialogue::Event;
use crate::eval::embed::Embedder;
use crate::eval::{
    evaluate, write_metrics, EvalError, EvalOptions, Evaluation, HumanError, HumanReference, RunData,
};
use crate::report::{write_comparison, write_run_report, Comparison, ReportError, Written};
use crate::scenario::{load_scenario, parse_k, Scenario, ScenarioError, DEFAULT_K_MAX};
use crate::vs::{KSpec, Method, Selection};

/// The grid: an empty axis keeps the scenario's setting.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Grid {
    pub method: Vec<Method>,
    pub k: Vec<KSpec>,
    pub selection: Vec<Selection>,
    /// The paper's τ, stated in the prompt; `None` means no τ.
    pub tau: Vec<Option<f64>>,
    /// The post-hoc probability floor; `None` means none.
    pub min_prob: Vec<Option<f64>>,
    pub model: Vec<String>,
}

/// One explicitly listed cell; a setting left out keeps the scenario's.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Arm {
    /// Names the cell's directory and report column (default: its settings).
    pub name: Option<String>,
    pub method: Option<Method>,
    pub k: Option<KSpec>,
    pub selection: Option<Selection>,
    /// The paper's τ, stated in the prompt; `Some(None)` means no τ.
    pub tau: Option<Option<f64>>,
    /// The post-hoc probability floor; `Some(None)` means none.
    pub min_prob: Option<Option<f64>>,
    pub model: Option<String>,
}

/// A validated sweep file.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub file: PathBuf,
    pub scenario: Scenario,
    /// Population spec (default: the scenario's, else `personas`).
    pub population: String,
    /// The split of a data population (`pfg:`); `None` takes the default (`test`).
    pub split: Option<Split>,
    /// Human reference data (`pfg:DIR`) as given, or `none`; see [`Sweep::human_spec`].
    pub human: Option<String>,
    /// The role whose settings vary.
    pub role: String,
    pub n: Option<usize>,
    pub seed: u64,
    pub concurrency: usize,
    pub out: PathBuf,
    /// Model for roles without their own (as `--model`).
    pub model: Option<String>,
    /// Candidates kept at least by a `min_prob` floor.
    pub min_keep: usize,
    pub grid: Grid,
    /// Explicit cells; when present they replace the grid (a file has one or the other).
    pub arms: Vec<Arm>,
    /// A cap on the whole sweep.
    pub budget: Budget,
    pub prices: Prices,
}

/// One cell of the grid; `None` axes keep the scenario's setting.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cell {
    pub index: usize,
    /// Directory name: the index and the varied values.
    pub name: String,
    pub method: Option<Method>,
    pub k: Option<KSpec>,
    pub selection: Option<Selection>,
    pub tau: Option<Option<f64>>,
    pub min_prob: Option<Option<f64>>,
    pub model: Option<String>,
}

/// Why a sweep cannot be read or run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", file.display())]
    Syntax { file: PathBuf, reason: String },
    #[error("{}: field `{field}`: {reason}", file.display())]
    Invalid { file: PathBuf, field: String, reason: String },
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Population(#[from] PopulationError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    #[error("no backend was opened for model `{0}`")]
    MissingModel(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    scenario: String,
    population: Option<String>,
    split: Option<String>,
    human: Option<String>,
    role: String,
    n: Option<usize>,
    seed: Option<u64>,
    concurrency: Option<usize>,
    out: Option<String>,
    model: Option<String>,
    /// Refused: the tau axis is the prompt threshold, `min_prob` the floor.
    tau_mode: Option<String>,
    min_keep: Option<usize>,
    #[serde(default)]
    grid: RawGrid,
    #[serde(default)]
    arms: Vec<RawArm>,
    #[serde(default)]
    budget: RawBudget,
    prices: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGrid {
    #[serde(default)]
    method: Vec<String>,
    #[serde(default)]
    k: Vec<toml::Value>,
    #[serde(default)]
    selection: Vec<String>,
    #[serde(default)]
    tau: Vec<toml::Value>,
    #[serde(default)]
    min_prob: Vec<toml::Value>,
    #[serde(default)]
    model: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArm {
    name: Option<String>,
    method: Option<String>,
    k: Option<toml::Value>,
    selection: Option<String>,
    tau: Option<toml::Value>,
    min_prob: Option<toml::Value>,
    model: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_tokens_total: Option<u64>,
    max_cost: Option<f64>,
}

/// Reads and validates a sweep file; relative paths in it are relative to the file.
pub fn load_sweep(path: &Path) -> Result<Sweep, SweepError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| SweepError::Io { path: path.to_path_buf(), source })?;
    parse_sweep(path, &text)
}

/// Validates sweep text; `path` names it in errors and anchors relative paths.
pub fn parse_sweep(path: &Path, text: &str) -> Result<Sweep, SweepError> {
    let file = path.to_path_buf();
    let raw: RawSweep = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1);
        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        SweepError::Syntax { file: file.clone(), reason: format!("{at}{}", e.message().trim()) }
    })?;
    let invalid =
        |field: &str, reason: String| SweepError::Invalid { file: file.clone(), field: field.into(), reason };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let scenario = load_scenario(&base.join(&raw.scenario))?;
    if scenario.role_index(&raw.role).is_none() {
        let ids: Vec<&str> = scenario.roles.iter().map(|r| r.id.as_str()).collect();
        return Err(invalid(
            "role",
            format!("the scenario has no role `{}`; roles: {}", raw.role, ids.join(", ")),
        ));
    }
    let population = match raw.population {
        Some(p) => relative_spec(&base, &p),
        None => {
            scenario.population.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "personas".into())
        }
    };
    let split = raw
        .split
        .as_deref()
        .map(str::parse::<Split>)
        .transpose()
        .map_err(|e| invalid("split", e.to_string()))?;
    let human = raw.human.as_deref().map(|h| match h.trim() {
        none if none.eq_ignore_ascii_case("none") => "none".to_string(),
        spec => relative_spec(&base, spec),
    });
    let mut grid = Grid::default();
    for m in &raw.grid.method {
        grid.method.push(m.parse::<Method>().map_err(|e| invalid("grid.method", e.to_string()))?);
    }
    for k in &raw.grid.k {
        grid.k.push(k_value(k).map_err(|e| invalid("grid.k", e))?);
    }
    for s in &raw.grid.selection {
        grid.selection.push(s.parse::<Selection>().map_err(|e| invalid("grid.selection", e.to_string()))?);
    }
    for t in &raw.grid.tau {
        grid.tau.push(tau_value(t).map_err(|e| invalid("grid.tau", e))?);
    }
    for t in &raw.grid.min_prob {
        grid.min_prob.push(tau_value(t).map_err(|e| invalid("grid.min_prob", e))?);
    }
    for m in &raw.grid.model {
        model_value(m).map_err(|e| invalid("grid.model", e))?;
        grid.model.push(m.clone());
    }
    if !raw.arms.is_empty() && grid != Grid::default() {
        return Err(invalid(
            "arms",
            "a sweep lists its cells either as [[arms]] or as a [grid], not both; move the grid's \
             settings into the arms"
                .into(),
        ));
    }
    let mut arms: Vec<Arm> = Vec::with_capacity(raw.arms.len());
    for (i, a) in raw.arms.iter().enumerate() {
        let field = |name: &str| format!("arms[{i}].{name}");
        let name = match a.name.as_deref().map(str::trim) {
            Some("") => return Err(invalid(&field("name"), "must not be empty".into())),
            Some(n) => {
                if let Some(j) =
                    arms.iter().position(|b| b.name.as_deref().map(sanitize) == Some(sanitize(n)))
                {
                    return Err(invalid(&field("name"), format!("`{n}` names arms[{j}] already")));
                }
                Some(n.to_string())
            }
            None => None,
        };
        let method = a
            .method
            .as_deref()
            .map(|m| m.parse::<Method>().map_err(|e| invalid(&field("method"), e.to_string())))
            .transpose()?;
        let k = a.k.as_ref().map(|k| k_value(k).map_err(|e| invalid(&field("k"), e))).transpose()?;
        let selection = a
            .selection
            .as_deref()
            .map(|s| s.parse::<Selection>().map_err(|e| invalid(&field("selection"), e.to_string())))
            .transpose()?;
        let tau = a.tau.as_ref().map(|t| tau_value(t).map_err(|e| invalid(&field("tau"), e))).transpose()?;
        let min_prob = a
            .min_prob
            .as_ref()
            .map(|t| tau_value(t).map_err(|e| invalid(&field("min_prob"), e)))
            .transpose()?;
        if let Some(m) = &a.model {
            model_value(m).map_err(|e| invalid(&field("model"), e))?;
        }
        arms.push(Arm { name, method, k, selection, tau, min_prob, model: a.model.clone() });
    }
    if raw.tau_mode.is_some() {
        return Err(invalid(
            "tau_mode",
            "the tau axis is now always the paper's τ, the threshold stated in the prompt; a post-hoc \
             floor on probabilities has its own axis, `min_prob`: remove `tau_mode`"
                .into(),
        ));
    }
    let concurrency = raw.concurrency.unwrap_or(4);
    if concurrency == 0 {
        return Err(invalid("concurrency", "must be at least 1".into()));
    }
    if raw.n == Some(0) {
        return Err(invalid("n", "must be at least 1".into()));
    }
    let min_keep = raw.min_keep.unwrap_or(1);
    if min_keep == 0 {
        return Err(invalid("min_keep", "must be at least 1".into()));
    }
    if let Some(c) = raw.budget.max_cost {
        if !(c.is_finite() && c >= 0.0) {
            return Err(invalid(
                "budget.max_cost",
                format!("expected a non-negative number of dollars, got {c}"),
            ));
        }
    }
    let prices = match &raw.prices {
        Some(t) => Prices::from_toml_table(t, &file.display().to_string())
            .map_err(|e| invalid("prices", e.to_string()))?,
        None => Prices::default(),
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("sweep").to_string();
    let sweep = Sweep {
        file,
        scenario,
        population,
        split,
        human,
        role: raw.role,
        n: raw.n,
        seed: raw.seed.unwrap_or(0),
        concurrency,
        out: raw.out.map(PathBuf::from).unwrap_or_else(|| PathBuf::from("runs").join(stem)),
        model: raw.model,
        min_keep,
        grid,
        arms,
        budget: Budget { max_tokens_total: raw.budget.max_tokens_total, max_cost_usd: raw.budget.max_cost },
        prices,
    };
    // Every cell must be a combination that makes sense for the swept role.
    for cell in sweep.cells() {
        let scenario = sweep.cell_scenario(&cell);
        if let Some(role) = scenario.role_index(&sweep.role).map(|i| &scenario.roles[i]) {
            role.check().map_err(|(field, reason)| {
                let at = if sweep.arms.is_empty() {
                    format!("grid.{field}")
                } else {
                    format!("arms[{}].{field}", cell.index)
                };
                SweepError::Invalid {
                    file: sweep.file.clone(),
                    field: at,
                    reason: format!("cell `{}`: {reason}", cell.name),
                }
            })?;
        }
    }
    Ok(sweep)
}

/// A data spec (`pfg:PATH`) or a directory, relative to the sweep file's directory.
fn relative_spec(base: &Path, spec: &str) -> String {
    match spec.strip_prefix("pfg:").or_else(|| spec.strip_prefix("p4g:")) {
        Some(rest) => format!("pfg:{}", base.join(rest).display()),
        None => base.join(spec).display().to_string(),
    }
}

/// A `k` value: an integer or `"model-decided"`.
fn k_value(k: &toml::Value) -> Result<KSpec, String> {
    let text = match k {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::String(s) => s.clone(),
        other => return Err(format!("expected an integer or \"model-decided\", got {other}")),
    };
    parse_k(&text, DEFAULT_K_MAX)
}

/// A `tau` or `min_prob` value: a number in [0, 1], or `"none"` for none.
fn tau_value(t: &toml::Value) -> Result<Option<f64>, String> {
    let tau = match t {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::String(s) if s.eq_ignore_ascii_case("none") => None,
        other => return Err(format!("expected a number in [0, 1] or \"none\", got {other}")),
    };
    match tau {
        Some(x) if !(0.0..=1.0).contains(&x) => Err(format!("expected a number in [0, 1], got {x}")),
        _ => Ok(tau),
    }
}

fn model_value(m: &str) -> Result<(), String> {
    crate::backend::spec::ModelSpec::parse(m).map(|_| ()).map_err(|e| e.to_string())
}

/// Keeps letters, digits, `.` and `-`; anything else becomes `_`.
fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

/// A model spec's short name for directory names (`openai:org/m@url` → `org_m`).
fn model_label(spec: &str) -> String {
    let name = spec.split_once(':').map_or(spec, |(_, rest)| rest);
    let name = name.rsplit_once('@').map_or(name, |(m, _)| m);
    sanitize(name)
}

fn k_label(k: KSpec) -> String {
    match k {
        KSpec::Fixed { k } => format!("k{k}"),
        KSpec::ModelDecided { .. } => "kauto".into(),
    }
}

fn tau_label(t: Option<f64>) -> String {
    t.map_or_else(|| "taunone".into(), |t| format!("tau{t}"))
}

fn min_prob_label(t: Option<f64>) -> String {
    t.map_or_else(|| "minpnone".into(), |t| format!("minp{t}"))
}

/// Every value of an axis, or a single "keep the scenario's" when it is empty.
fn axis<T: Clone>(values: &[T]) -> Vec<Option<T>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.iter().cloned().map(Some).collect()
    }
}

impl Cell {
    /// The cell of `arm`, named by its index and the arm's name, else its settings.
    fn new(index: usize, arm: &Arm) -> Cell {
        let mut parts = vec![format!("{index:03}")];
        match &arm.name {
            Some(n) => parts.push(n.clone()),
            None => {
                parts.extend(arm.method.map(|m| m.to_string()));
                parts.extend(arm.k.map(k_label));
                parts.extend(arm.selection.map(|s| s.to_string()));
                parts.extend(arm.tau.map(tau_label));
                parts.extend(arm.min_prob.map(min_prob_label));
                parts.extend(arm.model.as_deref().map(model_label));
            }
        }
        Cell {
            index,
            name: sanitize(&parts.join("-")),
            method: arm.method,
            k: arm.k,
            selection: arm.selection,
            tau: arm.tau,
            min_prob: arm.min_prob,
            model: arm.model.clone(),
        }
    }
}

impl Sweep {
    /// The cells: the arms in file order, else the grid in order method, k, selection,
    /// tau, model (the last varies fastest).
    pub fn cells(&self) -> Vec<Cell> {
        if !self.arms.is_empty() {
            return self.arms.iter().enumerate().map(|(i, a)| Cell::new(i, a)).collect();
        }
        let g = &self.grid;
        let mut cells = Vec::new();
        for method in axis(&g.method) {
            for k in axis(&g.k) {
                for selection in axis(&g.selection) {
                    for tau in axis(&g.tau) {
                        for min_prob in axis(&g.min_prob) {
                            for model in axis(&g.model) {
                                let arm = Arm {
                                    name: None,
                                    method,
                                    k,
                                    selection,
                                    tau,
                                    min_prob,
                                    model: model.clone(),
                                };
                                cells.push(Cell::new(cells.len(), &arm));
                            }
                        }
                    }
                }
            }
        }
        cells
    }

    /// The human reference the cells are evaluated against: the file's `human` (`none`:
    /// no reference), else the population's own data when it is drawn from
    /// PersuasionForGood (the simulated people are then the reference people), else none.
    pub fn human_spec(&self) -> Option<String> {
        match self.human.as_deref() {
            Some("none") => None,
            Some(spec) => Some(spec.to_string()),
            None => ["pfg:", "p4g:"]
                .iter()
                .any(|p| self.population.starts_with(p))
                .then(|| self.population.clone()),
        }
    }

    /// The scenario with `cell`'s settings applied to the swept role.
    pub fn cell_scenario(&self, cell: &Cell) -> Scenario {
        let mut scenario = self.scenario.clone();
        if let Some(i) = scenario.role_index(&self.role) {
            let role = &mut scenario.roles[i];
            if let Some(m) = cell.method {
                role.set_method(m);
            }
            if let Some(k) = cell.k {
                role.k = k;
            }
            if let Some(s) = cell.selection {
                role.rule.selection = s;
            }
            if let Some(t) = cell.tau {
                role.tau = t;
            }
            if let Some(p) = cell.min_prob {
                role.rule.min_prob = p;
                role.rule.min_keep = self.min_keep;
            }
            if let Some(m) = &cell.model {
                role.model = Some(m.clone());
            }
        }
        scenario
    }

    /// The model spec of each role of `scenario` (a cell's): the role's own, else the
    /// sweep's `model`, else the scenario's default, else `local`.
    pub fn role_models(&self, scenario: &Scenario) -> Vec<String> {
        scenario
            .roles
            .iter()
            .map(|r| {
                r.model
                    .clone()
                    .or_else(|| self.model.clone())
                    .or_else(|| scenario.default_model.clone())
                    .unwrap_or_else(|| "local".into())
            })
            .collect()
    }

    /// Every model spec the sweep needs, to open each backend once.
    pub fn model_specs(&self) -> BTreeSet<String> {
        let mut specs: BTreeSet<String> =
            self.cells().iter().flat_map(|c| self.role_models(&self.cell_scenario(c))).collect();
        specs.extend(self.scenario.stated_models());
        specs
    }
}

/// Outcome statistics of one run directory.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RunStats {
    pub dialogues: usize,
    pub completed: usize,
    pub failed: usize,
    /// Per outcome column (`role.name`).
    pub outcomes: BTreeMap<String, OutcomeStats>,
    /// Tokens recorded in the completed dialogues (cache hits included).
    pub usage: Usage,
    /// Their cost at the given prices, when every model used has one.
    pub cost_usd: Option<f64>,
}

/// One outcome's values across a run's completed dialogues.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OutcomeStats {
    /// Number of numeric values.
    pub n: usize,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub missing: usize,
    /// Counts of categorical values.
    pub categories: BTreeMap<String, usize>,
}

/// Summarises a run directory's transcript: counts, outcome means and categories, missing
/// outcomes, tokens and cost.
pub fn summarize_run(dir: &Path, columns: &[String], prices: &Prices) -> Result<RunStats, TranscriptError> {
    /// The latest attempt of one dialogue.
    #[derive(Default)]
    struct Attempt {
        models: HashMap<String, String>,
        usage: Usage,
        cost: Option<f64>,
        outcomes: Vec<(String, Option<Value>)>,
        ended: bool,
    }
    impl Attempt {
        fn charge(&mut self, role: &str, usage: Usage, prices: &Prices) {
            self.usage += usage;
            let price = self.models.get(role).and_then(|m| prices.lookup(m));
            self.cost = match (self.cost, price) {
                (Some(c), Some(p)) => Some(c + p.cost(usage)),
                (Some(c), None) if usage.total() == 0 => Some(c),
                _ => None,
            };
        }
    }

    let mut stats = RunStats::default();
    for c in columns {
        stats.outcomes.insert(c.clone(), OutcomeStats::default());
    }
    let path = dir.join("transcripts.jsonl");
    if !path.exists() {
        return Ok(stats);
    }
    // Read line by line, keeping one small record per dialogue.
    let mut attempts: BTreeMap<String, Attempt> = BTreeMap::new();
    for_each_event(&path, |e| match e {
        Event::Begin(b) => {
            let models = b.agents.into_iter().map(|a| (a.role, a.model)).collect();
            attempts.insert(b.dialogue, Attempt { models, cost: Some(0.0), ..Attempt::default() });
        }
        Event::Turn(t) => {
            if let Some(a) = attempts.get_mut(&t.dialogue) {
                a.charge(&t.speaker, t.usage, prices);
            }
        }
        Event::Outcome(o) => {
            if let Some(a) = attempts.get_mut(&o.dialogue) {
                a.charge(&o.role, o.usage, prices);
                // The stated measure has its own column, as in outcomes.csv.
                let suffix = if o.measure.is_answer() { "" } else { ".stated" };
                a.outcomes.push((format!("{}.{}{suffix}", o.role, o.name), o.value));
            }
        }
        Event::End(end) => {
            if let Some(a) = attempts.get_mut(&end.dialogue) {
                a.ended = true;
            }
        }
        Event::Error(_) => {}
    })?;

    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut cost = Some(0.0);
    for attempt in attempts.into_values() {
        stats.dialogues += 1;
        if !attempt.ended {
            stats.failed += 1;
            continue;
        }
        stats.completed += 1;
        stats.usage += attempt.usage;
        cost = cost.zip(attempt.cost).map(|(a, b)| a + b);
        for (key, value) in attempt.outcomes {
            let entry = stats.outcomes.entry(key.clone()).or_default();
            match value {
                Some(Value::Number(x)) => values.entry(key).or_default().extend(x.as_f64()),
                Some(Value::String(s)) => *entry.categories.entry(s).or_default() += 1,
                Some(other) => *entry.categories.entry(other.to_string()).or_default() += 1,
                None => entry.missing += 1,
            }
        }
    }
    for (key, xs) in values {
        let entry = stats.outcomes.entry(key).or_default();
        entry.n = xs.len();
        if !xs.is_empty() {
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            entry.mean = Some(mean);
            if xs.len() > 1 {
                let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
                entry.sd = Some(var.sqrt());
            }
        }
    }
    stats.cost_usd = if prices.is_empty() { None } else { cost };
    Ok(stats)
}

/// How a sweep is run.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// Continue cells already (partly) run.
    pub resume: bool,
    pub progress: bool,
    /// Overrides the sweep file's `out`.
    pub out: Option<PathBuf>,
    /// Extra prices (e.g. from the command line), over the file's.
    pub prices: Prices,
    /// Overrides the file's budget where set.
    pub budget: Budget,
}

/// One cell's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CellResult {
    pub cell: Cell,
    pub dir: PathBuf,
    /// `None` when the cell was not run (the sweep's budget was spent first).
    pub summary: Option<RunSummary>,
    pub stats: RunStats,
}

/// What a sweep did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweepSummary {
    pub out_dir: PathBuf,
    pub cells: Vec<CellResult>,
    pub spend: Spend,
    pub budget_stop: Option<String>,
    pub interrupted: bool,
}

/// Runs every cell of `sweep` in order, each as a run directory under the output directory,
/// with backends from `models` (keyed by model spec; see [`Sweep::model_specs`]). Writes
/// `sweep.json`, `summary.csv` and `summary.md`.
pub async fn run_sweep(
    sweep: &Sweep,
    models: &HashMap<String, SharedModel>,
    options: &SweepOptions,
) -> Result<SweepSummary, SweepError> {
    let out = options.out.clone().unwrap_or_else(|| sweep.out.clone());
    std::fs::create_dir_all(&out).map_err(|source| SweepError::Io { path: out.clone(), source })?;
    let population = Population::load_split(&sweep.population, sweep.split)?;
    let mut prices = sweep.prices.clone();
    prices.extend(options.prices.clone());
    let mut budget = sweep.budget;
    if options.budget.max_tokens_total.is_some() {
        budget.max_tokens_total = options.budget.max_tokens_total;
    }
    if options.budget.max_cost_usd.is_some() {
        budget.max_cost_usd = options.budget.max_cost_usd;
    }
    let cells = sweep.cells();
    let manifest = json!({
        "vsim_version": env!("CARGO_PKG_VERSION"),
        "sweep_file": sweep.file,
        "scenario": sweep.scenario.source,
        "population": sweep.population,
        "split": sweep.split,
        "population_reference": population.reference,
        "human": sweep.human_spec(),
        "role": sweep.role,
        "n": sweep.n,
        "seed": sweep.seed,
        "common_random_numbers": "every cell uses the same seed: dialogue i has the same persona and seed in every cell",
        "min_keep": sweep.min_keep,
        "grid": sweep.grid,
        "arms": sweep.arms,
        "budget": budget,
        "prices": prices,
        "cells": cells,
    });
    let manifest_path = out.join("sweep.json");
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap_or_default())
        .map_err(|source| SweepError::Io { path: manifest_path, source })?;

    let columns = outcome_columns(&sweep.scenario);
    let mut results = Vec::new();
    let mut total = Spend::default();
    let (mut budget_stop, mut interrupted) = (None, false);
    for cell in cells {
        let dir = out.join(&cell.name);
        let scenario = sweep.cell_scenario(&cell);
        let summary = if budget_stop.is_some() || interrupted {
            None
        } else {
            let mut role_models = Vec::new();
            for spec in sweep.role_models(&scenario) {
                let model =
                    models.get(&spec).cloned().ok_or_else(|| SweepError::MissingModel(spec.clone()))?;
                role_models.push(RoleModel { name: spec, model });
            }
            if options.progress {
                eprintln!("cell {}: {}", cell.index, cell.name);
            }
            let config = RunConfig {
                n: sweep.n,
                seed: sweep.seed,
                concurrency: sweep.concurrency,
                out_dir: dir.clone(),
                resume: options.resume,
                progress: options.progress,
            };
            let left = budget.minus(&total);
            let extractors = crate::dialogue::run::Extractors(Arc::new(
                scenario
                    .stated_models()
                    .into_iter()
                    .filter_map(|spec| models.get(&spec).map(|m| (spec, m.clone())))
                    .collect(),
            ));
            let run_options = RunOptions { shard: None, budget: left, prices: prices.clone(), extractors };
            let summary =
                run_experiment_with(Arc::new(scenario), &population, &role_models, &config, &run_options)
                    .await?;
            total.usage += summary.spend.usage;
            total.calls += summary.spend.calls;
            total.cached_calls += summary.spend.cached_calls;
            if let Some(c) = summary.spend.cost_usd {
                *total.cost_usd.get_or_insert(0.0) += c;
            }
            budget_stop = summary.budget_stop.clone();
            interrupted = summary.interrupted;
            Some(summary)
        };
        let stats = summarize_run(&dir, &columns, &prices)?;
        results.push(CellResult { cell, dir, summary, stats });
    }
    write_summary_tables(&out, &columns, &results)?;
    Ok(SweepSummary { out_dir: out, cells: results, spend: total, budget_stop, interrupted })
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

/// The combined table: one row per cell.
fn summary_rows(columns: &[String], results: &[CellResult]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header: Vec<String> =
        ["cell", "method", "k", "selection", "tau", "min_prob", "model", "dialogues", "completed", "failed"]
            .map(String::from)
            .to_vec();
    for c in columns {
        header.extend([
            format!("{c}.mean"),
            format!("{c}.sd"),
            format!("{c}.categories"),
            format!("{c}.missing"),
        ]);
    }
    header.extend(["tokens".to_string(), "cost_usd".to_string()]);
    let rows = results
        .iter()
        .map(|r| {
            let c = &r.cell;
            let mut row = vec![
                c.name.clone(),
                c.method.map(|m| m.to_string()).unwrap_or_default(),
                c.k.map(k_label).unwrap_or_default(),
                c.selection.map(|s| s.to_string()).unwrap_or_default(),
                c.tau.map(|t| t.map(|x| x.to_string()).unwrap_or_else(|| "none".into())).unwrap_or_default(),
                c.min_prob
                    .map(|t| t.map(|x| x.to_string()).unwrap_or_else(|| "none".into()))
                    .unwrap_or_default(),
                c.model.clone().unwrap_or_default(),
                r.stats.dialogues.to_string(),
                r.stats.completed.to_string(),
                r.stats.failed.to_string(),
            ];
            for col in columns {
                let o = r.stats.outcomes.get(col).cloned().unwrap_or_default();
                let cats = o.categories.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ");
                row.extend([fmt_opt(o.mean, 4), fmt_opt(o.sd, 4), cats, o.missing.to_string()]);
            }
            row.extend([r.stats.usage.total().to_string(), fmt_opt(r.stats.cost_usd, 6)]);
            row
        })
        .collect();
    (header, rows)
}

fn write_summary_tables(out: &Path, columns: &[String], results: &[CellResult]) -> Result<(), SweepError> {
    let (header, rows) = summary_rows(columns, results);
    let csv_path = out.join("summary.csv");
    let csv_err = |e: csv::Error| SweepError::Io { path: csv_path.clone(), source: std::io::Error::other(e) };
    let mut w = csv::Writer::from_path(&csv_path).map_err(csv_err)?;
    w.write_record(&header).map_err(csv_err)?;
    for row in &rows {
        w.write_record(row).map_err(csv_err)?;
    }
    w.flush().map_err(|source| SweepError::Io { path: csv_path.clone(), source })?;

    let cell = |s: &str| s.replace('|', "\\|");
    let mut md = String::from("# Sweep summary\n\n");
    md.push_str(&format!("| {} |\n", header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
    md.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
    for row in &rows {
        md.push_str(&format!("| {} |\n", row.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | ")));
    }
    let md_path = out.join("summary.md");
    std::fs::write(&md_path, md).map_err(|source| SweepError::Io { path: md_path, source })
}

/// Why one cell could not be evaluated; the other cells are evaluated all the same.
#[derive(Debug, thiserror::Error)]
pub enum CellEvalError {
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Human(#[from] HumanError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// What became of one cell's evaluation.
#[derive(Debug)]
pub enum CellEvalStatus {
    /// `metrics.json`, `report.md` and `report.html` are in the cell's directory.
    Evaluated {
        metrics: PathBuf,
        report: Written,
        /// Why semantic diversity is missing although an embedder was given.
        semantic_missing: Option<String>,
    },
    /// The cell's directory holds no transcript (e.g. the budget was spent first).
    NotRun,
    Failed(CellEvalError),
}

/// One cell's evaluation.
#[derive(Debug)]
pub struct CellEvaluation {
    pub cell: Cell,
    pub dir: PathBuf,
    pub status: CellEvalStatus,
}

/// What evaluating a sweep did.
#[derive(Debug)]
pub struct SweepEvaluation {
    pub cells: Vec<CellEvaluation>,
    /// The human reference the cells were compared with, if any.
    pub human: Option<String>,
    /// The comparison report (`OUT/report.md`, `OUT/report.html`), when any cell was
    /// evaluated.
    pub comparison: Option<Written>,
    /// The comparison's caveats, e.g. cells compared with different references.
    pub notes: Vec<String>,
}

impl SweepEvaluation {
    /// Cells whose evaluation failed.
    pub fn failed(&self) -> impl Iterator<Item = (&CellEvaluation, &CellEvalError)> {
        self.cells.iter().filter_map(|c| match &c.status {
            CellEvalStatus::Failed(e) => Some((c, e)),
            _ => None,
        })
    }
}

/// How the cells of a sweep are evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepEvalOptions {
    /// The same options as a single run's evaluation; the seed seeds the bootstrap only.
    pub eval: EvalOptions,
    /// Dialogues shown in each cell's dialogue browser.
    pub max_dialogues: usize,
}

impl Default for SweepEvalOptions {
    fn default() -> Self {
        Self { eval: EvalOptions::default(), max_dialogues: crate::report::DEFAULT_MAX_DIALOGUES }
    }
}

/// Evaluates every cell under `out_dir` as `vsim eval` does a run: against `human` narrowed
/// to exactly the people the cell simulated (in the split the cell recorded), writing
/// `metrics.json`, `report.md` and `report.html` into the cell's directory. Then writes one
/// comparison report of every evaluated cell into `out_dir` (the same report as
/// `vsim report`). A cell that cannot be evaluated (say, every dialogue failed) is
/// recorded as failed and left out of the comparison; only a comparison that cannot be
/// written is an error.
pub async fn evaluate_sweep(
    out_dir: &Path,
    cells: &[Cell],
    human: Option<&str>,
    options: &SweepEvalOptions,
    embedder: Option<&dyn Embedder>,
) -> Result<SweepEvaluation, ReportError> {
    async fn one(
        dir: &Path,
        human: Option<&str>,
        options: &SweepEvalOptions,
        embedder: Option<&dyn Embedder>,
    ) -> Result<(Evaluation, CellEvalStatus), CellEvalError> {
        let run = RunData::load(dir)?;
        let reference = human.map(|spec| HumanReference::for_run(spec, &run, None, false)).transpose()?;
        let evaluation = evaluate(&run, reference.as_ref(), &options.eval, embedder).await?;
        let metrics = write_metrics(dir, &evaluation)?;
        let report = write_run_report(dir, &evaluation, Some(&run), options.max_dialogues)?;
        let semantic_missing = (embedder.is_some() && !evaluation.semantic.computed)
            .then(|| evaluation.semantic.reason.clone().unwrap_or_else(|| "not computed".into()));
        Ok((evaluation, CellEvalStatus::Evaluated { metrics, report, semantic_missing }))
    }

    let mut evaluations = Vec::new();
    let mut results = Vec::with_capacity(cells.len());
    for cell in cells {
        let dir = out_dir.join(&cell.name);
        let status = if !dir.join("transcripts.jsonl").is_file() {
            CellEvalStatus::NotRun
        } else {
            match one(&dir, human, options, embedder).await {
                Ok((evaluation, status)) => {
                    evaluations.push(evaluation);
                    status
                }
                Err(e) => CellEvalStatus::Failed(e),
            }
        };
        results.push(CellEvaluation { cell: cell.clone(), dir, status });
    }
    let (comparison, notes) = if evaluations.is_empty() {
        (None, Vec::new())
    } else {
        let comparison = Comparison::new(evaluations)?;
        (Some(write_comparison(out_dir, &comparison)?), comparison.notes)
    };
    Ok(SweepEvaluation { cells: results, human: human.map(str::to_string), comparison, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_safe_directory_names() {
        assert_eq!(model_label("openai:Qwen/Qwen2.5-7B@http://h:8000/v1"), "Qwen_Qwen2.5-7B");
        assert_eq!(k_label(KSpec::ModelDecided { max: 10 }), "kauto");
        assert_eq!(tau_label(Some(0.1)), "tau0.1");
    }
}
