//! `vsim eval`: metrics of a run directory against human data, and its report.

use std::path::PathBuf;

use super::{CliError, CliResult};
use vsim::eval::{EvalOptions, RunData, Split};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  vsim eval runs/demo
  vsim eval runs/pfg --human pfg:data/persuasionforgood
  vsim eval runs/pfg --human pfg:data/persuasionforgood --seed 42 --bootstrap 2000
  vsim eval runs/pfg --human pfg:data/persuasionforgood --embedder openai:text-embedding-3-small

Writes RUN_DIR/metrics.json, RUN_DIR/report.md and RUN_DIR/report.html (self-contained: open it
in a browser). With --human pfg:DIR, simulated `persuadee.donation` values are compared with the
real donations of the same people: a run of `--population pfg:DIR` simulated the participants of
one split (test by default: 200 persuadees with a recorded donation between $0 and $2, chosen by
a fixed seed), and is compared with exactly those participants, each paired with their own
simulated self. Runs of hand-written personas are compared with every persuadee of --split
(default test). Every figure states its counts: simulated, human, paired, missing, invalid,
failed. Missing outcomes are counted, never taken as 0.")]
pub struct EvalArgs {
    /// The run directory (holds transcripts.jsonl, and config.json from `vsim run`).
    pub run_dir: PathBuf,
    /// Human reference data: `pfg:DIR` (PersuasionForGood's full_info.csv and full_dialog.csv,
    /// or ConvoKit's corpus). Default for a run of `--population pfg:DIR`: that DIR.
    #[arg(long, value_name = "SPEC")]
    pub human: Option<String>,
    /// Which persuadees form the reference: test (200, fixed split), train or all. Default:
    /// the split the run simulated (test for runs of hand-written personas). Another split
    /// than the run's is refused unless --other-split.
    #[arg(long, value_name = "SPLIT", value_parser = ["all", "test", "train"])]
    pub split: Option<String>,
    /// Which measurement of the outcomes: answer (the answer to the outcome question, through
    /// the role's method; the default) or stated (what the role said in the dialogue, for
    /// outcomes declared with `stated = true`; written to RUN_DIR/stated/).
    #[arg(long, default_value = "answer", value_parser = ["answer", "stated"])]
    pub measure: String,
    /// Compare with --split even though the run simulated another split's participants.
    #[arg(long)]
    pub other_split: bool,
    /// Go on when an input the run pinned (its human data, survey or questionnaire) has
    /// changed since the run; without it such a run is refused, naming the input.
    #[arg(long)]
    pub allow_changed_inputs: bool,
    /// Seed of the bootstrap intervals (never of the split: that is fixed by the data).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Bootstrap resamples per interval (0: no intervals).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub bootstrap: usize,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95, value_name = "LEVEL")]
    pub confidence: f64,
    /// Bins of the histogram L1, `LO,HI,N` (default: 10 bins over the outcome's declared
    /// range). The 21-edge [0, 2] density L1 is always reported as well.
    #[arg(long, value_name = "LO,HI,N")]
    pub bins: Option<String>,
    /// Embedding model for semantic diversity: `openai:MODEL[@BASE_URL]` (an
    /// OpenAI-compatible /v1/embeddings endpoint; key from OPENAI_API_KEY), or an offline
    /// model: `minilm` (all-MiniLM-L6-v2 in-process, the default; fetched once), `dir:PATH`
    /// (a sentence-transformers folder); `none` skips semantic diversity.
    #[arg(long, value_name = "SPEC", default_value = "minilm")]
    pub embedder: String,
    /// Dialogues embedded at most per role and side for semantic diversity (a seeded sample
    /// of those with two or more utterances of the role beyond that), to bound the cost.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub embed_max: usize,
    /// Dialogues shown in the report's dialogue browser.
    #[arg(long, default_value_t = vsim::report::DEFAULT_MAX_DIALOGUES, value_name = "N")]
    pub max_dialogues: usize,
}

/// Refuses an input that changed since the run, naming it, unless the user asked to go on
/// (then it is named as a warning).
pub fn refuse_changed(change: Option<vsim::rundir::InputChange>, allow: bool) -> Result<(), CliError> {
    match change {
        Some(c) if !allow => Err(CliError::input(vsim::eval::EvalError::ChangedInput(c))),
        Some(c) => {
            errln!("warning: {c}; going on as --allow-changed-inputs asks");
            Ok(())
        }
        None => Ok(()),
    }
}

// Long on purpose: the command's steps in the order the user sees them (read the run, resolve the human data, open the embedder, evaluate, write and print every outcome line).
pub async fn run(a: EvalArgs) -> CliResult {
    let bins = a.bins.as_deref().map(super::stats::parse_bins).transpose().map_err(CliError::input)?;
    let split: Option<Split> = a.split.as_deref().map(str::parse).transpose().map_err(CliError::input)?;
    let measure = if a.measure == "stated" {
        vsim::dialogue::events::Measure::Stated
    } else {
        vsim::dialogue::events::Measure::Answer
    };
    let run = RunData::load_measure(&a.run_dir, measure).map_err(CliError::input)?;
    let choice =
        vsim::eval::human_for_run(&run, a.human.as_deref(), split, a.other_split, a.allow_changed_inputs)
            .map_err(CliError::input)?;
    if let Some(c) = &choice.changed {
        errln!("warning: {c}; going on as --allow-changed-inputs asks");
    }
    if let (true, Some(spec)) = (choice.from_run, &choice.spec) {
        errln!("human data: {spec} (the run's population; pass --human to use another copy)");
    }
    let human = choice.reference;
    let (embedder, no_embedder_reason) = match a.embedder.trim() {
        "none" | "" => (None, None),
        spec => match super::open_embedder_for_eval(spec).await? {
            Ok(e) => (Some(e), None),
            Err(reason) => (None, Some(reason)),
        },
    };
    let opts = EvalOptions {
        seed: a.seed,
        bootstrap: a.bootstrap,
        confidence: a.confidence,
        bins,
        embed_max: a.embed_max,
        no_embedder_reason,
    };
    let evaluation = vsim::eval::evaluate(&run, human.as_ref(), &opts, embedder.as_deref()).await.map_err(
        |e| match e {
            vsim::eval::EvalError::InvalidOption { .. } | vsim::eval::EvalError::NoOutcomes { .. } => {
                CliError::input(e)
            }
            other => CliError::failed(other),
        },
    )?;
    // The stated measure is written beside the answers' evaluation, never over it.
    let out_dir = match measure {
        vsim::dialogue::events::Measure::Answer => a.run_dir.clone(),
        vsim::dialogue::events::Measure::Stated => {
            let d = a.run_dir.join("stated");
            vsim::fsutil::refuse_link(&d).and_then(|()| std::fs::create_dir_all(&d)).map_err(|e| {
                CliError::failed(anyhow::Error::new(e).context(format!("cannot create {}", d.display())))
            })?;
            d
        }
    };
    let metrics = vsim::eval::write_metrics(&out_dir, &evaluation).map_err(CliError::failed)?;
    let written = vsim::report::write_run_report(&out_dir, &evaluation, Some(&run), a.max_dialogues)
        .map_err(CliError::failed)?;
    let c = &evaluation.counts;
    if c.torn_last_line {
        errln!(
            "warning: the last line of {} is not a whole event (a write cut short); it was left out",
            a.run_dir.join("transcripts.jsonl").display()
        );
    }
    if !c.completed_more_than_once.is_empty() {
        errln!(
            "warning: {} dialogues are completed more than once in the transcript (the latest attempt of each is \
             evaluated): {}",
            c.completed_more_than_once.len(),
            c.completed_more_than_once.join(", ")
        );
    }
    outln!("{} dialogues: {} completed, {} failed", c.dialogues, c.completed, c.failed);
    for o in &evaluation.numeric {
        // Named as in outcomes.csv: the stated measure has its own column.
        let label = match measure {
            vsim::dialogue::events::Measure::Stated if !o.key.ends_with(".stated") => {
                format!("{}.stated", o.key)
            }
            _ => o.key.clone(),
        };
        let mut line = format!(
            "{label}: n = {}, missing = {}, invalid = {}",
            o.counts.valid, o.counts.missing, o.counts.invalid
        );
        if let Some(cmp) = &o.comparison {
            let f = |m: &vsim::eval::Metric| m.estimate().map_or_else(|| "n/a".into(), |v| format!("{v:.3}"));
            let n = &cmp.counts;
            line.push_str(&format!(
                "; vs human (simulated {}, human {}, paired {}, failed {}): KS D = {} (p = {}), W1 = {}, \
                 L1 paired = {}, L1 density = {}",
                n.simulated,
                n.human,
                n.paired,
                n.failed,
                f(&cmp.ks.statistic),
                cmp.ks.pvalue.map_or_else(
                    || "n/a".into(),
                    |p| if p < 1e-4 { format!("{p:.2e}") } else { format!("{p:.4}") }
                ),
                f(&cmp.wasserstein1),
                f(&cmp.l1_paired),
                f(&cmp.l1_density_pfg)
            ));
        }
        outln!("{line}");
        if let Some(c) = &o.calibration {
            let f = |m: &vsim::eval::Metric| m.estimate().map_or_else(|| "n/a".into(), |v| format!("{v:.2}"));
            let cov: Vec<String> =
                c.coverage.iter().map(|v| format!("{:.0}%: {}", v.level * 100.0, f(&v.share))).collect();
            outln!(
                "{label} per person ({} people, {}–{} replicates each): PIT uniformity KS D = {:.3} (p = {:.3}); \
                 coverage of central intervals {}; share of variance between people {} (human between-person \
                 variance {:.3}, simulated {:.3})",
                c.people,
                c.replicates_min,
                c.replicates_max,
                c.uniformity.statistic,
                c.uniformity.pvalue,
                cov.join(", "),
                c.variance.share_between.map_or_else(|| "n/a".into(), |s| format!("{s:.2}")),
                c.variance.human_between,
                c.variance.between
            );
        }
    }
    if let Some(h) = &evaluation.human {
        outln!("human reference: {} ({} split): {}", h.source, h.split, h.people);
        outln!("filter: {}", h.filter_summary);
    }
    outln!("wrote {}", metrics.display());
    outln!("wrote {}", written.markdown.display());
    outln!("wrote {}", written.html.display());
    // An embedder that was asked for and failed while embedding is a failure; one that
    // could not be had offline was already reported, and the rest of the evaluation stands.
    if a.embedder.trim() != "none" && !evaluation.semantic.computed && opts.no_embedder_reason.is_none() {
        let why = evaluation.semantic.reason.as_deref().unwrap_or("unknown reason");
        errln!("warning: semantic diversity {why}");
        return Ok(1);
    }
    Ok(0)
}
