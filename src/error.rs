//! The one place errors become messages and exit codes.
//!
//! Inside, errors are typed (CaptureError, SandboxError, ParseError, ...);
//! at a command's edge they become an [`AppError`]: what went wrong, what
//! the user can do about it, and which exit code that is. `main` prints it
//! with [`AppError::report`] and exits with [`AppError::exit_code`].
//!
//! Exit codes (the `--help` texts say the same):
//! - 0 everything ran as asked;
//! - 1 the run happened, but it did not go as written or expected (a step
//!   could not be made, an `expect` line failed, packets were lost) —
//!   that is a result, returned as `Ok(ExitCode::from(1))`, not an error;
//! - 2 usage or environment error (this type), and a run whose capture
//!   could not be saved (the run happened and was shown: [`run_exit`]);
//! - 128 + N: stopped by signal N (a second signal, a prompt: the signal
//!   handler exits with it at once, `hc_sys::signals`).

use std::fmt;
use std::process::ExitCode;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// The exit code of a scenario run that happened, in this order: stopped by
/// a signal (128 + N), its capture not saved (2: the user asked for a file
/// and has none), not as written or expected (1), else 0.
pub fn run_exit(signal: Option<&str>, save_failed: bool, ok: bool) -> ExitCode {
    match signal {
        Some(sig) => ExitCode::from(hc_sys::signals::exit_code(sig)),
        None if save_failed => ExitCode::from(EXIT_USAGE),
        None if ok => ExitCode::SUCCESS,
        None => ExitCode::from(EXIT_FAILED),
    }
}

/// What kind of failure, which decides nothing but the wording today (all
/// exit 2), and is kept so a test can tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad arguments or input: fix the command line or the file.
    Usage,
    /// The machine does not allow it: privileges, missing tools, kernel features.
    Environment,
    /// Reading or writing a file or a stream failed.
    Io,
}

/// An error on its way to the user.
#[derive(Debug)]
pub struct AppError {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AppError {}

impl AppError {
    pub fn usage(message: impl Into<String>) -> AppError {
        AppError {
            kind: Kind::Usage,
            message: message.into(),
            hint: None,
        }
    }

    pub fn env(message: impl Into<String>) -> AppError {
        AppError {
            kind: Kind::Environment,
            message: message.into(),
            hint: None,
        }
    }

    /// A failed read or write, with what was being done.
    pub fn io(context: String, e: std::io::Error) -> AppError {
        AppError {
            kind: Kind::Io,
            message: format!("{context}: {e}"),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> AppError {
        self.hint = Some(hint.into());
        self
    }

    /// The capture could not start or stop (its message carries its own hint).
    pub fn capture(e: crate::sources::capture::CaptureError) -> AppError {
        AppError::env(e.to_string())
    }

    /// The program could not be started or traced.
    pub fn trace(e: crate::sources::exec::tracer::TraceError) -> AppError {
        use crate::sources::exec::tracer::TraceError;
        match e {
            TraceError::NotFound(_) | TraceError::Nul => AppError::usage(e.to_string()),
            _ => AppError::env(e.to_string()),
        }
    }

    /// No network namespace.
    pub fn sandbox(e: hc_sys::netns::SandboxError) -> AppError {
        AppError::env(e.message).hint(e.hint)
    }

    /// A fault the scenario asks for cannot be made here.
    pub fn fault(e: crate::sources::faults::FaultError) -> AppError {
        let hint = e.hint();
        AppError::env(e.to_string()).hint(hint)
    }

    /// The annotated capture cannot be (or was not) written.
    pub fn save(e: &crate::sources::files::SaveError) -> AppError {
        let mut err = AppError {
            kind: Kind::Io,
            message: format!("the capture was not saved: {e}"),
            hint: None,
        };
        err.hint = e.hint();
        err
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(EXIT_USAGE)
    }

    /// Prints the error (and its hint) on standard error.
    pub fn report(&self) {
        eprintln!("error: {}", self.message);
        if let Some(h) = &self.hint {
            eprintln!("  hint: {h}");
        }
    }
}

impl From<hc_render::RenderError> for AppError {
    fn from(e: hc_render::RenderError) -> AppError {
        AppError::usage(e.to_string())
    }
}
