//! The inverted index against the forward scan: the same records in the same
//! order for every query, on random mailboxes and on real mail, and after
//! tampering, replay and crashes.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{copy_dir, corpora, ok, run, sealdex};
use proptest::prelude::*;
use sealdex::backends::Tree;
use sealdex::clean;
use sealdex::decrypt::PassThrough;
use sealdex::query::{Filter, Query, Term};
use sealdex::source::RawMessage;
use sealdex::{
    ContentKind, Credential, DecryptError, Decryptor, Error, Field, Flags, Index, IndexConfig,
    InvertedStatus, KdfParams, Message, Order, Record, SearchMode, SearchOptions, SecretKey,
};

fn cred() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([0x5a; 32]))
}

fn config() -> IndexConfig {
    IndexConfig {
        kdf: KdfParams::insecure_fast(),
        inverted: true,
        ..IndexConfig::default()
    }
}

/// Every hit's id, in order.
fn ids(index: &Index, q: &Query, mode: SearchMode, order: Order) -> Result<Vec<String>, Error> {
    let r = index.search_query(
        q,
        &SearchOptions {
            order,
            limit: None,
            cursor: None,
            snippet_bytes: 0,
            mode,
        },
    )?;
    assert_eq!(r.total, r.hits.len());
    Ok(r.hits.into_iter().map(|h| h.id).collect())
}

/// Both modes give the same ids in the same newest-first order, and the
/// same set in relevance order.
fn same_in_both_modes(index: &Index, q: &Query) {
    let fwd = ids(index, q, SearchMode::Forward, Order::Newest).unwrap();
    let inv =
        ids(index, q, SearchMode::Inverted, Order::Newest).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(fwd, inv, "query {q} (newest first)");
    let fwd: BTreeSet<String> = ids(index, q, SearchMode::Forward, Order::Relevance)
        .unwrap()
        .into_iter()
        .collect();
    let inv: BTreeSet<String> = ids(index, q, SearchMode::Inverted, Order::Relevance)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(fwd, inv, "query {q} (relevance)");
}

// ---------------------------------------------------------------------------
// A mailbox in memory.

/// Words the generated mail and queries draw from: prefixes of each other,
/// accents and case, scripts without spaces, words the normaliser splits.
const WORDS: &[&str] = &[
    "report",
    "reporting",
    "repo",
    "quarterly",
    "alpha",
    "alphabet",
    "café",
    "cafe",
    "Straße",
    "strasse",
    "日本語",
    "o'reilly",
    "apt-get",
    "10:30",
    "meeting",
    "meet",
    "Budget",
    "zebra",
    "a",
    "an",
    "the",
    "e-mail",
    "email",
    "naïve",
    "ΣΊΣΥΦΟΣ",
    "x",
];
const FOLDERS: &[&str] = &["Inbox", "Work", "Project X", "ünïcode"];
const NAMES: &[&str] = &["Alice Report", "Bob", "Zoë Café", "o'reilly media"];

#[derive(Clone, Debug)]
struct Msg {
    from: usize,
    to: usize,
    subject: Vec<usize>,
    body: Vec<usize>,
    html: bool,
    attachment: Option<usize>,
    date: Option<i64>,
    folder: usize,
    flags: u8,
    /// Index into [`ContentKind::ALL`].
    kind: usize,
    /// An event's location (words).
    location: Vec<usize>,
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        (0..NAMES.len(), 0..NAMES.len()),
        prop::collection::vec(0..WORDS.len(), 0..4),
        prop::collection::vec(0..WORDS.len(), 0..20),
        any::<bool>(),
        prop::option::of(0..WORDS.len()),
        // A few distinct days, so ties in date happen; some undated.
        prop::option::of((0i64..6).prop_map(|d| 1_600_000_000 + d * 86_400)),
        (0..FOLDERS.len(), 0u8..8),
        (
            0..ContentKind::ALL.len(),
            prop::collection::vec(0..WORDS.len(), 0..3),
        ),
    )
        .prop_map(
            |(
                (from, to),
                subject,
                body,
                html,
                attachment,
                date,
                (folder, flags),
                (kind, location),
            )| Msg {
                from,
                to,
                subject,
                body,
                html,
                attachment,
                date,
                folder,
                flags,
                kind,
                location,
            },
        )
}

fn words(ix: &[usize]) -> String {
    ix.iter().map(|&i| WORDS[i]).collect::<Vec<_>>().join(" ")
}

fn raw(i: usize, m: &Msg) -> RawMessage {
    let mut s = String::new();
    s.push_str(&format!(
        "From: {} <u{}@example.org>\r\n",
        NAMES[m.from], m.from
    ));
    s.push_str(&format!("To: {} <v{}@example.org>\r\n", NAMES[m.to], m.to));
    s.push_str(&format!("Subject: {}\r\n", words(&m.subject)));
    if let Some(d) = m.date {
        let t = chrono::DateTime::from_timestamp(d, 0).unwrap();
        s.push_str(&format!("Date: {}\r\n", t.to_rfc2822()));
    }
    s.push_str(&format!(
        "Message-ID: <m{i}@example.org>\r\nMIME-Version: 1.0\r\n"
    ));
    let body = words(&m.body);
    let body = if m.html {
        format!("<html><body><p>{body}</p></body></html>")
    } else {
        body
    };
    let ctype = if m.html { "text/html" } else { "text/plain" };
    match m.attachment {
        None => s.push_str(&format!(
            "Content-Type: {ctype}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
        )),
        Some(a) => {
            let name = WORDS[a].replace([' ', '"'], "_");
            s.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
                 Content-Type: {ctype}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n\
                 --b\r\nContent-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=\"{name}.pdf\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n"
            ));
        }
    }
    let mut flags = Flags::empty();
    flags.set(Flags::UNREAD, m.flags & 1 != 0);
    flags.set(Flags::FLAGGED, m.flags & 2 != 0);
    RawMessage {
        id: format!("m{i}"),
        bytes: s.into_bytes(),
        folder: Some(FOLDERS[m.folder].to_owned()),
        labels: if m.flags & 4 != 0 {
            vec![FOLDERS[(m.folder + 1) % FOLDERS.len()].to_owned()]
        } else {
            Vec::new()
        },
        flags: Some(flags),
        version: None,
    }
}

/// The kinds other than mail, on top of the generated MIME: a message's
/// [`Msg::kind`] says what the record is, as a chat, calendar or drive
/// client's decryptor would; an event gets its location and an end, a
/// file its path (from its subject's words) in place of attachment names.
struct Kinded<'a> {
    msgs: &'a [Msg],
}

impl Decryptor for Kinded<'_> {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        let mut m = PassThrough::default().decrypt(raw)?;
        let Some(msg) = raw.id[1..]
            .parse::<usize>()
            .ok()
            .and_then(|i| self.msgs.get(i))
        else {
            return Ok(m);
        };
        m.kind = ContentKind::ALL[msg.kind];
        match m.kind {
            ContentKind::Event => {
                m.location = words(&msg.location);
                m.end = m.date.map(|d| d + 3600);
            }
            ContentKind::File => {
                let mut path: Vec<&str> = msg.subject.iter().map(|&w| WORDS[w]).collect();
                path.push("notes.txt");
                m.attachments = vec![path.join("/")];
                m.media_type = Some("text/plain".into());
            }
            ContentKind::Mail | ContentKind::Chat => {}
        }
        Ok(m)
    }
}

/// The records the index must hold for `msgs`: decrypted and cleaned as the
/// pipeline does, without the pipeline.
fn records(msgs: &[Msg]) -> Vec<Record> {
    msgs.iter()
        .enumerate()
        .map(|(i, m)| {
            let m = Kinded { msgs }.decrypt(&raw(i, m)).unwrap();
            clean::clean(m, "mem", None)
        })
        .collect()
}

fn build(dir: &Path, msgs: &[Msg]) -> Index {
    let index = Index::create(dir, &cred(), config()).unwrap();
    let mut src = common::Mem {
        name: "mem".into(),
        messages: msgs.iter().enumerate().map(|(i, m)| raw(i, m)).collect(),
    };
    let report = index
        .index(&mut src, &Kinded { msgs }, &Default::default())
        .unwrap();
    assert_eq!(report.failed, 0);
    index.wait_for_inverted().unwrap();
    assert!(matches!(
        index.inverted_status().unwrap(),
        InvertedStatus::Current { .. }
    ));
    index
}

// ---------------------------------------------------------------------------
// Random queries over the whole language.

fn prefix_of(w: &str, n: usize) -> String {
    w.chars().take(n.max(1)).collect()
}

fn leaf() -> impl Strategy<Value = Query> {
    let field = prop::option::of(prop::sample::select(Field::ALL.to_vec()));
    prop_oneof![
        4 => (0..WORDS.len(), 1usize..8, field.clone()).prop_map(|(w, n, f)| {
            let mut t = Term::word(prefix_of(WORDS[w], n));
            t.field = f;
            Query::Term(t)
        }),
        2 => (prop::collection::vec(0..WORDS.len(), 1..3), field).prop_map(|(ws, f)| {
            let mut t = Term::phrase(words(&ws));
            t.field = f;
            Query::Term(t)
        }),
        1 => (0..NAMES.len()).prop_map(|n| Query::Term(Term::word(NAMES[n].split(' ').next().unwrap()).in_field(Field::From))),
        1 => (0..FOLDERS.len(), any::<bool>()).prop_map(|(f, upper)| {
            let name = if upper { FOLDERS[f].to_uppercase() } else { FOLDERS[f].to_owned() };
            Query::Filter(Filter::In(name))
        }),
        1 => (0i64..7).prop_map(|d| Query::Filter(Filter::After(1_600_000_000 + d * 86_400))),
        1 => (0i64..7).prop_map(|d| Query::Filter(Filter::Before(1_600_000_000 + d * 86_400))),
        1 => prop::sample::select(vec![
            Filter::HasAttachment,
            Filter::IsUnread,
            Filter::IsRead,
            Filter::IsFlagged,
        ])
        .prop_map(Query::Filter),
        1 => Just(Query::Term(Term::word("!!!"))),
        1 => prop::sample::select(ContentKind::ALL.to_vec())
            .prop_map(|k| Query::Filter(Filter::Kind(k))),
        1 => Just(Query::Term(Term::word("notes").in_field(Field::Filename))),
    ]
}

// ---------------------------------------------------------------------------
// The model: each record's fields as plain token lists, the query evaluated
// over them recursively, straight from the README's table.

/// The normalised tokens of a text.
fn toks(text: &str) -> Vec<String> {
    clean::tokens(&clean::normalise(text))
        .map(|(_, t)| t.to_owned())
        .collect()
}

/// Whether `want` occurs in `have` as consecutive tokens, the last a prefix
/// unless `phrase`.
fn occurs(have: &[String], want: &[String], phrase: bool) -> bool {
    want.len() <= have.len()
        && (0..=have.len() - want.len()).any(|start| {
            want.iter().enumerate().all(|(j, w)| {
                let h = &have[start + j];
                if j + 1 == want.len() && !phrase {
                    h.starts_with(w.as_str())
                } else {
                    h == w
                }
            })
        })
}

fn model(q: &Query, r: &Record) -> bool {
    match q {
        Query::And(qs) => qs.iter().all(|q| model(q, r)),
        Query::Or(qs) => qs.iter().any(|q| model(q, r)),
        Query::Not(q) => !model(q, r),
        Query::Term(t) => {
            let want = toks(&t.text);
            want.is_empty()
                || Field::ALL
                    .into_iter()
                    .filter(|f| t.field.is_none_or(|g| g == *f))
                    .any(|f| occurs(&toks(r.field(f)), &want, t.phrase))
        }
        Query::Filter(f) => match f {
            Filter::In(name) | Filter::Label(name) => {
                r.places().any(|p| p.to_lowercase() == name.to_lowercase())
            }
            Filter::After(t) => r.timestamp.is_some_and(|ts| ts >= *t),
            Filter::Before(t) => r.timestamp.is_some_and(|ts| ts < *t),
            Filter::HasAttachment => r.flags.contains(Flags::HAS_ATTACHMENT),
            Filter::IsUnread => r.flags.contains(Flags::UNREAD),
            Filter::IsRead => !r.flags.contains(Flags::UNREAD),
            Filter::IsFlagged => r.flags.contains(Flags::FLAGGED),
            Filter::Kind(k) => r.kind == *k,
        },
    }
}

fn query() -> impl Strategy<Value = Query> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Query::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Query::Or),
            inner.prop_map(|q| Query::Not(Box::new(q))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random mailboxes of every kind (mail, chat, events, files), random
    /// queries from the whole language: both modes return the same ids in
    /// the same order, and the ids the model finds.
    #[test]
    fn both_modes_agree_on_random_mailboxes(
        msgs in prop::collection::vec(msg(), 1..60),
        queries in prop::collection::vec(query(), 24),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let index = build(&tmp.path().join("i"), &msgs);
        let records = records(&msgs);
        for q in &queries {
            same_in_both_modes(&index, q);
            let got: BTreeSet<String> = ids(&index, q, SearchMode::Forward, Order::Newest)
                .unwrap()
                .into_iter()
                .collect();
            let want: BTreeSet<String> = records
                .iter()
                .filter(|r| model(q, r))
                .map(|r| r.id.clone())
                .collect();
            prop_assert_eq!(got, want, "query {}", q);
        }
    }
}

// ---------------------------------------------------------------------------
// Real mail.

/// Queries of every kind on the SpamAssassin corpus.
const BATTERY: &[&str] = &[
    "bayesian",
    "garrigues",
    "the",
    "email",
    "a",
    "t",
    "th",
    "re",
    "\"mailing list\"",
    "\"click here\"",
    "\"the\"",
    "free money",
    "linux kernel patch",
    "viagra OR mortgage OR casino",
    "free -money",
    "-the",
    "-a",
    "from:garrigues",
    "from:a",
    "to:zzzz",
    "subject:sequences",
    "subject:\"re: new\"",
    "body:perl",
    "filename:pdf",
    "filename:a",
    "in:spam-2",
    "in:SPAM-2 perl",
    "after:2002-10-01",
    "before:2002-08-01",
    "after:2002-09-01 before:2002-09-15 linux",
    "is:unread",
    "is:read",
    "has:attachment",
    "has:attachment -in:spam",
    "café",
    "免费",
    "Straße",
    "o'reilly",
    "o'rei",
    "apt-get",
    "10:30",
    "e-mail",
    "(free OR cheap) (money OR cash) -unsubscribe",
    "-(a OR the)",
    "\"it is\" OR \"is it\"",
    "!!!",
    "python -snake (from:guido OR subject:python)",
];

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn spamassassin_battery_agrees() {
    let Some(corpus) = corpora("spamassassin") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(&tmp.path().join("i"), &cred(), config()).unwrap();
    let mut src = Tree::open(&corpus).unwrap();
    index
        .index(&mut src, &PassThrough::default(), &Default::default())
        .unwrap();
    index.wait_for_inverted().unwrap();
    let mut nonempty = 0;
    for q in BATTERY {
        let parsed = sealdex::query::parse(q).unwrap();
        same_in_both_modes(&index, &parsed);
        nonempty += usize::from(
            !ids(&index, &parsed, SearchMode::Inverted, Order::Newest)
                .unwrap()
                .is_empty(),
        );
    }
    // The battery means something: most queries find mail.
    assert!(nonempty >= BATTERY.len() - 6, "{nonempty}");
    // Reopened, the index is current at once: nothing to catch up.
    drop(index);
    let index = Index::open(&tmp.path().join("i"), &cred(), config()).unwrap();
    assert!(matches!(
        index.inverted_status().unwrap(),
        InvertedStatus::Current {
            documents: 6046,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------
// Damage: tampering, truncation, replay.

fn fixed_mailbox(n: usize, seed: usize) -> Vec<Msg> {
    (0..n)
        .map(|i| {
            let k = i * 7919 + seed * 104_729;
            Msg {
                from: k % NAMES.len(),
                to: (k / 3) % NAMES.len(),
                subject: (0..3).map(|j| (k / (j + 1) + j) % WORDS.len()).collect(),
                body: (0..40)
                    .map(|j| (k * (j + 3) / 7 + j * j) % WORDS.len())
                    .collect(),
                html: k.is_multiple_of(3),
                attachment: k.is_multiple_of(5).then_some(k % WORDS.len()),
                date: (!k.is_multiple_of(11)).then_some(1_600_000_000 + (k % 97) as i64 * 3600),
                folder: k % FOLDERS.len(),
                flags: (k % 8) as u8,
                kind: 0,
                location: Vec::new(),
            }
        })
        .collect()
}

const DAMAGE_QUERIES: &[&str] = &[
    "report",
    "a",
    "\"quarterly alpha\"",
    "from:alice -in:work",
    "after:2020-09-14 meet",
    "-the",
];

/// After damage: `Auto` is always right (the inverted index is used only
/// when it reads back authentic), a forced inverted search is right or a
/// clear error, and after `wait_for_inverted` (a rebuild or a catch-up from
/// the store) the inverted index is right again.
fn check_after_damage(dir: &Path, what: &str) {
    let index = match Index::open(dir, &cred(), config()) {
        Ok(i) => i,
        Err(e) => panic!("{what}: the store is intact, so the index must open: {e}"),
    };
    for q in DAMAGE_QUERIES {
        let q = sealdex::query::parse(q).unwrap();
        let fwd = ids(&index, &q, SearchMode::Forward, Order::Newest).unwrap();
        let auto = ids(&index, &q, SearchMode::Auto, Order::Newest).unwrap();
        assert_eq!(fwd, auto, "{what}: {q} in auto mode");
        match ids(&index, &q, SearchMode::Inverted, Order::Newest) {
            Ok(inv) => assert_eq!(fwd, inv, "{what}: {q} in inverted mode"),
            Err(Error::Inverted(_)) => {}
            Err(e) => panic!("{what}: {q}: unexpected error {e}"),
        }
    }
    index
        .wait_for_inverted()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    for q in DAMAGE_QUERIES {
        let q = sealdex::query::parse(q).unwrap();
        same_in_both_modes(&index, &q);
    }
}

fn inverted_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("inverted"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sdx"))
        .collect();
    v.sort();
    v
}

#[test]
fn tampering_truncation_and_replay_never_give_wrong_results() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let older = tmp.path().join("older");
    {
        let index = build(&pristine, &fixed_mailbox(400, 1));
        drop(index);
        copy_dir(&pristine, &older);
        // More mail: new segments, a new meta.json.
        let index = Index::open(&pristine, &cred(), config()).unwrap();
        let mut src = common::Mem {
            name: "mem".into(),
            messages: fixed_mailbox(200, 2)
                .iter()
                .enumerate()
                .map(|(i, m)| raw(1000 + i, m))
                .collect(),
        };
        index
            .index(&mut src, &PassThrough::default(), &Default::default())
            .unwrap();
    }
    let work = tmp.path().join("work");
    let reset = || {
        let _ = std::fs::remove_dir_all(&work);
        copy_dir(&pristine, &work);
    };
    let files = inverted_files(&pristine);
    assert!(files.len() >= 4, "{files:?}");
    let name = |p: &Path| p.file_name().unwrap().to_owned();

    // A flipped byte in each file, one at a time.
    for f in &files {
        reset();
        let p = work.join("inverted").join(name(f));
        let mut bytes = std::fs::read(&p).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        std::fs::write(&p, bytes).unwrap();
        check_after_damage(&work, &format!("flipped byte in {}", p.display()));
    }

    // Each file truncated: by a few bytes, and to half.
    for f in &files {
        for keep in [|n: usize| n - 7, |n: usize| n / 2] {
            reset();
            let p = work.join("inverted").join(name(f));
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..keep(bytes.len())]).unwrap();
            check_after_damage(&work, &format!("truncated {}", p.display()));
        }
    }

    // Two files' contents swapped.
    reset();
    let (a, b) = (
        work.join("inverted").join(name(&files[0])),
        work.join("inverted").join(name(&files[1])),
    );
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, bb).unwrap();
    std::fs::write(&b, ba).unwrap();
    check_after_damage(&work, "two files swapped");

    // Two chunks of the largest file swapped (chunks are 64 KiB + 29 bytes).
    let largest = files
        .iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    const SEALED_CHUNK: usize = 65536 + 29;
    if std::fs::metadata(largest).unwrap().len() as usize > 2 * SEALED_CHUNK {
        reset();
        let p = work.join("inverted").join(name(largest));
        let mut bytes = std::fs::read(&p).unwrap();
        let (first, rest) = bytes.split_at_mut(SEALED_CHUNK);
        first.swap_with_slice(&mut rest[..SEALED_CHUNK]);
        std::fs::write(&p, bytes).unwrap();
        check_after_damage(&work, "two chunks swapped");
    }

    // Older copies of files (meta.json and friends) restored one at a time,
    // then the whole older inverted directory.
    let old_files = inverted_files(&older);
    for f in &old_files {
        let current = pristine.join("inverted").join(name(f));
        if current.exists() && std::fs::read(&current).unwrap() != std::fs::read(f).unwrap() {
            reset();
            std::fs::copy(f, work.join("inverted").join(name(f))).unwrap();
            check_after_damage(&work, &format!("older copy of {}", current.display()));
        }
    }
    reset();
    std::fs::remove_dir_all(work.join("inverted")).unwrap();
    copy_dir(&older.join("inverted"), &work.join("inverted"));
    check_after_damage(&work, "the whole older inverted index");

    // Deleted altogether: rebuilt.
    reset();
    std::fs::remove_dir_all(work.join("inverted")).unwrap();
    check_after_damage(&work, "inverted index deleted");
}

// ---------------------------------------------------------------------------
// Crash.

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn sigkill_during_indexing_leaves_a_consistent_inverted_index() {
    let Some(corpus) = corpora("spamassassin") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    // Creates the index; an empty folder is "no mail found" (exit 2).
    let created = run(sealdex(&dir).arg("index").arg(&empty));
    assert_eq!(created.status.code(), Some(2));
    let queries = ["free", "a", "\"click here\"", "-the", "in:spam-2 perl"];
    // Exit 0 (found) and 1 (nothing found yet) are both answers.
    let answer = |args: &[&str]| {
        let out = run(sealdex(&dir).args(args));
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}");
        out
    };
    let compare = |what: &str| {
        for q in queries {
            let fwd = answer(&["search", "--all", "--mode", "forward", q]);
            let inv = answer(&["search", "--all", "--mode", "inverted", q]);
            assert_eq!(
                String::from_utf8_lossy(&fwd.stdout),
                String::from_utf8_lossy(&inv.stdout),
                "{what}: {q}"
            );
        }
    };
    for delay_ms in [300u64, 900] {
        let mut child = sealdex(&dir)
            .args(["index", "--batch", "64"])
            .arg(&corpus)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        compare(&format!("after a kill at {delay_ms} ms"));
    }
    ok(sealdex(&dir).arg("index").arg(&corpus));
    compare("after the final run");
}

// ---------------------------------------------------------------------------
// Incremental changes.

/// Added, edited, moved and deleted messages reach the inverted index with
/// the store, in the same open index and after reopening.
#[test]
fn incremental_changes_keep_both_modes_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let mail = tmp.path().join("mail");
    let write = |name: &str, i: usize, m: &Msg| {
        let p = mail.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, raw(i, m).bytes).unwrap();
    };
    let msgs = fixed_mailbox(120, 3);
    for (i, m) in msgs.iter().enumerate() {
        write(&format!("inbox/m{i}.eml"), i, m);
    }
    let dir = tmp.path().join("idx");
    let index = Index::create(&dir, &cred(), config()).unwrap();
    let run = |index: &Index| {
        let mut src = Tree::open(&mail).unwrap();
        index
            .index(&mut src, &PassThrough::default(), &Default::default())
            .unwrap();
    };
    run(&index);
    let check = |index: &Index, what: &str| {
        assert!(
            matches!(
                index.inverted_status().unwrap(),
                InvertedStatus::Current { .. }
            ),
            "{what}: current after the run"
        );
        for q in DAMAGE_QUERIES
            .iter()
            .chain(["in:inbox", "in:archive zebra"].iter())
        {
            let q = sealdex::query::parse(q).unwrap();
            same_in_both_modes(index, &q);
        }
    };
    check(&index, "first run");
    // Edit ten, move ten to another folder, delete ten, add ten.
    let other = fixed_mailbox(40, 4);
    for i in 0..10 {
        write(&format!("inbox/m{i}.eml"), i, &other[i]);
        std::fs::create_dir_all(mail.join("archive")).unwrap();
        std::fs::rename(
            mail.join(format!("inbox/m{}.eml", 10 + i)),
            mail.join(format!("archive/m{}.eml", 10 + i)),
        )
        .unwrap();
        std::fs::remove_file(mail.join(format!("inbox/m{}.eml", 20 + i))).unwrap();
        write(&format!("inbox/new{i}.eml"), 500 + i, &other[10 + i]);
    }
    run(&index);
    check(&index, "after changes");
    drop(index);
    let index = Index::open(&dir, &cred(), config()).unwrap();
    check(&index, "reopened");
}
