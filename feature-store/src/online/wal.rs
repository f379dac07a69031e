//! The embedded store's write-ahead log.
//!
//! One record per acknowledged write call: `[payload length u32][crc32 of payload u32]
//! [payload]`, appended and fsynced before the call returns, so an acknowledged write
//! survives a crash. On open the log is replayed from the start. Because every record is
//! synced before the next is written, only the last record can be torn by a crash; a torn
//! or checksum-failing *last* record is cut off, anything bad before a good record is
//! reported as corruption rather than silently dropped.
//!
//! Compaction replaces the log with a snapshot: the new records go to a temporary file
//! (locked, synced), which is renamed over the log and the directory synced. A crash
//! before the rename leaves the old log; after it, the new one. Either replays to the
//! same state.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::{FeatureError, Result};

const HEADER: usize = 8;

/// An open log, positioned at its end.
#[derive(Debug)]
pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    len: u64,
}

fn lock(file: &File, path: &Path) -> Result<()> {
    // One writer per log: a second process appending would interleave records.
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => FeatureError::Io(std::io::Error::other(format!(
            "{} is in use by another process (a running server? use --server)",
            path.display()
        ))),
        std::fs::TryLockError::Error(e) => FeatureError::Io(e),
    })
}

fn frame(payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .map_err(|_| FeatureError::Corrupt("record over 4 GiB".into()))?;
    let mut record = Vec::with_capacity(HEADER + payload.len());
    record.extend_from_slice(&len.to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    record.extend_from_slice(payload);
    Ok(record)
}

impl Wal {
    /// Opens (or creates) the log at `path`, calling `apply` on every intact record in
    /// order, and cuts off a torn tail.
    pub(crate) fn open(path: &Path, mut apply: impl FnMut(&[u8]) -> Result<()>) -> Result<Wal> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        lock(&file, path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut at = 0usize;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let intact = rest.len() >= HEADER && {
                let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
                rest.len() - HEADER >= len && crc32fast::hash(&rest[HEADER..HEADER + len]) == crc
            };
            if !intact {
                let claimed = rest
                    .get(..4)
                    .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
                if at + HEADER + claimed < bytes.len() {
                    return Err(FeatureError::Corrupt(format!(
                        "{}: bad record at byte {at} with more records after it",
                        path.display()
                    )));
                }
                tracing::warn!(path = %path.display(), at, bytes = bytes.len() - at, "cut a torn record left by a crash");
                file.set_len(at as u64)?;
                file.sync_all()?;
                break;
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            apply(&rest[HEADER..HEADER + len])?;
            at += HEADER + len;
        }
        Ok(Wal {
            file,
            path: path.to_path_buf(),
            len: at as u64,
        })
    }

    /// Bytes in the log.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one record and waits until it is on disk.
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<()> {
        let record = frame(payload)?;
        self.file.write_all(&record)?;
        self.file.sync_data()?;
        self.len += record.len() as u64;
        Ok(())
    }

    /// Replaces the log with the records `snapshot` emits (through the callback it is
    /// given), atomically.
    pub(crate) fn rewrite(
        &mut self,
        snapshot: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        let tmp = self.path.with_extension("wal.compacting");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        lock(&file, &tmp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut len = 0u64;
        snapshot(&mut |payload| {
            let record = frame(payload)?;
            out.write_all(&record)?;
            len += record.len() as u64;
            Ok(())
        })?;
        let file = out
            .into_inner()
            .map_err(|e| FeatureError::Io(e.into_error()))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        // From here the new file is the log: append to it whatever else fails. It keeps
        // its lock across the rename.
        let mut file = file;
        let end = std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0));
        self.file = file;
        self.len = len;
        end?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(path: &Path) -> Result<Vec<Vec<u8>>> {
        let mut seen = Vec::new();
        Wal::open(path, |p| {
            seen.push(p.to_vec());
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut wal = Wal::open(&path, |_| Ok(())).unwrap();
        wal.append(b"first").unwrap();
        wal.append(b"second").unwrap();
        drop(wal);
        assert_eq!(
            replay(&path).unwrap(),
            vec![b"first".to_vec(), b"second".to_vec()]
        );

        // A crash in the middle of a third append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[20, 0, 0, 0, 1, 2, 3, 4, b't', b'o']).unwrap();
        drop(f);
        assert_eq!(replay(&path).unwrap().len(), 2);
        let mut wal = Wal::open(&path, |_| Ok(())).unwrap();
        wal.append(b"third").unwrap();
        drop(wal);
        assert_eq!(replay(&path).unwrap().last().unwrap(), b"third");
    }

    #[test]
    fn a_rewrite_replaces_the_log_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut wal = Wal::open(&path, |_| Ok(())).unwrap();
        for i in 0..10u8 {
            wal.append(&[i; 100]).unwrap();
        }
        wal.rewrite(|emit| emit(b"snapshot")).unwrap();
        assert_eq!(wal.len(), (HEADER + 8) as u64);
        wal.append(b"after").unwrap();
        drop(wal);
        assert_eq!(
            replay(&path).unwrap(),
            vec![b"snapshot".to_vec(), b"after".to_vec()]
        );
        // A failed snapshot leaves the log as it was.
        let mut wal = Wal::open(&path, |_| Ok(())).unwrap();
        let failed = wal.rewrite(|emit| {
            emit(b"partial")?;
            Err(FeatureError::Corrupt("injected".into()))
        });
        assert!(failed.is_err());
        drop(wal);
        assert_eq!(replay(&path).unwrap().len(), 2);
    }

    #[test]
    fn corruption_before_good_records_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut wal = Wal::open(&path, |_| Ok(())).unwrap();
        wal.append(b"first").unwrap();
        wal.append(b"second").unwrap();
        drop(wal);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 1] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(replay(&path), Err(FeatureError::Corrupt(_))));
    }
}
