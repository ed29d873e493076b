//! What the kernel itself reported (tracepoints), on the capture's clock.

use super::{Nanos, TcpState};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// One tracepoint event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum KernelEvent {
    /// sock:inet_sock_set_state for the socket `local`↔`remote`.
    State {
        ts: Nanos,
        local: SocketAddr,
        remote: SocketAddr,
        old: TcpState,
        new: TcpState,
        /// The event ran in one of this process's threads (during one of its calls).
        by_us: bool,
    },
    /// tcp:tcp_send_reset: an RST from `src` to `dst`, the socket's state and the kernel's reason.
    SendReset {
        ts: Nanos,
        src: SocketAddr,
        dst: SocketAddr,
        state: String,
        reason: String,
    },
}

impl KernelEvent {
    pub fn ts(&self) -> Nanos {
        match self {
            KernelEvent::State { ts, .. } | KernelEvent::SendReset { ts, .. } => *ts,
        }
    }
}

/// Whether an RST reason names something the sending side's own call did
/// (an abort at close or disconnect) or an answer to an arriving segment;
/// None when the reason fits neither. Used only to cross-check the
/// correlator's attribution: both are shown, a disagreement is flagged.
pub fn reason_kind(reason: &str) -> Option<ReasonKind> {
    match reason {
        "TCP_ABORT_ON_CLOSE"
        | "TCP_ABORT_ON_LINGER"
        | "TCP_ABORT_ON_MEMORY"
        | "TCP_STATE"
        | "TCP_DISCONNECT_WITH_DATA" => Some(ReasonKind::Call),
        "NO_SOCKET"
        | "TCP_ABORT_ON_DATA"
        | "TCP_TIMEWAIT_SOCKET"
        | "TCP_INVALID_ACK_SEQUENCE"
        | "TCP_RFC7323_PAWS"
        | "TCP_TOO_OLD_ACK"
        | "TCP_ACK_UNSENT_DATA"
        | "TCP_FLAGS"
        | "TCP_OLD_ACK"
        | "INVALID_SYN" => Some(ReasonKind::Answer),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonKind {
    Call,
    Answer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_classified_or_left_open() {
        assert_eq!(reason_kind("TCP_ABORT_ON_CLOSE"), Some(ReasonKind::Call));
        assert_eq!(reason_kind("NO_SOCKET"), Some(ReasonKind::Answer));
        assert_eq!(reason_kind("NOT_SPECIFIED"), None);
    }
}
