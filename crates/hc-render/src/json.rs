//! `--format json`: one document, schema version 1 (documented in docs/json.md).

use super::{causes_text, primary_cause};
use hc_core::correlate::{Event, Timeline};
use hc_core::model::{Call, StateObs};
use hc_core::report::{KernelSource, Report};
use serde_json::{json, Value};

/// The JSON document of a run.
pub fn document(r: &Report) -> Value {
    let t0 = r.timeline.t0;
    let events: Vec<Value> = r
        .timeline
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| event(i, e, &r.timeline))
        .collect();
    let counters = r.capture.counters;
    json!({
        "schema": 1,
        "scenario": r.scenario,
        "teaches": r.teaches,
        "origin": r.origin,
        "client": {"addr": r.client.map(|a| a.to_string())},
        "server": {"addr": r.server.map(|a| a.to_string())},
        "namespace": r.namespace,
        "pacing": r.pacing,
        "t0_ns": t0,
        "events": events,
        "key_call": r.key_call(),
        "capture": {
            "iface": r.capture.iface,
            "filter": r.capture.filter,
            "snaplen": r.capture.snaplen,
            "packets": r.capture.packets,
            "unparsed": r.capture.unparsed,
            "dropped": r.capture.dropped(),
            "libpcap": counters.map(|c| json!({
                "received": c.received, "dropped": c.dropped, "if_dropped": c.if_dropped
            })),
            "file": r.capture.file.as_ref().map(|p| p.display().to_string()),
            "file_error": r.capture.file_error,
        },
        "final_states": r.final_states.iter().map(|f| json!({
            "side": f.side,
            "addr": f.local.to_string(),
            "peer": f.peer.map(|p| p.to_string()),
            "state": f.state.token(),
            "state_text": f.state.label(),
            "state_source": state_source(&f.state),
        })).collect::<Vec<_>>(),
        "problems": r.problems.iter().map(|p| json!({
            "line": p.line, "step": p.step, "message": p.message
        })).collect::<Vec<_>>(),
        "streams": r.streams().iter().map(|s| json!({
            "side": s.side, "conn": s.conn, "written": s.written, "on_wire": s.on_wire,
            "reset": s.reset, "complete": !s.missing(),
        })).collect::<Vec<_>>(),
        "expectations": r.expectations,
        "predictions": r.predictions,
        "interrupted": r.interrupted,
        "kernel": match &r.kernel {
            KernelSource::Tracepoints { events } => json!({"available": true, "events": events}),
            KernelSource::Unavailable(why) => json!({"available": false, "why": why}),
            KernelSource::None => Value::Null,
        },
        "ok": r.ok(),
    })
}

fn state_source(s: &StateObs) -> &'static str {
    match s {
        StateObs::TcpInfo { .. } => "tcp_info",
        StateObs::ProcNet { .. } => "proc_net_tcp",
        StateObs::Handed { .. } => "tcp_info+proc_net_tcp",
        StateObs::Gone => "proc_net_tcp (no socket left)",
        StateObs::Unknown => "unknown",
    }
}

fn call_json(c: &Call) -> Value {
    json!({
        "side": c.side,
        "call": c.kind,
        "args": c.args,
        "text": c.text,
        "fd": c.fd,
        "ret": c.ret,
        "errno": c.errno,
        "note": c.note,
        "dur_ns": c.end - c.start,
        "state_after": c.state_after.token(),
        "state_table": match &c.state_after {
            StateObs::Handed { table, .. } => Some(table.name()),
            _ => None,
        },
        "state_text": c.state_after.label(),
        "state_source": state_source(&c.state_after),
        "line": c.line,
        "pid": c.pid,
    })
}

fn event(i: usize, e: &Event, tl: &Timeline) -> Value {
    let t0 = tl.t0;
    match e {
        Event::Call(ce) => {
            let mut v = call_json(&ce.call);
            if let Value::Object(m) = &mut v {
                m.insert("i".into(), json!(i));
                m.insert("t_ns".into(), json!(ce.call.start - t0));
                m.insert("kind".into(), json!("call"));
                m.insert("caused".into(), json!(ce.caused));
                m.insert("conn".into(), json!(ce.conn));
            }
            v
        }
        Event::Segment(s) => {
            let primary = primary_cause(s);
            json!({
                "i": i,
                "t_ns": s.seg.ts - t0,
                "kind": "segment",
                "from": s.from,
                "conn": s.conn,
                "frame": s.seg.frame,
                "flags": s.seg.flags,
                "seq": s.rel_seq,
                "ack": s.rel_ack,
                "len": s.seg.len,
                "win": s.seg.win,
                "win_bytes": s.win_bytes,
                "options": s.seg.options.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
                "cause": {
                    "event": primary.and_then(|c| c.event()),
                    "why": causes_text(tl, s),
                },
                "causes": s.causes.iter().map(|c| json!({
                    "part": c.part,
                    "event": c.event(),
                    "answers": c.answers(),
                    "why": crate::words::why(tl, s, c),
                })).collect::<Vec<_>>(),
                "retransmission_of": s.retransmission_of,
                "kernel": s.kernel,
                "tampered": s.tampered.as_ref().map(|t| crate::words::tamper_text(s, t, t0)),
            })
        }
        Event::Note(n) => json!({
            "i": i,
            "t_ns": n.ts - t0,
            "kind": "note",
            "text": n.text,
            "line": n.line,
        }),
        Event::State(st) => json!({
            "i": i,
            "t_ns": st.ts - t0,
            "kind": "state",
            "side": st.side,
            "conn": st.conn,
            "local": st.local.to_string(),
            "remote": st.remote.to_string(),
            "old": st.old.name(),
            "new": st.new.name(),
            "continues_as": st.continues_as.map(|t| t.name()),
            "source": "tracepoint sock:inet_sock_set_state",
        }),
    }
}
