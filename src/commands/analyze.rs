//! `hc-trace analyze FILE...`: the close story of every connection in a
//! capture, from the wire alone.
//!
//! ```text
//! files (mapped; gzip/zstd decompressed to an unlinked temporary file)
//!   -> readers (pcap/pcapng, zero-copy) -> merge by time -> decode (fast header path)
//!   -> flows (tracker) -> story (JSON / table row)
//!   ; -w: pcapng copy, every interface kept, a comment on each FIN/RST
//!   ; --conn: that connection's segments -> correlate -> render::text/json
//! ```
//!
//! Stories are written as soon as their connection is over, so output starts
//! early on a large file and nothing grows with the file but the output.
//! Frames are numbered from 1 in the order they are read, which for one
//! file is Wireshark's numbering and for several the order `mergecap`
//! writes them in.

use crate::cli::{AnalyzeArgs, Format};
use crate::error::{AppError, EXIT_USAGE};
use crate::sources::files::{CaptureFile, PcapngSink};
use hc_core::analyze::flows::{Pushed, Tracker};
use hc_core::analyze::story::{Filter, Story, KERNEL_NOTE};
use hc_core::capfile::merge::{FromFile, Merge};
use hc_core::capfile::pcapng::PcapngMeta;
use hc_core::capfile::read::{Interface, Item, Reader, RELEASE_EVERY};
use hc_core::correlate::correlate;
use hc_core::decode::fast::{decode, Decoded, Seg};
use hc_core::decode::frame::{linktype, WireError};
use hc_core::model::{LinkType, RawPacket, Segment};
use hc_core::report::{CaptureSummary, Report};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The analyze document's own schema (docs/json.md, "analyze").
pub const SCHEMA: u32 = 2;

/// Errors printed in full; beyond this they are only counted.
const MAX_ERRORS_SHOWN: usize = 10;

/// What `analyze` was asked to do.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    pub files: Vec<PathBuf>,
    pub filter: Filter,
    pub conn: Option<u64>,
    pub format: Format,
    pub write: Option<PathBuf>,
    /// How `--conn`'s timeline is drawn.
    pub style: hc_render::Style,
}

/// How the analysis ended, for the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A file was unreadable, not a capture, damaged (records skipped), or
    /// held records of a link type that is not decoded.
    BadInput,
    /// Stopped by a signal (exit code 128 + number); the output covers what was read.
    Interrupted(u8),
}

/// Writes stories as they come: a table row or an element of the JSON array.
struct Emitter<W: Write> {
    out: W,
    format: Format,
    filter: Filter,
    conn: Option<u64>,
    /// The story of `--conn`, kept for the timeline.
    picked: Option<Story>,
    shown: u64,
    total: u64,
    io_error: Option<std::io::Error>,
}

impl<W: Write> Emitter<W> {
    fn start(&mut self) {
        let r = match (self.format, self.conn) {
            (_, Some(_)) => Ok(()),
            // mermaid and svg without --conn are refused before analysis starts.
            (Format::Text | Format::Mermaid | Format::Svg, None) => {
                writeln!(self.out, "{}", hc_render::analyze::table_header())
            }
            (Format::Json, None) => write!(
                self.out,
                "{{\"schema\":{SCHEMA},\"note\":{},\"connections\":[",
                serde_json::Value::from(KERNEL_NOTE)
            ),
        };
        self.check(r);
    }

    fn emit(&mut self, s: Story) {
        self.total += 1;
        if let Some(id) = self.conn {
            if s.id == id {
                self.picked = Some(s);
            }
            return;
        }
        if !self.filter.wants(&s) || self.io_error.is_some() {
            return;
        }
        let r = match self.format {
            Format::Text | Format::Mermaid | Format::Svg => {
                writeln!(self.out, "{}", hc_render::analyze::table_row(&s))
            }
            Format::Json => {
                let sep = if self.shown == 0 { "\n" } else { ",\n" };
                serde_json::to_string(&s)
                    .map_err(std::io::Error::other)
                    .and_then(|j| write!(self.out, "{sep}{j}"))
            }
        };
        self.shown += 1;
        self.check(r);
    }

    fn check(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r {
            self.io_error.get_or_insert(e);
        }
    }
}

/// Per-run counters.
#[derive(Default)]
struct Counts {
    packets: u64,
    segments: u64,
    skipped: u64,
    errors_shown: usize,
    damaged: bool,
    bytes: u64,
    /// Segments whose TCP header the snap length cut: kept (every field up
    /// to the flags was captured) and not readable (cut before the flags).
    cut_kept: u64,
    cut_unreadable: u64,
    /// Records of link types that are not decoded, by link type.
    undecoded: BTreeMap<LinkType, u64>,
}

impl Counts {
    fn warn(&mut self, msg: &str) {
        self.skipped += 1;
        if self.errors_shown < MAX_ERRORS_SHOWN {
            eprintln!("warning: {msg}");
            self.errors_shown += 1;
        } else if self.errors_shown == MAX_ERRORS_SHOWN {
            eprintln!("warning: further skipped records are only counted");
            self.errors_shown += 1;
        }
    }

    /// What was not analysed, one sentence each (empty when nothing).
    fn gaps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (lt, n) in &self.undecoded {
            out.push(format!(
                "{n} records of link type {} not decoded: analyze does not read this link type",
                linktype::describe(*lt)
            ));
        }
        if self.cut_unreadable > 0 {
            out.push(format!(
                "{} frames too short to read: the snap length cut them before their TCP flags \
                 (or before the headers that say whether they hold TCP)",
                self.cut_unreadable
            ));
        }
        out
    }
}

/// The annotated copy (`-w`): every interface of every input, created at
/// the first interface described.
struct Annotated {
    path: PathBuf,
    sink: Option<PcapngSink>,
    /// (input file, its interface id) -> interface number in the copy.
    ifaces: HashMap<(usize, u32), u32>,
    error: Option<String>,
}

impl Annotated {
    fn interface(&mut self, file: usize, i: &Interface, source: &str) {
        if self.error.is_some() {
            return;
        }
        let snaplen = if i.snaplen == 0 { 262_144 } else { i.snaplen };
        let name = i.name.clone().unwrap_or_else(|| "capture".into());
        let description = match &i.description {
            Some(d) => format!("{d} (from {source})"),
            None => format!("packets of {source}"),
        };
        let n = self.ifaces.len() as u32;
        let r = match self.sink.as_mut() {
            None => {
                let meta = PcapngMeta {
                    linktype: i.linktype,
                    snaplen,
                    iface: name,
                    iface_description: description,
                    section_comment: format!(
                        "Copy annotated by hc-trace analyze: each FIN and RST carries its explanation.\n{KERNEL_NOTE}"
                    ),
                    application: format!("hc-trace {}", env!("CARGO_PKG_VERSION")),
                    os: None,
                };
                PcapngSink::create(&self.path, &meta).map(|s| self.sink = Some(s))
            }
            Some(sink) => sink.add_interface(i.linktype, snaplen, &name, &description),
        };
        match r {
            Ok(()) => {
                self.ifaces.insert((file, i.id), n);
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn write(&mut self, file: usize, iface: u32, pkt: &RawPacket, note: Option<&str>) {
        if self.error.is_some() {
            return;
        }
        let (Some(sink), Some(&out)) = (self.sink.as_mut(), self.ifaces.get(&(file, iface))) else {
            // The reader names an interface for every packet it yields.
            self.error = Some(format!(
                "a packet of interface {iface} before its description"
            ));
            return;
        };
        if let Err(e) = sink.write_packet_on(out, pkt, note) {
            self.error = Some(e.to_string());
        }
    }
}

/// Segments handed to the tracker thread at a time.
const BATCH: usize = 4096;

/// Where the tracker runs: here, or on a thread of its own so that reading
/// and decoding (this thread) and tracking use two cores. The thread is
/// used only when nothing needs the tracker's answer for each segment
/// (`-w` comments, `--conn` picking); batches through a bounded channel
/// keep memory flat. `HC_TRACE_THREADS=1` keeps everything on one thread.
enum Track {
    Here(Tracker),
    Thread {
        batch: Vec<Seg>,
        tx: std::sync::mpsc::SyncSender<Vec<Seg>>,
        stories: std::sync::mpsc::Receiver<Story>,
        handle: std::thread::JoinHandle<()>,
    },
}

impl Track {
    fn new(threaded: bool) -> Track {
        if !threaded {
            return Track::Here(Tracker::new());
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Seg>>(8);
        let (story_tx, stories) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("analyze-tracker".into())
            .spawn(move || {
                let mut t = Tracker::new();
                let mut send = |s: Story| {
                    let _ = story_tx.send(s);
                };
                for batch in rx {
                    for seg in &batch {
                        t.push(seg, &mut send);
                    }
                }
                t.finish(&mut send);
            });
        match spawned {
            Ok(handle) => Track::Thread {
                batch: Vec::with_capacity(BATCH),
                tx,
                stories,
                handle,
            },
            // No thread to be had: the same work on this one.
            Err(_) => Track::Here(Tracker::new()),
        }
    }

    /// Tracks one segment; the answer is there only when tracking here.
    fn push(&mut self, seg: &Seg, emit: &mut impl FnMut(Story)) -> Option<Pushed> {
        match self {
            Track::Here(t) => Some(t.push(seg, emit)),
            Track::Thread {
                batch, tx, stories, ..
            } => {
                batch.push(*seg);
                if batch.len() == BATCH {
                    let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
                    // The thread ends only when this side hangs up.
                    let _ = tx.send(full);
                    for s in stories.try_iter() {
                        emit(s);
                    }
                }
                None
            }
        }
    }

    fn finish(self, emit: &mut impl FnMut(Story)) {
        match self {
            Track::Here(t) => t.finish(emit),
            Track::Thread {
                batch,
                tx,
                stories,
                handle,
            } => {
                let _ = tx.send(batch);
                drop(tx);
                // Every story, in the tracker's order, until it hangs up.
                for s in stories.iter() {
                    emit(s);
                }
                // A panic over there is one here, as it would be on one thread.
                if let Err(panic) = handle.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
}

/// `hc-trace analyze`: the stories go to standard output, warnings and
/// errors to standard error.
pub fn run(a: AnalyzeArgs, color: bool) -> Result<ExitCode, AppError> {
    let opts = AnalyzeOptions {
        files: a.files,
        filter: a.filter.to_filter(),
        conn: a.conn,
        format: a.format,
        write: a.write,
        style: {
            let mut style = hc_render::Style {
                color,
                fold: !a.no_fold,
                ..hc_render::Style::default()
            };
            // `--conn` draws a timeline: on a terminal, it fits it.
            if let Some(w) = crate::out::terminal_columns(false) {
                style.width = w;
                style.fit = true;
            }
            style
        },
    };
    Ok(match analyze(&opts, std::io::stdout().lock()) {
        Outcome::Ok => ExitCode::SUCCESS,
        Outcome::BadInput => ExitCode::from(EXIT_USAGE),
        Outcome::Interrupted(code) => ExitCode::from(code),
    })
}

/// Runs `analyze`; output goes to `out`, warnings and errors to stderr.
pub fn analyze(opts: &AnalyzeOptions, out: impl Write) -> Outcome {
    // Open everything first: a typo in the last name should not cost a long read.
    let mut files = Vec::new();
    for p in &opts.files {
        match CaptureFile::open(p) {
            Ok(f) => files.push(f),
            Err(e) => {
                let hint = match e.source.kind() {
                    std::io::ErrorKind::IsADirectory => {
                        "give the capture files inside it: hc-trace analyze DIR/*.pcap*"
                    }
                    std::io::ErrorKind::StorageFull => {
                        "a compressed capture is decompressed into $TMPDIR (or /tmp): set TMPDIR to a \
                         directory with room for it"
                    }
                    _ if e.action.starts_with("cannot decompress") => {
                        "the file starts like a compressed file but is damaged or cut short"
                    }
                    _ => "analyze reads pcap and pcapng files (gzip or zstd compressed or not)",
                };
                AppError::usage(e.to_string()).hint(hint).report();
                return Outcome::BadInput;
            }
        }
    }
    let names: Vec<String> = opts.files.iter().map(|p| p.display().to_string()).collect();
    let mut em = Emitter {
        out: std::io::BufWriter::with_capacity(1 << 16, out),
        format: opts.format,
        filter: opts.filter.clone(),
        conn: opts.conn,
        picked: None,
        shown: 0,
        total: 0,
        io_error: None,
    };
    em.start();
    let mut outcome = Outcome::Ok;
    // The files that are captures, in the order given.
    let mut readers = Vec::new();
    let mut index = Vec::new();
    for (i, f) in files.iter().enumerate() {
        match Reader::new(f.bytes(), f.path()) {
            Ok(r) => {
                readers.push(r);
                index.push(i);
            }
            Err(e) => {
                AppError::usage(e.to_string())
                    .hint("analyze reads pcap and pcapng files (gzip or zstd compressed or not)")
                    .report();
                outcome = Outcome::BadInput;
            }
        }
    }
    let mut merge = Merge::new(readers);
    let threaded = opts.write.is_none()
        && opts.conn.is_none()
        && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
        && std::env::var_os("HC_TRACE_THREADS").is_none_or(|v| v != "1");
    let mut tracker = Track::new(threaded);
    let mut counts = Counts::default();
    let mut annotated = opts.write.clone().map(|path| Annotated {
        path,
        sink: None,
        ifaces: HashMap::new(),
        error: None,
    });
    let mut picked_segs: Vec<Segment> = Vec::new();
    let mut picked_comments: Vec<(usize, String)> = Vec::new();
    let mut picked_snaplen: Option<u32> = None;
    let mut snaplens: HashMap<(usize, u32), u32> = HashMap::new();
    let mut frame: u64 = 0;
    let mut next_release = vec![RELEASE_EVERY; index.len()];

    while let Some(FromFile { file: m, item }) = merge.next_item() {
        let file = index[m];
        let source = &names[file];
        match item {
            Item::Packet(rec) => {
                counts.packets += 1;
                frame += 1;
                let mut note = None;
                match decode(rec.linktype, frame as usize, rec.ts, rec.orig_len, rec.data) {
                    Ok(Decoded::Tcp(seg)) => {
                        counts.segments += 1;
                        if seg.cut != 0 {
                            counts.cut_kept += 1;
                        }
                        // Tracked on the other thread: no answer needed here.
                        if let Some(p) = tracker.push(&seg, &mut |s| em.emit(s)) {
                            if opts.conn == Some(p.conn) {
                                if let Ok(Some(s)) = hc_core::decode::frame::parse_bytes(
                                    rec.linktype,
                                    frame as usize,
                                    rec.ts,
                                    rec.orig_len,
                                    rec.data,
                                ) {
                                    picked_segs.push(s);
                                    picked_snaplen.get_or_insert(
                                        snaplens.get(&(file, rec.iface)).copied().unwrap_or(0),
                                    );
                                    // hc-trace's own captures carry each cause as a comment.
                                    let said = rec.comments();
                                    if !said.is_empty() {
                                        picked_comments.push((frame as usize, said.join(" / ")));
                                    }
                                }
                            }
                            note = p.note;
                        }
                    }
                    Ok(Decoded::Other) => {}
                    Err(WireError::UnsupportedLinkType(lt)) => {
                        *counts.undecoded.entry(lt).or_insert(0) += 1;
                    }
                    Err(e) if e.is_snap_cut(rec.data.len(), rec.orig_len) => {
                        counts.cut_unreadable += 1;
                    }
                    Err(e) => counts.warn(&format!(
                        "{source}: record {} (frame {frame}) at byte offset {}: {e}; skipped",
                        rec.index + 1,
                        rec.offset
                    )),
                }
                if let Some(a) = annotated.as_mut() {
                    let pkt = RawPacket {
                        ts: rec.ts,
                        orig_len: rec.orig_len,
                        data: rec.data.to_vec(),
                    };
                    a.write(file, rec.iface, &pkt, note.as_deref());
                }
            }
            Item::Interface(i) => {
                snaplens.insert((file, i.id), i.snaplen);
                if let Some(a) = annotated.as_mut() {
                    a.interface(file, &i, source);
                }
            }
            Item::Section { .. } => {}
            Item::Damaged { error, resumed } => {
                counts.damaged = true;
                let tail = if resumed {
                    "; skipped, reading on"
                } else {
                    "; reading stops here"
                };
                counts.warn(&format!("{error}{tail}"));
            }
        }
        // Give the pages behind back every few MiB, and look for Ctrl-C.
        let pos = merge.position(m);
        if pos >= next_release[m] {
            next_release[m] = pos + RELEASE_EVERY;
            files[file].release_before(pos);
            if hc_sys::signals::caught().is_some() {
                break;
            }
        }
    }
    for f in &files {
        counts.bytes += f.len();
    }
    if let Some(sig) = hc_sys::signals::caught() {
        eprintln!("interrupted by {sig}: the output covers what was read until then");
        outcome = Outcome::Interrupted(hc_sys::signals::exit_code(sig));
    }
    tracker.finish(&mut |s| em.emit(s));
    if (counts.damaged || !counts.undecoded.is_empty()) && outcome == Outcome::Ok {
        outcome = Outcome::BadInput;
    }
    let read_names: Vec<String> = index.iter().map(|&i| names[i].clone()).collect();
    let mut notes = merge.notes(&read_names);
    for (f, n) in files.iter().zip(&names) {
        if let Some(c) = f.compression().name() {
            notes.push(format!(
                "{n}: {c}-compressed ({} bytes on disk), read as {} bytes",
                f.stored_len(),
                f.len()
            ));
        }
    }
    let gaps = counts.gaps();
    // The text summary says these itself; JSON and --conn say them on stderr too.
    if opts.conn.is_some() || opts.format == Format::Json {
        for g in notes.iter().chain(&gaps) {
            eprintln!("note: {g}");
        }
    }

    let n = |k: u64, one: &str, many: &str| hc_render::words::count(k, one, many);
    let mut summary = format!(
        "{} ({} shown), {}, {}, {}, {} read from {}",
        n(em.total, "connection", "connections"),
        em.shown,
        n(counts.packets, "packet", "packets"),
        n(counts.segments, "TCP segment", "TCP segments"),
        n(counts.skipped, "skipped record", "skipped records"),
        n(counts.bytes, "byte", "bytes"),
        names.join(", ")
    );
    if counts.cut_kept > 0 {
        summary.push_str(&format!(
            "\n{} segments had TCP options cut by the snap length (kept: their flags, numbers and lengths were captured)",
            counts.cut_kept
        ));
    }
    for g in notes.iter().chain(&gaps) {
        summary.push('\n');
        summary.push_str(g);
    }
    let r = match (opts.conn, opts.format) {
        (Some(id), fmt) => write_conn(
            &mut em,
            id,
            (picked_segs, picked_comments),
            picked_snaplen.unwrap_or(0),
            &names,
            fmt,
            counts.skipped,
            &opts.style,
        ),
        (None, Format::Text | Format::Mermaid | Format::Svg) => {
            writeln!(em.out, "\n{summary}\n{KERNEL_NOTE}")
        }
        (None, Format::Json) => {
            let undecoded: Vec<serde_json::Value> = counts
                .undecoded
                .iter()
                .map(|(lt, n)| {
                    serde_json::json!({
                        "linktype": lt,
                        "name": linktype::name(*lt).map(|n| format!("LINKTYPE_{n}")),
                        "records": n,
                    })
                })
                .collect();
            let inputs: Vec<serde_json::Value> = files
                .iter()
                .zip(&names)
                .map(|(f, n)| {
                    serde_json::json!({
                        "path": n,
                        "compression": f.compression().name(),
                        "bytes": f.len(),
                    })
                })
                .collect();
            writeln!(
                em.out,
                "\n],\"skipped_records\":{},\"packets\":{},\"segments\":{},\"files\":{},\"inputs\":{},\
                 \"snap_cut\":{{\"kept\":{},\"unreadable\":{}}},\"undecoded\":{},\"notes\":{}}}",
                counts.skipped,
                counts.packets,
                counts.segments,
                serde_json::Value::from(names.clone()),
                serde_json::Value::from(inputs),
                counts.cut_kept,
                counts.cut_unreadable,
                serde_json::Value::from(undecoded),
                serde_json::Value::from(notes.clone()),
            )
        }
    };
    em.check(r);
    let r = em.out.flush();
    em.check(r);
    if let Some(e) = &em.io_error {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            AppError::io(
                "cannot write the output".into(),
                std::io::Error::new(e.kind(), e.to_string()),
            )
            .report();
            outcome = Outcome::BadInput;
        }
    }
    if opts.conn.is_some() && em.picked.is_none() {
        AppError::usage(format!(
            "no connection #{} in {}",
            opts.conn.unwrap_or(0),
            names.join(", ")
        ))
        .hint(
            "the summary table (hc-trace analyze FILE, without --conn) lists every connection's ID",
        )
        .report();
        outcome = Outcome::BadInput;
    }
    if let Some(a) = annotated {
        match (a.error, a.sink) {
            (Some(e), _) => {
                AppError::usage(format!(
                    "the annotated copy {} was not written: {e}",
                    a.path.display()
                ))
                .report();
                outcome = Outcome::BadInput;
            }
            (None, Some(sink)) => match sink.finish() {
                Ok(p) => eprintln!(
                    "annotated copy: {} ({} interface{})",
                    p.display(),
                    a.ifaces.len(),
                    if a.ifaces.len() == 1 { "" } else { "s" }
                ),
                Err(e) => {
                    AppError::io(
                        format!("cannot save {}", a.path.display()),
                        std::io::Error::other(e.to_string()),
                    )
                    .report();
                    outcome = Outcome::BadInput;
                }
            },
            (None, None) => eprintln!("no packets, so no annotated copy was written"),
        }
    }
    outcome
}

/// `--conn ID`: the story, then the timeline drawn by the scenario renderer.
#[allow(clippy::too_many_arguments)]
fn write_conn<W: Write>(
    em: &mut Emitter<W>,
    id: u64,
    (segs, recorded): (Vec<Segment>, Vec<(usize, String)>),
    snaplen: u32,
    names: &[String],
    fmt: Format,
    skipped: u64,
    style: &hc_render::Style,
) -> std::io::Result<()> {
    let Some(story) = em.picked.clone() else {
        return Ok(());
    };
    let packets = segs.len();
    let report = Report {
        scenario: format!("connection #{id}"),
        teaches: format!("{} → {}, read from {}", story.a, story.b, names.join(", ")),
        origin: names.join(", "),
        client: Some(story.a),
        server: Some(story.b),
        namespace: if recorded.is_empty() {
            "saved capture (no calls: every cause is inferred from the wire)".into()
        } else {
            "saved capture (no calls: each ← cause is inferred from the wire; `recorded:` is \
             the cause the capture's packet comment holds, numbered as in the run that made it)"
                .into()
        },
        pacing: String::new(),
        timeline: correlate(vec![], segs, None),
        capture: CaptureSummary {
            iface: names.join(", "),
            filter: format!("connection #{id}"),
            packets,
            snaplen,
            ..Default::default()
        },
        recorded,
        ..Default::default()
    };
    match fmt {
        Format::Mermaid | Format::Svg => {
            let drawn =
                hc_render::output(&report, fmt.to_render(), hc_render::View::Timeline, style)
                    .map_err(std::io::Error::other)?;
            write!(em.out, "{drawn}")
        }
        Format::Text => {
            // On a terminal, the story's sentences fit it too.
            let fit = |text: &str| -> String {
                if !style.fit {
                    return text.to_string();
                }
                text.lines()
                    .flat_map(|l| {
                        let lead = l.len() - l.trim_start().len();
                        hc_render::paint::fit_line(l, style.width, lead + 2)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            writeln!(em.out, "{}\n", fit(&hc_render::analyze::sentence(&story)))?;
            write!(em.out, "{}", hc_render::text::render_with(&report, style))?;
            writeln!(em.out, "{}", fit(KERNEL_NOTE))
        }
        Format::Json => {
            let doc = serde_json::json!({
                "schema": SCHEMA,
                "note": KERNEL_NOTE,
                "connections": [story],
                "skipped_records": skipped,
                "timeline": hc_render::json::document(&report),
                "recorded": report
                    .recorded
                    .iter()
                    .map(|(frame, comment)| serde_json::json!({"frame": frame, "comment": comment}))
                    .collect::<Vec<_>>(),
            });
            writeln!(
                em.out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
        }
    }
}
