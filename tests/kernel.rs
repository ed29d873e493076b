//! The kernel's own word: RST reasons and state changes from tracepoints.
//! Needs root (tracefs): run with `--features privileged` (scripts/test, as
//! root); without the feature these tests are listed as ignored.

mod common;
use common::*;
use serde_json::Value;

/// Every RST of the run with the kernel's reason it carries.
fn rst_reasons(r: &Run) -> Vec<(String, Option<String>)> {
    r.segments()
        .into_iter()
        .filter(|s| Run::has_flag(s, "RST"))
        .map(|s| {
            (
                s["from"].as_str().unwrap_or("").to_string(),
                s["kernel"]["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn states(r: &Run, side: &str) -> Vec<(String, String, i64, Value)> {
    r.events()
        .iter()
        .filter(|e| e["kind"] == "state" && e["side"] == side)
        .map(|e| {
            (
                e["old"].as_str().unwrap().to_string(),
                e["new"].as_str().unwrap().to_string(),
                e["t_ns"].as_i64().unwrap(),
                e["continues_as"].clone(),
            )
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn every_rst_carries_the_reason_the_tracepoint_delivered() {
    // Reading tracepoints needs root.
    require_root();
    for name in ["close-unread", "linger0", "close-early", "refused"] {
        let r = scenario(name);
        assert_eq!(
            r.doc["kernel"]["available"], true,
            "{name}: {}",
            r.doc["kernel"]
        );
        let rsts = rst_reasons(&r);
        assert!(!rsts.is_empty(), "{name} has an RST");
        for (from, reason) in &rsts {
            let reason = reason
                .as_deref()
                .unwrap_or_else(|| panic!("{name}: RST from {from} has no kernel reason"));
            assert!(
                reason.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{reason}"
            );
        }
        // The correlator's cause and the kernel's reason were compared, and agree here.
        for s in r.segments().into_iter().filter(|s| Run::has_flag(s, "RST")) {
            assert_ne!(s["kernel"]["agrees"], false, "{name}: {s}");
        }
        println!("{name}: {rsts:?}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn without_the_tracepoint_source_no_reason_is_claimed() {
    require_root();
    let (code, doc) = run_json(&["scenario", "close-unread", "--no-kernel"]);
    assert_eq!(code, 0);
    let r = Run::new(doc);
    assert_eq!(r.doc["kernel"]["available"], false);
    assert!(rst_reasons(&r).iter().all(|(_, reason)| reason.is_none()));
    assert!(
        states(&r, "client").is_empty(),
        "no state lines without tracepoints"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn shut_wr_shows_the_client_leaving_fin_wait2_when_the_servers_fin_arrives() {
    require_root();
    let r = scenario("shut-wr");
    let fin = r
        .segments()
        .into_iter()
        .find(|s| s["from"] == "server" && Run::has_flag(s, "FIN"))
        .expect("server FIN");
    let t_fin = fin["t_ns"].as_i64().unwrap();
    let client = states(&r, "client");
    let seq: Vec<_> = client
        .iter()
        .map(|(o, n, _, _)| format!("{o}->{n}"))
        .collect();
    // The whole path, as it happened, including what polling after calls cannot see.
    for step in ["ESTABLISHED->FIN_WAIT1", "FIN_WAIT1->FIN_WAIT2"] {
        assert!(seq.iter().any(|s| s == step), "{step} in {seq:?}");
    }
    let (_, new, t, continues) = client
        .iter()
        .find(|(o, _, _, _)| o == "FIN_WAIT2")
        .unwrap_or_else(|| panic!("client leaves FIN_WAIT2: {seq:?}"));
    // The client leaves FIN_WAIT2 on receiving the FIN, in the same softirq
    // that sends its ACK: after the FIN was on the wire, before that ACK
    // (50 µs of slack for the tracepoint clock's mapping to CLOCK_REALTIME).
    // An order, not a duration: a loaded machine may take milliseconds.
    let t_ack = r
        .segments()
        .into_iter()
        .find(|s| s["from"] == "client" && s["t_ns"].as_i64().unwrap_or(0) > t_fin)
        .and_then(|s| s["t_ns"].as_i64())
        .expect("the client's ACK of the server's FIN");
    assert!(
        t_fin - 50_000 <= *t && *t <= t_ack + 50_000,
        "between the server's FIN and the client's ACK ({t_fin} <= {t} <= {t_ack})"
    );
    // Linux 6.18 reports the full socket closing and keeps the connection as a
    // TIME_WAIT minisocket; either way the connection is in TIME_WAIT.
    assert!(
        new == "TIME_WAIT" || continues == "TIME_WAIT",
        "{new} {continues}"
    );
    // The server passes through CLOSE_WAIT and LAST_ACK.
    let server: Vec<_> = states(&r, "server")
        .iter()
        .map(|(_, n, _, _)| n.clone())
        .collect();
    assert!(
        server.contains(&"CLOSE_WAIT".to_string()) && server.contains(&"LAST_ACK".to_string()),
        "{server:?}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn no_tracing_instance_is_left_behind() {
    require_root();
    let _ = scenario("linger0");
    let left: Vec<_> = std::fs::read_dir("/sys/kernel/tracing/instances")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    // Other tests may run at the same time: only finished runs' instances must be gone,
    // so look for instances whose process no longer exists.
    for name in left.iter().filter(|n| n.starts_with("hc-trace-")) {
        let pid = name.trim_start_matches("hc-trace-");
        assert!(
            std::path::Path::new("/proc").join(pid).exists(),
            "instance {name} outlived its process"
        );
    }
}

/// A built-in scenario's JSON with the kernel read by one source
/// (HC_TRACE_KERNEL_SOURCE: `ebpf` or `tracefs`, no fallback to the other).
fn scenario_via(name: &str, source: &str) -> Run {
    let out = std::process::Command::new(bin())
        .args(["scenario", name, "--format", "json", "--no-save"])
        .env("HC_TRACE_KERNEL_SOURCE", source)
        .output()
        .expect("run hc-trace");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name} via {source}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Run::new(serde_json::from_slice(&out.stdout).expect("JSON"))
}

/// The kernel's word on a run, without its times: every RST's reason, and
/// each side's state changes in order.
type Story = (
    Vec<(String, Option<String>)>,
    Vec<(String, String)>,
    Vec<(String, String)>,
);

fn kernel_story(r: &Run) -> Story {
    let st = |side| {
        states(r, side)
            .into_iter()
            .map(|(old, new, _, _)| (old, new))
            .collect::<Vec<_>>()
    };
    (rst_reasons(r), st("client"), st("server"))
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn ebpf_and_tracefs_tell_the_same_kernel_story() {
    require_root();
    for name in [
        "close-unread",
        "linger0",
        "refused",
        "shut-wr",
        "close-early",
    ] {
        let bpf = scenario_via(name, "ebpf");
        let fs = scenario_via(name, "tracefs");
        assert_eq!(
            bpf.doc["kernel"]["source"], "ebpf",
            "{name}: {}",
            bpf.doc["kernel"]
        );
        assert_eq!(
            bpf.doc["kernel"]["lost"], 0,
            "{name}: {}",
            bpf.doc["kernel"]
        );
        assert_eq!(
            fs.doc["kernel"]["source"], "tracefs",
            "{name}: {}",
            fs.doc["kernel"]
        );
        let (a, b) = (kernel_story(&bpf), kernel_story(&fs));
        // (refused: the server never has a socket of the connection.)
        assert!(
            !a.1.is_empty(),
            "{name}: the client's states came through eBPF: {a:?}"
        );
        assert_eq!(a, b, "{name}: eBPF (left) and tracefs (right) differ");
        assert_eq!(
            bpf.doc["kernel"]["events"], fs.doc["kernel"]["events"],
            "{name}"
        );
        println!("{name}: {a:?}");
    }
}
