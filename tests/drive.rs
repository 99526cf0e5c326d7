//! Drive folders (feature `drive`): a folder of one document of each
//! type the crate reads (text, Markdown, HTML, PDF, DOCX, ODT), plus an
//! image and a file over the size limit that must be skipped with a
//! recorded reason, searched in both modes; then the real `.docx` files of
//! python-docx's test suite, the PDFs of pypdf's and the ODTs of odfpy's.
#![cfg(feature = "drive")]

mod common;
mod docs_fixtures;

use std::collections::BTreeSet;

use sealdex::backends::drive::{DocumentPassThrough, Drive};
use sealdex::extract::{self, Limits};
use sealdex::{ContentKind, Credential, Index, SecretKey, Source};

fn cred() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([0x7e; 32]))
}

use common::both_modes_config as config;

/// The ids a query returns, after checking that both modes agree.
fn both(index: &Index, q: &str) -> BTreeSet<String> {
    common::both(index, q).into_iter().collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_drive_folder_is_indexed_and_searched_in_both_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("drive");
    docs_fixtures::drive(&root, "zeta", 5000);
    let index = Index::create(&tmp.path().join("idx"), &cred(), config()).unwrap();
    let mut drive = Drive::open(&root).unwrap().with_max_document_bytes(4096);
    let name = drive.name().to_owned();
    let report = index
        .index(
            &mut drive,
            &DocumentPassThrough::default(),
            &Default::default(),
        )
        .unwrap();
    index.wait_for_inverted().unwrap();
    assert_eq!((report.stored, report.failed), (6, 2), "{report:?}");
    // The image and the big file are skipped, each with its reason.
    let mut reasons: Vec<(String, String)> = index
        .failures()
        .unwrap()
        .into_iter()
        .map(|f| (f.message.id, f.detail))
        .collect();
    reasons.sort();
    assert_eq!(reasons[0].0, "big/huge.txt");
    assert!(
        reasons[0]
            .1
            .contains("5000 bytes exceeds the 4096-byte limit"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, "photos/beach.jpeg");
    assert!(
        reasons[1].1.starts_with("skipped: a .jpeg file"),
        "{reasons:?}"
    );

    let files = set(&[
        "notes/plain.txt",
        "notes/readme.md",
        "web/page.html",
        "reports/2024/q3-summary.pdf",
        "reports/letter.docx",
        "reports/minutes.odt",
    ]);
    assert_eq!(both(&index, "kind:file"), files);
    assert!(both(&index, "kind:event OR kind:mail").is_empty());
    // Each type's text, found by a word only it holds.
    for (word, id) in [
        ("zetatxt", "notes/plain.txt"),
        ("zetamd", "notes/readme.md"),
        ("zetahtml", "web/page.html"),
        ("zetapdf", "reports/2024/q3-summary.pdf"),
        ("zetadocx", "reports/letter.docx"),
        ("zetaodt", "reports/minutes.odt"),
    ] {
        assert_eq!(both(&index, word), set(&[id]), "{word}");
    }
    // Titles and authors from the documents' own metadata.
    assert_eq!(
        both(&index, "subject:zetapdftitle"),
        set(&["reports/2024/q3-summary.pdf"])
    );
    assert_eq!(
        both(&index, "from:zetadocxauthor"),
        set(&["reports/letter.docx"])
    );
    assert_eq!(
        both(&index, "from:zetaodtauthor"),
        set(&["reports/minutes.odt"])
    );
    assert_eq!(
        both(&index, "subject:zetamdtitle"),
        set(&["notes/readme.md"])
    );
    // Markup is not text: no link target, no style sheet.
    assert!(both(&index, "zetaurl").is_empty());
    // The path: by name, by each directory, by extension.
    assert_eq!(
        both(&index, "filename:q3-summary.pdf"),
        set(&["reports/2024/q3-summary.pdf"])
    );
    assert_eq!(both(&index, "filename:reports").len(), 3);
    assert_eq!(
        both(&index, "filename:2024"),
        set(&["reports/2024/q3-summary.pdf"])
    );
    assert_eq!(both(&index, "in:notes").len(), 2);
    // The media type, as a label.
    assert_eq!(
        both(&index, "label:application/pdf"),
        set(&["reports/2024/q3-summary.pdf"])
    );
    assert_eq!(
        both(&index, "label:text/markdown"),
        set(&["notes/readme.md"])
    );
    assert_eq!(
        both(&index, "label:application/vnd.oasis.opendocument.text"),
        set(&["reports/minutes.odt"])
    );
    assert!(
        both(&index, "zetahidden").is_empty(),
        "hidden files are not listed"
    );

    let rec = index
        .get_by_id(&name, "reports/2024/q3-summary.pdf")
        .unwrap()
        .unwrap();
    assert_eq!(rec.kind, ContentKind::File);
    assert_eq!(rec.media_type.as_deref(), Some("application/pdf"));
    assert_eq!(rec.attachments, "reports/2024/q3-summary.pdf");
    assert_eq!(rec.folders, ["reports/2024"]);
    let mtime = std::fs::metadata(root.join("reports/2024/q3-summary.pdf"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(rec.timestamp, Some(mtime));

    // A new document and a deleted one are seen on the next run.
    std::fs::write(root.join("notes/new.txt"), "a fresh zetanew note").unwrap();
    std::fs::remove_file(root.join("web/page.html")).unwrap();
    let report = index
        .index(
            &mut drive,
            &DocumentPassThrough::default(),
            &Default::default(),
        )
        .unwrap();
    index.wait_for_inverted().unwrap();
    assert_eq!((report.stored, report.deleted), (1, 1), "{report:?}");
    assert_eq!(both(&index, "zetanew"), set(&["notes/new.txt"]));
    assert!(both(&index, "zetahtml").is_empty());
}

#[test]
fn broken_documents_are_errors_not_panics() {
    let l = Limits::default();
    for (name, bytes) in [
        (
            "a.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF".to_vec(),
        ),
        ("a.pdf", b"not a pdf".to_vec()),
        ("a.docx", b"PK\x03\x04\x14\x00broken".to_vec()),
        ("a.odt", Vec::new()),
        ("a.txt", b"bin\x00ary".to_vec()),
    ] {
        assert!(extract::extract(name, &bytes, &l).is_err(), "{name}");
    }
    // A PDF cut short keeps failing cleanly at every length.
    let pdf = docs_fixtures::pdf(&["hello"], "t", "a");
    for n in (0..pdf.len()).step_by(37) {
        let _ = extract::extract("cut.pdf", &pdf[..n], &l);
    }
    let doc = extract::extract("ok.pdf", &pdf, &l).unwrap();
    assert_eq!(doc.text, "hello");
}

/// An input the `pdf` fuzz target found: adobe-cmap-parser (called by
/// pdf-extract) panics on it. sealdex reports it as a malformed PDF.
#[test]
fn a_pdf_that_makes_pdf_extract_panic_is_malformed() {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fuzz/pdf-adobe-cmap-panic.pdf"),
    )
    .unwrap();
    let e = extract::extract("found.pdf", &bytes, &Limits::default()).unwrap_err();
    assert!(
        matches!(e, extract::ExtractError::Malformed { kind: "PDF", .. }),
        "{e:?}"
    );
}

/// Every real document of a corpus directory: extracted or refused with a
/// typed error, never a panic; most have text.
fn corpus(name: &str, ext: &str, min_files: usize) -> (usize, usize) {
    let Some(dir) = common::corpora(name) else {
        return (0, 0);
    };
    let files: Vec<_> = common::all_files(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    assert!(
        files.len() >= min_files,
        "{} .{ext} files in {}",
        files.len(),
        dir.display()
    );
    let mut with_text = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        match extract::extract(&f.to_string_lossy(), &bytes, &Limits::default()) {
            Ok(d) if !d.text.trim().is_empty() => with_text += 1,
            Ok(_) => {}
            Err(e) => eprintln!("  {}: {e}", f.display()),
        }
    }
    eprintln!("{name}: {} files, {with_text} with text", files.len());
    (files.len(), with_text)
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn python_docx_test_files_extract() {
    let (n, text) = corpus("docx", "docx", 40);
    assert!(text * 2 > n, "{text} of {n} with text");
    // A document whose text python-docx's own tests check.
    let dir = common::corpora("docx").unwrap();
    let d = extract::extract(
        "x.docx",
        &std::fs::read(dir.join("test_files-having-images.docx")).unwrap(),
        &Limits::default(),
    );
    assert!(d.is_ok(), "{d:?}");
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn pypdf_test_files_extract() {
    let (n, text) = corpus("pdf", "pdf", 50);
    assert!(text * 2 > n, "{text} of {n} with text");
    let dir = common::corpora("pdf").unwrap();
    let d = extract::extract(
        "crazyones.pdf",
        &std::fs::read(dir.join("crazyones.pdf")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    assert!(
        d.text.contains("crazy ones"),
        "{:?}",
        &d.text[..d.text.len().min(200)]
    );
}

#[test]
#[ignore = "needs SEALDEX_CORPORA"]
fn odfpy_test_files_extract() {
    let (n, text) = corpus("odt", "odt", 10);
    assert!(text * 2 > n, "{text} of {n} with text");
}
