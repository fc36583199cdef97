//! Runs the shipped PersuasionForGood scenario on the hand-written personas against an
//! in-process OpenAI-compatible mock server, then evaluates the run directory: the
//! persuadee speaks through Verbalized Sampling, answers the donation question through the
//! same method, and every figure comes with its counts. Offline and quick; swap the model
//! spec for `openai:gpt-4o-mini` or `local` to use a real model.
//!
//!     cargo run --example persuasion_run

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use vsim::backend::factory::{open_model, BackendOptions};
use vsim::backend::spec::ModelSpec;
use vsim::eval::{evaluate, write_metrics, EvalOptions, RunData};
use vsim::experiment::{run_experiment, Population, RoleModel, RunConfig};
use vsim::mock::{MockConfig, MockServer};

#[tokio::main]
async fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let server = MockServer::start(MockConfig { seed: 7, ..MockConfig::default() }).await?;
    let spec = ModelSpec::parse(&format!("openai:mock@{}", server.base_url()))?;
    let options = BackendOptions { cache: vsim::backend::cache::CacheMode::Off, ..BackendOptions::default() };
    let model = open_model(&spec, &options).await?;

    let scenario = vsim::scenario::load_scenario(&root.join("scenarios/persuasion_for_good.toml"))?;
    let population = Population::load(root.join("personas").to_str().unwrap_or("personas"))?;
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "mock".into(), model: model.clone() }).collect();
    let out = tempfile::tempdir()?;
    let config = RunConfig {
        n: Some(4),
        seed: 42,
        concurrency: 4,
        out_dir: out.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment(Arc::new(scenario), &population, &models, &config).await?;
    println!(
        "{} dialogues, {} completed, {} failed",
        summary.counts.dialogues, summary.counts.completed, summary.counts.failed
    );

    let run = RunData::load(out.path())?;
    for d in &run.dialogues {
        if let Some(o) = d.outcome("persuadee.donation") {
            let answers = o.distribution.as_ref().map_or(1, |dist| dist.candidates.len());
            println!(
                "{} ({}): donates {:?}, chosen from {answers} answers",
                d.id,
                d.population_id.as_deref().unwrap_or("-"),
                o.value
            );
        }
    }
    let evaluation =
        evaluate(&run, None, &EvalOptions { bootstrap: 200, ..EvalOptions::default() }, None).await?;
    for o in &evaluation.numeric {
        let c = &o.counts;
        println!(
            "{}: {} valid, {} missing, {} invalid, {} failed",
            o.key, c.valid, c.missing, c.invalid, c.failed
        );
    }
    println!(
        "wrote {} (a temporary directory, removed on exit)",
        write_metrics(out.path(), &evaluation)?.display()
    );
    Ok(())
}
