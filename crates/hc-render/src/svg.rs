//! `--format svg`: the ladder diagram as a self-contained SVG file, for a
//! student to hand in or print.
//!
//! Written by hand as text (no drawing crate): the picture is a few lines,
//! arrows and words, and plain SVG 1.1 with inline styles opens the same in
//! browsers, Inkscape and rsvg. The arrows slope down a little, as in the
//! textbooks, because a segment takes time to arrive; solid when a call
//! caused the segment, dashed when the kernel sent it on its own.

use super::picture::{rows, wrap, Fate, Row, SegRow};
use hc_core::model::Side;
use hc_core::report::Report;
use std::collections::HashMap;
use std::fmt::Write;

const WIDTH: i32 = 900;
const CLIENT_X: i32 = 300;
const SERVER_X: i32 = 600;
/// Characters that fit beside a lifeline at the font size below.
const SIDE_CHARS: usize = 36;
const LINE: i32 = 17;
/// Characters of 12 px text that fit between the lifelines (300 px apart,
/// 7.2 px a character, a margin each side): notes never cross a lifeline.
const NOTE_CHARS: usize = 38;
/// The same for the 11 px text under an arrow.
const CAUSE_CHARS: usize = 42;
const FONT: &str = "font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\"";

pub fn render(r: &Report) -> String {
    let mut body = String::new();
    let mut y = 30;
    // Title and what the scenario teaches.
    let _ = writeln!(
        body,
        r#"<text x="20" y="{y}" font-size="18" font-weight="bold" {FONT}>hc-trace: {}</text>"#,
        esc(&r.scenario)
    );
    for l in wrap(&r.teaches, 100) {
        y += LINE;
        let _ = writeln!(
            body,
            r##"<text x="20" y="{y}" font-size="12" fill="#444" {FONT}>{}</text>"##,
            esc(&l)
        );
    }
    y += 30;
    // The two participants.
    for (x, name, addr) in [
        (CLIENT_X, "client", r.client),
        (SERVER_X, "server", r.server),
    ] {
        let _ = writeln!(
            body,
            r##"<rect x="{}" y="{}" width="160" height="40" rx="6" fill="#eef3fb" stroke="#335"/>"##,
            x - 80,
            y - 16
        );
        let _ = writeln!(
            body,
            r#"<text x="{x}" y="{}" font-size="14" font-weight="bold" text-anchor="middle" {FONT}>{name}</text>"#,
            y + 2
        );
        if let Some(a) = addr {
            let _ = writeln!(
                body,
                r##"<text x="{x}" y="{}" font-size="11" fill="#444" text-anchor="middle" {FONT}>{}</text>"##,
                y + 17,
                esc(&a.to_string())
            );
        }
    }
    let lifeline_top = y + 24;
    y += 44;

    // Where each held segment left its sender, drawn when it arrives.
    let mut left_at: HashMap<usize, i32> = HashMap::new();
    let rows = rows(r);
    let tampered = rows
        .iter()
        .any(|row| matches!(row, Row::Seg(s) if s.fate != Fate::Delivered));
    for row in rows {
        match row {
            Row::Call(c) => {
                let text = format!("#{} {}", c.event, c.text);
                let colour = if c.failed { "#b00020" } else { "#000" };
                y = side_text(&mut body, c.side, &text, y, colour, "bold");
            }
            Row::State(s) => {
                y = side_text(&mut body, s.side, &s.state, y, "#8a5a00", "normal");
            }
            Row::Seg(s) => y = segment(&mut body, &s, y, &mut left_at),
            Row::Arrival(s) => y = arrival(&mut body, &s, y, &left_at),
            Row::Verdict(v) => {
                let colour = if v.met { "#1b5e20" } else { "#b00020" };
                y = side_text(&mut body, v.side, &v.text, y, colour, "bold");
            }
            Row::Fold(f) => {
                for l in wrap(&format!("⋯ {f}"), NOTE_CHARS) {
                    y += LINE;
                    let _ = writeln!(
                        body,
                        r##"<text x="{}" y="{y}" font-size="12" fill="#1565c0" text-anchor="middle" {FONT}>{}</text>"##,
                        (CLIENT_X + SERVER_X) / 2,
                        esc(&l)
                    );
                }
            }
            Row::Note(n) => {
                for l in wrap(&n, NOTE_CHARS) {
                    y += LINE;
                    let _ = writeln!(
                        body,
                        r##"<text x="{}" y="{y}" font-size="12" font-weight="bold" fill="#8a5a00" text-anchor="middle" {FONT}>{}</text>"##,
                        (CLIENT_X + SERVER_X) / 2,
                        esc(&l)
                    );
                }
            }
        }
    }
    let lifeline_bottom = y + 4;
    y += 28;
    let legend = "#N: event number in the timeline (hc-trace scenario NAME). \
                  Solid arrow: a call caused the segment; dashed: the kernel sent it on its own. \
                  A state is what the socket was in after the call above it.";
    let mut legend = legend.to_string();
    if tampered {
        legend.push_str(
            " A long slanted arrow: hc-trace held the segment from where it left to where \
             it was delivered; an arrow ending in a red cross: hc-trace dropped it.",
        );
    }
    for l in wrap(&legend, 120) {
        let _ = writeln!(
            body,
            r##"<text x="20" y="{y}" font-size="11" fill="#444" {FONT}>{}</text>"##,
            esc(&l)
        );
        y += 15;
    }
    for s in super::picture::summary(r) {
        let colour = match s.ok {
            Some(true) => "#1b5e20",
            Some(false) => "#b00020",
            None => "#000",
        };
        for l in wrap(&s.text, 100) {
            let _ = writeln!(
                body,
                r#"<text x="20" y="{y}" font-size="13" font-weight="bold" fill="{colour}" {FONT}>{}</text>"#,
                esc(&l)
            );
            y += 17;
        }
    }
    for n in super::picture::problems(r) {
        for l in wrap(&n, 120) {
            let _ = writeln!(
                body,
                r##"<text x="20" y="{y}" font-size="11" fill="#b00020" {FONT}>{}</text>"##,
                esc(&l)
            );
            y += 15;
        }
    }
    let height = y + 10;

    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">"#
    );
    let _ = writeln!(
        out,
        "<title>hc-trace {}: ladder diagram</title>",
        esc(&r.scenario)
    );
    out.push_str("<defs>\n");
    for (id, colour) in COLOURS {
        let _ = writeln!(
            out,
            r#"<marker id="head-{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
        );
    }
    out.push_str("</defs>\n");
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    for x in [CLIENT_X, SERVER_X] {
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{lifeline_top}" x2="{x}" y2="{lifeline_bottom}" stroke="#335" stroke-width="2"/>"##
        );
    }
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

/// The colour of each kind of segment, the same families as the terminal's.
const COLOURS: [(&str, &str); 5] = [
    ("rst", "#c62828"),
    ("fin", "#b26a00"),
    ("syn", "#2e7d32"),
    ("data", "#1565c0"),
    ("ack", "#333333"),
];

fn kind(label: &str) -> (&'static str, &'static str) {
    let id = if label.contains("RST") {
        "rst"
    } else if label.contains("FIN") {
        "fin"
    } else if label.contains("SYN") {
        "syn"
    } else if label.starts_with("data") {
        "data"
    } else {
        "ack"
    };
    let colour = COLOURS
        .iter()
        .find(|(k, _)| *k == id)
        .map_or("#333333", |(_, c)| c);
    (id, colour)
}

/// Text beside a lifeline, wrapped; returns the next free y.
fn side_text(
    out: &mut String,
    side: Side,
    text: &str,
    mut y: i32,
    fill: &str,
    weight: &str,
) -> i32 {
    let (x, anchor) = match side {
        Side::Client => (CLIENT_X - 10, "end"),
        Side::Server => (SERVER_X + 10, "start"),
    };
    for l in wrap(text, SIDE_CHARS) {
        y += LINE;
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="{y}" font-size="13" font-weight="{weight}" fill="{fill}" text-anchor="{anchor}" {FONT}>{}</text>"#,
            esc(&l)
        );
    }
    y
}

/// Title above, a sloping arrow, the cause below; returns the next free y.
/// A held segment's arrow is drawn at its arrival (see `arrival`): here it
/// gets its title, its cause and where it left (`left_at`).
fn segment(out: &mut String, s: &SegRow, y: i32, left_at: &mut HashMap<usize, i32>) -> i32 {
    let (id, colour) = kind(&s.label);
    let mid = (CLIENT_X + SERVER_X) / 2;
    let mut title_y = y;
    for l in wrap(&s.title(), NOTE_CHARS) {
        title_y += LINE;
        let _ = writeln!(
            out,
            r#"<text x="{mid}" y="{title_y}" font-size="12" font-weight="bold" fill="{colour}" text-anchor="middle" {FONT}>{}</text>"#,
            esc(&l)
        );
    }
    let (x1, x2) = ends(s);
    let y1 = title_y + 6;
    let y2 = y1 + 14;
    let dash = dash(s);
    match s.fate {
        Fate::Delivered => {
            let _ = writeln!(
                out,
                r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="1.6"{dash} marker-end="url(#head-{id})"/>"#
            );
        }
        Fate::Held { .. } => {
            left_at.insert(s.event, y1);
        }
        // Stops on its way: at a bar half-way (held for good) or short of
        // the receiver with a cross (dropped).
        Fate::HeldForever | Fate::Dropped => {
            let part = if s.fate == Fate::Dropped { 0.8 } else { 0.5 };
            let xe = x1 + ((x2 - x1) as f64 * part) as i32;
            let ye = y1 + ((y2 - y1) as f64 * part) as i32;
            let _ = writeln!(
                out,
                r#"<line x1="{x1}" y1="{y1}" x2="{xe}" y2="{ye}" stroke="{colour}" stroke-width="1.6"{dash}/>"#
            );
            let mark = if s.fate == Fate::Dropped {
                format!(
                    "M{},{} L{},{} M{},{} L{},{}",
                    xe - 6,
                    ye - 6,
                    xe + 6,
                    ye + 6,
                    xe - 6,
                    ye + 6,
                    xe + 6,
                    ye - 6
                )
            } else {
                format!(
                    "M{},{} L{},{} M{},{} L{},{}",
                    xe - 3,
                    ye - 7,
                    xe - 3,
                    ye + 7,
                    xe + 3,
                    ye - 7,
                    xe + 3,
                    ye + 7
                )
            };
            let _ = writeln!(
                out,
                r##"<path d="{mark}" stroke="#b00020" stroke-width="2.4" fill="none"/>"##
            );
        }
    }
    let cause_y = y2 + 14;
    let style = if s.kernel {
        r#" font-style="italic""#
    } else {
        ""
    };
    let mut cause = s.cause.clone();
    if let Some(w) = s.fate.words() {
        cause.push_str(" · ");
        cause.push_str(w);
    }
    let mut cause_y = cause_y;
    for (n, l) in wrap(&cause, CAUSE_CHARS).iter().enumerate() {
        if n > 0 {
            cause_y += 13;
        }
        let _ = writeln!(
            out,
            r##"<text x="{mid}" y="{cause_y}" font-size="11" fill="#555" text-anchor="middle"{style} {FONT}>{}</text>"##,
            esc(l)
        );
    }
    cause_y + 12
}

/// A held segment where it arrived: one slanted arrow from where it left
/// (so two segments held at once cross, as they did), and a caption.
fn arrival(out: &mut String, s: &SegRow, y: i32, left_at: &HashMap<usize, i32>) -> i32 {
    let (id, colour) = kind(&s.label);
    let (x1, x2) = ends(s);
    let y2 = y + LINE;
    let y1 = left_at.get(&s.event).copied().unwrap_or(y2 - 14);
    let dash = dash(s);
    let _ = writeln!(
        out,
        r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="1.6"{dash} marker-end="url(#head-{id})"/>"#
    );
    let mid = (CLIENT_X + SERVER_X) / 2;
    let mut text_y = y2 + 1;
    for l in wrap(&s.arrival_title(), CAUSE_CHARS) {
        text_y += 13;
        let _ = writeln!(
            out,
            r#"<text x="{mid}" y="{text_y}" font-size="11" font-weight="bold" fill="{colour}" text-anchor="middle" {FONT}>{}</text>"#,
            esc(&l)
        );
    }
    text_y + 8
}

/// Where a segment's arrow starts and where it points.
fn ends(s: &SegRow) -> (i32, i32) {
    match s.from {
        Side::Client => (CLIENT_X, SERVER_X),
        Side::Server => (SERVER_X, CLIENT_X),
    }
}

/// Dashed when no call caused the segment.
fn dash(s: &SegRow) -> &'static str {
    if s.kernel {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    }
}

/// Text as XML character data or an attribute value.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\u{a0}' => out.push(' '),
            c if (c as u32) < 0x20 && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hc_core::testkit::{fin_dropped, many_writes, shut_wr, simultaneous_held, worst};

    /// A small well-formedness check: tags balance, attributes are quoted,
    /// `&` only starts an entity. Enough to catch what hand-written XML gets wrong.
    fn well_formed(svg: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            check_text(text)?;
            let after = &rest[lt..];
            let gt = after.find('>').ok_or("a tag is not closed")?;
            let tag = &after[1..gt];
            rest = &after[gt + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => continue,
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag.split_whitespace().next().ok_or("an empty tag")?;
            if tag.matches('"').count() % 2 != 0 {
                return Err(format!("unbalanced quotes in <{tag}>"));
            }
            check_text(tag)?;
            if !self_closing {
                stack.push(name.to_string());
            }
        }
        check_text(rest)?;
        if stack.is_empty() {
            Ok(())
        } else {
            Err(format!("never closed: {stack:?}"))
        }
    }

    fn check_text(t: &str) -> Result<(), String> {
        for (i, _) in t.match_indices('&') {
            let ent = &t[i..t[i..].find(';').map_or(t.len(), |e| i + e + 1)];
            if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&ent) {
                return Err(format!("a raw & at {ent:?}"));
            }
        }
        Ok(())
    }

    #[test]
    fn the_checker_catches_broken_xml() {
        assert!(well_formed("<svg><text>a</text></svg>").is_ok());
        assert!(well_formed("<svg><text>a</svg>").is_err());
        assert!(well_formed("<svg><text>a & b</text></svg>").is_err());
        assert!(well_formed("<svg><line x=\"1/></svg>").is_err());
    }

    #[test]
    fn well_formed_with_every_segment() {
        for r in [shut_wr(), worst(), simultaneous_held(), fin_dropped()] {
            let svg = render(&r);
            well_formed(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
            assert!(svg.starts_with("<?xml"));
            assert!(svg.contains(&format!("hc-trace: {}", esc(&r.scenario))));
            let arrows = svg.matches("<line ").count() - 2; // minus the lifelines
            assert_eq!(arrows, r.timeline.segments().count());
            for (i, _) in r.timeline.segments() {
                assert!(svg.contains(&format!(">#{i} ")), "segment #{i} missing");
            }
        }
    }

    #[test]
    fn arrows_go_from_the_sender_and_kernel_ones_are_dashed() {
        let svg = render(&shut_wr());
        let lines: Vec<&str> = svg.lines().filter(|l| l.starts_with("<line x1=")).collect();
        // The SYN from the client, then the kernel's SYN-ACK from the server.
        let syn = lines.iter().find(|l| l.contains("head-syn")).expect("SYN");
        assert!(syn.contains(&format!("x1=\"{CLIENT_X}\"")) && !syn.contains("dasharray"));
        let synack = lines
            .iter()
            .filter(|l| l.contains("head-syn"))
            .nth(1)
            .expect("SYN-ACK");
        assert!(synack.contains(&format!("x1=\"{SERVER_X}\"")) && synack.contains("dasharray"));
    }

    /// The numbers of an attribute of an SVG element line.
    fn attr(line: &str, name: &str) -> i32 {
        let at = line.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
        line[at..line[at..].find('"').expect("quote") + at]
            .parse()
            .expect("a number")
    }

    #[test]
    fn held_fins_are_slanted_lines_that_cross() {
        let svg = render(&simultaneous_held());
        let fins: Vec<&str> = svg
            .lines()
            .filter(|l| l.starts_with("<line ") && l.contains("head-fin"))
            .collect();
        assert_eq!(fins.len(), 2, "{svg}");
        let (c, s) = (fins[0], fins[1]);
        assert_eq!(attr(c, "x1"), CLIENT_X);
        assert_eq!(attr(s, "x1"), SERVER_X);
        // Crossing: at the client's lifeline the client's FIN is above the
        // server's, at the server's lifeline below it.
        assert!(attr(c, "y1") < attr(s, "y2"), "{c}\n{s}");
        assert!(attr(c, "y2") > attr(s, "y1"), "{c}\n{s}");
        // Each goes down by more than the rows between its send and arrival.
        assert!(attr(c, "y2") - attr(c, "y1") > 3 * LINE);
        // Negative control: an arrow delivered at once slopes by 14 px only.
        let plain = render(&shut_wr());
        let fin = plain
            .lines()
            .find(|l| l.starts_with("<line ") && l.contains("head-fin"))
            .expect("a FIN");
        assert_eq!(attr(fin, "y2") - attr(fin, "y1"), 14);
    }

    #[test]
    fn a_dropped_fin_stops_short_with_a_cross() {
        let svg = render(&fin_dropped());
        let first = svg
            .lines()
            .find(|l| l.starts_with("<line ") && l.contains("#b26a00"))
            .expect("the dropped FIN");
        assert!(!first.contains("marker-end"), "no head: {first}");
        assert!(attr(first, "x2") < SERVER_X - 20, "{first}");
        assert!(svg.contains("<path d=\"M"), "the cross");
        assert!(svg.contains("DROPPED by hc-trace"));
    }

    #[test]
    fn a_long_run_has_a_bounded_height() {
        let svg = render(&many_writes(2000));
        let height: i32 = svg
            .split("height=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
            .and_then(|h| h.parse().ok())
            .expect("a height");
        assert!(height < 20_000, "{height} px");
        // The row that names the cut (wrapped between the lifelines).
        assert!(svg.contains("more rows not drawn"), "the cut is named");
        well_formed(&svg).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn notes_fit_between_the_lifelines() {
        for r in [worst(), simultaneous_held(), fin_dropped()] {
            let svg = render(&r);
            for l in svg.lines().filter(|l| l.contains("text-anchor=\"middle\"")) {
                let text = l.rsplit_once("\">").map_or("", |(_, t)| t);
                let text = text.trim_end_matches("</text>");
                // 7.2 px a character at 12 px: within the 300 px between the lifelines.
                assert!(text.chars().count() <= CAUSE_CHARS, "{text}");
            }
        }
    }
}
