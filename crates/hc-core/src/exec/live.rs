//! A traced run cut into connections while it runs: observations go in as
//! any tracer backend makes them (calls, sockets' addresses and roles, the
//! close of a socket's last descriptor, packets, kernel events), and each
//! connection comes out as a report once it is over, after which nothing of
//! it is kept. Memory is bounded by the connections still open, not by the
//! length of the run.
//!
//! A connection is over when every socket of the program on it has lost its
//! last descriptor and nothing more (segment, call, kernel event) has come
//! for it for [`Live::new`]'s quiet time; a connection none of whose
//! sockets is the program's (a refused connect's SYN and RST before the
//! connect's socket is known, someone else's traffic on `any`) when it has
//! been quiet twice as long. Its report is then built by the same rules as
//! a whole recording's ([`super::sections`]); the only differences: sections
//! are numbered in the order they ended ("connection 5", no "of N"), a
//! listener's calls go with the next connection of it to end, and anything
//! arriving for a connection more than the quiet time after its report
//! starts a section of its own.

use super::sections::{self, Batch, Context, Kernel, Observed};
use crate::correlate::classify::client_end;
use crate::decode::frame as wire;
use crate::model::exec::{Role, Sock, SockId, Traced, Untraced};
use crate::model::kernel::KernelEvent;
use crate::model::{addr_match, on_the_wire, CallKind, LinkType, Nanos, RawPacket, StateObs};
use crate::report::Report;
use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;

type Key = (SocketAddr, SocketAddr);

/// A call with the order it came in: calls at the same instant (the closes
/// of a process's exit) keep the tracer's order, as in a whole recording.
type Seq = (u64, Traced);

/// One observation, as a tracer backend and the capture deliver them.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Obs {
    /// A call, once it returned (or ended unfinished). Boxed: a call is the
    /// largest observation by far, and every observation queued for the
    /// assembler takes the size of the largest (packets and kernel events
    /// are most of them).
    Call(Box<Traced>),
    /// A socket's addresses and role, whenever they are learnt or change.
    Sock(SockId, Sock),
    /// The socket's last descriptor is gone (a close, an exit, an execve).
    Closed(SockId),
    Untraced(Untraced),
    Packet(RawPacket),
    Kernel(KernelEvent),
    /// The capture's link type, before its first packet.
    Capture(LinkType),
    /// The kernel's events will not come, and why.
    KernelOff(String),
    /// How the kernel's events are read (before the first of them).
    KernelVia(crate::report::KernelVia),
}

#[derive(Default)]
struct Group {
    calls: Vec<Seq>,
    packets: Vec<RawPacket>,
    /// Each packet's frame number in the whole capture.
    frames: Vec<usize>,
    kernel: Vec<KernelEvent>,
    socks: Vec<SockId>,
    first: Nanos,
    last: Nanos,
    /// The first client SYN: (time, its source), to place a failed connect.
    syn: Option<(Nanos, SocketAddr)>,
    /// Each direction's FIN as captured: its sender, the sequence number
    /// after it, and whether the other side has acknowledged it.
    fins: Vec<(SocketAddr, u32, bool)>,
    /// An RST was captured.
    rst: bool,
}

impl Group {
    fn new(ts: Nanos) -> Group {
        Group {
            first: ts,
            last: ts,
            ..Group::default()
        }
    }

    /// Nothing in it yet.
    fn empty() -> Group {
        Group {
            first: Nanos::MAX,
            last: Nanos::MIN,
            ..Group::default()
        }
    }

    fn touch(&mut self, ts: Nanos) {
        self.first = self.first.min(ts);
        self.last = self.last.max(ts);
    }

    /// Notes the FINs, their ACKs and RSTs of a captured segment.
    fn note_close(&mut self, seg: &crate::model::Segment) {
        if seg.flags.rst() {
            self.rst = true;
        }
        if seg.flags.ack() {
            for f in self.fins.iter_mut().filter(|f| f.0 == seg.dst) {
                // At or past the FIN (sequence arithmetic).
                f.2 |= seg.ack.wrapping_sub(f.1) < 1 << 31;
            }
        }
        if seg.flags.fin() {
            let end = seg.seq.wrapping_add(seg.seq_space());
            self.fins.retain(|f| f.0 != seg.src);
            self.fins.push((seg.src, end, false));
        }
    }

    /// Nothing more can come from TCP itself: both FINs were acknowledged,
    /// or an RST ended it (no retransmission is possible). What may still
    /// come is what the tracer, the capture or the kernel trace hand over
    /// late.
    fn settled(&self) -> bool {
        self.rst || (self.fins.len() == 2 && self.fins.iter().all(|f| f.2))
    }
}

/// How long a settled connection ([`Group::settled`]) whose sockets are all
/// closed must be quiet: what the sources hand over late (the capture's
/// blocks and the kernel ring within 20 ms, scheduling) fits well inside.
/// Others wait the full quiet time for a retransmitted FIN or a late ACK.
/// At thousands of connections a second (the eBPF backend), this is what
/// bounds the connections held at once.
const SETTLED_QUIET: Nanos = 250_000_000;

/// The live assembler.
pub struct Live {
    ctx: Context,
    linktype: LinkType,
    quiet: Nanos,
    kernel_off: Option<String>,
    kernel_via: crate::report::KernelVia,
    /// Every socket as the program saw it, by id (small: addresses and role).
    seen: Vec<Option<Sock>>,
    closed: Vec<bool>,
    key_of: Vec<Option<Key>>,
    groups: HashMap<Key, Group>,
    /// Calls of sockets whose connection is not known yet.
    unkeyed: HashMap<SockId, Vec<Seq>>,
    /// Calls of listening sockets, and their addresses as the wire has them.
    listener_calls: Vec<Seq>,
    listeners: Vec<SocketAddr>,
    /// The listening sockets, with their addresses as the wire has them.
    listener_ids: Vec<(SockId, SocketAddr)>,
    /// Calls on no connection (a socket that never connected).
    loose: Vec<Seq>,
    /// The next call's place in the order calls came.
    seq: u64,
    /// Kernel events without both ports (listen, SYN_SENT before the port):
    /// matched to a connection's calls when it is built.
    portless: Vec<KernelEvent>,
    /// Kernel events on addresses no connection has yet.
    early: Vec<KernelEvent>,
    untraced: Vec<Untraced>,
    frames: usize,
    emitted: usize,
    kept: usize,
    /// The latest time any observation carried: how far the run is known.
    clock: Nanos,
}

impl Live {
    /// `quiet`: how long a connection whose sockets are all closed must have
    /// been silent before its report is built. `kernel`: None when kernel
    /// events come (through [`Obs::Kernel`]), else why not.
    pub fn new(ctx: Context, linktype: LinkType, quiet: Nanos, kernel: Option<String>) -> Live {
        Live {
            ctx,
            linktype,
            quiet,
            kernel_off: kernel,
            kernel_via: crate::report::KernelVia::Tracefs { ebpf: None },
            seen: Vec::new(),
            closed: Vec::new(),
            key_of: Vec::new(),
            groups: HashMap::default(),
            unkeyed: HashMap::default(),
            listener_calls: Vec::new(),
            listeners: Vec::new(),
            listener_ids: Vec::new(),
            loose: Vec::new(),
            seq: 0,
            portless: Vec::new(),
            early: Vec::new(),
            untraced: Vec::new(),
            frames: 0,
            emitted: 0,
            kept: 0,
            clock: Nanos::MIN,
        }
    }

    /// The latest time an observation carried (a call's return, a packet, a
    /// kernel event): every source has delivered up to about then, give or
    /// take its own delay (the capture hands packets over within tens of
    /// milliseconds). What to give [`Self::ready`] while observations are
    /// still queued; once none is, the wall clock (less that delay) is safe.
    pub fn clock(&self) -> Nanos {
        self.clock
    }

    /// Why hc-trace stopped the program, for the connections still open.
    pub fn set_interrupted(&mut self, why: Option<String>) {
        self.ctx.interrupted = why;
    }

    /// Packets seen, and kept (in the reports built so far).
    pub fn packets(&self) -> (usize, usize) {
        (self.frames, self.kept)
    }

    /// Connections reported so far.
    pub fn emitted(&self) -> usize {
        self.emitted
    }

    /// Connections still open (their observations are what is held).
    pub fn open(&self) -> usize {
        self.groups.len()
    }

    pub fn push(&mut self, o: Obs) {
        let ts = match &o {
            Obs::Call(t) => Some(t.call.end),
            Obs::Packet(p) => Some(p.ts),
            Obs::Kernel(e) => Some(e.ts()),
            _ => None,
        };
        if let Some(ts) = ts {
            self.clock = self.clock.max(ts);
        }
        match o {
            Obs::Sock(id, s) => self.sock(id, s),
            Obs::Closed(id) => self.closed(id),
            Obs::Call(t) => self.call(*t),
            Obs::Untraced(u) => self.untraced.push(u),
            Obs::Packet(p) => self.packet(p),
            Obs::Kernel(e) => self.kernel(e),
            Obs::Capture(lt) => self.linktype = lt,
            Obs::KernelOff(why) => self.kernel_off = Some(why),
            Obs::KernelVia(via) => self.kernel_via = via,
        }
    }

    fn slot(&mut self, id: SockId) {
        if self.seen.len() <= id {
            self.seen.resize(id + 1, None);
            self.closed.resize(id + 1, false);
            self.key_of.resize(id + 1, None);
        }
    }

    fn sock(&mut self, id: SockId, s: Sock) {
        self.slot(id);
        let wire = Sock {
            local: s.local.map(on_the_wire),
            peer: s.peer.map(on_the_wire),
            ..s.clone()
        };
        if s.role == Role::Listening {
            if let Some(l) = wire.local {
                if !self.listeners.contains(&l) {
                    self.listeners.push(l);
                }
                if !self.listener_ids.iter().any(|(i, _)| *i == id) {
                    self.listener_ids.push((id, l));
                }
            }
            if let Some(calls) = self.unkeyed.remove(&id) {
                self.listener_calls.extend(calls);
            }
        }
        let key = wire
            .conn()
            .filter(|(c, s)| !c.ip().is_unspecified() && !s.ip().is_unspecified());
        self.seen[id] = Some(s);
        if let (None, Some(k)) = (self.key_of[id], key) {
            self.key_of[id] = Some(k);
            self.join(id, k);
        }
    }

    /// Socket `id` belongs to connection `k` from now on.
    fn join(&mut self, id: SockId, k: Key) {
        let calls = self.unkeyed.remove(&id).unwrap_or_default();
        let early = self.take_early(k);
        let g = self.groups.entry(k).or_insert_with(Group::empty);
        for (_, t) in &calls {
            g.touch(t.call.start);
            g.touch(t.call.end);
        }
        g.calls.extend(calls);
        g.kernel.extend(early);
        g.socks.push(id);
    }

    fn take_early(&mut self, k: Key) -> Vec<KernelEvent> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early)
            .into_iter()
            .partition(|e| event_key(e).is_some_and(|(a, b)| (a, b) == k || (b, a) == k));
        self.early = rest;
        mine
    }

    fn closed(&mut self, id: SockId) {
        self.slot(id);
        self.closed[id] = true;
        // A socket that never got a connection stays with its calls until
        // its SYN can place it ([`Self::place`]), or it is known to have none.
    }

    /// Places the closed sockets that never got a connection: a connect()
    /// that failed (refused, timed out) left its SYN(s) and the RST on the
    /// wire, from the port the kernel had chosen; the connection whose client
    /// SYN to the same address left while the connect() ran is its. The
    /// capture hands packets over some milliseconds after they were sent,
    /// so this is tried again until `give_up` (then the calls are on no
    /// connection).
    fn place(&mut self, give_up: Nanos) {
        let waiting: Vec<SockId> = self
            .unkeyed
            .keys()
            .copied()
            .filter(|&id| self.closed.get(id).copied().unwrap_or(false))
            .collect();
        for id in waiting {
            let calls = self.unkeyed.get(&id).cloned().unwrap_or_default();
            let peer = self.seen[id].as_ref().and_then(|s| s.peer).map(on_the_wire);
            let port = self.seen[id]
                .as_ref()
                .and_then(|s| s.local)
                .map_or(0, |l| l.port());
            let found = peer.and_then(|peer| {
                calls
                    .iter()
                    .map(|(_, t)| t)
                    .filter(|t| t.call.kind == CallKind::Connect)
                    .find_map(|t| {
                        self.groups.iter().find_map(|(k, g)| {
                            let (ts, src) = g.syn?;
                            (g.socks.is_empty()
                                && k.1 == peer
                                && src == k.0
                                && (port == 0 || src.port() == port)
                                && ts >= t.call.start
                                && ts <= t.call.end + 1_000_000)
                                .then_some(*k)
                        })
                    })
            });
            let last = calls.iter().map(|(_, t)| t.call.end).max().unwrap_or(0);
            match found {
                Some(k) => {
                    if let Some(s) = self.seen[id].as_mut() {
                        s.local = Some(k.0);
                    }
                    self.key_of[id] = Some(k);
                    self.join(id, k);
                }
                None if last < give_up => {
                    if let Some(calls) = self.unkeyed.remove(&id) {
                        self.loose.extend(calls);
                    }
                }
                None => {}
            }
        }
    }

    fn call(&mut self, mut t: Traced) {
        let n = self.seq;
        self.seq += 1;
        let Some(id) = t.sock else {
            self.loose.push((n, t));
            return;
        };
        self.slot(id);
        if self.seen[id]
            .as_ref()
            .is_some_and(|s| s.role == Role::Listening)
        {
            self.listener_calls.push((n, t));
            return;
        }
        match self.key_of[id] {
            Some(k) => {
                let g = self
                    .groups
                    .entry(k)
                    .or_insert_with(|| Group::new(t.call.start));
                g.touch(t.call.start);
                g.touch(t.call.end);
                if !g.socks.contains(&id) {
                    g.socks.push(id);
                }
                g.calls.push((n, t));
            }
            None => {
                // Its side is decided when the connection is built.
                t.call.side = crate::model::Side::Client;
                self.unkeyed.entry(id).or_default().push((n, t));
            }
        }
    }

    fn packet(&mut self, p: RawPacket) {
        let frame = self.frames;
        self.frames += 1;
        let Ok(Some(seg)) = wire::parse_frame(self.linktype, 0, &p) else {
            return;
        };
        let (a, b) = (seg.src, seg.dst);
        let k = if self.groups.contains_key(&(a, b)) {
            (a, b)
        } else if self.groups.contains_key(&(b, a)) {
            (b, a)
        } else {
            client_end(a, b, seg.flags, &self.listeners)
        };
        let is_new = !self.groups.contains_key(&k);
        let early = if is_new {
            self.take_early(k)
        } else {
            Vec::new()
        };
        let g = self.groups.entry(k).or_insert_with(|| Group::new(seg.ts));
        g.kernel.extend(early);
        g.touch(seg.ts);
        if g.syn.is_none() && seg.flags.syn() && !seg.flags.ack() && seg.src == k.0 {
            g.syn = Some((seg.ts, seg.src));
        }
        g.note_close(&seg);
        g.packets.push(p);
        g.frames.push(frame);
    }

    fn kernel(&mut self, e: KernelEvent) {
        let e = sections::wire_event(e);
        let Some((a, b)) = event_key(&e) else {
            // Kept in time order, for the search in `build`.
            let at = self.portless.partition_point(|x| x.ts() <= e.ts());
            self.portless.insert(at, e);
            return;
        };
        let k = if self.groups.contains_key(&(a, b)) {
            (a, b)
        } else if self.groups.contains_key(&(b, a)) {
            (b, a)
        } else {
            self.early.push(e);
            return;
        };
        if let Some(g) = self.groups.get_mut(&k) {
            g.kernel.push(e);
        }
    }

    /// The reports of the connections over by `now` (CLOCK_REALTIME, the
    /// clock of packets and calls), in the order they began; `state` looks
    /// a closed socket up in the kernel's table (TIME_WAIT, or gone).
    pub fn ready(
        &mut self,
        now: Nanos,
        state: &mut dyn FnMut(&Sock) -> Option<StateObs>,
    ) -> Vec<Report> {
        let mut out = Vec::new();
        self.ready_each(now, state, &mut |r| out.push(r));
        out
    }

    /// [`Live::ready`], each report handed to `emit` as soon as it is built
    /// and dropped by it: one report is held at a time, however many
    /// connections ended since the last call (a slow writer's backlog).
    pub fn ready_each(
        &mut self,
        now: Nanos,
        state: &mut dyn FnMut(&Sock) -> Option<StateObs>,
        emit: &mut dyn FnMut(Report),
    ) {
        let quiet = self.quiet;
        let mut done: Vec<(Nanos, Key)> = self
            .groups
            .iter()
            .filter(|(k, g)| {
                if g.socks.is_empty() {
                    // Not accepted yet while a listener of ours is open for it.
                    let waiting = self
                        .listener_ids
                        .iter()
                        .any(|(id, l)| addr_match(*l, k.1) && !self.closed[*id]);
                    g.last < now.saturating_sub(2 * quiet) && !waiting
                } else {
                    let wait = if g.settled() {
                        quiet.min(SETTLED_QUIET)
                    } else {
                        quiet
                    };
                    g.last < now.saturating_sub(wait) && g.socks.iter().all(|&s| self.closed[s])
                }
            })
            .map(|(k, g)| (g.first, *k))
            .collect();
        done.sort_unstable();
        for (_, k) in done {
            if let Some(g) = self.groups.remove(&k) {
                self.build(k, g, state).into_iter().for_each(&mut *emit);
            }
        }
        // Kernel events nobody claimed in time belong to someone else.
        let old = now.saturating_sub(4 * quiet);
        self.early.retain(|e| e.ts() >= old);
        let oldest = self.groups.values().map(|g| g.first).min().unwrap_or(now);
        self.portless
            .retain(|e| e.ts() >= old.min(oldest.saturating_sub(quiet)));
    }

    /// Everything left, once the program and the capture have ended: the
    /// remaining connections, then the calls on no connection.
    pub fn finish(
        self,
        state: &mut dyn FnMut(&Sock) -> Option<StateObs>,
    ) -> (Vec<Report>, Option<Report>, (usize, usize)) {
        let mut out = Vec::new();
        let (unattached, packets) = self.finish_each(state, &mut |r| out.push(r));
        (out, unattached, packets)
    }

    /// [`Live::finish`], each remaining connection's report handed to
    /// `emit` as soon as it is built (one held at a time); returns the
    /// calls on no connection and the packet counts.
    pub fn finish_each(
        mut self,
        state: &mut dyn FnMut(&Sock) -> Option<StateObs>,
        emit: &mut dyn FnMut(Report),
    ) -> (Option<Report>, (usize, usize)) {
        self.place(Nanos::MAX);
        let mut rest: Vec<(Nanos, Key)> = self.groups.iter().map(|(k, g)| (g.first, *k)).collect();
        rest.sort_unstable();
        for (_, k) in rest {
            if let Some(g) = self.groups.remove(&k) {
                self.build(k, g, state).into_iter().for_each(&mut *emit);
            }
        }
        let mut loose = std::mem::take(&mut self.loose);
        loose.extend(std::mem::take(&mut self.listener_calls));
        loose.extend(self.unkeyed.drain().flat_map(|(_, c)| c));
        loose.sort_by_key(|(n, _)| *n);
        let unattached = (!loose.is_empty()).then(|| {
            let (calls, socks) = self.local(loose, &[]);
            let states = vec![None; socks.len()];
            let obs = Observed {
                calls,
                socks: &socks,
                states: &states,
                linktype: self.linktype,
                packets: Vec::new(),
                untraced: &self.untraced,
            };
            sections::prepare(obs, || Kernel::Off(String::new()), &self.ctx).unattached
        });
        let packets = (self.frames, self.kept);
        (unattached.flatten(), packets)
    }

    /// The calls with their sockets renumbered into a small table of their own.
    fn local(&self, mut calls: Vec<Seq>, extra: &[SockId]) -> (Vec<Traced>, Vec<Sock>) {
        calls.sort_by_key(|(n, _)| *n);
        let mut calls: Vec<Traced> = calls.into_iter().map(|(_, t)| t).collect();
        let mut ids: Vec<SockId> = calls.iter().filter_map(|t| t.sock).collect();
        ids.extend_from_slice(extra);
        ids.sort_unstable();
        ids.dedup();
        let index: HashMap<SockId, usize> = ids.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        let socks: Vec<Sock> = ids
            .iter()
            .map(|&s| {
                self.seen.get(s).cloned().flatten().unwrap_or(Sock {
                    ino: 0,
                    role: Role::Fresh,
                    local: None,
                    peer: None,
                    written: 0,
                    refs: 0,
                })
            })
            .collect();
        for t in &mut calls {
            t.sock = t.sock.and_then(|s| index.get(&s).copied());
        }
        (calls, socks)
    }

    fn build(
        &mut self,
        k: Key,
        mut g: Group,
        state: &mut dyn FnMut(&Sock) -> Option<StateObs>,
    ) -> Vec<Report> {
        if g.socks.is_empty()
            && !self.ctx.keep_all
            && !self.listeners.iter().any(|l| addr_match(*l, k.1))
        {
            // Someone else's connection (exec --host captures on `any`).
            return Vec::new();
        }
        // The listener's calls so far go with this connection of it.
        if self.listeners.iter().any(|l| addr_match(*l, k.1)) {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.listener_calls)
                .into_iter()
                .partition(|(_, t)| {
                    t.sock
                        .and_then(|s| self.seen.get(s).cloned().flatten())
                        .and_then(|s| s.local)
                        .is_some_and(|l| addr_match(l, k.1))
                });
            self.listener_calls = rest;
            g.calls.extend(mine);
        }
        let (lo, hi) = (
            g.first.saturating_sub(self.quiet),
            g.last.saturating_add(self.quiet),
        );
        let mut kernel = std::mem::take(&mut g.kernel);
        // Port-less events can only go to a call that may run one and was
        // running then (sections::distribute decides): only those are
        // handed over, found by time, not the whole list, which holds one
        // SYN_SENT of every connection made in the last seconds.
        let mut near: Vec<usize> = Vec::new();
        for (_, t) in &g.calls {
            if !sections::runs_portless(t.call.kind) {
                continue;
            }
            let from = t.call.start.saturating_sub(sections::CALL_SLACK).max(lo);
            let to = t.call.end.saturating_add(sections::CALL_SLACK).min(hi);
            let i = self.portless.partition_point(|e| e.ts() < from);
            near.extend((i..self.portless.len()).take_while(|&j| self.portless[j].ts() <= to));
        }
        near.sort_unstable();
        near.dedup();
        kernel.extend(near.into_iter().map(|j| self.portless[j].clone()));
        let (calls, socks) = self.local(std::mem::take(&mut g.calls), &g.socks);
        let states: Vec<Option<StateObs>> = socks
            .iter()
            .map(|s| s.conn().and_then(|_| state(s)))
            .collect();
        self.kept += g.packets.len();
        let obs = Observed {
            calls,
            socks: &socks,
            states: &states,
            linktype: self.linktype,
            packets: std::mem::take(&mut g.packets),
            untraced: &self.untraced,
        };
        let kernel_off = self.kernel_off.clone();
        let via = self.kernel_via.clone();
        let batch = Batch {
            first: Some(self.emitted),
            frames: Some(std::mem::take(&mut g.frames)),
        };
        let p = sections::prepare_part(
            obs,
            move || match kernel_off {
                Some(why) => Kernel::Off(why),
                None => Kernel::from_via(&via, kernel),
            },
            &self.ctx,
            batch,
        );
        let mut out: Vec<Report> = p.sections.collect();
        self.emitted += out.len();
        // Calls the rules put on no connection of this part (none is
        // expected: every call here is on this connection or its listener)
        // are still shown, as a report of their own.
        out.extend(p.unattached);
        out
    }
}

/// The addresses of a kernel event with both ports, as the wire has them.
fn event_key(e: &KernelEvent) -> Option<Key> {
    let (a, b) = match e {
        KernelEvent::State { local, remote, .. } => (*local, *remote),
        KernelEvent::SendReset { src, dst, .. } => (*src, *dst),
    };
    (a.port() != 0 && b.port() != 0).then_some((a, b))
}

/// A recording replayed as a live run would have seen it: each observation
/// at the moment it would have arrived (a call when it returned, a packet
/// and a kernel event at their time, a socket's last close after its last
/// call), the connections built as they end. The reports, in the order they
/// were built, and the calls on no connection. For tests: the same stories
/// as [`super::assemble`], cut up as they go.
pub fn replay(rec: super::ExecRecording) -> (Vec<Report>, Option<Report>) {
    let stopped = rec.stopped.clone().or_else(|| {
        rec.timed_out
            .then_some(crate::model::exec::Stopped::Timeout)
    });
    let ctx = Context {
        command: rec.command.join(" "),
        namespace: rec.namespace.clone(),
        iface: rec.iface.clone(),
        counters: None,
        snaplen: rec.snaplen,
        interrupted: None,
        keep_all: rec.keep_all,
    };
    let (kernel_off, events) = match (&rec.kernel, rec.kernel.events()) {
        (_, Some(ev)) => (None, ev.to_vec()),
        (Kernel::Off(why), _) => (Some(why.clone()), Vec::new()),
        _ => (None, Vec::new()),
    };
    let quiet = 1_000_000_000;
    let mut live = Live::new(ctx, rec.linktype, quiet, kernel_off);
    if let Some(via) = rec.kernel.via() {
        live.kernel_via = via;
    }
    // (arrival, order, observation)
    let mut obs: Vec<(Nanos, usize, Obs)> = Vec::new();
    let mut last_of: HashMap<SockId, Nanos> = HashMap::default();
    let mut first_of: HashMap<SockId, Nanos> = HashMap::default();
    for t in &rec.calls {
        if let Some(s) = t.sock {
            let l = last_of.entry(s).or_insert(t.call.end);
            *l = (*l).max(t.call.end);
            let f = first_of.entry(s).or_insert(t.call.end);
            *f = (*f).min(t.call.end);
        }
    }
    for (id, s) in rec.socks.iter().enumerate() {
        let at = first_of.get(&id).copied().unwrap_or(0);
        obs.push((at, 0, Obs::Sock(id, s.clone())));
        if let Some(&end) = last_of.get(&id) {
            obs.push((end, 2, Obs::Closed(id)));
        }
    }
    for t in rec.calls {
        obs.push((t.call.end, 1, Obs::Call(Box::new(t))));
    }
    for p in rec.packets {
        obs.push((p.ts, 1, Obs::Packet(p)));
    }
    for e in events {
        obs.push((e.ts(), 1, Obs::Kernel(e)));
    }
    for u in rec.untraced {
        obs.push((u.ts, 0, Obs::Untraced(u)));
    }
    obs.sort_by_key(|(t, o, _)| (*t, *o));
    let states: HashMap<u64, StateObs> = rec
        .socks
        .iter()
        .zip(rec.states)
        .filter_map(|(s, st)| Some((s.ino, st?)))
        .collect();
    let mut state = |s: &Sock| states.get(&s.ino).cloned();
    let mut out = Vec::new();
    for (t, _, o) in obs {
        live.push(o);
        out.extend(live.ready(t, &mut state));
    }
    live.set_interrupted(stopped.as_ref().map(|s| super::stop_words(s, rec.timeout)));
    let (rest, unattached, _) = live.finish(&mut state);
    out.extend(rest);
    (out, unattached)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::lo_frame;

    /// A captured segment from `src` to `dst`.
    fn seg(src: &str, dst: &str, seq: u32, ack: Option<u32>, flags: &str) -> crate::model::Segment {
        let p = lo_frame(0, src, dst, seq, ack, flags);
        wire::parse_frame(1, 0, &p)
            .expect("parses")
            .expect("a TCP segment")
    }

    const C: &str = "127.0.0.1:40000";
    const S: &str = "127.0.0.1:5600";

    #[test]
    fn settled_once_both_fins_are_acknowledged() {
        let mut g = Group::new(0);
        g.note_close(&seg(C, S, 100, Some(200), "F"));
        assert!(!g.settled(), "one FIN, not acknowledged");
        g.note_close(&seg(S, C, 200, Some(101), ""));
        assert!(!g.settled(), "one FIN acknowledged, the other not sent");
        g.note_close(&seg(S, C, 200, Some(101), "F"));
        // Negative control: an ACK short of the server's FIN settles nothing.
        g.note_close(&seg(C, S, 101, Some(200), ""));
        assert!(!g.settled(), "the server's FIN is not acknowledged yet");
        g.note_close(&seg(C, S, 101, Some(201), ""));
        assert!(g.settled());
    }

    #[test]
    fn settled_by_a_reset() {
        let mut g = Group::new(0);
        g.note_close(&seg(C, S, 100, Some(200), ""));
        assert!(!g.settled());
        g.note_close(&seg(S, C, 200, None, "R"));
        assert!(g.settled());
    }
}
