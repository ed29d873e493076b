//! Feeds a dump of a live exec run (HC_TRACE_DUMP=FILE hc-trace exec ...)
//! through the live assembler and the text renderer, and says how long
//! each took: where the assembler's time goes, without the program.
//!
//!   cargo run --release --example replay_dump -- FILE
use hc_core::exec::live::{Live, Obs};
use std::time::{Duration, Instant};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: replay_dump FILE (written by HC_TRACE_DUMP=FILE hc-trace exec ...)");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("replay_dump: cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    let mut obs: Vec<(i64, Obs)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let parsed = line
            .split_once(' ')
            .and_then(|(t, o)| Some((t.parse().ok()?, serde_json::from_str(o).ok()?)));
        match parsed {
            Some(p) => obs.push(p),
            None => {
                eprintln!(
                    "replay_dump: line {} is not a time and an observation",
                    n + 1
                );
                std::process::exit(2);
            }
        }
    }
    let ctx = hc_core::exec::sections::Context {
        command: "replay".into(),
        namespace: "replay".into(),
        iface: "lo".into(),
        counters: None,
        snaplen: 65600,
        interrupted: None,
        keep_all: false,
    };
    let style = hc_render::Style::default();
    let mut live = Live::new(ctx, 1, 1_000_000_000, None);
    let mut state = |_: &hc_core::model::exec::Sock| None;
    let (mut push, mut build, mut render) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut reports, mut bytes) = (0usize, 0usize);
    let mut last = i64::MIN;
    let n = obs.len();
    for (i, (_, o)) in obs.into_iter().enumerate() {
        let t = Instant::now();
        live.push(o);
        push += t.elapsed();
        // As the assembler does: every so often, with the latest time seen.
        if i % 3000 == 0 || i + 1 == n {
            let now = live.clock();
            if now == last {
                continue;
            }
            last = now;
            let t = Instant::now();
            let mut made = Vec::new();
            live.ready_each(now, &mut state, &mut |r| made.push(r));
            build += t.elapsed();
            let t = Instant::now();
            for r in &made {
                bytes += hc_render::exec::section_text(r, &style).len();
            }
            render += t.elapsed();
            reports += made.len();
        }
    }
    let t = Instant::now();
    let mut made = Vec::new();
    live.finish_each(&mut state, &mut |r| made.push(r));
    build += t.elapsed();
    let t = Instant::now();
    for r in &made {
        bytes += hc_render::exec::section_text(r, &style).len();
    }
    render += t.elapsed();
    reports += made.len();
    println!(
        "{n} observations, {reports} reports, {bytes} bytes of text: push {:.3} s, build {:.3} s, render {:.3} s",
        push.as_secs_f64(),
        build.as_secs_f64(),
        render.as_secs_f64()
    );
}
