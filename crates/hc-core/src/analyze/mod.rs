//! The close story of every connection in a capture, from the wire alone:
//! decoded segments ([`crate::decode::fast`]) go through the flow tracker
//! ([`flows`]), which hands out each connection's [`story::Story`] as soon
//! as the connection is over.

pub mod flows;
pub mod story;
