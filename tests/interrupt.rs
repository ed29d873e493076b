//! Ctrl-C or SIGTERM at many moments of different scenarios: the run says it
//! was interrupted, exits 130/143, leaves a valid pcapng and nothing else.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn tshark_reads(path: &std::path::Path) -> bool {
    Command::new("tshark")
        .arg("-r")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run tshark")
        .success()
}

/// Waits (at most 5 s) until the process catches SIGINT and SIGTERM, as the
/// kernel reports in /proc/PID/status (SigCgt, a hex mask, bit N-1 for signal N).
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

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn a_signal_at_any_moment_leaves_a_valid_file_and_says_so() {
    require_tool("tshark");
    let cases: &[(&str, i32)] = &[
        ("shut-wr", libc::SIGINT),
        ("close-unread", libc::SIGTERM),
        ("cork-fin", libc::SIGINT),
        ("listen-close", libc::SIGINT),
    ];
    let delays = [5u64, 15, 40, 90, 160, 260, 400];
    let (mut interrupted, mut early) = (0, 0);
    for (name, sig) in cases {
        for delay in delays {
            let dir = temp_path("int");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("run.pcapng");
            let child = Command::new(bin())
                .args(["scenario", name, "-w", file.to_str().unwrap()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            // Count from the moment the handler is installed: before main()
            // runs, a signal's default action kills any program, and under
            // load that window can exceed the shortest delay.
            wait_for_handler(pid);
            std::thread::sleep(Duration::from_millis(delay));
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, *sig) };
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let code = out.status.code();
            let ctx = format!(
                "{name} +{delay} ms: exit {code:?}\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let expected = if *sig == libc::SIGTERM { 143 } else { 130 };
            let err = String::from_utf8_lossy(&out.stderr);
            match code {
                Some(0) => {} // finished before the signal came
                // Before anything ran (while the command line is read): it
                // says so, and there is nothing to save.
                Some(c) if c == expected && err.contains("before anything ran") => {
                    assert!(text.is_empty(), "{ctx}");
                    assert!(err.contains("nothing was run or saved"), "{ctx}");
                    assert!(!file.exists(), "no capture of a run that never ran: {ctx}");
                    early += 1;
                    let _ = std::fs::remove_dir_all(&dir);
                    continue;
                }
                Some(c) if c == expected => {
                    interrupted += 1;
                    let last = text.lines().last().unwrap_or("");
                    assert!(last.contains("interrupted by SIG"), "{ctx}");
                }
                _ => panic!("unexpected exit: {ctx}"),
            }
            assert!(
                !text.contains("EINTR"),
                "a signal never shows up as a call's error: {ctx}"
            );
            assert!(file.exists(), "the capture is saved: {ctx}");
            assert!(tshark_reads(&file), "tshark reads it: {ctx}");
            let names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            assert_eq!(names.len(), 1, "no temporary file left: {names:?} {ctx}");
            let instance = std::path::Path::new("/sys/kernel/tracing/instances")
                .join(format!("hc-trace-{pid}"));
            assert!(!instance.exists(), "no tracing instance left: {ctx}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    eprintln!("{interrupted} runs interrupted, {early} stopped before anything ran");
    assert!(
        interrupted + early >= 20 && interrupted >= 10,
        "most runs were really interrupted ({interrupted}, {early} before anything ran)"
    );
}

/// Waits at most `secs` for the child; kills it (and fails) if it is still running.
fn wait_at_most(mut child: std::process::Child, secs: u64, what: &str) -> std::process::Output {
    for _ in 0..secs * 100 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!(
        "{what}: still running {secs} s after the signal\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `run FIFO` blocks in open() until a writer comes; Ctrl-C (or SIGTERM)
/// there ends at once with 128 + N (it used to be restarted and ignored).
#[test]
fn a_signal_while_the_input_is_read_ends_at_once() {
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let dir = temp_path("fifo");
        std::fs::create_dir_all(&dir).expect("dir");
        let fifo = dir.join("lab.scenario");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success());
        let child = Command::new(bin())
            .arg("run")
            .arg(&fifo)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        wait_for_handler(child.id() as i32);
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let out = wait_at_most(child, 5, "run FIFO");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(out.status.code(), Some(code));
        assert!(out.stdout.is_empty(), "nothing ran");
    }
}

/// Ctrl-C typed at the --predict prompt (a real pseudo-terminal, through
/// `script`): the process ends at once with 130 and runs nothing.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn ctrl_c_at_the_prediction_prompt_ends_at_once() {
    use std::io::{Read, Write};
    require_tool("script");
    let cmd = format!("{} scenario shut-wr --predict --no-save", bin());
    let mut child = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start script");
    let mut stdout = child.stdout.take().expect("stdout");
    // Read until the first question is asked.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let mut told = false;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if !told && String::from_utf8_lossy(&seen).contains("> ") {
                told = true;
                let _ = tx.send(());
            }
        }
        seen
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the prompt appears");
    let mut stdin = child.stdin.take().expect("stdin");
    // ^C on the terminal: the line discipline sends SIGINT to hc-trace.
    stdin.write_all(b"\x03").expect("type ^C");
    stdin.flush().expect("flush");
    let out = wait_at_most(child, 5, "the prompt");
    assert_eq!(
        out.status.code(),
        Some(130),
        "script passes on hc-trace's exit"
    );
}
