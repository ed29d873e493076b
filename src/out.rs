//! Standard output and `-o FILE`: every byte hc-trace prints goes through here.
//!
//! A reader that goes away (`hc-trace list | head -1`) ends the output
//! quietly, as grep and ripgrep do; any other write error (a full disk
//! behind `> file`) is an error with exit 2. Nothing here panics.
//!
//! Standard error: every message goes through [`to_stderr`] (the crate's
//! `eprintln!` is that function, see main.rs), which loses the message when
//! standard error is closed or full instead of panicking as std's does.

use crate::cli::ColorChoice;
use crate::error::AppError;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether to colour standard output: `--color always|never`, or on a
/// terminal only (colored's rule: CLICOLOR_FORCE forces it on, NO_COLOR
/// off), and never for TERM=dumb or when the output goes to a file.
pub fn colour(choice: ColorChoice, to_file: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let forced = std::env::var("CLICOLOR_FORCE").is_ok_and(|v| v != "0");
            let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
            forced || (!to_file && !dumb && colored::control::SHOULD_COLORIZE.should_colorize())
        }
    }
}

/// Set once standard output's reader has gone away.
static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Whether standard output's reader has gone away (`| head -3`): a command
/// with more to run (`scenario --all`) may stop, nobody reads it.
pub fn reader_gone() -> bool {
    READER_GONE.load(Ordering::Relaxed)
}

/// Columns of the terminal standard output is, when the output goes there
/// (not to `-o FILE`, a pipe or a file). Never below 40: narrower than that
/// the timeline is folded as for 40 columns.
pub fn terminal_columns(to_file: bool) -> Option<usize> {
    if to_file {
        return None;
    }
    hc_sys::term::stdout_columns()
        .filter(|w| *w > 0)
        .map(|w| w.max(40))
}

/// The hint printed under a timeline folded to fit a narrow terminal.
pub fn narrow_hint(columns: usize, needed: Option<usize>) -> String {
    let needs = match needed {
        Some(n) => format!(", the timeline needs {n}: its long lines were folded under themselves"),
        None => ": the timelines' long lines were folded under themselves".into(),
    };
    let hint = format!(
        "hint: this terminal is {columns} columns wide{needs}. \
         `--view ladder` draws the same run as a picture 80 columns wide; \
         `-o FILE` saves the timeline unfolded."
    );
    hc_render::paint::fit_line(&hint, columns, 4).join("\n")
}

/// Writes `text` to standard output.
pub fn print(text: &str) -> Result<(), AppError> {
    if reader_gone() {
        return Ok(());
    }
    let mut o = io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            READER_GONE.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(AppError::io("cannot write to standard output".into(), e)),
    }
}

/// One line on standard error; if standard error cannot take it, it is lost
/// (there is nowhere left to say so), and the run goes on.
pub fn to_stderr(args: std::fmt::Arguments<'_>) {
    let mut e = io::stderr().lock();
    let _ = e.write_fmt(args).and_then(|()| e.write_all(b"\n"));
}

/// What clap has to say instead of a parsed command line: --help and
/// --version on standard output (through [`print`]: exit 0, or 2 when it
/// cannot be written), usage errors on standard error with exit 2.
pub fn clap_message(e: &clap::Error) -> ExitCode {
    let styled = e.render();
    if e.use_stderr() {
        let text = if io::stderr().is_terminal() {
            styled.ansi().to_string()
        } else {
            styled.to_string()
        };
        let mut err = io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        return ExitCode::from(crate::error::EXIT_USAGE);
    }
    let text = if io::stdout().is_terminal() {
        styled.ansi().to_string()
    } else {
        styled.to_string()
    };
    match print(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    }
}

/// Writes `text` to standard error, when standard output carries
/// something else (the pcapng with `-w -`); a failure is an error (exit 2).
pub fn print_stderr(text: &str) -> Result<(), AppError> {
    let mut e = io::stderr().lock();
    match e.write_all(text.as_bytes()).and_then(|()| e.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(AppError::io("cannot write to standard error".into(), err)),
    }
}

/// Writes `bytes` to standard output (a picture, a man page).
pub fn print_bytes(bytes: &[u8]) -> Result<(), AppError> {
    print(&String::from_utf8_lossy(bytes))
}

/// Prints the rendered run, or saves it to `out` (handed to the sudo user like the capture).
pub fn emit(text: &str, out: Option<&Path>) -> Result<(), AppError> {
    let Some(path) = out else {
        return print(text);
    };
    let fail = |e| AppError::io(format!("cannot write {}", path.display()), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)?;
    let _ = hc_sys::owner::give_to_invoking_user(path);
    eprintln!("wrote {}", path.display());
    Ok(())
}
