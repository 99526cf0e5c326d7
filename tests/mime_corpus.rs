//! MIME parsing and cleaning on real mail: every SpamAssassin message and
//! every mail-parser edge case goes through `PassThrough` and
//! `clean::clean`, and must either become a record or fail with a typed
//! `DecryptError`, never panic. Also hostile inputs generated here.
//!
//! The corpora are not in the repository; `SEALDEX_CORPORA` names the
//! directory they were fetched to. Without it these tests skip loudly, or
//! fail when `CI=true`, so that CI cannot pass by silently testing nothing.

use std::path::{Path, PathBuf};

use sealdex::clean::{self, normalise};
use sealdex::decrypt::PassThrough;
use sealdex::{Body, DecryptError, Decryptor, Flags, RawMessage, Record, record};

fn corpora() -> Option<PathBuf> {
    match std::env::var_os("SEALDEX_CORPORA") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => panic!(
            "SEALDEX_CORPORA is not set: this test needs the corpora (it is #[ignore]d, and was asked for with --ignored or --include-ignored): fetch them with `scripts/fetch-corpora.sh` and set SEALDEX_CORPORA to the directory it prints"
        ),
    }
}

/// Files directly inside `dir` whose name ends with `ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(ext))
        .collect();
    out.sort();
    out
}

fn raw(id: &str, bytes: Vec<u8>) -> RawMessage {
    RawMessage {
        id: id.into(),
        bytes,
        ..RawMessage::default()
    }
}

/// Decrypts, cleans, and checks that the record survives its codec.
fn index(id: &str, bytes: Vec<u8>) -> Result<(sealdex::Message, Record), DecryptError> {
    let msg = PassThrough::default().decrypt(&raw(id, bytes))?;
    let rec = clean::clean(msg.clone(), "corpus", None);
    let decoded = record::decode(&record::encode(&rec)).expect("record codec round trip");
    assert_eq!(decoded, rec, "{id}: record changed through encode/decode");
    Ok((msg, rec))
}

fn index_file(path: &Path) -> Result<(sealdex::Message, Record), DecryptError> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    index(&path.to_string_lossy(), bytes)
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(clean::is_single_char_token)
}

/// Markup that must never survive cleaning.
fn has_tags(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    [
        "<html", "<body", "<p>", "<br", "<td", "<font", "</", "<img", "<a href",
    ]
    .iter()
    .any(|t| lower.contains(t))
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn every_spamassassin_message_parses_or_fails_typed() {
    let Some(root) = corpora() else { return };
    let mut total = 0;
    let mut ok = 0;
    let mut html_bodies = 0;
    let mut with_attachments = 0;
    let mut tagged = Vec::new();
    for group in ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"] {
        for path in files(&root.join("spamassassin").join(group), ".txt") {
            total += 1;
            match index_file(&path) {
                Ok((msg, rec)) => {
                    ok += 1;
                    assert!(
                        !rec.subject.contains("=?"),
                        "{}: undecoded subject {:?}",
                        path.display(),
                        rec.subject
                    );
                    if matches!(msg.body, Body::Html(_)) {
                        html_bodies += 1;
                        if has_tags(&rec.body) {
                            tagged.push(path.clone());
                        }
                    }
                    if msg.flags.contains(Flags::HAS_ATTACHMENT) {
                        with_attachments += 1;
                    }
                }
                Err(e) => eprintln!("{}: {e}", path.display()),
            }
        }
    }
    eprintln!(
        "spamassassin: {ok}/{total} parsed, {html_bodies} HTML-only, {with_attachments} with attachments, {} with leftover tags",
        tagged.len()
    );
    assert!(
        total >= 6000,
        "expected the full corpus, found {total} files"
    );
    // Every SpamAssassin file has headers, so every one must parse.
    assert_eq!(ok, total);
    assert!(html_bodies > 500, "only {html_bodies} HTML-only messages");
    assert!(
        with_attachments > 50,
        "only {with_attachments} with attachments"
    );
    // Tags can survive only where the HTML itself shows them as text
    // (escaped markup); a handful at most.
    assert!(tagged.len() * 200 < html_bodies, "tags left in: {tagged:?}");
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn html_only_spam_is_clean_text() {
    let Some(root) = corpora() else { return };
    // An HTML-only spam (Content-Type: text/html at the top level).
    let path = root.join("spamassassin/spam-2/00002.9438920e9a55591b18e60d1ed37d992b.txt");
    let (msg, rec) = index_file(&path).expect("parses");
    assert!(
        matches!(msg.body, Body::Html(_)),
        "HTML-only message gives an HTML body"
    );
    assert!(!rec.body.contains('<'), "tags left: {}", rec.body);
    assert!(!rec.body.to_ascii_lowercase().contains("base64"));
    assert!(
        rec.body.split_whitespace().count() > 20,
        "too little text: {}",
        rec.body
    );
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn attachment_names_are_found() {
    let Some(root) = corpora() else { return };
    let mut names = Vec::new();
    for group in ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"] {
        for path in files(&root.join("spamassassin").join(group), ".txt") {
            if let Ok((msg, rec)) = index_file(&path)
                && !msg.attachments.is_empty()
            {
                assert!(msg.flags.contains(Flags::HAS_ATTACHMENT));
                assert_eq!(rec.attachments, msg.attachments.join("\n"));
                names.extend(msg.attachments);
            }
        }
    }
    // `Content-Disposition: attachment; filename="PATCH"` in easy-ham-1.
    assert!(
        names.iter().any(|n| n == "PATCH"),
        "PATCH not among {} names",
        names.len()
    );
    assert!(
        names.iter().any(|n| n.ends_with(".url")),
        "no .url attachment"
    );
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn legacy_charsets_decode_to_text() {
    let Some(root) = corpora() else { return };
    // ISO-2022-JP subject and body (a Japanese mailing list message).
    let (_, rec) = index_file(
        &root.join("spamassassin/hard-ham-1/00039.b2b936a8501444b213f61f9ff193b480.txt"),
    )
    .expect("parses");
    assert!(
        has_cjk(&rec.subject),
        "iso-2022-jp subject: {:?}",
        rec.subject
    );
    assert!(!rec.subject.contains('\u{1b}') && !rec.subject.contains('\u{fffd}'));
    assert!(has_cjk(&rec.body), "iso-2022-jp body: {:?}", rec.body);
    assert!(
        !rec.body.contains('\u{1b}'),
        "escape sequences left in the body"
    );

    // Big5 subject, quoted-printable encoded word.
    let (_, rec) =
        index_file(&root.join("spamassassin/spam-1/00252.7e355e0c5fd1de609684544262435579.txt"))
            .expect("parses");
    assert!(has_cjk(&rec.subject), "big5 subject: {:?}", rec.subject);
    assert!(!rec.subject.contains('\u{fffd}'));
    assert!(has_cjk(&rec.body), "big5 body: {:?}", rec.body);

    // Whatever the charset, normalised subjects tokenise into CJK tokens.
    let n = normalise(&rec.subject);
    assert!(clean::tokens(&n).any(|(_, t)| has_cjk(t)));
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn every_mailparser_edge_case_parses_or_fails_typed() {
    let Some(root) = corpora() else { return };
    let mut total = 0;
    let mut ok = 0;
    for group in ["malformed", "rfc", "thirdparty", "regressions", "issues"] {
        for path in files(&root.join("mailparser").join(group), ".eml") {
            total += 1;
            match index_file(&path) {
                Ok((_, rec)) => {
                    ok += 1;
                    assert!(!rec.id.is_empty());
                }
                Err(e) => {
                    // Typed, with a stable reason name.
                    assert!(
                        ["malformed", "empty", "too-large"].contains(&e.reason()),
                        "{e}"
                    );
                    eprintln!("{}: {e}", path.display());
                }
            }
        }
    }
    eprintln!("mailparser edge cases: {ok}/{total} parsed");
    assert!(
        total >= 140,
        "expected the mail-parser test files, found {total}"
    );
    assert!(ok * 10 >= total * 9, "only {ok} of {total} parsed");
}

// --- Generated inputs: these run without the corpora. ---

#[test]
fn empty_and_whitespace_are_empty() {
    assert_eq!(index("e", Vec::new()).err(), Some(DecryptError::Empty));
    assert_eq!(
        index("w", b"\r\n \t\r\n".to_vec()).err(),
        Some(DecryptError::Empty)
    );
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let mut bytes = b"Subject: caf\xe9 \xff\xfe\r\nFrom: \xc3\x28 <x@example.org>\r\n\r\n".to_vec();
    bytes.extend_from_slice(b"body \xff\xfe\xfd with \xc3\x28 broken \xed\xa0\x80 sequences\r\n");
    let (_, rec) = index("u", bytes).expect("lossy, not an error");
    assert!(rec.body.contains("body") && rec.body.contains("sequences"));
    assert!(rec.subject.starts_with("caf"));
}

/// A small deterministic generator (xorshift64*): the test must be
/// reproducible, and it needs no statistical quality.
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn random_bytes_give_typed_results() {
    for seed in 0..300u64 {
        let len = (seed as usize * 37) % 4096;
        let mut bytes = pseudo_random_bytes(seed, len);
        if seed % 3 == 0 {
            // Give the parser something to bite on.
            let mut with_header =
                b"Content-Type: multipart/mixed; boundary=\"\x00\"\r\n\r\n".to_vec();
            with_header.append(&mut bytes);
            bytes = with_header;
        }
        match index(&format!("rand-{seed}"), bytes) {
            Ok(_) | Err(DecryptError::Malformed(_)) | Err(DecryptError::Empty) => {}
            Err(e) => panic!("seed {seed}: unexpected {e}"),
        }
    }
}

#[test]
fn twenty_megabyte_message() {
    let mut bytes = b"From: big@example.org\r\nSubject: large\r\n\
        Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n\
        --XYZ\r\nContent-Type: text/plain\r\n\r\n"
        .to_vec();
    let line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n";
    while bytes.len() < 10 << 20 {
        bytes.extend_from_slice(line);
    }
    bytes.extend_from_slice(
        b"--XYZ\r\nContent-Type: application/octet-stream\r\n\
          Content-Disposition: attachment; filename=\"blob.bin\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    while bytes.len() < 20 << 20 {
        bytes.extend_from_slice(
            b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5\r\n",
        );
    }
    bytes.extend_from_slice(b"--XYZ--\r\n");
    let size = bytes.len();

    let limited = PassThrough {
        max_message_bytes: 16 << 20,
    };
    assert_eq!(
        limited.decrypt(&raw("big", bytes.clone())).err(),
        Some(DecryptError::TooLarge {
            size,
            limit: 16 << 20
        })
    );

    let (msg, rec) = index("big", bytes).expect("within the default limit");
    assert_eq!(rec.subject, "large");
    assert_eq!(msg.attachments, ["blob.bin"]);
    assert!(rec.body.len() > 9 << 20);
    assert!(
        !rec.body.contains("QUJD"),
        "attachment content leaked into the body"
    );
}
