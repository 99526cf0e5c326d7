//! Writes the format-3 fixture of tests/upgrade.rs (run at commit f33b372).
//! Usage: make_format3_fixture OUT_DIR (the Maildir is written to
//! /tmp/sealdex-format3-maildir).
use std::path::Path;
use std::sync::Arc;

use sealdex::decrypt::PassThrough;
use sealdex::ops::Op;
use sealdex::source::Metadata;
use sealdex::{ContentKind, Credential, Index, IndexConfig, KdfParams, Record, SecretKey};

fn mail(to: &Path, name: &str, day: u32, from: &str, subject: &str, body: &str) {
    std::fs::create_dir_all(to).unwrap();
    let text = format!(
        "From: {from}\r\nTo: carol@example.org\r\nSubject: {subject}\r\nDate: {day} Oct 2023 10:00:00 +0000\r\nMessage-ID: <{name}@example.org>\r\n\r\n{body}\r\n"
    );
    std::fs::write(to.join(name), text).unwrap();
    // Fixed times: the Maildir's versions carry them, and the test sets
    // them again on its copy so that a re-sync finds nothing changed.
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options().write(true).open(to.join(name)).unwrap().set_modified(t).unwrap();
}

fn main() {
    let out = std::env::args().nth(1).expect("OUT_DIR");
    let out = Path::new(&out);
    // A fixed path: the source's name holds it, and the test recreates the
    // Maildir there (from tests/data/store-format-3-maildir).
    let m = Path::new("/tmp/sealdex-format3-maildir");
    let _ = std::fs::remove_dir_all(m);
    for d in ["cur", "new", "tmp", ".Work/cur", ".Work/new", ".Work/tmp"] {
        std::fs::create_dir_all(m.join(d)).unwrap();
    }
    mail(&m.join("cur"), "1.m1:2,S", 2, "Alice <alice@example.org>", "Quarterly invoice", "Please find the invoice CANARYPLAINTEXT attached. Payment due Friday.");
    mail(&m.join("cur"), "2.m2:2,FS", 3, "Bob <bob@example.org>", "Lunch plans", "Shall we meet at the noodle bar near the station?");
    mail(&m.join("new"), "3.m3", 4, "Alice <alice@example.org>", "Re: Quarterly invoice", "Paid today, thanks. The receipt number is 4471.");
    mail(&m.join(".Work/cur"), "4.m4:2,RS", 5, "Dana <dana@example.org>", "Deploy window", "The deploy window moves to Thursday night; invoice system frozen.");
    mail(&m.join(".Work/cur"), "5.m5:2,", 6, "Eve <eve@example.org>", "Too big", &"x".repeat(6000));
    let cred = Credential::AppKey(SecretKey::from_bytes([0x5e; 32]));
    let config = IndexConfig { kdf: KdfParams::insecure_fast(), ..IndexConfig::default() };
    let index = Index::create(out, &cred, config).unwrap();
    let mut source = sealdex::backends::open_path(m).unwrap();
    let report = index
        .index(source.as_mut(), &PassThrough { max_message_bytes: 4000 }, &Default::default())
        .unwrap();
    eprintln!("{report:?}");
    // An app's chat source with versions of its own: edits, a patch, a delete.
    let chat = |id: &str, ts: i64, body: &str| Record {
        source: "chat".into(),
        id: id.into(),
        kind: ContentKind::Chat,
        timestamp: Some(ts),
        from: "Frank".into(),
        body: body.into(),
        folders: vec!["!room:example.org".into()],
        ..Record::default()
    };
    index
        .apply(vec![
            Op::upsert(chat("$e1", 1_700_000_000, "lunch at noon near the station?")).with_version(10),
            Op::upsert(chat("$e2", 1_700_000_100, "the invoice is paid")).with_version(11),
            Op::upsert(chat("$e3", 1_700_000_200, "this message will be deleted")).with_version(12),
            Op::upsert(chat("$e4", 1_700_000_300, "noodles or dumplings?")).with_version(13),
        ])
        .unwrap();
    let read = Metadata { unread: Some(false), flagged: Some(true), ..Metadata::default() };
    index
        .apply(vec![
            Op::patch("chat", "$e2", read).with_version(20),
            Op::delete("chat", "$e3").with_version(21),
        ])
        .unwrap();
    let _ = Arc::new(());
    let m = index.manifest().unwrap();
    eprintln!("format {} manifest {m:?} failures {:?}", index.store().format(), index.failures().unwrap().len());
    for r in index.store().records() {
        let r = r.unwrap();
        eprintln!("{} {} rev {} folders {:?} flags {:?} kind {:?}", r.source, r.id, r.revision, r.folders, r.flags, r.kind);
    }
    drop(index);
}
