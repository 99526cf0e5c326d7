//! What the relay stores and what its nodes tell each other: the records of
//! the queue stores and, for the distributed modes, the Redis key names,
//! the lease length and the event encoding (Redis Pub/Sub or core NATS;
//! docs/protocol.md, section 9). Shared by the stores and the hub, so
//! neither imports the other.

use crate::sync::keys::GroupId;

/// One queued envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position, increasing with each envelope queued in the group.
    pub seq: u64,
    /// The device that reflected it.
    pub sender: u64,
    /// When it was queued, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The sealed envelope.
    pub envelope: Vec<u8>,
}

/// One device of a group.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRecord {
    /// Random device id.
    pub device_id: u64,
    /// Its sealed info.
    pub encrypted_info: Vec<u8>,
    /// Last connect or disconnect, ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// The outcome of registering a device at connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Registered (new or known); its queue holds this many envelopes.
    Admitted {
        /// Queue length.
        queue_len: u64,
        /// Devices dropped to make room (drop-least-recent policy).
        dropped: Vec<u64>,
    },
    /// Every slot is taken and the policy is to reject.
    SlotsExhausted,
}

/// The Pub/Sub channel relay nodes share (Redis).
pub const EVENT_CHANNEL: &str = "sdx:ev";

/// The core NATS subject relay nodes share events on (NATS mode).
pub const NATS_EVENT_SUBJECT: &str = "sdx.ev";

/// Leader lease length in the distributed modes; renewed every tick (1 s)
/// by its holder.
pub const LEADER_LEASE_MS: u64 = 4000;

pub(crate) fn dev_key(group: &GroupId) -> String {
    format!("sdx:dev:{}", group.to_hex())
}

pub(crate) fn queue_key(group: &GroupId, device_id: u64) -> String {
    format!("sdx:q:{}:{device_id:016x}", group.to_hex())
}

pub(crate) fn leader_key(group: &GroupId) -> String {
    format!("sdx:leader:{}", group.to_hex())
}

pub(crate) fn txn_key(group: &GroupId) -> String {
    format!("sdx:txn:{}", group.to_hex())
}

pub(crate) const EV_WAKE: u8 = 1;
pub(crate) const EV_ENDED: u8 = 2;
pub(crate) const EV_LEADER_FREE: u8 = 3;
pub(crate) const EV_DROP: u8 = 4;
pub(crate) const EV_CONN: u8 = 5;
pub(crate) const EV_EPHEMERAL: u8 = 6;

pub(crate) fn event(kind: u8, group: &GroupId, rest: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(33 + rest.len());
    v.push(kind);
    v.extend_from_slice(&group.0);
    v.extend_from_slice(rest);
    v
}

/// The Pub/Sub message that wakes a device's queue reader on any node.
pub fn wake_message(group: &GroupId, device_id: u64) -> Vec<u8> {
    event(EV_WAKE, group, &device_id.to_le_bytes())
}
