//! Draws N responses to one prompt with several prompt methods under the call budget of the
//! Verbalized Sampling paper's Table 1 (N calls for direct, ⌈N/k⌉ for list methods) and
//! prints how diverse each method's responses are (Distinct-1/2/3). Runs offline against an
//! in-process mock server; point it at a real model to see mode collapse and its cure.
//!
//!     cargo run --example compare_methods

use anyhow::Result;
use vsim::backend::factory::{open_model, BackendOptions};
use vsim::backend::spec::ModelSpec;
use vsim::backend::Message;
use vsim::mock::{MockConfig, MockServer};
use vsim::stats::text::{distinct_n, Pooling};
use vsim::vs::{GenerateRequest, Generator, KSpec, Method};

#[tokio::main]
async fn main() -> Result<()> {
    let server = MockServer::start(MockConfig { seed: 3, ..MockConfig::default() }).await?;
    let spec = ModelSpec::parse(&format!("openai:mock@{}", server.base_url()))?;
    let options = BackendOptions { cache: vsim::backend::cache::CacheMode::Off, ..BackendOptions::default() };
    let model = open_model(&spec, &options).await?;
    let n = 20;
    println!(
        "{:<12} {:>6} {:>10} {:>10} {:>10}",
        "method", "calls", "Distinct-1", "Distinct-2", "Distinct-3"
    );
    for method in [Method::Direct, Method::Sequence, Method::VsStandard, Method::VsMulti] {
        let mut req = GenerateRequest::new(
            vec![
                Message::system("You are a helpful assistant."),
                Message::user("Tell me a joke about coffee."),
            ],
            method,
        );
        req.k = if method.asks_for_list() { KSpec::Fixed { k: 5 } } else { KSpec::Fixed { k: 1 } };
        req.seed = 7;
        let g = Generator::default().generate_n(model.as_ref(), &req, n).await?;
        let texts: Vec<&str> = g.candidates.iter().map(|c| c.text.as_str()).collect();
        let d = |k| distinct_n(&texts, k, Pooling::Pooled).map_or("n/a".into(), |v| format!("{v:.3}"));
        println!("{:<12} {:>6} {:>10} {:>10} {:>10}", method.to_string(), g.calls.len(), d(1), d(2), d(3));
    }
    Ok(())
}
