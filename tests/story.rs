//! The story's self-check (hc_core::check) on real runs: every built-in
//! scenario and every probe in scenarios/probes/, several runs each (the
//! timing differs run to run: loopback, timers, the scheduler). Any
//! violation fails, naming the run, the invariant and the events; the
//! figures are printed either way (`--nocapture` shows them).
//!
//! And tshark's own TCP analysis of the saved captures: its flow flags
//! (zero window, window probe and its ACK, keep-alive, window update,
//! window full, duplicate ACK) and its retransmission flag agree with ours
//! on every segment.
//!
//! Needs root (network namespaces, capture, faults) and tshark: these run
//! with `--features privileged` (scripts/test) and are ignored otherwise.

mod common;
use common::{bin, require_root, require_tools, temp_path, Run};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// How many times each scenario runs (HC_TRACE_STORY_RUNS overrides).
fn runs() -> usize {
    std::env::var("HC_TRACE_STORY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// `scenario NAME` for the built-ins, `run FILE` for the probes.
fn all_scenarios() -> Vec<(String, Vec<String>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for (dir, builtin) in [("scenarios", true), ("scenarios/probes", false)] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .expect("scenario folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "scenario"))
            .collect();
        names.sort();
        for p in names {
            let stem = p.file_stem().expect("a name").to_string_lossy().to_string();
            let args = if builtin {
                vec!["scenario".to_string(), stem.clone()]
            } else {
                vec!["run".to_string(), p.to_string_lossy().to_string()]
            };
            out.push((
                if builtin {
                    stem
                } else {
                    format!("probes/{stem}")
                },
                args,
            ));
        }
    }
    assert!(out.len() >= 19, "15 built-ins and 4 probes: {out:?}");
    out
}

/// One run as JSON, its capture saved to `pcap`; stderr kept for the message.
fn run(args: &[String], pcap: &PathBuf) -> (Value, String) {
    let out = Command::new(bin())
        .args(args)
        .args(["--format", "json", "-w"])
        .arg(pcap)
        .output()
        .expect("run hc-trace");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    (doc, stderr)
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and tshark: run with --features privileged (scripts/test)"
)]
fn the_self_check_holds_on_every_scenario_and_probe() {
    require_root();
    require_tools(&["nft", "iptables"]);
    let n = runs();
    let mut bad = Vec::new();
    let mut figures = Vec::new();
    let (mut total_runs, mut total_events) = (0, 0);
    for (name, args) in all_scenarios() {
        let mut events = 0;
        let mut violations = 0;
        for k in 0..n {
            let pcap = temp_path("pcapng");
            let (doc, stderr) = run(&args, &pcap);
            let _ = std::fs::remove_file(&pcap);
            events += doc["events"].as_array().map_or(0, Vec::len);
            for v in doc["self_check"].as_array().cloned().unwrap_or_default() {
                violations += 1;
                bad.push(format!("{name} run {}: {v}", k + 1));
            }
            // The warning on stderr says the same as the JSON.
            assert_eq!(
                stderr.matches("warning: story self-check").count(),
                doc["self_check"].as_array().map_or(0, Vec::len),
                "{name}: {stderr}"
            );
        }
        total_runs += n;
        total_events += events;
        figures.push(format!(
            "{name:<32} {n} runs {events:>7} events {violations} violations"
        ));
    }
    eprintln!(
        "story self-check: {total_runs} runs, {total_events} events, {} violations\n{}",
        bad.len(),
        figures.join("\n")
    );
    assert!(bad.is_empty(), "self-check violations:\n{}", bad.join("\n"));
}

/// tshark's `tcp.analysis` flags per frame (1-based frame numbers).
/// tshark's out-of-order flag: asked for, never compared (see its use).
const OUT_OF_ORDER: &str = "tcp.analysis.out_of_order";

/// One row per frame: the asked fields' values (first occurrence; "" when
/// absent), as tshark dissects the capture.
fn tshark_rows(pcap: &PathBuf, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut cols: Vec<String> = l.split('\t').map(str::to_string).collect();
            cols.resize(fields.len(), String::new());
            cols
        })
        .collect()
}

fn tshark_flags(pcap: &PathBuf, fields: &[&str]) -> Vec<BTreeSet<String>> {
    tshark_rows(pcap, fields)
        .into_iter()
        .map(|cols| {
            fields
                .iter()
                .zip(&cols)
                .filter(|(_, v)| !v.is_empty())
                .map(|(f, _)| f.to_string())
                .collect()
        })
        .collect()
}

/// Our flag names, as tshark's fields.
fn field_of(name: &str) -> &'static str {
    match name {
        "ZeroWindow" => "tcp.analysis.zero_window",
        "ZeroWindowProbe" => "tcp.analysis.zero_window_probe",
        "ZeroWindowProbeAck" => "tcp.analysis.zero_window_probe_ack",
        "Keep-Alive" => "tcp.analysis.keep_alive",
        "Keep-Alive ACK" => "tcp.analysis.keep_alive_ack",
        "Window Update" => "tcp.analysis.window_update",
        "Window Full" => "tcp.analysis.window_full",
        "Dup ACK" => "tcp.analysis.duplicate_ack",
        other => panic!("a flag tshark does not have: {other}"),
    }
}

/// Per frame (0-based), from tshark's own dissection: whether an earlier
/// frame of the same direction carried any of its sequence space. A frame
/// that repeats nothing the capture saw is no retransmission in these runs
/// (the capture starts before the SYN and drops nothing: the runs check
/// it), whatever tshark's timing heuristic calls it.
fn repeats_earlier_bytes(pcap: &PathBuf) -> Vec<bool> {
    let fields = [
        "ip.src",
        "ipv6.src",
        "tcp.srcport",
        "tcp.seq",
        "tcp.len",
        "tcp.flags.syn",
        "tcp.flags.fin",
    ];
    let mut carried: std::collections::HashMap<String, Vec<(u64, u64)>> = Default::default();
    tshark_rows(pcap, &fields)
        .into_iter()
        .map(|c| {
            let num = |i: usize| c[i].parse::<u64>().unwrap_or(0);
            let flag = |i: usize| matches!(c[i].as_str(), "1" | "True");
            let from = format!("{}{}:{}", c[0], c[1], c[2]);
            let start = num(3);
            let end = start + num(4) + u64::from(flag(5)) + u64::from(flag(6));
            if end == start {
                return false;
            }
            let seen = carried.entry(from).or_default();
            let repeats = seen.iter().any(|&(a, b)| a < end && start < b);
            seen.push((start, end));
            repeats
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and tshark: run with --features privileged (scripts/test)"
)]
fn flow_labels_agree_with_tshark() {
    require_root();
    require_tools(&["tshark", "nft", "iptables"]);
    const FIELDS: [&str; 9] = [
        "tcp.analysis.zero_window",
        "tcp.analysis.zero_window_probe",
        "tcp.analysis.zero_window_probe_ack",
        "tcp.analysis.keep_alive",
        "tcp.analysis.keep_alive_ack",
        "tcp.analysis.window_update",
        "tcp.analysis.window_full",
        "tcp.analysis.duplicate_ack",
        "tcp.analysis.retransmission",
    ];
    let mut disagree = Vec::new();
    let mut ambiguous: Vec<String> = Vec::new();
    let (mut segments, mut flagged) = (0, 0);
    for (name, args) in all_scenarios() {
        let pcap = temp_path("pcapng");
        let (doc, _) = run(&args, &pcap);
        let mut asked = FIELDS.to_vec();
        asked.push(OUT_OF_ORDER);
        let theirs = tshark_flags(&pcap, &asked);
        let repeats = repeats_earlier_bytes(&pcap);
        assert_eq!(repeats.len(), theirs.len(), "{name}: one row per frame");
        let _ = std::fs::remove_file(&pcap);
        let r = Run::new(doc);
        // Sequence ranges of which a copy is "out of order" for tshark: its
        // time-based heuristic (a copy within about an RTT of the highest
        // sequence seen is out of order, not a retransmission) and our
        // sequence rule (bytes seen before are sent again) may name the two
        // copies of a loopback range differently; the retransmission flag
        // is not compared for them (counted and printed instead).
        let range =
            |s: &serde_json::Value| (s["from"].to_string(), s["seq"].as_u64(), s["len"].as_u64());
        let ooo: BTreeSet<_> = r
            .segments()
            .iter()
            .filter(|s| {
                let frame = s["frame"].as_u64().unwrap_or(u64::MAX) as usize;
                theirs.get(frame).is_some_and(|t| t.contains(OUT_OF_ORDER))
            })
            .map(|s| range(s))
            .collect();
        for s in r.segments() {
            let frame = s["frame"].as_u64().expect("frame") as usize;
            let mut ours: BTreeSet<String> = s["flow"]
                .as_array()
                .expect("flow")
                .iter()
                .map(|f| field_of(f.as_str().unwrap_or("")).to_string())
                .collect();
            if !s["retransmission_of"].is_null() {
                ours.insert("tcp.analysis.retransmission".into());
            }
            let mut t = theirs.get(frame).cloned().unwrap_or_default();
            t.remove(OUT_OF_ORDER);
            if ooo.contains(&range(s)) {
                let (a, b) = (
                    ours.remove("tcp.analysis.retransmission"),
                    t.remove("tcp.analysis.retransmission"),
                );
                if a != b {
                    ambiguous.push(format!(
                        "{name} #{} (frame {}): ours retransmission {a}, tshark {b} (a copy is out of order for tshark)",
                        s["i"],
                        frame + 1
                    ));
                }
            }
            // tshark's retransmission on bytes no earlier frame carried: a
            // capture-order copy tshark times as too late to be out of order.
            if !repeats[frame]
                && t.contains("tcp.analysis.retransmission")
                && !ours.contains("tcp.analysis.retransmission")
            {
                t.remove("tcp.analysis.retransmission");
                ambiguous.push(format!(
                    "{name} #{} (frame {}): tshark retransmission, but no earlier frame carried its bytes",
                    s["i"],
                    frame + 1
                ));
            }
            segments += 1;
            flagged += usize::from(!t.is_empty());
            if ours != t {
                disagree.push(format!(
                    "{name} #{} (frame {}): ours {ours:?}, tshark {t:?}",
                    s["i"],
                    frame + 1
                ));
            }
        }
    }
    eprintln!(
        "tshark flags: {segments} segments, {flagged} flagged by tshark, {} disagree; \
         {} retransmission flags not compared (a copy of the range is out of order for tshark, \
         or tshark's retransmission repeats no byte the capture carried before)",
        disagree.len(),
        ambiguous.len()
    );
    for a in &ambiguous {
        eprintln!("  {a}");
    }
    // Not a comparison of two empty lists: the probes make tshark flag plenty.
    assert!(flagged > 50, "tshark flagged only {flagged} segments");
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}
