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

    /// The message source failed as a whole (not one message): for example
    /// the mailbox path vanished, the server is unreachable or refused the
    /// credentials. [`Error::is_retryable`] says whether running again later
    /// can help (indexing then resumes from the last checkpoint) or
    /// something must be fixed first; the message says which.
    #[error("source {source_name} failed: {kind}: {detail} ({})", kind.advice())]
    Source {
        /// The source's stable name.
        source_name: String,
        /// What kind of failure it was.
        kind: SourceErrorKind,
        /// What went wrong.
        detail: String,
    },

    /// A worker thread panicked: a bug in sealdex, or in a [`crate::Source`]
    /// or [`crate::Decryptor`] implementation. Nothing after the last
    /// checkpoint was stored and the index is intact; please report it.
    #[error("a worker thread panicked ({0}); the index is intact up to the last checkpoint")]
    Panicked(String),

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

    /// A page cursor was given with a query, order or search mode other
    /// than the one that printed it. Start again from the first page.
    #[error("invalid page cursor: {0}")]
    InvalidCursor(String),

    /// A search query could not be parsed.
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),

    /// A format upgrade (`Index::upgrade`) could not run or finish. The
    /// index is left as it was before the upgrade, complete; what the
    /// upgrade built is removed at the next open or upgrade.
    #[error("cannot upgrade the index: {0}")]
    Upgrade(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the same call may succeed later without anyone changing
    /// anything: a source's network failure, timeout or transient refusal
    /// ([`SourceErrorKind::is_retryable`](SourceErrorKind::is_retryable)),
    /// or an index held open by another process that may close it. An
    /// authentication failure, a vanished mailbox, tampering or a bug is not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Source { kind, .. } => kind.is_retryable(),
            Error::InUse { .. } => true,
            Error::Io { source, .. } => SourceErrorKind::from(source.kind()).is_retryable(),
            _ => false,
        }
    }

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

/// What kind of failure a source's error is ([`crate::SourceError`],
/// [`Error::Source`]): what the caller should do
/// about it.
///
/// The pipeline retries a [retryable](SourceErrorKind::is_retryable) failure
/// with backoff and resumes from its checkpoint; any other kind stops the run
/// with an error that says what to fix, since running again unchanged would
/// fail the same way (and retrying a refused password can lock an account).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// Authentication or authorization failed: a wrong password or token,
    /// a revoked grant, a file the process may not read. Not retried.
    Auth,
    /// The network failed (connection refused, reset, unreachable host).
    /// Retried.
    Network,
    /// An operation timed out. Retried.
    Timeout,
    /// The source is temporarily unable to answer (server busy, rate
    /// limited, mailbox locked, interrupted call). Retried.
    Transient,
    /// What the source points at is gone: the mailbox path vanished, the
    /// account or folder no longer exists. Not retried.
    NotFound,
    /// The source's data, or a cursor or sync token given back to it, is
    /// unreadable (another format, truncated, garbage). Not retried; a
    /// malformed sync token means the source must be listed again.
    Malformed,
    /// Anything else. Not retried.
    Other,
}

impl SourceErrorKind {
    /// Whether the same call may succeed later without anyone changing
    /// anything: network failures, timeouts and transient refusals.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            SourceErrorKind::Network | SourceErrorKind::Timeout | SourceErrorKind::Transient
        )
    }

    /// What to do about a failure of this kind, in a few words for an error
    /// message.
    pub fn advice(self) -> &'static str {
        match self {
            SourceErrorKind::Auth => "check the credentials or permissions; not retried",
            SourceErrorKind::Network | SourceErrorKind::Timeout | SourceErrorKind::Transient => {
                "a transient failure: retried later, resuming from the last checkpoint"
            }
            SourceErrorKind::NotFound => "check that the mailbox still exists; not retried",
            SourceErrorKind::Malformed => "the source's data is unreadable; not retried",
            SourceErrorKind::Other => "not retried",
        }
    }
}

impl std::fmt::Display for SourceErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceErrorKind::Auth => "authentication failed",
            SourceErrorKind::Network => "network error",
            SourceErrorKind::Timeout => "timed out",
            SourceErrorKind::Transient => "temporarily unavailable",
            SourceErrorKind::NotFound => "not found",
            SourceErrorKind::Malformed => "malformed data",
            SourceErrorKind::Other => "error",
        })
    }
}

impl From<std::io::ErrorKind> for SourceErrorKind {
    /// Sorts an I/O error: a missing path is [`NotFound`](Self::NotFound), a
    /// refused permission [`Auth`](Self::Auth), timeouts, dropped
    /// connections and interrupted calls retryable, undecodable data
    /// [`Malformed`](Self::Malformed), the rest [`Other`](Self::Other).
    fn from(kind: std::io::ErrorKind) -> Self {
        use std::io::ErrorKind as K;
        match kind {
            K::NotFound => SourceErrorKind::NotFound,
            K::PermissionDenied => SourceErrorKind::Auth,
            K::TimedOut => SourceErrorKind::Timeout,
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::AddrNotAvailable
            | K::StaleNetworkFileHandle => SourceErrorKind::Network,
            K::Interrupted | K::WouldBlock | K::ResourceBusy => SourceErrorKind::Transient,
            K::InvalidData | K::UnexpectedEof => SourceErrorKind::Malformed,
            _ => SourceErrorKind::Other,
        }
    }
}
