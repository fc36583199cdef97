//! The candidate parser against malformed replies as real models emit them, and a property
//! test that no input makes it panic or yields an invalid distribution.

use proptest::prelude::*;
use vsim::vs::parse::{parse_candidates_with, parse_cot, parse_single, ParseOptions};
use vsim::vs::{parse_candidates, KSpec, ParseError, ParsedReply, Repair};

const TOL: f64 = 1e-12;

fn parse(raw: &str) -> ParsedReply {
    match parse_candidates(raw, None) {
        Ok(r) => r,
        Err(e) => panic!("parse failed: {e}\nreply: {raw}"),
    }
}

fn parse_k(raw: &str, k: KSpec) -> ParsedReply {
    match parse_candidates(raw, Some(k)) {
        Ok(r) => r,
        Err(e) => panic!("parse failed: {e}\nreply: {raw}"),
    }
}

/// Asserts texts, probabilities, raw probabilities and repairs, candidate by candidate.
fn check(reply: &ParsedReply, expected: &[(&str, f64, Option<f64>, Vec<Repair>)]) {
    let got: Vec<_> = reply.candidates.iter().map(|c| c.text.as_str()).collect();
    let want: Vec<_> = expected.iter().map(|e| e.0).collect();
    assert_eq!(got, want, "texts");
    for (c, (text, p, raw, repairs)) in reply.candidates.iter().zip(expected) {
        assert!((c.probability - p).abs() < TOL, "{text}: probability {} != {p}", c.probability);
        match (c.raw_probability, raw) {
            (Some(a), Some(b)) => assert!((a - b).abs() < TOL, "{text}: raw {a} != {b}"),
            (a, b) => assert_eq!(a, *b, "{text}: raw"),
        }
        assert_eq!(&c.repairs, repairs, "{text}: repairs");
    }
}

const CLEAN: &str = r#"{"responses": [{"text": "Yes, gladly.", "probability": 0.6}, {"text": "No, thanks.", "probability": 0.4}]}"#;

fn clean_with(repairs: Vec<Repair>) -> Vec<(&'static str, f64, Option<f64>, Vec<Repair>)> {
    vec![("Yes, gladly.", 0.6, Some(0.6), repairs.clone()), ("No, thanks.", 0.4, Some(0.4), repairs)]
}

#[test]
fn well_formed_reply_has_no_repairs() {
    check(&parse(CLEAN), &clean_with(vec![]));
}

#[test]
fn json_code_fence() {
    let raw = format!("```json\n{CLEAN}\n```");
    check(&parse(&raw), &clean_with(vec![Repair::CodeFence]));
}

#[test]
fn code_fence_without_language_and_prose_outside() {
    let raw = format!("Here are my responses:\n\n```\n{CLEAN}\n```\n\nLet me know if you need more.");
    check(&parse(&raw), &clean_with(vec![Repair::CodeFence]));
}

#[test]
fn json_surrounded_by_prose() {
    let raw = format!("Sure! Here you go: {CLEAN} I hope this helps.");
    check(&parse(&raw), &clean_with(vec![Repair::SurroundingText]));
}

#[test]
fn example_object_before_the_answer_is_skipped() {
    let raw = format!("The format is {{\"example\": true}}. My answer: {CLEAN}");
    check(&parse(&raw), &clean_with(vec![Repair::SurroundingText]));
}

#[test]
fn stray_bracket_and_quote_in_prose_before_the_answer() {
    let raw = format!("Options {{\" below: {CLEAN}");
    check(&parse(&raw), &clean_with(vec![Repair::SurroundingText]));
}

#[test]
fn broken_list_is_not_read_as_one_of_its_items() {
    let raw = r#"{"responses": [{"text": "A", "probability": 0.5}, {"text" "B", "probability": 0.5}]}"#;
    assert!(matches!(parse_candidates(raw, None), Err(ParseError::InvalidJson(_))));
}

#[test]
fn bare_top_level_array() {
    let raw =
        r#"[{"text": "Yes, gladly.", "probability": 0.6}, {"text": "No, thanks.", "probability": 0.4}]"#;
    check(&parse(raw), &clean_with(vec![Repair::BareArray]));
}

#[test]
fn object_wrapped_in_an_array() {
    let raw = format!("[{CLEAN}]");
    check(&parse(&raw), &clean_with(vec![Repair::WrappedInArray]));
    // Unclosed, after prose.
    let raw = format!("Result: [ {CLEAN}");
    check(
        &parse(&raw),
        &clean_with(vec![Repair::SurroundingText, Repair::ClosedTruncated, Repair::WrappedInArray]),
    );
}

#[test]
fn alternative_list_keys() {
    for key in ["candidates", "replies", "items", "answers"] {
        let raw = CLEAN.replace("responses", key);
        check(&parse(&raw), &clean_with(vec![Repair::ListKey { key: key.into() }]));
    }
}

#[test]
fn unknown_list_key_holding_objects() {
    let raw = CLEAN.replace("responses", "generated");
    check(&parse(&raw), &clean_with(vec![Repair::ListKey { key: "generated".into() }]));
}

#[test]
fn probabilities_as_strings() {
    let raw = r#"{"responses": [{"text": "Yes, gladly.", "probability": "0.6"}, {"text": "No, thanks.", "probability": "0.4"}]}"#;
    check(
        &parse(raw),
        &[
            ("Yes, gladly.", 0.6, Some(0.6), vec![Repair::ProbabilityString { value: "0.6".into() }]),
            ("No, thanks.", 0.4, Some(0.4), vec![Repair::ProbabilityString { value: "0.4".into() }]),
        ],
    );
}

#[test]
fn probabilities_as_percent_numbers() {
    let raw = r#"{"responses": [{"text": "Yes, gladly.", "probability": 60}, {"text": "No, thanks.", "probability": 40}]}"#;
    check(
        &parse(raw),
        &[
            ("Yes, gladly.", 0.6, Some(0.6), vec![Repair::PercentScaled { stated: 60.0 }]),
            ("No, thanks.", 0.4, Some(0.4), vec![Repair::PercentScaled { stated: 40.0 }]),
        ],
    );
}

#[test]
fn probabilities_as_percent_strings() {
    let raw = r#"{"responses": [{"text": "Yes, gladly.", "probability": "60%"}, {"text": "No, thanks.", "probability": "40 %"}]}"#;
    check(
        &parse(raw),
        &[
            (
                "Yes, gladly.",
                0.6,
                Some(0.6),
                vec![
                    Repair::ProbabilityString { value: "60%".into() },
                    Repair::PercentScaled { stated: 60.0 },
                ],
            ),
            (
                "No, thanks.",
                0.4,
                Some(0.4),
                vec![
                    Repair::ProbabilityString { value: "40 %".into() },
                    Repair::PercentScaled { stated: 40.0 },
                ],
            ),
        ],
    );
}

#[test]
fn percent_sign_on_one_value_only() {
    let raw = r#"{"responses": [{"text": "Yes, gladly.", "probability": "60%"}, {"text": "No, thanks.", "probability": 0.4}]}"#;
    check(
        &parse(raw),
        &[
            (
                "Yes, gladly.",
                0.6,
                Some(0.6),
                vec![
                    Repair::ProbabilityString { value: "60%".into() },
                    Repair::PercentScaled { stated: 60.0 },
                ],
            ),
            ("No, thanks.", 0.4, Some(0.4), vec![]),
        ],
    );
}

#[test]
fn bare_percent_literals() {
    let raw = r#"{"responses": [{"text": "Yes, gladly.", "probability": 60%}, {"text": "No, thanks.", "probability": 40%}]}"#;
    check(
        &parse(raw),
        &[
            (
                "Yes, gladly.",
                0.6,
                Some(0.6),
                vec![
                    Repair::BarePercent,
                    Repair::ProbabilityString { value: "60%".into() },
                    Repair::PercentScaled { stated: 60.0 },
                ],
            ),
            (
                "No, thanks.",
                0.4,
                Some(0.4),
                vec![
                    Repair::BarePercent,
                    Repair::ProbabilityString { value: "40%".into() },
                    Repair::PercentScaled { stated: 40.0 },
                ],
            ),
        ],
    );
}

#[test]
fn all_probabilities_missing_gives_uniform() {
    let raw = r#"{"responses": [{"text": "A"}, {"text": "B"}, {"text": "C"}]}"#;
    let r = vec![Repair::Uniform, Repair::MissingProbability];
    check(
        &parse(raw),
        &[("A", 1.0 / 3.0, None, r.clone()), ("B", 1.0 / 3.0, None, r.clone()), ("C", 1.0 / 3.0, None, r)],
    );
}

#[test]
fn all_probabilities_zero_gives_uniform() {
    let raw = r#"{"responses": [{"text": "A", "probability": 0}, {"text": "B", "probability": 0.0}]}"#;
    check(
        &parse(raw),
        &[("A", 0.5, Some(0.0), vec![Repair::Uniform]), ("B", 0.5, Some(0.0), vec![Repair::Uniform])],
    );
}

#[test]
fn one_missing_probability_gets_the_leftover_mass() {
    let raw = r#"{"responses": [{"text": "A", "probability": 0.5}, {"text": "B", "probability": 0.3}, {"text": "C"}]}"#;
    check(
        &parse(raw),
        &[
            ("A", 0.5, Some(0.5), vec![]),
            ("B", 0.3, Some(0.3), vec![]),
            ("C", 0.2, None, vec![Repair::MissingProbability]),
        ],
    );
}

#[test]
fn missing_probability_when_the_others_sum_to_one_gets_their_mean() {
    let raw = r#"{"responses": [{"text": "A", "probability": 0.6}, {"text": "B", "probability": 0.6}, {"text": "C", "probability": null}]}"#;
    let reply = parse(raw);
    let sum = match reply.candidates[0].repairs.first() {
        Some(Repair::Normalized { sum }) => *sum,
        other => panic!("expected normalized first, got {other:?}"),
    };
    assert!((sum - 1.8).abs() < 1e-9);
    let n = Repair::Normalized { sum };
    check(
        &reply,
        &[
            ("A", 1.0 / 3.0, Some(0.6), vec![n.clone()]),
            ("B", 1.0 / 3.0, Some(0.6), vec![n.clone()]),
            ("C", 1.0 / 3.0, None, vec![n, Repair::MissingProbability]),
        ],
    );
}

#[test]
fn probabilities_not_summing_to_one_are_normalised() {
    let raw = r#"{"responses": [{"text": "A", "probability": 0.2}, {"text": "B", "probability": 0.6}]}"#;
    let reply = parse(raw);
    let Some(Repair::Normalized { sum }) = reply.candidates[0].repairs.first().cloned() else {
        panic!("expected normalized: {:?}", reply.candidates[0].repairs);
    };
    assert!((sum - 0.8).abs() < 1e-9);
    let r = vec![Repair::Normalized { sum }];
    check(&reply, &[("A", 0.25, Some(0.2), r.clone()), ("B", 0.75, Some(0.6), r)]);
}

#[test]
fn nan_literal_is_treated_as_missing() {
    let raw = r#"{"responses": [{"text": "A", "probability": NaN}, {"text": "B", "probability": 0.5}]}"#;
    check(
        &parse(raw),
        &[
            ("A", 0.5, None, vec![Repair::NonJsonLiterals, Repair::MissingProbability]),
            ("B", 0.5, Some(0.5), vec![Repair::NonJsonLiterals]),
        ],
    );
}

#[test]
fn non_finite_and_non_numeric_strings_are_invalid() {
    let raw = r#"{"responses": [{"text": "A", "probability": "Infinity"}, {"text": "B", "probability": "high"}, {"text": "C", "probability": 0.4}]}"#;
    check(
        &parse(raw),
        &[
            (
                "A",
                0.3,
                None,
                vec![
                    Repair::ProbabilityString { value: "Infinity".into() },
                    Repair::InvalidProbability { value: "Infinity".into() },
                ],
            ),
            (
                "B",
                0.3,
                None,
                vec![
                    Repair::ProbabilityString { value: "high".into() },
                    Repair::InvalidProbability { value: "high".into() },
                ],
            ),
            ("C", 0.4, Some(0.4), vec![]),
        ],
    );
}

#[test]
fn negative_probability_becomes_zero() {
    let raw = r#"{"responses": [{"text": "A", "probability": -0.2}, {"text": "B", "probability": 0.75}, {"text": "C", "probability": 0.25}]}"#;
    check(
        &parse(raw),
        &[
            ("A", 0.0, Some(-0.2), vec![Repair::NegativeProbability { value: -0.2 }]),
            ("B", 0.75, Some(0.75), vec![]),
            ("C", 0.25, Some(0.25), vec![]),
        ],
    );
}

#[test]
fn more_than_k_items_keeps_the_first_k() {
    let raw = r#"{"responses": [{"text": "A", "probability": 0.25}, {"text": "B", "probability": 0.25},
        {"text": "C", "probability": 0.25}, {"text": "D", "probability": 0.25}, {"text": "E", "probability": 0.25}]}"#;
    let reply = parse_k(raw, KSpec::Fixed { k: 4 });
    let r = vec![Repair::Truncated { found: 5, kept: 4 }];
    check(
        &reply,
        &[
            ("A", 0.25, Some(0.25), r.clone()),
            ("B", 0.25, Some(0.25), r.clone()),
            ("C", 0.25, Some(0.25), r.clone()),
            ("D", 0.25, Some(0.25), r),
        ],
    );
}

#[test]
fn model_decided_bound_cuts_too() {
    let raw = r#"["A", "B", "C"]"#;
    let reply = parse_k(raw, KSpec::ModelDecided { max: 2 });
    let r = vec![
        Repair::BareArray,
        Repair::Truncated { found: 3, kept: 2 },
        Repair::Uniform,
        Repair::PlainStringItem,
        Repair::MissingProbability,
    ];
    check(&reply, &[("A", 0.5, None, r.clone()), ("B", 0.5, None, r)]);
}

#[test]
fn fewer_than_fixed_k_is_recorded() {
    let reply = parse_k(CLEAN, KSpec::Fixed { k: 5 });
    check(&reply, &clean_with(vec![Repair::FewerThanRequested { found: 2, requested: 5 }]));
}

#[test]
fn duplicates_are_merged_summing_probabilities() {
    let raw = r#"{"responses": [{"text": "Sure.", "probability": 0.3}, {"text": "No.", "probability": 0.4}, {"text": " Sure. ", "probability": 0.3}]}"#;
    check(
        &parse(raw),
        &[("Sure.", 0.6, Some(0.6), vec![Repair::Merged { duplicates: 1 }]), ("No.", 0.4, Some(0.4), vec![])],
    );
}

#[test]
fn empty_texts_are_dropped() {
    let raw = r#"{"responses": [{"text": "A", "probability": 0.5}, {"text": "", "probability": 0.2},
        {"text": " \n ", "probability": 0.1}, {"text": "B", "probability": 0.5}]}"#;
    let r = vec![Repair::DroppedEmpty { position: 1 }, Repair::DroppedEmpty { position: 2 }];
    check(&parse(raw), &[("A", 0.5, Some(0.5), r.clone()), ("B", 0.5, Some(0.5), r)]);
}

#[test]
fn items_without_text_are_dropped() {
    let raw = r#"{"responses": [{"probability": 0.5}, {"text": "B", "probability": 1.0}]}"#;
    check(&parse(raw), &[("B", 1.0, Some(1.0), vec![Repair::DroppedNoText { position: 0 }])]);
}

#[test]
fn alternative_text_and_probability_keys() {
    let raw = r#"{"responses": [{"response": "A", "prob": 0.6}, {"Content": "B", "confidence": 0.3}, {"answer": "C", "score": 0.1}]}"#;
    check(
        &parse(raw),
        &[
            (
                "A",
                0.6,
                Some(0.6),
                vec![
                    Repair::TextKey { key: "response".into() },
                    Repair::ProbabilityKey { key: "prob".into() },
                ],
            ),
            (
                "B",
                0.3,
                Some(0.3),
                vec![
                    Repair::TextKey { key: "Content".into() },
                    Repair::ProbabilityKey { key: "confidence".into() },
                ],
            ),
            (
                "C",
                0.1,
                Some(0.1),
                vec![
                    Repair::TextKey { key: "answer".into() },
                    Repair::ProbabilityKey { key: "score".into() },
                ],
            ),
        ],
    );
}

#[test]
fn more_alternative_keys() {
    let raw = r#"{"responses": [{"reply": "A", "p": 0.5}, {"message": "B", "weight": 0.5}]}"#;
    check(
        &parse(raw),
        &[
            (
                "A",
                0.5,
                Some(0.5),
                vec![Repair::TextKey { key: "reply".into() }, Repair::ProbabilityKey { key: "p".into() }],
            ),
            (
                "B",
                0.5,
                Some(0.5),
                vec![
                    Repair::TextKey { key: "message".into() },
                    Repair::ProbabilityKey { key: "weight".into() },
                ],
            ),
        ],
    );
}

#[test]
fn single_quoted_python_style() {
    let raw = r#"{'responses': [{'text': 'I\'d give a dollar', 'probability': 0.5}, {'text': 'Say "no"', 'probability': None}]}"#;
    check(
        &parse(raw),
        &[
            ("I'd give a dollar", 0.5, Some(0.5), vec![Repair::SingleQuotes, Repair::NonJsonLiterals]),
            (
                "Say \"no\"",
                0.5,
                None,
                vec![Repair::SingleQuotes, Repair::NonJsonLiterals, Repair::MissingProbability],
            ),
        ],
    );
}

#[test]
fn trailing_commas() {
    let raw = r#"{"responses": [{"text": "Yes, gladly.", "probability": 0.6,}, {"text": "No, thanks.", "probability": 0.4},],}"#;
    check(&parse(raw), &clean_with(vec![Repair::TrailingCommas]));
}

#[test]
fn unquoted_keys() {
    let raw =
        r#"{responses: [{text: "Yes, gladly.", probability: 0.6}, {text: "No, thanks.", probability: 0.4}]}"#;
    check(&parse(raw), &clean_with(vec![Repair::UnquotedKeys]));
}

#[test]
fn raw_newline_inside_a_string() {
    let raw = "{\"responses\": [{\"text\": \"Line one\nline two\", \"probability\": 1.0}]}";
    check(&parse(raw), &[("Line one\nline two", 1.0, Some(1.0), vec![Repair::ControlCharacters])]);
}

#[test]
fn reply_cut_off_keeps_complete_items() {
    let raw = r#"{"responses": [{"text": "A", "probability": 0.5}, {"text": "B", "probability": 0.3}, {"text": "C", "prob"#;
    let reply = parse(raw);
    let n = Repair::Normalized { sum: 0.8 };
    let r = vec![Repair::ClosedTruncated, n];
    // The sum is 0.8 up to round-off; compare it loosely, then the rest exactly.
    if let Some(Repair::Normalized { sum }) = reply.candidates[0].repairs.get(1) {
        assert!((sum - 0.8).abs() < 1e-9);
    }
    let fixed: Vec<_> = reply
        .candidates
        .iter()
        .map(|c| {
            c.repairs
                .iter()
                .map(|x| match x {
                    Repair::Normalized { .. } => Repair::Normalized { sum: 0.8 },
                    x => x.clone(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(fixed, vec![r.clone(), r]);
    let texts: Vec<_> = reply.candidates.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["A", "B"]);
    assert!((reply.candidates[0].probability - 0.625).abs() < TOL);
    assert!((reply.candidates[1].probability - 0.375).abs() < TOL);
}

#[test]
fn unclosed_code_fence() {
    let raw = format!("```json\n{CLEAN}");
    check(&parse(&raw), &clean_with(vec![Repair::CodeFence]));
}

#[test]
fn numbered_list_with_parenthesised_probabilities() {
    let raw =
        "Here are some options:\n1. I'd give $1 (0.5)\n2. \"Not today.\" (0.3)\n3. **Maybe later** (0.2)";
    let r = vec![Repair::NumberedList];
    check(
        &parse(raw),
        &[
            ("I'd give $1", 0.5, Some(0.5), r.clone()),
            ("Not today.", 0.3, Some(0.3), r.clone()),
            ("Maybe later", 0.2, Some(0.2), r),
        ],
    );
}

#[test]
fn bulleted_list_with_labelled_percentages() {
    let raw = "- **Sure, I'll donate.** — probability: 40%\n- No thanks | p = 60%";
    check(
        &parse(raw),
        &[
            (
                "Sure, I'll donate.",
                0.4,
                Some(0.4),
                vec![Repair::NumberedList, Repair::PercentScaled { stated: 40.0 }],
            ),
            ("No thanks", 0.6, Some(0.6), vec![Repair::NumberedList, Repair::PercentScaled { stated: 60.0 }]),
        ],
    );
}

#[test]
fn numbered_list_without_probabilities() {
    let raw = "1) Hello there\n2) Hi!";
    let r = vec![Repair::NumberedList, Repair::Uniform, Repair::MissingProbability];
    check(&parse(raw), &[("Hello there", 0.5, None, r.clone()), ("Hi!", 0.5, None, r)]);
}

#[test]
fn think_block_is_set_aside_as_reasoning() {
    let raw = format!("<think>\nThe persuadee is {{sceptical}}.\n</think>\n\n{CLEAN}");
    let reply = parse(&raw);
    check(&reply, &clean_with(vec![Repair::ThinkBlock]));
    assert_eq!(reply.reasoning.as_deref(), Some("The persuadee is {sceptical}."));
}

#[test]
fn vs_cot_reasoning_is_kept() {
    let raw = r#"{"reasoning": "People differ.", "responses": [{"text": "Yes, gladly.", "probability": 0.6}, {"text": "No, thanks.", "probability": 0.4}]}"#;
    let reply = parse(raw);
    check(&reply, &clean_with(vec![]));
    assert_eq!(reply.reasoning.as_deref(), Some("People differ."));
}

#[test]
fn single_candidate_object() {
    let raw = r#"{"text": "Only this.", "probability": 0.9}"#;
    let reply = parse(raw);
    let r0 = &reply.candidates[0];
    assert_eq!(r0.text, "Only this.");
    assert!((r0.probability - 1.0).abs() < TOL);
    assert_eq!(r0.repairs[0], Repair::SingleObject);
    assert!(matches!(r0.repairs[1], Repair::Normalized { sum } if (sum - 0.9).abs() < 1e-9));
    assert_eq!(r0.repairs.len(), 2);
}

#[test]
fn text_given_as_a_number() {
    let raw = r#"{"responses": [{"text": 2, "probability": 0.5}, {"text": "nothing", "probability": 0.5}]}"#;
    check(
        &parse(raw),
        &[("2", 0.5, Some(0.5), vec![Repair::TextNotString]), ("nothing", 0.5, Some(0.5), vec![])],
    );
}

#[test]
fn unicode_texts_in_prose() {
    let raw = "Voilà — réponses : {\"responses\": [{\"text\": \"Ja, gerne! 😊\", \"probability\": 0.5}, {\"text\": \"いいえ、結構です\", \"probability\": 0.5}]} ✔";
    check(
        &parse(raw),
        &[
            ("Ja, gerne! 😊", 0.5, Some(0.5), vec![Repair::SurroundingText]),
            ("いいえ、結構です", 0.5, Some(0.5), vec![Repair::SurroundingText]),
        ],
    );
}

#[test]
fn sequence_mode_ignores_probabilities() {
    let raw = r#"{"responses": [{"text": "A", "prob": 0.9}, {"text": "B"}]}"#;
    let reply = parse_candidates_with(raw, &ParseOptions { k: None, ignore_probabilities: true }).unwrap();
    check(&reply, &[("A", 0.5, None, vec![]), ("B", 0.5, None, vec![])]);
}

#[test]
fn unrecoverable_replies_are_errors_with_reasons() {
    assert_eq!(parse_candidates("", None), Err(ParseError::Empty));
    assert_eq!(parse_candidates("  \n\t ", None), Err(ParseError::Empty));
    assert!(matches!(parse_candidates("I cannot help with that.", None), Err(ParseError::NoCandidates(_))));
    let err = parse_candidates(r#"{"foo": 1, "bar": "x"}"#, None).unwrap_err();
    match &err {
        ParseError::NoList { found_keys } => {
            let mut keys = found_keys.clone();
            keys.sort();
            assert_eq!(keys, ["bar", "foo"]);
        }
        other => panic!("expected NoList, got {other:?}"),
    }
    assert!(err.to_string().contains("\"responses\""), "{err}");
    assert_eq!(
        parse_candidates(r#"{"responses": []}"#, None),
        Err(ParseError::NoCandidates("the list is empty".into()))
    );
    assert_eq!(
        parse_candidates(r#"{"responses": [{"text": "  "}]}"#, None),
        Err(ParseError::NoCandidates("every text is empty".into()))
    );
    assert_eq!(parse_candidates(r#"{"responses": [{"foo": 1}, 3]}"#, None), Err(ParseError::NoText));
    assert!(matches!(parse_candidates(r#"{"responses": [{"te"#, None), Err(ParseError::InvalidJson(_))));
}

#[test]
fn repairs_serialise_readably() {
    let reply = parse_k(r#"["A", "B"]"#, KSpec::Fixed { k: 2 });
    let json = serde_json::to_value(&reply).unwrap();
    assert_eq!(
        json["candidates"][0]["repairs"],
        serde_json::json!([{"kind": "bare_array"}, {"kind": "uniform"}, {"kind": "plain_string_item"}, {"kind": "missing_probability"}])
    );
    let clean = serde_json::to_value(parse(CLEAN)).unwrap();
    assert_eq!(clean["candidates"][0]["repairs"], serde_json::json!([]));
    assert_eq!(clean["candidates"][0]["raw_probability"], serde_json::json!(0.6));
}

#[test]
fn single_reply_parsing() {
    let r = parse_single("  \"Hello there!\"  ").unwrap();
    assert_eq!(r.candidates[0].text, "Hello there!");
    assert_eq!(r.candidates[0].repairs, vec![Repair::QuotesStripped]);
    assert_eq!(r.candidates[0].probability, 1.0);
    let r = parse_single(r#"{"response": "I'd give $1."}"#).unwrap();
    assert_eq!(r.candidates[0].text, "I'd give $1.");
    assert_eq!(r.candidates[0].repairs, vec![Repair::UnwrappedJson]);
    let r = parse_single("\"Hi,\" she said, \"bye.\"").unwrap();
    assert_eq!(r.candidates[0].text, "\"Hi,\" she said, \"bye.\"");
    assert!(r.candidates[0].repairs.is_empty());
    assert_eq!(parse_single("   "), Err(ParseError::Empty));
}

#[test]
fn cot_reply_parsing() {
    let r = parse_cot(r#"{"reasoning": "They care about kids.", "response": "Would you give $1?"}"#).unwrap();
    assert_eq!(r.candidates[0].text, "Would you give $1?");
    assert_eq!(r.reasoning.as_deref(), Some("They care about kids."));
    let r = parse_cot("Step 1: consider.\nStep 2: decide.\n**Final answer:** I'll give 50 cents.").unwrap();
    assert_eq!(r.candidates[0].text, "I'll give 50 cents.");
    assert_eq!(r.reasoning.as_deref(), Some("Step 1: consider.\nStep 2: decide."));
    // Prose alone: the last paragraph is the response, recorded as a repair.
    let r = parse_cot("just some words").unwrap();
    assert_eq!(r.candidates[0].text, "just some words");
    assert_eq!(r.candidates[0].repairs, [Repair::ProseResponse]);
    let r = parse_cot("They seem kind.\nI like kids.\n\n\"Sure, I'll give a dollar.\"").unwrap();
    assert_eq!(r.candidates[0].text, "Sure, I'll give a dollar.");
    assert_eq!(r.reasoning.as_deref(), Some("They seem kind.\nI like kids."));
    assert!(r.candidates[0].repairs.contains(&Repair::QuotesStripped));
}

#[test]
fn a_cot_reply_whose_response_is_a_json_number_is_read_as_that_number() {
    // What a schema-following server (llama.cpp's llama-server) writes for a numeric answer.
    for (raw, text) in [
        ("{\n  \"reasoning\": \"your step-by-step thinking\",\n  \"response\": 0\n}", "0"),
        (r#"{"reasoning": "Kids matter.", "response": 1.5}"#, "1.5"),
        (r#"{"reasoning": "Kids matter.", "final_answer": -2}"#, "-2"),
        (r#"{"reasoning": "Kids matter.", "response": "0.50"}"#, "0.50"),
    ] {
        let r = parse_cot(raw).unwrap();
        assert_eq!(r.candidates[0].text, text, "{raw}");
        assert!(!r.candidates[0].repairs.contains(&Repair::ProseResponse), "{raw}");
    }
    // Neither a string nor a number: the object is not the response.
    let r = parse_cot(r#"{"reasoning": "Kids matter.", "response": [1]}"#).unwrap();
    assert!(r.candidates[0].repairs.contains(&Repair::ProseResponse));
}

// ---------------------------------------------------------------------------------------
// Properties

fn assert_distribution(raw: &str, k: Option<KSpec>) {
    if let Ok(reply) = parse_candidates(raw, k) {
        assert!(!reply.candidates.is_empty());
        if let Some(k) = k {
            assert!(reply.candidates.len() <= k.max().max(1));
        }
        let mut sum = 0.0;
        for c in &reply.candidates {
            assert!(c.probability.is_finite() && c.probability >= 0.0, "{c:?}");
            assert!(!c.text.trim().is_empty());
            sum += c.probability;
        }
        assert!((sum - 1.0).abs() < 1e-9, "sum {sum} for {raw:?}");
        // Serialisation must not fail either.
        serde_json::to_string(&reply).unwrap();
    }
    let _ = parse_single(raw);
    let _ = parse_cot(raw);
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"responses\"",
    "\"candidates\"",
    ":",
    ",",
    "\"text\"",
    "\"probability\"",
    "\"prob\"",
    "0.5",
    "70",
    "\"70%\"",
    "60%",
    "NaN",
    "-Infinity",
    "None",
    "True",
    "-0.3",
    "1e308",
    "5e-324",
    "'",
    "'a'",
    "\"",
    "\\",
    "\"é😊\"",
    " ",
    "\n",
    "```json\n",
    "```",
    "null",
    "<think>",
    "</think>",
    "1. ",
    "- ",
    "(0.4)",
    "probability: 40%",
    "text",
    "\"\"",
    "\"x\"",
    "\u{301}",
    "ß",
    "K",
];

fn jsonish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|t| t.concat())
}

/// A `{"responses": [...]}` reply with arbitrary texts and probabilities, in a fence or
/// after prose; the flag says whether some text is non-blank (so a parse must succeed).
fn structured() -> impl Strategy<Value = (String, bool)> {
    let prob = prop_oneof![
        any::<f64>().prop_map(|p| if p.is_finite() { format!("{p}") } else { format!("\"{p}\"") }),
        (0u32..200).prop_map(|p| format!("\"{p}%\"")),
        Just("null".to_string()),
    ];
    let item = (any::<String>(), prob).prop_map(|(t, p)| {
        (format!("{{\"text\": {}, \"probability\": {p}}}", serde_json::to_string(&t).unwrap()), t)
    });
    (prop::collection::vec(item, 0..8), any::<bool>(), "[^`<]{0,20}").prop_map(|(items, fence, prose)| {
        // A list whose every text is a placeholder is an example of the format, not a reply.
        let some_text = items.iter().any(|(_, t)| !t.trim().is_empty())
            && !items.iter().all(|(_, t)| looks_like_placeholder(t));
        let items: Vec<String> = items.into_iter().map(|(i, _)| i).collect();
        let obj = format!("{{\"responses\": [{}]}}", items.join(", "));
        let raw = if fence { format!("{prose}\n```json\n{obj}\n```") } else { format!("{prose} {obj}") };
        (raw, some_text)
    })
}

/// The parser's rule for a text that stands for one in an example of the format (`-`,
/// `...`, `<text>`, `your response`), restated here so the oracle above stays independent.
fn looks_like_placeholder(s: &str) -> bool {
    let t = s.trim();
    if t.chars().all(|c| matches!(c, '.' | '\u{2026}' | '_' | '-') || c.is_whitespace()) {
        return !t.is_empty();
    }
    let lower = t.to_ascii_lowercase();
    (t.starts_with('<') && t.ends_with('>') && !t[1..t.len() - 1].contains(['<', '>']))
        || matches!(lower.as_str(), "text" | "response" | "your response" | "response text" | "string")
}

#[test]
fn a_list_of_placeholder_texts_is_an_example_not_a_reply() {
    assert!(parse_candidates(r#"{"responses": [{"text": "-", "probability": 0}]}"#, None).is_err());
    assert!(parse_candidates(
        r#"{"responses": [{"text": "...", "probability": 0.5}, {"text": "<text>", "probability": 0.5}]}"#,
        None
    )
    .is_err());
    let mixed = parse_candidates(
        r#"{"responses": [{"text": "-", "probability": 0.5}, {"text": "Sure", "probability": 0.5}]}"#,
        None,
    )
    .unwrap();
    assert!(mixed.candidates.iter().any(|c| c.text == "Sure"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        assert_distribution(&s, None);
        assert_distribution(&s, Some(KSpec::Fixed { k: 3 }));
    }

    #[test]
    fn jsonish_strings_never_panic(s in jsonish()) {
        assert_distribution(&s, None);
        assert_distribution(&s, Some(KSpec::ModelDecided { max: 2 }));
    }

    #[test]
    fn structured_replies_give_distributions((s, some_text) in structured()) {
        assert_distribution(&s, Some(KSpec::Fixed { k: 5 }));
        assert_distribution(&s, None);
        prop_assert_eq!(parse_candidates(&s, None).is_ok(), some_text, "{}", s);
    }
}

// ---------------------------------------------------------------------------------------
// Shapes replies take when no JSON schema is enforced

/// One malformed reply: the texts and stated probabilities (after unit repair, before
/// normalisation) it must give, and the repair kind every candidate must record.
struct Case {
    name: &'static str,
    raw: &'static str,
    texts: &'static [&'static str],
    stated: &'static [Option<f64>],
    kind: &'static str,
}

const CASES: &[Case] = &[
    // XML-like tags, as the VS paper's prompts ask for.
    Case {
        name: "tags in a responses block",
        raw: "<responses>\n<response>\n<text>Sure, I'll give $1.</text>\n<probability>0.4</probability>\n</response>\n<response>\n<text>Not today, sorry.</text>\n<probability>0.35</probability>\n</response>\n<response>\n<text>Maybe 50 cents?</text>\n<probability>0.25</probability>\n</response>\n</responses>",
        texts: &["Sure, I'll give $1.", "Not today, sorry.", "Maybe 50 cents?"],
        stated: &[Some(0.4), Some(0.35), Some(0.25)],
        kind: "xml_tags",
    },
    Case {
        name: "tags without a wrapper, after prose",
        raw: "Here are five possible responses:\n\n<response><text>I'd love to help the kids.</text><probability>0.08</probability></response>\n<response><text>How do I know the money arrives?</text><probability>0.07</probability></response>\n\nLet me know if you want more.",
        texts: &["I'd love to help the kids.", "How do I know the money arrives?"],
        stated: &[Some(0.08), Some(0.07)],
        kind: "xml_tags",
    },
    Case {
        name: "tags with the probability as an attribute",
        raw: "<response probability=\"0.6\">Sounds good, count me in.</response>\n<response probability='0.4'>I'll pass this time.</response>",
        texts: &["Sounds good, count me in.", "I'll pass this time."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "xml_tags",
    },
    Case {
        name: "tags with confidence instead of probability",
        raw: "<response>\n  <text>Absolutely!</text>\n  <confidence>0.7</confidence>\n</response>\n<response>\n  <text>I need to think about it.</text>\n  <confidence>0.3</confidence>\n</response>",
        texts: &["Absolutely!", "I need to think about it."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "xml_tags",
    },
    Case {
        name: "tags with percentages and entities",
        raw: "<response><text>Tom &amp; I will both give.</text><probability>55%</probability></response><response><text>Is this a scam?</text><probability>45%</probability></response>",
        texts: &["Tom & I will both give.", "Is this a scam?"],
        stated: &[Some(0.55), Some(0.45)],
        kind: "xml_tags",
    },
    Case {
        name: "tags in a code fence",
        raw: "```xml\n<responses>\n  <response><text>Yes.</text><probability>0.5</probability></response>\n  <response><text>No.</text><probability>0.5</probability></response>\n</responses>\n```",
        texts: &["Yes.", "No."],
        stated: &[Some(0.5), Some(0.5)],
        kind: "xml_tags",
    },
    Case {
        name: "tags with numbered names",
        raw: "<response_1><text>Hi there!</text><probability>0.3</probability></response_1>\n<response_2><text>Hello.</text><probability>0.7</probability></response_2>",
        texts: &["Hi there!", "Hello."],
        stated: &[Some(0.3), Some(0.7)],
        kind: "xml_tags",
    },
    Case {
        name: "item elements holding response and probability",
        raw: "<item><response>I can spare a dollar.</response><probability>0.6</probability></item><item><response>Not right now.</response><probability>0.4</probability></item>",
        texts: &["I can spare a dollar.", "Not right now."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "xml_tags",
    },
    Case {
        name: "tags cut off after the text",
        raw: "<responses><response><text>Sure thing.</text><probability>0.5</probability></response><response><text>No thanks.</text><probab",
        texts: &["Sure thing.", "No thanks."],
        stated: &[Some(0.5), None],
        kind: "cut_off",
    },
    Case {
        name: "tags cut off inside the text",
        raw: "<response><text>Sure thing.</text><probability>0.5</probability></response>\n<response><text>No thanks, I usually don't do",
        texts: &["Sure thing."],
        stated: &[Some(0.5)],
        kind: "cut_off",
    },
    // Wrapped objects and other keys.
    Case {
        name: "list inside a result object",
        raw: r#"{"result": {"responses": [{"text": "Happy to help.", "probability": 0.6}, {"text": "Not today.", "probability": 0.4}]}}"#,
        texts: &["Happy to help.", "Not today."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "wrapped_object",
    },
    Case {
        name: "list under data",
        raw: r#"{"data": [{"text": "Happy to help.", "probability": 0.6}, {"text": "Not today.", "probability": 0.4}]}"#,
        texts: &["Happy to help.", "Not today."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "list_key",
    },
    Case {
        name: "top-level array with reply and likelihood keys",
        raw: r#"[{"reply": "Count me in!", "likelihood": 0.55}, {"reply": "What's the catch?", "likelihood": 0.45}]"#,
        texts: &["Count me in!", "What's the catch?"],
        stated: &[Some(0.55), Some(0.45)],
        kind: "bare_array",
    },
    Case {
        name: "content and weight keys two levels down",
        raw: r#"{"output": {"generation": {"candidates": [{"content": "Sure.", "weight": 0.2}, {"content": "No.", "weight": 0.8}]}}}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.2), Some(0.8)],
        kind: "wrapped_object",
    },
    Case {
        name: "answer and p keys",
        raw: r#"{"responses": [{"answer": "Yes, $2.", "p": 0.25}, {"answer": "Just $1.", "p": 0.75}]}"#,
        texts: &["Yes, $2.", "Just $1."],
        stated: &[Some(0.25), Some(0.75)],
        kind: "text_key",
    },
    Case {
        name: "texts mapped to probabilities",
        raw: r#"{"Strongly agree": 0.1, "Agree": 0.5, "Disagree": 0.4}"#,
        texts: &["Strongly agree", "Agree", "Disagree"],
        stated: &[Some(0.1), Some(0.5), Some(0.4)],
        kind: "probability_map",
    },
    Case {
        name: "numbered keys",
        raw: r#"{"response_1": "I'll donate.", "probability_1": 0.6, "response_2": "I won't.", "probability_2": 0.4}"#,
        texts: &["I'll donate.", "I won't."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_keys",
    },
    Case {
        name: "objects keyed by name",
        raw: r#"{"responses": {"response1": {"text": "Yes!", "probability": 0.3}, "response2": {"text": "Nope.", "probability": 0.7}}}"#,
        texts: &["Yes!", "Nope."],
        stated: &[Some(0.3), Some(0.7)],
        kind: "keyed_items",
    },
    Case {
        name: "pairs of text and probability",
        raw: r#"{"responses": [["Sure.", 0.5], ["Later.", 0.5]]}"#,
        texts: &["Sure.", "Later."],
        stated: &[Some(0.5), Some(0.5)],
        kind: "pair_item",
    },
    Case {
        name: "one candidate object per line",
        raw: "{\"text\": \"Yes.\", \"probability\": 0.6}\n{\"text\": \"No.\", \"probability\": 0.4}",
        texts: &["Yes.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "object_sequence",
    },
    // JSON encoded as a string.
    Case {
        name: "whole reply a JSON string",
        raw: r#""{\"responses\": [{\"text\": \"Sure.\", \"probability\": 0.7}, {\"text\": \"No.\", \"probability\": 0.3}]}""#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "string_encoded_json",
    },
    Case {
        name: "list field holding a JSON string",
        raw: r#"{"responses": "[{\"text\": \"Sure.\", \"probability\": 0.7}, {\"text\": \"No.\", \"probability\": 0.3}]"}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "string_encoded_json",
    },
    Case {
        name: "wrapper field holding a JSON string",
        raw: r#"{"output": "{\"responses\": [{\"text\": \"Sure.\", \"probability\": 0.7}, {\"text\": \"No.\", \"probability\": 0.3}]}"}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "string_encoded_json",
    },
    Case {
        name: "escaped quotes without the outer string",
        raw: r#"{\"responses\": [{\"text\": \"Sure.\", \"probability\": 0.7}, {\"text\": \"No.\", \"probability\": 0.3}]}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "string_encoded_json",
    },
    // Markdown tables.
    Case {
        name: "table with index, response and probability",
        raw: "| # | Response | Probability |\n|---|----------|-------------|\n| 1 | Sure, I'll give $1. | 0.3 |\n| 2 | I'd rather not. | 0.5 |\n| 3 | Can I give later? | 0.2 |",
        texts: &["Sure, I'll give $1.", "I'd rather not.", "Can I give later?"],
        stated: &[Some(0.3), Some(0.5), Some(0.2)],
        kind: "markdown_table",
    },
    Case {
        name: "table with percentages and prose around",
        raw: "Here is the distribution:\n\n| Response | Probability |\n| :--- | ---: |\n| **Yes, happily.** | 40% |\n| \"No.\" | 60% |\n\nThese reflect a sceptical persona.",
        texts: &["Yes, happily.", "No."],
        stated: &[Some(0.4), Some(0.6)],
        kind: "markdown_table",
    },
    Case {
        name: "table without outer pipes and with an unnamed probability column",
        raw: "Reply | Score\n--- | ---\nI'm in. | 0.65\nI'm out. | 0.35",
        texts: &["I'm in.", "I'm out."],
        stated: &[Some(0.65), Some(0.35)],
        kind: "markdown_table",
    },
    Case {
        name: "table cut off in the last probability",
        raw: "| Response | Probability |\n|---|---|\n| Yes. | 0.5 |\n| No. | 0.",
        texts: &["Yes.", "No."],
        stated: &[Some(0.5), None],
        kind: "cut_off",
    },
    // Numbered and bulleted lists.
    Case {
        name: "numbered list with labelled probabilities",
        raw: "1. Sure, I'll give $1 (probability: 0.4)\n2. I'd like to know more first (probability: 0.35)\n3. No, thank you (probability: 0.25)",
        texts: &["Sure, I'll give $1", "I'd like to know more first", "No, thank you"],
        stated: &[Some(0.4), Some(0.35), Some(0.25)],
        kind: "numbered_list",
    },
    Case {
        name: "bullets with quoted texts and em-dash percentages",
        raw: "- \"Of course, anything for the kids.\" — 40%\n- \"I already gave this month.\" — 35%\n- \"Can you send me a link?\" — 25%",
        texts: &["Of course, anything for the kids.", "I already gave this month.", "Can you send me a link?"],
        stated: &[Some(0.4), Some(0.35), Some(0.25)],
        kind: "numbered_list",
    },
    Case {
        name: "star bullets with bracketed probabilities",
        raw: "* I'm in [0.4]\n* Not today [0.6]",
        texts: &["I'm in", "Not today"],
        stated: &[Some(0.4), Some(0.6)],
        kind: "numbered_list",
    },
    Case {
        name: "parenthesised numbers with p equals",
        raw: "1) Let me think about it (p=0.5)\n2) Sure (p=0.3)\n3) No (p=0.2)",
        texts: &["Let me think about it", "Sure", "No"],
        stated: &[Some(0.5), Some(0.3), Some(0.2)],
        kind: "numbered_list",
    },
    Case {
        name: "probability before the text",
        raw: "1. [0.5] Happy to chip in.\n2. [0.3] Maybe next week.\n3. [0.2] I don't donate online.",
        texts: &["Happy to chip in.", "Maybe next week.", "I don't donate online."],
        stated: &[Some(0.5), Some(0.3), Some(0.2)],
        kind: "numbered_list",
    },
    Case {
        name: "bold style labels before quoted texts",
        raw: "1. **Enthusiastic:** \"Yes! Take my $2!\" (probability: 0.3)\n2. **Hesitant:** \"Hmm, maybe a dollar.\" (probability: 0.5)\n3. **Dismissive:** \"No.\" (probability: 0.2)",
        texts: &["Yes! Take my $2!", "Hmm, maybe a dollar.", "No."],
        stated: &[Some(0.3), Some(0.5), Some(0.2)],
        kind: "text_label",
    },
    Case {
        name: "numbered reasoning before the list is left out",
        raw: "Let me consider the persona:\n1. They are sceptical of charities.\n2. They care about children.\n\nResponses:\n1. I'd give 50 cents. (0.5)\n2. Show me proof first. (0.5)",
        texts: &["I'd give 50 cents.", "Show me proof first."],
        stated: &[Some(0.5), Some(0.5)],
        kind: "numbered_list",
    },
    Case {
        name: "list cut off in the last probability",
        raw: "1. Sure. (0.5)\n2. No. (0.3)\n3. Maybe later. (0.",
        texts: &["Sure.", "No.", "Maybe later."],
        stated: &[Some(0.5), Some(0.3), None],
        kind: "cut_off",
    },
    Case {
        name: "list cut off inside the last text",
        raw: "1. Sure. (0.5)\n2. No. (0.3)\n3. I could maybe give a lit",
        texts: &["Sure.", "No."],
        stated: &[Some(0.5), Some(0.3)],
        kind: "cut_off",
    },
    // Labelled blocks.
    Case {
        name: "response and probability lines",
        raw: "Response 1: Sure, I'll give $1.\nProbability: 0.4\n\nResponse 2: I'm not sure.\nProbability: 0.6",
        texts: &["Sure, I'll give $1.", "I'm not sure."],
        stated: &[Some(0.4), Some(0.6)],
        kind: "labelled_blocks",
    },
    Case {
        name: "bold headings with the text below",
        raw: "**Response 1:**\nI'd be glad to donate.\n*Probability: 0.45*\n\n**Response 2:**\nWhat does the money pay for?\n*Probability: 0.55*",
        texts: &["I'd be glad to donate.", "What does the money pay for?"],
        stated: &[Some(0.45), Some(0.55)],
        kind: "labelled_blocks",
    },
    Case {
        name: "markdown headings with the probability in the label",
        raw: "### Response 1 (probability: 0.2)\nSure!\n\n### Response 2 (probability: 0.8)\nNo, thanks.",
        texts: &["Sure!", "No, thanks."],
        stated: &[Some(0.2), Some(0.8)],
        kind: "labelled_blocks",
    },
    Case {
        name: "text and probability key lines",
        raw: "Text: Yes, I'm in.\nProbability: 0.7\nText: No.\nProbability: 0.3",
        texts: &["Yes, I'm in.", "No."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "labelled_blocks",
    },
    Case {
        name: "labelled blocks cut off in the last label",
        raw: "Response 1: Sure.\nProbability: 0.6\n\nResponse 2: No.\nProbab",
        texts: &["Sure.", "No."],
        stated: &[Some(0.6), None],
        kind: "cut_off",
    },
    // YAML-like lists.
    Case {
        name: "yaml list",
        raw: "responses:\n  - text: Sure, I'll help.\n    probability: 0.3\n  - text: \"Maybe later.\"\n    probability: 0.7",
        texts: &["Sure, I'll help.", "Maybe later."],
        stated: &[Some(0.3), Some(0.7)],
        kind: "yaml_list",
    },
    Case {
        name: "yaml list in a fence with a block text",
        raw: "```yaml\n- text: |\n    Well, I could\n    give a dollar.\n  probability: 0.6\n- text: No way.\n  probability: 0.4\n```",
        texts: &["Well, I could\ngive a dollar.", "No way."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "yaml_list",
    },
    // Prose, fences and syntax around.
    Case {
        name: "prose before and after a list",
        raw: "Here are my responses:\n\n- Sure, sign me up! (0.6)\n- I'll pass. (0.4)\n\nLet me know if you need more options.",
        texts: &["Sure, sign me up!", "I'll pass."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    Case {
        name: "fenced JSON with trailing commas and single quotes",
        raw: "```json\n{'responses': [{'text': 'Yes.', 'probability': 0.5,}, {'text': 'No.', 'probability': 0.5,},]}\n```",
        texts: &["Yes.", "No."],
        stated: &[Some(0.5), Some(0.5)],
        kind: "code_fence",
    },
    Case {
        name: "JSON with comments",
        raw: "{\"responses\": [\n  {\"text\": \"Yes.\", \"probability\": 0.5}, // most likely\n  {\"text\": \"No.\", \"probability\": 0.5}\n]}",
        texts: &["Yes.", "No."],
        stated: &[Some(0.5), Some(0.5)],
        kind: "comments",
    },
    Case {
        name: "percent strings in JSON inside prose",
        raw: "Sure! {\"responses\": [{\"text\": \"Yes.\", \"probability\": \"70%\"}, {\"text\": \"No.\", \"probability\": \"30%\"}]} Hope that helps.",
        texts: &["Yes.", "No."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "surrounding_text",
    },
    Case {
        name: "format example before the answer is skipped",
        raw: "Format: {\"text\": \"...\", \"probability\": 0.0}\n\n1. Of course. (0.5)\n2. No. (0.5)",
        texts: &["Of course.", "No."],
        stated: &[Some(0.5), Some(0.5)],
        kind: "numbered_list",
    },
    Case {
        name: "JSON cut off in the last probability",
        raw: r#"{"responses": [{"text": "Sure.", "probability": 0.5}, {"text": "No.", "probability": 0."#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.5), None],
        kind: "closed_truncated",
    },
    Case {
        name: "plain strings carrying their probabilities",
        raw: r#"{"responses": ["Sure, why not? (0.4)", "No, thanks. (0.6)"]}"#,
        texts: &["Sure, why not?", "No, thanks."],
        stated: &[Some(0.4), Some(0.6)],
        kind: "plain_string_item",
    },
    Case {
        name: "survey answers mapped to percentage strings",
        raw: "```json\n{\"Very likely\": \"20%\", \"Somewhat likely\": \"50%\", \"Not likely\": \"30%\"}\n```",
        texts: &["Very likely", "Somewhat likely", "Not likely"],
        stated: &[Some(0.2), Some(0.5), Some(0.3)],
        kind: "probability_map",
    },
    Case {
        name: "lines led by their probability",
        raw: "0.45 - I'm happy to give a dollar.\n0.35 - Maybe later this week.\n0.20 - I never give online.",
        texts: &["I'm happy to give a dollar.", "Maybe later this week.", "I never give online."],
        stated: &[Some(0.45), Some(0.35), Some(0.2)],
        kind: "numbered_list",
    },
    Case {
        name: "letter markers",
        raw: "Options:\n  A) Sure, I'm in. (0.5)\n  B) Not this time. (0.3)\n  C) Tell me more. (0.2)",
        texts: &["Sure, I'm in.", "Not this time.", "Tell me more."],
        stated: &[Some(0.5), Some(0.3), Some(0.2)],
        kind: "numbered_list",
    },
    Case {
        name: "lines without markers, each ending with its probability",
        raw: "Sure, I'd love to help! (0.4)\nNo thanks, not today. (0.6)",
        texts: &["Sure, I'd love to help!", "No thanks, not today."],
        stated: &[Some(0.4), Some(0.6)],
        kind: "numbered_list",
    },
    Case {
        name: "paragraphs each followed by a probability line",
        raw: "Sure, I'd love to help. I can give $1.\n(probability: 0.3)\n\nNo thanks, I'm not interested.\n(probability: 0.7)",
        texts: &["Sure, I'd love to help. I can give $1.", "No thanks, I'm not interested."],
        stated: &[Some(0.3), Some(0.7)],
        kind: "numbered_list",
    },
    Case {
        name: "probability and notes as sub-bullets",
        raw: "1. I'd give a dollar.\n   - Probability: 0.3\n   - Tone: generous\n2. Hard pass.\n   - Probability: 0.7\n   - Tone: curt",
        texts: &["I'd give a dollar.", "Hard pass."],
        stated: &[Some(0.3), Some(0.7)],
        kind: "numbered_list",
    },
    Case {
        name: "candidate labels with confidence lines",
        raw: "Candidate 1: \"Sure.\"\nConfidence: 40%\n\nCandidate 2: \"No.\"\nConfidence: 60%",
        texts: &["Sure.", "No."],
        stated: &[Some(0.4), Some(0.6)],
        kind: "labelled_blocks",
    },
    Case {
        name: "sub-lists under bulleted headings",
        raw: "- Warm:\n  - Absolutely, count me in. (0.3)\n  - Happy to help! (0.2)\n- Cold:\n  - No. (0.5)",
        texts: &["Absolutely, count me in.", "Happy to help!", "No."],
        stated: &[Some(0.3), Some(0.2), Some(0.5)],
        kind: "numbered_list",
    },
];

#[test]
fn malformed_replies_of_every_shape() {
    let failures = case_failures(CASES);
    assert!(CASES.len() >= 40);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// What each case gets wrong: its texts, its stated probabilities, the repair kind every
/// candidate must record, and normalised probabilities that keep the stated ratios.
fn case_failures(cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        assert_eq!(case.texts.len(), case.stated.len(), "{}: table row", case.name);
        let reply = match parse_candidates(case.raw, None) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: error {e}", case.name));
                continue;
            }
        };
        let texts: Vec<&str> = reply.candidates.iter().map(|c| c.text.as_str()).collect();
        if texts != case.texts {
            failures.push(format!("{}: texts {texts:?}", case.name));
            continue;
        }
        for (c, want) in reply.candidates.iter().zip(case.stated) {
            let same = match (c.raw_probability, want) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                (a, b) => a == *b,
            };
            if !same {
                failures.push(format!(
                    "{}: {:?} stated {:?}, want {want:?}",
                    case.name, c.text, c.raw_probability
                ));
            }
            let kinds: Vec<String> = c
                .repairs
                .iter()
                .map(|r| serde_json::to_value(r).unwrap()["kind"].as_str().unwrap().to_string())
                .collect();
            if !kinds.iter().any(|k| k == case.kind) {
                failures.push(format!("{}: {:?} repairs {kinds:?} lack {}", case.name, c.text, case.kind));
            }
        }
        let sum: f64 = reply.candidates.iter().map(|c| c.probability).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{}: sum {sum}", case.name);
        // Where every probability was stated, the normalised ones keep their ratios.
        if let Some(stated) = case.stated.iter().copied().collect::<Option<Vec<f64>>>() {
            let total: f64 = stated.iter().sum();
            for (c, s) in reply.candidates.iter().zip(stated) {
                assert!(
                    (c.probability - s / total).abs() < 1e-9,
                    "{}: {:?} probability {}",
                    case.name,
                    c.text,
                    c.probability
                );
            }
        }
    }
    failures
}

// ---------------------------------------------------------------------------------------
// Typographic quotes as JSON delimiters, column separators, nested texts, a cut first text

const MORE_CASES: &[Case] = &[
    // Typographic quotes used as JSON string delimiters, of every common kind.
    Case {
        name: "curly double quotes around keys and values",
        raw: "{\u{201c}responses\u{201d}: [{\u{201c}text\u{201d}: \u{201c}Sure, I\u{2019}ll give $1.\u{201d}, \u{201c}probability\u{201d}: 0.6}, {\u{201c}text\u{201d}: \u{201c}Not today.\u{201d}, \u{201c}probability\u{201d}: 0.4}]}",
        texts: &["Sure, I\u{2019}ll give $1.", "Not today."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "typographic_quotes",
    },
    Case {
        name: "curly quotes around keys only",
        raw: "{\u{201c}responses\u{201d}: [{\u{201c}text\u{201d}: \"Sure.\", \u{201c}probability\u{201d}: 0.7}, {\u{201c}text\u{201d}: \"No.\", \u{201c}probability\u{201d}: 0.3}]}",
        texts: &["Sure.", "No."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "typographic_quotes",
    },
    Case {
        name: "low-high quotes",
        raw: "{\u{201e}responses\u{201c}: [{\u{201e}text\u{201c}: \u{201e}Ja, gern.\u{201c}, \u{201e}probability\u{201c}: 0.5}, {\u{201e}text\u{201c}: \u{201e}Nein.\u{201c}, \u{201e}probability\u{201c}: 0.5}]}",
        texts: &["Ja, gern.", "Nein."],
        stated: &[Some(0.5), Some(0.5)],
        kind: "typographic_quotes",
    },
    Case {
        name: "guillemets",
        raw: "{\u{ab}responses\u{bb}: [{\u{ab}text\u{bb}: \u{ab}Oui.\u{bb}, \u{ab}probability\u{bb}: 0.25}, {\u{ab}text\u{bb}: \u{ab}Non.\u{bb}, \u{ab}probability\u{bb}: 0.75}]}",
        texts: &["Oui.", "Non."],
        stated: &[Some(0.25), Some(0.75)],
        kind: "typographic_quotes",
    },
    Case {
        name: "curly single quotes with an apostrophe inside",
        raw: "{\u{2018}responses\u{2019}: [{\u{2018}text\u{2019}: \u{2018}I\u{2019}m in.\u{2019}, \u{2018}probability\u{2019}: 0.8}, {\u{2018}text\u{2019}: \u{2018}Nope.\u{2019}, \u{2018}probability\u{2019}: 0.2}]}",
        texts: &["I\u{2019}m in.", "Nope."],
        stated: &[Some(0.8), Some(0.2)],
        kind: "typographic_quotes",
    },
    Case {
        name: "curly quotes inside a curly-quoted text",
        raw: "{\u{201c}responses\u{201d}: [{\u{201c}text\u{201d}: \u{201c}He said \u{201c}no\u{201d}, then left.\u{201d}, \u{201c}probability\u{201d}: 0.4}, {\u{201c}text\u{201d}: \u{201c}Fine.\u{201d}, \u{201c}probability\u{201d}: 0.6}]}",
        texts: &["He said \u{201c}no\u{201d}, then left.", "Fine."],
        stated: &[Some(0.4), Some(0.6)],
        kind: "typographic_quotes",
    },
    Case {
        name: "a plain quote closed by a curly one",
        raw: "{\"responses\": [{\"text\": \"Sure\", \"probability\": 0.6}, {\"text\": \"No\", \"probability\u{201d}: 0.4}]}",
        texts: &["Sure", "No"],
        stated: &[Some(0.6), Some(0.4)],
        kind: "typographic_quotes",
    },
    Case {
        name: "curly quotes in a fenced bare array after prose",
        raw: "Here you go:\n```json\n[\n  {\u{201c}text\u{201d}: \u{201c}A dollar, gladly.\u{201d}, \u{201c}probability\u{201d}: 0.55},\n  {\u{201c}text\u{201d}: \u{201c}Not now.\u{201d}, \u{201c}probability\u{201d}: 0.45},\n]\n```",
        texts: &["A dollar, gladly.", "Not now."],
        stated: &[Some(0.55), Some(0.45)],
        kind: "typographic_quotes",
    },
    // JSON syntax slips besides quotes.
    Case {
        name: "quotes inside a text left unescaped",
        raw: r#"{"responses": [{"text": "He said "yes" and "left", "probability": 0.6}, {"text": "No", "probability": 0.4}]}"#,
        texts: &["He said \"yes\" and \"left", "No"],
        stated: &[Some(0.6), Some(0.4)],
        kind: "unescaped_quotes",
    },
    Case {
        name: "commas missing between fields and between items",
        raw: r#"{"responses": [{"text": "Sure" "probability": 0.6} {"text": "No", "probability": 0.4}]}"#,
        texts: &["Sure", "No"],
        stated: &[Some(0.6), Some(0.4)],
        kind: "missing_commas",
    },
    Case {
        name: "numbers with a leading dot or a decimal comma",
        raw: r#"{"responses": [{"text": "Sure", "probability": .6}, {"text": "No", "probability": 0,4}]}"#,
        texts: &["Sure", "No"],
        stated: &[Some(0.6), Some(0.4)],
        kind: "number_format",
    },
    Case {
        name: "python tuples",
        raw: "responses = [(\"Sure, count me in.\", 0.6), ('No.', 0.4)]",
        texts: &["Sure, count me in.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "tuple_brackets",
    },
    Case {
        name: "probabilities as strings with words around the number",
        raw: r#"{"responses": [{"text": "Sure", "probability": "0.6 (likely)"}, {"text": "No", "probability": "~0.3"}, {"text": "Maybe", "probability": "about 10 percent"}]}"#,
        texts: &["Sure", "No", "Maybe"],
        stated: &[Some(0.6), Some(0.3), Some(0.1)],
        kind: "probability_string",
    },
    // Lines of text and probability in columns or after other separators.
    Case {
        name: "text tab probability",
        raw: "Sure, I'll give $1.\t0.4\nNot today.\t0.35\nMaybe 50 cents?\t0.25",
        texts: &["Sure, I'll give $1.", "Not today.", "Maybe 50 cents?"],
        stated: &[Some(0.4), Some(0.35), Some(0.25)],
        kind: "numbered_list",
    },
    Case {
        name: "tab-separated with a header and percentages",
        raw: "text\tprobability\nI can give $1.50 today.\t60\nMaybe 2 dollars.\t40\n",
        texts: &["I can give $1.50 today.", "Maybe 2 dollars."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    Case {
        name: "probability tab text",
        raw: "0.6\tSure.\n0.4\tNo.",
        texts: &["Sure.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    Case {
        name: "numbered tab-separated columns",
        raw: "1\tSure, count me in.\t0.7\n2\tNo thanks.\t0.3",
        texts: &["Sure, count me in.", "No thanks."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "numbered_list",
    },
    Case {
        name: "columns aligned with spaces",
        raw: "Sure, count me in.    0.6\nNo thanks.            0.4",
        texts: &["Sure, count me in.", "No thanks."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    Case {
        name: "text equals probability",
        raw: "Sure. = 0.6\nNo. = 0.4",
        texts: &["Sure.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    Case {
        name: "text slash percentage",
        raw: "Happy to help / 60%\nI'd rather not / 40%",
        texts: &["Happy to help", "I'd rather not"],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    Case {
        name: "pipe rows without a header separator, with an index cell",
        raw: "| 1 | Sure, count me in. | 0.7 |\n| 2 | No thanks. | 0.3 |",
        texts: &["Sure, count me in.", "No thanks."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "numbered_list",
    },
    Case {
        name: "items on one line separated by pipes",
        raw: "Sure, count me in (60%) | No thanks (40%)",
        texts: &["Sure, count me in", "No thanks"],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    Case {
        name: "items on one line separated by semicolons",
        raw: "Sure: 0.6; No: 0.4",
        texts: &["Sure", "No"],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    Case {
        name: "quoted text comma probability",
        raw: "\"Sure, I'll give $1.\",0.6\n\"No.\",0.4",
        texts: &["Sure, I'll give $1.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "numbered_list",
    },
    // The text nested in an object or a list.
    Case {
        name: "text under content in an object",
        raw: r#"{"responses": [{"text": {"content": "Sure."}, "probability": 0.6}, {"text": {"content": "No."}, "probability": 0.4}]}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "nested_value",
    },
    Case {
        name: "a chat message object as the text, probability in an object",
        raw: r#"{"responses": [{"message": {"role": "assistant", "content": "Sure."}, "probability": {"value": 0.7}}, {"message": {"role": "assistant", "content": "No."}, "probability": {"value": 0.3}}]}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.7), Some(0.3)],
        kind: "nested_value",
    },
    Case {
        name: "candidate object with its probability inside, beside other fields",
        raw: r#"{"responses": [{"rank": 1, "candidate": {"text": "Sure.", "probability": 0.6}}, {"rank": 2, "candidate": {"text": "No.", "probability": 0.4}}]}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "nested_value",
    },
    Case {
        name: "text two levels down",
        raw: r#"{"responses": [{"text": {"value": {"text": "Sure."}, "lang": "en"}, "probability": 0.5}, {"text": {"value": {"text": "No."}, "lang": "en"}, "probability": 0.5}]}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.5), Some(0.5)],
        kind: "nested_value",
    },
    Case {
        name: "text as a list of sentences",
        raw: r#"{"responses": [{"text": ["Sure.", "I can give $1."], "probability": 0.6}, {"text": ["No."], "probability": 0.4}]}"#,
        texts: &["Sure. I can give $1.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "nested_value",
    },
    Case {
        name: "text as content parts",
        raw: r#"{"responses": [{"text": [{"type": "text", "text": "Sure."}, {"type": "text", "text": "Count me in."}], "probability": 0.6}, {"text": [{"type": "text", "text": "No."}], "probability": 0.4}]}"#,
        texts: &["Sure. Count me in.", "No."],
        stated: &[Some(0.6), Some(0.4)],
        kind: "nested_value",
    },
    Case {
        name: "text in an object with one string field of another name",
        raw: r#"{"responses": [{"reply": {"utterance_text_v2": "Sure."}, "confidence": 0.9}, {"reply": {"utterance_text_v2": "No."}, "confidence": 0.1}]}"#,
        texts: &["Sure.", "No."],
        stated: &[Some(0.9), Some(0.1)],
        kind: "nested_value",
    },
    // A reply cut off inside its first candidate's text.
    Case {
        name: "cut inside the first text",
        raw: r#"{"responses": [{"text": "I would really like to help the children, but I need to think about how much I can"#,
        texts: &["I would really like to help the children, but I need to think about how much I can"],
        stated: &[None],
        kind: "text_cut",
    },
    Case {
        name: "cut inside the first text, pretty-printed, after reasoning",
        raw: "{\n  \"reasoning\": \"She is careful with money.\",\n  \"responses\": [\n    {\n      \"text\": \"Well, I can spare a little, maybe fifty cents, and then \\\"we'll see\\\" ",
        texts: &["Well, I can spare a little, maybe fifty cents, and then \"we'll see\""],
        stated: &[None],
        kind: "text_cut",
    },
    Case {
        name: "cut inside an escape of the first text",
        raw: r#"{"responses": [{"text": "Caf\u00e9 talk aside, I\u20"#,
        texts: &["Caf\u{e9} talk aside, I"],
        stated: &[None],
        kind: "text_cut",
    },
    Case {
        name: "cut inside the first text of tags",
        raw: "<responses>\n<response>\n<text>I would really like to help the kids, but",
        texts: &["I would really like to help the kids, but"],
        stated: &[None],
        kind: "text_cut",
    },
    Case {
        name: "cut inside the first text of a fenced list",
        raw: "```json\n{\"responses\": [{\"text\": \"Honestly, the kids deserve it",
        texts: &["Honestly, the kids deserve it"],
        stated: &[None],
        kind: "text_cut",
    },
];

#[test]
fn typographic_quotes_separators_nested_texts_and_cut_first_texts() {
    let failures = case_failures(MORE_CASES);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        MORE_CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn typographic_quotes_inside_ascii_strings_are_text() {
    // Broken JSON (a trailing comma) whose texts hold curly quotes: read as written.
    let raw = "{\"responses\": [{\"text\": \"He said \u{201c}no\u{201d}.\", \"probability\": 0.5}, {\"text\": \"\u{201c}Yes,\u{201d} she said.\", \"probability\": 0.5},]}";
    let reply = parse(raw);
    let texts: Vec<_> = reply.candidates.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["He said \u{201c}no\u{201d}.", "\u{201c}Yes,\u{201d} she said."]);
    assert_eq!(reply.candidates[0].repairs, vec![Repair::TrailingCommas]);
}

#[test]
fn nested_values_record_their_path() {
    let raw = r#"{"responses": [{"text": {"content": "Sure."}, "probability": {"value": 0.6}}, {"text": "No.", "probability": 0.4}]}"#;
    let reply = parse(raw);
    assert_eq!(
        reply.candidates[0].repairs,
        vec![
            Repair::NestedValue { path: "text.content".into() },
            Repair::NestedValue { path: "probability.value".into() }
        ]
    );
    assert!(reply.candidates[1].repairs.is_empty(), "{:?}", reply.candidates[1].repairs);
}

#[test]
fn a_cut_first_text_is_kept_but_a_cut_key_or_later_text_is_not() {
    let raw = r#"{"responses": [{"text": "I'd give a dollar if"#;
    let reply = parse_k(raw, KSpec::Fixed { k: 5 });
    assert_eq!(reply.candidates.len(), 1);
    assert_eq!(reply.candidates[0].text, "I'd give a dollar if");
    assert_eq!(
        reply.candidates[0].repairs,
        vec![
            Repair::TextCut,
            Repair::FewerThanRequested { found: 1, requested: 5 },
            Repair::Uniform,
            Repair::MissingProbability
        ]
    );
    // Cut inside a key: nothing to keep.
    assert!(parse_candidates(r#"{"responses": [{"te"#, None).is_err());
    // Cut inside the second text: the first, complete item is kept, the cut one dropped.
    let reply = parse(r#"{"responses": [{"text": "A", "probability": 0.5}, {"text": "B is cut"#);
    let texts: Vec<_> = reply.candidates.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["A"]);
    assert!(!reply.candidates[0].repairs.contains(&Repair::TextCut));
}

// ---------------------------------------------------------------------------------------
// Properties of every shape

/// The shapes a list of (text, probability in hundredths) is written in, with the repair
/// kind each must record.
const SHAPES: &[(&str, &str)] = &[
    ("json", ""),
    ("wrapped", "wrapped_object"),
    ("encoded", "string_encoded_json"),
    ("array", "bare_array"),
    ("fenced", "code_fence"),
    ("tags", "xml_tags"),
    ("attributes", "xml_tags"),
    ("table", "markdown_table"),
    ("numbered", "numbered_list"),
    ("bullets", "numbered_list"),
    ("labelled", "labelled_blocks"),
    ("yaml", "yaml_list"),
];

fn render(shape: &str, items: &[(String, u32)]) -> String {
    let p = |h: u32| format!("{:.2}", f64::from(h) / 100.0);
    let json_list = || {
        let objs: Vec<String> = items
            .iter()
            .map(|(t, h)| {
                format!("{{\"text\": {}, \"probability\": {}}}", serde_json::to_string(t).unwrap(), p(*h))
            })
            .collect();
        format!("[{}]", objs.join(", "))
    };
    let lines = |f: &dyn Fn(usize, &str, u32) -> String| {
        items.iter().enumerate().map(|(i, (t, h))| f(i + 1, t, *h)).collect::<Vec<_>>().join("\n")
    };
    match shape {
        "json" => format!("{{\"responses\": {}}}", json_list()),
        "wrapped" => format!("{{\"result\": {{\"responses\": {}}}}}", json_list()),
        "encoded" => serde_json::to_string(&format!("{{\"responses\": {}}}", json_list())).unwrap(),
        "array" => json_list(),
        "fenced" => format!("Here you go:\n```json\n{{\"responses\": {}}}\n```\nEnjoy!", json_list()),
        "tags" => format!(
            "<responses>\n{}\n</responses>",
            lines(&|_, t, h| format!(
                "<response><text>{t}</text><probability>{}</probability></response>",
                p(h)
            ))
        ),
        "attributes" => lines(&|_, t, h| format!("<response probability=\"{}\">{t}</response>", p(h))),
        "table" => format!(
            "| # | Response | Probability |\n|---|---|---|\n{}",
            lines(&|i, t, h| format!("| {i} | {t} | {} |", p(h)))
        ),
        "numbered" => format!(
            "Here are my responses:\n{}",
            lines(&|i, t, h| format!("{i}. {t} (probability: {})", p(h)))
        ),
        "bullets" => lines(&|_, t, h| format!("- \"{t}\" — {h}%")),
        "labelled" => lines(&|i, t, h| format!("Response {i}: {t}\nProbability: {}\n", p(h))),
        "yaml" => lines(&|_, t, h| format!("- text: {t}\n  probability: {}", p(h))),
        other => unreachable!("{other}"),
    }
}

/// Distinct texts like real replies: words, commas, apostrophes, amounts, final punctuation.
fn texts() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("[A-Z][a-z]{1,7}(,? [a-z']{1,7}| \\$[1-9]){0,5}[.!?]", 1..6)
        .prop_map(|set| set.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

fn shaped() -> impl Strategy<Value = (usize, Vec<(String, u32)>)> {
    (0..SHAPES.len(), texts()).prop_flat_map(|(shape, texts)| {
        let n = texts.len();
        (Just(shape), Just(texts), prop::collection::vec(1u32..100, n))
            .prop_map(|(shape, texts, hs)| (shape, texts.into_iter().zip(hs).collect()))
    })
}

/// One edit of a reply: cut it, delete a span, insert a token, or replace a character.
#[derive(Debug, Clone)]
enum Edit {
    Cut(prop::sample::Index),
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, &'static str),
    Replace(prop::sample::Index, char),
}

const EDIT_TOKENS: &[&str] = &[
    "<",
    ">",
    "</",
    "<response>",
    "</text>",
    "<probability>",
    "|",
    "|---|",
    "\n",
    "- ",
    "1. ",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\\\"",
    ":",
    "0.",
    "40%",
    "probability: ",
    "```",
    "Response 3:",
    "&amp;",
    "  ",
    "—",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Edit::Cut),
        (any::<prop::sample::Index>(), 1usize..12).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<prop::sample::Index>(), prop::sample::select(EDIT_TOKENS))
            .prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<prop::sample::Index>(), any::<char>()).prop_map(|(i, c)| Edit::Replace(i, c)),
    ]
}

fn apply(s: &str, e: &Edit) -> String {
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    let at = |i: &prop::sample::Index| bounds[i.index(bounds.len())];
    match e {
        Edit::Cut(i) => s[..at(i)].to_string(),
        Edit::Delete(i, n) => {
            let k = i.index(bounds.len());
            let end = bounds[(k + n).min(bounds.len() - 1)];
            format!("{}{}", &s[..bounds[k]], &s[end..])
        }
        Edit::Insert(i, t) => format!("{}{t}{}", &s[..at(i)], &s[at(i)..]),
        Edit::Replace(_, _) if s.is_empty() => String::new(),
        Edit::Replace(i, c) => {
            let k = i.index(bounds.len() - 1);
            format!("{}{c}{}", &s[..bounds[k]], &s[bounds[k + 1].min(s.len())..])
        }
    }
}

/// A text as compared across a cut: without quotes and emphasis.
fn bare(t: &str) -> String {
    t.chars().filter(|c| !matches!(c, '"' | '*')).collect::<String>().trim().to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    /// Every shape, written out whole, gives back exactly its texts and probabilities.
    #[test]
    fn every_shape_round_trips((shape, items) in shaped()) {
        let (name, kind) = SHAPES[shape];
        let raw = render(name, &items);
        let reply = parse_candidates(&raw, None).map_err(|e| TestCaseError::fail(format!("{name}: {e}\n{raw}")))?;
        let texts: Vec<&str> = reply.candidates.iter().map(|c| c.text.as_str()).collect();
        let want: Vec<&str> = items.iter().map(|(t, _)| t.as_str()).collect();
        prop_assert_eq!(texts, want, "{}: {}", name, raw);
        for (c, (_, h)) in reply.candidates.iter().zip(&items) {
            let stated = c.raw_probability.unwrap_or(f64::NAN);
            prop_assert!((stated - f64::from(*h) / 100.0).abs() < 1e-9, "{}: {:?} stated {}\n{}", name, c.text, stated, raw);
            if !kind.is_empty() {
                let kinds = serde_json::to_string(&c.repairs).unwrap();
                prop_assert!(kinds.contains(&format!("\"kind\":\"{kind}\"")), "{}: {}", name, kinds);
            }
        }
    }

    /// Any edit of a reply of any shape gives a valid distribution or an error, never a panic.
    #[test]
    fn edited_replies_never_panic((shape, items) in shaped(), edits in prop::collection::vec(edit(), 1..4)) {
        let mut raw = render(SHAPES[shape].0, &items);
        for e in &edits {
            raw = apply(&raw, e);
        }
        assert_distribution(&raw, None);
        assert_distribution(&raw, Some(KSpec::Fixed { k: 3 }));
    }

    /// A reply cut anywhere never yields a text that was not (the start of) one written.
    #[test]
    fn cut_replies_never_invent_texts((shape, items) in shaped(), at in any::<prop::sample::Index>()) {
        let raw = render(SHAPES[shape].0, &items);
        let cut = apply(&raw, &Edit::Cut(at));
        assert_distribution(&cut, None);
        if let Ok(reply) = parse_candidates(&cut, None) {
            for c in &reply.candidates {
                let got = bare(&c.text);
                prop_assert!(
                    items.iter().any(|(t, _)| bare(t).starts_with(&got)),
                    "{}: invented {:?} from\n{}", SHAPES[shape].0, c.text, cut
                );
            }
        }
    }
}

#[test]
fn prose_is_never_a_candidate() {
    for raw in [
        "I cannot help with that.",
        "Sure! I'd love to help. Probability: 0.9",
        "Answer: I'd give $1",
        "I'd give 40% of my bonus to charity.",
        "Well, I think 0.5 is fair.",
        "Here are 3 responses (ranked):",
        "I think the answer is 42 (p=0.9).",
        "0.5: that's my guess.",
        "<p>I would rather not.</p>",
        "Response: I'd give $1.\n\nThat is all.",
    ] {
        assert!(parse_candidates(raw, None).is_err(), "{raw:?} gave {:?}", parse_candidates(raw, None));
    }
}

#[test]
fn sequence_mode_reads_text_shapes_without_probabilities() {
    let raw = "1. Sure. (40%)\n2. No. (60%)";
    let reply = parse_candidates_with(raw, &ParseOptions { k: None, ignore_probabilities: true }).unwrap();
    let r = vec![Repair::NumberedList];
    check(&reply, &[("Sure.", 0.5, None, r.clone()), ("No.", 0.5, None, r)]);
}

/// A reply nested far deeper than any candidate list is refused in one pass before parsing
/// (every shape tried on it would cost time growing with the square of the nesting), and a
/// one-reply answer so nested is taken as text.
#[test]
fn a_deeply_nested_reply_is_refused_before_parsing() {
    let depth = 200_000;
    for (open, close) in [("[", "]"), ("{\"a\":", "}"), ("{\"responses\": [", "]}")] {
        let reply = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        match parse_candidates(&reply, Some(KSpec::Fixed { k: 3 })) {
            Err(ParseError::InvalidJson(reason)) => {
                assert!(reason.contains("nested deeper than"), "{reason}")
            }
            other => panic!("expected a nesting error, got {other:?}"),
        }
        assert!(matches!(parse_cot(&reply), Err(ParseError::InvalidJson(_))));
        assert_eq!(parse_single(&reply).unwrap().candidates[0].text, reply);
    }
    // A list nested as deep as a real one still parses.
    let ok = parse_candidates(r#"{"responses": [{"text": "Yes", "probability": 1.0}]}"#, None).unwrap();
    assert_eq!(ok.candidates[0].text, "Yes");
}
