//! Expectations: what a teacher says a run must show, checked against what it showed.
//!
//! In a scenario file, an indented `expect` line under a step checks that
//! step; an `expect` line at the left margin checks the whole run:
//!
//! ```text
//! client shutdown SHUT_WR
//!   expect wire FIN            # the segments it caused include a FIN
//!   expect ret 0
//!   expect state FIN_WAIT1
//! server read-all
//!   expect ret 0               # the last read returned end of file
//! client close
//!   expect wire nothing
//! expect no RST                # nobody sent an RST in the whole run
//! expect client ends TIME_WAIT
//! ```
//!
//! Each expectation is checked only against observations (the calls'
//! results, the segments they caused, the states read), never against what
//! hc-trace believes the kernel should do.

use crate::correlate::Event;
use crate::model::Side;
use crate::report::Report;
use crate::scenario::Scenario;
use serde::Serialize;

/// Kinds of segment a step can be expected to cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Syn,
    Data,
    Fin,
    Rst,
}

impl Wire {
    fn name(self) -> &'static str {
        match self {
            Wire::Syn => "SYN",
            Wire::Data => "data",
            Wire::Fin => "FIN",
            Wire::Rst => "RST",
        }
    }
    pub fn parse(w: &str) -> Option<Wire> {
        match w.to_ascii_uppercase().as_str() {
            "SYN" => Some(Wire::Syn),
            "DATA" => Some(Wire::Data),
            "FIN" => Some(Wire::Fin),
            "RST" => Some(Wire::Rst),
            _ => None,
        }
    }
}

/// What an expectation checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The step caused exactly these kinds (empty: nothing on the wire).
    WireExactly(Vec<Wire>),
    /// The step caused at least one segment of this kind.
    WireHas(Wire),
    /// The step caused no segment of this kind.
    WireNot(Wire),
    Ret(i64),
    Errno(String),
    State(String),
    /// Whole run: `side` sent (or did not send, `present == false`) this kind.
    RunSent {
        side: Option<Side>,
        kind: Wire,
        present: bool,
    },
    /// Whole run: the side's connection ended in this state.
    Ends {
        side: Side,
        state: String,
    },
}

/// One `expect` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub line: usize,
    /// As written, for messages.
    pub text: String,
    pub check: Check,
}

/// The parse of what follows `expect`, or an error message and a hint.
pub fn parse(words: &[&str], step_level: bool) -> Result<Check, (String, String)> {
    let bad = |m: &str| {
        Err((
            m.to_string(),
            if step_level {
                "under a step: `expect wire FIN|RST|data|nothing`, `expect wire no RST`, `expect ret N`, `expect errno NAME`, `expect state NAME`".to_string()
            } else {
                "for the whole run: `expect no RST`, `expect RST from server`, `expect client ends TIME_WAIT`".to_string()
            },
        ))
    };
    if step_level {
        return match words {
            ["wire", "nothing"] => Ok(Check::WireExactly(Vec::new())),
            ["wire", "no", k] => Wire::parse(k)
                .map(Check::WireNot)
                .map_or(bad(&format!("unknown segment kind `{k}`")), Ok),
            ["wire", k] if k.contains('+') => {
                let kinds: Option<Vec<Wire>> = k.split('+').map(Wire::parse).collect();
                kinds
                    .map(Check::WireExactly)
                    .map_or(bad(&format!("unknown segment kinds in `{k}`")), Ok)
            }
            ["wire", k] => Wire::parse(k)
                .map(Check::WireHas)
                .map_or(bad(&format!("unknown segment kind `{k}`")), Ok),
            ["ret", n] => n
                .parse()
                .map(Check::Ret)
                .map_or(bad(&format!("`{n}` is not a number")), Ok),
            ["errno", e] if e.starts_with('E') => Ok(Check::Errno(e.to_string())),
            ["state", s] => Ok(Check::State(s.to_ascii_uppercase())),
            _ => bad("unknown expectation"),
        };
    }
    let side = |w: &str| match w {
        "client" => Some(Side::Client),
        "server" => Some(Side::Server),
        _ => None,
    };
    match words {
        ["no", k] => Wire::parse(k).map_or(bad(&format!("unknown segment kind `{k}`")), |kind| {
            Ok(Check::RunSent {
                side: None,
                kind,
                present: false,
            })
        }),
        ["no", k, "from", s] => match (Wire::parse(k), side(s)) {
            (Some(kind), Some(sd)) => Ok(Check::RunSent {
                side: Some(sd),
                kind,
                present: false,
            }),
            _ => bad("expected `expect no KIND from client|server`"),
        },
        [k, "from", s] => match (Wire::parse(k), side(s)) {
            (Some(kind), Some(sd)) => Ok(Check::RunSent {
                side: Some(sd),
                kind,
                present: true,
            }),
            _ => bad("expected `expect KIND from client|server`"),
        },
        [s, "ends", st] => match side(s) {
            Some(sd) => Ok(Check::Ends {
                side: sd,
                state: st.to_ascii_uppercase(),
            }),
            None => bad("expected `expect client|server ends STATE`"),
        },
        _ => bad("unknown expectation"),
    }
}

/// An expectation with its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub line: usize,
    pub expect: String,
    pub met: bool,
    /// What was observed, in words.
    pub seen: String,
    /// The event (call) it was checked against, when there is one.
    pub event: Option<usize>,
}

/// The kinds among segments, as a sorted list, for comparisons and messages.
pub fn kinds_of(r: &Report, segs: &[usize]) -> Vec<Wire> {
    let mut out = Vec::new();
    for &i in segs {
        if let Some(Event::Segment(s)) = r.timeline.events.get(i) {
            let f = s.seg.flags;
            for (has, k) in [
                (f.syn(), Wire::Syn),
                (s.seg.len > 0, Wire::Data),
                (f.fin(), Wire::Fin),
                (f.rst(), Wire::Rst),
            ] {
                if has && !out.contains(&k) {
                    out.push(k);
                }
            }
        }
    }
    out.sort_by_key(|k| *k as u8);
    out
}

/// What these calls put on the wire: only the parts of their segments whose
/// cause names one of them (a write's data+FIN segment is data for the write,
/// FIN for the shutdown), so an expectation under a step grades that step.
pub fn kinds_caused_by(r: &Report, calls: &[usize]) -> Vec<Wire> {
    use crate::correlate::Part;
    let mut out = Vec::new();
    for (_, s) in r.timeline.segments() {
        for c in &s.causes {
            if !c.event().is_some_and(|e| calls.contains(&e)) {
                continue;
            }
            let k = match c.part {
                Part::Syn | Part::SynAck => Wire::Syn,
                Part::Data => Wire::Data,
                Part::Fin => Wire::Fin,
                Part::Rst => Wire::Rst,
                Part::Ack => continue,
            };
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out.sort_by_key(|k| *k as u8);
    out
}

fn kinds_text(k: &[Wire]) -> String {
    if k.is_empty() {
        "nothing on the wire".into()
    } else {
        k.iter().map(|w| w.name()).collect::<Vec<_>>().join("+")
    }
}

/// Checks every expectation of `scenario` against the finished run.
pub fn evaluate(scenario: &Scenario, r: &Report) -> Vec<Verdict> {
    let mut out = Vec::new();
    for step in &scenario.steps {
        if step.expects.is_empty() {
            continue;
        }
        let calls: Vec<(usize, &crate::correlate::CallEvent)> = r
            .timeline
            .calls()
            .filter(|(_, c)| c.call.line == Some(step.line))
            .collect();
        let ids: Vec<usize> = calls.iter().map(|(i, _)| *i).collect();
        let last = calls.last();
        for e in &step.expects {
            let (met, seen) = match (&e.check, last) {
                (_, None) => (false, "the step made no call".to_string()),
                (Check::WireExactly(want), Some(_)) => {
                    let got = kinds_caused_by(r, &ids);
                    let mut want = want.clone();
                    want.sort_by_key(|k| *k as u8);
                    (got == want, kinds_text(&got))
                }
                (Check::WireHas(k), Some(_)) => {
                    let got = kinds_caused_by(r, &ids);
                    (got.contains(k), kinds_text(&got))
                }
                (Check::WireNot(k), Some(_)) => {
                    let got = kinds_caused_by(r, &ids);
                    (!got.contains(k), kinds_text(&got))
                }
                (Check::Ret(n), Some((_, c))) => (
                    c.call.ret == Some(*n) && c.call.errno.is_none(),
                    ret_text(&c.call),
                ),
                (Check::Errno(name), Some((_, c))) => {
                    (c.call.errno.as_deref() == Some(name), ret_text(&c.call))
                }
                (Check::State(st), Some((_, c))) => {
                    let token = c.call.state_after.token().unwrap_or_default();
                    let table = c
                        .call
                        .state_after
                        .state()
                        .map(|s| s.name())
                        .unwrap_or_default();
                    (token == *st || table == *st, c.call.state_after.label())
                }
                (Check::RunSent { .. } | Check::Ends { .. }, Some(_)) => {
                    (false, "a run-level expectation under a step".into())
                }
            };
            out.push(Verdict {
                line: e.line,
                expect: e.text.clone(),
                met,
                seen,
                event: last.map(|(i, _)| *i),
            });
        }
    }
    for e in &scenario.expects {
        let (met, seen) = match &e.check {
            Check::RunSent {
                side,
                kind,
                present,
            } => {
                let segs: Vec<usize> = r
                    .timeline
                    .segments()
                    .filter(|(_, s)| side.is_none_or(|sd| s.from == sd))
                    .map(|(i, _)| i)
                    .collect();
                let hits: Vec<usize> = segs
                    .into_iter()
                    .filter(|&i| kinds_of(r, &[i]).contains(kind))
                    .collect();
                let seen = if hits.is_empty() {
                    format!("no {}", kind.name())
                } else {
                    format!(
                        "{} {} ({})",
                        hits.len(),
                        kind.name(),
                        hits.iter()
                            .map(|i| format!("#{i}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                (hits.is_empty() != *present, seen)
            }
            Check::Ends { side, state } => {
                let end = r
                    .final_states
                    .iter()
                    .find(|f| f.side == *side && f.peer.is_some());
                match end {
                    Some(f) => (
                        f.state.token().as_deref() == Some(state.as_str()),
                        f.state.label(),
                    ),
                    None => (false, format!("the {side} had no connection")),
                }
            }
            _ => (false, "a step expectation at the top level".into()),
        };
        out.push(Verdict {
            line: e.line,
            expect: e.text.clone(),
            met,
            seen,
            event: None,
        });
    }
    out
}

fn ret_text(c: &crate::model::Call) -> String {
    match (&c.errno, c.ret) {
        (Some(e), _) => format!("{} = -1 {e}", c.short_name()),
        (None, Some(v)) => format!("{} = {v}", c.short_name()),
        (None, None) => "no return value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_and_run_forms_parse() {
        assert_eq!(parse(&["wire", "FIN"], true), Ok(Check::WireHas(Wire::Fin)));
        assert_eq!(
            parse(&["wire", "nothing"], true),
            Ok(Check::WireExactly(vec![]))
        );
        assert_eq!(
            parse(&["wire", "data+FIN"], true),
            Ok(Check::WireExactly(vec![Wire::Data, Wire::Fin]))
        );
        assert_eq!(
            parse(&["wire", "no", "RST"], true),
            Ok(Check::WireNot(Wire::Rst))
        );
        assert_eq!(
            parse(&["errno", "ECONNRESET"], true),
            Ok(Check::Errno("ECONNRESET".into()))
        );
        assert_eq!(
            parse(&["RST", "from", "server"], false),
            Ok(Check::RunSent {
                side: Some(Side::Server),
                kind: Wire::Rst,
                present: true
            })
        );
        assert_eq!(
            parse(&["client", "ends", "time_wait"], false),
            Ok(Check::Ends {
                side: Side::Client,
                state: "TIME_WAIT".into()
            })
        );
        assert!(parse(&["wire", "FNI"], true).is_err());
        assert!(parse(&["ret", "zero"], true).is_err());
        assert!(
            parse(&["wire", "FIN"], false).is_err(),
            "step forms are not run forms"
        );
    }
}

#[cfg(test)]
mod grading {
    use super::*;
    use crate::model::{CallKind, Side};
    use crate::testkit::{Script, A, F, P};

    #[test]
    fn a_data_fin_segment_is_data_for_the_write_and_fin_for_the_shutdown() {
        let r = Script::new()
            .handshake()
            .call_at(3, Side::Client, CallKind::Write, "100", 100)
            .call_at(5, Side::Client, CallKind::Shutdown, "SHUT_WR", 0)
            .seg_at(5, Side::Client, F | P | A, 100)
            .report("cork-fin");
        let call = |k: CallKind| {
            r.timeline
                .calls()
                .find(|(_, c)| c.call.kind == k)
                .map(|(i, _)| i)
                .expect("the call")
        };
        let (w, sh) = (call(CallKind::Write), call(CallKind::Shutdown));
        assert_eq!(kinds_caused_by(&r, &[w]), vec![Wire::Data]);
        assert_eq!(kinds_caused_by(&r, &[sh]), vec![Wire::Fin]);
        // The old way counted every flag of the segments a call caused: the
        // write would have "sent" a FIN too.
        let Some(Event::Call(wc)) = r.timeline.events.get(w) else {
            panic!("#{w} is the write")
        };
        assert_eq!(kinds_of(&r, &wc.caused), vec![Wire::Data, Wire::Fin]);
    }
}
