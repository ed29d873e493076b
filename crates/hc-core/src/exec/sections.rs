//! The trace cut into one timeline per connection.
//!
//! A traced program may make thousands of connections; one timeline for all
//! of them would be unreadable, and the correlator looks back over earlier
//! events for every segment, so correlating each connection on its own also
//! keeps the work proportional to the trace.
//!
//! What goes in is what any tracer backend observes, already as data:
//! calls with the addresses of their socket and its state ([`Traced`],
//! [`Sock`]), the captured packets, the kernel's events, and the paths the
//! program used that no call shows ([`Untraced`]). What comes out is one
//! [`Report`] at a time ([`Sections`]), so a run of thousands of
//! connections is rendered and written section by section, never held
//! whole.
//!
//! Where a call's addresses meet the capture they are compared as the wire
//! carries them ([`on_the_wire`]: a dual-stack socket's IPv4-mapped
//! addresses are the IPv4 ones); the program's own view is still shown.

use crate::correlate::{correlate, correlate_with, Event, Extra};
use crate::decode::frame as wire;
use crate::model::exec::{Role, Sock, Traced, Untraced};
use crate::model::kernel::KernelEvent;
use crate::model::FinalState;
use crate::model::{
    addr_match, on_the_wire, Call, CallKind, LinkType, Nanos, RawPacket, Segment, Side, StateObs,
};
use crate::report::{CaptureSummary, KernelSource, PcapCounters, Report};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::SocketAddr;

/// What every section shares.
#[derive(Clone, Debug)]
pub struct Context {
    pub command: String,
    pub namespace: String,
    pub iface: String,
    /// libpcap's counters, when known (a live run's sections are written
    /// before the capture ends: its counters are only in the run's end).
    pub counters: Option<PcapCounters>,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Why hc-trace stopped the program early, in words, if it did.
    pub interrupted: Option<String>,
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

/// A run cut into connections, before any of them is correlated: the
/// sections come one at a time from [`Prepared::sections`].
pub struct Prepared {
    pub sections: Sections,
    /// Socket calls on no connection, as one report (small: known first).
    pub unattached: Option<Report>,
    /// The packets kept (all of them in a private namespace), frame numbers
    /// in the reports index this.
    pub packets: Vec<RawPacket>,
}

/// One report per connection, in the order they began, each built (and
/// self-checked) when asked for.
pub struct Sections {
    units: std::vec::IntoIter<Unit>,
    next: usize,
    n: usize,
    /// The number of the first section (a live run numbers across batches).
    first: usize,
    /// "connection i of n" when the whole run is known; live: "connection i".
    of_total: bool,
    /// Frame numbers in the whole capture of the packets given, by position
    /// (a live run hands over one connection's packets at a time).
    frames: Option<Vec<usize>>,
    kernel_of: Option<Vec<Vec<KernelEvent>>>,
    kernel_via: Result<crate::report::KernelVia, String>,
    /// Every socket as the program saw it (final states are shown so).
    seen: Vec<Sock>,
    /// The same sockets as the wire shows them.
    socks: Vec<Sock>,
    states: Vec<Option<StateObs>>,
    untraced: Vec<Untraced>,
    ctx: Context,
}

impl Sections {
    /// How many connections the run had.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
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

/// What a traced run observed, as any tracer backend delivers it: the
/// calls with their sockets' addresses and states, the packets, and what the
/// program used that no call shows.
pub struct Observed<'a> {
    pub calls: Vec<Traced>,
    /// Every socket, as the program saw it.
    pub socks: &'a [Sock],
    /// Each socket's state in the kernel's table once the program ended.
    pub states: &'a [Option<StateObs>],
    pub linktype: LinkType,
    pub packets: Vec<RawPacket>,
    pub untraced: &'a [Untraced],
}

/// All sections at once (recordings in tests, small runs).
pub fn build(obs: Observed, kernel: impl FnOnce() -> Kernel, ctx: &Context) -> Built {
    let p = prepare(obs, kernel, ctx);
    Built {
        sections: p.sections.collect(),
        unattached: p.unattached,
        packets: p.packets,
    }
}

/// The trace cut into connections; each connection's report is built
/// when [`Sections`] yields it.
pub fn prepare(obs: Observed, kernel: impl FnOnce() -> Kernel, ctx: &Context) -> Prepared {
    prepare_part(obs, kernel, ctx, Batch::default())
}

/// Where a part of a live run sits in the whole.
#[derive(Default)]
pub(crate) struct Batch {
    /// Sections already numbered before this part; None: this is the whole run.
    pub first: Option<usize>,
    /// The frame number in the whole capture of each packet given.
    pub frames: Option<Vec<usize>>,
}

pub(crate) fn prepare_part(
    obs: Observed,
    kernel: impl FnOnce() -> Kernel,
    ctx: &Context,
    part: Batch,
) -> Prepared {
    let Observed {
        mut calls,
        socks: seen,
        states,
        linktype,
        packets,
        untraced,
    } = obs;
    // Every address as the wire carries it, from here on.
    let mut socks: Vec<Sock> = seen.iter().map(wire_view).collect();
    for t in &mut calls {
        t.call.local = t.call.local.map(on_the_wire);
        t.call.peer = t.call.peer.map(on_the_wire);
    }
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
    // Packets of the program's connections (all of them in a private namespace).
    let packets: Vec<RawPacket> = if ctx.keep_all {
        packets
    } else {
        let mut keys: HashSet<Key> = socks.iter().filter_map(Sock::conn).collect();
        let (segs, _) = wire::parse_all(linktype, &packets);
        // A failed connect's own address is only on the wire (see below).
        keys.extend(failed_connects(&socks, &calls, &segs, &keys).into_values());
        segs.iter()
            .filter(|s| {
                keys.contains(&(s.src, s.dst))
                    || keys.contains(&(s.dst, s.src))
                    || listeners
                        .iter()
                        .any(|l| addr_match(*l, s.src) || addr_match(*l, s.dst))
            })
            .filter_map(|s| packets.get(s.frame).cloned())
            .collect()
    };
    let (segs, unparsed) = wire::parse_all(linktype, &packets);
    // A refused (or timed-out) connect(): its socket says 0.0.0.0 and the
    // port it had, or nothing; the SYNs it sent say where it was.
    let known: HashSet<Key> = socks.iter().filter_map(Sock::conn).collect();
    for (id, client) in failed_connects(&socks, &calls, &segs, &known) {
        socks[id].local = Some(client.0);
        for t in calls.iter_mut().filter(|t| t.sock == Some(id)) {
            t.call.local = Some(client.0);
        }
    }

    let mut keys: HashMap<Key, usize> = HashMap::default();
    let mut order: Vec<Key> = Vec::new();
    for s in &socks {
        if let Some(k) = s.conn() {
            keys.entry(k).or_insert_with(|| {
                order.push(k);
                order.len() - 1
            });
        }
    }
    let mut by_key: HashMap<Key, Vec<Segment>> = HashMap::default();
    for s in segs {
        let k = seg_key(&s, &keys, &listeners);
        keys.entry(k).or_insert_with(|| {
            order.push(k);
            order.len() - 1
        });
        by_key.entry(k).or_default().push(s);
    }
    // Each call keeps its place in the order the tracer made them: calls at
    // the same instant (a process's exit closes its descriptors in order)
    // stay in that order whichever list they went through.
    let mut calls_by: HashMap<Key, Vec<(usize, Traced)>> = HashMap::default();
    let mut loose: Vec<(usize, Traced)> = Vec::new();
    for (i, t) in calls.into_iter().enumerate() {
        match t.sock.and_then(|s| socks.get(s)).and_then(Sock::conn) {
            Some(k) => calls_by.entry(k).or_default().push((i, t)),
            None => loose.push((i, t)),
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
    for (i, t) in loose {
        let listener_addr = t
            .sock
            .and_then(|s| socks.get(s))
            .filter(|s| s.role == Role::Listening)
            .and_then(|s| s.local);
        let target = listener_addr.and_then(|l| units.iter_mut().find(|u| addr_match(l, u.key.1)));
        match target {
            Some(u) => u.calls.push((i, t)),
            None => rest.push(t),
        }
    }
    let n = units.len();
    let k = kernel();
    let (kernel_of, kernel_via) = match (k.via(), k) {
        (Some(via), k) => {
            let ev = k
                .events()
                .unwrap_or_default()
                .iter()
                .cloned()
                .map(wire_event)
                .collect();
            (Some(distribute(ev, &units)), Ok(via))
        }
        (None, Kernel::Off(why)) => (None, Err(why)),
        (None, _) => (None, Err(String::new())),
    };
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
            capture: summary(ctx, 0, unparsed.len()),
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
    Prepared {
        sections: Sections {
            units: units.into_iter(),
            next: 0,
            n,
            first: part.first.unwrap_or(0),
            of_total: part.first.is_none(),
            frames: part.frames,
            kernel_of,
            kernel_via,
            seen: seen.to_vec(),
            socks,
            states: states.to_vec(),
            untraced: untraced.to_vec(),
            ctx: ctx.clone(),
        },
        unattached,
        packets,
    }
}

fn summary(ctx: &Context, packets: usize, unparsed: usize) -> CaptureSummary {
    CaptureSummary {
        iface: ctx.iface.clone(),
        filter: if ctx.keep_all {
            "tcp".into()
        } else {
            "tcp, then only the program's connections".into()
        },
        snaplen: ctx.snaplen,
        packets,
        unparsed,
        counters: ctx.counters,
        file: None,
        file_error: None,
    }
}

impl Iterator for Sections {
    type Item = Report;

    fn next(&mut self) -> Option<Report> {
        let mut u = self.units.next()?;
        u.calls.sort_by_key(|(n, _)| *n);
        let i = self.next;
        self.next += 1;
        let (n, ctx) = (self.n, &self.ctx);
        let k = u.key;
        let mut ids: Vec<usize> = u.calls.iter().filter_map(|(_, t)| t.sock).collect();
        ids.sort_unstable();
        ids.dedup();
        let final_states = ids
            .iter()
            .filter_map(|&id| {
                Some((
                    self.socks.get(id)?,
                    self.seen.get(id)?,
                    self.states.get(id)?.clone()?,
                ))
            })
            .filter(|(s, _, _)| s.conn() == Some(k))
            .filter_map(|(s, seen, state)| {
                // As the program saw it; a failed connect's as the wire did.
                let local = seen.local.filter(|l| !l.ip().is_unspecified());
                Some(FinalState {
                    side: side_of(s.role),
                    local: local.or(s.local)?,
                    peer: seen.peer.or(s.peer),
                    state,
                })
            })
            .collect();
        // How the program saw the two ends, when that is not how the wire does.
        let views: Vec<String> = ids
            .iter()
            .filter_map(|&id| Some((self.socks.get(id)?, self.seen.get(id)?)))
            .filter(|(s, seen)| s.conn() == Some(k) && (seen.local, seen.peer) != (s.local, s.peer))
            .filter(|(_, seen)| seen.local.is_some_and(|l| !l.ip().is_unspecified()))
            .filter_map(|(s, seen)| {
                Some(format!(
                    "the {}'s socket sees itself as {} and its peer as {}",
                    side_of(s.role),
                    seen.local?,
                    seen.peer?
                ))
            })
            .collect();
        let mut untraced: Vec<(Side, String)> = Vec::new();
        for (_, t) in &u.calls {
            for x in &self.untraced {
                let named = untraced.iter().any(|(s, _)| *s == t.call.side);
                if t.call.pid == Some(x.pid) && !named {
                    untraced.push((t.call.side, format!("{} (set up by pid {})", x.what, x.pid)));
                }
            }
        }
        let calls: Vec<_> = u.calls.into_iter().map(|(_, t)| t.call).collect();
        let segs = u.segs;
        let nsegs = segs.len();
        let events = self
            .kernel_of
            .as_mut()
            .map(|by| std::mem::take(&mut by[i]))
            .unwrap_or_default();
        let kernel = match &self.kernel_via {
            Err(why) => KernelSource::Unavailable(why.clone()),
            Ok(via) => KernelSource::Tracepoints {
                events: events.len(),
                via: via.clone(),
            },
        };
        let extra = Extra {
            kernel: events,
            ..Extra::default()
        };
        let mut timeline = correlate_with(calls, segs, extra, Some(k.1));
        timeline.untraced = untraced;
        if let Some(frames) = &self.frames {
            for e in &mut timeline.events {
                if let Event::Segment(s) = e {
                    s.seg.frame = frames.get(s.seg.frame).copied().unwrap_or(s.seg.frame);
                }
            }
        }
        let number = self.first + i + 1;
        let of = if self.of_total {
            format!(" of {n}")
        } else {
            String::new()
        };
        let mut teaches = format!("connection {number}{of}: client {} → server {}", k.0, k.1);
        if !views.is_empty() {
            teaches.push_str(&format!(" ({})", views.join("; ")));
        }
        let mut r = Report {
            scenario: "exec".into(),
            teaches,
            origin: ctx.command.clone(),
            client: Some(k.0),
            server: Some(k.1),
            namespace: ctx.namespace.clone(),
            pacing:
                "The program ran at its own pace; hc-trace stopped it only at its socket calls."
                    .into(),
            timeline,
            capture: summary(ctx, nsegs, 0),
            final_states,
            problems: Vec::new(),
            key_line: None,
            interrupted: ctx.interrupted.clone(),
            kernel,
            expectations: Vec::new(),
            predictions: Vec::new(),
            violations: Vec::new(),
            recorded: Vec::new(),
        };
        r.violations = crate::check::check(&r);
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.units.size_hint()
    }
}

/// A socket as the wire shows it.
fn wire_view(s: &Sock) -> Sock {
    Sock {
        local: s.local.map(on_the_wire),
        peer: s.peer.map(on_the_wire),
        ..s.clone()
    }
}

/// A kernel event's addresses as the wire carries them (an AF_INET6
/// socket's tracepoint reports its IPv4-mapped ones).
pub(crate) fn wire_event(e: KernelEvent) -> KernelEvent {
    match e {
        KernelEvent::State {
            ts,
            local,
            remote,
            old,
            new,
            by_us,
        } => KernelEvent::State {
            ts,
            local: on_the_wire(local),
            remote: on_the_wire(remote),
            old,
            new,
            by_us,
        },
        KernelEvent::SendReset {
            ts,
            src,
            dst,
            state,
            reason,
        } => KernelEvent::SendReset {
            ts,
            src: on_the_wire(src),
            dst: on_the_wire(dst),
            state,
            reason,
        },
    }
}

/// How long after a connect() returned its last SYN may still be captured.
const SYN_SLACK: Nanos = 1_000_000;

/// Sockets whose connect() never got them a connection (refused, timed
/// out, interrupted): getsockname then says 0.0.0.0 with the port the kernel
/// had chosen, or nothing. Each gets the client end of the SYN that left
/// while its connect() ran, to the address it connected to (from that port,
/// when the socket still said it), unless a known socket owns that 4-tuple:
/// (socket, (client, server)).
fn failed_connects(
    socks: &[Sock],
    calls: &[Traced],
    segs: &[Segment],
    known: &HashSet<Key>,
) -> HashMap<usize, Key> {
    let mut out: HashMap<usize, Key> = HashMap::default();
    let mut taken: HashSet<Key> = known.clone();
    for t in calls {
        let Some(id) = t.sock else { continue };
        let Some(s) = socks.get(id) else { continue };
        let (Some(peer), CallKind::Connect) = (s.peer, t.call.kind) else {
            continue;
        };
        let unplaced = s.local.is_none_or(|l| l.ip().is_unspecified());
        if !unplaced || s.role != Role::Connecting || out.contains_key(&id) {
            continue;
        }
        let port = s.local.map_or(0, |l| l.port());
        let syn = segs.iter().find(|g| {
            g.flags.syn()
                && !g.flags.ack()
                && g.dst == peer
                && (port == 0 || g.src.port() == port)
                && g.ts >= t.call.start
                && g.ts <= t.call.end + SYN_SLACK
                && !taken.contains(&(g.src, g.dst))
        });
        if let Some(g) = syn {
            taken.insert((g.src, g.dst));
            out.insert(id, (g.src, g.dst));
        }
    }
    out
}

/// How far from a call a kernel event may be and still have happened
/// during it (the correlator's own margin).
pub(crate) const CALL_SLACK: Nanos = 200_000;

/// Each unit's share of the run's kernel events. Events on a connection's
/// exact addresses go to that connection (to the one of its reuses that
/// began last before the event); events on a socket without both ports
/// yet (a listener, a connect() before the port is chosen) go to the
/// connection holding a call on that socket during which they ran.
/// Everything else belongs to someone else and is dropped; the correlator
/// checks each kept event again against the connection's own segments and calls.
/// Calls during which a port-less state change (listen, SYN_SENT before
/// the port is chosen, a close of either) may run.
pub(crate) fn runs_portless(k: CallKind) -> bool {
    matches!(
        k,
        CallKind::Connect
            | CallKind::Listen
            | CallKind::Close
            | CallKind::Shutdown
            | CallKind::Bind
    )
}

fn distribute(events: Vec<KernelEvent>, units: &[Unit]) -> Vec<Vec<KernelEvent>> {
    let mut out: Vec<Vec<KernelEvent>> = vec![Vec::new(); units.len()];
    let mut by_key: HashMap<Key, Vec<(Nanos, usize)>> = HashMap::default();
    for (i, u) in units.iter().enumerate() {
        by_key.entry(u.key).or_default().push((u.first_time(), i));
    }
    // Calls that may run a port-less state change, by start time.
    let mut calls: Vec<(Nanos, Nanos, usize, &Call)> = units
        .iter()
        .enumerate()
        .flat_map(|(i, u)| u.calls.iter().map(move |(_, t)| (i, &t.call)))
        .filter(|(_, c)| runs_portless(c.kind))
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
    /// With their place in the tracer's order.
    calls: Vec<(usize, Traced)>,
    segs: Vec<Segment>,
}

impl Unit {
    fn first_time(&self) -> Nanos {
        let c = self.calls.iter().map(|(_, t)| t.call.start).min();
        let s = self.segs.iter().map(|s| s.ts).min();
        c.into_iter().chain(s).min().unwrap_or(Nanos::MAX)
    }
}

/// The connections that used the 4-tuple `k` one after another. Segments
/// go to the connection whose SYN came last before them; a socket's calls
/// go to the connection its connect() started or its accept() returned.
fn split(k: Key, calls: Vec<(usize, Traced)>, segs: Vec<Segment>) -> Vec<Unit> {
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
    let mut which: HashMap<usize, usize> = HashMap::default();
    for (_, t) in &calls {
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
    for (n, t) in calls {
        let i = t.sock.and_then(|s| which.get(&s)).copied().unwrap_or(0);
        units[i].calls.push((n, t));
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::{Origin, Part};
    use crate::model::{Call, TcpState};
    use crate::testkit::lo_frame as frame;

    const MS: Nanos = 1_000_000;

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn call(kind: CallKind, text: &str, start: Nanos, end: Nanos, sock: usize) -> Traced {
        Traced {
            call: Call {
                side: Side::Client,
                kind,
                text: text.into(),
                args: String::new(),
                pid: Some(7),
                fd: Some(3),
                ret: Some(0),
                errno: None,
                note: None,
                start,
                end,
                local: None,
                peer: None,
                stream: None,
                state_after: StateObs::Unknown,
                state_before: None,
                line: None,
            },
            sock: Some(sock),
        }
    }

    fn sock(role: Role, local: Option<&str>, peer: Option<&str>) -> Sock {
        Sock {
            ino: 1,
            role,
            local: local.map(a),
            peer: peer.map(a),
            written: 0,
            refs: 0,
        }
    }

    fn ctx() -> Context {
        Context {
            command: "test".into(),
            namespace: "test".into(),
            iface: "lo".into(),
            counters: Some(PcapCounters::default()),
            snaplen: 65535,
            interrupted: None,
            keep_all: true,
        }
    }

    fn run(calls: Vec<Traced>, socks: &[Sock], packets: Vec<RawPacket>) -> Built {
        let states = vec![None; socks.len()];
        let obs = Observed {
            calls,
            socks,
            states: &states,
            linktype: 1,
            packets,
            untraced: &[],
        };
        build(obs, || Kernel::Off("test".into()), &ctx())
    }

    /// The call (by kind and side) that caused the segment with these flags.
    fn cause_of(r: &Report, part: Part) -> Option<&Call> {
        r.timeline.segments().find_map(|(_, s)| {
            s.causes
                .iter()
                .find(|c| c.part == part)
                .and_then(|c| match c.origin {
                    Origin::Call { event } => r.timeline.call(event),
                    _ => None,
                })
        })
    }

    #[test]
    fn a_dual_stack_servers_mapped_addresses_meet_the_ipv4_capture() {
        let (c, s) = ("127.0.0.1:40000", "127.0.0.1:5601");
        let socks = vec![
            sock(Role::Listening, Some("[::]:5601"), None),
            sock(
                Role::Accepted,
                Some("[::ffff:127.0.0.1]:5601"),
                Some("[::ffff:127.0.0.1]:40000"),
            ),
            sock(Role::Connecting, Some(c), Some(s)),
        ];
        let mut calls = vec![
            call(CallKind::Listen, "listen(3, 8)", 0, MS / 10, 0),
            call(
                CallKind::Connect,
                "connect(5, 127.0.0.1:5601)",
                MS,
                2 * MS,
                2,
            ),
            call(CallKind::Accept, "accept4(3) = 4", MS, 2 * MS, 1),
            call(CallKind::Close, "close(4)", 10 * MS, 10 * MS + 50_000, 1),
            call(CallKind::Close, "close(3)", 20 * MS, 20 * MS + 50_000, 0),
        ];
        for t in &mut calls {
            let k = &socks[t.sock.unwrap_or(0)];
            (t.call.local, t.call.peer) = (k.local, k.peer);
        }
        calls[3].call.state_after = StateObs::Gone;
        let packets = vec![
            frame(MS + 100_000, c, s, 100, None, "S"),
            frame(MS + 200_000, s, c, 900, Some(101), "S"),
            frame(MS + 300_000, c, s, 101, Some(901), ""),
            frame(10 * MS + 10_000, s, c, 901, Some(101), "F"),
            frame(10 * MS + 20_000, c, s, 101, Some(902), ""),
        ];
        let b = run(calls, &socks, packets);
        assert_eq!(
            b.sections.len(),
            1,
            "one connection, not a calls section and a wire section"
        );
        let r = &b.sections[0];
        let fin = cause_of(r, Part::Fin).expect("the FIN has a call");
        assert_eq!(
            fin.text, "close(4)",
            "the accepted socket's close, not the listener's"
        );
        assert!(
            r.teaches.contains("[::ffff:127.0.0.1]:5601"),
            "{}",
            r.teaches
        );
        assert_eq!(r.server, Some(a(s)), "the wire's view in the header");
        assert!(r.violations.is_empty(), "{:?}", r.violations);
    }

    #[test]
    fn closes_at_one_instant_keep_the_tracers_order() {
        // A process exit closes the listener (fd 3), then the accepted
        // socket (fd 4), at one instant: the FIN is the accepted socket's.
        let (c, s) = ("127.0.0.1:40000", "127.0.0.1:5555");
        let socks = vec![
            sock(Role::Listening, Some(s), None),
            sock(Role::Accepted, Some(s), Some(c)),
            sock(Role::Connecting, Some(c), Some(s)),
        ];
        let at = 10 * MS;
        let mut calls = vec![
            call(CallKind::Listen, "listen(3, 8)", 0, MS / 10, 0),
            call(
                CallKind::Connect,
                "connect(5, 127.0.0.1:5555)",
                MS,
                2 * MS,
                2,
            ),
            call(CallKind::Accept, "accept(3) = 4", MS, 2 * MS, 1),
            call(
                CallKind::Close,
                "close(3) by the kernel: process exit",
                at,
                at,
                0,
            ),
            call(
                CallKind::Close,
                "close(4) by the kernel: process exit",
                at,
                at,
                1,
            ),
        ];
        for t in &mut calls {
            let k = &socks[t.sock.unwrap_or(0)];
            (t.call.local, t.call.peer) = (k.local, k.peer);
        }
        let packets = vec![
            frame(MS + 100_000, c, s, 100, None, "S"),
            frame(MS + 200_000, s, c, 900, Some(101), "S"),
            frame(MS + 300_000, c, s, 101, Some(901), ""),
            frame(at + 10_000, s, c, 901, Some(101), "F"),
        ];
        let b = run(calls, &socks, packets);
        let fin = cause_of(&b.sections[0], Part::Fin).expect("the FIN has a call");
        assert!(fin.text.starts_with("close(4)"), "{}", fin.text);
    }

    #[test]
    fn a_refused_connect_is_one_section_with_its_syn_and_the_rst() {
        let server = "127.0.0.1:5999";
        // getsockname after the RST: 0.0.0.0 and the port it had.
        let socks = vec![
            sock(Role::Connecting, Some("0.0.0.0:40001"), Some(server)),
            sock(Role::Connecting, None, Some(server)),
        ];
        let mut calls = vec![
            call(
                CallKind::Connect,
                "connect(3, 127.0.0.1:5999)",
                MS,
                2 * MS,
                0,
            ),
            call(CallKind::Close, "close(3)", 3 * MS, 3 * MS + 10_000, 0),
            // A second refused connect whose socket says nothing at all.
            call(
                CallKind::Connect,
                "connect(4, 127.0.0.1:5999)",
                5 * MS,
                6 * MS,
                1,
            ),
        ];
        for t in &mut calls {
            let k = &socks[t.sock.unwrap_or(0)];
            (t.call.local, t.call.peer) = (k.local, k.peer);
            if t.call.kind == CallKind::Connect {
                (t.call.ret, t.call.errno) = (Some(-1), Some("ECONNREFUSED".into()));
                t.call.state_after = StateObs::TcpInfo {
                    state: TcpState::CLOSE,
                };
            }
        }
        let packets = vec![
            frame(MS + 100_000, "127.0.0.1:40001", server, 7, None, "S"),
            frame(MS + 110_000, server, "127.0.0.1:40001", 0, Some(8), "R"),
            frame(5 * MS + 100_000, "127.0.0.1:40002", server, 9, None, "S"),
            frame(
                5 * MS + 110_000,
                server,
                "127.0.0.1:40002",
                0,
                Some(10),
                "R",
            ),
            // Negative control: a SYN while no connect() of ours ran is someone else's.
            frame(8 * MS, "127.0.0.1:40003", server, 11, None, "S"),
        ];
        let b = run(calls, &socks, packets);
        assert_eq!(
            b.sections.len(),
            3,
            "{:?}",
            b.sections.iter().map(|r| &r.teaches).collect::<Vec<_>>()
        );
        for (r, port) in b.sections.iter().zip([40001, 40002]) {
            assert_eq!(r.client.map(|c| c.port()), Some(port), "{}", r.teaches);
            let syn = cause_of(r, Part::Syn).expect("the SYN has its connect()");
            assert_eq!(syn.kind, CallKind::Connect);
            let segs = r.timeline.segments().count();
            assert_eq!(segs, 2, "the SYN and the RST: {}", r.teaches);
            let calls = r
                .timeline
                .events
                .iter()
                .filter(|e| matches!(e, Event::Call(_)))
                .count();
            assert!(calls >= 1);
            assert!(r.violations.is_empty(), "{:?}", r.violations);
        }
        let other = &b.sections[2];
        assert_eq!(other.client.map(|c| c.port()), Some(40003));
        assert_eq!(other.timeline.calls().count(), 0, "no call of ours");
    }
}
