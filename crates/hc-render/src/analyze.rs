//! `analyze` and `watch` in words: the summary table and each connection's
//! story as sentences (the JSON is the story itself, see `hc_core::analyze::story`).
//!
//! Every line of a story names its frame (numbered as Wireshark numbers
//! them) and its absolute time in UTC, as Wireshark's "absolute date and
//! time" (View > Time Display Format, in UTC) shows it, so a line can be
//! found in Wireshark and in logs.

use hc_core::analyze::story::{Close, End, RstKind, Story, Unacked};
use hc_core::model::Nanos;
use hc_core::time::ms;
use std::fmt::Write;

/// The story in a few sentences, as `watch` prints it when a connection closes.
pub fn sentence(s: &Story) -> String {
    let mut out = format!("#{} {} → {}: ", s.id, s.a, s.b);
    match s.active_closer {
        Some(e) => {
            let _ = write!(out, "{} ({}) closed first", e.name(), s.end_addr(e));
        }
        None if s.how() == "refused" => out.push_str("refused"),
        None => out.push_str("no close seen"),
    }
    let _ = write!(
        out,
        " [{}]; frames {}–{}, {} to {}",
        s.how(),
        s.first_frame,
        s.last_frame,
        utc(s.first_ns),
        utc(s.last_ns)
    );
    for f in &s.fins {
        let _ = write!(
            out,
            "\n    FIN from {} {}: {}",
            f.from.name(),
            at(s, f),
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
            "\n    RST from {} {}: {}",
            r.from.name(),
            at(s, r),
            r.why
        );
        if let Some(d) = discarded(r) {
            let _ = write!(out, "\n        {d}");
        }
    }
    for a in &s.anomalies {
        let _ = write!(out, "\n    anomaly: {a}");
    }
    out
}

/// "at +12.345 ms (frame 17, 2024-10-31 14:18:19.771684 UTC)".
fn at(s: &Story, c: &Close) -> String {
    format!(
        "at +{} (frame {}, {})",
        ms(c.t_ns - s.first_ns),
        c.frame,
        utc(c.t_ns)
    )
}

/// What an RST threw away, in words; `None` for a FIN.
fn discarded(r: &Close) -> Option<String> {
    let d = r.discarded?;
    // Worth a line only when something was in flight.
    let some = |u: Option<Unacked>| u.is_some_and(|u| u.bytes > 0);
    if !some(d.sent) && !some(d.received) {
        return None;
    }
    let me = r.from.name();
    let peer = r.from.other().name();
    let part = |u: Option<Unacked>, from: &str, to: &str| match u {
        None => format!("unknown for data from {from} ({to}'s acknowledgments were not captured)"),
        Some(Unacked { bytes: 0, .. }) => format!("nothing from {from} unacknowledged by {to}"),
        Some(Unacked {
            bytes,
            last_frame: Some(f),
        }) => format!(
            "{bytes} B from {from} that {to} had not acknowledged (the last sent in frame {f})"
        ),
        Some(Unacked { bytes, .. }) => {
            format!("{bytes} B from {from} that {to} had not acknowledged")
        }
    };
    Some(format!(
        "discarded in flight: {}; {}",
        part(d.received, peer, me),
        part(d.sent, me, peer)
    ))
}

/// Nanoseconds since the epoch as UTC date and time: six decimals when the
/// last three digits are 0 (a microsecond capture), else nine, as Wireshark
/// shows each capture at its own precision.
pub fn utc(ns: Nanos) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (tod / 3600, tod % 3600 / 60, tod % 60);
    let frac = if frac % 1000 == 0 {
        format!("{:06}", frac / 1000)
    } else {
        format!("{frac:09}")
    };
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}.{frac} UTC")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_as_wireshark_shows_it() {
        // tshark -t ud on zeek's rst-inject-rae.pcap, frame 1.
        assert_eq!(
            utc(1_232_039_471_348_475_000),
            "2009-01-15 17:11:11.348475 UTC"
        );
        // A nanosecond capture keeps its nine digits.
        assert_eq!(
            utc(1_000_000_000_000_000_001),
            "2001-09-09 01:46:40.000000001 UTC"
        );
        assert_eq!(utc(0), "1970-01-01 00:00:00.000000 UTC");
        // Leap day, and a date before the epoch.
        assert_eq!(
            utc(951_782_400 * 1_000_000_000),
            "2000-02-29 00:00:00.000000 UTC"
        );
        assert_eq!(utc(-1_000), "1969-12-31 23:59:59.999999 UTC");
    }
}
