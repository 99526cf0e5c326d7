//! Multi-device sync: group keys, the mediator protocol, the relay and the
//! device client, after Threema's multi-device design.
//!
//! The devices of one account share their index work through a relay they
//! do not trust. The relay knows a group only by its [`keys::GroupId`] (a
//! public key derived from the group key) and each device only by a random
//! 64-bit id; everything devices exchange is sealed on the device
//! ([`envelope`]) under a key the relay never holds.
//!
//! - [`keys`]: the device group key, its sub-keys and the group id (always built).
//! - [`envelope`]: sealing, padding and replay refusal of reflected envelopes
//!   (always built).
//! - `protocol` (feature `mediator`): the wire format and the sans-IO state
//!   machines of both sides; `docs/protocol.md` is its specification.
//! - `relay` (feature `mediator`): the relay's tokio shell and its queue
//!   stores (sled, Redis Streams).
//! - `client` (feature `mediator`): the device's tokio shell.
//! - [`share`] (feature `mediator`): one index shared by the devices of an
//!   account: the leader ingests and reflects, the others apply.
//! - `tls` (feature `mediator`): the relay's certificate and the roots a
//!   device trusts for `wss://`.

pub mod envelope;
mod error;
pub mod keys;

#[cfg(feature = "mediator")]
pub mod client;
#[cfg(feature = "mediator")]
pub mod protocol;
#[cfg(feature = "mediator")]
pub mod relay;
#[cfg(feature = "mediator")]
pub mod share;
#[cfg(feature = "mediator")]
pub mod tls;

pub use error::{SyncError, SyncResult};
