//! The commands that run nothing: `list`, `explain`, `completions`, `man`.

use crate::cli::Cli;
use crate::error::AppError;
use crate::out;
use hc_core::scenario::{self, UnknownScenario};
use std::fmt::Write;
use std::process::ExitCode;

pub fn list() -> Result<ExitCode, AppError> {
    let mut s =
        String::from("Built-in scenarios (run one with `sudo hc-trace scenario NAME`):\n\n");
    for sc in scenario::catalog() {
        let _ = writeln!(s, "  {:<18} {}", sc.name, sc.teaches);
    }
    s.push_str("\nEach is a short script of socket calls; `scenarios/NAME.scenario` in the source shows its steps.\n");
    out::print(&s)?;
    Ok(ExitCode::SUCCESS)
}

/// A name that is not a built-in scenario: say so, suggest the closest, list them.
pub fn unknown_scenario(e: &UnknownScenario) -> AppError {
    let mut hint = String::new();
    if let Some(s) = &e.suggestion {
        let _ = write!(hint, "did you mean `{s}`? ");
    }
    let _ = write!(
        hint,
        "the built-in scenarios are: {} (`hc-trace list` says what each one teaches; `hc-trace run FILE` runs your own)",
        scenario::names().join(", ")
    );
    AppError::usage(e.to_string()).hint(hint)
}

/// Prints the theory of a built-in scenario, or says which name was meant.
pub fn explain(name: &str) -> Result<ExitCode, AppError> {
    let t = scenario::explain::explain(name).map_err(|e| unknown_scenario(&e))?;
    out::print(&t)?;
    Ok(ExitCode::SUCCESS)
}

pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, AppError> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "hc-trace", &mut buf);
    out::print_bytes(&buf)?;
    Ok(ExitCode::SUCCESS)
}

pub fn man() -> Result<ExitCode, AppError> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| AppError::io("cannot render the manual page".into(), e))?;
    out::print_bytes(&buf)?;
    Ok(ExitCode::SUCCESS)
}
