//! Token and cost accounting, and the caps that stop a run when a budget is spent.
//!
//! Every backend a run uses is wrapped in a `Metered` model that adds the `usage` of each
//! reply the model actually produced (cache hits cost nothing and are not counted) to a
//! per-model counter. Costs come from per-model prices in dollars per million tokens.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::{BackendError, ChatModel, ChatRequest, ChatResponse, SharedModel, Usage};

/// Dollars per million input (prompt) and output (completion) tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Dollars per million input tokens.
    pub input_per_mtok: f64,
    /// Dollars per million output tokens.
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost of `usage` in dollars.
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.prompt_tokens as f64 * self.input_per_mtok
            + usage.completion_tokens as f64 * self.output_per_mtok)
            / 1e6
    }
}

/// A price list that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriceError {
    /// A `--price` entry is malformed.
    #[error("invalid price `{given}`: {reason}; expected MODEL=IN_PER_MTOK,OUT_PER_MTOK (e.g. gpt-4o-mini=0.15,0.60)")]
    Syntax {
        /// The entry as given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `[prices]` table in a file is malformed.
    #[error("{file}: invalid [prices] table: {reason}")]
    Table {
        /// The file holding the table.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The highest price accepted, in dollars per million tokens: far above any model's, and low
/// enough that every cost reported stays a readable number.
pub(crate) const MAX_PRICE_PER_MTOK: f64 = 1_000_000.0;

/// Prices per model. Keys are matched against a model spec exactly first, then against its
/// model name (the spec without the `openai:`/`local:` prefix and the `@URL` suffix).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Prices(pub BTreeMap<String, Price>);

impl Prices {
    /// Parses one `MODEL=IN,OUT` entry and adds it.
    pub fn add_entry(&mut self, entry: &str) -> Result<(), PriceError> {
        let err = |reason: &str| PriceError::Syntax { given: entry.to_string(), reason: reason.to_string() };
        let (model, values) = entry.rsplit_once('=').ok_or_else(|| err("no `=`"))?;
        let (input, output) =
            values.split_once(',').ok_or_else(|| err("expected two numbers separated by a comma"))?;
        let parse = |s: &str| {
            s.trim().parse::<f64>().ok().filter(|x| x.is_finite() && (0.0..=MAX_PRICE_PER_MTOK).contains(x))
        };
        let (Some(input_per_mtok), Some(output_per_mtok)) = (parse(input), parse(output)) else {
            return Err(err("prices must be numbers from 0 to 1000000 (dollars per million tokens)"));
        };
        if model.trim().is_empty() {
            return Err(err("empty model name"));
        }
        self.0.insert(model.trim().to_string(), Price { input_per_mtok, output_per_mtok });
        Ok(())
    }

    /// Reads a `[prices]` TOML table: `MODEL = [IN, OUT]` or `MODEL = { input = IN, output = OUT }`.
    /// `file` names the source in errors.
    pub(crate) fn from_toml_table(table: &toml::Table, file: &str) -> Result<Self, PriceError> {
        let err = |reason: String| PriceError::Table { file: file.to_string(), reason };
        let mut prices = Prices::default();
        for (model, value) in table {
            let num = |v: Option<&toml::Value>| -> Option<f64> {
                let x = match v? {
                    toml::Value::Float(f) => *f,
                    toml::Value::Integer(i) => *i as f64,
                    _ => return None,
                };
                (x.is_finite() && (0.0..=MAX_PRICE_PER_MTOK).contains(&x)).then_some(x)
            };
            let pair = match value {
                toml::Value::Array(a) if a.len() == 2 => (num(a.first()), num(a.get(1))),
                toml::Value::Table(t) => (num(t.get("input")), num(t.get("output"))),
                _ => (None, None),
            };
            let (Some(input_per_mtok), Some(output_per_mtok)) = pair else {
                return Err(err(format!(
                    "`{model}`: expected [IN_PER_MTOK, OUT_PER_MTOK] or {{ input = .., output = .. }} with numbers from 0 to 1000000"
                )));
            };
            prices.0.insert(model.clone(), Price { input_per_mtok, output_per_mtok });
        }
        Ok(prices)
    }

    /// Reads the `[prices]` table of a TOML file (the whole file may be just that table).
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, PriceError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| PriceError::Table { file: file.clone(), reason: e.to_string() })?;
        let doc: toml::Table = toml::from_str(&text)
            .map_err(|e| PriceError::Table { file: file.clone(), reason: e.to_string() })?;
        match doc.get("prices") {
            Some(toml::Value::Table(t)) => Self::from_toml_table(t, &file),
            Some(_) => Err(PriceError::Table { file, reason: "`prices` must be a table".into() }),
            None => Self::from_toml_table(&doc, &file),
        }
    }

    /// Adds every entry of `other`, replacing entries with the same key.
    pub fn extend(&mut self, other: Prices) {
        self.0.extend(other.0);
    }

    /// The price of a model spec such as `openai:gpt-4o-mini@http://host/v1`.
    pub(crate) fn lookup(&self, spec: &str) -> Option<Price> {
        if let Some(p) = self.0.get(spec) {
            return Some(*p);
        }
        let name = spec.split_once(':').map_or(spec, |(_, rest)| rest);
        let name = name.rsplit_once('@').map_or(name, |(model, _)| model);
        self.0.get(name).copied()
    }

    /// Whether no price is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Caps on what one invocation may spend. Once one is reached no new dialogue starts; the
/// ones in flight finish and are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Budget {
    /// Prompt plus completion tokens produced by the models (cache hits excluded).
    pub max_tokens_total: Option<u64>,
    /// Dollars, from the model prices.
    pub max_cost_usd: Option<f64>,
}

impl Budget {
    /// This budget with each cap that `over` sets replaced by `over`'s (the command line
    /// over a file's).
    pub(crate) fn overridden_by(mut self, over: &Budget) -> Budget {
        if over.max_tokens_total.is_some() {
            self.max_tokens_total = over.max_tokens_total;
        }
        if over.max_cost_usd.is_some() {
            self.max_cost_usd = over.max_cost_usd;
        }
        self
    }

    /// Why the budget is spent, if it is.
    pub fn reached(&self, spend: &Spend) -> Option<String> {
        if let Some(max) = self.max_tokens_total {
            if spend.usage.total() >= max {
                return Some(format!("token budget reached ({} of {max} tokens)", spend.usage.total()));
            }
        }
        if let Some(max) = self.max_cost_usd {
            let cost = spend.cost_usd.unwrap_or(0.0);
            if cost >= max {
                return Some(format!("cost budget reached (${cost:.4} of ${max:.4})"));
            }
        }
        None
    }

    /// Why a run under this budget stopped, in this budget's own figures: [`Budget::reached`]
    /// when `spend` is at a cap, else the cap that `spend` is closest to (a run whose last
    /// calls were refused may stop a little short of it, or on a share of it that an earlier
    /// part of a sweep left). `None` without a cap.
    pub(crate) fn stop_reason(&self, spend: &Spend) -> Option<String> {
        if let Some(reason) = self.reached(spend) {
            return Some(reason);
        }
        let tokens = self.max_tokens_total.map(|max| (spend.usage.total() as f64 / max.max(1) as f64, max));
        let cost = self.max_cost_usd.map(|max| (spend.cost_usd.unwrap_or(0.0) / max, max));
        match (tokens, cost) {
            (Some((t, max)), c) if c.is_none_or(|(c, _)| t >= c) => {
                Some(format!("token budget reached ({} of {max} tokens)", spend.usage.total()))
            }
            (_, Some((_, max))) => {
                Some(format!("cost budget reached (${:.4} of ${max:.4})", spend.cost_usd.unwrap_or(0.0)))
            }
            _ => None,
        }
    }

    /// What is left after `spend`, for running several experiments under one budget.
    pub fn minus(&self, spend: &Spend) -> Budget {
        Budget {
            max_tokens_total: self.max_tokens_total.map(|m| m.saturating_sub(spend.usage.total())),
            max_cost_usd: self.max_cost_usd.map(|m| (m - spend.cost_usd.unwrap_or(0.0)).max(0.0)),
        }
    }
}

/// What a run spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spend {
    /// Tokens of replies the models produced (cache hits excluded).
    pub usage: Usage,
    /// Requests answered by the models.
    pub calls: u64,
    /// Requests answered from the response cache.
    pub cached_calls: u64,
    /// Dollars, when at least one model has a price.
    pub cost_usd: Option<f64>,
}

impl std::ops::AddAssign<&Spend> for Spend {
    /// Adds what another run spent (the cost is known when either side knows it).
    fn add_assign(&mut self, other: &Spend) {
        self.usage += other.usage;
        self.calls += other.calls;
        self.cached_calls += other.cached_calls;
        if let Some(c) = other.cost_usd {
            *self.cost_usd.get_or_insert(0.0) += c;
        }
    }
}

impl fmt::Display for Spend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tokens", human(self.usage.total()))?;
        if let Some(c) = self.cost_usd {
            write!(f, ", ${c:.4}")?;
        }
        Ok(())
    }
}

/// `12345` as `12.3k`, `1234567` as `1.23M`.
pub fn human(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

#[derive(Debug, Default)]
struct Counter {
    prompt: AtomicU64,
    completion: AtomicU64,
    calls: AtomicU64,
    cached: AtomicU64,
}

/// One metered model: its name, its price and its counter.
#[derive(Debug)]
struct Entry {
    name: String,
    price: Option<Price>,
    counter: Arc<Counter>,
}

/// Per-model counters shared by every dialogue of a run, and the run's cap: a call that
/// would start after the cap is reached is refused (not sent), so a run overshoots its
/// budget by at most the calls already in flight.
#[derive(Debug, Default, Clone)]
pub(crate) struct Meter(Arc<MeterState>);

#[derive(Debug, Default)]
struct MeterState {
    models: std::sync::Mutex<Vec<Entry>>,
    budget: Budget,
}

impl Meter {
    /// A meter that refuses calls once `budget` is spent.
    pub(crate) fn with_budget(budget: Budget) -> Self {
        Self(Arc::new(MeterState { models: Default::default(), budget }))
    }

    /// Wraps `model` (named `name`, priced from `prices`) so its replies are counted.
    /// Wrapping the same name twice shares one counter.
    pub fn wrap(&self, name: &str, model: SharedModel, prices: &Prices) -> SharedModel {
        let mut models = self.0.models.lock().unwrap_or_else(|p| p.into_inner());
        let counter = match models.iter().find(|e| e.name == name) {
            Some(e) => e.counter.clone(),
            None => {
                let counter = Arc::new(Counter::default());
                models.push(Entry {
                    name: name.to_string(),
                    price: prices.lookup(name),
                    counter: counter.clone(),
                });
                counter
            }
        };
        Arc::new(Metered { inner: model, counter, meter: self.clone() })
    }

    /// What has been spent so far.
    pub fn spend(&self) -> Spend {
        let models = self.0.models.lock().unwrap_or_else(|p| p.into_inner());
        let mut spend = Spend::default();
        for Entry { price, counter: c, .. } in models.iter() {
            let usage = Usage {
                prompt_tokens: c.prompt.load(Ordering::Relaxed),
                completion_tokens: c.completion.load(Ordering::Relaxed),
            };
            spend.usage += usage;
            spend.calls += c.calls.load(Ordering::Relaxed);
            spend.cached_calls += c.cached.load(Ordering::Relaxed);
            if let Some(p) = price {
                *spend.cost_usd.get_or_insert(0.0) += p.cost(usage);
            }
        }
        spend
    }

    /// Model names without a price.
    pub fn unpriced(&self) -> Vec<String> {
        let models = self.0.models.lock().unwrap_or_else(|p| p.into_inner());
        models.iter().filter(|e| e.price.is_none()).map(|e| e.name.clone()).collect()
    }
}

/// A model whose replies are counted by a [`Meter`].
struct Metered {
    inner: SharedModel,
    counter: Arc<Counter>,
    meter: Meter,
}

#[async_trait::async_trait]
impl ChatModel for Metered {
    fn id(&self) -> String {
        self.inner.id()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, BackendError> {
        if let Some(reason) = self.meter.0.budget.reached(&self.meter.spend()) {
            return Err(BackendError::BudgetReached(reason));
        }
        let reply = self.inner.chat(request).await?;
        if reply.cached {
            self.counter.cached.fetch_add(1, Ordering::Relaxed);
        } else {
            let usage = reply.usage.unwrap_or_default();
            self.counter.calls.fetch_add(1, Ordering::Relaxed);
            self.counter.prompt.fetch_add(usage.prompt_tokens, Ordering::Relaxed);
            self.counter.completion.fetch_add(usage.completion_tokens, Ordering::Relaxed);
        }
        Ok(reply)
    }
}

impl FromStr for Prices {
    type Err = PriceError;

    /// Entries separated by `;`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut prices = Prices::default();
        for entry in s.split(';').filter(|e| !e.trim().is_empty()) {
            prices.add_entry(entry)?;
        }
        Ok(prices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_and_match_model_names() {
        let mut p = Prices::default();
        p.add_entry("gpt-4o-mini=0.15,0.60").unwrap();
        p.add_entry("openai:big@http://h/v1=2,8").unwrap();
        assert_eq!(p.lookup("openai:gpt-4o-mini@http://x/v1").unwrap().output_per_mtok, 0.6);
        assert_eq!(p.lookup("openai:big@http://h/v1").unwrap().input_per_mtok, 2.0);
        assert!(p.lookup("openai:other").is_none());
        assert!(p.add_entry("x=1").is_err());
        // A price that would print as a 300-digit cost is refused, saying the bound.
        let e = p.add_entry("x=1e300,1").unwrap_err().to_string();
        assert!(e.contains("from 0 to 1000000"), "{e}");
        assert!(p.add_entry("x=-1,2").is_err());
        let usage = Usage { prompt_tokens: 1_000_000, completion_tokens: 500_000 };
        assert!((p.lookup("gpt-4o-mini").unwrap().cost(usage) - 0.45).abs() < 1e-12);
        let table: toml::Table = toml::from_str("a = [1, 2]\nb = { input = 0.5, output = 1 }").unwrap();
        let t = Prices::from_toml_table(&table, "f").unwrap();
        assert_eq!(t.lookup("b").unwrap().output_per_mtok, 1.0);
        let bad: toml::Table = toml::from_str("a = \"cheap\"").unwrap();
        assert!(Prices::from_toml_table(&bad, "f").is_err());
    }

    #[test]
    fn a_stop_is_told_in_the_whole_budget_not_in_what_was_left() {
        // A sweep of $0.01: the first cell spent $0.0067, the second was cut at the $0.0033
        // left; its own message would say "$0.0033 of $0.0033".
        let b = Budget { max_tokens_total: None, max_cost_usd: Some(0.01) };
        let spent = Spend { cost_usd: Some(0.0067 + 0.0032999), ..Spend::default() };
        assert!(b.reached(&spent).is_none());
        assert_eq!(b.stop_reason(&spent).unwrap(), "cost budget reached ($0.0100 of $0.0100)");
        let cell = b.minus(&Spend { cost_usd: Some(0.0067), ..Spend::default() });
        assert_eq!(
            cell.reached(&Spend { cost_usd: Some(0.0033), ..Spend::default() }).unwrap(),
            "cost budget reached ($0.0033 of $0.0033)"
        );
        let tokens = Budget { max_tokens_total: Some(1000), max_cost_usd: Some(1.0) };
        let mut s = Spend::default();
        s.usage.completion_tokens = 990;
        s.cost_usd = Some(0.1);
        assert_eq!(tokens.stop_reason(&s).unwrap(), "token budget reached (990 of 1000 tokens)");
        assert!(Budget::default().stop_reason(&s).is_none());
    }

    #[test]
    fn budget_reached_and_minus() {
        let b = Budget { max_tokens_total: Some(100), max_cost_usd: Some(1.0) };
        let mut s = Spend::default();
        assert!(b.reached(&s).is_none());
        s.usage.prompt_tokens = 100;
        assert!(b.reached(&s).unwrap().contains("token"));
        s.usage.prompt_tokens = 10;
        s.cost_usd = Some(1.5);
        assert!(b.reached(&s).unwrap().contains("cost"));
        let left = b.minus(&s);
        assert_eq!(left.max_tokens_total, Some(90));
        assert_eq!(left.max_cost_usd, Some(0.0));
    }
}
