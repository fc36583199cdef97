//! Surveys through `vsim run` and `vsim eval` (files with `kind = "survey"`).

use std::path::{Path, PathBuf};

use super::run::RunArgs;
use super::{CliError, CliResult};
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
    if args.n == Some(0) || args.concurrency == 0 {
        return Err(CliError::input(anyhow::anyhow!("--n and --concurrency must be at least 1")));
    }
    let model_name = args.model.clone().or(spec.model.clone()).unwrap_or_else(|| "local".into());
    let model = super::open_model(&model_name, &args.backend).await?;
    let out_dir =
        args.out.clone().unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", spec.name, args.seed)));
    let config = SurveyRunConfig {
        n: args.n,
        seed: args.seed,
        concurrency: args.concurrency,
        out_dir: out_dir.clone(),
        resume: args.resume,
        progress: !args.quiet,
        model_name,
    };
    let s = run_survey(&spec, model, &config).await.map_err(|e| match e {
        SurveyRunError::Exists(_) | SurveyRunError::Template(_) => CliError::input(e),
        other => CliError::failed(other),
    })?;
    println!(
        "{}: {} respondents ({} completed, {} failed; {} run now, {} already done), {} missing answers, {} tokens",
        out_dir.display(),
        s.respondents,
        s.completed,
        s.failed,
        s.ran,
        s.skipped,
        s.missing_answers,
        s.usage.total()
    );
    Ok(if s.failed > 0 { 1 } else { 0 })
}

/// True when `run_dir` holds a survey run.
pub fn is_survey_run(run_dir: &Path) -> bool {
    std::fs::read_to_string(run_dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["kind"] == "survey")
}

/// `vsim eval RUN_DIR` for a survey run: metrics.json and report.md in the run directory.
pub fn eval(run_dir: &Path) -> CliResult {
    let config: serde_json::Value = std::fs::read_to_string(run_dir.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| CliError::input(anyhow::anyhow!("{}: no readable config.json", run_dir.display())))?;
    let source = config["source"].as_str().map(PathBuf::from).ok_or_else(|| {
        CliError::input(anyhow::anyhow!("{}: config.json does not name the survey file", run_dir.display()))
    })?;
    let spec = vsim::survey::load_survey(&source, None).map_err(CliError::input)?;
    let report = vsim::survey::eval::evaluate(&spec, run_dir).map_err(CliError::input)?;
    let metrics = run_dir.join("metrics.json");
    std::fs::write(&metrics, serde_json::to_vec_pretty(&report).unwrap_or_default())
        .map_err(CliError::failed)?;
    let md = run_dir.join("report.md");
    std::fs::write(&md, report.to_markdown()).map_err(CliError::failed)?;
    println!(
        "{}: overall representativeness {}, mean TV {}, {} missing answers; wrote {} and {}",
        run_dir.display(),
        report.overall_representativeness.map_or("–".into(), |v| format!("{v:.3}")),
        report.mean_tv.map_or("–".into(), |v| format!("{v:.3}")),
        report.missing_answers,
        metrics.display(),
        md.display()
    );
    Ok(0)
}

/// True when a `vsim run` argument names a survey file.
pub fn is_survey_file_arg(path: &Path) -> bool {
    vsim::survey::is_survey_file(path)
}
