//! The journal: append-only segment files of checksummed, hash-chained frames. It is the only
//! source of truth; everything else is a projection of it.
//!
//! Segment file `journal/<first seq, 20 digits>.seg`:
//!
//! ```text
//! header  "POLEJNL" version:u8 first_seq:u64le                       16 bytes
//! frame   len:u32le crc:u32le seq:u64le prev:[32] hash:[32] payload   80 + len bytes
//! ```
//!
//! `crc` is CRC-32C over `seq..payload` and catches torn writes; `hash` chains the frames
//! (see `pole_audit::chain_hash`) and catches tampering. `payload` is the transaction's
//! canonical JSON.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use pole_audit::{chain_hash, Chain, Hash};

use crate::{owner_only, Result, StoreError};

pub const SEGMENT_MAGIC: &[u8; 7] = b"POLEJNL";
pub const SEGMENT_VERSION: u8 = 1;
pub const SEGMENT_HEADER_LEN: u64 = 16;
pub const FRAME_HEADER_LEN: usize = 80;
/// A new segment starts once the current one passes this size.
pub const SEGMENT_TARGET_BYTES: u64 = 64 << 20;
/// The largest transaction payload accepted (a larger ingest is split into chunks).
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;
/// Invalid bytes at the end of the last segment are a torn tail (an unacknowledged group
/// whose write was cut) only if there are fewer than this many: the writer never has more
/// than one group unsynced, and a group is capped well below this.
pub const TORN_TAIL_LIMIT: u64 = 2 * MAX_PAYLOAD_BYTES as u64 + (16 << 20);

/// One frame as read from disk.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub seq: u64,
    pub prev: Hash,
    pub hash: Hash,
    pub payload: Vec<u8>,
    /// Where it lives: the segment's first sequence and the frame's byte offset.
    pub location: FrameLocation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameLocation {
    pub segment: u64,
    pub offset: u64,
}

/// The last committed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalHead {
    pub seq: u64,
    pub hash: Hash,
}

impl JournalHead {
    pub const EMPTY: JournalHead = JournalHead { seq: 0, hash: Hash::GENESIS };
}

pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// The segment files of a journal directory, ascending by first sequence.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(e) => return Err(StoreError::io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(StoreError::io(dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else { continue };
        let first_seq = stem.parse::<u64>().map_err(|_| StoreError::Corrupt {
            path: entry.path(),
            reason: "a journal segment's name is not its first sequence number".into(),
        })?;
        segments.push((first_seq, entry.path()));
    }
    segments.sort();
    Ok(segments)
}

/// Why a frame could not be read: the reader decides whether that is a torn tail.
#[derive(Debug)]
pub enum FrameProblem {
    /// Clean end of the segment.
    End,
    /// Bytes that are not a whole valid frame, starting at `offset`.
    Invalid { offset: u64, reason: String },
}

/// Reads frames one after another from one segment (a file, or any bytes: the fuzz target
/// reads from memory).
#[derive(Debug)]
pub struct SegmentReader<R = BufReader<File>> {
    reader: R,
    pub first_seq: u64,
    offset: u64,
    len: u64,
    path: PathBuf,
}

impl SegmentReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(StoreError::io(path))?;
        let len = file.metadata().map_err(StoreError::io(path))?.len();
        SegmentReader::from_reader(BufReader::with_capacity(1 << 20, file), len, path)
    }
}

impl<R: Read + Seek> SegmentReader<R> {
    /// Reads a segment of `len` bytes from `reader`, positioned at its start; `path` names
    /// it in errors.
    pub fn from_reader(mut reader: R, len: u64, path: &Path) -> Result<Self> {
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        reader.read_exact(&mut header).map_err(|_| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: "journal segment header is truncated".into(),
        })?;
        if &header[..7] != SEGMENT_MAGIC {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: "not a pole-ods journal segment".into(),
            });
        }
        if header[7] > SEGMENT_VERSION {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "journal segment format {} is newer than this pole-ods reads ({SEGMENT_VERSION})",
                    header[7]
                ),
            });
        }
        let first_seq = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        Ok(SegmentReader { reader, first_seq, offset: SEGMENT_HEADER_LEN, len, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= SEGMENT_HEADER_LEN
    }

    /// Positions the reader at a frame boundary found earlier.
    pub fn seek(&mut self, offset: u64) -> Result<()> {
        self.reader.seek(SeekFrom::Start(offset)).map_err(StoreError::io(&self.path))?;
        self.offset = offset;
        Ok(())
    }

    /// The next frame, or why there is none.
    pub fn next_frame(&mut self) -> std::result::Result<RawFrame, FrameProblem> {
        let start = self.offset;
        if start == self.len {
            return Err(FrameProblem::End);
        }
        let invalid = |reason: &str| FrameProblem::Invalid { offset: start, reason: reason.to_owned() };
        if self.len - start < FRAME_HEADER_LEN as u64 {
            return Err(invalid("frame header cut short"));
        }
        let mut header = [0u8; FRAME_HEADER_LEN];
        self.reader.read_exact(&mut header).map_err(|_| invalid("unreadable frame header"))?;
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
        if len > MAX_PAYLOAD_BYTES || start + (FRAME_HEADER_LEN + len) as u64 > self.len {
            return Err(invalid("frame length runs past the end of the segment"));
        }
        let mut payload = vec![0u8; len];
        self.reader.read_exact(&mut payload).map_err(|_| invalid("unreadable frame payload"))?;
        let computed = crc32c::crc32c_append(crc32c::crc32c(&header[8..]), &payload);
        if computed != crc {
            return Err(invalid("checksum mismatch"));
        }
        self.offset = start + (FRAME_HEADER_LEN + len) as u64;
        let hash_at = |from: usize| Hash(header[from..from + 32].try_into().unwrap_or_default());
        Ok(RawFrame {
            seq: u64::from_le_bytes(header[8..16].try_into().unwrap_or_default()),
            prev: hash_at(16),
            hash: hash_at(48),
            payload,
            location: FrameLocation { segment: self.first_seq, offset: start },
        })
    }
}

/// Encodes one frame.
pub fn encode_frame(out: &mut Vec<u8>, seq: u64, prev: &Hash, hash: &Hash, payload: &[u8]) {
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[16..48].copy_from_slice(&prev.0);
    header[48..80].copy_from_slice(&hash.0);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[8..]), payload);
    header[4..8].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
}

/// The writable end of the journal. Only the store's writer thread holds one.
#[derive(Debug)]
pub struct JournalWriter {
    dir: PathBuf,
    file: File,
    segment_first_seq: u64,
    len: u64,
    head: JournalHead,
    /// Set when a write or sync failed: the file's tail is unknown, so nothing more is written.
    failed: Option<String>,
}

/// A transaction's payload, framed and chained, ready for [`JournalWriter::append`].
#[derive(Debug)]
pub struct PendingFrame {
    pub seq: u64,
    pub hash: Hash,
    pub location: FrameLocation,
}

impl JournalWriter {
    /// Opens the journal in `dir` (creating it), recovering a torn tail of the last segment.
    pub fn open(dir: &Path) -> Result<(Self, Recovery)> {
        owner_only::create_dir_all(dir)?;
        // Segments and kept torn tails written by an older pole-ods may be readable by others.
        owner_only::tighten_tree(dir)?;
        let segments = list_segments(dir)?;
        let mut recovery = Recovery::default();
        let Some((last_first, last_path)) = segments.last().cloned() else {
            let writer = Self::create_segment(dir, 1, JournalHead::EMPTY)?;
            return Ok((writer, recovery));
        };
        // The head is the last valid frame of the last segment (or, when it holds none, of
        // the one before). Earlier segments are checked in full by `verify`.
        let mut head = JournalHead::EMPTY;
        if segments.len() > 1 {
            let (_, prev_path) = &segments[segments.len() - 2];
            let mut reader = SegmentReader::open(prev_path)?;
            loop {
                match reader.next_frame() {
                    Ok(frame) => head = JournalHead { seq: frame.seq, hash: frame.hash },
                    Err(FrameProblem::End) => break,
                    Err(FrameProblem::Invalid { offset, reason }) => {
                        return Err(StoreError::Corrupt {
                            path: prev_path.clone(),
                            reason: format!("journal frame at byte {offset}: {reason}"),
                        })
                    }
                }
            }
        }
        let mut reader = SegmentReader::open(&last_path)?;
        let valid_len = loop {
            match reader.next_frame() {
                Ok(frame) => {
                    if frame.seq != head.seq + 1 || frame.prev != head.hash {
                        return Err(StoreError::Corrupt {
                            path: last_path.clone(),
                            reason: format!(
                                "journal frame at byte {} (seq {}) does not follow seq {}",
                                frame.location.offset, frame.seq, head.seq
                            ),
                        });
                    }
                    head = JournalHead { seq: frame.seq, hash: frame.hash };
                }
                Err(FrameProblem::End) => break reader.offset(),
                Err(FrameProblem::Invalid { offset, reason }) => {
                    let torn = reader.len() - offset;
                    if torn > TORN_TAIL_LIMIT {
                        return Err(StoreError::Corrupt {
                            path: last_path.clone(),
                            reason: format!(
                                "journal frame at byte {offset} after seq {}: {reason}, with {torn} bytes after it: \
                                 too many to be an interrupted write",
                                head.seq
                            ),
                        });
                    }
                    recovery.torn_bytes = torn;
                    recovery.quarantined = Some(Self::quarantine(dir, &last_path, offset, head.seq)?);
                    break offset;
                }
            }
        };
        drop(reader);
        let file = OpenOptions::new().read(true).write(true).open(&last_path).map_err(StoreError::io(&last_path))?;
        if recovery.torn_bytes > 0 {
            file.set_len(valid_len).map_err(StoreError::io(&last_path))?;
            file.sync_all().map_err(StoreError::io(&last_path))?;
            tracing::warn!(
                segment = %last_path.display(),
                bytes = recovery.torn_bytes,
                after_seq = head.seq,
                "cut an interrupted (unacknowledged) write from the journal's tail; the bytes are kept in {}",
                recovery.quarantined.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            );
        }
        let mut file = file;
        file.seek(SeekFrom::Start(valid_len)).map_err(StoreError::io(&last_path))?;
        let writer = JournalWriter {
            dir: dir.to_path_buf(),
            file,
            segment_first_seq: last_first,
            len: valid_len,
            head,
            failed: None,
        };
        Ok((writer, recovery))
    }

    fn quarantine(dir: &Path, segment: &Path, offset: u64, after_seq: u64) -> Result<PathBuf> {
        let mut file = File::open(segment).map_err(StoreError::io(segment))?;
        file.seek(SeekFrom::Start(offset)).map_err(StoreError::io(segment))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(StoreError::io(segment))?;
        let path = dir.join(format!("torn-after-{after_seq:020}.bin"));
        owner_only::write(&path, &bytes)?;
        File::open(&path).and_then(|f| f.sync_all()).map_err(StoreError::io(&path))?;
        Ok(path)
    }

    fn create_segment(dir: &Path, first_seq: u64, head: JournalHead) -> Result<Self> {
        let path = segment_path(dir, first_seq);
        let mut file =
            owner_only::options().read(true).write(true).create_new(true).open(&path).map_err(StoreError::io(&path))?;
        let mut header = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
        header.extend_from_slice(SEGMENT_MAGIC);
        header.push(SEGMENT_VERSION);
        header.extend_from_slice(&first_seq.to_le_bytes());
        file.write_all(&header).map_err(StoreError::io(&path))?;
        file.sync_all().map_err(StoreError::io(&path))?;
        sync_dir(dir)?;
        Ok(JournalWriter {
            dir: dir.to_path_buf(),
            file,
            segment_first_seq: first_seq,
            len: SEGMENT_HEADER_LEN,
            head,
            failed: None,
        })
    }

    pub fn head(&self) -> JournalHead {
        self.head
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Chains, frames, writes and syncs a group of payloads (sequences `head+1..`), with one
    /// `fdatasync` for the whole group. On failure nothing of the group counts as written and
    /// the writer refuses further appends.
    pub fn append<P: AsRef<[u8]>>(&mut self, payloads: &[P]) -> Result<Vec<PendingFrame>> {
        if let Some(reason) = &self.failed {
            return Err(StoreError::WriterStopped(reason.clone()));
        }
        if self.len >= SEGMENT_TARGET_BYTES {
            let next = Self::create_segment(&self.dir, self.head.seq + 1, self.head)?;
            *self = next;
        }
        let mut buf = Vec::with_capacity(payloads.iter().map(|p| p.as_ref().len() + FRAME_HEADER_LEN).sum());
        let mut pending = Vec::with_capacity(payloads.len());
        let mut head = self.head;
        for payload in payloads {
            let payload = payload.as_ref();
            let seq = head.seq + 1;
            let hash = chain_hash(Chain::Journal, &head.hash, payload);
            let offset = self.len + buf.len() as u64;
            encode_frame(&mut buf, seq, &head.hash, &hash, payload);
            pending.push(PendingFrame {
                seq,
                hash,
                location: FrameLocation { segment: self.segment_first_seq, offset },
            });
            head = JournalHead { seq, hash };
        }
        let path = segment_path(&self.dir, self.segment_first_seq);
        let written = self.file.write_all(&buf).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Try to leave the file as it was; either way stop writing until reopened.
            let _ = self.file.set_len(self.len);
            self.failed = Some(format!("journal write failed on {}: {e}", path.display()));
            return Err(StoreError::io(&path)(e));
        }
        self.len += buf.len() as u64;
        self.head = head;
        Ok(pending)
    }
}

/// What opening the journal had to do.
#[derive(Debug, Default, Clone)]
pub struct Recovery {
    /// Bytes of an interrupted write cut from the tail.
    pub torn_bytes: u64,
    /// Where those bytes were kept.
    pub quarantined: Option<PathBuf>,
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(StoreError::io(dir))
}

/// Where one change lies in its frame's payload (the transaction's JSON): the bytes of
/// the change's object, as [`crate::codec::change_spans`] finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeSpan {
    pub start: u32,
    pub len: u32,
}

/// Positioned reads of committed frames, for the history entries that point into the
/// journal: each segment is opened once, and any thread reads from it without a cursor.
/// Reads only bytes a frame already holds, so the writer appending meanwhile is no matter.
#[derive(Debug)]
pub struct FrameReader {
    dir: PathBuf,
    segments: parking_lot::RwLock<std::collections::HashMap<u64, std::sync::Arc<File>>>,
}

impl FrameReader {
    pub fn new(dir: &Path) -> Self {
        FrameReader { dir: dir.to_path_buf(), segments: Default::default() }
    }

    /// The journal directory it reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bytes of `span` in the payload of the frame at `at`.
    pub fn read_span(&self, at: FrameLocation, span: ChangeSpan) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let file = self.segment(at.segment)?;
        let mut bytes = vec![0; span.len as usize];
        let offset = at.offset + FRAME_HEADER_LEN as u64 + u64::from(span.start);
        file.read_exact_at(&mut bytes, offset).map_err(|e| StoreError::Corrupt {
            path: segment_path(&self.dir, at.segment),
            reason: format!("cannot read {} bytes at byte {offset}: {e}", span.len),
        })?;
        Ok(bytes)
    }

    fn segment(&self, first_seq: u64) -> Result<std::sync::Arc<File>> {
        if let Some(file) = self.segments.read().get(&first_seq) {
            return Ok(std::sync::Arc::clone(file));
        }
        let path = segment_path(&self.dir, first_seq);
        let file = std::sync::Arc::new(File::open(&path).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: format!("a history entry points into this journal segment, which cannot be opened: {e}"),
        })?);
        self.segments.write().insert(first_seq, std::sync::Arc::clone(&file));
        Ok(file)
    }
}

/// Reads frames in sequence order across every segment, starting at a known location or at
/// the beginning. Stops at the first invalid frame with an error naming it.
#[derive(Debug)]
pub struct JournalReader {
    segments: Vec<(u64, PathBuf)>,
    segment_idx: usize,
    current: Option<SegmentReader>,
}

impl JournalReader {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(JournalReader { segments: list_segments(dir)?, segment_idx: 0, current: None })
    }

    /// Starts at `location` (a frame boundary from the transaction index).
    pub fn open_at(dir: &Path, location: FrameLocation) -> Result<Self> {
        let segments = list_segments(dir)?;
        let segment_idx = segments
            .iter()
            .position(|(first, _)| *first == location.segment)
            .ok_or_else(|| StoreError::Journal(format!("no journal segment starts at seq {}", location.segment)))?;
        let mut reader = SegmentReader::open(&segments[segment_idx].1)?;
        reader.seek(location.offset)?;
        Ok(JournalReader { segments, segment_idx, current: Some(reader) })
    }

    /// The next frame, `None` at the end of the journal.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame>> {
        loop {
            if self.current.is_none() {
                let Some((_, path)) = self.segments.get(self.segment_idx) else { return Ok(None) };
                self.current = Some(SegmentReader::open(path)?);
            }
            let Some(reader) = self.current.as_mut() else { return Ok(None) };
            match reader.next_frame() {
                Ok(frame) => return Ok(Some(frame)),
                Err(FrameProblem::End) => {
                    self.current = None;
                    self.segment_idx += 1;
                }
                Err(FrameProblem::Invalid { offset, reason }) => {
                    return Err(StoreError::Corrupt {
                        path: reader.path().to_path_buf(),
                        reason: format!("journal frame at byte {offset}: {reason}"),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("{{\"tx\":{i}}}").into_bytes()).collect()
    }

    #[test]
    fn append_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = JournalWriter::open(dir.path()).unwrap();
        let frames = writer.append(&payloads(3)).unwrap();
        assert_eq!(frames.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        writer.append(&payloads(2)).unwrap();
        drop(writer);
        let mut reader = JournalReader::open(dir.path()).unwrap();
        let mut seqs = Vec::new();
        while let Some(frame) = reader.next_frame().unwrap() {
            seqs.push(frame.seq);
        }
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        let (writer, recovery) = JournalWriter::open(dir.path()).unwrap();
        assert_eq!(writer.head().seq, 5);
        assert_eq!(recovery.torn_bytes, 0);
    }

    #[test]
    fn a_torn_tail_is_cut_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = JournalWriter::open(dir.path()).unwrap();
        writer.append(&payloads(3)).unwrap();
        let head = writer.head();
        drop(writer);
        let seg = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[7u8; 50]).unwrap();
        drop(f);
        let (writer, recovery) = JournalWriter::open(dir.path()).unwrap();
        assert_eq!(writer.head(), head);
        assert_eq!(recovery.torn_bytes, 50);
        assert!(recovery.quarantined.unwrap().exists());
    }

    #[test]
    fn a_frame_from_another_chain_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = JournalWriter::open(dir.path()).unwrap();
        writer.append(&payloads(2)).unwrap();
        drop(writer);
        // Append a well-formed frame whose seq does not follow.
        let seg = segment_path(dir.path(), 1);
        let mut buf = Vec::new();
        encode_frame(&mut buf, 9, &Hash::GENESIS, &Hash::GENESIS, b"{}");
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&buf).unwrap();
        drop(f);
        assert!(matches!(JournalWriter::open(dir.path()), Err(StoreError::Corrupt { .. })));
    }

    mod robustness {
        //! The reader against arbitrary and damaged bytes (the fuzz target's properties, run
        //! in every test run).
        use super::*;
        use proptest::prelude::*;
        use std::io::Cursor;

        fn segment(payloads: &[Vec<u8>]) -> Vec<u8> {
            let mut bytes = SEGMENT_MAGIC.to_vec();
            bytes.push(SEGMENT_VERSION);
            bytes.extend_from_slice(&1u64.to_le_bytes());
            let mut prev = Hash::GENESIS;
            for (i, payload) in payloads.iter().enumerate() {
                let hash = chain_hash(Chain::Journal, &prev, payload);
                encode_frame(&mut bytes, i as u64 + 1, &prev, &hash, payload);
                prev = hash;
            }
            bytes
        }

        fn read_all(bytes: &[u8]) -> (Vec<RawFrame>, Option<FrameProblem>) {
            let Ok(mut reader) = SegmentReader::from_reader(Cursor::new(bytes), bytes.len() as u64, Path::new("t"))
            else {
                return (Vec::new(), None);
            };
            let mut frames = Vec::new();
            loop {
                match reader.next_frame() {
                    Ok(frame) => frames.push(frame),
                    Err(FrameProblem::End) => return (frames, None),
                    Err(problem) => return (frames, Some(problem)),
                }
            }
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..600)) {
                let mut bytes = segment(&[]);
                bytes.extend_from_slice(&tail);
                let _ = read_all(&bytes);
                let _ = read_all(&tail);
            }

            #[test]
            fn a_flipped_byte_is_caught_at_its_frame(
                payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..64), 1..6),
                pick in any::<prop::sample::Index>(),
                mask in 1u8..,
            ) {
                let clean = segment(&payloads);
                let at = SEGMENT_HEADER_LEN as usize + pick.index(clean.len() - SEGMENT_HEADER_LEN as usize);
                let mut damaged = clean.clone();
                damaged[at] ^= mask;
                let (frames, problem) = read_all(&damaged);
                // Every frame before the damaged one reads back unchanged, and the damaged
                // one is never returned.
                let (good, _) = read_all(&clean);
                prop_assert!(frames.len() < good.len() || problem.is_some());
                for (a, b) in frames.iter().zip(&good) {
                    prop_assert_eq!(&a.payload, &b.payload);
                    prop_assert!(a.location.offset + (FRAME_HEADER_LEN + a.payload.len()) as u64 <= at as u64);
                }
            }
        }
    }
}
