//! The socket calls a scenario makes, one safe function per system call.
//!
//! Each returns what the kernel returned: the call's value, or its errno.
//! Nothing is retried or hidden, because what the call did is the
//! observation: `close()` of a descriptor already closed must come back
//! as EBADF, not be absorbed. Descriptors are plain numbers (`RawFd`) for
//! the same reason: the driver shows them as a C programmer sees them.

use crate::errno::Errno;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::time::Duration;

/// A system call's result: its return value, or the errno it failed with.
pub type SysResult = Result<i64, Errno>;

fn check(rc: i64) -> SysResult {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

/// `shutdown(2)`'s second argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shut {
    Rd,
    Wr,
    RdWr,
}

/// The socket options a scenario (or the driver's plumbing) sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    Linger { on: bool, secs: i32 },
    Cork(bool),
    NoDelay(bool),
    RcvBuf(i32),
    ReuseAddr(bool),
    RecvTimeout(Duration),
    SendTimeout(Duration),
}

impl Opt {
    /// Level and name as C writes them: `SOL_SOCKET, SO_LINGER`.
    pub fn c_name(self) -> &'static str {
        match self {
            Opt::Linger { .. } => "SOL_SOCKET, SO_LINGER",
            Opt::Cork(_) => "IPPROTO_TCP, TCP_CORK",
            Opt::NoDelay(_) => "IPPROTO_TCP, TCP_NODELAY",
            Opt::RcvBuf(_) => "SOL_SOCKET, SO_RCVBUF",
            Opt::ReuseAddr(_) => "SOL_SOCKET, SO_REUSEADDR",
            Opt::RecvTimeout(_) => "SOL_SOCKET, SO_RCVTIMEO",
            Opt::SendTimeout(_) => "SOL_SOCKET, SO_SNDTIMEO",
        }
    }
}

/// A new TCP socket (close-on-exec) of the address's family.
pub fn socket_for(addr: SocketAddr) -> Result<RawFd, Errno> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) takes no pointers.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        Err(Errno::last())
    } else {
        Ok(fd)
    }
}

pub fn bind(fd: RawFd, addr: SocketAddr) -> SysResult {
    let (sa, len) = to_raw(addr);
    // SAFETY: sa is a valid sockaddr of length len that lives for the call.
    check(i64::from(unsafe {
        libc::bind(fd, (&sa as *const libc::sockaddr_storage).cast(), len)
    }))
}

pub fn listen(fd: RawFd, backlog: i32) -> SysResult {
    // SAFETY: listen(2) takes no pointers.
    check(i64::from(unsafe { libc::listen(fd, backlog) }))
}

pub fn connect(fd: RawFd, addr: SocketAddr) -> SysResult {
    let (sa, len) = to_raw(addr);
    // SAFETY: sa is a valid sockaddr of length len that lives for the call.
    check(i64::from(unsafe {
        libc::connect(fd, (&sa as *const libc::sockaddr_storage).cast(), len)
    }))
}

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC): the new descriptor.
pub fn accept(fd: RawFd) -> SysResult {
    // SAFETY: null address pointers are allowed and mean "don't tell me".
    check(i64::from(unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC,
        )
    }))
}

/// send(fd, buf, len, MSG_NOSIGNAL): a closed peer gives EPIPE, not SIGPIPE.
pub fn send(fd: RawFd, buf: &[u8]) -> SysResult {
    // SAFETY: buf is valid for buf.len() bytes for the call.
    check(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) } as i64)
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> SysResult {
    // SAFETY: buf is valid and writable for buf.len() bytes for the call.
    check(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } as i64)
}

pub fn shutdown(fd: RawFd, how: Shut) -> SysResult {
    let how = match how {
        Shut::Rd => libc::SHUT_RD,
        Shut::Wr => libc::SHUT_WR,
        Shut::RdWr => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown(2) takes no pointers.
    check(i64::from(unsafe { libc::shutdown(fd, how) }))
}

/// close(2) on a number: closing one this process does not own is the
/// caller's business (a scenario may close a descriptor twice on purpose).
pub fn close(fd: RawFd) -> SysResult {
    // SAFETY: close(2) takes no pointers; a wrong number fails with EBADF.
    check(i64::from(unsafe { libc::close(fd) }))
}

pub fn dup(fd: RawFd) -> SysResult {
    // SAFETY: dup(2) takes no pointers.
    check(i64::from(unsafe { libc::dup(fd) }))
}

pub fn setsockopt(fd: RawFd, opt: Opt) -> SysResult {
    let int = |level, name, v: i32| {
        // SAFETY: the value is an int that lives for the call.
        check(i64::from(unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&v as *const i32).cast(),
                size_of::<i32>() as libc::socklen_t,
            )
        }))
    };
    let timeout = |name, d: Duration| {
        let tv = libc::timeval {
            tv_sec: d.as_secs() as libc::time_t,
            tv_usec: d.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: tv is a timeval that lives for the call.
        check(i64::from(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        }))
    };
    match opt {
        Opt::Linger { on, secs } => {
            let l = libc::linger {
                l_onoff: i32::from(on),
                l_linger: secs,
            };
            // SAFETY: l is a linger struct that lives for the call.
            check(i64::from(unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&l as *const libc::linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                )
            }))
        }
        Opt::Cork(b) => int(libc::IPPROTO_TCP, libc::TCP_CORK, i32::from(b)),
        Opt::NoDelay(b) => int(libc::IPPROTO_TCP, libc::TCP_NODELAY, i32::from(b)),
        Opt::RcvBuf(n) => int(libc::SOL_SOCKET, libc::SO_RCVBUF, n),
        Opt::ReuseAddr(b) => int(libc::SOL_SOCKET, libc::SO_REUSEADDR, i32::from(b)),
        Opt::RecvTimeout(d) => timeout(libc::SO_RCVTIMEO, d),
        Opt::SendTimeout(d) => timeout(libc::SO_SNDTIMEO, d),
    }
}

/// tcpi_state of an open descriptor (the kernel's state number), or None
/// when it is not a TCP socket.
pub fn tcp_state(fd: RawFd) -> Option<u8> {
    // SAFETY: tcp_info is plain data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0 && len >= 1).then_some(info.tcpi_state)
}

/// What TCP_INFO says about a socket: its state and, where the kernel
/// reports them (Linux 4.19+), how many bytes of the stream the program has
/// handed to the kernel so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: u8,
    /// Bytes handed to the socket since the connection began, by any path
    /// (write, sendfile, io_uring, ...): data sent once (tcpi_bytes_sent
    /// less tcpi_bytes_retrans) plus data queued but not sent yet
    /// (tcpi_notsent_bytes). The SYN and FIN are not counted.
    pub handed: Option<u64>,
}

/// getsockopt(TCP_INFO) read as raw bytes, so fields newer than the libc
/// crate's struct are found at their offsets in the kernel's `struct tcp_info`.
pub fn tcp_info(fd: RawFd) -> Option<TcpInfo> {
    const NOTSENT: usize = 144;
    const BYTES_SENT: usize = 200;
    const BYTES_RETRANS: usize = 208;
    let mut b = [0u8; 256];
    let mut len = b.len() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into our buffer.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            b.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 || len < 1 {
        return None;
    }
    let len = len as usize;
    let u64_at = |at: usize| {
        b.get(at..at + 8)
            .filter(|_| at + 8 <= len)
            .map(|x| u64::from_ne_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]))
    };
    let u32_at = |at: usize| {
        b.get(at..at + 4)
            .filter(|_| at + 4 <= len)
            .map(|x| u64::from(u32::from_ne_bytes([x[0], x[1], x[2], x[3]])))
    };
    let handed = match (u64_at(BYTES_SENT), u64_at(BYTES_RETRANS), u32_at(NOTSENT)) {
        (Some(sent), Some(re), Some(notsent)) => Some(sent.saturating_sub(re) + notsent),
        _ => None,
    };
    Some(TcpInfo {
        state: b[0],
        handed,
    })
}

/// getsockname(2), None when it fails.
pub fn local_addr(fd: RawFd) -> Option<SocketAddr> {
    name_of(fd, false)
}

/// getpeername(2), None when it fails (not connected, reset).
pub fn peer_addr(fd: RawFd) -> Option<SocketAddr> {
    name_of(fd, true)
}

fn name_of(fd: RawFd, peer: bool) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast();
    // SAFETY: the kernel writes at most `len` bytes into ss.
    let rc = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if rc < 0 {
        return None;
    }
    from_raw(&ss)
}

/// A SocketAddr as the sockaddr_storage the socket calls take.
fn to_raw(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; we fill the family's part.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn from_raw(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// A `struct sockaddr` read out of another process's memory (the tracer
/// copies the bytes): the address, when it is an internet one.
pub fn sockaddr_from_bytes(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes([*b.first()?, *b.get(1)?]));
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        libc::AF_INET6 => {
            let flow = u32::from_ne_bytes(b.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(b.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["127.0.0.1:5555", "[::1]:80", "10.1.2.3:65535"] {
            let addr: SocketAddr = a.parse().unwrap();
            let (ss, len) = to_raw(addr);
            assert_eq!(from_raw(&ss), Some(addr));
            // SAFETY: ss is len bytes of initialised memory.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    (&ss as *const libc::sockaddr_storage).cast::<u8>(),
                    len as usize,
                )
            };
            assert_eq!(sockaddr_from_bytes(bytes), Some(addr));
        }
        assert_eq!(
            sockaddr_from_bytes(&[1, 0, 0, 0]),
            None,
            "AF_UNIX is not an address we show"
        );
        assert_eq!(sockaddr_from_bytes(&[2]), None);
    }

    #[test]
    fn calls_return_the_kernels_answer() {
        let l = socket_for("127.0.0.1:0".parse().unwrap()).expect("socket");
        assert_eq!(bind(l, "127.0.0.1:0".parse().unwrap()), Ok(0));
        assert_eq!(listen(l, 1), Ok(0));
        let at = local_addr(l).expect("bound");
        let c = socket_for(at).expect("socket");
        assert_eq!(connect(c, at), Ok(0));
        let s = accept(l).expect("accept") as RawFd;
        assert_eq!(send(c, b"hi"), Ok(2));
        let mut buf = [0u8; 8];
        assert_eq!(read(s, &mut buf), Ok(2));
        assert_eq!(tcp_state(s), Some(1), "ESTABLISHED");
        assert_eq!(shutdown(c, Shut::Wr), Ok(0));
        assert_eq!(read(s, &mut buf), Ok(0), "end of file after the FIN");
        for fd in [c, s, l] {
            assert_eq!(close(fd), Ok(0));
        }
        // Not `c` again: the tests run on threads of one process, and
        // another test may own that number by now (closing it under that
        // test aborts it: "IO Safety violation"). No process has this one.
        assert_eq!(
            close(RawFd::MAX).map_err(|e| e.name()),
            Err("EBADF".into()),
            "closing a descriptor that is not open"
        );
    }
}
