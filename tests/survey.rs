//! Survey simulation: the OpinionQA importer against hand-checked counts, scripted surveys
//! with exactly known distributions and distances, the representativeness denominator and
//! refusal counts, and bad input (duplicate subgroups, options and items included).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{ChatRequest, SharedModel};
use vsim::survey::eval::{compare_item, denominator_differences, evaluate, ordinal_range};
use vsim::survey::opinionqa::{load_counts, load_info};
use vsim::survey::run::{run_survey, SurveyRunConfig};
use vsim::survey::{load_survey, SurveyError};
use vsim::vs::{AnswerShape, OutputConstraint};

fn wave() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/opinionqa/W26"));
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}

#[test]
fn opinionqa_counts_match_hand_checked_values() {
    let Some(dir) = wave() else { return };
    let q = load_info(&dir).unwrap();
    assert_eq!(q.items.len(), 78);
    let gun = q.item("GUN_W26").unwrap();
    // Answers containing commas survive (MC_options is broken for them; references is not).
    assert_eq!(gun.options, vec!["Yes, I own a gun", "No, I don't own any guns", "Refused"]);
    assert_eq!(gun.refused, Some(2));
    assert_eq!(q.item("WORLDDANGER_W26").unwrap().ordinal, Some(vec![1.0, 2.0, 1.5]));
    assert_eq!(q.item("IMPREASONGUN_W26").unwrap().ordinal, None, "nominal item");

    let h = load_counts(&dir, "POLIDEOLOGY", &q).unwrap();
    assert_eq!(h.counts.len(), 22);
    assert_eq!(h.counts["SAFECRIME_W26"]["Liberal"], vec![252.0, 496.0, 99.0, 14.0, 2.0]);
    assert_eq!(h.counts["SAFECRIME_W26"]["Very conservative"], vec![106.0, 225.0, 49.0, 14.0, 2.0]);
    assert_eq!(h.counts["GUN_W26"]["Liberal"], vec![180.0, 681.0, 2.0]);
    assert_eq!(h.counts["GUN_W26"]["Moderate"], vec![484.0, 1017.0, 12.0]);
    assert_eq!(h.counts["WORLDDANGER_W26"]["Very conservative"], vec![15.0, 338.0, 41.0, 2.0]);
    assert_eq!(
        h.substantive_groups(),
        vec!["Conservative", "Liberal", "Moderate", "Very conservative", "Very liberal"]
    );
    let sex = load_counts(&dir, "SEX", &q).unwrap();
    assert_eq!(sex.counts["GUN_W26"]["Female"], vec![437.0, 1645.0, 28.0]);
    // Every question sums to the file's respondent total (4,168) over groups.
    assert_eq!(h.overall("GUN_W26").unwrap().iter().sum::<f64>(), 4168.0);
    // AGE's empty `nan` group is not a subgroup.
    let age = load_counts(&dir, "AGE", &q).unwrap();
    assert!(!age.substantive_groups().contains(&"nan".to_string()));
}

#[test]
fn distances_for_a_known_answer_distribution() {
    let Some(dir) = wave() else { return };
    let q = load_info(&dir).unwrap();
    let h = load_counts(&dir, "POLIDEOLOGY", &q).unwrap();
    // Everyone answers "Very safe": p = [1, 0, 0, 0]; human q = [252, 496, 99, 14] / 861.
    let item = q.item("SAFECRIME_W26").unwrap();
    let m = compare_item(item, "Liberal", &[10, 0, 0, 0, 0], Some(&h.counts["SAFECRIME_W26"]["Liberal"]));
    assert!((m.tv.unwrap() - 609.0 / 861.0).abs() < 1e-12);
    assert!((m.l1.unwrap() - 2.0 * 609.0 / 861.0).abs() < 1e-12);
    assert!((m.wasserstein.unwrap() - 736.0 / 861.0).abs() < 1e-12);
    assert!((m.representativeness.unwrap() - (1.0 - 736.0 / 861.0 / 3.0)).abs() < 1e-12);
    assert!((m.ks_statistic.unwrap() - 609.0 / 861.0).abs() < 1e-12);
    // Ordinal values out of option order: safer (1), more dangerous (2), neither (1.5).
    let item = q.item("WORLDDANGER_W26").unwrap();
    let m = compare_item(item, "Liberal", &[4, 0, 0, 1], Some(&h.counts["WORLDDANGER_W26"]["Liberal"]));
    assert_eq!(m.n_simulated, 4, "refusals are left out");
    assert_eq!(m.refused_simulated, 1);
    assert!((m.wasserstein.unwrap() - 1233.0 / 1722.0).abs() < 1e-12);
    assert!((m.representativeness.unwrap() - (1.0 - 1233.0 / 1722.0)).abs() < 1e-12);
    // Identical distributions: distance 0, representativeness 1.
    let m = compare_item(item, "x", &[1, 2, 3, 0], Some(&[10.0, 20.0, 30.0, 5.0]));
    assert!(m.tv.unwrap().abs() < 1e-12 && m.js.unwrap().abs() < 1e-12);
    assert!((m.representativeness.unwrap() - 1.0).abs() < 1e-12);
}

/// Human counts far beyond memory (1e20, 2e9) are compared as weighted ECDFs: no sample list
/// is built from them, so nothing panics or allocates gigabytes.
#[test]
fn huge_human_counts_are_compared_without_expanding_them() {
    let item = vsim::survey::questionnaire::Item {
        key: "Q".into(),
        question: "Is it safe?".into(),
        options: vec!["Very".into(), "Somewhat".into(), "Not".into(), "Refused".into()],
        ordinal: Some(vec![1.0, 2.0, 3.0]),
        refused: Some(3),
    };
    let m = compare_item(&item, "g", &[3, 1, 0, 0], Some(&[1e20, 2e9, 3.0, 7.0]));
    let d = m.ks_statistic.expect("a KS statistic");
    // The human side is almost all "Very": F_h(1) ≈ 1, F_s(1) = 3/4.
    assert!((d - 0.25).abs() < 1e-9, "{d}");
    assert!(m.ks_pvalue.is_some_and(|p| (0.0..=1.0).contains(&p)));
}

/// A survey file using the reference wave with two groups and three items.
fn survey_file(dir: &Path, method: &str, extra: &str) -> PathBuf {
    let wave = wave().unwrap();
    let path = dir.join("survey.toml");
    std::fs::write(
        &path,
        format!(
            r#"kind = "survey"
name = "t"
opinionqa = "{}"
attribute = "POLIDEOLOGY"
groups = ["Liberal", "Very conservative"]
items = ["SAFECRIME_W26", "GUN_W26", "WORLDDANGER_W26"]
per_group = 3
method = "{method}"
system = "You are an American whose {{{{ attribute }}}} is {{{{ group }}}}."
{extra}"#,
            wave.display()
        ),
    )
    .unwrap();
    path
}

/// Liberals put all mass on the first option, very conservatives on the second.
fn scripted() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        let liberal = req.messages[0].content.contains("Liberal");
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Answers { answer: AnswerShape::Choice { choices }, .. }) => {
                let items: Vec<String> = choices
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        let p = if (i == 0) == liberal && i < 2 { 1.0 } else { 0.0 };
                        format!(r#"{{"answer": {}, "probability": {p}}}"#, serde_json::to_string(o).unwrap())
                    })
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(","))
            }
            Some(OutputConstraint::Choice { choices }) => {
                format!(
                    r#"{{"answer": {}}}"#,
                    serde_json::to_string(&choices[if liberal { 0 } else { 1 }]).unwrap()
                )
            }
            other => panic!("unexpected constraint {other:?}"),
        })
    })
}

#[tokio::test]
async fn scripted_survey_gives_exact_distributions() {
    if wave().is_none() {
        return;
    }
    for method in ["vs-standard", "direct"] {
        let tmp = tempfile::tempdir().unwrap();
        let spec = load_survey(&survey_file(tmp.path(), method, ""), None).unwrap();
        let out = tmp.path().join("run");
        let model: SharedModel = Arc::new(scripted());
        let config = SurveyRunConfig {
            n: None,
            seed: 5,
            concurrency: 4,
            out_dir: out.clone(),
            resume: false,
            progress: Default::default(),
            model_name: "scripted".into(),
            shard: None,
            budget: Default::default(),
            prices: Default::default(),
            max_consecutive_failures: 10,
            interrupt: Default::default(),
        };
        let s = run_survey(&spec, model, &config).await.unwrap();
        assert_eq!(
            (s.counts.dialogues, s.counts.completed, s.counts.failed, s.counts.missing.len()),
            (6, 6, 0, 0)
        );
        let csv = std::fs::read_to_string(out.join("outcomes.csv")).unwrap();
        assert_eq!(csv.lines().count(), 7);
        assert!(csv.contains("r00000,0,"));
        assert!(csv.contains("\"Yes, I own a gun\""), "{csv}");

        let report = evaluate(&spec, &out).unwrap();
        let row = |item: &str, group: &str| {
            report.rows.iter().find(|r| r.item == item && r.group == group).unwrap()
        };
        let safe = row("SAFECRIME_W26", "Liberal");
        assert_eq!(safe.simulated, vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(safe.n_simulated, 3);
        assert!((safe.tv.unwrap() - 609.0 / 861.0).abs() < 1e-12);
        let gun = row("GUN_W26", "Very conservative");
        assert_eq!(gun.simulated, vec![0.0, 1.0]);
        // Human: 194 yes, 183 no (refusals left out) -> TV = 194 / 377.
        assert!((gun.tv.unwrap() - 194.0 / 377.0).abs() < 1e-12);
        assert_eq!(report.representativeness.len(), 2);
        assert!(report.to_markdown().contains("## GUN_W26"));
        // Human refusals of the two groups on the three items: 2 + 2 (SAFECRIME),
        // 2 + 19 (GUN), 2 + 2 (WORLDDANGER); the scripted respondents never refuse.
        assert_eq!(gun.refused_human, 19.0);
        assert_eq!((report.refused_simulated, report.refused_human), (0, 29.0));
        assert!(report.to_markdown().contains("0 simulated, 29 human"), "{}", report.to_markdown());
        assert!(report.summary_line().contains("refusals: 0 simulated, 29 human"));

        // A subgroup without human data is named, not skipped silently, and counts 0 people.
        let mut without = spec.clone();
        for groups in without.human.as_mut().unwrap().counts.values_mut() {
            groups.remove("Liberal");
        }
        let report = evaluate(&without, &out).unwrap();
        assert_eq!(report.groups_without_human, ["Liberal"]);
        assert!(report.to_markdown().contains("| Liberal | no human answers in the data |"));
        assert!(report.summary_line().contains("no human answers for Liberal"), "{}", report.summary_line());
        let liberal = report.rows.iter().find(|r| r.group == "Liberal").unwrap();
        assert!(liberal.n_human == 0.0 && liberal.n_human.is_sign_positive(), "{}", liberal.n_human);
    }
}

#[test]
fn bad_survey_input_gives_clear_errors() {
    let Some(wave) = wave() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Unknown subgroup.
    let path = survey_file(tmp.path(), "direct", "");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"Very conservative\"", "\"Libertarian\"");
    std::fs::write(&path, text).unwrap();
    let e = load_survey(&path, None).unwrap_err().to_string();
    assert!(
        e.contains("unknown subgroup `Libertarian`") && e.contains("Very liberal") && e.contains(":5:"),
        "{e}"
    );

    // Unknown attribute.
    let path = survey_file(tmp.path(), "direct", "");
    let text = std::fs::read_to_string(&path).unwrap().replace("POLIDEOLOGY", "INCOME");
    std::fs::write(&path, text).unwrap();
    let e = load_survey(&path, None).unwrap_err().to_string();
    assert!(e.contains("unknown subgroup attribute `INCOME`"), "{e}");

    // A count beyond its bound says the bound.
    let path = survey_file(tmp.path(), "direct", "");
    let text = std::fs::read_to_string(&path).unwrap().replace("per_group = 3", "per_group = 100000000");
    std::fs::write(&path, text).unwrap();
    let e = load_survey(&path, None).unwrap_err().to_string();
    assert!(e.contains("per_group") && e.contains("1 to 100000"), "{e}");

    // An item without options in a questionnaire file.
    let q = tmp.path().join("q.toml");
    std::fs::write(&q, "name = \"q\"\n[[items]]\nkey = \"A\"\nquestion = \"Why?\"\n").unwrap();
    let e = vsim::survey::questionnaire::load_questionnaire(&q).unwrap_err().to_string();
    assert!(e.contains("q.toml:4") && e.contains("has no options"), "{e}");

    // A human data file with a question missing from info.csv.
    let broken = tmp.path().join("W26");
    std::fs::create_dir(&broken).unwrap();
    let info = std::fs::read_to_string(wave.join("info.csv")).unwrap();
    let kept: Vec<&str> = info.lines().filter(|l| !l.contains(",GUN_W26,")).collect();
    std::fs::write(broken.join("info.csv"), kept.join("\n") + "\n").unwrap();
    std::fs::copy(wave.join("SEX_data.json"), broken.join("SEX_data.json")).unwrap();
    let qn = load_info(&broken).unwrap();
    let e = load_counts(&broken, "SEX", &qn).unwrap_err();
    assert!(matches!(e, SurveyError::MissingQuestion { ref key, .. } if key == "GUN_W26"), "{e}");
    // A missing data file names it.
    let e = load_counts(&broken, "AGE", &qn).unwrap_err().to_string();
    assert!(e.contains("AGE_data.json"), "{e}");
}

#[test]
fn shipped_survey_scenario_loads() {
    if wave().is_none() {
        return;
    }
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/survey_opinionqa_w26.toml"));
    // The file points at where `vsim data fetch opinionqa` puts the wave; the reference
    // copy stands in for it here.
    let spec = load_survey(&path, wave().as_deref()).unwrap();
    assert_eq!(spec.questionnaire.items.len(), 22);
    assert_eq!(spec.groups.len(), 5);
}

#[tokio::test]
async fn vsim_eval_writes_survey_metrics_and_report() {
    if wave().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = load_survey(&survey_file(tmp.path(), "vs-standard", ""), None).unwrap();
    let out = tmp.path().join("run");
    let config = SurveyRunConfig {
        n: Some(4),
        seed: 1,
        concurrency: 2,
        out_dir: out.clone(),
        resume: false,
        progress: Default::default(),
        model_name: "scripted".into(),
        shard: None,
        budget: Default::default(),
        prices: Default::default(),
        max_consecutive_failures: 10,
        interrupt: Default::default(),
    };
    run_survey(&spec, Arc::new(scripted()), &config).await.unwrap();
    let status = assert_cmd::Command::cargo_bin("vsim").unwrap().arg("eval").arg(&out).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["rows"].as_array().unwrap().len(), 6, "3 items x 2 groups");
    assert!(metrics["overall_representativeness"].is_number());
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("Representativeness"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<table>") && html.contains("GUN_W26") && html.contains("<svg"), "{html}");
    // `vsim report` compares evaluated surveys; a survey beside a dialogue run is refused.
    let compared = tmp.path().join("compared");
    let report = assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["report", out.to_str().unwrap(), out.to_str().unwrap(), "--out", compared.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let md = std::fs::read_to_string(compared.join("report.md")).unwrap();
    assert!(
        md.contains("| overall representativeness") || md.contains("| **overall representativeness**"),
        "{md}"
    );
    assert!(compared.join("report.html").is_file());
    let dialogue_run = tmp.path().join("not-a-survey");
    std::fs::create_dir_all(&dialogue_run).unwrap();
    let mixed = assert_cmd::Command::cargo_bin("vsim")
        .unwrap()
        .args(["report", out.to_str().unwrap(), dialogue_run.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(mixed.status.code(), Some(2), "{}", String::from_utf8_lossy(&mixed.stderr));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("survey run"));
    // Refusals on both sides, and the denominator with the item where the paper's differs.
    assert_eq!(metrics["refused_human"], 29.0);
    assert_eq!(metrics["refused_simulated"], 0);
    assert!(metrics["rows"].as_array().unwrap().iter().all(|r| r["refused_human"].is_number()));
    assert!(metrics["representativeness_denominator"].as_str().unwrap().contains("max − min"));
    assert_eq!(metrics["denominator_differs"][0]["item"], "WORLDDANGER_W26");
    assert_eq!(metrics["denominator_differs"][0]["range"], 1.0);
    assert_eq!(metrics["denominator_differs"][0]["options_minus_one"], 2);
    assert_eq!(metrics["denominator_differs"].as_array().unwrap().len(), 1);
}

#[test]
fn wave_denominators_differ_from_options_minus_one_where_values_are_not_1_to_n() {
    let Some(dir) = wave() else { return };
    let q = load_info(&dir).unwrap();
    let differs: Vec<String> = denominator_differences(&q.items).into_iter().map(|d| d.item).collect();
    assert_eq!(
        differs,
        ["WORLDDANGER_W26", "GUNSAFE_W26", "GUNSAFE2_W26", "GROWUPGUN1_W26", "GUNSAFETYKIDS_W26"]
    );
    assert_eq!(ordinal_range(q.item("SAFECRIME_W26").unwrap()), Some(3.0));
    assert_eq!(ordinal_range(q.item("WORLDDANGER_W26").unwrap()), Some(1.0));
    assert_eq!(ordinal_range(q.item("IMPREASONGUN_W26").unwrap()), None, "nominal item");
}

/// A questionnaire file and a survey file over it, without human data.
fn questionnaire_survey(dir: &Path, questionnaire: &str, survey_extra: &str) -> PathBuf {
    std::fs::write(dir.join("q.toml"), questionnaire).unwrap();
    let path = dir.join("survey.toml");
    std::fs::write(
        &path,
        format!(
            "kind = \"survey\"\nname = \"s\"\nquestionnaire = \"q.toml\"\nattribute = \"REGION\"\n\
             system = \"You live in the {{{{ group }}}}.\"\n{survey_extra}"
        ),
    )
    .unwrap();
    path
}

const WORLD: &str = r#"name = "q"

[[items]]
key = "WORLD"
question = "Compared to 50 years ago, do you think"
options = ["Safer", "More dangerous", "Neither", "Refused"]
ordinal = [1.0, 2.0, 1.5]
refused = "Refused"

[[items]]
key = "SAFE"
question = "How safe is your community?"
options = ["Very", "Somewhat", "Not too", "Not at all"]
ordinal = [1, 2, 3, 4]
"#;

#[test]
fn representativeness_divides_by_max_minus_min_and_refusals_are_counted_on_both_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = load_survey(&questionnaire_survey(tmp.path(), WORLD, "groups = [\"North\"]\n"), None).unwrap();
    let world = spec.questionnaire.item("WORLD").unwrap();
    // Simulated: 2 safer, 1 refusal; human: 1 safer, 1 more dangerous, 5 refusals.
    let m = compare_item(world, "North", &[2, 0, 0, 1], Some(&[1.0, 1.0, 0.0, 5.0]));
    assert_eq!((m.refused_simulated, m.refused_human), (1, 5.0));
    assert_eq!((m.n_simulated, m.n_human), (2, 2.0), "refusals are left out of the distributions");
    // W1 = 0.5 (half the mass moves from 1 to 2); max − min = 1, not 3 − 1 = 2.
    assert!((m.wasserstein.unwrap() - 0.5).abs() < 1e-12);
    assert_eq!(m.representativeness_denominator, Some(1.0));
    assert!((m.representativeness.unwrap() - 0.5).abs() < 1e-12);
    // Values 1..N: the two denominators agree.
    let safe = spec.questionnaire.item("SAFE").unwrap();
    let m = compare_item(safe, "North", &[1, 0, 0, 0], Some(&[0.0, 0.0, 0.0, 1.0]));
    assert_eq!((m.refused_simulated, m.refused_human), (0, 0.0));
    assert_eq!(m.representativeness, Some(0.0));
    let d = denominator_differences(&spec.questionnaire.items);
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].item.as_str(), d[0].range, d[0].options_minus_one), ("WORLD", 1.0, 2));

    // An item whose ordinal values are all equal has no representativeness, and says so.
    let flat = format!(
        "{WORLD}\n[[items]]\nkey = \"FLAT\"\nquestion = \"?\"\noptions = [\"A\", \"B\"]\nordinal = [1, 1]\n"
    );
    let spec = load_survey(&questionnaire_survey(tmp.path(), &flat, "groups = [\"North\"]\n"), None).unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("transcripts.jsonl"), "").unwrap();
    let report = evaluate(&spec, &run).unwrap();
    assert_eq!(report.items_without_order, ["FLAT"]);
    assert!(report.to_markdown().contains("no distinct ordinal values: FLAT"), "{}", report.to_markdown());
    assert!(report.summary_line().contains("(no representativeness): FLAT"), "{}", report.summary_line());
}

#[test]
fn duplicate_subgroups_options_and_items_are_refused_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    // A subgroup listed twice: the error points at the second one.
    let path = questionnaire_survey(tmp.path(), WORLD, "groups = [\"North\",\n  \"South\",\n  \"North\"]\n");
    let e = load_survey(&path, None).unwrap_err();
    assert!(matches!(e, SurveyError::Invalid { line: 8, ref field, .. } if field == "groups"), "{e}");
    let e = e.to_string();
    assert!(e.contains("survey.toml:8:") && e.contains("duplicate subgroup `North`"), "{e}");

    // The same up to surrounding spaces is the same subgroup.
    let path = questionnaire_survey(tmp.path(), WORLD, "groups = [\"North\", \" North \"]\n");
    let e = load_survey(&path, None).unwrap_err().to_string();
    assert!(e.contains("survey.toml:6:") && e.contains("duplicate subgroup `North`"), "{e}");

    // An item listed twice.
    let path =
        questionnaire_survey(tmp.path(), WORLD, "groups = [\"North\"]\nitems = [\"WORLD\", \"WORLD\"]\n");
    let e = load_survey(&path, None).unwrap_err().to_string();
    assert!(e.contains("survey.toml:7:") && e.contains("duplicate item `WORLD`"), "{e}");

    // An option given twice in a questionnaire item: the error names the file, the line of
    // the second copy and the field.
    let dup = WORLD.replace(
        r#"options = ["Very", "Somewhat", "Not too", "Not at all"]"#,
        "options = [\n  \"Very\",\n  \"Somewhat\",\n  \"Very\",\n]",
    );
    let path = questionnaire_survey(tmp.path(), &dup, "groups = [\"North\"]\n");
    let e = load_survey(&path, None).unwrap_err();
    let q = tmp.path().join("q.toml");
    assert!(matches!(e, SurveyError::Invalid { ref file, line: 16, .. } if *file == q), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("q.toml:16:")
            && e.contains("items[1].options[2]")
            && e.contains("duplicate option `Very` in item `SAFE`"),
        "{e}"
    );
    // Also through the questionnaire loader itself.
    let e = vsim::survey::questionnaire::load_questionnaire(&q).unwrap_err().to_string();
    assert!(e.contains("q.toml:16:"), "{e}");

    // The same in an OpinionQA info.csv (the line of the record).
    let wave = tmp.path().join("W99");
    std::fs::create_dir(&wave).unwrap();
    std::fs::write(
        wave.join("info.csv"),
        "key,question,references,option_ordinal\n\
         A_W99,Is it?,\"['Yes', 'No', 'Refused']\",\"[1.0, 2.0]\"\n\
         B_W99,Is it?,\"['Yes', 'Yes', 'Refused']\",\"[1.0, 2.0]\"\n",
    )
    .unwrap();
    let e = load_info(&wave).unwrap_err().to_string();
    assert!(e.contains("info.csv:3:") && e.contains("duplicate option `Yes`"), "{e}");

    // A NaN ordinal value is refused, not taken as a nominal item left out of
    // representativeness.
    std::fs::write(
        wave.join("info.csv"),
        "key,question,references,option_ordinal\n\
         A_W99,Is it?,\"['Yes', 'No', 'Refused']\",\"[1.0, 2.0]\"\n\
         B_W99,Is it?,\"['Yes', 'No', 'Refused']\",\"[1.0, nan]\"\n",
    )
    .unwrap();
    let e = load_info(&wave).unwrap_err().to_string();
    assert!(
        e.contains("info.csv:3:") && e.contains("option_ordinal") && e.contains("NaN is not a finite"),
        "{e}"
    );
}

/// A survey run through the one runner: its inputs pinned, resumed only as itself, sharded
/// and merged into the unsharded run, evaluated from another directory, and refused for
/// evaluation once its human data changed.
#[tokio::test]
async fn survey_runs_keep_the_run_directory_contract() {
    let Some(original) = wave() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("W26");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(&original).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        let mut perms = std::fs::metadata(copy.join(entry.file_name())).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(copy.join(entry.file_name()), perms).unwrap();
    }
    let file = survey_file(tmp.path(), "vs-standard", "");
    let text = std::fs::read_to_string(&file).unwrap().replace(&original.display().to_string(), "W26");
    std::fs::write(&file, text).unwrap();
    let spec = load_survey(&file, None).unwrap();
    let config = |out: &str, shard: Option<&str>, model: &str| SurveyRunConfig {
        n: Some(6),
        seed: 3,
        concurrency: 2,
        out_dir: tmp.path().join(out),
        resume: false,
        progress: Default::default(),
        model_name: model.into(),
        shard: shard.map(|s| s.parse().unwrap()),
        budget: Default::default(),
        prices: Default::default(),
        max_consecutive_failures: 10,
        interrupt: Default::default(),
    };
    let full = run_survey(&spec, Arc::new(scripted()), &config("full", None, "scripted")).await.unwrap();
    assert_eq!((full.counts.dialogues, full.counts.completed, full.counts.unanswered), (6, 6, 0));
    let manifest = vsim::rundir::read_manifest(&tmp.path().join("full")).unwrap();
    assert_eq!(manifest.kind, vsim::rundir::RunKind::Survey);
    let human = manifest.input("human data").unwrap();
    assert_eq!(human.path, std::path::absolute(&copy).unwrap());
    assert!(manifest.input("survey").unwrap().path.is_absolute());

    // Resuming with another model would mix two experiments in one directory.
    let other = SurveyRunConfig { resume: true, ..config("full", None, "another-model") };
    let err = run_survey(&spec, Arc::new(scripted()), &other).await.unwrap_err();
    assert!(err.to_string().contains("models"), "{err}");
    assert!(err.is_input());

    // Two shards, merged, equal the unsharded run.
    for (dir, shard) in [("s0", "0/2"), ("s1", "1/2")] {
        let s = run_survey(&spec, Arc::new(scripted()), &config(dir, Some(shard), "scripted")).await.unwrap();
        assert_eq!(s.counts.dialogues, 3, "shard {shard} runs only its share");
    }
    let merged = tmp.path().join("merged");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
        .arg("merge")
        .arg(&merged)
        .arg(tmp.path().join("s0"))
        .arg(tmp.path().join("s1"))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(said.contains("6 of 6 respondents") && !said.contains("dialogue"), "{said}");
    let read = |d: &str| std::fs::read_to_string(tmp.path().join(d).join("outcomes.csv")).unwrap();
    assert_eq!(read("merged"), read("full"));

    // Evaluated from another working directory: the manifest's paths are absolute.
    let elsewhere = tempfile::tempdir().unwrap();
    let eval = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vsim"))
            .current_dir(elsewhere.path())
            .arg("eval")
            .arg(tmp.path().join("full"))
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = eval(&[]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    // Human data edited after the run: named and refused, unless asked to go on.
    let edited = copy.join("POLIDEOLOGY_data.json");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push('\n');
    std::fs::write(&edited, text).unwrap();
    let refused = eval(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("human data") && stderr.contains("W26"), "{stderr}");
    let allowed = eval(&["--allow-changed-inputs"]);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    assert!(eval(&["--human", "pfg:x"]).status.code() == Some(2), "--human does not apply to a survey");
    let split = eval(&["--split", "train"]);
    assert_eq!(split.status.code(), Some(2), "--split does not apply to a survey");
    assert!(String::from_utf8_lossy(&split.stderr).contains("--split does not apply to a survey run"));
}

/// Answers every request with the first option in the shape it asks for, counting calls.
fn first_option_model() -> ScriptedModel {
    ScriptedModel::from_fn(|req: &ChatRequest| {
        let first = |choices: &[String]| serde_json::to_string(&choices[0]).unwrap();
        Ok(match &OutputConstraint::of(req) {
            Some(OutputConstraint::Answers {
                answer: AnswerShape::Choice { choices }, max_items, ..
            }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|_| format!(r#"{{"answer": {}, "probability": 0.5}}"#, first(choices)))
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(","))
            }
            Some(OutputConstraint::Choice { choices }) => format!(r#"{{"answer": {}}}"#, first(choices)),
            // `cot`: reasoning, then the answer.
            Some(OutputConstraint::Reasoned { answer: Some(AnswerShape::Choice { choices }) }) => {
                serde_json::json!({"reasoning": "I think so.", "response": choices[0]}).to_string()
            }
            other => panic!("unexpected constraint {other:?}"),
        })
    })
}

#[tokio::test]
async fn surveys_take_every_method_with_table_1_call_budgets() {
    if wave().is_none() {
        return;
    }
    // (method, extra settings, calls per item): N = k = 3 for the list methods; vs-multi
    // gathers 2k in two calls of one conversation; multi-turn two answers in two calls.
    let cases = [
        ("direct", "", 1),
        ("cot", "", 1),
        ("sequence", "k = 3\nselection = \"uniform\"", 1),
        ("multi-turn", "selection = \"uniform\"", 2),
        ("vs-standard", "k = 3", 1),
        ("vs-cot", "k = 3\ntau = 0.2", 1),
        ("vs-multi", "k = 3", 2),
        ("direct", "candidates = 3\nselection = \"uniform\"", 3),
        ("vs-standard", "k = 2\ncandidates = 4\nmin_prob = 0.1", 2),
    ];
    for (method, extra, per_item) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let spec = load_survey(&survey_file(tmp.path(), method, extra), None).unwrap();
        let model = first_option_model();
        let shared: SharedModel = Arc::new(model.clone());
        let config = SurveyRunConfig {
            n: Some(2),
            seed: 3,
            concurrency: 1,
            out_dir: tmp.path().join("run"),
            resume: false,
            progress: Default::default(),
            model_name: "scripted".into(),
            shard: None,
            budget: Default::default(),
            prices: Default::default(),
            max_consecutive_failures: 10,
            interrupt: Default::default(),
        };
        let s = run_survey(&spec, shared, &config).await.unwrap();
        assert_eq!((s.counts.completed, s.counts.missing.len()), (2, 0), "{method} {extra}");
        // 2 respondents × 3 items, no retries.
        assert_eq!(model.requests().len(), 2 * 3 * per_item, "{method} {extra}");
        let csv = std::fs::read_to_string(tmp.path().join("run/outcomes.csv")).unwrap();
        assert!(csv.contains("Very safe"), "{method}: {csv}");
    }
}

#[test]
fn survey_sampling_is_validated_as_roles_are_with_file_and_line() {
    if wave().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (method, extra, needle) in [
        ("direct", "tau = 0.1", "`tau`"),
        ("sequence", "selection = \"weighted\"", "nothing to weigh"),
        ("vs-multi", "k = \"model-decided\"", "give a fixed k"),
        ("direct", "k = 3", "one reply per call"),
        ("vs-banana", "", "unknown method"),
    ] {
        let e = load_survey(&survey_file(tmp.path(), method, extra), None).unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("survey.toml:"), "{method} {extra}: {e}");
    }
}

#[tokio::test]
async fn a_survey_tune_searches_on_train_items_and_asks_the_held_out_items_once_at_the_end() {
    use vsim::workflow::tune::survey::{
        parse_survey_tune, run_survey_tune, split_questions, SurveyTuneOptions,
    };
    let Some(wave) = wave() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let items = ["SAFECRIME_W26", "GUN_W26", "WORLDDANGER_W26", "GUN1_W26", "GUNSOCIETY_W26", "WORRYG_W26"];
    std::fs::write(
        tmp.path().join("survey.toml"),
        format!(
            "kind = \"survey\"\nname = \"t\"\nopinionqa = \"{}\"\nattribute = \"POLIDEOLOGY\"\n\
             groups = [\"Liberal\", \"Very conservative\"]\nitems = {items:?}\nper_group = 2\nmethod = \"vs-standard\"\n\
             k = 3\nsystem = \"You are an American whose {{{{ attribute }}}} is {{{{ group }}}}.\"\n",
            wave.display()
        ),
    )
    .unwrap();
    let text = "survey = \"survey.toml\"\nseed = 2\n[grid]\nselection = [\"weighted\", \"uniform\"]\n\
                [tune]\nobjective = \"tv\"\nheld_out = 0.5\n[[baselines]]\nname = \"direct\"\nmethod = \"direct\"\n";
    let path = tmp.path().join("tune.toml");
    std::fs::write(&path, text).unwrap();
    let tune = parse_survey_tune(&path, text).unwrap();
    let ids: Vec<String> = tune.survey.questionnaire.items.iter().map(|i| i.key.clone()).collect();
    assert_eq!((tune.train_items.clone(), tune.held_out_items.clone()), split_questions(&ids, 0.5));
    assert_eq!(tune.train_items.len() + tune.held_out_items.len(), 6);
    assert!(tune.train_items.iter().all(|i| !tune.held_out_items.contains(i)));
    let model: SharedModel = Arc::new(scripted());
    let models = tune.model_specs().into_iter().map(|s| (s, model.clone())).collect();
    let options = SurveyTuneOptions { out: Some(tmp.path().join("out")), ..Default::default() };
    let s = run_survey_tune(&tune, &models, &options).await.unwrap();
    assert_eq!(s.trials.len(), 2);
    assert!(s.chosen.is_some() && s.held_out.len() == 2 && s.optimism_gap.is_some(), "{s:?}");
    // Each run asked only its side of the split: the search never saw a held-out item.
    let asked = |dir: &Path| -> Vec<String> {
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        m["survey"]["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    for t in &s.trials {
        assert_eq!(asked(&t.dir), tune.train_items);
    }
    for h in &s.held_out {
        assert_eq!(asked(&h.dir), tune.held_out_items);
        assert!(h.representativeness.keys().all(|g| g == "Liberal" || g == "Very conservative"), "{h:?}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out/tune.json")).unwrap()).unwrap();
    assert_eq!(manifest["question_split"]["held_out"].as_array().unwrap().len(), tune.held_out_items.len());
    let report = std::fs::read_to_string(tmp.path().join("out/report.md")).unwrap();
    assert!(report.contains("representativeness: Liberal") && report.contains("Held-out items"), "{report}");
    assert!(tmp.path().join("out/test/report/report.html").exists());
    // The objective is the report's own figure, and the stability a share.
    for t in s.trials.iter().chain(&s.held_out) {
        let m: vsim::survey::eval::SurveyReport =
            serde_json::from_str(&std::fs::read_to_string(t.dir.join("metrics.json")).unwrap()).unwrap();
        assert_eq!(t.score, vsim::workflow::tune::survey::SurveyObjective::Tv.score(&m));
        if let Some(mean_tv) = m.mean_tv {
            assert!((t.score.unwrap() - mean_tv).abs() < 1e-12);
        }
    }
    assert!(s.stability.is_some_and(|x| (0.0..=1.0).contains(&x)));
}

#[test]
fn the_shipped_survey_tune_file_loads_when_its_wave_is_there() {
    use vsim::workflow::tune::survey::parse_survey_tune;
    let Some(wave) = wave() else { return };
    // The shipped file reads the wave from data/; point a copy of its survey at the reference.
    let tmp = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let survey = std::fs::read_to_string(root.join("survey_opinionqa_w26.toml")).unwrap();
    let survey: String = survey
        .lines()
        .map(|l| {
            if l.starts_with("opinionqa =") {
                format!("opinionqa = \"{}\"", wave.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(tmp.path().join("survey_opinionqa_w26.toml"), survey).unwrap();
    let text = std::fs::read_to_string(root.join("tune_survey_w26.toml")).unwrap();
    let tune = parse_survey_tune(&tmp.path().join("tune.toml"), &text).unwrap();
    assert_eq!(tune.cells.len(), 8);
    assert_eq!(tune.baselines.len(), 2);
    assert!(!tune.train_items.is_empty() && !tune.held_out_items.is_empty());
}

#[tokio::test]
async fn a_survey_sweep_runs_every_method_on_every_item_and_compares_them_against_the_subgroups() {
    use vsim::workflow::tune::survey::{parse_survey_sweep, run_survey_sweep, SurveyTuneOptions};
    if wave().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    survey_file(tmp.path(), "direct", "");
    let text = "survey = \"survey.toml\"\nseed = 4\n[grid]\nmethod = [\"direct\", \"cot\", \"multi-turn\"]\n";
    let path = tmp.path().join("sweep.toml");
    let sweep = parse_survey_sweep(&path, text).unwrap();
    assert_eq!(sweep.cells.len(), 3);
    assert!(sweep.held_out_items.is_empty() && sweep.train_items.len() == 3);
    let model: SharedModel = Arc::new(first_option_model());
    let models = sweep.model_specs().into_iter().map(|s| (s, model.clone())).collect();
    let options = SurveyTuneOptions { out: Some(tmp.path().join("out")), ..Default::default() };
    let s = run_survey_sweep(&sweep, &models, &options).await.unwrap();
    assert_eq!(s.cells.len(), 3);
    for c in &s.cells {
        assert_eq!(c.respondents, 6, "{c:?}");
        let m: vsim::survey::eval::SurveyReport =
            serde_json::from_str(&std::fs::read_to_string(c.dir.join("metrics.json")).unwrap()).unwrap();
        // The objective is 1 − the report's overall representativeness, recomputed from its rows.
        let overall = m.overall_representativeness.expect("ordinal items");
        assert!((c.score.unwrap() - (1.0 - overall)).abs() < 1e-12, "{c:?} {overall}");
    }
    let report = std::fs::read_to_string(tmp.path().join("out/report/report.md")).unwrap();
    assert!(
        report.contains("000-direct") && report.contains("002-multi-turn") && report.contains("Liberal"),
        "{report}"
    );
    // A [tune] table or baselines belong to a tune file.
    let err = parse_survey_sweep(&path, &format!("{text}[tune]\nheld_out = 0.5\n")).unwrap_err();
    assert!(err.to_string().contains("tune"), "{err}");
}
