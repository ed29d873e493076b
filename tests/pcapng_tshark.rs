//! Checks the file against Wireshark itself, not just our own reader: the
//! point of the pcapng is that `frame.comment` shows up there, with the
//! right dates (pcap-file writes nanosecond ticks, so a missing if_tsresol
//! would put the packets millennia ahead and only a real reader notices).
//! Needs tshark (scripts/setup installs it): run with `--features privileged`.

mod common;
use common::{require_tool, require_tools};
use etherparse::PacketBuilder;
use hc_core::capfile::pcapng::{self, PcapngMeta};
use hc_core::model::{Nanos, RawPacket};
use std::path::{Path, PathBuf};
use std::process::Command;

fn frame(seq: u32, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 5000, seq, 65535)
        .ack(1);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload)
        .expect("writing to a Vec cannot fail");
    out
}

fn meta() -> PcapngMeta {
    PcapngMeta {
        linktype: 1,
        snaplen: 262144,
        iface: "lo".into(),
        iface_description: "loopback of a private network namespace".into(),
        section_comment: "scenario: test\nhc-trace 0.1.0".into(),
        application: "hc-trace 0.1.0".into(),
        os: Some("Linux".into()),
    }
}

fn now_ns() -> Nanos {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    d.as_nanos() as Nanos
}

/// The file as hc-trace writes it: the core's blocks, one after another.
fn write_pcapng(
    path: &Path,
    meta: &PcapngMeta,
    packets: &[RawPacket],
    comments: &[Option<String>],
) -> std::io::Result<()> {
    let mut bytes = pcapng::header(meta);
    for (p, c) in packets.iter().zip(comments) {
        bytes.extend(pcapng::packet(p, c.as_deref()).expect("encodes"));
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, bytes)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hc-trace-tshark-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Runs tshark and returns its stdout; stderr is ignored on success because
/// tshark run as root always warns there.
fn tshark_fields(path: &Path) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields"])
        .args([
            "-e",
            "frame.number",
            "-e",
            "frame.comment",
            "-e",
            "frame.time_epoch",
        ])
        .output()
        .expect("tshark is on PATH, so it can be started");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark prints UTF-8")
}

/// "1795655704.015837240" -> ns, without going through a float (which
/// cannot hold nanoseconds since 1970 exactly).
fn epoch_to_ns(s: &str) -> Nanos {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: Nanos = secs.parse().expect("seconds are a number");
    let mut frac = frac.to_string();
    assert!(frac.len() <= 9, "more than ns precision: {s}");
    while frac.len() < 9 {
        frac.push('0');
    }
    secs * 1_000_000_000 + frac.parse::<Nanos>().expect("fraction is a number")
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn tshark_shows_every_comment_and_todays_date() {
    require_tool("tshark");
    let dir = scratch("comments");
    let path = dir.join("run.pcapng");
    let start = now_ns();
    let packets: Vec<RawPacket> = [frame(1, b""), frame(1, b"hello"), frame(6, b"")]
        .into_iter()
        .enumerate()
        .map(|(i, data)| RawPacket {
            ts: start + i as Nanos * 1_234_567,
            orig_len: data.len() as u32,
            data,
        })
        .collect();
    let comments = vec![
        Some("client: connect(3, 10.0.0.2:5000)".to_string()),
        Some("client: shutdown(3, SHUT_WR)\nétat FIN_WAIT1 → «ok»".to_string()),
        None,
    ];
    write_pcapng(&path, &meta(), &packets, &comments).expect("write");

    let out = tshark_fields(&path);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), packets.len(), "tshark output:\n{out}");
    for (i, line) in lines.iter().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "line {line:?}");
        assert_eq!(cols[0], (i + 1).to_string());
        match &comments[i] {
            // tshark 4.0 prints a newline inside a field as "\n" and joins
            // several comments with commas, so look for ours within the field.
            Some(c) => {
                let escaped = c.replace('\n', "\\n");
                assert!(
                    cols[1].contains(&escaped) || cols[1].contains(c.as_str()),
                    "packet {}: comment {:?} not in {:?}",
                    i + 1,
                    c,
                    cols[1]
                );
            }
            None => assert_eq!(cols[1], "", "packet {} has no comment", i + 1),
        }
        let shown = epoch_to_ns(cols[2]);
        assert_eq!(
            shown / 1_000,
            packets[i].ts / 1_000,
            "packet {}: tshark shows {} but we wrote {} ns",
            i + 1,
            cols[2],
            packets[i].ts
        );
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn tshark_reads_an_empty_capture() {
    require_tool("tshark");
    let dir = scratch("empty");
    let path = dir.join("empty.pcapng");
    write_pcapng(&path, &meta(), &[], &[]).expect("write");
    assert_eq!(tshark_fields(&path), "");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// capinfos' answer for a file: (packets, capture comments), or a failure.
fn capinfos(path: &Path) -> (usize, usize) {
    let out = Command::new("capinfos")
        .args(["-c", "-k"])
        .arg(path)
        .output()
        .expect("capinfos is on PATH");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "capinfos rejects {}: {}{text}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let packets = text
        .lines()
        .find_map(|l| l.strip_prefix("Number of packets:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no packet count from capinfos: {text}"));
    let comments = text.matches("Capture comment:").count();
    (packets, comments)
}

/// What hc-trace itself saves, read by Wireshark's own tools: every
/// built-in scenario's file (half-close-bulk's section comment passes
/// 65,535 bytes, the length one pcapng option can hold) and a 2,000-step
/// scenario's, whose calls that put nothing on the wire fill the section
/// comment many times over. Each comment is split into options that fit.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn every_saved_capture_opens_in_tshark_and_capinfos() {
    require_tools(&["tshark", "capinfos", "nft", "iptables"]);
    let dir = scratch("all");
    let out = Command::new(common::bin())
        .args(["scenario", "--all", "-w"])
        .arg(&dir)
        .output()
        .expect("run --all");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<String> = Command::new(common::bin())
        .arg("list")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .expect("list")
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(names.len(), 15, "{names:?}");
    for name in &names {
        let file = dir.join(format!("{name}.pcapng"));
        let (packets, comments) = capinfos(&file);
        let shown = tshark_fields(&file).lines().count();
        assert_eq!(shown, packets, "{name}: tshark and capinfos agree");
        assert!(packets > 0, "{name}");
        assert!(comments >= 1, "{name} has its section comment");
        if name == "half-close-bulk" {
            assert!(comments >= 2, "the bulk comment is over 64 KiB: split");
        }
    }

    // 2,000 steps, almost all calls that put nothing on the wire.
    let mut text = String::from(
        "name: many\nteaches: a long scenario\nserver listen\nclient connect\nserver accept\n",
    );
    for i in 0..1996 {
        text.push_str(&format!("client setsockopt TCP_NODELAY {}\n", i % 2));
    }
    text.push_str("client close\nserver close\n");
    let scenario = dir.join("many.scenario");
    std::fs::write(&scenario, text).expect("write scenario");
    let file = dir.join("many.pcapng");
    let out = Command::new(common::bin())
        .arg("run")
        .arg(&scenario)
        .args(["--settle", "1", "-w"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (packets, comments) = capinfos(&file);
    assert_eq!(tshark_fields(&file).lines().count(), packets);
    assert!(
        comments >= 3,
        "2,000 calls: a section comment of several options ({comments})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
