//! The one write path: applies a batch of [`Op`]s to the store, and in the
//! same step to the decrypted cache and the inverted index, one writer at a
//! time.
//!
//! # Why one door
//!
//! The store is the truth; the cache and the inverted index follow it. A
//! write that reached the store by another way would leave them behind
//! without anyone knowing, and the inverted index could then claim to be
//! current while missing a batch. So the store's batch type is private to
//! the crate, and everything that changes an index (the pipeline, an app's
//! pushed ops, reflected ops from other devices) comes through [`apply`],
//! which holds the writer lock from reading the records' versions to
//! handing the batch to the followers.
//!
//! # One batch
//!
//! 1. The records the ops name are read (their version: a stored record's
//!    [`revision`](crate::Record::revision), or a tombstone's).
//! 2. The ops are resolved in order against what the batch has done so far
//!    ([`crate::ops`] says when an op changes nothing).
//! 3. The changed records are sealed in parallel and written, with the
//!    caller's checkpoint, failures and sync tokens, in one atomic, flushed
//!    store batch: durable when `apply` returns.
//! 4. The cache and the inverted index are given the batch while searches
//!    are held off for that moment (the `view` lock), so a search sees
//!    either all of a batch in all three or none of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ops::{Applied, Op};
use crate::record::Record;
use crate::store::{Checkpoint, DocKey, Failure, Store, TokenSlot, WriteBatch};

/// One record a batch stored, as a follower (the cache, the inverted index)
/// sees it.
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "tantivy"), allow(dead_code))]
pub(crate) struct Committed {
    /// Where the record is stored.
    pub key: DocKey,
    /// The record itself (plaintext, in memory only).
    pub record: Arc<Record>,
    /// The stored envelope's [`stamp`](crate::seal::stamp), or in a
    /// format-4 store the record's document number: changes with every
    /// write of the record, so a follower (the inverted index) can tell
    /// which records it has seen in their current version without
    /// decrypting anything.
    pub stamp: u64,
    /// The stamp of the version this one replaced (0 when `new`).
    pub previous: u64,
    /// The store held no document under this key before this batch: a
    /// follower need not look for an older version.
    pub new: bool,
}

/// What a batch wrote, for the followers.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// The records stored.
    pub stored: Vec<Committed>,
    /// The keys deleted.
    pub deleted: Vec<DocKey>,
    /// The stamps the deleted records had, in the order of `deleted`.
    pub deleted_stamps: Vec<u64>,
    /// The store generation after the batch.
    pub generation: u64,
    /// The store generation before it.
    pub previous: u64,
}

/// An upsert's record, sealed before the write for the version it expects
/// to be given.
///
/// Why: sealing (encoding, compressing, encrypting) is most of a write's
/// CPU, and the writer is one thread at a time. The pipeline seals each
/// record on its processing threads, overlapped with the writer's previous
/// batch, under a provisional version drawn from the index's [`Clock`]. The
/// write uses the envelope when it gives the op exactly that version (the
/// usual case: nothing newer of the record was written meanwhile) and seals
/// again otherwise, so presealing never changes what is stored.
#[derive(Debug)]
pub(crate) struct Presealed {
    /// The record's store key.
    pub key: DocKey,
    /// The version the record was sealed with (its `revision`).
    pub version: u64,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
}

/// What the pipeline writes with its ops: state that must land in the same
/// atomic batch as the records it describes.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Per op (same order; shorter or empty: none), its record presealed.
    pub presealed: Vec<Option<Presealed>>,
    /// Messages that failed, recorded for retry.
    pub failures: Vec<(DocKey, Failure)>,
    /// A source's checkpoint.
    pub checkpoint: Option<(String, Checkpoint)>,
    /// A source's sync tokens.
    pub tokens: Vec<(String, TokenSlot, Option<crate::source::SyncToken>)>,
}

impl State {
    /// A copy for an observer of committed batches (multi-device
    /// reflection): the failures, checkpoint and tokens, without the
    /// presealed envelopes, which are this device's alone.
    pub(crate) fn to_observed(&self) -> State {
        State {
            presealed: Vec::new(),
            failures: self.failures.clone(),
            checkpoint: self.checkpoint.clone(),
            tokens: self.tokens.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.failures.is_empty() && self.checkpoint.is_none() && self.tokens.is_empty()
    }
}

/// The clock that versions ops given as version 0: microseconds since the
/// epoch, never going backwards while the index is open.
#[derive(Debug)]
pub(crate) struct Clock(AtomicU64);

impl Clock {
    pub(crate) fn new() -> Self {
        Clock(AtomicU64::new(0))
    }

    /// A version above every earlier one: what a record sealed ahead of its
    /// write ([`Presealed`]) expects to be given.
    pub(crate) fn provisional(&self) -> u64 {
        self.next_above(0)
    }

    /// A version above `floor` and above every earlier one.
    fn next_above(&self, floor: u64) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut prev = self.0.load(Ordering::Acquire);
        loop {
            let next = now.max(prev + 1).max(floor + 1);
            match self
                .0
                .compare_exchange(prev, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }
}

/// What the store holds under one key, as the batch goes.
#[derive(Clone, Debug, Default)]
enum Current {
    /// Nothing, not even a tombstone.
    #[default]
    Absent,
    /// A tombstone of this version.
    Deleted(u64),
    /// A record.
    Present(Arc<Record>),
}

impl Current {
    fn version(&self) -> u64 {
        match self {
            Current::Absent => 0,
            Current::Deleted(v) => *v,
            Current::Present(r) => r.revision,
        }
    }
}

/// What the store held under a key before the batch.
#[derive(Clone, Copy, Debug, Default)]
struct Before {
    document: bool,
    tombstone: bool,
    /// The stored record's [`Located::stamp`](crate::store::Located::stamp).
    stamp: u64,
}

/// Resolves `ops` against the store and writes the batch, with `state`.
/// Returns what changed and what the followers must be given. The caller
/// holds the writer lock.
pub(crate) fn write(
    store: &Store,
    clock: &Clock,
    ops: Vec<Op>,
    mut state: State,
) -> Result<(Applied, Written)> {
    let mut applied = Applied::default();
    let mut presealed = std::mem::take(&mut state.presealed);
    presealed.resize_with(ops.len(), || None);
    let keys: Vec<DocKey> = ops
        .iter()
        .zip(&presealed)
        .map(|(op, p)| match p {
            Some(p) => p.key,
            None => store.doc_key(op.source(), op.id()),
        })
        .collect();
    // 1. What the store holds under each key the batch names. The lookups
    // run on this thread: the writer is the pipeline's critical path, and a
    // parallel lookup would queue behind the pipeline's own work on the
    // shared thread pool. Only the records found are opened, in parallel
    // (their revisions are inside the seal).
    let mut distinct: Vec<DocKey> = keys.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let mut found: Vec<(DocKey, crate::store::Located)> = Vec::new();
    // Per key: what the store held before the batch, and what it holds as
    // the batch goes.
    let mut keyed: HashMap<DocKey, (Before, Current)> = HashMap::with_capacity(distinct.len());
    for key in distinct {
        let sealed = store.locate(&key)?;
        let tombstone = store.tombstone(&key)?;
        let before = Before {
            document: sealed.is_some(),
            tombstone: tombstone.is_some(),
            stamp: sealed.as_ref().map_or(0, |s| s.stamp()),
        };
        let current = match (sealed, tombstone) {
            (Some(sealed), _) => {
                found.push((key, sealed));
                Current::Absent
            }
            (None, Some(v)) => Current::Deleted(v),
            (None, None) => Current::Absent,
        };
        keyed.insert(key, (before, current));
    }
    let opened: Vec<(DocKey, Record)> = found
        .par_iter()
        .map(|(key, at)| Ok((*key, store.open_located(key, at)?)))
        .collect::<Result<_>>()?;
    for (key, record) in opened {
        if let Some((_, current)) = keyed.get_mut(&key) {
            *current = Current::Present(Arc::new(record));
        }
    }
    // 2. The ops in order, each against what the batch has done so far.
    // `envelopes`: the keys whose last op so far is an upsert presealed at
    // the version it was given.
    let mut envelopes: HashMap<DocKey, Vec<u8>> = HashMap::new();
    let mut changed: Vec<DocKey> = Vec::new();
    for ((op, key), pre) in ops.into_iter().zip(keys).zip(presealed) {
        let cur = keyed.get(&key).map_or(Current::Absent, |(_, c)| c.clone());
        let have = cur.version();
        let resolve = |v: u64| if v == 0 { clock.next_above(have) } else { v };
        let mut envelope = None;
        let next = match op {
            Op::Upsert(mut u) => {
                let v = match &pre {
                    Some(p) if u.version == 0 && p.version > have => p.version,
                    _ => resolve(u.version),
                };
                if v <= have {
                    applied.skipped += 1;
                    continue;
                }
                envelope = pre.filter(|p| p.version == v && u.record.revision == v);
                Arc::make_mut(&mut u.record).revision = v;
                u.version = v;
                let record = Arc::clone(&u.record);
                applied.ops.push(Op::Upsert(u));
                Current::Present(record)
            }
            Op::Patch(mut p) => {
                let Current::Present(record) = &cur else {
                    applied.skipped += 1;
                    continue;
                };
                let v = resolve(p.version);
                let mut patched = Record::clone(record);
                if v <= have || !p.set.apply_to(&mut patched) {
                    applied.skipped += 1;
                    continue;
                }
                patched.revision = v;
                p.version = v;
                applied.ops.push(Op::Patch(p));
                Current::Present(Arc::new(patched))
            }
            Op::Delete(mut d) => {
                // Deleting what was never stored needs a tombstone only
                // when the op has a version of its own: an older upsert
                // may still be on its way.
                if matches!(cur, Current::Absent) && d.version == 0 {
                    applied.skipped += 1;
                    continue;
                }
                let v = resolve(d.version);
                if v <= have {
                    applied.skipped += 1;
                    continue;
                }
                d.version = v;
                applied.ops.push(Op::Delete(d));
                Current::Deleted(v)
            }
        };
        match envelope {
            Some(p) => envelopes.insert(key, p.envelope),
            None => envelopes.remove(&key),
        };
        keyed.entry(key).or_default().1 = next;
        changed.push(key);
    }
    changed.sort_unstable();
    changed.dedup();
    // 3. Seal what changed and was not presealed, in parallel, and write it
    // with the state. Per key: the record and its envelope to put, or the
    // delete's version.
    type Sealed = (DocKey, Option<(Arc<Record>, Vec<u8>)>, u64);
    let seal = |key: &DocKey, envelope: Option<Vec<u8>>| -> Sealed {
        match keyed.get(key).map(|(_, c)| c) {
            Some(Current::Present(record)) => {
                let envelope = envelope.unwrap_or_else(|| store.seal_record_at(key, record));
                (*key, Some((Arc::clone(record), envelope)), 0)
            }
            Some(Current::Deleted(v)) => (*key, None, *v),
            _ => (*key, None, 0),
        }
    };
    let (ready, to_seal): (Vec<_>, Vec<_>) = changed
        .into_iter()
        .map(|key| (key, envelopes.remove(&key)))
        .partition(|(_, e)| e.is_some());
    let mut sealed: Vec<Sealed> = to_seal.par_iter().map(|(key, _)| seal(key, None)).collect();
    sealed.extend(ready.into_iter().map(|(key, e)| seal(&key, e)));
    let mut batch = WriteBatch::default();
    let mut written = Written {
        previous: store.generation(),
        ..Written::default()
    };
    for (key, put, version) in sealed {
        let b = keyed.get(&key).map(|(b, _)| *b).unwrap_or_default();
        match put {
            Some((record, envelope)) => {
                written.stored.push(Committed {
                    key,
                    record,
                    stamp: crate::seal::stamp(&envelope),
                    previous: b.stamp,
                    new: !b.document,
                });
                batch.put(key, envelope, b.document, b.tombstone);
            }
            None => {
                batch.delete(key, Some(version));
                if b.document {
                    written.deleted.push(key);
                    written.deleted_stamps.push(b.stamp);
                }
            }
        }
    }
    if applied.ops.is_empty() && state.is_empty() {
        written.generation = written.previous;
        return Ok((applied, written));
    }
    for (key, f) in state.failures {
        batch.fail(key, f);
    }
    if let Some((source, cp)) = state.checkpoint {
        batch.checkpoint(&source, cp);
    }
    for (source, slot, token) in state.tokens {
        batch.token(&source, slot, token);
    }
    let docnos = store.apply(batch)?;
    if !docnos.is_empty() {
        // Format 4: a record's stamp is the document number it was given.
        if docnos.len() != written.stored.len() {
            return Err(Error::Corrupt(format!(
                "the store numbered {} of {} records",
                docnos.len(),
                written.stored.len()
            )));
        }
        for (c, d) in written.stored.iter_mut().zip(docnos) {
            c.stamp = d;
        }
    }
    written.generation = store.generation();
    if written.generation != written.previous + 1 {
        return Err(Error::Corrupt(format!(
            "the store went from batch {} to {} in one write",
            written.previous, written.generation
        )));
    }
    Ok((applied, written))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Credential, KdfParams};

    fn record(id: &str, body: &str) -> Record {
        Record {
            source: "s".into(),
            id: id.into(),
            body: body.into(),
            ..Record::default()
        }
    }

    /// Writes `ops` with `presealed` and returns what the store then holds
    /// under `id`.
    fn stored(
        store: &Store,
        clock: &Clock,
        ops: Vec<Op>,
        presealed: Vec<Option<Presealed>>,
    ) -> (Applied, Record) {
        let state = State {
            presealed,
            ..State::default()
        };
        let (applied, _) = write(store, clock, ops, state).unwrap();
        let key = store.doc_key("s", "1");
        (applied, store.get_by_key(&key).unwrap().unwrap())
    }

    fn preseal(store: &Store, clock: &Clock, mut r: Record) -> (Op, Option<Presealed>) {
        let key = store.doc_key(&r.source, &r.id);
        let version = clock.provisional();
        r.revision = version;
        let envelope = store.seal_record_at(&key, &r);
        (
            Op::upsert(r),
            Some(Presealed {
                key,
                version,
                envelope,
            }),
        )
    }

    /// A record sealed ahead is stored as sealed when nothing newer of it
    /// was written meanwhile; when something was (its provisional version
    /// is no longer above the record's), the op still applies, as any
    /// version-0 upsert does, and is sealed again at the version it gets:
    /// presealing never changes what is stored.
    #[test]
    fn presealed_upserts_store_what_a_plain_upsert_would() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(
            dir.path(),
            &Credential::passphrase("pw"),
            KdfParams::insecure_fast(),
        )
        .unwrap();
        let clock = Clock::new();

        let (op, pre) = preseal(&store, &clock, record("1", "first"));
        let expected = pre.as_ref().unwrap().version;
        let (applied, held) = stored(&store, &clock, vec![op], vec![pre]);
        assert_eq!(held.body, "first");
        assert_eq!(held.revision, expected);
        assert_eq!(applied.ops[0].version(), expected);

        // Sealed ahead, then overtaken by a push of the same record.
        let (op, pre) = preseal(&store, &clock, record("1", "crawled"));
        let provisional = pre.as_ref().unwrap().version;
        let (_, held) = stored(
            &store,
            &clock,
            vec![Op::upsert(record("1", "pushed"))],
            vec![],
        );
        assert_eq!(held.body, "pushed");
        assert!(held.revision > provisional);
        let (applied, held) = stored(&store, &clock, vec![op], vec![pre]);
        assert_eq!(applied.skipped, 0);
        assert_eq!(held.body, "crawled");
        assert!(
            held.revision > provisional,
            "resealed at the version it was given"
        );
        assert_eq!(applied.ops[0].version(), held.revision);
    }
}
