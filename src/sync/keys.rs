//! Device group keys: the device group key (DGK), its purpose-bound sub-keys,
//! the anonymous device group id (DGID), and the small sealed boxes built on
//! them (device info, transaction scope, the handshake's challenge answer).
//!
//! The construction is Threema's multi-device key schedule with sealdex's own
//! personalisation, so that sealdex keys can never collide with Threema's:
//!
//! ```text
//!   account secret ──BLAKE2b-256(key, salt "dgk", personal "sealdex-mdev")──┐
//!   random 32 bytes, handed over out of band (e.g. a QR code) ──────────────┴─► DGK
//!
//!   DGK ──BLAKE2b-256(key = DGK, salt = S, personal = "sealdex-mdev")──► sub-key S
//!        S = "p"   path key (X25519 secret; its public key is the DGID)
//!            "r"   reflect key (seals every envelope)
//!            "di"  device-info key (seals each device's label for the others)
//!            "sdd" shared-device-data key
//!            "ts"  transaction-scope key
//! ```
//!
//! Why BLAKE2b's keyed mode with salt and personalisation rather than HKDF:
//! it is what the published protocol specifies, so its published vectors
//! (run with personal `3ma-mdev`) check this implementation byte for byte.
//! Why the DGID is a public key: the relay must route and authenticate a
//! group without learning anything about the account, and a public key lets
//! a device prove it belongs (by answering a challenge under X25519) while
//! the relay holds nothing secret.
//!
//! Every secret is zeroized on drop and `Debug` prints `<redacted>`.

use std::fmt;

use blake2::Blake2bMac;
use blake2::digest::Mac;
use blake2::digest::consts::U32;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::{SyncError, SyncResult};

/// BLAKE2b with a 256-bit output in keyed mode (`Blake2bMac256`).
type Blake2bMac256 = Blake2bMac<U32>;

/// sealdex's personalisation for every group-key derivation.
pub const PERSONAL: &[u8] = b"sealdex-mdev";

/// Length of the device group key and of every sub-key.
pub const KEY_LEN: usize = 32;

/// Length of an XChaCha20-Poly1305 nonce, which opens every sealed box.
pub const NONCE_LEN: usize = 24;

/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Bytes a sealed box adds to its plaintext (nonce and tag).
pub const BOX_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// BLAKE2b-256 in keyed mode with salt and personalisation, as the issue and
/// Threema's protocol define it (`Blake2bMac256::new_with_salt_and_personal`;
/// the salt and personal are zero-padded to 16 bytes by BLAKE2b's parameter
/// block). The message is empty.
fn blake2b_kdf(key: &[u8], salt: &[u8], personal: &[u8]) -> SyncResult<Zeroizing<[u8; KEY_LEN]>> {
    let mac =
        Blake2bMac256::new_with_salt_and_personal(Some(key), salt, personal).map_err(|_| {
            SyncError::KeyLength {
                what: "a BLAKE2b key",
                expected: "1 to 64 bytes",
                found: key.len(),
            }
        })?;
    let out = mac.finalize().into_bytes();
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    k.copy_from_slice(&out);
    Ok(k)
}

pub(crate) fn fill_random(buf: &mut [u8]) -> SyncResult<()> {
    getrandom::fill(buf).map_err(|e| SyncError::Random(e.to_string()))
}

/// The device group key: 32 secret bytes every device of one account holds.
///
/// ```
/// use sealdex::sync::keys::GroupKey;
/// let dgk = GroupKey::from_bytes([0u8; 32]);
/// assert_eq!(format!("{dgk:?}"), "GroupKey(<redacted>)");
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct GroupKey([u8; KEY_LEN]);

impl GroupKey {
    /// Wraps 32 bytes the app already has (for instance scanned from a QR
    /// code shown by another device).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        GroupKey(bytes)
    }

    /// Reads a key that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> SyncResult<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|_| SyncError::KeyLength {
            what: "a device group key",
            expected: "exactly 32 bytes",
            found: bytes.len(),
        })?;
        Ok(GroupKey(arr))
    }

    /// A fresh random key, to hand to the account's other devices out of band.
    pub fn random() -> SyncResult<Self> {
        let mut k = [0u8; KEY_LEN];
        fill_random(&mut k)?;
        Ok(GroupKey(k))
    }

    /// Derives the key from the account's secret, so that every device of
    /// the account derives the same key alone, with no join step:
    /// `BLAKE2b-256(key = account secret, salt = "dgk", personal = "sealdex-mdev")`.
    /// The secret is 1 to 64 bytes (BLAKE2b's key limit).
    pub fn derive_from_account_secret(account_secret: &[u8]) -> SyncResult<Self> {
        if account_secret.is_empty() || account_secret.len() > 64 {
            return Err(SyncError::KeyLength {
                what: "an account secret",
                expected: "1 to 64 bytes",
                found: account_secret.len(),
            });
        }
        let k = blake2b_kdf(account_secret, b"dgk", PERSONAL)?;
        Ok(GroupKey(*k))
    }

    /// The raw bytes, to store them (sealed or in a 0600 file).
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupKey(<redacted>)")
    }
}

/// The device group id: the X25519 public key of the path key. Public; the
/// relay knows a group by it and nothing else.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub [u8; 32]);

impl GroupId {
    /// The id as 64 lowercase hex digits, as in the relay's URL path.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(GroupId(out))
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({})", self.to_hex())
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A 256-bit symmetric sub-key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SubKey([u8; KEY_LEN]);

impl SubKey {
    /// The raw bytes (for tests against published vectors, and for sealing).
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Seals `plaintext` under this key with XChaCha20-Poly1305 and a random
    /// nonce: `nonce(24) ‖ ciphertext ‖ tag(16)`. `aad` binds the box to its
    /// purpose and context, so a box cannot be moved to another use.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> SyncResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        self.seal_with_nonce(&nonce, aad, plaintext)
    }

    pub(crate) fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> SyncResult<Vec<u8>> {
        let cipher =
            XChaCha20Poly1305::new_from_slice(&self.0).map_err(|_| SyncError::KeyLength {
                what: "an XChaCha20-Poly1305 key",
                expected: "32 bytes",
                found: self.0.len(),
            })?;
        let ct = cipher
            .encrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SyncError::EnvelopeTooLarge {
                len: plaintext.len(),
                max: u32::MAX as usize,
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a box made by [`SubKey::seal`] with the same `aad`. `None` when
    /// it was altered, truncated, or sealed under another key or context.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < BOX_OVERHEAD {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let cipher = XChaCha20Poly1305::new_from_slice(&self.0).ok()?;
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
            .ok()
            .map(Zeroizing::new)
    }
}

impl fmt::Debug for SubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubKey(<redacted>)")
    }
}

/// The sub-keys of one device group, derived from its [`GroupKey`].
///
/// ```
/// use sealdex::sync::keys::{GroupKey, GroupKeys};
/// let keys = GroupKeys::derive(&GroupKey::from_bytes([0u8; 32]))?;
/// assert_eq!(keys.group_id().to_hex().len(), 64);
/// // Debug shows the public group id, never a secret.
/// assert!(format!("{keys:?}").contains("<redacted>"));
/// # Ok::<(), sealdex::sync::SyncError>(())
/// ```
pub struct GroupKeys {
    path: StaticSecret,
    reflect: SubKey,
    device_info: SubKey,
    shared_device_data: SubKey,
    transaction_scope: SubKey,
    group_id: GroupId,
}

/// Associated-data labels: one per kind of box, so none can stand in for another.
const AAD_DEVICE_INFO: &[u8] = b"sealdex-mdev/v1/device-info";
const AAD_SCOPE: &[u8] = b"sealdex-mdev/v1/transaction-scope";
const AAD_CHALLENGE: &[u8] = b"sealdex-mdev/v1/challenge";

impl GroupKeys {
    /// Derives every sub-key and the DGID from the group key.
    pub fn derive(dgk: &GroupKey) -> SyncResult<Self> {
        Self::derive_with_personal(dgk, PERSONAL)
    }

    /// The same schedule with another personalisation; `3ma-mdev` reproduces
    /// Threema's published vectors (used by the tests).
    fn derive_with_personal(dgk: &GroupKey, personal: &[u8]) -> SyncResult<Self> {
        let sub = |salt: &[u8]| -> SyncResult<SubKey> {
            Ok(SubKey(*blake2b_kdf(&dgk.0, salt, personal)?))
        };
        let path_bytes = blake2b_kdf(&dgk.0, b"p", personal)?;
        let path = StaticSecret::from(*path_bytes);
        let group_id = GroupId(PublicKey::from(&path).to_bytes());
        Ok(GroupKeys {
            path,
            reflect: sub(b"r")?,
            device_info: sub(b"di")?,
            shared_device_data: sub(b"sdd")?,
            transaction_scope: sub(b"ts")?,
            group_id,
        })
    }

    /// The device group id (public).
    pub fn group_id(&self) -> GroupId {
        self.group_id
    }

    /// The reflect key, which seals every envelope (see [`super::envelope`]).
    pub fn reflect_key(&self) -> &SubKey {
        &self.reflect
    }

    /// The shared-device-data key.
    pub fn shared_device_data_key(&self) -> &SubKey {
        &self.shared_device_data
    }

    /// The path key's secret scalar bytes (for tests against vectors).
    pub fn path_key_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.path.to_bytes())
    }

    /// The device-info key's bytes (for tests against vectors).
    pub fn device_info_key(&self) -> &SubKey {
        &self.device_info
    }

    /// The transaction-scope key.
    pub fn transaction_scope_key(&self) -> &SubKey {
        &self.transaction_scope
    }

    /// Seals a device's info (a label such as "laptop") for the other
    /// devices; the relay stores it without being able to read it.
    pub fn seal_device_info(&self, device_id: u64, info: &[u8]) -> SyncResult<Vec<u8>> {
        self.device_info
            .seal(&aad(AAD_DEVICE_INFO, device_id), info)
    }

    /// Opens another device's info; `None` if it was altered or moved to
    /// another device id.
    pub fn open_device_info(&self, device_id: u64, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.device_info
            .open(&aad(AAD_DEVICE_INFO, device_id), sealed)
    }

    /// Seals a transaction scope (what the transaction is for).
    pub fn seal_scope(&self, scope: &[u8]) -> SyncResult<Vec<u8>> {
        self.transaction_scope.seal(AAD_SCOPE, scope)
    }

    /// Opens a transaction scope sealed by any device of the group.
    pub fn open_scope(&self, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.transaction_scope.open(AAD_SCOPE, sealed)
    }

    /// Answers the relay's challenge: the challenge sealed under a key
    /// derived from X25519(path secret, relay's ephemeral public key). Only a
    /// holder of the path key can make it; the relay checks it with its
    /// ephemeral secret and the DGID, learning nothing else.
    pub fn answer_challenge(
        &self,
        relay_ephemeral: &[u8; 32],
        challenge: &[u8; 32],
    ) -> SyncResult<Vec<u8>> {
        let shared = self.path.diffie_hellman(&PublicKey::from(*relay_ephemeral));
        if !shared.was_contributory() {
            return Err(SyncError::Protocol(
                "the relay's ephemeral key is a low-order point".into(),
            ));
        }
        let key = challenge_key(shared.as_bytes())?;
        key.seal(&challenge_aad(relay_ephemeral, &self.group_id), challenge)
    }
}

impl fmt::Debug for GroupKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupKeys")
            .field("group_id", &self.group_id)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

fn aad(label: &[u8], device_id: u64) -> Vec<u8> {
    let mut a = label.to_vec();
    a.extend_from_slice(&device_id.to_le_bytes());
    a
}

fn challenge_key(shared: &[u8; 32]) -> SyncResult<SubKey> {
    Ok(SubKey(*blake2b_kdf(shared, b"chal", PERSONAL)?))
}

fn challenge_aad(relay_ephemeral: &[u8; 32], group: &GroupId) -> Vec<u8> {
    let mut a = AAD_CHALLENGE.to_vec();
    a.extend_from_slice(relay_ephemeral);
    a.extend_from_slice(&group.0);
    a
}

/// The relay's half of one handshake: a random ephemeral X25519 secret and
/// a random 32-byte challenge. Zeroized on drop.
pub struct RelayChallenge {
    ephemeral: StaticSecret,
    challenge: [u8; 32],
}

impl RelayChallenge {
    /// Draws a fresh ephemeral key and challenge.
    pub fn random() -> SyncResult<Self> {
        let mut sk = Zeroizing::new([0u8; 32]);
        fill_random(sk.as_mut())?;
        let mut challenge = [0u8; 32];
        fill_random(&mut challenge)?;
        Ok(RelayChallenge {
            ephemeral: StaticSecret::from(*sk),
            challenge,
        })
    }

    /// The ephemeral public key, sent in the server hello.
    pub fn ephemeral_public(&self) -> [u8; 32] {
        PublicKey::from(&self.ephemeral).to_bytes()
    }

    /// The challenge, sent in the server hello.
    pub fn challenge(&self) -> [u8; 32] {
        self.challenge
    }

    /// Whether `answer` is this challenge sealed under X25519(path secret of
    /// `group`, our ephemeral key). Constant work whatever the input.
    pub fn verify(&self, group: &GroupId, answer: &[u8]) -> bool {
        let shared = self.ephemeral.diffie_hellman(&PublicKey::from(group.0));
        if !shared.was_contributory() {
            return false;
        }
        let Ok(key) = challenge_key(shared.as_bytes()) else {
            return false;
        };
        match key.open(&challenge_aad(&self.ephemeral_public(), group), answer) {
            Some(pt) => {
                use subtle_eq::ct_eq;
                ct_eq(&pt, &self.challenge)
            }
            None => false,
        }
    }
}

impl Drop for RelayChallenge {
    fn drop(&mut self) {
        self.challenge.zeroize();
    }
}

impl fmt::Debug for RelayChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayChallenge(<redacted>)")
    }
}

mod subtle_eq {
    /// Equality without an early exit (the AEAD already authenticated the
    /// plaintext; this only avoids a timing signal on the comparison).
    pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Threema's published multi-device vectors: an all-zero DGK with
    /// personal `3ma-mdev` gives these path and transaction-scope keys.
    #[test]
    fn threema_published_vectors() {
        let keys =
            GroupKeys::derive_with_personal(&GroupKey::from_bytes([0; 32]), b"3ma-mdev").unwrap();
        assert_eq!(
            keys.path_key_bytes().to_vec(),
            unhex("4b464e5d33debe0d3f9be535b9a1449f79caac615c852da734b47ef3a23e14ca")
        );
        assert_eq!(
            keys.transaction_scope_key().expose().to_vec(),
            unhex("7ab0a7c3239323e1b9f697eb59196d888747f027df356a305f58f55ebb8c23aa")
        );
    }

    #[test]
    fn sealdex_personal_differs_and_subkeys_are_distinct() {
        let dgk = GroupKey::from_bytes([0; 32]);
        let ours = GroupKeys::derive(&dgk).unwrap();
        let threema = GroupKeys::derive_with_personal(&dgk, b"3ma-mdev").unwrap();
        assert_ne!(*ours.path_key_bytes(), *threema.path_key_bytes());
        let all = [
            ours.path_key_bytes().to_vec(),
            ours.reflect_key().expose().to_vec(),
            ours.device_info_key().expose().to_vec(),
            ours.shared_device_data_key().expose().to_vec(),
            ours.transaction_scope_key().expose().to_vec(),
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }

    #[test]
    fn dgid_is_the_path_public_key() {
        let keys = GroupKeys::derive(&GroupKey::from_bytes([9; 32])).unwrap();
        let pk = PublicKey::from(&StaticSecret::from(*keys.path_key_bytes()));
        assert_eq!(keys.group_id().0, pk.to_bytes());
        let hex = keys.group_id().to_hex();
        assert_eq!(GroupId::from_hex(&hex), Some(keys.group_id()));
        assert_eq!(
            GroupId::from_hex(&hex.to_uppercase()),
            Some(keys.group_id())
        );
        assert_eq!(GroupId::from_hex(&hex[1..]), None);
        assert_eq!(GroupId::from_hex(&format!("{}zz", &hex[2..])), None);
    }

    #[test]
    fn account_secret_derivation_is_deterministic_and_bounded() {
        let a = GroupKey::derive_from_account_secret(b"account secret").unwrap();
        let b = GroupKey::derive_from_account_secret(b"account secret").unwrap();
        let c = GroupKey::derive_from_account_secret(b"account secreT").unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
        assert!(GroupKey::derive_from_account_secret(b"").is_err());
        assert!(GroupKey::derive_from_account_secret(&[1; 65]).is_err());
        assert!(GroupKey::derive_from_account_secret(&[1; 64]).is_ok());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let dgk = GroupKey::from_bytes([0xab; 32]);
        let keys = GroupKeys::derive(&dgk).unwrap();
        let dbg = format!("{dgk:?} {keys:?} {:?}", keys.reflect_key());
        assert!(!dbg.contains("ab, ab") && !dbg.contains("abab"));
        assert!(!dbg.contains(&hex(keys.reflect_key().expose())));
        assert!(!dbg.contains(&hex(&*keys.path_key_bytes())));
    }

    #[test]
    fn challenge_answer_verifies_only_for_the_holder() {
        let keys = GroupKeys::derive(&GroupKey::from_bytes([1; 32])).unwrap();
        let other = GroupKeys::derive(&GroupKey::from_bytes([2; 32])).unwrap();
        let chal = RelayChallenge::random().unwrap();
        let answer = keys
            .answer_challenge(&chal.ephemeral_public(), &chal.challenge())
            .unwrap();
        assert!(chal.verify(&keys.group_id(), &answer));
        // Another group's key, another group id, a flipped bit, another
        // challenge (a replayed answer): all refused.
        let wrong = other
            .answer_challenge(&chal.ephemeral_public(), &chal.challenge())
            .unwrap();
        assert!(!chal.verify(&keys.group_id(), &wrong));
        assert!(!chal.verify(&other.group_id(), &answer));
        let mut flipped = answer.clone();
        flipped[30] ^= 1;
        assert!(!chal.verify(&keys.group_id(), &flipped));
        let chal2 = RelayChallenge::random().unwrap();
        assert!(!chal2.verify(&keys.group_id(), &answer));
        assert!(!chal.verify(&keys.group_id(), &answer[..answer.len() - 1]));
    }

    #[test]
    fn boxes_are_bound_to_their_context() {
        let keys = GroupKeys::derive(&GroupKey::from_bytes([3; 32])).unwrap();
        let info = keys.seal_device_info(7, b"laptop").unwrap();
        assert_eq!(&**keys.open_device_info(7, &info).unwrap(), b"laptop");
        assert!(keys.open_device_info(8, &info).is_none());
        let scope = keys.seal_scope(b"bootstrap").unwrap();
        assert_eq!(&**keys.open_scope(&scope).unwrap(), b"bootstrap");
        assert!(keys.open_scope(&info).is_none());
    }
}
