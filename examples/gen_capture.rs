//! A large synthetic capture for the analyze benchmark (scripts/bench-analyze):
//!
//! ```text
//! cargo run --release --example gen_capture -- OUT.pcap [MIB [SEED]]
//! ```
//!
//! Real traffic of that size cannot be committed, and the benchmark needs the
//! same traffic mix at 1 GiB and at 4 GiB to show that memory does not grow
//! with the file; so the file is generated: classic pcap (the format tcpdump
//! reads natively, so the comparison is fair), Ethernet, IPv4 with some
//! IPv6, 64 connections interleaved at any time, every close kind the
//! analyzer knows, sequence numbers near the wrap, retransmitted and
//! out-of-order segments. Payload bytes are zeros; only lengths matter.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const ACK: u8 = 0x10;
const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;

/// Connections in flight at once: the tracker's working set.
const CONCURRENT: usize = 64;
/// Capture-time step between packets.
const STEP_NS: i64 = 200_000;

#[derive(Clone, Copy)]
struct Pkt {
    from_client: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u16,
    win: u16,
}

/// Builds one connection's packets in order.
struct Script {
    pkts: Vec<Pkt>,
    c_next: u32,
    s_next: u32,
}

impl Script {
    fn new(c_isn: u32, s_isn: u32) -> Script {
        Script {
            pkts: Vec::new(),
            c_next: c_isn,
            s_next: s_isn,
        }
    }
    fn push(&mut self, from_client: bool, flags: u8, len: u16, win: u16) {
        let (seq, ack) = if from_client {
            (self.c_next, self.s_next)
        } else {
            (self.s_next, self.c_next)
        };
        let space = u32::from(len) + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        let ack = if flags & ACK != 0 { ack } else { 0 };
        self.pkts.push(Pkt {
            from_client,
            flags,
            seq,
            ack,
            len,
            win,
        });
        if from_client {
            self.c_next = self.c_next.wrapping_add(space);
        } else {
            self.s_next = self.s_next.wrapping_add(space);
        }
    }
    fn handshake(&mut self) {
        self.push(true, SYN, 0, 64240);
        self.push(false, SYN | ACK, 0, 65160);
        self.push(true, ACK, 0, 502);
    }
    /// `n` data segments from one end, acknowledged every second one.
    fn data(&mut self, from_client: bool, n: usize, rng: &mut Rng) {
        for i in 0..n {
            let len = match rng.next() % 4 {
                0 => 1448,
                1 => 512,
                2 => 96,
                _ => 1448,
            };
            self.push(from_client, ACK | PSH, len, 502);
            if i % 2 == 1 {
                self.push(!from_client, ACK, 0, 502);
            }
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The close kinds, in turn.
fn script(kind: u64, rng: &mut Rng) -> Script {
    let c_isn = if kind % 7 == 3 {
        // Wraps during the transfer.
        u32::MAX - 20_000
    } else {
        rng.next() as u32
    };
    let mut s = Script::new(c_isn, rng.next() as u32);
    let n = 20 + (rng.next() % 60) as usize;
    match kind % 10 {
        // Orderly close, client first.
        0 => {
            s.handshake();
            s.data(true, 2, rng);
            s.data(false, n, rng);
            s.push(true, FIN | ACK, 0, 502);
            s.push(false, FIN | ACK, 0, 502);
            s.push(true, ACK, 0, 502);
        }
        // Server closes first.
        1 => {
            s.handshake();
            s.data(true, 1, rng);
            s.data(false, n, rng);
            s.push(false, FIN | ACK, 0, 502);
            s.push(true, FIN | ACK, 0, 502);
            s.push(false, ACK, 0, 502);
        }
        // Half-close: the client's FIN, then the server's answer.
        2 => {
            s.handshake();
            s.data(true, 3, rng);
            s.push(true, FIN | ACK, 0, 502);
            s.data(false, n, rng);
            s.push(false, FIN | ACK, 0, 502);
            s.push(true, ACK, 0, 502);
        }
        // close() with unread data: RST instead of FIN.
        3 => {
            s.handshake();
            s.data(false, n, rng);
            s.push(true, RST | ACK, 0, 0);
        }
        // SO_LINGER 0 with nothing received.
        4 => {
            s.handshake();
            s.data(true, n / 4 + 1, rng);
            s.push(true, RST | ACK, 0, 0);
        }
        // Data after the receiver closed: RST answers it.
        5 => {
            s.handshake();
            s.data(true, 2, rng);
            s.push(true, FIN | ACK, 0, 502);
            s.push(false, ACK, 0, 502);
            // An odd count ends on server data, which the RST answers
            // (no ACK flag, sequence number = what the data acknowledged).
            s.data(false, (n / 2) | 1, rng);
            s.push(true, RST, 0, 0);
        }
        // Refused: a SYN answered by RST (retried once).
        6 => {
            s.push(true, SYN, 0, 64240);
            s.push(false, RST | ACK, 0, 0);
        }
        // Orderly close, then an RST after both FINs.
        7 => {
            s.handshake();
            s.data(true, 2, rng);
            s.data(false, n, rng);
            s.push(false, FIN | ACK, 0, 502);
            s.push(true, FIN | ACK, 0, 502);
            s.push(false, RST, 0, 0);
        }
        // Zero window, retransmitted FIN, an out-of-order pair.
        8 => {
            s.handshake();
            s.data(false, n, rng);
            let k = s.pkts.len();
            if k > 6 {
                s.pkts.swap(k - 2, k - 4);
            }
            s.push(true, ACK, 0, 0);
            s.push(false, FIN | ACK, 0, 502);
            let fin = s.pkts.last().copied();
            if let Some(f) = fin {
                s.pkts.push(f);
            }
            s.push(true, FIN | ACK, 0, 502);
            s.push(false, ACK, 0, 502);
        }
        // Bulk with retransmissions.
        _ => {
            s.handshake();
            s.data(true, 1, rng);
            s.data(false, n * 2, rng);
            let k = s.pkts.len();
            let again: Vec<Pkt> = s.pkts[k - 6..k - 3].to_vec();
            s.pkts.extend(again);
            s.push(true, FIN | ACK, 0, 502);
            s.push(false, FIN | ACK, 0, 502);
            s.push(true, ACK, 0, 502);
        }
    }
    s
}

/// A connection in flight: its packets and where it is in them.
struct Live {
    script: Script,
    next: usize,
    client: ([u8; 16], u16),
    server: ([u8; 16], u16),
    v6: bool,
}

/// Writes about `mib` MiB of classic pcap to `out`; returns a one-line summary.
fn write_capture(out: &Path, mib: u64, seed: u64) -> std::io::Result<String> {
    let f = File::create(out)?;
    let mut w = BufWriter::with_capacity(8 << 20, f);
    let target = mib << 20;
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&262_144u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes());
    w.write_all(&hdr)?;
    let mut written = 24u64;
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut started = 0u64;
    let mut packets = 0u64;
    let mut ts: i64 = 1_700_000_000_000_000_000;
    let mut live: Vec<Live> = Vec::with_capacity(CONCURRENT);
    let zeros = [0u8; 1500];
    let mut frame = Vec::with_capacity(2048);
    let start = |started: &mut u64, rng: &mut Rng| -> Live {
        let i = *started;
        *started += 1;
        let v6 = i % 10 == 9;
        let mut c = [0u8; 16];
        let mut s = [0u8; 16];
        c[..4].copy_from_slice(&[10, 1, (i / 250 % 250) as u8, (i % 250) as u8]);
        s[..4].copy_from_slice(&[10, 0, 0, 1 + (i % 3) as u8]);
        if v6 {
            c = [
                0xfd,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                (i >> 8) as u8,
                i as u8,
            ];
            s = [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        }
        Live {
            script: script(i, rng),
            next: 0,
            client: (c, 1024 + (i % 60_000) as u16),
            server: (s, if i % 2 == 0 { 443 } else { 80 }),
            v6,
        }
    };
    while written < target || !live.is_empty() {
        while written < target && live.len() < CONCURRENT {
            live.push(start(&mut started, &mut rng));
        }
        let pick = (rng.next() % live.len() as u64) as usize;
        let l = &mut live[pick];
        let p = l.script.pkts[l.next];
        l.next += 1;
        let ((sa, sp), (da, dp)) = if p.from_client {
            (l.client, l.server)
        } else {
            (l.server, l.client)
        };
        frame.clear();
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        let tcp_len = 32 + usize::from(p.len);
        if l.v6 {
            frame.extend_from_slice(&0x86ddu16.to_be_bytes());
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            frame.extend_from_slice(&[6, 64]);
            frame.extend_from_slice(&sa);
            frame.extend_from_slice(&da);
        } else {
            frame.extend_from_slice(&0x0800u16.to_be_bytes());
            frame.extend_from_slice(&[0x45, 0]);
            frame.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            frame.extend_from_slice(&sa[..4]);
            frame.extend_from_slice(&da[..4]);
        }
        frame.extend_from_slice(&sp.to_be_bytes());
        frame.extend_from_slice(&dp.to_be_bytes());
        frame.extend_from_slice(&p.seq.to_be_bytes());
        frame.extend_from_slice(&p.ack.to_be_bytes());
        frame.extend_from_slice(&[0x80, p.flags]);
        frame.extend_from_slice(&p.win.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        // NOP, NOP, timestamps.
        frame.extend_from_slice(&[1, 1, 8, 10]);
        frame.extend_from_slice(&((ts / 1_000_000) as u32).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&zeros[..usize::from(p.len)]);
        let mut rec = [0u8; 16];
        rec[..4].copy_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts % 1_000_000_000 / 1000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        w.write_all(&rec)?;
        w.write_all(&frame)?;
        written += 16 + frame.len() as u64;
        packets += 1;
        ts += STEP_NS;
        if l.next == l.script.pkts.len() {
            live.swap_remove(pick);
        }
    }
    w.flush()?;
    Ok(format!(
        "wrote {}: {written} bytes, {packets} packets, {started} connections",
        out.display()
    ))
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: gen_capture OUT.pcap [MIB [SEED]]");
        return std::process::ExitCode::from(2);
    };
    let num = |i: usize, default: u64| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(default);
    match write_capture(Path::new(out), num(1, 1024), num(2, 1)) {
        Ok(s) => {
            eprintln!("{s}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {out}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
