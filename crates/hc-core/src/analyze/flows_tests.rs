//! The tracker on synthetic segments: no capture, no privileges.

use super::*;
use crate::analyze::story::RstKind;

const A: &str = "10.0.0.1:40000";
const B: &str = "10.0.0.2:80";
const F: u8 = TcpFlags::FIN;
const S: u8 = TcpFlags::SYN;
const R: u8 = TcpFlags::RST;
const K: u8 = TcpFlags::ACK;

/// Builds a conversation between A and B with automatic sequence numbers.
struct Conv {
    segs: Vec<Seg>,
    next: [u32; 2],
    t: Nanos,
}

impl Conv {
    fn new(isn_a: u32, isn_b: u32) -> Conv {
        Conv {
            segs: Vec::new(),
            next: [isn_a, isn_b],
            t: 1_000_000_000,
        }
    }
    /// `from`: 0 = A, 1 = B.
    fn seg(&mut self, from: usize, flags: u8, len: u32) -> &mut Self {
        let (src, dst) = if from == 0 { (A, B) } else { (B, A) };
        let seq = self.next[from];
        let ack = if flags & K != 0 {
            self.next[1 - from]
        } else {
            0
        };
        self.segs.push(Seg {
            ts: self.t,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            flags,
            seq,
            ack,
            win: 500,
            len,
            ttl: 64,
            cut: 0,
            frame: self.segs.len() as u64 + 1,
        });
        let space = len + u32::from(flags & S != 0) + u32::from(flags & F != 0);
        self.next[from] = self.next[from].wrapping_add(space);
        self.t += 1_000_000;
        self
    }
    fn handshake(&mut self) -> &mut Self {
        self.seg(0, S, 0).seg(1, S | K, 0).seg(0, K, 0)
    }
    fn last(&self) -> Seg {
        *self.segs.last().unwrap()
    }
    fn push_raw(&mut self, s: Seg) -> &mut Self {
        self.segs.push(s);
        self
    }
    fn stories(&self) -> Vec<Story> {
        let mut t = Tracker::new();
        let mut out = Vec::new();
        for s in &self.segs {
            t.push(s, &mut |st| out.push(st));
        }
        t.finish(&mut |st| out.push(st));
        out
    }
    fn one(&self) -> Story {
        let v = self.stories();
        assert_eq!(v.len(), 1, "{v:#?}");
        v.into_iter().next().unwrap()
    }
}

fn kinds(s: &Story) -> Vec<(End, RstKind)> {
    s.rsts.iter().map(|r| (r.from, r.kind.unwrap())).collect()
}

#[test]
fn orderly_close_names_the_active_closer() {
    let mut c = Conv::new(100, 9000);
    c.handshake()
        .seg(0, K, 50)
        .seg(1, K, 0)
        .seg(1, F | K, 0)
        .seg(0, F | K, 0)
        .seg(1, K, 0);
    let s = c.one();
    assert_eq!(s.active_closer, Some(End::B));
    assert_eq!(s.fins.len(), 2);
    assert!(s.rsts.is_empty());
    assert!(s.half_close.is_none());
    assert!(s.closed);
    assert!(s.syn_captured);
    assert_eq!((s.bytes_a_to_b, s.bytes_b_to_a), (50, 0));
}

#[test]
fn half_close_counts_bytes_after_the_first_fin() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, K, 100).seg(0, F | K, 0);
    c.seg(1, K, 150)
        .seg(0, K, 0)
        .seg(1, K, 50)
        .seg(1, F | K, 0)
        .seg(0, K, 0);
    let s = c.one();
    assert_eq!(s.active_closer, Some(End::A));
    let h = s.half_close.expect("half-close");
    assert_eq!(h.bytes_after_first_fin, 200);
    assert_eq!(h.duration_ns, 4_000_000);
    assert!(s.fins[1].why.contains("200 B more"), "{}", s.fins[1].why);
}

#[test]
fn retransmissions_and_reordering_are_not_counted_twice() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(1, K, 100);
    let first = c.last();
    c.seg(1, K, 100);
    let second = c.last();
    // The second arrives again, then the first: both are old news.
    c.push_raw(second).push_raw(first);
    c.seg(1, F | K, 0);
    let fin = c.last();
    c.push_raw(fin).seg(0, F | K, 0).seg(1, K, 0);
    let s = c.one();
    assert_eq!(s.bytes_b_to_a, 200);
    assert_eq!(s.fins.len(), 2);
    assert!(
        s.anomalies.iter().any(|a| a.contains("repeated FIN")),
        "{:?}",
        s.anomalies
    );
}

#[test]
fn sequence_numbers_wrap() {
    let mut c = Conv::new(u32::MAX - 50, u32::MAX - 1);
    c.handshake().seg(0, K, 100).seg(0, K, 100).seg(0, F | K, 0);
    c.seg(1, K, 30).seg(1, F | K, 0).seg(0, K, 0);
    let s = c.one();
    assert_eq!(s.bytes_a_to_b, 200);
    assert_eq!(s.half_close.map(|h| h.bytes_after_first_fin), Some(30));
    assert!(s.closed);
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
}

#[test]
fn refused() {
    let mut c = Conv::new(100, 0);
    c.seg(0, S, 0).seg(1, R | K, 0);
    let s = c.one();
    assert_eq!(kinds(&s), vec![(End::B, RstKind::Refused)]);
    assert_eq!(s.active_closer, None);
    assert_eq!(s.how(), "refused");
    assert!(s.rsts[0].why.starts_with("INFERRED"));
}

#[test]
fn abortive_close_with_unread_data() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(1, K, 100).seg(0, K, 0).seg(0, R | K, 0);
    let s = c.one();
    assert_eq!(kinds(&s), vec![(End::A, RstKind::Abortive)]);
    assert!(
        s.rsts[0].why.contains("received 100 B"),
        "{}",
        s.rsts[0].why
    );
    assert_eq!(s.active_closer, Some(End::A));
}

#[test]
fn linger0_without_data() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, R | K, 0);
    let s = c.one();
    assert_eq!(kinds(&s), vec![(End::A, RstKind::Abortive)]);
    assert!(s.rsts[0].why.contains("SO_LINGER"), "{}", s.rsts[0].why);
}

#[test]
fn data_after_close_is_answered_by_rst() {
    let mut c = Conv::new(100, 9000);
    c.handshake()
        .seg(0, K, 100)
        .seg(0, F | K, 0)
        .seg(1, K, 0)
        .seg(1, K, 200);
    c.seg(0, R, 0);
    let s = c.one();
    assert_eq!(kinds(&s), vec![(End::A, RstKind::DataAfterClose)]);
    assert!(s.half_close.is_none(), "refused data is no half-close");
    assert_eq!(s.active_closer, Some(End::A));
}

#[test]
fn rst_after_both_fins_and_repeats() {
    let mut c = Conv::new(100, 9000);
    c.handshake()
        .seg(0, F | K, 0)
        .seg(1, F | K, 0)
        .seg(0, R, 0)
        .seg(1, K, 0)
        .seg(0, R, 0);
    let s = c.one();
    assert_eq!(
        kinds(&s),
        vec![(End::A, RstKind::AfterFins), (End::A, RstKind::Repeat)]
    );
}

#[test]
fn mid_connection_start_and_no_close() {
    let mut c = Conv::new(5000, 7000);
    c.seg(1, K, 100).seg(0, K, 0).seg(1, K, 100);
    let s = c.one();
    assert!(!s.syn_captured);
    assert!(!s.closed);
    // The higher port is taken for the client.
    assert_eq!(s.a, A.parse().unwrap());
    assert!(s.anomalies.iter().any(|a| a.contains("mid-connection")));
    assert!(s.anomalies.iter().any(|a| a.contains("no close seen")));
}

#[test]
fn zero_window_and_data_after_fin() {
    let mut c = Conv::new(100, 9000);
    c.handshake();
    let mut z = c.seg(0, K, 0).last();
    z.win = 0;
    c.segs.pop();
    c.push_raw(z)
        .seg(1, F | K, 0)
        .seg(1, K, 10)
        .seg(0, F | K, 0)
        .seg(1, K, 0);
    let s = c.one();
    assert!(
        s.anomalies.iter().any(|a| a.contains("zero window")),
        "{:?}",
        s.anomalies
    );
    assert!(
        s.anomalies.iter().any(|a| a.contains("data after FIN")),
        "{:?}",
        s.anomalies
    );
}

#[test]
fn a_new_syn_after_close_is_a_new_connection() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, F | K, 0).seg(1, F | K, 0).seg(0, K, 0);
    c.next = [777_777, 888_888];
    c.handshake().seg(0, R | K, 0);
    let v = c.stories();
    assert_eq!(v.len(), 2, "{v:#?}");
    assert_eq!(v[0].id, 1);
    assert_eq!(v[1].id, 2);
    assert_eq!(v[0].how(), "FIN+FIN");
    assert_eq!(v[1].how(), "RST");
}

#[test]
fn closed_connections_leave_memory_after_the_linger() {
    let mut t = Tracker::new();
    let mut out = Vec::new();
    for i in 0..5000u32 {
        let mut c = Conv::new(i, i + 1);
        c.t = 1_000_000_000 + Nanos::from(i) * 100_000_000;
        c.handshake().seg(0, F | K, 0).seg(1, F | K, 0).seg(0, K, 0);
        for mut s in c.segs {
            for e in [&mut s.src, &mut s.dst] {
                if e.port() == 40000 {
                    e.set_port(1000 + (i % 60000) as u16);
                }
            }
            t.push(&s, &mut |st| out.push(st));
        }
    }
    // 5000 connections over 500 s, each lingering 60 s: about 600 held.
    assert!(t.open() < 700, "{} held", t.open());
    t.finish(&mut |st| out.push(st));
    assert_eq!(out.len(), 5000);
}

/// Issue 14, 1 (suricata-verify output-eve-ftp-data): a closes, b answers
/// with data and its FIN in one segment, a never acknowledges them and
/// resets. The FINs crossed, but the RST discards unacknowledged data:
/// data-after-close, and the data was no half-close.
#[test]
fn rst_after_crossing_fins_that_discards_data_is_data_after_close() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, K, 722).seg(0, F | K, 0).seg(1, K, 0);
    // b's data and FIN, acknowledging a's FIN; a answers with a bare RST.
    c.seg(1, F | K, 125).seg(0, R, 0);
    let s = c.one();
    assert_eq!(kinds(&s), vec![(End::A, RstKind::DataAfterClose)]);
    assert!(s.half_close.is_none(), "{:?}", s.half_close);
    let d = s.rsts[0].discarded.expect("discarded");
    assert_eq!(d.received.map(|u| u.bytes), Some(125));
    assert_eq!(d.received.and_then(|u| u.last_frame), Some(7));
    assert_eq!(d.sent.map(|u| u.bytes), Some(0));
    assert!(
        s.rsts[0]
            .why
            .contains("125 B from b that a never acknowledged"),
        "{}",
        s.rsts[0].why
    );
    // Negative control: the same close with a's ACK of the data before the
    // RST is a half-close, and the RST comes after both FINs.
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, K, 722).seg(0, F | K, 0).seg(1, K, 0);
    c.seg(1, F | K, 125).seg(0, K, 0).seg(0, R, 0);
    let s = c.one();
    assert_eq!(kinds(&s), vec![(End::A, RstKind::AfterFins)]);
    assert_eq!(s.half_close.map(|h| h.bytes_after_first_fin), Some(125));
}

/// Issue 14, 2 (tcpreplay test.pcap): the capture starts with a's FIN,
/// before anything from b: b's later data counts from b's first segment.
#[test]
fn half_close_bytes_when_the_fin_comes_before_the_other_end() {
    let mut c = Conv::new(3_000_000_000, 100);
    c.seg(0, F | K, 0)
        .seg(1, K, 30)
        .seg(0, K, 0)
        .seg(1, F | K, 0)
        .seg(0, K, 0);
    let s = c.one();
    assert_eq!(s.half_close.map(|h| h.bytes_after_first_fin), Some(30));
    assert_eq!(s.bytes_b_to_a, 30);
}

/// Issue 14, 4 (zeek rst-inject-rae): an RST with another TTL answers the
/// SYN, then the real SYN-ACK and data follow, and b's own RST ends it.
#[test]
fn a_forged_rst_the_connection_went_on_after_is_ignored() {
    let mut c = Conv::new(100, 9000);
    c.seg(0, S, 0);
    let mut forged = c.seg(1, R | K, 0).last();
    c.segs.pop();
    forged.ttl = 46;
    forged.ack = 100; // the SYN's own number, not one past it
    c.push_raw(forged);
    c.seg(1, S | K, 0).seg(0, K, 0).seg(0, K, 25).seg(1, K, 0);
    c.seg(1, R | K, 0).seg(0, K, 150);
    let last = c.seg(1, R, 0).last();
    let _ = last;
    let s = c.one();
    assert_eq!(
        kinds(&s),
        vec![
            (End::B, RstKind::Ignored),
            (End::B, RstKind::Abortive),
            (End::B, RstKind::Repeat)
        ]
    );
    assert!(s.rsts[0].why.contains("TTL (46)"), "{}", s.rsts[0].why);
    assert!(s.rsts[0].why.contains("frame 3"), "{}", s.rsts[0].why);
    assert_eq!(s.active_closer, Some(End::B));
    assert_eq!(s.how(), "RST");
    assert!(s.closed);
}

/// Issue 14, 5 (zeek pop3.pcap): a refused connect whose SYN was retried:
/// every RST refuses a SYN, and nobody closed.
#[test]
fn a_retried_syn_refused_twice_has_no_closer() {
    let mut c = Conv::new(100, 0);
    c.seg(0, S, 0).seg(1, R | K, 0);
    c.next[0] = 100;
    c.seg(0, S, 0).seg(1, R | K, 0);
    c.next[0] = 100;
    c.seg(0, S, 0).seg(1, R | K, 0);
    let s = c.one();
    assert_eq!(kinds(&s), vec![(End::B, RstKind::Refused); 3]);
    assert_eq!(s.active_closer, None);
    assert_eq!(s.how(), "refused");
    // An end that only ever sent RSTs advertised no window at all.
    assert!(
        !s.anomalies.iter().any(|a| a.contains("zero window")),
        "{:?}",
        s.anomalies
    );
}

/// Issue 14, 5: a segment that fills a gap is counted when it arrives.
#[test]
fn bytes_that_fill_a_gap_are_counted() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, K, 100);
    let first = c.last();
    c.segs.pop();
    c.seg(0, K, 100).seg(0, K, 50);
    // The first 100 bytes arrive last (captured late), then again (retransmitted).
    c.push_raw(first).push_raw(first);
    c.seg(0, F | K, 0).seg(1, F | K, 0).seg(0, K, 0);
    let s = c.one();
    assert_eq!(s.bytes_a_to_b, 250);
    // Negative control: without the late segment, the gap is not counted.
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, K, 100);
    c.segs.pop();
    c.seg(0, K, 100).seg(0, K, 50);
    assert_eq!(c.one().bytes_a_to_b, 150);
}

#[test]
fn an_rst_with_data_does_not_count_it_as_stream_bytes() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, K, 10).seg(1, K, 0).seg(1, R | K, 13);
    let s = c.one();
    assert_eq!(s.bytes_b_to_a, 0);
    assert!(s.rsts[0].why.contains("13 B of data"), "{}", s.rsts[0].why);
}

#[test]
fn frames_are_carried_into_the_story() {
    let mut c = Conv::new(100, 9000);
    c.handshake().seg(0, F | K, 0).seg(1, F | K, 0).seg(0, K, 0);
    let s = c.one();
    assert_eq!((s.first_frame, s.last_frame), (1, 6));
    assert_eq!(
        s.fins.iter().map(|f| f.frame).collect::<Vec<_>>(),
        vec![4, 5]
    );
}

/// A refused SYN retried (as Windows does) and then answered: the RST did
/// not end the connection, and the reason given is the retry, not forgery.
#[test]
fn a_refused_syn_retried_and_answered_is_no_forgery() {
    let mut c = Conv::new(100, 9000);
    c.seg(0, S, 0).seg(1, R | K, 0);
    c.next[0] = 100;
    c.handshake().seg(0, F | K, 0).seg(1, F | K, 0).seg(0, K, 0);
    let s = c.one();
    assert_eq!(kinds(&s), vec![(End::B, RstKind::Ignored)]);
    assert!(
        s.rsts[0].why.contains("sent its SYN again"),
        "{}",
        s.rsts[0].why
    );
    assert!(!s.rsts[0].why.contains("forged"), "{}", s.rsts[0].why);
    assert_eq!(s.how(), "FIN+FIN");
    assert_eq!(s.active_closer, Some(End::A));
}

/// A segment that fills the middle of a gap splits it in two (a damaged
/// capture once made this panic); any order of segments counts each byte
/// once, never more than the span, and keeps few gaps.
#[test]
fn gaps_split_and_any_order_of_segments_is_safe() {
    let mut d = Dir {
        data_end: 1000,
        holes: vec![(100, 200), (300, 400)],
        ..Dir::default()
    };
    assert_eq!(d.fill(150, 160), 10);
    assert_eq!(d.holes, vec![(100, 150), (160, 200), (300, 400)]);
    assert_eq!(d.fill(90, 350), 50 + 40 + 50);
    assert_eq!(d.holes, vec![(350, 400)]);
    // Random segments over 100 KB in every order: no panic, bounded gaps,
    // and a total no larger than what was sent.
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let mut c = Conv::new(next() as u32, 9000);
        c.handshake();
        let base = c.next[0];
        for _ in 0..200 {
            let off = (next() % 100_000) as u32;
            let len = (next() % 3000) as u32 + 1;
            c.next[0] = base.wrapping_add(off);
            c.seg(0, K, len);
        }
        let s = c.one();
        assert!(s.bytes_a_to_b <= 103_000, "{}", s.bytes_a_to_b);
    }
}
