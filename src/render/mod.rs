//! Renderers: the same Report as a text timeline or a JSON document.

pub mod annotations;
pub mod json;
pub mod text;

use crate::correlate::{Cause, Part, SegEvent};

/// A segment in one word or two, as the summary and the arrows show it:
/// `SYN`, `SYN-ACK`, `data(100)`, `data(100)+FIN`, `RST`, `ACK`.
pub fn seg_label(s: &SegEvent) -> String {
    let f = s.seg.flags;
    let mut parts = Vec::new();
    if f.syn() {
        parts.push(if f.ack() {
            "SYN-ACK".to_string()
        } else {
            "SYN".to_string()
        });
    }
    if s.seg.len > 0 {
        parts.push(format!("data({})", s.seg.len));
    }
    if f.fin() {
        parts.push("FIN".into());
    }
    if f.rst() {
        parts.push("RST".into());
    }
    if parts.is_empty() {
        parts.push("ACK".into());
    }
    parts.join("+")
}

/// The cause that names the segment best when only one can be shown: the
/// control flags (RST, FIN, SYN) say more than the data or the ACK.
pub fn primary_cause(s: &SegEvent) -> Option<&Cause> {
    const ORDER: [Part; 6] = [
        Part::Rst,
        Part::Fin,
        Part::Syn,
        Part::SynAck,
        Part::Data,
        Part::Ack,
    ];
    ORDER
        .iter()
        .find_map(|p| s.causes.iter().find(|c| c.part == *p))
}

/// All causes of a segment in one line, as the pcapng comment and JSON `why` carry them.
pub fn causes_text(s: &SegEvent) -> String {
    let mut out: Vec<String> = s.causes.iter().map(|c| c.why.clone()).collect();
    if let Some(a) = &s.also_acks {
        out.push(format!("also ACKs {a}"));
    }
    out.join("; ")
}
