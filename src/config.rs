//! [`IndexConfig`]: how an index is opened, and the defaults that suit a
//! desktop: cache budgets, threads, and whether an inverted index is kept.

use crate::cache::DEFAULT_BUDGET;
use crate::keys::KdfParams;

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
