//! Secret keys in memory: the one type every key is held in
//! ([`SecretKey`]: zeroized on drop, redacted in `Debug`), its derivation of
//! sub-keys, and the operating system's randomness.
//!
//! The lowest layer of the key handling: [`seal`](crate::seal) seals with a
//! `SecretKey`, and [`keys`](crate::keys) builds the key hierarchy (the
//! wrapped data key, the key-encryption key, the per-purpose sub-keys) on
//! top of both.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// Length in bytes of every symmetric key sealdex uses.
pub const KEY_LEN: usize = 32;

/// A 256-bit secret. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// Wraps 32 bytes the caller already has (for instance a key the app
    /// derived from the user's private key).
    ///
    /// ```
    /// let key = sealdex::SecretKey::from_bytes([7u8; 32]);
    /// assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    /// ```
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// Reads a key from a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(SecretKey(arr))
    }

    /// A fresh key from the operating system's random number generator.
    pub fn random() -> Result<Self> {
        let mut k = [0u8; KEY_LEN];
        fill_random(&mut k)?;
        Ok(SecretKey(k))
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Derives a sub-key for one purpose with HKDF-SHA256.
    pub(crate) fn derive(&self, label: &str) -> SecretKey {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; KEY_LEN];
        let info = format!("sealdex/v1/{label}");
        // Expanding 32 bytes from SHA-256 HKDF cannot exceed the 255*32 limit.
        hk.expand(info.as_bytes(), &mut out)
            .expect("32-byte HKDF-SHA256 output is always valid");
        SecretKey(out)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}
