//! A three-agent scenario built in code rather than read from a TOML file: a moderator
//! chairs a neighbourhood meeting about a bike lane, picking who speaks next, between a
//! resident (played by each population member in turn, speaking through Verbalized Sampling
//! with k = 4 and probability-weighted selection) and a city councillor (a fixed persona,
//! replying directly). After the meeting the resident answers a private vote question
//! through the same method. Runs two dialogues against an in-process mock server and prints
//! every turn: the speaker, how many candidates were offered, the rule's draw, the chosen
//! text and, for the moderator, whom it picked. (The mock answers with canned sentences
//! whatever the topic; point the model spec at a real model for a real meeting.)
//!
//!     cargo run --example three_agents

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use vsim::backend::factory::{open_model, BackendOptions};
use vsim::backend::spec::ModelSpec;
use vsim::dialogue::events::Event;
use vsim::experiment::{run_experiment, Population, RoleModel, RunConfig};
use vsim::mock::{MockConfig, MockServer};
use vsim::outcome::OutcomeSpec;
use vsim::rundir::transcript::read_events;
use vsim::scenario::{PersonaSource, RoleSpec, Scenario, TurnGraph, TurnPolicy};
use vsim::vs::AnswerShape;
use vsim::vs::{KSpec, Method, PromptTemplates, Sampling};

const TOPIC: &str = "The city proposes replacing the parking spaces on Elm Street with a protected \
                     bike lane.";

fn role(id: &str, name: &str, system: &str, method: Method, persona: PersonaSource) -> RoleSpec {
    let mut sampling = Sampling::new(method);
    if method.is_verbalized() {
        sampling.k = KSpec::Fixed { k: 4 };
    }
    RoleSpec {
        id: id.into(),
        name: name.into(),
        system: format!("{TOPIC} {system}"),
        system_origin: None,
        sampling,
        temperature: Some(0.9),
        top_p: None,
        max_tokens: Some(200),
        model: None,
        persona,
        persona_attributes: None,
    }
}

fn scenario() -> Result<Scenario> {
    let roles = vec![
        role(
            "moderator",
            "Moderator",
            "You chair the neighbourhood meeting. Summarise in one sentence, then invite \
             {% for r in roles %}{% if r.id != 'moderator' %}{{ r.name }}{% if not loop.last %} or {% endif %}{% endif %}{% endfor %} \
             to speak.",
            Method::Direct,
            PersonaSource::None,
        ),
        role(
            "resident",
            "Resident",
            "You live on Elm Street. Speak as this person, in one or two sentences:\n{{ persona.profile }}",
            Method::VsStandard,
            PersonaSource::Population,
        ),
        role(
            "councillor",
            "Councillor",
            "You are the city councillor who proposed the lane. Speak as this person, in one or two \
             sentences:\n{{ persona.profile }}",
            Method::Direct,
            PersonaSource::Fixed("investment_banker_nyc".into()),
        ),
    ];
    for r in &roles {
        r.sampling.check().map_err(|(field, reason)| anyhow::anyhow!("role {}: {field}: {reason}", r.id))?;
    }
    // The moderator speaks after everyone and picks the next speaker among its successors.
    let edges = [(0, 1), (0, 2), (1, 0), (2, 0)];
    let graph = TurnGraph::new(roles.len(), &edges, TurnPolicy::Moderator, 0, Some(0))
        .map_err(|p| anyhow::anyhow!("turn graph: {p:?}"))?;
    Ok(Scenario {
        name: "elm_street_bike_lane".into(),
        description: Some("A moderator, a resident and a councillor discuss a bike lane.".into()),
        source: PathBuf::from("examples/three_agents.rs"),
        population: None,
        roles,
        graph,
        max_turns: 7,
        stop_patterns: Vec::new(),
        opening: "(The meeting opens. Introduce the proposal and invite someone to speak.)".into(),
        outcomes: vec![OutcomeSpec {
            name: "vote".into(),
            role: 1,
            question: "The meeting is over. Do you support the bike lane? Answer for, against or undecided."
                .into(),
            kind: AnswerShape::Choice { choices: vec!["for".into(), "against".into(), "undecided".into()] },
            fallback: None,
            method: None,
            stated: false,
            stated_model: None,
        }],
        templates: PromptTemplates::default(),
        use_schema: true,
        default_model: None,
    })
}

fn short(text: &str) -> String {
    let one_line = text.replace('\n', " ");
    match one_line.char_indices().nth(90) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let server = MockServer::start(MockConfig { seed: 5, ..MockConfig::default() }).await?;
    let spec = ModelSpec::parse(&format!("openai:mock@{}", server.base_url()))?;
    let options = BackendOptions { cache: vsim::backend::cache::CacheMode::Off, ..BackendOptions::default() };
    let model = open_model(&spec, &options).await?;

    let scenario = scenario()?;
    let models: Vec<RoleModel> =
        scenario.roles.iter().map(|_| RoleModel { name: "mock".into(), model: model.clone() }).collect();
    let population = Population::load(root.join("personas").to_str().unwrap_or("personas"))?;
    let out = tempfile::tempdir()?;
    let config = RunConfig {
        n: Some(2),
        seed: 9,
        concurrency: 2,
        out_dir: out.path().to_path_buf(),
        resume: false,
        progress: Default::default(),
    };
    let summary = run_experiment(Arc::new(scenario), &population, &models, &config).await?;
    println!(
        "{} dialogues, {} completed, {} failed\n",
        summary.counts.dialogues, summary.counts.completed, summary.counts.failed
    );

    for (id, events) in read_events(&out.path().join("transcripts.jsonl"))? {
        for e in events {
            match e {
                Event::Begin(b) => {
                    println!("== {id}: the resident plays {}", b.population_id.as_deref().unwrap_or("-"))
                }
                Event::Turn(t) => {
                    let draw = t.choice.draw.map_or("-".into(), |u| format!("{u:.2}"));
                    println!(
                        "  {:>2} {:<10} [{} of {}, {}, u = {draw}] {}",
                        t.turn,
                        t.speaker,
                        t.choice.index + 1,
                        t.candidates.len(),
                        t.choice.rule.selection,
                        short(&t.text)
                    );
                    if let Some(next) = t.next_speaker {
                        println!("     moderator picks: {next}");
                    }
                }
                Event::Outcome(o) => {
                    let value = o.value.map_or("missing".to_string(), |v| v.to_string());
                    println!("  {}.{} = {value} ({:?})", o.role, o.name, o.source)
                }
                Event::End(_) => {}
                Event::Error(e) => println!("  error: {e:?}"),
            }
        }
    }
    Ok(())
}
