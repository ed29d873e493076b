//! The annotated timeline for people: one line per call or segment.
//!
//! Written for a student who has never seen the tool: a header that says
//! what is shown, calls on the side that made them, segments as arrows
//! between the two sides with what caused them, and a footer with what the
//! capture saw and where the file went. Colour only marks what a reader
//! looks for (SYN, FIN, RST, errors, state changes) and is off when piped.

use super::{causes_text, seg_label};
use crate::paint::{visible_len as strip_len, Ink, Pen, Style};
use crate::words::tamper_text;
use hc_core::correlate::{
    CallEvent, EntryEvent, Event, KernelRst, SegEvent, StateEvent, TableEvent, Timeline,
};
use hc_core::model::{CallKind, Side};
use hc_core::report::{KernelSource, KernelVia, Report};
use std::fmt::Write;

/// The timeline, folded, plain, 140 columns ([`Style::default`]).
pub fn render(r: &Report) -> String {
    render_with(r, &Style::default())
}

/// The timeline as `style` says: colour, folding of long runs of plain
/// data (see [`crate::picture::FOLD_MIN`]), and the width beyond which a
/// segment's cause moves under its line.
pub fn render_with(r: &Report, style: &Style) -> String {
    let p = style.pen();
    let mut head = String::new();
    header(&mut head, r, p);
    let _ = writeln!(
        head,
        "{}",
        p.ink(
            format!("{:>4} {:>9}  {:<6}  what", "#", "ms", "who"),
            Ink::DIM
        )
    );
    let mut out = fitted(head, style);
    for (_, line) in event_lines(r, style, r.timeline.t0) {
        out.push_str(&line);
    }
    out.push_str(&footer_text(r, style));
    out
}

/// The timeline's lines without header and footer, each with the time it
/// is placed at: one entry per event or folded run (an entry may hold a
/// continuation line). Times are shown from `t0`, which need not be the
/// report's own first event: several reports can share one clock.
pub fn event_lines(r: &Report, style: &Style, t0: i64) -> Vec<(i64, String)> {
    let p = style.pen();
    let fold = style.fold;
    let mut out = Vec::new();
    let events = &r.timeline.events;
    let mut i = 0;
    while i < events.len() {
        let run = if fold {
            crate::picture::fold_run(events, i)
        } else {
            0
        };
        if run > 0 {
            out.push((
                events[i].ts(),
                fitted(fold_line(i, &events[i..i + run], t0, p), style),
            ));
            i += run;
            continue;
        }
        let line = match &events[i] {
            Event::Call(c) => call_line(i, c, t0, r, p) + &verdict_lines(r, i, p),
            Event::Entry(e) => entry_line(i, e, r, t0, p),
            Event::Segment(s) => seg_line(i, s, &r.timeline, t0, style) + &recorded_line(r, s, p),
            Event::State(st) => state_line(i, st, t0, p),
            Event::Table(t) => table_line(i, t, t0, p, &r.timeline),
            Event::Note(n) => format!(
                "{i:>4} {}  {}  {}\n",
                time(n.ts, t0),
                p.ink("hc-trace", Ink::YELLOW.bold()),
                p.ink(n.text.trim_start_matches("hc-trace: "), Ink::YELLOW)
            ),
        };
        out.push((events[i].ts(), fitted(line, style)));
        i += 1;
    }
    out
}

/// The footer of a report alone (capture, end states, kernel, saved file).
pub fn footer_text(r: &Report, style: &Style) -> String {
    let mut out = String::new();
    footer(&mut out, r, style.pen());
    fitted(out, style)
}

/// `text` folded to the style's width when the style fits (a terminal).
fn fitted(text: String, style: &Style) -> String {
    if style.fit {
        fit(&text, style.width)
    } else {
        text
    }
}

/// Columns the timeline of `r` takes when no line is folded: what a
/// terminal needs to show it as it is.
pub fn needed_width(r: &Report, style: &Style) -> usize {
    let wide = Style {
        fit: false,
        width: usize::MAX / 2,
        ..*style
    };
    render_with(r, &wide)
        .lines()
        .map(strip_len)
        .max()
        .unwrap_or(0)
}

/// Every line of the timeline folded to `width` columns: an event's line
/// goes on under its `what` column, a header or footer line under its text.
fn fit(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.lines() {
        let indent = continuation(line);
        for l in crate::paint::fit_line(line, width, indent) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// Where the rest of a folded line starts: under the `what` column (24)
/// for an event, after the label for a footer line (`capture  `), two
/// columns in from the start of anything else.
fn continuation(line: &str) -> usize {
    let plain: String = {
        let mut s = String::new();
        let mut in_esc = false;
        for ch in line.chars() {
            if in_esc || ch == '\u{1b}' {
                in_esc = ch != 'm';
            } else {
                s.push(ch);
            }
        }
        s
    };
    let lead = plain.len() - plain.trim_start().len();
    let head: Vec<&str> = plain.split_whitespace().take(2).collect();
    let event = head
        .first()
        .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
        && lead <= 4
        && head.get(1).is_some_and(|w| w.parse::<f64>().is_ok());
    if event {
        24
    } else if lead > 0 {
        lead + 2
    } else if footer_label(&plain) {
        9
    } else {
        2
    }
}

/// `capture  …`, `end      …`: a footer line's label, padded to 8 columns.
fn footer_label(plain: &str) -> bool {
    let label: String = plain.chars().take(8).collect();
    let label = label.trim_end();
    plain.chars().nth(8) == Some(' ')
        && !label.is_empty()
        && label.chars().all(|c| c.is_ascii_lowercase())
}

/// One line for a folded run: what it held and the time it spans.
fn fold_line(first: usize, run: &[Event], t0: i64, p: Pen) -> String {
    format!(
        "{first:>4} {}  {}  {} {}\n",
        time(run[0].ts(), t0),
        p.ink("⋯     ", Ink::DIM),
        p.ink(crate::picture::fold_text(first, run), Ink::BLUE),
        p.ink("(--no-fold shows each)", Ink::DIM)
    )
}

fn header(out: &mut String, r: &Report, p: Pen) {
    let _ = writeln!(
        out,
        "{} {} — {}",
        p.ink("hc-trace", Ink::BOLD),
        p.ink(&r.scenario, Ink::BOLD),
        r.teaches
    );
    let mut where_ = Vec::new();
    if let Some(c) = r.client {
        where_.push(format!("client {c}"));
    }
    if let Some(s) = r.server {
        where_.push(format!("server {s}"));
    }
    where_.push(r.namespace.clone());
    let _ = writeln!(out, "  {}", where_.join(" · "));
    let _ = writeln!(
        out,
        "  {}",
        p.ink(
            format!(
                "Each line is a socket call made by the client or the server, a TCP segment captured on {} (\"wire\"), or a state change the kernel reported.\n  \
                 \"⇒\" lists the segments a call put on the wire; \"←\" says what put a segment there. {}",
                r.capture.iface, r.pacing
            ),
            Ink::DIM
        )
    );
    out.push('\n');
}

fn time(ts: i64, t0: i64) -> String {
    let mut s = String::with_capacity(10);
    push_time(&mut s, ts, t0);
    s
}

/// The time column, milliseconds from `t0` right-aligned in 9 columns.
fn push_time(out: &mut String, ts: i64, t0: i64) {
    let t = hc_core::time::ms_fixed(ts - t0, 3);
    for _ in t.len()..9 {
        out.push(' ');
    }
    out.push_str(&t);
}

/// The start of an event's line: `#`, time and who, as `"{i:>4} {time}  {who}  "`.
fn push_head(out: &mut String, i: usize, ts: i64, t0: i64, who: Side, p: Pen) {
    let _ = write!(out, "{i:>4} ");
    push_time(out, ts, t0);
    out.push_str("  ");
    push_side(out, who, p);
    out.push_str("  ");
}

pub(crate) fn side_name(side: Side, p: Pen) -> String {
    let mut s = String::new();
    push_side(&mut s, side, p);
    s
}

fn push_side(out: &mut String, side: Side, p: Pen) {
    match side {
        Side::Client => p.ink_into(out, "client", Ink::CYAN),
        Side::Server => p.ink_into(out, "server", Ink::MAGENTA),
    }
}

/// Where a call that returned later was entered: `read(13, buf, 65536) …`.
fn entry_line(i: usize, e: &EntryEvent, r: &Report, t0: i64, p: Pen) -> String {
    let Some(Event::Call(c)) = r.timeline.events.get(e.call) else {
        return String::new();
    };
    let call = &c.call;
    let text = format!("{} …", p.ink(call.entry_text(), Ink::BOLD));
    let pad = " ".repeat(40usize.saturating_sub(strip_len(&text)).max(2));
    let mut tail = vec![format!("entered; returns at #{}", e.call)];
    if let Some(st) = c.state_entry {
        tail.push(format!("state {}", st.name()));
    }
    format!(
        "{i:>4} {}  {}  {text}{pad}{}\n",
        time(e.ts, t0),
        side_name(call.side, p),
        p.ink(tail.join(" · "), Ink::DIM)
    )
}

/// What the kernel's table said of a closed connection.
fn table_line(i: usize, t: &TableEvent, t0: i64, p: Pen, tl: &Timeline) -> String {
    let what = match (t.before, t.state) {
        (Some(b), Some(n)) if b != n => format!(
            "went {}",
            p.ink(format!("{} → {}", b.name(), n.name()), Ink::YELLOW)
        ),
        (_, Some(n)) => format!("is in {}", n.name()),
        (_, None) => {
            // Gone: an RST on the connection since the last reading ended it.
            let rst = t.conn.and_then(|k| {
                tl.segments()
                    .filter(|(_, s)| s.conn == k && s.seg.flags.rst() && s.seg.ts <= t.ts)
                    .last()
                    .map(|(j, _)| j)
            });
            match rst {
                Some(j) => format!("is gone (no socket left), after the RST #{j}"),
                None => "is gone (no socket left)".into(),
            }
        }
    };
    format!(
        "{i:>4} {}  {}  {} {what}  {}\n",
        time(t.ts, t0),
        side_name(t.side, p),
        p.ink("kernel table: the closed connection", Ink::DIM),
        p.ink(format!("({} ↔ {}, sock_diag)", t.local, t.peer), Ink::DIM)
    )
}

fn call_line(i: usize, c: &CallEvent, t0: i64, r: &Report, p: Pen) -> String {
    let call = &c.call;
    let mut s = String::with_capacity(192);
    push_head(&mut s, i, c.shown_at(), t0, call.side, p);
    let ret = match (&call.errno, call.ret) {
        (Some(e), _) => p.ink(format!("= -1 {e}"), Ink::RED.bold()),
        (None, Some(r)) if call.kind == CallKind::Accept || call.text.contains(" = ") => {
            // accept's text already names the new descriptor.
            let _ = r;
            String::new()
        }
        (None, Some(r)) => format!("= {r}"),
        (None, None) => String::new(),
    };
    let text_at = s.len();
    p.ink_into(&mut s, &call.text, Ink::BOLD);
    if !ret.is_empty() {
        s.push(' ');
        s.push_str(&ret);
    }
    let visible = strip_len(&s[text_at..]);
    for _ in 0..40usize.saturating_sub(visible).max(2) {
        s.push(' ');
    }

    let mut tail = Vec::new();
    // A call shown as a span: how long it took and what it waited for.
    if c.entry.is_some() {
        let mut w = format!("after {}", hc_core::time::ms(call.end - call.start));
        if let Some(seg) = c
            .woke_by
            .and_then(|j| r.timeline.segment(j).map(|s| (j, s)))
        {
            let _ = write!(w, ", woken by {} #{}", seg_label(seg.1), seg.0);
        }
        tail.push(w);
    }
    if call.kind != CallKind::Sleep {
        const SHOWN: usize = 4;
        if c.caused.len() > SHOWN {
            // Too many to list: the first few that left during the call,
            // then how many it caused that left after it returned.
            let label = |n: usize| {
                r.timeline
                    .segment(n)
                    .map(|seg| format!("{} #{n}", colour_label(&seg_label(seg), p)))
            };
            let (during, later): (Vec<usize>, Vec<usize>) = c
                .caused
                .iter()
                .partition(|&&n| c.sent.binary_search_by_key(&n, |x| x.segment).is_ok());
            let mut parts = Vec::new();
            if !during.is_empty() {
                let mut t: Vec<String> = during
                    .iter()
                    .take(SHOWN)
                    .filter_map(|&n| label(n))
                    .collect();
                if during.len() > SHOWN {
                    t.push(format!("… {} segments in all", during.len()));
                }
                parts.push(t.join(", "));
            }
            match later.as_slice() {
                [] => {}
                [one] => parts.push(format!(
                    "{} (sent after it returned)",
                    label(*one).unwrap_or_default()
                )),
                [first, .., last] => parts.push(format!(
                    "{} segments sent after it returned (#{first} … #{last})",
                    later.len()
                )),
            }
            let joined = if during.is_empty() {
                format!("nothing during the call; {}", parts.join("; "))
            } else {
                parts.join("; ")
            };
            tail.push(format!("⇒ {joined}"));
        } else {
            match crate::words::sent_text(&r.timeline, i, &c.caused, &c.sent) {
                Some(t) => tail.push(format!("⇒ {}", colour_segments(&t, p))),
                None => tail.push(p.ink("⇒ nothing on the wire", Ink::DIM)),
            }
        }
        if let Some(st) = crate::words::state_text(c, p) {
            tail.push(st);
        }
    }
    // A traced program's calls come from processes the reader did not name.
    if let Some(pid) = call.pid {
        tail.push(p.ink(format!("pid {pid}"), Ink::DIM));
    }
    s.push_str(&tail.join(" · "));
    let note = match c.eof {
        Some(e) => Some(crate::words::eof_text(&r.timeline, e)),
        // Recordings of older versions said "end of file" for every 0.
        None => call.note.clone().filter(|n| n != "end of file"),
    };
    if let Some(note) = note {
        let _ = write!(s, "  {}", p.ink(format!("({note})"), Ink::DIM));
    }
    s.push('\n');
    s
}

/// Paints the segment labels inside a list such as `data(100) #12, FIN #16`.
fn colour_segments(text: &str, p: Pen) -> String {
    if !p.on {
        return text.to_string();
    }
    text.split(", ")
        .map(|part| match part.split_once(" #") {
            Some((label, rest)) if !label.contains(' ') => {
                format!("{} #{rest}", colour_label(label, p))
            }
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ink of a segment label: what a reader looks for stands out.
pub(crate) fn label_ink(label: &str) -> Ink {
    if label.contains("RST") {
        Ink::RED.bold()
    } else if label.contains("FIN") {
        Ink::YELLOW.bold()
    } else if label.contains("SYN") {
        Ink::GREEN.bold()
    } else if label.starts_with("data") {
        Ink::BLUE
    } else {
        Ink::PLAIN
    }
}

pub(crate) fn colour_label(label: &str, p: Pen) -> String {
    p.ink(label, label_ink(label))
}

#[cfg(test)]
fn arrow(from: Side, label: &str, p: Pen) -> String {
    let mut s = String::new();
    push_arrow(&mut s, from, label, p);
    s
}

/// `client ───── SYN ─────▶ server` with the label centred.
fn push_arrow(out: &mut String, from: Side, label: &str, p: Pen) {
    const W: usize = 21;
    let n = label.chars().count() + 2;
    let left = W.saturating_sub(n) / 2;
    let right = W.saturating_sub(n) - left;
    let line = |out: &mut String, k: usize| {
        for _ in 0..k {
            out.push('─');
        }
    };
    push_side(out, Side::Client, p);
    out.push(' ');
    if from == Side::Server {
        out.push('◀');
    }
    line(out, left);
    out.push(' ');
    p.ink_into(out, label, label_ink(label));
    out.push(' ');
    line(out, right);
    if from == Side::Client {
        out.push('▶');
    }
    out.push(' ');
    push_side(out, Side::Server, p);
}

fn seg_line(i: usize, s: &SegEvent, tl: &Timeline, t0: i64, style: &Style) -> String {
    let p = style.pen();
    let mut nums = format!("seq {}", s.rel_seq);
    if let Some(a) = s.rel_ack {
        let _ = write!(nums, " ack {a}");
    }
    let cut = s.seg.cut != 0;
    match s.win_bytes {
        _ if s.seg.cut & hc_core::decode::frame::cut::WINDOW != 0 => {
            nums.push_str(" win ? (not captured)");
        }
        Some(b) => {
            let _ = write!(nums, " win {b}");
        }
        None => {
            let _ = write!(nums, " win {} (unscaled)", s.seg.win);
        }
    }
    if s.seg.flags.syn() && cut && s.seg.options.is_empty() {
        nums.push_str(" [options cut by the snap length]");
    }
    if s.seg.flags.syn() && !s.seg.options.is_empty() {
        // Timestamp values are noise to a reader of the timeline; the pcapng keeps them.
        let opts: Vec<String> = s
            .seg
            .options
            .iter()
            .map(|o| match o {
                hc_core::model::TcpOpt::Timestamp { .. } => "TS".to_string(),
                o => o.to_string(),
            })
            .collect();
        let more = if cut {
            ", … cut by the snap length"
        } else {
            ""
        };
        let _ = write!(nums, " [{}{more}]", opts.join(", "));
    }
    let mut line = String::with_capacity(192);
    let _ = write!(line, "{i:>4} ");
    push_time(&mut line, s.seg.ts, t0);
    line.push_str("  ");
    p.ink_into(&mut line, "wire  ", Ink::DIM);
    line.push_str("  ");
    push_arrow(&mut line, s.from, &seg_label(s), p);
    line.push_str("  ");
    p.ink_into(&mut line, &nums, Ink::DIM);
    if s.retransmission_of.is_some() {
        let _ = write!(line, " {}", p.ink("RETRANSMISSION", Ink::RED));
    }
    // tshark's own labels of the segment, so the two can be read side by side.
    if !s.flow.is_empty() {
        let names: Vec<&str> = s.flow.iter().map(|f| f.name()).collect();
        let _ = write!(
            line,
            " {}",
            p.ink(format!("[tshark: {}]", names.join(", ")), Ink::DIM)
        );
    }
    let mut cause = format!("← {}", causes_text(tl, s));
    if let Some(t) = &s.tampered {
        cause = format!(
            "{cause} · {}",
            p.ink(tamper_text(s, t, t0), Ink::YELLOW.bold())
        );
    }
    if let Some(k) = &s.kernel {
        let k = kernel_rst_text(k);
        let k = if k.contains("DISAGREES") {
            p.ink(k, Ink::RED.bold())
        } else {
            p.ink(k, Ink::BOLD)
        };
        cause = format!("{cause} · {k}");
    }
    let kernel_only = s.causes.iter().all(|c| c.event().is_none());
    let cause = if kernel_only {
        p.ink(cause, Ink::ITALIC)
    } else {
        cause
    };
    if strip_len(&line) + strip_len(&cause) + 2 <= style.width {
        let _ = writeln!(line, "  {cause}");
    } else {
        let _ = writeln!(line, "\n{}{cause}", " ".repeat(24));
    }
    line
}

/// The cause the capture file itself recorded for a segment (hc-trace's
/// packet comment, numbered as in the run that made it), under the cause
/// inferred from the wire.
fn recorded_line(r: &Report, s: &SegEvent, p: Pen) -> String {
    let Some((_, c)) = r.recorded.iter().find(|(f, _)| *f == s.seg.frame) else {
        return String::new();
    };
    let mut out = String::new();
    for (n, l) in c.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let l = if n == 0 {
            format!("recorded: {l}")
        } else {
            format!("  {l}")
        };
        let _ = writeln!(out, "{}{}", " ".repeat(24), p.ink(l, Ink::DIM));
    }
    out
}

/// A state change the kernel reported, on the side whose socket changed.
fn state_line(i: usize, st: &StateEvent, t0: i64, p: Pen) -> String {
    let mut line = String::with_capacity(128);
    push_head(&mut line, i, st.ts, t0, st.side, p);
    p.ink_into(&mut line, "kernel: state", Ink::DIM);
    line.push(' ');
    p.ink_into(
        &mut line,
        &format!("{} → {}", st.old.name(), st.new.name()),
        Ink::YELLOW,
    );
    if let Some(t) = st.continues_as {
        let _ = write!(
            line,
            "  {}",
            p.ink(
                format!(
                    "(the connection lives on as {}: the kernel table showed it later)",
                    t.name()
                ),
                Ink::DIM
            )
        );
    }
    line.push('\n');
    line
}

/// "kernel reason: TCP_ABORT_ON_CLOSE (socket in CLOSE)", flagged when it
/// disagrees with the correlator's own cause.
pub fn kernel_rst_text(k: &KernelRst) -> String {
    let state = if k.state == "UNKNOWN" {
        "no socket".to_string()
    } else {
        format!("socket in {}", k.state)
    };
    let mut t = format!("kernel reason: {} ({state})", k.reason);
    if k.agrees == Some(false) {
        t.push_str(" — DISAGREES with the cause the correlator found");
    }
    t
}

/// ✓ / ✗ under a call for each expectation of its step.
fn verdict_lines(r: &Report, event: usize, p: Pen) -> String {
    let mut out = String::new();
    for v in r.expectations.iter().filter(|v| v.event == Some(event)) {
        out.push_str(&verdict_line(v, 24, p));
    }
    out
}

fn verdict_line(v: &hc_core::scenario::expect::Verdict, indent: usize, p: Pen) -> String {
    if v.met {
        format!(
            "{}{} {}  {}\n",
            " ".repeat(indent),
            p.ink("✓", Ink::GREEN.bold()),
            v.expect,
            p.ink(format!("(line {}: {})", v.line, v.seen), Ink::DIM)
        )
    } else {
        format!(
            "{}{} {}  {}\n",
            " ".repeat(indent),
            p.ink("✗", Ink::RED.bold()),
            p.ink(&v.expect, Ink::RED.bold()),
            p.ink(format!("— line {}: saw {}", v.line, v.seen), Ink::RED)
        )
    }
}

fn footer(out: &mut String, r: &Report, pen: Pen) {
    // Labels of the footer's lines, padded before they are painted.
    let label = |l: &str| pen.ink(format!("{l:<8}"), Ink::BOLD);
    if !r.predictions.is_empty() {
        let right = r.predictions.iter().filter(|p| p.right).count();
        let _ = writeln!(
            out,
            "\n{}",
            pen.ink(
                format!("Your predictions: {right} of {} right", r.predictions.len()),
                Ink::BOLD
            )
        );
        for p in &r.predictions {
            let mark = if p.right {
                pen.ink("✓", Ink::GREEN.bold())
            } else {
                pen.ink("✗", Ink::RED.bold())
            };
            let observed = pen.ink(&p.observed, if p.right { Ink::GREEN } else { Ink::RED });
            let said = match p.event {
                Some(e) => format!(
                    "you said {}, it was {observed} (#{e})",
                    pen.ink(&p.answer, Ink::BOLD)
                ),
                // No call to compare with: say so, not "it was the step made no call".
                None => format!("you said {}; {observed}", pen.ink(&p.answer, Ink::BOLD)),
            };
            let _ = writeln!(out, "  {mark} line {:>3}  {:<30} {said}", p.line, p.step);
        }
    }
    if !r.expectations.is_empty() {
        let met = r.expectations.iter().filter(|v| v.met).count();
        out.push('\n');
        for v in r.expectations.iter().filter(|v| v.event.is_none()) {
            out.push_str(&verdict_line(v, 2, pen));
        }
        let all = r.expectations.len();
        let line = format!("expectations: {met} of {all} met");
        let ink = if met == all { Ink::GREEN } else { Ink::RED };
        let _ = writeln!(out, "{}", pen.ink(line, ink.bold()));
    }
    out.push('\n');
    for p in &r.problems {
        let _ = writeln!(
            out,
            "{} line {} `{}`: {}",
            pen.ink("✗ could not run as written:", Ink::RED.bold()),
            p.line,
            p.step,
            p.message
        );
    }
    let c = &r.capture;
    let kept = if c.snaplen < 1024 {
        format!(", first {} bytes of each packet kept", c.snaplen)
    } else {
        String::new()
    };
    let mut cap = format!(
        "{} segments captured on {} ({}{kept})",
        c.packets - c.unparsed,
        c.iface,
        c.filter
    );
    if c.unparsed > 0 {
        let _ = write!(cap, ", {} frames not parsed as TCP", c.unparsed);
    }
    match c.counters {
        Some(k) if k.dropped + k.if_dropped > 0 => {
            let _ = write!(
                cap,
                " · {}",
                pen.ink(
                    format!(
                        "PACKETS DROPPED: {} by the kernel, {} by the interface — the timeline is incomplete",
                        k.dropped, k.if_dropped
                    ),
                    Ink::RED.bold()
                )
            );
        }
        Some(k) => {
            // On lo each packet passes the capture twice (going out, coming
            // in) unless the kernel was told to skip the outgoing copy: say
            // so only when the count shows it.
            let both = c.iface == "lo" && !k.outgoing_skipped;
            let _ = write!(
                cap,
                " · 0 dropped (libpcap: {} received{})",
                k.received,
                if both {
                    ", counting both copies on lo"
                } else {
                    ""
                }
            );
        }
        None => {}
    }
    let _ = writeln!(out, "{} {cap}", label("capture"));
    for s in r.streams() {
        let line = format!(
            "{} wrote {} B, {} B seen on the wire (each byte counted once)",
            side_name(s.side, pen),
            s.written,
            s.on_wire
        );
        if s.missing() {
            let _ = writeln!(
                out,
                "{} {line} · {}",
                label("stream"),
                pen.ink(
                    "BYTES MISSING FROM THE CAPTURE — the timeline is incomplete",
                    Ink::RED.bold()
                )
            );
        } else if s.written >= 1 << 20 {
            let _ = writeln!(out, "{} {line}", label("stream"));
        }
    }
    if !r.final_states.is_empty() {
        let states: Vec<String> = r
            .final_states
            .iter()
            .map(|f| {
                let role = if f.peer.is_none() {
                    "listener"
                } else {
                    "socket"
                };
                format!(
                    "{} {role} {} {}",
                    side_name(f.side, pen),
                    f.local,
                    pen.ink(f.state.label(), Ink::BOLD)
                )
            })
            .collect();
        let _ = writeln!(out, "{} {}", label("end"), states.join(" · "));
    }
    match &r.kernel {
        KernelSource::Tracepoints {
            events,
            via: KernelVia::Tracefs { ebpf },
        } => {
            let _ = writeln!(
                out,
                "{} {events} events of this run from tracepoints tcp:tcp_send_reset and sock:inet_sock_set_state {}",
                label("kernel"),
                pen.ink("(times ±1 µs: ftrace's mono clock shifted to CLOCK_REALTIME by an offset measured at start)", Ink::DIM)
            );
            if let Some(why) = ebpf {
                let _ = writeln!(
                    out,
                    "{} read from tracefs: the eBPF source could not load ({why})",
                    label("kernel")
                );
            }
        }
        KernelSource::Tracepoints {
            events,
            via: KernelVia::Ebpf { drops },
        } => {
            let lost = if *drops == 0 {
                pen.ink("0 lost", Ink::DIM)
            } else {
                pen.ink(
                    format!("{drops} LOST (the ring buffer was full)"),
                    Ink::BOLD,
                )
            };
            let _ = writeln!(
                out,
                "{} {events} events of this run from tracepoints tcp:tcp_send_reset and sock:inet_sock_set_state through eBPF (tp_btf, ring buffer: {lost}) {}",
                label("kernel"),
                pen.ink("(times: the kernel's CLOCK_MONOTONIC shifted to CLOCK_REALTIME by an offset measured at start)", Ink::DIM)
            );
        }
        KernelSource::Unavailable(why) => {
            let _ = writeln!(
                out,
                "{} kernel reasons and state changes not available: {why}",
                label("kernel")
            );
        }
        KernelSource::None => {}
    }
    match (&c.file, &c.file_error) {
        (Some(p), _) => {
            let _ = writeln!(
                out,
                "{} {}  {}",
                label("saved"),
                p.display(),
                pen.ink(format!("(open it in Wireshark: each packet's comment is its cause; or: tshark -r {} -T fields -e frame.number -e frame.comment)", p.display()), Ink::DIM)
            );
        }
        (None, Some(e)) => {
            let _ = writeln!(
                out,
                "{} {}",
                label("saved"),
                pen.ink(format!("nothing: {e}"), Ink::RED)
            );
        }
        (None, None) => {}
    }
    if let Some(sig) = &r.interrupted {
        let _ = writeln!(
            out,
            "{}",
            pen.ink(
                format!("interrupted by {sig}: the timeline above is what happened until then"),
                Ink::RED.bold()
            )
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footer_names_the_kernel_source_and_its_fallback() {
        use hc_core::report::KernelVia;
        let mut r = hc_core::testkit::shut_wr();
        let style = Style::default();
        let line = |r: &Report| {
            footer_text(r, &style)
                .lines()
                .filter(|l| l.starts_with("kernel"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        r.kernel = KernelSource::Tracepoints {
            events: 7,
            via: KernelVia::Ebpf { drops: 0 },
        };
        let l = line(&r);
        assert_eq!(l.len(), 1, "{l:?}");
        assert!(
            l[0].contains("7 events") && l[0].contains("through eBPF") && l[0].contains("0 lost"),
            "{l:?}"
        );
        r.kernel = KernelSource::Tracepoints {
            events: 7,
            via: KernelVia::Ebpf { drops: 3 },
        };
        assert!(line(&r)[0].contains("3 LOST"), "losses are loud");
        r.kernel = KernelSource::Tracepoints {
            events: 7,
            via: KernelVia::Tracefs {
                ebpf: Some("permission denied".into()),
            },
        };
        let l = line(&r);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(
            !l[0].contains("eBPF")
                && l[1].contains("read from tracefs")
                && l[1].contains("permission denied"),
            "{l:?}"
        );
        // tracefs asked for (or an old recording): no fallback line.
        r.kernel = KernelSource::Tracepoints {
            events: 7,
            via: KernelVia::Tracefs { ebpf: None },
        };
        assert_eq!(line(&r).len(), 1);
    }

    #[test]
    fn the_footer_says_both_copies_only_when_the_kernel_handed_both() {
        use hc_core::report::PcapCounters;
        let mut r = hc_core::testkit::shut_wr();
        r.capture.iface = "lo".into();
        r.capture.packets = 11;
        let capture = |r: &Report| {
            footer_text(r, &Style::default())
                .lines()
                .find(|l| l.starts_with("capture"))
                .map(str::to_string)
                .unwrap_or_default()
        };
        r.capture.counters = Some(PcapCounters {
            received: 22,
            ..PcapCounters::default()
        });
        assert!(capture(&r).contains("22 received, counting both copies on lo"));
        // The kernel skipped the outgoing copies: one per packet.
        r.capture.counters = Some(PcapCounters {
            received: 11,
            outgoing_skipped: true,
            ..PcapCounters::default()
        });
        let l = capture(&r);
        assert!(
            l.contains("(libpcap: 11 received)") && !l.contains("both"),
            "{l}"
        );
    }

    #[test]
    fn arrows_point_from_the_sender() {
        let p = Pen { on: false };
        assert!(arrow(Side::Client, "SYN", p).starts_with("client ─"));
        assert!(arrow(Side::Client, "SYN", p).ends_with("▶ server"));
        assert!(arrow(Side::Server, "FIN", p).starts_with("client ◀"));
        let on = Pen { on: true };
        assert_eq!(
            strip_len(&arrow(Side::Client, "SYN", on)),
            strip_len(&arrow(Side::Server, "data(100)+FIN", p))
        );
    }

    #[test]
    fn fitted_to_80_columns_no_line_is_wider_and_no_word_is_cut() {
        use hc_core::testkit::{shut_wr, simultaneous_held, worst};
        let words = |t: &str| t.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        for r in [shut_wr(), worst(), simultaneous_held()] {
            for color in [false, true] {
                let wide = Style {
                    color,
                    ..Style::default()
                };
                let narrow = Style {
                    width: 80,
                    fit: true,
                    ..wide
                };
                let full = render_with(&r, &wide);
                let fitted = render_with(&r, &narrow);
                // The control: unfitted, the timeline is wider than 80.
                assert!(needed_width(&r, &wide) > 80);
                for l in fitted.lines() {
                    assert!(strip_len(l) <= 80, "{} columns: {l:?}", strip_len(l));
                }
                if !color {
                    // Only line breaks and indentation changed (the cause
                    // already moved under a line at 80 is the same words).
                    assert_eq!(
                        words(&fitted),
                        words(&render_with(
                            &r,
                            &Style {
                                fit: false,
                                ..narrow
                            }
                        ))
                    );
                    assert_eq!(
                        words(&full),
                        words(&render_with(
                            &r,
                            &Style {
                                fit: false,
                                ..narrow
                            }
                        ))
                    );
                }
            }
        }
    }

    #[test]
    fn a_folded_event_line_goes_on_under_its_what_column() {
        let r = hc_core::testkit::shut_wr();
        let fitted = render_with(
            &r,
            &Style {
                width: 80,
                fit: true,
                ..Style::default()
            },
        );
        let lines: Vec<&str> = fitted.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.contains("shutdown(3, SHUT_WR) = 0"))
            .expect("the shutdown");
        assert!(
            lines[at + 1].starts_with(&" ".repeat(24)),
            "{}",
            lines[at + 1]
        );
        assert!(
            !lines[at + 1].starts_with(&" ".repeat(25)),
            "{}",
            lines[at + 1]
        );
    }
}
