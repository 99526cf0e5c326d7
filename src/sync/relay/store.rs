//! The relay's durable state: each group's device list and each device's
//! reflect queue, in sled (one process) or Redis Streams (several nodes).
//!
//! What is stored is only what the relay sees anyway: group ids (public
//! keys), random device ids, sealed device infos, sealed envelopes, sizes
//! and times. Nothing names an account and nothing is plaintext.

use crate::sync::error::SyncResult;
use crate::sync::keys::GroupId;
use crate::sync::protocol::messages::SlotsExhaustedPolicy;

use super::redis_store::RedisStore;
pub use super::schema::{DeviceRecord, Entry, Registration};
use super::sled_store::SledStore;

/// The queue store: embedded or distributed.
pub enum Store {
    /// sled, in the relay's data directory.
    Sled(SledStore),
    /// Redis Streams, shared by several relay nodes.
    Redis(RedisStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sled($s) => $e,
            Store::Redis($s) => $e,
        }
    };
}

impl Store {
    /// Registers `device_id` in `group` (or refreshes it), enforcing the
    /// slot limit with the device's policy.
    pub async fn register(
        &self,
        group: &GroupId,
        device_id: u64,
        encrypted_info: &[u8],
        now_ms: u64,
        max_slots: usize,
        policy: SlotsExhaustedPolicy,
    ) -> SyncResult<Registration> {
        dispatch!(self, s => s.register(group, device_id, encrypted_info, now_ms, max_slots, policy).await)
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
        dispatch!(self, s => s.enqueue(group, sender, envelopes, now_ms).await)
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

    /// Drops an acknowledged entry.
    pub async fn ack(&self, group: &GroupId, device_id: u64, seq: u64) -> SyncResult<()> {
        dispatch!(self, s => s.ack(group, device_id, seq).await)
    }
}
