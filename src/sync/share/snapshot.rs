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
use crate::record::Record;
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
                let after = match after {
                    [] => None,
                    b => Some(u64::from_be_bytes(b.try_into().map_err(|_| {
                        SyncError::Malformed {
                            what: "a snapshot position",
                            detail: format!("{} bytes where a document number takes 8", b.len()),
                        }
                    })?)),
                };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Credential, IndexConfig, KdfParams, SecretKey};

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
