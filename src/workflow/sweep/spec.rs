//! The sweep file: its format, and reading and validating it into a [`Sweep`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::grid::sanitize;
use super::SweepError;
use crate::data::persuasionforgood::Split;
use crate::experiment::budget::{Budget, Prices};
use crate::scenario::{load_scenario, Scenario, DEFAULT_K_MAX};
use crate::vs::{KSpec, Method, Selection};

/// The longest arm name, in characters: it names a folder, and file systems refuse names of
/// more than 255 bytes.
pub(crate) const MAX_ARM_NAME: usize = 100;

/// The grid: an empty axis keeps the scenario's setting.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Grid {
    /// Methods of the varied role.
    pub method: Vec<Method>,
    /// Values of k.
    pub k: Vec<KSpec>,
    /// Selections.
    pub selection: Vec<Selection>,
    /// The paper's τ, stated in the prompt; `None` means no τ.
    pub tau: Vec<Option<f64>>,
    /// The post-hoc probability floor; `None` means none.
    pub min_prob: Vec<Option<f64>>,
    /// Model specs of the varied role.
    pub model: Vec<String>,
    /// Sampling temperatures of the varied role.
    pub temperature: Vec<f32>,
    /// Reply length caps (tokens) of the varied role.
    pub max_tokens: Vec<u32>,
    /// Named groups of persona attributes the role's prompt shows (`all`: every attribute).
    pub persona: Vec<String>,
    /// Named system prompts of the role.
    pub system: Vec<String>,
}

/// One explicitly listed cell; a setting left out keeps the scenario's.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Arm {
    /// Names the cell's directory and report column (default: its settings).
    pub name: Option<String>,
    /// The role's method.
    pub method: Option<Method>,
    /// The role's k.
    pub k: Option<KSpec>,
    /// The role's selection.
    pub selection: Option<Selection>,
    /// The paper's τ, stated in the prompt; `Some(None)` means no τ.
    pub tau: Option<Option<f64>>,
    /// The post-hoc probability floor; `Some(None)` means none.
    pub min_prob: Option<Option<f64>>,
    /// The role's model spec.
    pub model: Option<String>,
    /// The role's sampling temperature.
    pub temperature: Option<f32>,
    /// The role's reply length cap, in tokens.
    pub max_tokens: Option<u32>,
    /// The named group of persona attributes the role's prompt shows (`all`: every one).
    pub persona: Option<String>,
    /// The named system prompt of the role.
    pub system: Option<String>,
}

/// A validated sweep file.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The sweep file.
    pub file: PathBuf,
    /// The scenario every cell runs.
    pub scenario: Scenario,
    /// Population spec (default: the scenario's, else `personas`).
    pub population: String,
    /// The split of a data population (`pfg:`); `None` takes the default (`test`).
    pub split: Option<Split>,
    /// Human reference data (`pfg:DIR`) as given, or `none`; see [`Sweep::human_spec`].
    pub human: Option<String>,
    /// The role whose settings vary.
    pub role: String,
    /// Dialogues per cell (default: one per population member).
    pub n: Option<usize>,
    /// The experiment seed, shared by every cell.
    pub seed: u64,
    /// How many times each person is simulated in every cell (default 1).
    pub replicates: usize,
    /// Dialogues in flight at once.
    pub concurrency: usize,
    /// The output directory; each cell is a run directory under it.
    pub out: PathBuf,
    /// Model for roles without their own (as `--model`).
    pub model: Option<String>,
    /// Candidates kept at least by a `min_prob` floor.
    pub min_keep: usize,
    /// The grid; ignored when `arms` is given.
    pub grid: Grid,
    /// Explicit cells; when present they replace the grid (a file has one or the other).
    pub arms: Vec<Arm>,
    /// A tune file's baselines (empty for a sweep).
    pub baselines: Vec<Arm>,
    /// A tune file's `[tune]` table, as written (`None` for a sweep).
    pub tune: Option<toml::Value>,
    /// Groups of persona attributes by name, for the `persona` axis.
    pub persona_groups: std::collections::BTreeMap<String, Vec<String>>,
    /// System prompt templates by name, for the `system` axis.
    pub system_prompts: std::collections::BTreeMap<String, String>,
    /// A cap on the whole sweep.
    pub budget: Budget,
    /// Prices per model, for the cost cap and the summary.
    pub prices: Prices,
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
    replicates: Option<usize>,
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
    /// The models of roles the sweep does not vary, pinned across every cell.
    #[serde(default)]
    models: std::collections::BTreeMap<String, String>,
    /// A tune file's own settings (read by the tune module).
    tune: Option<toml::Value>,
    /// A tune file's baselines, run beside the chosen setting on the held-out people.
    #[serde(default)]
    baselines: Vec<RawArm>,
    /// Groups of persona attributes by name, for the `persona` axis.
    #[serde(default)]
    persona_groups: std::collections::BTreeMap<String, Vec<String>>,
    /// System prompt templates by name, for the `system` axis.
    #[serde(default)]
    system_prompts: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrid {
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
    #[serde(default)]
    temperature: Vec<f64>,
    #[serde(default)]
    max_tokens: Vec<i64>,
    #[serde(default)]
    persona: Vec<String>,
    #[serde(default)]
    system: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawArm {
    name: Option<String>,
    method: Option<String>,
    k: Option<toml::Value>,
    selection: Option<String>,
    tau: Option<toml::Value>,
    min_prob: Option<toml::Value>,
    model: Option<String>,
    temperature: Option<f64>,
    max_tokens: Option<i64>,
    persona: Option<String>,
    system: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    max_tokens_total: Option<u64>,
    max_cost: Option<f64>,
}

/// The candidate settings of a sweep or tune file: its grid, arms and baselines.
pub(crate) struct CellSpace {
    pub grid: Grid,
    pub arms: Vec<Arm>,
    pub baselines: Vec<Arm>,
}

/// Reads a file's `[grid]`, `[[arms]]` and `[[baselines]]`, resolving named persona groups and
/// system prompts; each error names its field.
// Long on purpose: reads every axis of the grid and every arm, each check a few lines that name its field.
pub(crate) fn parse_cell_space(
    raw_grid: &RawGrid,
    raw_arms: &[RawArm],
    raw_baselines: &[RawArm],
    persona_groups: &std::collections::BTreeMap<String, Vec<String>>,
    system_prompts: &std::collections::BTreeMap<String, String>,
    invalid: &dyn Fn(&str, String) -> SweepError,
) -> Result<CellSpace, SweepError> {
    let mut grid = Grid::default();
    for m in &raw_grid.method {
        grid.method.push(m.parse::<Method>().map_err(|e| invalid("grid.method", e.to_string()))?);
    }
    for k in &raw_grid.k {
        grid.k.push(k_value(k).map_err(|e| invalid("grid.k", e))?);
    }
    for s in &raw_grid.selection {
        grid.selection.push(s.parse::<Selection>().map_err(|e| invalid("grid.selection", e.to_string()))?);
    }
    for t in &raw_grid.tau {
        grid.tau.push(tau_value(t).map_err(|e| invalid("grid.tau", e))?);
    }
    for t in &raw_grid.min_prob {
        grid.min_prob.push(tau_value(t).map_err(|e| invalid("grid.min_prob", e))?);
    }
    for m in &raw_grid.model {
        model_value(m).map_err(|e| invalid("grid.model", e))?;
        grid.model.push(m.clone());
    }
    for t in &raw_grid.temperature {
        grid.temperature.push(temperature_value(*t).map_err(|e| invalid("grid.temperature", e))?);
    }
    for t in &raw_grid.max_tokens {
        grid.max_tokens.push(max_tokens_value(*t).map_err(|e| invalid("grid.max_tokens", e))?);
    }
    for (name, keys) in persona_groups {
        if name == "all" || keys.is_empty() {
            return Err(invalid(
                &format!("persona_groups.{name}"),
                "a group names at least one attribute, and `all` (every attribute) needs no group".into(),
            ));
        }
    }
    let names = |known: Vec<&String>, all: bool| {
        let mut v: Vec<String> = known.into_iter().cloned().collect();
        if all {
            v.push("all".into());
        }
        v.join(", ")
    };
    let group = |field: &str, name: &str| {
        if name == "all" || persona_groups.contains_key(name) {
            Ok(name.to_string())
        } else {
            Err(invalid(
                field,
                format!(
                    "no persona group `{name}` (known: {})",
                    names(persona_groups.keys().collect(), true)
                ),
            ))
        }
    };
    let prompt = |field: &str, name: &str| {
        if system_prompts.contains_key(name) {
            Ok(name.to_string())
        } else {
            Err(invalid(
                field,
                format!(
                    "no system prompt `{name}` in [system_prompts] (known: {})",
                    names(system_prompts.keys().collect(), false)
                ),
            ))
        }
    };
    for name in &raw_grid.persona {
        grid.persona.push(group("grid.persona", name)?);
    }
    for name in &raw_grid.system {
        grid.system.push(prompt("grid.system", name)?);
    }
    if !raw_arms.is_empty() && grid != Grid::default() {
        return Err(invalid(
            "arms",
            "a sweep lists its cells either as [[arms]] or as a [grid], not both; move the grid's \
             settings into the arms"
                .into(),
        ));
    }
    let mut arms = parse_arms(raw_arms, "arms", &invalid)?;
    let mut baselines = parse_arms(raw_baselines, "baselines", &invalid)?;
    for (list, raws, parsed) in [("arms", raw_arms, &mut arms), ("baselines", raw_baselines, &mut baselines)]
    {
        for (i, (r, a)) in raws.iter().zip(parsed.iter_mut()).enumerate() {
            if let Some(name) = &r.persona {
                a.persona = Some(group(&format!("{list}[{i}].persona"), name)?);
            }
            if let Some(name) = &r.system {
                a.system = Some(prompt(&format!("{list}[{i}].system"), name)?);
            }
        }
    }
    Ok(CellSpace { grid, arms, baselines })
}

/// Reads a list of arms (`[[arms]]`, a tune's `[[baselines]]`), each field named as
/// `list[i].field` in errors.
fn parse_arms(
    raws: &[RawArm],
    list: &str,
    invalid: &dyn Fn(&str, String) -> SweepError,
) -> Result<Vec<Arm>, SweepError> {
    let mut arms: Vec<Arm> = Vec::with_capacity(raws.len());
    for (i, a) in raws.iter().enumerate() {
        let field = |name: &str| format!("{list}[{i}].{name}");
        let name = match a.name.as_deref().map(str::trim) {
            Some("") => return Err(invalid(&field("name"), "must not be empty".into())),
            Some(n) => {
                // The name becomes a folder name: bounded, and told apart after sanitising.
                if n.chars().count() > MAX_ARM_NAME {
                    return Err(invalid(
                        &field("name"),
                        format!("longer than {MAX_ARM_NAME} characters (it names the arm's folder)"),
                    ));
                }
                if let Some(j) =
                    arms.iter().position(|b| b.name.as_deref().map(sanitize) == Some(sanitize(n)))
                {
                    let same = if arms[j].name.as_deref() == Some(n) {
                        String::new()
                    } else {
                        format!(
                            " (both name the folder `{}`: folder names keep ASCII letters, digits, `.` \
                             and `-`, and turn anything else into `_`)",
                            sanitize(n)
                        )
                    };
                    return Err(invalid(&field("name"), format!("`{n}` names {list}[{j}] already{same}")));
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
        let temperature = a
            .temperature
            .map(|t| temperature_value(t).map_err(|e| invalid(&field("temperature"), e)))
            .transpose()?;
        let max_tokens = a
            .max_tokens
            .map(|t| max_tokens_value(t).map_err(|e| invalid(&field("max_tokens"), e)))
            .transpose()?;
        arms.push(Arm {
            name,
            method,
            k,
            selection,
            tau,
            min_prob,
            model: a.model.clone(),
            temperature,
            max_tokens,
            persona: None,
            system: None,
        });
    }
    Ok(arms)
}

/// A sampling temperature, in [0, 2] as a role's.
fn temperature_value(t: f64) -> Result<f32, String> {
    if (0.0..=2.0).contains(&t) {
        Ok(t as f32)
    } else {
        Err(format!("{t}: a temperature is between 0 and 2"))
    }
}

/// A reply length cap, as a role's `max_tokens`.
fn max_tokens_value(t: i64) -> Result<u32, String> {
    u32::try_from(t)
        .ok()
        .filter(|t| *t >= 1)
        .ok_or_else(|| format!("{t}: max_tokens is a positive number of tokens"))
}

/// Reads and validates a sweep file; relative paths in it are relative to the file.
pub fn load_sweep(path: &Path) -> Result<Sweep, SweepError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| SweepError::Io { path: path.to_path_buf(), source })?;
    parse_sweep(path, &text)
}

/// Validates sweep text; `path` names it in errors and anchors relative paths.
pub fn parse_sweep(path: &Path, text: &str) -> Result<Sweep, SweepError> {
    parse_sweep_file(path, text, false)
}

/// Reads a sweep or, with `allow_tune`, a tune file (a sweep file with a `[tune]` table and
/// `[[baselines]]`).
// Long on purpose: validates the sweep file field by field in file order; each check is a few lines and names its field.
pub(crate) fn parse_sweep_file(path: &Path, text: &str, allow_tune: bool) -> Result<Sweep, SweepError> {
    let file = path.to_path_buf();
    let raw: RawSweep = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| crate::fsutil::line_col(text, s.start).0);
        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        SweepError::Syntax { file: file.clone(), reason: format!("{at}{}", e.message().trim()) }
    })?;
    let invalid =
        |field: &str, reason: String| SweepError::Invalid { file: file.clone(), field: field.into(), reason };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut scenario = load_scenario(&base.join(&raw.scenario))?;
    let ids: Vec<&str> = scenario.roles.iter().map(|r| r.id.as_str()).collect();
    if scenario.role_index(&raw.role).is_none() {
        return Err(invalid(
            "role",
            format!("the scenario has no role `{}`; roles: {}", raw.role, ids.join(", ")),
        ));
    }
    // A pinned role keeps its model in every cell, whatever model the sweep runs with, so
    // that comparing the swept role's settings (or models) never changes its partner.
    let ids = ids.join(", ");
    for (role, spec) in &raw.models {
        let field = format!("models.{role}");
        let Some(i) = scenario.role_index(role) else {
            return Err(invalid(&field, format!("the scenario has no role `{role}`; roles: {ids}")));
        };
        if *role == raw.role {
            return Err(invalid(
                &field,
                format!("`{role}` is the role the sweep varies; give its models in the grid or the arms"),
            ));
        }
        model_value(spec).map_err(|e| invalid(&field, e))?;
        scenario.roles[i].model = Some(spec.clone());
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
    let CellSpace { grid, arms, baselines } = parse_cell_space(
        &raw.grid,
        &raw.arms,
        &raw.baselines,
        &raw.persona_groups,
        &raw.system_prompts,
        &invalid,
    )?;
    if raw.tune.is_none() && !raw.baselines.is_empty() {
        return Err(invalid("baselines", "baselines belong to a tune file (with a [tune] table)".into()));
    }
    if raw.tune.is_some() && !allow_tune {
        return Err(invalid("tune", "a [tune] table belongs to a tune file, not a sweep file".into()));
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
    let max = crate::experiment::runner::MAX_REPLICATES;
    let replicates = match raw.replicates {
        Some(r) if !(1..=max).contains(&r) => {
            return Err(invalid(
                "replicates",
                format!("{r}: each person is simulated between 1 and {max} times"),
            ))
        }
        r => r.unwrap_or(1),
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
        replicates,
        concurrency,
        out: raw.out.map(PathBuf::from).unwrap_or_else(|| PathBuf::from("runs").join(stem)),
        model: raw.model,
        min_keep,
        grid,
        arms,
        baselines,
        tune: raw.tune.clone(),
        persona_groups: raw.persona_groups.clone(),
        system_prompts: raw.system_prompts.clone(),
        budget: Budget { max_tokens_total: raw.budget.max_tokens_total, max_cost_usd: raw.budget.max_cost },
        prices,
    };
    // Every cell must be a combination that makes sense for the swept role.
    for cell in sweep.cells() {
        let scenario = sweep.cell_scenario(&cell);
        if let Some(role) = scenario.role_index(&sweep.role).map(|i| &scenario.roles[i]) {
            role.sampling.check().map_err(|(field, reason)| {
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
        Some(rest) => format!("pfg:{}", base.join(crate::data::expand_home(rest)).display()),
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
    crate::vs::KSpec::parse(&text, DEFAULT_K_MAX)
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

impl Sweep {
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
}
