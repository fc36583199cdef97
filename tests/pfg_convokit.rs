//! PersuasionForGood in ConvoKit's layout: a tiny hand-written corpus loads into the same
//! participants, donations, utterances and personas as the CSV release; broken corpora give
//! errors naming the file and field; `fetch` against a local server unpacks and loads the
//! corpus, and reports HTTP errors; `vsim data summary` reads both layouts.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use assert_cmd::Command;
use vsim::data::convokit::{CONVERSATIONS, SPEAKERS, UTTERANCES};
use vsim::data::fetch::fetch_convokit_corpus;
use vsim::data::persuasionforgood::{persona_from_participant, PfgDataset, PfgRole, FULL_INFO};
use vsim::progress::Progress;

/// Three conversations, written the way Python's `json` writes ConvoKit corpora (bare `NaN`
/// for missing values). `dlg-a`: full survey answers without the `.x` suffix, roles in
/// `meta.role`; `dlg-b`: `.x` names, no persuadee donation, roles from the speakers;
/// `dlg-c`: a persuadee donation above $2.
const CONVERSATIONS_JSON: &str = r#"{
  "a0": {"meta": {"dialogue_id": "dlg-a", "user_er": "u_er1", "user_ee": "u_ee1", "donation_er": 1.0, "donation_ee": 0.5, "is_annotated": true, "intended": NaN}, "vectors": []},
  "b0": {"meta": {"dialogue_id": "dlg-b", "user_er": "u_er2", "user_ee": "u_ee2", "donation_er": 0.0, "donation_ee": NaN, "is_annotated": false}, "vectors": []},
  "c0": {"meta": {"dialogue_id": "dlg-c", "user_er": "u_er1", "user_ee": "u_ee3", "donation_er": "0.25", "donation_ee": 5.0}, "vectors": []}
}"#;

const SPEAKERS_JSON: &str = r#"{
  "u_er1": {"meta": {"age": 29, "sex": "Female"}, "vectors": []},
  "u_ee1": {"meta": {"age": 34.0, "sex": "Male", "race": "White", "edu": "Four year college",
      "marital": "Unmarried", "employment": "Employed for wages", "income": 5, "religion": "Atheist",
      "ideology": "Liberal", "extrovert": 3.2, "agreeable": 4.0, "conscientious": 3.6, "neurotic": 1.6,
      "open": 4.4, "care": 5.0, "fairness": 4.6, "loyalty": 3.0, "authority": 2.0, "purity": 2.5,
      "freedom": 4.0, "conform": 3, "tradition": 2, "benevolence": 6, "universalism": 5.5,
      "self_direction": 5, "stimulation": 4, "hedonism": 3, "achievement": 3, "power": 1,
      "security": 4, "rational": 4.5, "intuitive": 2.5}, "vectors": []},
  "u_er2": {"meta": {"age.x": 41, "sex.x": "Male", "extrovert.x": NaN}, "vectors": []},
  "u_ee2": {"meta": {"age.x": 52, "sex.x": "Female", "income.x": "NA", "care.x": 3.0}, "vectors": []},
  "u_ee3": {"meta": {}, "vectors": []}
}"#;

const UTTERANCES_JSONL: &str = r#"{"id": "a0", "speaker": "u_er1", "conversation_id": "a0", "reply_to": null, "timestamp": null, "text": "Hi! Have you heard of Save the Children?", "meta": {"role": 0, "user_turn_id": 0, "label_1": NaN}, "vectors": []}
{"id": "a1", "speaker": "u_ee1", "conversation_id": "a0", "reply_to": "a0", "timestamp": null, "text": "No, what is it?", "meta": {"role": 1}, "vectors": []}
{"id": "a2", "speaker": "u_er1", "conversation_id": "a0", "reply_to": "a1", "timestamp": null, "text": "A charity for children.", "meta": {"role": 0}, "vectors": []}
{"id": "a3", "speaker": "u_er1", "conversation_id": "a0", "reply_to": "a2", "timestamp": null, "text": "Would you donate?", "meta": {"role": 0}, "vectors": []}
{"id": "a4", "speaker": "u_ee1", "conversation_id": "a0", "reply_to": "a3", "timestamp": null, "text": "Sure, $0.50.", "meta": {"role": 1}, "vectors": []}

{"id": "b0", "user": "u_er2", "root": "b0", "reply_to": null, "text": "Hello there.", "meta": {}}
{"id": "b1", "user": "u_ee2", "root": "b0", "reply_to": "b0", "text": "Hi.", "meta": {}}
{"id": "c0", "speaker": "u_er1", "conversation_id": "c0", "reply_to": null, "text": "Hello!", "meta": {"role": "0"}}
"#;

fn write_corpus(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(CONVERSATIONS), CONVERSATIONS_JSON)?;
    std::fs::write(dir.join(SPEAKERS), SPEAKERS_JSON)?;
    std::fs::write(dir.join(UTTERANCES), UTTERANCES_JSONL)?;
    std::fs::write(dir.join("corpus.json"), "{}")?;
    std::fs::write(dir.join("index.json"), r#"{"version": 1}"#)?;
    Ok(())
}

/// A zip of the tiny corpus, with its files under `persuasionforgood-corpus/` as ConvoKit's is.
fn corpus_zip() -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.add_directory("persuasionforgood-corpus/", options)?;
    for (name, text) in [
        (CONVERSATIONS, CONVERSATIONS_JSON),
        (SPEAKERS, SPEAKERS_JSON),
        (UTTERANCES, UTTERANCES_JSONL),
        ("index.json", r#"{"version": 1}"#),
    ] {
        zip.start_file(format!("persuasionforgood-corpus/{name}"), options)?;
        zip.write_all(text.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Serves `body` at `/pfg.zip` on 127.0.0.1 (any other path: 404).
async fn serve(body: Vec<u8>) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/pfg.zip", axum::routing::get(move || async move { body.clone() }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn err_text<T>(r: Result<T, impl std::fmt::Display>) -> String {
    match r {
        Ok(_) => String::from("(no error)"),
        Err(e) => e.to_string(),
    }
}

fn check_tiny(data: &PfgDataset) -> Result<()> {
    assert_eq!(data.participants.len(), 6);
    assert_eq!(data.with_role(PfgRole::Persuadee).count(), 3);
    let rows: Vec<(u64, &str, &str, PfgRole, Option<f64>)> = data
        .participants
        .iter()
        .map(|p| (p.row, p.dialogue_id.as_str(), p.user_id.as_str(), p.role, p.donation))
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, "dlg-a", "u_er1", PfgRole::Persuader, Some(1.0)),
            (2, "dlg-a", "u_ee1", PfgRole::Persuadee, Some(0.5)),
            (3, "dlg-b", "u_er2", PfgRole::Persuader, Some(0.0)),
            (4, "dlg-b", "u_ee2", PfgRole::Persuadee, None),
            (5, "dlg-c", "u_er1", PfgRole::Persuader, Some(0.25)),
            (6, "dlg-c", "u_ee3", PfgRole::Persuadee, Some(5.0)),
        ]
    );

    // Turns as in full_dialog.csv: a new turn when the persuader speaks after the persuadee.
    let a = data.dialogue("dlg-a").unwrap_or_default();
    let turns: Vec<(u32, PfgRole)> = a.iter().map(|u| (u.turn, u.role)).collect();
    use PfgRole::{Persuadee as Ee, Persuader as Er};
    assert_eq!(turns, vec![(0, Er), (0, Ee), (1, Er), (1, Er), (1, Ee)]);
    assert_eq!(a[4].text, "Sure, $0.50.");
    let b = data.dialogue("dlg-b").unwrap_or_default();
    assert_eq!(b.iter().map(|u| u.role).collect::<Vec<_>>(), vec![Er, Ee]);
    assert_eq!(data.dialogue("dlg-c").map(<[_]>::len), Some(1));
    assert_eq!(data.participant("dlg-a", Ee).and_then(|p| p.turns), Some(2));

    let ee1 = data.participant("dlg-a", Ee).ok_or_else(|| anyhow::anyhow!("no persuadee in dlg-a"))?;
    assert_eq!((ee1.age, ee1.income_code, ee1.big_five.extraversion), (Some(34), Some(5), Some(3.2)));
    let persona = persona_from_participant(ee1);
    assert_eq!(persona.id, "dlg-a-persuadee");
    assert_eq!(persona.attribute("age"), Some("34"));
    assert_eq!(persona.attribute("sex"), Some("Male"));
    assert_eq!(persona.attribute("income"), Some("$40,000 to $49,999 a year (survey code 5)"));
    let rendered = persona.render();
    for part in ["extraversion 3.2 (moderate)", "benevolence 6.0", "care 5.0", "more rational than intuitive"]
    {
        assert!(rendered.contains(part), "{part} missing from:\n{rendered}");
    }

    // `.x` names are read too; "NA" and NaN are missing, never rendered.
    let ee2 = data.participant("dlg-b", Ee).ok_or_else(|| anyhow::anyhow!("no persuadee in dlg-b"))?;
    assert_eq!((ee2.age, ee2.income_code, ee2.moral_foundations.care), (Some(52), None, Some(3.0)));
    let er2 = persona_from_participant(data.participant("dlg-b", Er).unwrap_or(ee2));
    assert_eq!(er2.attribute("sex"), Some("Male"));
    assert!(er2.attribute("personality").is_none());
    assert!(persona_from_participant(data.participant("dlg-c", Ee).unwrap_or(ee2)).attributes.is_empty());
    Ok(())
}

#[test]
fn a_tiny_convokit_corpus_loads_like_the_csv_release() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let corpus = dir.path().join("persuasionforgood-corpus");
    write_corpus(&corpus)?;
    check_tiny(&PfgDataset::load_convokit(&corpus)?)?;
    // load_any finds it from the corpus directory, its parent, or one of its files.
    check_tiny(&PfgDataset::load_any(&corpus)?)?;
    check_tiny(&PfgDataset::load_any(dir.path())?)?;
    check_tiny(&PfgDataset::load_any(corpus.join(UTTERANCES))?)?;

    let (kept, report) = PfgDataset::load_any(&corpus)?.filter_consistent();
    assert_eq!((report.total, report.kept, report.kept_persuadees), (6, 4, 1));
    assert_eq!((report.persuadees.missing, report.persuadees.above_max), (1, 1));
    assert_eq!(kept.participants.len(), 4);
    Ok(())
}

#[test]
fn load_any_reads_the_csv_layout_and_rejects_other_directories() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let text = err_text(PfgDataset::load_any(dir.path()));
    assert!(text.contains("not a PersuasionForGood dataset") && text.contains("utterances.jsonl"), "{text}");
    let text = err_text(PfgDataset::load_any(dir.path().join("nowhere")));
    assert!(text.contains("nowhere"), "{text}");

    if let Some(real) = real_data_dir() {
        let data = PfgDataset::load_any(&real)?;
        assert_eq!((data.participants.len(), data.dialogues.len()), (2034, 1017));
    }
    Ok(())
}

/// Writes the tiny corpus with `file` replaced by `text` (or removed when `None`).
fn broken(file: &str, text: Option<&str>) -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let corpus = dir.path().join("c");
    write_corpus(&corpus)?;
    match text {
        Some(t) => std::fs::write(corpus.join(file), t)?,
        None => std::fs::remove_file(corpus.join(file))?,
    }
    Ok((dir, corpus))
}

#[test]
fn broken_corpora_name_the_file_and_the_field() -> Result<()> {
    let cases: Vec<(&str, Option<String>, Vec<&str>)> = vec![
        (SPEAKERS, None, vec![SPEAKERS]),
        (CONVERSATIONS, None, vec![CONVERSATIONS]),
        (
            CONVERSATIONS,
            Some(CONVERSATIONS_JSON.replace("\"user_ee\": \"u_ee2\", ", "")),
            vec![CONVERSATIONS, "conversation `b0`", "missing field `user_ee`"],
        ),
        (
            CONVERSATIONS,
            Some(CONVERSATIONS_JSON.replace("0.5", "\"lots\"")),
            vec![CONVERSATIONS, "donation_ee", "\"lots\""],
        ),
        (CONVERSATIONS, Some("[1, 2]".into()), vec![CONVERSATIONS, "a JSON object keyed by id"]),
        (CONVERSATIONS, Some("{\"a0\": ".into()), vec![CONVERSATIONS, "malformed JSON"]),
        (
            SPEAKERS,
            Some(SPEAKERS_JSON.replace("\"u_ee3\"", "\"someone\"")),
            vec![SPEAKERS, "u_ee3", "conversation `c0`"],
        ),
        (SPEAKERS, Some(SPEAKERS_JSON.replace("34.0", "34.5")), vec![SPEAKERS, "u_ee1", "`age`", "34.5"]),
        (
            UTTERANCES,
            Some(UTTERANCES_JSONL.replace(", \"text\": \"Hi.\"", "")),
            vec![UTTERANCES, "line 8", "missing field `text`"],
        ),
        (
            UTTERANCES,
            Some(UTTERANCES_JSONL.replace("\"role\": 1}", "\"role\": 7}")),
            vec![UTTERANCES, "line 2", "meta.role"],
        ),
        (
            UTTERANCES,
            Some(UTTERANCES_JSONL.replace("\"root\": \"b0\", \"reply_to\": null", "\"root\": \"zz\"")),
            vec![UTTERANCES, "\"zz\"", CONVERSATIONS],
        ),
        (UTTERANCES, Some("{\"id\": 1,\n".into()), vec![UTTERANCES, "line 1", "malformed JSON"]),
    ];
    for (file, text, expected) in cases {
        let (_dir, corpus) = broken(file, text.as_deref())?;
        let message = err_text(PfgDataset::load_convokit(&corpus));
        for part in expected {
            assert!(message.contains(part), "`{part}` not in: {message}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn fetch_downloads_unpacks_and_loads_the_corpus() -> Result<()> {
    let addr = serve(corpus_zip()?).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("datasets").join("persuasionforgood-corpus");
    let url = format!("http://{addr}/pfg.zip");
    let data = fetch_convokit_corpus(&url, &dest, &Progress::silent()).await?;
    check_tiny(&data)?;
    check_tiny(&PfgDataset::load_any(&dest)?)?;
    // Fetching again replaces the corpus in place and leaves no temporary files behind.
    fetch_convokit_corpus(&url, &dest, &Progress::silent()).await?;
    let names: Vec<String> = std::fs::read_dir(dest.parent().unwrap_or(dir.path()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, vec!["persuasionforgood-corpus".to_string()]);
    Ok(())
}

#[tokio::test]
async fn fetch_reports_http_errors_bad_archives_and_refused_connections() -> Result<()> {
    let addr = serve(b"not a zip".to_vec()).await?;
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("pfg");

    let text = err_text(
        fetch_convokit_corpus(&format!("http://{addr}/missing.zip"), &dest, &Progress::silent()).await,
    );
    assert!(text.contains("HTTP 404") && text.contains("--human pfg:DIR"), "{text}");
    let text =
        err_text(fetch_convokit_corpus(&format!("http://{addr}/pfg.zip"), &dest, &Progress::silent()).await);
    assert!(text.contains("not a readable zip"), "{text}");

    // A port nobody listens on: what an offline machine sees.
    let (_reserved, port) = common::refusing_port();
    let closed = format!("127.0.0.1:{port}");
    let text = err_text(
        fetch_convokit_corpus(&format!("http://{closed}/pfg.zip"), &dest, &Progress::silent()).await,
    );
    assert!(text.contains("cannot download") && text.contains("--population pfg:DIR"), "{text}");
    assert!(!dest.exists());

    // A directory of other files is never replaced.
    let addr = serve(corpus_zip()?).await?;
    std::fs::create_dir_all(&dest)?;
    std::fs::write(dest.join("notes.txt"), "mine")?;
    let text =
        err_text(fetch_convokit_corpus(&format!("http://{addr}/pfg.zip"), &dest, &Progress::silent()).await);
    assert!(text.contains("not a ConvoKit corpus"), "{text}");
    assert_eq!(std::fs::read_to_string(dest.join("notes.txt"))?, "mine");
    Ok(())
}

fn real_data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/persuasionforgood"));
    if dir.join(FULL_INFO).is_file() {
        Some(dir)
    } else {
        eprintln!("note: {} not found; skipping the real-data part", dir.display());
        None
    }
}

#[test]
fn data_summary_reports_counts_the_filter_and_the_split() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write_corpus(dir.path())?;
    let out = Command::cargo_bin("vsim")?
        .args(["data", "summary", &format!("pfg:{}", dir.path().display()), "--split", "all"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for part in [
        "participants: 6 (3 persuaders, 3 persuadees)",
        "dialogues: 3",
        "utterances: 8",
        "kept 4 of 6",
        "test 1, train 0",
        "selected: all (1 persuadees)",
    ] {
        assert!(stdout.contains(part), "`{part}` not in:\n{stdout}");
    }

    let out = Command::cargo_bin("vsim")?.args(["data", "summary", "pfg:/no/such/dir"]).output()?;
    assert_eq!(out.status.code(), Some(2));

    let Some(real) = real_data_dir() else { return Ok(()) };
    let out =
        Command::cargo_bin("vsim")?.args(["data", "summary", &format!("pfg:{}", real.display())]).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for part in
        ["participants: 2034 (1017 persuaders, 1017 persuadees)", "dialogues: 1017", "utterances: 20932"]
    {
        assert!(stdout.contains(part), "`{part}` not in:\n{stdout}");
    }
    assert!(stdout.contains("dropped") && stdout.contains("above $2"), "{stdout}");
    assert!(stdout.contains("test 200, train "), "{stdout}");
    Ok(())
}

/// OpinionQA's wave 26: every file checked against its pinned sha256, installed only when all
/// match, and left alone when one does not.
#[tokio::test]
async fn opinionqa_wave_is_fetched_checked_and_installed_whole() -> Result<()> {
    use vsim::data::fetch::{fetch_opinionqa_w26, is_opinionqa_w26, OPINIONQA_W26_FILES};
    let wave = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/opinionqa/W26"));
    if !wave.join("info.csv").is_file() {
        eprintln!("note: {} not found; skipping", wave.display());
        return Ok(());
    }
    // Serves the wave's files, with info.csv altered under /bad.
    let files: Vec<(String, Vec<u8>)> = OPINIONQA_W26_FILES
        .iter()
        .map(|(n, _)| (n.to_string(), std::fs::read(wave.join(n)).unwrap()))
        .collect();
    let mut app = axum::Router::new();
    for (name, body) in files {
        let altered = if name == "info.csv" { [body.as_slice(), b"x"].concat() } else { body.clone() };
        app = app
            .route(&format!("/good/{name}"), axum::routing::get(move || async move { body.clone() }))
            .route(&format!("/bad/{name}"), axum::routing::get(move || async move { altered.clone() }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let tmp = tempfile::tempdir()?;
    let dest = tmp.path().join("data/opinionqa/W26");
    let err = err_text(fetch_opinionqa_w26(&format!("http://{addr}/bad"), &dest, &Progress::silent()).await);
    assert!(err.contains("info.csv") && err.contains("sha256"), "{err}");
    assert!(!dest.exists(), "nothing installed after a mismatch");
    fetch_opinionqa_w26(&format!("http://{addr}/good"), &dest, &Progress::silent()).await?;
    assert!(is_opinionqa_w26(&dest));
    // The shipped survey scenario's layout: the wave loads from there.
    let spec = vsim::survey::spec::load_survey(
        &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/survey_opinionqa_w26.toml")),
        Some(&dest),
    )?;
    assert_eq!(spec.questionnaire.items.len(), 22);
    Ok(())
}
