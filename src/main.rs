//! The `vsim` command line: parses arguments, sets up logging, calls the library, and maps
//! errors to exit codes (1: something failed while running; 2: bad input).

/// Every line vsim shows goes through these two: control characters are escaped (text from a
/// model or a server must not drive the terminal), and a reader that went away is never a
/// panic (the line is dropped; see `main` for SIGPIPE).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stdout(), "{}", vsim::fsutil::escape_controls(&line));
    }};
}

/// [`outln`] for stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", vsim::fsutil::escape_controls(&line));
    }};
}

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    // Like other Unix tools, end quietly when the reader of stdout goes away
    // (`vsim data summary … | head -1`). Rust ignores SIGPIPE by default and std offers no
    // way to restore it, hence libc. Commands that write a folder keep ignoring it: a run
    // piped into `head` goes on with its output dropped, and finishes its work.
    #[cfg(unix)]
    if !args.command.writes_a_folder() {
        // SAFETY: called before the runtime starts any thread; SIG_DFL is a valid handler.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
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
            std::process::ExitCode::from(e.code)
        }
    }
}
