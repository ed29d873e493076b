//! `hc-trace analyze FILE...`: the close story of every connection in a
//! capture, from the wire alone.
//!
//! ```text
//! reader (pcap/pcapng, zero-copy) -> decode (fast header path) -> flows (tracker)
//!       -> story (JSON / table row) ; -w: pcapng copy with a comment on each FIN/RST
//!       ; --conn: that connection's segments -> correlate -> render::text/json
//! ```
//!
//! Stories are written as soon as their connection is over, so output starts
//! early on a large file and nothing grows with the file but the output.

use crate::cli::{AnalyzeArgs, Format};
use crate::error::{AppError, EXIT_USAGE};
use crate::sources::files::{CaptureFile, PcapngSink};
use hc_core::analyze::flows::Tracker;
use hc_core::analyze::story::{Filter, Story, KERNEL_NOTE};
use hc_core::capfile::pcapng::PcapngMeta;
use hc_core::capfile::read::Item;
use hc_core::correlate::correlate;
use hc_core::decode::fast::{decode, Decoded};
use hc_core::model::{LinkType, RawPacket, Segment};
use hc_core::report::{CaptureSummary, Report};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// A file was unreadable, not a capture, or damaged (records skipped).
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
                "{{\"schema\":1,\"note\":{},\"connections\":[",
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
}

/// The annotated copy (`-w`): created at the first packet, which gives the link type.
struct Annotated {
    path: PathBuf,
    sink: Option<(PcapngSink, LinkType)>,
    error: Option<String>,
}

impl Annotated {
    fn write(
        &mut self,
        lt: LinkType,
        ts: i64,
        orig_len: u32,
        data: &[u8],
        note: Option<&str>,
        source: &str,
    ) {
        if self.error.is_some() {
            return;
        }
        if self.sink.is_none() {
            let meta = PcapngMeta {
                linktype: lt,
                snaplen: 262_144,
                iface: "capture".into(),
                iface_description: format!("packets of {source}"),
                section_comment: format!(
                    "Copy of {source} annotated by hc-trace analyze: each FIN and RST carries its explanation.\n{KERNEL_NOTE}"
                ),
                application: format!("hc-trace {}", env!("CARGO_PKG_VERSION")),
                os: None,
            };
            match PcapngSink::create(&self.path, &meta) {
                Ok(s) => self.sink = Some((s, lt)),
                Err(e) => {
                    self.error = Some(e.to_string());
                    return;
                }
            }
        }
        let Some((sink, first)) = self.sink.as_mut() else {
            return;
        };
        if *first != lt {
            self.error = Some(format!(
                "the inputs have different link types ({first} and {lt}); one annotated file holds one link type"
            ));
            return;
        }
        let pkt = RawPacket {
            ts,
            orig_len,
            data: data.to_vec(),
        };
        if let Err(e) = sink.write_packet(&pkt, note) {
            self.error = Some(e.to_string());
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
        style: hc_render::Style {
            color,
            ..hc_render::Style::default()
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
                let hint = if e.source.kind() == std::io::ErrorKind::IsADirectory {
                    "give the capture files inside it: hc-trace analyze DIR/*.pcap*"
                } else {
                    "analyze reads pcap and pcapng files"
                };
                AppError::usage(e.to_string()).hint(hint).report();
                return Outcome::BadInput;
            }
        }
    }
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
    let mut tracker = Tracker::new();
    let mut counts = Counts::default();
    let mut annotated = opts.write.clone().map(|path| Annotated {
        path,
        sink: None,
        error: None,
    });
    let mut picked_segs: Vec<Segment> = Vec::new();
    let mut outcome = Outcome::Ok;
    let mut frame: usize = 0;

    for (file, path) in files.iter().zip(&opts.files) {
        let source = path.display().to_string();
        counts.bytes += file.len();
        let keep_going = || hc_sys::signals::caught().is_none();
        let r = file.for_each_until(&keep_going, |item| match item {
            Item::Packet(rec) => {
                counts.packets += 1;
                let this_frame = frame;
                frame += 1;
                let mut note = None;
                match decode(rec.linktype, this_frame, rec.ts, rec.orig_len, rec.data) {
                    Ok(Decoded::Tcp(seg)) => {
                        counts.segments += 1;
                        let p = tracker.push(&seg, &mut |s| em.emit(s));
                        if opts.conn == Some(p.conn) {
                            let pkt = RawPacket {
                                ts: rec.ts,
                                orig_len: rec.orig_len,
                                data: rec.data.to_vec(),
                            };
                            if let Ok(Some(s)) =
                                hc_core::decode::frame::parse_frame(rec.linktype, this_frame, &pkt)
                            {
                                picked_segs.push(s);
                            }
                        }
                        note = p.note;
                    }
                    Ok(Decoded::Other) => {}
                    Err(e) => counts.warn(&format!(
                        "{source}: record {} at byte offset {}: {e}; skipped",
                        rec.index + 1,
                        rec.offset
                    )),
                }
                if let Some(a) = annotated.as_mut() {
                    a.write(
                        rec.linktype,
                        rec.ts,
                        rec.orig_len,
                        rec.data,
                        note.as_deref(),
                        &source,
                    );
                }
            }
            Item::Section { .. } | Item::Interface(_) => {}
            Item::Damaged { error, resumed } => {
                counts.damaged = true;
                let tail = if resumed {
                    "; skipped, reading on"
                } else {
                    "; reading stops here"
                };
                counts.warn(&format!("{error}{tail}"));
            }
        });
        if let Err(e) = r {
            AppError::usage(e.to_string()).report();
            outcome = Outcome::BadInput;
        }
    }
    if let Some(sig) = hc_sys::signals::caught() {
        eprintln!("interrupted by {sig}: the output covers what was read until then");
        outcome = Outcome::Interrupted(hc_sys::signals::exit_code(sig));
    }
    tracker.finish(&mut |s| em.emit(s));
    if counts.damaged && outcome == Outcome::Ok {
        outcome = Outcome::BadInput;
    }

    let names: Vec<String> = opts.files.iter().map(|p| p.display().to_string()).collect();
    let summary = format!(
        "{} connections ({} shown), {} packets, {} TCP segments, {} skipped records, {} bytes read from {}",
        em.total,
        em.shown,
        counts.packets,
        counts.segments,
        counts.skipped,
        counts.bytes,
        names.join(", ")
    );
    let r = match (opts.conn, opts.format) {
        (Some(id), fmt) => write_conn(
            &mut em,
            id,
            picked_segs,
            &names,
            fmt,
            counts.skipped,
            &opts.style,
        ),
        (None, Format::Text | Format::Mermaid | Format::Svg) => {
            writeln!(em.out, "\n{summary}\n{KERNEL_NOTE}")
        }
        (None, Format::Json) => writeln!(
            em.out,
            "\n],\"skipped_records\":{},\"packets\":{},\"segments\":{},\"files\":{}}}",
            counts.skipped,
            counts.packets,
            counts.segments,
            serde_json::Value::from(names.clone())
        ),
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
            (None, Some((sink, _))) => match sink.finish() {
                Ok(p) => eprintln!("annotated copy: {}", p.display()),
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
fn write_conn<W: Write>(
    em: &mut Emitter<W>,
    id: u64,
    segs: Vec<Segment>,
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
        namespace: "saved capture (no calls: every cause is inferred from the wire)".into(),
        pacing: String::new(),
        timeline: correlate(vec![], segs, None),
        capture: CaptureSummary {
            iface: names.join(", "),
            filter: format!("connection #{id}"),
            packets,
            ..Default::default()
        },
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
            writeln!(em.out, "{}\n", hc_render::analyze::sentence(&story))?;
            write!(em.out, "{}", hc_render::text::render_with(&report, style))?;
            writeln!(em.out, "{KERNEL_NOTE}")
        }
        Format::Json => {
            let doc = serde_json::json!({
                "schema": 1,
                "note": KERNEL_NOTE,
                "connections": [story],
                "skipped_records": skipped,
                "timeline": hc_render::json::document(&report),
            });
            writeln!(
                em.out,
                "{}",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
        }
    }
}
