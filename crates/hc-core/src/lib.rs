//! hc-trace's core: what was observed, and the story it tells. No I/O, no
//! unsafe code: every input arrives as data, every answer leaves as data.
//!
//! ```text
//! model      observations: calls, segments, kernel events, faults, final states
//! decode     frames, kernel trace text and socket tables -> model
//! capfile    capture files over bytes (read; pcapng encoding)
//! scenario   the scenario language, its expectations and predictions
//! correlate  calls + segments + kernel events -> Timeline, every segment with its causes
//! report     one finished run (a Timeline and what surrounds it)
//! check      the invariants every story must keep (its self-check)
//! session    a recorded run -> Report (the one assembly every source shares)
//! exec       a traced program's run -> one Report per connection
//! analyze    any capture -> the close story of each connection
//! ```
#![forbid(unsafe_code)]

pub mod analyze;
pub mod capfile;
pub mod check;
pub mod correlate;
pub mod decode;
pub mod exec;
pub mod model;
pub mod report;
pub mod scenario;
pub mod session;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
