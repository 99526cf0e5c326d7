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
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

#[cfg(feature = "tantivy")]
use tracing::warn;

use crate::cache::CacheState;
use crate::config::IndexConfig;
use crate::decrypt::Decryptor;
use crate::error::{Error, Result};
use crate::keys::Credential;
use crate::ops::{Applied, Op};
use crate::pipeline::{self, Control, IndexOptions, Progress, Report};
use crate::query::plan::{self, Needle, Plan};
use crate::query::snippet::{self, Snippet};
use crate::query::{self, Query};
use crate::record::Record;
use crate::search::cursor::UsedMode;
use crate::search::{
    Hit, InvertedStatus, KeyPage, Matched, PageCursor, SearchMode, SearchOptions, SearchResults,
    cmp_matched, page_bounds,
};
use crate::source::Source;
use crate::store::{DocKey, Store};

#[cfg(feature = "tantivy")]
use crate::search::inverted::{InvertedOptions, engine::Inverted};

#[cfg(feature = "mediator")]
pub(crate) mod snapshot;

/// An open index: a store, its cache and its search modes.
pub struct Index {
    store: Arc<Store>,
    cache: Arc<RwLock<CacheState>>,
    /// Whether the cache holds the store's records (checked and set under
    /// the cache's write lock). Left unloaded while the inverted index
    /// serves searches, so that opening a large index decrypts nothing.
    cache_loaded: Arc<AtomicBool>,
    /// The one writer: held by [`Index::apply`] for a whole batch.
    writer: Arc<Mutex<()>>,
    /// Held for writing while a batch reaches the cache and the inverted
    /// index, and for reading while a search takes its view of them: a
    /// search sees all of a batch or none of it.
    view: RwLock<()>,
    /// Versions for ops given as version 0.
    pub(crate) clock: crate::write::Clock,
    /// The store generation whose batch the cache and the inverted index
    /// have been given: set under `view` once they have it. The store's own
    /// counter moves earlier (when its batch is written), so a search that
    /// compared the inverted index with it could find the index behind for
    /// that moment, and fall back to the forward scan.
    published: std::sync::atomic::AtomicU64,
    /// Sources being indexed now: a second run of the same source waits.
    running: Mutex<std::collections::HashSet<String>>,
    running_done: std::sync::Condvar,
    /// Told of every committed batch that did not come from another device
    /// (multi-device reflection, `crate::sync::share`), under the writer
    /// lock, so in commit order.
    on_commit: RwLock<Option<OnCommit>>,
    #[cfg(feature = "tantivy")]
    inverted: Option<Arc<Inverted>>,
    /// A background build, catch-up or rebuild of the inverted index.
    #[cfg(feature = "tantivy")]
    background: crate::search::inverted::Builder,
}

/// What [`Index`] tells of each committed batch: the ops as applied (with
/// their versions) and the state written with them (checkpoint, sync
/// tokens, failures). Called with the writer lock held: it must not block.
pub(crate) type OnCommit = Arc<dyn Fn(&Applied, crate::write::State) + Send + Sync>;

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
            writer: Arc::new(Mutex::new(())),
            view: RwLock::new(()),
            clock: crate::write::Clock::new(),
            published: std::sync::atomic::AtomicU64::new(store.generation()),
            running: Mutex::new(std::collections::HashSet::new()),
            running_done: std::sync::Condvar::new(),
            on_commit: RwLock::new(None),
            #[cfg(feature = "tantivy")]
            inverted: open_inverted(&store, &config),
            #[cfg(feature = "tantivy")]
            background: Default::default(),
            store,
        };
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &index.inverted {
            let manifest = index.store.manifest()?;
            if inv.is_current(manifest.generation) {
                inv.mark_in_step();
            } else if manifest.documents == 0 && inv.num_docs() == 0 {
                // Nothing to read: in step at once, so that the first
                // writes are followed from the start.
                inv.catch_up(&index.store, false, &AtomicBool::new(false))?;
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
        let budget = cache.budget;
        *cache = CacheState::from_store(&self.store, budget)?;
        self.cache_loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the decrypted cache of the forward scan has been filled
    /// (the first forward search fills it). For benchmarks and tests that
    /// check a search did not fall back to decrypting the store.
    #[doc(hidden)]
    pub fn decrypted_cache_is_filled(&self) -> bool {
        self.cache_loaded.load(Ordering::Acquire)
    }

    /// The index directory.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The store, for reading: its records, failures, manifest and
    /// verification. It offers no way to write: every change goes through
    /// [`Index::apply`], which keeps the cache and the inverted index in
    /// step.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The sealed manifest: records, failures, generation.
    pub fn manifest(&self) -> Result<crate::store::Manifest> {
        self.store.manifest()
    }

    /// Every recorded per-message failure.
    pub fn failures(&self) -> Result<Vec<crate::store::Failure>> {
        self.store.failures()
    }

    /// Authenticates every sealed record and checks the manifest's counts.
    pub fn verify(&self) -> crate::store::VerifyReport {
        self.store.verify()
    }

    /// Bytes the index occupies on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.store.disk_bytes()
    }

    /// The record a source stored under `id`, if any.
    pub fn get_by_id(&self, source: &str, id: &str) -> Result<Option<Arc<Record>>> {
        self.get(&self.store.doc_key(source, id))
    }

    /// Re-wraps the data key under a new credential (nothing is
    /// re-encrypted); the old credential stops working once this returns.
    pub fn change_credential(&self, new: &Credential, kdf: crate::keys::KdfParams) -> Result<()> {
        self.store.change_credential(new, kdf)
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

    /// Applies a batch of ops: the one way an index changes (see
    /// [`crate::ops`] for what each op does and when it changes nothing).
    ///
    /// **Durable** when this returns: the batch is written atomically and
    /// flushed, and survives a crash or a kill. **Searchable** when this
    /// returns, in both modes: the inverted index answers for what it has
    /// committed and a scan of the batches applied since answers for the
    /// rest (the inverted index commits every 20,000 records or 2 seconds,
    /// during an indexing run every 100,000 records or 64 MiB,
    /// at [`Index::commit`], and when the index is dropped; after a crash
    /// it catches up from the store).
    ///
    /// **One writer at a time**: a call from another thread while a batch
    /// is being applied (by another call, or by a running
    /// [`Index::index`]) waits for it, then applies its own; nothing is
    /// lost and nothing interleaves within a batch. Searches run
    /// meanwhile. Another process gets [`Error::InUse`] at open.
    ///
    /// ```no_run
    /// use sealdex::ops::Op;
    /// use sealdex::{ContentKind, Credential, Index, IndexConfig, Metadata, Record};
    ///
    /// let index = Index::open_or_create("/path/to/index".as_ref(), &Credential::passphrase("pw"), IndexConfig::default())?;
    /// let message = Record {
    ///     source: "chat".into(),
    ///     id: "!room:example.org/$event1".into(),
    ///     kind: ContentKind::Chat,
    ///     timestamp: Some(1_700_000_000),
    ///     from: "Alice".into(),
    ///     body: "lunch at noon?".into(),
    ///     folders: vec!["!room:example.org".into()],
    ///     ..Record::default()
    /// };
    /// index.apply(vec![Op::upsert(message)])?;
    /// let read = Metadata { unread: Some(false), ..Metadata::default() };
    /// index.apply(vec![Op::patch("chat", "!room:example.org/$event1", read)])?;
    /// assert_eq!(index.search("lunch", &Default::default())?.total, 1);
    /// # Ok::<(), sealdex::Error>(())
    /// ```
    pub fn apply(&self, ops: Vec<Op>) -> Result<Applied> {
        self.apply_with(ops, crate::write::State::default())
    }

    /// [`Index::apply`] with the pipeline's state (failures, checkpoint,
    /// sync tokens), written in the same atomic batch.
    pub(crate) fn apply_with(&self, ops: Vec<Op>, state: crate::write::State) -> Result<Applied> {
        self.apply_inner(ops, state, true)
    }

    /// [`Index::apply_with`] for ops that came from another device: not
    /// told to the `on_commit` hook, so they are not reflected back.
    #[cfg_attr(not(feature = "mediator"), allow(dead_code))]
    pub(crate) fn apply_reflected(
        &self,
        ops: Vec<Op>,
        state: crate::write::State,
    ) -> Result<Applied> {
        self.apply_inner(ops, state, false)
    }

    /// Sets (or clears) the hook told of every committed batch.
    #[cfg_attr(not(feature = "mediator"), allow(dead_code))]
    pub(crate) fn set_on_commit(&self, hook: Option<OnCommit>) {
        *self.on_commit.write().unwrap_or_else(|p| p.into_inner()) = hook;
    }

    fn apply_inner(&self, ops: Vec<Op>, state: crate::write::State, tell: bool) -> Result<Applied> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let hook = if tell {
            self.on_commit
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        } else {
            None
        };
        let told = hook.as_ref().map(|_| state.to_observed());
        let (applied, written) = crate::write::write(&self.store, &self.clock, ops, state)?;
        if written.generation == written.previous {
            return Ok(applied);
        }
        if let (Some(hook), Some(state)) = (hook, told) {
            hook(&applied, state);
        }
        let _view = self.view.write().unwrap_or_else(|p| p.into_inner());
        if self.cache_loaded.load(Ordering::Acquire) {
            let mut c = self.cache.write().unwrap_or_else(|p| p.into_inner());
            for k in &written.deleted {
                c.remove(k);
            }
            for s in &written.stored {
                c.upsert(s.key, Arc::clone(&s.record));
            }
        }
        #[cfg(feature = "tantivy")]
        self.follow(&written);
        self.published.store(written.generation, Ordering::Release);
        Ok(applied)
    }

    /// Hands a written batch to the inverted index if it follows the store;
    /// otherwise makes sure a catch-up will bring it in step.
    #[cfg(feature = "tantivy")]
    fn follow(&self, written: &crate::write::Written) {
        let Some(inv) = &self.inverted else { return };
        if inv.is_following(written.previous) {
            if let Err(e) = inv.apply(
                &written.stored,
                &written.deleted,
                &written.deleted_stamps,
                written.generation,
            ) {
                warn!(error = %e, "the inverted index missed a batch; it will catch up");
                inv.mark_broken();
            } else {
                return;
            }
        }
        // Behind (a catch-up is running, or it missed a batch): one more
        // catch-up after the running one brings it in step, comparing
        // stamps, so only what changed is read.
        self.start_background(inv.is_broken());
    }

    /// Commits the inverted index's pending batches now, so that a search
    /// reads them from the index rather than from the tail. Not needed for
    /// durability (the store is durable once [`Index::apply`] returns).
    pub fn commit(&self) -> Result<()> {
        #[cfg(feature = "tantivy")]
        if let Some(inv) = &self.inverted {
            let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            if inv.is_following(self.store.generation()) {
                inv.flush(None)?;
            }
        }
        Ok(())
    }

    /// Runs the indexing pipeline for a source: its changes become ops
    /// applied by [`Index::apply`], batch by batch, so searches from other
    /// threads see each batch once it is committed, and ops pushed by the
    /// app meanwhile interleave between batches.
    pub fn index(
        &self,
        source: &mut dyn Source,
        decryptor: &dyn Decryptor,
        options: &IndexOptions,
    ) -> Result<Report> {
        self.index_with(source, decryptor, options, &Control::new(), &mut |_| {})
    }

    /// [`Index::index`] with a control handle and a progress callback.
    ///
    /// A second run for the same source (by name) waits for the first to
    /// end: the two would race on the source's checkpoint. Runs for
    /// different sources proceed side by side, their batches interleaved.
    pub fn index_with(
        &self,
        source: &mut dyn Source,
        decryptor: &dyn Decryptor,
        options: &IndexOptions,
        control: &Control,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<Report> {
        let name = source.name().to_owned();
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            while running.contains(&name) {
                running = self
                    .running_done
                    .wait(running)
                    .unwrap_or_else(|p| p.into_inner());
            }
            running.insert(name.clone());
        }
        // Fewer, larger inverted commits while the run lasts.
        #[cfg(feature = "tantivy")]
        let bulk = self.inverted.as_ref().map(|inv| inv.bulk());
        let report = pipeline::run(self, source, decryptor, options, control, on_progress);
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.remove(&name);
            self.running_done.notify_all();
        }
        // The run ends with the inverted index in step and committed, as
        // a caller of a finished run expects (a catch-up that ran beside
        // it is waited for).
        #[cfg(feature = "tantivy")]
        if self.inverted.is_some()
            && let Err(e) = self.wait_for_inverted()
        {
            warn!(error = %e, "the inverted index could not catch up; it will be rebuilt");
            self.start_background(true);
        }
        #[cfg(feature = "tantivy")]
        drop(bulk);
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
        let (matched, total, next) = self.page(query, &plan, &needles, options)?;
        let mut hits = Vec::with_capacity(matched.len());
        for m in &matched {
            // Deleted since the scan: skip it.
            let Some(record) = self.get_matched(m)? else {
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
        let (matched, total, next) = self.page(query, &plan, &needles, options)?;
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

    /// The record of a match, or `None` if it was deleted since: read by
    /// document number when the inverted index gave one.
    fn get_matched(&self, m: &Matched) -> Result<Option<Arc<Record>>> {
        if m.docno == 0 {
            return self.get(&m.key);
        }
        if let Some(e) = self.read().get(&m.key) {
            return Ok(Some(Arc::clone(&e.record)));
        }
        Ok(self.store.get_hit(m.docno, &m.key)?.map(Arc::new))
    }

    /// One page of matches, in order: the page, the total, the next cursor.
    fn page(
        &self,
        query: &Query,
        plan: &Plan,
        needles: &[&Needle],
        options: &SearchOptions,
    ) -> Result<(Vec<Matched>, usize, Option<PageCursor>)> {
        let bound = crate::search::cursor::query_id(query);
        let cursor_mode = match &options.cursor {
            Some(c) => Some(c.check(bound, options.order)?),
            None => None,
        };
        let (mut matched, total, used) =
            match self.inverted_matches(plan, needles, options, cursor_mode)? {
                Some((m, total)) => (m, total, UsedMode::Inverted),
                None => {
                    self.ensure_cache()?;
                    let cache = self.read();
                    let (m, total) = crate::search::scan::match_forward(
                        &self.store,
                        plan,
                        needles,
                        options,
                        &cache,
                    )?;
                    (m, total, UsedMode::Forward)
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
        crate::search::sort_matched(order, &mut matched);
        let next = if more {
            matched.last().map(|m| PageCursor {
                order,
                score: m.score,
                timestamp: m.timestamp,
                key: m.key,
                query: bound,
                mode: used,
            })
        } else {
            None
        };
        Ok((matched, total, next))
    }

    /// The matches from the inverted index, or `None` when the forward scan
    /// is to run the query.
    ///
    /// While writes go on, the index answers for what it has committed and
    /// the tail of batches applied since (kept in memory, a few seconds'
    /// worth) is scanned: together they are exactly the store's records,
    /// so a search during a sync never falls back to decrypting the store.
    #[cfg(feature = "tantivy")]
    fn inverted_matches(
        &self,
        plan: &Plan,
        needles: &[&Needle],
        options: &SearchOptions,
        cursor_mode: Option<UsedMode>,
    ) -> Result<Option<(Vec<Matched>, usize)>> {
        let relevance = options.order == crate::search::Order::Relevance;
        // A relevance cursor continues in the mode that made it: the two
        // modes score alike but not identically.
        let want = match (options.mode, cursor_mode) {
            (SearchMode::Auto, Some(m)) if relevance => Some(m),
            (SearchMode::Forward, Some(UsedMode::Inverted))
            | (SearchMode::Inverted, Some(UsedMode::Forward))
                if relevance =>
            {
                return Err(Error::InvalidCursor(
                    "the cursor is from a page in the other search mode; start again from the \
                     first page"
                        .into(),
                ));
            }
            _ => None,
        };
        let inv = match (options.mode, &self.inverted, want) {
            (_, _, Some(UsedMode::Forward)) | (SearchMode::Forward, _, _) => return Ok(None),
            (SearchMode::Auto, None, None) => return Ok(None),
            (_, None, _) => {
                return Err(Error::Inverted(
                    "this index keeps no inverted index (enable IndexConfig::inverted)".into(),
                ));
            }
            (SearchMode::Auto, Some(inv), None) => inv,
            (_, Some(inv), _) => {
                // The inverted index is asked for: wait until it follows.
                self.wait_until_following()?;
                inv
            }
        };
        let snapshot = {
            let _view = self.view.read().unwrap_or_else(|p| p.into_inner());
            inv.is_following(self.published.load(Ordering::Acquire))
                .then(|| inv.snapshot())
        };
        let Some((searcher, tail)) = snapshot else {
            if want == Some(UsedMode::Inverted) {
                return Err(Error::InvalidCursor(
                    "the inverted index is being rebuilt, and this relevance cursor is from it; \
                     start again from the first page"
                        .into(),
                ));
            }
            if !self.background_running() {
                self.start_background(inv.is_broken());
            }
            return Ok(None);
        };
        let (k, cursor) = page_bounds(options);
        let (tail_total, mut matched, touched) = crate::search::scan::match_tail(
            &tail,
            plan,
            needles,
            options.order,
            k,
            cursor.as_ref(),
        );
        let window = match (options.order, options.limit) {
            (crate::search::Order::Newest, Some(limit)) => {
                Some(crate::search::inverted::engine::Window {
                    limit,
                    after: options.cursor.as_ref().map(|c| (c.timestamp, c.key)),
                })
            }
            _ => None,
        };
        let touched_stamps: Vec<u64> = if touched.is_empty() {
            Vec::new()
        } else {
            tail.iter()
                .flat_map(|b| b.old_stamps.iter().copied())
                .collect()
        };
        match inv.search(
            plan,
            relevance,
            window,
            Some(&searcher),
            &touched,
            &touched_stamps,
        ) {
            Ok((total, found)) => {
                matched.extend(found);
                Ok(Some((matched, total + tail_total)))
            }
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

    /// Blocks until the inverted index follows the store: waits for a
    /// background job, then catches up under the writer lock (so that no
    /// batch slips past) if it is still behind.
    #[cfg(feature = "tantivy")]
    fn wait_until_following(&self) -> Result<()> {
        let Some(inv) = &self.inverted else {
            return Err(Error::Inverted(
                "this index keeps no inverted index (enable IndexConfig::inverted)".into(),
            ));
        };
        if let Some(result) = self.background.join() {
            result?;
        }
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if !inv.is_following(self.store.generation()) {
            let rebuild = inv.is_broken();
            inv.catch_up(&self.store, rebuild, &AtomicBool::new(false))?;
        }
        Ok(())
    }

    #[cfg(feature = "tantivy")]
    fn background_running(&self) -> bool {
        self.background.is_running()
    }

    #[cfg(not(feature = "tantivy"))]
    fn inverted_matches(
        &self,
        _plan: &Plan,
        _needles: &[&Needle],
        options: &SearchOptions,
        _cursor_mode: Option<UsedMode>,
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
            let generation = self.published.load(Ordering::Acquire);
            return Ok(if self.background_running() {
                InvertedStatus::Building
            } else if inv.is_broken() {
                InvertedStatus::Broken
            } else if inv.is_current(generation) || inv.is_following(generation) {
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
            self.wait_until_following()?;
            let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            inv.flush(None)?;
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
        if let Some(inv) = &self.inverted {
            self.background
                .start(inv, &self.store, &self.writer, rebuild);
        }
    }
}

#[cfg(feature = "tantivy")]
impl Drop for Index {
    /// Stops a background build (it resumes at the next open) so that the
    /// store's lock is released when the index is dropped, and waits for
    /// the inverted index's merges in flight, so that no orphaned segment
    /// files are left on disk.
    fn drop(&mut self) {
        // Cancel and join a background job first: it holds the inverted
        // index.
        drop(std::mem::take(&mut self.background));
        if let Some(inv) = &self.inverted {
            inv.close();
        }
    }
}

#[cfg(feature = "tantivy")]
fn open_inverted(store: &Arc<Store>, config: &IndexConfig) -> Option<Arc<Inverted>> {
    if !config.inverted {
        return None;
    }
    let options = InvertedOptions {
        cache_bytes: config.inverted_cache_bytes,
        search_threads: config.search_threads,
        ..InvertedOptions::default()
    };
    // A format-4 store's index names records by document number, which
    // the store resolves to keys from memory.
    let docnos: Option<crate::search::inverted::engine::KeyOf> = store.has_docnos().then(|| {
        let store = Arc::clone(store);
        Arc::new(move |d: &[u64]| store.keys_of_docnos(d)) as crate::search::inverted::engine::KeyOf
    });
    match Inverted::open(
        &store.path().join("inverted"),
        store.index_files_key(),
        options,
        docnos,
    ) {
        Ok(inv) => Some(Arc::new(inv)),
        Err(e) => {
            warn!(error = %e, "the inverted index is unavailable; searching with the forward scan");
            None
        }
    }
}
