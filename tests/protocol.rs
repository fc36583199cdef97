//! The comparison protocol end to end: a `pfg:` population is the held-out participants of
//! one split, and evaluation compares exactly those people with their own real donations.
//! A scripted persuadee that answers with its participant's real donation must give KS = 0
//! and paired L1 = 0; a small fixed split gives hand-computed KS and L1.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use assert_cmd::Command;
use vsim::backend::scripted::ScriptedModel;
use vsim::backend::{ChatRequest, SharedModel};
use vsim::data::persuasionforgood::{PfgDataset, PfgRole, Split, SPLIT_SEED};
use vsim::eval::{evaluate, EvalOptions, HumanError, HumanReference, RunData};
use vsim::experiment::{run_experiment, Population, RoleModel, RunConfig};
use vsim::scenario::{parse_scenario, Scenario};
use vsim::vs::OutputConstraint;

const KEY: &str = "persuadee.donation";

/// The persuasion scenario cut to two turns, with the persona id in the persuadee's prompt
/// so that a scripted model knows whom it plays.
fn scenario() -> Scenario {
    let text = r#"
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
    parse_scenario(Path::new("protocol.toml"), text).unwrap()
}

/// Answers the donation question with `answers[persona id]`, everything else with text.
fn model(answers: HashMap<String, f64>) -> ScriptedModel {
    ScriptedModel::from_fn(move |req: &ChatRequest| {
        let system = req.messages.first().map(|m| m.content.clone()).unwrap_or_default();
        Ok(match &OutputConstraint::of(req) {
            // The persuadee (vs-standard) answers through its method: a list of answers.
            Some(OutputConstraint::Answers { .. }) => {
                let id = system.split("PERSONA=").nth(1).and_then(|s| s.split(';').next()).unwrap_or("");
                match answers.get(id) {
                    Some(v) => format!(r#"{{"responses": [{{"answer": {v}, "probability": 1.0}}]}}"#),
                    None => "I am not sure.".to_string(),
                }
            }
            Some(OutputConstraint::Number { .. }) => {
                let id = system.split("PERSONA=").nth(1).and_then(|s| s.split(';').next()).unwrap_or("");
                let value = answers.get(id).copied().unwrap_or(f64::NAN);
                if value.is_nan() {
                    "I am not sure.".to_string()
                } else {
                    format!(r#"{{"answer": {value}}}"#)
                }
            }
            Some(OutputConstraint::Candidates { max_items, .. }) => {
                let items: Vec<String> = (0..*max_items)
                    .map(|i| format!(r#"{{"text": "reply {i}", "probability": 0.{}}}"#, i + 1))
                    .collect();
                format!(r#"{{"responses": [{}]}}"#, items.join(", "))
            }
            _ => "Would you donate to Save the Children?".to_string(),
        })
    })
}

async fn simulate(population: &Population, answers: HashMap<String, f64>, n: Option<usize>, dir: &Path) {
    let scenario = scenario();
    let shared: SharedModel = Arc::new(model(answers));
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "scripted".into(), model: shared.clone() }).collect();
    let config = RunConfig {
        n,
        seed: 7,
        concurrency: 8,
        out_dir: dir.to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment(Arc::new(scenario), population, &models, &config).await.unwrap();
    assert_eq!(summary.counts.failed, 0);
}

fn estimate(m: &vsim::eval::Metric) -> f64 {
    m.estimate().unwrap_or_else(|| panic!("not computed: {m:?}"))
}

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

/// Five consistent persuadees (d1..d5, donations 0, 0.5, 1, 1.5, 2, in shuffled file
/// order) and two the filter drops (d6 above $2, d7 with none).
fn small_pfg(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut rows = vec![INFO_HEADER.to_string()];
    for (d, donation) in
        [("d3", "1"), ("d6", "5"), ("d1", "0"), ("d5", "2"), ("d7", "NA"), ("d2", "0.5"), ("d4", "1.5")]
    {
        rows.push(info_row(d, &format!("{d}-a"), 0, "0"));
        rows.push(info_row(d, &format!("{d}-b"), 1, donation));
    }
    std::fs::write(dir.join("full_info.csv"), rows.join("\n") + "\n").unwrap();
    let mut dialog = String::from(",Unit,Turn,B4,B2\n");
    for (i, d) in ["d1", "d2", "d3", "d4", "d5", "d6", "d7"].iter().enumerate() {
        dialog.push_str(&format!(
            "{},Would you give?,0,0,{d}\n{},Maybe I will give.,0,1,{d}\n",
            2 * i,
            2 * i + 1
        ));
    }
    std::fs::write(dir.join("full_dialog.csv"), dialog).unwrap();
    dir.to_path_buf()
}

fn opts() -> EvalOptions {
    EvalOptions { bootstrap: 0, ..EvalOptions::default() }
}

#[tokio::test]
async fn small_split_gives_hand_computed_ks_and_l1() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_pfg(&tmp.path().join("pfg"));
    let spec = format!("pfg:{}", data.display());
    let population = Population::load(&spec).unwrap();
    // The filter drops d6 and d7; the test split of 5 kept persuadees is all of them, in
    // dialogue-id order whatever the file order.
    let ids: Vec<&str> = population.members.iter().map(|m| m.persona.id.as_str()).collect();
    assert_eq!(ids, ["d1-persuadee", "d2-persuadee", "d3-persuadee", "d4-persuadee", "d5-persuadee"]);
    let reference = population.reference.as_ref().unwrap();
    assert_eq!((reference.split, reference.split_seed), (Split::Test, SPLIT_SEED));
    assert_eq!(population.members[0].partner.as_ref().unwrap().id, "d1-persuader");

    // Real: 0, 0.5, 1, 1.5, 2. Simulated: 0, 0, 1, 2, 2.
    let sim = [0.0, 0.0, 1.0, 2.0, 2.0];
    let answers: HashMap<String, f64> = ids.iter().zip(sim).map(|(id, v)| (id.to_string(), v)).collect();
    let run_dir = tmp.path().join("run");
    simulate(&population, answers.clone(), None, &run_dir).await;
    let run = RunData::load(&run_dir).unwrap();
    assert_eq!(run.population_reference().unwrap().participant_ids, ids);
    let human = HumanReference::for_run(&spec, &run, None, false).unwrap();
    assert!(human.same_people);
    let e = evaluate(&run, Some(&human), &opts(), None).await.unwrap();
    let o = e.numeric.iter().find(|o| o.key == KEY).unwrap();
    let c = o.comparison.as_ref().unwrap();
    // ECDFs: at 0, 0.4 vs 0.2; at 1.5, 0.6 vs 0.8; elsewhere equal: D = 0.2.
    assert!((estimate(&c.ks.statistic) - 0.2).abs() < 1e-12, "{:?}", c.ks);
    // Paired: |0-0| + |0-0.5| + |1-1| + |2-1.5| + |2-2| = 1.0 over 5 people.
    assert!((estimate(&c.l1_paired) - 0.2).abs() < 1e-12);
    assert_eq!((c.counts.simulated, c.counts.human, c.counts.paired), (5, 5, 5));
    assert_eq!((c.counts.missing, c.counts.failed, c.counts.human_unpaired), (0, 0, 0));

    // A smaller n takes the first n of the split, and the human side is those people.
    let run3 = tmp.path().join("run3");
    simulate(&population, answers.clone(), Some(3), &run3).await;
    let run = RunData::load(&run3).unwrap();
    let human = HumanReference::for_run(&spec, &run, None, false).unwrap();
    assert_eq!(human.participant_ids, ["d1-persuadee", "d2-persuadee", "d3-persuadee"]);
    let e = evaluate(&run, Some(&human), &opts(), None).await.unwrap();
    let c = e.numeric[0].comparison.as_ref().unwrap();
    // Real 0, 0.5, 1 vs simulated 0, 0, 1: D = 1/3 (at 0), paired L1 = 0.5 / 3.
    assert!((estimate(&c.ks.statistic) - 1.0 / 3.0).abs() < 1e-12);
    assert!((estimate(&c.l1_paired) - 0.5 / 3.0).abs() < 1e-12);
    assert_eq!((c.counts.simulated, c.counts.human, c.counts.paired), (3, 3, 3));

    // A larger n cycles: 7 simulated values of 5 people, each person once on the human side.
    let run7 = tmp.path().join("run7");
    simulate(&population, answers, Some(7), &run7).await;
    let run = RunData::load(&run7).unwrap();
    let human = HumanReference::for_run(&spec, &run, None, false).unwrap();
    let e = evaluate(&run, Some(&human), &opts(), None).await.unwrap();
    let c = e.numeric[0].comparison.as_ref().unwrap();
    assert_eq!((c.counts.simulated, c.counts.human, c.counts.paired), (7, 5, 7));

    // Another split than the run's is refused unless asked for.
    let run = RunData::load(&run_dir).unwrap();
    let err = HumanReference::for_run(&spec, &run, Some(Split::All), false).unwrap_err();
    assert!(matches!(err, HumanError::SplitMismatch { run: Split::Test, asked: Split::All }), "{err}");
    assert!(err.to_string().contains("other split explicitly"), "{err}");
    assert_eq!(
        vsim::workflow::remedy::remedy(&err),
        Some(vsim::workflow::remedy::Remedy::RunSplitOrOtherSplit)
    );
    let h = HumanReference::for_run(&spec, &run, Some(Split::All), true).unwrap();
    assert!(!h.same_people && h.people.contains("on request"), "{}", h.people);
}

#[tokio::test]
async fn missing_and_failed_outcomes_are_counted_not_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let data = small_pfg(&tmp.path().join("pfg"));
    let spec = format!("pfg:{}", data.display());
    let population = Population::load(&spec).unwrap();
    // d2 and d4 give no usable answer (missing); the others answer their real donation.
    let answers: HashMap<String, f64> = [("d1-persuadee", 0.0), ("d3-persuadee", 1.0), ("d5-persuadee", 2.0)]
        .map(|(k, v)| (k.into(), v))
        .into();
    let run_dir = tmp.path().join("run");
    simulate(&population, answers, None, &run_dir).await;
    let run = RunData::load(&run_dir).unwrap();
    let human = HumanReference::for_run(&spec, &run, None, false).unwrap();
    let e = evaluate(&run, Some(&human), &opts(), None).await.unwrap();
    let c = e.numeric[0].comparison.as_ref().unwrap();
    assert_eq!((c.counts.simulated, c.counts.human, c.counts.paired), (3, 5, 3));
    assert_eq!((c.counts.missing, c.counts.human_unpaired), (2, 2));
    assert_eq!(estimate(&c.l1_paired), 0.0);
}

#[test]
fn a_split_is_refused_for_persona_files() {
    let personas = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas");
    let err = Population::load_split(personas.to_str().unwrap(), Some(Split::Test)).unwrap_err();
    assert!(err.to_string().contains("applies only to a population drawn from data"), "{err}");
}

fn real_pfg() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/persuasionforgood");
    if dir.join("full_info.csv").is_file() && dir.join("full_dialog.csv").is_file() {
        Some(dir)
    } else {
        eprintln!("note: {} not found; skipping the real-data check", dir.display());
        None
    }
}

/// The held-out split of the real data, simulated by a persuadee that states its own real
/// donation: the simulated and human samples are the same people with the same values.
#[tokio::test]
async fn real_test_split_answering_real_donations_gives_zero_distance() {
    let Some(dir) = real_pfg() else { return };
    let spec = format!("pfg:{}", dir.display());
    let population = Population::load(&spec).unwrap();
    assert_eq!(population.members.len(), 200);
    let data = PfgDataset::load(&dir).unwrap();
    let real: HashMap<String, f64> =
        data.with_role(PfgRole::Persuadee).filter_map(|p| Some((p.persona_id(), p.donation?))).collect();
    // Membership is a function of the data: the same 200 people on every load.
    assert_eq!(Population::load(&spec).unwrap().reference, population.reference);
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    simulate(&population, real.clone(), None, &run_dir).await;

    let run = RunData::load(&run_dir).unwrap();
    let human = HumanReference::for_run(&spec, &run, None, false).unwrap();
    assert_eq!(human.split, Split::Test);
    assert_eq!(human.participant_ids, population.reference.as_ref().unwrap().participant_ids);
    let e = evaluate(&run, Some(&human), &opts(), None).await.unwrap();
    let c = e.numeric[0].comparison.as_ref().unwrap();
    assert_eq!(estimate(&c.ks.statistic), 0.0);
    assert_eq!(estimate(&c.l1_paired), 0.0);
    assert_eq!(estimate(&c.l1_density_pfg), 0.0);
    assert_eq!((c.counts.simulated, c.counts.human, c.counts.paired), (200, 200, 200));

    // The CLI: two bootstrap seeds change the intervals, never the people or the statistic.
    let mut seen = Vec::new();
    for seed in ["1", "2"] {
        let out = Command::cargo_bin("vsim")
            .unwrap()
            .args(["eval", run_dir.to_str().unwrap(), "--human", &spec, "--embedder", "none"])
            .args(["--bootstrap", "50", "--seed", seed])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("simulated 200, human 200, paired 200, failed 0): KS D = 0.000"), "{stdout}");
        let metrics: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("metrics.json")).unwrap()).unwrap();
        let pairs: Vec<String> = metrics["numeric"][0]["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["population_id"].as_str().unwrap().to_string())
            .collect();
        seen.push(pairs);
    }
    assert_eq!(seen[0], seen[1]);
    let out = Command::cargo_bin("vsim")
        .unwrap()
        .args(["eval", run_dir.to_str().unwrap(), "--human", &spec, "--embedder", "none", "--split", "train"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("would compare different people"));
}
