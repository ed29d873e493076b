//! The kernel's own word: TCP tracepoints read from a private tracefs instance.
//!
//! `tcp:tcp_send_reset` carries the kernel's reason for each RST it sends, and
//! `sock:inet_sock_set_state` every state change as it happens — including
//! those between two calls (FIN_WAIT2 → TIME_WAIT when the peer's FIN
//! arrives), which polling TCP_INFO after each call cannot see.
//!
//! A private instance (`instances/hc-trace-PID`) keeps our settings away
//! from anyone else using ftrace; it is removed when the session is dropped,
//! also after Ctrl-C (the run ends normally then). Tracepoints are global to
//! the machine, so events are kept only if their addresses and ports match a
//! connection of the run.
//!
//! Clock: the instance uses `mono` (CLOCK_MONOTONIC); at start the offset to
//! CLOCK_REALTIME (the clock of packets and calls) is measured by reading both
//! clocks back to back, and every event time is shifted by it. ftrace's text
//! output has microsecond resolution, so kernel event times are ±1 µs.

use crate::model::{Nanos, TcpState};
use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// One tracepoint event, on the capture's clock.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum KernelEvent {
    /// sock:inet_sock_set_state for the socket `local`↔`remote`.
    State {
        ts: Nanos,
        local: SocketAddr,
        remote: SocketAddr,
        old: TcpState,
        new: TcpState,
        /// The event ran in one of this process's threads (during one of its calls).
        by_us: bool,
    },
    /// tcp:tcp_send_reset: an RST from `src` to `dst`, the socket's state and the kernel's reason.
    SendReset {
        ts: Nanos,
        src: SocketAddr,
        dst: SocketAddr,
        state: String,
        reason: String,
    },
}

impl KernelEvent {
    pub fn ts(&self) -> Nanos {
        match self {
            KernelEvent::State { ts, .. } | KernelEvent::SendReset { ts, .. } => *ts,
        }
    }
}

/// Why kernel events are not available, said once in the footer.
#[derive(Debug, thiserror::Error)]
pub enum KtraceError {
    #[error("tracefs is not mounted and could not be mounted ({0}); needs root")]
    NoTracefs(io::Error),
    #[error("cannot create a tracing instance in {path} ({source}); reading kernel tracepoints needs root")]
    Instance { path: PathBuf, source: io::Error },
    #[error("this kernel has no tracepoint {0}")]
    MissingEvent(String),
    #[error("cannot read the trace: {0}")]
    Read(io::Error),
}

const EVENTS: [&str; 2] = ["sock/inet_sock_set_state", "tcp/tcp_send_reset"];

/// A running tracing instance. Dropping it disables the events and removes the instance.
pub struct KernelTrace {
    dir: PathBuf,
    /// CLOCK_REALTIME minus the instance's clock (mono), in ns.
    offset: Nanos,
    /// Keep only events on this port; None: every TCP event (exec, whose
    /// programs use ports nobody knows in advance).
    port: Option<u16>,
}

fn tracefs_root() -> Result<PathBuf, KtraceError> {
    let root = Path::new("/sys/kernel/tracing");
    if root.join("instances").is_dir() {
        return Ok(root.to_path_buf());
    }
    let legacy = Path::new("/sys/kernel/debug/tracing");
    if legacy.join("instances").is_dir() {
        return Ok(legacy.to_path_buf());
    }
    // Not mounted: mount it where the kernel expects it.
    let src = c"nodev";
    let target = c"/sys/kernel/tracing";
    let fstype = c"tracefs";
    // SAFETY: all pointers are valid NUL-terminated strings; data is null.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(KtraceError::NoTracefs(io::Error::last_os_error()));
    }
    Ok(root.to_path_buf())
}

fn clock_ns(clock: libc::clockid_t) -> Nanos {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into our timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC, from the closest of a few back-to-back readings.
fn measure_offset() -> Nanos {
    (0..5)
        .map(|_| {
            let a = clock_ns(libc::CLOCK_MONOTONIC);
            let r = clock_ns(libc::CLOCK_REALTIME);
            let b = clock_ns(libc::CLOCK_MONOTONIC);
            (b - a, r - (a + (b - a) / 2))
        })
        .min_by_key(|(spread, _)| *spread)
        .map_or(0, |(_, off)| off)
}

impl KernelTrace {
    /// Starts a private instance with the TCP events enabled, filtered to `port` where the event allows.
    pub fn start(port: u16) -> Result<KernelTrace, KtraceError> {
        Self::start_with(Some(port), 4096)
    }

    /// Starts a private instance that records the TCP events of every port:
    /// a traced program's ports are known only after it ran, so the caller
    /// keeps what belongs to its connections. `buffer_kb` is per CPU; a
    /// program making thousands of connections makes ~10 events each, and
    /// the trace is read only at the end.
    pub fn start_all(buffer_kb: u32) -> Result<KernelTrace, KtraceError> {
        Self::start_with(None, buffer_kb)
    }

    fn start_with(port: Option<u16>, buffer_kb: u32) -> Result<KernelTrace, KtraceError> {
        let root = tracefs_root()?;
        let dir = root
            .join("instances")
            .join(format!("hc-trace-{}", std::process::id()));
        let inst = |e: io::Error| KtraceError::Instance {
            path: dir.clone(),
            source: e,
        };
        if dir.exists() {
            let _ = fs::remove_dir(&dir);
        }
        fs::create_dir(&dir).map_err(inst)?;
        let mut kt = KernelTrace {
            dir: dir.clone(),
            offset: 0,
            port,
        };
        // From here on, Drop cleans up whatever happens.
        fs::write(dir.join("trace_clock"), "mono").map_err(inst)?;
        let _ = fs::write(dir.join("buffer_size_kb"), buffer_kb.to_string());
        for e in EVENTS {
            let ev = dir.join("events").join(e);
            if !ev.is_dir() {
                return Err(KtraceError::MissingEvent(e.replace('/', ":")));
            }
            if let (true, Some(port)) = (e.ends_with("inet_sock_set_state"), port) {
                let _ = fs::write(
                    ev.join("filter"),
                    format!("sport == {port} || dport == {port}"),
                );
            }
            fs::write(ev.join("enable"), "1").map_err(inst)?;
        }
        kt.offset = measure_offset();
        Ok(kt)
    }

    /// Every event recorded so far that involves the run's port, on
    /// CLOCK_REALTIME; `by_us` says whether it ran in one of this process's threads.
    pub fn events(&self) -> Result<Vec<KernelEvent>, KtraceError> {
        self.events_by(|tid| Path::new("/proc/self/task").join(tid.to_string()).exists())
    }

    /// Like [`events`](Self::events), with `ours` deciding which threads
    /// count as the run's own: for exec, the traced program's, whose calls
    /// are the ones an event may be matched to by time.
    pub fn events_by(&self, ours: impl Fn(i32) -> bool) -> Result<Vec<KernelEvent>, KtraceError> {
        let text = fs::read_to_string(self.dir.join("trace")).map_err(KtraceError::Read)?;
        let on_port = |a: &SocketAddr, b: &SocketAddr| {
            self.port.is_none_or(|p| a.port() == p || b.port() == p)
        };
        Ok(parse_trace(&text, self.offset, ours)
            .into_iter()
            .filter(|e| match e {
                KernelEvent::State { local, remote, .. } => on_port(local, remote),
                KernelEvent::SendReset { src, dst, .. } => on_port(src, dst),
            })
            .collect())
    }
}

impl Drop for KernelTrace {
    fn drop(&mut self) {
        for e in EVENTS {
            let _ = fs::write(self.dir.join("events").join(e).join("enable"), "0");
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Parses ftrace text output: `task-pid [cpu] flags 5440.324538: event: k=v k=v`.
/// `ours` says whether a thread id belongs to this process.
pub fn parse_trace(text: &str, offset: Nanos, ours: impl Fn(i32) -> bool) -> Vec<KernelEvent> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| parse_line(l, offset, &ours))
        .collect()
}

fn parse_line(line: &str, offset: Nanos, ours: &dyn Fn(i32) -> bool) -> Option<KernelEvent> {
    const NAMES: [&str; 2] = [": inet_sock_set_state: ", ": tcp_send_reset: "];
    let (name, at) = NAMES.iter().find_map(|n| line.find(n).map(|i| (*n, i)))?;
    let ts = parse_ts(line[..at].split_whitespace().last()?)? + offset;
    let fields: Vec<(&str, &str)> = line[at + name.len()..]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    match name {
        ": tcp_send_reset: " => Some(KernelEvent::SendReset {
            ts,
            src: get("src")?.parse().ok()?,
            dst: get("dest")?.parse().ok()?,
            state: get("state")?.trim_start_matches("TCP_").to_string(),
            reason: get("reason")?.to_string(),
        }),
        _ => {
            let v6 = get("family")? == "AF_INET6";
            let ip = |k4: &str, k6: &str| -> Option<IpAddr> {
                if v6 {
                    get(k6)?.parse().ok()
                } else {
                    get(k4)?.parse().ok()
                }
            };
            let local = SocketAddr::new(ip("saddr", "saddrv6")?, get("sport")?.parse().ok()?);
            let remote = SocketAddr::new(ip("daddr", "daddrv6")?, get("dport")?.parse().ok()?);
            // `comm-tid [cpu] ...`: the thread the event ran in.
            let tid = line
                .split(" [")
                .next()?
                .trim()
                .rsplit('-')
                .next()?
                .parse()
                .ok()?;
            Some(KernelEvent::State {
                ts,
                local,
                remote,
                old: state_from_name(get("oldstate")?)?,
                new: state_from_name(get("newstate")?)?,
                by_us: ours(tid),
            })
        }
    }
}

/// `5440.324538` (seconds.microseconds) as nanoseconds.
fn parse_ts(s: &str) -> Option<Nanos> {
    let s = s.trim_end_matches(':');
    let (sec, frac) = s.split_once('.')?;
    let sec: i64 = sec.parse().ok()?;
    let digits = frac.len().min(9);
    let frac_ns: i64 = frac.get(..digits)?.parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
    Some(sec * 1_000_000_000 + frac_ns)
}

fn state_from_name(s: &str) -> Option<TcpState> {
    let name = s.trim_start_matches("TCP_");
    (1..=13).map(TcpState).find(|st| st.name() == name)
}

/// Whether an RST reason names something the sending side's own call did
/// (an abort at close or disconnect) or an answer to an arriving segment;
/// None when the reason fits neither. Used only to cross-check the
/// correlator's attribution: both are shown, a disagreement is flagged.
pub fn reason_kind(reason: &str) -> Option<ReasonKind> {
    match reason {
        "TCP_ABORT_ON_CLOSE"
        | "TCP_ABORT_ON_LINGER"
        | "TCP_ABORT_ON_MEMORY"
        | "TCP_STATE"
        | "TCP_DISCONNECT_WITH_DATA" => Some(ReasonKind::Call),
        "NO_SOCKET"
        | "TCP_ABORT_ON_DATA"
        | "TCP_TIMEWAIT_SOCKET"
        | "TCP_INVALID_ACK_SEQUENCE"
        | "TCP_RFC7323_PAWS"
        | "TCP_TOO_OLD_ACK"
        | "TCP_ACK_UNSENT_DATA"
        | "TCP_FLAGS"
        | "TCP_OLD_ACK"
        | "INVALID_SYN" => Some(ReasonKind::Answer),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonKind {
    Call,
    Answer,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "# tracer: nop
         python3-30372   [001] ..s2.  5440.324461: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=7799 dport=47906 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 oldstate=TCP_SYN_RECV newstate=TCP_ESTABLISHED
         python3-30372   [001] .....  5440.324538: tcp_send_reset: skbaddr=0000000000000000 skaddr=00000000831fe675 src=127.0.0.1:47906 dest=127.0.0.1:7799 state=TCP_CLOSE reason=TCP_ABORT_ON_CLOSE
          <idle>-0       [000] ..s2.  5440.400001: inet_sock_set_state: family=AF_INET6 protocol=IPPROTO_TCP sport=7799 dport=40000 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=::1 oldstate=TCP_FIN_WAIT2 newstate=TCP_TIME_WAIT
          garbage line without an event
";

    #[test]
    fn parses_state_changes_and_resets_on_the_shifted_clock() {
        let ev = parse_trace(TRACE, 1_000, |tid| tid == 30372);
        assert_eq!(ev.len(), 3);
        assert_eq!(
            ev[0],
            KernelEvent::State {
                ts: 5_440_324_461_000 + 1_000,
                local: "127.0.0.1:7799".parse().unwrap(),
                remote: "127.0.0.1:47906".parse().unwrap(),
                old: TcpState::SYN_RECV,
                new: TcpState::ESTABLISHED,
                by_us: true,
            }
        );
        match &ev[1] {
            KernelEvent::SendReset {
                src, state, reason, ..
            } => {
                assert_eq!(src.port(), 47906);
                assert_eq!(
                    (state.as_str(), reason.as_str()),
                    ("CLOSE", "TCP_ABORT_ON_CLOSE")
                );
            }
            other => panic!("{other:?}"),
        }
        match &ev[2] {
            KernelEvent::State {
                local, new, by_us, ..
            } => {
                assert!(!by_us, "the idle task is not us");
                assert_eq!(*local, "[::1]:7799".parse().unwrap());
                assert_eq!(*new, TcpState::TIME_WAIT);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reasons_are_classified_or_left_open() {
        assert_eq!(reason_kind("TCP_ABORT_ON_CLOSE"), Some(ReasonKind::Call));
        assert_eq!(reason_kind("NO_SOCKET"), Some(ReasonKind::Answer));
        assert_eq!(reason_kind("NOT_SPECIFIED"), None);
    }

    #[test]
    fn timestamps_keep_their_digits() {
        assert_eq!(parse_ts("12.000001:"), Some(12_000_001_000));
        assert_eq!(parse_ts("x"), None);
    }
}
