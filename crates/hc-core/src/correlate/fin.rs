//! FIN.
//!
//! A FIN comes from the latest shutdown() or close() of the sending side on
//! that connection made before the FIN. (The API contract that FINs come
//! from those calls is the only knowledge used; which of them sends one —
//! shutdown(SHUT_RD) does not, close() of a dup does not — is what the wire
//! shows.) A FIN on a data segment has both causes: the write's data and
//! the shutdown's FIN.

use super::{Cause, Correlator, Origin, Part, SegCtx};
use crate::model::CallKind;

pub(super) fn fin_cause(c: &Correlator, s: &SegCtx) -> Cause {
    let call = c.latest_call(s.from, s.conn, s.seg.ts, |k| {
        matches!(k.kind, CallKind::Shutdown | CallKind::Close)
    });
    Cause::new(
        Part::Fin,
        match call {
            Some((event, _)) => Origin::Call { event },
            None => Origin::NoCall,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use crate::testkit::{Script, A, F, P};

    #[test]
    fn the_fin_goes_to_the_shutdown_and_its_ack_to_the_kernel() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(3, Side::Client, P | A, 100)
            .seg_at(3, Side::Server, A, 0)
            .call_at(4, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(4, Side::Client, F | A, 0)
            .seg_at(4, Side::Server, A, 0)
            .run();
        let (shut, _) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
        let (fin_i, fin) = nth_seg(&t, 5);
        assert_eq!(cause(fin, Part::Fin).event(), Some(shut));
        let c = cause(nth_seg(&t, 6).1, Part::Ack);
        assert_eq!(c.answers(), Some(fin_i));
        assert_eq!(c.event(), None);
    }

    #[test]
    fn data_and_fin_in_one_segment_have_both_calls() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .call_at(4, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(5, Side::Client, F | P | A, 100)
            .run();
        let (w, _) = call_of(&t, CallKind::Write, Side::Client, 0);
        let (shut, _) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
        let (_, s) = nth_seg(&t, 3);
        assert_eq!(cause(s, Part::Data).event(), Some(w));
        assert_eq!(cause(s, Part::Fin).event(), Some(shut));
    }

    #[test]
    fn shutdown_rd_and_a_dup_close_put_nothing_on_the_wire() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_RD", 0)
            .call_at(4, Side::Client, CallKind::Close, "", 0)
            .call_at(5, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(5, Side::Client, F | A, 0)
            .run();
        let (_, rd) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
        let (_, close) = call_of(&t, CallKind::Close, Side::Client, 0);
        let (wr, _) = call_of(&t, CallKind::Shutdown, Side::Client, 1);
        assert!(rd.caused.is_empty() && close.caused.is_empty());
        assert_eq!(cause(nth_seg(&t, 3).1, Part::Fin).event(), Some(wr));
    }

    #[test]
    fn a_fin_in_a_retransmitted_data_segment_credits_the_shutdown() {
        // data(100) is lost; the FIN goes alone after shutdown(); the kernel
        // then re-sends the data with the FIN in one segment.
        let mut s = Script::new();
        s.handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(3, Side::Client, P | A, 100)
            .call_at(4, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(4, Side::Client, F | A, 0)
            .resend_at(210, 3);
        let (calls, mut segs) = s.parts();
        let last = segs.len() - 1;
        segs[last].flags = crate::model::TcpFlags(F | P | A);
        let t = correlate(calls, segs, Some(crate::testkit::addr(crate::testkit::S)));
        let (w, _) = call_of(&t, CallKind::Write, Side::Client, 0);
        let (shut, _) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
        let (_, again) = nth_seg(&t, 5);
        assert!(again.retransmission_of.is_some(), "a retransmission");
        assert_eq!(cause(again, Part::Data).event(), Some(w));
        // Negative control of the old bug: the FIN is not the write's.
        assert_eq!(cause(again, Part::Fin).event(), Some(shut));
        assert_ne!(cause(again, Part::Fin).event(), Some(w));
    }

    #[test]
    fn a_fin_after_other_calls_goes_to_the_shutdown_made_before_it() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .call_at(4, Side::Client, CallKind::Read, "", 0)
            .seg_at(5, Side::Client, F | A, 0)
            .run();
        let (shut, _) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
        assert_eq!(cause(nth_seg(&t, 3).1, Part::Fin).event(), Some(shut));
    }
}
