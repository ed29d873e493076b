//! What hc-trace itself did to segments (`wire hold`, `wire drop`), marked
//! on the segments it did it to, so nothing it changed is hidden.

use super::{Correlator, Event, Tamper};
use crate::model::fault::Tampered;
use crate::model::{Nanos, Side};

impl Correlator {
    /// Held segments are matched by addresses, sequence number and flags
    /// (the first capture of it, at most 1 ms after it reached the hook);
    /// a dropped one is the first FIN of that side after the drop rule was
    /// set (the rule drops exactly one per connection).
    pub(super) fn mark_tampered(&mut self, held: &[Tampered], drops: &[(Side, Nanos)]) {
        for h in held {
            let hit = self.out.iter_mut().find_map(|e| match e {
                Event::Segment(s)
                    if s.tampered.is_none()
                        && s.seg.src == h.src
                        && s.seg.dst == h.dst
                        && s.seg.seq == h.seq
                        && s.seg.flags == h.flags
                        && s.seg.ts <= h.from + 1_000_000 =>
                {
                    Some(s)
                }
                _ => None,
            });
            if let Some(s) = hit {
                let receiver = s.from.other();
                s.tampered = Some(match h.released {
                    Some(released) => Tamper::Held { receiver, released },
                    None => Tamper::HeldForever { receiver },
                });
            }
        }
        for &(side, since) in drops {
            let hit = self.out.iter_mut().find_map(|e| match e {
                Event::Segment(s) if s.from == side && s.seg.flags.fin() && s.seg.ts >= since => {
                    Some(s)
                }
                _ => None,
            });
            if let Some(s) = hit {
                s.tampered = Some(Tamper::Dropped {
                    receiver: side.other(),
                });
            }
        }
    }
}
