//! Causes in words: the sentences the timeline, the pcapng comments and the
//! JSON `why` fields say about each segment. The correlator decides what
//! caused a segment (`hc_core::correlate::Origin`); this module only says it.

use hc_core::correlate::{AckCause, Acked, Cause, Origin, Part, SegEvent, Tamper, Timeline};
use hc_core::model::{Call, Nanos, Segment};
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
        (Origin::NoCall, Part::Data) => {
            format!("data: no write() of the {who} recorded for these bytes")
        }
        (Origin::NoCall, Part::Fin) => {
            format!("FIN: no shutdown() or close() of the {who} recorded before it")
        }
        (Origin::NoCall, _) => format!("no call of the {who} recorded for it"),
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
        (Origin::Ack(a), _) => match a {
            AckCause::Of(of) => format!("kernel: ACK of {}", acked_text(other, &of.covers)),
            AckCause::KeepAlive => {
                "kernel: keep-alive or window probe (one byte before the next to send)".into()
            }
            AckCause::WindowUpdate { from, to } => {
                format!("kernel: window update (win {from} → {to})")
            }
            AckCause::Duplicate => "kernel: duplicate ACK (acknowledges nothing new)".into(),
        },
        (Origin::BeforeCapture, _) => {
            "retransmission of sequence space sent before the capture started".into()
        }
    }
}

/// All causes of a segment in one line, as the pcapng comment and JSON `why` carry them.
pub fn causes_text(tl: &Timeline, s: &SegEvent) -> String {
    let mut out: Vec<String> = s.causes.iter().map(|c| why(tl, s, c)).collect();
    if let Some(a) = &s.also_acks {
        out.push(format!(
            "also ACKs {}",
            acked_text(s.from.other().name(), &a.covers)
        ));
    }
    out.join("; ")
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
        assert_eq!(seg_words(&t, 0), "client connect() #1");
        assert_eq!(
            seg_words(&t, 1),
            "kernel: answers client SYN #2 for the socket of listen() #0"
        );
        assert_eq!(seg_words(&t, 2), "kernel: ACK of server SYN-ACK #3");
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
            w.starts_with("data from client write(100) #6 (stream bytes 0..100) (sent ")
                && w.contains("after the call returned); FIN from client shutdown(SHUT_WR) #7"),
            "{w}"
        );
        let again = seg_words(&t, 4);
        assert!(
            again.starts_with("retransmission of #8 (205.0 ms later): data from client"),
            "{again}"
        );
        assert_eq!(
            seg_words(&t, 5),
            "kernel: ACK of client data #8 (100 B) and client FIN #8"
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
            "kernel: RST answering server data #9; the client's last call, close() #6, was 1.050 ms before that segment"
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
