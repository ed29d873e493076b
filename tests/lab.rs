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
    assert!(err.contains(":3:10: unknown segment kind `FNI`"), "{err}");
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
