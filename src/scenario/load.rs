//! Validation of a raw scenario into a [`Scenario`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use regex::Regex;
use toml::Spanned;

use super::error::{ScenarioError, SourceMap};
use super::graph::{GraphProblem, TurnGraph, TurnPolicy};
use super::raw::{RawOutcome, RawRole, RawScenario};
use super::{PersonaSource, RoleSpec, Scenario, TEMPLATE_SLOTS};
use crate::outcome::money::MoneyReader;
use crate::outcome::{OutcomeFallback, OutcomeSpec};
use crate::vs::sampling::DEFAULT_K;
use crate::vs::AnswerShape;
use crate::vs::{KSpec, Method, PromptTemplates, Sampling, Selection, SelectionRule};

/// Default upper bound on candidates when the model decides k.
pub const DEFAULT_K_MAX: usize = 10;
const DEFAULT_OPENING: &str = "(The conversation starts now. You speak first.)";

/// Reads and validates a scenario file.
pub fn load_scenario(path: &Path) -> Result<Scenario, ScenarioError> {
    if path.to_str().is_none() {
        // Its path is recorded as text in the run's manifest, to be read again by `eval`.
        return Err(ScenarioError::Io {
            file: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path is not valid UTF-8; vsim records its inputs' paths as text: rename the file",
            ),
        });
    }
    let text = std::fs::read_to_string(path)
        .map_err(|source| ScenarioError::Io { file: path.to_path_buf(), source })?;
    parse_scenario(path, &text)
}

/// Validates scenario text; `path` names it in errors and anchors relative paths.
pub fn parse_scenario(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let map = SourceMap::new(path.to_path_buf(), text);
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        map.error(span, "syntax", e.message().trim().to_string())
    })?;
    Validator { map: &map, base: path.parent().unwrap_or(Path::new(".")).to_path_buf() }.scenario(raw)
}

/// Resolves a role id written in the file to its index (or an error at its span).
type RoleFinder<'a> = dyn Fn(&Spanned<String>, &str) -> Result<usize, ScenarioError> + 'a;

struct Validator<'a> {
    map: &'a SourceMap,
    base: PathBuf,
}

impl Validator<'_> {
    fn err<T>(&self, spanned: &Spanned<T>, field: &str, msg: impl Into<String>) -> ScenarioError {
        self.map.error(spanned.span(), field, msg)
    }

    // Long on purpose: validates the scenario's top level field by field in file order, each check a few lines that need the file's spans for its line numbers.
    fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        if raw.name.get_ref().trim().is_empty() {
            return Err(self.err(&raw.name, "name", "expected a non-empty scenario name"));
        }
        let defaults = &raw.defaults;
        let default_temperature =
            self.opt_unit_range(defaults.temperature.as_ref(), "defaults.temperature", 0.0, 2.0)?;
        let default_top_p = self.opt_unit_range(defaults.top_p.as_ref(), "defaults.top_p", 0.0, 1.0)?;
        let default_max_tokens = self.opt_max_tokens(defaults.max_tokens.as_ref(), "defaults.max_tokens")?;
        if let Some(m) = &defaults.model {
            self.model_spec(m, "defaults.model")?;
        }

        let raw_roles = raw.roles.get_ref();
        if raw_roles.is_empty() {
            return Err(self.err(&raw.roles, "roles", "expected at least one [[roles]] entry"));
        }
        let mut seen = HashSet::new();
        let mut roles = Vec::with_capacity(raw_roles.len());
        for (i, r) in raw_roles.iter().enumerate() {
            let id = r.id.get_ref().trim();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(self.err(
                    &r.id,
                    &format!("roles[{i}].id"),
                    "expected a non-empty id of letters, digits, `_` or `-`",
                ));
            }
            if !seen.insert(id.to_string()) {
                return Err(self.err(&r.id, &format!("roles[{i}].id"), format!("duplicate role id `{id}`")));
            }
            roles.push(self.role(i, r, default_temperature, default_top_p, default_max_tokens)?);
        }
        let role_ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
        let find = |s: &Spanned<String>, field: &str| -> Result<usize, ScenarioError> {
            role_ids.iter().position(|r| r == s.get_ref().trim()).ok_or_else(|| {
                self.err(s, field, format!("unknown role `{}`; roles: {}", s.get_ref(), role_ids.join(", ")))
            })
        };

        let turns = raw.turns.get_ref();
        let policy = match &turns.policy {
            None => TurnPolicy::Fixed,
            Some(p) => TurnPolicy::parse(p.get_ref()).ok_or_else(|| {
                self.err(p, "turns.policy", format!("unknown turn policy `{}`; expected one of: fixed, round-robin, random-neighbour, moderator", p.get_ref()))
            })?,
        };
        let first = match &turns.first {
            Some(f) => find(f, "turns.first")?,
            None => 0,
        };
        let moderator = match (&turns.moderator, policy) {
            (Some(m), _) => Some(find(m, "turns.moderator")?),
            (None, TurnPolicy::Moderator) => {
                return Err(self.err(
                    &raw.turns,
                    "turns.moderator",
                    "policy \"moderator\" needs `moderator = \"ROLE\"`",
                ))
            }
            (None, _) => None,
        };
        let edges: Vec<(usize, usize)> = match &turns.edges {
            Some(list) => {
                let mut out = Vec::new();
                for (i, e) in list.iter().enumerate() {
                    let pair = e.get_ref();
                    if pair.len() != 2 {
                        return Err(self.err(
                            e,
                            &format!("turns.edges[{i}]"),
                            format!("expected a pair [\"FROM\", \"TO\"], got {} items", pair.len()),
                        ));
                    }
                    let a = find(&pair[0], &format!("turns.edges[{i}][0]"))?;
                    let b = find(&pair[1], &format!("turns.edges[{i}][1]"))?;
                    if a == b {
                        return Err(self.err(
                            e,
                            &format!("turns.edges[{i}]"),
                            "a role cannot speak right after itself",
                        ));
                    }
                    out.push((a, b));
                }
                out
            }
            None => default_edges(roles.len(), policy, moderator),
        };
        if roles.len() < 2 {
            return Err(self.err(&raw.roles, "roles", "expected at least two roles for a dialogue"));
        }
        let graph = TurnGraph::new(roles.len(), &edges, policy, first, moderator).map_err(|p| {
            let msg = match p {
                GraphProblem::Unreachable(r) => format!("role `{}` can never speak: no path to it from the first speaker `{}`", role_ids[r], role_ids[first]),
                GraphProblem::NoPathBack(r) => format!("after role `{}` speaks there is no path back to the first speaker `{}` (add an edge from it)", role_ids[r], role_ids[first]),
                GraphProblem::NotSingleSuccessor(r, n) => format!("policy \"fixed\" needs exactly one edge out of each role; `{}` has {n}", role_ids[r]),
            };
            match &turns.edges {
                Some(_) => self.map.error(raw.turns.span(), "turns.edges", msg),
                None => self.map.error(raw.turns.span(), "turns", msg),
            }
        })?;

        let max_turns = *turns.max_turns.get_ref();
        if !(1..=1000).contains(&max_turns) {
            return Err(self.err(
                &turns.max_turns,
                "turns.max_turns",
                format!("expected 1..=1000, got {max_turns}"),
            ));
        }
        let mut stop_patterns = Vec::new();
        for (i, p) in turns.stop_patterns.iter().enumerate() {
            stop_patterns.push(Regex::new(p.get_ref()).map_err(|e| {
                self.err(p, &format!("turns.stop_patterns[{i}]"), format!("invalid regex: {e}"))
            })?);
        }

        let mut outcomes = Vec::new();
        let mut outcome_names = HashSet::new();
        for (i, o) in raw.outcomes.iter().enumerate() {
            let spec = self.outcome(i, o, &find)?;
            if !outcome_names.insert((spec.role, spec.name.clone())) {
                return Err(self.err(
                    &o.name,
                    &format!("outcomes[{i}].name"),
                    format!("duplicate outcome `{}` for this role", spec.name),
                ));
            }
            outcomes.push(spec);
        }

        let templates = match raw.prompts {
            None => PromptTemplates::default(),
            Some(v) => v.try_into::<PromptTemplates>().map_err(|e| {
                self.map.error(0..0, "prompts", format!("invalid prompt templates: {}", e.message().trim()))
            })?,
        };
        let population = raw.population.as_ref().map(|p| self.base.join(p.get_ref()));

        Ok(Scenario {
            name: raw.name.get_ref().trim().to_string(),
            description: raw.description.clone(),
            source: self.map.file.clone(),
            population,
            roles,
            graph,
            max_turns: max_turns as usize,
            stop_patterns,
            opening: turns.opening.clone().unwrap_or_else(|| DEFAULT_OPENING.to_string()),
            outcomes,
            templates,
            use_schema: defaults.use_schema.unwrap_or(true),
            default_model: defaults.model.as_ref().map(|m| m.get_ref().clone()),
        })
    }

    fn role(
        &self,
        i: usize,
        r: &RawRole,
        default_temperature: Option<f32>,
        default_top_p: Option<f32>,
        default_max_tokens: Option<u32>,
    ) -> Result<RoleSpec, ScenarioError> {
        let f = |name: &str| format!("roles[{i}].{name}");
        let fields = SamplingFields {
            method: r.method.as_ref(),
            k: r.k.as_ref(),
            k_max: r.k_max.as_ref(),
            selection: r.selection.as_ref(),
            tau: r.tau.as_ref(),
            min_prob: r.min_prob.as_ref(),
            min_keep: r.min_keep.as_ref(),
            candidates: r.candidates.as_ref(),
            prompt_tau: r.prompt_tau.as_ref(),
        };
        let sampling = read_sampling(&fields, Method::Direct, r.id.span(), &|span, field, msg| {
            self.map.error(span, &f(field), msg)
        })?;
        let persona = match &r.persona {
            None => PersonaSource::None,
            Some(p) => match p.get_ref().trim() {
                "population" => PersonaSource::Population,
                "paired" => PersonaSource::Paired,
                "none" => PersonaSource::None,
                s if s.starts_with("id:") && s.len() > 3 => PersonaSource::Fixed(s[3..].to_string()),
                s => {
                    return Err(self.err(
                        p,
                        &f("persona"),
                        format!(
                            "expected \"population\", \"paired\", \"none\" or \"id:PERSONA_ID\", got `{s}`"
                        ),
                    ))
                }
            },
        };
        self.template(&r.system, &f("system"), persona != PersonaSource::None)?;
        if let Some(m) = &r.model {
            self.model_spec(m, &f("model"))?;
        }
        let spec = RoleSpec {
            id: r.id.get_ref().trim().to_string(),
            name: r.name.clone().unwrap_or_else(|| r.id.get_ref().trim().to_string()),
            system: r.system.get_ref().clone(),
            system_origin: Some(self.template_origin(&r.system)),
            sampling,
            temperature: self
                .opt_unit_range(r.temperature.as_ref(), &f("temperature"), 0.0, 2.0)?
                .or(default_temperature),
            top_p: self.opt_unit_range(r.top_p.as_ref(), &f("top_p"), 0.0, 1.0)?.or(default_top_p),
            max_tokens: self.opt_max_tokens(r.max_tokens.as_ref(), &f("max_tokens"))?.or(default_max_tokens),
            model: r.model.as_ref().map(|m| m.get_ref().clone()),
            persona,
            persona_attributes: match &r.persona_attributes {
                Some(keys) if keys.get_ref().iter().any(|k| k.trim().is_empty()) => {
                    return Err(self.err(keys, &f("persona_attributes"), "expected attribute names"))
                }
                Some(keys) => Some(keys.get_ref().clone()),
                None => None,
            },
        };
        Ok(spec)
    }

    fn outcome(&self, i: usize, o: &RawOutcome, find: &RoleFinder<'_>) -> Result<OutcomeSpec, ScenarioError> {
        let f = |name: &str| format!("outcomes[{i}].{name}");
        let name = o.name.get_ref().trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(self.err(&o.name, &f("name"), "expected a non-empty name of letters, digits or `_`"));
        }
        let role = find(&o.role, &f("role"))?;
        if o.question.get_ref().trim().is_empty() {
            return Err(self.err(&o.question, &f("question"), "expected the question to ask"));
        }
        let kind = match o.kind.get_ref().trim() {
            "number" => {
                let (min, max) = match (o.min, o.max) {
                    (Some(a), Some(b)) if a.is_finite() && b.is_finite() && a <= b => (a, b),
                    _ => {
                        return Err(self.err(
                            &o.kind,
                            &f("min/max"),
                            "a number outcome needs finite `min` and `max` with min <= max",
                        ))
                    }
                };
                AnswerShape::Number { min, max }
            }
            "category" | "categorical" => match &o.categories {
                Some(c) if !c.get_ref().is_empty() && c.get_ref().iter().all(|s| !s.trim().is_empty()) => {
                    AnswerShape::Choice { choices: c.get_ref().clone() }
                }
                Some(c) => {
                    return Err(self.err(
                        c,
                        &f("categories"),
                        "expected a non-empty list of non-empty categories",
                    ))
                }
                None => {
                    return Err(self.err(
                        &o.kind,
                        &f("categories"),
                        "a category outcome needs `categories = [...]`",
                    ))
                }
            },
            other => {
                return Err(self.err(
                    &o.kind,
                    &f("type"),
                    format!("unknown outcome type `{other}`; expected \"number\" or \"category\""),
                ))
            }
        };
        let fallback = self.outcome_fallback(o, &kind, &f)?;
        let method = match &o.method {
            None => None,
            Some(m) => {
                Some(m.get_ref().parse::<Method>().map_err(|e| self.err(m, &f("method"), e.to_string()))?)
            }
        };
        if let Some(m) = &o.stated_model {
            self.model_spec(m, &f("stated_model"))?;
            if o.stated != Some(true) {
                return Err(self.err(
                    m,
                    &f("stated_model"),
                    "reads the stated measure: set `stated = true` too",
                ));
            }
        }
        Ok(OutcomeSpec {
            name: name.to_string(),
            role,
            question: o.question.get_ref().clone(),
            kind,
            fallback,
            method,
            stated: o.stated.unwrap_or(false),
            stated_model: o.stated_model.as_ref().map(|m| m.get_ref().clone()),
        })
    }

    /// `fallback_regex = '...'` or `fallback = "money"` (with an optional `payment`).
    fn outcome_fallback(
        &self,
        o: &RawOutcome,
        kind: &AnswerShape,
        f: &dyn Fn(&str) -> String,
    ) -> Result<Option<OutcomeFallback>, ScenarioError> {
        if let (Some(p), None) = (&o.payment, &o.fallback) {
            return Err(self.err(p, &f("payment"), "`payment` belongs to `fallback = \"money\"`"));
        }
        match (&o.fallback_regex, &o.fallback) {
            (None, None) => Ok(None),
            (Some(p), None) => Regex::new(p.get_ref())
                .map(|r| Some(OutcomeFallback::Regex(r)))
                .map_err(|e| self.err(p, &f("fallback_regex"), format!("invalid regex: {e}"))),
            (Some(_), Some(name)) => Err(self.err(
                name,
                &f("fallback"),
                "expected either `fallback` or `fallback_regex`, not both",
            )),
            (None, Some(name)) => self.named_fallback(name, o.payment.as_ref(), kind, f).map(Some),
        }
    }

    /// A built-in fallback: "money" (number outcomes only).
    fn named_fallback(
        &self,
        name: &Spanned<String>,
        payment: Option<&Spanned<f64>>,
        kind: &AnswerShape,
        f: &dyn Fn(&str) -> String,
    ) -> Result<OutcomeFallback, ScenarioError> {
        if name.get_ref().trim() != "money" {
            let msg = format!(
                "unknown fallback `{}`; expected \"money\" (or use `fallback_regex`)",
                name.get_ref()
            );
            return Err(self.err(name, &f("fallback"), msg));
        }
        let AnswerShape::Number { max, .. } = kind else {
            return Err(self.err(
                name,
                &f("fallback"),
                "the money fallback reads numbers; this outcome is a category",
            ));
        };
        let payment = match payment {
            None => *max,
            Some(p) if p.get_ref().is_finite() && *p.get_ref() >= 0.0 => *p.get_ref(),
            Some(p) => return Err(self.err(p, &f("payment"), "expected a finite amount >= 0")),
        };
        Ok(OutcomeFallback::Money(MoneyReader::new(payment)))
    }

    fn template(&self, t: &Spanned<String>, field: &str, has_persona: bool) -> Result<(), ScenarioError> {
        let env = minijinja::Environment::new();
        let tmpl = env
            .template_from_str(t.get_ref())
            .map_err(|e| self.err(t, field, format!("invalid template: {e}")))?;
        let mut vars: Vec<String> = tmpl.undeclared_variables(false).into_iter().collect();
        vars.sort();
        for v in vars {
            if !TEMPLATE_SLOTS.contains(&v.as_str()) {
                return Err(self.err(
                    t,
                    field,
                    format!(
                        "template slot `{v}` has no value; available slots: {}",
                        TEMPLATE_SLOTS.join(", ")
                    ),
                ));
            }
            if v == "persona" && !has_persona {
                return Err(self.err(t, field, "template uses `persona` but the role has no persona (set persona = \"population\", \"paired\" or \"id:...\")"));
            }
        }
        Ok(())
    }

    /// The file and line of a template's first line: a multi-line string that opens with a
    /// newline starts on the line after its quotes.
    fn template_origin(&self, t: &Spanned<String>) -> (std::path::PathBuf, usize) {
        let start = t.span().start;
        let (line, _) = self.map.position(start);
        let rest = self.map.text_from(start);
        let opens_block = ["\"\"\"\n", "'''\n", "\"\"\"\r\n", "'''\r\n"].iter().any(|q| rest.starts_with(q));
        (self.map.file.clone(), line + usize::from(opens_block))
    }

    fn model_spec(&self, m: &Spanned<String>, field: &str) -> Result<(), ScenarioError> {
        crate::backend::spec::ModelSpec::parse(m.get_ref())
            .map(|_| ())
            .map_err(|e| self.err(m, field, e.to_string()))
    }

    fn opt_unit_range(
        &self,
        v: Option<&Spanned<f64>>,
        field: &str,
        lo: f64,
        hi: f64,
    ) -> Result<Option<f32>, ScenarioError> {
        match v {
            None => Ok(None),
            Some(x) if (lo..=hi).contains(x.get_ref()) => Ok(Some(*x.get_ref() as f32)),
            Some(x) => {
                Err(self.err(x, field, format!("expected a number in [{lo}, {hi}], got {}", x.get_ref())))
            }
        }
    }

    fn opt_max_tokens(&self, v: Option<&Spanned<i64>>, field: &str) -> Result<Option<u32>, ScenarioError> {
        match v {
            None => Ok(None),
            Some(x) if (1..=1_000_000).contains(x.get_ref()) => Ok(Some(*x.get_ref() as u32)),
            Some(x) => {
                Err(self.err(x, field, format!("expected a positive token count, got {}", x.get_ref())))
            }
        }
    }
}

/// Edges when none are given: alternation for two roles, declaration order otherwise; for a
/// moderator policy, moderator <-> everyone.
fn default_edges(n: usize, policy: TurnPolicy, moderator: Option<usize>) -> Vec<(usize, usize)> {
    match (policy, moderator) {
        (TurnPolicy::Moderator, Some(m)) => {
            (0..n).filter(|&i| i != m).flat_map(|i| [(m, i), (i, m)]).collect()
        }
        (TurnPolicy::RandomNeighbour, _) => {
            (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).collect()
        }
        _ => (0..n).map(|i| (i, (i + 1) % n)).collect(),
    }
}

/// The sampling settings as a file writes them (a scenario's role, a survey), each with its
/// place in the file.
pub(crate) struct SamplingFields<'a> {
    pub method: Option<&'a Spanned<String>>,
    pub k: Option<&'a Spanned<toml::Value>>,
    pub k_max: Option<&'a Spanned<i64>>,
    pub selection: Option<&'a Spanned<String>>,
    pub tau: Option<&'a Spanned<f64>>,
    pub min_prob: Option<&'a Spanned<f64>>,
    pub min_keep: Option<&'a Spanned<i64>>,
    pub candidates: Option<&'a Spanned<i64>>,
    pub prompt_tau: Option<&'a Spanned<f64>>,
}

/// Reads and validates sampling settings: each value on its own, then the combinations
/// ([`Sampling::check`]), a refusal pointing at the offending setting, else at the method
/// (else at `fallback`). `err` makes an error from a span, a field name and a message.
pub(crate) fn read_sampling<E>(
    r: &SamplingFields<'_>,
    default_method: Method,
    fallback: std::ops::Range<usize>,
    err: &dyn Fn(std::ops::Range<usize>, &str, String) -> E,
) -> Result<Sampling, E> {
    let method = match r.method {
        None => default_method,
        Some(m) => m.get_ref().parse::<Method>().map_err(|e| err(m.span(), "method", e.to_string()))?,
    };
    let k_max = match r.k_max {
        None => DEFAULT_K_MAX,
        Some(v) if (1..=100).contains(v.get_ref()) => *v.get_ref() as usize,
        Some(v) => return Err(err(v.span(), "k_max", format!("expected 1..=100, got {}", v.get_ref()))),
    };
    let k = match r.k {
        None => KSpec::Fixed { k: if method.asks_for_list() { DEFAULT_K } else { 1 } },
        Some(v) => {
            let text = match v.get_ref() {
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::String(s) => s.clone(),
                other => {
                    return Err(err(
                        v.span(),
                        "k",
                        format!("expected a positive integer or \"model-decided\", got {other}"),
                    ))
                }
            };
            KSpec::parse(&text, k_max).map_err(|e| err(v.span(), "k", e))?
        }
    };
    let selection = match r.selection {
        // Without probabilities there is nothing to weigh.
        None if method.is_verbalized() => Selection::Weighted,
        None => Selection::Uniform,
        Some(s) => s.get_ref().parse::<Selection>().map_err(|e| err(s.span(), "selection", e.to_string()))?,
    };
    if let Some(t) = r.prompt_tau {
        return Err(err(
            t.span(),
            "prompt_tau",
            "`prompt_tau` is now `tau` (the threshold stated in the prompt, as in the paper); \
             a post-hoc floor on probabilities is `min_prob`"
                .into(),
        ));
    }
    let probability = |v: Option<&Spanned<f64>>, name: &str| -> Result<Option<f64>, E> {
        match v {
            None => Ok(None),
            Some(t) if (0.0..=1.0).contains(t.get_ref()) => Ok(Some(*t.get_ref())),
            Some(t) => {
                Err(err(t.span(), name, format!("expected a probability in [0, 1], got {}", t.get_ref())))
            }
        }
    };
    let tau = probability(r.tau, "tau")?;
    let min_prob = probability(r.min_prob, "min_prob")?;
    let min_keep = match r.min_keep {
        None => 1,
        Some(v) if *v.get_ref() >= 1 => *v.get_ref() as usize,
        Some(v) => return Err(err(v.span(), "min_keep", "expected an integer >= 1".into())),
    };
    let candidates = match r.candidates {
        None => None,
        Some(v) if (1..=1000).contains(v.get_ref()) => Some(*v.get_ref() as usize),
        Some(v) => {
            return Err(err(v.span(), "candidates", format!("expected 1..=1000, got {}", v.get_ref())))
        }
    };
    let sampling =
        Sampling { method, k, rule: SelectionRule { selection, min_prob, min_keep }, tau, candidates };
    if let Err((field, reason)) = sampling.check() {
        // Point at the offending setting, else at the method that makes it so.
        let span = match field {
            "k" => r.k.map(|v| v.span()),
            "tau" => r.tau.map(|v| v.span()),
            "min_prob" => r.min_prob.map(|v| v.span()),
            "selection" => r.selection.map(|v| v.span()),
            "candidates" => r.candidates.map(|v| v.span()),
            _ => None,
        }
        .or_else(|| r.method.map(|m| m.span()))
        .unwrap_or(fallback);
        return Err(err(span, field, reason));
    }
    Ok(sampling)
}
