//! The payloads, as protobuf messages (prost derive; no code generation).
//!
//! Why protobuf: Threema's md-d2m payloads are protobuf, fields can be added
//! without breaking older peers (unknown fields are skipped), and prost's
//! decoder is a well-fuzzed parser of untrusted bytes. Field numbers are
//! the wire contract (docs/protocol.md lists them); never renumber.
//!
//! Device ids are `fixed64` because they are uniformly random: a varint
//! would take 10 bytes for most of them.

#![allow(missing_docs)] // Each field is documented in docs/protocol.md.

use prost::Message;

use super::frame::{self, FrameType};
use crate::sync::error::{SyncError, SyncResult};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Relay → device, first frame (0x10).
#[derive(Clone, PartialEq, Message)]
pub struct ServerHello {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// Random 32 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub challenge: Vec<u8>,
    /// The relay's ephemeral X25519 public key for this connection.
    #[prost(bytes = "vec", tag = "3")]
    pub ephemeral_public: Vec<u8>,
}

/// What the relay does when a new device finds every slot taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SlotsExhaustedPolicy {
    /// Refuse the new device (close code 4012).
    Reject = 0,
    /// Drop the device seen least recently, with its queue.
    DropLeastRecent = 1,
}

/// Device → relay (0x11).
#[derive(Clone, PartialEq, Message)]
pub struct ClientHello {
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The challenge sealed under X25519(path secret, relay ephemeral).
    #[prost(bytes = "vec", tag = "2")]
    pub response: Vec<u8>,
    /// The relay ephemeral key this answer is for (a replayed hello names an
    /// old one).
    #[prost(bytes = "vec", tag = "3")]
    pub ephemeral_public: Vec<u8>,
    #[prost(fixed64, tag = "4")]
    pub device_id: u64,
    /// The device's info, sealed under the device-info key.
    #[prost(bytes = "vec", tag = "5")]
    pub encrypted_device_info: Vec<u8>,
    #[prost(enumeration = "SlotsExhaustedPolicy", tag = "6")]
    pub slots_exhausted_policy: i32,
}

/// Relay → device (0x12).
#[derive(Clone, PartialEq, Message)]
pub struct ServerInfo {
    /// The relay's clock, milliseconds since the Unix epoch.
    #[prost(uint64, tag = "1")]
    pub current_time_ms: u64,
    #[prost(uint32, tag = "2")]
    pub max_device_slots: u32,
    /// Envelopes waiting in this device's queue.
    #[prost(uint32, tag = "3")]
    pub reflection_queue_length: u32,
}

/// An empty payload (0x20, 0x21, 0x30, 0x41, 0x42, 0x43).
#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

/// One device of the group, in [`DevicesInfo`].
#[derive(Clone, PartialEq, Message)]
pub struct DeviceEntry {
    #[prost(fixed64, tag = "1")]
    pub device_id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub encrypted_device_info: Vec<u8>,
    /// Last connect or disconnect, milliseconds since the Unix epoch.
    #[prost(uint64, tag = "3")]
    pub last_seen_ms: u64,
    #[prost(bool, tag = "4")]
    pub connected: bool,
}

/// Relay → device (0x31).
#[derive(Clone, PartialEq, Message)]
pub struct DevicesInfo {
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<DeviceEntry>,
}

/// Device → relay (0x32) and relay → device (0x33).
#[derive(Clone, PartialEq, Message)]
pub struct DeviceRef {
    #[prost(fixed64, tag = "1")]
    pub device_id: u64,
}

/// Device → relay (0x40).
#[derive(Clone, PartialEq, Message)]
pub struct BeginTransaction {
    /// The scope sealed under the transaction-scope key.
    #[prost(bytes = "vec", tag = "1")]
    pub encrypted_scope: Vec<u8>,
    /// Seconds after which the relay releases the lock if not committed.
    #[prost(uint32, tag = "2")]
    pub ttl_secs: u32,
}

/// Relay → device: rejected (0x44) or ended (0x45).
#[derive(Clone, PartialEq, Message)]
pub struct TransactionInfo {
    /// The holder's device id.
    #[prost(fixed64, tag = "1")]
    pub device_id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub encrypted_scope: Vec<u8>,
}

/// Device → relay (0x80).
#[derive(Clone, PartialEq, Message)]
pub struct Reflect {
    /// Chosen by the device, echoed in the ack.
    #[prost(uint32, tag = "1")]
    pub reflect_id: u32,
    /// Not queued: delivered only to devices connected now.
    #[prost(bool, tag = "2")]
    pub ephemeral: bool,
    #[prost(bytes = "vec", tag = "3")]
    pub envelope: Vec<u8>,
}

/// Relay → device (0x81).
#[derive(Clone, PartialEq, Message)]
pub struct ReflectAck {
    #[prost(uint32, tag = "1")]
    pub reflect_id: u32,
    /// When the relay queued it, milliseconds since the Unix epoch.
    #[prost(uint64, tag = "2")]
    pub timestamp_ms: u64,
}

/// Relay → device (0x82).
#[derive(Clone, PartialEq, Message)]
pub struct Reflected {
    /// Position in the receiver's queue; increases with each envelope.
    #[prost(uint64, tag = "1")]
    pub reflected_id: u64,
    #[prost(fixed64, tag = "2")]
    pub sender_device_id: u64,
    #[prost(uint64, tag = "3")]
    pub timestamp_ms: u64,
    #[prost(bool, tag = "4")]
    pub ephemeral: bool,
    #[prost(bytes = "vec", tag = "5")]
    pub envelope: Vec<u8>,
}

/// Device → relay (0x83).
#[derive(Clone, PartialEq, Message)]
pub struct ReflectedAck {
    #[prost(uint64, tag = "1")]
    pub reflected_id: u64,
}

/// Encodes a message as a frame of type `ty`.
pub fn frame<M: Message>(ty: FrameType, msg: &M) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame::HEADER_LEN + msg.encoded_len());
    out.extend_from_slice(&[ty as u8, 0, 0, 0]);
    // Encoding into a Vec cannot run out of room.
    let _ = msg.encode(&mut out);
    out
}

/// Decodes a payload as `M`, with a clear error naming the message.
pub fn decode<M: Message + Default>(what: &'static str, payload: &[u8]) -> SyncResult<M> {
    M::decode(payload).map_err(|e| SyncError::Malformed {
        what,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_through_frames() {
        let r = Reflected {
            reflected_id: 7,
            sender_device_id: u64::MAX,
            timestamp_ms: 1,
            ephemeral: true,
            envelope: vec![1, 2, 3],
        };
        let f = frame(FrameType::Reflected, &r);
        let (ty, payload) = frame::decode(&f).unwrap();
        assert_eq!(ty, FrameType::Reflected);
        assert_eq!(decode::<Reflected>("Reflected", payload).unwrap(), r);
        assert!(decode::<Reflected>("Reflected", &[0xff, 0xff]).is_err());
    }
}
