//! One index shared by the devices of an account, through the mediator:
//! the leader ingests and reflects, the others apply.
//!
//! ```text
//!  leader                                   relay                 other devices
//!  sources ─► pipeline ─► Index::apply ─► committed batch ─► sealed envelopes ─► Index::apply
//!                                          (ops with versions,                     (never fetch)
//!                                           checkpoint, tokens)
//!  any device: app pushes a patch/delete ─► Index::apply ─► reflected the same way
//!  new device, empty: SnapshotRequest ─► leader answers with chunks (snapshot.rs)
//! ```
//!
//! [`start`] runs it for an open [`Index`]: it connects to the relay,
//! hooks the index so that every batch committed on this device (by the
//! pipeline, or by the app through [`Index::apply`]) is reflected, applies
//! what the other devices reflect, runs the sources while the relay makes
//! this device the leader, serves snapshots to devices that join empty,
//! and bootstraps from one if this device joined empty.
//!
//! # Why this is safe
//!
//! - **Idempotent ops.** A batch is reflected as the ops [`Index::apply`]
//!   reported, each with the version it was applied at. Applying them again
//!   anywhere has the same effect, and an op at or below what a record holds
//!   changes nothing, so redeliveries, resends after a reconnect, and the
//!   overlap of a snapshot with the live stream do no harm.
//! - **Checkpoints travel with their ops.** The leader's source checkpoint
//!   and sync tokens go in the same message as the batch they were written
//!   with, and a follower writes them in the same atomic batch as its ops.
//!   A device promoted after the leader died resumes the crawl from the
//!   last batch it received: the batch in flight is fetched again (an
//!   upsert by id, so nothing is doubled), and nothing is skipped.
//! - **Own keys.** Each device seals its own store under its own data key.
//!   What crosses the relay is sealed under the group's reflect key
//!   ([`crate::sync::envelope`]); the relay sees sizes (bucketed) and
//!   times, nothing else.
//! - **Leader only ingests.** Only the device the relay promotes runs the
//!   sources; a device that loses its connection stops its crawl at once
//!   (the relay may promote another meanwhile).
//!
//! A device that is offline keeps its queue at the relay and catches up
//! when it reconnects. Devices apply ops in the order the relay delivers
//! them; two devices changing the same record concurrently converge on the
//! op with the higher version (last writer wins).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use sealdex::sync::keys::{GroupKey, GroupKeys};
//! use sealdex::sync::share::{self, ShareConfig};
//! use sealdex::{Credential, Index, IndexConfig};
//!
//! let index = Arc::new(Index::open_or_create(
//!     "/path/to/index".as_ref(), &Credential::passphrase("pw"), IndexConfig::default())?);
//! let keys = Arc::new(GroupKeys::derive(&GroupKey::from_slice(&std::fs::read("group.key")?)?)?);
//! let mut config = ShareConfig::new("ws://127.0.0.1:8443", keys, 0x5eed);
//! config.sources.push(sealdex::backends::open_path("/home/me/Maildir".as_ref())?);
//! let mut sync = share::start(Arc::clone(&index), config).await?;
//! let status = sync.until_idle().await?;
//! println!("{:?}, {} ops applied from other devices", status.role, status.applied_ops);
//! sync.stop().await?;
//! # Ok(()) }
//! ```

mod snapshot;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::Index;
use crate::decrypt::{Decryptor, PassThrough};
use crate::index::snapshot::PeerBlock;
use crate::ops::{Applied, Op};
use crate::pipeline::{Control, IndexOptions, Progress};
use crate::source::Source;
use crate::sync::client::{Device, DeviceConfig, Event, ReflectAck};
use crate::sync::envelope::ReplayGuard;
use crate::sync::error::{SyncError, SyncResult};
use crate::sync::keys::GroupKeys;
use crate::write::State;

use snapshot::{Adopted, BootState, IndexReader, Reader, index_err};
use wire::{
    Batch, BodiesChunk, IndexChunk, Msg, Reassembly, Received, Resume, ShippedBody, SnapshotChunk,
    SnapshotRequest, TokenEntry,
};

/// How a device takes part in sharing its index.
pub struct ShareConfig {
    /// The relay, `ws://HOST:PORT`.
    pub url: String,
    /// The group's keys.
    pub keys: Arc<GroupKeys>,
    /// This device's random id (keep it across restarts).
    pub device_id: u64,
    /// A label for the other devices (sealed under the device-info key).
    pub info: Vec<u8>,
    /// Nonces accepted so far; use a file-backed one
    /// ([`ReplayGuard::open`]) so replays are refused across restarts.
    pub guard: ReplayGuard,
    /// The sources this device crawls while it leads.
    pub sources: Vec<Box<dyn Source>>,
    /// Turns fetched messages into records (pass-through by default).
    pub decryptor: Arc<dyn Decryptor>,
    /// The pipeline's tuning while leading.
    pub options: IndexOptions,
    /// While leading, look at the sources again this often after a pass;
    /// `None`: one pass per promotion.
    pub rescan: Option<Duration>,
    /// A bootstrap that received nothing for this long asks again (the
    /// server may have gone).
    pub snapshot_patience: Duration,
    /// Records per snapshot chunk this device serves at most (chunks are
    /// also capped at about 1 MiB).
    pub snapshot_chunk_records: usize,
    /// A pause between the transactions of a snapshot this device serves,
    /// to bound the load a joining device puts on it (none by default).
    pub snapshot_pace: Option<Duration>,
}

impl ShareConfig {
    /// No sources, pass-through decryption, default pipeline options, one
    /// pass per promotion, a 10-second snapshot patience, an in-memory
    /// replay guard.
    pub fn new(url: &str, keys: Arc<GroupKeys>, device_id: u64) -> Self {
        ShareConfig {
            url: url.to_owned(),
            keys,
            device_id,
            info: b"sealdex".to_vec(),
            guard: ReplayGuard::new(),
            sources: Vec::new(),
            decryptor: Arc::new(PassThrough::default()),
            options: IndexOptions::default(),
            rescan: None,
            snapshot_patience: Duration::from_secs(10),
            snapshot_chunk_records: 2000,
            snapshot_pace: None,
        }
    }
}

impl std::fmt::Debug for ShareConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareConfig")
            .field("url", &self.url)
            .field("device_id", &format_args!("{:016x}", self.device_id))
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

/// What this device does in the group now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Not connected to the relay.
    #[default]
    Connecting,
    /// Applies what others reflect.
    Follower,
    /// Joined empty; receiving a snapshot (and the live stream).
    Bootstrapping,
    /// Runs the sources and reflects what they bring.
    Leader,
}

/// An op named without its content, for status displays.
#[derive(Clone, PartialEq, Eq)]
pub struct OpRef {
    /// The record's source.
    pub source: String,
    /// The record's id.
    pub id: String,
    /// The op's version.
    pub version: u64,
}

impl std::fmt::Debug for OpRef {
    // The id may name a message (a Message-ID, a file name): not in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpRef({}, <id>, v{})", self.source, self.version)
    }
}

impl OpRef {
    fn of(op: &Op) -> OpRef {
        OpRef {
            source: op.source().to_owned(),
            id: op.id().to_owned(),
            version: op.version(),
        }
    }
}

/// Where a bootstrap from a peer's snapshot stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bootstrap {
    /// This device did not join empty (or leads).
    #[default]
    NotNeeded,
    /// Receiving: records so far.
    Running {
        /// Records applied from the snapshot.
        records: u64,
    },
    /// Finished.
    Done {
        /// Records the snapshot brought.
        records: u64,
    },
}

/// A snapshot of what the sharing is doing, from [`SyncHandle::status`].
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// This device's role.
    pub role: Role,
    /// Connected and authenticated now.
    pub connected: bool,
    /// Envelopes the relay still has for this device (as it said at
    /// connect, minus those received since; 0 once it said the queue is dry).
    pub queue: u64,
    /// The relay said, on this connection, that the backlog was delivered.
    pub dry: bool,
    /// Envelopes this device reflected that the relay has not acknowledged.
    pub outbox: u64,
    /// The last op this device reflected.
    pub last_reflected: Option<OpRef>,
    /// The last op from another device that changed this index.
    pub last_applied: Option<OpRef>,
    /// Other devices registered in the group, and how many are connected.
    pub peers: (usize, usize),
    /// The leader's crawl: the last progress event.
    pub progress: Option<Progress>,
    /// Whether the crawl finished a pass of every source since promotion.
    pub ingested: bool,
    /// Envelopes reflected and acknowledged by the relay.
    pub reflected: u64,
    /// Bytes of the sealed envelopes this device handed to the relay
    /// (padded and sealed, without the few bytes of framing): what the
    /// relay stores once per other device.
    pub reflected_bytes: u64,
    /// Bytes of the sealed envelopes the relay delivered to this device.
    pub received_bytes: u64,
    /// Ops from other devices that changed this index.
    pub applied_ops: u64,
    /// Envelopes refused: tampered, replayed, or not a message this build
    /// understands (logged without content).
    pub refused: u64,
    /// Snapshot chunks this device served to devices that joined.
    pub served_chunks: u64,
    /// The bootstrap, if this device joined empty.
    pub bootstrap: Bootstrap,
    /// Records the bootstrap stored under the serving device's document
    /// numbers (a snapshot of the index, not of records: see
    /// `snapshot`), since sharing started.
    pub adopted: u64,
    /// The bootstrap put the serving device's inverted index in place of
    /// this one's (rather than indexing the records itself).
    pub index_installed: bool,
    /// Queue drained, bootstrap finished, nothing left to reflect, and, if
    /// leading, the sources ingested: what `sealdex sync --until-idle`
    /// waits for.
    pub idle: bool,
    /// Why the sharing stopped, if it failed.
    pub error: Option<String>,
}

impl Status {
    fn update_idle(&mut self, held: usize) {
        self.idle = self.connected
            && self.dry
            && self.queue == 0
            && held == 0
            && self.outbox == 0
            && !matches!(self.bootstrap, Bootstrap::Running { .. })
            && (self.role != Role::Leader || self.ingested)
            && self.role != Role::Connecting;
    }
}

/// The running sharing of one index; [`SyncHandle::stop`] ends it.
pub struct SyncHandle {
    status: watch::Receiver<Status>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<SyncResult<()>>,
    /// What a bulk operation needs, owned by the main loop (which must
    /// hold the last reference to the device to close it).
    txn: std::sync::Weak<Txn>,
}

/// The group transaction lock, as this device uses it: for serving
/// snapshots and for bulk operations.
struct Txn {
    index: Arc<Index>,
    device: Arc<Device>,
    shared: Arc<Shared>,
    /// Told when the relay says a transaction ended (ours or another's).
    ended: Arc<Notify>,
    /// The reflector, for what a failed transaction must send again.
    out: mpsc::UnboundedSender<Outgoing>,
    /// This device's own use of the lock: one transaction at a time (a
    /// second BeginTransaction inside one is a protocol error), so
    /// snapshots served to two devices and bulk operations take turns.
    mine: Arc<tokio::sync::Mutex<()>>,
}

impl Txn {
    /// Takes the group's transaction lock for `scope`, waiting while
    /// another device holds it.
    async fn begin(&self, scope: &[u8]) -> SyncResult<()> {
        loop {
            let ended = self.ended.notified();
            match self.device.begin_transaction(scope, TRANSACTION_TTL).await {
                Ok(()) => return Ok(()),
                Err(SyncError::TransactionRejected { holder, .. }) => {
                    debug!(
                        holder = format_args!("{holder:016x}"),
                        "waiting for the transaction lock"
                    );
                    let _ = tokio::time::timeout(Duration::from_secs(2), ended).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// What [`SyncHandle::bulk`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkReport {
    /// Ops that changed this index (and were reflected).
    pub applied: u64,
    /// Ops that changed nothing (already at that version, or absent).
    pub unchanged: u64,
    /// Group transactions the operation took.
    pub transactions: u64,
    /// Envelopes reflected.
    pub envelopes: u64,
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle")
            .field("status", &*self.status.borrow())
            .finish()
    }
}

impl SyncHandle {
    /// What it is doing now.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Waits until `f` holds for the status (checked at every change);
    /// fails if the sharing stopped first.
    pub async fn wait_for(&mut self, f: impl Fn(&Status) -> bool) -> SyncResult<Status> {
        loop {
            {
                let s = self.status.borrow_and_update();
                if f(&s) {
                    return Ok(s.clone());
                }
                if let Some(e) = &s.error {
                    return Err(SyncError::Protocol(e.clone()));
                }
            }
            if self.status.changed().await.is_err() {
                return Err(SyncError::Disconnected);
            }
        }
    }

    /// Waits until this device is idle (see [`Status::idle`]).
    pub async fn until_idle(&mut self) -> SyncResult<Status> {
        self.wait_for(|s| s.idle).await
    }

    /// Runs a bulk change (a rebuild after a format upgrade, a mass
    /// relabel) inside the group's transaction: `ops` are applied to this
    /// index in batches of `batch` and reflected, and no other device
    /// serves a snapshot or runs a bulk change while a transaction of it
    /// is open.
    ///
    /// # Why in transactions, and why several
    ///
    /// The relay holds a transaction's reflections and queues them for
    /// the other devices only at its commit, in order: the others receive
    /// a transaction's batches together, never half of it interleaved
    /// with another device's bulk change or a snapshot being copied. The
    /// relay keeps what it holds in memory, so a large change is cut into
    /// transactions of about [`BULK_TRANSACTION_BYTES`] each (the lock is
    /// taken again for each). Ops are idempotent by version, so if this
    /// device disconnects halfway, running the same change again (or its
    /// remainder) is safe: what was applied and reflected changes nothing
    /// the second time.
    ///
    /// `ops` is pulled lazily on a blocking thread, so it may read this
    /// index as it goes (a rebuild reading each record, say) or wait.
    /// Batches committed meanwhile by the crawl or the app interleave
    /// between this change's batches on this device, as with any
    /// [`Index::apply`], and are reflected in the same transactions.
    ///
    /// ```no_run
    /// # async fn run(sync: &sealdex::sync::share::SyncHandle, index: std::sync::Arc<sealdex::Index>)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// use sealdex::ops::Op;
    /// use sealdex::Metadata;
    /// // Every record of the source "mail" gets the label "archive-2024".
    /// let relabel = Metadata { labels: Some(vec!["archive-2024".into()]), ..Metadata::default() };
    /// let ops: Vec<Op> = index.store().records()
    ///     .filter_map(Result::ok)
    ///     .filter(|r| r.source == "mail")
    ///     .map(|r| Op::patch(&r.source, &r.id, relabel.clone()))
    ///     .collect();
    /// let report = sync.bulk(ops, 1000).await?;
    /// println!("{} records relabelled in {} transactions", report.applied, report.transactions);
    /// # Ok(()) }
    /// ```
    pub async fn bulk<I>(&self, ops: I, batch: usize) -> SyncResult<BulkReport>
    where
        I: IntoIterator<Item = Op>,
        I::IntoIter: Send + 'static,
    {
        let txn = self.txn.upgrade().ok_or(SyncError::Disconnected)?;
        bulk(txn, ops.into_iter(), batch.max(1), BULK_TRANSACTION_BYTES).await
    }

    /// [`SyncHandle::bulk`] with transactions of about `transaction_bytes`
    /// of envelopes (tests use small ones to see several).
    #[doc(hidden)]
    pub async fn bulk_with<I>(
        &self,
        ops: I,
        batch: usize,
        transaction_bytes: usize,
    ) -> SyncResult<BulkReport>
    where
        I: IntoIterator<Item = Op>,
        I::IntoIter: Send + 'static,
    {
        let txn = self.txn.upgrade().ok_or(SyncError::Disconnected)?;
        bulk(txn, ops.into_iter(), batch.max(1), transaction_bytes.max(1)).await
    }

    /// Stops: the crawl (if leading) ends after the batch being written,
    /// what was committed is reflected (waiting up to 10 s for the relay),
    /// the hook is removed from the index, and the connection is closed.
    pub async fn stop(mut self) -> SyncResult<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(r) => r,
            Err(_) => Err(SyncError::Protocol("the sharing task panicked".to_owned())),
        }
    }
}

/// Starts sharing `index` with the group: see the module docs. Returns once
/// connected to the relay.
pub async fn start(index: Arc<Index>, mut config: ShareConfig) -> SyncResult<SyncHandle> {
    let mut dc = DeviceConfig::new(&config.url, Arc::clone(&config.keys), config.device_id);
    dc.info = std::mem::take(&mut config.info);
    dc.guard = std::mem::take(&mut config.guard);
    let mut device = Device::connect(dc).await?;
    let events = device.take_events();
    let device = Arc::new(device);
    let boot = {
        let index = Arc::clone(&index);
        tokio::task::spawn_blocking(move || BootState::load_or_mark(&index))
            .await
            .map_err(|_| SyncError::Protocol("loading the bootstrap state panicked".into()))??
    };
    let (status_tx, status_rx) = watch::channel(Status::default());
    let shared = Arc::new(Shared {
        status: status_tx,
        outbox: Mutex::new(0),
    });
    // Every batch committed here (not applied from another device) goes to
    // the reflector. Unbounded: the hook runs under the index's writer lock
    // and must not block; the device client queues unboundedly too while
    // disconnected.
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Outgoing>();
    {
        let out = out_tx.clone();
        let shared = Arc::clone(&shared);
        index.set_on_commit(Some(Arc::new(move |applied: &Applied, state: State| {
            let batch = Batch {
                ops: applied.ops.clone(),
                checkpoint: state.checkpoint,
                tokens: state
                    .tokens
                    .into_iter()
                    .map(|(source, slot, token)| TokenEntry {
                        source,
                        listing_start: slot == crate::store::TokenSlot::ListingStart,
                        token,
                    })
                    .collect(),
                failures: state.failures.into_iter().map(|(_, f)| f).collect(),
            };
            shared.add_outbox(1);
            let _ = out.send(Outgoing::Batch(batch));
        })));
    }
    let reflector = tokio::spawn(reflect_loop(
        Arc::clone(&device),
        out_rx,
        Arc::clone(&shared),
    ));
    let (stop_tx, stop_rx) = oneshot::channel();
    let names: Vec<String> = config.sources.iter().map(|s| s.name().to_owned()).collect();
    let txn = Arc::new(Txn {
        index: Arc::clone(&index),
        device: Arc::clone(&device),
        shared: Arc::clone(&shared),
        ended: Arc::new(Notify::new()),
        out: out_tx.clone(),
        mine: Arc::new(tokio::sync::Mutex::new(())),
    });
    let weak = Arc::downgrade(&txn);
    let node = Node {
        index,
        device,
        me: config.device_id,
        shared,
        out: out_tx,
        sources: Arc::new(Mutex::new(std::mem::take(&mut config.sources))),
        source_names: names,
        decryptor: Arc::clone(&config.decryptor),
        options: config.options.clone(),
        rescan: config.rescan,
        patience: config.snapshot_patience,
        chunk_records: config.snapshot_chunk_records.max(1),
        pace: config.snapshot_pace,
        reassembly: Reassembly::default(),
        boot,
        request: None,
        deferred: Vec::new(),
        staged: Staged::default(),
        answered: VecDeque::new(),
        bodies_refused: false,
        crawl: None,
        serving: HashMap::new(),
        txn,
    };
    let task = tokio::spawn(node.run(events, stop_rx, reflector));
    Ok(SyncHandle {
        status: status_rx,
        stop: Some(stop_tx),
        task,
        txn: weak,
    })
}

/// State the hook, the reflector, the crawl and the main loop share.
struct Shared {
    status: watch::Sender<Status>,
    /// Envelopes (or batches) handed to the reflector and not yet
    /// acknowledged by the relay.
    outbox: Mutex<u64>,
}

impl Shared {
    fn add_outbox(&self, n: i64) {
        let mut o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        *o = o.saturating_add_signed(n);
        let v = *o;
        self.status.send_modify(|s| s.outbox = v);
    }

    fn modify(&self, f: impl FnOnce(&mut Status)) {
        self.status.send_modify(f);
    }
}

/// What the reflector sends.
enum Outgoing {
    /// A batch committed here (counted in the outbox once).
    Batch(Batch),
    /// Any other message (counted in the outbox once).
    Msg(Msg),
}

/// Reflections awaiting the relay's ack at most.
const WINDOW: usize = 64;

/// Seals and reflects what this device committed, in commit order, keeping
/// up to [`WINDOW`] envelopes in flight. An envelope whose ack fails (its
/// transaction was lost with the connection) is reflected again: the ops
/// are idempotent, and a checkpoint reflected again late makes a device
/// promoted later fetch a little again, never skip.
async fn reflect_loop(
    device: Arc<Device>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    // Each in-flight envelope: its plaintext, its ack, and whether it is
    // the last envelope of its batch (the outbox counts batches).
    let mut inflight: VecDeque<(Vec<u8>, ReflectAck, bool)> = VecDeque::new();
    let mut open = true;
    loop {
        if !open && inflight.is_empty() {
            return;
        }
        tokio::select! {
            m = rx.recv(), if open && inflight.len() < WINDOW => {
                let Some(m) = m else { open = false; continue };
                let (msgs, last_op) = match m {
                    Outgoing::Batch(b) => {
                        let last = b.ops.last().map(OpRef::of);
                        (wire::split_batch(b).into_iter().map(Msg::Batch).collect::<Vec<_>>(), last)
                    }
                    Outgoing::Msg(m) => (vec![m], None),
                };
                let mut packets = Vec::new();
                for m in &msgs {
                    match wire::encode(m) {
                        Ok(p) => packets.extend(p),
                        Err(e) => warn!(error = %e, "a message could not be encoded; not reflected"),
                    }
                }
                if packets.is_empty() {
                    shared.add_outbox(-1);
                    continue;
                }
                let n = packets.len();
                let bytes: u64 = packets.iter().map(|p| sealed_len(p.len())).sum();
                for (i, p) in packets.into_iter().enumerate() {
                    match device.reflect(&p) {
                        Ok(ack) => inflight.push_back((p, ack, i + 1 == n)),
                        Err(_) => return,
                    }
                }
                shared.modify(|s| s.reflected_bytes += bytes);
                if last_op.is_some() {
                    shared.modify(|s| s.last_reflected = last_op);
                }
            }
            r = async { (&mut inflight.front_mut().expect("checked non-empty").1).await }, if !inflight.is_empty() => {
                let Some((p, _, last)) = inflight.pop_front() else { continue };
                match r {
                    Ok(_) => {
                        shared.modify(|s| s.reflected += 1);
                        if last {
                            shared.add_outbox(-1);
                        }
                    }
                    Err(_) => match device.reflect(&p) {
                        Ok(ack) => inflight.push_back((p, ack, last)),
                        Err(_) => return,
                    },
                }
            }
        }
    }
}

/// The inverted index files of a snapshot being received, kept until its
/// last chunk (they are installed whole, or not at all).
#[derive(Default)]
struct Staged {
    request: u64,
    server: u64,
    /// Each file's name, announced length and bytes so far, in the order
    /// they came.
    files: Vec<(String, u64, Vec<u8>)>,
    /// A piece came out of order.
    spoiled: bool,
    /// The server's compression dictionary, for its block bodies.
    dictionary: Option<Arc<crate::record::Dictionary>>,
}

impl Staged {
    fn add(&mut self, p: wire::FilePiece) {
        match self.files.last_mut() {
            Some((name, len, bytes))
                if *name == p.name && *len == p.len && bytes.len() as u64 == p.offset =>
            {
                bytes.extend_from_slice(&p.bytes);
            }
            _ if p.offset == 0 => self.files.push((p.name, p.len, p.bytes)),
            _ => self.spoiled = true,
        }
    }

    /// The files, if every one came whole.
    fn complete(self) -> Option<Vec<(String, Vec<u8>)>> {
        if self.spoiled
            || self
                .files
                .iter()
                .any(|(_, len, bytes)| bytes.len() as u64 != *len)
        {
            return None;
        }
        Some(self.files.into_iter().map(|(n, _, b)| (n, b)).collect())
    }
}

/// A crawl running on its own thread while this device leads.
struct Crawl {
    control: Control,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// The main loop's state.
struct Node {
    index: Arc<Index>,
    device: Arc<Device>,
    me: u64,
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Outgoing>,
    sources: Arc<Mutex<Vec<Box<dyn Source>>>>,
    source_names: Vec<String>,
    decryptor: Arc<dyn Decryptor>,
    options: IndexOptions,
    rescan: Option<Duration>,
    patience: Duration,
    chunk_records: usize,
    pace: Option<Duration>,
    reassembly: Reassembly,
    boot: BootState,
    /// The request id of the bootstrap in progress, and when a chunk (or
    /// the request) last moved it.
    request: Option<(u64, tokio::time::Instant)>,
    /// Patches received during the bootstrap for records not there yet.
    deferred: Vec<Op>,
    /// The inverted index files of the snapshot being received.
    staged: Staged,
    /// Requests answered in the index's form (device, request): their
    /// twins in the records' form are not answered again.
    answered: VecDeque<(u64, u64)>,
    /// A server's block bodies did not check out here: snapshots are asked
    /// for without them from then on.
    bodies_refused: bool,
    crawl: Option<Crawl>,
    /// Snapshots being served, per device: the task, and its stop flag.
    serving: HashMap<u64, (JoinHandle<()>, Arc<AtomicBool>)>,
    txn: Arc<Txn>,
}

/// Whether an error applying a snapshot chunk came from what the peer
/// sent (malformed, or refused by the store as corrupt), rather than from
/// this device (its disk, its connection).
fn is_peer_data(e: &SyncError) -> bool {
    match e {
        SyncError::Malformed { .. } => true,
        SyncError::Index(e) => matches!(**e, crate::Error::Corrupt(_)),
        _ => false,
    }
}

/// The size of the envelope that carries a plaintext of `len` bytes.
/// Writes a server's source checkpoints (a snapshot's last chunk), each
/// in its own batch as [`Index::apply_reflected`] takes one per state.
fn apply_checkpoints(
    index: &Index,
    checkpoints: Vec<(String, crate::store::Checkpoint)>,
) -> crate::Result<()> {
    for (source, checkpoint) in checkpoints {
        index.apply_reflected(
            Vec::new(),
            State {
                checkpoint: Some((source, checkpoint)),
                ..State::default()
            },
        )?;
    }
    Ok(())
}

/// A reflected batch's or a snapshot's sync tokens as the write path takes
/// them.
fn token_slots(
    tokens: Vec<wire::TokenEntry>,
) -> Vec<(
    String,
    crate::store::TokenSlot,
    Option<crate::source::SyncToken>,
)> {
    tokens
        .into_iter()
        .map(|t| (t.source.clone(), t.slot(), t.token))
        .collect()
}

/// The state a snapshot chunk lands with: the bootstrap's resume position,
/// and on the last chunk the server's sync tokens.
fn chunk_state(
    checkpoint: (String, crate::store::Checkpoint),
    last: bool,
    tokens: Vec<wire::TokenEntry>,
) -> State {
    State {
        checkpoint: Some(checkpoint),
        tokens: if last {
            token_slots(tokens)
        } else {
            Vec::new()
        },
        ..State::default()
    }
}

fn sealed_len(len: usize) -> u64 {
    (crate::sync::envelope::bucket_for(len) + crate::sync::envelope::ENVELOPE_OVERHEAD) as u64
}

fn random_u64() -> SyncResult<u64> {
    let mut b = [0u8; 8];
    crate::sync::keys::fill_random(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Runs a blocking index call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> SyncResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| SyncError::Protocol("an index task panicked".into()))?
        .map_err(index_err)
}

impl Node {
    async fn run(
        mut self,
        mut events: crate::sync::client::Events,
        mut stop: oneshot::Receiver<()>,
        reflector: JoinHandle<()>,
    ) -> SyncResult<()> {
        self.shared.modify(|s| {
            s.connected = true;
            s.role = Role::Follower;
            if self.boot.done {
                s.bootstrap = Bootstrap::Done {
                    records: self.boot.records,
                };
            }
        });
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut peers_at = tokio::time::Instant::now();
        let result = loop {
            tokio::select! {
                _ = &mut stop => break Ok(()),
                ev = events.next() => {
                    let Some(ev) = ev else { break Err(SyncError::Disconnected) };
                    if let Err(e) = self.on_event(ev).await {
                        break Err(e);
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.on_tick(&mut peers_at).await {
                        break Err(e);
                    }
                }
            }
            let held = self.reassembly.held();
            self.shared.modify(|s| s.update_idle(held));
        };
        if let Err(e) = &result {
            warn!(error = %e, "sharing the index stopped");
            let msg = e.to_string();
            self.shared.modify(|s| s.error = Some(msg));
        }
        self.shutdown(reflector).await;
        result
    }

    async fn shutdown(mut self, reflector: JoinHandle<()>) {
        self.index.set_on_commit(None);
        self.stop_crawl(true).await;
        for (_, (t, _)) in self.serving.drain() {
            t.abort();
            let _ = t.await;
        }
        // The reflector ends once every sender is gone.
        drop(self.txn);
        drop(self.out);
        if tokio::time::timeout(Duration::from_secs(10), reflector)
            .await
            .is_err()
        {
            warn!("the relay did not acknowledge everything reflected before stopping");
        }
        match Arc::try_unwrap(self.device) {
            Ok(d) => {
                let _ = d.close().await;
            }
            Err(d) => drop(d),
        }
        self.shared.modify(|s| {
            s.connected = false;
            s.role = Role::Connecting;
            s.idle = false;
        });
    }

    async fn on_tick(&mut self, peers_at: &mut tokio::time::Instant) -> SyncResult<()> {
        if let Some(c) = &self.crawl
            && c.done.load(Ordering::Acquire)
        {
            self.shared.modify(|s| s.ingested = true);
        }
        if let Some((_, at)) = self.request
            && at.elapsed() > self.patience
        {
            info!("no snapshot chunk for a while; asking again");
            self.request_snapshot()?;
        }
        self.serving.retain(|_, (t, _)| !t.is_finished());
        if peers_at.elapsed() > Duration::from_secs(2) && self.status().connected {
            *peers_at = tokio::time::Instant::now();
            let device = Arc::clone(&self.device);
            let shared = Arc::clone(&self.shared);
            let me = self.me;
            tokio::spawn(async move {
                if let Ok(Ok(list)) =
                    tokio::time::timeout(Duration::from_secs(5), device.devices()).await
                {
                    let others = list.iter().filter(|d| d.device_id != me);
                    let (n, c) =
                        others.fold((0, 0), |(n, c), d| (n + 1, c + usize::from(d.connected)));
                    shared.modify(|s| s.peers = (n, c));
                }
            });
        }
        Ok(())
    }

    fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    async fn on_event(&mut self, ev: Event) -> SyncResult<()> {
        match ev {
            Event::Connected(info) => {
                let bootstrapping = self.request.is_some();
                self.shared.modify(|s| {
                    s.connected = true;
                    s.dry = false;
                    s.queue = u64::from(info.reflection_queue_length);
                    s.role = if bootstrapping {
                        Role::Bootstrapping
                    } else {
                        Role::Follower
                    };
                });
            }
            Event::Disconnected { code } => {
                debug!(?code, "disconnected from the relay");
                // The relay may promote another device meanwhile: stop
                // crawling now, so that two never crawl at once for long.
                self.stop_crawl(false).await;
                self.shared.modify(|s| {
                    s.connected = false;
                    s.dry = false;
                    s.role = Role::Connecting;
                });
            }
            Event::Closed { code } => {
                return Err(SyncError::Closed {
                    code,
                    reason: crate::sync::protocol::CloseCode::from_u16(code)
                        .map_or("closed", |c| c.reason())
                        .to_owned(),
                });
            }
            Event::Refused { reason, .. } => {
                debug!(?reason, "an envelope was refused");
                self.shared.modify(|s| s.refused += 1);
            }
            Event::QueueDry => {
                self.shared.modify(|s| {
                    s.dry = true;
                    s.queue = 0;
                });
                let leading = self.status().role == Role::Leader;
                if !leading && !self.boot.done && self.boot.needed && self.request.is_none() {
                    self.request_snapshot()?;
                }
            }
            Event::PromotedToLeader => {
                info!("promoted to leader");
                if self.request.take().is_some() || !self.boot.done {
                    // Nobody else is there to copy from, or the server
                    // left: this device crawls, and needs no snapshot.
                    self.boot.done = true;
                    let (index, cp) = (Arc::clone(&self.index), self.boot.checkpoint());
                    let reconcile = self.boot.adopted != Adopted::Nothing;
                    blocking(move || {
                        index.apply_reflected(
                            Vec::new(),
                            State {
                                checkpoint: Some(cp),
                                ..State::default()
                            },
                        )?;
                        if reconcile {
                            // Records adopted from a server that went away
                            // are not in this device's inverted index yet.
                            index.reconcile_inverted()?;
                        }
                        Ok(())
                    })
                    .await?;
                    let records = self.boot.records;
                    self.shared.modify(|s| {
                        if records > 0 {
                            s.bootstrap = Bootstrap::Done { records };
                        } else {
                            s.bootstrap = Bootstrap::NotNeeded;
                        }
                    });
                }
                self.shared.modify(|s| {
                    s.role = Role::Leader;
                    s.ingested = false;
                });
                self.start_crawl();
            }
            Event::TransactionEnded { .. } => self.txn.ended.notify_waiters(),
            Event::Reflected {
                reflected_id,
                sender,
                ephemeral,
                plaintext,
                ..
            } => {
                if ephemeral {
                    return Ok(());
                }
                let bytes = sealed_len(plaintext.len());
                self.shared.modify(|s| {
                    s.queue = s.queue.saturating_sub(1);
                    s.received_bytes += bytes;
                });
                match self.reassembly.receive(reflected_id, &plaintext) {
                    Err(e) => {
                        warn!(error = %e, "refused a reflected message");
                        self.shared.modify(|s| s.refused += 1);
                        self.device.ack(reflected_id).await?;
                    }
                    Ok(Received::Pending) => {}
                    Ok(Received::Msg(msg, positions)) => {
                        self.on_msg(*msg, sender).await?;
                        for p in positions {
                            self.device.ack(p).await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn on_msg(&mut self, msg: Msg, sender: u64) -> SyncResult<()> {
        match msg {
            Msg::Batch(b) => self.apply_batch(b).await,
            Msg::SnapshotRequest(r) => {
                let twin = self.answered.contains(&(r.device, r.request));
                if self.status().role == Role::Leader && r.device != self.me && !twin {
                    self.serve(r, Form::Records);
                }
                Ok(())
            }
            Msg::IndexRequest(r) => {
                self.serve_newest(r, Form::Index);
                Ok(())
            }
            Msg::BodiesRequest(r) => {
                self.serve_newest(r, Form::Bodies);
                Ok(())
            }
            Msg::SnapshotChunk(c) => {
                if c.to == self.me && self.request.map(|(r, _)| r) == Some(c.request) {
                    self.apply_chunk(c, sender).await?;
                }
                Ok(())
            }
            Msg::IndexChunk(c) => {
                if c.to == self.me && self.request.map(|(r, _)| r) == Some(c.request) {
                    self.apply_index_chunk(c, Vec::new(), None, sender).await?;
                }
                Ok(())
            }
            Msg::BodiesChunk(c) => {
                let BodiesChunk {
                    index,
                    bodies,
                    dictionary,
                } = c;
                if index.to != self.me || self.request.map(|(r, _)| r) != Some(index.request) {
                    return Ok(());
                }
                match self
                    .apply_index_chunk(index, bodies, dictionary, sender)
                    .await
                {
                    Err(e) if is_peer_data(&e) => {
                        // Nothing of the chunk was written (its batch is
                        // atomic): ask again from the stored position, in
                        // the forms before bodies.
                        warn!(error = %e, "a snapshot chunk's block bodies did not check out; asking again without them");
                        self.shared.modify(|s| s.refused += 1);
                        self.bodies_refused = true;
                        self.request_snapshot()
                    }
                    r => r,
                }
            }
        }
    }

    /// Applies another device's batch, without reflecting it back.
    async fn apply_batch(&mut self, b: Batch) -> SyncResult<()> {
        let leading = self.crawl.is_some();
        let index = Arc::clone(&self.index);
        let patches: Vec<Op> = if self.request.is_some() {
            b.ops
                .iter()
                .filter(|o| matches!(o, Op::Patch(_)))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let applied = blocking(move || {
            let store = index.store();
            let state = if leading {
                // This device's own crawl writes its checkpoints: a late
                // one from an earlier leader must not move them back.
                State::default()
            } else {
                State {
                    failures: b
                        .failures
                        .into_iter()
                        .map(|f| (store.doc_key(&f.source, &f.message.id), f))
                        .collect(),
                    checkpoint: b.checkpoint,
                    tokens: token_slots(b.tokens),
                    ..State::default()
                }
            };
            let applied = index.apply_reflected(b.ops, state)?;
            // During a bootstrap: patches of records not here yet wait
            // for the chunk that brings them.
            let mut absent = Vec::new();
            for p in patches {
                if index.get_by_id(p.source(), p.id())?.is_none() {
                    absent.push(p);
                }
            }
            Ok((applied, absent))
        })
        .await?;
        let (applied, absent) = applied;
        self.deferred.extend(absent);
        if let Some(last) = applied.ops.last() {
            let (n, last) = (applied.ops.len() as u64, OpRef::of(last));
            self.shared.modify(|s| {
                s.applied_ops += n;
                s.last_applied = Some(last);
            });
        }
        Ok(())
    }

    fn request_snapshot(&mut self) -> SyncResult<()> {
        let request = random_u64()?;
        self.request = Some((request, tokio::time::Instant::now()));
        let resume = self.boot.resume.clone();
        info!(resume = resume.is_some(), "asking a peer for a snapshot");
        self.staged = Staged::default();
        let r = SnapshotRequest {
            device: self.me,
            request,
            resume,
        };
        // The newest form first; a build that does not know it answers a
        // twin in an older form that follows, which a build that does
        // ignores. Bodies are not asked for again once a server's did not
        // check out here (see `apply_index_chunk`).
        if self.bodies_refused {
            self.shared.add_outbox(2);
        } else {
            self.shared.add_outbox(3);
            let _ = self.out.send(Outgoing::Msg(Msg::BodiesRequest(r.clone())));
        }
        let _ = self.out.send(Outgoing::Msg(Msg::IndexRequest(r.clone())));
        let _ = self.out.send(Outgoing::Msg(Msg::SnapshotRequest(r)));
        let records = self.boot.records;
        self.shared.modify(|s| {
            s.role = Role::Bootstrapping;
            s.bootstrap = Bootstrap::Running { records };
        });
        Ok(())
    }

    /// Applies a chunk, the patches kept for it, and the new position, in
    /// one atomic batch.
    async fn apply_chunk(&mut self, c: SnapshotChunk, sender: u64) -> SyncResult<()> {
        // The sender is authenticated by the envelope; a position is
        // valid only with the server that made it.
        let next = BootState {
            resume: Some(Resume {
                server: sender,
                after: c.after.clone(),
            }),
            records: self.boot.records + c.ops.len() as u64,
            done: c.last,
            needed: true,
            adopted: self.adoption_with(sender),
            end: self.boot.end,
        };
        let reconcile = c.last && next.adopted != Adopted::Nothing;
        let mut ops = c.ops;
        ops.extend(self.deferred.iter().cloned());
        let index = Arc::clone(&self.index);
        let (cp, last) = (next.checkpoint(), c.last);
        let checkpoints = c.checkpoints;
        let tokens = c.tokens;
        let deferred = std::mem::take(&mut self.deferred);
        let still_absent = blocking(move || {
            let state = chunk_state(cp.clone(), last, tokens);
            index.apply_reflected(ops, state)?;
            apply_checkpoints(&index, checkpoints)?;
            let mut absent = Vec::new();
            if !last {
                for p in deferred {
                    if index.get_by_id(p.source(), p.id())?.is_none() {
                        absent.push(p);
                    }
                }
            }
            if reconcile {
                // Records adopted from an earlier server's blocks are not
                // in this device's inverted index yet.
                index.reconcile_inverted()?;
            }
            Ok(absent)
        })
        .await?;
        self.deferred = still_absent;
        self.boot = next;
        self.chunk_applied(last);
        Ok(())
    }

    /// What this device's adoption becomes once a chunk from `sender` is
    /// applied: adopted records stay installable only while every chunk
    /// comes from the server they were adopted from.
    fn adoption_with(&self, sender: u64) -> Adopted {
        match self.boot.adopted {
            Adopted::From if self.boot.resume.as_ref().map(|r| r.server) != Some(sender) => {
                Adopted::Mixed
            }
            a => a,
        }
    }

    /// Applies a chunk of a snapshot of the index: its records stored
    /// under the server's document numbers where they can be (in one
    /// atomic batch with the new position, or, when some must go through
    /// the usual write path, just before it), its file pieces kept for
    /// the end, and at the end the server's inverted index installed and
    /// caught up with the store. See `snapshot` for why nothing is lost
    /// or doubled.
    async fn apply_index_chunk(
        &mut self,
        c: IndexChunk,
        bodies: Vec<ShippedBody>,
        dictionary: Option<Vec<u8>>,
        sender: u64,
    ) -> SyncResult<()> {
        let malformed = |detail: &str| SyncError::Malformed {
            what: "a snapshot chunk",
            detail: detail.into(),
        };
        // Blocks of records and blocks as bodies, in document-number
        // order, each number above the last and below the cut's end.
        let mut blocks: Vec<PeerBlock> = Vec::with_capacity(c.blocks.len() + bodies.len());
        let mut n = 0u64;
        for b in c.blocks {
            if b.docnos.len() != b.records.len() {
                return Err(malformed("a block's numbers and records differ in count"));
            }
            n += b.docnos.len() as u64;
            blocks.push(PeerBlock::Records(
                b.docnos.into_iter().zip(b.records).collect(),
            ));
        }
        for b in bodies {
            n += b.docnos.len() as u64;
            blocks.push(PeerBlock::Body {
                docnos: b.docnos,
                body: b.body,
            });
        }
        let numbers = |b: &PeerBlock| -> Vec<u64> {
            match b {
                PeerBlock::Records(r) => r.iter().map(|(d, _)| *d).collect(),
                PeerBlock::Body { docnos, .. } => docnos.clone(),
            }
        };
        blocks.retain(|b| !numbers(b).is_empty());
        blocks.sort_by_key(|b| numbers(b)[0]);
        let mut previous = 0u64;
        for b in &blocks {
            for d in numbers(b) {
                if d <= previous || d >= c.docno_end {
                    return Err(malformed("document numbers out of order or out of range"));
                }
                previous = d;
            }
        }
        // Adopt from this server if nothing was adopted yet, or only from
        // it; and only into numbers this device has not used itself (its
        // own start at the reserved floor, or at the end of the server's
        // range once adopted from: see `snapshot::OWN_DOCNOS_FROM`).
        let adopted = self.adoption_with(sender);
        let may_adopt = match adopted {
            Adopted::Nothing => true,
            Adopted::From => true,
            Adopted::Mixed => false,
        };
        let end_before = match adopted {
            Adopted::From => self.boot.end.max(1),
            _ => 1,
        };
        let mut next = BootState {
            resume: Some(Resume {
                server: sender,
                after: c.after.clone(),
            }),
            records: self.boot.records + n,
            done: c.last,
            needed: true,
            adopted,
            end: self.boot.end,
        };
        // File pieces: kept in memory until the last chunk; a piece out of
        // order (a lost chunk) spoils them, and the bootstrap ends with a
        // catch-up instead.
        if self.staged.request != c.request || self.staged.server != sender {
            self.staged = Staged {
                request: c.request,
                server: sender,
                ..Staged::default()
            };
        }
        for p in c.files {
            self.staged.add(p);
        }
        if let Some(d) = dictionary {
            let d = crate::record::Dictionary::from_bytes(d)
                .ok_or_else(|| malformed("a malformed dictionary"))?;
            self.staged.dictionary = Some(Arc::new(d));
        }
        let peer_dict = self.staged.dictionary.clone();
        if blocks.is_empty()
            && !c.last
            && c.checkpoints.is_empty()
            && self.deferred.is_empty()
            && next.resume == self.boot.resume
            && next.adopted == self.boot.adopted
        {
            // Only file pieces, and nothing to write: the position stays
            // (an interruption now sends the files again anyway).
            if let Some((_, at)) = self.request.as_mut() {
                *at = tokio::time::Instant::now();
            }
            return Ok(());
        }
        let index = Arc::clone(&self.index);
        let deferred = std::mem::take(&mut self.deferred);
        let (checkpoints, tokens, last, docno_end) = (c.checkpoints, c.tokens, c.last, c.docno_end);
        let install = if last {
            let staged = std::mem::take(&mut self.staged);
            match (c.meta, staged.complete()) {
                (Some(meta), Some(files)) => Some((meta, files)),
                _ => None,
            }
        } else {
            None
        };
        let (still_absent, adopted_now, took, installed) = blocking(move || {
            let store = index.store();
            let own_clear = store.docnos_free(end_before, docno_end.saturating_sub(1));
            let adopt = may_adopt && own_clear && !blocks.is_empty();
            if adopt {
                next.adopted = Adopted::From;
                next.end = next.end.max(docno_end);
                // Before anything is written: what reaches this device
                // live from now on is numbered above the server's range.
                store.reserve_docnos(next.end);
                // The server's bodies are stored as they are only if this
                // store compresses with the server's dictionary: taken if
                // this store has none yet (see `Index::adopt`).
                if let Some(d) = &peer_dict {
                    store.adopt_dictionary(d);
                }
            } else if next.adopted == Adopted::From && !blocks.is_empty() {
                // Records this device cannot adopt: the server's inverted
                // index would name numbers this device gave its own.
                next.adopted = Adopted::Mixed;
            }
            let state = chunk_state(next.checkpoint(), last, tokens);
            let upserts = |rs: Vec<crate::Record>| -> Vec<Op> {
                rs.into_iter()
                    .map(|r| {
                        let version = r.revision.max(1);
                        Op::Upsert(crate::ops::Upsert {
                            version,
                            record: Arc::new(r),
                        })
                    })
                    .collect()
            };
            let given = n as usize;
            let (rest, state) = if adopt {
                index.adopt(blocks, peer_dict.as_deref(), state, !deferred.is_empty())?
            } else {
                let mut records = Vec::with_capacity(given);
                for b in blocks {
                    match b {
                        PeerBlock::Records(r) => records.extend(r.into_iter().map(|(_, r)| r)),
                        PeerBlock::Body { docnos, body } => records.extend(
                            store
                                .open_peer_body(&docnos, &body, peer_dict.as_deref())?
                                .records,
                        ),
                    }
                }
                (records, Some(state))
            };
            let rest_len = rest.len();
            if let Some(state) = state {
                let mut ops = upserts(rest);
                ops.extend(deferred.iter().cloned());
                index.apply_reflected(ops, state)?;
            }
            apply_checkpoints(&index, checkpoints)?;
            let took = if adopt { given - rest_len } else { 0 };
            let mut installed = false;
            if last {
                match install {
                    Some((meta, files)) if next.adopted == Adopted::From => {
                        index.install_inverted(&meta, &files)?;
                        installed = true;
                    }
                    _ if next.adopted != Adopted::Nothing => index.reconcile_inverted()?,
                    _ => {}
                }
            }
            let mut absent = Vec::new();
            if !last {
                for p in deferred {
                    if index.get_by_id(p.source(), p.id())?.is_none() {
                        absent.push(p);
                    }
                }
            }
            Ok((absent, next, took as u64, installed))
        })
        .await?;
        self.deferred = still_absent;
        self.boot = adopted_now;
        self.shared.modify(|s| {
            s.adopted += took;
            s.index_installed |= installed;
        });
        self.chunk_applied(last);
        Ok(())
    }

    /// Where the bootstrap stands after a chunk was applied: done after
    /// the last one, still running otherwise (the request's clock, which
    /// detects a server gone quiet, restarts).
    fn chunk_applied(&mut self, last: bool) {
        let records = self.boot.records;
        if last {
            info!(records, "bootstrap finished");
            self.request = None;
            self.deferred.clear();
            self.shared.modify(|s| {
                s.bootstrap = Bootstrap::Done { records };
                if s.role == Role::Bootstrapping {
                    s.role = Role::Follower;
                }
            });
        } else {
            if let Some((_, at)) = self.request.as_mut() {
                *at = tokio::time::Instant::now();
            }
            self.shared
                .modify(|s| s.bootstrap = Bootstrap::Running { records });
        }
    }

    /// Starts the crawl of every source on its own thread.
    fn start_crawl(&mut self) {
        if self.crawl.is_some() {
            return;
        }
        let control = Control::new();
        let done = Arc::new(AtomicBool::new(false));
        let (index, sources, decryptor) = (
            Arc::clone(&self.index),
            Arc::clone(&self.sources),
            Arc::clone(&self.decryptor),
        );
        let (options, rescan, shared) =
            (self.options.clone(), self.rescan, Arc::clone(&self.shared));
        let (c, d) = (control.clone(), Arc::clone(&done));
        let thread = std::thread::Builder::new()
            .name("sealdex-share-crawl".into())
            .spawn(move || {
                crawl(
                    &index,
                    &sources,
                    decryptor.as_ref(),
                    &options,
                    &c,
                    &d,
                    rescan,
                    &shared,
                )
            });
        match thread {
            Ok(thread) => {
                self.crawl = Some(Crawl {
                    control,
                    done,
                    thread,
                })
            }
            Err(e) => {
                warn!(error = %e, "could not start the crawl");
                self.shared
                    .modify(|s| s.error = Some(format!("could not start the crawl: {e}")));
            }
        }
    }

    /// Cancels the crawl; with `wait`, until its thread has ended (the
    /// batch being written lands first).
    async fn stop_crawl(&mut self, wait: bool) {
        let Some(c) = self.crawl.take() else { return };
        c.control.cancel();
        let join = tokio::task::spawn_blocking(move || {
            let _ = c.thread.join();
        });
        if wait {
            let _ = join.await;
        }
    }

    /// Serves a snapshot to the device that asked: with `index`, in the
    /// index's form when this store can (format 4).
    /// Serves a request in the index's forms, unless this device does not
    /// lead, or answered a twin of it already (the same request in a newer
    /// form: its older twins follow it).
    fn serve_newest(&mut self, r: SnapshotRequest, form: Form) {
        let twin = self.answered.contains(&(r.device, r.request));
        if self.status().role == Role::Leader && r.device != self.me && !twin {
            if self.answered.len() >= 64 {
                self.answered.pop_front();
            }
            self.answered.push_back((r.device, r.request));
            self.serve(r, form);
        }
    }

    fn serve(&mut self, r: SnapshotRequest, form: Form) {
        // The snapshot served to this device before stops after its
        // current transaction (aborted inside one, it would leave the
        // group's lock held until its time to live ran out, and this one
        // would wait for it); this one takes the lock after it.
        if let Some((_, stop)) = self.serving.remove(&r.device) {
            stop.store(true, Ordering::Release);
        }
        let after = match &r.resume {
            Some(res) if res.server == self.me => res.after.clone(),
            _ => Vec::new(),
        };
        info!(
            to = format_args!("{:016x}", r.device),
            resume = !after.is_empty(),
            "serving a snapshot"
        );
        let task = Server {
            txn: Arc::clone(&self.txn),
            sources: self.source_names.clone(),
            chunk_records: self.chunk_records,
            pace: self.pace,
            form,
            stop: Arc::new(AtomicBool::new(false)),
        };
        let to = r.device;
        let stop = Arc::clone(&task.stop);
        self.serving.insert(
            to,
            (
                tokio::spawn(async move {
                    if let Err(e) = task.run(r, after).await {
                        warn!(error = %e, to = format_args!("{to:016x}"), "serving a snapshot failed; the device will ask again");
                    }
                }),
                stop,
            ),
        );
    }
}

/// The leader's crawl: every source, once, then again every `rescan`.
#[allow(clippy::too_many_arguments)]
fn crawl(
    index: &Index,
    sources: &Mutex<Vec<Box<dyn Source>>>,
    decryptor: &dyn Decryptor,
    options: &IndexOptions,
    control: &Control,
    done: &AtomicBool,
    rescan: Option<Duration>,
    shared: &Shared,
) {
    let mut sources = sources.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        for source in sources.iter_mut() {
            let r = index.index_with(source.as_mut(), decryptor, options, control, &mut |p| {
                let p = p.clone();
                shared.modify(|s| s.progress = Some(p));
            });
            match r {
                Ok(report) => info!(
                    stored = report.stored,
                    deleted = report.deleted,
                    failed = report.failed,
                    "crawled a source"
                ),
                Err(crate::Error::Cancelled) => return,
                Err(e) => {
                    // The source's own failure (its server away, say): the
                    // next pass (or the next leader) tries again.
                    warn!(error = %e, source = source.name(), "crawling a source failed");
                }
            }
            if control.is_cancelled() {
                return;
            }
        }
        done.store(true, Ordering::Release);
        let Some(every) = rescan else { return };
        let until = std::time::Instant::now() + every;
        while std::time::Instant::now() < until {
            if control.is_cancelled() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Chunks per transaction: the relay holds a transaction's reflections
/// until it commits, so a few megabytes at a time.
const CHUNKS_PER_TRANSACTION: usize = 4;

/// How long the group's transaction lock is asked for.
const TRANSACTION_TTL: Duration = Duration::from_secs(60);

/// One snapshot being served.
struct Server {
    txn: Arc<Txn>,
    sources: Vec<String>,
    chunk_records: usize,
    pace: Option<Duration>,
    /// The form asked for.
    form: Form,
    /// Set when the device asked again: stop after the current
    /// transaction.
    stop: Arc<AtomicBool>,
}

/// The form a snapshot was asked in (the newest the new device knows,
/// see `wire::Msg`): a server answers in it, or in an older one its store
/// can give (records, for a store of format 1 to 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// [`Msg::SnapshotRequest`]: records.
    Records,
    /// [`Msg::IndexRequest`]: blocks' records and the inverted index.
    Index,
    /// [`Msg::BodiesRequest`]: blocks' bodies where they can go whole,
    /// and the inverted index.
    Bodies,
}

/// What a snapshot is read with: records, or the index (blocks and
/// inverted index files).
enum Serving {
    Records(Reader),
    Index(Box<IndexReader>),
    /// The index, blocks as bodies where they can go whole.
    Bodies(Box<IndexReader>),
}

impl Serving {
    /// The next chunk as a message, and whether it is the last.
    fn next_chunk(&mut self) -> SyncResult<(Msg, bool)> {
        match self {
            Serving::Records(r) => {
                let c = r.next_chunk()?;
                let last = c.last;
                Ok((Msg::SnapshotChunk(c), last))
            }
            Serving::Index(r) => {
                let c = r.next_chunk()?;
                let last = c.last;
                Ok((Msg::IndexChunk(c), last))
            }
            Serving::Bodies(r) => {
                let c = r.next_bodies_chunk()?;
                let last = c.index.last;
                Ok((Msg::BodiesChunk(c), last))
            }
        }
    }
}

impl Server {
    async fn run(self, r: SnapshotRequest, after: Vec<u8>) -> SyncResult<()> {
        let (index, sources) = (Arc::clone(&self.txn.index), self.sources.clone());
        let (to, request, per) = (r.device, r.request, self.chunk_records);
        let form = self.form;
        let reader = tokio::task::spawn_blocking(move || {
            if form != Form::Records
                && let Some(r) = IndexReader::new(
                    Arc::clone(&index),
                    &after,
                    sources.clone(),
                    to,
                    request,
                    per,
                )?
            {
                return Ok(match form {
                    Form::Bodies => Serving::Bodies(Box::new(r.with_bodies())),
                    _ => Serving::Index(Box::new(r)),
                });
            }
            Reader::new(index, &after, sources, to, request, per).map(Serving::Records)
        })
        .await
        .map_err(|_| SyncError::Protocol("reading the snapshot panicked".into()))??;
        let mut reader = Some(reader);
        let mut last = false;
        while !last {
            let mine = self.txn.mine.lock().await;
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            // Sealed by the device client under the transaction-scope key.
            self.txn.begin(b"sealdex/share/snapshot").await?;
            let mut acks = Vec::new();
            for _ in 0..CHUNKS_PER_TRANSACTION {
                let Some(mut rd) = reader.take() else { break };
                let (chunk, rd) = tokio::task::spawn_blocking(move || {
                    let c = rd.next_chunk();
                    (c, rd)
                })
                .await
                .map_err(|_| SyncError::Protocol("reading the snapshot panicked".into()))?;
                reader = Some(rd);
                let (chunk, is_last) = chunk?;
                last = is_last;
                for p in wire::encode(&chunk)? {
                    let bytes = sealed_len(p.len());
                    acks.push(self.txn.device.reflect(&p)?);
                    self.txn.shared.modify(|s| s.reflected_bytes += bytes);
                }
                if last {
                    break;
                }
            }
            self.txn.device.commit_transaction().await?;
            let n = acks.len() as u64;
            for a in acks {
                a.await?;
            }
            self.txn.shared.modify(|s| s.served_chunks += n);
            drop(mine);
            if let (Some(p), false) = (self.pace, last) {
                tokio::time::sleep(p).await;
            }
        }
        Ok(())
    }
}

/// Transactions of a bulk change hold about this many bytes of envelopes
/// (the relay keeps them in memory until the commit).
pub const BULK_TRANSACTION_BYTES: usize = 4 << 20;

/// Runs a bulk change: see [`SyncHandle::bulk`].
async fn bulk(
    txn: Arc<Txn>,
    ops: impl Iterator<Item = Op> + Send + 'static,
    batch: usize,
    transaction_bytes: usize,
) -> SyncResult<BulkReport> {
    let mut report = BulkReport::default();
    let mut ops = Some(ops.peekable());
    let mut exhausted = false;
    while !exhausted {
        let mine = txn.mine.lock().await;
        txn.begin(b"sealdex/share/bulk").await?;
        report.transactions += 1;
        // What this transaction applied here, kept until the relay
        // committed it: if it does not, the reflector sends it again
        // outside a transaction (applying it again here would change
        // nothing, so a re-run could not reflect it).
        let mut sent: Vec<Batch> = Vec::new();
        let mut acks = Vec::new();
        let r: SyncResult<()> = async {
            let mut bytes = 0usize;
            while bytes < transaction_bytes && !exhausted {
                let Some(mut it) = ops.take() else { break };
                let index = Arc::clone(&txn.index);
                let (applied, given, more, it) = tokio::task::spawn_blocking(move || {
                    let chunk: Vec<Op> = it.by_ref().take(batch).collect();
                    let given = chunk.len();
                    let applied = if chunk.is_empty() {
                        Ok(Applied::default())
                    } else {
                        // Not told to the hook: reflected below, inside
                        // this transaction.
                        index.apply_reflected(chunk, State::default())
                    };
                    let more = applied.is_ok() && it.peek().is_some();
                    (applied, given, more, it)
                })
                .await
                .map_err(|_| SyncError::Protocol("a bulk change panicked".into()))?;
                ops = Some(it);
                let applied = applied.map_err(index_err)?;
                exhausted = !more;
                let changed = applied.ops.len();
                report.applied += changed as u64;
                report.unchanged += given.saturating_sub(changed) as u64;
                let Some(last) = applied.ops.last().map(OpRef::of) else {
                    continue;
                };
                let b = Batch {
                    ops: applied.ops,
                    ..Batch::default()
                };
                sent.push(b.clone());
                for m in wire::split_batch(b) {
                    for p in wire::encode(&Msg::Batch(m))? {
                        let n = sealed_len(p.len());
                        bytes = bytes.saturating_add(n as usize);
                        acks.push(txn.device.reflect(&p)?);
                        txn.shared.modify(|s| s.reflected_bytes += n);
                    }
                }
                txn.shared.modify(|s| s.last_reflected = Some(last));
            }
            txn.device.commit_transaction().await
        }
        .await;
        if let Err(e) = r {
            warn!(error = %e, batches = sent.len(), "a bulk transaction failed; what it applied here is reflected again");
            for b in sent {
                txn.shared.add_outbox(1);
                let _ = txn.out.send(Outgoing::Batch(b));
            }
            return Err(e);
        }
        let n = acks.len() as u64;
        report.envelopes += n;
        for a in acks {
            // Committed: stored for every other device.
            let _ = a.await;
        }
        txn.shared.modify(|s| s.reflected += n);
        drop(mine);
    }
    info!(
        applied = report.applied,
        transactions = report.transactions,
        "bulk change reflected"
    );
    Ok(report)
}
