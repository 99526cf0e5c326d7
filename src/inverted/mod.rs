//! The inverted index's storage: tantivy on an encrypted [`Directory`](tantivy::Directory).
//!
//! The design (see `DESIGN.md`) puts tantivy beside the forward scan as an
//! optional accelerator. tantivy reads and writes its index through a
//! `Directory`; this module supplies one, [`EncryptedDirectory`], that keeps
//! every file as sealed chunks so a stolen disk shows neither the indexed
//! terms nor the names of tantivy's files, and so that tampering with any
//! of them fails authentication instead of feeding tantivy wrong bytes.
//!
//! Only the directory exists so far; the schema, the writer that follows
//! the pipeline, and the query planner's use of it come next.

pub mod directory;

pub use directory::{DirectoryOptions, EncryptedDirectory};
