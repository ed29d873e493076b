//! Standard output that goes away or fills up: every subcommand ends quietly
//! when its reader has gone (`| true`, `| head`), says so with exit 2 when
//! the output is full (`> /dev/full`), and never panics (exit 101), also
//! when standard error is full.

mod common;
use common::*;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The write end of a pipe whose read end is already closed: what `| true`
/// gives a program once `true` has exited, without the race of a real `true`.
fn closed_pipe() -> Stdio {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills the two descriptors of a local array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: both descriptors are fresh and owned here alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full exists on Linux"),
    )
}

fn run(args: &[&str], stdout: Stdio, stderr: Stdio) -> Output {
    Command::new(bin())
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .output()
        .expect("run hc-trace")
}

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/captures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn scenario_file() -> String {
    format!("{}/scenarios/shut-wr.scenario", env!("CARGO_MANIFEST_DIR"))
}

/// Commands that need no privileges, each with its normal exit code.
fn plain_commands() -> Vec<(Vec<String>, i32)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut v = vec![
        (s(&["list"]), 0),
        (s(&["explain", "shut-wr"]), 0),
        (s(&["man"]), 0),
        (s(&["--help"]), 0),
        (s(&["--version"]), 0),
        (s(&["scenario", "--help"]), 0),
        (s(&["exec", "--help"]), 0),
        (s(&["run", "--check-only", &scenario_file()]), 0),
        (s(&["scenario", "shut-wr", "--questions"]), 0),
        (s(&["analyze", &fixture("shut-wr.pcapng")]), 0),
        (
            s(&["analyze", &fixture("shut-wr.pcapng"), "--format", "json"]),
            0,
        ),
        (
            s(&["analyze", &fixture("shut-wr.pcapng"), "--conn", "1"]),
            0,
        ),
    ];
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        v.push((s(&["completions", shell]), 0));
    }
    v
}

fn no_panic(args: &[String], out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {err}");
    assert!(out.status.code().is_some(), "{args:?} killed by a signal");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    for (args, code) in plain_commands() {
        let out = run(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            closed_pipe(),
            Stdio::piped(),
        );
        no_panic(&args, &out);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?} says nothing about the closed pipe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_full_output_is_an_error_with_exit_2() {
    for (args, _) in plain_commands() {
        let out = run(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            dev_full(),
            Stdio::piped(),
        );
        no_panic(&args, &out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("cannot write") && err.contains("No space left"),
            "{args:?}: {err}"
        );
    }
    // Negative control: the same commands into a pipe that is read succeed.
    let out = run(&["list"], Stdio::piped(), Stdio::piped());
    assert_eq!(out.status.code(), Some(0));
    assert!(!out.stdout.is_empty());
}

#[test]
fn a_full_standard_error_loses_the_message_not_the_exit_code() {
    let args = ["run", "/nonexistent/lab.scenario"];
    let out = run(&args, Stdio::null(), dev_full());
    assert_eq!(
        out.status.code(),
        Some(2),
        "the usage error still exits 2, not 101"
    );
    let out = run(&["--no-such-option"], Stdio::null(), dev_full());
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["list"], dev_full(), dev_full());
    assert_eq!(out.status.code(), Some(2));
}

/// The commands that run something: a scenario (text, JSON, a picture, all
/// of them), exec and watch.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn running_commands_end_quietly_on_a_closed_pipe_and_fail_on_a_full_one() {
    require_root();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let runs = [
        s(&["scenario", "shut-wr", "--no-save"]),
        s(&["scenario", "shut-wr", "--no-save", "--format", "json"]),
        s(&["scenario", "shut-wr", "--no-save", "--view", "ladder"]),
        s(&["scenario", "shut-wr", "--no-save", "--format", "svg"]),
        s(&["run", &scenario_file(), "--no-save"]),
        s(&["exec", "--no-save", "--", "true"]),
    ];
    for args in &runs {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&argv, closed_pipe(), Stdio::piped());
        no_panic(args, &out);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let out = run(&argv, dev_full(), Stdio::piped());
        no_panic(args, &out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("No space left"), "{args:?}: {err}");
    }
    // --all stops once nobody reads: one scenario saved, not all of them.
    let dir = temp_path("all");
    let out = run(
        &["scenario", "--all", "-w", dir.to_str().expect("utf-8")],
        closed_pipe(),
        Stdio::piped(),
    );
    no_panic(&s(&["scenario", "--all"]), &out);
    assert_eq!(out.status.code(), Some(0));
    let saved = std::fs::read_dir(&dir).map_or(0, |d| d.count());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(saved, 1, "--all went on after its reader left");
    // watch prints its summary on Ctrl-C, into the closed pipe.
    for stdout in [closed_pipe(), dev_full()] {
        let child = Command::new(bin())
            .args(["watch", "-i", "lo"])
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start watch");
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let out = child.wait_with_output().expect("watch ends");
        no_panic(&s(&["watch"]), &out);
        assert!(
            matches!(out.status.code(), Some(130) | Some(2)),
            "watch: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
