//! The relay's side of one connection, sans-IO: the handshake, then frames
//! in and events out. The caller (the relay shell) owns the queues, the
//! device list and the group coordination, and answers events with calls
//! such as [`RelayConnection::accept`] or [`RelayConnection::deliver`].
//!
//! ```text
//!  AwaitingHello ──ClientHello ok──► Authenticating ──accept()──► Established ──► Closed
//!        │ timeout / bad version / wrong or replayed answer / garbage      │ reject(code)
//!        └──────────────────────────────► Closed ◄────────────────────────┘
//! ```
//!
//! Inside a transaction, queued (non-ephemeral) reflections are held here
//! and handed to the caller all together on commit, so the other devices
//! see the transaction's reflections only once it commits.

use std::collections::{BTreeSet, VecDeque};

use super::CloseCode;
use super::frame::{self, FrameType};
use super::messages::{self as m, PROTOCOL_VERSION, SlotsExhaustedPolicy};
use crate::sync::error::SyncError;
use crate::sync::keys::{GroupId, RelayChallenge};

/// What the relay sends on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayOutput {
    /// A binary frame.
    Frame(Vec<u8>),
    /// Close the connection with this code; nothing follows.
    Close(CloseCode),
}

/// What the device asked for; the shell carries it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayEvent {
    /// The device proved it holds the path key. Answer with
    /// [`RelayConnection::accept`] or [`RelayConnection::reject`].
    Authenticated {
        /// The device's random id.
        device_id: u64,
        /// Its info, sealed for the other devices.
        encrypted_device_info: Vec<u8>,
        /// What to do if every slot is taken.
        policy: SlotsExhaustedPolicy,
    },
    /// Queue (or, if ephemeral, forward) an envelope for the other devices,
    /// then call [`RelayConnection::reflect_acked`] (not for ephemeral ones).
    Reflect {
        /// The device's id for this reflection.
        reflect_id: u32,
        /// Not to be queued.
        ephemeral: bool,
        /// The sealed envelope.
        envelope: Vec<u8>,
    },
    /// The device processed this entry of its queue: drop it.
    ReflectedAck {
        /// Queue position.
        reflected_id: u64,
    },
    /// Answer with [`RelayConnection::devices_info`].
    GetDevices,
    /// Drop a device and its queue, then [`RelayConnection::drop_acked`].
    DropDevice {
        /// The device to drop.
        device_id: u64,
    },
    /// Try to take the group's lock, then [`RelayConnection::transaction_began`]
    /// or [`RelayConnection::transaction_rejected`].
    BeginTransaction {
        /// The sealed scope.
        encrypted_scope: Vec<u8>,
        /// Lifetime of the lock.
        ttl_secs: u32,
    },
    /// Queue these reflections for the other devices, release the lock, then
    /// [`RelayConnection::transaction_committed`].
    CommitTransaction {
        /// The transaction's reflections, in order: (reflect id, envelope).
        staged: Vec<(u32, Vec<u8>)>,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitingHello { deadline_ms: u64 },
    Authenticating { device_id: u64 },
    Established { device_id: u64 },
    Closed,
}

#[derive(Debug, PartialEq, Eq)]
enum Txn {
    Idle,
    Requested,
    Active,
    Committing,
}

/// The relay's state machine for one device connection.
#[derive(Debug)]
pub struct RelayConnection {
    group: GroupId,
    challenge: RelayChallenge,
    state: State,
    out: VecDeque<RelayOutput>,
    events: VecDeque<RelayEvent>,
    in_flight: BTreeSet<u64>,
    window: usize,
    dry_sent: bool,
    txn: Txn,
    staged: Vec<(u32, Vec<u8>)>,
    /// Commits of this device whose `TransactionEnded` notice has not come
    /// back yet: the notice comes through the hub after the commit, so it
    /// can arrive once the device has begun its next transaction, and must
    /// not be taken for that one's lapse.
    own_ends_due: u32,
}

impl RelayConnection {
    /// A new connection for `group` (from the URL path). Queues the server
    /// hello; the device must answer before `now_ms + handshake_timeout_ms`.
    /// At most `window` reflected envelopes are unacknowledged at a time.
    pub fn new(
        group: GroupId,
        challenge: RelayChallenge,
        now_ms: u64,
        handshake_timeout_ms: u64,
        window: usize,
    ) -> Self {
        let hello = m::ServerHello {
            version: PROTOCOL_VERSION,
            challenge: challenge.challenge().to_vec(),
            ephemeral_public: challenge.ephemeral_public().to_vec(),
        };
        let mut out = VecDeque::new();
        out.push_back(RelayOutput::Frame(m::frame(FrameType::ServerHello, &hello)));
        RelayConnection {
            group,
            challenge,
            state: State::AwaitingHello {
                deadline_ms: now_ms.saturating_add(handshake_timeout_ms),
            },
            out,
            events: VecDeque::new(),
            in_flight: BTreeSet::new(),
            window: window.max(1),
            dry_sent: false,
            txn: Txn::Idle,
            staged: Vec::new(),
            own_ends_due: 0,
        }
    }

    /// The group this connection is for.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The device id, once established.
    pub fn device_id(&self) -> Option<u64> {
        match self.state {
            State::Established { device_id } => Some(device_id),
            _ => None,
        }
    }

    /// Whether the connection is closed (drain outputs, then drop it).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether a transaction of this connection is open (begun, not ended).
    pub fn in_transaction(&self) -> bool {
        matches!(self.txn, Txn::Active | Txn::Committing)
    }

    /// Closes with `code`.
    pub fn close(&mut self, code: CloseCode) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.out.push_back(RelayOutput::Close(code));
        }
    }

    fn protocol_error(&mut self, e: &SyncError) {
        tracing::debug!(group = %self.group, error = %e, "closing: protocol error");
        self.close(CloseCode::ProtocolError);
    }

    /// The next thing to send.
    pub fn poll_output(&mut self) -> Option<RelayOutput> {
        self.out.pop_front()
    }

    /// The next request for the shell.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// When [`RelayConnection::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        match self.state {
            State::AwaitingHello { deadline_ms } => Some(deadline_ms),
            _ => None,
        }
    }

    /// Time passes.
    pub fn tick(&mut self, now_ms: u64) {
        if let State::AwaitingHello { deadline_ms } = self.state
            && now_ms >= deadline_ms
        {
            self.close(CloseCode::HandshakeTimeout);
        }
    }

    /// One frame from the device.
    pub fn recv(&mut self, bytes: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        let (ty, payload) = match frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.protocol_error(&e),
        };
        if let Err(e) = self.handle(ty, payload) {
            self.protocol_error(&e);
        }
    }

    fn handle(&mut self, ty: FrameType, payload: &[u8]) -> Result<(), SyncError> {
        let unexpected = |ty: FrameType| SyncError::Protocol(format!("{ty:?} not allowed here"));
        match (&self.state, ty) {
            (State::AwaitingHello { .. }, FrameType::ClientHello) => {
                let hello: m::ClientHello = m::decode("ClientHello", payload)?;
                if hello.version != PROTOCOL_VERSION {
                    self.close(CloseCode::UnsupportedVersion);
                    return Ok(());
                }
                if hello.ephemeral_public != self.challenge.ephemeral_public() {
                    self.close(CloseCode::ReplayedHello);
                    return Ok(());
                }
                if !self.challenge.verify(&self.group, &hello.response) {
                    self.close(CloseCode::AuthenticationFailed);
                    return Ok(());
                }
                let policy =
                    SlotsExhaustedPolicy::try_from(hello.slots_exhausted_policy).map_err(|_| {
                        SyncError::Malformed {
                            what: "ClientHello",
                            detail: "unknown slots-exhausted policy".into(),
                        }
                    })?;
                self.state = State::Authenticating {
                    device_id: hello.device_id,
                };
                self.events.push_back(RelayEvent::Authenticated {
                    device_id: hello.device_id,
                    encrypted_device_info: hello.encrypted_device_info,
                    policy,
                });
                Ok(())
            }
            (State::Established { .. }, FrameType::Reflect) => {
                let r: m::Reflect = m::decode("Reflect", payload)?;
                if self.txn == Txn::Active && !r.ephemeral {
                    self.staged.push((r.reflect_id, r.envelope));
                } else if self.txn == Txn::Committing {
                    return Err(SyncError::Protocol("Reflect while committing".into()));
                } else {
                    self.events.push_back(RelayEvent::Reflect {
                        reflect_id: r.reflect_id,
                        ephemeral: r.ephemeral,
                        envelope: r.envelope,
                    });
                }
                Ok(())
            }
            (State::Established { .. }, FrameType::ReflectedAck) => {
                let a: m::ReflectedAck = m::decode("ReflectedAck", payload)?;
                if !self.in_flight.remove(&a.reflected_id) {
                    return Err(SyncError::Protocol(
                        "ReflectedAck for an envelope not delivered".into(),
                    ));
                }
                self.events.push_back(RelayEvent::ReflectedAck {
                    reflected_id: a.reflected_id,
                });
                Ok(())
            }
            (State::Established { .. }, FrameType::GetDevicesInfo) => {
                let _: m::Empty = m::decode("GetDevicesInfo", payload)?;
                self.events.push_back(RelayEvent::GetDevices);
                Ok(())
            }
            (State::Established { .. }, FrameType::DropDevice) => {
                let d: m::DeviceRef = m::decode("DropDevice", payload)?;
                self.events.push_back(RelayEvent::DropDevice {
                    device_id: d.device_id,
                });
                Ok(())
            }
            (State::Established { .. }, FrameType::BeginTransaction) => {
                let b: m::BeginTransaction = m::decode("BeginTransaction", payload)?;
                if self.txn != Txn::Idle {
                    return Err(SyncError::Protocol(
                        "BeginTransaction inside a transaction".into(),
                    ));
                }
                self.txn = Txn::Requested;
                self.events.push_back(RelayEvent::BeginTransaction {
                    encrypted_scope: b.encrypted_scope,
                    ttl_secs: b.ttl_secs,
                });
                Ok(())
            }
            (State::Established { .. }, FrameType::CommitTransaction) => {
                let _: m::Empty = m::decode("CommitTransaction", payload)?;
                if self.txn != Txn::Active {
                    return Err(SyncError::Protocol(
                        "CommitTransaction outside a transaction".into(),
                    ));
                }
                self.txn = Txn::Committing;
                self.events.push_back(RelayEvent::CommitTransaction {
                    staged: std::mem::take(&mut self.staged),
                });
                Ok(())
            }
            (_, ty) => Err(unexpected(ty)),
        }
    }

    /// The shell admits the authenticated device.
    pub fn accept(&mut self, info: m::ServerInfo) {
        if let State::Authenticating { device_id } = self.state {
            self.state = State::Established { device_id };
            self.send(FrameType::ServerInfo, &info);
        }
    }

    /// The shell refuses the authenticated device (e.g. slots exhausted).
    pub fn reject(&mut self, code: CloseCode) {
        self.close(code);
    }

    fn send<M: prost::Message>(&mut self, ty: FrameType, msg: &M) {
        if self.state != State::Closed {
            self.out.push_back(RelayOutput::Frame(m::frame(ty, msg)));
        }
    }

    /// The envelope `reflect_id` is durably queued for every other device.
    pub fn reflect_acked(&mut self, reflect_id: u32, timestamp_ms: u64) {
        self.send(
            FrameType::ReflectAck,
            &m::ReflectAck {
                reflect_id,
                timestamp_ms,
            },
        );
    }

    /// The oldest envelope delivered on this connection and not yet
    /// acknowledged: every one delivered before it was.
    pub fn oldest_in_flight(&self) -> Option<u64> {
        self.in_flight.first().copied()
    }

    /// How many more envelopes may be delivered before acks come back.
    pub fn window_room(&self) -> usize {
        if self.device_id().is_none() {
            return 0;
        }
        self.window.saturating_sub(self.in_flight.len())
    }

    /// Delivers one envelope (from the queue, or an ephemeral one). Queued
    /// envelopes count against the window until acknowledged.
    pub fn deliver(&mut self, r: &m::Reflected) {
        if self.device_id().is_none() {
            return;
        }
        if !r.ephemeral {
            self.in_flight.insert(r.reflected_id);
        }
        self.send(FrameType::Reflected, r);
    }

    /// The backlog present at connect has been delivered (sent once).
    pub fn queue_dry(&mut self) {
        if !self.dry_sent && self.device_id().is_some() {
            self.dry_sent = true;
            self.send(FrameType::ReflectionQueueDry, &m::Empty {});
        }
    }

    /// Whether the queue-dry notice was sent.
    pub fn is_dry(&self) -> bool {
        self.dry_sent
    }

    /// This device is now the group's leader.
    pub fn promoted(&mut self) {
        self.send(FrameType::RolePromotedToLeader, &m::Empty {});
    }

    /// The answer to [`RelayEvent::GetDevices`].
    pub fn devices_info(&mut self, info: m::DevicesInfo) {
        self.send(FrameType::DevicesInfo, &info);
    }

    /// The answer to [`RelayEvent::DropDevice`].
    pub fn drop_acked(&mut self, device_id: u64) {
        self.send(FrameType::DropDeviceAck, &m::DeviceRef { device_id });
    }

    /// The lock is this device's.
    pub fn transaction_began(&mut self) {
        if self.txn == Txn::Requested {
            self.txn = Txn::Active;
            self.send(FrameType::BeginTransactionAck, &m::Empty {});
        }
    }

    /// Another device holds the lock.
    pub fn transaction_rejected(&mut self, holder: u64, encrypted_scope: Vec<u8>) {
        if self.txn == Txn::Requested {
            self.txn = Txn::Idle;
            self.send(
                FrameType::TransactionRejected,
                &m::TransactionInfo {
                    device_id: holder,
                    encrypted_scope,
                },
            );
        }
    }

    /// The staged reflections are queued and the lock released: ack them
    /// and the commit.
    pub fn transaction_committed(&mut self, reflect_ids: &[u32], timestamp_ms: u64) {
        if self.txn == Txn::Committing {
            self.txn = Txn::Idle;
            self.own_ends_due = self.own_ends_due.saturating_add(1);
            for &id in reflect_ids {
                self.reflect_acked(id, timestamp_ms);
            }
            self.send(FrameType::CommitTransactionAck, &m::Empty {});
        }
    }

    /// The commit came too late: the lock had lapsed (TTL). The staged
    /// reflections are dropped, and the device learns it from a
    /// `TransactionEnded` naming it and from the missing acks; the
    /// connection closes with a protocol error so the device starts over.
    pub fn transaction_lapsed(&mut self) {
        self.txn = Txn::Idle;
        self.close(CloseCode::ProtocolError);
    }

    /// A transaction of the group ended (sent to every connected device).
    pub fn transaction_ended(&mut self, holder: u64, encrypted_scope: Vec<u8>) {
        if self.device_id() == Some(holder) {
            if self.own_ends_due > 0 {
                // The notice of this device's last commit.
                self.own_ends_due -= 1;
            } else if self.txn == Txn::Active {
                // Our own lock lapsed: what was staged will never be delivered.
                self.staged.clear();
                self.txn = Txn::Idle;
            }
        }
        self.send(
            FrameType::TransactionEnded,
            &m::TransactionInfo {
                device_id: holder,
                encrypted_scope,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::keys::{GroupKey, GroupKeys};

    fn frame_of(out: Option<RelayOutput>) -> (FrameType, Vec<u8>) {
        match out {
            Some(RelayOutput::Frame(f)) => {
                let (ty, p) = frame::decode(&f).unwrap();
                (ty, p.to_vec())
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    fn hello_for(keys: &GroupKeys, conn: &mut RelayConnection, version: u32) -> Vec<u8> {
        let (ty, p) = frame_of(conn.poll_output());
        assert_eq!(ty, FrameType::ServerHello);
        let sh: m::ServerHello = m::decode("ServerHello", &p).unwrap();
        let eph: [u8; 32] = sh.ephemeral_public.clone().try_into().unwrap();
        let chal: [u8; 32] = sh.challenge.try_into().unwrap();
        m::frame(
            FrameType::ClientHello,
            &m::ClientHello {
                version,
                response: keys.answer_challenge(&eph, &chal).unwrap(),
                ephemeral_public: sh.ephemeral_public,
                device_id: 42,
                encrypted_device_info: vec![1, 2],
                slots_exhausted_policy: 0,
            },
        )
    }

    fn conn_for(keys: &GroupKeys) -> RelayConnection {
        RelayConnection::new(
            keys.group_id(),
            RelayChallenge::random().unwrap(),
            0,
            1000,
            4,
        )
    }

    #[test]
    fn handshake_and_its_failures() {
        let keys = GroupKeys::derive(&GroupKey::from_bytes([1; 32])).unwrap();
        let mut c = conn_for(&keys);
        let hello = hello_for(&keys, &mut c, PROTOCOL_VERSION);
        c.recv(&hello);
        assert!(matches!(
            c.poll_event(),
            Some(RelayEvent::Authenticated { device_id: 42, .. })
        ));
        c.accept(m::ServerInfo::default());
        assert_eq!(frame_of(c.poll_output()).0, FrameType::ServerInfo);
        assert_eq!(c.device_id(), Some(42));

        // The same hello on another connection: a replay.
        let mut c2 = conn_for(&keys);
        let _ = c2.poll_output();
        c2.recv(&hello);
        assert_eq!(
            c2.poll_output(),
            Some(RelayOutput::Close(CloseCode::ReplayedHello))
        );

        // Another group's key.
        let other = GroupKeys::derive(&GroupKey::from_bytes([2; 32])).unwrap();
        let mut c3 = conn_for(&keys);
        let h = hello_for(&other, &mut c3, PROTOCOL_VERSION);
        c3.recv(&h);
        assert_eq!(
            c3.poll_output(),
            Some(RelayOutput::Close(CloseCode::AuthenticationFailed))
        );

        let mut c4 = conn_for(&keys);
        let h = hello_for(&keys, &mut c4, 99);
        c4.recv(&h);
        assert_eq!(
            c4.poll_output(),
            Some(RelayOutput::Close(CloseCode::UnsupportedVersion))
        );

        let mut c5 = conn_for(&keys);
        let _ = c5.poll_output();
        c5.tick(999);
        assert_eq!(c5.poll_output(), None);
        c5.tick(1000);
        assert_eq!(
            c5.poll_output(),
            Some(RelayOutput::Close(CloseCode::HandshakeTimeout))
        );

        let mut c6 = conn_for(&keys);
        let _ = c6.poll_output();
        c6.recv(&m::frame(FrameType::Reflect, &m::Reflect::default()));
        assert_eq!(
            c6.poll_output(),
            Some(RelayOutput::Close(CloseCode::ProtocolError))
        );
    }

    #[test]
    fn window_staging_and_commit() {
        let keys = GroupKeys::derive(&GroupKey::from_bytes([1; 32])).unwrap();
        let mut c = conn_for(&keys);
        let hello = hello_for(&keys, &mut c, PROTOCOL_VERSION);
        c.recv(&hello);
        let _ = c.poll_event();
        c.accept(m::ServerInfo::default());
        let _ = c.poll_output();
        for id in 1..=4 {
            c.deliver(&m::Reflected {
                reflected_id: id,
                ..Default::default()
            });
        }
        assert_eq!(c.window_room(), 0);
        c.recv(&m::frame(
            FrameType::ReflectedAck,
            &m::ReflectedAck { reflected_id: 2 },
        ));
        assert_eq!(
            c.poll_event(),
            Some(RelayEvent::ReflectedAck { reflected_id: 2 })
        );
        assert_eq!(c.window_room(), 1);

        c.recv(&m::frame(
            FrameType::BeginTransaction,
            &m::BeginTransaction {
                encrypted_scope: vec![9],
                ttl_secs: 3,
            },
        ));
        assert!(matches!(
            c.poll_event(),
            Some(RelayEvent::BeginTransaction { ttl_secs: 3, .. })
        ));
        c.transaction_began();
        c.recv(&m::frame(
            FrameType::Reflect,
            &m::Reflect {
                reflect_id: 7,
                ephemeral: false,
                envelope: vec![1],
            },
        ));
        c.recv(&m::frame(
            FrameType::Reflect,
            &m::Reflect {
                reflect_id: 8,
                ephemeral: true,
                envelope: vec![2],
            },
        ));
        // The ephemeral one passes at once; the queued one waits for commit.
        assert!(matches!(
            c.poll_event(),
            Some(RelayEvent::Reflect { reflect_id: 8, .. })
        ));
        assert_eq!(c.poll_event(), None);
        c.recv(&m::frame(FrameType::CommitTransaction, &m::Empty {}));
        assert_eq!(
            c.poll_event(),
            Some(RelayEvent::CommitTransaction {
                staged: vec![(7, vec![1])]
            })
        );

        // An ack for something never delivered is a protocol error.
        c.recv(&m::frame(
            FrameType::ReflectedAck,
            &m::ReflectedAck { reflected_id: 99 },
        ));
        while let Some(o) = c.poll_output() {
            if let RelayOutput::Close(code) = o {
                assert_eq!(code, CloseCode::ProtocolError);
                return;
            }
        }
        panic!("expected a close");
    }

    #[test]
    fn the_notice_of_a_commit_does_not_end_the_next_transaction() {
        let keys = GroupKeys::derive(&GroupKey::from_bytes([1; 32])).unwrap();
        let mut c = conn_for(&keys);
        let hello = hello_for(&keys, &mut c, PROTOCOL_VERSION);
        c.recv(&hello);
        let device = match c.poll_event() {
            Some(RelayEvent::Authenticated { device_id, .. }) => device_id,
            other => panic!("{other:?}"),
        };
        c.accept(m::ServerInfo::default());
        let begin = m::frame(
            FrameType::BeginTransaction,
            &m::BeginTransaction {
                encrypted_scope: vec![9],
                ttl_secs: 3,
            },
        );
        let reflect = |id| {
            m::frame(
                FrameType::Reflect,
                &m::Reflect {
                    reflect_id: id,
                    ephemeral: false,
                    envelope: vec![1],
                },
            )
        };
        let commit = m::frame(FrameType::CommitTransaction, &m::Empty {});
        c.recv(&begin);
        let _ = c.poll_event();
        c.transaction_began();
        c.recv(&reflect(1));
        c.recv(&commit);
        let _ = c.poll_event();
        c.transaction_committed(&[1], 5);
        // The device begins again before the hub's notice of its commit.
        c.recv(&begin);
        let _ = c.poll_event();
        c.transaction_began();
        c.recv(&reflect(2));
        c.transaction_ended(device, vec![9]);
        c.recv(&commit);
        assert_eq!(
            c.poll_event(),
            Some(RelayEvent::CommitTransaction {
                staged: vec![(2, vec![1])]
            })
        );
        // A lapse of the open transaction (no commit of it pending) still
        // drops what it staged.
        c.transaction_committed(&[2], 6);
        c.transaction_ended(device, vec![9]);
        c.recv(&begin);
        let _ = c.poll_event();
        c.transaction_began();
        c.recv(&reflect(3));
        c.transaction_ended(device, vec![9]);
        c.recv(&commit);
        while let Some(o) = c.poll_output() {
            if let RelayOutput::Close(code) = o {
                assert_eq!(code, CloseCode::ProtocolError);
                return;
            }
        }
        panic!("a commit after the lapse closes the connection");
    }
}
