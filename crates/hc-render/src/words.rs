//! Causes in words: the sentences the timeline, the pcapng comments and the
//! JSON `why` fields say about each segment. The correlator decides what
//! caused a segment (`hc_core::correlate::Origin`); this module only says it.

use crate::paint::{Ink, Pen};
use hc_core::correlate::story::SentWhy;
use hc_core::correlate::{
    AckCause, Acked, CallEvent, Cause, Eof, Flow, Origin, Part, SegEvent, Sent, Tamper, Timeline,
};
use hc_core::model::{Call, CallKind, Nanos, Segment, StateObs};
use hc_core::time::ms;

/// One cause of segment `s`, as a sentence.
pub fn why(tl: &Timeline, s: &SegEvent, c: &Cause) -> String {
    if let Some(o) = c.resent {
        // The original's cause, said about the original (its own timing).
        let Some(orig) = tl.segment(o) else {
            return format!("retransmission of #{o}");
        };
        let inner = Cause {
            resent: None,
            ..c.clone()
        };
        return format!(
            "retransmission of #{o} ({} later): {}",
            ms(s.seg.ts - orig.seg.ts),
            why(tl, orig, &inner)
        );
    }
    let who = s.from.name();
    let other = s.from.other().name();
    let call = |event: usize| tl.call(event);
    match (&c.origin, c.part) {
        (Origin::Call { event }, part) => {
            let Some(k) = call(*event) else {
                return format!("#{event}");
            };
            let name = k.short_name();
            match part {
                Part::Data => {
                    let (a, b) = k.stream.unwrap_or_default();
                    format!(
                        "data from {who} {name} #{event} (stream bytes {a}..{b}){}",
                        late(s.seg.ts, k)
                    )
                }
                Part::Fin => format!("FIN from {who} {name} #{event}{}", late(s.seg.ts, k)),
                Part::Rst => format!("RST from {who} {name} #{event}{}", late(s.seg.ts, k)),
                Part::Syn | Part::SynAck | Part::Ack => format!("{who} {name} #{event}"),
            }
        }
        (Origin::NoCall, Part::Syn) => {
            format!("no connect() of the {who} recorded before this SYN")
        }
        (Origin::NoCall, Part::Data) if has_untraced(tl, s) => format!(
            "data: no traced call of the {who} wrote these bytes{}{}",
            stream_bytes(tl, s),
            untraced(tl, s)
        ),
        (Origin::NoCall, Part::Data) => match later_write(tl, s) {
            // The kernel's own byte count placed a later traced write after
            // these bytes: they were handed over by something untraced.
            Some((event, k, at)) => format!(
                "data: no traced call of the {who} wrote these bytes{}: the kernel counted {at} bytes before {} #{event}, so they came through a path hc-trace does not trace",
                stream_bytes(tl, s),
                k.short_name()
            ),
            None => format!("data: no write() of the {who} recorded for these bytes"),
        },
        (Origin::NoCall, Part::Fin) => format!(
            "FIN: no shutdown() or close() of the {who} recorded before it{}",
            untraced(tl, s)
        ),
        (Origin::NoCall, _) => format!("no call of the {who} recorded for it{}", untraced(tl, s)),
        (Origin::SynAck { syn, listen }, _) => {
            let mut w = match syn {
                Some(s) => format!("kernel: answers {other} SYN #{s}"),
                None => "kernel: SYN-ACK (the SYN it answers was not captured)".to_string(),
            };
            if let Some(l) = listen {
                w.push_str(&format!(" for the socket of listen() #{l}"));
            }
            w
        }
        (Origin::RstAnswer { segment, last_call }, _) => {
            let answered = tl.segment(*segment);
            let kind = answered.map_or_else(|| "segment".to_string(), |a| seg_kind(&a.seg));
            let context = match (last_call.and_then(call), answered) {
                (Some(k), Some(a)) => format!(
                    "; the {who}'s last call, {} #{}, was {} before that segment",
                    k.short_name(),
                    last_call.unwrap_or_default(),
                    ms(a.seg.ts - k.start)
                ),
                _ => format!("; the {who} had made no call"),
            };
            format!("kernel: RST answering {other} {kind} #{segment}{context}")
        }
        (Origin::RstUnexplained, _) => {
            format!("RST: no call of the {who} and no segment to it before it")
        }
        (Origin::Ack(a), _) => format!("kernel: {}", ack_words(tl, s, a)),
        (Origin::Released { event, ack }, _) => {
            let by = call(*event).map_or_else(
                || format!("#{event}"),
                |k| format!("{} #{event}", k.short_name()),
            );
            format!(
                "{}, released by {by}, which took data from the receive buffer",
                ack_words(tl, s, ack)
            )
        }
        (Origin::BeforeCapture, _) => {
            "retransmission of sequence space sent before the capture started".into()
        }
    }
}

/// The stream bytes a data segment carries, when the sender's SYN was
/// captured (relative sequence 1 is stream byte 0).
fn stream_bytes(tl: &Timeline, s: &SegEvent) -> String {
    let saw_syn = tl
        .segments()
        .any(|(_, g)| g.conn == s.conn && g.from == s.from && g.seg.flags.syn());
    if !saw_syn || s.rel_seq == 0 {
        return String::new();
    }
    let from = u64::from(s.rel_seq) - 1;
    format!(" (stream bytes {from}..{})", from + u64::from(s.seg.len))
}

/// The first traced write of the sender on the segment's connection whose
/// bytes (placed by the kernel's count) begin at or after the segment's:
/// (event, call, its first stream byte).
fn later_write<'a>(tl: &'a Timeline, s: &SegEvent) -> Option<(usize, &'a Call, u64)> {
    if stream_bytes(tl, s).is_empty() {
        return None;
    }
    let end = u64::from(s.rel_seq) - 1 + u64::from(s.seg.len);
    tl.calls().find_map(|(i, c)| match c.call.stream {
        Some((from, _))
            if c.conn == Some(s.conn)
                && c.call.side == s.from
                && c.call.kind == CallKind::Write
                && from >= end =>
        {
            Some((i, &c.call, from))
        }
        _ => None,
    })
}

fn has_untraced(tl: &Timeline, s: &SegEvent) -> bool {
    tl.untraced.iter().any(|(side, _)| *side == s.from)
}

/// What the sender used that no traced call shows, as the likely source
/// of a segment no call explains.
fn untraced(tl: &Timeline, s: &SegEvent) -> String {
    let what: Vec<&str> = tl
        .untraced
        .iter()
        .filter(|(side, _)| *side == s.from)
        .map(|(_, w)| w.as_str())
        .collect();
    if what.is_empty() {
        return String::new();
    }
    format!(
        "; the {} used {}, which hc-trace cannot see: the likely source",
        s.from.name(),
        what.join(", ")
    )
}

/// What a pure ACK says, in words (without "kernel:").
fn ack_words(tl: &Timeline, s: &SegEvent, a: &AckCause) -> String {
    let other = s.from.other().name();
    match a {
        AckCause::Of(of) => format!("ACK of {}", acked_text(other, &of.covers)),
        AckCause::KeepAlive { window_probe: true } => {
            format!("window probe: the {other}'s window is 0 (one byte before the next to send)")
        }
        AckCause::KeepAlive {
            window_probe: false,
        } => "keep-alive (one byte before the next to send)".into(),
        AckCause::ProbeAck { probe } => {
            let kind = tl.segment(*probe).map_or("probe", |p| {
                if p.flow.contains(&Flow::ZeroWindowProbe) {
                    "zero-window probe"
                } else {
                    "probe"
                }
            });
            format!("answers the {other}'s {kind} #{probe}; acknowledges nothing new")
        }
        AckCause::WindowUpdate { from, to } => format!("window update (win {from} → {to})"),
        AckCause::Resent { copy } => {
            let kind = tl
                .segment(*copy)
                .map_or_else(|| "segment".to_string(), |c| seg_kind(&c.seg));
            format!(
                "ACK of the re-sent {other} {kind} #{copy}, which it already had: a duplicate ACK (acknowledges nothing new)"
            )
        }
        AckCause::Duplicate => "duplicate ACK (acknowledges nothing new)".into(),
        AckCause::Nothing if s.seg.win == 0 => {
            "ACK with a zero window (acknowledges nothing new)".into()
        }
        AckCause::Nothing => "acknowledges nothing new".into(),
    }
}

/// All causes of a segment in one line, as the pcapng comment and JSON `why` carry them.
pub fn causes_text(tl: &Timeline, s: &SegEvent) -> String {
    // Parts re-sent from the same original share one "retransmission of #N".
    let mut out: Vec<String> = Vec::new();
    let mut last_resent = None;
    for c in &s.causes {
        match (c.resent, tl.segment(c.resent.unwrap_or_default())) {
            (Some(o), Some(orig)) if last_resent == Some(o) => {
                let inner = Cause {
                    resent: None,
                    ..c.clone()
                };
                out.push(why(tl, orig, &inner));
            }
            _ => out.push(why(tl, s, c)),
        }
        last_resent = c.resent;
    }
    if let Some(a) = &s.also_acks {
        out.push(format!(
            "also ACKs {}",
            acked_text(s.from.other().name(), &a.covers)
        ));
    }
    // The kernel's answer, sent while a call of the same side ran.
    if let Some(d) = s.during {
        let own = s.causes.iter().any(|c| c.event() == Some(d));
        if !own {
            if let Some(k) = tl.call(d) {
                out.push(format!("left while {} #{d} ran", k.short_name()));
            }
        }
    }
    out.join("; ")
}

/// What a call put on the wire: `data(100) #12`, `FIN #16 (released)`,
/// what it caused that left later, and what the kernel sent meanwhile.
pub fn sent_text(tl: &Timeline, call: usize, caused: &[usize], sent: &[Sent]) -> Option<String> {
    let label = |i: usize| {
        tl.segment(i).map_or_else(
            || format!("#{i}"),
            |s| format!("{} #{i}", crate::seg_label(s)),
        )
    };
    let mut parts = Vec::new();
    let during: Vec<String> = sent
        .iter()
        .filter(|x| x.why != SentWhy::Answer)
        .map(|x| label(x.segment))
        .collect();
    if !during.is_empty() {
        parts.push(during.join(", "));
    }
    for &c in caused {
        if sent.binary_search_by_key(&c, |x| x.segment).is_ok() {
            continue;
        }
        let Some(s) = tl.segment(c) else { continue };
        let what = if s.retransmission_of.is_some() {
            "sent again later"
        } else if s.seg.len > 0 {
            "its bytes, sent later"
        } else {
            "sent later"
        };
        let later = match s.during.and_then(|d| tl.call(d).map(|k| (d, k))) {
            Some((d, k)) => format!("{} ({what}, during {} #{d})", label(c), k.short_name()),
            None if s.retransmission_of.is_some() => {
                format!("{} ({what} by the kernel: a retransmission)", label(c))
            }
            None => format!("{} ({what} by the kernel)", label(c)),
        };
        let _ = call;
        parts.push(later);
    }
    let answers: Vec<String> = sent
        .iter()
        .filter(|x| x.why == SentWhy::Answer)
        .map(|x| label(x.segment))
        .collect();
    if parts.is_empty() && answers.is_empty() {
        return None;
    }
    let mut t = if parts.is_empty() {
        "nothing sent by this call".to_string()
    } else {
        parts.join(", ")
    };
    if !answers.is_empty() {
        t.push_str(&format!(
            "; meanwhile the kernel answered the peer: {}",
            answers.join(", ")
        ));
    }
    Some(t)
}

/// Why a read returned 0, in words.
pub fn eof_text(tl: &Timeline, eof: Eof) -> String {
    match eof {
        Eof::Fin { segment } => format!("end of file: the FIN #{segment} had arrived"),
        Eof::ShutRd { call } => {
            let by = tl.call(call).map_or_else(String::new, |k| k.short_name());
            format!("0 because this side shut down reading ({by} #{call}); no FIN had arrived")
        }
        Eof::Unknown => "returned 0; no FIN from the peer was captured".into(),
    }
}

/// "client data #12..#20 (900 B) and client FIN #21".
pub fn acked_text(who: &str, covers: &[Acked]) -> String {
    covers
        .iter()
        .map(|a| match a {
            Acked::Syn { event, syn_ack } => {
                format!(
                    "{who} {} #{event}",
                    if *syn_ack { "SYN-ACK" } else { "SYN" }
                )
            }
            Acked::Data { events, bytes } => {
                let refs = match events.as_slice() {
                    [one] => format!("#{one}"),
                    [first, .., last] => format!("#{first}..#{last}"),
                    [] => String::new(),
                };
                format!("{who} data {refs} ({bytes} B)")
            }
            Acked::Fin { event } => format!("{who} FIN #{event}"),
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// `1 step`, `3 steps`: a count with its noun in the right number.
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What hc-trace did to a segment, in words; `t0` is the timeline's start.
pub fn tamper_text(s: &SegEvent, t: &Tamper, t0: Nanos) -> String {
    match *t {
        Tamper::Held { receiver, released } => format!(
            "held by hc-trace at the {receiver}'s input for {}, delivered at {:.3} ms",
            ms(released - s.seg.ts),
            (released - t0) as f64 / 1e6
        ),
        Tamper::HeldForever { receiver } => {
            format!("held by hc-trace at the {receiver}'s input and never delivered")
        }
        Tamper::Dropped { receiver } => format!(
            "dropped by hc-trace at the {receiver}'s input after the capture saw it (nftables rule): the {receiver} never received it"
        ),
    }
}

/// How a segment is named in an explanation: "data", "FIN", "SYN"...
pub fn seg_kind(s: &Segment) -> String {
    let f = s.flags;
    let mut k = Vec::new();
    if f.syn() {
        k.push("SYN");
    }
    if s.len > 0 {
        k.push("data");
    }
    if f.fin() {
        k.push("FIN");
    }
    if f.rst() {
        k.push("RST");
    }
    if k.is_empty() {
        k.push("ACK");
    }
    k.join("+")
}

/// " (sent 12.3 ms after the call returned)" when the segment came noticeably late.
fn late(ts: Nanos, call: &Call) -> String {
    let d = ts - call.end;
    if d > 1_000_000 {
        format!(" (sent {} after the call returned)", ms(d))
    } else {
        String::new()
    }
}

/// "ESTABLISHED → FIN_WAIT1", or the state alone when it did not change.
pub fn state_text(c: &CallEvent, p: Pen) -> Option<String> {
    let now = c.call.state_after.label();
    if matches!(c.call.state_after, StateObs::Unknown) {
        return None;
    }
    let closed = matches!(
        c.call.state_after,
        StateObs::ProcNet { .. } | StateObs::Gone
    ) && c.call.kind == CallKind::Close;
    let what = if closed { "connection now" } else { "state" };
    // An arrow only for a change during the call: from the state at its
    // entry (the kernel's last word, or TCP_INFO read just before it).
    // No socket left is the end of CLOSE, not a change from it.
    let after = c.call.state_after.state().or(match c.call.state_after {
        StateObs::Gone => Some(hc_core::model::TcpState::CLOSE),
        _ => None,
    });
    Some(match c.state_entry {
        // The table is read after close() returned, not at its return: say
        // both states, without an arrow that would credit the call.
        Some(b) if closed && Some(b) != after => {
            format!("state {} · {what} {now}", b.name())
        }
        Some(b) if Some(b) != after => {
            format!(
                "{what} {}",
                p.ink(format!("{} → {now}", b.name()), Ink::YELLOW)
            )
        }
        _ => format!("{what} {now}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hc_core::correlate::correlate;
    use hc_core::model::{CallKind, Side};
    use hc_core::testkit::{Script, A, F, P, R, S};

    fn seg_words(tl: &Timeline, n: usize) -> String {
        let (_, s) = tl.segments().nth(n).expect("segment");
        causes_text(tl, s)
    }

    #[test]
    fn the_handshake_in_words() {
        let t = Script::new().handshake().run();
        assert_eq!(seg_words(&t, 0), "client connect() #5");
        assert_eq!(
            seg_words(&t, 1),
            "kernel: answers client SYN #2 for the socket of listen() #0"
        );
        assert_eq!(
            seg_words(&t, 2),
            "kernel: ACK of server SYN-ACK #3; left while connect() #5 ran"
        );
    }

    #[test]
    fn late_data_and_a_retransmitted_fin_say_when() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .call_at(5, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(5, Side::Client, F | P | A, 100)
            .resend_at(210, 3)
            .seg_at(211, Side::Server, A, 0)
            .run();
        let w = seg_words(&t, 3);
        assert!(
            w.starts_with("data from client write(100) #7 (stream bytes 0..100) (sent ")
                && w.contains("after the call returned); FIN from client shutdown(SHUT_WR) #8"),
            "{w}"
        );
        let again = seg_words(&t, 4);
        assert!(
            again.starts_with("retransmission of #9 (205.0 ms later): data from client")
                && again.contains("; FIN from client shutdown(SHUT_WR) #8")
                && again.matches("retransmission").count() == 1,
            "{again}"
        );
        assert_eq!(
            seg_words(&t, 5),
            "kernel: ACK of client data #10 (100 B) and client FIN #10"
        );
    }

    #[test]
    fn rsts_in_words() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Close, "", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .call_at(4, Side::Server, CallKind::Write, "200", 200)
            .seg_at(4, Side::Server, P | A, 200)
            .seg_at(4, Side::Client, R, 0)
            .run();
        assert_eq!(
            seg_words(&t, 5),
            "kernel: RST answering server data #10; the client's last call, close() #7, was 1.050 ms before that segment"
        );
        let mut s = Script::new();
        s.call_at(1, Side::Client, CallKind::Connect, S, -1)
            .seg_at(1, Side::Client, hc_core::testkit::SYN, 0)
            .seg_at(1, Side::Server, R | A, 0);
        let t = correlate(s.parts().0, s.parts().1, None);
        assert_eq!(
            seg_words(&t, 1),
            "kernel: RST answering client SYN #1; the server had made no call"
        );
    }
}
