//! The kernel's tracepoint events in the timeline: which are this run's,
//! and what a state change says about the socket's life.
//!
//! Tracepoints are machine-wide and other namespaces may use the same
//! addresses: an event is kept only if its exact addresses are a
//! connection of this capture (within its time span), or it happened in one
//! of this run's threads during one of its calls on that socket (listen, a
//! connect before the port is known). Anything else belongs to someone else.

use super::{Correlator, Event, Pending, StateEvent};
use crate::model::kernel::KernelEvent;
use crate::model::{addr_match, Call, CallKind, Nanos, Side, StateObs, TcpState};
use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;

/// How far from a call's start and end a kernel event may be and still
/// count as during it (tracepoint times have microsecond resolution).
const SLACK: Nanos = 200_000;
/// How far outside a connection's first and last segment an event on its
/// addresses still belongs to it.
const SPAN_SLACK: Nanos = 500_000_000;

/// The state changes that belong to this run (each with the side whose
/// call it happened in, when that is how it was matched), and every RST event.
pub(super) fn keep_ours(
    kernel: Vec<KernelEvent>,
    events: &[(Nanos, u8, usize, Pending)],
) -> (Vec<(KernelEvent, Option<Side>)>, Vec<KernelEvent>) {
    let mut spans: HashMap<(SocketAddr, SocketAddr), (Nanos, Nanos)> = HashMap::default();
    for (_, _, _, p) in events {
        if let Pending::Seg(s) = p {
            for key in [(s.src, s.dst), (s.dst, s.src)] {
                let e = spans.entry(key).or_insert((s.ts, s.ts));
                e.0 = e.0.min(s.ts);
                e.1 = e.1.max(s.ts);
            }
        }
    }
    // The same socket: a listener (no peer) matches remote 0.0.0.0:0; a
    // connecting socket has no port yet when it enters SYN_SENT.
    let same_socket = |c: &Call, local: SocketAddr, remote: SocketAddr| match (c.local, c.peer) {
        (l, Some(p)) if c.kind == CallKind::Connect => {
            p == remote && (local.port() == 0 || l == Some(local))
        }
        (Some(l), None) => l == local && remote.port() == 0,
        (Some(l), Some(p)) => l == local && p == remote,
        _ => false,
    };
    let own_call = |ts: Nanos, local: SocketAddr, remote: SocketAddr| -> Option<Side> {
        events.iter().find_map(|(_, _, _, p)| match p {
            Pending::Call(c)
                if c.start - SLACK <= ts
                    && ts <= c.end + SLACK
                    && same_socket(c, local, remote) =>
            {
                Some(c.side)
            }
            _ => None,
        })
    };
    let mut kept = Vec::new();
    let mut resets = Vec::new();
    for k in kernel {
        match k {
            KernelEvent::State {
                ts,
                local,
                remote,
                by_us,
                ..
            } => {
                let in_capture = spans
                    .get(&(local, remote))
                    .is_some_and(|(lo, hi)| ts >= lo - SPAN_SLACK && ts <= hi + SPAN_SLACK);
                // Matching by call time is only safe for events that ran in our threads.
                let side = if in_capture || !by_us {
                    None
                } else {
                    own_call(ts, local, remote)
                };
                if in_capture || side.is_some() {
                    kept.push((k, side));
                }
            }
            KernelEvent::SendReset { .. } => resets.push(k),
        }
    }
    (kept, resets)
}

impl Correlator {
    /// A state change from the tracepoint, kept when it belongs to this run:
    /// a connection already seen, the server's listener, or a client connecting to it.
    pub(super) fn push_kernel(&mut self, k: KernelEvent, during_call_of: Option<Side>) {
        let KernelEvent::State {
            ts,
            local,
            remote,
            old,
            new,
            ..
        } = k
        else {
            return;
        };
        // A "change" to the same state says nothing.
        if old == new {
            return;
        }
        let known = self.conn_index.get(&(local, remote)).copied();
        let (side, conn) = match (known, during_call_of) {
            (Some((i, side)), _) => (side, Some(i)),
            (None, Some(side)) => (side, None),
            // In the capture but not yet classified (µs rounding put it
            // before its first segment): the server end holds the listening port.
            (None, None) => match self.server {
                Some(srv) if addr_match(srv, local) => (Side::Server, None),
                _ => (Side::Client, None),
            },
        };
        self.out.push(Event::State(StateEvent {
            ts,
            side,
            conn,
            local,
            remote,
            old,
            new,
            continues_as: None,
        }));
    }

    /// A socket the tracepoint saw go to CLOSE may live on in the kernel's
    /// table (Linux hands a connection entering TIME_WAIT, or an orphan in
    /// FIN_WAIT2, to a small separate socket, which the tracepoint does not
    /// report). When a later reading of the table (a call's, or the one
    /// between steps) found the same connection there, say so.
    /// Returns which events to keep (see `table_from_latest`).
    pub(super) fn note_continuations(&mut self) -> Vec<bool> {
        let mut later: Vec<(usize, TcpState)> = Vec::new();
        for (i, e) in self.out.iter().enumerate() {
            if let Event::State(st) = e {
                if st.new != TcpState::CLOSE {
                    continue;
                }
                let found = self.out[i..].iter().find_map(|e| match e {
                    Event::Call(c)
                        if c.call.side == st.side
                            && c.call.local == Some(st.local)
                            && c.call.peer == Some(st.remote) =>
                    {
                        match &c.call.state_after {
                            StateObs::Handed { table, .. } => Some(*table),
                            StateObs::ProcNet { state } if *state != TcpState::CLOSE => {
                                Some(*state)
                            }
                            _ => None,
                        }
                    }
                    Event::Table(t)
                        if t.side == st.side && t.local == st.local && t.peer == st.remote =>
                    {
                        t.state.filter(|s| *s != TcpState::CLOSE)
                    }
                    _ => None,
                });
                if let Some(t) = found {
                    later.push((i, t));
                }
            }
        }
        for (i, t) in later {
            if let Event::State(st) = &mut self.out[i] {
                st.continues_as = Some(t);
            }
        }
        self.table_from_latest()
    }

    /// A table line says what changed since the latest word on the
    /// connection, the kernel's (a state change, or the state it lived on
    /// in) or the table's own; a reading that only repeats it is dropped,
    /// but for the first one that confirms the kernel's "lives on as": it
    /// stays, without an arrow, as that claim's evidence.
    fn table_from_latest(&mut self) -> Vec<bool> {
        // The latest word, and whether a reading of the table would be the
        // evidence for it (the kernel said the connection lives on).
        let mut latest: HashMap<(Side, SocketAddr, SocketAddr), (Option<TcpState>, bool)> =
            HashMap::default();
        let mut keep = vec![true; self.out.len()];
        for (i, e) in self.out.iter_mut().enumerate() {
            match e {
                Event::State(st) => {
                    latest.insert(
                        (st.side, st.local, st.remote),
                        (
                            Some(st.continues_as.unwrap_or(st.new)),
                            st.continues_as.is_some(),
                        ),
                    );
                }
                Event::Table(t) => {
                    let key = (t.side, t.local, t.peer);
                    let (before, evidence) = latest.get(&key).copied().unwrap_or((t.before, false));
                    // No socket left is the end of CLOSE, not news after it.
                    let closed = |s: Option<TcpState>| s.unwrap_or(TcpState::CLOSE);
                    if closed(before) == closed(t.state) && !evidence {
                        keep[i] = false;
                    }
                    t.before = before;
                    latest.insert(key, (t.state, false));
                }
                _ => {}
            }
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::testkit::{addr, Script, A, C, F, MS, S};

    fn state_ev(
        t_ms: i64,
        local: &str,
        remote: &str,
        old: TcpState,
        new: TcpState,
        by_us: bool,
    ) -> KernelEvent {
        KernelEvent::State {
            ts: t_ms * MS + 60_000,
            local: addr(local),
            remote: addr(remote),
            old,
            new,
            by_us,
        }
    }

    #[test]
    fn an_orphan_in_fin_wait2_lives_on_and_its_table_line_starts_from_the_kernels_word() {
        use crate::model::TableObs;
        // The client closes; the kernel reports FIN_WAIT1 → FIN_WAIT2 →
        // CLOSE (the orphan is handed to a small socket); the table then
        // shows it in FIN_WAIT2, later in TIME_WAIT.
        let s = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Close, "", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .seg_at(4, Side::Server, A, 0)
            .parts();
        let kernel = vec![
            state_ev(3, C, S, TcpState::ESTABLISHED, TcpState::FIN_WAIT1, false),
            state_ev(4, C, S, TcpState::FIN_WAIT1, TcpState::FIN_WAIT2, false),
            state_ev(4, C, S, TcpState::FIN_WAIT2, TcpState::CLOSE, false),
        ];
        let obs = |t_ms: i64, st: Option<TcpState>| TableObs {
            ts: t_ms * MS,
            side: Side::Client,
            local: addr(C),
            peer: addr(S),
            state: st,
        };
        let extra = Extra {
            kernel,
            table: vec![
                obs(5, Some(TcpState::FIN_WAIT2)),
                obs(6, Some(TcpState::FIN_WAIT2)),
                obs(9, Some(TcpState::TIME_WAIT)),
            ],
            ..Default::default()
        };
        let t = correlate_with(s.0, s.1, extra, Some(addr(S)));
        let closed = t
            .events
            .iter()
            .find_map(|e| match e {
                Event::State(st) if st.new == TcpState::CLOSE => Some(st),
                _ => None,
            })
            .expect("the kernel's CLOSE");
        assert_eq!(
            closed.continues_as,
            Some(TcpState::FIN_WAIT2),
            "it lives on"
        );
        let tables: Vec<(Option<TcpState>, Option<TcpState>)> = t
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Table(tb) => Some((tb.before, tb.state)),
                _ => None,
            })
            .collect();
        // The first reading stays (the evidence), the repeat goes, the change
        // starts from FIN_WAIT2, not from what close() returned with.
        assert_eq!(
            tables,
            vec![
                (Some(TcpState::FIN_WAIT2), Some(TcpState::FIN_WAIT2)),
                (Some(TcpState::FIN_WAIT2), Some(TcpState::TIME_WAIT)),
            ]
        );
        // No non-change is reported as a kernel line.
        assert!(t
            .events
            .iter()
            .all(|e| !matches!(e, Event::State(st) if st.old == st.new)));
    }

    #[test]
    fn kernel_events_of_other_namespaces_are_left_out() {
        let s = Script::new().handshake().parts();
        let kernel = vec![
            // Ours: the connection in the capture, and our listen() in our thread.
            state_ev(1, S, C, TcpState::SYN_RECV, TcpState::ESTABLISHED, false),
            state_ev(0, S, "0.0.0.0:0", TcpState::CLOSE, TcpState::LISTEN, true),
            // Someone else's: same server address, another client port; and a
            // listener that changed during our call but in another process.
            state_ev(
                1,
                S,
                "127.0.0.1:41000",
                TcpState::SYN_RECV,
                TcpState::ESTABLISHED,
                false,
            ),
            state_ev(2, S, "0.0.0.0:0", TcpState::LISTEN, TcpState::CLOSE, false),
        ];
        let extra = Extra {
            kernel,
            ..Default::default()
        };
        let t = correlate_with(s.0, s.1, extra, Some(addr(S)));
        let states: Vec<_> = t
            .events
            .iter()
            .filter_map(|e| match e {
                Event::State(st) => Some((st.side, st.remote, st.new)),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            vec![
                (Side::Server, addr("0.0.0.0:0"), TcpState::LISTEN),
                (Side::Server, addr(C), TcpState::ESTABLISHED)
            ]
        );
    }
}
