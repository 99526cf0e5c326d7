//! The IMAP backend: every mailbox of an IMAP4rev1 account as a [`Source`],
//! synced incrementally by UIDVALIDITY, UIDNEXT and CONDSTORE/QRESYNC.
//!
//! ```no_run
//! use sealdex::Source;
//! use sealdex::backends::imap::{Account, Auth, Imap};
//!
//! let account = Account::parse("imaps://alice%40example.org@imap.example.org")?;
//! let mut imap = Imap::new(account, Auth::password("…from a prompt…"));
//! imap.connect()?; // fails now, typed, if the password is wrong
//! let page = imap.list(None, 100)?;
//! let messages = imap.fetch(&page.refs);
//! # Ok::<(), sealdex::SourceError>(())
//! ```
//!
//! - **mailboxes**: every selectable mailbox `LIST "" "*"` returns, except
//!   the virtual `\All` and `\Flagged` ones (their messages are in other
//!   mailboxes already). A mailbox with a special-use role (RFC 6154) gets
//!   the role as its folder (`Sent`, `Trash`, `Junk`, `Archive`, `Drafts`),
//!   whatever the server calls it, so `in:sent` finds sent mail on every
//!   server; the others keep their name as the server spells it (modified
//!   UTF-7, the server's delimiter), as the Maildir backend does.
//! - **id**: `MAILBOX/UIDVALIDITY/UID`, kept across moves (see `state.rs`:
//!   a move is recognised by a fingerprint of the Message-ID header,
//!   INTERNALDATE and size, and becomes a patch, not a refetch).
//! - **order**: by mailbox name, then UID.
//! - **flags**: `\Seen` absent is [`Flags::UNREAD`], `\Flagged` is
//!   [`Flags::FLAGGED`].
//! - **fetching**: `UID FETCH … (UID FLAGS BODY.PEEK[])` on a mailbox opened
//!   with `EXAMINE` (read-only), in chunks of [`Imap::with_fetch_chunk`]
//!   messages: indexing never marks mail as read, and one response stays
//!   bounded. A message above the size limit is refused from the size the
//!   listing reported, without being downloaded.
//!
//! # Incremental sync
//!
//! The sync token holds each mailbox's UIDVALIDITY, UIDNEXT, message count
//! and HIGHESTMODSEQ, and per message its UID, flags and fingerprint
//! (about 15 bytes). [`Source::changes`] asks for every mailbox's status
//! in one `LIST … RETURN (STATUS …)` (LIST-STATUS; one `STATUS` each where
//! the server lacks it) and leaves a mailbox whose status is unchanged
//! alone: with CONDSTORE, a no-change run costs one round trip and no
//! message data, and returns the token it was given, byte for byte. For a
//! changed mailbox:
//!
//! - with QRESYNC, `UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE m VANISHED)`
//!   returns only the messages whose flags changed or that are new, and the
//!   UIDs expunged since `m`;
//! - without it, `UID FETCH 1:* (UID FLAGS)` and a comparison with the
//!   token;
//! - a changed UIDVALIDITY means the old UIDs mean nothing: the mailbox is
//!   listed again, and its messages come back as moves (same fingerprint,
//!   no refetch) where the server kept them.
//!
//! New messages cost one header fetch (`BODY.PEEK[HEADER.FIELDS
//! (MESSAGE-ID)] INTERNALDATE RFC822.SIZE`) for their fingerprint; only
//! those that are not moves are fetched whole afterwards.
//!
//! # Failures
//!
//! - A refused login is [`SourceErrorKind::Auth`]: never retried, since
//!   retrying a wrong password can lock the account.
//! - A dropped connection or a timeout is retried here, with exponential
//!   backoff, on a new connection ([`Imap::with_retries`]); when the
//!   retries are spent it is a retryable error. During [`Source::fetch`] it
//!   is reported through [`Source::take_failure`], so the pipeline stops
//!   before writing that batch and its checkpoint: the next run resumes
//!   from the cursor and nothing is lost.
//! - A `NO` or `BAD` for a fetch is retried message by message, and a
//!   message the server refuses is a per-message [`FetchError`].
//! - A server that ends the session in the middle of a fetch (`BYE`, or
//!   closing the connection: Dovecot's default for a message it cannot
//!   read) gets the messages asked for again one by one, on new
//!   connections; one that ends the session twice in a row is a
//!   per-message [`FetchError`], so one unreadable message does not stop
//!   every run at the same place. Its fingerprint is then taken without
//!   the Message-ID header, which the server cannot read either.
//!
//! [`SourceErrorKind::Auth`]: crate::SourceErrorKind::Auth

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use imap::types::{Fetch, UnsolicitedResponse};
use imap_proto::NameAttribute;
use tracing::{debug, warn};

use crate::record::Flags;
use crate::source::{
    Changes, Cursor, FetchError, MessageRef, Page, RawMessage, Source, SourceError, SyncToken,
};

mod conn;
mod state;

pub use conn::{Account, Auth, Security};
use conn::{Caps, ImapSession, Settings, classify};
use state::{Diff, ListCursor, Locator, Mailbox, Msg, New, State, Status, fingerprint};

/// The items a new message's fingerprint is made of.
const FINGERPRINT_ITEMS: &str =
    "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])";
/// The same without the header, for a server that ends the session when
/// it cannot read a message (it knows the rest without opening it).
const FINGERPRINT_ITEMS_NO_HEADER: &str = "(UID FLAGS INTERNALDATE RFC822.SIZE)";

/// Counts of what the source asked the server for, for tests and
/// benchmarks of the incremental sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImapStats {
    /// Logins (the first connection and every reconnection).
    pub connections: u64,
    /// Whole messages fetched (`BODY.PEEK[]`).
    pub bodies_fetched: u64,
    /// Their bytes.
    pub body_bytes: u64,
    /// Fingerprints fetched for new messages (headers only).
    pub fingerprints_fetched: u64,
    /// Mailboxes whose messages were compared because their status changed.
    pub mailboxes_compared: u64,
}

/// A connection and what is selected on it.
struct Conn {
    session: ImapSession,
    caps: Caps,
    /// The mailbox open (read-only), and its UIDVALIDITY.
    selected: Option<(String, u32)>,
}

impl Conn {
    /// Opens `mailbox` read-only (EXAMINE) unless it is open; returns its
    /// status.
    fn examine(&mut self, mailbox: &str) -> Result<Status, imap::Error> {
        let mb = self.session.examine(mailbox)?;
        let status = Status {
            uidvalidity: mb.uid_validity.unwrap_or(0),
            uidnext: mb.uid_next.unwrap_or(0),
            messages: mb.exists,
            modseq: mb.highest_mod_seq,
        };
        self.selected = Some((mailbox.to_owned(), status.uidvalidity));
        Ok(status)
    }

    /// Opens `mailbox` unless it is already the one open with UIDVALIDITY
    /// `uidvalidity`; returns the UIDVALIDITY it has.
    fn ensure(&mut self, mailbox: &str, uidvalidity: u32) -> Result<u32, imap::Error> {
        match &self.selected {
            Some((m, uv)) if m == mailbox && *uv == uidvalidity => Ok(*uv),
            _ => Ok(self.examine(mailbox)?.uidvalidity),
        }
    }
}

/// An IMAP account as a [`Source`]: see the [module documentation](self).
pub struct Imap {
    account: Account,
    auth: Auth,
    settings: Settings,
    name: String,
    max_message_bytes: u64,
    fetch_chunk: usize,
    retries: u32,
    retry_delay: Duration,
    conn: Option<Conn>,
    /// The mailboxes of the current listing pass.
    mailboxes: Option<Vec<Mailbox>>,
    /// The UIDs of the mailbox being listed: (name, UIDVALIDITY, UIDs).
    uids: Option<(String, u32, Vec<u32>)>,
    /// A failure of the whole source during the last fetch.
    failure: Option<SourceError>,
    stats: ImapStats,
}

impl std::fmt::Debug for Imap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("account", &self.account)
            .field("auth", &self.auth)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Imap {
    /// The source for `account`, logging in with `auth`. Nothing is sent
    /// until [`Imap::connect`] or the first call of the [`Source`].
    pub fn new(account: Account, auth: Auth) -> Self {
        Imap {
            name: account.url(),
            account,
            auth,
            settings: Settings {
                ca_file: None,
                timeout: Duration::from_secs(60),
                condstore: true,
            },
            max_message_bytes: super::DEFAULT_MAX_MESSAGE_BYTES,
            fetch_chunk: 64,
            retries: 4,
            retry_delay: Duration::from_millis(500),
            conn: None,
            mailboxes: None,
            uids: None,
            failure: None,
            stats: ImapStats::default(),
        }
    }

    /// Trusts the CA certificates of a PEM file besides the system's roots,
    /// for a server with a self-signed certificate.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.ca_file = Some(path.into());
        self
    }

    /// How long to wait to connect and for each read or write. Default 60 s.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Whether to use CONDSTORE and QRESYNC (RFC 7162) when the server
    /// offers them. Default: yes. Off, a sync compares the UIDs and flags
    /// of every mailbox (`UID FETCH 1:* (UID FLAGS)`, about 40 bytes a
    /// message) instead of asking what changed since the last one: for a
    /// server whose mod-sequences cannot be trusted, as some clients let
    /// their users choose. Moves, expunges and flag changes are found
    /// either way, with no body fetched.
    pub fn with_condstore(mut self, use_it: bool) -> Self {
        self.settings.condstore = use_it;
        self
    }

    /// How many times a dropped connection or a timeout is retried on a new
    /// connection before the call fails, and the first delay (doubled each
    /// time, at most 30 s). Default: 4 times from 0.5 s.
    pub fn with_retries(mut self, retries: u32, first_delay: Duration) -> Self {
        self.retries = retries;
        self.retry_delay = first_delay;
        self
    }

    /// The largest message fetched; larger ones are per-message failures,
    /// refused from their size without being downloaded. Default:
    /// [`DEFAULT_MAX_MESSAGE_BYTES`](super::DEFAULT_MAX_MESSAGE_BYTES).
    pub fn with_max_message_bytes(mut self, max: u64) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// Most messages in one `UID FETCH`. Default 64.
    pub fn with_fetch_chunk(mut self, n: usize) -> Self {
        self.fetch_chunk = n.max(1);
        self
    }

    /// The account.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Connects and logs in now, so that a wrong password or an unreachable
    /// server is reported before anything else happens.
    pub fn connect(&mut self) -> Result<(), SourceError> {
        if self.conn.is_none() {
            self.reconnect()?;
        }
        Ok(())
    }

    /// What the source asked the server for since it was made.
    #[doc(hidden)]
    pub fn stats(&self) -> ImapStats {
        self.stats
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        self.conn = None;
        let (session, caps) = conn::connect(&self.account, &self.auth, &self.settings)?;
        self.stats.connections += 1;
        debug!(
            account = %self.name,
            condstore = caps.condstore,
            qresync = caps.qresync,
            "IMAP connected"
        );
        self.conn = Some(Conn {
            session,
            caps,
            selected: None,
        });
        Ok(())
    }

    /// Runs `op` on a connection, reconnecting and retrying with backoff
    /// when the connection drops or times out. `op` runs again from the
    /// start after a reconnection, so it must select what it needs.
    fn with_conn<R>(
        &mut self,
        what: &str,
        mut op: impl FnMut(&mut Conn, &mut ImapStats) -> Result<R, imap::Error>,
    ) -> Result<R, SourceError> {
        let mut attempt = 0u32;
        loop {
            let result = match self.conn.as_mut() {
                Some(c) => op(c, &mut self.stats).map_err(|e| classify(what, e)),
                None => self.reconnect().and_then(|()| match self.conn.as_mut() {
                    Some(c) => op(c, &mut self.stats).map_err(|e| classify(what, e)),
                    None => Err(SourceError::other("no IMAP connection")),
                }),
            };
            match result {
                Ok(r) => return Ok(r),
                Err(e) if e.is_retryable() => {
                    // The connection's state is unknown: start afresh.
                    self.conn = None;
                    if attempt >= self.retries {
                        return Err(SourceError::new(
                            e.kind(),
                            format!("{} (after {} retries)", e.message(), self.retries),
                        ));
                    }
                    let delay = self
                        .retry_delay
                        .saturating_mul(1 << attempt.min(16))
                        .min(Duration::from_secs(30));
                    warn!(error = %e, attempt = attempt + 1, ?delay, "IMAP: retrying");
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every selectable mailbox with its role and status, sorted by name.
    fn list_mailboxes(&mut self) -> Result<Vec<Mailbox>, SourceError> {
        self.with_conn("LIST", |c, _| {
            let mut items = String::from("(MESSAGES UIDNEXT UIDVALIDITY");
            if c.caps.condstore {
                items.push_str(" HIGHESTMODSEQ");
            }
            items.push(')');
            let mut out = Vec::new();
            if c.caps.list_status {
                let names = c.session.list_status(Some(""), Some("*"), &items)?;
                for (name, status) in names.iter() {
                    let Some(folder) = folder_of(name.name(), name.attributes()) else {
                        continue;
                    };
                    let status = match status {
                        Some(mb) => status_of(mb),
                        None => status_of(&c.session.status(name.name(), &items)?),
                    };
                    out.push(mailbox(name.name(), folder, status));
                }
            } else {
                let names = c.session.list(Some(""), Some("*"))?;
                let found: Vec<(String, String)> = names
                    .iter()
                    .filter_map(|n| {
                        folder_of(n.name(), n.attributes()).map(|f| (n.name().to_owned(), f))
                    })
                    .collect();
                for (name, folder) in found {
                    let status = status_of(&c.session.status(&name, &items)?);
                    out.push(mailbox(&name, folder, status));
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    /// The sorted UIDs of `mailbox` (cached for the listing pass).
    fn uids_of(&mut self, mailbox: &Mailbox) -> Result<(u32, Vec<u32>), SourceError> {
        if let Some((name, uv, uids)) = &self.uids
            && *name == mailbox.name
        {
            return Ok((*uv, uids.clone()));
        }
        let name = mailbox.name.clone();
        let (uv, uids) = self.with_conn("UID SEARCH", |c, _| {
            let status = c.examine(&name)?;
            let mut uids: Vec<u32> = c.session.uid_search("ALL")?.into_iter().collect();
            uids.sort_unstable();
            Ok((status.uidvalidity, uids))
        })?;
        self.uids = Some((name, uv, uids.clone()));
        Ok((uv, uids))
    }

    /// Fetches one chunk of one mailbox. Network failures are retried by
    /// [`Imap::with_conn`]; a `NO` or `BAD` for the chunk is retried message
    /// by message.
    fn fetch_chunk(
        &mut self,
        loc: &Locator,
        refs: &[(&MessageRef, u32)],
    ) -> Result<Vec<Result<RawMessage, FetchError>>, SourceError> {
        self.fetch_chunk_isolating(loc, refs, false)
    }

    /// [`Imap::fetch_chunk`]; when the server ends the session in the
    /// middle of the fetch (`BYE`, or the connection closed), the messages
    /// are fetched again one by one on new connections, and one whose fetch
    /// ends the session twice in a row is a per-message failure. Dovecot
    /// does this by default (`imap_fetch_failure = disconnect-immediately`)
    /// for a message it cannot read: without this, that one message would
    /// stop every run of the account at the same place. A server going
    /// away for good is still a failure of the whole source: the
    /// reconnection fails (after its retries), and that error is returned.
    fn fetch_chunk_isolating(
        &mut self,
        loc: &Locator,
        refs: &[(&MessageRef, u32)],
        second_try: bool,
    ) -> Result<Vec<Result<RawMessage, FetchError>>, SourceError> {
        let uids: Vec<u32> = refs.iter().map(|(_, uid)| *uid).collect();
        let max = self.max_message_bytes;
        let mut hung_up: Option<String> = None;
        let (uidvalidity, got) = self.with_conn("UID FETCH", |c, stats| {
            hung_up = None;
            let uv = c.ensure(&loc.mailbox, loc.uidvalidity)?;
            if uv != loc.uidvalidity {
                return Ok((uv, HashMap::new()));
            }
            let mut got: HashMap<u32, Result<(Vec<u8>, Flags), String>> = HashMap::new();
            match c
                .session
                .uid_fetch(uid_set(&uids), "(UID FLAGS BODY.PEEK[])")
            {
                Ok(fetches) => {
                    for f in fetches.iter() {
                        if let Some((uid, r)) = body_of(f, max, stats) {
                            got.insert(uid, r);
                        }
                    }
                }
                Err(imap::Error::No(_) | imap::Error::Bad(_)) => {
                    for &uid in &uids {
                        match c
                            .session
                            .uid_fetch(uid.to_string(), "(UID FLAGS BODY.PEEK[])")
                        {
                            Ok(fetches) => {
                                for f in fetches.iter() {
                                    if let Some((u, r)) = body_of(f, max, stats) {
                                        got.insert(u, r);
                                    }
                                }
                            }
                            Err(imap::Error::No(no)) => {
                                got.insert(
                                    uid,
                                    Err(format!("the server said NO: {}", no.information)),
                                );
                            }
                            Err(imap::Error::Bad(bad)) => {
                                got.insert(
                                    uid,
                                    Err(format!("the server said BAD: {}", bad.information)),
                                );
                            }
                            Err(e @ (imap::Error::Bye(_) | imap::Error::ConnectionLost)) => {
                                hung_up = Some(describe_hangup(&e));
                                return Ok((uv, got));
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e @ (imap::Error::Bye(_) | imap::Error::ConnectionLost)) => {
                    hung_up = Some(describe_hangup(&e));
                    return Ok((uv, got));
                }
                Err(e) => return Err(e),
            }
            // Flag changes other clients made meanwhile arrive unsolicited;
            // the next sync picks them up, so they are dropped here.
            let _ = c.session.take_all_unsolicited().count();
            Ok((uv, got))
        })?;
        if let Some(why) = hung_up {
            // The session is over; the next call connects again.
            self.conn = None;
            warn!(mailbox = %loc.mailbox, messages = refs.len(), reason = %why,
                "IMAP: the server ended the session during a fetch");
            if refs.len() > 1 {
                let mut out = Vec::with_capacity(refs.len());
                for r in refs {
                    out.extend(self.fetch_chunk_isolating(loc, std::slice::from_ref(r), false)?);
                }
                return Ok(out);
            }
            if !second_try {
                return self.fetch_chunk_isolating(loc, refs, true);
            }
            return Ok(refs
                .iter()
                .map(|(r, _)| {
                    Err(FetchError {
                        id: r.id.clone(),
                        reason: format!(
                            "the server ended the session each time this message was fetched \
                             ({why}): it cannot read it (see the server's log); retried later"
                        ),
                    })
                })
                .collect());
        }
        let mut got = got;
        Ok(refs
            .iter()
            .map(|(r, uid)| {
                let fail = |reason: String| FetchError {
                    id: r.id.clone(),
                    reason,
                };
                if uidvalidity != loc.uidvalidity {
                    return Err(fail(format!(
                        "the UIDVALIDITY of {} changed; the next sync lists it again",
                        loc.mailbox
                    )));
                }
                match got.remove(uid) {
                    Some(Ok((bytes, flags))) => Ok(RawMessage {
                        id: r.id.clone(),
                        bytes,
                        folder: Some(loc.folder.clone()),
                        labels: Vec::new(),
                        flags: Some(flags),
                        version: r.version.clone(),
                    }),
                    Some(Err(reason)) => Err(fail(reason)),
                    None => Err(fail(format!(
                        "no longer in {} on the server (expunged or moved)",
                        loc.mailbox
                    ))),
                }
            })
            .collect())
    }

    /// The state of the server now, compared with `old`: the new state and
    /// the changes.
    fn diff(&mut self, old: &State) -> Result<(State, Vec<crate::Change>), SourceError> {
        let current = self.list_mailboxes()?;
        let old_by_name: HashMap<&str, &Mailbox> =
            old.mailboxes.iter().map(|m| (m.name.as_str(), m)).collect();
        let mut diff = Diff::default();
        let mut state = State::default();
        let condstore = self.conn.as_ref().is_some_and(|c| c.caps.condstore);
        for mut mb in current {
            let prev = old_by_name.get(mb.name.as_str()).copied();
            match prev {
                Some(o) if o.status.uidvalidity == mb.status.uidvalidity => {
                    let unchanged = condstore
                        && o.status == mb.status
                        && o.status.modseq.is_some()
                        && o.folder == mb.folder;
                    if unchanged {
                        state.mailboxes.push(o.clone());
                        continue;
                    }
                    self.stats.mailboxes_compared += 1;
                    let (flags, vanished, status) = self.flags_since(o)?;
                    // The status the comparison was made at (EXAMINE's,
                    // taken with it), so nothing between is missed.
                    mb.status = status;
                    let (kept, fresh) = match &vanished {
                        Some(v) => diff.compare(o, &flags, |uid| !v.contains(&uid)),
                        None => diff.compare(o, &flags, |uid| flags.contains_key(&uid)),
                    };
                    mb.msgs = kept;
                    let at = state.mailboxes.len();
                    self.fingerprints(&mb, fresh.iter().map(|(u, _)| *u), at, &mut diff)?;
                    state.mailboxes.push(mb);
                }
                _ => {
                    if let Some(o) = prev {
                        debug!(mailbox = %o.name, "UIDVALIDITY changed: listing the mailbox again");
                        diff.all_gone(o);
                    }
                    self.stats.mailboxes_compared += 1;
                    let name = mb.name.clone();
                    let status = self.with_conn("EXAMINE", |c, _| c.examine(&name))?;
                    mb.status = status;
                    let at = state.mailboxes.len();
                    self.fingerprints_all(&mb, at, &mut diff)?;
                    state.mailboxes.push(mb);
                }
            }
        }
        for o in &old.mailboxes {
            if !state.mailboxes.iter().any(|m| m.name == o.name) {
                diff.all_gone(o);
            }
        }
        let changes = diff.finish(&mut state);
        Ok((state, changes))
    }

    /// The flags of the messages of `old`'s mailbox that changed since the
    /// token (QRESYNC) or of all of them, the UIDs expunged since (QRESYNC
    /// only), and the mailbox's status.
    #[allow(clippy::type_complexity)]
    fn flags_since(
        &mut self,
        old: &Mailbox,
    ) -> Result<(HashMap<u32, u8>, Option<HashSet<u32>>, Status), SourceError> {
        let name = old.name.clone();
        let since = old.status.modseq;
        self.with_conn("UID FETCH FLAGS", |c, _| {
            let status = c.examine(&name)?;
            let _ = c.session.take_all_unsolicited().count();
            let mut flags = HashMap::new();
            if let (true, Some(m)) = (c.caps.qresync, since) {
                let fetches = c
                    .session
                    .uid_fetch("1:*", format!("(UID FLAGS) (CHANGEDSINCE {m} VANISHED)"))?;
                for f in fetches.iter() {
                    if let Some(uid) = f.uid {
                        flags.insert(uid, imap_flags(f));
                    }
                }
                let mut vanished = HashSet::new();
                for u in c.session.take_all_unsolicited() {
                    if let UnsolicitedResponse::Vanished { uids, .. } = u {
                        for r in uids {
                            // Bounded by the UIDs the token knows: a range
                            // may span millions of never-seen UIDs.
                            let (lo, hi) = (*r.start(), *r.end());
                            for m in &old.msgs {
                                if m.uid >= lo && m.uid <= hi {
                                    vanished.insert(m.uid);
                                }
                            }
                        }
                    }
                }
                Ok((flags, Some(vanished), status))
            } else {
                if status.messages > 0 {
                    let fetches = c.session.uid_fetch("1:*", "(UID FLAGS)")?;
                    for f in fetches.iter() {
                        if let Some(uid) = f.uid {
                            flags.insert(uid, imap_flags(f));
                        }
                    }
                }
                let _ = c.session.take_all_unsolicited().count();
                Ok((flags, None, status))
            }
        })
    }

    /// Fetches the fingerprints of `uids` in `mb` (the new messages) and
    /// adds them to `diff`.
    fn fingerprints(
        &mut self,
        mb: &Mailbox,
        uids: impl Iterator<Item = u32>,
        at: usize,
        diff: &mut Diff,
    ) -> Result<(), SourceError> {
        let uids: Vec<u32> = uids.collect();
        for chunk in uids.chunks(1024) {
            let set = uid_set(chunk);
            let new = self.fetch_fingerprints(&mb.name, mb.status.uidvalidity, &set, at)?;
            diff.new.extend(new);
        }
        Ok(())
    }

    /// Fetches the fingerprints of every message of `mb`.
    fn fingerprints_all(
        &mut self,
        mb: &Mailbox,
        at: usize,
        diff: &mut Diff,
    ) -> Result<(), SourceError> {
        if mb.status.messages == 0 {
            return Ok(());
        }
        let new = self.fetch_fingerprints(&mb.name, mb.status.uidvalidity, "1:*", at)?;
        diff.new.extend(new);
        Ok(())
    }

    fn fetch_fingerprints(
        &mut self,
        mailbox: &str,
        uidvalidity: u32,
        set: &str,
        at: usize,
    ) -> Result<Vec<New>, SourceError> {
        let mut hung_up = None;
        let mut items = FINGERPRINT_ITEMS;
        let new = self.with_conn("UID FETCH fingerprints", |c, stats| {
            c.ensure(mailbox, uidvalidity)?;
            let fetches = match c.session.uid_fetch(set, items) {
                Ok(f) => f,
                // The server cannot read a message's header (see
                // `fetch_chunk_isolating`): fingerprint these without the
                // Message-ID, from what it knows without opening them.
                Err(e @ (imap::Error::Bye(_) | imap::Error::ConnectionLost))
                    if items == FINGERPRINT_ITEMS =>
                {
                    hung_up = Some(describe_hangup(&e));
                    items = FINGERPRINT_ITEMS_NO_HEADER;
                    return Err(imap::Error::ConnectionLost);
                }
                Err(e) => return Err(e),
            };
            let _ = c.session.take_all_unsolicited().count();
            let mut out = Vec::with_capacity(fetches.len());
            for f in fetches.iter() {
                let Some(uid) = f.uid else { continue };
                let size = f.size.unwrap_or(0);
                let date = f.internal_date().map_or(0, |d| d.timestamp());
                out.push(New {
                    mailbox: at,
                    uid,
                    flags: imap_flags(f),
                    fp: fingerprint(f.header().unwrap_or_default(), date, size),
                    size,
                });
            }
            stats.fingerprints_fetched += out.len() as u64;
            Ok(out)
        })?;
        if let Some(why) = hung_up {
            warn!(%mailbox, reason = %why,
                "IMAP: the server ended the session fetching headers; fingerprinted without them");
        }
        Ok(new)
    }
}

/// What a server's hanging up during a fetch is called in failures.
fn describe_hangup(e: &imap::Error) -> String {
    match e {
        imap::Error::Bye(b) => format!("BYE {}", b.information),
        _ => "it closed the connection".to_string(),
    }
}

/// The folder a mailbox's records get, or `None` for a mailbox that is not
/// listed (not selectable, or a virtual one holding other mailboxes'
/// messages).
fn folder_of(name: &str, attrs: &[NameAttribute<'_>]) -> Option<String> {
    let mut folder = name.to_owned();
    for a in attrs {
        match a {
            NameAttribute::NoSelect | NameAttribute::All | NameAttribute::Flagged => return None,
            NameAttribute::Extension(e) if e.eq_ignore_ascii_case("\\NonExistent") => return None,
            NameAttribute::Sent => folder = "Sent".into(),
            NameAttribute::Trash => folder = "Trash".into(),
            NameAttribute::Junk => folder = "Junk".into(),
            NameAttribute::Archive => folder = "Archive".into(),
            NameAttribute::Drafts => folder = "Drafts".into(),
            _ => {}
        }
    }
    if name.eq_ignore_ascii_case("INBOX") {
        folder = "INBOX".into();
    }
    Some(folder)
}

fn status_of(mb: &imap::types::Mailbox) -> Status {
    Status {
        uidvalidity: mb.uid_validity.unwrap_or(0),
        uidnext: mb.uid_next.unwrap_or(0),
        messages: mb.exists,
        modseq: mb.highest_mod_seq,
    }
}

fn mailbox(name: &str, folder: String, status: Status) -> Mailbox {
    Mailbox {
        name: name.to_owned(),
        folder,
        status,
        msgs: Vec::new(),
    }
}

/// The index's flags of a FETCH response.
fn flags_of(f: &Fetch<'_>) -> Flags {
    use imap::types::Flag;
    let mut flags = Flags::UNREAD;
    for fl in f.flags() {
        match fl {
            Flag::Seen => flags.set(Flags::UNREAD, false),
            Flag::Flagged => flags.set(Flags::FLAGGED, true),
            _ => {}
        }
    }
    flags
}

fn imap_flags(f: &Fetch<'_>) -> u8 {
    state::flag_bits(flags_of(f))
}

/// The UID and body of a FETCH response, or the reason it cannot be used.
#[allow(clippy::type_complexity)]
fn body_of(
    f: &Fetch<'_>,
    max: u64,
    stats: &mut ImapStats,
) -> Option<(u32, Result<(Vec<u8>, Flags), String>)> {
    let uid = f.uid?;
    let r = match f.body() {
        Some(b) if b.len() as u64 > max => Err(super::too_large(b.len() as u64, max)),
        Some(b) => {
            stats.bodies_fetched += 1;
            stats.body_bytes += b.len() as u64;
            Ok((b.to_vec(), flags_of(f)))
        }
        None => Err("the server returned no body".to_string()),
    };
    Some((uid, r))
}

/// A UID set, ranges collapsed: `1:3,7,9:10`.
fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl Source for Imap {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        let limit = limit.max(1);
        let cursor = cursor.map(ListCursor::decode).transpose()?;
        if cursor.is_none() || self.mailboxes.is_none() {
            self.mailboxes = Some(self.list_mailboxes()?);
            self.uids = None;
        }
        let mailboxes = self.mailboxes.clone().unwrap_or_default();
        let total = mailboxes.iter().map(|m| u64::from(m.status.messages)).sum();
        // Where to start: the cursor's mailbox (or the next one by name if
        // it is gone), after its last UID if its UIDVALIDITY is the same.
        let (mut i, mut after) = match &cursor {
            None => (0, 0),
            Some(c) => {
                let i = mailboxes.partition_point(|m| m.name < c.mailbox);
                let same = mailboxes.get(i).is_some_and(|m| m.name == c.mailbox);
                (i, if same { Some(c) } else { None }.map_or(0, |c| c.after))
            }
        };
        let mut refs = Vec::new();
        let mut next = None;
        while let Some(mb) = mailboxes.get(i) {
            let (uv, uids) = self.uids_of(mb)?;
            if cursor
                .as_ref()
                .is_some_and(|c| c.mailbox == mb.name && c.uidvalidity != uv)
            {
                after = 0;
            }
            let start = uids.partition_point(|&u| u <= after);
            let take: Vec<u32> = uids[start..]
                .iter()
                .copied()
                .take(limit - refs.len())
                .collect();
            if !take.is_empty() {
                let sizes = self.sizes(&mb.name, uv, &take)?;
                let at = Mailbox {
                    status: Status {
                        uidvalidity: uv,
                        ..mb.status
                    },
                    ..mb.clone()
                };
                for uid in &take {
                    let m = Msg {
                        uid: *uid,
                        flags: 0,
                        fp: 0,
                        id: None,
                    };
                    refs.push(at.message_ref(&m, sizes.get(uid).map(|&s| u64::from(s))));
                }
            }
            if refs.len() >= limit {
                let last = take.last().copied().unwrap_or(after);
                next = Some(
                    ListCursor {
                        mailbox: mb.name.clone(),
                        uidvalidity: uv,
                        after: last,
                    }
                    .encode(),
                );
                break;
            }
            i += 1;
            after = 0;
        }
        Ok(Page {
            refs,
            next,
            total: Some(total),
        })
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        // A failure not taken after the last fetch is not this one's.
        self.failure = None;
        let mut out: Vec<Option<Result<RawMessage, FetchError>>> = vec![None; refs.len()];
        // Group by mailbox and UIDVALIDITY, keeping each ref's position.
        let mut groups: Vec<(Locator, Vec<(usize, u32)>)> = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            let Some(loc) = Locator::decode(&r.locator) else {
                out[i] = Some(Err(FetchError {
                    id: r.id.clone(),
                    reason: "invalid IMAP locator".into(),
                }));
                continue;
            };
            if r.size.is_some_and(|s| s > self.max_message_bytes) {
                out[i] = Some(Err(FetchError {
                    id: r.id.clone(),
                    reason: super::too_large(r.size.unwrap_or(0), self.max_message_bytes),
                }));
                continue;
            }
            let uid = loc.uid;
            let key = Locator { uid: 0, ..loc };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push((i, uid)),
                None => groups.push((key, vec![(i, uid)])),
            }
        }
        'groups: for (loc, members) in groups {
            for chunk in members.chunks(self.fetch_chunk) {
                if self.failure.is_some() {
                    break 'groups;
                }
                let pairs: Vec<(&MessageRef, u32)> =
                    chunk.iter().map(|&(i, uid)| (&refs[i], uid)).collect();
                match self.fetch_chunk(&loc, &pairs) {
                    Ok(results) => {
                        for (&(i, _), r) in chunk.iter().zip(results) {
                            out[i] = Some(r);
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "IMAP fetch failed");
                        self.failure = Some(e);
                    }
                }
            }
        }
        let why = self
            .failure
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "not fetched".into());
        out.into_iter()
            .zip(refs)
            .map(|(o, r)| {
                o.unwrap_or_else(|| {
                    Err(FetchError {
                        id: r.id.clone(),
                        reason: why.clone(),
                    })
                })
            })
            .collect()
    }

    fn take_failure(&mut self) -> Option<SourceError> {
        self.failure.take()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        let (state, _) = self.diff(&State::default())?;
        Ok(state.encode())
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        let old = State::decode(since)?;
        self.mailboxes = None;
        self.uids = None;
        let (state, changes) = self.diff(&old)?;
        let token = if changes.is_empty() && state == old {
            since.clone()
        } else {
            state.encode()
        };
        Ok(Changes { changes, token })
    }
}

impl Imap {
    /// The RFC822.SIZE of `uids` in `mailbox`.
    fn sizes(
        &mut self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<HashMap<u32, u32>, SourceError> {
        let set = uid_set(uids);
        self.with_conn("UID FETCH RFC822.SIZE", |c, _| {
            c.ensure(mailbox, uidvalidity)?;
            let fetches = c.session.uid_fetch(&set, "(UID RFC822.SIZE)")?;
            let _ = c.session.take_all_unsolicited().count();
            Ok(fetches
                .iter()
                .filter_map(|f| Some((f.uid?, f.size?)))
                .collect())
        })
    }
}

impl Drop for Imap {
    fn drop(&mut self) {
        // A polite LOGOUT, so the server logs the session's counts; a
        // connection that is already gone is simply dropped.
        if let Some(mut c) = self.conn.take() {
            let _ = c.session.logout();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[3, 1, 2, 2]), "1:3");
        assert_eq!(uid_set(&[]), "");
    }

    /// RFC 8474's EMAILID would match a moved message exactly, where the
    /// fingerprint of `state.rs` matches it by Message-ID, arrival time and
    /// size. The source does not ask for it because the parser it reads
    /// responses with cannot: imap-proto 0.16 fails on the item, and the
    /// `imap` crate takes a response line it cannot parse for the server
    /// hanging up (`Error::Bye`), raw commands included. Gmail's
    /// X-GM-MSGID, the same idea, is read. When this test fails, the
    /// parser has learnt EMAILID: ask for it with the fingerprint (when
    /// CAPABILITY has OBJECTID) and match moves by it.
    #[test]
    fn the_response_parser_cannot_read_emailid_yet() {
        use imap_proto::parser::parse_response;
        // As in the examples of RFC 8474.
        let emailid = b"* 1 FETCH (UID 5 EMAILID (M6d99ac3275bb4e))\r\n";
        assert!(parse_response(emailid).is_err());
        let gmail = b"* 1 FETCH (UID 5 X-GM-MSGID 1278455344230334865)\r\n";
        assert!(parse_response(gmail).is_ok());
    }

    #[test]
    fn roles_become_folders() {
        assert_eq!(
            folder_of("Sent Items", &[NameAttribute::Sent]).as_deref(),
            Some("Sent")
        );
        assert_eq!(folder_of("inbox", &[]).as_deref(), Some("INBOX"));
        assert_eq!(folder_of("Lists/rust", &[]).as_deref(), Some("Lists/rust"));
        assert_eq!(folder_of("[Gmail]/All Mail", &[NameAttribute::All]), None);
        assert_eq!(folder_of("[Gmail]", &[NameAttribute::NoSelect]), None);
    }
}
