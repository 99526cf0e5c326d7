//! The cache: decrypted records held in memory while an index is open,
//! newest first within a byte budget, laid out for scanning at memory speed.
//!
//! # Layout
//!
//! Each cached record contributes the *token stream* of each of its fields
//! ([`Field::ALL`]) to a
//! shard's one contiguous byte arena (`" tok1 tok2\n"` per field, see
//! [`crate::query`]'s planner), plus its metadata in parallel arrays. A
//! search runs `memmem` over whole arenas, one shard per rayon task, and maps
//! hit offsets back to records with a forward-only cursor over the slot
//! bounds: the inner loop touches nothing but contiguous bytes.
//!
//! The metadata filters and the result ordering need (timestamp, flags,
//! kind, folders, token count) are *columns* of the shard, one element per slot,
//! rather than fields of [`Entry`]: a filter over 250,000 chat messages then
//! reads four contiguous arrays instead of chasing a pointer per record
//! (and, for folders, two more per name). Folders are interned per cache
//! ([`FolderSets`]): each slot holds the id of its record's *set* of folder
//! names, so `in:inbox` is resolved once per query to a table over the few
//! distinct sets, and tested per record with one array load.
//!
//! # Budget
//!
//! The budget counts the arena bytes and the records' own text. Records that
//! do not fit, the oldest ones, stay in the encrypted store; a search streams
//! them in batches (unseal, tokenise, scan, drop), so a small budget costs
//! time, never results.
//!
//! # Changes
//!
//! Updates append to the last shard and mark the replaced entry dead; deletes
//! only mark. When dead bytes pass a quarter of the arenas, the shards are
//! rebuilt. All of it happens under a write lock that searches wait for, so
//! a search sees every committed change or none of it.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::query::plan::{self, fold_name};
use crate::record::{ContentKind, Field, Flags, Record};
use crate::store::DocKey;

/// Records read from the store at a time, decrypted in parallel.
pub(crate) const STREAM_BATCH: usize = 2048;

/// Target size of one shard's arena: large enough that memmem runs long,
/// small enough that two cores share the work evenly.
const SHARD_BYTES: usize = 2 << 20;

/// Default cache budget: enough for a large desktop mailbox's text.
pub const DEFAULT_BUDGET: usize = 512 << 20;

/// One cached record. What searches filter and order by lives in the
/// shard's columns (see the module doc); this is what the rest needs.
#[derive(Debug)]
pub(crate) struct Entry {
    pub key: DocKey,
    pub timestamp: Option<i64>,
    pub record: Arc<Record>,
    /// Bytes this entry costs against the budget.
    pub cost: usize,
    /// Where its token stream sits: shard, and index within the shard.
    pub slot: (u32, u32),
    /// Token counts per field, for relevance scoring.
    pub tokens: u32,
}

/// Folder and label names interned per cache: each distinct name gets an
/// id, and each distinct *set* of names (what one record carries) gets one
/// too. Sets are few (a mailbox has tens of folders, a chat one), so a
/// folder filter becomes a table over set ids, built once per query.
///
/// Ids are only ever added: a set no record uses any more costs a few bytes
/// and nothing per search but one table entry.
#[derive(Debug, Default)]
pub(crate) struct FolderSets {
    /// Case-folded name to id.
    names: HashMap<String, u32>,
    /// Each set's name ids, sorted and deduplicated.
    sets: Vec<Box<[u32]>>,
    by_members: HashMap<Box<[u32]>, u32>,
}

impl FolderSets {
    /// The set id of a record's folders (names as stored, folded here).
    pub(crate) fn intern<'a>(&mut self, folders: impl Iterator<Item = &'a str>) -> u32 {
        let mut ids: Vec<u32> = folders
            .map(|f| {
                let name = fold_name(f);
                let next = self.names.len() as u32;
                *self.names.entry(name).or_insert(next)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let ids = ids.into_boxed_slice();
        if let Some(&id) = self.by_members.get(&ids) {
            return id;
        }
        let id = self.sets.len() as u32;
        self.sets.push(ids.clone());
        self.by_members.insert(ids, id);
        id
    }

    /// For each set id, whether the set holds the (case-folded) `name`.
    pub(crate) fn sets_with(&self, name: &str) -> Vec<bool> {
        match self.names.get(name) {
            Some(id) => self.sets.iter().map(|s| s.contains(id)).collect(),
            None => vec![false; self.sets.len()],
        }
    }
}

/// A contiguous arena of token streams, with the per-slot columns that
/// filters and result ordering read.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    pub text: Vec<u8>,
    /// For each slot, the start of each field and, last, the end:
    /// `bounds[slot * STRIDE + f]`. Slots are laid out one after another, so
    /// the whole array is non-decreasing.
    pub bounds: Vec<u32>,
    /// The entry each slot belongs to; `u32::MAX` once dead.
    pub entries: Vec<u32>,
    /// Each slot's record timestamp.
    pub timestamps: Vec<Option<i64>>,
    /// Each slot's record flags.
    pub flags: Vec<Flags>,
    /// Each slot's record kind (`kind:`).
    pub kinds: Vec<ContentKind>,
    /// Each slot's folder set id ([`FolderSets`]).
    pub folder_sets: Vec<u32>,
    /// Each slot's token count (relevance length normalisation).
    pub tokens: Vec<u32>,
    pub dead_bytes: usize,
}

/// Bounds per slot: one start per field, and the end.
pub(crate) const STRIDE: usize = Field::ALL.len() + 1;

impl Shard {
    pub(crate) fn slots(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn slot_start(&self, slot: usize) -> usize {
        self.bounds[slot * STRIDE] as usize
    }

    pub(crate) fn slot_end(&self, slot: usize) -> usize {
        self.bounds[slot * STRIDE + Field::ALL.len()] as usize
    }

    /// The field a byte offset within `slot` falls in.
    #[inline]
    pub(crate) fn field_at(&self, slot: usize, pos: usize) -> usize {
        // The starts of the fields after the first: how many of them are
        // at or before `pos` is the field. A comparison per field, no
        // branches to mispredict.
        let b = &self.bounds[slot * STRIDE + 1..slot * STRIDE + Field::ALL.len()];
        b.iter().filter(|&&x| (x as usize) <= pos).count()
    }

    /// The slot holding byte offset `pos`.
    #[cfg(test)]
    pub(crate) fn slot_at(&self, pos: usize) -> usize {
        self.slot_from(0, pos)
    }

    /// The slot holding byte offset `pos`, searching from slot `from` on
    /// (whose start must be at or before `pos`). A scan's hits only move
    /// forward, and in dense text the next hit is usually in the next slot
    /// or the one after: galloping from the last slot finds it in a probe
    /// or two, where a binary search over all slots took ~14 dependent,
    /// unpredictable loads. A far hit still costs only a logarithm.
    #[inline]
    pub(crate) fn slot_from(&self, from: usize, pos: usize) -> usize {
        let n = self.slots();
        let (mut lo, mut step) = (from, 1usize);
        // Gallop: find `hi` with start(hi) > pos (or hi == n).
        let mut hi = loop {
            let probe = lo + step;
            if probe >= n {
                break n;
            }
            if self.slot_start(probe) > pos {
                break probe;
            }
            lo = probe;
            step *= 2;
        };
        // Binary search: start(lo) <= pos < start(hi).
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.slot_start(mid) <= pos {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Appends a record's token stream and its columns; returns its slot
    /// and token count.
    pub(crate) fn push(
        &mut self,
        record: &Record,
        entry: u32,
        folders: &mut FolderSets,
        scratch: &mut String,
    ) -> (u32, u32) {
        let slot = self.entries.len() as u32;
        let mut tokens = 0u32;
        for f in Field::ALL {
            self.bounds.push(self.text.len() as u32);
            let before = self.text.len();
            plan::push_token_stream(record.field(f), scratch, &mut self.text);
            tokens += self.text[before..].iter().filter(|&&b| b == b' ').count() as u32;
        }
        self.bounds.push(self.text.len() as u32);
        self.entries.push(entry);
        self.timestamps.push(record.timestamp);
        self.flags.push(record.flags);
        self.kinds.push(record.kind);
        self.folder_sets.push(folders.intern(record.places()));
        self.tokens.push(tokens);
        (slot, tokens)
    }
}

/// The cache's state; searches hold it behind a read lock.
#[derive(Debug, Default)]
pub(crate) struct CacheState {
    pub entries: Vec<Option<Entry>>,
    pub by_key: HashMap<DocKey, u32>,
    pub shards: Vec<Shard>,
    /// The folder sets the shards' `folder_sets` columns refer to.
    pub folders: FolderSets,
    /// Records not in memory, newest first: streamed from the store by searches.
    pub uncached: Vec<(Option<i64>, DocKey)>,
    pub bytes: usize,
    pub budget: usize,
    /// Cached entries by age: the first is the oldest (undated before
    /// dated, then the largest key), the one to spill first.
    by_age: BTreeSet<(Option<i64>, Reverse<DocKey>)>,
    scratch: String,
}

fn ts_of(e: &Option<Entry>) -> Option<i64> {
    e.as_ref().and_then(|e| e.timestamp)
}

/// Sort key shared by every ordering: newest first, undated last, then by key.
pub(crate) fn newest_first(
    a: (Option<i64>, &DocKey),
    b: (Option<i64>, &DocKey),
) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

pub(crate) fn cost(record: &Record) -> usize {
    // The record's text, and its token stream (about as long).
    2 * record.text_len() + 128
}

impl CacheState {
    pub(crate) fn new(budget: usize) -> Self {
        CacheState {
            budget,
            ..Default::default()
        }
    }

    /// Number of records, cached or not.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len() + self.uncached.len()
    }

    /// Adds or replaces a record. Whether it stays in memory depends on the budget.
    pub(crate) fn upsert(&mut self, key: DocKey, record: Arc<Record>) {
        self.remove(&key);
        let ts = record.timestamp;
        let c = cost(&record);
        // Older than everything already spilled, with the cache full: spill it too.
        if self.bytes + c > self.budget {
            self.make_room(c, ts, &key);
            if self.bytes + c > self.budget {
                self.insert_uncached(ts, key);
                return;
            }
        }
        self.insert_cached(key, record, c);
    }

    fn insert_uncached(&mut self, ts: Option<i64>, key: DocKey) {
        let pos = self
            .uncached
            .partition_point(|(t, k)| newest_first((*t, k), (ts, &key)).is_lt());
        self.uncached.insert(pos, (ts, key));
    }

    fn insert_cached(&mut self, key: DocKey, record: Arc<Record>, c: usize) {
        let idx = self.entries.len() as u32;
        if self
            .shards
            .last()
            .is_none_or(|s| s.text.len() >= SHARD_BYTES)
        {
            self.shards.push(Shard::default());
        }
        let shard_no = (self.shards.len() - 1) as u32;
        let mut scratch = std::mem::take(&mut self.scratch);
        let shard = self.shards.last_mut().expect("a shard was just ensured");
        let (slot, tokens) = shard.push(&record, idx, &mut self.folders, &mut scratch);
        self.scratch = scratch;
        self.entries.push(Some(Entry {
            key,
            timestamp: record.timestamp,
            record,
            cost: c,
            slot: (shard_no, slot),
            tokens,
        }));
        self.by_key.insert(key, idx);
        self.by_age
            .insert((ts_of(&self.entries[idx as usize]), Reverse(key)));
        self.bytes += c;
    }

    /// Spills the oldest cached entries that are older than `(ts, key)`
    /// until `need` bytes fit.
    fn make_room(&mut self, need: usize, ts: Option<i64>, key: &DocKey) {
        while self.bytes + need > self.budget {
            let Some(&(t, Reverse(k))) = self.by_age.first() else {
                break;
            };
            if newest_first((t, &k), (ts, key)).is_gt() {
                self.remove(&k);
                self.insert_uncached(t, k);
            } else {
                break;
            }
        }
    }

    /// Removes a record wherever it is.
    pub(crate) fn remove(&mut self, key: &DocKey) {
        if let Some(idx) = self.by_key.remove(key) {
            if let Some(e) = self.entries[idx as usize].take() {
                self.bytes -= e.cost;
                self.by_age.remove(&(e.timestamp, Reverse(e.key)));
                let shard = &mut self.shards[e.slot.0 as usize];
                let slot = e.slot.1 as usize;
                shard.dead_bytes += shard.slot_end(slot) - shard.slot_start(slot);
                shard.entries[slot] = u32::MAX;
            }
            self.maybe_compact();
        } else if let Some(pos) = self.uncached.iter().position(|(_, k)| k == key) {
            self.uncached.remove(pos);
        }
    }

    fn maybe_compact(&mut self) {
        let total: usize = self.shards.iter().map(|s| s.text.len()).sum();
        let dead: usize = self.shards.iter().map(|s| s.dead_bytes).sum();
        if total > SHARD_BYTES && dead * 4 > total {
            self.rebuild();
        }
    }

    /// Rebuilds every shard from the live entries, newest first.
    pub(crate) fn rebuild(&mut self) {
        let mut live: Vec<Entry> = self.entries.drain(..).flatten().collect();
        live.sort_by(|a, b| newest_first((a.timestamp, &a.key), (b.timestamp, &b.key)));
        self.shards.clear();
        // Folder sets of records gone since would stay otherwise, and every
        // query's folder filter would walk them.
        self.folders = FolderSets::default();
        self.by_key.clear();
        self.by_age.clear();
        self.bytes = 0;
        for e in live {
            self.insert_cached(e.key, e.record, e.cost);
        }
    }

    /// Bulk load: records newest first fill the budget; the rest spill.
    pub(crate) fn load(&mut self, mut all: Vec<(DocKey, Arc<Record>)>) {
        all.sort_by(|a, b| newest_first((a.1.timestamp, &a.0), (b.1.timestamp, &b.0)));
        for (key, record) in all {
            let c = cost(&record);
            if self.uncached.is_empty() && self.bytes + c <= self.budget {
                self.insert_cached(key, record, c);
            } else {
                self.uncached.push((record.timestamp, key));
            }
        }
    }

    /// The live entry for a key, if cached.
    pub(crate) fn get(&self, key: &DocKey) -> Option<&Entry> {
        self.by_key
            .get(key)
            .and_then(|&i| self.entries[i as usize].as_ref())
    }
}

impl CacheState {
    /// A cache filled from `store` within `budget`: the newest records that
    /// fit, decrypted in parallel; the rest listed as uncached, to be
    /// streamed from the store by each search.
    pub(crate) fn from_store(
        store: &crate::store::Store,
        budget: usize,
    ) -> crate::error::Result<Self> {
        use crate::error::Result;
        use rayon::prelude::*;
        let started = std::time::Instant::now();
        // First pass: every record's date, key and cost, keeping only the
        // records themselves while they fit the budget, so that memory stays
        // within the budget however large the store.
        let mut meta: Vec<(Option<i64>, DocKey, usize)> = Vec::new();
        let mut kept: Vec<(DocKey, Arc<Record>)> = Vec::new();
        let mut kept_bytes = 0usize;
        store.for_each_chunk(|opened| {
            for (key, _, record) in opened {
                let c = crate::cache::cost(&record);
                meta.push((record.timestamp, key, c));
                if kept_bytes + c <= budget {
                    kept_bytes += c;
                    kept.push((key, Arc::new(record)));
                }
            }
            Ok(())
        })?;
        // The newest records that fit the budget are cached, the rest
        // streamed by searches.
        meta.sort_unstable_by(|a, b| newest_first((a.0, &a.1), (b.0, &b.1)));
        let mut fit = 0;
        let mut bytes = 0usize;
        while fit < meta.len() && bytes + meta[fit].2 <= budget {
            bytes += meta[fit].2;
            fit += 1;
        }
        let wanted: std::collections::HashSet<DocKey> = meta[..fit].iter().map(|m| m.1).collect();
        kept.retain(|(k, _)| wanted.contains(k));
        if kept.len() < fit {
            // Some of the newest were not kept in the first pass: read them again.
            let have: std::collections::HashSet<DocKey> = kept.iter().map(|(k, _)| *k).collect();
            let missing: Vec<DocKey> = wanted.into_iter().filter(|k| !have.contains(k)).collect();
            for chunk in missing.chunks(STREAM_BATCH) {
                let opened: Result<Vec<Option<Record>>> =
                    chunk.par_iter().map(|k| store.get_by_key(k)).collect();
                kept.extend(
                    chunk
                        .iter()
                        .zip(opened?)
                        .filter_map(|(k, r)| Some((*k, Arc::new(r?)))),
                );
            }
        }
        let mut cache = CacheState::new(budget);
        cache.load(kept);
        cache
            .uncached
            .extend(meta[fit..].iter().map(|(ts, key, _)| (*ts, *key)));
        tracing::debug!(
            records = cache.len(),
            uncached = cache.uncached.len(),
            bytes = cache.bytes,
            ms = started.elapsed().as_millis() as u64,
            "cache loaded"
        );
        Ok(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> DocKey {
        let mut b = [0u8; 33];
        b[0] = b'D';
        b[1] = i;
        DocKey::from_bytes(&b).unwrap()
    }

    fn rec(ts: i64) -> Arc<Record> {
        Arc::new(Record {
            timestamp: Some(ts),
            body: "some words of text".repeat(10),
            ..Default::default()
        })
    }

    #[test]
    fn budget_keeps_the_newest_and_spills_the_rest_in_order() {
        let one = cost(&rec(0));
        let mut c = CacheState::new(one * 10);
        // Inserted in scrambled order, as changes arrive.
        for i in 0..100u8 {
            let ts = ((i as i64) * 37) % 100;
            c.upsert(key(i), rec(ts));
        }
        assert_eq!(c.len(), 100);
        assert_eq!(c.by_key.len(), 10);
        assert!(c.bytes <= c.budget);
        let oldest_cached = c.entries.iter().flatten().filter_map(|e| e.timestamp).min();
        let newest_spilled = c.uncached.first().and_then(|u| u.0);
        assert!(oldest_cached > newest_spilled);
        assert!(c.uncached.windows(2).all(|w| w[0].0 >= w[1].0));
        // Deleting cached and spilled records.
        let cached_key = c.entries.iter().flatten().next().unwrap().key;
        c.remove(&cached_key);
        c.remove(&c.uncached[5].1.clone());
        assert_eq!(c.len(), 98);
    }

    #[test]
    fn replacing_a_record_keeps_one_copy() {
        let mut c = CacheState::new(usize::MAX);
        c.upsert(key(1), rec(5));
        c.upsert(key(1), rec(6));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&key(1)).unwrap().timestamp, Some(6));
        assert_eq!(
            c.shards[0]
                .entries
                .iter()
                .filter(|&&e| e != u32::MAX)
                .count(),
            1
        );
    }
}
