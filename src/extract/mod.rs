//! Text from documents: plain text, Markdown, HTML, PDF, DOCX and ODT,
//! each through a well-kept parser, into a [`Document`] (feature `drive`).
//!
//! | media type | how |
//! |---|---|
//! | `text/plain` | UTF-8 (or UTF-16 with a byte order mark), as is |
//! | `text/markdown` | pulldown-cmark's events: the text, without the markup |
//! | `text/html` | sealdex's own HTML extractor ([`crate::text::html_to_text`]) |
//! | `application/pdf` | pdf-extract (over lopdf), title and author from the Info dictionary |
//! | DOCX | the `zip` crate and quick-xml: `word/document.xml`, title and author from `docProps/core.xml` |
//! | ODT | the same: `content.xml`, title and author from `meta.xml` |
//!
//! The media type comes from the file name's extension, checked against
//! the content where the format has a signature (`%PDF-`, a zip archive),
//! or from the content alone when the name has no extension. Anything else
//! (images, archives, executables) is [`ExtractError::Unsupported`]: a
//! drive holds many files that are not text, and their bytes must not be
//! indexed as if they were.
//!
//! Every extractor works on untrusted bytes and never panics on them: zip
//! entries are read through a size limit (a zip bomb stops at
//! [`Limits::max_xml_bytes`]), extracted text is cut at
//! [`Limits::max_text_bytes`], and pdf-extract, which has `unwrap`s that
//! malformed PDFs reach, runs under `catch_unwind`, so a panic in it
//! becomes [`ExtractError::Malformed`] (a safety net, as for mail-parser
//! in [`crate::mime`]: the panic message still reaches the panic hook).

mod markdown;
mod office;
mod pdf;

/// A document's text and what it says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// The media type it was read as.
    pub media_type: &'static str,
    /// Its title, when the document has one (PDF Info, DOCX/ODT
    /// metadata, HTML `<title>` is not read: the body says it).
    pub title: Option<String>,
    /// Its author, when the document names one.
    pub author: Option<String>,
    /// The text a reader sees, paragraphs on their own lines.
    pub text: String,
}

/// Why a document's text could not be extracted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// Not a document type sealdex reads text from (an image, an archive):
    /// skipped, not retried until the file changes.
    #[error("skipped: {0} is not a document type sealdex extracts text from")]
    Unsupported(String),
    /// Over the size limit.
    #[error("skipped: {size} bytes exceeds the {limit}-byte limit for documents")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Encrypted with a password sealdex does not have.
    #[error("the document is encrypted with a password")]
    Encrypted,
    /// The bytes are not a valid document of its type.
    #[error("malformed {kind}: {reason}")]
    Malformed {
        /// The type it was read as.
        kind: &'static str,
        /// What was wrong (never the document's content).
        reason: String,
    },
}

/// Bounds on what extraction reads and returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes read from one XML member of a DOCX or ODT archive
    /// (decompressed): a zip bomb stops here.
    pub max_xml_bytes: u64,
    /// The most bytes of text kept from one document.
    pub max_text_bytes: usize,
}

impl Default for Limits {
    /// 64 MiB of XML, 16 MiB of text: far above any real document (a
    /// 500-page novel is about 1 MB of text).
    fn default() -> Self {
        Limits {
            max_xml_bytes: 64 << 20,
            max_text_bytes: 16 << 20,
        }
    }
}

/// The DOCX media type.
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
/// The ODT media type.
pub const ODT: &str = "application/vnd.oasis.opendocument.text";

/// The media types by extension (lowercase).
const BY_EXTENSION: [(&str, &str); 11] = [
    ("txt", "text/plain"),
    ("text", "text/plain"),
    ("log", "text/plain"),
    ("md", "text/markdown"),
    ("markdown", "text/markdown"),
    ("html", "text/html"),
    ("htm", "text/html"),
    ("xhtml", "text/html"),
    ("pdf", "application/pdf"),
    ("docx", DOCX),
    ("odt", ODT),
];

/// The extension of a file name (after the last `.` of its last path
/// component), lowercased.
fn extension(name: &str) -> Option<String> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The media type a file's name says, if sealdex reads that type; `None`
/// for a name without an extension (the content decides, see
/// [`media_type`]) or with one sealdex does not read.
pub fn media_type_by_name(name: &str) -> Option<&'static str> {
    let ext = extension(name)?;
    BY_EXTENSION
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, t)| *t)
}

/// Whether sealdex can read a file of this name without looking at its
/// bytes: it has no extension, or one of a type it reads. What a drive
/// source asks before reading a file at all.
pub fn may_read(name: &str) -> bool {
    extension(name).is_none() || media_type_by_name(name).is_some()
}

/// The media type of a document, from its name and its first bytes. An
/// error says what it is instead, when sealdex does not read it.
pub fn media_type(name: &str, bytes: &[u8]) -> Result<&'static str, ExtractError> {
    let by_content = sniff(bytes);
    match (extension(name), media_type_by_name(name)) {
        (Some(ext), None) => Err(ExtractError::Unsupported(format!("a .{ext} file"))),
        (_, Some(t)) => Ok(t),
        (None, None) => by_content.ok_or_else(|| {
            ExtractError::Unsupported("a file of unknown type without an extension".into())
        }),
    }
}

/// The type the content shows, for a name without an extension.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let head = &bytes[..bytes.len().min(1024)];
    if head.starts_with(b"%PDF-") {
        return Some("application/pdf");
    }
    if head.starts_with(b"PK\x03\x04") {
        return office::sniff_zip(bytes);
    }
    if memchr::memchr(0, head).is_some() {
        return None;
    }
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    let t = lower.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with("<!doctype html") || t.starts_with("<html") {
        return Some("text/html");
    }
    std::str::from_utf8(head).is_ok().then_some("text/plain")
}

/// Extracts a document's text, its type from [`media_type`]. `name` is its
/// file name or path (only the extension is used).
///
/// ```
/// let doc = sealdex::extract::extract("notes.md", b"# Trip\n\nPack *warm* socks.", &Default::default())?;
/// assert_eq!(doc.media_type, "text/markdown");
/// assert_eq!(doc.title.as_deref(), Some("Trip"));
/// assert_eq!(doc.text, "Trip\nPack warm socks.");
/// # Ok::<(), sealdex::extract::ExtractError>(())
/// ```
pub fn extract(name: &str, bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    let media_type = media_type(name, bytes)?;
    let mut doc = match media_type {
        "text/plain" => Document {
            text: plain_text(bytes)?,
            ..Document::default()
        },
        "text/markdown" => markdown::extract(&plain_text(bytes)?),
        "text/html" => Document {
            text: crate::text::html_to_text(&plain_text(bytes)?),
            ..Document::default()
        },
        "application/pdf" => pdf::extract(bytes)?,
        DOCX => office::docx(bytes, limits)?,
        ODT => office::odt(bytes, limits)?,
        other => return Err(ExtractError::Unsupported(other.to_owned())),
    };
    doc.media_type = media_type;
    truncate(&mut doc.text, limits.max_text_bytes);
    Ok(doc)
}

/// Text bytes as a string: UTF-16 with a byte order mark decoded, UTF-8
/// (a BOM dropped) lossily. NUL bytes mean it is not text.
fn plain_text(bytes: &[u8]) -> Result<String, ExtractError> {
    let utf16 = |b: &[u8], be: bool| -> String {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| {
                if be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        return Ok(utf16(rest, false));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        return Ok(utf16(rest, true));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if memchr::memchr(0, &bytes[..bytes.len().min(64 << 10)]).is_some() {
        return Err(ExtractError::Malformed {
            kind: "text",
            reason: "binary content (NUL bytes)".into(),
        });
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_by_name_and_content() {
        assert_eq!(
            media_type("a/b/Report.PDF", b"%PDF-1.4"),
            Ok("application/pdf")
        );
        assert_eq!(media_type("README", b"hello\n"), Ok("text/plain"));
        assert_eq!(media_type("page", b"<!DOCTYPE html><p>x"), Ok("text/html"));
        assert_eq!(media_type("blob", b"%PDF-1.7\n"), Ok("application/pdf"));
        assert!(matches!(
            media_type("photo.jpeg", b"\xff\xd8"),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            media_type("blob", b"\x00\x01\x02"),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(may_read("x.docx") && may_read("Makefile") && !may_read("x.zip"));
        assert!(!may_read(".bashrc.bak"));
    }

    #[test]
    fn plain_text_encodings() {
        assert_eq!(plain_text(b"\xef\xbb\xbfhi").unwrap(), "hi");
        assert_eq!(plain_text(b"\xff\xfeh\x00i\x00").unwrap(), "hi");
        assert_eq!(plain_text(b"\xfe\xff\x00h\x00i").unwrap(), "hi");
        assert!(plain_text(b"a\x00b").is_err());
        let mut s = "héllo".to_string();
        truncate(&mut s, 2);
        assert_eq!(s, "h");
    }

    #[test]
    fn html_is_cleaned() {
        let d = extract(
            "a.html",
            b"<html><body><p>Hello <b>there</b></p><script>x()</script></body></html>",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(d.text.trim(), "Hello there");
    }
}
