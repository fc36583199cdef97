//! Prompt templates for each method, overridable by users.
//!
//! Each template is a minijinja string rendered with these variables (all always defined;
//! an unknown variable is an error, so a typo in a user template fails loudly):
//! - `k`: the number of responses asked for (`k_max` when the model decides);
//! - `k_max`: the upper bound;
//! - `model_decided`: true for "generate all plausible responses";
//! - `tau`: the probability threshold, or none;
//! - `error` and `json` (the `retry` template only): the parse error, and whether the
//!   method expects a JSON object.
//!
//! Users override any subset from a TOML table (`[prompts]` with keys `direct`,
//! `vs_standard`, ...); the others keep the built-in texts.

use serde::{Deserialize, Serialize};

use super::{KSpec, Method};

/// How many responses: "{k} responses" or "all plausible responses (at most {k_max})".
macro_rules! count {
    () => {
        "{% if model_decided %}all plausible responses (at most {{ k_max }}){% else %}{{ k }} responses{% endif %}"
    };
}

/// The paper's "sample from the tails" sentence, when tau is set.
macro_rules! tail {
    () => {
        "{% if tau is not none %} Sample at random from the tails of the distribution, so that each response has a probability below {{ tau }}.{% endif %}"
    };
}

/// The VS output format.
macro_rules! vs_format {
    () => {
        "Return only a JSON object with the key \"responses\": a list of {% if model_decided %}at most {{ k_max }}{% else %}exactly {{ k }}{% endif %} objects, each with:\n- \"text\": the response itself, nothing else;\n- \"probability\": a number from 0.0 to 1.0, how likely this response is given the conversation (relative to the full distribution of responses).\nExample: {\"responses\": [{\"text\": \"...\", \"probability\": 0.3}, ...]}"
    };
}

const DIRECT: &str =
    "Give your response. Output only the response itself: no preamble, no quotation marks, no explanation.";

const COT: &str = "First think step by step about how to respond, then give your response. Return only a JSON object of the form {\"reasoning\": \"your step-by-step thinking\", \"response\": \"your response, nothing else\"}.";

const SEQUENCE: &str = concat!(
    "Generate ",
    count!(),
    ", each a different way you could respond. Return only a JSON object with the key \"responses\": a list of {% if model_decided %}at most {{ k_max }}{% else %}exactly {{ k }}{% endif %} objects, each with \"text\": the response itself, nothing else.\nExample: {\"responses\": [{\"text\": \"...\"}, ...]}"
);

const MULTI_TURN_MORE: &str = "Give another response, different from your previous ones. Output only the response itself: no preamble, no quotation marks, no explanation.";

const VS_STANDARD: &str =
    concat!("Generate ", count!(), ", each a different way you could respond.", tail!(), "\n", vs_format!());

const VS_COT: &str = concat!(
    "First think step by step about the full range of ways you could respond. Then generate ",
    count!(),
    ".",
    tail!(),
    "\nReturn only a JSON object with the keys \"reasoning\" (your step-by-step thinking) and \"responses\": a list of {% if model_decided %}at most {{ k_max }}{% else %}exactly {{ k }}{% endif %} objects, each with:\n- \"text\": the response itself, nothing else;\n- \"probability\": a number from 0.0 to 1.0, how likely this response is given the conversation (relative to the full distribution of responses).\nExample: {\"reasoning\": \"...\", \"responses\": [{\"text\": \"...\", \"probability\": 0.3}, ...]}"
);

/// The VS output format with "confidence", the word the paper's VS-Multi prompt uses.
macro_rules! vs_multi_format {
    () => {
        "Return only a JSON object with the key \"responses\": a list of {% if model_decided %}at most {{ k_max }}{% else %}exactly {{ k }}{% endif %} objects, each with:\n- \"text\": the response itself, nothing else;\n- \"confidence\": a number from 0.0 to 1.0, your confidence that this is how you would respond given the conversation (relative to the full distribution of responses).\nExample: {\"responses\": [{\"text\": \"...\", \"confidence\": 0.3}, ...]}"
    };
}

const VS_MULTI: &str = concat!(
    "Generate ",
    count!(),
    ", each a different way you could respond.",
    tail!(),
    "\n",
    vs_multi_format!()
);

const VS_MULTI_MORE: &str = concat!(
    "Generate {% if model_decided %}more plausible responses (at most {{ k_max }}){% else %}{{ k }} more responses{% endif %}, different from the ones above.",
    tail!(),
    "\n",
    vs_multi_format!()
);

const RETRY: &str = "Your previous reply could not be used: {{ error }}. {% if json %}Reply again with only the JSON object in the format asked for above, and no other text.{% else %}Reply again with only the response in the format asked for above.{% endif %}";

/// Instruction templates (minijinja) per method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptTemplates {
    /// One reply.
    pub direct: String,
    /// Reasoning, then one reply, as `{"reasoning": ..., "response": ...}`.
    pub cot: String,
    /// k replies without probabilities.
    pub sequence: String,
    /// The first prompt of `multi-turn` (one reply).
    #[serde(alias = "multi-turn")]
    pub multi_turn: String,
    /// The follow-up of `multi-turn`, asking for another reply in the same conversation.
    #[serde(alias = "multi-turn-more")]
    pub multi_turn_more: String,
    /// k replies, each with a probability.
    #[serde(alias = "vs-standard")]
    pub vs_standard: String,
    /// Reasoning, then k replies with probabilities.
    #[serde(alias = "vs-cot")]
    pub vs_cot: String,
    /// The first prompt of `vs-multi`.
    #[serde(alias = "vs-multi")]
    pub vs_multi: String,
    /// The follow-up of `vs-multi`, asking for k more in the same conversation.
    #[serde(alias = "vs-multi-more")]
    pub vs_multi_more: String,
    /// Sent after an unparseable reply, with `error` set.
    pub retry: String,
}

impl Default for PromptTemplates {
    fn default() -> Self {
        Self {
            direct: DIRECT.into(),
            cot: COT.into(),
            sequence: SEQUENCE.into(),
            multi_turn: DIRECT.into(),
            multi_turn_more: MULTI_TURN_MORE.into(),
            vs_standard: VS_STANDARD.into(),
            vs_cot: VS_COT.into(),
            vs_multi: VS_MULTI.into(),
            vs_multi_more: VS_MULTI_MORE.into(),
            retry: RETRY.into(),
        }
    }
}

/// A template that does not parse or render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prompt template `{template}`: {message}")]
pub struct TemplateError {
    /// The template's field name (e.g. `vs_standard`).
    pub template: &'static str,
    /// What went wrong, as the template engine reports it.
    pub message: String,
}

impl PromptTemplates {
    /// The instruction for the first call of `method`.
    pub fn instruction(&self, method: Method, k: KSpec, tau: Option<f64>) -> Result<String, TemplateError> {
        let (name, src) = match method {
            Method::Direct => ("direct", &self.direct),
            Method::Cot => ("cot", &self.cot),
            Method::Sequence => ("sequence", &self.sequence),
            Method::MultiTurn => ("multi_turn", &self.multi_turn),
            Method::VsStandard => ("vs_standard", &self.vs_standard),
            Method::VsCot => ("vs_cot", &self.vs_cot),
            Method::VsMulti => ("vs_multi", &self.vs_multi),
        };
        render(name, src, k, tau)
    }

    /// The follow-up prompt in the same conversation ("another" for `multi-turn`, "k more"
    /// for `vs-multi`); the other methods have none and start afresh, so the first
    /// instruction is returned for them.
    pub fn follow_up(&self, method: Method, k: KSpec, tau: Option<f64>) -> Result<String, TemplateError> {
        match method {
            Method::MultiTurn => render("multi_turn_more", &self.multi_turn_more, k, tau),
            Method::VsMulti => render("vs_multi_more", &self.vs_multi_more, k, tau),
            _ => self.instruction(method, k, tau),
        }
    }

    /// The message sent after an unparseable reply.
    pub(crate) fn retry_message(&self, error: &str, json: bool) -> Result<String, TemplateError> {
        let mut v = vars(KSpec::Fixed { k: 1 }, None, Some(error));
        v.insert("json", minijinja::Value::from(json));
        // A model's error text: rendered each time, never kept.
        render_now("retry", &self.retry, &v)
    }

    /// Renders every template with sample values, so that a broken user template is
    /// reported when it is loaded rather than at the first turn that uses it.
    pub fn validate(&self) -> Result<(), TemplateError> {
        for k in [KSpec::Fixed { k: 5 }, KSpec::ModelDecided { max: 8 }] {
            for tau in [None, Some(0.1)] {
                for m in Method::ALL {
                    self.instruction(m, k, tau)?;
                    self.follow_up(m, k, tau)?;
                }
            }
        }
        self.retry_message("example error", true)?;
        self.retry_message("example error", false)?;
        Ok(())
    }
}

type Vars = std::collections::BTreeMap<&'static str, minijinja::Value>;

fn vars(k: KSpec, tau: Option<f64>, error: Option<&str>) -> Vars {
    let mut v = Vars::new();
    v.insert("k", minijinja::Value::from(k.max()));
    v.insert("k_max", minijinja::Value::from(k.max()));
    v.insert("model_decided", minijinja::Value::from(matches!(k, KSpec::ModelDecided { .. })));
    v.insert("tau", tau.map(minijinja::Value::from).unwrap_or(minijinja::Value::from(())));
    v.insert("error", minijinja::Value::from(error.unwrap_or("")));
    v.insert("json", minijinja::Value::from(false));
    v
}

/// What a kept render depends on besides its template's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct VarsKey {
    k: KSpec,
    /// `tau`'s bits (`f64` has no `Eq`).
    tau: Option<u64>,
}

/// Instructions already rendered, by template source, then variables. A render compiles its
/// template, which was a sizeable share of the CPU per model call with a thousand dialogues
/// in flight; the output is a function of the two alone. Looked up without allocating (by
/// `&str`, then a `Copy` key), under a read lock that concurrent dialogues share. Bounded:
/// cleared when full.
type Rendered = std::collections::HashMap<String, std::collections::HashMap<VarsKey, String>>;
static RENDERED: std::sync::LazyLock<std::sync::RwLock<Rendered>> =
    std::sync::LazyLock::new(Default::default);

/// Entries [`RENDERED`] holds at most (a run uses a handful: one per method, k and tau).
const RENDERED_MAX: usize = 256;

/// Renders `src` with `k` and `tau` (no error text), once per process for each.
fn render(name: &'static str, src: &str, k: KSpec, tau: Option<f64>) -> Result<String, TemplateError> {
    let key = VarsKey { k, tau: tau.map(f64::to_bits) };
    if let Some(done) = RENDERED.read().ok().and_then(|m| m.get(src).and_then(|by| by.get(&key)).cloned()) {
        return Ok(done);
    }
    let out = render_now(name, src, &vars(k, tau, None))?;
    if let Ok(mut m) = RENDERED.write() {
        if m.values().map(|by| by.len()).sum::<usize>() >= RENDERED_MAX {
            m.clear();
        }
        m.entry(src.to_string()).or_default().insert(key, out.clone());
    }
    Ok(out)
}

fn render_now(name: &'static str, src: &str, vars: &Vars) -> Result<String, TemplateError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let err = |e: minijinja::Error| TemplateError { template: name, message: e.to_string() };
    let tmpl = env.template_from_str(src).map_err(err)?;
    let out = tmpl.render(vars).map_err(err)?;
    Ok(out.trim().to_string())
}
