//! The one write path: ops applied in batches, replayed and reordered,
//! while other threads search and write; both search modes agree with a
//! plain model of what the ops mean after every batch.

mod common;
use common::Counting;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use sealdex::ops::{Delete, Op, Patch};
use sealdex::{
    ContentKind, Credential, Error, Flags, Index, IndexConfig, InvertedStatus, KdfParams, Metadata,
    Order, Record, SearchMode, SearchOptions,
};

const WORDS: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];
const QUERIES: [&str; 12] = [
    "alpha",
    "bravo -alpha",
    "charlie OR delta",
    "kind:chat",
    "kind:event location:paris",
    "kind:mail is:flagged",
    "in:f1",
    "label:red",
    "is:unread",
    "from:delta",
    "filename:report",
    "after:2024-01-02",
];

fn config(inverted: bool) -> IndexConfig {
    IndexConfig {
        kdf: KdfParams::insecure_fast(),
        inverted,
        ..IndexConfig::default()
    }
}

fn new_index(dir: &std::path::Path, inverted: bool) -> Index {
    Index::create(dir, &Credential::passphrase("pw"), config(inverted)).unwrap()
}

/// A Maildir at `dir` with `n` messages in `cur/`, named
/// `{i}.{host}.host{info}`, each `message(i)`.
fn maildir(
    dir: &std::path::Path,
    host: &str,
    info: &str,
    n: usize,
    message: impl Fn(usize) -> String,
) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for i in 0..n {
        std::fs::write(dir.join(format!("cur/{i}.{host}.host{info}")), message(i)).unwrap();
    }
}

/// Every id a query finds, in either mode, with the total it reports.
fn found(index: &Index, query: &str, mode: SearchMode) -> (usize, BTreeSet<String>) {
    let options = SearchOptions {
        limit: None,
        mode,
        snippet_bytes: 0,
        ..SearchOptions::default()
    };
    let r = index.search(query, &options).unwrap();
    (r.total, r.hits.into_iter().map(|h| h.id).collect())
}

fn record(id: u8, kind: u8, words: (u8, u8), day: u8, folder: u8, flags: u8) -> Record {
    let kind = ContentKind::ALL[kind as usize % 4];
    Record {
        source: "push".into(),
        id: format!("r{id}"),
        kind,
        timestamp: Some(1_704_067_200 + i64::from(day) * 86_400),
        subject: WORDS[words.0 as usize % 4].into(),
        body: format!("{} text", WORDS[words.1 as usize % 4]),
        from: WORDS[(words.0 as usize + 3) % 4].into(),
        location: if kind == ContentKind::Event {
            "Paris, salle 2".into()
        } else {
            String::new()
        },
        attachments: if kind == ContentKind::File {
            "docs/2024/report.pdf".into()
        } else {
            String::new()
        },
        folders: vec![format!("f{}", folder % 3)],
        flags: Flags::from_bits(flags),
        ..Record::default()
    }
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..8, 0u8..4, (0u8..4, 0u8..4), 0u8..4, 0u8..3, 0u8..4).prop_map(
            |(id, kind, words, day, folder, flags)| Op::upsert(record(id, kind, words, day, folder, flags))
        ),
        2 => (0u8..8, proptest::option::of(0u8..3), proptest::option::of(any::<bool>()),
              proptest::option::of(any::<bool>()), any::<bool>())
            .prop_map(|(id, folder, unread, flagged, label)| Op::Patch(Patch {
                source: "push".into(),
                id: format!("r{id}"),
                version: 0,
                set: Metadata {
                    folders: folder.map(|f| vec![format!("f{f}")]),
                    labels: label.then(|| vec!["red".to_string()]),
                    unread,
                    flagged,
                },
            })),
        1 => (0u8..8).prop_map(|id| Op::Delete(Delete {
            source: "push".into(),
            id: format!("r{id}"),
            version: 0,
        })),
    ]
}

/// The model: what the ops mean, applied in version order.
#[derive(Default)]
struct Model {
    records: BTreeMap<String, (u64, Option<Record>)>,
}

impl Model {
    fn apply(&mut self, op: &Op) {
        let (have, current) = self.records.get(op.id()).cloned().unwrap_or((0, None));
        if op.version() <= have {
            return;
        }
        let next = match op {
            Op::Upsert(u) => Some(Record::clone(&u.record)),
            Op::Patch(p) => match current {
                Some(mut r) => {
                    if !p.set.apply_to(&mut r) {
                        return;
                    }
                    Some(r)
                }
                None => return,
            },
            Op::Delete(_) => None,
        };
        self.records
            .insert(op.id().to_owned(), (op.version(), next));
    }

    fn live(&self) -> impl Iterator<Item = &Record> {
        self.records.values().filter_map(|(_, r)| r.as_ref())
    }
}

/// Checks `index` against the model: the same records, and every query
/// finding the same ids in both modes as in a fresh index of the model's
/// records.
fn check(index: &Index, model: &Model, scratch: &std::path::Path) {
    let live: Vec<&Record> = model.live().collect();
    assert_eq!(index.manifest().unwrap().documents, live.len() as u64);
    for (id, (_, r)) in &model.records {
        let stored = index.get_by_id("push", id).unwrap();
        match r {
            Some(r) => {
                let mut s = Record::clone(&stored.expect("a live record is stored"));
                s.revision = 0;
                let mut want = r.clone();
                want.revision = 0;
                assert_eq!(s, want);
            }
            None => assert!(stored.is_none(), "{id} was deleted"),
        }
    }
    let _ = std::fs::remove_dir_all(scratch);
    let reference = new_index(scratch, false);
    reference
        .apply(live.iter().map(|r| Op::upsert(Record::clone(r))).collect())
        .unwrap();
    for q in QUERIES {
        let want = found(&reference, q, SearchMode::Forward);
        assert_eq!(found(index, q, SearchMode::Forward), want, "forward: {q}");
        assert_eq!(found(index, q, SearchMode::Auto), want, "auto: {q}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random ops in batches, with earlier ops replayed and ops of
    /// different records reordered, while a thread searches: after each
    /// batch, both modes agree with the model.
    #[test]
    fn ops_in_batches_agree_with_the_model(
        batches in proptest::collection::vec(proptest::collection::vec(arb_op(), 1..12), 1..6),
        replays in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        seed in any::<u64>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let index = Arc::new(new_index(&tmp.path().join("idx"), true));
        let stop = Arc::new(AtomicBool::new(false));
        let searcher = {
            let (index, stop) = (Arc::clone(&index), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Acquire) || n == 0 {
                    for q in QUERIES {
                        index.search(q, &SearchOptions::default()).unwrap();
                    }
                    n += 1;
                }
            })
        };
        let mut model = Model::default();
        let mut version = 1_000u64;
        let mut history: Vec<Op> = Vec::new();
        for batch in batches {
            // Versions in the order the ops were made.
            let mut ops: Vec<Op> = batch
                .into_iter()
                .map(|op| {
                    version += 1;
                    op.with_version(version)
                })
                .collect();
            for op in &ops {
                model.apply(op);
            }
            // Replays of earlier ops: they must change nothing.
            for r in &replays {
                if !history.is_empty() {
                    ops.push(r.get(&history).clone());
                }
            }
            history.extend(ops.iter().cloned());
            // Reordered: ops of different records in any order, each
            // record's own in version order.
            let mut keyed: Vec<(u64, usize, Op)> = ops
                .into_iter()
                .enumerate()
                .map(|(i, op)| {
                    let h = seed.wrapping_mul(31).wrapping_add(op.id().len() as u64 * 7919)
                        ^ op.id().bytes().map(u64::from).sum::<u64>();
                    (h, i, op)
                })
                .collect();
            keyed.sort_by_key(|(h, i, _)| (*h, *i));
            index.apply(keyed.into_iter().map(|(_, _, op)| op).collect()).unwrap();
            check(&index, &model, &tmp.path().join("reference"));
        }
        stop.store(true, Ordering::Release);
        searcher.join().unwrap();
    }
}

/// Two threads push ops while the pipeline indexes a mailbox: nothing is
/// lost, and whenever the inverted index says it is current it holds
/// every batch (its answers equal the forward scan's).
///
/// Before the one write path, a second writer's batches went around the
/// inverted index while the pipeline claimed the store's generation at
/// its end, so the index reported itself current without them.
#[test]
fn concurrent_writers_lose_nothing_and_the_index_never_claims_a_batch_it_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let mail = tmp.path().join("mail");
    maildir(&mail, "M1", ":2,S", 1500, |i| {
        format!("From: alice@example.org\r\nSubject: mailbox {i}\r\n")
            + &format!("Date: Tue, 1 Oct 2024 10:00:00 +0000\r\n\r\nzulu body {i}\r\n")
    });
    let index = Arc::new(new_index(&tmp.path().join("idx"), true));
    let pushers: Vec<_> = (0..2)
        .map(|t| {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                for b in 0..40 {
                    let ops = (0..25)
                        .map(|i| {
                            Op::upsert(Record {
                                source: format!("pusher{t}"),
                                id: format!("{b}/{i}"),
                                kind: ContentKind::Chat,
                                timestamp: Some(1_727_776_800 + i),
                                body: format!("yankee pushed {t} {b} {i}"),
                                folders: vec![format!("room{t}")],
                                ..Record::default()
                            })
                        })
                        .collect();
                    index.apply(ops).unwrap();
                }
            })
        })
        .collect();
    let mut source = sealdex::backends::open_path(&mail).unwrap();
    let options = sealdex::pipeline::IndexOptions {
        batch_messages: 64,
        ..Default::default()
    };
    index
        .index(
            source.as_mut(),
            &sealdex::decrypt::PassThrough::default(),
            &options,
        )
        .unwrap();
    for p in pushers {
        p.join().unwrap();
    }
    assert_eq!(index.manifest().unwrap().documents, 1500 + 2 * 40 * 25);
    // No waiting, no catch-up: what the index says now must be true now.
    if let InvertedStatus::Current { .. } = index.inverted_status().unwrap() {
        for q in ["zulu", "yankee", "in:room0", "kind:chat", "kind:mail"] {
            assert_eq!(
                found(&index, q, SearchMode::Auto),
                found(&index, q, SearchMode::Forward),
                "{q}"
            );
        }
    }
    assert_eq!(found(&index, "yankee", SearchMode::Forward).0, 2000);
    assert_eq!(found(&index, "zulu", SearchMode::Forward).0, 1500);
    index.wait_for_inverted().unwrap();
    assert_eq!(found(&index, "yankee", SearchMode::Inverted).0, 2000);
    assert_eq!(
        found(&index, "zulu kind:mail", SearchMode::Inverted).0,
        1500
    );
    assert_eq!(
        found(&index, "yankee kind:chat", SearchMode::Inverted).0,
        2000
    );
}

/// A cursor is bound to its query and order: replayed with another query
/// it is refused; with its own it pages on without repeats.
#[test]
fn a_cursor_replayed_with_another_query_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let index = new_index(&tmp.path().join("idx"), true);
    index
        .apply(
            (0..30)
                .map(|i| Op::upsert(record(i, 0, (0, 1), i % 4, 0, 0)))
                .collect(),
        )
        .unwrap();
    let first = SearchOptions {
        limit: Some(7),
        ..SearchOptions::default()
    };
    let page = index.search("alpha", &first).unwrap();
    let next = page.next.clone().expect("a second page");
    let again = SearchOptions {
        cursor: Some(next.clone()),
        ..first.clone()
    };
    let err = index.search("bravo", &again).unwrap_err();
    assert!(matches!(err, Error::InvalidCursor(_)), "{err:?}");
    let relevance = SearchOptions {
        order: Order::Relevance,
        ..again.clone()
    };
    assert!(matches!(
        index.search("alpha", &relevance),
        Err(Error::InvalidCursor(_))
    ));
    // The same query pages on, newest first, without repeats.
    let mut seen: BTreeSet<String> = page.hits.iter().map(|h| h.id.clone()).collect();
    let mut cursor = Some(next);
    while let Some(c) = cursor {
        let p = index
            .search(
                "alpha",
                &SearchOptions {
                    cursor: Some(c),
                    ..first.clone()
                },
            )
            .unwrap();
        for h in &p.hits {
            assert!(seen.insert(h.id.clone()), "{} repeated", h.id);
        }
        cursor = p.next;
    }
    assert_eq!(seen.len(), 30);
    // Printed and read back, still bound.
    let printed = index
        .search("alpha", &first)
        .unwrap()
        .next
        .unwrap()
        .encode();
    let back = sealdex::PageCursor::decode(&printed).unwrap();
    assert!(
        index
            .search(
                "alpha -bravo",
                &SearchOptions {
                    cursor: Some(back),
                    ..first
                }
            )
            .is_err()
    );
}

/// An op at or below a record's version changes nothing, a delete leaves
/// a tombstone that an older upsert cannot undo, and version 0 always
/// wins.
#[test]
fn versions_make_ops_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let index = new_index(&tmp.path().join("idx"), false);
    let up = |v: u64, body: &str| {
        Op::upsert(Record {
            source: "s".into(),
            id: "m".into(),
            body: body.into(),
            ..Record::default()
        })
        .with_version(v)
    };
    let a = index.apply(vec![up(10, "ten")]).unwrap();
    assert_eq!(a.ops.len(), 1);
    assert_eq!(index.apply(vec![up(10, "ten again")]).unwrap().skipped, 1);
    assert_eq!(index.apply(vec![up(5, "five")]).unwrap().skipped, 1);
    let body = |index: &Index| index.get_by_id("s", "m").unwrap().map(|r| r.body.clone());
    assert_eq!(body(&index).as_deref(), Some("ten"));
    index
        .apply(vec![Op::Delete(Delete {
            source: "s".into(),
            id: "m".into(),
            version: 20,
        })])
        .unwrap();
    assert_eq!(index.apply(vec![up(15, "fifteen")]).unwrap().skipped, 1);
    assert_eq!(body(&index), None);
    let applied = index.apply(vec![up(0, "latest")]).unwrap();
    assert!(applied.ops[0].version() > 20);
    assert_eq!(body(&index).as_deref(), Some("latest"));
    // The assigned versions replay to the same effect elsewhere.
    let other = new_index(&tmp.path().join("other"), false);
    other.apply(applied.ops.clone()).unwrap();
    assert_eq!(other.apply(applied.ops).unwrap().skipped, 1);
    assert_eq!(body(&other).as_deref(), Some("latest"));
    assert!(index.verify().is_ok());
}

/// Two pipelines for two sources side by side on one index: their batches
/// interleave through the one writer, and the inverted index ends holding
/// both (when it says it is current, it is).
#[test]
fn two_pipelines_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for (m, word) in [("one", "xray"), ("two", "whiskey")] {
        let mail = tmp.path().join(m);
        maildir(&mail, m, ":2,", 800, |i| {
            format!(
                "Subject: {word} {i}\r\nDate: Tue, 1 Oct 2024 10:00:00 +0000\r\n\r\n{word} body\r\n"
            )
        });
        dirs.push(mail);
    }
    let index = Arc::new(new_index(&tmp.path().join("idx"), true));
    let runs: Vec<_> = dirs
        .into_iter()
        .map(|mail| {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                let mut source = sealdex::backends::open_path(&mail).unwrap();
                let options = sealdex::pipeline::IndexOptions {
                    batch_messages: 32,
                    ..Default::default()
                };
                index
                    .index(
                        source.as_mut(),
                        &sealdex::decrypt::PassThrough::default(),
                        &options,
                    )
                    .unwrap();
            })
        })
        .collect();
    for r in runs {
        r.join().unwrap();
    }
    if let InvertedStatus::Current { documents, .. } = index.inverted_status().unwrap() {
        assert_eq!(documents, 1600);
    }
    for q in ["xray", "whiskey", "xray OR whiskey"] {
        assert_eq!(
            found(&index, q, SearchMode::Auto),
            found(&index, q, SearchMode::Forward),
            "{q}"
        );
    }
    assert_eq!(found(&index, "xray OR whiskey", SearchMode::Auto).0, 1600);
}

/// A flag change and a move in a Maildir reach `is:flagged` and `in:` in
/// both modes with no message body fetched again.
#[test]
fn maildir_flags_and_moves_are_patched_without_fetching() {
    let tmp = tempfile::tempdir().unwrap();
    let mail = tmp.path().join("mail");
    maildir(&mail, "M", ":2,S", 50, |i| {
        format!(
            "Subject: victor {i}\r\nDate: Tue, 1 Oct 2024 10:00:00 +0000\r\n\r\nvictor body\r\n"
        )
    });
    for sub in [".Archive/cur", ".Archive/new", ".Archive/tmp"] {
        std::fs::create_dir_all(mail.join(sub)).unwrap();
    }
    let index = new_index(&tmp.path().join("idx"), true);
    let fetched = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let run = |index: &Index| {
        let mut source = Counting {
            inner: sealdex::backends::open_path(&mail).unwrap(),
            fetched: Arc::clone(&fetched),
        };
        index
            .index(
                &mut source,
                &sealdex::decrypt::PassThrough::default(),
                &Default::default(),
            )
            .unwrap()
    };
    run(&index);
    assert_eq!(fetched.swap(0, Ordering::SeqCst), 50);
    for mode in [SearchMode::Forward, SearchMode::Auto] {
        assert_eq!(found(&index, "is:flagged", mode).0, 0);
    }
    // Flag three, move two to the archive (keeping their flags).
    for i in 0..3 {
        std::fs::rename(
            mail.join(format!("cur/{i}.M.host:2,S")),
            mail.join(format!("cur/{i}.M.host:2,FS")),
        )
        .unwrap();
    }
    for i in 10..12 {
        std::fs::rename(
            mail.join(format!("cur/{i}.M.host:2,S")),
            mail.join(format!(".Archive/cur/{i}.M.host:2,S")),
        )
        .unwrap();
    }
    let report = run(&index);
    assert_eq!(report.failed, 0);
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        0,
        "a flag change or a move fetched a message body"
    );
    for mode in [SearchMode::Forward, SearchMode::Auto, SearchMode::Inverted] {
        assert_eq!(found(&index, "is:flagged", mode).0, 3, "{mode:?}");
        let archived = found(&index, "in:archive", mode);
        assert_eq!(archived.0, 2, "{mode:?}");
        assert_eq!(found(&index, "victor", mode).0, 50, "{mode:?}");
    }
    // The record kept its content: only its metadata changed.
    let moved = index
        .search("in:archive victor", &SearchOptions::default())
        .unwrap();
    assert!(
        moved
            .hits
            .iter()
            .all(|h| h.record.body.contains("victor body"))
    );
}
