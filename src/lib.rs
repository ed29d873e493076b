//! hc-trace: what each socket call puts on the wire.
//!
//! The pipeline, one module per box:
//!
//! ```text
//! scenario (steps) -> driver (makes the calls, records Call events)
//! sandbox (private netns) + capture (libpcap) -> wire (frames -> Segment)
//!       -> correlate (calls + segments -> Timeline with causes)
//!       -> render (text, JSON) and pcapng (the annotated capture file)
//! ```
pub mod capture;
pub mod model;
pub mod sandbox;
pub mod wire;
