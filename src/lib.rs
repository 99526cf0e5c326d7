//! sealdex: fast full-text search for end-to-end-encrypted mail, chat, drive
//! and calendar clients, whose index never leaves the device and is
//! encrypted at rest.
//!
//! An E2EE client cannot let its server search, because the server holds only
//! ciphertext. sealdex lets the client search itself: it fetches messages
//! through a [`Source`], decrypts them with a [`Decryptor`], cleans HTML and
//! normalises text ([`clean`]), and seals every record with AES-256-GCM
//! ([`seal`]) into a local sled store ([`store`]) under a data key wrapped by
//! the user's passphrase (Argon2id) or a key the app supplies ([`keys`]).
//!
//! The modules follow the data flow:
//!
//! ```text
//!  Source ──fetch──► Decryptor ──► Cleaner ──► Sealer ──► Store (sled)
//!  source, backends  decrypt, mime  clean      seal        store
//!                        └──────────── pipeline ────────────┘
//! ```
// Denied everywhere but `allocator`, whose one FFI call (glibc's
// `malloc_trim`) is a measured win with its `SAFETY:` note.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tantivy")]
mod allocator;
pub mod backends;
mod cache;
pub mod clean;
pub mod decrypt;
mod error;
mod index;
#[cfg(feature = "tantivy")]
pub mod inverted;
pub mod keys;
pub mod mime;
pub mod pipeline;
pub mod query;
pub mod record;
pub mod seal;
pub mod source;
pub mod store;
pub mod sync;

pub use decrypt::{Body, DecryptError, Decryptor, Message};
pub use error::{Error, Result};
pub use index::{
    Hit, Index, IndexConfig, InvertedStatus, KeyPage, Order, PageCursor, SearchMode, SearchOptions,
    SearchResults,
};
pub use keys::{Credential, KdfParams, SecretKey};
pub use query::snippet::Snippet;
pub use record::{ContentKind, Field, Flags, Record};
pub use source::{
    Change, Changes, Cursor, FetchError, MessageRef, Page, RawMessage, Source, SourceError,
    SyncToken,
};

pub use store::{DocKey, Store};

// Compiles the README's Rust examples as doctests, so the README cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
