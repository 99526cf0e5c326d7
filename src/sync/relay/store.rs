//! The relay's durable state: each group's device list and each device's
//! reflect queue, in sled (one process), or Redis Streams or NATS JetStream
//! (several nodes).
//!
//! The policy lives here, once: who a reflection is queued for (every
//! registered device of the group but its sender) and what happens when a
//! group's slots are full. The backends ([`SledStore`], [`RedisStore`],
//! [`NatsStore`]) only
//! keep records: a device list per group and an ordered queue per device.
//!
//! What is stored is only what the relay sees anyway: group ids (public
//! keys), random device ids, sealed device infos, sealed envelopes, sizes
//! and times. Nothing names an account and nothing is plaintext.

use crate::sync::error::SyncResult;
use crate::sync::keys::GroupId;
use crate::sync::protocol::messages::SlotsExhaustedPolicy;

use super::nats_store::NatsStore;
use super::redis_store::RedisStore;
pub use super::schema::{DeviceRecord, Entry, Registration};
use super::sled_store::SledStore;

/// The queue store: embedded or distributed.
pub enum Store {
    /// sled, in the relay's data directory.
    Sled(SledStore),
    /// Redis Streams, shared by several relay nodes.
    Redis(RedisStore),
    /// NATS JetStream (a stream and KV buckets), shared by several relay
    /// nodes.
    Nats(Box<NatsStore>),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sled($s) => $e,
            Store::Redis($s) => $e,
            Store::Nats($s) => $e,
        }
    };
}

/// A device asking to be registered at connect.
#[derive(Clone, Copy, Debug)]
pub struct Admission<'a> {
    /// Its random id.
    pub device_id: u64,
    /// Its info, sealed under the device-info key.
    pub encrypted_info: &'a [u8],
    /// Now, ms since the Unix epoch (its last-seen time).
    pub now_ms: u64,
    /// The group's slot limit.
    pub max_slots: usize,
    /// What to do when every slot is taken.
    pub policy: SlotsExhaustedPolicy,
}

/// The devices a reflection from `sender` is queued for: every registered
/// device of the group but the sender, connected or not.
pub fn recipients(devices: &[u64], sender: u64) -> Vec<u64> {
    devices.iter().copied().filter(|&d| d != sender).collect()
}

/// Under the slot limit, which devices to drop so one more fits: none if
/// there is room, `None` if the policy is to reject, else the least
/// recently seen (ties by device id, so every node picks the same).
pub fn victims(
    mut devices: Vec<DeviceRecord>,
    max_slots: usize,
    policy: SlotsExhaustedPolicy,
) -> Option<Vec<u64>> {
    if devices.len() < max_slots {
        return Some(Vec::new());
    }
    if policy == SlotsExhaustedPolicy::Reject {
        return None;
    }
    devices.sort_by_key(|d| (d.last_seen_ms, d.device_id));
    let excess = devices.len() + 1 - max_slots.max(1);
    Some(devices.iter().take(excess).map(|d| d.device_id).collect())
}

impl Store {
    /// Registers a device in `group` (or refreshes a known one), enforcing
    /// the slot limit with its policy. The registration is durable when
    /// this returns.
    pub async fn register(&self, group: &GroupId, a: Admission<'_>) -> SyncResult<Registration> {
        let mut dropped = Vec::new();
        if !dispatch!(self, s => s.is_registered(group, a.device_id).await)? {
            let Some(victims) = victims(self.devices(group).await?, a.max_slots, a.policy) else {
                return Ok(Registration::SlotsExhausted);
            };
            for v in victims {
                self.drop_device(group, v).await?;
                dropped.push(v);
            }
        }
        let queue_len =
            dispatch!(self, s => s.admit(group, a.device_id, a.encrypted_info, a.now_ms).await)?;
        Ok(Registration::Admitted { queue_len, dropped })
    }

    /// Updates a device's last-seen time.
    pub async fn touch(&self, group: &GroupId, device_id: u64, now_ms: u64) -> SyncResult<()> {
        dispatch!(self, s => s.touch(group, device_id, now_ms).await)
    }

    /// The group's devices.
    pub async fn devices(&self, group: &GroupId) -> SyncResult<Vec<DeviceRecord>> {
        dispatch!(self, s => s.devices(group).await)
    }

    /// Drops a device and its queue. False if it was not registered.
    pub async fn drop_device(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        dispatch!(self, s => s.drop_device(group, device_id).await)
    }

    /// Durably queues `envelopes` (in order) for every registered device of
    /// the group but the sender. Returns the devices they were queued for.
    pub async fn enqueue(
        &self,
        group: &GroupId,
        sender: u64,
        envelopes: &[&[u8]],
        now_ms: u64,
    ) -> SyncResult<Vec<u64>> {
        let ids = dispatch!(self, s => s.device_ids(group).await.map(|v| v.to_vec()))?;
        let to = recipients(&ids, sender);
        if !envelopes.is_empty() && !to.is_empty() {
            dispatch!(self, s => s.append(group, sender, &to, envelopes, now_ms).await)?;
        }
        Ok(to)
    }

    /// Queues `envelopes` as [`Store::enqueue`] does, but with the embedded
    /// store does not wait for the disk: it returns the recipients and the
    /// flush ticket after which the envelopes are durable (see
    /// [`Store::flushed`]), so a connection keeps reading and delivering
    /// while the flush runs and many reflections share it. The distributed
    /// engines are durable when this returns (ticket `None`).
    pub async fn enqueue_deferred(
        &self,
        group: &GroupId,
        sender: u64,
        envelopes: &[&[u8]],
        now_ms: u64,
    ) -> SyncResult<(Vec<u64>, Option<u64>)> {
        let Store::Sled(s) = self else {
            return Ok((self.enqueue(group, sender, envelopes, now_ms).await?, None));
        };
        let to = recipients(&s.device_ids(group).await?, sender);
        if envelopes.is_empty() || to.is_empty() {
            return Ok((to, None));
        }
        let ticket = s.append_nowait(group, sender, &to, envelopes, now_ms)?;
        Ok((to, Some(ticket)))
    }

    /// The embedded store's completed flushes (tickets from
    /// [`Store::enqueue_deferred`]); `None` for the distributed engines.
    pub fn flushed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            Store::Sled(s) => Some(s.flushed()),
            Store::Redis(_) | Store::Nats(_) => None,
        }
    }

    /// Waits (at most 30 s, then an error) for the embedded store's flush
    /// `ticket`.
    pub async fn wait_flushed(&self, ticket: u64) -> SyncResult<()> {
        match self {
            Store::Sled(s) => s.wait_flushed(ticket).await,
            Store::Redis(_) | Store::Nats(_) => Ok(()),
        }
    }

    /// Up to `limit` entries of a device's queue after position `after`.
    pub async fn read(
        &self,
        group: &GroupId,
        device_id: u64,
        after: u64,
        limit: usize,
    ) -> SyncResult<Vec<Entry>> {
        dispatch!(self, s => s.read(group, device_id, after, limit).await)
    }

    /// The device acknowledged the entries `seqs`, and with them every
    /// entry delivered to it before position `below` (the oldest it has not
    /// acknowledged). The embedded store moves the device's cursor to
    /// `below`; Redis deletes `seqs` from its stream; NATS purges the
    /// device's subject below `below` every few acknowledgements.
    pub async fn ack(
        &self,
        group: &GroupId,
        device_id: u64,
        seqs: &[u64],
        below: u64,
    ) -> SyncResult<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        match self {
            Store::Sled(s) => s.ack(group, device_id, below).await,
            Store::Redis(s) => s.ack(group, device_id, seqs).await,
            Store::Nats(s) => s.ack(group, device_id, seqs.len(), below).await,
        }
    }

    /// Whether this is the distributed store (leases in the engine).
    pub fn is_distributed(&self) -> bool {
        !matches!(self, Store::Sled(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: u64, seen: u64) -> DeviceRecord {
        DeviceRecord {
            device_id: id,
            encrypted_info: Vec::new(),
            last_seen_ms: seen,
        }
    }

    #[test]
    fn recipients_are_everyone_but_the_sender() {
        let ds = [1, 2, 3];
        assert_eq!(recipients(&ds, 2), vec![1, 3]);
        assert_eq!(recipients(&ds, 9), vec![1, 2, 3]);
        assert!(recipients(&ds[..1], 1).is_empty());
    }

    #[test]
    fn a_full_group_rejects_or_drops_the_least_recently_seen() {
        use SlotsExhaustedPolicy::{DropLeastRecent, Reject};
        let ds = vec![dev(1, 30), dev(2, 10), dev(3, 20)];
        assert_eq!(victims(ds.clone(), 4, Reject), Some(vec![]));
        assert_eq!(victims(ds.clone(), 3, Reject), None);
        assert_eq!(victims(ds.clone(), 3, DropLeastRecent), Some(vec![2]));
        // The limit was lowered below the group's size: drop down to it.
        assert_eq!(victims(ds, 1, DropLeastRecent), Some(vec![2, 3, 1]));
    }
}
