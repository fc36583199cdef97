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
    assert!(matches!(parse_cot("just some words"), Err(ParseError::NoResponse(_))));
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
        (
            format!("{{\"text\": {}, \"probability\": {p}}}", serde_json::to_string(&t).unwrap()),
            !t.trim().is_empty(),
        )
    });
    (prop::collection::vec(item, 0..8), any::<bool>(), "[^`<]{0,20}").prop_map(|(items, fence, prose)| {
        let some_text = items.iter().any(|(_, t)| *t);
        let items: Vec<String> = items.into_iter().map(|(i, _)| i).collect();
        let obj = format!("{{\"responses\": [{}]}}", items.join(", "));
        let raw = if fence { format!("{prose}\n```json\n{obj}\n```") } else { format!("{prose} {obj}") };
        (raw, some_text)
    })
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
