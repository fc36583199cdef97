//! The `vsim` command line: parses arguments, sets up logging, calls the library, and maps
//! errors to exit codes (1: something failed while running; 2: bad input).

/// Every line vsim shows goes through these two: control characters are escaped (text from a
/// model or a server must not drive the terminal), and a reader that went away is never a
/// panic (see [`closed_output`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        if let Err(e) = writeln!(std::io::stdout(), "{}", vsim::fsutil::escape_controls(&line)) {
            crate::closed_output(&e);
        }
    }};
}

/// [`outln`] for stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        if let Err(e) = writeln!(std::io::stderr(), "{}", vsim::fsutil::escape_controls(&line)) {
            crate::closed_output(&e);
        }
    }};
}

mod cli;

/// jemalloc instead of the system allocator: with many dialogues in flight the system's
/// malloc spent a fifth of vsim's CPU per call, much of it on contended arena locks.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::Parser;

fn main() -> std::process::ExitCode {
    end_quietly_when_stdout_closes();
    let args = cli::Cli::parse();
    // Commands that write a folder outlive a reader that went away: a run piped into `head`
    // goes on with its output dropped, and finishes its work. The others end as a Unix tool
    // does (`vsim data summary … | head -1`).
    END_ON_CLOSED_OUTPUT.store(!args.command.writes_a_folder(), std::sync::atomic::Ordering::Relaxed);
    cli::init_tracing(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let result = runtime.block_on(cli::dispatch(args));
    if matches!(result, Ok(130) | Ok(143)) {
        // Stopped by a signal: work still running on the runtime's threads (an evaluation
        // computing without pause) is abandoned, not waited for.
        runtime.shutdown_background();
    }
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            let mut shown = e.error.to_string();
            errln!("error: {shown}");
            for cause in e.error.chain().skip(1) {
                // An error that quotes its cause (`PATH: reason`) has said it already.
                let cause = cause.to_string();
                if !shown.contains(&cause) {
                    errln!("  caused by: {cause}");
                    shown = cause;
                }
            }
            if let Some(hint) = cli::hint(&e.error) {
                errln!("hint: {hint}");
            }
            std::process::ExitCode::from(e.code)
        }
    }
}

/// Whether a reader that went away ends the process (see `main`).
static END_ON_CLOSED_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A line could not be shown: when its reader went away and the command writes no folder,
/// end as a Unix tool does; otherwise the line is dropped.
fn closed_output(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe
        && END_ON_CLOSED_OUTPUT.load(std::sync::atomic::Ordering::Relaxed)
    {
        end_by_sigpipe();
    }
}

/// Ends the process by SIGPIPE, as `head` and the shell expect of a tool whose reader left.
fn end_by_sigpipe() -> ! {
    #[cfg(unix)]
    // SAFETY: restores the default action of SIGPIPE and raises it: the process ends as a
    // Unix tool does when its reader goes away.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(141);
}

/// Like other Unix tools, end quietly, by SIGPIPE, when the reader of stdout goes away
/// (`vsim data summary … | head -1`) instead of panicking in `println!`.
///
/// SIGPIPE itself stays ignored, as Rust sets it: with its default action, a write to a
/// socket that the server has closed (a TLS alert, a dropped connection) would kill the
/// whole process without a word, where it should be an error the retries and the messages
/// handle. Only a failed print to a closed pipe ends the process, as SIGPIPE would.
fn end_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        let message = message.unwrap_or("");
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            end_by_sigpipe();
        }
        default(info);
    }));
}
