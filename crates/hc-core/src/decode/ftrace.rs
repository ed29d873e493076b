//! The kernel's ftrace text (tracefs `trace` file) as events.
//!
//! ftrace formats each event as a line of `key=value` fields; this reads
//! back the two events hc-trace enables (`sock:inet_sock_set_state`,
//! `tcp:tcp_send_reset`). Timestamps are the instance's clock plus
//! `offset` (measured by the reader), with microsecond resolution.

use crate::model::kernel::KernelEvent;
use crate::model::{Nanos, TcpState};
use std::net::{IpAddr, SocketAddr};

/// Parses ftrace text output: `task-pid [cpu] flags 5440.324538: event: k=v k=v`.
/// `ours` says whether a thread id belongs to this process.
pub fn parse_trace(text: &str, offset: Nanos, ours: impl Fn(i32) -> bool) -> Vec<KernelEvent> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| parse_line(l, offset, &ours))
        .collect()
}

fn parse_line(line: &str, offset: Nanos, ours: &dyn Fn(i32) -> bool) -> Option<KernelEvent> {
    const NAMES: [&str; 2] = [": inet_sock_set_state: ", ": tcp_send_reset: "];
    let (name, at) = NAMES.iter().find_map(|n| line.find(n).map(|i| (*n, i)))?;
    let ts = parse_ts(line[..at].split_whitespace().last()?)? + offset;
    let fields: Vec<(&str, &str)> = line[at + name.len()..]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    match name {
        ": tcp_send_reset: " => Some(KernelEvent::SendReset {
            ts,
            src: get("src")?.parse().ok()?,
            dst: get("dest")?.parse().ok()?,
            state: get("state")?.trim_start_matches("TCP_").to_string(),
            reason: get("reason")?.to_string(),
        }),
        _ => {
            let v6 = get("family")? == "AF_INET6";
            let ip = |k4: &str, k6: &str| -> Option<IpAddr> {
                if v6 {
                    get(k6)?.parse().ok()
                } else {
                    get(k4)?.parse().ok()
                }
            };
            let local = SocketAddr::new(ip("saddr", "saddrv6")?, get("sport")?.parse().ok()?);
            let remote = SocketAddr::new(ip("daddr", "daddrv6")?, get("dport")?.parse().ok()?);
            // `comm-tid [cpu] ...`: the thread the event ran in.
            let tid = line
                .split(" [")
                .next()?
                .trim()
                .rsplit('-')
                .next()?
                .parse()
                .ok()?;
            Some(KernelEvent::State {
                ts,
                local,
                remote,
                old: state_from_name(get("oldstate")?)?,
                new: state_from_name(get("newstate")?)?,
                by_us: ours(tid),
            })
        }
    }
}

/// `5440.324538` (seconds.microseconds) as nanoseconds.
fn parse_ts(s: &str) -> Option<Nanos> {
    let s = s.trim_end_matches(':');
    let (sec, frac) = s.split_once('.')?;
    let sec: i64 = sec.parse().ok()?;
    let digits = frac.len().min(9);
    let frac_ns: i64 = frac.get(..digits)?.parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
    Some(sec * 1_000_000_000 + frac_ns)
}

fn state_from_name(s: &str) -> Option<TcpState> {
    let name = s.trim_start_matches("TCP_");
    (1..=13).map(TcpState).find(|st| st.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "# tracer: nop
         python3-30372   [001] ..s2.  5440.324461: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=7799 dport=47906 saddr=127.0.0.1 daddr=127.0.0.1 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:127.0.0.1 oldstate=TCP_SYN_RECV newstate=TCP_ESTABLISHED
         python3-30372   [001] .....  5440.324538: tcp_send_reset: skbaddr=0000000000000000 skaddr=00000000831fe675 src=127.0.0.1:47906 dest=127.0.0.1:7799 state=TCP_CLOSE reason=TCP_ABORT_ON_CLOSE
          <idle>-0       [000] ..s2.  5440.400001: inet_sock_set_state: family=AF_INET6 protocol=IPPROTO_TCP sport=7799 dport=40000 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=::1 oldstate=TCP_FIN_WAIT2 newstate=TCP_TIME_WAIT
          garbage line without an event
";

    #[test]
    fn parses_state_changes_and_resets_on_the_shifted_clock() {
        let ev = parse_trace(TRACE, 1_000, |tid| tid == 30372);
        assert_eq!(ev.len(), 3);
        assert_eq!(
            ev[0],
            KernelEvent::State {
                ts: 5_440_324_461_000 + 1_000,
                local: "127.0.0.1:7799".parse().unwrap(),
                remote: "127.0.0.1:47906".parse().unwrap(),
                old: TcpState::SYN_RECV,
                new: TcpState::ESTABLISHED,
                by_us: true,
            }
        );
        match &ev[1] {
            KernelEvent::SendReset {
                src, state, reason, ..
            } => {
                assert_eq!(src.port(), 47906);
                assert_eq!(
                    (state.as_str(), reason.as_str()),
                    ("CLOSE", "TCP_ABORT_ON_CLOSE")
                );
            }
            other => panic!("{other:?}"),
        }
        match &ev[2] {
            KernelEvent::State {
                local, new, by_us, ..
            } => {
                assert!(!by_us, "the idle task is not us");
                assert_eq!(*local, "[::1]:7799".parse().unwrap());
                assert_eq!(*new, TcpState::TIME_WAIT);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timestamps_keep_their_digits() {
        assert_eq!(parse_ts("12.000001:"), Some(12_000_001_000));
        assert_eq!(parse_ts("x"), None);
    }
}
