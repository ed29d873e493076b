//! hc-trace's renderers: the same Report as a text timeline or a JSON
//! document, or as a picture (terminal ladder, Mermaid, SVG) built from the
//! same rows, and as the comments of the annotated pcapng. Pure: every
//! renderer returns text or writes to any `io::Write`.
#![forbid(unsafe_code)]

pub mod analyze;
pub mod annotations;
pub mod exec;
pub mod json;
pub mod ladder;
pub mod mermaid;
pub mod paint;
pub mod picture;
pub mod svg;
pub mod table;
pub mod text;
pub mod words;

use hc_core::correlate::{Cause, Part, SegEvent};

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

pub use words::causes_text;

/// Why a run could not be drawn as asked.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("--view ladder is a picture for the terminal; with --format {0} leave --view out (mermaid and svg are ladders already)")]
    ViewNeedsText(&'static str),
    #[error("cannot write the JSON document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
}

/// What a run is drawn as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Mermaid,
    Svg,
}

/// How `Format::Text` draws a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Timeline,
    Ladder,
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Text => "text",
        Format::Json => "json",
        Format::Mermaid => "mermaid",
        Format::Svg => "svg",
    }
}

/// Checked before a run, so a bad combination costs no waiting.
pub fn check(format: Format, view: View) -> Result<(), RenderError> {
    match (format, view) {
        (Format::Text, _) | (_, View::Timeline) => Ok(()),
        (f, View::Ladder) => Err(RenderError::ViewNeedsText(format_name(f))),
    }
}

pub use paint::Style;

/// The run in the format and view asked for, ready to print or save.
pub fn output(
    r: &hc_core::report::Report,
    format: Format,
    view: View,
    style: &Style,
) -> Result<String, RenderError> {
    check(format, view)?;
    Ok(match (format, view) {
        (Format::Text, View::Timeline) => text::render_with(r, style),
        (Format::Text, View::Ladder) => ladder::render_with(r, style),
        (Format::Json, _) => serde_json::to_string_pretty(&json::document(r))? + "\n",
        (Format::Mermaid, _) => mermaid::render(r),
        (Format::Svg, _) => svg::render(r),
    })
}

/// Renders `r` into `out` (a terminal, a file, a buffer).
pub fn render(
    r: &hc_core::report::Report,
    format: Format,
    view: View,
    style: &Style,
    out: &mut impl std::io::Write,
) -> Result<(), RenderError> {
    out.write_all(output(r, format, view, style)?.as_bytes())?;
    Ok(())
}
