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

/// Every mistake found in a scenario file, in line order: each line is
/// checked on its own, so one run of `--check-only` lists them all (up to
/// [`MAX_ERRORS`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseErrors {
    /// At least one, at most [`MAX_ERRORS`].
    pub errors: Vec<ParseError>,
    /// How many more were found and not kept.
    pub more: usize,
}

/// The most mistakes of one file reported at once.
pub const MAX_ERRORS: usize = 20;

impl ParseErrors {
    /// The first mistake of the file.
    pub fn first(&self) -> &ParseError {
        &self.errors[0]
    }
    /// All mistakes found, including those not kept.
    pub fn count(&self) -> usize {
        self.errors.len() + self.more
    }
}

impl fmt::Display for ParseErrors {
    /// One mistake as `FILE:LINE:COL: message` and its hint; several under a
    /// line that counts them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [one] = self.errors.as_slice() {
            return write!(f, "{one}");
        }
        write!(f, "{} mistakes in {}:", self.count(), self.first().file)?;
        for e in &self.errors {
            write!(f, "\n{e}")?;
        }
        if self.more > 0 {
            write!(f, "\n… and {} more not shown (fix these first)", self.more)?;
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

/// Parses a scenario file. `file` names it in error messages. On a mistake,
/// the first one (see [`parse_all`] for all of them).
pub fn parse(text: &str, file: &str) -> Result<Scenario, ParseError> {
    parse_all(text, file).map_err(|mut e| e.errors.swap_remove(0))
}

/// Parses a scenario file, reporting every mistake (up to [`MAX_ERRORS`]).
///
/// Each line is checked on its own. A step with a mistake still counts for
/// the descriptors it would create (`client connect` with a typo in its
/// `expect` still makes `conn`), so one mistake does not cause others.
pub fn parse_all(text: &str, file: &str) -> Result<Scenario, ParseErrors> {
    let mut p = Parser { file, line_no: 0 };
    let mut errors: Vec<ParseError> = Vec::new();
    if let Err(e) = check_size(&p, text) {
        return Err(ParseErrors {
            errors: vec![e],
            more: 0,
        });
    }
    // Notepad and some editors start a UTF-8 file with a byte-order mark.
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut name: Option<(String, usize)> = None;
    let mut teaches: Option<(String, usize)> = None;
    let mut steps: Vec<Step> = Vec::new();
    // Which descriptor names exist on each side at this point of the script,
    // so a step that uses a name before it is created fails before anything
    // runs; and where each closed one was closed, to say so.
    let mut fds = Fds::default();
    let mut key_line = None;
    let mut expects = Vec::new();
    // The last line was a step that could not be read: its indented
    // `expect` lines are still checked, but belong to no step.
    let mut orphan_step = false;
    // Step lines seen, read or not.
    let mut step_lines = 0;

    for (i, raw) in body.lines().enumerate() {
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
            let check = match expect::parse_words(&rest, step_level) {
                Ok(c) => c,
                Err(e) => {
                    let col = match e.word {
                        Some(w) => ws[w + 1].col,
                        None => line.trim_end().chars().count() + 1,
                    };
                    errors.push(p.err(col, e.message, Some(e.hint)));
                    continue;
                }
            };
            let e = expect::Expectation {
                line: p.line_no,
                text: line.trim().to_string(),
                check,
            };
            match (step_level, steps.last_mut()) {
                (true, _) if orphan_step => {}
                (true, Some(step)) => step.expects.push(e),
                (true, None) => errors.push(p.err(
                    first.col,
                    "an indented `expect` before any step",
                    Some("indent `expect` under the step it checks, or start it at the margin to check the whole run".into()),
                )),
                (false, _) => expects.push(e),
            }
            continue;
        }
        if let Some(field) = first.text.strip_suffix(':') {
            // A header's value is the rest of the raw line: a `#` in what a
            // scenario teaches is part of it, not a comment.
            let value = raw[raw.find(':').map_or(0, |c| c + 1)..].trim();
            if step_lines > 0 {
                errors.push(p.err(
                    first.col,
                    format!("header `{field}:` after the first step"),
                    Some("put `name:` and `teaches:` at the top of the file".into()),
                ));
                continue;
            }
            let slot = match field {
                "name" => {
                    if let Err((message, hint)) = check_name(value) {
                        errors.push(p.err(first.col, message, Some(hint)));
                        continue;
                    }
                    &mut name
                }
                "teaches" => &mut teaches,
                other => {
                    errors.push(p.err(
                        first.col,
                        format!("unknown header `{other}:`"),
                        Some(match closest(other, ["name", "teaches"]) {
                            Some(c) => format!("did you mean `{c}:`?"),
                            None => "the headers are `name:` and `teaches:`".into(),
                        }),
                    ));
                    continue;
                }
            };
            if let Some((_, at)) = slot {
                errors.push(p.err(
                    first.col,
                    format!("a second `{field}:` header"),
                    Some(format!("line {at} already says `{field}:`; keep one")),
                ));
                continue;
            }
            *slot = Some((value.to_string(), p.line_no));
            continue;
        }
        if let Err(e) = check_step_count(&p, first.col, step_lines) {
            errors.push(e);
            break;
        }
        step_lines += 1;
        match parse_step(&p, line.trim_end(), &ws, &mut fds) {
            Ok(step) => {
                orphan_step = false;
                if step.key {
                    if let Some(prev) = key_line {
                        errors.push(p.err(
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
            Err(e) => {
                errors.push(e);
                orphan_step = true;
                fds.guess_creates(&ws, p.line_no);
            }
        }
    }
    let last_line = body.lines().count().max(1);
    p.line_no = last_line;
    if name.is_none() {
        p.line_no = 1;
        errors.push(p.err(
            1,
            "the file has no `name:` line",
            Some("start the file with `name: my-scenario`".into()),
        ));
    }
    if step_lines == 0 {
        p.line_no = last_line;
        errors.push(p.err(
            1,
            "the file has no steps",
            Some("add lines such as `server listen`, `client connect`".into()),
        ));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line, e.col));
        let more = errors.len().saturating_sub(MAX_ERRORS);
        errors.truncate(MAX_ERRORS);
        return Err(ParseErrors { errors, more });
    }
    Ok(Scenario {
        name: name.map(|(n, _)| n).unwrap_or_default(),
        teaches: teaches.map(|(t, _)| t).unwrap_or_default(),
        steps,
        expects,
        origin: file.to_string(),
        text: text.to_string(),
    })
}

/// The descriptor names of each side at a point of the script, and where
/// each closed one was closed.
#[derive(Default)]
struct Fds {
    open: [HashSet<String>; 2],
    closed: [std::collections::HashMap<String, usize>; 2],
}

impl Fds {
    /// For a step that could not be read: the descriptor it would have
    /// created, when its side and call can still be told, so the steps after
    /// it are checked as if it had been written right.
    fn guess_creates(&mut self, ws: &[Word<'_>], line: usize) {
        let texts: Vec<&str> = ws.iter().map(|w| w.text).collect();
        let side = match texts.first().map(|w| closest(w, ["client", "server"])) {
            Some(Some("client")) => Side::Client,
            Some(Some("server")) => Side::Server,
            _ => return,
        };
        let verb = texts.get(1).and_then(|v| closest(v, VERBS.iter().copied()));
        let default = match verb {
            Some("listen") => "listener",
            Some("connect" | "accept") => "conn",
            Some("dup") => "dup",
            Some("close") => {
                let on = texts
                    .iter()
                    .position(|w| *w == "on")
                    .and_then(|i| texts.get(i + 1))
                    .copied()
                    .unwrap_or("conn");
                self.close(side, on, line);
                return;
            }
            _ => return,
        };
        let named = texts
            .iter()
            .position(|w| *w == "as")
            .and_then(|i| texts.get(i + 1))
            .copied()
            .unwrap_or(default);
        self.create(side, named);
    }
    fn create(&mut self, side: Side, name: &str) {
        let i = side_index(side);
        self.open[i].insert(name.to_string());
        self.closed[i].remove(name);
    }
    fn close(&mut self, side: Side, name: &str, line: usize) {
        let i = side_index(side);
        self.open[i].remove(name);
        self.closed[i].insert(name.to_string(), line);
    }
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
    fds: &mut Fds,
) -> Result<Step, ParseError> {
    let mut ws: Vec<&Word<'_>> = ws.iter().collect();
    let mut key = false;
    if let Some(mark) = ws
        .last()
        .copied()
        .filter(|w| w.text != "(key)" && w.text.starts_with('(') && ws.len() > 1)
    {
        return Err(p.err(
            mark.col,
            format!("unknown mark `{}`", mark.text),
            Some(match closest(mark.text, ["(key)"]) {
                Some(_) => "did you mean `(key)`?".into(),
                None => "the only mark is `(key)`, at the end of a step".into(),
            }),
        ));
    }
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
            let hint = match closest(other, ["client", "server", "expect", "wire"]) {
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
        match w.text.replace('_', "").parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            Ok(_) => Err(p.err(
                w.col,
                format!(
                    "`{}` is too large: `{}` takes {what} from 0 to {max}",
                    w.text, verb.text
                ),
                Some(format!("a whole number from 0 to {max}")),
            )),
            Err(_) => Err(p.err(
                w.col,
                format!("expected {what}, found `{}`", w.text),
                Some(format!("a whole number from 0 to {max}")),
            )),
        }
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
        let hint = match action {
            Action::Read | Action::ReadAll => format!(
                "`{}` takes no size: each read asks for up to 65536 bytes and returns what is there{}",
                verb.text,
                if action == Action::Read {
                    "; `read-all` reads until end of file"
                } else {
                    ""
                }
            ),
            _ if n_args == 0 => format!(
                "`{}` takes nothing after it but `on NAME`{}",
                verb.text,
                if creates_default(&action).is_some() {
                    " or `as NAME`"
                } else {
                    ""
                }
            ),
            _ => "use `on NAME` to choose a descriptor and `as NAME` to name a new one".into(),
        };
        return Err(p.err(
            extra.col,
            format!("unexpected `{}` after `{}`", extra.text, verb.text),
            Some(hint),
        ));
    }

    let creates_default = creates_default(&action);
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
    let known = &fds.open[side_index(side)];
    let uses_fd = !matches!(action, Action::Listen | Action::Connect | Action::Sleep(_));
    if uses_fd && !known.contains(&fd) {
        let mut names: Vec<&str> = known.iter().map(String::as_str).collect();
        names.sort_unstable();
        let closed_at = fds.closed[side_index(side)].get(&fd);
        let hint = if let Some(at) = closed_at {
            format!(
                "`{fd}` was closed at line {at}; a closed descriptor cannot be used again{}",
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" (the {} still has: {})", side.name(), names.join(", "))
                }
            )
        } else if names.is_empty() {
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
        fds.close(side, &fd, p.line_no);
    }
    if let Some(c) = &creates {
        fds.create(side, c);
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

/// The descriptor a call creates unless it says `as NAME`.
fn creates_default(action: &Action) -> Option<&'static str> {
    match action {
        Action::Listen => Some("listener"),
        Action::Connect | Action::Accept => Some("conn"),
        Action::Dup => Some("dup"),
        _ => None,
    }
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
    fn every_mistake_of_a_file_is_reported_in_one_run() {
        let text = "name: lab\nteaches: lab #3, with typos\nname: again\n\
                    server listen\nclient connect\nserver accept\n\
                    client write 100\n  expect ret abc\n\
                    client shutdown SHUT_WR (kee)\n  expect state FIN_WAIT_1\n  expekt wire FIN\n  expect stat FIN_WAIT1\n\
                    server read 5\n  expect errno ECONNRESTE\n\
                    client sleep 99999\nclient close\nclient write 10\n\
                    expect client ends TIME-WAIT\nexpect server ends BANANA\n";
        let e = parse_all(text, "lab.scenario").unwrap_err();
        let got: Vec<(usize, usize, &str)> = e
            .errors
            .iter()
            .map(|e| (e.line, e.col, e.hint.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, 1, "line 1 already says `name:`; keep one"),
                (8, 14, got[1].2),
                (9, 25, "did you mean `(key)`?"),
                (10, 16, "did you mean `FIN_WAIT1`?"),
                (11, 3, "did you mean `expect`?"),
                (12, 10, "did you mean `state`?"),
                (13, 13, got[6].2),
                (14, 16, "did you mean `ECONNRESET`?"),
                (15, 14, got[8].2),
                (17, 8, got[9].2),
                (18, 20, "did you mean `TIME_WAIT`?"),
                (19, 20, got[11].2),
            ],
            "{e}"
        );
        assert!(e.errors[1].message.contains("`abc` is not a number"));
        assert!(got[6].2.contains("takes no size"), "{}", got[6].2);
        assert!(
            e.errors[8].message.contains("from 0 to 60000"),
            "{}",
            e.errors[8]
        );
        assert!(got[9].2.contains("was closed at line 16"), "{}", got[9].2);
        assert!(e.errors[11].message.contains("unknown TCP state `BANANA`"));
        let shown = e.to_string();
        assert!(
            shown.starts_with("12 mistakes in lab.scenario:\nlab.scenario:3:1: "),
            "{shown}"
        );
        // `parse` keeps its one-error form: the first.
        assert_eq!(parse(text, "lab.scenario").unwrap_err(), e.errors[0]);
        // Negative control: the same file with the mistakes fixed is valid.
        let fixed = "name: lab\nteaches: lab #3, with typos\n\
                     server listen\nclient connect\nserver accept\n\
                     client write 100\n  expect ret 100\n\
                     client shutdown SHUT_WR (key)\n  expect state FIN_WAIT1\n  expect wire FIN\n\
                     server read\n  expect errno ECONNRESET\n\
                     client sleep 999\nclient close\n\
                     expect client ends TIME_WAIT\nexpect server ends CLOSED\n";
        let s = parse_all(fixed, "lab.scenario").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.teaches, "lab #3, with typos", "a # in teaches: is kept");
    }

    #[test]
    fn a_step_with_a_mistake_still_makes_its_descriptor() {
        // The typo is in connect's line; the later steps on `conn` are fine.
        let e = parse_all(
            "name: x\nserver listen\nclient connect (kee)\nserver accept\nclient write 5\nclient close\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].line, 3);
    }

    #[test]
    fn at_most_twenty_mistakes_are_listed() {
        let mut text = String::from("name: x\nserver listen\n");
        for _ in 0..30 {
            text.push_str("server lisen\n");
        }
        let e = parse_all(&text, "f").unwrap_err();
        assert_eq!((e.errors.len(), e.more, e.count()), (20, 10, 30));
        assert!(e
            .to_string()
            .ends_with("… and 10 more not shown (fix these first)"));
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let s = parse("\u{feff}name: bom\nserver listen\n", "f").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "bom");
        // Only at the start: elsewhere it is a mistake like any other.
        assert!(parse("name: bom\n\u{feff}server listen\n", "f").is_err());
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
