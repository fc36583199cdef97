//! `vsim stats`: statistics on files of numbers, of category labels, or of utterances.

use std::path::{Path, PathBuf};

use super::{CliError, CliResult};
use vsim::stats::distances::{Compute, DistanceDef, TwoInputs, TwoSampleTest, DISTANCES};
use vsim::stats::ks::KsMode;
use vsim::stats::text::{distinct_n, Pooling};
use vsim::stats::{category_counts, Bins};

#[derive(clap::Subcommand, Debug)]
pub enum StatsCommand {
    /// One subcommand per distance command of the library's registry (ks, l1, ...).
    #[command(flatten)]
    Distance(DistanceCommand),
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

pub fn run(cmd: StatsCommand) -> CliResult {
    match cmd {
        StatsCommand::Distance(c) => c.run(),
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

/// `vsim stats COMMAND FILE_A FILE_B` for a distance command of the registry
/// ([`vsim::stats::distances`]): its arguments as given.
#[derive(Debug, Clone)]
pub struct DistanceCommand {
    command: &'static str,
    file_a: PathBuf,
    file_b: PathBuf,
    method: Option<String>,
    bins: Option<String>,
    paired: bool,
    json: bool,
}

/// The distance commands, in registry order.
fn commands() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for d in DISTANCES {
        if !names.contains(&d.command) {
            names.push(d.command);
        }
    }
    names
}

/// The distances a command computes: its default first, then its variants.
fn variants(command: &str) -> Vec<&'static DistanceDef> {
    let mut defs: Vec<&'static DistanceDef> = DISTANCES.iter().filter(|d| d.command == command).collect();
    defs.sort_by_key(|d| matches!(d.compute, Compute::Paired(_) | Compute::Binned(_)));
    defs
}

fn paired_variant(defs: &[&'static DistanceDef]) -> Option<&'static DistanceDef> {
    defs.iter().copied().find(|d| matches!(d.compute, Compute::Paired(_)))
}

fn binned_variant(defs: &[&'static DistanceDef]) -> Option<&'static DistanceDef> {
    defs.iter().copied().find(|d| matches!(d.compute, Compute::Binned(_)))
}

/// `text` wrapped at 90 columns, never inside a list of numbers such as `(0, 2, 21)`.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let (mut width, mut previous) = (0, "");
    for word in text.split_whitespace() {
        let in_list = previous.ends_with(',') && word.starts_with(|c: char| c.is_ascii_digit());
        if width > 0 && !in_list && width + 1 + word.chars().count() > 90 {
            out.push('\n');
            width = 0;
        } else if width > 0 {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.chars().count();
        previous = word;
    }
    out
}

/// The subcommand `name` with its arguments and help, from its distances.
fn subcommand(name: &'static str) -> clap::Command {
    use clap::{Arg, ArgAction};
    let defs = variants(name);
    let main = defs[0];
    let labels = matches!(main.compute, Compute::Distributions(_));
    let files = if labels { "simulated_votes.txt human_votes.txt" } else { "simulated.txt human.txt" };
    let mut examples = vec![format!("vsim stats {name} {files} --json")];
    let mut json_keys = vec!["statistic"];
    match main.compute {
        Compute::Test(_) => json_keys.extend(["pvalue", "method"]),
        Compute::Distributions(_) => json_keys.extend(["labels", "counts_a", "counts_b"]),
        _ if defs.len() > 1 => json_keys.extend(["variant", "bins"]),
        _ => {}
    }
    json_keys.extend(["n1", "n2"]);
    // A command with variants lists them; one without says what it is.
    let about = if defs.len() == 1 {
        main.about.trim_end_matches('.').to_string()
    } else {
        let variants: Vec<String> = defs
            .iter()
            .map(|d| match d.compute {
                Compute::Paired(_) => format!("{} (--paired)", d.variant()),
                Compute::Binned(_) => format!("{} (--bins)", d.variant()),
                _ => format!("{} (default)", d.variant()),
            })
            .collect();
        format!("{} distance of two samples of numbers: {}", main.symbol, variants.join(", "))
    };
    let mut cmd = clap::Command::new(name)
        .about(about)
        .arg(
            Arg::new("file_a").value_name("FILE_A").required(true).value_parser(clap::value_parser!(PathBuf)),
        )
        .arg(
            Arg::new("file_b").value_name("FILE_B").required(true).value_parser(clap::value_parser!(PathBuf)),
        );
    if matches!(main.compute, Compute::Test(_)) {
        cmd = cmd.arg(
            Arg::new("method")
                .long("method")
                .default_value("auto")
                .value_parser(["auto", "exact", "asymptotic"])
                .help("auto (exact for samples up to 10,000, else asymptotic), exact or asymptotic."),
        );
    }
    if let Some(b) = binned_variant(&defs) {
        examples.push(format!("vsim stats {name} {files} --bins 0,2,10 --json"));
        cmd = cmd.arg(
            Arg::new("bins")
                .long("bins")
                .value_name("LO,HI,N")
                .conflicts_with("paired")
                .help(format!("Histogram bins `LO,HI,N` instead of the default: {}", b.about)),
        );
    }
    if let Some(p) = paired_variant(&defs) {
        examples.push(format!("vsim stats {name} {files} --paired"));
        cmd = cmd.arg(Arg::new("paired").long("paired").action(ArgAction::SetTrue).help(p.about));
    }
    let reads = if labels {
        "Each file holds one category label per line (trimmed; blank lines and lines starting with # \
         are skipped). The distributions are taken over the union of the labels of both files."
    } else {
        "Each file holds one number per line; blank lines and lines starting with # are skipped."
    };
    let details: Vec<String> = defs
        .iter()
        .map(|d| {
            let lead = match d.compute {
                _ if defs.len() == 1 => "",
                Compute::Paired(_) => "--paired: ",
                Compute::Binned(_) => "--bins LO,HI,N: ",
                _ => "Default: ",
            };
            let mut help = d.help.to_string();
            if !lead.is_empty() {
                if let Some(first) = help.get(..1) {
                    help.replace_range(..1, &first.to_lowercase());
                }
            }
            wrap(&format!("{lead}{help}"))
        })
        .collect();
    let example = if examples.len() == 1 { "Example" } else { "Examples" };
    let examples: Vec<String> = examples.iter().map(|e| format!("  {e}")).collect();
    cmd.arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help(format!(
        "Print {{{}}}.",
        json_keys.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")
    )))
    .after_help(format!(
        "{example}:\n{}\n\n{}\n\n{}",
        examples.join("\n"),
        details.join("\n\n"),
        wrap(reads)
    ))
}

impl clap::FromArgMatches for DistanceCommand {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let Some((name, m)) = matches.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        let Some(command) = commands().into_iter().find(|c| *c == name) else {
            return Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand));
        };
        let path = |id: &str| m.get_one::<PathBuf>(id).cloned().unwrap_or_default();
        let flag = |id: &str| m.try_get_one::<bool>(id).ok().flatten().copied().unwrap_or(false);
        let text = |id: &str| m.try_get_one::<String>(id).ok().flatten().cloned();
        Ok(DistanceCommand {
            command,
            file_a: path("file_a"),
            file_b: path("file_b"),
            method: text("method"),
            bins: text("bins"),
            paired: flag("paired"),
            json: flag("json"),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Subcommand for DistanceCommand {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        commands().into_iter().fold(cmd, |cmd, name| cmd.subcommand(subcommand(name)))
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        commands().contains(&name)
    }
}

impl DistanceCommand {
    /// Computes the distance chosen by the arguments and prints it.
    fn run(self) -> CliResult {
        let defs = variants(self.command);
        let def = match (self.paired, &self.bins) {
            (true, _) => paired_variant(&defs).unwrap_or(defs[0]),
            (false, Some(_)) => binned_variant(&defs).unwrap_or(defs[0]),
            (false, None) => defs[0],
        };
        match def.compute {
            Compute::Test(test) => self.test(def, test),
            Compute::Distributions(f) => self.categorical(def, f),
            Compute::Samples(_) | Compute::Paired(_) | Compute::Binned(_) => {
                self.numeric(def, defs.len() > 1)
            }
        }
    }

    fn test(&self, def: &DistanceDef, test: TwoSampleTest) -> CliResult {
        let a = vsim::stats::read_numbers(&self.file_a).map_err(CliError::input)?;
        let b = vsim::stats::read_numbers(&self.file_b).map_err(CliError::input)?;
        let mode = match self.method.as_deref() {
            Some("exact") => KsMode::Exact,
            Some("asymptotic") => KsMode::Asymptotic,
            _ => KsMode::Auto,
        };
        let r = test(&a, &b, mode).map_err(CliError::input)?;
        let method = match r.method_used {
            KsMode::Exact => "exact",
            _ => "asymptotic",
        };
        if self.json {
            let out = serde_json::json!({
                "statistic": r.statistic, "pvalue": r.pvalue, "method": method, "n1": r.n1, "n2": r.n2,
            });
            outln!("{out}");
        } else {
            outln!(
                "{} = {:.6}  p = {:.6}  ({method}; n1 = {}, n2 = {})",
                def.symbol,
                r.statistic,
                r.pvalue,
                r.n1,
                r.n2
            );
        }
        Ok(0)
    }

    fn numeric(&self, def: &DistanceDef, has_variants: bool) -> CliResult {
        let a = numbers(&self.file_a)?;
        let b = numbers(&self.file_b)?;
        let bins = match def.compute {
            Compute::Binned(_) => {
                self.bins.as_deref().map(parse_bins).transpose().map_err(CliError::input)?
            }
            _ => None,
        };
        let stat = def.statistic(&a, &b, bins.as_ref()).map_err(CliError::input)?;
        let shown = bins.or(def.fixed_bins);
        if self.json {
            let mut out = serde_json::json!({"statistic": stat, "n1": a.len(), "n2": b.len()});
            if has_variants {
                out["variant"] = serde_json::json!(def.variant());
                out["bins"] =
                    serde_json::json!(shown.map(|b| serde_json::json!({"lo": b.lo, "hi": b.hi, "n": b.n})));
            }
            outln!("{out}");
        } else {
            let how = match (has_variants, shown) {
                (false, _) => String::new(),
                (true, Some(b)) => format!("{}, {} bins on [{}, {}]; ", def.variant(), b.n, b.lo, b.hi),
                (true, None) => format!("{}; ", def.variant()),
            };
            outln!("{} = {stat:.6}  ({how}n1 = {}, n2 = {})", def.symbol, a.len(), b.len());
        }
        Ok(0)
    }

    fn categorical(&self, def: &DistanceDef, f: TwoInputs) -> CliResult {
        let a = read_labels(&self.file_a)?;
        let b = read_labels(&self.file_b)?;
        let c = category_counts(&a, &b);
        let stat = f(&c.a, &c.b).map_err(CliError::input)?;
        if self.json {
            let out = serde_json::json!({
                "statistic": stat, "labels": c.labels, "counts_a": c.a, "counts_b": c.b, "n1": a.len(), "n2": b.len(),
            });
            outln!("{out}");
        } else {
            outln!(
                "{} = {stat:.6}  ({} labels; n1 = {}, n2 = {})",
                def.symbol,
                c.labels.len(),
                a.len(),
                b.len()
            );
        }
        Ok(0)
    }
}
