//! `hc-trace exec`: an unmodified program's socket calls joined to the
//! segments they caused.
//!
//! ```text
//! capture (libpcap) on ─ tracer (ptrace + seccomp: calls with results)
//!   ─ capture off ─ sections (one per connection) ─ correlate each ─ render
//! ```
//!
//! - [`tracer`]: the ptrace loop, fork/exec with the seccomp filter.
//! - [`syscalls`]: which calls are traced and how their arguments read.
//! - [`fdmap`]: descriptor -> socket -> connection across dup, fork, exec.
//! - [`diag`]: a connection's state by address, for closed descriptors.
//! - [`sections`]: the trace cut into one timeline per connection.

pub mod command;
pub mod diag;
pub mod fdmap;
pub mod sections;
pub mod syscalls;
pub mod tracer;

use crate::capture::{CaptureConfig, CaptureError, LiveCapture};
use crate::ktrace::KernelTrace;
use crate::pcapng::{write_pcapng, PcapngMeta};
use crate::render::annotations;
use crate::report::{PcapCounters, Report};
pub use command::command;
use std::ffi::OsString;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thiserror::Error;
pub use tracer::ExitStatus;
use tracer::{TraceConfig, TraceError};

/// Large enough for the bursts of a program making thousands of short
/// connections while the collector thread sleeps between blocks. Blocks
/// (not immediate mode) pack packets by size, so this holds tens of
/// thousands of small segments; the kernel zeroes the whole ring when the
/// capture starts, so a larger one costs time on every run.
const CAPTURE_BUFFER: i32 = 64 << 20;
const SNAPLEN: i32 = 65_600;
/// Tracefs ring per CPU for exec: ~100,000 state changes of 10,000
/// connections fit without overwriting the first.
const KTRACE_BUFFER_KB: u32 = 16 << 10;

#[derive(Debug, Error)]
pub enum ExecError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("cannot write the recording: {0}")]
    Record(#[from] std::io::Error),
    #[error("{source}{hint}")]
    Capture {
        #[source]
        source: CaptureError,
        hint: String,
    },
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub argv: Vec<OsString>,
    pub timeout: Option<Duration>,
    /// Capture interface: `lo` in the private namespace, `any` (or -i) with --host.
    pub iface: String,
    /// --host: the program shares the host's network, so only its own
    /// connections are kept.
    pub host: bool,
    pub save: Option<PathBuf>,
    /// Where the program ran, in words.
    pub namespace: String,
    /// Read the kernel's tracepoints (RST reasons, state changes).
    pub kernel_trace: bool,
    /// Why not, when kernel_trace is false (said in each footer).
    pub kernel_trace_off_why: String,
    /// Write everything the run observed here (JSON), for replay in tests.
    pub record: Option<PathBuf>,
}

/// One traced run, ready to render.
#[derive(Debug)]
pub struct ExecRun {
    pub command: Vec<String>,
    pub pid: u32,
    pub status: ExitStatus,
    pub timed_out: bool,
    pub timeout: Option<Duration>,
    /// One report per connection, in the order they began.
    pub sections: Vec<Report>,
    /// Socket calls that belong to no connection (a listener's own calls
    /// when it served none, a socket that never connected).
    pub unattached: Option<Report>,
    pub stops: u64,
    pub packets: usize,
    pub kept: usize,
    pub counters: PcapCounters,
    pub iface: String,
    pub linktype: crate::model::LinkType,
    pub snaplen: u32,
    pub file: Option<PathBuf>,
    pub file_error: Option<String>,
}

/// Everything one traced run observed, before any of it was interpreted
/// (see [`crate::session`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ExecRecording {
    pub version: u32,
    pub command: Vec<String>,
    pub pid: u32,
    pub status: ExitStatus,
    pub timed_out: bool,
    pub timeout: Option<Duration>,
    pub stops: u64,
    pub namespace: String,
    pub iface: String,
    /// Every captured packet belongs to the program (a private namespace).
    pub keep_all: bool,
    pub counters: PcapCounters,
    pub snaplen: u32,
    pub linktype: crate::model::LinkType,
    pub packets: Vec<crate::model::RawPacket>,
    pub calls: Vec<tracer::Traced>,
    pub socks: Vec<fdmap::Sock>,
    /// Each socket's state in the kernel's table when the program had ended.
    pub states: Vec<Option<crate::model::StateObs>>,
    pub kernel: sections::Kernel,
}

/// The run of a recording: one report per connection, and the packets kept.
pub fn assemble(rec: ExecRecording) -> (ExecRun, Vec<crate::model::RawPacket>) {
    let kernel = rec.kernel.clone();
    assemble_with(rec, move || kernel)
}

/// As [`assemble`], with the kernel's events read by `kernel` (on another
/// thread, while the packets are parsed).
fn assemble_with(
    rec: ExecRecording,
    kernel: impl FnOnce() -> sections::Kernel,
) -> (ExecRun, Vec<crate::model::RawPacket>) {
    let ctx = sections::Context {
        command: rec.command.join(" "),
        namespace: rec.namespace.clone(),
        iface: rec.iface.clone(),
        counters: rec.counters,
        snaplen: rec.snaplen,
        timed_out: rec.timed_out.then_some(rec.timeout).flatten(),
        keep_all: rec.keep_all,
    };
    let total = rec.packets.len();
    let built = sections::build(
        rec.calls,
        &rec.socks,
        &rec.states,
        rec.linktype,
        rec.packets,
        kernel,
        &ctx,
    );
    let run = ExecRun {
        command: rec.command,
        pid: rec.pid,
        status: rec.status,
        timed_out: rec.timed_out,
        timeout: rec.timeout,
        sections: built.sections,
        unattached: built.unattached,
        stops: rec.stops,
        packets: total,
        kept: built.packets.len(),
        counters: rec.counters,
        iface: rec.iface,
        linktype: rec.linktype,
        snaplen: rec.snaplen,
        file: None,
        file_error: None,
    };
    (run, built.packets)
}

impl ExecRun {
    /// What hc-trace exits with: the program's own status.
    pub fn exit_code(&self) -> u8 {
        self.status.shell_code().clamp(0, 255) as u8
    }
}

/// Waits until no segment has arrived for `quiet` (at most `max`), so the
/// segments sent when the program's last sockets closed are in the capture.
fn settle(cap: &LiveCapture, quiet: Duration, max: Duration) {
    let start = Instant::now();
    let mut last = cap.packet_count();
    let mut since = Instant::now();
    while start.elapsed() < max {
        std::thread::sleep(Duration::from_millis(5));
        let now = cap.packet_count();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

/// Runs the program under the tracer with the capture on.
pub fn run(opts: &ExecOptions) -> Result<ExecRun, ExecError> {
    let cfg = CaptureConfig {
        iface: opts.iface.clone(),
        filter: "tcp".into(),
        snaplen: SNAPLEN,
        buffer_bytes: CAPTURE_BUFFER,
        // Nothing waits for single packets during the trace; settle() only
        // needs the count to stop growing, and blocks are handed over
        // within the read timeout (20 ms), well inside its quiet period.
        immediate: false,
    };
    let capture = LiveCapture::start(&cfg).map_err(|source| ExecError::Capture {
        hint: if opts.host {
            format!(
                "\nhint: --host captures on {} in the host's namespace, which needs root \
                 (or CAP_NET_RAW); without --host the program runs in a private namespace",
                opts.iface
            )
        } else {
            String::new()
        },
        source,
    })?;
    // Every port: the program's are known only once it ran. Per CPU; about
    // ten state changes per connection, read only at the end.
    let ktrace = opts
        .kernel_trace
        .then(|| KernelTrace::start_all(KTRACE_BUFFER_KB));
    let t0 = Instant::now();
    let traced = tracer::trace(&TraceConfig {
        argv: opts.argv.clone(),
        timeout: opts.timeout,
    });
    let mut traced = match traced {
        Ok(t) => t,
        Err(e) => {
            let _ = capture.stop();
            return Err(e.into());
        }
    };
    let t1 = Instant::now();
    settle(&capture, Duration::from_millis(60), Duration::from_secs(1));
    let result = capture.stop().map_err(|source| ExecError::Capture {
        source,
        hint: String::new(),
    })?;
    // Reading and parsing the trace (~0.7 s for 100,000 events: the kernel
    // formats every line) runs on another thread while the packets are
    // parsed and cut into connections.
    let off_why = opts.kernel_trace_off_why.clone();
    let tids = std::mem::take(&mut traced.tids);
    let reader = std::thread::Builder::new()
        .name("hc-trace-ktrace".into())
        .spawn(move || match ktrace {
            None => sections::Kernel::Off(off_why),
            Some(Err(e)) => sections::Kernel::Off(e.to_string()),
            Some(Ok(kt)) => match kt.events_by(|tid| tids.contains(&tid)) {
                Ok(ev) => sections::Kernel::Events(ev),
                Err(e) => sections::Kernel::Off(e.to_string()),
            },
        });
    let kernel = move || match reader {
        Ok(h) => h.join().unwrap_or_else(|_| {
            sections::Kernel::Off("the thread reading the trace panicked".into())
        }),
        Err(e) => sections::Kernel::Off(format!("cannot start a thread to read the trace: {e}")),
    };
    let t2 = Instant::now();
    let counters = PcapCounters {
        received: result.stats.received,
        dropped: result.stats.dropped,
        if_dropped: result.stats.if_dropped,
    };
    let command: Vec<String> = opts
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let states = sections::final_states(&traced.socks);
    let mut rec = ExecRecording {
        version: crate::session::RECORDING_VERSION,
        command,
        pid: traced.pid,
        status: traced.status,
        timed_out: traced.timed_out,
        timeout: opts.timeout,
        stops: traced.stops,
        namespace: opts.namespace.clone(),
        iface: cfg.iface.clone(),
        keep_all: !opts.host,
        counters,
        snaplen: result.snaplen,
        linktype: result.linktype,
        packets: result.packets,
        calls: traced.calls,
        socks: traced.socks,
        states,
        kernel: sections::Kernel::Off(String::new()),
    };
    let (mut run, packets) = match &opts.record {
        Some(path) => {
            rec.kernel = kernel();
            let json = serde_json::to_string_pretty(&rec).map_err(std::io::Error::other)?;
            std::fs::write(path, json + "\n")?;
            assemble(rec)
        }
        None => assemble_with(rec, kernel),
    };
    // A documented switch (README, "exec performance"): where a slow run spends its time.
    if std::env::var_os("HC_TRACE_TIMING").is_some() {
        eprintln!(
            "timing: trace {:?}, settle+stop {:?}, build (with the kernel trace) {:?}",
            t1 - t0,
            t2 - t1,
            t2.elapsed()
        );
    }
    let result_linktype = run.linktype;
    let result_snaplen = run.snaplen;
    if let Some(path) = &opts.save {
        let meta = PcapngMeta {
            linktype: result_linktype,
            snaplen: result_snaplen,
            iface: cfg.iface.clone(),
            iface_description: opts.namespace.clone(),
            section_comment: section_comment(&run),
            application: format!("hc-trace {}", env!("CARGO_PKG_VERSION")),
        };
        let mut comments = vec![None; packets.len()];
        let several = run.sections.len() > 1;
        for (n, r) in run.sections.iter().enumerate() {
            for (i, c) in annotations::frame_comments(r, packets.len())
                .into_iter()
                .enumerate()
            {
                if let Some(c) = c {
                    comments[i] = Some(if several {
                        format!("[connection {}] {c}", n + 1)
                    } else {
                        c
                    });
                }
            }
        }
        match write_pcapng(path, &meta, &packets, &comments) {
            Ok(p) => run.file = Some(p),
            Err(e) => run.file_error = Some(e.to_string()),
        }
        for r in &mut run.sections {
            r.capture.file = run.file.clone();
            r.capture.file_error = run.file_error.clone();
        }
    }
    Ok(run)
}

/// The pcapng's section comment: the command, then each connection's calls.
fn section_comment(run: &ExecRun) -> String {
    let mut s = format!(
        "hc-trace {} exec: {}\n{}\nPacket comments give each segment's cause; #N numbers are event numbers within the packet's connection.\n",
        env!("CARGO_PKG_VERSION"),
        run.command.join(" "),
        outcome_line(run)
    );
    for (n, r) in run.sections.iter().enumerate() {
        let _ = writeln!(s, "Connection {}: {}", n + 1, r.teaches);
        for (i, _) in r.timeline.calls() {
            let _ = writeln!(s, "  #{i} {}", annotations::call_summary(r, i));
        }
    }
    s
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
            tracer::secs(run.timeout),
            tracer::KILL_GRACE.as_secs()
        );
    }
    s
}
