//! Facts about the machine and this process.

/// "Linux 6.18.0": what Wireshark shows as the capture's operating system.
pub fn os_name() -> Option<String> {
    // SAFETY: utsname is plain old data; all zeroes is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own and NUL-terminates each field.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(format!("{} {}", field(&u.sysname), field(&u.release)))
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Mounts tracefs at /sys/kernel/tracing (root only).
pub fn mount_tracefs() -> std::io::Result<()> {
    let src = c"nodev";
    let target = c"/sys/kernel/tracing";
    let fstype = c"tracefs";
    // SAFETY: all pointers are valid NUL-terminated strings; data is null.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// libpcap facts the `pcap` crate does not expose: the handle's timestamp
/// precision is nanoseconds, and its snap length.
pub fn pcap_precision_and_snaplen(cap: &pcap::Capture<pcap::Active>) -> (bool, i32) {
    extern "C" {
        fn pcap_get_tstamp_precision(p: *mut libc::c_void) -> libc::c_int;
        fn pcap_snapshot(p: *mut libc::c_void) -> libc::c_int;
    }
    const PCAP_TSTAMP_PRECISION_NANO: libc::c_int = 1;
    let handle = cap.as_ptr().cast::<libc::c_void>();
    // SAFETY: `handle` is the live pcap_t owned by `cap`, which outlives
    // the calls; both only read it (libpcap >= 1.5).
    let (precision, snaplen) =
        unsafe { (pcap_get_tstamp_precision(handle), pcap_snapshot(handle)) };
    (precision == PCAP_TSTAMP_PRECISION_NANO, snaplen)
}

/// Asks the kernel not to hand this packet socket the copies of packets
/// the host sends (`PACKET_IGNORE_OUTGOING`, Linux >= 4.20).
///
/// On `lo` every packet passes the taps twice, once going out and once
/// coming in, and libpcap throws the outgoing copy away in userspace. With
/// this option the kernel neither clones nor copies it, which is work done
/// in the traced program's own system calls.
pub fn ignore_outgoing(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
    let one: libc::c_int = 1;
    // SAFETY: `fd` is a live descriptor for the borrow; the option value is
    // a c_int on our stack, its size given exactly.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// This thread's user and system CPU time in µs (getrusage RUSAGE_THREAD).
pub fn thread_cpu_us() -> Option<(i64, i64)> {
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return None;
    }
    let us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    Some((us(ru.ru_utime), us(ru.ru_stime)))
}

/// Waits until `fd` is readable or `ms` have passed. Errors (EINTR) just
/// end the wait early: callers loop anyway.
pub fn wait_readable(fd: std::os::fd::RawFd, ms: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, owned here, for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

/// Clears O_NONBLOCK on `fd` (a FIFO opened without blocking, to find out
/// whether a reader is there, is then written to normally).
pub fn set_blocking(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor the caller keeps open; no pointers.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a process with this id exists (any process: a reused id counts
/// as alive, so what it might own is never taken from it).
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new("/proc").join(pid.to_string()).exists()
}

/// Makes the helper `cmd` starts (nft, iptables) get SIGKILL when the
/// thread that started it ends (prctl PR_SET_PDEATHSIG): a helper must not
/// go on changing a namespace after hc-trace itself was killed.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and calls only prctl,
    // which is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub use libc::{ENXIO, O_NONBLOCK};

/// Opens `path` for reading without blocking (O_NONBLOCK): a read of an
/// empty pipe (a tracefs `trace_pipe`) returns WouldBlock instead of waiting.
pub fn open_nonblocking(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Lowers the calling thread's scheduling priority to `nice` (0 to 19):
/// work that can wait, so that the program being traced keeps its CPU.
/// Errors are ignored: at worst the thread keeps its priority.
pub fn lower_this_thread(nice: i32) {
    // SAFETY: gettid and setpriority take and return plain integers; the
    // target is the calling thread itself.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice.clamp(0, 19));
    }
}
