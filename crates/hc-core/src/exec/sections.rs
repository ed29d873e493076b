//! The trace cut into one timeline per connection.
//!
//! A traced program may make thousands of connections; one timeline for all
//! of them would be unreadable, and the correlator looks back over earlier
//! events for every segment, so correlating each connection on its own also
//! keeps the work proportional to the trace.

use crate::correlate::{correlate, correlate_with, Extra};
use crate::decode::frame as wire;
use crate::model::exec::{Role, Sock, Traced};
use crate::model::kernel::KernelEvent;
use crate::model::FinalState;
use crate::model::{
    addr_match, Call, CallKind, LinkType, Nanos, RawPacket, Segment, Side, StateObs,
};
use crate::report::{CaptureSummary, KernelSource, PcapCounters, Report};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// What every section shares.
#[derive(Clone, Debug)]
pub struct Context {
    pub command: String,
    pub namespace: String,
    pub iface: String,
    pub counters: PcapCounters,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// The --timeout that struck, if it did.
    pub timed_out: Option<Duration>,
    /// Keep every captured packet (the private namespace holds nothing else);
    /// otherwise only those of the program's own connections.
    pub keep_all: bool,
}

/// The kernel's tracepoint events of the whole run, or why there are none.
pub use crate::session::KernelRecord as Kernel;

pub struct Built {
    pub sections: Vec<Report>,
    pub unattached: Option<Report>,
    /// The packets kept (all of them in a private namespace), frame numbers
    /// in the reports index this.
    pub packets: Vec<RawPacket>,
}

type Key = (SocketAddr, SocketAddr);

fn side_of(role: Role) -> Side {
    match role {
        Role::Accepted | Role::Listening => Side::Server,
        Role::Fresh | Role::Connecting => Side::Client,
    }
}

/// The connection a segment belongs to, client end first: a connection the
/// trace already knows, or else the one rule of [`crate::correlate::classify`].
fn seg_key(s: &Segment, known: &HashMap<Key, usize>, listeners: &[SocketAddr]) -> Key {
    let (a, b) = (s.src, s.dst);
    if known.contains_key(&(a, b)) {
        return (a, b);
    }
    if known.contains_key(&(b, a)) {
        return (b, a);
    }
    crate::correlate::classify::client_end(a, b, s.flags, listeners)
}

pub fn build(
    mut calls: Vec<Traced>,
    socks: &[Sock],
    states: &[Option<StateObs>],
    linktype: LinkType,
    packets: Vec<RawPacket>,
    kernel: impl FnOnce() -> Kernel,
    ctx: &Context,
) -> Built {
    // Sides are known now that every socket's role is.
    for t in &mut calls {
        if let Some(s) = t.sock.and_then(|s| socks.get(s)) {
            t.call.side = side_of(s.role);
        }
    }
    let listeners: Vec<SocketAddr> = socks
        .iter()
        .filter(|s| s.role == Role::Listening)
        .filter_map(|s| s.local)
        .collect();
    let mut keys: HashMap<Key, usize> = HashMap::new();
    let mut order: Vec<Key> = Vec::new();
    for s in socks {
        if let Some(k) = s.conn() {
            keys.entry(k).or_insert_with(|| {
                order.push(k);
                order.len() - 1
            });
        }
    }
    // Packets of the program's connections (all of them in a private namespace).
    let packets: Vec<RawPacket> = if ctx.keep_all {
        packets
    } else {
        let (segs, _) = wire::parse_all(linktype, &packets);
        segs.iter()
            .filter(|s| {
                keys.contains_key(&(s.src, s.dst))
                    || keys.contains_key(&(s.dst, s.src))
                    || listeners
                        .iter()
                        .any(|l| addr_match(*l, s.src) || addr_match(*l, s.dst))
            })
            .filter_map(|s| packets.get(s.frame).cloned())
            .collect()
    };
    let (segs, unparsed) = wire::parse_all(linktype, &packets);

    let mut by_key: HashMap<Key, Vec<Segment>> = HashMap::new();
    for s in segs {
        let k = seg_key(&s, &keys, &listeners);
        keys.entry(k).or_insert_with(|| {
            order.push(k);
            order.len() - 1
        });
        by_key.entry(k).or_default().push(s);
    }
    let mut calls_by: HashMap<Key, Vec<Traced>> = HashMap::new();
    let mut loose: Vec<Traced> = Vec::new();
    for t in calls {
        match t.sock.and_then(|s| socks.get(s)).and_then(Sock::conn) {
            Some(k) => calls_by.entry(k).or_default().push(t),
            None => loose.push(t),
        }
    }
    // A 4-tuple can carry several connections in turn (loopback reuses
    // TIME_WAIT ports): each client SYN with a new sequence number starts one.
    let mut units: Vec<Unit> = Vec::new();
    for k in order {
        let segs = by_key.remove(&k).unwrap_or_default();
        let calls = calls_by.remove(&k).unwrap_or_default();
        units.extend(split(k, calls, segs));
    }
    // A listener's own calls go with the first connection it served, so a
    // one-connection lab reads as one story; the rest stay apart.
    units.sort_by_key(Unit::first_time);
    let mut rest = Vec::new();
    for t in loose {
        let listener_addr = t
            .sock
            .and_then(|s| socks.get(s))
            .filter(|s| s.role == Role::Listening)
            .and_then(|s| s.local);
        let target = listener_addr.and_then(|l| units.iter_mut().find(|u| addr_match(l, u.key.1)));
        match target {
            Some(u) => u.calls.push(t),
            None => rest.push(t),
        }
    }
    let n = units.len();
    let summary = |packets: usize, unparsed: usize| CaptureSummary {
        iface: ctx.iface.clone(),
        filter: if ctx.keep_all {
            "tcp".into()
        } else {
            "tcp, then only the program's connections".into()
        },
        snaplen: ctx.snaplen,
        packets,
        unparsed,
        counters: Some(ctx.counters),
        file: None,
        file_error: None,
    };
    let interrupted = ctx.timed_out.map(|t| {
        format!(
            "--timeout {} (hc-trace sent the program SIGTERM)",
            crate::time::secs(Some(t))
        )
    });
    let (mut kernel_of, kernel_off) = match kernel() {
        Kernel::Events(ev) => (Some(distribute(ev, &units)), None),
        Kernel::Off(why) => (None, Some(why)),
    };
    let mut sections = Vec::with_capacity(n);
    for (i, u) in units.into_iter().enumerate() {
        let k = u.key;
        let mut ids: Vec<usize> = u.calls.iter().filter_map(|t| t.sock).collect();
        ids.sort_unstable();
        ids.dedup();
        let final_states = ids
            .into_iter()
            .filter_map(|id| Some((socks.get(id)?, states.get(id)?.clone()?)))
            .filter(|(s, _)| s.conn() == Some(k))
            .filter_map(|(s, state)| {
                Some(FinalState {
                    side: side_of(s.role),
                    local: s.local?,
                    peer: s.peer,
                    state,
                })
            })
            .collect();
        let calls: Vec<_> = u.calls.into_iter().map(|t| t.call).collect();
        let segs = u.segs;
        let nsegs = segs.len();
        let events = kernel_of
            .as_mut()
            .map(|by| std::mem::take(&mut by[i]))
            .unwrap_or_default();
        let kernel = match &kernel_off {
            Some(why) => KernelSource::Unavailable(why.clone()),
            None => KernelSource::Tracepoints {
                events: events.len(),
            },
        };
        let extra = Extra {
            kernel: events,
            ..Extra::default()
        };
        let timeline = correlate_with(calls, segs, extra, Some(k.1));
        sections.push(Report {
            scenario: "exec".into(),
            teaches: format!(
                "connection {} of {n}: client {} → server {}",
                i + 1,
                k.0,
                k.1
            ),
            origin: ctx.command.clone(),
            client: Some(k.0),
            server: Some(k.1),
            namespace: ctx.namespace.clone(),
            pacing:
                "The program ran at its own pace; hc-trace stopped it only at its socket calls."
                    .into(),
            timeline,
            capture: summary(nsegs, 0),
            final_states,
            problems: Vec::new(),
            key_line: None,
            interrupted: interrupted.clone(),
            kernel,
            expectations: Vec::new(),
            predictions: Vec::new(),
            violations: Vec::new(),
            recorded: Vec::new(),
        });
    }
    let unattached = (!rest.is_empty()).then(|| {
        let calls: Vec<_> = rest.into_iter().map(|t| t.call).collect();
        Report {
            scenario: "exec".into(),
            teaches: "socket calls on no connection".into(),
            origin: ctx.command.clone(),
            client: None,
            server: None,
            namespace: ctx.namespace.clone(),
            pacing: String::new(),
            timeline: correlate(calls, Vec::new(), None),
            capture: summary(0, unparsed.len()),
            final_states: Vec::new(),
            problems: Vec::new(),
            key_line: None,
            interrupted: None,
            kernel: crate::report::KernelSource::None,
            expectations: Vec::new(),
            predictions: Vec::new(),
            violations: Vec::new(),
            recorded: Vec::new(),
        }
    });
    for r in &mut sections {
        r.violations = crate::check::check(r);
    }
    Built {
        sections,
        unattached,
        packets,
    }
}

/// How far from a call a kernel event may be and still have happened
/// during it (the correlator's own margin).
const CALL_SLACK: Nanos = 200_000;

/// Each unit's share of the run's kernel events. Events on a connection's
/// exact addresses go to that connection (to the one of its reuses that
/// began last before the event); events on a socket without both ports
/// yet (a listener, a connect() before the port is chosen) go to the
/// connection holding a call on that socket during which they ran.
/// Everything else belongs to someone else and is dropped; the correlator
/// checks each kept event again against the connection's own segments and calls.
fn distribute(events: Vec<KernelEvent>, units: &[Unit]) -> Vec<Vec<KernelEvent>> {
    let mut out: Vec<Vec<KernelEvent>> = vec![Vec::new(); units.len()];
    let mut by_key: HashMap<Key, Vec<(Nanos, usize)>> = HashMap::new();
    for (i, u) in units.iter().enumerate() {
        by_key.entry(u.key).or_default().push((u.first_time(), i));
    }
    // Calls that may run a port-less state change, by start time.
    let mut calls: Vec<(Nanos, Nanos, usize, &Call)> = units
        .iter()
        .enumerate()
        .flat_map(|(i, u)| u.calls.iter().map(move |t| (i, &t.call)))
        .filter(|(_, c)| {
            matches!(
                c.kind,
                CallKind::Connect
                    | CallKind::Listen
                    | CallKind::Close
                    | CallKind::Shutdown
                    | CallKind::Bind
            )
        })
        .map(|(i, c)| (c.start, c.end, i, c))
        .collect();
    calls.sort_unstable_by_key(|c| c.0);
    let longest = calls.iter().map(|c| c.1 - c.0).max().unwrap_or(0);
    let unit_at = |k: Key, ts: Nanos| -> Option<usize> {
        let list = by_key.get(&k).or_else(|| by_key.get(&(k.1, k.0)))?;
        // A new connection's first state change comes with its connect(),
        // a hair before the unit's first segment.
        list.iter()
            .rev()
            .find(|(first, _)| *first <= ts + CALL_SLACK)
            .or(list.first())
            .map(|(_, i)| *i)
    };
    let during_call = |ts: Nanos, local: SocketAddr, remote: SocketAddr| -> Option<usize> {
        let upto = calls.partition_point(|c| c.0 <= ts + CALL_SLACK);
        calls[..upto]
            .iter()
            .rev()
            .take_while(|c| c.0 + longest + CALL_SLACK >= ts)
            .find(|(_, end, _, c)| {
                ts <= *end + CALL_SLACK
                    && match (c.local, c.peer) {
                        (l, Some(p)) if c.kind == CallKind::Connect => {
                            p == remote && (local.port() == 0 || l == Some(local))
                        }
                        (Some(l), _) => l == local && remote.port() == 0,
                        _ => false,
                    }
            })
            .map(|c| c.2)
    };
    for e in events {
        let unit = match &e {
            KernelEvent::SendReset { ts, src, dst, .. } => unit_at((*src, *dst), *ts),
            KernelEvent::State {
                ts, local, remote, ..
            } => {
                if local.port() != 0 && remote.port() != 0 {
                    unit_at((*local, *remote), *ts)
                } else {
                    during_call(*ts, *local, *remote)
                }
            }
        };
        if let Some(i) = unit {
            out[i].push(e);
        }
    }
    out
}

/// One connection: its calls and segments.
struct Unit {
    key: Key,
    calls: Vec<Traced>,
    segs: Vec<Segment>,
}

impl Unit {
    fn first_time(&self) -> Nanos {
        let c = self.calls.iter().map(|t| t.call.start).min();
        let s = self.segs.iter().map(|s| s.ts).min();
        c.into_iter().chain(s).min().unwrap_or(Nanos::MAX)
    }
}

/// The connections that used the 4-tuple `k` one after another. Segments
/// go to the connection whose SYN came last before them; a socket's calls
/// go to the connection its connect() started or its accept() returned.
fn split(k: Key, calls: Vec<Traced>, segs: Vec<Segment>) -> Vec<Unit> {
    let mut syns: Vec<(Nanos, u32)> = Vec::new();
    for s in &segs {
        if s.flags.syn()
            && !s.flags.ack()
            && s.src == k.0
            && syns.last().is_none_or(|l| l.1 != s.seq)
        {
            syns.push((s.ts, s.seq));
        }
    }
    if syns.len() <= 1 {
        return vec![Unit {
            key: k,
            calls,
            segs,
        }];
    }
    let m = syns.len();
    let at = |ts: Nanos| {
        syns.iter()
            .filter(|(t, _)| *t <= ts)
            .count()
            .saturating_sub(1)
    };
    let mut units: Vec<Unit> = (0..m)
        .map(|_| Unit {
            key: k,
            calls: Vec::new(),
            segs: Vec::new(),
        })
        .collect();
    for s in segs {
        units[at(s.ts)].segs.push(s);
    }
    let mut which: HashMap<usize, usize> = HashMap::new();
    for t in &calls {
        let Some(id) = t.sock else { continue };
        match t.call.kind {
            CallKind::Connect => {
                let n = syns.iter().filter(|(ts, _)| *ts < t.call.start).count();
                which.entry(id).or_insert(n.min(m - 1));
            }
            CallKind::Accept => {
                which.entry(id).or_insert(at(t.call.end));
            }
            _ => {}
        }
    }
    for t in calls {
        let i = t.sock.and_then(|s| which.get(&s)).copied().unwrap_or(0);
        units[i].calls.push(t);
    }
    units
}
