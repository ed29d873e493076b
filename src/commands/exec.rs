//! `hc-trace exec -- PROGRAM`: a program traced while the capture runs,
//! one timeline per connection; hc-trace exits with the program's status.
//!
//! Once the program has ended, its connections are built, rendered and
//! written one at a time (text or JSON, to standard output or `-o FILE`),
//! so the output of thousands of connections is never held whole; only the
//! pcapng's comments are gathered, to be written with the capture at the end.

use crate::cli::{ExecArgs, ExecView, StreamFormat};
use crate::error::AppError;
use crate::session::{self, KernelPlan, Plan};
use crate::sources::capture::CaptureConfig;
use crate::sources::exec::{self, ExecSource, CAPTURE_BUFFER, KTRACE_BUFFER_KB, SNAPLEN};
use hc_core::capfile::pcapng::PcapngMeta;
use hc_core::exec::ExecRecording;
use hc_core::model::exec::Stopped;
use hc_core::report::Report;
use hc_core::session::RECORDING_VERSION;
use hc_render::annotations::ExecComments;
use hc_render::exec::JsonStream;
use hc_sys::netns::{self, NetnsChoice, SandboxKind};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Runs `hc-trace exec`. Must be called before any thread exists.
pub fn run(a: &ExecArgs, color: bool) -> Result<ExitCode, AppError> {
    let timeout = match a.timeout {
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(AppError::usage(format!(
                "--timeout {t}: give a positive number of seconds"
            )))
        }
        None => None,
    };
    if a.view == ExecView::All && a.format == StreamFormat::Json {
        return Err(AppError::usage(
            "--view all draws the text timeline; --format json already puts every event on one clock (t_ns)",
        ));
    }
    exec::resolve(&a.program[0]).map_err(AppError::trace)?;
    // An output file that cannot be written is found before the program runs.
    let out_file = a.out.as_deref().map(open_out).transpose()?;
    let mut rootless = false;
    let namespace = if a.host {
        "the host's network namespace (--host)".to_string()
    } else {
        // Before any thread: unshare(CLONE_NEWUSER) refuses multi-threaded processes.
        let s = netns::enter(&NetnsChoice::Private).map_err(AppError::sandbox)?;
        rootless = matches!(s.kind, SandboxKind::PrivateRootless);
        s.describe()
    };
    // SIGINT/SIGTERM sent to hc-trace go on to the program (the tracer's watcher).
    hc_sys::signals::forward_for_exec();
    let iface = a
        .iface
        .clone()
        .unwrap_or_else(|| if a.host { "any" } else { "lo" }.to_string());
    let plan = Plan {
        capture: CaptureConfig {
            iface: iface.clone(),
            filter: "tcp".into(),
            snaplen: SNAPLEN,
            buffer_bytes: CAPTURE_BUFFER,
            // Nothing waits for single packets during the trace; settling only
            // needs the count to stop growing, and blocks are handed over
            // within the read timeout (20 ms), well inside its quiet period.
            immediate: false,
        },
        // Every port: the program's are known only once it ran. Root on the
        // host (not root of a user namespace) may read tracefs.
        kernel: if a.no_kernel {
            Err("switched off with --no-kernel".into())
        } else if rootless {
            Err("reading kernel tracepoints needs root (run with sudo); without it the timeline shows what calls and the capture saw".into())
        } else {
            Ok(KernelPlan {
                port: None,
                buffer_kb: KTRACE_BUFFER_KB,
            })
        },
        quiet: Duration::from_millis(60),
        quiet_max: Duration::from_secs(1),
    };
    let t0 = Instant::now();
    let source = ExecSource {
        argv: a.program.clone(),
        timeout,
    };
    let captured = session::run(&plan, source).map_err(|e| {
        if a.host && e.kind == crate::error::Kind::Environment {
            e.hint(format!(
                "--host captures on {iface} in the host's namespace, which needs root \
                 (or CAP_NET_RAW); without --host the program runs in a private namespace"
            ))
        } else {
            e
        }
    })?;
    let t1 = Instant::now();
    let traced = captured.out;
    let rec = ExecRecording {
        version: RECORDING_VERSION,
        command: a
            .program
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        pid: traced.pid,
        status: traced.status,
        timed_out: traced.stopped == Some(Stopped::Timeout),
        timeout,
        stopped: traced.stopped,
        stops: traced.stops,
        namespace: namespace.clone(),
        iface,
        keep_all: !a.host,
        counters: captured.counters,
        snaplen: captured.snaplen,
        linktype: captured.linktype,
        packets: captured.packets,
        states: exec::final_states(&traced.socks),
        calls: traced.calls,
        socks: traced.socks,
        kernel: captured.kernel,
        untraced: traced.untraced,
    };
    if let Some(path) = &a.record {
        session::record(path, &rec)?;
    }
    let save = (!a.no_save).then(|| {
        a.write
            .clone()
            .unwrap_or_else(|| PathBuf::from("captures/exec.pcapng"))
    });
    let (mut run, prepared) = hc_core::exec::prepare(rec);
    let packets = prepared.packets;
    let mut comments = save
        .as_ref()
        .map(|_| ExecComments::new(packets.len(), prepared.sections.len() > 1));
    let style = hc_render::Style {
        color,
        fold: !a.no_fold,
        ..hc_render::Style::default()
    };
    let sink: Box<dyn Write> = match out_file {
        Some(f) => Box::new(BufWriter::with_capacity(1 << 16, f)),
        None => Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
    };
    let path = a.out.clone();
    let werr = |e: io::Error| write_error(path.as_deref(), e);
    let mut out = Out {
        w: sink,
        closed: false,
    };
    let mut n = 0;
    let mut merged: Vec<Report> = Vec::new();
    let mut json = None;
    if a.format == StreamFormat::Json {
        json = Some(JsonStream::start(out, &run).map_err(werr)?);
        out = Out::gone();
    } else if a.view == ExecView::Connections {
        if let Some(u) = &prepared.unattached {
            out.write_all(hc_render::exec::section_text(u, &style).as_bytes())
                .map_err(werr)?;
        }
    }
    run.unattached = prepared.unattached;
    for r in prepared.sections {
        super::scenario::warn_violations(&r.violations);
        if let Some(c) = &mut comments {
            c.add(&r);
        }
        n += 1;
        match &mut json {
            Some(j) => j.connection(&r).map_err(werr)?,
            None if a.view == ExecView::Connections => out
                .write_all(hc_render::exec::section_text(&r, &style).as_bytes())
                .map_err(werr)?,
            None => merged.push(r),
        }
    }
    // A documented switch (docs/performance.md): where a slow run spends its time.
    if std::env::var_os("HC_TRACE_TIMING").is_some() {
        eprintln!(
            "timing: trace, settle and stop {:?}, build and write {:?}",
            t1 - t0,
            t1.elapsed()
        );
    }
    if let (Some(path), Some(c)) = (&save, comments) {
        let (section_comment, frame_comments) = c.finish(&run);
        let meta = PcapngMeta {
            linktype: run.linktype,
            snaplen: run.snaplen,
            iface: run.iface.clone(),
            iface_description: namespace,
            section_comment,
            application: format!("hc-trace {}", env!("CARGO_PKG_VERSION")),
            os: hc_sys::system::os_name(),
        };
        match session::save(path, &meta, &packets, &frame_comments) {
            Ok(p) => run.file = Some(p),
            Err(e) => run.file_error = Some(e.to_string()),
        }
    }
    drop(packets);
    let text = match json {
        Some(j) => {
            out = j.finish(&run).map_err(werr)?;
            String::new()
        }
        None if a.view == ExecView::All => hc_render::exec::merged_text(&run, &merged, &style),
        None => hc_render::exec::end_text(&run, n, &style),
    };
    out.write_all(text.as_bytes()).map_err(werr)?;
    out.flush().map_err(werr)?;
    if let Some(p) = &a.out {
        let _ = hc_sys::owner::give_to_invoking_user(p);
        eprintln!("wrote {}", p.display());
    }
    if run.counters.dropped + run.counters.if_dropped > 0 {
        eprintln!(
            "warning: the capture dropped {} packets: the timelines are incomplete",
            run.counters.dropped + run.counters.if_dropped
        );
    }
    if let Some(e) = &run.file_error {
        eprintln!("warning: the annotated capture was not saved: {e}");
    }
    Ok(ExitCode::from(run.exit_code()))
}

/// Creates `path` (and its directories) for -o, before the run.
fn open_out(path: &Path) -> Result<std::fs::File, AppError> {
    let fail = |e| AppError::io(format!("cannot write {}", path.display()), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::File::create(path).map_err(fail)
}

/// A failed write of the output, as hc-trace reports it (exit 2).
fn write_error(path: Option<&Path>, e: io::Error) -> AppError {
    let what = match path {
        Some(p) => format!("cannot write {}", p.display()),
        None => "cannot write to standard output".into(),
    };
    AppError::io(what, e)
}

/// Where the timeline goes, as it is written: a reader that goes away
/// (`| head`) ends the output quietly, as grep does; any other write error
/// is an error (exit 2).
struct Out {
    w: Box<dyn Write>,
    /// The reader went away: nothing more is written.
    closed: bool,
}

impl Out {
    /// A sink for nothing (while the JSON stream holds the real one).
    fn gone() -> Out {
        Out {
            w: Box::new(io::sink()),
            closed: true,
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.w.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            r => r,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.w.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            r => r,
        }
    }
}
