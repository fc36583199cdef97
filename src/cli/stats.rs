//! `vsim stats`: statistics on files of numbers, of category labels, or of utterances.

use std::path::{Path, PathBuf};

use super::{CliError, CliResult};
use vsim::stats::ks::{ks_2samp, KsMode};
use vsim::stats::text::{distinct_n, Pooling};
use vsim::stats::{
    category_counts, jensen_shannon, l1_density_pfg, l1_histogram, l1_paired, total_variation, wasserstein1,
    Bins,
};

#[derive(clap::Subcommand, Debug)]
pub enum StatsCommand {
    /// Two-sample Kolmogorov–Smirnov test (two-sided), as scipy.stats.ks_2samp.
    #[command(
        after_help = "Example:\n  vsim stats ks simulated.txt human.txt --json\n\nEach file holds one number per line; blank lines and lines starting with # are skipped."
    )]
    Ks {
        file_a: PathBuf,
        file_b: PathBuf,
        /// auto (exact for samples up to 10,000, else asymptotic), exact or asymptotic.
        #[arg(long, default_value = "auto", value_parser = ["auto", "exact", "asymptotic"])]
        method: String,
        /// Print {"statistic", "pvalue", "method", "n1", "n2"}.
        #[arg(long)]
        json: bool,
    },
    /// L1 distance between two samples of numbers (binned by default, or paired).
    #[command(after_help = "Examples:
  vsim stats l1 simulated.txt human.txt              # 21-edge density L1 on [0, 2]
  vsim stats l1 simulated.txt human.txt --bins 0,2,10 --json
  vsim stats l1 simulated.txt human.txt --paired     # mean |a_i - b_i|, line by line

Default: the PersuasionForGood donation variant, histograms with edges numpy.linspace(0, 2, 21)
(20 bins of $0.10) as densities, L1 = sum |p - q| * 0.1; in [0, 2]. Values outside [0, 2]
are ignored. --bins LO,HI,N: L1 between the normalised histograms over N equal bins of
[LO, HI]. --paired: the files are matched line by line (equal lengths). Each file holds one
number per line; blank lines and # comments are skipped.")]
    L1 {
        file_a: PathBuf,
        file_b: PathBuf,
        /// Histogram bins `LO,HI,N` instead of the 21-edge [0, 2] density variant.
        #[arg(long, value_name = "LO,HI,N", conflicts_with = "paired")]
        bins: Option<String>,
        /// Mean absolute difference of matched lines.
        #[arg(long)]
        paired: bool,
        /// Print {"statistic", "variant", "bins", "n1", "n2"}.
        #[arg(long)]
        json: bool,
    },
    /// First Wasserstein (earth mover's) distance between two samples of numbers.
    #[command(after_help = "Example:
  vsim stats wasserstein simulated.txt human.txt --json

As scipy.stats.wasserstein_distance: the area between the two empirical CDFs, in the units
of the values. Each file holds one number per line; blank lines and # comments are skipped.")]
    Wasserstein {
        file_a: PathBuf,
        file_b: PathBuf,
        /// Print {"statistic", "n1", "n2"}.
        #[arg(long)]
        json: bool,
    },
    /// Total variation distance between the label distributions of two files.
    #[command(after_help = "Example:
  vsim stats tv simulated_votes.txt human_votes.txt --json

Each file holds one category label per line (trimmed; blank lines and lines starting with #
are skipped). The distributions are taken over the union of the labels of both files;
TV = 1/2 sum |p - q|, in [0, 1].")]
    Tv {
        file_a: PathBuf,
        file_b: PathBuf,
        /// Print {"statistic", "labels", "counts_a", "counts_b", "n1", "n2"}.
        #[arg(long)]
        json: bool,
    },
    /// Jensen–Shannon divergence (bits) between the label distributions of two files.
    #[command(after_help = "Example:
  vsim stats js simulated_votes.txt human_votes.txt --json

Each file holds one category label per line (trimmed; blank lines and lines starting with #
are skipped). The distributions are taken over the union of the labels of both files. The
divergence uses base-2 logarithms and lies in [0, 1]; its square root is the Jensen–Shannon
distance that scipy.spatial.distance.jensenshannon(p, q, base=2) returns.")]
    Js {
        file_a: PathBuf,
        file_b: PathBuf,
        /// Print {"statistic", "labels", "counts_a", "counts_b", "n1", "n2"}.
        #[arg(long)]
        json: bool,
    },
    /// Distinct-1/2/3, the Flesch–Kincaid grade and semantic diversity of utterances.
    #[command(after_help = "Examples:
  vsim stats text utterances.txt --json
  vsim sample \"Tell me a joke\" --methods direct,vs-standard --n 30 --json > jokes.json
  vsim stats text jokes.json

FILE holds one utterance per line (blank lines are skipped), or is a `vsim sample --json`
file: then each method's responses are measured separately, one row (or JSON object) per
method. Distinct-N is pooled: distinct n-grams over all utterances divided by all n-grams
(n-grams never span two lines). The Flesch–Kincaid grade is computed over all utterances
together, each line ending a sentence. Semantic diversity is 1 − the mean pairwise cosine
similarity of their embeddings. JSON keys: distinct_1, distinct_2, distinct_3,
flesch_kincaid_grade (null when undefined), semantic_diversity, utterances (and method).")]
    Text {
        file: PathBuf,
        /// Print {"distinct_1", "distinct_2", "distinct_3", "flesch_kincaid_grade",
        /// "semantic_diversity", "utterances"}.
        #[arg(long)]
        json: bool,
        /// Embedding model for semantic diversity: `minilm` (offline, the default), `dir:PATH`,
        /// or `none` to skip it.
        #[arg(long, default_value = "minilm", value_name = "SPEC")]
        embedder: String,
    },
}

/// Parses `LO,HI,N` into bins (finite `LO < HI`, `N >= 1`).
pub fn parse_bins(s: &str) -> Result<Bins, anyhow::Error> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let bad = |why: &str| anyhow::anyhow!("invalid bins `{s}`: {why}; expected LO,HI,N such as 0,2,20");
    let [lo, hi, n] = parts.as_slice() else { return Err(bad("need three comma-separated values")) };
    let lo: f64 = lo.parse().map_err(|_| bad("LO is not a number"))?;
    let hi: f64 = hi.parse().map_err(|_| bad("HI is not a number"))?;
    let n: usize = n.parse().map_err(|_| bad("N is not a whole number"))?;
    let bins = Bins { lo, hi, n };
    bins.validate().map_err(|e| bad(&e.to_string()))?;
    Ok(bins)
}

fn read_text(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError::input(anyhow::anyhow!("cannot read {}: {e}", path.display())))
}

/// Labels, one per line: trimmed, blank lines and `#` lines skipped; at least one.
fn read_labels(path: &Path) -> Result<Vec<String>, CliError> {
    let labels: Vec<String> = read_text(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if labels.is_empty() {
        return Err(CliError::input(anyhow::anyhow!(
            "{} holds no labels (one per line expected)",
            path.display()
        )));
    }
    Ok(labels)
}

fn numbers(path: &Path) -> Result<Vec<f64>, CliError> {
    let v = vsim::stats::read_numbers(path).map_err(CliError::input)?;
    if v.is_empty() {
        return Err(CliError::input(anyhow::anyhow!(
            "{} holds no numbers (one per line expected)",
            path.display()
        )));
    }
    Ok(v)
}

fn categorical(file_a: &Path, file_b: &Path, json: bool, js: bool) -> CliResult {
    let a = read_labels(file_a)?;
    let b = read_labels(file_b)?;
    let c = category_counts(&a, &b);
    let stat =
        if js { jensen_shannon(&c.a, &c.b) } else { total_variation(&c.a, &c.b) }.map_err(CliError::input)?;
    if json {
        let out = serde_json::json!({
            "statistic": stat, "labels": c.labels, "counts_a": c.a, "counts_b": c.b, "n1": a.len(), "n2": b.len(),
        });
        outln!("{out}");
    } else {
        let name = if js { "JS divergence (bits)" } else { "TV" };
        outln!("{name} = {stat:.6}  ({} labels; n1 = {}, n2 = {})", c.labels.len(), a.len(), b.len());
    }
    Ok(0)
}

pub fn run(cmd: StatsCommand) -> CliResult {
    match cmd {
        StatsCommand::Ks { file_a, file_b, method, json } => {
            let a = vsim::stats::read_numbers(&file_a).map_err(CliError::input)?;
            let b = vsim::stats::read_numbers(&file_b).map_err(CliError::input)?;
            let mode = match method.as_str() {
                "exact" => KsMode::Exact,
                "asymptotic" => KsMode::Asymptotic,
                _ => KsMode::Auto,
            };
            let r = ks_2samp(&a, &b, mode).map_err(CliError::input)?;
            let method = match r.method_used {
                KsMode::Exact => "exact",
                _ => "asymptotic",
            };
            if json {
                let out = serde_json::json!({
                    "statistic": r.statistic, "pvalue": r.pvalue, "method": method, "n1": r.n1, "n2": r.n2,
                });
                outln!("{out}");
            } else {
                outln!(
                    "D = {:.6}  p = {:.6}  ({method}; n1 = {}, n2 = {})",
                    r.statistic,
                    r.pvalue,
                    r.n1,
                    r.n2
                );
            }
            Ok(0)
        }
        StatsCommand::L1 { file_a, file_b, bins, paired, json } => {
            let a = numbers(&file_a)?;
            let b = numbers(&file_b)?;
            let bins = bins.as_deref().map(parse_bins).transpose().map_err(CliError::input)?;
            let (stat, variant) = match (paired, bins) {
                (true, _) => (l1_paired(&a, &b), "paired"),
                (false, Some(bins)) => (l1_histogram(&a, &b, &bins), "histogram"),
                (false, None) => (l1_density_pfg(&a, &b), "density_pfg"),
            };
            let stat = stat.map_err(CliError::input)?;
            let shown = match (paired, bins) {
                (true, _) => None,
                (false, b) => Some(b.unwrap_or(vsim::stats::PFG_BINS)),
            };
            if json {
                let bins = shown.map(|b| serde_json::json!({"lo": b.lo, "hi": b.hi, "n": b.n}));
                let out = serde_json::json!({
                    "statistic": stat, "variant": variant, "bins": bins, "n1": a.len(), "n2": b.len(),
                });
                outln!("{out}");
            } else {
                let how = match shown {
                    Some(b) => format!("{variant}, {} bins on [{}, {}]", b.n, b.lo, b.hi),
                    None => variant.to_string(),
                };
                outln!("L1 = {stat:.6}  ({how}; n1 = {}, n2 = {})", a.len(), b.len());
            }
            Ok(0)
        }
        StatsCommand::Wasserstein { file_a, file_b, json } => {
            let a = numbers(&file_a)?;
            let b = numbers(&file_b)?;
            let stat = wasserstein1(&a, &b).map_err(CliError::input)?;
            if json {
                outln!("{}", serde_json::json!({"statistic": stat, "n1": a.len(), "n2": b.len()}));
            } else {
                outln!("W1 = {stat:.6}  (n1 = {}, n2 = {})", a.len(), b.len());
            }
            Ok(0)
        }
        StatsCommand::Tv { file_a, file_b, json } => categorical(&file_a, &file_b, json, false),
        StatsCommand::Js { file_a, file_b, json } => categorical(&file_a, &file_b, json, true),
        StatsCommand::Text { file, json, embedder } => {
            let text = read_text(&file)?;
            let groups: Vec<(Option<String>, Vec<String>)> = if text.trim_start().starts_with('{') {
                let set = vsim::vs::SampleSet::from_json(&text).map_err(|e| {
                    CliError::input(anyhow::anyhow!(
                        "{}: not a `vsim sample --json` file: {e}",
                        file.display()
                    ))
                })?;
                set.runs
                    .iter()
                    .map(|r| {
                        (Some(r.method.to_string()), r.responses().into_iter().map(str::to_string).collect())
                    })
                    .collect()
            } else {
                vec![(None, text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect())]
            };
            if groups.iter().all(|(_, lines)| lines.is_empty()) {
                return Err(CliError::input(anyhow::anyhow!(
                    "{} holds no utterances (one per line expected)",
                    file.display()
                )));
            }
            let rows = groups
                .iter()
                .map(|(method, lines)| text_row(method.clone(), lines, &embedder))
                .collect::<Result<Vec<_>, _>>()?;
            print_text_rows(&rows, json);
            Ok(0)
        }
    }
}

/// Text measures of one set of utterances (one method's responses, or a file's lines).
pub struct TextRow {
    pub method: Option<String>,
    pub utterances: usize,
    pub distinct: [Option<f64>; 3],
    pub flesch_kincaid_grade: Option<f64>,
    pub semantic_diversity: Option<f64>,
}

/// Measures `lines`; `embedder` is an embedding spec (`minilm`, `dir:PATH`) or `none`.
pub fn text_row(method: Option<String>, lines: &[String], embedder: &str) -> Result<TextRow, CliError> {
    let distinct = [1, 2, 3].map(|n| distinct_n(lines, n, Pooling::Pooled));
    let semantic_diversity = if embedder.trim() == "none" || lines.len() < 2 {
        None
    } else {
        let spec = vsim::embed::EmbedSpec::parse(embedder).map_err(CliError::input)?;
        match vsim::embed::embed_blocking(&spec, lines, &super::model::download_progress()) {
            Ok(vectors) => vsim::embed::semantic_diversity(&vectors),
            // Offline without the default model: everything else is still reported.
            Err(e) if embedder.trim() == "minilm" => {
                errln!(
                    "warning: semantic diversity not computed: the embedding model all-MiniLM-L6-v2 is not \
                     available ({e}); fetch it with `vsim model fetch embed`, or pass --embedder none"
                );
                None
            }
            Err(e) => return Err(CliError::failed(e)),
        }
    };
    Ok(TextRow {
        method,
        utterances: lines.len(),
        distinct,
        flesch_kincaid_grade: vsim::eval::flesch_kincaid_grade_utterances(lines),
        semantic_diversity,
    })
}

/// One JSON object per row (one line each), or a table.
pub fn print_text_rows(rows: &[TextRow], json: bool) {
    if json {
        for r in rows {
            let mut out = serde_json::json!({
                "distinct_1": r.distinct[0], "distinct_2": r.distinct[1], "distinct_3": r.distinct[2],
                "flesch_kincaid_grade": r.flesch_kincaid_grade, "semantic_diversity": r.semantic_diversity,
                "utterances": r.utterances,
            });
            if let Some(m) = &r.method {
                out["method"] = serde_json::json!(m);
            }
            outln!("{out}");
        }
        return;
    }
    let f = |x: Option<f64>| x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"));
    if let [r] = rows {
        if r.method.is_none() {
            outln!("utterances            {}", r.utterances);
            outln!("Distinct-1 (pooled)   {}", f(r.distinct[0]));
            outln!("Distinct-2 (pooled)   {}", f(r.distinct[1]));
            outln!("Distinct-3 (pooled)   {}", f(r.distinct[2]));
            outln!("Flesch–Kincaid grade  {}", f(r.flesch_kincaid_grade));
            outln!("Semantic diversity    {}", f(r.semantic_diversity));
            return;
        }
    }
    outln!(
        "{:<12} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "method",
        "responses",
        "Distinct-1",
        "Distinct-2",
        "Distinct-3",
        "FK grade",
        "semantic"
    );
    for r in rows {
        outln!(
            "{:<12} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9}",
            r.method.as_deref().unwrap_or("-"),
            r.utterances,
            f(r.distinct[0]),
            f(r.distinct[1]),
            f(r.distinct[2]),
            f(r.flesch_kincaid_grade),
            f(r.semantic_diversity)
        );
    }
}
