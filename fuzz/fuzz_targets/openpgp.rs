//! Arbitrary bytes as OpenPGP-encrypted mail into the OpenPGP decryptor
//! (issue 13), which holds a real key (ed25519 + cv25519, made by GnuPG for
//! this target only, unprotected: `openpgp_key.asc`).
//!
//! The first byte chooses how the rest arrives: as a whole RFC 822 message
//! (PGP/MIME detection, inline blocks, plain mail), or as the encrypted
//! part of a PGP/MIME message (base64, so binary OpenPGP packets reach
//! rpgp's parser as they are). Decryption must never panic, and what
//! decrypts must stay within the size limit (a compression bomb is cut
//! off at it).
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sealdex::decrypt::openpgp::{OpenPgp, SecretKeys};
use sealdex::{Body, Decryptor, RawMessage};

const LIMIT: usize = 1 << 20;

static DECRYPTOR: LazyLock<OpenPgp> = LazyLock::new(|| {
    let mut keys = SecretKeys::new();
    keys.add(include_bytes!("openpgp_key.asc"), None)
        .expect("the fuzz key loads");
    let mut d = OpenPgp::new(keys);
    d.max_message_bytes = LIMIT;
    d
});

fuzz_target!(
    init: {
        // As in raw_message: mail-parser's `debug_assert!`s are caught by
        // sealdex and reported as malformed mail; let them unwind. Every
        // other panic (rpgp's included, although sealdex catches those
        // too) aborts and is reported.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !in_mail_parser {
                abort(info);
            }
        }));
        LazyLock::force(&DECRYPTOR);
    },
    |data: &[u8]| {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        let bytes = if mode & 1 == 0 {
            rest.to_vec()
        } else {
            let mut m = b"From: a@example.org\nSubject: ...\nMIME-Version: 1.0\n\
                Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\n\n\
                --b\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\
                --b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                .to_vec();
            let b64 = base64::engine::general_purpose::STANDARD.encode(rest);
            for line in b64.as_bytes().chunks(76) {
                m.extend_from_slice(line);
                m.push(b'\n');
            }
            m.extend_from_slice(b"--b--\n");
            m
        };
        let raw = RawMessage {
            id: "fuzz".into(),
            bytes,
            ..RawMessage::default()
        };
        if let Ok(d) = DECRYPTOR.decrypt_detailed(&raw) {
            let body = match &d.message.body {
                Body::Text(t) | Body::Html(t) => t.len(),
            };
            assert!(body <= 2 * LIMIT + raw.bytes.len(), "{body} bytes of body");
            // The trait's answer is the detailed one's message.
            assert_eq!(DECRYPTOR.decrypt(&raw).ok(), Some(d.message));
        }
    }
);
