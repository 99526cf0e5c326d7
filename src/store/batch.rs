//! [`WriteBatch`]: the changes one atomic, flushed store write makes;
//! crate-private, built only by the one write path (`crate::write`).

use super::{Checkpoint, DocKey, Failure, TokenSlot};
use crate::source::SyncToken;

/// A set of changes applied atomically and durably by [`Store::apply`]:
/// crate-private, so that every write goes through the one write path
/// (`crate::write`), which keeps the cache and the inverted index in step.
#[derive(Debug, Default)]
pub(crate) struct WriteBatch {
    pub(super) puts: Vec<Put>,
    pub(super) deletes: Vec<(DocKey, Option<u64>)>,
    pub(super) failures: Vec<(DocKey, Failure)>,
    pub(super) checkpoint: Option<(String, Checkpoint)>,
    pub(super) tokens: Vec<(String, TokenSlot, Option<SyncToken>)>,
    /// Format 4: the document numbers of the puts, in order, when they are
    /// not the store's next ones (a snapshot adopted from a peer); empty
    /// for the usual numbering.
    pub(super) docnos: Vec<u64>,
    /// Format 4: block bodies made by a peer's store, sealed as they are
    /// (a snapshot adopted from the peer: see `blocks::GivenBody`).
    pub(super) given: Vec<super::blocks::GivenBody>,
}

/// One sealed record to store, and what the writer knows of its key.
#[derive(Debug)]
pub(super) struct Put {
    pub(super) key: DocKey,
    pub(super) sealed: Vec<u8>,
    /// The store holds a document under this key (it is replaced).
    pub(super) existed: bool,
    /// The store holds a tombstone under this key (it is removed).
    pub(super) tombstone: bool,
}

impl WriteBatch {
    /// Upserts a sealed document (from [`Store::seal_record`]); clears any
    /// failure recorded for it. `existed` and `tombstone`: whether the
    /// store holds a document or a tombstone under the key now.
    pub(crate) fn put(&mut self, key: DocKey, sealed: Vec<u8>, existed: bool, tombstone: bool) {
        self.puts.push(Put {
            key,
            sealed,
            existed,
            tombstone,
        });
    }
    /// Deletes a document and any failure recorded for it; with a version,
    /// leaves a tombstone holding it.
    pub(crate) fn delete(&mut self, key: DocKey, tombstone: Option<u64>) {
        self.deletes.push((key, tombstone));
    }
    /// Records a failure for the message (replacing an earlier one).
    pub(crate) fn fail(&mut self, key: DocKey, failure: Failure) {
        self.failures.push((key, failure));
    }
    /// Saves a source's checkpoint with this batch.
    pub(crate) fn checkpoint(&mut self, source: &str, cp: Checkpoint) {
        self.checkpoint = Some((source.to_owned(), cp));
    }
    /// Stores (or with `None`, removes) a sync token of a source with this batch.
    pub(crate) fn token(&mut self, source: &str, slot: TokenSlot, token: Option<SyncToken>) {
        self.tokens.push((source.to_owned(), slot, token));
    }
    /// Gives the puts these document numbers (format 4; one per put,
    /// strictly increasing, none held by a block of the store) instead of
    /// the next ones: see `Store::apply`.
    #[cfg_attr(not(feature = "mediator"), allow(dead_code))]
    pub(crate) fn number(&mut self, docnos: Vec<u64>) {
        self.docnos = docnos;
    }
    /// Stores a block body a peer's store made, as it is, under its
    /// numbers (format 4; as [`WriteBatch::number`], no block of the store
    /// may hold them) and under these keys of this store, one per record
    /// the body holds, none held by the store now (no record, no
    /// tombstone): see `Store::open_peer_body`.
    #[cfg_attr(not(feature = "mediator"), allow(dead_code))]
    pub(crate) fn put_body(&mut self, docnos: Vec<u64>, keys: &[DocKey], body: Vec<u8>) {
        self.given.push(super::blocks::GivenBody {
            docnos,
            macs: keys.iter().map(DocKey::mac16).collect(),
            body,
        });
    }
    /// Whether nothing would change.
    pub(crate) fn is_empty(&self) -> bool {
        self.puts.is_empty()
            && self.given.is_empty()
            && self.deletes.is_empty()
            && self.failures.is_empty()
            && self.checkpoint.is_none()
            && self.tokens.is_empty()
    }
}
