//! `-w` never lies and never harms: a regular file is replaced atomically;
//! a FIFO, a character device or standard output is written through; a
//! symbolic link is followed, not replaced; anything else is refused before
//! the run; a save that fails is said and exits 2.
//!
//! Device nodes are made with mknod in a temporary directory: the tests
//! never point -w at the real /dev.

mod common;
use common::*;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A scratch directory of this test, removed by [`Scratch::drop`].
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = temp_path(name);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Scratch(d)
    }
    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for m in ["ro", "tiny"] {
            if self.join(m).exists() {
                let _ = Command::new("umount")
                    .arg(self.join(m))
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mknod_char(path: &Path, major: u32, minor: u32) {
    let ok = Command::new("mknod")
        .arg(path)
        .args(["c", &major.to_string(), &minor.to_string()])
        .status()
        .expect("mknod")
        .success();
    assert!(ok, "mknod {}", path.display());
}

fn shut_wr(extra: &[&str]) -> Output {
    Command::new(bin())
        .args(["scenario", "shut-wr"])
        .args(extra)
        .output()
        .expect("run hc-trace")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn packets_in(path: &Path) -> usize {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "tshark reads {}: {}",
        path.display(),
        text(&out.stderr)
    );
    text(&out.stdout).lines().count()
}

fn is_char_device(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

/// What a run that happened prints last on standard output.
fn ran(o: &Output) -> bool {
    text(&o.stdout).contains("capture  ")
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn character_devices_are_written_through_never_replaced() {
    require_root();
    let d = Scratch::new("devs");
    let null = d.join("null");
    let full = d.join("full");
    mknod_char(&null, 1, 3);
    mknod_char(&full, 1, 7);

    let o = shut_wr(&["-w", null.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(is_char_device(&null), "the null device is still a device");

    // A device that refuses the bytes: the run happened, the save failed, exit 2.
    let o = shut_wr(&["-w", full.to_str().expect("utf-8")]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(ran(&o), "the run was shown");
    assert!(
        err.contains("the capture was not saved") && err.contains("No space left"),
        "{err}"
    );
    assert!(
        text(&o.stdout).contains("saved    nothing: "),
        "the footer does not claim a save: {}",
        text(&o.stdout)
    );
    assert!(is_char_device(&full), "the full device is still a device");

    // Through a symbolic link: the link and the device stay what they were.
    let link = d.join("link");
    std::os::unix::fs::symlink("null", &link).expect("symlink");
    let o = shut_wr(&["-w", link.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert!(is_char_device(&null));
    let names: Vec<_> = std::fs::read_dir(&d.0)
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 3, "no other file was made: {names:?}");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn a_fifo_is_streamed_to_its_reader_and_waited_for() {
    require_root();
    require_tool("tshark");
    let d = Scratch::new("fifo");
    let fifo = d.join("to-wireshark");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let copy = d.join("copy.pcapng");
    // The reader: cat, as Wireshark would (`wireshark -k -i FIFO`).
    let reader = Command::new("sh")
        .arg("-c")
        .arg(format!("cat '{}' > '{}'", fifo.display(), copy.display()))
        .spawn()
        .expect("start the reader");
    let o = shut_wr(&["-w", fifo.to_str().expect("utf-8")]);
    let mut reader = reader;
    assert!(reader.wait().expect("reader").success());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(packets_in(&copy), 11, "the reader got the whole capture");
    assert!(std::fs::symlink_metadata(&fifo)
        .expect("fifo")
        .file_type()
        .is_fifo());

    // Nobody reads: hc-trace says it waits, before running anything, and
    // Ctrl-C ends the wait at once.
    let child = Command::new(bin())
        .args(["scenario", "shut-wr", "-w"])
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().expect("ends");
    assert_eq!(o.status.code(), Some(130));
    assert!(
        text(&o.stderr).contains("waiting for a reader on the FIFO"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty(), "nothing ran");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn dash_streams_the_capture_to_standard_output() {
    require_root();
    require_tools(&["tshark", "script"]);
    let d = Scratch::new("dash");
    let o = shut_wr(&["-w", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let file = d.join("stdout.pcapng");
    std::fs::write(&file, &o.stdout).expect("write");
    assert_eq!(packets_in(&file), 11, "standard output is the pcapng");
    assert!(
        text(&o.stderr).contains("wire    client"),
        "the timeline went to standard error"
    );
    // With -o the timeline goes to its file instead.
    let out = d.join("timeline.txt");
    let o = shut_wr(&["-w", "-", "-o", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::read_to_string(&out)
        .expect("timeline")
        .contains("wire    client"));
    // A terminal is not a place for binary: refused before the run.
    let cmd = format!("{} scenario shut-wr -w -", bin());
    let o = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("standard output is a terminal"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn links_are_followed_and_other_things_refused_before_the_run() {
    require_root();
    require_tool("tshark");
    let d = Scratch::new("links");
    // A link to a file that does not exist yet: the file is made, the link stays.
    let link = d.join("latest.pcapng");
    std::os::unix::fs::symlink("runs/first.pcapng", &link).expect("symlink");
    std::fs::create_dir(d.join("runs")).expect("runs");
    let o = shut_wr(&["-w", link.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(packets_in(&d.join("runs/first.pcapng")), 11);
    // Again: the file it points to is replaced, the link still is a link.
    let o = shut_wr(&["-w", link.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_dir(d.join("runs")).expect("runs").count(),
        1,
        "no temporary file left beside the target"
    );

    // A directory and a socket are refused before anything runs.
    let sock = d.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("unix socket");
    for (path, says) in [
        (d.join("runs"), "is a directory"),
        (sock.clone(), "is a socket"),
    ] {
        let o = shut_wr(&["-w", path.to_str().expect("utf-8")]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(o.stdout.is_empty(), "refused before the run: {err}");
    }
    assert!(std::fs::symlink_metadata(&sock)
        .expect("sock")
        .file_type()
        .is_socket());
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn saves_that_cannot_happen_are_found_before_the_run_or_exit_2() {
    require_root();
    let d = Scratch::new("ro");
    let ro = d.join("ro");
    let tiny = d.join("tiny");
    std::fs::create_dir_all(&ro).expect("ro");
    std::fs::create_dir_all(&tiny).expect("tiny");
    let mount = |args: &[&str], at: &Path| {
        assert!(Command::new("mount")
            .args(args)
            .arg(at)
            .status()
            .expect("mount")
            .success());
    };
    mount(&["-t", "tmpfs", "-o", "ro,size=64k", "hct-ro"], &ro);
    mount(&["-t", "tmpfs", "-o", "size=4k", "hct-tiny"], &tiny);

    // Explicit -w on a read-only file system: refused before the run.
    let o = shut_wr(&["-w", ro.join("x.pcapng").to_str().expect("utf-8")]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!ran(&o), "nothing ran");

    // The default captures/ where it cannot be made: said first, the run
    // goes on and is shown, then exit 2.
    let o = Command::new(bin())
        .current_dir(&ro)
        .args(["scenario", "shut-wr"])
        .output()
        .expect("run");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(ran(&o), "the run was shown");
    assert!(
        err.starts_with("warning: the capture cannot be saved"),
        "said before the run: {err}"
    );
    assert!(err.contains("error: the capture was not saved"), "{err}");

    // A full disk is found when writing: exit 2, and no temporary file left.
    let o = shut_wr(&["-w", tiny.join("x.pcapng").to_str().expect("utf-8")]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(ran(&o));
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(
        std::fs::read_dir(&tiny).expect("tiny").count(),
        0,
        "nothing left on the full disk"
    );

    // Negative control: the same run with room to write exits 0.
    let o = shut_wr(&["-w", d.join("ok.pcapng").to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn a_temporary_file_of_a_killed_run_is_removed_with_a_note() {
    require_root();
    let d = Scratch::new("stale");
    // A process id that does not exist now.
    let dead = (400_000u32..)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid");
    let stale = d.join(&format!(".x.pcapng.tmp-{dead}"));
    let live = d.join(&format!(".x.pcapng.tmp-{}", std::process::id()));
    std::fs::write(&stale, b"half").expect("stale");
    std::fs::write(&live, b"mine").expect("live");
    let o = shut_wr(&["-w", d.join("x.pcapng").to_str().expect("utf-8")]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("removed {}", stale.display())),
        "{err}"
    );
    assert!(!stale.exists());
    assert!(live.exists(), "a live process's file is left alone");
}
