//! Neighbours in one named namespace: a port in use stops a run before it
//! starts, a failed bind() ends a run with exit 1, and a run's capture
//! keeps only its own connections.

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("hct-{tag}-{}", std::process::id());
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip")
            .success());
        Netns(name)
    }

    /// Waits (at most 10 s) until `ss` in the namespace lists a socket in
    /// `state` on `port`.
    fn wait_for(&self, state: &str, port: u16) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.0, "ss", "-Htn", "state", state])
                .arg(format!("( sport = :{port} or dport = :{port} )"))
                .output()
                .expect("ss");
            if !out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no {state} socket on port {port} in {}", self.0);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn start(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .args(["--format", "json", "--no-save"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hc-trace")
}

fn finish(c: Child) -> (i32, String, String) {
    let out = c.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How many connections the run's segments belong to (`conn` of each).
fn connections(r: &Run) -> usize {
    let mut conns: Vec<u64> = r
        .segments()
        .iter()
        .filter_map(|s| s["conn"].as_u64())
        .collect();
    conns.sort_unstable();
    conns.dedup();
    conns.len()
}

fn scenario_file(text: &str) -> std::path::PathBuf {
    let p = temp_path("scenario");
    std::fs::write(&p, text).expect("write scenario");
    p
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn a_port_in_use_stops_the_second_run_before_it_starts() {
    require_root();
    require_tools(&["ip", "ss"]);
    let ns = Netns::new("port");
    let slow = scenario_file(
        "name: slow\nteaches: neighbours\nserver listen\nclient connect\nserver accept\n\
         client sleep 1500\nclient write 10\nclient shutdown SHUT_WR\nserver read-all\nserver close\nclient close\n",
    );
    let a = start(&[
        "run",
        slow.to_str().expect("utf-8"),
        "--netns",
        &ns.0,
        "--port",
        "6401",
    ]);
    ns.wait_for("established", 6401);
    let b = start(&["scenario", "shut-wr", "--netns", &ns.0, "--port", "6401"]);
    let (bcode, bout, berr) = finish(b);
    // Negative control: the same at the same moment on another port runs.
    let c = start(&["scenario", "shut-wr", "--netns", &ns.0, "--port", "6402"]);
    let (ccode, _, cerr) = finish(c);
    let (acode, aout, aerr) = finish(a);
    let _ = std::fs::remove_file(&slow);
    assert_eq!(bcode, 2, "{berr}");
    assert!(
        berr.contains(&format!("port 6401 is in use in namespace {}", ns.0))
            && berr.contains("choose --port"),
        "{berr}"
    );
    assert!(bout.is_empty(), "the second run did not start");
    assert_eq!(ccode, 0, "{cerr}");
    assert_eq!(acode, 0, "{aerr}");
    let r = Run::new(serde_json::from_str(&aout).expect("JSON"));
    assert_eq!(connections(&r), 1, "one connection: {aout}");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn a_failed_bind_ends_the_run_with_exit_1() {
    require_root();
    let twice = scenario_file(
        "name: twice\nteaches: x\nserver listen\nserver listen as again\nclient connect\nserver accept\nclient close\n",
    );
    let (code, out, err) = finish(start(&["run", twice.to_str().expect("utf-8")]));
    let _ = std::fs::remove_file(&twice);
    assert_eq!(code, 1, "{err}");
    let r = Run::new(serde_json::from_str(&out).expect("JSON"));
    assert_eq!(r.calls("server", "listen").len(), 2);
    let failed = r.call("server", "listen", 1);
    assert_eq!(failed["errno"], "EADDRINUSE", "{failed}");
    assert!(
        r.calls("client", "connect").is_empty(),
        "the run stopped there"
    );
    assert!(out.contains("the run stops here"), "{out}");
    // Negative control: one listen, the same steps, exit 0.
    let once = scenario_file(
        "name: once\nteaches: x\nserver listen\nclient connect\nserver accept\nclient close\n",
    );
    let (code, _, err) = finish(start(&["run", once.to_str().expect("utf-8")]));
    let _ = std::fs::remove_file(&once);
    assert_eq!(code, 0, "{err}");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn another_programs_connection_is_left_out_of_the_run() {
    require_root();
    require_tools(&["ip", "ss", "python3"]);
    let ns = Netns::new("foreign");
    let slow = scenario_file(
        "name: slow\nteaches: neighbours\nserver listen\nclient connect\nserver accept\n\
         client sleep 1500\nclient write 10\nclient shutdown SHUT_WR\nserver read-all\nserver close\nclient close\n",
    );
    let a = start(&[
        "run",
        slow.to_str().expect("utf-8"),
        "--netns",
        &ns.0,
        "--port",
        "6411",
    ]);
    ns.wait_for("established", 6411);
    // Someone else connects to the run's listener and talks, during the sleep.
    let foreign = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", "-c"])
        .arg(
            "import socket,time\n\
             s=socket.create_connection(('127.0.0.1',6411))\n\
             s.sendall(b'x'*7)\ntime.sleep(0.2)\ns.close()\n",
        )
        .status()
        .expect("python3");
    assert!(foreign.success());
    let (code, out, err) = finish(a);
    let _ = std::fs::remove_file(&slow);
    assert_eq!(code, 0, "{err}");
    let r = Run::new(serde_json::from_str(&out).expect("JSON"));
    assert_eq!(connections(&r), 1, "only the run's own connection:\n{out}");
    // All of it: handshake, 10 bytes, both FINs, without the other's 7 bytes.
    let data: u64 = r.segments().iter().filter_map(|s| s["len"].as_u64()).sum();
    assert_eq!(data, 10, "{out}");
    // The foreign segments were captured, and left out (said so).
    assert!(
        err.contains("segments of 1 connections on port 6411 that this run did not make"),
        "{err}"
    );
}
