//! The TCP state of one connection by its addresses, from sock_diag netlink.
//!
//! After close() the descriptor is gone, so its state (FIN_WAIT1, TIME_WAIT,
//! LAST_ACK...) must be looked up by address. /proc/net/tcp (what
//! the caller falls back to) lists every socket of the namespace, and a
//! program making thousands of connections leaves thousands in TIME_WAIT, so
//! reading it once per close grows quadratically; an exact sock_diag query is
//! one round trip whatever the table holds. Falls back to /proc when netlink
//! is unavailable.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const HDR: usize = 16;
const REQ: usize = 56;

/// What the kernel's table says of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnosed {
    /// Found, in this state (the kernel's number, include/net/tcp_states.h).
    State(u8),
    /// No socket with these addresses.
    Gone,
}

/// A netlink socket kept open for the whole trace.
pub struct Diag(Option<OwnedFd>);

impl Diag {
    pub fn open() -> Diag {
        // SAFETY: plain socket(2); the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        };
        // SAFETY: a fresh descriptor that nothing else owns.
        Diag((fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The state of `local`↔`peer` as the kernel's table holds it now;
    /// None when netlink cannot answer (not open, a listener, mixed
    /// families), and the caller should read /proc/net/tcp instead.
    pub fn lookup(&self, local: SocketAddr, peer: Option<SocketAddr>) -> Option<Diagnosed> {
        match (&self.0, peer) {
            (Some(fd), Some(peer)) if local.is_ipv4() == peer.is_ipv4() => query(fd, local, peer),
            _ => None,
        }
    }
}

fn put_addr(buf: &mut [u8], ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => buf[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => buf[..16].copy_from_slice(&a.octets()),
    }
}

/// Request body: inet_diag_req_v2 with the socket id filled in.
fn request(local: SocketAddr, peer: SocketAddr) -> Vec<u8> {
    let mut b = vec![0u8; HDR + REQ];
    let len = b.len() as u32;
    b[0..4].copy_from_slice(&len.to_ne_bytes());
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b[8..12].copy_from_slice(&1u32.to_ne_bytes());
    let r = &mut b[HDR..];
    r[0] = if local.is_ipv4() {
        libc::AF_INET as u8
    } else {
        libc::AF_INET6 as u8
    };
    r[1] = libc::IPPROTO_TCP as u8;
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // all states
    r[8..10].copy_from_slice(&local.port().to_be_bytes());
    r[10..12].copy_from_slice(&peer.port().to_be_bytes());
    put_addr(&mut r[12..28], local.ip());
    put_addr(&mut r[28..44], peer.ip());
    // idiag_if = 0, cookie = INET_DIAG_NOCOOKIE
    r[48..56].copy_from_slice(&[0xff; 8]);
    b
}

/// None when netlink itself failed (the caller falls back to /proc).
fn query(fd: &OwnedFd, local: SocketAddr, peer: SocketAddr) -> Option<Diagnosed> {
    let req = request(local, peer);
    // SAFETY: req is a valid buffer of req.len() bytes.
    let n = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if n < 0 {
        return None;
    }
    let mut buf = [0u8; 4096];
    // SAFETY: buf is ours and the kernel writes at most buf.len() bytes.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < HDR as isize {
        return None;
    }
    let buf = &buf[..n as usize];
    let ty = u16::from_ne_bytes([buf[4], buf[5]]);
    if ty == NLMSG_ERROR {
        // ENOENT: no such socket any more.
        return Some(Diagnosed::Gone);
    }
    if ty != SOCK_DIAG_BY_FAMILY || buf.len() < HDR + 4 + 48 {
        return None;
    }
    let m = &buf[HDR..];
    // An exact lookup falls back to a listener on the local port: only the
    // connection itself counts.
    if m[4..8] != req[HDR + 8..HDR + 12] || m[8..40] != req[HDR + 12..HDR + 44] {
        return Some(Diagnosed::Gone);
    }
    Some(Diagnosed::State(m[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn finds_an_established_connection_and_not_a_closed_one() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = TcpStream::connect(l.local_addr().unwrap()).expect("connect");
        let (s, _) = l.accept().expect("accept");
        let d = Diag::open();
        let (cl, sl) = (c.local_addr().unwrap(), s.local_addr().unwrap());
        // 1: TCP_ESTABLISHED.
        assert_eq!(d.lookup(cl, Some(sl)), Some(Diagnosed::State(1)));
        drop(c);
        drop(s);
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(d.lookup(other, Some(sl)), Some(Diagnosed::Gone));
        // The server end closed second: gone or in LAST_ACK/CLOSE, never LISTEN (10).
        assert_ne!(d.lookup(sl, Some(cl)), Some(Diagnosed::State(10)));
    }
}
