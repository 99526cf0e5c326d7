//! Envelopes: what one device reflects to the others, sealed on the device
//! under the group's reflect key, padded to a size bucket, and checked
//! against replays on receipt.
//!
//! ```text
//! envelope = version(1) = 0x01 ‖ nonce(24) ‖ XChaCha20-Poly1305(reflect key, nonce, aad, padded)
//! padded   = length u32 LE ‖ plaintext ‖ zero bytes up to the bucket size
//! aad      = "sealdex-mdev/v1/envelope" ‖ DGID(32) ‖ sender device id u64 LE ‖ flags u8
//! ```
//!
//! Why the relay never sees a key: it only stores and forwards these bytes.
//! Why the sender's id and the ephemeral flag are in the associated data:
//! the relay tells a receiver who sent an envelope and whether it was
//! queued; if it lies about either, the envelope fails authentication.
//! Why random 192-bit nonces: devices of one group seal independently with
//! no shared counter, and XChaCha20's nonce space makes random draws safe;
//! the same nonce doubles as the envelope's identity for replay refusal.
//! Why buckets: the relay sees sizes, and powers of four reveal little more
//! than an order of magnitude.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::{SyncError, SyncResult};
use super::keys::{GroupKeys, NONCE_LEN, TAG_LEN, fill_random};

/// The envelope format version this build writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// Padded plaintext sizes. Above the last power-of-four bucket, sizes round
/// up to a multiple of 256 KiB.
pub const BUCKETS: [usize; 7] = [64, 256, 1024, 4096, 16384, 65536, 262144];

/// The largest plaintext an envelope carries (4 MiB minus the length prefix).
pub const MAX_PLAINTEXT: usize = (4 << 20) - 4;

/// Bytes an envelope adds to its padded plaintext.
pub const ENVELOPE_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

const AAD_LABEL: &[u8] = b"sealdex-mdev/v1/envelope";

/// The padded size for a plaintext of `len` bytes (length prefix included).
pub fn bucket_for(len: usize) -> usize {
    let need = len + 4;
    for b in BUCKETS {
        if need <= b {
            return b;
        }
    }
    let step = BUCKETS[BUCKETS.len() - 1];
    need.div_ceil(step) * step
}

fn aad(keys: &GroupKeys, sender: u64, ephemeral: bool) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_LABEL.len() + 41);
    a.extend_from_slice(AAD_LABEL);
    a.extend_from_slice(&keys.group_id().0);
    a.extend_from_slice(&sender.to_le_bytes());
    a.push(u8::from(ephemeral));
    a
}

/// Seals `plaintext` from device `sender` for the rest of the group.
///
/// ```
/// use sealdex::sync::{envelope, keys::{GroupKey, GroupKeys}};
/// let keys = GroupKeys::derive(&GroupKey::random()?)?;
/// let sealed = envelope::seal(&keys, 42, false, b"op")?;
/// assert_eq!(sealed.len(), envelope::ENVELOPE_OVERHEAD + 64);
/// let opened = envelope::open(&keys, 42, false, &sealed)?;
/// assert_eq!(&*opened.plaintext, b"op");
/// # Ok::<(), sealdex::sync::SyncError>(())
/// ```
pub fn seal(
    keys: &GroupKeys,
    sender: u64,
    ephemeral: bool,
    plaintext: &[u8],
) -> SyncResult<Vec<u8>> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(SyncError::EnvelopeTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT,
        });
    }
    let size = bucket_for(plaintext.len());
    let mut padded = Zeroizing::new(Vec::with_capacity(size));
    padded.extend_from_slice(
        &u32::try_from(plaintext.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    padded.extend_from_slice(plaintext);
    padded.resize(size, 0);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let boxed =
        keys.reflect_key()
            .seal_with_nonce(&nonce, &aad(keys, sender, ephemeral), &padded)?;
    let mut out = Vec::with_capacity(1 + boxed.len());
    out.push(ENVELOPE_VERSION);
    out.extend_from_slice(&boxed);
    Ok(out)
}

/// An envelope that authenticated.
pub struct Opened {
    /// Its nonce, which identifies it for replay refusal.
    pub nonce: [u8; NONCE_LEN],
    /// The plaintext (zeroized on drop, never shown by `Debug`).
    pub plaintext: Plaintext,
}

/// An opened envelope's content: what a device reflected, in clear. Zeroized
/// when dropped, and `Debug` shows only its length, so that an event logged
/// with `{:?}` cannot put index content into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    /// Wraps decrypted bytes.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        Plaintext(bytes)
    }
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext(<{} bytes>)", self.0.len())
    }
}

/// Opens an envelope that the relay says device `sender` reflected.
/// Refused (with [`SyncError::EnvelopeRejected`]) if it was altered,
/// truncated, re-attributed, or sealed under another group's key.
pub fn open(keys: &GroupKeys, sender: u64, ephemeral: bool, envelope: &[u8]) -> SyncResult<Opened> {
    let rejected = || SyncError::EnvelopeRejected {
        len: envelope.len(),
    };
    let (&version, rest) = envelope.split_first().ok_or_else(rejected)?;
    if version != ENVELOPE_VERSION || rest.len() < NONCE_LEN + TAG_LEN + 4 {
        return Err(rejected());
    }
    let nonce: [u8; NONCE_LEN] = rest[..NONCE_LEN].try_into().map_err(|_| rejected())?;
    let padded = keys
        .reflect_key()
        .open(&aad(keys, sender, ephemeral), rest)
        .ok_or_else(rejected)?;
    let len = u32::from_le_bytes(padded[..4].try_into().map_err(|_| rejected())?) as usize;
    if len > padded.len() - 4 || padded[4 + len..].iter().any(|&b| b != 0) {
        return Err(rejected());
    }
    Ok(Opened {
        nonce,
        plaintext: Plaintext(Zeroizing::new(padded[4..4 + len].to_vec())),
    })
}

/// The nonces a device has accepted, so a replayed envelope is refused.
///
/// In memory, optionally backed by an append-only file of 24-byte nonces
/// (not secret: random bytes that name no content), which makes the refusal
/// survive a device restart. Share one guard across reconnects of a device.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: HashSet<[u8; NONCE_LEN]>,
    file: Option<(PathBuf, File)>,
}

impl ReplayGuard {
    /// An in-memory guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard backed by `path` (created if missing). A torn last record
    /// (from a crash mid-write) is ignored.
    pub fn open(path: &Path) -> SyncResult<Self> {
        let mut seen = HashSet::new();
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| SyncError::io(format!("opening replay guard {}", path.display()), e))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)
            .map_err(|e| SyncError::io(format!("reading replay guard {}", path.display()), e))?;
        for chunk in buf.chunks_exact(NONCE_LEN) {
            if let Ok(n) = <[u8; NONCE_LEN]>::try_from(chunk) {
                seen.insert(n);
            }
        }
        Ok(ReplayGuard {
            seen,
            file: Some((path.to_owned(), file)),
        })
    }

    /// Whether `nonce` was accepted before.
    pub fn seen(&self, nonce: &[u8; NONCE_LEN]) -> bool {
        self.seen.contains(nonce)
    }

    /// Records `nonce` as accepted (durably, if file-backed) and returns
    /// false if it was already there: the envelope is a replay.
    pub fn accept(&mut self, nonce: [u8; NONCE_LEN]) -> SyncResult<bool> {
        if !self.seen.insert(nonce) {
            return Ok(false);
        }
        if let Some((path, file)) = &mut self.file {
            file.write_all(&nonce)
                .and_then(|()| file.sync_data())
                .map_err(|e| {
                    SyncError::io(format!("writing replay guard {}", path.display()), e)
                })?;
        }
        Ok(true)
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::keys::GroupKey;
    use proptest::prelude::*;

    fn keys(b: u8) -> GroupKeys {
        GroupKeys::derive(&GroupKey::from_bytes([b; 32])).unwrap()
    }

    #[test]
    fn buckets_hide_exact_sizes() {
        assert_eq!(bucket_for(0), 64);
        assert_eq!(bucket_for(60), 64);
        assert_eq!(bucket_for(61), 256);
        assert_eq!(bucket_for(262140), 262144);
        assert_eq!(bucket_for(262141), 2 * 262144);
        let k = keys(1);
        assert_eq!(
            seal(&k, 1, false, b"a").unwrap().len(),
            seal(&k, 1, false, &[7; 50]).unwrap().len()
        );
    }

    #[test]
    fn refused_when_tampered_truncated_reattributed_or_foreign() {
        let k = keys(1);
        let e = seal(&k, 5, false, b"hello").unwrap();
        assert!(open(&k, 5, false, &e).is_ok());
        let mut flipped = e.clone();
        flipped[40] ^= 0x80;
        assert!(matches!(
            open(&k, 5, false, &flipped),
            Err(SyncError::EnvelopeRejected { .. })
        ));
        assert!(open(&k, 5, false, &e[..e.len() - 1]).is_err());
        assert!(open(&k, 5, false, &e[..10]).is_err());
        assert!(open(&k, 5, false, &[]).is_err());
        assert!(open(&k, 6, false, &e).is_err());
        assert!(open(&k, 5, true, &e).is_err());
        assert!(open(&keys(2), 5, false, &e).is_err());
        let mut v2 = e.clone();
        v2[0] = 2;
        assert!(open(&k, 5, false, &v2).is_err());
    }

    #[test]
    fn replay_guard_refuses_seen_nonces_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nonces");
        let mut g = ReplayGuard::open(&p).unwrap();
        assert!(g.accept([1; 24]).unwrap());
        assert!(!g.accept([1; 24]).unwrap());
        drop(g);
        let mut g = ReplayGuard::open(&p).unwrap();
        assert!(g.seen(&[1; 24]));
        assert!(!g.accept([1; 24]).unwrap());
        assert!(g.accept([2; 24]).unwrap());
        assert_eq!(g.len(), 2);
    }

    proptest! {
        #[test]
        fn round_trip_any_plaintext(pt in proptest::collection::vec(any::<u8>(), 0..3000), sender: u64, eph: bool) {
            let k = keys(4);
            let e = seal(&k, sender, eph, &pt).unwrap();
            prop_assert_eq!(e.len(), ENVELOPE_OVERHEAD + bucket_for(pt.len()));
            let o = open(&k, sender, eph, &e).unwrap();
            prop_assert_eq!(&*o.plaintext, &pt);
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = open(&keys(4), 1, false, &bytes);
        }
    }
}
