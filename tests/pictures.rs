//! The pictures of a real run: ladder, Mermaid and SVG of built-in scenarios,
//! run for real in a private network namespace (root, or a kernel that
//! allows unprivileged user namespaces; `--features privileged`), and
//! `explain`, which needs neither.

mod common;
use common::*;
use std::process::Command;

/// Runs hc-trace with `args` and colour off; returns (exit code, stdout).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin())
        .args(["--color", "never"])
        .args(args)
        .output()
        .expect("run hc-trace");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0,
        "hc-trace {args:?} exit {code}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, stdout)
}

fn builtin_names() -> Vec<String> {
    let (_, list) = run(&["list"]);
    list.lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn shut_wr_ladder_for_real() {
    let (_, out) = run(&["scenario", "shut-wr", "--view", "ladder", "--no-save"]);
    for l in out.lines() {
        assert!(l.chars().count() <= 80, "wider than 80: {l:?}");
        assert!(!l.contains('\u{1b}'), "colour in a pipe: {l:?}");
    }
    // The client's shutdown on the left, its FIN going right, the server's
    // end of file on the right.
    let shut = out
        .lines()
        .position(|l| l.contains("shutdown(SHUT_WR)") && !l.contains('─'))
        .expect("the shutdown");
    assert!(out.lines().nth(shut).unwrap().trim_end().ends_with('│'));
    let fin_arrow = out
        .lines()
        .skip(shut)
        .find(|l| l.contains("shutdown(SHUT_WR) #"))
        .expect("the FIN's arrow");
    assert!(fin_arrow.contains("▶│"), "{fin_arrow}");
    assert!(out.contains("read() = 0 EOF"));
    assert!(out.contains("FIN_WAIT1") && out.contains("CLOSE_WAIT"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn every_builtin_ladder_fits_80_columns_with_every_segment() {
    // fin-lost and simultaneous-close are among the built-ins.
    require_tools(&["nft", "iptables"]);
    for name in builtin_names() {
        let (_, out) = run(&["scenario", &name, "--view", "ladder", "--no-save"]);
        for l in out.lines() {
            assert!(l.chars().count() <= 80, "{name}: wider than 80: {l:?}");
        }
        // Counted in the same run: its footer says how many were captured.
        let segments: usize = out
            .lines()
            .find_map(|l| l.strip_prefix("capture: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("the capture line");
        // An arrow reaches the receiver (a held one where it was delivered),
        // or stops short with a cross where hc-trace dropped it (the legend
        // under the lifelines names both marks too).
        let arrows = out
            .lines()
            .filter(|l| l.contains('│'))
            .filter(|l| {
                l.contains("▶│") || l.contains("│◀") || l.contains("▶✕") || l.contains("✕◀")
            })
            .count();
        // Long runs of plain data are folded into one row that counts them.
        let middle: String = out
            .lines()
            .filter_map(|l| {
                let mut cells = l.split('│');
                cells.next()?;
                cells.next()
            })
            .collect::<Vec<_>>()
            .join(" ");
        let middle = middle.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut folded = 0;
        for run in middle.split(" folded: ").skip(1) {
            let run = run.split(" over ").next().unwrap_or("");
            let words: Vec<&str> = run.split(' ').collect();
            for (i, w) in words.iter().enumerate() {
                let next = words.get(i + 1).copied().unwrap_or("");
                if next == "data" || next.starts_with("ACKs") {
                    folded += w.parse::<usize>().unwrap_or(0);
                }
            }
        }
        assert_eq!(
            arrows + folded,
            segments,
            "{name}: one arrow per segment, or counted in a fold\n{out}"
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn shut_wr_mermaid_for_real() {
    let (_, out) = run(&["scenario", "shut-wr", "--format", "mermaid", "--no-save"]);
    assert!(out.starts_with("sequenceDiagram\n"));
    assert!(out.contains("participant Client") && out.contains("participant Server"));
    assert!(out.contains("Client->>Server: #35;"), "{out}");
    assert!(
        out.contains("shutdown(SHUT_WR) = 0<br/>→ FIN_WAIT1"),
        "{out}"
    );
    let messages = out
        .lines()
        .filter(|l| l.trim_start().starts_with("Client-") || l.trim_start().starts_with("Server-"))
        .count();
    assert!(
        messages >= 10,
        "handshake, data, two FINs and their ACKs:\n{out}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn shut_wr_svg_to_a_file() {
    let path = temp_path("svg");
    let p = path.to_str().expect("utf-8 path");
    let (_, stdout) = run(&[
        "scenario",
        "shut-wr",
        "--format",
        "svg",
        "-o",
        p,
        "--no-save",
    ]);
    assert!(stdout.is_empty(), "the SVG goes to the file only");
    let svg = std::fs::read_to_string(&path).expect("the SVG file");
    let _ = std::fs::remove_file(&path);
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("hc-trace: shut-wr"));
    assert!(svg.matches("<line ").count() >= 12, "lifelines and arrows");
}

#[test]
fn view_ladder_with_json_is_a_usage_error() {
    let out = Command::new(bin())
        .args([
            "scenario", "shut-wr", "--view", "ladder", "--format", "json",
        ])
        .output()
        .expect("run hc-trace");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--view ladder"));
}

#[test]
fn explain_every_builtin() {
    for name in builtin_names() {
        let (_, out) = run(&["explain", &name]);
        assert!(out.starts_with("THEORY"), "{name}");
        assert!(out.contains("RFC 9293 section"), "{name}");
    }
    let out = Command::new(bin())
        .args(["explain", "shut-wrr"])
        .output()
        .expect("run hc-trace");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `shut-wr`"));
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let (_, out) = run(&["completions", shell]);
        assert!(out.contains("ladder"), "{shell} completes --view values");
    }
    let (_, man) = run(&["man"]);
    assert!(man.contains(".TH hc-trace 1"));
    assert!(man.contains("explain"));
}
