//! A traced program's run: its calls and the capture cut into one story
//! per connection ([`sections`]), ready to render.

pub mod sections;

use crate::model::exec::{ExitStatus, Sock, Traced};
use crate::model::{LinkType, RawPacket, StateObs};
use crate::report::{PcapCounters, Report};
use crate::session::KernelRecord;
use std::path::PathBuf;
use std::time::Duration;

/// After --timeout's SIGTERM, how long a program has before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// One traced run, ready to render.
#[derive(Debug)]
pub struct ExecRun {
    pub command: Vec<String>,
    pub pid: u32,
    pub status: ExitStatus,
    pub timed_out: bool,
    pub timeout: Option<Duration>,
    /// One report per connection, in the order they began.
    pub sections: Vec<Report>,
    /// Socket calls that belong to no connection (a listener's own calls
    /// when it served none, a socket that never connected).
    pub unattached: Option<Report>,
    pub stops: u64,
    pub packets: usize,
    pub kept: usize,
    pub counters: PcapCounters,
    pub iface: String,
    pub linktype: LinkType,
    pub snaplen: u32,
    pub file: Option<PathBuf>,
    pub file_error: Option<String>,
}

/// Everything one traced run observed, before any of it was interpreted
/// (see [`crate::session`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ExecRecording {
    pub version: u32,
    pub command: Vec<String>,
    pub pid: u32,
    pub status: ExitStatus,
    pub timed_out: bool,
    pub timeout: Option<Duration>,
    pub stops: u64,
    pub namespace: String,
    pub iface: String,
    /// Every captured packet belongs to the program (a private namespace).
    pub keep_all: bool,
    pub counters: PcapCounters,
    pub snaplen: u32,
    pub linktype: LinkType,
    pub packets: Vec<RawPacket>,
    pub calls: Vec<Traced>,
    pub socks: Vec<Sock>,
    /// Each socket's state in the kernel's table when the program had ended.
    pub states: Vec<Option<StateObs>>,
    pub kernel: KernelRecord,
}

/// The run of a recording: one report per connection, and the packets kept.
pub fn assemble(rec: ExecRecording) -> (ExecRun, Vec<RawPacket>) {
    let kernel = rec.kernel.clone();
    assemble_with(rec, move || kernel)
}

/// As [`assemble`], with the kernel's events read by `kernel` (on another
/// thread, while the packets are parsed).
fn assemble_with(
    rec: ExecRecording,
    kernel: impl FnOnce() -> KernelRecord,
) -> (ExecRun, Vec<RawPacket>) {
    let ctx = sections::Context {
        command: rec.command.join(" "),
        namespace: rec.namespace.clone(),
        iface: rec.iface.clone(),
        counters: rec.counters,
        snaplen: rec.snaplen,
        timed_out: rec.timed_out.then_some(rec.timeout).flatten(),
        keep_all: rec.keep_all,
    };
    let total = rec.packets.len();
    let built = sections::build(
        rec.calls,
        &rec.socks,
        &rec.states,
        rec.linktype,
        rec.packets,
        kernel,
        &ctx,
    );
    let run = ExecRun {
        command: rec.command,
        pid: rec.pid,
        status: rec.status,
        timed_out: rec.timed_out,
        timeout: rec.timeout,
        sections: built.sections,
        unattached: built.unattached,
        stops: rec.stops,
        packets: total,
        kept: built.packets.len(),
        counters: rec.counters,
        iface: rec.iface,
        linktype: rec.linktype,
        snaplen: rec.snaplen,
        file: None,
        file_error: None,
    };
    (run, built.packets)
}

impl ExecRun {
    /// What hc-trace exits with: the program's own status.
    pub fn exit_code(&self) -> u8 {
        self.status.shell_code().clamp(0, 255) as u8
    }
}
