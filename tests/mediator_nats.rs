//! Two relay nodes (the real binary) over one NATS JetStream server, with a
//! group's devices split between them: reflections cross nodes in order,
//! what a device did not acknowledge is delivered again when it reconnects
//! to the other node, the transaction lock (and its TTL) and the leader
//! lease are shared, groups stay apart, and when one node is killed with
//! SIGKILL its devices move to the other and lose nothing. A second test
//! reads every file the JetStream server wrote and finds no plaintext and
//! no key.
//!
//! Needs a NATS server with JetStream: `.ci/run` starts one on 127.0.0.1 and
//! sets `SEALDEX_NATS=nats://127.0.0.1:PORT` and `SEALDEX_NATS_STORE` (its
//! store directory). A plain `cargo test` lists these as ignored with that
//! reason; asked for without a server, they fail.
#![cfg(feature = "mediator")]

mod mediator_util;

use std::sync::Arc;
use std::time::Duration;

use mediator_util::*;
use sealdex::sync::SyncError;
use sealdex::sync::client::{Device, DeviceConfig, Event};
use sealdex::sync::keys::{GroupKey, GroupKeys};
use sealdex::sync::protocol::device::Refusal;
use sealdex::sync::relay::nats_store::{LEADER_BUCKET, QUEUE_STREAM};

fn env(name: &str, what: &str) -> String {
    match std::env::var(name) {
        Ok(u) if !u.is_empty() => u,
        _ => panic!("set {name} to {what} (.ci/run starts a nats-server -js on loopback)"),
    }
}

fn nats_url() -> String {
    env(
        "SEALDEX_NATS",
        "nats://127.0.0.1:PORT, a NATS server with JetStream on loopback",
    )
}

/// The lease: (device id, "node:connection" it was taken on), read from the
/// engine itself.
async fn leader(nats: &str, keys: &GroupKeys) -> Option<(u64, String)> {
    let client = async_nats::connect(nats).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let kv = js.get_key_value(LEADER_BUCKET).await.ok()?;
    let e = kv.entry(keys.group_id().to_hex()).await.unwrap()?;
    if e.operation != async_nats::jetstream::kv::Operation::Put {
        return None;
    }
    let v = String::from_utf8(e.value.to_vec()).unwrap();
    let (dev, at) = v.split_once(':')?;
    Some((u64::from_str_radix(dev, 16).ok()?, at.to_owned()))
}

/// How many entries the engine holds in a device's queue.
async fn queued(nats: &str, keys: &GroupKeys, device_id: u64) -> u64 {
    use futures_util::StreamExt;
    let client = async_nats::connect(nats).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(QUEUE_STREAM).await.unwrap();
    let subject = format!("sdx.q.{}.{device_id:016x}", keys.group_id().to_hex());
    let mut info = stream.info_with_subjects(&subject).await.unwrap();
    let mut n = 0;
    while let Some(s) = info.next().await {
        let (name, count) = s.unwrap();
        if name == subject {
            n += count as u64;
        }
    }
    n
}

async fn connect(url: &str, keys: &Arc<GroupKeys>, id: u64, d: Option<Device>) -> Device {
    let mut cfg = DeviceConfig::new(url, keys.clone(), id);
    cfg.info = format!("device {id}").into_bytes();
    if let Some(d) = d {
        cfg.guard = d.close().await.unwrap();
    }
    tokio::time::timeout(STEP, Device::connect(cfg))
        .await
        .unwrap()
        .unwrap()
}

/// The queue length the relay announced at (re)connect.
async fn announced_queue(d: &mut Device) -> u32 {
    loop {
        let ev = tokio::time::timeout(STEP, d.next_event())
            .await
            .expect("an event in time")
            .expect("client running");
        if let Event::Connected(info) = ev {
            return info.reflection_queue_length;
        }
    }
}

/// Reflected envelopes, not acknowledged: the device "crashes" before
/// processing them.
async fn receive_unacked(d: &mut Device, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < n {
        if let Event::Reflected { plaintext, .. } = next(d).await {
            out.push(plaintext.to_vec());
        }
    }
    out
}

/// Receives `n` new envelopes and acknowledges them, skipping entries the
/// device refuses as replays: what it had acknowledged on a node that died
/// before purging them comes again (at most `PURGE_EVERY` per device), and
/// is not applied twice.
async fn receive_new(d: &mut Device, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < n {
        match next(d).await {
            Event::Reflected {
                reflected_id,
                plaintext,
                ..
            } => {
                d.ack(reflected_id).await.unwrap();
                out.push(plaintext.to_vec());
            }
            Event::Refused { reason, .. } => assert_eq!(reason, Refusal::Replayed),
            _ => {}
        }
    }
    out
}

fn texts(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix} {i}").into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SEALDEX_NATS (a NATS server with JetStream on loopback; .ci/run starts one)"]
async fn two_nodes_over_nats_share_queues_locks_and_the_lease() {
    let nats = nats_url();
    let (mut node1, url1) = spawn_mediator(&["--listen", "127.0.0.1:0", "--queue", &nats]);
    let (_node2, url2) = spawn_mediator(&["--listen", "127.0.0.1:0", "--queue", &nats]);
    let k = Arc::new(GroupKeys::derive(&GroupKey::random().unwrap()).unwrap());
    let a = connect(&url1, &k, 1, None).await;
    let mut b = connect(&url1, &k, 2, None).await;
    let mut c = connect(&url2, &k, 3, None).await;
    let mut d = connect(&url2, &k, 4, None).await;
    // Another group, one device on each node: it sees nothing of the first.
    let other = Arc::new(GroupKeys::derive(&GroupKey::random().unwrap()).unwrap());
    let mut x = connect(&url1, &other, 1, None).await;
    let y = connect(&url2, &other, 2, None).await;

    // Reflections cross nodes, in order, once each.
    let first = texts("op", 10);
    for p in &first {
        a.reflect(p).unwrap().await.unwrap();
    }
    assert_eq!(receive(&mut b, 10).await, first);
    assert_eq!(receive(&mut c, 10).await, first);
    assert_eq!(receive(&mut d, 10).await, first);
    y.reflect(b"other group").unwrap().await.unwrap();
    assert_eq!(receive(&mut x, 1).await, vec![b"other group".to_vec()]);

    // One lock for the group, whichever node a device is on.
    one_lock_for_the_group(&mut b, &mut c).await;

    // Exactly one leader: the lease names one of the four devices.
    let (server, keys) = (&nats, &k);
    let lead = poll(
        100,
        Duration::from_millis(100),
        move || leader(server, keys),
        Option::is_some,
    )
    .await;
    let (lead, lead_at) = lead.expect("a leader within 10 s");
    assert!((1..=4).contains(&lead));

    // d (node 2) receives three envelopes and dies before acknowledging
    // them; on node 1 it is told they wait and gets them again.
    let pending = texts("pending", 3);
    for p in &pending {
        a.reflect(p).unwrap().await.unwrap();
    }
    assert_eq!(receive(&mut b, 3).await, pending);
    assert_eq!(receive(&mut c, 3).await, pending);
    assert_eq!(receive_unacked(&mut d, 3).await, pending);
    d.close().await.unwrap();
    // Node 2 purges what d acknowledged when it sees d go: three remain.
    let left = poll(
        100,
        Duration::from_millis(100),
        move || queued(server, keys, 4),
        |n| *n == 3,
    )
    .await;
    assert_eq!(left, 3, "the acknowledged entries were not purged");
    let mut d = connect(&url1, &k, 4, None).await;
    assert_eq!(announced_queue(&mut d).await, 3);
    assert_eq!(receive(&mut d, 3).await, pending);
    // The acknowledgements have reached the relays (a round trip after them).
    for dev in [&a, &b, &c, &d] {
        barrier(dev).await;
    }

    // Node 1 dies. Its devices move to node 2 and catch up.
    node1.kill();
    let a = connect(&url2, &k, 1, Some(a)).await;
    let mut b = connect(&url2, &k, 2, Some(b)).await;
    let mut d = connect(&url2, &k, 4, Some(d)).await;
    let second = texts("after", 5);
    for p in &second {
        c.reflect(p).unwrap().await.unwrap();
    }
    assert_eq!(receive_new(&mut b, 5).await, second);
    assert_eq!(receive_new(&mut d, 5).await, second);
    a.reflect(b"back").unwrap().await.unwrap();
    assert_eq!(receive_new(&mut c, 1).await, vec![b"back".to_vec()]);

    // Still exactly one leader, held on a live connection: if the leader was
    // on node 1 its lease lapses within 4 s and a device on node 2 takes it.
    let mut now_lead = None;
    for _ in 0..150 {
        now_lead = leader(&nats, &k).await;
        let moved = now_lead
            .as_ref()
            .is_some_and(|(_, at)| *at != lead_at || !matches!(lead, 1 | 2 | 4));
        if moved {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (now, now_at) = now_lead.expect("a leader after the failover");
    assert!((1..=4).contains(&now));
    if matches!(lead, 1 | 2 | 4) {
        // Its connection (on node 1, or d's first one) is gone.
        assert_ne!(now_at, lead_at, "the dead connection's lease must lapse");
    }

    // A transaction whose holder goes silent ends with its TTL: another
    // device takes the lock once it has lapsed.
    c.begin_transaction(b"short", Duration::from_secs(1))
        .await
        .unwrap();
    let mut taken = false;
    for _ in 0..50 {
        match b.begin_transaction(b"next", Duration::from_secs(30)).await {
            Ok(()) => {
                taken = true;
                break;
            }
            Err(SyncError::TransactionRejected { holder, .. }) => {
                assert_eq!(holder, 3);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("begin failed: {e}"),
        }
    }
    assert!(taken, "the lapsed lock was never free");
    b.commit_transaction().await.unwrap();
    drop((a, b, c, d, x, y));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SEALDEX_NATS and SEALDEX_NATS_STORE (a NATS server with JetStream on loopback and its store directory; .ci/run starts one)"]
async fn nothing_the_engine_stores_is_plaintext_or_a_key() {
    let nats = nats_url();
    let store = std::path::PathBuf::from(env(
        "SEALDEX_NATS_STORE",
        "the JetStream store directory of that server",
    ));
    let (_node, url) = spawn_mediator(&["--listen", "127.0.0.1:0", "--queue", &nats]);
    let secret = b"ACCOUNT-SECRET-c0ffee never leaves the device".to_vec();
    let dgk = GroupKey::derive_from_account_secret(&secret).unwrap();
    let k = Arc::new(GroupKeys::derive(&dgk).unwrap());
    let a = connect(&url, &k, 11, None).await;
    let mut b = connect(&url, &k, 12, None).await;
    let offline = connect(&url, &k, 13, None).await;
    offline.close().await.unwrap();
    let canary = b"CANARY-plaintext-7f3e9a";
    for _ in 0..5 {
        a.reflect(canary).unwrap().await.unwrap();
    }
    assert_eq!(receive(&mut b, 5).await.len(), 5);
    // The offline device's queue still holds the five (sealed) copies; wait
    // until the server has written them out (its file store writes behind).
    let group = k.group_id().to_hex().into_bytes();
    let mut files = Vec::new();
    for _ in 0..100 {
        files = all_files(&store);
        if files.iter().any(|(_, b)| contains(b, &group)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        files.iter().any(|(_, b)| contains(b, &group)),
        "the store directory holds none of this group's records: is it the server's?"
    );
    for (path, bytes) in &files {
        for (what, needle) in [
            ("the plaintext canary", &canary[..]),
            ("the account secret", &secret[..]),
            ("the group key", &dgk.expose()[..]),
            ("the reflect key", &k.reflect_key().expose()[..]),
            ("the path key", &k.path_key_bytes()[..]),
            ("a device info", b"device 1"),
        ] {
            assert!(!contains(bytes, needle), "{} holds {what}", path.display());
        }
    }
    drop((a, b));
}
