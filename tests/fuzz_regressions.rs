//! Replays the committed fuzz corpus (fuzz/corpus/TARGET/) and every crash
//! the fuzzer ever saved (fuzz/regressions/TARGET/) through the same harness
//! the fuzz targets use, so CI keeps those inputs fixed without libFuzzer or
//! a nightly toolchain. The harness panics only on a bug (any panic in a
//! parser, or the two frame parsers disagreeing).

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if !p.is_file() {
                continue;
            }
            let data = std::fs::read(&p).expect("read corpus file");
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{target}: {} panics", p.display());
            n += 1;
        }
    }
    assert!(
        n > 0,
        "{target}: no committed inputs under fuzz/corpus/{target}"
    );
}

#[test]
fn frame_inputs_do_not_panic() {
    replay("frame", harness::frame);
}

#[test]
fn capture_reader_inputs_do_not_panic() {
    replay("capture_reader", harness::capture_reader);
}

#[test]
fn scenario_parse_inputs_do_not_panic() {
    replay("scenario_parse", harness::scenario_parse);
}

/// The seeds are only useful if they are valid: a frame seed that no longer
/// parses (a changed header layout) would leave the fuzzer starting blind.
#[test]
fn frame_seeds_parse_as_segments() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame");
    for e in std::fs::read_dir(dir).expect("frame corpus") {
        let p = e.expect("entry").path();
        if !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            continue;
        }
        let d = std::fs::read(&p).unwrap();
        let lt = harness::LINKTYPES[d[0] as usize % harness::LINKTYPES.len()];
        let pkt = hc_core::model::RawPacket {
            ts: 0,
            orig_len: u32::from_le_bytes([d[1], d[2], d[3], d[4]]),
            data: d[5..].to_vec(),
        };
        let r = hc_core::decode::frame::parse_frame(lt, 0, &pkt);
        assert!(matches!(r, Ok(Some(_))), "{}: {r:?}", p.display());
    }
}
