//! The sealed store: unlocking, re-wrapping, exclusive access, and tamper
//! detection at the level of sled's own trees (an attacker who can rewrite
//! the database consistently, not just flip bytes in its files).

mod common;

use std::path::Path;

use common::copy_dir;

use sealdex::ops::Op;
use sealdex::store::DocKey;
use sealdex::{Credential, Error, Flags, Index, IndexConfig, KdfParams, Record, SecretKey, Store};

fn record(id: &str, body: &str) -> Record {
    Record {
        id: id.into(),
        source: "test".into(),
        timestamp: Some(1_700_000_000),
        subject: format!("subject of {id}"),
        body: body.into(),
        from: "Alice <alice@example.org>".into(),
        to: "Bob <bob@example.org>".into(),
        folders: vec!["INBOX".into()],
        flags: Flags::UNREAD,
        ..Record::default()
    }
}

fn fast() -> KdfParams {
    KdfParams::insecure_fast()
}

/// A new index, written through its one write path; tests read its
/// store as it is on disk.
fn create(dir: &Path, cred: &Credential) -> Index {
    Index::create(
        dir,
        cred,
        IndexConfig {
            kdf: fast(),
            inverted: false,
            ..IndexConfig::default()
        },
    )
    .unwrap()
}

/// An existing index, opened for writing.
fn open(dir: &Path, cred: &Credential) -> Index {
    Index::open(
        dir,
        cred,
        IndexConfig {
            inverted: false,
            ..IndexConfig::default()
        },
    )
    .unwrap()
}

fn put(index: &Index, records: &[Record]) {
    index
        .apply(records.iter().cloned().map(Op::upsert).collect())
        .unwrap();
}

/// A record as read back, without the version its write was given.
fn unversioned(mut r: Record) -> Record {
    r.revision = 0;
    r
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        if e.ends_with("sealdex.lock") {
            continue;
        }
        out.push((e.display().to_string(), std::fs::read(&e).unwrap()));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn create_open_round_trip_and_upsert() {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::passphrase("pw");
    let index = create(dir.path(), &cred);
    let store = index.store();
    put(&index, &[record("a", "one"), record("b", "two")]);
    put(&index, &[record("a", "one, edited")]);
    assert_eq!(store.len().unwrap(), 2);
    drop(index);

    let store = Store::open(dir.path(), &cred).unwrap();
    assert_eq!(store.get("test", "a").unwrap().unwrap().body, "one, edited");
    assert_eq!(store.records().count(), 2);
    assert!(store.verify().is_ok());
}

#[test]
fn wrong_passphrase_is_typed_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let index = create(dir.path(), &Credential::passphrase("right"));
    put(&index, &[record("a", "one")]);
    drop(index);
    let before = snapshot(dir.path());
    let err = Store::open(dir.path(), &Credential::passphrase("wrong")).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "{err:?}");
    let err = Store::open(
        dir.path(),
        &Credential::AppKey(SecretKey::from_bytes([1; 32])),
    )
    .unwrap_err();
    assert!(matches!(err, Error::WrongKey), "{err:?}");
    assert!(!err.to_string().contains("right"));
    assert!(
        before == snapshot(dir.path()),
        "a failed unlock wrote to disk"
    );
}

#[test]
fn change_credential_rewraps_without_reencrypting() {
    let dir = tempfile::tempdir().unwrap();
    let old = Credential::passphrase("old");
    let index = create(dir.path(), &old);
    let store = index.store();
    put(&index, &[record("a", "one")]);
    let sealed_before = std::fs::read(segment(dir.path())).unwrap();
    let new = Credential::passphrase("new");
    store.change_credential(&new, fast()).unwrap();
    let sealed_after = std::fs::read(segment(dir.path())).unwrap();
    assert_eq!(sealed_before, sealed_after, "documents were re-encrypted");
    drop(index);
    assert!(matches!(
        Store::open(dir.path(), &old),
        Err(Error::WrongKey)
    ));
    let store = Store::open(dir.path(), &new).unwrap();
    assert_eq!(store.get("test", "a").unwrap().unwrap().body, "one");
    // And to an app key.
    let app = Credential::AppKey(SecretKey::from_bytes([7; 32]));
    store.change_credential(&app, fast()).unwrap();
    drop(store);
    assert!(matches!(
        Store::open(dir.path(), &new),
        Err(Error::WrongKey)
    ));
    assert!(Store::open(dir.path(), &app).is_ok());
}

#[test]
fn second_open_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::passphrase("pw");
    let _store = Store::create(dir.path(), &cred, fast()).unwrap();
    let err = Store::open(dir.path(), &cred).unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err:?}");
}

#[test]
fn missing_foreign_and_future_format_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::passphrase("pw");
    let err = Store::open(&dir.path().join("nope"), &cred).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("thesis.txt"), b"precious").unwrap();
    let err = Store::create(foreign.path(), &cred, fast()).unwrap_err();
    assert!(matches!(err, Error::NotAnIndex { .. }), "{err:?}");

    drop(Store::create(dir.path(), &cred, fast()).unwrap());
    {
        let keyring = dir.path().join("keyring");
        let mut bytes = std::fs::read(&keyring).unwrap();
        bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
        std::fs::write(&keyring, bytes).unwrap();
    }
    let err = Store::open(dir.path(), &cred).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedFormat {
                found: 99,
                supported: sealdex::store::FORMAT_VERSION
            }
        ),
        "{err:?}"
    );
}

/// Rewrites the sealed tree behind the store's back.
fn tamper(dir: &Path, f: impl FnOnce(&sled::Tree)) {
    tamper_tree(dir, "sealed", f)
}

/// Rewrites the store's dictionary tree (format 4) behind its back.
fn tamper_dictionary(dir: &Path, f: impl FnOnce(&sled::Tree)) {
    tamper_tree(dir, "dictionary", f)
}

fn tamper_tree(dir: &Path, tree: &str, f: impl FnOnce(&sled::Tree)) {
    // sled releases its file lock from a background thread after the store
    // is dropped: wait for it as `Store::open` does.
    let mut tries = 0;
    let db = loop {
        match sled::open(dir.join("db")) {
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock") && tries < 200 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other.unwrap(),
        }
    };
    let t = db.open_tree(tree).unwrap();
    f(&t);
    db.flush().unwrap();
}

/// The block positions of a format-4 store: sled's `B` entries.
fn block_entries(t: &sled::Tree) -> Vec<(sled::IVec, sled::IVec)> {
    t.scan_prefix(b"B").map(|r| r.unwrap()).collect()
}

/// The store's one segment file (the tests' stores are small).
fn segment(dir: &Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.pop().unwrap()
}

/// A store of three records in three batches (so three blocks), tampered
/// with by `sled_edit` (its database) and `file_edit` (its segment file),
/// then opened: the open's outcome.
fn tampered_store(
    sled_edit: impl FnOnce(&sled::Tree),
    file_edit: impl FnOnce(&mut Vec<u8>),
) -> (tempfile::TempDir, sealdex::Result<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::passphrase("pw");
    let index = create(dir.path(), &cred);
    put(&index, &[record("a", "alpha body")]);
    put(&index, &[record("b", "bravo body")]);
    put(&index, &[record("c", "charlie")]);
    drop(index);
    tamper(dir.path(), sled_edit);
    let seg = segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    file_edit(&mut bytes);
    std::fs::write(&seg, bytes).unwrap();
    let store = Store::open(dir.path(), &cred);
    (dir, store)
}

/// Tampering is reported as such: the open refuses the store, or every
/// read of the damaged part and `verify` do.
fn assert_tampered(store: sealdex::Result<Store>) {
    let store = match store {
        Err(e) => {
            assert!(matches!(e, Error::Tampered { .. }), "{e:?}");
            return;
        }
        Ok(store) => store,
    };
    let report = store.verify();
    assert!(!report.is_ok(), "verify missed the tampering");
    let errors: Vec<_> = store.records().filter_map(|r| r.err()).collect();
    assert!(!errors.is_empty(), "reads missed the tampering");
    for e in errors {
        assert!(matches!(e, Error::Tampered { .. }), "{e:?}");
    }
}

#[test]
fn swapped_blocks_fail_authentication() {
    // The sealed positions of two blocks swapped: each is bound to its key.
    let (_d, store) = tampered_store(
        |t| {
            let e = block_entries(t);
            assert_eq!(e.len(), 3);
            t.insert(&e[0].0, e[1].1.clone()).unwrap();
            t.insert(&e[1].0, e[0].1.clone()).unwrap();
        },
        |_| {},
    );
    assert_tampered(store);
    // Two blocks swapped in the segment file (the first two are the same
    // length: records of the same size).
    let (_d, store) = tampered_store(
        |_| {},
        |bytes| {
            let n = bytes.len() / 3;
            let (a, b) = bytes.split_at_mut(n);
            a.swap_with_slice(&mut b[..n]);
        },
    );
    assert_tampered(store);
}

#[test]
fn flipped_byte_fails_authentication() {
    for pos in [0usize, 5, 20, 60, 100, usize::MAX] {
        let (_d, store) = tampered_store(
            |_| {},
            |bytes| {
                let i = pos.min(bytes.len() - 1);
                bytes[i] ^= 0x01;
            },
        );
        assert_tampered(store);
    }
}

#[test]
fn truncated_segment_fails_authentication() {
    for keep in [0usize, 10, 29, 40, 100] {
        let (_d, store) = tampered_store(|_| {}, |bytes| bytes.truncate(keep.min(bytes.len() - 1)));
        assert_tampered(store);
    }
}

#[test]
fn removed_or_replayed_block_is_noticed() {
    // A block's position removed behind the store's back: every remaining
    // record authenticates, but the sealed manifest's count disagrees.
    let (_d, store) = tampered_store(
        |t| {
            let e = block_entries(t);
            t.remove(&e[0].0).unwrap();
        },
        |_| {},
    );
    let report = store.unwrap().verify();
    assert!(!report.is_ok());
    assert!(report.problems[0].contains("manifest"), "{report:?}");

    // A position copied to a key that never held it.
    let (_d, store) = tampered_store(
        |t| {
            let e = block_entries(t);
            let mut k = e[0].0.to_vec();
            k[5] ^= 0xff;
            t.insert(k, e[0].1.clone()).unwrap();
        },
        |_| {},
    );
    assert_tampered(store);
}

/// What a crash leaves between a batch's blocks and its sled batch (bytes
/// past the last committed block) is dropped at open, and the store goes
/// on: the next batch appends where the last committed one ended.
#[test]
fn uncommitted_tail_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::passphrase("pw");
    let index = create(dir.path(), &cred);
    put(&index, &[record("a", "alpha body")]);
    drop(index);
    let seg = segment(dir.path());
    let committed = std::fs::metadata(&seg).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &[0x5a; 777]).unwrap();
    drop(f);
    let index = open(dir.path(), &cred);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), committed);
    put(&index, &[record("b", "bravo body")]);
    drop(index);
    let store = Store::open(dir.path(), &cred).unwrap();
    assert!(store.verify().is_ok(), "{:?}", store.verify());
    assert_eq!(store.get("test", "a").unwrap().unwrap().body, "alpha body");
    assert_eq!(store.get("test", "b").unwrap().unwrap().body, "bravo body");
}

#[test]
fn delete_and_failure_bookkeeping() {
    let dir = tempfile::tempdir().unwrap();
    let index = create(dir.path(), &Credential::passphrase("pw"));
    let store = index.store();
    put(&index, &[record("a", "one"), record("b", "two")]);
    index
        .apply(vec![
            Op::delete("test", "a"),
            Op::delete("test", "never-stored"),
        ])
        .unwrap();
    assert_eq!(store.len().unwrap(), 1);
    assert!(store.get("test", "a").unwrap().is_none());
    let k: DocKey = store.doc_key("test", "b");
    assert_eq!(DocKey::from_bytes(k.as_bytes()), Some(k));
    assert!(store.verify().is_ok());
}

#[test]
fn database_replayed_from_an_older_copy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::passphrase("pw");
    let index = create(dir.path(), &cred);
    put(&index, &[record("a", "one")]);
    drop(index);
    let old = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join("db"), old.path());

    let index = open(dir.path(), &cred);
    put(&index, &[record("b", "two")]);
    drop(index);
    std::fs::remove_dir_all(dir.path().join("db")).unwrap();
    copy_dir(old.path(), &dir.path().join("db"));

    let err = Store::open(dir.path(), &cred).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tampered {
                kind: "manifest",
                ..
            }
        ),
        "{err:?}"
    );
}

/// An index written by format 1 (tests/data/store-format-1, made by the
/// format-1 code of commit 3f3ea33: records `a` and `b`, a failure for `c`,
/// a checkpoint and a 600-byte sync token, passphrase "pw") still opens,
/// reads and verifies, and keeps being written in format 1.
#[test]
fn format_1_index_still_opens_and_writes() {
    use sealdex::store::TokenSlot;
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store-format-1"),
        dir.path(),
    );
    let cred = Credential::passphrase("pw");
    let check = |store: &Store, docs: u64| {
        assert_eq!(store.format(), 1);
        assert_eq!(store.len().unwrap(), docs);
        assert_eq!(
            store.get("test", "a").unwrap().unwrap(),
            record("a", "alpha body")
        );
        assert_eq!(
            store.get("test", "b").unwrap().unwrap().body,
            "bravo body, long enough to be compressed ".repeat(20)
        );
        let failures = store.failures().unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].detail, "no header");
        assert_eq!(store.checkpoint("test").unwrap().unwrap().done, 2);
        assert_eq!(
            store.token("test", TokenSlot::Synced).unwrap().unwrap().0,
            b"token ".repeat(100)
        );
        let report = store.verify();
        assert!(report.is_ok(), "{report:?}");
    };
    let index = open(dir.path(), &cred);
    check(index.store(), 2);
    put(&index, &[record("d", &"delta ".repeat(100))]);
    index.change_credential(&cred, fast()).unwrap();
    drop(index);
    let store = Store::open(dir.path(), &cred).unwrap();
    check(&store, 3);
    assert_eq!(
        store.get("test", "d").unwrap().unwrap().body,
        "delta ".repeat(100)
    );
}

/// Short messages, enough of them to make the store's dictionary.
fn chat_records(range: std::ops::Range<u32>) -> Vec<Record> {
    range
        .map(|i| {
            record(
                &format!("conversation-{}/{i}", i / 20),
                &format!(
                    "message {i}: shall we meet at {} about the {} report? {}",
                    i % 24,
                    ["quarterly", "weekly", "annual"][i as usize % 3],
                    "ok ".repeat(i as usize % 5)
                ),
            )
        })
        .collect()
}

fn store_with_dictionary() -> (tempfile::TempDir, Vec<Record>) {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::passphrase("pw");
    let index = create(dir.path(), &cred);
    let records = chat_records(0..6000);
    for chunk in records.chunks(1000) {
        put(&index, chunk);
    }
    drop(index);
    (dir, records)
}

/// From format 2 on, records are compressed against a dictionary made of
/// the first ones; it is stored with them, and every record reads back
/// after a reopen, including those written after it.
#[test]
fn dictionary_round_trip() {
    let (dir, mut records) = store_with_dictionary();
    let cred = Credential::passphrase("pw");
    let mut dictionary = 0;

    tamper_dictionary(dir.path(), |t| {
        dictionary = t.get(b"Zdictionary").unwrap().map_or(0, |v| v.len());
    });
    // Format 4: the records are in the segment files.
    let documents = std::fs::read_dir(dir.path().join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len() as usize)
        .sum::<usize>();
    assert!(dictionary > 200 << 10, "no dictionary stored");
    // What the same records take compressed one by one without it.
    let alone: usize = records
        .iter()
        .map(|r| sealdex::record::encode(r).len() + sealdex::seal::OVERHEAD)
        .sum();
    let index = open(dir.path(), &cred);
    more(&index, &mut records);
    drop(index);
    let store = Store::open(dir.path(), &cred).unwrap();
    assert_eq!(store.len().unwrap(), records.len() as u64);
    for r in &records {
        assert_eq!(&unversioned(store.get("test", &r.id).unwrap().unwrap()), r);
    }
    let report = store.verify();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.documents_ok, records.len() as u64);
    // The first records make the dictionary and go without it; the rest
    // are much smaller.
    assert!(
        documents * 10 < alone * 7,
        "{documents} bytes, {alone} without a dictionary"
    );

    fn more(index: &Index, records: &mut Vec<Record>) {
        let extra = chat_records(6000..6100);
        put(index, &extra);
        records.extend(extra);
    }
}

#[test]
fn missing_dictionary_is_tampering() {
    let (dir, _) = store_with_dictionary();
    tamper_dictionary(dir.path(), |t| {
        t.remove(b"Zdictionary").unwrap();
    });
    assert_tampered(Store::open(dir.path(), &Credential::passphrase("pw")));
}

#[test]
fn altered_dictionary_is_tampering() {
    let (dir, _) = store_with_dictionary();
    tamper_dictionary(dir.path(), |t| {
        let mut v = t.get(b"Zdictionary").unwrap().unwrap().to_vec();
        v[100] ^= 1;
        t.insert(b"Zdictionary", v).unwrap();
    });
    let err = Store::open(dir.path(), &Credential::passphrase("pw")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tampered {
                kind: "dictionary",
                ..
            }
        ),
        "{err:?}"
    );
}

mod model {
    //! Random sequences of upserts, deletes and reopens against a model:
    //! a format-4 store (records in blocks, liveness rebuilt at open from
    //! directories and tombstones) holds exactly what a map would.

    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Step {
        /// Upserts of these (id, body) in one batch.
        Batch(Vec<(u8, u16)>),
        Delete(u8),
        Reopen,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => proptest::collection::vec((0u8..12, any::<u16>()), 1..20).prop_map(Step::Batch),
            2 => (0u8..12).prop_map(Step::Delete),
            1 => Just(Step::Reopen),
        ]
    }

    fn body(v: u16) -> String {
        // Some long enough to fill a block alone.
        format!("body {v} ").repeat(if v.is_multiple_of(7) { 2000 } else { 3 })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn random_ops_match_a_model(steps in proptest::collection::vec(step(), 1..12)) {
            let dir = tempfile::tempdir().unwrap();
            let cred = Credential::passphrase("pw");
            let mut index = Some(create(dir.path(), &cred));
            let mut model: BTreeMap<u8, String> = BTreeMap::new();
            for s in steps {
                match s {
                    Step::Batch(items) => {
                        let ops = items
                            .iter()
                            .map(|(id, v)| Op::upsert(record(&id.to_string(), &body(*v))))
                            .collect();
                        index.as_ref().unwrap().apply(ops).unwrap();
                        for (id, v) in items {
                            model.insert(id, body(v));
                        }
                    }
                    Step::Delete(id) => {
                        index
                            .as_ref()
                            .unwrap()
                            .apply(vec![Op::delete("test", id.to_string())])
                            .unwrap();
                        model.remove(&id);
                    }
                    Step::Reopen => {
                        drop(index.take());
                        index = Some(open(dir.path(), &cred));
                    }
                }
            }
            drop(index.take());
            let store = Store::open(dir.path(), &cred).unwrap();
            prop_assert_eq!(store.len().unwrap(), model.len() as u64);
            for id in 0u8..12 {
                let got = store.get("test", &id.to_string()).unwrap().map(|r| r.body);
                prop_assert_eq!(got.as_ref(), model.get(&id));
            }
            let mut read: Vec<String> = store.records().map(|r| r.unwrap().id).collect();
            read.sort();
            let mut want: Vec<String> = model.keys().map(|k| k.to_string()).collect();
            want.sort();
            prop_assert_eq!(read, want);
            let report = store.verify();
            prop_assert!(report.is_ok(), "{:?}", report);
        }
    }
}

/// Text that compresses about as well as real mail (hex of a xorshift).
fn noisy(seed: u64, bytes: usize) -> String {
    let mut s = seed | 1;
    let mut out = String::with_capacity(bytes);
    while out.len() < bytes {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.push_str(&format!("{:x} ", s % 100_000));
    }
    out
}

fn blocks_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Records replaced again and again leave dead records behind; once they
/// are most of a segment, a batch compacts it: the segment files shrink
/// back, every record still reads (from a reopened store too), and
/// `verify` passes.
#[test]
fn dead_records_are_compacted_away() {
    let dir = tempfile::tempdir().unwrap();
    let cred = Credential::passphrase("pw");
    let index = create(dir.path(), &cred);
    let round = |r: u64| -> Vec<Record> {
        (0..200)
            .map(|i| record(&format!("m{i}"), &noisy(r * 1000 + i, 8 << 10)))
            .collect()
    };
    put(&index, &round(0));
    let one_copy = blocks_bytes(dir.path());
    let mut peak = one_copy;
    for r in 1..6 {
        for chunk in round(r).chunks(50) {
            put(&index, chunk);
            peak = peak.max(blocks_bytes(dir.path()));
        }
    }
    let last = round(5);
    let after = blocks_bytes(dir.path());
    // Six copies written; without compaction the files would hold them
    // all. The threshold is 1 MiB of dead records and half a segment.
    assert!(
        peak < one_copy * 4 && after < one_copy * 3,
        "one copy {one_copy} bytes, peak {peak}, after {after}"
    );
    for r in &last {
        assert_eq!(
            index.get_by_id("test", &r.id).unwrap().unwrap().body,
            r.body
        );
    }
    assert!(index.verify().is_ok(), "{:?}", index.verify());
    drop(index);
    let store = Store::open(dir.path(), &cred).unwrap();
    assert_eq!(store.len().unwrap(), 200);
    for r in &last {
        assert_eq!(store.get("test", &r.id).unwrap().unwrap().body, r.body);
    }
    let report = store.verify();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.documents_ok, 200);
}
