//! Faults on purpose: a lost FIN and FINs that cross, shown honestly.

mod common;
use common::*;
use std::process::Command;

fn kernel_states(r: &Run, side: &str) -> Vec<String> {
    r.events()
        .iter()
        .filter(|e| e["kind"] == "state" && e["side"] == side)
        .map(|e| e["new"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn fin_lost_the_retransmitted_fin_comes_from_the_same_shutdown() {
    require_tool("nft");
    let r = scenario("fin-lost");
    let shut = r.call("client", "shutdown", 0);
    let fins: Vec<_> = r.caused_with(shut, "FIN");
    assert_eq!(
        fins.len(),
        2,
        "the shutdown caused the FIN and its retransmission: {shut}"
    );
    assert!(
        fins[0]["tampered"]
            .as_str()
            .unwrap_or("")
            .contains("dropped by hc-trace"),
        "{}",
        fins[0]
    );
    assert_eq!(fins[1]["retransmission_of"], fins[0]["i"]);
    let gap = fins[1]["t_ns"].as_i64().unwrap() - fins[0]["t_ns"].as_i64().unwrap();
    assert!(
        gap > 100_000_000,
        "sent again after the retransmission timer, {gap} ns"
    );
    assert!(
        r.events().iter().any(|e| e["kind"] == "note"),
        "the timeline says what hc-trace did"
    );
    assert_eq!(
        r.calls("server", "read").last().unwrap()["ret"],
        0,
        "the server got the FIN in the end"
    );

    // Negative control: without the fault, one FIN and no retransmission.
    let r2 = scenario_text(&builtin_text("fin-lost").replace("wire drop client FIN\n", ""));
    let fins2: Vec<_> = r2.caused_with(r2.call("client", "shutdown", 0), "FIN");
    assert_eq!(fins2.len(), 1);
    assert!(fins2[0]["tampered"].is_null());
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn simultaneous_close_both_sides_pass_through_closing() {
    require_root();
    require_tool("iptables");
    let r = scenario("simultaneous-close");
    for side in ["client", "server"] {
        let fin = r.caused(r.call(side, "shutdown", 0));
        assert_eq!(fin.len(), 1);
        assert!(
            fin[0]["tampered"]
                .as_str()
                .unwrap_or("")
                .contains("held by hc-trace"),
            "{}",
            fin[0]
        );
    }
    // The kernel's state changes (tracepoints) need root.
    for side in ["client", "server"] {
        assert!(
            kernel_states(&r, side).contains(&"CLOSING".to_string()),
            "{side}: {:?}",
            kernel_states(&r, side)
        );
    }
    // Negative control: without holding, the FINs do not cross and nobody is CLOSING.
    let text = builtin_text("simultaneous-close")
        .replace("wire hold\n", "")
        .replace("wire release\n", "");
    let r2 = scenario_text(&text);
    for side in ["client", "server"] {
        assert!(
            !kernel_states(&r2, side).contains(&"CLOSING".to_string()),
            "{side}"
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn fault_rules_are_removed_from_a_named_namespace() {
    require_root();
    require_tools(&["ip", "nft", "iptables"]);
    let ns = format!("hct-faults-{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success());
    let mut codes = Vec::new();
    for (name, port) in [("fin-lost", "6201"), ("simultaneous-close", "6202")] {
        let (code, _) = run_json(&["scenario", name, "--netns", &ns, "--port", port]);
        codes.push(code);
    }
    let nft = Command::new("ip")
        .args(["netns", "exec", &ns, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    let ipt = Command::new("ip")
        .args(["netns", "exec", &ns, "iptables", "-S", "INPUT"])
        .output()
        .unwrap();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert_eq!(codes, vec![0, 0]);
    assert!(
        String::from_utf8_lossy(&nft.stdout).trim().is_empty(),
        "nft: {}",
        String::from_utf8_lossy(&nft.stdout)
    );
    assert!(
        !String::from_utf8_lossy(&ipt.stdout).contains("NFQUEUE"),
        "iptables: {}",
        String::from_utf8_lossy(&ipt.stdout)
    );
}

/// The tools are looked for before anything runs: no namespace, no privilege.
#[test]
fn without_the_tools_fault_scenarios_fail_clearly() {
    let out = Command::new(bin())
        .args(["scenario", "fin-lost", "--no-save"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs the `nft` command") && err.contains("scripts/setup"),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn without_the_tools_other_scenarios_still_run() {
    let ok = Command::new(bin())
        .args(["scenario", "shut-wr", "--no-save"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
}
