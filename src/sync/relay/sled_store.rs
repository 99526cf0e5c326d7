//! The embedded queue store, on sled: one log per group and a cursor per
//! device, which together are every device's queue.
//!
//! ```text
//! tree "devices": DGID(32) ‖ device id u64 BE → last seen u64 LE ‖ sealed info
//! tree "log":     DGID(32) ‖ seq u64 BE       → sender u64 LE ‖ time u64 LE ‖ n u8 ‖ n recipients u64 LE ‖ envelope
//! tree "cursors": DGID(32) ‖ device id u64 BE → seq u64 LE
//! ```
//!
//! A device's queue is the group's log entries that name it as a recipient,
//! from its cursor on. Why a log per group rather than a copy per recipient:
//! a reflection is one write however many devices it goes to, and an
//! acknowledgement moves a cursor instead of deleting a key, so sled does a
//! third of the work per delivered envelope (the profile in BENCHMARKS.md,
//! round 7). Entries below every device's cursor are deleted, 64 or more at
//! a time.
//!
//! Keys are big-endian so a prefix scan walks a log in order. Positions
//! come from sled's `generate_id`, which is monotonic across restarts.
//!
//! Group commit. An envelope is acknowledged to its sender only after the
//! write that logs it is flushed to disk, and concurrent reflections share
//! one flush, which is what makes a durable relay fast on one disk. The
//! write and the wait are split: `SledStore::append_nowait` logs and
//! returns a flush ticket; one background task runs sled's `flush` (one at
//! a time), each covering every write made before it started, and
//! publishes the last ticket it covered on a `watch` channel
//! (`SledStore::flushed`). A connection keeps its reflections pending
//! until their ticket is reached and meanwhile goes on reading and
//! delivering, so one flush carries every connection's reflections of the
//! moment (hundreds to two thousand under the load benchmark) and a device
//! with several reflections in flight waits for one flush, not one each.
//! A reflection is one `Tree::insert`; only a transaction's commit (all or
//! none) is a `sled::Batch`, because sled's `apply_batch` locks the whole
//! database and writes its I/O buffer out twice, each with its own
//! `sync_file_range` (bench-notes/relay-profile.md).
//!
//! What "flushed" means is sled's: its log buffers are written with
//! `pwrite` and `sync_file_range`, which survive the relay process dying
//! (the tests SIGKILL it) but, as sled's own issue 1452 says, do not flush
//! a drive's volatile write cache; sled's background thread `fsync`s the
//! file every 500 ms.
//!
//! A cursor means "every entry before this position that names the device
//! was acknowledged"; it is written lazily (every 16
//! acknowledgements and at disconnect, not flushed), and acks that
//! arrive out of order leave it at the oldest unacknowledged entry. After a
//! crash or a reconnect, entries acknowledged but not yet behind the cursor
//! are delivered again, and the device refuses them as replays (its
//! counter windows) and acknowledges them.
//!
//! The most recent entries of each group are also kept in memory (a tail of
//! [`TAIL`] entries), so a device that keeps up is served without reading
//! sled. Recipients are woken as soon as an entry is logged, so an entry is
//! usually delivered before its flush completes (docs/protocol.md §4,
//! "Visibility before durability"): the flush's time is then in the
//! sender's acknowledgement only, not in the reflect-to-delivery latency.
//! If the relay crashes before the flush, the sender never got its ack and
//! sends it again, and a device that had it already refuses the copy as a
//! replay: nothing is lost, nothing applied twice.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use super::schema::{DeviceRecord, Entry};
use crate::sync::error::{SyncError, SyncResult};
use crate::sync::keys::GroupId;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn store_err(e: impl std::fmt::Display) -> SyncError {
    SyncError::Store(e.to_string())
}

/// Entries per group kept in memory for devices that keep up.
pub const TAIL: usize = 128;

/// Entries behind every cursor that are deleted in one batch.
const GC_BATCH: u64 = 64;

/// A cursor is written to the tree after this many acknowledgements (and
/// when its device disconnects): a crash redelivers at most this many
/// processed entries per device, which it refuses as replays.
const CURSOR_EVERY: u32 = 16;

/// How long an acknowledgement may wait for its flush before the
/// connection fails with an error (the disk is gone or stalled).
pub(crate) const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The sled-backed store.
pub struct SledStore {
    db: sled::Db,
    devices: sled::Tree,
    log: sled::Tree,
    cursors: sled::Tree,
    flush: Arc<Flusher>,
    /// What is known of each group in memory. This process is the only
    /// writer of the trees, so this is a cache that cannot go stale; a
    /// group's part is filled and changed under that group's own lock. One
    /// lock per group, not one for all: a worker thread that holds a
    /// group's lock across a sled call (which may wait for I/O) then stalls
    /// only the connections of that group, not the whole relay (an
    /// off-CPU profile at 10,000 envelopes/s showed both tokio workers
    /// waiting on a single lock, bench-notes/relay-profile.md §7).
    groups: Mutex<HashMap<GroupId, Arc<Mutex<GroupMem>>>>,
}

#[derive(Default)]
struct GroupMem {
    /// The group's device ids, once read.
    ids: Option<Arc<[u64]>>,
    /// Cursors read or written so far.
    cursors: HashMap<u64, u64>,
    /// Acknowledgements since a device's cursor was last written.
    unsaved: HashMap<u64, u32>,
    /// The latest entries, in position order, and the position from which
    /// every entry of the group is in it (`None`: the tail covers nothing).
    tail: VecDeque<Arc<LogEntry>>,
    tail_from: Option<u64>,
    /// Entries before this position were deleted.
    gc_done: u64,
}

struct LogEntry {
    seq: u64,
    sender: u64,
    timestamp_ms: u64,
    recipients: Vec<u64>,
    envelope: Vec<u8>,
}

impl LogEntry {
    fn decode(k: &[u8], v: &[u8]) -> SyncResult<Self> {
        let corrupt = || SyncError::Store("corrupt log entry".into());
        let seq = u64::from_be_bytes(
            k.get(32..40)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(corrupt)?,
        );
        let sender = u64_at(v, 0).ok_or_else(corrupt)?;
        let timestamp_ms = u64_at(v, 8).ok_or_else(corrupt)?;
        let n = usize::from(*v.get(16).ok_or_else(corrupt)?);
        let recipients = (0..n)
            .map(|i| u64_at(v, 17 + 8 * i).ok_or_else(corrupt))
            .collect::<SyncResult<Vec<u64>>>()?;
        Ok(LogEntry {
            seq,
            sender,
            timestamp_ms,
            recipients,
            envelope: v.get(17 + 8 * n..).ok_or_else(corrupt)?.to_vec(),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(17 + 8 * self.recipients.len() + self.envelope.len());
        v.extend_from_slice(&self.sender.to_le_bytes());
        v.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        v.push(u8::try_from(self.recipients.len()).unwrap_or(u8::MAX));
        for r in self.recipients.iter().take(usize::from(u8::MAX)) {
            v.extend_from_slice(&r.to_le_bytes());
        }
        v.extend_from_slice(&self.envelope);
        v
    }

    fn entry(&self) -> Entry {
        Entry {
            seq: self.seq,
            sender: self.sender,
            timestamp_ms: self.timestamp_ms,
            envelope: self.envelope.clone(),
        }
    }
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

fn log_key(group: &GroupId, seq: u64) -> [u8; 40] {
    device_key(group, seq)
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
            // A relay writes far more than it keeps (entries live until
            // acknowledged): sled's write-optimised mode. Measured at
            // 10,000 envelopes/s on an idle machine: reflect-to-delivery
            // p50 22-27 ms and p99 48-74 ms, against 29-39 and 64-81 ms
            // in the default, space-optimised mode.
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| SyncError::Store(format!("opening {}: {e}", dir.display())))?;
        let devices = db.open_tree("devices").map_err(store_err)?;
        let log = db.open_tree("log").map_err(store_err)?;
        let cursors = db.open_tree("cursors").map_err(store_err)?;
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
                let t = std::time::Instant::now();
                let r = fdb.flush_async().await;
                // Every acknowledgement waits for this: its time is the
                // floor of the reflect-to-delivery latency.
                let covered = target.saturating_sub(*f.done.borrow());
                tracing::trace!(elapsed_us = t.elapsed().as_micros() as u64, bytes = ?r.as_ref().ok(), covered, "relay store flushed");
                if let Err(e) = r {
                    tracing::error!(error = %e, "relay store flush failed");
                    continue;
                }
                f.done.send_replace(target);
            }
        });
        Ok(SledStore {
            db,
            devices,
            log,
            cursors,
            flush,
            groups: Mutex::new(HashMap::new()),
        })
    }

    /// The group's in-memory state, created empty on first use.
    fn group(&self, group: &GroupId) -> Arc<Mutex<GroupMem>> {
        Arc::clone(lock(&self.groups).entry(*group).or_default())
    }

    /// Asks the group-commit task for a flush of everything written so
    /// far, without waiting: returns the ticket that
    /// [`SledStore::flushed`] reaches once that flush is on disk.
    pub(crate) fn request_flush(&self) -> u64 {
        let mine = self.flush.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.flush.wake.notify_one();
        mine
    }

    /// The ticket of the latest completed flush: every write made before a
    /// [`SledStore::request_flush`] that returned a ticket at or below it is
    /// on disk.
    pub(crate) fn flushed(&self) -> watch::Receiver<u64> {
        self.flush.done.subscribe()
    }

    /// Waits until the flush of `ticket` is on disk.
    pub(crate) async fn wait_flushed(&self, ticket: u64) -> SyncResult<()> {
        let mut rx = self.flushed();
        let r = tokio::time::timeout(FLUSH_TIMEOUT, rx.wait_for(|d| *d >= ticket)).await;
        match r {
            Ok(Ok(_)) => Ok(()),
            _ => Err(SyncError::Store("the store did not flush to disk".into())),
        }
    }

    /// Waits until everything written so far is on disk.
    async fn durable(&self) -> SyncResult<()> {
        let mine = self.request_flush();
        self.wait_flushed(mine).await
    }

    /// A device's cursor (read from the tree on first use).
    fn cursor(&self, mem: &mut GroupMem, group: &GroupId, device_id: u64) -> SyncResult<u64> {
        if let Some(&c) = mem.cursors.get(&device_id) {
            return Ok(c);
        }
        let c = self
            .cursors
            .get(device_key(group, device_id))
            .map_err(store_err)?
            .and_then(|v| u64_at(&v, 0))
            .unwrap_or(0);
        mem.cursors.insert(device_id, c);
        Ok(c)
    }

    pub(crate) async fn is_registered(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        self.devices
            .contains_key(device_key(group, device_id))
            .map_err(store_err)
    }

    /// Writes the device's record (durably) and returns its queue length.
    /// A new device's cursor starts after every entry logged so far.
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
        let from = {
            let mem = self.group(group);
            let mut mem = lock(&mem);
            if self.devices.insert(key, v).map_err(store_err)?.is_none() {
                let start = self.db.generate_id().map_err(store_err)? + 1;
                self.cursors
                    .insert(key, &start.to_le_bytes())
                    .map_err(store_err)?;
                mem.cursors.insert(device_id, start);
            }
            mem.ids = None;
            self.cursor(&mut mem, group, device_id)?
        };
        self.durable().await?;
        let mut n = 0;
        for kv in self
            .log
            .range(log_key(group, from)..=log_key(group, u64::MAX))
        {
            let (k, v) = kv.map_err(store_err)?;
            if LogEntry::decode(&k, &v)?.recipients.contains(&device_id) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Updates the last-seen time, and writes the device's cursor if it
    /// moved since it was last written (called at disconnect).
    pub(crate) async fn touch(
        &self,
        group: &GroupId,
        device_id: u64,
        now_ms: u64,
    ) -> SyncResult<()> {
        let key = device_key(group, device_id);
        {
            let mem = self.group(group);
            let mut mem = lock(&mem);
            if mem.unsaved.remove(&device_id).is_some()
                && let Some(c) = mem.cursors.get(&device_id)
            {
                self.cursors
                    .insert(key, &c.to_le_bytes())
                    .map_err(store_err)?;
            }
        }
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

    /// The group's device ids (cached).
    pub(crate) async fn device_ids(&self, group: &GroupId) -> SyncResult<Arc<[u64]>> {
        let mem = self.group(group);
        let mut mem = lock(&mem);
        if let Some(v) = &mem.ids {
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
        mem.ids = Some(v.clone());
        Ok(v)
    }

    /// Drops a device: its record and cursor. The log entries it was
    /// waiting for go when no other device needs them.
    pub(crate) async fn drop_device(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        let key = device_key(group, device_id);
        let existed = {
            let mem = self.group(group);
            let mut mem = lock(&mem);
            let existed = self.devices.remove(key).map_err(store_err)?.is_some();
            self.cursors.remove(key).map_err(store_err)?;
            mem.ids = None;
            mem.cursors.remove(&device_id);
            mem.unsaved.remove(&device_id);
            existed
        };
        self.durable().await?;
        Ok(existed)
    }

    /// Logs `envelopes` for `recipients` (several in one atomic batch, as a
    /// transaction's commit), durably.
    pub(crate) async fn append(
        &self,
        group: &GroupId,
        sender: u64,
        recipients: &[u64],
        envelopes: &[&[u8]],
        now_ms: u64,
    ) -> SyncResult<()> {
        let ticket = self.append_nowait(group, sender, recipients, envelopes, now_ms)?;
        self.wait_flushed(ticket).await
    }

    /// Logs `envelopes` for `recipients` and asks for a flush without
    /// waiting for it: returns the flush ticket (see
    /// [`SledStore::flushed`]). Nothing may be acknowledged to the sender
    /// before that ticket is flushed.
    ///
    /// One envelope is one `insert`. Several (a transaction's commit) are one
    /// `apply_batch`, so a crash keeps all or none of them; a batch is not
    /// used for one envelope because sled's `apply_batch` takes a lock over
    /// the whole database and writes out its I/O buffer twice (with a
    /// `sync_file_range` each), which under a thousand writers was most of
    /// the relay's latency (bench-notes/relay-profile.md).
    pub(crate) fn append_nowait(
        &self,
        group: &GroupId,
        sender: u64,
        recipients: &[u64],
        envelopes: &[&[u8]],
        now_ms: u64,
    ) -> SyncResult<u64> {
        {
            // Positions are drawn, the entries written and the tail
            // extended under the lock, so all three are in position order.
            let mem = self.group(group);
            let mut mem = lock(&mem);
            let mut batch = sled::Batch::default();
            let mut entries = Vec::with_capacity(envelopes.len());
            for env in envelopes {
                // Positions start at 1: 0 means "nothing delivered yet".
                let e = LogEntry {
                    seq: self.db.generate_id().map_err(store_err)? + 1,
                    sender,
                    timestamp_ms: now_ms,
                    recipients: recipients.to_vec(),
                    envelope: env.to_vec(),
                };
                let (key, value) = (log_key(group, e.seq), e.encode());
                if envelopes.len() == 1 {
                    self.log.insert(key, value).map_err(store_err)?;
                } else {
                    batch.insert(&key[..], value);
                }
                entries.push(e);
            }
            if envelopes.len() > 1 {
                self.log.apply_batch(batch).map_err(store_err)?;
            }
            for e in entries {
                mem.tail_from.get_or_insert(e.seq);
                mem.tail.push_back(Arc::new(e));
            }
            while mem.tail.len() > TAIL {
                mem.tail.pop_front();
                mem.tail_from = mem.tail.front().map(|e| e.seq);
            }
        }
        Ok(self.request_flush())
    }

    pub(crate) async fn read(
        &self,
        group: &GroupId,
        device_id: u64,
        after: u64,
        limit: usize,
    ) -> SyncResult<Vec<Entry>> {
        let mem = self.group(group);
        let mut mem = lock(&mem);
        let start = after
            .saturating_add(1)
            .max(self.cursor(&mut mem, group, device_id)?);
        let mine = |e: &&Arc<LogEntry>| e.seq >= start && e.recipients.contains(&device_id);
        if mem.tail_from.is_some_and(|from| from <= start) {
            return Ok(mem
                .tail
                .iter()
                .filter(mine)
                .take(limit)
                .map(|e| e.entry())
                .collect());
        }
        drop(mem);
        let mut out = Vec::new();
        for kv in self
            .log
            .range(log_key(group, start)..=log_key(group, u64::MAX))
        {
            let (k, v) = kv.map_err(store_err)?;
            let e = LogEntry::decode(&k, &v)?;
            if e.recipients.contains(&device_id) {
                out.push(e.entry());
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The device acknowledged every entry before `below` that names it:
    /// its cursor moves there (never back). Not flushed. Entries behind
    /// every device's cursor are deleted, [`GC_BATCH`] or more at a time.
    pub(crate) async fn ack(&self, group: &GroupId, device_id: u64, below: u64) -> SyncResult<()> {
        let mem = self.group(group);
        let mut mem = lock(&mem);
        if below <= self.cursor(&mut mem, group, device_id)? {
            return Ok(());
        }
        mem.cursors.insert(device_id, below);
        let unsaved = mem.unsaved.entry(device_id).or_default();
        *unsaved += 1;
        if *unsaved >= CURSOR_EVERY {
            mem.unsaved.remove(&device_id);
            self.cursors
                .insert(device_key(group, device_id), &below.to_le_bytes())
                .map_err(store_err)?;
        }
        let ids = match &mem.ids {
            Some(ids) => ids.clone(),
            None => return Ok(()),
        };
        let mut low = u64::MAX;
        for &d in ids.iter() {
            low = low.min(self.cursor(&mut mem, group, d)?);
        }
        if low < mem.gc_done.saturating_add(GC_BATCH) || low == u64::MAX {
            return Ok(());
        }
        // Key by key, not in a `sled::Batch`: these entries were delivered
        // and acknowledged everywhere, so a crash halfway loses nothing, and
        // a batch would lock the whole database (see `append_nowait`).
        let keys = self
            .log
            .range(log_key(group, mem.gc_done)..log_key(group, low))
            .keys()
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_err)?;
        for k in keys {
            self.log.remove(k).map_err(store_err)?;
        }
        mem.gc_done = low;
        Ok(())
    }
}
