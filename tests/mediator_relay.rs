//! The mediator end to end on loopback, one in-process relay with its sled
//! store: reflection and acknowledgement among three devices, an offline
//! device catching up, redelivery of what was not acknowledged, ephemeral
//! envelopes, device lists and drops, group isolation, leader promotion and
//! failover, transactions, and refusal of tampered, truncated and replayed
//! envelopes.
#![cfg(feature = "mediator")]

mod mediator_util;

use std::time::Duration;

use mediator_util::*;
use sealdex::sync::SyncError;
use sealdex::sync::client::{Device, DeviceConfig, Event};
use sealdex::sync::protocol::device::Refusal;
use sealdex::sync::protocol::frame::{self, FrameType};
use sealdex::sync::protocol::messages as m;

fn msgs(prefix: &str, range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range
        .map(|i| format!("{prefix} {i}").into_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_reflect_ack_and_an_offline_one_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 16).await;
    let k = keys(10);
    let a = device(&url, &k, 0xa).await;
    let mut b = device(&url, &k, 0xb).await;
    let mut c = device(&url, &k, 0xc).await;

    let first = msgs("op", 0..10);
    for p in &first {
        // Acknowledged once queued for b and c.
        a.reflect(p).unwrap().await.unwrap();
    }
    assert_eq!(receive(&mut b, 10).await, first, "in order, each once");
    assert_eq!(receive(&mut c, 10).await, first);

    // c goes offline; a reflects more; an ephemeral envelope reaches only b.
    let guard = c.close().await.unwrap();
    let second = msgs("op", 10..15);
    for p in &second {
        a.reflect(p).unwrap().await.unwrap();
    }
    a.reflect_ephemeral(b"progress 50%").await.unwrap();
    let got = receive(&mut b, 6).await;
    assert_eq!(&got[..5], &second[..]);
    assert_eq!(got[5], b"progress 50%");

    // c comes back with its id and replay guard: exactly the backlog, in
    // order, then the queue-dry notice; never the ephemeral envelope.
    let mut cfg = DeviceConfig::new(&url, k.clone(), 0xc);
    cfg.info = b"device 12".to_vec();
    cfg.guard = guard;
    let mut c = Device::connect(cfg).await.unwrap();
    let mut backlog = Vec::new();
    loop {
        match next(&mut c).await {
            Event::Reflected {
                reflected_id,
                plaintext,
                ..
            } => {
                c.ack(reflected_id).await.unwrap();
                backlog.push(plaintext.to_vec());
            }
            Event::QueueDry => break,
            _ => {}
        }
    }
    assert_eq!(backlog, second);

    // Senders never receive their own envelopes: a's queue is empty.
    barrier(&a).await;
    let devices = a.devices().await.unwrap();
    assert_eq!(devices.len(), 3);
    for d in &devices {
        let info = k
            .open_device_info(d.device_id, &d.encrypted_device_info)
            .unwrap();
        assert_eq!(&*info, format!("device {}", d.device_id).as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_envelopes_are_delivered_again_after_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 16).await;
    let k = keys(11);
    let a = device(&url, &k, 1).await;
    let mut b = device(&url, &k, 2).await;
    for p in msgs("x", 0..4) {
        a.reflect(&p).unwrap().await.unwrap();
    }
    // b sees them but acknowledges only the first two, then vanishes.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        if let Event::Reflected {
            reflected_id,
            plaintext,
            ..
        } = next(&mut b).await
        {
            if seen.len() < 2 {
                b.ack(reflected_id).await.unwrap();
            }
            seen.push(plaintext.to_vec());
        }
    }
    barrier(&b).await;
    b.abort();
    let mut b = device(&url, &k, 2).await;
    assert_eq!(receive(&mut b, 2).await, msgs("x", 2..4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_isolated_and_a_dropped_device_loses_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 16).await;
    let (k1, k2) = (keys(12), keys(13));
    let a1 = device(&url, &k1, 1).await;
    let mut b1 = device(&url, &k1, 2).await;
    // Same device ids in another group: unrelated devices.
    let a2 = device(&url, &k2, 1).await;
    let mut b2 = device(&url, &k2, 2).await;
    a1.reflect(b"group one").unwrap().await.unwrap();
    a2.reflect(b"group two").unwrap().await.unwrap();
    assert_eq!(receive(&mut b1, 1).await, vec![b"group one".to_vec()]);
    assert_eq!(receive(&mut b2, 1).await, vec![b"group two".to_vec()]);
    assert_eq!(a1.devices().await.unwrap().len(), 2);

    // a1 drops b1: b1's connection closes with 4013, its queue goes.
    a1.drop_device(2).await.unwrap();
    loop {
        if let Event::Closed { code } = next(&mut b1).await {
            assert_eq!(code, 4013);
            break;
        }
    }
    let ids: Vec<u64> = a1
        .devices()
        .await
        .unwrap()
        .iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(ids, vec![1]);
    assert_eq!(
        a2.devices().await.unwrap().len(),
        2,
        "the other group is untouched"
    );
}

async fn wait_promoted(d: &mut Device) {
    loop {
        if let Event::PromotedToLeader = next(d).await {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_leader_and_failover_when_it_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 16).await;
    let k = keys(14);
    // The first device is promoted once its (empty) queue is dry.
    let mut a = device(&url, &k, 1).await;
    wait_promoted(&mut a).await;
    let mut b = device(&url, &k, 2).await;
    let mut c = device(&url, &k, 3).await;
    // b and c drain their queues but are not promoted: a leads.
    for d in [&mut b, &mut c] {
        loop {
            match next(d).await {
                Event::QueueDry => break,
                Event::PromotedToLeader => panic!("two leaders"),
                _ => {}
            }
        }
        barrier(d).await;
    }
    // The leader vanishes: exactly one of the others is promoted.
    a.abort();
    let promoted = tokio::select! {
        _ = wait_promoted(&mut b) => 2,
        _ = wait_promoted(&mut c) => 3,
    };
    let (winner, other) = if promoted == 2 {
        (&mut b, &mut c)
    } else {
        (&mut c, &mut b)
    };
    barrier(winner).await;
    barrier(other).await;
    // Nothing else happened on the other device (a reflection proves it has
    // caught up with everything the relay sent before).
    winner.reflect(b"from the leader").unwrap().await.unwrap();
    match next(other).await {
        Event::Reflected {
            plaintext,
            reflected_id,
            ..
        } => {
            assert_eq!(&*plaintext, b"from the leader");
            other.ack(reflected_id).await.unwrap();
        }
        e => panic!("expected the reflection, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_contend_and_deliver_only_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 16).await;
    let k = keys(15);
    let a = device(&url, &k, 1).await;
    let mut b = device(&url, &k, 2).await;
    loop {
        if let Event::QueueDry = next(&mut b).await {
            break;
        }
    }
    a.begin_transaction(b"bootstrap", Duration::from_secs(30))
        .await
        .unwrap();
    // b is rejected, and learns who holds the lock and for what.
    match b
        .begin_transaction(b"reindex", Duration::from_secs(30))
        .await
    {
        Err(SyncError::TransactionRejected {
            holder,
            sealed_scope,
        }) => {
            assert_eq!(holder, 1);
            assert_eq!(&*k.open_scope(&sealed_scope).unwrap(), b"bootstrap");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // Reflections inside the transaction: acknowledged only on commit.
    let acks: Vec<_> = msgs("snapshot", 0..3)
        .iter()
        .map(|p| a.reflect(p).unwrap())
        .collect();
    barrier(&a).await;
    a.commit_transaction().await.unwrap();
    for ack in acks {
        ack.await.unwrap();
    }
    // b's next events: the end of a's transaction, then the three envelopes
    // (had any been delivered before the commit, it would come first).
    match next(&mut b).await {
        Event::TransactionEnded { holder, .. } => assert_eq!(holder, 1),
        e => panic!("expected TransactionEnded first, got {e:?}"),
    }
    assert_eq!(receive(&mut b, 3).await, msgs("snapshot", 0..3));
    // Now b may take the lock.
    b.begin_transaction(b"reindex", Duration::from_secs(30))
        .await
        .unwrap();
    b.commit_transaction().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_truncated_and_replayed_envelopes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 16).await;
    let k = keys(16);
    let g = k.group_id().to_hex();
    let mut b = device(&url, &k, 2).await;

    // A raw group member (device 1) that records what it sends.
    async fn raw_device(url: &str, g: &str, k: &sealdex::sync::keys::GroupKeys, id: u64) -> RawWs {
        let mut ws = raw(url, g).await;
        let f = raw_recv(&mut ws).await.unwrap();
        let sh: m::ServerHello = m::decode("ServerHello", &f[4..]).unwrap();
        let eph: [u8; 32] = sh.ephemeral_public.clone().try_into().unwrap();
        let chal: [u8; 32] = sh.challenge.clone().try_into().unwrap();
        raw_send(
            &mut ws,
            m::frame(
                FrameType::ClientHello,
                &m::ClientHello {
                    version: m::PROTOCOL_VERSION,
                    response: k.answer_challenge(&eph, &chal).unwrap(),
                    ephemeral_public: sh.ephemeral_public,
                    device_id: id,
                    encrypted_device_info: vec![],
                    slots_exhausted_policy: 0,
                },
            ),
        )
        .await;
        let f = raw_recv(&mut ws).await.unwrap();
        assert_eq!(frame::decode(&f).unwrap().0, FrameType::ServerInfo);
        ws
    }
    async fn reflect_raw(ws: &mut RawWs, id: u32, envelope: Vec<u8>) {
        raw_send(
            ws,
            m::frame(
                FrameType::Reflect,
                &m::Reflect {
                    reflect_id: id,
                    ephemeral: false,
                    envelope,
                },
            ),
        )
        .await;
        loop {
            let f = raw_recv(ws).await.unwrap();
            if frame::decode(&f).unwrap().0 == FrameType::ReflectAck {
                return;
            }
        }
    }
    let mut a = raw_device(&url, &g, &k, 1).await;
    let good = sealdex::sync::envelope::seal(&k, 1, false, 1, b"genuine").unwrap();
    let mut flipped = good.clone();
    flipped[30] ^= 0x01;
    reflect_raw(&mut a, 1, flipped).await;
    reflect_raw(&mut a, 2, good[..good.len() - 5].to_vec()).await;
    reflect_raw(&mut a, 3, good.clone()).await;
    reflect_raw(&mut a, 4, good.clone()).await;
    let mut outcomes = Vec::new();
    while outcomes.len() < 4 {
        match next(&mut b).await {
            Event::Refused { reason, sender, .. } => {
                assert_eq!(sender, 1);
                outcomes.push(Err(reason));
            }
            Event::Reflected {
                plaintext,
                reflected_id,
                ..
            } => {
                b.ack(reflected_id).await.unwrap();
                outcomes.push(Ok(plaintext.to_vec()));
            }
            _ => {}
        }
    }
    assert_eq!(
        outcomes,
        vec![
            Err(Refusal::Tampered),
            Err(Refusal::Tampered),
            Ok(b"genuine".to_vec()),
            Err(Refusal::Replayed)
        ]
    );
    // Refused envelopes were acknowledged: nothing comes back after a reconnect.
    let guard = b.close().await.unwrap();
    reflect_raw(
        &mut a,
        5,
        sealdex::sync::envelope::seal(&k, 1, false, 2, b"after").unwrap(),
    )
    .await;
    let mut cfg = DeviceConfig::new(&url, k.clone(), 2);
    cfg.guard = guard;
    let mut b = Device::connect(cfg).await.unwrap();
    assert_eq!(receive(&mut b, 1).await, vec![b"after".to_vec()]);
}
