//! Decryptors: turn a fetched [`RawMessage`] into a [`Message`], undoing
//! whatever encryption the backend applied, or fail with a typed reason.
//!
//! The [`Message`] they produce, and [`DecryptError`], live in the lower
//! module `message` (re-exported here), so that parsers such as
//! [`crate::mime`] build messages without depending on the decryptors that
//! call them.

pub use crate::message::{Body, DecryptError, Message};
use crate::source::RawMessage;

#[cfg(feature = "openpgp")]
pub mod openpgp;

/// Turns a raw message into a [`Message`]. Called from many threads at once.
pub trait Decryptor: Send + Sync {
    /// Decrypts and parses one message.
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError>;

    /// A short fingerprint of the keys this decryptor holds, or `None` when
    /// it holds none (the default).
    ///
    /// Why: a message encrypted to a key the decryptor lacks fails as
    /// [`DecryptError::CannotDecrypt`], and retrying it with the same keys
    /// fails again, however long the backoff; once the user adds the
    /// missing key it should be retried at once. The pipeline records this
    /// value with each failure and retries every `cannot-decrypt` failure
    /// whose recorded key set differs from the current one, ahead of its
    /// backoff (see [`crate::pipeline`], "Failures").
    fn key_set(&self) -> Option<String> {
        None
    }
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
