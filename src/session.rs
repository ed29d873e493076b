//! The one pipeline every live run goes through, whatever its source:
//!
//! ```text
//! capture on → kernel trace on → source runs → wire settles → capture off
//!   → kernel events read → Captured (packets, counters, kernel events, the source's own output)
//! ```
//!
//! The caller then turns a [`Captured`] into a recording (`hc_core::session`,
//! `hc_core::exec`), assembles the report and saves the annotated capture
//! ([`save`]). Sources: the scenario driver ([`crate::sources::scenario`]) and
//! the exec tracer ([`crate::sources::exec`]).

use crate::error::AppError;
use crate::sources::capture::{CaptureConfig, LiveCapture};
use crate::sources::files::{write_pcapng, SaveError, SaveTarget};
use crate::sources::ktrace::{Kernel, KernelLive};
use hc_core::capfile::pcapng::PcapngMeta;
use hc_core::model::{LinkType, RawPacket};
use hc_core::report::PcapCounters;
use hc_core::session::KernelRecord;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a source may ask of the capture: how many segments it has seen, so
/// it can tell when the wire has gone quiet.
pub trait WireActivity: Send + Sync {
    fn packets_seen(&self) -> usize;
}

/// Tells when the wire has gone quiet: no new segment for `quiet`, or
/// `max` passed since it started looking. The one settle rule of every
/// source (between steps, after the last one, after a traced program).
pub struct Quiet {
    quiet: Duration,
    max: Duration,
    start: Instant,
    last: usize,
    since: Instant,
}

impl Quiet {
    pub fn new(wire: &dyn WireActivity, quiet: Duration, max: Duration) -> Quiet {
        let now = Instant::now();
        Quiet {
            quiet,
            max,
            start: now,
            last: wire.packets_seen(),
            since: now,
        }
    }

    /// Looks at the wire again: true once it has been quiet long enough, or
    /// the longest wait is over.
    pub fn done(&mut self, wire: &dyn WireActivity) -> bool {
        let now = wire.packets_seen();
        if now != self.last {
            self.last = now;
            self.since = Instant::now();
        } else if self.since.elapsed() >= self.quiet {
            return true;
        }
        self.start.elapsed() >= self.max
    }
}

/// Waits (on this thread) until the wire is quiet, see [`Quiet`].
pub fn settle(wire: &dyn WireActivity, quiet: Duration, max: Duration) {
    let mut q = Quiet::new(wire, quiet, max);
    loop {
        std::thread::sleep(Duration::from_millis(5));
        if q.done(wire) {
            return;
        }
    }
}

/// Which kernel events to record, and in how large a buffer.
#[derive(Clone, Copy, Debug)]
pub struct KernelPlan {
    /// Keep only events on this port; None: every TCP event.
    pub port: Option<u16>,
    /// The tracing ring's size per CPU.
    pub buffer_kb: u32,
}

/// How one live run is captured.
#[derive(Clone, Debug)]
pub struct Plan {
    pub capture: CaptureConfig,
    /// Read the kernel's tracepoints, or why not.
    pub kernel: Result<KernelPlan, String>,
    /// After the source ends, wait for this much quiet (at most `quiet_max`).
    pub quiet: Duration,
    pub quiet_max: Duration,
}

/// Something that makes socket calls while the capture runs.
pub trait Source {
    type Output;
    /// Runs to its end. Errors are the environment's (nothing could be
    /// run); whatever the calls returned is part of the output.
    fn run(&mut self, wire: &dyn WireActivity) -> Result<Self::Output, AppError>;
    /// Whether a kernel event that ran in thread `tid` ran during one of
    /// this source's calls (only such events may be matched to calls by time).
    fn ours(&self, out: &Self::Output, tid: i32) -> bool;
}

/// Everything a live run captured, with the source's own output.
pub struct Captured<O> {
    pub out: O,
    pub linktype: LinkType,
    pub snaplen: u32,
    pub packets: Vec<RawPacket>,
    pub counters: PcapCounters,
    pub kernel: KernelRecord,
}

/// Runs `source` with the capture (and, where planned, the kernel trace) on.
pub fn run<S: Source>(plan: &Plan, mut source: S) -> Result<Captured<S::Output>, AppError> {
    // What runs killed outright (SIGKILL) left behind on the machine.
    if hc_sys::system::is_root() {
        crate::sources::ktrace::remove_stale();
    }
    let capture = LiveCapture::start(&plan.capture).map_err(AppError::capture)?;
    let ktrace = plan
        .kernel
        .as_ref()
        .map(|k| Kernel::start(k.port, k.buffer_kb));
    let out = match source.run(&capture) {
        Ok(o) => o,
        Err(e) => {
            let _ = capture.stop();
            return Err(e);
        }
    };
    settle(&capture, plan.quiet, plan.quiet_max);
    let result = capture.stop().map_err(AppError::capture)?;
    // Read while the source's threads still exist: `ours` may ask about them.
    let kernel = match ktrace {
        Err(why) => KernelRecord::Off(why.clone()),
        Ok(Err(e)) => KernelRecord::Off(e.to_string()),
        Ok(Ok(kt)) => match kt.events_by(|r| match r {
            crate::sources::ktrace::Ran::Thread(tid) => source.ours(&out, tid),
            crate::sources::ktrace::Ran::Socket(_) => false,
        }) {
            Ok((ev, via)) => KernelRecord::from_via(&via, ev),
            Err(e) => KernelRecord::Off(e.to_string()),
        },
    };
    Ok(Captured {
        out,
        linktype: result.linktype,
        snaplen: result.snaplen,
        counters: PcapCounters {
            received: result.stats.received,
            dropped: result.stats.dropped,
            if_dropped: result.stats.if_dropped,
            outgoing_skipped: result.stats.outgoing_skipped,
        },
        packets: result.packets,
        kernel,
    })
}

/// As [`run`], for a source whose run is cut up while it runs (`exec`):
/// packets and kernel events go to `sink` as they come instead of being
/// returned, so nothing of a long run piles up here; `ours` says which
/// threads are the source's (for the kernel events' `by_us`). When this
/// returns, everything observed has been sent.
pub fn run_live<S: Source>(
    plan: &Plan,
    mut source: S,
    sink: crate::sources::exec::Feed,
    ours: impl Fn(crate::sources::ktrace::Ran) -> bool + Send + Sync + 'static,
) -> Result<Captured<S::Output>, AppError> {
    use hc_core::exec::live::Obs;
    let (tx, rx) = std::sync::mpsc::channel::<RawPacket>();
    let capture = LiveCapture::start_streaming(&plan.capture, tx).map_err(AppError::capture)?;
    let linktype = capture.linktype();
    sink.send(Obs::Capture(linktype));
    let packets = {
        let sink = sink.clone();
        std::thread::Builder::new()
            .name("hc-trace-packets".into())
            .spawn(move || {
                hc_sys::system::lower_this_thread(crate::sources::exec::BACKGROUND_NICE);
                for p in rx {
                    sink.send(Obs::Packet(p));
                }
            })
            .map_err(|e| AppError::io("cannot start a thread".into(), e))?
    };
    let ktrace = plan.kernel.as_ref().map(|k| {
        let sink = sink.clone();
        KernelLive::start(k.port, k.buffer_kb, ours, move |e| {
            sink.send(Obs::Kernel(e))
        })
    });
    match &ktrace {
        Err(why) => sink.send(Obs::KernelOff(why.to_string())),
        Ok(Err(e)) => sink.send(Obs::KernelOff(e.to_string())),
        Ok(Ok((_, via))) => sink.send(Obs::KernelVia(via.clone())),
    }
    drop(sink);
    let out = match source.run(&capture) {
        Ok(o) => o,
        Err(e) => {
            let _ = capture.stop();
            return Err(e);
        }
    };
    settle(&capture, plan.quiet, plan.quiet_max);
    let result = capture.stop().map_err(AppError::capture)?;
    let _ = packets.join();
    let kernel = match ktrace {
        Err(why) => KernelRecord::Off(why.clone()),
        Ok(Err(e)) => KernelRecord::Off(e.to_string()),
        Ok(Ok((live, via))) => {
            let drops = live.stop();
            let via = match via {
                hc_core::report::KernelVia::Ebpf { .. } => {
                    hc_core::report::KernelVia::Ebpf { drops }
                }
                other => other,
            };
            KernelRecord::from_via(&via, Vec::new())
        }
    };
    Ok(Captured {
        out,
        linktype,
        snaplen: result.snaplen,
        counters: PcapCounters {
            received: result.stats.received,
            dropped: result.stats.dropped,
            if_dropped: result.stats.if_dropped,
            outgoing_skipped: result.stats.outgoing_skipped,
        },
        packets: Vec::new(),
        kernel,
    })
}

/// Writes `value` as pretty JSON to `path` (a `--record` file).
pub fn record(path: &Path, value: &impl serde::Serialize) -> Result<(), AppError> {
    let json = serde_json::to_string_pretty(value).map_err(|e| {
        AppError::io(
            format!("cannot write the recording {}", path.display()),
            e.into(),
        )
    })?;
    std::fs::write(path, json + "\n")
        .map_err(|e| AppError::io(format!("cannot write the recording {}", path.display()), e))
}

/// Saves the annotated capture to a target checked before the run; the
/// path as given, or why it was not written.
pub fn save_to(
    target: SaveTarget,
    meta: &PcapngMeta,
    packets: &[RawPacket],
    comments: &[Option<String>],
) -> Result<PathBuf, SaveError> {
    write_pcapng(target, meta, packets, comments)
}

/// Saves the annotated capture to `path`, checked only now (see
/// [`SaveTarget::prepare`]); [`save_to`] with a target prepared before the
/// run finds a path that cannot be written before anything runs.
pub fn save(
    path: &Path,
    meta: &PcapngMeta,
    packets: &[RawPacket],
    comments: &[Option<String>],
) -> Result<PathBuf, SaveError> {
    save_to(SaveTarget::prepare(path)?, meta, packets, comments)
}
