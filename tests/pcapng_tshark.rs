//! Checks the file against Wireshark itself, not just our own reader: the
//! point of the pcapng is that `frame.comment` shows up there, with the
//! right dates (pcap-file writes nanosecond ticks, so a missing if_tsresol
//! would put the packets millennia ahead and only a real reader notices).
//! Needs tshark (scripts/setup installs it): run with `--features privileged`.

mod common;
use common::require_tool;
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
