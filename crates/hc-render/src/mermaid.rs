//! `--format mermaid`: the run as a Mermaid `sequenceDiagram`, for a student
//! to paste into a Markdown page (GitHub, GitLab and most wikis draw it).
//!
//! Same rows as the terminal ladder: one message per segment, a note over a
//! side for each call (with the state it left), solid arrows for segments a
//! call caused and dashed ones for those the kernel sent on its own, a cross
//! at the end of an RST. Mermaid reads `#` as the start of an entity, `;` as
//! the end of a statement, `%%` as a comment and `<`/`>` as HTML, so every
//! piece of text goes through `escape`.

use super::picture::{rows_at_most, wrap, Fate, Row, SegRow};
use hc_core::model::Side;
use hc_core::report::Report;
use std::fmt::Write;

/// Mermaid refuses a text longer than its `maxTextSize` (50,000 characters
/// by default, and on GitHub): the diagram is kept under this many bytes.
pub const MAX_TEXT: usize = 45_000;

/// The run as a Mermaid page: at most [`crate::picture::MAX_ROWS`] rows,
/// fewer when their text would pass [`MAX_TEXT`] (the rows left out are
/// named in a note, and the timeline has them all).
pub fn render(r: &Report) -> String {
    let mut max = super::picture::MAX_ROWS;
    loop {
        let out = render_rows(r, &rows_at_most(r, max));
        if out.len() <= MAX_TEXT || max <= 20 {
            return out;
        }
        max /= 2;
    }
}

/// Characters of a note over one side before it breaks onto a new line.
const NOTE_WIDTH: usize = 44;
/// The same for a note over both sides and for a message above an arrow.
const WIDE: usize = 64;

/// `text` wrapped to `width` with Mermaid's line breaks, each line escaped.
fn lines(text: &str, width: usize) -> String {
    wrap(text, width)
        .iter()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join(BR)
}

fn render_rows(r: &Report, rows: &[Row]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    let _ = writeln!(
        out,
        "    title {}",
        escape(&format!("hc-trace {}", r.scenario))
    );
    let _ = writeln!(out, "    participant Client");
    // A run in which hc-trace held or dropped segments gets a lifeline of its
    // own between the two sides, where those segments wait or end.
    if rows
        .iter()
        .any(|row| matches!(row, Row::Seg(s) if s.fate != Fate::Delivered))
    {
        let _ = writeln!(out, "    participant {WIRE} as hc-trace on the wire");
    }
    let _ = writeln!(out, "    participant Server");
    let mut head = lines(&r.teaches, WIDE);
    if let (Some(c), Some(s)) = (r.client, r.server) {
        let _ = write!(head, "{BR}{}", escape(&format!("client {c}, server {s}")));
    }
    let _ = writeln!(out, "    Note over Client,Server: {head}");
    let mut i = 0;
    while i < rows.len() {
        match &rows[i] {
            Row::Call(c) => {
                let mut text = lines(&format!("#{} {}", c.event, c.plain_text()), NOTE_WIDTH);
                // The state the call left goes in the same note: one box per call.
                while let Some(Row::State(s)) = rows.get(i + 1) {
                    if s.side != c.side {
                        break;
                    }
                    let _ = write!(text, "{BR}{}", lines(&format!("→ {}", s.state), NOTE_WIDTH));
                    i += 1;
                }
                let _ = writeln!(out, "    Note over {}: {text}", who(c.side));
            }
            Row::State(s) => {
                let _ = writeln!(
                    out,
                    "    Note over {}: {}",
                    who(s.side),
                    lines(&format!("→ {}", s.state), NOTE_WIDTH)
                );
            }
            Row::Seg(s) => segment(&mut out, s),
            Row::Verdict(v) => {
                let _ = writeln!(
                    out,
                    "    Note over {}: {}",
                    who(v.side),
                    lines(&v.text, NOTE_WIDTH)
                );
            }
            Row::Arrival(s) => {
                let arrow = if s.kernel { "-->>" } else { "->>" };
                let _ = writeln!(
                    out,
                    "    {WIRE}{arrow}{}: {}",
                    who(s.from.other()),
                    lines(&s.arrival_title(), WIDE)
                );
            }
            Row::Note(n) => {
                let _ = writeln!(out, "    Note over Client,Server: {}", lines(n, WIDE));
            }
            Row::Fold(f) => {
                let _ = writeln!(
                    out,
                    "    Note over Client,Server: {}",
                    lines(&format!("⋯ {f}"), WIDE)
                );
            }
        }
        i += 1;
    }
    // What the timeline says under its last line: the lab's and the
    // prediction's score, what could not be run, what is missing.
    for s in super::picture::summary(r) {
        let _ = writeln!(out, "    Note over Client,Server: {}", lines(&s.text, WIDE));
    }
    for n in super::picture::problems(r) {
        let _ = writeln!(out, "    Note over Client,Server: {}", lines(&n, WIDE));
    }
    out
}

/// A line break inside a note or message: Mermaid's own, kept out of `escape`.
const BR: &str = "<br/>";

/// The id of hc-trace's own lifeline, where held segments wait and dropped ones end.
const WIRE: &str = "Wire";

fn who(side: Side) -> &'static str {
    match side {
        Side::Client => "Client",
        Side::Server => "Server",
    }
}

fn segment(out: &mut String, s: &SegRow) {
    // ->> solid, -->> dashed (the kernel on its own), -x / --x: an RST, or
    // a segment dropped on its way; -) / --): held on its way.
    let dash = if s.kernel { "--" } else { "-" };
    let (head, to) = match s.fate {
        Fate::Delivered if s.is_rst() => ("x", who(s.from.other())),
        Fate::Delivered => (">>", who(s.from.other())),
        Fate::Dropped => ("x", WIRE),
        Fate::Held { .. } | Fate::HeldForever => (")", WIRE),
    };
    let mut text = format!("{} · {}", s.title(), s.cause);
    if let Some(w) = s.fate.words() {
        text.push_str(" · ");
        text.push_str(w);
    }
    let _ = writeln!(
        out,
        "    {}{dash}{head}{to}: {}",
        who(s.from),
        lines(&text, WIDE)
    );
    // A reset no call asked for is the surprise of the lesson: say it across both lines.
    if s.kernel && s.is_rst() {
        let _ = writeln!(
            out,
            "    Note over Client,Server: {}",
            lines(
                &format!(
                    "#{} the {} kernel resets the connection on its own",
                    s.event,
                    s.from.name()
                ),
                WIDE
            )
        );
    }
    if s.retransmission {
        let _ = writeln!(
            out,
            "    Note over Client,Server: {}",
            lines(&format!("#{} is a retransmission", s.event), WIDE)
        );
    }
}

/// Text that Mermaid shows as written: its special characters as entity codes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#60;"),
            '>' => out.push_str("#62;"),
            '%' => out.push_str("#37;"),
            '{' => out.push_str("#123;"),
            '}' => out.push_str("#125;"),
            '"' => out.push_str("#34;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hc_core::testkit::{fin_dropped, many_writes, shut_wr, simultaneous_held, worst};

    /// What a line says once the entities and our line breaks are taken out.
    fn bare(line: &str) -> String {
        let mut s = line.replace(BR, " ");
        // Entity codes: #35; and the like.
        while let Some(start) = s.find('#') {
            let Some(len) = s[start..].find(';') else {
                break;
            };
            assert!(
                s[start + 1..start + len]
                    .chars()
                    .all(|c| c.is_ascii_digit()),
                "a raw # in {line:?}"
            );
            s.replace_range(start..start + len + 1, "_");
        }
        s
    }

    #[test]
    fn starts_with_sequence_diagram_and_has_one_message_per_segment() {
        for r in [shut_wr(), worst()] {
            let out = render(&r);
            assert!(out.starts_with("sequenceDiagram\n"));
            let messages: Vec<&str> = out
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    l.starts_with("Client-") || l.starts_with("Server-")
                })
                .collect();
            assert_eq!(messages.len(), r.timeline.segments().count(), "{out}");
            for (i, _) in r.timeline.segments() {
                let n = format!("#35;{i} ");
                assert_eq!(
                    messages.iter().filter(|m| m.contains(&n)).count(),
                    1,
                    "segment #{i}:\n{out}"
                );
            }
        }
    }

    #[test]
    fn no_unescaped_special_characters() {
        for r in [shut_wr(), worst()] {
            let out = render(&r);
            for line in out.lines().skip(1) {
                let b = bare(line);
                // The arrow of a message is the only place for a '>' outside text.
                let text = match b.split_once(": ") {
                    Some((head, text)) => {
                        assert!(!head.contains(';'), "{line}");
                        text.to_string()
                    }
                    None => {
                        let l = line.trim_start();
                        assert!(
                            l.starts_with("participant ") || l.starts_with("title "),
                            "{line}"
                        );
                        continue;
                    }
                };
                for bad in [';', '<', '>', '%', '{', '}', '"', '#'] {
                    assert!(!text.contains(bad), "{bad:?} in {line:?}");
                }
            }
            // The worst case's header holds every special character there is.
            let _ = out;
        }
        assert_eq!(escape("a#b;c<d>e%"), "a#35;b#59;c#60;d#62;e#37;");
    }

    #[test]
    fn arrows_say_who_sent_and_who_caused() {
        let out = render(&shut_wr());
        assert!(out.contains("Client->>Server: #35;2 SYN seq 0 · connect() #35;5"));
        assert!(out.contains("Server-->>Client: #35;3 SYN-ACK seq 0 ack 1 · kernel: answers #35;2"));
        assert!(out.contains("Note over Client: #35;10 shutdown(SHUT_WR) = 0<br/>→ FIN_WAIT1"));
        let w = render(&worst());
        assert!(w.contains("Client--xServer: #35;13 RST"), "{w}");
        assert!(w.contains("Note over Client,Server: #35;13 the client kernel resets"));
    }

    #[test]
    fn a_dropped_fin_ends_on_the_wire_with_a_cross() {
        let out = render(&fin_dropped());
        assert!(
            out.contains("participant Wire as hc-trace on the wire"),
            "{out}"
        );
        let dropped = out
            .lines()
            .find(|l| l.contains(" FIN seq 1 ack 1 · shutdown(SHUT_WR)"))
            .expect("the first FIN");
        assert!(
            dropped.trim_start().starts_with("Client-xWire: "),
            "{dropped}"
        );
        assert!(dropped.contains("DROPPED by hc-trace"), "{dropped}");
        let again = out
            .lines()
            .find(|l| l.contains("retransmits"))
            .expect("the retransmission");
        assert!(
            again.trim_start().starts_with("Client->>Server: "),
            "{again}"
        );
        // Negative control: no fault, no lifeline for hc-trace.
        assert!(!render(&shut_wr()).contains("Wire"));
    }

    #[test]
    fn held_fins_wait_on_the_wire_and_arrive_after_both_left() {
        let out = render(&simultaneous_held());
        let pos = |p: &str| {
            out.lines()
                .position(|l| l.trim_start().starts_with(p))
                .unwrap_or_else(|| panic!("{p}:\n{out}"))
        };
        let c_left = pos("Client-)Wire: ");
        let s_left = pos("Server-)Wire: ");
        let c_in = pos("Wire->>Server: ");
        let s_in = pos("Wire->>Client: ");
        assert!(c_left < s_left && s_left < c_in && c_in < s_in, "{out}");
    }

    #[test]
    fn a_long_run_stays_under_mermaids_limit_and_names_what_it_leaves_out() {
        let r = many_writes(2000);
        let out = render(&r);
        assert!(out.len() <= MAX_TEXT, "{} bytes", out.len());
        assert!(out.contains("more rows not drawn here"), "the cut is named");
        // Its beginning and its end are drawn: the SYN and the FIN.
        assert!(
            out.contains(" SYN seq 0 ") && out.contains(" FIN seq "),
            "{out}"
        );
        // Negative control: a short run is drawn whole.
        assert!(!render(&shut_wr()).contains("not drawn"));
    }

    #[test]
    fn the_title_is_mermaids_own_and_long_notes_are_wrapped() {
        let out = render(&worst());
        assert!(out
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("    title hc-trace ")));
        for l in out.lines() {
            for part in l.split(BR) {
                // A line of a note or message, its entities counted as one character.
                let shown = bare(part);
                assert!(shown.chars().count() <= 140, "{part}");
            }
        }
    }
}
