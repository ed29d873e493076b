//! The summary table of `scenario --all`: one row per run.

use crate::paint::{Ink, Style};
use hc_core::correlate::{Event, SegEvent};
use hc_core::model::{CallKind, Side};
use hc_core::report::Report;
use std::fmt::Write;

/// The summary table of `scenario --all`.
pub fn summary_table(rows: &[SummaryRow], style: &Style) -> String {
    let p = style.pen();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        p.ink(
            format!(
                "{:<18} {:>5} {:>5} {:>5} {:>5}  {:<46} {}",
                "scenario", "C FIN", "C RST", "S FIN", "S RST", "key call", "run"
            ),
            Ink::BOLD
        )
    );
    for r in rows {
        let run = if r.ok {
            p.ink("ok", Ink::GREEN)
        } else {
            p.ink(format!("FAILED ({})", r.why), Ink::RED.bold())
        };
        let _ = writeln!(
            out,
            "{:<18} {:>5} {:>5} {:>5} {:>5}  {:<46} {run}",
            r.scenario, r.c_fin, r.c_rst, r.s_fin, r.s_rst, r.key
        );
    }
    out
}

/// One row of the `--all` summary.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SummaryRow {
    pub scenario: String,
    pub c_fin: usize,
    pub c_rst: usize,
    pub s_fin: usize,
    pub s_rst: usize,
    pub key: String,
    pub ok: bool,
    pub why: String,
}

impl SummaryRow {
    pub fn from_report(r: &Report) -> SummaryRow {
        let fin = |s: &SegEvent| s.seg.flags.fin();
        let rst = |s: &SegEvent| s.seg.flags.rst();
        SummaryRow {
            scenario: r.scenario.clone(),
            c_fin: r.count(Side::Client, fin),
            c_rst: r.count(Side::Client, rst),
            s_fin: r.count(Side::Server, fin),
            s_rst: r.count(Side::Server, rst),
            key: key_result(r),
            ok: r.ok(),
            why: if r.interrupted.is_some() {
                "interrupted".into()
            } else if r.capture.dropped() > 0 {
                "packets dropped".into()
            } else {
                r.problems
                    .first()
                    .map(|p| format!("line {}", p.line))
                    .unwrap_or_default()
            },
        }
    }
}

/// The key call in a few words: `client close() = 0 → RST`.
pub fn key_result(r: &Report) -> String {
    let Some(i) = r.key_call() else {
        return "-".into();
    };
    let Event::Call(c) = &r.timeline.events[i] else {
        return "-".into();
    };
    let ret = match (&c.call.errno, c.call.ret) {
        (Some(e), _) => e.clone(),
        (None, Some(r)) => r.to_string(),
        (None, None) => "?".into(),
    };
    // A read-all step makes several reads: show what the last one returned.
    let last_ret = if c.call.kind == CallKind::Read {
        r.timeline
            .calls()
            .filter(|(_, o)| o.call.line == c.call.line)
            .last()
            .map(|(_, o)| {
                o.call
                    .errno
                    .clone()
                    .unwrap_or_else(|| o.call.ret.unwrap_or(0).to_string())
            })
            .unwrap_or(ret)
    } else {
        ret
    };
    let segs: Vec<&SegEvent> = c
        .caused
        .iter()
        .filter_map(|&s| match &r.timeline.events[s] {
            Event::Segment(s) => Some(s),
            _ => None,
        })
        .collect();
    let wire = match segs.len() {
        0 => "nothing".to_string(),
        1..=WIRE_LISTED => segs
            .iter()
            .map(|s| crate::seg_label(s))
            .collect::<Vec<_>>()
            .join(" "),
        _ => wire_counts(&segs),
    };
    let mut key = format!(
        "{} {} = {last_ret} → {wire}",
        c.call.side,
        c.call.short_name()
    );
    if key.chars().count() > KEY_MAX {
        key = key.chars().take(KEY_MAX - 1).collect::<String>() + "…";
    }
    key
}

/// Up to this many segments of a key call are listed one by one.
const WIRE_LISTED: usize = 4;
/// The key call column is at most this wide, so the table stays bounded.
pub const KEY_MAX: usize = 60;

/// Many segments as kinds with counts, in the order each kind first left:
/// `data ×1022`, `data ×3, FIN ×1, 2 sent again` (the call's own words say
/// how many bytes).
fn wire_counts(segs: &[&SegEvent]) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    // Copies sent again are counted apart, so the bytes are those written.
    let resent = segs
        .iter()
        .filter(|s| s.retransmission_of.is_some())
        .count();
    for s in segs.iter().filter(|s| s.retransmission_of.is_none()) {
        let label = crate::seg_label(s);
        // data(100)+FIN → data+FIN: sizes go into the byte count.
        let kind = match (label.find('('), label.find(')')) {
            (Some(a), Some(b)) if a < b => format!("{}{}", &label[..a], &label[b + 1..]),
            _ => label,
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some(k) => k.1 += 1,
            None => kinds.push((kind, 1)),
        }
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .chain((resent > 0).then(|| format!("{resent} sent again")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_call_column_is_bounded() {
        use hc_core::model::{CallKind, Side, TcpState};
        use hc_core::testkit::{Script, A};
        let mut s = Script::new();
        s.handshake().call(
            Side::Client,
            CallKind::Write,
            "650000",
            650000,
            TcpState::ESTABLISHED,
        );
        for _ in 0..10 {
            s.seg(Side::Client, A, 65000);
        }
        let mut r = s.report("bulk");
        for e in &mut r.timeline.events {
            if let Event::Call(c) = e {
                if c.call.kind == CallKind::Write {
                    c.call.line = Some(7);
                }
            }
        }
        r.key_line = Some(7);
        let key = key_result(&r);
        assert_eq!(key, "client write(650000) = 650000 → data ×10");
        assert!(key.chars().count() <= KEY_MAX);
    }
}
