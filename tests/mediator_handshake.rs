//! The mediator handshake and each way it fails, on loopback against a real
//! relay: wrong answer, replayed answer, unknown version, garbage, a bad
//! path, a timeout, and full device slots, each with its documented close
//! code (docs/protocol.md).
#![cfg(feature = "mediator")]

mod mediator_util;

use mediator_util::*;
use sealdex::sync::SyncError;
use sealdex::sync::client::{Device, DeviceConfig};
use sealdex::sync::keys::GroupKeys;
use sealdex::sync::protocol::frame::{self, FrameType};
use sealdex::sync::protocol::messages::{self as m, PROTOCOL_VERSION};

fn client_hello(keys: &GroupKeys, sh: &m::ServerHello, version: u32, device_id: u64) -> Vec<u8> {
    let eph: [u8; 32] = sh.ephemeral_public.clone().try_into().unwrap();
    let chal: [u8; 32] = sh.challenge.clone().try_into().unwrap();
    m::frame(
        FrameType::ClientHello,
        &m::ClientHello {
            version,
            response: keys.answer_challenge(&eph, &chal).unwrap(),
            ephemeral_public: sh.ephemeral_public.clone(),
            device_id,
            encrypted_device_info: keys.seal_device_info(device_id, b"raw").unwrap(),
            slots_exhausted_policy: 0,
        },
    )
}

async fn server_hello(ws: &mut RawWs) -> m::ServerHello {
    let f = raw_recv(ws).await.unwrap();
    let (ty, payload) = frame::decode(&f).unwrap();
    assert_eq!(ty, FrameType::ServerHello);
    m::decode("ServerHello", payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_succeeds_and_each_failure_has_its_close_code() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 2).await;
    let k = keys(1);
    let other = keys(2);
    let g = k.group_id().to_hex();

    // Success: server info follows the client hello.
    let mut ws = raw(&url, &g).await;
    let sh = server_hello(&mut ws).await;
    assert_eq!(sh.version, PROTOCOL_VERSION);
    let good = client_hello(&k, &sh, PROTOCOL_VERSION, 11);
    raw_send(&mut ws, good.clone()).await;
    let f = raw_recv(&mut ws).await.unwrap();
    let (ty, payload) = frame::decode(&f).unwrap();
    assert_eq!(ty, FrameType::ServerInfo);
    let info: m::ServerInfo = m::decode("ServerInfo", payload).unwrap();
    assert_eq!(info.max_device_slots, 2);
    assert_eq!(info.reflection_queue_length, 0);
    drop(ws);

    // A recorded, valid hello replayed on a new connection: 4011.
    let mut ws = raw(&url, &g).await;
    let _ = server_hello(&mut ws).await;
    raw_send(&mut ws, good).await;
    assert_eq!(raw_recv(&mut ws).await, Err(Some(4011)));

    // An answer from a device without this group's path key: 4010.
    let mut ws = raw(&url, &g).await;
    let sh = server_hello(&mut ws).await;
    raw_send(&mut ws, client_hello(&other, &sh, PROTOCOL_VERSION, 12)).await;
    assert_eq!(raw_recv(&mut ws).await, Err(Some(4010)));

    // An answer with one bit flipped: 4010.
    let mut ws = raw(&url, &g).await;
    let sh = server_hello(&mut ws).await;
    let mut hello: m::ClientHello = m::decode(
        "ClientHello",
        &client_hello(&k, &sh, PROTOCOL_VERSION, 13)[4..],
    )
    .unwrap();
    hello.response[30] ^= 1;
    raw_send(&mut ws, m::frame(FrameType::ClientHello, &hello)).await;
    assert_eq!(raw_recv(&mut ws).await, Err(Some(4010)));

    // An unknown version: 4001.
    let mut ws = raw(&url, &g).await;
    let sh = server_hello(&mut ws).await;
    raw_send(&mut ws, client_hello(&k, &sh, PROTOCOL_VERSION + 1, 14)).await;
    assert_eq!(raw_recv(&mut ws).await, Err(Some(4001)));

    // Garbage, and a message that is not allowed before the handshake: 4000.
    let mut ws = raw(&url, &g).await;
    let _ = server_hello(&mut ws).await;
    raw_send(&mut ws, vec![0x11, 0, 0, 0, 0xff, 0xff, 0xff]).await;
    assert_eq!(raw_recv(&mut ws).await, Err(Some(4000)));
    let mut ws = raw(&url, &g).await;
    let _ = server_hello(&mut ws).await;
    raw_send(
        &mut ws,
        m::frame(FrameType::Reflect, &m::Reflect::default()),
    )
    .await;
    assert_eq!(raw_recv(&mut ws).await, Err(Some(4000)));

    // Silence: the handshake times out (3 s in this relay): 4002.
    let mut ws = raw(&url, &g).await;
    let _ = server_hello(&mut ws).await;
    assert_eq!(raw_recv(&mut ws).await, Err(Some(4002)));

    // A path that is not a group id: refused before the WebSocket opens.
    assert!(
        tokio_tungstenite::connect_async(format!("{url}/not-a-group"))
            .await
            .is_err()
    );
    assert!(
        tokio_tungstenite::connect_async(format!("{url}/{}", &g[..62]))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_slots_limit_rejects_or_drops_the_least_recent() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 2).await;
    let k = keys(3);
    let a = device(&url, &k, 1).await;
    let mut b = device(&url, &k, 2).await;
    // A third device with the reject policy: 4012.
    let err = Device::connect(DeviceConfig::new(&url, k.clone(), 3))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SyncError::Closed { code: 4012, .. }),
        "{err:?}"
    );
    // A known device reconnecting is not a new slot.
    let _guard = a.close().await.unwrap();
    let a = device(&url, &k, 1).await;
    // With drop-least-recent, the device seen least recently goes (b: a
    // reconnected after it), and its connection closes with 4013.
    let mut cfg = DeviceConfig::new(&url, k.clone(), 3);
    cfg.policy = m::SlotsExhaustedPolicy::DropLeastRecent;
    let c = tokio::time::timeout(STEP, Device::connect(cfg))
        .await
        .unwrap()
        .unwrap();
    loop {
        if let sealdex::sync::client::Event::Closed { code } = next(&mut b).await {
            assert_eq!(code, 4013);
            break;
        }
    }
    let ids: Vec<u64> = a
        .devices()
        .await
        .unwrap()
        .iter()
        .map(|d| d.device_id)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 3]);
    drop(c);
}
