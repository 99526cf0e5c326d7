//! `sealdex mediator`: run the multi-device relay (issue 14).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use sealdex::sync::SyncError;
use sealdex::sync::relay::{DEFAULT_MAX_DEVICE_SLOTS, QueueBackend, Relay, RelayConfig};
use sealdex::sync::tls::RelayTls;

/// Run the relay that devices of one account sync through. It stores only
/// group ids, random device ids and sealed envelopes.
#[derive(Args)]
pub struct MediatorArgs {
    /// Address to listen on, e.g. 127.0.0.1:8443.
    #[arg(long)]
    listen: SocketAddr,
    /// Directory for the embedded queue store (sled).
    #[arg(long, required_unless_present = "queue")]
    data: Option<PathBuf>,
    /// A distributed engine holding queues and leases instead
    /// (`redis://HOST:PORT` or `nats://HOST:PORT`, JetStream enabled);
    /// several relay nodes may share it.
    #[arg(long)]
    queue: Option<String>,
    /// Device slots per group.
    #[arg(long, default_value_t = DEFAULT_MAX_DEVICE_SLOTS)]
    max_devices: usize,
    /// Serve wss:// with this certificate chain (PEM, leaf first).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// Runs the relay until the process is stopped.
pub fn run(args: &MediatorArgs) -> Result<(), SyncError> {
    let backend = match (&args.queue, &args.data) {
        (Some(url), _) => QueueBackend::from_url(url).ok_or_else(|| {
            SyncError::Protocol(format!(
                "--queue {url}: use redis://HOST:PORT or nats://HOST:PORT (see docs/protocol.md)"
            ))
        })?,
        (None, Some(dir)) => QueueBackend::Embedded(dir.clone()),
        (None, None) => unreachable!("clap requires --data or --queue"),
    };
    let mut config = match backend {
        QueueBackend::Embedded(dir) => RelayConfig::embedded(dir),
        distributed => RelayConfig::distributed(distributed),
    };
    config.max_device_slots = args.max_devices.max(1);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(RelayTls::from_pem_files(cert, key)?);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| SyncError::io("starting the runtime", e))?;
    rt.block_on(async {
        let relay = Relay::start(config).await?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| SyncError::io(format!("listening on {}", args.listen), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| SyncError::io("reading the bound address", e))?;
        // One line on stdout, so scripts and tests learn the port (with :0).
        println!("listening on {local}");
        tracing::info!(%local, "mediator listening");
        tokio::select! {
            () = relay.serve(listener) => Ok(()),
            r = tokio::signal::ctrl_c() => r.map_err(|e| SyncError::io("waiting for Ctrl-C", e)),
        }
    })
}
