//! Surveys through `vsim run` and `vsim eval` (files with `kind = "survey"`).

use std::path::{Path, PathBuf};

use super::run::RunArgs;
use super::{CliError, CliResult};
use vsim::experiment::StopCause;
use vsim::survey::run::{run_survey, SurveyRunConfig, SurveyRunError};

/// `vsim run SURVEY.toml`: `--population opinionqa:DIR` replaces the wave directory, `--n`
/// the number of respondents, `--model` the model.
pub async fn run(args: RunArgs) -> CliResult {
    let wave = match &args.population {
        Some(p) => match p.strip_prefix("opinionqa:") {
            Some(dir) => Some(PathBuf::from(dir)),
            None => {
                return Err(CliError::input(anyhow::anyhow!(
                    "a survey's --population must be opinionqa:DIR (an OpinionQA wave directory), got `{p}`"
                )))
            }
        },
        None => None,
    };
    let spec = vsim::survey::load_survey(&args.scenario, wave.as_deref()).map_err(CliError::input)?;
    refuse_dialogue_flags(&args)?;
    if args.n == Some(0) || args.concurrency == 0 {
        return Err(CliError::input(anyhow::anyhow!("--n and --concurrency must be at least 1")));
    }
    super::check_n(args.n.unwrap_or(0))?;
    let model_name = args.model.clone().or(spec.model.clone()).unwrap_or_else(|| "local".into());
    let model = super::open_model_for(&model_name, &args.backend, args.concurrency).await?;
    let out_dir =
        args.out.clone().unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", spec.name, args.seed)));
    let config = SurveyRunConfig {
        n: args.n,
        seed: args.seed,
        concurrency: args.concurrency,
        out_dir: out_dir.clone(),
        resume: args.resume,
        progress: super::progress::run_progress(args.quiet, &out_dir),
        model_name,
        shard: args.shard,
        budget: args.budget.budget()?,
        prices: args.budget.prices()?,
        max_consecutive_failures: args.budget.max_consecutive_failures,
        interrupt: Default::default(),
    };
    let s = run_survey(&spec, model, &config).await.map_err(|e: SurveyRunError| {
        if e.is_input() {
            CliError::input(e)
        } else {
            CliError::failed(e)
        }
    })?;
    let shard = s.shard.map(|s| format!(" [shard {s}]")).unwrap_or_default();
    let mut line = format!(
        "{}{shard}: {} respondents ({} completed, {} without any usable answer, {} failed; {} run now, {} already done), {} missing answers, {} ({} model calls, {} cached)",
        out_dir.display(),
        s.counts.dialogues,
        s.counts.completed,
        s.counts.unanswered,
        s.counts.failed,
        s.ran,
        s.skipped,
        s.counts.missing.values().sum::<usize>(),
        s.spend,
        s.spend.calls,
        s.spend.cached_calls,
    );
    line.push_str(&super::run::stop_clause(s.stop.as_ref(), s.not_started));
    super::progress::append_run_log(&out_dir, &line);
    super::progress::report_retries(&out_dir);
    outln!("{line}");
    let resume_hint = format!(
        "run the same command again with --resume (vsim run {} --out {} ... --resume)",
        args.scenario.display(),
        out_dir.display()
    );
    if s.counts.unanswered > 0 {
        errln!(
            "{} respondents finished without a single usable answer ({} of them now); they are not counted \
             as completed, and --resume does not ask them again",
            s.counts.unanswered,
            s.unanswered_now
        );
    }
    match &s.stop {
        Some(StopCause::Interrupted) => {
            errln!("interrupted; to continue, {resume_hint}");
            return Ok(vsim::experiment::interrupt::received().map_or(130, |s| s.exit_code()));
        }
        Some(StopCause::ConsecutiveFailures { .. }) => {
            errln!("fix the cause, then {resume_hint}");
            return Ok(1);
        }
        Some(StopCause::Budget { .. }) if s.not_started > 0 => errln!("to continue later, {resume_hint}"),
        Some(StopCause::Budget { .. }) | None => {}
    }
    // Unanswered respondents fail the invocation that produced them, not every later resume.
    Ok(if s.counts.failed > 0 || s.unanswered_now > 0 { 1 } else { 0 })
}

/// Flags of `vsim run` that mean something only for dialogues: refused for a survey rather
/// than silently ignored.
fn refuse_dialogue_flags(args: &RunArgs) -> Result<(), CliError> {
    refuse_flags(
        &[
            ("--split", args.split.is_some()),
            ("--role-method", !args.role_method.is_empty()),
            ("--role-k", !args.role_k.is_empty()),
            ("--role-selection", !args.role_selection.is_empty()),
            ("--role-model", !args.role_model.is_empty()),
        ],
        "a survey: it has one role, the respondent, whose method, selection and model are set in \
         the survey file (`method`, `selection`, `model`) or with --model; its respondents are the \
         survey's groups, not a data split",
    )
}

/// Refuses the flags among `flags` that were given, saying they do not apply to `what`.
fn refuse_flags(flags: &[(&str, bool)], what: &str) -> Result<(), CliError> {
    let given: Vec<&str> = flags.iter().filter_map(|(flag, on)| on.then_some(*flag)).collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(CliError::input(anyhow::anyhow!(
        "{} {} not apply to {what}",
        given.join(", "),
        if given.len() == 1 { "does" } else { "do" }
    )))
}

/// True when `run_dir` holds a survey run.
pub fn is_survey_run(run_dir: &Path) -> bool {
    vsim::rundir::read_manifest(run_dir).is_ok_and(|m| m.kind == vsim::rundir::RunKind::Survey)
}

/// `vsim eval RUN_DIR` for a survey run: metrics.json, report.md and report.html in the run
/// directory.
/// The survey and its human data are read from where the manifest pinned them at run time,
/// and refused when they changed since (unless `allow_changed`).
pub fn eval(args: &super::eval::EvalArgs) -> CliResult {
    let run_dir = &args.run_dir;
    refuse_flags(
        &[
            ("--human", args.human.is_some()),
            ("--split", args.split.is_some()),
            ("--other-split", args.other_split),
            ("--measure", args.measure != "answer"),
            ("--bins", args.bins.is_some()),
        ],
        &format!(
            "a survey run: it is compared item by item and subgroup by subgroup with the OpinionQA wave \
             it was run with, pinned in {}",
            run_dir.join(vsim::rundir::MANIFEST).display()
        ),
    )?;
    let manifest = vsim::rundir::read_manifest(run_dir).map_err(CliError::input)?;
    for change in manifest.changed_inputs() {
        super::eval::refuse_changed(Some(change), args.allow_changed_inputs)?;
    }
    let source = manifest
        .input("survey")
        .map(|i| i.path.clone())
        .or_else(|| manifest.survey.as_ref().map(|s| s.source.clone()))
        .ok_or_else(|| {
            CliError::input(anyhow::anyhow!("{}: the manifest names no survey file", run_dir.display()))
        })?;
    let wave = manifest.input("human data").map(|i| i.path.clone());
    let spec = vsim::survey::load_survey(&source, wave.as_deref()).map_err(CliError::input)?;
    let report = vsim::survey::eval::evaluate(&spec, run_dir).map_err(CliError::input)?;
    let metrics = run_dir.join("metrics.json");
    let write = |path: &std::path::Path, bytes: &[u8]| {
        vsim::fsutil::write_atomic(path, bytes)
            .map_err(|e| CliError::failed(anyhow::Error::new(e).context(path.display().to_string())))
    };
    write(&metrics, &serde_json::to_vec_pretty(&report).unwrap_or_default())?;
    let md = run_dir.join("report.md");
    write(&md, report.to_markdown().as_bytes())?;
    let html = vsim::report::survey::write_survey_html(run_dir, &report).map_err(CliError::failed)?;
    outln!("{}: {}", run_dir.display(), report.summary_line());
    outln!("wrote {}", metrics.display());
    outln!("wrote {}", md.display());
    outln!("wrote {}", html.display());
    Ok(0)
}

/// `vsim report` of evaluated survey runs: their `metrics.json` side by side in
/// `out/report.md` and `out/report.html`.
pub fn report(run_dirs: &[PathBuf], out: &Path) -> CliResult {
    let mut runs = Vec::new();
    for dir in run_dirs {
        let path = dir.join("metrics.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CliError::input(anyhow::anyhow!(
                "{}: {e}; evaluate the survey run first: vsim eval {}",
                path.display(),
                dir.display()
            ))
        })?;
        let report: vsim::survey::eval::SurveyReport = serde_json::from_str(&text).map_err(|e| {
            CliError::input(anyhow::anyhow!(
                "{}: not a survey evaluation written by `vsim eval` ({e}); evaluate it again: vsim eval {}",
                path.display(),
                dir.display()
            ))
        })?;
        let name =
            dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        runs.push((name, report));
    }
    let written = vsim::report::survey::write_survey_comparison(out, &runs).map_err(CliError::input)?;
    outln!("wrote {}", written.markdown.display());
    outln!("wrote {}", written.html.display());
    Ok(0)
}
