//! PDF: the text of every page through pdf-extract (which reads fonts'
//! encodings and ToUnicode maps over lopdf), the title and author from
//! the document's Info dictionary.
//!
//! A PDF encrypted with an empty user password (common: it only restricts
//! printing or copying) is decrypted and read; one that needs a password
//! is [`ExtractError::Encrypted`].

use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{Document as Pdf, Object, OutputError, PlainTextOutput};

use super::{Document, ExtractError};

const KIND: &str = "PDF";

fn malformed(reason: impl Into<String>) -> ExtractError {
    ExtractError::Malformed {
        kind: KIND,
        reason: reason.into(),
    }
}

/// A text string of the Info dictionary (PDFDocEncoding or UTF-16).
fn info(doc: &Pdf, key: &[u8]) -> Option<String> {
    let info = doc.trailer.get_deref(b"Info", doc).ok()?.as_dict().ok()?;
    let value: &Object = info.get_deref(key, doc).ok()?;
    let s = pdf_extract::decode_text_string(value).ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_owned())
}

/// The text and metadata of a PDF.
pub(super) fn extract(bytes: &[u8]) -> Result<Document, ExtractError> {
    if !bytes.starts_with(b"%PDF-")
        && memchr::memmem::find(&bytes[..bytes.len().min(1024)], b"%PDF-").is_none()
    {
        return Err(malformed("no %PDF- header"));
    }
    catch_unwind(AssertUnwindSafe(|| extract_inner(bytes)))
        .unwrap_or_else(|_| Err(malformed("pdf-extract failed on this document")))
}

fn extract_inner(bytes: &[u8]) -> Result<Document, ExtractError> {
    let mut doc = Pdf::load_mem(bytes).map_err(|e| malformed(format!("{e}")))?;
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(ExtractError::Encrypted);
    }
    let mut text = String::new();
    {
        let mut out = PlainTextOutput::new(&mut text);
        pdf_extract::output_doc(&doc, &mut out).map_err(|e| match e {
            OutputError::PdfError(e) => malformed(format!("{e}")),
            e => malformed(format!("{e}")),
        })?;
    }
    let text = text.trim().to_owned();
    Ok(Document {
        title: info(&doc, b"Title"),
        author: info(&doc, b"Author"),
        text,
        ..Document::default()
    })
}
