//! The JSON Lines op format: one op per line, what `sealdex import` reads
//! and what a chat client (or any app that pushes its own messages) can
//! write. README.md, "Importing ops", lists the fields.
//!
//! # Chat messages
//!
//! A chat message is an `upsert` of kind `chat`, its conversation its
//! folder (so `in:` finds a conversation), its author in `from`, the
//! conversation's members in `to`, and the server's ordering of the event
//! as the op's `version`, so that a replayed or late delivery never undoes
//! a newer edit:
//!
//! ```json
//! {"op":"upsert","id":"!room:example.org/$42","kind":"chat","version":1042,"date":"2024-03-02T09:00:00Z","from":"Bob","to":["Alice","Bob"],"body":"lunch at the harbour?","folders":["!room:example.org"]}
//! {"op":"patch","id":"!room:example.org/$42","flags":{"unread":false}}
//! {"op":"delete","id":"!room:example.org/$42","version":1043}
//! ```
//!
//! The chat corpus benchmark writes the ChitChat corpus in this format
//! (`benches/formats.rs`), and `examples/chat_client.rs` pushes its
//! messages through it.
//!
//! ```
//! use sealdex::ops::Op;
//! let op = sealdex::jsonl::parse_line(
//!     "matrix",
//!     r#"{"op":"upsert","id":"!r/$1","kind":"chat","date":"2024-03-02T09:00:00Z","from":"Bob","body":"hi","folders":["!r"]}"#,
//! )?;
//! assert!(matches!(op, Op::Upsert(_)));
//! assert!(sealdex::jsonl::parse_line("matrix", r#"{"op":"upsert","id":"x","colour":"red"}"#).is_err());
//! # Ok::<(), sealdex::jsonl::LineError>(())
//! ```

use serde::Deserialize;

use crate::message::{Body, Message};
use crate::ops::Op;
use crate::record::{ContentKind, Flags};
use crate::source::Metadata;

/// Why a line is not an op: the JSON error or the field at fault (it may
/// quote the line's values, which are the caller's own input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LineError(String);

/// The op one line stands for, its records in `source`.
pub fn parse_line(source: &str, line: &str) -> Result<Op, LineError> {
    op(source, line).map_err(LineError)
}

/// One line of the import format.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Line {
    Upsert(Box<UpsertLine>),
    Patch(PatchLine),
    Delete(DeleteLine),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertLine {
    id: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    from: Option<Names>,
    #[serde(default)]
    to: Option<Names>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    folders: Vec<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    flags: FlagsLine,
    #[serde(default)]
    attachments: Vec<String>,
    #[serde(default)]
    message_id: Option<String>,
    // An event's.
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    location: Option<String>,
    // A file's.
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    media_type: Option<String>,
}

/// A name list: one string (lines allowed) or an array of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    fn joined(self) -> String {
        match self {
            Names::One(s) => s,
            Names::Many(v) => v.join("\n"),
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagsLine {
    #[serde(default)]
    unread: Option<bool>,
    #[serde(default)]
    flagged: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchLine {
    id: String,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    folders: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    flags: FlagsLine,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteLine {
    id: String,
    #[serde(default)]
    version: u64,
}

fn seconds(field: &str, s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .map_err(|e| format!("{field}: {s:?} is not an RFC 3339 time ({e})"))
}

/// [`parse_line`], its error as a string.
fn op(source: &str, line: &str) -> Result<Op, String> {
    let parsed: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(match parsed {
        Line::Upsert(u) => {
            let u = *u;
            let kind = match &u.kind {
                Some(k) => k.parse::<ContentKind>()?,
                None => ContentKind::Mail,
            };
            let body = match (u.body, u.html) {
                (Some(_), Some(_)) => {
                    return Err("give either \"body\" or \"html\", not both".into());
                }
                (Some(t), None) => Body::Text(t),
                (None, Some(h)) => Body::Html(h),
                (None, None) => Body::Text(String::new()),
            };
            let mut flags = Flags::empty();
            flags.set(Flags::UNREAD, u.flags.unread.unwrap_or(false));
            flags.set(Flags::FLAGGED, u.flags.flagged.unwrap_or(false));
            let mut attachments = u.attachments;
            if let Some(path) = u.path {
                if kind != ContentKind::File {
                    return Err("\"path\" is a file's field (\"kind\":\"file\")".into());
                }
                attachments.insert(0, path);
            }
            flags.set(
                Flags::HAS_ATTACHMENT,
                kind != ContentKind::File && !attachments.is_empty(),
            );
            if kind != ContentKind::Event && (u.end.is_some() || u.location.is_some()) {
                return Err(
                    "\"end\" and \"location\" are an event's fields (\"kind\":\"event\")".into(),
                );
            }
            let msg = Message {
                id: u.id,
                date: u.date.as_deref().map(|d| seconds("date", d)).transpose()?,
                from: u.from.map(Names::joined).unwrap_or_default(),
                to: u.to.map(Names::joined).unwrap_or_default(),
                subject: u.subject.unwrap_or_default(),
                body,
                folders: u.folders,
                labels: u.labels,
                flags,
                attachments,
                kind,
                message_id: u.message_id,
                end: u.end.as_deref().map(|d| seconds("end", d)).transpose()?,
                location: u.location.unwrap_or_default(),
                media_type: u.media_type,
            };
            let record = crate::clean::clean(msg, source, None);
            Op::upsert(record).with_version(u.version)
        }
        Line::Patch(p) => Op::patch(
            source,
            p.id,
            Metadata {
                folders: p.folders,
                labels: p.labels,
                unread: p.flags.unread,
                flagged: p.flags.flagged,
            },
        )
        .with_version(p.version),
        Line::Delete(d) => Op::delete(source, d.id).with_version(d.version),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ContentKind;

    #[test]
    fn lines_become_ops() {
        let up = op(
            "s",
            r#"{"op":"upsert","id":"e1","kind":"event","date":"2024-05-01T09:00:00+02:00","end":"2024-05-01T10:00:00Z","location":"Room 4","subject":"Review","to":["a@x","b@x"],"html":"<p>agenda</p>"}"#,
        )
        .unwrap();
        let Op::Upsert(u) = up else {
            panic!("not an upsert")
        };
        assert_eq!(u.record.kind, ContentKind::Event);
        assert_eq!(u.record.timestamp, Some(1_714_546_800));
        assert_eq!(u.record.end, Some(1_714_557_600));
        assert_eq!(u.record.location, "Room 4");
        assert_eq!(u.record.to, "a@x\nb@x");
        assert_eq!(u.record.body.trim(), "agenda");
        let file = op(
            "s",
            r#"{"op":"upsert","id":"f","kind":"file","path":"docs/q3/report.pdf","media_type":"application/pdf"}"#,
        )
        .unwrap();
        let Op::Upsert(f) = file else {
            panic!("not an upsert")
        };
        assert_eq!(f.record.attachments, "docs/q3/report.pdf");
        assert!(matches!(
            op("s", r#"{"op":"patch","id":"x","flags":{"unread":false}}"#).unwrap(),
            Op::Patch(p) if p.set.unread == Some(false) && p.set.flagged.is_none()
        ));
        assert!(matches!(
            op("s", r#"{"op":"delete","id":"x","version":7}"#).unwrap(),
            Op::Delete(d) if d.version == 7
        ));
        for bad in [
            "not json",
            r#"{"op":"upsert"}"#,
            r#"{"op":"frobnicate","id":"x"}"#,
            r#"{"op":"upsert","id":"x","kind":"fax"}"#,
            r#"{"op":"upsert","id":"x","date":"yesterday"}"#,
            r#"{"op":"upsert","id":"x","body":"a","html":"b"}"#,
            r#"{"op":"upsert","id":"x","subjct":"typo"}"#,
            r#"{"op":"upsert","id":"x","location":"only events"}"#,
        ] {
            assert!(op("s", bad).is_err(), "{bad}");
        }
    }
}
