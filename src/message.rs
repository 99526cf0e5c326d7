//! The decrypted message: what a [`Decryptor`](crate::Decryptor) makes of a
//! fetched raw message, before cleaning turns it into a
//! [`Record`](crate::Record), and why one could not be made
//! ([`DecryptError`]).
//!
//! A module of its own below both the decryptors and the parsers they use
//! ([`crate::mime`]): a parser builds a `Message` without knowing who calls
//! it. Re-exported from [`crate::decrypt`] and the crate root.

use crate::record::{ContentKind, Flags};

/// The body of a message as the decryptor found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Plain text.
    Text(String),
    /// HTML, to be cleaned into text.
    Html(String),
}

impl Default for Body {
    fn default() -> Self {
        Body::Text(String::new())
    }
}

/// A decrypted, parsed message, before cleaning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The source's id for it.
    pub id: String,
    /// Seconds since the Unix epoch, UTC.
    pub date: Option<i64>,
    /// Sender: `Name <address>` for each.
    pub from: String,
    /// To and Cc: `Name <address>` for each, one per line.
    pub to: String,
    /// Subject or title.
    pub subject: String,
    /// The body: text when the message has a text part, HTML otherwise.
    pub body: Body,
    /// Folder first, then labels.
    pub folders: Vec<String>,
    /// Unread, flagged, has attachment.
    pub flags: Flags,
    /// Attachment file names; for a drive file, its path.
    pub attachments: Vec<String>,
    /// What the message is: the decryptor (or the pushing app) says.
    pub kind: ContentKind,
    /// Labels, apart from the folder.
    pub labels: Vec<String>,
    /// A mail's `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// An event's end, seconds since the Unix epoch, UTC.
    pub end: Option<i64>,
    /// An event's location.
    pub location: String,
    /// A file's media type.
    pub media_type: Option<String>,
}

/// Why a message could not be turned into a [`Message`]. Recorded with the
/// message's id and retried on a later run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The bytes are not a message this decryptor understands.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The message is encrypted and could not be decrypted (missing key, bad signature).
    #[error("cannot decrypt: {0}")]
    CannotDecrypt(String),
    /// Larger than the configured limit.
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The message has no content at all.
    #[error("empty message")]
    Empty,
}

impl DecryptError {
    /// A short stable name for the reason, for grouping failures in statistics.
    pub fn reason(&self) -> &'static str {
        match self {
            DecryptError::Malformed(_) => "malformed",
            DecryptError::CannotDecrypt(_) => "cannot-decrypt",
            DecryptError::TooLarge { .. } => "too-large",
            DecryptError::Empty => "empty",
        }
    }
}
