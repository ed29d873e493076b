//! Captured frames to [`Segment`]s.
//!
//! The parser reads only what a timeline needs (addresses, flags, numbers,
//! options, payload length) and treats every byte as hostile: captures come
//! from files as well as from our own runs, so a short or corrupt frame is an
//! error value with an offset, never a panic.
//!
//! The link layer is sliced by hand because it is a handful of fixed
//! offsets and etherparse knows neither LINUX_SLL2 nor BSD loopback; the IP
//! and TCP headers go through etherparse's header slices, which validate them.
//!
//! Offsets in errors count from the first byte of the frame, so they can be
//! checked against a hex dump of the same frame in Wireshark.

use crate::model::{LinkType, RawPacket, Segment, TcpFlags, TcpOpt};
use etherparse::{ip_number, Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice};
use etherparse::{Ipv6HeaderSlice, TcpHeaderSlice};
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// LINKTYPE_* numbers this parser understands.
pub mod linktype {
    use crate::model::LinkType;
    /// BSD loopback, address family in the capturing host's byte order.
    pub const NULL: LinkType = 0;
    pub const ETHERNET: LinkType = 1;
    /// DLT_RAW as most BSDs number it.
    pub const RAW_BSD: LinkType = 12;
    /// DLT_RAW as OpenBSD numbers it.
    pub const RAW_OPENBSD: LinkType = 14;
    pub const RAW: LinkType = 101;
    /// OpenBSD loopback, address family in network byte order.
    pub const LOOP: LinkType = 108;
    pub const LINUX_SLL: LinkType = 113;
    pub const IPV4: LinkType = 228;
    pub const IPV6: LinkType = 229;
    pub const LINUX_SLL2: LinkType = 276;
}

/// Why a frame could not be read as a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// A whole capture has one link type, so callers can check
    /// [`is_supported`] once instead of collecting this for every frame.
    #[error("link type {0} is not supported")]
    UnsupportedLinkType(LinkType),
    #[error("{what} truncated at offset {offset}: needs {needed} bytes, {captured} captured")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        captured: usize,
    },
    #[error("corrupt {what} at offset {offset}: {detail}")]
    Corrupt {
        what: &'static str,
        offset: usize,
        detail: String,
    },
}

/// Whether [`parse_frame`] can read frames of this link type.
pub fn is_supported(lt: LinkType) -> bool {
    use linktype::*;
    matches!(
        lt,
        NULL | ETHERNET | RAW_BSD | RAW_OPENBSD | RAW | LOOP | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2
    )
}

/// Parses every packet; frames that are not TCP are skipped silently,
/// broken ones are returned with their index so the caller can report them
/// without losing the rest of the capture.
pub fn parse_all(lt: LinkType, packets: &[RawPacket]) -> (Vec<Segment>, Vec<(usize, WireError)>) {
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    for (i, pkt) in packets.iter().enumerate() {
        match parse_frame(lt, i, pkt) {
            Ok(Some(seg)) => segments.push(seg),
            Ok(None) => {}
            Err(e) => errors.push((i, e)),
        }
    }
    (segments, errors)
}

/// Reads one frame. `Ok(None)` means a well-formed frame that carries no TCP
/// header (ARP, UDP, a non-first IP fragment...).
pub fn parse_frame(
    lt: LinkType,
    frame: usize,
    pkt: &RawPacket,
) -> Result<Option<Segment>, WireError> {
    let data = pkt.data.as_slice();
    let Some((version, ip_off)) = link_layer(lt, data)? else {
        return Ok(None);
    };
    let ip = match version {
        IpVersion::V4 => ipv4(data, ip_off)?,
        IpVersion::V6 => ipv6(data, ip_off)?,
    };
    let Some(ip) = ip else {
        return Ok(None);
    };
    tcp(data, pkt, frame, &ip).map(Some)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpVersion {
    V4,
    V6,
}

/// What the IP layer tells the TCP layer.
struct IpPart {
    src: IpAddr,
    dst: IpAddr,
    /// Offset of the TCP header in the frame.
    tcp_off: usize,
    /// TCP header plus payload according to the IP length field; `None` when
    /// the field is 0, which Linux writes for GSO/BIG TCP packets larger than
    /// 64 KiB: the captured frame length is then the only source.
    tcp_len: Option<usize>,
}

// ---------------------------------------------------------------- link layer

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q, 802.1ad (QinQ outer tag) and the pre-standard QinQ value.
const ETHERTYPE_VLANS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// Finds where the IP header starts; `None` for frames that carry no IP.
fn link_layer(lt: LinkType, data: &[u8]) -> Result<Option<(IpVersion, usize)>, WireError> {
    use linktype::*;
    match lt {
        ETHERNET => {
            let h = need(data, 0, 14, "Ethernet header")?;
            ethertype_chain(data, be16(h, 12), 14)
        }
        // Protocol (an EtherType for IP) in the last 2 of 16 bytes.
        LINUX_SLL => {
            let h = need(data, 0, 16, "Linux cooked (SLL) header")?;
            ethertype_chain(data, be16(h, 14), 16)
        }
        // Protocol in the first 2 of 20 bytes.
        LINUX_SLL2 => {
            let h = need(data, 0, 20, "Linux cooked v2 (SLL2) header")?;
            ethertype_chain(data, be16(h, 0), 20)
        }
        RAW | RAW_BSD | RAW_OPENBSD => raw_ip(data, 0).map(Some),
        IPV4 => Ok(Some((IpVersion::V4, 0))),
        IPV6 => Ok(Some((IpVersion::V6, 0))),
        NULL => {
            let b = need(data, 0, 4, "loopback family header")?;
            let mut family = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            // The header is in the byte order of the host that captured, which
            // need not be ours; families are small numbers, so a value with
            // high bits set was written by a host of the other endianness.
            if family > 0xffff {
                family = family.swap_bytes();
            }
            Ok(ip_by_bsd_family(family).map(|v| (v, 4)))
        }
        LOOP => {
            let b = need(data, 0, 4, "loopback family header")?;
            let family = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            Ok(ip_by_bsd_family(family).map(|v| (v, 4)))
        }
        other => Err(WireError::UnsupportedLinkType(other)),
    }
}

/// Follows `ethertype` (whose payload starts at `off`) through any number
/// of VLAN tags, each a 2-byte TCI and the next EtherType.
fn ethertype_chain(
    data: &[u8],
    mut ethertype: u16,
    mut off: usize,
) -> Result<Option<(IpVersion, usize)>, WireError> {
    while ETHERTYPE_VLANS.contains(&ethertype) {
        let tag = need(data, off, 4, "VLAN tag")?;
        ethertype = be16(tag, 2);
        off += 4;
    }
    Ok(ip_by_ethertype(ethertype).map(|v| (v, off)))
}

fn ip_by_ethertype(ethertype: u16) -> Option<IpVersion> {
    match ethertype {
        ETHERTYPE_IPV4 => Some(IpVersion::V4),
        ETHERTYPE_IPV6 => Some(IpVersion::V6),
        _ => None,
    }
}

/// AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD)
/// or 30 (macOS), and a capture may come from any of them.
fn ip_by_bsd_family(family: u32) -> Option<IpVersion> {
    match family {
        2 => Some(IpVersion::V4),
        24 | 28 | 30 => Some(IpVersion::V6),
        _ => None,
    }
}

/// Raw IP has no link header: the version nibble is the only type information.
fn raw_ip(data: &[u8], off: usize) -> Result<(IpVersion, usize), WireError> {
    let b = need(data, off, 1, "IP header")?;
    match b[0] >> 4 {
        4 => Ok((IpVersion::V4, off)),
        6 => Ok((IpVersion::V6, off)),
        v => Err(WireError::Corrupt {
            what: "IP header",
            offset: off,
            detail: format!("version {v} in a raw IP frame"),
        }),
    }
}

// ---------------------------------------------------------------- IP layer

fn ipv4(data: &[u8], off: usize) -> Result<Option<IpPart>, WireError> {
    const WHAT: &str = "IPv4 header";
    let h = Ipv4HeaderSlice::from_slice(rest(data, off)).map_err(|e| {
        use etherparse::err::ipv4::HeaderSliceError as E;
        match e {
            E::Len(l) => truncated(WHAT, off, l),
            E::Content(c) => corrupt(WHAT, off, c),
        }
    })?;
    // Only the first fragment holds the TCP header; the others are payload.
    if h.fragments_offset().value() != 0 || h.protocol() != ip_number::TCP {
        return Ok(None);
    }
    let header_len = h.slice().len();
    let total = usize::from(h.total_len());
    let tcp_len = match total {
        0 => None,
        t if t < header_len => {
            return Err(WireError::Corrupt {
                what: WHAT,
                offset: off,
                detail: format!("total length {t} is shorter than the header ({header_len})"),
            })
        }
        t => Some(t - header_len),
    };
    Ok(Some(IpPart {
        src: h.source_addr().into(),
        dst: h.destination_addr().into(),
        tcp_off: off + header_len,
        tcp_len,
    }))
}

fn ipv6(data: &[u8], off: usize) -> Result<Option<IpPart>, WireError> {
    const WHAT: &str = "IPv6 header";
    let h = Ipv6HeaderSlice::from_slice(rest(data, off)).map_err(|e| {
        use etherparse::err::ipv6::HeaderSliceError as E;
        match e {
            E::Len(l) => truncated(WHAT, off, l),
            E::Content(c) => corrupt(WHAT, off, c),
        }
    })?;
    let exts_off = off + h.slice().len();
    const EXT: &str = "IPv6 extension header";
    let (exts, next, _) = Ipv6ExtensionsSlice::from_slice(h.next_header(), rest(data, exts_off))
        .map_err(|e| {
            use etherparse::err::ipv6_exts::HeaderSliceError as E;
            match e {
                E::Len(l) => truncated(EXT, exts_off, l),
                E::Content(c) => corrupt(EXT, exts_off, c),
            }
        })?;
    let first_fragment = exts.clone().into_iter().all(|ext| match ext {
        Ipv6ExtensionSlice::Fragment(f) => f.fragment_offset().value() == 0,
        _ => true,
    });
    if !first_fragment || next != ip_number::TCP {
        return Ok(None);
    }
    let exts_len = exts.slice().len();
    let payload = usize::from(h.payload_length());
    let tcp_len = match payload {
        // Jumbogram or BIG TCP: the length lives elsewhere (or nowhere).
        0 => None,
        p if p < exts_len => {
            return Err(WireError::Corrupt {
                what: WHAT,
                offset: off,
                detail: format!(
                    "payload length {p} is shorter than the extension headers ({exts_len})"
                ),
            })
        }
        p => Some(p - exts_len),
    };
    Ok(Some(IpPart {
        src: h.source_addr().into(),
        dst: h.destination_addr().into(),
        tcp_off: exts_off + exts_len,
        tcp_len,
    }))
}

// ---------------------------------------------------------------- TCP layer

fn tcp(data: &[u8], pkt: &RawPacket, frame: usize, ip: &IpPart) -> Result<Segment, WireError> {
    const WHAT: &str = "TCP header";
    let off = ip.tcp_off;
    let h = TcpHeaderSlice::from_slice(rest(data, off)).map_err(|e| {
        use etherparse::err::tcp::HeaderSliceError as E;
        match e {
            E::Len(l) => truncated(WHAT, off, l),
            E::Content(c) => corrupt(WHAT, off, c),
        }
    })?;
    let header_len = h.slice().len();
    // The IP length, not the captured bytes: a short snap length cuts the
    // payload but the segment still occupied that much sequence space.
    let tcp_len = ip.tcp_len.unwrap_or_else(|| {
        usize::try_from(pkt.orig_len)
            .unwrap_or(0)
            .saturating_sub(off)
    });
    let Some(payload) = tcp_len.checked_sub(header_len) else {
        return Err(WireError::Corrupt {
            what: WHAT,
            offset: off,
            detail: format!(
                "IP says {tcp_len} bytes of TCP, less than the {header_len}-byte header"
            ),
        });
    };
    let len = u32::try_from(payload).map_err(|_| WireError::Corrupt {
        what: WHAT,
        offset: off,
        detail: format!("payload length {payload} does not fit in 32 bits"),
    })?;
    Ok(Segment {
        frame,
        ts: pkt.ts,
        src: SocketAddr::new(ip.src, h.source_port()),
        dst: SocketAddr::new(ip.dst, h.destination_port()),
        // Byte 13 holds the eight flag bits in the order TcpFlags expects.
        flags: TcpFlags(h.slice()[13]),
        seq: h.sequence_number(),
        ack: h.acknowledgment_number(),
        win: h.window_size(),
        len,
        options: options(h.options(), off + 20)?,
    })
}

/// Reads the option list by hand rather than with etherparse's iterator,
/// which rejects kinds it does not know; we keep those as `Other(kind)`.
fn options(bytes: &[u8], base: usize) -> Result<Vec<TcpOpt>, WireError> {
    const WHAT: &str = "TCP option";
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&kind) = bytes.get(i) {
        match kind {
            0 => break, // end of option list; the rest is padding
            1 => {
                i += 1; // no-operation: alignment only, not worth showing
                continue;
            }
            _ => {}
        }
        let Some(&len) = bytes.get(i + 1) else {
            return Err(WireError::Truncated {
                what: WHAT,
                offset: base + i,
                needed: 2,
                captured: 1,
            });
        };
        let len = usize::from(len);
        let Some(body) = bytes.get(i + 2..i + len.max(2)).filter(|_| len >= 2) else {
            return Err(WireError::Corrupt {
                what: WHAT,
                offset: base + i,
                detail: format!(
                    "kind {kind} says length {len}, {} bytes left in the header",
                    bytes.len() - i
                ),
            });
        };
        let opt = match (kind, body.len()) {
            (2, 2) => TcpOpt::Mss(u16::from_be_bytes([body[0], body[1]])),
            (3, 1) => TcpOpt::WindowScale(body[0]),
            (4, 0) => TcpOpt::SackPermitted,
            (5, n) if n % 8 == 0 && n > 0 => TcpOpt::Sack(
                body.chunks_exact(8)
                    .map(|c| (be32(c, 0), be32(c, 4)))
                    .collect(),
            ),
            (8, 8) => TcpOpt::Timestamp {
                val: be32(body, 0),
                ecr: be32(body, 4),
            },
            (2 | 3 | 4 | 5 | 8, n) => {
                return Err(WireError::Corrupt {
                    what: WHAT,
                    offset: base + i,
                    detail: format!("kind {kind} with a {n}-byte body"),
                })
            }
            (other, _) => TcpOpt::Other(other),
        };
        out.push(opt);
        i += len;
    }
    Ok(out)
}

// ---------------------------------------------------------------- helpers

/// `data[off..off + n]`, or the error that says which header was cut short.
fn need<'a>(
    data: &'a [u8],
    off: usize,
    n: usize,
    what: &'static str,
) -> Result<&'a [u8], WireError> {
    data.get(off..off.saturating_add(n))
        .ok_or(WireError::Truncated {
            what,
            offset: off,
            needed: n,
            captured: data.len().saturating_sub(off),
        })
}

/// `data[off..]`, empty past the end so etherparse reports the truncation.
fn rest(data: &[u8], off: usize) -> &[u8] {
    data.get(off..).unwrap_or(&[])
}

/// Callers have checked that `b` holds `off + 2` bytes.
fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Callers have checked that `b` holds `off + 4` bytes.
fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn truncated(what: &'static str, off: usize, e: etherparse::err::LenError) -> WireError {
    WireError::Truncated {
        what,
        offset: off + e.layer_start_offset,
        needed: e.required_len,
        captured: e.len,
    }
}

fn corrupt(what: &'static str, off: usize, e: impl std::fmt::Display) -> WireError {
    WireError::Corrupt {
        what,
        offset: off,
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{LinuxSllPacketType, PacketBuilder, TcpOptionElement};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const V4_A: [u8; 4] = [10, 0, 0, 1];
    const V4_B: [u8; 4] = [10, 0, 0, 2];
    const V6_A: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const V6_B: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const TS: i64 = 1_700_000_000_123_456_789;

    fn raw(data: Vec<u8>) -> RawPacket {
        RawPacket {
            ts: TS,
            orig_len: data.len() as u32,
            data,
        }
    }

    fn one(lt: LinkType, data: Vec<u8>) -> Segment {
        match parse_frame(lt, 7, &raw(data)) {
            Ok(Some(seg)) => seg,
            other => panic!("expected a segment, got {other:?}"),
        }
    }

    /// Ethernet + IPv4 + TCP from 10.0.0.1:40000 to 10.0.0.2:5555, seq 1000, win 512.
    fn eth_v4(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(V4_A, V4_B, 64)
            .tcp(40000, 5555, 1000, 512)
            .ack(77)
            .psh()
            .write(&mut v, payload)
            .expect("build frame");
        v
    }

    /// Bare IPv4 + TCP SYN (what raw, SLL2 and loopback frames carry).
    fn ip_v4_syn() -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4(V4_A, V4_B, 64)
            .tcp(40000, 5555, 1000, 512)
            .syn()
            .write(&mut v, &[])
            .expect("build frame");
        v
    }

    fn ip_v6_syn() -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6(V6_A, V6_B, 64)
            .tcp(40000, 5555, 1000, 512)
            .syn()
            .write(&mut v, &[])
            .expect("build frame");
        v
    }

    fn cat(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
        [prefix, rest].concat()
    }

    fn sll2_header(proto: u16) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0..2].copy_from_slice(&proto.to_be_bytes());
        h[4..8].copy_from_slice(&1u32.to_be_bytes()); // ifindex
        h[8..10].copy_from_slice(&772u16.to_be_bytes()); // ARPHRD_LOOPBACK
        h[11] = 6;
        h
    }

    fn v4_addr(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::from(a).into(), port)
    }

    fn v6_addr(a: [u8; 16], port: u16) -> SocketAddr {
        SocketAddr::new(Ipv6Addr::from(a).into(), port)
    }

    #[test]
    fn ethernet_ipv4_fields() {
        let seg = one(linktype::ETHERNET, eth_v4(b"hello"));
        assert_eq!(seg.frame, 7);
        assert_eq!(seg.ts, TS);
        assert_eq!(seg.src, v4_addr(V4_A, 40000));
        assert_eq!(seg.dst, v4_addr(V4_B, 5555));
        assert_eq!(seg.seq, 1000);
        assert_eq!(seg.ack, 77);
        assert_eq!(seg.win, 512);
        assert_eq!(seg.len, 5);
        assert_eq!(seg.flags, TcpFlags(TcpFlags::PSH | TcpFlags::ACK));
        assert!(seg.options.is_empty());
    }

    #[test]
    fn flags() {
        type Step = etherparse::PacketBuilderStep<etherparse::TcpHeader>;
        type SetFlags = fn(Step) -> Step;
        let cases: [(SetFlags, u8); 4] = [
            (|b| b.syn(), TcpFlags::SYN),
            (|b| b.fin().ack(1), TcpFlags::FIN | TcpFlags::ACK),
            (|b| b.rst(), TcpFlags::RST),
            (|b| b.psh(), TcpFlags::PSH),
        ];
        for (set, want) in cases {
            let mut v = Vec::new();
            set(PacketBuilder::ethernet2(MAC_A, MAC_B)
                .ipv4(V4_A, V4_B, 64)
                .tcp(1, 2, 3, 4))
            .write(&mut v, &[])
            .expect("build frame");
            assert_eq!(one(linktype::ETHERNET, v).flags, TcpFlags(want));
        }
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut v = eth_v4(&[]);
        v.resize(60, 0); // minimum Ethernet frame
        assert_eq!(one(linktype::ETHERNET, v).len, 0);
    }

    #[test]
    fn vlan_single_and_double() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .single_vlan(etherparse::VlanId::try_new(42).expect("vlan id"))
            .ipv4(V4_A, V4_B, 64)
            .tcp(40000, 5555, 1, 1)
            .write(&mut v, b"abc")
            .expect("build frame");
        assert_eq!(one(linktype::ETHERNET, v).len, 3);

        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .double_vlan(
                etherparse::VlanId::try_new(1).expect("vlan id"),
                etherparse::VlanId::try_new(2).expect("vlan id"),
            )
            .ipv6(V6_A, V6_B, 64)
            .tcp(40000, 5555, 1, 1)
            .write(&mut v, b"abcd")
            .expect("build frame");
        let seg = one(linktype::ETHERNET, v);
        assert_eq!((seg.src, seg.len), (v6_addr(V6_A, 40000), 4));
    }

    #[test]
    fn ethernet_ipv6() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(V6_A, V6_B, 64)
            .tcp(40000, 5555, 9, 100)
            .fin()
            .ack(10)
            .write(&mut v, b"xy")
            .expect("build frame");
        let seg = one(linktype::ETHERNET, v);
        assert_eq!(seg.src, v6_addr(V6_A, 40000));
        assert_eq!(seg.dst, v6_addr(V6_B, 5555));
        assert_eq!(seg.len, 2);
        assert_eq!(seg.flags, TcpFlags(TcpFlags::FIN | TcpFlags::ACK));
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        // Destination options header (8 bytes of padding) between IPv6 and TCP.
        let tcp_part = &ip_v6_syn()[40..];
        let mut v = ip_v6_syn()[..40].to_vec();
        v[6] = 60; // next header: destination options
        let plen = (8 + tcp_part.len()) as u16;
        v[4..6].copy_from_slice(&plen.to_be_bytes());
        v.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // next TCP, PadN
        v.extend_from_slice(tcp_part);
        let seg = one(linktype::RAW, v);
        assert_eq!((seg.len, seg.flags), (0, TcpFlags(TcpFlags::SYN)));
    }

    #[test]
    fn linux_sll() {
        let mut v = Vec::new();
        PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [0; 8])
            .ipv4(V4_A, V4_B, 64)
            .tcp(40000, 5555, 1, 1)
            .rst()
            .write(&mut v, &[])
            .expect("build frame");
        assert_eq!(one(linktype::LINUX_SLL, v).flags, TcpFlags(TcpFlags::RST));
    }

    #[test]
    fn linux_sll2() {
        let seg = one(
            linktype::LINUX_SLL2,
            cat(&sll2_header(0x0800), &ip_v4_syn()),
        );
        assert_eq!(seg.src, v4_addr(V4_A, 40000));
        let seg = one(
            linktype::LINUX_SLL2,
            cat(&sll2_header(0x86dd), &ip_v6_syn()),
        );
        assert_eq!(seg.dst, v6_addr(V6_B, 5555));
    }

    #[test]
    fn raw_ip_all_numbers() {
        for lt in [linktype::RAW, linktype::RAW_BSD, linktype::RAW_OPENBSD] {
            assert_eq!(one(lt, ip_v4_syn()).src, v4_addr(V4_A, 40000));
            assert_eq!(one(lt, ip_v6_syn()).src, v6_addr(V6_A, 40000));
        }
        assert_eq!(one(linktype::IPV4, ip_v4_syn()).seq, 1000);
        assert_eq!(one(linktype::IPV6, ip_v6_syn()).seq, 1000);
        assert!(matches!(
            parse_frame(linktype::RAW, 0, &raw(vec![0x50; 40])),
            Err(WireError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn bsd_loopback_both_byte_orders() {
        for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            let seg = one(linktype::NULL, cat(&family, &ip_v4_syn()));
            assert_eq!(seg.src, v4_addr(V4_A, 40000));
        }
        for af6 in [24u32, 28, 30] {
            let seg = one(linktype::NULL, cat(&af6.to_ne_bytes(), &ip_v6_syn()));
            assert_eq!(seg.src, v6_addr(V6_A, 40000));
            let seg = one(linktype::LOOP, cat(&af6.to_be_bytes(), &ip_v6_syn()));
            assert_eq!(seg.src, v6_addr(V6_A, 40000));
        }
        // An unknown family is not IP: nothing to report.
        let other = cat(&7u32.to_ne_bytes(), &ip_v4_syn());
        assert_eq!(parse_frame(linktype::NULL, 0, &raw(other)), Ok(None));
    }

    #[test]
    fn length_comes_from_ip_header_when_snap_cut_payload() {
        let full = eth_v4(&[0xaa; 1000]);
        let pkt = RawPacket {
            ts: TS,
            orig_len: full.len() as u32,
            data: full[..54 + 10].to_vec(),
        };
        let seg = parse_frame(linktype::ETHERNET, 0, &pkt).expect("parses");
        assert_eq!(seg.map(|s| s.len), Some(1000));
    }

    #[test]
    fn zero_ip_length_falls_back_to_wire_length() {
        // Linux writes total length 0 for GSO packets above 64 KiB (BIG TCP).
        let full = eth_v4(&[0xaa; 300]);
        let mut data = full[..80].to_vec();
        data[16] = 0;
        data[17] = 0;
        let pkt = RawPacket {
            ts: TS,
            orig_len: 70_000,
            data,
        };
        let seg = parse_frame(linktype::ETHERNET, 0, &pkt).expect("parses");
        assert_eq!(seg.map(|s| s.len), Some(70_000 - 54));
    }

    #[test]
    fn options_are_decoded() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(V4_A, V4_B, 64)
            .tcp(1, 2, 3, 4)
            .syn()
            .options(&[
                TcpOptionElement::MaximumSegmentSize(65495),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(111, 0),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
                TcpOptionElement::SelectiveAcknowledgement((10, 20), [Some((30, 40)), None, None]),
            ])
            .expect("options fit")
            .write(&mut v, &[])
            .expect("build frame");
        assert_eq!(
            one(linktype::ETHERNET, v).options,
            vec![
                TcpOpt::Mss(65495),
                TcpOpt::SackPermitted,
                TcpOpt::Timestamp { val: 111, ecr: 0 },
                TcpOpt::WindowScale(7),
                TcpOpt::Sack(vec![(10, 20), (30, 40)]),
            ]
        );
    }

    #[test]
    fn unknown_and_malformed_options() {
        let build = |opts: &[u8]| {
            let mut v = Vec::new();
            PacketBuilder::ethernet2(MAC_A, MAC_B)
                .ipv4(V4_A, V4_B, 64)
                .tcp(1, 2, 3, 4)
                .options_raw(opts)
                .expect("options fit")
                .write(&mut v, &[])
                .expect("build frame");
            v
        };
        // TCP Fast Open cookie (kind 34) and an end-of-list with padding after it.
        let seg = one(linktype::ETHERNET, build(&[34, 6, 1, 2, 3, 4, 0, 0]));
        assert_eq!(seg.options, vec![TcpOpt::Other(34)]);
        // Option length 0 would loop forever in a naive parser.
        let bad = build(&[34, 0, 0, 0]);
        assert!(matches!(
            parse_frame(linktype::ETHERNET, 0, &raw(bad)),
            Err(WireError::Corrupt {
                what: "TCP option",
                offset: 54,
                ..
            })
        ));
        // MSS with a 3-byte body.
        let bad = build(&[2, 5, 1, 2, 3, 0, 0, 0]);
        assert!(parse_frame(linktype::ETHERNET, 0, &raw(bad)).is_err());
        // Length runs past the header.
        let bad = build(&[1, 1, 8, 10, 0, 0, 0, 0]);
        assert!(parse_frame(linktype::ETHERNET, 0, &raw(bad)).is_err());
    }

    #[test]
    fn non_tcp_frames_are_skipped() {
        let mut udp = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(V4_A, V4_B, 64)
            .udp(53, 53)
            .write(&mut udp, b"q")
            .expect("build frame");
        assert_eq!(parse_frame(linktype::ETHERNET, 0, &raw(udp)), Ok(None));

        let mut arp = eth_v4(&[]);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(parse_frame(linktype::ETHERNET, 0, &raw(arp)), Ok(None));

        let arp_sll2 = cat(&sll2_header(0x0806), &[0; 28]);
        assert_eq!(
            parse_frame(linktype::LINUX_SLL2, 0, &raw(arp_sll2)),
            Ok(None)
        );
    }

    #[test]
    fn later_ipv4_fragments_are_skipped() {
        let mut v = eth_v4(b"data");
        v[14 + 6] = 0x00;
        v[14 + 7] = 0x10; // fragment offset 16 * 8 bytes
        assert_eq!(parse_frame(linktype::ETHERNET, 0, &raw(v)), Ok(None));
    }

    #[test]
    fn corrupt_headers_say_where() {
        let mut v = eth_v4(b"data");
        v[14 + 2] = 0;
        v[14 + 3] = 10; // total length below the 20-byte header
        assert!(matches!(
            parse_frame(linktype::ETHERNET, 0, &raw(v)),
            Err(WireError::Corrupt {
                what: "IPv4 header",
                offset: 14,
                ..
            })
        ));

        let mut v = eth_v4(b"data");
        v[34 + 12] = 0x40; // TCP data offset 4 (16 bytes)
        assert!(matches!(
            parse_frame(linktype::ETHERNET, 0, &raw(v)),
            Err(WireError::Corrupt {
                what: "TCP header",
                offset: 34,
                ..
            })
        ));

        let mut v = eth_v4(&[]);
        v[14 + 2] = 0;
        v[14 + 3] = 30; // IP says 10 bytes of TCP
        assert!(parse_frame(linktype::ETHERNET, 0, &raw(v)).is_err());

        assert_eq!(
            parse_frame(999, 0, &raw(eth_v4(&[]))),
            Err(WireError::UnsupportedLinkType(999))
        );
    }

    /// Every valid frame of every link type, with the length of its headers.
    fn samples() -> Vec<(LinkType, Vec<u8>, usize)> {
        let mut sll = Vec::new();
        PacketBuilder::linux_sll(LinuxSllPacketType::OUTGOING, 6, [0; 8])
            .ipv6(V6_A, V6_B, 64)
            .tcp(1, 2, 3, 4)
            .options(&[TcpOptionElement::Timestamp(1, 2)])
            .expect("options fit")
            .write(&mut sll, b"payload")
            .expect("build frame");
        let mut vlan = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .double_vlan(
                etherparse::VlanId::try_new(1).expect("vlan id"),
                etherparse::VlanId::try_new(2).expect("vlan id"),
            )
            .ipv4(V4_A, V4_B, 64)
            .tcp(1, 2, 3, 4)
            .write(&mut vlan, b"payload")
            .expect("build frame");
        vec![
            (linktype::ETHERNET, eth_v4(b"payload"), 54),
            (linktype::ETHERNET, vlan, 62),
            (linktype::LINUX_SLL, sll, 16 + 40 + 32),
            (
                linktype::LINUX_SLL2,
                cat(&sll2_header(0x0800), &ip_v4_syn()),
                60,
            ),
            (linktype::RAW, ip_v6_syn(), 60),
            (linktype::NULL, cat(&2u32.to_ne_bytes(), &ip_v4_syn()), 44),
            (linktype::LOOP, cat(&30u32.to_be_bytes(), &ip_v6_syn()), 64),
        ]
    }

    #[test]
    fn every_prefix_is_an_error_or_a_cut_segment() {
        for (lt, frame, headers) in samples() {
            let whole = one(lt, frame.clone());
            for cut in 0..frame.len() {
                let pkt = RawPacket {
                    ts: TS,
                    orig_len: frame.len() as u32,
                    data: frame[..cut].to_vec(),
                };
                match parse_frame(lt, 7, &pkt) {
                    Err(_) => assert!(cut < headers, "lt {lt}: cut {cut} of headers {headers}"),
                    Ok(Some(seg)) => {
                        assert!(cut >= headers, "lt {lt}: segment from {cut} bytes");
                        assert_eq!(seg, whole, "lt {lt}: cut {cut} changed the segment");
                    }
                    Ok(None) => panic!("lt {lt}: cut {cut} read as non-TCP"),
                }
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        // xorshift: deterministic noise without a dev-dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let lts = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 999];
        for round in 0..20_000 {
            let len = (next() % 120) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Steer some frames past the link layer so the IP and TCP code
            // sees noise too, not only unknown EtherTypes.
            if round % 2 == 0 && data.len() > 20 {
                data[12] = 0x08;
                data[13] = 0x00;
                data[14] = 0x45;
                data[0] = if round % 4 == 0 { 0x45 } else { 0x60 };
            }
            for lt in lts {
                let _ = parse_frame(lt, 0, &raw(data.clone()));
            }
        }
    }
}
