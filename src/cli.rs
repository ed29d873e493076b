//! The command line, with help meant to teach a first-time user.

use crate::sources::driver::{SETTLE_MAX_MS, STEP_MAX_MS};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The longest --read-wait: a read that waits longer than the driver waits
/// for a step would be overtaken by the next step, reordering the story.
pub const READ_WAIT_MAX_MS: u64 = STEP_MAX_MS - 1000;

pub const EXIT_HELP: &str = "\
Exit status:
  0    the scenario ran as written, everything was captured, and the
       capture was saved (or --no-save)
  1    the scenario could not be run as written (a step's descriptor was
       never created, a step did not finish, bind() or listen() failed, a
       fault could not be made), an `expect` line was not met, or the
       capture dropped packets or bytes
  2    usage or environment error (bad arguments, unknown scenario, a bad
       scenario file, no privileges for a network namespace or a capture,
       the --port in use in the --netns namespace), or the capture could
       not be saved: an explicit -w that cannot be written is refused
       before the run; a default captures/NAME.pcapng that cannot be
       written is warned about first, the run goes on, and it exits 2
  128+N  stopped by signal N: 130 for Ctrl-C (SIGINT), 143 for SIGTERM.
       During a run, what was captured until then is still shown and
       saved; at a prompt or while reading input it ends at once; a second
       Ctrl-C ends the run at once after removing its firewall rules,
       tracing instance and unfinished file (nothing is shown or saved).

-w: a regular file is replaced atomically; a FIFO, a character device or
`-` (standard output: `-w - | wireshark -k -i -`; the timeline then goes to
standard error) is written through; a symbolic link is followed, never
replaced; a directory, socket or block device is refused.

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
    /// Say what the standards (RFC 9293, RFC 1122, RFC 2525) say about a built-in scenario
    Explain(ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff, for man(1)) to standard output
    Man,
    /// Explain every FIN and RST in capture files (pcap, pcapng): who closed, half-closes, inferred RST reasons
    #[command(after_help = ANALYZE_EXIT_HELP)]
    Analyze(AnalyzeArgs),
    /// Live: print each connection's close story as it completes; the summary table on Ctrl-C
    #[command(after_help = WATCH_EXIT_HELP)]
    Watch(WatchArgs),
    /// Trace a program's socket calls and show the segments each one put on the wire
    #[command(after_help = EXEC_HELP)]
    Exec(ExecArgs),
    /// Trace a running process's sockets through eBPF (root, host namespace) until it ends,
    /// --duration S, or Ctrl-C: the same timelines, JSON and pcapng as exec
    Attach(AttachArgs),
}

impl Command {
    /// The options shared by the commands that run a scenario.
    pub fn common(&self) -> Option<&CommonArgs> {
        match self {
            Command::Scenario(a) => Some(&a.common),
            Command::Run(a) => Some(&a.common),
            _ => None,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ExplainArgs {
    /// Which built-in scenario (see `hc-trace list`), e.g. shut-wr
    pub name: String,
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

    /// Check the file (steps and expectations) without running it; exit 0 if valid, 2 if not
    #[arg(long)]
    pub check_only: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Output format: text (for the terminal, see --view), json (one document, schema 2, see
    /// docs/json.md), mermaid (a sequenceDiagram to paste into Markdown) or svg (a ladder diagram to hand in)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// How --format text draws the run: timeline (one line per call or segment, with every
    /// cause in full) or ladder (the two-column sequence diagram of TCP/IP textbooks, 80 columns)
    #[arg(long, value_enum, default_value_t = View::Timeline)]
    pub view: View,

    /// Write the output (text, JSON, Mermaid or SVG) to FILE instead of standard output
    /// (directories are created). Not the capture: that is -w/--write.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Save the annotated capture here (default: captures/NAME.pcapng; directories are
    /// created), checked before the run; a FIFO, a device or `-` (standard output) is
    /// written through, never replaced (see "-w" below)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Do not save a pcapng file
    #[arg(long, conflicts_with = "write")]
    pub no_save: bool,

    /// The server's port inside the namespace (in a --netns namespace it must be free there)
    #[arg(long, default_value_t = 5555, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Run inside the existing named namespace /run/netns/NAME (made with `ip netns add NAME`)
    /// instead of a fresh private one, so you can watch live: `sudo ip netns exec NAME tshark -i lo`.
    /// Shared: the run keeps only its own connections, and removes rules killed runs left there
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,

    /// Use IPv6 (::1) instead of 127.0.0.1
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,

    /// How long a read waits for data before it is recorded as "would block", in ms
    /// (1 to 4000: a read must end within the driver's 5 s limit for one step)
    #[arg(long, default_value_t = 250, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=READ_WAIT_MAX_MS))]
    pub read_wait: u64,

    /// How long the wire must be quiet after a step before the next one, in ms
    /// (1 to 2000: the driver waits at most 2 s for quiet after a step)
    #[arg(long, default_value_t = 60, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=SETTLE_MAX_MS))]
    pub settle: u64,

    /// Bytes kept of each captured packet [default: whole packets; headers only (256) when the
    /// scenario writes more than 4 MiB, so the capture keeps up]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(i32).range(96..=262144))]
    pub snaplen: Option<i32>,

    /// Show every segment and read of long transfers instead of folding them into one line
    #[arg(long)]
    pub no_fold: bool,

    /// Predict, then observe: before the run, say what each call that matters will do;
    /// the run scores each answer (asks at the terminal, or reads --answers)
    #[arg(long)]
    pub predict: bool,

    /// With --predict: the answers, one `LINE ANSWER` per line (e.g. `9 FIN`, `11 eof`)
    #[arg(long, value_name = "FILE", requires = "predict")]
    pub answers: Option<PathBuf>,

    /// Print the --predict questions (an answer-file template) and exit without running
    #[arg(long)]
    pub questions: bool,

    /// Do not read the kernel's tracepoints (RST reasons, state changes), even as root
    #[arg(long)]
    pub no_kernel: bool,

    /// (internal) write a one-line summary of the run here, for `--all`
    #[arg(long, hide = true, value_name = "FILE")]
    pub summary_to: Option<PathBuf>,

    /// (internal) write everything the run observed here (JSON), to replay it in tests
    #[arg(long, hide = true, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

pub const EXEC_HELP: &str = "\
Examples:
  hc-trace exec -- sh -c './server & sleep 0.2; ./client'
  hc-trace exec --timeout 3 -- sh -c 'python3 examples/exec/server.py & sleep 0.3; python3 examples/exec/client.py'
  sudo hc-trace exec --host -- curl -s http://example.com/

The program's standard input, output and error pass through; the timeline
follows once it has ended (with every process it started), on standard
output or in the file of -o. Each connection gets a section of its own
(--view all: all of them on one clock); each call shows its process id.

SIGINT or SIGTERM sent to hc-trace (kill, timeout, a CI cancellation) is
passed on to every traced process, then SIGKILL follows 2 s later, as with
--timeout; a Ctrl-C at the terminal reaches the program itself, and a
second one makes hc-trace kill it.

Exit status:
  the program's own: its exit code, or 128 + N when signal N ended it
  (--timeout ends it with SIGTERM: 143, or SIGKILL: 137)
  2    hc-trace itself failed: bad usage, the program was not found, no
       network namespace, no capture, ptrace not allowed

Privileges: by default the program runs in a private network namespace with
only `lo` (as root, or rootless where user namespaces are allowed), which
suits a script that starts both a server and a client. --host runs it in the
host's network namespace and captures on `any`, which needs root. As root on
the host (not in a rootless namespace) each RST carries the kernel's reason
and the kernel's state changes are shown (tracepoints; --no-kernel: off).";

#[derive(Args, Debug, Clone)]
pub struct AttachArgs {
    /// The process to trace: all its threads, and the children it starts from now on
    pub pid: i32,

    /// Stop tracing after this many seconds (the process goes on)
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Output format: text (one annotated timeline per connection) or json
    #[arg(long, value_enum, default_value_t = StreamFormat::Text)]
    pub format: StreamFormat,

    /// Write the timeline or JSON to FILE instead of standard output
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Save the annotated capture here (default: captures/exec.pcapng)
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Do not save a pcapng file
    #[arg(long, conflicts_with = "write")]
    pub no_save: bool,

    /// Capture on this interface (default `any`)
    #[arg(short = 'i', long = "iface", value_name = "IFACE")]
    pub iface: Option<String>,

    /// Do not read the kernel's tracepoints (RST reasons, state changes)
    #[arg(long)]
    pub no_kernel: bool,
}

impl AttachArgs {
    /// The same run as `exec --host --backend ebpf`, on a process that is already running.
    pub fn as_exec(&self) -> ExecArgs {
        ExecArgs {
            format: self.format,
            view: ExecView::Connections,
            out: self.out.clone(),
            no_fold: false,
            write: self.write.clone(),
            no_save: self.no_save,
            host: true,
            iface: self.iface.clone(),
            timeout: self.duration,
            no_kernel: self.no_kernel,
            backend: crate::sources::exec::Backend::Ebpf,
            record: None,
            program: vec![format!("pid {}", self.pid).into()],
            attach: Some(self.pid),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Output format: text (one annotated timeline per connection) or json (one document,
    /// written connection by connection as they are built)
    #[arg(long, value_enum, default_value_t = StreamFormat::Text)]
    pub format: StreamFormat,

    /// How --format text draws the run: connections (one timeline per connection) or all
    /// (every connection's events on one clock, each line led by its connection: for proxy chains)
    #[arg(long, value_enum, default_value_t = ExecView::Connections)]
    pub view: ExecView,

    /// Write the timeline or JSON to FILE instead of standard output, which stays the
    /// program's own (directories are created). Not the capture: that is -w/--write.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Show every segment and read of long transfers instead of folding them into one line
    #[arg(long)]
    pub no_fold: bool,

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

    /// Do not read the kernel's tracepoints (RST reasons, state changes), even as root
    #[arg(long)]
    pub no_kernel: bool,

    /// How the program is traced: ebpf (BPF programs on the syscall tracepoints, no stop;
    /// root or CAP_BPF+CAP_PERFMON), ptrace (stops at each socket call; works rootless), or
    /// auto (ebpf where it loads, else ptrace)
    #[arg(long, value_enum, default_value = "auto", value_name = "BACKEND")]
    pub backend: crate::sources::exec::Backend,

    /// (internal) write everything the run observed here (JSON), to replay it in tests
    #[arg(long, hide = true, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// The program and its arguments, after `--`
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    pub program: Vec<std::ffi::OsString>,

    /// `attach PID`: trace this running process instead of starting one.
    #[arg(skip)]
    pub attach: Option<i32>,
}

/// How a run or a connection is drawn.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Mermaid,
    Svg,
}

impl Format {
    pub fn to_render(self) -> hc_render::Format {
        match self {
            Format::Text => hc_render::Format::Text,
            Format::Json => hc_render::Format::Json,
            Format::Mermaid => hc_render::Format::Mermaid,
            Format::Svg => hc_render::Format::Svg,
        }
    }
}

/// Output of the commands that print many connections as they go (exec,
/// watch): text or JSON; a picture draws one connection (`analyze --conn`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFormat {
    Text,
    Json,
}

/// How `exec` draws its connections.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecView {
    Connections,
    All,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Timeline,
    Ladder,
}

impl View {
    pub fn to_render(self) -> hc_render::View {
        match self {
            View::Timeline => hc_render::View::Timeline,
            View::Ladder => hc_render::View::Ladder,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

pub const ANALYZE_EXIT_HELP: &str = "\
Exit status:
  0    every file was read completely (segments the snap length cut before
       their TCP flags are counted in the summary, and do not change this)
  2    usage error; a file could not be opened, decompressed or is not a
       capture; a file is damaged (truncated or corrupt: the error names the
       byte offset and record); or records of a link type analyze does not
       decode (named, with their count). What could be read is still
       analysed, and what was not is counted in the summary.

Several files are merged by time (as mergecap does); gzip- and zstd-compressed
captures are read as they are. RST reasons are INFERRED from the wire: a saved
capture does not hold the kernel's own reasons.";

pub const WATCH_EXIT_HELP: &str = "\
Exit status:
  130  stopped by Ctrl-C (SIGINT), after printing the summary table
  2    usage error, or no privileges to capture (run as root)";

#[derive(Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, gzip or zstd compressed or not; Ethernet with VLAN, LLC/SNAP,
    /// PPPoE and MPLS, Linux cooked SLL/SLL2, NFLOG, raw IP, loopback, PPP, 802.11, and
    /// tunnels), merged by time as one capture
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub filter: AnalyzeFilter,

    /// Show one connection (its ID from the summary table) as a timeline
    #[arg(long, value_name = "ID")]
    pub conn: Option<u64>,

    /// Output format: text (summary table) or json (analyze schema 2, see docs/json.md); mermaid and
    /// svg draw the connection picked with --conn
    #[arg(long, value_enum, default_value_t = Format::Text,
          requires_if("mermaid", "conn"), requires_if("svg", "conn"))]
    pub format: Format,

    /// Write a pcapng copy of the input in which every FIN and RST carries its explanation as a packet comment
    #[arg(short = 'w', long = "write", value_name = "OUT.pcapng")]
    pub write: Option<PathBuf>,

    /// With --conn: show every segment of long transfers instead of folding them into one line
    #[arg(long)]
    pub no_fold: bool,
}

#[derive(Args, Debug, Clone)]
pub struct AnalyzeFilter {
    /// Only connections with this port at either end
    #[arg(long)]
    pub port: Option<u16>,

    /// Only connections with this IP address at either end
    #[arg(long)]
    pub host: Option<std::net::IpAddr>,

    /// Only connections with an RST, a half-close, an abortive close or a refused connect
    #[arg(long, value_enum)]
    pub only: Option<Only>,
}

/// `--only`: which connections to show.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    /// Any RST
    Rst,
    /// Data flowed after the first FIN
    HalfClose,
    /// An RST inferred as an abortive close
    Abortive,
    /// An RST answering a SYN
    Refused,
}

impl AnalyzeFilter {
    pub fn to_filter(&self) -> hc_core::analyze::story::Filter {
        use hc_core::analyze::story::Only as O;
        hc_core::analyze::story::Filter {
            port: self.port,
            host: self.host,
            only: self.only.map(|o| match o {
                Only::Rst => O::Rst,
                Only::HalfClose => O::HalfClose,
                Only::Abortive => O::Abortive,
                Only::Refused => O::Refused,
            }),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// The interface to capture on
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub iface: String,

    /// A BPF capture filter in tcpdump syntax (default: tcp)
    #[arg(value_name = "FILTER", num_args = 0..)]
    pub filter: Vec<String>,

    #[command(flatten)]
    pub only: AnalyzeFilter,

    /// Output format of the stories and the final summary
    #[arg(long, value_enum, default_value_t = StreamFormat::Text)]
    pub format: StreamFormat,
}
