//! Search while indexing: the process holding an index answers the read
//! requests of other `sealdex` processes over a Unix socket, and only those
//! that prove they can unlock the index.
//!
//! Only one process can hold an index open (its store takes an OS lock),
//! so without this a `sealdex search` during a long `sealdex index` would
//! only get "in use". The holder instead serves `SOCKET` in the index
//! directory, and a second process that finds the index in use asks it.
//!
//! Why this keeps the security model:
//!
//! - **Nothing new at rest.** The socket is a rendezvous point, not a
//!   file with content; it is removed when the holder stops (a stale one
//!   left by a killed holder is replaced by the next).
//! - **Owner only.** The socket is made mode 0600 and the server refuses
//!   to start in a directory that another user owns or may write to, where
//!   someone else could swap the socket.
//! - **No unauthenticated query.** Both sides derive a key from the index's
//!   data key under its own label (`Store::derive_local_auth_key`: the
//!   client reads the keyring and unwraps the data key with the passphrase
//!   or key file, as opening would, but without the lock). Then:
//!
//!   ```text
//!   server → client   "SDX1" ‖ Ns                     (32 random bytes)
//!   client → server   Nc ‖ HMAC-SHA256(K, "client" ‖ Ns ‖ Nc)
//!   server → client   0x01 ‖ HMAC-SHA256(K, "server" ‖ Ns ‖ Nc)   or 0x00 and close
//!   ```
//!
//!   Fresh nonces on both sides make every transcript new, so a recorded
//!   answer is worth nothing; the tags are compared in constant time
//!   (`Mac::verify_slice`); the two labels keep one side's tag from
//!   serving as the other's; and the client checks the server's tag, so it
//!   sends its query only to a process that holds the key. The key never
//!   crosses the socket.
//! - After the handshake, one request and one answer, each a 4-byte
//!   big-endian length and a JSON document (`ops::Request`,
//!   `ops::Response`). Requests are capped at 1 MiB, and the server
//!   serves a few connections at a time, each under a read timeout.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sealdex::{Credential, Index, Store};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::fail::Fail;
use crate::ops::{Request, Response};

/// The socket's name in the index directory.
pub const SOCKET: &str = "sealdex.sock";
const MAGIC: &[u8; 4] = b"SDX1";
const NONCE: usize = 32;
const TAG: usize = 32;
/// The largest request the server reads.
const MAX_REQUEST: u32 = 1 << 20;
/// The largest answer the client reads (a `--all` page of a large index).
const MAX_RESPONSE: u32 = 1 << 30;
/// Connections served at once.
const MAX_CONNECTIONS: usize = 8;
/// How long the server waits for a client to speak.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

type Key = Zeroizing<[u8; 32]>;

fn tag(key: &Key, label: &[u8], ns: &[u8], nc: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key[..]).expect("HMAC takes any key length");
    mac.update(label);
    mac.update(ns);
    mac.update(nc);
    mac
}

fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b)
}

fn write_frame(s: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    s.write_all(&len.to_be_bytes())?;
    s.write_all(body)?;
    s.flush()
}

fn read_frame(s: &mut UnixStream, max: u32) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > max {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("a frame of {len} bytes is over the {max}-byte limit"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

/// Refuses a directory another user owns or may write to: there, someone
/// else could replace the socket between our bind and a client's connect.
fn check_private(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if me.is_some_and(|uid| uid != meta.uid()) {
        return Err(format!("{} belongs to another user", dir.display()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by other users (mode {:o})",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// The server a holding process runs while it holds the index.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts answering on `dir/SOCKET`. Returns `None` (after a warning)
    /// when the directory is not private or the socket cannot be made: the
    /// holder then works as before and others get "in use".
    pub fn start(index: Arc<Index>, dir: &Path) -> Option<Server> {
        if let Err(why) = check_private(dir) {
            crate::term::note(&format!(
                "warning: not answering searches from other processes while indexing: {why}"
            ));
            return None;
        }
        let path = dir.join(SOCKET);
        // We hold the index's lock, so a socket here is a stale one.
        let _ = std::fs::remove_file(&path);
        let listener = match UnixListener::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                crate::term::note(&format!(
                    "warning: cannot serve {} ({e}); other processes get \"in use\" meanwhile",
                    path.display()
                ));
                return None;
            }
        };
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            crate::term::note(&format!("warning: cannot restrict {}: {e}", path.display()));
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let key = index.store().local_auth_key();
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, active) = (Arc::clone(&stop), Arc::clone(&active));
            std::thread::Builder::new()
                .name("sealdex-serve".into())
                .spawn(move || accept_loop(listener, index, key, stop, active))
                .ok()?
        };
        Some(Server {
            path,
            stop,
            active,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept call.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
        // Let answers in flight finish (they hold the index).
        for _ in 0..500 {
            if self.active.load(Ordering::SeqCst) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn accept_loop(
    listener: UnixListener,
    index: Arc<Index>,
    key: Key,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
) {
    let key = Arc::new(key);
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: the client sees the connection close
        }
        let (index, key, done) = (Arc::clone(&index), Arc::clone(&key), Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("sealdex-answer".into())
            .spawn(move || {
                if let Err(e) = serve(conn, &index, &key) {
                    tracing::debug!(error = %e, "local client");
                }
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve(mut conn: UnixStream, index: &Index, key: &Key) -> std::io::Result<()> {
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let ns: [u8; NONCE] = random()?;
    conn.write_all(MAGIC)?;
    conn.write_all(&ns)?;
    let mut proof = [0u8; NONCE + TAG];
    conn.read_exact(&mut proof)?;
    let (nc, client_tag) = proof.split_at(NONCE);
    if tag(key, b"client", &ns, nc)
        .verify_slice(client_tag)
        .is_err()
    {
        tracing::warn!("refused a local client that does not hold the index's key");
        let _ = conn.write_all(&[0]);
        return Ok(());
    }
    conn.write_all(&[1])?;
    conn.write_all(&tag(key, b"server", &ns, nc).finalize().into_bytes())?;
    let body = read_frame(&mut conn, MAX_REQUEST)?;
    let response = match serde_json::from_slice::<Request>(&body) {
        Ok(req) => crate::ops::answer(index, &req, true).unwrap_or_else(Response::from_fail),
        Err(e) => Response::Error {
            message: format!("unreadable request: {e}"),
            query_position: None,
        },
    };
    let out = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    write_frame(&mut conn, &out)
}

/// Asks the process holding the index in `dir` to answer `req`.
pub fn ask(dir: &Path, cred: &Credential, req: &Request) -> Result<Response, Fail> {
    let key = Store::derive_local_auth_key(dir, cred)?;
    let path = dir.join(SOCKET);
    let in_use = |why: String| {
        Fail::msg(format!(
            "the index at {} is in use by another process, which does not answer ({why}); \
             try again when it is done",
            dir.display()
        ))
    };
    let mut conn = UnixStream::connect(&path).map_err(|e| in_use(e.to_string()))?;
    let io = |e: std::io::Error| in_use(e.to_string());
    conn.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    let mut hello = [0u8; 4 + NONCE];
    conn.read_exact(&mut hello).map_err(io)?;
    if &hello[..4] != MAGIC {
        return Err(in_use("it does not speak sealdex's protocol".into()));
    }
    let ns = &hello[4..];
    let nc: [u8; NONCE] = random().map_err(io)?;
    let mut proof = nc.to_vec();
    proof.extend_from_slice(&tag(&key, b"client", ns, &nc).finalize().into_bytes());
    conn.write_all(&proof).map_err(io)?;
    let mut verdict = [0u8; 1 + TAG];
    conn.read_exact(&mut verdict[..1]).map_err(io)?;
    if verdict[0] != 1 {
        return Err(Fail::msg(
            "the process holding the index refused this key (a different index?)",
        ));
    }
    conn.read_exact(&mut verdict[1..]).map_err(io)?;
    if tag(&key, b"server", ns, &nc)
        .verify_slice(&verdict[1..])
        .is_err()
    {
        return Err(Fail::msg(format!(
            "the process answering at {} does not hold this index's key; not asking it",
            path.display()
        )));
    }
    // The answer may take a while (a large search); the server is trusted now.
    conn.set_read_timeout(None).map_err(io)?;
    let body = serde_json::to_vec(req).map_err(|e| Fail::msg(e.to_string()))?;
    write_frame(&mut conn, &body).map_err(io)?;
    let answer = read_frame(&mut conn, MAX_RESPONSE).map_err(io)?;
    serde_json::from_slice(&answer).map_err(|e| Fail::msg(format!("unreadable answer: {e}")))
}
