//! The index: what an application holds open. It ties the sealed store, the
//! decrypted cache and the search modes together, and keeps them in step
//! while the pipeline writes.
//!
//! ```no_run
//! use sealdex::{Credential, Index, IndexConfig, SearchOptions};
//!
//! let index = Index::open_or_create(
//!     "/path/to/index".as_ref(),
//!     &Credential::passphrase("correct horse"),
//!     IndexConfig::default(),
//! )?;
//! let mut mailbox = sealdex::backends::open_path("/home/me/Maildir".as_ref())?;
//! index.index(mailbox.as_mut(), &sealdex::decrypt::PassThrough::default(), &Default::default())?;
//!
//! let results = index.search("from:alice invoice -draft", &SearchOptions::default())?;
//! println!("{} messages", results.total);
//! for hit in &results.hits {
//!     println!("{} {}", hit.id, hit.record.subject);
//! }
//! // The next page continues exactly where this one ended.
//! if let Some(next) = results.next {
//!     let page2 = index.search("from:alice invoice -draft", &SearchOptions { cursor: Some(next), ..Default::default() })?;
//! #   let _ = page2;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;
#[cfg(feature = "tantivy")]
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use rayon::prelude::*;
use tracing::debug;
#[cfg(feature = "tantivy")]
use tracing::warn;

use crate::cache::{CacheState, DEFAULT_BUDGET, newest_first};
use crate::decrypt::Decryptor;
use crate::error::{Error, Result};
use crate::keys::{Credential, KdfParams};
use crate::pipeline::{self, Control, IndexOptions, Progress, Report};
use crate::query::forward::{self, Best, Prepared};
use crate::query::plan::{self, Needle, Plan};
use crate::query::snippet::{self, Snippet};
use crate::query::{self, Query};
use crate::record::Record;
use crate::source::Source;
use crate::store::{DocKey, Store};

#[cfg(feature = "tantivy")]
use crate::inverted::{InvertedOptions, engine::Inverted};

/// How an index is opened.
#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// Bytes of decrypted text the cache may hold; records beyond it are
    /// streamed from the encrypted store during each search.
    pub cache_bytes: usize,
    /// Argon2id cost, used when the index is created.
    pub kdf: KdfParams,
    /// Keep an inverted index beside the store (needs the `tantivy`
    /// feature; ignored without it). When it is current, searches use it
    /// and the decrypted cache is only filled if a forward scan is asked
    /// for; when it is missing, behind or damaged, it is built or caught up
    /// from the store in the background while searches use the forward scan.
    pub inverted: bool,
    /// Bytes of decrypted inverted-index chunks kept in memory. 128 MiB by
    /// default: at a million messages, 32 MiB put a floor of tens of
    /// milliseconds under every query (benches/scale.rs); a small mailbox
    /// never fills it.
    pub inverted_cache_bytes: usize,
    /// Threads one inverted search may use, the calling thread included.
    /// A large index's segments are searched side by side (at a million
    /// messages, two threads halve the slowest queries). An index whose
    /// segments cannot be grouped with at least 32,768 records outside the
    /// largest group is searched on the calling thread alone, and the
    /// threads are started by the first search that is split. Up to 4 by
    /// default, as many as the machine has; 1 never starts a thread.
    pub search_threads: usize,
    /// Bytes of the encrypted store's page cache (sled's, holding sealed
    /// records as stored; sled keeps them deserialised, at up to about
    /// twice this figure). 64 MiB by default. Writes go through it: on the
    /// chat corpus (258k short messages) 16 MiB stored 35–40 % fewer
    /// records per second, and saved about 30 MiB while a million messages
    /// indexed. A device short of memory may still choose less.
    pub store_cache_bytes: usize,
}

/// Most threads a search uses by default (`IndexConfig::search_threads`).
pub(crate) const DEFAULT_SEARCH_THREADS: usize = 4;

/// The machine's cores, at most `max` (1 when unknown): what a thread
/// count defaults to.
pub(crate) fn cores_up_to(max: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, max.max(1))
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            cache_bytes: DEFAULT_BUDGET,
            kdf: KdfParams::default(),
            inverted: cfg!(feature = "tantivy"),
            inverted_cache_bytes: 128 << 20,
            search_threads: cores_up_to(DEFAULT_SEARCH_THREADS),
            store_cache_bytes: crate::store::DEFAULT_DB_CACHE,
        }
    }
}

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
    /// fails with [`Error::Inverted`] when there is none or it is damaged.
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
    /// Not kept (disabled in [`IndexConfig`], or built without `tantivy`).
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

/// A position in a result list. Opaque; valid while the index is unchanged
/// (after a change, paging goes on without repeats, but may miss or add
/// records that changed).
#[derive(Clone, Debug, PartialEq)]
pub struct PageCursor {
    order: Order,
    score: f32,
    timestamp: Option<i64>,
    key: DocKey,
}

impl PageCursor {
    /// A printable form, for handing to a UI and back.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(100);
        s.push(match self.order {
            Order::Newest => 'n',
            Order::Relevance => 'r',
        });
        s.push_str(&format!("{:08x}", self.score.to_bits()));
        match self.timestamp {
            Some(t) => s.push_str(&format!("{:016x}", t as u64)),
            None => s.push_str("----------------"),
        }
        for b in self.key.as_bytes() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parses [`PageCursor::encode`]'s output.
    pub fn decode(s: &str) -> Option<PageCursor> {
        let order = match s.get(..1)? {
            "n" => Order::Newest,
            "r" => Order::Relevance,
            _ => return None,
        };
        let score = f32::from_bits(u32::from_str_radix(s.get(1..9)?, 16).ok()?);
        let ts = s.get(9..25)?;
        let timestamp = if ts == "----------------" {
            None
        } else {
            Some(u64::from_str_radix(ts, 16).ok()? as i64)
        };
        let hex = s.get(25..)?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        let key = DocKey::from_bytes(&bytes?)?;
        Some(PageCursor {
            order,
            score,
            timestamp,
            key,
        })
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

/// A page of keys: what [`Index::search_keys`] returns.
#[derive(Clone, Debug)]
pub struct KeyPage {
    /// How many records match in all.
    pub total: usize,
    /// This page's store keys, in order.
    pub keys: Vec<DocKey>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}

/// An open index: a store, its cache and its search modes.
pub struct Index {
    store: Arc<Store>,
    cache: Arc<RwLock<CacheState>>,
    /// Whether the cache holds the store's records (checked and set under
    /// the cache's write lock). Left unloaded while the inverted index
    /// serves searches, so that opening a large index decrypts nothing.
    cache_loaded: Arc<AtomicBool>,
    /// Set while `index_with` runs.
    indexing: AtomicBool,
    #[cfg(feature = "tantivy")]
    inverted: Option<Arc<Inverted>>,
    /// A background build, catch-up or rebuild of the inverted index.
    #[cfg(feature = "tantivy")]
    background: Mutex<Option<Background>>,
}

#[cfg(feature = "tantivy")]
struct Background {
    cancel: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Result<crate::inverted::CatchUp>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.store.path())
            .finish_non_exhaustive()
    }
}

/// One match before ordering, from either search mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Matched {
    pub key: DocKey,
    pub timestamp: Option<i64>,
    pub score: f32,
}

fn cmp_matched(order: Order, a: &Matched, b: &Matched) -> std::cmp::Ordering {
    let by_date = newest_first((a.timestamp, &a.key), (b.timestamp, &b.key));
    match order {
        Order::Newest => by_date,
        Order::Relevance => b.score.total_cmp(&a.score).then(by_date),
    }
}

/// Records streamed from the store for one search batch, laid out as a
/// shard of their own (slot `i` is `records[i]`) so that the forward scan
/// runs over them exactly as over the cache.
struct Streamed {
    records: Vec<(DocKey, Record)>,
    shard: crate::cache::Shard,
    folders: crate::cache::FolderSets,
}

impl Streamed {
    fn new(records: Vec<(DocKey, Record)>) -> Self {
        let mut shard = crate::cache::Shard::default();
        let mut folders = crate::cache::FolderSets::default();
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
fn offer_shard(
    shard: &crate::cache::Shard,
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

const STREAM_BATCH: usize = 2048;

impl Index {
    /// Opens an existing index and loads its cache.
    pub fn open(path: &Path, cred: &Credential, config: IndexConfig) -> Result<Index> {
        Self::from_store(
            Store::open_tuned(path, cred, config.store_cache_bytes)?,
            config,
        )
    }

    /// Creates a new, empty index.
    pub fn create(path: &Path, cred: &Credential, config: IndexConfig) -> Result<Index> {
        Self::from_store(
            Store::create_tuned(path, cred, config.kdf, config.store_cache_bytes)?,
            config,
        )
    }

    /// Opens the index at `path`, creating it if there is none.
    pub fn open_or_create(path: &Path, cred: &Credential, config: IndexConfig) -> Result<Index> {
        let (store, _) =
            Store::open_or_create_tuned(path, cred, config.kdf, config.store_cache_bytes)?;
        Self::from_store(store, config)
    }

    /// Wraps an open store. Nothing is decrypted now: the cache is filled
    /// by the first forward scan, and an inverted index that is not
    /// current with the store is built or caught up in the background.
    pub fn from_store(store: Store, config: IndexConfig) -> Result<Index> {
        let store = Arc::new(store);
        let index = Index {
            cache: Arc::new(RwLock::new(CacheState::new(config.cache_bytes))),
            cache_loaded: Arc::new(AtomicBool::new(false)),
            indexing: AtomicBool::new(false),
            #[cfg(feature = "tantivy")]
            inverted: open_inverted(&store, &config),
            #[cfg(feature = "tantivy")]
            background: Mutex::new(None),
            store,
        };
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &index.inverted {
            if inv.is_current(index.store.manifest()?.generation) {
                inv.mark_in_step();
            } else {
                index.start_background(false);
            }
        }
        Ok(index)
    }

    /// Fills the cache from the store unless it is filled.
    fn ensure_cache(&self) -> Result<()> {
        if self.cache_loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if self.cache_loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let store = &self.store;
        let budget = cache.budget;
        // First pass: every record's date, key and cost, keeping only the
        // records themselves while they fit the budget, so that memory stays
        // within the budget however large the store.
        let mut meta: Vec<(Option<i64>, DocKey, usize)> = Vec::new();
        let mut kept: Vec<(DocKey, Arc<Record>)> = Vec::new();
        let mut kept_bytes = 0usize;
        let mut batch = Vec::with_capacity(STREAM_BATCH);
        let mut flush = |batch: &mut Vec<(sled::IVec, sled::IVec)>| -> Result<()> {
            let opened: Result<Vec<(DocKey, Record)>> = batch
                .par_iter()
                .map(|(k, v)| {
                    let key = DocKey::from_bytes(k)
                        .ok_or_else(|| Error::Corrupt("a document key of the wrong size".into()))?;
                    Ok((key, store.open_record(k, v)?))
                })
                .collect();
            for (key, record) in opened? {
                let c = crate::cache::cost(&record);
                meta.push((record.timestamp, key, c));
                if kept_bytes + c <= budget {
                    kept_bytes += c;
                    kept.push((key, Arc::new(record)));
                }
            }
            batch.clear();
            Ok(())
        };
        for item in store.sealed_documents() {
            batch.push(item?);
            if batch.len() == STREAM_BATCH {
                flush(&mut batch)?;
            }
        }
        flush(&mut batch)?;
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
        *cache = CacheState::new(budget);
        cache.load(kept);
        cache
            .uncached
            .extend(meta[fit..].iter().map(|(ts, key, _)| (*ts, *key)));
        self.cache_loaded.store(true, Ordering::Release);
        debug!(
            records = cache.len(),
            uncached = cache.uncached.len(),
            bytes = cache.bytes,
            ms = started.elapsed().as_millis() as u64,
            "cache loaded"
        );
        Ok(())
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        if self.cache_loaded.load(Ordering::Acquire) {
            return self.read().len();
        }
        self.store.manifest().map_or(0, |m| m.documents as usize)
    }

    /// Whether the index holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheState> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the indexing pipeline for a source, keeping the cache in step
    /// with every committed batch. Searches may run meanwhile from other
    /// threads and see each batch once it is committed.
    pub fn index(
        &self,
        source: &mut dyn Source,
        decryptor: &dyn Decryptor,
        options: &IndexOptions,
    ) -> Result<Report> {
        self.index_with(source, decryptor, options, &Control::new(), &mut |_| {})
    }

    /// [`Index::index`] with a control handle and a progress callback.
    pub fn index_with(
        &self,
        source: &mut dyn Source,
        decryptor: &dyn Decryptor,
        options: &IndexOptions,
        control: &Control,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<Report> {
        #[cfg(feature = "tantivy")]
        self.join_background();
        // No background job may write the inverted index while the pipeline
        // does: one asked for meanwhile (a search that found damage) only
        // marks it broken, and the run's end starts the rebuild.
        self.indexing.store(true, Ordering::Release);
        let cache = Arc::clone(&self.cache);
        let loaded = Arc::clone(&self.cache_loaded);
        #[cfg(feature = "tantivy")]
        let inverted = self.inverted.clone();
        let store = Arc::clone(&self.store);
        let observer = move |stored: &[pipeline::Committed], deleted: &[DocKey]| {
            {
                let mut c = cache.write().unwrap_or_else(|p| p.into_inner());
                // An unfilled cache is filled from the store later, which
                // already holds this batch.
                if loaded.load(Ordering::Acquire) {
                    for k in deleted {
                        c.remove(k);
                    }
                    for s in stored {
                        c.upsert(s.key, Arc::clone(&s.record));
                    }
                }
            }
            #[cfg(feature = "tantivy")]
            if let Some(inv) = &inverted {
                let applied = store
                    .manifest()
                    .and_then(|m| inv.apply(stored, deleted, m.generation));
                if let Err(e) = applied {
                    warn!(error = %e, "the inverted index missed a batch; it will catch up");
                    inv.mark_broken();
                }
            }
            #[cfg(not(feature = "tantivy"))]
            let _ = &store;
        };
        let report = pipeline::run_observed(
            &self.store,
            source,
            decryptor,
            options,
            control,
            on_progress,
            Some(&observer),
        );
        self.indexing.store(false, Ordering::Release);
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &self.inverted {
            // Commit what the run applied, even if it failed part way. Every
            // document change of the run went through the observer, and
            // nothing else writes the store meanwhile, so unless a batch was
            // missed the commit reflects the store's generation.
            let generation = match inv.is_broken() {
                false => Some(self.store.manifest()?.generation),
                true => None,
            };
            let flushed = inv.flush(generation);
            if let Err(e) = &flushed {
                warn!(error = %e, "the inverted index could not commit; it will catch up");
            }
            if inv.is_broken() || flushed.is_err() {
                self.start_background(true);
            }
        }
        report
    }

    /// Parses and runs a query.
    pub fn search(&self, query: &str, options: &SearchOptions) -> Result<SearchResults> {
        let q = query::parse(query)?;
        self.search_query(&q, options)
    }

    /// Runs a parsed query in the mode `options.mode` asks for.
    pub fn search_query(&self, query: &Query, options: &SearchOptions) -> Result<SearchResults> {
        let plan = plan::plan(query);
        let mut needles = Vec::new();
        plan.positive_needles(&mut needles);
        let (matched, total, next) = self.page(&plan, &needles, options)?;
        let mut hits = Vec::with_capacity(matched.len());
        for m in &matched {
            // Deleted since the scan: skip it.
            let Some(record) = self.get(&m.key)? else {
                continue;
            };
            let snippet = if options.snippet_bytes > 0 {
                snippet::snippet(&record, &needles, options.snippet_bytes)
            } else {
                Snippet::default()
            };
            hits.push(Hit {
                id: record.id.clone(),
                record,
                score: m.score,
                snippet,
            });
        }
        Ok(SearchResults { total, hits, next })
    }

    /// Like [`Index::search_query`], but a page of store keys instead of
    /// records: nothing is decrypted. For lists that load rows as they
    /// scroll into view ([`Index::get`] loads one), and for counting.
    /// `snippet_bytes` is ignored.
    ///
    /// ```no_run
    /// # use sealdex::{Index, SearchOptions};
    /// # fn f(index: &Index) -> sealdex::Result<()> {
    /// let q = sealdex::query::parse("invoice has:attachment")?;
    /// let page = index.search_keys(&q, &SearchOptions { limit: Some(50), ..Default::default() })?;
    /// println!("{} matches", page.total);
    /// if let Some(first) = page.keys.first() {
    ///     let record = index.get(first)?;
    /// #   let _ = record;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn search_keys(&self, query: &Query, options: &SearchOptions) -> Result<KeyPage> {
        let plan = plan::plan(query);
        let mut needles = Vec::new();
        plan.positive_needles(&mut needles);
        let (matched, total, next) = self.page(&plan, &needles, options)?;
        Ok(KeyPage {
            total,
            keys: matched.iter().map(|m| m.key).collect(),
            next,
        })
    }

    /// The record stored under `key` (from [`Index::search_keys`]), or
    /// `None` if it was deleted since.
    pub fn get(&self, key: &DocKey) -> Result<Option<Arc<Record>>> {
        if let Some(e) = self.read().get(key) {
            return Ok(Some(Arc::clone(&e.record)));
        }
        Ok(self.store.get_by_key(key)?.map(Arc::new))
    }

    /// One page of matches, in order: the page, the total, the next cursor.
    fn page(
        &self,
        plan: &Plan,
        needles: &[&Needle],
        options: &SearchOptions,
    ) -> Result<(Vec<Matched>, usize, Option<PageCursor>)> {
        let (mut matched, total) = match self.inverted_matches(plan, options)? {
            Some(found) => found,
            None => {
                self.ensure_cache()?;
                let cache = self.read();
                let (total, mut m) = self.match_cached(plan, needles, options, &cache);
                let (streamed_total, streamed) =
                    self.match_streamed(plan, needles, options, &cache)?;
                m.extend(streamed);
                (m, total + streamed_total)
            }
        };
        let order = options.order;
        if let (_, Some(at)) = page_bounds(options) {
            matched.retain(|m| cmp_matched(order, m, &at).is_gt());
        }
        let limit = options.limit.unwrap_or(usize::MAX);
        let more = matched.len() > limit;
        if matched.len() > limit && limit > 0 {
            matched.select_nth_unstable_by(limit - 1, |a, b| cmp_matched(order, a, b));
            matched.truncate(limit);
        }
        if limit == 0 {
            matched.clear();
        }
        matched.sort_unstable_by(|a, b| cmp_matched(order, a, b));
        let next = if more {
            matched.last().map(|m| PageCursor {
                order,
                score: m.score,
                timestamp: m.timestamp,
                key: m.key,
            })
        } else {
            None
        };
        Ok((matched, total, next))
    }

    /// The matches from the inverted index, or `None` when the forward scan
    /// is to run the query.
    #[cfg(feature = "tantivy")]
    fn inverted_matches(
        &self,
        plan: &Plan,
        options: &SearchOptions,
    ) -> Result<Option<(Vec<Matched>, usize)>> {
        let inv = match (options.mode, &self.inverted) {
            (SearchMode::Forward, _) => return Ok(None),
            (SearchMode::Auto, None) => return Ok(None),
            (SearchMode::Inverted, None) => {
                return Err(Error::Inverted(
                    "this index keeps no inverted index (enable IndexConfig::inverted)".into(),
                ));
            }
            (SearchMode::Auto, Some(inv)) => {
                if !inv.is_current(self.store.manifest()?.generation) {
                    return Ok(None);
                }
                inv
            }
            (SearchMode::Inverted, Some(inv)) => {
                self.join_background();
                if inv.is_broken() {
                    self.start_background(true);
                    return Err(Error::Inverted(
                        "a file failed authentication; it is being rebuilt".into(),
                    ));
                }
                inv
            }
        };
        let window = match (options.order, options.limit) {
            (Order::Newest, Some(limit)) => Some(crate::inverted::engine::Window {
                limit,
                after: options.cursor.as_ref().map(|c| (c.timestamp, c.key)),
            }),
            _ => None,
        };
        match inv.search(plan, options.order == Order::Relevance, window) {
            Ok((total, found)) => Ok(Some((found, total))),
            Err(e) => {
                warn!(error = %e, "the inverted index failed; rebuilding it from the store");
                self.start_background(true);
                match options.mode {
                    SearchMode::Inverted => Err(e),
                    _ => Ok(None),
                }
            }
        }
    }

    #[cfg(not(feature = "tantivy"))]
    fn inverted_matches(
        &self,
        _plan: &Plan,
        options: &SearchOptions,
    ) -> Result<Option<(Vec<Matched>, usize)>> {
        match options.mode {
            SearchMode::Inverted => Err(Error::Inverted(
                "this build has no inverted index (build with the `tantivy` feature)".into(),
            )),
            _ => Ok(None),
        }
    }

    /// The state of the inverted index.
    pub fn inverted_status(&self) -> Result<InvertedStatus> {
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &self.inverted {
            let running = self
                .background
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|b| !b.handle.is_finished());
            return Ok(if running {
                InvertedStatus::Building
            } else if inv.is_broken() {
                InvertedStatus::Broken
            } else if inv.is_current(self.store.manifest()?.generation) {
                InvertedStatus::Current {
                    documents: inv.num_docs(),
                    cached_bytes: inv.cached_bytes(),
                }
            } else {
                InvertedStatus::Behind
            });
        }
        Ok(InvertedStatus::Disabled)
    }

    /// Blocks until the inverted index is current with the store: waits for
    /// a background build or catch-up, and catches up now if it is behind
    /// or damaged.
    ///
    /// Fails with [`Error::Inverted`] when the index keeps no inverted index.
    pub fn wait_for_inverted(&self) -> Result<()> {
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &self.inverted {
            if let Some(result) = self.join_background() {
                result?;
            }
            if !inv.is_current(self.store.manifest()?.generation) {
                let rebuild = inv.is_broken();
                inv.catch_up(&self.store, rebuild, &AtomicBool::new(false))?;
            }
            return Ok(());
        }
        Err(Error::Inverted(
            "this index keeps no inverted index (enable IndexConfig::inverted)".into(),
        ))
    }

    /// Starts a background catch-up (or, with `rebuild`, a full rebuild)
    /// unless one is running.
    #[cfg(feature = "tantivy")]
    fn start_background(&self, rebuild: bool) {
        let Some(inv) = &self.inverted else { return };
        if self.indexing.load(Ordering::Acquire) {
            inv.mark_broken();
            return;
        }
        let mut bg = self.background.lock().unwrap_or_else(|p| p.into_inner());
        if bg.as_ref().is_some_and(|b| !b.handle.is_finished()) {
            return;
        }
        let (inv, store) = (Arc::clone(inv), Arc::clone(&self.store));
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancel);
        let spawned = std::thread::Builder::new()
            .name("sealdex-inverted".into())
            .spawn(move || {
                let r = inv.catch_up(&store, rebuild, &stop);
                if let Err(e) = &r {
                    warn!(error = %e, "building the inverted index failed");
                }
                r
            });
        match spawned {
            Ok(handle) => *bg = Some(Background { cancel, handle }),
            Err(e) => warn!(error = %e, "could not start the inverted index's builder"),
        }
    }

    /// Waits for the background job, if any; its result.
    #[cfg(feature = "tantivy")]
    fn join_background(&self) -> Option<Result<crate::inverted::CatchUp>> {
        let job = self
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        Some(
            job.handle
                .join()
                .unwrap_or_else(|_| Err(Error::Inverted("the builder thread panicked".into()))),
        )
    }

    /// The cached records matching `plan`: how many, and the best
    /// `limit + 1` after the cursor in result order (enough for the caller
    /// to fill a page and tell whether another follows), never a list of
    /// every match. Shards run in parallel, each into its own [`Best`].
    fn match_cached(
        &self,
        plan: &Plan,
        needles: &[&Needle],
        options: &SearchOptions,
        cache: &CacheState,
    ) -> (usize, Vec<Matched>) {
        let order = options.order;
        let (k, cursor) = page_bounds(options);
        let cmp = move |a: &Matched, b: &Matched| cmp_matched(order, a, b);
        let scorer = (order == Order::Relevance).then(|| Scorer::new(needles, cache));
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
                    scorer.as_ref(),
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

    /// [`Index::match_cached`] for the records beyond the cache budget,
    /// streamed from the store in batches.
    fn match_streamed(
        &self,
        plan: &Plan,
        needles: &[&Needle],
        options: &SearchOptions,
        cache: &CacheState,
    ) -> Result<(usize, Vec<Matched>)> {
        if cache.uncached.is_empty() {
            return Ok((0, Vec::new()));
        }
        let order = options.order;
        let (k, cursor) = page_bounds(options);
        let mut best = Best::new(k, move |a: &Matched, b: &Matched| cmp_matched(order, a, b));
        let mut total = 0;
        let scorer = (order == Order::Relevance).then(|| Scorer::new(needles, cache));
        for chunk in cache.uncached.chunks(STREAM_BATCH) {
            let opened: Result<Vec<Option<(DocKey, Record)>>> = chunk
                .par_iter()
                .map(|(_, key)| Ok(self.store.get_by_key(key)?.map(|r| (*key, r))))
                .collect();
            let streamed = Streamed::new(opened?.into_iter().flatten().collect());
            let prep = Prepared::new(plan, &streamed.folders);
            let slots = forward::shard_matches(plan, &streamed.shard, &prep);
            total += slots.count();
            offer_shard(
                &streamed.shard,
                &slots,
                order,
                scorer.as_ref(),
                cursor.as_ref(),
                &mut best,
                |slot| streamed.records.get(slot).map(|(key, _)| *key),
            );
        }
        Ok((total, best.into_sorted()))
    }
}

#[cfg(feature = "tantivy")]
impl Drop for Index {
    /// Stops a background build (it resumes at the next open) so that the
    /// store's lock is released when the index is dropped, and waits for
    /// the inverted index's merges in flight, so that no orphaned segment
    /// files are left on disk.
    fn drop(&mut self) {
        let job = self
            .background
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(job) = job {
            job.cancel.store(true, Ordering::Release);
            let _ = job.handle.join();
        }
        if let Some(inv) = &self.inverted {
            inv.close();
        }
    }
}

#[cfg(feature = "tantivy")]
fn open_inverted(store: &Store, config: &IndexConfig) -> Option<Arc<Inverted>> {
    if !config.inverted {
        return None;
    }
    let options = InvertedOptions {
        cache_bytes: config.inverted_cache_bytes,
        search_threads: config.search_threads,
        ..InvertedOptions::default()
    };
    match Inverted::open(
        &store.path().join("inverted"),
        store.index_files_key(),
        options,
    ) {
        Ok(inv) => Some(Arc::new(inv)),
        Err(e) => {
            warn!(error = %e, "the inverted index is unavailable; searching with the forward scan");
            None
        }
    }
}

/// How many matches a page needs from each source (its limit, plus one to
/// tell whether a next page exists), and the cursor it starts after.
fn page_bounds(options: &SearchOptions) -> (usize, Option<Matched>) {
    let k = options.limit.map_or(usize::MAX, |l| l.saturating_add(1));
    let cursor = options.cursor.as_ref().map(|c| Matched {
        key: c.key,
        timestamp: c.timestamp,
        score: c.score,
    });
    (k, cursor)
}

/// BM25 over the positive terms of a query. Document frequencies come from
/// the cached records, scaled to the whole index when part of it is not
/// cached; subject matches count double.
struct Scorer<'a> {
    needles: Vec<(&'a Needle, f32)>,
    avg_tokens: f32,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;

impl<'a> Scorer<'a> {
    fn new(needles: &[&'a Needle], cache: &CacheState) -> Self {
        let cached = cache.by_key.len().max(1) as f32;
        let total = cache.len().max(1) as f32;
        let avg_tokens = cache
            .entries
            .iter()
            .flatten()
            .map(|e| e.tokens as f64)
            .sum::<f64>() as f32
            / cached;
        let needles = needles
            .iter()
            .map(|n| {
                let df = forward::count(&Plan::Text((*n).clone()), &cache.shards, &cache.folders)
                    as f32
                    * total
                    / cached;
                let idf = (1.0 + (total - df + 0.5) / (df + 0.5)).ln();
                (*n, idf)
            })
            .collect();
        Scorer {
            needles,
            avg_tokens: avg_tokens.max(1.0),
        }
    }

    fn score(&self, shard: &crate::cache::Shard, slot: usize, tokens: u32) -> f32 {
        let norm = K1 * (1.0 - B + B * tokens as f32 / self.avg_tokens);
        self.needles
            .iter()
            .map(|(n, idf)| {
                let (tf, subject) = forward::term_frequency(shard, slot, n);
                let tf = (tf + subject) as f32;
                idf * tf * (K1 + 1.0) / (tf + norm)
            })
            .sum()
    }
}
