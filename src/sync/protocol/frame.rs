//! The frame codec: `type u8 ‖ 3 reserved zero bytes ‖ payload`, one frame
//! per WebSocket binary message.
//!
//! Type codes follow Threema's md-d2m protocol wherever a message has a
//! counterpart there, so the two can be read side by side.

use crate::sync::error::{SyncError, SyncResult};

/// Length of the frame header.
pub const HEADER_LEN: usize = 4;

/// The largest frame either side accepts: an envelope of the largest bucket
/// (4 MiB) plus the reflect header and room for protobuf fields.
pub const MAX_FRAME_LEN: usize = (4 << 20) + 4096;

/// The WebSocket read buffer the tokio shells ask tungstenite for. Its
/// default, 128 KiB, is zeroed on every read from the socket and held per
/// connection: with frames of a few hundred bytes that zeroing was two
/// thirds of the relay's instructions under load, and 1,000 connections
/// held 128 MiB of it. Larger frames take several reads.
pub const WS_READ_BUFFER: usize = 8 * 1024;

macro_rules! types {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, )*) => {
        /// A frame's type code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum FrameType {
            $( $(#[$doc])* $name = $code, )*
        }

        impl FrameType {
            /// The type for a code, if it is one this build knows.
            pub fn from_code(code: u8) -> Option<Self> {
                match code {
                    $( $code => Some(FrameType::$name), )*
                    _ => None,
                }
            }

            /// Every type, in code order.
            pub const ALL: &'static [FrameType] = &[$(FrameType::$name,)*];
        }
    };
}

types! {
    /// Relay → device: version, challenge, ephemeral key.
    ServerHello = 0x10,
    /// Device → relay: challenge answer, device id, sealed device info.
    ClientHello = 0x11,
    /// Relay → device: handshake done; time, slots, queue length.
    ServerInfo = 0x12,
    /// Relay → device: the backlog present at connect has been delivered.
    ReflectionQueueDry = 0x20,
    /// Relay → device: this device is now the group's leader.
    RolePromotedToLeader = 0x21,
    /// Device → relay: list the group's devices.
    GetDevicesInfo = 0x30,
    /// Relay → device: the group's devices.
    DevicesInfo = 0x31,
    /// Device → relay: remove a device and its queue.
    DropDevice = 0x32,
    /// Relay → device: the device was removed.
    DropDeviceAck = 0x33,
    /// Device → relay: take the group's transaction lock.
    BeginTransaction = 0x40,
    /// Relay → device: the lock is yours.
    BeginTransactionAck = 0x41,
    /// Device → relay: deliver the transaction's reflections and release.
    CommitTransaction = 0x42,
    /// Relay → device: committed and released.
    CommitTransactionAck = 0x43,
    /// Relay → device: another device holds the lock.
    TransactionRejected = 0x44,
    /// Relay → devices: a transaction ended; a rejected device may retry.
    TransactionEnded = 0x45,
    /// Device → relay: reflect an envelope to the other devices.
    Reflect = 0x80,
    /// Relay → device: the envelope is durably queued for every other device.
    ReflectAck = 0x81,
    /// Relay → device: an envelope another device reflected.
    Reflected = 0x82,
    /// Device → relay: processed; drop it from my queue.
    ReflectedAck = 0x83,
}

/// Encodes one frame.
pub fn encode(ty: FrameType, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&[ty as u8, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// Decodes one frame into its type and payload. Refuses short frames,
/// nonzero reserved bytes, unknown types and frames over [`MAX_FRAME_LEN`].
pub fn decode(frame: &[u8]) -> SyncResult<(FrameType, &[u8])> {
    let malformed = |detail: String| SyncError::Malformed {
        what: "frame",
        detail,
    };
    if frame.len() > MAX_FRAME_LEN {
        return Err(malformed(format!(
            "{} bytes, over the {MAX_FRAME_LEN}-byte limit",
            frame.len()
        )));
    }
    let Some((header, payload)) = frame.split_first_chunk::<HEADER_LEN>() else {
        return Err(malformed(format!(
            "{} bytes, shorter than the header",
            frame.len()
        )));
    };
    if header[1..] != [0, 0, 0] {
        return Err(malformed("reserved header bytes are not zero".into()));
    }
    let ty = FrameType::from_code(header[0])
        .ok_or_else(|| malformed(format!("unknown type 0x{:02x}", header[0])))?;
    Ok((ty, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes_round_trip() {
        for &ty in FrameType::ALL {
            let f = encode(ty, b"xyz");
            assert_eq!(f[..4], [ty as u8, 0, 0, 0]);
            assert_eq!(decode(&f).unwrap(), (ty, &b"xyz"[..]));
        }
        assert_eq!(FrameType::ServerHello as u8, 0x10);
        assert_eq!(FrameType::TransactionEnded as u8, 0x45);
        assert_eq!(FrameType::ReflectedAck as u8, 0x83);
    }

    #[test]
    fn refuses_bad_frames() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x80, 0, 0]).is_err());
        assert!(decode(&[0x80, 0, 1, 0]).is_err());
        assert!(decode(&[0x7f, 0, 0, 0]).is_err());
        assert!(decode(&[0x80, 0, 0, 0]).is_ok());
        assert!(decode(&vec![0x80; MAX_FRAME_LEN + 1]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((ty, payload)) = decode(&bytes) {
                prop_assert_eq!(encode(ty, payload), bytes);
            }
        }
    }
}
