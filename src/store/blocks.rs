//! Sealed blocks (store format 4): records packed many to a block,
//! compressed together and sealed once, in append-only segment files beside
//! sled; and the in-memory maps from keys to document numbers that find them.
//!
//! # Why
//!
//! Up to format 3 every record was its own sled value: a nonce and a tag, a
//! zstd frame and a 33-byte key per record, and sled keeps about three
//! times the bytes it is given (ChitChat: 124 MB of store for 30.5 MB of
//! text). Here, as in tantivy's document store, records are compressed
//! together in blocks of about [`BLOCK_TARGET`] bytes, so that a chat
//! message shares its zstd frame and its seal with a hundred others, and
//! sled keeps only one small sealed entry per block.
//!
//! # Layout
//!
//! `blocks/NNNNNNNN.seg` are segment files, written only by appending. A
//! block is two envelopes of [`crate::seal`], one after the other:
//!
//! * the **body**: a layout byte, then the codec-tagged zstd frame (against
//!   the store's dictionary once there is one) of the postcard list of the
//!   block's record encodings;
//! * the **directory**: the block's document numbers and the first 16 bytes
//!   of each record's key (its keyed MAC), postcard-encoded, so that opening
//!   the store reads only directories, never bodies.
//!
//! Both are sealed under the documents' key as [`RecordKind::Block`], with
//! associated data that binds which of the two it is, the store's format,
//! the segment number, the offset and the block's document-number range:
//! a block moved, swapped with another, replayed into another place or
//! truncated fails authentication with [`Error::Tampered`].
//!
//! sled holds, per block, `B` ‖ first document number (big-endian) → the
//! block's [`Position`], sealed as state. Nothing else about records is in
//! sled: which document number a key has, and which records are live, is
//! rebuilt at open from the directories (a key's live record is its highest
//! document number, unless a tombstone says it was deleted since; the
//! write path leaves a tombstone for every delete and removes it with the
//! next upsert).
//!
//! # Document numbers
//!
//! Every stored record gets the next document number of the store (a u64
//! that only grows). An upsert of an existing key is a new number; the old
//! one is dead. The inverted index of a format-4 store holds these numbers
//! instead of keys (see `search::inverted::schema`).
//!
//! # Compaction
//!
//! After a batch, a segment whose dead records hold at least
//! [`COMPACT_MIN_BYTES`] and half of its bytes is compacted: each of its
//! blocks is rewritten with its live records only, keeping its document
//! numbers (so neither the inverted index nor the other blocks change),
//! after the current end (in a new segment when the current one is
//! compacted); one sled batch points the positions at the new blocks and
//! drops the empty ones; then the old segment is removed.
//!
//! # Crash safety
//!
//! A batch appends its blocks, fsyncs the segment, then applies the sled
//! batch that references them. A crash before the sled batch leaves bytes
//! past the last referenced block, which open truncates; a segment no block
//! references is removed. A segment shorter than its blocks, or missing, is
//! reported as tampering, never served.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::record::{self, Dictionary, Record};
use crate::seal::{RecordKind, Sealer};

use super::live::LiveMap;

/// The directory of the segment files, in the index directory.
pub(super) const BLOCKS_DIR: &str = "blocks";

/// Bytes of record encodings gathered into one block before it is closed.
///
/// Small enough that showing one hit decrypts and decompresses little
/// (16 KiB: a few tens of microseconds), large enough that a chat message
/// shares its frame and seal with a hundred others; with the store's
/// dictionary, larger blocks compressed ChitChat only a few percent better.
pub(crate) const BLOCK_TARGET: usize = 16 << 10;

/// A new segment file is begun once the current one is this large.
const SEGMENT_BYTES: u64 = 64 << 20;

/// Dead bytes a segment must hold (and at least half of its bytes) before
/// a batch compacts it.
pub(crate) const COMPACT_MIN_BYTES: u64 = 1 << 20;

/// Records to pack into one block: their numbers (increasing), keys and
/// encodings, and the block's number range.
#[derive(Default)]
struct Run<'a> {
    first: u64,
    last: u64,
    docnos: Vec<u64>,
    macs: Vec<Mac16>,
    raws: Vec<&'a [u8]>,
    /// A body made by another store (a snapshot's: see [`GivenBody`]),
    /// sealed as it is instead of being made from `raws`.
    given: Option<&'a [u8]>,
}

/// A block body as a peer's store made it (layout byte, then its
/// codec-tagged zstd frame), which a device bootstrapping from that peer
/// seals as it is under its own key, beside a directory of its own: the
/// records' document numbers (the peer's) and their keys under this
/// store's key. Nothing is decompressed or compressed again to store it.
///
/// The caller has checked that the body decodes with this store's
/// dictionary into exactly these records ([`decode_body`]).
#[derive(Debug)]
pub(crate) struct GivenBody {
    pub(crate) docnos: Vec<u64>,
    pub(crate) macs: Vec<Mac16>,
    pub(crate) body: Vec<u8>,
}

/// Groups `puts` into runs of about [`BLOCK_TARGET`] bytes, the `i`-th put
/// under the `i`-th of `docnos`: one run is one block. A run also ends
/// before a number that lies past one of `breaks` (increasing: the first
/// numbers of given bodies placed among the puts), so that no run spans
/// another block's range.
fn runs<'a>(
    puts: &'a [(Mac16, Vec<u8>)],
    docnos: impl Iterator<Item = u64>,
    breaks: &[u64],
) -> Vec<Run<'a>> {
    let mut runs: Vec<Run<'_>> = Vec::new();
    let mut run = Run::default();
    let mut bytes = 0;
    let mut next_break = breaks.iter().peekable();
    for ((mac, raw), d) in puts.iter().zip(docnos) {
        let mut crossed = false;
        while next_break.next_if(|&&b| b < d).is_some() {
            crossed = true;
        }
        if crossed && !run.docnos.is_empty() {
            runs.push(std::mem::take(&mut run));
            bytes = 0;
        }
        run.docnos.push(d);
        run.macs.push(*mac);
        run.raws.push(raw);
        bytes += raw.len();
        if bytes >= BLOCK_TARGET {
            runs.push(std::mem::take(&mut run));
            bytes = 0;
        }
    }
    if !run.docnos.is_empty() {
        runs.push(run);
    }
    for r in &mut runs {
        r.first = r.docnos[0];
        r.last = r.docnos[r.docnos.len() - 1];
    }
    runs
}

/// Decoded block bodies kept in memory for random access.
const BODY_CACHE: usize = 64;

/// The layout byte of a block body: the record layout of its encodings.
const BODY_LAYOUT: u8 = 1;

/// The first 16 bytes of a record's keyed MAC: its key in a format-4 store
/// (HMAC-SHA256 truncated to 128 bits; collisions are out of reach).
pub(crate) type Mac16 = [u8; 16];

/// Where a block is, as sled keeps it (sealed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Position {
    pub(super) segment: u32,
    pub(super) offset: u64,
    pub(super) body_len: u32,
    pub(super) dir_len: u32,
    /// The block's last document number (the first is its sled key).
    pub(super) last: u64,
}

impl Position {
    fn end(&self) -> u64 {
        self.offset + u64::from(self.body_len) + u64::from(self.dir_len)
    }
}

/// A block's directory, as sealed on disk.
#[derive(Serialize, Deserialize)]
struct Directory {
    /// Document numbers, as differences from the block's first.
    deltas: Vec<u64>,
    macs: Vec<Mac16>,
}

/// One block, as held in memory: one per about ten mail messages, for as
/// long as the store is open, so it is kept small (at a million messages
/// the block list was 40 MiB with two `Vec`s a block; see
/// `bench-notes/rss-run12.md`).
#[derive(Debug)]
struct Block {
    pos: Position,
    numbers: Numbers,
    /// The records' keys, in document-number order.
    macs: Box<[Mac16]>,
    /// How many of its records are live.
    live: u32,
}

/// The document numbers of a block's records, increasing.
#[derive(Debug)]
enum Numbers {
    /// Consecutive from this number, one per key: every block a batch
    /// writes, so no list is kept for them.
    Dense(u64),
    /// Any others (a compaction dropped some records).
    Listed(Box<[u64]>),
}

impl Numbers {
    fn new(docnos: Vec<u64>) -> Numbers {
        match docnos.first() {
            Some(&f) if docnos.iter().zip(f..).all(|(d, e)| *d == e) => Numbers::Dense(f),
            _ => Numbers::Listed(docnos.into_boxed_slice()),
        }
    }
}

impl Block {
    fn new(pos: Position, docnos: Vec<u64>, macs: Vec<Mac16>, live: u32) -> Block {
        Block {
            pos,
            numbers: Numbers::new(docnos),
            macs: macs.into_boxed_slice(),
            live,
        }
    }

    fn len(&self) -> usize {
        self.macs.len()
    }

    /// The number of the record at `i`.
    fn docno(&self, i: usize) -> Option<u64> {
        match &self.numbers {
            Numbers::Dense(f) => (i < self.len()).then(|| f + i as u64),
            Numbers::Listed(v) => v.get(i).copied(),
        }
    }

    /// Where the record numbered `d` is.
    fn index_of(&self, d: u64) -> Option<usize> {
        match &self.numbers {
            Numbers::Dense(f) => d
                .checked_sub(*f)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < self.len()),
            Numbers::Listed(v) => v.binary_search(&d).ok(),
        }
    }

    fn docnos(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).filter_map(|i| self.docno(i))
    }
}

/// A block made by a batch, before it is written.
pub(super) struct NewBlock {
    pub(super) first: u64,
    pub(super) pos: Position,
    bytes: Vec<u8>,
    docnos: Vec<u64>,
    macs: Vec<Mac16>,
}

impl NewBlock {
    /// Its entry in the maps once sled references it, `live` of its
    /// records being their key's live record.
    fn into_block(self, live: u32) -> Block {
        Block::new(self.pos, self.docnos, self.macs, live)
    }
}

/// What sled must hold once a batch's blocks are written: `(key, position)`.
pub(super) fn block_key(first: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = super::P_BLOCK;
    k[1..].copy_from_slice(&first.to_be_bytes());
    k
}

fn aad(which: u8, format: u32, first: u64, pos: &Position) -> Vec<u8> {
    let mut a = Vec::with_capacity(40);
    a.extend_from_slice(b"block");
    a.push(which);
    a.extend_from_slice(&format.to_le_bytes());
    a.extend_from_slice(&pos.segment.to_le_bytes());
    a.extend_from_slice(&pos.offset.to_le_bytes());
    a.extend_from_slice(&first.to_le_bytes());
    a.extend_from_slice(&pos.last.to_le_bytes());
    a
}

fn tampered(detail: impl Into<String>) -> Error {
    Error::Tampered {
        kind: RecordKind::Block.name(),
        detail: detail.into(),
    }
}

fn segment_name(n: u32) -> String {
    format!("{n:08}.seg")
}

/// A block's decoded body: its record encodings, in directory order, as
/// spans of the one decompressed buffer.
///
/// Why spans: decoding the body as a list of owned byte vectors made
/// postcard copy every record byte by byte (serde's `Vec<u8>` is a
/// sequence): a fifth of a query battery's instructions went there
/// (`bench-notes/footprint-run10.md`). The wire format is the same list of
/// byte strings; here they are borrowed and kept as offsets.
#[derive(Debug)]
pub(super) struct Decoded {
    raw: Vec<u8>,
    spans: Vec<(u32, u32)>,
}

impl Decoded {
    /// Decodes the postcard list of byte strings in `raw` without copying
    /// them.
    fn new(raw: Vec<u8>) -> Result<Decoded> {
        let parts: Vec<&[u8]> = postcard::from_bytes(&raw)
            .map_err(|_| Error::Corrupt("an undecodable block".into()))?;
        let base = raw.as_ptr() as usize;
        let spans = parts
            .iter()
            .map(|p| {
                // Borrowed from `raw`: the offset is the pointers' distance.
                let start = p.as_ptr() as usize - base;
                (start as u32, (start + p.len()) as u32)
            })
            .collect();
        Ok(Decoded { raw, spans })
    }

    /// How many records the block holds.
    pub(super) fn len(&self) -> usize {
        self.spans.len()
    }

    /// The encoding of record `i`.
    pub(super) fn get(&self, i: usize) -> Option<&[u8]> {
        let &(a, b) = self.spans.get(i)?;
        self.raw.get(a as usize..b as usize)
    }

    /// Every record's encoding, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.spans
            .iter()
            .map(|&(a, b)| &self.raw[a as usize..b as usize])
    }
}

type Body = Arc<Decoded>;

/// Why a block body does not decode.
#[derive(Debug)]
pub(super) enum BodyError {
    /// It is compressed against a dictionary, and none was given.
    NeedsDictionary,
    /// It is malformed: what is wrong.
    Corrupt(String),
}

/// Decodes a block body (layout byte, then the codec-tagged frame) into
/// its record encodings: a stored block's, or one a peer sent.
/// Decompression is bounded (see [`record::decompress`]).
pub(super) fn decode_body(
    plain: &[u8],
    dict: Option<&Dictionary>,
) -> std::result::Result<Decoded, BodyError> {
    let (&layout, rest) = plain
        .split_first()
        .ok_or_else(|| BodyError::Corrupt("an empty block".into()))?;
    if layout != BODY_LAYOUT {
        return Err(BodyError::Corrupt(format!(
            "a block of an unknown layout {layout}"
        )));
    }
    if dict.is_none() && record::needs_dictionary(rest) {
        return Err(BodyError::NeedsDictionary);
    }
    let raw = record::decompress(rest, dict)
        .map_err(|what| BodyError::Corrupt(format!("an undecodable block ({what})")))?;
    Decoded::new(raw).map_err(|_| BodyError::Corrupt("an undecodable block".into()))
}

/// Whether a block body (as [`decode_body`] takes it) is compressed
/// against a dictionary.
pub(crate) fn body_needs_dictionary(plain: &[u8]) -> bool {
    plain.get(1..).is_some_and(record::needs_dictionary)
}

/// Which block a cached body is: its first document number and where it
/// is (a compacted block keeps its first number but moves).
type BodyKey = (u64, u32, u64);

/// A small least-recently-used map of decoded block bodies:
/// `(last use, body)`.
#[derive(Default)]
struct Bodies {
    tick: u64,
    map: HashMap<BodyKey, (u64, Body)>,
}

impl Bodies {
    fn get(&mut self, first: BodyKey) -> Option<Body> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&first).map(|e| {
            e.0 = tick;
            Arc::clone(&e.1)
        })
    }

    fn put(&mut self, first: BodyKey, body: Body) {
        self.tick += 1;
        if self.map.len() >= BODY_CACHE
            && let Some(oldest) = self.map.iter().min_by_key(|e| e.1.0).map(|e| *e.0)
        {
            self.map.remove(&oldest);
        }
        self.map.insert(first, (self.tick, body));
    }
}

/// The maps of a format-4 store, and its segment files.
pub(super) struct Blocks {
    root: PathBuf,
    format: u32,
    blocks: BTreeMap<u64, Block>,
    /// The live document number of every stored key.
    live: LiveMap,
    next_docno: u64,
    /// The last segment and its length: where the next block goes.
    segment: u32,
    segment_len: u64,
    /// Open segment files, for positional reads.
    files: Mutex<HashMap<u32, Arc<File>>>,
    bodies: Mutex<Bodies>,
}

impl std::fmt::Debug for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocks")
            .field("blocks", &self.blocks.len())
            .field("live", &self.live.len())
            .finish_non_exhaustive()
    }
}

/// A record's place: its block (by first document number) and its slot.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    first: u64,
    pos: Position,
    index: usize,
    /// The key (MAC prefix) the block's directory gives the record.
    pub(super) mac: Mac16,
}

impl Blocks {
    /// Creates the segment directory of a new store.
    pub(super) fn create_dir(index_dir: &Path) -> Result<()> {
        let root = index_dir.join(BLOCKS_DIR);
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))
    }

    /// Opens the blocks of a store: `positions` are its sled entries
    /// (first document number and position, authenticated), `deleted` the
    /// keys with a tombstone. Reads every directory, truncates what a crash
    /// left past the last block, and rebuilds the maps.
    pub(super) fn open(
        index_dir: &Path,
        format: u32,
        sealer: &Sealer,
        positions: Vec<(u64, Position)>,
        deleted: &std::collections::HashSet<Mac16>,
    ) -> Result<Blocks> {
        let root = index_dir.join(BLOCKS_DIR);
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        // Where each segment's last block ends.
        let mut ends: BTreeMap<u32, u64> = BTreeMap::new();
        for (_, p) in &positions {
            let e = ends.entry(p.segment).or_default();
            *e = (*e).max(p.end());
        }
        let mut seen = std::collections::HashSet::new();
        for entry in std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))? {
            let entry = entry.map_err(|e| Error::io(&root, e))?;
            let path = entry.path();
            let number = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u32>().ok());
            let Some(number) = number else {
                return Err(Error::Corrupt(format!(
                    "an unknown file in the index's blocks: {}",
                    path.display()
                )));
            };
            match ends.get(&number) {
                None => {
                    // Begun by a batch that crashed before it was
                    // committed, or emptied by a compaction that crashed
                    // before removing it: nothing references it.
                    warn!(segment = number, "removing an unreferenced segment");
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
                Some(&end) => {
                    seen.insert(number);
                    let len = entry.metadata().map_err(|e| Error::io(&path, e))?.len();
                    if len < end {
                        return Err(tampered(format!(
                            "segment {number} holds {len} bytes but its blocks end at {end}: it was truncated"
                        )));
                    }
                    if len > end {
                        info!(
                            segment = number,
                            bytes = len - end,
                            "dropping the unreferenced tail of a batch that did not commit"
                        );
                        let f = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(|e| Error::io(&path, e))?;
                        f.set_len(end).map_err(|e| Error::io(&path, e))?;
                        f.sync_all().map_err(|e| Error::io(&path, e))?;
                    }
                }
            }
        }
        if let Some(missing) = ends.keys().find(|n| !seen.contains(n)) {
            return Err(tampered(format!("segment {missing} is missing")));
        }
        let (segment, segment_len) = ends.last_key_value().map_or((0, 0), |(&s, &e)| (s, e));
        let mut blocks = Blocks {
            root,
            format,
            blocks: BTreeMap::new(),
            live: LiveMap::default(),
            next_docno: 1,
            segment,
            segment_len,
            files: Mutex::new(HashMap::new()),
            bodies: Mutex::new(Bodies::default()),
        };
        // Directories, read and opened in parallel.
        let dirs: Vec<(u64, Position, Vec<u64>, Vec<Mac16>)> = positions
            .into_par_iter()
            .map(|(first, pos)| {
                let (docnos, macs) = blocks.read_directory(sealer, first, &pos)?;
                Ok((first, pos, docnos, macs))
            })
            .collect::<Result<_>>()?;
        let mut previous_last = 0u64;
        for (first, pos, docnos, macs) in dirs {
            if first <= previous_last && previous_last != 0 {
                return Err(tampered("blocks overlap in document numbers"));
            }
            previous_last = pos.last;
            for (d, m) in docnos.iter().zip(&macs) {
                // In document-number order: a later record of a key wins.
                blocks.live.insert(*m, *d);
            }
            blocks.next_docno = blocks.next_docno.max(pos.last + 1);
            blocks
                .blocks
                .insert(first, Block::new(pos, docnos, macs, 0));
        }
        blocks.live.retain(|m, _| !deleted.contains(m));
        let live: Vec<u64> = blocks.live.iter().map(|(_, d)| d).collect();
        for d in live {
            if let Some(b) = blocks.block_of_mut(d) {
                b.live += 1;
            }
        }
        Ok(blocks)
    }

    fn block_of(&self, docno: u64) -> Option<(u64, &Block)> {
        self.blocks
            .range(..=docno)
            .next_back()
            .filter(|(_, b)| docno <= b.pos.last)
            .map(|(f, b)| (*f, b))
    }

    fn block_of_mut(&mut self, docno: u64) -> Option<&mut Block> {
        self.blocks
            .range_mut(..=docno)
            .next_back()
            .map(|(_, b)| b)
            .filter(|b| docno <= b.pos.last)
    }

    /// The live document number of a key.
    pub(super) fn docno(&self, mac: &Mac16) -> Option<u64> {
        self.live.get(mac)
    }

    /// Number of live records.
    pub(super) fn live_len(&self) -> usize {
        self.live.len()
    }

    /// The keys (MACs) of many document numbers at once, live or dead,
    /// `None` for a number no block holds. Numbers of one block in a row
    /// (a segment's hits come in document order) find their block once.
    pub(super) fn macs_of(&self, docnos: &[u64]) -> Vec<Option<Mac16>> {
        let mut last: Option<(u64, &Block)> = None;
        docnos
            .iter()
            .map(|&d| {
                let b = match last {
                    Some((f, b)) if f <= d && d <= b.pos.last => b,
                    _ => {
                        let found = self.block_of(d)?;
                        last = Some(found);
                        found.1
                    }
                };
                // Computed, not searched, in a block whose numbers are
                // consecutive (`Numbers::Dense`).
                b.macs.get(b.index_of(d)?).copied()
            })
            .collect()
    }

    /// Every live `(mac, docno)`, in document-number order.
    pub(super) fn live_docnos(&self) -> Vec<(Mac16, u64)> {
        let mut v: Vec<(Mac16, u64)> = self.live.iter().collect();
        v.sort_unstable_by_key(|e| e.1);
        v
    }

    /// Whether a block starts at `first`.
    pub(super) fn has_block(&self, first: u64) -> bool {
        self.blocks.contains_key(&first)
    }

    /// Where a document number is stored.
    pub(super) fn slot(&self, docno: u64) -> Option<Slot> {
        let (first, b) = self.block_of(docno)?;
        let index = b.index_of(docno)?;
        Some(Slot {
            first,
            pos: b.pos,
            index,
            mac: *b.macs.get(index)?,
        })
    }

    /// The first document number of every block, with its position.
    pub(super) fn positions(&self) -> Vec<(u64, Position)> {
        self.blocks.iter().map(|(f, b)| (*f, b.pos)).collect()
    }

    /// Reads `len` bytes of a segment at `offset`. Positional reads, so
    /// threads (the directories at open, a page's blocks) read at once: the
    /// lock covers only finding the segment's open file.
    fn read_at(&self, segment: u32, offset: u64, len: usize) -> Result<Vec<u8>> {
        let path = self.root.join(segment_name(segment));
        let file = {
            let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            match files.entry(segment) {
                std::collections::hash_map::Entry::Occupied(o) => Arc::clone(o.get()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let f = File::open(&path).map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => {
                            tampered(format!("segment {segment} is missing"))
                        }
                        _ => Error::io(&path, e),
                    })?;
                    Arc::clone(v.insert(Arc::new(f)))
                }
            }
        };
        let mut buf = vec![0u8; len];
        crate::fsio::read_exact_at(&file, &mut buf, offset).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => tampered(format!(
                "segment {segment} ends inside a block at {offset}: it was truncated"
            )),
            _ => Error::io(&path, e),
        })?;
        Ok(buf)
    }

    fn read_directory(
        &self,
        sealer: &Sealer,
        first: u64,
        pos: &Position,
    ) -> Result<(Vec<u64>, Vec<Mac16>)> {
        let sealed = self.read_at(
            pos.segment,
            pos.offset + u64::from(pos.body_len),
            pos.dir_len as usize,
        )?;
        let plain = sealer
            .open(
                RecordKind::Block,
                &aad(b'd', self.format, first, pos),
                &sealed,
            )
            .map_err(|e| tampered(format!("block directory at {first}: {e}")))?;
        let dir: Directory = postcard::from_bytes(&plain)
            .map_err(|_| Error::Corrupt("an undecodable block directory".into()))?;
        if dir.deltas.len() != dir.macs.len() || dir.deltas.is_empty() {
            return Err(Error::Corrupt("a malformed block directory".into()));
        }
        let mut docnos = Vec::with_capacity(dir.deltas.len());
        for d in dir.deltas {
            let n = first
                .checked_add(d)
                .filter(|&n| n <= pos.last && docnos.last().is_none_or(|&p| n > p))
                .ok_or_else(|| Error::Corrupt("a malformed block directory".into()))?;
            docnos.push(n);
        }
        Ok((docnos, dir.macs))
    }

    /// The decoded body of a block: its record encodings.
    pub(super) fn body(
        &self,
        sealer: &Sealer,
        dict: Option<&Dictionary>,
        first: u64,
        pos: &Position,
    ) -> Result<Body> {
        let key = (first, pos.segment, pos.offset);
        if let Some(b) = self
            .bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(b);
        }
        let body = Arc::new(self.read_body(sealer, dict, first, pos)?);
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key, Arc::clone(&body));
        Ok(body)
    }

    fn read_body(
        &self,
        sealer: &Sealer,
        dict: Option<&Dictionary>,
        first: u64,
        pos: &Position,
    ) -> Result<Decoded> {
        let plain = self.open_body(sealer, first, pos)?;
        decode_body(&plain, dict).map_err(|e| match e {
            BodyError::NeedsDictionary => Error::Tampered {
                kind: RecordKind::Dictionary.name(),
                detail: "a block needs the store's dictionary, which is missing".into(),
            },
            BodyError::Corrupt(what) => Error::Corrupt(what),
        })
    }

    /// A block's body as sealed: authenticated, not decompressed.
    fn open_body(&self, sealer: &Sealer, first: u64, pos: &Position) -> Result<Vec<u8>> {
        let sealed = self.read_at(pos.segment, pos.offset, pos.body_len as usize)?;
        sealer
            .open(
                RecordKind::Block,
                &aad(b'b', self.format, first, pos),
                &sealed,
            )
            .map_err(|e| tampered(format!("block at {first}: {e}")))
    }

    /// The body of block `first` as it is sealed (layout byte and
    /// compressed frame: what a snapshot ships, see [`GivenBody`]) and its
    /// document numbers, if every record in it is its key's live record
    /// and numbered above `after`; `None` otherwise (the block is gone,
    /// holds dead records, or was partly sent), and the caller sends its
    /// live records instead.
    pub(super) fn live_body(
        &self,
        sealer: &Sealer,
        first: u64,
        after: u64,
    ) -> Result<Option<(Vec<u64>, Vec<u8>)>> {
        let Some(b) = self.blocks.get(&first) else {
            return Ok(None);
        };
        let whole = b.docno(0).is_some_and(|d| d > after)
            && b.docnos()
                .zip(b.macs.iter())
                .all(|(d, m)| self.is_live(d, m));
        if !whole {
            return Ok(None);
        }
        let body = self.open_body(sealer, first, &b.pos)?;
        Ok(Some((b.docnos().collect(), body)))
    }

    /// Decodes the record in `slot`.
    pub(super) fn record(
        &self,
        sealer: &Sealer,
        dict: Option<&Dictionary>,
        slot: &Slot,
    ) -> Result<Record> {
        let body = self.body(sealer, dict, slot.first, &slot.pos)?;
        let raw = body
            .get(slot.index)
            .ok_or_else(|| tampered("a block holds fewer records than its directory"))?;
        record::decode_raw(raw)
    }

    /// Every record of one block with its document number (live or not).
    pub(super) fn block_records(
        &self,
        sealer: &Sealer,
        dict: Option<&Dictionary>,
        first: u64,
    ) -> Result<Vec<(u64, Mac16, Vec<u8>)>> {
        let b = self
            .blocks
            .get(&first)
            .ok_or_else(|| Error::Corrupt("no such block".into()))?;
        let body = self.read_body(sealer, dict, first, &b.pos)?;
        if body.len() != b.len() {
            return Err(tampered(
                "a block holds another number of records than its directory",
            ));
        }
        Ok(b.docnos()
            .zip(b.macs.iter())
            .zip(body.iter())
            .map(|((d, m), raw)| (d, *m, raw.to_vec()))
            .collect())
    }

    /// Whether a document number is its key's live record.
    pub(super) fn is_live(&self, docno: u64, mac: &Mac16) -> bool {
        self.live.get(mac) == Some(docno)
    }

    /// Packs `puts` (key and record encoding, in order) into new blocks
    /// placed after the current end, numbered from the next document
    /// number, compressed and sealed in parallel.
    pub(super) fn build(
        &self,
        sealer: &Sealer,
        dict: Option<&Dictionary>,
        puts: &[(Mac16, Vec<u8>)],
    ) -> Vec<NewBlock> {
        let base = self.next_docno;
        let runs = runs(puts, (0..).map(|i| base + i), &[]);
        self.pack(sealer, dict, runs, self.segment, self.segment_len)
    }

    /// Packs `puts` like [`Blocks::build`], but under the document numbers
    /// `docnos` (one per put, strictly increasing) instead of the next
    /// ones: a device that bootstraps from a peer's snapshot keeps the
    /// numbers the peer's inverted index names (see `sync::share`). A block
    /// ends where [`BLOCK_TARGET`] is reached, or where one of `given`
    /// (bodies sealed as they are, placed among the puts by their numbers)
    /// lies between two puts. Refused with [`Error::Corrupt`] when two of
    /// the new blocks overlap in numbers, or one overlaps a block of this
    /// store.
    pub(super) fn build_numbered(
        &self,
        sealer: &Sealer,
        dict: Option<&Dictionary>,
        puts: &[(Mac16, Vec<u8>)],
        docnos: &[u64],
        given: &[GivenBody],
    ) -> Result<Vec<NewBlock>> {
        let mut given: Vec<&GivenBody> = given.iter().filter(|g| !g.docnos.is_empty()).collect();
        given.sort_by_key(|g| g.docnos[0]);
        let breaks: Vec<u64> = given.iter().map(|g| g.docnos[0]).collect();
        let mut all = runs(puts, docnos.iter().copied(), &breaks);
        for g in given {
            if g.docnos.len() != g.macs.len() || g.docnos.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Error::Corrupt(
                    "a given block's numbers are out of order or miscounted".into(),
                ));
            }
            all.push(Run {
                first: g.docnos[0],
                last: g.docnos[g.docnos.len() - 1],
                docnos: g.docnos.clone(),
                macs: g.macs.clone(),
                raws: Vec::new(),
                given: Some(&g.body),
            });
        }
        all.sort_by_key(|r| r.first);
        let overlap = all.windows(2).any(|w| w[0].last >= w[1].first)
            || all.iter().any(|r| !self.range_free(r.first, r.last));
        if overlap {
            return Err(Error::Corrupt(
                "adopted document numbers that overlap each other or this store's".into(),
            ));
        }
        Ok(self.pack(sealer, dict, all, self.segment, self.segment_len))
    }

    /// Whether no block holds a number in `lo..=hi`.
    pub(super) fn range_free(&self, lo: u64, hi: u64) -> bool {
        if lo > hi {
            return true;
        }
        // The last block starting at or below `hi` is the only one that can
        // reach into the range from below or start inside it.
        self.blocks
            .range(..=hi)
            .next_back()
            .is_none_or(|(_, b)| b.pos.last < lo)
    }

    /// Raises the next document number to at least `floor` (in memory: the
    /// blocks written from then on carry it).
    pub(super) fn reserve(&mut self, floor: u64) {
        self.next_docno = self.next_docno.max(floor);
    }

    /// The number the next stored record gets.
    pub(super) fn next_docno(&self) -> u64 {
        self.next_docno
    }

    /// Every block's first and last document numbers, in order.
    pub(super) fn spans(&self) -> Vec<(u64, u64)> {
        self.blocks.iter().map(|(f, b)| (*f, b.pos.last)).collect()
    }

    /// Compressed, sealed and placed blocks of `runs`, the first at
    /// `(segment, offset)`.
    fn pack(
        &self,
        sealer: &Sealer,
        dict: Option<&Dictionary>,
        runs: Vec<Run<'_>>,
        mut segment: u32,
        mut offset: u64,
    ) -> Vec<NewBlock> {
        // Compress in parallel; place in order; seal in parallel.
        let plains: Vec<(Vec<u8>, Vec<u8>)> = runs
            .par_iter()
            .map(|r| {
                let body = match r.given {
                    Some(given) => given.to_vec(),
                    None => {
                        let encoded =
                            postcard::to_allocvec(&r.raws).expect("serialising bytes cannot fail");
                        let mut body = vec![BODY_LAYOUT];
                        body.extend_from_slice(&match dict {
                            Some(d) => record::compress_with(encoded, d),
                            None => record::compress(encoded),
                        });
                        body
                    }
                };
                let dir = Directory {
                    deltas: r.docnos.iter().map(|d| d - r.first).collect(),
                    macs: r.macs.clone(),
                };
                (
                    body,
                    postcard::to_allocvec(&dir).expect("serialising a directory cannot fail"),
                )
            })
            .collect();
        let mut placed = Vec::with_capacity(runs.len());
        for (r, (body, dir)) in runs.into_iter().zip(plains) {
            if offset >= SEGMENT_BYTES {
                segment += 1;
                offset = 0;
            }
            let pos = Position {
                segment,
                offset,
                body_len: (body.len() + crate::seal::OVERHEAD) as u32,
                dir_len: (dir.len() + crate::seal::OVERHEAD) as u32,
                last: r.last,
            };
            offset = pos.end();
            placed.push((r.first, pos, body, dir, r.docnos, r.macs));
        }
        placed
            .into_par_iter()
            .map(|(first, pos, body, dir, docnos, macs)| {
                let mut bytes = sealer.seal(
                    RecordKind::Block,
                    &aad(b'b', self.format, first, &pos),
                    &body,
                );
                bytes.extend_from_slice(&sealer.seal(
                    RecordKind::Block,
                    &aad(b'd', self.format, first, &pos),
                    &dir,
                ));
                NewBlock {
                    first,
                    pos,
                    bytes,
                    docnos,
                    macs,
                }
            })
            .collect()
    }

    /// Segments worth compacting: those (the last one included) whose
    /// dead records hold at least [`COMPACT_MIN_BYTES`] and half of
    /// their bytes. A block's dead bytes are estimated as its share of
    /// dead records.
    pub(super) fn segments_to_compact(&self) -> Vec<u32> {
        let mut per: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        for b in self.blocks.values() {
            let len = (b.pos.end() - b.pos.offset) as f64;
            let total = b.len().max(1) as f64;
            let dead = len * (total - f64::from(b.live)) / total;
            let e = per.entry(b.pos.segment).or_default();
            e.0 += len;
            e.1 += dead;
        }
        per.into_iter()
            .filter(|(_, (len, dead))| *dead >= COMPACT_MIN_BYTES as f64 && dead * 2.0 >= *len)
            .map(|(s, _)| s)
            .collect()
    }

    /// The blocks of `segments` rewritten with their live records only,
    /// each keeping its document numbers (so the index needs no change),
    /// placed after the current end (in a new segment when the current
    /// one is among them); and the blocks with no live record, to drop.
    pub(super) fn compacted(
        &self,
        sealer: &Sealer,
        dict: Option<&Dictionary>,
        segments: &[u32],
    ) -> Result<(Vec<NewBlock>, Vec<u64>)> {
        // Per block kept: its first and last numbers and its live records.
        type Kept = (u64, u64, Vec<(u64, Mac16, Vec<u8>)>);
        let mut kept: Vec<Kept> = Vec::new();
        let mut dropped = Vec::new();
        for (first, b) in &self.blocks {
            if !segments.contains(&b.pos.segment) {
                continue;
            }
            if b.live == 0 {
                dropped.push(*first);
                continue;
            }
            let live: Vec<(u64, Mac16, Vec<u8>)> = self
                .block_records(sealer, dict, *first)?
                .into_iter()
                .filter(|(d, m, _)| self.is_live(*d, m))
                .collect();
            if live.is_empty() {
                dropped.push(*first);
            } else {
                kept.push((*first, b.pos.last, live));
            }
        }
        let runs: Vec<Run<'_>> = kept
            .iter()
            .map(|(first, last, live)| Run {
                first: *first,
                last: *last,
                docnos: live.iter().map(|l| l.0).collect(),
                macs: live.iter().map(|l| l.1).collect(),
                raws: live.iter().map(|l| &l.2[..]).collect(),
                given: None,
            })
            .collect();
        let (segment, offset) = if segments.contains(&self.segment) {
            (self.segment + 1, 0)
        } else {
            (self.segment, self.segment_len)
        };
        Ok((self.pack(sealer, dict, runs, segment, offset), dropped))
    }

    /// Takes in a compaction (once sled references its blocks): each
    /// rewritten block replaces the one of the same first number.
    pub(super) fn replace(&mut self, new: Vec<NewBlock>, dropped: &[u64]) {
        let mut bodies = self.bodies.lock().unwrap_or_else(|p| p.into_inner());
        bodies.map.retain(|k, _| !dropped.contains(&k.0));
        for first in dropped {
            self.blocks.remove(first);
        }
        for nb in new {
            self.segment = nb.pos.segment;
            self.segment_len = nb.pos.end();
            let live = nb
                .docnos
                .iter()
                .zip(&nb.macs)
                .filter(|(d, m)| self.live.get(m) == Some(**d))
                .count() as u32;
            let moved = nb.first;
            bodies.map.retain(|k, _| k.0 != moved);
            self.blocks.insert(moved, nb.into_block(live));
        }
    }

    /// Appends `blocks` to their segments and makes them durable. Nothing
    /// references them until the caller's sled batch does.
    pub(super) fn write(&self, blocks: &[NewBlock]) -> Result<()> {
        let mut i = 0;
        while i < blocks.len() {
            let segment = blocks[i].pos.segment;
            let path = self.root.join(segment_name(segment));
            let new_file = !path.exists();
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            let len = f.metadata().map_err(|e| Error::io(&path, e))?.len();
            if len != blocks[i].pos.offset {
                // What a failed earlier write left: drop it.
                f.set_len(blocks[i].pos.offset)
                    .map_err(|e| Error::io(&path, e))?;
            }
            while i < blocks.len() && blocks[i].pos.segment == segment {
                f.write_all(&blocks[i].bytes)
                    .map_err(|e| Error::io(&path, e))?;
                i += 1;
            }
            f.sync_data().map_err(|e| Error::io(&path, e))?;
            if new_file {
                let _ = crate::fsio::sync_dir(&self.root);
            }
        }
        Ok(())
    }

    /// Takes in a batch's new blocks (once sled references them) and its
    /// deletes (keys whose live record is no longer live).
    pub(super) fn commit(&mut self, new: Vec<NewBlock>, deleted: &[Mac16]) {
        for m in deleted {
            if let Some(d) = self.live.remove(m)
                && let Some(b) = self.block_of_mut(d)
            {
                b.live = b.live.saturating_sub(1);
            }
        }
        for nb in new {
            self.segment = nb.pos.segment;
            self.segment_len = nb.pos.end();
            self.next_docno = self.next_docno.max(nb.pos.last + 1);
            let mut live = 0;
            for (d, m) in nb.docnos.iter().zip(&nb.macs) {
                if let Some(old) = self.live.insert(*m, *d) {
                    if let Some(b) = self.block_of_mut(old) {
                        b.live = b.live.saturating_sub(1);
                    } else if (nb.first..=nb.pos.last).contains(&old) {
                        // Upserted twice in this block.
                        live -= 1;
                    }
                }
                live += 1;
            }
            self.blocks.insert(nb.first, nb.into_block(live));
        }
    }

    /// Drops a block from the maps (after compaction made it unreferenced).
    pub(super) fn remove_unreferenced_segments(&self) -> Result<()> {
        let used: std::collections::HashSet<u32> =
            self.blocks.values().map(|b| b.pos.segment).collect();
        let rd = std::fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))?;
        for entry in rd.filter_map(|e| e.ok()) {
            let number = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(n) = number
                && !used.contains(&n)
                && n != self.segment
            {
                self.files
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&n);
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A block's numbers, kept as a start when they are consecutive
        /// and listed otherwise, answer as the list they were made from.
        #[test]
        fn block_numbers_answer_as_their_list(
            start in 1u64..1_000_000,
            gaps in proptest::collection::vec(prop_oneof![3 => Just(1u64), 1 => 2u64..9], 0..40),
        ) {
            let mut docnos = vec![start];
            for g in &gaps {
                docnos.push(docnos[docnos.len() - 1] + g);
            }
            let macs: Vec<Mac16> = (0..docnos.len()).map(|i| [i as u8; 16]).collect();
            let pos = Position { segment: 0, offset: 0, body_len: 1, dir_len: 1, last: docnos[docnos.len() - 1] };
            let b = Block::new(pos, docnos.clone(), macs, 0);
            prop_assert_eq!(
                matches!(b.numbers, Numbers::Dense(_)),
                gaps.iter().all(|g| *g == 1)
            );
            prop_assert_eq!(b.len(), docnos.len());
            prop_assert_eq!(b.docnos().collect::<Vec<_>>(), docnos.clone());
            prop_assert_eq!(b.docno(docnos.len()), None);
            for (i, d) in docnos.iter().enumerate() {
                prop_assert_eq!(b.docno(i), Some(*d));
                prop_assert_eq!(b.index_of(*d), Some(i));
            }
            for d in (start.saturating_sub(3))..(docnos[docnos.len() - 1] + 3) {
                prop_assert_eq!(b.index_of(d), docnos.iter().position(|x| *x == d));
            }
        }

        /// Runs of numbered puts placed among given bodies: every put is
        /// in exactly one run, in order, and no run spans the first number
        /// of a given body (so no run's range overlaps a body's).
        #[test]
        fn runs_never_span_a_break(
            gaps in proptest::collection::vec(1u64..5, 1..200),
            sizes in proptest::collection::vec(1usize..6000, 200),
            every in 2usize..40,
        ) {
            let docnos: Vec<u64> = gaps
                .iter()
                .scan(0u64, |n, g| {
                    *n += g;
                    Some(*n)
                })
                .collect();
            // A break wherever two puts leave a gap of at least 3 numbers,
            // and every `every`-th put onwards is past one.
            let breaks: Vec<u64> = docnos
                .windows(2)
                .enumerate()
                .filter(|(i, w)| w[1] - w[0] >= 3 || i % every == 0)
                .map(|(_, w)| w[1] - 1)
                .filter(|b| !docnos.contains(b))
                .collect();
            let puts: Vec<(Mac16, Vec<u8>)> = docnos
                .iter()
                .zip(&sizes)
                .map(|(d, s)| ([*d as u8; 16], vec![0u8; *s]))
                .collect();
            let out = runs(&puts, docnos.iter().copied(), &breaks);
            let flat: Vec<u64> = out.iter().flat_map(|r| r.docnos.iter().copied()).collect();
            prop_assert_eq!(&flat, &docnos);
            for r in &out {
                prop_assert_eq!(r.first, r.docnos[0]);
                prop_assert_eq!(r.last, *r.docnos.last().unwrap());
                prop_assert!(breaks.iter().all(|&b| b < r.first || b > r.last));
            }
        }
    }
}
