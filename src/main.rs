//! hc-trace: what each socket call puts on the wire.
//!
//! ```text
//! cli ─▶ commands ─▶ session (capture on → source → settle → off) ─▶ hc_core (assemble) ─▶ hc_render ─▶ out
//!                      sources: scenario driver + faults, exec tracer, capture files, live capture, kernel trace
//! ```
//!
//! The network namespace is entered first, in a plain `fn main`, before any
//! thread exists: unshare(CLONE_NEWUSER) fails once a process has a second
//! thread, and unshare(CLONE_NEWNET) would move only the calling thread. The
//! tokio runtime is built afterwards, inside the scenario source.
#![forbid(unsafe_code)]

/// `eprintln!` for the whole crate, shadowing std's: a closed or full
/// standard error loses the message instead of panicking (std's panics).
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::out::to_stderr(format_args!($($arg)*))
    };
}

mod cli;
mod commands;
mod error;
mod out;
mod session;
mod sources;

use clap::Parser;
use cli::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    hc_sys::signals::install();
    // try_parse: --help and --version are printed by out.rs, so a full or
    // closed standard output is handled as for every other output.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return out::clap_message(&e),
    };
    // A file is not a terminal: no colour escapes in it unless asked for.
    let to_file = cli.command.common().is_some_and(|c| c.out.is_some())
        || matches!(&cli.command, cli::Command::Exec(a) if a.out.is_some());
    let color = out::colour(cli.color, to_file);
    match commands::run(cli, color) {
        Ok(code) => code,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    }
}
