//! SIGKILL at random moments of every fault scenario, in fresh and named
//! namespaces: nothing a killed run leaves behind may change a later run.
//! Each kill is followed by a normal run that must be clean and correct
//! (and must remove, with a note, what the killed run left), and at the end
//! nothing is left: no tracing instance, no fault rule, no temporary file,
//! no namespace, no helper process.
//!
//! The moments are random; the seed is printed, and HCT_KILL_SEED=N
//! repeats a sequence. Run with `--nocapture` to see what each kill left.

mod common;
use common::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// xorshift64*: random enough for moments, repeatable from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Waits (at most 5 s) until the process catches SIGINT and SIGTERM: from
/// then on main() runs, and a kill lands inside the run.
fn wait_for_handler(pid: i32) {
    let want: u64 = (1 << (libc::SIGINT - 1)) | (1 << (libc::SIGTERM - 1));
    for _ in 0..5000 {
        let caught = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))
                    .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            });
        if caught.is_some_and(|m| m & want == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn instance(pid: u32) -> PathBuf {
    Path::new("/sys/kernel/tracing/instances").join(format!("hc-trace-{pid}"))
}

fn in_ns(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The network namespace of a process, as the kernel names it (net:[N]).
fn netns_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Processes still in one of these network namespaces.
fn processes_in(namespaces: &HashSet<String>) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| netns_of(*p).is_some_and(|n| namespaces.contains(&n)))
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            format!("{p} {}", comm.trim())
        })
        .collect()
}

/// What a normal run after a kill must show: the scenario did what it
/// teaches, with the fault it asks for (or, for shut-wr, none).
fn check_correct(name: &str, r: &Run, ctx: &str) {
    match name {
        "fin-lost" => {
            let fins = r.caused_with(r.call("client", "shutdown", 0), "FIN");
            assert_eq!(fins.len(), 2, "{ctx}: the FIN and its retransmission");
            assert!(
                fins[0]["tampered"]
                    .as_str()
                    .unwrap_or("")
                    .contains("dropped by hc-trace"),
                "{ctx}"
            );
            assert_eq!(fins[1]["retransmission_of"], fins[0]["i"], "{ctx}");
        }
        "simultaneous-close" => {
            for side in ["client", "server"] {
                // One FIN; when the hold outlasted the retransmission timer
                // (200 ms, on a loaded machine) copies of it too:
                // held, or sent after the release.
                let fin = r.caused(r.call(side, "shutdown", 0));
                let originals: Vec<_> = fin
                    .iter()
                    .filter(|s| s["retransmission_of"].is_null())
                    .collect();
                assert_eq!(originals.len(), 1, "{ctx}: {side}'s FIN");
                assert!(
                    originals[0]["tampered"]
                        .as_str()
                        .unwrap_or("")
                        .contains("held by hc-trace"),
                    "{ctx}: {side}'s FIN was held"
                );
                let closing = r
                    .events()
                    .iter()
                    .any(|e| e["kind"] == "state" && e["side"] == side && e["new"] == "CLOSING");
                assert!(closing, "{ctx}: {side} went through CLOSING");
            }
        }
        "shut-wr" => {
            let fins = r.caused_with(r.call("client", "shutdown", 0), "FIN");
            assert_eq!(fins.len(), 1, "{ctx}: one FIN, not dropped, not held");
            assert!(fins[0]["tampered"].is_null(), "{ctx}");
            let reads = r.calls("server", "read");
            assert_eq!(
                reads.last().map(|c| &c["ret"]),
                Some(&serde_json::json!(0)),
                "{ctx}: EOF"
            );
        }
        other => panic!("no check for {other}"),
    }
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn sigkill_at_random_moments_leaves_nothing_that_changes_a_later_run() {
    require_root();
    require_tools(&["ip", "nft", "iptables"]);
    let seed = std::env::var("HCT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("HCT_KILL_SEED={seed}");
    let mut rng = Rng(seed);

    let ns = format!("hct-kill-{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .expect("ip")
        .success());
    let dir = temp_path("kill");
    std::fs::create_dir_all(&dir).expect("dir");

    // (scenario, how long a run of it takes, about): kills fall anywhere in it.
    let scenarios = [("fin-lost", 1400u64), ("simultaneous-close", 1000)];
    const KILLS_PER_CASE: usize = 6;
    let mut killed_pids = Vec::new();
    let mut killed_namespaces = HashSet::new();
    let host = netns_of(std::process::id());
    let mut left = [0usize; 4]; // instance, nft table, iptables rule, temp file
    let mut trial = 0;
    let mut kills = 0;
    for named in [false, true] {
        for (name, span) in scenarios {
            let mut real = 0;
            while real < KILLS_PER_CASE {
                trial += 1;
                assert!(
                    trial <= 4 * 3 * KILLS_PER_CASE,
                    "too many runs ended before their kill"
                );
                let file = dir.join(format!("{name}.pcapng"));
                let mut args: Vec<String> = vec!["scenario".into(), name.into(), "-w".into()];
                args.push(file.display().to_string());
                if named {
                    args.extend(["--netns".into(), ns.clone(), "--port".into(), "6501".into()]);
                }
                // tracefs as the kernel source, so a kill can leave a tracing
                // instance for the next run to remove (an eBPF source leaves
                // nothing: its programs go with the process).
                let mut child = Command::new(bin())
                    .env("HC_TRACE_KERNEL_SOURCE", "tracefs")
                    .args(&args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start");
                let pid = child.id();
                wait_for_handler(pid as i32);
                let delay = rng.below(span);
                std::thread::sleep(Duration::from_millis(delay));
                // The run's namespace, once it has entered one (not the host's).
                if let Some(n) = netns_of(pid).filter(|n| Some(n) != host.as_ref()) {
                    killed_namespaces.insert(n);
                }
                // SAFETY: killing our own child.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                let status = child.wait().expect("wait");
                killed_pids.push(pid);
                use std::os::unix::process::ExitStatusExt;
                if status.signal() == Some(libc::SIGKILL) {
                    real += 1;
                    kills += 1;
                }

                // What the kill left.
                let temp = dir.join(format!(".{name}.pcapng.tmp-{pid}"));
                let had = [
                    instance(pid).exists(),
                    named
                        && in_ns(&ns, &["nft", "list", "tables"])
                            .contains(&format!("hc_trace_faults_{pid}")),
                    named
                        && in_ns(&ns, &["iptables", "-S", "INPUT"])
                            .contains(&format!("hc-trace-{pid}")),
                    temp.exists(),
                ];
                for (n, h) in left.iter_mut().zip(had) {
                    *n += usize::from(h);
                }
                let ctx = format!(
                    "trial {trial}: {name} {} killed at +{delay} ms ({status:?}), left {had:?}",
                    if named {
                        "in the named namespace"
                    } else {
                        "in a fresh namespace"
                    }
                );
                eprintln!("{ctx}");

                // The next run: the same fault scenario, or (every other
                // time) shut-wr, which a left rule would break.
                let next = if trial % 2 == 0 { "shut-wr" } else { name };
                let mut nargs: Vec<String> = vec!["scenario".into(), next.into(), "-w".into()];
                nargs.push(file.display().to_string());
                nargs.extend(["--format".into(), "json".into()]);
                if named {
                    nargs.extend(["--netns".into(), ns.clone(), "--port".into(), "6501".into()]);
                }
                let out = Command::new(bin()).args(&nargs).output().expect("next run");
                let err = String::from_utf8_lossy(&out.stderr);
                let ctx = format!("{ctx}; then {next}: exit {:?}\n{err}", out.status.code());
                assert_eq!(out.status.code(), Some(0), "{ctx}");
                let r = Run::new(serde_json::from_slice(&out.stdout).expect("JSON"));
                check_correct(next, &r, &ctx);
                assert!(!instance(pid).exists(), "{ctx}: the instance is gone");
                if had[0] {
                    assert!(
                        err.contains(&format!("hc-trace-{pid}, left by hc-trace process {pid}")),
                        "{ctx}"
                    );
                }
                if had[1] || had[2] {
                    assert!(
                        err.contains(&format!(
                            "by hc-trace process {pid}, which no longer exists"
                        )),
                        "{ctx}: the removal is said"
                    );
                }
                if named {
                    assert!(
                        !in_ns(&ns, &["nft", "list", "tables"]).contains("hc_trace"),
                        "{ctx}"
                    );
                    assert!(
                        !in_ns(&ns, &["iptables", "-S", "INPUT"]).contains("NFQUEUE"),
                        "{ctx}"
                    );
                }
                assert!(!temp.exists(), "{ctx}: no temporary file");
            }
        }
    }
    eprintln!(
        "{trial} runs, {kills} killed (seed {seed}): {} left a tracing instance, {} an nft table, {} an iptables rule, {} a temporary file; every next run was clean and correct and removed them",
        left[0], left[1], left[2], left[3]
    );

    // Nothing left anywhere.
    for pid in &killed_pids {
        assert!(!instance(*pid).exists(), "tracing instance of {pid}");
    }
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "no temporary file: {names:?}"
    );
    assert!(!in_ns(&ns, &["nft", "list", "ruleset"]).contains("hc_trace"));
    assert!(!in_ns(&ns, &["iptables", "-S"]).contains("NFQUEUE"));
    assert!(!in_ns(&ns, &["ip6tables", "-S"]).contains("NFQUEUE"));
    assert!(Command::new("ip")
        .args(["netns", "del", &ns])
        .status()
        .expect("ip")
        .success());
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    assert!(!String::from_utf8_lossy(&list.stdout).contains(&ns));
    // The fresh namespaces of the killed runs: no process is left in any.
    let mut stuck = processes_in(&killed_namespaces);
    for _ in 0..50 {
        if stuck.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        stuck = processes_in(&killed_namespaces);
    }
    assert!(
        stuck.is_empty(),
        "processes left in killed runs' namespaces: {stuck:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(kills >= 20, "at least 20 kills");
}

/// A second Ctrl-C ends the run at once: what it set up (fault rules in
/// a named namespace, the tracing instance) is removed first, and it says
/// so; nothing is printed or saved. One Ctrl-C (the control) ends the run
/// normally: the timeline is printed and the capture saved.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn a_second_ctrl_c_ends_at_once_after_removing_rules_and_trace() {
    require_root();
    require_tools(&["ip", "nft"]);
    let ns = format!("hct-twice-{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .expect("ip")
        .success());
    let dir = temp_path("twice");
    std::fs::create_dir_all(&dir).expect("dir");
    let scenario = dir.join("slow.scenario");
    // The sleep keeps the client busy: after the first Ctrl-C the run waits
    // a while for it, which is when the second one comes.
    std::fs::write(
        &scenario,
        "name: slow\nteaches: x\nserver listen\nclient connect\nserver accept\n\
         wire drop client FIN\nclient sleep 3000\nclient shutdown SHUT_WR\nserver read-all\n",
    )
    .expect("scenario");
    for signals in [2, 1] {
        let file = dir.join(format!("run-{signals}.pcapng"));
        // tracefs as the kernel source: the one that leaves a tracing
        // instance to remove (the eBPF source's programs go with the
        // process, so there is nothing of it to undo).
        let child = Command::new(bin())
            .env("HC_TRACE_KERNEL_SOURCE", "tracefs")
            .arg("run")
            .arg(&scenario)
            .args(["--netns", &ns, "--port", "6502", "-w"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        let pid = child.id();
        let table = format!("hc_trace_faults_{pid}");
        for _ in 0..500 {
            if in_ns(&ns, &["nft", "list", "tables"]).contains(&table) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            in_ns(&ns, &["nft", "list", "tables"]).contains(&table),
            "the fault is set"
        );
        // Into the sleep (the driver waits 60 ms of quiet after the fault).
        std::thread::sleep(Duration::from_millis(400));
        for _ in 0..signals {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = child.wait_with_output().expect("ends");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let ctx = format!(
            "{signals} SIGINT: exit {:?}\n{stdout}\n{stderr}",
            out.status.code()
        );
        assert_eq!(out.status.code(), Some(130), "{ctx}");
        assert!(
            !in_ns(&ns, &["nft", "list", "tables"]).contains("hc_trace"),
            "{ctx}"
        );
        assert!(!instance(pid).exists(), "{ctx}");
        let temps = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(temps, 0, "{ctx}");
        if signals == 2 {
            assert!(
                stderr.contains("second SIGINT: stopped at once after removing")
                    && stderr.contains("fault rule")
                    && stderr.contains("tracing instance"),
                "{ctx}"
            );
            assert!(stdout.is_empty(), "nothing printed: {ctx}");
            assert!(!file.exists(), "nothing saved: {ctx}");
        } else {
            assert!(stdout.contains("interrupted by SIGINT"), "{ctx}");
            assert!(file.exists(), "saved: {ctx}");
        }
    }
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let _ = std::fs::remove_dir_all(&dir);
}
