//! Two relay nodes (the real binary) over one Redis, with a group's devices
//! split between them: reflections cross nodes, the transaction lock and
//! the leader lease are shared, and when one node is killed with SIGKILL its
//! devices move to the other and lose nothing.
//!
//! Needs a Redis server: `.ci/run` starts one on 127.0.0.1 and sets
//! `SEALDEX_REDIS=redis://127.0.0.1:PORT`. A plain `cargo test` lists it as
//! ignored with that reason; asked for without a server, it fails.
#![cfg(feature = "mediator")]

mod mediator_util;

use std::sync::Arc;
use std::time::Duration;

use mediator_util::*;
use sealdex::sync::client::{Device, DeviceConfig};
use sealdex::sync::keys::{GroupKey, GroupKeys};

fn redis_url() -> String {
    match std::env::var("SEALDEX_REDIS") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "set SEALDEX_REDIS=redis://127.0.0.1:PORT to a Redis server on loopback (.ci/run starts one)"
        ),
    }
}

/// The lease: (device id, "node:connection" it was taken on).
async fn leader(redis: &str, keys: &GroupKeys) -> Option<(u64, String)> {
    let client = redis::Client::open(redis).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let v: Option<String> = redis::cmd("GET")
        .arg(format!("sdx:leader:{}", keys.group_id().to_hex()))
        .query_async(&mut c)
        .await
        .unwrap();
    let v = v?;
    let (dev, at) = v.split_once(':')?;
    Some((u64::from_str_radix(dev, 16).ok()?, at.to_owned()))
}

async fn reconnect(d: Device, url: &str, keys: &Arc<GroupKeys>) -> Device {
    let id = d.device_id();
    let guard = d.close().await.unwrap();
    let mut cfg = DeviceConfig::new(url, keys.clone(), id);
    cfg.info = format!("device {id}").into_bytes();
    cfg.guard = guard;
    tokio::time::timeout(STEP, Device::connect(cfg))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SEALDEX_REDIS (a Redis server on loopback; .ci/run starts one)"]
async fn two_nodes_over_redis_share_queues_locks_and_the_lease() {
    let redis = redis_url();
    let (mut node1, url1) = spawn_mediator(&["--listen", "127.0.0.1:0", "--queue", &redis]);
    let (_node2, url2) = spawn_mediator(&["--listen", "127.0.0.1:0", "--queue", &redis]);
    let k = Arc::new(GroupKeys::derive(&GroupKey::random().unwrap()).unwrap());
    let a = device(&url1, &k, 1).await;
    let mut b = device(&url1, &k, 2).await;
    let mut c = device(&url2, &k, 3).await;
    let mut d = device(&url2, &k, 4).await;

    // Reflections cross nodes, in order, once each.
    let first: Vec<Vec<u8>> = (0..10).map(|i| format!("op {i}").into_bytes()).collect();
    for p in &first {
        a.reflect(p).unwrap().await.unwrap();
    }
    assert_eq!(receive(&mut b, 10).await, first);
    assert_eq!(receive(&mut c, 10).await, first);
    assert_eq!(receive(&mut d, 10).await, first);

    // One lock for the group, whichever node a device is on.
    one_lock_for_the_group(&mut b, &mut c).await;

    // Exactly one leader: the lease names one of the four devices.
    let (server, keys) = (&redis, &k);
    let lead = poll(
        100,
        Duration::from_millis(100),
        move || leader(server, keys),
        Option::is_some,
    )
    .await;
    let (lead, lead_at) = lead.expect("a leader within 10 s");
    assert!((1..=4).contains(&lead));

    // Node 1 dies. Its devices move to node 2 and catch up.
    node1.kill();
    let a = reconnect(a, &url2, &k).await;
    let mut b = reconnect(b, &url2, &k).await;
    let second: Vec<Vec<u8>> = (0..5).map(|i| format!("after {i}").into_bytes()).collect();
    for p in &second {
        c.reflect(p).unwrap().await.unwrap();
    }
    assert_eq!(receive(&mut b, 5).await, second);
    assert_eq!(receive(&mut d, 5).await, second);
    a.reflect(b"back").unwrap().await.unwrap();
    assert_eq!(receive(&mut c, 1).await, vec![b"back".to_vec()]);

    // Still exactly one leader, held on a live connection: if the leader was
    // on node 1 its lease lapses within 4 s and a device on node 2 takes it.
    let mut now_lead = None;
    for _ in 0..150 {
        now_lead = leader(&redis, &k).await;
        let moved = now_lead
            .as_ref()
            .is_some_and(|(_, at)| lead > 2 || *at != lead_at);
        if moved {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (now, now_at) = now_lead.expect("a leader after the failover");
    assert!((1..=4).contains(&now));
    if lead <= 2 {
        assert_ne!(now_at, lead_at, "the dead node's lease must lapse");
    }
    drop((a, b, c, d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SEALDEX_REDIS (a Redis server on loopback; .ci/run starts one)"]
async fn concurrent_reflections_to_one_device_all_arrive_in_order() {
    let redis = redis_url();
    let (_node, url) = spawn_mediator(&["--listen", "127.0.0.1:0", "--queue", &redis]);
    let k = Arc::new(GroupKeys::derive(&GroupKey::random().unwrap()).unwrap());
    // No reconnects: a connection the relay ends on a store error would
    // otherwise come back and resend, and hide the error.
    let once = |id: u64| {
        let mut cfg = DeviceConfig::new(&url, k.clone(), id);
        cfg.reconnect = false;
        async move {
            tokio::time::timeout(STEP, Device::connect(cfg))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let a = once(1).await;
    let b = once(2).await;
    let mut c = once(3).await;
    // Two senders at once: their positions interleave in the one counter,
    // and each queue must still take every envelope (Redis refuses a
    // stream id below the last one if the writes land out of order).
    let send = |d: Device, tag: &'static str| {
        tokio::spawn(async move {
            let acks: Vec<_> = (0..100)
                .map(|i| d.reflect(format!("{tag} {i}").as_bytes()).unwrap())
                .collect();
            for ack in acks {
                ack.await.unwrap();
            }
            d
        })
    };
    let (ta, tb) = (send(a, "a"), send(b, "b"));
    let got = receive(&mut c, 200).await;
    let (a, b) = (ta.await.unwrap(), tb.await.unwrap());
    for tag in ["a", "b"] {
        let mine: Vec<Vec<u8>> = got
            .iter()
            .filter(|p| p.starts_with(tag.as_bytes()))
            .cloned()
            .collect();
        let want: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{tag} {i}").into_bytes())
            .collect();
        assert_eq!(mine, want, "{tag}'s envelopes, in order");
    }
    drop((a, b, c));
}
