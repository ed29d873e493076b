//! Checks by hand that the sandbox and the capture work together, as root
//! and as an ordinary user: enters a private namespace, lists its
//! interfaces, captures one TCP connection on its `lo` and prints what it saw.
//!
//! ```text
//! cargo build --example netns_probe
//! sudo target/debug/examples/netns_probe
//! cp target/debug/examples/netns_probe /tmp/ && chmod 755 /tmp/netns_probe
//! setpriv --reuid 65534 --regid 65534 --clear-groups /tmp/netns_probe
//! sudo target/debug/examples/netns_probe NAME   # a namespace from `ip netns add NAME`
//! ```

use hc_trace::capture::{CaptureConfig, LiveCapture};
use hc_trace::sandbox::{self, NetnsChoice};
use hc_trace::wire;
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    // SAFETY: getuid/geteuid have no preconditions.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    println!("host uid {uid}, euid {euid}");
    // An argument names a namespace from `ip netns add`; none means a private one.
    let choice = match std::env::args().nth(1) {
        Some(name) => NetnsChoice::Named(name),
        None => NetnsChoice::Private,
    };
    // First, while the process still has one thread.
    let sandbox = match sandbox::enter(&choice) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: as above.
    println!("in: {} (euid now {})", sandbox.describe(), unsafe {
        libc::geteuid()
    });
    match std::fs::read_to_string("/proc/net/dev") {
        Ok(dev) => {
            let names: Vec<&str> = dev
                .lines()
                .skip(2)
                .filter_map(|l| l.split(':').next())
                .map(str::trim)
                .collect();
            println!("interfaces: {}", names.join(", "));
        }
        Err(e) => println!("cannot read /proc/net/dev: {e}"),
    }
    match probe() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn probe() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let cap = LiveCapture::start(&CaptureConfig {
        filter: format!("tcp port {port}"),
        ..CaptureConfig::default()
    })?;
    let client = TcpStream::connect(("127.0.0.1", port))?;
    let (server, _) = listener.accept()?;
    drop(client);
    drop(server);
    // Handshake, two FINs, two ACKs; stop when the wire is quiet.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut last = (0, Instant::now());
    while Instant::now() < deadline {
        let n = cap.packet_count();
        if n != last.0 {
            last = (n, Instant::now());
        } else if n > 0 && last.1.elapsed() > Duration::from_millis(100) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let result = cap.stop()?;
    let (segs, errors) = wire::parse_all(result.linktype, &result.packets);
    println!(
        "captured {} packets on lo port {port} (linktype {}, snaplen {}; libpcap received={} dropped={})",
        result.packets.len(),
        result.linktype,
        result.snaplen,
        result.stats.received,
        result.stats.dropped
    );
    for s in &segs {
        println!(
            "  {} {} -> {} {} len {}",
            s.ts, s.src, s.dst, s.flags, s.len
        );
    }
    for (i, e) in errors {
        println!("  frame {i}: {e}");
    }
    Ok(())
}
