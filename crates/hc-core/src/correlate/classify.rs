//! Which end of a connection is the client: decided here once, for every
//! source (the correlator, exec's cutting of a trace into connections, and
//! analyze's flow tracker), from what a segment shows.
//!
//! The rule, in order:
//! 1. An end that is a known listening address (scenario's server, a
//!    traced program's listener) is the server.
//! 2. A SYN without ACK comes from the client; a SYN-ACK goes to it.
//! 3. Otherwise the end with the higher port is the client (ephemeral ports
//!    are high); on equal ports, the sender.

use crate::model::{addr_match, TcpFlags};
use std::net::SocketAddr;

/// The connection of a segment from `src` to `dst`, as (client, server).
pub fn client_end(
    src: SocketAddr,
    dst: SocketAddr,
    flags: TcpFlags,
    listeners: &[SocketAddr],
) -> (SocketAddr, SocketAddr) {
    let src_is_client = if listeners.iter().any(|l| addr_match(*l, src)) {
        false
    } else if listeners.iter().any(|l| addr_match(*l, dst)) {
        true
    } else if flags.syn() {
        !flags.ack()
    } else {
        src.port() >= dst.port()
    };
    if src_is_client {
        (src, dst)
    } else {
        (dst, src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const SYNACK: TcpFlags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);

    #[test]
    fn a_known_listener_is_the_server_whatever_the_flags() {
        let (c, s) = (a("10.0.0.1:80"), a("10.0.0.2:40000"));
        // The high port listens here: rule 1 beats rule 3.
        assert_eq!(client_end(c, s, ACK, &[s]), (c, s));
        assert_eq!(client_end(s, c, ACK, &[s]), (c, s));
        // A wildcard listener matches by port.
        assert_eq!(client_end(c, s, ACK, &[a("0.0.0.0:40000")]), (c, s));
    }

    #[test]
    fn syn_senders_are_clients_and_syn_ack_receivers_too() {
        let (x, y) = (a("10.0.0.1:5000"), a("10.0.0.2:6000"));
        assert_eq!(client_end(x, y, SYN, &[]), (x, y));
        assert_eq!(client_end(y, x, SYNACK, &[]), (x, y));
    }

    #[test]
    fn without_syn_the_higher_port_is_the_client_and_ties_go_to_the_sender() {
        let (x, y) = (a("10.0.0.1:5000"), a("10.0.0.2:6000"));
        assert_eq!(client_end(x, y, ACK, &[]), (y, x));
        assert_eq!(client_end(y, x, ACK, &[]), (y, x));
        let (p, q) = (a("10.0.0.1:179"), a("10.0.0.2:179"));
        assert_eq!(client_end(p, q, ACK, &[]), (p, q));
    }
}
