//! The generation loop against a scripted backend: the exact requests sent per method, the
//! single retry on an unparseable reply, and the call counts of `generate_n`.

use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{BackendError, ChatRequest, Message, Role};
use vsim::seed;
use vsim::vs::OutputConstraint;
use vsim::vs::{
    GenerateError, GenerateRequest, Generator, ItemShape, KSpec, Method, PromptTemplates, Repair,
};

fn base_messages() -> Vec<Message> {
    vec![
        Message::system("You are Ana, 34, a nurse."),
        Message::user("Would you donate to Save the Children?"),
    ]
}

fn request(method: Method) -> GenerateRequest {
    GenerateRequest {
        messages: base_messages(),
        method,
        k: KSpec::Fixed { k: 3 },
        tau: None,
        temperature: Some(0.9),
        top_p: Some(0.95),
        max_tokens: Some(512),
        seed: 42,
        use_schema: true,
        shape: ItemShape::Text,
    }
}

fn instruction(method: Method, k: KSpec, tau: Option<f64>) -> String {
    PromptTemplates::default().instruction(method, k, tau).unwrap()
}

/// The base conversation with `instr` appended to the last (user) message.
fn expected_messages(instr: &str) -> Vec<Message> {
    let mut m = base_messages();
    m[1].content = format!("Would you donate to Save the Children?\n\n{instr}");
    m
}

const VS_REPLY: &str = r#"{"responses": [{"text": "Yes, $1.", "probability": 0.5}, {"text": "Maybe.", "probability": 0.3}, {"text": "No.", "probability": 0.2}]}"#;

fn assert_params(req: &ChatRequest, seed: u64) {
    assert_eq!(req.temperature, Some(0.9));
    assert_eq!(req.top_p, Some(0.95));
    assert_eq!(req.max_tokens, Some(512));
    assert_eq!(req.seed, Some(seed));
}

#[tokio::test]
async fn direct_appends_the_instruction_and_sends_no_schema() {
    let model = ScriptedModel::from_replies(["  \"Yes, I'd give a dollar.\"\n"]);
    let gen = Generator::default().generate(&model, &request(Method::Direct)).await.unwrap();
    let sent = model.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].messages,
        expected_messages(&instruction(Method::Direct, KSpec::Fixed { k: 3 }, None))
    );
    assert_eq!(OutputConstraint::of(&sent[0]), None);
    assert_params(&sent[0], 42);
    assert_eq!(gen.candidates.len(), 1);
    assert_eq!(gen.candidates[0].text, "Yes, I'd give a dollar.");
    assert_eq!(gen.candidates[0].probability, 1.0);
    assert_eq!(gen.candidates[0].repairs, vec![Repair::QuotesStripped]);
    assert_eq!(gen.calls.len(), 1);
    assert_eq!(gen.calls[0].seed, 42);
    assert_eq!(gen.calls[0].parse_error, None);
    assert_eq!(Some(gen.usage), gen.calls[0].usage);
}

#[tokio::test]
async fn direct_unwraps_a_json_reply() {
    let model = ScriptedModel::from_replies([r#"{"response": "Sure thing."}"#]);
    let gen = Generator::default().generate(&model, &request(Method::Direct)).await.unwrap();
    assert_eq!(gen.candidates[0].text, "Sure thing.");
    assert_eq!(gen.candidates[0].repairs, vec![Repair::UnwrappedJson]);
}

#[tokio::test]
async fn vs_standard_after_an_assistant_turn_adds_a_user_message_and_the_schema() {
    let model = ScriptedModel::from_replies([VS_REPLY]);
    let mut req = request(Method::VsStandard);
    req.messages.push(Message::assistant("Hello! How can I help?"));
    let gen = Generator::default().generate(&model, &req).await.unwrap();
    let sent = &model.requests()[0];
    let mut expected = req.messages.clone();
    expected.push(Message::user(instruction(Method::VsStandard, KSpec::Fixed { k: 3 }, None)));
    assert_eq!(sent.messages, expected);
    assert_eq!(
        OutputConstraint::of(sent),
        Some(OutputConstraint::Candidates {
            min_items: 3,
            max_items: 3,
            with_probability: true,
            with_reasoning: false
        })
    );
    assert_params(sent, 42);
    let texts: Vec<_> = gen.candidates.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["Yes, $1.", "Maybe.", "No."]);
    let ps: Vec<_> = gen.candidates.iter().map(|c| c.probability).collect();
    assert_eq!(ps, [0.5, 0.3, 0.2]);
}

#[tokio::test]
async fn vs_standard_instruction_states_k_and_tau() {
    let model = ScriptedModel::from_replies([VS_REPLY]);
    let mut req = request(Method::VsStandard);
    req.tau = Some(0.1);
    Generator::default().generate(&model, &req).await.unwrap();
    let content = &model.requests()[0].messages[1].content;
    assert!(content.contains("Generate 3 responses"), "{content}");
    assert!(content.contains("probability below 0.1"), "{content}");
    assert!(content.contains("\"responses\""), "{content}");
}

#[tokio::test]
async fn model_decided_k_asks_for_all_plausible_responses() {
    let model = ScriptedModel::from_replies([VS_REPLY]);
    let mut req = request(Method::VsStandard);
    req.k = KSpec::ModelDecided { max: 8 };
    Generator::default().generate(&model, &req).await.unwrap();
    let sent = &model.requests()[0];
    assert!(
        sent.messages[1].content.contains("all plausible responses (at most 8)"),
        "{}",
        sent.messages[1].content
    );
    assert_eq!(
        OutputConstraint::of(sent),
        Some(OutputConstraint::Candidates {
            min_items: 1,
            max_items: 8,
            with_probability: true,
            with_reasoning: false
        })
    );
}

#[tokio::test]
async fn vs_cot_sends_reasoning_schema_and_keeps_reasoning() {
    let reply = r#"{"reasoning": "She is a nurse; kids matter to her.", "responses": [{"text": "Yes.", "probability": 0.7}, {"text": "No.", "probability": 0.3}]}"#;
    let model = ScriptedModel::from_replies([reply]);
    let gen = Generator::default().generate(&model, &request(Method::VsCot)).await.unwrap();
    let sent = &model.requests()[0];
    assert_eq!(sent.messages, expected_messages(&instruction(Method::VsCot, KSpec::Fixed { k: 3 }, None)));
    assert_eq!(
        OutputConstraint::of(sent),
        Some(OutputConstraint::Candidates {
            min_items: 3,
            max_items: 3,
            with_probability: true,
            with_reasoning: true
        })
    );
    assert_eq!(gen.reasoning.as_deref(), Some("She is a nurse; kids matter to her."));
    assert_eq!(gen.candidates.len(), 2);
}

#[tokio::test]
async fn sequence_sends_schema_without_probability_and_gives_uniform_candidates() {
    let reply = r#"{"responses": [{"text": "A"}, {"text": "B"}, {"text": "C"}]}"#;
    let model = ScriptedModel::from_replies([reply]);
    let gen = Generator::default().generate(&model, &request(Method::Sequence)).await.unwrap();
    let sent = &model.requests()[0];
    assert_eq!(sent.messages, expected_messages(&instruction(Method::Sequence, KSpec::Fixed { k: 3 }, None)));
    assert_eq!(
        OutputConstraint::of(sent),
        Some(OutputConstraint::Candidates {
            min_items: 3,
            max_items: 3,
            with_probability: false,
            with_reasoning: false
        })
    );
    for c in &gen.candidates {
        assert!((c.probability - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.raw_probability, None);
        assert!(c.repairs.is_empty(), "{:?}", c.repairs);
    }
}

#[tokio::test]
async fn cot_sends_its_schema_and_extracts_the_final_reply_and_reasoning() {
    let reply = r#"{"reasoning": "Step by step: she cares.", "response": "I'll give $1."}"#;
    let model = ScriptedModel::from_replies([reply]);
    let gen = Generator::default().generate(&model, &request(Method::Cot)).await.unwrap();
    let sent = &model.requests()[0];
    assert_eq!(sent.messages, expected_messages(&instruction(Method::Cot, KSpec::Fixed { k: 3 }, None)));
    assert_eq!(OutputConstraint::of(sent), Some(OutputConstraint::Reasoned { answer: None }));
    assert_eq!(gen.candidates[0].text, "I'll give $1.");
    assert_eq!(gen.reasoning.as_deref(), Some("Step by step: she cares."));
}

#[tokio::test]
async fn schema_off_sends_no_constraint() {
    let model = ScriptedModel::from_replies([VS_REPLY]);
    let mut req = request(Method::VsStandard);
    req.use_schema = false;
    Generator::default().generate(&model, &req).await.unwrap();
    assert_eq!(OutputConstraint::of(&model.requests()[0]), None);
}

#[tokio::test]
async fn unparseable_reply_is_retried_once_with_the_error() {
    let bad = "I'm sorry, I can't produce that.";
    let model = ScriptedModel::from_replies([bad, VS_REPLY]);
    let gen = Generator::default().generate(&model, &request(Method::VsStandard)).await.unwrap();
    let sent = model.requests();
    assert_eq!(sent.len(), 2);
    let first = expected_messages(&instruction(Method::VsStandard, KSpec::Fixed { k: 3 }, None));
    assert_eq!(sent[0].messages, first);
    assert_eq!(sent[1].messages.len(), first.len() + 2);
    assert_eq!(sent[1].messages[..first.len()], first[..]);
    assert_eq!(sent[1].messages[first.len()], Message::assistant(bad));
    let retry = &sent[1].messages[first.len() + 1];
    assert_eq!(retry.role, Role::User);
    let error = gen.calls[0].parse_error.clone().expect("first call recorded its parse error");
    assert!(retry.content.contains(&error), "{} / {error}", retry.content);
    assert!(retry.content.contains("JSON"), "{}", retry.content);
    assert_eq!(sent[1].seed, Some(seed::derive(42, 1)));
    assert_eq!(OutputConstraint::of(&sent[1]), OutputConstraint::of(&sent[0]));
    assert_eq!(gen.calls.len(), 2);
    assert_eq!(gen.calls[0].raw, bad);
    assert_eq!(gen.calls[1].parse_error, None);
    assert_eq!(gen.candidates.len(), 3);
    let total: u64 = gen.calls.iter().map(|c| c.usage.unwrap().total()).sum();
    assert_eq!(gen.usage.total(), total);
}

#[tokio::test]
async fn two_unparseable_replies_fail() {
    let model = ScriptedModel::from_replies(["nope", "still nope"]);
    let err = Generator::default().generate(&model, &request(Method::VsStandard)).await.unwrap_err();
    let GenerateError::Unparseable { calls, .. } = &err else { panic!("{err}") };
    let raw: Vec<&str> = calls.iter().map(|c| c.raw.as_str()).collect();
    assert_eq!(raw, ["nope", "still nope"]);
    assert!(calls.iter().all(|c| c.parse_error.is_some()));
    assert_eq!(err.calls(), calls.as_slice());
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test]
async fn empty_direct_reply_is_retried() {
    let model = ScriptedModel::from_replies(["   ", "Okay."]);
    let gen = Generator::default().generate(&model, &request(Method::Direct)).await.unwrap();
    assert_eq!(gen.candidates[0].text, "Okay.");
    let retry = model.requests()[1].messages.last().unwrap().content.clone();
    assert!(retry.contains("reply is empty"), "{retry}");
}

#[tokio::test]
async fn backend_errors_are_passed_through() {
    let model = ScriptedModel::from_results([Err(BackendError::Scripted("down".into()))]);
    let err = Generator::default().generate(&model, &request(Method::Direct)).await.unwrap_err();
    assert!(matches!(err, GenerateError::Backend(_)), "{err}");
}

#[tokio::test]
async fn broken_user_template_is_an_error() {
    let templates: PromptTemplates = toml::from_str("vs_standard = \"Generate {{ k \"").unwrap();
    assert!(templates.validate().is_err());
    let model = ScriptedModel::from_replies([VS_REPLY]);
    let err = Generator::new(templates).generate(&model, &request(Method::VsStandard)).await.unwrap_err();
    assert!(matches!(err, GenerateError::Template(_)), "{err}");
    assert!(err.to_string().contains("vs_standard"), "{err}");
    assert!(model.requests().is_empty());
    let typo: PromptTemplates = toml::from_str("direct = \"Reply in {{ kk }} words\"").unwrap();
    assert!(typo.validate().is_err());
}

#[tokio::test]
async fn user_templates_override_the_defaults() {
    let templates: PromptTemplates = toml::from_str(
        "vs_standard = \"Give {{ k }} answers{% if tau is not none %} under {{ tau }}{% endif %}.\"",
    )
    .unwrap();
    templates.validate().unwrap();
    PromptTemplates::default().validate().unwrap();
    assert_eq!(templates.direct, PromptTemplates::default().direct);
    let model = ScriptedModel::from_replies([VS_REPLY]);
    let mut req = request(Method::VsStandard);
    req.tau = Some(0.2);
    Generator::new(templates).generate(&model, &req).await.unwrap();
    assert_eq!(
        model.requests()[0].messages[1].content,
        "Would you donate to Save the Children?\n\nGive 3 answers under 0.2."
    );
    assert!(toml::from_str::<PromptTemplates>("vs_standart = \"x\"").is_err());
}

// ---------------------------------------------------------------------------------------
// generate_n

/// Replies by method: one line for single-reply methods, k distinct items for list methods;
/// texts carry the number of messages so that calls are told apart.
fn echo_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        let tag = req.messages.len();
        let seed = req.seed.unwrap_or(0) % 1000;
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Candidates { max_items, .. }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|i| {
                        format!(
                            r#"{{"text": "m{tag}-s{seed}-{i}", "probability": {}}}"#,
                            1.0 / *max_items as f64
                        )
                    })
                    .collect();
                format!(r#"{{"reasoning": "r{tag}", "responses": [{}]}}"#, items.join(", "))
            }
            _ if req.messages.last().is_some_and(|m| m.content.contains("\"reasoning\"")) => {
                format!(r#"{{"reasoning": "think {tag}", "response": "m{tag}-s{seed}"}}"#)
            }
            _ => format!("m{tag}-s{seed}"),
        })
    })
}

fn call_seed(i: u64) -> u64 {
    if i == 0 {
        42
    } else {
        seed::derive(seed::derive_named(42, "call"), i)
    }
}

#[tokio::test]
async fn generate_n_call_counts_follow_the_paper() {
    // (method, n, k, expected calls)
    let cases = [
        (Method::Direct, 4, 3, 4),
        (Method::Cot, 4, 3, 4),
        (Method::Sequence, 7, 3, 3),
        (Method::VsStandard, 7, 3, 3),
        (Method::VsCot, 6, 3, 2),
        (Method::MultiTurn, 4, 3, 4),
        (Method::VsMulti, 7, 3, 3),
    ];
    for (method, n, k, calls) in cases {
        let model = echo_model();
        let mut req = request(method);
        req.k = KSpec::Fixed { k };
        let gen = Generator::default().generate_n(&model, &req, n).await.unwrap();
        let sent = model.requests();
        assert_eq!(sent.len(), calls, "{method}");
        assert_eq!(gen.calls.len(), calls, "{method}");
        assert_eq!(gen.candidates.len(), n, "{method}");
        let seeds: Vec<u64> = sent.iter().map(|r| r.seed.unwrap()).collect();
        let expected: Vec<u64> = (0..calls as u64).map(call_seed).collect();
        assert_eq!(seeds, expected, "{method}");
        let sum: f64 = gen.candidates.iter().map(|c| c.probability).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{method}: {sum}");
        for c in &gen.candidates {
            assert!((c.probability - 1.0 / n as f64).abs() < 1e-12, "{method}: {c:?}");
        }
    }
}

#[tokio::test]
async fn independent_calls_resend_the_same_prompt() {
    let model = echo_model();
    let gen = Generator::default().generate_n(&model, &request(Method::VsStandard), 9).await.unwrap();
    let sent = model.requests();
    assert_eq!(sent.len(), 3);
    for r in &sent {
        assert_eq!(r.messages, sent[0].messages);
    }
    // Different seeds, different candidates: nothing merged across calls.
    let texts: Vec<_> = gen.candidates.iter().map(|c| c.text.clone()).collect();
    let mut unique = texts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 9);
}

#[tokio::test]
async fn multi_turn_asks_for_another_in_one_conversation() {
    let model = echo_model();
    let gen = Generator::default().generate_n(&model, &request(Method::MultiTurn), 3).await.unwrap();
    let sent = model.requests();
    let templates = PromptTemplates::default();
    let k = KSpec::Fixed { k: 3 };
    let another = templates.follow_up(Method::MultiTurn, k, None).unwrap();
    let mut expected = expected_messages(&instruction(Method::MultiTurn, k, None));
    assert_eq!(sent[0].messages, expected);
    expected.push(Message::assistant(gen.calls[0].raw.clone()));
    expected.push(Message::user(another.clone()));
    assert_eq!(sent[1].messages, expected);
    expected.push(Message::assistant(gen.calls[1].raw.clone()));
    expected.push(Message::user(another));
    assert_eq!(sent[2].messages, expected);
    let texts: Vec<_> = gen.candidates.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, [gen.calls[0].raw.as_str(), gen.calls[1].raw.as_str(), gen.calls[2].raw.as_str()]);
}

#[tokio::test]
async fn vs_multi_asks_for_k_more_in_one_conversation() {
    let model = echo_model();
    let gen = Generator::default().generate_n(&model, &request(Method::VsMulti), 6).await.unwrap();
    let sent = model.requests();
    assert_eq!(sent.len(), 2);
    let more = PromptTemplates::default().follow_up(Method::VsMulti, KSpec::Fixed { k: 3 }, None).unwrap();
    assert!(more.contains("3 more responses"), "{more}");
    let mut expected = sent[0].messages.clone();
    expected.push(Message::assistant(gen.calls[0].raw.clone()));
    expected.push(Message::user(more));
    assert_eq!(sent[1].messages, expected);
    assert!(sent.iter().all(|r| OutputConstraint::of(r).is_some()));
    assert_eq!(gen.candidates.len(), 6);
}

#[tokio::test]
async fn generate_n_cuts_the_pool_and_joins_reasoning() {
    let model = echo_model();
    let gen = Generator::default().generate_n(&model, &request(Method::VsCot), 4).await.unwrap();
    assert_eq!(gen.calls.len(), 2);
    assert_eq!(gen.candidates.len(), 4);
    assert_eq!(gen.reasoning.as_deref(), Some("r2\n\nr2"));
    let gen = Generator::default().generate_n(&model, &request(Method::Direct), 0).await.unwrap();
    assert!(gen.candidates.is_empty() && gen.calls.is_empty());
}

#[tokio::test]
async fn generate_n_of_at_most_k_equals_generate() {
    let a = Generator::default().generate(&echo_model(), &request(Method::VsStandard)).await.unwrap();
    let b = Generator::default().generate_n(&echo_model(), &request(Method::VsStandard), 3).await.unwrap();
    assert_eq!(a.candidates, b.candidates);
}
