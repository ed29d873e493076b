//! Every `unsafe` block and system call of hc-trace, each behind a safe
//! function: network namespaces, sockets and TCP_INFO, sock_diag, signals,
//! clocks, memory maps, tracefs, libpcap's extras, and (in [`ptrace`]) the
//! tracer's primitives. Each unsafe block says why it is sound (enforced by
//! `clippy::undocumented_unsafe_blocks`).
#![deny(clippy::undocumented_unsafe_blocks)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bpf;
pub mod clock;
pub mod errno;
pub mod mmap;
pub mod netns;
pub mod owner;
pub mod ptrace;
pub mod signals;
pub mod sock;
pub mod sockdiag;
pub mod system;
pub mod term;
