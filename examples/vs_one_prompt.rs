//! The Verbalized Sampling engine on one prompt: the model is asked for k = 5 candidate
//! replies, each with the probability it gives it; the probabilities are normalised; a
//! seeded selection rule picks one. Prints the instruction that was sent, the candidates with
//! their stated and normalised probabilities, and what each rule (probability-weighted,
//! uniform, argmax, and weighted after a `min_prob` floor) chooses with its random draw.
//! Runs offline against an in-process mock server; swap the model spec for
//! `openai:gpt-4o-mini` or `local` to see a real model's distribution.
//!
//!     cargo run --example vs_one_prompt

use anyhow::Result;
use vsim::backend::factory::{open_model, BackendOptions};
use vsim::backend::spec::ModelSpec;
use vsim::backend::Message;
use vsim::mock::{MockConfig, MockServer};
use vsim::vs::{select, GenerateRequest, Generator, KSpec, Method, Selection, SelectionRule};

/// Seed of the selection draws (a dialogue derives one per turn from its own seed).
const SELECT_SEED: u64 = 1;

#[tokio::main]
async fn main() -> Result<()> {
    let server = MockServer::start(MockConfig { seed: 11, ..MockConfig::default() }).await?;
    let spec = ModelSpec::parse(&format!("openai:mock@{}", server.base_url()))?;
    let options = BackendOptions { cache: vsim::backend::cache::CacheMode::Off, ..BackendOptions::default() };
    let model = open_model(&spec, &options).await?;

    let mut req = GenerateRequest::new(
        vec![
            Message::system("You are a 34-year-old nurse asked to donate to a children's charity."),
            Message::user("Would you give part of your $2 task payment to Save the Children?"),
        ],
        Method::VsStandard,
    );
    req.k = KSpec::Fixed { k: 5 };
    req.seed = 42;
    let generator = Generator::default();
    println!("instruction appended to the prompt:");
    for line in generator.templates.instruction(req.method, req.k, req.tau)?.lines() {
        println!("  | {line}");
    }

    let g = generator.generate(model.as_ref(), &req).await?;
    println!("\n{} candidates from {} call(s):", g.candidates.len(), g.calls.len());
    println!("  {:>2}  {:>6}  {:>10}  text", "#", "stated", "normalised");
    for (i, c) in g.candidates.iter().enumerate() {
        let stated = c.raw_probability.map_or("-".into(), |p| format!("{p:.3}"));
        println!("  {i:>2}  {stated:>6}  {:>10.3}  {}", c.probability, c.text);
    }

    // Weighted selection lays the candidates end to end on [0, 1) by probability and takes
    // the one the draw u falls in.
    let mut cum = 0.0;
    let intervals: Vec<String> = g
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let lo = cum;
            cum += c.probability;
            format!("#{i} [{lo:.2}, {cum:.2})")
        })
        .collect();
    println!("\nweighted intervals: {}", intervals.join(" "));

    // Every rule draws at most one number u in [0, 1) from a seeded RNG; the draw is
    // recorded, so the choice can be replayed from a transcript.
    println!("\nselection (the draw u and the chosen candidate):");
    let rules = [
        ("weighted", SelectionRule::new(Selection::Weighted)),
        ("uniform", SelectionRule::new(Selection::Uniform)),
        ("argmax", SelectionRule::new(Selection::Argmax)),
        ("weighted, min_prob 0.2", SelectionRule::new(Selection::Weighted).with_min_prob(0.2, 1)),
    ];
    for (name, rule) in rules {
        let mut rng = vsim::seed::rng(SELECT_SEED);
        let choice = select(&g.candidates, &rule, &mut rng);
        let draw = choice.draw.map_or("none".into(), |u| format!("{u:.3}"));
        println!(
            "  {name:<24} u = {draw:<5}  eligible {:?} -> #{}: {}",
            choice.eligible, choice.index, g.candidates[choice.index].text
        );
    }
    Ok(())
}
