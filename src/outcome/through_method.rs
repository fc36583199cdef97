//! Outcome questions answered through the method under test. The role gathers answers as
//! its turns gather candidates (a list method: several answers in the constrained shape,
//! with verbalized probabilities for VS methods), and its own seeded selection rule picks
//! one, so the measured quantity goes through the same sampling as the role's turns; the
//! whole distribution is recorded. `cot` answers without its reasoning step. The
//! `stated` source reads what the role said in the dialogue with a constrained extractor
//! call instead.

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{check_value, extract, question_text, Extracted, Reading};
use crate::backend::{
    AnswerShape, BackendError, ChatModel, ChatRequest, Message, OutputConstraint, Role, Usage,
};
use crate::dialogue::events::OutcomeSource;
use crate::scenario::{OutcomeKind, OutcomeSpec};
use crate::vs::{select, Candidate, Choice, KSpec, Method, SelectionRule};

/// How a role answers an outcome question: its method (or the outcome's own), k, τ and rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerMethod {
    /// The method that answers.
    pub method: Method,
    /// Answers gathered (N), as the role's turns gather candidates.
    pub n: usize,
    /// Answers asked for per call.
    pub k: KSpec,
    /// The paper's τ, stated in the prompt.
    pub tau: Option<f64>,
    /// How one answer is chosen.
    pub rule: SelectionRule,
}

/// The answers a list method gave to an outcome question and the one chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerDistribution {
    /// The method that answered.
    pub method: Method,
    /// Each valid answer as JSON text (`"0.5"`, `"\"yes\""`), with its normalised and stated
    /// probability.
    pub candidates: Vec<Candidate>,
    /// Which answer the rule chose, and how.
    pub choice: Choice,
    /// Answers dropped because they break the outcome's type or range, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

fn shape(kind: &OutcomeKind) -> AnswerShape {
    match kind {
        OutcomeKind::Number { min, max } => AnswerShape::Number { min: *min, max: *max },
        OutcomeKind::Category { categories } => AnswerShape::Choice { choices: categories.clone() },
    }
}

/// What an answer may be, in the words of the list prompts.
fn answer_domain(kind: &OutcomeKind) -> String {
    match kind {
        OutcomeKind::Number { min, max } => format!("ANSWER is a number between {min} and {max}"),
        OutcomeKind::Category { categories } => {
            let list: Vec<String> = categories.iter().map(|c| format!("\"{c}\"")).collect();
            format!("ANSWER is one of {}", list.join(", "))
        }
    }
}

/// The question asking for several answers, with the format spelled out.
fn list_question(spec: &OutcomeSpec, how: &AnswerMethod) -> String {
    let count = match how.k {
        KSpec::Fixed { k } => format!("{k} different answers"),
        KSpec::ModelDecided { max } => format!("all plausible answers (at most {max})"),
    };
    let what = answer_domain(&spec.kind);
    let (word, item) = match how.method {
        Method::Sequence => ("", "{\"answer\": ANSWER}".to_string()),
        Method::VsMulti => {
            (" with your confidence in each", "{\"answer\": ANSWER, \"confidence\": C}".to_string())
        }
        _ => (" each with its probability", "{\"answer\": ANSWER, \"probability\": P}".to_string()),
    };
    let tail = match how.tau {
        Some(t) if how.method.is_verbalized() => {
            format!(" Sample at random from the tails of the distribution, so that each answer has a probability below {t}.")
        }
        _ => String::new(),
    };
    let reasoning = if how.method == Method::VsCot {
        "First think step by step about the range of answers you might give. "
    } else {
        ""
    };
    format!(
        "{}\n\n{reasoning}Give {count} you could give{word}.{tail} Return only a JSON object \
         {{\"responses\": [{item}, ...]}} where {what}.",
        spec.question.trim()
    )
}

/// Asks `spec`'s question of the role as `how` says, gathering `how.n` answers the way a
/// turn gathers its candidates (Table 1's calls): `direct` and `cot` ask N times
/// independently, `multi-turn` asks once and then for "another answer" in the same
/// conversation; `sequence` and the VS methods ask for k answers per call over ⌈N/k⌉ calls,
/// `vs-multi` in one conversation ("k more"). The role's seeded rule picks one from the
/// pooled answers. One answer (`direct` with N = 1) is [`super::ask`], with its fallback;
/// when no call gives a usable answer, the outcome's fallback reads the replies and the
/// role's words.
#[allow(clippy::too_many_arguments)]
pub async fn ask_through<R: Rng + ?Sized>(
    model: &dyn ChatModel,
    spec: &OutcomeSpec,
    how: &AnswerMethod,
    messages: Vec<Message>,
    seed: u64,
    temperature: Option<f32>,
    use_schema: bool,
    rng: &mut R,
) -> Result<(Extracted, Option<AnswerDistribution>), BackendError> {
    let list = how.method.asks_for_list();
    let n = how.n.max(1);
    if !list && n == 1 {
        let e = super::ask(model, spec, messages, seed, temperature, use_schema).await?;
        return Ok((e, None));
    }
    let own_words: Vec<String> =
        messages.iter().filter(|m| m.role == Role::Assistant).map(|m| m.content.clone()).collect();
    let calls = if list { n.div_ceil(how.k.max().max(1)) } else { n };
    let same_conversation = matches!(how.method, Method::MultiTurn | Method::VsMulti);
    let constraint = if list {
        OutputConstraint::Answers {
            answer: shape(&spec.kind),
            min_items: how.k.min(),
            max_items: how.k.max(),
            with_probability: how.method.is_verbalized(),
        }
    } else {
        super::constraint(&spec.kind)
    };
    let first = if list { list_question(spec, how) } else { question_text(spec) };
    let call_seeds = crate::seed::derive_named(seed, "call");
    let mut answers: Vec<(Value, Option<f64>)> = Vec::new();
    let mut refused = Vec::new();
    let mut raws = Vec::new();
    let mut usage = Usage::default();
    let mut conversation: Option<Vec<Message>> = None;
    for i in 0..calls {
        let mut sent = match conversation.take() {
            Some(c) => c,
            None => messages.clone(),
        };
        sent.push(Message::user(if i == 0 || !same_conversation {
            first.clone()
        } else {
            follow_up(spec, how)
        }));
        let request = ChatRequest {
            messages: sent.clone(),
            temperature,
            max_tokens: Some(if list {
                48 * how.k.max() as u32 + if how.method == Method::VsCot { 400 } else { 32 }
            } else {
                64
            }),
            seed: Some(if i == 0 { seed } else { crate::seed::derive(call_seeds, i as u64) }),
            constraint: use_schema.then(|| constraint.clone()),
            ..Default::default()
        };
        let response = model.chat(request).await?;
        usage += response.usage.unwrap_or_default();
        let raw = response.content;
        if list {
            let (ok, bad) = parse_answers(&raw, &spec.kind, how.method.is_verbalized());
            answers.extend(ok);
            refused.extend(bad);
        } else {
            match super::read_answer(&raw, &spec.kind) {
                Reading::Valid(v) => answers.push((v, None)),
                Reading::Refused(why) => refused.push(why),
                Reading::Nothing => {}
            }
        }
        if same_conversation {
            sent.push(Message::assistant(raw.clone()));
            conversation = Some(sent);
        }
        raws.push(raw);
    }
    answers.truncate(n);
    // Several calls' replies are kept together, one after another.
    let raw = raws.join("\n\n");
    if answers.is_empty() {
        let mut e = extract(spec, raw, &own_words, usage);
        if e.source == OutcomeSource::Missing && !refused.is_empty() {
            e.source = OutcomeSource::Invalid;
            e.reason = Some(format!("every answer was refused: {}", refused.join("; ")));
        }
        return Ok((e, None));
    }
    let candidates = to_candidates(&answers);
    let choice = select(&candidates, &how.rule, rng);
    let value = answers[choice.index].0.clone();
    let extracted =
        Extracted { value: Some(value), source: OutcomeSource::Question, raw, reason: None, usage };
    Ok((extracted, Some(AnswerDistribution { method: how.method, candidates, choice, refused })))
}

/// The follow-up in the same conversation: "another answer" (`multi-turn`) or "k more"
/// (`vs-multi`), with the format spelled out again.
fn follow_up(spec: &OutcomeSpec, how: &AnswerMethod) -> String {
    let format = question_text(spec);
    let format = format.lines().last().unwrap_or_default();
    match how.method {
        Method::VsMulti => {
            let k = how.k.max();
            let what = answer_domain(&spec.kind);
            format!(
                "Give {k} more answers you could give, different from the ones above, with your confidence in \
                 each. Return only a JSON object {{\"responses\": [{{\"answer\": ANSWER, \"confidence\": C}}, ...]}} \
                 where {what}."
            )
        }
        _ => format!("Give another answer you could give, different from your previous ones. {format}"),
    }
}

/// Valid answers with their stated probability, and why the others were refused.
fn parse_answers(
    raw: &str,
    kind: &OutcomeKind,
    with_probability: bool,
) -> (Vec<(Value, Option<f64>)>, Vec<String>) {
    let mut answers = Vec::new();
    let mut refused = Vec::new();
    let Some(items) = answer_items(raw) else { return (answers, refused) };
    for item in items {
        let (answer, probability) = match &item {
            Value::Object(o) => {
                let answer = ["answer", "value", "text", "response"].iter().find_map(|k| o.get(*k)).cloned();
                let p = ["probability", "confidence", "prob", "p", "likelihood"]
                    .iter()
                    .find_map(|k| o.get(*k))
                    .and_then(probability_value);
                (answer, p)
            }
            other => (Some(other.clone()), None),
        };
        let Some(answer) = answer else { continue };
        match check_value(&answer, kind) {
            Reading::Valid(v) => answers.push((v, probability.filter(|_| with_probability))),
            Reading::Refused(why) => refused.push(why),
            Reading::Nothing => refused.push(format!("`{answer}` is not an answer of this outcome")),
        }
    }
    (answers, refused)
}

/// The list inside a reply: `{"responses": [...]}` (or any key holding a list), or a bare list.
fn answer_items(raw: &str) -> Option<Vec<Value>> {
    let start = raw.find(['{', '['])?;
    let end = raw.rfind(['}', ']'])?;
    let v: Value = serde_json::from_str(raw.get(start..=end)?).ok()?;
    match v {
        Value::Array(a) => Some(a),
        Value::Object(o) => o
            .get("responses")
            .or_else(|| o.values().find(|v| v.is_array()))
            .and_then(Value::as_array)
            .cloned(),
        _ => None,
    }
}

/// A stated probability: a number, a numeric string, or a percentage.
fn probability_value(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let t = s.trim();
            match t.strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
                None => t.parse::<f64>().ok()?,
            }
        }
        _ => return None,
    };
    (x.is_finite() && x >= 0.0).then_some(x)
}

/// Candidates for the selection rule: probabilities normalised to sum to 1 (uniform when
/// none was stated or they sum to 0). A list stated in percent (some value above 1, none
/// above 100) is read as percent for the raw probabilities, all values alike. An answer
/// whose probability is missing weighs as the mean stated one, so it can still be drawn.
fn to_candidates(answers: &[(Value, Option<f64>)]) -> Vec<Candidate> {
    let stated: Vec<f64> = answers.iter().filter_map(|a| a.1).collect();
    let percent = stated.iter().any(|p| *p > 1.0) && stated.iter().all(|p| *p <= 100.0);
    let scale = if percent { 0.01 } else { 1.0 };
    let answers: Vec<(Value, Option<f64>)> =
        answers.iter().map(|(v, p)| (v.clone(), p.map(|p| p * scale))).collect();
    let given: Vec<f64> = answers.iter().filter_map(|a| a.1).collect();
    let fill = if given.is_empty() { 1.0 } else { given.iter().sum::<f64>() / given.len() as f64 };
    let weight = |p: &Option<f64>| p.unwrap_or(fill);
    let sum: f64 = answers.iter().map(|a| weight(&a.1)).sum();
    let n = answers.len() as f64;
    answers
        .iter()
        .map(|(v, p)| Candidate {
            text: v.to_string(),
            probability: if sum > 0.0 { weight(p) / sum } else { 1.0 / n },
            raw_probability: *p,
            repairs: Vec::new(),
        })
        .collect()
}

/// The `stated` source: what the role said in the dialogue, read by one constrained call of
/// `model` over the role's own messages. `null` (nothing stated) is missing; a value outside
/// the range is invalid.
pub async fn ask_stated(
    model: &dyn ChatModel,
    spec: &OutcomeSpec,
    role_name: &str,
    own_words: &[String],
    seed: u64,
    use_schema: bool,
) -> Result<Extracted, BackendError> {
    let said: Vec<String> = own_words.iter().map(|w| format!("- {}", w.trim())).collect();
    let prompt = format!(
        "Here is everything {role_name} wrote in a conversation, in order:\n{}\n\n\
         Read what {role_name} stated, not what they were asked. The question, as it was put to \
         {role_name}: {}\n\nIf {role_name} stated no answer, reply {{\"answer\": null}}.\n\n{}",
        said.join("\n"),
        spec.question.trim(),
        question_text(spec).lines().last().unwrap_or_default()
    );
    let request = ChatRequest {
        messages: vec![
            Message::system("You extract facts from conversations, exactly as stated."),
            Message::user(prompt),
        ],
        temperature: Some(0.0),
        max_tokens: Some(32),
        seed: Some(seed),
        constraint: use_schema.then(|| OutputConstraint::Stated { answer: shape(&spec.kind) }),
        ..Default::default()
    };
    let response = model.chat(request).await?;
    let usage: Usage = response.usage.unwrap_or_default();
    let raw = response.content;
    let stated_null = super::json_answer(&raw).is_some_and(|v| v.is_null());
    let reading = if stated_null { Reading::Nothing } else { super::read_answer(&raw, &spec.kind) };
    let (value, source, reason) = match reading {
        Reading::Valid(v) => (Some(v), OutcomeSource::Stated, None),
        Reading::Refused(why) => (None, OutcomeSource::Invalid, Some(format!("stated: {why}"))),
        Reading::Nothing => (None, OutcomeSource::Missing, None),
    };
    Ok(Extracted { value, source, raw, reason, usage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stated_weights_are_normalised_alike_and_percent_lists_read_as_percent() {
        let v = |x: f64| Value::from(x);
        // Weights 1..5 (as a small model wrote them): each keeps its share of the sum.
        let c = to_candidates(&[(v(0.0), Some(1.0)), (v(1.0), Some(2.0)), (v(2.0), Some(5.0))]);
        assert!((c[0].probability - 1.0 / 8.0).abs() < 1e-12);
        assert!((c[2].probability - 5.0 / 8.0).abs() < 1e-12);
        assert_eq!(c[2].raw_probability, Some(0.05));
        // No probabilities: uniform.
        let c = to_candidates(&[(v(0.0), None), (v(1.0), None)]);
        assert_eq!((c[0].probability, c[1].probability), (0.5, 0.5));
        assert_eq!(probability_value(&Value::from("40%")), Some(0.4));
    }

    #[test]
    fn answers_outside_the_outcome_are_refused_with_a_reason() {
        let kind = OutcomeKind::Number { min: 0.0, max: 2.0 };
        let (ok, refused) = parse_answers(
            r#"Sure: {"responses": [{"answer": "1.5", "confidence": 0.5}, {"answer": 20, "probability": 0.5}, {"value": 0}]}"#,
            &kind,
            true,
        );
        assert_eq!(ok, [(Value::from(1.5), Some(0.5)), (Value::from(0.0), None)]);
        assert_eq!(refused, ["20 is outside [0, 2]"]);
    }
}
