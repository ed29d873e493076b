//! Lab assignments: a scenario file with expectations graded for real, a
//! deliberately wrong variant, --check-only, and predict mode without a terminal.
//! What runs a scenario for real needs `--features privileged` (scripts/test).

mod common;
use common::*;
use std::process::Command;

fn lab(name: &str) -> String {
    format!(
        "{}/scenarios/labs/{name}.scenario",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn the_sample_lab_passes_and_marks_every_expectation() {
    let (code, doc) = run_json(&["run", &lab("half-close-lab")]);
    assert_eq!(code, 0, "{doc:#}");
    let r = Run::new(doc);
    let ex = r.doc["expectations"].as_array().unwrap();
    assert!(ex.len() >= 10);
    assert!(ex.iter().all(|e| e["met"] == true), "{ex:#?}");
    // Step expectations point at the call they were checked against.
    let fin = ex
        .iter()
        .find(|e| e["expect"] == "expect wire FIN")
        .unwrap();
    assert_eq!(r.event(fin["event"].as_u64().unwrap())["call"], "shutdown");
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn the_wrong_variant_fails_with_a_clear_cross() {
    let out = Command::new(bin())
        .args(["run", &lab("half-close-lab-wrong"), "--no-save"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unmet expectation fails the run"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let cross: Vec<&str> = text.lines().filter(|l| l.contains('✗')).collect();
    assert_eq!(cross.len(), 1, "{text}");
    assert!(
        cross[0].contains("expect wire RST") && cross[0].contains("saw nothing on the wire"),
        "{}",
        cross[0]
    );
    assert!(text.contains("expectations: 13 of 14 met"));
    let (_, doc) = run_json(&["run", &lab("half-close-lab-wrong")]);
    let unmet: Vec<_> = doc["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["met"] == false)
        .collect();
    assert_eq!(unmet.len(), 1);
    assert_eq!(unmet[0]["seen"], "nothing on the wire");
    assert_eq!(doc["ok"], false);
}

#[test]
fn check_only_validates_without_running() {
    let out = Command::new(bin())
        .args(["run", "--check-only", &lab("half-close-lab")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("14 expectations"));
    let p = temp_path("scenario");
    std::fs::write(&p, "name: x\nclient connect\n  expect wire FNI\n").unwrap();
    let out = Command::new(bin())
        .args(["run", "--check-only", p.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&p);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":3:15: unknown segment kind `FNI`"), "{err}");
}

/// The questions and a missing answer need no run (and no privilege).
#[test]
fn questions_are_listed_and_a_missing_answer_is_a_usage_error() {
    let qs = Command::new(bin())
        .args(["scenario", "close-unread", "--questions"])
        .output()
        .unwrap();
    let template = String::from_utf8_lossy(&qs.stdout);
    let lines: Vec<&str> = template
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::trim)
        .collect();
    assert_eq!(lines, vec!["7", "9", "10", "11"], "{template}");
    // Without a terminal and without answers: a usage error, nothing runs.
    let answers = temp_path("txt");
    std::fs::write(&answers, "7 data\n").unwrap();
    let out = Command::new(bin())
        .args([
            "scenario",
            "close-unread",
            "--predict",
            "--answers",
            answers.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&answers);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no answer for line 9"));
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs root and the tools of scripts/setup: run scripts/test, or cargo test --features privileged"
)]
fn predictions_are_scored_against_the_run() {
    let answers = temp_path("txt");
    std::fs::write(
        &answers,
        "7 data\n9 FIN   # a guess\n10 ECONNRESET\n11 nothing\n",
    )
    .unwrap();
    let (code, doc) = run_json(&[
        "scenario",
        "close-unread",
        "--predict",
        "--answers",
        answers.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "predictions are scored, not failed");
    let p = doc["predictions"].as_array().unwrap();
    let right: Vec<bool> = p.iter().map(|x| x["right"].as_bool().unwrap()).collect();
    assert_eq!(right, vec![true, false, true, true], "{p:#?}");
    assert_eq!(p[1]["observed"], "RST");
    let _ = std::fs::remove_file(&answers);
}

/// `expect errno NAME` is checked against the names hc-trace reports; the
/// system layer must name exactly those.
#[test]
fn the_errno_names_a_lab_may_expect_are_the_ones_reported() {
    let mut reported: Vec<String> = (1..=200)
        .map(hc_sys::errno::name)
        .filter(|n| !n.starts_with("errno "))
        .collect();
    reported.sort();
    reported.dedup();
    let mut known: Vec<String> = hc_core::model::errno::NAMES
        .iter()
        .map(|n| n.to_string())
        .collect();
    known.sort();
    assert_eq!(reported, known);
}

/// A file with many mistakes: every one in one run of --check-only, each
/// with its position and a did-you-mean; nothing is graded.
#[test]
fn check_only_lists_every_mistake_at_once() {
    let p = temp_path("scenario");
    std::fs::write(
        &p,
        "\u{feff}name: typos\nserver listen\nclient connect\nserver accept\n\
         client shutdown SHUT_WR\n  expect state FIN_WAIT_1\n  expect errno ECONNRESTE\n\
         expect client ends TIME-WAIT\nexpect server ends BANANA\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["run", "--check-only", p.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&p);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: 4 mistakes in "), "{err}");
    for want in [
        ":6:16: unknown TCP state `FIN_WAIT_1`",
        "did you mean `FIN_WAIT1`?",
        ":7:16: unknown errno `ECONNRESTE`",
        "did you mean `ECONNRESET`?",
        ":8:20: unknown TCP state `TIME-WAIT`",
        ":9:20: unknown TCP state `BANANA`",
    ] {
        assert!(err.contains(want), "{want}:\n{err}");
    }
    assert!(out.stdout.is_empty(), "no verdict, no timeline");
}

#[test]
fn run_with_a_builtin_name_points_to_scenario() {
    let out = Command::new(bin())
        .args(["run", "shut-wr"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`hc-trace scenario shut-wr` runs it"), "{err}");
}

/// The sample lab with typos (docs/scenarios.md shows this output).
#[test]
fn the_typos_lab_lists_its_five_mistakes() {
    let out = Command::new(bin())
        .args(["run", "--check-only", &lab("half-close-lab-typos")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let at: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("error:") && l.contains("scenarios/labs/"))
        .filter_map(|l| l.split(".scenario:").nth(1))
        .map(|l| l.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        at,
        vec!["16:16", "20:14", "23:13", "24:16", "28:20"],
        "{err}"
    );
    // Negative control: the lab it was copied from is valid.
    let ok = Command::new(bin())
        .args(["run", "--check-only", &lab("half-close-lab")])
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
}

/// A newcomer copies the examples of --help: every file they name exists.
#[test]
fn help_texts_name_only_files_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut named = 0;
    for cmd in [
        "scenario", "run", "exec", "analyze", "watch", "explain", "list",
    ] {
        let out = Command::new(bin()).args([cmd, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        for word in help.split(|c: char| c.is_whitespace() || c == '\'' || c == '`') {
            let word = word.trim_end_matches([',', ';', ')', '.']);
            if ["examples/", "scenarios/"]
                .iter()
                .any(|p| word.starts_with(p))
                && !word.contains('*')
            {
                named += 1;
                assert!(
                    root.join(word).exists(),
                    "`{cmd} --help` names {word}, which does not exist"
                );
            }
        }
    }
    assert!(named > 0, "the help texts name example files");
}

/// --settle is bounded by how long the driver ever waits after a step.
#[test]
fn settle_beyond_its_bound_is_a_usage_error() {
    let out = Command::new(bin())
        .args(["scenario", "shut-wr", "--settle", "999999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1..=2000"));
}
