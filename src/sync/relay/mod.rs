//! The relay (the mediator): a tokio shell around
//! [`crate::sync::protocol::relay::RelayConnection`], a WebSocket server that
//! routes each device by the group id in its URL path before the handshake,
//! and a durable queue store ([`store`]): sled in one process, or Redis
//! Streams or NATS JetStream shared by several stateless nodes.
//!
//! ```no_run
//! # async fn run() -> Result<(), sealdex::sync::SyncError> {
//! use sealdex::sync::relay::{Relay, RelayConfig};
//! let config = RelayConfig::embedded("/var/lib/sealdex-relay".into());
//! let relay = Relay::start(config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await
//!     .map_err(|e| sealdex::sync::SyncError::Io { context: "bind".into(), source: e })?;
//! relay.serve(listener).await;
//! # Ok(()) }
//! ```
//!
//! What the relay logs and stores: group ids (public keys), random device
//! ids, sizes, counts and close codes. Never an envelope's bytes, never a
//! device's info in clear (it cannot open either), never an account.

mod conn;
pub mod hub;
pub mod nats_store;
pub mod redis_store;
mod schema;
pub mod sled_store;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpListener;

use crate::sync::error::{SyncError, SyncResult};
use crate::sync::tls::RelayTls;
use hub::Hub;
use store::Store;

/// Where the relay keeps queues, device lists and leases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueBackend {
    /// sled in this directory (one relay process).
    Embedded(PathBuf),
    /// Redis Streams at this URL (`redis://HOST:PORT`), shared by nodes.
    Redis(String),
    /// NATS JetStream at this URL (`nats://HOST:PORT`), shared by nodes.
    Nats(String),
}

impl QueueBackend {
    /// The distributed engine a `--queue` URL names: `redis://…` or
    /// `nats://…`; `None` for any other scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("redis://") {
            Some(QueueBackend::Redis(url.to_owned()))
        } else if url.starts_with("nats://") {
            Some(QueueBackend::Nats(url.to_owned()))
        } else {
            None
        }
    }
}

/// The relay's settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The queue store.
    pub backend: QueueBackend,
    /// Devices per group. When a new device finds them all taken, its
    /// client hello's policy decides: refuse it (close 4012) or drop the
    /// device seen least recently, with its queue.
    pub max_device_slots: usize,
    /// Reflected envelopes a device may have unacknowledged at a time.
    pub window: usize,
    /// Time a device has to answer the server hello (and to complete the
    /// TLS and WebSocket handshakes before it).
    pub handshake_timeout: Duration,
    /// Serve `wss://` with this certificate and key; `None` serves plain
    /// `ws://` (behind a TLS-terminating proxy, or on loopback).
    pub tls: Option<RelayTls>,
}

/// The default slot limit: generous for one person's devices, small enough
/// that a group's fan-out stays cheap (each reflection is stored once per
/// other device).
pub const DEFAULT_MAX_DEVICE_SLOTS: usize = 16;

impl RelayConfig {
    /// Embedded sled store in `data_dir`, default limits.
    pub fn embedded(data_dir: PathBuf) -> Self {
        RelayConfig {
            backend: QueueBackend::Embedded(data_dir),
            max_device_slots: DEFAULT_MAX_DEVICE_SLOTS,
            window: 64,
            handshake_timeout: Duration::from_secs(10),
            tls: None,
        }
    }

    /// Redis Streams at `url`, default limits.
    pub fn redis(url: String) -> Self {
        Self::distributed(QueueBackend::Redis(url))
    }

    /// NATS JetStream at `url`, default limits.
    pub fn nats(url: String) -> Self {
        Self::distributed(QueueBackend::Nats(url))
    }

    /// The given backend with default limits.
    pub fn distributed(backend: QueueBackend) -> Self {
        RelayConfig {
            backend,
            ..Self::embedded(PathBuf::new())
        }
    }
}

/// A running relay node.
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    config: RelayConfig,
    store: Store,
    hub: Hub,
}

impl Relay {
    /// Opens the store and starts the node's background tasks (group
    /// commit, timers, the Redis or NATS event subscription).
    pub async fn start(config: RelayConfig) -> SyncResult<Self> {
        let (store, hub) = match &config.backend {
            QueueBackend::Embedded(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| SyncError::io(format!("creating {}", dir.display()), e))?;
                (
                    Store::Sled(sled_store::SledStore::open(dir)?),
                    Hub::local()?,
                )
            }
            QueueBackend::Redis(url) => {
                let rs = redis_store::RedisStore::connect(url).await?;
                let hub = Hub::redis(rs.conn())?;
                (Store::Redis(rs), hub)
            }
            QueueBackend::Nats(url) => {
                let ns = nats_store::NatsStore::connect(url).await?;
                let hub = Hub::nats(ns.coord())?;
                (Store::Nats(Box::new(ns)), hub)
            }
        };
        let inner = Arc::new(Inner { config, store, hub });
        if let Store::Redis(rs) = &inner.store {
            let mut pubsub = rs
                .client()
                .get_async_pubsub()
                .await
                .map_err(|e| SyncError::Store(format!("redis: {e}")))?;
            pubsub
                .subscribe(schema::EVENT_CHANNEL)
                .await
                .map_err(|e| SyncError::Store(format!("redis: {e}")))?;
            let weak = Arc::downgrade(&inner);
            tokio::spawn(async move {
                let mut stream = pubsub.into_on_message();
                while let Some(msg) = stream.next().await {
                    let Some(inner) = weak.upgrade() else { break };
                    inner.hub.on_event(msg.get_payload_bytes());
                }
                tracing::error!("the relay lost its Redis event subscription");
            });
        }
        if let Store::Nats(ns) = &inner.store {
            let nats_err = |e: &dyn std::fmt::Display| SyncError::Store(format!("nats: {e}"));
            let mut sub = ns
                .client()
                .subscribe(schema::NATS_EVENT_SUBJECT)
                .await
                .map_err(|e| nats_err(&e))?;
            // The subscription is on the server before this node serves.
            ns.client().flush().await.map_err(|e| nats_err(&e))?;
            let weak = Arc::downgrade(&inner);
            tokio::spawn(async move {
                while let Some(msg) = sub.next().await {
                    let Some(inner) = weak.upgrade() else { break };
                    inner.hub.on_event(&msg.payload);
                }
                tracing::error!("the relay lost its NATS event subscription");
            });
        }
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(200));
            loop {
                every.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                inner.hub.tick(conn::now_ms()).await;
            }
        });
        Ok(Relay { inner })
    }

    /// Accepts connections until the listener fails. Each connection runs in
    /// its own task; with [`RelayConfig::tls`] set, it starts with the TLS
    /// handshake.
    pub async fn serve(&self, listener: TcpListener) {
        let acceptor = self.inner.config.tls.as_ref().map(RelayTls::acceptor);
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    let inner = self.inner.clone();
                    let _ = stream.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        match acceptor {
                            None => conn::handle(inner, stream).await,
                            Some(a) => {
                                let limit = inner.config.handshake_timeout;
                                match tokio::time::timeout(limit, a.accept(stream)).await {
                                    Ok(Ok(tls)) => conn::handle(inner, tls).await,
                                    Ok(Err(e)) => {
                                        tracing::debug!(error = %e, "TLS handshake failed")
                                    }
                                    Err(_) => tracing::debug!("TLS handshake timed out"),
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors, most likely: back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}
