//! What every picture of a run draws (the terminal ladder, Mermaid, SVG):
//! one row per call, per state change and per segment, in time order.
//!
//! The three pictures differ only in how they draw; deciding what a row says
//! (the short cause of a segment, when a state counts as changed) happens
//! here once, so the ladder, the Mermaid page and the SVG handed in for an
//! assignment can never tell a student different stories about one run.

use super::seg_label;
use hc_core::correlate::{AckCause, CallEvent, Cause, Event, Origin, Part, SegEvent, Tamper};
use hc_core::model::{CallKind, Nanos, Side, StateObs};
use hc_core::report::Report;
use hc_core::time::ms;
use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;

/// One line of the story, on one side or between the two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    Call(CallRow),
    State(StateRow),
    /// A segment where it left its sender.
    Seg(SegRow),
    /// A held segment where hc-trace delivered it to its receiver, later
    /// than it left (`fate` is [`Fate::Held`]): the second half of its arrow.
    Arrival(SegRow),
    /// Something hc-trace itself did (a fault on the wire), across both sides.
    Note(String),
    /// A lab's verdict on the call above, or the score of a prediction about
    /// it, on the call's side.
    Verdict(VerdictRow),
    /// Events drawn as one row, across both sides: a long run of plain data
    /// (as the timeline folds it), or what a picture of a very long run
    /// leaves out; the text names the events.
    Fold(String),
}

/// `✗ expect wire RST — line 31: saw nothing on the wire`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictRow {
    pub side: Side,
    pub met: bool,
    pub text: String,
}

/// A line of the summary under a picture: the same words as under the
/// timeline; `ok` says whether it is good news (None: neither).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryLine {
    pub ok: Option<bool>,
    pub text: String,
}

/// What makes a picture incomplete or a run not as written, for the
/// pictures' footers: lost packets, steps that could not be made, a signal.
pub fn problems(r: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    if r.capture.dropped() > 0 {
        notes.push(format!(
            "{} packets dropped by the capture: the picture is incomplete",
            r.capture.dropped()
        ));
    }
    for p in &r.problems {
        notes.push(format!(
            "✗ could not run as written: line {} `{}`: {}",
            p.line, p.step, p.message
        ));
    }
    if let Some(sig) = &r.interrupted {
        notes.push(format!(
            "interrupted by {sig}: this is what happened until then"
        ));
    }
    notes
}

/// An expectation's verdict in the timeline's words.
pub fn verdict_text(v: &hc_core::scenario::expect::Verdict) -> String {
    if v.met {
        format!("✓ {}  (line {}: {})", v.expect, v.line, v.seen)
    } else {
        format!("✗ {}  — line {}: saw {}", v.expect, v.line, v.seen)
    }
}

/// A prediction's score in the timeline's words, without its line and step.
pub fn prediction_text(p: &hc_core::scenario::predict::Scored) -> String {
    let mark = if p.right { "✓" } else { "✗" };
    match p.event {
        Some(e) => format!("{mark} you said {}, it was {} (#{e})", p.answer, p.observed),
        None => format!("{mark} you said {}; {}", p.answer, p.observed),
    }
}

/// What the timeline prints under its last line about a lab and a
/// prediction: the score, each prediction, the whole-run expectations and
/// how many expectations were met. Empty when the run had neither.
pub fn summary(r: &Report) -> Vec<SummaryLine> {
    let mut out = Vec::new();
    if !r.predictions.is_empty() {
        let right = r.predictions.iter().filter(|p| p.right).count();
        out.push(SummaryLine {
            ok: Some(right == r.predictions.len()),
            text: format!("Your predictions: {right} of {} right", r.predictions.len()),
        });
        for p in &r.predictions {
            out.push(SummaryLine {
                ok: Some(p.right),
                text: format!("line {:>3}  {}  {}", p.line, p.step, prediction_text(p)),
            });
        }
    }
    if !r.expectations.is_empty() {
        for v in r.expectations.iter().filter(|v| v.event.is_none()) {
            out.push(SummaryLine {
                ok: Some(v.met),
                text: verdict_text(v),
            });
        }
        let met = r.expectations.iter().filter(|v| v.met).count();
        let all = r.expectations.len();
        out.push(SummaryLine {
            ok: Some(met == all),
            text: format!("expectations: {met} of {all} met"),
        });
    }
    out
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
    /// Where a call that returned later was entered (its result comes further down).
    pub entry: bool,
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
    /// What became of it on its way (`wire hold`, `wire drop`).
    pub fate: Fate,
}

/// What became of a segment between its sender and its receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The receiver got it as it was captured: one arrow, across.
    Delivered,
    /// hc-trace held it for `held` ns: an arrow that stops half-way where it
    /// left, and its [`Row::Arrival`] further down, where it was delivered.
    Held { held: Nanos },
    /// hc-trace held it and never let it through.
    HeldForever,
    /// hc-trace dropped it before the receiver: an arrow that stops short.
    Dropped,
}

impl Fate {
    /// What hc-trace did to it, in two or three words; None when nothing.
    pub fn words(&self) -> Option<&'static str> {
        match self {
            Fate::Delivered => None,
            Fate::Held { .. } => Some("held by hc-trace"),
            Fate::HeldForever => Some("held by hc-trace, never delivered"),
            Fate::Dropped => Some("DROPPED by hc-trace"),
        }
    }
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
    /// `#15 FIN delivered, held 129.5 ms`: the title of a held segment's arrival.
    pub fn arrival_title(&self) -> String {
        match self.fate {
            Fate::Held { held } => {
                format!(
                    "#{} {} delivered, held {}",
                    self.event,
                    self.label,
                    ms(held)
                )
            }
            _ => format!("#{} {} delivered", self.event, self.label),
        }
    }
}

/// Runs of at least this many plain data segments, their ACKs and reads are
/// folded into one line (the timeline) or one row (the pictures), so a long
/// transfer stays readable.
pub const FOLD_MIN: usize = 8;

/// How many events from `i` on fold into one line: 0 when fewer than
/// [`FOLD_MIN`] plain ones follow.
pub fn fold_run(events: &[Event], i: usize) -> usize {
    let run = events[i..]
        .iter()
        .take_while(|e| foldable(e, events))
        .count();
    if run >= FOLD_MIN {
        run
    } else {
        0
    }
}

/// Plain traffic that says nothing new event by event: data without SYN,
/// FIN or RST, ACKs of data, and reads that returned data. A segment
/// hc-trace held or dropped is never plain: it is part of the lesson.
fn foldable(e: &Event, events: &[Event]) -> bool {
    match e {
        Event::Segment(s) => {
            let f = s.seg.flags;
            if f.syn() || f.fin() || f.rst() || s.tampered.is_some() {
                return false;
            }
            // Data, or an ACK of data only (not of a SYN or a FIN).
            s.seg.len > 0
                || !s.causes.iter().any(|c| match &c.origin {
                    Origin::Ack(AckCause::Of(a))
                    | Origin::Released {
                        ack: AckCause::Of(a),
                        ..
                    } => a.covers_control(),
                    _ => false,
                })
        }
        Event::Call(c) => c.call.kind == CallKind::Read && c.call.ret.unwrap_or(0) > 0,
        // Where such a read was entered, when it waited for the data.
        Event::Entry(e) => events.get(e.call).is_some_and(|c| match c {
            Event::Call(c) => c.call.kind == CallKind::Read && c.call.ret.unwrap_or(0) > 0,
            _ => false,
        }),
        Event::State(_) | Event::Note(_) | Event::Table(_) => false,
    }
}

/// What a folded run held, in one sentence: `#20–#2875 folded: 1150 data
/// segments server → client (67108864 B), 580 ACKs, … over 371.4 ms`.
pub fn fold_text(first: usize, run: &[Event]) -> String {
    let last = first + run.len() - 1;
    // Per direction, in the order first seen: (sender, segments, bytes,
    // retransmissions); each direction's data is credited to its sender.
    let mut dirs: Vec<(Side, usize, u64, usize)> = Vec::new();
    let (mut acks, mut reads, mut read_bytes) = (0, 0, 0i64);
    let mut reader = None;
    for e in run {
        match e {
            Event::Segment(s) if s.seg.len > 0 => {
                let i = match dirs.iter().position(|d| d.0 == s.from) {
                    Some(i) => i,
                    None => {
                        dirs.push((s.from, 0, 0, 0));
                        dirs.len() - 1
                    }
                };
                let d = &mut dirs[i];
                d.1 += 1;
                d.2 += u64::from(s.seg.len);
                d.3 += usize::from(s.retransmission_of.is_some());
            }
            Event::Segment(_) => acks += 1,
            Event::Call(c) => {
                reads += 1;
                read_bytes += c.call.ret.unwrap_or(0);
                reader = Some(c.call.side);
            }
            Event::State(_) | Event::Note(_) | Event::Table(_) | Event::Entry(_) => {}
        }
    }
    let span = run.last().map_or(0, |e| e.ts()) - run[0].ts();
    let mut parts = Vec::new();
    for (from, data, bytes, retrans) in dirs {
        let mut p = format!("{data} data segments {from} → {} ({bytes} B", from.other());
        if retrans > 0 {
            let _ = write!(p, ", {retrans} of them retransmissions");
        }
        p.push(')');
        parts.push(p);
    }
    if acks > 0 {
        parts.push(format!("{acks} ACKs"));
    }
    if reads > 0 {
        let who = reader.map_or(String::new(), |s| format!(" by the {s}"));
        parts.push(format!("{reads} reads{who} returning {read_bytes} B"));
    }
    format!(
        "#{first}–#{last} folded: {} over {:.1} ms",
        parts.join(", "),
        span as f64 / 1e6
    )
}

/// The rows of a run, in timeline order. A segment hc-trace held has two
/// rows: where it left ([`Row::Seg`]) and, after every event before its
/// delivery, where it arrived ([`Row::Arrival`]); so nothing that answers it
/// (an ACK, a state change, a read's end of file) is drawn before it arrived.
pub fn rows(r: &Report) -> Vec<Row> {
    rows_at_most(r, MAX_ROWS)
}

/// At most this many rows in a picture: a run longer than that even after
/// its plain data is folded keeps its first and last rows, and one row
/// says which events are left out (the timeline has them all).
pub const MAX_ROWS: usize = 300;

/// [`rows`], keeping at most `max` of them (and at least 20).
pub fn rows_at_most(r: &Report, max: usize) -> Vec<Row> {
    let mut rows = all_rows(r);
    let max = max.max(20);
    if rows.len() > max {
        let head = max * 2 / 3;
        let tail = max - head - 1;
        let cut: Vec<Row> = rows.drain(head..rows.len() - tail).collect();
        let events: Vec<usize> = cut.iter().filter_map(Row::event).collect();
        let (first, last) = (
            events.iter().min().copied().unwrap_or(0),
            events.iter().max().copied().unwrap_or(0),
        );
        rows.insert(
            head,
            Row::Fold(format!(
                "#{first}–#{last}: {} more rows not drawn here (a picture shows at most {max}); the timeline shows every event",
                cut.len()
            )),
        );
    }
    rows
}

impl Row {
    /// The timeline event a row draws, when it draws one.
    pub fn event(&self) -> Option<usize> {
        match self {
            Row::Call(c) => Some(c.event),
            Row::Seg(s) | Row::Arrival(s) => Some(s.event),
            _ => None,
        }
    }
}

fn all_rows(r: &Report) -> Vec<Row> {
    let mut out = Vec::new();
    let names = SocketNames::of(r);
    // Held segments not yet delivered: (when, their row).
    let mut in_flight: Vec<(Nanos, SegRow)> = Vec::new();
    // Last state seen per socket, keyed like the correlator keys sockets.
    let mut seen: HashMap<(Side, Option<SocketAddr>, Option<SocketAddr>), String> = HashMap::new();
    // The kernel's own reports, when there are any, say every change as it
    // happened; states read after calls would only repeat them, later.
    let kernel_states = r
        .timeline
        .events
        .iter()
        .any(|e| matches!(e, Event::State(_)));
    let events = &r.timeline.events;
    let mut i = 0;
    while i < events.len() {
        let e = &events[i];
        deliver(&mut out, &mut in_flight, Some(e.ts()));
        // Long runs of plain data, as the timeline folds them.
        let run = fold_run(events, i);
        if run > 0 {
            out.push(Row::Fold(fold_text(i, &events[i..i + run])));
            i += run;
            continue;
        }
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
                            state: names.name(c.call.side, c.call.local, c.call.peer, now),
                        }));
                    }
                }
                for v in r.expectations.iter().filter(|v| v.event == Some(i)) {
                    // Beside a call there is room for little: a met
                    // expectation is its mark; an unmet one says what was seen.
                    let text = if v.met {
                        format!("✓ {}", v.expect)
                    } else {
                        verdict_text(v)
                    };
                    out.push(Row::Verdict(VerdictRow {
                        side: c.call.side,
                        met: v.met,
                        text,
                    }));
                }
                for p in r.predictions.iter().filter(|p| p.event == Some(i)) {
                    out.push(Row::Verdict(VerdictRow {
                        side: c.call.side,
                        met: p.right,
                        text: prediction_text(p),
                    }));
                }
            }
            Event::Segment(s) => {
                let row = seg_row(i, s, r);
                if let Some(Tamper::Held { released, .. }) = s.tampered {
                    in_flight.push((released, row.clone()));
                }
                out.push(Row::Seg(row));
            }
            // The kernel's own report of a change, as it happened.
            Event::State(st) => {
                let now = st.new.name().into_owned();
                seen.insert((st.side, Some(st.local), Some(st.remote)), now.clone());
                let state = match st.continues_as {
                    Some(t) => format!("{now} (then {} in the kernel table)", t.name()),
                    None => now,
                };
                out.push(Row::State(StateRow {
                    side: st.side,
                    state: names.name(st.side, Some(st.local), Some(st.remote), state),
                }));
            }
            Event::Note(n) => out.push(Row::Note(n.text.clone())),
            // Where a call that waited was entered: its name, then "…".
            Event::Entry(en) => {
                if let Some(Event::Call(c)) = r.timeline.events.get(en.call) {
                    let mut row = call_row(en.call, c);
                    row.text = format!("{}{NBSP}…", c.call.short_name());
                    row.failed = false;
                    row.entry = true;
                    out.push(Row::Call(row));
                }
            }
            // What became of a closed connection, from the kernel's table.
            Event::Table(t) => {
                let state = t
                    .state
                    .map_or_else(|| "gone".to_string(), |s| s.name().into_owned())
                    + " (kernel table)";
                seen.insert((t.side, Some(t.local), Some(t.peer)), state.clone());
                out.push(Row::State(StateRow {
                    side: t.side,
                    state: names.name(t.side, Some(t.local), Some(t.peer), state),
                }));
            }
        }
        i += 1;
    }
    deliver(&mut out, &mut in_flight, None);
    out
}

/// Which socket a state row is about, when its side has more than one (the
/// server's listener and the connection it accepted, or several
/// connections): `listener CLOSE`, `conn CLOSE`, `conn :42290 CLOSE` (by
/// the peer's port, when a side has more than one connection). With one
/// socket a side, a state needs no name.
struct SocketNames {
    /// Per side: the distinct sockets seen in calls and kernel reports: a
    /// connection by its peer (its own port may not be chosen yet when the
    /// kernel reports SYN_SENT), a listener by its address.
    sockets: [Vec<(Option<SocketAddr>, Option<SocketAddr>)>; 2],
}

impl SocketNames {
    fn of(r: &Report) -> SocketNames {
        let mut sockets: [Vec<(Option<SocketAddr>, Option<SocketAddr>)>; 2] =
            [Vec::new(), Vec::new()];
        let mut add = |side: Side, local: Option<SocketAddr>, peer: Option<SocketAddr>| {
            let key = match peer.filter(|p| p.port() != 0) {
                Some(p) => (None, Some(p)),
                None if local.is_some() => (local, None),
                None => return,
            };
            let list = &mut sockets[usize::from(side == Side::Server)];
            if !list.contains(&key) {
                list.push(key);
            }
        };
        for e in &r.timeline.events {
            match e {
                Event::Call(c) if c.call.kind != CallKind::Sleep => {
                    add(c.call.side, c.call.local, c.call.peer)
                }
                Event::State(st) => add(st.side, Some(st.local), Some(st.remote)),
                Event::Table(t) => add(t.side, Some(t.local), Some(t.peer)),
                _ => {}
            }
        }
        SocketNames { sockets }
    }

    fn name(
        &self,
        side: Side,
        local: Option<SocketAddr>,
        peer: Option<SocketAddr>,
        state: String,
    ) -> String {
        let list = &self.sockets[usize::from(side == Side::Server)];
        if list.len() < 2 {
            return state;
        }
        let conns = list.iter().filter(|(_, p)| p.is_some()).count();
        match peer.filter(|p| p.port() != 0) {
            Some(p) if conns > 1 => format!("conn :{} {state}", p.port()),
            Some(_) => format!("conn {state}"),
            None if local.is_some() => format!("listener {state}"),
            None => state,
        }
    }
}

/// Adds the arrivals of the held segments delivered before `now` (all of
/// them when `now` is None: after the last event), in the order delivered.
fn deliver(out: &mut Vec<Row>, in_flight: &mut Vec<(Nanos, SegRow)>, now: Option<Nanos>) {
    if in_flight.is_empty() {
        return;
    }
    in_flight.sort_by_key(|(t, row)| (*t, row.event));
    let due = in_flight
        .iter()
        .take_while(|(t, _)| now.is_none_or(|now| *t < now))
        .count();
    out.extend(in_flight.drain(..due).map(|(_, row)| Row::Arrival(row)));
}

fn call_row(i: usize, c: &CallEvent) -> CallRow {
    let call = &c.call;
    let name = match call.kind {
        // The driver already writes sleep as `sleep(100 ms)`.
        CallKind::Sleep => call.text.clone(),
        // `TCP_CORK 1` stays on one line; SO_LINGER's pair may break at its comma.
        CallKind::Setsockopt if !call.args.contains(',') => {
            call.short_name().replace(' ', &NBSP.to_string())
        }
        _ => call.short_name(),
    };
    let ret = match (&call.errno, call.ret) {
        (Some(e), _) => format!(" ={NBSP}-1{NBSP}{e}"),
        (None, Some(0)) if call.kind == CallKind::Read => match c.eof {
            Some(hc_core::correlate::Eof::ShutRd { .. }) => format!(" ={NBSP}0{NBSP}(SHUT_RD)"),
            Some(hc_core::correlate::Eof::Unknown) => format!(" ={NBSP}0"),
            _ => format!(" ={NBSP}0{NBSP}EOF"),
        },
        (None, Some(r)) if call.kind != CallKind::Sleep => format!(" ={NBSP}{r}"),
        _ => String::new(),
    };
    CallRow {
        event: i,
        side: call.side,
        text: format!("{name}{ret}"),
        failed: call.errno.is_some(),
        entry: false,
    }
}

/// The state name a textbook would write: the connection's state even when
/// Linux has handed it to a TIME_WAIT socket, CLOSED once nothing is left.
pub fn short_state(s: &StateObs) -> Option<String> {
    match s {
        StateObs::TcpInfo { state } | StateObs::ProcNet { state } => {
            Some(state.name().into_owned())
        }
        StateObs::Handed { table, .. } => Some(table.name().into_owned()),
        StateObs::Gone => Some("CLOSED".into()),
        StateObs::Unknown => None,
    }
}

fn seg_row(i: usize, s: &SegEvent, r: &Report) -> SegRow {
    let kernel = s.causes.iter().all(|c| c.event().is_none());
    SegRow {
        event: i,
        from: s.from,
        label: seg_label(s),
        seq: s.rel_seq,
        ack: s.rel_ack,
        cause: short_cause(s, r),
        kernel,
        retransmission: s.retransmission_of.is_some(),
        fate: match s.tampered {
            None => Fate::Delivered,
            Some(Tamper::Held { released, .. }) => Fate::Held {
                held: released.saturating_sub(s.seg.ts),
            },
            Some(Tamper::HeldForever { .. }) => Fate::HeldForever,
            Some(Tamper::Dropped { .. }) => Fate::Dropped,
        },
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
        if let Some(ev) = c.event() {
            if !calls.contains(&ev) {
                calls.push(ev);
            }
        }
    }
    let name = |ev: usize, full: bool| match r.timeline.events.get(ev) {
        Some(Event::Call(c)) if full => format!("{} #{ev}", c.call.short_name()),
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
    match (c.part, c.answers(), &c.origin) {
        (Part::Ack, Some(a), _) => format!("kernel: ACK of #{a}"),
        (Part::SynAck, Some(a), _) => format!("kernel: answers #{a}"),
        (Part::Rst, Some(a), _) => format!("kernel: answers #{a}"),
        (Part::Ack, None, Origin::Ack(AckCause::WindowUpdate { .. })) => {
            "kernel: window update".into()
        }
        (Part::Ack, None, Origin::Ack(AckCause::Duplicate)) => "kernel: duplicate ACK".into(),
        (Part::Ack, None, Origin::Ack(AckCause::KeepAlive { window_probe: true })) => {
            "kernel: window probe".into()
        }
        (Part::Ack, None, Origin::Ack(AckCause::KeepAlive { .. })) => "kernel: keep-alive".into(),
        (Part::Ack, None, Origin::Ack(AckCause::Nothing)) => "kernel: nothing new".into(),
        (Part::Data, None, _) => "data: no write() seen".into(),
        (Part::Fin, None, _) => "FIN: no close() seen".into(),
        (Part::Syn, None, _) => "SYN: no connect() seen".into(),
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
mod tests {
    use super::*;
    use hc_core::testkit::*;

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
            // The server has two sockets, the listener and the accepted
            // connection: each of its states says which; the client's one
            // socket needs no name.
            vec![
                (Side::Server, "listener LISTEN"),
                (Side::Client, "ESTABLISHED"),
                (Side::Server, "conn ESTABLISHED"),
                (Side::Client, "FIN_WAIT1"),
                (Side::Server, "conn CLOSE_WAIT"),
                (Side::Server, "conn CLOSED"),
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
        assert_eq!(segs[0].cause, "connect() #5");
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

    /// Where each segment's rows are: (its send row, its arrival row).
    fn places(rows: &[Row]) -> HashMap<usize, (usize, Option<usize>)> {
        let mut at: HashMap<usize, (usize, Option<usize>)> = HashMap::new();
        for (n, row) in rows.iter().enumerate() {
            match row {
                Row::Seg(s) => {
                    at.insert(s.event, (n, None));
                }
                Row::Arrival(s) => {
                    at.get_mut(&s.event).expect("sent before it arrives").1 = Some(n);
                }
                _ => {}
            }
        }
        at
    }

    #[test]
    fn held_fins_cross_each_delivered_after_the_other_left() {
        let r = simultaneous_held();
        let rows = rows(&r);
        let fins: Vec<&SegRow> = rows
            .iter()
            .filter_map(|row| match row {
                Row::Seg(s) if s.label == "FIN" => Some(s),
                _ => None,
            })
            .collect();
        let [c, s] = fins[..] else {
            panic!("two FINs: {rows:?}")
        };
        assert_eq!((c.from, s.from), (Side::Client, Side::Server));
        assert!(matches!(c.fate, Fate::Held { held } if held == 7 * MS - 50_000));
        assert!(matches!(s.fate, Fate::Held { .. }));
        let at = places(&rows);
        let (c_sent, c_arrived) = at[&c.event];
        let (s_sent, s_arrived) = at[&s.event];
        let (c_arrived, s_arrived) = (c_arrived.expect("arrives"), s_arrived.expect("arrives"));
        // They cross: the server's FIN left before the client's arrived, and
        // the other way round.
        assert!(c_sent < s_sent && s_sent < c_arrived, "{rows:?}");
        assert!(c_arrived < s_arrived, "{rows:?}");
        // Each ACK is drawn after the FIN it acknowledges arrived.
        for (ev, _) in r.timeline.segments() {
            let Some(seg) = r.timeline.segment(ev) else {
                continue;
            };
            for a in seg.causes.iter().filter_map(Cause::answers) {
                let arrived = at[&a].1.unwrap_or(at[&a].0);
                assert!(at[&ev].0 > arrived, "#{ev} answers #{a} before it arrived");
            }
        }
        assert_eq!(
            c.arrival_title(),
            format!("#{} FIN delivered, held 6.950 ms", c.event)
        );
        // Negative control: without the holds, nothing arrives later.
        assert!(!super::rows(&shut_wr())
            .iter()
            .any(|r| matches!(r, Row::Arrival(_))));
    }

    #[test]
    fn a_dropped_fin_is_marked_and_its_retransmission_delivered() {
        let rows = rows(&fin_dropped());
        let fins: Vec<&SegRow> = rows
            .iter()
            .filter_map(|row| match row {
                Row::Seg(s) if s.label == "FIN" => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(fins.len(), 2, "{rows:?}");
        assert_eq!(fins[0].fate, Fate::Dropped);
        assert!(
            fins[0].cause.starts_with("shutdown(SHUT_WR) #"),
            "{}",
            fins[0].cause
        );
        assert_eq!(fins[1].fate, Fate::Delivered);
        assert!(fins[1].retransmission);
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
