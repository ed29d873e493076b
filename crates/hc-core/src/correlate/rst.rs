//! RST.
//!
//! If the sending side made a call after the last segment it received,
//! that call caused the RST (close() with unread data, SO_LINGER 0);
//! otherwise the RST is the kernel's answer to the segment it just
//! received, with the side's last call named as context. When the kernel's
//! tracepoint reported the RST, its reason is attached ([`Correlator::attach_resets`])
//! and checked against this attribution: both are shown, and a
//! disagreement is flagged, never hidden.

use super::{Cause, Correlator, Event, KernelRst, Origin, Part, SegCtx};
use crate::model::kernel::{reason_kind, KernelEvent, ReasonKind};
use crate::model::{Call, CallKind, Nanos};

pub(super) fn rst_cause(c: &Correlator, s: &SegCtx) -> Cause {
    let call = c.latest_call(s.from, s.conn, s.seg.ts, |k| k.kind != CallKind::Sleep);
    let received = c.latest_segment(s.from.other(), s.conn);
    let after_last_received = |k: &Call| received.is_none_or(|(_, r)| r.seg.ts < k.start);
    let origin = match (call, received) {
        (Some((event, k)), _) if after_last_received(k) => Origin::Call { event },
        (call, Some((segment, _))) => Origin::RstAnswer {
            segment,
            last_call: call.map(|(i, _)| i),
        },
        (_, None) => Origin::RstUnexplained,
    };
    Cause::new(Part::Rst, origin)
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
            let nearest = self
                .out
                .iter()
                .enumerate()
                .filter_map(|(i, e)| match e {
                    Event::Segment(s)
                        if s.seg.flags.rst()
                            && s.kernel.is_none()
                            && s.seg.src == src
                            && s.seg.dst == dst =>
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
