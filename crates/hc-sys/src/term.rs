//! The terminal standard output is, when it is one: how many columns it has.

use std::io::IsTerminal;

/// Columns of the terminal standard output writes to; None when standard
/// output is not a terminal (a pipe, a file) or the kernel does not say.
pub fn stdout_columns() -> Option<usize> {
    let out = std::io::stdout();
    if !out.is_terminal() {
        return None;
    }
    // TIOCGWINSZ on the descriptor, through the crate clap uses for --help
    // (which says nothing when the terminal reports no rows); then $COLUMNS,
    // as the shell keeps it.
    terminal_size::terminal_size_of(&out)
        .map(|(w, _)| usize::from(w.0))
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
}
