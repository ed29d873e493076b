//! A traced program as a session source: the tracer stops it at its socket
//! calls (ptrace + seccomp) while the capture runs.
//!
//! - [`tracer`]: the ptrace loop and what each stop means.
//! - [`fdmap`]: descriptor -> socket -> connection across dup, fork, exec.
//!
//! The syscall numbers, the seccomp filter and the ptrace primitives are in
//! `hc_sys::ptrace`; cutting the trace into one story per connection is in
//! `hc_core::exec`.

pub mod fdmap;
pub mod tracer;

use crate::error::AppError;
use crate::session::{Source, WireActivity};
use crate::sources::sockstate::Diag;
use hc_core::model::exec::Sock;
use hc_core::model::StateObs;
use std::ffi::OsString;
use std::time::Duration;
pub use tracer::{resolve, TraceOutcome};

/// Large enough for the bursts of a program making thousands of short
/// connections while the collector thread sleeps between blocks. Blocks
/// (not immediate mode) pack packets by size, so this holds tens of
/// thousands of small segments; the kernel zeroes the whole ring when the
/// capture starts, so a larger one costs time on every run.
pub const CAPTURE_BUFFER: i32 = 64 << 20;
pub const SNAPLEN: i32 = 65_600;
/// Tracefs ring per CPU for exec: ~100,000 state changes of 10,000
/// connections fit without overwriting the first.
pub const KTRACE_BUFFER_KB: u32 = 16 << 10;

pub struct ExecSource {
    pub argv: Vec<OsString>,
    pub timeout: Option<Duration>,
}

impl Source for ExecSource {
    type Output = TraceOutcome;

    fn run(&mut self, _wire: &dyn WireActivity) -> Result<TraceOutcome, AppError> {
        tracer::trace(&tracer::TraceConfig {
            argv: self.argv.clone(),
            timeout: self.timeout,
        })
        .map_err(AppError::trace)
    }

    /// Only the traced program's threads ran its calls.
    fn ours(&self, out: &TraceOutcome, tid: i32) -> bool {
        out.tids.contains(&tid)
    }
}

/// The final state of every socket that had a connection, by socket id,
/// looked up in the kernel's table once the program has ended and the wire
/// has settled.
pub fn final_states(socks: &[Sock]) -> Vec<Option<StateObs>> {
    let diag = Diag::open();
    socks
        .iter()
        .map(|s| {
            s.conn()?;
            Some(diag.lookup(s.local?, s.peer))
        })
        .collect()
}
