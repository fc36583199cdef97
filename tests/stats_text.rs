//! Distinct-N, tokenisation, syllables, sentence splitting and Flesch–Kincaid, with
//! expected values computed by hand from the documented rules.

use vsim::stats::text::{distinct_n, flesch_kincaid_grade, sentences, syllables, tokens, Pooling};

#[test]
fn tokens_lowercase_and_keep_inner_apostrophes() {
    assert_eq!(
        tokens("Don't stop — it’s 'quoted' & $1.50!"),
        vec!["don't", "stop", "it's", "quoted", "1", "50"]
    );
    assert_eq!(tokens("Ünïcode STRASSE straße"), vec!["ünïcode", "strasse", "straße"]);
    assert!(tokens(" ... ").is_empty());
}

#[test]
fn distinct_n_pooled_and_per_text() {
    let texts = ["The cat sat.", "the cat ran"];
    // Unigrams: the, cat, sat, the, cat, ran -> 4 distinct of 6.
    assert_eq!(distinct_n(&texts, 1, Pooling::Pooled), Some(4.0 / 6.0));
    assert_eq!(distinct_n(&texts, 1, Pooling::PerTextMean), Some(1.0));
    // Bigrams: (the cat), (cat sat), (the cat), (cat ran) -> 3 of 4; none span texts.
    assert_eq!(distinct_n(&texts, 2, Pooling::Pooled), Some(0.75));
    assert_eq!(distinct_n(&texts, 2, Pooling::PerTextMean), Some(1.0));

    let texts = ["a a a b", "c d"];
    assert_eq!(distinct_n(&texts, 1, Pooling::PerTextMean), Some((0.5 + 1.0) / 2.0));
    assert_eq!(distinct_n(&texts, 1, Pooling::Pooled), Some(4.0 / 6.0));
}

#[test]
fn distinct_n_undefined_cases() {
    assert_eq!(distinct_n(&["one two"], 3, Pooling::Pooled), None);
    assert_eq!(distinct_n(&["one two"], 0, Pooling::Pooled), None);
    assert_eq!(distinct_n::<&str>(&[], 1, Pooling::PerTextMean), None);
    // Texts shorter than n are skipped in the per-text mean.
    assert_eq!(distinct_n(&["hello", "world peace"], 2, Pooling::PerTextMean), Some(1.0));
}

#[test]
fn syllable_heuristic() {
    let cases = [
        ("the", 1),
        ("cat", 1),
        ("donate", 2),
        ("dollars", 2),
        ("children", 2),
        ("table", 2),
        ("people", 2),
        ("free", 1),
        ("canoe", 2),
        ("whole", 1),
        ("helped", 1),
        ("wanted", 2),
        ("makes", 1),
        ("boxes", 2),
        ("wishes", 2),
        ("changes", 2),
        ("yellow", 2),
        ("beautiful", 3),
        ("organization", 5),
        ("Don't", 1),
        ("123", 0),
        ("", 0),
    ];
    for (word, want) in cases {
        assert_eq!(syllables(word), want, "{word}");
    }
}

#[test]
fn sentence_splitting() {
    assert_eq!(sentences("Hello there. How are you?"), vec!["Hello there.", "How are you?"]);
    assert_eq!(sentences("I gave $1.50 today."), vec!["I gave $1.50 today."]);
    assert_eq!(sentences("Wait... what?! Really"), vec!["Wait...", "what?!", "Really"]);
    assert_eq!(sentences("He said \"stop.\" Then left."), vec!["He said \"stop.\"", "Then left."]);
    assert!(sentences("   ").is_empty());
}

#[test]
fn flesch_kincaid_hand_computed() {
    // 6 words, 1 sentence, 6 syllables: 0.39*6 + 11.8*1 - 15.59 = -1.45.
    let g = flesch_kincaid_grade("The cat sat on the mat.").unwrap();
    assert!((g - (-1.45)).abs() < 1e-12, "{g}");
    // 8 words, 2 sentences, 11 syllables (do-nate, dol-lars, chil-dren):
    // 0.39*4 + 11.8*11/8 - 15.59 = 2.195.
    let g = flesch_kincaid_grade("I will donate two dollars. Children need help!").unwrap();
    assert!((g - 2.195).abs() < 1e-12, "{g}");
    // Numbers are not words: 5 words, 7 syllables, 1 sentence -> 1.95 + 16.52 - 15.59 = 2.88.
    let g = flesch_kincaid_grade("Save the Children helps 1000 children.").unwrap();
    assert!((g - 2.88).abs() < 1e-12, "{g}");
}

#[test]
fn flesch_kincaid_none_without_words() {
    assert_eq!(flesch_kincaid_grade(""), None);
    assert_eq!(flesch_kincaid_grade("..."), None);
    assert_eq!(flesch_kincaid_grade("123 456."), None);
}
