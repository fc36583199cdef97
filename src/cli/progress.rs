//! How the CLI shows a run's progress: a bar on an interactive terminal; plain lines (no
//! escape codes) when stderr is not a terminal or with `--quiet`, as in batch jobs: one per
//! failure and budget stop, and a progress line at intervals. The same lines
//! (and the final summary) are appended to the run directory's `run.log`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use vsim::experiment::{RunEvent, RunProgress};

/// Seconds between plain progress lines (`VSIM_PROGRESS_SECS` overrides the default 30).
fn plain_interval() -> Duration {
    let secs = std::env::var("VSIM_PROGRESS_SECS").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(30);
    Duration::from_secs(secs.max(1))
}

/// The run directory's log of what a run reported.
pub const RUN_LOG: &str = "run.log";

/// Reports the retries of the whole invocation, if there were any (stderr and `run.log`).
pub fn report_retries(dir: &Path) {
    if let Some(r) = vsim::backend::resilient::retry_summary() {
        let line = format!("retries after transient backend errors: {r}");
        append_run_log(dir, &line);
        errln!("{line}");
    }
}

/// Appends `line` to `dir/run.log`, with the time (best effort: a log that cannot be written
/// never stops a run).
/// Control characters are escaped (a failure line may quote a server), and a `run.log` that
/// is a link is never written through.
pub fn append_run_log(dir: &Path, line: &str) {
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    if let Ok(mut f) = vsim::fsutil::open_no_follow(&mut options, &dir.join(RUN_LOG)) {
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        let _ = writeln!(f, "[{now}] {}", vsim::fsutil::escape_controls(line));
    }
}

/// What `run.log` records when Ctrl-C stops a run; on the terminal the command's last line
/// says it, with how to continue.
const INTERRUPTED: &str = "interrupted: finished work is saved; --resume continues";

/// What a budget stop means for the run.
fn budget_line(reason: &str, unit: &str, in_flight: usize) -> String {
    match in_flight {
        0 => format!("{reason}: no new {unit} start"),
        n => format!("{reason}: no new {unit} start; the {n} in flight stop at their next model call"),
    }
}

/// The observer for a run writing to `dir`: a bar when stderr is a terminal and `quiet` is
/// off, plain lines otherwise; what it says also goes to `dir/run.log`.
pub fn run_progress(quiet: bool, dir: &Path) -> RunProgress {
    let log = dir.to_path_buf();
    if !quiet && std::io::stderr().is_terminal() {
        bar_progress(log)
    } else {
        plain_progress(plain_interval(), log)
    }
}

fn bar_progress(log: PathBuf) -> RunProgress {
    let bar: Mutex<Option<(ProgressBar, &'static str)>> = Mutex::new(None);
    RunProgress::new(move |event| {
        let Ok(mut slot) = bar.lock() else { return };
        match event {
            RunEvent::Started { total, already, unit } => {
                let b = ProgressBar::new(*total);
                let template = format!("{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} · ETA {{eta}} · {{msg}}");
                b.set_style(
                    ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b.set_position(*already);
                b.reset_eta();
                *slot = Some((b, unit));
            }
            RunEvent::Finished { id, error, done, failed, spend } => {
                if let Some((b, _)) = slot.as_ref() {
                    if let Some(e) = error {
                        let line = format!("{id} failed: {e}");
                        append_run_log(&log, &line);
                        b.println(vsim::fsutil::escape_controls(&line));
                    }
                    b.set_position(*done);
                    b.set_message(format!(
                        "{} done, {failed} failed · {spend}",
                        done.saturating_sub(*failed)
                    ));
                }
            }
            RunEvent::Tick { done, failed, spend } => {
                if let Some((b, _)) = slot.as_ref() {
                    b.set_message(format!(
                        "{} done, {failed} failed · {spend}",
                        done.saturating_sub(*failed)
                    ));
                    b.tick();
                }
            }
            RunEvent::BudgetStop { reason, in_flight } => {
                let unit = slot.as_ref().map_or("dialogues", |(_, u)| *u);
                let line = format!(
                    "{reason}: no new {unit} start; the {in_flight} in flight stop at their next call"
                );
                append_run_log(&log, &line);
                match slot.as_ref() {
                    Some((b, _)) => b.println(vsim::fsutil::escape_controls(&line)),
                    None => errln!("{line}"),
                }
            }
            RunEvent::Halted { reason } => {
                let line = format!("stopping: {reason}; nothing new starts (--resume continues)");
                append_run_log(&log, &line);
                match slot.as_ref() {
                    Some((b, _)) => b.println(vsim::fsutil::escape_controls(&line)),
                    None => errln!("{line}"),
                }
            }
            // Logged only: the command's last line tells the user, once, how to continue.
            RunEvent::Interrupted => append_run_log(&log, INTERRUPTED),
            RunEvent::Ended => {
                if let Some((b, _)) = slot.take() {
                    b.finish_and_clear();
                }
            }
            RunEvent::Stage { index, name } => {
                append_run_log(&log, &format!("cell {index}: {name}"));
                errln!("cell {index}: {name}")
            }
            RunEvent::Phase { name } => {
                append_run_log(&log, name);
                errln!("{name}")
            }
        }
    })
}

fn plain_progress(every: Duration, log: PathBuf) -> RunProgress {
    let log_path = log.clone();
    let say = move |line: &str| {
        append_run_log(&log, line);
        errln!("{line}");
    };
    struct State {
        started: Instant,
        last: Instant,
        total: u64,
        unit: &'static str,
    }
    let state =
        Mutex::new(State { started: Instant::now(), last: Instant::now(), total: 0, unit: "dialogues" });
    RunProgress::new(move |event| {
        let Ok(mut st) = state.lock() else { return };
        let line = |st: &State, done: u64, failed: u64, spend: &vsim::experiment::Spend| {
            let retries = vsim::backend::resilient::retry_summary()
                .map(|r| format!(" · retries: {r}"))
                .unwrap_or_default();
            format!(
                "progress: {done}/{} {} ({failed} failed) after {}s · {spend}{retries}",
                st.total,
                st.unit,
                st.started.elapsed().as_secs()
            )
        };
        match event {
            RunEvent::Started { total, unit, .. } => {
                st.total = *total;
                st.unit = unit;
                st.started = Instant::now();
                st.last = Instant::now();
            }
            RunEvent::Finished { id, error, done, failed, spend } => {
                if let Some(e) = error {
                    say(&format!("{id} failed: {e}"));
                }
                if st.last.elapsed() >= every {
                    st.last = Instant::now();
                    say(&line(&st, *done, *failed, spend));
                }
            }
            RunEvent::Tick { done, failed, spend } => {
                if st.last.elapsed() >= every {
                    st.last = Instant::now();
                    say(&line(&st, *done, *failed, spend));
                }
            }
            RunEvent::BudgetStop { reason, in_flight } => say(&budget_line(reason, st.unit, *in_flight)),
            RunEvent::Halted { reason } => {
                say(&format!("stopping: {reason}; nothing new starts (--resume continues)"))
            }
            RunEvent::Interrupted => append_run_log(&log_path, INTERRUPTED),
            RunEvent::Ended => {}
            RunEvent::Stage { index, name } => say(&format!("cell {index}: {name}")),
            RunEvent::Phase { name } => say(name),
        }
    })
}
