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
//! and in a named namespace too; a second Ctrl-C removes it before the
//! process ends. Each run has its own: the nftables table is
//! `hc_trace_faults_PID`, the iptables rule carries the comment
//! `hc-trace-PID`, and the queue number is one no other run in the
//! namespace has bound, so neighbours in one named namespace never touch
//! each other's rules. The NFQUEUE rule has `--queue-bypass`: if hc-trace
//! is killed while it holds, segments pass instead of being dropped. What a
//! run killed outright (SIGKILL) left in a named namespace is found by the
//! next run there ([`remove_stale`]) and removed with a note. The helper
//! commands (nft, iptables) die with hc-trace, so none of them changes the
//! namespace after hc-trace is gone.

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
    #[error("namespace {namespace} holds a rule left by a hc-trace run that no longer exists, and it could not be removed ({why}); remove it with: sudo ip netns exec {namespace} {command}")]
    Stale {
        namespace: String,
        command: String,
        why: String,
    },
}

impl FaultError {
    pub fn hint(&self) -> &'static str {
        match self {
            FaultError::MissingTool(..) => "install it with scripts/setup (Debian/Ubuntu: apt-get install nftables iptables)",
            FaultError::Stale { .. } => "it would change what this run sees on the wire, so the run did not start",
            _ => "fault injection needs root or a rootless namespace with CAP_NET_ADMIN, and the kernel's nftables/NFQUEUE support",
        }
    }
}

/// The nftables table of this run: `hc_trace_faults_PID`.
const TABLE_PREFIX: &str = "hc_trace_faults";
/// The comment on this run's iptables rule: `hc-trace-PID`.
const RULE_PREFIX: &str = "hc-trace-";
/// Queue numbers are tried from here on until one is free in the namespace.
const QUEUE_BASE: u16 = 4242;
/// How many queue numbers are tried.
const QUEUE_TRIES: u16 = 256;

fn table_name() -> String {
    format!("{TABLE_PREFIX}_{}", std::process::id())
}

fn rule_comment() -> String {
    format!("{RULE_PREFIX}{}", std::process::id())
}

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
    output(cmd, args).map(|_| ())
}

/// Runs a helper to its end and returns its standard output. The helper
/// dies with hc-trace: killed, hc-trace must not leave one changing rules.
fn output(cmd: &str, args: &[&str]) -> Result<String, FaultError> {
    let mut c = Command::new(cmd);
    c.args(args);
    hc_sys::system::die_with_parent(&mut c);
    let out = c.output().map_err(|e| FaultError::Command {
        cmd: format!("{cmd} {}", args.join(" ")),
        stderr: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(FaultError::Command {
            cmd: format!("{cmd} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// A rule or table of some hc-trace run found in the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Leftover {
    /// The run's process id; None for the names of older versions
    /// (`hc_trace_faults`, an NFQUEUE rule to queue 4242 without a comment).
    pid: Option<u32>,
    /// The command that removes it.
    remove: (&'static str, Vec<String>),
}

impl Leftover {
    fn command(&self) -> String {
        format!("{} {}", self.remove.0, self.remove.1.join(" "))
    }
}

/// hc-trace's tables in `nft list tables` output.
fn nft_leftovers(tables: &str) -> Vec<Leftover> {
    tables
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (Some("table"), Some(family), Some(name)) = (w.next(), w.next(), w.next()) else {
                return None;
            };
            let pid = match name.strip_prefix(TABLE_PREFIX)? {
                "" => None,
                rest => Some(rest.strip_prefix('_')?.parse().ok()?),
            };
            Some(Leftover {
                pid,
                remove: (
                    "nft",
                    vec!["delete".into(), "table".into(), family.into(), name.into()],
                ),
            })
        })
        .collect()
}

/// hc-trace's NFQUEUE rules in `iptables -S INPUT` output (`ipt` is
/// iptables or ip6tables).
fn ipt_leftovers(ipt: &'static str, rules: &str) -> Vec<Leftover> {
    rules
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            if words.first() != Some(&"-A") || !words.contains(&"NFQUEUE") {
                return None;
            }
            let comment = words
                .windows(2)
                .find(|w| w[0] == "--comment")
                .map(|w| w[1].trim_matches('"'));
            let pid = match comment {
                Some(c) => Some(c.strip_prefix(RULE_PREFIX)?.parse().ok()?),
                // Older versions: no comment, always queue 4242 on one port.
                None if words.windows(2).any(|w| w == ["--queue-num", "4242"])
                    && words.contains(&"multiport") =>
                {
                    None
                }
                None => return None,
            };
            let mut args = vec!["-w".to_string(), "-D".to_string()];
            args.extend(words[1..].iter().map(|w| w.to_string()));
            Some(Leftover {
                pid,
                remove: (ipt, args),
            })
        })
        .collect()
}

/// Every hc-trace table and rule in the current namespace, as far as the
/// tools that are installed can tell.
fn leftovers() -> Vec<Leftover> {
    let mut found = Vec::new();
    if let Ok(t) = output("nft", &["list", "tables"]) {
        found.extend(nft_leftovers(&t));
    }
    for ipt in ["iptables", "ip6tables"] {
        if let Ok(r) = output(ipt, &["-w", "-S", "INPUT"]) {
            found.extend(ipt_leftovers(ipt, &r));
        }
    }
    found
}

/// Removes what hc-trace runs that no longer exist left in this (named)
/// namespace: a killed fault run's drop rule would silently eat the next
/// run's FIN, its queue rule would hold every segment. Says what it removed
/// on standard error; what cannot be removed is an error naming the command.
pub fn remove_stale(namespace: &str) -> Result<(), FaultError> {
    let me = std::process::id();
    let mut removed_rules = Vec::new();
    for l in leftovers() {
        let stale = match l.pid {
            Some(p) => p != me && !hc_sys::system::process_exists(p),
            None => true,
        };
        if !stale {
            continue;
        }
        let args: Vec<&str> = l.remove.1.iter().map(String::as_str).collect();
        run(l.remove.0, &args).map_err(|e| FaultError::Stale {
            namespace: namespace.to_string(),
            command: l.command(),
            why: e.to_string(),
        })?;
        let by = match l.pid {
            Some(p) => format!("hc-trace process {p}, which no longer exists"),
            None => "an older hc-trace".into(),
        };
        eprintln!(
            "note: removed a rule left in namespace {namespace} by {by} (killed?): `{}`",
            l.command()
        );
        if l.remove.0 != "nft" {
            removed_rules.push(l.remove.0);
        }
    }
    for ipt in removed_rules {
        delete_filter_table_if_empty(ipt);
    }
    Ok(())
}

/// Removes this run's own tables and rules, whatever state they are in
/// (the second Ctrl-C: the process ends right after). Returns what it did.
fn remove_own() -> Option<String> {
    let me = std::process::id();
    let mut n = 0;
    for l in leftovers().into_iter().filter(|l| l.pid == Some(me)) {
        let args: Vec<&str> = l.remove.1.iter().map(String::as_str).collect();
        if run(l.remove.0, &args).is_ok() {
            n += 1;
        }
    }
    (n > 0).then(|| format!("{n} fault rule(s)"))
}

/// iptables (nft backend) made the `filter` table on its first use: once
/// no rule is left in it, it goes, so the namespace is as it was. A table
/// holding anyone's rules or chains stays.
fn delete_filter_table_if_empty(ipt: &str) {
    let Ok(rules) = output(ipt, &["-w", "-S"]) else {
        return;
    };
    if rules
        .lines()
        .all(|l| l.starts_with("-P ") && l.ends_with(" ACCEPT"))
    {
        let family = if ipt == "ip6tables" { "ip6" } else { "ip" };
        let _ = run("nft", &["delete", "table", family, "filter"]);
    }
}

/// The faults in force in this run, and what they did.
pub struct Faults {
    server_port: u16,
    ipv6: bool,
    /// This run's nftables table, once made.
    nft_table: Option<String>,
    /// When each DropFin rule was set, and for which side.
    drops: Vec<(Side, Nanos)>,
    iptables_rule: Option<Vec<String>>,
    /// iptables (nft backend) creates its `filter` table on first use; if it
    /// did so for us, the table is removed again at the end.
    created_filter_table: Option<&'static str>,
    holder: Option<Holder>,
    held: Vec<Tampered>,
    /// A second Ctrl-C removes this run's rules before the process ends.
    on_second_signal: Option<hc_sys::signals::CleanupGuard>,
}

impl Faults {
    pub fn new(server_port: u16, ipv6: bool) -> Faults {
        Faults {
            server_port,
            ipv6,
            nft_table: None,
            drops: Vec::new(),
            iptables_rule: None,
            created_filter_table: None,
            holder: None,
            held: Vec::new(),
            on_second_signal: None,
        }
    }

    pub fn apply(&mut self, fault: Fault) -> Result<(), FaultError> {
        if self.on_second_signal.is_none() {
            self.on_second_signal = Some(hc_sys::signals::on_second_signal(remove_own));
        }
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
        let table = match &self.nft_table {
            Some(t) => t.clone(),
            None => {
                let t = table_name();
                run("nft", &["add", "table", "inet", &t])?;
                self.nft_table = Some(t.clone());
                run(
                    "nft",
                    &[
                        "add",
                        "chain",
                        "inet",
                        &t,
                        "input",
                        "{ type filter hook input priority 0; }",
                    ],
                )?;
                t
            }
        };
        let set = format!("seen_{}", side.name());
        run(
            "nft",
            &[
                "add",
                "set",
                "inet",
                &table,
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
        let mut args = vec!["add", "rule", "inet", &table, "input"];
        args.extend(rule.split(' '));
        run("nft", &args)?;
        self.drops.push((side, now_ns()));
        Ok(())
    }

    fn hold(&mut self) -> Result<(), FaultError> {
        if self.holder.is_none() {
            self.holder = Some(Holder::start()?);
        }
        let queue = self.holder.as_ref().map_or(QUEUE_BASE, |h| h.queue);
        let ipt = if self.ipv6 { "ip6tables" } else { "iptables" };
        let rule: Vec<String> = [
            "INPUT",
            "-p",
            "tcp",
            "-m",
            "multiport",
            "--ports",
            &self.server_port.to_string(),
            "-m",
            "comment",
            "--comment",
            &rule_comment(),
            "-j",
            "NFQUEUE",
            "--queue-num",
            &queue.to_string(),
            // Nobody bound to the queue (hc-trace killed): let segments pass.
            "--queue-bypass",
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
            // Only once empty: a neighbour's rule may be in it by now.
            delete_filter_table_if_empty(if family == "ip6" {
                "ip6tables"
            } else {
                "iptables"
            });
        }
        if let Some(h) = self.holder.take() {
            let mut rest = h.stop();
            self.held.append(&mut rest);
        }
        if let Some(t) = self.nft_table.take() {
            let _ = run("nft", &["delete", "table", "inet", &t]);
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
    /// The queue number bound (the first free one from [`QUEUE_BASE`]).
    queue: u16,
    state: Arc<Mutex<HoldState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Holder {
    fn start() -> Result<Holder, FaultError> {
        let mut q = nfq::Queue::open().map_err(|e| FaultError::Queue(e.to_string()))?;
        // A queue number is bound by one socket at a time in a namespace:
        // the first that binds is this run's, whoever else runs there.
        let start = (std::process::id() % u32::from(QUEUE_TRIES)) as u16;
        let mut bound = Err(String::new());
        for i in 0..QUEUE_TRIES {
            let n = QUEUE_BASE + (start + i) % QUEUE_TRIES;
            match q.bind(n) {
                Ok(()) => {
                    bound = Ok(n);
                    break;
                }
                Err(e) => bound = Err(e.to_string()),
            }
        }
        let queue = bound.map_err(|e| {
            FaultError::Queue(format!(
                "no free queue number in {QUEUE_BASE}..{}: {e}",
                QUEUE_BASE + QUEUE_TRIES
            ))
        })?;
        // Headers are enough to tell which segment it is: the kernel keeps
        // the whole packet and reinjects it whole on the verdict, whatever
        // its size; only the copy handed to us is cut (parsed laxly below).
        let _ = q.set_copy_range(queue, 128);
        q.set_nonblocking(true);
        let state = Arc::new(Mutex::new(HoldState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("hc-trace-hold".into())
            .spawn(move || {
                hc_sys::signals::block_in_this_thread();
                hold_loop(q, queue, &st, &sp)
            })
            .map_err(|e| FaultError::Queue(e.to_string()))?;
        Ok(Holder {
            queue,
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

fn hold_loop(mut q: nfq::Queue, queue: u16, state: &Mutex<HoldState>, stop: &AtomicBool) {
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
            let _ = q.unbind(queue);
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

    #[test]
    fn leftovers_are_known_by_their_names_and_owners() {
        let tables = "table ip filter\ntable inet hc_trace_faults_4711\ntable inet hc_trace_faults\ntable inet hc_trace_faultsX\ntable inet mine\n";
        let found = nft_leftovers(tables);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].pid, Some(4711));
        assert_eq!(
            found[0].command(),
            "nft delete table inet hc_trace_faults_4711"
        );
        assert_eq!(found[1].pid, None, "the older versions' name");

        let rules = "-P INPUT ACCEPT\n\
-A INPUT -p tcp -m multiport --ports 5555 -m comment --comment hc-trace-99 -j NFQUEUE --queue-num 4300 --queue-bypass\n\
-A INPUT -p tcp -m multiport --ports 6000 -j NFQUEUE --queue-num 4242\n\
-A INPUT -p tcp -m multiport --ports 7000 -j NFQUEUE --queue-num 7\n\
-A INPUT -p tcp -m comment --comment \"someone else\" -j NFQUEUE --queue-num 1\n\
-A INPUT -p tcp --dport 22 -j ACCEPT\n";
        let found = ipt_leftovers("iptables", rules);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].pid, Some(99));
        assert_eq!(
            found[0].command(),
            "iptables -w -D INPUT -p tcp -m multiport --ports 5555 -m comment --comment hc-trace-99 -j NFQUEUE --queue-num 4300 --queue-bypass"
        );
        assert_eq!(found[1].pid, None, "an older version's rule");
    }

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
