//! The per-packet fast path: from a frame's bytes to the few TCP fields the
//! close story needs, with no allocation.
//!
//! [`crate::wire::parse_frame`] is the reference parser (it validates every
//! header and decodes options into a `Vec`); at hundreds of millions of bytes
//! per second its allocation and checks dominate, so well-formed common
//! frames are decoded here by fixed offsets, and anything unusual (IPv6
//! extension headers, a zero IP length, any length that does not add up) is
//! handed to the reference parser, which also produces the error text. The
//! two cannot disagree on what they both accept: the fast path only reads
//! frames whose every length is consistent, and the unit tests compare them.
//!
//! TCP options are not read: a malformed option does not change who closed
//! a connection, so it is not a reason to skip a segment.

use crate::decode::frame::{self as wire, cut, linktype, WireError};
use crate::model::{Nanos, Segment};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the close story needs of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    pub ts: Nanos,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// 0 when the snap length cut it (`cut` has [`cut::WINDOW`]).
    pub win: u16,
    /// Payload length from the IP header (snap length does not cut it).
    pub len: u32,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// What the snap length cut from the TCP header ([`cut`] bits).
    pub cut: u8,
    /// The frame's number as the caller counts (analyze: 1-based, as Wireshark numbers frames).
    pub frame: u64,
}

impl Seg {
    pub fn from_segment(s: &Segment) -> Seg {
        Seg {
            ts: s.ts,
            src: s.src,
            dst: s.dst,
            flags: s.flags.0,
            seq: s.seq,
            ack: s.ack,
            win: s.win,
            len: s.len,
            ttl: s.ttl,
            cut: s.cut,
            frame: s.frame as u64,
        }
    }

    /// True when the window field was captured.
    pub fn has_window(&self) -> bool {
        self.cut & cut::WINDOW == 0
    }
}

/// The outcome of decoding one frame.
pub enum Decoded {
    Tcp(Seg),
    /// A well-formed frame without a TCP segment (ARP, UDP, a later fragment).
    Other,
}

/// Decodes a frame: the fast path when it can, the reference parser
/// otherwise. `frame` is stored in the segment and named in errors.
pub fn decode(
    lt: u32,
    frame: usize,
    ts: Nanos,
    orig_len: u32,
    data: &[u8],
) -> Result<Decoded, WireError> {
    match fast(lt, ts, orig_len, data) {
        Some(Decoded::Tcp(mut s)) => {
            s.frame = frame as u64;
            Ok(Decoded::Tcp(s))
        }
        Some(d) => Ok(d),
        None => Ok(match wire::parse_bytes(lt, frame, ts, orig_len, data)? {
            Some(s) => Decoded::Tcp(Seg::from_segment(&s)),
            None => Decoded::Other,
        }),
    }
}

#[inline]
fn be16(d: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([d[o], d[o + 1]])
}

#[inline]
fn be32(d: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}

/// `None`: not sure, ask the reference parser.
#[inline]
fn fast(lt: u32, ts: Nanos, orig_len: u32, d: &[u8]) -> Option<Decoded> {
    let (mut ethertype, mut off) = match lt {
        linktype::ETHERNET => (be16(d.get(..14)?, 12), 14),
        linktype::LINUX_SLL => (be16(d.get(..16)?, 14), 16),
        linktype::LINUX_SLL2 => (be16(d.get(..20)?, 0), 20),
        linktype::RAW | linktype::RAW_BSD | linktype::RAW_OPENBSD => match d.first()? >> 4 {
            4 => (0x0800, 0),
            6 => (0x86dd, 0),
            _ => return None,
        },
        linktype::IPV4 => (0x0800, 0),
        linktype::IPV6 => (0x86dd, 0),
        // Other link layers are rare and cheap to hand over.
        _ => return None,
    };
    while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
        let tag = d.get(off..off + 4)?;
        ethertype = be16(tag, 2);
        off += 4;
    }
    match ethertype {
        0x0800 => v4(d, off, ts, orig_len),
        0x86dd => v6(d, off, ts, orig_len),
        // 802.3 lengths (LLC follows), PPPoE, MPLS, PBB, bridged Ethernet:
        // the reference parser follows them.
        0..=1500 | 0x8864 | 0x8847 | 0x8848 | 0x88e7 | 0x6558 => None,
        _ => Some(Decoded::Other),
    }
}

/// UDP ports that carry tunnels the reference parser follows.
#[inline]
fn udp_tunnel(d: &[u8], off: usize) -> bool {
    match d.get(off..off + 4) {
        Some(u) => [be16(u, 0), be16(u, 2)]
            .iter()
            .any(|p| matches!(p, 4789 | 6081 | 2152)),
        None => false,
    }
}

#[inline]
fn v4(d: &[u8], off: usize, ts: Nanos, orig_len: u32) -> Option<Decoded> {
    let h = d.get(off..off + 20)?;
    if h[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(be16(h, 2));
    if ihl < 20 || total < ihl {
        return None;
    }
    d.get(off..off + ihl)?;
    // Later fragments and other protocols carry no TCP header, as the
    // reference parser decides once the IP header is whole and consistent;
    // tunnels are left to it.
    if be16(h, 6) & 0x1fff != 0 {
        return Some(Decoded::Other);
    }
    match h[9] {
        6 => {}
        4 | 41 | 47 => return None,
        17 if udp_tunnel(d, off + ihl) => return None,
        _ => return Some(Decoded::Other),
    }
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    tcp(
        d,
        off + ihl,
        total - ihl,
        IpAddr::V4(src),
        IpAddr::V4(dst),
        h[8],
        ts,
        orig_len,
    )
}

#[inline]
fn v6(d: &[u8], off: usize, ts: Nanos, orig_len: u32) -> Option<Decoded> {
    let h = d.get(off..off + 40)?;
    if h[0] >> 4 != 6 {
        return None;
    }
    match h[6] {
        6 => {}
        17 if udp_tunnel(d, off + 40) => return None,
        // UDP, ICMPv6: no TCP and no extension header to walk.
        17 | 58 => return Some(Decoded::Other),
        _ => return None,
    }
    let payload = usize::from(be16(h, 4));
    if payload == 0 {
        return None;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&h[8..24]);
    let mut t = [0u8; 16];
    t.copy_from_slice(&h[24..40]);
    tcp(
        d,
        off + 40,
        payload,
        IpAddr::V6(Ipv6Addr::from(s)),
        IpAddr::V6(Ipv6Addr::from(t)),
        h[7],
        ts,
        orig_len,
    )
}

#[allow(clippy::too_many_arguments)]
#[inline]
fn tcp(
    d: &[u8],
    off: usize,
    tcp_len: usize,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    ts: Nanos,
    orig_len: u32,
) -> Option<Decoded> {
    let h = d.get(off..off + 20)?;
    let doff = usize::from(h[12] >> 4) * 4;
    if doff < 20 || tcp_len < doff {
        return None;
    }
    // Options the snap length cut are kept out, as the reference parser
    // does; any other short header is its to judge.
    let cut = if d.len() >= off + doff {
        0
    } else if d.len() < orig_len as usize {
        cut::OPTIONS
    } else {
        return None;
    };
    Some(Decoded::Tcp(Seg {
        ts,
        src: SocketAddr::new(src, be16(h, 0)),
        dst: SocketAddr::new(dst, be16(h, 2)),
        flags: h[13],
        seq: be32(h, 4),
        ack: be32(h, 8),
        win: be16(h, 14),
        len: u32::try_from(tcp_len - doff).ok()?,
        ttl,
        cut,
        frame: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RawPacket;
    use etherparse::PacketBuilder;

    fn frames() -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        for payload in [0usize, 1, 100, 1400] {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40000, 80, 12345, 1000)
                .ack(777)
                .fin();
            let mut v = Vec::new();
            b.write(&mut v, &vec![7u8; payload]).unwrap();
            out.push((linktype::ETHERNET, v));
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .single_vlan(5.try_into().unwrap())
                .ipv6([1; 16], [2; 16], 64)
                .tcp(40000, 80, u32::MAX - 3, 1000)
                .rst();
            let mut v = Vec::new();
            b.write(&mut v, &vec![7u8; payload]).unwrap();
            out.push((linktype::ETHERNET, v));
            let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(1, 2, 3, 4)
                .syn();
            let mut v = Vec::new();
            b.write(&mut v, &vec![7u8; payload]).unwrap();
            out.push((linktype::RAW, v));
        }
        out
    }

    #[test]
    fn fast_path_agrees_with_the_reference_parser() {
        for (lt, f) in frames() {
            let pkt = RawPacket {
                ts: 5,
                orig_len: f.len() as u32,
                data: f.clone(),
            };
            let want = wire::parse_frame(lt, 0, &pkt).unwrap().unwrap();
            let Some(Decoded::Tcp(got)) = fast(lt, 5, f.len() as u32, &f) else {
                panic!("fast path declined a plain frame")
            };
            assert_eq!(got, Seg::from_segment(&want));
            // Every prefix: either both succeed with the same result or the
            // fast path declines (and the reference decides).
            for cut in 0..f.len() {
                if let Some(Decoded::Tcp(g)) = fast(lt, 5, f.len() as u32, &f[..cut]) {
                    let p = RawPacket {
                        ts: 5,
                        orig_len: f.len() as u32,
                        data: f[..cut].to_vec(),
                    };
                    let w = wire::parse_frame(lt, 0, &p).unwrap().unwrap();
                    assert_eq!(g, Seg::from_segment(&w));
                }
            }
        }
    }
}
