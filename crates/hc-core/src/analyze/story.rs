//! A connection's close story as the user reads it: the JSON object
//! (analyze's schema 2, see docs/json.md) and the text row and sentence.
//!
//! Everything said about an RST's reason is an inference from the wire, so
//! its text starts with "INFERRED"; the kernel's own reason is not in any
//! capture, which the output says once ([`KERNEL_NOTE`]).

use crate::model::Nanos;
use serde::Serialize;
use std::net::SocketAddr;

/// Said once per output: what a capture cannot tell.
pub const KERNEL_NOTE: &str = "RST reasons are INFERRED from the wire alone: a saved capture does not \
hold the kernel's own reason for a reset (live runs can read it from the kernel's tcp_send_reset tracepoint).";

/// The two ends of a connection: `a` sent the SYN when the SYN was captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum End {
    A,
    B,
}

impl End {
    pub fn idx(self) -> usize {
        match self {
            End::A => 0,
            End::B => 1,
        }
    }
    pub fn from_idx(i: usize) -> End {
        if i == 0 {
            End::A
        } else {
            End::B
        }
    }
    pub fn other(self) -> End {
        match self {
            End::A => End::B,
            End::B => End::A,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            End::A => "a",
            End::B => "b",
        }
    }
}

/// What most likely made the kernel send an RST (always an inference).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RstKind {
    /// Answers a SYN: nothing listened on the port.
    Refused,
    /// RST instead of FIN: close() with unread data, or SO_LINGER 0.
    Abortive,
    /// Answers data that arrived after the receiver had closed (sent its FIN).
    DataAfterClose,
    /// Both FINs had been sent already.
    AfterFins,
    /// A stateless answer to a segment no socket accepted.
    NoSocket,
    /// The same end had already reset the connection.
    Repeat,
    /// Nothing of the connection was captured before it.
    Unknown,
    /// The connection went on after it (the same end answered the SYN, sent
    /// new data or acknowledged more): forged, or not accepted by the receiver.
    Ignored,
}

impl RstKind {
    pub fn label(self) -> &'static str {
        match self {
            RstKind::Refused => "refused",
            RstKind::Abortive => "abortive",
            RstKind::DataAfterClose => "data-after-close",
            RstKind::AfterFins => "after-fins",
            RstKind::NoSocket => "no-socket",
            RstKind::Repeat => "repeat",
            RstKind::Unknown => "unknown",
            RstKind::Ignored => "ignored",
        }
    }
}

/// One FIN or RST in the story.
#[derive(Clone, Debug, Serialize)]
pub struct Close {
    pub from: End,
    /// Nanoseconds since the Unix epoch, as the capture stamped it.
    pub t_ns: Nanos,
    /// The frame's number, 1-based as Wireshark counts (several files:
    /// in the order they were merged by time, as mergecap writes them).
    pub frame: u64,
    pub why: String,
    /// For RSTs: the inferred reason as a short code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<RstKind>,
    /// For RSTs: the data in flight that the reset threw away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discarded: Option<Discarded>,
}

/// Data an RST discarded: sent by one end, not acknowledged by the other
/// (what the receiver got but its application had not read cannot be seen
/// on the wire).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Discarded {
    /// Sent by the resetting end, not acknowledged by its peer; `None` when
    /// no acknowledgment from the peer was captured.
    pub sent: Option<Unacked>,
    /// Sent by the peer, not acknowledged by the resetting end; `None` when
    /// that is unknown (the peer's direction was not captured, or the
    /// resetting end never sent an acknowledgment).
    pub received: Option<Unacked>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Unacked {
    pub bytes: u64,
    /// The last frame that carried such data (`None` when `bytes` is 0).
    pub last_frame: Option<u64>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct HalfClose {
    /// New data bytes the other end sent after the first FIN (and the closer accepted).
    pub bytes_after_first_fin: u64,
    /// From the first FIN to the other end's FIN (or RST, or its last data).
    pub duration_ns: i64,
}

/// One connection, from its first captured segment to its close.
#[derive(Clone, Debug, Serialize)]
pub struct Story {
    pub id: u64,
    pub a: SocketAddr,
    pub b: SocketAddr,
    pub first_ns: Nanos,
    pub last_ns: Nanos,
    /// First and last frame of the connection (numbered as in [`Close::frame`]).
    pub first_frame: u64,
    pub last_frame: u64,
    pub syn_captured: bool,
    pub segments: u64,
    pub bytes_a_to_b: u64,
    pub bytes_b_to_a: u64,
    pub fins: Vec<Close>,
    pub rsts: Vec<Close>,
    pub active_closer: Option<End>,
    pub half_close: Option<HalfClose>,
    pub anomalies: Vec<String>,
    /// Closed on the wire (both FINs acknowledged, or reset) within the capture.
    pub closed: bool,
}

/// `--only`: which connections to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    /// Any RST
    Rst,
    /// Data flowed after the first FIN
    HalfClose,
    /// An RST inferred as an abortive close
    Abortive,
    /// An RST answering a SYN
    Refused,
}

/// The user's filters, applied when a story is emitted.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub port: Option<u16>,
    pub host: Option<std::net::IpAddr>,
    pub only: Option<Only>,
}

impl Filter {
    pub fn wants(&self, s: &Story) -> bool {
        if let Some(p) = self.port {
            if s.a.port() != p && s.b.port() != p {
                return false;
            }
        }
        if let Some(h) = self.host {
            if s.a.ip() != h && s.b.ip() != h {
                return false;
            }
        }
        let has = |k: RstKind| s.rsts.iter().any(|r| r.kind == Some(k));
        match self.only {
            None => true,
            Some(Only::Rst) => !s.rsts.is_empty(),
            Some(Only::HalfClose) => s.half_close.is_some(),
            Some(Only::Abortive) => has(RstKind::Abortive),
            Some(Only::Refused) => has(RstKind::Refused),
        }
    }
}

impl Story {
    /// FIN, FIN+FIN, RST, FIN+RST, FIN+FIN+RST, refused, or open. RSTs the
    /// connection went on after (`ignored`) do not count.
    pub fn how(&self) -> String {
        let counted: Vec<&Close> = self
            .rsts
            .iter()
            .filter(|r| r.kind != Some(RstKind::Ignored))
            .collect();
        if self.fins.is_empty()
            && !counted.is_empty()
            && counted.iter().all(|r| r.kind == Some(RstKind::Refused))
        {
            return "refused".into();
        }
        let mut parts = Vec::new();
        match self.fins.len() {
            0 => {}
            1 => parts.push("FIN"),
            _ => parts.push("FIN+FIN"),
        }
        if !counted.is_empty() {
            parts.push("RST");
        }
        if parts.is_empty() {
            return "open".into();
        }
        parts.join("+")
    }

    pub fn end_addr(&self, e: End) -> SocketAddr {
        match e {
            End::A => self.a,
            End::B => self.b,
        }
    }
}
