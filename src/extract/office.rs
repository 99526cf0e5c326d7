//! Office documents: DOCX (Office Open XML) and ODT (OpenDocument), both
//! zip archives of XML, read with the `zip` crate and quick-xml.
//!
//! Only the text a reader sees is kept: in DOCX the `w:t` runs of
//! `word/document.xml` (field codes, `w:instrText`, and deleted text,
//! `w:delText`, are not runs of text and are left out), paragraphs and
//! table cells on their own lines; in ODT the text of `office:body` in
//! `content.xml`, with `text:s`, `text:tab` and `text:line-break` as the
//! spaces, tabs and breaks they stand for, and tracked deletions left out.

use std::io::{BufReader, Cursor, Read};

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

use super::{DOCX, Document, ExtractError, Limits, ODT};

type Archive<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

fn malformed(kind: &'static str, reason: impl Into<String>) -> ExtractError {
    ExtractError::Malformed {
        kind,
        reason: reason.into(),
    }
}

fn open<'a>(bytes: &'a [u8], kind: &'static str) -> Result<Archive<'a>, ExtractError> {
    zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| match e {
        zip::result::ZipError::UnsupportedArchive(m) if m.contains("ncrypt") => {
            ExtractError::Encrypted
        }
        e => malformed(kind, format!("not a readable zip archive ({e})")),
    })
}

/// What a zip archive is, by its members: DOCX, ODT, or neither.
pub(super) fn sniff_zip(bytes: &[u8]) -> Option<&'static str> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    if zip.index_for_name("word/document.xml").is_some() {
        return Some(DOCX);
    }
    let mut mime = String::new();
    zip.by_name("mimetype")
        .ok()?
        .take(128)
        .read_to_string(&mut mime)
        .ok()?;
    (mime.trim() == ODT).then_some(ODT)
}

/// Whether `member` is in the archive.
fn has(zip: &Archive<'_>, member: &str) -> bool {
    zip.index_for_name(member).is_some()
}

/// Walks the XML of `member`, calling `on` with each event (names by
/// local name), reading at most `limits.max_xml_bytes` decompressed.
fn walk(
    zip: &mut Archive<'_>,
    member: &str,
    kind: &'static str,
    limits: &Limits,
    mut on: impl FnMut(Xml<'_>),
) -> Result<(), ExtractError> {
    let file = zip
        .by_name(member)
        .map_err(|e| malformed(kind, format!("cannot read {member} ({e})")))?;
    let mut reader = Reader::from_reader(BufReader::new(file.take(limits.max_xml_bytes)));
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(kind, format!("{member}: {e}")))?;
        match event {
            Event::Start(e) => {
                let name = e.name().local_name().as_ref().to_owned();
                on(Xml::Open(&name, spaces(&e), false));
            }
            Event::Empty(e) => {
                let name = e.name().local_name().as_ref().to_owned();
                on(Xml::Open(&name, spaces(&e), true));
                on(Xml::Close(&name));
            }
            Event::End(e) => on(Xml::Close(e.name().local_name().as_ref())),
            Event::Text(t) => on(Xml::Text(&t.xml10_content())),
            Event::CData(t) => on(Xml::Text(&t.into_inner())),
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    on(Xml::Text(c.encode_utf8(&mut [0; 4])));
                } else if let Some(s) = resolve_predefined_entity(&r) {
                    on(Xml::Text(s));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

/// The `text:c` attribute of an ODT `text:s` (how many spaces).
fn spaces(e: &quick_xml::events::BytesStart<'_>) -> Option<usize> {
    let a = e.try_get_attribute("text:c").ok().flatten()?;
    a.value.trim().parse().ok()
}

/// One event of [`walk`].
enum Xml<'a> {
    /// An element opens: its local name, its `text:c` count, and whether
    /// it is empty (a `Close` follows at once).
    Open(&'a str, Option<usize>, bool),
    /// An element closes.
    Close(&'a str),
    /// Text (entities resolved).
    Text(&'a str),
}

/// Title, author from Dublin Core metadata (`docProps/core.xml`,
/// `meta.xml`): the text of the first `title` and of the first
/// `creator` (or `initial-creator`).
fn metadata(
    zip: &mut Archive<'_>,
    member: &str,
    kind: &'static str,
    limits: &Limits,
) -> (Option<String>, Option<String>) {
    if !has(zip, member) {
        return (None, None);
    }
    let (mut title, mut author) = (String::new(), String::new());
    let mut inside: Option<&'static str> = None;
    let (mut got_title, mut got_author) = (false, false);
    let res = walk(zip, member, kind, limits, |x| match x {
        Xml::Open("title", ..) if !got_title => inside = Some("title"),
        Xml::Open("creator" | "initial-creator", ..) if !got_author => inside = Some("creator"),
        Xml::Close("title") if inside == Some("title") => {
            inside = None;
            got_title = !title.trim().is_empty();
        }
        Xml::Close("creator" | "initial-creator") if inside == Some("creator") => {
            inside = None;
            got_author = !author.trim().is_empty();
        }
        Xml::Text(t) => match inside {
            Some("title") => title.push_str(t),
            Some("creator") => author.push_str(t),
            _ => {}
        },
        _ => {}
    });
    if res.is_err() {
        return (None, None);
    }
    let some = |s: String| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    (some(title), some(author))
}

fn newline(text: &mut String) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
}

fn finish(mut text: String) -> String {
    while text.ends_with(['\n', ' ', '\t']) {
        text.pop();
    }
    text
}

/// The text of a DOCX document.
pub(super) fn docx(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    const KIND: &str = "DOCX";
    let mut zip = open(bytes, KIND)?;
    if !has(&zip, "word/document.xml") {
        return Err(malformed(KIND, "no word/document.xml"));
    }
    let mut text = String::new();
    let mut in_run_text = false;
    walk(&mut zip, "word/document.xml", KIND, limits, |x| {
        if text.len() > limits.max_text_bytes {
            return;
        }
        match x {
            Xml::Open("t", _, _) => in_run_text = true,
            Xml::Close("t") => in_run_text = false,
            Xml::Open("tab", _, _) => text.push('\t'),
            Xml::Open("br" | "cr", _, _) => text.push('\n'),
            Xml::Close("p") => newline(&mut text),
            Xml::Close("tc") => text.push('\t'),
            Xml::Text(t) if in_run_text => text.push_str(t),
            _ => {}
        }
    })?;
    let (title, author) = metadata(&mut zip, "docProps/core.xml", KIND, limits);
    Ok(Document {
        title,
        author,
        text: finish(text),
        ..Document::default()
    })
}

/// The text of an ODT document.
pub(super) fn odt(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    const KIND: &str = "ODT";
    let mut zip = open(bytes, KIND)?;
    if !has(&zip, "content.xml") {
        return Err(malformed(KIND, "no content.xml"));
    }
    let mut text = String::new();
    let mut in_body = false;
    // Depth inside paragraphs and headings: only their text is the
    // document's (whitespace between elements is layout).
    let mut para = 0usize;
    // Depth inside elements whose text is not the document's (tracked
    // deletions).
    let mut skip = 0usize;
    walk(&mut zip, "content.xml", KIND, limits, |x| {
        if text.len() > limits.max_text_bytes {
            return;
        }
        match x {
            Xml::Open("body", ..) => in_body = true,
            Xml::Close("body") => in_body = false,
            Xml::Open("tracked-changes", _, empty) if !empty => skip += 1,
            Xml::Close("tracked-changes") => skip = skip.saturating_sub(1),
            _ if !in_body || skip > 0 => {}
            Xml::Open("s", count, _) => {
                text.extend(std::iter::repeat_n(' ', count.unwrap_or(1).min(1024)))
            }
            Xml::Open("tab", ..) => text.push('\t'),
            Xml::Open("line-break", ..) => text.push('\n'),
            Xml::Open("p" | "h", _, empty) if !empty => para += 1,
            Xml::Close("p" | "h") => {
                para = para.saturating_sub(1);
                newline(&mut text);
            }
            Xml::Close("table-cell") => text.push('\t'),
            // ODF 6.1.2: whitespace in paragraph text collapses to one
            // space (`text:s` stands for more).
            Xml::Text(t) if para > 0 => {
                for c in t.chars() {
                    if matches!(c, ' ' | '\t' | '\n' | '\r') {
                        if !text.ends_with(' ') {
                            text.push(' ');
                        }
                    } else {
                        text.push(c);
                    }
                }
            }
            _ => {}
        }
    })?;
    let (title, author) = metadata(&mut zip, "meta.xml", KIND, limits);
    Ok(Document {
        title,
        author,
        text: finish(text),
        ..Document::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(members: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut out);
        for (name, body) in members {
            z.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        z.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn docx_runs_paragraphs_and_metadata() {
        let doc = zip_of(&[
            (
                "word/document.xml",
                r#"<?xml version="1.0"?><w:document xmlns:w="w"><w:body>
                <w:p><w:r><w:t>Hello</w:t></w:r><w:r><w:t xml:space="preserve"> big &amp; </w:t></w:r><w:r><w:t>world</w:t></w:r></w:p>
                <w:p><w:r><w:instrText>PAGE</w:instrText><w:delText>gone</w:delText><w:tab/><w:t>second</w:t></w:r></w:p>
                </w:body></w:document>"#,
            ),
            (
                "docProps/core.xml",
                r#"<cp:coreProperties xmlns:cp="c" xmlns:dc="d"><dc:title>Plan</dc:title><dc:creator>Ann</dc:creator></cp:coreProperties>"#,
            ),
        ]);
        assert_eq!(sniff_zip(&doc), Some(DOCX));
        let d = docx(&doc, &Limits::default()).unwrap();
        assert_eq!(d.text, "Hello big & world\n\tsecond");
        assert_eq!(d.title.as_deref(), Some("Plan"));
        assert_eq!(d.author.as_deref(), Some("Ann"));
    }

    #[test]
    fn odt_spaces_and_tracked_deletions() {
        let doc = zip_of(&[
            ("mimetype", ODT),
            (
                "content.xml",
                r#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text>
                <text:tracked-changes><text:changed-region><text:p>deleted</text:p></text:changed-region></text:tracked-changes>
                <text:h>Title</text:h><text:p>a<text:s text:c="3"/>b<text:tab/>c<text:line-break/>d &#233;</text:p>
                </office:text></office:body></office:document-content>"#,
            ),
            (
                "meta.xml",
                r#"<office:document-meta xmlns:office="o" xmlns:meta="m" xmlns:dc="d"><office:meta><meta:initial-creator>Bo</meta:initial-creator><dc:title>T</dc:title></office:meta></office:document-meta>"#,
            ),
        ]);
        assert_eq!(sniff_zip(&doc), Some(ODT));
        let d = odt(&doc, &Limits::default()).unwrap();
        assert_eq!(d.text, "Title\na   b\tc\nd é");
        assert_eq!(
            (d.title.as_deref(), d.author.as_deref()),
            (Some("T"), Some("Bo"))
        );
    }

    #[test]
    fn broken_archives_are_errors() {
        assert!(docx(b"PK\x03\x04garbage", &Limits::default()).is_err());
        assert!(odt(b"", &Limits::default()).is_err());
        let no_body = zip_of(&[("other.xml", "<a/>")]);
        assert!(docx(&no_body, &Limits::default()).is_err());
        let bad_xml = zip_of(&[("word/document.xml", "<w:p><w:t>x</w:p>")]);
        assert!(docx(&bad_xml, &Limits::default()).is_err());
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit() {
        let big = format!(
            "<w:document><w:p><w:t>{}</w:t></w:p></w:document>",
            "a".repeat(1 << 20)
        );
        let doc = zip_of(&[("word/document.xml", &big)]);
        let limits = Limits {
            max_xml_bytes: 4096,
            max_text_bytes: 1 << 20,
        };
        // Cut mid-element: the XML ends early, which is an error, not a hang.
        let r = docx(&doc, &limits);
        assert!(r.is_err() || r.unwrap().text.len() <= 4096);
    }
}
