//! Index operations: the one vocabulary of change. Every write to an index,
//! whatever its origin (the pipeline crawling a source, an app pushing the
//! chat messages it received, another device's reflected work), is a list
//! of [`Op`]s applied by [`Index::apply`](crate::Index::apply).
//!
//! # Versions, and why applying twice changes nothing
//!
//! Each op names its record by source and id and carries a **version**, a
//! number that grows with every change of that record. A record remembers
//! the version of the last op applied to it ([`Record::revision`]), and a
//! deleted record leaves a sealed tombstone with its delete's version. An op
//! whose version is at or below what the record (or its tombstone) holds
//! changes nothing. So a batch replayed after a crash, a reflected op
//! delivered twice, or an older edit arriving after a newer one all leave
//! the index as it was; the result depends only on the newest op of each
//! record, not on the order ops of different versions arrive in.
//!
//! Version 0 means "the next one": the index assigns a version above both
//! the record's and its own clock (microseconds since the epoch, never going
//! backwards while the index is open). The pipeline and most apps use it;
//! an app whose server orders changes (a chat server's event sequence, an
//! edit counter) passes its own. The ops that [`Index::apply`] reports back
//! carry the versions it assigned, so they can be replayed elsewhere (as
//! multi-device reflection does) with the same effect.
//!
//! [`Index::apply`]: crate::Index::apply

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::record::{Flags, Record};
use crate::source::Metadata;

/// One change to an index.
// Most ops of a batch are upserts, which hold their record inline: boxing
// it would add an allocation per record for no saving.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Stores a record, replacing any older version of it.
    Upsert(Upsert),
    /// Changes a stored record's folders, labels or flags, without its
    /// content: no fetch, no decryption, no cleaning.
    Patch(Patch),
    /// Removes a record.
    Delete(Delete),
}

/// Stores [`Upsert::record`] under its `source` and `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upsert {
    /// The op's version (0: assigned by the index; see the module docs).
    pub version: u64,
    /// The record, with its `source` and `id` set. Its `revision` is set
    /// by the index. Shared, so that the ops [`Index::apply`] reports back
    /// (and the cache and inverted index it feeds) hold the same record
    /// rather than copies.
    ///
    /// [`Index::apply`]: crate::Index::apply
    pub record: Arc<Record>,
}

/// Changes the metadata of a stored record; each `Some` replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patch {
    /// The record's source.
    pub source: String,
    /// The record's id within its source.
    pub id: String,
    /// The op's version (0: assigned by the index).
    pub version: u64,
    /// What to set.
    pub set: Metadata,
}

/// Removes a stored record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    /// The record's source.
    pub source: String,
    /// The record's id within its source.
    pub id: String,
    /// The op's version (0: assigned by the index).
    pub version: u64,
}

impl Op {
    /// An upsert of `record` at version 0 (assigned by the index).
    ///
    /// ```
    /// use sealdex::ops::Op;
    /// use sealdex::{ContentKind, Record};
    ///
    /// let op = Op::upsert(Record {
    ///     source: "chat".into(),
    ///     id: "room1/42".into(),
    ///     kind: ContentKind::Chat,
    ///     body: "see you at noon".into(),
    ///     folders: vec!["room1".into()],
    ///     ..Record::default()
    /// });
    /// assert_eq!(op.id(), "room1/42");
    /// ```
    pub fn upsert(record: Record) -> Op {
        Op::Upsert(Upsert {
            version: 0,
            record: Arc::new(record),
        })
    }

    /// A patch at version 0.
    pub fn patch(source: impl Into<String>, id: impl Into<String>, set: Metadata) -> Op {
        Op::Patch(Patch {
            source: source.into(),
            id: id.into(),
            version: 0,
            set,
        })
    }

    /// A delete at version 0.
    pub fn delete(source: impl Into<String>, id: impl Into<String>) -> Op {
        Op::Delete(Delete {
            source: source.into(),
            id: id.into(),
            version: 0,
        })
    }

    /// The source of the record the op is about.
    pub fn source(&self) -> &str {
        match self {
            Op::Upsert(u) => &u.record.source,
            Op::Patch(p) => &p.source,
            Op::Delete(d) => &d.source,
        }
    }

    /// The id of the record the op is about.
    pub fn id(&self) -> &str {
        match self {
            Op::Upsert(u) => &u.record.id,
            Op::Patch(p) => &p.id,
            Op::Delete(d) => &d.id,
        }
    }

    /// The op's version (0: not assigned yet).
    pub fn version(&self) -> u64 {
        match self {
            Op::Upsert(u) => u.version,
            Op::Patch(p) => p.version,
            Op::Delete(d) => d.version,
        }
    }

    /// The same op at version `version`.
    pub fn with_version(mut self, version: u64) -> Op {
        match &mut self {
            Op::Upsert(u) => u.version = version,
            Op::Patch(p) => p.version = version,
            Op::Delete(d) => d.version = version,
        }
        self
    }
}

impl Metadata {
    /// Applies this change to `record`; whether anything changed.
    pub fn apply_to(&self, record: &mut Record) -> bool {
        let before = (record.folders.clone(), record.labels.clone(), record.flags);
        if let Some(f) = &self.folders {
            record.folders = f.clone();
        }
        if let Some(l) = &self.labels {
            record.labels = l.clone();
        }
        if let Some(u) = self.unread {
            record.flags.set(Flags::UNREAD, u);
        }
        if let Some(f) = self.flagged {
            record.flags.set(Flags::FLAGGED, f);
        }
        (record.folders.clone(), record.labels.clone(), record.flags) != before
    }

    /// Whether it sets nothing.
    pub fn is_empty(&self) -> bool {
        self.folders.is_none()
            && self.labels.is_none()
            && self.unread.is_none()
            && self.flagged.is_none()
    }
}

/// What [`Index::apply`](crate::Index::apply) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The ops that changed the index, in order, each with the version it
    /// was applied at: replaying them anywhere has the same effect.
    pub ops: Vec<Op>,
    /// Ops that changed nothing: an older or equal version, a patch of a
    /// record that is not stored, a patch that set what was already set.
    pub skipped: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_sets_only_what_it_names() {
        let mut r = Record {
            folders: vec!["INBOX".into()],
            labels: vec!["work".into()],
            flags: Flags::UNREAD | Flags::HAS_ATTACHMENT,
            ..Record::default()
        };
        let m = Metadata {
            unread: Some(false),
            flagged: Some(true),
            ..Metadata::default()
        };
        assert!(m.apply_to(&mut r));
        assert_eq!(r.flags, Flags::FLAGGED | Flags::HAS_ATTACHMENT);
        assert_eq!(r.folders, ["INBOX"]);
        assert_eq!(r.labels, ["work"]);
        assert!(!m.apply_to(&mut r), "applying again changes nothing");
        let moved = Metadata {
            folders: Some(vec!["Archive".into()]),
            ..Metadata::default()
        };
        assert!(moved.apply_to(&mut r));
        assert_eq!(r.folders, ["Archive"]);
        assert!(Metadata::default().is_empty());
    }
}
