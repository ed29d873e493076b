//! Capture files over bytes: [`read`] (classic pcap and pcapng, with
//! comments), [`merge`] (several files as one, in time order) and
//! [`pcapng`] (the annotated file hc-trace writes).

pub mod merge;
pub mod pcapng;
pub mod read;
