//! The eBPF event source: the programs of `hc.bpf.c` (compiled by build.rs),
//! loaded with libbpf (CO-RE: fitted to this kernel's BTF), attached to
//! BTF-typed tracepoints, read from one ring buffer by a thread of its own.
//!
//! Loading fails where eBPF cannot run (no BTF, no CAP_BPF+CAP_PERFMON,
//! root of a user namespace, a kernel without the tracepoints): the error
//! says which, and the caller falls back to tracefs.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, ObjectBuilder};

#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);
static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/hc.bpf.o")));

/// Why the eBPF source is not running.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("this kernel exposes no BTF (/sys/kernel/btf/vmlinux)")]
    NoBtf,
    #[error("cannot load the BPF programs: {0}")]
    Load(String),
    #[error("cannot attach {prog}: {why}")]
    Attach { prog: String, why: String },
    #[error("cannot start the ring-buffer reader: {0}")]
    Thread(io::Error),
}

/// Which TCP/socket tracepoint an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// sock:inet_sock_set_state
    State,
    /// tcp:tcp_send_reset
    SendReset,
    /// tcp:tcp_receive_reset
    ReceiveReset,
    /// tcp:tcp_retransmit_skb
    Retransmit,
    /// tcp:tcp_destroy_sock
    Destroy,
}

/// One event as the kernel side recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockEvent {
    pub kind: Kind,
    /// CLOCK_MONOTONIC, ns.
    pub mono_ns: u64,
    /// The socket's kernel address (0: a reset sent without a socket).
    pub sk: u64,
    /// The thread the event ran in (in softirq: whichever was running).
    pub tid: u32,
    pub tgid: u32,
    pub netns: u32,
    /// The socket's local and remote ends (resets without a full socket:
    /// the answered segment's ends, reversed).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// State: old → new. Other kinds: the socket's state in `old` (0: none).
    pub old: i32,
    pub new: i32,
    /// tcp_send_reset's reason (enum sk_rst_reason), by the kernel's own name.
    pub reason: Option<String>,
}

/// Which events to keep, decided in the kernel.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Network namespaces (inode numbers) whose TCP events are kept.
    pub netns: Vec<u32>,
    /// exec: also the socket calls of a process tree (its root added with
    /// [`Pids::add`]): system call numbers and how each names its socket.
    pub calls: Vec<(u32, FdArg)>,
}

/// How a watched system call names its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdArg {
    /// The first argument.
    First = 1,
    /// splice/copy_file_range: the third (the destination), else the first.
    Between = 2,
    /// socket(): the result is the new descriptor.
    None = 3,
    /// setsockopt: the first, and 8 bytes of the option's value are read.
    Sockopt = 4,
    /// bind/connect: the first, and the address (up to 32 bytes) is read.
    Addr = 5,
    /// accept, dup: the first; the result is a new descriptor, read at exit.
    NewFd = 6,
    /// close_range, io_uring_setup: recorded whatever the descriptors are.
    Any = 7,
    /// execve: recorded, with the first 31 bytes of its path in `data`.
    Exec = 8,
    /// execveat: the same, the path being its second argument.
    ExecAt = 9,
    /// sendmmsg: the first; at exit the kernel side adds up the `msg_len`
    /// of each message sent (up to 32 messages).
    Mmsg = 10,
}

/// A socket as the kernel had it at a call's entry or exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockInfo {
    /// The socket's kernel address and inode number (its identity).
    pub sk: u64,
    pub ino: u64,
    /// tcpi_state.
    pub state: u8,
    /// Bytes handed to the kernel so far, as TCP_INFO counts them (sent once
    /// plus not yet sent).
    pub handed: u64,
    /// getsockname's answer, when it has a port.
    pub local: Option<SocketAddr>,
    /// getpeername's answer (None where it fails: no peer, CLOSE, SYN_SENT).
    pub peer: Option<SocketAddr>,
}

/// One system call of the traced tree, on a TCP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Entry and exit, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    pub end_ns: u64,
    pub tid: u32,
    pub tgid: u32,
    pub nr: u32,
    pub ret: i64,
    pub args: [u64; 6],
    /// The descriptor `before` was read from.
    pub fd: i32,
    pub before: Option<SockInfo>,
    /// The same socket at exit; socket/accept/dup: the new descriptor's.
    pub after: Option<SockInfo>,
    /// bind/connect: the address argument; setsockopt: the option's value.
    pub data: [u8; 32],
    /// The calling task's descriptor table (its kernel address).
    pub files: u64,
    /// execve/execveat: which of descriptors 0..63 were open and marked
    /// close-on-exec at entry (bit N: descriptor N), read in the kernel.
    pub cloexec: Option<u64>,
    /// sendmmsg: the bytes its messages sent, the sum of the `msg_len` the
    /// kernel wrote back (None: more than 32 messages, or unreadable).
    pub mmsg_bytes: Option<u64>,
}

/// What the ring buffer delivers. Decoded one at a time and consumed at
/// once (never queued in bulk), so the call's size is not boxed away.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Sock(SockEvent),
    Call(CallRecord),
    /// A traced task forked or cloned `child`; `shares_files`: one
    /// descriptor table for both (threads, CLONE_FILES).
    Fork {
        mono_ns: u64,
        tid: u32,
        tgid: u32,
        child: u32,
        child_tgid: u32,
        shares_files: bool,
    },
    /// A traced task is exiting (its descriptors close right after);
    /// `status`: its exit code as a wait status.
    Exit {
        mono_ns: u64,
        tid: u32,
        tgid: u32,
        status: i32,
        /// Descriptors 0..63 still open as it went (bit n: descriptor n),
        /// when the kernel could read its table.
        open: Option<u64>,
    },
}

/// The set of traced processes, shared with the kernel side: adding a pid
/// traces it (and, through fork, its children).
pub struct Pids(libbpf_rs::MapHandle);

impl Pids {
    pub fn add(&self, tgid: u32) -> io::Result<()> {
        self.0
            .update(&tgid.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

/// What the reader saw, when it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    /// Events the ring buffer had no room for (lost).
    pub drops: u64,
}

/// A running eBPF source. Stopping it (or dropping it) detaches the programs
/// after reading what is left in the ring.
pub struct BpfTrace {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Stats>>,
    pids: Option<Pids>,
}

const EVENT_SIZE: usize = 88;

static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn keep_log(_level: libbpf_rs::PrintLevel, msg: String) {
    // A debugging aid for whoever changes hc.bpf.c: libbpf's whole log
    // (the verifier's, when a program is refused) on stderr.
    if std::env::var_os("HC_TRACE_BPF_LOG").is_some() {
        eprintln!("libbpf: {}", msg.trim_end());
    }
    if let Ok(mut l) = LIBBPF_LOG.lock() {
        if l.len() > 200 {
            l.remove(0);
        }
        l.push(msg.trim_end().to_string());
    }
}

/// The last words libbpf logged (the reason a load failed).
fn last_log() -> String {
    let l = LIBBPF_LOG.lock().map(|l| l.clone()).unwrap_or_default();
    l.iter()
        .rev()
        .find(|m| !m.is_empty())
        .cloned()
        .unwrap_or_default()
}

/// The network namespace this thread is in (its inode number).
pub fn current_netns() -> io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/thread-self/ns/net")?;
    u32::try_from(m.ino()).map_err(|_| io::Error::other("namespace inode out of range"))
}

/// enum sk_rst_reason's names on this kernel, from its BTF (`NO_SOCKET`, ...).
fn reset_reasons() -> HashMap<i64, String> {
    use libbpf_rs::btf::{types::Enum, Btf};
    let Ok(btf) = Btf::from_vmlinux() else {
        return HashMap::new();
    };
    let Some(e) = btf.type_by_name::<Enum>("sk_rst_reason") else {
        return HashMap::new();
    };
    e.iter()
        .filter_map(|m| {
            let name = m.name?.to_str()?;
            Some((
                m.value,
                name.trim_start_matches("SK_RST_REASON_").to_string(),
            ))
        })
        .collect()
}

fn addr(family: u16, b: &[u8], port: u16) -> SocketAddr {
    let ip = if family == 10 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    };
    SocketAddr::new(ip, port)
}

const CALL_SIZE: usize = 280;

fn sockinfo(b: &[u8]) -> Option<SockInfo> {
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let u16_at = |o: usize| u16::from_ne_bytes(b[o..o + 2].try_into().unwrap_or_default());
    let sk = u64_at(0);
    if sk == 0 {
        return None;
    }
    let family = u16_at(24);
    let (sport, dport, state) = (u16_at(26), u16_at(28), u16_at(30) as u8);
    let local = Some(addr(family, &b[32..48], sport)).filter(|a| a.port() != 0);
    // inet_getname(peer): ENOTCONN without a peer port, or in CLOSE/SYN_SENT.
    let peer =
        Some(addr(family, &b[48..64], dport)).filter(|_| dport != 0 && state != 7 && state != 2);
    Some(SockInfo {
        sk,
        ino: u64_at(8),
        handed: u64_at(16),
        state,
        local,
        peer,
    })
}

fn decode_record(b: &[u8], reasons: &HashMap<i64, String>) -> Option<Record> {
    if b.len() < 20 {
        return None;
    }
    let kind = u32::from_ne_bytes(b[16..20].try_into().unwrap_or_default());
    if kind < 10 {
        return decode(b, reasons).map(Record::Sock);
    }
    if b.len() < CALL_SIZE {
        return None;
    }
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or_default());
    match kind {
        10 => {
            let mut args = [0u64; 6];
            for (i, a) in args.iter_mut().enumerate() {
                *a = u64_at(40 + 8 * i);
            }
            let mut data = [0u8; 32];
            data.copy_from_slice(&b[224..256]);
            let mmsg = i64::from(u32_at(28)) == libc::SYS_sendmmsg;
            Some(Record::Call(CallRecord {
                end_ns: u64_at(0),
                start_ns: u64_at(8),
                tid: u32_at(20),
                tgid: u32_at(24),
                nr: u32_at(28),
                ret: u64_at(32) as i64,
                args,
                fd: u32_at(88) as i32,
                before: sockinfo(&b[96..160]),
                after: sockinfo(&b[160..224]),
                data,
                files: u64_at(256),
                // One field, two meanings (hc.bpf.c, struct hc_call).
                cloexec: (u32_at(272) == 1 && !mmsg).then(|| u64_at(264)),
                mmsg_bytes: (u32_at(272) == 1 && mmsg).then(|| u64_at(264)),
            }))
        }
        11 => Some(Record::Fork {
            mono_ns: u64_at(0),
            tid: u32_at(20),
            tgid: u32_at(24),
            child: u32_at(272),
            child_tgid: u32_at(276),
            shares_files: u64_at(256) == u64_at(264),
        }),
        12 => Some(Record::Exit {
            mono_ns: u64_at(0),
            tid: u32_at(20),
            tgid: u32_at(24),
            status: u64_at(32) as i32,
            open: (u64_at(48) == 1).then(|| u64_at(40)),
        }),
        _ => None,
    }
}

fn decode(b: &[u8], reasons: &HashMap<i64, String>) -> Option<SockEvent> {
    if b.len() < EVENT_SIZE {
        return None;
    }
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let u16_at = |o: usize| u16::from_ne_bytes(b[o..o + 2].try_into().unwrap_or_default());
    let i32_at = |o: usize| i32::from_ne_bytes(b[o..o + 4].try_into().unwrap_or_default());
    let kind = match u32_at(16) {
        1 => Kind::State,
        2 => Kind::SendReset,
        3 => Kind::ReceiveReset,
        4 => Kind::Retransmit,
        5 => Kind::Destroy,
        _ => return None,
    };
    let family = u16_at(32);
    let reason = (kind == Kind::SendReset).then(|| {
        let r = i32_at(80);
        reasons
            .get(&i64::from(r))
            .cloned()
            .unwrap_or_else(|| r.to_string())
    });
    Some(SockEvent {
        kind,
        mono_ns: u64_at(0),
        sk: u64_at(8),
        tid: u32_at(20),
        tgid: u32_at(24),
        netns: u32_at(28),
        local: addr(family, &b[40..56], u16_at(34)),
        remote: addr(family, &b[56..72], u16_at(36)),
        old: i32_at(72),
        new: i32_at(76),
        reason,
    })
}

impl BpfTrace {
    /// Loads and attaches the programs, then hands every event to `send` from
    /// a thread of its own. Returns once the programs are attached (events
    /// from then on are seen), or with why they could not be.
    pub fn start(
        filter: Filter,
        mut send: impl FnMut(SockEvent) + Send + 'static,
    ) -> Result<BpfTrace, BpfError> {
        Self::start_records(filter, move |r| {
            if let Record::Sock(e) = r {
                send(e)
            }
        })
    }

    /// As [`BpfTrace::start`], with every kind of record (exec: calls,
    /// forks, exits too).
    pub fn start_records(
        filter: Filter,
        send: impl FnMut(Record) + Send + 'static,
    ) -> Result<BpfTrace, BpfError> {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Err(BpfError::NoBtf);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Option<Pids>, BpfError>>(1);
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hc-trace-bpf".into())
            .spawn(move || {
                crate::signals::block_in_this_thread();
                run(filter, send, flag, ready_tx)
            })
            .map_err(BpfError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(pids)) => Ok(BpfTrace {
                stop,
                thread: Some(thread),
                pids,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(BpfError::Load("the loader thread ended".into()))
            }
        }
    }

    /// The traced processes (exec mode only).
    pub fn pids(&self) -> Option<&Pids> {
        self.pids.as_ref()
    }

    /// Reads what is left, detaches, and says how many events came and how
    /// many were lost.
    pub fn stop(mut self) -> Stats {
        self.finish()
    }

    fn finish(&mut self) -> Stats {
        self.stop.store(true, Ordering::Release);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for BpfTrace {
    fn drop(&mut self) {
        self.finish();
    }
}

fn run(
    filter: Filter,
    mut send: impl FnMut(Record),
    stop: Arc<AtomicBool>,
    ready: mpsc::SyncSender<Result<Option<Pids>, BpfError>>,
) -> Stats {
    let fail = |e: BpfError| {
        let _ = ready.send(Err(e));
        Stats::default()
    };
    let level = if std::env::var_os("HC_TRACE_BPF_LOG").is_some() {
        libbpf_rs::PrintLevel::Debug
    } else {
        libbpf_rs::PrintLevel::Warn
    };
    libbpf_rs::set_print(Some((level, keep_log)));
    let load_err = |e: libbpf_rs::Error| {
        if e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            return BpfError::Load(
                "permission denied: needs CAP_BPF and CAP_PERFMON in the host's namespaces (root, not root of a user namespace)".into(),
            );
        }
        let log = last_log();
        let e = e.to_string();
        BpfError::Load(if log.is_empty() {
            e
        } else {
            format!("{e} ({log})")
        })
    };
    let mut open = match ObjectBuilder::default().open_memory(&OBJECT.0) {
        Ok(o) => o,
        Err(e) => return fail(load_err(e)),
    };
    let exec = !filter.calls.is_empty();
    for mut p in open.progs_mut() {
        let name = p.name().to_string_lossy();
        let of_exec =
            ["hc_sys_enter", "hc_sys_exit", "hc_fork", "hc_exit"].contains(&name.as_ref());
        if (of_exec && !exec) || (!of_exec && filter.netns.is_empty()) {
            p.set_autoload(false);
        }
    }
    let obj = match open.load() {
        Ok(o) => o,
        Err(e) => return fail(load_err(e)),
    };
    let map = |name: &str| obj.maps().find(|m| m.name() == name);
    if let Some(m) = map("netns_filter") {
        for ns in &filter.netns {
            if let Err(e) = m.update(&ns.to_ne_bytes(), &[1u8], MapFlags::ANY) {
                return fail(BpfError::Load(format!("cannot set the filter: {e}")));
            }
        }
    }
    if let Some(m) = map("watched") {
        for (nr, how) in &filter.calls {
            if let Err(e) = m.update(&nr.to_ne_bytes(), &[*how as u8], MapFlags::ANY) {
                return fail(BpfError::Load(format!("cannot set the watched calls: {e}")));
            }
        }
    }
    let pids = if exec {
        match map("pids").map(|m| libbpf_rs::MapHandle::try_from(&m)) {
            Some(Ok(h)) => Some(Pids(h)),
            Some(Err(e)) => return fail(BpfError::Load(format!("cannot share the pid map: {e}"))),
            None => return fail(BpfError::Load("the object has no pid map".into())),
        }
    } else {
        None
    };
    let mut links = Vec::new();
    for prog in obj.progs_mut() {
        if !prog.autoload() {
            continue;
        }
        match prog.attach() {
            Ok(l) => links.push(l),
            Err(e) => {
                return fail(BpfError::Attach {
                    prog: prog.section().to_string_lossy().into_owned(),
                    why: e.to_string(),
                })
            }
        }
    }
    let reasons = reset_reasons();
    let Some(ring_map) = map("events") else {
        return fail(BpfError::Load("the object has no ring buffer".into()));
    };
    let count = std::cell::Cell::new(0u64);
    let mut builder = libbpf_rs::RingBufferBuilder::new();
    let added = builder.add(&ring_map, |b: &[u8]| {
        if let Some(e) = decode_record(b, &reasons) {
            count.set(count.get() + 1);
            send(e);
        }
        0
    });
    if let Err(e) = added {
        return fail(BpfError::Load(format!("cannot read the ring buffer: {e}")));
    }
    let ring = match builder.build() {
        Ok(r) => r,
        Err(e) => return fail(BpfError::Load(format!("cannot read the ring buffer: {e}"))),
    };
    let _ = ready.send(Ok(pids));
    loop {
        let stopping = stop.load(Ordering::Acquire);
        // Records come without a wakeup until a batch has piled up (see
        // hc.bpf.c): a poll that times out is followed by reading what is there.
        let _ = ring.poll(Duration::from_millis(20));
        let _ = ring.consume();
        if stopping {
            let _ = ring.consume();
            break;
        }
    }
    drop(links);
    let _ = ring.consume();
    drop(ring);
    let events = count.get();
    let drops = map("drops")
        .and_then(|m| m.lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY).ok())
        .flatten()
        .map(|per_cpu| {
            per_cpu
                .iter()
                .map(|v| {
                    u64::from_ne_bytes(
                        v.get(..8)
                            .and_then(|s| s.try_into().ok())
                            .unwrap_or_default(),
                    )
                })
                .sum()
        })
        .unwrap_or(0);
    Stats { events, drops }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (CAP_BPF+CAP_PERFMON): runs under `--features privileged`
    /// (scripts/test), and fails there without root.
    #[test]
    #[cfg_attr(
        not(feature = "privileged"),
        ignore = "needs root: run scripts/test, or cargo test --features privileged"
    )]
    fn sees_a_loopback_connection_and_its_reset() {
        assert!(
            crate::system::is_root(),
            "loading BPF programs needs root: run the privileged tests as root"
        );
        use std::io::Write;
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let filter = Filter {
            netns: vec![current_netns().unwrap()],
            calls: Vec::new(),
        };
        let t = BpfTrace::start(filter, move |e| sink.lock().unwrap().push(e)).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (s, _) = l.accept().unwrap();
        c.write_all(b"x").unwrap();
        // Closing with unread data: an RST, TCP_ABORT_ON_CLOSE.
        drop(s);
        std::thread::sleep(Duration::from_millis(50));
        drop(c);
        let stats = t.stop();
        let got = got.lock().unwrap();
        let mine: Vec<_> = got
            .iter()
            .filter(|e| e.local.port() == port || e.remote.port() == port)
            .collect();
        eprintln!("{stats:?} {mine:#?}");
        assert!(mine.iter().any(
            |e| e.kind == Kind::SendReset && e.reason.as_deref() == Some("TCP_ABORT_ON_CLOSE")
        ));
        assert!(mine.iter().any(|e| e.kind == Kind::State && e.new == 1));
        assert_eq!(stats.drops, 0);
    }

    #[test]
    fn an_event_is_read_field_by_field() {
        let mut b = vec![0u8; EVENT_SIZE];
        b[0..8].copy_from_slice(&5u64.to_ne_bytes());
        b[16..20].copy_from_slice(&2u32.to_ne_bytes());
        b[20..24].copy_from_slice(&77u32.to_ne_bytes());
        b[32..34].copy_from_slice(&2u16.to_ne_bytes());
        b[34..36].copy_from_slice(&7799u16.to_ne_bytes());
        b[36..38].copy_from_slice(&40000u16.to_ne_bytes());
        b[40..44].copy_from_slice(&[127, 0, 0, 1]);
        b[56..60].copy_from_slice(&[127, 0, 0, 2]);
        b[72..76].copy_from_slice(&7i32.to_ne_bytes());
        b[80..84].copy_from_slice(&11i32.to_ne_bytes());
        let names = HashMap::from([(11, "TCP_ABORT_ON_CLOSE".to_string())]);
        let e = decode(&b, &names).expect("a send_reset event");
        assert_eq!(e.kind, Kind::SendReset);
        assert_eq!(e.local, "127.0.0.1:7799".parse().unwrap());
        assert_eq!(e.remote, "127.0.0.2:40000".parse().unwrap());
        assert_eq!(e.reason.as_deref(), Some("TCP_ABORT_ON_CLOSE"));
        assert_eq!((e.mono_ns, e.tid, e.old), (5, 77, 7));
        // An unknown kind or a short record is not an event.
        b[16..20].copy_from_slice(&99u32.to_ne_bytes());
        assert!(decode(&b, &names).is_none());
        assert!(decode(&b[..40], &names).is_none());
    }
}
