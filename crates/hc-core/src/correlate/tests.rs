//! The correlator on synthetic calls and segments: no privileges needed.

use super::*;
use crate::model::kernel::KernelEvent;
use crate::model::{TcpFlags, TcpState};
use crate::testkit::{addr, Script, A, C, F, MS, P, R, S};

fn nth_seg(t: &Timeline, n: usize) -> (usize, &SegEvent) {
    t.segments()
        .nth(n)
        .unwrap_or_else(|| panic!("no segment {n}"))
}

fn call_of(t: &Timeline, kind: CallKind, side: Side, nth: usize) -> (usize, &CallEvent) {
    t.calls()
        .filter(|(_, c)| c.call.kind == kind && c.call.side == side)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {kind:?} call"))
}

fn cause(s: &SegEvent, part: Part) -> &Cause {
    s.causes
        .iter()
        .find(|c| c.part == part)
        .unwrap_or_else(|| panic!("no {part:?} cause in {:?}", s.causes))
}

#[test]
fn handshake_syn_to_connect_synack_and_ack_to_kernel() {
    let t = Script::new().handshake().run();
    let (connect, ce) = call_of(&t, CallKind::Connect, Side::Client, 0);
    let (syn_i, syn) = nth_seg(&t, 0);
    assert_eq!(cause(syn, Part::Syn).event, Some(connect));
    assert_eq!(ce.caused, vec![syn_i]);
    let (_, sa) = nth_seg(&t, 1);
    let c = cause(sa, Part::SynAck);
    assert_eq!((c.event, c.answers), (None, Some(syn_i)));
    let (_, ack) = nth_seg(&t, 2);
    assert!(
        cause(ack, Part::Ack).why.contains("ACK of server SYN-ACK"),
        "{:?}",
        ack.causes
    );
    assert_eq!((syn.rel_seq, ack.rel_seq, ack.rel_ack), (0, 1, Some(1)));
    let (_, listen) = call_of(&t, CallKind::Listen, Side::Server, 0);
    assert!(
        listen.caused.is_empty(),
        "listen() puts nothing on the wire"
    );
}

#[test]
fn fin_attributed_to_the_shutdown_and_its_ack_to_the_kernel() {
    let t = Script::new()
        .handshake()
        .call_at(3, Side::Client, CallKind::Write, "100", 100)
        .seg_at(3, Side::Client, P | A, 100)
        .seg_at(3, Side::Server, A, 0)
        .call_at(4, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
        .seg_at(4, Side::Client, F | A, 0)
        .seg_at(4, Side::Server, A, 0)
        .run();
    let (write, _) = call_of(&t, CallKind::Write, Side::Client, 0);
    let (shut, sh) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
    let (data_i, data) = nth_seg(&t, 3);
    assert_eq!(cause(data, Part::Data).event, Some(write));
    assert!(cause(nth_seg(&t, 4).1, Part::Ack)
        .why
        .contains("client data"));
    let (fin_i, fin) = nth_seg(&t, 5);
    assert_eq!(cause(fin, Part::Fin).event, Some(shut));
    assert_eq!(sh.caused, vec![fin_i]);
    let (_, fin_ack) = nth_seg(&t, 6);
    let c = cause(fin_ack, Part::Ack);
    assert_eq!(c.answers, Some(fin_i));
    assert!(c.why.contains("client FIN"), "{}", c.why);
    assert_ne!(data_i, fin_i);
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
    assert_eq!(cause(nth_seg(&t, 3).1, Part::Fin).event, Some(wr));
}

#[test]
fn fin_piggybacked_on_data_has_two_causes() {
    // TCP_CORK: the write's bytes wait and leave with the FIN after shutdown().
    let t = Script::new()
        .handshake()
        .call_at(3, Side::Client, CallKind::Setsockopt, "TCP_CORK 1", 0)
        .call_at(4, Side::Client, CallKind::Write, "100", 100)
        .call_at(5, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
        .seg_at(5, Side::Client, F | P | A, 100)
        .run();
    let (write, w) = call_of(&t, CallKind::Write, Side::Client, 0);
    let (shut, _) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
    let (seg_i, s) = nth_seg(&t, 3);
    assert_eq!(
        cause(s, Part::Data).event,
        Some(write),
        "data still points at the write, though it left later"
    );
    assert!(cause(s, Part::Data).why.contains("after the call returned"));
    assert_eq!(cause(s, Part::Fin).event, Some(shut));
    assert_eq!(w.caused, vec![seg_i]);
}

#[test]
fn retransmitted_fin_has_the_same_cause_as_the_first() {
    let t = Script::new()
        .handshake()
        .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
        .seg_at(3, Side::Client, F | A, 0)
        .resend_at(210, 3)
        .seg_at(210, Side::Server, A, 0)
        .run();
    let (shut, sh) = call_of(&t, CallKind::Shutdown, Side::Client, 0);
    let (first, _) = nth_seg(&t, 3);
    let (again_i, again) = nth_seg(&t, 4);
    assert_eq!(again.retransmission_of, Some(first));
    let c = cause(again, Part::Fin);
    assert_eq!(c.event, Some(shut));
    assert!(
        c.why.starts_with(&format!("retransmission of #{first}")),
        "{}",
        c.why
    );
    assert_eq!(sh.caused, vec![first, again_i]);
    // The ACK acknowledges the FIN once, whichever copy arrived.
    assert!(cause(nth_seg(&t, 5).1, Part::Ack)
        .why
        .contains("client FIN"));
}

#[test]
fn rst_after_close_with_unread_data_is_the_close() {
    let t = Script::new()
        .handshake()
        .call_at(3, Side::Server, CallKind::Write, "100", 100)
        .seg_at(3, Side::Server, P | A, 100)
        .seg_at(3, Side::Client, A, 0)
        .call_at(4, Side::Client, CallKind::Close, "", 0)
        .seg_at(4, Side::Client, R | A, 0)
        .run();
    let (close, ce) = call_of(&t, CallKind::Close, Side::Client, 0);
    let (rst_i, rst) = nth_seg(&t, 5);
    assert_eq!(cause(rst, Part::Rst).event, Some(close));
    assert_eq!(ce.caused, vec![rst_i]);
}

#[test]
fn rst_after_fin_answers_the_late_data() {
    // close-early: the client closed (FIN), then the server's data arrives.
    let t = Script::new()
        .handshake()
        .call_at(3, Side::Client, CallKind::Close, "", 0)
        .seg_at(3, Side::Client, F | A, 0)
        .seg_at(3, Side::Server, A, 0)
        .call_at(4, Side::Server, CallKind::Write, "200", 200)
        .seg_at(4, Side::Server, P | A, 200)
        .seg_at(4, Side::Client, R, 0)
        .run();
    let (close, ce) = call_of(&t, CallKind::Close, Side::Client, 0);
    let (data_i, _) = nth_seg(&t, 5);
    let (_, rst) = nth_seg(&t, 6);
    let c = cause(rst, Part::Rst);
    assert_eq!((c.event, c.answers), (None, Some(data_i)));
    assert!(
        c.why.contains("answering server data") && c.why.contains(&format!("close() #{close}")),
        "{}",
        c.why
    );
    assert_eq!(ce.caused.len(), 1, "the close caused the FIN only");
}

#[test]
fn rst_answering_a_syn_when_nobody_listens() {
    let t = Script::new()
        .call_at(1, Side::Client, CallKind::Connect, S, -1)
        .seg_at(1, Side::Client, TcpFlags::SYN, 0)
        .seg_at(1, Side::Server, R | A, 0)
        .run();
    let (syn_i, _) = nth_seg(&t, 0);
    let (_, rst) = nth_seg(&t, 1);
    let c = cause(rst, Part::Rst);
    assert_eq!(c.answers, Some(syn_i));
    assert!(
        c.why.contains("client SYN") && c.why.contains("had made no call"),
        "{}",
        c.why
    );
}

#[test]
fn a_segment_before_any_call_says_so() {
    let t = Script::new()
        .seg_at(0, Side::Client, TcpFlags::SYN, 0)
        .run();
    let (_, s) = nth_seg(&t, 0);
    let c = cause(s, Part::Syn);
    assert_eq!(c.event, None);
    assert!(c.why.contains("no connect()"));
}

#[test]
fn ambiguous_timing_data_goes_to_the_write_that_holds_the_bytes() {
    // Two writes before any segment, and segments that split them differently
    // from the calls: offsets decide, not times.
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
    let events: Vec<_> = first.causes.iter().map(|c| c.event).collect();
    assert_eq!(events, vec![Some(w1), Some(w2)]);
    assert_eq!(
        second.causes.iter().map(|c| c.event).collect::<Vec<_>>(),
        vec![Some(w2)]
    );
    assert_eq!(
        (c1.caused.clone(), c2.caused.clone()),
        (vec![s1], vec![s1, s2])
    );
}

#[test]
fn fin_ack_carried_by_the_peers_next_data_is_noted() {
    let t = Script::new()
        .handshake()
        .call_at(3, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
        .seg_at(3, Side::Client, F | A, 0)
        .call_at(4, Side::Server, CallKind::Write, "200", 200)
        .seg_at(4, Side::Server, P | A, 200)
        .run();
    let (_, data) = nth_seg(&t, 4);
    assert!(
        data.also_acks
            .as_deref()
            .is_some_and(|a| a.contains("client FIN")),
        "{:?}",
        data.also_acks
    );
}

#[test]
fn without_calls_every_segment_still_has_a_cause() {
    let mut s = Script::new();
    s.seg_at(0, Side::Client, TcpFlags::SYN, 0)
        .seg_at(0, Side::Server, TcpFlags::SYN | A, 0)
        .seg_at(0, Side::Client, A, 0)
        .seg_at(1, Side::Client, P | A, 10)
        .seg_at(1, Side::Client, F | A, 0)
        .seg_at(1, Side::Server, R, 0);
    let t = correlate(vec![], s.parts().1, None);
    assert_eq!(t.conns.len(), 1);
    assert_eq!(t.conns[0].client, addr(C), "the SYN's sender is the client");
    for (_, seg) in t.segments() {
        assert!(!seg.causes.is_empty(), "segment {seg:?} has a cause");
    }
}

fn state_ev(
    t_ms: i64,
    local: &str,
    remote: &str,
    old: TcpState,
    new: TcpState,
    by_us: bool,
) -> KernelEvent {
    KernelEvent::State {
        ts: t_ms * MS + 60_000,
        local: addr(local),
        remote: addr(remote),
        old,
        new,
        by_us,
    }
}

#[test]
fn kernel_events_of_other_namespaces_are_left_out() {
    let s = Script::new().handshake().parts();
    let kernel = vec![
        // Ours: the connection in the capture, and our listen() in our thread.
        state_ev(1, S, C, TcpState::SYN_RECV, TcpState::ESTABLISHED, false),
        state_ev(0, S, "0.0.0.0:0", TcpState::CLOSE, TcpState::LISTEN, true),
        // Someone else's: same server address, another client port; and a
        // listener that changed during our call but in another process.
        state_ev(
            1,
            S,
            "127.0.0.1:41000",
            TcpState::SYN_RECV,
            TcpState::ESTABLISHED,
            false,
        ),
        state_ev(2, S, "0.0.0.0:0", TcpState::LISTEN, TcpState::CLOSE, false),
    ];
    let extra = Extra {
        kernel,
        ..Default::default()
    };
    let t = correlate_with(s.0, s.1, extra, Some(addr(S)));
    let states: Vec<_> = t
        .events
        .iter()
        .filter_map(|e| match e {
            Event::State(st) => Some((st.side, st.remote, st.new)),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (Side::Server, addr("0.0.0.0:0"), TcpState::LISTEN),
            (Side::Server, addr(C), TcpState::ESTABLISHED)
        ]
    );
}

#[test]
fn rst_gets_the_kernel_reason_even_when_the_tracepoint_fires_after_the_packet() {
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
