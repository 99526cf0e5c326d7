//! A chat client that pushes its messages into sealdex as they arrive, as
//! Element's Seshat is fed by its client: no `Source`, no crawl. Messages
//! come in on a "sync" thread, the user edits and deletes some and reads a
//! room, and a search runs from the UI thread meanwhile.
//!
//! ```sh
//! cargo run --release --example chat_client
//! ```
//!
//! Each `apply` is durable when it returns and searchable at once, in both
//! search modes (see `Index::apply`).

use std::sync::Arc;
use std::time::Instant;

use sealdex::ops::{Op, Patch};
use sealdex::{Credential, Index, IndexConfig, Metadata, SearchOptions, SecretKey};

const ROOMS: [&str; 3] = [
    "!team:example.org",
    "!family:example.org",
    "!book-club:example.org",
];
const SENDERS: [&str; 4] = ["Alice", "Bob", "Chiara", "Dmitri"];
const LINES: [&str; 6] = [
    "shall we move the standup to 10?",
    "the quarterly report is in the drive",
    "dinner on Sunday at grandma's",
    "chapter 7 was a slog, honestly",
    "can someone review the deploy script",
    "photos from the hike are up",
];

/// A message as the chat server delivered it: its room, event id and the
/// server's ordering of the event (used as the op's version, so a replayed
/// or late delivery never undoes a newer edit). The sync layer hands it
/// over as one line of sealdex's JSON Lines chat format
/// ([`sealdex::jsonl`], the format `sealdex import` reads).
fn message(room: &str, n: u64, server_seq: u64) -> Op {
    let sent = chrono::DateTime::from_timestamp(1_733_500_000 + n as i64 * 60, 0)
        .expect("a time in range")
        .to_rfc3339();
    let line = serde_json::json!({
        "op": "upsert",
        "id": format!("{room}/$event{n}"),
        "kind": "chat",
        "version": server_seq,
        "date": sent,
        "from": SENDERS[n as usize % SENDERS.len()],
        "body": LINES[n as usize % LINES.len()],
        // A chat message's conversation is its folder: `in:` finds it.
        "folders": [room],
    });
    sealdex::jsonl::parse_line(SOURCE, &line.to_string()).expect("a well-formed line")
}

/// The source the chat's records belong to.
const SOURCE: &str = "matrix:@me:example.org";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // The app derives its key from the account's secret; a random one here.
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    let index = Arc::new(Index::create(
        &dir.path().join("index"),
        &Credential::AppKey(SecretKey::from_bytes(key)),
        IndexConfig::default(),
    )?);

    // The sync thread: the server delivers 3,000 messages in batches of
    // 100 (one `apply` per sync response), in server order.
    let sync = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || -> sealdex::Result<()> {
            let mut seq = 0;
            for batch in 0..30u64 {
                let ops = (0..100u64)
                    .map(|i| {
                        seq += 1;
                        let n = batch * 100 + i;
                        message(ROOMS[n as usize % ROOMS.len()], n, seq)
                    })
                    .collect();
                index.apply(ops)?;
            }
            Ok(())
        })
    };

    // Meanwhile the UI searches: every answer reflects what has arrived.
    let started = Instant::now();
    let mut searches = 0;
    while !sync.is_finished() {
        let found = index.search("report", &SearchOptions::default())?;
        searches += 1;
        assert!(found.total <= 500);
    }
    sync.join().map_err(|_| "the sync thread panicked")??;
    println!(
        "synced 3000 messages; {searches} searches ran meanwhile ({:.0?})",
        started.elapsed()
    );

    // An edit arrives (a newer server event replaces the message), then a
    // stale copy of the original is redelivered: it changes nothing.
    let team = ROOMS[0];
    let mut edited = message(team, 0, 10_000);
    if let Op::Upsert(u) = &mut edited {
        std::sync::Arc::make_mut(&mut u.record).body =
            "standup moved to 10:30, see the report".into();
    }
    index.apply(vec![edited])?;
    let stale = index.apply(vec![message(team, 0, 1)])?;
    assert_eq!(stale.skipped, 1);

    // The user reads the room: a patch, nothing refetched or re-cleaned.
    index.apply(vec![Op::Patch(Patch {
        source: SOURCE.into(),
        id: format!("{team}/$event3"),
        version: 10_001,
        set: Metadata {
            unread: Some(false),
            flagged: Some(true),
            ..Metadata::default()
        },
    })])?;

    // A message is redacted (deleted) in the family room.
    index.apply(vec![Op::delete(SOURCE, format!("{}/$event1", ROOMS[1]))])?;

    let show = |q: &str| -> sealdex::Result<()> {
        let page = index.search(q, &SearchOptions::default())?;
        println!("{q:>32}: {} hits", page.total);
        for hit in page.hits.iter().take(2) {
            println!("{:>34}{}: {}", "", hit.record.from, hit.record.body);
        }
        Ok(())
    };
    show("standup")?;
    show(&format!("in:{team} report"))?;
    show("is:flagged")?;
    show("kind:chat from:chiara deploy")?;
    assert_eq!(
        index.search("standup", &SearchOptions::default())?.total,
        500
    );
    assert!(
        index
            .get_by_id(SOURCE, &format!("{}/$event1", ROOMS[1]))?
            .is_none()
    );
    Ok(())
}
