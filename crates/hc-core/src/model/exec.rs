//! What a traced program did: its calls, the sockets they acted on, and how
//! it ended. The tracer (any backend) fills these in; [`crate::exec`] cuts
//! them into one story per connection.

use super::{Call, SocketAddr};
use serde::{Deserialize, Serialize};

/// Index into the trace's list of sockets; stable for the whole trace.
pub type SockId = usize;

/// How the socket came to be, which decides which end of a connection it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// socket() returned it; it has not connected or listened yet.
    Fresh,
    /// It called connect(): the client end.
    Connecting,
    /// It called listen().
    Listening,
    /// accept() returned it: the server end.
    Accepted,
}

/// One TCP socket of the traced program.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sock {
    pub ino: u64,
    pub role: Role,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// Bytes handed to the kernel by write-family calls: the next write's stream offset.
    pub written: u64,
    /// Descriptors (in all tables) that refer to it.
    pub refs: usize,
}

impl Sock {
    /// The connection as the correlator names it: (client end, server end).
    pub fn conn(&self) -> Option<(SocketAddr, SocketAddr)> {
        let (l, p) = (self.local?, self.peer?);
        Some(match self.role {
            Role::Accepted | Role::Listening => (p, l),
            Role::Fresh | Role::Connecting => (l, p),
        })
    }
}

/// One recorded call and the socket it acted on. `call.side` is filled in
/// once the trace is over, when every socket's role is known.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Traced {
    pub call: Call,
    pub sock: Option<SockId>,
}

/// A way the program moved bytes or closed sockets that no traced system
/// call shows (io_uring): named in the timeline as the possible source of
/// data, FINs and RSTs that no traced call explains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Untraced {
    /// The process that set it up.
    pub pid: u32,
    /// What it is, in words (`io_uring`).
    pub what: String,
    /// When it was set up.
    pub ts: super::Nanos,
}

/// Why hc-trace stopped the program before it ended on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// --timeout expired: SIGTERM, SIGKILL after the grace period.
    Timeout,
    /// hc-trace itself got this signal (`kill`, `timeout`, a CI
    /// cancellation) and passed it on to the program, SIGKILL after the
    /// grace period.
    Signal(String),
    /// A second Ctrl-C at the terminal: SIGKILL at once (the program had the
    /// first one from the terminal itself).
    SecondInterrupt,
    /// `attach`: hc-trace stopped tracing (why) and left the process running.
    Detached(String),
}

/// How the program ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    Code(i32),
    /// Ended by a signal: its number and its name on this system.
    Signal(i32, String),
    /// `attach`: still running when hc-trace stopped tracing it.
    Running,
}

impl ExitStatus {
    /// The shell's convention: the code, or 128 + the signal number.
    pub fn shell_code(&self) -> i32 {
        match self {
            ExitStatus::Code(c) => *c,
            ExitStatus::Signal(s, _) => 128 + s,
            // hc-trace's own run went well; the process is not ours to report.
            ExitStatus::Running => 0,
        }
    }
    pub fn describe(&self) -> String {
        match self {
            ExitStatus::Code(c) => format!("exit status {c}"),
            ExitStatus::Signal(_, name) => format!("killed by {name}"),
            ExitStatus::Running => "still running".into(),
        }
    }
}
