//! Data.
//!
//! A data segment comes from the write()s whose bytes it carries, found by
//! stream offset (relative sequence number 1 is stream offset 0 when the
//! SYN was seen), so timing does not matter: delayed (corked) data still
//! points at the write that handed it over, and one segment may carry the
//! bytes of several writes. Without the SYN the offsets are unknown and the
//! bytes are said to have no recorded write.

use super::{Cause, Correlator, Event, Origin, Part, SegCtx};
use crate::model::CallKind;

pub(super) fn data_causes(c: &Correlator, s: &SegCtx) -> Vec<Cause> {
    let first = s.rel.max(s.already).max(1);
    let last = s.rel.wrapping_add(s.seg.len);
    let k = c.conns[s.conn];
    let writes: Vec<usize> = if s.saw_syn {
        let (lo, hi) = (u64::from(first - 1), u64::from(last - 1));
        c.out
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Event::Call(ce)
                    if ce.call.side == s.from
                        && ce.call.kind == CallKind::Write
                        && ce.call.conn() == Some((k.client, k.server))
                        && ce.call.stream.is_some_and(|(a, b)| a < hi && lo < b) =>
                {
                    Some(i)
                }
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    if writes.is_empty() {
        return vec![Cause::new(Part::Data, Origin::NoCall)];
    }
    writes
        .into_iter()
        .map(|event| Cause::new(Part::Data, Origin::Call { event }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use crate::testkit::{Script, A, P};

    #[test]
    fn data_goes_to_the_write_that_holds_the_bytes_whatever_the_timing() {
        // Two writes before any segment, and segments that split them
        // differently from the calls: offsets decide, not times.
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(3, Side::Client, P | A, 150)
            .seg_at(3, Side::Client, P | A, 50)
            .run();
        let (w1, c1) = call_of(&t, CallKind::Write, Side::Client, 0);
        let (w2, c2) = call_of(&t, CallKind::Write, Side::Client, 1);
        let (s1, first) = nth_seg(&t, 3);
        let (s2, second) = nth_seg(&t, 4);
        let events: Vec<_> = first.causes.iter().map(Cause::event).collect();
        assert_eq!(events, vec![Some(w1), Some(w2)]);
        assert_eq!(
            second.causes.iter().map(Cause::event).collect::<Vec<_>>(),
            vec![Some(w2)]
        );
        assert_eq!(
            (c1.caused.clone(), c2.caused.clone()),
            (vec![s1], vec![s1, s2])
        );
    }

    #[test]
    fn corked_data_sent_later_still_points_at_its_write() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(60, Side::Client, P | A, 100)
            .run();
        let (w, _) = call_of(&t, CallKind::Write, Side::Client, 0);
        assert_eq!(cause(nth_seg(&t, 3).1, Part::Data).event(), Some(w));
    }
}
