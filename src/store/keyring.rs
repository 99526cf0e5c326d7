//! The keyring: the one file of an index kept in clear (its format, the
//! key-derivation spec and the wrapped data key), the lock that keeps
//! other openers out, and re-wrapping the data key under a new credential.

use std::fs::{File, OpenOptions};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tracing::info;

use super::{FORMAT_VERSION, KEYRING_FILE, KEYRING_MAGIC, LOCK_FILE, OLDEST_FORMAT, Store};
use crate::error::{Error, Result};
use crate::keys::{Credential, KdfParams, KekSpec};

pub(super) fn lock_dir(path: &Path) -> Result<File> {
    let lock_path = path.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io(&lock_path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&lock_path, e)),
    }
}

pub(super) fn is_index_dir(path: &Path) -> bool {
    path.join(KEYRING_FILE).is_file()
}

/// The clear part of an index: what unlocking needs.
#[derive(Serialize, Deserialize)]
pub(super) struct Keyring {
    pub(super) format: u32,
    pub(super) kek: KekSpec,
    pub(super) wrapped: Vec<u8>,
}

impl Keyring {
    pub(super) fn read(path: &Path) -> Result<Keyring> {
        let file = path.join(KEYRING_FILE);
        let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
        let body = bytes
            .strip_prefix(KEYRING_MAGIC)
            .ok_or_else(|| Error::Corrupt("the keyring file has no sealdex header".into()))?;
        // The format version leads the body, so that a future layout can be
        // told apart from a damaged one.
        let format = body
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| Error::Corrupt("the keyring file is truncated".into()))?;
        if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&format) {
            return Err(Error::UnsupportedFormat {
                found: format,
                supported: FORMAT_VERSION,
            });
        }
        let (kek, wrapped): (KekSpec, Vec<u8>) = postcard::from_bytes(&body[4..])
            .map_err(|_| Error::Corrupt("the keyring file is unreadable".into()))?;
        Ok(Keyring {
            format,
            kek,
            wrapped,
        })
    }

    /// Replaces the keyring file atomically and durably.
    pub(super) fn write(&self, path: &Path) -> Result<()> {
        let mut bytes = KEYRING_MAGIC.to_vec();
        bytes.extend_from_slice(&self.format.to_le_bytes());
        bytes.extend_from_slice(
            &postcard::to_allocvec(&(&self.kek, &self.wrapped))
                .map_err(|e| Error::Corrupt(format!("cannot encode the keyring: {e}")))?,
        );
        write_atomic(path, KEYRING_FILE, &bytes)
    }
}

/// Replaces `dir/name` atomically and durably: write a temporary file,
/// fsync it, rename it over the old one, fsync the directory.
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
    // Make the rename itself durable (best effort: the keyring is written
    // and complete either way).
    let _ = crate::fsio::sync_dir(dir);
    Ok(())
}

impl Store {
    /// Re-wraps the data key under a new credential. Nothing else is
    /// re-encrypted; the old credential stops working once this returns.
    pub fn change_credential(&self, new: &Credential, kdf: KdfParams) -> Result<()> {
        let kek = KekSpec::new_for(new, kdf)?;
        let wrapped = kek.wrap(new, &self.keys.data)?;
        Keyring {
            format: self.format,
            kek,
            wrapped,
        }
        .write(&self.path)?;
        info!("credential changed; data key re-wrapped");
        Ok(())
    }

    /// The key-derivation parameters the index's credential is stretched
    /// with (the default for an app key, which is not stretched): a
    /// rebuilt index (`crate::upgrade`) wraps its key the same way.
    pub(crate) fn kdf_params(&self) -> Result<KdfParams> {
        Ok(match Keyring::read(&self.path)?.kek {
            KekSpec::Argon2id { params, .. } => params,
            KekSpec::AppKey => KdfParams::default(),
        })
    }

    /// Checks that `cred` unlocks this index ([`Error::WrongKey`] if not):
    /// an upgrade wraps the new index's key with it, and must not hand the
    /// index to a credential that could not open it before.
    pub(crate) fn check_credential(&self, cred: &Credential) -> Result<()> {
        // The wrap is authenticated: unwrapping succeeds only with the
        // credential the keyring was written for.
        let keyring = Keyring::read(&self.path)?;
        keyring.kek.unwrap(cred, &keyring.wrapped).map(drop)
    }

    /// A second handle on the file that holds the index's lock: the lock
    /// is held until both it and the store are dropped (an upgrade keeps
    /// it across closing the old store and swapping it out).
    pub(crate) fn lock_handle(&self) -> Result<File> {
        self._lock
            .try_clone()
            .map_err(|e| Error::io(self.path.join(LOCK_FILE), e))
    }
}

/// Takes the lock of the index directory at `path` (for `crate::upgrade`,
/// which holds the rebuilt index's lock while it swaps it in).
pub(crate) fn lock_index_dir(path: &Path) -> Result<File> {
    lock_dir(path)
}
