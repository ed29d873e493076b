//! `hc-trace watch -i IFACE [FILTER]`: the analyze pipeline on a live
//! interface. Each connection's story is printed when it closes; Ctrl-C
//! prints the summary table and exits 130.
//!
//! The capture runs on libpcap's collector thread (capture.rs, streaming
//! mode) and hands packets over a channel, so this loop can look at the
//! interrupt flag between packets and a quiet wire does not delay the summary.

use crate::cli::{StreamFormat, WatchArgs};
use crate::error::AppError;
use crate::sources::capture::{CaptureConfig, CaptureError, LiveCapture};
use hc_core::analyze::flows::Tracker;
use hc_core::analyze::story::{Filter, Story, KERNEL_NOTE};
use hc_core::decode::fast::{decode, Decoded};
use hc_sys::signals as interrupt;
use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// Prints and keeps stories as they complete.
struct Printer {
    format: StreamFormat,
    filter: Filter,
    stories: Vec<Story>,
}

impl Printer {
    fn story(&mut self, s: Story) {
        if self.filter.wants(&s) {
            let line = match self.format {
                StreamFormat::Text => hc_render::analyze::sentence(&s),
                StreamFormat::Json => serde_json::to_string(&s).unwrap_or_default(),
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        self.stories.push(s);
    }
}

/// Runs until SIGINT or SIGTERM (main installs the handler); exits 130/143,
/// or 2 when it cannot capture.
pub fn run(a: &WatchArgs) -> Result<ExitCode, AppError> {
    let filter = if a.filter.is_empty() {
        "tcp".to_string()
    } else {
        a.filter.join(" ")
    };
    let (tx, rx) = mpsc::channel();
    let cfg = CaptureConfig {
        iface: a.iface.clone(),
        filter: filter.clone(),
        ..CaptureConfig::default()
    };
    let cap = match LiveCapture::start_streaming(&cfg, tx) {
        Ok(c) => c,
        Err(e @ CaptureError::NoPermission { .. }) => {
            return Err(AppError::env(e.to_string())
                .hint("watch needs the privilege to capture (CAP_NET_RAW): run it as root"))
        }
        Err(e) => return Err(AppError::capture(e)),
    };
    let lt = cap.linktype();
    eprintln!(
        "watching {} ({filter}); each connection is shown when it closes, Ctrl-C prints the summary",
        a.iface
    );
    let mut p = Printer {
        format: a.format,
        filter: a.only.to_filter(),
        stories: Vec::new(),
    };
    if !hc_core::decode::frame::is_supported(lt) {
        eprintln!(
            "warning: link type {} is not decoded: no connection will be seen on {}",
            hc_core::decode::frame::linktype::describe(lt),
            a.iface
        );
    }
    let mut tracker = Tracker::new();
    // Numbered from 1, as Wireshark numbers the frames of a capture.
    let mut frame = 1usize;
    let mut skipped = 0u64;
    let mut feed = |pkt: hc_core::model::RawPacket, tracker: &mut Tracker, p: &mut Printer| {
        match decode(lt, frame, pkt.ts, pkt.orig_len, &pkt.data) {
            Ok(Decoded::Tcp(seg)) => {
                tracker.push(&seg, &mut |s| p.story(s));
                tracker.take_closed(&mut |s| p.story(s));
            }
            Ok(Decoded::Other) => {}
            // Said once above.
            Err(hc_core::decode::frame::WireError::UnsupportedLinkType(_)) => skipped += 1,
            Err(e) => {
                skipped += 1;
                eprintln!("warning: frame {frame}: {e}; skipped");
            }
        }
        frame += 1;
    };
    let mut capture_error = None;
    while interrupt::caught().is_none() {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(pkt) => feed(pkt, &mut tracker, &mut p),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Err(e) = cap.stop() {
        capture_error = Some(e);
    }
    // What was queued before the stop still belongs to the story.
    while let Ok(pkt) = rx.try_recv() {
        feed(pkt, &mut tracker, &mut p);
    }
    tracker.finish(&mut |s| p.story(s));

    let mut out = std::io::stdout().lock();
    let shown: Vec<&Story> = p.stories.iter().filter(|s| p.filter.wants(s)).collect();
    match a.format {
        StreamFormat::Text => {
            let _ = writeln!(out, "\n{}", hc_render::analyze::table_header());
            for s in &shown {
                let _ = writeln!(out, "{}", hc_render::analyze::table_row(s));
            }
            let _ = writeln!(
                out,
                "\n{} ({} shown), {}\n{KERNEL_NOTE}",
                hc_render::words::count(p.stories.len() as u64, "connection", "connections"),
                shown.len(),
                hc_render::words::count(skipped, "skipped frame", "skipped frames"),
            );
        }
        StreamFormat::Json => {
            let doc = serde_json::json!({
                "schema": crate::commands::analyze::SCHEMA,
                "note": KERNEL_NOTE,
                "connections": shown,
                "skipped_records": skipped,
            });
            let _ = writeln!(out, "{doc}");
        }
    }
    let _ = out.flush();
    if let Some(e) = capture_error {
        AppError::capture(e).report();
    }
    Ok(ExitCode::from(match interrupt::caught() {
        Some(sig) => interrupt::exit_code(sig),
        // The capture thread ended on its own: an error, reported above.
        None => 1,
    }))
}
