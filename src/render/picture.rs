//! What every picture of a run draws (the terminal ladder, Mermaid, SVG):
//! one row per call, per state change and per segment, in time order.
//!
//! The three pictures differ only in how they draw; deciding what a row says
//! (the short cause of a segment, when a state counts as changed) happens
//! here once, so the ladder, the Mermaid page and the SVG handed in for an
//! assignment can never tell a student different stories about one run.

use super::seg_label;
use crate::correlate::{call_name, CallEvent, Cause, Event, Part, SegEvent};
use crate::model::{CallKind, Side, StateObs};
use crate::report::Report;
use std::collections::HashMap;
use std::net::SocketAddr;

/// One line of the story, on one side or between the two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    Call(CallRow),
    State(StateRow),
    Seg(SegRow),
    /// Something hc-trace itself did (a fault on the wire), across both sides.
    Note(String),
}

/// A call, written on the side that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRow {
    /// Event number in the timeline, so the picture can be matched with it.
    pub event: usize,
    pub side: Side,
    /// `shutdown(SHUT_WR) = 0`, `read() = -1 ECONNRESET`: descriptor numbers
    /// are left out because they mean nothing on paper. The result is joined
    /// to `=` by no-break spaces (see `wrap`); `plain_text` has plain ones.
    pub text: String,
    pub failed: bool,
}

/// The state a socket was seen in after a call, when it differs from the
/// last one seen for that socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRow {
    pub side: Side,
    pub state: String,
}

/// A segment: an arrow from its sender to the other side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegRow {
    pub event: usize,
    pub from: Side,
    /// `SYN`, `data(100)+FIN`, `RST` (see `seg_label`).
    pub label: String,
    pub seq: u32,
    pub ack: Option<u32>,
    /// The cause in a few words: `shutdown(SHUT_WR) #9`, `kernel: ACK of #10`.
    pub cause: String,
    /// No call put it there: the kernel sent it on its own.
    pub kernel: bool,
    pub retransmission: bool,
}

impl CallRow {
    pub fn plain_text(&self) -> String {
        self.text.replace(NBSP, " ")
    }
}

impl SegRow {
    /// `#10 FIN seq 101 ack 1`: what a textbook writes above the arrow.
    pub fn title(&self) -> String {
        let mut s = format!("#{} {}", self.event, self.label);
        s.push(' ');
        s.push_str(&self.numbers());
        s
    }
    /// `seq 101 ack 1`, the numbers relative to each side's first sequence number.
    pub fn numbers(&self) -> String {
        match self.ack {
            Some(a) => format!("seq {} ack {a}", self.seq),
            None => format!("seq {}", self.seq),
        }
    }
    pub fn is_rst(&self) -> bool {
        self.label.contains("RST")
    }
}

/// The rows of a run, in timeline order.
pub fn rows(r: &Report) -> Vec<Row> {
    let mut out = Vec::new();
    // Last state seen per socket, keyed like the correlator keys sockets.
    let mut seen: HashMap<(Side, Option<SocketAddr>, Option<SocketAddr>), String> = HashMap::new();
    // The kernel's own reports, when there are any, say every change as it
    // happened; states read after calls would only repeat them, later.
    let kernel_states = r
        .timeline
        .events
        .iter()
        .any(|e| matches!(e, Event::State(_)));
    for (i, e) in r.timeline.events.iter().enumerate() {
        match e {
            Event::Call(c) => {
                out.push(Row::Call(call_row(i, c)));
                if let Some(now) = short_state(&c.call.state_after).filter(|_| !kernel_states) {
                    let key = (c.call.side, c.call.local, c.call.peer);
                    let changed = seen.get(&key) != Some(&now);
                    if c.call.local.is_some() {
                        seen.insert(key, now.clone());
                    }
                    if changed {
                        out.push(Row::State(StateRow {
                            side: c.call.side,
                            state: now,
                        }));
                    }
                }
            }
            Event::Segment(s) => out.push(Row::Seg(seg_row(i, s, r))),
            // The kernel's own report of a change, as it happened.
            Event::State(st) => {
                let now = st.new.name();
                seen.insert((st.side, Some(st.local), Some(st.remote)), now.clone());
                let state = match st.continues_as {
                    Some(t) => format!("{now} (then {} in the kernel table)", t.name()),
                    None => now,
                };
                out.push(Row::State(StateRow {
                    side: st.side,
                    state,
                }));
            }
            Event::Note(n) => out.push(Row::Note(n.text.clone())),
        }
    }
    out
}

fn call_row(i: usize, c: &CallEvent) -> CallRow {
    let call = &c.call;
    let name = match call.kind {
        // The driver already writes sleep as `sleep(100 ms)`.
        CallKind::Sleep => call.text.clone(),
        // `TCP_CORK 1` stays on one line; SO_LINGER's pair may break at its comma.
        CallKind::Setsockopt if !call.args.contains(',') => {
            call_name(call).replace(' ', &NBSP.to_string())
        }
        _ => call_name(call),
    };
    let ret = match (&call.errno, call.ret) {
        (Some(e), _) => format!(" ={NBSP}-1{NBSP}{e}"),
        (None, Some(0)) if call.kind == CallKind::Read => format!(" ={NBSP}0{NBSP}EOF"),
        (None, Some(r)) if call.kind != CallKind::Sleep => format!(" ={NBSP}{r}"),
        _ => String::new(),
    };
    CallRow {
        event: i,
        side: call.side,
        text: format!("{name}{ret}"),
        failed: call.errno.is_some(),
    }
}

/// The state name a textbook would write: the connection's state even when
/// Linux has handed it to a TIME_WAIT socket, CLOSED once nothing is left.
pub fn short_state(s: &StateObs) -> Option<String> {
    match s {
        StateObs::TcpInfo { state } | StateObs::ProcNet { state } => Some(state.name()),
        StateObs::Handed { table, .. } => Some(table.name()),
        StateObs::Gone => Some("CLOSED".into()),
        StateObs::Unknown => None,
    }
}

fn seg_row(i: usize, s: &SegEvent, r: &Report) -> SegRow {
    let kernel = s.causes.iter().all(|c| c.event.is_none());
    SegRow {
        event: i,
        from: s.from,
        label: seg_label(s),
        seq: s.rel_seq,
        ack: s.rel_ack,
        cause: match &s.tampered {
            // What hc-trace did to it matters more than the cause here.
            Some(t) if t.contains("dropped") => "DROPPED by hc-trace".into(),
            Some(t) if t.contains("held") => "held by hc-trace".into(),
            _ => short_cause(s, r),
        },
        kernel,
        retransmission: s.retransmission_of.is_some(),
    }
}

/// The cause of a segment in a few words, for a picture where the full
/// sentence of the timeline does not fit.
pub fn short_cause(s: &SegEvent, r: &Report) -> String {
    if let Some(o) = s.retransmission_of {
        return format!("retransmits #{o}");
    }
    // The calls behind it, each once (a data+FIN segment has two).
    let mut calls: Vec<usize> = Vec::new();
    for c in &s.causes {
        if let Some(ev) = c.event {
            if !calls.contains(&ev) {
                calls.push(ev);
            }
        }
    }
    let name = |ev: usize, full: bool| match r.timeline.events.get(ev) {
        Some(Event::Call(c)) if full => format!("{} #{ev}", call_name(&c.call)),
        Some(Event::Call(c)) => format!("{} #{ev}", c.call.kind.name()),
        _ => format!("#{ev}"),
    };
    match calls.as_slice() {
        [one] => return name(*one, true),
        [_, ..] => {
            return calls
                .iter()
                .map(|&ev| name(ev, false))
                .collect::<Vec<_>>()
                .join(" + ")
        }
        [] => {}
    }
    let Some(c) = super::primary_cause(s) else {
        return "kernel".into();
    };
    kernel_cause(c)
}

fn kernel_cause(c: &Cause) -> String {
    match (c.part, c.answers) {
        (Part::Ack, Some(a)) => format!("kernel: ACK of #{a}"),
        (Part::SynAck, Some(a)) => format!("kernel: answers #{a}"),
        (Part::Rst, Some(a)) => format!("kernel: answers #{a}"),
        (Part::Ack, None) if c.why.contains("window update") => "kernel: window update".into(),
        (Part::Ack, None) if c.why.contains("duplicate") => "kernel: duplicate ACK".into(),
        (Part::Ack, None) if c.why.contains("keep-alive") => "kernel: keep-alive".into(),
        (Part::Data, None) => "data: no write() seen".into(),
        (Part::Fin, None) => "FIN: no close() seen".into(),
        (Part::Syn, None) => "SYN: no connect() seen".into(),
        _ => "kernel".into(),
    }
}

/// Word-wraps `text` to lines of at most `width` characters; a word longer
/// than a line is cut, so no line is ever wider than asked. Only plain
/// spaces break: a no-break space (U+00A0) keeps `= 0` with its call, and is
/// given back as a plain space.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split([' ', '\n']).filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let cur_len = cur.chars().count();
            let need = if cur.is_empty() { 0 } else { 1 };
            if cur_len + need + word.len() <= width {
                if need == 1 {
                    cur.push(' ');
                }
                cur.extend(word.iter());
                break;
            }
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
                continue;
            }
            // A word wider than a whole line: cut it.
            let rest = word.split_off(width);
            lines.push(word.iter().collect());
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines.into_iter().map(|l| l.replace(NBSP, " ")).collect()
}

/// Joins words that `wrap` must keep on one line.
pub const NBSP: char = '\u{a0}';

/// Synthetic runs for the renderers' tests: no privileges, no capture.
#[cfg(test)]
pub(crate) mod testing {
    use crate::correlate::correlate;
    use crate::driver::StepProblem;
    use crate::model::{Call, CallKind, Nanos, Segment, Side, StateObs, TcpFlags, TcpState};
    use crate::report::{CaptureSummary, Report};
    use std::net::SocketAddr;

    pub const C: &str = "127.0.0.1:40000";
    pub const S: &str = "127.0.0.1:5555";
    const MS: Nanos = 1_000_000;
    pub const A: u8 = TcpFlags::ACK;
    pub const F: u8 = TcpFlags::FIN;
    pub const R: u8 = TcpFlags::RST;
    pub const SYN: u8 = TcpFlags::SYN;

    fn addr(s: &str) -> SocketAddr {
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
            });
            self.next[idx(side)] = seq.wrapping_add(len + u32::from(f.syn()) + u32::from(f.fin()));
            self
        }

        pub fn handshake(&mut self) -> &mut Self {
            self.call(Side::Server, CallKind::Listen, "8", 0, TcpState::LISTEN)
                .call(Side::Client, CallKind::Connect, S, 0, TcpState::ESTABLISHED)
                .seg(Side::Client, SYN, 0)
                .seg(Side::Server, SYN | A, 0)
                .seg(Side::Client, A, 0)
                .call(Side::Server, CallKind::Accept, "", 4, TcpState::ESTABLISHED)
        }

        pub fn report(&self, name: &str) -> Report {
            Report {
                scenario: name.into(),
                teaches: "a synthetic run".into(),
                origin: "test".into(),
                client: Some(addr(C)),
                server: Some(addr(S)),
                timeline: correlate(self.calls.clone(), self.segs.clone(), Some(addr(S))),
                capture: CaptureSummary {
                    iface: "lo".into(),
                    filter: "tcp port 5555".into(),
                    packets: self.segs.len(),
                    ..Default::default()
                },
                ..Default::default()
            }
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
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_state_row_follows_each_change_only() {
        let rows = rows(&shut_wr());
        let states: Vec<(Side, &str)> = rows
            .iter()
            .filter_map(|r| match r {
                Row::State(s) => Some((s.side, s.state.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            vec![
                (Side::Server, "LISTEN"),
                (Side::Client, "ESTABLISHED"),
                (Side::Server, "ESTABLISHED"),
                (Side::Client, "FIN_WAIT1"),
                (Side::Server, "CLOSE_WAIT"),
                (Side::Server, "CLOSED"),
                (Side::Client, "TIME_WAIT"),
            ]
        );
    }

    #[test]
    fn causes_in_short_form() {
        let r = shut_wr();
        let segs: Vec<SegRow> = rows(&r)
            .into_iter()
            .filter_map(|r| match r {
                Row::Seg(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(segs[0].cause, "connect() #1");
        assert!(segs[1].kernel && segs[1].cause == "kernel: answers #2");
        let fin = segs.iter().find(|s| s.label == "FIN").expect("a FIN");
        assert!(fin.cause.starts_with("shutdown(SHUT_WR) #"));
        assert!(!fin.kernel);
        assert_eq!(fin.title(), format!("#{} FIN seq 101 ack 1", fin.event));
        let w = rows(&worst());
        let both = w
            .iter()
            .find_map(|r| match r {
                Row::Seg(s) if s.label == "data(65000)+FIN" => Some(s.cause.clone()),
                _ => None,
            })
            .expect("data+FIN");
        assert!(
            both.contains("write #") && both.contains(" + shutdown #"),
            "{both}"
        );
    }

    #[test]
    fn wrap_never_exceeds_the_width() {
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
        assert_eq!(
            wrap("close()\u{a0}=\u{a0}0", 8),
            vec!["close() = 0"[..8].to_string(), "= 0".into()]
        );
        assert_eq!(wrap("a b\u{a0}c", 3), vec!["a", "b c"]);
        for l in wrap(&"word ".repeat(50), 17) {
            assert!(l.chars().count() <= 17);
        }
    }
}
