//! Predict, then observe: a student says what each call that matters will
//! do before the run, and the run scores each prediction against what it saw.
//!
//! The questions come from the scenario's steps: for shutdown, close and
//! write, what will it put on the wire; for read and read-all, what will
//! the (last) read return. Answers come from a terminal, one prompt each, or
//! from a file of `LINE ANSWER` lines so a teacher can collect and grade them.

use crate::report::Report;
use crate::scenario::expect::Wire;
use crate::scenario::{Action, Scenario};
use serde::Serialize;
use std::io::{BufRead, Write};

/// What a question asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asks {
    /// What the step will put on the wire.
    Wire,
    /// What the step's read will return.
    Read,
    /// What the last read of a `read-all` will return (or `data+eof`: data,
    /// then end of file).
    ReadAll,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub line: usize,
    pub step: String,
    pub asks: Asks,
}

impl Question {
    pub fn prompt(&self) -> String {
        match self.asks {
            Asks::Wire => format!(
                "line {:>3}  {:<32} what will it put on the wire? [nothing, data, FIN, RST, or e.g. data+FIN]",
                self.line, self.step
            ),
            Asks::Read => format!(
                "line {:>3}  {:<32} what will the read return? [data, eof, block, or an errno such as ECONNRESET]",
                self.line, self.step
            ),
            Asks::ReadAll => format!(
                "line {:>3}  {:<32} what will its last read return? [data, eof, block, an errno such as ECONNRESET; or data+eof: data, then end of file]",
                self.line, self.step
            ),
        }
    }
}

/// The questions for a scenario, in step order.
pub fn questions(s: &Scenario) -> Vec<Question> {
    s.steps
        .iter()
        .filter_map(|st| {
            let asks = match st.action {
                Action::Shutdown(_) | Action::Close | Action::Write(_) => Asks::Wire,
                Action::Read => Asks::Read,
                Action::ReadAll => Asks::ReadAll,
                _ => return None,
            };
            let step = st.source.trim_end_matches("(key)").trim().to_string();
            Some(Question {
                line: st.line,
                step,
                asks,
            })
        })
        .collect()
}

/// A normalised answer, comparable with an observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Segment kinds, sorted; empty: nothing on the wire.
    Wire(Vec<Wire>),
    Data,
    Eof,
    /// Some data, then end of file (a `read-all`).
    DataThenEof,
    Block,
    /// An errno by name, or `error` for any errno but EAGAIN.
    Errno(String),
}

impl Answer {
    pub fn text(&self) -> String {
        match self {
            Answer::Wire(k) if k.is_empty() => "nothing".into(),
            Answer::Wire(k) => k
                .iter()
                .map(|w| format!("{w:?}").to_uppercase().replace("DATA", "data"))
                .collect::<Vec<_>>()
                .join("+"),
            Answer::Data => "data".into(),
            Answer::Eof => "eof".into(),
            Answer::DataThenEof => "data+eof".into(),
            Answer::Block => "block".into(),
            Answer::Errno(e) => e.clone(),
        }
    }
}

/// Reads an answer to `q`, or says what is wrong with it.
pub fn parse_answer(q: &Question, text: &str) -> Result<Answer, String> {
    let t = text.trim();
    match q.asks {
        Asks::Wire => {
            if t.eq_ignore_ascii_case("nothing") {
                return Ok(Answer::Wire(Vec::new()));
            }
            let kinds: Option<Vec<Wire>> = t.split('+').map(|k| Wire::parse(k.trim())).collect();
            let mut kinds = kinds.ok_or_else(|| {
                format!(
                    "`{t}`: answer nothing, data, FIN, RST, SYN, or a combination such as data+FIN"
                )
            })?;
            kinds.sort_by_key(|k| *k as u8);
            kinds.dedup();
            Ok(Answer::Wire(kinds))
        }
        Asks::Read | Asks::ReadAll => {
            let low = t.to_ascii_lowercase();
            match low.as_str() {
                "data" => Ok(Answer::Data),
                "eof" | "0" | "end of file" => Ok(Answer::Eof),
                "data+eof" | "data then eof" | "data, eof" if q.asks == Asks::ReadAll => {
                    Ok(Answer::DataThenEof)
                }
                "data+eof" | "data then eof" | "data, eof" => Err(format!(
                    "`{t}`: this is one read; answer what it returns: data, eof, block, or an errno"
                )),
                "block" | "would block" | "eagain" | "timeout" => Ok(Answer::Block),
                "error" => Ok(Answer::Errno("error".into())),
                e if e.starts_with('e') && e.len() > 2 => match crate::model::errno::known(t) {
                    Some(n) => Ok(Answer::Errno(n.to_string())),
                    None => Err(format!(
                        "`{t}` is not an errno hc-trace reports{}",
                        crate::scenario::closest(
                            &t.to_ascii_uppercase(),
                            crate::model::errno::NAMES.iter().copied()
                        )
                        .map_or(String::new(), |g| format!("; did you mean `{g}`?"))
                    )),
                },
                _ => Err(format!(
                    "`{t}`: answer data, eof, block, or an errno such as ECONNRESET{}",
                    if q.asks == Asks::ReadAll {
                        "; or data+eof"
                    } else {
                        ""
                    }
                )),
            }
        }
    }
}

/// Asks every question at the terminal (prompts on stderr, answers on stdin).
pub fn ask(
    qs: &[Question],
    input: &mut dyn BufRead,
    prompt_to: &mut dyn Write,
) -> Result<Vec<Answer>, String> {
    let _ = writeln!(
        prompt_to,
        "Predict, then observe: answer each question, then the run shows what happened.\n"
    );
    let mut out = Vec::new();
    for q in qs {
        loop {
            let _ = write!(prompt_to, "{}\n  > ", q.prompt());
            let _ = prompt_to.flush();
            let mut line = String::new();
            if input.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("no more input: the questions were not all answered".into());
            }
            match parse_answer(q, &line) {
                Ok(a) => {
                    out.push(a);
                    break;
                }
                Err(e) => {
                    let _ = writeln!(prompt_to, "  {e}");
                }
            }
        }
    }
    Ok(out)
}

/// Reads `LINE ANSWER` lines (`#` comments allowed). Every question must be
/// answered once; an answer to a line that has no question, or a second
/// answer to one, is a mistake too. Every mistake is reported at once, one
/// per line of the message.
pub fn read_answers(qs: &[Question], text: &str, file: &str) -> Result<Vec<Answer>, String> {
    let mut errors: Vec<String> = Vec::new();
    // (scenario line, answer file line, the answer)
    let mut given: Vec<(usize, usize, String)> = Vec::new();
    let lines: Vec<String> = qs.iter().map(|q| q.line.to_string()).collect();
    for (i, raw) in text.lines().enumerate() {
        let at = i + 1;
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let Some((n, a)) = l.split_once(char::is_whitespace) else {
            errors.push(format!("{file}:{at}: expected `LINE ANSWER`, e.g. `9 FIN`"));
            continue;
        };
        let Ok(n) = n.trim_start_matches("line").parse::<usize>() else {
            errors.push(format!("{file}:{at}: `{n}` is not a scenario line number"));
            continue;
        };
        let Some(q) = qs.iter().find(|q| q.line == n) else {
            errors.push(format!(
                "{file}:{at}: line {n} of the scenario has no question; the questions are on lines {}",
                lines.join(", ")
            ));
            continue;
        };
        if let Some((_, first, _)) = given.iter().find(|(m, _, _)| *m == n) {
            errors.push(format!(
                "{file}:{at}: a second answer for line {n} ({}); the first is on line {first}: keep one",
                q.step
            ));
            continue;
        }
        if let Err(e) = parse_answer(q, a) {
            errors.push(format!("{file}:{at}: {e}"));
        }
        given.push((n, at, a.trim().to_string()));
    }
    for q in qs {
        if !given.iter().any(|(n, _, _)| *n == q.line) {
            errors.push(format!(
                "{file}: no answer for line {} ({}); `--questions` prints every question",
                q.line, q.step
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    qs.iter()
        .map(|q| {
            let (_, at, a) = given
                .iter()
                .find(|(n, _, _)| *n == q.line)
                .ok_or_else(|| format!("{file}: no answer for line {}", q.line))?;
            parse_answer(q, a).map_err(|e| format!("{file}:{at}: {e}"))
        })
        .collect()
}

/// A prediction with what was observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scored {
    pub line: usize,
    pub step: String,
    pub answer: String,
    pub observed: String,
    pub right: bool,
    /// The call the observation comes from.
    pub event: Option<usize>,
}

/// Scores each answer against the run.
pub fn score(qs: &[Question], answers: &[Answer], r: &Report) -> Vec<Scored> {
    qs.iter()
        .zip(answers)
        .map(|(q, a)| {
            let calls: Vec<(usize, &crate::correlate::CallEvent)> = r
                .timeline
                .calls()
                .filter(|(_, c)| c.call.line == Some(q.line))
                .collect();
            let event = calls.last().map(|(i, _)| *i);
            let observed = match (q.asks, calls.last()) {
                (_, None) => None,
                (Asks::Wire, Some(_)) => {
                    let ids: Vec<usize> = calls.iter().map(|(i, _)| *i).collect();
                    Some(Answer::Wire(crate::scenario::expect::kinds_caused_by(
                        r, &ids,
                    )))
                }
                (Asks::Read | Asks::ReadAll, Some((_, c))) => {
                    let last = match (&c.call.errno, c.call.ret) {
                        (Some(e), _) if e == "EAGAIN" => Answer::Block,
                        (Some(e), _) => Answer::Errno(e.clone()),
                        (None, Some(0)) => Answer::Eof,
                        _ => Answer::Data,
                    };
                    // A read-all that returned data before its end of file.
                    let data_first = calls.iter().any(|(_, c)| c.call.ret.unwrap_or(0) > 0);
                    Some(match last {
                        Answer::Eof if q.asks == Asks::ReadAll && data_first => Answer::DataThenEof,
                        other => other,
                    })
                }
            };
            let right = match (&observed, a) {
                (Some(Answer::Errno(_)), Answer::Errno(g)) if g == "error" => true,
                // The question is about the last read: eof is right either way.
                (Some(Answer::DataThenEof), Answer::Eof) => true,
                (Some(o), a) => o == a,
                (None, _) => false,
            };
            Scored {
                line: q.line,
                step: q.step.clone(),
                answer: a.text(),
                observed: observed.map_or("the step made no call".into(), |o| o.text()),
                right,
                event,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(asks: Asks) -> Question {
        Question {
            line: 9,
            step: "client shutdown SHUT_WR".into(),
            asks,
        }
    }

    #[test]
    fn answers_are_normalised() {
        assert_eq!(
            parse_answer(&q(Asks::Wire), "fin"),
            Ok(Answer::Wire(vec![Wire::Fin]))
        );
        assert_eq!(
            parse_answer(&q(Asks::Wire), "FIN+data"),
            Ok(Answer::Wire(vec![Wire::Data, Wire::Fin]))
        );
        assert_eq!(
            parse_answer(&q(Asks::Wire), "Nothing"),
            Ok(Answer::Wire(vec![]))
        );
        assert!(parse_answer(&q(Asks::Wire), "a FIN I think").is_err());
        assert_eq!(parse_answer(&q(Asks::Read), "EOF"), Ok(Answer::Eof));
        assert_eq!(
            parse_answer(&q(Asks::Read), "econnreset"),
            Ok(Answer::Errno("ECONNRESET".into()))
        );
        assert!(parse_answer(&q(Asks::Read), "maybe").is_err());
    }

    #[test]
    fn answer_files_name_what_is_missing() {
        let qs = vec![
            q(Asks::Wire),
            Question {
                line: 11,
                step: "server read-all".into(),
                asks: Asks::Read,
            },
        ];
        let ok = read_answers(&qs, "# mine\n9 FIN\nline11 eof\n", "a.txt").unwrap();
        assert_eq!(ok, vec![Answer::Wire(vec![Wire::Fin]), Answer::Eof]);
        let e = read_answers(&qs, "9 FIN\n", "a.txt").unwrap_err();
        assert!(e.contains("no answer for line 11"), "{e}");
        let e = read_answers(&qs, "9 FNI\n11 eof\n", "a.txt").unwrap_err();
        assert!(e.starts_with("a.txt:1:"), "{e}");
        // An answer to a line with no question, a second answer, a bad one
        // and a missing one: all four at once.
        let e =
            read_answers(&qs, "9 FIN\n10 RST\n9 nothing\n11 ECONNRESTE\n", "a.txt").unwrap_err();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(lines[0].starts_with("a.txt:2: line 10 of the scenario has no question; the questions are on lines 9, 11"), "{e}");
        assert!(
            lines[1].starts_with("a.txt:3: a second answer for line 9"),
            "{e}"
        );
        assert!(lines[2].contains("did you mean `ECONNRESET`?"), "{e}");
    }

    #[test]
    fn read_all_asks_about_its_last_read_or_data_then_eof() {
        let ra = Question {
            line: 11,
            step: "server read-all".into(),
            asks: Asks::ReadAll,
        };
        assert!(ra.prompt().contains("last read"));
        assert_eq!(parse_answer(&ra, "data+eof"), Ok(Answer::DataThenEof));
        assert_eq!(parse_answer(&ra, "eof"), Ok(Answer::Eof));
        // One read cannot return both.
        assert!(parse_answer(&q(Asks::Read), "data+eof").is_err());
    }

    #[test]
    fn interactive_asks_again_after_a_bad_answer() {
        let qs = vec![q(Asks::Wire)];
        let mut input = std::io::Cursor::new(b"what\nFIN\n".to_vec());
        let mut prompts = Vec::new();
        let a = ask(&qs, &mut input, &mut prompts).unwrap();
        assert_eq!(a, vec![Answer::Wire(vec![Wire::Fin])]);
        assert!(String::from_utf8_lossy(&prompts).contains("answer nothing, data, FIN"));
    }

    #[test]
    fn a_read_all_that_got_data_then_eof_is_graded_on_either_answer() {
        use crate::correlate::Event;
        use crate::model::{CallKind, Side, TcpState};
        use crate::testkit::Script;
        let mut r = Script::new()
            .handshake()
            .call(Side::Server, CallKind::Read, "", 100, TcpState::CLOSE_WAIT)
            .call(Side::Server, CallKind::Read, "", 0, TcpState::CLOSE_WAIT)
            .report("read-all");
        // Both reads are the one step on line 11.
        for e in &mut r.timeline.events {
            if let Event::Call(c) = e {
                if c.call.kind == CallKind::Read {
                    c.call.line = Some(11);
                }
            }
        }
        let qs = vec![Question {
            line: 11,
            step: "server read-all".into(),
            asks: Asks::ReadAll,
        }];
        let grade = |a: Answer| score(&qs, &[a], &r)[0].clone();
        let both = grade(Answer::DataThenEof);
        assert!(both.right && both.observed == "data+eof", "{both:?}");
        assert!(grade(Answer::Eof).right, "the last read returned eof");
        assert!(!grade(Answer::Data).right);
    }
}
