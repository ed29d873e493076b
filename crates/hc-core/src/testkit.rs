//! A synthetic run for unit tests: calls and segments of one connection,
//! built step by step, correlated like a real run. No privileges needed.
//! Shared by the correlator's tests and the pictures' tests.

use crate::correlate::correlate;
use crate::model::StepProblem;
use crate::model::{Call, CallKind, Nanos, Segment, Side, StateObs, TcpFlags, TcpState};
use crate::report::{CaptureSummary, Report};
use std::net::SocketAddr;

pub const C: &str = "127.0.0.1:40000";
pub const S: &str = "127.0.0.1:5555";
pub const MS: Nanos = 1_000_000;
pub const A: u8 = TcpFlags::ACK;
pub const F: u8 = TcpFlags::FIN;
pub const R: u8 = TcpFlags::RST;
pub const P: u8 = TcpFlags::PSH;
pub const SYN: u8 = TcpFlags::SYN;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// Calls and segments of one connection at given milliseconds.
pub struct Script {
    calls: Vec<Call>,
    segs: Vec<Segment>,
    next: [u32; 2],
    written: [u64; 2],
    t: i64,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    pub fn new() -> Self {
        Script {
            calls: Vec::new(),
            segs: Vec::new(),
            next: [1000, 5000],
            written: [0, 0],
            t: 0,
        }
    }

    /// A call that succeeded with `ret` and left the socket in `state`.
    pub fn call(
        &mut self,
        side: Side,
        kind: CallKind,
        args: &str,
        ret: i64,
        state: TcpState,
    ) -> &mut Self {
        self.call_full(side, kind, args, Ok(ret), StateObs::TcpInfo { state })
    }

    pub fn call_full(
        &mut self,
        side: Side,
        kind: CallKind,
        args: &str,
        ret: Result<i64, &str>,
        state: StateObs,
    ) -> &mut Self {
        self.t += 1;
        let (local, peer) = match side {
            Side::Client => (addr(C), Some(addr(S))),
            Side::Server if kind == CallKind::Listen => (addr(S), None),
            Side::Server => (addr(S), Some(addr(C))),
        };
        let mut stream = None;
        if let (CallKind::Write, Ok(n)) = (kind, ret) {
            let w = &mut self.written[idx(side)];
            stream = Some((*w, *w + n as u64));
            *w += n as u64;
        }
        self.calls.push(Call {
            side,
            kind,
            text: format!("{}(3, {args})", kind.name()),
            args: args.to_string(),
            pid: None,
            fd: Some(3),
            ret: Some(ret.unwrap_or(-1)),
            errno: ret.err().map(str::to_string),
            note: None,
            start: self.t * MS,
            end: self.t * MS + 10_000,
            local: Some(local),
            peer,
            stream,
            state_after: state,
            state_before: None,
            line: None,
        });
        self
    }

    pub fn seg(&mut self, side: Side, flags: u8, len: u32) -> &mut Self {
        self.t += 1;
        let (src, dst) = match side {
            Side::Client => (addr(C), addr(S)),
            Side::Server => (addr(S), addr(C)),
        };
        let seq = self.next[idx(side)];
        let ack = self.next[idx(side.other())];
        let f = TcpFlags(flags);
        self.segs.push(Segment {
            frame: self.segs.len(),
            ts: self.t * MS,
            src,
            dst,
            flags: f,
            seq,
            ack: if f.ack() { ack } else { 0 },
            win: 512,
            len,
            options: vec![],
            ttl: 64,
            cut: 0,
        });
        self.next[idx(side)] = seq.wrapping_add(len + u32::from(f.syn()) + u32::from(f.fin()));
        self
    }

    /// listen at 0 ms, connect and the three handshake segments at 1 ms
    /// (connect returns after the SYN-ACK, as a blocking connect does),
    /// accept at 2 ms.
    pub fn handshake(&mut self) -> &mut Self {
        self.at(0)
            .call(Side::Server, CallKind::Listen, "8", 0, TcpState::LISTEN)
            .call_at(1, Side::Client, CallKind::Connect, S, 0)
            .seg_at(1, Side::Client, SYN, 0)
            .seg_at(1, Side::Server, SYN | A, 0)
            .seg_at(1, Side::Client, A, 0);
        let last = self.segs.last().map_or(0, |s| s.ts);
        if let Some(c) = self
            .calls
            .iter_mut()
            .rev()
            .find(|c| c.kind == CallKind::Connect)
        {
            c.end = last + 5_000;
        }
        self.at(2)
            .call(Side::Server, CallKind::Accept, "", 4, TcpState::ESTABLISHED)
    }

    /// The next event happens at `t_ms`; later ones one millisecond apart again.
    pub fn at(&mut self, t_ms: i64) -> &mut Self {
        self.t = t_ms - 1;
        self
    }

    /// A call at `t_ms` that returned `ret` and left the socket ESTABLISHED.
    pub fn call_at(
        &mut self,
        t_ms: i64,
        side: Side,
        kind: CallKind,
        args: &str,
        ret: i64,
    ) -> &mut Self {
        self.at(t_ms)
            .call(side, kind, args, ret, TcpState::ESTABLISHED)
    }

    /// A segment 50 µs into millisecond `t_ms`: after a call made at `t_ms` returned.
    pub fn seg_at(&mut self, t_ms: i64, side: Side, flags: u8, len: u32) -> &mut Self {
        self.at(t_ms).seg(side, flags, len);
        if let Some(s) = self.segs.last_mut() {
            s.ts += 50_000;
        }
        self
    }

    /// Sends again, at `t_ms`, the segment at position `i` of the segments so far.
    pub fn resend_at(&mut self, t_ms: i64, i: usize) -> &mut Self {
        let mut s = self.segs[i].clone();
        s.ts = t_ms * MS + 50_000;
        s.frame = self.segs.len();
        self.segs.push(s);
        self.t = t_ms;
        self
    }

    /// The calls and segments so far, to correlate with extras.
    pub fn parts(&self) -> (Vec<Call>, Vec<Segment>) {
        (self.calls.clone(), self.segs.clone())
    }

    /// The timeline of the calls and segments so far.
    pub fn run(&self) -> crate::correlate::Timeline {
        correlate(self.calls.clone(), self.segs.clone(), Some(addr(S)))
    }

    pub fn report(&self, name: &str) -> Report {
        self.report_with(name, crate::correlate::Extra::default())
    }

    /// The report of the calls and segments so far, with faults and notes.
    pub fn report_with(&self, name: &str, extra: crate::correlate::Extra) -> Report {
        let (calls, segs) = self.parts();
        self.report_of(name, calls, segs, extra)
    }

    /// The report of these calls and segments (changed by hand), with extras.
    pub fn report_of(
        &self,
        name: &str,
        calls: Vec<Call>,
        segs: Vec<Segment>,
        extra: crate::correlate::Extra,
    ) -> Report {
        let packets = segs.len();
        Report {
            scenario: name.into(),
            teaches: "a synthetic run".into(),
            origin: "test".into(),
            client: Some(addr(C)),
            server: Some(addr(S)),
            timeline: crate::correlate::correlate_with(calls, segs, extra, Some(addr(S))),
            capture: CaptureSummary {
                iface: "lo".into(),
                filter: "tcp port 5555".into(),
                packets,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// An Ethernet+IPv4+TCP frame as `lo` carries it.
pub fn lo_frame(
    ts: Nanos,
    src: &str,
    dst: &str,
    seq: u32,
    ack: Option<u32>,
    flags: &str,
) -> crate::model::RawPacket {
    let (s, d) = (addr(src), addr(dst));
    let ip = |x: SocketAddr| match x.ip() {
        std::net::IpAddr::V4(v) => v.octets(),
        std::net::IpAddr::V6(_) => unreachable!("IPv4 frames only"),
    };
    let mut b = etherparse::PacketBuilder::ethernet2([0; 6], [0; 6])
        .ipv4(ip(s), ip(d), 64)
        .tcp(s.port(), d.port(), seq, 65535);
    if let Some(n) = ack {
        b = b.ack(n);
    }
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'F' => b.fin(),
            'R' => b.rst(),
            _ => b,
        };
    }
    let mut data = Vec::new();
    b.write(&mut data, &[])
        .expect("writing to a Vec cannot fail");
    crate::model::RawPacket {
        ts,
        orig_len: data.len() as u32,
        data,
    }
}

/// The half-close of `shut-wr`, as the kernel does it.
pub fn shut_wr() -> Report {
    use Side::*;
    let mut s = Script::new();
    s.handshake()
        .call(Client, CallKind::Write, "100", 100, TcpState::ESTABLISHED)
        .seg(Client, A, 100)
        .seg(Server, A, 0)
        .call(
            Client,
            CallKind::Shutdown,
            "SHUT_WR",
            0,
            TcpState::FIN_WAIT1,
        )
        .seg(Client, F | A, 0)
        .seg(Server, A, 0)
        .call(Server, CallKind::Read, "", 100, TcpState::CLOSE_WAIT)
        .call(Server, CallKind::Read, "", 0, TcpState::CLOSE_WAIT)
        .call(Server, CallKind::Write, "200", 200, TcpState::CLOSE_WAIT)
        .seg(Server, A, 200)
        .seg(Client, A, 0)
        .call_full(Server, CallKind::Close, "", Ok(0), StateObs::Gone)
        .seg(Server, F | A, 0)
        .seg(Client, A, 0)
        .call(Client, CallKind::Read, "", 200, TcpState::TIME_WAIT)
        .call(Client, CallKind::Close, "", 0, TcpState::TIME_WAIT);
    s.report("shut-wr")
}

/// `simultaneous-close` with `wire hold`: both FINs leave before either is
/// delivered, the client's at 3 ms (delivered at 10 ms), the server's at
/// 4 ms (delivered at 10.2 ms); each side's ACK follows the FIN it got.
pub fn simultaneous_held() -> Report {
    use Side::*;
    let mut s = Script::new();
    s.handshake()
        .call_at(3, Client, CallKind::Shutdown, "SHUT_WR", 0)
        .seg_at(3, Client, F | A, 0)
        .call_at(4, Server, CallKind::Shutdown, "SHUT_WR", 0)
        .seg_at(4, Server, F | A, 0)
        .seg_at(10, Server, A, 0)
        .seg_at(11, Client, A, 0);
    let (calls, mut segs) = s.parts();
    // The server's FIN left before the client's FIN reached it: it acknowledges nothing new.
    segs[4].ack = segs[3].seq;
    let held = [(3, 10 * MS), (4, 10 * MS + 200_000)]
        .map(|(i, released)| crate::model::fault::Tampered {
            src: segs[i].src,
            dst: segs[i].dst,
            seq: segs[i].seq,
            flags: segs[i].flags,
            from: segs[i].ts,
            released: Some(released),
        })
        .to_vec();
    let extra = crate::correlate::Extra {
        held,
        ..Default::default()
    };
    s.report_of("simultaneous-held", calls, segs, extra)
}

/// `fin-lost`: the client's FIN is dropped at the server's input, the
/// kernel sends it again at 210 ms, and the server acknowledges that copy.
pub fn fin_dropped() -> Report {
    use Side::*;
    let mut s = Script::new();
    s.handshake()
        .call_at(3, Client, CallKind::Shutdown, "SHUT_WR", 0)
        .seg_at(3, Client, F | A, 0)
        .resend_at(210, 3)
        .seg_at(211, Server, A, 0);
    let extra = crate::correlate::Extra {
        drops: vec![(Client, 2 * MS)],
        ..Default::default()
    };
    s.report_with("fin-lost", extra)
}

/// A long run nothing folds: `n` writes of 10 bytes, each its own segment
/// and ACK (a write is a call, so runs of plain data never grow long).
pub fn many_writes(n: usize) -> Report {
    use Side::*;
    let mut s = Script::new();
    s.handshake();
    for _ in 0..n {
        s.call(Client, CallKind::Write, "10", 10, TcpState::ESTABLISHED)
            .seg(Client, P | A, 10)
            .seg(Server, A, 0);
    }
    s.call(Client, CallKind::Close, "", 0, TcpState::FIN_WAIT1)
        .seg(Client, F | A, 0);
    s.report("many-writes")
}

/// Everything that makes a picture wide: long calls, errors, data+FIN,
/// an RST from the kernel, long text in the header and footer.
pub fn worst() -> Report {
    use Side::*;
    let mut s = Script::new();
    s.handshake()
        .call(
            Client,
            CallKind::Setsockopt,
            "SO_LINGER {l_onoff=1, l_linger=0}",
            0,
            TcpState::ESTABLISHED,
        )
        .call(
            Client,
            CallKind::Write,
            "65000",
            65000,
            TcpState::ESTABLISHED,
        )
        .call(
            Client,
            CallKind::Shutdown,
            "SHUT_RDWR",
            0,
            TcpState::FIN_WAIT1,
        )
        .seg(Client, F | A, 65000)
        .call(Server, CallKind::Write, "100", 100, TcpState::CLOSE_WAIT)
        .seg(Server, A, 100)
        .seg(Client, R, 0)
        .call_full(
            Server,
            CallKind::Read,
            "",
            Err("ECONNRESET"),
            StateObs::Handed {
                descriptor: TcpState::CLOSE,
                table: TcpState::TIME_WAIT,
            },
        );
    let mut r = s.report("a-scenario-with-a-rather-long-name-for-a-header");
    r.teaches = "x".repeat(30) + " " + &"a long lesson; ".repeat(12) + "<&>\"'#%";
    r.problems.push(StepProblem {
        line: 12,
        step: "server read-all on somewhere-far-away (key)".into(),
        message: "the descriptor was never created because an earlier step failed".into(),
    });
    r.interrupted = Some("SIGINT".into());
    r
}
