//! How a run is made: saved pcapng read back by tshark, rootless, under sudo,
//! in a named namespace, over IPv6, all scenarios at once, interrupted.
//! Those run with `--features privileged` (scripts/test, as root); `list`,
//! `--help` and the usage errors need no privilege.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The built-in scenarios are the files under scenarios/.
fn builtin_count() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "scenario")
        })
        .count()
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn tshark_reads_the_causes_from_the_saved_pcapng() {
    require_tools(&["tshark", "capinfos"]);
    let dir = temp_path("d");
    let file = dir.join("sub/shut-wr.pcapng");
    let out = Command::new(bin())
        .args(["scenario", "shut-wr", "-w", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Command::new("tshark")
        .args([
            "-r",
            file.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "tcp.flags.fin",
            "-e",
            "frame.comment",
        ])
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&t.stdout);
    assert!(t.status.success(), "tshark reads the file");
    let fin_rows: Vec<&str> = rows
        .lines()
        .filter(|l| l.starts_with("1\t") || l.starts_with("True\t"))
        .collect();
    assert_eq!(fin_rows.len(), 2, "two FINs: {rows}");
    assert!(
        fin_rows[0].contains("FIN from client shutdown(SHUT_WR)"),
        "{rows}"
    );
    assert!(fin_rows[1].contains("FIN from server close()"), "{rows}");
    assert!(
        rows.lines()
            .all(|l| l.split('\t').nth(1).is_some_and(|c| !c.is_empty())),
        "every packet has a comment"
    );
    // The section comment lists the calls that put nothing on the wire.
    let info = Command::new("capinfos")
        .arg(file.to_str().unwrap())
        .output()
        .expect("run capinfos");
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(
        text.contains("Calls that put nothing on the wire"),
        "{text}"
    );
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
    assert_eq!(left.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn files_written_under_sudo_belong_to_the_invoking_user() {
    require_root();
    let dir = temp_path("d");
    let file = dir.join("caps/x.pcapng");
    let out = Command::new(bin())
        .args(["scenario", "refused", "-w", file.to_str().unwrap()])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65533")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let m = std::fs::metadata(&file).unwrap();
    assert_eq!((m.uid(), m.gid()), (65534, 65533));
    let d = std::fs::metadata(file.parent().unwrap()).unwrap();
    assert_eq!(d.uid(), 65534, "the directory it created too");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn rootless_run_as_an_unprivileged_user() {
    // Root, to switch to an unprivileged user.
    require_root();
    require_tool("setpriv");
    // The test binary may sit under a directory nobody cannot enter: copy it out.
    let dir = temp_path("rootless");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("hc-trace");
    std::fs::copy(bin(), &exe).unwrap();
    Command::new("chmod")
        .args(["-R", "a+rwx", dir.to_str().unwrap()])
        .status()
        .unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&exe)
        .args(["scenario", "close-unread", "--format", "json", "-w"])
        .arg(dir.join("cu.pcapng"))
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !(out.status.code() == Some(2) && stderr.contains("user namespace")),
        "this test needs a kernel that allows unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1, and on Ubuntu \
         kernel.apparmor_restrict_unprivileged_userns=0): {stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r = Run::new(serde_json::from_slice(&out.stdout).unwrap());
    assert!(
        r.doc["namespace"]
            .as_str()
            .unwrap()
            .contains("user namespace"),
        "{}",
        r.doc["namespace"]
    );
    assert!(
        r.caused_flag(r.call("client", "close", 0), "RST"),
        "the same story without root"
    );
    assert_eq!(
        std::fs::metadata(dir.join("cu.pcapng")).unwrap().uid(),
        65534
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn named_namespace_is_used_and_left_in_place() {
    require_root();
    require_tool("ip");
    let ns = format!("hct-test-{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success());
    let (code, doc) = run_json(&["scenario", "shut-wr", "--netns", &ns, "--port", "6123"]);
    let exists = std::path::Path::new("/run/netns").join(&ns).exists();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert_eq!(code, 0, "{doc:#}");
    let r = Run::new(doc);
    assert!(r.doc["namespace"].as_str().unwrap().contains(&ns));
    assert_eq!(r.doc["server"]["addr"], "127.0.0.1:6123");
    assert!(
        exists,
        "hc-trace does not delete a namespace it did not make"
    );
}

/// Looked for before anything runs: needs no privilege.
#[test]
fn a_missing_named_namespace_is_a_usage_error() {
    let out = Command::new(bin())
        .args(["scenario", "shut-wr", "--netns", "no-such-ns-hct"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ip netns add"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn ipv6_runs_over_the_loopback() {
    let (code, doc) = run_json(&["scenario", "linger0", "-6"]);
    assert_eq!(code, 0, "{doc:#}");
    let r = Run::new(doc);
    assert_eq!(r.doc["server"]["addr"], "[::1]:5555");
    assert!(r.caused_flag(r.call("client", "close", 0), "RST"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn all_scenarios_end_with_a_summary_table() {
    // fin-lost and simultaneous-close are among them.
    require_tools(&["nft", "iptables"]);
    let out = Command::new(bin())
        .args(["scenario", "--all", "--no-save"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("scenario "))
        .collect();
    assert_eq!(
        table.len(),
        1 + builtin_count(),
        "a header and one row per scenario:\n{text}"
    );
    let row = |name: &str| {
        *table
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap()
    };
    assert!(
        row("close-unread").contains("client close() = 0 → RST"),
        "{}",
        row("close-unread")
    );
    assert!(
        row("shut-rd").contains("shutdown(SHUT_RD) = 0 → nothing"),
        "{}",
        row("shut-rd")
    );
    assert!(table[1..].iter().all(|l| l.trim_end().ends_with("ok")));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn interrupted_run_says_so_exits_130_and_keeps_a_valid_file() {
    require_tool("tshark");
    let dir = temp_path("d");
    let file = dir.join("int.pcapng");
    let child = Command::new(bin())
        .args(["scenario", "no-shutdown", "-w", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(450));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap_or("")
            .contains("interrupted by SIGINT"),
        "{text}"
    );
    assert!(
        !text.contains("server close("),
        "the run stopped before its last steps: {text}"
    );
    let t = Command::new("tshark")
        .args(["-r", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        t.status.success() && !t.stdout.is_empty(),
        "the saved file is valid"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn list_and_help_teach() {
    let out = Command::new(bin()).arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["shut-wr", "close-unread", "listen-close"] {
        assert!(text.contains(name));
    }
    let help = Command::new(bin())
        .args(["scenario", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit status") && help.contains("130"),
        "{help}"
    );
    let out = Command::new(bin())
        .args(["scenario", "shut-wr", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad option is a usage error");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn colour_follows_the_terminal_no_color_and_clicolor_force() {
    // `script` (util-linux) gives the run a pseudo-terminal.
    require_tool("script");
    // Lines with a colour escape, running on a pseudo-terminal.
    let on_tty = |env: &[(&str, &str)]| {
        let mut cmd = Command::new("script");
        cmd.args([
            "-q",
            "-c",
            &format!("{} scenario refused --no-save", bin()),
            "/dev/null",
        ])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\u{1b}["))
            .count()
    };
    assert!(on_tty(&[]) > 0, "a terminal gets colour");
    assert_eq!(on_tty(&[("NO_COLOR", "1")]), 0, "NO_COLOR turns it off");
    let piped = Command::new(bin())
        .args(["scenario", "refused", "--no-save"])
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&piped.stdout).contains("\u{1b}["),
        "CLICOLOR_FORCE colours a pipe"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn rootless_exec_traces_with_ptrace_and_refuses_a_demanded_ebpf() {
    // Root, to switch to an unprivileged user (no CAP_BPF, a user namespace).
    require_root();
    require_tool("setpriv");
    let dir = temp_path("rootless-exec");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("hc-trace");
    std::fs::copy(bin(), &exe).unwrap();
    Command::new("chmod")
        .args(["-R", "a+rwx", dir.to_str().unwrap()])
        .status()
        .unwrap();
    let run = |backend: &str| {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(&exe)
            .args([
                "exec",
                "--format",
                "json",
                "--no-save",
                "--backend",
                backend,
            ])
            .args(["--", "sh", "-c", "exit 3"])
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let auto = run("auto");
    let stderr = String::from_utf8_lossy(&auto.stderr);
    assert_eq!(
        auto.status.code(),
        Some(3),
        "the program's status: {stderr}"
    );
    let text = String::from_utf8_lossy(&auto.stdout);
    let doc: serde_json::Value =
        serde_json::from_str(&text[text.find("{\n").expect("JSON")..]).unwrap();
    assert_eq!(doc["exec"]["backend"], "ptrace", "{}", doc["exec"]);
    // Demanded, eBPF is an environment error, with the way out named.
    let ebpf = run("ebpf");
    let stderr = String::from_utf8_lossy(&ebpf.stderr);
    assert_eq!(ebpf.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--backend ptrace"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
