//! `hc-trace exec` in words and JSON: each connection's timeline, then how
//! the program ended.

use crate::paint::{Ink, Style};
use crate::{json, text};
use hc_core::exec::ExecRun;
use hc_core::model::exec::ExitStatus;
use serde_json::{json, Value};
use std::fmt::Write;

/// Every connection's timeline, then how the program ended.
pub fn render_text(run: &ExecRun, style: &Style) -> String {
    let mut out = String::new();
    if let Some(u) = &run.unattached {
        out.push_str(&text::render_with(u, style));
        out.push('\n');
    }
    for r in &run.sections {
        out.push_str(&text::render_with(r, style));
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
    let p = style.pen();
    let line = if run.timed_out {
        p.ink(line, Ink::RED.bold())
    } else {
        p.ink(line, Ink::BOLD)
    };
    let _ = writeln!(out, "{line}");
    out
}

/// `--format json`: the run, with one schema-1 document per connection.
pub fn document(run: &ExecRun) -> Value {
    let status = match &run.status {
        ExitStatus::Code(c) => json!({"code": c}),
        ExitStatus::Signal(s, name) => {
            json!({"signal": s, "signal_name": name})
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

/// "program ./client (pid 42): exit status 0" and the timeout, if it struck.
pub fn outcome_line(run: &ExecRun) -> String {
    let mut s = format!(
        "program {} (pid {}): {}",
        run.command.first().map_or("?", String::as_str),
        run.pid,
        run.status.describe()
    );
    if run.timed_out {
        let _ = write!(
            s,
            " — still running at --timeout {}: hc-trace sent SIGTERM (and SIGKILL {} s later if needed)",
            hc_core::time::secs(run.timeout),
            hc_core::exec::KILL_GRACE.as_secs()
        );
    }
    s
}
