//! SYN and SYN-ACK.
//!
//! - **SYN**: the latest connect() of the sending side on that connection,
//!   made before the SYN. The API contract that a SYN comes from connect()
//!   is the only knowledge used.
//! - **SYN-ACK**: the kernel, answering the SYN (no call of the server makes
//!   it); named with the listen() whose socket answered, when recorded.

use super::{Cause, Correlator, Origin, Part, SegCtx};
use crate::model::CallKind;

pub(super) fn syn_cause(c: &Correlator, s: &SegCtx) -> Cause {
    let call = c.latest_call(s.from, s.conn, s.seg.ts, |k| k.kind == CallKind::Connect);
    Cause::new(
        Part::Syn,
        match call {
            Some((event, _)) => Origin::Call { event },
            None => Origin::NoCall,
        },
    )
}

pub(super) fn syn_ack_cause(c: &Correlator, s: &SegCtx) -> Cause {
    let syn = c
        .latest_segment(s.from.other(), s.conn)
        .filter(|(_, k)| k.seg.flags.syn())
        .map(|(i, _)| i);
    let listen = c
        .latest_call(s.from, s.conn, s.seg.ts, |k| {
            k.kind == CallKind::Listen && k.ret == Some(0)
        })
        .map(|(i, _)| i);
    Cause::new(Part::SynAck, Origin::SynAck { syn, listen })
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use crate::model::TcpFlags;
    use crate::testkit::Script;

    #[test]
    fn syn_goes_to_connect_and_syn_ack_to_the_kernel_for_the_listener() {
        let t = Script::new().handshake().run();
        let (connect, ce) = call_of(&t, CallKind::Connect, Side::Client, 0);
        let (listen, le) = call_of(&t, CallKind::Listen, Side::Server, 0);
        let (syn_i, syn) = nth_seg(&t, 0);
        assert_eq!(
            cause(syn, Part::Syn).origin,
            Origin::Call { event: connect }
        );
        assert_eq!(ce.caused, vec![syn_i]);
        let sa = cause(nth_seg(&t, 1).1, Part::SynAck);
        assert_eq!(
            sa.origin,
            Origin::SynAck {
                syn: Some(syn_i),
                listen: Some(listen)
            }
        );
        assert_eq!((sa.event(), sa.answers()), (None, Some(syn_i)));
        assert!(le.caused.is_empty(), "listen() puts nothing on the wire");
    }

    #[test]
    fn a_syn_without_connect_says_so() {
        let mut s = Script::new();
        s.seg_at(0, Side::Client, TcpFlags::SYN, 0);
        let t = s.run();
        assert_eq!(cause(nth_seg(&t, 0).1, Part::Syn).origin, Origin::NoCall);
    }
}
