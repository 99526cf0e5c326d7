//! The forward scan of one page: the cached shards and the records streamed
//! from the store beyond the cache, offered to a page's bounded heap.

use super::bm25::Scorer;
use super::forward::{self, Best, Prepared};
use rayon::prelude::*;

use super::{Matched, Order, SearchOptions, cmp_matched, page_bounds};
use crate::cache::CacheState;
pub(crate) use crate::cache::STREAM_BATCH;
use crate::cache::{FolderSets, Shard};
use crate::error::Result;
use crate::query::plan::{Needle, Plan};
use crate::record::Record;
use crate::store::DocKey;

/// Records streamed from the store for one search batch, laid out as a
/// shard of their own (slot `i` is `records[i]`) so that the forward scan
/// runs over them exactly as over the cache.
pub(crate) struct Streamed {
    pub(crate) records: Vec<(DocKey, Record)>,
    pub(crate) shard: Shard,
    pub(crate) folders: FolderSets,
}

impl Streamed {
    pub(crate) fn new(records: Vec<(DocKey, Record)>) -> Self {
        let mut shard = Shard::default();
        let mut folders = FolderSets::default();
        let mut scratch = String::new();
        for (i, (_, r)) in records.iter().enumerate() {
            shard.push(r, i as u32, &mut folders, &mut scratch);
        }
        Streamed {
            records,
            shard,
            folders,
        }
    }
}

/// The matches of one shard offered to a page's [`Best`]: `key_of` gives
/// a slot's record key. Timestamps and scores come from the shard and the
/// scorer; a slot before the cursor, or after the page's bar, is skipped
/// on those alone, and the key (a lookup away) is read only for the few
/// that may make the page or tie on them.
pub(crate) fn offer_shard(
    shard: &Shard,
    slots: &forward::Bits,
    order: Order,
    scorer: Option<&Scorer<'_>>,
    cursor: Option<&Matched>,
    best: &mut Best<Matched, impl Fn(&Matched, &Matched) -> std::cmp::Ordering>,
    key_of: impl Fn(usize) -> Option<DocKey>,
) {
    use std::cmp::Ordering::{Greater, Less};
    for slot in slots.iter() {
        let timestamp = shard.timestamps[slot];
        let score = scorer.map_or(0.0, |s| s.score(shard, slot, shard.tokens[slot]));
        // Where this match goes relative to `m` on score and date only
        // (`cmp_matched` without its last, key, tie-break).
        let partial = |m: &Matched| match order {
            Order::Newest => m.timestamp.cmp(&timestamp),
            Order::Relevance => m.score.total_cmp(&score).then(m.timestamp.cmp(&timestamp)),
        };
        if cursor.is_some_and(|c| partial(c) == Less)
            || best.bar().is_some_and(|b| partial(b) == Greater)
        {
            continue;
        }
        let Some(key) = key_of(slot) else { continue };
        let m = Matched {
            key,
            timestamp,
            score,
            docno: 0,
        };
        if cursor.is_some_and(|c| cmp_matched(order, &m, c).is_le())
            || best
                .bar()
                .is_some_and(|b| cmp_matched(order, &m, b).is_gt())
        {
            continue;
        }
        best.push(m);
    }
}

/// One batch the inverted index was given but has not committed: its
/// records laid out as a shard for the forward scan (slot `i` is
/// `keys[i]`), and its deletes. A search runs the scan over the tail of
/// such batches and the committed index over the rest.
#[cfg_attr(not(feature = "tantivy"), allow(dead_code))]
pub(crate) struct TailBatch {
    pub(crate) keys: Vec<DocKey>,
    pub(crate) deleted: Vec<DocKey>,
    /// Keys of `keys` that the store held before this batch: the committed
    /// index may hold an older version of them. The others are new to the
    /// store, so neither the committed index nor an earlier batch has them.
    pub(crate) replaced: Vec<DocKey>,
    /// The stamps of the versions this batch replaced or deleted (in an
    /// index by document number, their numbers): what to leave out of the
    /// committed index there.
    pub(crate) old_stamps: Vec<u64>,
    /// The records, until a search needs their shard.
    records: Vec<std::sync::Arc<crate::record::Record>>,
    /// The records laid out for the scan: built by the first search that
    /// reads this batch, so that a bulk indexing run nobody searches
    /// meanwhile never tokenizes its records twice.
    shard: std::sync::OnceLock<(Shard, FolderSets)>,
}

#[cfg_attr(not(feature = "tantivy"), allow(dead_code))]
impl TailBatch {
    pub(crate) fn new(
        stored: &[crate::write::Committed],
        deleted: &[DocKey],
        deleted_stamps: &[u64],
    ) -> Self {
        TailBatch {
            keys: stored.iter().map(|c| c.key).collect(),
            deleted: deleted.to_vec(),
            replaced: stored.iter().filter(|c| !c.new).map(|c| c.key).collect(),
            old_stamps: stored
                .iter()
                .filter(|c| !c.new)
                .map(|c| c.previous)
                .chain(deleted_stamps.iter().copied())
                .collect(),
            records: stored
                .iter()
                .map(|c| std::sync::Arc::clone(&c.record))
                .collect(),
            shard: std::sync::OnceLock::new(),
        }
    }

    /// The batch's shard and folder sets (built on first use).
    pub(crate) fn shard(&self) -> (&Shard, &FolderSets) {
        let (shard, folders) = self.shard.get_or_init(|| {
            let mut shard = Shard::default();
            let mut folders = FolderSets::default();
            let mut scratch = String::new();
            for (i, r) in self.records.iter().enumerate() {
                shard.push(r, i as u32, &mut folders, &mut scratch);
            }
            (shard, folders)
        });
        (shard, folders)
    }
}

/// The tail's matches for a page: each record in its newest version only
/// (a later batch's put or delete hides an earlier one). Returns the count
/// and the page's best, and the keys to leave out of the committed index:
/// those the tail replaced or deleted. (During a sync of new mail there
/// are none, so the committed index is searched as it is and no record of
/// the tail is looked up twice.)
#[cfg_attr(not(feature = "tantivy"), allow(dead_code))]
pub(crate) fn match_tail(
    tail: &[std::sync::Arc<TailBatch>],
    plan: &crate::query::plan::Plan,
    needles: &[&crate::query::plan::Needle],
    order: Order,
    k: usize,
    cursor: Option<&Matched>,
) -> (usize, Vec<Matched>, Vec<DocKey>) {
    let changes_old = tail
        .iter()
        .any(|b| !b.replaced.is_empty() || !b.deleted.is_empty());
    let mut seen: std::collections::HashSet<DocKey> = std::collections::HashSet::new();
    let mut exclude: Vec<DocKey> = Vec::new();
    let mut best = Best::new(k, move |a: &Matched, b: &Matched| cmp_matched(order, a, b));
    let mut total = 0;
    let scorer = (order == Order::Relevance).then(|| {
        let shards: Vec<(&Shard, &FolderSets)> = tail.iter().map(|b| b.shard()).collect();
        Scorer::for_shards(needles, &shards)
    });
    for batch in tail.iter().rev() {
        let (shard, folders) = batch.shard();
        let prep = forward::Prepared::new(plan, folders);
        let mut slots = forward::shard_matches(plan, shard, &prep);
        // Only a key the store held before can appear twice in the tail.
        if changes_old {
            for (slot, key) in batch.keys.iter().enumerate() {
                // Hidden by a later batch (or later in this one).
                if !seen.insert(*key) {
                    slots.clear(slot);
                }
            }
            for key in &batch.deleted {
                seen.insert(*key);
            }
            exclude.extend(batch.replaced.iter().chain(&batch.deleted));
        }
        total += slots.count();
        offer_shard(
            shard,
            &slots,
            order,
            scorer.as_ref(),
            cursor,
            &mut best,
            |slot| batch.keys.get(slot).copied(),
        );
    }
    exclude.sort_unstable();
    exclude.dedup();
    (total, best.into_sorted(), exclude)
}

/// The cached records matching `plan`: how many, and the best
/// `limit + 1` after the cursor in result order (enough for the caller
/// to fill a page and tell whether another follows), never a list of
/// every match. Shards run in parallel, each into its own [`Best`].
fn match_cached(
    plan: &Plan,
    options: &SearchOptions,
    cache: &CacheState,
    scorer: Option<&Scorer<'_>>,
) -> (usize, Vec<Matched>) {
    let order = options.order;
    let (k, cursor) = page_bounds(options);
    let cmp = move |a: &Matched, b: &Matched| cmp_matched(order, a, b);
    let prep = Prepared::new(plan, &cache.folders);
    let (total, best) = cache
        .shards
        .par_iter()
        .map(|shard| {
            let slots = forward::shard_matches(plan, shard, &prep);
            let mut best = Best::new(k, cmp);
            offer_shard(
                shard,
                &slots,
                order,
                scorer,
                cursor.as_ref(),
                &mut best,
                |slot| {
                    let idx = *shard.entries.get(slot)?;
                    Some(cache.entries.get(idx as usize)?.as_ref()?.key)
                },
            );
            (slots.count(), best)
        })
        .reduce(
            || (0, Best::new(k, cmp)),
            |(n, mut a), (m, b)| {
                a.merge(b);
                (n + m, a)
            },
        );
    (total, best.into_sorted())
}

/// [`match_cached`] for the records beyond the cache budget,
/// streamed from the store in batches.
fn match_streamed(
    store: &crate::store::Store,
    plan: &Plan,
    options: &SearchOptions,
    cache: &CacheState,
    scorer: Option<&Scorer<'_>>,
) -> Result<(usize, Vec<Matched>)> {
    if cache.uncached.is_empty() {
        return Ok((0, Vec::new()));
    }
    let order = options.order;
    let (k, cursor) = page_bounds(options);
    let mut best = Best::new(k, move |a: &Matched, b: &Matched| cmp_matched(order, a, b));
    let mut total = 0;
    for chunk in cache.uncached.chunks(STREAM_BATCH) {
        let opened: Result<Vec<Option<(DocKey, Record)>>> = chunk
            .par_iter()
            .map(|(_, key)| Ok(store.get_by_key(key)?.map(|r| (*key, r))))
            .collect();
        let streamed = Streamed::new(opened?.into_iter().flatten().collect());
        let prep = Prepared::new(plan, &streamed.folders);
        let slots = forward::shard_matches(plan, &streamed.shard, &prep);
        total += slots.count();
        offer_shard(
            &streamed.shard,
            &slots,
            order,
            scorer,
            cursor.as_ref(),
            &mut best,
            |slot| streamed.records.get(slot).map(|(key, _)| *key),
        );
    }
    Ok((total, best.into_sorted()))
}

/// The forward scan of one page: the cached records, then those beyond
/// the cache streamed from the store, with one BM25 scorer for both (its
/// statistics are a pass over the cache: made once per search).
pub(crate) fn match_forward(
    store: &crate::store::Store,
    plan: &Plan,
    needles: &[&Needle],
    options: &SearchOptions,
    cache: &CacheState,
) -> Result<(Vec<Matched>, usize)> {
    let scorer = (options.order == Order::Relevance).then(|| Scorer::new(needles, cache));
    let (total, mut matched) = match_cached(plan, options, cache, scorer.as_ref());
    let (streamed_total, streamed) = match_streamed(store, plan, options, cache, scorer.as_ref())?;
    matched.extend(streamed);
    Ok((matched, total + streamed_total))
}
