//! Where a read command gets its answers: the index opened here, or the
//! process that holds it (see `remote.rs`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sealdex::{Credential, Error, Index, IndexConfig};

use crate::fail::Fail;
use crate::ops::{self, Request, Response};

/// An open index, or the way to the process holding it.
pub enum Reader {
    /// Opened by this process.
    Local(Box<Index>),
    /// Held by another process, which answers over its socket.
    Remote {
        /// The index directory.
        dir: PathBuf,
        /// What unlocks it (proves it to the holder).
        cred: Credential,
    },
}

/// How long a reader waits for a holder that serves no socket: one that is
/// starting (opening, not yet serving) or closing (no longer serving, not
/// yet closed). A holder that never serves (see `remote.rs`) is reported
/// as in use after it.
const WAIT_FOR_HOLDER: Duration = Duration::from_secs(10);

impl Reader {
    /// Opens the index in `dir`, or, when another process holds it, reaches
    /// that process instead.
    pub fn open(dir: &Path, cred: Credential, config: IndexConfig) -> Result<Reader, Fail> {
        let deadline = Instant::now() + WAIT_FOR_HOLDER;
        loop {
            match Index::open(dir, &cred, config.clone()) {
                Ok(index) => return Ok(Reader::Local(Box::new(index))),
                Err(Error::InUse { .. }) => {
                    if dir.join(crate::remote::SOCKET).exists() || Instant::now() >= deadline {
                        tracing::debug!("index in use: asking the process that holds it");
                        return Ok(Reader::Remote {
                            dir: dir.to_owned(),
                            cred,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Answers `req`; a failed answer is a [`Fail`].
    pub fn ask(&self, req: &Request) -> Result<Response, Fail> {
        let response = match self {
            Reader::Local(index) => ops::answer(index, req, false)?,
            Reader::Remote { dir, cred } => match crate::remote::ask(dir, cred, req) {
                Ok(r) => r,
                // The holder stopped serving since: open the index (or
                // reach the next holder) and ask again, once.
                Err(_) if !dir.join(crate::remote::SOCKET).exists() => {
                    let again = Reader::open(dir, cred.clone(), IndexConfig::default())?;
                    return match again {
                        Reader::Local(_) => again.ask(req),
                        Reader::Remote { dir, cred } => {
                            check(crate::remote::ask(&dir, &cred, req)?)
                        }
                    };
                }
                Err(e) => return Err(e),
            },
        };
        check(response)
    }
}

/// An error answer as a [`Fail`].
fn check(response: Response) -> Result<Response, Fail> {
    match response {
        Response::Error {
            message,
            query_position: Some(position),
        } => Err(Fail::Query {
            query: String::new(),
            position,
            message,
        }),
        Response::Error { message, .. } => Err(Fail::Message(message)),
        other => Ok(other),
    }
}

/// An answer of the wrong kind: a bug, said plainly rather than a panic.
pub fn unexpected() -> Fail {
    Fail::msg("internal error: the answer does not match the request")
}
