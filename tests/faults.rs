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
        // One FIN; when the hold outlasted the retransmission timer (200 ms,
        // on a loaded machine) copies of it too:
        // held, or sent after the release.
        let fin = r.caused(r.call(side, "shutdown", 0));
        let originals: Vec<_> = fin
            .iter()
            .filter(|s| s["retransmission_of"].is_null())
            .collect();
        assert_eq!(originals.len(), 1, "{side}: {fin:?}");
        assert!(
            originals[0]["tampered"]
                .as_str()
                .unwrap_or("")
                .contains("held by hc-trace"),
            "{}",
            originals[0]
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

/// A named namespace for one test, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("hct-{tag}-{}", std::process::id());
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        Netns(name)
    }
    fn exec(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Two fault runs at once in one named namespace, on different ports: each
/// has its own table and queue, so neither removes the other's rules.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn neighbours_in_one_namespace_keep_their_own_rules() {
    require_root();
    require_tools(&["ip", "nft", "iptables"]);
    let ns = Netns::new("nb");
    let start = |name: &str, port: &str| {
        Command::new(bin())
            .args(["scenario", name, "--netns", &ns.0, "--port", port])
            .args(["--format", "json", "--no-save"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    for pair in [
        [
            ("simultaneous-close", "6311"),
            ("simultaneous-close", "6312"),
        ],
        [("fin-lost", "6313"), ("simultaneous-close", "6314")],
    ] {
        let children: Vec<_> = pair.iter().map(|(n, p)| start(n, p)).collect();
        for ((name, port), child) in pair.iter().zip(children) {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{name} on {port}: {err}");
            let r = Run::new(serde_json::from_slice(&out.stdout).unwrap());
            let what = if *name == "fin-lost" {
                "dropped by hc-trace"
            } else {
                "held by hc-trace"
            };
            let fins: Vec<_> = r
                .segments()
                .into_iter()
                .filter(|s| Run::has_flag(s, "FIN"))
                .collect();
            assert!(
                fins.iter()
                    .any(|s| s["tampered"].as_str().unwrap_or("").contains(what)),
                "{name} on {port}: its own fault acted: {fins:?}"
            );
        }
    }
    assert!(!ns.exec(&["nft", "list", "tables"]).contains("hc_trace"));
    assert!(!ns.exec(&["iptables", "-S", "INPUT"]).contains("NFQUEUE"));
}

/// Rules a killed run left in a named namespace (this version's and an
/// older one's names) are removed by the next run there, with a note, and
/// the next run's FIN is not eaten by them.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn rules_left_by_a_dead_run_are_removed_by_the_next_one() {
    require_root();
    require_tools(&["ip", "nft", "iptables"]);
    let ns = Netns::new("stale");
    let dead = (400_000u32..)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let table = format!("hc_trace_faults_{dead}");
    // A drop rule for every FIN to the port, and an old version's queue rule.
    ns.exec(&["nft", "add", "table", "inet", &table]);
    ns.exec(&[
        "nft",
        "add",
        "chain",
        "inet",
        &table,
        "input",
        "{ type filter hook input priority 0; }",
    ]);
    ns.exec(&[
        "nft", "add", "rule", "inet", &table, "input", "tcp", "flags", "fin", "tcp", "dport",
        "6321", "drop",
    ]);
    ns.exec(&[
        "iptables",
        "-w",
        "-I",
        "INPUT",
        "-p",
        "tcp",
        "-m",
        "multiport",
        "--ports",
        "6399",
        "-j",
        "NFQUEUE",
        "--queue-num",
        "4242",
    ]);
    let out = Command::new(bin())
        .args(["scenario", "shut-wr", "--netns", &ns.0, "--port", "6321"])
        .args(["--format", "json", "--no-save"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("nft delete table inet {table}")),
        "{err}"
    );
    assert!(err.contains("by an older hc-trace"), "{err}");
    let r = Run::new(serde_json::from_slice(&out.stdout).unwrap());
    let fin = r.caused_with(r.call("client", "shutdown", 0), "FIN");
    assert_eq!(fin.len(), 1, "one FIN, delivered");
    assert!(fin[0]["tampered"].is_null());
    assert!(!ns.exec(&["nft", "list", "tables"]).contains("hc_trace"));
    assert!(!ns.exec(&["iptables", "-S", "INPUT"]).contains("NFQUEUE"));
    // A live process's rules are not touched (this test process is alive).
    let mine = format!("hc_trace_faults_{}", std::process::id());
    ns.exec(&["nft", "add", "table", "inet", &mine]);
    let (code, _) = run_json(&["scenario", "shut-wr", "--netns", &ns.0, "--port", "6322"]);
    assert_eq!(code, 0);
    assert!(ns.exec(&["nft", "list", "tables"]).contains(&mine));
}
