//! Outcome questions answered through the method under test. The role gathers answers
//! through the same engine as its turns ([`Generator::generate_n`], the answer's type as
//! the item shape), and its own seeded selection rule picks one, so the measured quantity
//! goes through the same sampling as the role's turns; the whole distribution is recorded.
//! The `stated` source reads what the role said in the dialogue with a constrained
//! extractor call instead.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{extract, question_text, Extracted, OutcomeSource, OutcomeSpec, Reading};
use crate::backend::{BackendError, ChatModel, ChatRequest, Message, Role, Usage};
use crate::vs::OutputConstraint;
use crate::vs::{
    select, Candidate, Checked, Choice, GenerateError, GenerateRequest, Generation, Generator, ItemShape,
    KSpec, Method, ParseError, SelectionRule,
};

/// How a role answers an outcome question: its method (or the outcome's own), k, τ and rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AnswerMethod {
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

/// Asks `spec`'s question of the role as `how` says, through the one gathering engine
/// ([`Generator::generate_n`]): `how.n` answers with Table 1's calls, the method's own
/// templates followed by what one answer may be, the answer's constraint, one parser, one
/// probability repair, one duplicate rule, and one retry in the same conversation when a
/// reply holds no usable answer (every answer out of range, say), with the reason. The
/// role's seeded rule picks one from the pooled answers. When no call gives a usable
/// answer, the outcome's fallback reads the replies and the role's words; answers that
/// were refused make the outcome invalid, never zero. The whole distribution is kept when
/// the method gathers more than one answer.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn ask_through<R: Rng + ?Sized>(
    generator: &Generator,
    model: &dyn ChatModel,
    spec: &OutcomeSpec,
    how: &AnswerMethod,
    mut messages: Vec<Message>,
    seed: u64,
    temperature: Option<f32>,
    use_schema: bool,
    rng: &mut R,
) -> Result<(Extracted, Option<AnswerDistribution>), GenerateError> {
    let n = how.n.max(1);
    let own_words: Vec<String> =
        messages.iter().filter(|m| m.role == Role::Assistant).map(|m| m.content.clone()).collect();
    messages.push(Message::user(spec.question.trim()));
    let max_tokens = match how.method {
        m if m.asks_for_list() => 48 * how.k.max() as u32 + if m.reasons_first() { 400 } else { 32 },
        m if m.reasons_first() => 400,
        _ => 64,
    };
    let item = ItemShape::Answer(spec.kind.clone());
    let req = GenerateRequest {
        messages,
        method: how.method,
        k: how.k,
        tau: how.tau,
        temperature,
        top_p: None,
        max_tokens: Some(max_tokens),
        seed,
        use_schema,
        shape: item.clone(),
    };
    let (gen, failure) = match generator.generate_n(model, &req, n).await {
        Ok(gen) => (gen, None),
        Err(GenerateError::Unparseable { error, calls }) => (Generation::without_items(calls), Some(error)),
        Err(e) => return Err(e),
    };
    // Several calls' replies are kept together, one after another.
    let raw = gen.calls.iter().map(|c| c.raw.as_str()).collect::<Vec<_>>().join("\n\n");
    if gen.candidates.is_empty() {
        let mut e = extract(spec, raw, &own_words, gen.usage);
        if e.source == OutcomeSource::Missing {
            if let Some(ParseError::NoAnswer(why)) = failure {
                e.source = OutcomeSource::Invalid;
                e.reason = Some(format!("every answer was refused: {why}"));
            }
        }
        return Ok((e, None));
    }
    let choice = select(&gen.candidates, &how.rule, rng);
    let value = match item.check(&gen.candidates[choice.index].text) {
        Checked::Valid { value, .. } => Some(value),
        _ => None,
    };
    let extracted = Extracted { value, source: OutcomeSource::Question, raw, reason: None, usage: gen.usage };
    let gathered = how.method.asks_for_list() || n > 1;
    let distribution = gathered.then_some(AnswerDistribution {
        method: how.method,
        candidates: gen.candidates,
        choice,
        refused: gen.refused,
    });
    Ok((extracted, distribution))
}

/// The `stated` source: what the role said in the dialogue, read by one constrained call of
/// `model` over the role's own messages. `null` (nothing stated) is missing; a value outside
/// the range is invalid.
pub(crate) async fn ask_stated(
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
        output_schema: use_schema
            .then(|| OutputConstraint::Stated { answer: spec.kind.clone() }.output_schema()),
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
