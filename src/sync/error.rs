//! The sync module's one error type, with variants that say what to do next.
//!
//! Like the crate's [`crate::Error`], no variant carries key material,
//! envelope plaintext or anything naming an account: a DGID, a random device
//! id, a size or a close code at most, so every error is safe to log.

/// Everything that can go wrong in group keys, the mediator protocol, the
/// relay and the device client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A key or secret had the wrong length.
    #[error("{what} must be {expected}, got {found} bytes")]
    KeyLength {
        /// What was being read (e.g. "a device group key").
        what: &'static str,
        /// The lengths accepted, in words.
        expected: &'static str,
        /// The length found.
        found: usize,
    },

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),

    /// A frame or payload from the peer could not be decoded. The connection
    /// is closed with close code 4000 (protocol error).
    #[error("malformed {what} from the peer: {detail}")]
    Malformed {
        /// Which message or field.
        what: &'static str,
        /// What was wrong (never the bytes themselves).
        detail: String,
    },

    /// An envelope failed authentication: it was altered, truncated, sealed
    /// under another group's key, or attributed to the wrong device. Its
    /// content is not used.
    #[error("a reflected envelope failed authentication ({len} bytes); it was refused")]
    EnvelopeRejected {
        /// Size of the refused envelope.
        len: usize,
    },

    /// An envelope carried a nonce this device accepted before: the relay (or
    /// someone on the path) replayed it. It was refused.
    #[error("a reflected envelope was a replay of one already accepted; it was refused")]
    EnvelopeReplayed,

    /// The plaintext is larger than the largest envelope bucket.
    #[error("an envelope holds at most {max} bytes of plaintext, this one {len}")]
    EnvelopeTooLarge {
        /// Plaintext length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The relay closed the connection with a close code.
    #[error("the relay closed the connection: {code} ({reason})")]
    Closed {
        /// The WebSocket close code (see docs/protocol.md).
        code: u16,
        /// The reason the relay gave.
        reason: String,
    },

    /// The peer did something the protocol does not allow in this state.
    #[error("protocol violation: {0}")]
    Protocol(String),

    /// A transaction could not begin because another device holds the lock.
    #[error(
        "another device ({holder:016x}) holds the group's transaction lock; wait for TransactionEnded and retry"
    )]
    TransactionRejected {
        /// Device id of the holder.
        holder: u64,
        /// The holder's sealed scope (open it with [`crate::sync::keys::GroupKeys::open_scope`]).
        sealed_scope: Vec<u8>,
    },

    /// Network or file I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A TLS certificate, key or root could not be used (feature
    /// `mediator`), or a `wss://` handshake failed. Never shows key bytes.
    #[error("TLS: {0}; check the PEM files and the trusted roots")]
    Tls(String),

    /// The relay's queue store (sled or the distributed engine) failed.
    #[error("queue store: {0}; check the data directory or the engine and restart the relay")]
    Store(String),

    /// The connection is gone (closed by either side, or the task ended).
    #[error("the connection to the relay is closed; connect again")]
    Disconnected,

    /// An operation did not complete in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The local index failed while applying or reading what is shared
    /// (`sync::share`); the error says what to do.
    #[error("the local index: {0}")]
    Index(Box<crate::Error>),
}

impl SyncError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SyncError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for the sync module.
pub type SyncResult<T> = std::result::Result<T, SyncError>;
