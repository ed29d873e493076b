//! `hc-trace exec` in words and JSON: each connection's timeline, then how
//! the program ended.

use crate::paint::{Ink, Style};
use crate::{json, text};
use hc_core::exec::ExecRun;
use hc_core::model::exec::{ExitStatus, Stopped};
use hc_core::report::Report;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write;
use std::io;

/// Every connection's timeline, then how the program ended.
pub fn render_text(run: &ExecRun, style: &Style) -> String {
    let mut out = String::new();
    if let Some(u) = &run.unattached {
        out.push_str(&section_text(u, style));
    }
    for r in &run.sections {
        out.push_str(&section_text(r, style));
    }
    out.push_str(&end_text(run, run.sections.len(), style));
    out
}

/// One connection's timeline (or the calls on no connection), as
/// [`render_text`] prints it.
pub fn section_text(r: &Report, style: &Style) -> String {
    let mut s = text::render_with(r, style);
    s.push('\n');
    s
}

/// What follows the sections: how the program ended, how many
/// connections and packets, where the capture went.
pub fn end_text(run: &ExecRun, sections: usize, style: &Style) -> String {
    let mut out = String::new();
    if sections == 0 {
        let _ = writeln!(
            out,
            "No TCP connection: the program made no TCP socket call that reached the wire."
        );
    }
    match (&run.file, &run.file_error) {
        (Some(f), _) => {
            let _ = writeln!(
                out,
                "{} {}  {}",
                style.pen().ink("saved   ", Ink::BOLD),
                f.display(),
                style.pen().ink(
                    format!(
                        "(open it in Wireshark: each packet's comment is its cause; or: tshark -r {} -T fields -e frame.number -e frame.comment)",
                        f.display()
                    ),
                    Ink::DIM
                )
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(
                out,
                "{} {}",
                style.pen().ink("saved   ", Ink::BOLD),
                style.pen().ink(format!("nothing: {e}"), Ink::RED)
            );
        }
        (None, None) => {}
    }
    let mut line = outcome_line(run);
    let _ = write!(
        line,
        " · {} connection{} · {} packets captured on {}",
        sections,
        if sections == 1 { "" } else { "s" },
        run.kept,
        run.iface
    );
    if run.kept != run.packets {
        let _ = write!(line, " (of {} seen)", run.packets);
    }
    let p = style.pen();
    let line = if run.stopped.is_some() {
        p.ink(line, Ink::RED.bold())
    } else {
        p.ink(line, Ink::BOLD)
    };
    let _ = writeln!(out, "{line}");
    out
}

/// `--view all`: every connection's events on one clock (ms from the
/// run's first event), each line led by its connection's number; `#N`
/// names event N of the same connection, as in its own timeline.
pub fn merged_text(run: &ExecRun, sections: &[Report], style: &Style) -> String {
    let p = style.pen();
    let mut out = String::new();
    let t0 = sections
        .iter()
        .chain(run.unattached.as_ref())
        .filter(|r| !r.timeline.events.is_empty())
        .map(|r| r.timeline.t0)
        .min()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "{} {} — {} connection{} on one clock: {}",
        p.ink("hc-trace", Ink::BOLD),
        p.ink("exec", Ink::BOLD),
        sections.len(),
        if sections.len() == 1 { "" } else { "s" },
        run.command.join(" ")
    );
    if let Some(first) = sections.first().or(run.unattached.as_ref()) {
        let _ = writeln!(out, "  {}", first.namespace);
    }
    for (n, r) in sections.iter().enumerate() {
        let (c, s) = (r.client, r.server);
        let ends = match (c, s) {
            (Some(c), Some(s)) => format!("client {c} → server {s}"),
            _ => r.teaches.clone(),
        };
        let _ = writeln!(
            out,
            "  {}",
            p.ink(format!("c{:<3} {ends}", n + 1), Ink::DIM)
        );
    }
    let _ = writeln!(
        out,
        "  {}",
        p.ink(
            "Each line is led by its connection (c1, c2, … as listed above; c0: calls on no connection); \"#N\" names event N of the same connection.\n  \
             Times are ms from the run's first event, the same clock for every connection.",
            Ink::DIM
        )
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "{}",
        p.ink(
            format!("{:<4} {:>4} {:>9}  {:<6}  what", "conn", "#", "ms", "who"),
            Ink::DIM
        )
    );
    let mut lines: Vec<(i64, usize, usize, String)> = Vec::new();
    let all = run
        .unattached
        .iter()
        .map(|u| (0, u))
        .chain(sections.iter().enumerate().map(|(n, r)| (n + 1, r)));
    for (n, r) in all {
        for (k, (ts, text)) in text::event_lines(r, style, t0).into_iter().enumerate() {
            lines.push((ts, n, k, text));
        }
    }
    lines.sort_by_key(|(ts, n, k, _)| (*ts, *n, *k));
    for (_, n, _, text) in lines {
        let tag = p.ink(format!("c{n:<3}"), Ink::DIM);
        for (j, l) in text.lines().enumerate() {
            if j == 0 {
                let _ = writeln!(out, "{tag} {l}");
            } else {
                let _ = writeln!(out, "     {l}");
            }
        }
    }
    out.push('\n');
    out.push_str(&end_text(run, sections.len(), style));
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
    /// The tracer that ran the program: `ebpf` (no stops) or `ptrace`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub backend: Option<String>,
    /// `--backend auto` fell back to ptrace: why eBPF could not load.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ebpf_unavailable: Option<String>,
}

/// The program's exit code, or the signal that ended it.
#[derive(Serialize, Deserialize, JsonSchema, Debug)]
#[serde(untagged)]
pub enum StatusDoc {
    Code {
        code: i32,
    },
    Signal {
        signal: i32,
        signal_name: String,
    },
    /// `attach`: the process was still running when the trace ended.
    Running {
        running: bool,
    },
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
        exec: exec_doc(run),
        connections: run.sections.iter().map(json::typed).collect(),
        unattached: run.unattached.as_ref().map(json::typed),
        capture: capture_doc(run),
    }
}

/// The program and how it ended.
pub fn exec_doc(run: &ExecRun) -> ExecDoc {
    ExecDoc {
        command: run.command.clone(),
        pid: run.pid,
        status: match &run.status {
            ExitStatus::Code(c) => StatusDoc::Code { code: *c },
            ExitStatus::Signal(s, name) => StatusDoc::Signal {
                signal: *s,
                signal_name: name.clone(),
            },
            ExitStatus::Running => StatusDoc::Running { running: true },
        },
        exit_code: run.exit_code(),
        timed_out: run.timed_out,
        timeout_s: run.timeout.map(|t| t.as_secs_f64()),
        outcome: outcome_line(run),
        stops: run.stops,
        backend: run.backend.as_ref().map(|b| b.name.clone()),
        ebpf_unavailable: run
            .backend
            .as_ref()
            .and_then(|b| b.ebpf_unavailable.clone()),
    }
}

/// What was captured, and where it went.
pub fn capture_doc(run: &ExecRun) -> ExecCaptureDoc {
    ExecCaptureDoc {
        iface: run.iface.clone(),
        packets: run.kept,
        seen: run.packets,
        dropped: run.counters.dropped + run.counters.if_dropped,
        file: run.file.as_ref().map(|p| p.display().to_string()),
        file_error: run.file_error.clone(),
    }
}

/// The exec document written as it goes, one connection at a time, so a
/// run of thousands of connections is never held whole in memory: each
/// connection as it is built, then the program (how it ended is known
/// last), the calls on no connection and the capture. The same document as
/// [`document`], its keys in another order.
pub struct JsonStream<W: io::Write> {
    w: W,
    first: bool,
}

impl<W: io::Write> JsonStream<W> {
    pub fn start(mut w: W) -> io::Result<Self> {
        write!(
            w,
            "{{\n  \"schema\": {},\n  \"connections\": [",
            json::SCHEMA
        )?;
        Ok(JsonStream { w, first: true })
    }

    /// One more connection.
    pub fn connection(&mut self, r: &Report) -> io::Result<()> {
        let sep: &[u8] = if self.first { b"\n    " } else { b",\n    " };
        self.first = false;
        self.w.write_all(sep)?;
        let doc = serde_json::to_string_pretty(&json::typed(r)).map_err(io::Error::other)?;
        self.w.write_all(doc.replace('\n', "\n    ").as_bytes())
    }

    /// The program, the calls on no connection, the capture, and the end of
    /// the document.
    pub fn finish(mut self, run: &ExecRun) -> io::Result<W> {
        let close: &[u8] = if self.first { b"]" } else { b"\n  ]" };
        self.w.write_all(close)?;
        self.w.write_all(b",\n  \"exec\": ")?;
        indented(&mut self.w, &exec_doc(run))?;
        self.w.write_all(b",\n  \"unattached\": ")?;
        indented(&mut self.w, &run.unattached.as_ref().map(json::typed))?;
        self.w.write_all(b",\n  \"capture\": ")?;
        indented(&mut self.w, &capture_doc(run))?;
        self.w.write_all(b"\n}\n")?;
        Ok(self.w)
    }
}

/// `value` as pretty JSON, its lines indented to sit one level in.
fn indented(w: &mut impl io::Write, value: &impl Serialize) -> io::Result<()> {
    let doc = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    w.write_all(doc.replace('\n', "\n  ").as_bytes())
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
    match run.backend.as_ref().map(|b| b.name.as_str()) {
        Some("ebpf") => {
            s.push_str(" · traced with eBPF (tp_btf on the syscall tracepoints: no stops)")
        }
        Some("ptrace") => {
            let _ = write!(s, " · traced with ptrace ({} stops)", run.stops);
            if let Some(why) = run
                .backend
                .as_ref()
                .and_then(|b| b.ebpf_unavailable.as_ref())
            {
                let _ = write!(s, "; eBPF could not load: {why}");
            }
        }
        _ => {}
    }
    let grace = hc_core::exec::KILL_GRACE.as_secs();
    match &run.stopped {
        Some(Stopped::Timeout) => {
            let _ = write!(
                s,
                " — still running at --timeout {}: hc-trace sent SIGTERM (and SIGKILL {grace} s later if needed)",
                hc_core::time::secs(run.timeout),
            );
        }
        Some(Stopped::Signal(sig)) => {
            let _ = write!(
                s,
                " — hc-trace got {sig} and passed it on to the program (and SIGKILL {grace} s later if needed)"
            );
        }
        Some(Stopped::SecondInterrupt) => {
            let _ = write!(s, " — hc-trace sent SIGKILL after a second Ctrl-C");
        }
        Some(Stopped::Detached(why)) => {
            let _ = write!(s, " — attached; hc-trace stopped tracing it ({why})");
        }
        None => {}
    }
    s
}
