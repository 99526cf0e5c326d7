//! Key hierarchy: the random data key, the key-encryption key that wraps it
//! (Argon2id over a passphrase, or a key the app supplies), and the labelled
//! sub-keys derived from it.
//!
//! ```text
//!   passphrase ──Argon2id(salt, m, t, p)──┐
//!   app key ────HKDF("kek/app")───────────┴─► KEK ──wraps──► data key (random, 256 bit)
//!                                                                 │ HKDF-SHA256, one label each
//!                  documents · id-mac · state · index-files · sync ◄┘
//! ```
//!
//! Why a data key at all, rather than deriving everything from the
//! passphrase: changing the passphrase then only re-wraps 32 bytes, and an
//! app that later switches from a passphrase to a key of its own does the
//! same. Why separate sub-keys: no key serves two purposes, so a flaw in how
//! one kind of record is used cannot be turned against another.
//!
//! Every secret lives in a [`SecretKey`], which is zeroized on drop and whose
//! `Debug` output is redacted.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::seal::{RecordKind, Sealer};
pub(crate) use crate::secret::fill_random;
pub use crate::secret::{KEY_LEN, SecretKey};

/// Length of the Argon2 salt stored beside the wrapped key.
const SALT_LEN: usize = 16;

/// What unlocks an index: the user's passphrase or a 32-byte key from the app.
///
/// ```
/// use sealdex::{Credential, SecretKey};
/// let by_passphrase = Credential::passphrase("correct horse battery staple");
/// let by_app_key = Credential::AppKey(SecretKey::from_bytes([1; 32]));
/// # let _ = (by_passphrase, by_app_key);
/// ```
#[derive(Clone)]
pub enum Credential {
    /// A passphrase, stretched with Argon2id.
    Passphrase(Zeroizing<String>),
    /// A key the embedding application supplies.
    AppKey(SecretKey),
}

impl Credential {
    /// A passphrase credential.
    pub fn passphrase(p: impl Into<String>) -> Self {
        Credential::Passphrase(Zeroizing::new(p.into()))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Passphrase(_) => f.write_str("Credential::Passphrase(<redacted>)"),
            Credential::AppKey(_) => f.write_str("Credential::AppKey(<redacted>)"),
        }
    }
}

/// Argon2id cost parameters for passphrase credentials.
///
/// The default, 64 MiB and three passes, takes a few hundred milliseconds
/// on a desktop core: slow enough to make guessing expensive, quick enough
/// that unlocking is not a chore. Phones may want less memory; servers that
/// never see the passphrase are not involved at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism.
    pub p_cost: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// Cheap parameters for tests and throw-away indexes (the demo). Never
    /// use them for a real user's passphrase.
    pub fn insecure_fast() -> Self {
        KdfParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn argon2(&self) -> Result<argon2::Argon2<'static>> {
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| Error::InvalidKdfParams(e.to_string()))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

/// How the key-encryption key is made; stored in clear beside the wrapped
/// key, and bound into the wrap's associated data so it cannot be swapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum KekSpec {
    Argon2id {
        params: KdfParams,
        salt: [u8; SALT_LEN],
    },
    AppKey,
}

impl KekSpec {
    pub(crate) fn new_for(cred: &Credential, params: KdfParams) -> Result<Self> {
        Ok(match cred {
            Credential::Passphrase(_) => {
                let mut salt = [0u8; SALT_LEN];
                fill_random(&mut salt)?;
                // Validate early so a bad parameter is reported before anything is written.
                params.argon2()?;
                KekSpec::Argon2id { params, salt }
            }
            Credential::AppKey(_) => KekSpec::AppKey,
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("serialising a KekSpec cannot fail")
    }

    /// Derives the key-encryption key. A credential of the other kind than
    /// the one the index was made with is a wrong key.
    fn kek(&self, cred: &Credential) -> Result<SecretKey> {
        match (self, cred) {
            (KekSpec::Argon2id { params, salt }, Credential::Passphrase(p)) => {
                let mut out = [0u8; KEY_LEN];
                params
                    .argon2()?
                    .hash_password_into(p.as_bytes(), salt, &mut out)
                    .map_err(|e| Error::InvalidKdfParams(e.to_string()))?;
                let key = SecretKey::from_bytes(out);
                out.zeroize();
                Ok(key)
            }
            (KekSpec::AppKey, Credential::AppKey(k)) => Ok(k.derive("kek/app")),
            _ => Err(Error::WrongKey),
        }
    }

    /// Wraps `data_key` under the KEK that `cred` yields.
    pub(crate) fn wrap(&self, cred: &Credential, data_key: &SecretKey) -> Result<Vec<u8>> {
        let kek = Sealer::new(&self.kek(cred)?);
        Ok(kek.seal(RecordKind::WrappedKey, &self.encode(), data_key.expose()))
    }

    /// Unwraps the data key; any failure to authenticate is a wrong key.
    pub(crate) fn unwrap(&self, cred: &Credential, wrapped: &[u8]) -> Result<SecretKey> {
        let kek = Sealer::new(&self.kek(cred)?);
        let plain = Zeroizing::new(
            kek.open(RecordKind::WrappedKey, &self.encode(), wrapped)
                .map_err(|_| Error::WrongKey)?,
        );
        SecretKey::from_slice(&plain).ok_or(Error::WrongKey)
    }
}

/// The purpose-bound keys derived from the data key, held while an index is open.
pub(crate) struct Keys {
    /// Kept only to re-wrap it when the credential changes.
    pub(crate) data: SecretKey,
    pub(crate) documents: Sealer,
    pub(crate) state: Sealer,
    pub(crate) id_mac: IdMac,
    /// For the encrypted inverted-index directory.
    #[allow(dead_code)]
    pub(crate) index_files: SecretKey,
    /// For multi-device sync.
    #[allow(dead_code)]
    pub(crate) sync: SecretKey,
}

impl Keys {
    pub(crate) fn derive(data: SecretKey) -> Self {
        Keys {
            documents: Sealer::new(&data.derive("documents")),
            state: Sealer::new(&data.derive("state")),
            id_mac: IdMac::new(&data.derive("id-mac")),
            index_files: data.derive("index-files"),
            sync: data.derive("sync"),
            data,
        }
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// Keyed MAC that turns message ids into store keys, so ids never appear in clear.
///
/// Holds HMAC's keyed state (the hash of the padded key, inner and outer)
/// rather than the key: each store key then costs two SHA-256 blocks
/// instead of four, and the pipeline makes one per message. The state is
/// zeroized on drop (`hmac`'s `zeroize` feature).
pub(crate) struct IdMac(hmac::Hmac<Sha256>);

/// Length of a MAC'ed id, the key of every document in the store.
pub(crate) const DOC_KEY_LEN: usize = 32;

impl IdMac {
    fn new(key: &SecretKey) -> Self {
        use hmac::KeyInit;
        IdMac(
            hmac::Hmac::<Sha256>::new_from_slice(key.expose())
                .expect("HMAC accepts a key of any length"),
        )
    }

    /// HMAC-SHA256 over the source name and the message id, length-prefixed
    /// so that no two (source, id) pairs share an input.
    pub(crate) fn doc_key(&self, source: &str, id: &str) -> [u8; DOC_KEY_LEN] {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(&(source.len() as u64).to_le_bytes());
        mac.update(source.as_bytes());
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A MAC'ed key for per-source state (checkpoints), kept apart from documents by a label.
    pub(crate) fn state_key(&self, label: &str, source: &str) -> [u8; DOC_KEY_LEN] {
        self.doc_key(&format!("\u{0}state/{label}"), source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keyed state is reused, never consumed: every store key is the
    /// HMAC of its input under the key, whatever was MAC'ed before (a
    /// store's keys must not change between two messages or two opens).
    #[test]
    fn doc_keys_are_the_hmac_of_their_input_every_time() {
        use hmac::{KeyInit, Mac};
        let key = SecretKey::from_bytes([7; 32]);
        let ids = IdMac::new(&key);
        let fresh = |source: &str, id: &str| -> [u8; DOC_KEY_LEN] {
            let mut m = hmac::Hmac::<Sha256>::new_from_slice(key.expose()).unwrap();
            m.update(&(source.len() as u64).to_le_bytes());
            m.update(source.as_bytes());
            m.update(id.as_bytes());
            m.finalize().into_bytes().into()
        };
        let first = ids.doc_key("inbox", "1");
        assert_eq!(ids.doc_key("chat", "2"), fresh("chat", "2"));
        assert_eq!(ids.doc_key("inbox", "1"), first);
        assert_eq!(first, fresh("inbox", "1"));
        assert_ne!(ids.doc_key("inbo", "x1"), first);
    }

    #[test]
    fn wrap_unwrap_round_trip_and_wrong_key() {
        let data = SecretKey::random().unwrap();
        let cred = Credential::passphrase("hunter2");
        let spec = KekSpec::new_for(&cred, KdfParams::insecure_fast()).unwrap();
        let wrapped = spec.wrap(&cred, &data).unwrap();
        assert!(spec.unwrap(&cred, &wrapped).unwrap() == data);
        let wrong = Credential::passphrase("hunter3");
        assert!(matches!(
            spec.unwrap(&wrong, &wrapped),
            Err(Error::WrongKey)
        ));
        let app = Credential::AppKey(SecretKey::from_bytes([0; 32]));
        assert!(matches!(spec.unwrap(&app, &wrapped), Err(Error::WrongKey)));
    }

    #[test]
    fn swapped_kdf_params_do_not_unwrap() {
        let data = SecretKey::random().unwrap();
        let cred = Credential::passphrase("pw");
        let spec = KekSpec::new_for(&cred, KdfParams::insecure_fast()).unwrap();
        let wrapped = spec.wrap(&cred, &data).unwrap();
        let other = KekSpec::new_for(&cred, KdfParams::insecure_fast()).unwrap();
        assert!(matches!(
            other.unwrap(&cred, &wrapped),
            Err(Error::WrongKey)
        ));
    }

    #[test]
    fn sub_keys_differ_and_debug_is_redacted() {
        let data = SecretKey::from_bytes([9; 32]);
        let a = data.derive("documents");
        let b = data.derive("state");
        assert!(a != b);
        let keys = Keys::derive(data);
        let dbg = format!("{keys:?} {:?}", keys.data);
        assert!(!dbg.contains('9'));
        assert_ne!(keys.id_mac.doc_key("s", "a"), keys.id_mac.doc_key("s", "b"));
        assert_ne!(
            keys.id_mac.doc_key("s", "ab"),
            keys.id_mac.doc_key("sa", "b")
        );
    }
}
