//! Helpers for the integration tests: run the real binary, read its JSON.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hc-trace")
}

// ------------------------------------------------------------ requirements
//
// Tests that need root, a network namespace or an outside tool carry
//     #[cfg_attr(not(feature = "privileged"), ignore = "...")]
// so a plain `cargo test` lists them as ignored; with `--features privileged`
// (scripts/test, CI as root) they run, and what they need is a requirement:
// unmet, the test fails. It never passes without having run.

/// True when the tests run as root on the host.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails the test unless it runs as root.
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root: run it as root (scripts/test), \
         or leave out --features privileged to skip it as ignored"
    );
}

/// True when `name` is an executable file in a directory on PATH.
pub fn have_tool(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Where a missing tool comes from, for the failure message.
fn where_to_get(name: &str) -> &'static str {
    match name {
        "nft" | "iptables" | "ip" => "scripts/setup installs it",
        "tshark" | "tcpdump" | "strace" | "bc" | "setpriv" | "script" | "cc" | "python3" => {
            "scripts/test installs it"
        }
        "capinfos" | "editcap" => "it comes with tshark, which scripts/test installs",
        "chromium" | "npm" | "dpkg-shlibdeps" => "scripts/test installs it",
        "nginx" | "node" | "go" | "curl" | "socat" => {
            "scripts/test installs it (the real programs tests/exec_real.rs traces)"
        }
        _ => "install it",
    }
}

/// Fails the test unless `name` is on PATH.
pub fn require_tool(name: &str) {
    assert!(
        have_tool(name),
        "this test needs `{name}` on PATH: {}",
        where_to_get(name)
    );
}

/// Fails the test unless every tool named is on PATH.
pub fn require_tools(names: &[&str]) {
    for n in names {
        require_tool(n);
    }
}

/// Runs `hc-trace ARGS --format json --no-save` and returns (exit code, document).
pub fn run_json(args: &[&str]) -> (i32, Value) {
    let out = Command::new(bin())
        .args(args)
        .args(["--format", "json", "--no-save"])
        .output()
        .expect("run hc-trace");
    let code = out.status.code().unwrap_or(-1);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hc-trace {args:?} printed no JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, doc)
}

/// Runs a built-in scenario; it must succeed.
pub fn scenario(name: &str) -> Run {
    let (code, doc) = run_json(&["scenario", name]);
    assert_eq!(code, 0, "{name} exits 0: {doc:#}");
    Run::new(doc)
}

/// Runs a scenario written out to a temporary file; it must succeed.
pub fn scenario_text(text: &str) -> Run {
    let path = temp_path("scenario");
    std::fs::write(&path, text).expect("write scenario");
    let (code, doc) = run_json(&["run", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "run exits 0: {doc:#}");
    Run::new(doc)
}

/// A built-in scenario's text with some lines changed, for negative controls.
pub fn builtin_text(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.scenario"));
    std::fs::read_to_string(p).expect("read built-in scenario")
}

pub fn temp_path(ext: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "hc-trace-test-{}-{}.{ext}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

/// A run's JSON with questions a test asks of it.
pub struct Run {
    pub doc: Value,
}

impl Run {
    pub fn new(doc: Value) -> Self {
        let r = Run { doc };
        r.check_schema();
        r
    }

    pub fn events(&self) -> &Vec<Value> {
        self.doc["events"].as_array().expect("events")
    }

    /// The calls of `side` named `call`, in order.
    pub fn calls(&self, side: &str, call: &str) -> Vec<&Value> {
        self.events()
            .iter()
            .filter(|e| e["kind"] == "call" && e["side"] == side && e["call"] == call)
            .collect()
    }

    pub fn call(&self, side: &str, call: &str, nth: usize) -> &Value {
        let all = self.calls(side, call);
        all.get(nth)
            .copied()
            .unwrap_or_else(|| panic!("no {side} {call} #{nth} in {:#}", self.doc))
    }

    pub fn segments(&self) -> Vec<&Value> {
        self.events()
            .iter()
            .filter(|e| e["kind"] == "segment")
            .collect()
    }

    pub fn event(&self, i: u64) -> &Value {
        &self.events()[i as usize]
    }

    pub fn has_flag(seg: &Value, flag: &str) -> bool {
        seg["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == flag))
    }

    /// The segments a call caused, with their flags.
    pub fn caused(&self, call: &Value) -> Vec<&Value> {
        call["caused"]
            .as_array()
            .expect("caused")
            .iter()
            .map(|i| self.event(i.as_u64().unwrap()))
            .collect()
    }

    /// The segments a call caused that carry `flag`.
    pub fn caused_with(&self, call: &Value, flag: &str) -> Vec<&Value> {
        self.caused(call)
            .into_iter()
            .filter(|s| Self::has_flag(s, flag))
            .collect()
    }

    pub fn caused_flag(&self, call: &Value, flag: &str) -> bool {
        self.caused(call).iter().any(|s| Self::has_flag(s, flag))
    }

    /// Segments from `side` with `flag`, retransmissions not counted.
    pub fn count(&self, from: &str, flag: &str) -> usize {
        self.segments()
            .iter()
            .filter(|s| {
                s["from"] == from && Self::has_flag(s, flag) && s["retransmission_of"].is_null()
            })
            .count()
    }

    pub fn final_state(&self, side: &str) -> String {
        self.doc["final_states"]
            .as_array()
            .expect("final_states")
            .iter()
            .find(|f| f["side"] == side && !f["peer"].is_null())
            .map(|f| f["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    /// What every document must satisfy, whatever the scenario.
    fn check_schema(&self) {
        let d = &self.doc;
        assert_eq!(d["schema"], 2);
        assert_eq!(
            d["self_check"],
            serde_json::json!([]),
            "the story's self-check found nothing"
        );
        for k in ["scenario", "client", "server", "events", "capture"] {
            assert!(!d[k].is_null(), "document has {k}");
        }
        assert!(d["capture"]["packets"].is_u64());
        assert_eq!(d["capture"]["dropped"], 0, "no packet dropped");
        let mut last = 0i64;
        for (n, e) in self.events().iter().enumerate() {
            assert_eq!(e["i"].as_u64(), Some(n as u64));
            // Events are listed where the timeline shows them: a call that
            // was entered earlier (it has an `entry` event) at its return.
            let t0 = e["t_ns"].as_i64().expect("t_ns");
            let t = if e["kind"] == "call" && !e["entry"].is_null() {
                e["end_ns"].as_i64().expect("end_ns")
            } else {
                t0
            };
            assert!(t >= last, "events in the order shown: {e}");
            last = t;
            match e["kind"].as_str() {
                Some("call") => {
                    for k in [
                        "side",
                        "call",
                        "args",
                        "ret",
                        "errno",
                        "state_before",
                        "state_after",
                        "caused",
                        "sent",
                    ] {
                        assert!(e.get(k).is_some(), "call has {k}: {e}");
                    }
                    let (end, dur) = (e["end_ns"].as_i64(), e["dur_ns"].as_i64());
                    assert_eq!(end, dur.map(|d| t0 + d), "end_ns = t_ns + dur_ns: {e}");
                    if let Some(en) = e["entry"].as_u64() {
                        let m = self.event(en);
                        assert_eq!(m["kind"], "entry");
                        assert_eq!(
                            m["call"].as_u64(),
                            Some(n as u64),
                            "the entry names its call"
                        );
                    }
                }
                Some("entry") => {
                    let c = e["call"].as_u64().expect("an entry names its call");
                    assert!(c > n as u64, "an entry comes before its call's result");
                }
                Some("table") => {
                    for k in ["side", "local", "peer", "state"] {
                        assert!(e.get(k).is_some(), "table has {k}: {e}");
                    }
                }
                Some("segment") => {
                    for k in ["from", "flags", "seq", "ack", "len", "win", "cause"] {
                        assert!(e.get(k).is_some(), "segment has {k}: {e}");
                    }
                    let why = e["cause"]["why"].as_str().unwrap_or("");
                    assert!(!why.is_empty(), "every segment has a cause: {e}");
                    if let Some(c) = e["cause"]["event"].as_u64() {
                        assert_eq!(self.event(c)["kind"], "call", "a cause event is a call");
                    }
                }
                Some("note") => assert!(e["text"].as_str().is_some_and(|t| !t.is_empty())),
                Some("state") => {
                    for k in ["side", "old", "new", "source"] {
                        assert!(e.get(k).is_some(), "state has {k}: {e}");
                    }
                }
                other => panic!("unknown event kind {other:?}"),
            }
        }
    }
}
