//! Capture files (classic pcap and pcapng) as a stream of packet records,
//! read zero-copy from bytes in memory.
//!
//! The caller owns the bytes (the binary maps the file; tests and fuzz
//! targets hand in a slice) and pulls items from a [`Reader`] one at a time,
//! so several files can be read side by side and merged by time
//! ([`super::merge`]). [`Reader::position`] says how far it got, so a map can
//! give the pages behind back to the kernel (resident memory stays flat in
//! the file size) and a long read can be interrupted; [`for_each_with_progress`]
//! does that every [`RELEASE_EVERY`] bytes for callers that read one file.
//!
//! Every length in the file is hostile: a record that runs past the end is
//! "truncated", one whose framing is inconsistent is "corrupt", and both
//! name the 1-based record number (as Wireshark numbers frames) and the byte
//! offset. Where the format allows (pcapng repeats each block's length at its
//! end; classic pcap headers have recognisable values) reading resumes at the
//! next plausible record, and the caller counts what was skipped.

use crate::model::{LinkType, Nanos, RawPacket};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// How often (in bytes read) [`for_each_with_progress`] reports its progress.
pub const RELEASE_EVERY: usize = 16 << 20;

/// No real capture has larger packets (libpcap's maximum snap length is
/// 256 KiB); a larger length means the framing is broken.
const MAX_PACKET: u32 = 1 << 20;

/// How far ahead a resynchronisation looks for the next plausible record.
const RESYNC_WINDOW: usize = 16 << 20;

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("{}: not a pcap or pcapng capture (first bytes {magic})", path.display())]
    NotACapture { path: PathBuf, magic: String },
    #[error("{}: truncated {what} at byte offset {offset} (record {record}): {detail}", path.display())]
    Truncated {
        path: PathBuf,
        what: &'static str,
        offset: u64,
        record: u64,
        detail: String,
    },
    #[error("{}: corrupt {what} at byte offset {offset} (record {record}): {detail}", path.display())]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        offset: u64,
        record: u64,
        detail: String,
    },
}

impl ReadError {
    /// True when reading went on after this error (the record was skipped).
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            ReadError::Truncated { .. } | ReadError::Corrupt { .. }
        )
    }
}

/// One packet record, borrowed from the bytes.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// 0-based packet number in this file.
    pub index: u64,
    /// Byte offset of the record (its header) in the file.
    pub offset: u64,
    pub linktype: LinkType,
    /// The interface it was captured on: the `id` of an [`Item::Interface`]
    /// read before it (0 in a classic pcap file).
    pub iface: u32,
    pub ts: Nanos,
    pub orig_len: u32,
    pub data: &'a [u8],
    /// The block's options (pcapng), read only when asked for.
    options: &'a [u8],
    big: bool,
}

impl<'a> Record<'a> {
    /// The packet's comments (pcapng `opt_comment`), in file order.
    pub fn comments(&self) -> Vec<Cow<'a, str>> {
        option_values(self.options, self.big, 1)
            .map(String::from_utf8_lossy)
            .collect()
    }
}

/// The values of every option with `code` in a pcapng options area.
fn option_values(opts: &[u8], big: bool, code: u16) -> impl Iterator<Item = &[u8]> {
    let mut p = 0usize;
    std::iter::from_fn(move || loop {
        if p + 4 > opts.len() {
            return None;
        }
        let c = u16_at(opts, p, big);
        let len = usize::from(u16_at(opts, p + 2, big));
        let v = p + 4;
        if c == 0 || v + len > opts.len() {
            return None;
        }
        p = v + len.div_ceil(4) * 4;
        if c == code {
            return Some(&opts[v..v + len]);
        }
    })
}

/// An interface a file describes (pcapng), or the one a classic pcap file has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Numbered from 0 in file order across every section of the file, so
    /// it stays unique when a second section starts its own numbering.
    pub id: u32,
    pub linktype: LinkType,
    /// The snap length (0: not given).
    pub snaplen: u32,
    /// `if_name` and `if_description` (pcapng).
    pub name: Option<String>,
    pub description: Option<String>,
}

/// What the reader hands to its caller, in file order.
pub enum Item<'a> {
    Packet(Record<'a>),
    /// A pcapng section began; its comments (`shb_comment`).
    Section {
        comments: Vec<String>,
    },
    /// An interface was described: every pcapng IDB, and once at the start
    /// of a classic pcap file (its link type and snap length).
    Interface(Interface),
    /// A record that could not be read; `resumed` says whether reading went on.
    Damaged {
        error: ReadError,
        resumed: bool,
    },
}

/// Calls `f` for every record of the capture in `data`; `name` only labels
/// errors. Returns Err only when the bytes are not a capture at all (bad
/// magic); damage inside goes to `f` as [`Item::Damaged`].
pub fn for_each_in_bytes<'s>(
    data: &'s [u8],
    name: &'s Path,
    f: impl FnMut(Item<'s>),
) -> Result<(), ReadError> {
    for_each_with_progress(data, name, &mut |_| true, f)
}

/// Like [`for_each_in_bytes`], calling `progress(offset)` every
/// [`RELEASE_EVERY`] bytes; reading stops early when it returns false.
pub fn for_each_with_progress<'s>(
    data: &'s [u8],
    name: &'s Path,
    progress: &mut dyn FnMut(usize) -> bool,
    mut f: impl FnMut(Item<'s>),
) -> Result<(), ReadError> {
    let mut r = Reader::new(data, name)?;
    let mut reported = 0usize;
    while let Some(item) = r.next_item() {
        f(item);
        let pos = r.position();
        if pos >= reported + RELEASE_EVERY {
            reported = pos;
            if !progress(pos) {
                break;
            }
        }
    }
    Ok(())
}

/// A packet read back whole, with its comments and link type.
#[derive(Clone, Debug)]
pub struct ReadPacket {
    pub packet: RawPacket,
    pub linktype: LinkType,
    pub iface: u32,
    pub comments: Vec<String>,
}

/// A whole capture read back (for tools and tests; `analyze` streams instead).
#[derive(Clone, Debug, Default)]
pub struct Contents {
    /// Comments of every section header, in file order.
    pub section_comments: Vec<String>,
    /// The link type of each interface described (pcapng), or the file's one.
    pub linktypes: Vec<LinkType>,
    /// Every interface, in file order.
    pub interfaces: Vec<Interface>,
    pub packets: Vec<ReadPacket>,
}

/// Reads every packet of a capture; any damage is an error (the first one).
pub fn read_bytes(data: &[u8]) -> Result<Contents, ReadError> {
    let name = Path::new("capture");
    let mut out = Contents::default();
    let mut damage = None;
    for_each_in_bytes(data, name, |item| match item {
        Item::Packet(r) => {
            out.packets.push(ReadPacket {
                packet: RawPacket {
                    ts: r.ts,
                    orig_len: r.orig_len,
                    data: r.data.to_vec(),
                },
                linktype: r.linktype,
                iface: r.iface,
                comments: r.comments().into_iter().map(Cow::into_owned).collect(),
            });
        }
        Item::Section { comments } => out.section_comments.extend(comments),
        Item::Interface(i) => {
            out.linktypes.push(i.linktype);
            out.interfaces.push(i);
        }
        Item::Damaged { error, .. } => {
            damage.get_or_insert(error);
        }
    })?;
    match damage {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Reads the records of one capture in file order, one item per call.
pub struct Reader<'a> {
    data: &'a [u8],
    path: &'a Path,
    pos: usize,
    /// 0-based number of the next record (packet block or pcap record).
    index: u64,
    state: State,
}

enum State {
    PcapStart(PcapHeader),
    Pcap {
        h: PcapHeader,
        linktype: LinkType,
        limit: u32,
        last_sec: Option<u32>,
    },
    Pcapng {
        big: bool,
        /// The current section's interfaces.
        ifaces: Vec<Iface>,
        /// Interfaces of earlier sections (their ids come first).
        base: u32,
    },
    Done,
}

impl<'a> Reader<'a> {
    /// Checks the magic number; `Err` when the bytes are not a capture.
    pub fn new(data: &'a [u8], path: &'a Path) -> Result<Reader<'a>, ReadError> {
        let state = match data.get(..4) {
            Some(m) if PcapHeader::magic(m).is_some() => {
                State::PcapStart(PcapHeader::magic(m).unwrap_or(PcapHeader {
                    big: false,
                    nanos: false,
                }))
            }
            Some([0x0a, 0x0d, 0x0d, 0x0a]) => State::Pcapng {
                big: false,
                ifaces: Vec::new(),
                base: 0,
            },
            _ => {
                return Err(ReadError::NotACapture {
                    path: path.to_path_buf(),
                    magic: data
                        .iter()
                        .take(4)
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                })
            }
        };
        Ok(Reader {
            data,
            path,
            pos: 0,
            index: 0,
            state,
        })
    }

    /// How far reading got (a byte offset in the file).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next item, or `None` at the end (or after damage it cannot
    /// read past).
    pub fn next_item(&mut self) -> Option<Item<'a>> {
        match self.state {
            State::PcapStart(h) => self.pcap_start(h),
            State::Pcap { .. } => self.pcap_next(),
            State::Pcapng { .. } => self.pcapng_next(),
            State::Done => None,
        }
    }

    fn stop(&mut self, item: Item<'a>) -> Option<Item<'a>> {
        self.state = State::Done;
        Some(item)
    }
}

#[derive(Clone, Copy)]
struct PcapHeader {
    big: bool,
    nanos: bool,
}

impl PcapHeader {
    fn magic(m: &[u8]) -> Option<PcapHeader> {
        let le = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
        match le {
            0xa1b2c3d4 => Some(PcapHeader {
                big: false,
                nanos: false,
            }),
            0xa1b23c4d => Some(PcapHeader {
                big: false,
                nanos: true,
            }),
            0xd4c3b2a1 => Some(PcapHeader {
                big: true,
                nanos: false,
            }),
            0x4d3cb2a1 => Some(PcapHeader {
                big: true,
                nanos: true,
            }),
            _ => None,
        }
    }
}

fn u32_at(d: &[u8], off: usize, big: bool) -> u32 {
    let b = [d[off], d[off + 1], d[off + 2], d[off + 3]];
    if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

fn u16_at(d: &[u8], off: usize, big: bool) -> u16 {
    let b = [d[off], d[off + 1]];
    if big {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

impl<'a> Reader<'a> {
    fn truncated(
        &self,
        what: &'static str,
        offset: usize,
        record: u64,
        detail: String,
    ) -> Item<'a> {
        Item::Damaged {
            error: ReadError::Truncated {
                path: self.path.to_path_buf(),
                what,
                offset: offset as u64,
                record,
                detail,
            },
            resumed: false,
        }
    }

    fn corrupt(
        &self,
        what: &'static str,
        offset: usize,
        record: u64,
        detail: String,
        resumed: bool,
    ) -> Item<'a> {
        Item::Damaged {
            error: ReadError::Corrupt {
                path: self.path.to_path_buf(),
                what,
                offset: offset as u64,
                record,
                detail,
            },
            resumed,
        }
    }

    // ------------------------------------------------------------ classic pcap

    fn pcap_start(&mut self, h: PcapHeader) -> Option<Item<'a>> {
        let d = self.data;
        if d.len() < 24 {
            let item = self.truncated(
                "pcap file header",
                0,
                0,
                format!("needs 24 bytes, the file has {}", d.len()),
            );
            return self.stop(item);
        }
        let snaplen = u32_at(d, 16, h.big);
        // The upper bits hold FCS information, not the link type.
        let linktype = u32_at(d, 20, h.big) & 0x0fff_ffff;
        self.pos = 24;
        self.state = State::Pcap {
            h,
            linktype,
            limit: snaplen.clamp(262_144, MAX_PACKET),
            last_sec: None,
        };
        Some(Item::Interface(Interface {
            id: 0,
            linktype,
            snaplen,
            name: None,
            description: None,
        }))
    }

    fn pcap_next(&mut self) -> Option<Item<'a>> {
        let State::Pcap {
            h,
            linktype,
            limit,
            last_sec,
        } = self.state
        else {
            return None;
        };
        let d = self.data;
        let pos = self.pos;
        if pos >= d.len() {
            self.state = State::Done;
            return None;
        }
        let record = self.index + 1;
        if d.len() - pos < 16 {
            let item = self.truncated(
                "pcap record header",
                pos,
                record,
                format!("needs 16 bytes, {} left in the file", d.len() - pos),
            );
            return self.stop(item);
        }
        let sec = u32_at(d, pos, h.big);
        let frac = u32_at(d, pos + 4, h.big);
        let caplen = u32_at(d, pos + 8, h.big);
        let orig = u32_at(d, pos + 12, h.big);
        if caplen > limit {
            let next = self.pcap_resync(pos + 1, h, limit, last_sec);
            let item = self.corrupt(
                "pcap record header",
                pos,
                record,
                format!(
                    "captured length {caplen} is larger than any packet ({limit}); {}",
                    match next {
                        Some(n) => format!("resumed at byte offset {n}"),
                        None => "no plausible record follows".into(),
                    }
                ),
                next.is_some(),
            );
            return match next {
                Some(n) => {
                    self.pos = n;
                    self.index += 1;
                    Some(item)
                }
                None => self.stop(item),
            };
        }
        let body = pos + 16;
        let end = body + caplen as usize;
        if end > d.len() {
            let item = self.truncated(
                "pcap record",
                pos,
                record,
                format!(
                    "the header says {caplen} captured bytes, {} left in the file",
                    d.len() - body
                ),
            );
            return self.stop(item);
        }
        let ns = if h.nanos {
            i64::from(frac)
        } else {
            i64::from(frac) * 1_000
        };
        let rec = Record {
            index: self.index,
            offset: pos as u64,
            linktype,
            iface: 0,
            ts: i64::from(sec) * 1_000_000_000 + ns,
            // Some writers store 0 or less than captured; the captured
            // length is then the best lower bound.
            orig_len: orig.max(caplen),
            data: &d[body..end],
            options: &[],
            big: h.big,
        };
        self.state = State::Pcap {
            h,
            linktype,
            limit,
            last_sec: Some(sec),
        };
        self.index += 1;
        self.pos = end;
        Some(Item::Packet(rec))
    }

    /// Finds the next offset at which two consecutive record headers look
    /// right (lengths in range, time near the last good record), or a single
    /// one that ends exactly at the end of the file.
    fn pcap_resync(
        &self,
        from: usize,
        h: PcapHeader,
        limit: u32,
        last_sec: Option<u32>,
    ) -> Option<usize> {
        let d = self.data;
        let plausible = |p: usize| -> Option<usize> {
            if d.len().checked_sub(p)? < 16 {
                return None;
            }
            let sec = u32_at(d, p, h.big);
            let frac = u32_at(d, p + 4, h.big);
            let cap = u32_at(d, p + 8, h.big);
            let orig = u32_at(d, p + 12, h.big);
            let frac_max = if h.nanos { 1_000_000_000 } else { 1_000_000 };
            let near = last_sec.is_none_or(|l| sec.abs_diff(l) < 86_400);
            (cap <= limit
                && cap > 0
                && orig >= cap
                && orig <= MAX_PACKET
                && frac < frac_max
                && near)
                .then(|| p + 16 + cap as usize)
                .filter(|&e| e <= d.len())
        };
        let stop = d.len().min(from.saturating_add(RESYNC_WINDOW));
        (from..stop).find(|&p| match plausible(p) {
            Some(e) if e == d.len() => true,
            Some(e) => plausible(e).is_some(),
            None => false,
        })
    }

    // ------------------------------------------------------------ pcapng

    /// Reads blocks until one yields an item.
    fn pcapng_next(&mut self) -> Option<Item<'a>> {
        loop {
            let State::Pcapng {
                ref mut big,
                ref mut ifaces,
                ref mut base,
            } = self.state
            else {
                return None;
            };
            let d = self.data;
            let pos = self.pos;
            if pos >= d.len() {
                self.state = State::Done;
                return None;
            }
            let record = self.index + 1;
            if d.len() - pos < 12 {
                let item = self.truncated(
                    "pcapng block header",
                    pos,
                    record,
                    format!("needs 12 bytes, {} left in the file", d.len() - pos),
                );
                return self.stop(item);
            }
            let raw_type = u32::from_le_bytes([d[pos], d[pos + 1], d[pos + 2], d[pos + 3]]);
            if raw_type == 0x0a0d_0d0a {
                // Section header: the byte-order magic decides how to read the rest.
                let bom = &d[pos + 8..pos + 12];
                *big = match bom {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    _ => {
                        let item = self.corrupt(
                            "pcapng section header",
                            pos,
                            record,
                            "byte-order magic is neither 1A2B3C4D nor 4D3C2B1A".into(),
                            false,
                        );
                        return self.stop(item);
                    }
                };
                *base += ifaces.len() as u32;
                ifaces.clear();
            }
            let big = *big;
            let btype = u32_at(d, pos, big);
            let blen = u32_at(d, pos + 4, big) as usize;
            if blen < 12 || blen % 4 != 0 {
                let next = self.pcapng_resync(pos + 4, big);
                let item = self.corrupt(
                    "pcapng block",
                    pos,
                    record,
                    format!(
                        "block length {blen} is not a multiple of 4 of at least 12; {}",
                        resumed_text(next)
                    ),
                    next.is_some(),
                );
                return match next {
                    Some(n) => {
                        self.pos = n;
                        self.index += 1;
                        Some(item)
                    }
                    None => self.stop(item),
                };
            }
            if blen > d.len() - pos {
                let item = self.truncated(
                    "pcapng block",
                    pos,
                    record,
                    format!(
                        "block type {btype:#x} says {blen} bytes, {} left in the file",
                        d.len() - pos
                    ),
                );
                return self.stop(item);
            }
            let trailer = u32_at(d, pos + blen - 4, big) as usize;
            if trailer != blen {
                let next = self.pcapng_resync(pos + 4, big);
                let item = self.corrupt(
                    "pcapng block",
                    pos,
                    record,
                    format!(
                        "length {blen} at the start but {trailer} at the end; {}",
                        resumed_text(next)
                    ),
                    next.is_some(),
                );
                return match next {
                    Some(n) => {
                        self.pos = n;
                        self.index += 1;
                        Some(item)
                    }
                    None => self.stop(item),
                };
            }
            let body = &d[pos + 8..pos + blen - 4];
            self.pos = pos + blen;
            match btype {
                0x0a0d_0d0a => {
                    let comments = body
                        .get(16..)
                        .map(|o| {
                            option_values(o, big, 1)
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                    return Some(Item::Section { comments });
                }
                1 => {
                    let i = Iface::parse(body, big);
                    let State::Pcapng { ifaces, base, .. } = &mut self.state else {
                        return None;
                    };
                    let id = *base + ifaces.len() as u32;
                    let item = Item::Interface(Interface {
                        id,
                        linktype: i.linktype,
                        snaplen: i.snaplen,
                        name: i.name.clone(),
                        description: i.description.clone(),
                    });
                    ifaces.push(i);
                    return Some(item);
                }
                6 | 2 | 3 => {
                    let State::Pcapng { ifaces, base, .. } = &self.state else {
                        return None;
                    };
                    let item = match packet_block(btype, body, big, ifaces) {
                        Ok((iface, ts, caplen, orig, off)) => match ifaces.get(iface as usize) {
                            None => self.corrupt(
                                "pcapng packet block",
                                pos,
                                record,
                                format!(
                                    "refers to interface {iface}, which the section never described"
                                ),
                                true,
                            ),
                            Some(ifc) => {
                                let start = pos + 8 + off;
                                // Options follow the data, padded to 4 bytes (none in a simple packet block).
                                let opt_at =
                                    (off + (caplen as usize).div_ceil(4) * 4).min(body.len());
                                let options = if btype == 3 { &[][..] } else { &body[opt_at..] };
                                Item::Packet(Record {
                                    index: self.index,
                                    offset: pos as u64,
                                    linktype: ifc.linktype,
                                    iface: *base + iface,
                                    ts: ifc.to_ns(ts),
                                    orig_len: orig.max(caplen),
                                    data: &d[start..start + caplen as usize],
                                    options,
                                    big,
                                })
                            }
                        },
                        Err(detail) => {
                            self.corrupt("pcapng packet block", pos, record, detail, true)
                        }
                    };
                    self.index += 1;
                    return Some(item);
                }
                _ => {}
            }
        }
    }

    /// The next 4-aligned offset holding a block whose two length fields agree.
    fn pcapng_resync(&self, from: usize, big: bool) -> Option<usize> {
        let d = self.data;
        let start = (from + 3) & !3;
        let stop = d.len().min(start.saturating_add(RESYNC_WINDOW));
        (start..stop).step_by(4).find(|&p| {
            if d.len() - p < 12 {
                return false;
            }
            let t = u32_at(d, p, big);
            let len = u32_at(d, p + 4, big) as usize;
            matches!(t, 1 | 2 | 3 | 5 | 6 | 0x0a0d_0d0a)
                && len >= 12
                && len % 4 == 0
                && len <= d.len() - p
                && u32_at(d, p + len - 4, big) as usize == len
        })
    }
}

/// Reads a packet block's header: (interface, ticks, captured, original,
/// offset of the data within the block body).
fn packet_block(
    btype: u32,
    body: &[u8],
    big: bool,
    ifaces: &[Iface],
) -> Result<(u32, u64, u32, u32, usize), String> {
    let need = |n: usize| {
        if body.len() < n {
            Err(format!("body has {} bytes, needs {n}", body.len()))
        } else {
            Ok(())
        }
    };
    let (iface, ticks, caplen, orig, off) = match btype {
        6 => {
            need(20)?;
            let ticks = (u64::from(u32_at(body, 4, big)) << 32) | u64::from(u32_at(body, 8, big));
            (
                u32_at(body, 0, big),
                ticks,
                u32_at(body, 12, big),
                u32_at(body, 16, big),
                20usize,
            )
        }
        2 => {
            need(20)?;
            let ticks = (u64::from(u32_at(body, 4, big)) << 32) | u64::from(u32_at(body, 8, big));
            (
                u32::from(u16_at(body, 0, big)),
                ticks,
                u32_at(body, 12, big),
                u32_at(body, 16, big),
                20usize,
            )
        }
        _ => {
            // Simple packet block: no interface number (always the first),
            // no timestamp, captured length implied by the block length.
            need(4)?;
            let orig = u32_at(body, 0, big);
            let snap = ifaces.first().map_or(u32::MAX, |i| i.snaplen).max(1);
            let room = u32::try_from(body.len() - 4).unwrap_or(u32::MAX);
            (0, 0, orig.min(snap).min(room), orig, 4usize)
        }
    };
    if caplen as usize > body.len() - off {
        return Err(format!(
            "captured length {caplen} is larger than the block ({} bytes of data room)",
            body.len() - off
        ));
    }
    Ok((iface, ticks, caplen, orig, off))
}

fn resumed_text(next: Option<usize>) -> String {
    match next {
        Some(n) => format!("resumed at the next block, byte offset {n}"),
        None => "no block with consistent lengths follows".into(),
    }
}

/// What an Interface Description Block says about its packets.
struct Iface {
    linktype: LinkType,
    snaplen: u32,
    /// if_tsresol: bit 7 clear means 10^-n s, set means 2^-n s; default 6.
    tsresol: u8,
    /// if_tsoffset in seconds.
    offset_s: i64,
    name: Option<String>,
    description: Option<String>,
}

impl Iface {
    fn parse(body: &[u8], big: bool) -> Iface {
        let mut i = Iface {
            linktype: 0,
            snaplen: 0,
            tsresol: 6,
            offset_s: 0,
            name: None,
            description: None,
        };
        if body.len() < 8 {
            return i;
        }
        i.linktype = LinkType::from(u16_at(body, 0, big));
        i.snaplen = u32_at(body, 4, big);
        let mut p = 8;
        while p + 4 <= body.len() {
            let code = u16_at(body, p, big);
            let len = usize::from(u16_at(body, p + 2, big));
            let v = p + 4;
            if code == 0 || v + len > body.len() {
                break;
            }
            let text = || Some(String::from_utf8_lossy(&body[v..v + len]).into_owned());
            match (code, len) {
                (2, _) => i.name = text(),
                (3, _) => i.description = text(),
                (9, 1) => i.tsresol = body[v],
                (14, 8) => {
                    let hi = u64::from(u32_at(body, v, big));
                    let lo = u64::from(u32_at(body, v + 4, big));
                    i.offset_s = (if big {
                        (hi << 32) | lo
                    } else {
                        (lo << 32) | hi
                    }) as i64;
                }
                _ => {}
            }
            p = v + len.div_ceil(4) * 4;
        }
        i
    }

    fn to_ns(&self, ticks: u64) -> Nanos {
        let t = u128::from(ticks);
        let n = u32::from(self.tsresol & 0x7f);
        let ns: u128 = if self.tsresol & 0x80 == 0 {
            if n <= 9 {
                t * 10u128.pow(9 - n)
            } else {
                10u128.checked_pow(n - 9).map_or(0, |div| t / div)
            }
        } else if n > 64 {
            0
        } else {
            (t * 1_000_000_000) >> n
        };
        i64::try_from(ns)
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset_s.saturating_mul(1_000_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_bytes(records: &[(u32, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        for (i, (sec, data)) in records.iter().enumerate() {
            v.extend_from_slice(&sec.to_le_bytes());
            v.extend_from_slice(&(i as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(data);
        }
        v
    }

    fn read(bytes: &[u8]) -> (Vec<(u64, usize)>, Vec<String>) {
        let mut pkts = Vec::new();
        let mut errs = Vec::new();
        let r = for_each_in_bytes(bytes, Path::new("test.pcap"), |it| match it {
            Item::Packet(p) => pkts.push((p.index, p.data.len())),
            Item::Damaged { error, .. } => errs.push(error.to_string()),
            Item::Section { .. } | Item::Interface(_) => {}
        });
        if let Err(e) = r {
            errs.push(e.to_string());
        }
        (pkts, errs)
    }

    #[test]
    fn classic_pcap_records() {
        let v = pcap_bytes(&[(100, &[1; 60]), (100, &[2; 70])]);
        let (p, e) = read(&v);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(p, vec![(0, 60), (1, 70)]);
    }

    #[test]
    fn truncated_pcap_names_offset_and_record() {
        let v = pcap_bytes(&[(100, &[1; 60]), (100, &[2; 70])]);
        let cut = &v[..v.len() - 10];
        let (p, e) = read(cut);
        assert_eq!(p.len(), 1);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].contains("byte offset 100") && e[0].contains("record 2"),
            "{e:?}"
        );
    }

    #[test]
    fn corrupt_pcap_header_resyncs() {
        let mut v = pcap_bytes(&[
            (100, &[1; 60]),
            (100, &[2; 70]),
            (100, &[3; 80]),
            (100, &[4; 90]),
        ]);
        // Record 2's captured length (header at 24+16+60 = 100).
        v[108..112].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let (p, e) = read(&v);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("corrupt") && e[0].contains("offset 100"),
            "{e:?}"
        );
        assert_eq!(p.iter().map(|x| x.1).collect::<Vec<_>>(), vec![60, 80, 90]);
    }

    #[test]
    fn garbage_never_panics() {
        let base = pcap_bytes(&[(100, &[1; 60]), (100, &[2; 70])]);
        let mut seed = 0x1234_5678u64;
        for _ in 0..3000 {
            let mut v = base.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed % v.len() as u64) as usize;
                v[i] = (seed >> 32) as u8;
            }
            let cut = (seed >> 40) as usize % (v.len() + 1);
            let _ = read(&v[..cut]);
        }
        for n in 0..40 {
            let _ = read(&vec![0x0a; n]);
            let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a];
            ng.extend(std::iter::repeat_n(0xff, n));
            let _ = read(&ng);
        }
    }

    #[test]
    fn not_a_capture() {
        let (_, e) = read(b"hello world, no capture");
        assert!(e[0].contains("not a pcap or pcapng"), "{e:?}");
    }
}
