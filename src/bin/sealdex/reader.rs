//! Where a read command gets its answers: the index opened here, or the
//! process that holds it (see `remote.rs`).

use std::path::{Path, PathBuf};

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

impl Reader {
    /// Opens the index in `dir`, or, when another process holds it, reaches
    /// that process instead.
    pub fn open(dir: &Path, cred: Credential, config: IndexConfig) -> Result<Reader, Fail> {
        match Index::open(dir, &cred, config) {
            Ok(index) => Ok(Reader::Local(Box::new(index))),
            Err(Error::InUse { .. }) => {
                tracing::debug!("index in use: asking the process that holds it");
                Ok(Reader::Remote {
                    dir: dir.to_owned(),
                    cred,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Answers `req`; a failed answer is a [`Fail`].
    pub fn ask(&self, req: &Request) -> Result<Response, Fail> {
        let response = match self {
            Reader::Local(index) => ops::answer(index, req, false)?,
            Reader::Remote { dir, cred } => crate::remote::ask(dir, cred, req)?,
        };
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
}

/// An answer of the wrong kind: a bug, said plainly rather than a panic.
pub fn unexpected() -> Fail {
    Fail::msg("internal error: the answer does not match the request")
}
