//! The crate's one error type, with variants that say what to do next.

use std::path::PathBuf;

/// Everything that can go wrong in sealdex.
///
/// Variants never carry key material or decrypted message content: they may
/// name a path, a record kind, or a message id that the embedder gave us, but
/// never a subject, a body, or a passphrase. That keeps them safe to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The passphrase or app key does not unwrap the data key. Nothing on disk
    /// was changed; try again with the right credential.
    #[error("wrong passphrase or key: the index could not be unlocked (nothing was changed)")]
    WrongKey,

    /// Another process (or another handle in this process) holds the index open.
    #[error("the index at {path} is in use by another process; close it there and try again")]
    InUse {
        /// Directory of the index.
        path: PathBuf,
    },

    /// There is no index at the path and the call does not create one.
    #[error("no sealdex index at {path}; create one first (`sealdex index` does)")]
    NotFound {
        /// Directory that was looked at.
        path: PathBuf,
    },

    /// `create` was asked for a directory that already holds an index.
    #[error("an index already exists at {path}; open it instead")]
    AlreadyExists {
        /// Directory of the index.
        path: PathBuf,
    },

    /// The directory exists and holds something that is not a sealdex index.
    #[error("{path} is not empty and holds no sealdex index; choose another directory")]
    NotAnIndex {
        /// Directory that was looked at.
        path: PathBuf,
    },

    /// The index was written by a format this build does not know.
    #[error(
        "index format version {found} is not supported (this build reads version {supported}); \
         use a sealdex release that matches, or rebuild the index"
    )]
    UnsupportedFormat {
        /// Version found on disk.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },

    /// A sealed record failed authentication: it was altered, truncated, moved
    /// to another key, or written under another key. Its content is not used.
    #[error(
        "a sealed {kind} record failed authentication ({detail}): the index was altered or \
         corrupted; run `sealdex verify`, then re-index from the source"
    )]
    Tampered {
        /// What kind of record it was.
        kind: &'static str,
        /// What the check found (never plaintext).
        detail: String,
    },

    /// The store is damaged in a way that is not a failed authentication
    /// (missing metadata, an undecodable record that did authenticate, a
    /// manifest that disagrees with the records).
    #[error("the index is corrupted ({0}); run `sealdex verify`, then re-index from the source")]
    Corrupt(String),

    /// The key-derivation parameters are out of range.
    #[error("invalid key-derivation parameters: {0}")]
    InvalidKdfParams(String),

    /// The embedded database failed.
    #[error("storage error: {0}")]
    Storage(String),

    /// An I/O error on a path we were asked to read or write.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The message source failed as a whole (not one message): for example the
    /// mailbox path vanished or the server is unreachable. Run again later;
    /// indexing resumes from the last checkpoint.
    #[error("source {source_name} failed: {detail}")]
    Source {
        /// The source's stable name.
        source_name: String,
        /// What went wrong.
        detail: String,
    },

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),

    /// An indexing run was cancelled through its handle. Everything up to the
    /// last checkpoint is stored; run again to resume.
    #[error("indexing was cancelled; run again to resume from the last checkpoint")]
    Cancelled,

    /// The inverted index failed: a file failed authentication, tantivy
    /// reported an error, or it is not available for a search that asked for
    /// it. The store is intact; sealdex rebuilds the inverted index from it,
    /// and searches in `SearchMode::Auto` use the forward scan meanwhile.
    #[error(
        "inverted index: {0}; it is rebuilt from the store (search with --mode forward meanwhile)"
    )]
    Inverted(String),

    /// A thread of sealdex's panicked (a bug: please report it). What was
    /// written before stays; run again to resume.
    #[error("{0} panicked; what was written before is kept, run again to resume")]
    Panicked(String),

    /// A page cursor was given with a query, order or search mode other
    /// than the one that printed it. Start again from the first page.
    #[error("invalid page cursor: {0}")]
    InvalidCursor(String),

    /// A search query could not be parsed.
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { .. } => Error::Corrupt(format!("database: {e}")),
            other => Error::Storage(other.to_string()),
        }
    }
}
