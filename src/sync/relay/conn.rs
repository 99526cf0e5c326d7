//! One device connection: the WebSocket upgrade (routing on the path), then
//! the loop that feeds the protocol machine and carries out its events
//! against the store and the hub.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{
    WebSocketConfig, frame::coding::CloseCode as WsCode,
};

use super::Inner;
use super::hub::Signal;
use super::sled_store::FLUSH_TIMEOUT;
use super::store::{Admission, Registration};
use crate::sync::error::{SyncError, SyncResult};
use crate::sync::keys::{GroupId, RelayChallenge};
use crate::sync::protocol::CloseCode;
use crate::sync::protocol::frame::{MAX_FRAME_LEN, WS_READ_BUFFER};
use crate::sync::protocol::messages::{DeviceEntry, DevicesInfo, Reflected, ServerInfo};
use crate::sync::protocol::relay::{RelayConnection, RelayEvent, RelayOutput};

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

pub(super) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_LEN))
        .max_frame_size(Some(MAX_FRAME_LEN))
        .read_buffer_size(WS_READ_BUFFER)
}

/// The transport under the WebSocket: a TCP stream, or TLS over one.
pub(super) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

pub(super) async fn handle<S: Transport>(inner: Arc<Inner>, stream: S) {
    let mut group = None;
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path();
        match path.strip_prefix('/').and_then(GroupId::from_hex) {
            Some(g) => {
                group = Some(g);
                Ok(resp)
            }
            None => {
                let mut r = ErrorResponse::new(Some(
                    "the path must be /<device group id, 64 hex digits>".into(),
                ));
                *r.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
                Err(r)
            }
        }
    };
    let upgrade = tokio::time::timeout(
        inner.config.handshake_timeout,
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config())),
    )
    .await;
    let ws = match upgrade {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket upgrade refused");
            return;
        }
        Err(_) => return,
    };
    let Some(group) = group else { return };
    let mut c = Conn {
        inner: &inner,
        group,
        ws,
        device_id: None,
        conn_id: 0,
        cursor: 0,
        wake: false,
        leading: false,
        try_lead: false,
        pending: VecDeque::new(),
        flushed: inner.store.flushed(),
    };
    let result = c.run().await;
    if let Err(e) = &result {
        tracing::warn!(group = %group, error = %e, "connection ended with an error");
    }
    // Reflections logged but not yet acknowledged: their recipients were
    // woken when they were logged, and their sender will send them again
    // (the copies are refused as replays), so nothing is left to do.
    if let Some(d) = c.device_id {
        inner.hub.disconnect(&group, d, c.conn_id).await;
        let _ = inner.store.touch(&group, d, now_ms()).await;
        tracing::info!(group = %group, device = format_args!("{d:016x}"), "device disconnected");
    }
}

struct Conn<'a, S> {
    inner: &'a Inner,
    group: GroupId,
    ws: WebSocketStream<S>,
    device_id: Option<u64>,
    conn_id: u64,
    /// Last queue position delivered on this connection.
    cursor: u64,
    /// The queue may hold entries after `cursor`.
    wake: bool,
    leading: bool,
    /// Redis mode: the leader lease was freed; try to take it.
    try_lead: bool,
    /// Reflections logged in the embedded store whose flush has not
    /// completed, in the order they came: each is acknowledged to this
    /// device once its flush ticket is reached.
    pending: VecDeque<Pending>,
    /// The embedded store's completed flush tickets.
    flushed: Option<watch::Receiver<u64>>,
}

/// A reflection waiting for its group commit.
struct Pending {
    ticket: u64,
    logged: std::time::Instant,
    reflect_id: u32,
    timestamp_ms: u64,
}

/// Resolves when the embedded store completes another flush (never when
/// there is no embedded store).
async fn next_flush(rx: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = rx
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

impl<S: Transport> Conn<'_, S> {
    async fn run(&mut self) -> SyncResult<()> {
        let cfg = &self.inner.config;
        let handshake_ms = u64::try_from(cfg.handshake_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut machine = RelayConnection::new(
            self.group,
            RelayChallenge::random()?,
            now_ms(),
            handshake_ms,
            cfg.window,
        );
        let (tx, mut rx) = mpsc::unbounded_channel::<Signal>();
        let mut tx = Some(tx);
        let mut ticker = tokio::time::interval(Duration::from_millis(1000));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(e) = self.process(&mut machine, &mut tx).await {
                machine.close(CloseCode::InternalError);
                let _ = self.flush(&mut machine).await;
                return Err(e);
            }
            if self.flush(&mut machine).await? {
                return Ok(());
            }
            tokio::select! {
                msg = self.ws.next() => match msg {
                    Some(Ok(Message::Binary(b))) => machine.recv(&b),
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Text(_))) => machine.close(CloseCode::ProtocolError),
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Err(e)) => {
                        tracing::debug!(group = %self.group, error = %e, "WebSocket error");
                        return Ok(());
                    }
                },
                Some(sig) = rx.recv() => self.on_signal(&mut machine, sig),
                () = next_flush(&mut self.flushed), if !self.pending.is_empty() => {}
                _ = ticker.tick() => {
                    machine.tick(now_ms());
                    if let Some(d) = self.device_id.filter(|_| machine.is_dry() && self.inner.store.is_distributed()) {
                        let (leads, promoted) = self.inner.hub.lease_tick(&self.group, d, self.conn_id, self.leading).await?;
                        self.leading = leads;
                        if promoted {
                            machine.promoted();
                        }
                    }
                }
            }
        }
    }

    fn on_signal(&mut self, machine: &mut RelayConnection, sig: Signal) {
        match sig {
            Signal::Wake => self.wake = true,
            Signal::Promote => {
                self.leading = true;
                machine.promoted();
            }
            Signal::Ended {
                holder,
                encrypted_scope,
            } => machine.transaction_ended(holder, encrypted_scope),
            Signal::Ephemeral(r) => machine.deliver(&r),
            Signal::LeaderFree => {
                // Redis mode: the next tick tries the lease; try at once.
                self.leading = false;
                self.try_lead = true;
            }
            Signal::Close(code) => machine.close(code),
        }
    }
}

impl<S: Transport> Conn<'_, S> {
    /// Acknowledges the pending reflections whose flush completed (in
    /// order). Their recipients were woken when they were logged.
    fn settle(&mut self, machine: &mut RelayConnection) {
        let Some(rx) = self.flushed.as_mut() else {
            return;
        };
        let done = *rx.borrow_and_update();
        while self.pending.front().is_some_and(|p| p.ticket <= done) {
            if let Some(p) = self.pending.pop_front() {
                tracing::trace!(
                    waited_us = p.logged.elapsed().as_micros() as u64,
                    "reflection durable: acknowledged"
                );
                machine.reflect_acked(p.reflect_id, p.timestamp_ms);
            }
        }
    }

    fn device(&self) -> SyncResult<u64> {
        self.device_id
            .ok_or_else(|| SyncError::Protocol("no device on this connection".into()))
    }

    async fn process(
        &mut self,
        machine: &mut RelayConnection,
        tx: &mut Option<mpsc::UnboundedSender<Signal>>,
    ) -> SyncResult<()> {
        // A flush that never completes (the disk failed) fails the
        // connection, as a write that cannot be made durable does.
        if self
            .pending
            .front()
            .is_some_and(|p| p.logged.elapsed() > FLUSH_TIMEOUT)
        {
            return Err(SyncError::Store("the store did not flush to disk".into()));
        }
        let (store, hub, cfg) = (&self.inner.store, &self.inner.hub, &self.inner.config);
        let g = self.group;
        // Acknowledgements are applied together after the events at hand.
        let mut acks = Vec::new();
        while let Some(ev) = machine.poll_event() {
            match ev {
                RelayEvent::Authenticated {
                    device_id,
                    encrypted_device_info,
                    policy,
                } => {
                    let now = now_ms();
                    let admission = Admission {
                        device_id,
                        encrypted_info: &encrypted_device_info,
                        now_ms: now,
                        max_slots: cfg.max_device_slots,
                        policy,
                    };
                    match store.register(&g, admission).await? {
                        Registration::SlotsExhausted => {
                            tracing::info!(group = %g, device = format_args!("{device_id:016x}"), "refused: device slots exhausted");
                            machine.reject(CloseCode::DeviceSlotsExhausted);
                        }
                        Registration::Admitted { queue_len, dropped } => {
                            for d in dropped {
                                tracing::info!(group = %g, device = format_args!("{d:016x}"), "dropped the least recently seen device to make room");
                                hub.dropped(&g, d).await?;
                            }
                            let Some(tx) = tx.take() else { continue };
                            self.conn_id = hub.connect(&g, device_id, tx).await?;
                            self.device_id = Some(device_id);
                            self.wake = true;
                            machine.accept(ServerInfo {
                                current_time_ms: now,
                                max_device_slots: u32::try_from(cfg.max_device_slots)
                                    .unwrap_or(u32::MAX),
                                reflection_queue_length: u32::try_from(queue_len)
                                    .unwrap_or(u32::MAX),
                            });
                            tracing::info!(group = %g, device = format_args!("{device_id:016x}"), queue_len, "device connected");
                        }
                    }
                }
                RelayEvent::Reflect {
                    reflect_id,
                    ephemeral,
                    envelope,
                } => {
                    let dev = self.device()?;
                    let now = now_ms();
                    if ephemeral {
                        hub.ephemeral(
                            &g,
                            Reflected {
                                reflected_id: 0,
                                sender_device_id: dev,
                                timestamp_ms: now,
                                ephemeral: true,
                                envelope,
                            },
                        )
                        .await?;
                    } else {
                        // Acknowledged once durable (`settle`), without
                        // holding up this connection meanwhile. The
                        // recipients are woken now, not at the flush:
                        // delivery before durability is safe (the
                        // protocol's §4, "Visibility before durability")
                        // and keeps the flush's time out of the
                        // reflect-to-delivery latency.
                        let (recipients, ticket) =
                            store.enqueue_deferred(&g, dev, &[&envelope], now).await?;
                        match ticket {
                            Some(ticket) => {
                                hub.wake(&g, &recipients);
                                self.pending.push_back(Pending {
                                    ticket,
                                    logged: std::time::Instant::now(),
                                    reflect_id,
                                    timestamp_ms: now,
                                });
                            }
                            None => {
                                hub.wake(&g, &recipients);
                                machine.reflect_acked(reflect_id, now);
                            }
                        }
                    }
                }
                RelayEvent::ReflectedAck { reflected_id } => acks.push(reflected_id),
                RelayEvent::GetDevices => {
                    let devices = store
                        .devices(&g)
                        .await?
                        .into_iter()
                        .map(|d| DeviceEntry {
                            device_id: d.device_id,
                            connected: hub.is_connected_here(&g, d.device_id),
                            encrypted_device_info: d.encrypted_info,
                            last_seen_ms: d.last_seen_ms,
                        })
                        .collect();
                    machine.devices_info(DevicesInfo { devices });
                }
                RelayEvent::DropDevice { device_id } => {
                    store.drop_device(&g, device_id).await?;
                    hub.dropped(&g, device_id).await?;
                    tracing::info!(group = %g, device = format_args!("{device_id:016x}"), "device dropped by another device");
                    machine.drop_acked(device_id);
                }
                RelayEvent::BeginTransaction {
                    encrypted_scope,
                    ttl_secs,
                } => {
                    let dev = self.device()?;
                    match hub
                        .begin(&g, dev, encrypted_scope, ttl_secs, now_ms())
                        .await?
                    {
                        Ok(()) => machine.transaction_began(),
                        Err((holder, scope)) => machine.transaction_rejected(holder, scope),
                    }
                }
                RelayEvent::CommitTransaction { staged } => {
                    let dev = self.device()?;
                    if !hub.holds(&g, dev, now_ms()).await? {
                        tracing::info!(group = %g, device = format_args!("{dev:016x}"), "commit after the transaction lapsed");
                        machine.transaction_lapsed();
                        continue;
                    }
                    let now = now_ms();
                    let envs: Vec<&[u8]> = staged.iter().map(|(_, e)| e.as_slice()).collect();
                    let recipients = store.enqueue(&g, dev, &envs, now).await?;
                    // Durable now, and so is every reflection before it:
                    // their acks go first.
                    self.settle(machine);
                    hub.commit(&g, dev).await?;
                    hub.wake(&g, &recipients);
                    let ids: Vec<u32> = staged.iter().map(|(id, _)| *id).collect();
                    machine.transaction_committed(&ids, now);
                }
            }
        }
        self.settle(machine);
        let Some(dev) = self.device_id else {
            return Ok(());
        };
        let below = machine
            .oldest_in_flight()
            .unwrap_or(self.cursor.saturating_add(1));
        store.ack(&g, dev, &acks, below).await?;
        let room = machine.window_room();
        if self.wake && room > 0 {
            let entries = store.read(&g, dev, self.cursor, room).await?;
            let read = entries.len();
            for e in entries {
                self.cursor = e.seq;
                machine.deliver(&Reflected {
                    reflected_id: e.seq,
                    sender_device_id: e.sender,
                    timestamp_ms: e.timestamp_ms,
                    ephemeral: false,
                    envelope: e.envelope,
                });
            }
            if read < room {
                self.wake = false;
                if !machine.is_dry() {
                    machine.queue_dry();
                    self.try_lead = true;
                }
            }
        }
        if self.try_lead && machine.is_dry() {
            self.try_lead = false;
            if store.is_distributed() {
                let (leads, promoted) = hub.lease_tick(&g, dev, self.conn_id, self.leading).await?;
                self.leading = leads;
                if promoted {
                    machine.promoted();
                }
            } else {
                hub.queue_dry(&g, dev, self.conn_id).await?;
            }
        }
        Ok(())
    }

    /// Sends what the machine queued. True once a close was sent.
    async fn flush(&mut self, machine: &mut RelayConnection) -> SyncResult<bool> {
        let ws_err = |e: tokio_tungstenite::tungstenite::Error| {
            SyncError::io("WebSocket send", std::io::Error::other(e))
        };
        let mut sent = false;
        while let Some(out) = machine.poll_output() {
            match out {
                RelayOutput::Frame(f) => {
                    self.ws
                        .feed(Message::Binary(f.into()))
                        .await
                        .map_err(ws_err)?;
                    sent = true;
                }
                RelayOutput::Close(code) => {
                    tracing::info!(group = %self.group, code = code as u16, reason = code.reason(), "closing connection");
                    let frame = CloseFrame {
                        code: WsCode::from(code as u16),
                        reason: code.reason().into(),
                    };
                    let _ = self.ws.send(Message::Close(Some(frame))).await;
                    // Let the close frame reach the device before dropping.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(_)) = self.ws.next().await {}
                    })
                    .await;
                    return Ok(true);
                }
            }
        }
        if sent {
            self.ws.flush().await.map_err(ws_err)?;
        }
        Ok(false)
    }
}
