//! Snapshots: how a device that joins with an empty index gets a copy of a
//! peer's, without fetching anything from the backend.
//!
//! # The exchange
//!
//! ```text
//!  new device N                       relay                       leader S
//!  connect (N's queue starts)  ───────────────────────────────────────────
//!  queue dry, index empty
//!  SnapshotRequest{N, r, resume} ──► queued for every device ──►  handles it after
//!                                                                  everything queued
//!                                                                  before it
//!                               ◄── BeginTransaction … chunks … Commit (repeated)
//!  applies each chunk with its
//!  position, in one atomic batch
//! ```
//!
//! # Why nothing is lost or doubled
//!
//! - N's queue exists from its first connection, so every batch reflected
//!   after that reaches N live. The request is queued after N connected, and
//!   S handles its queue in order, so when S reads its store it has applied
//!   every batch reflected before N connected. Each record therefore reaches
//!   N in the snapshot, in the live stream, or both; ops are idempotent by
//!   version, so both is harmless.
//! - A live patch can arrive before the chunk holding its record: applied
//!   then, it would change nothing (the record is not there yet). N keeps
//!   such patches and applies them again with each chunk, in the same
//!   atomic batch, so a patch newer than the record's copy in the chunk
//!   wins, and an older one changes nothing.
//! - N writes its position in the snapshot (the server, the request, the
//!   server's last key) with each chunk's records, atomically, in its own
//!   sealed store. After a disconnect or a crash it asks again with a new
//!   request id and that position: S (if it is the same server) goes on
//!   after it, reading now, so what it sends includes every patch N had
//!   kept in memory and lost. Chunks answering an older request are ignored.
//! - Chunks are reflected inside the group's transaction (a few at a time,
//!   so the relay never holds a whole snapshot): no other device serves a
//!   snapshot or runs a bulk operation meanwhile, and a server that
//!   vanishes loses at most the chunks of one transaction, which N asks
//!   for again.
//!
//! Records travel at their revision, so N ends with the same versions as S,
//! and later ops compare the same way on both.
//!
//! # The index's form (a format-4 server)
//!
//! Sending records makes N do what S did when it indexed them, minus the
//! parse: seal them into blocks and build an inverted index (measured on
//! the 258k-message ChitChat corpus, most of a bootstrap was that
//! indexing: `bench-notes/share-run10.md`). So N asks first in the index's
//! form ([`super::wire::Msg::IndexRequest`]), and S, when its store keeps
//! document numbers (format 4), sends:
//!
//! 1. its blocks' live records, block by block, **under S's document
//!    numbers**; N stores them under the same numbers (adopts them), in
//!    blocks sealed under its own data key, unless it holds something
//!    under the record's key already (then the record goes through the
//!    usual write path, which compares versions);
//! 2. then the plaintext of its inverted index's segment files and (in the
//!    last chunk) its `meta.json`. N writes them through its own encrypted
//!    directory, under its own key, in place of its own inverted index, and
//!    catches that up with its store at once.
//!
//! Everything travels sealed under the group's reflect key, like every
//! chunk; no device key leaves its device.
//!
//! ## Why the cut is consistent
//!
//! S takes the cut under its index's writer lock ([`Index::snapshot_cut`]):
//! it brings its inverted index to follow the store, commits it at the
//! store's generation, and reads the list of its blocks and the index's
//! metadata, with no batch in between. So the segments hold exactly the
//! live records of the blocks listed. The export keeps the segment files
//! from tantivy's garbage collection while it is read, without the lock.
//! The blocks are read later, chunk by chunk, each block's records that
//! are live *then*: a record rewritten or deleted after the cut is not
//! sent (its new version, or its delete, reaches N live, as above), but
//! the segments still hold it under its old number.
//!
//! ## Why N's inverted index ends right
//!
//! A document number names one record forever on S (a rewrite takes a new
//! number; compaction keeps numbers and contents). N's own records (what
//! reaches it live while it bootstraps, and whatever goes through the
//! usual write path) are numbered from [`OWN_DOCNOS_FROM`] until N knows
//! S's range, then from the end of S's range (`docno_end` of the cut),
//! and N adopts S's numbers only into a range where it numbered nothing
//! of its own (checked at every chunk). So every number in S's segments
//! is, on N, either the very record S indexed under it, or not live at
//! all. The catch-up after the install compares numbers only: it deletes
//! from the installed index every number N does not hold live (records
//! rewritten or deleted after the cut, copies N kept a newer version of),
//! and indexes every live record of N's the segments lack (what came
//! live). Neither lost nor doubled: the catch-up leaves the inverted index
//! holding exactly N's live records, each once, whatever the timing.
//!
//! Adopted numbers are only installable with the index of the server they
//! came from. A bootstrap resumed with another server (the first went
//! away) takes that one's records through the usual write path and ends
//! with a catch-up of N's own inverted index instead (it indexes the
//! adopted records); so does a bootstrap that ends because N was promoted
//! to leader. Until the install, N's inverted index lacks the adopted
//! records: a search during a bootstrap sees part of the index anyway.
//!
//! Resuming works as with records: N's position is the last document
//! number S sent or covered, written with each chunk's records in one
//! atomic batch; a new request makes a new cut, whose blocks after the
//! position and whose whole index files are sent. File pieces are kept in
//! memory until the last chunk; an interruption during them sends them
//! again.
//!
//! A server of an earlier build does not know the index's form and
//! answers the records' request N sends right after it; a server whose
//! store is of format 1 to 3 answers the index's form with records.
//!
//! # Blocks as their bodies
//!
//! Sent as records, every block is decompressed and decoded on S, encoded
//! and compressed again (in the envelope), then decompressed, decoded,
//! encoded and compressed again on N, to end as the very bytes S had
//! before sealing. N now asks first with [`super::wire::Msg::BodiesRequest`]
//! and S answers with [`super::wire::BodiesChunk`]s: a block whose records
//! are all live on S (and above the position) travels as its body, the
//! layout byte and the zstd frame S's store sealed, decrypted from S's
//! data key and sealed in the envelope under the group's key. N checks it
//! (it decompresses, within a bound, to exactly as many records as
//! numbers, every record decodes) and makes each record's key under its
//! own keys from the record's source and id, then seals the body as it is
//! under its own data key, beside a directory of its own (the numbers,
//! its own keys), with its own position in the associated data. Nothing
//! is compressed again.
//!
//! - **Dead records.** A block holding a record that is not live on S
//!   (rewritten or deleted since) is not sent whole: its live records go
//!   as records, as before, and N packs them in blocks of its own. So a
//!   body N stores holds only records live on S when read; each is then
//!   live on N too unless N holds something under its key (a copy that
//!   came live, or a delete): then the whole block goes through the
//!   records' path, which compares versions.
//! - **The dictionary.** Bodies are compressed against S's dictionary; S
//!   sends it once per response, with the first chunk whose bodies need
//!   it. N, having none yet (it joined empty), makes it its own, written
//!   with the first batch that uses it. An N that has made its own
//!   already decodes S's bodies with S's dictionary and takes their
//!   records one by one.
//! - **Revisions** stay as S stored them (the records' path raises a
//!   revision 0, from before versions, to 1).
//! - **Bad bytes.** A body that does not check out makes the chunk fail
//!   before anything of it is written (its batch is atomic); N counts it
//!   refused and asks again from its stored position without bodies (in
//!   the index's form), so a peer whose bodies N cannot read still serves
//!   it. Everything was authenticated by the envelope's AEAD before.
//! - **Older builds.** A server of round 10 refuses `BodiesRequest` as
//!   malformed and answers its `IndexRequest` twin; one of before, the
//!   `SnapshotRequest` twin. A server of this build answers the first it
//!   gets and ignores the twins.

use std::sync::Arc;

use crate::Index;
use crate::ops::{Op, Upsert};
use crate::record::Record;
use crate::source::Cursor;
use crate::store::{Checkpoint, DocKey};
use crate::sync::error::{SyncError, SyncResult};

use super::wire::{
    BodiesChunk, FilePiece, IndexChunk, Resume, ShippedBlock, ShippedBody, SnapshotChunk,
    TokenEntry,
};

/// The checkpoint slot (a source name no backend produces) under which a
/// device keeps where its bootstrap stands, sealed in its own store.
pub(crate) const BOOT: &str = "\u{0}sealdex/sync/bootstrap";

/// Where this device's bootstrap stands, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BootState {
    /// The server and its position, once a chunk was applied.
    pub resume: Option<Resume>,
    /// Records received so far.
    pub records: u64,
    /// Finished (or not needed any more: this device leads).
    pub done: bool,
    /// This device started sharing with an empty index, so it needs a
    /// snapshot (stored: the state exists in the store).
    pub needed: bool,
    /// Whose document numbers this device's store holds (see [`Adopted`]).
    pub adopted: Adopted,
    /// While [`Adopted::From`]: every number the server used at the cuts
    /// adopted from is below this; this device numbers its own records
    /// from here up.
    pub end: u64,
}

/// Whether a bootstrap stored records under a server's document numbers,
/// and so whether that server's inverted index may be installed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Adopted {
    /// No record was adopted.
    #[default]
    Nothing,
    /// Records were adopted from the server of the stored position, and
    /// from no other: its inverted index names them rightly.
    From,
    /// Records were adopted from a server other than the one the position
    /// is now with (the first went away): no server's inverted index may be
    /// installed, since the numbers of two servers would mix; the
    /// bootstrap ends with a catch-up of this device's own index instead.
    Mixed,
}

impl Adopted {
    fn byte(self) -> u8 {
        match self {
            Adopted::Nothing => 0,
            Adopted::From => 1,
            Adopted::Mixed => 2,
        }
    }

    fn from_byte(b: u8) -> Adopted {
        match b {
            0 => Adopted::Nothing,
            1 => Adopted::From,
            _ => Adopted::Mixed,
        }
    }
}

/// Where a device that joins empty numbers its own records (those that
/// reach it live while it bootstraps) until it knows the server's range:
/// far above any store's numbers, so that the server's numbers, adopted
/// with its blocks, do not collide with them. A server whose numbers reach
/// this high (it bootstrapped itself and then stored more) is adopted from
/// only if this device stored nothing of its own in the server's range.
pub(crate) const OWN_DOCNOS_FROM: u64 = 1 << 40;

pub(crate) fn index_err(e: crate::Error) -> SyncError {
    SyncError::Index(Box::new(e))
}

impl BootState {
    /// Reads it from the store.
    pub fn load(index: &Index) -> SyncResult<BootState> {
        let Some(cp) = index.store().checkpoint(BOOT).map_err(index_err)? else {
            return Ok(BootState::default());
        };
        let malformed = |e: postcard::Error| SyncError::Malformed {
            what: "the stored bootstrap position",
            detail: e.to_string(),
        };
        // The position, then (since blocks are adopted) the adoption and
        // its range; a position stored by an earlier build has neither.
        let (resume, adopted, end) = match cp.cursor {
            Some(c) => {
                let (resume, rest): (Resume, &[u8]) =
                    postcard::take_from_bytes(&c.0).map_err(malformed)?;
                let (adopted, end) = if rest.is_empty() {
                    (Adopted::Nothing, 0)
                } else {
                    let (b, end): (u8, u64) = postcard::from_bytes(rest).map_err(malformed)?;
                    (Adopted::from_byte(b), end)
                };
                (Some(resume), adopted, end)
            }
            None => (None, Adopted::Nothing, 0),
        };
        Ok(BootState {
            resume,
            records: cp.done,
            done: cp.synced,
            needed: true,
            adopted,
            end,
        })
    }

    /// Keeps this device's own document numbers clear of the server's while
    /// a bootstrap runs (see [`OWN_DOCNOS_FROM`]): called when sharing
    /// starts and with every chunk, before anything else is written.
    pub fn reserve(&self, index: &Index) {
        if self.needed && !self.done {
            index.store().reserve_docnos(OWN_DOCNOS_FROM.max(self.end));
        }
    }

    /// Reads it, and if this index is empty and has never bootstrapped,
    /// records now that it needs a snapshot. Decided here, when sharing
    /// starts, not when the relay says the queue is dry: by then batches
    /// reflected live since this device connected may have made the index
    /// non-empty while the records from before its connection are still
    /// missing. Stored, so a restart before the first chunk still asks.
    pub fn load_or_mark(index: &Index) -> SyncResult<BootState> {
        let mut state = Self::load(index)?;
        if !state.needed && !state.done && index.is_empty() {
            state.needed = true;
            index
                .apply_reflected(
                    Vec::new(),
                    crate::write::State {
                        checkpoint: Some(state.checkpoint()),
                        ..crate::write::State::default()
                    },
                )
                .map_err(index_err)?;
        }
        state.reserve(index);
        Ok(state)
    }

    /// As a checkpoint, to write with a chunk.
    pub fn checkpoint(&self) -> (String, Checkpoint) {
        let cursor = self
            .resume
            .as_ref()
            .and_then(|r| postcard::to_allocvec(r).ok())
            .map(|mut c| {
                if self.adopted != Adopted::Nothing
                    && let Ok(tail) = postcard::to_allocvec(&(self.adopted.byte(), self.end))
                {
                    c.extend_from_slice(&tail);
                }
                Cursor(c)
            });
        (
            BOOT.to_owned(),
            Checkpoint {
                cursor,
                synced: self.done,
                done: self.records,
            },
        )
    }
}

/// Source checkpoints and sync tokens, as a snapshot's last chunk carries them.
type SourceState = (Vec<(String, Checkpoint)>, Vec<TokenEntry>);

/// The server's side: which records to send, read chunk by chunk.
pub(crate) struct Reader {
    index: Arc<Index>,
    order: Order,
    sources: Vec<String>,
    to: u64,
    request: u64,
    per_chunk: usize,
}

/// The order a snapshot reads the server's records in, and so what its
/// resume position (`SnapshotChunk::after`, opaque to the new device) is.
enum Order {
    /// Stores of format 1 to 3 keep each record apart, under its key: by
    /// key, and the position is the last key sent.
    Keys(std::vec::IntoIter<DocKey>),
    /// A format-4 store keeps records in sealed blocks of many: block by
    /// block, so each block is decrypted once for all its records (by key,
    /// a 16 KiB block of chat was opened once per record it holds:
    /// measured, a ChitChat snapshot took 2.1× indexing from the source).
    /// The position is the last document number sent, 8 bytes big-endian.
    ///
    /// Resuming after number `n` loses nothing: a record written or
    /// rewritten since (an upsert or a patch gets a new, higher number) is
    /// either above `n` or reaches the new device live, and one deleted
    /// reaches it live as a delete.
    Docnos {
        /// First numbers of the blocks still to read.
        blocks: std::vec::IntoIter<u64>,
        /// Records read from the current block and not sent yet.
        pending: std::collections::VecDeque<(u64, Record)>,
        /// Numbers up to this one were sent before (a resume).
        after: u64,
    },
}

/// A format-4 server's resume position: the last document number sent
/// (8 bytes, big-endian), or nothing yet (empty).
fn docno_position(after: &[u8]) -> SyncResult<Option<u64>> {
    match after {
        [] => Ok(None),
        b => b
            .try_into()
            .map(|b| Some(u64::from_be_bytes(b)))
            .map_err(|_| SyncError::Malformed {
                what: "a snapshot position",
                detail: format!("{} bytes where a document number takes 8", b.len()),
            }),
    }
}

impl Reader {
    /// The records of `index` after `after` (a position from an earlier
    /// chunk of this server; empty for all), for device `to`'s request
    /// `request`. Only keys or block numbers are listed now: records are
    /// read as each chunk is built.
    pub fn new(
        index: Arc<Index>,
        after: &[u8],
        sources: Vec<String>,
        to: u64,
        request: u64,
        per_chunk: usize,
    ) -> SyncResult<Reader> {
        let order = match index.store().block_firsts() {
            Some(firsts) => {
                let after = docno_position(after)?;
                // A block whose successor starts at or below `after + 1`
                // holds only numbers already sent.
                let blocks: Vec<u64> = match after {
                    None => firsts,
                    Some(a) => {
                        let nexts = firsts.iter().skip(1).map(|&n| Some(n)).chain([None]);
                        firsts
                            .iter()
                            .zip(nexts)
                            .filter(|(_, next)| next.is_none_or(|n| n > a.saturating_add(1)))
                            .map(|(&f, _)| f)
                            .collect()
                    }
                };
                Order::Docnos {
                    blocks: blocks.into_iter(),
                    pending: Default::default(),
                    after: after.unwrap_or(0),
                }
            }
            None => {
                let keys: Vec<DocKey> = index
                    .store()
                    .keys()
                    .map_err(index_err)?
                    .into_iter()
                    .filter(|k| k.as_bytes() > after)
                    .collect();
                Order::Keys(keys.into_iter())
            }
        };
        Ok(Reader {
            index,
            order,
            sources,
            to,
            request,
            per_chunk,
        })
    }

    /// The next record to send and its position, if any is left.
    fn next_record(&mut self) -> SyncResult<Option<(Vec<u8>, Option<Record>)>> {
        match &mut self.order {
            Order::Keys(keys) => {
                let Some(key) = keys.next() else {
                    return Ok(None);
                };
                // Deleted since the keys were listed: `None`, and the
                // delete reaches the new device live.
                let record = self.index.store().get_by_key(&key).map_err(index_err)?;
                Ok(Some((key.as_bytes().to_vec(), record)))
            }
            Order::Docnos {
                blocks,
                pending,
                after,
            } => loop {
                if let Some((docno, record)) = pending.pop_front() {
                    return Ok(Some((docno.to_be_bytes().to_vec(), Some(record))));
                }
                let Some(first) = blocks.next() else {
                    return Ok(None);
                };
                let live = self.index.store().live_in_block(first).map_err(index_err)?;
                pending.extend(
                    live.into_iter()
                        .filter(|(_, d, _)| *d > *after)
                        .map(|(_, d, r)| (d, r)),
                );
            },
        }
    }

    /// Whether every record was read.
    fn exhausted(&self) -> bool {
        match &self.order {
            Order::Keys(keys) => keys.len() == 0,
            Order::Docnos {
                blocks, pending, ..
            } => blocks.len() == 0 && pending.is_empty(),
        }
    }

    /// The next chunk (the last one carries the server's source state).
    pub fn next_chunk(&mut self) -> SyncResult<SnapshotChunk> {
        let mut ops = Vec::new();
        let mut bytes = 0usize;
        let mut after = Vec::new();
        while ops.len() < self.per_chunk && bytes < super::wire::PART_BYTES {
            let Some((position, record)) = self.next_record()? else {
                break;
            };
            after = position;
            let Some(record) = record else { continue };
            let op = Op::Upsert(Upsert {
                // A record from before versions has revision 0; 1 keeps
                // the index from assigning it a new one.
                version: record.revision.max(1),
                record: Arc::new(record),
            });
            bytes += super::wire::op_len(&op);
            ops.push(op);
        }
        let last = self.exhausted();
        let (checkpoints, tokens) = if last {
            self.source_state()?
        } else {
            Default::default()
        };
        Ok(SnapshotChunk {
            to: self.to,
            request: self.request,
            ops,
            after,
            last,
            checkpoints,
            tokens,
        })
    }

    /// The checkpoints and tokens of the server's sources, read after its
    /// records: never behind them (what was written since reaches the new
    /// device live, with its own checkpoint).
    fn source_state(&self) -> SyncResult<SourceState> {
        source_state(&self.index, &self.sources)
    }
}

/// The server's side of a snapshot of the index (a format-4 store): its
/// blocks' live records under their document numbers, then its inverted
/// index's files, all from one cut ([`Index::snapshot_cut`]).
pub(crate) struct IndexReader {
    index: Arc<Index>,
    /// Blocks still to read: first and last numbers.
    blocks: std::vec::IntoIter<(u64, u64)>,
    /// Numbers up to this one were sent before (a resume) or now.
    after: u64,
    docno_end: u64,
    #[cfg(feature = "tantivy")]
    export: Option<crate::search::inverted::engine::InvertedExport>,
    /// The next file piece: file index and offset.
    #[cfg_attr(not(feature = "tantivy"), allow(dead_code))]
    file: (usize, u64),
    sources: Vec<String>,
    to: u64,
    request: u64,
    per_chunk: usize,
    /// Blocks travel as their bodies where they can ([`BodiesChunk`]).
    bodies: bool,
    /// The store's dictionary went with an earlier chunk.
    dictionary_sent: bool,
}

impl IndexReader {
    /// The cut of `index` after position `after` (empty for all); `None`
    /// for a store of format 1 to 3, which is served by records.
    pub fn new(
        index: Arc<Index>,
        after: &[u8],
        sources: Vec<String>,
        to: u64,
        request: u64,
        per_chunk: usize,
    ) -> SyncResult<Option<IndexReader>> {
        let after = docno_position(after)?.unwrap_or(0);
        let Some(cut) = index.snapshot_cut().map_err(index_err)? else {
            return Ok(None);
        };
        let blocks: Vec<(u64, u64)> = cut.spans.into_iter().filter(|s| s.1 > after).collect();
        Ok(Some(IndexReader {
            index,
            blocks: blocks.into_iter(),
            after,
            docno_end: cut.docno_end,
            #[cfg(feature = "tantivy")]
            export: cut.inverted,
            file: (0, 0),
            sources,
            to,
            request,
            per_chunk,
            bodies: false,
            dictionary_sent: false,
        }))
    }

    /// Sends blocks as their bodies where they can go whole (the new
    /// device asked with [`super::wire::Msg::BodiesRequest`]): read with
    /// [`IndexReader::next_bodies_chunk`].
    pub fn with_bodies(mut self) -> IndexReader {
        self.bodies = true;
        self
    }

    #[cfg(feature = "tantivy")]
    fn files_left(&self) -> bool {
        self.export
            .as_ref()
            .is_some_and(|e| self.file.0 < e.files().len())
    }

    #[cfg(not(feature = "tantivy"))]
    fn files_left(&self) -> bool {
        false
    }

    /// Pieces of the index files, after `bytes` of the chunk are taken,
    /// up to about [`super::wire::PART_BYTES`].
    #[cfg(feature = "tantivy")]
    fn file_pieces(&mut self, mut bytes: usize) -> SyncResult<Vec<FilePiece>> {
        let mut files = Vec::new();
        let Some(export) = &self.export else {
            return Ok(files);
        };
        while bytes < super::wire::PART_BYTES {
            let Some((name, len)) = export.files().get(self.file.0) else {
                break;
            };
            let take = (super::wire::PART_BYTES - bytes).min((len - self.file.1) as usize);
            let piece = export.read(name, self.file.1, take).map_err(index_err)?;
            bytes += piece.len() + 64;
            files.push(FilePiece {
                name: name.clone(),
                offset: self.file.1,
                len: *len,
                bytes: piece,
            });
            self.file.1 += take as u64;
            if self.file.1 >= *len {
                self.file = (self.file.0 + 1, 0);
            }
        }
        Ok(files)
    }

    #[cfg(not(feature = "tantivy"))]
    fn file_pieces(&mut self, _bytes: usize) -> SyncResult<Vec<FilePiece>> {
        Ok(Vec::new())
    }

    /// The next chunk: blocks while there are any (whole blocks, about
    /// [`super::wire::PART_BYTES`] of records or `per_chunk` records at
    /// most), then file pieces; the last one carries the metadata and the
    /// server's source state.
    pub fn next_chunk(&mut self) -> SyncResult<IndexChunk> {
        self.read_chunk(&mut Vec::new())
    }

    /// The next chunk with blocks as bodies where they can go whole (see
    /// [`BodiesChunk`]): a block whose records are all live and above the
    /// position travels as its body, decrypted but still compressed;
    /// another (holding dead records, or partly sent before a resume)
    /// travels as its live records. The store's dictionary goes with the
    /// first chunk whose bodies need it.
    pub fn next_bodies_chunk(&mut self) -> SyncResult<BodiesChunk> {
        let mut bodies = Vec::new();
        let index = self.read_chunk(&mut bodies)?;
        let dictionary = if !self.dictionary_sent
            && bodies
                .iter()
                .any(|b| crate::store::body_needs_dictionary(&b.body))
        {
            self.dictionary_sent = true;
            self.index
                .store()
                .dictionary_bytes()
                .map(|d| d.as_slice().to_vec())
        } else {
            None
        };
        Ok(BodiesChunk {
            index,
            bodies,
            dictionary,
        })
    }

    /// [`IndexReader::next_chunk`], with blocks as bodies into `bodies`
    /// when they are asked for.
    fn read_chunk(&mut self, bodies: &mut Vec<ShippedBody>) -> SyncResult<IndexChunk> {
        let mut blocks = Vec::new();
        let (mut bytes, mut records) = (0usize, 0usize);
        while bytes < super::wire::PART_BYTES && records < self.per_chunk {
            let Some((first, last)) = self.blocks.next() else {
                break;
            };
            if self.bodies
                && let Some((docnos, body)) = self
                    .index
                    .store()
                    .live_body(first, self.after)
                    .map_err(index_err)?
            {
                bytes += body.len() + 8 * docnos.len();
                records += docnos.len();
                self.after = self.after.max(last);
                bodies.push(ShippedBody { docnos, body });
                continue;
            }
            let live = self.index.store().live_in_block(first).map_err(index_err)?;
            let (mut docnos, mut recs) = (Vec::new(), Vec::new());
            for (_, d, r) in live {
                if d > self.after {
                    bytes += r.text_len() + 64;
                    docnos.push(d);
                    recs.push(r);
                }
            }
            self.after = self.after.max(last);
            records += recs.len();
            if !recs.is_empty() {
                blocks.push(ShippedBlock {
                    docnos,
                    records: recs,
                });
            }
        }
        let files = if self.blocks.len() == 0 {
            self.file_pieces(bytes)?
        } else {
            Vec::new()
        };
        let last = self.blocks.len() == 0 && !self.files_left();
        #[cfg(feature = "tantivy")]
        let meta = match (&self.export, last) {
            (Some(e), true) => Some(e.meta_json().map_err(index_err)?),
            _ => None,
        };
        #[cfg(not(feature = "tantivy"))]
        let meta = None;
        let (checkpoints, tokens) = if last {
            source_state(&self.index, &self.sources)?
        } else {
            Default::default()
        };
        Ok(IndexChunk {
            to: self.to,
            request: self.request,
            docno_end: self.docno_end,
            blocks,
            files,
            meta,
            after: self.after.to_be_bytes().to_vec(),
            last,
            checkpoints,
            tokens,
        })
    }
}

/// The checkpoints and tokens of the server's sources, read after its
/// records: never behind them (what was written since reaches the new
/// device live, with its own checkpoint).
fn source_state(index: &Index, sources: &[String]) -> SyncResult<SourceState> {
    let store = index.store();
    let (mut checkpoints, mut tokens) = (Vec::new(), Vec::new());
    for s in sources {
        if let Some(cp) = store.checkpoint(s).map_err(index_err)? {
            checkpoints.push((s.clone(), cp));
        }
        for listing_start in [true, false] {
            let entry = TokenEntry {
                source: s.clone(),
                listing_start,
                token: None,
            };
            let token = store.token(s, entry.slot()).map_err(index_err)?;
            tokens.push(TokenEntry { token, ..entry });
        }
    }
    Ok((checkpoints, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credential, IndexConfig, KdfParams, SecretKey};

    /// A new device's empty index in `dir`, under an app key made of `seed`.
    fn new_device(dir: &std::path::Path, seed: u8) -> Index {
        Index::create(
            &dir.join("n"),
            &Credential::AppKey(SecretKey::from_bytes([seed; 32])),
            config_fast(),
        )
        .unwrap()
    }

    fn index_with(n: usize) -> (tempfile::TempDir, Arc<Index>) {
        let dir = tempfile::tempdir().unwrap();
        let config = IndexConfig {
            kdf: KdfParams::insecure_fast(),
            ..IndexConfig::default()
        };
        let cred = Credential::AppKey(SecretKey::from_bytes([7; 32]));
        let index = Index::create(&dir.path().join("i"), &cred, config).unwrap();
        // Several batches, so that the records span several blocks.
        for b in 0..4 {
            let ops = (0..n / 4)
                .map(|i| {
                    Op::upsert(Record {
                        source: "push".into(),
                        id: format!("{b}/{i}"),
                        body: format!("record {b} {i} {}", "padding ".repeat(40)),
                        timestamp: Some(1_700_000_000 + (b * 1000 + i) as i64),
                        ..Record::default()
                    })
                })
                .collect();
            index.apply(ops).unwrap();
        }
        (dir, Arc::new(index))
    }

    fn ids(chunk: &SnapshotChunk) -> Vec<String> {
        chunk
            .ops
            .iter()
            .map(|op| match op {
                Op::Upsert(u) => u.record.id.clone(),
                other => panic!("a snapshot sends upserts, not {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_format_4_snapshot_sends_every_record_once_and_resumes_after_its_position() {
        let (_dir, index) = index_with(400);
        assert!(index.store().has_docnos());
        let mut reader = Reader::new(Arc::clone(&index), &[], vec![], 9, 1, 37).unwrap();
        let first = reader.next_chunk().unwrap();
        assert_eq!(first.ops.len(), 37);
        assert_eq!(first.after.len(), 8, "a document number");
        let mut seen = ids(&first);
        // Resumed from the first chunk's position by a new reader: the
        // rest, and nothing sent before.
        let mut reader = Reader::new(Arc::clone(&index), &first.after, vec![], 9, 2, 37).unwrap();
        loop {
            let c = reader.next_chunk().unwrap();
            seen.extend(ids(&c));
            if c.last {
                break;
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "a record sent twice");
        assert_eq!(seen.len(), 400);
    }

    #[test]
    fn a_rewritten_record_is_sent_again_after_a_resume() {
        let (_dir, index) = index_with(40);
        let mut reader = Reader::new(Arc::clone(&index), &[], vec![], 9, 1, 10).unwrap();
        let first = reader.next_chunk().unwrap();
        let patched = ids(&first)[0].clone();
        // Changed after it was sent: a new document number, above the
        // position, so the resumed snapshot carries the new version.
        index
            .apply(vec![Op::patch(
                "push",
                &patched,
                crate::source::Metadata {
                    flagged: Some(true),
                    ..Default::default()
                },
            )])
            .unwrap();
        let mut reader = Reader::new(Arc::clone(&index), &first.after, vec![], 9, 2, 100).unwrap();
        let rest = reader.next_chunk().unwrap();
        assert!(rest.last);
        assert_eq!(rest.ops.len(), 31);
        assert!(ids(&rest).contains(&patched));
    }

    /// What a search answers in both modes: newest first, and by relevance
    /// (as a set: equal scores tie, and ties break by key, which differs
    /// between devices).
    fn answers(index: &Index, queries: &[&str]) -> Vec<(String, usize, Vec<String>)> {
        use crate::search::{Order, SearchMode, SearchOptions};
        index.wait_for_inverted().unwrap();
        let mut out = Vec::new();
        for q in queries {
            for mode in [SearchMode::Forward, SearchMode::Inverted] {
                for order in [Order::Newest, Order::Relevance] {
                    let r = index
                        .search(
                            q,
                            &SearchOptions {
                                mode,
                                order,
                                limit: None,
                                snippet_bytes: 0,
                                ..SearchOptions::default()
                            },
                        )
                        .unwrap();
                    let mut ids: Vec<String> = r.hits.into_iter().map(|h| h.id).collect();
                    if order == Order::Relevance {
                        ids.sort();
                    }
                    out.push((format!("{q} {mode:?} {order:?}"), r.total, ids));
                }
            }
        }
        out
    }

    fn assert_same(a: &[(String, usize, Vec<String>)], b: &[(String, usize, Vec<String>)]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!(
                x == y,
                "{}: {} hits against {} ({:?}…)",
                x.0,
                x.1,
                y.1,
                &x.2[..x.2.len().min(5)]
            );
        }
    }

    /// A chunk's blocks as the new device adopts them, and the server's
    /// dictionary if the chunk carried it.
    fn peer_blocks(
        blocks: Vec<ShippedBlock>,
        bodies: Vec<ShippedBody>,
    ) -> Vec<crate::index::snapshot::PeerBlock> {
        use crate::index::snapshot::PeerBlock;
        let mut out: Vec<(u64, PeerBlock)> = blocks
            .into_iter()
            .map(|b| {
                (
                    b.docnos[0],
                    PeerBlock::Records(b.docnos.into_iter().zip(b.records).collect()),
                )
            })
            .chain(bodies.into_iter().map(|b| {
                (
                    b.docnos[0],
                    PeerBlock::Body {
                        docnos: b.docnos,
                        body: b.body,
                    },
                )
            }))
            .collect();
        out.sort_by_key(|b| b.0);
        out.into_iter().map(|b| b.1).collect()
    }

    /// The next chunk in the index's form, or with bodies: its blocks, the
    /// chunk, and how many blocks went as bodies.
    fn next_of(
        reader: &mut IndexReader,
        bodies: bool,
        dict: &mut Option<Arc<crate::record::Dictionary>>,
    ) -> (Vec<crate::index::snapshot::PeerBlock>, IndexChunk, usize) {
        if bodies {
            let mut c = reader.next_bodies_chunk().unwrap();
            if let Some(d) = c.dictionary.take() {
                *dict = Some(Arc::new(crate::record::Dictionary::from_bytes(d).unwrap()));
            }
            let n = c.bodies.len();
            let blocks = peer_blocks(std::mem::take(&mut c.index.blocks), c.bodies);
            (blocks, c.index, n)
        } else {
            let mut c = reader.next_chunk().unwrap();
            let blocks = peer_blocks(std::mem::take(&mut c.blocks), Vec::new());
            (blocks, c, 0)
        }
    }

    /// A new device takes a server's index (blocks under its numbers, then
    /// its inverted index) while ops reach it live before, between and
    /// after the chunks, as the sharing applies them; it ends answering
    /// exactly as the server, in both modes, with every record once.
    #[test]
    fn an_index_snapshot_with_live_ops_ends_with_the_servers_answers() {
        index_snapshot_with_live_ops(false);
    }

    /// The same with blocks as their bodies: most blocks go whole (sealed
    /// as they are on the new device), those holding dead records go as
    /// records, and the answers are the server's.
    #[test]
    fn a_bodies_snapshot_with_live_ops_ends_with_the_servers_answers() {
        index_snapshot_with_live_ops(true);
    }

    fn index_snapshot_with_live_ops(bodies: bool) {
        // With bodies, enough records that the server's store makes its
        // dictionary (256 KiB of samples), so that bodies need it.
        let (_dir, server) = index_with(if bodies { 1000 } else { 400 });
        // Dead records on the server: rewritten and deleted ones.
        let before_cut = server
            .apply(vec![
                Op::patch(
                    "push",
                    "0/3",
                    crate::source::Metadata {
                        flagged: Some(true),
                        ..Default::default()
                    },
                ),
                Op::delete("push", "1/4"),
            ])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = IndexConfig {
            kdf: KdfParams::insecure_fast(),
            ..IndexConfig::default()
        };
        let cred = Credential::AppKey(SecretKey::from_bytes([8; 32]));
        let new = Index::create(&dir.path().join("n"), &cred, config).unwrap();
        let boot = BootState::load_or_mark(&new).unwrap();
        assert!(boot.needed);
        // Live, before the snapshot: what the server did before the new
        // device's request also reaches it (the two ops above), and a
        // record of another device.
        new.apply_reflected(before_cut.ops.clone(), crate::write::State::default())
            .unwrap();
        let other = server
            .apply(vec![Op::upsert(Record {
                source: "push".into(),
                id: "live/1".into(),
                body: "record live arrived first".into(),
                ..Record::default()
            })])
            .unwrap();
        new.apply_reflected(other.ops.clone(), crate::write::State::default())
            .unwrap();

        let mut reader = IndexReader::new(Arc::clone(&server), &[], vec![], 9, 1, 60)
            .unwrap()
            .unwrap();
        if bodies {
            reader = reader.with_bodies();
        }
        // After the cut, on the server: a delete of a record in a later
        // block, and a patch; both reach the new device live.
        let after_cut = server
            .apply(vec![
                Op::delete("push", "3/7"),
                Op::patch(
                    "push",
                    "2/9",
                    crate::source::Metadata {
                        unread: Some(false),
                        ..Default::default()
                    },
                ),
            ])
            .unwrap();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut adopted_any = false;
        let mut chunks = 0;
        let mut end = 1u64;
        let (mut dict, mut shipped_bodies) = (None, 0);
        loop {
            let (blocks, c, n) = next_of(&mut reader, bodies, &mut dict);
            shipped_bodies += n;
            chunks += 1;
            if !blocks.is_empty() {
                assert!(new.store().docnos_free(end, c.docno_end - 1));
                end = end.max(c.docno_end);
                new.store().reserve_docnos(end);
                if let Some(d) = &dict {
                    new.store().adopt_dictionary(d);
                }
                let (rest, state) = new
                    .adopt(
                        blocks,
                        dict.as_deref(),
                        crate::write::State::default(),
                        false,
                    )
                    .unwrap();
                adopted_any = true;
                if let Some(state) = state {
                    let ops = rest
                        .into_iter()
                        .map(|r| Op::upsert(r.clone()).with_version(r.revision.max(1)))
                        .collect();
                    new.apply_reflected(ops, state).unwrap();
                }
            }
            if chunks == 2 {
                new.apply_reflected(after_cut.ops.clone(), crate::write::State::default())
                    .unwrap();
            }
            for p in c.files {
                match files.last_mut() {
                    Some((n, b)) if *n == p.name => b.extend_from_slice(&p.bytes),
                    _ => files.push((p.name, p.bytes)),
                }
            }
            if c.last {
                new.install_inverted(&c.meta.expect("the metadata"), &files)
                    .unwrap();
                break;
            }
        }
        assert!(adopted_any && chunks > 3, "{chunks} chunks");
        assert!(!files.is_empty());
        if bodies {
            assert!(shipped_bodies > 3, "{shipped_bodies} blocks as bodies");
            assert!(dict.is_some(), "the server's dictionary was sent");
        }
        assert_eq!(new.len(), server.len());
        assert!(new.verify().is_ok());
        let queries = [
            "record",
            "padding",
            "live",
            "is:flagged",
            "is:unread",
            "record 2",
        ];
        assert_same(&answers(&new, &queries), &answers(&server, &queries));
        // Its files are its own: sealed under its key, and it opens again
        // (no catch-up needed: the install committed at the store's
        // generation).
        drop(new);
        let new = Index::open(&dir.path().join("n"), &cred, config_fast()).unwrap();
        assert!(matches!(
            new.inverted_status().unwrap(),
            crate::search::InvertedStatus::Current { .. }
        ));
        assert_same(&answers(&new, &queries), &answers(&server, &queries));
    }

    /// A peer's index that is not what it should be (a file that is no
    /// segment file, a meta of another schema, a segment file missing) is
    /// never put in place as it is: the install is refused before it
    /// writes, or its index fails to open, and the new device's inverted
    /// index is rebuilt from its own store instead, answering rightly.
    #[test]
    fn a_bad_peer_index_is_rebuilt_from_the_store_not_installed() {
        let (_dir, server) = index_with(120);
        let queries = ["record", "padding", "record 2"];
        let want = answers(&server, &queries);
        let take = |server: &Arc<Index>| {
            let mut reader = IndexReader::new(Arc::clone(server), &[], vec![], 9, 1, 1000)
                .unwrap()
                .unwrap();
            let (mut records, mut files) = (Vec::new(), Vec::<(String, Vec<u8>)>::new());
            let meta = loop {
                let c = reader.next_chunk().unwrap();
                records.extend(
                    c.blocks
                        .into_iter()
                        .flat_map(|b| b.docnos.into_iter().zip(b.records)),
                );
                for p in c.files {
                    match files.last_mut() {
                        Some((n, b)) if *n == p.name => b.extend_from_slice(&p.bytes),
                        _ => files.push((p.name, p.bytes)),
                    }
                }
                if c.last {
                    break c.meta;
                }
            };
            (records, files, meta.unwrap())
        };
        type Spoil = fn(&mut Vec<(String, Vec<u8>)>, &mut Vec<u8>);
        let spoils: [Spoil; 3] = [
            |files, _| files[0].0 = "meta.json".into(),
            |_, meta| {
                let mut m: serde_json::Value = serde_json::from_slice(meta).unwrap();
                m["schema"] = serde_json::json!([]);
                *meta = serde_json::to_vec(&m).unwrap();
            },
            |files, _| {
                let i = files.iter().position(|f| f.0.ends_with(".idx")).unwrap();
                files.remove(i);
            },
        ];
        for spoil in spoils {
            let dir = tempfile::tempdir().unwrap();
            let new = new_device(dir.path(), 9);
            let (records, mut files, mut meta) = take(&server);
            spoil(&mut files, &mut meta);
            let (rest, state) = new
                .adopt(
                    vec![crate::index::snapshot::PeerBlock::Records(records)],
                    None,
                    crate::write::State::default(),
                    false,
                )
                .unwrap();
            assert!(rest.is_empty() && state.is_none());
            new.install_inverted(&meta, &files).unwrap();
            assert_same(&answers(&new, &queries), &want);
        }
    }

    fn config_fast() -> IndexConfig {
        IndexConfig {
            kdf: KdfParams::insecure_fast(),
            ..IndexConfig::default()
        }
    }

    /// Every block of a server with bodies (a resumed reader takes the
    /// rest after the first chunk's position), and the dictionary.
    fn all_bodies(
        server: &Arc<Index>,
        per_chunk: usize,
    ) -> (
        Vec<Vec<crate::index::snapshot::PeerBlock>>,
        Option<Arc<crate::record::Dictionary>>,
    ) {
        let mut dict = None;
        let mut reader = IndexReader::new(Arc::clone(server), &[], vec![], 9, 1, per_chunk)
            .unwrap()
            .unwrap()
            .with_bodies();
        let (blocks, first, _) = next_of(&mut reader, true, &mut dict);
        let mut chunks = vec![blocks];
        // Interrupted after the first chunk: a new request resumes after
        // its position, from a new cut; the dictionary comes again.
        let mut again = None;
        let mut reader =
            IndexReader::new(Arc::clone(server), &first.after, vec![], 9, 2, per_chunk)
                .unwrap()
                .unwrap()
                .with_bodies();
        loop {
            let (blocks, c, _) = next_of(&mut reader, true, &mut again);
            chunks.push(blocks);
            if c.last {
                break;
            }
        }
        (chunks, dict.or(again))
    }

    /// A body that does not check out (truncated, of an unknown layout or
    /// codec, its numbers miscounted, read without the dictionary it
    /// needs) is refused with an error before anything is written; the
    /// same chunk as sent is then taken, and a bootstrap resumed after the
    /// first chunk ends with every record once and the server's answers.
    #[test]
    fn a_tampered_body_is_refused_and_a_resumed_bodies_snapshot_completes() {
        use crate::index::snapshot::PeerBlock;
        let (_dir, server) = index_with(1000);
        let (chunks, dict) = all_bodies(&server, 200);
        assert!(chunks.len() > 3);
        let dir = tempfile::tempdir().unwrap();
        let new = new_device(dir.path(), 10);
        new.store().reserve_docnos(OWN_DOCNOS_FROM);
        let dict = dict.expect("the server's dictionary");
        assert!(new.store().adopt_dictionary(&dict));
        // The last chunk's bodies hold records made with the dictionary.
        let (i, j) = chunks
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, c)| {
                c.iter()
                    .position(|b| {
                        matches!(b, PeerBlock::Body { body, .. }
                        if crate::store::body_needs_dictionary(body))
                    })
                    .map(|j| (i, j))
            })
            .expect("a body that needs the dictionary");
        let clone = |b: &PeerBlock| match b {
            PeerBlock::Body { docnos, body } => PeerBlock::Body {
                docnos: docnos.clone(),
                body: body.clone(),
            },
            PeerBlock::Records(r) => PeerBlock::Records(r.clone()),
        };
        type Spoil = fn(&mut Vec<u64>, &mut Vec<u8>);
        let spoils: [Spoil; 5] = [
            |_, body| body.truncate(body.len() / 2),
            |_, body| body[1] = 0x0e,
            |docnos, _| {
                docnos.pop();
            },
            |_, body| body[0] = 9,
            |_, body| body.truncate(1),
        ];
        for (k, spoil) in spoils.iter().enumerate() {
            let mut blocks: Vec<PeerBlock> = chunks[i].iter().map(clone).collect();
            if let PeerBlock::Body { docnos, body } = &mut blocks[j] {
                spoil(docnos, body);
            }
            let r = new.adopt(blocks, Some(&dict), crate::write::State::default(), false);
            assert!(
                matches!(r, Err(crate::Error::Corrupt(_))),
                "spoil {k}: {:?}",
                r.map(|_| ())
            );
            assert_eq!(new.len(), 0, "spoil {k}: nothing written");
        }
        // Without the dictionary it needs.
        let blocks: Vec<PeerBlock> = chunks[i].iter().map(clone).collect();
        let r = new.adopt(blocks, None, crate::write::State::default(), false);
        assert!(matches!(r, Err(crate::Error::Corrupt(_))));
        assert_eq!(new.len(), 0);
        // As sent, every chunk: every record once.
        for blocks in chunks {
            let (rest, state) = new
                .adopt(blocks, Some(&dict), crate::write::State::default(), false)
                .unwrap();
            assert!(rest.is_empty() && state.is_none());
        }
        assert_eq!(new.len(), server.len());
        assert!(new.verify().is_ok());
        new.reconcile_inverted().unwrap();
        let queries = ["record", "padding", "record 2"];
        assert_same(&answers(&new, &queries), &answers(&server, &queries));
        // And it opens again, reading the sealed bodies under its own key.
        drop(new);
        let new = Index::open(
            &dir.path().join("n"),
            &Credential::AppKey(SecretKey::from_bytes([10; 32])),
            config_fast(),
        )
        .unwrap();
        assert_eq!(new.len(), server.len());
        assert_same(&answers(&new, &queries), &answers(&server, &queries));
    }

    /// A body whose records this device holds something of already (a
    /// copy that came live) is not stored as it is: its records go one by
    /// one, the one held coming back for the write path.
    #[test]
    fn a_body_with_a_record_held_here_goes_record_by_record() {
        use crate::index::snapshot::PeerBlock;
        let (_dir, server) = index_with(200);
        let (chunks, _) = all_bodies(&server, 1000);
        let dir = tempfile::tempdir().unwrap();
        let new = new_device(dir.path(), 11);
        new.store().reserve_docnos(OWN_DOCNOS_FROM);
        let held = server.get_by_id("push", "0/1").unwrap().unwrap();
        new.apply_reflected(
            vec![Op::upsert((*held).clone()).with_version(held.revision.max(1))],
            crate::write::State::default(),
        )
        .unwrap();
        let mut returned = Vec::new();
        for blocks in chunks {
            assert!(blocks.iter().all(|b| matches!(b, PeerBlock::Body { .. })));
            let (rest, _) = new
                .adopt(blocks, None, crate::write::State::default(), false)
                .unwrap();
            returned.extend(rest.into_iter().map(|r| r.id));
        }
        assert_eq!(returned, vec!["0/1".to_owned()]);
        assert_eq!(new.len(), server.len());
        assert!(new.verify().is_ok());
    }

    #[test]
    fn a_position_of_the_wrong_size_is_refused() {
        let (_dir, index) = index_with(8);
        let r = Reader::new(index, &[1, 2, 3], vec![], 9, 1, 10);
        assert!(
            matches!(r, Err(SyncError::Malformed { .. })),
            "{:?}",
            r.err()
        );
    }
}
