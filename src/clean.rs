//! The Cleaner: turns a decrypted [`Message`] into the [`Record`] that gets
//! sealed, its body as the plain text a reader sees (HTML through
//! [`html_to_text`]). Records hold cleaned text, never HTML, so that
//! searching never parses anything.
//!
//! The text work itself (HTML extraction, the one normaliser, the
//! tokenizer) is the [`text`](crate::text) module's; its functions are
//! re-exported here, where earlier versions defined them, so
//! `sealdex::clean::normalise` and the others keep working.

use crate::message::{Body, Message};
use crate::record::Record;
pub use crate::text::{
    Tokens, html_to_text, is_single_char_token, is_word_char, normalise, normalise_char,
    normalise_into, tokens,
};

/// The body as plain text: text passes through, HTML goes through
/// [`html_to_text`].
pub fn body_text(body: &Body) -> String {
    match body {
        Body::Text(text) => text.clone(),
        Body::Html(html) => html_to_text(html),
    }
}

/// Builds the [`Record`] to seal from a parsed message: the body becomes
/// text, recipients and attachment names one per line. Text is stored as
/// the message has it (not normalised), so that snippets show what the user
/// wrote; search normalises as it reads.
///
/// ```
/// use sealdex::{Body, Message, ContentKind};
/// let msg = Message {
///     id: "1".into(),
///     subject: "Hi".into(),
///     body: Body::Html("<p>Hello&nbsp;there</p>".into()),
///     attachments: vec!["a.pdf".into(), "b.png".into()],
///     ..Message::default()
/// };
/// let rec = sealdex::clean::clean(msg, "maildir:~/Mail", Some("v1".into()));
/// assert_eq!(rec.body, "Hello\u{a0}there");
/// assert_eq!(rec.attachments, "a.pdf\nb.png");
/// assert_eq!(rec.kind, ContentKind::Mail);
/// assert_eq!(rec.source, "maildir:~/Mail");
/// ```
pub fn clean(msg: Message, source: &str, version: Option<String>) -> Record {
    let body = match msg.body {
        Body::Text(text) => text,
        Body::Html(html) => html_to_text(&html),
    };
    Record {
        id: msg.id,
        source: source.to_owned(),
        timestamp: msg.date,
        kind: msg.kind,
        subject: msg.subject,
        body,
        from: msg.from,
        to: msg.to,
        attachments: msg.attachments.join("\n"),
        folders: msg.folders,
        labels: msg.labels,
        flags: msg.flags,
        version,
        revision: 0,
        message_id: msg.message_id,
        end: msg.end,
        location: msg.location,
        media_type: msg.media_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_builds_a_record() {
        let msg = Message {
            id: "x".into(),
            date: Some(5),
            from: "a <a@x>".into(),
            to: "b@x\nc@x".into(),
            subject: "S".into(),
            body: Body::Text("plain".into()),
            folders: vec!["INBOX".into()],
            flags: crate::Flags::UNREAD,
            attachments: vec!["f1".into(), "f2".into()],
            ..Message::default()
        };
        let r = clean(msg, "src", None);
        assert_eq!(r.id, "x");
        assert_eq!(r.timestamp, Some(5));
        assert_eq!(r.body, "plain");
        assert_eq!(r.to, "b@x\nc@x");
        assert_eq!(r.attachments, "f1\nf2");
        assert_eq!(r.flags, crate::Flags::UNREAD);
        assert_eq!(r.folders, ["INBOX"]);
        assert_eq!(body_text(&Body::Html("<b>x</b>".into())), "x");
    }
}
