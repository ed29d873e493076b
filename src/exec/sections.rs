//! The trace cut into one timeline per connection.
//!
//! A traced program may make thousands of connections; one timeline for all
//! of them would be unreadable, and the correlator looks back over earlier
//! events for every segment, so correlating each connection on its own also
//! keeps the work proportional to the trace.

use super::fdmap::{Role, Sock};
use super::tracer::{self, Traced};
use crate::correlate::correlate;
use crate::driver::FinalState;
use crate::model::{CallKind, LinkType, Nanos, RawPacket, Segment, Side};
use crate::report::{CaptureSummary, PcapCounters, Report};
use crate::wire;
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

pub struct Built {
    pub sections: Vec<Report>,
    pub unattached: Option<Report>,
    /// The packets kept (all of them in a private namespace), frame numbers
    /// in the reports index this.
    pub packets: Vec<RawPacket>,
}

type Key = (SocketAddr, SocketAddr);

fn addr_match(listen: SocketAddr, addr: SocketAddr) -> bool {
    listen.port() == addr.port() && (listen.ip().is_unspecified() || listen.ip() == addr.ip())
}

fn side_of(role: Role) -> Side {
    match role {
        Role::Accepted | Role::Listening => Side::Server,
        Role::Fresh | Role::Connecting => Side::Client,
    }
}

/// The connection a segment belongs to, client end first.
fn seg_key(s: &Segment, known: &HashMap<Key, usize>, listeners: &[SocketAddr]) -> Key {
    let (a, b) = (s.src, s.dst);
    if known.contains_key(&(a, b)) {
        return (a, b);
    }
    if known.contains_key(&(b, a)) {
        return (b, a);
    }
    let f = s.flags;
    if f.syn() {
        return if f.ack() { (b, a) } else { (a, b) };
    }
    if listeners.iter().any(|l| addr_match(*l, b)) {
        return (a, b);
    }
    if listeners.iter().any(|l| addr_match(*l, a)) {
        return (b, a);
    }
    if a.port() > b.port() {
        (a, b)
    } else {
        (b, a)
    }
}

pub fn build(
    mut calls: Vec<Traced>,
    socks: &[Sock],
    linktype: LinkType,
    packets: Vec<RawPacket>,
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
            tracer::secs(Some(t))
        )
    });
    let diag = super::diag::Diag::open();
    let mut sections = Vec::with_capacity(n);
    for (i, u) in units.into_iter().enumerate() {
        let k = u.key;
        let mut ids: Vec<usize> = u.calls.iter().filter_map(|t| t.sock).collect();
        ids.sort_unstable();
        ids.dedup();
        let final_states = ids
            .into_iter()
            .filter_map(|id| socks.get(id))
            .filter(|s| s.conn() == Some(k))
            .filter_map(|s| {
                Some(FinalState {
                    side: side_of(s.role),
                    local: s.local?,
                    peer: s.peer,
                    state: diag.lookup(s.local?, s.peer),
                })
            })
            .collect();
        let calls: Vec<_> = u.calls.into_iter().map(|t| t.call).collect();
        let segs = u.segs;
        let nsegs = segs.len();
        let timeline = correlate(calls, segs, Some(k.1));
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
            kernel: crate::report::KernelSource::None,
            expectations: Vec::new(),
            predictions: Vec::new(),
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
        }
    });
    Built {
        sections,
        unattached,
        packets,
    }
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
