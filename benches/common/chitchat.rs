//! The ChitChat chat corpus (258,145 messages in 7,168 conversations) as a
//! sealdex [`Source`] and [`Decryptor`], for benches and tests.
//!
//! The corpus is one JSON file, `$SEALDEX_CORPORA/chitchat/dataset.json`:
//!
//! ```text
//! { conv_id: { "messages": [ [ {"text", "timestamp", "sender"}, ... ], ... ], ... }, ... }
//! ```
//!
//! where each inner array is one *turn* (consecutive messages of one
//! sender). [`ChitChat::open`] parses it once with serde_json and keeps a
//! compact table: one entry per message with its text, timestamp and
//! interned sender and conversation, ~40 bytes plus the text each.
//!
//! - **id**: `"{conv_id}/{turn}/{n}"`, turn and n 0-based; stable whatever
//!   the order of the conversations in the file.
//! - **order**: by conversation id, then turn, then position in the turn.
//!   Conversations are sorted by id, not kept in file order, so that the
//!   listing does not depend on how the JSON was written.
//! - **cursor**: the index of the next message, 8 bytes little-endian.
//! - **raw bytes** (what [`Source::fetch`] returns and [`ChatDecryptor`]
//!   reads): a small JSON object, see [`ChatWire`]. A real chat backend
//!   would hand over an encrypted blob; JSON keeps the corpus's fields
//!   without inventing a format.
//! - **sync token and changes**: the corpus is immutable, so the token is just
//!   the message count and [`Source::changes`] reports nothing while the
//!   count is unchanged. A different count means a different file; since the
//!   ids are stable and re-indexing is an idempotent upsert, every current
//!   message is then reported as created. Deletions and edits of an existing
//!   message cannot be seen this way: rebuild the index after replacing the
//!   file with a different corpus.
//!
//! Include it from a bench with `mod common;` (see `benches/common/mod.rs`)
//! or from a test with
//! `#[path = "../benches/common/chitchat.rs"] mod chitchat;`.

// Each bench or test uses part of this file; the rest is not dead code.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use sealdex::{
    Body, Changes, ContentKind, Cursor, DecryptError, Decryptor, FetchError, Flags, Message,
    MessageRef, Page, RawMessage, Record, Source, SourceError, SyncToken,
};
use serde::{Deserialize, Serialize};

/// The folder every chat message is in.
pub const FOLDER: &str = "chat";

/// What the dataset holds for one message.
#[derive(Deserialize)]
struct MessageJson {
    text: String,
    timestamp: String,
    sender: String,
}

/// What the dataset holds for one conversation; other fields (`prompt`,
/// `start`, `ratings`) are ignored.
#[derive(Deserialize)]
struct ConversationJson {
    messages: Vec<Vec<MessageJson>>,
}

/// One message, compactly: conversation and sender are indices into the
/// corpus's tables.
#[derive(Debug)]
struct ChatMessage {
    conversation: u32,
    turn: u32,
    n: u32,
    sender: u32,
    text: Box<str>,
    timestamp: Box<str>,
}

/// A conversation: its id and its participants in order of first message.
#[derive(Debug)]
struct Conversation {
    id: Box<str>,
    participants: Vec<u32>,
}

/// The raw bytes of a fetched chat message: this JSON object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatWire {
    /// The message text.
    pub text: String,
    /// RFC 3339, as in the corpus (`2018-05-02T19:38:15Z`).
    pub timestamp: String,
    /// The sender's id.
    pub sender: String,
    /// The conversation's id.
    pub conversation: String,
    /// Everyone who wrote in the conversation, the sender included.
    pub participants: Vec<String>,
}

/// The ChitChat corpus as a [`Source`]. See the [module documentation](self).
#[derive(Debug)]
pub struct ChitChat {
    name: String,
    messages: Vec<ChatMessage>,
    conversations: Vec<Conversation>,
    senders: Vec<Box<str>>,
}

impl ChitChat {
    /// Reads and parses the dataset at `path` (the `dataset.json` file).
    /// Fails with the path and the reason when it cannot be read or is not
    /// the expected JSON.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| SourceError::io(format!("cannot read {}", path.display()), &e))?;
        // A BTreeMap orders the conversations by id: the stable listing order.
        let parsed: BTreeMap<String, ConversationJson> =
            serde_json::from_slice(&bytes).map_err(|e| {
                SourceError::other(format!("{} is not a ChitChat dataset: {e}", path.display()))
            })?;
        drop(bytes);

        let mut sender_index: HashMap<String, u32> = HashMap::new();
        let mut senders: Vec<Box<str>> = Vec::new();
        let mut conversations = Vec::with_capacity(parsed.len());
        let mut messages = Vec::new();
        let too_many =
            || SourceError::other(format!("{} has more than 2^32 entries", path.display()));
        for (conv_id, conv) in parsed {
            let conversation = u32::try_from(conversations.len()).map_err(|_| too_many())?;
            let mut participants: Vec<u32> = Vec::new();
            for (turn, turn_messages) in conv.messages.into_iter().enumerate() {
                for (n, m) in turn_messages.into_iter().enumerate() {
                    let sender = match sender_index.get(&m.sender) {
                        Some(&i) => i,
                        None => {
                            let i = u32::try_from(senders.len()).map_err(|_| too_many())?;
                            senders.push(m.sender.as_str().into());
                            sender_index.insert(m.sender, i);
                            i
                        }
                    };
                    if !participants.contains(&sender) {
                        participants.push(sender);
                    }
                    messages.push(ChatMessage {
                        conversation,
                        turn: u32::try_from(turn).map_err(|_| too_many())?,
                        n: u32::try_from(n).map_err(|_| too_many())?,
                        sender,
                        text: m.text.into_boxed_str(),
                        timestamp: m.timestamp.into_boxed_str(),
                    });
                }
            }
            conversations.push(Conversation {
                id: conv_id.into_boxed_str(),
                participants,
            });
        }
        messages.shrink_to_fit();
        let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(ChitChat {
            name: format!("chitchat:{}", shown.display()),
            messages,
            conversations,
            senders,
        })
    }

    /// The number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether the corpus has no message.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Keeps the first `n` messages in listing order (a subset for
    /// profiling runs); the conversations keep their full participant lists.
    pub fn truncate(&mut self, n: usize) {
        self.messages.truncate(n);
    }

    /// The id of message `m`: `"{conv_id}/{turn}/{n}"`.
    fn id(&self, m: &ChatMessage) -> String {
        format!(
            "{}/{}/{}",
            self.conversations[m.conversation as usize].id, m.turn, m.n
        )
    }

    /// The other participants of `m`'s conversation, one per line.
    fn recipients(&self, m: &ChatMessage) -> String {
        self.conversations[m.conversation as usize]
            .participants
            .iter()
            .filter(|p| **p != m.sender)
            .map(|p| &*self.senders[*p as usize])
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The raw form of message `m` that [`ChatDecryptor`] reads.
    fn wire(&self, m: &ChatMessage) -> ChatWire {
        let conversation = &self.conversations[m.conversation as usize];
        ChatWire {
            text: m.text.to_string(),
            timestamp: m.timestamp.to_string(),
            sender: self.senders[m.sender as usize].to_string(),
            conversation: conversation.id.to_string(),
            participants: conversation
                .participants
                .iter()
                .map(|p| self.senders[*p as usize].to_string())
                .collect(),
        }
    }

    /// The reference of message `i`.
    fn message_ref(&self, i: usize) -> MessageRef {
        let m = &self.messages[i];
        MessageRef {
            id: self.id(m),
            locator: (i as u64).to_le_bytes().to_vec(),
            // Immutable corpus: no version needed to detect edits.
            version: None,
            size: Some(m.text.len() as u64),
        }
    }

    /// Records built straight from the corpus, as the pipeline would make
    /// them from [`ChatDecryptor`]'s messages (the text needs no cleaning),
    /// for benches that start from extracted text. `limit` keeps the first
    /// messages in listing order.
    pub fn records(&self, limit: Option<usize>) -> Vec<Record> {
        let n = limit.unwrap_or(usize::MAX).min(self.messages.len());
        self.messages[..n]
            .iter()
            .map(|m| Record {
                id: self.id(m),
                source: self.name.clone(),
                timestamp: parse_timestamp(&m.timestamp),
                kind: ContentKind::Chat,
                subject: String::new(),
                body: m.text.to_string(),
                from: self.senders[m.sender as usize].to_string(),
                to: self.recipients(m),
                attachments: String::new(),
                folders: vec![FOLDER.to_string()],
                flags: Flags::empty(),
                version: None,
                ..Record::default()
            })
            .collect()
    }

    /// The first `limit` messages as lines of sealdex's JSON Lines op
    /// format ([`sealdex::jsonl`], what `sealdex import` reads): an upsert
    /// of kind `chat` each, the conversation its folder, the other
    /// participants its recipients.
    pub fn jsonl(&self, limit: Option<usize>) -> Vec<String> {
        let n = limit.unwrap_or(usize::MAX).min(self.messages.len());
        self.messages[..n]
            .iter()
            .map(|m| {
                let conversation = &self.conversations[m.conversation as usize];
                serde_json::json!({
                    "op": "upsert",
                    "id": self.id(m),
                    "kind": "chat",
                    "date": &*m.timestamp,
                    "from": &*self.senders[m.sender as usize],
                    "to": self.recipients(m),
                    "body": &*m.text,
                    "folders": [&*conversation.id],
                })
                .to_string()
            })
            .collect()
    }

    fn token(&self) -> SyncToken {
        let mut t = TOKEN_TAG.to_vec();
        t.extend_from_slice(&(self.messages.len() as u64).to_le_bytes());
        SyncToken(t)
    }
}

/// Leads every sync token, so a token from another source is refused
/// rather than misread.
const TOKEN_TAG: &[u8] = b"chitchat/1:";

/// Reads an 8-byte little-endian number.
fn read_u64(bytes: &[u8]) -> Option<u64> {
    let b: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Seconds since the epoch of an RFC 3339 timestamp, `None` if it is not one.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp())
}

impl Source for ChitChat {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        let start = match cursor {
            None => 0,
            Some(c) => read_u64(&c.0)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i <= self.messages.len())
                .ok_or_else(|| SourceError::malformed("invalid ChitChat cursor"))?,
        };
        // A zero limit still makes progress, as the other backends do.
        let end = start.saturating_add(limit.max(1)).min(self.messages.len());
        Ok(Page {
            refs: (start..end).map(|i| self.message_ref(i)).collect(),
            next: (end < self.messages.len()).then(|| Cursor((end as u64).to_le_bytes().to_vec())),
            total: Some(self.messages.len() as u64),
        })
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        refs.iter()
            .map(|r| {
                let fail = |reason: &str| FetchError {
                    id: r.id.clone(),
                    reason: reason.to_string(),
                };
                let m = read_u64(&r.locator)
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| self.messages.get(i))
                    .ok_or_else(|| fail("invalid locator"))?;
                // The locator is an index: check it still names this id.
                if self.id(m) != r.id {
                    return Err(fail("no such message in this corpus; list it again"));
                }
                let bytes = serde_json::to_vec(&self.wire(m))
                    .map_err(|e| fail(&format!("cannot encode: {e}")))?;
                Ok(RawMessage {
                    id: r.id.clone(),
                    bytes,
                    folder: Some(FOLDER.to_string()),
                    labels: Vec::new(),
                    flags: None,
                    version: None,
                })
            })
            .collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        Ok(self.token())
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        let count = since
            .0
            .strip_prefix(TOKEN_TAG)
            .and_then(read_u64)
            .ok_or_else(|| SourceError::malformed("not a ChitChat sync token"))?;
        let changes = if count == self.messages.len() as u64 {
            Vec::new()
        } else {
            (0..self.messages.len())
                .map(|i| sealdex::Change::Created(self.message_ref(i)))
                .collect()
        };
        Ok(Changes {
            changes,
            token: self.token(),
        })
    }
}

/// Turns a fetched [`ChatWire`] into a [`Message`]: from = sender, to = the
/// other participants, no subject, a text body, folder `chat`.
///
/// A message whose text is empty (33 in the corpus) still decrypts, to an
/// empty body: it exists in the conversation, and refusing it would record
/// a failure to retry forever.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChatDecryptor;

impl Decryptor for ChatDecryptor {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        let wire: ChatWire = serde_json::from_slice(&raw.bytes)
            .map_err(|e| DecryptError::Malformed(format!("not a chat message: {e}")))?;
        let date = parse_timestamp(&wire.timestamp).ok_or_else(|| {
            DecryptError::Malformed(format!("bad timestamp {:?}", wire.timestamp))
        })?;
        let to = wire
            .participants
            .iter()
            .filter(|p| **p != wire.sender)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Message {
            id: raw.id.clone(),
            date: Some(date),
            from: wire.sender,
            to,
            subject: String::new(),
            body: Body::Text(wire.text),
            folders: vec![raw.folder.clone().unwrap_or_else(|| FOLDER.to_string())],
            flags: raw.flags.unwrap_or_default(),
            attachments: Vec::new(),
            kind: ContentKind::Chat,
            ..Message::default()
        })
    }
}

/// Loads the corpus at `path` and returns its records (see
/// [`ChitChat::records`]), the first `limit` of them if given.
///
/// # Panics
///
/// When the file cannot be read or parsed: a bench cannot go on without its
/// corpus, and the message says which file and why.
pub fn load_records(path: impl AsRef<Path>, limit: Option<usize>) -> Vec<Record> {
    let path = path.as_ref();
    ChitChat::open(path)
        .unwrap_or_else(|e| panic!("cannot load the ChitChat corpus: {e}"))
        .records(limit)
}
