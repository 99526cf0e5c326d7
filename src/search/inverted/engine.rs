//! [`Inverted`]: owns the live inverted index of one store: opening it (or
//! starting over when it is damaged or of another format), keeping it in
//! step with the store, catching it up after a crash, and running queries.
//!
//! # Kept in step, and how it knows
//!
//! The store is the source of truth. Every tantivy commit carries a payload
//! (sealed with the rest of `meta.json`) that names the sealdex index format
//! and the store **generation** (the manifest counter that every applied
//! batch increments) that the commit reflects. The index is *current* when
//! that generation equals the store's: only then does `SearchMode::Auto`
//! use it.
//!
//! The pipeline's commit observer hands every committed batch to
//! [`Inverted::apply`]; tantivy commits are batched (every
//! [`COMMIT_DOCS`] records or [`COMMIT_INTERVAL`], whichever comes first;
//! during an indexing run, [`BULK_COMMIT_DOCS`] records or
//! [`BULK_COMMIT_BYTES`]; and at the end of a run), and each one is durable (the encrypted
//! directory fsyncs files and renames `meta.json` atomically).
//!
//! After a crash, the index is some commits behind. [`Inverted::catch_up`]
//! repairs it without trusting anything but the store: every indexed
//! document holds its key and the **stamp** of the envelope it was built
//! from (the first bytes of the random nonce, which change with every write
//! of the record), so comparing `(key, stamp)` pairs from the index's fast
//! fields with the store's envelopes, without decrypting either, finds the
//! records to add, to replace and to delete. Only those are decrypted.
//!
//! # Damage and upgrades
//!
//! An index that does not open, whose payload names another format, or
//! whose files fail authentication during a search is rebuilt from the store
//! (in the background when the [`crate::Index`] drives it); searches use the
//! forward scan meanwhile. Upgrading tantivy or the schema is a bump of
//! [`FORMAT`], hence a rebuild, never an error that leaves the user without
//! search.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tantivy::HasLen as _;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::Query as TQuery;
use tantivy::{
    DocId, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, TantivyDocument,
};
use tracing::{debug, info, warn};

use super::directory::{DirectoryOptions, EncryptedDirectory};
use super::parallel::{SPLIT_MIN_DOCS, SearchThreads};
use super::query::compile_plan;
use super::schema::{IndexSchema, KEY_WORDS, UNDATED, key_from_words};
use crate::config::{DEFAULT_SEARCH_THREADS, cores_up_to};
use crate::error::{Error, Result};
use crate::keys::SecretKey;
use crate::query::plan::Plan;
use crate::search::Matched;
use crate::search::scan::TailBatch;
use crate::store::{DocKey, Store};
use crate::write::Committed;

/// The inverted index's format. Bump it with any change to the schema, the
/// tokenizer, or the tantivy version's file format: an index of another
/// format is rebuilt from the store.
pub const FORMAT: u32 = 2;

/// The format of an index by document number (stores of format 4; see
/// `schema`), bumped like [`FORMAT`]. 4: `date` is a fast field only (no
/// terms), so an index of format 3 is rebuilt from the store.
pub const FORMAT_DOCNOS: u32 = 4;

/// Resolves document numbers to their records' keys (the store's map, in
/// memory, under one lock for the lot): how an index by document number
/// turns hits into keys.
pub(crate) type KeyOf = Arc<dyn Fn(&[u64]) -> Vec<Option<DocKey>> + Send + Sync>;

/// Records buffered before a commit.
pub const COMMIT_DOCS: usize = 20_000;

/// Longest time a committed store batch waits for its inverted commit.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(2);

/// Records buffered before a commit while an indexing run is in progress
/// (see [`Inverted::bulk`]).
pub const BULK_COMMIT_DOCS: usize = 100_000;

/// Bytes buffered before a commit while an indexing run is in progress:
/// an estimate of what the pending records hold in memory (their text and
/// [`RECORD_OVERHEAD`] each), which the tail keeps until the commit.
///
/// Between two commits the process holds these records *and* tantivy's
/// in-memory segments of the same records (up to
/// [`InvertedOptions::writer_bytes`]); both are freed at the commit. So
/// the indexing peak is the resident size after a commit plus about twice
/// this bound: with 64 MiB, a million synthetic messages peaked at
/// 449 MiB, the memory in use rising by 110–150 MiB between commits
/// (`bench-notes/rss-run11.md`). 32 MiB halved that rise (1M: 383 MiB)
/// at the same CPU time on synthetic mail, but made ChitChat's indexing
/// 10–20 % slower in alternated runs on an idle machine (source 2.94 and
/// 2.99 s at 64 MiB against 3.30 and 3.65 s at 32 MiB): its short
/// messages reach 32 MiB before [`BULK_COMMIT_DOCS`], so a run commits
/// and merges more often. The bound stays at 64 MiB until the floor
/// under the saw-tooth is smaller.
pub const BULK_COMMIT_BYTES: usize = 64 << 20;

/// A run that leaves at least this many segments of its own merges them
/// into one when it ends (see [`Inverted::bulk`]).
const BULK_MERGE_MIN_SEGMENTS: usize = 4;

/// ... unless they hold more records than this: a merge that large is left
/// to tantivy's merge policy.
const BULK_MERGE_MAX_DOCS: u64 = 1_000_000;

/// What a pending record costs in memory beyond its text (the record's
/// struct, its allocations, the tail's entry), for [`BULK_COMMIT_BYTES`].
const RECORD_OVERHEAD: usize = 256;

/// Sentinel for "reflects no known store generation".
const NO_GENERATION: u64 = u64::MAX;

/// Records decrypted and added per step of a catch-up.
const CATCH_UP_BATCH: usize = 2048;

/// How the inverted index is opened.
#[derive(Clone, Debug)]
pub struct InvertedOptions {
    /// Bytes of decrypted chunks kept in memory.
    pub cache_bytes: usize,
    /// tantivy's indexing memory, in total over its threads (at least
    /// 15 MB per thread).
    pub writer_bytes: usize,
    /// tantivy's indexing threads.
    pub writer_threads: usize,
    /// tantivy's merge threads (its own default is 4). One by default:
    /// every merge thread gets its own glibc malloc arena, and each arena
    /// keeps, after a merge, the memory its largest merge freed; since the
    /// largest merge grows with the index, so did the indexing process's
    /// resident memory (570 MiB at 100k messages with 4 merge threads,
    /// ≈ 320–370 MiB with one; `bench-notes/rss.md`). Merges run in the
    /// background: indexing 100k messages was not slower with one.
    pub merge_threads: usize,
    /// Threads one search may use, the caller's included: a large index's
    /// segments are searched side by side (see `parallel`). Up to 4 by
    /// default, as many as the machine has.
    pub search_threads: usize,
}

impl Default for InvertedOptions {
    fn default() -> Self {
        InvertedOptions {
            cache_bytes: super::directory::DEFAULT_CACHE_BUDGET,
            writer_bytes: 64 << 20,
            writer_threads: cores_up_to(2),
            merge_threads: 1,
            search_threads: cores_up_to(DEFAULT_SEARCH_THREADS),
        }
    }
}

/// The payload of every commit.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    format: u32,
    generation: u64,
}

/// What a catch-up did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Records added or replaced.
    pub indexed: u64,
    /// Records deleted from the inverted index.
    pub removed: u64,
}

struct Writing {
    writer: IndexWriter<TantivyDocument>,
    pending: usize,
    /// Estimated memory of the records pending (see [`BULK_COMMIT_BYTES`]).
    pending_bytes: usize,
    since: Instant,
    /// Store generation of the last applied batch.
    generation: u64,
    /// Keys added since the last commit: the reader cannot see them yet.
    uncommitted: std::collections::HashSet<DocKey>,
}

/// The writing state, locked, with its writer open (what
/// [`Inverted::lock_writing`] returns).
struct WritingGuard<'a>(MutexGuard<'a, Option<Writing>>);

impl std::ops::Deref for WritingGuard<'_> {
    type Target = Writing;
    fn deref(&self) -> &Writing {
        self.0
            .as_ref()
            .expect("lock_writing opens the writer before returning")
    }
}

impl std::ops::DerefMut for WritingGuard<'_> {
    fn deref_mut(&mut self) -> &mut Writing {
        self.0
            .as_mut()
            .expect("lock_writing opens the writer before returning")
    }
}

/// The live inverted index of one store.
pub(crate) struct Inverted {
    root: PathBuf,
    schema: IndexSchema,
    index: tantivy::Index,
    directory: EncryptedDirectory,
    reader: IndexReader,
    options: InvertedOptions,
    writing: Mutex<Option<Writing>>,
    /// Store generation the last commit reflects ([`NO_GENERATION`] if none).
    committed: AtomicU64,
    /// Set when a read failed authentication: searches avoid the index until
    /// it is rebuilt.
    broken: AtomicBool,
    /// Whether the index (committed plus pending) holds exactly the store's
    /// documents: set by a catch-up, a commit that claims the store's
    /// generation, or an open that found the index current; cleared when
    /// the index is marked broken. While set, a record new to the store is
    /// known to be absent from the index (see [`apply`](Self::apply)).
    in_step: AtomicBool,
    /// Store generation of the last batch given to [`apply`](Self::apply)
    /// while in step ([`NO_GENERATION`] when not following the store).
    applied: AtomicU64,
    /// The batches applied since the last commit, for searches: the
    /// committed index answers for the rest, this tail for these (see
    /// [`snapshot`](Self::snapshot)). Swapped with the reader at each
    /// commit, under this lock.
    tail: Mutex<Vec<Arc<TailBatch>>>,
    /// Live segments' hit columns.
    columns: ColumnCache,
    /// Threads a search may split its segments over.
    threads: SearchThreads,
    /// Indexing runs in progress (see [`bulk`](Self::bulk)).
    bulk: std::sync::atomic::AtomicUsize,
    /// The committed segments when the first of them began.
    bulk_base: Mutex<Option<std::collections::HashSet<tantivy::index::SegmentId>>>,
}

/// Marks an indexing run in progress while it lives (see [`Inverted::bulk`]).
pub(crate) struct Bulk<'a>(&'a Inverted);

impl Drop for Bulk<'_> {
    fn drop(&mut self) {
        if self.0.bulk.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.end_bulk();
        }
    }
}

impl std::fmt::Debug for Inverted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inverted")
            .field("root", &self.root)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

fn tantivy_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Inverted(format!("{what}: {e}"))
}

impl Inverted {
    /// Opens the inverted index in `root`, starting over with an empty one
    /// when there is none, it does not open, or it is of another format.
    /// With `docnos`, the index names records by document number and
    /// resolves hits with it (a format-4 store); without, by key.
    pub(crate) fn open(
        root: &Path,
        key: &SecretKey,
        options: InvertedOptions,
        docnos: Option<KeyOf>,
    ) -> Result<Self> {
        match Self::try_open(root, key, &options, docnos.clone()) {
            Ok(Some(inv)) => return Ok(inv),
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "the inverted index does not open; rebuilding it from the store")
            }
        }
        if root.exists() {
            std::fs::remove_dir_all(root).map_err(|e| Error::io(root, e))?;
        }
        let schema = schema_for(docnos.is_some());
        let directory = Self::directory(root, key, &options)?;
        let index = tantivy::Index::create(
            directory.clone(),
            schema.schema().clone(),
            tantivy::IndexSettings::default(),
        )
        .map_err(|e| tantivy_err("creating the inverted index", e))?;
        Self::assemble(
            root,
            schema,
            index,
            directory,
            options,
            NO_GENERATION,
            docnos,
        )
    }

    fn directory(
        root: &Path,
        key: &SecretKey,
        options: &InvertedOptions,
    ) -> Result<EncryptedDirectory> {
        EncryptedDirectory::open_with(
            root,
            key,
            DirectoryOptions {
                cache_budget_bytes: options.cache_bytes,
                ..DirectoryOptions::default()
            },
        )
    }

    /// `Ok(None)` when there is no usable index of this format.
    fn try_open(
        root: &Path,
        key: &SecretKey,
        options: &InvertedOptions,
        docnos: Option<KeyOf>,
    ) -> Result<Option<Self>> {
        if !root.exists() {
            return Ok(None);
        }
        let directory = Self::directory(root, key, options)?;
        let exists = tantivy::Index::exists(&directory)
            .map_err(|e| tantivy_err("looking for the inverted index", e))?;
        if !exists {
            return Ok(None);
        }
        let index = catch_unwind(AssertUnwindSafe(|| tantivy::Index::open(directory.clone())))
            .map_err(|_| Error::Inverted("tantivy panicked opening the index".into()))?
            .map_err(|e| tantivy_err("opening the inverted index", e))?;
        let metas = index
            .load_metas()
            .map_err(|e| tantivy_err("reading the inverted index's metadata", e))?;
        let payload: Option<Payload> = metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok());
        let schema = schema_for(docnos.is_some());
        let format = format_of(&schema);
        match payload {
            Some(p) if p.format == format && same_schema(&index.schema(), schema.schema()) => {
                Self::assemble(
                    root,
                    schema,
                    index,
                    directory,
                    options.clone(),
                    p.generation,
                    docnos,
                )
                .map(Some)
            }
            other => {
                info!(
                    format = other.map(|p| p.format),
                    "the inverted index is of another format; rebuilding it"
                );
                Ok(None)
            }
        }
    }

    fn assemble(
        root: &Path,
        schema: IndexSchema,
        index: tantivy::Index,
        directory: EncryptedDirectory,
        options: InvertedOptions,
        generation: u64,
        docnos: Option<KeyOf>,
    ) -> Result<Self> {
        schema.register_tokenizer(&index);
        let reader = catch_unwind(AssertUnwindSafe(|| {
            index
                .reader_builder()
                .reload_policy(ReloadPolicy::Manual)
                .try_into()
        }))
        .map_err(|_| Error::Inverted("tantivy panicked opening a reader".into()))?
        .map_err(|e| tantivy_err("opening a reader", e))?;
        Ok(Inverted {
            root: root.to_path_buf(),
            schema,
            index,
            directory,
            reader,
            writing: Mutex::new(None),
            committed: AtomicU64::new(generation),
            applied: AtomicU64::new(NO_GENERATION),
            tail: Mutex::new(Vec::new()),
            broken: AtomicBool::new(false),
            in_step: AtomicBool::new(false),
            columns: ColumnCache::new(docnos),
            threads: SearchThreads::new(options.search_threads, SPLIT_MIN_DOCS),
            bulk: std::sync::atomic::AtomicUsize::new(0),
            bulk_base: Mutex::new(None),
            options,
        })
    }

    /// Bytes of decrypted chunks in the directory's cache.
    pub(crate) fn cached_bytes(&self) -> usize {
        self.directory.cached_bytes()
    }

    /// Whether the last commit reflects store generation `generation` and
    /// no read has failed since.
    pub(crate) fn is_current(&self, generation: u64) -> bool {
        !self.broken.load(Ordering::Acquire) && self.committed.load(Ordering::Acquire) == generation
    }

    /// Whether the index follows the store at generation `generation`:
    /// every batch up to it was applied (committed, or in the tail).
    pub(crate) fn is_following(&self, generation: u64) -> bool {
        !self.broken.load(Ordering::Acquire)
            && self.in_step.load(Ordering::Acquire)
            && self.applied.load(Ordering::Acquire) == generation
    }

    /// What a search reads: the committed index and the batches applied
    /// since, taken together so that a commit cannot fall between them.
    pub(crate) fn snapshot(&self) -> (tantivy::Searcher, Vec<Arc<TailBatch>>) {
        let tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        (self.reader.searcher(), tail.clone())
    }

    /// Whether a read failed authentication since the last rebuild.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// Number of documents in the last commit.
    pub(crate) fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Locks the writing state, opening tantivy's writer first if it is
    /// not open.
    fn lock_writing(&self) -> Result<WritingGuard<'_>> {
        let mut guard = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let threads = self.options.writer_threads.max(1);
            let writer = self
                .index
                .writer_with_options(
                    tantivy::indexer::IndexWriterOptions::builder()
                        .num_worker_threads(threads)
                        .memory_budget_per_thread(
                            (self.options.writer_bytes / threads).max(15_000_000),
                        )
                        .num_merge_threads(self.options.merge_threads.max(1))
                        .build(),
                )
                .map_err(|e| tantivy_err("opening the inverted index's writer", e))?;
            *guard = Some(Writing {
                writer,
                pending: 0,
                pending_bytes: 0,
                since: Instant::now(),
                generation: self.committed.load(Ordering::Acquire),
                uncommitted: std::collections::HashSet::new(),
            });
        }
        Ok(WritingGuard(guard))
    }

    /// Marks an indexing run in progress until the returned guard drops:
    /// meanwhile, commits wait for [`BULK_COMMIT_DOCS`] records or
    /// [`BULK_COMMIT_BYTES`], not for [`COMMIT_DOCS`] or
    /// [`COMMIT_INTERVAL`].
    ///
    /// Why: every commit ends each indexing thread's segment, and tantivy's
    /// merge policy then merges the small segments again and again as
    /// more arrive; in a bulk run that is most of the index's work
    /// (`bench-notes/indexing-profile.md`). Nothing is weakened: the store
    /// is durable batch by batch whatever the inverted index does,
    /// searches read the uncommitted batches from the tail, and a crash
    /// costs a catch-up of at most one commit's records. The bounds keep
    /// the tail's memory and a search's scan of it in check; the time
    /// bound is left out because it made the commits (and so the segments
    /// and merges) follow the machine's speed: a slow or loaded device
    /// committed more often, and paid more for it. The run's end commits
    /// (`Index::index_with` waits for the index).
    ///
    /// With fewer commits, tantivy's merge policy (which merges eight
    /// segments of a size) leaves a run's few large segments unmerged, and
    /// each keeps its own term dictionary: ChitChat's index grew by 4.5%.
    /// So when the last run ends, the segments it made are merged into one,
    /// in the background, once they are [`BULK_MERGE_MIN_SEGMENTS`] or more
    /// (a short sync run makes one or two and merges nothing). Drop the
    /// guard after the run's last commit.
    pub(crate) fn bulk(&self) -> Bulk<'_> {
        if self.bulk.fetch_add(1, Ordering::AcqRel) == 0 {
            let base = self.index.searchable_segment_ids().ok();
            *self.bulk_base.lock().unwrap_or_else(|p| p.into_inner()) =
                base.map(|ids| ids.into_iter().collect());
        }
        Bulk(self)
    }

    /// Merges the segments the bulk runs made (see [`bulk`](Self::bulk)).
    fn end_bulk(&self) {
        let Some(base) = self
            .bulk_base
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let mut guard = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(w) = guard.as_mut() else { return };
        let Ok(metas) = self.index.searchable_segment_metas() else {
            return;
        };
        let made: Vec<_> = metas.iter().filter(|m| !base.contains(&m.id())).collect();
        let docs: u64 = made.iter().map(|m| u64::from(m.num_docs())).sum();
        if made.len() >= BULK_MERGE_MIN_SEGMENTS && docs <= BULK_MERGE_MAX_DOCS {
            let ids: Vec<_> = made.iter().map(|m| m.id()).collect();
            debug!(
                segments = ids.len(),
                docs, "merging the segments of an indexing run"
            );
            // Runs on tantivy's merge thread; the writer's close waits for
            // it. A segment already in a merge makes it fail, harmlessly.
            drop(w.writer.merge(&ids));
        }
    }

    /// Adds one committed store batch (store generation `generation`);
    /// commits when enough has gathered.
    pub(crate) fn apply(
        &self,
        stored: &[Committed],
        deleted: &[DocKey],
        deleted_stamps: &[u64],
        generation: u64,
    ) -> Result<()> {
        let mut guard = self.lock_writing()?;
        let w = &mut *guard;
        for (i, key) in deleted.iter().enumerate() {
            let stamp = deleted_stamps.get(i).copied().unwrap_or(0);
            w.writer.delete_term(self.schema.id_term(key, stamp));
        }
        let searcher = self.reader.searcher();
        let in_step = self.in_step.load(Ordering::Acquire);
        let docnos = self.schema.has_docnos();
        for c in stored {
            if docnos {
                // The version it replaces has its own number: deleting it
                // needs no lookup, committed or not.
                if !c.new {
                    w.writer
                        .delete_term(self.schema.id_term(&c.key, c.previous));
                }
                w.writer
                    .add_document(self.schema.document(&c.key, c.stamp, &c.record))
                    .map_err(|e| tantivy_err("adding to the inverted index", e))?;
                continue;
            }
            // A delete costs tantivy a term query per segment at commit;
            // most stored records are new, so delete only what may exist:
            // a key added since the last commit, or one the searcher holds.
            // A key new to the store cannot be in the index (the index
            // follows the store), so it is not even looked up: at a million
            // records those lookups read the key dictionaries chunk by
            // chunk and filled the chunk cache while nobody searched.
            let term = self.schema.id_term(&c.key, 0);
            let first_since_commit = w.uncommitted.insert(c.key);
            let known_absent = c.new && in_step;
            if !first_since_commit
                || (!known_absent && searcher.doc_freq(&term).map_or(true, |n| n > 0))
            {
                w.writer.delete_term(term);
            }
            w.writer
                .add_document(self.schema.document(&c.key, c.stamp, &c.record))
                .map_err(|e| tantivy_err("adding to the inverted index", e))?;
        }
        w.pending += stored.len() + deleted.len();
        w.pending_bytes += stored
            .iter()
            .map(|c| c.record.text_len() + RECORD_OVERHEAD)
            .sum::<usize>();
        w.generation = generation;
        if !stored.is_empty() || !deleted.is_empty() {
            let batch = Arc::new(TailBatch::new(stored, deleted, deleted_stamps));
            self.tail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(batch);
        }
        if in_step {
            self.applied.store(generation, Ordering::Release);
        }
        let due = if self.bulk.load(Ordering::Acquire) > 0 {
            w.pending >= BULK_COMMIT_DOCS || w.pending_bytes >= BULK_COMMIT_BYTES
        } else {
            w.pending >= COMMIT_DOCS || w.since.elapsed() >= COMMIT_INTERVAL
        };
        if due {
            self.commit_locked(w)?;
        }
        Ok(())
    }

    /// Commits what is pending: every batch [`apply`](Self::apply) was given.
    ///
    /// With `generation`, the commit claims that store generation: the
    /// caller vouches that every change to the store's documents up to it
    /// went through `apply` (the pipeline also applies batches that hold
    /// only checkpoints or sync tokens, which the observer may not see).
    pub(crate) fn flush(&self, generation: Option<u64>) -> Result<()> {
        let claims_new = generation.is_some_and(|g| g != self.committed.load(Ordering::Acquire));
        let mut guard = if claims_new {
            self.lock_writing()?.0
        } else {
            self.writing.lock().unwrap_or_else(|p| p.into_inner())
        };
        if let Some(w) = guard.as_mut() {
            if let Some(g) = generation {
                w.generation = g;
            }
            if w.pending > 0 || self.committed.load(Ordering::Acquire) != w.generation {
                self.commit_locked(w)?;
            }
            if generation.is_some() {
                // The caller vouches that every change up to it went
                // through `apply`: the index holds the store's documents.
                self.in_step.store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Records that the index was found current with the store (at open,
    /// before anything else writes either).
    pub(crate) fn mark_in_step(&self) {
        self.in_step.store(true, Ordering::Release);
        self.applied
            .store(self.committed.load(Ordering::Acquire), Ordering::Release);
    }

    /// Closes the writer, if one is open: waits for merges in flight so that
    /// their files are either in the index or deleted (tantivy's writer,
    /// merely dropped, abandons them and leaves their files on disk until
    /// the next commit). What was not committed is discarded; the store
    /// still has it, and the next open catches up.
    pub(crate) fn close(&self) {
        let writing = self
            .writing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = writing
            && let Err(e) = w.writer.wait_merging_threads()
        {
            warn!(error = %e, "a merge of the inverted index failed; its files are removed later");
        }
    }

    /// Marks the index as not to be used until a rebuild.
    pub(crate) fn mark_broken(&self) {
        self.in_step.store(false, Ordering::Release);
        self.applied.store(NO_GENERATION, Ordering::Release);
        self.broken.store(true, Ordering::Release);
    }

    fn commit_locked(&self, w: &mut Writing) -> Result<()> {
        let payload = serde_json::to_string(&Payload {
            format: format_of(&self.schema),
            generation: w.generation,
        })
        .map_err(|e| tantivy_err("encoding the commit payload", e))?;
        let mut prepared = w
            .writer
            .prepare_commit()
            .map_err(|e| tantivy_err("preparing a commit", e))?;
        prepared.set_payload(&payload);
        prepared
            .commit()
            .map_err(|e| tantivy_err("committing the inverted index", e))?;
        {
            // The reader and the tail change together for searches.
            let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
            self.reader
                .reload()
                .map_err(|e| tantivy_err("reloading the inverted index", e))?;
            tail.clear();
        }
        self.forget_dead_columns();
        // The writer just dropped its in-memory segment, and merges since
        // the last commit freed theirs: give that back now, while the
        // resident size still tracks what is in use (see `allocator`).
        crate::allocator::release_freed_memory();
        debug!(
            docs = w.pending,
            generation = w.generation,
            "inverted index committed"
        );
        w.pending = 0;
        w.pending_bytes = 0;
        w.uncommitted.clear();
        w.since = Instant::now();
        self.committed.store(w.generation, Ordering::Release);
        Ok(())
    }

    /// Brings the index in step with the store by comparing envelope
    /// stamps (see the module docs); decrypts only what it must index.
    /// With `rebuild`, first drops everything and indexes every record.
    ///
    /// Setting `cancel` stops it between batches, committing nothing: the
    /// next catch-up starts over.
    pub(crate) fn catch_up(
        &self,
        store: &Store,
        rebuild: bool,
        cancel: &AtomicBool,
    ) -> Result<CatchUp> {
        let started = Instant::now();
        self.in_step.store(false, Ordering::Release);
        self.applied.store(NO_GENERATION, Ordering::Release);
        let generation = store.manifest()?.generation;
        let mut guard = self.lock_writing()?;
        let w = &mut *guard;
        let mut held: HashMap<DocKey, u64> = HashMap::new();
        let mut held_docnos: std::collections::HashSet<u64> = std::collections::HashSet::new();
        let docnos = self.schema.has_docnos();
        if rebuild {
            w.writer
                .delete_all_documents()
                .map_err(|e| tantivy_err("clearing the inverted index", e))?;
        } else if docnos {
            held_docnos = self.held_docnos()?;
        } else {
            held = self.held()?;
        }
        let mut report = CatchUp::default();
        // (key, whether the index holds an older version).
        let mut todo: Vec<(DocKey, bool)> = Vec::new();
        let add = |todo: &mut Vec<(DocKey, bool)>| -> Result<u64> {
            let keys: Vec<DocKey> = todo.iter().map(|t| t.0).collect();
            let replace: std::collections::HashSet<DocKey> =
                todo.iter().filter(|t| t.1).map(|t| t.0).collect();
            let read = store.read_many(&keys)?;
            let docs: Vec<(DocKey, TantivyDocument)> = read
                .par_iter()
                .map(|(key, stamp, record)| (*key, self.schema.document(key, *stamp, record)))
                .collect();
            for (key, doc) in docs {
                if replace.contains(&key) {
                    w.writer.delete_term(self.schema.id_term(&key, 0));
                }
                w.writer
                    .add_document(doc)
                    .map_err(|e| tantivy_err("adding to the inverted index", e))?;
            }
            let n = todo.len() as u64;
            todo.clear();
            Ok(n)
        };
        for (key, stamp) in store.stamps()? {
            // By document number, a replaced record has a new number: the
            // old one is among those left over below.
            if docnos && held_docnos.remove(&stamp) {
                continue;
            }
            let replace = match held.remove(&key) {
                Some(s) if s == stamp => continue,
                Some(_) => true,
                None => false,
            };
            todo.push((key, replace));
            if todo.len() == CATCH_UP_BATCH {
                if cancel.load(Ordering::Acquire) {
                    w.writer
                        .rollback()
                        .map_err(|e| tantivy_err("abandoning a catch-up", e))?;
                    return Ok(report);
                }
                report.indexed += add(&mut todo)?;
            }
        }
        report.indexed += add(&mut todo)?;
        for key in held.keys() {
            w.writer.delete_term(self.schema.id_term(key, 0));
            report.removed += 1;
        }
        for &d in &held_docnos {
            w.writer
                .delete_term(self.schema.id_term(&placeholder_key(), d));
            report.removed += 1;
        }
        w.pending += (report.indexed + report.removed) as usize;
        w.generation = generation;
        self.commit_locked(w)?;
        self.broken.store(false, Ordering::Release);
        self.in_step.store(true, Ordering::Release);
        self.applied.store(generation, Ordering::Release);
        info!(
            indexed = report.indexed,
            removed = report.removed,
            rebuild,
            ms = started.elapsed().as_millis() as u64,
            "inverted index caught up with the store"
        );
        Ok(report)
    }

    /// The document number of every live document (an index by document
    /// number).
    fn held_docnos(&self) -> Result<std::collections::HashSet<u64>> {
        let searcher = self.reader.searcher();
        let mut held = std::collections::HashSet::with_capacity(searcher.num_docs() as usize);
        for seg in searcher.segment_readers() {
            let col = seg
                .fast_fields()
                .u64(super::schema::DOCNO)
                .map_err(|e| tantivy_err("reading document numbers", e))?;
            let alive = seg.alive_bitset();
            for doc in 0..seg.max_doc() {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                if let Some(d) = col.first(doc) {
                    held.insert(d);
                }
            }
        }
        Ok(held)
    }

    /// `(key, stamp)` of every live document. A key held twice (which no
    /// commit produces) maps to stamp 0, so that it is indexed again.
    fn held(&self) -> Result<HashMap<DocKey, u64>> {
        let searcher = self.reader.searcher();
        let mut held = HashMap::with_capacity(searcher.num_docs() as usize);
        for seg in searcher.segment_readers() {
            let cols = KeyColumns::open(seg, None)?;
            let stamp = seg
                .fast_fields()
                .u64("stamp")
                .map_err(|e| tantivy_err("reading stamps", e))?;
            let alive = seg.alive_bitset();
            for doc in 0..seg.max_doc() {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                let Some(key) = cols.key(doc) else { continue };
                let s = stamp.first(doc).unwrap_or(0);
                if held.insert(key, s).is_some() {
                    held.insert(key, 0);
                }
            }
        }
        Ok(held)
    }

    /// Runs a plan; every match with its date, key and (when `scored`)
    /// BM25 score. A failed read marks the index broken.
    ///
    /// With a `window` (newest-first order only), only the matches that can
    /// be on the page are returned: the newest `limit + 1` after the cursor,
    /// with every record that ties the last of them in date; the count is
    /// still of all matches. Only those have their keys read.
    ///
    /// `searcher` is the committed index to read (from
    /// [`snapshot`](Self::snapshot), or the current one), and the records
    /// under `exclude` are left out of it: the tail holds newer versions
    /// of them, or their deletes.
    pub(crate) fn search(
        &self,
        plan: &Plan,
        scored: bool,
        window: Option<Window>,
        searcher: Option<&tantivy::Searcher>,
        exclude: &[DocKey],
        exclude_stamps: &[u64],
    ) -> Result<(usize, Vec<Matched>)> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let current;
            let searcher = match searcher {
                Some(s) => s,
                None => {
                    current = self.reader.searcher();
                    &current
                }
            };
            let mut query: Box<dyn TQuery> = compile_plan(plan, &self.schema, searcher, scored);
            let terms: Vec<tantivy::Term> = if self.schema.has_docnos() {
                exclude_stamps
                    .iter()
                    .filter(|&&d| d != 0)
                    .map(|&d| self.schema.id_term(&placeholder_key(), d))
                    .collect()
            } else {
                exclude.iter().map(|k| self.schema.id_term(k, 0)).collect()
            };
            if !terms.is_empty() {
                query = Box::new(tantivy::query::BooleanQuery::new(vec![
                    (tantivy::query::Occur::Must, query),
                    (
                        tantivy::query::Occur::MustNot,
                        Box::new(tantivy::query::TermSetQuery::new(terms)),
                    ),
                ]));
            }
            match window {
                Some(w) if !scored => self.threads.search(
                    searcher,
                    &*query,
                    &Newest {
                        window: w,
                        columns: &self.columns,
                    },
                ),
                _ => self
                    .threads
                    .search(
                        searcher,
                        &*query,
                        &AllFound {
                            scored,
                            columns: &self.columns,
                        },
                    )
                    .map(|f| (f.len(), f)),
            }
        }));
        match result {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => {
                self.mark_broken();
                Err(tantivy_err("searching the inverted index", e))
            }
            Err(_) => {
                self.mark_broken();
                Err(Error::Inverted("tantivy panicked during a search".into()))
            }
        }
    }
}

/// The committed state of an inverted index at one moment, for a snapshot
/// (see `sync::share`): its `meta.json` and its segment files, readable
/// piece by piece in plaintext.
///
/// Holding it keeps the files: tantivy's garbage collection spares the
/// files of every segment whose meta is alive, so a merge or a commit
/// after the cut does not delete what is still to be read.
pub(crate) struct InvertedExport {
    index: tantivy::Index,
    meta: tantivy::IndexMeta,
    /// The files, with their lengths.
    files: Vec<(String, u64)>,
}

impl std::fmt::Debug for InvertedExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvertedExport")
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

impl InvertedExport {
    /// The files (tantivy's names) and their lengths.
    pub(crate) fn files(&self) -> &[(String, u64)] {
        &self.files
    }

    /// The index's `meta.json`, without this device's commit payload.
    pub(crate) fn meta_json(&self) -> Result<Vec<u8>> {
        let mut meta = self.meta.clone();
        meta.payload = None;
        serde_json::to_vec(&meta).map_err(|e| tantivy_err("encoding the index's metadata", e))
    }

    /// `len` bytes of file `name` from `offset`, decrypted.
    pub(crate) fn read(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        use tantivy::directory::Directory as _;
        let slice = self
            .index
            .directory()
            .open_read(Path::new(name))
            .map_err(|e| tantivy_err("opening an index file to send", e))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(len).min(slice.len());
        let bytes = slice
            .read_bytes_slice(start.min(end)..end)
            .map_err(|e| tantivy_err("reading an index file to send", e))?;
        Ok(bytes.as_slice().to_vec())
    }
}

/// Whether `name` is the name of a segment file (`<32 hex>.<ext>` or
/// `<32 hex>.<opstamp>.del`): what an installed snapshot may write, never
/// `meta.json`, the managed list or a lock.
fn is_segment_file(name: &str) -> bool {
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    let stem_ok = stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit());
    let ext_ok = match ext.strip_suffix(".del") {
        Some(opstamp) => !opstamp.is_empty() && opstamp.bytes().all(|b| b.is_ascii_digit()),
        None => !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_lowercase()),
    };
    stem_ok && ext_ok
}

impl Inverted {
    /// Drops the cached columns of segments the reader no longer has
    /// (merged away, or replaced by a peer's index).
    fn forget_dead_columns(&self) {
        let live = self
            .reader
            .searcher()
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        self.columns.retain(&live);
    }

    /// The committed index as it is now, for a snapshot. The caller makes
    /// sure the last commit holds what it wants to send (the index writer
    /// lock held, the index flushed).
    pub(crate) fn export(&self) -> Result<InvertedExport> {
        use tantivy::directory::Directory as _;
        let meta = self
            .index
            .load_metas()
            .map_err(|e| tantivy_err("reading the inverted index's metadata", e))?;
        let mut names: Vec<std::path::PathBuf> = meta.list_segment_files().into_iter().collect();
        names.sort();
        let mut files = Vec::with_capacity(names.len());
        for path in names {
            // The list names every component a segment may have (a
            // segment without deletes has no `.del` file).
            let Ok(slice) = self.index.directory().open_read(&path) else {
                continue;
            };
            let Some(name) = path.to_str() else { continue };
            files.push((name.to_owned(), slice.len() as u64));
        }
        Ok(InvertedExport {
            index: self.index.clone(),
            meta,
            files,
        })
    }

    /// Replaces the whole index with a peer's (`meta_json` and its segment
    /// files, in plaintext), written through this device's encrypted
    /// directory, so under this device's key. The new index claims no
    /// store generation: the caller catches it up with the store at once
    /// (the peer's segments may hold records this store does not, and
    /// miss some it does), and a crash before that catches up at open.
    ///
    /// Refuses (before writing anything) a meta of another schema, and
    /// file names that are not a segment's.
    pub(crate) fn install(&self, meta_json: &[u8], files: &[(String, Vec<u8>)]) -> Result<()> {
        use std::io::Write as _;
        use tantivy::directory::{Directory as _, TerminatingWrite as _};
        let mut meta: serde_json::Value = serde_json::from_slice(meta_json)
            .map_err(|e| tantivy_err("reading a peer's index metadata", e))?;
        let ours = serde_json::to_value(self.schema.schema())
            .map_err(|e| tantivy_err("encoding the schema", e))?;
        if meta.get("schema") != Some(&ours) {
            return Err(Error::Inverted(
                "a peer's inverted index has another schema; it is rebuilt from the store instead"
                    .into(),
            ));
        }
        if let Some(bad) = files.iter().find(|(n, _)| !is_segment_file(n)) {
            return Err(Error::Inverted(format!(
                "a peer's inverted index names a file {:?} that is no segment file",
                bad.0
            )));
        }
        let payload = serde_json::to_string(&Payload {
            format: format_of(&self.schema),
            generation: NO_GENERATION,
        })
        .map_err(|e| tantivy_err("encoding the commit payload", e))?;
        if let Some(m) = meta.as_object_mut() {
            m.insert("payload".into(), serde_json::Value::String(payload));
        }
        let meta_bytes =
            serde_json::to_vec_pretty(&meta).map_err(|e| tantivy_err("encoding metadata", e))?;
        let mut guard = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        // The writer goes first: it holds the lock file, and its merges
        // must not commit over the new meta.
        if let Some(w) = guard.take()
            && let Err(e) = w.writer.wait_merging_threads()
        {
            warn!(error = %e, "a merge of the inverted index failed while installing a peer's");
        }
        self.in_step.store(false, Ordering::Release);
        self.applied.store(NO_GENERATION, Ordering::Release);
        self.committed.store(NO_GENERATION, Ordering::Release);
        let directory = self.index.directory();
        for (name, bytes) in files {
            let path = Path::new(name);
            // Written through the managed directory, so that tantivy
            // deletes them once a merge makes them obsolete.
            let mut w = directory
                .open_write(path)
                .map_err(|e| tantivy_err("writing a peer's index file", e))?;
            w.write_all(bytes)
                .map_err(|e| tantivy_err("writing a peer's index file", e))?;
            w.flush()
                .map_err(|e| tantivy_err("writing a peer's index file", e))?;
            w.terminate()
                .map_err(|e| tantivy_err("writing a peer's index file", e))?;
        }
        directory
            .atomic_write(Path::new("meta.json"), &meta_bytes)
            .map_err(|e| tantivy_err("writing the index's metadata", e))?;
        {
            let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
            let reloaded = catch_unwind(AssertUnwindSafe(|| self.reader.reload()));
            match reloaded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.mark_broken();
                    return Err(tantivy_err("opening a peer's inverted index", e));
                }
                Err(_) => {
                    self.mark_broken();
                    return Err(Error::Inverted(
                        "tantivy panicked opening a peer's inverted index".into(),
                    ));
                }
            }
            tail.clear();
        }
        self.forget_dead_columns();
        self.broken.store(false, Ordering::Release);
        info!(files = files.len(), "installed a peer's inverted index");
        Ok(())
    }
}

/// Whether two schemas are the same, as tantivy writes them (a schema read
/// back from `meta.json` may differ from a built one in defaults that the
/// file leaves out, so compare the written forms).
fn same_schema(a: &tantivy::schema::Schema, b: &tantivy::schema::Schema) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The schema of an index by document number or by key.
fn schema_for(docnos: bool) -> IndexSchema {
    if docnos {
        IndexSchema::with_docnos()
    } else {
        IndexSchema::new()
    }
}

/// The format an index of `schema` is committed with.
fn format_of(schema: &IndexSchema) -> u32 {
    if schema.has_docnos() {
        FORMAT_DOCNOS
    } else {
        FORMAT
    }
}

/// A key for [`IndexSchema::id_term`] in an index by document number,
/// which names records by their number only.
fn placeholder_key() -> DocKey {
    DocKey::from_bytes(&[b'D'; 33]).unwrap_or_else(|| unreachable!("a well-formed key"))
}

/// How one segment's documents resolve to keys: the key's four fast
/// columns, or the document number and the store's map.
#[derive(Clone)]
enum KeyColumns {
    Words(Box<[Column<u64>; 4]>),
    Docno(Column<u64>, KeyOf),
}

impl KeyColumns {
    fn open(seg: &SegmentReader, docnos: Option<&KeyOf>) -> Result<Self> {
        let ff = seg.fast_fields();
        let col = |name: &str| {
            ff.u64(name)
                .map_err(|e| tantivy_err("reading the key columns", e))
        };
        if let Some(key_of) = docnos {
            return Ok(KeyColumns::Docno(
                col(super::schema::DOCNO)?,
                Arc::clone(key_of),
            ));
        }
        Ok(KeyColumns::Words(Box::new([
            col(KEY_WORDS[0])?,
            col(KEY_WORDS[1])?,
            col(KEY_WORDS[2])?,
            col(KEY_WORDS[3])?,
        ])))
    }

    fn key(&self, doc: DocId) -> Option<DocKey> {
        let mut key = None;
        self.each_key(&[doc], |_, k, _| key = Some(k));
        key
    }

    /// Calls `found(i, key, docno)` for each `docs[i]` whose key resolves,
    /// in order, with its document number (0 in an index by key):
    /// resolved together, so that an index by document number takes the
    /// store's lock once per segment and finds each block once, not once
    /// per hit.
    ///
    /// A callback rather than a list: an all-hits search of a broad chat
    /// query resolves hundreds of thousands of documents, and every
    /// intermediate list of them was another pass over fresh memory
    /// (`bench-notes/query-run12.md`).
    fn each_key(&self, docs: &[DocId], mut found: impl FnMut(usize, DocKey, u64)) {
        match self {
            KeyColumns::Words(words) => {
                let [a, b, c, d] = &**words;
                for (i, &doc) in docs.iter().enumerate() {
                    if let [Some(w0), Some(w1), Some(w2), Some(w3)] =
                        [a.first(doc), b.first(doc), c.first(doc), d.first(doc)]
                    {
                        found(i, key_from_words([w0, w1, w2, w3]), 0);
                    }
                }
            }
            KeyColumns::Docno(col, key_of) => {
                let mut docnos = vec![None; docs.len()];
                col.first_vals(docs, &mut docnos);
                let docnos: Vec<u64> = docnos.into_iter().map(|d| d.unwrap_or(0)).collect();
                for (i, (k, d)) in key_of(&docnos).into_iter().zip(&docnos).enumerate() {
                    if let Some(k) = k {
                        found(i, k, *d);
                    }
                }
            }
        }
    }
}

/// What page of a newest-first list a search is for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Hits on the page.
    pub limit: usize,
    /// Only matches after this `(date, key)` in newest-first order.
    pub after: Option<(Option<i64>, DocKey)>,
}

/// Newest-first order of a date as one integer: smaller is newer, undated
/// last (the date part of [`newest_first`](crate::cache::newest_first),
/// compared in one instruction).
fn order_key(ts: Option<i64>) -> u64 {
    match ts {
        // i64::MAX - t, for t > i64::MIN: 0 ..= u64::MAX - 1.
        Some(t) => (i128::from(i64::MAX) - i128::from(t)).clamp(0, i128::from(u64::MAX - 1)) as u64,
        None => u64::MAX,
    }
}

/// Collects the matches that can be on one newest-first page.
struct Newest<'a> {
    window: Window,
    columns: &'a ColumnCache,
}

struct NewestSegment {
    window: Window,
    keys: KeyColumns,
    date: Column<i64>,
    /// The newest date of each block of records (see [`NewestPerBlock`]).
    newest: NewestPerBlock,
    total: usize,
    /// `(date, doc)` of matches after the cursor that may be on the page.
    candidates: Vec<(Option<i64>, DocId)>,
    /// Once `candidates` has been cut down to a page: the [`order_key`]
    /// of the oldest match kept (before, `u64::MAX`: no bound). At least a
    /// page of matches is this new or newer, so an older match cannot be on
    /// the page and is only counted.
    bound: u64,
    /// How many candidates to gather before cutting them down again.
    cap: usize,
}

impl Collector for Newest<'_> {
    type Fruit = (usize, Vec<Matched>);
    type Child = NewestSegment;

    fn for_segment(&self, _ord: u32, seg: &SegmentReader) -> tantivy::Result<NewestSegment> {
        let SegmentColumns { keys, date, newest } = self.columns.get(seg)?;
        Ok(NewestSegment {
            window: self.window,
            keys,
            date,
            newest,
            total: 0,
            candidates: Vec::new(),
            bound: u64::MAX,
            // Cutting costs a selection over the candidates: amortised, a
            // few comparisons per match, where keeping every match of a
            // broad query cost a push and its memory traffic per match.
            cap: self
                .window
                .limit
                .saturating_add(1)
                .saturating_mul(4)
                .max(256),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<(usize, Vec<Matched>)>,
    ) -> tantivy::Result<(usize, Vec<Matched>)> {
        let total = fruits.iter().map(|f| f.0).sum();
        let mut all: Vec<Matched> = fruits.into_iter().flat_map(|f| f.1).collect();
        keep_page(&mut all, self.window.limit, |f| f.timestamp);
        Ok((total, all))
    }
}

/// Keeps the newest `limit + 1` items and every item that ties the last of
/// them in date (the key decides among those later).
fn keep_page<T>(items: &mut Vec<T>, limit: usize, ts: impl Fn(&T) -> Option<i64>) {
    let keep = limit.saturating_add(1);
    if items.len() <= keep {
        return;
    }
    items.select_nth_unstable_by_key(keep - 1, |x| order_key(ts(x)));
    let boundary = order_key(ts(&items[keep - 1]));
    items.retain(|x| order_key(ts(x)) <= boundary);
}

impl SegmentCollector for NewestSegment {
    type Fruit = (usize, Vec<Matched>);

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.total += 1;
        self.consider(doc);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.total += docs.len();
        for &doc in docs {
            self.consider(doc);
        }
    }

    fn harvest(mut self) -> (usize, Vec<Matched>) {
        keep_page(&mut self.candidates, self.window.limit, |c| c.0);
        let docs: Vec<DocId> = self.candidates.iter().map(|c| c.1).collect();
        let mut found = Vec::with_capacity(docs.len());
        let candidates = &self.candidates;
        self.keys.each_key(&docs, |i, key, docno| {
            found.push(Matched {
                key,
                timestamp: candidates[i].0,
                score: 0.0,
                docno,
            });
        });
        (self.total, found)
    }
}

impl NewestSegment {
    /// Keeps `doc` as a candidate if it can be on the page.
    fn consider(&mut self, doc: DocId) {
        // No record of this block is new enough: skip reading the date.
        if self.newest.block_key(doc) > self.bound {
            return;
        }
        let ts = self.date.first(doc).filter(|&t| t != UNDATED);
        let key = order_key(ts);
        if key > self.bound {
            return;
        }
        if let Some((cts, ckey)) = self.window.after {
            match key.cmp(&order_key(cts)) {
                std::cmp::Ordering::Less => return,
                std::cmp::Ordering::Equal => {
                    if self.keys.key(doc).is_none_or(|k| k <= ckey) {
                        return;
                    }
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        self.candidates.push((ts, doc));
        if self.candidates.len() >= self.cap {
            keep_page(&mut self.candidates, self.window.limit, |c| c.0);
            self.bound = self
                .candidates
                .iter()
                .map(|c| order_key(c.0))
                .max()
                .unwrap_or(u64::MAX);
            // Ties with the oldest kept all stay; should they fill the
            // buffer, grow it so that cutting stays amortised.
            self.cap = self.cap.max(self.candidates.len().saturating_mul(2));
        }
    }
}

/// Records per block of [`NewestPerBlock`], as a shift.
const BLOCK_SHIFT: u32 = 8;

/// The [`order_key`] of the newest record of each block of 256 records of
/// a segment.
///
/// Why: a newest-first page of a broad query (`the`, 939k of a million
/// records) read every match's date to compare it with the page's oldest.
/// Once a page is full, a block whose newest date is older than the page
/// cannot contribute, so its matches are only counted. Deleted records
/// count in the maxima, which keeps them upper bounds.
#[derive(Clone)]
struct NewestPerBlock(Arc<[u64]>);

impl NewestPerBlock {
    fn compute(date: &Column<i64>, max_doc: DocId) -> Self {
        let block = 1usize << BLOCK_SHIFT;
        let mut docs: Vec<DocId> = Vec::with_capacity(block);
        let mut vals: Vec<Option<i64>> = vec![None; block];
        let mut out = Vec::with_capacity((max_doc as usize).div_ceil(block));
        let mut start: DocId = 0;
        while start < max_doc {
            let end = start.saturating_add(block as DocId).min(max_doc);
            docs.clear();
            docs.extend(start..end);
            let vals = &mut vals[..docs.len()];
            vals.fill(None);
            date.first_vals(&docs, vals);
            let newest = vals.iter().flatten().copied().max().unwrap_or(UNDATED);
            out.push(order_key(Some(newest).filter(|&t| t != UNDATED)));
            start = end;
        }
        NewestPerBlock(out.into())
    }

    /// The order key of the newest record in `doc`'s block (0, the
    /// newest possible, for a record past the blocks: never skipped).
    fn block_key(&self, doc: DocId) -> u64 {
        self.0
            .get((doc >> BLOCK_SHIFT) as usize)
            .copied()
            .unwrap_or(0)
    }
}

/// The columns a collector reads for each hit, of one segment.
#[derive(Clone)]
struct SegmentColumns {
    keys: KeyColumns,
    date: Column<i64>,
    newest: NewestPerBlock,
}

/// Each live segment's columns, opened once rather than on every search:
/// opening them reads their headers through the encrypted directory, a
/// fixed cost per segment and query that dominated searches with few hits.
struct ColumnCache(
    Mutex<HashMap<tantivy::index::SegmentId, SegmentColumns>>,
    Option<KeyOf>,
);

impl ColumnCache {
    fn new(docnos: Option<KeyOf>) -> Self {
        ColumnCache(Mutex::new(HashMap::new()), docnos)
    }

    fn get(&self, seg: &SegmentReader) -> tantivy::Result<SegmentColumns> {
        let id = seg.segment_id();
        if let Some(c) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(c.clone());
        }
        let date = seg.fast_fields().i64("date")?;
        let cols = SegmentColumns {
            keys: KeyColumns::open(seg, self.1.as_ref())
                .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?,
            newest: NewestPerBlock::compute(&date, seg.max_doc()),
            date,
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, cols.clone());
        Ok(cols)
    }

    /// Forgets segments that are no longer live.
    fn retain(&self, live: &std::collections::HashSet<tantivy::index::SegmentId>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|id, _| live.contains(id));
    }
}

/// Collects every match with its date and key.
struct AllFound<'a> {
    columns: &'a ColumnCache,
    scored: bool,
}

struct AllFoundSegment {
    keys: KeyColumns,
    date: Column<i64>,
    /// Whether scores are kept (relevance order); unscored, `scores`
    /// stays empty and every match scores 0.
    scored: bool,
    /// Each match's document and score; keys and dates are read at the
    /// end, together.
    docs: Vec<DocId>,
    scores: Vec<Score>,
}

impl Collector for AllFound<'_> {
    type Fruit = Vec<Matched>;
    type Child = AllFoundSegment;

    fn for_segment(&self, _ord: u32, seg: &SegmentReader) -> tantivy::Result<AllFoundSegment> {
        let SegmentColumns { keys, date, .. } = self.columns.get(seg)?;
        Ok(AllFoundSegment {
            keys,
            date,
            scored: self.scored,
            docs: Vec::new(),
            scores: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scored
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Matched>>) -> tantivy::Result<Vec<Matched>> {
        // The first segment's list is grown rather than copied: a broad
        // query's lists are megabytes.
        let total: usize = fruits.iter().map(Vec::len).sum();
        let mut fruits = fruits.into_iter();
        let mut all = fruits.next().unwrap_or_default();
        all.reserve(total - all.len());
        for f in fruits {
            all.extend(f);
        }
        Ok(all)
    }
}

impl SegmentCollector for AllFoundSegment {
    type Fruit = Vec<Matched>;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.docs.push(doc);
        if self.scored {
            self.scores.push(score);
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.docs.extend_from_slice(docs);
        if self.scored {
            self.scores.resize(self.docs.len(), 0.0);
        }
    }

    fn harvest(self) -> Vec<Matched> {
        let mut dates = vec![None; self.docs.len()];
        self.date.first_vals(&self.docs, &mut dates);
        let mut found = Vec::with_capacity(self.docs.len());
        let scores = &self.scores;
        self.keys.each_key(&self.docs, |i, key, docno| {
            found.push(Matched {
                key,
                timestamp: dates[i].filter(|&t| t != UNDATED),
                score: scores.get(i).copied().unwrap_or(0.0),
                docno,
            });
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes([9; 32])
    }

    /// An index whose commit names another format is started over, empty,
    /// instead of being used or failing.
    #[test]
    fn another_format_is_started_over() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("inverted");
        {
            let inv = Inverted::open(&root, &key(), InvertedOptions::default(), None).unwrap();
            let mut guard = inv.lock_writing().unwrap();
            let w = &mut *guard;
            w.generation = 7;
            inv.commit_locked(w).unwrap();
        }
        {
            let inv = Inverted::open(&root, &key(), InvertedOptions::default(), None).unwrap();
            assert!(inv.is_current(7), "same format: kept");
            let mut guard = inv.lock_writing().unwrap();
            let mut prepared = guard.writer.prepare_commit().unwrap();
            prepared.set_payload(r#"{"format":0,"generation":9}"#);
            prepared.commit().unwrap();
        }
        let inv = Inverted::open(&root, &key(), InvertedOptions::default(), None).unwrap();
        assert!(!inv.is_current(9), "an old format is not used");
        assert!(!inv.is_current(7));
        assert_eq!(inv.num_docs(), 0);
    }

    /// The newest-first collector cuts its candidates and skips blocks
    /// whose newest record is older than the page: on segments of
    /// thousands of records, with many ties, undated records and dates in
    /// every order, it must keep exactly what keeping every match keeps.
    #[test]
    fn pruned_page_collection_keeps_what_a_full_sort_keeps() {
        for pattern in 0..5 {
            check_page_collection(pattern);
        }
    }

    /// One index of two segments whose dates follow `pattern`, checked
    /// for several page sizes and cursors.
    fn check_page_collection(pattern: u32) {
        use crate::record::Record;
        use tantivy::query::TermQuery;
        use tantivy::schema::IndexRecordOption;

        let schema = IndexSchema::new();
        let index = tantivy::Index::create_in_ram(schema.schema().clone());
        schema.register_tokenizer(&index);
        let mut writer: IndexWriter<TantivyDocument> =
            index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        let mut seed = 0x2545_f491_4f6c_dd1d_u64 + u64::from(pattern);
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // (date, key) of every match.
        let mut hits: Vec<(Option<i64>, DocKey)> = Vec::new();
        for _segment in 0..2 {
            for i in 0..2_500u32 {
                let r = next();
                let timestamp = match pattern {
                    // Ascending: every match is newer than the page so far.
                    0 => Some(i64::from(i / 3)),
                    // Descending: the page is full at once.
                    1 => Some(10_000 - i64::from(i)),
                    // Few distinct dates: ties across every block.
                    2 => Some((r % 7) as i64 * 1_000),
                    // Mostly undated: the page reaches undated records.
                    3 => (r % 9 == 0).then_some((r % 5_000) as i64),
                    _ => Some((r % 100_000) as i64),
                };
                let matches = r % 11 != 0;
                let mut mac = [0u8; 32];
                mac[..8].copy_from_slice(&next().to_be_bytes());
                let key = DocKey::from_mac(mac);
                let record = Record {
                    body: if matches { "w".into() } else { "z".into() },
                    timestamp,
                    ..Record::default()
                };
                writer
                    .add_document(schema.document(&key, 0, &record))
                    .unwrap();
                if matches {
                    hits.push((timestamp, key));
                }
            }
            writer.commit().unwrap();
        }
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 2);
        let query = TermQuery::new(
            tantivy::Term::from_field_text(schema.text_field(crate::record::Field::Body), "w"),
            IndexRecordOption::Basic,
        );
        let columns = ColumnCache::new(None);
        hits.sort_by_key(|h| (order_key(h.0), h.1));
        let cursors = [
            None,
            Some(hits[0]),
            Some(hits[500]),
            Some(hits[hits.len() / 2]),
        ];
        // Both segments on one thread, and side by side on two.
        let split = SearchThreads::new(2, 0);
        let scored = AllFound {
            scored: true,
            columns: &columns,
        };
        let by_key = |mut v: Vec<Matched>| {
            v.sort_by_key(|m| m.key);
            v.into_iter()
                .map(|m| (m.key, m.timestamp, m.score.to_bits()))
                .collect::<Vec<_>>()
        };
        let all = by_key(searcher.search(&query, &scored).unwrap());
        assert_eq!(all.len(), hits.len());
        // 5,000 records are too few to split: no thread is started.
        let small = SearchThreads::new(2, SPLIT_MIN_DOCS);
        assert_eq!(
            by_key(small.search(&searcher, &query, &scored).unwrap()),
            all
        );
        assert!(!small.started());
        assert_eq!(
            by_key(split.search(&searcher, &query, &scored).unwrap()),
            all
        );
        for limit in [0, 1, 10, 300, 1_000] {
            for after in cursors {
                let window = Window { limit, after };
                let newest = Newest {
                    window,
                    columns: &columns,
                };
                let (total, got) = searcher.search(&query, &newest).unwrap();
                let (split_total, split_got) = split.search(&searcher, &query, &newest).unwrap();
                assert_eq!(total, hits.len());
                assert_eq!(split_total, total);
                let in_order = |found: Vec<Matched>| {
                    let mut v: Vec<(Option<i64>, DocKey)> =
                        found.iter().map(|m| (m.timestamp, m.key)).collect();
                    v.sort_by_key(|h| (order_key(h.0), h.1));
                    v
                };
                let got = in_order(got);
                assert!(
                    in_order(split_got) == got,
                    "split search, pattern {pattern}, limit {limit}"
                );
                let mut expected: Vec<(Option<i64>, DocKey)> = hits
                    .iter()
                    .filter(|h| {
                        after.is_none_or(|(ts, k)| (order_key(h.0), h.1) > (order_key(ts), k))
                    })
                    .copied()
                    .collect();
                keep_page(&mut expected, limit, |h| h.0);
                expected.sort_by_key(|h| (order_key(h.0), h.1));
                assert_eq!(
                    got.len(),
                    expected.len(),
                    "pattern {pattern}, limit {limit}, after {after:?}"
                );
                assert!(got == expected, "pattern {pattern}, limit {limit}");
            }
        }
    }

    /// The one-integer order key sorts dates exactly as the crate's
    /// newest-first order does.
    #[test]
    fn order_key_sorts_newest_first() {
        let k = DocKey::from_mac([7; 32]);
        let values = [
            None,
            Some(i64::MIN + 1),
            Some(-1),
            Some(0),
            Some(1),
            Some(1_700_000_000),
            Some(i64::MAX - 1),
            Some(i64::MAX),
        ];
        for a in values {
            for b in values {
                assert_eq!(
                    order_key(a).cmp(&order_key(b)),
                    crate::cache::newest_first((a, &k), (b, &k)),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    /// A key that does not open the files: started over, not an error.
    #[test]
    fn another_key_is_started_over() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("inverted");
        {
            let inv = Inverted::open(&root, &key(), InvertedOptions::default(), None).unwrap();
            inv.flush(Some(3)).unwrap();
            assert!(inv.is_current(3));
        }
        let other = SecretKey::from_bytes([8; 32]);
        let inv = Inverted::open(&root, &other, InvertedOptions::default(), None).unwrap();
        assert!(!inv.is_current(3));
    }
}
