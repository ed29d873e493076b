//! `hc-trace exec` in words and JSON: each connection's timeline, then how
//! the program ended.

use crate::paint::{Ink, Style};
use crate::{json, text};
use hc_core::exec::ExecRun;
use hc_core::model::exec::ExitStatus;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// `--format json` of exec: the program, then one run document per connection.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ExecDocument {
    /// The run schema's version (2).
    pub schema: u32,
    pub exec: ExecDoc,
    /// One document per connection, in the order they began.
    pub connections: Vec<json::Document>,
    /// Socket calls on no connection (a listener that served none...).
    pub unattached: Option<json::Document>,
    pub capture: ExecCaptureDoc,
}

/// The traced program and how it ended.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ExecDoc {
    pub command: Vec<String>,
    pub pid: u32,
    pub status: StatusDoc,
    /// What hc-trace exits with: the program's code, or 128 + its signal.
    pub exit_code: u8,
    pub timed_out: bool,
    pub timeout_s: Option<f64>,
    /// The outcome in words.
    pub outcome: String,
    /// Stops the tracer handled.
    pub stops: u64,
}

/// The program's exit code, or the signal that ended it.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(untagged)]
pub enum StatusDoc {
    Code { code: i32 },
    Signal { signal: i32, signal_name: String },
}

#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ExecCaptureDoc {
    pub iface: String,
    /// Packets kept (the program's own connections).
    pub packets: usize,
    /// Packets captured in all.
    pub seen: usize,
    pub dropped: u32,
    pub file: Option<String>,
    pub file_error: Option<String>,
}

/// The exec document, typed.
pub fn typed(run: &ExecRun) -> ExecDocument {
    ExecDocument {
        schema: json::SCHEMA,
        exec: ExecDoc {
            command: run.command.clone(),
            pid: run.pid,
            status: match &run.status {
                ExitStatus::Code(c) => StatusDoc::Code { code: *c },
                ExitStatus::Signal(s, name) => StatusDoc::Signal {
                    signal: *s,
                    signal_name: name.clone(),
                },
            },
            exit_code: run.exit_code(),
            timed_out: run.timed_out,
            timeout_s: run.timeout.map(|t| t.as_secs_f64()),
            outcome: outcome_line(run),
            stops: run.stops,
        },
        connections: run.sections.iter().map(json::typed).collect(),
        unattached: run.unattached.as_ref().map(json::typed),
        capture: ExecCaptureDoc {
            iface: run.iface.clone(),
            packets: run.kept,
            seen: run.packets,
            dropped: run.counters.dropped + run.counters.if_dropped,
            file: run.file.as_ref().map(|p| p.display().to_string()),
            file_error: run.file_error.clone(),
        },
    }
}

/// `--format json`: the run, with one schema-2 document per connection (keys sorted).
pub fn document(run: &ExecRun) -> Value {
    serde_json::to_value(typed(run)).unwrap_or(Value::Null)
}

/// The JSON Schema of [`ExecDocument`] (docs/schema/exec.schema.json).
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(ExecDocument)).unwrap_or(Value::Null)
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
