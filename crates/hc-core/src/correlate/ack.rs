//! Pure ACKs (no data, no SYN, FIN or RST): the kernel's.
//!
//! What an ACK says is read from its acknowledgment number against what
//! the other side has sent: the SYN, data and FIN it newly covers (the
//! latest of them is what it "answers"). An ACK that covers nothing new is
//! a keep-alive or window probe when its sequence number is one before the
//! next byte to send, a window update when the window changed, and a
//! duplicate ACK otherwise. A segment that carries something else and also
//! acknowledges something new says so too ([`super::SegEvent::also_acks`]).

use super::{Cause, Correlator, Event, Origin, Part, SegCtx};
use crate::model::Side;

/// What a pure ACK is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckCause {
    /// It acknowledges these parts of the other side's sequence space.
    Of(AckOf),
    /// It sits one byte before the next to send: a keep-alive or a window probe.
    KeepAlive,
    /// It acknowledges nothing new but changes the window (raw values).
    WindowUpdate { from: u16, to: u16 },
    /// It acknowledges nothing new and changes nothing.
    Duplicate,
}

/// The parts of the other side's sequence space an acknowledgment newly
/// covers, in sequence order; `last` is the latest segment covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckOf {
    pub last: usize,
    pub covers: Vec<Acked>,
}

/// One part an acknowledgment covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acked {
    /// The SYN (or SYN-ACK) at this event.
    Syn { event: usize, syn_ack: bool },
    /// Data of these segments, this many bytes in all.
    Data { events: Vec<usize>, bytes: u32 },
    /// The FIN at this event.
    Fin { event: usize },
}

impl AckOf {
    /// Covers a SYN or a FIN (not only data).
    pub fn covers_control(&self) -> bool {
        self.covers
            .iter()
            .any(|a| matches!(a, Acked::Syn { .. } | Acked::Fin { .. }))
    }
}

/// What acknowledgment `rel_ack` (relative, from `from`) newly covers of
/// the other side's sequence space.
pub(super) fn newly_acked(c: &Correlator, conn: usize, from: Side, rel_ack: u32) -> Option<AckOf> {
    let me = c.dirs.get(&(conn, from))?;
    let peer = c.dirs.get(&(conn, from.other()))?;
    let prev = me.acked.unwrap_or(0);
    if rel_ack <= prev && me.acked.is_some() {
        return None;
    }
    let mut covers = Vec::new();
    let mut data_bytes = 0u32;
    let mut data_events = Vec::new();
    let mut last = None;
    for &(s, e, ev) in &peer.sent {
        // Newly covered: ends within (prev, rel_ack]; the first ACK covers from 0.
        let newly = e <= rel_ack && (me.acked.is_none() || e > prev);
        if !newly {
            continue;
        }
        last = Some(ev);
        let Event::Segment(ps) = &c.out[ev] else {
            continue;
        };
        let f = ps.seg.flags;
        if f.syn() {
            covers.push(Acked::Syn {
                event: ev,
                syn_ack: f.ack(),
            });
        }
        if ps.seg.len > 0 {
            data_bytes += (e - s) - u32::from(f.syn()) - u32::from(f.fin());
            data_events.push(ev);
        }
        if f.fin() {
            if !data_events.is_empty() {
                covers.push(Acked::Data {
                    events: std::mem::take(&mut data_events),
                    bytes: std::mem::take(&mut data_bytes),
                });
            }
            covers.push(Acked::Fin { event: ev });
        }
    }
    if !data_events.is_empty() {
        covers.push(Acked::Data {
            events: data_events,
            bytes: data_bytes,
        });
    }
    Some(AckOf {
        last: last?,
        covers,
    })
}

pub(super) fn ack_cause(c: &Correlator, s: &SegCtx, acked: Option<AckOf>) -> Cause {
    let d = &c.dirs[&(s.conn, s.from)];
    let why = match acked {
        Some(a) => AckCause::Of(a),
        None if s.rel.wrapping_add(1) == d.max_end && d.max_end > 1 => AckCause::KeepAlive,
        None => match d.last_win {
            Some(w) if w != s.seg.win => AckCause::WindowUpdate {
                from: w,
                to: s.seg.win,
            },
            _ => AckCause::Duplicate,
        },
    };
    Cause::new(Part::Ack, Origin::Ack(why))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::*;
    use super::*;
    use crate::testkit::{Script, A, F, P};

    fn ack_of(s: &SegEvent) -> AckCause {
        match &cause(s, Part::Ack).origin {
            Origin::Ack(a) => a.clone(),
            other => panic!("not an ACK cause: {other:?}"),
        }
    }

    #[test]
    fn the_handshakes_ack_covers_the_syn_ack() {
        let t = Script::new().handshake().run();
        let (sa, _) = nth_seg(&t, 1);
        assert_eq!(
            ack_of(nth_seg(&t, 2).1),
            AckCause::Of(AckOf {
                last: sa,
                covers: vec![Acked::Syn {
                    event: sa,
                    syn_ack: true
                }]
            })
        );
    }

    #[test]
    fn data_then_fin_are_covered_in_order() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .seg_at(3, Side::Client, P | A, 100)
            .call_at(4, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(4, Side::Client, F | A, 0)
            .seg_at(5, Side::Server, A, 0)
            .run();
        let (d, _) = nth_seg(&t, 3);
        let (f, _) = nth_seg(&t, 4);
        assert_eq!(
            ack_of(nth_seg(&t, 5).1),
            AckCause::Of(AckOf {
                last: f,
                covers: vec![
                    Acked::Data {
                        events: vec![d],
                        bytes: 100
                    },
                    Acked::Fin { event: f }
                ]
            })
        );
    }

    #[test]
    fn nothing_new_is_a_window_update_or_a_duplicate() {
        let mut s = Script::new();
        s.handshake().seg_at(3, Side::Client, A, 0);
        let mut parts = s.parts();
        let t = correlate(parts.0.clone(), parts.1.clone(), None);
        assert_eq!(ack_of(nth_seg(&t, 3).1), AckCause::Duplicate);
        parts.1[3].win = 1024;
        let t = correlate(parts.0, parts.1, None);
        assert_eq!(
            ack_of(nth_seg(&t, 3).1),
            AckCause::WindowUpdate {
                from: 512,
                to: 1024
            }
        );
    }

    #[test]
    fn the_fin_ack_carried_by_the_peers_next_data_is_noted() {
        let t = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(3, Side::Client, F | A, 0)
            .call_at(4, Side::Server, CallKind::Write, "200", 200)
            .seg_at(4, Side::Server, P | A, 200)
            .run();
        let (fin, _) = nth_seg(&t, 3);
        let (_, data) = nth_seg(&t, 4);
        assert_eq!(
            data.also_acks,
            Some(AckOf {
                last: fin,
                covers: vec![Acked::Fin { event: fin }]
            })
        );
    }
}
