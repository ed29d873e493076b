//! What hc-trace itself did to segments (`wire hold`, `wire drop`), marked
//! on the segments it did it to as they enter the timeline, so nothing it
//! changed is hidden and what follows (an ACK, a retransmission) is told
//! knowing which copy the receiver got.

use super::Tamper;
use crate::model::fault::Tampered;
use crate::model::{Nanos, Segment, Side};

pub(super) struct Tamperer {
    held: Vec<(Tampered, bool)>,
    drops: Vec<(Side, Nanos, bool)>,
}

impl Tamperer {
    pub(super) fn new(held: Vec<Tampered>, drops: Vec<(Side, Nanos)>) -> Tamperer {
        Tamperer {
            held: held.into_iter().map(|h| (h, false)).collect(),
            drops: drops.into_iter().map(|(s, t)| (s, t, false)).collect(),
        }
    }

    /// A held segment is matched by addresses, sequence number and flags
    /// (its first capture, at most 1 ms after it reached the hook); a
    /// dropped one is the first FIN of that side after the drop rule was
    /// set (the rule drops exactly one per connection).
    pub(super) fn mark(&mut self, seg: &Segment, from: Side) -> Option<Tamper> {
        let receiver = from.other();
        if let Some((h, used)) = self.held.iter_mut().find(|(h, used)| {
            !used
                && seg.src == h.src
                && seg.dst == h.dst
                && seg.seq == h.seq
                && seg.flags == h.flags
                && seg.ts <= h.from + 1_000_000
        }) {
            *used = true;
            return Some(match h.released {
                Some(released) => Tamper::Held { receiver, released },
                None => Tamper::HeldForever { receiver },
            });
        }
        if seg.flags.fin() {
            if let Some((_, _, used)) = self
                .drops
                .iter_mut()
                .find(|(side, since, used)| !used && *side == from && seg.ts >= *since)
            {
                *used = true;
                return Some(Tamper::Dropped { receiver });
            }
        }
        None
    }
}
