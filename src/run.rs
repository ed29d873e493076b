//! One scenario run, end to end: capture on, driver through the steps,
//! capture off, frames parsed, correlated, saved. The pipeline's glue, kept
//! free of presentation so every front end (scenario, run FILE, --all) shares it.

use crate::capture::{CaptureConfig, LiveCapture};
use crate::driver::{self, DriverConfig, WireActivity};
use crate::faults::Faults;
use crate::ktrace::KernelTrace;
use crate::pcapng::{write_pcapng, PcapngMeta};
use crate::render::annotations;
use crate::report::{PcapCounters, Report};
use crate::scenario::Scenario;
use crate::session::{assemble, KernelRecord, Recording, RECORDING_VERSION};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

/// What the user chose for this run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub port: u16,
    pub ipv6: bool,
    /// Where to save the annotated pcapng; None: do not save.
    pub save: Option<PathBuf>,
    /// Where the run happens, in words, for the header.
    pub namespace: String,
    pub read_wait: Duration,
    pub settle: Duration,
    /// Bytes kept of each packet; None: chosen by [`snaplen_for`].
    pub snaplen: Option<i32>,
    /// Read the kernel's tracepoints (RST reasons, state changes).
    pub kernel_trace: bool,
    /// Why not, when kernel_trace is false (said in the footer).
    pub kernel_trace_off_why: String,
    /// Write everything the run observed here (a [`Recording`], JSON), for replay in tests.
    pub record: Option<PathBuf>,
}

/// The name a scenario's text is parsed under again on replay.
fn scenario_file(s: &Scenario) -> String {
    if s.origin == "built-in" {
        format!("scenarios/{}.scenario", s.name)
    } else {
        s.origin.clone()
    }
}

/// Kernel buffer for the capture: big enough that a burst of full-size
/// loopback segments never overflows it while the collector thread sleeps.
const CAPTURE_BUFFER: i32 = 64 << 20;
/// Snap length: whole loopback frames (lo's MTU is 65536), so the pcapng keeps payloads.
const SNAPLEN_WHOLE: i32 = 65_600;
/// Headers only (Ethernet + IPv6 with options + TCP with options fit): for
/// large transfers. In immediate mode libpcap's ring has one fixed slot per
/// snap length, so whole 64 KiB frames leave room for only ~1000 packets.
const SNAPLEN_HEADERS: i32 = 256;
/// Above this many bytes written in a scenario, capture headers only.
const BULK_BYTES: u64 = 4 << 20;

/// The snap length for a scenario: the user's choice, or whole packets
/// unless the scenario writes enough to overflow the ring with them.
pub fn snaplen_for(scenario: &Scenario, chosen: Option<i32>) -> i32 {
    chosen.unwrap_or(if is_bulk(scenario) {
        SNAPLEN_HEADERS
    } else {
        SNAPLEN_WHOLE
    })
}

/// The scenario writes more than [`BULK_BYTES`] in all.
fn is_bulk(scenario: &Scenario) -> bool {
    let written: u64 = scenario
        .steps
        .iter()
        .map(|s| match s.action {
            crate::scenario::Action::Write(n) => n,
            _ => 0,
        })
        .sum();
    written > BULK_BYTES
}

struct Activity<'a>(&'a LiveCapture);

impl WireActivity for Activity<'_> {
    fn packets_seen(&self) -> usize {
        self.0.packet_count()
    }
}

/// Runs `scenario` and returns the finished report (saved to `opts.save` if set).
///
/// Errors are environment errors (the capture could not start); whatever the
/// scenario's calls return is an observation and lands in the report.
pub async fn run_scenario(
    scenario: &Scenario,
    opts: &RunOptions,
    cancel: watch::Receiver<Option<&'static str>>,
) -> anyhow::Result<Report> {
    let server = driver::loopback(opts.ipv6, opts.port);
    let cfg = CaptureConfig {
        iface: "lo".into(),
        filter: format!("tcp port {}", opts.port),
        snaplen: snaplen_for(scenario, opts.snaplen),
        buffer_bytes: CAPTURE_BUFFER,
        // Large transfers: blocks of packets, one wakeup per block, instead of
        // one per packet (blocks are handed over at most READ_TIMEOUT_MS late,
        // well within the settle time the driver waits for).
        immediate: !is_bulk(scenario) || opts.settle < Duration::from_millis(50),
    };
    let capture = LiveCapture::start(&cfg)?;
    let mut dcfg = DriverConfig::new(server);
    dcfg.read_wait = opts.read_wait;
    dcfg.settle = opts.settle;
    let interrupted_by = cancel.clone();
    // The kernel's word, where we may read tracepoints (root, not rootless).
    let ktrace = if opts.kernel_trace {
        Some(KernelTrace::start(opts.port))
    } else {
        None
    };
    let mut faults = Faults::new(opts.port, opts.ipv6);
    let mut driven = driver::run(scenario, &dcfg, &Activity(&capture), &mut faults, cancel).await;
    // Rules off and held segments delivered before the capture stops.
    let (held, drops) = faults.finish();
    driver::settle(&Activity(&capture), dcfg.settle, dcfg.settle_max).await;
    let result = capture.stop()?;

    let kernel = match ktrace {
        None => KernelRecord::Off(opts.kernel_trace_off_why.clone()),
        Some(Err(e)) => KernelRecord::Off(e.to_string()),
        Some(Ok(kt)) => match kt.events() {
            Ok(ev) => KernelRecord::Events(ev),
            Err(e) => KernelRecord::Off(e.to_string()),
        },
    };
    // Read the trace while the sides' threads still exist (above): only
    // events that ran in our threads may be matched to our calls by time.
    drop(std::mem::take(&mut driven.open));
    let rec = Recording {
        version: RECORDING_VERSION,
        scenario_text: scenario.text.clone(),
        scenario_file: scenario_file(scenario),
        origin: scenario.origin.clone(),
        server,
        namespace: opts.namespace.clone(),
        read_wait_ms: dcfg.read_wait.as_millis() as u64,
        settle_ms: dcfg.settle.as_millis() as u64,
        iface: cfg.iface.clone(),
        filter: cfg.filter.clone(),
        snaplen: result.snaplen,
        linktype: result.linktype,
        packets: result.packets,
        counters: PcapCounters {
            received: result.stats.received,
            dropped: result.stats.dropped,
            if_dropped: result.stats.if_dropped,
        },
        calls: std::mem::take(&mut driven.calls),
        kernel,
        notes: std::mem::take(&mut driven.notes),
        held,
        drops,
        final_states: driven.final_states,
        problems: driven.problems,
        interrupted: if driven.interrupted {
            *interrupted_by.borrow()
        } else {
            None
        }
        .map(str::to_string),
    };
    if let Some(path) = &opts.record {
        let json = serde_json::to_string_pretty(&rec)?;
        std::fs::write(path, json + "\n")?;
    }
    let mut report = assemble(&rec, scenario);
    let result = rec;
    if let Some(path) = &opts.save {
        let meta = PcapngMeta {
            linktype: result.linktype,
            snaplen: result.snaplen,
            iface: cfg.iface.clone(),
            iface_description: format!("loopback, {}", opts.namespace),
            section_comment: annotations::section_comment(&report),
            application: format!("hc-trace {}", env!("CARGO_PKG_VERSION")),
        };
        let comments = annotations::frame_comments(&report, result.packets.len());
        match write_pcapng(path, &meta, &result.packets, &comments) {
            Ok(p) => report.capture.file = Some(p),
            Err(e) => report.capture.file_error = Some(e.to_string()),
        }
    }
    Ok(report)
}
