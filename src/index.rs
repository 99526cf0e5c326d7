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

use crate::cache::{CacheState, newest_first};
use crate::config::IndexConfig;
use crate::decrypt::Decryptor;
use crate::error::{Error, Result};
use crate::keys::Credential;
use crate::pipeline::{self, Control, IndexOptions, Progress, Report};
use crate::query::plan::{self, Needle, Plan};
use crate::query::snippet::{self, Snippet};
use crate::query::{self, Query};
use crate::record::Record;
use crate::search::bm25::Scorer;
use crate::search::forward::{self, Best, Prepared};
use crate::search::scan::{STREAM_BATCH, Streamed, offer_shard};
use crate::search::{
    Hit, InvertedStatus, KeyPage, Matched, Order, PageCursor, SearchMode, SearchOptions,
    SearchResults, cmp_matched, page_bounds,
};
use crate::source::Source;
use crate::store::{DocKey, Store};

#[cfg(feature = "tantivy")]
use crate::search::inverted::{InvertedOptions, engine::Inverted};

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
    handle: std::thread::JoinHandle<Result<crate::search::inverted::CatchUp>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.store.path())
            .finish_non_exhaustive()
    }
}

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
            (Order::Newest, Some(limit)) => Some(crate::search::inverted::engine::Window {
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
    fn join_background(&self) -> Option<Result<crate::search::inverted::CatchUp>> {
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
