//! Helpers shared by the mediator tests: relays on loopback (in-process or
//! the real `sealdex mediator` binary), devices, and a raw protocol client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sealdex::sync::client::{Device, DeviceConfig, Event};
use sealdex::sync::keys::{GroupKey, GroupKeys};
use sealdex::sync::relay::{Relay, RelayConfig};
use tokio_tungstenite::tungstenite::Message;

/// Every wait in these tests is bounded by this.
pub const STEP: Duration = Duration::from_secs(20);

pub fn keys(seed: u8) -> Arc<GroupKeys> {
    Arc::new(GroupKeys::derive(&GroupKey::from_bytes([seed; 32])).unwrap())
}

/// An in-process relay on 127.0.0.1 with a sled store in `dir`.
pub async fn relay(dir: &Path, max_slots: usize) -> String {
    let mut cfg = RelayConfig::embedded(dir.to_owned());
    cfg.max_device_slots = max_slots;
    cfg.handshake_timeout = Duration::from_secs(3);
    relay_with(cfg).await
}

pub async fn relay_with(cfg: RelayConfig) -> String {
    let relay = Relay::start(cfg).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { relay.serve(listener).await });
    format!("ws://{addr}")
}

/// A child process killed (SIGKILL) when dropped, so a failing test never
/// leaves a relay behind.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// SIGKILL now and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The real binary: `sealdex mediator ARGS`, returning the child and its URL.
pub fn spawn_mediator(args: &[&str]) -> (KillOnDrop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sealdex"))
        .arg("mediator")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sealdex mediator");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (KillOnDrop(child), format!("ws://{addr}"))
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub async fn device(url: &str, keys: &Arc<GroupKeys>, id: u64) -> Device {
    init_tracing();
    let mut cfg = DeviceConfig::new(url, keys.clone(), id);
    cfg.info = format!("device {id}").into_bytes();
    tokio::time::timeout(STEP, Device::connect(cfg))
        .await
        .unwrap()
        .unwrap()
}

/// The next event that is not a connection notice.
pub async fn next(d: &mut Device) -> Event {
    loop {
        let ev = tokio::time::timeout(STEP, d.next_event())
            .await
            .expect("an event in time")
            .expect("client running");
        match ev {
            Event::Connected(_) | Event::Disconnected { .. } => continue,
            other if std::env::var("SEALDEX_TEST_EVENTS").is_ok() => {
                eprintln!("event {other:?}");
                return other;
            }
            other => return other,
        }
    }
}

/// Receives `n` reflected envelopes, acks each, returns their plaintexts.
/// Queue-dry notices, promotions and ended notices in between are skipped.
pub async fn receive(d: &mut Device, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < n {
        match next(d).await {
            Event::Reflected {
                reflected_id,
                plaintext,
                ephemeral,
                ..
            } => {
                if !ephemeral {
                    d.ack(reflected_id).await.unwrap();
                }
                out.push(plaintext.to_vec());
            }
            Event::Refused { reason, .. } => panic!("unexpected refusal {reason:?}"),
            _ => {}
        }
    }
    out
}

/// A round trip to the relay on `d`'s connection.
pub async fn barrier(d: &Device) {
    tokio::time::timeout(STEP, d.devices())
        .await
        .unwrap()
        .unwrap();
}

pub type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw WebSocket to `url/<group hex>`.
pub async fn raw(url: &str, group_hex: &str) -> RawWs {
    let (ws, _) = tokio_tungstenite::connect_async(format!("{url}/{group_hex}"))
        .await
        .unwrap();
    ws
}

pub async fn raw_recv(ws: &mut RawWs) -> Result<Vec<u8>, Option<u16>> {
    loop {
        match tokio::time::timeout(STEP, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Binary(b))) => return Ok(b.to_vec()),
            Some(Ok(Message::Close(f))) => return Err(f.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

pub async fn raw_send(ws: &mut RawWs, frame: Vec<u8>) {
    ws.send(Message::Binary(frame.into())).await.unwrap();
}

/// Every file under `dir`, read whole.
pub fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Calls `f` until `done` holds of what it gives, at most `tries` times,
/// `every` apart; returns the last value (the caller asserts on it).
pub async fn poll<T, Fut: std::future::Future<Output = T>>(
    tries: usize,
    every: Duration,
    mut f: impl FnMut() -> Fut,
    done: impl Fn(&T) -> bool,
) -> T {
    let mut value = f().await;
    for _ in 1..tries {
        if done(&value) {
            break;
        }
        tokio::time::sleep(every).await;
        value = f().await;
    }
    value
}

/// One transaction lock for the group, whichever relay node its devices
/// are connected to: `holder` (device 2) takes it, `other` is refused with
/// the holder named, and `holder` commits.
pub async fn one_lock_for_the_group(holder: &mut Device, other: &mut Device) {
    holder
        .begin_transaction(b"bootstrap", Duration::from_secs(30))
        .await
        .unwrap();
    match other
        .begin_transaction(b"other", Duration::from_secs(30))
        .await
    {
        Err(sealdex::sync::SyncError::TransactionRejected { holder: h, .. }) => assert_eq!(h, 2),
        r => panic!("expected a rejection, got {r:?}"),
    }
    holder.commit_transaction().await.unwrap();
}
