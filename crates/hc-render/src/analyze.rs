//! `analyze` and `watch` in words: the summary table and each connection's
//! story as sentences (the JSON is the story itself, see `hc_core::analyze::story`).

use hc_core::analyze::story::{End, RstKind, Story};
use hc_core::model::Nanos;
use hc_core::time::ms;
use std::fmt::Write;

/// The story in a few sentences, as `watch` prints it when a connection closes.
pub fn sentence(s: &Story) -> String {
    let mut out = format!("#{} {} → {}: ", s.id, s.a, s.b);
    let rel = |t: Nanos| ms(t - s.first_ns);
    match s.active_closer {
        Some(e) => {
            let _ = write!(out, "{} ({}) closed first", e.name(), s.end_addr(e));
        }
        None if s.how() == "refused" => out.push_str("refused"),
        None => out.push_str("no close seen"),
    }
    let _ = write!(out, " [{}]", s.how());
    for f in &s.fins {
        let _ = write!(
            out,
            "\n    FIN from {} at +{}: {}",
            f.from.name(),
            rel(f.t_ns),
            f.why
        );
    }
    if let Some(h) = s.half_close {
        let _ = write!(
            out,
            "\n    half-close: {} B after the first FIN, over {}",
            h.bytes_after_first_fin,
            ms(h.duration_ns)
        );
    }
    for r in &s.rsts {
        let _ = write!(
            out,
            "\n    RST from {} at +{}: {}",
            r.from.name(),
            rel(r.t_ns),
            r.why
        );
    }
    for a in &s.anomalies {
        let _ = write!(out, "\n    anomaly: {a}");
    }
    out
}

/// The summary table's header line.
pub fn table_header() -> String {
    format!(
        "{:>6}  {:<24} {:<24} {:<6} {:<11} {:<18} {:<34} {}",
        "id",
        "a (sent SYN)",
        "b",
        "closer",
        "how",
        "half-close",
        "RST (INFERRED reason)",
        "anomalies"
    )
}

/// One connection as a row of the summary table.
pub fn table_row(s: &Story) -> String {
    let closer = s.active_closer.map_or("-", End::name);
    let half = match s.half_close {
        Some(h) => format!("{} B, {}", h.bytes_after_first_fin, ms(h.duration_ns)),
        None => "-".into(),
    };
    let rst = if s.rsts.is_empty() {
        "-".to_string()
    } else {
        s.rsts
            .iter()
            .map(|r| format!("{}:{}", r.from.name(), r.kind.map_or("?", RstKind::label)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let anomalies = if s.anomalies.is_empty() {
        "-".to_string()
    } else {
        s.anomalies.join("; ")
    };
    format!(
        "{:>6}  {:<24} {:<24} {:<6} {:<11} {:<18} {:<34} {}",
        s.id,
        s.a.to_string(),
        s.b.to_string(),
        closer,
        s.how(),
        half,
        rst,
        anomalies
    )
}
