//! The pure hot paths, timed without root or a capture:
//!
//! - `analyze`: a classic pcap in memory, read, decoded and tracked
//!   (reader → fast decode → flow tracker), as `hc-trace analyze` does;
//! - `exec`: a synthetic trace of 10,000 short connections (their calls and
//!   their packets) cut into one story per connection and correlated, as
//!   `hc-trace exec` does after the program ended.
//!
//! ```text
//! cargo bench -p hc-core            # criterion's figures
//! cargo test -p hc-core --benches   # each benchmark once, as a smoke test
//! ```
//!
//! These are figures for one machine, to compare two versions of the code on
//! it; docs/performance.md has the side-by-side runs against other tools.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use etherparse::PacketBuilder;
use hc_core::analyze::flows::Tracker;
use hc_core::capfile::read::{for_each_in_bytes, Item};
use hc_core::decode::fast::{decode, Decoded};
use hc_core::exec::{assemble, ExecRecording};
use hc_core::model::exec::{ExitStatus, Role, Sock, Traced};
use hc_core::model::{Call, CallKind, Nanos, RawPacket, Side, StateObs, TcpState};
use hc_core::report::PcapCounters;
use hc_core::session::KernelRecord;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

const MS: Nanos = 1_000_000;
const T0: Nanos = 1_796_000_000_000_000_000;

/// The ten segments of one short connection: handshake, a request, an
/// answer, both FINs, each acknowledged.
fn connection(client_port: u16, t: Nanos) -> Vec<RawPacket> {
    let (c, s) = ([127, 0, 0, 1], [127, 0, 0, 1]);
    let (cp, sp) = (client_port, 5555u16);
    let (ci, si) = (1000u32, 9000u32);
    let mut out = Vec::new();
    let mut push = |b: PacketBuilderStep, payload: &[u8], dt: Nanos| {
        let mut data = Vec::with_capacity(b.size(payload.len()));
        if b.write(&mut data, payload).is_ok() {
            out.push(RawPacket {
                ts: t + dt,
                orig_len: data.len() as u32,
                data,
            });
        }
    };
    type PacketBuilderStep = etherparse::PacketBuilderStep<etherparse::TcpHeader>;
    let eth = || PacketBuilder::ethernet2([0; 6], [0; 6]);
    let from_c = |seq, ack| eth().ipv4(c, s, 64).tcp(cp, sp, seq, 65535).ack(ack);
    let from_s = |seq, ack| eth().ipv4(s, c, 64).tcp(sp, cp, seq, 65535).ack(ack);
    push(eth().ipv4(c, s, 64).tcp(cp, sp, ci, 65535).syn(), b"", 0);
    push(
        eth()
            .ipv4(s, c, 64)
            .tcp(sp, cp, si, 65535)
            .syn()
            .ack(ci + 1),
        b"",
        10_000,
    );
    push(from_c(ci + 1, si + 1), b"", 20_000);
    push(from_c(ci + 1, si + 1).psh(), &[b'x'; 100], 30_000);
    push(from_s(si + 1, ci + 101), b"", 40_000);
    push(from_s(si + 1, ci + 101).psh(), &[b'y'; 200], 50_000);
    push(from_c(ci + 101, si + 201).fin(), b"", 60_000);
    push(from_s(si + 201, ci + 102), b"", 70_000);
    push(from_s(si + 201, ci + 102).fin(), b"", 80_000);
    push(from_c(ci + 102, si + 202), b"", 90_000);
    out
}

/// A classic pcap (Ethernet, nanosecond stamps) of `n` connections.
fn pcap(n: u16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&262_144u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..n {
        for p in connection(10_000 + i, T0 + Nanos::from(i) * MS) {
            v.extend_from_slice(&((p.ts / 1_000_000_000) as u32).to_le_bytes());
            v.extend_from_slice(&((p.ts % 1_000_000_000) as u32).to_le_bytes());
            v.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
            v.extend_from_slice(&p.orig_len.to_le_bytes());
            v.extend_from_slice(&p.data);
        }
    }
    v
}

fn analyze(c: &mut Criterion) {
    let bytes = pcap(20_000);
    let mut g = c.benchmark_group("analyze");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("read+decode+track 20k connections", |b| {
        b.iter(|| {
            let mut tracker = Tracker::new();
            let mut stories = 0u64;
            let mut frame = 0usize;
            let r = for_each_in_bytes(&bytes, Path::new("bench.pcap"), |item| {
                if let Item::Packet(rec) = item {
                    if let Ok(Decoded::Tcp(seg)) =
                        decode(rec.linktype, frame, rec.ts, rec.orig_len, rec.data)
                    {
                        tracker.push(&seg, &mut |_| stories += 1);
                    }
                    frame += 1;
                }
            });
            tracker.finish(&mut |_| stories += 1);
            black_box((r.is_ok(), stories))
        })
    });
    g.finish();
}

fn call(
    side: Side,
    kind: CallKind,
    args: &str,
    ret: i64,
    t: Nanos,
    local: SocketAddr,
    peer: Option<SocketAddr>,
) -> Call {
    Call {
        side,
        kind,
        text: format!("{}(3, {args})", kind.name()),
        args: args.into(),
        pid: Some(42),
        fd: Some(3),
        ret: Some(ret),
        errno: None,
        note: None,
        start: t,
        end: t + 5_000,
        local: Some(local),
        peer,
        stream: (kind == CallKind::Write).then_some((0, ret as u64)),
        state_after: StateObs::TcpInfo {
            state: TcpState::ESTABLISHED,
        },
        state_before: None,
        line: None,
    }
}

/// A traced program that made `n` short connections to its own server.
fn exec_trace(n: u16) -> ExecRecording {
    let server: SocketAddr = (Ipv4Addr::LOCALHOST, 5555).into();
    let mut socks = vec![Sock {
        ino: 1,
        role: Role::Listening,
        local: Some(server),
        peer: None,
        written: 0,
        refs: 1,
    }];
    let mut calls = Vec::new();
    let mut packets = Vec::new();
    for i in 0..n {
        let port = 10_000 + i;
        let client: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
        let t = T0 + Nanos::from(i) * MS;
        let (cs, ss) = (socks.len(), socks.len() + 1);
        socks.push(Sock {
            ino: 2 + 2 * u64::from(i),
            role: Role::Connecting,
            local: Some(client),
            peer: Some(server),
            written: 100,
            refs: 0,
        });
        socks.push(Sock {
            ino: 3 + 2 * u64::from(i),
            role: Role::Accepted,
            local: Some(server),
            peer: Some(client),
            written: 200,
            refs: 0,
        });
        let mut add = |sock, c| {
            calls.push(Traced {
                call: c,
                sock: Some(sock),
            })
        };
        add(
            cs,
            call(
                Side::Client,
                CallKind::Connect,
                "127.0.0.1:5555",
                0,
                t - 5_000,
                client,
                Some(server),
            ),
        );
        add(
            ss,
            call(
                Side::Server,
                CallKind::Accept,
                "",
                4,
                t + 25_000,
                server,
                Some(client),
            ),
        );
        add(
            cs,
            call(
                Side::Client,
                CallKind::Write,
                "100",
                100,
                t + 25_000,
                client,
                Some(server),
            ),
        );
        add(
            ss,
            call(
                Side::Server,
                CallKind::Read,
                "4096",
                100,
                t + 35_000,
                server,
                Some(client),
            ),
        );
        add(
            ss,
            call(
                Side::Server,
                CallKind::Write,
                "200",
                200,
                t + 45_000,
                server,
                Some(client),
            ),
        );
        add(
            cs,
            call(
                Side::Client,
                CallKind::Close,
                "",
                0,
                t + 55_000,
                client,
                Some(server),
            ),
        );
        add(
            ss,
            call(
                Side::Server,
                CallKind::Close,
                "",
                0,
                t + 75_000,
                server,
                Some(client),
            ),
        );
        packets.extend(connection(port, t));
    }
    let states = vec![
        Some(StateObs::ProcNet {
            state: TcpState::TIME_WAIT
        });
        socks.len()
    ];
    ExecRecording {
        backend: None,
        version: 1,
        command: vec!["bench".into()],
        pid: 42,
        status: ExitStatus::Code(0),
        timed_out: false,
        timeout: None,
        stopped: None,
        stops: 0,
        namespace: "bench".into(),
        iface: "lo".into(),
        keep_all: true,
        counters: PcapCounters::default(),
        snaplen: 65_600,
        linktype: 1,
        packets,
        calls,
        socks,
        states,
        kernel: KernelRecord::Off("bench".into()),
        untraced: Vec::new(),
    }
}

fn exec(c: &mut Criterion) {
    let rec = exec_trace(10_000);
    let mut g = c.benchmark_group("exec");
    g.sample_size(10);
    g.bench_function("cut and correlate 10k connections", |b| {
        b.iter_batched(
            || rec.clone(),
            |rec| {
                let (run, _) = assemble(rec);
                assert_eq!(run.sections.len(), 10_000);
                black_box(run.sections.len())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, analyze, exec);
criterion_main!(benches);
