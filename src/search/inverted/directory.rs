//! [`EncryptedDirectory`]: owns the inverted index's files on disk, each one
//! stored as sealed chunks of a fixed plaintext size, compressed where that
//! pays, under the index-files key, readable at random offsets without
//! decrypting whole files.
//!
//! # On-disk layout
//!
//! One directory (beside the sled store, e.g. `<index>/inverted/`) holds one
//! file per tantivy file. Its name is the hex of an HMAC-SHA256, under a
//! key derived for names, of the tantivy file name, so a listing shows
//! neither segment ids nor which file is `meta.json`:
//!
//! ```text
//!   <hex(MAC(name))>.sdx = chunk 0 ‖ chunk 1 ‖ … ‖ chunk n-1 ‖ table ‖ header
//!   chunk i  = seal(IndexChunk, aad_chunk(name, generation, i, is_last), zstd?(plaintext[i·C .. ]))
//!   table    = seal(IndexChunk, aad_table(name, generation), place 0 ‖ … ‖ place n-1)
//!   place i  = u32 LE: the sealed length of chunk i, top bit set if it is zstd
//!   header   = seal(IndexChunk, aad_header(name), magic ‖ format ‖ length ‖ C ‖ generation)
//!   aad_chunk  = "chunk" ‖ len(name) u32 LE ‖ name ‖ generation u64 LE ‖ i u64 LE ‖ is_last u8
//!   aad_table  = "table" ‖ len(name) u32 LE ‖ name ‖ generation u64 LE
//!   aad_header = "header" ‖ len(name) u32 LE ‖ name
//! ```
//!
//! Every chunk but the last holds exactly `C` plaintext bytes (64 KiB by
//! default), so the chunks a read of any byte range touches are known from
//! the range alone, and a read opens only those. The table gives where each
//! chunk lies in the file and whether it is compressed. An empty file still
//! has one (empty, last) chunk, so that it too is authenticated. The table
//! and the header sit at the end because they are written last: a file
//! becomes visible only when `terminate` has sealed the last chunk, appended
//! the table and the header, fsynced and renamed the temporary file into
//! place.
//!
//! Files of format 1 (written before compression) have no table: every
//! chunk holds its plaintext as it is, so chunk `i` lies at
//! `i·(C + OVERHEAD)`. They are still read; new files are written in
//! format 2.
//!
//! # Why compressed chunks
//!
//! tantivy's files are compact for searching, not for storage: postings of
//! rare terms are variable-length integers, fieldnorms are one byte per
//! document and field (constant for fields a corpus never fills), and the
//! document store writes a few bytes per document even with nothing
//! stored. zstd at level 1 over each 64 KiB chunk, measured on one segment
//! of the whole corpus (`measure_index_space` in `tests/disk_usage.rs`):
//! ChitChat's index 23.1 → 14.0 MB (fieldnorms 2.32 → 0.17, postings
//! 15.2 → 10.8, positions 2.75 → 1.68), SpamAssassin's 6.58 → 5.30 MB.
//! Level 1 compressed at 400–470 MB/s and decompressed at 1.0–1.3 GB/s
//! (a 64 KiB chunk in about 60 µs, on a cache miss only); levels 2 and 3
//! saved under 1 % more, and zstd's fast negative levels, which skip the
//! entropy coder, saved half as much. A chunk that does not shrink by at
//! least 1/64 is stored as it is, so incompressible data (tantivy's
//! bit-packed fast columns) costs no decompression.
//!
//! Compression comes before sealing, and the table that says which chunks
//! are compressed is itself sealed and bound to the file's name and
//! generation; the sizes of compressed chunks are visible on disk, as the
//! file sizes always were.
//!
//! The **generation** is a random 64-bit number drawn for every write of a
//! file. Binding it, the file name, the chunk number and the last-chunk flag
//! into each chunk's associated data means that reordering chunks, swapping
//! them between files, dropping the tail (the new last chunk is not marked
//! last) or splicing in chunks from an older copy of the same file all fail
//! authentication. Restoring a *whole* older copy (header and chunks) is
//! caught when this directory knows which generation to expect: for every
//! file it wrote or deleted since it was opened, and for any file
//! whose generation the embedder pins with [`EncryptedDirectory::pin_generation`]
//! (the index can anchor `meta.json`'s generation in the store's sealed
//! commit record, which catches rollback across restarts). Generations
//! that were only read are not enforced: another instance on the same path
//! (a reader in another process) may legitimately have rewritten the file.
//!
//! # Why files, not sled
//!
//! tantivy writes each segment file once, sequentially, and then reads it at
//! random offsets until a merge deletes it; segments run to many megabytes.
//! sled is a log-structured tree: every value goes through its write-ahead
//! log and is rewritten again when pages are compacted, so big immutable
//! blobs would be written at least twice and bloat its cache, and a random
//! read of a few bytes would fetch a whole 64 KiB value through the tree.
//! Plain files give one write per byte, `pread` of exactly the chunk needed,
//! and deletion that returns space at once. Atomicity comes from
//! write-to-temporary, fsync, rename, fsync-directory, which is all tantivy
//! asks of a directory.
//!
//! Measured (`measure_files_versus_sled` in `tests/encrypted_directory.rs`,
//! release build, one 64 MiB file as sealed 64 KiB chunks): this directory
//! wrote 64.0 MiB and left 64.0 MiB on disk; sled, inserting the same sealed
//! chunks and flushing, wrote 192.8 MiB (3×) and left 98.6 MiB on disk.
//!
//! # Why 64 KiB chunks
//!
//! tantivy's reads are small (a term-dictionary block, a postings block, a
//! 16 KiB doc-store block), so chunks should be small enough that a random
//! read decrypts little (AES-GCM runs at GB/s, so 64 KiB costs tens of
//! microseconds) and large enough that the 29-byte envelope and the random
//! nonce per seal are negligible (0.04 %), and that the 2^32 seals-per-key
//! bound of random nonces is out of reach (2^32 chunks is 256 TiB).
//!
//! # What is in clear
//!
//! Only the number of files and their sizes (the server knows the mailbox
//! size anyway) and the lock file's existence. Decrypted chunks live in a
//! byte-bounded LRU cache ([`DirectoryOptions::cache_budget_bytes`]) and in
//! buffers tantivy holds; they are not zeroized, because tantivy's
//! `OwnedBytes` needs a plain shared slice (the index stores no message text,
//! only terms and postings, see `DESIGN.md`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tantivy::HasLen;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite,
    WatchCallback, WatchCallbackList, WatchHandle, WritePtr,
};

use crate::error::{Error, Result};
use crate::keys::{KEY_LEN, SecretKey, fill_random};
use crate::seal::{OVERHEAD, RecordKind, Sealer};

/// Default plaintext bytes per chunk (see the module docs for why 64 KiB).
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
/// Default byte budget of the decrypted-chunk cache: 512 chunks of 64 KiB.
pub const DEFAULT_CACHE_BUDGET: usize = 32 * 1024 * 1024;
/// The largest chunk size accepted, in options and in headers read from disk,
/// so that a forged header cannot make a read allocate without bound.
pub const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;

const FILE_EXT: &str = "sdx";
const TMP_EXT: &str = "sdx-tmp";
const LOCK_EXT: &str = "lock";
const HEADER_MAGIC: &[u8; 4] = b"SDXF";
/// Chunks of fixed sealed size, stored as they are: read, no longer written.
const FORMAT_FIXED: u8 = 1;
/// Chunks compressed where that pays, placed by a sealed table.
const FORMAT_TABLE: u8 = 2;
/// zstd's level for chunks (see "Why compressed chunks").
const ZSTD_LEVEL: i32 = 1;
/// A table entry's flag: the chunk is a zstd frame.
const PLACE_ZSTD: u32 = 1 << 31;
/// Bytes of one table entry.
const PLACE_LEN: usize = 4;
/// Chunks shorter than this (the last of a small file, `meta.json`) are
/// stored as they are: a zstd frame's header would eat what it saves.
const COMPRESS_MIN: usize = 64;
/// magic ‖ format ‖ length u64 ‖ chunk size u32 ‖ generation u64.
const HEADER_PLAIN_LEN: usize = 4 + 1 + 8 + 4 + 8;
const HEADER_SEALED_LEN: usize = HEADER_PLAIN_LEN + OVERHEAD;
const META_FILE: &str = "meta.json";

/// Tuning for an [`EncryptedDirectory`].
///
/// Why configurable: a phone and a desktop want different memory budgets,
/// and tests want tiny chunks to exercise chunk boundaries cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// Plaintext bytes per sealed chunk for files written from now on
    /// (files record their own chunk size, so changing it later is safe).
    /// Between 1 and [`MAX_CHUNK_SIZE`].
    pub chunk_size: usize,
    /// Most bytes of decrypted chunks kept in memory; least recently used
    /// chunks are evicted first. 0 disables the cache.
    pub cache_budget_bytes: usize,
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        DirectoryOptions {
            chunk_size: DEFAULT_CHUNK_SIZE,
            cache_budget_bytes: DEFAULT_CACHE_BUDGET,
        }
    }
}

/// A tantivy [`Directory`] whose files are sealed chunks on disk.
///
/// Why: tantivy's files hold every indexed term and the postings that say
/// which message contains it; in clear they would give away message content
/// to whoever holds the disk. Cloning is cheap and shares the cache, the
/// watchers and the record of known generations (tantivy clones its
/// directory freely).
#[derive(Clone)]
pub struct EncryptedDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    sealer: Sealer,
    name_key: SecretKey,
    chunk_size: usize,
    cache: Mutex<ChunkCache>,
    /// Chunks decrypted since the directory was opened (cache misses).
    decrypted: std::sync::atomic::AtomicU64,
    /// What this directory knows of each tantivy file's generation.
    known: Mutex<HashMap<PathBuf, Known>>,
    /// Files being written: they "exist" for tantivy but are not readable.
    writing: Mutex<HashSet<PathBuf>>,
    watchers: WatchCallbackList,
}

impl fmt::Debug for EncryptedDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedDirectory")
            .field("root", &self.inner.root)
            .field("chunk_size", &self.inner.chunk_size)
            .finish_non_exhaustive()
    }
}

/// What a directory knows about the current copy of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// Written by this directory or pinned by the embedder: any other
    /// generation is a replayed copy.
    Expected(u64),
    /// Only read. Not enforced, because another directory instance (a
    /// reader in another process) may legitimately have rewritten the file
    /// since, e.g. `meta.json` after a commit; reported by `generation`.
    Seen(u64),
    /// Deleted by this directory: a file that reappears is a replay.
    Deleted,
}

/// The plaintext header of a sealed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    format: u8,
    len: u64,
    chunk_size: u32,
    generation: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_PLAIN_LEN] {
        let mut out = [0u8; HEADER_PLAIN_LEN];
        out[..4].copy_from_slice(HEADER_MAGIC);
        out[4] = self.format;
        out[5..13].copy_from_slice(&self.len.to_le_bytes());
        out[13..17].copy_from_slice(&self.chunk_size.to_le_bytes());
        out[17..25].copy_from_slice(&self.generation.to_le_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Header> {
        if b.len() != HEADER_PLAIN_LEN
            || &b[..4] != HEADER_MAGIC
            || !matches!(b[4], FORMAT_FIXED | FORMAT_TABLE)
        {
            return None;
        }
        Some(Header {
            format: b[4],
            len: u64::from_le_bytes(b[5..13].try_into().ok()?),
            chunk_size: u32::from_le_bytes(b[13..17].try_into().ok()?),
            generation: u64::from_le_bytes(b[17..25].try_into().ok()?),
        })
    }
}

/// Chunk arithmetic shared by the writer, the reader and the tests.
pub(crate) mod layout {
    use super::OVERHEAD;
    use std::ops::Range;

    /// Number of chunks of a file of `len` bytes: at least one, so an empty
    /// file still carries an authenticated last chunk.
    pub(crate) fn chunk_count(len: u64, chunk: usize) -> u64 {
        let c = chunk as u64;
        if len == 0 { 1 } else { len.div_ceil(c) }
    }

    /// Plaintext bytes in chunk `i`.
    pub(crate) fn chunk_plain_len(len: u64, chunk: usize, i: u64) -> usize {
        let c = chunk as u64;
        let start = i * c;
        (len.saturating_sub(start)).min(c) as usize
    }

    /// Byte offset of chunk `i` in the sealed file.
    pub(crate) fn chunk_offset(chunk: usize, i: u64) -> u64 {
        i * (chunk + OVERHEAD) as u64
    }

    /// Total size of the chunk area of the sealed file.
    pub(crate) fn chunks_sealed_len(len: u64, chunk: usize) -> u64 {
        chunk_count(len, chunk) * OVERHEAD as u64 + len
    }

    /// Chunks a plaintext range touches (empty for an empty range).
    pub(crate) fn chunks_for(range: &Range<usize>, chunk: usize) -> Range<u64> {
        if range.start >= range.end {
            return 0..0;
        }
        let first = (range.start / chunk) as u64;
        let last = ((range.end - 1) / chunk) as u64;
        first..last + 1
    }
}

fn chunk_aad(name: &[u8], generation: u64, index: u64, last: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(5 + 4 + name.len() + 17);
    a.extend_from_slice(b"chunk");
    a.extend_from_slice(&(name.len() as u32).to_le_bytes());
    a.extend_from_slice(name);
    a.extend_from_slice(&generation.to_le_bytes());
    a.extend_from_slice(&index.to_le_bytes());
    a.push(u8::from(last));
    a
}

fn table_aad(name: &[u8], generation: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(5 + 4 + name.len() + 8);
    a.extend_from_slice(b"table");
    a.extend_from_slice(&(name.len() as u32).to_le_bytes());
    a.extend_from_slice(name);
    a.extend_from_slice(&generation.to_le_bytes());
    a
}

/// Where one chunk of a format-2 file lies, from its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Place {
    offset: u64,
    sealed_len: u32,
    zstd: bool,
}

/// Where a file's chunks lie.
#[derive(Debug)]
enum Places {
    /// Format 1: chunk `i` at `i·(C + OVERHEAD)`, its plaintext as it is.
    Fixed,
    /// Format 2: one place per chunk, from the sealed table.
    Table(Vec<Place>),
}

thread_local! {
    // One decompression context per thread that reads chunks.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses a chunk that must hold exactly `len` bytes.
fn decompress_chunk(frame: &[u8], len: usize) -> io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        let Some(d) = d.as_mut() else {
            return Err(io::Error::other("no zstd context"));
        };
        let out = d.decompress(frame, len)?;
        if out.len() != len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "decompressed to the wrong length",
            ));
        }
        Ok(out)
    })
}

fn header_aad(name: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(6 + 4 + name.len());
    a.extend_from_slice(b"header");
    a.extend_from_slice(&(name.len() as u32).to_le_bytes());
    a.extend_from_slice(name);
    a
}

fn name_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

fn tampered(path: &Path, detail: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        Error::Tampered {
            kind: RecordKind::IndexChunk.name(),
            detail: format!("index file {}: {detail}", path.display()),
        },
    )
}

fn random_u64() -> io::Result<u64> {
    let mut b = [0u8; 8];
    fill_random(&mut b).map_err(io::Error::other)?;
    Ok(u64::from_le_bytes(b))
}

fn derive(key: &SecretKey, label: &str) -> Result<SecretKey> {
    let hk = Hkdf::<Sha256>::new(None, key.expose());
    let mut out = [0u8; KEY_LEN];
    hk.expand(
        format!("sealdex/v1/index-files/{label}").as_bytes(),
        &mut out,
    )
    .map_err(|e| Error::Corrupt(format!("key derivation: {e}")))?;
    Ok(SecretKey::from_bytes(out))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these locks leaves plain data
    // (a cache, a set of names) that is still consistent enough to use.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl EncryptedDirectory {
    /// Opens (creating if needed) an encrypted directory at `root` with
    /// default options. `key` is the index-files sub-key
    /// (`Keys::index_files`); chunk and name keys are derived from it.
    pub fn open(root: &Path, key: &SecretKey) -> Result<Self> {
        Self::open_with(root, key, DirectoryOptions::default())
    }

    /// Like [`open`](Self::open), with explicit chunk size and cache budget.
    pub fn open_with(root: &Path, key: &SecretKey, options: DirectoryOptions) -> Result<Self> {
        if options.chunk_size == 0 || options.chunk_size > MAX_CHUNK_SIZE {
            return Err(Error::Corrupt(format!(
                "chunk size {} out of range 1..={MAX_CHUNK_SIZE}",
                options.chunk_size
            )));
        }
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        // Leftovers of writers that never terminated (a crash): never visible,
        // so safe to remove.
        let entries = fs::read_dir(root).map_err(|e| Error::io(root, e))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == TMP_EXT) {
                let _ = fs::remove_file(&p);
            }
        }
        Ok(EncryptedDirectory {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                sealer: Sealer::new(&derive(key, "chunks")?),
                name_key: derive(key, "names")?,
                chunk_size: options.chunk_size,
                cache: Mutex::new(ChunkCache::new(options.cache_budget_bytes)),
                decrypted: std::sync::atomic::AtomicU64::new(0),
                known: Mutex::new(HashMap::new()),
                writing: Mutex::new(HashSet::new()),
                watchers: WatchCallbackList::default(),
            }),
        })
    }

    /// The directory on disk.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Where the sealed form of tantivy file `name` lives. Why public: tools
    /// (and the tamper tests) need to find a file without learning the key.
    pub fn disk_path(&self, name: &Path) -> PathBuf {
        self.inner
            .root
            .join(format!("{}.{FILE_EXT}", self.inner.mac_hex(name)))
    }

    /// Bytes of decrypted chunks currently cached; never above the budget.
    pub fn cached_bytes(&self) -> usize {
        lock(&self.inner.cache).bytes
    }

    /// Chunks decrypted since this directory was opened: every read that
    /// missed the cache. What a reader reload or a query really costs in
    /// decryption.
    pub fn chunks_decrypted(&self) -> u64 {
        self.inner
            .decrypted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The generation of the current copy of `name`, if this directory has
    /// written, read or been told it. Why: the embedder can store it sealed elsewhere
    /// (e.g. `meta.json`'s in the store's commit record) and
    /// [`pin_generation`](Self::pin_generation) it after a restart, so that
    /// an older copy restored while the index was closed is refused.
    pub fn generation(&self, name: &Path) -> Option<u64> {
        match lock(&self.inner.known).get(name) {
            Some(Known::Expected(g) | Known::Seen(g)) => Some(*g),
            Some(Known::Deleted) | None => None,
        }
    }

    /// Declares the generation `name` must have; any other copy fails
    /// authentication as a replay.
    pub fn pin_generation(&self, name: &Path, generation: u64) {
        lock(&self.inner.known).insert(name.to_path_buf(), Known::Expected(generation));
    }

    fn open_handle(&self, path: &Path) -> Result<EncryptedFileHandle, OpenReadError> {
        let disk = self.disk_path(path);
        let io_err = |e: io::Error| OpenReadError::wrap_io_error(e, path.to_path_buf());
        let file = match File::open(&disk) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(path.to_path_buf()));
            }
            Err(e) => return Err(io_err(e)),
        };
        let disk_len = file.metadata().map_err(io_err)?.len();
        if disk_len < HEADER_SEALED_LEN as u64 {
            return Err(io_err(tampered(
                path,
                "shorter than its header (truncated)",
            )));
        }
        let mut sealed = [0u8; HEADER_SEALED_LEN];
        crate::fsio::read_exact_at(&file, &mut sealed, disk_len - HEADER_SEALED_LEN as u64)
            .map_err(io_err)?;
        let plain = self
            .inner
            .sealer
            .open(
                RecordKind::IndexChunk,
                &header_aad(name_bytes(path)),
                &sealed,
            )
            .map_err(|e| io_err(tampered(path, format!("header: {e}"))))?;
        let header = Header::decode(&plain)
            .ok_or_else(|| io_err(tampered(path, "header has an unknown format")))?;
        let chunk = header.chunk_size as usize;
        if chunk == 0 || chunk > MAX_CHUNK_SIZE || usize::try_from(header.len).is_err() {
            return Err(io_err(tampered(path, "header out of range")));
        }
        let places = match header.format {
            FORMAT_FIXED => {
                if layout::chunks_sealed_len(header.len, chunk) + HEADER_SEALED_LEN as u64
                    != disk_len
                {
                    return Err(io_err(tampered(
                        path,
                        "size does not match its header (truncated or extended)",
                    )));
                }
                Places::Fixed
            }
            _ => Places::Table(
                self.read_table(path, &file, &header, disk_len)
                    .map_err(io_err)?,
            ),
        };
        {
            let mut known = lock(&self.inner.known);
            match known.get(path) {
                Some(Known::Expected(g)) if *g != header.generation => {
                    return Err(io_err(tampered(
                        path,
                        "an older or other copy of the file (replayed generation)",
                    )));
                }
                Some(Known::Deleted) => {
                    return Err(io_err(tampered(
                        path,
                        "a deleted file reappeared (replayed)",
                    )));
                }
                Some(Known::Expected(_)) => {}
                Some(Known::Seen(_)) | None => {
                    known.insert(path.to_path_buf(), Known::Seen(header.generation));
                }
            }
        }
        Ok(EncryptedFileHandle {
            inner: Arc::clone(&self.inner),
            name: path.to_path_buf(),
            mac: self.inner.mac(path),
            file,
            header,
            places,
            merge_memo: Mutex::new(None),
        })
    }

    /// Reads, opens and checks the chunk table of a format-2 file.
    fn read_table(
        &self,
        path: &Path,
        file: &File,
        header: &Header,
        disk_len: u64,
    ) -> io::Result<Vec<Place>> {
        let chunk = header.chunk_size as usize;
        let count = layout::chunk_count(header.len, chunk);
        // Checked against the file's size before anything is allocated.
        let table_sealed = count
            .checked_mul(PLACE_LEN as u64)
            .and_then(|t| t.checked_add(OVERHEAD as u64))
            .filter(|t| t + HEADER_SEALED_LEN as u64 <= disk_len)
            .ok_or_else(|| tampered(path, "shorter than its chunk table (truncated)"))?;
        let table_at = disk_len - HEADER_SEALED_LEN as u64 - table_sealed;
        let mut sealed = vec![0u8; table_sealed as usize];
        crate::fsio::read_exact_at(file, &mut sealed, table_at)?;
        let plain = self
            .inner
            .sealer
            .open(
                RecordKind::IndexChunk,
                &table_aad(name_bytes(path), header.generation),
                &sealed,
            )
            .map_err(|e| tampered(path, format!("chunk table: {e}")))?;
        let mut places = Vec::with_capacity(count as usize);
        let mut offset = 0u64;
        for (i, entry) in plain.chunks_exact(PLACE_LEN).enumerate() {
            let raw = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let zstd = raw & PLACE_ZSTD != 0;
            let sealed_len = raw & !PLACE_ZSTD;
            let plain_len = layout::chunk_plain_len(header.len, chunk, i as u64);
            let fits = if zstd {
                (OVERHEAD as u32..=(plain_len + OVERHEAD) as u32).contains(&sealed_len)
            } else {
                sealed_len as usize == plain_len + OVERHEAD
            };
            if !fits {
                return Err(tampered(path, format!("chunk {i} has an impossible size")));
            }
            places.push(Place {
                offset,
                sealed_len,
                zstd,
            });
            offset += u64::from(sealed_len);
        }
        if places.len() as u64 != count || offset != table_at {
            return Err(tampered(
                path,
                "size does not match its chunk table (truncated or extended)",
            ));
        }
        Ok(places)
    }

    /// Writes a whole file in one go: used by `atomic_write`.
    fn write_all_replace(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut w = EncryptedWriter::create(Arc::clone(&self.inner), path.to_path_buf(), false)?;
        w.write_all(data)?;
        w.finish()
    }
}

impl Inner {
    fn mac(&self, name: &Path) -> [u8; 32] {
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(self.name_key.expose()) {
            Ok(m) => m,
            // HMAC takes keys of any length; this arm is unreachable.
            Err(_) => return [0u8; 32],
        };
        mac.update(name_bytes(name));
        mac.finalize().into_bytes().into()
    }

    fn mac_hex(&self, name: &Path) -> String {
        use std::fmt::Write as _;
        self.mac(name)
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}

/// Random-access reader of one sealed file; what `get_file_handle` returns.
struct EncryptedFileHandle {
    inner: Arc<Inner>,
    name: PathBuf,
    mac: [u8; 32],
    file: File,
    header: Header,
    places: Places,
    /// The last chunk a merge read through this handle (see
    /// [`chunk`](Self::chunk)).
    merge_memo: Mutex<Option<(u64, Arc<[u8]>)>>,
}

/// Whether the calling thread is one of tantivy's merge threads (named
/// `merge_thread_N` by its segment updater; `tests/encrypted_directory.rs`
/// fails if a tantivy upgrade renames them).
fn on_merge_thread() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("merge_thread_"))
}

impl fmt::Debug for EncryptedFileHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedFileHandle")
            .field("name", &self.name)
            .field("len", &self.header.len)
            .finish_non_exhaustive()
    }
}

impl HasLen for EncryptedFileHandle {
    fn len(&self) -> usize {
        // Checked to fit in usize when the handle was opened.
        self.header.len as usize
    }
}

impl EncryptedFileHandle {
    fn chunk(&self, i: u64) -> io::Result<Arc<[u8]>> {
        let key = CacheKey {
            mac: self.mac,
            generation: self.header.generation,
            index: i,
        };
        if let Some(hit) = lock(&self.inner.cache).get(&key) {
            return Ok(hit);
        }
        // A merge reads each chunk of segments about to be deleted, in
        // order, once: admitted to the cache, those chunks evicted what
        // searches use and, while a large sync indexed and nobody searched,
        // held the cache at its budget (at a million messages, most of the
        // 128 MiB). So a merge keeps only the chunk it is reading, per
        // file, and the cache is left to searches.
        let merging = on_merge_thread();
        if merging
            && let Some((at, plain)) = lock(&self.merge_memo).as_ref()
            && *at == i
        {
            return Ok(Arc::clone(plain));
        }
        let cs = self.header.chunk_size as usize;
        let count = layout::chunk_count(self.header.len, cs);
        let plain_len = layout::chunk_plain_len(self.header.len, cs, i);
        let place = match &self.places {
            Places::Fixed => Place {
                offset: layout::chunk_offset(cs, i),
                sealed_len: (plain_len + OVERHEAD) as u32,
                zstd: false,
            },
            Places::Table(places) => *usize::try_from(i)
                .ok()
                .and_then(|i| places.get(i))
                .ok_or_else(|| tampered(&self.name, format!("chunk {i} is not in its table")))?,
        };
        let mut sealed = vec![0u8; place.sealed_len as usize];
        crate::fsio::read_exact_at(&self.file, &mut sealed, place.offset)?;
        let aad = chunk_aad(
            name_bytes(&self.name),
            self.header.generation,
            i,
            i + 1 == count,
        );
        let plain = self
            .inner
            .sealer
            .open(RecordKind::IndexChunk, &aad, &sealed)
            .map_err(|e| tampered(&self.name, format!("chunk {i}: {e}")))?;
        let plain = if place.zstd {
            decompress_chunk(&plain, plain_len)
                .map_err(|e| tampered(&self.name, format!("chunk {i}: {e}")))?
        } else {
            plain
        };
        if plain.len() != plain_len {
            return Err(tampered(
                &self.name,
                format!("chunk {i} has the wrong length"),
            ));
        }
        let plain: Arc<[u8]> = plain.into();
        self.inner
            .decrypted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if merging {
            *lock(&self.merge_memo) = Some((i, Arc::clone(&plain)));
        } else {
            lock(&self.inner.cache).insert(key, Arc::clone(&plain));
        }
        Ok(plain)
    }
}

impl FileHandle for EncryptedFileHandle {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        let len = self.len();
        if range.start > range.end || range.end > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "read of {}..{} past the end of {} ({len} bytes)",
                    range.start,
                    range.end,
                    self.name.display()
                ),
            ));
        }
        let cs = self.header.chunk_size as usize;
        let chunks = layout::chunks_for(&range, cs);
        if chunks.is_empty() {
            return Ok(OwnedBytes::empty());
        }
        if chunks.end - chunks.start == 1 {
            // Within one chunk: share the cached plaintext, no copy.
            let base = chunks.start as usize * cs;
            let chunk = self.chunk(chunks.start)?;
            return Ok(OwnedBytes::new(chunk).slice(range.start - base..range.end - base));
        }
        let mut out = Vec::with_capacity(range.len());
        for i in chunks {
            let base = i as usize * cs;
            let chunk = self.chunk(i)?;
            let from = range.start.max(base) - base;
            let to = range.end.min(base + chunk.len()) - base;
            out.extend_from_slice(&chunk[from..to]);
        }
        Ok(OwnedBytes::new(out))
    }
}

/// Streams a file to disk one sealed chunk at a time.
struct EncryptedWriter {
    inner: Arc<Inner>,
    name: PathBuf,
    tmp: PathBuf,
    file: Option<io::BufWriter<File>>,
    buf: Vec<u8>,
    chunk_size: usize,
    next_index: u64,
    len: u64,
    generation: u64,
    /// One table entry per chunk sealed so far.
    table: Vec<u8>,
    /// Made at the first chunk worth trying to compress.
    compressor: Option<zstd::bulk::Compressor<'static>>,
    /// Registered in `Inner::writing` (tantivy writers, not atomic writes).
    registered: bool,
    done: bool,
}

impl EncryptedWriter {
    fn create(inner: Arc<Inner>, name: PathBuf, registered: bool) -> io::Result<Self> {
        let tmp = inner.root.join(format!(
            "{}.{:016x}.{TMP_EXT}",
            inner.mac_hex(&name),
            random_u64()?
        ));
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let chunk_size = inner.chunk_size;
        Ok(EncryptedWriter {
            inner,
            name,
            tmp,
            file: Some(io::BufWriter::with_capacity(chunk_size + OVERHEAD, file)),
            buf: Vec::with_capacity(chunk_size),
            chunk_size,
            next_index: 0,
            len: 0,
            generation: random_u64()?,
            table: Vec::new(),
            compressor: None,
            registered,
            done: false,
        })
    }

    fn seal_buffered(&mut self, last: bool) -> io::Result<()> {
        let aad = chunk_aad(
            name_bytes(&self.name),
            self.generation,
            self.next_index,
            last,
        );
        let compressed = self.compressed()?;
        let (plain, flag) = match &compressed {
            Some(frame) => (frame.as_slice(), PLACE_ZSTD),
            None => (self.buf.as_slice(), 0),
        };
        let sealed = self.inner.sealer.seal(RecordKind::IndexChunk, &aad, plain);
        let sealed_len = u32::try_from(sealed.len())
            .ok()
            .filter(|l| l & PLACE_ZSTD == 0)
            .ok_or_else(|| io::Error::other("index chunk too large"))?;
        self.table
            .extend_from_slice(&(sealed_len | flag).to_le_bytes());
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("index file writer already finished"))?
            .write_all(&sealed)?;
        self.next_index += 1;
        self.buf.clear();
        Ok(())
    }

    /// The buffered chunk as a zstd frame, if that is at least 1/64
    /// smaller (see "Why compressed chunks").
    fn compressed(&mut self) -> io::Result<Option<Vec<u8>>> {
        let n = self.buf.len();
        if n < COMPRESS_MIN {
            return Ok(None);
        }
        let compressor = match &mut self.compressor {
            Some(c) => c,
            None => self
                .compressor
                .insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        let frame = compressor.compress(&self.buf)?;
        Ok((frame.len() < n - n / 64).then_some(frame))
    }

    /// Seals the last chunk and the header, then makes the file visible.
    fn finish(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.seal_buffered(true)?;
        let table = self.inner.sealer.seal(
            RecordKind::IndexChunk,
            &table_aad(name_bytes(&self.name), self.generation),
            &self.table,
        );
        let header = Header {
            format: FORMAT_TABLE,
            len: self.len,
            chunk_size: self.chunk_size as u32,
            generation: self.generation,
        };
        let sealed = self.inner.sealer.seal(
            RecordKind::IndexChunk,
            &header_aad(name_bytes(&self.name)),
            &header.encode(),
        );
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("index file writer already finished"))?;
        file.write_all(&table)?;
        file.write_all(&sealed)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        let dest = self
            .inner
            .root
            .join(format!("{}.{FILE_EXT}", self.inner.mac_hex(&self.name)));
        fs::rename(&self.tmp, &dest)?;
        crate::fsio::sync_dir(&self.inner.root)?;
        self.done = true;
        lock(&self.inner.known).insert(self.name.clone(), Known::Expected(self.generation));
        if self.registered {
            lock(&self.inner.writing).remove(&self.name);
        }
        Ok(())
    }
}

impl Write for EncryptedWriter {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        if self.done {
            return Err(io::Error::other("write to a terminated index file"));
        }
        let n = data.len();
        while !data.is_empty() {
            // A full buffer is sealed only once more data shows it is not the last chunk.
            if self.buf.len() == self.chunk_size {
                self.seal_buffered(false)?;
            }
            let take = (self.chunk_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is readable before terminate, so there is nothing to flush to.
        Ok(())
    }
}

impl TerminatingWrite for EncryptedWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.finish()
    }
}

impl Drop for EncryptedWriter {
    fn drop(&mut self) {
        if !self.done {
            self.file = None;
            let _ = fs::remove_file(&self.tmp);
            if self.registered {
                lock(&self.inner.writing).remove(&self.name);
            }
        }
    }
}

/// Holds an OS lock on a lock file until dropped.
struct LockGuard {
    _file: File,
}

impl Directory for EncryptedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(self.open_handle(path)?))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        match fs::remove_file(self.disk_path(path)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DeleteError::FileDoesNotExist(path.to_path_buf()));
            }
            Err(e) => {
                return Err(DeleteError::IoError {
                    io_error: Arc::new(e),
                    filepath: path.to_path_buf(),
                });
            }
        }
        lock(&self.inner.known).insert(path.to_path_buf(), Known::Deleted);
        lock(&self.inner.cache).remove_file(&self.inner.mac(path));
        Ok(())
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        if lock(&self.inner.writing).contains(path) {
            return Ok(true);
        }
        self.disk_path(path)
            .try_exists()
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let wrap = |e: io::Error| OpenWriteError::wrap_io_error(e, path.to_path_buf());
        {
            let mut writing = lock(&self.inner.writing);
            let on_disk = self.disk_path(path).try_exists().map_err(wrap)?;
            if on_disk || !writing.insert(path.to_path_buf()) {
                return Err(OpenWriteError::FileAlreadyExists(path.to_path_buf()));
            }
        }
        match EncryptedWriter::create(Arc::clone(&self.inner), path.to_path_buf(), true) {
            Ok(w) => Ok(io::BufWriter::new(Box::new(w))),
            Err(e) => {
                lock(&self.inner.writing).remove(path);
                Err(wrap(e))
            }
        }
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let handle = self.open_handle(path)?;
        let bytes = handle
            .read_bytes(0..handle.len())
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))?;
        Ok(bytes.as_slice().to_vec())
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.write_all_replace(path, data)?;
        if path == Path::new(META_FILE) {
            // Like RamDirectory: fire and forget; callbacks run on tantivy's thread.
            drop(self.inner.watchers.broadcast());
        }
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        crate::fsio::sync_dir(&self.inner.root)
    }

    fn acquire_lock(&self, l: &Lock) -> Result<DirectoryLock, LockError> {
        let path = self
            .inner
            .root
            .join(format!("{}.{LOCK_EXT}", self.inner.mac_hex(&l.filepath)));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LockError::wrap_io_error)?;
        // tantivy's own policy for blocking locks: retry for about ten seconds.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut wait = Duration::from_millis(5);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(DirectoryLock::from(Box::new(LockGuard { _file: file }))),
                Err(fs::TryLockError::WouldBlock) => {
                    if !l.is_blocking || Instant::now() >= deadline {
                        return Err(LockError::LockBusy);
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(200));
                }
                Err(fs::TryLockError::Error(e)) => return Err(LockError::wrap_io_error(e)),
            }
        }
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(self.inner.watchers.subscribe(watch_callback))
    }
}

/// Identifies one chunk of one copy of one file. The generation keeps a
/// rewritten file from ever being served a chunk of its previous copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    mac: [u8; 32],
    generation: u64,
    index: u64,
}

/// Least-recently-used cache of decrypted chunks within a byte budget.
///
/// Every read of a tantivy file asks it, so a hit must be cheap: the map
/// hashes with FxHash (its keys are MACs, which an attacker cannot choose
/// to collide), and recency is a queue of accesses with lazy deletion: a
/// hit appends one entry, eviction pops from the front and skips entries
/// made stale by a later access. (A `BTreeMap` ordered by access cost two
/// tree updates per hit.)
struct ChunkCache {
    budget: usize,
    bytes: usize,
    tick: u64,
    /// Each chunk with the tick of its last access.
    entries: HashMap<CacheKey, (Arc<[u8]>, u64), rustc_hash::FxBuildHasher>,
    /// Accesses, oldest first; one is current while its tick is its
    /// entry's.
    order: VecDeque<(u64, CacheKey)>,
}

impl ChunkCache {
    fn new(budget: usize) -> Self {
        ChunkCache {
            budget,
            bytes: 0,
            tick: 0,
            entries: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    fn get(&mut self, key: &CacheKey) -> Option<Arc<[u8]>> {
        self.tick += 1;
        let tick = self.tick;
        let (data, used) = self.entries.get_mut(key)?;
        *used = tick;
        let data = Arc::clone(data);
        self.order.push_back((tick, *key));
        self.compact();
        Some(data)
    }

    fn insert(&mut self, key: CacheKey, data: Arc<[u8]>) {
        if data.len() > self.budget || self.entries.contains_key(&key) {
            return;
        }
        while self.bytes + data.len() > self.budget {
            let Some((tick, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&oldest).is_some_and(|e| e.1 == tick)
                && let Some((old, _)) = self.entries.remove(&oldest)
            {
                self.bytes -= old.len();
            }
        }
        self.tick += 1;
        self.bytes += data.len();
        self.order.push_back((self.tick, key));
        self.entries.insert(key, (data, self.tick));
        self.compact();
    }

    /// Drops stale accesses once they outnumber the chunks: amortised, a
    /// constant per access, and the queue stays within a few times the
    /// number of chunks.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(tick, key)| entries.get(key).is_some_and(|e| e.1 == *tick));
        }
    }

    fn remove_file(&mut self, mac: &[u8; 32]) {
        let gone: Vec<CacheKey> = self
            .entries
            .keys()
            .filter(|k| &k.mac == mac)
            .copied()
            .collect();
        for k in gone {
            if let Some((data, _)) = self.entries.remove(&k) {
                self.bytes -= data.len();
            }
        }
        self.compact();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dir(chunk: usize, budget: usize) -> (tempfile::TempDir, EncryptedDirectory) {
        let t = tempfile::tempdir().unwrap();
        let d = EncryptedDirectory::open_with(
            &t.path().join("inv"),
            &SecretKey::from_bytes([5; 32]),
            DirectoryOptions {
                chunk_size: chunk,
                cache_budget_bytes: budget,
            },
        )
        .unwrap();
        (t, d)
    }

    proptest! {
        #[test]
        fn chunk_math_covers_every_byte(len in 0u64..100_000, chunk in 1usize..5000,
                                        a in any::<prop::sample::Index>(),
                                        b in any::<prop::sample::Index>()) {
            let n = layout::chunk_count(len, chunk);
            let total: u64 = (0..n).map(|i| layout::chunk_plain_len(len, chunk, i) as u64).sum();
            prop_assert_eq!(total, len);
            // Every chunk but the last is full, the last is non-empty unless the file is.
            for i in 0..n.saturating_sub(1) {
                prop_assert_eq!(layout::chunk_plain_len(len, chunk, i), chunk);
            }
            prop_assert!(len == 0 || layout::chunk_plain_len(len, chunk, n - 1) > 0);
            prop_assert_eq!(layout::chunks_sealed_len(len, chunk),
                            layout::chunk_offset(chunk, n - 1)
                                + (layout::chunk_plain_len(len, chunk, n - 1) + OVERHEAD) as u64);
            let (x, y) = (a.index(len as usize + 1), b.index(len as usize + 1));
            let r = x.min(y)..x.max(y);
            let cs = layout::chunks_for(&r, chunk);
            if r.is_empty() {
                prop_assert!(cs.is_empty());
            } else {
                prop_assert!(cs.end <= n);
                prop_assert!(cs.start * chunk as u64 <= r.start as u64);
                prop_assert!((cs.end * chunk as u64) >= r.end as u64);
                prop_assert!(((cs.end - 1) * chunk as u64) < r.end as u64);
            }
        }

        #[test]
        fn random_reads_match(len in 0usize..3000, chunk in 1usize..700,
                              ranges in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..8)) {
            let (_t, d) = dir(chunk, 4 * chunk);
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut w = d.open_write(Path::new("f")).unwrap();
            w.write_all(&data).unwrap();
            w.terminate().unwrap();
            let h = d.get_file_handle(Path::new("f")).unwrap();
            prop_assert_eq!(h.len(), len);
            for (a, b) in ranges {
                let (x, y) = (a.index(len + 1), b.index(len + 1));
                let r = x.min(y)..x.max(y);
                let got = h.read_bytes(r.clone()).unwrap();
                prop_assert_eq!(got.as_slice(), &data[r]);
                prop_assert!(d.cached_bytes() <= 4 * chunk);
            }
        }
    }

    #[test]
    fn cache_respects_budget_and_lru() {
        let mut c = ChunkCache::new(10);
        let k = |i| CacheKey {
            mac: [0; 32],
            generation: 1,
            index: i,
        };
        c.insert(k(0), vec![0u8; 4].into());
        c.insert(k(1), vec![0u8; 4].into());
        assert!(c.get(&k(0)).is_some());
        c.insert(k(2), vec![0u8; 4].into());
        assert_eq!(c.bytes, 8);
        assert!(c.get(&k(1)).is_none(), "least recently used goes first");
        assert!(c.get(&k(0)).is_some());
        c.insert(k(3), vec![0u8; 11].into());
        assert!(c.get(&k(3)).is_none(), "larger than the budget: not cached");
        c.remove_file(&[0; 32]);
        assert_eq!(c.bytes, 0);
        assert!(c.entries.is_empty());
    }

    proptest! {
        /// The cache keeps exactly what a plain least-recently-used list
        /// within the same budget keeps, through any gets and inserts.
        #[test]
        fn cache_matches_a_reference_lru(
            ops in proptest::collection::vec((any::<bool>(), 0u64..12, 1usize..6), 1..400),
        ) {
            let budget = 16;
            let mut c = ChunkCache::new(budget);
            // Most recently used last: (index, size).
            let mut model: Vec<(u64, usize)> = Vec::new();
            let k = |i| CacheKey { mac: [0; 32], generation: 1, index: i };
            for (is_get, i, size) in ops {
                if is_get {
                    let hit = c.get(&k(i)).map(|d| d.len());
                    let pos = model.iter().position(|m| m.0 == i);
                    prop_assert_eq!(hit, pos.map(|p| model[p].1));
                    if let Some(p) = pos {
                        let m = model.remove(p);
                        model.push(m);
                    }
                } else {
                    c.insert(k(i), vec![0u8; size].into());
                    if !model.iter().any(|m| m.0 == i) {
                        while model.iter().map(|m| m.1).sum::<usize>() + size > budget {
                            model.remove(0);
                        }
                        model.push((i, size));
                    }
                }
                prop_assert_eq!(c.bytes, model.iter().map(|m| m.1).sum::<usize>());
                prop_assert!(c.order.len() <= 2 * c.entries.len() + 65);
            }
        }
    }

    #[test]
    fn unterminated_writer_leaves_nothing() {
        let (_t, d) = dir(8, 64);
        let mut w = d.open_write(Path::new("x")).unwrap();
        w.write_all(b"0123456789abcdef0123").unwrap();
        w.flush().unwrap();
        assert!(d.exists(Path::new("x")).unwrap());
        assert!(d.get_file_handle(Path::new("x")).is_err());
        drop(w);
        assert!(!d.exists(Path::new("x")).unwrap());
        assert_eq!(fs::read_dir(d.root()).unwrap().count(), 0);
    }

    #[test]
    fn out_of_range_read_is_an_error() {
        let (_t, d) = dir(8, 64);
        let mut w = d.open_write(Path::new("x")).unwrap();
        w.write_all(b"abc").unwrap();
        w.terminate().unwrap();
        let h = d.get_file_handle(Path::new("x")).unwrap();
        assert!(h.read_bytes(2..4).is_err());
    }
}
