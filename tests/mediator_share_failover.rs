//! The leader is killed with SIGKILL mid-crawl (issue 15): a device
//! running `sealdex sync` as its own process leads and crawls a Maildir;
//! two in-process devices follow on the real relay; the leader's process is
//! killed; one of the others is promoted, resumes the crawl from the last
//! checkpoint the leader reflected, and completes it. The final set is
//! exact, nothing is doubled, and the new leader fetched only what the old
//! one had not reflected.
#![cfg(feature = "mediator")]

mod common;
use common::Counting;
mod mediator_util;

/// Bounded waits on a sharing handle.
trait WaitWithin {
    async fn wait_for_within(
        &mut self,
        f: impl Fn(&sealdex::sync::share::Status) -> bool,
    ) -> sealdex::sync::SyncResult<sealdex::sync::share::Status>;
}

impl WaitWithin for sealdex::sync::share::SyncHandle {
    async fn wait_for_within(
        &mut self,
        f: impl Fn(&sealdex::sync::share::Status) -> bool,
    ) -> sealdex::sync::SyncResult<sealdex::sync::share::Status> {
        let status = self.status();
        match tokio::time::timeout(mediator_util::STEP * 3, self.wait_for(f)).await {
            Ok(r) => r,
            Err(_) => panic!(
                "timed out waiting; status at the start {status:?}, now {:?}",
                self.status()
            ),
        }
    }
}

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mediator_util::*;
use sealdex::pipeline::IndexOptions;
use sealdex::sync::envelope::ReplayGuard;
use sealdex::sync::share::{self, Bootstrap, Role, ShareConfig};
use sealdex::{Credential, Index, IndexConfig, KdfParams, SearchOptions};

const N: usize = 3000;

fn maildir(dir: &Path) {
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for i in 0..N {
        std::fs::write(
            dir.join(format!("cur/{i}.F.host:2,S")),
            format!(
                "From: a{} <a@example.org>\r\nSubject: failover {i}\r\n\
                 Date: Tue, 1 Oct 2024 10:00:00 +0000\r\n\r\nkilo body {i}\r\n",
                i % 13
            ),
        )
        .unwrap();
    }
}

fn config() -> IndexConfig {
    IndexConfig {
        kdf: KdfParams::insecure_fast(),
        ..IndexConfig::default()
    }
}

fn subjects(index: &Index) -> Vec<String> {
    let mut s: Vec<String> = index
        .store()
        .records()
        .map(|r| r.unwrap().subject)
        .collect();
    s.sort();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_mid_crawl_is_replaced_and_nothing_is_lost_or_doubled() {
    let tmp = tempfile::tempdir().unwrap();
    let url = relay(&tmp.path().join("relay"), 16).await;
    let mail = tmp.path().join("mail");
    maildir(&mail);
    let key_file = tmp.path().join("group.key");
    let seed = 50u8;
    std::fs::write(&key_file, [seed; 32]).unwrap();

    // The leader: `sealdex sync` in its own process, on an index made
    // here with a fast KDF (its parameters are stored with it).
    let a_dir = tmp.path().join("a");
    drop(Index::create(&a_dir, &Credential::passphrase("pw"), config()).unwrap());
    let mut leader = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_sealdex"))
            .args(["--dir"])
            .arg(&a_dir)
            .args(["sync", "--mediator", &url, "--group-key"])
            .arg(&key_file)
            .arg(&mail)
            .args(["--batch", "25"])
            .env("SEALDEX_PASSPHRASE", "pw")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(leader.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "sealdex sync ended");
        if line.starts_with("role leader") {
            break;
        }
    }

    // Two followers in this process, with the same mailbox configured.
    let mut devs = Vec::new();
    for (name, id) in [("b", 0xb_u64), ("c", 0xc)] {
        let dir = tmp.path().join(name);
        let index = Arc::new(Index::create(&dir, &Credential::passphrase("pw"), config()).unwrap());
        let fetched = Arc::new(AtomicUsize::new(0));
        let mut cfg = ShareConfig::new(&url, keys(seed), id);
        cfg.guard = ReplayGuard::open(&dir.join("sync-nonces")).unwrap();
        cfg.sources.push(Box::new(Counting {
            inner: sealdex::backends::open_path(&mail).unwrap(),
            fetched: Arc::clone(&fetched),
        }));
        cfg.options = IndexOptions {
            batch_messages: 25,
            ..IndexOptions::default()
        };
        let handle = share::start(Arc::clone(&index), cfg).await.unwrap();
        devs.push((index, handle, fetched));
    }
    // Both have their snapshot and follow the live crawl.
    for (_, h, _) in devs.iter_mut() {
        h.wait_for_within(|s| matches!(s.bootstrap, Bootstrap::Done { .. }))
            .await
            .unwrap();
    }
    let index_b = Arc::clone(&devs[0].0);
    let deadline = tokio::time::Instant::now() + STEP;
    while index_b.len() < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader reflects nothing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    leader.kill();
    let had = index_b.len();
    assert!(had < N, "the crawl finished before the kill ({had})");

    // One of the followers is promoted and completes the crawl.
    let winner = tokio::time::timeout(STEP, async {
        loop {
            for (i, (_, h, _)) in devs.iter().enumerate() {
                if h.status().role == Role::Leader {
                    return i;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a follower is promoted");
    let st = devs[winner]
        .1
        .wait_for_within(|s| s.role == Role::Leader && s.idle)
        .await
        .unwrap();
    assert!(st.ingested);
    let other = 1 - winner;
    let expected: Vec<String> = {
        let mut v: Vec<String> = (0..N).map(|i| format!("failover {i}")).collect();
        v.sort();
        v
    };
    let w = &devs[winner].0;
    assert_eq!(subjects(w), expected, "exact set on the new leader");
    assert_eq!(
        w.search("kilo", &SearchOptions::default()).unwrap().total,
        N,
        "no duplicates in the search"
    );
    // Resumed from the reflected checkpoint: not a crawl from the start.
    let fetched = devs[winner].2.load(Ordering::SeqCst);
    eprintln!("killed with {had} of {N} reflected; the new leader fetched {fetched}");
    assert!(
        fetched <= N - had + 2 * 25 + 25,
        "the new leader fetched {fetched} of {N} though {had} had arrived"
    );
    assert_eq!(devs[other].2.load(Ordering::SeqCst), 0);
    // The other follower ends with the same set.
    let o = Arc::clone(&devs[other].0);
    let deadline = tokio::time::Instant::now() + STEP;
    while o.len() != N {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} records",
            o.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(subjects(&o), expected);
    for (_, h, _) in devs {
        h.stop().await.unwrap();
    }
}
