//! `vsim sample`: one verbalized distribution and the chosen reply.

use super::{BackendArgs, CliError, CliResult};
use vsim::backend::Message;
use vsim::vs::{
    select, Candidate, Choice, GenerateRequest, Generator, KSpec, Method, Selection, SelectionRule,
};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  vsim sample \"Tell me a joke about coffee\" --method vs-standard --k 5 --seed 7\n  vsim sample \"Name a US state\" --k model-decided --selection uniform --json\n  vsim sample \"Write a haiku\" --model openai:gpt-4o-mini --tau 0.1"
)]
pub struct SampleArgs {
    /// The user prompt.
    pub prompt: String,
    /// direct, cot, sequence, multi-turn, vs-standard, vs-cot or vs-multi.
    #[arg(long, default_value = "vs-standard")]
    pub method: String,
    /// Number of candidates: a positive integer, or "model-decided".
    #[arg(long, default_value = "5")]
    pub k: String,
    /// Upper bound when k is model-decided.
    #[arg(long, default_value_t = 10)]
    pub k_max: usize,
    /// The paper's τ: ask for responses "each with a probability below T" in the prompt
    /// (VS methods), reaching into the tails of the distribution.
    #[arg(long)]
    pub tau: Option<f64>,
    /// A post-hoc floor: drop candidates below this probability before selection (keeping
    /// --min-keep).
    #[arg(long)]
    pub min_prob: Option<f64>,
    /// Keep at least this many candidates after the --min-prob floor.
    #[arg(long, default_value_t = 1)]
    pub min_keep: usize,
    /// weighted, uniform or argmax.
    #[arg(long, default_value = "weighted")]
    pub selection: String,
    /// Backend: local (default), local:PATH.gguf, openai:MODEL or openai:MODEL@BASE_URL.
    #[arg(long, default_value = "local", env = "VSIM_MODEL")]
    pub model: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// System prompt.
    #[arg(long, default_value = "You are a helpful assistant.")]
    pub system: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// Validated sampling options shared with other commands.
pub fn validate(args: &SampleArgs) -> Result<(Method, KSpec, SelectionRule), CliError> {
    let method: Method = args.method.parse().map_err(CliError::input)?;
    if args.k.trim() == "0" {
        return Err(CliError::input(anyhow::anyhow!("--k must be at least 1 (or \"model-decided\")")));
    }
    if args.k_max == 0 {
        return Err(CliError::input(anyhow::anyhow!("--k-max must be at least 1")));
    }
    let k = vsim::scenario::parse_k(&args.k, args.k_max)
        .map_err(|e| CliError::input(anyhow::anyhow!("--k: {e}")))?;
    let selection: Selection = args.selection.parse().map_err(CliError::input)?;
    for (name, t) in [("--tau", args.tau), ("--min-prob", args.min_prob)] {
        if let Some(t) = t {
            if !(0.0..=1.0).contains(&t) {
                return Err(CliError::input(anyhow::anyhow!("{name} must be within [0, 1], got {t}")));
            }
        }
    }
    if args.min_keep == 0 {
        return Err(CliError::input(anyhow::anyhow!("--min-keep must be at least 1")));
    }
    Ok((method, k, SelectionRule { selection, min_prob: args.min_prob, min_keep: args.min_keep }))
}

pub async fn run(args: SampleArgs) -> CliResult {
    let (method, k, rule) = validate(&args)?;
    let model = super::open_model(&args.model, &args.backend).await?;
    let request = GenerateRequest {
        messages: vec![Message::system(args.system.clone()), Message::user(args.prompt.clone())],
        method,
        k,
        tau: args.tau,
        temperature: args.temperature,
        top_p: None,
        max_tokens: args.max_tokens,
        seed: args.seed,
        use_schema: true,
    };
    let generation =
        Generator::default().generate(model.as_ref(), &request).await.map_err(CliError::failed)?;
    if generation.candidates.is_empty() {
        return Err(CliError::failed(anyhow::anyhow!("the model returned no candidates")));
    }
    let mut rng = vsim::seed::rng(vsim::seed::derive_named(args.seed, "select"));
    let choice = select(&generation.candidates, &rule, &mut rng);
    if args.json {
        let out = serde_json::json!({
            "model": args.model,
            "method": method,
            "candidates": generation.candidates,
            "choice": choice,
            "chosen": generation.candidates[choice.index].text,
            "reasoning": generation.reasoning,
            "usage": generation.usage,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print_candidates(&generation.candidates, Some(&choice));
        let total: u64 = generation.usage.total();
        println!(
            "\nchosen #{} by {:?} (draw {}); {} call(s), {total} tokens",
            choice.index + 1,
            choice.rule.selection,
            choice.draw.map_or("-".to_string(), |d| format!("{d:.4}")),
            generation.calls.len(),
        );
        println!("{}", generation.candidates[choice.index].text);
    }
    Ok(0)
}

/// A readable table of candidates.
pub fn print_candidates(candidates: &[Candidate], choice: Option<&Choice>) {
    println!("{:>3}  {:>6}  {:>6}  text", "#", "prob", "raw");
    for (i, c) in candidates.iter().enumerate() {
        let mark = if choice.map(|ch| ch.index) == Some(i) { "*" } else { " " };
        let raw = c.raw_probability.map_or("-".to_string(), |r| format!("{r:.3}"));
        println!("{mark}{:>2}  {:>6.3}  {:>6}  {}", i + 1, c.probability, raw, c.text.replace('\n', " "));
        if !c.repairs.is_empty() {
            let repairs: Vec<String> =
                c.repairs.iter().map(|r| serde_json::to_string(r).unwrap_or_default()).collect();
            println!("              repairs: {}", repairs.join(", "));
        }
    }
}
