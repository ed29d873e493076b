//! Scenarios as data: the step list of a run, read from a small text format.
//!
//! The built-in catalog is written in the same format (one file per scenario
//! under `scenarios/`, embedded in the binary), so a teacher can copy one and
//! change it without touching Rust. A file looks like this:
//!
//! ```text
//! # comments start with '#'
//! name: shut-wr
//! teaches: the half-close
//!
//! server listen
//! client connect
//! server accept
//! client write 100
//! client shutdown SHUT_WR (key)
//! server read-all
//! client close
//! ```
//!
//! One step per line: `SIDE VERB [ARGS] [on NAME] [as NAME] [(key)]`.
//! Descriptors have names so a scenario can hold more than one per side:
//! `listen` creates `listener`, `connect` and `accept` create `conn`, `dup`
//! creates `dup` (each can be renamed with `as NAME`); a step acts on `conn`
//! unless it says `on NAME`. `(key)` marks the call whose result the summary
//! table of `scenario --all` shows. Nothing runs until the whole file is valid.

pub mod expect;
pub mod explain;
pub mod predict;

use crate::model::Side;
use std::collections::HashSet;
use std::fmt;

/// How a shutdown() call names the directions it closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    Rd,
    Wr,
    RdWr,
}

impl How {
    pub fn name(self) -> &'static str {
        match self {
            How::Rd => "SHUT_RD",
            How::Wr => "SHUT_WR",
            How::RdWr => "SHUT_RDWR",
        }
    }
}

/// The socket options a scenario may set: the ones that change what close and
/// shutdown put on the wire, or how data is packed into segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOpt {
    /// SO_LINGER with l_onoff and l_linger (seconds).
    Linger {
        on: bool,
        secs: i32,
    },
    TcpCork(bool),
    TcpNodelay(bool),
    RcvBuf(i32),
}

impl SockOpt {
    /// As a C programmer would write the option and value.
    pub fn describe(&self) -> String {
        match self {
            SockOpt::Linger { on, secs } => {
                format!("SO_LINGER {{l_onoff={}, l_linger={secs}}}", u8::from(*on))
            }
            SockOpt::TcpCork(v) => format!("TCP_CORK {}", u8::from(*v)),
            SockOpt::TcpNodelay(v) => format!("TCP_NODELAY {}", u8::from(*v)),
            SockOpt::RcvBuf(n) => format!("SO_RCVBUF {n}"),
        }
    }
}

/// What a step does. Each is one socket call (read-all: a loop of reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Listen,
    Connect,
    Accept,
    Write(u64),
    Read,
    ReadAll,
    Shutdown(How),
    Close,
    SetSockOpt(SockOpt),
    Dup,
    Sleep(u64),
    /// A fault hc-trace makes on the wire (`wire ...` lines); not a socket call.
    Wire(crate::model::fault::Fault),
}

/// One line of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based line in the source file, so run-time messages can point back at it.
    pub line: usize,
    pub side: Side,
    pub action: Action,
    /// The descriptor the call acts on (for accept and dup: the one it starts from).
    pub fd: String,
    /// The descriptor the call creates (listen, connect, accept, dup).
    pub creates: Option<String>,
    pub key: bool,
    /// The step as written, for messages.
    pub source: String,
    /// What this step must show (`expect` lines indented under it).
    pub expects: Vec<crate::scenario::expect::Expectation>,
}

/// A whole scenario: its name, what it teaches, and its steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub teaches: String,
    pub steps: Vec<Step>,
    /// What the whole run must show (`expect` lines at the left margin).
    pub expects: Vec<crate::scenario::expect::Expectation>,
    /// Where it came from: `built-in` or a file path, for messages.
    pub origin: String,
    /// The text it was parsed from, so a recorded run can be replayed.
    pub text: String,
}

impl Scenario {
    /// The step marked `(key)`, whose result the summary table shows.
    pub fn key_step(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.key)
    }
}

/// A mistake in a scenario file, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

const VERBS: &[&str] = &[
    "listen",
    "connect",
    "accept",
    "write",
    "read",
    "read-all",
    "shutdown",
    "close",
    "setsockopt",
    "dup",
    "sleep",
];

/// A word of a line with the column it starts at (1-based), for error positions.
struct Word<'a> {
    text: &'a str,
    col: usize,
}

fn words(line: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, ch) in line.char_indices() {
        if ch.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(Word {
                    text: &line[s..i],
                    col: line[..s].chars().count() + 1,
                });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(Word {
            text: &line[s..],
            col: line[..s].chars().count() + 1,
        });
    }
    out
}

/// The closest of `options` to `word`, when it is close enough to be a typo.
pub fn closest<'a>(word: &str, options: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    options
        .into_iter()
        .map(|o| (strsim::damerau_levenshtein(word, o), o))
        .filter(|(d, o)| *d <= 2.max(o.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

struct Parser<'a> {
    file: &'a str,
    line_no: usize,
}

impl Parser<'_> {
    fn err(&self, col: usize, message: impl Into<String>, hint: Option<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line: self.line_no,
            col,
            message: message.into(),
            hint,
        }
    }
}

/// The largest scenario file: far above any lesson (the built-in ones are
/// under 2 KB), far below what could hurt the machine.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// The most steps a scenario may have (each runs and is drawn).
pub const MAX_STEPS: usize = 10_000;
/// The longest `name:` (it becomes a file name, with room for its suffixes).
pub const MAX_NAME: usize = 100;

/// A whole file over [`MAX_FILE_BYTES`] is refused before it is read line by line.
fn check_size(p: &Parser<'_>, text: &str) -> Result<(), ParseError> {
    if text.len() <= MAX_FILE_BYTES {
        return Ok(());
    }
    Err(p.err(
        1,
        format!(
            "the file has {} bytes; a scenario file may have at most {MAX_FILE_BYTES} (1 MiB)",
            text.len()
        ),
        Some(format!(
            "a scenario is a short script of at most {MAX_STEPS} steps"
        )),
    ))
}

/// One step too many, said at the line of the first step past [`MAX_STEPS`].
fn check_step_count(p: &Parser<'_>, col: usize, steps: usize) -> Result<(), ParseError> {
    if steps < MAX_STEPS {
        return Ok(());
    }
    Err(p.err(
        col,
        format!("more than {MAX_STEPS} steps"),
        Some(format!(
            "a scenario may have at most {MAX_STEPS} steps; split it into several files"
        )),
    ))
}

/// `name:` becomes a file name (`captures/NAME.pcapng`), so it may hold only
/// `A-Z a-z 0-9 . _ -`, must not start with a dot, and has at most
/// [`MAX_NAME`] characters: never a path, never a hidden file. The message
/// and hint, or Ok.
pub fn check_name(value: &str) -> Result<(), (String, String)> {
    let hint = "the name becomes the file captures/NAME.pcapng: letters, digits, `.`, `_` and `-`, e.g. `name: my-half-close`".to_string();
    if value.is_empty() || value.contains(char::is_whitespace) {
        return Err(("`name:` needs one word".into(), hint));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err((
            format!("`name:` may hold only letters, digits, `.`, `_` and `-`, found `{bad}`"),
            hint,
        ));
    }
    if value.starts_with('.') {
        return Err(("`name:` must not start with a dot".into(), hint));
    }
    if value.len() > MAX_NAME {
        return Err((
            format!("`name:` has {} characters; at most {MAX_NAME}", value.len()),
            hint,
        ));
    }
    Ok(())
}

/// Parses a scenario file. `file` names it in error messages.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ParseError> {
    let mut p = Parser { file, line_no: 0 };
    check_size(&p, text)?;
    let mut name = None;
    let mut teaches = None;
    let mut steps: Vec<Step> = Vec::new();
    // Which descriptor names exist on each side at this point of the script,
    // so a step that uses a name before it is created fails before anything runs.
    let mut fds: [HashSet<String>; 2] = [HashSet::new(), HashSet::new()];
    let mut key_line = None;
    let mut expects = Vec::new();

    for (i, raw) in text.lines().enumerate() {
        p.line_no = i + 1;
        let line = raw.split('#').next().unwrap_or("");
        if line.trim().is_empty() {
            continue;
        }
        let ws = words(line);
        let first = &ws[0];
        if first.text == "expect" {
            // Indented: it checks the step above; at the margin: the whole run.
            let step_level = line.starts_with(char::is_whitespace);
            let rest: Vec<&str> = ws[1..].iter().map(|w| w.text).collect();
            let check =
                crate::scenario::expect::parse(&rest, step_level).map_err(|(message, hint)| {
                    p.err(ws.get(1).map_or(first.col, |w| w.col), message, Some(hint))
                })?;
            let e = crate::scenario::expect::Expectation {
                line: p.line_no,
                text: line.trim().to_string(),
                check,
            };
            match (step_level, steps.last_mut()) {
                (true, Some(step)) => step.expects.push(e),
                (true, None) => {
                    return Err(p.err(
                        first.col,
                        "an indented `expect` before any step",
                        Some("indent `expect` under the step it checks, or start it at the margin to check the whole run".into()),
                    ))
                }
                (false, _) => expects.push(e),
            }
            continue;
        }
        if let Some(field) = first.text.strip_suffix(':') {
            let value = line[line.find(':').map_or(0, |c| c + 1)..].trim();
            if !steps.is_empty() {
                return Err(p.err(
                    first.col,
                    format!("header `{field}:` after the first step"),
                    Some("put `name:` and `teaches:` at the top of the file".into()),
                ));
            }
            match field {
                "name" => {
                    check_name(value)
                        .map_err(|(message, hint)| p.err(first.col, message, Some(hint)))?;
                    name = Some(value.to_string());
                }
                "teaches" => teaches = Some(value.to_string()),
                other => {
                    return Err(p.err(
                        first.col,
                        format!("unknown header `{other}:`"),
                        Some(match closest(other, ["name", "teaches"]) {
                            Some(c) => format!("did you mean `{c}:`?"),
                            None => "the headers are `name:` and `teaches:`".into(),
                        }),
                    ))
                }
            }
            continue;
        }
        check_step_count(&p, first.col, steps.len())?;
        let step = parse_step(&p, line.trim_end(), &ws, &mut fds)?;
        if step.key {
            if let Some(prev) = key_line {
                return Err(p.err(
                    first.col,
                    "a second step marked (key)",
                    Some(format!(
                        "line {prev} is already the key step; mark only one"
                    )),
                ));
            }
            key_line = Some(p.line_no);
        }
        steps.push(step);
    }
    p.line_no = text.lines().count().max(1);
    let name = name.ok_or_else(|| {
        p.err(
            1,
            "the file has no `name:` line",
            Some("start the file with `name: my-scenario`".into()),
        )
    })?;
    if steps.is_empty() {
        return Err(p.err(
            1,
            "the file has no steps",
            Some("add lines such as `server listen`, `client connect`".into()),
        ));
    }
    Ok(Scenario {
        name,
        teaches: teaches.unwrap_or_default(),
        steps,
        expects,
        origin: file.to_string(),
        text: text.to_string(),
    })
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

fn parse_step(
    p: &Parser<'_>,
    line: &str,
    ws: &[Word<'_>],
    fds: &mut [HashSet<String>; 2],
) -> Result<Step, ParseError> {
    let mut ws: Vec<&Word<'_>> = ws.iter().collect();
    let mut key = false;
    if let Some(mark) = ws.last().copied().filter(|w| w.text == "(key)") {
        key = true;
        ws.pop();
        // A line that is only `(key)` would leave no step to mark (found by fuzzing).
        if ws.is_empty() {
            return Err(p.err(
                mark.col,
                "`(key)` with no step before it",
                Some(
                    "put `(key)` at the end of a step, e.g. `client shutdown SHUT_WR (key)`".into(),
                ),
            ));
        }
    }
    if ws[0].text == "wire" {
        return parse_wire(p, line, &ws, key);
    }
    let side = match ws[0].text {
        "client" => Side::Client,
        "server" => Side::Server,
        other => {
            let hint = match closest(other, ["client", "server"]) {
                Some(c) => format!("did you mean `{c}`?"),
                None if VERBS.contains(&other) => {
                    format!(
                        "say which side makes the call: `client {other} …` or `server {other} …`"
                    )
                }
                None => "a step starts with `client` or `server`".into(),
            };
            return Err(p.err(
                ws[0].col,
                format!("expected a side, found `{other}`"),
                Some(hint),
            ));
        }
    };
    let Some(verb) = ws.get(1) else {
        return Err(p.err(
            ws[0].col + ws[0].text.len(),
            format!("expected a call after `{}`", side.name()),
            Some(format!("one of: {}", VERBS.join(", "))),
        ));
    };
    // Split off the trailing `on NAME` / `as NAME` clauses.
    let mut on = None;
    let mut as_name = None;
    let mut args: Vec<&Word<'_>> = Vec::new();
    let mut i = 2;
    while i < ws.len() {
        let w = ws[i];
        if w.text == "on" || w.text == "as" {
            let Some(n) = ws.get(i + 1) else {
                return Err(p.err(
                    w.col,
                    format!("`{}` needs a descriptor name after it", w.text),
                    Some(format!("e.g. `{} conn`", w.text)),
                ));
            };
            if !n
                .text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(p.err(
                    n.col,
                    format!("`{}` is not a descriptor name", n.text),
                    Some("names are letters, digits, `-` and `_`".into()),
                ));
            }
            let slot = if w.text == "on" {
                &mut on
            } else {
                &mut as_name
            };
            *slot = Some((n.text.to_string(), n.col));
            i += 2;
        } else {
            args.push(w);
            i += 1;
        }
    }
    let end_col = line.chars().count() + 1;
    let number = |idx: usize, what: &str, max: u64| -> Result<u64, ParseError> {
        let Some(w) = args.get(idx) else {
            return Err(p.err(end_col, format!("`{}` needs {what}", verb.text), None));
        };
        w.text
            .replace('_', "")
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                p.err(
                    w.col,
                    format!("expected {what}, found `{}`", w.text),
                    Some(format!("a whole number from 0 to {max}")),
                )
            })
    };
    let flag = |idx: usize| -> Result<bool, ParseError> {
        match args.get(idx).map(|w| w.text) {
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            _ => Err(p.err(
                args.get(idx).map_or(end_col, |w| w.col),
                format!("`{}` needs 1 or 0", args[0].text),
                Some(format!("e.g. `setsockopt {} 1`", args[0].text)),
            )),
        }
    };
    let (action, n_args) = match verb.text {
        "listen" => (Action::Listen, 0),
        "connect" => (Action::Connect, 0),
        "accept" => (Action::Accept, 0),
        "write" => (Action::Write(number(0, "a byte count", 1 << 34)?), 1),
        "read" => (Action::Read, 0),
        "read-all" => (Action::ReadAll, 0),
        "close" => (Action::Close, 0),
        "dup" => (Action::Dup, 0),
        "sleep" => (Action::Sleep(number(0, "milliseconds", 60_000)?), 1),
        "shutdown" => {
            let how = match args.first().map(|w| w.text) {
                Some("SHUT_RD") => How::Rd,
                Some("SHUT_WR") => How::Wr,
                Some("SHUT_RDWR") => How::RdWr,
                other => {
                    let col = args.first().map_or(end_col, |w| w.col);
                    let hint = other
                        .and_then(|o| {
                            closest(&o.to_uppercase(), ["SHUT_RD", "SHUT_WR", "SHUT_RDWR"])
                        })
                        .map_or("SHUT_RD, SHUT_WR or SHUT_RDWR".to_string(), |c| {
                            format!("did you mean `{c}`?")
                        });
                    return Err(p.err(
                        col,
                        "`shutdown` needs how: SHUT_RD, SHUT_WR or SHUT_RDWR",
                        Some(hint),
                    ));
                }
            };
            (Action::Shutdown(how), 1)
        }
        "setsockopt" => {
            const OPTS: [&str; 4] = ["SO_LINGER", "TCP_CORK", "TCP_NODELAY", "SO_RCVBUF"];
            let opt = match args.first().map(|w| w.text) {
                Some("SO_LINGER") => {
                    let on = flag(1)?;
                    let secs = number(2, "the linger time in seconds", 3600)?;
                    (
                        SockOpt::Linger {
                            on,
                            secs: secs as i32,
                        },
                        3,
                    )
                }
                Some("TCP_CORK") => (SockOpt::TcpCork(flag(1)?), 2),
                Some("TCP_NODELAY") => (SockOpt::TcpNodelay(flag(1)?), 2),
                Some("SO_RCVBUF") => (
                    SockOpt::RcvBuf(number(1, "a size in bytes", 1 << 30)? as i32),
                    2,
                ),
                other => {
                    let col = args.first().map_or(end_col, |w| w.col);
                    let hint = other
                        .and_then(|o| closest(&o.to_uppercase(), OPTS))
                        .map_or(format!("one of: {}", OPTS.join(", ")), |c| {
                            format!("did you mean `{c}`?")
                        });
                    return Err(p.err(col, "unknown socket option", Some(hint)));
                }
            };
            (Action::SetSockOpt(opt.0), opt.1)
        }
        other => {
            let hint = match closest(other, VERBS.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("one of: {}", VERBS.join(", ")),
            };
            return Err(p.err(verb.col, format!("unknown call `{other}`"), Some(hint)));
        }
    };
    if let Some(extra) = args.get(n_args) {
        return Err(p.err(
            extra.col,
            format!("unexpected `{}` after `{}`", extra.text, verb.text),
            Some("use `on NAME` to choose a descriptor and `as NAME` to name a new one".into()),
        ));
    }

    let creates_default = match action {
        Action::Listen => Some("listener"),
        Action::Connect | Action::Accept => Some("conn"),
        Action::Dup => Some("dup"),
        _ => None,
    };
    if let (Some((_, col)), None) = (&as_name, creates_default) {
        return Err(p.err(
            *col,
            format!("`{}` creates no descriptor to name", verb.text),
            Some("`as NAME` goes with listen, connect, accept and dup".into()),
        ));
    }
    let creates =
        creates_default.map(|d| as_name.as_ref().map_or(d.to_string(), |(n, _)| n.clone()));
    let default_fd = match action {
        Action::Accept => "listener",
        _ => "conn",
    };
    let (fd, fd_col) = on.unwrap_or((default_fd.to_string(), verb.col));
    let known = &mut fds[side_index(side)];
    let uses_fd = !matches!(action, Action::Listen | Action::Connect | Action::Sleep(_));
    if uses_fd && !known.contains(&fd) {
        let mut names: Vec<&str> = known.iter().map(String::as_str).collect();
        names.sort_unstable();
        let hint = if names.is_empty() {
            format!(
                "the {} has no descriptor yet: start with `{} listen` or `{} connect`",
                side.name(),
                side.name(),
                side.name()
            )
        } else {
            format!("the {} has: {}", side.name(), names.join(", "))
        };
        return Err(p.err(
            fd_col,
            format!("no descriptor `{fd}` on the {} side here", side.name()),
            Some(hint),
        ));
    }
    if matches!(action, Action::Close) {
        known.remove(&fd);
    }
    if let Some(c) = &creates {
        known.insert(c.clone());
    }
    Ok(Step {
        line: p.line_no,
        side,
        action,
        fd,
        creates,
        key,
        source: line.trim().to_string(),
        expects: Vec::new(),
    })
}

/// `wire drop client FIN`, `wire drop server FIN`, `wire hold`, `wire release`.
fn parse_wire(p: &Parser<'_>, line: &str, ws: &[&Word<'_>], key: bool) -> Result<Step, ParseError> {
    use crate::model::fault::Fault;
    let words: Vec<&str> = ws.iter().map(|w| w.text).collect();
    let (fault, side) = match words.as_slice() {
        ["wire", "drop", "client", "FIN"] => (Fault::DropFin(Side::Client), Side::Client),
        ["wire", "drop", "server", "FIN"] => (Fault::DropFin(Side::Server), Side::Server),
        ["wire", "hold"] => (Fault::Hold, Side::Client),
        ["wire", "release"] => (Fault::Release, Side::Client),
        _ => {
            return Err(p.err(
                ws.get(1).map_or(ws[0].col, |w| w.col),
                format!("unknown wire fault `{}`", words[1..].join(" ")),
                Some("one of: `wire drop client FIN`, `wire drop server FIN`, `wire hold`, `wire release`".into()),
            ))
        }
    };
    Ok(Step {
        line: p.line_no,
        side,
        action: Action::Wire(fault),
        fd: String::new(),
        creates: None,
        key,
        source: line.trim().to_string(),
        expects: Vec::new(),
    })
}

/// The faults a scenario asks for, to check the tools they need before it runs.
pub fn faults(s: &Scenario) -> Vec<crate::model::fault::Fault> {
    s.steps
        .iter()
        .filter_map(|st| match st.action {
            Action::Wire(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// The built-in catalog, in the order `hc-trace list` shows it.
const BUILTIN: &[(&str, &str)] = &[
    (
        "shut-wr",
        include_str!("../../../../scenarios/shut-wr.scenario"),
    ),
    (
        "shut-rd",
        include_str!("../../../../scenarios/shut-rd.scenario"),
    ),
    (
        "shut-rdwr",
        include_str!("../../../../scenarios/shut-rdwr.scenario"),
    ),
    (
        "close-early",
        include_str!("../../../../scenarios/close-early.scenario"),
    ),
    (
        "close-unread",
        include_str!("../../../../scenarios/close-unread.scenario"),
    ),
    (
        "linger0",
        include_str!("../../../../scenarios/linger0.scenario"),
    ),
    (
        "write-after-close",
        include_str!("../../../../scenarios/write-after-close.scenario"),
    ),
    (
        "dup-close",
        include_str!("../../../../scenarios/dup-close.scenario"),
    ),
    (
        "no-shutdown",
        include_str!("../../../../scenarios/no-shutdown.scenario"),
    ),
    (
        "cork-fin",
        include_str!("../../../../scenarios/cork-fin.scenario"),
    ),
    (
        "refused",
        include_str!("../../../../scenarios/refused.scenario"),
    ),
    (
        "listen-close",
        include_str!("../../../../scenarios/listen-close.scenario"),
    ),
    (
        "half-close-bulk",
        include_str!("../../../../scenarios/half-close-bulk.scenario"),
    ),
    (
        "simultaneous-close",
        include_str!("../../../../scenarios/simultaneous-close.scenario"),
    ),
    (
        "fin-lost",
        include_str!("../../../../scenarios/fin-lost.scenario"),
    ),
];

/// Every built-in scenario, parsed. The files are checked by a unit test, so
/// a parse error here is a bug in the repository, not in user input.
pub fn catalog() -> Vec<Scenario> {
    BUILTIN
        .iter()
        .filter_map(|(name, text)| {
            let mut s = parse(text, &format!("scenarios/{name}.scenario")).ok()?;
            s.origin = "built-in".into();
            Some(s)
        })
        .collect()
}

pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// Finds a built-in scenario by name, or says which name was probably meant.
pub fn builtin(name: &str) -> Result<Scenario, UnknownScenario> {
    catalog()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| UnknownScenario {
            name: name.to_string(),
            suggestion: closest(name, names()).map(str::to_string),
        })
}

#[derive(Debug, thiserror::Error)]
#[error("no built-in scenario named `{name}`")]
pub struct UnknownScenario {
    pub name: String,
    pub suggestion: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_is_named_like_its_file() {
        for (name, text) in BUILTIN {
            let s = parse(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&s.name, name);
            assert!(!s.teaches.is_empty(), "{name} says what it teaches");
            assert_eq!(
                s.steps.iter().filter(|s| s.key).count(),
                1,
                "{name} has one key step"
            );
        }
        assert_eq!(catalog().len(), BUILTIN.len());
    }

    #[test]
    fn shut_wr_steps_are_as_in_the_catalog() {
        let s = builtin("shut-wr").unwrap();
        let got: Vec<_> = s.steps.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(got[4], "client shutdown SHUT_WR (key)");
        assert_eq!(s.steps[4].action, Action::Shutdown(How::Wr));
        assert_eq!(s.steps.len(), 10);
    }

    #[test]
    fn descriptors_are_named_and_checked() {
        let s = builtin("dup-close").unwrap();
        let dup = &s.steps[3];
        assert_eq!(
            (dup.fd.as_str(), dup.creates.as_deref()),
            ("conn", Some("copy"))
        );
        let shut = s
            .steps
            .iter()
            .find(|s| matches!(s.action, Action::Shutdown(_)))
            .unwrap();
        assert_eq!(shut.fd, "copy");
        let lc = builtin("listen-close").unwrap();
        assert_eq!(lc.steps[3].fd, "listener");
    }

    fn err(text: &str) -> ParseError {
        parse(text, "lab.scenario").unwrap_err()
    }

    #[test]
    fn errors_point_at_line_and_column_with_a_hint() {
        let e = err("name: x\nserver listen\nclient conect\n");
        assert_eq!((e.line, e.col), (3, 8));
        assert_eq!(e.hint.as_deref(), Some("did you mean `connect`?"));
        assert!(e
            .to_string()
            .starts_with("lab.scenario:3:8: unknown call `conect`"));

        let e = err("name: x\nclient connect\nclient shutdown SHUT_WRR\n");
        assert_eq!((e.line, e.col), (3, 17));
        assert_eq!(e.hint.as_deref(), Some("did you mean `SHUT_WR`?"));

        let e = err("name: x\nclient connect\nclient close on copy\n");
        assert_eq!((e.line, e.col), (3, 17));
        assert!(e.message.contains("no descriptor `copy`"));

        let e = err("name: x\nclient connect\nclient close\nclient write 10\n");
        assert_eq!(e.line, 4, "a closed descriptor cannot be used");

        let e = err("name: x\nclient write lots\n");
        assert!(e.message.contains("byte count") || e.message.contains("no descriptor"));

        let e = err("client connect\n");
        assert!(e.message.contains("no `name:`"));

        let e = err("name: x\nclinet connect\n");
        assert_eq!(e.hint.as_deref(), Some("did you mean `client`?"));

        // Found by fuzzing: a line that is only the key mark used to panic.
        let e = err("name: x\nserver listen\n  (key)\n");
        assert_eq!((e.line, e.col), (3, 3));
        assert!(e.message.contains("no step"));

        let e = err("name: x\nclient connect\nclient write 5 10\n");
        assert_eq!((e.line, e.col), (3, 16));

        let e = err("name: x\nclient connect (key)\nclient close (key)\n");
        assert!(e.message.contains("second step marked (key)"));
    }

    #[test]
    fn setsockopt_forms() {
        let s = parse(
            "name: x\nclient connect\nclient setsockopt SO_LINGER 1 0\nclient setsockopt TCP_CORK 1\n",
            "f",
        )
        .unwrap();
        assert_eq!(
            s.steps[1].action,
            Action::SetSockOpt(SockOpt::Linger { on: true, secs: 0 })
        );
        assert_eq!(
            s.steps[2].action,
            Action::SetSockOpt(SockOpt::TcpCork(true))
        );
        let e = err("name: x\nclient connect\nclient setsockopt SO_LINGR 1 0\n");
        assert_eq!(e.hint.as_deref(), Some("did you mean `SO_LINGER`?"));
    }

    #[test]
    fn names_are_file_names_not_paths() {
        for bad in [
            "../../x", "a/b", "..", ".hidden", "a\\b", "café", "x:y", "a\u{0}b",
        ] {
            let e = err(&format!("name: {bad}\nserver listen\n"));
            assert_eq!(e.line, 1, "{bad}: {e}");
            assert!(e.message.contains("`name:`"), "{bad}: {e}");
        }
        let e = err(&format!(
            "name: {}\nserver listen\n",
            "n".repeat(MAX_NAME + 1)
        ));
        assert!(e.message.contains("at most"), "{e}");
        for good in ["shut-wr", "lab_2.v3", "A-1", &"n".repeat(MAX_NAME)] {
            let s = parse(&format!("name: {good}\nserver listen\n"), "f").expect(good);
            assert_eq!(&s.name, good);
        }
    }

    #[test]
    fn files_and_step_lists_are_bounded() {
        let steps = "client sleep 0\n".repeat(MAX_STEPS);
        let s = parse(&format!("name: x\n{steps}"), "f").expect("the largest allowed");
        assert_eq!(s.steps.len(), MAX_STEPS);
        let e = err(&format!("name: x\n{steps}client sleep 0\n"));
        assert_eq!(e.line, MAX_STEPS + 2);
        assert!(e.message.contains("more than 10000 steps"), "{e}");
        let big = format!("name: x\nserver listen\n{}", "#".repeat(MAX_FILE_BYTES));
        let e = err(&big);
        assert!(e.message.contains("at most 1048576"), "{e}");
    }

    #[test]
    fn unknown_builtin_suggests_the_closest() {
        let e = builtin("shut-wd").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("shut-wr"));
        assert!(builtin("zzzzzzzzzz").unwrap_err().suggestion.is_none());
    }
}
