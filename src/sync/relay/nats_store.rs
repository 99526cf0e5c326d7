//! The distributed queue store and coordination, on NATS JetStream.
//!
//! ```text
//! stream SDX_Q     subject sdx.q.{DGID hex}.{device hex}: one message per envelope and recipient,
//!                  payload sender u64 LE ‖ time u64 LE ‖ envelope; its stream sequence is the position
//! KV sdx-dev       {DGID hex} → the group's devices, postcard-encoded `Vec<DeviceRecord>` (device id,
//!                  sealed info, last seen); changed only by revision-checked updates
//! KV sdx-leader    {DGID hex} → "{device hex}:{node hex}:{conn}"; the bucket's max age is the lease
//! KV sdx-txn       {DGID hex} → holder u64 LE ‖ expiry ms u64 LE ‖ sealed scope
//! subject sdx.ev   core NATS (not stored): wake-ups and group events between nodes
//! ```
//!
//! Why this shape, next to the Redis store ([`super::redis_store`]):
//!
//! - **A subject per device, read by position.** The relay's store interface
//!   reads a device's queue *after a position* and drops what the device
//!   acknowledged, as Redis's `XRANGE`/`XDEL` do. JetStream's direct get
//!   "next message on this subject from sequence N" is the same read, and
//!   keeps no delivery state on the server (acknowledged entries are
//!   purged from the subject below the oldest unacknowledged one, a few
//!   acknowledgements at a time: `NatsStore::ack`). A durable consumer per
//!   device would: its pending set belongs to whichever node pulled last, so a
//!   device moving to another node races the old node's connection for the
//!   same messages, and "redeliver what was not acknowledged" would hang on
//!   the consumer's ack timer. With reads by position, a new connection
//!   simply starts at the head of the subject.
//! - **Durable before ack.** An envelope is acknowledged to its sender after
//!   JetStream acknowledged every recipient's copy (the server has stored
//!   it; on a cluster, a quorum of replicas). The copies are published one
//!   after the other without waiting and their acks awaited together. They
//!   are not atomic as Redis's `MULTI`/`EXEC` is (JetStream 2.9 has no batch
//!   publish): a node that dies between two copies leaves some recipients
//!   with the envelope and its sender without an ack. The sender sends it
//!   again, and a device that had it refuses the copy as a replay (its
//!   counter window, docs/protocol.md), so nothing is lost or applied twice.
//! - **Revision-checked KV updates for everything shared.** The device list
//!   is one value per group, changed by read, modify, `update(revision)`,
//!   retried on a conflict, so two nodes registering devices at once cannot
//!   lose one. The leader lease is created only if absent and renewed only
//!   at the revision its holder wrote; the bucket's max age (JetStream 2.9
//!   has no per-key TTL) makes an unrenewed lease vanish. The transaction
//!   lock's TTL differs per transaction, so its expiry is in the value and a
//!   lapsed lock is replaced or removed at its revision: expiry is judged by
//!   the nodes' clocks, which must agree to well under a second (NTP).
//!
//! Durability is that of the JetStream deployment: a file-backed stream
//! (`.ci/run` starts `nats-server -js` with a store directory); a cluster
//! with three replicas survives a server's loss.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use futures_util::StreamExt;

use super::schema::{DeviceRecord, Entry, LEADER_LEASE_MS, NATS_EVENT_SUBJECT, wake_message};
use crate::sync::error::{SyncError, SyncResult};
use crate::sync::keys::GroupId;

/// The JetStream stream holding every device queue.
pub const QUEUE_STREAM: &str = "SDX_Q";
/// The KV bucket holding each group's device list.
pub const DEVICE_BUCKET: &str = "sdx-dev";
/// The KV bucket holding each group's leader lease.
pub const LEADER_BUCKET: &str = "sdx-leader";
/// The KV bucket holding each group's transaction lock.
pub const TXN_BUCKET: &str = "sdx-txn";

/// The longest transaction TTL the relay grants, in seconds (the hub clamps
/// to it); the lock bucket keeps values a little longer.
const MAX_TXN_SECS: u64 = 3600;

/// Acknowledgements per device between two purges of its subject.
pub const PURGE_EVERY: usize = 16;

/// Revision conflicts tolerated before an update gives up (each retry
/// means another node changed the same group's value in between).
const CAS_ATTEMPTS: usize = 64;

fn store_err(e: impl std::fmt::Display) -> SyncError {
    SyncError::Store(format!("nats: {e}"))
}

fn queue_subject(group: &GroupId, device_id: u64) -> String {
    format!("sdx.q.{}.{device_id:016x}", group.to_hex())
}

fn group_key(group: &GroupId) -> String {
    group.to_hex()
}

fn corrupt(what: &str) -> SyncError {
    SyncError::Store(format!("nats: corrupt {what}"))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at.checked_add(8)?)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
}

/// Encodes a group's device list (the `sdx-dev` value), with postcard.
fn encode_devices(list: &[DeviceRecord]) -> Vec<u8> {
    postcard::to_allocvec(list).expect("serialising integers and bytes cannot fail")
}

/// Decodes a group's device list; a truncated, overlong or otherwise
/// malformed value is an error.
fn decode_devices(b: &[u8]) -> SyncResult<Vec<DeviceRecord>> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    match postcard::take_from_bytes::<Vec<DeviceRecord>>(b) {
        Ok((list, [])) => Ok(list),
        _ => Err(corrupt("device list")),
    }
}

/// Opens a KV bucket, creating it (one value per key) if no node has yet.
///
/// The bucket's stream is created here with the settings async-nats's
/// `create_key_value` would use, because that call first asks the server
/// for its account's API level, an answer a 2.9 server (Debian's) gives in
/// a shape the client cannot parse.
async fn bucket(js: &jetstream::Context, name: &str, max_age: Duration) -> SyncResult<kv::Store> {
    if let Ok(b) = js.get_key_value(name).await {
        return Ok(b);
    }
    let config = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    // An error may be another node creating it in between: look again.
    let created = js.get_or_create_stream(config).await;
    js.get_key_value(name).await.map_err(|e| match created {
        Err(c) => store_err(format!("creating the KV bucket {name}: {c}")),
        Ok(_) => store_err(e),
    })
}

/// The NATS-backed store.
pub struct NatsStore {
    client: async_nats::Client,
    js: jetstream::Context,
    queues: stream::Stream,
    devices: kv::Store,
    coord: NatsCoord,
    /// Per device on this node: acknowledgements not purged yet, and the
    /// position everything before which is acknowledged.
    acked: Mutex<HashMap<(GroupId, u64), (usize, u64)>>,
}

impl NatsStore {
    /// Connects to `url` (`nats://HOST:PORT`) and opens (or creates) the
    /// queue stream and the KV buckets.
    pub async fn connect(url: &str) -> SyncResult<Self> {
        let client = async_nats::connect(url).await.map_err(store_err)?;
        let js = jetstream::new(client.clone());
        let created = js
            .get_or_create_stream(stream::Config {
                name: QUEUE_STREAM.into(),
                subjects: vec!["sdx.q.>".into()],
                storage: stream::StorageType::File,
                retention: stream::RetentionPolicy::Limits,
                allow_direct: true,
                ..Default::default()
            })
            .await;
        // Two nodes starting together on a fresh server both find no
        // stream and both create it; the server refuses the second
        // ("subjects overlap with an existing stream"), so an error may be
        // another node's creation in between: look again, as `bucket` does.
        let queues = match created {
            Ok(s) => s,
            Err(c) => js
                .get_stream(QUEUE_STREAM)
                .await
                .map_err(|_| store_err(format!("creating the queue stream: {c}")))?,
        };
        let devices = bucket(&js, DEVICE_BUCKET, Duration::ZERO).await?;
        let leader = bucket(&js, LEADER_BUCKET, Duration::from_millis(LEADER_LEASE_MS)).await?;
        let txn = bucket(&js, TXN_BUCKET, Duration::from_secs(MAX_TXN_SECS + 60)).await?;
        let coord = NatsCoord {
            client: client.clone(),
            leader,
            txn,
        };
        Ok(NatsStore {
            client,
            js,
            queues,
            devices,
            coord,
            acked: Mutex::new(HashMap::new()),
        })
    }

    /// The coordination half (leases, locks, events), for the hub.
    pub fn coord(&self) -> NatsCoord {
        self.coord.clone()
    }

    /// The client, for the event subscription.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    async fn device_list(&self, group: &GroupId) -> SyncResult<(Vec<DeviceRecord>, Option<u64>)> {
        match self
            .devices
            .entry(group_key(group))
            .await
            .map_err(store_err)?
        {
            Some(e) if e.operation == kv::Operation::Put => {
                Ok((decode_devices(&e.value)?, Some(e.revision)))
            }
            Some(e) => Ok((Vec::new(), Some(e.revision))),
            None => Ok((Vec::new(), None)),
        }
    }

    /// Reads, changes and writes back a group's device list at the revision
    /// read, again on a conflict. `change` returns false to leave it as is.
    async fn update_devices(
        &self,
        group: &GroupId,
        mut change: impl FnMut(&mut Vec<DeviceRecord>) -> bool,
    ) -> SyncResult<Vec<DeviceRecord>> {
        let key = group_key(group);
        for _ in 0..CAS_ATTEMPTS {
            let (mut list, revision) = self.device_list(group).await?;
            if !change(&mut list) {
                return Ok(list);
            }
            let value = encode_devices(&list).into();
            let written =
                match revision {
                    Some(r) => self.devices.update(&key, value, r).await.map_err(|e| {
                        (
                            e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                            store_err(e),
                        )
                    }),
                    None => self.devices.create(&key, value).await.map_err(|e| {
                        (e.kind() == kv::CreateErrorKind::AlreadyExists, store_err(e))
                    }),
                };
            match written {
                Ok(_) => return Ok(list),
                Err((true, _)) => continue,
                Err((false, e)) => return Err(e),
            }
        }
        Err(SyncError::Store(
            "nats: the device list kept changing under this node".into(),
        ))
    }

    pub(crate) async fn is_registered(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        let (list, _) = self.device_list(group).await?;
        Ok(list.iter().any(|d| d.device_id == device_id))
    }

    /// Writes the device's record and returns its queue length.
    pub(crate) async fn admit(
        &self,
        group: &GroupId,
        device_id: u64,
        encrypted_info: &[u8],
        now_ms: u64,
    ) -> SyncResult<u64> {
        self.update_devices(group, |list| {
            let record = DeviceRecord {
                device_id,
                encrypted_info: encrypted_info.to_vec(),
                last_seen_ms: now_ms,
            };
            match list.iter_mut().find(|d| d.device_id == device_id) {
                Some(d) => *d = record,
                None => list.push(record),
            }
            true
        })
        .await?;
        self.queue_len(group, device_id).await
    }

    async fn queue_len(&self, group: &GroupId, device_id: u64) -> SyncResult<u64> {
        let subject = queue_subject(group, device_id);
        let mut info = self
            .queues
            .info_with_subjects(&subject)
            .await
            .map_err(store_err)?;
        let mut n = 0;
        while let Some(s) = info.next().await {
            let (name, count) = s.map_err(store_err)?;
            if name == subject {
                n += u64::try_from(count).unwrap_or(u64::MAX);
            }
        }
        Ok(n)
    }

    pub(crate) async fn touch(
        &self,
        group: &GroupId,
        device_id: u64,
        now_ms: u64,
    ) -> SyncResult<()> {
        // Called when the device disconnects: its acknowledgements first.
        self.flush_acks(group, device_id).await?;
        self.update_devices(group, |list| {
            match list.iter_mut().find(|d| d.device_id == device_id) {
                Some(d) => {
                    d.last_seen_ms = now_ms;
                    true
                }
                None => false,
            }
        })
        .await
        .map(drop)
    }

    pub(crate) async fn devices(&self, group: &GroupId) -> SyncResult<Vec<DeviceRecord>> {
        Ok(self.device_list(group).await?.0)
    }

    /// The group's device ids.
    pub(crate) async fn device_ids(&self, group: &GroupId) -> SyncResult<Vec<u64>> {
        Ok(self
            .device_list(group)
            .await?
            .0
            .iter()
            .map(|d| d.device_id)
            .collect())
    }

    /// Removes the device from the list (so nothing more is queued for it),
    /// then purges its queue.
    pub(crate) async fn drop_device(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        let mut found = false;
        self.update_devices(group, |list| {
            let before = list.len();
            list.retain(|d| d.device_id != device_id);
            found = list.len() < before;
            found
        })
        .await?;
        self.queues
            .purge()
            .filter(queue_subject(group, device_id))
            .await
            .map_err(store_err)?;
        Ok(found)
    }

    /// Queues `envelopes` for `recipients`: every copy published, then every
    /// JetStream ack awaited; then the recipients' readers woken on every
    /// node.
    pub(crate) async fn append(
        &self,
        group: &GroupId,
        sender: u64,
        recipients: &[u64],
        envelopes: &[&[u8]],
        now_ms: u64,
    ) -> SyncResult<()> {
        let subjects: Vec<String> = recipients
            .iter()
            .map(|&r| queue_subject(group, r))
            .collect();
        let mut acks = Vec::with_capacity(envelopes.len() * recipients.len());
        for env in envelopes {
            let mut payload = Vec::with_capacity(16 + env.len());
            payload.extend_from_slice(&sender.to_le_bytes());
            payload.extend_from_slice(&now_ms.to_le_bytes());
            payload.extend_from_slice(env);
            let payload = bytes::Bytes::from(payload);
            for s in &subjects {
                acks.push(
                    self.js
                        .publish(s.clone(), payload.clone())
                        .await
                        .map_err(store_err)?,
                );
            }
        }
        for ack in acks {
            ack.await.map_err(store_err)?;
        }
        for &r in recipients {
            self.coord.publish(wake_message(group, r)).await?;
        }
        Ok(())
    }

    /// Up to `limit` entries of the device's queue after position `after`,
    /// one direct get ("next on this subject from N") each.
    pub(crate) async fn read(
        &self,
        group: &GroupId,
        device_id: u64,
        after: u64,
        limit: usize,
    ) -> SyncResult<Vec<Entry>> {
        let subject = queue_subject(group, device_id);
        let mut out = Vec::new();
        let mut from = after.saturating_add(1);
        // The subject's last entry first (the server indexes it): a dry
        // queue costs one lookup, and the reads below stop at it instead of
        // searching the rest of the stream for a next entry that is not
        // there.
        let last = match self
            .queues
            .direct_get_last_for_subject(subject.as_str())
            .await
        {
            Ok(m) => m.sequence,
            Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(store_err(e)),
        };
        while out.len() < limit && from <= last {
            let m = match self
                .queues
                .direct_get_next_for_subject(subject.as_str(), Some(from))
                .await
            {
                Ok(m) => m,
                Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => break,
                Err(e) => return Err(store_err(e)),
            };
            if m.subject.as_str() != subject || m.sequence < from {
                return Err(corrupt("queue read (another subject's message)"));
            }
            let p = &m.payload;
            let (Some(sender), Some(timestamp_ms)) = (u64_at(p, 0), u64_at(p, 8)) else {
                return Err(corrupt("queue entry"));
            };
            out.push(Entry {
                seq: m.sequence,
                sender,
                timestamp_ms,
                envelope: p[16..].to_vec(),
            });
            from = m.sequence.saturating_add(1);
        }
        Ok(out)
    }

    /// The device acknowledged `n` entries and with them everything before
    /// position `below` (the oldest it has not acknowledged): every entry on
    /// its subject before `below` was delivered on this connection (a
    /// connection reads its subject from the start) and acknowledged, so
    /// they are purged together, once every [`PURGE_EVERY`]
    /// acknowledgements and when the device disconnects, with one request
    /// instead of one per entry (a JetStream API call costs the server far
    /// more than a direct get). After a node's crash at most that many
    /// acknowledged entries are delivered again, and the device refuses them
    /// as replays, as with the embedded store's cursor. A device can only
    /// purge its own subject, and only below what it was delivered.
    pub(crate) async fn ack(
        &self,
        group: &GroupId,
        device_id: u64,
        n: usize,
        below: u64,
    ) -> SyncResult<()> {
        let due = {
            let mut acked = self.acked.lock().unwrap_or_else(PoisonError::into_inner);
            let e = acked.entry((*group, device_id)).or_insert((0, 0));
            e.0 += n;
            e.1 = e.1.max(below);
            let (count, b) = *e;
            if count >= PURGE_EVERY {
                acked.remove(&(*group, device_id));
                Some(b)
            } else {
                None
            }
        };
        match due {
            Some(below) => self.purge_below(group, device_id, below).await,
            None => Ok(()),
        }
    }

    /// Purges what the device acknowledged and is not purged yet (at
    /// disconnect).
    async fn flush_acks(&self, group: &GroupId, device_id: u64) -> SyncResult<()> {
        let due = self
            .acked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(*group, device_id));
        match due {
            Some((_, below)) => self.purge_below(group, device_id, below).await,
            None => Ok(()),
        }
    }

    async fn purge_below(&self, group: &GroupId, device_id: u64, below: u64) -> SyncResult<()> {
        self.queues
            .purge()
            .filter(queue_subject(group, device_id))
            .sequence(below)
            .await
            .map(drop)
            .map_err(store_err)
    }
}

/// Leases, locks and events between nodes: the hub's half of the NATS mode.
#[derive(Clone)]
pub struct NatsCoord {
    client: async_nats::Client,
    leader: kv::Store,
    txn: kv::Store,
}

/// A transaction lock as stored: who holds it, until when, for what scope.
struct Lock {
    holder: u64,
    expires_ms: u64,
    scope: Vec<u8>,
    revision: u64,
}

impl NatsCoord {
    /// Publishes a group event to every node (core NATS: not stored; a node
    /// that is down misses it, as with Redis Pub/Sub).
    pub(crate) async fn publish(&self, msg: Vec<u8>) -> SyncResult<()> {
        self.client
            .publish(NATS_EVENT_SUBJECT, bytes::Bytes::from(msg))
            .await
            .map_err(store_err)
    }

    /// Takes the group's leader lease if nobody holds it.
    pub(crate) async fn try_lead(&self, group: &GroupId, value: &str) -> SyncResult<bool> {
        match self
            .leader
            .create(
                group_key(group),
                bytes::Bytes::copy_from_slice(value.as_bytes()),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn lease_revision(&self, group: &GroupId, value: &str) -> SyncResult<Option<u64>> {
        let entry = self
            .leader
            .entry(group_key(group))
            .await
            .map_err(store_err)?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put && e.value.as_ref() == value.as_bytes())
            .map(|e| e.revision))
    }

    /// Renews the lease if `value` still holds it (a new revision restarts
    /// the bucket's max age). False if it was lost.
    pub(crate) async fn renew(&self, group: &GroupId, value: &str) -> SyncResult<bool> {
        let Some(rev) = self.lease_revision(group, value).await? else {
            return Ok(false);
        };
        match self
            .leader
            .update(
                group_key(group),
                bytes::Bytes::copy_from_slice(value.as_bytes()),
                rev,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Releases the lease if `value` holds it. True if it was released.
    pub(crate) async fn release(&self, group: &GroupId, value: &str) -> SyncResult<bool> {
        let Some(rev) = self.lease_revision(group, value).await? else {
            return Ok(false);
        };
        Ok(self
            .leader
            .delete_expect_revision(group_key(group), Some(rev))
            .await
            .is_ok())
    }

    async fn lock(&self, group: &GroupId) -> SyncResult<Option<Lock>> {
        let Some(e) = self.txn.entry(group_key(group)).await.map_err(store_err)? else {
            return Ok(None);
        };
        if e.operation != kv::Operation::Put {
            return Ok(None);
        }
        let (Some(holder), Some(expires_ms)) = (u64_at(&e.value, 0), u64_at(&e.value, 8)) else {
            return Err(corrupt("transaction lock"));
        };
        Ok(Some(Lock {
            holder,
            expires_ms,
            scope: e.value[16..].to_vec(),
            revision: e.revision,
        }))
    }

    /// Takes the group's transaction lock for `ttl_ms`, over a lapsed one
    /// if need be. `Err((holder, scope))` when another device holds it.
    pub(crate) async fn begin(
        &self,
        group: &GroupId,
        device_id: u64,
        scope: &[u8],
        ttl_ms: u64,
        now_ms: u64,
    ) -> SyncResult<Result<(), (u64, Vec<u8>)>> {
        let mut value = device_id.to_le_bytes().to_vec();
        value.extend_from_slice(&now_ms.saturating_add(ttl_ms).to_le_bytes());
        value.extend_from_slice(scope);
        for _ in 0..3 {
            let written = match self.lock(group).await? {
                Some(l) if l.expires_ms > now_ms => return Ok(Err((l.holder, l.scope))),
                Some(l) => self
                    .txn
                    .update(
                        group_key(group),
                        bytes::Bytes::from(value.clone()),
                        l.revision,
                    )
                    .await
                    .map_err(|e| {
                        (
                            e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                            store_err(e),
                        )
                    }),
                None => self
                    .txn
                    .create(group_key(group), bytes::Bytes::from(value.clone()))
                    .await
                    .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, store_err(e))),
            };
            match written {
                Ok(_) => return Ok(Ok(())),
                Err((true, _)) => continue,
                Err((false, e)) => return Err(e),
            }
        }
        Err(SyncError::Store(
            "the transaction lock kept changing hands".into(),
        ))
    }

    /// The device holding the group's lock now, if any.
    pub(crate) async fn holder(&self, group: &GroupId, now_ms: u64) -> SyncResult<Option<u64>> {
        Ok(self
            .lock(group)
            .await?
            .filter(|l| l.expires_ms > now_ms)
            .map(|l| l.holder))
    }

    /// If `device_id` holds the lock now (by this node's clock), releases
    /// it and returns its scope (to announce the end).
    pub(crate) async fn take(
        &self,
        group: &GroupId,
        device_id: u64,
    ) -> SyncResult<Option<Vec<u8>>> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let Some(l) = self
            .lock(group)
            .await?
            .filter(|l| l.holder == device_id && l.expires_ms > now_ms)
        else {
            return Ok(None);
        };
        match self
            .txn
            .delete_expect_revision(group_key(group), Some(l.revision))
            .await
        {
            Ok(()) => Ok(Some(l.scope)),
            // Someone else changed it in between: no longer ours.
            Err(_) => Ok(None),
        }
    }

    /// Whether the group has no live lock now. A lapsed one is removed (at
    /// its revision, so a lock taken in between stays).
    pub(crate) async fn lapsed(&self, group: &GroupId, now_ms: u64) -> SyncResult<bool> {
        match self.lock(group).await? {
            None => Ok(true),
            Some(l) if l.expires_ms > now_ms => Ok(false),
            Some(l) => {
                let _ = self
                    .txn
                    .delete_expect_revision(group_key(group), Some(l.revision))
                    .await;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any device list survives the round trip, and any bytes decode to
        /// a list or a clear error, never a panic.
        #[test]
        fn device_list_codec(
            list in proptest::collection::vec(
                (any::<u64>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..64)),
                0..8,
            ),
            junk in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let list: Vec<DeviceRecord> = list
                .into_iter()
                .map(|(device_id, last_seen_ms, encrypted_info)| DeviceRecord {
                    device_id,
                    encrypted_info,
                    last_seen_ms,
                })
                .collect();
            prop_assert_eq!(decode_devices(&encode_devices(&list)).unwrap(), list);
            let _ = decode_devices(&junk);
        }
    }

    #[test]
    fn device_lists_round_trip_and_truncation_is_an_error() {
        let list = vec![
            DeviceRecord {
                device_id: 7,
                encrypted_info: b"sealed".to_vec(),
                last_seen_ms: 42,
            },
            DeviceRecord {
                device_id: u64::MAX,
                encrypted_info: Vec::new(),
                last_seen_ms: 0,
            },
        ];
        let bytes = encode_devices(&list);
        assert_eq!(decode_devices(&bytes).unwrap(), list);
        assert!(decode_devices(&[]).unwrap().is_empty());
        // The list's length comes first: every cut is an error, the
        // boundary between the two records too.
        for cut in 1..bytes.len() {
            assert!(decode_devices(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
