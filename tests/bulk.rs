//! half-close-bulk: 64 MiB through a half-closed connection, captured whole.

mod common;
use common::*;
use std::process::Command;

const SIZE: u64 = 64 << 20;

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn a_half_closed_connection_carries_64_mib_and_every_byte_is_captured() {
    let r = scenario("half-close-bulk");
    assert_eq!(r.doc["capture"]["dropped"], 0);
    let server = r.doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["side"] == "server")
        .expect("the server's stream")
        .clone();
    assert_eq!(server["written"], SIZE);
    assert_eq!(server["on_wire"], SIZE, "every byte seen once on the wire");
    assert_eq!(r.call("server", "write", 0)["ret"], SIZE);
    let read: i64 = r
        .calls("client", "read")
        .iter()
        .filter_map(|c| c["ret"].as_i64())
        .sum();
    assert_eq!(read as u64, SIZE, "the half-closed client read it all");
    // The client's FIN went first; all the data came after it.
    let fin_t = r
        .segments()
        .into_iter()
        .find(|s| s["from"] == "client" && Run::has_flag(s, "FIN"))
        .unwrap()["t_ns"]
        .as_i64()
        .unwrap();
    let first_data = r
        .segments()
        .into_iter()
        .find(|s| s["from"] == "server" && s["len"].as_u64() > Some(0))
        .unwrap();
    assert!(first_data["t_ns"].as_i64().unwrap() > fin_t);
    // JSON keeps every segment: the data needs hundreds of them.
    assert!(r.segments().len() > 500, "{}", r.segments().len());
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn the_text_timeline_folds_the_transfer_and_no_fold_shows_it() {
    let folded = Command::new(bin())
        .args(["scenario", "half-close-bulk", "--no-save"])
        .output()
        .unwrap();
    assert_eq!(folded.status.code(), Some(0));
    let text = String::from_utf8_lossy(&folded.stdout);
    assert!(
        text.lines().count() < 200,
        "a long transfer stays readable: {} lines",
        text.lines().count()
    );
    assert!(
        text.contains("folded:") && text.contains("data segments server → client"),
        "{text}"
    );
    assert!(
        text.contains("first 256 bytes of each packet kept"),
        "large transfers capture headers only"
    );
    let all = Command::new(bin())
        .args(["scenario", "half-close-bulk", "--no-save", "--no-fold"])
        .output()
        .unwrap();
    let all = String::from_utf8_lossy(&all.stdout);
    assert!(
        all.lines().count() > 1000,
        "--no-fold shows each: {}",
        all.lines().count()
    );
    assert!(!all.contains("folded:"));
}
