//! Upgrading an index written in an older store format (1 to 3) to the
//! current one ([`FORMAT_VERSION`]) by rebuilding it beside the old one,
//! while the old one keeps answering searches.
//!
//! ```no_run
//! use sealdex::{Credential, Index, IndexConfig};
//!
//! let cred = Credential::passphrase("correct horse");
//! let index = Index::open("/path/to/index".as_ref(), &cred, IndexConfig::default())?;
//! let index = if index.upgrade_available() {
//!     index.upgrade(&cred, IndexConfig::default())?
//! } else {
//!     index
//! };
//! assert_eq!(index.store().format(), sealdex::store::FORMAT_VERSION);
//! # Ok::<(), sealdex::Error>(())
//! ```
//!
//! # How
//!
//! 1. **Copy** ([`Index::prepare_upgrade`], which borrows the index: searches
//!    and writes go on meanwhile). A new index is created in a hidden
//!    sibling directory, `.NAME.sealdex-upgrade`, under a fresh random data
//!    key wrapped by the same credential with the same key-derivation
//!    parameters. Every record is read through the old store (each one
//!    authenticated) and written to the new one with its source, id,
//!    revision, flags, folders and everything else; then the failures,
//!    and each source's checkpoint and sync tokens, so that the next run of
//!    a source resumes where the old index stood and fetches nothing it
//!    already has. The new index's inverted index is then built from its
//!    store, and a first catch-up brings over what was written meanwhile.
//! 2. **Catch up and swap** ([`PreparedUpgrade::finish`], which takes the old
//!    index by value). Writes that reached the old index since are found by
//!    comparing every record's stamp (which changes with every write of the
//!    record, and is read without decrypting anything) with the stamp it
//!    had when it was copied; changed and new records are copied again,
//!    records gone are deleted (with their tombstone's version), and the
//!    failures, checkpoints and tokens are copied again. Taking the old
//!    index by value is the writer lock made static: no search or write
//!    can be running on it, so nothing can be written after the last
//!    comparison, and it can be closed before the swap (a write into the
//!    old directory after the swap would be lost). The counts of both are
//!    compared, the new directory is flushed to disk, and the two
//!    directories are exchanged in one `renameat2(RENAME_EXCHANGE)`. The
//!    old one, now at the hidden path, is removed, and the new index is
//!    opened where the old one was.
//!
//! # Crash safety
//!
//! Until the exchange the index's path holds the old index, complete; from
//! it on, the new one, complete and flushed. The exchange is one step of
//! the file system: no moment has neither, or a mix. Whatever is left at
//! the hidden path (a half-built new index, or the old one after the swap)
//! is removed by the next open of the index, or the next upgrade. The
//! index's lock is held from the start of the copy until the new index is
//! open, across the swap (a second handle on the lock file keeps it while
//! the old index is closed), so another process never opens the old index
//! while it is being swapped out.
//!
//! # Why not automatically at open
//!
//! [`Index::open`] logs (a `warn`, which the CLI shows) that an upgrade is
//! available and leaves it to the application (or `sealdex upgrade`): an
//! upgrade needs as much free disk again as the index takes while it runs,
//! and CPU for decrypting, re-sealing and re-indexing every record (2.4 s
//! for SpamAssassin's 6,046 messages on a busy two-core machine, growing
//! with the index), which an app should schedule (on power, when idle);
//! and its last step needs the open index by value, which only the
//! application holding it can give. An old index works meanwhile.
//!
//! # What is not carried
//!
//! The new index's keys are MACs under its new data key, so state is
//! carried by source and message id. Two kinds of state name neither:
//!
//! * the tombstones of records deleted before the upgrade (a tombstone holds
//!   only its delete's version). Without one, an op on such a record older
//!   than its delete, arriving after the upgrade (a reflected upsert
//!   delivered again), stores the record again, as it would have in a
//!   format-1 or format-2 index. Records deleted while the upgrade runs
//!   keep their tombstones.
//! * the checkpoints and sync tokens of a source that has neither a record
//!   nor a failure left: such a source lists again from the start at its
//!   next run (finding nothing to store, or storing what it holds now).
//!
//! Both are counted and logged (`warn`) when they occur.
//!
//! [`FORMAT_VERSION`]: crate::store::FORMAT_VERSION

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use tracing::{info, warn};

use crate::config::IndexConfig;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::keys::Credential;
use crate::record::Record;
use crate::search::InvertedStatus;
use crate::store::{DocKey, FORMAT_VERSION, Store, TokenSlot, WriteBatch};

/// An upgrade whose copy is done: the new index, built beside the old one,
/// waiting for [`PreparedUpgrade::finish`] to catch up and swap it in.
/// Dropping it instead abandons the upgrade; what it built is removed at
/// the next open or upgrade.
pub struct PreparedUpgrade {
    /// Where the index is (and stays), as the caller named it.
    target: PathBuf,
    /// The same, with symbolic links resolved: the directory swapped.
    real: PathBuf,
    /// Where the new index is built.
    temp: PathBuf,
    cred: Credential,
    config: IndexConfig,
    /// The new index, open.
    new: Index,
    /// Per record copied, by its key in the old store: the stamp it had,
    /// and its key in the new one.
    copied: HashMap<DocKey, Copied>,
    /// Every source seen (records and failures): their checkpoints and
    /// tokens are carried.
    sources: BTreeSet<String>,
    started: Instant,
    _running: Running,
}

#[derive(Clone, Copy, Debug)]
struct Copied {
    stamp: u64,
    key: DocKey,
}

impl std::fmt::Debug for PreparedUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedUpgrade")
            .field("target", &self.target)
            .field("temp", &self.temp)
            .field("records", &self.copied.len())
            .finish_non_exhaustive()
    }
}

/// What an upgrade did, for a caller that reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Records in the new index.
    pub records: u64,
    /// Records copied again because they changed during the copy.
    pub caught_up: u64,
    /// Tombstones of the old index that could not be carried (see the
    /// module documentation).
    pub tombstones_dropped: u64,
    /// Checkpoints and sync tokens that could not be carried.
    pub state_dropped: u64,
}

/// Upgrades in progress in this process, by index path: a second upgrade
/// of the same index would build in the same directory.
static RUNNING: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// An entry of [`RUNNING`], removed when dropped.
struct Running(PathBuf);

impl Running {
    fn start(path: &Path) -> Result<Running> {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        if !running
            .get_or_insert_with(HashSet::new)
            .insert(path.to_owned())
        {
            return Err(Error::Upgrade(format!(
                "an upgrade of {} is already running",
                path.display()
            )));
        }
        Ok(Running(path.to_owned()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = running.as_mut() {
            set.remove(&self.0);
        }
    }
}

/// A test hook called at named points of an upgrade (`copying`, `copied`,
/// `inverted-built`, `caught-up`, `swapped`, `removing`, `removed`), so
/// that a test can kill the process there. Not for applications.
type Hook = fn(&'static str);
static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Sets (or clears) the hook called at the named points of an upgrade.
/// For crash tests only.
#[doc(hidden)]
pub fn set_test_hook(hook: Option<fn(&'static str)>) {
    *HOOK.write().unwrap_or_else(|p| p.into_inner()) = hook;
}

fn point(name: &'static str) {
    if let Some(hook) = *HOOK.read().unwrap_or_else(|p| p.into_inner()) {
        hook(name);
    }
}

impl Index {
    /// Whether the index is in an older store format than the one this
    /// build writes: [`Index::upgrade`] converts it.
    pub fn upgrade_available(&self) -> bool {
        self.store().format() < FORMAT_VERSION
    }

    /// Converts an index in an older store format into the current one, by
    /// rebuilding it beside itself, and returns it open (see the
    /// [module documentation](crate::upgrade)). `cred` must be the
    /// index's credential; the new index is wrapped by it. An index
    /// already in the current format is returned as it is.
    ///
    /// This is [`Index::prepare_upgrade`] then [`PreparedUpgrade::finish`];
    /// an application that searches while the index is rebuilt calls the
    /// two itself, searching on the index between them. On an error the
    /// index is closed: open it again (it is as it was, unless the error
    /// came from opening it after the swap, when it is upgraded).
    pub fn upgrade(self, cred: &Credential, config: IndexConfig) -> Result<Index> {
        if !self.upgrade_available() {
            return Ok(self);
        }
        let prepared = self.prepare_upgrade(cred, config)?;
        prepared.finish(self).map(|(index, _)| index)
    }

    /// Builds the upgraded index beside this one: the long part of an
    /// upgrade. The index keeps answering searches and taking writes
    /// meanwhile; [`PreparedUpgrade::finish`] brings over what was written
    /// since and swaps the new index in.
    ///
    /// Fails with [`Error::Upgrade`] when the index is in the current
    /// format already, or when this platform cannot swap two directories
    /// in one step, and with [`Error::WrongKey`] when `cred` is not the
    /// index's credential.
    pub fn prepare_upgrade(
        &self,
        cred: &Credential,
        config: IndexConfig,
    ) -> Result<PreparedUpgrade> {
        let started = Instant::now();
        let old = self.store();
        if old.format() >= FORMAT_VERSION {
            return Err(Error::Upgrade(format!(
                "the index is in store format {} already",
                old.format()
            )));
        }
        if !CAN_EXCHANGE {
            return Err(Error::Upgrade(
                "this platform cannot swap two directories in one step, which the upgrade \
                 needs to be safe against a crash"
                    .into(),
            ));
        }
        old.check_credential(cred)?;
        let target = old.path().to_owned();
        let running = Running::start(&target)?;
        // Beside the directory itself, not beside a symbolic link to it:
        // the swap then replaces the directory the link points to.
        let real = std::fs::canonicalize(&target).map_err(|e| Error::io(&target, e))?;
        let temp = crate::store::upgrade_dir(&real)
            .ok_or_else(|| Error::Upgrade(format!("{} has no directory name", real.display())))?;
        if temp.exists() {
            std::fs::remove_dir_all(&temp).map_err(|e| Error::io(&temp, e))?;
        }
        info!(from = old.format(), to = FORMAT_VERSION, path = %target.display(), "upgrading the index");
        let kdf = old.kdf_params()?;
        let store = Store::create_tuned(&temp, cred, kdf, config.store_cache_bytes)?;
        let mut copied = HashMap::new();
        let mut sources = BTreeSet::new();
        old.for_each_chunk(|chunk| {
            let mut batch = WriteBatch::default();
            for (old_key, stamp, record) in chunk {
                let key = put(&store, &mut batch, &record, false)?;
                copied.insert(old_key, Copied { stamp, key });
                if !sources.contains(&record.source) {
                    sources.insert(record.source.clone());
                }
            }
            store.apply(batch)?;
            point("copying");
            Ok(())
        })?;
        copy_state(old, &store, &mut sources)?;
        point("copied");
        info!(
            records = copied.len(),
            ms = started.elapsed().as_millis() as u64,
            "upgrade: records copied"
        );
        drop(store);
        let new = Index::open(&temp, cred, config.clone())?;
        if !matches!(new.inverted_status()?, InvertedStatus::Disabled) {
            new.wait_for_inverted()?;
            point("inverted-built");
        }
        let mut prepared = PreparedUpgrade {
            target,
            real,
            temp,
            cred: cred.clone(),
            config,
            new,
            copied,
            sources,
            started,
            _running: running,
        };
        // What was written during the copy, brought over now so that the
        // last catch-up, with the index taken, has little left to do.
        prepared.catch_up(old)?;
        Ok(prepared)
    }
}

impl PreparedUpgrade {
    /// Brings over what was written to `old` since the copy, swaps the new
    /// index in its place, removes the old one's files and returns the
    /// new index, open, with what was done. `old` must be the index this
    /// upgrade was prepared from.
    ///
    /// Taking `old` by value is what makes the catch-up complete: nothing
    /// can write to it from here on. It takes about as long as a batch of
    /// the writes made since [`Index::prepare_upgrade`] returned, plus
    /// flushing the new index and opening it.
    ///
    /// An error before the swap leaves the index as it was (open it
    /// again); an error from opening the new index after the swap (another
    /// process opened it first: [`Error::InUse`]) leaves it upgraded.
    pub fn finish(mut self, old: Index) -> Result<(Index, UpgradeReport)> {
        if old.path() != self.target {
            return Err(Error::Upgrade(format!(
                "this upgrade was prepared for {}, not {}",
                self.target.display(),
                old.path().display()
            )));
        }
        let caught_up = self.catch_up(old.store())?;
        let (tombstones, state) = old.store().state_counts();
        let carried = self.new.store().state_counts().1;
        let report = UpgradeReport {
            records: self.new.store().manifest()?.documents,
            caught_up,
            tombstones_dropped: tombstones,
            state_dropped: state.saturating_sub(carried),
        };
        let (was, now) = (old.store().manifest()?, self.new.store().manifest()?);
        if (was.documents, was.failures) != (now.documents, now.failures) {
            return Err(Error::Upgrade(format!(
                "the rebuilt index holds {} records and {} failures where the index holds {} \
                 and {}; the index is left as it was",
                now.documents, now.failures, was.documents, was.failures
            )));
        }
        if !matches!(self.new.inverted_status()?, InvertedStatus::Disabled) {
            self.new.wait_for_inverted()?;
        }
        point("caught-up");
        let PreparedUpgrade {
            target,
            real,
            temp,
            cred,
            config,
            new,
            started,
            _running,
            ..
        } = self;
        drop(new);
        sync_tree(&temp)?;
        // The new directory's lock, held until the new index is opened
        // (it moves with the directory), and a second handle on the old
        // one's, held while the old index is closed and swapped out: no
        // other process opens either in between.
        let new_lock = lock_retrying(&temp)?;
        let old_lock = old.store().lock_handle()?;
        drop(old);
        exchange(&real, &temp)?;
        sync_parent(&real);
        point("swapped");
        // The old index, now at the hidden path.
        remove_old(&temp);
        drop(old_lock);
        drop(new_lock);
        let index = Index::open(&target, &cred, config)?;
        if report.tombstones_dropped > 0 || report.state_dropped > 0 {
            warn!(
                tombstones = report.tombstones_dropped,
                state = report.state_dropped,
                "upgrade: tombstones of records deleted before the upgrade, and the \
                 checkpoints or sync tokens of sources with no record left, were not carried"
            );
        }
        info!(
            records = report.records,
            caught_up = report.caught_up,
            ms = started.elapsed().as_millis() as u64,
            "upgraded the index to store format {FORMAT_VERSION}"
        );
        Ok((index, report))
    }

    /// Copies what changed in `old` since the last copy or catch-up.
    /// Returns the number of records copied again or deleted.
    fn catch_up(&mut self, old: &Store) -> Result<u64> {
        let new = self.new.store();
        let now: HashMap<DocKey, u64> = old.stamps()?.into_iter().collect();
        let changed: Vec<DocKey> = now
            .iter()
            .filter(|(k, s)| self.copied.get(*k).is_none_or(|c| c.stamp != **s))
            .map(|(k, _)| *k)
            .collect();
        let gone: Vec<DocKey> = self
            .copied
            .keys()
            .filter(|k| !now.contains_key(*k))
            .copied()
            .collect();
        let mut batch = WriteBatch::default();
        let mut count = 0u64;
        for (old_key, stamp, record) in old.read_many(&changed)? {
            let key = put(new, &mut batch, &record, true)?;
            self.copied.insert(old_key, Copied { stamp, key });
            self.sources.insert(record.source.clone());
            count += 1;
        }
        for old_key in gone {
            if let Some(c) = self.copied.remove(&old_key) {
                // A format-4 store finds deleted records by their
                // tombstones: every delete leaves one.
                let version = old.tombstone(&old_key)?.unwrap_or(0);
                batch.delete(c.key, Some(version));
                count += 1;
            }
        }
        new.apply(batch)?;
        copy_state(old, new, &mut self.sources)?;
        if count > 0 {
            info!(
                records = count,
                "upgrade: caught up with writes made meanwhile"
            );
        }
        Ok(count)
    }
}

/// Adds `record` to `batch`, sealed for `store`; returns its key there.
/// `look`: whether the store may hold it (or its tombstone) already.
fn put(store: &Store, batch: &mut WriteBatch, record: &Record, look: bool) -> Result<DocKey> {
    let key = store.doc_key(&record.source, &record.id);
    let (existed, tombstone) = if look {
        (
            store.locate(&key)?.is_some(),
            store.tombstone(&key)?.is_some(),
        )
    } else {
        (false, false)
    };
    let sealed = store.seal_record_at(&key, record);
    batch.put(key, sealed, existed, tombstone);
    Ok(key)
}

/// Copies the failures, then every known source's checkpoint and sync
/// tokens, from `old` to `new`.
fn copy_state(old: &Store, new: &Store, sources: &mut BTreeSet<String>) -> Result<()> {
    let mut batch = WriteBatch::default();
    for f in old.failures()? {
        sources.insert(f.source.clone());
        batch.fail(new.doc_key(&f.source, &f.message.id), f);
    }
    for source in sources.iter() {
        for slot in [TokenSlot::ListingStart, TokenSlot::Synced] {
            let token = old.token(source, slot)?;
            if token.is_some() || new.token(source, slot)?.is_some() {
                batch.token(source, slot, token);
            }
        }
    }
    new.apply(batch)?;
    // One checkpoint per batch.
    for source in sources.iter() {
        if let Some(cp) = old.checkpoint(source)?
            && new.checkpoint(source)?.as_ref() != Some(&cp)
        {
            let mut batch = WriteBatch::default();
            batch.checkpoint(source, cp);
            new.apply(batch)?;
        }
    }
    Ok(())
}

/// Takes the lock of the index at `path`, waiting briefly for this
/// process's own handles on it (just closed) to go.
fn lock_retrying(path: &Path) -> Result<std::fs::File> {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match crate::store::lock_index_dir(path) {
            Err(Error::InUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Removes the old index after the swap. A failure leaves it for the next
/// open to remove, and is logged: the upgrade itself is done.
fn remove_old(dir: &Path) {
    let result = std::fs::remove_dir_all(dir.join("db")).and_then(|()| {
        point("removing");
        std::fs::remove_dir_all(dir)
    });
    match result {
        Ok(()) => point("removed"),
        Err(e) => warn!(
            path = %dir.display(),
            error = %e,
            "cannot remove the old index's files; the next open removes them"
        ),
    }
}

/// Flushes every file and directory under `dir` to disk, so that the swap
/// makes a complete index visible even after a power loss.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry.map_err(|e| Error::Upgrade(format!("cannot read the new index: {e}")))?;
        let path = entry.path();
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Makes a rename in the directory holding `path` durable.
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let _ = crate::fsio::sync_dir(parent);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const CAN_EXCHANGE: bool = true;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const CAN_EXCHANGE: bool = false;

/// Exchanges the directories at `a` and `b` in one step.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(|e| {
        Error::Upgrade(format!(
            "cannot swap {} with the rebuilt index {} ({e}); the index is left as it was",
            a.display(),
            b.display()
        ))
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(_a: &Path, _b: &Path) -> Result<()> {
    Err(Error::Upgrade(
        "this platform cannot swap two directories in one step".into(),
    ))
}
