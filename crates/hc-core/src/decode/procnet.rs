//! The kernel's socket table as text (`/proc/net/tcp`, `/proc/net/tcp6`),
//! and what a state reading after a call means.
//!
//! While a descriptor is open, TCP_INFO says its socket's state. After
//! close() the descriptor is gone but the connection may live on in the
//! kernel (FIN_WAIT2, TIME_WAIT, LAST_ACK...), so it is looked up by its
//! addresses in the namespace's table, which lists TIME_WAIT sockets too.

use crate::model::{StateObs, TcpState};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The state after a call on an open descriptor: TCP_INFO's answer, and when
/// that is CLOSE while the kernel's table still lists the connection (Linux
/// hands a connection entering TIME_WAIT to a separate small socket), both.
/// `table` looks the connection up; it is asked only in that case.
pub fn after_call(descriptor: Option<TcpState>, table: impl FnOnce() -> StateObs) -> StateObs {
    match descriptor {
        Some(TcpState::CLOSE) => match table() {
            StateObs::ProcNet { state } if state != TcpState::CLOSE => StateObs::Handed {
                descriptor: TcpState::CLOSE,
                table: state,
            },
            _ => StateObs::TcpInfo {
                state: TcpState::CLOSE,
            },
        },
        Some(state) => StateObs::TcpInfo { state },
        None => StateObs::Unknown,
    }
}

/// Finds `local`/`peer` in the text of /proc/net/tcp{,6}. A listener (no
/// peer) matches a row whose remote address is all zeros.
pub fn find_in_proc(text: &str, local: SocketAddr, peer: Option<SocketAddr>) -> StateObs {
    let unspecified = SocketAddr::new(
        if local.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        },
        0,
    );
    let want_peer = peer.unwrap_or(unspecified);
    for row in text.lines().skip(1) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        if cols.len() < 4 {
            continue;
        }
        let (Some(l), Some(r)) = (parse_proc_addr(cols[1]), parse_proc_addr(cols[2])) else {
            continue;
        };
        if l == local && r == want_peer {
            if let Ok(st) = u8::from_str_radix(cols[3], 16) {
                return StateObs::ProcNet {
                    state: TcpState(st),
                };
            }
        }
    }
    StateObs::Gone
}

/// One row of /proc/net/tcp{,6}: a socket of the namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    /// 0 for a socket no process holds any more (an orphan finishing its
    /// close, TIME_WAIT); otherwise some process has it open.
    pub inode: u64,
}

/// Every row of /proc/net/tcp{,6} that parses.
pub fn sockets(text: &str) -> Vec<ProcSocket> {
    text.lines()
        .skip(1)
        .filter_map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            Some(ProcSocket {
                local: parse_proc_addr(cols.get(1)?)?,
                remote: parse_proc_addr(cols.get(2)?)?,
                state: TcpState(u8::from_str_radix(cols.get(3)?, 16).ok()?),
                inode: cols.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// Parses `0100007F:15B3` (IPv4) or the 32-hex-digit IPv6 form. The kernel
/// prints each 32-bit word of the address in host byte order.
fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => {
            let w = u32::from_str_radix(addr, 16).ok()?;
            IpAddr::V4(Ipv4Addr::from(w.to_ne_bytes()))
        }
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rows as the kernel prints them on a little-endian machine.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:15B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0 100 0 0 10 0
   1: 0100007F:B6E2 0100007F:15B3 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:B6E2 00000000000000000000000001000000:15B3 05 00000000:00000000 00:00000000 00000000     0        0 0 1
";

    #[test]
    fn rows_give_addresses_states_and_owners() {
        if cfg!(target_endian = "big") {
            return;
        }
        let rows = sockets(TCP);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].local, "127.0.0.1:5555".parse().unwrap());
        assert_eq!(rows[0].state, TcpState::LISTEN);
        assert_eq!(rows[0].inode, 1234, "held by a process");
        assert_eq!(rows[1].state, TcpState::TIME_WAIT);
        assert_eq!(rows[1].inode, 0, "TIME_WAIT belongs to no process");
        assert!(sockets("header only\n").is_empty());
    }

    #[test]
    fn finds_time_wait_and_listener_by_address() {
        if cfg!(target_endian = "big") {
            return;
        }
        let srv: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let cli: SocketAddr = "127.0.0.1:46818".parse().unwrap();
        assert_eq!(
            find_in_proc(TCP, cli, Some(srv)),
            StateObs::ProcNet {
                state: TcpState::TIME_WAIT
            }
        );
        assert_eq!(
            find_in_proc(TCP, srv, None),
            StateObs::ProcNet {
                state: TcpState::LISTEN
            }
        );
        // The connection seen from the other end is another socket: not found.
        assert_eq!(find_in_proc(TCP, srv, Some(cli)), StateObs::Gone);
    }

    #[test]
    fn reads_ipv6_rows() {
        if cfg!(target_endian = "big") {
            return;
        }
        let srv: SocketAddr = "[::1]:5555".parse().unwrap();
        let cli: SocketAddr = "[::1]:46818".parse().unwrap();
        assert_eq!(
            find_in_proc(TCP6, cli, Some(srv)),
            StateObs::ProcNet {
                state: TcpState::FIN_WAIT2
            }
        );
    }

    #[test]
    fn garbage_rows_are_skipped() {
        let cli: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            find_in_proc("hdr\nnot a row\n1: zz:zz yy:yy 0A\n", cli, None),
            StateObs::Gone
        );
    }
}
