//! The inverted index: tantivy on an encrypted [`Directory`](tantivy::Directory),
//! kept in step with the store and answering the query language with exactly
//! the forward scan's results.
//!
//! The forward scan is linear in the mailbox; this index makes large
//! mailboxes and chat histories fast. It is an accelerator, never the source
//! of truth: it stores no text, only terms, postings and each record's key,
//! and a hit is resolved through the encrypted store. It can be deleted at
//! any time, and sealdex rebuilds it.
//!
//! - [`directory`]: [`EncryptedDirectory`], tantivy's files as sealed,
//!   compressed chunks, read at random offsets through a bounded cache.
//! - [`schema`]: [`IndexSchema`], what each record becomes, and
//!   [`SealdexTokenizer`], the crate's normaliser as a tantivy tokenizer.
//! - [`query`](mod@query): [`compile`], the query language in tantivy's queries.
//! - `split`: the split-word query (`e-mail`), exact tokens followed by a
//!   prefix, faster than tantivy's phrase-prefix on large indexes.
//! - `engine`: the live index of a store: commits that follow the
//!   pipeline's, catch-up after a crash, rebuild after damage or an upgrade.
//! - `builder`: the background thread that runs a catch-up or a rebuild
//!   while the store keeps taking writes.
//!
//! [`crate::Index`] drives all of it; the public parts here are for
//! embedders who want the same schema in their own tantivy index (the
//! comparison benchmark uses them for plaintext tantivy).

mod builder;
pub mod directory;
pub(crate) mod engine;
mod parallel;
pub mod query;
pub mod schema;
mod split;

pub(crate) use builder::Builder;
pub use directory::{DirectoryOptions, EncryptedDirectory};
pub use engine::{CatchUp, FORMAT, InvertedOptions};
pub use query::compile;
pub use schema::{IndexSchema, SealdexTokenizer};
