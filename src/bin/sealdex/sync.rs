//! `sealdex sync`: share this index with the account's other devices
//! through a mediator (issue 15; `sealdex::sync::share`).
//!
//! The device id and the replay guard's windows live beside the index
//! (`sync-device-id`, `sync-nonces`: random device ids and counters that
//! name nothing), kept
//! so that this device is the same device to the relay across runs, and a
//! replayed envelope is refused after a restart too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use sealdex::pipeline::IndexOptions;
use sealdex::sync::envelope::ReplayGuard;
use sealdex::sync::keys::GroupKeys;
use sealdex::sync::share::{self, Bootstrap, Role, ShareConfig, Status};

use crate::fail::Fail;

/// `sealdex sync`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The relay: ws://HOST:PORT.
    #[arg(long)]
    mediator: String,
    /// File holding the 32-byte device group key (`sealdex group new`).
    #[arg(long)]
    group_key: PathBuf,
    /// Mailboxes this device crawls when the relay makes it the leader
    /// (the other devices receive what it finds). Give every device the
    /// same ones, so whichever leads can resume the crawl.
    sources: Vec<PathBuf>,
    /// Exit once the queue is drained, a bootstrap (if this device joined
    /// empty) is finished and, if leading, the sources are ingested and
    /// reflected. Without it, keep following changes and serve snapshots to
    /// devices that join, until Ctrl-C.
    #[arg(long)]
    until_idle: bool,
    /// Messages per batch while leading (a checkpoint after each).
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// While leading and not --until-idle, look at the sources again this
    /// often (seconds).
    #[arg(long, default_value_t = 60)]
    rescan: u64,
}

fn sync_err(e: sealdex::sync::SyncError) -> Fail {
    Fail::msg(e.to_string())
}

/// This device's id, made once and kept beside the index.
fn device_id(dir: &Path) -> Result<u64, Fail> {
    let path = dir.join("sync-device-id");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return u64::from_str_radix(s.trim(), 16).map_err(|_| {
            Fail::msg(format!(
                "{}: not a device id; delete it to make this device a new one",
                path.display()
            ))
        });
    }
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Fail::msg(format!("no randomness: {e}")))?;
    let id = u64::from_le_bytes(b);
    std::fs::write(&path, format!("{id:016x}\n"))
        .map_err(|e| Fail::msg(format!("writing {}: {e}", path.display())))?;
    Ok(id)
}

fn line(s: &Status) -> String {
    let role = match s.role {
        Role::Connecting => "connecting",
        Role::Follower => "follower",
        Role::Bootstrapping => "bootstrapping",
        Role::Leader => "leader",
    };
    let boot = match s.bootstrap {
        Bootstrap::NotNeeded => String::new(),
        Bootstrap::Running { records } => format!(", bootstrap {records} records so far"),
        Bootstrap::Done { records } => format!(", bootstrapped {records} records"),
    };
    format!(
        "role {role}, queue {}, outbox {}, peers {}/{} connected, reflected {}, applied {}{boot}",
        s.queue, s.outbox, s.peers.1, s.peers.0, s.reflected, s.applied_ops
    )
}

pub fn run(args: &SyncArgs, dir: &Path, key_file: Option<&Path>) -> Result<ExitCode, Fail> {
    let keys = Arc::new(
        GroupKeys::derive(&crate::group::read_group_key(&args.group_key).map_err(sync_err)?)
            .map_err(sync_err)?,
    );
    let mut sources = Vec::new();
    for path in &args.sources {
        sources.push(
            sealdex::backends::open_path(path).map_err(|e| Fail::msg(e.message().to_owned()))?,
        );
    }
    let index = Arc::new(crate::index::open_or_create(dir, key_file)?);
    let id = device_id(dir)?;
    let guard = ReplayGuard::open(&dir.join("sync-nonces")).map_err(sync_err)?;
    let mut config = ShareConfig::new(&args.mediator, keys, id);
    config.info = b"sealdex cli".to_vec();
    config.guard = guard;
    config.sources = sources;
    config.options = IndexOptions {
        batch_messages: args.batch.max(1),
        ..IndexOptions::default()
    };
    config.rescan = (!args.until_idle).then(|| std::time::Duration::from_secs(args.rescan.max(1)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::msg(format!("starting the runtime: {e}")))?;
    let until_idle = args.until_idle;
    rt.block_on(async move {
        let mut handle = share::start(Arc::clone(&index), config)
            .await
            .map_err(sync_err)?;
        // Role changes on stdout, one line each (scripts and tests follow
        // them); the rest on stderr with -v.
        let mut role = None;
        let mut said_idle = false;
        let outcome = loop {
            let status = tokio::select! {
                s = handle.wait_for(|s| Some(s.role) != role || s.idle != said_idle) => s,
                _ = tokio::signal::ctrl_c() => break Ok(()),
            };
            let status = match status {
                Ok(s) => s,
                Err(e) => break Err(e),
            };
            if Some(status.role) != role {
                role = Some(status.role);
                println!("{}", line(&status));
            }
            if status.idle != said_idle {
                said_idle = status.idle;
                if said_idle {
                    println!("idle: {}", line(&status));
                    if until_idle {
                        break Ok(());
                    }
                }
            }
        };
        let stopped = handle.stop().await;
        outcome.and(stopped).map_err(sync_err)?;
        println!("{} records in the index", index.len());
        Ok(ExitCode::SUCCESS)
    })
}
