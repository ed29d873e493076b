//! A scenario as a session source: the driver makes its steps' socket calls
//! (and the faults it asks for) while the capture runs.

use super::driver::{self, DriverConfig, DriverReport};
use super::faults::{Faults, Tampered};
use crate::error::AppError;
use crate::session::{Source, WireActivity};
use hc_core::model::{Call, CallKind, LinkType, Nanos, RawPacket, Side};
use hc_core::scenario::Scenario;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

pub struct ScenarioSource<'a> {
    pub scenario: &'a Scenario,
    pub driver: DriverConfig,
    pub port: u16,
    pub ipv6: bool,
}

/// What the driver observed, and what hc-trace did to the wire.
pub struct Driven {
    pub report: DriverReport,
    pub held: Vec<Tampered>,
    pub drops: Vec<(Side, Nanos)>,
    /// The signal that stopped the run early, if one did.
    pub interrupted_by: Option<&'static str>,
}

impl Source for ScenarioSource<'_> {
    type Output = Driven;

    fn run(&mut self, wire: &dyn WireActivity) -> Result<Driven, AppError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::io("cannot start the runtime".into(), e))?;
        Ok(rt.block_on(async {
            let (tx, rx) = watch::channel(None);
            tokio::spawn(forward_signals(tx));
            let mut faults = Faults::new(self.port, self.ipv6);
            let report =
                driver::run(self.scenario, &self.driver, wire, &mut faults, rx.clone()).await;
            // Rules off and held segments delivered before the capture stops.
            let (held, drops) = faults.finish();
            let interrupted_by = if report.interrupted {
                *rx.borrow()
            } else {
                None
            };
            Driven {
                report,
                held,
                drops,
                interrupted_by,
            }
        }))
    }

    /// The sides' threads are this process's: they still exist (the
    /// driver's descriptors are held open until the report is dropped).
    fn ours(&self, _out: &Driven, tid: i32) -> bool {
        Path::new("/proc/self/task").join(tid.to_string()).exists()
    }
}

/// Passes a caught SIGINT/SIGTERM on to the driver, so the run stops
/// between steps and still renders and saves what it captured.
async fn forward_signals(tx: watch::Sender<Option<&'static str>>) {
    loop {
        if let Some(sig) = hc_sys::signals::caught() {
            let _ = tx.send(Some(sig));
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What [`keep_own`] left out: segments of connections this run did not make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub segments: usize,
    pub connections: usize,
}

/// How far a SYN may lie outside its connect() call and still be its own
/// (the capture's and the driver's stamps are both CLOCK_REALTIME).
const SYN_SLACK: Nanos = 1_000_000;

/// Keeps only the segments of this run's own connections. In a named
/// namespace other programs, or an earlier run's orphans finishing their
/// close, may use the port too, and their segments must not be spliced
/// into this run's story. A connection is the run's when its addresses are
/// those of one of its calls, or (a connect() that failed, whose port the
/// kernel no longer says) its first segment is a SYN to the server sent
/// while that connect() ran. Frames that are not TCP are kept.
pub fn keep_own(
    lt: LinkType,
    packets: Vec<RawPacket>,
    calls: &[Call],
) -> (Vec<RawPacket>, LeftOut) {
    type Key = (SocketAddr, SocketAddr);
    let key = |a: SocketAddr, b: SocketAddr| if a <= b { (a, b) } else { (b, a) };
    // A socket whose connect() failed reports its port with the
    // unspecified address (0.0.0.0:37674): then the port alone counts.
    let pairs: Vec<(SocketAddr, SocketAddr)> = calls
        .iter()
        .filter_map(|c| Some((c.local?, c.peer?)))
        .collect();
    let same = |mine: SocketAddr, seen: SocketAddr| {
        mine == seen || (mine.ip().is_unspecified() && mine.port() == seen.port())
    };
    let by_calls = |a: SocketAddr, b: SocketAddr| {
        pairs
            .iter()
            .any(|&(l, p)| (same(l, a) && p == b) || (same(l, b) && p == a))
    };
    let mut ours: HashMap<Key, bool> = HashMap::new();
    let unbound: Vec<(SocketAddr, Nanos, Nanos)> = calls
        .iter()
        .filter(|c| c.kind == CallKind::Connect && c.local.is_none())
        .filter_map(|c| Some((c.peer?, c.start - SYN_SLACK, c.end + SYN_SLACK)))
        .collect();
    let mut left = LeftOut::default();
    let mut kept = Vec::with_capacity(packets.len());
    for (i, pkt) in packets.into_iter().enumerate() {
        let Ok(Some(seg)) = hc_core::decode::frame::parse_frame(lt, i, &pkt) else {
            kept.push(pkt);
            continue;
        };
        let k = key(seg.src, seg.dst);
        let own = *ours.entry(k).or_insert_with(|| {
            left.connections += 1;
            let first_syn = seg.flags.syn() && !seg.flags.ack();
            let own = by_calls(seg.src, seg.dst)
                || first_syn
                    && unbound.iter().any(|(peer, from, to)| {
                        *peer == seg.dst && (*from..=*to).contains(&seg.ts)
                    });
            if own {
                left.connections -= 1;
            }
            own
        });
        if own {
            kept.push(pkt);
        } else {
            left.segments += 1;
        }
    }
    (kept, left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hc_core::model::StateObs;

    fn frame(src: SocketAddr, dst: SocketAddr, syn: bool, ack: bool, ts: Nanos) -> RawPacket {
        let ip = |a: SocketAddr| match a.ip() {
            std::net::IpAddr::V4(v) => v.octets(),
            _ => unreachable!("IPv4 in this test"),
        };
        let mut b = etherparse::PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(ip(src), ip(dst), 64)
            .tcp(src.port(), dst.port(), 1, 65535);
        if syn {
            b = b.syn();
        }
        if ack {
            b = b.ack(1);
        }
        let mut data = Vec::new();
        b.write(&mut data, &[]).expect("built");
        RawPacket {
            ts,
            orig_len: data.len() as u32,
            data,
        }
    }

    fn call(
        kind: CallKind,
        local: Option<SocketAddr>,
        peer: Option<SocketAddr>,
        start: Nanos,
        end: Nanos,
    ) -> Call {
        Call {
            side: Side::Client,
            kind,
            text: String::new(),
            args: String::new(),
            pid: None,
            fd: Some(3),
            ret: Some(0),
            errno: None,
            note: None,
            start,
            end,
            local,
            peer,
            stream: None,
            state_after: StateObs::Unknown,
            state_before: None,
            line: None,
        }
    }

    #[test]
    fn only_the_runs_own_connections_are_kept() {
        let srv: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let mine: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let refused: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:40002".parse().unwrap();
        let unspecified: SocketAddr = "0.0.0.0:40003".parse().unwrap();
        let refused2: SocketAddr = "127.0.0.1:40003".parse().unwrap();
        let calls = [
            call(CallKind::Connect, Some(mine), Some(srv), 100, 200),
            // Refused, and the kernel says only its port.
            call(
                CallKind::Connect,
                Some(unspecified),
                Some(srv),
                20_000_000,
                20_100_000,
            ),
            // A refused connect: the kernel no longer says its port.
            call(CallKind::Connect, None, Some(srv), 10_000_000, 10_100_000),
        ];
        let packets = vec![
            frame(mine, srv, true, false, 150),
            frame(srv, mine, true, true, 160),
            frame(other, srv, true, false, 5_000_000), // a neighbour's SYN, between the calls
            frame(srv, other, true, true, 5_000_100),
            frame(refused, srv, true, false, 10_050_000),
            frame(srv, refused, false, true, 10_050_100),
            frame(other, srv, false, true, 10_060_000), // the neighbour again, during the connect
            frame(refused2, srv, true, false, 20_050_000),
            frame(srv, refused2, false, true, 20_050_100),
        ];
        let (kept, left) = keep_own(1, packets, &calls);
        assert_eq!(kept.len(), 6);
        assert_eq!(
            left,
            LeftOut {
                segments: 3,
                connections: 1
            }
        );
    }
}
