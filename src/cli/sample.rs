//! `vsim sample`: N responses to one prompt under Table 1's call budget and the chosen
//! reply; with `--methods`, the methods' diversity side by side.

use super::{BackendArgs, CliError, CliResult};
use vsim::vs::sample_set::SampleRequest;
use vsim::vs::{Candidate, Choice, KSpec, Method, MethodSample, SampleSet, SelectionRule};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  vsim sample \"Tell me a joke about coffee\" --method vs-standard --k 5 --seed 7\n  vsim sample \"Name a US state\" --k model-decided --selection uniform --json\n  vsim sample \"Write a haiku\" --model openai:gpt-4o-mini --tau 0.1\n  vsim sample \"Tell me a joke\" --method vs-standard --n 30 --k 5        # 6 calls\n  vsim sample \"Tell me a joke\" --methods direct,sequence,vs-standard --n 30 --json > jokes.json\n  vsim stats text jokes.json\n\nCalls for N responses (Table 1): N for direct, cot and multi-turn (multi-turn in one\nconversation, asking for another each time); ceil(N/k) for sequence, vs-standard, vs-cot and\nvs-multi (vs-multi in one conversation, asking for k more). Every call is kept in --json."
)]
pub struct SampleArgs {
    /// The user prompt.
    pub prompt: String,
    /// direct, cot, sequence, multi-turn, vs-standard, vs-cot or vs-multi.
    #[arg(long, default_value = "vs-standard")]
    pub method: String,
    /// Several methods, comma-separated: N responses each, and a diversity table
    /// (Distinct-N and semantic diversity) side by side instead of a choice.
    #[arg(long, value_name = "M1,M2,...", value_delimiter = ',', conflicts_with = "method")]
    pub methods: Vec<String>,
    /// Responses to draw (N), under Table 1's call budget. Default: as a dialogue turn
    /// gathers them (1 for direct and cot, k for sequence, vs-standard and vs-cot, 2 for
    /// multi-turn, 2k for vs-multi); 30 with --methods.
    #[arg(long, value_name = "N")]
    pub n: Option<usize>,
    /// Embedding model for the semantic diversity of --methods: minilm (offline, the
    /// default), dir:PATH, or none.
    #[arg(long, default_value = "minilm", value_name = "SPEC")]
    pub embedder: String,
    /// Number of candidates per call of a list method (sequence, vs-standard, vs-cot,
    /// vs-multi): a positive integer, or "model-decided" (default 5). Refused for the
    /// one-reply methods, which take --n instead.
    #[arg(long)]
    pub k: Option<String>,
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
    /// weighted, uniform or argmax. Default: weighted for the methods with verbalized
    /// probabilities (vs-standard, vs-cot, vs-multi), uniform for the others, which give none
    /// to weigh.
    #[arg(long)]
    pub selection: Option<String>,
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

/// Validated sampling options shared with other commands. With one `--method`, the
/// combinations a scenario refuses are refused here too: k for a one-reply method, and τ,
/// `--min-prob` or a selection other than uniform for a method without probabilities.
pub fn validate(args: &SampleArgs) -> Result<(Method, KSpec, SelectionRule), CliError> {
    let bad = |flag: &str, reason: String| CliError::input(anyhow::anyhow!("--{flag}: {reason}"));
    let method: Option<Method> = args.method.parse().ok();
    let verbalized = method.is_none_or(Method::is_verbalized);
    let default_selection = if verbalized { "weighted" } else { "uniform" };
    let (method, k, rule) = vsim::vs::sample_set::SampleSettings {
        method: &args.method,
        k: args.k.as_deref().unwrap_or("5"),
        k_max: args.k_max,
        selection: args.selection.as_deref().unwrap_or(default_selection),
        min_prob: args.min_prob,
        min_keep: args.min_keep,
        tau: args.tau,
        n: args.n,
    }
    .check()
    .map_err(|e| bad(&e.setting.replace('_', "-"), e.reason))?;
    if !args.methods.is_empty() {
        // Several methods: k and τ apply to those that take them.
        return Ok((method, k, rule));
    }
    if let (false, Some(given)) = (method.asks_for_list(), &args.k) {
        return Err(bad(
            "k",
            format!("`{method}` asks for one reply per call (k = {given} does not apply); use --n for several replies"),
        ));
    }
    if !method.is_verbalized() {
        if args.tau.is_some() {
            return Err(bad(
                "tau",
                format!("τ is stated in the prompts of vs-standard, vs-cot and vs-multi; `{method}` asks for no probabilities"),
            ));
        }
        if args.min_prob.is_some() {
            return Err(bad("min-prob", format!("`{method}` gives no probabilities to filter by")));
        }
        if rule.selection != vsim::vs::Selection::Uniform {
            return Err(bad(
                "selection",
                format!(
                    "`{method}` gives no probabilities, so {} selection has nothing to weigh: use uniform",
                    rule.selection
                ),
            ));
        }
    }
    Ok((method, k, rule))
}

/// The request for `method` with the shared settings of `args`.
fn request(args: &SampleArgs, method: Method, k: KSpec) -> SampleRequest {
    SampleRequest {
        prompt: args.prompt.clone(),
        system: args.system.clone(),
        method,
        k,
        tau: args.tau,
        temperature: args.temperature,
        max_tokens: args.max_tokens,
        seed: args.seed,
    }
}

async fn draw(
    model: &dyn vsim::backend::ChatModel,
    req: &SampleRequest,
    n: usize,
) -> Result<MethodSample, CliError> {
    req.draw(model, n).await.map_err(CliError::failed)
}

pub async fn run(args: SampleArgs) -> CliResult {
    let (method, k, rule) = validate(&args)?;
    let methods: Vec<Method> = args
        .methods
        .iter()
        .map(|m| m.parse::<Method>())
        .collect::<Result<_, _>>()
        .map_err(CliError::input)?;
    let model = super::open_model(&args.model, &args.backend).await?;
    let mut set = SampleSet {
        prompt: args.prompt.clone(),
        system: args.system.clone(),
        model: args.model.clone(),
        n: 0,
        seed: args.seed,
        runs: Vec::new(),
    };
    if !methods.is_empty() {
        let n = args.n.unwrap_or(30);
        set.n = n;
        let mut rows = Vec::new();
        for m in methods {
            let sample = draw(model.as_ref(), &request(&args, m, k), n).await?;
            let texts: Vec<String> = sample.responses().into_iter().map(str::to_string).collect();
            if !args.json {
                errln!("{m}: {} responses from {} calls", texts.len(), sample.calls.len());
            }
            // The JSON is measured later by `vsim stats text`; the table is measured now.
            let embedder = if args.json { "none" } else { args.embedder.as_str() };
            rows.push(super::stats::text_row(Some(m.to_string()), &texts, embedder)?);
            set.runs.push(sample);
        }
        if args.json {
            outln!("{}", set.to_json());
        } else {
            outln!("N = {n} responses per method to one prompt; Distinct-N pooled over each method's N responses");
            super::stats::print_text_rows(&rows, false);
        }
        return Ok(0);
    }
    let req = request(&args, method, k);
    let n = args.n.unwrap_or_else(|| req.default_n());
    set.n = n;
    let mut sample = draw(model.as_ref(), &req, n).await?;
    let Some(choice) = sample.choose(&rule, args.seed) else {
        return Err(CliError::failed(anyhow::anyhow!("the model returned no candidates")));
    };
    if args.json {
        set.runs.push(sample);
        outln!("{}", set.to_json());
    } else {
        print_candidates(&sample.candidates, Some(&choice));
        outln!(
            "\nchosen #{} by {} (draw {}); {} call(s), {} tokens",
            choice.index,
            choice.rule.selection,
            choice.draw.map_or("-".to_string(), |d| format!("{d:.4}")),
            sample.calls.len(),
            sample.usage.total(),
        );
        outln!("{}", sample.candidates[choice.index].text);
    }
    Ok(0)
}

/// A readable table of candidates.
pub fn print_candidates(candidates: &[Candidate], choice: Option<&Choice>) {
    // Numbered from 0, as in transcripts, JSON and `vsim branch --candidate`.
    outln!("{:>3}  {:>6}  {:>6}  text", "#", "prob", "raw");
    for (i, c) in candidates.iter().enumerate() {
        let mark = if choice.map(|ch| ch.index) == Some(i) { "*" } else { " " };
        let raw = c.raw_probability.map_or("-".to_string(), |r| format!("{r:.3}"));
        outln!("{mark}{:>2}  {:>6.3}  {:>6}  {}", i, c.probability, raw, c.text.replace('\n', " "));
        if !c.repairs.is_empty() {
            let repairs: Vec<String> =
                c.repairs.iter().map(|r| serde_json::to_string(r).unwrap_or_default()).collect();
            outln!("              repairs: {}", repairs.join(", "));
        }
    }
}
