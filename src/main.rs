//! hc-trace's entry point.
//!
//! The network namespace is entered first, in a plain `fn main`, before any
//! thread exists: unshare(CLONE_NEWUSER) fails once a process has a second
//! thread, and unshare(CLONE_NEWNET) would move only the calling thread. The
//! tokio runtime is built afterwards.

use clap::Parser;
use hc_trace::cli::{Cli, ColorChoice, Command, CommonArgs, Format, ScenarioArgs, View};
use hc_trace::interrupt;
use hc_trace::predict;
use hc_trace::render;
use hc_trace::render::text::{summary_table, SummaryRow};
use hc_trace::run::{run_scenario, RunOptions};
use hc_trace::sandbox::{self, NetnsChoice, SandboxKind};
use hc_trace::scenario::{self, Scenario};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::watch;

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    interrupt::install();
    let cli = Cli::parse();
    match cli.color {
        ColorChoice::Always => colored::control::set_override(true),
        ColorChoice::Never => colored::control::set_override(false),
        ColorChoice::Auto => {}
    }
    // A file is not a terminal: no colour escapes in it unless asked for.
    if cli.command.common().is_some_and(|c| c.out.is_some()) && cli.color != ColorChoice::Always {
        colored::control::set_override(false);
    }
    match cli.command {
        Command::List => {
            list();
            ExitCode::SUCCESS
        }
        Command::Explain(a) => explain(&a.name),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "hc-trace", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                // `hc-trace man | head` is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the manual page: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Command::Scenario(a) if a.all => run_all(&a),
        Command::Scenario(a) => {
            let name = a.name.clone().unwrap_or_default();
            match scenario::builtin(&name) {
                Ok(s) => run_one(s, &a.common),
                Err(e) => unknown_scenario(&e),
            }
        }
        Command::Analyze(a)
            if a.conn.is_none() && matches!(a.format, Format::Mermaid | Format::Svg) =>
        {
            eprintln!("error: --format mermaid and svg draw one connection\n  hint: pick one from the summary table with --conn ID");
            ExitCode::from(EXIT_USAGE)
        }
        Command::Watch(a) if matches!(a.format, Format::Mermaid | Format::Svg) => {
            eprintln!("error: watch prints text or json\n  hint: save the capture, then draw a connection with `hc-trace analyze FILE --conn ID --format mermaid`");
            ExitCode::from(EXIT_USAGE)
        }
        Command::Analyze(a) => {
            let opts = hc_trace::analyze::AnalyzeOptions {
                files: a.files,
                filter: a.filter.to_filter(),
                conn: a.conn,
                format: a.format,
                write: a.write,
            };
            match hc_trace::analyze::analyze(&opts, std::io::stdout().lock()) {
                hc_trace::analyze::Outcome::Ok => ExitCode::SUCCESS,
                hc_trace::analyze::Outcome::BadInput => ExitCode::from(EXIT_USAGE),
                hc_trace::analyze::Outcome::Interrupted(code) => ExitCode::from(code),
            }
        }
        Command::Watch(a) => ExitCode::from(hc_trace::analyze::watch::run(&a)),
        Command::GenCapture(a) => {
            match hc_trace::analyze::gen::write_capture(&a.out, a.mib, a.seed) {
                Ok(s) => {
                    eprintln!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        // Enters its namespace itself, before any thread: see the module comment.
        Command::Exec(a) if matches!(a.format, Format::Mermaid | Format::Svg) => {
            eprintln!("error: exec prints text or json (one timeline per connection)\n  hint: save the capture with -w, then draw one connection with `hc-trace analyze FILE --conn ID --format svg`");
            ExitCode::from(EXIT_USAGE)
        }
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
                Ok(s) if a.check_only => {
                    let n: usize =
                        s.steps.iter().map(|st| st.expects.len()).sum::<usize>() + s.expects.len();
                    println!(
                        "{}: valid: scenario {}, {} steps, {n} expectations",
                        a.file.display(),
                        s.name,
                        s.steps.len()
                    );
                    ExitCode::SUCCESS
                }
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

/// A name that is not a built-in scenario: say so, suggest the closest, list them. Exit 2.
fn unknown_scenario(e: &scenario::UnknownScenario) -> ExitCode {
    eprintln!("error: {e}");
    if let Some(s) = &e.suggestion {
        eprintln!("  did you mean `{s}`?");
    }
    eprintln!(
        "  the built-in scenarios are: {}",
        scenario::names().join(", ")
    );
    eprintln!("  (`hc-trace list` says what each one teaches; `hc-trace run FILE` runs your own)");
    ExitCode::from(EXIT_USAGE)
}

/// Prints the theory of a built-in scenario, or says which name was meant.
fn explain(name: &str) -> ExitCode {
    match hc_trace::explain::explain(name) {
        Ok(t) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => unknown_scenario(&e),
    }
}

/// Prints the rendered run, or saves it to --out (handed to the sudo user like the capture).
fn emit(text: &str, out: Option<&std::path::Path>) -> std::io::Result<()> {
    let Some(path) = out else {
        print!("{text}");
        return Ok(());
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)?;
    let _ = hc_trace::ownership::give_to_invoking_user(path);
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn run_one(scn: Scenario, c: &CommonArgs) -> ExitCode {
    if let Err(e) = render::check(c.format, c.view) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let questions = predict::questions(&scn);
    if c.questions {
        println!("# Predictions for {}: one `LINE ANSWER` per line; give it back with --predict --answers FILE", scn.name);
        for q in &questions {
            println!("# {}", q.prompt());
            println!("{} ", q.line);
        }
        return ExitCode::SUCCESS;
    }
    // Predictions are taken before anything runs (and before any thread exists).
    let answers = if c.predict {
        let got = match &c.answers {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()))
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
        match got {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        None
    };
    let choice = match &c.netns {
        Some(n) => NetnsChoice::Named(n.clone()),
        None => NetnsChoice::Private,
    };
    // Fault steps need nft/iptables: say so before anything runs.
    if let Err(e) = hc_trace::faults::check_tools(&scenario::faults(&scn)) {
        eprintln!("error: {e}\n  hint: {}", e.hint());
        return ExitCode::from(EXIT_USAGE);
    }
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
        snaplen: c.snaplen,
        // Root on the host (not root of a user namespace) may read tracefs.
        kernel_trace: !matches!(sandbox.kind, SandboxKind::PrivateRootless) && !c.no_kernel,
        kernel_trace_off_why: if c.no_kernel {
            "switched off with --no-kernel".into()
        } else {
            "reading kernel tracepoints needs root (run with sudo); without it the timeline shows what calls and the capture saw".into()
        },
        record: c.record.clone(),
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
    let mut report = report;
    if let Some(a) = &answers {
        report.predictions = predict::score(&questions, a, &report);
    }
    match render::output(&report, c.format, c.view, !c.no_fold) {
        Ok(text) => {
            if let Err(e) = emit(&text, c.out.as_deref()) {
                let to = c.out.as_deref().unwrap_or(std::path::Path::new("-"));
                eprintln!("error: cannot write {}: {e}", to.display());
                return ExitCode::from(EXIT_USAGE);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if let Some(p) = &c.summary_to {
        let row = SummaryRow::from_report(&report);
        if let Err(e) = std::fs::write(p, serde_json::to_string(&row).unwrap_or_default()) {
            eprintln!("warning: cannot write the summary to {}: {e}", p.display());
        }
    }
    match report.interrupted.as_deref() {
        Some(sig) => ExitCode::from(interrupt::exit_code(sig)),
        None if report.ok() => ExitCode::SUCCESS,
        None => ExitCode::from(EXIT_FAILED),
    }
}

/// Passes a caught SIGINT/SIGTERM on to the driver, so the run stops
/// between steps and still renders and saves what it captured.
async fn forward_signals(tx: watch::Sender<Option<&'static str>>) {
    loop {
        if let Some(sig) = interrupt::caught() {
            let _ = tx.send(Some(sig));
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    let mut forwarded = false;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if let (Some(sig), false) = (interrupt::caught(), forwarded) {
            let signo = if sig == "SIGTERM" {
                libc::SIGTERM
            } else {
                libc::SIGINT
            };
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(child.id() as i32, signo) };
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    Ok((status.code().unwrap_or(EXIT_USAGE as i32), stdout))
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
    if matches!(c.format, Format::Mermaid | Format::Svg) || c.out.is_some() {
        eprintln!("error: --format mermaid/svg and --out draw one run; give a scenario name instead of --all");
        return ExitCode::from(EXIT_USAGE);
    }
    if let Err(e) = render::check(c.format, c.view) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let colour = if colored::control::SHOULD_COLORIZE.should_colorize() {
        "always"
    } else {
        "never"
    };
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    let mut worst = 0u8;
    let mut interrupted = None;
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
        let (code, stdout) = match run_child(cmd) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: cannot run {}: {e}", exe.display());
                return ExitCode::from(EXIT_USAGE);
            }
        };
        if c.format == Format::Json {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&stdout) {
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
            interrupted = Some(code as u8);
            break;
        }
        worst = worst.max(match code {
            0 => 0,
            1 => EXIT_FAILED,
            _ => EXIT_USAGE,
        });
    }
    match c.format {
        // Refused above: a picture is of one run.
        Format::Text | Format::Mermaid | Format::Svg => print!("\n{}", summary_table(&rows)),
        Format::Json => {
            let doc = serde_json::json!({"schema": 1, "runs": docs, "summary": rows});
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    if let Some(code) = interrupted {
        if c.format == Format::Text {
            println!("interrupted: the table above has the scenarios run until then");
        }
        return ExitCode::from(code);
    }
    ExitCode::from(worst)
}
