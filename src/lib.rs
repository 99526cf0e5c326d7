//! sealdex: fast full-text search for end-to-end-encrypted mail, chat, drive
//! and calendar clients, whose index never leaves the device and is
//! encrypted at rest.
//!
//! An E2EE client cannot let its server search, because the server holds only
//! ciphertext. sealdex lets the client search itself: it fetches messages
//! through a [`Source`], decrypts them with a [`Decryptor`] into a
//! [`Message`] of a kind (mail, chat, event, file), cleans it into a
//! [`Record`] ([`clean`], with the HTML extractor, normaliser and tokenizer
//! of [`text`]), and seals every record with AES-256-GCM ([`seal`]) into a
//! local sled store ([`store`]) under a data key wrapped by the user's
//! passphrase (Argon2id) or a key the app supplies ([`keys`]).
//!
//! Every change, whatever its origin, is an op ([`ops`]: upsert, patch,
//! delete, with a source and a version) applied by [`Index::apply`], the
//! one write path ([`write`](crate::Index::apply)), which keeps the store,
//! the decrypted cache and the inverted index in step.
//!
//! The modules follow the data flow:
//!
//! ```text
//!  Source ──fetch──► Decryptor ──► Cleaner ──► ops ──► Index::apply ──► Store (sealed records)
//!  source, backends  decrypt, mime  clean      ops     index, write      store, seal, keys
//!                    (message)      (text)      ▲        ├─► cache (forward scan)
//!   └─────────── pipeline ─────────────────────┤        └─► search::inverted (sealed files)
//!  app pushes ops (chat clients) ──────────────┤
//!  other devices, reflected via the mediator ──┘ sync (keys, protocol, relay, client)
//!
//!  Query ──► parse ──► plan ──► search::forward | search::inverted ──► hits from the store
//!  query (names, ast, parse, plan)       search (scan, bm25, cursor)
//! ```
//!
//! Beyond mail (features `calendar` and `drive`, on by default):
//! `calendar` reads iCalendar events and tasks, with their time zones and
//! recurring series, and `extract` the text of documents (PDF, DOCX, ODT,
//! Markdown, HTML); `backends::Ics` and `backends::Drive` are their
//! sources, and `jsonl` is the JSON Lines op format that `sealdex import`
//! reads and chat clients write.
//!
//! Lower layers never import higher ones: `message`, `secret`, `record` and
//! `text` sit at the bottom; `mime` builds a `Message` without knowing the
//! decryptors that call it, and `seal` seals with a `SecretKey` without
//! knowing the key hierarchy of `keys`; the store knows nothing of the
//! cache or the search modes, and nothing below `index` imports it.
// Denied everywhere but `allocator`, whose one FFI call (glibc's
// `malloc_trim`) is a measured win with its `SAFETY:` note.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tantivy")]
mod allocator;
pub mod backends;
mod cache;
#[cfg(feature = "calendar")]
pub mod calendar;
pub mod clean;
mod config;
pub mod decrypt;
mod error;
#[cfg(feature = "drive")]
pub mod extract;
mod fsio;
mod index;
pub mod jsonl;
pub mod keys;
mod message;
pub mod mime;
pub mod ops;
pub mod pipeline;
pub mod query;
pub mod record;
pub mod seal;
pub mod search;
mod secret;
pub mod source;
pub mod store;
pub mod sync;
pub mod text;
pub mod upgrade;
mod write;

pub use config::IndexConfig;
pub use decrypt::{Body, DecryptError, Decryptor, Message};
pub use error::{Error, Result};
pub use index::Index;
pub use keys::{Credential, KdfParams, SecretKey};
pub use query::snippet::Snippet;
pub use record::{ContentKind, Field, Flags, Record};
#[cfg(feature = "tantivy")]
pub use search::inverted;
pub use search::{
    Hit, InvertedStatus, KeyPage, Order, PageCursor, SearchMode, SearchOptions, SearchResults,
};
pub use source::{
    Change, Changes, Cursor, FetchError, MessageRef, Metadata, Page, RawMessage, Source,
    SourceError, SourceErrorKind, SyncToken,
};

pub use store::{DocKey, Store};

// Compiles the README's Rust examples as doctests, so the README cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
