//! The annotated capture file: pcapng, because only pcapng carries per-packet
//! comments, and the comments are how Wireshark users see which socket call
//! caused each segment (`frame.comment`).
//!
//! libpcap 1.10 neither writes pcapng nor exposes comments when reading, so
//! both directions go through `pcap-file` here.

use crate::model::{LinkType, Nanos, RawPacket};
use crate::ownership::give_to_invoking_user;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::{DataLink, PcapError};
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Nanosecond timestamps: pcap-file 2.0 writes the raw nanosecond count into
/// every Enhanced Packet Block, so the interface must declare 10^-9 or readers
/// take the count for microseconds and show dates millennia ahead.
const TS_RESOL_NANOS: u8 = 9;

/// What a reader assumes when an interface does not say (pcapng spec: 10^-6).
const TS_RESOL_DEFAULT: u8 = 6;

#[derive(Debug, thiserror::Error)]
pub enum PcapngError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a valid pcapng file: {source}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: PcapError,
    },
    #[error("{} is a classic pcap file, not pcapng (it cannot hold packet comments)", path.display())]
    ClassicPcap { path: PathBuf },
    #[error("cannot encode pcapng block: {0}")]
    Encode(#[source] PcapError),
    #[error("{} is not a file name to write a capture to", path.display())]
    BadPath { path: PathBuf },
    #[error("packet timestamp {ts} ns lies before 1970; pcapng cannot store it")]
    NegativeTimestamp { ts: Nanos },
    #[error("packet has {captured} captured bytes but says only {orig_len} were on the wire")]
    CapturedMoreThanWire { captured: usize, orig_len: u32 },
    #[error("{packets} packets but {comments} comment slots; there must be one slot per packet")]
    CommentCount { packets: usize, comments: usize },
    #[error("{}: packet {index} refers to interface {interface}, which the file never described", path.display())]
    UnknownInterface {
        path: PathBuf,
        index: usize,
        interface: u32,
    },
    #[error("{}: packet {index} has a timestamp that does not fit in 64-bit nanoseconds", path.display())]
    TimestampOverflow { path: PathBuf, index: usize },
    #[error("{}: packets come from interfaces with different link types ({first} and {other}); one capture must have one link type", path.display())]
    MixedLinkTypes {
        path: PathBuf,
        first: LinkType,
        other: LinkType,
    },
    #[error("could not finish {}: {source}; what was captured is still in {}", path.display(), temp.display())]
    Finish {
        path: PathBuf,
        temp: PathBuf,
        #[source]
        source: io::Error,
    },
}

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
}

/// Writes packets as they come into a temporary file beside `path` and
/// renames it to `path` on [`finish`](Self::finish), so a reader never sees a
/// half-written file at `path`.
///
/// Each block is handed to the kernel in one piece, so even the temporary
/// file is readable up to the last packet written if the process dies; that
/// is what lets an interrupted run keep what it captured (by calling
/// `finish` from its interrupt path).
///
/// Dropping a sink without `finish()` removes the temporary file: a run that
/// failed should not leave hidden files behind.
pub struct PcapngSink {
    /// `None` once finished, so `Drop` knows there is nothing to clean up.
    file: Option<File>,
    /// Encodes blocks into memory; the bytes are moved to `file` block by block.
    encoder: PcapNgWriter<Vec<u8>>,
    temp: PathBuf,
    path: PathBuf,
}

impl PcapngSink {
    /// Starts a capture file: creates missing parent directories, the
    /// temporary file, and writes the section header and interface block.
    pub fn create(path: &Path, meta: &PcapngMeta) -> Result<PcapngSink, PcapngError> {
        let name = path.file_name().ok_or_else(|| PcapngError::BadPath {
            path: path.to_path_buf(),
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_dirs_for_user(&dir)?;

        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}", std::process::id()));
        let temp = dir.join(temp_name);
        let file = create_exclusive(&temp)?;
        // Chowned now rather than at finish: the file keeps its owner through
        // the rename, and a temporary file kept after a crash is the user's too.
        give_to_invoking_user(&temp).map_err(|source| PcapngError::Io {
            action: "cannot give to the invoking user",
            path: temp.clone(),
            source,
        })?;

        let encoder = PcapNgWriter::with_section_header(Vec::new(), section_header(meta))
            .map_err(PcapngError::Encode)?;
        let mut sink = PcapngSink {
            file: Some(file),
            encoder,
            temp,
            path: path.to_path_buf(),
        };
        sink.flush_block()?;
        sink.encoder
            .write_pcapng_block(interface_block(meta))
            .map_err(PcapngError::Encode)?;
        sink.flush_block()?;
        Ok(sink)
    }

    /// Appends one packet, with its comment when it has one.
    ///
    /// An empty comment is not written: Wireshark would show an empty
    /// comment line, which says nothing.
    pub fn write_packet(
        &mut self,
        pkt: &RawPacket,
        comment: Option<&str>,
    ) -> Result<(), PcapngError> {
        let ts =
            u64::try_from(pkt.ts).map_err(|_| PcapngError::NegativeTimestamp { ts: pkt.ts })?;
        if pkt.data.len() > pkt.orig_len as usize {
            return Err(PcapngError::CapturedMoreThanWire {
                captured: pkt.data.len(),
                orig_len: pkt.orig_len,
            });
        }
        let options = match comment {
            Some(c) if !c.is_empty() => vec![EnhancedPacketOption::Comment(Cow::Borrowed(c))],
            _ => vec![],
        };
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_nanos(ts),
            original_len: pkt.orig_len,
            data: Cow::Borrowed(&pkt.data),
            options,
        };
        self.encoder
            .write_pcapng_block(block)
            .map_err(PcapngError::Encode)?;
        self.flush_block()
    }

    /// Makes the file durable and puts it at its final name, then returns that name.
    ///
    /// On failure the temporary file is kept (the error names it): the
    /// capture cannot be taken again, so losing it would be worse than a
    /// stray hidden file.
    pub fn finish(mut self) -> Result<PathBuf, PcapngError> {
        let file = self.file.take();
        let finish_err = |source| PcapngError::Finish {
            path: self.path.clone(),
            temp: self.temp.clone(),
            source,
        };
        if let Some(file) = file {
            file.sync_all().map_err(finish_err)?;
        }
        std::fs::rename(&self.temp, &self.path).map_err(finish_err)?;
        // The rename itself lives in the directory; without this a power
        // cut could bring back the old name after we reported success.
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(self.path.clone())
    }

    /// Moves the encoded block to the file in one write, so the file never
    /// ends inside a block (a BufWriter could flush half a block and die).
    fn flush_block(&mut self) -> Result<(), PcapngError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let buf = self.encoder.get_mut();
        let r = file.write_all(buf);
        buf.clear();
        r.map_err(|source| PcapngError::Io {
            action: "cannot write",
            path: self.temp.clone(),
            source,
        })
    }
}

impl std::fmt::Debug for PcapngSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapngSink")
            .field("path", &self.path)
            .field("temp", &self.temp)
            .field("finished", &self.file.is_none())
            .finish()
    }
}

impl Drop for PcapngSink {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            drop(file);
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Convenience: the whole capture at once. `comments` has one slot per packet.
pub fn write_pcapng(
    path: &Path,
    meta: &PcapngMeta,
    packets: &[RawPacket],
    comments: &[Option<String>],
) -> Result<PathBuf, PcapngError> {
    if packets.len() != comments.len() {
        return Err(PcapngError::CommentCount {
            packets: packets.len(),
            comments: comments.len(),
        });
    }
    let mut sink = PcapngSink::create(path, meta)?;
    for (pkt, comment) in packets.iter().zip(comments) {
        sink.write_packet(pkt, comment.as_deref())?;
    }
    sink.finish()
}

/// A pcapng file read back: what libpcap would not tell us (the comments).
#[derive(Clone, Debug, Default)]
pub struct PcapngContents {
    /// Comments of every section header, in file order.
    pub section_comments: Vec<String>,
    /// The link type of the packets; of the first interface when there are no
    /// packets; `None` when the file describes no interface at all.
    pub linktype: Option<LinkType>,
    /// Each packet (timestamp in ns since the epoch) with its comments, in file order.
    pub packets: Vec<(RawPacket, Vec<String>)>,
}

/// How one interface's timestamps turn into nanoseconds.
struct IfaceClock {
    linktype: LinkType,
    tsresol: u8,
    /// if_tsoffset: seconds to add to every timestamp.
    offset_s: i64,
}

/// Reads back a pcapng file: per packet its timestamp (ns), data and
/// comments, plus the section comments.
///
/// Files from other writers (dumpcap writes microseconds) are read too, which
/// is why the interface's timestamp resolution is honoured rather than
/// assuming our own nanoseconds. Simple Packet Blocks are skipped: they carry
/// no timestamp and no comment, and dumpcap does not write them.
pub fn read_pcapng(path: &Path) -> Result<PcapngContents, PcapngError> {
    let io_err = |action| {
        move |source| PcapngError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = File::open(path).map_err(io_err("cannot open"))?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(io_err("cannot read"))?;
    if n == 4 && is_classic_pcap_magic(magic) {
        return Err(PcapngError::ClassicPcap {
            path: path.to_path_buf(),
        });
    }
    drop(file);
    let file = File::open(path).map_err(io_err("cannot open"))?;
    read_pcapng_from(io::BufReader::new(file), path)
}

/// Reads a pcapng file held in memory, as [`read_pcapng`] reads one from
/// disk; `name` only labels errors. For the fuzz targets and their
/// regression test, which must reach the same parsing code without files.
pub fn read_pcapng_bytes(data: &[u8], name: &Path) -> Result<PcapngContents, PcapngError> {
    if data.len() >= 4 && is_classic_pcap_magic([data[0], data[1], data[2], data[3]]) {
        return Err(PcapngError::ClassicPcap {
            path: name.to_path_buf(),
        });
    }
    read_pcapng_from(data, name)
}

fn read_pcapng_from(input: impl io::Read, path: &Path) -> Result<PcapngContents, PcapngError> {
    let format_err = |source| PcapngError::Format {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = PcapNgReader::new(input).map_err(format_err)?;
    let mut out = PcapngContents::default();
    // The first section header is consumed by PcapNgReader::new, not returned as a block.
    out.section_comments
        .extend(section_comments(&reader.section().options));
    let mut ifaces: Vec<IfaceClock> = Vec::new();
    let mut packet_linktype: Option<LinkType> = None;

    while let Some(block) = reader.next_block() {
        let index = out.packets.len();
        let (interface, raw_ts, orig_len, data, comments) = match block.map_err(format_err)? {
            Block::SectionHeader(shb) => {
                out.section_comments.extend(section_comments(&shb.options));
                // Interface numbers start again in each section.
                ifaces.clear();
                continue;
            }
            Block::InterfaceDescription(idb) => {
                let clock = iface_clock(&idb);
                out.linktype.get_or_insert(clock.linktype);
                ifaces.push(clock);
                continue;
            }
            Block::EnhancedPacket(epb) => {
                let comments = epb
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                (
                    epb.interface_id,
                    // pcap-file hands back the raw tick count dressed as nanoseconds.
                    epb.timestamp.as_nanos(),
                    epb.original_len,
                    epb.data.into_owned(),
                    comments,
                )
            }
            Block::Packet(pb) => {
                use pcap_file::pcapng::blocks::packet::PacketOption;
                let comments = pb
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        PacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                (
                    u32::from(pb.interface_id),
                    u128::from(pb.timestamp),
                    pb.original_len,
                    pb.data.into_owned(),
                    comments,
                )
            }
            _ => continue,
        };
        let clock =
            ifaces
                .get(interface as usize)
                .ok_or_else(|| PcapngError::UnknownInterface {
                    path: path.to_path_buf(),
                    index,
                    interface,
                })?;
        match packet_linktype {
            None => packet_linktype = Some(clock.linktype),
            Some(first) if first != clock.linktype => {
                return Err(PcapngError::MixedLinkTypes {
                    path: path.to_path_buf(),
                    first,
                    other: clock.linktype,
                })
            }
            Some(_) => {}
        }
        let ts = ticks_to_ns(raw_ts, clock.tsresol)
            .and_then(|ns| ns.checked_add(i128::from(clock.offset_s) * 1_000_000_000))
            .and_then(|ns| Nanos::try_from(ns).ok())
            .ok_or_else(|| PcapngError::TimestampOverflow {
                path: path.to_path_buf(),
                index,
            })?;
        out.packets
            .push((RawPacket { ts, orig_len, data }, comments));
    }
    if packet_linktype.is_some() {
        out.linktype = packet_linktype;
    }
    Ok(out)
}

fn section_header(meta: &PcapngMeta) -> SectionHeaderBlock<'static> {
    let mut options = Vec::new();
    if !meta.section_comment.is_empty() {
        options.push(SectionHeaderOption::Comment(Cow::Owned(
            meta.section_comment.clone(),
        )));
    }
    if let Some(os) = os_name() {
        options.push(SectionHeaderOption::OS(Cow::Owned(os)));
    }
    options.push(SectionHeaderOption::UserApplication(Cow::Owned(
        meta.application.clone(),
    )));
    SectionHeaderBlock {
        options,
        ..Default::default()
    }
}

fn interface_block(meta: &PcapngMeta) -> InterfaceDescriptionBlock<'static> {
    InterfaceDescriptionBlock {
        linktype: DataLink::from(meta.linktype),
        snaplen: meta.snaplen,
        options: vec![
            InterfaceDescriptionOption::IfName(Cow::Owned(meta.iface.clone())),
            InterfaceDescriptionOption::IfDescription(Cow::Owned(meta.iface_description.clone())),
            InterfaceDescriptionOption::IfTsResol(TS_RESOL_NANOS),
        ],
    }
}

fn iface_clock(idb: &InterfaceDescriptionBlock) -> IfaceClock {
    let mut clock = IfaceClock {
        linktype: u32::from(idb.linktype),
        tsresol: TS_RESOL_DEFAULT,
        offset_s: 0,
    };
    for opt in &idb.options {
        match opt {
            InterfaceDescriptionOption::IfTsResol(r) => clock.tsresol = *r,
            // The field is a signed 64-bit count of seconds stored as u64.
            InterfaceDescriptionOption::IfTsOffset(o) => clock.offset_s = *o as i64,
            _ => {}
        }
    }
    clock
}

/// Converts a pcapng timestamp in the interface's units (if_tsresol: bit 7
/// clear means 10^-n s, set means 2^-n s) to nanoseconds.
fn ticks_to_ns(ticks: u128, tsresol: u8) -> Option<i128> {
    let n = u32::from(tsresol & 0x7f);
    let ns: u128 = if tsresol & 0x80 == 0 {
        if n <= 9 {
            ticks.checked_mul(10u128.pow(9 - n))?
        } else {
            ticks / 10u128.checked_pow(n - 9)?
        }
    } else {
        let scaled = ticks.checked_mul(1_000_000_000)?;
        // 2^127 still fits u128; beyond, every tick count rounds to 0 ns.
        if n > 127 {
            0
        } else {
            scaled >> n
        }
    };
    i128::try_from(ns).ok()
}

/// Section comments from a section header's options.
fn section_comments(options: &[SectionHeaderOption]) -> Vec<String> {
    options
        .iter()
        .filter_map(|o| match o {
            SectionHeaderOption::Comment(c) => Some(c.to_string()),
            _ => None,
        })
        .collect()
}

/// Magic numbers of classic pcap (µs and ns, both byte orders): recognised
/// so `analyze` can say what is wrong instead of "invalid section header".
fn is_classic_pcap_magic(m: [u8; 4]) -> bool {
    let v = u32::from_le_bytes(m);
    matches!(v, 0xa1b2c3d4 | 0xd4c3b2a1 | 0xa1b23c4d | 0x4d3cb2a1)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// "Linux 6.18.0": what Wireshark shows as the capture's operating system.
fn os_name() -> Option<String> {
    // SAFETY: utsname is plain old data; uname fills it and NUL-terminates each field.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(format!("{} {}", field(&u.sysname), field(&u.release)))
}

/// Creates `dir` and any missing ancestors, handing each one we made to the
/// invoking user (directories that already existed are left alone).
fn create_dirs_for_user(dir: &Path) -> Result<(), PcapngError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    std::fs::create_dir_all(dir).map_err(|source| PcapngError::Io {
        action: "cannot create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    for d in missing.iter().rev() {
        give_to_invoking_user(d).map_err(|source| PcapngError::Io {
            action: "cannot give to the invoking user",
            path: d.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Creates the temporary file with O_EXCL: we often run as root in a
/// directory the user controls, and must not follow a planted symlink.
/// A leftover from an earlier process with our pid is removed and replaced.
fn create_exclusive(temp: &Path) -> Result<File, PcapngError> {
    let open = || OpenOptions::new().write(true).create_new(true).open(temp);
    let file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(temp).and_then(|()| open())
        }
        other => other,
    };
    file.map_err(|source| PcapngError::Io {
        action: "cannot create",
        path: temp.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
        }
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

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hc-trace-pcapng-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn dir_entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("scratch dir exists")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn round_trip_keeps_bytes_nanoseconds_and_comments() {
        let dir = scratch("roundtrip");
        let path = dir.join("nested/run.pcapng");
        let (pkts, comments) = packets();
        let written = write_pcapng(&path, &meta(), &pkts, &comments).expect("write");
        assert_eq!(written, path);
        assert_eq!(dir_entries(&dir.join("nested")), vec!["run.pcapng"]);

        let back = read_pcapng(&path).expect("read");
        assert_eq!(back.linktype, Some(1));
        assert_eq!(back.section_comments, vec![meta().section_comment]);
        assert_eq!(back.packets.len(), pkts.len());
        for ((got, got_comments), (want, want_comment)) in
            back.packets.iter().zip(pkts.iter().zip(&comments))
        {
            assert_eq!(got.ts, want.ts);
            assert_eq!(got.orig_len, want.orig_len);
            assert_eq!(got.data, want.data);
            let want_comments: Vec<String> = want_comment.iter().cloned().collect();
            assert_eq!(got_comments, &want_comments);
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn packets_cut_by_the_snap_length_keep_their_wire_length() {
        let dir = scratch("snap");
        let path = dir.join("cut.pcapng");
        let full = frame(1, &[0x55; 300], false);
        let pkt = RawPacket {
            ts: 1,
            orig_len: full.len() as u32,
            data: full[..64].to_vec(),
        };
        write_pcapng(&path, &meta(), &[pkt], &[None]).expect("write");
        let back = read_pcapng(&path).expect("read");
        assert_eq!(back.packets[0].0.orig_len as usize, full.len());
        assert_eq!(back.packets[0].0.data, full[..64]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn an_empty_capture_is_still_a_valid_file() {
        let dir = scratch("empty");
        let path = dir.join("empty.pcapng");
        write_pcapng(&path, &meta(), &[], &[]).expect("write");
        let back = read_pcapng(&path).expect("read");
        assert!(back.packets.is_empty());
        assert_eq!(back.linktype, Some(1));
        assert_eq!(back.section_comments.len(), 1);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn the_temporary_file_is_readable_while_writing_and_gone_after_finish() {
        let dir = scratch("temp");
        let path = dir.join("run.pcapng");
        let (pkts, comments) = packets();
        let mut sink = PcapngSink::create(&path, &meta()).expect("create");
        sink.write_packet(&pkts[0], comments[0].as_deref())
            .expect("write");

        let entries = dir_entries(&dir);
        assert_eq!(
            entries,
            vec![format!(".run.pcapng.tmp-{}", std::process::id())]
        );
        assert!(!path.exists(), "nothing at the final name before finish");
        let partial = read_pcapng(&dir.join(&entries[0])).expect("temp file is readable");
        assert_eq!(partial.packets.len(), 1);

        let done = sink.finish().expect("finish");
        assert_eq!(done, path);
        assert_eq!(dir_entries(&dir), vec!["run.pcapng"]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn dropping_an_unfinished_sink_leaves_nothing_behind() {
        let dir = scratch("drop");
        let path = dir.join("run.pcapng");
        let (pkts, _) = packets();
        let mut sink = PcapngSink::create(&path, &meta()).expect("create");
        sink.write_packet(&pkts[0], Some("x")).expect("write");
        drop(sink);
        assert!(dir_entries(&dir).is_empty());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn finishing_replaces_an_older_capture() {
        let dir = scratch("replace");
        let path = dir.join("run.pcapng");
        let (pkts, comments) = packets();
        write_pcapng(&path, &meta(), &pkts, &comments).expect("first");
        write_pcapng(&path, &meta(), &pkts[..1], &comments[..1]).expect("second");
        assert_eq!(read_pcapng(&path).expect("read").packets.len(), 1);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn impossible_packets_are_refused() {
        let dir = scratch("refuse");
        let path = dir.join("run.pcapng");
        let mut sink = PcapngSink::create(&path, &meta()).expect("create");
        let before_1970 = RawPacket {
            ts: -1,
            orig_len: 4,
            data: vec![0; 4],
        };
        assert!(matches!(
            sink.write_packet(&before_1970, None),
            Err(PcapngError::NegativeTimestamp { ts: -1 })
        ));
        let longer_than_wire = RawPacket {
            ts: 1,
            orig_len: 2,
            data: vec![0; 4],
        };
        assert!(matches!(
            sink.write_packet(&longer_than_wire, None),
            Err(PcapngError::CapturedMoreThanWire { .. })
        ));
        drop(sink);
        assert!(matches!(
            write_pcapng(&path, &meta(), &[], &[None]),
            Err(PcapngError::CommentCount { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn garbage_and_classic_pcap_are_errors_not_panics() {
        let dir = scratch("garbage");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let classic = dir.join("classic.pcap");
        std::fs::write(&classic, 0xa1b2c3d4u32.to_le_bytes()).expect("write");
        assert!(matches!(
            read_pcapng(&classic),
            Err(PcapngError::ClassicPcap { .. })
        ));
        let junk = dir.join("junk.pcapng");
        std::fs::write(&junk, b"not a capture at all").expect("write");
        assert!(matches!(
            read_pcapng(&junk),
            Err(PcapngError::Format { .. })
        ));
        let empty = dir.join("empty.pcapng");
        std::fs::write(&empty, b"").expect("write");
        assert!(read_pcapng(&empty).is_err());

        // A file cut inside a block (as a crash mid-write with a buffered writer would leave).
        let (pkts, comments) = packets();
        let good = dir.join("good.pcapng");
        write_pcapng(&good, &meta(), &pkts, &comments).expect("write");
        let bytes = std::fs::read(&good).expect("read");
        let cut = dir.join("cut.pcapng");
        std::fs::write(&cut, &bytes[..bytes.len() - 7]).expect("write");
        assert!(read_pcapng(&cut).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn timestamps_follow_the_interface_resolution() {
        assert_eq!(ticks_to_ns(5, 9), Some(5));
        assert_eq!(ticks_to_ns(5, 6), Some(5_000));
        assert_eq!(ticks_to_ns(5, 0), Some(5_000_000_000));
        assert_eq!(ticks_to_ns(5_000, 12), Some(5));
        // 2^-10 s per tick: 1024 ticks make one second.
        assert_eq!(ticks_to_ns(1024, 0x80 | 10), Some(1_000_000_000));
        assert_eq!(ticks_to_ns(u128::MAX, 0), None);
    }
}
