//! Every built-in scenario, run for real in its own network namespace.
//!
//! Each test asserts what was observed on the wire and what the calls
//! returned, and where it is cheap a negative control changes the scenario
//! and checks that the wire changes with it (so the assertion could fail).
//! Needs root, or a kernel that allows unprivileged user namespaces: these
//! run with `--features privileged` (scripts/test) and are ignored otherwise;
//! the usage errors at the end need neither.

mod common;
use common::*;

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn shut_wr_half_close_fin_then_the_server_still_answers() {
    let r = scenario("shut-wr");
    let shut = r.call("client", "shutdown", 0);
    let fins: Vec<_> = r.caused_with(shut, "FIN");
    assert_eq!(fins.len(), 1, "shutdown(SHUT_WR) caused one FIN: {shut}");
    assert_eq!(fins[0]["from"], "client");
    let reads = r.calls("server", "read");
    assert_eq!(
        reads.last().unwrap()["ret"],
        0,
        "the server's read-all ends with end of file"
    );
    assert_eq!(
        r.call("server", "write", 0)["ret"],
        200,
        "the server can still write after the client's FIN"
    );
    let got: i64 = r
        .calls("client", "read")
        .iter()
        .filter_map(|c| c["ret"].as_i64())
        .filter(|n| *n > 0)
        .sum();
    assert_eq!(got, 200, "the half-closed client still receives the answer");
    assert_eq!(r.count("client", "RST") + r.count("server", "RST"), 0);
    assert_eq!(
        r.final_state("client"),
        "TIME_WAIT",
        "the side that sent the first FIN waits"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn shut_wr_negative_control_without_shutdown_the_server_never_sees_eof() {
    let text = builtin_text("shut-wr").replace("client shutdown SHUT_WR (key)\n", "");
    let r = scenario_text(&text);
    let last_read = *r.calls("server", "read").last().unwrap();
    assert_eq!(
        last_read["errno"], "EAGAIN",
        "without the FIN the read-all waits in vain: {last_read}"
    );
    // The client's only FIN now comes from its close(), after the server's.
    assert!(!r.caused_flag(r.call("client", "write", 0), "FIN"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn shut_rd_puts_nothing_on_the_wire() {
    let r = scenario("shut-rd");
    let shut = r.call("client", "shutdown", 0);
    assert_eq!(shut["args"], "SHUT_RD");
    assert_eq!(shut["ret"], 0);
    assert!(
        r.caused(shut).is_empty(),
        "shutdown(SHUT_RD) sent nothing: {shut}"
    );
    // Negative control: the same step with SHUT_WR sends a FIN.
    let text = builtin_text("shut-rd").replace("SHUT_RD (key)", "SHUT_WR (key)");
    let r2 = scenario_text(&text);
    assert!(r2.caused_flag(r2.call("client", "shutdown", 0), "FIN"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn shut_rdwr_sends_a_fin_and_what_arrives_afterwards_is_shown() {
    let r = scenario("shut-rdwr");
    let shut = r.call("client", "shutdown", 0);
    assert!(r.caused_flag(shut, "FIN"));
    assert_eq!(
        r.call("server", "read", 0)["ret"],
        0,
        "the server sees end of file"
    );
    // The server's data goes out; whatever the client's kernel answers is attributed.
    let w = r.call("server", "write", 0);
    assert_eq!(w["ret"], 100);
    assert!(
        r.caused_flag(w, "PSH") || !r.caused(w).is_empty(),
        "the write put data on the wire"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn close_early_late_data_is_answered_by_rst_and_later_calls_fail() {
    let r = scenario("close-early");
    let close = r.call("client", "close", 0);
    assert!(
        r.caused_flag(close, "FIN"),
        "the client's close sends FIN: {close}"
    );
    let rsts: Vec<_> = r
        .segments()
        .into_iter()
        .filter(|s| Run::has_flag(s, "RST"))
        .collect();
    assert!(!rsts.is_empty(), "an RST answers the late data");
    let first = rsts[0];
    assert_eq!(first["from"], "client");
    assert!(
        first["cause"]["event"].is_null(),
        "the kernel sent it, no call: {first}"
    );
    let answered = r.event(
        first["causes"][0]["answers"]
            .as_u64()
            .expect("answers a segment"),
    );
    assert_eq!(answered["from"], "server");
    assert!(
        answered["len"].as_u64().unwrap() > 0,
        "it answers the server's data"
    );
    let failed: Vec<_> = r
        .events()
        .iter()
        .filter(|e| e["side"] == "server" && e["t_ns"].as_i64() > first["t_ns"].as_i64())
        .filter_map(|e| e["errno"].as_str())
        .collect();
    assert!(!failed.is_empty(), "a server call after the RST fails");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn close_unread_sends_rst_not_fin_and_the_peer_reads_econnreset() {
    let r = scenario("close-unread");
    let close = r.call("client", "close", 0);
    assert!(
        r.caused_flag(close, "RST"),
        "close() with unread data caused an RST: {close}"
    );
    assert!(!r.caused_flag(close, "FIN"), "and no FIN");
    assert_eq!(r.count("client", "FIN"), 0);
    assert_eq!(r.call("server", "read", 0)["errno"], "ECONNRESET");

    // Negative control: read the data first, and close() sends a FIN, no RST.
    let text = builtin_text("close-unread")
        .replace("client close (key)", "client read\nclient close (key)");
    let r2 = scenario_text(&text);
    let close2 = r2.call("client", "close", 0);
    assert!(
        r2.caused_flag(close2, "FIN") && !r2.caused_flag(close2, "RST"),
        "{close2}"
    );
    assert_eq!(r2.count("client", "RST"), 0);
    assert_eq!(r2.call("server", "read", 0)["ret"], 0);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn linger0_close_is_abortive() {
    let r = scenario("linger0");
    let close = r.call("client", "close", 0);
    assert!(
        r.caused_flag(close, "RST") && !r.caused_flag(close, "FIN"),
        "{close}"
    );
    assert!(
        r.caused(r.call("client", "setsockopt", 0)).is_empty(),
        "setsockopt sends nothing"
    );
    assert_eq!(r.call("server", "read", 0)["errno"], "ECONNRESET");
    assert_eq!(
        r.final_state("client"),
        "CLOSED",
        "nothing lingers after an abortive close"
    );

    let text = builtin_text("linger0").replace("client setsockopt SO_LINGER 1 0\n", "");
    let r2 = scenario_text(&text);
    let close2 = r2.call("client", "close", 0);
    assert!(
        r2.caused_flag(close2, "FIN") && !r2.caused_flag(close2, "RST"),
        "{close2}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn write_after_close_first_write_meets_rst_second_fails_silently() {
    let r = scenario("write-after-close");
    assert_eq!(
        r.call("client", "read", 0)["ret"],
        0,
        "the client sees the server's FIN as end of file"
    );
    let w1 = r.call("client", "write", 0);
    assert_eq!(w1["ret"], 100, "the first write succeeds locally");
    assert!(!r.caused(w1).is_empty(), "and its data goes on the wire");
    let rst = r
        .segments()
        .into_iter()
        .find(|s| Run::has_flag(s, "RST"))
        .expect("the server's kernel answers with RST");
    assert_eq!(rst["from"], "server");
    let w2 = r.call("client", "write", 1);
    assert_eq!(w2["errno"], "EPIPE", "{w2}");
    assert!(
        r.caused(w2).is_empty(),
        "the failed write puts nothing on the wire"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn dup_close_first_close_is_silent_shutdown_sends_the_fin() {
    let r = scenario("dup-close");
    let close = r.call("client", "close", 0);
    assert!(
        r.caused(close).is_empty(),
        "closing one of two descriptors sends nothing: {close}"
    );
    assert_eq!(
        close["state_after"], "ESTABLISHED",
        "the connection lives on"
    );
    assert_eq!(
        r.call("server", "read", 0)["errno"],
        "EAGAIN",
        "the server sees nothing"
    );
    assert!(r.caused_flag(r.call("client", "shutdown", 0), "FIN"));
    assert_eq!(r.call("server", "read", 1)["ret"], 0);

    let text = builtin_text("dup-close")
        .replace("client dup as copy\n", "")
        .replace("client shutdown SHUT_WR on copy\n", "")
        .replace("client close on copy\n", "");
    let r2 = scenario_text(&text);
    assert!(
        r2.caused_flag(r2.call("client", "close", 0), "FIN"),
        "without dup, close() sends the FIN"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn no_shutdown_reader_waits_in_vain_until_the_fin() {
    let r = scenario("no-shutdown");
    let reads = r.calls("server", "read");
    assert_eq!(reads[0]["ret"], 100);
    assert_eq!(reads[1]["errno"], "EAGAIN", "no end of file without a FIN");
    assert_eq!(
        reads.last().unwrap()["ret"],
        0,
        "after shutdown(SHUT_WR), end of file"
    );
    assert!(r.caused_flag(r.call("client", "shutdown", 0), "FIN"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn cork_fin_data_and_fin_share_one_segment() {
    let r = scenario("cork-fin");
    let write = r.call("client", "write", 0);
    let shut = r.call("client", "shutdown", 0);
    let data: Vec<_> = r.caused(write);
    assert_eq!(data.len(), 1, "{write}");
    assert!(
        Run::has_flag(data[0], "FIN") && data[0]["len"] == 100,
        "data+FIN in one segment: {}",
        data[0]
    );
    assert_eq!(
        r.caused(shut),
        data,
        "the same segment carries the shutdown's FIN"
    );

    let text = builtin_text("cork-fin").replace("client setsockopt TCP_CORK 1\n", "");
    let r2 = scenario_text(&text);
    let seg = r2.caused(r2.call("client", "write", 0));
    assert!(
        !Run::has_flag(seg[0], "FIN"),
        "without TCP_CORK the data leaves alone: {}",
        seg[0]
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn refused_syn_is_answered_by_rst() {
    let r = scenario("refused");
    let connect = r.call("client", "connect", 0);
    assert_eq!(connect["errno"], "ECONNREFUSED");
    assert!(r.caused_flag(connect, "SYN"));
    let rst = r
        .segments()
        .into_iter()
        .find(|s| Run::has_flag(s, "RST"))
        .expect("RST");
    assert_eq!(rst["from"], "server");
    let answered = r.event(rst["causes"][0]["answers"].as_u64().unwrap());
    assert!(Run::has_flag(answered, "SYN"));

    let r2 = scenario_text(&builtin_text("refused").replace(
        "client connect (key)",
        "server listen\nclient connect (key)",
    ));
    assert_eq!(
        r2.call("client", "connect", 0)["ret"],
        0,
        "with a listener the connect succeeds"
    );
    assert_eq!(r2.count("server", "RST"), 0);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn listen_close_resets_the_connection_waiting_in_the_backlog() {
    let r = scenario("listen-close");
    assert_eq!(
        r.call("client", "connect", 0)["ret"],
        0,
        "connect completes from the backlog"
    );
    let close = r.call("server", "close", 0);
    assert!(
        r.caused_flag(close, "RST"),
        "closing the listener resets the queued connection: {close}"
    );
    assert_eq!(r.call("client", "read", 0)["errno"], "ECONNRESET");
}

#[test]
fn unknown_scenario_exits_2_and_suggests() {
    let out = std::process::Command::new(bin())
        .args(["scenario", "shut-wd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `shut-wr`?"), "{err}");
}

#[test]
fn a_bad_scenario_file_exits_2_with_its_position() {
    let p = temp_path("scenario");
    std::fs::write(&p, "name: x\nserver listen\nclient conect\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["run", p.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&p);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":3:8: unknown call `conect`") && err.contains("did you mean `connect`?"),
        "{err}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn text_output_has_no_colour_when_piped_and_names_causes() {
    let out = std::process::Command::new(bin())
        .args(["scenario", "shut-wr", "--no-save"])
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes when stdout is a pipe"
    );
    assert!(
        text.contains("← FIN from client shutdown(SHUT_WR)"),
        "{text}"
    );
    assert!(text.contains("⇒ nothing on the wire"));
    let forced = std::process::Command::new(bin())
        .args(["--color", "always", "scenario", "refused", "--no-save"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&forced.stdout).contains('\u{1b}'),
        "--color always colours"
    );
}
