//! Sweeps with explicit arms, evaluated against the human data of the people they simulated
//! and compared in one report: the library on a scripted model (including a cell whose
//! every dialogue fails), and `vsim sweep` end to end against the mock server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{BackendError, ChatRequest, SharedModel};
use vsim::eval::EvalOptions;
use vsim::mock::{MockConfig, MockServer};
use vsim::vs::OutputConstraint;
use vsim::vs::{KSpec, Method, Selection};
use vsim::workflow::sweep::{
    evaluate_sweep, load_sweep, parse_sweep, run_sweep, CellEvalStatus, SweepEvalOptions, SweepOptions,
};

/// The persuasion scenario cut to two turns, with the persona id in the persuadee's prompt
/// so that a scripted model knows whom it plays.
const SCENARIO: &str = r#"
name = "protocol"
[defaults]
model = "local"
[[roles]]
id = "persuader"
method = "direct"
persona = "paired"
system = "You ask for a donation."
[[roles]]
id = "persuadee"
method = "vs-standard"
k = 3
selection = "weighted"
persona = "population"
system = "PERSONA={{ persona.id }};"
[turns]
policy = "fixed"
first = "persuader"
edges = [["persuader", "persuadee"], ["persuadee", "persuader"]]
max_turns = 2
[[outcomes]]
name = "donation"
role = "persuadee"
type = "number"
min = 0
max = 2
question = "How much do you donate? A number of dollars from 0 to 2."
"#;

/// The paper's four arms, with small k.
const ARMS: &str = r#"
[[arms]]
method = "direct"

[[arms]]
name = "sequence"
method = "sequence"
k = 3
selection = "uniform"

[[arms]]
method = "vs-standard"
k = 3
selection = "weighted"

[[arms]]
name = "vs auto"
method = "vs-standard"
k = "model-decided"
selection = "uniform"
"#;

/// The 37 columns of full_info.csv, in the release's order.
const INFO_HEADER: &str = "B2,B3,B4,B6,B7,extrovert.x,agreeable.x,conscientious.x,neurotic.x,open.x,care.x,fairness.x,loyalty.x,authority.x,purity.x,freedom.x,conform.x,tradition.x,benevolence.x,universalism.x,self_direction.x,stimulation.x,hedonism.x,achievement.x,power.x,security.x,rational.x,intuitive.x,age.x,sex.x,race.x,edu.x,marital.x,employment.x,income.x,religion.x,ideology.x";

fn info_row(dialogue: &str, user: &str, role: u8, donation: &str) -> String {
    let mut cells =
        vec![dialogue.to_string(), user.to_string(), role.to_string(), donation.to_string(), "10".into()];
    cells.extend(std::iter::repeat_n("3".to_string(), 23));
    cells.extend(
        ["30", "Female", "White", "Bachelor", "Single", "Employed", "5", "None", "Moderate"]
            .map(String::from),
    );
    cells.join(",")
}

/// Five consistent persuadees (d1..d5, donations 0, 0.5, 1, 1.5, 2): the test split is all
/// of them.
fn small_pfg(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut rows = vec![INFO_HEADER.to_string()];
    for (d, donation) in [("d1", "0"), ("d2", "0.5"), ("d3", "1"), ("d4", "1.5"), ("d5", "2")] {
        rows.push(info_row(d, &format!("{d}-a"), 0, "0"));
        rows.push(info_row(d, &format!("{d}-b"), 1, donation));
    }
    std::fs::write(dir.join("full_info.csv"), rows.join("\n") + "\n").unwrap();
    let mut dialog = String::from(",Unit,Turn,B4,B2\n");
    for (i, d) in ["d1", "d2", "d3", "d4", "d5"].iter().enumerate() {
        dialog.push_str(&format!(
            "{},Would you give?,0,0,{d}\n{},Maybe I will give.,0,1,{d}\n",
            2 * i,
            2 * i + 1
        ));
    }
    std::fs::write(dir.join("full_dialog.csv"), dialog).unwrap();
    dir.to_path_buf()
}

/// A persuadee that states its participant's real donation; everything else is text.
fn truthful_model() -> ScriptedModel {
    let real: HashMap<&str, f64> =
        [("d1", 0.0), ("d2", 0.5), ("d3", 1.0), ("d4", 1.5), ("d5", 2.0)].into_iter().collect();
    ScriptedModel::from_fn(move |req: &ChatRequest| {
        let system = req.messages.first().map(|m| m.content.clone()).unwrap_or_default();
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Number { .. }) => {
                let id = system.split("PERSONA=").nth(1).and_then(|s| s.split('-').next()).unwrap_or("");
                format!(r#"{{"answer": {}}}"#, real.get(id).copied().unwrap_or(1.0))
            }
            // Through a list method: the real donation as the only answer.
            Some(OutputConstraint::Answers { .. }) => {
                let id = system.split("PERSONA=").nth(1).and_then(|s| s.split('-').next()).unwrap_or("");
                format!(
                    r#"{{"responses": [{{"answer": {}, "probability": 1.0}}]}}"#,
                    real.get(id).copied().unwrap_or(1.0)
                )
            }
            Some(OutputConstraint::Candidates { max_items, .. }) => {
                let items: Vec<String> = (0..(*max_items).min(4))
                    .map(|i| format!(r#"{{"text": "reply {i} of several", "probability": 0.{}}}"#, i + 1))
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(", "))
            }
            // What the persuadee stated in the chat, read by the extractor.
            Some(OutputConstraint::Stated { .. }) => r#"{"answer": 1.5}"#.to_string(),
            _ => "Would you donate to Save the Children today?".to_string(),
        })
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The table rows of a Markdown report whose first cell is `name`.
fn rows<'a>(md: &'a str, name: &str) -> Vec<&'a str> {
    md.lines().filter(|l| l.starts_with(&format!("| {name} |"))).collect()
}

fn eval_options() -> SweepEvalOptions {
    SweepEvalOptions {
        eval: EvalOptions { bootstrap: 30, seed: 5, ..EvalOptions::default() },
        ..Default::default()
    }
}

#[tokio::test]
async fn explicit_arms_are_run_evaluated_and_compared_in_one_report() {
    let tmp = tempfile::tempdir().unwrap();
    small_pfg(&tmp.path().join("pfg"));
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let sweep_file = tmp.path().join("paper.toml");
    let out = tmp.path().join("out");
    std::fs::write(
        &sweep_file,
        format!(
            "scenario = \"protocol.toml\"\nrole = \"persuadee\"\npopulation = \"pfg:pfg\"\nsplit = \"test\"\n\
             seed = 3\nconcurrency = 4\nmodel = \"scripted\"\nout = \"{}\"\n{ARMS}",
            out.display()
        ),
    )
    .unwrap();
    let sweep = load_sweep(&sweep_file).unwrap();
    // The human reference defaults to the population's own data.
    let human = sweep.human_spec().unwrap();
    assert_eq!(human, format!("pfg:{}", tmp.path().join("pfg").display()));
    let cells = sweep.cells();
    let names: Vec<&str> = cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["000-direct", "001-sequence", "002-vs-standard-k3-weighted", "003-vs_auto"]);
    assert_eq!(cells[3].k, Some(KSpec::ModelDecided { max: vsim::scenario::DEFAULT_K_MAX }));
    assert_eq!((cells[3].method, cells[3].selection), (Some(Method::VsStandard), Some(Selection::Uniform)));

    let model: SharedModel = Arc::new(truthful_model());
    let models: HashMap<String, SharedModel> = [("scripted".to_string(), model)].into();
    let summary = run_sweep(&sweep, &models, &SweepOptions::default()).await.unwrap();
    assert_eq!(summary.cells.len(), 4);
    assert!(summary.cells.iter().all(|c| c.stats.completed == 5 && c.stats.failed == 0));

    let evaluation =
        evaluate_sweep(&summary.out_dir, &cells, Some(&human), &eval_options(), None).await.unwrap();
    assert_eq!(evaluation.failed().count(), 0);
    for c in &evaluation.cells {
        assert!(matches!(c.status, CellEvalStatus::Evaluated { .. }), "{}: {:?}", c.dir.display(), c.status);
        for file in ["metrics.json", "report.md", "report.html"] {
            assert!(c.dir.join(file).is_file(), "{} lacks {file}", c.dir.display());
        }
        // Each cell is compared with exactly the people it simulated.
        let metrics: serde_json::Value = serde_json::from_str(&read(&c.dir.join("metrics.json"))).unwrap();
        assert_eq!(metrics["human"]["same_people"], true, "{}", c.dir.display());
        assert_eq!(metrics["human"]["split"], "test");
    }
    let written = evaluation.comparison.as_ref().unwrap();
    assert_eq!(written.markdown, out.join("report.md"));
    assert!(out.join("report.html").is_file());
    let md = read(&out.join("report.md"));
    let header = format!("| metric | {} | human reference |", names.join(" | "));
    assert!(md.contains(&header), "no column per arm and the human column:\n{md}");
    // The persuadee states its real donation: every arm matches the people exactly.
    for row in rows(&md, "KS statistic D") {
        assert_eq!(row.matches("| 0.000").count(), 4, "{row}");
    }
    for name in [
        "KS statistic D",
        "KS p-value",
        "L1 paired (mean |sim − real|)",
        "L1 density (21 edges on [0, 2])",
        "compared: simulated / human / paired",
        "missing (never counted as 0)",
        "failed dialogues",
    ] {
        assert!(!rows(&md, &escaped(name)).is_empty(), "no `{name}` row:\n{md}");
    }
    let compared = rows(&md, "compared: simulated / human / paired");
    assert_eq!(compared[0].matches("5 / 5 / 5").count(), 4, "{}", compared[0]);
    assert!(md.contains("### Language: persuadee"), "{md}");
    // Four arms and the human column: the same mean donation, $1.
    let mean = rows(&md, "mean");
    assert_eq!(mean[0].matches("1.000 [").count(), 5, "{}", mean[0]);
    // No outcome declares `stated = true`: no stated comparison.
    assert!(evaluation.stated_comparison.is_none() && !out.join("stated").exists());
}

#[tokio::test]
async fn a_stated_measure_is_evaluated_and_compared_beside_the_answers() {
    let tmp = tempfile::tempdir().unwrap();
    small_pfg(&tmp.path().join("pfg"));
    let scenario = SCENARIO.replace("question = \"How much", "stated = true\nquestion = \"How much");
    std::fs::write(tmp.path().join("protocol.toml"), scenario).unwrap();
    let sweep_file = tmp.path().join("paper.toml");
    let out = tmp.path().join("out");
    std::fs::write(
        &sweep_file,
        format!(
            "scenario = \"protocol.toml\"\nrole = \"persuadee\"\npopulation = \"pfg:pfg\"\nsplit = \"test\"\n\
             seed = 3\nmodel = \"scripted\"\nout = \"{}\"\n[[arms]]\nmethod = \"direct\"\n\
             [[arms]]\nmethod = \"vs-standard\"\nk = 3\n",
            out.display()
        ),
    )
    .unwrap();
    let sweep = load_sweep(&sweep_file).unwrap();
    let human = sweep.human_spec().unwrap();
    let model: SharedModel = Arc::new(truthful_model());
    let models: HashMap<String, SharedModel> = [("scripted".to_string(), model)].into();
    let summary = run_sweep(&sweep, &models, &SweepOptions::default()).await.unwrap();
    let evaluation =
        evaluate_sweep(&summary.out_dir, &sweep.cells(), Some(&human), &eval_options(), None).await.unwrap();
    let stated = evaluation.stated_comparison.as_ref().expect("a stated comparison");
    assert_eq!(stated.markdown, out.join("stated/report.md"));
    for c in &evaluation.cells {
        assert!(c.dir.join("stated/metrics.json").is_file(), "{}", c.dir.display());
    }
    // The stated comparison holds what was stated ($1.50 each time), the answers' one the
    // real donations (mean $1); the human column is the same people's in both.
    let md = read(&out.join("stated/report.md"));
    let mean = rows(&md, "mean");
    assert_eq!(mean[0].matches("1.500 [").count(), 2, "{}", mean[0]);
    let md = read(&out.join("report.md"));
    assert_eq!(rows(&md, "mean")[0].matches("1.000 [").count(), 3, "{md}");
}

/// `|` inside a Markdown cell is escaped.
fn escaped(s: &str) -> String {
    s.replace('|', "\\|")
}

#[tokio::test]
async fn a_cell_that_cannot_be_evaluated_does_not_lose_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    small_pfg(&tmp.path().join("pfg"));
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let sweep_file = tmp.path().join("two.toml");
    let text = "scenario = \"protocol.toml\"\nrole = \"persuadee\"\npopulation = \"pfg:pfg\"\nn = 3\n\
                model = \"scripted\"\nout = \"out\"\n\
                [[arms]]\nname = \"works\"\nmethod = \"direct\"\n\
                [[arms]]\nname = \"broken\"\nmethod = \"direct\"\nmodel = \"openai:broken\"\n";
    std::fs::write(&sweep_file, text).unwrap();
    let sweep = load_sweep(&sweep_file).unwrap();
    let broken: SharedModel = Arc::new(ScriptedModel::from_fn(|_: &ChatRequest| {
        Err(BackendError::Scripted("this backend always fails".into()))
    }));
    let models: HashMap<String, SharedModel> = [
        ("scripted".to_string(), Arc::new(truthful_model()) as SharedModel),
        ("openai:broken".to_string(), broken),
    ]
    .into();
    let out = tmp.path().join("out");
    let options = SweepOptions { out: Some(out.clone()), ..SweepOptions::default() };
    let summary = run_sweep(&sweep, &models, &options).await.unwrap();
    assert_eq!(summary.cells[1].stats.failed, 3);
    let human = sweep.human_spec();
    let evaluation =
        evaluate_sweep(&out, &sweep.cells(), human.as_deref(), &eval_options(), None).await.unwrap();
    let failed: Vec<_> = evaluation.failed().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0.cell.name, "001-broken");
    assert!(failed[0].1.to_string().contains("no outcomes to evaluate"), "{}", failed[0].1);
    assert!(matches!(evaluation.cells[0].status, CellEvalStatus::Evaluated { .. }));
    let md = read(&out.join("report.md"));
    assert!(md.contains("| metric | 000-works | human reference |"), "{md}");

    // Without human data the cells are still evaluated and compared.
    let evaluation = evaluate_sweep(&out, &sweep.cells()[..1], None, &eval_options(), None).await.unwrap();
    assert!(evaluation.comparison.is_some() && evaluation.human.is_none());
    assert!(read(&out.join("000-works/metrics.json")).contains("\"human\": null"));
}

/// A resume with other cells (an arm changed or reordered, another sweep file with the same
/// `out`) is refused before `sweep.json` is rewritten, naming the field.
#[tokio::test]
async fn a_sweep_over_a_temperature_that_is_no_exact_binary_fraction_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    small_pfg(&tmp.path().join("pfg"));
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(
        &file,
        "scenario = \"protocol.toml\"\nrole = \"persuadee\"\npopulation = \"pfg:pfg\"\nn = 1\n\
         model = \"scripted\"\n[grid]\ntemperature = [0.7]\n",
    )
    .unwrap();
    let models: HashMap<String, SharedModel> =
        [("scripted".to_string(), Arc::new(truthful_model()) as SharedModel)].into();
    let options = SweepOptions { out: Some(tmp.path().join("out")), ..SweepOptions::default() };
    run_sweep(&load_sweep(&file).unwrap(), &models, &options).await.unwrap();
    // 0.7 as an f32 is 0.699999988... in memory but "0.7" in sweep.json: still the same sweep.
    let resume = SweepOptions { resume: true, ..options };
    run_sweep(&load_sweep(&file).unwrap(), &models, &resume).await.unwrap();
}

#[tokio::test]
async fn resuming_a_sweep_with_other_cells_is_refused_and_sweep_json_kept() {
    let tmp = tempfile::tempdir().unwrap();
    small_pfg(&tmp.path().join("pfg"));
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let head = "scenario = \"protocol.toml\"\nrole = \"persuadee\"\npopulation = \"pfg:pfg\"\nn = 2\n\
                model = \"scripted\"\nout = \"out\"\n";
    let (a, b) =
        ("[[arms]]\nname = \"a\"\nmethod = \"direct\"\n", "[[arms]]\nname = \"b\"\nmethod = \"cot\"\n");
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, format!("{head}{a}{b}")).unwrap();
    let models: HashMap<String, SharedModel> =
        [("scripted".to_string(), Arc::new(truthful_model()) as SharedModel)].into();
    let out = tmp.path().join("out");
    let options = SweepOptions { out: Some(out.clone()), ..SweepOptions::default() };
    run_sweep(&load_sweep(&file).unwrap(), &models, &options).await.unwrap();
    let before = read(&out.join("sweep.json"));

    let resume = SweepOptions { resume: true, ..options };
    std::fs::write(&file, format!("{head}{b}{a}")).unwrap();
    let e = run_sweep(&load_sweep(&file).unwrap(), &models, &resume).await.unwrap_err();
    assert!(
        matches!(e, vsim::workflow::sweep::SweepError::Invalid { ref field, .. } if field == "cells"),
        "{e}"
    );
    assert_eq!(read(&out.join("sweep.json")), before, "sweep.json is not rewritten");
    std::fs::write(&file, format!("{}{a}{b}", head.replace("n = 2", "n = 1"))).unwrap();
    let e = run_sweep(&load_sweep(&file).unwrap(), &models, &resume).await.unwrap_err();
    assert!(e.to_string().contains("`n`"), "{e}");

    // The same sweep resumes.
    std::fs::write(&file, format!("{head}{a}{b}")).unwrap();
    let sweep = load_sweep(&file).unwrap();
    run_sweep(&sweep, &models, &resume).await.unwrap();

    // A cell's folder that is a link out of the sweep folder is refused before anything runs.
    #[cfg(unix)]
    {
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::rename(out.join("001-b"), &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("001-b")).unwrap();
        let before = read(&elsewhere.join("transcripts.jsonl"));
        let e = run_sweep(&sweep, &models, &resume).await.unwrap_err();
        assert!(e.to_string().contains("001-b") && vsim::fsutil::chain_has_refusal(&e), "{e}");
        assert_eq!(read(&elsewhere.join("transcripts.jsonl")), before);
        std::fs::remove_file(out.join("001-b")).unwrap();
        std::fs::rename(&elsewhere, out.join("001-b")).unwrap();
    }

    // Its evaluation holds the folder's lock: one held elsewhere refuses it.
    let held = vsim::rundir::RunLock::acquire(&out).unwrap();
    let e = evaluate_sweep(&out, &sweep.cells(), None, &eval_options(), None).await.unwrap_err();
    assert!(matches!(e, vsim::report::ReportError::Locked(_)), "{e}");
    drop(held);
    evaluate_sweep(&out, &sweep.cells(), None, &eval_options(), None).await.unwrap();
}

/// A sweep writes only into an empty folder or a sweep folder (its `sweep.json`): a folder
/// of other files keeps its `report.md` and `summary.csv`.
#[tokio::test]
async fn a_sweep_into_a_folder_of_other_files_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let sweep_file = tmp.path().join("s.toml");
    let text = "scenario = \"protocol.toml\"\nrole = \"persuadee\"\npopulation = \"pfg:pfg\"\nn = 1\n\
                model = \"scripted\"\nout = \"out\"\n[[arms]]\nname = \"a\"\nmethod = \"direct\"\n";
    std::fs::write(&sweep_file, text).unwrap();
    let sweep = load_sweep(&sweep_file).unwrap();
    let foreign = tmp.path().join("notes");
    std::fs::create_dir(&foreign).unwrap();
    for f in ["report.md", "summary.csv"] {
        std::fs::write(foreign.join(f), "mine").unwrap();
    }
    let options = SweepOptions { out: Some(foreign.clone()), ..SweepOptions::default() };
    let e = run_sweep(&sweep, &HashMap::new(), &options).await.unwrap_err();
    assert!(e.to_string().contains("not a vsim sweep folder"), "{e}");
    assert!(vsim::fsutil::chain_has_refusal(&e), "{e}");
    for f in ["report.md", "summary.csv"] {
        assert_eq!(read(&foreign.join(f)), "mine");
    }
    assert!(!foreign.join("sweep.json").exists());
    // An out that is a file.
    let file = tmp.path().join("file");
    std::fs::write(&file, "mine").unwrap();
    let options = SweepOptions { out: Some(file.clone()), ..SweepOptions::default() };
    let e = run_sweep(&sweep, &HashMap::new(), &options).await.unwrap_err();
    assert!(e.to_string().contains("not a folder") && vsim::fsutil::chain_has_refusal(&e), "{e}");
    assert_eq!(read(&file), "mine");
}

#[test]
fn arms_are_validated_with_the_file_and_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let file = tmp.path().join("bad.toml");
    let head = "scenario = \"protocol.toml\"\nrole = \"persuadee\"\n";
    let err = |body: &str| parse_sweep(&file, &format!("{head}{body}")).unwrap_err().to_string();

    let e = err("[[arms]]\nmethod = \"vs-fancy\"\n");
    assert!(e.contains("bad.toml") && e.contains("arms[0].method") && e.contains("vs-fancy"), "{e}");
    let e = err("[[arms]]\nmethod = \"direct\"\n[[arms]]\nk = 2.5\n");
    assert!(e.contains("arms[1].k"), "{e}");
    let e = err("[[arms]]\ntau = 3\n");
    assert!(e.contains("arms[0].tau") && e.contains("[0, 1]"), "{e}");
    let e = err("[[arms]]\nselection = \"best\"\n");
    assert!(e.contains("arms[0].selection"), "{e}");
    let e = err("[[arms]]\nmodel = \"gpt\"\n");
    assert!(e.contains("arms[0].model"), "{e}");
    let e = err("[[arms]]\nname = \"a\"\n[[arms]]\nname = \"a\"\nmethod = \"direct\"\n");
    assert!(e.contains("arms[1].name") && e.contains("arms[0]"), "{e}");
    let e = err("[[arms]]\nname = \" \"\n");
    assert!(e.contains("arms[0].name"), "{e}");
    let e = err(&format!("[[arms]]\nname = \"{}\"\n", "a".repeat(300)));
    assert!(e.contains("arms[0].name") && e.contains("longer than 100 characters"), "{e}");
    let e = err("[[arms]]\nname = \"α\"\n[[arms]]\nname = \"β\"\n");
    assert!(e.contains("arms[1].name") && e.contains("both name the folder `_`"), "{e}");
    let e = err("[grid]\nk = [2, 3]\n[[arms]]\nmethod = \"direct\"\n");
    assert!(e.contains("field `arms`") && e.contains("not both"), "{e}");
    let e = err("[[arms]]\nmethod = \"direct\"\ntemperature = 3\n");
    assert!(
        e.contains("bad.toml") && e.contains("arms[0].temperature") && e.contains("between 0 and 2"),
        "{e}"
    );
    let e = err("[[arms]]\nmethod = \"direct\"\ntop_k = 3\n");
    assert!(e.contains("bad.toml") && e.contains("top_k"), "{e}");
    // Pinned models: only roles the sweep does not vary, with a valid spec.
    let e = err("[models]\npersuadee = \"local\"\n");
    assert!(e.contains("models.persuadee") && e.contains("the role the sweep varies"), "{e}");
    let e = err("[models]\nbanker = \"local\"\n");
    assert!(e.contains("models.banker") && e.contains("roles: persuader, persuadee"), "{e}");
    let e = err("[models]\npersuader = \"gpt\"\n");
    assert!(e.contains("models.persuader"), "{e}");

    // `human` is relative to the file, like `population`; `none` turns the comparison off.
    let sweep = parse_sweep(&file, &format!("{head}human = \"pfg:data\"\n")).unwrap();
    assert_eq!(sweep.human_spec().unwrap(), format!("pfg:{}", tmp.path().join("data").display()));
    let sweep = parse_sweep(&file, &format!("{head}population = \"pfg:data\"\nhuman = \"none\"\n")).unwrap();
    assert_eq!(sweep.human_spec(), None);
    // Hand-written personas have no human data of their own.
    let sweep = parse_sweep(&file, head).unwrap();
    assert_eq!(sweep.human_spec(), None);
}

#[test]
fn a_pinned_persuader_keeps_its_model_in_every_cell_whatever_the_arms_vary() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let text =
        "scenario = \"protocol.toml\"\nrole = \"persuadee\"\n[models]\npersuader = \"openai:gpt-4.1\"\n\
                [[arms]]\nmodel = \"local\"\n[[arms]]\nmodel = \"openai:gpt-4o-mini\"\n";
    let sweep = parse_sweep(&tmp.path().join("s.toml"), text).unwrap();
    for cell in sweep.cells() {
        let scenario = sweep.cell_scenario(&cell);
        assert_eq!(scenario.roles[0].model.as_deref(), Some("openai:gpt-4.1"), "{cell:?}");
        assert_eq!(scenario.roles[1].model, cell.model, "{cell:?}");
    }
}

#[test]
fn the_paper_sweep_file_lists_the_four_arms() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/sweep_paper.toml");
    let sweep = load_sweep(&path).unwrap();
    assert_eq!(sweep.role, "persuadee");
    assert_eq!(sweep.split, Some(vsim::eval::Split::Test));
    assert!(sweep.population.starts_with("pfg:"), "{}", sweep.population);
    assert_eq!(sweep.human_spec().as_deref(), Some(sweep.population.as_str()));
    let arms: Vec<_> = sweep.cells().into_iter().map(|c| (c.method, c.k, c.selection)).collect();
    assert_eq!(
        arms,
        [
            (Some(Method::Direct), None, None),
            (Some(Method::Sequence), Some(KSpec::Fixed { k: 5 }), Some(Selection::Uniform)),
            (Some(Method::VsStandard), Some(KSpec::Fixed { k: 5 }), Some(Selection::Weighted)),
            (
                Some(Method::VsStandard),
                Some(KSpec::ModelDecided { max: vsim::scenario::DEFAULT_K_MAX }),
                Some(Selection::Uniform)
            ),
        ]
    );
}

#[test]
fn vsim_sweep_evaluates_every_arm_and_writes_one_comparison() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start(MockConfig { seed: 2, ..MockConfig::default() })).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = small_pfg(&tmp.path().join("data"));
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let sweep_file = tmp.path().join("paper.toml");
    // A server path that does not exist: every dialogue of that arm fails at once (404).
    let broken = format!("openai:mock@{}/missing", server.base_url());
    std::fs::write(
        &sweep_file,
        format!(
            "scenario = \"protocol.toml\"\nrole = \"persuadee\"\nn = 3\n{ARMS}\n[[arms]]\nname = \"broken\"\n\
             method = \"direct\"\nmodel = \"{broken}\"\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let population = format!("pfg:{}", data.display());
    let model = format!("openai:mock@{}", server.base_url());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
        .args(["sweep", sweep_file.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--population", &population, "--model", &model, "--embedder", "none"])
        .args(["--bootstrap", "20", "--bootstrap-seed", "3", "--no-cache", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    // The broken arm fails: reported, exit code 1, the other arms evaluated and compared.
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("004-broken: not evaluated") && stderr.contains("no outcomes"), "{stderr}");
    assert!(stdout.contains(&format!("human reference: {population}")), "{stdout}");
    let names = ["000-direct", "001-sequence", "002-vs-standard-k3-weighted", "003-vs_auto"];
    for name in names {
        assert!(out.join(name).join("metrics.json").is_file(), "{name}: {stdout}\n{stderr}");
        assert!(out.join(name).join("report.html").is_file(), "{name}");
    }
    let md = read(&out.join("report.md"));
    assert!(md.contains(&format!("| metric | {} | human reference |", names.join(" | "))), "{md}");
    assert!(
        !rows(&md, "KS statistic D").is_empty() && !rows(&md, "L1 density (21 edges on [0, 2])").is_empty()
    );
    let compared = rows(&md, "compared: simulated / human / paired");
    assert!(compared[0].contains("/ 3 / "), "{}", compared[0]);
    assert!(out.join("report.html").is_file());
    drop(server);
    rt.shutdown_background();
}

/// A sweep stopped by its budget is not a failure: the cells it cut before any dialogue
/// finished are reported as not evaluated yet, and the exit code is 0.
#[test]
fn a_sweep_stopped_by_its_budget_exits_0() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start(MockConfig { seed: 2, ..MockConfig::default() })).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = small_pfg(&tmp.path().join("data"));
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let sweep_file = tmp.path().join("paper.toml");
    std::fs::write(&sweep_file, format!("scenario = \"protocol.toml\"\nrole = \"persuadee\"\nn = 3\n{ARMS}"))
        .unwrap();
    let out = tmp.path().join("out");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
        .args(["sweep", sweep_file.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--population", &format!("pfg:{}", data.display())])
        .args(["--model", &format!("openai:mock@{}", server.base_url()), "--embedder", "none"])
        .args(["--bootstrap", "0", "--no-cache", "--quiet", "--max-tokens-total", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("stopped for budget: token budget reached") && stdout.contains("of 1 tokens"),
        "{stdout}"
    );
    assert!(stdout.contains("000-direct: not evaluated (the budget stopped it"), "{stdout}");
    assert!(!stderr.contains("error"), "{stderr}");
    drop(server);
    rt.shutdown_background();
}

/// 240 consistent persuadees (200 test, 40 train), each giving `value(dialogue id, is_test)`.
fn split_pfg(
    dir: &Path,
    value: impl Fn(bool) -> f64,
    test_ids: &std::collections::HashSet<String>,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut rows = vec![INFO_HEADER.to_string()];
    let mut dialog = String::from(",Unit,Turn,B4,B2\n");
    for i in 0..240 {
        let d = format!("t{i:03}");
        rows.push(info_row(&d, &format!("{d}-a"), 0, "0"));
        rows.push(info_row(&d, &format!("{d}-b"), 1, &value(test_ids.contains(&d)).to_string()));
        dialog.push_str(&format!(
            "{},Would you give?,0,0,{d}\n{},Maybe I will give.,0,1,{d}\n",
            2 * i,
            2 * i + 1
        ));
    }
    std::fs::write(dir.join("full_info.csv"), rows.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("full_dialog.csv"), dialog).unwrap();
    dir.to_path_buf()
}

/// A model whose every numeric answer is its request's temperature: the temperature whose
/// answers match the humans' donations is known.
fn temperature_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        let t = req.temperature.unwrap_or(0.0);
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Number { .. }) => format!(r#"{{"answer": {t}}}"#),
            Some(OutputConstraint::Answers { .. }) => format!(r#"{{"responses": [{{"answer": {t}, "probability": 1.0}}]}}"#),
            Some(OutputConstraint::Candidates { .. }) => {
                r#"{"responses": [{"text": "I might.", "probability": 0.6}, {"text": "No.", "probability": 0.4}]}"#.into()
            }
            _ => "Would you donate to Save the Children today?".to_string(),
        })
    })
}

const TUNE: &str = r#"
scenario = "scenario.toml"
role = "persuadee"
population = "pfg:pfg"
seed = 3
concurrency = 4
[grid]
temperature = [0.5, 1.0, 1.5]
[tune]
objective = "l1_paired"
strategy = "halving"
start = 10
eta = 2
train_n = 20
test_n = 10
bootstrap = 50
[[baselines]]
name = "hot"
temperature = 2.0
"#;

/// The dialogue ids the library's protocol split holds out, from a copy of the test data
/// written to `probe`.
fn held_out_ids(probe: &Path) -> std::collections::HashSet<String> {
    let probe = split_pfg(probe, |_| 1.0, &Default::default());
    let data = vsim::data::persuasionforgood::PfgDataset::load_any(&probe).unwrap();
    let split = data.protocol_split(vsim::data::persuasionforgood::Split::Test).unwrap();
    split.persuadees.iter().map(|p| p.dialogue_id.clone()).collect()
}

/// Every model `tune` names, each answering with its request's temperature.
fn temperature_models(tune: &vsim::workflow::tune::Tune) -> HashMap<String, SharedModel> {
    let model: SharedModel = Arc::new(temperature_model());
    tune.sweep.model_specs().into_iter().map(|s| (s, model.clone())).collect()
}

async fn tune_in(dir: &Path) -> vsim::workflow::tune::TuneSummary {
    use vsim::workflow::tune::{load_tune, run_tune, TuneOptions};
    std::fs::write(dir.join("scenario.toml"), SCENARIO).unwrap();
    std::fs::write(dir.join("tune.toml"), TUNE).unwrap();
    let tune = load_tune(&dir.join("tune.toml")).unwrap();
    let models = temperature_models(&tune);
    let options = TuneOptions {
        out: Some(dir.join("out")),
        eval: EvalOptions { bootstrap: 20, ..EvalOptions::default() },
        ..TuneOptions::default()
    };
    run_tune(&tune, &models, &options).await.unwrap()
}

#[tokio::test]
async fn tune_chooses_the_temperature_that_fits_the_train_humans_and_never_reads_the_test_split_before() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    // Which persuadees are held out, from the library's own split of the data.
    let test_ids = held_out_ids(&tmp.path().join("probe"));
    assert_eq!(test_ids.len(), 200);
    // Train humans give $1; the held-out humans give $1 in one copy and $0 in the other.
    split_pfg(&a.join("pfg"), |_| 1.0, &test_ids);
    split_pfg(&b.join("pfg"), |test| if test { 0.0 } else { 1.0 }, &test_ids);
    let (sa, sb) = (tune_in(&a).await, tune_in(&b).await);
    for s in [&sa, &sb] {
        let chosen = s.chosen.as_ref().expect("a choice");
        assert_eq!(chosen.temperature, Some(1.0), "{:?}", s.trials);
        assert_eq!(s.stages.iter().map(|st| st.people).collect::<Vec<_>>(), vec![10, 20]);
        assert!(s.stages.iter().all(|st| st.split == vsim::data::persuasionforgood::Split::Train));
        assert_eq!(s.held_out.len(), 2);
        assert_eq!(s.held_out[0].counts.unwrap().human, 10);
    }
    // Every search stage and the choice are identical; only the held-out figures differ.
    let scores = |s: &vsim::workflow::tune::TuneSummary| {
        s.trials.iter().map(|t| (t.stage, t.cell.name.clone(), t.score.value, t.kept)).collect::<Vec<_>>()
    };
    assert_eq!(scores(&sa), scores(&sb));
    assert_eq!(sa.stability, sb.stability);
    assert_eq!(sa.held_out[0].score.value, Some(0.0));
    assert_eq!(sb.held_out[0].score.value, Some(1.0));
    assert_eq!(sa.optimism_gap, Some(0.0));
    // The stages' runs read only train people; tune.json says which split each stage read.
    let manifest: serde_json::Value = serde_json::from_str(&read(&a.join("out/tune.json"))).unwrap();
    assert_eq!(manifest["stages"][0]["split"], "train");
    assert_eq!(manifest["held_out"]["split"], "test");
    for stage in ["stage-0", "stage-1"] {
        let cell = a.join("out/train").join(stage).join("001-temp1");
        let config: serde_json::Value = serde_json::from_str(&read(&cell.join("config.json"))).unwrap();
        assert_eq!(config["population_reference"]["split"], "train", "{stage}");
        let ids = config["population_reference"]["participant_ids"].as_array().unwrap();
        assert!(!ids.is_empty());
        for id in ids {
            let dialogue = id.as_str().unwrap().trim_end_matches("-persuadee");
            assert!(dialogue.starts_with('t') && !test_ids.contains(dialogue), "{stage} read {dialogue}");
        }
    }
    let report = read(&a.join("out/report.md"));
    assert!(report.contains("chosen: `001-temp1`") && report.contains("optimism gap"), "{report}");
    assert!(read(&a.join("out/trials.csv")).lines().count() == 6);
}

#[tokio::test]
async fn a_tune_run_as_shards_merged_stage_by_stage_gives_the_same_choice_and_scores() {
    use vsim::workflow::tune::{load_tune, run_tune, TuneOptions};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let test_ids = held_out_ids(&dir.join("probe"));
    split_pfg(&dir.join("pfg"), |test| if test { 0.5 } else { 1.0 }, &test_ids);
    let whole = tune_in(dir).await;

    let tune = load_tune(&dir.join("tune.toml")).unwrap();
    let models = temperature_models(&tune);
    let base = TuneOptions {
        out: Some(dir.join("sharded")),
        eval: EvalOptions { bootstrap: 20, ..EvalOptions::default() },
        ..TuneOptions::default()
    };
    // A shard stopped before its end says why, and pauses nothing.
    let (interrupt, trigger) = vsim::experiment::Interrupt::triggered();
    trigger.pull();
    let shard = Some(vsim::experiment::Shard::new(0, 3).unwrap());
    let stopped = run_tune(&tune, &models, &TuneOptions { shard, interrupt, ..base.clone() }).await.unwrap();
    assert!(stopped.paused.is_none(), "{:?}", stopped.paused);
    assert!(matches!(stopped.stop, Some(vsim::experiment::StopCause::Interrupted)), "{:?}", stopped.stop);
    let mut steps = 0;
    let sharded = loop {
        steps += 1;
        assert!(steps <= 4, "a two-stage tune with a held-out step needs three rounds");
        for i in 0..3 {
            let shard = Some(vsim::experiment::Shard::new(i, 3).unwrap());
            let s = run_tune(&tune, &models, &TuneOptions { shard, ..base.clone() }).await.unwrap();
            let paused = s.paused.expect("a shard pauses");
            assert!(!paused.scored && paused.shard == shard, "{paused:?}");
        }
        let merge = TuneOptions { resume: true, stage_only: true, ..base.clone() };
        let s = run_tune(&tune, &models, &merge).await.unwrap();
        // Every dialogue ran in a shard: merging calls no model.
        assert_eq!(s.spend.calls, 0, "round {steps}");
        if s.paused.is_none() {
            break s;
        }
    };
    assert_eq!(steps, 3);
    let scores = |s: &vsim::workflow::tune::TuneSummary| {
        s.trials.iter().map(|t| (t.stage, t.cell.name.clone(), t.score.value, t.kept)).collect::<Vec<_>>()
    };
    assert_eq!(scores(&whole), scores(&sharded));
    assert_eq!(whole.chosen.as_ref().map(|c| &c.name), sharded.chosen.as_ref().map(|c| &c.name));
    assert_eq!(whole.stability, sharded.stability);
    let held = |s: &vsim::workflow::tune::TuneSummary| {
        s.held_out.iter().map(|h| (h.cell.name.clone(), h.score.value)).collect::<Vec<_>>()
    };
    assert_eq!(held(&whole), held(&sharded));
    for shard in ["0-of-3", "1-of-3", "2-of-3"] {
        for stage in ["train-stage-0", "train-stage-1", "test"] {
            assert!(dir.join("sharded/shards").join(stage).join(shard).join("sweep.json").is_file());
        }
    }
    let outcomes = |root: &str| read(&dir.join(root).join("test/chosen-001-temp1/outcomes.csv"));
    assert_eq!(outcomes("out"), outcomes("sharded"));
    // A shard started after the end has nothing left to run.
    let shard = Some(vsim::experiment::Shard::new(0, 3).unwrap());
    let late = run_tune(&tune, &models, &TuneOptions { shard, ..base.clone() }).await.unwrap();
    assert!(late.paused.is_some_and(|p| p.scored) && late.spend.calls == 0);
}

#[test]
fn a_tune_refuses_to_search_on_the_test_split() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("scenario.toml"), SCENARIO).unwrap();
    for (edit, field) in [
        ("split = \"test\"\n", "split"),
        ("split = \"all\"\n", "split"),
        ("n = 5\n", "`n`"),
        ("human = \"none\"\n", "human"),
    ] {
        let text = format!("{edit}{TUNE}");
        let path = tmp.path().join("tune.toml");
        std::fs::write(&path, &text).unwrap();
        let err = vsim::workflow::tune::load_tune(&path).unwrap_err().to_string();
        assert!(err.contains(field), "{edit}: {err}");
    }
    // A tune table in a sweep file is refused, and a tune needs one.
    let err = parse_sweep(&tmp.path().join("s.toml"), TUNE).unwrap_err().to_string();
    assert!(err.contains("tune"), "{err}");
}

#[test]
fn persona_groups_system_prompts_and_temperature_are_axes_whose_prompt_shows_only_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("protocol.toml"), SCENARIO).unwrap();
    let text = r#"
scenario = "protocol.toml"
role = "persuadee"
[persona_groups]
demographics = ["age", "sex"]
[system_prompts]
terse = "You are {{ persona.id }}. {{ persona.profile }}"
[grid]
persona = ["demographics", "all"]
system = ["terse"]
temperature = [0.5]
"#;
    let sweep = parse_sweep(&tmp.path().join("s.toml"), text).unwrap();
    let cells = sweep.cells();
    let names: Vec<&str> = cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["000-temp0.5-persona-demographics-system-terse", "001-temp0.5-persona-all-system-terse"]
    );
    let mut persona = vsim::persona::Persona::new("p1");
    persona.attributes = [("age", "30"), ("sex", "Female"), ("religion", "Quaker")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let shown: Vec<String> = cells
        .iter()
        .map(|c| {
            let scenario = sweep.cell_scenario(c);
            assert_eq!(scenario.roles[1].temperature, Some(0.5));
            vsim::experiment::runner::render_system(&scenario, 1, Some(&persona), None).unwrap()
        })
        .collect();
    assert!(
        shown[0].starts_with("You are p1.") && shown[0].contains("30") && !shown[0].contains("Quaker"),
        "{}",
        shown[0]
    );
    assert!(shown[1].contains("Quaker"), "{}", shown[1]);
    // Unknown names are refused with the field and what is known.
    let err =
        parse_sweep(&tmp.path().join("s.toml"), &text.replace("\"all\"]", "\"everything\"]")).unwrap_err();
    assert!(err.to_string().contains("grid.persona") && err.to_string().contains("demographics"), "{err}");
    let err =
        parse_sweep(&tmp.path().join("s.toml"), &text.replace("[\"terse\"]", "[\"long\"]")).unwrap_err();
    assert!(err.to_string().contains("grid.system") && err.to_string().contains("terse"), "{err}");
}

#[test]
fn the_shipped_tune_file_documents_its_search_space_and_stages() {
    let tune =
        vsim::workflow::tune::load_tune(&common_root().join("scenarios/tune_persuasion.toml")).unwrap();
    let cells = tune.sweep.cells();
    assert_eq!(cells.len(), 24);
    assert_eq!(
        vsim::workflow::tune::stage_sizes(tune.strategy, cells.len(), tune.train_n.unwrap()),
        vec![20, 20, 40, 80, 160]
    );
    assert_eq!(tune.objective.outcome, "persuadee.donation");
    assert_eq!(tune.objective.measure, vsim::dialogue::events::Measure::Stated);
    assert_eq!(tune.sweep.baseline_cells().len(), 2);
}

fn common_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn vsim_tune_runs_against_the_mock_and_refuses_a_search_on_held_out_people() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = rt.block_on(MockServer::start(MockConfig { seed: 2, ..MockConfig::default() })).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    split_pfg(&tmp.path().join("pfg"), |_| 1.0, &Default::default());
    std::fs::write(tmp.path().join("scenario.toml"), SCENARIO).unwrap();
    let file = tmp.path().join("tune.toml");
    std::fs::write(&file, TUNE.replace("[grid]\ntemperature = [0.5, 1.0, 1.5]", "[grid]\nk = [2, 3]"))
        .unwrap();
    let model = format!("openai:mock@{}", server.base_url());
    let vsim = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
            .args([
                "tune",
                file.to_str().unwrap(),
                "--model",
                &model,
                "--bootstrap",
                "20",
                "--no-cache",
                "--quiet",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = tmp.path().join("out");
    let output = vsim(&["--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("chosen: ") && stdout.contains("held-out chosen") && stdout.contains("optimism gap"),
        "{stdout}"
    );
    for f in ["report.md", "report.html", "trials.csv", "tune.json", "test/report.md"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // Running into the same folder again without --resume is refused; a test split is refused.
    assert_eq!(vsim(&["--out", out.to_str().unwrap()]).status.code(), Some(2));
    std::fs::write(&file, format!("split = \"test\"\n{TUNE}")).unwrap();
    let output = vsim(&["--out", tmp.path().join("other").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("train split only"));
    drop(server);
    rt.shutdown_background();
}
