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

/// The TCP state names an `expect state` / `expect SIDE ends` line may use:
/// the kernel's own (as the timeline and `ss` write them), and `CLOSED`, which
/// means that no socket is left (the kernel's `CLOSE` is a socket that still
/// exists, for instance after an RST). Matched exactly, ignoring case.
pub const STATES: &[&str] = &[
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
    "CLOSED",
];

/// What is wrong with an `expect` line: which of its words (an index into
/// the words after `expect`; `None`: the end of the line), what and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectError {
    pub word: Option<usize>,
    pub message: String,
    pub hint: String,
}

/// The parse of what follows `expect`, or an error message and a hint.
pub fn parse(words: &[&str], step_level: bool) -> Result<Check, (String, String)> {
    parse_words(words, step_level).map_err(|e| (e.message, e.hint))
}

/// A state name as an expectation may write it, or an error naming the closest.
fn state_name(words: &[&str], i: usize) -> Result<String, ExpectError> {
    let w = words[i];
    let up = w.to_ascii_uppercase();
    if STATES.contains(&up.as_str()) {
        return Ok(up);
    }
    let guess = crate::scenario::closest(&up.replace('-', "_"), STATES.iter().copied());
    Err(ExpectError {
        word: Some(i),
        message: format!("unknown TCP state `{w}`"),
        hint: match guess {
            Some(g) => format!("did you mean `{g}`?"),
            None => format!("one of: {} (CLOSED: no socket left)", STATES.join(", ")),
        },
    })
}

fn kind(words: &[&str], i: usize) -> Result<Wire, ExpectError> {
    let w = words[i];
    Wire::parse(w).ok_or_else(|| ExpectError {
        word: Some(i),
        message: format!("unknown segment kind `{w}`"),
        hint: match crate::scenario::closest(&w.to_ascii_uppercase(), ["SYN", "DATA", "FIN", "RST"])
        {
            Some("DATA") => "did you mean `data`?".into(),
            Some(g) => format!("did you mean `{g}`?"),
            None => "a kind is SYN, data, FIN or RST".into(),
        },
    })
}

/// Like [`parse`], saying which word is wrong.
pub fn parse_words(words: &[&str], step_level: bool) -> Result<Check, ExpectError> {
    const STEP_FORMS: &str = "under a step: `expect wire FIN|RST|data|nothing`, `expect wire no RST`, `expect ret N`, `expect errno NAME`, `expect state NAME`";
    const RUN_FORMS: &str = "for the whole run: `expect no RST`, `expect RST from server`, `expect client ends TIME_WAIT`";
    let bad = |word: Option<usize>, m: &str| {
        Err(ExpectError {
            word,
            message: m.to_string(),
            hint: if step_level { STEP_FORMS } else { RUN_FORMS }.to_string(),
        })
    };
    if words.is_empty() {
        return bad(None, "`expect` needs what to check");
    }
    if step_level {
        return match words {
            ["wire", "nothing"] => Ok(Check::WireExactly(Vec::new())),
            ["wire", "no", _] => kind(words, 2).map(Check::WireNot),
            ["wire", k] if k.contains('+') => {
                let mut out = Vec::new();
                for part in k.split('+') {
                    match Wire::parse(part) {
                        Some(w) => out.push(w),
                        None => {
                            return Err(ExpectError {
                                word: Some(1),
                                message: format!("unknown segment kind `{part}` in `{k}`"),
                                hint: "kinds are SYN, data, FIN and RST, joined by `+`: `data+FIN`"
                                    .into(),
                            })
                        }
                    }
                }
                Ok(Check::WireExactly(out))
            }
            ["wire", _] => kind(words, 1).map(Check::WireHas),
            ["ret", n] => n.parse().map(Check::Ret).map_err(|_| ExpectError {
                word: Some(1),
                message: format!("`{n}` is not a number"),
                hint: "`expect ret N`: the value the call returned, e.g. `expect ret 0`; for a failed call, `expect errno NAME`".into(),
            }),
            ["errno", e] => match crate::model::errno::known(e) {
                Some(name) => Ok(Check::Errno(name.to_string())),
                None => Err(ExpectError {
                    word: Some(1),
                    message: format!("unknown errno `{e}`"),
                    hint: match crate::scenario::closest(
                        &e.to_ascii_uppercase(),
                        crate::model::errno::NAMES.iter().copied(),
                    ) {
                        Some(g) => format!("did you mean `{g}`?"),
                        None => format!("one of: {}", crate::model::errno::NAMES.join(", ")),
                    },
                }),
            },
            ["state", _] => state_name(words, 1).map(Check::State),
            [k @ ("wire" | "ret" | "errno" | "state")] => bad(None, &format!("`expect {k}` needs a value")),
            [k, ..] if ["wire", "ret", "errno", "state"].contains(k) => {
                bad(Some(2), &format!("unexpected `{}` after `expect {k}`", words[2]))
            }
            [k, ..] => match crate::scenario::closest(k, ["wire", "ret", "errno", "state"]) {
                Some(g) => Err(ExpectError {
                    word: Some(0),
                    message: format!("unknown expectation `{k}`"),
                    hint: format!("did you mean `{g}`?"),
                }),
                None if k == &"no" || k.ends_with("ends") || words.contains(&"from") || words.contains(&"ends") => bad(
                    Some(0),
                    "a whole-run expectation, indented under a step",
                )
                .map_err(|e| ExpectError {
                    hint: format!("start it at the left margin; {RUN_FORMS}"),
                    ..e
                }),
                None => bad(Some(0), &format!("unknown expectation `{k}`")),
            },
            [] => bad(None, "`expect` needs what to check"),
        };
    }
    let side = |w: &str| match w {
        "client" => Some(Side::Client),
        "server" => Some(Side::Server),
        _ => None,
    };
    let side_at = |i: usize| {
        side(words[i]).ok_or_else(|| ExpectError {
            word: Some(i),
            message: format!("expected `client` or `server`, found `{}`", words[i]),
            hint: match crate::scenario::closest(words[i], ["client", "server"]) {
                Some(g) => format!("did you mean `{g}`?"),
                None => RUN_FORMS.into(),
            },
        })
    };
    match words {
        ["no", _] => kind(words, 1).map(|kind| Check::RunSent {
            side: None,
            kind,
            present: false,
        }),
        ["no", _, "from", _] => Ok(Check::RunSent {
            kind: kind(words, 1)?,
            side: Some(side_at(3)?),
            present: false,
        }),
        [_, "from", _] => Ok(Check::RunSent {
            kind: kind(words, 0)?,
            side: Some(side_at(2)?),
            present: true,
        }),
        [_, "ends", _] => Ok(Check::Ends {
            side: side_at(0)?,
            state: state_name(words, 2)?,
        }),
        [k, ..] if ["wire", "ret", "errno", "state"].contains(k) => bad(
            Some(0),
            &format!("`expect {k}` checks one step, but this line is not indented under one"),
        )
        .map_err(|e| ExpectError {
            hint: format!("indent it under the step it checks; {STEP_FORMS}"),
            ..e
        }),
        [_, w @ ("ends" | "from")] => bad(None, &format!("`{w}` needs what comes after it")),
        [_, w, ..] if crate::scenario::closest(w, ["ends", "from"]).is_some() => {
            let g = crate::scenario::closest(w, ["ends", "from"]).unwrap_or("ends");
            Err(ExpectError {
                word: Some(1),
                message: format!("unknown expectation `{w}`"),
                hint: format!("did you mean `{g}`?"),
            })
        }
        _ => bad(
            Some(0),
            &format!("unknown expectation `{}`", words.join(" ")),
        ),
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

    #[test]
    fn names_are_checked_against_the_known_lists() {
        let err = |w: &[&str], step| parse_words(w, step).unwrap_err();
        let e = err(&["state", "FIN_WAIT_1"], true);
        assert_eq!(
            (e.word, e.hint.as_str()),
            (Some(1), "did you mean `FIN_WAIT1`?")
        );
        let e = err(&["errno", "ECONNRESTE"], true);
        assert_eq!(
            (e.word, e.hint.as_str()),
            (Some(1), "did you mean `ECONNRESET`?")
        );
        let e = err(&["client", "ends", "TIME-WAIT"], false);
        assert_eq!(
            (e.word, e.hint.as_str()),
            (Some(2), "did you mean `TIME_WAIT`?")
        );
        assert!(err(&["client", "ends", "BANANA"], false)
            .hint
            .contains("CLOSED: no socket left"));
        let e = err(&["ret", "abc"], true);
        assert_eq!(e.word, Some(1), "the column of the value, not of `ret`");
        assert_eq!(err(&["stat", "CLOSED"], true).hint, "did you mean `state`?");
        assert_eq!(err(&["wire", "FNI"], true).hint, "did you mean `FIN`?");
        // Case does not matter; spelling does.
        assert_eq!(
            parse(&["state", "fin_wait1"], true),
            Ok(Check::State("FIN_WAIT1".into()))
        );
        assert_eq!(
            parse(&["errno", "econnreset"], true),
            Ok(Check::Errno("ECONNRESET".into()))
        );
        assert!(parse(&["errno", "EWHATEVER"], true).is_err());
    }

    #[test]
    fn closed_and_close_are_different_states() {
        use crate::model::{CallKind, Side, StateObs, TcpState};
        use crate::testkit::Script;
        let scn = crate::scenario::parse(
            "name: x\nserver listen\nclient connect\n  expect state CLOSED\n  expect state CLOSE\n",
            "f",
        )
        .expect("valid");
        for (obs, closed, close) in [
            (StateObs::Gone, true, false),
            (
                StateObs::TcpInfo {
                    state: TcpState::CLOSE,
                },
                false,
                true,
            ),
        ] {
            let mut r = Script::new()
                .call_full(Side::Client, CallKind::Connect, "", Ok(0), obs)
                .report("x");
            for e in &mut r.timeline.events {
                if let Event::Call(c) = e {
                    c.call.line = Some(3);
                }
            }
            let v = evaluate(&scn, &r);
            assert_eq!((v[0].met, v[1].met), (closed, close), "{v:?}");
        }
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
