//! Captured frames to [`Segment`]s.
//!
//! The parser reads only what a timeline needs (addresses, flags, numbers,
//! options, payload length) and treats every byte as hostile: captures come
//! from files as well as from our own runs, so a short or corrupt frame is an
//! error value with an offset, never a panic.
//!
//! The link layer is sliced by hand because it is a handful of fixed
//! offsets and etherparse knows neither LINUX_SLL2, NFLOG nor BSD loopback;
//! the IP headers go through etherparse's header slices, which validate them.
//! The TCP header is read by hand so that a header cut by the snap length
//! still gives every field the captured bytes hold.
//!
//! Encapsulations followed to the TCP segment inside (as Wireshark does):
//! VLAN tags (802.1Q, QinQ), 802.3 frames with LLC/SNAP, PPPoE sessions,
//! MPLS label stacks (IP, or Ethernet behind a pseudowire control word),
//! 802.1ah (PBB), IP in IP (4 and 41), GRE (IP, Ethernet, MPLS, ERSPAN II,
//! PPTP's PPP), and over UDP VXLAN (4789), Geneve (6081) and GTP-U (2152).
//! At most [`MAX_NESTING`] layers of encapsulation are followed.
//!
//! Offsets in errors count from the first byte of the frame, so they can be
//! checked against a hex dump of the same frame in Wireshark.

use crate::model::{LinkType, Nanos, RawPacket, Segment, TcpFlags, TcpOpt};
use etherparse::Ipv6HeaderSlice;
use etherparse::{ip_number, Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice};
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// LINKTYPE_* numbers this parser understands.
pub mod linktype {
    use crate::model::LinkType;
    /// BSD loopback, address family in the capturing host's byte order.
    pub const NULL: LinkType = 0;
    pub const ETHERNET: LinkType = 1;
    /// PPP, with or without the HDLC-like address and control bytes.
    pub const PPP: LinkType = 9;
    /// DLT_RAW as most BSDs number it.
    pub const RAW_BSD: LinkType = 12;
    /// DLT_RAW as OpenBSD numbers it.
    pub const RAW_OPENBSD: LinkType = 14;
    /// PPP in HDLC-like framing (RFC 1662).
    pub const PPP_HDLC: LinkType = 50;
    /// PPPoE session header, then PPP (no Ethernet header).
    pub const PPP_ETHER: LinkType = 51;
    pub const RAW: LinkType = 101;
    /// Cisco HDLC: address, control, then an EtherType.
    pub const C_HDLC: LinkType = 104;
    /// IEEE 802.11 frames without a radio header.
    pub const IEEE802_11: LinkType = 105;
    /// OpenBSD loopback, address family in network byte order.
    pub const LOOP: LinkType = 108;
    pub const LINUX_SLL: LinkType = 113;
    /// OpenBSD/FreeBSD pf's log header.
    pub const PFLOG: LinkType = 117;
    /// IEEE 802.11 behind a radiotap header.
    pub const IEEE802_11_RADIOTAP: LinkType = 127;
    /// Per-Packet Information header, then the link type it names.
    pub const PPI: LinkType = 192;
    /// Solaris ipnet.
    pub const IPNET: LinkType = 226;
    pub const IPV4: LinkType = 228;
    pub const IPV6: LinkType = 229;
    /// Linux netfilter log messages (the `nflog` interface of libpcap).
    pub const NFLOG: LinkType = 239;
    pub const LINUX_SLL2: LinkType = 276;

    /// Every link type [`super::parse_frame`] reads.
    pub const SUPPORTED: [LinkType; 21] = [
        NULL,
        ETHERNET,
        PPP,
        RAW_BSD,
        RAW_OPENBSD,
        PPP_HDLC,
        PPP_ETHER,
        RAW,
        C_HDLC,
        IEEE802_11,
        LOOP,
        LINUX_SLL,
        PFLOG,
        IEEE802_11_RADIOTAP,
        PPI,
        IPNET,
        IPV4,
        IPV6,
        NFLOG,
        LINUX_SLL2,
        // LINKTYPE_PPP_PPPD: PPP as pppd writes it, read like PPP.
        166,
    ];

    /// The LINKTYPE_ name of a link type (tcpdump.org's list), for messages
    /// about link types that are not read; `None` for numbers not listed.
    pub fn name(lt: LinkType) -> Option<&'static str> {
        Some(match lt {
            0 => "NULL",
            1 => "ETHERNET",
            3 => "AX25",
            6 => "IEEE802_5",
            7 => "ARCNET_BSD",
            8 => "SLIP",
            9 => "PPP",
            10 => "FDDI",
            12 | 14 | 101 => "RAW",
            50 => "PPP_HDLC",
            51 => "PPP_ETHER",
            100 => "ATM_RFC1483",
            104 => "C_HDLC",
            105 => "IEEE802_11",
            107 => "FRELAY",
            108 => "LOOP",
            113 => "LINUX_SLL",
            114 => "LTALK",
            117 => "PFLOG",
            119 => "IEEE802_11_PRISM",
            122 => "IP_OVER_FC",
            123 => "SUNATM",
            127 => "IEEE802_11_RADIOTAP",
            129 => "ARCNET_LINUX",
            138 => "APPLE_IP_OVER_IEEE1394",
            139 => "MTP2_WITH_PHDR",
            140 => "MTP2",
            141 => "MTP3",
            142 => "SCCP",
            143 => "DOCSIS",
            144 => "LINUX_IRDA",
            147..=162 => "USER0..USER15",
            163 => "IEEE802_11_AVS",
            165 => "BACNET_MS_TP",
            166 => "PPP_PPPD",
            169 => "GPRS_LLC",
            177 => "LINUX_LAPD",
            187 => "BLUETOOTH_HCI_H4",
            189 => "USB_LINUX",
            192 => "PPI",
            195 => "IEEE802_15_4_WITHFCS",
            196 => "SITA",
            197 => "ERF",
            201 => "BLUETOOTH_HCI_H4_WITH_PHDR",
            202 => "AX25_KISS",
            203 => "LAPD",
            204 => "PPP_WITH_DIR",
            205 => "C_HDLC_WITH_DIR",
            206 => "FRELAY_WITH_DIR",
            209 => "IPMB_LINUX",
            215 => "IEEE802_15_4_NONASK_PHY",
            220 => "USB_LINUX_MMAPPED",
            224 => "FC_2",
            225 => "FC_2_WITH_FRAME_DELIMS",
            226 => "IPNET",
            227 => "CAN_SOCKETCAN",
            228 => "IPV4",
            229 => "IPV6",
            230 => "IEEE802_15_4_NOFCS",
            231 => "DBUS",
            235 => "DVB_CI",
            236 => "MUX27010",
            237 => "STANAG_5066_D_PDU",
            239 => "NFLOG",
            240 => "NETANALYZER",
            241 => "NETANALYZER_TRANSPARENT",
            242 => "IPOIB",
            243 => "MPEG_2_TS",
            244 => "NG40",
            245 => "NFC_LLCP",
            247 => "INFINIBAND",
            248 => "SCTP",
            249 => "USBPCAP",
            250 => "RTAC_SERIAL",
            251 => "BLUETOOTH_LE_LL",
            253 => "NETLINK",
            254 => "BLUETOOTH_LINUX_MONITOR",
            255 => "BLUETOOTH_BREDR_BB",
            256 => "BLUETOOTH_LE_LL_WITH_PHDR",
            257 => "PROFIBUS_DL",
            258 => "PKTAP",
            259 => "EPON",
            260 => "IPMI_HPM_2",
            261 => "ZWAVE_R1_R2",
            262 => "ZWAVE_R3",
            263 => "WATTSTOPPER_DLM",
            264 => "ISO_14443",
            265 => "RDS",
            266 => "USB_DARWIN",
            268 => "SDLC",
            270 => "LORATAP",
            271 => "VSOCK",
            272 => "NORDIC_BLE",
            273 => "DOCSIS31_XRA31",
            274 => "ETHERNET_MPACKET",
            275 => "DISPLAYPORT_AUX",
            276 => "LINUX_SLL2",
            278 => "OPENVIZSLA",
            279 => "EBHSCR",
            280 => "VPP_DISPATCH",
            281 => "DSA_TAG_BRCM",
            282 => "DSA_TAG_BRCM_PREPEND",
            283 => "IEEE802_15_4_TAP",
            284 => "DSA_TAG_DSA",
            285 => "DSA_TAG_EDSA",
            286 => "ELEE",
            287 => "Z_WAVE_SERIAL",
            288 => "USB_2_0",
            289 => "ATSC_ALP",
            290 => "ETW",
            292 => "ZBOSS_NCP",
            293 => "USB_2_0_LOW_SPEED",
            294 => "USB_2_0_FULL_SPEED",
            295 => "USB_2_0_HIGH_SPEED",
            296 => "AUERSWALD_LOG",
            297 => "ZWAVE_TAP",
            298 => "SILABS_DEBUG_CHANNEL",
            299 => "FIRA_UCI",
            300 => "MDB",
            301 => "DECT_NR",
            _ => return None,
        })
    }

    /// "239 (NFLOG)", or the bare number.
    pub fn describe(lt: LinkType) -> String {
        match name(lt) {
            Some(n) => format!("{lt} (LINKTYPE_{n})"),
            None => lt.to_string(),
        }
    }
}

/// Which parts of a TCP header the snap length cut off ([`Segment::cut`]).
pub mod cut {
    /// Some or all TCP options were not captured.
    pub const OPTIONS: u8 = 1;
    /// The window field was not captured either (the segment's `win` is 0).
    pub const WINDOW: u8 = 2;
}

/// How many encapsulations (tunnels, label stacks) are followed at most.
pub const MAX_NESTING: usize = 8;

/// Why a frame could not be read as a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// A whole capture has one link type, so callers can check
    /// [`is_supported`] once instead of collecting this for every frame.
    #[error("link type {} is not supported", linktype::describe(*.0))]
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

impl WireError {
    /// True when the frame is short because the snap length cut it (fewer
    /// bytes captured than were on the wire) before the TCP flags: the frame
    /// is not damaged, it just does not hold enough to be read.
    pub fn is_snap_cut(&self, captured: usize, orig_len: u32) -> bool {
        matches!(self, WireError::Truncated { .. }) && captured < orig_len as usize
    }
}

/// Whether [`parse_frame`] can read frames of this link type.
pub fn is_supported(lt: LinkType) -> bool {
    linktype::SUPPORTED.contains(&lt)
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
    parse_bytes(lt, frame, pkt.ts, pkt.orig_len, &pkt.data)
}

/// [`parse_frame`] over borrowed bytes (no copy of the frame).
pub fn parse_bytes(
    lt: LinkType,
    frame: usize,
    ts: Nanos,
    orig_len: u32,
    data: &[u8],
) -> Result<Option<Segment>, WireError> {
    let mut next = link_layer(lt, data, 0, data.len() < orig_len as usize)?;
    for _ in 0..MAX_NESTING {
        let ip = match next {
            None => return Ok(None),
            Some(Layer::Ether(off)) => {
                next = ethernet(data, off)?;
                continue;
            }
            Some(Layer::Mpls(off)) => {
                next = mpls(data, off)?;
                continue;
            }
            Some(Layer::Ip(IpVersion::V4, off)) => ipv4(data, off)?,
            Some(Layer::Ip(IpVersion::V6, off)) => ipv6(data, off)?,
        };
        match ip {
            IpNext::NotTcp => return Ok(None),
            IpNext::Inner(l) => next = Some(l),
            IpNext::Tcp(ip) => {
                return tcp(data, orig_len, frame, ts, &ip).map(Some);
            }
        }
    }
    // Nested deeper than any real capture: not worth reading.
    Ok(None)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpVersion {
    V4,
    V6,
}

/// Where the next header starts, and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Ip(IpVersion, usize),
    /// An Ethernet header (destination MAC first).
    Ether(usize),
    /// An MPLS label stack.
    Mpls(usize),
}

/// What the IP layer found.
enum IpNext {
    Tcp(IpPart),
    /// A tunnel: the encapsulated packet starts there.
    Inner(Layer),
    NotTcp,
}

/// What the IP layer tells the TCP layer.
struct IpPart {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
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
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: [u16; 2] = [0x8847, 0x8848];
/// 802.1ah provider backbone bridging: a 4-byte I-TAG, then a whole Ethernet header.
const ETHERTYPE_PBB: u16 = 0x88e7;
/// Transparent Ethernet bridging (GRE, Geneve).
const ETHERTYPE_TEB: u16 = 0x6558;

/// Finds where the network layer starts; `None` for frames that carry no IP.
/// `cut`: fewer bytes were captured than were on the wire.
fn link_layer(
    lt: LinkType,
    data: &[u8],
    depth: usize,
    cut: bool,
) -> Result<Option<Layer>, WireError> {
    use linktype::*;
    match lt {
        ETHERNET => ethernet(data, 0),
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
        IPV4 => Ok(Some(Layer::Ip(IpVersion::V4, 0))),
        IPV6 => Ok(Some(Layer::Ip(IpVersion::V6, 0))),
        NULL => {
            let b = need(data, 0, 4, "loopback family header")?;
            let mut family = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            // The header is in the byte order of the host that captured, which
            // need not be ours; families are small numbers, so a value with
            // high bits set was written by a host of the other endianness.
            if family > 0xffff {
                family = family.swap_bytes();
            }
            Ok(ip_by_bsd_family(family).map(|v| Layer::Ip(v, 4)))
        }
        LOOP => {
            let b = need(data, 0, 4, "loopback family header")?;
            let family = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            Ok(ip_by_bsd_family(family).map(|v| Layer::Ip(v, 4)))
        }
        PPP | PPP_HDLC | 166 => ppp(data, 0),
        PPP_ETHER => pppoe_session(data, 0),
        C_HDLC => {
            let h = need(data, 0, 4, "Cisco HDLC header")?;
            ethertype_chain(data, be16(h, 2), 4)
        }
        PFLOG => {
            // struct pfloghdr: its length in the first byte (padded to 4), the
            // address family (a BSD AF_ value) in the second.
            let h = need(data, 0, 2, "pflog header")?;
            let len = usize::from(h[0]).div_ceil(4) * 4;
            if len < 4 {
                return Err(WireError::Corrupt {
                    what: "pflog header",
                    offset: 0,
                    detail: format!("header length {}", h[0]),
                });
            }
            Ok(ip_by_bsd_family(u32::from(h[1])).map(|v| Layer::Ip(v, len)))
        }
        IPNET => {
            // Solaris ipnet: version, family (2 IPv4, 26 IPv6), 24 bytes in all.
            let h = need(data, 0, 24, "ipnet header")?;
            Ok(match h[1] {
                2 => Some(Layer::Ip(IpVersion::V4, 24)),
                26 => Some(Layer::Ip(IpVersion::V6, 24)),
                _ => None,
            })
        }
        NFLOG => nflog(data, cut),
        IEEE802_11 => ieee802_11(data, 0),
        IEEE802_11_RADIOTAP => {
            // Version, pad, then the header's length (little-endian).
            let h = need(data, 0, 4, "radiotap header")?;
            let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
            if len < 8 {
                return Err(WireError::Corrupt {
                    what: "radiotap header",
                    offset: 0,
                    detail: format!("header length {len}"),
                });
            }
            ieee802_11(data, len)
        }
        PPI if depth == 0 => {
            // Version, flags, length (LE), then the DLT of what follows (LE).
            let h = need(data, 0, 8, "PPI header")?;
            let len = usize::from(u16::from_le_bytes([h[2], h[3]]));
            let dlt = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            let inner = rest(data, len.max(8));
            let offset = len.max(8);
            Ok(link_layer(dlt, inner, 1, cut)?.map(|l| shift(l, offset)))
        }
        other => Err(WireError::UnsupportedLinkType(other)),
    }
}

/// A layer found in a sub-slice, with its offset counted from the frame's start.
fn shift(l: Layer, by: usize) -> Layer {
    match l {
        Layer::Ip(v, o) => Layer::Ip(v, o + by),
        Layer::Ether(o) => Layer::Ether(o + by),
        Layer::Mpls(o) => Layer::Mpls(o + by),
    }
}

/// An Ethernet header at `off`: an EtherType, or an 802.3 length followed
/// by an LLC header (IP only behind SNAP).
fn ethernet(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    let h = need(data, off, 14, "Ethernet header")?;
    let t = be16(h, 12);
    if t > 1500 {
        return ethertype_chain(data, t, off + 14);
    }
    llc(data, off + 14)
}

/// An 802.2 LLC header; SNAP (AA AA 03, an OUI, an EtherType) leads to IP.
fn llc(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    let h = need(data, off, 3, "LLC header")?;
    match (h[0], h[1], h[2]) {
        (0xaa, 0xaa, 0x03) => {
            let s = need(data, off + 3, 5, "SNAP header")?;
            ethertype_chain(data, be16(s, 3), off + 8)
        }
        // DSAP/SSAP 06: IP directly over LLC (RFC 948, rare but defined).
        (0x06, 0x06, 0x03) => raw_ip(data, off + 3).map(Some),
        _ => Ok(None),
    }
}

/// Follows `ethertype` (whose payload starts at `off`) through any number
/// of VLAN tags, each a 2-byte TCI and the next EtherType, and through
/// PPPoE sessions, MPLS and PBB.
fn ethertype_chain(
    data: &[u8],
    mut ethertype: u16,
    mut off: usize,
) -> Result<Option<Layer>, WireError> {
    while ETHERTYPE_VLANS.contains(&ethertype) {
        let tag = need(data, off, 4, "VLAN tag")?;
        ethertype = be16(tag, 2);
        off += 4;
    }
    Ok(match ethertype {
        ETHERTYPE_IPV4 => Some(Layer::Ip(IpVersion::V4, off)),
        ETHERTYPE_IPV6 => Some(Layer::Ip(IpVersion::V6, off)),
        ETHERTYPE_PPPOE_SESSION => return pppoe_session(data, off),
        t if ETHERTYPE_MPLS.contains(&t) => Some(Layer::Mpls(off)),
        ETHERTYPE_PBB => {
            need(data, off, 4, "802.1ah I-TAG")?;
            Some(Layer::Ether(off + 4))
        }
        ETHERTYPE_TEB => Some(Layer::Ether(off)),
        _ => None,
    })
}

/// A PPPoE session header (version/type, code, session, length), then PPP.
fn pppoe_session(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    let h = need(data, off, 6, "PPPoE header")?;
    if h[0] != 0x11 || h[1] != 0 {
        return Err(WireError::Corrupt {
            what: "PPPoE header",
            offset: off,
            detail: format!(
                "version/type {:#04x} and code {:#04x} are not a session's 0x11 and 0x00",
                h[0], h[1]
            ),
        });
    }
    ppp_protocol(data, off + 6)
}

/// PPP, with or without the HDLC-like address (0xff) and control (0x03) bytes.
fn ppp(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    let h = need(data, off, 2, "PPP header")?;
    if h[0] == 0xff && h[1] == 0x03 {
        return ppp_protocol(data, off + 2);
    }
    ppp_protocol(data, off)
}

/// The PPP protocol field (one byte when compressed: an odd first byte).
fn ppp_protocol(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    let b = need(data, off, 1, "PPP protocol")?;
    let (proto, len) = if b[0] & 1 == 1 {
        (u16::from(b[0]), 1)
    } else {
        (be16(need(data, off, 2, "PPP protocol")?, 0), 2)
    };
    Ok(match proto {
        0x21 => Some(Layer::Ip(IpVersion::V4, off + len)),
        0x57 => Some(Layer::Ip(IpVersion::V6, off + len)),
        0x281 | 0x283 => Some(Layer::Mpls(off + len)),
        _ => None,
    })
}

/// An MPLS label stack: 4-byte entries until the bottom-of-stack bit, then
/// IP (told by its version nibble), or a pseudowire control word (first
/// nibble 0) and an Ethernet frame, as Wireshark guesses by default.
fn mpls(data: &[u8], mut off: usize) -> Result<Option<Layer>, WireError> {
    loop {
        let e = need(data, off, 4, "MPLS label")?;
        off += 4;
        if e[2] & 1 == 1 {
            break;
        }
    }
    let b = need(data, off, 1, "MPLS payload")?;
    Ok(match b[0] >> 4 {
        4 => Some(Layer::Ip(IpVersion::V4, off)),
        6 => Some(Layer::Ip(IpVersion::V6, off)),
        0 => {
            need(data, off, 4, "pseudowire control word")?;
            Some(Layer::Ether(off + 4))
        }
        _ => None,
    })
}

/// NFLOG: family, version, resource id, then type-length-value attributes,
/// the packet itself in NFULA_PAYLOAD (9). The attributes' length and type
/// are in the capturing host's byte order, which is told by which reading
/// gives a sane first attribute.
fn nflog(data: &[u8], cut: bool) -> Result<Option<Layer>, WireError> {
    const WHAT: &str = "NFLOG attribute";
    let h = need(data, 0, 4, "NFLOG header")?;
    let version = match h[0] {
        2 => IpVersion::V4,
        10 => IpVersion::V6,
        _ => return Ok(None),
    };
    let first = need(data, 4, 4, WHAT)?;
    let sane = |len: usize, t: u16| len >= 4 && 4 + len <= data.len() && (t & 0x7fff) < 64;
    let le = u16::from_le_bytes;
    let be = u16::from_be_bytes;
    let little = sane(
        usize::from(le([first[0], first[1]])),
        le([first[2], first[3]]),
    ) || !sane(
        usize::from(be([first[0], first[1]])),
        be([first[2], first[3]]),
    );
    let read = |b: [u8; 2]| if little { le(b) } else { be(b) };
    let mut off = 4;
    while off < data.len() {
        let a = need(data, off, 4, WHAT)?;
        let len = usize::from(read([a[0], a[1]]));
        let t = read([a[2], a[3]]) & 0x7fff;
        if len < 4 {
            return Err(WireError::Corrupt {
                what: WHAT,
                offset: off,
                detail: format!("length {len} is shorter than the attribute header"),
            });
        }
        if t == 9 {
            return Ok(Some(Layer::Ip(version, off + 4)));
        }
        off += len.div_ceil(4) * 4;
    }
    if off > data.len() + 3 || cut {
        // The last attribute runs past the captured bytes, or the snap
        // length ended the frame: the payload may follow, not captured.
        return Err(WireError::Truncated {
            what: WHAT,
            offset: off,
            needed: 4,
            captured: 0,
        });
    }
    // No payload attribute: a log message without the packet.
    Ok(None)
}

/// An 802.11 frame at `off`: data frames that are not protected carry an
/// LLC header after the MAC header, whose length depends on the frame.
fn ieee802_11(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    let h = need(data, off, 2, "802.11 header")?;
    let (fc, flags) = (h[0], h[1]);
    let (ftype, subtype) = ((fc >> 2) & 3, fc >> 4);
    // Data frames only; "null" subtypes (bit 2) carry no payload; a
    // protected frame's payload is encrypted.
    if ftype != 2 || subtype & 0x4 != 0 || flags & 0x40 != 0 {
        return Ok(None);
    }
    let mut len = 24;
    if flags & 0x03 == 0x03 {
        len += 6; // to and from the distribution system: a fourth address
    }
    if subtype & 0x8 != 0 {
        len += 2; // QoS control
        if flags & 0x80 != 0 {
            len += 4; // HT control (the order bit, in QoS data frames)
        }
    }
    need(data, off, len, "802.11 header")?;
    llc(data, off + len)
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
fn raw_ip(data: &[u8], off: usize) -> Result<Layer, WireError> {
    let b = need(data, off, 1, "IP header")?;
    match b[0] >> 4 {
        4 => Ok(Layer::Ip(IpVersion::V4, off)),
        6 => Ok(Layer::Ip(IpVersion::V6, off)),
        v => Err(WireError::Corrupt {
            what: "IP header",
            offset: off,
            detail: format!("version {v} in a raw IP frame"),
        }),
    }
}

// ---------------------------------------------------------------- IP layer

const PROTO_IPIP: u8 = 4;
const PROTO_IPV6: u8 = 41;
const PROTO_GRE: u8 = 47;
const PROTO_UDP: u8 = 17;

fn ipv4(data: &[u8], off: usize) -> Result<IpNext, WireError> {
    const WHAT: &str = "IPv4 header";
    let h = Ipv4HeaderSlice::from_slice(rest(data, off)).map_err(|e| {
        use etherparse::err::ipv4::HeaderSliceError as E;
        match e {
            E::Len(l) => truncated(WHAT, off, l),
            E::Content(c) => corrupt(WHAT, off, c),
        }
    })?;
    // Only the first fragment holds the next header; the others are payload.
    if h.fragments_offset().value() != 0 {
        return Ok(IpNext::NotTcp);
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
    let payload = off + header_len;
    match h.protocol() {
        ip_number::TCP => Ok(IpNext::Tcp(IpPart {
            src: h.source_addr().into(),
            dst: h.destination_addr().into(),
            ttl: h.ttl(),
            tcp_off: payload,
            tcp_len,
        })),
        p => inner(data, p.0, payload),
    }
}

fn ipv6(data: &[u8], off: usize) -> Result<IpNext, WireError> {
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
    if !first_fragment {
        return Ok(IpNext::NotTcp);
    }
    let exts_len = exts.slice().len();
    let payload = exts_off + exts_len;
    if next != ip_number::TCP {
        return inner(data, next.0, payload);
    }
    let plen = usize::from(h.payload_length());
    let tcp_len = match plen {
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
    Ok(IpNext::Tcp(IpPart {
        src: h.source_addr().into(),
        dst: h.destination_addr().into(),
        ttl: h.hop_limit(),
        tcp_off: payload,
        tcp_len,
    }))
}

/// A protocol other than TCP inside IP: a tunnel to follow, or not TCP.
fn inner(data: &[u8], proto: u8, off: usize) -> Result<IpNext, WireError> {
    Ok(match proto {
        PROTO_IPIP => IpNext::Inner(Layer::Ip(IpVersion::V4, off)),
        PROTO_IPV6 => IpNext::Inner(Layer::Ip(IpVersion::V6, off)),
        PROTO_GRE => match gre(data, off)? {
            Some(l) => IpNext::Inner(l),
            None => IpNext::NotTcp,
        },
        PROTO_UDP => match udp_tunnel(data, off)? {
            Some(l) => IpNext::Inner(l),
            None => IpNext::NotTcp,
        },
        _ => IpNext::NotTcp,
    })
}

/// GRE (RFC 2784/2890) and PPTP's enhanced GRE (RFC 2637, version 1).
fn gre(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    const WHAT: &str = "GRE header";
    let h = need(data, off, 4, WHAT)?;
    let (flags, version, proto) = (h[0], h[1] & 0x07, be16(h, 2));
    let mut len = 4;
    match version {
        0 => {
            for bit in [0x80, 0x20, 0x10] {
                // checksum (+ reserved), key, sequence number
                if flags & bit != 0 {
                    len += 4;
                }
            }
        }
        1 => {
            // Key always; sequence number (S, 0x10) and acknowledgment (A, 0x80 of byte 1) optional.
            len += 4;
            if flags & 0x10 != 0 {
                len += 4;
            }
            if h[1] & 0x80 != 0 {
                len += 4;
            }
        }
        _ => return Ok(None),
    }
    need(data, off, len, WHAT)?;
    let body = off + len;
    Ok(match proto {
        ETHERTYPE_IPV4 => Some(Layer::Ip(IpVersion::V4, body)),
        ETHERTYPE_IPV6 => Some(Layer::Ip(IpVersion::V6, body)),
        ETHERTYPE_TEB => Some(Layer::Ether(body)),
        t if ETHERTYPE_MPLS.contains(&t) => Some(Layer::Mpls(body)),
        // ERSPAN type II: an 8-byte header, then the mirrored Ethernet frame.
        0x88be if flags & 0x10 != 0 => {
            need(data, body, 8, "ERSPAN header")?;
            Some(Layer::Ether(body + 8))
        }
        // PPP inside PPTP's GRE.
        0x880b => return ppp(data, body),
        _ => None,
    })
}

/// UDP carrying a tunnel on its registered port: VXLAN (4789), Geneve
/// (6081), GTP-U (2152). Anything else over UDP is not TCP.
fn udp_tunnel(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    let Some(u) = data.get(off..off + 8) else {
        // A UDP header the snap length cut: not TCP either way.
        return Ok(None);
    };
    let (sport, dport) = (be16(u, 0), be16(u, 2));
    let body = off + 8;
    let port = |p: u16| sport == p || dport == p;
    if port(4789) {
        // VXLAN: flags (I bit), reserved, VNI, reserved: 8 bytes, then Ethernet.
        let v = need(data, body, 8, "VXLAN header")?;
        return Ok((v[0] & 0x08 != 0).then_some(Layer::Ether(body + 8)));
    }
    if port(6081) {
        // Geneve: version and option length (4-byte words), flags, protocol type.
        let g = need(data, body, 8, "Geneve header")?;
        let len = 8 + usize::from(g[0] & 0x3f) * 4;
        need(data, body, len, "Geneve header")?;
        return Ok(match be16(g, 2) {
            ETHERTYPE_TEB => Some(Layer::Ether(body + len)),
            ETHERTYPE_IPV4 => Some(Layer::Ip(IpVersion::V4, body + len)),
            ETHERTYPE_IPV6 => Some(Layer::Ip(IpVersion::V6, body + len)),
            _ => None,
        });
    }
    if port(2152) {
        return gtp_u(data, body);
    }
    Ok(None)
}

/// GTPv1-U: user data (message type 255) is an IP packet after the header
/// and any extension headers.
fn gtp_u(data: &[u8], off: usize) -> Result<Option<Layer>, WireError> {
    const WHAT: &str = "GTP-U header";
    let g = need(data, off, 8, WHAT)?;
    if g[0] >> 5 != 1 || g[0] & 0x10 == 0 || g[1] != 0xff {
        return Ok(None);
    }
    let mut p = off + 8;
    if g[0] & 0x07 != 0 {
        // Sequence number, N-PDU number, next extension header type.
        let o = need(data, p, 4, WHAT)?;
        let mut next = o[3];
        p += 4;
        while next != 0 {
            let l = need(data, p, 1, "GTP-U extension header")?;
            let len = usize::from(l[0]) * 4;
            if len == 0 {
                return Err(WireError::Corrupt {
                    what: "GTP-U extension header",
                    offset: p,
                    detail: "length 0".into(),
                });
            }
            let e = need(data, p, len, "GTP-U extension header")?;
            next = e[len - 1];
            p += len;
        }
    }
    let b = need(data, p, 1, "IP header")?;
    Ok(match b[0] >> 4 {
        4 => Some(Layer::Ip(IpVersion::V4, p)),
        6 => Some(Layer::Ip(IpVersion::V6, p)),
        _ => None,
    })
}

// ---------------------------------------------------------------- TCP layer

/// The TCP header, read by hand: the fixed part in full, or, when the snap
/// length cut it, every field up to the flags (14 bytes: ports, numbers,
/// data offset, flags), with the window when captured and the options that
/// fit. The payload length always comes from the IP header.
fn tcp(
    data: &[u8],
    orig_len: u32,
    frame: usize,
    ts: Nanos,
    ip: &IpPart,
) -> Result<Segment, WireError> {
    const WHAT: &str = "TCP header";
    let off = ip.tcp_off;
    let got = data.len().saturating_sub(off);
    let snap_cut = data.len() < orig_len as usize;
    // Up to the flags byte, nothing can be done without the bytes.
    let h = data.get(off..off + 14).ok_or(WireError::Truncated {
        what: WHAT,
        offset: off,
        needed: 20,
        captured: got,
    })?;
    let header_len = usize::from(h[12] >> 4) * 4;
    if header_len < 20 {
        return Err(WireError::Corrupt {
            what: WHAT,
            offset: off,
            detail: format!("data offset {} is below the minimum of 5", h[12] >> 4),
        });
    }
    let mut cut = 0u8;
    if got < header_len {
        if !snap_cut {
            return Err(WireError::Truncated {
                what: WHAT,
                offset: off,
                needed: header_len,
                captured: got,
            });
        }
        cut |= cut::OPTIONS;
        if got < 16 {
            cut |= cut::WINDOW;
        }
    }
    // The IP length, not the captured bytes: a short snap length cuts the
    // payload but the segment still occupied that much sequence space.
    let tcp_len = ip
        .tcp_len
        .unwrap_or_else(|| usize::try_from(orig_len).unwrap_or(0).saturating_sub(off));
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
    let win = data.get(off + 14..off + 16).map_or(0, |w| be16(w, 0));
    let opts_end = (off + header_len).min(data.len());
    let opts = data.get(off + 20..opts_end).unwrap_or(&[]);
    Ok(Segment {
        frame,
        ts,
        src: SocketAddr::new(ip.src, be16(h, 0)),
        dst: SocketAddr::new(ip.dst, be16(h, 2)),
        // Byte 13 holds the eight flag bits in the order TcpFlags expects.
        flags: TcpFlags(h[13]),
        seq: be32(h, 4),
        ack: be32(h, 8),
        win,
        len,
        options: options(opts, off + 20, cut != 0)?,
        ttl: ip.ttl,
        cut,
    })
}

/// Reads the option list by hand rather than with etherparse's iterator,
/// which rejects kinds it does not know; we keep those as `Other(kind)`.
/// When the snap length cut the header (`cut`), an option that runs past
/// the captured bytes ends the list instead of being an error.
fn options(bytes: &[u8], base: usize, cut: bool) -> Result<Vec<TcpOpt>, WireError> {
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
            if cut {
                break;
            }
            return Err(WireError::Truncated {
                what: WHAT,
                offset: base + i,
                needed: 2,
                captured: 1,
            });
        };
        let len = usize::from(len);
        let Some(body) = bytes.get(i + 2..i + len.max(2)).filter(|_| len >= 2) else {
            if cut && len >= 2 {
                break;
            }
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

    fn eth_header(ethertype: u16) -> Vec<u8> {
        let mut h = [MAC_A, MAC_B].concat();
        h.extend_from_slice(&ethertype.to_be_bytes());
        h
    }

    /// PPPoE session (Ethernet 0x8864), PPP protocol 0x0021 or 0x0057.
    #[test]
    fn pppoe_session() {
        let pppoe = |ppp: u16, ip: &[u8]| {
            let mut v = eth_header(0x8864);
            v.extend_from_slice(&[0x11, 0x00, 0x12, 0x34]);
            v.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
            v.extend_from_slice(&ppp.to_be_bytes());
            v.extend_from_slice(ip);
            v
        };
        assert_eq!(
            one(linktype::ETHERNET, pppoe(0x0021, &ip_v4_syn())).src,
            v4_addr(V4_A, 40000)
        );
        assert_eq!(
            one(linktype::ETHERNET, pppoe(0x0057, &ip_v6_syn())).src,
            v6_addr(V6_A, 40000)
        );
        // LCP (0xc021) is not IP; a discovery frame (0x8863) neither.
        assert_eq!(
            parse_frame(linktype::ETHERNET, 0, &raw(pppoe(0xc021, &[0; 8]))),
            Ok(None)
        );
        let mut disc = pppoe(0x0021, &ip_v4_syn());
        disc[12..14].copy_from_slice(&0x8863u16.to_be_bytes());
        assert_eq!(parse_frame(linktype::ETHERNET, 0, &raw(disc)), Ok(None));
        // Behind QinQ, as PcapPlusPlus' one_http_stream_rst.pcap has it.
        let mut q = [MAC_A, MAC_B].concat();
        q.extend_from_slice(&[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6]);
        q.extend_from_slice(&pppoe(0x0021, &ip_v4_syn())[12..]);
        assert_eq!(one(linktype::ETHERNET, q).dst, v4_addr(V4_B, 5555));
        // PPP_ETHER: the PPPoE header without Ethernet.
        let bare = pppoe(0x0021, &ip_v4_syn())[14..].to_vec();
        assert_eq!(one(linktype::PPP_ETHER, bare).seq, 1000);
        // A session header with the wrong version is damage, not "not TCP".
        let mut bad = pppoe(0x0021, &ip_v4_syn());
        bad[14] = 0x22;
        assert!(parse_frame(linktype::ETHERNET, 0, &raw(bad)).is_err());
    }

    #[test]
    fn mpls_label_stacks() {
        let labels = |n: usize| {
            let mut v = Vec::new();
            for i in 0..n {
                let bos = u8::from(i + 1 == n);
                v.extend_from_slice(&[0x00, 0x01, 0x40 | bos, 64]);
            }
            v
        };
        for n in 1..4 {
            let v = [eth_header(0x8847), labels(n), ip_v4_syn()].concat();
            assert_eq!(one(linktype::ETHERNET, v).src, v4_addr(V4_A, 40000));
        }
        let v = [eth_header(0x8847), labels(2), ip_v6_syn()].concat();
        assert_eq!(one(linktype::ETHERNET, v).src, v6_addr(V6_A, 40000));
        // Ethernet pseudowire: control word (first nibble 0), then a whole frame.
        let pw = [eth_header(0x8847), labels(1), vec![0; 4], eth_v4(b"hi")].concat();
        assert_eq!(one(linktype::ETHERNET, pw).len, 2);
        // Behind a VLAN tag, as zeek's mixed-vlan-mpls.pcap has it.
        let mut v = [MAC_A, MAC_B].concat();
        v.extend_from_slice(&[0x81, 0x00, 0, 7, 0x88, 0x47]);
        v.extend_from_slice(&labels(1));
        v.extend_from_slice(&ip_v4_syn());
        assert_eq!(one(linktype::ETHERNET, v).seq, 1000);
    }

    #[test]
    fn llc_snap() {
        let ip = ip_v4_syn();
        let mut v = eth_header((8 + ip.len()) as u16);
        v.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        v.extend_from_slice(&ip);
        assert_eq!(one(linktype::ETHERNET, v).src, v4_addr(V4_A, 40000));
        // Spanning tree (LLC 42 42 03) is not IP.
        let mut stp = eth_header(38);
        stp.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 0]);
        assert_eq!(parse_frame(linktype::ETHERNET, 0, &raw(stp)), Ok(None));
    }

    fn nflog_frame(little: bool, family: u8, ip: &[u8]) -> Vec<u8> {
        let tlv = |t: u16, body: &[u8]| {
            let len = (4 + body.len()) as u16;
            let mut v = Vec::new();
            if little {
                v.extend_from_slice(&len.to_le_bytes());
                v.extend_from_slice(&t.to_le_bytes());
            } else {
                v.extend_from_slice(&len.to_be_bytes());
                v.extend_from_slice(&t.to_be_bytes());
            }
            v.extend_from_slice(body);
            while v.len() % 4 != 0 {
                v.push(0);
            }
            v
        };
        let mut v = vec![family, 0, 0, 1];
        v.extend(tlv(1, &[0x08, 0x00, 3, 0])); // NFULA_PACKET_HDR
        v.extend(tlv(10, b"prefix\0")); // NFULA_PREFIX
        v.extend(tlv(9, ip)); // NFULA_PAYLOAD
        v
    }

    #[test]
    fn nflog_either_byte_order() {
        for little in [true, false] {
            let seg = one(linktype::NFLOG, nflog_frame(little, 2, &ip_v4_syn()));
            assert_eq!(seg.src, v4_addr(V4_A, 40000), "little {little}");
            let seg = one(linktype::NFLOG, nflog_frame(little, 10, &ip_v6_syn()));
            assert_eq!(seg.src, v6_addr(V6_A, 40000), "little {little}");
        }
        // No payload attribute: a log line without the packet.
        let mut v = nflog_frame(true, 2, &[]);
        v.truncate(v.len() - 4);
        assert_eq!(parse_frame(linktype::NFLOG, 0, &raw(v)), Ok(None));
    }

    #[test]
    fn ppp_hdlc_and_pflog() {
        let ip = ip_v4_syn();
        for lt in [linktype::PPP, linktype::PPP_HDLC] {
            let v = cat(&[0xff, 0x03, 0x00, 0x21], &ip);
            assert_eq!(one(lt, v).seq, 1000);
        }
        // Address and control omitted, protocol compressed to one byte.
        assert_eq!(one(linktype::PPP, cat(&[0x21], &ip)).seq, 1000);
        assert_eq!(
            one(linktype::PPP, cat(&[0x00, 0x57], &ip_v6_syn())).seq,
            1000
        );
        assert_eq!(
            one(linktype::C_HDLC, cat(&[0x0f, 0x00, 0x08, 0x00], &ip)).seq,
            1000
        );
        // pf log header: length 61 (padded to 64), family AF_INET.
        let mut pf = vec![0u8; 64];
        pf[0] = 61;
        pf[1] = 2;
        assert_eq!(one(linktype::PFLOG, cat(&pf, &ip)).seq, 1000);
        pf[1] = 24; // OpenBSD's AF_INET6
        assert_eq!(one(linktype::PFLOG, cat(&pf, &ip_v6_syn())).seq, 1000);
        let mut ipnet = vec![0u8; 24];
        ipnet[0] = 2;
        ipnet[1] = 26;
        assert_eq!(one(linktype::IPNET, cat(&ipnet, &ip_v6_syn())).seq, 1000);
    }

    #[test]
    fn ieee802_11_data_frames() {
        let snap_ip = cat(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00], &ip_v4_syn());
        // Plain data frame (type 2, subtype 0), from the AP.
        let mut data = vec![0x08, 0x02];
        data.extend_from_slice(&[0; 22]);
        let f = cat(&data, &snap_ip);
        assert_eq!(one(linktype::IEEE802_11, f.clone()).seq, 1000);
        // QoS data (subtype 8) with HT control, four addresses.
        let mut qos = vec![0x88, 0x83];
        qos.extend_from_slice(&[0; 22 + 6 + 2 + 4]);
        assert_eq!(one(linktype::IEEE802_11, cat(&qos, &snap_ip)).seq, 1000);
        // Protected: encrypted payload, not readable.
        let mut prot = f.clone();
        prot[1] |= 0x40;
        assert_eq!(parse_frame(linktype::IEEE802_11, 0, &raw(prot)), Ok(None));
        // A beacon (management) is not data.
        let mut beacon = f.clone();
        beacon[0] = 0x80;
        assert_eq!(parse_frame(linktype::IEEE802_11, 0, &raw(beacon)), Ok(None));
        // Radiotap header of 12 bytes, then the frame.
        let rt = [0u8, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(one(linktype::IEEE802_11_RADIOTAP, cat(&rt, &f)).seq, 1000);
        // PPI of 8 bytes naming DLT 105.
        let ppi = [0u8, 0, 8, 0, 105, 0, 0, 0];
        assert_eq!(one(linktype::PPI, cat(&ppi, &f)).seq, 1000);
    }

    #[test]
    fn tunnels() {
        let inner_v4 = ip_v4_syn();
        // IP in IP.
        let mut outer = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 30)
            .write(&mut outer, ip_number::IPV4, &inner_v4)
            .expect("build frame");
        let seg = one(linktype::RAW, outer);
        assert_eq!((seg.src, seg.ttl), (v4_addr(V4_A, 40000), 64));
        // IPv6 in IPv4 (6in4).
        let mut outer = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 30)
            .write(&mut outer, ip_number::IPV6, &ip_v6_syn())
            .expect("build frame");
        assert_eq!(one(linktype::RAW, outer).src, v6_addr(V6_A, 40000));
        // GRE with a key, carrying IPv4; and carrying Ethernet.
        for (proto, body) in [(0x0800u16, inner_v4.clone()), (0x6558, eth_v4(b"x"))] {
            let mut gre = vec![0x20, 0x00];
            gre.extend_from_slice(&proto.to_be_bytes());
            gre.extend_from_slice(&[0, 0, 0, 9]);
            gre.extend_from_slice(&body);
            let mut outer = Vec::new();
            PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 30)
                .write(&mut outer, ip_number::GRE, &gre)
                .expect("build frame");
            assert_eq!(one(linktype::RAW, outer).src, v4_addr(V4_A, 40000));
        }
        // VXLAN over UDP 4789; a UDP datagram to another port is not TCP.
        for (port, want) in [(4789u16, true), (4790, false)] {
            let vx = cat(&[0x08, 0, 0, 0, 0, 0, 1, 0], &eth_v4(b"x"));
            let mut outer = Vec::new();
            PacketBuilder::ethernet2(MAC_A, MAC_B)
                .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 30)
                .udp(50000, port)
                .write(&mut outer, &vx)
                .expect("build frame");
            let got = parse_frame(linktype::ETHERNET, 0, &raw(outer.clone())).expect("parses");
            assert_eq!(got.is_some(), want, "port {port}");
            // The fast path hands tunnels over and agrees on everything else.
            let fast =
                crate::decode::fast::decode(linktype::ETHERNET, 0, TS, outer.len() as u32, &outer)
                    .expect("decodes");
            assert_eq!(
                matches!(fast, crate::decode::fast::Decoded::Tcp(_)),
                want,
                "fast, port {port}"
            );
        }
        // Geneve (6081) with one 4-byte option, carrying Ethernet.
        let gen = cat(
            &[0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 1, 2, 3, 4],
            &eth_v4(b"x"),
        );
        let mut outer = Vec::new();
        PacketBuilder::ipv6(V6_B, V6_A, 30)
            .udp(50000, 6081)
            .write(&mut outer, &gen)
            .expect("build frame");
        assert_eq!(one(linktype::RAW, outer).len, 1);
        // GTP-U (2152): G-PDU with sequence number, no extension.
        let gtp = cat(&[0x32, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0], &inner_v4);
        let mut outer = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 30)
            .udp(2152, 2152)
            .write(&mut outer, &gtp)
            .expect("build frame");
        assert_eq!(one(linktype::RAW, outer).seq, 1000);
    }

    #[test]
    fn nesting_is_bounded() {
        // IP in IP in IP ... deeper than MAX_NESTING: read as not TCP.
        let mut pkt = ip_v4_syn();
        for _ in 0..MAX_NESTING + 1 {
            let mut outer = Vec::new();
            PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 30)
                .write(&mut outer, ip_number::IPV4, &pkt)
                .expect("build frame");
            pkt = outer;
        }
        assert_eq!(parse_frame(linktype::RAW, 0, &raw(pkt)), Ok(None));
    }

    #[test]
    fn unsupported_link_types_are_named() {
        let e = parse_frame(189, 0, &raw(vec![0; 40])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "link type 189 (LINKTYPE_USB_LINUX) is not supported"
        );
        assert_eq!(
            WireError::UnsupportedLinkType(4000).to_string(),
            "link type 4000 is not supported"
        );
        for lt in linktype::SUPPORTED {
            assert!(is_supported(lt));
            assert!(linktype::name(lt).is_some(), "{lt} has a name");
        }
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

    /// TCP header length of each sample (the SLL one carries a timestamp option).
    fn tcp_header_len(lt: LinkType) -> usize {
        if lt == linktype::LINUX_SLL {
            32
        } else {
            20
        }
    }

    #[test]
    fn every_prefix_is_an_error_or_a_cut_segment() {
        for (lt, frame, headers) in samples() {
            let whole = one(lt, frame.clone());
            let tcp_off = headers - tcp_header_len(lt);
            for cut in 0..frame.len() {
                let pkt = RawPacket {
                    ts: TS,
                    orig_len: frame.len() as u32,
                    data: frame[..cut].to_vec(),
                };
                match parse_frame(lt, 7, &pkt) {
                    Err(e) => {
                        assert!(cut < tcp_off + 14, "lt {lt}: cut {cut}: {e}");
                        assert!(e.is_snap_cut(cut, pkt.orig_len), "lt {lt}: cut {cut}: {e}");
                    }
                    Ok(Some(seg)) => {
                        assert!(cut >= tcp_off + 14, "lt {lt}: segment from {cut} bytes");
                        if cut >= headers {
                            assert_eq!(seg, whole, "lt {lt}: cut {cut} changed the segment");
                            continue;
                        }
                        // Cut inside the TCP header: every field the bytes hold.
                        let same =
                            |s: &Segment| (s.src, s.dst, s.flags, s.seq, s.ack, s.len, s.ttl);
                        assert_eq!(same(&seg), same(&whole), "lt {lt}: cut {cut}");
                        assert_ne!(seg.cut & cut::OPTIONS, 0, "lt {lt}: cut {cut}");
                        if cut >= tcp_off + 16 {
                            assert_eq!(seg.win, whole.win, "lt {lt}: cut {cut}");
                        } else {
                            assert_eq!((seg.win, seg.cut), (0, cut::OPTIONS | cut::WINDOW));
                        }
                        assert!(
                            whole.options.starts_with(&seg.options),
                            "lt {lt}: cut {cut}"
                        );
                    }
                    Ok(None) => panic!("lt {lt}: cut {cut} read as non-TCP"),
                }
                // Negative control: the same bytes with nothing missing on the
                // wire are a damaged frame, not a cut one.
                if cut < headers {
                    let whole_on_wire = RawPacket {
                        orig_len: cut as u32,
                        ..pkt
                    };
                    assert!(
                        parse_frame(lt, 7, &whole_on_wire).is_err(),
                        "lt {lt}: {cut} bytes, none cut, read as a segment"
                    );
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
        let lts = [
            0, 1, 9, 12, 14, 50, 51, 101, 104, 105, 108, 113, 117, 127, 192, 226, 228, 229, 239,
            276, 999,
        ];
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
