//! `--view ladder`: the run as the two-column sequence diagram of TCP/IP
//! textbooks, in the terminal.
//!
//! Client on the left, server on the right, time going down; calls and the
//! states they leave are written beside the lifeline of the side that made
//! them, segments are arrows between the lifelines. Students compare it with
//! the figures in their book, so it keeps the book's shape, and it fits 80
//! columns because that is the terminal (and the printout) they have. Every
//! segment keeps its event number so the timeline view can explain it in full.

use super::picture::{rows, wrap, CallRow, Fate, Row, SegRow, StateRow};
use super::text::colour_label;
use crate::paint::{visible_len as strip_len, Ink, Pen, Style};
use hc_core::model::Side;
use hc_core::report::Report;
use std::fmt::Write;

/// The whole picture is at most this wide.
pub const WIDTH: usize = 80;
/// Each side's column, up to and including the space before its lifeline.
const SIDE: usize = 25;
/// Between the two lifelines: where the arrows are.
const MID: usize = WIDTH - 2 * SIDE - 2;

/// The ladder, plain ([`Style::default`]).
pub fn render(r: &Report) -> String {
    render_with(r, &Style::default())
}

/// The ladder, coloured as `style` says (it is always 80 columns wide).
pub fn render_with(r: &Report, style: &Style) -> String {
    let p = style.pen();
    let mut out = String::new();
    header(&mut out, r, p);
    let rows = rows(r);
    let tampered = rows
        .iter()
        .any(|row| matches!(row, Row::Seg(s) if s.fate != Fate::Delivered));
    for row in rows {
        match row {
            Row::Call(c) => call(&mut out, &c, p),
            Row::State(s) => state(&mut out, &s, p),
            Row::Seg(s) => segment(&mut out, &s, p),
            Row::Arrival(s) => arrival(&mut out, &s, p),
            Row::Verdict(v) => {
                let ink = if v.met {
                    Ink::GREEN.bold()
                } else {
                    Ink::RED.bold()
                };
                on_side(&mut out, v.side, &v.text, |l| p.ink(l, ink));
            }
            Row::Note(n) => {
                for l in wrap(&n, MID - 2) {
                    out.push_str(&line(
                        Cell::empty(),
                        Cell::new(p.ink(l, Ink::YELLOW.bold())),
                        Cell::empty(),
                    ));
                }
            }
            Row::Fold(f) => {
                for l in wrap(&format!("⋯ {f}"), MID - 2) {
                    out.push_str(&line(
                        Cell::empty(),
                        Cell::new(p.ink(l, Ink::BLUE)),
                        Cell::empty(),
                    ));
                }
            }
        }
    }
    out.push_str(&line(Cell::empty(), Cell::empty(), Cell::empty()));
    summary(&mut out, r, p);
    footer(&mut out, r, p, tampered);
    out
}

/// Text as shown, with its printed width kept apart from its colour escapes.
struct Cell {
    styled: String,
    width: usize,
}

impl Cell {
    fn empty() -> Cell {
        Cell {
            styled: String::new(),
            width: 0,
        }
    }
    fn new(styled: String) -> Cell {
        Cell {
            width: strip_len(&styled),
            styled,
        }
    }
}

/// One line of the ladder: the client's text right-aligned against its
/// lifeline, the middle, the server's text after its lifeline.
fn line(left: Cell, mid: Cell, right: Cell) -> String {
    let mut s = String::new();
    s.push_str(&" ".repeat((SIDE - 1).saturating_sub(left.width)));
    s.push_str(&left.styled);
    s.push(' ');
    s.push('│');
    let pad = MID.saturating_sub(mid.width);
    s.push_str(&" ".repeat(pad / 2));
    s.push_str(&mid.styled);
    s.push_str(&" ".repeat(pad - pad / 2));
    s.push('│');
    if right.width > 0 {
        s.push(' ');
        s.push_str(&right.styled);
    }
    let mut s = s.trim_end().to_string();
    s.push('\n');
    s
}

/// Text on one side, wrapped to that side's column.
fn on_side(out: &mut String, side: Side, text: &str, style: impl Fn(&str) -> String) {
    for l in wrap(text, SIDE - 1) {
        let c = Cell::new(style(&l));
        out.push_str(&match side {
            Side::Client => line(c, Cell::empty(), Cell::empty()),
            Side::Server => line(Cell::empty(), Cell::empty(), c),
        });
    }
}

fn call(out: &mut String, c: &CallRow, p: Pen) {
    let text = format!("#{} {}", c.event, c.text);
    let ink = if c.failed { Ink::RED.bold() } else { Ink::BOLD };
    on_side(out, c.side, &text, |l| p.ink(l, ink));
}

fn state(out: &mut String, s: &StateRow, p: Pen) {
    on_side(out, s.side, &s.state, |l| p.ink(l, Ink::YELLOW));
}

fn segment(out: &mut String, s: &SegRow, p: Pen) {
    let title = s.title();
    let colour = |text: &str| text.replacen(&s.label, &colour_label(&s.label, p), 1);
    if title.chars().count() <= MID - 2 {
        out.push_str(&line(
            Cell::empty(),
            Cell::new(colour(&title)),
            Cell::empty(),
        ));
    } else {
        let first = format!("#{} {}", s.event, s.label);
        for l in wrap(&first, MID - 2) {
            out.push_str(&line(Cell::empty(), Cell::new(colour(&l)), Cell::empty()));
        }
        out.push_str(&line(Cell::empty(), Cell::new(s.numbers()), Cell::empty()));
    }
    match s.fate {
        Fate::Delivered => out.push_str(&line(Cell::empty(), arrow(s, p), Cell::empty())),
        // A segment that did not go straight across: its cause on a line of
        // its own, then an arrow that stops on the way.
        Fate::Held { .. } | Fate::HeldForever | Fate::Dropped => {
            for l in wrap(&s.cause, MID - 2) {
                let l = if s.kernel { p.ink(l, Ink::ITALIC) } else { l };
                out.push_str(&line(Cell::empty(), Cell::new(l), Cell::empty()));
            }
            out.push_str(&line(Cell::empty(), stopped(s, p), Cell::empty()));
        }
    }
}

/// Where a held segment was delivered: the arrow's second half, from the
/// bar where it waited (`‖`) to the receiver.
fn arrival(out: &mut String, s: &SegRow, p: Pen) {
    let colour = |text: &str| text.replacen(&s.label, &colour_label(&s.label, p), 1);
    for l in wrap(&s.arrival_title(), MID - 2) {
        out.push_str(&line(Cell::empty(), Cell::new(colour(&l)), Cell::empty()));
    }
    let shaft = if s.kernel { "╌" } else { "─" };
    // The bar in the column where the first half stopped.
    let n = MID - HALF - 1;
    let styled = match s.from {
        Side::Client => format!("{}‖{}▶", " ".repeat(HALF - 1), shaft.repeat(n)),
        Side::Server => format!("◀{}‖{}", shaft.repeat(n), " ".repeat(HALF - 1)),
    };
    out.push_str(&line(Cell::empty(), Cell::new(styled), Cell::empty()));
}

/// How many columns of the middle a held segment's first half takes, from
/// its sender's lifeline to the bar where it waits.
const HALF: usize = MID / 2;

/// The arrow of a segment that did not reach its receiver when it left,
/// exactly as wide as the middle: held, it stops half-way at a bar (`‖`) and
/// goes on from there at its [`Row::Arrival`]; dropped, it stops short of
/// the receiver with a cross (`✕`).
fn stopped(s: &SegRow, p: Pen) -> Cell {
    let shaft = if s.kernel { "╌" } else { "─" };
    let (words, len, end) = match s.fate {
        Fate::Dropped => ("DROPPED", MID - 3, "✕"),
        Fate::HeldForever => ("held for good", MID - 3, "‖"),
        _ => ("held", HALF, "‖"),
    };
    // Shafts either side of the words, then the head and the end mark.
    let shafts = len.saturating_sub(words.chars().count() + 4);
    let left = shafts / 2;
    let right = shafts - left;
    let words = p.ink(words, Ink::YELLOW.bold());
    let gap = " ".repeat(MID.saturating_sub(len));
    let styled = match s.from {
        Side::Client => format!(
            "{} {words} {}▶{end}{gap}",
            shaft.repeat(left),
            shaft.repeat(right)
        ),
        Side::Server => format!(
            "{gap}{end}◀{} {words} {}",
            shaft.repeat(right),
            shaft.repeat(left)
        ),
    };
    Cell::new(styled)
}

/// `──── shutdown(SHUT_WR) #9 ───▶` exactly as wide as the middle; the shaft
/// is dashed when no call caused the segment.
fn arrow(s: &SegRow, p: Pen) -> Cell {
    let shaft = if s.kernel { "╌" } else { "─" };
    let room = MID - 6;
    let mut cause: String = s.cause.chars().take(room).collect();
    if s.cause.chars().count() > room {
        cause.pop();
        cause.push('…');
    }
    let n = cause.chars().count() + 2;
    let left = (MID - 1 - n) / 2;
    let right = MID - 1 - n - left;
    let cause_styled = if s.kernel {
        p.ink(cause, Ink::ITALIC)
    } else {
        cause
    };
    let styled = match s.from {
        Side::Client => format!(
            "{} {cause_styled} {}▶",
            shaft.repeat(left),
            shaft.repeat(right)
        ),
        Side::Server => format!(
            "◀{} {cause_styled} {}",
            shaft.repeat(right),
            shaft.repeat(left)
        ),
    };
    Cell::new(styled)
}

fn header(out: &mut String, r: &Report, p: Pen) {
    let title = format!("hc-trace {} — ladder diagram, time goes down", r.scenario);
    for l in wrap(&title, WIDTH) {
        let _ = writeln!(out, "{}", p.ink(l, Ink::BOLD));
    }
    for l in wrap(&r.teaches, WIDTH - 2) {
        let _ = writeln!(out, "  {l}");
    }
    out.push('\n');
    // Each name centred over its lifeline.
    let client = "client";
    let server = "server";
    let c_at = SIDE - client.len() / 2;
    let s_at = SIDE + 1 + MID - server.len() / 2;
    let gap = s_at - c_at - client.len();
    let _ = writeln!(
        out,
        "{}{}{}{}",
        " ".repeat(c_at),
        p.ink(client, Ink::CYAN.bold()),
        " ".repeat(gap),
        p.ink(server, Ink::MAGENTA.bold())
    );
    let addr = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    out.push_str(&line(
        Cell::new(p.ink(addr(r.client), Ink::DIM)),
        Cell::empty(),
        Cell::new(p.ink(addr(r.server), Ink::DIM)),
    ));
    out.push_str(&line(Cell::empty(), Cell::empty(), Cell::empty()));
}

/// The timeline's summary of a lab and a prediction, in the same words.
fn summary(out: &mut String, r: &Report, pen: Pen) {
    let lines = super::picture::summary(r);
    if lines.is_empty() {
        return;
    }
    for s in lines {
        let ink = match s.ok {
            Some(true) => Ink::GREEN.bold(),
            Some(false) => Ink::RED.bold(),
            None => Ink::BOLD,
        };
        for l in wrap(&s.text, WIDTH) {
            let _ = writeln!(out, "{}", pen.ink(l, ink));
        }
    }
    out.push('\n');
}

fn footer(out: &mut String, r: &Report, pen: Pen, tampered: bool) {
    let mut legend = "#N is the event number of the timeline (`--view timeline` explains \
                  each in full). ─▶ a segment a call caused, ╌▶ one the kernel sent on \
                  its own; a state is what the socket was in after the call above it."
        .to_string();
    if tampered {
        legend.push_str(
            " ▶‖ a segment hc-trace held: it waits at the bar and goes on (‖─▶) \
             where it was delivered; ▶✕ one hc-trace dropped.",
        );
    }
    for l in wrap(&legend, WIDTH) {
        let _ = writeln!(out, "{}", pen.ink(l, Ink::DIM));
    }
    let c = &r.capture;
    let mut cap = format!(
        "capture: {} segments on {} ({})",
        c.packets - c.unparsed,
        c.iface,
        c.filter
    );
    let dropped = c.dropped();
    if dropped > 0 {
        let _ = write!(
            cap,
            ", PACKETS DROPPED: {dropped}, the picture is incomplete"
        );
    } else if c.counters.is_some() {
        cap.push_str(", 0 dropped");
    }
    for l in wrap(&cap, WIDTH) {
        let _ = writeln!(
            out,
            "{}",
            if dropped > 0 {
                pen.ink(l, Ink::RED.bold())
            } else {
                l
            }
        );
    }
    for p in &r.problems {
        let text = format!(
            "✗ could not run as written: line {} `{}`: {}",
            p.line, p.step, p.message
        );
        for l in wrap(&text, WIDTH) {
            let _ = writeln!(out, "{}", pen.ink(l, Ink::RED.bold()));
        }
    }
    if let Some(p) = &c.file {
        for l in wrap(&format!("saved: {}", p.display()), WIDTH) {
            let _ = writeln!(out, "{l}");
        }
    }
    if let Some(sig) = &r.interrupted {
        let text = format!("interrupted by {sig}: the picture shows what happened until then");
        for l in wrap(&text, WIDTH) {
            let _ = writeln!(out, "{}", pen.ink(l, Ink::RED.bold()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hc_core::correlate::Event;
    use hc_core::testkit::{fin_dropped, shut_wr, simultaneous_held, worst};

    fn plain(r: &Report) -> String {
        render(r)
    }

    #[test]
    fn no_line_is_wider_than_80_columns() {
        for r in [shut_wr(), worst(), simultaneous_held(), fin_dropped()] {
            let out = plain(&r);
            for l in out.lines() {
                assert!(
                    strip_len(l) <= WIDTH,
                    "{} columns: {l:?}\n{out}",
                    strip_len(l)
                );
            }
        }
    }

    #[test]
    fn every_segment_has_its_number_and_its_arrow() {
        for r in [shut_wr(), worst()] {
            let out = plain(&r);
            let segs = r.timeline.segments().count();
            let arrows = out.lines().filter(|l| l.contains("▶│") || l.contains("│◀"));
            assert_eq!(arrows.count(), segs, "{out}");
            for (i, _) in r.timeline.segments() {
                assert!(
                    out.lines()
                        .any(|l| l.contains(&format!("│ #{i} ")) || l.contains(&format!(" #{i} "))),
                    "segment #{i} is missing:\n{out}"
                );
            }
        }
    }

    #[test]
    fn arrows_point_from_the_sender() {
        let r = shut_wr();
        let out = plain(&r);
        let lines: Vec<&str> = out.lines().collect();
        for (i, e) in r.timeline.events.iter().enumerate() {
            let Event::Segment(s) = e else { continue };
            let title = lines
                .iter()
                .position(|l| l.contains(&format!(" #{i} ")))
                .unwrap_or_else(|| panic!("#{i} missing"));
            let arrow = lines[title + 1..]
                .iter()
                .find(|l| l.contains('▶') || l.contains('◀'))
                .expect("an arrow under the title");
            match s.from {
                Side::Client => assert!(arrow.contains("▶│") && !arrow.contains('◀'), "{arrow}"),
                Side::Server => assert!(arrow.contains("│◀") && !arrow.contains('▶'), "{arrow}"),
            }
        }
    }

    #[test]
    fn calls_sit_on_their_own_side() {
        let out = plain(&shut_wr());
        let shut = out
            .lines()
            .find(|l| l.contains("shutdown(SHUT_WR)"))
            .expect("the shutdown");
        let bar = shut.find('│').expect("a lifeline");
        assert!(shut.find("shutdown").expect("text") < bar, "{shut}");
        let read = out
            .lines()
            .find(|l| l.contains("read() = 0 EOF"))
            .expect("EOF");
        assert!(read.rfind('│').expect("lifeline") < read.find("read").expect("text"));
        assert!(out.contains("FIN_WAIT1") && out.contains("CLOSE_WAIT"));
    }

    #[test]
    fn a_held_segment_waits_half_way_and_arrives_later() {
        let out = plain(&simultaneous_held());
        // The picture's lines, without the legend under it.
        let lines: Vec<&str> = out.lines().filter(|l| l.contains('│')).collect();
        let waits: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains('‖') && lines[i].contains(" held "))
            .collect();
        let arrives: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains('‖') && !lines[i].contains(" held "))
            .collect();
        assert_eq!((waits.len(), arrives.len()), (2, 2), "{out}");
        // Both leave before either arrives: the FINs cross.
        assert!(waits[1] < arrives[0], "{out}");
        // The client's first half stops at the bar, without reaching the server.
        assert!(lines[waits[0]].contains("▶‖") && !lines[waits[0]].contains("▶│"));
        assert!(lines[arrives[0]].contains("─▶│"), "{}", lines[arrives[0]]);
        assert!(lines[arrives[1]].contains("│◀─"), "{}", lines[arrives[1]]);
        // The bar is in the same column in both halves.
        let col = |l: &str| l.chars().position(|c| c == '‖');
        assert_eq!(col(lines[waits[0]]), col(lines[arrives[0]]));
        assert_eq!(col(lines[waits[1]]), col(lines[arrives[1]]));
    }

    #[test]
    fn a_dropped_segment_stops_short_with_a_cross() {
        let out = plain(&fin_dropped());
        let dropped = out.lines().find(|l| l.contains("DROPPED")).expect("drop");
        assert!(
            dropped.contains("▶✕") && !dropped.contains("▶│"),
            "{dropped}"
        );
        // Its retransmission reaches the server.
        let lines: Vec<&str> = out.lines().collect();
        let again = lines
            .iter()
            .position(|l| l.contains("retransmits"))
            .expect("the retransmission");
        assert!(lines[again].ends_with("▶│"), "{out}");
    }
}
