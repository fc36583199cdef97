//! Evaluation of a run directory against human data (`vsim eval`).
//!
//! - [`run`]: the run directory read back ([`RunData`]);
//! - [`human`]: the human reference ([`HumanReference`], PersuasionForGood for now);
//! - [`metrics`]: what is measured, as written to `metrics.json` ([`Evaluation`]);
//! - [`registry`]: the distances between simulated and human samples, each declared once
//!   (how it is computed, its interval, its key in `metrics.json`, its report rows);
//! - [`calibration`]: per-person calibration from replicates (PIT, coverage, the
//!   between/within-person variance split);
//! - [`embed`]: embeddings for semantic diversity (optional: an OpenAI-compatible endpoint or
//!   an offline model).
//!
//! Per numeric outcome: counts (valid, missing, invalid, failed: a missing outcome is never
//! a zero), summaries, and against human values the distances of the [`registry`] (KS,
//! paired L1, histogram L1, the 21-edge density L1, Wasserstein-1), each with a seeded
//! percentile bootstrap interval. Per categorical outcome: shares with intervals, and the
//! registry's distances to the human shares (TV, JS). Per role:
//! Distinct-1/2/3 and (with an embedder) semantic diversity within each dialogue, averaged
//! over dialogues, with pooled values only on equal-size samples of both sides; the
//! Flesch–Kincaid grade, next to the human levels. Per role and selection rule: whether the
//! choices follow the rule (the selection check); per verbalized role: what the stated
//! probabilities look like (their sum, unstated ones, spread).

pub mod calibration;
mod compute;
pub mod embed;
pub mod human;
pub mod metrics;
pub mod registry;
pub mod run;

use std::path::{Path, PathBuf};

pub use crate::stats::text::flesch_kincaid_grade_utterances;
pub use compute::SELECTION_CHECK_BINS;
pub use embed::{EmbedError, Embedder, OpenAiEmbedder};
pub use human::{human_for_run, HumanChoice, HumanError, HumanReference, Split};
pub use metrics::{Evaluation, Metric};
pub use run::{RunData, RunDialogue};

use crate::vs::AnswerShape;
use compute::Boot;
use metrics::*;

use crate::rundir::transcript::TranscriptError;
use crate::stats::Bins;

/// File name of the metrics inside a run directory.
pub(crate) const METRICS_FILE: &str = "metrics.json";

/// Why a run could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The path is not a run directory (missing, or without a transcript).
    #[error("{} is not a run directory: {reason}", dir.display())]
    NotARunDir {
        /// The directory given.
        dir: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The run's `config.json` could not be read.
    #[error("{}: not valid JSON: {reason}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// The transcript could not be read.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// Nothing to evaluate: no dialogue has an outcome event.
    #[error(
        "{}: no outcomes to evaluate ({dialogues} dialogues, {completed} completed, {failed} failed); \
         {hint}",
        dir.display()
    )]
    NoOutcomes {
        /// The run directory.
        dir: PathBuf,
        /// Dialogues in the transcript.
        dialogues: usize,
        /// Dialogues that completed.
        completed: usize,
        /// Dialogues that failed.
        failed: usize,
        /// The likely cause and what to do about it.
        hint: String,
    },
    /// The human reference could not be resolved or read.
    #[error(transparent)]
    Human(#[from] HumanError),
    /// An input the run pinned (its human data, survey or questionnaire) changed since the
    /// run, and going on anyway was not asked for.
    #[error(
        "{0}; the run's results would no longer be compared with what it read. Restore it, or allow \
         changed inputs to go on"
    )]
    ChangedInput(crate::rundir::InputChange),
    /// An evaluation option is out of range.
    #[error("invalid {name}: {reason}")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A metrics file is missing or is not an evaluation.
    #[error("{}: not a metrics file written by `vsim eval`: {reason}", path.display())]
    BadMetrics {
        /// The file given.
        path: PathBuf,
        /// Why it could not be read as an evaluation.
        reason: String,
    },
}

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// Seed of every bootstrap interval (each metric derives its own from it by name).
    pub seed: u64,
    /// Bootstrap resamples per interval; 0 for no intervals.
    pub bootstrap: usize,
    /// Confidence level of the intervals, in (0, 1).
    pub confidence: f64,
    /// Bins of the histogram L1 (default: 10 over the outcome's declared range, else over
    /// the pooled data range).
    pub bins: Option<Bins>,
    /// Dialogues embedded at most per role and side for semantic diversity (a seeded sample
    /// of those with two or more utterances of the role beyond that), to bound the cost.
    pub embed_max: usize,
    /// Why there is no embedder, when the caller tried one and could not open it (reported
    /// in place of semantic diversity, with the fix).
    pub no_embedder_reason: Option<String>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            bootstrap: 1000,
            confidence: 0.95,
            bins: None,
            embed_max: 200,
            no_embedder_reason: None,
        }
    }
}

/// Evaluates `run`, against `human` when given. Semantic diversity is computed only with an
/// `embedder`; if embedding fails, the evaluation still completes and says why it is missing.
pub async fn evaluate(
    run: &RunData,
    human: Option<&HumanReference>,
    opts: &EvalOptions,
    embedder: Option<&dyn Embedder>,
) -> Result<Evaluation, EvalError> {
    if !(opts.confidence > 0.0 && opts.confidence < 1.0) {
        return Err(EvalError::InvalidOption {
            name: "confidence",
            reason: format!("must lie strictly between 0 and 1, got {}", opts.confidence),
        });
    }
    if let Some(b) = &opts.bins {
        b.validate().map_err(|e| EvalError::InvalidOption { name: "bins", reason: e.to_string() })?;
    }
    let counts = compute::counts(run);
    let has_outcome = run.dialogues.iter().any(|d| !d.outcomes.is_empty());
    if !has_outcome {
        let hint = if run.dialogues.is_empty() {
            "the transcript is empty"
        } else if counts.completed == 0 && run.dialogues.iter().any(|d| d.error.is_some()) {
            "no dialogue completed; see the error events in transcripts.jsonl, and resume the run to finish it"
        } else if counts.completed == 0 {
            "no dialogue completed, and none recorded an error: the run stopped before any ended; resume it to \
             finish it"
        } else if run.measure == crate::dialogue::events::Measure::Stated {
            "no outcome is declared with `stated = true`, so there is no stated measure; evaluate the answers \
             (the default measure)"
        } else {
            "the scenario declares no [[outcomes]]"
        };
        return Err(EvalError::NoOutcomes {
            dir: run.dir.clone(),
            dialogues: counts.dialogues,
            completed: counts.completed,
            failed: counts.failed,
            hint: hint.to_string(),
        });
    }
    let boot = Boot { resamples: opts.bootstrap, confidence: opts.confidence, seed: opts.seed };
    let mut numeric = Vec::new();
    let mut categorical = Vec::new();
    for decl in &run.outcomes {
        match decl.kind {
            AnswerShape::Number { .. } => {
                numeric.push(compute::numeric_outcome(decl, run, human, opts.bins, &boot))
            }
            AnswerShape::Choice { .. } => {
                categorical.push(compute::categorical_outcome(decl, run, human, &boot))
            }
        }
    }
    let roles = compute::roles_in_order(run);
    let linguistic: Vec<RoleText> = roles
        .iter()
        .map(|role| {
            let hum = human.and_then(|h| h.utterances.get(role)).map(Vec::as_slice);
            compute::role_text(&boot, role, &compute::role_texts(run, role), hum)
        })
        .collect();
    let semantic = semantic(run, human, &roles, opts, &boot, embedder).await;
    Ok(Evaluation {
        vsim_version: env!("CARGO_PKG_VERSION").to_string(),
        run_dir: run.dir.display().to_string(),
        measure: run.measure,
        label: run.label(),
        scenario: run.scenario(),
        population: run.population(),
        roles: compute::role_infos(run),
        bootstrap: BootstrapSettings {
            resamples: opts.bootstrap,
            confidence: opts.confidence,
            seed: opts.seed,
        },
        human: human.map(|h| HumanInfo {
            source: h.source.clone(),
            split: h.split.to_string(),
            split_seed: h.split_seed,
            filter: h.filter.clone(),
            filter_summary: h.filter_summary.clone(),
            participants: h.participants,
            dialogues: h.utterances.values().map(Vec::len).max().unwrap_or(0),
            people: h.people.clone(),
            same_people: h.same_people,
        }),
        human_note: human.is_none().then(|| "no human data given".to_string()),
        counts,
        numeric,
        categorical,
        linguistic,
        semantic,
        selection_check: compute::selection_check(run),
        stated_probabilities: compute::stated_probabilities(run, &boot),
    })
}

/// Semantic diversity per role: within each dialogue (the primary figure, as the paper
/// defines it), and pooled across dialogues on equal-size samples of both sides.
async fn semantic(
    run: &RunData,
    human: Option<&HumanReference>,
    roles: &[String],
    opts: &EvalOptions,
    boot: &Boot,
    embedder: Option<&dyn Embedder>,
) -> Semantic {
    let mut out = Semantic {
        computed: false,
        reason: None,
        embedder: None,
        max_dialogues: opts.embed_max,
        roles: Vec::new(),
    };
    let Some(embedder) = embedder else {
        out.reason =
            Some(opts.no_embedder_reason.clone().unwrap_or_else(|| "not computed: no embedder given".into()));
        return out;
    };
    out.embedder = Some(embedder.id());
    let seed = |name: String| crate::seed::derive_named(opts.seed, &name);
    for role in roles {
        let texts = compute::role_texts(run, role);
        let sim = match embed_side(embedder, &texts, opts.embed_max, seed(format!("embed/{role}/simulated")))
            .await
        {
            Ok(s) => s,
            Err(e) => return failed(out, e),
        };
        let hum = match human.and_then(|h| h.utterances.get(role)) {
            Some(d) => {
                match embed_side(embedder, d, opts.embed_max, seed(format!("embed/{role}/human"))).await {
                    Ok(h) => Some(h),
                    Err(e) => return failed(out, e),
                }
            }
            None => None,
        };
        let pooled = hum.as_ref().and_then(|h| {
            let n = sim.vectors.len().min(h.vectors.len());
            let pool = |side: &EmbeddedSide, which: &str| -> Vec<Vec<f32>> {
                compute::sample_indices(
                    side.vectors.len(),
                    n,
                    seed(format!("pooled-semantic/{role}/{which}")),
                )
                .into_iter()
                .flat_map(|i| side.vectors[i].iter().cloned())
                .collect()
            };
            (n > 0).then(|| {
                let (s, h) = (pool(&sim, "simulated"), pool(h, "human"));
                PooledSemantic {
                    dialogues_per_side: n,
                    simulated: crate::embed::semantic_diversity(&s),
                    human: crate::embed::semantic_diversity(&h),
                    utterances_simulated: s.len(),
                    utterances_human: h.len(),
                }
            })
        });
        out.roles.push(RoleSemantic {
            role: role.clone(),
            simulated: sim.summary(boot, &format!("semantic/{role}/simulated")),
            human: hum.map(|h| h.summary(boot, &format!("semantic/{role}/human"))),
            pooled,
        });
    }
    out.computed = true;
    out
}

fn failed(mut out: Semantic, why: String) -> Semantic {
    out.reason = Some(format!("not computed: embedding failed: {why}"));
    out.roles.clear();
    out
}

/// One side's dialogues of a role, embedded.
struct EmbeddedSide {
    /// Dialogues with at least one (non-blank) utterance of the role.
    dialogues: usize,
    /// Of those, dialogues with a single utterance (not embedded).
    too_short: usize,
    /// Per embedded dialogue, its utterances' vectors.
    vectors: Vec<Vec<Vec<f32>>>,
}

impl EmbeddedSide {
    fn summary(&self, boot: &Boot, name: &str) -> SemanticSide {
        let values: Vec<f64> =
            self.vectors.iter().filter_map(|v| crate::embed::semantic_diversity(v)).collect();
        let per_dialogue = if values.is_empty() {
            Metric::na("no dialogue with two or more utterances of the role (and a defined similarity)")
        } else {
            boot.one(name, &values, compute::mean)
        };
        SemanticSide {
            per_dialogue,
            dialogues: self.dialogues,
            too_short: self.too_short,
            embedded: self.vectors.len(),
            used: values.len(),
            utterances: self.vectors.iter().map(Vec::len).sum(),
        }
    }
}

/// Embeds up to `max` dialogues (a seeded sample of those with two or more non-blank
/// utterances) in one request, and splits the vectors back by dialogue.
async fn embed_side(
    embedder: &dyn Embedder,
    dialogues: &[Vec<String>],
    max: usize,
    seed: u64,
) -> Result<EmbeddedSide, String> {
    let usable: Vec<Vec<String>> = dialogues
        .iter()
        .map(|d| d.iter().filter(|t| !t.trim().is_empty()).cloned().collect::<Vec<_>>())
        .filter(|d| !d.is_empty())
        .collect();
    let long: Vec<&Vec<String>> = usable.iter().filter(|d| d.len() >= 2).collect();
    let chosen: Vec<&Vec<String>> =
        compute::sample_indices(long.len(), max, seed).into_iter().map(|i| long[i]).collect();
    let texts: Vec<String> = chosen.iter().flat_map(|d| d.iter().cloned()).collect();
    let mut flat = if texts.is_empty() {
        Vec::new()
    } else {
        embedder.embed(&texts).await.map_err(|e| e.to_string())?
    };
    if flat.len() != texts.len() {
        return Err(format!("{} vectors for {} texts", flat.len(), texts.len()));
    }
    let mut vectors = Vec::with_capacity(chosen.len());
    for d in chosen.iter().rev() {
        vectors.push(flat.split_off(flat.len() - d.len()));
    }
    vectors.reverse();
    Ok(EmbeddedSide { dialogues: usable.len(), too_short: usable.len() - long.len(), vectors })
}

/// Writes `metrics.json` into the run directory and returns its path.
pub fn write_metrics(dir: &Path, evaluation: &Evaluation) -> Result<PathBuf, EvalError> {
    let path = dir.join(METRICS_FILE);
    let text = serde_json::to_string_pretty(evaluation)
        .map_err(|e| EvalError::Io { path: path.clone(), source: std::io::Error::other(e) })?;
    crate::fsutil::write_atomic(&path, (text + "\n").as_bytes())
        .map_err(|source| EvalError::Io { path: path.clone(), source })?;
    Ok(path)
}

/// Reads the `metrics.json` of a run directory.
pub fn read_metrics(dir: &Path) -> Result<Evaluation, EvalError> {
    let path = dir.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => EvalError::BadMetrics {
            path: path.clone(),
            reason: format!("no such file; run `vsim eval {}` first", dir.display()),
        },
        _ => EvalError::Io { path: path.clone(), source },
    })?;
    serde_json::from_str(&text).map_err(|e| EvalError::BadMetrics { path, reason: e.to_string() })
}
