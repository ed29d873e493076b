//! The command line, with help meant to teach a first-time user.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const EXIT_HELP: &str = "\
Exit status:
  0    the scenario ran as written and everything was captured
  1    the scenario could not be run as written (a step's descriptor was
       never created, a step did not finish), or the capture dropped packets
  2    usage or environment error (bad arguments, unknown scenario, a bad
       scenario file, no privileges for a network namespace or a capture)
  130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM. What was captured until
       then is still shown and saved.

Privileges: each run happens in a private network namespace with only
`lo`. As root (sudo) that just works; without root, hc-trace uses an
unprivileged user namespace where the kernel allows it.";

#[derive(Parser, Debug)]
#[command(
    name = "hc-trace",
    version,
    about = "Shows, packet by packet, what each socket call puts on the wire",
    long_about = "hc-trace runs TCP half-close scenarios (shutdown(SHUT_WR), close() with unread data, \
SO_LINGER 0, writing after the peer closed, ...) between a client and a server inside a private network \
namespace, captures the traffic with libpcap and prints a timeline in which every segment (SYN, data, FIN, \
ACK, RST) names the call that caused it, or the kernel segment it answers.\n\n\
Start with:  sudo hc-trace scenario shut-wr\n\
See all:     hc-trace list",
    after_help = EXIT_HELP
)]
pub struct Cli {
    /// When to colour the output: auto (only on a terminal, and not when NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a built-in scenario and print its annotated timeline
    #[command(after_help = EXIT_HELP)]
    Scenario(ScenarioArgs),
    /// Run a scenario written in a file (same format as the built-in ones under scenarios/)
    #[command(after_help = EXIT_HELP)]
    Run(RunArgs),
    /// List the built-in scenarios and what each one teaches
    List,
    /// Trace a program's socket calls and show the segments each one put on the wire
    #[command(after_help = EXEC_HELP)]
    Exec(ExecArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ScenarioArgs {
    /// Which scenario (see `hc-trace list`), e.g. shut-wr
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,

    /// Run every built-in scenario, each in its own namespace, and end with a summary table
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The scenario file
    pub file: PathBuf,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Output format: text (an annotated timeline) or json (one document, schema 1, see README)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Save the annotated capture here (default: captures/NAME.pcapng; directories are created)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Do not save a pcapng file
    #[arg(long, conflicts_with = "write")]
    pub no_save: bool,

    /// The server's port inside the namespace
    #[arg(long, default_value_t = 5555, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Run inside the existing named namespace /run/netns/NAME (made with `ip netns add NAME`)
    /// instead of a fresh private one, so you can watch live: `sudo ip netns exec NAME tshark -i lo`
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,

    /// Use IPv6 (::1) instead of 127.0.0.1
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// How long a read waits for data before it is recorded as "would block", in ms
    #[arg(long, default_value_t = 250, value_name = "MS")]
    pub read_wait: u64,

    /// How long the wire must be quiet after a step before the next one, in ms
    #[arg(long, default_value_t = 60, value_name = "MS")]
    pub settle: u64,

    /// (internal) write a one-line summary of the run here, for `--all`
    #[arg(long, hide = true, value_name = "FILE")]
    pub summary_to: Option<PathBuf>,
}

pub const EXEC_HELP: &str = "\
Examples:
  hc-trace exec -- sh -c './server & sleep 0.2; ./client'
  hc-trace exec --timeout 3 -- python3 examples/exec/pair.py
  sudo hc-trace exec --host -- curl -s http://example.com/

The program's standard input, output and error pass through; the timeline
follows once it has ended (with every process it started). Each connection
gets a section of its own; each call shows its process id.

Exit status:
  the program's own: its exit code, or 128 + N when signal N ended it
  (--timeout ends it with SIGTERM: 143, or SIGKILL: 137)
  2    hc-trace itself failed: bad usage, the program was not found, no
       network namespace, no capture, ptrace not allowed

Privileges: by default the program runs in a private network namespace with
only `lo` (as root, or rootless where user namespaces are allowed), which
suits a script that starts both a server and a client. --host runs it in the
host's network namespace and captures on `any`, which needs root.";

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Output format: text (one annotated timeline per connection) or json
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Save the annotated capture here (default: captures/exec.pcapng)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Do not save a pcapng file
    #[arg(long, conflicts_with = "write")]
    pub no_save: bool,

    /// Run the program in the host's network namespace (captures on `any`, needs root)
    #[arg(long)]
    pub host: bool,

    /// Capture on this interface instead (with --host; default `any`)
    #[arg(short = 'i', long = "iface", value_name = "IFACE", requires = "host")]
    pub iface: Option<String>,

    /// Stop the program after this many seconds: SIGTERM, then SIGKILL 2 s later
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// The program and its arguments, after `--`
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    pub program: Vec<std::ffi::OsString>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}
