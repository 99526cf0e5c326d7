//! The sealed store: one sled database per index, holding clear key-wrapping
//! parameters and sealed everything else.
//!
//! # Layout
//!
//! * `keyring`, a small file in clear, holds only what must be read before
//!   the index is unlocked: the format version, the key-derivation spec
//!   (Argon2id parameters and salt, or "app key") and the wrapped data key.
//!   It lives outside sled because sled writes to its files whenever it
//!   opens them; keeping the keyring apart means a wrong passphrase is
//!   rejected before the database is touched, so it changes nothing on
//!   disk. It is replaced atomically (write, fsync, rename, fsync).
//! * `commit`, a small sealed file rewritten after every flushed batch with
//!   the manifest's counts and generation, so that a database that lost or
//!   rolled back committed batches is refused rather than served (see
//!   `check_commit_file`).
//! * `db/`, the sled database, whose tree `sealed` holds every other
//!   record, each sealed with [`crate::seal`] under a purpose key, at a key
//!   made of one kind byte and a keyed MAC:
//!
//! | kind byte | key                     | value (sealed)                      |
//! |-----------|-------------------------|-------------------------------------|
//! | `D`       | MAC(source, message id) | the [`Record`]                      |
//! | `F`       | MAC(source, message id) | a [`Failure`] awaiting retry        |
//! | `T`       | MAC(source, message id) | a deleted record's tombstone: the version of its delete (format 3) |
//! | `C`       | MAC(label, source)      | a [`Checkpoint`] of a source        |
//! | `M`       | `manifest`              | the [`Manifest`]: counts, generation|
//! | `Z`       | `dictionary`            | the zstd dictionary of the records  |
//!
//! In format 4 (see [`FORMAT_VERSION`]) records are not in sled: they are
//! packed into sealed, compressed blocks in the segment files of `blocks/`
//! (see `blocks`), and the tree `sealed` holds instead, per block,
//!
//! | kind byte | key                         | value (sealed)                   |
//! |-----------|-----------------------------|----------------------------------|
//! | `B`       | the block's first document number (big-endian) | where the block is: segment, offset, lengths, last number |
//!
//! with no `D` entries. The dictionary and the sync tokens, the two large
//! values, move to sled trees of their own (`dictionary`, `tokens`): in the
//! tree of the manifest, whose leaf every batch rewrites, sled wrote a new
//! copy of them with every batch. Tombstones (`T`) are what tells a deleted
//! record at open, so every delete leaves one.
//!
//! The dictionary (format 2 on; see `record::Dictionary`) is made of the
//! encodings of the first records sealed, once they add up to 256 KiB; it
//! is stored with the first batch that may hold a record compressed against
//! it and never changes afterwards. Sealed with the documents' key, since
//! it holds their text.
//!
//! Why one tree rather than one per kind: sled applies a batch atomically
//! only within one tree, and a batch of documents must land together with
//! its checkpoint, its failures and the manifest's count. A crash then
//! leaves either all of a batch or none of it, so the manifest always
//! agrees with the records and a mismatch means tampering, not a torn write.
//!
//! Message ids and source names never reach the disk in clear: the keys are
//! HMACs, and the records themselves carry the ids sealed.
//!
//! # Concurrency
//!
//! A `Store` is `Send + Sync`; readers (searches) run while one writer (the
//! pipeline) applies batches. Another process, or a second `Store` on the same
//! directory in this process, gets [`Error::InUse`] from an OS file lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use crate::error::{Error, Result};

mod batch;
mod blocks;
mod codec;
mod keyring;
mod live;
mod verify;

use crate::keys::{Credential, DOC_KEY_LEN, KdfParams, KekSpec, Keys, SecretKey};
use crate::record::{Dictionary, Record};
use crate::seal::RecordKind;
use crate::source::{Cursor, MessageRef, SyncToken};
pub(crate) use batch::WriteBatch;
pub(crate) use blocks::body_needs_dictionary;
pub(crate) use keyring::lock_index_dir;
use keyring::{Keyring, is_index_dir, lock_dir, write_atomic};
pub use verify::VerifyReport;

/// The on-disk format this build writes.
///
/// * 1: every sealed value's plaintext is its postcard encoding (records:
///   behind the codec byte of [`crate::record`]).
/// * 2: the sealed state (failures, checkpoints, sync tokens, manifest,
///   commit file) goes through the same codec byte as records, so large
///   sync tokens are compressed (a directory tree's token lists every
///   file: 1.2 MB for SpamAssassin, stored as sled blobs that were kept
///   again for every version written); and records may be compressed
///   against the store's dictionary (`Z` in the table above, codec 3 of
///   [`crate::record`]), which format 1 readers do not know.
///
/// * 3: records carry their kind's fields and the version of the last op
///   applied to them (the record layout is tagged in each record's codec
///   byte, so records written in format 2 still read, side by side with
///   new ones), and deleted records leave tombstones (`T`).
///
/// * 4: records are packed into sealed, compressed blocks in segment files
///   beside sled (see `blocks`); sled keeps one sealed position per block
///   and no `D` entries, and a record's key holds the first 16 bytes of
///   its MAC. The inverted index of such a store refers to records by
///   document number.
///
/// An index in format 1 still opens, and keeps its state encoded as in
/// format 1. An index in format 2 is marked format 3 when it is opened, so
/// that older builds refuse it instead of misreading its new records;
/// nothing is rewritten. Formats 1 to 3 keep their one-value-per-record
/// layout; creating an index anew writes format 4.
pub const FORMAT_VERSION: u32 = 4;
/// The newest format that keeps one sled value per record.
const LAST_KEYED_FORMAT: u32 = 3;
/// The oldest format this build still reads (and writes, to such an index).
const OLDEST_FORMAT: u32 = 1;

const KEYRING_FILE: &str = "keyring";
const KEYRING_MAGIC: &[u8; 8] = b"SEALDEX\0";
const LOCK_FILE: &str = "sealdex.lock";
const COMMIT_FILE: &str = "commit";
const COMMIT_AAD: &[u8] = b"commit-file";
const DB_DIR: &str = "db";

const P_DOC: u8 = b'D';
const P_FAILURE: u8 = b'F';
const P_TOMBSTONE: u8 = b'T';
const P_CHECKPOINT: u8 = b'C';
const P_MANIFEST: u8 = b'M';
const MANIFEST_KEY: &[u8] = b"Mmanifest";
const P_DICTIONARY: u8 = b'Z';
const DICTIONARY_KEY: &[u8] = b"Zdictionary";
const P_BLOCK: u8 = b'B';
/// The most bytes of record encodings a block body from a peer may decode
/// to: a block closes once it reaches `blocks::BLOCK_TARGET`, so only a
/// single record larger than that makes it bigger, and no record larger
/// than a message between devices travels (48 MiB).
pub(crate) const PEER_BODY_MAX: u64 = 64 << 20;

/// A block body from a peer's snapshot, checked ([`Store::open_peer_body`]).
#[derive(Debug)]
pub(crate) struct PeerBody {
    /// Each record's key in this store, in the body's order.
    pub(crate) keys: Vec<DocKey>,
    /// The records it holds, decoded, in the same order.
    pub(crate) records: Vec<Record>,
    /// It can be stored as it is.
    pub(crate) as_is: bool,
}

/// Format 4: the sled tree of the dictionary (see `apply`).
const DICTIONARY_TREE: &str = "dictionary";
/// Format 4: the sled tree of the sync tokens (see `apply`).
const TOKENS_TREE: &str = "tokens";

/// The key of a document in the store: a kind byte and a keyed MAC of its
/// source and id. Opaque; get one from [`Store::doc_key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocKey([u8; 1 + DOC_KEY_LEN]);

impl DocKey {
    /// The raw bytes, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn with_prefix(prefix: u8, mac: [u8; DOC_KEY_LEN]) -> Self {
        let mut k = [0u8; 1 + DOC_KEY_LEN];
        k[0] = prefix;
        k[1..].copy_from_slice(&mac);
        DocKey(k)
    }

    /// The document's MAC (the key without its kind byte): what the
    /// inverted index stores to point back at the record.
    #[cfg(feature = "tantivy")]
    pub(crate) fn mac(&self) -> [u8; DOC_KEY_LEN] {
        let mut m = [0u8; DOC_KEY_LEN];
        m.copy_from_slice(&self.0[1..]);
        m
    }

    /// The document key with this MAC.
    #[cfg(feature = "tantivy")]
    pub(crate) fn from_mac(mac: [u8; DOC_KEY_LEN]) -> Self {
        Self::with_prefix(P_DOC, mac)
    }

    fn failure_key(&self) -> DocKey {
        let mut k = self.0;
        k[0] = P_FAILURE;
        DocKey(k)
    }

    /// The key's MAC as a format-4 store keeps it (its first 16 bytes).
    fn mac16(&self) -> blocks::Mac16 {
        let mut m = [0u8; 16];
        m.copy_from_slice(&self.0[1..17]);
        m
    }

    /// The key of a format-4 store for a MAC prefix.
    fn from_mac16(mac: &blocks::Mac16) -> Self {
        let mut k = [0u8; 1 + DOC_KEY_LEN];
        k[0] = P_DOC;
        k[1..17].copy_from_slice(mac);
        DocKey(k)
    }

    fn tombstone_key(&self) -> DocKey {
        let mut k = self.0;
        k[0] = P_TOMBSTONE;
        DocKey(k)
    }

    /// Reads a document key back from stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 1 + DOC_KEY_LEN] = bytes.try_into().ok()?;
        (arr[0] == P_DOC).then_some(DocKey(arr))
    }
}

/// A message that could not be indexed, kept (sealed) for retry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Source name.
    pub source: String,
    /// The reference to fetch it again.
    pub message: MessageRef,
    /// Stable reason name (`malformed`, `fetch`, `too-large`, ...).
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
    /// How many times it failed so far.
    pub attempts: u32,
    /// Unix seconds of the last attempt.
    pub last_attempt: i64,
    /// Unix seconds of the next retry under the policy in force when it
    /// failed (informational: each run applies its own policy).
    pub retry_after: i64,
    /// The decryptor's key set when it failed
    /// ([`crate::Decryptor::key_set`]): a `cannot-decrypt` failure is
    /// retried at once, whatever its backoff, by a run whose key set
    /// differs. `None` for a decryptor without keys, and for failures
    /// recorded before this field existed.
    pub key_set: Option<String>,
}

/// A [`Failure`] as recorded before it had `key_set` (issue 13). The
/// state is postcard-encoded, which has no optional trailing fields, so a
/// failure that does not decode as a `Failure` is read again in this
/// layout; new failures are always written in the new one.
#[derive(Deserialize)]
struct FailureWithoutKeySet {
    source: String,
    message: MessageRef,
    reason: String,
    detail: String,
    attempts: u32,
    last_attempt: i64,
    retry_after: i64,
}

impl From<FailureWithoutKeySet> for Failure {
    fn from(f: FailureWithoutKeySet) -> Self {
        Failure {
            source: f.source,
            message: f.message,
            reason: f.reason,
            detail: f.detail,
            attempts: f.attempts,
            last_attempt: f.last_attempt,
            retry_after: f.retry_after,
            key_set: None,
        }
    }
}

/// Where indexing of one source stands. Small on purpose: it is written
/// with every batch. The sync tokens, which can be as large as a listing,
/// are kept apart (see [`TokenSlot`]) and written only when they change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Listing position after the last stored batch; `None` before the first.
    pub cursor: Option<Cursor>,
    /// Set once a full listing has completed: later runs ask for changes
    /// since the [`TokenSlot::Synced`] token.
    pub synced: bool,
    /// Messages stored from this source so far in the current listing.
    pub done: u64,
}

/// The two sync tokens a source can have stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSlot {
    /// The source's state when the full listing began; once the listing is
    /// done, changes are asked for since this token.
    ListingStart,
    /// The source's state as of the last applied changes.
    Synced,
}

impl TokenSlot {
    fn label(self) -> &'static str {
        match self {
            TokenSlot::ListingStart => "token/listing-start",
            TokenSlot::Synced => "token/synced",
        }
    }
}

/// Counts that let `verify` notice records that vanished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Number of documents.
    pub documents: u64,
    /// Number of recorded failures.
    pub failures: u64,
    /// Incremented with every applied batch.
    pub generation: u64,
}

/// An open, unlocked index store.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    sealed: sled::Tree,
    keys: Keys,
    // The format of this index (see [`FORMAT_VERSION`]).
    format: u32,
    // Held for the store's lifetime: the OS lock that keeps other processes out.
    _lock: File,
    // Serialises writers, so the manifest's read-modify-write is consistent.
    write_lock: std::sync::Mutex<()>,
    // The records' compression dictionary, once there is one; whether it is
    // in the database yet; and, until there is one, the record encodings it
    // will be made of.
    dictionary: std::sync::OnceLock<Dictionary>,
    dictionary_stored: std::sync::atomic::AtomicBool,
    samples: std::sync::Mutex<zeroize::Zeroizing<Vec<u8>>>,
    // The manifest's generation, as of the last applied batch: read by
    // every search, so kept here rather than decrypted each time.
    generation: std::sync::atomic::AtomicU64,
    // How many tombstones the store holds: while none, a write need not
    // look for one.
    tombstones: std::sync::atomic::AtomicU64,
    // Format 4: the blocks' maps and segment files.
    blocks: Option<std::sync::RwLock<blocks::Blocks>>,
    // Format 4: the tree that holds the dictionary alone.
    dictionary_tree: Option<sled::Tree>,
    // Format 4: the tree of the sync tokens.
    tokens_tree: Option<sled::Tree>,
}

/// Where a stored record is: its sealed value (formats 1 to 3) or its
/// document number (format 4). Read it with [`Store::open_located`].
#[derive(Clone, Debug)]
pub(crate) enum Located {
    /// The record's envelope.
    Sealed(sled::IVec),
    /// The record's document number.
    Docno(u64),
}

impl Located {
    /// What changes with every write of the record: the envelope's
    /// [`stamp`](crate::seal::stamp), or the document number.
    pub(crate) fn stamp(&self) -> u64 {
        match self {
            Located::Sealed(v) => crate::seal::stamp(v),
            Located::Docno(d) => *d,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Bytes of sled's page cache when the opener does not say
/// ([`IndexConfig::store_cache_bytes`](crate::IndexConfig::store_cache_bytes)).
///
/// sled applies every write to the leaf that holds its key, and the keys are
/// MACs, so a batch touches leaves all over the tree: with the leaves of a
/// chat-sized store (258k records, ≈ 50 MB of sealed records) in cache,
/// writes are fast, and at 32 or 16 MiB they were 25–40 % slower. The
/// memory it saves while a large sync indexes is small beside that: about
/// 30 MiB at 16 MiB (`bench-notes/round5.md`).
pub(crate) const DEFAULT_DB_CACHE: usize = 64 << 20;

fn open_db(path: &Path, cache_bytes: usize) -> Result<sled::Db> {
    // sled releases its file lock from a background thread after the last
    // handle is dropped, so reopening an index right after closing it in the
    // same process can find the lock still held for a moment. sealdex's own
    // lock file (taken before this) already excludes other openers, so
    // waiting briefly here only waits for that release.
    let mut waited = std::time::Duration::ZERO;
    loop {
        match sled::Config::new()
            .path(path.join(DB_DIR))
            .cache_capacity(cache_bytes as u64)
            .open()
        {
            // sled 0.34 reports it as an `Other` I/O error with this text.
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && waited < std::time::Duration::from_secs(2) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
                waited += std::time::Duration::from_millis(10);
            }
            other => return other.map_err(Error::from),
        }
    }
}

impl Store {
    /// Creates a new index in `path` (created if missing, or empty) and
    /// unlocks it with `cred`. Fails if an index is already there.
    pub fn create(path: &Path, cred: &Credential, kdf: KdfParams) -> Result<Store> {
        Self::create_tuned(path, cred, kdf, DEFAULT_DB_CACHE)
    }

    /// [`create`](Self::create) with sled's page cache at `cache_bytes`.
    pub(crate) fn create_tuned(
        path: &Path,
        cred: &Credential,
        kdf: KdfParams,
        cache_bytes: usize,
    ) -> Result<Store> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let lock = lock_dir(path)?;
        if is_index_dir(path) {
            return Err(Error::AlreadyExists {
                path: path.to_owned(),
            });
        }
        let foreign = std::fs::read_dir(path)
            .map_err(|e| Error::io(path, e))?
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name() != LOCK_FILE
                    && e.file_name() != DB_DIR
                    && e.file_name() != COMMIT_FILE
                    && e.file_name() != blocks::BLOCKS_DIR
            });
        if foreign {
            return Err(Error::NotAnIndex {
                path: path.to_owned(),
            });
        }
        // A `db` directory without a keyring is a creation that crashed
        // before its keyring landed: nothing in it can ever be unlocked.
        let stale = path.join(DB_DIR);
        if stale.exists() {
            std::fs::remove_dir_all(&stale).map_err(|e| Error::io(&stale, e))?;
        }
        let _ = std::fs::remove_file(path.join(COMMIT_FILE));
        let stale = path.join(blocks::BLOCKS_DIR);
        if stale.exists() {
            std::fs::remove_dir_all(&stale).map_err(|e| Error::io(&stale, e))?;
        }
        blocks::Blocks::create_dir(path)?;
        let data_key = SecretKey::random()?;
        let kek = KekSpec::new_for(cred, kdf)?;
        let wrapped = kek.wrap(cred, &data_key)?;
        let db = open_db(path, cache_bytes)?;
        Keyring {
            format: FORMAT_VERSION,
            kek,
            wrapped,
        }
        .write(path)?;
        info!(path = %path.display(), "created index");
        Self::finish_open(path, db, data_key, lock, FORMAT_VERSION)
    }

    /// Opens and unlocks the index in `path`.
    ///
    /// A wrong credential gives [`Error::WrongKey`] before the database is
    /// opened, so it changes nothing on disk.
    pub fn open(path: &Path, cred: &Credential) -> Result<Store> {
        Self::open_tuned(path, cred, DEFAULT_DB_CACHE)
    }

    /// [`open`](Self::open) with sled's page cache at `cache_bytes`.
    pub(crate) fn open_tuned(path: &Path, cred: &Credential, cache_bytes: usize) -> Result<Store> {
        if !is_index_dir(path) {
            return Err(Error::NotFound {
                path: path.to_owned(),
            });
        }
        let lock = lock_dir(path)?;
        let mut keyring = Keyring::read(path)?;
        let data_key = keyring.kek.unwrap(cred, &keyring.wrapped)?;
        let db = open_db(path, cache_bytes)?;
        debug!(path = %path.display(), "unlocked index");
        if keyring.format == 2 {
            // Format 3 writes records an older build would misread: say
            // so in the keyring before the first one is written.
            keyring.format = LAST_KEYED_FORMAT;
            keyring.write(path)?;
            info!("index marked format {LAST_KEYED_FORMAT}; its records are read as they are");
        }
        Self::finish_open(path, db, data_key, lock, keyring.format)
    }

    /// Opens the index in `path`, creating it first if there is none.
    /// Returns the store and whether it was created.
    pub fn open_or_create(path: &Path, cred: &Credential, kdf: KdfParams) -> Result<(Store, bool)> {
        Self::open_or_create_tuned(path, cred, kdf, DEFAULT_DB_CACHE)
    }

    /// [`open_or_create`](Self::open_or_create) with sled's page cache at
    /// `cache_bytes`.
    pub(crate) fn open_or_create_tuned(
        path: &Path,
        cred: &Credential,
        kdf: KdfParams,
        cache_bytes: usize,
    ) -> Result<(Store, bool)> {
        if is_index_dir(path) {
            Ok((Self::open_tuned(path, cred, cache_bytes)?, false))
        } else {
            Ok((Self::create_tuned(path, cred, kdf, cache_bytes)?, true))
        }
    }

    fn finish_open(
        path: &Path,
        db: sled::Db,
        data_key: SecretKey,
        lock: File,
        format: u32,
    ) -> Result<Store> {
        let sealed = db.open_tree("sealed")?;
        let (dictionary_tree, tokens_tree) = if format > LAST_KEYED_FORMAT {
            (
                Some(db.open_tree(DICTIONARY_TREE)?),
                Some(db.open_tree(TOKENS_TREE)?),
            )
        } else {
            (None, None)
        };
        let store = Store {
            path: path.to_owned(),
            db,
            sealed,
            keys: Keys::derive(data_key),
            format,
            _lock: lock,
            write_lock: std::sync::Mutex::new(()),
            dictionary: std::sync::OnceLock::new(),
            dictionary_stored: std::sync::atomic::AtomicBool::new(false),
            samples: std::sync::Mutex::new(zeroize::Zeroizing::new(Vec::new())),
            generation: std::sync::atomic::AtomicU64::new(0),
            tombstones: std::sync::atomic::AtomicU64::new(0),
            blocks: None,
            dictionary_tree,
            tokens_tree,
        };
        store.check_commit_file()?;
        store.load_dictionary()?;
        remove_upgrade_leftover(path);
        if format < FORMAT_VERSION {
            // A warning, so that the CLI shows it at its default level: the
            // user has something to do. Not started here (see
            // `crate::upgrade`, "Why not automatically at open").
            tracing::warn!(
                path = %path.display(),
                format,
                "this index is in store format {format}; an upgrade to format {FORMAT_VERSION} \
                 (smaller and faster) is available: `sealdex upgrade` or `Index::upgrade`"
            );
        }
        let mut store = store;
        if format > LAST_KEYED_FORMAT {
            // Read in order, opened in parallel (one per block: a million
            // messages make about a hundred thousand).
            use rayon::prelude::*;
            let sealed_positions: Vec<(sled::IVec, sled::IVec)> = store
                .sealed
                .scan_prefix([P_BLOCK])
                .collect::<std::result::Result<_, _>>()?;
            let positions: Vec<(u64, blocks::Position)> = sealed_positions
                .par_iter()
                .map(|(k, v)| {
                    let first = k
                        .get(1..9)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_be_bytes)
                        .ok_or_else(|| {
                            Error::Corrupt("a block position of the wrong size".into())
                        })?;
                    let pos: blocks::Position =
                        store.open_state(RecordKind::BlockPosition, k, v)?;
                    Ok((first, pos))
                })
                .collect::<Result<_>>()?;
            drop(sealed_positions);
            let mut deleted = std::collections::HashSet::new();
            for k in store.sealed.scan_prefix([P_TOMBSTONE]).keys() {
                let k = k?;
                let mut m = [0u8; 16];
                m.copy_from_slice(
                    k.get(1..17)
                        .ok_or_else(|| Error::Corrupt("a tombstone of the wrong size".into()))?,
                );
                deleted.insert(m);
            }
            let blocks =
                blocks::Blocks::open(path, format, &store.keys.documents, positions, &deleted)?;
            store.blocks = Some(std::sync::RwLock::new(blocks));
        }
        store.generation.store(
            store.manifest()?.generation,
            std::sync::atomic::Ordering::Release,
        );
        let tombstones = store.sealed.scan_prefix([P_TOMBSTONE]).keys().count() as u64;
        store
            .tombstones
            .store(tombstones, std::sync::atomic::Ordering::Release);
        Ok(store)
    }

    /// Compares the database's manifest with the last commit recorded
    /// outside it.
    ///
    /// Why a second copy: sled treats a damaged log entry like a write torn
    /// by a crash and silently drops it and everything after it. A flipped
    /// byte in its file would then look like an index that was never
    /// filled. The commit file, written after every flushed batch, knows
    /// which generation was reported done; a database behind it has lost
    /// committed data, which is reported instead of served. A database one
    /// step ahead is a crash between the two writes, and is caught up.
    fn check_commit_file(&self) -> Result<()> {
        let file = self.path.join(COMMIT_FILE);
        let committed = match std::fs::read(&file) {
            Ok(bytes) => self.open_state::<Manifest>(RecordKind::Manifest, COMMIT_AAD, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(Error::io(&file, e)),
        };
        let current = self.manifest()?;
        if current.generation < committed.generation {
            return Err(Error::Tampered {
                kind: "manifest",
                detail: format!(
                    "the database is at batch {} but batch {} was committed: committed records \
                     were lost or rolled back",
                    current.generation, committed.generation
                ),
            });
        }
        if current != committed {
            self.write_commit_file(&current)?;
        }
        Ok(())
    }

    fn write_commit_file(&self, m: &Manifest) -> Result<()> {
        let sealed = self.seal_state(RecordKind::Manifest, COMMIT_AAD, m);
        write_atomic(&self.path, COMMIT_FILE, &sealed)
    }

    /// The index directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key the inverted index's files are sealed under.
    #[cfg(feature = "tantivy")]
    pub(crate) fn index_files_key(&self) -> &SecretKey {
        &self.keys.index_files
    }

    /// The store key of a message.
    pub fn doc_key(&self, source: &str, id: &str) -> DocKey {
        let mac = self.keys.id_mac.doc_key(source, id);
        if self.blocks.is_some() {
            let mut m = [0u8; 16];
            m.copy_from_slice(&mac[..16]);
            DocKey::from_mac16(&m)
        } else {
            DocKey::with_prefix(P_DOC, mac)
        }
    }

    fn blocks(&self) -> Option<std::sync::RwLockReadGuard<'_, blocks::Blocks>> {
        self.blocks
            .as_ref()
            .map(|b| b.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Where the record under `key` is, if there is one.
    pub(crate) fn locate(&self, key: &DocKey) -> Result<Option<Located>> {
        match self.blocks() {
            Some(b) => Ok(b.docno(&key.mac16()).map(Located::Docno)),
            None => Ok(self.sealed.get(key.as_bytes())?.map(Located::Sealed)),
        }
    }

    /// Authenticates and decodes the record under `key` found at `at`.
    pub(crate) fn open_located(&self, key: &DocKey, at: &Located) -> Result<Record> {
        match at {
            Located::Sealed(v) => self.open_record(key.as_bytes(), v),
            Located::Docno(d) => {
                let (record, mac) = self.read_docno(*d)?;
                if mac != key.mac16() {
                    return Err(Error::Tampered {
                        kind: RecordKind::Block.name(),
                        detail: "a record was found under another key".into(),
                    });
                }
                Ok(record)
            }
        }
    }

    /// The record with document number `docno` (format 4), with its key's
    /// MAC prefix, checked against the record's own source and id.
    fn read_docno(&self, docno: u64) -> Result<(Record, blocks::Mac16)> {
        // One read guard from finding the block to reading it: a
        // compaction (which takes the write lock) cannot move it between.
        let b = self
            .blocks()
            .ok_or_else(|| Error::Corrupt("document numbers need a format-4 store".into()))?;
        let (record, mac) = self.record_in(&b, docno)?;
        drop(b);
        self.check_mac(&record, &mac)?;
        Ok((record, mac))
    }

    /// The record numbered `docno` and the key its block's directory gives
    /// it, read under the caller's guard (so a compaction cannot move the
    /// block between finding and reading it). Not checked against the key:
    /// that is [`Store::check_mac`]'s.
    fn record_in(&self, b: &blocks::Blocks, docno: u64) -> Result<(Record, blocks::Mac16)> {
        let slot = b.slot(docno).ok_or_else(|| Error::Tampered {
            kind: RecordKind::Block.name(),
            detail: format!("no block holds document {docno}"),
        })?;
        let record = b.record(&self.keys.documents, self.dictionary.get(), &slot)?;
        Ok((record, slot.mac))
    }

    fn check_mac(&self, record: &Record, mac: &blocks::Mac16) -> Result<()> {
        if self.doc_key(&record.source, &record.id).mac16() != *mac {
            return Err(Error::Tampered {
                kind: RecordKind::Block.name(),
                detail: "a block's record does not match its key".into(),
            });
        }
        Ok(())
    }

    /// The keys of many document numbers (format 4), from memory under
    /// one lock: what a search's hits resolve through.
    pub(crate) fn keys_of_docnos(&self, docnos: &[u64]) -> Vec<Option<DocKey>> {
        match self.blocks() {
            Some(b) => b
                .macs_of(docnos)
                .into_iter()
                .map(|m| m.map(|m| DocKey::from_mac16(&m)))
                .collect(),
            None => vec![None; docnos.len()],
        }
    }

    /// The live record of `key` when `docno` (a search hit's number) is
    /// still its live record: read by number, without finding the key's
    /// number again. If the record was replaced or deleted since the
    /// search, what [`Store::get_by_key`] reads now.
    pub(crate) fn get_hit(&self, docno: u64, key: &DocKey) -> Result<Option<Record>> {
        let mac = key.mac16();
        let Some(b) = self.blocks() else {
            return self.get_by_key(key);
        };
        if !b.is_live(docno, &mac) {
            drop(b);
            return self.get_by_key(key);
        }
        let (record, found) = self.record_in(&b, docno)?;
        drop(b);
        if found != mac {
            return Err(Error::Tampered {
                kind: RecordKind::Block.name(),
                detail: "a record was found under another key".into(),
            });
        }
        self.check_mac(&record, &found)?;
        Ok(Some(record))
    }

    /// Whether this store keeps records in blocks (format 4), and refers
    /// to them by document number.
    pub(crate) fn has_docnos(&self) -> bool {
        self.blocks.is_some()
    }

    /// Every live record's key and [`Located::stamp`], without decrypting
    /// any record (format 4: from memory; before, the envelopes' stamps).
    pub(crate) fn stamps(&self) -> Result<Vec<(DocKey, u64)>> {
        match self.blocks() {
            Some(b) => Ok(b
                .live_docnos()
                .into_iter()
                .map(|(m, d)| (DocKey::from_mac16(&m), d))
                .collect()),
            None => self
                .sealed
                .scan_prefix([P_DOC])
                .map(|r| {
                    let (k, v) = r?;
                    let key = DocKey::from_bytes(&k)
                        .ok_or_else(|| Error::Corrupt("a document key of the wrong size".into()))?;
                    Ok((key, crate::seal::stamp(&v)))
                })
                .collect(),
        }
    }

    /// The keys of every stored record, in key order.
    pub fn keys(&self) -> Result<Vec<DocKey>> {
        let mut keys: Vec<DocKey> = self.stamps()?.into_iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// Reads the live records of `keys` with their stamps, in parallel;
    /// a key with no record is left out.
    pub(crate) fn read_many(&self, keys: &[DocKey]) -> Result<Vec<(DocKey, u64, Record)>> {
        use rayon::prelude::*;
        let located: Vec<(DocKey, Located)> = keys
            .iter()
            .filter_map(|k| match self.locate(k) {
                Ok(Some(at)) => Some(Ok((*k, at))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_>>()?;
        located
            .par_iter()
            .map(|(k, at)| Ok((*k, at.stamp(), self.open_located(k, at)?)))
            .collect()
    }

    /// Calls `f` with every live record and its key, a chunk at a time,
    /// decrypting in parallel (the cache's fill, a rebuild of the
    /// inverted index). Chunks follow the store's order, not dates.
    pub(crate) fn for_each_chunk(
        &self,
        mut f: impl FnMut(Vec<(DocKey, u64, Record)>) -> Result<()>,
    ) -> Result<()> {
        use rayon::prelude::*;
        const CHUNK: usize = 4096;
        if let Some(b) = self.blocks() {
            let firsts: Vec<u64> = b.positions().into_iter().map(|(f, _)| f).collect();
            drop(b);
            for group in firsts.chunks(16) {
                let parts: Vec<Vec<(DocKey, u64, Record)>> = group
                    .par_iter()
                    .map(|&first| self.live_in_block(first))
                    .collect::<Result<_>>()?;
                f(parts.into_iter().flatten().collect())?;
            }
            return Ok(());
        }
        let mut batch: Vec<(sled::IVec, sled::IVec)> = Vec::with_capacity(CHUNK);
        let mut flush = |batch: &mut Vec<(sled::IVec, sled::IVec)>| -> Result<()> {
            let opened: Vec<(DocKey, u64, Record)> = batch
                .par_iter()
                .map(|(k, v)| {
                    let key = DocKey::from_bytes(k)
                        .ok_or_else(|| Error::Corrupt("a document key of the wrong size".into()))?;
                    Ok((key, crate::seal::stamp(v), self.open_record(k, v)?))
                })
                .collect::<Result<_>>()?;
            batch.clear();
            f(opened)
        };
        for item in self.sealed.scan_prefix([P_DOC]) {
            batch.push(item?);
            if batch.len() == CHUNK {
                flush(&mut batch)?;
            }
        }
        flush(&mut batch)
    }

    /// The first document numbers of the store's blocks, in order
    /// (format 4; `None` before). Blocks hold disjoint ranges of numbers
    /// and a compacted block keeps its first number, so reading the blocks
    /// in this order reads the records in document-number order, one
    /// decryption per block.
    pub(crate) fn block_firsts(&self) -> Option<Vec<u64>> {
        self.blocks()
            .map(|b| b.positions().into_iter().map(|(f, _)| f).collect())
    }

    /// Every block's first and last document numbers, in order (format 4;
    /// `None` before): what a snapshot by blocks lists at its cut.
    pub(crate) fn block_spans(&self) -> Option<Vec<(u64, u64)>> {
        self.blocks().map(|b| b.spans())
    }

    /// The number the next stored record gets (format 4): every number in
    /// use is below it.
    pub(crate) fn next_docno(&self) -> Option<u64> {
        self.blocks().map(|b| b.next_docno())
    }

    /// Whether no block holds a document number in `lo..=hi` (format 4;
    /// `false` before, where nothing can be adopted).
    pub(crate) fn docnos_free(&self, lo: u64, hi: u64) -> bool {
        self.blocks().is_some_and(|b| b.range_free(lo, hi))
    }

    /// Raises the next document number to at least `floor` (format 4;
    /// nothing before). Not stored: the blocks written from then on carry
    /// it, and a device that needs the floor after a restart sets it again
    /// (see `sync::share::snapshot`).
    pub(crate) fn reserve_docnos(&self, floor: u64) {
        if let Some(b) = &self.blocks {
            b.write().unwrap_or_else(|p| p.into_inner()).reserve(floor);
        }
    }

    /// The body of block `first` as sealed (not decompressed) and its
    /// document numbers, when every record in it is live and numbered
    /// above `after` (format 4): what a snapshot ships so that the new
    /// device seals it as it is. `None` when it cannot go whole (gone,
    /// holding dead records, or partly sent already).
    pub(crate) fn live_body(&self, first: u64, after: u64) -> Result<Option<(Vec<u64>, Vec<u8>)>> {
        match self.blocks() {
            Some(b) => b.live_body(&self.keys.documents, first, after),
            None => Ok(None),
        }
    }

    /// The plaintext of this store's compression dictionary, if it has one
    /// (what a peer needs to read the block bodies [`Store::live_body`]
    /// gives).
    pub(crate) fn dictionary_bytes(&self) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        self.dictionary
            .get()
            .map(|d| zeroize::Zeroizing::new(d.as_bytes().to_vec()))
    }

    /// Makes a peer's dictionary this store's, if this store has none yet
    /// (it is written with the next batch, before the blocks that use it).
    /// Returns whether this store's dictionary is now the peer's, so that
    /// the peer's block bodies can be stored as they are.
    pub(crate) fn adopt_dictionary(&self, peer: &Dictionary) -> bool {
        if self.format >= 2
            && self.dictionary.get().is_none()
            && let Some(d) = Dictionary::from_bytes(peer.as_bytes().to_vec())
        {
            let _ = self.dictionary.set(d);
        }
        self.dictionary
            .get()
            .is_some_and(|d| d.as_bytes() == peer.as_bytes())
    }

    /// Checks a block body a peer's snapshot carried (see
    /// [`Store::live_body`]) for the records numbered `docnos`: it must
    /// decode, with the peer's dictionary `peer_dict` if it needs one, to
    /// exactly as many record encodings, at most [`PEER_BODY_MAX`] bytes
    /// of them. Returns each record's key in this store (from its source
    /// and id, under this store's key), and whether the body can be stored
    /// as it is (it needs no dictionary, or this store's is the peer's).
    /// A body that does not check out is [`Error::Corrupt`]: never stored.
    pub(crate) fn open_peer_body(
        &self,
        docnos: &[u64],
        body: &[u8],
        peer_dict: Option<&Dictionary>,
    ) -> Result<PeerBody> {
        let bad = |what: &str| Error::Corrupt(format!("a peer's block body: {what}"));
        if self.blocks.is_none() {
            return Err(bad("this store keeps no blocks (format 1 to 3)"));
        }
        let size = body
            .get(1..)
            .and_then(crate::record::decompressed_size)
            .ok_or_else(|| bad("no readable size"))?;
        if size > PEER_BODY_MAX {
            return Err(bad("larger than a block may be"));
        }
        let decoded = blocks::decode_body(body, peer_dict).map_err(|e| match e {
            blocks::BodyError::NeedsDictionary => bad("needs the peer's dictionary, not sent"),
            blocks::BodyError::Corrupt(what) => bad(&what),
        })?;
        if decoded.len() != docnos.len() || docnos.is_empty() {
            return Err(bad("another number of records than of document numbers"));
        }
        // Every record decodes (nothing undecodable is stored), and its
        // key here is made from its own source and id.
        let mut keys = Vec::with_capacity(docnos.len());
        let mut records = Vec::with_capacity(docnos.len());
        for raw in decoded.iter() {
            let record =
                crate::record::decode_raw(raw).map_err(|_| bad("an undecodable record"))?;
            keys.push(self.doc_key(&record.source, &record.id));
            records.push(record);
        }
        let as_is = !blocks::body_needs_dictionary(body)
            || match (self.dictionary.get(), peer_dict) {
                (Some(mine), Some(theirs)) => mine.as_bytes() == theirs.as_bytes(),
                _ => false,
            };
        Ok(PeerBody {
            keys,
            records,
            as_is,
        })
    }

    /// The live records of one block (format 4), each checked against its
    /// key, in document-number order; none when the block is gone (a
    /// compaction drops only blocks left without a live record).
    pub(crate) fn live_in_block(&self, first: u64) -> Result<Vec<(DocKey, u64, Record)>> {
        let b = self
            .blocks()
            .ok_or_else(|| Error::Corrupt("blocks need a format-4 store".into()))?;
        if !b.has_block(first) {
            // Dropped by a compaction since the caller listed the blocks:
            // it had no live record.
            return Ok(Vec::new());
        }
        let all = b.block_records(&self.keys.documents, self.dictionary.get(), first)?;
        let live: Vec<(u64, blocks::Mac16, Vec<u8>)> = all
            .into_iter()
            .filter(|(d, m, _)| b.is_live(*d, m))
            .collect();
        drop(b);
        live.into_iter()
            .map(|(d, m, raw)| {
                let record = crate::record::decode_raw(&raw)?;
                self.check_mac(&record, &m)?;
                Ok((DocKey::from_mac16(&m), d, record))
            })
            .collect()
    }

    /// Reads one message's record.
    pub fn get(&self, source: &str, id: &str) -> Result<Option<Record>> {
        let key = self.doc_key(source, id);
        self.get_by_key(&key)
    }

    /// Reads a record by its store key.
    pub fn get_by_key(&self, key: &DocKey) -> Result<Option<Record>> {
        match self.locate(key)? {
            Some(at) => self.open_located(key, &at).map(Some),
            None => Ok(None),
        }
    }

    /// Iterates over the sealed documents of a store in format 1 to 3,
    /// unopened: `(key, envelope)` pairs to open with
    /// [`Store::open_record`], for example in parallel. A format-4 store
    /// keeps its records in blocks and yields none here: use
    /// [`Store::records`] or [`Store::keys`].
    pub fn sealed_documents(&self) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + '_ {
        self.sealed
            .scan_prefix([P_DOC])
            .map(|r| r.map_err(Error::from))
    }

    /// Iterates over every record, authenticating each.
    pub fn records(&self) -> Box<dyn Iterator<Item = Result<Record>> + '_> {
        match self.blocks() {
            Some(b) => {
                let firsts: Vec<u64> = b.positions().into_iter().map(|(f, _)| f).collect();
                Box::new(firsts.into_iter().flat_map(
                    move |first| match self.live_in_block(first) {
                        Ok(v) => v.into_iter().map(|(_, _, r)| Ok(r)).collect::<Vec<_>>(),
                        Err(e) => vec![Err(e)],
                    },
                ))
            }
            None => Box::new(
                self.sealed_documents()
                    .map(move |r| r.and_then(|(k, v)| self.open_record(&k, &v))),
            ),
        }
    }

    /// Number of stored documents, from the sealed manifest.
    pub fn len(&self) -> Result<u64> {
        Ok(self.manifest()?.documents)
    }

    /// Whether no document is stored.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The sealed manifest (all zero in a new store).
    pub fn manifest(&self) -> Result<Manifest> {
        match self.sealed.get(MANIFEST_KEY)? {
            None => Ok(Manifest::default()),
            Some(v) => self.open_state(RecordKind::Manifest, MANIFEST_KEY, &v),
        }
    }

    /// The on-disk format of this index (see [`FORMAT_VERSION`]).
    pub fn format(&self) -> u32 {
        self.format
    }

    fn checkpoint_key(&self, source: &str) -> Vec<u8> {
        self.state_key("checkpoint", source)
    }

    fn state_key(&self, label: &str, source: &str) -> Vec<u8> {
        let mut k = vec![P_CHECKPOINT];
        k.extend_from_slice(&self.keys.id_mac.state_key(label, source));
        k
    }

    /// A stored sync token of a source.
    pub fn token(&self, source: &str, slot: TokenSlot) -> Result<Option<SyncToken>> {
        let key = self.state_key(slot.label(), source);
        let tree = self.tokens_tree.as_ref().unwrap_or(&self.sealed);
        match tree.get(&key)? {
            None => Ok(None),
            Some(v) => self.open_state(RecordKind::Checkpoint, &key, &v).map(Some),
        }
    }

    /// The checkpoint of a source, if it has one.
    pub fn checkpoint(&self, source: &str) -> Result<Option<Checkpoint>> {
        let key = self.checkpoint_key(source);
        match self.sealed.get(&key)? {
            None => Ok(None),
            Some(v) => self.open_state(RecordKind::Checkpoint, &key, &v).map(Some),
        }
    }

    /// The store generation as of the last applied batch (the manifest's,
    /// without decrypting it).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The version of the delete that removed the record under `key`, if
    /// it left a tombstone.
    pub(crate) fn tombstone(&self, key: &DocKey) -> Result<Option<u64>> {
        if self.tombstones.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return Ok(None);
        }
        let tk = key.tombstone_key();
        match self.sealed.get(tk.as_bytes())? {
            None => Ok(None),
            Some(v) => self
                .open_state(RecordKind::Tombstone, tk.as_bytes(), &v)
                .map(Some),
        }
    }

    /// How many tombstones, and how many checkpoints and sync tokens, the
    /// store holds, without opening them: an upgrade (`crate::upgrade`)
    /// compares them with what it could carry.
    pub(crate) fn state_counts(&self) -> (u64, u64) {
        let tombstones = self.tombstones.load(std::sync::atomic::Ordering::Acquire);
        let mut state = self.sealed.scan_prefix([P_CHECKPOINT]).count() as u64;
        if let Some(t) = &self.tokens_tree {
            state += t.len() as u64;
        }
        (tombstones, state)
    }

    /// The failure recorded for a message, if any.
    pub fn failure(&self, key: &DocKey) -> Result<Option<Failure>> {
        let fk = key.failure_key();
        match self.sealed.get(fk.as_bytes())? {
            None => Ok(None),
            Some(v) => self.open_failure(fk.as_bytes(), &v).map(Some),
        }
    }

    /// Every recorded failure.
    pub fn failures(&self) -> Result<Vec<Failure>> {
        self.sealed
            .scan_prefix([P_FAILURE])
            .map(|r| {
                let (k, v) = r?;
                self.open_failure(&k, &v)
            })
            .collect()
    }

    /// Opens a sealed failure, in its current layout or in the one before
    /// `key_set` (see [`FailureWithoutKeySet`]).
    pub(crate) fn open_failure(&self, key: &[u8], sealed: &[u8]) -> Result<Failure> {
        match self.open_state::<Failure>(RecordKind::Failure, key, sealed) {
            Err(Error::Corrupt(_)) => self
                .open_state::<FailureWithoutKeySet>(RecordKind::Failure, key, sealed)
                .map(Failure::from),
            other => other,
        }
    }

    /// Applies a batch atomically, then flushes it to disk: once this
    /// returns, the batch survives a crash. Returns, in a format-4 store,
    /// the document number given to each put, in order (empty before).
    pub(crate) fn apply(&self, batch: WriteBatch) -> Result<Vec<u64>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut manifest = self.manifest()?;
        // The manifest counts failure records, and this batch adds its own
        // only after the puts and deletes: with none stored, there is no
        // failure record to look up for each put (one sled lookup per
        // record saved on every clean run).
        let any_failures = manifest.failures > 0;
        let mut b = sled::Batch::default();
        let mut tombstones = 0i64;
        let blocked = self.blocks.is_some();
        // Format 4: the puts' encodings, to pack into blocks, and the keys
        // whose record the batch deletes.
        let mut packed: Vec<(blocks::Mac16, Vec<u8>)> = Vec::new();
        let mut unlinked: Vec<blocks::Mac16> = Vec::new();
        let numbered = batch.docnos;
        let given = batch.given;
        if !given.is_empty() && !blocked {
            return Err(Error::Corrupt(
                "a peer's blocks need a format-4 store".into(),
            ));
        }
        for g in &given {
            manifest.documents += g.docnos.len() as u64;
        }
        for put in batch.puts {
            if !put.existed {
                manifest.documents += 1;
            }
            let fk = put.key.failure_key();
            if any_failures && self.sealed.contains_key(fk.as_bytes())? {
                manifest.failures = manifest.failures.saturating_sub(1);
                b.remove(fk.as_bytes());
            }
            if put.tombstone {
                b.remove(put.key.tombstone_key().as_bytes());
                tombstones -= 1;
            }
            if blocked {
                packed.push((put.key.mac16(), put.sealed));
            } else {
                b.insert(put.key.as_bytes(), put.sealed);
            }
        }
        for (key, tombstone) in batch.deletes {
            if blocked {
                let held = self.blocks().and_then(|bl| bl.docno(&key.mac16()));
                if held.is_some() {
                    manifest.documents = manifest.documents.saturating_sub(1);
                    unlinked.push(key.mac16());
                }
            } else if self.sealed.contains_key(key.as_bytes())? {
                manifest.documents = manifest.documents.saturating_sub(1);
                b.remove(key.as_bytes());
            }
            // A format-4 store finds its deleted records at open by their
            // tombstones: every delete leaves one.
            let tombstone = if blocked {
                Some(tombstone.unwrap_or(0))
            } else {
                tombstone
            };
            let fk = key.failure_key();
            if any_failures && self.sealed.contains_key(fk.as_bytes())? {
                manifest.failures = manifest.failures.saturating_sub(1);
                b.remove(fk.as_bytes());
            }
            if let Some(version) = tombstone {
                let tk = key.tombstone_key();
                if !self.sealed.contains_key(tk.as_bytes())? {
                    tombstones += 1;
                }
                b.insert(
                    tk.as_bytes(),
                    self.seal_state(RecordKind::Tombstone, tk.as_bytes(), &version),
                );
            }
        }
        for (key, failure) in batch.failures {
            let fk = key.failure_key();
            if !self.sealed.contains_key(fk.as_bytes())? {
                manifest.failures += 1;
            }
            b.insert(
                fk.as_bytes(),
                self.seal_state(RecordKind::Failure, fk.as_bytes(), &failure),
            );
        }
        // Format 4: sync tokens (as large as a listing) in a tree of their
        // own, written in one transaction with the batch; beside the
        // manifest, sled wrote a copy of them with every batch.
        let mut tokens = sled::Batch::default();
        let mut any_tokens = false;
        for (source, slot, token) in batch.tokens {
            let key = self.state_key(slot.label(), &source);
            let target = if self.tokens_tree.is_some() {
                any_tokens = true;
                &mut tokens
            } else {
                &mut b
            };
            match token {
                Some(t) => {
                    let sealed = self.seal_state(RecordKind::Checkpoint, &key, &t);
                    target.insert(key, sealed);
                }
                None => target.remove(key),
            }
        }
        if let Some((source, cp)) = batch.checkpoint {
            let key = self.checkpoint_key(&source);
            let sealed = self.seal_state(RecordKind::Checkpoint, &key, &cp);
            b.insert(key, sealed);
        }
        manifest.generation += 1;
        b.insert(
            MANIFEST_KEY,
            self.seal_state(RecordKind::Manifest, MANIFEST_KEY, &manifest),
        );
        // A record of this batch may be compressed against a dictionary
        // made since the last batch: it lands with them.
        let new_dictionary = match self.dictionary.get() {
            Some(d)
                if !self
                    .dictionary_stored
                    .load(std::sync::atomic::Ordering::Acquire) =>
            {
                let sealed =
                    self.keys
                        .documents
                        .seal(RecordKind::Dictionary, DICTIONARY_KEY, d.as_bytes());
                match &self.dictionary_tree {
                    // Format 4: in a tree of its own, written once and
                    // flushed before the batch whose blocks use it. In the
                    // tree of the manifest, whose leaf every batch
                    // rewrites, sled wrote a copy of this 256 KiB value
                    // with every batch (ChitChat: 126 MB of stale copies).
                    Some(t) => {
                        t.insert(DICTIONARY_KEY, sealed)?;
                        t.flush()?;
                    }
                    None => {
                        b.insert(DICTIONARY_KEY, sealed);
                    }
                }
                true
            }
            _ => false,
        };
        // Format 4: the blocks are written and made durable before the
        // batch that references them.
        let new_blocks = match self.blocks() {
            Some(bl) if !packed.is_empty() || !given.is_empty() => {
                let new = if numbered.is_empty() && given.is_empty() {
                    bl.build(&self.keys.documents, self.dictionary.get(), &packed)
                } else {
                    if numbered.len() != packed.len() || numbered.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(Error::Corrupt(
                            "adopted document numbers that are out of order or miscounted".into(),
                        ));
                    }
                    // Checks that no new block overlaps another or one of
                    // this store's.
                    bl.build_numbered(
                        &self.keys.documents,
                        self.dictionary.get(),
                        &packed,
                        &numbered,
                        &given,
                    )?
                };
                bl.write(&new)?;
                new
            }
            _ => Vec::new(),
        };
        for nb in &new_blocks {
            let key = blocks::block_key(nb.first);
            b.insert(
                &key[..],
                self.seal_state(RecordKind::BlockPosition, &key, &nb.pos),
            );
        }
        let docnos: Vec<u64> = new_blocks
            .iter()
            .flat_map(|nb| nb.first..=nb.pos.last)
            .collect();
        match &self.tokens_tree {
            Some(t) if any_tokens => {
                use sled::Transactional as _;
                (&self.sealed, t)
                    .transaction(|(s, t)| {
                        s.apply_batch(&b)?;
                        t.apply_batch(&tokens)?;
                        Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                    })
                    .map_err(|e| match e {
                        sled::transaction::TransactionError::Storage(e) => Error::from(e),
                        sled::transaction::TransactionError::Abort(()) => {
                            Error::Corrupt("a store transaction was aborted".into())
                        }
                    })?;
            }
            _ => self.sealed.apply_batch(b)?,
        }
        self.db.flush()?;
        if let Some(bl) = &self.blocks {
            bl.write()
                .unwrap_or_else(|p| p.into_inner())
                .commit(new_blocks, &unlinked);
        }
        if new_dictionary {
            self.dictionary_stored
                .store(true, std::sync::atomic::Ordering::Release);
        }
        self.write_commit_file(&manifest)?;
        self.generation
            .store(manifest.generation, std::sync::atomic::Ordering::Release);
        let held = self.tombstones.load(std::sync::atomic::Ordering::Acquire) as i64;
        self.tombstones.store(
            (held + tombstones).max(0) as u64,
            std::sync::atomic::Ordering::Release,
        );
        if self.blocks.is_some()
            && let Err(e) = self.compact()
        {
            // The batch is durable; what the compaction wrote is not
            // referenced, and the next open drops it.
            tracing::warn!(error = %e, "compacting the store's blocks failed");
        }
        Ok(docnos)
    }

    /// Format 4: rewrites the blocks of segments that are mostly dead
    /// records (see `blocks::Blocks::segments_to_compact`) with their
    /// live records only, keeping their document numbers, then removes
    /// the segments nothing references any more. Called by the writer
    /// after a batch. Returns the number of segments compacted.
    ///
    /// Like a batch: the new blocks are written and fsynced, then one
    /// sled batch points the block positions at them, then the old
    /// segments are removed. A crash at any point leaves either the old
    /// blocks referenced or the new ones, and open removes what nothing
    /// references. The manifest does not change: the records are the same.
    fn compact(&self) -> Result<usize> {
        let Some(lock) = &self.blocks else {
            return Ok(0);
        };
        let segments = lock
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .segments_to_compact();
        if segments.is_empty() {
            return Ok(0);
        }
        let started = std::time::Instant::now();
        let (new, dropped) = {
            let b = lock.read().unwrap_or_else(|p| p.into_inner());
            let (new, dropped) =
                b.compacted(&self.keys.documents, self.dictionary.get(), &segments)?;
            b.write(&new)?;
            (new, dropped)
        };
        let mut batch = sled::Batch::default();
        for nb in &new {
            let key = blocks::block_key(nb.first);
            batch.insert(
                &key[..],
                self.seal_state(RecordKind::BlockPosition, &key, &nb.pos),
            );
        }
        for first in &dropped {
            batch.remove(&blocks::block_key(*first)[..]);
        }
        self.sealed.apply_batch(batch)?;
        self.db.flush()?;
        let (rewritten, removed) = (new.len(), dropped.len());
        let mut b = lock.write().unwrap_or_else(|p| p.into_inner());
        b.replace(new, &dropped);
        b.remove_unreferenced_segments()?;
        info!(
            segments = segments.len(),
            rewritten,
            removed,
            ms = started.elapsed().as_millis() as u64,
            "compacted the store's blocks"
        );
        Ok(segments.len())
    }

    /// Bytes the index occupies on disk.
    pub fn disk_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(rd) = std::fs::read_dir(p) else {
                return 0;
            };
            rd.filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.path)
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// The key with which processes that can unlock the index at `path`
    /// prove it to the process holding it open (the CLI's local socket:
    /// a second `sealdex search` while `sealdex index` runs). Reads the
    /// keyring and unwraps the data key without taking the index's lock,
    /// then derives a sub-key under its own label, so the data key itself
    /// never leaves this function. [`Error::WrongKey`] for a wrong
    /// credential, [`Error::NotFound`] when there is no index.
    pub fn derive_local_auth_key(
        path: &Path,
        cred: &Credential,
    ) -> Result<zeroize::Zeroizing<[u8; crate::keys::KEY_LEN]>> {
        if !is_index_dir(path) {
            return Err(Error::NotFound {
                path: path.to_owned(),
            });
        }
        let keyring = Keyring::read(path)?;
        let data_key = keyring.kek.unwrap(cred, &keyring.wrapped)?;
        Ok(zeroize::Zeroizing::new(
            *data_key.derive(LOCAL_AUTH_LABEL).expose(),
        ))
    }

    /// [`Store::derive_local_auth_key`] for the open store.
    pub fn local_auth_key(&self) -> zeroize::Zeroizing<[u8; crate::keys::KEY_LEN]> {
        zeroize::Zeroizing::new(*self.keys.data.derive(LOCAL_AUTH_LABEL).expose())
    }
}

/// Where an upgrade of the index at `path` builds its new index: a hidden
/// sibling directory (`.NAME.sealdex-upgrade`), on the same file system so
/// that the two can be swapped in one rename (see `crate::upgrade`).
/// `None` for a path without a directory name (`/`, `..`).
pub(crate) fn upgrade_dir(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut sibling = std::ffi::OsString::from(".");
    sibling.push(name);
    sibling.push(".sealdex-upgrade");
    Some(parent.join(sibling))
}

/// Removes what an interrupted upgrade left beside the index at `path`:
/// a half-built new index, or the old one after the swap. Called with the
/// index's lock held, which an upgrade holds from its start to its swap,
/// so no upgrade is running. Both are sealed, so a failure here only
/// leaves disk space taken, and is logged.
fn remove_upgrade_leftover(path: &Path) {
    let Some(dir) = upgrade_dir(path) else { return };
    if !dir.exists() {
        return;
    }
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => info!(path = %dir.display(), "removed what an interrupted upgrade left"),
        Err(e) => tracing::warn!(
            path = %dir.display(),
            error = %e,
            "cannot remove what an interrupted upgrade left; remove it by hand"
        ),
    }
}

/// The label of the local-socket authentication key
/// ([`Store::derive_local_auth_key`]); no other key uses it.
const LOCAL_AUTH_LABEL: &str = "local-auth";

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure recorded before `key_set` existed still reads (with
    /// `None`), next to one recorded with it.
    #[test]
    fn failures_without_a_key_set_still_read() {
        #[derive(Serialize)]
        struct Old<'a> {
            source: &'a str,
            message: MessageRef,
            reason: &'a str,
            detail: &'a str,
            attempts: u32,
            last_attempt: i64,
            retry_after: i64,
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(
            dir.path(),
            &Credential::passphrase("pw"),
            KdfParams::insecure_fast(),
        )
        .unwrap();
        let old_key = store.doc_key("src", "old");
        let fk = old_key.failure_key();
        let old = Old {
            source: "src",
            message: MessageRef {
                id: "old".into(),
                ..MessageRef::default()
            },
            reason: "cannot-decrypt",
            detail: "encrypted to key id(s) 0123456789ABCDEF",
            attempts: 3,
            last_attempt: 1_700_000_000,
            retry_after: 1_700_000_480,
        };
        let sealed = store.seal_state(RecordKind::Failure, fk.as_bytes(), &old);
        store.sealed.insert(fk.as_bytes(), sealed).unwrap();
        let new = Failure {
            source: "src".into(),
            message: MessageRef {
                id: "new".into(),
                ..MessageRef::default()
            },
            reason: "cannot-decrypt".into(),
            detail: String::new(),
            attempts: 1,
            last_attempt: 1_700_000_000,
            retry_after: 1_700_000_060,
            key_set: Some("00112233aabbccdd".into()),
        };
        let mut b = WriteBatch::default();
        b.fail(store.doc_key("src", "new"), new.clone());
        store.apply(b).unwrap();

        let read = store.failure(&old_key).unwrap().unwrap();
        assert_eq!((read.attempts, read.key_set), (3, None));
        assert_eq!(read.detail, old.detail);
        let mut all = store.failures().unwrap();
        all.sort_by(|a, b| a.message.id.cmp(&b.message.id));
        assert_eq!(all[0], new);
        assert_eq!(all[1].message.id, "old");
    }

    /// From format 2 on, sealed state is compressed: a sync token as large
    /// as a listing takes a fraction of its size in the database.
    #[test]
    fn large_sync_tokens_are_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let cred = Credential::passphrase("pw");
        let store = Store::create(dir.path(), &cred, KdfParams::insecure_fast()).unwrap();
        assert_eq!(store.format(), FORMAT_VERSION);
        let token: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("folder/{:05}.eml 1700000000 {}\n", i, i % 97).into_bytes())
            .collect();
        let mut b = WriteBatch::default();
        b.token("test", TokenSlot::Synced, Some(SyncToken(token.clone())));
        store.apply(b).unwrap();
        let tokens = store.tokens_tree.as_ref().expect("format 4");
        let state: usize = store
            .sealed
            .scan_prefix([P_CHECKPOINT])
            .chain(tokens.iter())
            .map(|r| r.unwrap().1.len())
            .sum();
        assert!(tokens.iter().count() > 0, "the token is in its tree");
        assert!(
            state * 10 < token.len(),
            "{state} bytes stored for a {} byte token",
            token.len()
        );
        drop(store);
        let store = Store::open(dir.path(), &cred).unwrap();
        assert_eq!(
            store.token("test", TokenSlot::Synced).unwrap().unwrap().0,
            token
        );
        assert!(store.verify().is_ok());
    }

    /// A tombstone is sealed like the rest: verify authenticates it, and a
    /// flipped byte in one is reported.
    #[test]
    fn tombstones_are_sealed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(
            dir.path(),
            &Credential::passphrase("pw"),
            KdfParams::insecure_fast(),
        )
        .unwrap();
        let key = store.doc_key("s", "gone");
        let mut b = WriteBatch::default();
        b.delete(key, Some(42));
        store.apply(b).unwrap();
        assert_eq!(store.tombstone(&key).unwrap(), Some(42));
        assert!(store.verify().is_ok());
        let tk = key.tombstone_key();
        let mut v = store.sealed.get(tk.as_bytes()).unwrap().unwrap().to_vec();
        v[20] ^= 1;
        store.sealed.insert(tk.as_bytes(), v).unwrap();
        assert!(store.tombstone(&key).is_err());
        assert!(!store.verify().is_ok());
    }
}
