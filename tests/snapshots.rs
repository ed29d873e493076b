//! Golden outputs: every renderer on recordings of real runs.
//!
//! `tests/fixtures/recordings/` holds what real runs observed (packets,
//! calls, kernel events, faults: `--record FILE`); each is replayed through
//! the same assembly a live run uses and drawn by every renderer. No
//! privileges needed. A changed output fails here until it is accepted
//! (`INSTA_UPDATE=always cargo test --test snapshots`, or `cargo insta
//! review`), and the commit that accepts it says why the new one is truer.

use hc_core::exec::{self, ExecRecording};
use hc_core::session::{assemble, Recording};
use hc_render::{self as render, annotations, text};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn folded(fold: bool) -> render::Style {
    render::Style {
        fold,
        ..render::Style::default()
    }
}

/// Recordings of scenario runs, by name, sorted.
fn scenario_recordings() -> Vec<(String, Recording)> {
    let mut out: Vec<(String, Recording)> = std::fs::read_dir(fixtures().join("recordings"))
        .expect("recordings")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_stem()?.to_str()?.to_string();
            if name.starts_with("exec-") {
                return None;
            }
            let text = std::fs::read_to_string(&p).ok()?;
            let rec: Recording =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Some((name, rec))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 15, "the recordings are there");
    out
}

fn report(rec: &Recording) -> hc_core::report::Report {
    let scn = rec.scenario().expect("the recorded scenario parses");
    assemble(rec, &scn)
}

/// A picture too large to read in a diff: its size and a digest stand in.
fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{} bytes, {} lines, fnv1a64 {h:016x}",
        text.len(),
        text.lines().count()
    )
}

/// Big outputs are pinned by digest, with their first and last lines shown.
fn pin(text: String) -> String {
    const MAX: usize = 200_000;
    if text.len() <= MAX {
        return text;
    }
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "{}\n{}\n⋯\n{}\n",
        digest(&text),
        lines[..60].join("\n"),
        lines[lines.len() - 30..].join("\n")
    )
}

fn comments(r: &hc_core::report::Report) -> String {
    let mut s = annotations::section_comment(r);
    s.push_str("--- packet comments ---\n");
    for (i, c) in annotations::frame_comments(r, r.capture.packets)
        .into_iter()
        .enumerate()
    {
        if let Some(c) = c {
            s.push_str(&format!("frame {i}: {c}\n"));
        }
    }
    s
}

#[test]
fn scenario_runs_in_every_renderer() {
    for (name, rec) in scenario_recordings() {
        let r = report(&rec);
        insta::assert_snapshot!(
            format!("{name}.timeline"),
            pin(text::render_with(&r, &folded(true)))
        );
        let unfolded = text::render_with(&r, &folded(false));
        if unfolded != text::render_with(&r, &folded(true)) {
            insta::assert_snapshot!(format!("{name}.timeline-no-fold"), pin(unfolded));
        }
        insta::assert_snapshot!(format!("{name}.ladder"), pin(render::ladder::render(&r)));
        insta::assert_snapshot!(format!("{name}.mermaid"), pin(render::mermaid::render(&r)));
        insta::assert_snapshot!(format!("{name}.svg"), pin(render::svg::render(&r)));
        let json = serde_json::to_string_pretty(&render::json::document(&r)).expect("json");
        insta::assert_snapshot!(format!("{name}.json"), pin(json));
        insta::assert_snapshot!(format!("{name}.pcapng-comments"), pin(comments(&r)));
    }
}

/// The story's self-check (hc_core::check) holds on every recorded run:
/// no result before its cause, no stale state, no false "nothing on the
/// wire", no ACK of a copy that never arrived, RST reasons that agree.
#[test]
fn every_recording_tells_a_true_story() {
    let mut bad = Vec::new();
    for (name, rec) in scenario_recordings() {
        for v in report(&rec).violations {
            bad.push(format!("{name}: {v}"));
        }
    }
    for (name, rec) in exec_recordings() {
        let (run, _) = exec::assemble(rec);
        for r in &run.sections {
            for v in &r.violations {
                bad.push(format!("{name}: {v}"));
            }
        }
    }
    assert!(bad.is_empty(), "self-check violations:\n{}", bad.join("\n"));
}

/// The pictures keep the story's order: a segment is drawn where it
/// arrived (a held one further down than where it left) before anything that
/// answers it, and a read's end of file after the FIN it reports arrived.
#[test]
fn pictures_draw_nothing_before_what_it_answers() {
    use hc_core::correlate::{Eof, Event};
    use render::picture::{rows, Row};
    let mut held = 0;
    for (name, rec) in scenario_recordings() {
        let r = report(&rec);
        let rows = rows(&r);
        // Where each segment reached its receiver, and where each call's result is.
        let mut sent = std::collections::HashMap::new();
        let mut arrived = std::collections::HashMap::new();
        let mut result = std::collections::HashMap::new();
        for (n, row) in rows.iter().enumerate() {
            match row {
                Row::Seg(s) => {
                    sent.insert(s.event, n);
                    arrived.entry(s.event).or_insert(n);
                }
                Row::Arrival(s) => {
                    held += 1;
                    arrived.insert(s.event, n);
                }
                Row::Call(c) if !c.entry => {
                    result.insert(c.event, n);
                }
                _ => {}
            }
        }
        for (i, e) in r.timeline.events.iter().enumerate() {
            // Events folded into one row of plain data are not drawn alone.
            let (at, needs): (Option<&usize>, Vec<usize>) = match e {
                Event::Segment(s) => (
                    sent.get(&i),
                    s.causes.iter().filter_map(|c| c.answers()).collect(),
                ),
                Event::Call(c) => match c.eof {
                    Some(Eof::Fin { segment }) => (result.get(&i), vec![segment]),
                    _ => continue,
                },
                _ => continue,
            };
            let Some(at) = at else { continue };
            for a in needs {
                let Some(arrived) = arrived.get(&a) else {
                    continue;
                };
                assert!(
                    arrived < at,
                    "{name}: #{i} is drawn before #{a}, which it answers, arrived"
                );
            }
        }
    }
    assert!(held >= 2, "the held FINs of simultaneous-close are drawn");
}

/// A failing lab says why in every view, not only in the timeline: the
/// unmet expectation beside its call and the count at the end; a prediction
/// likewise.
#[test]
fn every_view_carries_the_verdicts_and_the_score() {
    let (_, rec) = scenario_recordings()
        .into_iter()
        .find(|(n, _)| n == "lab-wrong")
        .expect("lab-wrong");
    let r = report(&rec);
    let unmet = "expect wire RST";
    let views = [
        ("timeline", text::render_with(&r, &folded(true))),
        ("ladder", render::ladder::render(&r)),
        ("mermaid", render::mermaid::render(&r)),
        ("svg", render::svg::render(&r)),
    ];
    for (view, out) in &views {
        assert!(out.contains("expectations: 13 of 14 met"), "{view}:\n{out}");
        // (the ladder and the SVG wrap it in the client's column)
        assert!(out.contains(unmet) && out.contains("31: saw"), "{view}");
        assert!(out.contains("✗"), "{view}");
    }
    // Negative control: a run with no lab has no score line.
    let (_, plain) = scenario_recordings()
        .into_iter()
        .find(|(n, _)| n == "shut-wr")
        .expect("shut-wr");
    let r = report(&plain);
    assert!(!render::svg::render(&r).contains("expectations:"));
    assert!(!render::mermaid::render(&r).contains("expectations:"));
    // Predictions: the score and each answer, in the pictures too.
    let scn = plain.scenario().expect("parses");
    let mut r = assemble(&plain, &scn);
    let qs = hc_core::scenario::predict::questions(&scn);
    let answers =
        std::fs::read_to_string(fixtures().join("answers/shut-wr.answers")).expect("answers");
    let answers = hc_core::scenario::predict::read_answers(&qs, &answers, "a").expect("valid");
    r.predictions = hc_core::scenario::predict::score(&qs, &answers, &r);
    let said = "you said RST, it was nothing (#35)";
    for (out, said) in [
        (render::ladder::render(&r), said.to_string()),
        (render::mermaid::render(&r), render::mermaid::escape(said)),
        (render::svg::render(&r), said.to_string()),
    ] {
        assert!(out.contains("Your predictions: 5 of 7 right"), "{out}");
        assert!(out.contains(&said), "{out}");
    }
}

/// The 64 MiB transfer in pictures: folded as the timeline folds it, so
/// Mermaid can draw it (its limit is 50,000 characters) and the SVG opens.
#[test]
fn long_runs_in_pictures_are_folded_as_the_timeline_folds_them() {
    let (_, rec) = scenario_recordings()
        .into_iter()
        .find(|(n, _)| n == "half-close-bulk")
        .expect("half-close-bulk");
    let r = report(&rec);
    let timeline = text::render_with(&r, &folded(true));
    let mermaid = render::mermaid::render(&r);
    assert!(mermaid.len() < 50_000, "{} bytes", mermaid.len());
    let svg = render::svg::render(&r);
    let height: usize = svg
        .split("height=\"")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .and_then(|h| h.parse().ok())
        .expect("a height");
    assert!(height < 5_000, "{height} px");
    // The same ranges as the timeline's folded lines, named in each picture.
    let ranges: Vec<&str> = timeline
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.contains('–') && w.starts_with('#'))
        })
        .collect();
    assert!(ranges.len() >= 2, "{timeline}");
    for range in ranges {
        let named = format!("{range} folded");
        assert!(
            mermaid.contains(&render::mermaid::escape(&named)),
            "{named}"
        );
        assert!(svg.contains(&named), "{named}");
        assert!(render::ladder::render(&r).contains(range), "{range}");
    }
}

#[test]
fn the_all_table() {
    let builtin = hc_core::scenario::names();
    let rows: Vec<render::table::SummaryRow> = scenario_recordings()
        .iter()
        .filter(|(n, _)| builtin.contains(&n.as_str()))
        .map(|(_, rec)| render::table::SummaryRow::from_report(&report(rec)))
        .collect();
    assert_eq!(rows.len(), builtin.len());
    let table = render::table::summary_table(&rows, &render::Style::default());
    // Bounded: the bulk transfer's thousand segments are counted, not listed.
    for l in table.lines() {
        assert!(
            l.chars().count() <= 110,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    insta::assert_snapshot!("all-table", table);
    insta::assert_snapshot!(
        "all-table.json",
        serde_json::to_string_pretty(&rows).expect("json")
    );
}

#[test]
fn predictions_are_scored_in_the_timeline_and_json() {
    let (_, rec) = scenario_recordings()
        .into_iter()
        .find(|(n, _)| n == "shut-wr")
        .expect("shut-wr");
    let scn = rec.scenario().expect("parses");
    let mut r = assemble(&rec, &scn);
    let qs = hc_core::scenario::predict::questions(&scn);
    let text_in =
        std::fs::read_to_string(fixtures().join("answers/shut-wr.answers")).expect("answers");
    let answers =
        hc_core::scenario::predict::read_answers(&qs, &text_in, "shut-wr.answers").expect("valid");
    r.predictions = hc_core::scenario::predict::score(&qs, &answers, &r);
    assert!(
        r.predictions.iter().any(|p| !p.right),
        "the answers hold a wrong one"
    );
    insta::assert_snapshot!(
        "shut-wr.predicted.timeline",
        text::render_with(&r, &folded(true))
    );
    insta::assert_snapshot!(
        "shut-wr.predicted.json",
        serde_json::to_string_pretty(&render::json::document(&r)).expect("json")
    );
}

fn exec_recordings() -> Vec<(String, ExecRecording)> {
    let mut out: Vec<(String, ExecRecording)> = std::fs::read_dir(fixtures().join("recordings"))
        .expect("recordings")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_stem()?.to_str()?.to_string();
            if !name.starts_with("exec-") {
                return None;
            }
            let text = std::fs::read_to_string(&p).ok()?;
            Some((
                name,
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 5, "the exec recordings are there");
    out
}

#[test]
fn exec_runs_as_text_and_json() {
    for (name, rec) in exec_recordings() {
        let (run, _packets) = exec::assemble(rec);
        insta::assert_snapshot!(
            format!("{name}.text"),
            render::exec::render_text(&run, &render::Style::default())
        );
        let json = serde_json::to_string_pretty(&render::exec::document(&run)).expect("json");
        insta::assert_snapshot!(format!("{name}.json"), json);
    }
}

/// `hc-trace analyze` as a user runs it, on the reference captures.
fn analyze(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hc-trace"))
        .arg("--color=never")
        .arg("analyze")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run hc-trace analyze");
    format!(
        "exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn analyze_on_the_reference_captures() {
    let mut names: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/captures"))
            .expect("reference captures")
            .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_string()))
            .collect();
    names.sort();
    for n in &names {
        let f = format!("tests/fixtures/captures/{n}");
        let stem = n.trim_end_matches(".pcapng");
        insta::assert_snapshot!(format!("analyze.{stem}.table"), analyze(&[&f]));
        insta::assert_snapshot!(
            format!("analyze.{stem}.json"),
            analyze(&["--format", "json", &f])
        );
        insta::assert_snapshot!(
            format!("analyze.{stem}.conn1"),
            analyze(&["--conn", "1", &f])
        );
        insta::assert_snapshot!(
            format!("analyze.{stem}.conn1.json"),
            analyze(&["--conn", "1", "--format", "json", &f])
        );
        insta::assert_snapshot!(
            format!("analyze.{stem}.conn1.mermaid"),
            analyze(&["--conn", "1", "--format", "mermaid", &f])
        );
    }
    let all: Vec<String> = names
        .iter()
        .map(|n| format!("tests/fixtures/captures/{n}"))
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    insta::assert_snapshot!("analyze.all.table", analyze(&all));
    insta::assert_snapshot!(
        "analyze.only-rst",
        analyze(&[&["--only", "rst"][..], &all].concat())
    );
}

/// README's sample is the shut-wr recording as a live run prints it (with
/// the line saying where the capture was saved). `UPDATE_README=1 cargo
/// test --test snapshots readme` rewrites it from the recording.
#[test]
fn readme_sample_is_the_shut_wr_recording() {
    let (_, rec) = scenario_recordings()
        .into_iter()
        .find(|(n, _)| n == "shut-wr")
        .expect("shut-wr");
    let mut r = report(&rec);
    r.capture.file = Some(PathBuf::from("captures/shut-wr.pcapng"));
    let sample = format!("```text\n{}```\n", text::render_with(&r, &folded(true)));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let (begin, end) = (
        "<!-- sample:shut-wr:begin -->\n",
        "<!-- sample:shut-wr:end -->",
    );
    let a = readme
        .find(begin)
        .expect("README has the sample's begin marker")
        + begin.len();
    let b = readme
        .find(end)
        .expect("README has the sample's end marker");
    if std::env::var_os("UPDATE_README").is_some() {
        let new = format!("{}{sample}{}", &readme[..a], &readme[b..]);
        std::fs::write(&path, new).expect("write README.md");
        return;
    }
    assert_eq!(
        &readme[a..b],
        sample,
        "README's sample differs from the recording; UPDATE_README=1 cargo test --test snapshots readme"
    );
}

/// Colour is the style's, not the terminal's: the same run painted.
#[test]
fn colour_is_pinned_too() {
    let (_, rec) = scenario_recordings()
        .into_iter()
        .find(|(n, _)| n == "shut-wr")
        .expect("shut-wr");
    let r = report(&rec);
    let painted = render::Style {
        color: true,
        ..render::Style::default()
    };
    let text = text::render_with(&r, &painted);
    assert!(text.contains("\u{1b}["), "painted");
    insta::assert_snapshot!("shut-wr.timeline.colour", text);
    insta::assert_snapshot!(
        "shut-wr.ladder.colour",
        render::ladder::render_with(&r, &painted)
    );
    // Negative control: the same style without colour has no escapes.
    assert!(!text::render_with(&r, &render::Style::default()).contains('\u{1b}'));
}

/// docs/schema/*.schema.json are generated from the typed JSON structs
/// (`UPDATE_SCHEMA=1` rewrites them), and every recorded run's document
/// reads back into those types, unknown fields refused.
#[test]
fn the_json_schema_is_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema");
    for (name, schema) in [
        ("run.schema.json", render::json::schema()),
        ("exec.schema.json", render::exec::schema()),
    ] {
        let text = serde_json::to_string_pretty(&schema).expect("schema") + "\n";
        let path = dir.join(name);
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(&dir).expect("docs/schema");
            std::fs::write(&path, &text).expect("write schema");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed, text,
            "{name} is stale: UPDATE_SCHEMA=1 cargo test --test snapshots schema"
        );
    }
    for (name, rec) in scenario_recordings() {
        let doc = render::json::document(&report(&rec));
        let back: Result<render::json::Document, _> = serde_json::from_value(doc.clone());
        assert!(back.is_ok(), "{name}: {:?}", back.err());
        // Negative control: a field the types do not know is refused.
        let mut extra = doc;
        extra["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<render::json::Document>(extra).is_err());
    }
    for (name, rec) in exec_recordings() {
        let (run, _) = exec::assemble(rec);
        let doc = render::exec::document(&run);
        let back: Result<render::exec::ExecDocument, _> = serde_json::from_value(doc);
        assert!(back.is_ok(), "{name}: {:?}", back.err());
    }
}
