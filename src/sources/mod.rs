//! Where observations come from. Each live source runs inside the one
//! session pipeline (`crate::session`); capture files are read directly.
//!
//! - [`scenario`]: a scenario's steps, made by the [`driver`] (with the
//!   [`faults`] it asks for);
//! - [`exec`]: a traced program;
//! - [`capture`]: libpcap, live; [`files`]: capture files on disk;
//! - [`ktrace`]: the kernel's tracepoints; [`sockstate`]: a socket's TCP state.

pub mod capture;
pub mod driver;
pub mod exec;
pub mod faults;
pub mod files;
pub mod ktrace;
pub mod scenario;
pub mod sockstate;
