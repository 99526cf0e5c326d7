//! What a snapshot of a shared index needs from an [`Index`]
//! (`crate::sync::share`): on the serving device, a consistent cut of its
//! store's blocks and its inverted index; on the new device, records stored
//! under the server's document numbers, and the server's inverted index put
//! in place of its own and caught up with the store.
//!
//! Kept apart from the index's own code: a bootstrap is the one writer that
//! chooses document numbers, and the one that replaces the inverted index
//! wholesale.

use std::sync::Arc;
#[cfg(feature = "tantivy")]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;

use super::Index;
use crate::error::{Error, Result};
use crate::record::{Dictionary, Record};
use crate::store::{DocKey, WriteBatch};
use crate::write::State;

/// A serving device's store and inverted index at one moment.
#[derive(Debug)]
pub(crate) struct SnapshotCut {
    /// Every block's first and last document numbers.
    pub spans: Vec<(u64, u64)>,
    /// Every document number in use at the cut is below it.
    pub docno_end: u64,
    /// The inverted index's committed state at the cut, holding exactly
    /// the store's live records then (`None` without an inverted index).
    #[cfg(feature = "tantivy")]
    pub inverted: Option<crate::search::inverted::engine::InvertedExport>,
}

/// One block of a peer's snapshot, as it travelled.
#[derive(Debug)]
pub(crate) enum PeerBlock {
    /// Its live records, under the peer's document numbers.
    Records(Vec<(u64, Record)>),
    /// Its body as the peer's store sealed it (every record in it live):
    /// see `Store::open_peer_body`.
    Body {
        /// The peer's numbers of its records.
        docnos: Vec<u64>,
        /// The body: layout byte, then the compressed frame.
        body: Vec<u8>,
    },
}

impl Index {
    /// A consistent cut for a snapshot by blocks, `None` for a store of
    /// format 1 to 3 (no document numbers).
    ///
    /// Taken under the writer lock: the inverted index is brought to follow
    /// the store and committed at the store's generation, then the block
    /// list and the index's metadata are read, so no batch falls between
    /// them and the committed segments hold exactly the store's live
    /// records. The export keeps its segment files from deletion while it
    /// lives; its bytes are read later, chunk by chunk, without the lock.
    pub(crate) fn snapshot_cut(&self) -> Result<Option<SnapshotCut>> {
        if !self.store.has_docnos() {
            return Ok(None);
        }
        #[cfg(feature = "tantivy")]
        if self.inverted.is_some()
            && let Some(r) = self.background.join()
        {
            r?;
        }
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        #[cfg(feature = "tantivy")]
        let inverted = match &self.inverted {
            Some(inv) => {
                let generation = self.store.generation();
                if !inv.is_following(generation) {
                    inv.catch_up(&self.store, inv.is_broken(), &AtomicBool::new(false))?;
                }
                inv.flush(Some(generation))?;
                Some(inv.export()?)
            }
            None => None,
        };
        let (Some(spans), Some(docno_end)) = (self.store.block_spans(), self.store.next_docno())
        else {
            return Ok(None);
        };
        Ok(Some(SnapshotCut {
            spans,
            docno_end,
            #[cfg(feature = "tantivy")]
            inverted,
        }))
    }

    /// Stores a peer's blocks under the peer's document numbers (format
    /// 4): the records whose key this store holds nothing under (no
    /// record, no tombstone); returns the others, to be applied as upserts,
    /// which compare versions. A block that came as its body
    /// ([`PeerBlock::Body`]) is stored as it is, sealed under this store's
    /// key, when every record in it can be adopted and this store reads it
    /// with its own dictionary; otherwise its records are decoded and
    /// taken one by one, like a block of records. The numbers must
    /// increase and lie in a range no block of this store holds
    /// ([`Error::Corrupt`] otherwise, as for a body that does not decode:
    /// nothing is written then).
    ///
    /// With `state` and nothing returned, the state is written in the same
    /// atomic batch and `None` comes back; otherwise the state comes back,
    /// for the caller to write with the returned records (so that a
    /// position written with it never gets ahead of them).
    ///
    /// The inverted index is not given the adopted records: the bootstrap
    /// that adopts them replaces it with the peer's, which holds them, and
    /// catches it up ([`Index::install_inverted`], or
    /// [`Index::reconcile_inverted`] when it cannot). Meanwhile it follows
    /// the store's other batches as usual.
    pub(crate) fn adopt(
        &self,
        blocks: Vec<PeerBlock>,
        peer_dict: Option<&Dictionary>,
        state: State,
        more: bool,
    ) -> Result<(Vec<Record>, Option<State>)> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = WriteBatch::default();
        let mut docnos = Vec::new();
        let mut rest = Vec::new();
        let mut adopted: Vec<(DocKey, Arc<Record>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // Bodies stored as they are: decoded for the cache only if it is
        // filled once they are stored.
        let mut bodies = Vec::new();
        for block in blocks {
            let records = match block {
                PeerBlock::Records(records) => records,
                PeerBlock::Body {
                    docnos: numbers,
                    body,
                } => {
                    let opened = self.store.open_peer_body(&numbers, &body, peer_dict)?;
                    let mut free = opened.as_is;
                    let mut own = std::collections::HashSet::with_capacity(opened.keys.len());
                    for key in &opened.keys {
                        free = free
                            && own.insert(*key)
                            && !seen.contains(key)
                            && self.store.locate(key)?.is_none()
                            && self.store.tombstone(key)?.is_none();
                    }
                    if free {
                        seen.extend(opened.keys.iter().copied());
                        batch.put_body(numbers, &opened.keys, body);
                        bodies.push(opened);
                        continue;
                    }
                    // Not as it is: its records one by one.
                    numbers.into_iter().zip(opened.records).collect()
                }
            };
            for (docno, mut record) in records {
                let key = self.store.doc_key(&record.source, &record.id);
                if !seen.insert(key)
                    || self.store.locate(&key)?.is_some()
                    || self.store.tombstone(&key)?.is_some()
                {
                    rest.push(record);
                    continue;
                }
                // A record from before versions has revision 0; 1 keeps the
                // index from assigning it a new one (as a snapshot's upsert).
                record.revision = record.revision.max(1);
                batch.put(key, self.store.seal_record_at(&key, &record), false, false);
                docnos.push(docno);
                adopted.push((key, Arc::new(record)));
            }
        }
        let state = if rest.is_empty() && !more {
            if let Some(cp) = state.checkpoint {
                batch.checkpoint(&cp.0, cp.1);
            }
            for (source, slot, token) in state.tokens {
                batch.token(&source, slot, token);
            }
            None
        } else {
            Some(state)
        };
        if batch.is_empty() {
            return Ok((rest, state));
        }
        if docnos.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Corrupt(
                "a snapshot's document numbers are out of order".into(),
            ));
        }
        batch.number(docnos);
        let previous = self.store.generation();
        self.store.apply(batch)?;
        let generation = self.store.generation();
        let _view = self.view.write().unwrap_or_else(|p| p.into_inner());
        if self.cache_loaded.load(Ordering::Acquire) {
            let mut c = self.cache.write().unwrap_or_else(|p| p.into_inner());
            for (key, record) in adopted {
                c.upsert(key, record);
            }
            for body in bodies {
                for (key, record) in body.keys.into_iter().zip(body.records) {
                    c.upsert(key, Arc::new(record));
                }
            }
        }
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &self.inverted
            && inv.is_following(previous)
            && let Err(e) = inv.apply(&[], &[], &[], generation)
        {
            tracing::warn!(error = %e, "the inverted index missed a batch; it will catch up");
            inv.mark_broken();
        }
        #[cfg(not(feature = "tantivy"))]
        let _ = previous;
        self.published.store(generation, Ordering::Release);
        Ok((rest, state))
    }

    /// Puts a peer's inverted index (its `meta.json` and segment files, in
    /// plaintext) in place of this device's, sealed under this device's
    /// key, then catches it up with the store: what the peer's segments
    /// hold that this store does not hold live (records deleted or
    /// rewritten on the peer after its cut, or kept here in a newer
    /// version) is deleted from it, and what this store holds that they do
    /// not (what reached this device live) is indexed. A peer index that
    /// does not install is logged, and the index is rebuilt from the store
    /// instead. Nothing to do without an inverted index.
    pub(crate) fn install_inverted(
        &self,
        meta_json: &[u8],
        files: &[(String, Vec<u8>)],
    ) -> Result<()> {
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &self.inverted {
            if let Some(r) = self.background.join() {
                r?;
            }
            let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let rebuild = match inv.install(meta_json, files) {
                Ok(()) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "a peer's inverted index could not be installed; rebuilding from the store");
                    true
                }
            };
            inv.catch_up(&self.store, rebuild, &AtomicBool::new(false))?;
        }
        #[cfg(not(feature = "tantivy"))]
        let _ = (meta_json, files);
        Ok(())
    }

    /// Catches the inverted index up with the store now: what a bootstrap
    /// that adopted records, but could not install the peer's inverted
    /// index, owes it.
    pub(crate) fn reconcile_inverted(&self) -> Result<()> {
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &self.inverted {
            if let Some(r) = self.background.join() {
                r?;
            }
            let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            inv.catch_up(&self.store, inv.is_broken(), &AtomicBool::new(false))?;
        }
        Ok(())
    }
}
