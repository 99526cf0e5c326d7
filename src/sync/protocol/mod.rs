//! The mediator protocol, sans-IO: the frame codec, the payloads, and one
//! state machine per side (device, relay) plus the group coordination the
//! relay runs. Bytes and clock readings go in; bytes, close codes and events
//! come out. No sockets, no clocks, no tasks: the tokio shells in
//! [`crate::sync::relay`] and [`crate::sync::client`] carry it, and
//! `docs/protocol.md` specifies it for other implementations.
//!
//! Why sans-IO (as quinn-proto, rustls and libthreema's d2m): every state
//! and every refusal can be tested and fuzzed without a network or a timer,
//! and the shells stay small enough to read at a glance.

pub mod device;
pub mod frame;
pub mod group;
pub mod messages;
pub mod relay;

pub use frame::FrameType;
pub use messages::PROTOCOL_VERSION;

/// WebSocket close codes the relay (and the device) use. 4000-4999 is the
/// range RFC 6455 leaves to applications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// Orderly close by either side.
    Normal = 1000,
    /// The relay failed internally (its store); reconnect later.
    InternalError = 1011,
    /// A malformed frame or payload, or a message not allowed in the
    /// connection's state. Do not reconnect with the same software.
    ProtocolError = 4000,
    /// The client hello names a protocol version the relay does not speak.
    UnsupportedVersion = 4001,
    /// No client hello within the handshake timeout.
    HandshakeTimeout = 4002,
    /// The challenge answer is wrong: the device does not hold the group's
    /// path key (or the answer was altered).
    AuthenticationFailed = 4010,
    /// The client hello answers another connection's challenge: a replay.
    ReplayedHello = 4011,
    /// Every device slot of the group is taken and the policy is to reject.
    DeviceSlotsExhausted = 4012,
    /// This device was dropped from the group (by another device, or to
    /// make room under the drop-least-recent policy). Its queue is gone.
    DeviceDropped = 4013,
    /// Another connection with the same device id took over.
    DeviceIdReused = 4014,
}

impl CloseCode {
    /// The code for a number, if it is one of ours.
    pub fn from_u16(code: u16) -> Option<Self> {
        use CloseCode::*;
        Some(match code {
            1000 => Normal,
            1011 => InternalError,
            4000 => ProtocolError,
            4001 => UnsupportedVersion,
            4002 => HandshakeTimeout,
            4010 => AuthenticationFailed,
            4011 => ReplayedHello,
            4012 => DeviceSlotsExhausted,
            4013 => DeviceDropped,
            4014 => DeviceIdReused,
            _ => return None,
        })
    }

    /// Whether a device should reconnect after this close.
    pub fn should_reconnect(self) -> bool {
        matches!(
            self,
            CloseCode::Normal | CloseCode::InternalError | CloseCode::HandshakeTimeout
        )
    }

    /// A short reason for the close frame (never secret).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "bye",
            CloseCode::InternalError => "relay internal error",
            CloseCode::ProtocolError => "protocol error",
            CloseCode::UnsupportedVersion => "unsupported protocol version",
            CloseCode::HandshakeTimeout => "handshake timeout",
            CloseCode::AuthenticationFailed => "authentication failed",
            CloseCode::ReplayedHello => "replayed client hello",
            CloseCode::DeviceSlotsExhausted => "device slots exhausted",
            CloseCode::DeviceDropped => "device dropped",
            CloseCode::DeviceIdReused => "device id connected elsewhere",
        }
    }
}
