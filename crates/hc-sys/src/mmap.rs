//! Capture files mapped read-only, so `analyze` reads them without copying.
//!
//! Two costs of a map are handled here:
//! - resident memory: pages of a map count in RSS, so the part already read
//!   is given back (`MADV_DONTNEED`, [`Mapped::release_before`]) as reading
//!   goes on, which keeps peak memory independent of the file size;
//! - a file cut shorter while mapped (a capture still being rotated) would
//!   raise SIGBUS; the length is fixed when the file is opened, and growing
//!   files are simply read up to that length.

use memmap2::{Advice, Mmap, UncheckedAdvice};
use std::cell::Cell;
use std::fs::File;
use std::io;
use std::path::Path;

/// A whole file, mapped (or empty: an empty file cannot be mapped).
pub struct Mapped {
    map: Option<Mmap>,
    released: Cell<usize>,
}

impl Mapped {
    pub fn open(path: &Path) -> io::Result<Mapped> {
        Mapped::of_file(&File::open(path)?)
    }

    /// Maps an open file (one that may have no name left, such as an
    /// unlinked temporary file); the map stays valid after `file` is closed.
    pub fn of_file(file: &File) -> io::Result<Mapped> {
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        let map = if meta.len() == 0 {
            None
        } else {
            // SAFETY: the map is read-only and private; the file being cut
            // shorter by another process while we read it is the one risk
            // (SIGBUS), accepted and documented in the module comment.
            let m = unsafe { Mmap::map(file) }?;
            let _ = m.advise(Advice::Sequential);
            Some(m)
        };
        Ok(Mapped {
            map,
            released: Cell::new(0),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Gives the pages before `pos` back to the kernel (they stay in the
    /// page cache); records already borrowed stay valid, as touched pages
    /// are read again from the file.
    pub fn release_before(&self, pos: usize) {
        let Some(map) = &self.map else { return };
        let upto = (pos & !4095usize).min(map.len());
        let released = self.released.get();
        if upto > released {
            // SAFETY: read-only private file mapping: dropped pages are read
            // again from the file if touched, so borrowed slices stay valid.
            let _ = unsafe {
                map.unchecked_advise_range(UncheckedAdvice::DontNeed, released, upto - released)
            };
            self.released.set(upto);
        }
    }
}
