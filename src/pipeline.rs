//! The indexing pipeline: fetch, decrypt, clean, and apply as ops,
//! overlapped, bounded in memory, resumable after a crash, and controllable
//! while it runs.
//!
//! ```text
//!  fetch thread ──work──► process thread ──ops──► writer (caller's thread)
//!  Source::list/fetch  (2) rayon: decrypt,    (2) Index::apply: seal, one atomic
//!  pause/cancel checks      clean                 flushed batch + checkpoint
//! ```
//!
//! The pipeline writes nothing itself: each batch is a list of
//! `Op`s (upserts of what it fetched, patches of what
//! only changed its flags or folder, deletes of what the source no longer
//! has) given to the index's one write path with the source's checkpoint,
//! so the cache and the inverted index follow every batch, and ops that an
//! app pushes meanwhile interleave between batches.
//!
//! Each stage runs on its own thread and hands over through a bounded
//! channel of two items, so fetching the next batch, sealing the current one
//! and writing the previous one overlap, and at most a handful of batches
//! (each capped in messages and in bytes) are in memory whatever the size of
//! the mailbox.
//!
//! # Resuming
//!
//! Every batch is written together with the source's [`Checkpoint`] in one
//! atomic, flushed store batch. A crash or `kill -9` therefore loses at
//! most the batches in flight; the next run resumes from the checkpoint.
//! Documents are keyed by a MAC of their id, so writing a message twice is an
//! upsert and nothing is ever duplicated.
//!
//! A source goes through two phases. First a full listing, page by page,
//! from the checkpoint's cursor; a sync token taken *before* the listing
//! began is stored once, apart from the checkpoint (which stays small, since
//! it is written with every batch). When the listing ends, the pipeline asks
//! the source for the changes since that token (which catches whatever
//! changed while listing) and from then on each run applies only changes.
//!
//! # Failures
//!
//! A message that cannot be fetched or decrypted is recorded, sealed, with
//! its reason, and retried on later runs with exponential backoff; it never
//! stops the run. A failure is cleared when the message is later stored or
//! deleted.
//!
//! A `cannot-decrypt` failure (encrypted to a key the decryptor lacks) is
//! recorded with the decryptor's [`Decryptor::key_set`]; a run whose key
//! set differs retries it at once, whatever its backoff or attempt count,
//! since a new key is the one thing that can make it succeed.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};
use rayon::prelude::*;
use tracing::{debug, info};

use crate::Index;
use crate::clean;
use crate::decrypt::Decryptor;
use crate::error::{Error, Result};
use crate::ops::Op;
use crate::source::{Change, FetchError, MessageRef, Metadata, RawMessage, Source, SyncToken};
use crate::store::{Checkpoint, DocKey, Failure, Store, TokenSlot};
use crate::write::{Clock, Presealed, State};

/// How failed messages are retried on later runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubles with each further failure.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// After this many attempts a message is no longer retried until the
    /// source reports it changed.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(24 * 3600),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Tuning of an indexing run. The defaults suit a desktop.
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Most messages per batch (and per listing page).
    pub batch_messages: usize,
    /// Most raw bytes fetched per batch (a single larger message still goes
    /// alone in its own batch).
    pub batch_bytes: usize,
    /// Retry of failed messages.
    pub retry: RetryPolicy,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            batch_messages: 512,
            batch_bytes: 32 << 20,
            retry: RetryPolicy::default(),
        }
    }
}

/// What the pipeline is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Retrying messages that failed on earlier runs.
    Retrying,
    /// Working through the full listing of the source.
    Listing,
    /// Applying changes reported by the source.
    Syncing,
    /// Finished.
    Done,
}

/// A progress event, sent after every written batch.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// Messages handled (stored, deleted or failed), including those of
    /// earlier, interrupted runs of the same listing.
    pub done: u64,
    /// The total, when the source knows it.
    pub total: Option<u64>,
    /// Messages that failed in this run.
    pub failed: u64,
    /// Raw bytes processed in this run.
    pub bytes: u64,
    /// Time since this run began.
    pub elapsed: Duration,
    /// Messages per second in this run.
    pub rate: f64,
    /// Estimated time left, when the total is known.
    pub eta: Option<Duration>,
}

impl Progress {
    /// The event after a batch: rate over this run, ETA from the total.
    fn new(
        phase: Phase,
        done: u64,
        total: Option<u64>,
        report: &Report,
        elapsed: Duration,
    ) -> Self {
        let handled = report.stored + report.deleted + report.failed;
        let rate = handled as f64 / elapsed.as_secs_f64().max(1e-6);
        let eta = if phase == Phase::Done {
            Some(Duration::ZERO)
        } else {
            total.and_then(|t| {
                (rate > 0.0).then(|| Duration::from_secs_f64(t.saturating_sub(done) as f64 / rate))
            })
        };
        Progress {
            phase,
            done,
            total,
            failed: report.failed,
            bytes: report.bytes,
            elapsed,
            rate,
            eta,
        }
    }
}

/// What a finished run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Messages stored (new or updated).
    pub stored: u64,
    /// Messages deleted because the source no longer has them.
    pub deleted: u64,
    /// Messages that failed in this run (recorded for retry).
    pub failed: u64,
    /// Raw bytes processed.
    pub bytes: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
}

const RUNNING: u8 = 0;
const PAUSED: u8 = 1;
const CANCELLED: u8 = 2;

/// Pauses, resumes or cancels a running pipeline from another thread.
/// Cheap to clone; every clone controls the same run.
#[derive(Clone, Debug, Default)]
pub struct Control {
    inner: Arc<ControlInner>,
}

#[derive(Debug, Default)]
struct ControlInner {
    state: AtomicU8,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Control {
    /// A control for a new run.
    pub fn new() -> Self {
        Self::default()
    }
    /// Pauses after the batch being fetched; the run waits until resumed or cancelled.
    pub fn pause(&self) {
        let _ =
            self.inner
                .state
                .compare_exchange(RUNNING, PAUSED, Ordering::SeqCst, Ordering::SeqCst);
    }
    /// Resumes a paused run.
    pub fn resume(&self) {
        let _g = self.inner.lock.lock();
        let _ =
            self.inner
                .state
                .compare_exchange(PAUSED, RUNNING, Ordering::SeqCst, Ordering::SeqCst);
        self.inner.wake.notify_all();
    }
    /// Cancels the run; it stops after the batch being written and returns
    /// [`Error::Cancelled`]. Everything written so far stays.
    pub fn cancel(&self) {
        let _g = self.inner.lock.lock();
        self.inner.state.store(CANCELLED, Ordering::SeqCst);
        self.inner.wake.notify_all();
    }
    /// Whether the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.state.load(Ordering::SeqCst) == CANCELLED
    }
    /// Whether the run is paused.
    pub fn is_paused(&self) -> bool {
        self.inner.state.load(Ordering::SeqCst) == PAUSED
    }
    /// Blocks while paused; returns false when cancelled.
    fn wait_while_paused(&self) -> bool {
        let mut guard = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            match self.inner.state.load(Ordering::SeqCst) {
                RUNNING => return true,
                CANCELLED => return false,
                _ => {
                    guard = self
                        .inner
                        .wake
                        .wait_timeout(guard, Duration::from_millis(200))
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
            }
        }
    }
}

/// Unix seconds now.
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A checkpoint and the sync tokens that change with it.
#[derive(Clone, Debug, Default)]
struct Mark {
    checkpoint: Checkpoint,
    tokens: Vec<(TokenSlot, Option<SyncToken>)>,
}

impl From<Checkpoint> for Mark {
    fn from(checkpoint: Checkpoint) -> Self {
        Mark {
            checkpoint,
            tokens: Vec::new(),
        }
    }
}

/// One unit of work from the fetch thread.
struct Work {
    phase: Phase,
    fetched: Vec<(MessageRef, Result<RawMessage, FetchError>)>,
    deletes: Vec<String>,
    /// Metadata-only changes: applied as patches, never fetched.
    patches: Vec<(String, Metadata)>,
    /// Checkpoint (and changed sync tokens) to write with this batch (the
    /// last batch of a page).
    checkpoint: Option<Mark>,
    total: Option<u64>,
}

/// A batch of ops ready to apply.
struct Ready {
    phase: Phase,
    ops: Vec<Op>,
    state: State,
    stored: u64,
    deleted: u64,
    failed: u64,
    bytes: u64,
    done_after: Option<u64>,
    total: Option<u64>,
}

/// Runs the pipeline for one source until the source is fully indexed and
/// its changes applied, calling `on_progress` after every batch. This is
/// what [`Index::index_with`] runs (which also keeps two runs of one source
/// from overlapping: call that).
///
/// Blocking; the fetch and process stages run on their own threads
/// meanwhile. Use [`spawn`] to run it in the background with a handle.
///
/// ```no_run
/// use sealdex::{Credential, Index, IndexConfig};
/// use sealdex::decrypt::PassThrough;
/// use sealdex::pipeline::{self, Control, IndexOptions};
///
/// let index = Index::create("/tmp/idx".as_ref(), &Credential::passphrase("pw"), IndexConfig::default())?;
/// let mut source = sealdex::backends::open_path("/home/me/Maildir".as_ref())?;
/// let report = pipeline::run(&index, source.as_mut(), &PassThrough::default(),
///     &IndexOptions::default(), &Control::new(), &mut |p| eprintln!("{} done", p.done))?;
/// println!("stored {}, failed {}", report.stored, report.failed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(
    index: &Index,
    source: &mut dyn Source,
    decryptor: &dyn Decryptor,
    options: &IndexOptions,
    control: &Control,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Report> {
    let store = index.store();
    let start = Instant::now();
    let name = source.name().to_owned();
    let checkpoint = store.checkpoint(&name)?.unwrap_or_default();
    // The token to diff against once the listing is done (or, when synced,
    // the last applied state). Taken before a fresh listing begins and
    // stored once, so that changes made while listing are caught after it.
    let since = if checkpoint.synced {
        store.token(&name, TokenSlot::Synced)?.unwrap_or_default()
    } else {
        match store.token(&name, TokenSlot::ListingStart)? {
            Some(t) => t,
            None => {
                let t = source.sync_token().map_err(|e| source_err(&name, e))?;
                let state = State {
                    tokens: vec![(name.clone(), TokenSlot::ListingStart, Some(t.clone()))],
                    ..State::default()
                };
                index.apply_with(Vec::new(), state)?;
                t
            }
        }
    };
    let retries = due_failures(store, &name, &options.retry, decryptor.key_set())?;
    info!(
        source = %name,
        resume = checkpoint.cursor.is_some(),
        synced = checkpoint.synced,
        retries = retries.len(),
        "indexing"
    );

    let (work_tx, work_rx) = bounded::<Work>(2);
    let (ready_tx, ready_rx) = bounded::<Ready>(2);
    let mut report = Report::default();
    let mut done = checkpoint.done;
    let mut total: Option<u64> = None;
    let mut phase = Phase::Listing;

    let name = name.as_str();
    let outcome: Result<()> = std::thread::scope(|scope| {
        let fetcher = scope.spawn(move || {
            fetch_stage(
                source, name, checkpoint, since, retries, options, control, work_tx,
            )
        });
        let clock = &index.clock;
        let processor = scope.spawn(move || {
            process_stage(store, clock, name, decryptor, options, work_rx, ready_tx)
        });

        let mut write_result = Ok(());
        for ready in ready_rx.iter() {
            if control.is_cancelled() {
                break;
            }
            if let Err(e) = index.apply_with(ready.ops, ready.state) {
                write_result = Err(e);
                // Wake a paused fetcher so that every stage ends.
                control.cancel();
                break;
            }
            report.stored += ready.stored;
            report.deleted += ready.deleted;
            report.failed += ready.failed;
            report.bytes += ready.bytes;
            let handled = ready.stored + ready.deleted + ready.failed;
            done = ready.done_after.unwrap_or(done + handled);
            total = ready.total.or(total);
            phase = ready.phase;
            on_progress(&Progress::new(phase, done, total, &report, start.elapsed()));
        }
        // Dropping the receiver stops the upstream stages at their next send.
        drop(ready_rx);
        let processed = processor
            .join()
            .unwrap_or_else(|_| Err(Error::Panicked("the processing stage".into())));
        let fetched = fetcher
            .join()
            .unwrap_or_else(|_| Err(Error::Panicked("the fetch stage".into())));
        write_result?;
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        fetched?;
        processed
    });
    outcome?;
    report.elapsed = start.elapsed();
    on_progress(&Progress::new(
        Phase::Done,
        done,
        total,
        &report,
        report.elapsed,
    ));
    info!(
        stored = report.stored,
        deleted = report.deleted,
        failed = report.failed,
        secs = report.elapsed.as_secs_f64(),
        "indexing finished"
    );
    Ok(report)
}

/// Failures of this source whose retry time has come, and its
/// `cannot-decrypt` failures recorded under another key set than
/// `key_set` (the decryptor's now).
///
/// Due-ness follows the policy of the current run, not the one in force when
/// the failure was recorded, so an embedder that shortens its backoff sees
/// the effect at once.
fn due_failures(
    store: &Store,
    source: &str,
    retry: &RetryPolicy,
    key_set: Option<String>,
) -> Result<Vec<MessageRef>> {
    let now = now_secs();
    Ok(store
        .failures()?
        .into_iter()
        .filter(|f| {
            let due = f
                .last_attempt
                .saturating_add(retry.delay(f.attempts).as_secs() as i64);
            let new_keys = key_set.is_some()
                && f.key_set != key_set
                && f.reason == crate::DecryptError::CannotDecrypt(String::new()).reason();
            f.source == source && (new_keys || (due <= now && f.attempts < retry.max_attempts))
        })
        .map(|f| f.message)
        .collect())
}

/// Sends work downstream; false when the run is over (cancelled or the
/// writer stopped).
fn send(tx: &Sender<Work>, control: &Control, work: Work) -> bool {
    control.wait_while_paused() && tx.send(work).is_ok()
}

fn source_err(name: &str, e: crate::SourceError) -> Error {
    Error::source(name, e)
}

/// Splits refs into groups within the batch limits and fetches each group.
/// The last group carries `checkpoint`.
#[allow(clippy::too_many_arguments)]
fn fetch_refs(
    source: &mut dyn Source,
    refs: Vec<MessageRef>,
    phase: Phase,
    checkpoint: Option<Mark>,
    total: Option<u64>,
    options: &IndexOptions,
    control: &Control,
    tx: &Sender<Work>,
) -> Result<bool> {
    let mut groups: Vec<Vec<MessageRef>> = Vec::new();
    let mut bytes = 0u64;
    for r in refs {
        let size = r.size.unwrap_or(0);
        let start_new = match groups.last() {
            None => true,
            Some(g) => {
                g.len() >= options.batch_messages.max(1)
                    || (bytes + size > options.batch_bytes as u64 && !g.is_empty())
            }
        };
        if start_new {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(g) = groups.last_mut() {
            g.push(r);
        }
    }
    if groups.is_empty() {
        // Still send the checkpoint, so an empty page advances the cursor.
        return Ok(checkpoint.is_none()
            || send(
                tx,
                control,
                Work {
                    phase,
                    fetched: Vec::new(),
                    deletes: Vec::new(),
                    patches: Vec::new(),
                    checkpoint,
                    total,
                },
            ));
    }
    let last = groups.len() - 1;
    let mut checkpoint = checkpoint;
    for (i, group) in groups.into_iter().enumerate() {
        if !control.wait_while_paused() {
            return Ok(false);
        }
        let fetched = source.fetch(&group);
        if let Some(e) = source.take_failure() {
            // Nothing of this batch is written: the run resumes before it.
            return Err(source_err(source.name(), e));
        }
        let mut pairs = Vec::with_capacity(group.len());
        let mut fetched = fetched.into_iter();
        for r in group {
            let item = fetched.next().unwrap_or_else(|| {
                Err(FetchError {
                    id: r.id.clone(),
                    reason: "the source returned fewer messages than asked for".into(),
                })
            });
            pairs.push((r, item));
        }
        let work = Work {
            phase,
            fetched: pairs,
            deletes: Vec::new(),
            patches: Vec::new(),
            checkpoint: if i == last { checkpoint.take() } else { None },
            total,
        };
        if !send(tx, control, work) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
fn fetch_stage(
    source: &mut dyn Source,
    name: &str,
    mut cp: Checkpoint,
    since: SyncToken,
    retries: Vec<MessageRef>,
    options: &IndexOptions,
    control: &Control,
    tx: Sender<Work>,
) -> Result<()> {
    if !retries.is_empty() {
        debug!(count = retries.len(), "retrying failed messages");
        let n = retries.len() as u64;
        if !fetch_refs(
            source,
            retries,
            Phase::Retrying,
            None,
            Some(n),
            options,
            control,
            &tx,
        )? {
            return Ok(());
        }
    }
    if !cp.synced {
        loop {
            let page = source
                .list(cp.cursor.as_ref(), options.batch_messages.max(1))
                .map_err(|e| source_err(name, e))?;
            let n = page.refs.len() as u64;
            cp.done += n;
            let finished = page.next.is_none();
            cp.cursor = page.next;
            let mark = if finished {
                // The listing is complete: from now on, only changes since
                // the state it started from.
                cp.cursor = None;
                cp.synced = true;
                Mark {
                    checkpoint: Checkpoint {
                        done: 0,
                        ..cp.clone()
                    },
                    tokens: vec![
                        (TokenSlot::Synced, Some(since.clone())),
                        (TokenSlot::ListingStart, None),
                    ],
                }
            } else {
                cp.clone().into()
            };
            if !fetch_refs(
                source,
                page.refs,
                Phase::Listing,
                Some(mark),
                page.total,
                options,
                control,
                &tx,
            )? {
                return Ok(());
            }
            if finished {
                break;
            }
        }
    }
    // Apply whatever changed since the last sync (or since the listing began).
    let changes = source.changes(&since).map_err(|e| source_err(name, e))?;
    let mut refetch = Vec::new();
    let mut deletes = Vec::new();
    let mut patches = Vec::new();
    for change in changes.changes {
        match change {
            Change::Created(r) | Change::ContentUpdated(r) => refetch.push(r),
            // Metadata only: a patch, with no fetch, decryption or cleaning.
            Change::MetadataUpdated(r, meta) | Change::Moved(r, meta) => {
                if !meta.is_empty() {
                    patches.push((r.id, meta));
                }
            }
            Change::Deleted { id } => deletes.push(id),
        }
    }
    let n_changes = (refetch.len() + deletes.len() + patches.len()) as u64;
    // No total for an empty change set, so progress keeps the listing's total.
    let total = (n_changes > 0).then_some(n_changes);
    if n_changes > 0 {
        info!(
            updates = refetch.len(),
            patches = patches.len(),
            deletes = deletes.len(),
            "applying source changes"
        );
    }
    for chunk in patches.chunks(options.batch_messages.max(1) * 8) {
        let work = Work {
            phase: Phase::Syncing,
            fetched: Vec::new(),
            deletes: Vec::new(),
            patches: chunk.to_vec(),
            checkpoint: None,
            total,
        };
        if !send(&tx, control, work) {
            return Ok(());
        }
    }
    if !deletes.is_empty() {
        let work = Work {
            phase: Phase::Syncing,
            fetched: Vec::new(),
            deletes,
            patches: Vec::new(),
            checkpoint: None,
            total,
        };
        if !send(&tx, control, work) {
            return Ok(());
        }
    }
    // A source that found nothing changed hands back the token it was
    // given: then nothing is written at all (a no-change run costs what the
    // source's `changes` costs, not a rewrite of its token).
    let final_cp = (changes.token != since || n_changes > 0).then(|| Mark {
        checkpoint: Checkpoint {
            cursor: None,
            synced: true,
            done: 0,
        },
        tokens: vec![(TokenSlot::Synced, Some(changes.token))],
    });
    fetch_refs(
        source,
        refetch,
        Phase::Syncing,
        final_cp,
        total,
        options,
        control,
        &tx,
    )?;
    Ok(())
}

// Most outcomes are stored records: boxing them would cost an allocation
// per message for no saving.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Stored(crate::record::Record, Presealed),
    Failed(DocKey, Failure),
}

/// Seals a cleaned record ahead of its write, on the processing threads
/// (see [`Presealed`]).
fn preseal(store: &Store, clock: &Clock, record: &mut crate::record::Record) -> Presealed {
    let key = store.doc_key(&record.source, &record.id);
    let version = clock.provisional();
    record.revision = version;
    let envelope = store.seal_record_at(&key, record);
    Presealed {
        key,
        version,
        envelope,
    }
}

fn process_stage(
    store: &Store,
    clock: &Clock,
    name: &str,
    decryptor: &dyn Decryptor,
    options: &IndexOptions,
    rx: Receiver<Work>,
    tx: Sender<Ready>,
) -> Result<()> {
    let key_set = decryptor.key_set();
    for work in rx.iter() {
        let now = now_secs();
        let bytes: u64 = work
            .fetched
            .iter()
            .map(|(_, r)| r.as_ref().map(|m| m.bytes.len() as u64).unwrap_or(0))
            .sum();
        let outcomes: Vec<Outcome> = work
            .fetched
            .into_par_iter()
            .map(|(mref, fetched)| {
                let result = fetched.map_err(|e| ("fetch", e.reason)).and_then(|raw| {
                    decryptor
                        .decrypt(&raw)
                        .map(|msg| (msg, raw.version))
                        .map_err(|e| (e.reason(), e.to_string()))
                });
                match result {
                    Ok((msg, version)) => {
                        let mut record = clean::clean(msg, name, version.or(mref.version.clone()));
                        let sealed = preseal(store, clock, &mut record);
                        Outcome::Stored(record, sealed)
                    }
                    Err((reason, detail)) => {
                        let key = store.doc_key(name, &mref.id);
                        let attempts = previous_attempts(store, &key) + 1;
                        debug!(reason, attempts, "message failed; recorded for retry");
                        let delay = options.retry.delay(attempts);
                        Outcome::Failed(
                            key,
                            Failure {
                                source: name.to_owned(),
                                message: mref,
                                reason: reason.to_owned(),
                                detail,
                                attempts,
                                last_attempt: now,
                                retry_after: now.saturating_add(delay.as_secs() as i64),
                                key_set: key_set.clone(),
                            },
                        )
                    }
                }
            })
            .collect();
        let mut ops = Vec::with_capacity(outcomes.len() + work.deletes.len());
        let mut state = State::default();
        let (mut stored, mut failed) = (0, 0);
        for o in outcomes {
            match o {
                Outcome::Stored(record, sealed) => {
                    stored += 1;
                    ops.push(Op::upsert(record));
                    state.presealed.push(Some(sealed));
                }
                Outcome::Failed(k, f) => {
                    failed += 1;
                    state.failures.push((k, f));
                }
            }
        }
        let deleted = work.deletes.len() as u64;
        for id in work.deletes {
            ops.push(Op::delete(name, id));
        }
        stored += work.patches.len() as u64;
        for (id, meta) in work.patches {
            ops.push(Op::patch(name, id, meta));
        }
        let done_after = work
            .checkpoint
            .as_ref()
            .and_then(|m| (m.checkpoint.done > 0).then_some(m.checkpoint.done));
        if let Some(mark) = work.checkpoint {
            state.checkpoint = Some((name.to_owned(), mark.checkpoint));
            for (slot, token) in mark.tokens {
                state.tokens.push((name.to_owned(), slot, token));
            }
        }
        let ready = Ready {
            phase: work.phase,
            ops,
            state,
            stored,
            deleted,
            failed,
            bytes,
            done_after,
            total: work.total,
        };
        if tx.send(ready).is_err() {
            break;
        }
    }
    Ok(())
}

fn previous_attempts(store: &Store, key: &DocKey) -> u32 {
    store.failure(key).ok().flatten().map_or(0, |f| f.attempts)
}

/// A pipeline running on a background thread.
pub struct IndexHandle {
    control: Control,
    progress: Receiver<Progress>,
    thread: std::thread::JoinHandle<Result<Report>>,
}

impl IndexHandle {
    /// Pause, resume and cancel.
    pub fn control(&self) -> &Control {
        &self.control
    }
    /// Progress events, one per written batch. Events are dropped, never
    /// queued without bound, when nobody reads them.
    pub fn progress(&self) -> &Receiver<Progress> {
        &self.progress
    }
    /// Waits for the run to end.
    pub fn join(self) -> Result<Report> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(Error::Panicked("the indexing thread".into())))
    }
}

/// Runs [`run`] on a background thread and returns a handle to control it.
pub fn spawn(
    index: Arc<Index>,
    mut source: Box<dyn Source>,
    decryptor: Arc<dyn Decryptor>,
    options: IndexOptions,
) -> IndexHandle {
    let control = Control::new();
    let (tx, rx) = bounded(64);
    let c = control.clone();
    let thread = std::thread::Builder::new()
        .name("sealdex-index".into())
        .spawn(move || {
            index.index_with(
                source.as_mut(),
                decryptor.as_ref(),
                &options,
                &c,
                &mut |p| {
                    let _ = tx.try_send(p.clone());
                },
            )
        })
        .map_err(|e| Error::Storage(format!("cannot start the indexing thread: {e}")));
    let thread = match thread {
        Ok(t) => t,
        Err(e) => std::thread::spawn(move || Err(e)),
    };
    IndexHandle {
        control,
        progress: rx,
        thread,
    }
}
