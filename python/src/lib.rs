//! `vsim._vsim`: the native half of the Python package `vsim`. Every figure and file comes
//! from the Rust library; this module only converts. Structured results cross as JSON text
//! (the library's own serde types, so Python sees exactly the fields of `metrics.json`
//! and the transcripts), and the pure-Python half turns them into dicts and DataFrames.
//!
//! Long calls run on one shared tokio runtime with the GIL released. Every 100 ms the
//! waiting thread takes the GIL back to deliver progress events and to check for Ctrl-C
//! (or a notebook's interrupt): a run is then stopped through the library's interrupt, so
//! finished dialogues stay on disk and `resume=True` continues.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;

use vsim::backend::factory::BackendSettings;
use vsim::experiment::{
    Interrupt, InterruptTrigger, LaunchError, RunEvent, RunOptions, RunProgress, RunRequest,
};
use vsim::progress::Progress;

create_exception!(_vsim, VsimError, PyException, "Base class of every error vsim raises.");
create_exception!(
    _vsim,
    InputError,
    VsimError,
    "vsim refused what it was asked to do: a bad argument, file or setting (the command line's exit code 2)."
);
create_exception!(
    _vsim,
    RunFailed,
    VsimError,
    "Something failed while doing it: a backend, the network, a file (the command line's exit code 1)."
);

/// The error's message as the command line prints it: the error, then its causes.
fn message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    if let Some(hint) = hint(e) {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}

/// What to do about an error, in this module's keyword arguments: the first cause of `e`
/// with a known remedy (the library's messages name no argument).
fn hint(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use vsim::workflow::remedy::{remedy, Remedy};
    let found = std::iter::successors(Some(e), |c| c.source()).find_map(remedy)?;
    Some(match found {
        Remedy::ResumeOrAnotherFolder => "pass resume=True to continue it, or choose another out=",
        Remedy::OriginalScenarioOrAllowChange => {
            "pass the original scenario, or allow_changed_inputs=True to go on"
        }
        Remedy::OriginalScenario => "pass the original scenario",
        Remedy::PriceEveryModel => "give prices=[(MODEL, IN_PER_MTOK, OUT_PER_MTOK), ...] for each of them",
        Remedy::DataFolder => "pass dir=",
        Remedy::ServerModel => "use model=\"openai:MODEL\" or \"openai:MODEL@URL\"",
        Remedy::RunSplitOrOtherSplit => {
            "leave out split= to compare the run's own participants, or pass other_split=True"
        }
        Remedy::RestoreInputOrAllowChange => "pass allow_changed_inputs=True to go on",
    })
}

fn input(e: impl std::error::Error + 'static) -> PyErr {
    InputError::new_err(message(&e))
}

fn input_msg(text: impl Into<String>) -> PyErr {
    InputError::new_err(text.into())
}

fn failed(e: impl std::error::Error + 'static) -> PyErr {
    RunFailed::new_err(message(&e))
}

fn launch(e: LaunchError) -> PyErr {
    if e.is_input() {
        input(e)
    } else {
        failed(e)
    }
}

fn to_json(value: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| RunFailed::new_err(format!("cannot serialise the result: {e}")))
}

/// The one runtime of the module, started on first use.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vsim")
        .build()
        .map_err(|e| RunFailed::new_err(format!("cannot start the async runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Progress events as JSON lines, queued by the runner's threads for the Python thread.
#[derive(Clone, Default)]
struct Events {
    queue: Arc<Mutex<Vec<String>>>,
    started: Arc<AtomicBool>,
}

impl Events {
    fn observer(&self) -> RunProgress {
        let events = self.clone();
        RunProgress::new(move |e| {
            if matches!(e, RunEvent::Started { .. }) {
                events.started.store(true, Ordering::SeqCst);
            }
            if let Ok(mut q) = events.queue.lock() {
                q.push(event_json(e).to_string());
            }
        })
    }

    fn drain(&self) -> Vec<String> {
        self.queue.lock().map(|mut q| std::mem::take(&mut *q)).unwrap_or_default()
    }
}

fn event_json(e: &RunEvent) -> serde_json::Value {
    use serde_json::json;
    let spend = |s: &vsim::experiment::Spend| json!({"tokens": s.usage.total(), "calls": s.calls, "cached_calls": s.cached_calls, "cost_usd": s.cost_usd});
    match e {
        RunEvent::Started { total, already, unit } => {
            json!({"event": "started", "total": total, "already": already, "unit": unit})
        }
        RunEvent::Finished { id, error, done, failed, spend: s } => {
            json!({"event": "finished", "id": id, "error": error, "done": done, "failed": failed, "spend": spend(s)})
        }
        RunEvent::Tick { done, failed, spend: s } => {
            json!({"event": "tick", "done": done, "failed": failed, "spend": spend(s)})
        }
        RunEvent::BudgetStop { reason, in_flight } => {
            json!({"event": "budget_stop", "reason": reason, "in_flight": in_flight})
        }
        RunEvent::Halted { reason } => json!({"event": "halted", "reason": reason}),
        RunEvent::Interrupted => json!({"event": "interrupted"}),
        RunEvent::Ended => json!({"event": "ended"}),
        RunEvent::Stage { index, name } => json!({"event": "stage", "index": index, "name": name}),
        RunEvent::Phase { name } => json!({"event": "phase", "name": name}),
    }
}

/// How a blocking call ended.
enum Waited<T> {
    Done(T),
    /// Ctrl-C arrived; the run was told to stop and has stopped with this result.
    Interrupted(T),
}

/// Runs `future` with the GIL released, delivering `events` to `progress` and checking for
/// Ctrl-C. With a `trigger`, Ctrl-C stops the run through it (once it has started) and the
/// run's own result comes back with the interrupt; otherwise the future is dropped and the
/// interrupt raised at once.
fn wait<T: Send + 'static>(
    py: Python<'_>,
    future: impl Future<Output = T> + Send + 'static,
    trigger: Option<&InterruptTrigger>,
    events: &Events,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<Waited<T>> {
    let rt = runtime()?;
    let mut handle = rt.spawn(future);
    let mut interrupted = false;
    // An exception raised by the progress callback stops the run as Ctrl-C does (nothing
    // keeps writing the run directory behind the caller's back), then is raised.
    let mut callback_error: Option<PyErr> = None;
    loop {
        let joined = py.detach(|| {
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(100), &mut handle).await })
        });
        if let (Some(cb), None) = (progress, &callback_error) {
            for line in events.drain() {
                if let Err(e) = cb.call1((line,)) {
                    // Ctrl-C that landed while the callback ran is an interrupt like any other.
                    if e.is_instance_of::<PyKeyboardInterrupt>(py) && trigger.is_some() && !interrupted {
                        trigger.inspect(|t| t.pull());
                        interrupted = true;
                        continue;
                    }
                    match trigger {
                        Some(t) => t.pull(),
                        None => {
                            handle.abort();
                            return Err(e);
                        }
                    }
                    callback_error = Some(e);
                    break;
                }
            }
        }
        match joined {
            Ok(Ok(value)) => {
                if let Some(e) = callback_error {
                    return Err(e);
                }
                return Ok(if interrupted { Waited::Interrupted(value) } else { Waited::Done(value) });
            }
            Ok(Err(e)) => return Err(RunFailed::new_err(format!("the task stopped: {e}"))),
            Err(_) => {}
        }
        if !interrupted {
            if let Err(e) = py.check_signals() {
                match trigger {
                    Some(t) if events.started.load(Ordering::SeqCst) => {
                        t.pull();
                        interrupted = true;
                    }
                    Some(_) => {
                        handle.abort();
                        return Err(PyKeyboardInterrupt::new_err(
                            "interrupted before the run started: no dialogue was run",
                        ));
                    }
                    None => {
                        handle.abort();
                        return Err(e);
                    }
                }
            }
        }
    }
}

/// Waits for a call that has no run to stop (Ctrl-C drops it).
fn wait_plain<T: Send + 'static>(
    py: Python<'_>,
    future: impl Future<Output = T> + Send + 'static,
) -> PyResult<T> {
    match wait(py, future, None, &Events::default(), None)? {
        Waited::Done(v) | Waited::Interrupted(v) => Ok(v),
    }
}

fn path_string(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// Runs (or resumes) a scenario; returns the run summary as JSON and the notes worth
/// showing. See `vsim.run` for the arguments.
#[pyfunction]
#[pyo3(signature = (
    scenario, *, population=None, split=None, n=None, replicates=1, model=None, role_method=None, role_k=None,
    role_selection=None, role_model=None, seed=0, concurrency=4, out=None, resume=false, shard=None,
    max_tokens_total=None, max_cost=None, prices=None, max_consecutive_failures=10, no_cache=false,
    cache_dir=None, max_requests=8, rpm=None, timeout=120, max_retries=None, threads=None,
    deterministic=false, progress=None
))]
// Long on purpose: converts `vsim.run`'s thirty keyword arguments one by one into the library's request.
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    scenario: PathBuf,
    population: Option<String>,
    split: Option<String>,
    n: Option<usize>,
    replicates: usize,
    model: Option<String>,
    role_method: Option<Vec<(String, String)>>,
    role_k: Option<Vec<(String, String)>>,
    role_selection: Option<Vec<(String, String)>>,
    role_model: Option<Vec<(String, String)>>,
    seed: u64,
    concurrency: usize,
    out: Option<PathBuf>,
    resume: bool,
    shard: Option<String>,
    max_tokens_total: Option<u64>,
    max_cost: Option<f64>,
    prices: Option<Vec<(String, f64, f64)>>,
    max_consecutive_failures: usize,
    no_cache: bool,
    cache_dir: Option<PathBuf>,
    max_requests: usize,
    rpm: Option<u32>,
    timeout: u64,
    max_retries: Option<u32>,
    threads: Option<usize>,
    deterministic: bool,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<(String, Vec<String>)> {
    if vsim::scenario::input_kind(&scenario) == vsim::scenario::InputKind::Survey {
        return Err(input_msg(format!(
            "{} is a survey: run it with the command line (`vsim run {}`), then open its directory with \
             vsim.open_run",
            scenario.display(),
            scenario.display()
        )));
    }
    let mut request = RunRequest::new(scenario);
    request.population = population;
    request.split = split.as_deref().map(str::parse).transpose().map_err(input)?;
    request.n = n;
    request.model = model;
    for (field, list) in
        [("method", role_method), ("k", role_k), ("selection", role_selection), ("model", role_model)]
    {
        for (role, value) in list.unwrap_or_default() {
            let setting = vsim::scenario::RoleSetting::parse(field, &value)
                .map_err(|e| input_msg(format!("role_{field} {role}={value}: {e}")))?;
            request.role_overrides.push(vsim::scenario::RoleOverride { role, setting });
        }
    }
    request.seed = seed;
    request.concurrency = concurrency;
    request.out = out;
    request.resume = resume;
    let mut price_table = vsim::experiment::Prices::default();
    for (name, input_price, output_price) in prices.unwrap_or_default() {
        price_table.add_entry(&format!("{name}={input_price},{output_price}")).map_err(input)?;
    }
    if let Some(c) = max_cost {
        if !(c.is_finite() && c >= 0.0) {
            return Err(input_msg("max_cost must be a non-negative number of dollars"));
        }
    }
    let (interrupt, trigger) = Interrupt::triggered();
    request.options = RunOptions {
        shard: shard
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| input_msg(format!("shard: {e}")))?,
        budget: vsim::experiment::Budget { max_tokens_total, max_cost_usd: max_cost },
        prices: price_table,
        max_consecutive_failures,
        interrupt,
        replicates,
        ..RunOptions::default()
    };
    let defaults = BackendSettings::default();
    let backend = BackendSettings {
        no_cache,
        cache_dir,
        max_requests,
        rpm,
        timeout_secs: timeout,
        max_retries: max_retries.unwrap_or(defaults.max_retries),
        threads,
        deterministic,
        ..defaults
    }
    .options(Progress::silent());
    request.backend = backend;

    let events = Events::default();
    let observer = events.observer();
    let job = async move {
        let mut prepared = vsim::experiment::prepare(request).await?;
        prepared.config.progress = observer;
        let summary = prepared.run().await?;
        let mut notes = prepared.notes.clone();
        notes.extend(prepared.cycle_note.clone());
        Ok::<_, LaunchError>((summary, notes))
    };
    match wait(py, job, Some(&trigger), &events, progress.as_ref())? {
        Waited::Done(result) => {
            let (summary, notes) = result.map_err(launch)?;
            Ok((to_json(&summary)?, notes))
        }
        Waited::Interrupted(result) => {
            let dir = match &result {
                Ok((s, _)) => path_string(&s.out_dir),
                Err(_) => "the run directory".to_string(),
            };
            result.map_err(launch)?;
            Err(PyKeyboardInterrupt::new_err(format!(
                "run interrupted; finished dialogues are saved in {dir}; call vsim.run again with the same \
                 arguments and resume=True to continue"
            )))
        }
    }
}

/// Runs (or resumes) a tune file: the search on the train split, then the choice and the
/// baselines on held-out people; returns the tune's summary as JSON and the notes worth
/// showing. See `vsim.tune` for the arguments.
#[pyfunction]
#[pyo3(signature = (
    tune_file, *, model=None, population=None, out=None, resume=false, replicates=None, bootstrap=1000,
    shard=None, stage_only=false, max_tokens_total=None, max_cost=None, prices=None, max_consecutive_failures=10, no_cache=false,
    cache_dir=None, max_requests=8, timeout=120, progress=None
))]
#[allow(clippy::too_many_arguments)]
fn tune(
    py: Python<'_>,
    tune_file: PathBuf,
    model: Option<String>,
    population: Option<String>,
    out: Option<PathBuf>,
    resume: bool,
    replicates: Option<usize>,
    bootstrap: usize,
    shard: Option<String>,
    stage_only: bool,
    max_tokens_total: Option<u64>,
    max_cost: Option<f64>,
    prices: Option<Vec<(String, f64, f64)>>,
    max_consecutive_failures: usize,
    no_cache: bool,
    cache_dir: Option<PathBuf>,
    max_requests: usize,
    timeout: u64,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<(String, Vec<String>)> {
    let shard = shard.map(|s| s.parse::<vsim::experiment::Shard>()).transpose().map_err(input_msg)?;
    if shard.is_some() && stage_only {
        return Err(input_msg("shard and stage_only exclude each other: a shard runs, stage_only merges"));
    }
    use vsim::workflow::tune::survey::{
        names_a_survey, parse_survey_tune, run_survey_tune, SurveyTuneOptions,
    };
    use vsim::workflow::tune::{load_tune, run_tune, TuneError, TuneOptions};
    if let Some(c) = max_cost {
        if !(c.is_finite() && c >= 0.0) {
            return Err(input_msg("max_cost must be a non-negative number of dollars"));
        }
    }
    let budget = vsim::experiment::Budget { max_tokens_total, max_cost_usd: max_cost };
    let mut price_table = vsim::experiment::Prices::default();
    for (name, input_price, output_price) in prices.unwrap_or_default() {
        price_table.add_entry(&format!("{name}={input_price},{output_price}")).map_err(input)?;
    }
    let text = std::fs::read_to_string(&tune_file)
        .map_err(|e| input_msg(format!("{}: {e}", tune_file.display())))?;
    let defaults = BackendSettings::default();
    let backend = BackendSettings { no_cache, cache_dir, max_requests, timeout_secs: timeout, ..defaults }
        .options(Progress::silent());
    let (interrupt, trigger) = Interrupt::triggered();
    let events = Events::default();
    let observer = events.observer();
    if names_a_survey(&text) {
        if replicates.is_some() || population.is_some() {
            return Err(input_msg(
                "replicates and population apply to dialogue tunes; a survey's respondents come from its file",
            ));
        }
        if shard.is_some() || stage_only {
            return Err(input_msg(
                "shard and stage_only apply to dialogue tunes; a survey tune runs on one machine",
            ));
        }
        let mut spec = parse_survey_tune(&tune_file, &text).map_err(input)?;
        if let Some(m) = model {
            vsim::backend::spec::ModelSpec::parse(&m).map_err(input)?;
            spec.model = Some(m);
        }
        let job = async move {
            let (models, notes) =
                vsim::experiment::launch::open_models(spec.model_specs(), &backend, spec.concurrency)
                    .await
                    .map_err(launch)?;
            let options = SurveyTuneOptions {
                resume,
                progress: observer,
                out,
                budget,
                prices: price_table,
                max_consecutive_failures,
                interrupt,
            };
            let summary = run_survey_tune(&spec, &models, &options).await.map_err(|e| match &e {
                vsim::workflow::tune::survey::SurveyTuneError::Run(r) if r.is_input() => input(e),
                _ => failed(e),
            })?;
            Ok::<_, PyErr>((to_json(&summary)?, notes))
        };
        return finish_tune(wait(py, job, Some(&trigger), &events, progress.as_ref())?);
    }
    let mut spec = load_tune(&tune_file).map_err(input)?;
    if let Some(p) = population {
        if !p.starts_with("pfg:") && !p.starts_with("p4g:") {
            return Err(input_msg(format!(
                "population {p}: a tune needs people with real values and a train/test split (pfg:DIR)"
            )));
        }
        spec.sweep.population = p;
    }
    if let Some(m) = model {
        vsim::backend::spec::ModelSpec::parse(&m).map_err(input)?;
        spec.sweep.model = Some(m);
    }
    let job = async move {
        let (models, notes) =
            vsim::experiment::launch::open_models(spec.sweep.model_specs(), &backend, spec.sweep.concurrency)
                .await
                .map_err(launch)?;
        let options = TuneOptions {
            resume,
            progress: observer,
            out,
            budget,
            prices: price_table,
            max_consecutive_failures,
            replicates,
            eval: vsim::eval::EvalOptions { bootstrap, ..vsim::eval::EvalOptions::default() },
            interrupt,
            shard,
            stage_only,
        };
        let summary = run_tune(&spec, &models, &options).await.map_err(|e| match e {
            TuneError::Sweep(vsim::workflow::sweep::SweepError::Run(ref r)) if r.is_input() => input(e),
            TuneError::Sweep(
                vsim::workflow::sweep::SweepError::Invalid { .. }
                | vsim::workflow::sweep::SweepError::MissingModel(_)
                | vsim::workflow::sweep::SweepError::Population(_),
            )
            | TuneError::Population(_)
            | TuneError::NoTrainPeople(_) => input(e),
            other => failed(other),
        })?;
        Ok::<_, PyErr>((to_json(&summary)?, notes))
    };
    finish_tune(wait(py, job, Some(&trigger), &events, progress.as_ref())?)
}

/// A tune's result, or `KeyboardInterrupt` when Ctrl-C stopped it.
fn finish_tune(waited: Waited<PyResult<(String, Vec<String>)>>) -> PyResult<(String, Vec<String>)> {
    match waited {
        Waited::Done(result) => result,
        Waited::Interrupted(result) => {
            result?;
            Err(PyKeyboardInterrupt::new_err(
                "tune interrupted; finished work is saved; call vsim.tune again with resume=True to continue",
            ))
        }
    }
}

/// The turn and candidate tables of a run directory, as column-wise JSON.
#[pyfunction]
fn tables(py: Python<'_>, run_dir: PathBuf) -> PyResult<String> {
    let path = run_dir.join(vsim::rundir::TRANSCRIPTS);
    if !path.exists() {
        return Err(input_msg(format!("{}: no transcript here; is it a run directory?", path.display())));
    }
    let tables = py.detach(|| vsim::rundir::tables::read_tables(&path)).map_err(failed)?;
    to_json(&tables)
}

/// The manifest (`config.json`) of a run directory, as JSON.
#[pyfunction]
fn manifest(run_dir: PathBuf) -> PyResult<String> {
    let manifest = vsim::rundir::read_manifest(&run_dir).map_err(input)?;
    to_json(&manifest)
}

/// Evaluates a run directory against human data; returns `metrics.json`'s content, and
/// writes it with the reports when `write`.
#[pyfunction]
#[pyo3(signature = (
    run_dir, *, human=None, split=None, other_split=false, allow_changed_inputs=false, seed=0,
    bootstrap=1000, confidence=0.95, embedder="minilm".to_string(), embed_max=200, write=true
))]
#[allow(clippy::too_many_arguments)]
fn evaluate(
    py: Python<'_>,
    run_dir: PathBuf,
    human: Option<String>,
    split: Option<String>,
    other_split: bool,
    allow_changed_inputs: bool,
    seed: u64,
    bootstrap: usize,
    confidence: f64,
    embedder: String,
    embed_max: usize,
    write: bool,
) -> PyResult<(String, Vec<String>)> {
    if vsim::rundir::read_manifest_if_any(&run_dir)
        .map_err(input)?
        .is_some_and(|m| m.kind == vsim::rundir::RunKind::Survey)
    {
        return Err(input_msg(format!(
            "{} is a survey run: evaluate it with the command line (`vsim eval {}`)",
            run_dir.display(),
            run_dir.display()
        )));
    }
    let split: Option<vsim::eval::Split> = split.as_deref().map(str::parse).transpose().map_err(input)?;
    let job = async move {
        let mut notes = Vec::new();
        let run = vsim::eval::RunData::load(&run_dir).map_err(input)?;
        let choice =
            vsim::eval::human_for_run(&run, human.as_deref(), split, other_split, allow_changed_inputs)
                .map_err(input)?;
        if let Some(c) = &choice.changed {
            notes.push(format!("{c}; going on as allow_changed_inputs asks"));
        }
        let (model, no_embedder_reason) = match embedder.trim() {
            "none" | "" => (None, None),
            spec => match vsim::embed::open_any(spec, &Progress::silent()).await {
                Ok(m) => (Some(m), None),
                Err(e @ vsim::embed::EmbedError::BadSpec { .. }) => return Err(input(e)),
                Err(e) if spec == "minilm" => (None, Some(vsim::embed::unavailable_reason(&e))),
                Err(e) => return Err(failed(e)),
            },
        };
        let opts = vsim::eval::EvalOptions {
            seed,
            bootstrap,
            confidence,
            bins: None,
            embed_max,
            no_embedder_reason,
        };
        let evaluation = vsim::eval::evaluate(&run, choice.reference.as_ref(), &opts, model.as_deref())
            .await
            .map_err(|e| match e {
                vsim::eval::EvalError::InvalidOption { .. } | vsim::eval::EvalError::NoOutcomes { .. } => {
                    input(e)
                }
                other => failed(other),
            })?;
        if write {
            vsim::eval::write_metrics(&run_dir, &evaluation).map_err(failed)?;
            vsim::report::write_run_report(
                &run_dir,
                &evaluation,
                Some(&run),
                vsim::report::DEFAULT_MAX_DIALOGUES,
            )
            .map_err(failed)?;
        }
        Ok((to_json(&evaluation)?, notes))
    };
    wait_plain(py, job)?
}

/// Draws `n` responses to one prompt with one method and chooses one; returns the sample
/// (`vsim sample --json`'s record of the method) as JSON.
#[pyfunction]
#[pyo3(signature = (
    prompt, *, method="vs-standard".to_string(), k="5".to_string(), k_max=10, n=None,
    selection="weighted".to_string(), min_prob=None, min_keep=1, tau=None, model="local".to_string(),
    seed=0, temperature=None, max_tokens=None, system="You are a helpful assistant.".to_string(),
    no_cache=false, threads=None
))]
#[allow(clippy::too_many_arguments)]
fn sample(
    py: Python<'_>,
    prompt: String,
    method: String,
    k: String,
    k_max: usize,
    n: Option<usize>,
    selection: String,
    min_prob: Option<f64>,
    min_keep: usize,
    tau: Option<f64>,
    model: String,
    seed: u64,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    system: String,
    no_cache: bool,
    threads: Option<usize>,
) -> PyResult<String> {
    let (method, k, rule) = vsim::vs::sample_set::SampleSettings {
        method: &method,
        k: &k,
        k_max,
        selection: &selection,
        min_prob,
        min_keep,
        tau,
        n,
    }
    .check()
    .map_err(|e| input_msg(e.to_string()))?;
    let request =
        vsim::vs::sample_set::SampleRequest { prompt, system, method, k, tau, temperature, max_tokens, seed };
    let backend =
        BackendSettings { no_cache, threads, ..BackendSettings::default() }.options(Progress::silent());
    let job = async move {
        let (model, _) = vsim::experiment::launch::open_checked(&model, &backend).await.map_err(launch)?;
        let n = n.unwrap_or_else(|| request.default_n());
        let mut drawn = request.draw(model.as_ref(), n).await.map_err(failed)?;
        if drawn.choose(&rule, seed).is_none() {
            return Err(RunFailed::new_err("the model returned no candidates"));
        }
        to_json(&drawn)
    };
    wait_plain(py, job)?
}

/// Parses a raw model reply into candidates (with the repairs applied); returns the parsed
/// reply as JSON.
#[pyfunction]
#[pyo3(signature = (text, k=None))]
fn parse(text: &str, k: Option<usize>) -> PyResult<String> {
    if k == Some(0) {
        return Err(input_msg("k must be at least 1"));
    }
    let parsed = vsim::vs::parse_candidates(text, k.map(|k| vsim::vs::KSpec::Fixed { k })).map_err(input)?;
    to_json(&serde_json::json!({"candidates": parsed.candidates, "reasoning": parsed.reasoning}))
}

fn stats_err(e: vsim::stats::StatsError) -> PyErr {
    input(e)
}

/// The library's registry of distances, as JSON: a list of {key, command, symbol, about,
/// help, inputs}, `inputs` being `samples`, `paired`, `binned`, `test` or `distributions`.
#[pyfunction]
fn distances() -> PyResult<String> {
    use vsim::stats::distances::{Compute, DISTANCES};
    let list: Vec<serde_json::Value> = DISTANCES
        .iter()
        .map(|d| {
            let inputs = match d.compute {
                Compute::Samples(_) => "samples",
                Compute::Paired(_) => "paired",
                Compute::Binned(_) => "binned",
                Compute::Test(_) => "test",
                Compute::Distributions(_) => "distributions",
            };
            serde_json::json!({"key": d.key, "command": d.command, "symbol": d.symbol, "about": d.about,
                   "help": d.help, "inputs": inputs})
        })
        .collect();
    to_json(&list)
}

fn distance_def(key: &str) -> PyResult<&'static vsim::stats::distances::DistanceDef> {
    vsim::stats::distances::distance(key).ok_or_else(|| {
        let known: Vec<&str> = vsim::stats::distances::DISTANCES.iter().map(|d| d.key).collect();
        input_msg(format!("no distance `{key}`; known: {}", known.join(", ")))
    })
}

/// The registry's distance `key` of `a` and `b`; `bins` = (lo, hi, n) for a binned one.
#[pyfunction]
#[pyo3(signature = (key, a, b, bins=None))]
fn distance(key: &str, a: Vec<f64>, b: Vec<f64>, bins: Option<(f64, f64, usize)>) -> PyResult<f64> {
    let def = distance_def(key)?;
    let bins = bins.map(|(lo, hi, n)| vsim::stats::compare::Bins { lo, hi, n });
    if let Some(b) = &bins {
        b.validate().map_err(stats_err)?;
    }
    def.statistic(&a, &b, bins.as_ref()).map_err(stats_err)
}

/// The registry's test `key` (the KS test) of `a` and `b`; returns (statistic, p-value,
/// method used).
#[pyfunction]
#[pyo3(signature = (key, a, b, mode="auto"))]
fn test(key: &str, a: Vec<f64>, b: Vec<f64>, mode: &str) -> PyResult<(f64, f64, String)> {
    let vsim::stats::distances::Compute::Test(f) = distance_def(key)?.compute else {
        return Err(input_msg(format!("`{key}` is a distance, not a test with a p-value")));
    };
    let mode = match mode {
        "auto" => vsim::stats::KsMode::Auto,
        "exact" => vsim::stats::KsMode::Exact,
        "asymptotic" | "asymp" => vsim::stats::KsMode::Asymptotic,
        other => return Err(input_msg(format!("mode must be auto, exact or asymptotic, got `{other}`"))),
    };
    let r = f(&a, &b, mode).map_err(stats_err)?;
    let used = if r.method_used == vsim::stats::KsMode::Exact { "exact" } else { "asymptotic" };
    Ok((r.statistic, r.pvalue, used.to_string()))
}

/// The built-in OpenAI-compatible mock model, served on 127.0.0.1 until closed.
#[pyclass(module = "vsim._vsim")]
struct MockServer {
    server: Option<vsim::mock::MockServer>,
    url: String,
}

#[pymethods]
impl MockServer {
    #[new]
    #[pyo3(signature = (*, seed=0, latency_ms=0, error_rate=0.0))]
    fn new(py: Python<'_>, seed: u64, latency_ms: u64, error_rate: f64) -> PyResult<Self> {
        let config = vsim::mock::MockConfig {
            seed,
            latency: Duration::from_millis(latency_ms),
            error_rate,
            ..Default::default()
        };
        let server = wait_plain(py, vsim::mock::MockServer::start(config))?.map_err(failed)?;
        Ok(Self { url: server.base_url(), server: Some(server) })
    }

    /// `http://127.0.0.1:PORT/v1`.
    #[getter]
    fn base_url(&self) -> String {
        self.url.clone()
    }

    /// Stops the server.
    fn close(&mut self) {
        self.server = None;
    }
}

#[pymodule]
fn _vsim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("VsimError", py.get_type::<VsimError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("RunFailed", py.get_type::<RunFailed>())?;
    m.add_class::<MockServer>()?;
    for f in [
        wrap_pyfunction!(run, m)?,
        wrap_pyfunction!(tune, m)?,
        wrap_pyfunction!(tables, m)?,
        wrap_pyfunction!(manifest, m)?,
        wrap_pyfunction!(evaluate, m)?,
        wrap_pyfunction!(sample, m)?,
        wrap_pyfunction!(parse, m)?,
        wrap_pyfunction!(distances, m)?,
        wrap_pyfunction!(distance, m)?,
        wrap_pyfunction!(test, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
