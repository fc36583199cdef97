//! The `vsim` command line: parses arguments, sets up logging, calls the library, and maps
//! errors to exit codes (1: something failed while running; 2: bad input).

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    end_quietly_when_stdout_closes();
    let args = cli::Cli::parse();
    cli::init_tracing(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::dispatch(args)) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", e.error);
            for cause in e.error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::from(e.code)
        }
    }
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
            #[cfg(unix)]
            // SAFETY: restores the default action of SIGPIPE and raises it: the process ends
            // as a Unix tool does when its reader goes away.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
            std::process::exit(141);
        }
        default(info);
    }));
}
