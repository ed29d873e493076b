//! `hc-trace scenario NAME`, `scenario --all` and `hc-trace run FILE`:
//! a scenario run in a network namespace, captured, told and saved.

use crate::cli::{CommonArgs, Format, RunArgs, ScenarioArgs, View};
use crate::error::{AppError, EXIT_FAILED, EXIT_USAGE};
use crate::out;
use crate::session::{self, KernelPlan, Plan};
use crate::sources::capture::CaptureConfig;
use crate::sources::driver::{self, DriverConfig};
use crate::sources::faults;
use crate::sources::files::{read_text, SaveError, SaveTarget};
use crate::sources::scenario::ScenarioSource;
use crate::sources::sockstate;
use hc_core::capfile::pcapng::PcapngMeta;
use hc_core::report::Report;
use hc_core::scenario::{self as scn, predict, Action, Scenario};
use hc_core::session::{assemble, Recording, RECORDING_VERSION};
use hc_render::table::{summary_table, SummaryRow};
use hc_sys::netns::{self, NetnsChoice, SandboxKind};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Kernel buffer for the capture: big enough that a burst of full-size
/// loopback segments never overflows it while the collector thread sleeps.
const CAPTURE_BUFFER: i32 = 64 << 20;
/// Snap length: whole loopback frames (lo's MTU is 65536), so the pcapng keeps payloads.
const SNAPLEN_WHOLE: i32 = 65_600;
/// Headers only (Ethernet + IPv6 with options + TCP with options fit): for
/// large transfers. In immediate mode libpcap's ring has one fixed slot per
/// snap length, so whole 64 KiB frames leave room for only ~1000 packets.
const SNAPLEN_HEADERS: i32 = 256;
/// Above this many bytes written in a scenario, capture headers only.
const BULK_BYTES: u64 = 4 << 20;
/// The kernel trace's ring per CPU for one scenario.
const KTRACE_BUFFER_KB: u32 = 4096;

/// `hc-trace scenario NAME` and `scenario --all`.
pub fn scenario(a: &ScenarioArgs, color: bool) -> Result<ExitCode, AppError> {
    if a.all {
        return run_all(a, color);
    }
    let name = a.name.clone().unwrap_or_default();
    let s = scn::builtin(&name).map_err(|e| super::info::unknown_scenario(&e))?;
    run_one(s, &a.common, color)
}

/// `hc-trace run FILE` (and `--check-only`).
pub fn run_file(a: &RunArgs, color: bool) -> Result<ExitCode, AppError> {
    // Ctrl-C while the file is read (a FIFO, a terminal) ends at once: nothing runs yet.
    let reading = hc_sys::signals::immediate();
    let text = read_text(&a.file, scn::MAX_FILE_BYTES, "a scenario file").map_err(|e| {
        let err = AppError::usage(e.to_string());
        // `hc-trace run shut-wr`: a built-in's name where a file was expected.
        let name = a.file.to_string_lossy();
        match scn::builtin(&name) {
            Ok(_) => err.hint(format!(
                "`{name}` is a built-in scenario: `hc-trace scenario {name}` runs it \
                 (`hc-trace run` is for your own scenario files)"
            )),
            Err(u) if !a.file.exists() => match u.suggestion {
                Some(s) if !name.contains('/') && !name.contains('.') => err.hint(format!(
                    "no such file; did you mean the built-in scenario `{s}`? `hc-trace scenario {s}` runs it"
                )),
                _ => err,
            },
            Err(_) => err,
        }
    })?;
    drop(reading);
    let s = scn::parse_all(&text, &a.file.display().to_string())
        .map_err(|e| AppError::usage(e.to_string()))?;
    if a.check_only {
        let n: usize = s.steps.iter().map(|st| st.expects.len()).sum::<usize>() + s.expects.len();
        out::print(&format!(
            "{}: valid: scenario {}, {}, {}\n",
            a.file.display(),
            s.name,
            hc_render::words::count(s.steps.len() as u64, "step", "steps"),
            hc_render::words::count(n as u64, "expectation", "expectations"),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    run_one(s, &a.common, color)
}

/// The snap length for a scenario: the user's choice, or whole packets
/// unless the scenario writes enough to overflow the ring with them.
fn snaplen_for(scenario: &Scenario, chosen: Option<i32>) -> i32 {
    chosen.unwrap_or(if is_bulk(scenario) {
        SNAPLEN_HEADERS
    } else {
        SNAPLEN_WHOLE
    })
}

/// The scenario writes more than [`BULK_BYTES`] in all.
fn is_bulk(scenario: &Scenario) -> bool {
    let written: u64 = scenario
        .steps
        .iter()
        .map(|s| match s.action {
            Action::Write(n) => n,
            _ => 0,
        })
        .sum();
    written > BULK_BYTES
}

/// The name a scenario's text is parsed under again on replay.
fn scenario_file(s: &Scenario) -> String {
    if s.origin == "built-in" {
        format!("scenarios/{}.scenario", s.name)
    } else {
        s.origin.clone()
    }
}

fn run_one(scn: Scenario, c: &CommonArgs, color: bool) -> Result<ExitCode, AppError> {
    hc_render::check(c.format.to_render(), c.view.to_render())?;
    let questions = predict::questions(&scn);
    if c.questions {
        let mut s = format!(
            "# Predictions for {}: one `LINE ANSWER` per line; give it back with --predict --answers FILE\n",
            scn.name
        );
        for q in &questions {
            s.push_str(&format!("# {}\n{} \n", q.prompt(), q.line));
        }
        out::print(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Predictions are taken before anything runs (and before any thread
    // exists), so Ctrl-C at the prompt ends at once (exit 130).
    let asking = hc_sys::signals::immediate();
    let answers = if c.predict {
        let got = match &c.answers {
            Some(f) => read_text(f, scn::MAX_FILE_BYTES, "an answer file")
                .map_err(|e| e.to_string())
                .and_then(|t| predict::read_answers(&questions, &t, &f.display().to_string())),
            None if std::io::stdin().is_terminal() => predict::ask(
                &questions,
                &mut std::io::stdin().lock(),
                &mut std::io::stderr(),
            ),
            None => Err(
                "--predict asks at a terminal; without one, give the answers with --answers FILE \
                 (--questions prints the questions)"
                    .into(),
            ),
        };
        Some(got.map_err(AppError::usage)?)
    } else {
        None
    };
    drop(asking);
    // The capture's file: checked (a FIFO: opened) before anything runs.
    let save = prepare_save(c, &scn.name)?;
    let capture_on_stdout = matches!(&save, Some(Ok(t)) if t.is_stdout());
    let choice = match &c.netns {
        Some(n) => NetnsChoice::Named(n.clone()),
        None => NetnsChoice::Private,
    };
    // Fault steps need nft/iptables: say so before anything runs.
    faults::check_tools(&scn::faults(&scn)).map_err(AppError::fault)?;
    // Before any thread: unshare(CLONE_NEWUSER) refuses multi-threaded processes.
    let sandbox = netns::enter(&choice).map_err(AppError::sandbox)?;
    let namespace = sandbox.describe();
    // A named namespace outlives runs: what a killed run left there goes first.
    if let SandboxKind::Named(name) = &sandbox.kind {
        faults::remove_stale(name).map_err(AppError::fault)?;
        check_port_free(name, c.port)?;
    }
    let server = driver::loopback(c.ipv6, c.port);
    let mut dcfg = DriverConfig::new(server);
    dcfg.read_wait = Duration::from_millis(c.read_wait);
    dcfg.settle = Duration::from_millis(c.settle);
    let bulk = is_bulk(&scn);
    let plan = Plan {
        capture: CaptureConfig {
            iface: "lo".into(),
            filter: format!("tcp port {}", c.port),
            snaplen: snaplen_for(&scn, c.snaplen),
            buffer_bytes: CAPTURE_BUFFER,
            // Large transfers: blocks of packets, one wakeup per block, instead of
            // one per packet (blocks are handed over at most 20 ms late, well
            // within the settle time the driver waits for).
            immediate: !bulk || dcfg.settle < Duration::from_millis(50),
        },
        // Root on the host (not root of a user namespace) may read tracefs.
        kernel: if c.no_kernel {
            Err("switched off with --no-kernel".into())
        } else if matches!(sandbox.kind, SandboxKind::PrivateRootless) {
            Err("reading kernel tracepoints needs root (run with sudo); without it the timeline shows what calls and the capture saw".into())
        } else {
            Ok(KernelPlan {
                port: Some(c.port),
                buffer_kb: KTRACE_BUFFER_KB,
            })
        },
        quiet: dcfg.settle,
        quiet_max: dcfg.settle_max,
    };
    let source = ScenarioSource {
        scenario: &scn,
        driver: dcfg.clone(),
        port: c.port,
        ipv6: c.ipv6,
    };
    let captured = session::run(&plan, source)?;
    let mut driven = captured.out;
    let mut packets = captured.packets;
    if let SandboxKind::Named(name) = &sandbox.kind {
        let (kept, left) =
            crate::sources::scenario::keep_own(captured.linktype, packets, &driven.report.calls);
        packets = kept;
        if left.segments > 0 {
            eprintln!(
                "note: left out {} segments of {} connections on port {} that this run did not make (namespace {name} is shared)",
                left.segments, left.connections, c.port
            );
        }
    }
    // The sides' threads may end now that the kernel trace was read.
    drop(std::mem::take(&mut driven.report.open));
    let rec = Recording {
        version: RECORDING_VERSION,
        scenario_text: scn.text.clone(),
        scenario_file: scenario_file(&scn),
        origin: scn.origin.clone(),
        server,
        namespace: namespace.clone(),
        read_wait_ms: dcfg.read_wait.as_millis() as u64,
        settle_ms: dcfg.settle.as_millis() as u64,
        iface: plan.capture.iface.clone(),
        filter: plan.capture.filter.clone(),
        snaplen: captured.snaplen,
        linktype: captured.linktype,
        packets,
        counters: captured.counters,
        calls: driven.report.calls,
        kernel: captured.kernel,
        notes: driven.report.notes,
        table: driven.report.table,
        held: driven.held,
        drops: driven.drops,
        final_states: driven.report.final_states,
        problems: driven.report.problems,
        interrupted: driven.interrupted_by.map(str::to_string),
    };
    if let Some(path) = &c.record {
        session::record(path, &rec)?;
    }
    let mut report = assemble(&rec, &scn);
    warn_violations(&report.violations);
    let mut save_failed = None;
    if let Some(target) = save {
        let meta = PcapngMeta {
            linktype: rec.linktype,
            snaplen: rec.snaplen,
            iface: rec.iface.clone(),
            iface_description: format!("loopback, {namespace}"),
            section_comment: hc_render::annotations::section_comment(&report),
            application: format!("hc-trace {}", env!("CARGO_PKG_VERSION")),
            os: hc_sys::system::os_name(),
        };
        let comments = hc_render::annotations::frame_comments(&report, rec.packets.len());
        match target.and_then(|t| session::save_to(t, &meta, &rec.packets, &comments)) {
            Ok(p) => report.capture.file = Some(p),
            Err(e) => {
                report.capture.file_error = Some(e.to_string());
                save_failed = Some(e);
            }
        }
    }
    if let Some(a) = &answers {
        report.predictions = predict::score(&questions, a, &report);
    }
    let mut style = hc_render::Style {
        color,
        fold: !c.no_fold,
        ..hc_render::Style::default()
    };
    // On a terminal, the timeline fits it; a file or a pipe gets it whole.
    let timeline = c.format == Format::Text && c.view == View::Timeline;
    let columns = timeline
        .then(|| out::terminal_columns(c.out.is_some()))
        .flatten();
    if let Some(w) = columns {
        style.width = w;
        style.fit = true;
    }
    let text = hc_render::output(&report, c.format.to_render(), c.view.to_render(), &style)?;
    if capture_on_stdout && c.out.is_none() {
        // Standard output carries the pcapng (`-w - | wireshark -k -i -`).
        out::print_stderr(&text)?;
    } else {
        out::emit(&text, c.out.as_deref())?;
    }
    if let Some(w) = columns {
        let needed = hc_render::text::needed_width(&report, &style);
        // A child of `scenario --all` leaves the hint to its parent.
        if needed > w && c.summary_to.is_none() {
            eprintln!("{}", out::narrow_hint(w, Some(needed)));
        }
    }
    if let Some(p) = &c.summary_to {
        let row = SummaryRow::from_report(&report);
        if let Err(e) = std::fs::write(p, serde_json::to_string(&row).unwrap_or_default()) {
            eprintln!("warning: cannot write the summary to {}: {e}", p.display());
        }
    }
    let save_failed = match save_failed {
        Some(e) if e.reader_gone() => {
            eprintln!("note: {e}");
            false
        }
        Some(e) => {
            AppError::save(&e).report();
            true
        }
        None => false,
    };
    Ok(exit_of(&report, save_failed))
}

/// A named namespace is shared: a port another program (or another run)
/// uses there would mix its connections into this run's and make its
/// bind() fail. Said before anything runs, with a free port to use.
fn check_port_free(namespace: &str, port: u16) -> Result<(), AppError> {
    let users = sockstate::port_users(port);
    if users.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = users
        .iter()
        .take(3)
        .map(|s| {
            if s.state == hc_core::model::TcpState::LISTEN {
                format!("a listener on {}", s.local)
            } else {
                format!("{} {} ↔ {}", s.state.name(), s.local, s.remote)
            }
        })
        .collect();
    let free = (port.saturating_add(1)..=u16::MAX).find(|p| sockstate::port_users(*p).is_empty());
    let mut e = AppError::env(format!(
        "port {port} is in use in namespace {namespace} ({}); choose --port",
        shown.join(", ")
    ));
    if let Some(p) = free {
        e = e.hint(format!("--port {p} is free there"));
    }
    Err(e)
}

/// Where the capture will be saved, checked before anything runs (a FIFO
/// is opened now): None with --no-save. A path given with -w that cannot be
/// written is an error (exit 2) now; the default one is said now as a
/// warning, the run goes on, and it ends with exit 2.
fn prepare_save(
    c: &CommonArgs,
    name: &str,
) -> Result<Option<Result<SaveTarget, SaveError>>, AppError> {
    if c.no_save {
        return Ok(None);
    }
    if let Some(path) = &c.write {
        return match SaveTarget::prepare(path) {
            Ok(t) => Ok(Some(Ok(t))),
            Err(e) => Err(AppError::save(&e)),
        };
    }
    let path = PathBuf::from(format!("captures/{name}.pcapng"));
    Ok(Some(SaveTarget::prepare(&path).inspect_err(|e| {
        eprintln!(
            "warning: the capture cannot be saved: {e}\n  the run goes on, shows what it saw, and ends with exit 2 \
             (-w FILE saves it elsewhere, --no-save saves nothing)"
        );
    })))
}

fn exit_of(report: &Report, save_failed: bool) -> ExitCode {
    crate::error::run_exit(report.interrupted.as_deref(), save_failed, report.ok())
}

/// Runs one child to its end, passing on a SIGINT/SIGTERM this process gets
/// (a terminal's Ctrl-C reaches the child anyway; `kill PID` does not).
fn run_child(mut cmd: std::process::Command) -> std::io::Result<(i32, Vec<u8>)> {
    use std::io::Read;
    let mut child = cmd.spawn()?;
    // Read stdout on a thread so a full pipe never stalls the child.
    let reader = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        })
    });
    // A second signal ends this process at once: pass it on first, so the
    // child stops at once too (`kill PID` twice reaches only this process).
    let pid = child.id() as i32;
    let _second = hc_sys::signals::on_second_signal(move || {
        let _ = hc_sys::signals::kill(pid, hc_sys::signals::SIGINT);
        None
    });
    let mut forwarded = false;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if let (Some(sig), false) = (hc_sys::signals::caught(), forwarded) {
            let signo = if sig == "SIGTERM" {
                hc_sys::signals::SIGTERM
            } else {
                hc_sys::signals::SIGINT
            };
            let _ = hc_sys::signals::kill(child.id() as i32, signo);
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    Ok((status.code().unwrap_or(i32::from(EXIT_USAGE)), stdout))
}

/// Runs every built-in scenario, each in a child process of its own so each
/// gets a fresh namespace (a process can only enter one before its threads
/// start), then prints the summary table.
fn run_all(a: &ScenarioArgs, color: bool) -> Result<ExitCode, AppError> {
    let exe = std::env::current_exe()
        .map_err(|e| AppError::env(format!("cannot find my own executable: {e}")))?;
    let c = &a.common;
    if matches!(c.format, Format::Mermaid | Format::Svg) || c.out.is_some() {
        return Err(AppError::usage(
            "--format mermaid/svg and --out draw one run; give a scenario name instead of --all",
        ));
    }
    hc_render::check(c.format.to_render(), c.view.to_render())?;
    // -w names the directory the runs are saved in, checked before the first.
    if let Some(dir) = &c.write {
        if dir == std::path::Path::new("-") {
            return Err(AppError::usage(
                "-w - streams one run's capture; give a scenario name instead of --all",
            ));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(AppError::usage(format!(
                "with --all, -w names a directory (each run is saved as NAME.pcapng in it); {} is not one",
                dir.display()
            )));
        }
    }
    let colour = if color { "always" } else { "never" };
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    let mut worst = 0u8;
    let mut interrupted = None;
    for name in scn::names() {
        let summary = std::env::temp_dir().join(format!(
            "hc-trace-summary-{}-{name}.json",
            std::process::id()
        ));
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "--color",
            colour,
            "scenario",
            name,
            "--port",
            &c.port.to_string(),
        ]);
        cmd.args([
            "--read-wait",
            &c.read_wait.to_string(),
            "--settle",
            &c.settle.to_string(),
        ]);
        cmd.arg("--summary-to").arg(&summary);
        if c.view == View::Ladder {
            cmd.args(["--view", "ladder"]);
        }
        if c.format == Format::Json {
            cmd.args(["--format", "json"]);
            cmd.stdout(std::process::Stdio::piped());
        }
        if c.ipv6 {
            cmd.arg("-6");
        }
        if let Some(n) = &c.netns {
            cmd.args(["--netns", n]);
        }
        if c.no_save {
            cmd.arg("--no-save");
        } else if let Some(dir) = &c.write {
            cmd.arg("-w").arg(dir.join(format!("{name}.pcapng")));
        }
        let (code, stdout) = run_child(cmd)
            .map_err(|e| AppError::env(format!("cannot run {}: {e}", exe.display())))?;
        if c.format == Format::Json {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&stdout) {
                docs.push(v);
            }
        } else {
            out::print("\n")?;
        }
        let row = std::fs::read_to_string(&summary)
            .ok()
            .and_then(|s| serde_json::from_str::<SummaryRow>(&s).ok())
            .unwrap_or_else(|| SummaryRow {
                scenario: name.to_string(),
                key: "-".into(),
                why: format!("exit {code}"),
                ..Default::default()
            });
        let _ = std::fs::remove_file(&summary);
        rows.push(row);
        if code == 130 || code == 143 {
            interrupted = Some(code as u8);
            break;
        }
        worst = worst.max(match code {
            0 => 0,
            1 => EXIT_FAILED,
            _ => EXIT_USAGE,
        });
        // Nobody reads the output any more (`| head`): no point in running the rest.
        if out::reader_gone() {
            return Ok(ExitCode::from(worst));
        }
    }
    match c.format {
        // Refused above: a picture is of one run.
        Format::Text | Format::Mermaid | Format::Svg => {
            let style = hc_render::Style {
                color,
                ..hc_render::Style::default()
            };
            out::print(&format!("\n{}", summary_table(&rows, &style)))?;
            // The runs above were folded to a narrow terminal: say where
            // a picture of each fits.
            if let Some(w) = out::terminal_columns(false).filter(|w| *w < 140) {
                if c.format == Format::Text && c.view == View::Timeline {
                    eprintln!("{}", out::narrow_hint(w, None));
                }
            }
        }
        Format::Json => {
            let doc = serde_json::json!({"schema": 1, "runs": docs, "summary": rows});
            out::print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ))?;
        }
    }
    if let Some(code) = interrupted {
        if c.format == Format::Text {
            out::print("interrupted: the table above has the scenarios run until then\n")?;
        }
        return Ok(ExitCode::from(code));
    }
    Ok(ExitCode::from(worst))
}

/// The story's self-check found a broken invariant: say so on standard
/// error (the output is still printed; JSON carries it in `self_check`).
pub fn warn_violations(v: &[hc_core::check::Violation]) {
    for x in v {
        eprintln!("warning: story self-check: {x}");
    }
}
