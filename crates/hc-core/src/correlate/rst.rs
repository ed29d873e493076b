//! RST.
//!
//! If the sending side made a call after the last segment it received,
//! that call caused the RST (close() with unread data, SO_LINGER 0);
//! otherwise the RST is the kernel's answer to a segment it received: the
//! one its numbers answer (RFC 9293 §3.10.7: an RST answering a segment
//! with ACK takes that ACK as its sequence number, one answering a segment
//! without ACK acknowledges it), the latest received when none matches; the
//! side's last call is named as context. When the kernel's tracepoint
//! reported the RST, its reason is attached ([`Correlator::attach_resets`],
//! a listener's reset too, which the tracepoint reports with the listener's
//! own addresses) and checked against this attribution: both are shown,
//! and a disagreement is flagged, never hidden.

use super::{Cause, Correlator, Event, KernelRst, Origin, Part, SegCtx};
use crate::model::kernel::{reason_kind, KernelEvent, ReasonKind};
use crate::model::{addr_match, Call, CallKind, Nanos};

pub(super) fn rst_cause(c: &Correlator, s: &SegCtx) -> Cause {
    let call = c.latest_call(s.from, s.conn, s.seg.ts, |k| k.kind != CallKind::Sleep);
    let received = c.latest_segment(s.from.other(), s.conn);
    let after_last_received = |k: &Call| received.is_none_or(|(_, r)| r.seg.ts < k.start);
    let origin = match (call, received) {
        (Some((event, k)), _) if after_last_received(k) => Origin::Call { event },
        (call, Some((latest, _))) => Origin::RstAnswer {
            segment: answered(c, s).unwrap_or(latest),
            last_call: call.map(|(i, _)| i),
        },
        (_, None) => Origin::RstUnexplained,
    };
    Cause::new(Part::Rst, origin)
}

/// The received segment an RST's numbers answer: one whose ACK is the
/// RST's sequence number, or (no ACK) whose end the RST acknowledges.
/// Several segments with the same numbers (duplicate ACKs) are answered in
/// the order they came: the first not answered yet by an earlier RST, and
/// not the one the sender's socket took to close (the kernel reported its
/// LAST_ACK → CLOSE after it: that segment closed it, the next are reset).
fn answered(c: &Correlator, s: &SegCtx) -> Option<usize> {
    let rst = s.seg;
    let matches = |r: &super::SegEvent| {
        let f = r.seg.flags;
        let by_ack = f.ack() && rst.seq == r.seg.ack;
        let by_seq =
            !f.ack() && rst.flags.ack() && rst.ack == r.seg.seq.wrapping_add(r.seg.seq_space());
        by_ack || by_seq
    };
    let mut found: Vec<(usize, &super::SegEvent)> = c
        .out
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Segment(r) if r.conn == s.conn && r.from == s.from.other() && matches(r) => {
                Some((i, r))
            }
            _ => None,
        })
        .collect();
    let (&(latest, last), _) = found.split_last()?;
    // The latest run of candidates with the very same numbers.
    let same = |r: &super::SegEvent| {
        (r.seg.seq, r.seg.ack, r.seg.len, r.seg.flags.0)
            == (last.seg.seq, last.seg.ack, last.seg.len, last.seg.flags.0)
    };
    let start = found
        .iter()
        .rposition(|(_, r)| !same(r))
        .map_or(0, |p| p + 1);
    found.drain(..start);
    let answered_before: Vec<usize> = c
        .out
        .iter()
        .filter_map(|e| match e {
            Event::Segment(x) if x.conn == s.conn && x.from == s.from && x.seg.flags.rst() => {
                x.causes.iter().find_map(|k| match k.origin {
                    Origin::RstAnswer { segment, .. } => Some(segment),
                    _ => None,
                })
            }
            _ => None,
        })
        .collect();
    let closed_by = found.first().map(|&(i, first)| {
        c.out[i..].iter().any(|e| match e {
            Event::State(st) => {
                st.side == s.from
                    && st.conn == Some(s.conn)
                    && st.old == crate::model::TcpState::LAST_ACK
                    && st.new == crate::model::TcpState::CLOSE
                    && st.ts >= first.seg.ts
            }
            _ => false,
        })
    });
    let skip_first = closed_by == Some(true) && found.len() > 1;
    found
        .iter()
        .skip(usize::from(skip_first))
        .find(|(i, _)| !answered_before.contains(i))
        .map(|&(i, _)| i)
        .or(Some(latest))
}

impl Correlator {
    /// Gives each RST the kernel's reason: the tcp_send_reset event with the
    /// same addresses closest in time. The tracepoint may fire just before
    /// the packet is sent or just after (on close() the RST is already on
    /// `lo` when it fires), and its time has microsecond resolution.
    pub(super) fn attach_resets(&mut self, resets: Vec<KernelEvent>) {
        const WINDOW: Nanos = 20_000_000;
        for r in resets {
            let KernelEvent::SendReset {
                ts,
                src,
                dst,
                state,
                reason,
            } = r
            else {
                continue;
            };
            // A listener's reset comes with the listener's addresses (no
            // peer): any RST from its address matches.
            let listener = dst.port() == 0 && dst.ip().is_unspecified();
            let nearest = self
                .out
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match e {
                    Event::Segment(s)
                        if s.seg.flags.rst()
                            && s.kernel.is_none()
                            && ((s.seg.src == src && s.seg.dst == dst)
                                || (listener && addr_match(src, s.seg.src))) =>
                    {
                        Some((i, (s.seg.ts - ts).abs()))
                    }
                    _ => None,
                })
                .filter(|(_, d)| *d <= WINDOW)
                .min_by_key(|(_, d)| *d)
                .map(|(i, _)| i);
            if let Some(Event::Segment(s)) = nearest.and_then(|i| self.out.get_mut(i)) {
                let ours = s
                    .causes
                    .iter()
                    .find(|c| c.part == Part::Rst)
                    .map(|c| c.event().is_some());
                let agrees = match (reason_kind(&reason), ours) {
                    (Some(ReasonKind::Call), Some(by_call)) => Some(by_call),
                    (Some(ReasonKind::Answer), Some(by_call)) => Some(!by_call),
                    _ => None,
                };
                s.kernel = Some(KernelRst {
                    reason,
                    state,
                    agrees,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use crate::testkit::{addr, Script, A, C, F, MS, P, R, S};

    #[test]
    fn close_with_unread_data_causes_the_rst() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Server, CallKind::Write, "100", 100)
            .seg_at(3, Side::Server, P | A, 100)
            .seg_at(3, Side::Client, A, 0)
            .call_at(4, Side::Client, CallKind::Close, "", 0)
            .seg_at(4, Side::Client, R | A, 0)
            .run();
        let (close, _) = call_of(&t, CallKind::Close, Side::Client, 0);
        let rst = cause(nth_seg(&t, 5).1, Part::Rst);
        assert_eq!(rst.origin, Origin::Call { event: close });
    }

    #[test]
    fn an_rst_after_fins_answers_the_late_data() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Close, "", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .seg_at(3, Side::Server, A, 0)
            .call_at(4, Side::Server, CallKind::Write, "100", 100)
            .seg_at(4, Side::Server, P | A, 100)
            .seg_at(4, Side::Client, R, 0)
            .run();
        let (close, _) = call_of(&t, CallKind::Close, Side::Client, 0);
        let (data_i, _) = nth_seg(&t, 5);
        let rst = cause(nth_seg(&t, 6).1, Part::Rst);
        assert_eq!(
            rst.origin,
            Origin::RstAnswer {
                segment: data_i,
                last_call: Some(close)
            }
        );
        assert_eq!((rst.event(), rst.answers()), (None, Some(data_i)));
    }

    #[test]
    fn a_refused_connect_is_answered_by_the_kernel() {
        let mut s = Script::new();
        s.call_at(0, Side::Client, CallKind::Connect, S, -1)
            .seg_at(0, Side::Client, crate::testkit::SYN, 0)
            .seg_at(0, Side::Server, R | A, 0);
        let t = s.run();
        let (syn_i, _) = nth_seg(&t, 0);
        let rst = cause(nth_seg(&t, 1).1, Part::Rst);
        assert_eq!(
            rst.origin,
            Origin::RstAnswer {
                segment: syn_i,
                last_call: None
            }
        );
    }

    #[test]
    fn the_kernels_reason_is_attached_even_when_it_fires_after_the_packet() {
        let s = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Close, "", 0)
            .seg_at(3, Side::Client, R | A, 0)
            .parts();
        let reset = KernelEvent::SendReset {
            ts: 3 * MS + 90_000, // 40 µs after the packet was captured
            src: addr(C),
            dst: addr(S),
            state: "CLOSE".into(),
            reason: "TCP_ABORT_ON_CLOSE".into(),
        };
        let extra = Extra {
            kernel: vec![reset],
            ..Default::default()
        };
        let t = correlate_with(s.0, s.1, extra, Some(addr(S)));
        let (_, rst) = nth_seg(&t, 3);
        let k = rst.kernel.as_ref().expect("reason attached");
        assert_eq!(
            (k.reason.as_str(), k.agrees),
            ("TCP_ABORT_ON_CLOSE", Some(true))
        );
    }

    #[test]
    fn a_listeners_reset_gets_its_reason_though_the_tracepoint_names_no_peer() {
        let s = Script::new()
            .handshake()
            .call_at(3, Side::Server, CallKind::Close, "", 0)
            .seg_at(3, Side::Server, R | A, 0)
            .parts();
        let reset = KernelEvent::SendReset {
            ts: 3 * MS + 50_000,
            src: addr(S),
            dst: addr("0.0.0.0:0"),
            state: "LISTEN".into(),
            reason: "TCP_ABORT_ON_CLOSE".into(),
        };
        let extra = Extra {
            kernel: vec![reset],
            ..Default::default()
        };
        let t = correlate_with(s.0, s.1, extra, Some(addr(S)));
        let k = nth_seg(&t, 3).1.kernel.as_ref().expect("attached");
        assert_eq!(k.reason, "TCP_ABORT_ON_CLOSE");
    }

    #[test]
    fn each_rst_answers_the_segment_its_numbers_answer() {
        // Two segments arrive after the close; the kernel answers each.
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Client, CallKind::Close, "", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .seg_at(4, Side::Server, P | A, 10)
            .seg_at(4, Side::Server, P | A, 10);
        let (calls, mut segs) = s.parts();
        // RSTs taking each data segment's ACK as their sequence number.
        for (n, answered) in [(4usize, 4usize), (5, 5)] {
            let mut r = segs[answered].clone();
            r.frame = segs.len();
            r.ts = (5 + n as i64) * MS;
            (r.src, r.dst) = (r.dst, r.src);
            r.seq = segs[answered].ack;
            r.ack = 0;
            r.len = 0;
            r.flags = crate::model::TcpFlags(R);
            segs.push(r);
        }
        // Make the two data segments' ACKs differ, so the numbers tell them apart.
        segs[5].ack = segs[4].ack.wrapping_add(1);
        segs[7].seq = segs[5].ack;
        let t = correlate(calls, segs, Some(addr(S)));
        let (d1, _) = nth_seg(&t, 4);
        let (d2, _) = nth_seg(&t, 5);
        assert_eq!(cause(nth_seg(&t, 6).1, Part::Rst).answers(), Some(d1));
        assert_eq!(cause(nth_seg(&t, 7).1, Part::Rst).answers(), Some(d2));
    }

    #[test]
    fn rsts_to_segments_with_the_same_numbers_answer_them_in_order() {
        // The server closes; three identical ACKs of its FIN come back: the
        // first closes its LAST_ACK socket, the next two are each reset.
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Server, CallKind::Close, "", 0)
            .seg_at(3, Side::Server, F | A, 0);
        for _ in 0..3 {
            s.seg_at(4, Side::Client, A, 0);
        }
        let (calls, mut segs) = s.parts();
        let ack = segs[4].clone();
        for k in 0..2 {
            let mut r = ack.clone();
            r.frame = segs.len();
            r.ts = 5 * MS + k;
            (r.src, r.dst) = (r.dst, r.src);
            r.seq = ack.ack;
            r.ack = 0;
            r.flags = crate::model::TcpFlags(R);
            segs.push(r);
        }
        let closed = KernelEvent::State {
            ts: 4 * MS + 500_000,
            local: addr(S),
            remote: addr(C),
            old: TcpState::LAST_ACK,
            new: TcpState::CLOSE,
            by_us: false,
        };
        let extra = Extra {
            kernel: vec![closed],
            ..Default::default()
        };
        let t = correlate_with(calls, segs.clone(), extra, Some(addr(S)));
        let acks: Vec<usize> = (4..7).map(|n| nth_seg(&t, n).0).collect();
        assert_eq!(cause(nth_seg(&t, 7).1, Part::Rst).answers(), Some(acks[1]));
        assert_eq!(cause(nth_seg(&t, 8).1, Part::Rst).answers(), Some(acks[2]));
        // Without the kernel's word that the first closed the socket: in order from the first.
        let (calls, _) = s.parts();
        let t = correlate(calls, segs, Some(addr(S)));
        assert_eq!(
            cause(nth_seg(&t, 7).1, Part::Rst).answers(),
            Some(nth_seg(&t, 4).0)
        );
        assert_eq!(
            cause(nth_seg(&t, 8).1, Part::Rst).answers(),
            Some(nth_seg(&t, 5).0)
        );
    }

    #[test]
    fn a_reason_that_contradicts_the_attribution_is_flagged() {
        let s = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Close, "", 0)
            .seg_at(3, Side::Client, R | A, 0)
            .parts();
        let reset = KernelEvent::SendReset {
            ts: 3 * MS + 50_000,
            src: addr(C),
            dst: addr(S),
            state: "CLOSE".into(),
            reason: "NO_SOCKET".into(),
        };
        let extra = Extra {
            kernel: vec![reset],
            ..Default::default()
        };
        let t = correlate_with(s.0, s.1, extra, Some(addr(S)));
        let k = nth_seg(&t, 3).1.kernel.as_ref().expect("attached");
        assert_eq!(k.agrees, Some(false));
    }
}
