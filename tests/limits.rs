//! Bounded input: no file, option or step makes hc-trace use memory or time
//! without limit, and each refusal says what the limit is.
//!
//! The tests that could take the machine down on a regression run the
//! binary under an address-space limit (RLIMIT_AS), so a regression fails
//! the test (an allocation fails, the process aborts) instead of growing
//! until the OOM killer picks something.

mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

/// Runs hc-trace with its address space limited to `mib` MiB.
fn limited(mib: u64, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    let bytes = mib << 20;
    // SAFETY: setrlimit is async-signal-safe and touches only the child,
    // between fork and exec; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run hc-trace")
}

/// Runs hc-trace and returns its output and its peak resident set size in
/// KiB, as `wait4` reports it for that child alone. stdout goes through a
/// file so a large JSON document cannot fill a pipe nobody reads yet.
fn run_measured(args: &[&str]) -> (Output, u64) {
    use std::io::Read;
    let out_path = temp_path("stdout");
    let err_path = temp_path("stderr");
    let child = Command::new(bin())
        .args(args)
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("run hc-trace");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data the kernel fills; pid is our own child,
    // reaped here exactly once (the Child handle is forgotten, not waited).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    std::mem::forget(child);
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let read = |p: &std::path::Path| {
        let mut v = Vec::new();
        std::fs::File::open(p)
            .and_then(|mut f| f.read_to_end(&mut v))
            .expect("read output");
        let _ = std::fs::remove_file(p);
        v
    };
    let out = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    (out, u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_endless_input_file_is_refused_after_one_mebibyte() {
    for args in [
        vec!["run", "/dev/zero"],
        vec!["run", "/dev/zero", "--check-only"],
    ] {
        let out = limited(256, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("/dev/zero is larger than 1048576 bytes"),
            "{args:?}: {err}"
        );
    }
    // An answer file is read with the same bound, before anything runs.
    let out = limited(
        256,
        &[
            "scenario",
            "shut-wr",
            "--predict",
            "--answers",
            "/dev/zero",
            "--no-save",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    // Negative control: under the same limit a real file is read and checked.
    let ok = limited(
        256,
        &[
            "run",
            "--check-only",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/shut-wr.scenario"),
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn binary_input_is_not_text() {
    let path = temp_path("scenario");
    std::fs::write(&path, [b'n', b'a', 0xff, 0xfe, b'\n']).expect("write");
    let out = Command::new(bin())
        .args(["run", "--check-only"])
        .arg(&path)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not text"), "{}", stderr(&out));
}

#[test]
fn a_scenario_name_cannot_leave_captures() {
    let dir = temp_path("names");
    std::fs::create_dir_all(&dir).expect("dir");
    for name in ["../../x", "a/b", ".hidden", "..", "x y"] {
        let path = dir.join("lab.scenario");
        std::fs::write(&path, format!("name: {name}\nserver listen\n")).expect("write");
        let out = Command::new(bin())
            .current_dir(&dir)
            .args(["run", "lab.scenario"])
            .output()
            .expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("lab.scenario:1:1: `name:`"), "{name}: {err}");
    }
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["lab.scenario"], "nothing was created");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn too_many_steps_are_refused_with_the_limit() {
    let path = temp_path("scenario");
    let text = format!("name: long\n{}", "client sleep 0\n".repeat(10_001));
    std::fs::write(&path, text).expect("write");
    let out = Command::new(bin())
        .args(["run", "--check-only"])
        .arg(&path)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(":10002:1: more than 10000 steps"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn waits_beyond_the_step_limit_are_refused() {
    for (opt, value, range) in [
        ("--read-wait", "18446744073709551615", "1..=4000"),
        ("--read-wait", "5000", "1..=4000"),
        ("--read-wait", "0", "1..=4000"),
        ("--settle", "18446744073709551615", "1..=2000"),
        ("--settle", "2001", "1..=2000"),
    ] {
        let out = Command::new(bin())
            .args(["scenario", "shut-wr", "--no-save", opt, value])
            .output()
            .expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{opt} {value}: {err}");
        assert!(err.contains(range), "{opt} {value}: {err}");
    }
    // The largest accepted values pass the command line (--questions runs nothing).
    let out = Command::new(bin())
        .args([
            "scenario",
            "shut-wr",
            "--questions",
            "--read-wait",
            "4000",
            "--settle",
            "2000",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `write N` sends from one fixed buffer: hc-trace's peak memory stays below
/// 3/4 of N (it used to allocate N bytes first), every byte arrives, and the
/// call starts before the reader's
/// steps (the slow allocation used to let the driver run them first, so
/// the write was answered by RST).
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn a_write_larger_than_memory_is_streamed_from_one_buffer() {
    require_root();
    const N: u64 = 192 << 20;
    let path = temp_path("scenario");
    std::fs::write(
        &path,
        format!(
            "name: big-write\nteaches: memory stays flat\nserver listen\nclient connect\nserver accept\n\
             client write {N}\nclient shutdown SHUT_WR\nserver read-all\nserver close\nclient close\n"
        ),
    )
    .expect("write scenario");
    // Peak resident memory, measured by the kernel for this one child: the
    // old buffer of N bytes alone was larger than the bound. (An address-space
    // limit was used before; it also counts malloc arenas and thread stacks
    // that are reserved, not used, and failed on a machine that reserved more.)
    let (out, peak_kib) = run_measured(&[
        "run",
        path.to_str().expect("utf-8"),
        "--no-save",
        "--format",
        "json",
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bound_kib = (N >> 10) * 3 / 4;
    assert!(
        peak_kib < bound_kib,
        "peak RSS {peak_kib} KiB, bound {bound_kib} KiB (3/4 of the write)"
    );
    let r = Run::new(serde_json::from_slice(&out.stdout).expect("JSON"));
    let w = r.call("client", "write", 0);
    assert_eq!(w["ret"].as_u64(), Some(N), "{w}");
    assert!(
        w["note"]
            .as_str()
            .is_some_and(|n| n.contains("made as 192 send() calls")),
        "{w}"
    );
    let read: u64 = r
        .calls("server", "read")
        .iter()
        .filter_map(|c| c["ret"].as_u64())
        .sum();
    assert_eq!(read, N, "the server read every byte");
    assert!(
        r.segments().iter().all(|s| !Run::has_flag(s, "RST")),
        "no RST"
    );
    let first_read = r.call("server", "read", 0);
    assert!(
        w["t_ns"].as_i64() < first_read["t_ns"].as_i64(),
        "the write started before the reader's steps"
    );
}
