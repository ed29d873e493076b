//! `hc-trace exec -- PROGRAM`: a program traced while the capture runs,
//! one timeline per connection; hc-trace exits with the program's status.
//!
//! Observations flow while the program runs: the tracer's calls, the
//! capture's packets and the kernel's events go to an assembler thread
//! ([`hc_core::exec::live`]), which builds each connection's report once
//! the connection is over, writes it (text or JSON, to `-o FILE` or to a
//! spool that goes to standard output once the program has ended, so the
//! program's own output stays its own) and forgets it. What is held is
//! bounded by the connections open at once, not by the length of the run;
//! only `-w` (the annotated capture needs every packet), `--view all` and
//! `--record` keep more.

use crate::cli::{ExecArgs, ExecView, StreamFormat};
use crate::error::AppError;
use crate::session::{self, KernelPlan, Plan};
use crate::sources::capture::CaptureConfig;
use crate::sources::exec::{self, ExecSource, CAPTURE_BUFFER, KTRACE_BUFFER_KB, SNAPLEN};
use crate::sources::ktrace::Ran;
use crate::sources::sockstate::Diag;
use hc_core::capfile::pcapng::PcapngMeta;
use hc_core::exec::live::{Live, Obs};
use hc_core::exec::{sections, ExecRecording, ExecRun};
use hc_core::model::exec::{Sock, Stopped, Traced};
use hc_core::model::kernel::KernelEvent;
use hc_core::model::{RawPacket, StateObs};
use hc_core::report::Report;
use hc_core::session::{KernelRecord, RECORDING_VERSION};
use hc_render::annotations::ExecComments;
use hc_render::exec::JsonStream;
use hc_sys::netns::{self, NetnsChoice, SandboxKind};
use std::collections::HashSet;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a connection whose sockets are all closed must be quiet before
/// its report is built (late ACKs, a retransmitted FIN, the kernel trace's
/// own delay all fit well inside it).
const QUIET: Duration = Duration::from_secs(1);

/// How late the capture may hand a packet over (its blocks are handed over
/// within the 20 ms read timeout; the rest is scheduling).
const HANDOVER: i64 = 200_000_000;

/// Observations queued for the assembler beyond which the tracer waits
/// (the program is stopped at a call meanwhile): what is held stays bounded
/// when building and writing the sections is slower than the program. The
/// capture and the kernel trace never wait (they would lose packets).
pub const MAX_QUEUED: usize = 20_000;

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
            "--view all draws the text timeline; with --format json every event is on one clock already (t0_ns + t_ns, CLOCK_REALTIME)",
        ));
    }
    if let Some(pid) = a.attach {
        if hc_sys::signals::kill(pid, 0).is_err() {
            return Err(AppError::usage(format!("attach {pid}: no such process")));
        }
    } else {
        exec::resolve(&a.program[0]).map_err(AppError::trace)?;
    }
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
    let command: Vec<String> = a
        .program
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let ctx = sections::Context {
        command: command.join(" "),
        namespace: namespace.clone(),
        iface: iface.clone(),
        counters: None,
        snaplen: SNAPLEN as u32,
        interrupted: None,
        keep_all: !a.host,
    };
    let save = (!a.no_save).then(|| {
        a.write
            .clone()
            .unwrap_or_else(|| PathBuf::from("captures/exec.pcapng"))
    });
    let mut style = hc_render::Style {
        color,
        fold: !a.no_fold,
        ..hc_render::Style::default()
    };
    // On a terminal, each timeline fits it, as a scenario run's does (not
    // in a file written with -o).
    if a.out.is_none() {
        if let Some(w) = crate::out::terminal_columns(false) {
            style.width = w;
            style.fit = true;
        }
    }
    let sink = Sink::new(out_file, a.out.clone(), a.format)?;
    let (tx, rx) = mpsc::channel::<Obs>();
    let (head_tx, head_rx) = mpsc::channel::<Head>();
    let queued = Arc::new(AtomicUsize::new(0));
    let job = Assembly {
        queued: queued.clone(),
        ctx,
        style,
        sink,
        view: a.view,
        keep_packets: save.is_some(),
        record: a.record.is_some(),
        kernel: plan.kernel.as_ref().err().cloned(),
    };
    let assembler = std::thread::Builder::new()
        .name("hc-trace-assemble".into())
        .spawn(move || job.run(&rx, &head_rx))
        .map_err(|e| AppError::io("cannot start a thread".into(), e))?;

    let t0 = Instant::now();
    let tids = Arc::new(Mutex::new(HashSet::new()));
    let socks = Arc::new(Mutex::new(HashSet::new()));
    let feed = exec::Feed::new(tx, queued);
    let used = Arc::new(Mutex::new(None));
    let source = ExecSource {
        // Rootless: inside a user namespace eBPF cannot load; ptrace can.
        backend: match a.backend {
            exec::Backend::Auto if rootless => exec::Backend::Ptrace,
            b => b,
        },
        used: used.clone(),
        attach: a.attach,
        argv: a.program.clone(),
        timeout,
        sink: Some(feed.clone()),
        tids: tids.clone(),
        socks: socks.clone(),
    };
    // A kernel event is the program's by its socket when a traced call
    // used that socket (eBPF knows sockets by kernel address), else by the
    // thread it ran in.
    let ours = move |r| match r {
        Ran::Thread(tid) => tids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&tid),
        Ran::Socket(sk) => socks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&sk),
    };
    let captured = session::run_live(&plan, source, feed, ours).map_err(|e| {
        if a.host && e.kind == crate::error::Kind::Environment {
            e.hint(format!(
                "--host captures on {iface} in the host's namespace, which needs root \
                 (or CAP_NET_RAW); without --host the program runs in a private namespace"
            ))
        } else {
            e
        }
    });
    let captured = match captured {
        Ok(c) => c,
        Err(e) => {
            drop(head_tx);
            let _ = assembler.join();
            return Err(e);
        }
    };
    let t1 = Instant::now();
    let traced = captured.out;
    let head = ExecRun {
        command,
        pid: traced.pid,
        status: traced.status,
        timed_out: traced.stopped == Some(Stopped::Timeout),
        timeout,
        stopped: traced.stopped,
        sections: Vec::new(),
        unattached: None,
        stops: traced.stops,
        backend: used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .map(|(b, why)| hc_core::exec::Backend {
                name: match b {
                    exec::Backend::Ebpf => "ebpf",
                    _ => "ptrace",
                }
                .into(),
                ebpf_unavailable: why,
            }),
        packets: 0,
        kept: 0,
        counters: captured.counters,
        iface: iface.clone(),
        linktype: captured.linktype,
        snaplen: captured.snaplen,
        file: None,
        file_error: None,
    };
    let _ = head_tx.send(Head { run: head });
    let done = assembler
        .join()
        .map_err(|_| AppError::env("the assembler thread panicked"))??;
    let Done {
        mut run,
        sink,
        comments,
        packets,
        merged,
        n,
        recorded,
    } = done;
    if let (Some(path), Some(rec)) = (&a.record, recorded) {
        let rec = rec.into_recording(&run, &namespace, !a.host, captured.kernel, traced.untraced);
        session::record(path, &rec)?;
    }
    // A documented switch (docs/performance.md): where a slow run spends its time.
    if std::env::var_os("HC_TRACE_TIMING").is_some() {
        eprintln!(
            "timing: trace, settle and stop {:?}, the rest {:?}",
            t1 - t0,
            t1.elapsed()
        );
    }
    if let (Some(path), Some(c)) = (&save, comments) {
        let (section_comment, frame_comments) = c.finish(&run, packets.len());
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
    let end = match a.view {
        ExecView::All => hc_render::exec::merged_text(&run, &merged, &style),
        ExecView::Connections => hc_render::exec::end_text(&run, n, &style),
    };
    sink.finish(&run, &end)?;
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

/// How the program ended, sent to the assembler once everything is observed.
struct Head {
    run: ExecRun,
}

/// What the assembler thread does.
struct Assembly {
    queued: Arc<AtomicUsize>,
    ctx: sections::Context,
    style: hc_render::Style,
    sink: Sink,
    view: ExecView,
    keep_packets: bool,
    record: bool,
    kernel: Option<String>,
}

/// What it leaves for the end.
struct Done {
    run: ExecRun,
    sink: Sink,
    comments: Option<ExecComments>,
    packets: Vec<RawPacket>,
    merged: Vec<Report>,
    n: usize,
    recorded: Option<Recorded>,
}

impl Assembly {
    fn run(
        mut self,
        rx: &mpsc::Receiver<Obs>,
        head: &mpsc::Receiver<Head>,
    ) -> Result<Done, AppError> {
        hc_sys::signals::block_in_this_thread();
        hc_sys::system::lower_this_thread(exec::BACKGROUND_NICE);
        let quiet = QUIET.as_nanos() as i64;
        let mut live = Live::new(self.ctx.clone(), 1, quiet, self.kernel.clone());
        let mut comments = self.keep_packets.then(|| ExecComments::new(0));
        let mut packets: Vec<RawPacket> = Vec::new();
        let mut merged: Vec<Report> = Vec::new();
        let mut recorded = self.record.then(Recorded::default);
        let diag = Diag::open();
        let mut state = |s: &Sock| -> Option<StateObs> { Some(diag.lookup(s.local?, s.peer)) };
        let mut n = 0usize;
        // A documented debugging aid (docs/exec.md): every observation as it
        // came, to be fed again by tests/exec_live.rs.
        let mut debug =
            std::env::var_os("HC_TRACE_DUMP").and_then(|p| std::fs::File::create(p).ok());
        let mut last_poll = Instant::now();
        let mut emit = |r: Report, sink: &mut Sink, n: &mut usize| -> Result<(), AppError> {
            super::scenario::warn_violations(&r.violations);
            if let Some(c) = &mut comments {
                c.add(&r);
            }
            *n += 1;
            match self.view {
                ExecView::All => merged.push(r),
                ExecView::Connections => sink.section(&r, &self.style)?,
            }
            Ok(())
        };
        loop {
            // While observations are queued the run is known up to the
            // latest one's time; once none is, up to now (less the capture's
            // hand-over delay).
            let mut caught_up = false;
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(o) => {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    if let Some(f) = &mut debug {
                        let _ = writeln!(
                            f,
                            "{} {}",
                            hc_sys::clock::now_ns(),
                            serde_json::to_string(&o).unwrap_or_default()
                        );
                    }
                    if let Some(rec) = &mut recorded {
                        rec.add(&o);
                    }
                    if let (Obs::Packet(p), true) = (&o, self.keep_packets) {
                        packets.push(p.clone());
                    }
                    live.push(o);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => caught_up = true,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if caught_up || last_poll.elapsed() >= Duration::from_millis(100) {
                last_poll = Instant::now();
                let now = if caught_up {
                    live.clock().max(hc_sys::clock::now_ns() - HANDOVER)
                } else {
                    live.clock()
                };
                // One report at a time: built, written, dropped.
                let mut failed = None;
                live.ready_each(now, &mut state, &mut |r| {
                    if failed.is_none() {
                        failed = emit(r, &mut self.sink, &mut n).err();
                    }
                });
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
        // Everything was observed; the program's end comes last.
        let Ok(Head { mut run }) = head.recv() else {
            return Err(AppError::env("the trace ended without its outcome"));
        };
        let interrupted = run
            .stopped
            .as_ref()
            .map(|s| hc_core::exec::stop_words(s, run.timeout));
        live.set_interrupted(interrupted);
        let mut failed = None;
        let (unattached, (seen, kept)) = live.finish_each(&mut state, &mut |r| {
            if failed.is_none() {
                failed = emit(r, &mut self.sink, &mut n).err();
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        run.unattached = unattached;
        run.packets = seen;
        run.kept = kept;
        // Text: the calls on no connection after the connections (JSON
        // has them under "unattached").
        if self.view == ExecView::Connections && self.sink.json.is_none() {
            if let Some(u) = &run.unattached {
                self.sink.section(u, &self.style)?;
            }
        }
        Ok(Done {
            run,
            sink: self.sink,
            comments,
            packets,
            merged,
            n,
            recorded,
        })
    }
}

/// Every observation of a run, for `--record` (tests replay them).
#[derive(Default)]
struct Recorded {
    calls: Vec<Traced>,
    socks: Vec<Option<Sock>>,
    packets: Vec<RawPacket>,
    kernel: Vec<KernelEvent>,
}

impl Recorded {
    fn add(&mut self, o: &Obs) {
        match o {
            Obs::Call(t) => self.calls.push((**t).clone()),
            Obs::Sock(id, s) => {
                if self.socks.len() <= *id {
                    self.socks.resize(*id + 1, None);
                }
                self.socks[*id] = Some(s.clone());
            }
            Obs::Packet(p) => self.packets.push(p.clone()),
            Obs::Kernel(e) => self.kernel.push(e.clone()),
            Obs::Closed(_)
            | Obs::Untraced(_)
            | Obs::Capture(_)
            | Obs::KernelOff(_)
            | Obs::KernelVia(_) => {}
        }
    }

    fn into_recording(
        self,
        run: &ExecRun,
        namespace: &str,
        keep_all: bool,
        kernel: KernelRecord,
        untraced: Vec<hc_core::model::exec::Untraced>,
    ) -> ExecRecording {
        let socks: Vec<Sock> = self
            .socks
            .into_iter()
            .map(|s| {
                s.unwrap_or(Sock {
                    ino: 0,
                    role: hc_core::model::exec::Role::Fresh,
                    local: None,
                    peer: None,
                    written: 0,
                    refs: 0,
                })
            })
            .collect();
        ExecRecording {
            version: RECORDING_VERSION,
            backend: run.backend.clone(),
            command: run.command.clone(),
            pid: run.pid,
            status: run.status.clone(),
            timed_out: run.timed_out,
            timeout: run.timeout,
            stopped: run.stopped.clone(),
            stops: run.stops,
            namespace: namespace.into(),
            iface: run.iface.clone(),
            keep_all,
            counters: run.counters,
            snaplen: run.snaplen,
            linktype: run.linktype,
            packets: self.packets,
            states: exec::final_states(&socks),
            calls: self.calls,
            socks,
            kernel: kernel.with_events(self.kernel),
            untraced,
        }
    }
}

/// Where the output goes: `-o FILE` as it is written, or a spool that
/// goes to standard output once the program has ended (its output first).
struct Sink {
    out: Out,
    spool: Option<std::fs::File>,
    json: Option<JsonStream<Out>>,
    path: Option<PathBuf>,
}

impl Sink {
    fn new(
        file: Option<std::fs::File>,
        path: Option<PathBuf>,
        format: StreamFormat,
    ) -> Result<Sink, AppError> {
        let (target, spool): (Box<dyn Write + Send>, Option<std::fs::File>) = match file {
            Some(f) => (Box::new(BufWriter::with_capacity(1 << 16, f)), None),
            None => {
                // A file nobody else sees (unlinked at once), read back at the end.
                let p = std::env::temp_dir()
                    .join(format!("hc-trace-exec-{}.spool", std::process::id()));
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&p)
                    .map_err(|e| AppError::io(format!("cannot create {}", p.display()), e))?;
                let _ = std::fs::remove_file(&p);
                let w = f
                    .try_clone()
                    .map_err(|e| AppError::io("cannot spool the output".into(), e))?;
                (Box::new(BufWriter::with_capacity(1 << 16, w)), Some(f))
            }
        };
        let out = Out {
            w: target,
            closed: false,
        };
        let mut s = Sink {
            out: Out::gone(),
            spool,
            json: None,
            path,
        };
        match format {
            StreamFormat::Json => s.json = Some(JsonStream::start(out).map_err(|e| s.err(e))?),
            StreamFormat::Text => s.out = out,
        }
        Ok(s)
    }

    fn err(&self, e: io::Error) -> AppError {
        write_error(self.path.as_deref(), e)
    }

    fn section(&mut self, r: &Report, style: &hc_render::Style) -> Result<(), AppError> {
        let res = match &mut self.json {
            Some(j) => j.connection(r),
            None => self
                .out
                .write_all(hc_render::exec::section_text(r, style).as_bytes()),
        };
        res.map_err(|e| self.err(e))
    }

    /// The end of the output (`text`, or the JSON's last part), then the
    /// spool to standard output.
    fn finish(mut self, run: &ExecRun, text: &str) -> Result<(), AppError> {
        let mut out = match self.json.take() {
            Some(j) => j.finish(run).map_err(|e| self.err(e))?,
            None => {
                let mut o = std::mem::replace(&mut self.out, Out::gone());
                o.write_all(text.as_bytes()).map_err(|e| self.err(e))?;
                o
            }
        };
        out.flush().map_err(|e| self.err(e))?;
        drop(out);
        if let Some(mut f) = self.spool.take() {
            let copy = (|| -> io::Result<()> {
                f.seek(io::SeekFrom::Start(0))?;
                let mut stdout = Out {
                    w: Box::new(io::stdout()),
                    closed: false,
                };
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    stdout.write_all(&buf[..n])?;
                }
                stdout.flush()
            })();
            copy.map_err(|e| write_error(None, e))?;
        }
        Ok(())
    }
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
    w: Box<dyn Write + Send>,
    /// The reader went away: nothing more is written.
    closed: bool,
}

impl Out {
    /// A sink for nothing.
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
