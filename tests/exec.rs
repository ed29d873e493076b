//! `hc-trace exec` on the example programs under examples/exec/, traced for
//! real in a private network namespace.
//!
//! The C examples are compiled with `cc` into a temporary directory; without
//! a C compiler these tests fail. Needs root, or a kernel that allows
//! unprivileged user namespaces (as tests/scenarios.rs): they run with
//! `--features privileged` (scripts/test) and are ignored otherwise.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/exec")
}

/// The compiled server and client, once per test binary; fails without cc.
fn built() -> &'static Path {
    require_tool("cc");
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = temp_path("exec-bin");
        std::fs::create_dir_all(&dir).expect("temp dir");
        for prog in ["server", "client", "close_unread"] {
            let out = Command::new("cc")
                .arg("-O1")
                .arg("-o")
                .arg(dir.join(prog))
                .arg(examples().join(format!("{prog}.c")))
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => panic!("cc {prog}.c failed: {}", String::from_utf8_lossy(&o.stderr)),
                Err(e) => panic!("cannot run the C compiler (cc): {e}"),
            }
        }
        dir
    })
}

/// Runs `hc-trace exec --format json --no-save OPTS -- PROGRAM...`.
fn exec(opts: &[&str], program: &[&str]) -> (i32, Value) {
    let out = Command::new(bin())
        .arg("exec")
        .args(["--format", "json", "--no-save"])
        .args(opts)
        .arg("--")
        .args(program)
        .output()
        .expect("run hc-trace");
    let code = out.status.code().unwrap_or(-1);
    // The program's own output comes first on stdout; the document is the rest.
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find("{\n").unwrap_or_else(|| {
        panic!(
            "no JSON from hc-trace exec {program:?}; exit {code}\nstdout: {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let doc = serde_json::from_str(&text[start..]).expect("JSON document");
    (code, doc)
}

fn lab(dir: &Path, client_opts: &[&str]) -> Vec<String> {
    let mut v = vec![
        examples().join("lab.sh").display().to_string(),
        dir.display().to_string(),
    ];
    v.extend(client_opts.iter().map(|s| s.to_string()));
    v
}

/// The only connection's timeline, checked like a scenario run's.
fn only_connection(doc: &Value) -> Run {
    let conns = doc["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1, "one connection: {doc:#}");
    Run::new(conns[0].clone())
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn seed_case_shutdown_wr_sends_the_fin_and_the_answer_comes_back() {
    let dir = built();
    let prog = lab(dir, &["--shut-wr"]);
    let args: Vec<&str> = prog.iter().map(String::as_str).collect();
    let (code, doc) = exec(&[], &args);
    assert_eq!(code, 0, "the program's exit status: {doc:#}");
    assert_eq!(doc["exec"]["timed_out"], false);
    let r = only_connection(&doc);
    let shut = r.call("client", "shutdown", 0);
    assert_eq!(shut["args"], "SHUT_WR");
    let fins: Vec<_> = r.caused_with(shut, "FIN");
    assert_eq!(fins.len(), 1, "shutdown(SHUT_WR) caused the FIN: {shut}");
    assert_eq!(fins[0]["from"], "client");
    let reads = r.calls("server", "read");
    assert_eq!(reads.last().unwrap()["ret"], 0, "the server's read got 0");
    assert_eq!(
        r.call("server", "write", 0)["ret"],
        13,
        "\"got 12 bytes\\n\""
    );
    let got: i64 = r
        .calls("client", "read")
        .iter()
        .filter_map(|c| c["ret"].as_i64())
        .sum();
    assert_eq!(got, 13, "the half-closed client receives the answer");
    // The data segments point at the writes, by stream offset.
    let w = r.call("client", "write", 0);
    assert!(
        r.caused(w).iter().any(|s| s["len"] == 12),
        "the request's data segment is caused by the write: {w}"
    );
    // Each call names the process that made it; client and server differ.
    let pid = |c: &Value| c["pid"].as_u64().expect("pid");
    assert_ne!(pid(shut), pid(reads[0]));
    assert_eq!(r.call("client", "connect", 0)["ret"], 0);
    assert!(r.caused_flag(r.call("client", "connect", 0), "SYN"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn seed_case_without_shutdown_hangs_until_the_timeout_and_says_so() {
    let dir = built();
    let prog = lab(dir, &[]);
    let args: Vec<&str> = prog.iter().map(String::as_str).collect();
    for backend in ["ptrace", "ebpf"] {
        seed_case_times_out(backend, &args);
    }
}

fn seed_case_times_out(backend: &str, args: &[&str]) {
    let (code, doc) = exec(&["--timeout", "1", "--backend", backend], args);
    assert_eq!(code, 143, "SIGTERM at --timeout: 128 + 15: {doc:#}");
    assert_eq!(doc["exec"]["timed_out"], true);
    assert!(doc["exec"]["outcome"]
        .as_str()
        .unwrap_or("")
        .contains("--timeout"));
    let conns = doc["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1);
    assert!(
        conns[0]["interrupted"]
            .as_str()
            .is_some_and(|s| s.contains("--timeout")),
        "the timeline says the timeout ended it"
    );
    let r = only_connection(&doc);
    assert!(r.calls("client", "shutdown").is_empty());
    // The server's read was blocked when the timeout struck. SIGTERM goes
    // to both processes: when the client dies first, its exit FIN may reach
    // the server's read before the server's own SIGTERM does (seen under
    // both backends). Then that read returned 0 and names that FIN as what
    // woke it; otherwise it never returned and says the timeout ended it.
    let last = *r.calls("server", "read").last().expect("server read");
    if !last["ret"].is_i64() {
        assert!(last["ret"].is_null(), "the read did not return: {last}");
        assert!(
            last["note"].as_str().unwrap_or("").contains("--timeout"),
            "{last}"
        );
    } else {
        assert_eq!(last["ret"], 0, "{backend}: {last}");
        assert_eq!(last["eof"]["why"], "fin", "{backend}: {last}");
        let fin = last["woke_by"].as_u64().expect("what woke the read");
        assert!(
            Run::has_flag(r.event(fin), "FIN"),
            "{backend}: the read was woken by a FIN: {last}"
        );
    }
    // No FIN from the client's calls: only the kernel's close at the kill.
    for c in r.calls("client", "write") {
        assert!(!r.caused_flag(c, "FIN"));
    }
    // (eBPF: the server's exit FIN may reach the client's read first; the
    // client then closes the socket itself, and that close sends the FIN.)
    let closes = r.calls("client", "close");
    let exit_close = closes
        .iter()
        .find(|c| c["args"] == "exit")
        .or_else(|| closes.first().filter(|_| backend == "ebpf"))
        .unwrap_or_else(|| {
            panic!("{backend}: a close by the kernel when the client was killed: {doc:#}")
        });
    assert!(r.caused_flag(exit_close, "FIN"), "{backend}: {exit_close}");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn closing_a_dup_sends_nothing_and_the_original_still_works() {
    let dir = built();
    let prog = lab(dir, &["--dup-close", "--shut-wr"]);
    let args: Vec<&str> = prog.iter().map(String::as_str).collect();
    let (code, doc) = exec(&[], &args);
    assert_eq!(code, 0, "{doc:#}");
    let r = only_connection(&doc);
    let dup = r.call("client", "dup", 0);
    let copy = dup["fd"].as_i64().expect("dup's fd");
    let dup_ret = dup["ret"].as_i64().expect("dup's result");
    assert_ne!(copy, dup_ret, "fd names the socket dup'd, ret the copy");
    let close_copy = r
        .calls("client", "close")
        .into_iter()
        .find(|c| c["fd"] == dup_ret)
        .expect("close of the copy");
    assert_eq!(close_copy["ret"], 0);
    assert!(
        r.caused(close_copy).is_empty(),
        "closing a dup'd descriptor puts nothing on the wire: {close_copy}"
    );
    assert!(close_copy["note"]
        .as_str()
        .unwrap_or("")
        .contains("another descriptor"));
    assert!(r.caused_flag(r.call("client", "shutdown", 0), "FIN"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn python_pair_half_closes_too() {
    require_tool("python3");
    let ex = examples();
    let script = format!(
        "python3 {s} 5555 & sleep 1; python3 {c} 5555; wait",
        s = ex.join("server.py").display(),
        c = ex.join("client.py").display()
    );
    let (code, doc) = exec(&["--timeout", "20"], &["sh", "-c", &script]);
    assert_eq!(code, 0, "{doc:#}");
    let r = only_connection(&doc);
    assert!(r.caused_flag(r.call("client", "shutdown", 0), "FIN"));
    let last = *r.calls("server", "read").last().expect("server recv");
    assert_eq!(last["ret"], 0, "recv() returned b'': {last}");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn the_programs_exit_status_passes_through() {
    let (code, doc) = exec(&[], &["sh", "-c", "echo out; exit 7"]);
    assert_eq!(code, 7);
    assert_eq!(doc["exec"]["status"]["code"], 7);
    assert_eq!(doc["connections"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_missing_program_is_hc_traces_error() {
    let out = Command::new(bin())
        .args(["exec", "--no-save", "--", "/nonexistent/program"])
        .output()
        .expect("run hc-trace");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

/// State changes the kernel reported, as (side, old, new).
fn kernel_states(r: &Run) -> Vec<(String, String, String)> {
    r.events()
        .iter()
        .filter(|e| e["kind"] == "state")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("side"), s("old"), s("new"))
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn as_root_a_close_with_unread_data_shows_the_kernels_reason_for_the_rst() {
    // Reading tracepoints needs root.
    require_root();
    let dir = built();
    let prog = dir.join("close_unread").display().to_string();
    let (code, doc) = exec(&[], &[&prog]);
    assert_eq!(code, 0, "{doc:#}");
    let conn = &doc["connections"][0];
    assert_eq!(conn["kernel"]["available"], true, "{}", conn["kernel"]);
    let r = only_connection(&doc);
    let close = r.call("client", "close", 0);
    let rsts: Vec<_> = r.caused_with(close, "RST");
    assert_eq!(
        rsts.len(),
        1,
        "close() with unread data sends an RST: {close}"
    );
    assert_eq!(
        rsts[0]["kernel"]["reason"], "TCP_ABORT_ON_CLOSE",
        "{}",
        rsts[0]
    );
    assert_ne!(rsts[0]["kernel"]["agrees"], false, "{}", rsts[0]);
    // Both ends' state changes, the listener's and the port-less
    // SYN_SENT included, each on its side.
    let states = kernel_states(&r);
    let has = |side: &str, old: &str, new: &str| {
        states
            .iter()
            .any(|(s, o, n)| s == side && o == old && n == new)
    };
    assert!(has("server", "CLOSE", "LISTEN"), "{states:?}");
    assert!(has("client", "CLOSE", "SYN_SENT"), "{states:?}");
    assert!(has("client", "SYN_SENT", "ESTABLISHED"), "{states:?}");
    assert!(has("server", "SYN_RECV", "ESTABLISHED"), "{states:?}");
    assert!(has("client", "ESTABLISHED", "CLOSE"), "{states:?}");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn with_no_kernel_no_reason_and_no_state_line_is_claimed() {
    let dir = built();
    let prog = dir.join("close_unread").display().to_string();
    let (code, doc) = exec(&["--no-kernel"], &[&prog]);
    assert_eq!(code, 0, "{doc:#}");
    let conn = &doc["connections"][0];
    assert_eq!(conn["kernel"]["available"], false, "{}", conn["kernel"]);
    assert!(conn["kernel"]["why"]
        .as_str()
        .unwrap_or("")
        .contains("--no-kernel"));
    let r = only_connection(&doc);
    assert!(kernel_states(&r).is_empty(), "{:?}", kernel_states(&r));
    let close = r.call("client", "close", 0);
    let rst = r
        .caused(close)
        .into_iter()
        .find(|s| Run::has_flag(s, "RST"))
        .expect("the RST is on the wire all the same");
    assert!(rst["kernel"].is_null(), "{rst}");
}

/// Every FIN and RST of a run with the call it is attributed to: (the
/// segment's sender, its flags, the causing call's side and text), in the
/// order of the connections and their timelines. Descriptor numbers are the
/// program's own, so both backends name calls alike.
fn attribution(doc: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for c in doc["connections"].as_array().expect("connections") {
        let r = Run::new(c.clone());
        for e in r.events() {
            if e["kind"] != "call" {
                continue;
            }
            for s in r.caused(e) {
                for flag in ["FIN", "RST"] {
                    if Run::has_flag(s, flag) {
                        out.push((
                            s["from"].as_str().unwrap_or("").to_string(),
                            flag.to_string(),
                            e["side"].as_str().unwrap_or("").to_string(),
                            e["text"].as_str().unwrap_or("").to_string(),
                        ));
                    }
                }
            }
        }
    }
    out
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn ebpf_and_ptrace_backends_attribute_every_fin_and_rst_to_the_same_call() {
    let dir = built();
    let ex = examples();
    let close_unread = dir.join("close_unread").display().to_string();
    let py = format!(
        "python3 {s} 5555 & sleep 1; python3 {c} 5555; wait",
        s = ex.join("server.py").display(),
        c = ex.join("client.py").display()
    );
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("C pair, shutdown(SHUT_WR)", lab(dir, &["--shut-wr"])),
        (
            "C pair, close of a dup",
            lab(dir, &["--dup-close", "--shut-wr"]),
        ),
        ("close with unread data", vec![close_unread]),
        ("Python pair", vec!["sh".into(), "-c".into(), py]),
    ];
    for (name, prog) in cases {
        let args: Vec<&str> = prog.iter().map(String::as_str).collect();
        let (c1, bpf) = exec(&["--backend", "ebpf", "--timeout", "20"], &args);
        let (c2, pt) = exec(&["--backend", "ptrace", "--timeout", "20"], &args);
        assert_eq!((c1, c2), (0, 0), "{name}: both exit 0");
        assert_eq!(bpf["exec"]["backend"], "ebpf", "{name}: {}", bpf["exec"]);
        assert_eq!(pt["exec"]["backend"], "ptrace", "{name}: {}", pt["exec"]);
        assert_eq!(bpf["exec"]["stops"], 0, "{name}: eBPF stops nothing");
        let (a, b) = (attribution(&bpf), attribution(&pt));
        assert!(
            !a.is_empty(),
            "{name}: some FIN or RST is attributed: {bpf:#}"
        );
        assert_eq!(a, b, "{name}: eBPF (left) and ptrace (right) differ");
        println!("{name}: {a:?}");
    }
}
