//! Faults on purpose, inside the scenario's own network namespace.
//!
//! Loopback delivers at once and loses nothing, so some lessons need help:
//! a FIN lost on the way (`wire drop client FIN`) and FINs that cross
//! (`wire hold FIN` … `wire release`). Both act at the receiver's INPUT hook,
//! after libpcap has captured the segment on `lo`: the capture shows the
//! segment when it was sent, and the timeline says what hc-trace did to it.
//!
//! - drop: an nftables rule drops the first FIN from the side's port (an
//!   nftables set remembers the port, so exactly one FIN per connection is
//!   dropped whatever the timing) — the kernel's retransmission is real.
//! - hold: an iptables NFQUEUE rule queues every segment of the scenario's
//!   port to a netlink socket (the `nfq` crate); hc-trace keeps them and, on
//!   `release`, accepts the whole batch in one go, then lets what follows
//!   pass at once until the rule is removed. Holding only the FINs would not
//!   make them cross: delivering the first FIN makes its receiver ACK it
//!   within the same verdict call, before the second FIN is let in.
//!   nftables cannot queue here (CONFIG_NFT_QUEUE is not set), iptables'
//!   NFQUEUE target can.
//!
//! Everything is removed when the `Faults` are dropped, also after Ctrl-C,
//! and in a named namespace too.

pub use hc_core::model::fault::{Fault, Tampered};
use hc_core::model::{Nanos, Side, TcpFlags};
use hc_sys::clock::now_ns;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("this scenario needs the `{0}` command to {1}")]
    MissingTool(&'static str, &'static str),
    #[error("`{cmd}` failed: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error("cannot open the netfilter queue: {0}")]
    Queue(String),
}

impl FaultError {
    pub fn hint(&self) -> &'static str {
        match self {
            FaultError::MissingTool(..) => "install it with scripts/setup (Debian/Ubuntu: apt-get install nftables iptables)",
            _ => "fault injection needs root or a rootless namespace with CAP_NET_ADMIN, and the kernel's nftables/NFQUEUE support",
        }
    }
}

const TABLE: &str = "hc_trace_faults";
const QUEUE: u16 = 4242;

/// Tools that fault steps need, checked before anything runs.
pub fn check_tools(faults: &[Fault]) -> Result<(), FaultError> {
    let have = |c: &str| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if faults.iter().any(|f| matches!(f, Fault::DropFin(_))) && !have("nft") {
        return Err(FaultError::MissingTool(
            "nft",
            "drop a segment inside the namespace",
        ));
    }
    if faults.contains(&Fault::Hold) && !have("iptables") {
        return Err(FaultError::MissingTool(
            "iptables",
            "hold segments inside the namespace",
        ));
    }
    Ok(())
}

fn run(cmd: &str, args: &[&str]) -> Result<(), FaultError> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| FaultError::Command {
            cmd: format!("{cmd} {}", args.join(" ")),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FaultError::Command {
            cmd: format!("{cmd} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The faults in force in this run, and what they did.
pub struct Faults {
    server_port: u16,
    ipv6: bool,
    nft_table: bool,
    /// When each DropFin rule was set, and for which side.
    drops: Vec<(Side, Nanos)>,
    iptables_rule: Option<Vec<String>>,
    /// iptables (nft backend) creates its `filter` table on first use; if it
    /// did so for us, the table is removed again at the end.
    created_filter_table: Option<&'static str>,
    holder: Option<Holder>,
    held: Vec<Tampered>,
}

impl Faults {
    pub fn new(server_port: u16, ipv6: bool) -> Faults {
        Faults {
            server_port,
            ipv6,
            nft_table: false,
            drops: Vec::new(),
            iptables_rule: None,
            created_filter_table: None,
            holder: None,
            held: Vec::new(),
        }
    }

    pub fn apply(&mut self, fault: Fault) -> Result<(), FaultError> {
        match fault {
            Fault::DropFin(side) => self.drop_fin(side),
            Fault::Hold => self.hold(),
            Fault::Release => {
                if let Some(h) = &self.holder {
                    let mut released = h.release();
                    self.held.append(&mut released);
                }
                self.remove_hold_rule();
                Ok(())
            }
        }
    }

    fn drop_fin(&mut self, side: Side) -> Result<(), FaultError> {
        if !self.nft_table {
            run("nft", &["add", "table", "inet", TABLE])?;
            self.nft_table = true;
            run(
                "nft",
                &[
                    "add",
                    "chain",
                    "inet",
                    TABLE,
                    "input",
                    "{ type filter hook input priority 0; }",
                ],
            )?;
        }
        let set = format!("seen_{}", side.name());
        run(
            "nft",
            &[
                "add",
                "set",
                "inet",
                TABLE,
                &set,
                "{ type inet_service; flags dynamic; }",
            ],
        )?;
        // The client's FINs go to the server's port, the server's come from it.
        let (match_port, remember) = match side {
            Side::Client => (format!("tcp dport {}", self.server_port), "tcp sport"),
            Side::Server => (format!("tcp sport {}", self.server_port), "tcp dport"),
        };
        let rule = format!(
            "tcp flags fin {match_port} {remember} != @{set} add @{set} {{ {remember} }} counter drop"
        );
        let mut args = vec!["add", "rule", "inet", TABLE, "input"];
        args.extend(rule.split(' '));
        run("nft", &args)?;
        self.drops.push((side, now_ns()));
        Ok(())
    }

    fn hold(&mut self) -> Result<(), FaultError> {
        if self.holder.is_none() {
            self.holder = Some(Holder::start()?);
        }
        let ipt = if self.ipv6 { "ip6tables" } else { "iptables" };
        let rule: Vec<String> = [
            "INPUT",
            "-p",
            "tcp",
            "-m",
            "multiport",
            "--ports",
            &self.server_port.to_string(),
            "-j",
            "NFQUEUE",
            "--queue-num",
            &QUEUE.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let family = if self.ipv6 { "ip6" } else { "ip" };
        let existed = run("nft", &["list", "table", family, "filter"]).is_ok();
        let mut args: Vec<&str> = vec!["-w", "-I"];
        args.extend(rule.iter().map(String::as_str));
        run(ipt, &args)?;
        if !existed {
            self.created_filter_table = Some(family);
        }
        self.iptables_rule = Some(rule);
        Ok(())
    }

    /// Removes every rule and the queue (held segments are let through) and
    /// returns what was done: held segments, and when each drop rule was set.
    pub fn finish(mut self) -> (Vec<Tampered>, Vec<(Side, Nanos)>) {
        self.cleanup();
        (
            std::mem::take(&mut self.held),
            std::mem::take(&mut self.drops),
        )
    }

    fn remove_hold_rule(&mut self) {
        if let Some(rule) = self.iptables_rule.take() {
            let ipt = if self.ipv6 { "ip6tables" } else { "iptables" };
            let mut args: Vec<&str> = vec!["-w", "-D"];
            args.extend(rule.iter().map(String::as_str));
            let _ = run(ipt, &args);
        }
    }

    fn cleanup(&mut self) {
        self.remove_hold_rule();
        if let Some(family) = self.created_filter_table.take() {
            let _ = run("nft", &["delete", "table", family, "filter"]);
        }
        if let Some(h) = self.holder.take() {
            let mut rest = h.stop();
            self.held.append(&mut rest);
        }
        if self.nft_table {
            let _ = run("nft", &["delete", "table", "inet", TABLE]);
            self.nft_table = false;
        }
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// One segment waiting in the queue (what it is, when its headers parse:
/// a packet that does not is held all the same, the rule queued it).
struct Waiting {
    msg: nfq::Message,
    info: Option<Tampered>,
}

#[derive(Default)]
struct HoldState {
    waiting: Vec<Waiting>,
    /// Released: the held batch goes in at once, later segments pass at once.
    passing: bool,
    released: Vec<Tampered>,
}

/// The thread that owns the netfilter queue: keeps what arrives until told to release.
struct Holder {
    state: Arc<Mutex<HoldState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Holder {
    fn start() -> Result<Holder, FaultError> {
        let mut q = nfq::Queue::open().map_err(|e| FaultError::Queue(e.to_string()))?;
        q.bind(QUEUE)
            .map_err(|e| FaultError::Queue(e.to_string()))?;
        // Headers are enough to tell which segment it is: the kernel keeps
        // the whole packet and reinjects it whole on the verdict, whatever
        // its size; only the copy handed to us is cut (parsed laxly below).
        let _ = q.set_copy_range(QUEUE, 128);
        q.set_nonblocking(true);
        let state = Arc::new(Mutex::new(HoldState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("hc-trace-hold".into())
            .spawn(move || {
                hc_sys::signals::block_in_this_thread();
                hold_loop(q, &st, &sp)
            })
            .map_err(|e| FaultError::Queue(e.to_string()))?;
        Ok(Holder {
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// Lets the held batch in and waits until it is through; returns what was held.
    fn release(&self) -> Vec<Tampered> {
        if let Ok(mut s) = self.state.lock() {
            s.passing = true;
        }
        for _ in 0..500 {
            std::thread::sleep(Duration::from_millis(1));
            if let Ok(mut s) = self.state.lock() {
                if s.waiting.is_empty() {
                    return std::mem::take(&mut s.released);
                }
            }
        }
        Vec::new()
    }

    fn stop(mut self) -> Vec<Tampered> {
        let mut out = self.release();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Ok(mut s) = self.state.lock() {
            out.append(&mut s.released);
        }
        out
    }
}

fn hold_loop(mut q: nfq::Queue, state: &Mutex<HoldState>, stop: &AtomicBool) {
    loop {
        let passing = state.lock().map(|s| s.passing).unwrap_or(true);
        if passing {
            // The whole held batch in one go, before reading what it causes.
            let batch = state
                .lock()
                .map(|mut s| std::mem::take(&mut s.waiting))
                .unwrap_or_default();
            let mut done = Vec::new();
            for mut w in batch {
                w.msg.set_verdict(nfq::Verdict::Accept);
                let at = now_ns();
                let _ = q.verdict(w.msg);
                if let Some(mut info) = w.info {
                    info.released = Some(at);
                    done.push(info);
                }
            }
            if let Ok(mut s) = state.lock() {
                s.released.append(&mut done);
            }
        }
        while let Ok(mut msg) = q.recv() {
            if !passing {
                let info = describe(msg.get_payload(), now_ns());
                if let Ok(mut s) = state.lock() {
                    if !s.passing {
                        s.waiting.push(Waiting { msg, info });
                        continue;
                    }
                }
            }
            // Released already: through at once.
            msg.set_verdict(nfq::Verdict::Accept);
            let _ = q.verdict(msg);
        }
        if stop.load(Ordering::SeqCst) {
            if let Ok(mut s) = state.lock() {
                for mut w in std::mem::take(&mut s.waiting) {
                    w.msg.set_verdict(nfq::Verdict::Accept);
                    let at = now_ns();
                    let _ = q.verdict(w.msg);
                    if let Some(mut info) = w.info {
                        info.released = Some(at);
                        s.released.push(info);
                    }
                }
            }
            let _ = q.unbind(QUEUE);
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
/// Which segment a queued IP packet is, from its headers: the copy may end
/// inside the payload (its IP length says more than the copy holds), so the
/// lax parser, which reads what is there, not the strict one.
fn describe(ip: &[u8], now: Nanos) -> Option<Tampered> {
    let sliced = etherparse::LaxSlicedPacket::from_ip(ip).ok()?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match sliced.net? {
        etherparse::LaxNetSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        etherparse::LaxNetSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
        _ => return None,
    };
    let etherparse::TransportSlice::Tcp(tcp) = sliced.transport? else {
        return None;
    };
    let flags = tcp.slice().get(13).copied().unwrap_or(0);
    Some(Tampered {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        flags: TcpFlags(flags),
        from: now,
        released: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1000-byte segment as the queue hands it over: cut at 128 bytes.
    fn cut_segment() -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(40000, 5555, 7, 65535)
            .ack(1)
            .psh();
        let payload = vec![0u8; 1000];
        let mut pkt = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut pkt, &payload).expect("built");
        pkt.truncate(128);
        pkt
    }

    #[test]
    fn a_large_segment_cut_by_the_queue_is_still_known() {
        let pkt = cut_segment();
        // The strict parser refuses it: that was how large segments got through.
        assert!(etherparse::SlicedPacket::from_ip(&pkt).is_err());
        let t = describe(&pkt, 5).expect("described from its headers");
        assert_eq!(t.src.port(), 40000);
        assert_eq!(t.dst.port(), 5555);
        assert_eq!(t.seq, 7);
        assert_eq!(t.from, 5);
    }
}
