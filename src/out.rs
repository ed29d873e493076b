//! Standard output and `-o FILE`: every byte hc-trace prints goes through here.
//!
//! A reader that goes away (`hc-trace list | head -1`) ends the output
//! quietly, as grep and ripgrep do; any other write error (a full disk
//! behind `> file`) is an error with exit 2. Nothing here panics.

use crate::cli::ColorChoice;
use crate::error::AppError;
use std::io::{self, Write};
use std::path::Path;

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
    let mut o = io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(AppError::io("cannot write to standard output".into(), e)),
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
