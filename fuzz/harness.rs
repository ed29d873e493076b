//! What each fuzz target does with one input, shared by the libFuzzer targets
//! (fuzz/fuzz_targets/*.rs) and the plain `cargo test` that replays the
//! committed corpus and every saved crash (tests/fuzz_regressions.rs), so CI
//! checks the very code the fuzzer ran without needing the fuzzer.
//!
//! The rule checked: no input makes a parser panic; bad input comes back as
//! an error value whose message names a position.
#![allow(dead_code)]

use hc_core::capfile::read::{for_each_in_bytes, Item};
use hc_core::decode::fast::{decode, Decoded, Seg};
use hc_core::decode::frame::{self as wire, linktype};
use hc_core::model::{LinkType, RawPacket};
use std::path::Path;

/// The link types the first byte of a `frame` input picks from; entry 10
/// is one the parser does not support, to exercise that error too. (The
/// first eleven keep the places the committed seeds were made for.)
pub const LINKTYPES: [LinkType; 21] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::RAW_BSD,
    linktype::RAW_OPENBSD,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    147, // LINKTYPE_USER0: unsupported
    linktype::NFLOG,
    linktype::PPP,
    linktype::PPP_HDLC,
    linktype::PPP_ETHER,
    linktype::C_HDLC,
    linktype::PFLOG,
    linktype::IPNET,
    linktype::IEEE802_11,
    linktype::IEEE802_11_RADIOTAP,
    linktype::PPI,
];

/// `frame` input layout: byte 0 picks the link type (modulo the table),
/// bytes 1..5 are the original length (little endian; captures may claim
/// any value), the rest is the captured frame.
pub fn frame(input: &[u8]) {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    let lt = LINKTYPES[sel as usize % LINKTYPES.len()];
    let (orig_len, data) = match rest.split_first_chunk::<4>() {
        Some((len, data)) => (u32::from_le_bytes(*len), data),
        None => (rest.len() as u32, rest),
    };
    check_frame(lt, orig_len, data);
}

/// Both frame parsers: the reference one and the analyze fast path. Where
/// both read a segment they must read the same fields (decode.rs promises
/// the fast path only takes frames the reference parser reads alike).
fn check_frame(lt: LinkType, orig_len: u32, data: &[u8]) {
    let pkt = RawPacket {
        ts: 1,
        orig_len,
        data: data.to_vec(),
    };
    let reference = wire::parse_frame(lt, 0, &pkt);
    if let Err(e) = &reference {
        // Formatting is part of the error path: it must not panic either.
        let _ = e.to_string();
    }
    let fast = decode(lt, 0, 1, orig_len, data);
    if let (Ok(Some(seg)), Ok(Decoded::Tcp(f))) = (&reference, &fast) {
        assert_eq!(
            Seg::from_segment(seg),
            *f,
            "fast path and reference parser disagree"
        );
    }
}

/// Reads the input as a pcap or pcapng file with the analyze reader, and
/// parses every packet it yields as `analyze` does, its segments through
/// analyze's connection tracker.
pub fn capture_reader(input: &[u8]) {
    let name = Path::new("fuzz-input");
    let mut tracker = hc_core::analyze::flows::Tracker::new();
    let mut frame = 0usize;
    let r = for_each_in_bytes(input, name, |item| match item {
        Item::Packet(rec) => {
            assert!(rec.data.len() <= input.len(), "record larger than the file");
            check_frame(rec.linktype, rec.orig_len, rec.data);
            frame += 1;
            if let Ok(Decoded::Tcp(s)) = decode(rec.linktype, frame, rec.ts, rec.orig_len, rec.data)
            {
                tracker.push(&s, &mut |_| {});
            }
        }
        Item::Section { .. } | Item::Interface { .. } => {}
        Item::Damaged { error, .. } => {
            let _ = error.to_string();
        }
    });
    if let Err(e) = r {
        let _ = e.to_string();
    }
    tracker.finish(&mut |_| {});
}

/// Parses the input as a scenario file (lossily decoded: the CLI reads
/// files with `read_to_string`, so only UTF-8 ever reaches the parser, but
/// lossy decoding lets the fuzzer's byte mutations still reach it).
pub fn scenario_parse(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    match hc_core::scenario::parse_all(&text, "fuzz.scenario") {
        Ok(s) => {
            let _ = hc_core::scenario::faults(&s);
            let _ = s.key_step();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
