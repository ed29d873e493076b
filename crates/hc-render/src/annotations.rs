//! The timeline as pcapng comments: Wireshark shows each packet's cause in
//! `frame.comment`, and the section comment tells the whole run, including
//! the calls that put nothing on the wire (they have no packet of their own).

use super::{causes_text, seg_label};
use hc_core::correlate::Event;
use hc_core::exec::ExecRun;
use hc_core::report::Report;
use std::fmt::Write;

/// One comment per captured frame (indexed by frame number), None for frames
/// that are not in the timeline. Calls made since the previous packet are
/// listed in the comment of the next one, so Wireshark shows them in order.
pub fn frame_comments(r: &Report, frames: usize) -> Vec<Option<String>> {
    let mut out = vec![None; frames];
    for (frame, text) in frame_comment_list(r) {
        if let Some(slot) = out.get_mut(frame) {
            *slot = Some(text);
        }
    }
    out
}

/// The comments of the frames in the timeline, as (frame, comment).
pub fn frame_comment_list(r: &Report) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for (i, e) in r.timeline.events.iter().enumerate() {
        match e {
            Event::Call(_) => pending.push(format!("#{i} {}", call_summary(r, i))),
            Event::Entry(en) => {
                if let Some(c) = r.timeline.call(en.call) {
                    pending.push(format!(
                        "#{i} {} {} … (returns at #{})",
                        c.side,
                        c.entry_text(),
                        en.call
                    ));
                }
            }
            Event::Table(t) => pending.push(format!(
                "#{i} {} kernel table: the closed connection {}",
                t.side,
                t.state
                    .map_or("is gone".to_string(), |s| format!("is in {}", s.name()))
            )),
            Event::Note(n) => pending.push(format!("#{i} {}", n.text)),
            Event::State(st) => pending.push(format!(
                "#{i} {} kernel state {} → {}",
                st.side,
                st.old.name(),
                st.new.name()
            )),
            Event::Segment(s) => {
                let mut text = format!(
                    "#{i} {} {} → {}: {}",
                    seg_label(s),
                    s.from,
                    s.from.other(),
                    causes_text(&r.timeline, s)
                );
                if let Some(t) = &s.tampered {
                    let _ = write!(text, "; {}", crate::words::tamper_text(s, t, r.timeline.t0));
                }
                if let Some(k) = &s.kernel {
                    let _ = write!(text, "; {}", crate::text::kernel_rst_text(k));
                }
                if !pending.is_empty() {
                    let _ = write!(text, "\nbefore this packet: {}", pending.join(" | "));
                    pending.clear();
                }
                out.push((s.seg.frame, text));
            }
        }
    }
    out
}

/// `client shutdown(4, SHUT_RD) = 0 ⇒ nothing on the wire · state ESTABLISHED`
pub fn call_summary(r: &Report, i: usize) -> String {
    let Some(Event::Call(c)) = r.timeline.events.get(i) else {
        return String::new();
    };
    let call = &c.call;
    let ret = match (&call.errno, call.ret) {
        (Some(e), _) => format!(" = -1 {e}"),
        (None, Some(v)) if !call.text.contains(" = ") => format!(" = {v}"),
        _ => String::new(),
    };
    let wire = crate::words::sent_text(&r.timeline, i, &c.caused, &c.sent)
        .unwrap_or_else(|| "nothing on the wire".to_string());
    let state = crate::words::state_text(c, crate::paint::Pen { on: false });
    let mut t = format!("{} {}{ret}", call.side, call.text);
    if c.entry.is_some() {
        let _ = write!(t, ", after {}", hc_core::time::ms(call.end - call.start));
        if let Some(w) = c.woke_by {
            let _ = write!(t, " (woken by #{w})");
        }
    }
    let _ = write!(t, " ⇒ {wire}");
    if let Some(st) = state {
        let _ = write!(t, " · {st}");
    }
    if let Some(e) = c.eof {
        let _ = write!(t, " ({})", crate::words::eof_text(&r.timeline, e));
    }
    t
}

/// The section header comment: what ran, where, and every call in order.
pub fn section_comment(r: &Report) -> String {
    let mut s = format!(
        "hc-trace {} scenario {} ({})\n{}\n",
        env!("CARGO_PKG_VERSION"),
        r.scenario,
        r.origin,
        r.teaches
    );
    if let (Some(c), Some(sv)) = (r.client, r.server) {
        let _ = writeln!(s, "client {c}, server {sv}; {}", r.namespace);
    }
    let _ = writeln!(
        s,
        "Packet comments give each segment's cause; #N numbers are the timeline's event numbers."
    );
    let _ = writeln!(s, "Calls:");
    for (i, _) in r.timeline.calls() {
        let _ = writeln!(s, "  #{i} {}", call_summary(r, i));
    }
    let silent: Vec<String> = r
        .timeline
        .calls()
        .filter(|(_, c)| {
            c.caused.is_empty()
                && c.sent.is_empty()
                && c.call.kind != hc_core::model::CallKind::Sleep
        })
        .map(|(i, c)| format!("#{i} {} {}", c.call.side, c.call.text))
        .collect();
    if !silent.is_empty() {
        let _ = writeln!(
            s,
            "Calls that put nothing on the wire: {}",
            silent.join("; ")
        );
    }
    s
}

/// The section header comment of an exec run: what ran and, connection
/// by connection, every call in order (the first [`SUMMARY_CONNECTIONS`]
/// connections; each packet's own comment covers the rest).
pub fn exec_section_comment(run: &ExecRun) -> String {
    let mut c = ExecComments::new(run.kept);
    for r in &run.sections {
        c.add(r);
    }
    c.finish(run, run.kept).0
}

/// One comment per captured frame of an exec run: each connection's
/// comments, prefixed with its number when there are several.
pub fn exec_frame_comments(run: &ExecRun, frames: usize) -> Vec<Option<String>> {
    let mut c = ExecComments::new(frames);
    for r in &run.sections {
        c.add(r);
    }
    c.finish(run, frames).1
}

/// How many connections the exec section comment lists call by call.
pub const SUMMARY_CONNECTIONS: usize = 1000;

/// An exec run's pcapng comments, gathered as its sections are built one
/// at a time: only the comments themselves are kept, not the sections.
pub struct ExecComments {
    /// Each frame's connection number and comment.
    frames: Vec<Option<(usize, String)>>,
    calls: String,
    n: usize,
}

impl ExecComments {
    /// For a capture of (at least) `frames` frames.
    pub fn new(frames: usize) -> ExecComments {
        ExecComments {
            frames: vec![None; frames],
            calls: String::new(),
            n: 0,
        }
    }

    /// The next connection's comments.
    pub fn add(&mut self, r: &Report) {
        self.n += 1;
        let n = self.n;
        if n <= SUMMARY_CONNECTIONS {
            let _ = writeln!(self.calls, "Connection {n}: {}", r.teaches);
            for (i, _) in r.timeline.calls() {
                let _ = writeln!(self.calls, "  #{i} {}", call_summary(r, i));
            }
        }
        for (frame, c) in frame_comment_list(r) {
            if self.frames.len() <= frame {
                self.frames.resize(frame + 1, None);
            }
            self.frames[frame] = Some((n, c));
        }
    }

    /// The section comment and one comment per frame (of `frames`), each
    /// led by its connection's number when the run had more than one.
    pub fn finish(self, run: &ExecRun, frames: usize) -> (String, Vec<Option<String>>) {
        let mut s = format!(
            "hc-trace {} exec: {}\n{}\nPacket comments give each segment's cause; #N numbers are event numbers within the packet's connection.\n",
            env!("CARGO_PKG_VERSION"),
            run.command.join(" "),
            crate::exec::outcome_line(run)
        );
        s.push_str(&self.calls);
        if self.n > SUMMARY_CONNECTIONS {
            let _ = writeln!(
                s,
                "… and {} more connections: each packet's comment names its connection and cause.",
                self.n - SUMMARY_CONNECTIONS
            );
        }
        let several = self.n > 1;
        let mut out: Vec<Option<String>> = self
            .frames
            .into_iter()
            .map(|f| {
                f.map(|(n, c)| {
                    if several {
                        format!("[connection {n}] {c}")
                    } else {
                        c
                    }
                })
            })
            .collect();
        out.resize(frames, None);
        (s, out)
    }
}
