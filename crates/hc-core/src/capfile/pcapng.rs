//! The annotated capture file, encoded: pcapng, because only pcapng carries
//! per-packet comments, and the comments are how Wireshark users see which
//! socket call caused each segment (`frame.comment`).
//!
//! Bytes only: [`header`] is the Section Header Block and one Interface
//! Description Block, [`packet`] one Enhanced Packet Block; the caller puts
//! them in a file (see the binary's capture-file sink). Reading goes through
//! [`super::read`], the same reader `analyze` uses.
//!
//! Every block is little-endian (the byte-order magic says so) and is
//! complete in itself, so a file cut after any block is still readable.
//!
//! An option's length field has 16 bits: a comment longer than 65,535 bytes
//! would wrap it and corrupt the file, so long comments are split into
//! several comment options (pcapng allows any number), each ending at a
//! line break where one is near, never inside a UTF-8 character.

use crate::model::{LinkType, Nanos, RawPacket};

/// What goes in the section header and the interface block.
#[derive(Clone, Debug)]
pub struct PcapngMeta {
    pub linktype: LinkType,
    pub snaplen: u32,
    /// Interface name as Wireshark shows it ("lo").
    pub iface: String,
    /// Says which `lo` this was, since every namespace has one.
    pub iface_description: String,
    /// Multi-line text: scenario, tool version, calls that put nothing on the
    /// wire (those have no packet to hang a comment on). Empty means none.
    pub section_comment: String,
    /// "hc-trace 0.1.0".
    pub application: String,
    /// "Linux 6.18.0", what Wireshark shows as the capture's operating system.
    pub os: Option<String>,
}

/// A packet that cannot be written as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("packet timestamp {ts} ns lies before 1970; pcapng cannot store it")]
    NegativeTimestamp { ts: Nanos },
    #[error("packet has {captured} captured bytes but says only {orig_len} were on the wire")]
    CapturedMoreThanWire { captured: usize, orig_len: u32 },
    #[error("packet has {0} bytes; a pcapng block holds at most 4 GiB")]
    TooLarge(usize),
}

/// The largest option value a pcapng option can hold (its length is 16 bits).
pub const MAX_OPTION: usize = u16::MAX as usize;

/// Nanosecond timestamps: the interface declares 10^-9, or readers take the
/// count for microseconds and show dates millennia ahead.
const TS_RESOL_NANOS: u8 = 9;

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const EPB: u32 = 6;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_OS: u16 = 3;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;

/// The Section Header Block and the Interface Description Block.
pub fn header(meta: &PcapngMeta) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    // Section length not given.
    body.extend_from_slice(&(-1i64).to_le_bytes());
    let mut opts = Options::default();
    opts.text(OPT_COMMENT, &meta.section_comment);
    if let Some(os) = &meta.os {
        opts.text(SHB_OS, os);
    }
    opts.text(SHB_USERAPPL, &meta.application);
    let mut out = block(SHB, &body, opts);

    out.extend(interface(
        meta.linktype,
        meta.snaplen,
        &meta.iface,
        &meta.iface_description,
    ));
    out
}

/// One more Interface Description Block (the first comes with [`header`]);
/// interfaces are numbered in the order their blocks are written, from 0.
/// Empty texts are left out.
pub fn interface(linktype: LinkType, snaplen: u32, name: &str, description: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(linktype as u16).to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&snaplen.to_le_bytes());
    let mut opts = Options::default();
    opts.text(IF_NAME, name);
    opts.text(IF_DESCRIPTION, description);
    opts.raw(IF_TSRESOL, &[TS_RESOL_NANOS]);
    block(IDB, &body, opts)
}

/// One Enhanced Packet Block, with its comment when it has one (an empty
/// comment is not written: Wireshark would show an empty line).
pub fn packet(pkt: &RawPacket, comment: Option<&str>) -> Result<Vec<u8>, EncodeError> {
    packet_on(0, pkt, comment)
}

/// [`packet`] on interface `iface` (the number of its [`interface`] block).
pub fn packet_on(
    iface: u32,
    pkt: &RawPacket,
    comment: Option<&str>,
) -> Result<Vec<u8>, EncodeError> {
    let ts = u64::try_from(pkt.ts).map_err(|_| EncodeError::NegativeTimestamp { ts: pkt.ts })?;
    if pkt.data.len() > pkt.orig_len as usize {
        return Err(EncodeError::CapturedMoreThanWire {
            captured: pkt.data.len(),
            orig_len: pkt.orig_len,
        });
    }
    let caplen =
        u32::try_from(pkt.data.len()).map_err(|_| EncodeError::TooLarge(pkt.data.len()))?;
    let mut body = Vec::with_capacity(20 + pkt.data.len() + 4);
    body.extend_from_slice(&iface.to_le_bytes());
    body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts as u32).to_le_bytes());
    body.extend_from_slice(&caplen.to_le_bytes());
    body.extend_from_slice(&pkt.orig_len.to_le_bytes());
    body.extend_from_slice(&pkt.data);
    pad(&mut body);
    let mut opts = Options::default();
    if let Some(c) = comment {
        opts.text(OPT_COMMENT, c);
    }
    Ok(block(EPB, &body, opts))
}

/// Options of one block; `text` splits values that do not fit one option.
#[derive(Default)]
struct Options(Vec<u8>);

impl Options {
    fn raw(&mut self, code: u16, value: &[u8]) {
        debug_assert!(value.len() <= MAX_OPTION);
        self.0.extend_from_slice(&code.to_le_bytes());
        self.0
            .extend_from_slice(&(value.len() as u16).to_le_bytes());
        self.0.extend_from_slice(value);
        pad(&mut self.0);
    }

    fn text(&mut self, code: u16, value: &str) {
        for part in split_text(value, MAX_OPTION) {
            self.raw(code, part.as_bytes());
        }
    }
}

/// Pieces of at most `max` bytes, cut after a line break when one lies in
/// the last quarter of a piece, else at a character boundary. Empty text
/// gives no piece.
pub fn split_text(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= max {
            out.push(rest);
            break;
        }
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(nl) = rest[..cut].rfind('\n').filter(|&n| n >= cut - cut / 4) {
            cut = nl + 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

fn pad(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

fn block(btype: u32, body: &[u8], opts: Options) -> Vec<u8> {
    let mut options = opts.0;
    if !options.is_empty() {
        options.extend_from_slice(&OPT_END.to_le_bytes());
        options.extend_from_slice(&0u16.to_le_bytes());
    }
    let total = (12 + body.len() + options.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&btype.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&options);
    out.extend_from_slice(&total.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capfile::read::{read_bytes, Contents};
    use etherparse::PacketBuilder;

    /// An Ethernet+IPv4+TCP frame as `lo` would carry it.
    fn frame(seq: u32, payload: &[u8], fin: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(40000, 5000, seq, 65535)
            .ack(1000);
        let b = if fin { b.fin() } else { b };
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
            section_comment:
                "scenario: half-close\nhc-trace 0.1.0\nno wire effect: shutdown(4, SHUT_RD)".into(),
            application: "hc-trace 0.1.0".into(),
            os: Some("Linux 6.18.0".into()),
        }
    }

    fn file(meta: &PcapngMeta, pkts: &[RawPacket], comments: &[Option<String>]) -> Vec<u8> {
        let mut out = header(meta);
        for (p, c) in pkts.iter().zip(comments) {
            out.extend(packet(p, c.as_deref()).expect("encodes"));
        }
        out
    }

    fn packets() -> (Vec<RawPacket>, Vec<Option<String>>) {
        // 2026-05-01T12:00:00.123456789Z: nanoseconds that a µs format would lose.
        let base: Nanos = 1_777_636_800_123_456_789;
        let data = [
            frame(1, b"", false),
            frame(1, b"hello", false),
            frame(6, b"", true),
        ];
        let pkts = data
            .iter()
            .enumerate()
            .map(|(i, d)| RawPacket {
                ts: base + i as i64 * 1_001,
                orig_len: d.len() as u32,
                data: d.clone(),
            })
            .collect();
        let comments = vec![
            Some("client: connect(3, 127.0.0.1:5000)".to_string()),
            None,
            Some("client: shutdown(3, SHUT_WR)\nsends FIN; état FIN_WAIT1 → «ok» 🙂".to_string()),
        ];
        (pkts, comments)
    }

    fn read(bytes: &[u8]) -> Contents {
        read_bytes(bytes).expect("reads back")
    }

    #[test]
    fn round_trip_keeps_bytes_nanoseconds_and_comments() {
        let (pkts, comments) = packets();
        let back = read(&file(&meta(), &pkts, &comments));
        assert_eq!(back.linktypes, vec![1]);
        assert_eq!(back.section_comments, vec![meta().section_comment]);
        assert_eq!(back.packets.len(), pkts.len());
        for (got, (want, want_comment)) in back.packets.iter().zip(pkts.iter().zip(&comments)) {
            assert_eq!(got.packet.ts, want.ts);
            assert_eq!(got.packet.orig_len, want.orig_len);
            assert_eq!(got.packet.data, want.data);
            let want_comments: Vec<String> = want_comment.iter().cloned().collect();
            assert_eq!(got.comments, want_comments);
        }
    }

    #[test]
    fn packets_cut_by_the_snap_length_keep_their_wire_length() {
        let full = frame(1, &[0x55; 300], false);
        let pkt = RawPacket {
            ts: 1,
            orig_len: full.len() as u32,
            data: full[..64].to_vec(),
        };
        let back = read(&file(&meta(), &[pkt], &[None]));
        assert_eq!(back.packets[0].packet.orig_len as usize, full.len());
        assert_eq!(back.packets[0].packet.data, full[..64]);
    }

    #[test]
    fn an_empty_capture_is_still_a_valid_file() {
        let back = read(&header(&meta()));
        assert!(back.packets.is_empty());
        assert_eq!(back.linktypes, vec![1]);
        assert_eq!(back.section_comments.len(), 1);
    }

    #[test]
    fn impossible_packets_are_refused() {
        let before_1970 = RawPacket {
            ts: -1,
            orig_len: 4,
            data: vec![0; 4],
        };
        assert_eq!(
            packet(&before_1970, None),
            Err(EncodeError::NegativeTimestamp { ts: -1 })
        );
        let longer_than_wire = RawPacket {
            ts: 1,
            orig_len: 2,
            data: vec![0; 4],
        };
        assert!(matches!(
            packet(&longer_than_wire, None),
            Err(EncodeError::CapturedMoreThanWire { .. })
        ));
    }

    #[test]
    fn a_comment_longer_than_an_option_is_split_and_read_back_whole() {
        let line = "#12 client read(5, buf, 65536) = 4096 ⇒ ACK #13 · state ESTABLISHED\n";
        let long: String = line.repeat(3_000);
        assert!(long.len() > 3 * MAX_OPTION);
        let mut m = meta();
        m.section_comment = long.clone();
        let (pkts, _) = packets();
        let bytes = file(&m, &pkts[..1], &[Some(long.clone())]);
        let back = read(&bytes);
        assert_eq!(back.section_comments.concat(), long);
        assert!(
            back.section_comments.len() >= 4,
            "split into several options"
        );
        assert!(back.section_comments.iter().all(|c| c.len() <= MAX_OPTION));
        assert!(back.section_comments[..back.section_comments.len() - 1]
            .iter()
            .all(|c| c.ends_with('\n')));
        assert_eq!(back.packets[0].comments.concat(), long);
    }

    #[test]
    fn splitting_never_cuts_a_character() {
        let text = "é".repeat(10);
        for max in 1..8 {
            let parts = split_text(&text, max.max(2));
            assert_eq!(parts.concat(), text);
            assert!(parts.iter().all(|p| p.len() <= max.max(2)));
        }
        assert!(split_text("", 10).is_empty());
    }

    #[test]
    fn several_interfaces_keep_their_link_types() {
        let mut bytes = header(&PcapngMeta {
            linktype: 1,
            snaplen: 65535,
            iface: "eth0".into(),
            iface_description: String::new(),
            section_comment: String::new(),
            application: "test".into(),
            os: None,
        });
        bytes.extend(interface(239, 96, "nflog", "second"));
        let pkt = |ts| RawPacket {
            ts,
            orig_len: 4,
            data: vec![1, 2, 3, 4],
        };
        bytes.extend(packet_on(1, &pkt(5), Some("on nflog")).expect("encode"));
        bytes.extend(packet_on(0, &pkt(6), None).expect("encode"));
        let back = read_bytes(&bytes).expect("reads back");
        assert_eq!(back.linktypes, vec![1, 239]);
        assert_eq!(back.interfaces[1].snaplen, 96);
        assert_eq!(back.interfaces[1].name.as_deref(), Some("nflog"));
        let got: Vec<(u32, u32)> = back.packets.iter().map(|p| (p.iface, p.linktype)).collect();
        assert_eq!(got, vec![(1, 239), (0, 1)]);
        assert_eq!(back.packets[0].comments, vec!["on nflog"]);
    }
}
