//! The device's side of the protocol, sans-IO: it answers the handshake,
//! seals and reflects envelopes, opens and replay-checks what it receives,
//! and keeps what it reflected until the relay acknowledges it, resending
//! after a reconnect.
//!
//! ```text
//!  AwaitingHello ──ServerHello──► AwaitingInfo ──ServerInfo──► Established
//!        ▲                                                          │
//!        └──────────────────────── reconnect() ◄── connection lost ─┘
//! ```
//!
//! Why resending is safe: every envelope carries its sender's counter, and
//! every receiver refuses a counter it accepted before (a bounded window per
//! sender, [`ReplayGuard`]), so an envelope the relay had queued before its
//! acknowledgement was lost reaches each application once.
//! Why a received envelope's counter is recorded only when the application
//! acknowledges it: a device that crashes before processing an envelope gets
//! it again after reconnecting instead of refusing it as a replay.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::CloseCode;
use super::frame::{self, FrameType};
use super::messages::{self as m, PROTOCOL_VERSION, SlotsExhaustedPolicy};
use crate::sync::envelope::{self, ReplayGuard};
use crate::sync::error::{SyncError, SyncResult};
use crate::sync::keys::{GroupKeys, NONCE_LEN};

/// What the device sends on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceOutput {
    /// A binary frame.
    Frame(Vec<u8>),
    /// Close the connection with this code.
    Close(CloseCode),
}

/// Why a reflected envelope was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It failed authentication (altered, truncated, re-attributed, foreign).
    Tampered,
    /// Its nonce was accepted before.
    Replayed,
}

/// What the application sees. The machine produces the envelope, role and
/// transaction notices (through [`DeviceEvent::App`]); the tokio shell adds
/// the connection notices and hands the stream out as
/// [`crate::sync::client::Event`], which is this type.
#[derive(Debug)]
pub enum Event {
    /// (Re)connected and authenticated: the handshake completed.
    Connected(m::ServerInfo),
    /// The connection was lost; the client reconnects if configured to.
    Disconnected {
        /// The relay's close code, if it sent one.
        code: Option<u16>,
    },
    /// Another device's envelope, authenticated and not a replay. Apply it,
    /// then acknowledge it (unless ephemeral).
    Reflected {
        /// Queue position, for the ack.
        reflected_id: u64,
        /// The sender's device id.
        sender: u64,
        /// When the relay queued it.
        timestamp_ms: u64,
        /// Whether it was ephemeral (not queued, no ack).
        ephemeral: bool,
        /// The plaintext (never shown by `Debug`).
        plaintext: crate::sync::envelope::Plaintext,
    },
    /// An envelope was refused (logged without content, and acknowledged,
    /// so it is not redelivered).
    Refused {
        /// Queue position.
        reflected_id: u64,
        /// The device the relay named as sender.
        sender: u64,
        /// Why.
        reason: Refusal,
    },
    /// The backlog has been delivered.
    QueueDry,
    /// This device now leads the group.
    PromotedToLeader,
    /// A transaction ended (ours or another's); a rejected device may retry.
    TransactionEnded {
        /// The holder.
        holder: u64,
        /// The sealed scope.
        encrypted_scope: Vec<u8>,
    },
    /// The relay closed the connection for good (no reconnect).
    Closed {
        /// Close code.
        code: u16,
    },
}

/// What the machine reports: answers to the device's own requests, and
/// [`Event`]s for the application.
#[derive(Debug)]
pub enum DeviceEvent {
    /// For the application as is ([`Event::Connected`] when the handshake
    /// completes, envelopes, roles, ended transactions).
    App(Event),
    /// The relay queued reflection `reflect_id` for every other device.
    ReflectAck {
        /// The id [`DeviceMachine::reflect`] returned.
        reflect_id: u32,
        /// The relay's time of queueing, ms since the Unix epoch.
        timestamp_ms: u64,
    },
    /// The transaction lock is ours.
    TransactionBegan,
    /// Another device holds the lock.
    TransactionRejected {
        /// Its device id.
        holder: u64,
        /// Its sealed scope.
        encrypted_scope: Vec<u8>,
    },
    /// Our transaction committed: its reflections are queued.
    TransactionCommitted,
    /// Our open transaction was lost with the connection; its reflections
    /// (these ids) were never delivered.
    TransactionLost {
        /// The reflect ids that were staged.
        reflect_ids: Vec<u32>,
    },
    /// The group's devices.
    DevicesInfo(Vec<m::DeviceEntry>),
    /// A device was dropped.
    DeviceDropped(u64),
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitingHello,
    AwaitingInfo,
    Established,
    Closed,
}

/// An envelope handed to the application, awaiting its acknowledgement.
struct Pending {
    nonce: [u8; NONCE_LEN],
    sender: u64,
    counter: u64,
}

struct Unacked {
    frame: Vec<u8>,
    in_txn: bool,
}

/// The device's state machine; it lives across reconnects.
pub struct DeviceMachine {
    keys: Arc<GroupKeys>,
    device_id: u64,
    encrypted_info: Vec<u8>,
    policy: SlotsExhaustedPolicy,
    guard: ReplayGuard,
    state: State,
    next_reflect_id: u32,
    unacked: BTreeMap<u32, Unacked>,
    /// Envelopes handed to the application and not yet acknowledged by it,
    /// across reconnects (queue positions survive them).
    pending: HashMap<u64, Pending>,
    pending_nonces: HashSet<[u8; NONCE_LEN]>,
    /// Which of them the current connection delivered (only those may be
    /// acknowledged to the relay on it).
    delivered_here: HashSet<u64>,
    in_txn: bool,
    out: VecDeque<DeviceOutput>,
    events: VecDeque<DeviceEvent>,
}

impl std::fmt::Debug for DeviceMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceMachine")
            .field("group", &self.keys.group_id())
            .field("device_id", &format_args!("{:016x}", self.device_id))
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DeviceMachine {
    /// A device `device_id` of the group `keys`, described to the others by
    /// `info` (sealed here under the device-info key). `guard` holds the
    /// nonces accepted so far.
    pub fn new(
        keys: Arc<GroupKeys>,
        device_id: u64,
        info: &[u8],
        policy: SlotsExhaustedPolicy,
        guard: ReplayGuard,
    ) -> SyncResult<Self> {
        let encrypted_info = keys.seal_device_info(device_id, info)?;
        Ok(DeviceMachine {
            keys,
            device_id,
            encrypted_info,
            policy,
            guard,
            state: State::AwaitingHello,
            next_reflect_id: 1,
            unacked: BTreeMap::new(),
            pending: HashMap::new(),
            pending_nonces: HashSet::new(),
            delivered_here: HashSet::new(),
            in_txn: false,
            out: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// This device's id.
    pub fn device_id(&self) -> u64 {
        self.device_id
    }

    /// Takes the replay guard out (to keep it for a later connection); the
    /// machine is left with an empty one.
    pub fn take_guard(&mut self) -> ReplayGuard {
        std::mem::take(&mut self.guard)
    }

    /// Whether the handshake is done on the current connection.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Reflections not yet acknowledged by the relay.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// A new connection starts: forget the old one's state. Reflections not
    /// acknowledged are resent once established; an open transaction is lost.
    pub fn reconnect(&mut self) {
        self.state = State::AwaitingHello;
        self.out.clear();
        self.delivered_here.clear();
        if self.in_txn {
            self.in_txn = false;
            let lost: Vec<u32> = self
                .unacked
                .iter()
                .filter(|(_, u)| u.in_txn)
                .map(|(id, _)| *id)
                .collect();
            for id in &lost {
                self.unacked.remove(id);
            }
            self.events
                .push_back(DeviceEvent::TransactionLost { reflect_ids: lost });
        }
    }

    /// The next frame (or close) to send.
    pub fn poll_output(&mut self) -> Option<DeviceOutput> {
        self.out.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    fn send<M: prost::Message>(&mut self, ty: FrameType, msg: &M) {
        self.out.push_back(DeviceOutput::Frame(m::frame(ty, msg)));
    }

    fn fail(&mut self, e: SyncError) -> SyncError {
        self.state = State::Closed;
        self.out
            .push_back(DeviceOutput::Close(CloseCode::ProtocolError));
        e
    }

    /// One frame from the relay. An error means the relay broke the protocol;
    /// the machine has queued a close.
    pub fn recv(&mut self, bytes: &[u8]) -> SyncResult<()> {
        let (ty, payload) = match frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return Err(self.fail(e)),
        };
        match self.handle(ty, payload) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn handle(&mut self, ty: FrameType, payload: &[u8]) -> SyncResult<()> {
        match (&self.state, ty) {
            (State::AwaitingHello, FrameType::ServerHello) => {
                let h: m::ServerHello = m::decode("ServerHello", payload)?;
                if h.version != PROTOCOL_VERSION {
                    return Err(SyncError::Protocol(format!(
                        "the relay speaks protocol version {}, this build {PROTOCOL_VERSION}",
                        h.version
                    )));
                }
                let bad = |what: &str| SyncError::Malformed {
                    what: "ServerHello",
                    detail: format!("{what} is not 32 bytes"),
                };
                let eph: [u8; 32] = h
                    .ephemeral_public
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad("the ephemeral key"))?;
                let chal: [u8; 32] = h
                    .challenge
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad("the challenge"))?;
                let response = self.keys.answer_challenge(&eph, &chal)?;
                let hello = m::ClientHello {
                    version: PROTOCOL_VERSION,
                    response,
                    ephemeral_public: eph.to_vec(),
                    device_id: self.device_id,
                    encrypted_device_info: self.encrypted_info.clone(),
                    slots_exhausted_policy: self.policy as i32,
                };
                self.send(FrameType::ClientHello, &hello);
                self.state = State::AwaitingInfo;
                Ok(())
            }
            (State::AwaitingInfo, FrameType::ServerInfo) => {
                let info: m::ServerInfo = m::decode("ServerInfo", payload)?;
                self.state = State::Established;
                self.events
                    .push_back(DeviceEvent::App(Event::Connected(info)));
                let frames: Vec<Vec<u8>> = self.unacked.values().map(|u| u.frame.clone()).collect();
                for f in frames {
                    self.out.push_back(DeviceOutput::Frame(f));
                }
                Ok(())
            }
            (State::Established, FrameType::ReflectAck) => {
                let a: m::ReflectAck = m::decode("ReflectAck", payload)?;
                if self.unacked.remove(&a.reflect_id).is_some() {
                    self.events.push_back(DeviceEvent::ReflectAck {
                        reflect_id: a.reflect_id,
                        timestamp_ms: a.timestamp_ms,
                    });
                }
                Ok(())
            }
            (State::Established, FrameType::Reflected) => {
                let r: m::Reflected = m::decode("Reflected", payload)?;
                self.on_reflected(r)
            }
            (State::Established, FrameType::ReflectionQueueDry) => {
                let _: m::Empty = m::decode("ReflectionQueueDry", payload)?;
                self.events.push_back(DeviceEvent::App(Event::QueueDry));
                Ok(())
            }
            (State::Established, FrameType::RolePromotedToLeader) => {
                let _: m::Empty = m::decode("RolePromotedToLeader", payload)?;
                self.events
                    .push_back(DeviceEvent::App(Event::PromotedToLeader));
                Ok(())
            }
            (State::Established, FrameType::BeginTransactionAck) => {
                let _: m::Empty = m::decode("BeginTransactionAck", payload)?;
                self.in_txn = true;
                self.events.push_back(DeviceEvent::TransactionBegan);
                Ok(())
            }
            (State::Established, FrameType::CommitTransactionAck) => {
                let _: m::Empty = m::decode("CommitTransactionAck", payload)?;
                self.in_txn = false;
                self.events.push_back(DeviceEvent::TransactionCommitted);
                Ok(())
            }
            (State::Established, FrameType::TransactionRejected) => {
                let t: m::TransactionInfo = m::decode("TransactionRejected", payload)?;
                self.events.push_back(DeviceEvent::TransactionRejected {
                    holder: t.device_id,
                    encrypted_scope: t.encrypted_scope,
                });
                Ok(())
            }
            (State::Established, FrameType::TransactionEnded) => {
                let t: m::TransactionInfo = m::decode("TransactionEnded", payload)?;
                self.events
                    .push_back(DeviceEvent::App(Event::TransactionEnded {
                        holder: t.device_id,
                        encrypted_scope: t.encrypted_scope,
                    }));
                Ok(())
            }
            (State::Established, FrameType::DevicesInfo) => {
                let d: m::DevicesInfo = m::decode("DevicesInfo", payload)?;
                self.events.push_back(DeviceEvent::DevicesInfo(d.devices));
                Ok(())
            }
            (State::Established, FrameType::DropDeviceAck) => {
                let d: m::DeviceRef = m::decode("DropDeviceAck", payload)?;
                self.events
                    .push_back(DeviceEvent::DeviceDropped(d.device_id));
                Ok(())
            }
            (_, ty) => Err(SyncError::Protocol(format!("{ty:?} not allowed here"))),
        }
    }

    fn on_reflected(&mut self, r: m::Reflected) -> SyncResult<()> {
        let refuse = |this: &mut Self, reason: Refusal| {
            tracing::warn!(
                reflected_id = r.reflected_id,
                sender = format_args!("{:016x}", r.sender_device_id),
                len = r.envelope.len(),
                ?reason,
                "refused a reflected envelope"
            );
            if !r.ephemeral {
                this.send(
                    FrameType::ReflectedAck,
                    &m::ReflectedAck {
                        reflected_id: r.reflected_id,
                    },
                );
            }
            this.events.push_back(DeviceEvent::App(Event::Refused {
                reflected_id: r.reflected_id,
                sender: r.sender_device_id,
                reason,
            }));
        };
        let opened = match envelope::open(&self.keys, r.sender_device_id, r.ephemeral, &r.envelope)
        {
            Ok(o) => o,
            Err(_) => {
                refuse(self, Refusal::Tampered);
                return Ok(());
            }
        };
        if !r.ephemeral
            && self
                .pending
                .get(&r.reflected_id)
                .is_some_and(|p| p.nonce == opened.nonce)
        {
            // Delivered again on a new connection while the application
            // still holds it from the old one: its ack will go out here.
            self.delivered_here.insert(r.reflected_id);
            return Ok(());
        }
        let (sender, counter) = (r.sender_device_id, opened.counter);
        let replay = !self.guard.is_fresh(sender, r.ephemeral, counter)
            || self.pending_nonces.contains(&opened.nonce);
        if replay {
            refuse(self, Refusal::Replayed);
            return Ok(());
        }
        if r.ephemeral {
            // Not acknowledged by the application: accepted on delivery.
            self.guard.accept(sender, true, counter)?;
        } else {
            self.pending.insert(
                r.reflected_id,
                Pending {
                    nonce: opened.nonce,
                    sender,
                    counter,
                },
            );
            self.pending_nonces.insert(opened.nonce);
            self.delivered_here.insert(r.reflected_id);
        }
        self.events.push_back(DeviceEvent::App(Event::Reflected {
            reflected_id: r.reflected_id,
            sender: r.sender_device_id,
            timestamp_ms: r.timestamp_ms,
            ephemeral: r.ephemeral,
            plaintext: opened.plaintext,
        }));
        Ok(())
    }

    /// The application processed envelope `reflected_id`: remember its nonce
    /// (durably, if the guard is file-backed) and tell the relay to drop it.
    /// If it came on an earlier connection and the current one has not
    /// delivered it again, no ack goes out: when the relay redelivers it,
    /// it is refused as a replay and acknowledged then.
    pub fn ack(&mut self, reflected_id: u64) -> SyncResult<()> {
        let Some(p) = self.pending.remove(&reflected_id) else {
            return Err(SyncError::Protocol(format!(
                "no pending envelope {reflected_id} to acknowledge (already acknowledged?)"
            )));
        };
        self.pending_nonces.remove(&p.nonce);
        self.guard.accept(p.sender, false, p.counter)?;
        if self.delivered_here.remove(&reflected_id) && self.state == State::Established {
            self.send(FrameType::ReflectedAck, &m::ReflectedAck { reflected_id });
        }
        Ok(())
    }

    /// Seals `plaintext` and reflects it. Returns the reflect id its
    /// [`DeviceEvent::ReflectAck`] will carry. A queued reflection made while
    /// disconnected is sent once the connection is established; an ephemeral
    /// one needs an established connection.
    pub fn reflect(&mut self, plaintext: &[u8], ephemeral: bool) -> SyncResult<u32> {
        if ephemeral && self.state != State::Established {
            return Err(SyncError::Disconnected);
        }
        let counter = self.guard.next_counter()?;
        let envelope = envelope::seal(&self.keys, self.device_id, ephemeral, counter, plaintext)?;
        let reflect_id = self.next_reflect_id;
        self.next_reflect_id = self.next_reflect_id.wrapping_add(1).max(1);
        let f = m::frame(
            FrameType::Reflect,
            &m::Reflect {
                reflect_id,
                ephemeral,
                envelope,
            },
        );
        if !ephemeral {
            self.unacked.insert(
                reflect_id,
                Unacked {
                    frame: f.clone(),
                    in_txn: self.in_txn,
                },
            );
        }
        if self.state == State::Established {
            self.out.push_back(DeviceOutput::Frame(f));
        }
        Ok(reflect_id)
    }

    fn established(&self) -> SyncResult<()> {
        if self.state == State::Established {
            Ok(())
        } else {
            Err(SyncError::Disconnected)
        }
    }

    /// Asks for the group's transaction lock for `scope` (sealed here).
    pub fn begin_transaction(&mut self, scope: &[u8], ttl_secs: u32) -> SyncResult<()> {
        self.established()?;
        let encrypted_scope = self.keys.seal_scope(scope)?;
        self.send(
            FrameType::BeginTransaction,
            &m::BeginTransaction {
                encrypted_scope,
                ttl_secs,
            },
        );
        Ok(())
    }

    /// Commits the open transaction.
    pub fn commit_transaction(&mut self) -> SyncResult<()> {
        self.established()?;
        if !self.in_txn {
            return Err(SyncError::Protocol("no transaction is open".into()));
        }
        self.send(FrameType::CommitTransaction, &m::Empty {});
        Ok(())
    }

    /// Asks for the group's device list.
    pub fn get_devices(&mut self) -> SyncResult<()> {
        self.established()?;
        self.send(FrameType::GetDevicesInfo, &m::Empty {});
        Ok(())
    }

    /// Drops a device (and its queue) from the group.
    pub fn drop_device(&mut self, device_id: u64) -> SyncResult<()> {
        self.established()?;
        self.send(FrameType::DropDevice, &m::DeviceRef { device_id });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::keys::{GroupKey, RelayChallenge};
    use crate::sync::protocol::relay::{RelayConnection, RelayEvent, RelayOutput};

    fn pump(dev: &mut DeviceMachine, relay: &mut RelayConnection) {
        loop {
            let mut moved = false;
            while let Some(RelayOutput::Frame(f)) = relay.poll_output() {
                dev.recv(&f).unwrap();
                moved = true;
            }
            while let Some(DeviceOutput::Frame(f)) = dev.poll_output() {
                relay.recv(&f);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn keys() -> Arc<GroupKeys> {
        Arc::new(GroupKeys::derive(&GroupKey::from_bytes([5; 32])).unwrap())
    }

    fn established(keys: &Arc<GroupKeys>, id: u64) -> (DeviceMachine, RelayConnection) {
        let mut dev = DeviceMachine::new(
            keys.clone(),
            id,
            b"phone",
            SlotsExhaustedPolicy::Reject,
            ReplayGuard::new(),
        )
        .unwrap();
        let mut relay = RelayConnection::new(
            keys.group_id(),
            RelayChallenge::random().unwrap(),
            0,
            1000,
            8,
        );
        pump(&mut dev, &mut relay);
        match relay.poll_event() {
            Some(RelayEvent::Authenticated {
                device_id,
                encrypted_device_info,
                ..
            }) => {
                assert_eq!(device_id, id);
                assert_eq!(
                    &**keys.open_device_info(id, &encrypted_device_info).unwrap(),
                    b"phone"
                );
            }
            other => panic!("{other:?}"),
        }
        relay.accept(m::ServerInfo {
            current_time_ms: 5,
            max_device_slots: 16,
            reflection_queue_length: 0,
        });
        pump(&mut dev, &mut relay);
        assert!(matches!(
            dev.poll_event(),
            Some(DeviceEvent::App(Event::Connected(_)))
        ));
        (dev, relay)
    }

    #[test]
    fn reflect_deliver_ack_and_refuse_replays() {
        let keys = keys();
        let (mut a, mut ra) = established(&keys, 1);
        let (mut b, mut rb) = established(&keys, 2);
        let id = a.reflect(b"upsert 1", false).unwrap();
        pump(&mut a, &mut ra);
        let Some(RelayEvent::Reflect {
            reflect_id,
            envelope,
            ..
        }) = ra.poll_event()
        else {
            panic!()
        };
        assert_eq!(reflect_id, id);
        assert!(
            !envelope.windows(8).any(|w| w == b"upsert 1"),
            "the relay sees ciphertext only"
        );
        ra.reflect_acked(reflect_id, 9);
        pump(&mut a, &mut ra);
        assert!(
            matches!(a.poll_event(), Some(DeviceEvent::ReflectAck { reflect_id: r, .. }) if r == id)
        );
        assert_eq!(a.unacked(), 0);

        let delivered = m::Reflected {
            reflected_id: 1,
            sender_device_id: 1,
            timestamp_ms: 9,
            ephemeral: false,
            envelope: envelope.clone(),
        };
        rb.deliver(&delivered);
        pump(&mut b, &mut rb);
        let Some(DeviceEvent::App(Event::Reflected {
            plaintext,
            reflected_id: 1,
            sender: 1,
            ..
        })) = b.poll_event()
        else {
            panic!()
        };
        assert_eq!(&plaintext[..], b"upsert 1");
        assert_eq!(format!("{plaintext:?}"), "Plaintext(<8 bytes>)");
        b.ack(1).unwrap();
        pump(&mut b, &mut rb);
        assert_eq!(
            rb.poll_event(),
            Some(RelayEvent::ReflectedAck { reflected_id: 1 })
        );

        // The relay replays it under a new position: refused and acked.
        rb.deliver(&m::Reflected {
            reflected_id: 2,
            ..delivered.clone()
        });
        pump(&mut b, &mut rb);
        assert!(matches!(
            b.poll_event(),
            Some(DeviceEvent::App(Event::Refused {
                reason: Refusal::Replayed,
                ..
            }))
        ));
        assert_eq!(
            rb.poll_event(),
            Some(RelayEvent::ReflectedAck { reflected_id: 2 })
        );

        // Tampered, truncated, or attributed to another sender: refused.
        let mut bad = envelope.clone();
        bad[50] ^= 1;
        for (i, (env, sender)) in [
            (bad, 1),
            (envelope[..envelope.len() - 3].to_vec(), 1),
            (envelope.clone(), 3),
        ]
        .into_iter()
        .enumerate()
        {
            rb.deliver(&m::Reflected {
                reflected_id: 10 + i as u64,
                sender_device_id: sender,
                envelope: env,
                ..delivered.clone()
            });
            pump(&mut b, &mut rb);
            assert!(matches!(
                b.poll_event(),
                Some(DeviceEvent::App(Event::Refused {
                    reason: Refusal::Tampered,
                    ..
                }))
            ));
        }
    }

    #[test]
    fn unacked_reflections_are_resent_after_reconnect() {
        let keys = keys();
        let (mut a, mut ra) = established(&keys, 1);
        a.reflect(b"x", false).unwrap();
        a.reflect(b"y", false).unwrap();
        pump(&mut a, &mut ra);
        assert_eq!(a.unacked(), 2);
        a.reconnect();
        let mut ra2 = RelayConnection::new(
            keys.group_id(),
            RelayChallenge::random().unwrap(),
            0,
            1000,
            8,
        );
        pump(&mut a, &mut ra2);
        let _ = ra2.poll_event();
        ra2.accept(m::ServerInfo::default());
        pump(&mut a, &mut ra2);
        let ids: Vec<u32> = std::iter::from_fn(|| ra2.poll_event())
            .filter_map(|e| match e {
                RelayEvent::Reflect { reflect_id, .. } => Some(reflect_id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn relay_garbage_is_a_protocol_error_not_a_panic() {
        let keys = keys();
        let (mut a, _) = established(&keys, 1);
        assert!(a.recv(&[0x82, 0, 0, 0, 0xff]).is_err());
        assert_eq!(
            a.poll_output(),
            Some(DeviceOutput::Close(CloseCode::ProtocolError))
        );
    }
}
