//! `hc-trace exec` on real software nobody here wrote: Python's dual-stack
//! sockets, Node.js `net`, Go, nginx with sendfile, curl against
//! `python3 -m http.server`, refused connects, job control, io_uring, a
//! program that prints a lot, and signals sent to hc-trace itself. Each test
//! says what the timeline must say: which call of which process sent each
//! FIN and RST, and why.
//!
//! The small programs are in tests/fixtures/programs/; nginx, node, go, curl
//! and python3 come from the distribution (scripts/test installs them).
//! Needs root (a private network namespace, the kernel's tracepoints): they
//! run with `--features privileged` (scripts/test) and are ignored otherwise;
//! a missing program then fails the test.

mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Instant;

fn programs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/programs")
}

fn program(name: &str) -> String {
    programs().join(name).display().to_string()
}

/// A port of its own for each test (they run in parallel, each in its own
/// namespace, but a port per test keeps the timelines apart when read).
fn port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(5700);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// What `hc-trace exec --format json -o FILE` left: its exit code, the
/// document, and the program's own standard output.
struct Traced {
    code: i32,
    doc: Value,
    stdout: String,
}

/// Runs `hc-trace exec --no-save --format json -o FILE OPTS -- PROGRAM...`.
fn exec(opts: &[&str], prog: &[&str]) -> Traced {
    require_root();
    let file = temp_path("json");
    let out = Command::new(bin())
        .arg("exec")
        .args(["--no-save", "--format", "json", "-o"])
        .arg(&file)
        .args(opts)
        .arg("--")
        .args(prog)
        .output()
        .expect("run hc-trace");
    let code = out.status.code().unwrap_or(-1);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    let doc = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "hc-trace exec {prog:?} wrote no JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Traced {
        code,
        doc,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

impl Traced {
    /// Every connection, each checked like a scenario run (self-check empty).
    fn connections(&self) -> Vec<Run> {
        self.doc["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .map(|c| Run::new(c.clone()))
            .collect()
    }

    fn only(&self) -> Run {
        let c = self.connections();
        assert_eq!(c.len(), 1, "one connection: {:#}", self.doc);
        c.into_iter().next().expect("one")
    }
}

/// The call that caused the first segment from `from` carrying `flag`.
fn cause_of<'a>(r: &'a Run, from: &str, flag: &str) -> &'a Value {
    let seg = r
        .segments()
        .into_iter()
        .find(|s| s["from"] == from && Run::has_flag(s, flag) && s["retransmission_of"].is_null())
        .unwrap_or_else(|| panic!("no {flag} from the {from}: {:#}", r.doc));
    let i = seg["cause"]["event"]
        .as_u64()
        .unwrap_or_else(|| panic!("the {flag} from the {from} has no call as its cause: {seg}"));
    r.event(i)
}

/// Every data segment of `from` has a call as its cause.
fn every_data_segment_has_its_call(r: &Run, from: &str) {
    for s in r.segments() {
        if s["from"] == from && s["len"].as_u64().unwrap_or(0) > 0 {
            assert!(
                s["cause"]["event"].is_u64(),
                "data from the {from} without a call: {s}"
            );
        }
    }
}

fn pids(r: &Run, side: &str) -> Vec<u64> {
    let mut p: Vec<u64> = r
        .events()
        .iter()
        .filter(|e| e["kind"] == "call" && e["side"] == side)
        .filter_map(|e| e["pid"].as_u64())
        .collect();
    p.sort_unstable();
    p.dedup();
    p
}

/// A shell function, `listening PORT`: waits (at most 20 s) until an IPv4
/// socket listens on PORT, by its LISTEN line in /proc/net/tcp, so no
/// connection is made to find out (a traced server can take seconds to
/// start on a loaded machine; a fixed sleep made these tests flaky).
const LISTENING: &str = "listening() { i=0; \
    while ! grep -q \":$(printf %04X $1) 00000000:0000 0A\" /proc/net/tcp; do \
    i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05; done; };";

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn a_dual_stack_python_server_and_an_ipv4_client_are_one_connection() {
    require_tool("python3");
    let p = port().to_string();
    let t = exec(&[], &["python3", &program("dual_stack.py"), &p]);
    assert_eq!(t.code, 0, "{:#}", t.doc);
    assert!(
        t.stdout.contains("server's peer is ::ffff:127.0.0.1"),
        "the server saw an IPv4-mapped peer: {}",
        t.stdout
    );
    let r = t.only();
    let teaches = r.doc["teaches"].as_str().unwrap_or("");
    assert!(
        teaches.contains("[::ffff:127.0.0.1]"),
        "the program's own view is shown: {teaches}"
    );
    assert!(r.doc["client"]["addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    let fin = cause_of(&r, "client", "FIN");
    assert_eq!(
        (fin["call"].as_str(), fin["args"].as_str()),
        (Some("shutdown"), Some("SHUT_WR"))
    );
    let fin = cause_of(&r, "server", "FIN");
    assert_eq!(fin["call"], "close", "{fin}");
    assert!(
        fin["fd"] != r.call("server", "listen", 0)["fd"],
        "the accepted socket's close, not the listener's: {fin}"
    );
    every_data_segment_has_its_call(&r, "client");
    every_data_segment_has_its_call(&r, "server");
    assert_eq!(pids(&r, "client").len(), 1);
    assert_ne!(pids(&r, "client"), pids(&r, "server"), "two processes");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn node_allow_half_open_answers_after_the_clients_end_and_ends_itself() {
    require_tool("node");
    let p = port().to_string();
    let t = exec(&[], &["node", &program("half_close.js"), &p]);
    assert_eq!(t.code, 0, "{:#}", t.doc);
    assert!(t.stdout.contains("client got got 10 bytes"), "{}", t.stdout);
    let r = t.only();
    // Node's listen(port) is dual-stack: its end is [::ffff:127.0.0.1].
    assert!(r.doc["teaches"]
        .as_str()
        .unwrap_or("")
        .contains("[::ffff:127.0.0.1]"));
    let fin = cause_of(&r, "client", "FIN");
    assert_eq!(
        fin["args"], "SHUT_WR",
        "socket.end() is shutdown(SHUT_WR): {fin}"
    );
    let fin = cause_of(&r, "server", "FIN");
    assert_eq!(
        (fin["call"].as_str(), fin["args"].as_str()),
        (Some("shutdown"), Some("SHUT_WR")),
        "the server's FIN is its own end(), not the listener's close(): {fin}"
    );
    let answer = r
        .segments()
        .into_iter()
        .find(|s| s["from"] == "server" && s["len"].as_u64() == Some(13))
        .expect("the answer");
    let w = r.event(answer["cause"]["event"].as_u64().expect("a call"));
    assert_eq!(
        (w["call"].as_str(), w["ret"].as_i64()),
        (Some("write"), Some(13))
    );
}

/// Builds the Go program once per test binary (go build, caches in a temp dir).
fn go_binary() -> PathBuf {
    require_tool("go");
    let dir = temp_path("go");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("half_close");
    let out = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(programs().join("half_close.go"))
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("path"))
        .env("HOME", &dir)
        .env("GOFLAGS", "-mod=mod")
        .env("GO111MODULE", "off")
        .output()
        .expect("run go build");
    assert!(
        out.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn go_close_write_half_closes_and_a_close_with_unread_data_resets() {
    let bin = go_binary();
    let p = port().to_string();
    let t = exec(&[], &[bin.to_str().expect("path"), &p]);
    assert_eq!(t.code, 0, "{:#}", t.doc);
    assert!(t.stdout.contains("client got got 8 bytes"), "{}", t.stdout);
    let conns = t.connections();
    assert_eq!(conns.len(), 2, "{:#}", t.doc);
    let (first, second) = (&conns[0], &conns[1]);
    for r in &conns {
        assert!(
            r.doc["teaches"]
                .as_str()
                .unwrap_or("")
                .contains("[::ffff:127.0.0.1]"),
            "net.Listen(\":port\") is dual-stack"
        );
    }
    let fin = cause_of(first, "client", "FIN");
    assert_eq!(
        fin["args"], "SHUT_WR",
        "CloseWrite is shutdown(SHUT_WR): {fin}"
    );
    assert_eq!(cause_of(first, "server", "FIN")["call"], "close");
    every_data_segment_has_its_call(first, "client");
    every_data_segment_has_its_call(first, "server");
    // Connection 2: the server closes with the request unread: an RST from close().
    let rst = second
        .segments()
        .into_iter()
        .find(|s| s["from"] == "server" && Run::has_flag(s, "RST"))
        .expect("the server's RST")
        .clone();
    let by = second.event(rst["cause"]["event"].as_u64().expect("the RST has a call"));
    assert_eq!(
        by["call"], "close",
        "close() with unread data, not an answer: {rst}"
    );
    assert_eq!(rst["kernel"]["reason"], "TCP_ABORT_ON_CLOSE", "{rst}");
    assert_ne!(rst["kernel"]["agrees"], false, "{rst}");
}

fn nginx_conf(dir: &Path, port: u16) -> PathBuf {
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\n\
             error_log stderr warn;\npid {d}/nginx.pid;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n  server {{ listen 127.0.0.1:{port}; root {d}/www; }}\n}}\n"
        ),
    )
    .expect("write nginx.conf");
    conf
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn nginx_serves_a_file_with_sendfile_and_each_byte_has_its_call() {
    require_tools(&["nginx", "curl"]);
    let dir = temp_path("nginx");
    std::fs::create_dir_all(dir.join("www")).expect("temp dir");
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("www/file.bin"), &body).expect("write the file");
    let p = port();
    let conf = nginx_conf(&dir, p);
    let got = dir.join("got.bin");
    let script = format!(
        "{LISTENING} nginx -c {c} -e stderr & listening {p}; \
         curl -sS -o {g} http://127.0.0.1:{p}/file.bin; kill -QUIT $!; wait",
        c = conf.display(),
        g = got.display()
    );
    let t = exec(&["--timeout", "20"], &["sh", "-c", &script]);
    assert_eq!(t.code, 0, "{:#}", t.doc);
    assert_eq!(std::fs::read(&got).ok(), Some(body), "curl got the file");
    let r = t.only();
    let sendfile = r
        .calls("server", "write")
        .into_iter()
        .find(|c| c["text"].as_str().unwrap_or("").starts_with("sendfile("))
        .unwrap_or_else(|| panic!("nginx's sendfile() is traced: {:#}", r.doc))
        .clone();
    assert_eq!(sendfile["ret"], 100_000, "{sendfile}");
    let mut body_bytes = 0;
    for s in r.segments() {
        if s["from"] != "server" || s["len"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let by = r.event(
            s["cause"]["event"]
                .as_u64()
                .unwrap_or_else(|| panic!("server data without a call: {s}")),
        );
        let why = s["cause"]["why"].as_str().unwrap_or("");
        if by["text"] == sendfile["text"] {
            body_bytes += s["len"].as_u64().unwrap_or(0);
            assert!(
                why.contains("sendfile(100000)"),
                "named in the cause: {why}"
            );
        } else {
            assert_eq!(by["call"], "write", "the headers: writev: {s}");
        }
    }
    assert_eq!(body_bytes, 100_000, "every byte of the body is sendfile's");
    assert_eq!(
        cause_of(&r, "client", "FIN")["call"],
        "close",
        "curl closes"
    );
    assert_eq!(cause_of(&r, "server", "FIN")["call"], "close");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn curl_and_python_http_server_the_server_half_closes_after_its_answer() {
    require_tools(&["python3", "curl"]);
    let dir = temp_path("www");
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("hello.txt"), "hello from http.server\n").expect("write");
    let p = port();
    let script = format!(
        "python3 -m http.server {p} --directory {d} >/dev/null 2>&1 & sleep 1; \
         curl -sS http://127.0.0.1:{p}/hello.txt; kill $!; wait",
        d = dir.display()
    );
    let t = exec(&["--timeout", "20"], &["sh", "-c", &script]);
    assert_eq!(t.code, 0, "{:#}", t.doc);
    assert_eq!(
        t.stdout, "hello from http.server\n",
        "curl's output, and nothing else"
    );
    let r = t.only();
    // HTTP/1.0: socketserver shuts the connection down for writing after the answer.
    let fin = cause_of(&r, "server", "FIN");
    assert_eq!(
        (fin["call"].as_str(), fin["args"].as_str()),
        (Some("shutdown"), Some("SHUT_WR"))
    );
    assert_eq!(cause_of(&r, "client", "FIN")["call"], "close");
    every_data_segment_has_its_call(&r, "server");
    every_data_segment_has_its_call(&r, "client");
    assert_ne!(pids(&r, "client"), pids(&r, "server"), "curl and python");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn a_refused_connect_is_one_section_with_its_syn_and_the_rst() {
    require_tools(&["python3", "curl"]);
    // curl connects non-blocking (EINPROGRESS), Python blocks (ECONNREFUSED):
    // the second socket only says 0.0.0.0 and a port afterwards.
    let p = port();
    let script = format!(
        "curl -sS http://127.0.0.1:{p}/; python3 -c \"import socket
try:
    socket.create_connection(('127.0.0.1', {p}))
except ConnectionRefusedError as e:
    print('refused')\""
    );
    let t = exec(&[], &["sh", "-c", &script]);
    assert_eq!(t.code, 0, "{:#}", t.doc);
    assert!(t.stdout.contains("refused"), "{}", t.stdout);
    let conns = t.connections();
    assert_eq!(
        conns.len(),
        2,
        "one section each, not calls and wire apart: {:#}",
        t.doc
    );
    for r in &conns {
        let client = r.doc["client"]["addr"].as_str().unwrap_or("").to_string();
        assert!(
            client.starts_with("127.0.0.1:") && !client.ends_with(":0"),
            "the client's real address and port: {client}"
        );
        let connect = cause_of(r, "client", "SYN");
        assert_eq!(connect["call"], "connect", "{connect}");
        let rst = r
            .segments()
            .into_iter()
            .find(|s| s["from"] == "server" && Run::has_flag(s, "RST"))
            .expect("the RST")
            .clone();
        assert!(
            rst["cause"]["why"]
                .as_str()
                .unwrap_or("")
                .contains("answering client SYN"),
            "{rst}"
        );
        assert_eq!(rst["kernel"]["reason"], "NO_SOCKET", "{rst}");
    }
    let errnos: Vec<&str> = conns
        .iter()
        .map(|r| {
            r.call("client", "connect", 0)["errno"]
                .as_str()
                .unwrap_or("")
        })
        .collect();
    assert_eq!(errnos, ["EINPROGRESS", "ECONNREFUSED"]);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn sigstop_and_sigcont_of_a_traced_program_behave_as_without_hc_trace() {
    require_tool("python3");
    let p = port().to_string();
    // The same program without hc-trace: the control.
    let plain = Command::new("python3")
        .args([&program("stop_cont.py"), &p])
        .output()
        .expect("run python3");
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
    let t = exec(
        &["--timeout", "20"],
        &["python3", &program("stop_cont.py"), &p],
    );
    assert_eq!(
        t.code, 0,
        "stopped means stopped, and SIGCONT resumes: {}",
        t.stdout
    );
    assert!(t.stdout.contains("during=0"), "{}", t.stdout);
    // The child's connection after SIGCONT is traced as usual.
    let r = t.only();
    assert_eq!(cause_of(&r, "client", "FIN")["call"], "close");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn a_noisy_program_keeps_stdout_and_the_json_goes_to_the_file() {
    require_tool("python3");
    let p = port().to_string();
    let t = exec(&[], &["python3", &program("noisy.py"), &p, "20000"]);
    assert_eq!(t.code, 0, "{:#}", t.doc);
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        20_000,
        "the program's output, all of it, alone"
    );
    assert!(lines.iter().all(|l| l.starts_with("line ")));
    let r = t.only();
    let w = r.call("client", "write", 0);
    assert_eq!(w["ret"], 1000, "{w}");
    assert_eq!(t.doc["exec"]["exit_code"], 0);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn a_close_on_exec_fin_is_the_execves() {
    require_tool("python3");
    let p = port().to_string();
    let t = exec(&[], &["python3", &program("exec_close.py"), &p]);
    assert_eq!(t.code, 0, "{:#}", t.doc);
    let r = t.only();
    let fin = cause_of(&r, "client", "FIN");
    assert_eq!(fin["call"], "close");
    assert_eq!(fin["args"], "execve", "{fin}");
    assert!(
        fin["text"]
            .as_str()
            .unwrap_or("")
            .contains("execve(\"/bin/sleep\")"),
        "{fin}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn an_io_uring_close_sends_its_fin_at_once_and_is_named() {
    require_tool("cc");
    let dir = temp_path("uring");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("uring_close");
    let out = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&bin)
        .arg(programs().join("uring_close.c"))
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = port().to_string();
    // If hc-trace's copy of the socket outlived the io_uring close, no FIN
    // would leave and the program's read would wait until the timeout.
    let t = exec(&["--timeout", "10"], &[bin.to_str().expect("path"), &p]);
    assert_eq!(t.code, 0, "the FIN left at the close: {}", t.stdout);
    let r = t.only();
    let data = |s: &Value| s["len"].as_u64().unwrap_or(0) > 0;
    let fin = |s: &Value| Run::has_flag(s, "FIN");
    for (what, pick) in [("data", &data as &dyn Fn(&Value) -> bool), ("FIN", &fin)] {
        let seg = r
            .segments()
            .into_iter()
            .find(|s| s["from"] == "client" && pick(s))
            .unwrap_or_else(|| panic!("the client's {what}"))
            .clone();
        assert!(
            seg["cause"]["why"]
                .as_str()
                .unwrap_or("")
                .contains("io_uring"),
            "named as the likely source: {seg}"
        );
    }
    assert!(
        r.calls("client", "close").is_empty(),
        "no close is made up for the descriptor the ring closed"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn sendmmsg_bytes_are_each_calls_under_both_backends() {
    require_tool("cc");
    let dir = temp_path("sendmmsg");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("sendmmsg");
    let out = Command::new("cc")
        .arg("-O1")
        .arg("-o")
        .arg(&bin)
        .arg(programs().join("sendmmsg.c"))
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for backend in ["ebpf", "ptrace"] {
        let p = port().to_string();
        let t = exec(
            &["--backend", backend, "--timeout", "10"],
            &[bin.to_str().expect("path"), &p],
        );
        assert_eq!(
            t.code, 0,
            "{backend}: the reader got 1000 bytes: {}",
            t.stdout
        );
        let r = t.only();
        let calls: Vec<Value> = r
            .calls("client", "write")
            .into_iter()
            .filter(|c| c["text"].as_str().unwrap_or("").starts_with("sendmmsg("))
            .cloned()
            .collect();
        // 3 messages (added up in the kernel under eBPF), then 40 (more
        // than it adds up: the socket's own count before and after).
        assert_eq!(
            calls.len(),
            2,
            "{backend}: both calls are traced: {:#}",
            r.doc
        );
        let mut bytes = [0u64; 2];
        for s in r.segments() {
            if s["from"] != "client" || s["len"].as_u64().unwrap_or(0) == 0 {
                continue;
            }
            // The data part's cause (a data+FIN segment has two).
            let data = s["causes"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["part"] == "data"))
                .and_then(|c| c["event"].as_u64())
                .unwrap_or_else(|| panic!("{backend}: client data without a call: {s}"));
            let by = r.event(data);
            let i = calls
                .iter()
                .position(|c| c["text"] == by["text"])
                .unwrap_or_else(|| panic!("{backend}: data not from a sendmmsg: {s}"));
            bytes[i] += s["len"].as_u64().unwrap_or(0);
        }
        assert_eq!(
            bytes,
            [600, 400],
            "{backend}: each call's bytes are its own"
        );
    }
}

/// Starts `hc-trace exec -- PROGRAM`, waits for the program's first line
/// on stdout, sends `sig` to hc-trace (not the program) and waits for its
/// end: (exit code, the rest of its stdout, seconds from the signal).
fn signal_hc_trace(prog: &[&str], sig: i32) -> (i32, String, f64) {
    require_root();
    let mut child = Command::new(bin())
        .args(["--color", "never", "exec", "--no-save", "--"])
        .args(prog)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hc-trace");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("the program's first line");
    assert!(first.contains("ready"), "{first}");
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: a signal to our own child, by its id.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    let t = Instant::now();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let st = child.wait().expect("wait for hc-trace");
    (st.code().unwrap_or(-1), rest, t.elapsed().as_secs_f64())
}

const WAITS: &str = "import socket, signal, sys
s = socket.create_server(('127.0.0.1', int(sys.argv[1])))
if sys.argv[2] == 'ignore':
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('ready', flush=True)
s.accept()";

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn sigterm_sent_to_hc_trace_reaches_the_program_and_sigkill_follows_if_needed() {
    require_tool("python3");
    let p = port().to_string();
    let (code, out, secs) =
        signal_hc_trace(&["python3", "-c", WAITS, &p, "default"], libc::SIGTERM);
    assert_eq!(code, 143, "the program died of SIGTERM: {out}");
    assert!(
        secs < 1.5,
        "at once, not after the grace period: {secs:.2} s"
    );
    assert!(
        out.contains("hc-trace got SIGTERM and passed it on"),
        "{out}"
    );
    assert!(
        out.contains("accept4(3)") && out.contains("interrupted: hc-trace got SIGTERM"),
        "the call it was blocked in says so: {out}"
    );
    // SIGINT too (Python dies of it, KeyboardInterrupt unhandled).
    let (code, out, _) = signal_hc_trace(&["python3", "-c", WAITS, &p, "default"], libc::SIGINT);
    assert_eq!(code, 130, "{out}");
    assert!(out.contains("hc-trace got SIGINT"), "{out}");
    // A program that ignores SIGTERM is killed after the grace period.
    let (code, out, secs) = signal_hc_trace(&["python3", "-c", WAITS, &p, "ignore"], libc::SIGTERM);
    assert_eq!(code, 137, "SIGKILL after the grace period: {out}");
    assert!(secs >= 1.9, "{secs:.2} s");
    assert!(out.contains("killed by SIGKILL"), "{out}");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/test: run scripts/test, or cargo test --features privileged"
)]
fn view_all_puts_a_proxy_chain_on_one_clock() {
    require_root();
    require_tools(&["python3", "curl", "socat"]);
    let dir = temp_path("www");
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("hello.txt"), "through the proxy\n").expect("write");
    let (front, back) = (port(), port());
    // curl → socat → python3 -m http.server: two connections, one story.
    let script = format!(
        "{LISTENING} python3 -m http.server {back} --bind 127.0.0.1 --directory {d} >/dev/null 2>&1 & S=$!; \
         socat TCP-LISTEN:{front},bind=127.0.0.1,reuseaddr TCP:127.0.0.1:{back} & P=$!; \
         listening {back}; listening {front}; \
         curl -sS http://127.0.0.1:{front}/hello.txt; sleep 0.2; kill $S $P; wait",
        d = dir.display()
    );
    let out_file = temp_path("txt");
    let out = Command::new(bin())
        .args([
            "--color",
            "never",
            "exec",
            "--no-save",
            "--view",
            "all",
            "-o",
        ])
        .arg(&out_file)
        .args(["--timeout", "20", "--", "sh", "-c", &script])
        .output()
        .expect("run hc-trace");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through the proxy\n");
    let text = std::fs::read_to_string(&out_file).expect("the timeline");
    let _ = std::fs::remove_file(&out_file);
    assert!(text.contains("2 connections on one clock"), "{text}");
    // One clock: every event line's time, in the order shown, never goes back.
    let mut last = f64::MIN;
    // Each event's lines: its first led by its connection, a cause moved
    // under it indented.
    let mut events: Vec<(String, String)> = Vec::new();
    for l in text.lines() {
        let tag = if l.starts_with('c') {
            l.split_whitespace().next().unwrap_or("")
        } else {
            ""
        };
        if tag.len() > 1 && tag.starts_with('c') && tag[1..].bytes().all(|b| b.is_ascii_digit()) {
            let t: f64 = l
                .split_whitespace()
                .nth(2)
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("a time: {l}"));
            assert!(t >= last, "times in order: {l}");
            last = t;
            events.push((tag.to_string(), l.to_string()));
        } else if l.starts_with("     ") {
            if let Some(e) = events.last_mut() {
                e.1.push_str(l);
            }
        }
    }
    let fin_of = |conn: &str| {
        events
            .iter()
            .position(|(c, l)| c == conn && l.contains("FIN from server shutdown(SHUT_WR)"))
    };
    let (back_fin, front_fin) = (fin_of("c2"), fin_of("c1"));
    // The upstream's FIN (c2: http.server's shutdown) comes first; socat then
    // passes it on to curl (c1: socat's own shutdown).
    let (Some(b), Some(f)) = (back_fin, front_fin) else {
        panic!("both servers' FINs: {text}");
    };
    assert!(b < f, "the back end's FIN, then the proxy's: {text}");
}
