//! Sources: where messages come from. The [`Source`] trait lists message
//! references page by page behind an opaque, resumable cursor, fetches raw
//! messages in batches, and reports what changed since a sync token.
//!
//! # Implementing a source for a network backend
//!
//! The pipeline calls a source from one dedicated thread and never from two
//! at once, so a source may hold a connection and need not be `Sync`. The
//! trait is blocking on purpose: it keeps the trait object-safe and free of
//! any particular async runtime. An async client plugs in by blocking on its
//! runtime inside each method, for example with Tokio:
//!
//! ```text
//! impl Source for ImapSource {
//!     fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
//!         self.runtime.block_on(self.client.list(cursor, limit))
//!     }
//!     // fetch, sync_token and changes likewise
//! }
//! ```
//!
//! Cursors and sync tokens are opaque bytes to sealdex: a server page token,
//! an IMAP UID and UIDVALIDITY, a JMAP state string. sealdex stores them only
//! sealed, so they may hold anything the source needs, including ids.

use serde::{Deserialize, Serialize};

use crate::record::Flags;

/// An opaque position in a source's listing; pass it back to resume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor(pub Vec<u8>);

/// An opaque description of a source's state, from which [`Source::changes`]
/// computes what changed since.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncToken(pub Vec<u8>);

/// A reference to one message, enough to fetch it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The message's id, stable across runs and unique within the source.
    pub id: String,
    /// Where the source keeps it (a Maildir folder, a file path, an offset):
    /// opaque to sealdex, passed back to [`Source::fetch`].
    pub locator: Vec<u8>,
    /// The source's fingerprint of this version of the message, if it has one.
    pub version: Option<String>,
    /// Size in bytes, when known, for progress reporting.
    pub size: Option<u64>,
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// The references on this page, in listing order.
    pub refs: Vec<MessageRef>,
    /// Where the next page starts; `None` when this was the last page.
    pub next: Option<Cursor>,
    /// The total number of messages, when the source knows it.
    pub total: Option<u64>,
}

/// A raw message as the source holds it, plus what the source knows about it
/// outside the message itself.
#[derive(Clone, Debug, Default)]
pub struct RawMessage {
    /// The message's id within the source.
    pub id: String,
    /// The raw bytes (an RFC 822 message, an encrypted blob, a JSON chat
    /// message: whatever the [`crate::Decryptor`] expects).
    pub bytes: Vec<u8>,
    /// The folder it is in, if the source has folders.
    pub folder: Option<String>,
    /// Labels the source attaches.
    pub labels: Vec<String>,
    /// Flags from the source (for Maildir, from the file name), if it has them.
    pub flags: Option<Flags>,
    /// The source's fingerprint of this version.
    pub version: Option<String>,
}

/// Why a source could not produce one message. Recorded as a per-message
/// failure and retried on a later run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("could not fetch {id}: {reason}")]
pub struct FetchError {
    /// The message id.
    pub id: String,
    /// What went wrong.
    pub reason: String,
}

pub use crate::error::SourceErrorKind;

/// Why a source failed as a whole (not one message): a [kind](Self::kind)
/// that says whether to retry, and a message for people.
///
/// Implementers build one with the constructor of its kind
/// ([`SourceError::auth`], [`SourceError::network`], …) or convert an
/// [`std::io::Error`], whose kind is kept.
///
/// ```
/// use sealdex::{SourceError, SourceErrorKind};
///
/// let e = SourceError::auth("IMAP LOGIN refused for alice@example.org");
/// assert_eq!(e.kind(), SourceErrorKind::Auth);
/// assert!(!e.is_retryable());
///
/// let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert!(SourceError::from(io).is_retryable());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct SourceError {
    kind: SourceErrorKind,
    message: String,
}

impl SourceError {
    /// An error of `kind`.
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
        }
    }

    /// Authentication or authorization failed ([`SourceErrorKind::Auth`]).
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(SourceErrorKind::Auth, message)
    }

    /// The network failed ([`SourceErrorKind::Network`]).
    pub fn network(message: impl Into<String>) -> Self {
        Self::new(SourceErrorKind::Network, message)
    }

    /// An operation timed out ([`SourceErrorKind::Timeout`]).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(SourceErrorKind::Timeout, message)
    }

    /// The source is temporarily unable to answer
    /// ([`SourceErrorKind::Transient`]).
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(SourceErrorKind::Transient, message)
    }

    /// What the source points at is gone ([`SourceErrorKind::NotFound`]).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(SourceErrorKind::NotFound, message)
    }

    /// The source's data, cursor or token is unreadable
    /// ([`SourceErrorKind::Malformed`]).
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(SourceErrorKind::Malformed, message)
    }

    /// Any other failure ([`SourceErrorKind::Other`]).
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(SourceErrorKind::Other, message)
    }

    /// An I/O error with context (`"cannot list /home/me/Maildir/cur"`),
    /// keeping the kind [`SourceErrorKind::from`] gives `e`'s kind.
    pub fn io(context: impl std::fmt::Display, e: &std::io::Error) -> Self {
        Self::new(e.kind().into(), format!("{context}: {e}"))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> SourceErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the same call may succeed later unchanged; see
    /// [`SourceErrorKind::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl From<std::io::Error> for SourceError {
    fn from(e: std::io::Error) -> Self {
        SourceError::new(e.kind().into(), e.to_string())
    }
}

impl crate::error::Error {
    /// The error for a [`SourceError`] of the source named `source_name`,
    /// keeping its kind (and with it [`Error::is_retryable`]'s answer).
    ///
    /// [`Error::is_retryable`]: crate::Error::is_retryable
    pub fn source(source_name: impl Into<String>, e: SourceError) -> Self {
        crate::error::Error::Source {
            source_name: source_name.into(),
            kind: e.kind,
            detail: e.message,
        }
    }
}

/// What a metadata-only change sets: each `Some` replaces the record's
/// value, each `None` leaves it. Applied as a [`Patch`](crate::ops::Patch)
/// without fetching, decrypting or cleaning the message again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The folders the message is in now.
    pub folders: Option<Vec<String>>,
    /// Its labels now.
    pub labels: Option<Vec<String>>,
    /// Whether it is unread now.
    pub unread: Option<bool>,
    /// Whether it is flagged now.
    pub flagged: Option<bool>,
}

/// One change reported by [`Source::changes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new message.
    Created(MessageRef),
    /// The message's content changed (re-fetch and re-index it).
    ContentUpdated(MessageRef),
    /// Only flags or labels changed: patched, never fetched.
    MetadataUpdated(MessageRef, Metadata),
    /// The message moved to another folder (its id stays): patched, never
    /// fetched.
    Moved(MessageRef, Metadata),
    /// The message is gone.
    Deleted {
        /// Its id.
        id: String,
    },
}

/// The changes since a token, and the token to ask with next time.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// What changed, in the order to apply it.
    pub changes: Vec<Change>,
    /// The state after these changes.
    pub token: SyncToken,
}

/// Where messages come from: any mail, chat, drive or calendar backend.
///
/// Object-safe, so a client can hold a `Box<dyn Source>`.
pub trait Source: Send {
    /// A stable name that tells this source apart from others in the same
    /// index (an account id, a canonical mailbox path). Record keys and
    /// checkpoints are scoped by it.
    fn name(&self) -> &str;

    /// Lists up to `limit` references starting at `cursor` (`None`: from the
    /// start). Listing order must be stable across runs for resuming to skip
    /// work; it need not be by date.
    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError>;

    /// Fetches a batch of messages. One entry per reference, in order; a
    /// message that cannot be fetched is an `Err` entry, not a failed batch.
    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>>;

    /// A failure of the source as a whole during the last [`Source::fetch`]
    /// (the server went away and retrying did not bring it back), taken so
    /// that it is reported once. The pipeline asks after every fetch and,
    /// when there is one, stops the run before writing that batch or its
    /// checkpoint: the messages are fetched again when the run resumes,
    /// instead of being recorded as failures one by one. Sources that
    /// cannot fail as a whole keep the default, `None`.
    fn take_failure(&mut self) -> Option<SourceError> {
        None
    }

    /// A token describing the source as it is now, to pass to
    /// [`Source::changes`] later.
    fn sync_token(&mut self) -> Result<SyncToken, SourceError>;

    /// What changed since `since`, and the token for next time.
    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError>;
}
