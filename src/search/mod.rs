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
}

pub(crate) fn cmp_matched(order: Order, a: &Matched, b: &Matched) -> std::cmp::Ordering {
    let by_date = newest_first((a.timestamp, &a.key), (b.timestamp, &b.key));
    match order {
        Order::Newest => by_date,
        Order::Relevance => b.score.total_cmp(&a.score).then(by_date),
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
    });
    (k, cursor)
}
