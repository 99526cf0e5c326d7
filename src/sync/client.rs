//! The device's tokio shell: connects to the relay over WebSocket, runs
//! [`DeviceMachine`], reconnects after a lost connection, and offers the
//! application an async API (reflect and await the relay's ack, receive and
//! acknowledge, transactions, the device list) plus a stream of [`Event`]s.
//!
//! ```no_run
//! # async fn run() -> Result<(), sealdex::sync::SyncError> {
//! use std::sync::Arc;
//! use sealdex::sync::client::{Device, DeviceConfig, Event};
//! use sealdex::sync::keys::{GroupKey, GroupKeys};
//! let keys = Arc::new(GroupKeys::derive(&GroupKey::random()?)?);
//! let mut device = Device::connect(DeviceConfig::new("ws://127.0.0.1:8443", keys, 7)).await?;
//! device.reflect(b"an index op")?.await?;
//! while let Some(event) = device.next_event().await {
//!     if let Event::Reflected { reflected_id, plaintext, .. } = event {
//!         // apply `plaintext`, then:
//!         device.ack(reflected_id).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{
    WebSocketConfig, frame::coding::CloseCode as WsCode,
};
use zeroize::Zeroizing;

use super::envelope::ReplayGuard;
use super::error::{SyncError, SyncResult};
use super::keys::GroupKeys;
use super::protocol::CloseCode;
use super::protocol::device::{DeviceEvent, DeviceMachine, DeviceOutput};
use super::protocol::frame::{MAX_FRAME_LEN, WS_READ_BUFFER};
use super::protocol::messages::{DeviceEntry, SlotsExhaustedPolicy};
use super::tls::TrustRoots;

/// How a device connects.
pub struct DeviceConfig {
    /// `ws://HOST:PORT` or `wss://HOST:PORT` (the group id path is
    /// appended).
    pub url: String,
    /// For `wss://`: the certificate authorities trusted (Mozilla's by
    /// default; [`TrustRoots::from_pem`] for a private CA or a self-signed
    /// relay).
    pub roots: TrustRoots,
    /// The group's keys.
    pub keys: Arc<GroupKeys>,
    /// This device's random 64-bit id (keep it across restarts).
    pub device_id: u64,
    /// A label for the other devices (sealed under the device-info key).
    pub info: Vec<u8>,
    /// What the relay does when every slot is taken.
    pub policy: SlotsExhaustedPolicy,
    /// Nonces accepted so far (file-backed to survive restarts).
    pub guard: ReplayGuard,
    /// Reconnect after a lost connection (with back-off up to 2 s).
    pub reconnect: bool,
}

impl DeviceConfig {
    /// Defaults: info "device", reject when slots run out, in-memory replay
    /// guard, reconnect on.
    pub fn new(url: &str, keys: Arc<GroupKeys>, device_id: u64) -> Self {
        DeviceConfig {
            url: url.trim_end_matches('/').to_owned(),
            roots: TrustRoots::default(),
            keys,
            device_id,
            info: b"device".to_vec(),
            policy: SlotsExhaustedPolicy::Reject,
            guard: ReplayGuard::new(),
            reconnect: true,
        }
    }
}

impl std::fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("url", &self.url)
            .field("device_id", &format_args!("{:016x}", self.device_id))
            .finish_non_exhaustive()
    }
}

/// What happened, for the application: the protocol machine's
/// [`protocol::device::Event`](super::protocol::device::Event), with the
/// connection notices this shell adds.
pub use super::protocol::device::Event;

enum Cmd {
    Reflect {
        plaintext: Zeroizing<Vec<u8>>,
        ephemeral: bool,
        done: oneshot::Sender<SyncResult<u64>>,
    },
    Ack(u64, oneshot::Sender<SyncResult<()>>),
    Begin(Vec<u8>, u32, oneshot::Sender<SyncResult<()>>),
    Commit(oneshot::Sender<SyncResult<()>>),
    Devices(oneshot::Sender<SyncResult<Vec<DeviceEntry>>>),
    Drop(u64, oneshot::Sender<SyncResult<()>>),
    Close(oneshot::Sender<ReplayGuard>),
    /// Test hook: drop the socket without a close frame (as a crash would).
    Abort,
}

/// A future resolving to the relay's time of queueing once the relay has
/// durably queued a reflection for every other device.
pub struct ReflectAck(oneshot::Receiver<SyncResult<u64>>);

impl Future for ReflectAck {
    type Output = SyncResult<u64>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(SyncError::Disconnected)))
    }
}

impl std::fmt::Debug for ReflectAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReflectAck")
    }
}

/// A device's event stream, taken with [`Device::take_events`].
pub struct Events(mpsc::UnboundedReceiver<Event>);

impl Events {
    /// The next event; `None` once the client stopped.
    pub async fn next(&mut self) -> Option<Event> {
        self.0.recv().await
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

/// A connected device.
pub struct Device {
    cmd: mpsc::UnboundedSender<Cmd>,
    events: mpsc::UnboundedReceiver<Event>,
    device_id: u64,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({:016x})", self.device_id)
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Device {
    /// Connects and completes the handshake. Fails with
    /// [`SyncError::Closed`] (and the relay's close code) if the relay refuses.
    pub async fn connect(config: DeviceConfig) -> SyncResult<Device> {
        let device_id = config.device_id;
        let url = format!("{}/{}", config.url, config.keys.group_id().to_hex());
        // Built once: a reconnect reuses it (and rustls' session cache).
        let tls = if url.starts_with("wss://") {
            Some(Connector::Rustls(config.roots.client_config()?))
        } else {
            None
        };
        let machine = DeviceMachine::new(
            config.keys.clone(),
            config.device_id,
            &config.info,
            config.policy,
            config.guard,
        )?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = Task {
            url,
            tls,
            machine,
            reconnect: config.reconnect,
            events: ev_tx,
            ready: Some(ready_tx),
            reflects: HashMap::new(),
            begins: VecDeque::new(),
            commits: VecDeque::new(),
            devices: VecDeque::new(),
            drops: VecDeque::new(),
        };
        tokio::spawn(task.run(cmd_rx));
        match tokio::time::timeout(CONNECT_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(Device {
                cmd: cmd_tx,
                events: ev_rx,
                device_id,
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(SyncError::Disconnected),
            Err(_) => Err(SyncError::Timeout("connecting to the relay")),
        }
    }

    /// This device's id.
    pub fn device_id(&self) -> u64 {
        self.device_id
    }

    fn send(&self, c: Cmd) -> SyncResult<()> {
        self.cmd.send(c).map_err(|_| SyncError::Disconnected)
    }

    /// Seals and reflects `plaintext` to the group's other devices. Await the
    /// returned future for the relay's ack. While disconnected, the
    /// reflection waits and is sent after reconnecting.
    pub fn reflect(&self, plaintext: &[u8]) -> SyncResult<ReflectAck> {
        let (done, rx) = oneshot::channel();
        self.send(Cmd::Reflect {
            plaintext: Zeroizing::new(plaintext.to_vec()),
            ephemeral: false,
            done,
        })?;
        Ok(ReflectAck(rx))
    }

    /// Reflects an ephemeral envelope (progress, presence): not queued, only
    /// devices connected now receive it, no ack.
    pub async fn reflect_ephemeral(&self, plaintext: &[u8]) -> SyncResult<()> {
        let (done, rx) = oneshot::channel();
        self.send(Cmd::Reflect {
            plaintext: Zeroizing::new(plaintext.to_vec()),
            ephemeral: true,
            done,
        })?;
        rx.await.map_err(|_| SyncError::Disconnected)?.map(|_| ())
    }

    /// The next event; `None` once the client stopped (or after
    /// [`Device::take_events`]).
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Moves the event stream out, so one task can receive while others
    /// reflect and acknowledge through a shared `&Device`.
    pub fn take_events(&mut self) -> Events {
        let (_, empty) = mpsc::unbounded_channel();
        Events(std::mem::replace(&mut self.events, empty))
    }

    /// Acknowledges a processed envelope (records its nonce, then tells the
    /// relay to drop it).
    pub async fn ack(&self, reflected_id: u64) -> SyncResult<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Ack(reflected_id, tx))?;
        rx.await.map_err(|_| SyncError::Disconnected)?
    }

    /// Takes the group's transaction lock for `scope` (sealed on the device)
    /// for at most `ttl`. Fails with [`SyncError::TransactionRejected`]
    /// naming the holder when another device has it.
    pub async fn begin_transaction(&self, scope: &[u8], ttl: Duration) -> SyncResult<()> {
        let (tx, rx) = oneshot::channel();
        let secs = u32::try_from(ttl.as_secs().max(1)).unwrap_or(u32::MAX);
        self.send(Cmd::Begin(scope.to_vec(), secs, tx))?;
        rx.await.map_err(|_| SyncError::Disconnected)?
    }

    /// Commits: the transaction's reflections reach the other devices, and
    /// their acks resolve.
    pub async fn commit_transaction(&self) -> SyncResult<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Commit(tx))?;
        rx.await.map_err(|_| SyncError::Disconnected)?
    }

    /// The group's devices (infos sealed; open with
    /// [`GroupKeys::open_device_info`]).
    pub async fn devices(&self) -> SyncResult<Vec<DeviceEntry>> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Devices(tx))?;
        rx.await.map_err(|_| SyncError::Disconnected)?
    }

    /// Drops a device and its queue from the group.
    pub async fn drop_device(&self, device_id: u64) -> SyncResult<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Drop(device_id, tx))?;
        rx.await.map_err(|_| SyncError::Disconnected)?
    }

    /// Closes the connection and returns the replay guard, to reconnect later.
    pub async fn close(self) -> SyncResult<ReplayGuard> {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Close(tx))?;
        rx.await.map_err(|_| SyncError::Disconnected)
    }

    /// Drops the socket without a close frame, as a crash or a vanished
    /// network would, and stops the client (for tests of the relay).
    pub fn abort(self) {
        let _ = self.cmd.send(Cmd::Abort);
    }
}

/// Why a connection attempt failed, for the first [`Device::connect`]: a
/// TLS failure (an untrusted certificate, a name mismatch) as
/// [`SyncError::Tls`], so it is not mistaken for a network problem.
fn connect_error(e: tokio_tungstenite::tungstenite::Error) -> SyncError {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e {
        WsError::Io(io) => match io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(tls) => SyncError::Tls(format!("connecting to the relay: {tls}")),
            None => SyncError::io("connecting to the relay", io),
        },
        WsError::Tls(t) => SyncError::Tls(format!("connecting to the relay: {t}")),
        other => SyncError::io("connecting to the relay", std::io::Error::other(other)),
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Task {
    url: String,
    tls: Option<Connector>,
    machine: DeviceMachine,
    reconnect: bool,
    events: mpsc::UnboundedSender<Event>,
    ready: Option<oneshot::Sender<SyncResult<()>>>,
    reflects: HashMap<u32, oneshot::Sender<SyncResult<u64>>>,
    begins: VecDeque<oneshot::Sender<SyncResult<()>>>,
    commits: VecDeque<oneshot::Sender<SyncResult<()>>>,
    devices: VecDeque<oneshot::Sender<SyncResult<Vec<DeviceEntry>>>>,
    drops: VecDeque<oneshot::Sender<SyncResult<()>>>,
}

enum End {
    /// Connection lost; maybe reconnect.
    Lost(Option<u16>),
    /// Stop the client.
    Stop,
}

impl Task {
    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            self.machine.reconnect();
            self.drain_events();
            let cfg = WebSocketConfig::default()
                .max_message_size(Some(MAX_FRAME_LEN))
                .max_frame_size(Some(MAX_FRAME_LEN))
                .read_buffer_size(WS_READ_BUFFER);
            let connected = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio_tungstenite::connect_async_tls_with_config(
                    &self.url,
                    Some(cfg),
                    true,
                    self.tls.clone(),
                ),
            )
            .await;
            let mut failure = None;
            let end = match connected {
                Ok(Ok((ws, _))) => {
                    backoff = Duration::from_millis(50);
                    self.session(ws, &mut cmds).await
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "connecting to the relay failed");
                    failure = Some(connect_error(e));
                    End::Lost(None)
                }
                Err(_) => End::Lost(None),
            };
            self.fail_pending();
            match end {
                End::Stop => return,
                End::Lost(code) => {
                    let fatal = code
                        .map(|c| CloseCode::from_u16(c).is_none_or(|c| !c.should_reconnect()))
                        .unwrap_or(false);
                    if let Some(ready) = self.ready.take() {
                        if fatal || !self.reconnect {
                            let _ = ready.send(Err(failure.unwrap_or(SyncError::Closed {
                                code: code.unwrap_or(1006),
                                reason: code
                                    .and_then(CloseCode::from_u16)
                                    .map_or("connection lost", CloseCode::reason)
                                    .into(),
                            })));
                            return;
                        }
                        self.ready = Some(ready);
                    }
                    if fatal || !self.reconnect {
                        let _ = self.events.send(Event::Closed {
                            code: code.unwrap_or(1006),
                        });
                        return;
                    }
                    let _ = self.events.send(Event::Disconnected { code });
                    // Wait before reconnecting, but keep taking commands.
                    let sleep = tokio::time::sleep(backoff);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            c = cmds.recv() => match c {
                                None => return,
                                Some(c) => if let Some(End::Stop) = self.command(c, None).await { return },
                            }
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    async fn session(&mut self, mut ws: Ws, cmds: &mut mpsc::UnboundedReceiver<Cmd>) -> End {
        loop {
            self.drain_events();
            if let Some(end) = self.flush(&mut ws).await {
                return end;
            }
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        if let Err(e) = self.machine.recv(&b) {
                            tracing::warn!(error = %e, "the relay broke the protocol");
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return End::Lost(frame.map(|f| u16::from(f.code)));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return End::Lost(None),
                },
                c = cmds.recv() => match c {
                    None => return End::Stop,
                    Some(c) => if let Some(end) = self.command(c, Some(&mut ws)).await { return end },
                }
            }
        }
    }

    async fn command(&mut self, c: Cmd, ws: Option<&mut Ws>) -> Option<End> {
        match c {
            Cmd::Reflect {
                plaintext,
                ephemeral,
                done,
            } => match self.machine.reflect(&plaintext, ephemeral) {
                Ok(id) if !ephemeral => {
                    self.reflects.insert(id, done);
                }
                Ok(_) => {
                    let _ = done.send(Ok(0));
                }
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Cmd::Ack(id, done) => {
                let _ = done.send(self.machine.ack(id));
            }
            Cmd::Begin(scope, ttl, done) => match self.machine.begin_transaction(&scope, ttl) {
                Ok(()) => self.begins.push_back(done),
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Cmd::Commit(done) => match self.machine.commit_transaction() {
                Ok(()) => self.commits.push_back(done),
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Cmd::Devices(done) => match self.machine.get_devices() {
                Ok(()) => self.devices.push_back(done),
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Cmd::Drop(id, done) => match self.machine.drop_device(id) {
                Ok(()) => self.drops.push_back(done),
                Err(e) => {
                    let _ = done.send(Err(e));
                }
            },
            Cmd::Close(done) => {
                if let Some(ws) = ws {
                    let _ = self.flush(ws).await;
                    let _ = ws
                        .send(Message::Close(Some(CloseFrame {
                            code: WsCode::Normal,
                            reason: "bye".into(),
                        })))
                        .await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                }
                let _ = done.send(self.machine.take_guard());
                return Some(End::Stop);
            }
            Cmd::Abort => return Some(End::Stop),
        }
        None
    }

    /// Sends queued frames. `Some` if the connection must end.
    async fn flush(&mut self, ws: &mut Ws) -> Option<End> {
        let mut sent = false;
        while let Some(out) = self.machine.poll_output() {
            match out {
                DeviceOutput::Frame(f) => {
                    if ws.feed(Message::Binary(f.into())).await.is_err() {
                        return Some(End::Lost(None));
                    }
                    sent = true;
                }
                DeviceOutput::Close(code) => {
                    let _ = ws
                        .send(Message::Close(Some(CloseFrame {
                            code: WsCode::from(code as u16),
                            reason: code.reason().into(),
                        })))
                        .await;
                    return Some(End::Lost(Some(code as u16)));
                }
            }
        }
        if sent && ws.flush().await.is_err() {
            return Some(End::Lost(None));
        }
        None
    }

    fn drain_events(&mut self) {
        while let Some(ev) = self.machine.poll_event() {
            match ev {
                DeviceEvent::App(e) => {
                    if let Event::Connected(_) = e
                        && let Some(r) = self.ready.take()
                    {
                        let _ = r.send(Ok(()));
                    }
                    let _ = self.events.send(e);
                }
                DeviceEvent::ReflectAck {
                    reflect_id,
                    timestamp_ms,
                } => {
                    if let Some(done) = self.reflects.remove(&reflect_id) {
                        let _ = done.send(Ok(timestamp_ms));
                    }
                }
                DeviceEvent::TransactionBegan => {
                    if let Some(d) = self.begins.pop_front() {
                        let _ = d.send(Ok(()));
                    }
                }
                DeviceEvent::TransactionRejected {
                    holder,
                    encrypted_scope,
                } => {
                    if let Some(d) = self.begins.pop_front() {
                        let _ = d.send(Err(SyncError::TransactionRejected {
                            holder,
                            sealed_scope: encrypted_scope,
                        }));
                    }
                }
                DeviceEvent::TransactionCommitted => {
                    if let Some(d) = self.commits.pop_front() {
                        let _ = d.send(Ok(()));
                    }
                }
                DeviceEvent::TransactionLost { reflect_ids } => {
                    for id in reflect_ids {
                        if let Some(done) = self.reflects.remove(&id) {
                            let _ = done.send(Err(SyncError::Disconnected));
                        }
                    }
                }
                DeviceEvent::DevicesInfo(list) => {
                    if let Some(d) = self.devices.pop_front() {
                        let _ = d.send(Ok(list));
                    }
                }
                DeviceEvent::DeviceDropped(_) => {
                    if let Some(d) = self.drops.pop_front() {
                        let _ = d.send(Ok(()));
                    }
                }
            }
        }
    }

    /// Requests in flight on a lost connection fail; reflections stay (they
    /// are resent after reconnecting).
    fn fail_pending(&mut self) {
        for q in [&mut self.begins, &mut self.commits, &mut self.drops] {
            for d in q.drain(..) {
                let _ = d.send(Err(SyncError::Disconnected));
            }
        }
        for d in self.devices.drain(..) {
            let _ = d.send(Err(SyncError::Disconnected));
        }
    }
}
