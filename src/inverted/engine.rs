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
//! [`COMMIT_DOCS`] records or [`COMMIT_INTERVAL`], whichever comes first,
//! and at the end of a run), and each one is durable (the encrypted
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
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::Query as TQuery;
use tantivy::{
    DocId, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, TantivyDocument,
};
use tracing::{debug, info, warn};

use super::directory::{DirectoryOptions, EncryptedDirectory};
use super::query::compile_plan;
use super::schema::{IndexSchema, KEY_WORDS, key_from_words};
use crate::error::{Error, Result};
use crate::keys::SecretKey;
use crate::pipeline::Committed;
use crate::query::plan::Plan;
use crate::seal;
use crate::store::{DocKey, Store};

/// The inverted index's format. Bump it with any change to the schema, the
/// tokenizer, or the tantivy version's file format: an index of another
/// format is rebuilt from the store.
pub const FORMAT: u32 = 1;

/// Records buffered before a commit.
pub const COMMIT_DOCS: usize = 20_000;

/// Longest time a committed store batch waits for its inverted commit.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(2);

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
}

impl Default for InvertedOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 2);
        InvertedOptions {
            cache_bytes: super::directory::DEFAULT_CACHE_BUDGET,
            writer_bytes: 64 << 20,
            writer_threads: threads,
        }
    }
}

/// The payload of every commit.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    format: u32,
    generation: u64,
}

/// A match, before ordering.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    pub key: DocKey,
    pub timestamp: Option<i64>,
    pub score: f32,
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
    since: Instant,
    /// Store generation of the last applied batch.
    generation: u64,
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
    pub(crate) fn open(root: &Path, key: &SecretKey, options: InvertedOptions) -> Result<Self> {
        match Self::try_open(root, key, &options) {
            Ok(Some(inv)) => return Ok(inv),
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "the inverted index does not open; rebuilding it from the store")
            }
        }
        if root.exists() {
            std::fs::remove_dir_all(root).map_err(|e| Error::io(root, e))?;
        }
        let schema = IndexSchema::new();
        let directory = Self::directory(root, key, &options)?;
        let index = tantivy::Index::create(
            directory.clone(),
            schema.schema().clone(),
            tantivy::IndexSettings::default(),
        )
        .map_err(|e| tantivy_err("creating the inverted index", e))?;
        Self::assemble(root, schema, index, directory, options, NO_GENERATION)
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
    fn try_open(root: &Path, key: &SecretKey, options: &InvertedOptions) -> Result<Option<Self>> {
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
        let schema = IndexSchema::new();
        match payload {
            Some(p) if p.format == FORMAT && index.schema() == *schema.schema() => Self::assemble(
                root,
                schema,
                index,
                directory,
                options.clone(),
                p.generation,
            )
            .map(Some),
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
            options,
            writing: Mutex::new(None),
            committed: AtomicU64::new(generation),
            broken: AtomicBool::new(false),
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

    /// Whether a read failed authentication since the last rebuild.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// Number of documents in the last commit.
    pub(crate) fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn lock_writing(&self) -> Result<MutexGuard<'_, Option<Writing>>> {
        let mut guard = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let writer = self
                .index
                .writer_with_num_threads(
                    self.options.writer_threads.max(1),
                    self.options
                        .writer_bytes
                        .max(15_000_000 * self.options.writer_threads.max(1)),
                )
                .map_err(|e| tantivy_err("opening the inverted index's writer", e))?;
            *guard = Some(Writing {
                writer,
                pending: 0,
                since: Instant::now(),
                generation: self.committed.load(Ordering::Acquire),
            });
        }
        Ok(guard)
    }

    /// Adds one committed store batch (store generation `generation`);
    /// commits when enough has gathered.
    pub(crate) fn apply(
        &self,
        stored: &[Committed],
        deleted: &[DocKey],
        generation: u64,
    ) -> Result<()> {
        let mut guard = self.lock_writing()?;
        let Some(w) = guard.as_mut() else {
            return Ok(());
        };
        for key in deleted {
            w.writer.delete_term(self.schema.key_term(key));
        }
        for c in stored {
            w.writer.delete_term(self.schema.key_term(&c.key));
            w.writer
                .add_document(self.schema.document(&c.key, c.stamp, &c.record))
                .map_err(|e| tantivy_err("adding to the inverted index", e))?;
        }
        w.pending += stored.len() + deleted.len();
        w.generation = generation;
        if w.pending >= COMMIT_DOCS || w.since.elapsed() >= COMMIT_INTERVAL {
            self.commit_locked(w)?;
        }
        Ok(())
    }

    /// Commits what is pending: every batch [`apply`](Self::apply) was given.
    pub(crate) fn flush(&self) -> Result<()> {
        let mut guard = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = guard.as_mut()
            && (w.pending > 0 || self.committed.load(Ordering::Acquire) != w.generation)
        {
            self.commit_locked(w)?;
        }
        Ok(())
    }

    /// Marks the index as not to be used until a rebuild.
    pub(crate) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Release);
    }

    fn commit_locked(&self, w: &mut Writing) -> Result<()> {
        let payload = serde_json::to_string(&Payload {
            format: FORMAT,
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
        self.reader
            .reload()
            .map_err(|e| tantivy_err("reloading the inverted index", e))?;
        debug!(
            docs = w.pending,
            generation = w.generation,
            "inverted index committed"
        );
        w.pending = 0;
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
        let generation = store.manifest()?.generation;
        let mut guard = self.lock_writing()?;
        let Some(w) = guard.as_mut() else {
            return Ok(CatchUp::default());
        };
        let mut held: HashMap<DocKey, u64> = HashMap::new();
        if rebuild {
            w.writer
                .delete_all_documents()
                .map_err(|e| tantivy_err("clearing the inverted index", e))?;
        } else {
            held = self.held()?;
        }
        let mut report = CatchUp::default();
        let mut todo: Vec<(sled::IVec, sled::IVec)> = Vec::new();
        let add = |todo: &mut Vec<(sled::IVec, sled::IVec)>| -> Result<u64> {
            let docs: Result<Vec<(DocKey, TantivyDocument)>> = todo
                .par_iter()
                .map(|(k, v)| {
                    let key = DocKey::from_bytes(k)
                        .ok_or_else(|| Error::Corrupt("a document key of the wrong size".into()))?;
                    let record = store.open_record(k, v)?;
                    Ok((key, self.schema.document(&key, seal::stamp(v), &record)))
                })
                .collect();
            let docs = docs?;
            for (key, doc) in docs {
                w.writer.delete_term(self.schema.key_term(&key));
                w.writer
                    .add_document(doc)
                    .map_err(|e| tantivy_err("adding to the inverted index", e))?;
            }
            let n = todo.len() as u64;
            todo.clear();
            Ok(n)
        };
        for item in store.sealed_documents() {
            let (k, v) = item?;
            let Some(key) = DocKey::from_bytes(&k) else {
                return Err(Error::Corrupt("a document key of the wrong size".into()));
            };
            if held.remove(&key) == Some(seal::stamp(&v)) {
                continue;
            }
            todo.push((k, v));
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
            w.writer.delete_term(self.schema.key_term(key));
            report.removed += 1;
        }
        w.pending += (report.indexed + report.removed) as usize;
        w.generation = generation;
        self.commit_locked(w)?;
        self.broken.store(false, Ordering::Release);
        info!(
            indexed = report.indexed,
            removed = report.removed,
            rebuild,
            ms = started.elapsed().as_millis() as u64,
            "inverted index caught up with the store"
        );
        Ok(report)
    }

    /// `(key, stamp)` of every live document. A key held twice (which no
    /// commit produces) maps to stamp 0, so that it is indexed again.
    fn held(&self) -> Result<HashMap<DocKey, u64>> {
        let searcher = self.reader.searcher();
        let mut held = HashMap::with_capacity(searcher.num_docs() as usize);
        for seg in searcher.segment_readers() {
            let cols = KeyColumns::open(seg)?;
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
    pub(crate) fn search(&self, plan: &Plan, scored: bool) -> Result<Vec<Found>> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let searcher = self.reader.searcher();
            let query: Box<dyn TQuery> = compile_plan(plan, &self.schema, &searcher, scored);
            searcher.search(&*query, &AllFound { scored })
        }));
        match result {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) => {
                self.broken.store(true, Ordering::Release);
                Err(tantivy_err("searching the inverted index", e))
            }
            Err(_) => {
                self.broken.store(true, Ordering::Release);
                Err(Error::Inverted("tantivy panicked during a search".into()))
            }
        }
    }
}

/// The key's four fast columns of one segment.
struct KeyColumns([Column<u64>; 4]);

impl KeyColumns {
    fn open(seg: &SegmentReader) -> Result<Self> {
        let ff = seg.fast_fields();
        let col = |name: &str| {
            ff.u64(name)
                .map_err(|e| tantivy_err("reading the key columns", e))
        };
        Ok(KeyColumns([
            col(KEY_WORDS[0])?,
            col(KEY_WORDS[1])?,
            col(KEY_WORDS[2])?,
            col(KEY_WORDS[3])?,
        ]))
    }

    fn key(&self, doc: DocId) -> Option<DocKey> {
        let [a, b, c, d] = &self.0;
        Some(key_from_words([
            a.first(doc)?,
            b.first(doc)?,
            c.first(doc)?,
            d.first(doc)?,
        ]))
    }
}

/// Collects every match with its date and key.
struct AllFound {
    scored: bool,
}

struct AllFoundSegment {
    keys: KeyColumns,
    date: Column<i64>,
    out: Vec<Found>,
}

impl Collector for AllFound {
    type Fruit = Vec<Found>;
    type Child = AllFoundSegment;

    fn for_segment(&self, _ord: u32, seg: &SegmentReader) -> tantivy::Result<AllFoundSegment> {
        let keys = KeyColumns::open(seg)
            .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?;
        let date = seg.fast_fields().i64("date")?;
        Ok(AllFoundSegment {
            keys,
            date,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scored
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Found>>) -> tantivy::Result<Vec<Found>> {
        let mut all = Vec::with_capacity(fruits.iter().map(Vec::len).sum());
        for f in fruits {
            all.extend(f);
        }
        Ok(all)
    }
}

impl SegmentCollector for AllFoundSegment {
    type Fruit = Vec<Found>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(key) = self.keys.key(doc) {
            self.out.push(Found {
                key,
                timestamp: self.date.first(doc),
                score,
            });
        }
    }

    fn harvest(self) -> Vec<Found> {
        self.out
    }
}
