//! Decryptors: turn a fetched [`RawMessage`] into a [`Message`], undoing
//! whatever encryption the backend applied, or fail with a typed reason.

use crate::record::{ContentKind, Flags};
use crate::source::RawMessage;

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

/// Turns a raw message into a [`Message`]. Called from many threads at once.
pub trait Decryptor: Send + Sync {
    /// Decrypts and parses one message.
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError>;
}

/// The decryptor for plaintext backends (Maildir, mbox, `.eml` files, an
/// IMAP server without end-to-end encryption): there is nothing to decrypt,
/// so it only parses the RFC 822 bytes with [`crate::mime::parse_rfc822`].
///
/// Why a size limit: a parsed message holds its decoded parts in memory at
/// once, and indexing runs several messages in parallel, so one multi-GB
/// file must fail as [`DecryptError::TooLarge`] rather than exhaust memory.
/// The default, 64 MiB, is above what mail servers accept (Gmail: 25 MB of
/// attachments, about 35 MB encoded).
///
/// ```
/// use sealdex::decrypt::PassThrough;
/// use sealdex::{Body, Decryptor, RawMessage};
///
/// let raw = RawMessage {
///     id: "inbox/1".into(),
///     bytes: b"Subject: Lunch?\r\nFrom: bob@example.org\r\n\r\nNoon at the usual place.\r\n".to_vec(),
///     folder: Some("INBOX".into()),
///     ..RawMessage::default()
/// };
/// let msg = PassThrough::default().decrypt(&raw)?;
/// assert_eq!(msg.subject, "Lunch?");
/// assert_eq!(msg.folders, ["INBOX"]);
/// assert!(matches!(msg.body, Body::Text(ref t) if t.starts_with("Noon")));
/// # Ok::<(), sealdex::DecryptError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassThrough {
    /// Messages longer than this many bytes fail with [`DecryptError::TooLarge`].
    pub max_message_bytes: usize,
}

impl PassThrough {
    /// The default limit on message size: 64 MiB.
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;
}

impl Default for PassThrough {
    fn default() -> Self {
        PassThrough {
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl Decryptor for PassThrough {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        crate::mime::parse_rfc822(raw, self.max_message_bytes)
    }
}
