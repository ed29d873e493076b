//! The data every stage shares: what a call did, what the wire carried.
//!
//! These types are the contract between the boxes of the pipeline
//! (driver and capture produce them, the correlator joins them, renderers and
//! the pcapng writer consume them), so they hold observations only: nothing in
//! here encodes what the kernel is expected to do.

pub mod errno;
pub mod exec;
pub mod fault;
pub mod kernel;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// Nanoseconds since the Unix epoch on CLOCK_REALTIME.
///
/// One clock for everything: libpcap stamps packets with CLOCK_REALTIME, so
/// calls are stamped with it too, and the two can be ordered against each other.
pub type Nanos = i64;

/// Which of the two programs of a scenario made a call or sent a segment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The TCP header flag bits, as they appear in byte 13 of the header.
#[derive(Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "Vec<&'static str>", try_from = "Vec<String>")]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
    const NAMES: [(u8, &'static str); 8] = [
        (Self::SYN, "SYN"),
        (Self::FIN, "FIN"),
        (Self::RST, "RST"),
        (Self::PSH, "PSH"),
        (Self::ACK, "ACK"),
        (Self::URG, "URG"),
        (Self::ECE, "ECE"),
        (Self::CWR, "CWR"),
    ];

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    /// Upper-case names, SYN/FIN/RST first because they are what a reader looks for.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl TryFrom<Vec<String>> for TcpFlags {
    type Error = String;
    fn try_from(names: Vec<String>) -> Result<Self, String> {
        let mut bits = 0;
        for n in &names {
            let (bit, _) = Self::NAMES
                .iter()
                .find(|(_, name)| name == n)
                .ok_or_else(|| format!("unknown TCP flag {n:?}"))?;
            bits |= bit;
        }
        Ok(TcpFlags(bits))
    }
}

impl From<TcpFlags> for Vec<&'static str> {
    fn from(f: TcpFlags) -> Self {
        f.names()
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.names().join(","))
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A TCP option worth showing; the rest are kept as their kind number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpOpt {
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Sack(Vec<(u32, u32)>),
    Timestamp { val: u32, ecr: u32 },
    Other(u8),
}

impl fmt::Display for TcpOpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOpt::Mss(v) => write!(f, "mss {v}"),
            TcpOpt::WindowScale(v) => write!(f, "wscale {v}"),
            TcpOpt::SackPermitted => f.write_str("sackOK"),
            TcpOpt::Sack(b) => write!(f, "sack {}", b.len()),
            TcpOpt::Timestamp { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            TcpOpt::Other(k) => write!(f, "opt {k}"),
        }
    }
}

/// One TCP segment as captured, with absolute sequence numbers.
///
/// Sides and relative numbers are the correlator's business: the parser only
/// says what the bytes say, so the same type serves live runs and old captures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Position of the frame in the capture (0-based), to find it again in the pcapng.
    pub frame: usize,
    pub ts: Nanos,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    /// The window field as sent (not scaled: the scale is only known from the SYNs).
    pub win: u16,
    /// Payload bytes according to the IP length, even when the snap length cut them.
    pub len: u32,
    /// The options captured (all of them unless `cut` says otherwise).
    pub options: Vec<TcpOpt>,
    /// IPv4 time to live or IPv6 hop limit, as captured.
    pub ttl: u8,
    /// What the snap length cut from the TCP header (`decode::frame::cut`
    /// bits; 0 when the header was captured whole).
    pub cut: u8,
}

impl Segment {
    /// Sequence space the segment occupies: SYN and FIN count one each.
    pub fn seq_space(&self) -> u32 {
        self.len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// A frame as libpcap delivered it: kept whole so the pcapng holds the real bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RawPacket {
    pub ts: Nanos,
    /// Length on the wire; `data` may be shorter when the snap length cut it.
    pub orig_len: u32,
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

/// Bytes as one lower-case hex string, so a recorded packet stays readable in JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::fmt::Write;

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(b.len() * 2);
        for x in b {
            let _ = write!(out, "{x:02x}");
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd number of hex digits"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("not a hex digit"))
            })
            .collect()
    }
}

/// The link-layer type of a capture (DLT_* / LINKTYPE_* number).
pub type LinkType = u32;

/// A TCP state as the kernel numbers it (include/net/tcp_states.h).
///
/// Kept as the kernel's number so that a state this tool does not know yet is
/// still shown (as its number) instead of being guessed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct TcpState(pub u8);

impl From<TcpState> for String {
    fn from(s: TcpState) -> String {
        s.name().into_owned()
    }
}

impl TryFrom<String> for TcpState {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        if let Some(n) = name.strip_prefix("STATE_") {
            return n
                .parse()
                .map(TcpState)
                .map_err(|_| format!("bad state {name:?}"));
        }
        (1..=13)
            .map(TcpState)
            .find(|s| s.name() == name)
            .ok_or_else(|| format!("unknown TCP state {name:?}"))
    }
}

impl TcpState {
    pub const ESTABLISHED: TcpState = TcpState(1);
    pub const SYN_SENT: TcpState = TcpState(2);
    pub const SYN_RECV: TcpState = TcpState(3);
    pub const FIN_WAIT1: TcpState = TcpState(4);
    pub const FIN_WAIT2: TcpState = TcpState(5);
    pub const TIME_WAIT: TcpState = TcpState(6);
    pub const CLOSE: TcpState = TcpState(7);
    pub const CLOSE_WAIT: TcpState = TcpState(8);
    pub const LAST_ACK: TcpState = TcpState(9);
    pub const LISTEN: TcpState = TcpState(10);
    pub const CLOSING: TcpState = TcpState(11);
    pub const NEW_SYN_RECV: TcpState = TcpState(12);

    /// The kernel's name of the state (`FIN_WAIT1`); `STATE_N` for a number
    /// the kernel may add later. Borrowed for the known ones: the timeline
    /// writes a few per line.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        let n = match self.0 {
            1 => "ESTABLISHED",
            2 => "SYN_SENT",
            3 => "SYN_RECV",
            4 => "FIN_WAIT1",
            5 => "FIN_WAIT2",
            6 => "TIME_WAIT",
            7 => "CLOSE",
            8 => "CLOSE_WAIT",
            9 => "LAST_ACK",
            10 => "LISTEN",
            11 => "CLOSING",
            12 => "NEW_SYN_RECV",
            13 => "BOUND_INACTIVE",
            other => return format!("STATE_{other}").into(),
        };
        n.into()
    }
}

/// What the kernel said about a socket after a call, and how we know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum StateObs {
    /// getsockopt(TCP_INFO) on the descriptor: tcpi_state.
    TcpInfo { state: TcpState },
    /// The descriptor is gone (closed); the connection was found in the
    /// namespace's /proc/net/tcp{,6} by its addresses.
    ProcNet { state: TcpState },
    /// The descriptor's socket says CLOSE, but the kernel's table holds the
    /// connection under another state: Linux hands a connection entering
    /// TIME_WAIT to a separate small socket, so both are observations.
    Handed {
        descriptor: TcpState,
        table: TcpState,
    },
    /// The descriptor is gone and no socket with these addresses is left in
    /// the kernel's table.
    Gone,
    /// The socket never had addresses to look it up by (e.g. closed before connect).
    Unknown,
}

impl StateObs {
    /// The short name shown in timelines: the kernel's state name, or what we know instead.
    pub fn label(&self) -> String {
        match self {
            StateObs::TcpInfo { state } | StateObs::ProcNet { state } => state.name().into_owned(),
            StateObs::Handed { descriptor, table } => {
                format!("{} (kernel table: {})", descriptor.name(), table.name())
            }
            StateObs::Gone => "CLOSED (no socket left)".into(),
            StateObs::Unknown => "unknown".into(),
        }
    }
    /// A short machine-readable token for JSON: the kernel's state name,
    /// `CLOSED` when no socket is left, null when unknown.
    pub fn token(&self) -> Option<String> {
        match self {
            StateObs::TcpInfo { state } | StateObs::ProcNet { state } => {
                Some(state.name().into_owned())
            }
            StateObs::Handed { descriptor, .. } => Some(descriptor.name().into_owned()),
            StateObs::Gone => Some("CLOSED".into()),
            StateObs::Unknown => None,
        }
    }

    pub fn state(&self) -> Option<TcpState> {
        match self {
            StateObs::TcpInfo { state } | StateObs::ProcNet { state } => Some(*state),
            StateObs::Handed { table, .. } => Some(*table),
            _ => None,
        }
    }
}

/// Something hc-trace itself did during a run (a fault it made on the wire),
/// shown in the timeline so nothing it changed is hidden.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub ts: Nanos,
    pub text: String,
    /// The scenario line that asked for it.
    pub line: Option<usize>,
}

/// The kind of socket call, as named in timelines and JSON.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum CallKind {
    Socket,
    /// bind(2): only traced programs make it as a call of its own.
    Bind,
    Listen,
    Connect,
    Accept,
    Write,
    Read,
    Shutdown,
    Close,
    Setsockopt,
    Dup,
    Sleep,
}

impl CallKind {
    pub fn name(self) -> &'static str {
        match self {
            CallKind::Socket => "socket",
            CallKind::Bind => "bind",
            CallKind::Listen => "listen",
            CallKind::Connect => "connect",
            CallKind::Accept => "accept",
            CallKind::Write => "write",
            CallKind::Read => "read",
            CallKind::Shutdown => "shutdown",
            CallKind::Close => "close",
            CallKind::Setsockopt => "setsockopt",
            CallKind::Dup => "dup",
            CallKind::Sleep => "sleep",
        }
    }
}

/// One socket call as it was made and what it returned.
///
/// Everything here was measured around the real system call; the correlator
/// adds what the call put on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub side: Side,
    pub kind: CallKind,
    /// The call written as a C programmer would: `shutdown(4, SHUT_WR)`.
    pub text: String,
    /// The arguments that matter, for JSON: `"SHUT_WR"`, `"100"`.
    pub args: String,
    /// Who made it when it was not a scenario side (a traced program's pid), for later sources.
    pub pid: Option<u32>,
    pub fd: Option<i32>,
    pub ret: Option<i64>,
    /// errno's symbolic name when the call failed (`ECONNRESET`).
    pub errno: Option<String>,
    /// A plain-words remark on the result ("no data within 250 ms").
    pub note: Option<String>,
    pub start: Nanos,
    pub end: Nanos,
    /// The socket's own address and its peer's at the time of the call, when it had them.
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// For writes: the byte offsets [from, to) of the stream that this call handed
    /// to the kernel, so data segments can be matched to writes by sequence number.
    pub stream: Option<(u64, u64)>,
    pub state_after: StateObs,
    /// What the kernel said about the socket just before the call (TCP_INFO),
    /// when it was asked: the left side of a state change the call made.
    #[serde(default)]
    pub state_before: Option<StateObs>,
    /// The scenario line that made this call, when a scenario made it.
    pub line: Option<usize>,
}

impl Call {
    /// The call as named in causes and pictures: `shutdown(SHUT_WR)`,
    /// `close()`, `write(100)`.
    pub fn short_name(&self) -> String {
        match self.kind {
            CallKind::Shutdown => format!("shutdown({})", self.args),
            // The write family is "write"; the calls that move bytes from
            // another descriptor keep their own name.
            CallKind::Write => match self.text.split('(').next() {
                Some(n @ ("sendfile" | "splice" | "sendmmsg" | "copy_file_range")) => {
                    format!("{n}({})", self.args)
                }
                _ => format!("write({})", self.args),
            },
            CallKind::Setsockopt => format!("setsockopt({})", self.args),
            k => format!("{}()", k.name()),
        }
    }

    /// The call as it was entered: its text without a result some texts
    /// carry (`accept(3) = 5` → `accept(3)`), which did not exist yet.
    pub fn entry_text(&self) -> &str {
        match self.text.rfind(" = ") {
            Some(at) if self.text[..at].ends_with(')') => &self.text[..at],
            _ => &self.text,
        }
    }

    /// The connection the call acted on, written client-end first.
    pub fn conn(&self) -> Option<(SocketAddr, SocketAddr)> {
        match (self.local, self.peer) {
            (Some(l), Some(p)) => Some(match self.side {
                Side::Client => (l, p),
                Side::Server => (p, l),
            }),
            _ => None,
        }
    }
}

/// A step that could not be made as written (its descriptor was never
/// created because an earlier call failed, say). The run then exits 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepProblem {
    pub line: usize,
    pub step: String,
    pub message: String,
}

/// The state of one socket when the run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalState {
    pub side: Side,
    pub local: SocketAddr,
    pub peer: Option<SocketAddr>,
    pub state: StateObs,
}

/// Does `addr` belong to the socket listening on `listen`? Same port, and
/// the same address unless the listener took every address (0.0.0.0, ::).
/// Addresses compare as the wire carries them ([`on_the_wire`]).
pub fn addr_match(listen: SocketAddr, addr: SocketAddr) -> bool {
    let (listen, addr) = (on_the_wire(listen), on_the_wire(addr));
    listen.port() == addr.port() && (listen.ip().is_unspecified() || listen.ip() == addr.ip())
}

/// An address as the wire carries it: an IPv4-mapped IPv6 address
/// (`[::ffff:127.0.0.1]:5555`, what a dual-stack AF_INET6 socket reports
/// for an IPv4 peer: Java, Go's `net.Listen(":port")`, Node's
/// `listen(port)`) is the IPv4 address its segments carry. Every place a
/// traced call's or a kernel event's addresses meet the capture goes
/// through this; what the program saw is still shown as it saw it.
pub fn on_the_wire(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

/// The kernel's socket table, read between steps for a connection whose
/// descriptor is closed (sock_diag): what became of it after close().
/// Recorded only when it changed since the last reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableObs {
    pub ts: Nanos,
    pub side: Side,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// The connection's state; None once no socket with these addresses is left.
    pub state: Option<TcpState>,
}
