//! The real `sealdex mediator` binary killed with SIGKILL: nothing a device
//! was told is queued is lost, nothing reaches the application twice, and
//! nothing the relay wrote holds plaintext or key material. And a device
//! killed with SIGKILL inside a transaction holds the lock only until its
//! TTL runs out.
#![cfg(feature = "mediator")]

mod mediator_util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use mediator_util::*;
use sealdex::sync::SyncError;
use sealdex::sync::client::{Device, DeviceConfig, Event};
use sealdex::sync::keys::GroupKey;

const CANARY: &str = "CANARY-7f3a-plaintext-never-on-the-relay";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_sigkill_loses_nothing_and_delivers_nothing_twice() {
    let data = tempfile::tempdir().unwrap();
    let (mut relay, url) = spawn_mediator(&[
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.path().to_str().unwrap(),
    ]);
    let addr = url.trim_start_matches("ws://").to_owned();
    let account_secret = b"ACCOUNT-SECRET-5d1e never leaves the device".to_vec();
    let dgk = GroupKey::derive_from_account_secret(&account_secret).unwrap();
    let k = std::sync::Arc::new(sealdex::sync::keys::GroupKeys::derive(&dgk).unwrap());
    let a = device(&url, &k, 1).await;
    let mut b = device(&url, &k, 2).await;

    let total = 40;
    let payload = |i: usize| format!("{CANARY} #{i:03}").into_bytes();
    // The first half is acknowledged by the relay before the kill.
    for i in 0..total / 2 {
        a.reflect(&payload(i)).unwrap().await.unwrap();
    }
    // b applies some; its last acks may or may not reach the relay.
    let mut applied: HashMap<Vec<u8>, usize> = HashMap::new();
    for p in receive(&mut b, 12).await {
        *applied.entry(p).or_default() += 1;
    }

    relay.kill(); // SIGKILL
    // Reflections made while the relay is down wait in the client.
    let pending: Vec<_> = (total / 2..total)
        .map(|i| a.reflect(&payload(i)).unwrap())
        .collect();

    let (mut relay, _) =
        spawn_mediator(&["--listen", &addr, "--data", data.path().to_str().unwrap()]);
    for p in pending {
        tokio::time::timeout(STEP, p).await.unwrap().unwrap();
    }
    // b reconnects by itself and receives the rest: each envelope reaches the
    // application exactly once (redeliveries are refused as replays).
    while applied.len() < total {
        match next(&mut b).await {
            Event::Reflected {
                reflected_id,
                plaintext,
                ..
            } => {
                b.ack(reflected_id).await.unwrap();
                *applied.entry(plaintext.to_vec()).or_default() += 1;
            }
            Event::Refused { reason, .. } => {
                assert_eq!(reason, sealdex::sync::protocol::device::Refusal::Replayed);
            }
            _ => {}
        }
    }
    for i in 0..total {
        assert_eq!(applied.get(&payload(i)), Some(&1), "envelope {i}");
    }
    // Drain: nothing more arrives but refusals and the queue-dry notice.
    barrier(&b).await;

    relay.kill();
    // What the relay wrote: no plaintext, no account secret, no group key,
    // no sub-key.
    let files = all_files(data.path());
    assert!(!files.is_empty());
    for (path, bytes) in files {
        for (what, needle) in [
            ("plaintext canary", CANARY.as_bytes()),
            ("account secret", &account_secret[..]),
            ("group key", &dgk.expose()[..]),
            ("reflect key", &k.reflect_key().expose()[..]),
            ("path key", &k.path_key_bytes()[..]),
            ("device info", b"device 1"),
        ] {
            assert!(
                !contains(&bytes, needle),
                "{what} found in {}",
                path.display()
            );
        }
    }
}

/// Run as a child process by the test below: holds a transaction until killed.
#[tokio::test]
#[ignore = "a child process of transaction_ttl_expires_after_the_holder_is_sigkilled"]
async fn child_transaction_holder() {
    let Ok(url) = std::env::var("SEALDEX_TEST_HOLDER_URL") else {
        return;
    };
    let k = keys(40);
    let d = Device::connect(DeviceConfig::new(&url, k, 0x40))
        .await
        .unwrap();
    d.begin_transaction(b"holder scope", Duration::from_secs(2))
        .await
        .unwrap();
    println!("HOLDING");
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_ttl_expires_after_the_holder_is_sigkilled() {
    let dir = tempfile::tempdir().unwrap();
    let url = relay(dir.path(), 16).await;
    let k = keys(40);
    let mut b = device(&url, &k, 0x41).await;
    let mut holder = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_transaction_holder",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SEALDEX_TEST_HOLDER_URL", &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(holder.0.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("HOLDING") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the holder exited early"
        );
    }
    holder.kill(); // SIGKILL, inside the transaction

    // Right after the kill the lock is still held (its TTL is 2 s).
    match b.begin_transaction(b"mine", Duration::from_secs(5)).await {
        Err(SyncError::TransactionRejected {
            holder,
            sealed_scope,
        }) => {
            assert_eq!(holder, 0x40);
            assert_eq!(&*k.open_scope(&sealed_scope).unwrap(), b"holder scope");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // When the TTL runs out every device hears that it ended; then b gets it.
    loop {
        if let Event::TransactionEnded { holder, .. } = next(&mut b).await {
            assert_eq!(holder, 0x40);
            break;
        }
    }
    b.begin_transaction(b"mine", Duration::from_secs(5))
        .await
        .unwrap();
    b.commit_transaction().await.unwrap();
}
