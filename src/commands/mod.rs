//! One module per subcommand; each returns the exit code of a run that
//! happened, or an [`AppError`] that `main` prints and maps (see
//! [`crate::error`]).

pub mod analyze;
pub mod exec;
pub mod info;
pub mod scenario;
pub mod watch;

use crate::cli::{Cli, Command};
use crate::error::AppError;
use std::process::ExitCode;

/// Runs the command; `color` says whether text output is painted.
pub fn run(cli: Cli, color: bool) -> Result<ExitCode, AppError> {
    match cli.command {
        Command::List => info::list(),
        Command::Explain(a) => info::explain(&a.name),
        Command::Completions { shell } => info::completions(shell),
        Command::Man => info::man(),
        Command::Scenario(a) => scenario::scenario(&a, color),
        Command::Run(a) => scenario::run_file(&a, color),
        Command::Analyze(a) => analyze::run(a, color),
        Command::Watch(a) => watch::run(&a),
        Command::Exec(a) => exec::run(&a, color),
        Command::Attach(a) => {
            let mut e = a.as_exec();
            // The process's own command line names it, where it can be read.
            if let Ok(cmd) = std::fs::read(format!("/proc/{}/cmdline", a.pid)) {
                let args: Vec<std::ffi::OsString> = cmd
                    .split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned().into())
                    .collect();
                if !args.is_empty() {
                    e.program = args;
                }
            }
            exec::run(&e, color)
        }
    }
}
