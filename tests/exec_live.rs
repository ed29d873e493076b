//! A traced run cut up while it runs (`hc_core::exec::live`, what `hc-trace
//! exec` does) tells the same stories as the whole recording assembled at
//! once (`hc_core::exec::assemble`, what the snapshots pin): every exec
//! recording is replayed both ways and each connection's timeline compared
//! line by line. No privileges needed.

use hc_core::exec::{self, live, ExecRecording};
use hc_render::text;
use std::path::Path;

fn recordings() -> Vec<(String, ExecRecording)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recordings");
    let mut out: Vec<(String, ExecRecording)> = std::fs::read_dir(dir)
        .expect("recordings")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_stem()?.to_str()?.to_string();
            if !name.starts_with("exec-") {
                return None;
            }
            let text = std::fs::read_to_string(&p).ok()?;
            Some((
                name,
                serde_json::from_str(&text).expect("an exec recording"),
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 5, "the exec recordings are there");
    out
}

fn lines(r: &hc_core::report::Report) -> Vec<String> {
    let style = hc_render::Style::default();
    text::event_lines(r, &style, r.timeline.t0)
        .into_iter()
        .map(|(_, l)| l)
        .collect()
}

#[test]
fn every_exec_recording_tells_the_same_story_live_and_whole() {
    for (name, rec) in recordings() {
        let (whole, _) = exec::assemble(rec.clone());
        let (parts, _) = live::replay(rec);
        assert_eq!(
            parts.len(),
            whole.sections.len(),
            "{name}: as many connections"
        );
        for w in &whole.sections {
            let p = parts
                .iter()
                .find(|p| (p.client, p.server) == (w.client, w.server))
                .unwrap_or_else(|| panic!("{name}: {} live too", w.teaches));
            assert_eq!(lines(p), lines(w), "{name}: {}", w.teaches);
            assert!(p.violations.is_empty(), "{name}: {:?}", p.violations);
        }
    }
}

/// A recording given by path (HC_TRACE_REPLAY), both ways: for debugging.
#[test]
#[ignore = "a debugging aid: HC_TRACE_REPLAY=FILE cargo test --test exec_live -- --ignored"]
fn replay_a_recording_both_ways() {
    let Some(p) = std::env::var_os("HC_TRACE_REPLAY") else {
        return;
    };
    let rec: ExecRecording =
        serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("parse");
    let (whole, _) = exec::assemble(rec.clone());
    let (parts, _) = live::replay(rec);
    for r in whole.sections.iter().chain(&parts) {
        println!("{}\n{}", r.teaches, lines(r).join(""));
    }
}

/// A live run's observations as they came (HC_TRACE_DUMP=FILE hc-trace exec
/// ...), fed again (HC_TRACE_DUMP=FILE cargo test ...): for debugging.
#[test]
#[ignore = "a debugging aid: HC_TRACE_DUMP=FILE cargo test --test exec_live -- --ignored"]
fn feed_a_dump_again() {
    let Some(p) = std::env::var_os("HC_TRACE_DUMP") else {
        return;
    };
    let text = std::fs::read_to_string(p).expect("read");
    let ctx = hc_core::exec::sections::Context {
        command: "dump".into(),
        namespace: "dump".into(),
        iface: "lo".into(),
        counters: None,
        snaplen: 65600,
        interrupted: None,
        keep_all: true,
    };
    let mut l = live::Live::new(ctx, 1, 1_000_000_000, None);
    let mut state = |_: &hc_core::model::exec::Sock| None;
    let mut out = Vec::new();
    for line in text.lines() {
        let (t, o) = line.split_once(' ').expect("time and observation");
        l.push(serde_json::from_str(o).expect("an observation"));
        out.extend(l.ready(t.parse().expect("time"), &mut state));
    }
    out.extend(l.finish(&mut state).0);
    for r in &out {
        println!("{}\n{}", r.teaches, lines(r).join(""));
    }
}
