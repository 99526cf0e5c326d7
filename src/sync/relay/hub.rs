//! The relay node's live state: which devices are connected here, and the
//! group coordination (leader, transaction lock) either in this process
//! ([`GroupState`]) or shared by all nodes through Redis or NATS.
//!
//! Connections never talk to each other directly: the hub sends each one
//! [`Signal`]s over its channel, so a slow device never blocks another.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use super::nats_store::NatsCoord;
pub use super::schema::LEADER_LEASE_MS;
use super::schema::{
    EV_CONN, EV_DROP, EV_ENDED, EV_EPHEMERAL, EV_LEADER_FREE, EV_WAKE, EVENT_CHANNEL, event,
    leader_key, txn_key,
};
use crate::sync::error::{SyncError, SyncResult};
use crate::sync::keys::{GroupId, fill_random};
use crate::sync::protocol::CloseCode;
use crate::sync::protocol::group::{GroupEffect, GroupState};
use crate::sync::protocol::messages::Reflected;

/// A message from the hub to one connection task.
#[derive(Debug, Clone)]
pub enum Signal {
    /// New entries in this device's queue.
    Wake,
    /// This device is now the leader.
    Promote,
    /// The group's transaction ended.
    Ended {
        /// Holder.
        holder: u64,
        /// Sealed scope.
        encrypted_scope: Vec<u8>,
    },
    /// An ephemeral envelope from another device.
    Ephemeral(Arc<Reflected>),
    /// The group's leader went away: a dry device may take the lease.
    LeaderFree,
    /// Close this connection.
    Close(CloseCode),
}

struct Local {
    conn: u64,
    tx: mpsc::UnboundedSender<Signal>,
}

enum Coord {
    Local(Mutex<HashMap<GroupId, GroupState>>),
    Redis(MultiplexedConnection),
    Nats(Box<NatsCoord>),
}

const RELEASE_IF_OWNER: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
const RENEW_IF_OWNER: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const TAKE_TXN_IF_HOLDER: &str = r"local v = redis.call('GET', KEYS[1]) if v and string.sub(v, 1, 8) == ARGV[1] then redis.call('DEL', KEYS[1]) return v else return false end";

/// The node's hub.
pub struct Hub {
    node: u64,
    next_conn: AtomicU64,
    conns: Mutex<HashMap<GroupId, HashMap<u64, Local>>>,
    coord: Coord,
    /// Distributed modes: transactions this node has seen begin or refuse, checked
    /// each tick so their expiry is announced.
    watched: Mutex<HashMap<GroupId, (u64, Vec<u8>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn redis_err(e: redis::RedisError) -> SyncError {
    SyncError::Store(format!("redis: {e}"))
}

impl Hub {
    /// A hub coordinating in this process (embedded mode).
    pub fn local() -> SyncResult<Self> {
        Self::new(Coord::Local(Mutex::new(HashMap::new())))
    }

    /// A hub coordinating through Redis (distributed mode).
    pub fn redis(conn: MultiplexedConnection) -> SyncResult<Self> {
        Self::new(Coord::Redis(conn))
    }

    /// A hub coordinating through NATS JetStream's KV (distributed mode).
    pub fn nats(coord: NatsCoord) -> SyncResult<Self> {
        Self::new(Coord::Nats(Box::new(coord)))
    }

    fn new(coord: Coord) -> SyncResult<Self> {
        let mut node = [0u8; 8];
        fill_random(&mut node)?;
        Ok(Hub {
            node: u64::from_le_bytes(node),
            next_conn: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            coord,
            watched: Mutex::new(HashMap::new()),
        })
    }

    fn is_distributed(&self) -> bool {
        !matches!(self.coord, Coord::Local(_))
    }

    fn signal(&self, group: &GroupId, device_id: u64, s: Signal) {
        if let Some(l) = lock(&self.conns).get(group).and_then(|g| g.get(&device_id)) {
            let _ = l.tx.send(s);
        }
    }

    fn signal_conn(&self, group: &GroupId, device_id: u64, conn: u64, s: Signal) {
        if let Some(l) = lock(&self.conns)
            .get(group)
            .and_then(|g| g.get(&device_id))
            .filter(|l| l.conn == conn)
        {
            let _ = l.tx.send(s);
        }
    }

    fn broadcast_local(&self, group: &GroupId, except: Option<u64>, s: &Signal) {
        if let Some(g) = lock(&self.conns).get(group) {
            for (d, l) in g {
                if Some(*d) != except {
                    let _ = l.tx.send(s.clone());
                }
            }
        }
    }

    fn apply(&self, group: &GroupId, effects: Vec<GroupEffect>) {
        for e in effects {
            match e {
                GroupEffect::Promote { device_id, conn } => {
                    self.signal_conn(group, device_id, conn, Signal::Promote)
                }
                GroupEffect::Ended {
                    holder,
                    encrypted_scope,
                } => self.broadcast_local(
                    group,
                    None,
                    &Signal::Ended {
                        holder,
                        encrypted_scope,
                    },
                ),
            }
        }
    }

    async fn publish(&self, msg: Vec<u8>) -> SyncResult<()> {
        match &self.coord {
            Coord::Local(_) => Ok(()),
            Coord::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("PUBLISH")
                    .arg(EVENT_CHANNEL)
                    .arg(msg)
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)
            }
            Coord::Nats(n) => n.publish(msg).await,
        }
    }

    /// Tells every node that `holder`'s transaction ended.
    async fn publish_ended(&self, group: &GroupId, holder: u64, scope: &[u8]) -> SyncResult<()> {
        let mut rest = holder.to_le_bytes().to_vec();
        rest.extend_from_slice(scope);
        self.publish(event(EV_ENDED, group, &rest)).await
    }

    /// Distributed modes: tells the other nodes this device connected here,
    /// so they close an older connection of it.
    async fn publish_conn(&self, group: &GroupId, device_id: u64, conn: u64) -> SyncResult<()> {
        let mut rest = device_id.to_le_bytes().to_vec();
        rest.extend_from_slice(&self.node.to_le_bytes());
        rest.extend_from_slice(&conn.to_le_bytes());
        self.publish(event(EV_CONN, group, &rest)).await
    }

    /// A connection authenticated as `device_id`: register its channel.
    /// Returns its connection id.
    pub async fn connect(
        &self,
        group: &GroupId,
        device_id: u64,
        tx: mpsc::UnboundedSender<Signal>,
    ) -> SyncResult<u64> {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = lock(&self.conns)
            .entry(*group)
            .or_default()
            .insert(device_id, Local { conn, tx })
        {
            let _ = old.tx.send(Signal::Close(CloseCode::DeviceIdReused));
        }
        match &self.coord {
            Coord::Local(groups) => {
                let effects = lock(groups)
                    .entry(*group)
                    .or_default()
                    .connect(device_id, conn)
                    .1;
                self.apply(group, effects);
            }
            Coord::Redis(c) => {
                let mut c = c.clone();
                // A holder that reconnects has lost its transaction.
                let taken: Option<Vec<u8>> = redis::Script::new(TAKE_TXN_IF_HOLDER)
                    .key(txn_key(group))
                    .arg(device_id.to_le_bytes().as_slice())
                    .invoke_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                if let Some(v) = taken {
                    self.publish(event(EV_ENDED, group, &v)).await?;
                }
                self.publish_conn(group, device_id, conn).await?;
            }
            Coord::Nats(n) => {
                // A holder that reconnects has lost its transaction.
                if let Some(scope) = n.take(group, device_id).await? {
                    self.publish_ended(group, device_id, &scope).await?;
                }
                self.publish_conn(group, device_id, conn).await?;
            }
        }
        Ok(conn)
    }

    fn lease_value(&self, device_id: u64, conn: u64) -> String {
        format!("{device_id:016x}:{:016x}:{conn}", self.node)
    }

    /// The connection went away.
    pub async fn disconnect(&self, group: &GroupId, device_id: u64, conn: u64) {
        {
            let mut conns = lock(&self.conns);
            if let Some(g) = conns.get_mut(group) {
                if g.get(&device_id).is_some_and(|l| l.conn == conn) {
                    g.remove(&device_id);
                }
                if g.is_empty() {
                    conns.remove(group);
                }
            }
        }
        match &self.coord {
            Coord::Local(groups) => {
                let effects = {
                    let mut groups = lock(groups);
                    let Some(state) = groups.get_mut(group) else {
                        return;
                    };
                    let effects = state.disconnect(device_id, conn);
                    if state.is_idle() {
                        groups.remove(group);
                    }
                    effects
                };
                self.apply(group, effects);
            }
            Coord::Redis(c) => {
                let mut c = c.clone();
                let released: Result<u64, _> = redis::Script::new(RELEASE_IF_OWNER)
                    .key(leader_key(group))
                    .arg(self.lease_value(device_id, conn))
                    .invoke_async(&mut c)
                    .await;
                if matches!(released, Ok(1)) {
                    let _ = self.publish(event(EV_LEADER_FREE, group, &[])).await;
                }
            }
            Coord::Nats(n) => {
                let released = n.release(group, &self.lease_value(device_id, conn)).await;
                if matches!(released, Ok(true)) {
                    let _ = self.publish(event(EV_LEADER_FREE, group, &[])).await;
                }
            }
        }
    }

    /// The device's backlog was delivered; returns whether it is promoted now
    /// (in local mode the promotion may also arrive later as a signal).
    pub async fn queue_dry(&self, group: &GroupId, device_id: u64, conn: u64) -> SyncResult<bool> {
        match &self.coord {
            Coord::Local(groups) => {
                let effects = lock(groups)
                    .entry(*group)
                    .or_default()
                    .queue_dry(device_id, conn);
                self.apply(group, effects);
                Ok(false)
            }
            Coord::Redis(_) | Coord::Nats(_) => self.try_lead(group, device_id, conn).await,
        }
    }

    /// Distributed modes: takes the leader lease if nobody holds it.
    async fn try_lead(&self, group: &GroupId, device_id: u64, conn: u64) -> SyncResult<bool> {
        let c = match &self.coord {
            Coord::Local(_) => return Ok(false),
            Coord::Nats(n) => return n.try_lead(group, &self.lease_value(device_id, conn)).await,
            Coord::Redis(c) => c,
        };
        let mut c = c.clone();
        let ok: Option<String> = redis::cmd("SET")
            .arg(leader_key(group))
            .arg(self.lease_value(device_id, conn))
            .arg("NX")
            .arg("PX")
            .arg(LEADER_LEASE_MS)
            .query_async(&mut c)
            .await
            .map_err(redis_err)?;
        Ok(ok.is_some())
    }

    /// Distributed modes, each tick of a dry connection: renew the lease if we lead
    /// (false if it was lost), or take it if it is free. Returns
    /// `(leads_now, newly_promoted)`.
    pub async fn lease_tick(
        &self,
        group: &GroupId,
        device_id: u64,
        conn: u64,
        leading: bool,
    ) -> SyncResult<(bool, bool)> {
        if leading {
            let c = match &self.coord {
                Coord::Local(_) => return Ok((leading, false)),
                Coord::Nats(n) => {
                    if n.renew(group, &self.lease_value(device_id, conn)).await? {
                        return Ok((true, false));
                    }
                    let got = self.try_lead(group, device_id, conn).await?;
                    return Ok((got, got));
                }
                Coord::Redis(c) => c,
            };
            let mut c = c.clone();
            let renewed: u64 = redis::Script::new(RENEW_IF_OWNER)
                .key(leader_key(group))
                .arg(self.lease_value(device_id, conn))
                .arg(LEADER_LEASE_MS)
                .invoke_async(&mut c)
                .await
                .map_err(redis_err)?;
            if renewed == 1 {
                return Ok((true, false));
            }
        }
        if matches!(self.coord, Coord::Local(_)) {
            return Ok((leading, false));
        }
        let got = self.try_lead(group, device_id, conn).await?;
        Ok((got, got))
    }

    /// Tries to take the group's transaction lock. `Err((holder, scope))`
    /// when another device holds it.
    pub async fn begin(
        &self,
        group: &GroupId,
        device_id: u64,
        encrypted_scope: Vec<u8>,
        ttl_secs: u32,
        now_ms: u64,
    ) -> SyncResult<Result<(), (u64, Vec<u8>)>> {
        let ttl_secs = ttl_secs.clamp(1, 3600);
        match &self.coord {
            Coord::Local(groups) => Ok(lock(groups)
                .entry(*group)
                .or_default()
                .begin(device_id, encrypted_scope, ttl_secs, now_ms)
                .map_err(|t| (t.holder, t.encrypted_scope))),
            Coord::Redis(c) => {
                let mut c = c.clone();
                let mut value = device_id.to_le_bytes().to_vec();
                value.extend_from_slice(&encrypted_scope);
                for _ in 0..3 {
                    let ok: Option<String> = redis::cmd("SET")
                        .arg(txn_key(group))
                        .arg(value.as_slice())
                        .arg("NX")
                        .arg("PX")
                        .arg(u64::from(ttl_secs) * 1000)
                        .query_async(&mut c)
                        .await
                        .map_err(redis_err)?;
                    if ok.is_some() {
                        lock(&self.watched).insert(*group, (device_id, encrypted_scope));
                        return Ok(Ok(()));
                    }
                    let held: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(txn_key(group))
                        .query_async(&mut c)
                        .await
                        .map_err(redis_err)?;
                    if let Some(v) = held.filter(|v| v.len() >= 8) {
                        let holder = u64::from_le_bytes(v[..8].try_into().unwrap_or_default());
                        let scope = v[8..].to_vec();
                        lock(&self.watched).insert(*group, (holder, scope.clone()));
                        return Ok(Err((holder, scope)));
                    }
                }
                Err(SyncError::Store(
                    "the transaction lock kept changing hands".into(),
                ))
            }
            Coord::Nats(n) => {
                let ttl_ms = u64::from(ttl_secs) * 1000;
                let r = n
                    .begin(group, device_id, &encrypted_scope, ttl_ms, now_ms)
                    .await?;
                let seen = match &r {
                    Ok(()) => (device_id, encrypted_scope),
                    Err((holder, scope)) => (*holder, scope.clone()),
                };
                lock(&self.watched).insert(*group, seen);
                Ok(r)
            }
        }
    }

    /// Whether `device_id` holds the group's transaction lock now.
    pub async fn holds(&self, group: &GroupId, device_id: u64, now_ms: u64) -> SyncResult<bool> {
        match &self.coord {
            Coord::Local(groups) => Ok(lock(groups)
                .get(group)
                .and_then(|s| s.transaction())
                .is_some_and(|t| t.holder == device_id && now_ms < t.expires_ms)),
            Coord::Redis(c) => {
                let mut c = c.clone();
                let held: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(txn_key(group))
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                Ok(held.is_some_and(|v| v.get(..8) == Some(&device_id.to_le_bytes()[..])))
            }
            Coord::Nats(n) => Ok(n.holder(group, now_ms).await? == Some(device_id)),
        }
    }

    /// The holder commits: releases the lock and tells every device. False
    /// if `device_id` no longer held it (its TTL ran out).
    pub async fn commit(&self, group: &GroupId, device_id: u64) -> SyncResult<bool> {
        match &self.coord {
            Coord::Local(groups) => {
                let effect = lock(groups)
                    .get_mut(group)
                    .and_then(|s| s.commit(device_id));
                match effect {
                    Some(e) => {
                        self.apply(group, vec![e]);
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            Coord::Redis(c) => {
                let mut c = c.clone();
                let taken: Option<Vec<u8>> = redis::Script::new(TAKE_TXN_IF_HOLDER)
                    .key(txn_key(group))
                    .arg(device_id.to_le_bytes().as_slice())
                    .invoke_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                match taken {
                    Some(v) => {
                        self.publish(event(EV_ENDED, group, &v)).await?;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            Coord::Nats(n) => match n.take(group, device_id).await? {
                Some(scope) => {
                    self.publish_ended(group, device_id, &scope).await?;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// Forwards an ephemeral envelope to the group's other connected devices.
    pub async fn ephemeral(&self, group: &GroupId, r: Reflected) -> SyncResult<()> {
        if self.is_distributed() {
            let mut rest = r.sender_device_id.to_le_bytes().to_vec();
            rest.extend_from_slice(&r.timestamp_ms.to_le_bytes());
            rest.extend_from_slice(&r.envelope);
            self.publish(event(EV_EPHEMERAL, group, &rest)).await
        } else {
            let sender = r.sender_device_id;
            self.broadcast_local(group, Some(sender), &Signal::Ephemeral(Arc::new(r)));
            Ok(())
        }
    }

    /// New queue entries for these devices (embedded mode; in Redis mode the
    /// store's pipeline publishes the wake-ups).
    pub fn wake(&self, group: &GroupId, devices: &[u64]) {
        if !self.is_distributed() {
            for &d in devices {
                self.signal(group, d, Signal::Wake);
            }
        }
    }

    /// A device was dropped: close its connection wherever it is.
    pub async fn dropped(&self, group: &GroupId, device_id: u64) -> SyncResult<()> {
        if self.is_distributed() {
            self.publish(event(EV_DROP, group, &device_id.to_le_bytes()))
                .await
        } else {
            self.signal(group, device_id, Signal::Close(CloseCode::DeviceDropped));
            Ok(())
        }
    }

    /// Whether `device_id` is connected to this node.
    pub fn is_connected_here(&self, group: &GroupId, device_id: u64) -> bool {
        lock(&self.conns)
            .get(group)
            .is_some_and(|g| g.contains_key(&device_id))
    }

    /// Time passes (called every few hundred ms): lapsed transactions end.
    pub async fn tick(&self, now_ms: u64) {
        match &self.coord {
            Coord::Local(groups) => {
                let all: Vec<(GroupId, Vec<GroupEffect>)> = {
                    let mut groups = lock(groups);
                    let out = groups
                        .iter_mut()
                        .filter(|(_, s)| s.next_deadline().is_some_and(|d| d <= now_ms))
                        .map(|(g, s)| (*g, s.tick(now_ms)))
                        .collect();
                    groups.retain(|_, s| !s.is_idle());
                    out
                };
                for (g, effects) in all {
                    self.apply(&g, effects);
                }
            }
            Coord::Redis(c) => {
                let watched: Vec<(GroupId, (u64, Vec<u8>))> = lock(&self.watched)
                    .iter()
                    .map(|(g, v)| (*g, v.clone()))
                    .collect();
                for (g, (holder, scope)) in watched {
                    let mut c = c.clone();
                    let exists: Result<bool, _> = redis::cmd("EXISTS")
                        .arg(txn_key(&g))
                        .query_async(&mut c)
                        .await;
                    if matches!(exists, Ok(false)) {
                        lock(&self.watched).remove(&g);
                        let mut rest = holder.to_le_bytes().to_vec();
                        rest.extend_from_slice(&scope);
                        let _ = self.publish(event(EV_ENDED, &g, &rest)).await;
                    }
                }
            }
            Coord::Nats(n) => {
                let watched: Vec<(GroupId, (u64, Vec<u8>))> = lock(&self.watched)
                    .iter()
                    .map(|(g, v)| (*g, v.clone()))
                    .collect();
                for (g, (holder, scope)) in watched {
                    if matches!(n.lapsed(&g, now_ms).await, Ok(true)) {
                        lock(&self.watched).remove(&g);
                        let _ = self.publish_ended(&g, holder, &scope).await;
                    }
                }
            }
        }
    }

    /// Distributed modes: one event from the shared channel.
    pub fn on_event(&self, msg: &[u8]) {
        let Some((&kind, rest)) = msg.split_first() else {
            return;
        };
        let Some((g, rest)) = rest.split_first_chunk::<32>() else {
            return;
        };
        let group = GroupId(*g);
        let u64_at = |b: &[u8], at: usize| -> Option<u64> {
            b.get(at..at + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
        };
        match kind {
            EV_WAKE => {
                if let Some(d) = u64_at(rest, 0) {
                    self.signal(&group, d, Signal::Wake);
                }
            }
            EV_ENDED => {
                if let Some(holder) = u64_at(rest, 0) {
                    lock(&self.watched).remove(&group);
                    self.broadcast_local(
                        &group,
                        None,
                        &Signal::Ended {
                            holder,
                            encrypted_scope: rest[8..].to_vec(),
                        },
                    );
                }
            }
            EV_LEADER_FREE => self.broadcast_local(&group, None, &Signal::LeaderFree),
            EV_DROP => {
                if let Some(d) = u64_at(rest, 0) {
                    self.signal(&group, d, Signal::Close(CloseCode::DeviceDropped));
                }
            }
            EV_CONN => {
                if let (Some(d), Some(node), Some(conn)) =
                    (u64_at(rest, 0), u64_at(rest, 8), u64_at(rest, 16))
                {
                    let stale = lock(&self.conns)
                        .get(&group)
                        .and_then(|g| g.get(&d))
                        .is_some_and(|l| node != self.node || l.conn != conn);
                    if stale && node != self.node {
                        self.signal(&group, d, Signal::Close(CloseCode::DeviceIdReused));
                    }
                }
            }
            EV_EPHEMERAL => {
                if let (Some(sender), Some(ts)) = (u64_at(rest, 0), u64_at(rest, 8)) {
                    let r = Reflected {
                        reflected_id: 0,
                        sender_device_id: sender,
                        timestamp_ms: ts,
                        ephemeral: true,
                        envelope: rest[16..].to_vec(),
                    };
                    self.broadcast_local(&group, Some(sender), &Signal::Ephemeral(Arc::new(r)));
                }
            }
            _ => {}
        }
    }
}
