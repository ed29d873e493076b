//! `hc-trace analyze` and `watch`, run as the real binary.
//!
//! Two sources of captures: the committed reference captures under
//! tests/fixtures/captures/ (made by `hc-trace scenario NAME -w`; these tests need
//! no privileges), and fresh scenario runs, whose own JSON says what happened,
//! so the story inferred from the wire alone can be compared with what the
//! run observed (those, and `watch`, which needs root, run with
//! `--features privileged`; see docs/testing.md).

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/captures/{name}.pcapng"))
}

fn analyze(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("analyze")
        .args(args)
        .output()
        .expect("run hc-trace analyze")
}

/// Runs `analyze FILE --format json`; returns (exit code, document, stderr).
fn analyze_json(file: &Path, extra: &[&str]) -> (i32, Value, String) {
    let out = Command::new(bin())
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .expect("run hc-trace analyze");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "analyze printed no JSON ({e}); exit {code}\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(doc["schema"], 2);
    (code, doc, stderr)
}

fn only_conn(doc: &Value) -> &Value {
    let conns = doc["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1, "one connection: {doc:#}");
    &conns[0]
}

fn rst_kinds(c: &Value) -> Vec<(String, String)> {
    c["rsts"]
        .as_array()
        .expect("rsts")
        .iter()
        .map(|r| {
            assert!(r["why"].as_str().unwrap().starts_with("INFERRED"), "{r}");
            (
                r["from"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn from_list(c: &Value, key: &str) -> Vec<String> {
    c[key]
        .as_array()
        .expect(key)
        .iter()
        .map(|f| f["from"].as_str().unwrap().to_string())
        .collect()
}

/// What each scenario must look like from the wire: (rsts, active closer, half-close bytes).
fn expected(
    name: &str,
) -> (
    Vec<(&'static str, &'static str)>,
    Option<&'static str>,
    Option<u64>,
) {
    match name {
        "shut-wr" => (vec![], Some("a"), Some(200)),
        "close-unread" => (vec![("a", "abortive")], Some("a"), None),
        "close-early" => (vec![("a", "data-after-close")], Some("a"), None),
        "refused" => (vec![("b", "refused")], None, None),
        "linger0" => (vec![("a", "abortive")], Some("a"), None),
        "write-after-close" => (vec![("b", "data-after-close")], Some("b"), None),
        other => panic!("no expectation for {other}"),
    }
}

fn check_story(name: &str, c: &Value) {
    let (rsts, closer, half) = expected(name);
    let got: Vec<(String, String)> = rst_kinds(c);
    let want: Vec<(String, String)> = rsts
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want, "{name}: RSTs {c:#}");
    assert_eq!(c["active_closer"].as_str(), closer, "{name}: closer {c:#}");
    assert_eq!(
        c["half_close"]["bytes_after_first_fin"].as_u64(),
        half,
        "{name}: half-close {c:#}"
    );
    for k in [
        "id",
        "a",
        "b",
        "fins",
        "rsts",
        "active_closer",
        "half_close",
        "anomalies",
    ] {
        assert!(c.get(k).is_some(), "connection has {k}");
    }
}

const NAMES: [&str; 6] = [
    "shut-wr",
    "close-unread",
    "close-early",
    "refused",
    "linger0",
    "write-after-close",
];

#[test]
fn reference_captures_tell_the_right_story() {
    for name in NAMES {
        let (code, doc, stderr) = analyze_json(&reference(name), &[]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(doc["skipped_records"], 0);
        check_story(name, only_conn(&doc));
    }
}

/// Every built-in scenario, by its file under scenarios/.
fn builtin_names() -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                (p.extension()? == "scenario")
                    .then(|| p.file_stem().map(|s| s.to_string_lossy().to_string()))?
            })
            .collect();
    names.sort();
    names
}

/// The story inferred from the wire agrees with what the scenario run saw:
/// who sent each FIN and RST (the run attributes them to calls), the closer.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn fresh_scenario_runs_agree_with_analyze() {
    // fin-lost and simultaneous-close are among the built-ins.
    require_tools(&["nft", "iptables"]);
    for name in builtin_names() {
        let name = name.as_str();
        let path = temp_path("pcapng");
        let out = Command::new(bin())
            .args(["scenario", name, "--format", "json", "-w"])
            .arg(&path)
            .output()
            .expect("run scenario");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = Run::new(serde_json::from_slice(&out.stdout).expect("scenario JSON"));
        let (code, doc, stderr) = analyze_json(&path, &[]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(code, 0, "{stderr}");
        let c = only_conn(&doc);
        // a is the client (it sent the SYN).
        assert_eq!(c["a"], run.doc["client"]["addr"], "{name}");
        let side = |f: &str| if f == "a" { "client" } else { "server" };
        for (flag, key) in [("FIN", "fins"), ("RST", "rsts")] {
            let mut wire: Vec<String> = from_list(c, key)
                .iter()
                .map(|f| side(f).to_string())
                .collect();
            let mut seen: Vec<String> = run
                .segments()
                .iter()
                .filter(|s| Run::has_flag(s, flag) && s["retransmission_of"].is_null())
                .map(|s| s["from"].as_str().unwrap().to_string())
                .collect();
            wire.sort();
            seen.sort();
            assert_eq!(wire, seen, "{name}: who sent each {flag}");
        }
        let first_close = run
            .segments()
            .into_iter()
            .find(|s| Run::has_flag(s, "FIN") || (Run::has_flag(s, "RST") && name != "refused"))
            .map(|s| if s["from"] == "client" { "a" } else { "b" });
        assert_eq!(c["active_closer"].as_str(), first_close, "{name}");
        // The detailed story is pinned for the scenarios with a reference capture.
        if NAMES.contains(&name) {
            check_story(name, c);
        }
    }
}

#[test]
fn conn_shows_one_timeline_with_the_scenario_renderer() {
    let out = analyze(&[reference("close-early").to_str().unwrap(), "--conn", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("connection #1"), "{text}");
    assert!(text.contains("RST"), "{text}");
    assert!(text.contains("INFERRED"), "{text}");
    let (code, doc, _) = analyze_json(&reference("close-early"), &["--conn", "1"]);
    assert_eq!(code, 0);
    let events = doc["timeline"]["events"]
        .as_array()
        .expect("timeline events");
    assert_eq!(events.len(), 9);
    let out = analyze(&[reference("close-early").to_str().unwrap(), "--conn", "7"]);
    assert_eq!(out.status.code(), Some(2));
}

/// hc-trace's own captures hold each cause as a packet comment: `--conn`
/// shows it under the cause inferred from the wire, and so does the JSON.
#[test]
fn conn_shows_the_causes_a_capture_recorded() {
    let out = analyze(&[reference("shut-wr").to_str().unwrap(), "--conn", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let recorded: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("recorded: "))
        .collect();
    assert_eq!(recorded.len(), 11, "one per segment:\n{text}");
    assert!(
        recorded
            .iter()
            .any(|l| l.contains("FIN from client shutdown(SHUT_WR)")),
        "{text}"
    );
    // The wire alone cannot know the call: the inferred cause says so.
    assert!(text.contains("FIN: no shutdown() or close() of the client recorded"));
    let (_, doc, _) = analyze_json(&reference("shut-wr"), &["--conn", "1"]);
    assert_eq!(doc["recorded"].as_array().map(Vec::len), Some(11));
    // Control: a copy whose comments are analyze's own (on FINs and RSTs
    // only) shows those, not the first run's.
    let copy = temp_path("pcapng");
    let w = analyze(&[
        reference("shut-wr").to_str().unwrap(),
        "-w",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(w.status.code(), Some(0));
    let (_, doc, _) = analyze_json(&copy, &["--conn", "1"]);
    let _ = std::fs::remove_file(&copy);
    let kept = doc["recorded"].as_array().cloned().unwrap_or_default();
    assert_eq!(kept.len(), 2, "the two FINs: {kept:?}");
    assert!(kept.iter().all(|c| !c["comment"]
        .as_str()
        .unwrap_or("")
        .contains("shutdown(SHUT_WR) #")));
}

#[test]
fn filters_select_connections() {
    let files: Vec<String> = NAMES
        .iter()
        .map(|n| reference(n).display().to_string())
        .collect();
    let count = |extra: &[&str]| -> usize {
        let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
        args.extend_from_slice(&["--format", "json"]);
        args.extend_from_slice(extra);
        let out = analyze(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["connections"].as_array().unwrap().len()
    };
    assert_eq!(count(&[]), 6);
    assert_eq!(count(&["--only", "rst"]), 5);
    assert_eq!(count(&["--only", "abortive"]), 2);
    assert_eq!(count(&["--only", "refused"]), 1);
    assert_eq!(count(&["--only", "half-close"]), 1);
    assert_eq!(count(&["--port", "5555"]), 6);
    assert_eq!(count(&["--port", "1"]), 0);
    assert_eq!(count(&["--host", "127.0.0.1"]), 6);
    assert_eq!(count(&["--host", "::1"]), 0);
}

#[test]
fn text_output_says_once_that_reasons_are_inferred() {
    let out = analyze(&[reference("linger0").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("cannot").count() + text.matches("does not hold").count(),
        1,
        "{text}"
    );
    assert!(text.contains("abortive"), "{text}");
}

#[test]
fn annotated_copy_has_a_comment_on_every_fin_and_rst() {
    let out_path = temp_path("pcapng");
    let out = analyze(&[
        reference("close-early").to_str().unwrap(),
        "-w",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = read_capture(&out_path);
    let _ = std::fs::remove_file(&out_path);
    let orig = read_capture(&reference("close-early"));
    assert_eq!(back.packets.len(), orig.packets.len());
    let lt = back.linktypes[0];
    let mut commented = 0;
    for (i, p) in back.packets.iter().enumerate() {
        let (pkt, comments) = (&p.packet, &p.comments);
        assert_eq!(pkt.data, orig.packets[i].packet.data, "same bytes");
        let seg = hc_core::decode::frame::parse_frame(lt, i, pkt)
            .unwrap()
            .unwrap();
        if seg.flags.fin() || seg.flags.rst() {
            assert_eq!(comments.len(), 1, "frame {i}: {comments:?}");
            commented += 1;
            if seg.flags.rst() {
                assert!(
                    comments[0].contains("INFERRED (data-after-close)"),
                    "{comments:?}"
                );
            }
        } else {
            assert!(comments.is_empty());
        }
    }
    assert_eq!(commented, 2);
}

/// A whole capture file read back with the core's reader (any damage fails).
fn read_capture(p: &Path) -> hc_core::capfile::read::Contents {
    hc_core::capfile::read::read_bytes(&std::fs::read(p).expect("read file")).expect("a capture")
}

// ------------------------------------------------------------ other formats

/// Rewrites a pcapng's packets as a classic pcap with another link layer.
fn to_classic(src: &Path, link: u32, nanos: bool, big_endian: bool) -> PathBuf {
    let c = read_capture(src);
    assert_eq!(c.linktypes, vec![1]);
    let w32 = |v: &mut Vec<u8>, x: u32| {
        if big_endian {
            v.extend_from_slice(&x.to_be_bytes())
        } else {
            v.extend_from_slice(&x.to_le_bytes())
        }
    };
    let mut v = Vec::new();
    w32(&mut v, if nanos { 0xa1b23c4d } else { 0xa1b2c3d4 });
    let (maj, min) = (2u16, 4u16);
    if big_endian {
        v.extend_from_slice(&maj.to_be_bytes());
        v.extend_from_slice(&min.to_be_bytes());
    } else {
        v.extend_from_slice(&maj.to_le_bytes());
        v.extend_from_slice(&min.to_le_bytes());
    }
    v.extend_from_slice(&[0; 8]);
    w32(&mut v, 65535);
    w32(&mut v, link);
    for rp in &c.packets {
        let p = &rp.packet;
        let eth = &p.data;
        let frame: Vec<u8> = match link {
            1 => eth.clone(),
            // 802.1Q tag with VLAN 42.
            0x10001 => {
                let mut f = eth[..12].to_vec();
                f.extend_from_slice(&[0x81, 0x00, 0x00, 42]);
                f.extend_from_slice(&eth[12..]);
                f
            }
            101 => eth[14..].to_vec(),
            113 => {
                let mut f = vec![0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0];
                f.extend_from_slice(&eth[12..]);
                f
            }
            276 => {
                let mut f = eth[12..14].to_vec();
                f.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
                f.extend_from_slice(&eth[14..]);
                f
            }
            // BSD loopback: AF_INET in the writer's byte order.
            0 => {
                let mut f = if big_endian {
                    2u32.to_be_bytes()
                } else {
                    2u32.to_le_bytes()
                }
                .to_vec();
                f.extend_from_slice(&eth[14..]);
                f
            }
            _ => unreachable!(),
        };
        let sec = (p.ts / 1_000_000_000) as u32;
        let frac = if nanos {
            (p.ts % 1_000_000_000) as u32
        } else {
            (p.ts % 1_000_000_000 / 1000) as u32
        };
        w32(&mut v, sec);
        w32(&mut v, frac);
        w32(&mut v, frame.len() as u32);
        w32(&mut v, frame.len() as u32);
        v.extend_from_slice(&frame);
    }
    // The VLAN variant is still Ethernet.
    if link == 0x10001 {
        let off = 20;
        let b = if big_endian {
            1u32.to_be_bytes()
        } else {
            1u32.to_le_bytes()
        };
        v[off..off + 4].copy_from_slice(&b);
    }
    let path = temp_path("pcap");
    std::fs::write(&path, v).unwrap();
    path
}

#[test]
fn classic_pcap_with_every_link_type_tells_the_same_story() {
    for (link, nanos, big) in [
        (1, false, false),
        (1, true, true),
        (0x10001, false, false),
        (101, false, true),
        (113, true, false),
        (276, false, false),
        (0, false, false),
        (0, false, true),
    ] {
        for name in ["shut-wr", "close-unread", "refused"] {
            let p = to_classic(&reference(name), link, nanos, big);
            let (code, doc, stderr) = analyze_json(&p, &[]);
            let _ = std::fs::remove_file(&p);
            assert_eq!(code, 0, "link {link}: {stderr}");
            check_story(name, only_conn(&doc));
        }
    }
}

// ------------------------------------------------------------ damaged input

#[test]
fn truncated_files_name_offset_and_record_and_never_panic() {
    let orig = std::fs::read(reference("shut-wr")).unwrap();
    let cp = to_classic(&reference("shut-wr"), 1, false, false);
    let classic = std::fs::read(&cp).unwrap();
    let _ = std::fs::remove_file(&cp);
    for bytes in [&orig, &classic] {
        for cut in (0..bytes.len()).step_by(37) {
            let p = temp_path("cut");
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let out = analyze(&[p.to_str().unwrap(), "--format", "json"]);
            let _ = std::fs::remove_file(&p);
            let code = out.status.code();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                code == Some(0) || code == Some(2),
                "cut {cut}: {code:?} {stderr}"
            );
            if code == Some(2) && cut > 24 {
                assert!(
                    stderr.contains("byte offset") && stderr.contains("record"),
                    "cut {cut}: {stderr}"
                );
                let doc: Value =
                    serde_json::from_slice(&out.stdout).expect("still a JSON document");
                assert!(doc["skipped_records"].as_u64().unwrap() >= 1);
            }
        }
    }
}

#[test]
fn corrupt_block_is_skipped_and_counted() {
    let mut bytes = std::fs::read(reference("shut-wr")).unwrap();
    // Find the third Enhanced Packet Block and break its trailing length.
    // pcap-file writes big-endian sections; the byte-order magic says so.
    let big = bytes[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
    let rd = |b: &[u8], at: usize| {
        let w: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if big {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let mut pos = 0;
    let mut epbs = 0;
    while pos + 8 <= bytes.len() {
        let (t, len) = (rd(&bytes, pos), rd(&bytes, pos + 4) as usize);
        if t == 6 {
            epbs += 1;
            if epbs == 3 {
                bytes[pos + len - 2] ^= 0x55;
                break;
            }
        }
        pos += len;
    }
    let p = temp_path("pcapng");
    std::fs::write(&p, &bytes).unwrap();
    let (code, doc, stderr) = analyze_json(&p, &[]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(code, 2, "a damaged file exits 2");
    assert!(stderr.contains(&format!("byte offset {pos}")), "{stderr}");
    assert!(stderr.contains("record 3"), "{stderr}");
    assert_eq!(doc["skipped_records"], 1);
    assert_eq!(doc["packets"], 10, "the other packets were read");
    // The story survives the loss of the third segment (the handshake's ACK).
    assert_eq!(only_conn(&doc)["half_close"]["bytes_after_first_fin"], 200);
}

#[test]
fn random_garbage_never_panics() {
    let orig = std::fs::read(reference("close-early")).unwrap();
    let mut seed = 0x9e37_79b9u64;
    for _ in 0..60 {
        let mut b = orig.clone();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % b.len();
            b[i] = (seed >> 24) as u8;
        }
        let p = temp_path("garbage");
        std::fs::write(&p, &b).unwrap();
        let out = analyze(&[p.to_str().unwrap()]);
        let _ = std::fs::remove_file(&p);
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(2),
            "{code:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn unreadable_or_foreign_files_exit_2() {
    let out = analyze(&["/nonexistent/file.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
    let p = temp_path("txt");
    std::fs::write(&p, b"not a capture at all").unwrap();
    let out = analyze(&[p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap or pcapng"));
}

// ------------------------------------------------------------ issue 14: inputs

/// A classic pcap of `packets` with link type `link`.
fn write_pcap(packets: &[hc_core::model::RawPacket], link: u32) -> PathBuf {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b23c4du32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&link.to_le_bytes());
    for p in packets {
        v.extend_from_slice(&((p.ts / 1_000_000_000) as u32).to_le_bytes());
        v.extend_from_slice(&((p.ts % 1_000_000_000) as u32).to_le_bytes());
        v.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        v.extend_from_slice(&p.orig_len.to_le_bytes());
        v.extend_from_slice(&p.data);
    }
    let path = temp_path("pcap");
    std::fs::write(&path, v).unwrap();
    path
}

fn packets_of(name: &str) -> Vec<hc_core::model::RawPacket> {
    read_capture(&reference(name))
        .packets
        .into_iter()
        .map(|p| p.packet)
        .collect()
}

/// The facts of each connection, without times and frames (which differ
/// between equivalent inputs).
fn facts(doc: &Value) -> Vec<String> {
    doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}>{} {} closer={} fins={:?} rsts={:?} half={} bytes={}/{}",
                c["a"],
                c["b"],
                c["segments"],
                c["active_closer"],
                from_list(c, "fins"),
                rst_kinds(c),
                c["half_close"]["bytes_after_first_fin"],
                c["bytes_a_to_b"],
                c["bytes_b_to_a"]
            )
        })
        .collect()
}

#[test]
fn gzip_and_zstd_captures_are_read_as_they_are() {
    use std::io::Write;
    let plain = reference("close-early");
    let bytes = std::fs::read(&plain).unwrap();
    let (_, want, _) = analyze_json(&plain, &[]);
    let gz = temp_path("pcapng.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&bytes).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let zst = temp_path("pcapng.zst");
    std::fs::write(
        &zst,
        ruzstd::encoding::compress_to_vec(&bytes[..], ruzstd::encoding::CompressionLevel::Fastest),
    )
    .unwrap();
    for (path, kind) in [(&gz, "gzip"), (&zst, "zstd")] {
        let (code, doc, stderr) = analyze_json(path, &[]);
        assert_eq!(code, 0, "{kind}: {stderr}");
        assert_eq!(facts(&doc), facts(&want), "{kind}");
        assert_eq!(doc["inputs"][0]["compression"], kind);
        assert_eq!(doc["inputs"][0]["bytes"], bytes.len());
    }
    // Cut short: named as a compressed file that cannot be read, exit 2.
    let data = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &data[..data.len() / 2]).unwrap();
    let out = analyze(&[gz.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot decompress (gzip)"), "{stderr}");
    for p in [gz, zst] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn files_are_merged_by_time_with_a_note_when_out_of_order_or_overlapping() {
    let pkts = packets_of("shut-wr");
    let (_, whole, _) = analyze_json(&reference("shut-wr"), &[]);
    let (early, late) = pkts.split_at(pkts.len() / 2);
    let (a, b) = (write_pcap(early, 1), write_pcap(late, 1));
    // In order: one connection, no note.
    let (code, doc, _) = analyze_json(&a, &[b.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(facts(&doc), facts(&whole));
    assert_eq!(doc["notes"], serde_json::json!([]));
    // Backwards: still one connection (not two halves), and said so.
    let (code, doc, stderr) = analyze_json(&b, &[a.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(facts(&doc), facts(&whole), "{stderr}");
    let notes = doc["notes"].to_string();
    assert!(notes.contains("not given in time order"), "{notes}");
    assert!(stderr.contains("not given in time order"), "{stderr}");
    // Frames are numbered in the merged order, as mergecap writes them.
    assert_eq!(doc["connections"][0]["first_frame"], 1);
    // Interleaved (every other packet): overlapping files, one story.
    let odd: Vec<_> = pkts.iter().step_by(2).cloned().collect();
    let even: Vec<_> = pkts.iter().skip(1).step_by(2).cloned().collect();
    let (o, e) = (write_pcap(&odd, 1), write_pcap(&even, 1));
    let (code, doc, _) = analyze_json(&e, &[o.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(facts(&doc), facts(&whole));
    assert!(
        doc["notes"].to_string().contains("overlap in time"),
        "{}",
        doc["notes"]
    );
    for p in [a, b, o, e] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn the_annotated_copy_keeps_every_interface_and_link_type() {
    // Ethernet (pcapng) and raw IP (classic pcap): two link types.
    let raw = to_classic(&reference("shut-wr"), 101, false, false);
    let out_path = temp_path("pcapng");
    let out = analyze(&[
        reference("close-early").to_str().unwrap(),
        raw.to_str().unwrap(),
        "-w",
        out_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("(2 interfaces)"), "{stderr}");
    let back = read_capture(&out_path);
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&raw);
    assert_eq!(back.linktypes, vec![1, 101]);
    let orig = packets_of("close-early").len() + packets_of("shut-wr").len();
    assert_eq!(back.packets.len(), orig);
    // Every FIN and RST of both inputs, on its own interface, has its comment.
    let mut per_iface = [0, 0];
    for (i, p) in back.packets.iter().enumerate() {
        let lt = back.linktypes[p.iface as usize];
        assert_eq!(lt, p.linktype);
        let seg = hc_core::decode::frame::parse_frame(lt, i, &p.packet)
            .unwrap()
            .unwrap();
        if seg.flags.fin() || seg.flags.rst() {
            assert_eq!(p.comments.len(), 1, "frame {i}");
            per_iface[p.iface as usize] += 1;
        }
    }
    // close-early: a FIN and an RST; shut-wr: two FINs.
    assert_eq!(per_iface, [2, 2]);
}

#[test]
fn records_of_a_link_type_not_decoded_are_named_once_and_exit_2() {
    let pkts = packets_of("shut-wr");
    // LINKTYPE_USB_LINUX: a link type analyze does not read.
    let usb = write_pcap(&pkts, 189);
    let out = analyze(&[usb.to_str().unwrap()]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    let want = format!(
        "{} records of link type 189 (LINKTYPE_USB_LINUX) not decoded",
        pkts.len()
    );
    assert_eq!(stdout.matches(&want).count(), 1, "{stdout}");
    assert!(
        !stderr.contains("warning"),
        "no warning per record: {stderr}"
    );
    let (code, doc, _) = analyze_json(&usb, &[]);
    let _ = std::fs::remove_file(&usb);
    assert_eq!(code, 2);
    assert_eq!(
        doc["undecoded"],
        serde_json::json!([{"linktype": 189, "name": "LINKTYPE_USB_LINUX", "records": pkts.len()}])
    );
}

#[test]
fn segments_cut_by_the_snap_length_keep_their_story() {
    // Every frame cut to 68 bytes, as tcpdump -s 68 writes it: the SYNs'
    // options are cut, everything up to the window is there.
    let mut pkts = packets_of("close-early");
    for p in &mut pkts {
        p.data.truncate(68);
    }
    let cut = write_pcap(&pkts, 1);
    let (_, whole, _) = analyze_json(&reference("close-early"), &[]);
    let (code, doc, stderr) = analyze_json(&cut, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(facts(&doc), facts(&whole));
    assert_eq!(doc["connections"][0]["syn_captured"], true);
    let kept = doc["snap_cut"]["kept"].as_u64().unwrap();
    assert!(
        kept >= 2,
        "the SYN and SYN-ACK had options cut: {}",
        doc["snap_cut"]
    );
    assert_eq!(doc["snap_cut"]["unreadable"], 0);
    // Cut at 40 (inside the IP header... of Ethernet + IPv4 + 6 bytes of
    // TCP): nothing readable, counted, and still exit 0 (not damage).
    for p in &mut pkts {
        p.data.truncate(40);
    }
    let short = write_pcap(&pkts, 1);
    let (code, doc, _) = analyze_json(&short, &[]);
    let _ = std::fs::remove_file(&cut);
    let _ = std::fs::remove_file(&short);
    assert_eq!(code, 0);
    assert_eq!(doc["snap_cut"]["unreadable"], pkts.len());
    assert_eq!(doc["connections"], serde_json::json!([]));
}

#[test]
fn a_directory_or_a_bad_file_among_good_ones_exits_2() {
    let dir = temp_path("dir");
    std::fs::create_dir_all(&dir).unwrap();
    let out = analyze(&[dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("is a directory"), "{stderr}");
    let bad = temp_path("pcap");
    std::fs::write(&bad, b"no capture").unwrap();
    let out = analyze(&[
        reference("shut-wr").to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&bad);
    assert_eq!(out.status.code(), Some(2));
    // The readable file is still analysed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 connection ("));
}

#[test]
fn tracking_on_a_second_thread_tells_the_same_stories() {
    // 600 copies of shut-wr on 600 client ports, one after the other:
    // 6,600 segments, more than one batch for the tracker thread.
    let base = packets_of("shut-wr");
    let mut pkts = Vec::new();
    for i in 0..600u16 {
        for p in &base {
            let mut p = p.clone();
            p.ts += i64::from(i) * 1_000_000_000;
            let port = 20000 + i;
            // Ethernet + IPv4 (20 bytes): the client's port is the source
            // or the destination, whichever is not the server's 5555.
            for off in [34, 36] {
                if u16::from_be_bytes([p.data[off], p.data[off + 1]]) != 5555 {
                    p.data[off..off + 2].copy_from_slice(&port.to_be_bytes());
                }
            }
            pkts.push(p);
        }
    }
    let path = write_pcap(&pkts, 1);
    let run = |threads: Option<&str>| {
        let mut c = Command::new(bin());
        c.args(["analyze", "--format", "json"]).arg(&path);
        if let Some(t) = threads {
            c.env("HC_TRACE_THREADS", t);
        }
        let out = c.output().expect("run analyze");
        assert_eq!(out.status.code(), Some(0));
        out.stdout
    };
    let (two, one) = (run(None), run(Some("1")));
    let _ = std::fs::remove_file(&path);
    let doc: Value = serde_json::from_slice(&two).expect("JSON");
    assert_eq!(doc["connections"].as_array().unwrap().len(), 600);
    assert_eq!(doc["segments"], 6600);
    assert!(two == one, "the two modes differ");
}

// ------------------------------------------------------------ watch (live)

/// Deletes the test namespace however the test ends.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Makes TCP connections inside the named namespace: setns() moves only the
/// calling thread, so a thread of its own does it.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open the namespace");
        use std::os::fd::AsRawFd;
        // SAFETY: a valid namespace descriptor; affects only this thread.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn watch_prints_stories_as_connections_close_and_the_table_on_sigint() {
    use std::io::{BufRead, Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    // watch needs root to make a namespace and capture.
    require_root();
    require_tool("ip");
    let ns = Netns(format!("hct-watch-test-{}", std::process::id()));
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    assert!(ok(Command::new("ip").args(["netns", "add", &ns.0])));
    assert!(ok(
        Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"])
    ));

    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            bin(),
            "watch",
            "-i",
            "lo",
            "tcp port 7777",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start watch");
    // Wait until the capture is active (watch says so on stderr).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("watch starts");
    assert!(first.contains("watching lo"), "{first}");

    in_netns(&ns.0, || {
        let l = TcpListener::bind("127.0.0.1:7777").unwrap();
        // A half-close: 100 B, SHUT_WR, 200 B answer.
        let mut c = TcpStream::connect("127.0.0.1:7777").unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(&[1; 100]).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&[2; 200]).unwrap();
        drop(s);
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        drop(c);
        // An abortive close: SO_LINGER 0.
        let c = TcpStream::connect("127.0.0.1:7777").unwrap();
        let (_s, _) = l.accept().unwrap();
        let lin = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        use std::os::fd::AsRawFd;
        // SAFETY: a valid socket and a linger struct of the right size.
        unsafe {
            libc::setsockopt(
                c.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&lin as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        drop(c);
        drop(l);
        // Refused: nothing listens any more.
        assert!(TcpStream::connect("127.0.0.1:7777").is_err());
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: signalling our own child; `ip netns exec` execs hc-trace in place.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("watch ends");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    // Stories first, as the connections closed...
    let story_half = text.find("200 B after the first FIN").expect(&text);
    let table = text.find("a (sent SYN)").expect(&text);
    assert!(story_half < table, "{text}");
    assert!(text[..table].contains("INFERRED (abortive)"), "{text}");
    assert!(text[..table].contains("INFERRED (refused)"), "{text}");
    // ...then the table with all three.
    let rows: Vec<&str> = text[table..]
        .lines()
        .filter(|l| l.contains(":7777"))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].contains("FIN+FIN") && rows[0].contains("200 B"),
        "{text}"
    );
    assert!(rows[1].contains("a:abortive"), "{text}");
    assert!(rows[2].contains("b:refused"), "{text}");
}

#[test]
fn watch_on_a_missing_interface_exits_2() {
    // An interface that does not exist fails the same way, without root.
    let out = Command::new(bin())
        .args(["watch", "-i", "hct-no-such-if0"])
        .output()
        .expect("run watch");
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}
