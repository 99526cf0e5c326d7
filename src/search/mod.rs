//! Search: the two modes side by side (`forward`, the scan over decrypted
//! records, and [`inverted`], tantivy on sealed files), the result type
//! they share (`Matched`), the order and options of a page, and the page
//! cursor ([`cursor`]).
//!
//! Both modes answer the same query plan with the same records in the
//! same newest-first order; relevance order is BM25 in both (`bm25` for
//! the forward scan, tantivy's for the inverted index).

use std::sync::Arc;

use crate::cache::newest_first;
use crate::query::snippet::Snippet;
use crate::record::Record;
use crate::store::DocKey;

pub(crate) mod bm25;
pub mod cursor;
pub(crate) mod forward;
#[cfg(feature = "tantivy")]
pub mod inverted;
pub(crate) mod scan;

pub use cursor::PageCursor;

/// Which search mode runs a query. Both return the same records in the same
/// newest-first order; they differ in speed and memory, and in how
/// relevance ranks ties.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SearchMode {
    /// The inverted index when it is current with the store, the forward
    /// scan otherwise.
    #[default]
    Auto,
    /// The forward scan over the decrypted cache (filled on first use).
    Forward,
    /// The inverted index: waits for a build or catch-up in progress, and
    /// fails with [`Error::Inverted`](crate::Error::Inverted) when there is none or it is damaged.
    Inverted,
}

impl std::str::FromStr for SearchMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(SearchMode::Auto),
            "forward" => Ok(SearchMode::Forward),
            "inverted" => Ok(SearchMode::Inverted),
            other => Err(format!(
                "unknown search mode {other:?}: use auto, forward or inverted"
            )),
        }
    }
}

/// The state of an index's inverted index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvertedStatus {
    /// Not kept (disabled in [`IndexConfig`](crate::IndexConfig), or built without `tantivy`).
    Disabled,
    /// Current with the store: searches in [`SearchMode::Auto`] use it.
    Current {
        /// Records it holds.
        documents: u64,
        /// Bytes of decrypted index chunks now in memory.
        cached_bytes: usize,
    },
    /// Being built or caught up in the background.
    Building,
    /// Behind the store (an indexing run has not committed it yet).
    Behind,
    /// A read failed authentication; it is being rebuilt.
    Broken,
}

/// Result order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Newest first; undated messages last.
    #[default]
    Newest,
    /// Most relevant first (BM25 over the matched terms), then newest.
    Relevance,
}

/// What to search and how to page.
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Result order.
    pub order: Order,
    /// Hits per page; `None` for all of them.
    pub limit: Option<usize>,
    /// Continue after this cursor (from a previous page's `next`).
    pub cursor: Option<PageCursor>,
    /// Width of snippets in bytes; 0 for no snippets.
    pub snippet_bytes: usize,
    /// Which search mode runs the query.
    pub mode: SearchMode,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            order: Order::Newest,
            limit: Some(20),
            cursor: None,
            snippet_bytes: 160,
            mode: SearchMode::Auto,
        }
    }
}

/// One result.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The id the source gave.
    pub id: String,
    /// The whole record (decrypted, in memory only).
    pub record: Arc<Record>,
    /// Relevance score (0 in newest-first order).
    pub score: f32,
    /// Text around the first matches, with highlights.
    pub snippet: Snippet,
}

/// A page of results.
#[derive(Clone, Debug)]
pub struct SearchResults {
    /// How many records match in all.
    pub total: usize,
    /// This page.
    pub hits: Vec<Hit>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}

/// A page of keys: what [`Index::search_keys`](crate::Index::search_keys) returns.
#[derive(Clone, Debug)]
pub struct KeyPage {
    /// How many records match in all.
    pub total: usize,
    /// This page's store keys, in order.
    pub keys: Vec<DocKey>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}

/// One match before ordering, from either search mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Matched {
    pub key: DocKey,
    pub timestamp: Option<i64>,
    pub score: f32,
    /// The record's document number when the inverted index of a
    /// format-4 store found it (0 otherwise): the store reads the hit by
    /// number, without finding the key's number again.
    pub docno: u64,
}

pub(crate) fn cmp_matched(order: Order, a: &Matched, b: &Matched) -> std::cmp::Ordering {
    let by_date = newest_first((a.timestamp, &a.key), (b.timestamp, &b.key));
    match order {
        Order::Newest => by_date,
        Order::Relevance => b.score.total_cmp(&a.score).then(by_date),
    }
}

/// Sorts matches in [`cmp_matched`] order.
///
/// Newest first, the common order, sorts pairs of a date rank and an index
/// instead of the matches: a broad query's every hit (thousands) was sorted
/// by comparing dates as options and moving 64-byte matches, an eighth of
/// a query battery's instructions (`bench-notes/footprint-run10.md`).
/// Equal dates are then put in key order, and undated matches last in key
/// order, exactly as `cmp_matched` orders them.
pub(crate) fn sort_matched(order: Order, matched: &mut Vec<Matched>) {
    if order == Order::Relevance || matched.len() < 32 {
        matched.sort_unstable_by(|a, b| cmp_matched(order, a, b));
        return;
    }
    let by_key = |a: &u32, b: &u32| matched[*a as usize].key.cmp(&matched[*b as usize].key);
    let mut dated: Vec<(u64, u32)> = Vec::with_capacity(matched.len());
    let mut undated: Vec<u32> = Vec::new();
    for (i, m) in matched.iter().enumerate() {
        match m.timestamp {
            // Newest first: the rank falls as the date grows (a bijection
            // from i64, so equal ranks are equal dates).
            Some(t) => dated.push((!((t as u64) ^ (1 << 63)), i as u32)),
            None => undated.push(i as u32),
        }
    }
    sort_ranks(&mut dated);
    let mut out: Vec<u32> = Vec::with_capacity(matched.len());
    let mut at = 0;
    while at < dated.len() {
        let rank = dated[at].0;
        let end = at + dated[at..].iter().take_while(|e| e.0 == rank).count();
        let start = out.len();
        out.extend(dated[at..end].iter().map(|e| e.1));
        if end - at > 1 {
            out[start..].sort_unstable_by(by_key);
        }
        at = end;
    }
    undated.sort_unstable_by(by_key);
    out.extend(undated);
    *matched = out.into_iter().map(|i| matched[i as usize]).collect();
}

/// Below this many, [`sort_ranks`] compares; from it on, it sorts by radix.
/// A radix pass clears, scans and sums 65,536 counters whatever the list's
/// length, so it pays off only once the list is about as long: at 256, the
/// SpamAssassin battery's all-hits median (lists of a few thousand) went
/// from 97 to 168 µs in one comparison run.
const RADIX_MIN: usize = 1 << 16;

/// Sorts `(rank, index)` pairs by rank (equal ranks in any order).
///
/// A broad query's all-hits list is hundreds of thousands of pairs on a
/// chat history: a least-significant-digit radix sort on 16-bit digits
/// makes four counting passes at most, and skips a digit every rank
/// shares (the high digits of dates a few years apart), where a
/// comparison sort made twenty passes' worth of comparisons.
fn sort_ranks(v: &mut Vec<(u64, u32)>) {
    sort_ranks_from(v, RADIX_MIN);
}

/// [`sort_ranks`] with the threshold given (the tests sort short lists by
/// radix too).
fn sort_ranks_from(v: &mut Vec<(u64, u32)>, radix_min: usize) {
    if v.len() < radix_min {
        v.sort_unstable_by_key(|e| e.0);
        return;
    }
    let mut buf = vec![(0u64, 0u32); v.len()];
    let mut counts = vec![0usize; 1 << 16];
    for shift in [0u32, 16, 32, 48] {
        counts.fill(0);
        for e in v.iter() {
            counts[((e.0 >> shift) & 0xffff) as usize] += 1;
        }
        if counts.contains(&v.len()) {
            continue;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for e in v.iter() {
            let d = ((e.0 >> shift) & 0xffff) as usize;
            buf[counts[d]] = *e;
            counts[d] += 1;
        }
        std::mem::swap(v, &mut buf);
    }
}

/// How many matches a page needs from each source (its limit, plus one to
/// tell whether a next page exists), and the cursor it starts after.
pub(crate) fn page_bounds(options: &SearchOptions) -> (usize, Option<Matched>) {
    let k = options.limit.map_or(usize::MAX, |l| l.saturating_add(1));
    let cursor = options.cursor.as_ref().map(|c| Matched {
        key: c.key,
        timestamp: c.timestamp,
        score: c.score,
        docno: 0,
    });
    (k, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn matched(ts: Option<i64>, key: u8, score: f32) -> Matched {
        let mut bytes = [0u8; 33];
        bytes[0] = b'D';
        bytes[32] = key;
        Matched {
            key: DocKey::from_bytes(&bytes).expect("a document key"),
            timestamp: ts,
            score,
            docno: 0,
        }
    }

    proptest! {
        /// The fast newest-first sort orders exactly as `cmp_matched`,
        /// with equal dates, undated matches and the extreme dates.
        #[test]
        fn sort_matched_orders_as_cmp_matched(
            items in proptest::collection::vec(
                (
                    prop_oneof![
                        Just(None),
                        Just(Some(i64::MIN)),
                        Just(Some(i64::MIN + 1)),
                        Just(Some(i64::MAX)),
                        Just(Some(-1i64)),
                        Just(Some(0i64)),
                        (0i64..50).prop_map(Some),
                        (1_500_000_000i64..1_500_100_000).prop_map(Some),
                        any::<i64>().prop_map(Some),
                    ],
                    0u8..40,
                    0u8..4,
                ),
                0..700,
            ),
            relevance in any::<bool>(),
        ) {
            let order = if relevance { Order::Relevance } else { Order::Newest };
            let mut fast: Vec<Matched> =
                items.iter().map(|&(t, k, s)| matched(t, k, f32::from(s))).collect();
            let mut slow = fast.clone();
            sort_matched(order, &mut fast);
            slow.sort_by(|a, b| cmp_matched(order, a, b));
            // Newest first ignores scores: matches equal in date and key
            // may come in either order.
            let view = |v: &[Matched]| -> Vec<(Option<i64>, DocKey, u32)> {
                v.iter()
                    .map(|m| (m.timestamp, m.key, if relevance { m.score.to_bits() } else { 0 }))
                    .collect()
            };
            prop_assert_eq!(view(&fast), view(&slow));
        }

        /// The radix sort orders ranks as a comparison sort does, on lists
        /// of any length (large lists alone take it in production).
        #[test]
        fn radix_sort_orders_ranks(
            ranks in proptest::collection::vec(
                prop_oneof![
                    any::<u64>(),
                    0u64..70_000,
                    (1u64 << 40)..(1u64 << 40) + 100_000,
                    Just(u64::MAX),
                    Just(0u64),
                ],
                0..700,
            ),
        ) {
            let mut radix: Vec<(u64, u32)> =
                ranks.iter().enumerate().map(|(i, &r)| (r, i as u32)).collect();
            let mut cmp = radix.clone();
            sort_ranks_from(&mut radix, 0);
            cmp.sort_unstable_by_key(|e| e.0);
            let keys = |v: &[(u64, u32)]| v.iter().map(|e| e.0).collect::<Vec<_>>();
            prop_assert_eq!(keys(&radix), keys(&cmp));
            let mut idx: Vec<u32> = radix.iter().map(|e| e.1).collect();
            idx.sort_unstable();
            prop_assert_eq!(idx, (0..ranks.len() as u32).collect::<Vec<_>>());
        }
    }
}
