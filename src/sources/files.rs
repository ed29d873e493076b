//! Capture files on disk: reading them (mapped, through the core's reader)
//! and writing the annotated pcapng (through the core's encoder), so that a
//! reader never sees a half-written file and nothing is left behind.

use hc_core::capfile::pcapng::{self, EncodeError, PcapngMeta};
use hc_core::model::RawPacket;
use hc_sys::mmap::Mapped;
use hc_sys::owner::give_to_invoking_user;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An opened capture file.
pub struct CaptureFile {
    path: PathBuf,
    map: Mapped,
    compression: Compression,
    /// Bytes on disk (the compressed size when it was compressed).
    stored: u64,
}

/// How a capture file was stored, told by its first bytes (not its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn sniff(magic: &[u8]) -> Compression {
        match magic {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    pub fn name(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
        }
    }
}

/// Why a capture file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct OpenError {
    pub path: PathBuf,
    /// "cannot open", "cannot decompress (gzip)", ...
    pub action: String,
    #[source]
    pub source: io::Error,
}

impl CaptureFile {
    /// Opens a capture for reading. A gzip- or zstd-compressed file is
    /// decompressed as a stream into an unlinked temporary file under
    /// `$TMPDIR` (or /tmp), which is mapped like any capture: memory stays
    /// flat whatever the size, and nothing is left behind, even if the
    /// process dies, as the file has no name once it is open.
    pub fn open(path: &Path) -> Result<CaptureFile, OpenError> {
        let err = |action: &str, source| OpenError {
            path: path.to_path_buf(),
            action: action.to_string(),
            source,
        };
        let file = File::open(path).map_err(|e| err("cannot open", e))?;
        let meta = file.metadata().map_err(|e| err("cannot open", e))?;
        if meta.is_dir() {
            return Err(err(
                "cannot open",
                io::Error::new(io::ErrorKind::IsADirectory, "is a directory"),
            ));
        }
        let mut magic = [0u8; 4];
        let n = read_prefix(&file, &mut magic).map_err(|e| err("cannot read", e))?;
        let compression = Compression::sniff(&magic[..n]);
        let map = match compression {
            Compression::None => Mapped::of_file(&file).map_err(|e| err("cannot open", e))?,
            c => decompress(file, c).map_err(|e| {
                err(
                    &format!("cannot decompress ({})", c.name().unwrap_or("?")),
                    e,
                )
            })?,
        };
        Ok(CaptureFile {
            path: path.to_path_buf(),
            map,
            compression,
            stored: meta.len(),
        })
    }

    /// Bytes of the capture (decompressed).
    pub fn len(&self) -> u64 {
        self.map.bytes().len() as u64
    }

    /// Bytes on disk.
    pub fn stored_len(&self) -> u64 {
        self.stored
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The capture's bytes, for [`hc_core::capfile::read::Reader`].
    pub fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// Gives the pages before `pos` back to the kernel (see [`Mapped::release_before`]).
    pub fn release_before(&self, pos: usize) {
        self.map.release_before(pos);
    }
}

/// Reads up to `buf.len()` bytes from the start of `file` without moving
/// its position for later readers (positional read).
fn read_prefix(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Decompresses `file` into a temporary file that is unlinked at once and
/// maps it.
fn decompress(file: File, c: Compression) -> io::Result<Mapped> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir();
    let temp = dir.join(format!(
        ".hc-trace-decompressed-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", temp.display())))?;
    // Unlinked before anything is written: no name, nothing to clean up.
    std::fs::remove_file(&temp)?;
    let mut input = io::BufReader::with_capacity(1 << 16, file);
    let mut sink = io::BufWriter::with_capacity(1 << 16, &mut out);
    match c {
        Compression::Gzip => {
            // Concatenated members (gzip a b > c) are one stream, as gzip -d reads them.
            let mut d = flate2::bufread::MultiGzDecoder::new(input);
            io::copy(&mut d, &mut sink)?;
        }
        Compression::Zstd => zstd_frames(&mut input, &mut sink)?,
        Compression::None => {
            io::copy(&mut input, &mut sink)?;
        }
    }
    sink.flush().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "{} (in {}): {e}",
                "writing the decompressed capture",
                dir.display()
            ),
        )
    })?;
    drop(sink);
    Mapped::of_file(&out)
}

/// Every zstd frame of the stream, one after the other (skippable frames
/// skipped), as `zstd -d` reads them.
fn zstd_frames<R: io::BufRead>(input: &mut R, out: &mut impl Write) -> io::Result<()> {
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
    let mut frame = FrameDecoder::new();
    loop {
        if input.fill_buf()?.is_empty() {
            return Ok(());
        }
        match StreamingDecoder::new_with_decoder(&mut *input, &mut frame) {
            Ok(mut d) => {
                io::copy(&mut d, out)?;
            }
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                io::copy(
                    &mut io::Read::take(&mut *input, u64::from(length)),
                    &mut io::sink(),
                )?;
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not zstd data that can be read: {e}"),
                ))
            }
        }
    }
}

/// Why a text input (a scenario file, an answer file) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is larger than {max} bytes, the most {what} may have", path.display())]
    TooLarge {
        path: PathBuf,
        max: usize,
        what: &'static str,
    },
    #[error("{} is not text (not UTF-8 at byte {at})", path.display())]
    NotText { path: PathBuf, at: usize },
}

/// Reads a text input of at most `max` bytes: never more than `max + 1`
/// bytes are read, whatever `path` is (`/dev/zero`, a FIFO, a terminal), so
/// memory stays bounded. `what` names it in the error ("a scenario file").
pub fn read_text(path: &Path, max: usize, what: &'static str) -> Result<String, InputError> {
    use std::io::Read;
    let io_err = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() > max {
        return Err(InputError::TooLarge {
            path: path.to_path_buf(),
            max,
            what,
        });
    }
    String::from_utf8(bytes).map_err(|e| InputError::NotText {
        path: path.to_path_buf(),
        at: e.utf8_error().valid_up_to(),
    })
}

/// Why the annotated capture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a file name to write a capture to", path.display())]
    BadPath { path: PathBuf },
    #[error("{} is a directory; -w names the capture file itself", path.display())]
    Directory { path: PathBuf },
    #[error("{} is a {kind}; a capture is written to a file, a FIFO, a character device or standard output (-w -)", path.display())]
    Refused { path: PathBuf, kind: &'static str },
    #[error("{what} is a terminal; a pcapng file is binary")]
    Terminal { what: String },
    #[error("the reader of {what} went away before the capture was complete")]
    ReaderGone { what: String },
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("{packets} packets but {comments} comment slots; there must be one slot per packet")]
    CommentCount { packets: usize, comments: usize },
    #[error("could not finish {}: {source}; what was captured is still in {}", path.display(), temp.display())]
    Finish {
        path: PathBuf,
        temp: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SaveError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            SaveError::Directory { path } => Some(format!(
                "give a file name, e.g. -w {}",
                path.join("run.pcapng").display()
            )),
            SaveError::Refused { .. } => {
                Some("choose another path, or --no-save to save nothing".into())
            }
            SaveError::Terminal { .. } => Some(
                "-w - is for a pipe: hc-trace scenario shut-wr -w - | wireshark -k -i -".into(),
            ),
            SaveError::Io { .. } | SaveError::Finish { .. } | SaveError::BadPath { .. } => {
                Some("choose a writable place with -w FILE, or --no-save to save nothing".into())
            }
            _ => None,
        }
    }

    /// The reader of a pipe left (`-w - | head -c 100`): said, but not a
    /// failure of the run, as for standard output.
    pub fn reader_gone(&self) -> bool {
        matches!(self, SaveError::ReaderGone { .. })
    }
}

/// Where the annotated capture goes, decided and checked before the run,
/// so a path that cannot be written is said before anything runs:
///
/// - a regular file (new, or replacing one) is written beside its final
///   name and renamed over it, so a reader never sees half a file;
/// - a FIFO, a character device (`/dev/null`) or standard output (`-w -`)
///   is written through, in place: it is never replaced by a file;
/// - a symbolic link is followed, never replaced: what it points to is
///   written as above (a missing target becomes a new file);
/// - anything else (a directory, a socket, a block device) is refused.
pub struct SaveTarget {
    /// The path as the user gave it, for messages.
    shown: PathBuf,
    kind: TargetKind,
}

enum TargetKind {
    /// A regular file at `path` (symbolic links resolved).
    File { path: PathBuf },
    /// Written through: a FIFO, a character device or standard output.
    Through { file: File, what: String },
}

/// The most symbolic links followed in a row (the kernel's own limit).
const MAX_LINKS: usize = 40;

impl SaveTarget {
    /// Checks `path` and opens what must be opened before the run. `-`
    /// is standard output. A FIFO is opened now: that waits until a reader
    /// comes (said once on standard error; Ctrl-C ends the wait at once).
    pub fn prepare(path: &Path) -> Result<SaveTarget, SaveError> {
        if path == Path::new("-") {
            return Self::stdout();
        }
        let shown = path.to_path_buf();
        let resolved = resolve_links(path)?;
        let kind = match std::fs::metadata(&resolved) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                probe_new_file(&resolved)?;
                TargetKind::File { path: resolved }
            }
            Err(source) => {
                return Err(SaveError::Io {
                    action: "cannot look at",
                    path: resolved,
                    source,
                })
            }
            Ok(m) => {
                use std::os::unix::fs::FileTypeExt;
                let ft = m.file_type();
                if ft.is_file() {
                    probe_new_file(&resolved)?;
                    TargetKind::File { path: resolved }
                } else if ft.is_dir() {
                    return Err(SaveError::Directory { path: shown });
                } else if ft.is_fifo() {
                    TargetKind::Through {
                        file: open_fifo(&resolved, &shown)?,
                        what: shown.display().to_string(),
                    }
                } else if ft.is_char_device() {
                    let file =
                        OpenOptions::new()
                            .write(true)
                            .open(&resolved)
                            .map_err(|source| SaveError::Io {
                                action: "cannot open",
                                path: shown.clone(),
                                source,
                            })?;
                    if std::io::IsTerminal::is_terminal(&file) {
                        return Err(SaveError::Terminal {
                            what: shown.display().to_string(),
                        });
                    }
                    TargetKind::Through {
                        file,
                        what: shown.display().to_string(),
                    }
                } else {
                    let kind = if ft.is_block_device() {
                        "block device"
                    } else if ft.is_socket() {
                        "socket"
                    } else {
                        "special file"
                    };
                    return Err(SaveError::Refused { path: shown, kind });
                }
            }
        };
        Ok(SaveTarget { shown, kind })
    }

    /// `-w -`: a copy of standard output's descriptor, unless it is a terminal.
    fn stdout() -> Result<SaveTarget, SaveError> {
        use std::os::fd::AsFd;
        let what = "standard output".to_string();
        if std::io::IsTerminal::is_terminal(&io::stdout()) {
            return Err(SaveError::Terminal { what });
        }
        let fd = io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| SaveError::Io {
                action: "cannot use",
                path: PathBuf::from("-"),
                source,
            })?;
        Ok(SaveTarget {
            shown: PathBuf::from("-"),
            kind: TargetKind::Through {
                file: File::from(fd),
                what,
            },
        })
    }

    /// Standard output is the capture (`-w -`): the run's own output must go elsewhere.
    pub fn is_stdout(&self) -> bool {
        self.shown == Path::new("-")
    }
}

/// Follows symbolic links in the last component of `path` (the kernel
/// follows those in its directories): what they point to is the target.
fn resolve_links(path: &Path) -> Result<PathBuf, SaveError> {
    let mut cur = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&cur).map_err(|source| SaveError::Io {
                    action: "cannot read the link",
                    path: cur.clone(),
                    source,
                })?;
                cur = match cur.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(cur),
        }
    }
    Err(SaveError::Io {
        action: "cannot follow",
        path: path.to_path_buf(),
        source: io::Error::other(format!("more than {MAX_LINKS} symbolic links in a row")),
    })
}

/// The temporary file a capture is written to before it is renamed to `path`.
fn temp_for(path: &Path) -> Result<(PathBuf, PathBuf), SaveError> {
    let name = path.file_name().ok_or_else(|| SaveError::BadPath {
        path: path.to_path_buf(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp-{}", std::process::id()));
    Ok((dir.clone(), dir.join(temp_name)))
}

/// Before the run: the directory exists (made if missing, for the invoking
/// user) and a file can be created in it; a temporary file is made and
/// removed again, so a read-only or foreign directory is found now, not
/// after the run. Temporary files of hc-trace runs that no longer exist
/// (killed while saving) are removed, with a note.
fn probe_new_file(path: &Path) -> Result<(), SaveError> {
    let (dir, temp) = temp_for(path)?;
    create_dirs_for_user(&dir)?;
    remove_stale_temps(&dir, path);
    let file = create_exclusive(&temp)?;
    drop(file);
    let _ = std::fs::remove_file(&temp);
    Ok(())
}

/// Removes `.NAME.tmp-PID` files beside `path` whose process is gone.
fn remove_stale_temps(dir: &Path, path: &Path) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || hc_sys::system::process_exists(pid) {
            continue;
        }
        if std::fs::remove_file(e.path()).is_ok() {
            eprintln!(
                "note: removed {}, left by hc-trace process {pid}, which no longer exists (killed while saving)",
                e.path().display()
            );
        }
    }
}

/// Opens a FIFO for writing. Without a reader the open would block
/// silently, so it is tried without blocking first; if nobody reads yet,
/// that is said once and the open waits (Ctrl-C ends the wait at once).
fn open_fifo(path: &Path, shown: &Path) -> Result<File, SaveError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| SaveError::Io {
        action: "cannot open",
        path: shown.to_path_buf(),
        source,
    };
    match OpenOptions::new()
        .write(true)
        .custom_flags(hc_sys::system::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => {
            use std::os::fd::AsFd;
            hc_sys::system::set_blocking(f.as_fd()).map_err(err)?;
            Ok(f)
        }
        // ENXIO: no reader yet.
        Err(e) if e.raw_os_error() == Some(hc_sys::system::ENXIO) => {
            eprintln!(
                "waiting for a reader on the FIFO {} (e.g. wireshark -k -i {}); Ctrl-C to stop",
                shown.display(),
                shown.display()
            );
            let _waiting = hc_sys::signals::immediate();
            OpenOptions::new().write(true).open(path).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// Writes packets as they come: for a regular file, into a temporary file
/// beside it, renamed over it on [`finish`](Self::finish), so a reader never
/// sees a half-written file at the path; for a FIFO, a character device or
/// standard output, straight through.
///
/// Each block is handed to the kernel in one piece, so even the temporary
/// file is readable up to the last packet written if the process dies.
/// Dropping a sink without `finish()` removes the temporary file: a run that
/// failed should not leave hidden files behind (a second Ctrl-C, which ends
/// the process at once, removes it too).
pub struct PcapngSink {
    /// `None` once finished, so `Drop` knows there is nothing to clean up.
    file: Option<File>,
    /// For a regular file: the temporary file, and the file it becomes
    /// (symbolic links resolved, so a link is followed, not replaced).
    temp: Option<(PathBuf, PathBuf)>,
    /// The path as given, which `finish` returns.
    shown: PathBuf,
    /// For messages: the path, or "standard output".
    what: String,
    _on_second_signal: Option<hc_sys::signals::CleanupGuard>,
}

impl PcapngSink {
    /// Starts a capture file at `path` (see [`SaveTarget::prepare`]).
    pub fn create(path: &Path, meta: &PcapngMeta) -> Result<PcapngSink, SaveError> {
        Self::start(SaveTarget::prepare(path)?, meta)
    }

    /// Starts writing to a prepared target: for a regular file, creates
    /// missing parent directories and the temporary file; then writes the
    /// section header and interface block.
    pub fn start(target: SaveTarget, meta: &PcapngMeta) -> Result<PcapngSink, SaveError> {
        let mut sink = match target.kind {
            TargetKind::Through { file, what } => PcapngSink {
                file: Some(file),
                temp: None,
                shown: target.shown,
                what,
                _on_second_signal: None,
            },
            TargetKind::File { path } => {
                let (dir, temp) = temp_for(&path)?;
                create_dirs_for_user(&dir)?;
                let file = create_exclusive(&temp)?;
                // Chowned now rather than at finish: the file keeps its owner through
                // the rename, and a temporary file kept after a crash is the user's too.
                give_to_invoking_user(&temp).map_err(|source| SaveError::Io {
                    action: "cannot give to the invoking user",
                    path: temp.clone(),
                    source,
                })?;
                let gone = temp.clone();
                let guard = hc_sys::signals::on_second_signal(move || {
                    std::fs::remove_file(&gone)
                        .ok()
                        .map(|()| format!("the unfinished {}", gone.display()))
                });
                PcapngSink {
                    file: Some(file),
                    temp: Some((temp, path)),
                    what: target.shown.display().to_string(),
                    shown: target.shown,
                    _on_second_signal: Some(guard),
                }
            }
        };
        sink.write_block(&pcapng::header(meta))?;
        Ok(sink)
    }

    /// Appends one packet, with its comment when it has one.
    pub fn write_packet(
        &mut self,
        pkt: &RawPacket,
        comment: Option<&str>,
    ) -> Result<(), SaveError> {
        let block = pcapng::packet(pkt, comment)?;
        self.write_block(&block)
    }

    /// Makes the file durable and puts it at its final name (a regular
    /// file), or flushes it (written through); returns the path as given.
    ///
    /// On failure the temporary file is kept (the error names it): the
    /// capture cannot be taken again, so losing it would be worse than a
    /// stray hidden file.
    pub fn finish(mut self) -> Result<PathBuf, SaveError> {
        let file = self.file.take();
        let Some((temp, dest)) = self.temp.clone() else {
            if let Some(mut f) = file {
                f.flush().map_err(|e| self.write_error(e))?;
            }
            return Ok(self.shown.clone());
        };
        let finish_err = |source| SaveError::Finish {
            path: self.shown.clone(),
            temp: temp.clone(),
            source,
        };
        if let Some(file) = file {
            file.sync_all().map_err(finish_err)?;
        }
        std::fs::rename(&temp, &dest).map_err(finish_err)?;
        // The rename itself lives in the directory; without this a power
        // cut could bring back the old name after we reported success.
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(self.shown.clone())
    }

    fn write_error(&self, source: io::Error) -> SaveError {
        if source.kind() == io::ErrorKind::BrokenPipe {
            return SaveError::ReaderGone {
                what: self.what.clone(),
            };
        }
        SaveError::Io {
            action: "cannot write",
            path: match &self.temp {
                Some((temp, _)) => temp.clone(),
                None => self.shown.clone(),
            },
            source,
        }
    }

    /// One write per block, so the file never ends inside a block.
    fn write_block(&mut self, block: &[u8]) -> Result<(), SaveError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        match file.write_all(block) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.write_error(e)),
        }
    }
}

/// A copy of captures that had several interfaces (`analyze -w`): the first
/// interface comes with [`PcapngSink::create`], the others are added as the
/// inputs describe them, numbered 1, 2, ... in that order.
impl PcapngSink {
    pub fn add_interface(
        &mut self,
        linktype: hc_core::model::LinkType,
        snaplen: u32,
        name: &str,
        description: &str,
    ) -> Result<(), SaveError> {
        let block = pcapng::interface(linktype, snaplen, name, description);
        self.write_block(&block)
    }

    /// [`PcapngSink::write_packet`] on interface `iface`.
    pub fn write_packet_on(
        &mut self,
        iface: u32,
        pkt: &RawPacket,
        comment: Option<&str>,
    ) -> Result<(), SaveError> {
        let block = pcapng::packet_on(iface, pkt, comment)?;
        self.write_block(&block)
    }
}

impl Drop for PcapngSink {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            drop(file);
            if let Some((temp, _)) = &self.temp {
                let _ = std::fs::remove_file(temp);
            }
        }
    }
}

/// The whole capture at once. `comments` has one slot per packet.
pub fn write_pcapng(
    target: SaveTarget,
    meta: &PcapngMeta,
    packets: &[RawPacket],
    comments: &[Option<String>],
) -> Result<PathBuf, SaveError> {
    if packets.len() != comments.len() {
        return Err(SaveError::CommentCount {
            packets: packets.len(),
            comments: comments.len(),
        });
    }
    let mut sink = PcapngSink::start(target, meta)?;
    for (pkt, comment) in packets.iter().zip(comments) {
        sink.write_packet(pkt, comment.as_deref())?;
    }
    sink.finish()
}

/// Creates `dir` and any missing ancestors, handing each one we made to the
/// invoking user (directories that already existed are left alone).
fn create_dirs_for_user(dir: &Path) -> Result<(), SaveError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    std::fs::create_dir_all(dir).map_err(|source| SaveError::Io {
        action: "cannot create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    for d in missing.iter().rev() {
        give_to_invoking_user(d).map_err(|source| SaveError::Io {
            action: "cannot give to the invoking user",
            path: d.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Creates the temporary file with O_EXCL: we often run as root in a
/// directory the user controls, and must not follow a planted symlink.
/// A leftover from an earlier process with our pid is removed and replaced.
fn create_exclusive(temp: &Path) -> Result<File, SaveError> {
    let open = || OpenOptions::new().write(true).create_new(true).open(temp);
    let file = match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(temp).and_then(|()| open())
        }
        other => other,
    };
    file.map_err(|source| SaveError::Io {
        action: "cannot create",
        path: temp.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hc_core::capfile::read::read_bytes;

    fn meta() -> PcapngMeta {
        PcapngMeta {
            linktype: 1,
            snaplen: 262144,
            iface: "lo".into(),
            iface_description: "test".into(),
            section_comment: "section".into(),
            application: "hc-trace test".into(),
            os: None,
        }
    }

    fn pkt(ts: i64) -> RawPacket {
        RawPacket {
            ts,
            orig_len: 4,
            data: vec![1, 2, 3, 4],
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hc-trace-sink-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_temporary_file_is_readable_while_writing_and_gone_after_finish() {
        let dir = scratch("temp");
        let path = dir.join("run.pcapng");
        let mut sink = PcapngSink::create(&path, &meta()).expect("create");
        sink.write_packet(&pkt(1), Some("first")).expect("write");
        let names = entries(&dir);
        assert_eq!(
            names,
            vec![format!(".run.pcapng.tmp-{}", std::process::id())]
        );
        assert!(!path.exists(), "nothing at the final name before finish");
        let partial =
            read_bytes(&std::fs::read(dir.join(&names[0])).expect("read")).expect("parse");
        assert_eq!(partial.packets.len(), 1);
        assert_eq!(sink.finish().expect("finish"), path);
        assert_eq!(entries(&dir), vec!["run.pcapng"]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn dropping_an_unfinished_sink_leaves_nothing_behind() {
        let dir = scratch("drop");
        let mut sink = PcapngSink::create(&dir.join("run.pcapng"), &meta()).expect("create");
        sink.write_packet(&pkt(1), None).expect("write");
        drop(sink);
        assert!(entries(&dir).is_empty());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn finishing_replaces_an_older_capture_and_counts_must_match() {
        let dir = scratch("replace");
        let path = dir.join("nested/run.pcapng");
        let save = |pkts: &[RawPacket], comments: &[Option<String>]| {
            write_pcapng(
                SaveTarget::prepare(&path).expect("prepare"),
                &meta(),
                pkts,
                comments,
            )
        };
        save(&[pkt(1), pkt(2)], &[None, None]).expect("first");
        save(&[pkt(3)], &[Some("x".into())]).expect("second");
        let back = read_bytes(&std::fs::read(&path).expect("read")).expect("parse");
        assert_eq!(back.packets.len(), 1);
        assert_eq!(back.packets[0].comments, vec!["x"]);
        assert!(matches!(
            save(&[], &[None]),
            Err(SaveError::CommentCount { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
