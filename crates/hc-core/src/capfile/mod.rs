//! Capture files over bytes: [`read`] (classic pcap and pcapng, with
//! comments) and [`pcapng`] (the annotated file hc-trace writes).

pub mod pcapng;
pub mod read;
