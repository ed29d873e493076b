//! Bytes and text from the outside world, read into the observation model:
//! captured frames ([`frame`], and the fast header path [`fast`] that
//! `analyze` uses), the kernel's trace text ([`ftrace`]) and its socket
//! table ([`procnet`]). Every input is hostile: errors, never panics.

pub mod fast;
pub mod frame;
pub mod ftrace;
pub mod procnet;
