//! What the IMAP source remembers between runs: the sync token (each
//! mailbox's UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and its messages' UIDs,
//! flags and fingerprints), the listing cursor, message locators, and the
//! diff that turns two states into [`Change`]s.
//!
//! # Ids, and moves without a body fetch
//!
//! A message's natural id is `MAILBOX/UIDVALIDITY/UID`: unique for the life
//! of the account, since a server never reuses a UID under one
//! UIDVALIDITY. A move changes all three. RFC 8474's `EMAILID` would
//! survive it, but it is not used: no Dovecot offers it (neither 2.3 nor
//! 2.4, whose CAPABILITY has no `OBJECTID`; its `X-GUID` is its own and
//! unadvertised), and the response parser under the `imap` crate,
//! imap-proto 0.16, cannot read an `EMAILID` item, a line the crate then
//! takes for the server hanging up (`mod.rs` has a test that says when
//! that changes). So the token keeps a fingerprint per message, a hash of what `MOVE` and `COPY`
//! preserve and a header fetch returns without the body: the `Message-ID`
//! header as stored, the INTERNALDATE and the RFC822.SIZE. When a sync
//! finds a message gone from one place and a message with the same
//! fingerprint new in another, that is a move: the record keeps its id and
//! is patched with its new folder and flags, and nothing is fetched. The
//! token then remembers the kept id for the new place. Unmatched, a gone
//! message is a delete and a new one a create. Two different messages with
//! one Message-ID, one arrival second and one size are the same message
//! for every purpose a search has.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::record::Flags;
use crate::source::{Change, Cursor, MessageRef, Metadata, SourceError, SyncToken};

/// The token format this module writes.
const FORMAT: u8 = 1;
/// The kind tag of tokens and cursors.
const KIND: &str = "imap";

/// The flags the index keeps, as bits: [`Flags::UNREAD`] and
/// [`Flags::FLAGGED`].
pub(super) fn flag_bits(flags: Flags) -> u8 {
    flags.bits() & (Flags::UNREAD | Flags::FLAGGED).bits()
}

/// One message of a mailbox in the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Msg {
    pub uid: u32,
    /// [`flag_bits`].
    pub flags: u8,
    /// See the module documentation.
    pub fp: u64,
    /// The id, when it is not the natural one (kept across a move).
    pub id: Option<String>,
}

/// The status of a mailbox: what tells a changed one from an unchanged one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Status {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub messages: u32,
    /// HIGHESTMODSEQ, when the server has CONDSTORE.
    pub modseq: Option<u64>,
}

/// One mailbox in the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Mailbox {
    /// The name as the server spells it (modified UTF-7, its delimiter).
    pub name: String,
    /// The folder records get: the special-use role or the name.
    pub folder: String,
    pub status: Status,
    /// Sorted by UID.
    pub msgs: Vec<Msg>,
}

impl Mailbox {
    /// The natural id of a UID here.
    pub fn natural_id(&self, uid: u32) -> String {
        natural_id(&self.name, self.status.uidvalidity, uid)
    }

    /// The id of `m`.
    pub fn id_of(&self, m: &Msg) -> String {
        m.id.clone().unwrap_or_else(|| self.natural_id(m.uid))
    }

    /// A reference to `m` here.
    pub fn message_ref(&self, m: &Msg, size: Option<u64>) -> MessageRef {
        MessageRef {
            id: self.id_of(m),
            locator: Locator {
                mailbox: self.name.clone(),
                folder: self.folder.clone(),
                uidvalidity: self.status.uidvalidity,
                uid: m.uid,
            }
            .encode(),
            version: None,
            size,
        }
    }
}

/// `MAILBOX/UIDVALIDITY/UID`.
pub(super) fn natural_id(mailbox: &str, uidvalidity: u32, uid: u32) -> String {
    format!("{mailbox}/{uidvalidity}/{uid}")
}

/// The token: every mailbox, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct State {
    pub mailboxes: Vec<Mailbox>,
}

impl State {
    /// Reads a token; an empty one is an empty state (nothing known yet).
    pub fn decode(token: &SyncToken) -> Result<Self, SourceError> {
        if token.0.is_empty() {
            return Ok(State::default());
        }
        let bad = |why: &str| SourceError::malformed(format!("IMAP sync token: {why}"));
        let (format, kind, state): (u8, String, State) =
            postcard::from_bytes(&token.0).map_err(|_| bad("undecodable"))?;
        if kind != KIND {
            return Err(bad(&format!("written by a {kind} source")));
        }
        if format != FORMAT {
            return Err(bad(&format!(
                "format {format} is not one this build reads; list the source again"
            )));
        }
        Ok(state)
    }

    /// The token for this state.
    pub fn encode(&self) -> SyncToken {
        SyncToken(postcard::to_allocvec(&(FORMAT, KIND, self)).unwrap_or_default())
    }
}

/// Where a message is: enough to fetch it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Locator {
    pub mailbox: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

impl Locator {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

/// The listing cursor: the mailbox, its UIDVALIDITY and the last UID
/// handed out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ListCursor {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub after: u32,
}

impl ListCursor {
    pub fn encode(&self) -> Cursor {
        Cursor(postcard::to_allocvec(&(KIND, self)).unwrap_or_default())
    }
    pub fn decode(c: &Cursor) -> Result<Self, SourceError> {
        let (kind, cursor): (String, ListCursor) = postcard::from_bytes(&c.0)
            .map_err(|_| SourceError::malformed("IMAP listing cursor: undecodable"))?;
        if kind != KIND {
            return Err(SourceError::malformed(format!(
                "IMAP listing cursor: written by a {kind} source"
            )));
        }
        Ok(cursor)
    }
}

/// The fingerprint of a message: see the module documentation.
pub(super) fn fingerprint(message_id_header: &[u8], internal_date: i64, size: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(message_id_header);
    h.update([0]);
    h.update(internal_date.to_le_bytes());
    h.update(size.to_le_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

/// A message seen on the server in this sync that the old state did not
/// have at that place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct New {
    /// Index of its mailbox in the new state.
    pub mailbox: usize,
    pub uid: u32,
    pub flags: u8,
    pub fp: u64,
    pub size: u32,
}

/// The result of comparing a mailbox's old messages with what the server
/// says now, before moves are matched.
#[derive(Debug, Default)]
pub(super) struct Diff {
    pub changes: Vec<Change>,
    /// Messages no longer where they were: (id, fingerprint).
    pub gone: Vec<(String, u64)>,
    pub new: Vec<New>,
}

/// The metadata of a message with `flags` in `folder` (set when it moved).
fn metadata(flags: u8, folder: Option<&str>) -> Metadata {
    let f = Flags::from_bits(flags);
    Metadata {
        folders: folder.map(|f| vec![f.to_owned()]),
        labels: None,
        unread: Some(f.contains(Flags::UNREAD)),
        flagged: Some(f.contains(Flags::FLAGGED)),
    }
}

impl Diff {
    /// Everything in `old` is gone.
    pub fn all_gone(&mut self, old: &Mailbox) {
        for m in &old.msgs {
            self.gone.push((old.id_of(m), m.fp));
        }
    }

    /// Compares `old` (the same mailbox, same UIDVALIDITY) with the server.
    /// `flags` holds the current flags of every message whose flags may
    /// have changed (all of them, or those CHANGEDSINCE the old modseq) and
    /// of new ones; `exists(uid)` says whether an old UID is still there.
    /// Returns the surviving messages with their flags updated, and the
    /// UIDs with their flags that the old state does not have (new
    /// messages, for which the caller fetches fingerprints).
    pub fn compare(
        &mut self,
        old: &Mailbox,
        flags: &std::collections::HashMap<u32, u8>,
        exists: impl Fn(u32) -> bool,
    ) -> (Vec<Msg>, Vec<(u32, u8)>) {
        let mut kept = Vec::with_capacity(old.msgs.len());
        for m in &old.msgs {
            if !exists(m.uid) {
                self.gone.push((old.id_of(m), m.fp));
                continue;
            }
            let mut m = m.clone();
            if let Some(&now) = flags.get(&m.uid)
                && now != m.flags
            {
                m.flags = now;
                self.changes.push(Change::MetadataUpdated(
                    old.message_ref(&m, None),
                    metadata(now, None),
                ));
            }
            kept.push(m);
        }
        let known: std::collections::HashSet<u32> = old.msgs.iter().map(|m| m.uid).collect();
        let mut fresh: Vec<(u32, u8)> = flags
            .iter()
            .filter(|(uid, _)| !known.contains(uid))
            .map(|(&u, &f)| (u, f))
            .collect();
        fresh.sort_unstable();
        (kept, fresh)
    }

    /// Matches gone messages to new ones by fingerprint (moves), adds the
    /// new messages to `state`, and emits the moves, creates and deletes.
    pub fn finish(mut self, state: &mut State) -> Vec<Change> {
        let mut by_fp: std::collections::HashMap<u64, Vec<String>> =
            std::collections::HashMap::new();
        for (id, fp) in self.gone.drain(..).rev() {
            by_fp.entry(fp).or_default().push(id);
        }
        let mut moves = Vec::new();
        let mut creates = Vec::new();
        for n in std::mem::take(&mut self.new) {
            let Some(mb) = state.mailboxes.get_mut(n.mailbox) else {
                continue;
            };
            let kept = by_fp.get_mut(&n.fp).and_then(Vec::pop);
            let natural = mb.natural_id(n.uid);
            let msg = Msg {
                uid: n.uid,
                flags: n.flags,
                fp: n.fp,
                id: kept.clone().filter(|k| *k != natural),
            };
            let r = mb.message_ref(&msg, Some(u64::from(n.size)));
            match kept {
                Some(_) => moves.push(Change::Moved(r, metadata(n.flags, Some(&mb.folder)))),
                None => creates.push(Change::Created(r)),
            }
            let at = mb.msgs.partition_point(|m| m.uid < n.uid);
            mb.msgs.insert(at, msg);
        }
        let mut deletes: Vec<Change> = by_fp
            .into_values()
            .flatten()
            .map(|id| Change::Deleted { id })
            .collect();
        deletes.sort_by(|a, b| match (a, b) {
            (Change::Deleted { id: x }, Change::Deleted { id: y }) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        });
        let mut out = self.changes;
        out.extend(moves);
        out.extend(deletes);
        out.extend(creates);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mailbox(name: &str, uv: u32, msgs: &[(u32, u8, u64)]) -> Mailbox {
        Mailbox {
            name: name.into(),
            folder: name.into(),
            status: Status {
                uidvalidity: uv,
                uidnext: msgs.last().map_or(1, |m| m.0 + 1),
                messages: msgs.len() as u32,
                modseq: None,
            },
            msgs: msgs
                .iter()
                .map(|&(uid, flags, fp)| Msg {
                    uid,
                    flags,
                    fp,
                    id: None,
                })
                .collect(),
        }
    }

    #[test]
    fn flags_expunges_and_moves() {
        let inbox = mailbox("INBOX", 7, &[(1, 1, 10), (2, 0, 20), (3, 1, 30)]);
        let mut diff = Diff::default();
        // UID 1 read, UID 2 moved away, UID 3 expunged; a new UID 4.
        let flags = HashMap::from([(1, 0), (4, 1)]);
        let (kept, fresh) = diff.compare(&inbox, &flags, |uid| uid == 1 || uid == 4);
        assert_eq!(kept.len(), 1);
        assert_eq!(fresh, vec![(4, 1)]);
        let mut state = State {
            mailboxes: vec![
                Mailbox {
                    msgs: kept,
                    ..inbox.clone()
                },
                mailbox("Archive", 9, &[]),
            ],
        };
        diff.new.push(New {
            mailbox: 0,
            uid: 4,
            flags: 1,
            fp: 40,
            size: 100,
        });
        diff.new.push(New {
            mailbox: 1,
            uid: 1,
            flags: 0,
            fp: 20,
            size: 200,
        });
        let changes = diff.finish(&mut state);
        assert!(matches!(&changes[0], Change::MetadataUpdated(r, m)
            if r.id == "INBOX/7/1" && m.unread == Some(false) && m.folders.is_none()));
        assert!(matches!(&changes[1], Change::Moved(r, m)
            if r.id == "INBOX/7/2" && m.folders.as_deref() == Some(&["Archive".to_string()][..])));
        assert_eq!(
            changes[2],
            Change::Deleted {
                id: "INBOX/7/3".into()
            }
        );
        assert!(matches!(&changes[3], Change::Created(r) if r.id == "INBOX/7/4"));
        assert_eq!(changes.len(), 4);
        // The moved message keeps its id at its new place.
        let moved = &state.mailboxes[1].msgs[0];
        assert_eq!(state.mailboxes[1].id_of(moved), "INBOX/7/2");
        let back = State::decode(&state.encode()).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn tokens_and_cursors_refuse_garbage() {
        assert_eq!(
            State::decode(&SyncToken::default()).unwrap(),
            State::default()
        );
        assert!(State::decode(&SyncToken(b"garbage".to_vec())).is_err());
        let other = SyncToken(postcard::to_allocvec(&(1u8, "maildir", State::default())).unwrap());
        assert!(State::decode(&other).is_err());
        assert!(ListCursor::decode(&Cursor(vec![1, 2, 3])).is_err());
        let c = ListCursor {
            mailbox: "INBOX".into(),
            uidvalidity: 3,
            after: 9,
        };
        assert_eq!(ListCursor::decode(&c.encode()).unwrap(), c);
        assert!(Locator::decode(b"\xff\xff").is_none());
    }

    proptest::proptest! {
        /// Whatever a token's bytes, decoding it never panics.
        #[test]
        fn token_decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = State::decode(&SyncToken(bytes.clone()));
            let _ = ListCursor::decode(&Cursor(bytes.clone()));
            let _ = Locator::decode(&bytes);
        }
    }
}
