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

use std::sync::Arc;

use crate::Index;
use crate::ops::{Op, Upsert};
use crate::source::Cursor;
use crate::store::{Checkpoint, DocKey};
use crate::sync::error::{SyncError, SyncResult};

use super::wire::{Resume, SnapshotChunk, TokenEntry};

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
}

pub(crate) fn index_err(e: crate::Error) -> SyncError {
    SyncError::Index(Box::new(e))
}

impl BootState {
    /// Reads it from the store.
    pub fn load(index: &Index) -> SyncResult<BootState> {
        let Some(cp) = index.store().checkpoint(BOOT).map_err(index_err)? else {
            return Ok(BootState::default());
        };
        let resume = match cp.cursor {
            Some(c) => Some(
                postcard::from_bytes(&c.0).map_err(|e| SyncError::Malformed {
                    what: "the stored bootstrap position",
                    detail: e.to_string(),
                })?,
            ),
            None => None,
        };
        Ok(BootState {
            resume,
            records: cp.done,
            done: cp.synced,
            needed: true,
        })
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
        Ok(state)
    }

    /// As a checkpoint, to write with a chunk.
    pub fn checkpoint(&self) -> (String, Checkpoint) {
        let cursor = self
            .resume
            .as_ref()
            .and_then(|r| postcard::to_allocvec(r).ok())
            .map(Cursor);
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
    keys: std::vec::IntoIter<DocKey>,
    sources: Vec<String>,
    to: u64,
    request: u64,
    per_chunk: usize,
}

impl Reader {
    /// The records of `index` after `after` (a key of this store, from an
    /// earlier chunk; empty for all), for device `to`'s request `request`.
    /// Only keys are read now: records are read as each chunk is built.
    pub fn new(
        index: Arc<Index>,
        after: &[u8],
        sources: Vec<String>,
        to: u64,
        request: u64,
        per_chunk: usize,
    ) -> SyncResult<Reader> {
        let keys: Vec<DocKey> = index
            .store()
            .keys()
            .map_err(index_err)?
            .into_iter()
            .filter(|k| k.as_bytes() > after)
            .collect();
        Ok(Reader {
            index,
            keys: keys.into_iter(),
            sources,
            to,
            request,
            per_chunk,
        })
    }

    /// The next chunk (the last one carries the server's source state).
    pub fn next_chunk(&mut self) -> SyncResult<SnapshotChunk> {
        let mut ops = Vec::new();
        let mut bytes = 0usize;
        let mut after = Vec::new();
        while ops.len() < self.per_chunk && bytes < super::wire::PART_BYTES {
            let Some(key) = self.keys.next() else { break };
            after = key.as_bytes().to_vec();
            // Deleted since the keys were listed: the delete reaches the
            // new device live.
            let Some(record) = self.index.store().get_by_key(&key).map_err(index_err)? else {
                continue;
            };
            let op = Op::Upsert(Upsert {
                // A record from before versions has revision 0; 1 keeps
                // the index from assigning it a new one.
                version: record.revision.max(1),
                record: Arc::new(record),
            });
            bytes += super::wire::op_len(&op);
            ops.push(op);
        }
        let last = self.keys.len() == 0;
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
        let store = self.index.store();
        let (mut checkpoints, mut tokens) = (Vec::new(), Vec::new());
        for s in &self.sources {
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
}
