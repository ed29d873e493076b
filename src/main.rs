//! hc-trace's entry point.
//!
//! The network namespace is entered first, in a plain `fn main`, before any
//! thread exists: unshare(CLONE_NEWUSER) fails once a process has a second
//! thread, and unshare(CLONE_NEWNET) would move only the calling thread. The
//! tokio runtime is built afterwards.

use clap::Parser;
use hc_trace::cli::{Cli, ColorChoice, Command, CommonArgs, Format, ScenarioArgs};
use hc_trace::render::text::{summary_table, SummaryRow};
use hc_trace::render::{json, text};
use hc_trace::run::{run_scenario, RunOptions};
use hc_trace::sandbox::{self, NetnsChoice};
use hc_trace::scenario::{self, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::watch;

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.color {
        ColorChoice::Always => colored::control::set_override(true),
        ColorChoice::Never => colored::control::set_override(false),
        ColorChoice::Auto => {}
    }
    match cli.command {
        Command::List => {
            list();
            ExitCode::SUCCESS
        }
        Command::Scenario(a) if a.all => run_all(&a),
        Command::Scenario(a) => {
            let name = a.name.clone().unwrap_or_default();
            match scenario::builtin(&name) {
                Ok(s) => run_one(s, &a.common),
                Err(e) => {
                    eprintln!("error: {e}");
                    if let Some(s) = e.suggestion {
                        eprintln!("  did you mean `{s}`?");
                    }
                    eprintln!(
                        "  the built-in scenarios are: {}",
                        scenario::names().join(", ")
                    );
                    eprintln!("  (`hc-trace list` says what each one teaches; `hc-trace run FILE` runs your own)");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        // Enters its namespace itself, before any thread: see the module comment.
        Command::Exec(a) => ExitCode::from(hc_trace::exec::command(&a)),
        Command::Run(a) => {
            let text = match std::fs::read_to_string(&a.file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", a.file.display());
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            match scenario::parse(&text, &a.file.display().to_string()) {
                Ok(s) => run_one(s, &a.common),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
    }
}

fn list() {
    println!("Built-in scenarios (run one with `sudo hc-trace scenario NAME`):\n");
    for s in scenario::catalog() {
        println!("  {:<18} {}", s.name, s.teaches);
    }
    println!("\nEach is a short script of socket calls; `scenarios/NAME.scenario` in the source shows its steps.");
}

fn run_one(scn: Scenario, c: &CommonArgs) -> ExitCode {
    let choice = match &c.netns {
        Some(n) => NetnsChoice::Named(n.clone()),
        None => NetnsChoice::Private,
    };
    // Before any thread: see the module comment.
    let sandbox = match sandbox::enter(&choice) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let save = (!c.no_save).then(|| {
        c.write
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("captures/{}.pcapng", scn.name)))
    });
    let opts = RunOptions {
        port: c.port,
        ipv6: c.ipv6,
        save,
        namespace: sandbox.describe(),
        read_wait: Duration::from_millis(c.read_wait),
        settle: Duration::from_millis(c.settle),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = rt.block_on(async {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(forward_signals(tx));
        run_scenario(&scn, &opts, rx).await
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match c.format {
        Format::Text => print!("{}", text::render(&report)),
        Format::Json => match serde_json::to_string_pretty(&json::document(&report)) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    }
    if let Some(p) = &c.summary_to {
        let row = SummaryRow::from_report(&report);
        if let Err(e) = std::fs::write(p, serde_json::to_string(&row).unwrap_or_default()) {
            eprintln!("warning: cannot write the summary to {}: {e}", p.display());
        }
    }
    match report.interrupted.as_deref() {
        Some("SIGTERM") => ExitCode::from(143),
        Some(_) => ExitCode::from(130),
        None if report.ok() => ExitCode::SUCCESS,
        None => ExitCode::from(EXIT_FAILED),
    }
}

/// Turns SIGINT/SIGTERM into a cancel signal for the driver, so the run stops
/// between steps and still renders and saves what it captured.
async fn forward_signals(tx: watch::Sender<Option<&'static str>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    let _ = tx.send(Some(name));
}

/// Runs every built-in scenario, each in a child process of its own so each
/// gets a fresh namespace (a process can only enter one before its threads
/// start), then prints the summary table.
fn run_all(a: &ScenarioArgs) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find my own executable: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let c = &a.common;
    let colour = if colored::control::SHOULD_COLORIZE.should_colorize() {
        "always"
    } else {
        "never"
    };
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    let mut worst = 0u8;
    for name in scenario::names() {
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
        let out = match cmd.output() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: cannot run {}: {e}", exe.display());
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let code = out.status.code().unwrap_or(EXIT_USAGE as i32);
        if c.format == Format::Json {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                docs.push(v);
            }
        } else {
            println!();
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
            return ExitCode::from(code as u8);
        }
        worst = worst.max(match code {
            0 => 0,
            1 => EXIT_FAILED,
            _ => EXIT_USAGE,
        });
    }
    match c.format {
        Format::Text => print!("\n{}", summary_table(&rows)),
        Format::Json => {
            let doc = serde_json::json!({"schema": 1, "runs": docs, "summary": rows});
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    ExitCode::from(worst)
}
