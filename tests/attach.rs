//! `hc-trace attach PID`: a server the test started, traced while it runs
//! (eBPF, root): its FIN is attributed to its close(). Needs root: run with
//! `--features privileged` (scripts/test).

mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One connection's server: accepts, answers what it read, closes, exits.
const SERVER: &str = r#"
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0)); l.listen(4)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
data = c.recv(100)
c.sendall(b"answer:" + data)
time.sleep(0.2)
c.close()
time.sleep(0.3)
"#;

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn attach_to_a_running_server_attributes_its_fin_to_its_close() {
    require_root();
    require_tool("python3");
    let mut server = Command::new("python3")
        .args(["-c", SERVER])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the server's port");
    let port: u16 = line.trim().parse().expect("a port");
    let mut hc = Command::new(bin())
        .args([
            "attach",
            &server.id().to_string(),
            "--format",
            "json",
            "--no-save",
        ])
        .args(["--duration", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hc-trace attach");
    // Connect only once the programs are attached.
    let mut err = BufReader::new(hc.stderr.take().expect("stderr"));
    let mut said = String::new();
    err.read_line(&mut said).expect("hc-trace's first word");
    assert!(said.contains("attached to pid"), "{said}");
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(b"hello").unwrap();
    let mut got = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"answer:hello");
    drop(c);
    let _ = server.wait();
    let out = hc.wait_with_output().expect("hc-trace's output");
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    assert_eq!(out.status.code(), Some(0), "{rest}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["exec"]["backend"], "ebpf", "{}", doc["exec"]);
    assert_eq!(
        doc["exec"]["status"]["code"], 0,
        "the server's own exit: {}",
        doc["exec"]
    );
    let conns = doc["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1, "{doc:#}");
    let r = Run::new(conns[0].clone());
    assert_eq!(
        r.doc["server"]["addr"],
        format!("127.0.0.1:{port}"),
        "the attached process is the server"
    );
    let close = r.call("server", "close", 0);
    assert!(
        r.caused_flag(close, "FIN"),
        "the server's close() sent its FIN: {close}"
    );
    // Its accept() began before the trace: the calls start at its recv().
    assert!(r.calls("server", "accept").is_empty());
    assert_eq!(r.call("server", "read", 0)["ret"], 5);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn attach_to_no_process_is_a_usage_error() {
    require_root();
    // pid_max is at most 2^22: this pid cannot exist.
    let out = Command::new(bin())
        .args(["attach", "99999999", "--no-save"])
        .output()
        .expect("run hc-trace");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such process"));
}
