//! Which system calls a traced program is stopped for, the seccomp filter
//! that stops it for those only, and how their arguments read.
//!
//! Stopping at every system call (plain PTRACE_SYSCALL) costs two context
//! switches to the tracer per call, whatever the call; a program that mostly
//! computes, or writes to files, would crawl. A seccomp filter returning
//! SECCOMP_RET_TRACE for the socket-related calls only lets everything else
//! run at full speed (strace --seccomp-bpf works the same way).

/// A traced system call, independent of the architecture's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sys {
    Socket,
    Bind,
    Listen,
    Connect,
    Accept,
    Accept4,
    Shutdown,
    Close,
    CloseRange,
    Write,
    Writev,
    Sendto,
    Sendmsg,
    Read,
    Readv,
    Recvfrom,
    Recvmsg,
    Setsockopt,
    Dup,
    Dup2,
    Dup3,
    Fcntl,
    /// sendfile(out, in, offset, count): data into a socket from a file
    /// (glibc's sendfile64 is the same system call on 64-bit architectures).
    Sendfile,
    /// splice(in, off_in, out, off_out, len, flags): into a socket from a
    /// pipe (a write), or out of one into a pipe (a read).
    Splice,
    Sendmmsg,
    Recvmmsg,
    /// copy_file_range(in, off_in, out, off_out, len, flags): the kernel
    /// refuses sockets (EINVAL), but a program may try.
    CopyFileRange,
    /// execve/execveat: close-on-exec descriptors close during it, and its
    /// entry is when their FINs may leave.
    Execve,
    Execveat,
    /// io_uring_setup: from then on the process may send, receive and close
    /// through the ring, which no system call of the tracer sees.
    IoUringSetup,
}

impl Sys {
    pub fn name(self) -> &'static str {
        match self {
            Sys::Socket => "socket",
            Sys::Bind => "bind",
            Sys::Listen => "listen",
            Sys::Connect => "connect",
            Sys::Accept => "accept",
            Sys::Accept4 => "accept4",
            Sys::Shutdown => "shutdown",
            Sys::Close => "close",
            Sys::CloseRange => "close_range",
            Sys::Write => "write",
            Sys::Writev => "writev",
            Sys::Sendto => "sendto",
            Sys::Sendmsg => "sendmsg",
            Sys::Read => "read",
            Sys::Readv => "readv",
            Sys::Recvfrom => "recvfrom",
            Sys::Recvmsg => "recvmsg",
            Sys::Setsockopt => "setsockopt",
            Sys::Dup => "dup",
            Sys::Dup2 => "dup2",
            Sys::Dup3 => "dup3",
            Sys::Fcntl => "fcntl",
            Sys::Sendfile => "sendfile",
            Sys::Splice => "splice",
            Sys::Sendmmsg => "sendmmsg",
            Sys::Recvmmsg => "recvmmsg",
            Sys::CopyFileRange => "copy_file_range",
            Sys::Execve => "execve",
            Sys::Execveat => "execveat",
            Sys::IoUringSetup => "io_uring_setup",
        }
    }

    /// Calls that hand bytes to a socket given as their first argument.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Sys::Write | Sys::Writev | Sys::Sendto | Sys::Sendmsg | Sys::Sendfile | Sys::Sendmmsg
        )
    }

    /// Calls that take bytes from a socket given as their first argument.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Sys::Read | Sys::Readv | Sys::Recvfrom | Sys::Recvmsg | Sys::Recvmmsg
        )
    }

    /// Calls with a descriptor in and one out (splice, copy_file_range):
    /// a write when the out one is the socket, a read when the in one is.
    pub fn is_between(self) -> bool {
        matches!(self, Sys::Splice | Sys::CopyFileRange)
    }
}

/// The traced calls with this architecture's numbers.
fn table() -> Vec<(i64, Sys)> {
    #[allow(unused_mut)]
    let mut t = vec![
        (libc::SYS_socket, Sys::Socket),
        (libc::SYS_bind, Sys::Bind),
        (libc::SYS_listen, Sys::Listen),
        (libc::SYS_connect, Sys::Connect),
        (libc::SYS_accept, Sys::Accept),
        (libc::SYS_accept4, Sys::Accept4),
        (libc::SYS_shutdown, Sys::Shutdown),
        (libc::SYS_close, Sys::Close),
        (libc::SYS_close_range, Sys::CloseRange),
        (libc::SYS_write, Sys::Write),
        (libc::SYS_writev, Sys::Writev),
        (libc::SYS_sendto, Sys::Sendto),
        (libc::SYS_sendmsg, Sys::Sendmsg),
        (libc::SYS_read, Sys::Read),
        (libc::SYS_readv, Sys::Readv),
        (libc::SYS_recvfrom, Sys::Recvfrom),
        (libc::SYS_recvmsg, Sys::Recvmsg),
        (libc::SYS_setsockopt, Sys::Setsockopt),
        (libc::SYS_dup, Sys::Dup),
        (libc::SYS_dup3, Sys::Dup3),
        (libc::SYS_fcntl, Sys::Fcntl),
        (libc::SYS_sendfile, Sys::Sendfile),
        (libc::SYS_splice, Sys::Splice),
        (libc::SYS_sendmmsg, Sys::Sendmmsg),
        (libc::SYS_recvmmsg, Sys::Recvmmsg),
        (libc::SYS_copy_file_range, Sys::CopyFileRange),
        (libc::SYS_execve, Sys::Execve),
        (libc::SYS_execveat, Sys::Execveat),
        (libc::SYS_io_uring_setup, Sys::IoUringSetup),
    ];
    // Newer architectures (aarch64) have no dup2; libc implements it with dup3.
    #[cfg(target_arch = "x86_64")]
    t.push((libc::SYS_dup2, Sys::Dup2));
    #[allow(clippy::unnecessary_cast)]
    t.into_iter().map(|(n, s)| (n as i64, s)).collect()
}

pub fn from_nr(nr: u64) -> Option<Sys> {
    table()
        .into_iter()
        .find(|(n, _)| *n as u64 == nr)
        .map(|(_, s)| s)
}

/// A lookup table from syscall number to Sys, built once per trace.
pub struct Decoder(Vec<Option<Sys>>);

impl Decoder {
    pub fn new() -> Self {
        let t = table();
        let max = t.iter().map(|(n, _)| *n).max().unwrap_or(0) as usize;
        let mut v = vec![None; max + 1];
        for (n, s) in t {
            v[n as usize] = Some(s);
        }
        Decoder(v)
    }
    pub fn get(&self, nr: u64) -> Option<Sys> {
        usize::try_from(nr)
            .ok()
            .and_then(|i| self.0.get(i).copied().flatten())
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: u32 = 0;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// BPF_LD | BPF_W | BPF_ABS (0x00 | 0x00 | 0x20).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x05 | 0x10;
const BPF_RET_K: u16 = 0x06;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The classic-BPF program: SECCOMP_RET_TRACE for the traced calls of this
/// architecture, SECCOMP_RET_ALLOW for everything else (including calls
/// made through another ABI, which the tracer could not decode anyway).
pub fn filter() -> Vec<libc::sock_filter> {
    let nrs: Vec<u32> = table().iter().map(|(n, _)| *n as u32).collect();
    let n = nrs.len();
    let mut f = vec![
        // seccomp_data.arch is at offset 4, .nr at 0.
        stmt(BPF_LD_W_ABS, 4),
        libc::sock_filter {
            code: BPF_JEQ_K,
            jt: 1,
            jf: 0,
            k: AUDIT_ARCH,
        },
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        stmt(BPF_LD_W_ABS, 0),
    ];
    for (i, nr) in nrs.iter().enumerate() {
        f.push(libc::sock_filter {
            code: BPF_JEQ_K,
            jt: (n - i) as u8,
            jf: 0,
            k: *nr,
        });
    }
    f.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    f.push(stmt(BPF_RET_K, libc::SECCOMP_RET_TRACE));
    f
}

pub fn shut_name(how: u64) -> String {
    match how as i32 {
        libc::SHUT_RD => "SHUT_RD".into(),
        libc::SHUT_WR => "SHUT_WR".into(),
        libc::SHUT_RDWR => "SHUT_RDWR".into(),
        other => other.to_string(),
    }
}

pub fn family_name(f: u64) -> String {
    match f as i32 {
        libc::AF_INET => "AF_INET".into(),
        libc::AF_INET6 => "AF_INET6".into(),
        libc::AF_UNIX => "AF_UNIX".into(),
        other => other.to_string(),
    }
}

pub fn type_name(t: u64) -> String {
    let t = t as i32;
    let mut s = match t & 0xf {
        libc::SOCK_STREAM => "SOCK_STREAM".to_string(),
        libc::SOCK_DGRAM => "SOCK_DGRAM".to_string(),
        other => other.to_string(),
    };
    if t & libc::SOCK_NONBLOCK != 0 {
        s.push_str("|SOCK_NONBLOCK");
    }
    if t & libc::SOCK_CLOEXEC != 0 {
        s.push_str("|SOCK_CLOEXEC");
    }
    s
}

/// A TCP socket as socket(2) asks for it: inet family, stream, TCP or default protocol.
pub fn is_tcp_socket(domain: u64, ty: u64, proto: u64) -> bool {
    matches!(domain as i32, libc::AF_INET | libc::AF_INET6)
        && (ty as i32) & 0xf == libc::SOCK_STREAM
        && matches!(proto as i32, 0 | libc::IPPROTO_TCP)
}

/// Flags of send/recv as a C programmer writes them.
pub fn msg_flags(f: u64) -> String {
    if f == 0 {
        return "0".into();
    }
    let mut v = Vec::new();
    for (bit, name) in [
        (libc::MSG_NOSIGNAL, "MSG_NOSIGNAL"),
        (libc::MSG_DONTWAIT, "MSG_DONTWAIT"),
        (libc::MSG_MORE, "MSG_MORE"),
        (libc::MSG_PEEK, "MSG_PEEK"),
        (libc::MSG_WAITALL, "MSG_WAITALL"),
        (libc::MSG_OOB, "MSG_OOB"),
    ] {
        if f as i32 & bit != 0 {
            v.push(name.to_string());
        }
    }
    let known = [
        libc::MSG_NOSIGNAL,
        libc::MSG_DONTWAIT,
        libc::MSG_MORE,
        libc::MSG_PEEK,
        libc::MSG_WAITALL,
        libc::MSG_OOB,
    ]
    .iter()
    .fold(0, |a, b| a | b);
    let rest = f as i32 & !known;
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    v.join("|")
}

/// The socket options whose value the tracer reads and shows: they change
/// what goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShownOpt {
    Linger,
    Cork,
    NoDelay,
}

pub fn shown_opt(level: i32, name: i32) -> Option<ShownOpt> {
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_LINGER) => Some(ShownOpt::Linger),
        (libc::IPPROTO_TCP, libc::TCP_CORK) => Some(ShownOpt::Cork),
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => Some(ShownOpt::NoDelay),
        _ => None,
    }
}

/// fcntl(2) commands that duplicate a descriptor.
pub fn is_dupfd(cmd: i32) -> bool {
    matches!(cmd, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC)
}

/// splice(2) flags as a C programmer writes them.
pub fn splice_flags(f: u64) -> String {
    if f == 0 {
        return "0".into();
    }
    let mut v = Vec::new();
    for (bit, name) in [
        (1, "SPLICE_F_MOVE"),
        (2, "SPLICE_F_NONBLOCK"),
        (4, "SPLICE_F_MORE"),
        (8, "SPLICE_F_GIFT"),
    ] {
        if f & bit != 0 {
            v.push(name.to_string());
        }
    }
    if f & !0xf != 0 {
        v.push(format!("{:#x}", f & !0xf));
    }
    v.join("|")
}

/// Bytes a sendmmsg/recvmmsg moved: the sum of `msg_len` of the first
/// `n` entries of the `struct mmsghdr` array the kernel filled in.
pub fn mmsg_bytes(array: &[u8], n: usize) -> Option<u64> {
    // struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; } (padded).
    let hdr = std::mem::size_of::<libc::msghdr>();
    let size = std::mem::size_of::<libc::mmsghdr>();
    (0..n)
        .map(|i| {
            let at = i * size + hdr;
            array
                .get(at..at + 4)
                .map(|b| u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])))
        })
        .sum()
}

/// The size of one `struct mmsghdr` entry.
pub const MMSGHDR_SIZE: usize = std::mem::size_of::<libc::mmsghdr>();

/// close_range(2)'s CLOSE_RANGE_CLOEXEC flag: marks instead of closing.
pub const CLOSE_RANGE_CLOEXEC: u64 = 4;

/// Kernel-internal "restart the call" codes a tracer sees when a signal
/// interrupts a blocking call; user space never sees them.
pub fn is_restart(errno: i64) -> bool {
    (512..=516).contains(&errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_jumps_land_on_the_trace_return() {
        let f = filter();
        let last = f.len() - 1;
        assert_eq!(f[last].k, libc::SECCOMP_RET_TRACE);
        for (i, ins) in f.iter().enumerate().skip(4) {
            if ins.code == BPF_JEQ_K {
                assert_eq!(i + 1 + ins.jt as usize, last, "jump at {i}");
            }
        }
    }

    #[test]
    fn decoder_knows_every_traced_call() {
        let d = Decoder::new();
        for (n, s) in table() {
            assert_eq!(d.get(n as u64), Some(s));
            assert_eq!(from_nr(n as u64), Some(s));
        }
        assert_eq!(d.get(libc::SYS_getpid as u64), None);
        assert_eq!(d.get(u64::MAX), None);
    }

    #[test]
    fn names_read_like_c() {
        assert_eq!(shut_name(1), "SHUT_WR");
        assert!(is_tcp_socket(2, 1 | 0x80000, 0));
        assert!(!is_tcp_socket(1, 1, 0));
        assert_eq!(msg_flags(libc::MSG_NOSIGNAL as u64), "MSG_NOSIGNAL");
        assert_eq!(type_name(1 | 0x80000), "SOCK_STREAM|SOCK_CLOEXEC");
        assert_eq!(splice_flags(1 | 4), "SPLICE_F_MOVE|SPLICE_F_MORE");
    }

    #[test]
    fn mmsg_bytes_adds_the_msg_len_of_each_entry() {
        let mut a = vec![0u8; 3 * MMSGHDR_SIZE];
        let hdr = std::mem::size_of::<libc::msghdr>();
        for (i, n) in [10u32, 20, 99].iter().enumerate() {
            a[i * MMSGHDR_SIZE + hdr..i * MMSGHDR_SIZE + hdr + 4].copy_from_slice(&n.to_ne_bytes());
        }
        assert_eq!(
            mmsg_bytes(&a, 2),
            Some(30),
            "only the entries the call returned"
        );
        assert_eq!(mmsg_bytes(&a, 4), None, "beyond what was read");
    }
}
