//! hc-trace: what each socket call puts on the wire.
//!
//! The pipeline, one module per box:
//!
//! ```text
//! scenario (steps) -> driver (makes the calls, records Call events)
//! sandbox (private netns) + capture (libpcap) -> wire (frames -> Segment)
//!       -> correlate (calls + segments -> Timeline with causes)
//!       -> render (text timeline or ladder, JSON, Mermaid, SVG) and pcapng (the annotated capture file)
//! explain: what the standards say about each built-in scenario (no run needed)
//!       -> render (text, JSON) and pcapng (the annotated capture file)
//!
//! analyze (capture files) / watch (live): reader -> decode -> flows -> story
//! exec (ptrace: a real program's calls) replaces the driver for `hc-trace exec`
//! ```
pub mod analyze;
pub mod capture;
pub mod cli;
pub mod correlate;
pub mod driver;
pub mod errno;
pub mod exec;
pub mod expect;
pub mod explain;
pub mod faults;
pub mod interrupt;
pub mod ktrace;
pub mod model;
pub mod ownership;
pub mod pcapng;
pub mod predict;
pub mod render;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod scenario;
pub mod session;
pub mod sockstate;
#[cfg(test)]
pub(crate) mod testkit;
pub mod wire;
