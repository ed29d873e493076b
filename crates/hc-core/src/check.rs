//! The story's self-check: invariants every report must keep before it is
//! printed. A violation is a bug in hc-trace (or an observation that
//! contradicts another), never something to hide: the binary prints each
//! as a warning naming the invariant and the events, JSON carries them,
//! and the tests fail on any.

use crate::correlate::{AckCause, Event, Origin, Part, Timeline};
use crate::model::{CallKind, Nanos, Side};
use crate::report::{KernelSource, Report};
use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;
use std::net::SocketAddr;

/// Which promise of the story was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// A call's result is shown before an event it waited for.
    ResultBeforeCause,
    /// A state change's left side is not the kernel's last report at entry.
    StaleState,
    /// A call is said to have put nothing on the wire while its side sent,
    /// or a segment that left during it is said to have left later.
    NothingOnTheWire,
    /// An ACK is credited to a copy the receiver never got, or does not
    /// acknowledge exactly that copy's end.
    AckOfUnreceived,
    /// With kernel tracing on, an RST has no reason, or one that disagrees
    /// with its cause.
    RstReason,
    /// A "#N" names an event of the wrong kind (a cause that is not a
    /// call, an answered segment that is not a segment).
    Reference,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        match self {
            Invariant::ResultBeforeCause => "no result before its cause",
            Invariant::StaleState => "a state change starts from the state at entry",
            Invariant::NothingOnTheWire => "\"⇒\" says what left during the call",
            Invariant::AckOfUnreceived => "an ACK acknowledges a copy the receiver got",
            Invariant::RstReason => "every RST's kernel reason agrees with its cause",
            Invariant::Reference => "every #N names the event it means",
        }
    }
}

/// One broken promise, with the events it is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub events: Vec<usize>,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    /// `result-before-cause (#12, #15): ...`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let events: Vec<String> = self.events.iter().map(|e| format!("#{e}")).collect();
        write!(
            f,
            "{} ({}): {}",
            self.invariant.name(),
            events.join(", "),
            self.detail
        )
    }
}

/// Checks every invariant on a finished report.
pub fn check(r: &Report) -> Vec<Violation> {
    let tl = &r.timeline;
    let mut out = Vec::new();
    let ix = Ix::new(tl);
    references(tl, &mut out);
    results_after_causes(tl, &ix, &mut out);
    states_from_entry(tl, &ix, &mut out);
    table_arrows(tl, &mut out);
    nothing_is_nothing(tl, &ix, &mut out);
    acks_of_received(tl, &mut out);
    if matches!(r.kernel, KernelSource::Tracepoints { .. }) {
        rst_reasons(tl, &mut out);
    }
    out
}

fn v(out: &mut Vec<Violation>, invariant: Invariant, events: Vec<usize>, detail: String) {
    out.push(Violation {
        invariant,
        events,
        detail,
    });
}

/// The timeline's segments and state changes by time, and per connection
/// and sender the segments of each kind a result may depend on, so every
/// check is a binary search, not a scan of the run for every call.
struct Ix {
    /// (time, event) of every segment, by time.
    segs: Vec<(Nanos, usize)>,
    /// (time, event) of every kernel state change per (side, local address).
    states: HashMap<(Side, SocketAddr), Vec<(Nanos, usize)>>,
    /// Per (connection, sender, kind): (event, delivered) in event order,
    /// with the earliest delivery up to each entry.
    kinds: HashMap<(usize, Side, Kind), Arrivals>,
}

/// Segments of one kind from one sender on one connection: their events in
/// order, and the earliest delivery among the first n.
type Arrivals = (Vec<usize>, Vec<Nanos>);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Data,
    Fin,
    SynAck,
}

impl Ix {
    fn new(tl: &Timeline) -> Ix {
        let mut ix = Ix {
            segs: Vec::new(),
            states: HashMap::default(),
            kinds: HashMap::default(),
        };
        for (i, e) in tl.events.iter().enumerate() {
            match e {
                Event::Segment(s) => {
                    ix.segs.push((s.seg.ts, i));
                    let f = s.seg.flags;
                    for (has, k) in [
                        (s.seg.len > 0, Kind::Data),
                        (f.fin(), Kind::Fin),
                        (f.syn() && f.ack(), Kind::SynAck),
                    ] {
                        if has {
                            let (evs, mins) = ix.kinds.entry((s.conn, s.from, k)).or_default();
                            let d = s.delivered().unwrap_or(Nanos::MAX);
                            let m = mins.last().copied().map_or(d, |p: Nanos| p.min(d));
                            evs.push(i);
                            mins.push(m);
                        }
                    }
                }
                Event::State(st) => ix
                    .states
                    .entry((st.side, st.local))
                    .or_default()
                    .push((st.ts, i)),
                _ => {}
            }
        }
        ix.segs.sort_unstable();
        for v in ix.states.values_mut() {
            v.sort_unstable();
        }
        ix
    }

    /// Entries of `v` with lo <= time <= hi.
    fn window(v: &[(Nanos, usize)], lo: Nanos, hi: Nanos) -> &[(Nanos, usize)] {
        let a = v.partition_point(|x| x.0 < lo);
        let b = v.partition_point(|x| x.0 <= hi);
        &v[a..b.max(a)]
    }

    /// Segments sent strictly inside (lo, hi).
    fn segs_inside(&self, lo: Nanos, hi: Nanos) -> &[(Nanos, usize)] {
        Ix::window(&self.segs, lo.saturating_add(1), hi.saturating_sub(1))
    }

    /// Whether `from` sent a segment of `kind` on `conn` at all, and whether
    /// one listed before event `i` was delivered by `by`.
    fn arrived(&self, conn: usize, from: Side, kind: Kind, i: usize, by: Nanos) -> (bool, bool) {
        match self.kinds.get(&(conn, from, kind)) {
            None => (false, false),
            Some((evs, mins)) => {
                let n = evs.partition_point(|&e| e < i);
                (!evs.is_empty(), n > 0 && mins[n - 1] <= by)
            }
        }
    }
}

/// Every event index a report holds points at an event of the kind it means.
fn references(tl: &Timeline, out: &mut Vec<Violation>) {
    let is_call = |i: usize| tl.call(i).is_some();
    let is_seg = |i: usize| tl.segment(i).is_some();
    let mut bad = |i: usize, j: usize, what: &str| {
        v(
            out,
            Invariant::Reference,
            vec![i, j],
            format!("#{i} names #{j} as {what}, which it is not"),
        );
    };
    for (i, e) in tl.events.iter().enumerate() {
        match e {
            Event::Segment(s) => {
                for c in &s.causes {
                    if let Some(k) = c.event().filter(|&k| !is_call(k)) {
                        bad(i, k, "the call that caused it");
                    }
                    if let Some(k) = c.answers().filter(|&k| !is_seg(k)) {
                        bad(i, k, "the segment it answers");
                    }
                    if let Some(k) = c.resent.filter(|&k| !is_seg(k)) {
                        bad(i, k, "the segment it re-sends");
                    }
                }
                if let Some(k) = s.during.filter(|&k| !is_call(k)) {
                    bad(i, k, "the call it left during");
                }
            }
            Event::Call(c) => {
                for &k in c.caused.iter().chain(c.sent.iter().map(|x| &x.segment)) {
                    if !is_seg(k) {
                        bad(i, k, "a segment it sent");
                    }
                }
                if let Some(k) = c.woke_by.filter(|&k| !is_seg(k)) {
                    bad(i, k, "the segment that woke it");
                }
                if let Some(k) = c.entry {
                    if !matches!(tl.events.get(k), Some(Event::Entry(en)) if en.call == i) {
                        bad(i, k, "its entry");
                    }
                }
            }
            Event::Entry(en) => {
                if !is_call(en.call) {
                    bad(i, en.call, "the call entered");
                }
            }
            Event::State(_) | Event::Table(_) | Event::Note(_) => {}
        }
    }
}

/// A call's result comes after what happened during it that it did not do:
/// for a call shown as one line, nothing else happened during it; for one
/// shown as a span, every such event lies between its entry and its result.
/// And what a result reports had arrived before it: the FIN of a read that
/// returned 0, the data of a read that returned data, the SYN-ACK of a
/// successful connect.
fn results_after_causes(tl: &Timeline, ix: &Ix, out: &mut Vec<Violation>) {
    for (i, c) in tl.calls() {
        let call = &c.call;
        if call.kind == CallKind::Sleep {
            continue;
        }
        let lo = c.entry.unwrap_or(i);
        // A pure ACK of what the call itself sent, or an RST answering it, is
        // the peer's reaction to the call, not something the call waited for.
        let reacts = |s: &crate::correlate::SegEvent| {
            s.seg.len == 0
                && !s.seg.flags.syn()
                && !s.seg.flags.fin()
                && s.causes.iter().any(|k| match &k.origin {
                    Origin::Ack(AckCause::Of(a)) => {
                        a.events().iter().any(|e| c.caused.binary_search(e).is_ok())
                    }
                    Origin::RstAnswer { segment, .. } => c.caused.binary_search(segment).is_ok(),
                    _ => false,
                })
        };
        for &(_, j) in ix.segs_inside(call.start, call.end) {
            let Some(s) = tl.segment(j) else { continue };
            if (j < lo || j > i) && s.from != call.side && Some(s.conn) == c.conn && !reacts(s) {
                v(
                    out,
                    Invariant::ResultBeforeCause,
                    vec![i, j],
                    format!("#{j} arrived while #{i} ran, but is shown outside it"),
                );
            }
        }
        // The state it returns with: a change of its own socket inside the
        // span that followed a segment from the peer depends on that segment,
        // so the result may not be shown before it.
        if c.entry.is_none() {
            let peer_in = ix
                .segs_inside(call.start, call.end)
                .iter()
                .filter_map(|&(_, j)| tl.segment(j).map(|s| (j, s)))
                .find(|(_, s)| s.from != call.side && Some(s.conn) == c.conn);
            if let Some((j, seg)) = peer_in {
                let changed = ix
                    .states
                    .iter()
                    .filter(|((side, _), _)| *side == call.side)
                    .flat_map(|(_, list)| {
                        Ix::window(list, seg.seg.ts, call.end.saturating_sub(1)).iter()
                    })
                    .map(|&(_, k)| k)
                    .filter(|&k| {
                        matches!(&tl.events[k], Event::State(st)
                            if st.conn.is_some() && st.conn == c.conn)
                    })
                    .min()
                    .map(|k| (k, ()));
                if let Some((k, _)) = changed {
                    v(
                        out,
                        Invariant::ResultBeforeCause,
                        vec![i, j, k],
                        format!("#{i} returns with the state #{k} reported after #{j} arrived, but is shown before both"),
                    );
                }
            }
        }
        let needs: Option<(&str, Kind)> = match (call.kind, call.ret) {
            (CallKind::Read, Some(0))
                if matches!(c.eof, Some(crate::correlate::Eof::Fin { .. })) =>
            {
                Some(("the FIN it reports", Kind::Fin))
            }
            (CallKind::Read, Some(n)) if n > 0 => Some(("the data it returned", Kind::Data)),
            (CallKind::Connect, Some(0)) if c.conn.is_some() => Some(("the SYN-ACK", Kind::SynAck)),
            _ => None,
        };
        if let (Some((what, kind)), Some(conn)) = (needs, c.conn) {
            let (any, before) = ix.arrived(conn, call.side.other(), kind, i, call.end);
            if any && !before {
                v(
                    out,
                    Invariant::ResultBeforeCause,
                    vec![i],
                    format!("#{i} {} is shown before {what}", call.short_name()),
                );
            }
        }
    }
}

/// How long after the kernel's report of a state change TCP_INFO may still
/// show the old state (see [`states_from_entry`]).
const STORE_LAG_NS: i64 = 5_000_000;

/// Where an arrow `X → Y` is shown, X is the kernel's last report for the
/// socket before the call (and agrees with TCP_INFO read at entry).
fn states_from_entry(tl: &Timeline, ix: &Ix, out: &mut Vec<Violation>) {
    for (i, c) in tl.calls() {
        let Some(entry) = c.state_entry else { continue };
        let call = &c.call;
        let list = call
            .local
            .and_then(|l| ix.states.get(&(call.side, l)))
            .map_or(&[][..], Vec::as_slice);
        let upto = list.partition_point(|x| x.0 <= call.start);
        let kernel = list[..upto]
            .iter()
            .rev()
            .find_map(|&(_, k)| match &tl.events[k] {
                Event::State(st)
                    if k < c.entry.unwrap_or(i)
                        && (call.peer == Some(st.remote)
                            || call.peer.is_none() && st.remote.port() == 0) =>
                {
                    Some((st.new, st.continues_as.unwrap_or(st.new), st.old, st.ts))
                }
                _ => None,
            });
        if let Some((k, connection, k_old, k_ts)) = kernel {
            if connection != entry {
                v(
                    out,
                    Invariant::StaleState,
                    vec![i],
                    format!(
                        "#{i} starts from {} but the kernel said {}",
                        entry.name(),
                        connection.name()
                    ),
                );
            }
            if let Some(tcp_info) = call.state_before.as_ref().and_then(|s| s.state()) {
                // TCP_INFO is read after the entry was timed and before the
                // call goes on: a change to what it says, reported by the
                // kernel inside the call's span, is the same moment seen twice.
                // The same holds the other way round: a report stamped as
                // its record is filled can come up to STORE_LAG_NS after
                // the state it reports was stored.
                let changed_inside = Ix::window(
                    list,
                    call.start,
                    call.end.max(call.start + STORE_LAG_NS),
                )
                .iter()
                .any(|&(_, k)| matches!(&tl.events[k], Event::State(st) if st.new == tcp_info));
                // The tracepoint fires as the kernel begins the change and
                // the state is stored a few instructions later; a CPU taken
                // away in between (a shared virtual machine) lets a call that
                // starts just after the report still read the old state. That
                // is the same change seen at two moments, not a stale arrow.
                let not_yet_stored =
                    tcp_info == k_old && call.start.saturating_sub(k_ts) <= STORE_LAG_NS;
                if tcp_info != k && !changed_inside && !not_yet_stored {
                    v(
                        out,
                        Invariant::StaleState,
                        vec![i],
                        format!(
                            "#{i}: TCP_INFO at entry said {}, the kernel's last report {}",
                            tcp_info.name(),
                            k.name()
                        ),
                    );
                }
            }
        }
    }
}

/// A table line's arrow starts from the latest word on that connection:
/// the kernel's last state change (or the state it lived on in), or the
/// table's previous reading.
fn table_arrows(tl: &Timeline, out: &mut Vec<Violation>) {
    for (i, e) in tl.events.iter().enumerate() {
        let Event::Table(t) = e else { continue };
        let Some(before) = t.before else { continue };
        if t.state == Some(before) {
            continue;
        }
        let latest = tl.events[..i].iter().rev().find_map(|e| match e {
            Event::State(st) if st.side == t.side && st.local == t.local && st.remote == t.peer => {
                Some(Some(st.continues_as.unwrap_or(st.new)))
            }
            Event::Table(p) if p.side == t.side && p.local == t.local && p.peer == t.peer => {
                Some(p.state)
            }
            _ => None,
        });
        if let Some(l) = latest {
            if l != Some(before) {
                v(
                    out,
                    Invariant::StaleState,
                    vec![i],
                    format!(
                        "#{i} starts from {} but the latest word was {}",
                        before.name(),
                        l.map_or("no socket".into(), |s| s.name())
                    ),
                );
            }
        }
    }
}

/// A call with nothing in `caused` and `sent` says "nothing on the wire":
/// then its side sent nothing on its connection while it ran.
/// And a segment the call caused is "sent later" only if it left after it returned.
fn nothing_is_nothing(tl: &Timeline, ix: &Ix, out: &mut Vec<Violation>) {
    for (i, c) in tl.calls() {
        if c.call.kind == CallKind::Sleep {
            continue;
        }
        for &j in &c.caused {
            let Some(s) = tl.segment(j) else { continue };
            let during = c.call.start <= s.seg.ts && s.seg.ts <= c.call.end;
            if during && c.sent.binary_search_by_key(&j, |x| x.segment).is_err() {
                v(
                    out,
                    Invariant::NothingOnTheWire,
                    vec![i, j],
                    format!("#{j} left while #{i} ran, and #{i} says it was sent later"),
                );
            }
        }
        if !c.caused.is_empty() {
            continue;
        }
        for &(_, j) in Ix::window(&ix.segs, c.call.start, c.call.end) {
            let Some(s) = tl.segment(j) else { continue };
            if s.from == c.call.side
                && Some(s.conn) == c.conn
                && c.sent.binary_search_by_key(&j, |x| x.segment).is_err()
            {
                v(
                    out,
                    Invariant::NothingOnTheWire,
                    vec![i, j],
                    format!("#{j} left while #{i} ran, and #{i} does not say so"),
                );
            }
        }
    }
}

/// "ACK of #X": the ACK's number is exactly #X's end, and #X reached the
/// receiver before the ACK left.
fn acks_of_received(tl: &Timeline, out: &mut Vec<Violation>) {
    for (j, s) in tl.segments() {
        for c in s.causes.iter().filter(|c| c.part == Part::Ack) {
            // What it is credited to: the latest copy, and every copy.
            let (last, events) = match &c.origin {
                Origin::Ack(AckCause::Of(a))
                | Origin::Released {
                    ack: AckCause::Of(a),
                    ..
                } => (a.last, a.events()),
                Origin::Ack(AckCause::Resent { copy }) => (*copy, vec![*copy]),
                _ => continue,
            };
            let Some(x) = tl.segment(last) else { continue };
            let end = x.rel_seq.wrapping_add(x.seg.seq_space());
            if s.rel_ack != Some(end) {
                v(
                    out,
                    Invariant::AckOfUnreceived,
                    vec![j, last],
                    format!(
                        "#{j} acknowledges {} but #{last} ends at {end}",
                        s.rel_ack.unwrap_or_default(),
                    ),
                );
            }
            for e in events {
                let got = tl.segment(e).and_then(|p| p.delivered());
                if got.is_none_or(|d| d > s.seg.ts) {
                    v(
                        out,
                        Invariant::AckOfUnreceived,
                        vec![j, e],
                        format!("#{j} is credited to #{e}, which the receiver did not have"),
                    );
                }
            }
        }
    }
}

/// With the kernel's tracepoints read, every RST has the kernel's reason,
/// and the reason agrees with the cause found.
fn rst_reasons(tl: &Timeline, out: &mut Vec<Violation>) {
    for (j, s) in tl.segments() {
        if !s.seg.flags.rst() {
            continue;
        }
        match &s.kernel {
            None => v(
                out,
                Invariant::RstReason,
                vec![j],
                format!(
                    "RST #{j} from the {} has no kernel reason",
                    match s.from {
                        Side::Client => "client",
                        Side::Server => "server",
                    }
                ),
            ),
            Some(k) if k.agrees == Some(false) => v(
                out,
                Invariant::RstReason,
                vec![j],
                format!(
                    "RST #{j}: the kernel's reason {} disagrees with its cause",
                    k.reason
                ),
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::correlate;
    use crate::model::{Call, StateObs, TcpFlags, TcpState};
    use crate::testkit::{addr, Script, A, F, MS, S};

    fn report(t: Timeline) -> Report {
        Report {
            timeline: t,
            ..Default::default()
        }
    }

    /// A call that starts `lag` after the kernel reported ESTABLISHED →
    /// FIN_WAIT1 for its socket, TCP_INFO at its entry still saying
    /// ESTABLISHED: the stale-state violations it gets.
    fn tcp_info_behind_the_kernel(lag: Nanos) -> Vec<Violation> {
        let mut s = Script::new();
        s.handshake();
        let (mut calls, segs) = s.parts();
        let start = 50 * MS;
        calls.push(Call {
            start,
            end: start + 10_000,
            state_before: Some(StateObs::TcpInfo {
                state: TcpState::ESTABLISHED,
            }),
            ..calls
                .iter()
                .rev()
                .find(|c| c.side == Side::Client)
                .expect("connect")
                .clone()
        });
        let extra = crate::correlate::Extra {
            kernel: vec![crate::model::kernel::KernelEvent::State {
                ts: start - lag,
                local: addr(crate::testkit::C),
                remote: addr(S),
                old: TcpState::ESTABLISHED,
                new: TcpState::FIN_WAIT1,
                by_us: false,
            }],
            ..Default::default()
        };
        check(&s.report_of("lag", calls, segs, extra))
            .into_iter()
            .filter(|v| v.invariant == Invariant::StaleState)
            .collect()
    }

    #[test]
    fn tcp_info_may_lag_the_kernels_report_only_by_a_moment() {
        // The state stored a moment after the tracepoint fired: one change.
        assert_eq!(tcp_info_behind_the_kernel(MS), vec![]);
        // Negative control: 40 ms behind is a stale observation.
        let v = tcp_info_behind_the_kernel(40 * MS);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].detail.contains("TCP_INFO at entry said ESTABLISHED"),
            "{v:?}"
        );
    }

    #[test]
    fn a_clean_story_passes() {
        let r = crate::testkit::shut_wr();
        assert_eq!(check(&r), vec![]);
    }

    #[test]
    fn an_ack_of_a_copy_never_received_is_flagged() {
        let (calls, segs) = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .seg_at(4, Side::Server, A, 0)
            .parts();
        // The FIN was dropped, and no copy came again: the ACK cannot be its.
        let extra = crate::correlate::Extra {
            drops: vec![(Side::Client, 2 * MS)],
            ..Default::default()
        };
        let t = crate::correlate::correlate_with(calls, segs, extra, Some(addr(S)));
        let v = check(&report(t));
        assert!(
            v.iter().any(|x| x.invariant == Invariant::AckOfUnreceived),
            "{v:?}"
        );
    }

    #[test]
    fn a_read_shown_before_the_data_it_returned_is_flagged() {
        // A read that returned data, with the data arriving only after it:
        // an impossible story, which the check must catch.
        let (calls, segs) = Script::new()
            .handshake()
            .call_at(3, Side::Server, CallKind::Read, "", 100)
            .seg_at(5, Side::Client, TcpFlags::PSH | A, 100)
            .parts();
        let t = correlate(calls, segs, Some(addr(S)));
        let v = check(&report(t));
        assert!(
            v.iter()
                .any(|x| x.invariant == Invariant::ResultBeforeCause),
            "{v:?}"
        );
    }
}
