//! Capture files on disk: reading them (mapped, through the core's reader)
//! and writing the annotated pcapng (through the core's encoder), so that a
//! reader never sees a half-written file and nothing is left behind.

use hc_core::capfile::pcapng::{self, EncodeError, PcapngMeta};
use hc_core::capfile::read::{for_each_with_progress, Item, ReadError};
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
}

/// Why a capture file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {}: {source}", path.display())]
pub struct OpenError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl CaptureFile {
    pub fn open(path: &Path) -> Result<CaptureFile, OpenError> {
        let map = Mapped::open(path).map_err(|source| OpenError {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(CaptureFile {
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn len(&self) -> u64 {
        self.map.bytes().len() as u64
    }

    /// Calls `f` for every record; stops early once `keep_going` says no
    /// (asked every few MiB). Pages already read are given back as it goes,
    /// so memory stays flat whatever the file's size.
    pub fn for_each_until<'s>(
        &'s self,
        keep_going: &dyn Fn() -> bool,
        f: impl FnMut(Item<'s>),
    ) -> Result<(), ReadError> {
        let mut progress = |pos: usize| {
            self.map.release_before(pos);
            keep_going()
        };
        for_each_with_progress(self.map.bytes(), &self.path, &mut progress, f)
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
