//! The `hc-trace exec` front end: namespace, run, output, exit status.

use super::{outcome_line, ExecOptions, ExecRun};
use crate::cli::{ExecArgs, Format};
use crate::render::{json, text};
use crate::sandbox::{self, NetnsChoice, SandboxKind};
use colored::Colorize;
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

const EXIT_USAGE: u8 = 2;

/// Ctrl-C reaches the whole foreground process group: the program decides
/// what to do with it, and hc-trace must live on to show what happened. A
/// handler (not SIG_IGN) so the program starts with the default action:
/// exec resets handled signals, but keeps ignored ones ignored.
extern "C" fn on_sigint(_: libc::c_int) {}

fn keep_running_on_sigint() {
    // SAFETY: installs an async-signal-safe handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

/// Runs `hc-trace exec` and returns the exit status: the program's, or 2
/// when hc-trace itself failed. Must be called before any thread exists.
pub fn command(a: &ExecArgs) -> u8 {
    let timeout = match a.timeout {
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            eprintln!("error: --timeout {t}: give a positive number of seconds");
            return EXIT_USAGE;
        }
        None => None,
    };
    if let Err(e) = super::tracer::resolve(&a.program[0]) {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    let mut rootless = false;
    let namespace = if a.host {
        "the host's network namespace (--host)".to_string()
    } else {
        // Before any thread: unshare(CLONE_NEWUSER) refuses multi-threaded processes.
        match sandbox::enter(&NetnsChoice::Private) {
            Ok(s) => {
                rootless = matches!(s.kind, SandboxKind::PrivateRootless);
                s.describe()
            }
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    };
    keep_running_on_sigint();
    let opts = ExecOptions {
        argv: a.program.clone(),
        timeout,
        iface: a
            .iface
            .clone()
            .unwrap_or_else(|| if a.host { "any" } else { "lo" }.to_string()),
        host: a.host,
        save: (!a.no_save).then(|| {
            a.write
                .clone()
                .unwrap_or_else(|| PathBuf::from("captures/exec.pcapng"))
        }),
        namespace,
        // Root on the host (not root of a user namespace) may read tracefs.
        kernel_trace: !rootless && !a.no_kernel,
        kernel_trace_off_why: if a.no_kernel {
            "switched off with --no-kernel".into()
        } else {
            "reading kernel tracepoints needs root (run with sudo); without it the timeline shows what calls and the capture saw".into()
        },
        record: a.record.clone(),
    };
    let run = match super::run(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    match a.format {
        // Pictures draw one run; exec has one section per connection.
        Format::Text | Format::Mermaid | Format::Svg => print!("{}", render_text(&run)),
        Format::Json => match serde_json::to_string_pretty(&document(&run)) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        },
    }
    if run.counters.dropped + run.counters.if_dropped > 0 {
        eprintln!(
            "warning: the capture dropped {} packets: the timelines are incomplete",
            run.counters.dropped + run.counters.if_dropped
        );
    }
    run.exit_code()
}

/// Every connection's timeline, then how the program ended.
pub fn render_text(run: &ExecRun) -> String {
    let mut out = String::new();
    if let Some(u) = &run.unattached {
        out.push_str(&text::render(u));
        out.push('\n');
    }
    for r in &run.sections {
        out.push_str(&text::render(r));
        out.push('\n');
    }
    if run.sections.is_empty() {
        let _ = writeln!(
            out,
            "No TCP connection: the program made no TCP socket call that reached the wire."
        );
    }
    let mut line = outcome_line(run);
    let _ = write!(
        line,
        " · {} connection{} · {} packets captured on {}",
        run.sections.len(),
        if run.sections.len() == 1 { "" } else { "s" },
        run.kept,
        run.iface
    );
    if run.kept != run.packets {
        let _ = write!(line, " (of {} seen)", run.packets);
    }
    let line = if run.timed_out {
        line.red().bold().to_string()
    } else {
        line.bold().to_string()
    };
    let _ = writeln!(out, "{line}");
    out
}

/// `--format json`: the run, with one schema-1 document per connection.
pub fn document(run: &ExecRun) -> Value {
    let status = match run.status {
        super::ExitStatus::Code(c) => json!({"code": c}),
        super::ExitStatus::Signal(s) => {
            json!({"signal": s, "signal_name": super::tracer::signal_name(s)})
        }
    };
    json!({
        "schema": 1,
        "exec": {
            "command": run.command,
            "pid": run.pid,
            "status": status,
            "exit_code": run.exit_code(),
            "timed_out": run.timed_out,
            "timeout_s": run.timeout.map(|t| t.as_secs_f64()),
            "outcome": outcome_line(run),
            "stops": run.stops,
        },
        "connections": run.sections.iter().map(json::document).collect::<Vec<_>>(),
        "unattached": run.unattached.as_ref().map(json::document),
        "capture": {
            "iface": run.iface,
            "packets": run.kept,
            "seen": run.packets,
            "dropped": run.counters.dropped + run.counters.if_dropped,
            "file": run.file.as_ref().map(|p| p.display().to_string()),
            "file_error": run.file_error,
        },
    })
}
