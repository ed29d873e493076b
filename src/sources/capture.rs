//! Live capture with libpcap, on a thread of its own.
//!
//! The scenario driver makes blocking socket calls and must not wait on the
//! capture, and libpcap's ring buffer must be read while the scenario runs or
//! it overflows; so a collector thread reads packets into a shared vector and
//! the driver only polls a counter to see when the wire has gone quiet.
//!
//! Two properties matter more than speed:
//! - Nothing sent after [`LiveCapture::start`] returns is missed: the handle is
//!   activated and filtered before `start` returns, and the kernel queues
//!   packets into the ring from activation on, whether or not the thread has
//!   started reading. (libpcap filters in user space any packet that reached
//!   the ring before the BPF program was installed.)
//! - Timestamps are nanoseconds on CLOCK_REALTIME, the clock the driver stamps
//!   calls with, so calls and segments can be ordered against each other.

use hc_core::model::{LinkType, Nanos, RawPacket};
use pcap::{Active, Capture, Precision};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long the collector waits for packets: it looks at the stop flag at
/// least this often, which bounds how long [`LiveCapture::stop`] takes on a
/// quiet wire. Also libpcap's read timeout, for platforms that honour it.
const READ_TIMEOUT_MS: i32 = 20;

/// After a stop request the collector keeps reading what is already queued,
/// but not forever if the wire never goes quiet.
const DRAIN_LIMIT: Duration = Duration::from_millis(50);

/// What to capture and how much of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Interface name: `lo` inside the private namespace. `any` works too and
    /// yields LINUX_SLL frames, which [`crate::wire`] reads as well.
    pub iface: String,
    /// BPF filter in tcpdump syntax, e.g. `tcp port 5555`.
    pub filter: String,
    /// Bytes kept per packet; the wire parser takes lengths from the IP
    /// header, so a short snap length cuts payload bytes, not information.
    pub snaplen: i32,
    /// Kernel ring buffer size; too small and a burst is dropped (see
    /// [`CaptureStats::dropped`]).
    pub buffer_bytes: i32,
    /// Hand over each packet as it arrives. The scenario driver needs this
    /// to see the wire go quiet after each step. Off, libpcap fills blocks
    /// (TPACKET_V3) that are handed over when full or after the read
    /// timeout: one wakeup per block instead of one per packet, and packets
    /// packed by their size instead of one snap-length slot each, so a much
    /// smaller ring holds as many. Best for a long capture read at the end
    /// (`exec`), where per-packet wakeups compete with the traced program.
    pub immediate: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            iface: "lo".into(),
            filter: "tcp".into(),
            snaplen: 262_144,
            buffer_bytes: 4 << 20,
            immediate: true,
        }
    }
}

/// libpcap's own counters at the end of a capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// libpcap's `ps_recv`. Not "packets captured": on `lo` it counts both
    /// the outgoing and the incoming copy of each packet (unless
    /// `outgoing_skipped`), while libpcap delivers only one of them. Use
    /// `packets.len()` for what was captured.
    pub received: u32,
    /// Dropped because the ring buffer was full: the capture is incomplete.
    pub dropped: u32,
    /// Dropped by the interface or its driver (0 on `lo`).
    pub if_dropped: u32,
    /// The kernel accepted PACKET_IGNORE_OUTGOING (on `lo` only).
    pub outgoing_skipped: bool,
}

/// Everything a finished capture produced.
#[derive(Clone, Debug)]
pub struct CaptureResult {
    pub linktype: LinkType,
    /// The snap length libpcap actually used (it may adjust the request).
    pub snaplen: u32,
    pub packets: Vec<RawPacket>,
    pub stats: CaptureStats,
}

#[derive(Debug, Error)]
pub enum CaptureError {
    #[error(
        "no permission to capture on {iface}: {detail}\n\
         hint: run with sudo, or run without root in a private network namespace \
         (hc-trace does this when unprivileged user namespaces are allowed)"
    )]
    NoPermission { iface: String, detail: String },
    #[error("cannot open capture on {iface}: {source}")]
    Open {
        iface: String,
        #[source]
        source: pcap::Error,
    },
    #[error("invalid capture filter {filter:?}: {source}")]
    Filter {
        filter: String,
        #[source]
        source: pcap::Error,
    },
    #[error("libpcap reported link type {0}, which is not a valid LINKTYPE number")]
    BadLinkType(i32),
    #[error("cannot start the capture thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("reading packets failed: {0}")]
    Read(#[source] pcap::Error),
    #[error("reading capture statistics failed: {0}")]
    Stats(#[source] pcap::Error),
    #[error("the capture thread panicked")]
    CollectorPanicked,
}

/// State shared between the caller and the collector thread.
#[derive(Default)]
struct Shared {
    packets: Mutex<Vec<RawPacket>>,
    /// Mirrors `packets.len()` so that polling it never contends for the lock.
    count: AtomicUsize,
    stop: AtomicBool,
    /// When set, packets go here as they arrive instead of into `packets`
    /// (`watch` reads an endless stream and must not keep it all).
    tx: Option<std::sync::mpsc::Sender<RawPacket>>,
}

/// A running capture; dropping it without [`LiveCapture::stop`] stops the
/// thread and discards the packets.
pub struct LiveCapture {
    linktype: LinkType,
    snaplen: u32,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<CaptureStats, CaptureError>>>,
}

impl LiveCapture {
    /// Opens and activates the capture and starts a thread that collects
    /// packets. When it returns Ok, every packet sent afterwards will be captured.
    pub fn start(cfg: &CaptureConfig) -> Result<LiveCapture, CaptureError> {
        Self::start_with(cfg, Shared::default())
    }

    /// Like [`start`](Self::start), but every packet is sent to `tx` as it
    /// arrives; [`stop`](Self::stop) then returns no packets.
    pub fn start_streaming(
        cfg: &CaptureConfig,
        tx: std::sync::mpsc::Sender<RawPacket>,
    ) -> Result<LiveCapture, CaptureError> {
        Self::start_with(
            cfg,
            Shared {
                tx: Some(tx),
                ..Shared::default()
            },
        )
    }

    fn start_with(cfg: &CaptureConfig, shared: Shared) -> Result<LiveCapture, CaptureError> {
        let open_err = |source: pcap::Error| classify_open_error(&cfg.iface, source);
        let mut cap = Capture::from_device(cfg.iface.as_str())
            .map_err(open_err)?
            .immediate_mode(cfg.immediate)
            .precision(Precision::Nano)
            .timeout(READ_TIMEOUT_MS)
            .snaplen(cfg.snaplen)
            .buffer_size(cfg.buffer_bytes)
            .open()
            .and_then(Capture::setnonblock)
            .map_err(open_err)?;
        cap.filter(&cfg.filter, true)
            .map_err(|source| CaptureError::Filter {
                filter: cfg.filter.clone(),
                source,
            })?;
        // libpcap keeps only the incoming copy of a packet on the device
        // named "lo" (it drops the outgoing one in userspace): have the
        // kernel skip the outgoing copy instead. Older kernels refuse the
        // option and nothing changes.
        let skipped = cfg.iface == "lo"
            && hc_sys::system::ignore_outgoing(std::os::fd::AsFd::as_fd(&cap)).is_ok();
        let raw_linktype = cap.get_datalink().0;
        let linktype = LinkType::try_from(raw_linktype)
            .map_err(|_| CaptureError::BadLinkType(raw_linktype))?;
        let (nanos, snaplen) = hc_sys::system::pcap_precision_and_snaplen(&cap);
        // libpcap ignores the nanosecond request where the platform cannot do
        // it; scale microseconds instead of mislabelling them.
        let ts_scale = if nanos { 1 } else { 1_000 };

        let shared = Arc::new(shared);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hc-trace-capture".into())
            .spawn(move || {
                hc_sys::signals::block_in_this_thread();
                collect(cap, &thread_shared, ts_scale, skipped)
            })
            .map_err(CaptureError::Thread)?;
        Ok(LiveCapture {
            linktype,
            snaplen: u32::try_from(snaplen).unwrap_or(0),
            shared,
            thread: Some(thread),
        })
    }

    pub fn linktype(&self) -> LinkType {
        self.linktype
    }

    /// Packets collected so far: the driver polls it to know when the wire is quiet.
    pub fn packet_count(&self) -> usize {
        self.shared.count.load(Ordering::Acquire)
    }

    /// Stops the thread (within ~50 ms), returns every packet collected and
    /// libpcap's statistics.
    pub fn stop(mut self) -> Result<CaptureResult, CaptureError> {
        let stats = self.join()?;
        let packets = std::mem::take(
            &mut *self
                .shared
                .packets
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        Ok(CaptureResult {
            linktype: self.linktype,
            snaplen: self.snaplen,
            packets,
            stats,
        })
    }

    fn join(&mut self) -> Result<CaptureStats, CaptureError> {
        self.shared.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| CaptureError::CollectorPanicked)?,
            None => Ok(CaptureStats::default()),
        }
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// The collector thread: reads until asked to stop and the queue is empty.
///
impl crate::session::WireActivity for LiveCapture {
    fn packets_seen(&self) -> usize {
        self.packet_count()
    }
}

/// The handle is non-blocking and the thread waits in its own `poll`,
/// because libpcap 1.10 on Linux keeps polling inside `pcap_next_ex` until a
/// packet arrives: its read timeout never hands control back on a quiet wire.
fn collect(
    mut cap: Capture<Active>,
    shared: &Shared,
    ts_scale: Nanos,
    outgoing_skipped: bool,
) -> Result<CaptureStats, CaptureError> {
    let fd = cap.as_raw_fd();
    let mut stop_seen: Option<Instant> = None;
    loop {
        // Look at the flag before draining: whatever was queued when stop
        // was requested is then read before the loop ends.
        if shared.stop.load(Ordering::Acquire) {
            stop_seen.get_or_insert_with(Instant::now);
        }
        let emptied = drain(&mut cap, shared, ts_scale)?;
        match stop_seen {
            Some(since) if emptied || since.elapsed() > DRAIN_LIMIT => break,
            Some(_) => {}
            None if emptied => hc_sys::system::wait_readable(fd, READ_TIMEOUT_MS),
            None => {}
        }
    }
    let s = cap.stats().map_err(CaptureError::Stats)?;
    report_thread_cpu();
    Ok(CaptureStats {
        received: s.received,
        dropped: s.dropped,
        if_dropped: s.if_dropped,
        outgoing_skipped,
    })
}

/// Environment variable that makes the collector print its own CPU time.
///
/// Hidden on purpose (a benchmark aid, not a feature): the hc-trace process
/// also makes the scenario's socket calls, so its total CPU time says little
/// about what capturing costs; only this thread's time compares with
/// tcpdump's (scripts/bench-capture).
const CPU_REPORT_ENV: &str = "HC_TRACE_CAPTURE_CPU";

fn report_thread_cpu() {
    if std::env::var_os(CPU_REPORT_ENV).is_none() {
        return;
    }
    if let Some((user, sys)) = hc_sys::system::thread_cpu_us() {
        eprintln!("capture-thread-cpu: user_us={user} sys_us={sys}");
    }
}

/// Reads queued packets, at most a batch so a busy wire cannot keep the
/// thread from seeing the stop flag; true when the queue was found empty.
fn drain(
    cap: &mut Capture<Active>,
    shared: &Shared,
    ts_scale: Nanos,
) -> Result<bool, CaptureError> {
    const BATCH: usize = 1024;
    for _ in 0..BATCH {
        match cap.next_packet() {
            Ok(p) => {
                let pkt = RawPacket {
                    ts: p.header.ts.tv_sec * 1_000_000_000 + p.header.ts.tv_usec * ts_scale,
                    orig_len: p.header.len,
                    data: p.data.to_vec(),
                };
                match &shared.tx {
                    // A receiver that went away just means nobody listens any more.
                    Some(tx) => {
                        let _ = tx.send(pkt);
                    }
                    None => shared
                        .packets
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(pkt),
                }
                shared.count.fetch_add(1, Ordering::Release);
            }
            // Non-blocking mode: "nothing queued" comes back as a timeout.
            Err(pcap::Error::TimeoutExpired) => return Ok(true),
            Err(e) => return Err(CaptureError::Read(e)),
        }
    }
    Ok(false)
}

/// libpcap reports a missing capability only in its message text (the
/// `pcap` crate drops PCAP_ERROR_PERM_DENIED), so recognise the wordings
/// libpcap and the kernel use.
fn classify_open_error(iface: &str, source: pcap::Error) -> CaptureError {
    let text = source.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("operation not permitted") {
        CaptureError::NoPermission {
            iface: iface.to_string(),
            detail: text,
        }
    } else {
        CaptureError::Open {
            iface: iface.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hc_core::decode::frame as wire;
    use hc_core::model::TcpFlags;
    use hc_sys::clock::now_ns;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn permission_errors_carry_a_hint() {
        let e = classify_open_error(
            "lo",
            pcap::Error::PcapError("socket: Operation not permitted".into()),
        );
        let msg = e.to_string();
        assert!(matches!(e, CaptureError::NoPermission { .. }), "{msg}");
        assert!(msg.contains("sudo") && msg.contains("namespace"), "{msg}");
        let e = classify_open_error(
            "nope0",
            pcap::Error::PcapError("No such device exists".into()),
        );
        assert!(matches!(e, CaptureError::Open { .. }));
    }

    /// Needs CAP_NET_RAW (root): it captures on the current namespace's
    /// `lo`, filtered to a port nobody else uses. Like every privileged test
    /// it is ignored without `--features privileged` and fails without root.
    #[test]
    #[cfg_attr(
        not(feature = "privileged"),
        ignore = "needs root: run with --features privileged (scripts/test)"
    )]
    fn captures_a_handshake_on_lo() {
        assert!(
            hc_sys::system::is_root(),
            "this test needs root: run it as root (scripts/test), \
             or leave out --features privileged to skip it as ignored"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let cap = LiveCapture::start(&CaptureConfig {
            filter: format!("tcp port {port}"),
            ..CaptureConfig::default()
        })
        .expect("start capture");
        assert_eq!(cap.linktype(), wire::linktype::ETHERNET);

        let t0 = now_ns();
        let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let t1 = now_ns();
        let (_server, _) = listener.accept().expect("accept");

        let deadline = Instant::now() + Duration::from_secs(2);
        while cap.packet_count() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stopping = Instant::now();
        let result = cap.stop().expect("stop");
        assert!(stopping.elapsed() < Duration::from_millis(200));
        drop(client);

        let (segs, errors) = wire::parse_all(result.linktype, &result.packets);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(segs.len(), 3, "{segs:?}");
        let flags: Vec<TcpFlags> = segs.iter().map(|s| s.flags).collect();
        assert_eq!(
            flags,
            [
                TcpFlags(TcpFlags::SYN),
                TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
                TcpFlags(TcpFlags::ACK),
            ]
        );
        assert_eq!(segs[0].dst.port(), port);
        assert_eq!(segs[1].src.port(), port);
        for s in &segs {
            assert!(t0 <= s.ts && s.ts <= t1, "{} not in [{t0}, {t1}]", s.ts);
        }
        // Microsecond stamps scaled up would all be multiples of 1000.
        assert!(segs.iter().any(|s| s.ts % 1000 != 0), "{segs:?}");
        assert!(result.stats.received >= 3);
        assert_eq!(result.stats.dropped, 0);
    }
}
