//! What hc-trace itself does to the wire on a scenario's request, and what
//! it did to each segment: observations like any other, shown in the timeline.

use super::{Nanos, Side, TcpFlags};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A fault a scenario step asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Drop the next FIN `Side` sends, once, at its peer's input.
    DropFin(Side),
    /// From now on, hold every segment at its receiver's input.
    Hold,
    /// Deliver every held segment, in the order they were held.
    Release,
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::DropFin(s) => format!(
                "drop the next FIN the {s} sends, once, at the {}'s input (nftables)",
                s.other()
            ),
            Fault::Hold => {
                "hold every segment at its receiver's input until released (iptables NFQUEUE)"
                    .into()
            }
            Fault::Release => {
                "release the held segments all at once; what follows passes at once".into()
            }
        }
    }
}

/// What hc-trace did to one segment, for the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tampered {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub flags: TcpFlags,
    /// When it reached the hook (held) or the rule was set (dropped).
    pub from: Nanos,
    /// When it was let through; None: dropped.
    pub released: Option<Nanos>,
}
