//! Documents written by the tests themselves, for the drive tests: a PDF
//! (one page, Helvetica, an Info dictionary), a DOCX and an ODT (zip
//! archives of the XML parts Word and LibreOffice write), built byte by
//! byte here so that every word in them is known. Real documents that no
//! one on this project wrote are the corpora (`scripts/fetch-corpora.sh
//! docx pdf odt`).
#![allow(dead_code)]

use std::io::Write;

/// A one-page PDF showing `lines`, with `title` and `author` in its Info
/// dictionary; the cross-reference table's offsets are computed as the
/// objects are written.
pub fn pdf(lines: &[&str], title: &str, author: &str) -> Vec<u8> {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
    for l in lines {
        content.push_str(&format!("({}) Tj T*\n", esc(l)));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
        format!("<< /Title ({}) /Author ({}) >>", esc(title), esc(author)),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn zip(members: &[(&str, String)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    for (name, body) in members {
        // ODF wants its mimetype first and stored.
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(if *name == "mimetype" {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            });
        z.start_file(*name, opts).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    z.finish().unwrap();
    out.into_inner()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A DOCX of `paragraphs`, with `title` and `author` in its core properties.
pub fn docx(paragraphs: &[&str], title: &str, author: &str) -> Vec<u8> {
    let body: String = paragraphs
        .iter()
        .map(|p| {
            format!(
                "<w:p><w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>",
                xml_escape(p)
            )
        })
        .collect();
    zip(&[
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>"#
                .to_string(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>"#
                .to_string(),
        ),
        (
            "word/document.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
            ),
        ),
        (
            "docProps/core.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{}</dc:title><dc:creator>{}</dc:creator></cp:coreProperties>"#,
                xml_escape(title),
                xml_escape(author)
            ),
        ),
    ])
}

/// An ODT of `paragraphs`, with `title` and `author` in its metadata.
pub fn odt(paragraphs: &[&str], title: &str, author: &str) -> Vec<u8> {
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<text:p>{}</text:p>", xml_escape(p)))
        .collect();
    zip(&[
        ("mimetype", "application/vnd.oasis.opendocument.text".to_string()),
        (
            "content.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3"><office:body><office:text>{body}</office:text></office:body></office:document-content>"#
            ),
        ),
        (
            "meta.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-meta xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.3"><office:meta><dc:title>{}</dc:title><meta:initial-creator>{}</meta:initial-creator></office:meta></office:document-meta>"#,
                xml_escape(title),
                xml_escape(author)
            ),
        ),
        (
            "META-INF/manifest.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/></manifest:manifest>"#
                .to_string(),
        ),
    ])
}

/// A drive folder of one document of each kind, plus what must be
/// skipped (an image, a file over `big` bytes) and a hidden file.
pub fn drive(root: &std::path::Path, word: &str, big: usize) {
    let w = |rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    w(
        "notes/plain.txt",
        format!("A plain note about {word}txt.\n").as_bytes(),
    );
    w(
        "notes/readme.md",
        format!("# Readme {word}mdtitle\n\nSome *{word}md* text with a [link](https://example.org/{word}url).\n").as_bytes(),
    );
    w(
        "web/page.html",
        format!("<html><head><title>t</title><style>.x{{}}</style></head><body><p>The {word}html page</p></body></html>").as_bytes(),
    );
    w(
        "reports/2024/q3-summary.pdf",
        &pdf(
            &[&format!("Quarterly {word}pdf summary"), "revenue grew"],
            &format!("Q3 {word}pdftitle"),
            &format!("Dana {word}pdfauthor"),
        ),
    );
    w(
        "reports/letter.docx",
        &docx(
            &[&format!("Dear {word}docx reader,"), "see you soon"],
            &format!("Letter {word}docxtitle"),
            &format!("Eve {word}docxauthor"),
        ),
    );
    w(
        "reports/minutes.odt",
        &odt(
            &[&format!("Minutes of the {word}odt meeting")],
            &format!("Minutes {word}odttitle"),
            &format!("Finn {word}odtauthor"),
        ),
    );
    w("photos/beach.jpeg", b"\xff\xd8\xff\xe0 not really a jpeg");
    w("big/huge.txt", &vec![b'a'; big]);
    w(
        ".hidden/secret.txt",
        format!("hidden {word}hidden").as_bytes(),
    );
}
