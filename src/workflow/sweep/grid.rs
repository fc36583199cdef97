//! Expanding a sweep's grid or arms into cells, and applying a cell's settings to the
//! scenario.

use std::collections::BTreeSet;

use super::spec::{Arm, Grid, Sweep};
use crate::scenario::Scenario;
use crate::vs::{KSpec, Method, Selection};

/// One cell of the grid; `None` axes keep the scenario's setting.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cell {
    /// The cell's position, from 0.
    pub index: usize,
    /// Directory name: the index and the varied values.
    pub name: String,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// The role's reply length cap, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The named group of persona attributes the role's prompt shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    /// The named system prompt of the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// Keeps letters, digits, `.` and `-`; anything else becomes `_`.
pub(super) fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect()
}

/// A model spec's short name for directory names (`openai:org/m@url` → `org_m`).
fn model_label(spec: &str) -> String {
    let name = spec.split_once(':').map_or(spec, |(_, rest)| rest);
    let name = name.rsplit_once('@').map_or(name, |(m, _)| m);
    sanitize(name)
}

pub(super) fn k_label(k: KSpec) -> String {
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
                parts.extend(arm.temperature.map(|t| format!("temp{t}")));
                parts.extend(arm.max_tokens.map(|t| format!("maxtok{t}")));
                parts.extend(arm.persona.as_ref().map(|p| format!("persona-{p}")));
                parts.extend(arm.system.as_ref().map(|p| format!("system-{p}")));
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
            temperature: arm.temperature,
            max_tokens: arm.max_tokens,
            persona: arm.persona.clone(),
            system: arm.system.clone(),
        }
    }
}

/// The cells of `grid`, or of `arms` when there are any (in file order).
pub(crate) fn expand_cells(grid: &Grid, arms: &[Arm]) -> Vec<Cell> {
    if !arms.is_empty() {
        return arms.iter().enumerate().map(|(i, a)| Cell::new(i, a)).collect();
    }
    let g = grid;
    let mut cells = Vec::new();
    for method in axis(&g.method) {
        for k in axis(&g.k) {
            for selection in axis(&g.selection) {
                for tau in axis(&g.tau) {
                    for min_prob in axis(&g.min_prob) {
                        for model in axis(&g.model) {
                            for temperature in axis(&g.temperature) {
                                for max_tokens in axis(&g.max_tokens) {
                                    for persona in axis(&g.persona) {
                                        for system in axis(&g.system) {
                                            let arm = Arm {
                                                name: None,
                                                method,
                                                k,
                                                selection,
                                                tau,
                                                min_prob,
                                                model: model.clone(),
                                                temperature,
                                                max_tokens,
                                                persona: persona.clone(),
                                                system,
                                            };
                                            cells.push(Cell::new(cells.len(), &arm));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    cells
}

/// Baselines as cells, named `baseline-NNN-…` so that they never share a folder with a
/// candidate.
pub(crate) fn baseline_cells(baselines: &[Arm]) -> Vec<Cell> {
    baselines
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut cell = Cell::new(i, a);
            cell.name = format!("baseline-{}", cell.name);
            cell
        })
        .collect()
}

impl Sweep {
    /// The cells: the arms in file order, else the grid in order method, k, selection,
    /// tau, min_prob, model, temperature, max_tokens (the last varies fastest).
    pub fn cells(&self) -> Vec<Cell> {
        expand_cells(&self.grid, &self.arms)
    }

    /// A tune file's baselines as cells, named `baseline-NNN-…` so that they never share a
    /// folder with a candidate.
    pub fn baseline_cells(&self) -> Vec<Cell> {
        baseline_cells(&self.baselines)
    }

    /// The scenario with `cell`'s settings applied to the swept role.
    pub fn cell_scenario(&self, cell: &Cell) -> Scenario {
        let mut scenario = self.scenario.clone();
        if let Some(i) = scenario.role_index(&self.role) {
            let role = &mut scenario.roles[i];
            if let Some(m) = cell.method {
                role.sampling.set_method(m);
            }
            if let Some(k) = cell.k {
                role.sampling.k = k;
            }
            if let Some(s) = cell.selection {
                role.sampling.rule.selection = s;
            }
            if let Some(t) = cell.tau {
                role.sampling.tau = t;
            }
            if let Some(p) = cell.min_prob {
                role.sampling.rule.min_prob = p;
                role.sampling.rule.min_keep = self.min_keep;
            }
            if let Some(m) = &cell.model {
                role.model = Some(m.clone());
            }
            if let Some(t) = cell.temperature {
                role.temperature = Some(t);
            }
            if let Some(t) = cell.max_tokens {
                role.max_tokens = Some(t);
            }
            if let Some(group) = &cell.persona {
                role.persona_attributes = self.persona_groups.get(group).cloned();
            }
            if let Some(text) = cell.system.as_ref().and_then(|name| self.system_prompts.get(name)) {
                role.system = text.clone();
                role.system_origin = None;
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
