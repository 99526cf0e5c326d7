//! MIME: turns RFC 822 bytes into a [`crate::Message`] with mail-parser.
//!
//! This module owns the mapping from what a mail file says to what search
//! needs: who sent it, to whom, when, about what, its body, and the names of
//! its attachments. Parsing itself (MIME structure, transfer encodings,
//! RFC 2047 encoded words, charsets such as Big5, GB2312, ISO-2022-JP or
//! windows-1252) is left to [`mail_parser`], which is built never to panic
//! and to make a best effort on broken mail.
//!
//! Choices made here, and why:
//!
//! - **Body.** When the message has `text/plain` body parts, the body is
//!   their text, joined by blank lines; when it has only HTML body parts,
//!   the body is their HTML, joined, for [`crate::clean`] to turn into text.
//!   mail-parser can convert HTML to text itself (`body_text`), but that
//!   converter does not drop hidden elements or scripts the way the cleaner
//!   does, and both search modes must see the same text, so the raw HTML is
//!   passed on untouched.
//! - **Attachments.** A part counts as an attachment when mail-parser lists
//!   it as one *and* it has a file name, is marked
//!   `Content-Disposition: attachment`, or is a nested `message/rfc822`.
//!   Inline images that carry a file name count (a user searching for
//!   `has:attachment` or for `logo.png` expects to find them); nameless
//!   inline parts such as `cid:` images of an HTML newsletter or a mailing
//!   list's text footer do not, because they are part of the body's
//!   presentation rather than files the sender attached. A nested message
//!   without a file name is listed under its subject.
//! - **Flags.** Flags the source knows (Maildir file names, IMAP) win.
//!   Otherwise the mbox `Status:` and `X-Status:` headers are read; a message
//!   with neither is treated as *read*: most files without status headers
//!   are archives or exports, and marking thousands of old messages unread
//!   would make `is:unread` useless.
//! - **Parser panics.** mail-parser is written not to panic, but it has
//!   `debug_assert!`s that some malformed mail reaches (seen on files of its
//!   own test corpus), and one bad message must never stop an indexing run.
//!   The call is therefore wrapped in `catch_unwind` and a panic becomes
//!   [`DecryptError::Malformed`]. This is a safety net for builds with
//!   `panic = "unwind"` (the default), not a licence: the panic message
//!   still reaches the panic hook, so it is seen and can be reported.
//! - **Addresses.** Each address is `Name <address>`, or just one of the two
//!   when the other is missing; members of an address group are listed, the
//!   group's own name is not (it is usually a placeholder such as
//!   `undisclosed-recipients`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use mail_parser::{
    Addr, Address, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType,
};

use crate::message::{Body, DecryptError, Message};
use crate::record::Flags;
use crate::source::RawMessage;

/// One parser for the whole process: building it allocates its header
/// table, and it is immutable and thread-safe once built.
///
/// It parses only the headers this module reads: the MIME headers (which
/// mail-parser itself needs to find and decode the parts), the addresses,
/// the subject, the date and the Message-ID. Every other header is still
/// listed with its offsets (mbox `Status:` is read from the raw bytes) but
/// its value is skipped, not parsed: the default parser's structured `Received:`
/// parsing alone was 11 % of all indexing instructions on the
/// SpamAssassin corpus, for a header search never shows.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .header_address(HeaderName::From)
        .header_address(HeaderName::Sender)
        .header_address(HeaderName::To)
        .header_address(HeaderName::Cc)
        .header_text(HeaderName::Subject)
        .header_date(HeaderName::Date)
        // `Message::message_id` reads it: without this line it was always
        // `None` (the header was skipped like any other).
        .header_id(HeaderName::MessageId)
        .default_header_ignore()
});

/// Parses an RFC 822 message into a [`Message`].
///
/// `raw.bytes` may start with an mbox `From ` separator line, which is
/// skipped. Metadata the source supplies (`raw.id`, `raw.folder`,
/// `raw.labels`, `raw.flags`) is carried over; see the module
/// documentation for how flags and attachments are decided.
///
/// # Errors
///
/// - [`DecryptError::TooLarge`] when `raw.bytes` is longer than `max_bytes`
///   (checked first, so an oversized message costs nothing to reject);
/// - [`DecryptError::Empty`] when the bytes are empty or only whitespace;
/// - [`DecryptError::Malformed`] when mail-parser finds neither headers nor
///   a body.
///
/// Never panics, whatever the bytes.
///
/// ```
/// use sealdex::{Body, RawMessage};
/// let raw = RawMessage {
///     id: "1".into(),
///     bytes: b"From: Alice <alice@example.org>\r\nSubject: Hi\r\n\r\nHello!\r\n".to_vec(),
///     ..RawMessage::default()
/// };
/// let msg = sealdex::mime::parse_rfc822(&raw, 1 << 20).unwrap();
/// assert_eq!(msg.from, "Alice <alice@example.org>");
/// assert_eq!(msg.subject, "Hi");
/// assert_eq!(msg.body, Body::Text("Hello!\n".into()));
/// ```
pub fn parse_rfc822(raw: &RawMessage, max_bytes: usize) -> Result<Message, DecryptError> {
    let bytes = raw.bytes.as_slice();
    if bytes.len() > max_bytes {
        return Err(DecryptError::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DecryptError::Empty);
    }
    let bytes = strip_mbox_from_line(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DecryptError::Empty);
    }
    let bytes = wire_line_ends(bytes);
    let mut parsed = catch_unwind(AssertUnwindSafe(|| PARSER.parse(&bytes[..])))
        .map_err(|_| DecryptError::Malformed("mail-parser failed on this message".into()))?
        .ok_or_else(|| DecryptError::Malformed("no header or body found".into()))?;
    let Some(headerless) = parsed.parts.first().map(|root| root.headers.is_empty()) else {
        return Err(DecryptError::Malformed("no MIME part found".into()));
    };
    let body = match body_of(&mut parsed) {
        Body::Text(t) => Body::Text(unix_line_ends(t)),
        Body::Html(h) => Body::Html(unix_line_ends(h)),
    };
    let (attachments, has_attachment) = attachments_of(&parsed);
    if headerless && is_empty_body(&body) && !has_attachment {
        return Err(DecryptError::Malformed("no header or body found".into()));
    }

    let from = {
        let from = join_addresses(parsed.from().into_iter());
        if from.is_empty() {
            join_addresses(parsed.sender().into_iter())
        } else {
            from
        }
    };
    let to = join_addresses(parsed.all_to().chain(parsed.all_cc()));
    let subject = parsed
        .subject()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let date = parsed
        .date()
        .filter(|d| d.is_valid())
        .map(|d| d.to_timestamp());

    let mut flags = match raw.flags {
        Some(flags) => flags,
        None => mbox_status_flags(&parsed),
    };
    flags.set(Flags::HAS_ATTACHMENT, has_attachment);

    let message_id = parsed
        .message_id()
        .map(|m| {
            m.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|m| !m.is_empty());

    Ok(Message {
        id: raw.id.clone(),
        date,
        from,
        to,
        subject,
        body,
        folders: raw.folder.iter().cloned().collect(),
        labels: raw.labels.clone(),
        flags,
        attachments,
        kind: crate::record::ContentKind::Mail,
        message_id,
        ..Message::default()
    })
}

/// Skips a leading mbox `From ` separator line (`From sender date`), which
/// is not a header and would otherwise stop the header parser at once.
fn strip_mbox_from_line(bytes: &[u8]) -> &[u8] {
    if !bytes.starts_with(b"From ") {
        return bytes;
    }
    match memchr::memchr(b'\n', bytes) {
        Some(nl) => bytes.get(nl + 1..).unwrap_or_default(),
        None => &[],
    }
}

/// The message with every line ending in CRLF, its form on the wire.
///
/// Files (mbox, Maildir, a tree of `.eml`) usually end lines with a bare
/// LF; IMAP and SMTP always use CRLF. mail-parser 0.11 does not read every
/// header the same in both forms: of SpamAssassin's 6,046 messages, 20 gave
/// a different `From`, `Message-ID` or `Date` from their file than over
/// IMAP (a bare address in `From:` came out empty, for one), and the CRLF
/// reading was the right one each time. Parsing the wire form makes one
/// message one record, wherever it was read from. A message already in
/// CRLF is not copied.
fn wire_line_ends(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = memchr::memchr_iter(b'\n', bytes)
        .filter(|&i| i == 0 || bytes[i - 1] != b'\r')
        .count();
    if bare == 0 {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + bare);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', bytes) {
        if i == 0 || bytes[i - 1] != b'\r' {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(b"\r\n");
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    std::borrow::Cow::Owned(out)
}

/// A body with LF line ends: what the record keeps, whether the
/// message came as a file or over the wire (see [`wire_line_ends`]).
fn unix_line_ends(text: String) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n")
    } else {
        text
    }
}

fn is_empty_body(body: &Body) -> bool {
    match body {
        Body::Text(s) | Body::Html(s) => s.trim().is_empty(),
    }
}

/// The body: text parts if any, else HTML parts, else empty text.
///
/// A body of one part (nearly every message) is moved out of the parsed
/// message rather than copied; the part is left empty, which nothing after
/// this reads (attachments are told by their headers).
fn body_of(msg: &mut mail_parser::Message<'_>) -> Body {
    let texts = body_parts(msg, &msg.text_body, |p| {
        is_plain_text(p) && matches!(p.body, PartType::Text(_))
    });
    if !texts.is_empty() {
        return Body::Text(take_joined(msg, &texts));
    }
    let htmls = body_parts(msg, &msg.html_body, |p| matches!(p.body, PartType::Html(_)));
    if !htmls.is_empty() {
        return Body::Html(take_joined(msg, &htmls));
    }
    Body::default()
}

/// The parts among `ids` (the parser's text or HTML body list) that `keep`
/// accepts, as indexes into the message's parts.
fn body_parts(
    msg: &mail_parser::Message<'_>,
    ids: &[u32],
    keep: impl Fn(&mail_parser::MessagePart<'_>) -> bool,
) -> Vec<usize> {
    ids.iter()
        .map(|&id| id as usize)
        .filter(|&id| msg.parts.get(id).is_some_and(&keep))
        .collect()
}

/// The text of the given text or HTML parts, joined by blank lines; a
/// single part's text is moved out of the message.
fn take_joined(msg: &mut mail_parser::Message<'_>, ids: &[usize]) -> String {
    match ids {
        [id] => match msg.parts.get_mut(*id).map(|p| &mut p.body) {
            Some(PartType::Text(t) | PartType::Html(t)) => std::mem::take(t).into_owned(),
            _ => String::new(),
        },
        _ => ids
            .iter()
            .filter_map(|&id| match &msg.parts.get(id)?.body {
                PartType::Text(t) | PartType::Html(t) => Some(t.as_ref()),
                _ => None,
            })
            .collect::<Vec<&str>>()
            .join("\n\n"),
    }
}

/// Whether a text part is prose (`text/plain`, or no content type, which
/// RFC 2045 defines as `text/plain`) rather than a data format such as
/// `text/calendar` or `text/x-vcard` that mail-parser also files as text.
fn is_plain_text(part: &MessagePart<'_>) -> bool {
    match part.content_type() {
        None => true,
        Some(ct) => {
            !ct.c_type.eq_ignore_ascii_case("text")
                || ct
                    .c_subtype
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case("plain"))
        }
    }
}

/// Attachment names, and whether there is at least one attachment (a
/// nameless nested message counts even when it has no subject either).
fn attachments_of(msg: &mail_parser::Message<'_>) -> (Vec<String>, bool) {
    let mut names = Vec::new();
    let mut any = false;
    for part in msg
        .attachments
        .iter()
        .filter_map(|&id| msg.parts.get(id as usize))
    {
        let name = part
            .attachment_name()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let nested = match &part.body {
            PartType::Message(m) => Some(m),
            _ => None,
        };
        let disposed = part
            .content_disposition()
            .is_some_and(|cd| cd.is_attachment());
        if name.is_none() && nested.is_none() && !disposed {
            continue;
        }
        any = true;
        let name = name.or_else(|| {
            nested
                .and_then(|m| m.parts.first().and_then(|_| m.subject()))
                .map(str::trim)
                .filter(|n| !n.is_empty())
        });
        if let Some(name) = name {
            names.push(name.to_owned());
        }
    }
    (names, any)
}

/// Formats addresses one per line; group members are flattened.
fn join_addresses<'a, 'x: 'a>(addresses: impl Iterator<Item = &'a Address<'x>>) -> String {
    let mut out = String::new();
    for address in addresses {
        match address {
            Address::List(list) => list.iter().for_each(|a| push_addr(&mut out, a)),
            Address::Group(groups) => groups
                .iter()
                .flat_map(|g| g.addresses.iter())
                .for_each(|a| push_addr(&mut out, a)),
        }
    }
    out
}

fn push_addr(out: &mut String, addr: &Addr<'_>) {
    let name = addr.name().map(str::trim).filter(|s| !s.is_empty());
    let address = addr.address().map(str::trim).filter(|s| !s.is_empty());
    let line = match (name, address) {
        (Some(n), Some(a)) if n.eq_ignore_ascii_case(a) => a.to_owned(),
        (Some(n), Some(a)) => format!("{n} <{a}>"),
        (Some(n), None) => n.to_owned(),
        (None, Some(a)) => a.to_owned(),
        (None, None) => return,
    };
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&line);
}

/// Flags from mbox `Status:` (`R` read, `O` old) and `X-Status:` (`F`
/// flagged, as written by mutt, Thunderbird and others). Without a
/// `Status:` header the message counts as read (see the module docs).
fn mbox_status_flags(msg: &mail_parser::Message<'_>) -> Flags {
    let mut flags = Flags::empty();
    let Some(root) = msg.parts.first() else {
        return flags;
    };
    for header in &root.headers {
        let name = header.name();
        let is_status = name.eq_ignore_ascii_case("status");
        let is_x_status = name.eq_ignore_ascii_case("x-status");
        if !is_status && !is_x_status {
            continue;
        }
        let value = match header.value() {
            HeaderValue::Text(t) => t.as_ref(),
            _ => msg
                .raw_message
                .get(header.offset_start() as usize..header.offset_end() as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
        };
        if is_status && !value.contains('R') {
            flags.set(Flags::UNREAD, true);
        }
        if is_x_status && value.contains('F') {
            flags.set(Flags::FLAGGED, true);
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bytes: &[u8]) -> RawMessage {
        RawMessage {
            id: "m1".into(),
            bytes: bytes.to_vec(),
            ..RawMessage::default()
        }
    }

    fn parse(bytes: &[u8]) -> Result<Message, DecryptError> {
        parse_rfc822(&raw(bytes), 1 << 20)
    }

    /// The same message read from a file (bare LF) and over IMAP (CRLF)
    /// is one message: the headers of spam-2/00078 of SpamAssassin, whose
    /// bare-address `From:` mail-parser 0.11 left empty in the LF form.
    #[test]
    fn line_ends_do_not_change_the_message() {
        let lf: &[u8] = b"From bounce@example.net  Fri Jul  6 21:00:34 2001\n\
Return-Path: <V33chLf6B@example.com>\n\
Received: from example.net (unknown [192.0.2.1]) by\n    mail.example.org (Postfix) with SMTP id 1234\n\
Date: 06 Jul 01 8:00:34 PM\n\
From: V33chLf6B@example.com\n\
Message-Id: <sHn50yM8QGuCEr3A>\n\
To: bestnames@example.org\n\
Subject: Reach millions on the internet!!\n\
\n\
Dear Consumers,\nline two\n";
        let crlf: Vec<u8> = String::from_utf8(lf.to_vec())
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes();
        let a = parse(lf).unwrap();
        let b = parse(&crlf).unwrap();
        assert_eq!(a.from, "V33chLf6B@example.com");
        assert_eq!(a.message_id.as_deref(), Some("sHn50yM8QGuCEr3A"));
        assert_eq!(a.body, Body::Text("Dear Consumers,\nline two\n".into()));
        assert_eq!(a, b);
    }

    #[test]
    fn empty_and_too_large() {
        assert_eq!(parse(b""), Err(DecryptError::Empty));
        assert_eq!(parse(b" \r\n\t "), Err(DecryptError::Empty));
        assert_eq!(
            parse(b"From a@b Mon Jan  1 00:00:00 2001\n"),
            Err(DecryptError::Empty)
        );
        assert_eq!(
            parse_rfc822(&raw(b"Subject: x\n\nbody"), 4),
            Err(DecryptError::TooLarge { size: 16, limit: 4 })
        );
    }

    #[test]
    fn simple_message() {
        let m = parse(
            b"From sender@example.org Sat Aug 24 12:00:00 2002\n\
              From: \"Alice A.\" <alice@example.org>, bob@example.org\n\
              To: Carol <carol@example.org>\n\
              Cc: Dave <dave@example.org>, friends: erin@example.org, Frank <frank@example.org>;\n\
              Subject: =?UTF-8?Q?Caf=C3=A9?= talk\n\
              Date: Sat, 24 Aug 2002 14:00:00 +0200\n\
              \n\
              Hello there.\n",
        )
        .unwrap();
        assert_eq!(m.id, "m1");
        assert_eq!(m.from, "Alice A. <alice@example.org>\nbob@example.org");
        assert_eq!(
            m.to,
            "Carol <carol@example.org>\nDave <dave@example.org>\nerin@example.org\nFrank <frank@example.org>"
        );
        assert_eq!(m.subject, "Café talk");
        assert_eq!(m.date, Some(1_030_190_400));
        assert_eq!(m.body, Body::Text("Hello there.\n".into()));
        assert!(m.attachments.is_empty());
        assert_eq!(m.flags, Flags::empty());
    }

    #[test]
    fn invalid_date_is_none() {
        let m = parse(b"Subject: x\nDate: not a date\n\nbody").unwrap();
        assert_eq!(m.date, None);
    }

    #[test]
    fn html_only_is_kept_as_html() {
        let m = parse(
            b"Subject: x\nContent-Type: text/html; charset=utf-8\n\n<p>Hello <b>world</b></p>\n",
        )
        .unwrap();
        assert_eq!(m.body, Body::Html("<p>Hello <b>world</b></p>\n".into()));
    }

    #[test]
    fn alternative_prefers_text() {
        let m = parse(
            b"Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b\"\n\n\
              --b\nContent-Type: text/plain\n\nplain version\n\
              --b\nContent-Type: text/html\n\n<p>html version</p>\n\
              --b--\n",
        )
        .unwrap();
        assert_eq!(m.body, Body::Text("plain version".into()));
    }

    #[test]
    fn attachments_and_nested_message() {
        let m = parse(
            b"Subject: x\nContent-Type: multipart/mixed; boundary=\"b\"\n\n\
              --b\nContent-Type: text/plain\n\nsee attached\n\
              --b\nContent-Type: application/pdf; name=\"report.pdf\"\n\
              Content-Disposition: attachment; filename=\"report.pdf\"\n\
              Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n\
              --b\nContent-Type: image/png\nContent-Disposition: inline; filename=\"logo.png\"\n\
              Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n\
              --b\nContent-Type: message/rfc822\n\n\
              Subject: Forwarded one\nFrom: z@example.org\n\ninner body\n\
              --b--\n",
        )
        .unwrap();
        assert_eq!(m.body, Body::Text("see attached".into()));
        assert_eq!(m.attachments, ["report.pdf", "logo.png", "Forwarded one"]);
        assert!(m.flags.contains(Flags::HAS_ATTACHMENT));
    }

    #[test]
    fn nameless_inline_image_is_not_an_attachment() {
        let m = parse(
            b"Subject: x\nContent-Type: multipart/related; boundary=\"b\"\n\n\
              --b\nContent-Type: text/html\n\n<img src=\"cid:1\">hi\n\
              --b\nContent-Type: image/gif\nContent-ID: <1>\nContent-Transfer-Encoding: base64\n\nR0lGODlh\n\
              --b--\n",
        )
        .unwrap();
        assert!(m.attachments.is_empty());
        assert!(!m.flags.contains(Flags::HAS_ATTACHMENT));
        assert!(matches!(m.body, Body::Html(_)));
    }

    #[test]
    fn mbox_status_flags() {
        let read = parse(b"Subject: x\nStatus: RO\n\nb").unwrap();
        assert_eq!(read.flags, Flags::empty());
        let unread = parse(b"Subject: x\nStatus: O\nX-Status: F\n\nb").unwrap();
        assert_eq!(unread.flags, Flags::UNREAD | Flags::FLAGGED);
        let none = parse(b"Subject: x\n\nb").unwrap();
        assert_eq!(none.flags, Flags::empty());
    }

    #[test]
    fn headers_not_read_are_skipped_but_listed() {
        let m = parse(
            b"Received: from a.example.org (a [10.0.0.1])\n\tby b.example.org; Sat, 24 Aug 2002 12:00:00 +0000\n\
              Received: garbage ((( ;;; \n\
              X-Whatever: =?utf-8?q?caf=C3=A9?=\n\
              From: Alice <alice@example.org>\n\
              Status:\n O\n\
              Subject: =?utf-8?q?caf=C3=A9?=\n\
              Date: Sat, 24 Aug 2002 14:00:00 +0200\n\
              \n\
              body\n",
        )
        .unwrap();
        assert_eq!(m.from, "Alice <alice@example.org>");
        assert_eq!(m.subject, "café");
        assert_eq!(m.date, Some(1_030_190_400));
        assert_eq!(m.flags, Flags::UNREAD);
        assert_eq!(m.body, Body::Text("body\n".into()));
    }

    #[test]
    fn source_flags_and_folders_win() {
        let mut r = raw(
            b"Subject: x\nStatus: O\nContent-Type: multipart/mixed; boundary=b\n\n\
              --b\n\ntext\n--b\nContent-Disposition: attachment; filename=a.txt\n\nA\n--b--\n",
        );
        r.flags = Some(Flags::FLAGGED);
        r.folder = Some("INBOX".into());
        r.labels = vec!["work".into(), "urgent".into()];
        let m = parse_rfc822(&r, 1 << 20).unwrap();
        assert_eq!(m.flags, Flags::FLAGGED | Flags::HAS_ATTACHMENT);
        assert_eq!(m.folders, ["INBOX"]);
        assert_eq!(m.labels, ["work", "urgent"]);
        assert_eq!(m.attachments, ["a.txt"]);
    }

    #[test]
    fn legacy_charsets_decode() {
        let mut bytes =
            b"Subject: =?big5?B?pKSk5Q==?=\nContent-Type: text/plain; charset=iso-8859-1\n\n"
                .to_vec();
        bytes.extend_from_slice(b"caf\xe9\n");
        let m = parse(&bytes).unwrap();
        assert_eq!(m.subject, "中文");
        assert_eq!(m.body, Body::Text("café\n".into()));
    }

    #[test]
    fn garbage_never_panics() {
        for bytes in [
            &b"\xff\xfe\x00garbage"[..],
            b"no headers at all",
            b":\n:\n\n",
            b"Content-Type: multipart/mixed; boundary=x\n\n--x\n--x\n--x--",
            b"From ",
            b"\n\n\n\nbody after blank lines",
        ] {
            let _ = parse(bytes);
        }
    }
}
