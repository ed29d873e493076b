//! Several captures read as one, merged by time as `mergecap` does: each
//! file is read in its own order, and the next packet is always the
//! earliest of the files' next packets (the file given first wins a tie).
//! Rotated files given in the wrong order, or captures of two interfaces
//! taken at once, so come out as one capture in time order.
//!
//! What the files' times looked like is kept ([`Merge::notes`]): files that
//! overlap in time, or were given in another order than their times.

use super::read::{Item, Reader, Record};
use crate::model::Nanos;

/// One item and the file (its index in the list given) it came from.
pub struct FromFile<'a> {
    pub file: usize,
    pub item: Item<'a>,
}

struct Source<'a> {
    reader: Reader<'a>,
    /// The next packet, read ahead to compare times.
    head: Option<Record<'a>>,
    done: bool,
    first: Option<Nanos>,
    last: Option<Nanos>,
}

/// Reads several captures as one, in time order.
pub struct Merge<'a> {
    sources: Vec<Source<'a>>,
}

impl<'a> Merge<'a> {
    pub fn new(readers: Vec<Reader<'a>>) -> Merge<'a> {
        Merge {
            sources: readers
                .into_iter()
                .map(|reader| Source {
                    reader,
                    head: None,
                    done: false,
                    first: None,
                    last: None,
                })
                .collect(),
        }
    }

    /// How far reading got in file `i` (a byte offset).
    pub fn position(&self, i: usize) -> usize {
        self.sources.get(i).map_or(0, |s| s.reader.position())
    }

    /// The next item of any file: items other than packets as soon as a
    /// file yields them, packets in time order.
    pub fn next_item(&mut self) -> Option<FromFile<'a>> {
        if self.sources.len() == 1 {
            // One file: its own order, nothing to compare.
            let s = &mut self.sources[0];
            let item = s.reader.next_item()?;
            if let Item::Packet(r) = &item {
                s.first.get_or_insert(r.ts);
                s.last = Some(r.ts);
            }
            return Some(FromFile { file: 0, item });
        }
        for (file, s) in self.sources.iter_mut().enumerate() {
            while s.head.is_none() && !s.done {
                match s.reader.next_item() {
                    None => s.done = true,
                    Some(Item::Packet(r)) => s.head = Some(r),
                    Some(item) => return Some(FromFile { file, item }),
                }
            }
        }
        let (file, s) = self
            .sources
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| s.head.is_some())
            .min_by_key(|(i, s)| (s.head.map_or(Nanos::MAX, |r| r.ts), *i))?;
        let r = s.head.take()?;
        s.first.get_or_insert(r.ts);
        s.last = Some(r.ts);
        Some(FromFile {
            file,
            item: Item::Packet(r),
        })
    }

    /// The first and last packet time of each file read so far (`None`
    /// for a file without packets).
    pub fn spans(&self) -> Vec<Option<(Nanos, Nanos)>> {
        self.sources.iter().map(|s| s.first.zip(s.last)).collect()
    }

    /// What the merge had to do, in words, naming files by `names`: files
    /// given in another order than their first packets' times, and files
    /// whose times overlap (their packets were interleaved).
    pub fn notes(&self, names: &[String]) -> Vec<String> {
        let spans = self.spans();
        let name = |i: usize| {
            names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("file {}", i + 1))
        };
        let mut notes = Vec::new();
        let with: Vec<(usize, (Nanos, Nanos))> = spans
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .collect();
        if with.windows(2).any(|w| w[1].1 .0 < w[0].1 .0) {
            let mut by_time = with.clone();
            by_time.sort_by_key(|&(i, s)| (s.0, i));
            let order: Vec<String> = by_time.iter().map(|&(i, _)| name(i)).collect();
            notes.push(format!(
                "the files were not given in time order; they were read by time (as mergecap does): {}",
                order.join(", ")
            ));
        }
        for (x, &(i, a)) in with.iter().enumerate() {
            for &(j, b) in &with[x + 1..] {
                if a.0 < b.1 && b.0 < a.1 {
                    notes.push(format!(
                        "{} and {} overlap in time ({} s in common): their packets were interleaved by time, as mergecap does",
                        name(i),
                        name(j),
                        format_secs(a.1.min(b.1) - a.0.max(b.0))
                    ));
                }
            }
        }
        notes
    }
}

fn format_secs(ns: Nanos) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A classic pcap whose records carry their own time (seconds) as data.
    fn pcap(secs: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        for s in secs {
            v.extend_from_slice(&s.to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes());
            v.extend_from_slice(&4u32.to_le_bytes());
            v.extend_from_slice(&4u32.to_le_bytes());
            v.extend_from_slice(&s.to_le_bytes());
        }
        v
    }

    fn order(files: &[Vec<u8>]) -> (Vec<(usize, u32)>, Vec<String>) {
        let readers = files
            .iter()
            .map(|f| Reader::new(f, Path::new("x")).expect("capture"))
            .collect();
        let mut m = Merge::new(readers);
        let mut out = Vec::new();
        while let Some(FromFile { file, item }) = m.next_item() {
            if let Item::Packet(r) = item {
                out.push((file, (r.ts / 1_000_000_000) as u32));
            }
        }
        let names: Vec<String> = (0..files.len()).map(|i| format!("f{i}")).collect();
        (out, m.notes(&names))
    }

    #[test]
    fn files_in_order_are_read_one_after_the_other_without_a_note() {
        let (got, notes) = order(&[pcap(&[1, 2, 3]), pcap(&[4, 5])]);
        assert_eq!(got, vec![(0, 1), (0, 2), (0, 3), (1, 4), (1, 5)]);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn files_given_backwards_are_read_by_time_and_said_so() {
        let (got, notes) = order(&[pcap(&[4, 5]), pcap(&[1, 2, 3])]);
        assert_eq!(got, vec![(1, 1), (1, 2), (1, 3), (0, 4), (0, 5)]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("not given in time order"), "{notes:?}");
        assert!(notes[0].ends_with(": f1, f0"), "{notes:?}");
    }

    #[test]
    fn overlapping_files_are_interleaved_and_said_so() {
        let (got, notes) = order(&[pcap(&[1, 3, 5]), pcap(&[2, 3, 4])]);
        // Equal times: the file given first goes first.
        assert_eq!(got, vec![(0, 1), (1, 2), (0, 3), (1, 3), (1, 4), (0, 5)]);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("overlap"), "{notes:?}");
    }

    #[test]
    fn one_file_keeps_its_own_order() {
        let (got, notes) = order(&[pcap(&[3, 1, 2])]);
        assert_eq!(got, vec![(0, 3), (0, 1), (0, 2)]);
        assert!(notes.is_empty());
    }
}
