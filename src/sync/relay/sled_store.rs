//! The embedded queue store, on sled.
//!
//! ```text
//! tree "devices": DGID(32) ‖ device id u64 BE        → last seen u64 LE ‖ sealed info
//! tree "queues":  DGID(32) ‖ device id u64 BE ‖ seq u64 BE → sender u64 LE ‖ time u64 LE ‖ envelope
//! ```
//!
//! Keys are big-endian so a prefix scan walks a queue in order. Positions
//! come from sled's `generate_id`, which is monotonic across restarts.
//! An envelope is acknowledged to its sender only after the batch that
//! queues it for every recipient is flushed to disk; concurrent reflections
//! share one flush (group commit), which is what makes a durable relay fast
//! on one disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use super::schema::{DeviceRecord, Entry};
use crate::sync::error::{SyncError, SyncResult};
use crate::sync::keys::GroupId;

fn store_err(e: impl std::fmt::Display) -> SyncError {
    SyncError::Store(e.to_string())
}

/// The sled-backed store.
pub struct SledStore {
    db: sled::Db,
    devices: sled::Tree,
    queues: sled::Tree,
    flush: Arc<Flusher>,
    /// Each group's device ids, read from `devices` on first use and
    /// forgotten whenever a device is admitted or dropped, so a reflection
    /// does not scan and decode the device list (this process is the only
    /// writer of the tree).
    ids: Mutex<HashMap<GroupId, Arc<[u64]>>>,
}

struct Flusher {
    requested: AtomicU64,
    wake: Notify,
    done: watch::Sender<u64>,
}

fn device_key(group: &GroupId, device_id: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&group.0);
    k[32..].copy_from_slice(&device_id.to_be_bytes());
    k
}

fn queue_key(group: &GroupId, device_id: u64, seq: u64) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..40].copy_from_slice(&device_key(group, device_id));
    k[40..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
}

fn decode_device(k: &[u8], v: &[u8]) -> Option<DeviceRecord> {
    let id = u64::from_be_bytes(k.get(32..40)?.try_into().ok()?);
    Some(DeviceRecord {
        device_id: id,
        last_seen_ms: u64_at(v, 0)?,
        encrypted_info: v.get(8..)?.to_vec(),
    })
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. Must be called inside a tokio
    /// runtime: it starts the group-commit task.
    pub fn open(dir: &Path) -> SyncResult<Self> {
        let db = sled::Config::new()
            .path(dir.join("relay.sled"))
            .cache_capacity(32 << 20)
            .open()
            .map_err(|e| SyncError::Store(format!("opening {}: {e}", dir.display())))?;
        let devices = db.open_tree("devices").map_err(store_err)?;
        let queues = db.open_tree("queues").map_err(store_err)?;
        let (done, _) = watch::channel(0);
        let flush = Arc::new(Flusher {
            requested: AtomicU64::new(0),
            wake: Notify::new(),
            done,
        });
        let f = flush.clone();
        let fdb = db.clone();
        tokio::spawn(async move {
            loop {
                f.wake.notified().await;
                let target = f.requested.load(Ordering::SeqCst);
                if let Err(e) = fdb.flush_async().await {
                    tracing::error!(error = %e, "relay store flush failed");
                    continue;
                }
                f.done.send_replace(target);
            }
        });
        Ok(SledStore {
            db,
            devices,
            queues,
            flush,
            ids: Mutex::new(HashMap::new()),
        })
    }

    /// Waits until everything written so far is on disk.
    async fn durable(&self) -> SyncResult<()> {
        let mine = self.flush.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut rx = self.flush.done.subscribe();
        self.flush.wake.notify_one();
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            rx.wait_for(|d| *d >= mine),
        )
        .await;
        match r {
            Ok(Ok(_)) => Ok(()),
            _ => Err(SyncError::Store("the store did not flush to disk".into())),
        }
    }

    pub(crate) async fn is_registered(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        self.devices
            .contains_key(device_key(group, device_id))
            .map_err(store_err)
    }

    /// Writes the device's record (durably) and returns its queue length.
    pub(crate) async fn admit(
        &self,
        group: &GroupId,
        device_id: u64,
        encrypted_info: &[u8],
        now_ms: u64,
    ) -> SyncResult<u64> {
        let key = device_key(group, device_id);
        let mut v = now_ms.to_le_bytes().to_vec();
        v.extend_from_slice(encrypted_info);
        self.devices.insert(key, v).map_err(store_err)?;
        self.forget_ids(group);
        self.durable().await?;
        Ok(self.queues.scan_prefix(key).count() as u64)
    }

    pub(crate) async fn touch(
        &self,
        group: &GroupId,
        device_id: u64,
        now_ms: u64,
    ) -> SyncResult<()> {
        let key = device_key(group, device_id);
        self.devices
            .fetch_and_update(key, |old| {
                old.map(|o| {
                    let mut v = o.to_vec();
                    if v.len() >= 8 {
                        v[..8].copy_from_slice(&now_ms.to_le_bytes());
                    }
                    v
                })
            })
            .map_err(store_err)?;
        Ok(())
    }

    pub(crate) async fn devices(&self, group: &GroupId) -> SyncResult<Vec<DeviceRecord>> {
        let mut out = Vec::new();
        for kv in self.devices.scan_prefix(group.0) {
            let (k, v) = kv.map_err(store_err)?;
            if let Some(d) = decode_device(&k, &v) {
                out.push(d);
            }
        }
        Ok(out)
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, HashMap<GroupId, Arc<[u64]>>> {
        self.ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Called after the tree changed: a reader that scanned before the
    /// change filled the cache under the same lock, so it is cleared here.
    fn forget_ids(&self, group: &GroupId) {
        self.ids().remove(group);
    }

    /// The group's device ids (cached).
    pub(crate) async fn device_ids(&self, group: &GroupId) -> SyncResult<Arc<[u64]>> {
        let mut ids = self.ids();
        if let Some(v) = ids.get(group) {
            return Ok(v.clone());
        }
        let mut v = Vec::new();
        for k in self.devices.scan_prefix(group.0).keys() {
            let k = k.map_err(store_err)?;
            if let Some(id) = k.get(32..40).and_then(|b| b.try_into().ok()) {
                v.push(u64::from_be_bytes(id));
            }
        }
        let v: Arc<[u64]> = v.into();
        ids.insert(*group, v.clone());
        Ok(v)
    }

    pub(crate) async fn drop_device(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        let key = device_key(group, device_id);
        let existed = self.devices.remove(key).map_err(store_err)?.is_some();
        self.forget_ids(group);
        let mut batch = sled::Batch::default();
        for k in self.queues.scan_prefix(key).keys() {
            batch.remove(k.map_err(store_err)?);
        }
        self.queues.apply_batch(batch).map_err(store_err)?;
        self.durable().await?;
        Ok(existed)
    }

    /// Queues `envelopes` for `recipients` in one atomic batch, durably.
    pub(crate) async fn append(
        &self,
        group: &GroupId,
        sender: u64,
        recipients: &[u64],
        envelopes: &[&[u8]],
        now_ms: u64,
    ) -> SyncResult<()> {
        let mut batch = sled::Batch::default();
        for env in envelopes {
            // Positions start at 1: 0 means "nothing delivered yet".
            let seq = self.db.generate_id().map_err(store_err)? + 1;
            let mut v = Vec::with_capacity(16 + env.len());
            v.extend_from_slice(&sender.to_le_bytes());
            v.extend_from_slice(&now_ms.to_le_bytes());
            v.extend_from_slice(env);
            for &r in recipients {
                batch.insert(&queue_key(group, r, seq)[..], v.as_slice());
            }
        }
        self.queues.apply_batch(batch).map_err(store_err)?;
        self.durable().await
    }

    pub(crate) async fn read(
        &self,
        group: &GroupId,
        device_id: u64,
        after: u64,
        limit: usize,
    ) -> SyncResult<Vec<Entry>> {
        let start = queue_key(group, device_id, after.saturating_add(1));
        let end = queue_key(group, device_id, u64::MAX);
        let mut out = Vec::new();
        for kv in self.queues.range(start..=end).take(limit) {
            let (k, v) = kv.map_err(store_err)?;
            let seq = u64::from_be_bytes(
                k.get(40..48)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| SyncError::Store("corrupt queue key".into()))?,
            );
            let (Some(sender), Some(ts)) = (u64_at(&v, 0), u64_at(&v, 8)) else {
                return Err(SyncError::Store("corrupt queue entry".into()));
            };
            out.push(Entry {
                seq,
                sender,
                timestamp_ms: ts,
                envelope: v[16..].to_vec(),
            });
        }
        Ok(out)
    }

    /// Drops acknowledged entries, in one batch. Not flushed: after a crash
    /// they may come again, and the device refuses them as replays.
    pub(crate) async fn ack(
        &self,
        group: &GroupId,
        device_id: u64,
        seqs: &[u64],
    ) -> SyncResult<()> {
        let mut batch = sled::Batch::default();
        for &seq in seqs {
            batch.remove(&queue_key(group, device_id, seq)[..]);
        }
        self.queues.apply_batch(batch).map_err(store_err)
    }
}
