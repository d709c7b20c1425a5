//! Block data in segment files: `<data_dir>/records-blocks/<n>.seg`, append
//! only, a new file once one holds [`SEGMENT_BYTES`].
//!
//! Block data is most of what records write. As a SQLite blob every byte went
//! to the WAL and again to the database file at each checkpoint, through a
//! B-tree of overflow pages; in a segment it is written once, a batch at a
//! time. The `blocks` row keeps where its data is ([`Placement`]): the
//! segment, the offset, the length and a CRC-32 of the bytes.
//!
//! The order of writes keeps the two in step: a batch's data is written to
//! its segment before the transaction of its rows commits, so a committed row
//! never points past what was written. Bytes past the last committed block (a
//! batch whose commit failed, a crash between the two) are overwritten by the
//! next batch, and cut off when the file is opened again. A block whose bytes
//! are gone or altered (a power loss, an edited file) fails its CRC and reads
//! as no events; the rest of the records stand.
//!
//! Retention deletes rows, then the segments no row points into. Blocks of
//! files from before segments keep their data in their row (`segment` NULL).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension};

use crate::recorder::writer::Pacer;

/// The segments' directory in the data directory.
pub const DIR: &str = "records-blocks";

/// A segment is closed, and the next one begun, once it holds this much.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The most block data written in one call (tens of microseconds of copying
/// into the page cache), so the [`Pacer`] has its say during a batch's write.
const WRITE_CHUNK: usize = 64 * 1024;

/// Where a block's data is, as its `blocks` row holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub segment: i64,
    pub offset: i64,
    pub length: i64,
    pub crc: u32,
}

impl Placement {
    /// The placement of a `blocks` row's columns (`None`: the data is in the row).
    pub fn of_columns(
        segment: Option<i64>,
        offset: Option<i64>,
        length: Option<i64>,
        crc: Option<i64>,
    ) -> Option<Placement> {
        Some(Placement {
            segment: segment?,
            offset: offset?,
            length: length?,
            crc: u32::try_from(crc?).ok()?,
        })
    }
}

/// A block's data columns, `$1` its id: the bytes in the row (empty when
/// placed), then the [`Placement`] columns.
pub const DATA_SQL: &str =
    "SELECT data, segment, seg_offset, seg_length, seg_crc FROM blocks WHERE id = $1";

fn file_name(dir: &Path, segment: i64) -> PathBuf {
    dir.join(format!("{segment:08}.seg"))
}

/// The numbers of the segment files in `dir`, in order.
fn numbers(dir: &Path) -> io::Result<Vec<i64>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<i64>().ok());
        found.extend(number);
    }
    found.sort_unstable();
    Ok(found)
}

/// The writer's side: appends the blocks of one transaction, then keeps or
/// forgets them with its commit.
pub struct Segments {
    dir: PathBuf,
    /// [`SEGMENT_BYTES`], smaller in tests.
    segment_bytes: u64,
    current: i64,
    file: File,
    /// The end of the last committed block in the current segment.
    end: u64,
    /// The data of the blocks placed since the last commit.
    pending: Vec<u8>,
    reads: BlockFiles,
}

impl Segments {
    /// Opens the segments of the records file `conn` in `data_dir`: the newest
    /// is cut back to its last committed block, and files no row points into
    /// are deleted.
    pub fn open(data_dir: &Path, conn: &Connection) -> io::Result<Segments> {
        let dir = data_dir.join(DIR);
        fs::create_dir_all(&dir)?;
        let sql = |e: rusqlite::Error| io::Error::other(e.to_string());
        let newest_row: Option<(i64, i64)> = conn
            .query_row(
                "SELECT segment, seg_offset + seg_length FROM blocks
                 WHERE segment IS NOT NULL ORDER BY segment DESC, seg_offset DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql)?;
        let files = numbers(&dir)?;
        let newest_file = files.last().copied();
        let (current, end) = match (newest_row, newest_file) {
            // The newest file holds committed blocks: keep them, cut what follows.
            (Some((segment, end)), Some(file)) if file == segment => (segment, end as u64),
            // The newest file was begun after the last commit, or the file of
            // the newest blocks is gone: write after them.
            (Some((segment, _)), file) => (file.unwrap_or(segment).max(segment + 1), 0),
            // No row points into any file: start over in the newest.
            (None, file) => (file.unwrap_or(0), 0),
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(file_name(&dir, current))?;
        file.set_len(end)?;
        let mut segments = Segments {
            reads: BlockFiles::new(data_dir),
            segment_bytes: SEGMENT_BYTES,
            dir,
            current,
            file,
            end,
            pending: Vec::new(),
        };
        segments.remove_unused(conn).map_err(sql)?;
        Ok(segments)
    }

    /// Takes `data` into the transaction being written; returns where it will be.
    pub fn place(&mut self, data: &[u8]) -> Placement {
        let at = Placement {
            segment: self.current,
            offset: (self.end + self.pending.len() as u64) as i64,
            length: data.len() as i64,
            crc: crc32fast::hash(data),
        };
        self.pending.extend_from_slice(data);
        at
    }

    /// Writes the data placed so far: before the transaction commits.
    pub fn write_pending(&mut self, pacer: &mut Pacer) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.seek(SeekFrom::Start(self.end))?;
        // a batch's data is megabytes: written a chunk per slice of the pacer
        for chunk in self.pending.chunks(WRITE_CHUNK) {
            self.file.write_all(chunk)?;
            pacer.pause_if_due();
        }
        Ok(())
    }

    /// The transaction committed: its data stays. Begins the next segment when
    /// this one is full (when it cannot, this one grows, and the next commit
    /// tries again).
    pub fn committed(&mut self) {
        self.end += self.pending.len() as u64;
        self.pending.clear();
        if self.end < self.segment_bytes {
            return;
        }
        let next = self.current + 1;
        match OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(file_name(&self.dir, next))
        {
            Ok(file) => {
                self.file = file;
                self.current = next;
                self.end = 0;
            }
            Err(e) => tracing::warn!("records: cannot begin segment {next}: {e}"),
        }
    }

    /// The transaction did not commit: its data is overwritten by the next.
    /// (The buffer keeps its memory, as the queue's batch buffer does: a
    /// batch's blocks are smaller than its events.)
    pub fn forget(&mut self) {
        self.pending.clear();
    }

    /// Deletes the segments before the oldest one a row points into (all but
    /// the current one when none does).
    pub fn remove_unused(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let oldest: Option<i64> =
            conn.query_row("SELECT min(segment) FROM blocks", [], |r| r.get(0))?;
        let keep_from = oldest.unwrap_or(self.current).min(self.current);
        let files = match numbers(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!("records: cannot list {}: {e}", self.dir.display());
                return Ok(());
            }
        };
        for segment in files.into_iter().filter(|n| *n < keep_from) {
            self.reads.forget(segment);
            if let Err(e) = fs::remove_file(file_name(&self.dir, segment)) {
                tracing::warn!("records: cannot delete segment {segment}: {e}");
            }
        }
        Ok(())
    }

    /// The reading side, for blocks that retention rewrites.
    pub fn files(&self) -> &BlockFiles {
        &self.reads
    }
}

/// The reading side: opens segments as blocks are read, keeping the last few
/// open.
pub struct BlockFiles {
    dir: PathBuf,
    open: Mutex<Vec<(i64, std::sync::Arc<File>)>>,
}

/// Segments kept open by a reader: queries read recent segments mostly.
const OPEN_FILES: usize = 4;

impl BlockFiles {
    pub fn new(data_dir: &Path) -> BlockFiles {
        BlockFiles {
            dir: data_dir.join(DIR),
            open: Mutex::new(Vec::new()),
        }
    }

    /// A block's data from the columns of [`DATA_SQL`]: in its row, or at its
    /// placement.
    pub fn data(&self, inline: Vec<u8>, at: Option<Placement>) -> Vec<u8> {
        match at {
            Some(at) => self.read(&at),
            None => inline,
        }
    }

    /// The data of the block at `at`; empty (no events) when its bytes are
    /// gone or do not match their CRC.
    pub fn read(&self, at: &Placement) -> Vec<u8> {
        match self.try_read(at) {
            Ok(data) if crc32fast::hash(&data) == at.crc => data,
            Ok(_) => {
                tracing::warn!("records: a block in segment {} is damaged", at.segment);
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(
                    "records: cannot read a block of segment {}: {e}",
                    at.segment
                );
                Vec::new()
            }
        }
    }

    fn try_read(&self, at: &Placement) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let file = self.file(at.segment)?;
        let mut data = vec![0; usize::try_from(at.length).unwrap_or(0)];
        file.read_exact_at(&mut data, at.offset as u64)?;
        Ok(data)
    }

    fn file(&self, segment: i64) -> io::Result<std::sync::Arc<File>> {
        let mut open = self.open.lock();
        if let Some(i) = open.iter().position(|(n, _)| *n == segment) {
            let entry = open.remove(i);
            open.push(entry.clone());
            return Ok(entry.1);
        }
        let file = std::sync::Arc::new(File::open(file_name(&self.dir, segment))?);
        if open.len() >= OPEN_FILES {
            open.remove(0);
        }
        open.push((segment, file.clone()));
        Ok(file)
    }

    /// Closes `segment` if open: it is being deleted.
    fn forget(&self, segment: i64) {
        self.open.lock().retain(|(n, _)| *n != segment);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mqgate_kit::history::Direction;

    use super::*;
    use crate::recorder::blocks::{Builder, Events, Recorded};
    use crate::recorder::queue::Queue;
    use crate::recorder::sqlite::schema::{self, insert_block};

    fn message(id: u64) -> Recorded<'static> {
        Recorded {
            direction: Direction::Uplink,
            message_id: Some(id),
            at_ms: id as i64,
            client_id: Some("a@app"),
            connection_id: Some(1),
            topic: "t",
            qos: 1,
            retain: false,
            payload: b"some payload",
        }
    }

    /// Writes a block of message `id` as the writer does: data, then commit.
    fn write(conn: &mut Connection, segments: &mut Segments, id: u64, commit: bool) {
        let mut builder = Builder::new(0);
        builder.push(&message(id));
        let block = builder.finish().unwrap();
        let tx = conn.transaction().unwrap();
        insert_block(&tx, &block, Some(segments.place(&block.data))).unwrap();
        let mut pacer = Pacer::of(&Arc::new(Queue::new(1_000, 100)));
        segments.write_pending(&mut pacer).unwrap();
        if commit {
            tx.commit().unwrap();
            segments.committed();
        } else {
            drop(tx);
            segments.forget();
        }
    }

    /// The message ids of every block, read as a query reads them.
    fn read_all(conn: &Connection, files: &BlockFiles) -> Vec<Option<u64>> {
        let mut st = conn
            .prepare("SELECT segment, seg_offset, seg_length, seg_crc FROM blocks ORDER BY id")
            .unwrap();
        let placements: Vec<Placement> = st
            .query_map([], |r| {
                Ok(Placement::of_columns(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?).unwrap())
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        placements
            .iter()
            .map(|at| {
                Events::new(&files.read(at))
                    .next()
                    .and_then(|e| e.message_id)
            })
            .collect()
    }

    fn files(dir: &Path) -> Vec<(i64, u64)> {
        numbers(&dir.join(DIR))
            .unwrap()
            .into_iter()
            .map(|n| (n, fs::metadata(file_name(&dir.join(DIR), n)).unwrap().len()))
            .collect()
    }

    #[test]
    fn the_recorder_writes_block_data_to_segments_and_reads_it_back_after_a_restart() {
        use crate::recorder::{Clients, Recorder, RecordsConfig, RecordsStore};
        use mqgate_kit::history::{BrokerEvent, BrokerObserver, History, MessageInEvent};

        let dir = tempfile::tempdir().unwrap();
        let start = || {
            Recorder::start(
                RecordsStore::Sqlite {
                    data_dir: dir.path(),
                },
                &RecordsConfig::default(),
                Clients::All,
            )
            .unwrap()
        };
        let records = start();
        records.on_event(&BrokerEvent::MessageIn(MessageInEvent {
            message_id: 77,
            at_ms: 1_000,
            client_id: Some("a@app"),
            connection_id: Some(1),
            topic: "t/1",
            qos: 1,
            retain: false,
            payload: b"a payload in a segment",
        }));
        records.flush();
        let conn = schema::open(dir.path(), 1024).unwrap();
        let (inline, segment): (i64, i64) = conn
            .query_row("SELECT length(data), segment FROM blocks", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((inline, segment), (0, 0));
        let data = fs::read(file_name(&dir.path().join(DIR), 0)).unwrap();
        assert!(data.windows(22).any(|w| w == b"a payload in a segment"));
        records.close();
        drop(records);
        let records = start();
        let stored = records.stored_message(77).unwrap().unwrap();
        assert_eq!(&stored.payload[..], b"a payload in a segment");
    }

    #[test]
    fn data_past_the_last_commit_is_overwritten_and_cut_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = schema::open(dir.path(), 1024).unwrap();
        let mut segments = Segments::open(dir.path(), &conn).unwrap();
        write(&mut conn, &mut segments, 1, true);
        let committed = segments.end;
        // a batch whose commit failed leaves its bytes; the next one overwrites them
        write(&mut conn, &mut segments, 2, false);
        assert!(files(dir.path())[0].1 > committed);
        write(&mut conn, &mut segments, 3, true);
        let files_read = BlockFiles::new(dir.path());
        assert_eq!(read_all(&conn, &files_read), [Some(1), Some(3)]);
        // a crash between the data and the commit: cut at the next open
        write(&mut conn, &mut segments, 4, false);
        let end = segments.end;
        drop(segments);
        assert!(files(dir.path())[0].1 > end);
        let mut segments = Segments::open(dir.path(), &conn).unwrap();
        assert_eq!(files(dir.path()), [(0, end)]);
        write(&mut conn, &mut segments, 5, true);
        assert_eq!(read_all(&conn, &files_read), [Some(1), Some(3), Some(5)]);
    }

    #[test]
    fn a_damaged_or_missing_block_reads_as_no_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = schema::open(dir.path(), 1024).unwrap();
        let mut segments = Segments::open(dir.path(), &conn).unwrap();
        write(&mut conn, &mut segments, 1, true);
        write(&mut conn, &mut segments, 2, true);
        let path = file_name(&dir.path().join(DIR), 0);
        let mut bytes = fs::read(&path).unwrap();
        // the last byte of the first block's payload
        let first_len = (segments.end / 2) as usize;
        bytes[first_len - 1] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            read_all(&conn, &BlockFiles::new(dir.path())),
            [None, Some(2)]
        );
        // a file cut short (a power loss): its blocks read as none, and it
        // is not written into again
        fs::write(&path, &bytes[..first_len]).unwrap();
        assert_eq!(read_all(&conn, &BlockFiles::new(dir.path())), [None, None]);
        fs::remove_file(&path).unwrap();
        let mut segments = Segments::open(dir.path(), &conn).unwrap();
        write(&mut conn, &mut segments, 3, true);
        assert_eq!(files(dir.path())[0].0, 1);
        assert_eq!(
            read_all(&conn, &BlockFiles::new(dir.path())),
            [None, None, Some(3)]
        );
    }

    #[test]
    fn full_segments_are_followed_by_new_ones_and_deleted_once_unused() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = schema::open(dir.path(), 1024).unwrap();
        let mut segments = Segments::open(dir.path(), &conn).unwrap();
        segments.segment_bytes = 1;
        for id in 1..=3 {
            write(&mut conn, &mut segments, id, true);
        }
        // three full segments and the empty one begun after them
        assert_eq!(
            files(dir.path()).iter().map(|f| f.0).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        let files_read = BlockFiles::new(dir.path());
        assert_eq!(read_all(&conn, &files_read), [Some(1), Some(2), Some(3)]);
        conn.execute(
            "DELETE FROM blocks WHERE id < (SELECT max(id) FROM blocks)",
            [],
        )
        .unwrap();
        segments.remove_unused(&conn).unwrap();
        assert_eq!(
            files(dir.path()).iter().map(|f| f.0).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(read_all(&conn, &files_read), [Some(3)]);
        // reopened: the empty newest segment is the one written next
        drop(segments);
        let mut segments = Segments::open(dir.path(), &conn).unwrap();
        segments.segment_bytes = 1;
        write(&mut conn, &mut segments, 4, true);
        assert_eq!(read_all(&conn, &files_read), [Some(3), Some(4)]);
        conn.execute("DELETE FROM blocks", []).unwrap();
        segments.remove_unused(&conn).unwrap();
        assert_eq!(files(dir.path()), [(4, 0)]);
    }
}
