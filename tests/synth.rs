//! The synthetic mail generator of the scaling bench
//! (`benches/common/synth.rs`): deterministic from its seed, and its output
//! goes through sealdex's parser and index like real mail.
//!
//! Needs `SEALDEX_CORPORA` (it learns from the corpora); skips loudly
//! without it, and fails without it under `CI=true`.

#[path = "../benches/common/synth.rs"]
mod synth;

use std::sync::{Arc, OnceLock};

use sealdex::decrypt::PassThrough;
use sealdex::{
    Body, Credential, Decryptor, Flags, Index, IndexConfig, KdfParams, SearchOptions, Source,
};
use synth::{LearnOptions, Model, Synth};

/// A quarter of SpamAssassin and 300 ChitChat conversations: enough for
/// every shape, fast enough for a debug build.
const OPTIONS: LearnOptions = LearnOptions {
    sample_every: 4,
    chat_conversations: 300,
};

fn corpora() -> Option<std::path::PathBuf> {
    match std::env::var_os("SEALDEX_CORPORA") {
        Some(d) => Some(d.into()),
        None => panic!(
            "SEALDEX_CORPORA is not set: this test needs the corpora (it is #[ignore]d, and was asked for with --ignored or --include-ignored): fetch them with `scripts/fetch-corpora.sh` and set SEALDEX_CORPORA to the directory it prints"
        ),
    }
}

fn model() -> Option<Arc<Model>> {
    static MODEL: OnceLock<Option<Arc<Model>>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let root = corpora()?;
            Some(Arc::new(Model::learn(&root, OPTIONS).expect("learn")))
        })
        .clone()
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn learning_and_generation_are_deterministic() {
    let Some(a) = model() else { return };
    let root = corpora().expect("corpora");
    let b = Model::learn(&root, OPTIONS).expect("learn again");
    assert_eq!(
        postcard::to_allocvec(&*a).unwrap(),
        postcard::to_allocvec(&b).unwrap(),
        "learning twice gave two models"
    );

    // Saved and loaded, the model makes the same messages.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    b.save(&path).unwrap();
    let c = Arc::new(Model::load(&path).unwrap());

    let (x, y) = (Synth::new(a, 7, 1_000_000), Synth::new(c, 7, 1_000_000));
    for i in (0..40).chain([999_999, 123_456, 654_321]) {
        assert_eq!(x.generate(i).bytes, y.generate(i).bytes, "message {i}");
    }
    // Another seed, another mailbox; messages differ from each other.
    let z = Synth::new(model().unwrap(), 8, 1_000_000);
    assert_ne!(x.generate(3).bytes, z.generate(3).bytes);
    assert_ne!(x.generate(3).bytes, x.generate(4).bytes);
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn output_parses_like_mail() {
    let Some(model) = model() else { return };
    let folders: Vec<String> = model
        .folder_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let n = 1_000u64;
    let mut source = Synth::new(model, 42, n);
    let page = source.list(None, n as usize).unwrap();
    assert_eq!(page.refs.len(), n as usize);
    assert_eq!(page.total, Some(n));
    assert!(page.next.is_none());
    let (mut html, mut attached, mut non_ascii, mut unread) = (0, 0, 0, 0);
    let mut last_date = synth::FIRST_DAY - 3 * 86_400;
    for (i, raw) in source.fetch(&page.refs).into_iter().enumerate() {
        let raw = raw.expect("fetch");
        let msg = PassThrough::default()
            .decrypt(&raw)
            .unwrap_or_else(|e| panic!("message {i} does not parse: {e}"));
        assert!(msg.from.contains('@'), "message {i}: from {:?}", msg.from);
        assert!(msg.to.contains('@'), "message {i}: to {:?}", msg.to);
        assert!(!msg.subject.is_empty(), "message {i}: no subject");
        let date = msg.date.expect("date");
        assert!(
            (synth::FIRST_DAY - 3 * 86_400..synth::LAST_DAY + 3 * 86_400).contains(&date),
            "message {i}: date {date}"
        );
        // Dates follow the listing, within the jitter.
        assert!(date > last_date - 5 * 86_400, "message {i}: date goes back");
        last_date = date;
        assert!(folders.contains(&msg.folders[0]), "{:?}", msg.folders);
        html += usize::from(matches!(msg.body, Body::Html(_)));
        attached += usize::from(!msg.attachments.is_empty());
        assert_eq!(
            msg.flags.contains(Flags::HAS_ATTACHMENT),
            !msg.attachments.is_empty()
        );
        unread += usize::from(msg.flags.contains(Flags::UNREAD));
        let text = sealdex::clean::body_text(&msg.body);
        assert!(!text.trim().is_empty(), "message {i}: empty body");
        non_ascii += usize::from(text.chars().filter(|c| !c.is_ascii()).count() > 20);
    }
    eprintln!(
        "of {n}: {html} HTML-only, {attached} with attachments, {non_ascii} non-ASCII, {unread} unread"
    );
    // SpamAssassin: 16 % HTML only, 0.8 % attachments, 1 % mostly non-ASCII.
    assert!((80..300).contains(&html), "{html} HTML-only of {n}");
    assert!(attached >= 1, "no attachment in {n}");
    assert!(non_ascii >= 3, "{non_ascii} non-ASCII of {n}");
    assert!(unread >= 5, "{unread} unread of {n}");
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn indexes_and_finds() {
    let Some(model) = model() else { return };
    let n = 300u64;
    let mut source = Synth::new(model, 5, n);
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(
        &dir.path().join("idx"),
        &Credential::passphrase("synth"),
        IndexConfig {
            kdf: KdfParams::insecure_fast(),
            ..IndexConfig::default()
        },
    )
    .unwrap();
    let report = index
        .index(&mut source, &PassThrough::default(), &Default::default())
        .unwrap();
    assert_eq!((report.stored, report.failed), (n, 0));
    assert_eq!(index.len(), n as usize);

    // The last message's Message-ID domain is its sender's: a from: search
    // for it finds that message among the hits.
    let last = source.generate(n - 1);
    let text = String::from_utf8(last.bytes).unwrap();
    let mid = text
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: <"))
        .unwrap();
    let domain = mid.split('@').nth(1).unwrap().trim_end_matches('>');
    let first_label = domain.split('.').next().unwrap();
    let page = index
        .search(&format!("from:{first_label}"), &SearchOptions::default())
        .unwrap();
    assert!(page.total >= 1);
    assert!(
        page.hits.iter().any(|h| h.id == format!("synth-{}", n - 1)),
        "newest message not among the hits of from:{first_label}"
    );
    // Everything is in one of the corpus folders.
    let all: usize = source
        .model()
        .folder_names()
        .iter()
        .map(|f| {
            index
                .search(&format!("in:{f}"), &SearchOptions::default())
                .unwrap()
                .total
        })
        .sum();
    assert_eq!(all, n as usize);
}
