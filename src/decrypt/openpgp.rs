//! OpenPGP-encrypted mail: decrypts PGP/MIME (RFC 3156) and inline PGP
//! messages with secret keys the app supplies, on rpgp (the `pgp` crate,
//! pure Rust: no GnuPG at run time), then hands the clear message to
//! [`crate::mime`] like any other.
//!
//! [`SecretKeys`] holds the keys: one or more transferable secret keys,
//! armored or binary (what `gpg --export-secret-keys` writes, with or
//! without `--armor`), RSA, Curve25519/Ed25519 or any other algorithm
//! rpgp implements. [`OpenPgp`] is the [`Decryptor`].
//!
//! # What is decrypted, and how
//!
//! - **PGP/MIME** (`multipart/encrypted; protocol="application/pgp-encrypted"`):
//!   the `application/octet-stream` part is decrypted into a MIME entity,
//!   which replaces the outer body. Its attachments are the message's.
//! - **Protected headers**: the header fields of the decrypted entity other
//!   than `Content-*` (`Subject`, `From`, `To`, `Cc`, `Date`, …, as
//!   Thunderbird, Proton and others send them, see
//!   draft-ietf-lamps-header-protection) replace the outer fields of the
//!   same name. The outer subject of such a message is a placeholder such as
//!   `...`; the inner one is what gets indexed. The inner fields win
//!   whenever they are present, not only when the outer one looks like a
//!   placeholder: the outer ones are unauthenticated and may have been
//!   changed in transit, the inner ones are what the sender wrote.
//! - **Inline PGP**: every `-----BEGIN PGP MESSAGE-----` block of the text
//!   body (a text part, or the whole body of a message without MIME) is
//!   decrypted and put in its place; the text around it is kept. A block
//!   must start a line: one quoted in a reply (`> -----BEGIN …`) stays text,
//!   as does a block in an HTML-only body.
//! - **Plain messages** (no encrypted part, including `multipart/signed`)
//!   pass through to [`crate::mime::parse_rfc822`] unchanged, so one
//!   decryptor serves a mailbox of mixed mail.
//!
//! A message may also be signed. A signature is not needed to decrypt it;
//! [`OpenPgp::decrypt_detailed`] reports its state ([`SignatureState`]),
//! verified only against the keys held (the user's own, for mail they sent
//! to themselves), since a sender's public key is not something sealdex has.
//!
//! # Failures
//!
//! Every failure is a [`DecryptError`], recorded per message by the
//! pipeline; none panics (rpgp is run under `catch_unwind` as a safety net,
//! as mail-parser is in [`crate::mime`]):
//!
//! - encrypted to no key held: [`DecryptError::CannotDecrypt`] (`cannot-decrypt`),
//!   naming the recipients' key ids and nothing of the content. Such a
//!   failure is retried as soon as the key set changes:
//!   [`Decryptor::key_set`] is a fingerprint of the keys held, which the
//!   pipeline records with the failure;
//! - corrupted or truncated ciphertext, or a failed integrity check
//!   (MDC, AEAD tag): [`DecryptError::Malformed`] (`malformed`). The reason
//!   is a fixed text, never rpgp's error message, which may quote input;
//! - a compression bomb: the decrypted (decompressed) data is read through a
//!   limit, the same as for the raw message ([`OpenPgp::max_message_bytes`]),
//!   and a message that decompresses past it fails as
//!   [`DecryptError::TooLarge`] with `size` the bytes read before stopping
//!   (a lower bound), having allocated no more than the limit.
//!
//! Legacy symmetrically encrypted data without integrity protection (SED,
//! packet 9, deprecated since 2007 and malleable) is refused as
//! `malformed`; GnuPG 2.3+'s OCB packets (sent to keys that advertise
//! them) are accepted.
//!
//! # Secrets
//!
//! Protected secret keys are unlocked once, when loaded ([`SecretKeys::add`]):
//! GnuPG protects them with an iterated S2K tuned to cost tens of
//! milliseconds, which paid per message would cost more than the
//! decryption itself. The unlocked key material lives only in memory, in
//! rpgp's types, which zeroize it on drop; the passphrase is taken as
//! [`Zeroizing`] bytes and dropped after use. Neither [`SecretKeys`] nor
//! [`OpenPgp`] shows more than fingerprints in `Debug`, and no error names
//! more than a fingerprint or a key id. Decrypted bytes are held in
//! [`Zeroizing`] buffers until they become the [`Message`], which the
//! pipeline cleans and seals like any other.
//!
//! # Cost
//!
//! One public-key operation per message dominates. `benches/openpgp.rs`
//! (200 SpamAssassin messages as PGP/MIME made by gpg 2.2.40; a 2-core
//! machine shared with other builds, load 10-14, so upper bounds):
//!
//! | per message, one thread | clear (parse only) | cv25519 | rsa3072 |
//! |-------------------------|-------------------:|--------:|--------:|
//! | `decrypt`               | 18 µs              | 0.28 ms | 8.1 ms  |
//! | pipeline, msg/s         | 657                | 539     | 89      |
//!
//! At 100k messages that is 28 s of CPU for cv25519 and about 13.5 minutes
//! for rsa3072. The pipeline decrypts inside its rayon stage (decrypt and
//! clean run with `into_par_iter` over each batch of up to 512 messages,
//! one thread per core, while the fetch and write stages run on threads of
//! their own), so the public-key work divides by the number of cores: about
//! 7 minutes on these 2 cores, under 2 on 8.
//!
//! ```no_run
//! use sealdex::decrypt::openpgp::{OpenPgp, SecretKeys};
//!
//! let mut keys = SecretKeys::new();
//! let armored = std::fs::read("alice.sec.asc")?;
//! keys.add(&armored, Some(b"alice's passphrase"))?;
//! let decryptor = OpenPgp::new(keys);
//! // pipeline::run(&index, source, &decryptor, …) as with PassThrough.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{BufReader, Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use mail_parser::{MessageParser, MimeHeaders};
use pgp::composed::{
    DecryptionOptions, Deserializable, Esk, Message as PgpMessage, SignedSecretKey, TheRing,
};
use pgp::types::{KeyDetails, Password, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{Body, DecryptError, Decryptor, Message, PassThrough};
use crate::source::RawMessage;

const BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const END: &[u8] = b"-----END PGP MESSAGE-----";

/// Why secret keys could not be loaded. Names at most a key's fingerprint,
/// never key material or a passphrase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not OpenPGP secret keys (a public key, another
    /// format, or damaged data).
    #[error(
        "not an OpenPGP secret key ({0}); export one with `gpg --export-secret-keys [--armor] ID`"
    )]
    Unreadable(&'static str),
    /// The key is protected by a passphrase and none was given.
    #[error("the secret key {fingerprint} is protected by a passphrase; give it")]
    Locked {
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// The passphrase given does not unlock the key.
    #[error("wrong passphrase for the secret key {fingerprint}")]
    WrongPassphrase {
        /// The key's fingerprint.
        fingerprint: String,
    },
}

/// A key's fingerprint in upper-case hex, as GnuPG prints it.
fn fingerprint_of(key: &impl KeyDetails) -> String {
    hex(key.fingerprint().as_bytes())
}

/// A key id (the low 64 bits of a v4 fingerprint) in upper-case hex.
fn key_id_of(key: &impl KeyDetails) -> String {
    hex(key.legacy_key_id().as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The secret keys an [`OpenPgp`] decrypts with, unlocked.
///
/// `Debug` shows only their fingerprints.
#[derive(Default, Clone)]
pub struct SecretKeys {
    keys: Vec<SignedSecretKey>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.fingerprints()).finish()
    }
}

impl SecretKeys {
    /// No keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the secret keys in `bytes`, armored or binary, one or more,
    /// unlocking the protected ones with `passphrase`. Returns how many keys
    /// were added. See [`SecretKeys::add_with`] to ask for a passphrase per
    /// key.
    ///
    /// # Errors
    ///
    /// [`KeyError::Unreadable`] when `bytes` holds no secret key;
    /// [`KeyError::Locked`] when a key is protected and `passphrase` is
    /// `None`; [`KeyError::WrongPassphrase`] when it does not unlock it.
    /// Nothing is added on error.
    pub fn add(&mut self, bytes: &[u8], passphrase: Option<&[u8]>) -> Result<usize, KeyError> {
        self.add_with(bytes, &mut |_| {
            passphrase.map(|p| Zeroizing::new(p.to_vec()))
        })
    }

    /// Adds the secret keys in `bytes` like [`SecretKeys::add`], asking
    /// `passphrase` for each protected key, given its fingerprint (it may
    /// return `None`: no passphrase).
    ///
    /// # Errors
    ///
    /// As [`SecretKeys::add`].
    pub fn add_with(
        &mut self,
        bytes: &[u8],
        passphrase: &mut dyn FnMut(&str) -> Option<Zeroizing<Vec<u8>>>,
    ) -> Result<usize, KeyError> {
        let mut parsed = parse_keys(bytes)?;
        for key in &mut parsed {
            unlock(key, passphrase)?;
        }
        let n = parsed.len();
        for key in parsed {
            let fp = fingerprint_of(&key.primary_key);
            // The same key given twice (say, in two files) is kept once.
            if !self
                .keys
                .iter()
                .any(|k| fingerprint_of(&k.primary_key) == fp)
            {
                tracing::debug!(fingerprint = %fp, "OpenPGP secret key loaded");
                self.keys.push(key);
            }
        }
        Ok(n)
    }

    /// The primary keys' fingerprints, in the order added.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| fingerprint_of(&k.primary_key))
            .collect()
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A fingerprint of the set of keys held, subkeys included: the first
    /// 64 bits of SHA-256 over their sorted fingerprints, in hex. Adding a
    /// key (or a subkey, after a renewal) changes it; the order of loading
    /// does not.
    pub fn set_fingerprint(&self) -> String {
        let mut fps: Vec<Vec<u8>> = self
            .keys
            .iter()
            .flat_map(|k| {
                std::iter::once(k.primary_key.fingerprint().as_bytes().to_vec()).chain(
                    k.secret_subkeys
                        .iter()
                        .map(|s| s.key.fingerprint().as_bytes().to_vec()),
                )
            })
            .collect();
        fps.sort();
        fps.dedup();
        let mut h = Sha256::new();
        for fp in &fps {
            h.update([fp.len() as u8]);
            h.update(fp);
        }
        hex(&h.finalize()[..8])
    }

    /// Whether a recipient of `esk` is one of the keys held (a wildcard
    /// recipient, as `gpg --throw-keyids` writes, matches every key).
    fn holds_recipient(&self, esk: &pgp::packet::PublicKeyEncryptedSessionKey) -> bool {
        self.keys.iter().any(|k| {
            esk.match_identity(&k.primary_key)
                || k.secret_subkeys.iter().any(|s| esk.match_identity(&s.key))
        })
    }
}

/// Parses every transferable secret key in `bytes`.
fn parse_keys(bytes: &[u8]) -> Result<Vec<SignedSecretKey>, KeyError> {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let (keys, _) = SignedSecretKey::from_reader_many(Cursor::new(bytes))
            .map_err(|_| KeyError::Unreadable("no OpenPGP data found"))?;
        keys.collect::<Result<Vec<_>, _>>()
            .map_err(|_| KeyError::Unreadable("damaged or not a secret key"))
    }))
    .map_err(|_| KeyError::Unreadable("the OpenPGP parser failed on it"))??;
    if parsed.is_empty() {
        return Err(KeyError::Unreadable("no secret key in it"));
    }
    Ok(parsed)
}

/// Removes the passphrase protection of a key and its subkeys, in memory.
///
/// A key whose primary secret is absent (`gpg --export-secret-subkeys`
/// writes a "GNU dummy" in its place) is kept when its subkeys unlock: the
/// subkeys are what decrypts.
fn unlock(
    key: &mut SignedSecretKey,
    passphrase: &mut dyn FnMut(&str) -> Option<Zeroizing<Vec<u8>>>,
) -> Result<(), KeyError> {
    let fingerprint = fingerprint_of(&key.primary_key);
    let locked = key.primary_key.secret_params().is_encrypted()
        || key
            .secret_subkeys
            .iter()
            .any(|s| s.key.secret_params().is_encrypted());
    if !locked {
        return Ok(());
    }
    let Some(pass) = passphrase(&fingerprint) else {
        return Err(KeyError::Locked { fingerprint });
    };
    let pw = Password::from(pass.as_slice());
    let mut unlocked = 0usize;
    let mut failed = 0usize;
    if key.primary_key.secret_params().is_encrypted() {
        match key.primary_key.remove_password(&pw) {
            Ok(()) => unlocked += 1,
            Err(_) => failed += 1,
        }
    }
    for sub in &mut key.secret_subkeys {
        if sub.key.secret_params().is_encrypted() {
            match sub.key.remove_password(&pw) {
                Ok(()) => unlocked += 1,
                Err(_) => failed += 1,
            }
        }
    }
    if unlocked == 0 && failed > 0 {
        return Err(KeyError::WrongPassphrase { fingerprint });
    }
    if failed > 0 {
        tracing::warn!(
            fingerprint = %fingerprint,
            failed,
            "some secret (sub)keys did not unlock with the passphrase (a stub exported by \
             --export-secret-subkeys, or another passphrase); the others are used"
        );
    }
    Ok(())
}

/// The state of an OpenPGP signature found inside an encrypted message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureState {
    /// Not signed (or plain mail).
    Unsigned,
    /// Signed by a key held, and the signature checks.
    Verified {
        /// The signing key's id.
        key_id: String,
    },
    /// Signed by a key held, and the signature does not check.
    Bad {
        /// The signing key's id.
        key_id: String,
    },
    /// Signed by keys not held: not checked (sealdex has no public keys).
    Unverified {
        /// The issuers' key ids, as the signatures name them.
        key_ids: Vec<String>,
    },
}

/// What [`OpenPgp::decrypt_detailed`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decrypted {
    /// The clear message.
    pub message: Message,
    /// Whether an OpenPGP part was found and opened (`false`: plain
    /// mail). An armored block that is only signed counts.
    pub encrypted: bool,
    /// The signature inside the encrypted data, if any (for a message of
    /// several inline blocks, the first block's).
    pub signature: SignatureState,
}

/// The OpenPGP [`Decryptor`]: decrypts PGP/MIME and inline PGP mail with
/// [`SecretKeys`] and passes plain mail through (see the module
/// documentation).
///
/// `Debug` shows only the keys' fingerprints.
#[derive(Clone, Debug)]
pub struct OpenPgp {
    keys: SecretKeys,
    key_set: String,
    /// Messages longer than this many bytes, raw or decrypted, fail with
    /// [`DecryptError::TooLarge`]: the same limit as [`PassThrough`]'s.
    pub max_message_bytes: usize,
}

impl OpenPgp {
    /// A decryptor with these keys and the default size limit
    /// ([`PassThrough::DEFAULT_MAX_MESSAGE_BYTES`]).
    pub fn new(keys: SecretKeys) -> Self {
        let key_set = keys.set_fingerprint();
        OpenPgp {
            keys,
            key_set,
            max_message_bytes: PassThrough::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// The keys it decrypts with.
    pub fn keys(&self) -> &SecretKeys {
        &self.keys
    }

    /// Decrypts and parses one message, and says what it found: whether it
    /// was encrypted and the state of its signature.
    ///
    /// # Errors
    ///
    /// As [`Decryptor::decrypt`]: see the module documentation.
    pub fn decrypt_detailed(&self, raw: &RawMessage) -> Result<Decrypted, DecryptError> {
        let limit = self.max_message_bytes;
        if raw.bytes.len() > limit {
            return Err(DecryptError::TooLarge {
                size: raw.bytes.len(),
                limit,
            });
        }
        if let Some(ciphertext) = pgp_mime_payload(&raw.bytes) {
            let clear = self.open(&ciphertext)?;
            let mut with_clear = RawMessage {
                bytes: merge_protected_headers(&raw.bytes, &clear.data),
                ..raw.clone()
            };
            let message = crate::mime::parse_rfc822(&with_clear, limit);
            with_clear.bytes.zeroize();
            return Ok(Decrypted {
                message: message?,
                encrypted: true,
                signature: clear.signature,
            });
        }
        let mut message = crate::mime::parse_rfc822(raw, limit)?;
        let Body::Text(text) = &message.body else {
            return Ok(Decrypted {
                message,
                encrypted: false,
                signature: SignatureState::Unsigned,
            });
        };
        if block_start(text.as_bytes()).is_none() {
            return Ok(Decrypted {
                message,
                encrypted: false,
                signature: SignatureState::Unsigned,
            });
        }
        let (text, signature) = self.open_inline(text)?;
        message.body = Body::Text(text);
        Ok(Decrypted {
            message,
            encrypted: true,
            signature,
        })
    }

    /// Replaces each armored block of `text` with its decryption.
    fn open_inline(&self, text: &str) -> Result<(String, SignatureState), DecryptError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_bytes();
        let mut signature = None;
        while let Some(start) = block_start(rest) {
            let Some(end) =
                memchr::memmem::find(&rest[start..], END).map(|e| start + e + END.len())
            else {
                return Err(DecryptError::Malformed(
                    "an inline OpenPGP block has no end line (truncated)".into(),
                ));
            };
            out.push_str(&String::from_utf8_lossy(&rest[..start]));
            let clear = self.open(&rest[start..end])?;
            out.push_str(&String::from_utf8_lossy(&clear.data));
            signature.get_or_insert(clear.signature);
            if out.len() > self.max_message_bytes {
                return Err(DecryptError::TooLarge {
                    size: out.len(),
                    limit: self.max_message_bytes,
                });
            }
            rest = &rest[end..];
        }
        out.push_str(&String::from_utf8_lossy(rest));
        Ok((out, signature.unwrap_or(SignatureState::Unsigned)))
    }

    /// Decrypts one OpenPGP message (armored or binary) into its literal
    /// data, bounded by the size limit.
    fn open(&self, ciphertext: &[u8]) -> Result<Clear, DecryptError> {
        catch_unwind(AssertUnwindSafe(|| self.open_unguarded(ciphertext))).unwrap_or_else(|_| {
            Err(DecryptError::Malformed(
                "the OpenPGP parser failed on this message".into(),
            ))
        })
    }

    fn open_unguarded(&self, ciphertext: &[u8]) -> Result<Clear, DecryptError> {
        let ciphertext = match memchr::memmem::find(ciphertext, BEGIN) {
            Some(start) => &ciphertext[start..],
            None => ciphertext,
        };
        let (msg, _) = PgpMessage::from_reader(BufReader::new(Cursor::new(ciphertext)))
            .map_err(|_| malformed("not an OpenPGP message, or a damaged one"))?;
        let mut msg = match msg {
            PgpMessage::Encrypted { ref esk, .. } => {
                self.check_recipients(esk)?;
                let who = recipients(esk);
                let ring = TheRing {
                    secret_keys: self.keys.keys.iter().collect(),
                    decrypt_options: DecryptionOptions::new().enable_gnupg_aead(),
                    ..TheRing::default()
                };
                match msg.decrypt_the_ring(ring, true) {
                    Ok((m, _)) => m,
                    Err(pgp::errors::Error::MissingKey) => {
                        return Err(DecryptError::CannotDecrypt(format!(
                            "no secret key held decrypts it ({who})"
                        )));
                    }
                    Err(_) => {
                        return Err(malformed(
                            "corrupted or truncated ciphertext (its session key or integrity \
                             check failed)",
                        ));
                    }
                }
            }
            // Signed or compressed, not encrypted: the literal data is read
            // all the same.
            other => other,
        };
        // GnuPG compresses inside the encryption (and outside a one-pass
        // signature); unwrap every compression layer, a bounded number.
        for _ in 0..8 {
            if msg.literal_data_header().is_some() || msg.is_encrypted() {
                break;
            }
            msg = msg
                .decompress()
                .map_err(|_| malformed("damaged compressed data"))?;
        }
        if msg.literal_data_header().is_none() {
            return Err(malformed("no literal data in the OpenPGP message"));
        }
        let limit = self.max_message_bytes;
        let mut data = Zeroizing::new(Vec::new());
        // One byte past the limit tells "exactly the limit" from "more".
        (&mut msg)
            .take(limit as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|_| {
                malformed("corrupted or truncated ciphertext (the integrity check failed)")
            })?;
        if data.len() > limit {
            return Err(DecryptError::TooLarge {
                size: data.len(),
                limit,
            });
        }
        let signature = self.signature_state(&msg);
        Ok(Clear { data, signature })
    }

    /// `cannot-decrypt` when no recipient of the message is a key held,
    /// before any public-key operation.
    fn check_recipients(&self, esk: &[Esk]) -> Result<(), DecryptError> {
        let pkesks: Vec<_> = esk
            .iter()
            .filter_map(|e| match e {
                Esk::PublicKeyEncryptedSessionKey(p) => Some(p),
                Esk::SymKeyEncryptedSessionKey(_) => None,
            })
            .collect();
        if pkesks.is_empty() {
            return Err(DecryptError::CannotDecrypt(
                "encrypted with a passphrase, not to a key".into(),
            ));
        }
        if pkesks.iter().any(|p| self.keys.holds_recipient(p)) {
            return Ok(());
        }
        Err(DecryptError::CannotDecrypt(format!(
            "{}; none is among the {} secret key(s) held",
            recipients(esk),
            self.keys.len()
        )))
    }

    /// The signature's state, after the literal data was read to its end.
    fn signature_state(&self, msg: &PgpMessage<'_>) -> SignatureState {
        let PgpMessage::Signed { reader, .. } = msg else {
            return SignatureState::Unsigned;
        };
        let mut unknown = Vec::new();
        for i in 0..reader.num_signatures() {
            let Some(sig) = reader.signature(i) else {
                continue;
            };
            let issuers: Vec<Vec<u8>> = sig
                .issuer_key_id()
                .iter()
                .map(|id| id.as_ref().to_vec())
                .collect();
            let held = self.keys.keys.iter().find_map(|k| {
                let primary: &dyn VerifyingKey = k.primary_key.public_key();
                std::iter::once((key_id_of(&k.primary_key), primary))
                    .chain(k.secret_subkeys.iter().map(|s| {
                        let v: &dyn VerifyingKey = s.key.public_key();
                        (key_id_of(&s.key), v)
                    }))
                    .find(|(id, _)| issuers.iter().any(|i| hex(i) == *id))
            });
            match held {
                Some((key_id, key)) => {
                    return match msg.verify_nested_explicit(i, key) {
                        Ok(_) => SignatureState::Verified { key_id },
                        Err(_) => SignatureState::Bad { key_id },
                    };
                }
                None => unknown.extend(issuers.iter().map(|i| hex(i))),
            }
        }
        SignatureState::Unverified { key_ids: unknown }
    }
}

impl Decryptor for OpenPgp {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        self.decrypt_detailed(raw).map(|d| d.message)
    }

    fn key_set(&self) -> Option<String> {
        Some(self.key_set.clone())
    }
}

/// Where the first armored block of `text` begins: a `-----BEGIN PGP
/// MESSAGE-----` at the start of a line. A block quoted in a reply (`> `
/// before each line) is not one: it is left as text, where it would
/// otherwise fail the whole message as malformed.
fn block_start(text: &[u8]) -> Option<usize> {
    memchr::memmem::find_iter(text, BEGIN).find(|&i| i == 0 || text[i - 1] == b'\n')
}

/// Decrypted literal data and the signature found around it.
struct Clear {
    data: Zeroizing<Vec<u8>>,
    signature: SignatureState,
}

fn malformed(what: &str) -> DecryptError {
    DecryptError::Malformed(what.to_owned())
}

/// The recipients of a message, for a `cannot-decrypt` reason: key ids
/// only.
fn recipients(esk: &[Esk]) -> String {
    let ids: Vec<String> = esk
        .iter()
        .filter_map(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(p) => Some(match (p.id(), p.fingerprint()) {
                (Ok(id), _) if id.is_wildcard() => "an anonymous recipient".to_owned(),
                (Ok(id), _) => hex(id.as_ref()),
                (_, Ok(Some(fp))) => hex(fp.as_bytes()),
                _ => "an anonymous recipient".to_owned(),
            }),
            Esk::SymKeyEncryptedSessionKey(_) => None,
        })
        .collect();
    format!("encrypted to key id(s) {}", ids.join(", "))
}

/// Only the MIME headers: that is all the PGP/MIME check reads.
static MIME_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .default_header_ignore()
});

/// Whether a header block (the bytes before the first blank line) may
/// declare `multipart/encrypted`: a cheap test that spares plain mail a
/// second MIME parse.
fn may_be_pgp_mime(bytes: &[u8]) -> bool {
    const TYPE: &[u8] = b"multipart/encrypted";
    let head_end = memchr::memmem::find(bytes, b"\n\n")
        .or_else(|| memchr::memmem::find(bytes, b"\r\n\r\n"))
        .unwrap_or(bytes.len());
    bytes[..head_end]
        .windows(TYPE.len())
        .any(|w| w.eq_ignore_ascii_case(TYPE))
}

/// The encrypted payload of a PGP/MIME message (RFC 3156: the
/// `application/octet-stream` part of a `multipart/encrypted` whose
/// protocol is `application/pgp-encrypted`), or `None` when the message is
/// not one.
fn pgp_mime_payload(bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if !may_be_pgp_mime(bytes) {
        return None;
    }
    catch_unwind(AssertUnwindSafe(|| {
        let parsed = MIME_PARSER.parse(bytes)?;
        let root = parsed.parts.first()?;
        let ct = root.content_type()?;
        let is_encrypted = ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("encrypted"));
        let protocol_ok = ct
            .attribute("protocol")
            .is_none_or(|p| p.eq_ignore_ascii_case("application/pgp-encrypted"));
        if !is_encrypted || !protocol_ok {
            return None;
        }
        let children: Vec<_> = root
            .sub_parts()?
            .iter()
            .filter_map(|&id| parsed.parts.get(id as usize))
            .collect();
        let payload = children
            .iter()
            .find(|p| {
                p.content_type().is_some_and(|c| {
                    c.ctype().eq_ignore_ascii_case("application")
                        && c.subtype()
                            .is_some_and(|s| s.eq_ignore_ascii_case("octet-stream"))
                })
            })
            .or_else(|| children.get(1))?;
        Some(Zeroizing::new(payload.contents().to_vec()))
    }))
    .ok()
    .flatten()
}

/// The clear message of a PGP/MIME one: the outer header fields, less the
/// outer MIME fields and less every field the decrypted entity carries
/// itself (its protected headers), then the decrypted entity.
fn merge_protected_headers(outer: &[u8], inner: &[u8]) -> Vec<u8> {
    let inner_names = header_fields(inner)
        .into_iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect::<Vec<_>>();
    let mut out = Vec::with_capacity(outer.len().min(1 << 16) + inner.len());
    for (name, field) in header_fields(outer) {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("content-") || lower == "mime-version" || inner_names.contains(&lower)
        {
            continue;
        }
        out.extend_from_slice(field);
        if !field.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(inner);
    out
}

/// The header fields of a message or entity, as (name, the whole field with
/// its folded lines and line end), located by mail-parser; an mbox `From `
/// line first is not a field and is left out.
fn header_fields(bytes: &[u8]) -> Vec<(String, &[u8])> {
    catch_unwind(AssertUnwindSafe(|| {
        let Some(parsed) = MIME_PARSER.parse_headers(bytes) else {
            return Vec::new();
        };
        let Some(root) = parsed.parts.first() else {
            return Vec::new();
        };
        root.headers
            .iter()
            .filter_map(|h| {
                let field = bytes.get(h.offset_field as usize..h.offset_end as usize)?;
                Some((h.name().to_owned(), field))
            })
            .collect()
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_keep_folded_lines_and_line_ends() {
        let m = b"Subject: one\r\n two\r\nFrom: a@b\r\nX-Empty:\r\n\r\nbody";
        let fields = header_fields(m);
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Subject", "From", "X-Empty"]);
        assert_eq!(fields[0].1, b"Subject: one\r\n two\r\n");
        assert_eq!(fields[1].1, b"From: a@b\r\n");
    }

    #[test]
    fn inner_fields_replace_outer_ones_and_mime_fields_go() {
        let outer = b"From: a@example.org\nSubject: ...\nTo: b@example.org\nMIME-Version: 1.0\n\
                      Content-Type: multipart/encrypted; boundary=x\n\n--x--\n";
        let inner = b"Content-Type: text/plain; protected-headers=v1\r\nSubject: Real subject\r\n\r\nHello\r\n";
        let merged = merge_protected_headers(outer, inner);
        let raw = RawMessage {
            id: "1".into(),
            bytes: merged,
            ..RawMessage::default()
        };
        let m = crate::mime::parse_rfc822(&raw, 1 << 20).unwrap();
        assert_eq!(m.subject, "Real subject");
        assert_eq!(m.from, "a@example.org");
        assert_eq!(m.to, "b@example.org");
        assert_eq!(m.body, Body::Text("Hello\n".into()));
    }

    #[test]
    fn pgp_mime_payload_is_the_octet_stream_part() {
        let m = b"Subject: x\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\n\n\
                  --b\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\
                  --b\nContent-Type: application/octet-stream; name=encrypted.asc\n\n\
                  -----BEGIN PGP MESSAGE-----\nabc\n-----END PGP MESSAGE-----\n\
                  --b--\n";
        let p = pgp_mime_payload(m).unwrap();
        assert!(p.starts_with(BEGIN));
        assert!(pgp_mime_payload(b"Subject: x\n\nmultipart/encrypted in the body\n").is_none());
    }

    #[test]
    fn garbage_keys_are_refused_without_panic() {
        let mut keys = SecretKeys::new();
        for bytes in [
            &b""[..],
            b"not a key",
            b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nAAAA\n-----END PGP PRIVATE KEY BLOCK-----\n",
            &[0x95, 0x01, 0x02],
        ] {
            assert!(matches!(
                keys.add(bytes, None),
                Err(KeyError::Unreadable(_))
            ));
        }
        assert!(keys.is_empty());
    }

    #[test]
    fn a_quoted_block_stays_text() {
        let d = OpenPgp::new(SecretKeys::new());
        let body = "You wrote:\n> -----BEGIN PGP MESSAGE-----\n> hQEMA\n> -----END PGP MESSAGE-----\nOK.\n";
        let raw = RawMessage {
            id: "1".into(),
            bytes: format!("Subject: Re: x\n\n{body}").into_bytes(),
            ..RawMessage::default()
        };
        let got = d.decrypt_detailed(&raw).unwrap();
        assert!(!got.encrypted);
        assert_eq!(got.message.body, Body::Text(body.into()));
    }

    #[test]
    fn garbage_messages_fail_cleanly() {
        let d = OpenPgp::new(SecretKeys::new());
        for body in [
            "-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n",
            "-----BEGIN PGP MESSAGE-----\n\nno end line",
            "-----BEGIN PGP MESSAGE-----\n\n!!!!\n-----END PGP MESSAGE-----\n",
        ] {
            let raw = RawMessage {
                id: "1".into(),
                bytes: format!("Subject: x\n\n{body}").into_bytes(),
                ..RawMessage::default()
            };
            let e = d.decrypt(&raw).unwrap_err();
            assert_eq!(e.reason(), "malformed", "{body:?}: {e}");
        }
    }
}
