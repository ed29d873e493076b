//! `hc-trace exec -- PROGRAM`: a program traced while the capture runs,
//! one timeline per connection; hc-trace exits with the program's status.

use crate::cli::{ExecArgs, StreamFormat};
use crate::error::AppError;
use crate::out;
use crate::session::{self, KernelPlan, Plan};
use crate::sources::capture::CaptureConfig;
use crate::sources::exec::{self, ExecSource, CAPTURE_BUFFER, KTRACE_BUFFER_KB, SNAPLEN};
use hc_core::capfile::pcapng::PcapngMeta;
use hc_core::exec::{assemble, ExecRecording};
use hc_core::session::RECORDING_VERSION;
use hc_sys::netns::{self, NetnsChoice, SandboxKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Runs `hc-trace exec`. Must be called before any thread exists.
pub fn run(a: &ExecArgs, color: bool) -> Result<ExitCode, AppError> {
    let timeout = match a.timeout {
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(AppError::usage(format!(
                "--timeout {t}: give a positive number of seconds"
            )))
        }
        None => None,
    };
    exec::resolve(&a.program[0]).map_err(AppError::trace)?;
    let mut rootless = false;
    let namespace = if a.host {
        "the host's network namespace (--host)".to_string()
    } else {
        // Before any thread: unshare(CLONE_NEWUSER) refuses multi-threaded processes.
        let s = netns::enter(&NetnsChoice::Private).map_err(AppError::sandbox)?;
        rootless = matches!(s.kind, SandboxKind::PrivateRootless);
        s.describe()
    };
    hc_sys::signals::let_sigint_pass();
    let iface = a
        .iface
        .clone()
        .unwrap_or_else(|| if a.host { "any" } else { "lo" }.to_string());
    let plan = Plan {
        capture: CaptureConfig {
            iface: iface.clone(),
            filter: "tcp".into(),
            snaplen: SNAPLEN,
            buffer_bytes: CAPTURE_BUFFER,
            // Nothing waits for single packets during the trace; settling only
            // needs the count to stop growing, and blocks are handed over
            // within the read timeout (20 ms), well inside its quiet period.
            immediate: false,
        },
        // Every port: the program's are known only once it ran. Root on the
        // host (not root of a user namespace) may read tracefs.
        kernel: if a.no_kernel {
            Err("switched off with --no-kernel".into())
        } else if rootless {
            Err("reading kernel tracepoints needs root (run with sudo); without it the timeline shows what calls and the capture saw".into())
        } else {
            Ok(KernelPlan {
                port: None,
                buffer_kb: KTRACE_BUFFER_KB,
            })
        },
        quiet: Duration::from_millis(60),
        quiet_max: Duration::from_secs(1),
    };
    let t0 = Instant::now();
    let source = ExecSource {
        argv: a.program.clone(),
        timeout,
    };
    let captured = session::run(&plan, source).map_err(|e| {
        if a.host && e.kind == crate::error::Kind::Environment {
            e.hint(format!(
                "--host captures on {iface} in the host's namespace, which needs root \
                 (or CAP_NET_RAW); without --host the program runs in a private namespace"
            ))
        } else {
            e
        }
    })?;
    let t1 = Instant::now();
    let traced = captured.out;
    let rec = ExecRecording {
        version: RECORDING_VERSION,
        command: a
            .program
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        pid: traced.pid,
        status: traced.status,
        timed_out: traced.timed_out,
        timeout,
        stops: traced.stops,
        namespace: namespace.clone(),
        iface,
        keep_all: !a.host,
        counters: captured.counters,
        snaplen: captured.snaplen,
        linktype: captured.linktype,
        packets: captured.packets,
        states: exec::final_states(&traced.socks),
        calls: traced.calls,
        socks: traced.socks,
        kernel: captured.kernel,
    };
    if let Some(path) = &a.record {
        session::record(path, &rec)?;
    }
    let (mut run, packets) = assemble(rec);
    for r in &run.sections {
        super::scenario::warn_violations(&r.violations);
    }
    // A documented switch (docs/performance.md): where a slow run spends its time.
    if std::env::var_os("HC_TRACE_TIMING").is_some() {
        eprintln!(
            "timing: trace, settle and stop {:?}, build {:?}",
            t1 - t0,
            t1.elapsed()
        );
    }
    let save = (!a.no_save).then(|| {
        a.write
            .clone()
            .unwrap_or_else(|| PathBuf::from("captures/exec.pcapng"))
    });
    if let Some(path) = &save {
        let meta = PcapngMeta {
            linktype: run.linktype,
            snaplen: run.snaplen,
            iface: run.iface.clone(),
            iface_description: namespace,
            section_comment: hc_render::annotations::exec_section_comment(&run),
            application: format!("hc-trace {}", env!("CARGO_PKG_VERSION")),
            os: hc_sys::system::os_name(),
        };
        let comments = hc_render::annotations::exec_frame_comments(&run, packets.len());
        match session::save(path, &meta, &packets, &comments) {
            Ok(p) => run.file = Some(p),
            Err(e) => run.file_error = Some(e.to_string()),
        }
        for r in &mut run.sections {
            r.capture.file = run.file.clone();
            r.capture.file_error = run.file_error.clone();
        }
    }
    match a.format {
        StreamFormat::Text => {
            let mut style = hc_render::Style {
                color,
                ..hc_render::Style::default()
            };
            // On a terminal, each timeline fits it, as a scenario run's does.
            if let Some(w) = out::terminal_columns(false) {
                style.width = w;
                style.fit = true;
            }
            out::print(&hc_render::exec::render_text(&run, &style))?
        }
        StreamFormat::Json => {
            let doc = serde_json::to_string_pretty(&hc_render::exec::document(&run))
                .map_err(|e| AppError::io("cannot write the JSON document".into(), e.into()))?;
            out::print(&format!("{doc}\n"))?;
        }
    }
    if run.counters.dropped + run.counters.if_dropped > 0 {
        eprintln!(
            "warning: the capture dropped {} packets: the timelines are incomplete",
            run.counters.dropped + run.counters.if_dropped
        );
    }
    Ok(ExitCode::from(run.exit_code()))
}
