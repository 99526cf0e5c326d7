//! The OpenPGP decryptor (issue 13) on mail made by real GnuPG: keys made
//! in a temporary GNUPGHOME (ed25519 + cv25519, and rsa3072), messages
//! encrypted by `gpg` and wrapped as PGP/MIME or inline PGP, some signed,
//! some with protected headers, some to a key not held, some damaged.
//!
//! The small tests here make a handful of messages at test time; the
//! corpus test encrypts a few hundred SpamAssassin messages and holds a
//! battery of queries over them to the same messages indexed in clear.
//! `gpg` must be on PATH (see `openpgp_util`).
#![cfg(feature = "openpgp")]

mod common;
mod openpgp_util;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use sealdex::backends::Tree;
use sealdex::decrypt::PassThrough;
use sealdex::decrypt::openpgp::{KeyError, OpenPgp, SecretKeys, SignatureState};
use sealdex::pipeline::{Control, IndexOptions};
use sealdex::{
    Body, Credential, DecryptError, Decryptor, Flags, Index, IndexConfig, KdfParams, RawMessage,
    SearchMode, SearchOptions, SecretKey, Source,
};

use openpgp_util::{Compress, Gpg, Key};

/// Three keys made once per test binary by GnuPG. The home they were made
/// in is gone when the fixture is built (a static is never dropped, and a
/// home left behind would leave its gpg-agent running): each test makes
/// messages in a home of its own, [`Fixture::gpg`], dropped at its end.
struct Fixture {
    alice: Key,
    bob: Key,
    carol: Key,
    /// Alice's secret key, armored; Bob's, binary; Carol's, armored.
    alice_sec: Vec<u8>,
    bob_sec: Vec<u8>,
    carol_sec: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let gpg = Gpg::new();
        let alice = gpg.gen_key("Alice", "ed25519", "cv25519", "alice-pass");
        let bob = gpg.gen_key("Bob", "rsa3072", "rsa3072", "bob-pass");
        let carol = gpg.gen_key("Carol", "ed25519", "cv25519", "carol-pass");
        let alice_sec = gpg.export_secret(&alice, true);
        let bob_sec = gpg.export_secret(&bob, false);
        let carol_sec = gpg.export_secret(&carol, true);
        assert!(alice_sec.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----"));
        assert!(!bob_sec.starts_with(b"-----"));
        Fixture {
            alice,
            bob,
            carol,
            alice_sec,
            bob_sec,
            carol_sec,
        }
    })
}

impl Fixture {
    /// A GnuPG home of the test's own holding the three keys.
    fn gpg(&self) -> Gpg {
        let gpg = Gpg::new();
        gpg.import_secret(&self.alice, &self.alice_sec);
        gpg.import_secret(&self.bob, &self.bob_sec);
        gpg.import_secret(&self.carol, &self.carol_sec);
        gpg
    }
}

/// Alice's and Bob's keys, unlocked.
fn keys(f: &Fixture) -> SecretKeys {
    let mut keys = SecretKeys::new();
    keys.add(&f.alice_sec, Some(b"alice-pass")).unwrap();
    keys.add(&f.bob_sec, Some(b"bob-pass")).unwrap();
    keys
}

fn raw(id: &str, bytes: Vec<u8>) -> RawMessage {
    RawMessage {
        id: id.into(),
        bytes,
        folder: Some("INBOX".into()),
        ..RawMessage::default()
    }
}

const REPORT: &[u8] = b"From: Alice <alice@example.org>\n\
To: Bob <bob@example.org>\n\
Subject: Quarterly numbers\n\
Date: Tue, 03 Sep 2024 10:00:00 +0000\n\
Message-ID: <q3@example.org>\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"mix\"\n\
\n\
--mix\n\
Content-Type: text/plain; charset=utf-8\n\
\n\
The turnover of the zanzibar branch rose by eleven percent.\n\
--mix\n\
Content-Type: application/pdf; name=\"q3-report.pdf\"\n\
Content-Disposition: attachment; filename=\"q3-report.pdf\"\n\
Content-Transfer-Encoding: base64\n\
\n\
JVBERi0xLjQK\n\
--mix--\n";

const NOTE: &[u8] = b"From: Bob <bob@example.org>\n\
To: Alice <alice@example.org>\n\
Subject: Lunch\n\
Date: Wed, 04 Sep 2024 09:00:00 +0000\n\
\n\
Shall we meet at the quokka cafe at noon?\n";

#[test]
fn keys_load_armored_and_binary_and_refuse_wrong_passphrases() {
    let f = fixture();
    let gpg = f.gpg();
    let mut keys = SecretKeys::new();
    assert!(matches!(
        keys.add(&f.alice_sec, None),
        Err(KeyError::Locked { ref fingerprint }) if *fingerprint == f.alice.fpr
    ));
    let wrong = keys.add(&f.bob_sec, Some(b"not-bobs")).unwrap_err();
    assert!(
        matches!(wrong, KeyError::WrongPassphrase { ref fingerprint } if *fingerprint == f.bob.fpr)
    );
    // The error names the key, never the passphrase tried.
    assert!(!wrong.to_string().contains("not-bobs"), "{wrong}");
    assert!(keys.is_empty(), "nothing is added on error");
    let keys = self::keys(f);
    assert_eq!(
        keys.fingerprints(),
        [f.alice.fpr.clone(), f.bob.fpr.clone()]
    );
    // Debug shows fingerprints and nothing else.
    let debug = format!("{keys:?} {:?}", OpenPgp::new(keys.clone()));
    assert!(debug.contains(&f.alice.fpr) && debug.contains(&f.bob.fpr));
    assert!(
        debug.len() < 400,
        "Debug shows more than fingerprints: {debug}"
    );
    assert!(!debug.contains("alice-pass") && !debug.contains("bob-pass"));
    // A public key is not a secret key.
    let public = gpg.run(&["--armor", "--export", &f.alice.fpr], b"");
    assert!(matches!(
        SecretKeys::new().add(&public, None),
        Err(KeyError::Unreadable(_))
    ));
    // The key set's fingerprint follows the set, not the order of loading.
    let mut other_order = SecretKeys::new();
    other_order.add(&f.bob_sec, Some(b"bob-pass")).unwrap();
    other_order.add(&f.alice_sec, Some(b"alice-pass")).unwrap();
    assert_eq!(other_order.set_fingerprint(), keys.set_fingerprint());
    other_order.add(&f.carol_sec, Some(b"carol-pass")).unwrap();
    assert_ne!(other_order.set_fingerprint(), keys.set_fingerprint());
}

#[test]
fn pgp_mime_with_attachment_to_each_key_type() {
    let f = fixture();
    let gpg = f.gpg();
    let d = OpenPgp::new(keys(f));
    let clear = PassThrough::default()
        .decrypt(&raw("m", REPORT.to_vec()))
        .unwrap();
    for (to, compress) in [
        (&f.alice, Compress::Default),
        (&f.bob, Compress::Bzip2),
        (&f.alice, Compress::None),
    ] {
        let enc = openpgp_util::pgp_mime(REPORT, false, |e| {
            gpg.encrypt(e, &[to], None, compress, false)
        });
        assert!(!enc.windows(8).any(|w| w == b"zanzibar"));
        let got = d.decrypt_detailed(&raw("m", enc)).unwrap();
        assert!(got.encrypted);
        assert_eq!(got.signature, SignatureState::Unsigned);
        let m = got.message;
        assert_eq!(m, clear, "to {} ({compress:?})", to.email);
        assert!(matches!(m.body, Body::Text(ref t) if t.contains("zanzibar branch")));
        assert_eq!(m.attachments, ["q3-report.pdf"]);
        assert!(m.flags.contains(Flags::HAS_ATTACHMENT));
    }
}

#[test]
fn protected_headers_replace_the_placeholders() {
    let f = fixture();
    let gpg = f.gpg();
    let d = OpenPgp::new(keys(f));
    let enc = openpgp_util::pgp_mime(REPORT, true, |e| {
        gpg.encrypt(e, &[&f.alice], None, Compress::Default, false)
    });
    // What the server sees: a placeholder subject, and a From that a
    // relay could have rewritten.
    let enc = String::from_utf8(enc).unwrap().replacen(
        "From: Alice <alice@example.org>",
        "From: someone@relay.example",
        1,
    );
    assert!(enc.contains("Subject: ...\n") && !enc.contains("Quarterly"));
    let m = d.decrypt(&raw("m", enc.into_bytes())).unwrap();
    assert_eq!(m.subject, "Quarterly numbers");
    assert_eq!(m.from, "Alice <alice@example.org>");
    assert_eq!(m.to, "Bob <bob@example.org>");
    assert_eq!(m.message_id.as_deref(), Some("q3@example.org"));
    assert_eq!(m.date, Some(1_725_357_600));
}

#[test]
fn signatures_are_reported_and_not_required() {
    let f = fixture();
    let gpg = f.gpg();
    let d = OpenPgp::new(keys(f));
    // Signed by a key held: verified.
    let enc = openpgp_util::pgp_mime(NOTE, false, |e| {
        gpg.encrypt(e, &[&f.alice], Some(&f.bob), Compress::Default, false)
    });
    let got = d.decrypt_detailed(&raw("s1", enc)).unwrap();
    assert_eq!(
        got.signature,
        SignatureState::Verified {
            key_id: f.bob.key_id().to_owned()
        }
    );
    assert_eq!(got.message.subject, "Lunch");
    // Signed by a key not held: decrypted all the same, signer named.
    let enc = openpgp_util::inline(NOTE, |b| {
        gpg.encrypt(b, &[&f.bob], Some(&f.carol), Compress::Default, false)
    });
    let got = d.decrypt_detailed(&raw("s2", enc)).unwrap();
    assert_eq!(
        got.signature,
        SignatureState::Unverified {
            key_ids: vec![f.carol.key_id().to_owned()]
        }
    );
    assert!(matches!(got.message.body, Body::Text(ref t) if t.contains("quokka cafe")));
}

#[test]
fn inline_pgp_whole_body_and_in_a_text_part() {
    let f = fixture();
    let gpg = f.gpg();
    let d = OpenPgp::new(keys(f));
    let enc = openpgp_util::inline(NOTE, |b| {
        gpg.encrypt(b, &[&f.bob], None, Compress::Default, false)
    });
    let m = d.decrypt(&raw("i1", enc)).unwrap();
    let clear = PassThrough::default()
        .decrypt(&raw("i1", NOTE.to_vec()))
        .unwrap();
    assert_eq!(m.subject, clear.subject);
    let (Body::Text(got), Body::Text(want)) = (&m.body, &clear.body) else {
        panic!("text bodies");
    };
    assert_eq!(got.trim_end(), want.trim_end());

    // A text part with an armored block between clear lines, and an
    // attachment beside it (encrypted on its own, as clients do).
    let block = gpg.encrypt(
        b"The vault code is wombat-42.\n",
        &[&f.alice],
        None,
        Compress::Default,
        false,
    );
    let mut mixed = b"From: bob@example.org\nSubject: Codes\nMIME-Version: 1.0\n\
        Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
        Hello Alice,\n\n"
        .to_vec();
    mixed.extend_from_slice(&block);
    mixed.extend_from_slice(
        b"\nBob\n--b\nContent-Type: application/octet-stream; name=plan.txt.pgp\n\
        Content-Disposition: attachment; filename=plan.txt.pgp\n\
        Content-Transfer-Encoding: base64\n\nhQEMA0pFakUK\n--b--\n",
    );
    let m = d.decrypt(&raw("i2", mixed)).unwrap();
    let Body::Text(text) = &m.body else {
        panic!("a text body")
    };
    assert!(text.starts_with("Hello Alice,"), "{text:?}");
    assert!(text.contains("The vault code is wombat-42."), "{text:?}");
    assert!(text.trim_end().ends_with("Bob"), "{text:?}");
    assert!(!text.contains("BEGIN PGP"), "{text:?}");
    assert_eq!(m.attachments, ["plan.txt.pgp"]);
}

#[test]
fn failures_have_the_right_reasons() {
    let f = fixture();
    let gpg = f.gpg();
    let d = OpenPgp::new(keys(f));

    // To Carol only: cannot-decrypt, naming her encryption subkey, and no
    // content.
    let enc = openpgp_util::pgp_mime(NOTE, false, |e| {
        gpg.encrypt(e, &[&f.carol], None, Compress::Default, false)
    });
    match d.decrypt(&raw("c", enc)) {
        Err(DecryptError::CannotDecrypt(why)) => {
            assert!(why.contains(f.carol.sub_key_id()), "{why}");
            assert!(!why.contains("quokka"), "{why}");
        }
        other => panic!("expected cannot-decrypt, got {other:?}"),
    }

    // Truncated armor: malformed.
    let enc = gpg.encrypt(NOTE, &[&f.alice], None, Compress::Default, false);
    let cut = openpgp_util::pgp_mime(NOTE, false, |_| enc[..enc.len() / 2].to_vec());
    assert_eq!(d.decrypt(&raw("t", cut)).unwrap_err().reason(), "malformed");

    // One bit flipped in the encrypted data (binary, so no armor checksum
    // stands in front of the integrity check): malformed.
    let mut bin = gpg.encrypt(NOTE, &[&f.bob], None, Compress::Default, true);
    let at = bin.len() - 30;
    bin[at] ^= 0x01;
    let b64 = base64_lines(&bin);
    let flipped = openpgp_util::pgp_mime(NOTE, false, |_| b64.into_bytes());
    let flipped = String::from_utf8(flipped).unwrap().replacen(
        "Content-Disposition: inline; filename=\"encrypted.asc\"\n",
        "Content-Disposition: inline; filename=\"encrypted.asc\"\nContent-Transfer-Encoding: base64\n",
        1,
    );
    let e = d.decrypt(&raw("f", flipped.into_bytes())).unwrap_err();
    assert_eq!(e.reason(), "malformed", "{e}");

    // The same binary ciphertext unflipped decrypts: the failure above is
    // the flip's.
    bin[at] ^= 0x01;
    let b64 = base64_lines(&bin);
    let fine = openpgp_util::pgp_mime(NOTE, false, |_| b64.into_bytes());
    let fine = String::from_utf8(fine).unwrap().replacen(
        "Content-Disposition: inline; filename=\"encrypted.asc\"\n",
        "Content-Disposition: inline; filename=\"encrypted.asc\"\nContent-Transfer-Encoding: base64\n",
        1,
    );
    assert_eq!(
        d.decrypt(&raw("f", fine.into_bytes())).unwrap().subject,
        "Lunch"
    );

    // A compression bomb: 8 MiB of zeros compress to a few KiB, and the
    // decryptor stops at its 1 MiB limit.
    let mut bomb_body = b"Content-Type: text/plain\n\n".to_vec();
    bomb_body.resize(8 << 20, b'0');
    let bomb = gpg.encrypt(&bomb_body, &[&f.alice], None, Compress::Default, false);
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    let bomb = openpgp_util::pgp_mime(b"Subject: zeros\n\n", false, |_| bomb);
    let mut small = OpenPgp::new(keys(f));
    small.max_message_bytes = 1 << 20;
    match small.decrypt(&raw("z", bomb)) {
        Err(DecryptError::TooLarge { limit, size }) => {
            assert_eq!(limit, 1 << 20);
            assert!(size > limit);
        }
        other => panic!("expected too-large, got {other:?}"),
    }

    // Plain mail passes through as PassThrough parses it.
    let plain = raw("p", REPORT.to_vec());
    assert_eq!(
        d.decrypt_detailed(&plain).unwrap().message,
        PassThrough::default().decrypt(&plain).unwrap()
    );
    assert!(!d.decrypt_detailed(&plain).unwrap().encrypted);
}

/// Base64 in 76-column lines, as a MIME part carries it.
fn base64_lines(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push('\n');
        }
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= n {
                out.push(A[((v >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.push('\n');
    out
}

fn cred() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([0x51; 32]))
}

fn config() -> IndexConfig {
    IndexConfig {
        kdf: KdfParams::insecure_fast(),
        ..IndexConfig::default()
    }
}

/// Through the pipeline: failures are recorded per message with their
/// reasons, and a `cannot-decrypt` one is retried as soon as the key set
/// changes, ahead of its backoff.
#[test]
fn pipeline_records_failures_and_retries_when_the_keys_change() {
    let f = fixture();
    let gpg = f.gpg();
    let to_carol = openpgp_util::pgp_mime(NOTE, false, |e| {
        gpg.encrypt(e, &[&f.carol], None, Compress::Default, false)
    });
    let enc = gpg.encrypt(NOTE, &[&f.alice], None, Compress::Default, false);
    let cut = openpgp_util::pgp_mime(NOTE, false, |_| enc[..enc.len() - 200].to_vec());
    let ok = openpgp_util::pgp_mime(REPORT, true, |e| {
        gpg.encrypt(e, &[&f.bob], None, Compress::Default, false)
    });
    let mut source = common::Mem {
        name: "mem".into(),
        messages: vec![raw("ok", ok), raw("to-carol", to_carol), raw("cut", cut)],
    };
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(&tmp.path().join("idx"), &cred(), config()).unwrap();
    let run = |index: &Index, source: &mut common::Mem, d: &OpenPgp| {
        index
            .index_with(
                source,
                d,
                &IndexOptions::default(),
                &Control::new(),
                &mut |_| {},
            )
            .unwrap()
    };
    let two = OpenPgp::new(keys(f));
    let report = run(&index, &mut source, &two);
    assert_eq!((report.stored, report.failed), (1, 2));
    let reasons: BTreeMap<String, (String, String)> = index
        .failures()
        .unwrap()
        .into_iter()
        .map(|f| (f.message.id.clone(), (f.reason.clone(), f.detail.clone())))
        .collect();
    assert_eq!(reasons["to-carol"].0, "cannot-decrypt");
    assert!(reasons["to-carol"].1.contains(f.carol.sub_key_id()));
    assert_eq!(reasons["cut"].0, "malformed");
    let hits = index
        .search("quarterly", &SearchOptions::default())
        .unwrap();
    assert_eq!(hits.total, 1, "the protected subject is indexed");

    // Same keys again: nothing is due yet (the default backoff is a minute).
    let report = run(&index, &mut source, &two);
    assert_eq!((report.stored, report.failed), (0, 0));

    // Carol's key added: her message is retried at once and stored; the
    // damaged one is not retried (its backoff has not passed).
    let mut three = keys(f);
    three.add(&f.carol_sec, Some(b"carol-pass")).unwrap();
    let report = run(&index, &mut source, &OpenPgp::new(three));
    assert_eq!((report.stored, report.failed), (1, 0));
    let failures = index.failures().unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].message.id, "cut");
    let hits = index
        .search(
            "quokka",
            &SearchOptions {
                mode: SearchMode::Forward,
                ..SearchOptions::default()
            },
        )
        .unwrap();
    assert_eq!(hits.total, 1);
}

/// The CLI: `sealdex index --openpgp-key FILE …` with the passphrase from
/// `SEALDEX_OPENPGP_PASSPHRASE`; a wrong one fails before anything is
/// created.
#[test]
fn cli_indexes_encrypted_mail_with_key_files() {
    let f = fixture();
    let gpg = f.gpg();
    let tmp = tempfile::tempdir().unwrap();
    let mail = tmp.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(mail.join(name), bytes).unwrap();
    write(
        "1.eml",
        openpgp_util::pgp_mime(REPORT, true, |e| {
            gpg.encrypt(e, &[&f.alice], None, Compress::Default, false)
        }),
    );
    write(
        "2.eml",
        openpgp_util::pgp_mime(NOTE, false, |e| {
            gpg.encrypt(e, &[&f.bob], None, Compress::Default, false)
        }),
    );
    write("3.eml", NOTE.to_vec());
    let alice_key = tmp.path().join("alice.asc");
    std::fs::write(&alice_key, &f.alice_sec).unwrap();
    let dir = tmp.path().join("idx");

    let wrong = common::run(
        common::sealdex(&dir)
            .args(["index", "--openpgp-key"])
            .arg(&alice_key)
            .arg(&mail)
            .env("SEALDEX_OPENPGP_PASSPHRASE", "wrong")
            .stdin(std::process::Stdio::null()),
    );
    assert_eq!(wrong.status.code(), Some(2));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains(&f.alice.fpr) && err.contains("does not unlock"),
        "{err}"
    );
    assert!(!dir.join("keyring").exists(), "nothing created");

    let out = common::run(
        common::sealdex(&dir)
            .args(["index", "--openpgp-key"])
            .arg(&alice_key)
            .arg(&mail)
            .env("SEALDEX_OPENPGP_PASSPHRASE", "alice-pass")
            .stdin(std::process::Stdio::null()),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stored 2") && err.contains("failed 1"),
        "{err}"
    );
    let found = common::ok(common::sealdex(&dir).args(["search", "zanzibar"]));
    assert!(String::from_utf8_lossy(&found.stdout).contains("Quarterly numbers"));
    let failures = common::ok(common::sealdex(&dir).args(["failures"]));
    let text = String::from_utf8_lossy(&failures.stdout);
    assert!(
        text.contains("cannot-decrypt") && text.contains(f.bob.sub_key_id()),
        "{text}"
    );
}

/// Few hundred SpamAssassin messages, encrypted by gpg in every way this
/// decryptor meets, indexed next to the same messages in clear: every one
/// decrypts or fails with the right reason, and a battery of queries
/// returns the same hits from both.
#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn spamassassin_encrypted_matches_clear() {
    let Some(corpus) = common::corpora("spamassassin") else {
        return;
    };
    let f = fixture();
    let gpg = f.gpg();
    let tmp = tempfile::tempdir().unwrap();
    let clear_dir = tmp.path().join("clear");
    let enc_dir = tmp.path().join("enc");
    let mut files = common::all_files(&corpus);
    files.sort();
    let picked: Vec<_> = files.iter().step_by(20).take(300).collect();
    let started = std::time::Instant::now();
    let (mut to_carol, mut broken) = (Vec::new(), Vec::new());
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, path) in picked.iter().enumerate() {
        let rel = path.strip_prefix(&corpus).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let signer = (i % 5 == 0).then_some(if i % 2 == 0 { &f.alice } else { &f.carol });
        let compress = [Compress::Default, Compress::Bzip2, Compress::None][i % 3];
        let to: Vec<&Key> = match i % 4 {
            0 => vec![&f.alice],
            1 => vec![&f.bob],
            2 => vec![&f.alice, &f.bob],
            _ if i % 8 == 3 => vec![&f.carol],
            _ => vec![&f.bob, &f.carol],
        };
        let encrypt = |b: &[u8]| gpg.encrypt(b, &to, signer, compress, false);
        let (kind, enc) = if i % 3 == 1 && openpgp_util::inline_ok(&bytes) {
            ("inline", openpgp_util::inline(&bytes, encrypt))
        } else if i % 2 == 0 {
            (
                "pgp/mime+protected",
                openpgp_util::pgp_mime(&bytes, true, encrypt),
            )
        } else {
            ("pgp/mime", openpgp_util::pgp_mime(&bytes, false, encrypt))
        };
        *kinds.entry(kind).or_default() += 1;
        let id = rel.to_string_lossy().into_owned();
        if to.len() == 1 && to[0].fpr == f.carol.fpr {
            to_carol.push(id.clone());
        }
        write_file(&enc_dir.join(rel), &enc);
        write_file(&clear_dir.join(rel), &bytes);
        // Every 25th also as a copy whose ciphertext lost its last third,
        // under a name of its own.
        if i % 25 == 7 {
            let cut = openpgp_util::pgp_mime(&bytes, false, |e| {
                let c = gpg.encrypt(e, &[&f.alice], None, compress, false);
                c[..c.len() * 2 / 3].to_vec()
            });
            let name = format!("{}.truncated", rel.to_string_lossy());
            write_file(&enc_dir.join(&name), &cut);
            broken.push(name);
        }
    }
    eprintln!(
        "{} messages: {kinds:?}; {} to Carol only; {} truncated; made by gpg in {:.1}s",
        picked.len(),
        to_carol.len(),
        broken.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kinds.get("inline").copied().unwrap_or(0) >= 10, "{kinds:?}");

    let clear = Index::create(&tmp.path().join("ci"), &cred(), config()).unwrap();
    let r = clear
        .index(
            &mut Tree::open(&clear_dir).unwrap(),
            &PassThrough::default(),
            &IndexOptions::default(),
        )
        .unwrap();
    assert_eq!(r.failed, 0);
    let enc = Index::create(&tmp.path().join("ei"), &cred(), config()).unwrap();
    let two = OpenPgp::new(keys(f));
    let r = enc
        .index(
            &mut Tree::open(&enc_dir).unwrap(),
            &two,
            &IndexOptions::default(),
        )
        .unwrap();
    let failures: BTreeMap<String, String> = enc
        .failures()
        .unwrap()
        .into_iter()
        .map(|f| (f.message.id, f.reason))
        .collect();
    let expected: BTreeMap<String, String> = to_carol
        .iter()
        .map(|id| (id.clone(), "cannot-decrypt".to_owned()))
        .chain(broken.iter().map(|id| (id.clone(), "malformed".to_owned())))
        .collect();
    assert_eq!(failures, expected);
    assert_eq!(r.stored as usize, picked.len() - to_carol.len());
    assert_eq!(r.failed as usize, to_carol.len() + broken.len());

    // Every stored record reads as its clear twin (an inline body ends
    // with the line end after the armor's last line: compared trimmed).
    let clear_name = Tree::open(&clear_dir).unwrap().name().to_owned();
    let enc_name = Tree::open(&enc_dir).unwrap().name().to_owned();
    for path in &picked {
        let id = path
            .strip_prefix(&corpus)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if to_carol.contains(&id) {
            continue;
        }
        let want = clear
            .get_by_id(&clear_name, &id)
            .unwrap()
            .expect("clear record");
        let got = enc
            .get_by_id(&enc_name, &id)
            .unwrap()
            .expect("decrypted record");
        assert_eq!(
            (
                &got.subject,
                &got.from,
                &got.to,
                &got.attachments,
                got.timestamp
            ),
            (
                &want.subject,
                &want.from,
                &want.to,
                &want.attachments,
                want.timestamp
            ),
            "{id}"
        );
        assert_eq!(
            (&got.folders, got.flags),
            (&want.folders, want.flags),
            "{id}"
        );
        assert_eq!(got.body.trim_end(), want.body.trim_end(), "{id}");
    }
    let compare = |enc: &Index, missing: &[String]| {
        for q in QUERIES {
            let want: Vec<String> = hits(&clear, q)
                .into_iter()
                .filter(|id| !missing.contains(id))
                .collect();
            assert_eq!(hits(enc, q), want, "{q:?}");
        }
    };
    compare(&enc, &to_carol);

    // With Carol's key too, her messages are retried at once and the two
    // indexes agree on everything.
    let mut three = keys(f);
    three.add(&f.carol_sec, Some(b"carol-pass")).unwrap();
    let r = enc
        .index(
            &mut Tree::open(&enc_dir).unwrap(),
            &OpenPgp::new(three),
            &IndexOptions::default(),
        )
        .unwrap();
    assert_eq!(r.stored as usize, to_carol.len());
    assert_eq!(enc.failures().unwrap().len(), broken.len());
    compare(&enc, &[]);
}

fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Ids of every hit, sorted (newest-first order breaks ties of date by a
/// MAC of the source's name, which differs between the two trees).
fn hits(index: &Index, q: &str) -> Vec<String> {
    let r = index
        .search(
            q,
            &SearchOptions {
                limit: None,
                snippet_bytes: 0,
                mode: SearchMode::Forward,
                ..SearchOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{q:?}: {e}"));
    let mut ids: Vec<String> = r.hits.into_iter().map(|h| h.id).collect();
    ids.sort();
    ids
}

/// Words, phrases, fields, folders, dates, flags and attachments.
const QUERIES: &[&str] = &[
    "money",
    "linux",
    "\"click here\"",
    "subject:re",
    "from:yahoo",
    "from:com",
    "to:spamassassin",
    "in:spam-1",
    "in:easy-ham-1 OR in:hard-ham-1",
    "has:attachment",
    "after:2002-08-01",
    "before:2002-07-01 free",
    "(mortgage OR loan) -viagra",
    "the",
    "razor",
    "xyzzyplughq",
];
