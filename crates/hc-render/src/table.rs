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
                "{:<18} {:>5} {:>5} {:>5} {:>5}  {:<44} {}",
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
            "{:<18} {:>5} {:>5} {:>5} {:>5}  {:<44} {run}",
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
    let wire: Vec<String> = c
        .caused
        .iter()
        .filter_map(|&s| match &r.timeline.events[s] {
            Event::Segment(s) => Some(crate::seg_label(s)),
            _ => None,
        })
        .collect();
    let wire = if wire.is_empty() {
        "nothing".to_string()
    } else {
        wire.join(" ")
    };
    format!(
        "{} {} = {last_ret} → {wire}",
        c.call.side,
        c.call.short_name()
    )
}
