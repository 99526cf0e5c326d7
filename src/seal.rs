//! Sealing: the one authenticated-encryption envelope that every record on
//! disk is wrapped in.
//!
//! ```text
//!   envelope = version (1 byte) ‖ nonce (12 bytes) ‖ AES-256-GCM(ciphertext ‖ tag (16 bytes))
//!   associated data = "sealdex" ‖ version ‖ kind ‖ len(key) as u32 LE ‖ key
//! ```
//!
//! The nonce is fresh from the OS random number generator for every seal.
//! With 96-bit random nonces the collision bound allows about 2^32 seals per
//! key, far more than any mailbox needs; each purpose has its own key (see
//! [`crate::keys`]).
//!
//! The associated data is what makes a record stay where it was put: a
//! ciphertext moved to another store key, relabelled as another kind of
//! record, or read by a future envelope version fails authentication
//! instead of decrypting to the wrong thing. Truncation and bit flips fail
//! the GCM tag. Nothing here panics on any input.

use std::fmt;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

use crate::error::Error;
use crate::secret::{SecretKey, fill_random};

/// Version byte that leads every envelope.
pub const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// A 64-bit fingerprint of one sealed envelope: the first eight bytes of
/// its random nonce (0 for bytes too short to be an envelope).
///
/// Every seal draws a fresh nonce, so the stamp changes whenever a record is
/// written again; the inverted index keeps each record's stamp to find, by
/// comparing stamps with the store's envelopes, the records it is missing or
/// holds in an old version, without decrypting anything. It reveals nothing:
/// the nonce is stored in clear beside the ciphertext anyway.
///
/// ```
/// let sealer = sealdex::seal::Sealer::new(&sealdex::SecretKey::from_bytes([7; 32]));
/// let a = sealer.seal(sealdex::seal::RecordKind::Document, b"k", b"text");
/// let b = sealer.seal(sealdex::seal::RecordKind::Document, b"k", b"text");
/// assert_ne!(sealdex::seal::stamp(&a), sealdex::seal::stamp(&b));
/// ```
pub fn stamp(envelope: &[u8]) -> u64 {
    envelope
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// What a sealed record is; bound into its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum RecordKind {
    /// The data key, wrapped by the key-encryption key.
    WrappedKey = 1,
    /// A message record.
    Document = 2,
    /// An indexing checkpoint for one source.
    Checkpoint = 3,
    /// A recorded per-message failure.
    Failure = 4,
    /// The store manifest (record count and generation).
    Manifest = 5,
    /// A chunk of an inverted-index file.
    IndexChunk = 6,
    /// The store's compression dictionary (made of record encodings).
    Dictionary = 7,
    /// A deleted record's tombstone: the version of its delete.
    Tombstone = 8,
    /// A block of records, or its directory (store format 4).
    Block = 9,
    /// Where a block is stored (store format 4).
    BlockPosition = 10,
}

impl RecordKind {
    /// Human name, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::WrappedKey => "wrapped-key",
            RecordKind::Document => "document",
            RecordKind::Checkpoint => "checkpoint",
            RecordKind::Failure => "failure",
            RecordKind::Manifest => "manifest",
            RecordKind::IndexChunk => "index-chunk",
            RecordKind::Dictionary => "dictionary",
            RecordKind::Tombstone => "tombstone",
            RecordKind::Block => "block",
            RecordKind::BlockPosition => "block-position",
        }
    }
}

/// Why an envelope did not open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Shorter than the smallest possible envelope.
    #[error("envelope truncated ({0} bytes)")]
    Truncated(usize),
    /// A version byte this build does not know.
    #[error("unknown envelope version {0}")]
    UnknownVersion(u8),
    /// The tag did not verify: altered, moved, or sealed under another key.
    #[error("authentication tag mismatch")]
    BadTag,
}

impl OpenError {
    pub(crate) fn into_error(self, kind: RecordKind) -> Error {
        Error::Tampered {
            kind: kind.name(),
            detail: self.to_string(),
        }
    }
}

/// Seals and opens envelopes under one key. Its `Debug` shows no key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

fn aad(kind: RecordKind, key: &[u8], version: u8) -> Vec<u8> {
    let mut a = Vec::with_capacity(7 + 2 + 4 + key.len());
    a.extend_from_slice(b"sealdex");
    a.push(version);
    a.push(kind as u8);
    a.extend_from_slice(&(key.len() as u32).to_le_bytes());
    a.extend_from_slice(key);
    a
}

impl Sealer {
    /// A sealer for one key. The AES key schedule is zeroized when it drops.
    pub fn new(key: &SecretKey) -> Self {
        Sealer {
            cipher: Aes256Gcm::new(key.expose().into()),
        }
    }

    /// Seals `plaintext` as a record of `kind` stored under `key`.
    ///
    /// # Panics
    ///
    /// Only if the operating system's random number generator fails, which
    /// leaves no safe way to continue.
    ///
    /// ```
    /// use sealdex::seal::{RecordKind, Sealer};
    /// let s = Sealer::new(&sealdex::SecretKey::from_bytes([3; 32]));
    /// let env = s.seal(RecordKind::Document, b"key-1", b"hello");
    /// assert_eq!(s.open(RecordKind::Document, b"key-1", &env).unwrap(), b"hello");
    /// assert!(s.open(RecordKind::Document, b"key-2", &env).is_err());
    /// ```
    pub fn seal(&self, kind: RecordKind, key: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.push(ENVELOPE_VERSION);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce).expect("the OS random number generator failed");
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &Nonce::from(nonce),
                &aad(kind, key, ENVELOPE_VERSION),
                (&mut out[1 + NONCE_LEN..]).into(),
            )
            .expect("AES-GCM accepts any record shorter than 64 GiB");
        out.extend_from_slice(&tag);
        out
    }

    /// Opens an envelope sealed as `kind` under `key`, returning the plaintext.
    pub fn open(
        &self,
        kind: RecordKind,
        key: &[u8],
        envelope: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        if envelope.len() < OVERHEAD {
            return Err(OpenError::Truncated(envelope.len()));
        }
        let version = envelope[0];
        if version != ENVELOPE_VERSION {
            return Err(OpenError::UnknownVersion(version));
        }
        let nonce: [u8; NONCE_LEN] = envelope[1..1 + NONCE_LEN]
            .try_into()
            .map_err(|_| OpenError::Truncated(envelope.len()))?;
        let body_end = envelope.len() - TAG_LEN;
        let tag = Tag::try_from(&envelope[body_end..]).map_err(|_| OpenError::BadTag)?;
        let mut plain = envelope[1 + NONCE_LEN..body_end].to_vec();
        self.cipher
            .decrypt_inout_detached(
                &Nonce::from(nonce),
                &aad(kind, key, version),
                plain.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| OpenError::BadTag)?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sealer() -> Sealer {
        Sealer::new(&SecretKey::from_bytes([42; 32]))
    }

    proptest! {
        #[test]
        fn round_trip(plain in proptest::collection::vec(any::<u8>(), 0..4096),
                      key in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = sealer();
            let env = s.seal(RecordKind::Document, &key, &plain);
            prop_assert_eq!(env.len(), plain.len() + OVERHEAD);
            prop_assert_eq!(s.open(RecordKind::Document, &key, &env).unwrap(), plain);
        }

        #[test]
        fn any_bit_flip_fails(plain in proptest::collection::vec(any::<u8>(), 0..512),
                              pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let s = sealer();
            let mut env = s.seal(RecordKind::Document, b"k", &plain);
            let i = pos.index(env.len());
            env[i] ^= 1 << bit;
            prop_assert!(s.open(RecordKind::Document, b"k", &env).is_err());
        }

        #[test]
        fn any_truncation_fails(plain in proptest::collection::vec(any::<u8>(), 0..512),
                                cut in any::<prop::sample::Index>()) {
            let s = sealer();
            let env = s.seal(RecordKind::Document, b"k", &plain);
            let n = cut.index(env.len());
            prop_assert!(s.open(RecordKind::Document, b"k", &env[..n]).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = sealer().open(RecordKind::Document, b"k", &bytes);
        }
    }

    #[test]
    fn kind_key_and_sealer_are_bound() {
        let s = sealer();
        let env = s.seal(RecordKind::Document, b"k", b"secret");
        assert_eq!(
            s.open(RecordKind::Failure, b"k", &env),
            Err(OpenError::BadTag)
        );
        assert_eq!(
            s.open(RecordKind::Document, b"k2", &env),
            Err(OpenError::BadTag)
        );
        let other = Sealer::new(&SecretKey::from_bytes([43; 32]));
        assert_eq!(
            other.open(RecordKind::Document, b"k", &env),
            Err(OpenError::BadTag)
        );
        let mut v2 = env.clone();
        v2[0] = 2;
        assert_eq!(
            s.open(RecordKind::Document, b"k", &v2),
            Err(OpenError::UnknownVersion(2))
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let s = sealer();
        let a = s.seal(RecordKind::Document, b"k", b"same");
        let b = s.seal(RecordKind::Document, b"k", b"same");
        assert_ne!(a, b);
    }
}
