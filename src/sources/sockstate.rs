//! A socket's TCP state, from the kernel: TCP_INFO while the descriptor is
//! open; the kernel's socket table (sock_diag, or /proc/net/tcp) after close.

pub use hc_core::decode::procnet::after_call;
use hc_core::decode::procnet::{find_in_proc, sockets, ProcSocket};
use hc_core::model::{StateObs, TcpState};
use hc_sys::sockdiag::Diagnosed;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// tcpi_state of an open descriptor, or None when it is not a TCP socket.
pub fn tcp_info_state(fd: RawFd) -> Option<TcpState> {
    hc_sys::sock::tcp_state(fd).map(TcpState)
}

/// The state of the connection `local`↔`peer` from the namespace's
/// /proc/net/tcp{,6}, for a descriptor that no longer exists.
pub fn lookup_closed(local: SocketAddr, peer: Option<SocketAddr>) -> StateObs {
    let file = if local.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    match std::fs::read_to_string(file) {
        Ok(text) => find_in_proc(&text, local, peer),
        Err(_) => StateObs::Unknown,
    }
}

/// Exact lookups by address over sock_diag (one round trip whatever the
/// table holds: a program leaving thousands of TIME_WAIT sockets would make
/// reading /proc once per socket quadratic), falling back to /proc.
pub struct Diag(hc_sys::sockdiag::Diag);

impl Diag {
    pub fn open() -> Diag {
        Diag(hc_sys::sockdiag::Diag::open())
    }

    pub fn lookup(&self, local: SocketAddr, peer: Option<SocketAddr>) -> StateObs {
        match self.0.lookup(local, peer) {
            Some(Diagnosed::State(s)) => StateObs::ProcNet { state: TcpState(s) },
            Some(Diagnosed::Gone) => StateObs::Gone,
            None => lookup_closed(local, peer),
        }
    }
}

/// Sockets of this namespace that some process holds (not orphans, not
/// TIME_WAIT) with `port` at either end: another program's listener or
/// connection, which a run on that port would collide with.
pub fn port_users(port: u16) -> Vec<ProcSocket> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| sockets(&t))
        .filter(|s| s.inode != 0 && (s.local.port() == port || s.remote.port() == port))
        .collect()
}
