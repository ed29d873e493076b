//! The timeline on a real terminal: an 80-column pseudo-terminal made with
//! `script`, as a student's terminal window is.

mod common;
use common::*;
use std::process::Command;

/// Runs `args` on a pseudo-terminal of `cols` columns with TERM=`term`;
/// returns what the terminal showed (standard output and error), with the
/// carriage returns of the terminal taken out.
fn on_terminal(cols: usize, term: &str, args: &str) -> String {
    require_tool("script");
    let log = temp_path("typescript");
    let cmd = format!("stty rows 24 cols {cols}; TERM={term} {} {args}", bin());
    let status = Command::new("script")
        .args(["-qec", &cmd])
        .arg(&log)
        .env_remove("CLICOLOR_FORCE")
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script runs");
    assert!(status.success(), "{cmd}: {status}");
    let text = std::fs::read_to_string(&log).expect("the typescript");
    let _ = std::fs::remove_file(&log);
    text.replace('\r', "")
        .lines()
        .filter(|l| !l.starts_with("Script started") && !l.starts_with("Script done"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Columns a line takes: its characters without colour escapes.
fn columns(line: &str) -> usize {
    let mut n = 0;
    let mut esc = false;
    for ch in line.chars() {
        if esc {
            esc = ch != 'm';
        } else if ch == '\u{1b}' {
            esc = true;
        } else {
            n += 1;
        }
    }
    n
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn the_timeline_fits_an_80_column_terminal_and_hints_at_the_ladder() {
    require_root();
    let shown = on_terminal(80, "xterm-256color", "scenario shut-wr --no-save");
    let widest = shown.lines().map(columns).max().unwrap_or(0);
    assert!(widest <= 80, "{widest} columns:\n{shown}");
    assert!(
        shown.contains("hint: this terminal is 80 columns wide"),
        "{shown}"
    );
    assert!(shown.contains("`--view ladder`"), "{shown}");
    // Coloured, since it is a terminal, and every event is there.
    assert!(shown.contains('\u{1b}'), "a terminal gets colour");
    for n in 0..30 {
        assert!(
            shown
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{n} "))),
            "event #{n} is missing:\n{shown}"
        );
    }
    // Negative control: piped, the same timeline is printed whole, wider than 80.
    let piped = Command::new(bin())
        .args(["scenario", "shut-wr", "--no-save"])
        .output()
        .expect("runs");
    let piped = String::from_utf8_lossy(&piped.stdout);
    assert!(piped.lines().map(columns).max().unwrap_or(0) > 80);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn term_dumb_gets_no_colour() {
    require_root();
    let shown = on_terminal(120, "dumb", "scenario shut-wr --no-save");
    // (The descriptor's number depends on what the process opened before:
    // the eBPF source's maps and programs are descriptors too.)
    assert!(
        shown.contains("shutdown(") && shown.contains(", SHUT_WR)"),
        "{shown}"
    );
    assert!(
        !shown.contains('\u{1b}'),
        "TERM=dumb: no escape codes:\n{shown}"
    );
    // The ladder is the same: plain.
    let ladder = on_terminal(120, "dumb", "scenario shut-wr --no-save --view ladder");
    assert!(ladder.contains("ladder diagram") && !ladder.contains('\u{1b}'));
}

/// `analyze --conn` draws a timeline too: on a terminal, it fits it.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs the tools of scripts/setup and scripts/test (script): run scripts/test, or cargo test --features privileged"
)]
fn analyze_conn_fits_an_80_column_terminal() {
    let capture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/captures/shut-wr.pcapng");
    let shown = on_terminal(
        80,
        "xterm",
        &format!("analyze {} --conn 1", capture.display()),
    );
    assert!(shown.contains("recorded: "), "{shown}");
    let widest = shown.lines().map(columns).max().unwrap_or(0);
    assert!(widest <= 80, "{widest} columns:\n{shown}");
}
