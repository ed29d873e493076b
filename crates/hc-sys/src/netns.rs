//! The network namespace a run happens in.
//!
//! A private namespace holds nothing but `lo`, so the capture sees only the
//! scenario's segments, ports never collide with the host's services, and a
//! scenario that misbehaves (RSTs, half-open connections) cannot touch real
//! traffic. Root gets one with a plain `unshare(CLONE_NEWNET)`; other users get
//! one inside a user namespace in which they are root, which is enough to
//! bring `lo` up and to open a packet socket on it.
//!
//! Everything here must happen while the process has a single thread: the
//! kernel refuses `CLONE_NEWUSER` to a multi-threaded process, and
//! `CLONE_NEWNET` would move only the calling thread, leaving a capture or
//! runtime thread behind in the host namespace.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use thiserror::Error;

/// Which namespace the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetnsChoice {
    /// A fresh namespace for this run, gone when the process exits.
    Private,
    /// An existing namespace from `ip netns add NAME` (/run/netns/NAME),
    /// e.g. one the user has set up with qdiscs or firewall rules.
    Named(String),
}

/// How the namespace was obtained, which decides what the run may do in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SandboxKind {
    PrivateRoot,
    /// Inside a user namespace: root there, an ordinary user on the host.
    PrivateRootless,
    Named(String),
}

/// The namespace this process now lives in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    pub kind: SandboxKind,
}

impl Sandbox {
    /// One line for the run's header, so a reader knows no other traffic was captured.
    pub fn describe(&self) -> String {
        match &self.kind {
            SandboxKind::PrivateRoot => {
                "private network namespace (only lo, created for this run)".into()
            }
            SandboxKind::PrivateRootless => {
                "private network namespace in a user namespace (only lo, created for this run without root)"
                    .into()
            }
            SandboxKind::Named(name) => format!("named network namespace {name} (/run/netns/{name})"),
        }
    }
}

/// A namespace could not be entered; the CLI prints it and exits with 2.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}\nhint: {hint}")]
pub struct SandboxError {
    /// What failed, with the system's reason.
    pub message: String,
    /// What the user can do about it.
    pub hint: String,
}

/// Moves this process into the chosen network namespace and brings `lo` up.
///
/// Must run before any thread exists (unshare(CLONE_NEWUSER) fails with
/// EINVAL once a second thread exists; CLONE_NEWNET with threads moves only
/// the calling thread).
pub fn enter(choice: &NetnsChoice) -> Result<Sandbox, SandboxError> {
    ensure_single_threaded()?;
    let kind = match choice {
        NetnsChoice::Private => enter_private()?,
        NetnsChoice::Named(name) => {
            enter_named(name)?;
            SandboxKind::Named(name.clone())
        }
    };
    bring_lo_up().map_err(|e| match kind {
        // Restricted user namespaces (Ubuntu's AppArmor) may allow the
        // unshare yet deny the capabilities in it: same cause, same fix.
        SandboxKind::PrivateRootless => rootless_refused("bringing lo up", &e),
        _ => SandboxError {
            message: format!("cannot bring lo up in the network namespace: {e}"),
            hint: "this needs CAP_NET_ADMIN in the namespace: run with sudo".into(),
        },
    })?;
    Ok(Sandbox { kind })
}

fn enter_private() -> Result<SandboxKind, SandboxError> {
    // SAFETY: geteuid/getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        match unshare(libc::CLONE_NEWNET) {
            Ok(()) => return Ok(SandboxKind::PrivateRoot),
            // Root without CAP_SYS_ADMIN (a container): a user namespace may
            // still be allowed, so fall through to the rootless path.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => {
                return Err(SandboxError {
                    message: format!(
                        "cannot create a network namespace: unshare(CLONE_NEWNET): {e}"
                    ),
                    hint: "the kernel needs CONFIG_NET_NS".into(),
                })
            }
        }
    }
    unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET)
        .map_err(|e| rootless_refused("unshare(CLONE_NEWUSER|CLONE_NEWNET)", &e))?;
    // setgroups must be denied before an unprivileged process may write gid_map.
    write_proc("/proc/self/setgroups", "deny")?;
    write_proc("/proc/self/uid_map", &format!("0 {uid} 1"))?;
    write_proc("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    Ok(SandboxKind::PrivateRootless)
}

fn enter_named(name: &str) -> Result<(), SandboxError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(SandboxError {
            message: format!("{name:?} is not a network namespace name"),
            hint: "use a name as listed by `ip netns list`".into(),
        });
    }
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => SandboxError {
            message: format!("network namespace {name} does not exist ({path} not found)"),
            hint: format!("create it with `sudo ip netns add {name}`, or leave out the option to use a private one"),
        },
        _ => SandboxError {
            message: format!("cannot open {path}: {e}"),
            hint: "named namespaces belong to root: run with sudo".into(),
        },
    })?;
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = io::Error::last_os_error();
        return Err(SandboxError {
            message: format!("cannot enter network namespace {name}: setns: {e}"),
            hint: if e.raw_os_error() == Some(libc::EPERM) {
                "entering a named namespace needs root: run with sudo".into()
            } else {
                format!("check that {path} is a network namespace (`ip netns list`)")
            },
        });
    }
    Ok(())
}

/// Refuses early with a clear message instead of letting the kernel fail
/// with EINVAL, or silently leave other threads in the host namespace.
fn ensure_single_threaded() -> Result<(), SandboxError> {
    // Without /proc there is nothing to check; the kernel will still refuse
    // the user-namespace case.
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Ok(());
    };
    let threads = tasks.count();
    if threads > 1 {
        return Err(SandboxError {
            message: format!("the network namespace must be entered while the process has one thread, it has {threads}"),
            hint: "this is a bug in hc-trace: sandbox::enter must run at the start of main, before any runtime or capture thread".into(),
        });
    }
    Ok(())
}

fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare only changes this process's namespaces.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn write_proc(path: &str, content: &str) -> Result<(), SandboxError> {
    std::fs::write(path, content)
        .map_err(|e| rootless_refused(&format!("writing {content:?} to {path}"), &e))
}

/// The one error for "no root, and user namespaces are not allowed": both
/// ways out, with the sysctl for each family of distributions.
fn rootless_refused(step: &str, e: &io::Error) -> SandboxError {
    let mut hint = String::from(
        "either run with sudo, or allow unprivileged user namespaces:\n  \
         Ubuntu 24.04+:          sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0\n  \
         Debian, older kernels:  sudo sysctl -w kernel.unprivileged_userns_clone=1\n  \
         any distribution:       user.max_user_namespaces must be > 0 (sudo sysctl -w user.max_user_namespaces=10000)",
    );
    let now: Vec<String> = [
        "kernel/apparmor_restrict_unprivileged_userns",
        "kernel/unprivileged_userns_clone",
        "user/max_user_namespaces",
    ]
    .iter()
    .filter_map(|key| {
        let value = std::fs::read_to_string(format!("/proc/sys/{key}")).ok()?;
        Some(format!("{} = {}", key.replace('/', "."), value.trim()))
    })
    .collect();
    if !now.is_empty() {
        hint.push_str("\n  on this machine now:    ");
        hint.push_str(&now.join(", "));
    }
    SandboxError {
        message: format!(
            "cannot create a private network namespace without root: {step} failed: {e}"
        ),
        hint,
    }
}

/// Sets IFF_UP on `lo` with the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls: a new
/// namespace starts with `lo` down, and nix has no wrapper for these.
fn bring_lo_up() -> io::Result<()> {
    // SAFETY: plain socket creation; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };

    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = CString::new("lo").map_err(io::Error::other)?;
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes_with_nul()) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags of `req`, which we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just initialised the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shows_message_and_hint() {
        let e = rootless_refused(
            "unshare(CLONE_NEWUSER|CLONE_NEWNET)",
            &io::Error::from_raw_os_error(libc::EPERM),
        );
        let text = e.to_string();
        assert!(text.contains("without root"), "{text}");
        assert!(text.contains("\nhint: either run with sudo"), "{text}");
        for sysctl in [
            "kernel.apparmor_restrict_unprivileged_userns=0",
            "kernel.unprivileged_userns_clone=1",
            "user.max_user_namespaces",
        ] {
            assert!(text.contains(sysctl), "{text}");
        }
    }

    #[test]
    fn bad_names_are_refused_before_touching_the_filesystem() {
        for name in ["", "a/b", "..", "."] {
            let e = enter_named(name).expect_err("refused");
            assert!(e.message.contains("not a network namespace name"), "{e}");
        }
    }

    #[test]
    fn test_threads_make_enter_refuse() {
        // A parked helper guarantees a second thread even if the harness
        // runs this test on the main thread.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let helper = std::thread::spawn(move || rx.recv());
        let before = std::fs::read_link("/proc/self/ns/net").ok();
        let e = enter(&NetnsChoice::Private).expect_err("refused with threads");
        drop(tx);
        let _ = helper.join();
        assert!(e.message.contains("one thread"), "{e}");
        assert_eq!(before, std::fs::read_link("/proc/self/ns/net").ok());
    }

    #[test]
    fn describe_names_the_kind() {
        let named = Sandbox {
            kind: SandboxKind::Named("lab".into()),
        };
        assert!(named.describe().contains("/run/netns/lab"));
        let private = Sandbox {
            kind: SandboxKind::PrivateRoot,
        };
        assert!(private.describe().contains("only lo"));
    }
}
