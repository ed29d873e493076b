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

/// Writes packets as they come into a temporary file beside `path` and
/// renames it to `path` on [`finish`](Self::finish), so a reader never sees a
/// half-written file at `path`.
///
/// Each block is handed to the kernel in one piece, so even the temporary
/// file is readable up to the last packet written if the process dies.
/// Dropping a sink without `finish()` removes the temporary file: a run that
/// failed should not leave hidden files behind.
pub struct PcapngSink {
    /// `None` once finished, so `Drop` knows there is nothing to clean up.
    file: Option<File>,
    temp: PathBuf,
    path: PathBuf,
}

impl PcapngSink {
    /// Starts a capture file: creates missing parent directories, the
    /// temporary file, and writes the section header and interface block.
    pub fn create(path: &Path, meta: &PcapngMeta) -> Result<PcapngSink, SaveError> {
        let name = path.file_name().ok_or_else(|| SaveError::BadPath {
            path: path.to_path_buf(),
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_dirs_for_user(&dir)?;

        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}", std::process::id()));
        let temp = dir.join(temp_name);
        let file = create_exclusive(&temp)?;
        // Chowned now rather than at finish: the file keeps its owner through
        // the rename, and a temporary file kept after a crash is the user's too.
        give_to_invoking_user(&temp).map_err(|source| SaveError::Io {
            action: "cannot give to the invoking user",
            path: temp.clone(),
            source,
        })?;
        let mut sink = PcapngSink {
            file: Some(file),
            temp,
            path: path.to_path_buf(),
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

    /// Makes the file durable and puts it at its final name, then returns that name.
    ///
    /// On failure the temporary file is kept (the error names it): the
    /// capture cannot be taken again, so losing it would be worse than a
    /// stray hidden file.
    pub fn finish(mut self) -> Result<PathBuf, SaveError> {
        let file = self.file.take();
        let finish_err = |source| SaveError::Finish {
            path: self.path.clone(),
            temp: self.temp.clone(),
            source,
        };
        if let Some(file) = file {
            file.sync_all().map_err(finish_err)?;
        }
        std::fs::rename(&self.temp, &self.path).map_err(finish_err)?;
        // The rename itself lives in the directory; without this a power
        // cut could bring back the old name after we reported success.
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(self.path.clone())
    }

    /// One write per block, so the file never ends inside a block.
    fn write_block(&mut self, block: &[u8]) -> Result<(), SaveError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(block).map_err(|source| SaveError::Io {
            action: "cannot write",
            path: self.temp.clone(),
            source,
        })
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
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// The whole capture at once. `comments` has one slot per packet.
pub fn write_pcapng(
    path: &Path,
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
    let mut sink = PcapngSink::create(path, meta)?;
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
        write_pcapng(&path, &meta(), &[pkt(1), pkt(2)], &[None, None]).expect("first");
        write_pcapng(&path, &meta(), &[pkt(3)], &[Some("x".into())]).expect("second");
        let back = read_bytes(&std::fs::read(&path).expect("read")).expect("parse");
        assert_eq!(back.packets.len(), 1);
        assert_eq!(back.packets[0].comments, vec!["x"]);
        assert!(matches!(
            write_pcapng(&path, &meta(), &[], &[None]),
            Err(SaveError::CommentCount { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
