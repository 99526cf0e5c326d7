//! Checks the demo's sample mailbox, `data/demo/sample.mbox` (made by
//! `examples/gen_sample.rs`): that the mbox backend lists about 300 messages
//! with unique ids, that every message parses with a subject and a date, and
//! that the mix the demo relies on (languages, charsets, HTML, attachments,
//! read states) is really there. A regenerated sample that lost one of these
//! would make a demo search come back empty without anyone noticing.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use sealdex::backends::Mbox;
use sealdex::{Cursor, MessageRef, RawMessage, Source};

fn sample_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo/sample.mbox")
}

/// Lists and fetches the whole sample through the mbox backend.
fn fetch_all() -> Vec<RawMessage> {
    let mut mbox = Mbox::open(sample_path()).expect("data/demo/sample.mbox opens");
    let mut refs: Vec<MessageRef> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = mbox.list(cursor.as_ref(), 64).expect("the sample lists");
        refs.extend(page.refs);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    mbox.fetch(&refs)
        .into_iter()
        .map(|r| r.expect("every sample message fetches"))
        .collect()
}

/// The languages the sample must contain, each with words only it uses.
const LANGUAGES: &[(&str, &[&str])] = &[
    ("English", &["the ", " and "]),
    ("German", &["Grüße", "vielen Dank", "Hallo "]),
    ("French", &["Bonjour", "Merci", "Bises", "Salut"]),
    ("Spanish", &["Hola", "Saludos", "¡"]),
    ("Portuguese", &["Abraço", "Bem-vindo", "Oi pessoal"]),
    ("Japanese", &["です", "ます"]),
    ("Chinese", &["张伟", "各位同事"]),
    ("Korean", &["안녕하세요", "니다", "세요"]),
    ("Russian", &["Дмитрий", "Друзья"]),
    ("Greek", &["Ελένη"]),
];

#[test]
fn sample_mailbox_has_the_promised_mix() {
    let messages = fetch_all();
    let n = messages.len();
    assert!((280..=320).contains(&n), "about 300 messages, got {n}");
    let ids: HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), n, "message ids are unique");

    let parser = MessageParser::default();
    let mut langs: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut alternative, mut html_only, mut with_attachments) = (0, 0, 0);
    let (mut script, mut style, mut hidden, mut data_image) = (0, 0, 0, 0);
    let mut attachment_kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut charsets: BTreeMap<String, usize> = BTreeMap::new();
    let (mut qp, mut b64) = (0, 0);
    let (mut read, mut unread, mut flagged) = (0, 0, 0);
    let (mut replies, mut forwards, mut encoded_subjects) = (0, 0, 0);
    let mut all_text = String::new();

    for raw in &messages {
        let msg = parser
            .parse(&raw.bytes)
            .unwrap_or_else(|| panic!("{} parses", raw.id));
        let subject = msg.subject().unwrap_or_default();
        assert!(!subject.is_empty(), "{} has a subject", raw.id);
        let date = msg
            .date()
            .unwrap_or_else(|| panic!("{} has a date", raw.id));
        assert!(
            (2023..=2024).contains(&date.year),
            "{} dated {date}",
            raw.id
        );
        assert!(msg.from().is_some(), "{} has a sender", raw.id);

        let text: String = (0..msg.text_body_count())
            .filter_map(|i| msg.body_text(i))
            .collect::<Vec<_>>()
            .join("\n");
        let doc = format!("{subject}\n{text}");
        for (lang, markers) in LANGUAGES {
            if markers.iter().any(|m| doc.contains(m)) {
                *langs.entry(lang).or_default() += 1;
            }
        }
        all_text.push_str(&doc);

        let mut has_plain = false;
        let mut has_html = false;
        for part in &msg.parts {
            let Some(ct) = part.content_type() else {
                continue;
            };
            let sub = ct.subtype().unwrap_or_default().to_ascii_lowercase();
            match ct.ctype().to_ascii_lowercase().as_str() {
                "multipart" if sub == "alternative" => alternative += 1,
                "text" if part.attachment_name().is_none() && sub == "plain" => has_plain = true,
                "text" if part.attachment_name().is_none() && sub == "html" => has_html = true,
                _ => {}
            }
            if let Some(cs) = ct.attribute("charset") {
                *charsets.entry(cs.to_ascii_lowercase()).or_default() += 1;
            }
            match part.content_transfer_encoding() {
                Some(e) if e.eq_ignore_ascii_case("quoted-printable") => qp += 1,
                Some(e) if e.eq_ignore_ascii_case("base64") => b64 += 1,
                _ => {}
            }
            if let PartType::Html(html) = &part.body {
                script += usize::from(html.contains("<script"));
                style += usize::from(html.contains("<style"));
                hidden += usize::from(html.contains("display:none"));
                data_image += usize::from(html.contains("src=\"data:image/"));
            }
        }
        if has_html && !has_plain {
            html_only += 1;
        }
        if msg.attachment_count() > 0 {
            with_attachments += 1;
            for a in msg.attachments() {
                let name = a.attachment_name().unwrap_or_default();
                let ext = name
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                *attachment_kinds.entry(ext).or_default() += 1;
            }
        }

        let header = |name: &str| {
            msg.header_raw(name)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        if header("Status").contains('R') {
            read += 1;
        } else {
            unread += 1;
        }
        flagged += usize::from(header("X-Status").contains('F'));
        replies += usize::from(msg.in_reply_to().as_text().is_some());
        forwards += usize::from(subject.starts_with("Fwd: "));
        encoded_subjects += usize::from(header("Subject").contains("=?"));
    }

    eprintln!("sample: {n} messages");
    eprintln!("languages: {langs:?}");
    eprintln!(
        "multipart/alternative {alternative}, HTML-only {html_only}, with attachments {with_attachments} {attachment_kinds:?}"
    );
    eprintln!(
        "HTML with <script> {script}, <style> {style}, display:none {hidden}, data: image {data_image}"
    );
    eprintln!("charsets {charsets:?}, quoted-printable parts {qp}, base64 parts {b64}");
    eprintln!(
        "read {read}, unread {unread}, flagged {flagged}; replies {replies}, forwards {forwards}, RFC 2047 subjects {encoded_subjects}"
    );

    for (lang, _) in LANGUAGES {
        assert!(
            langs.get(lang).copied().unwrap_or(0) >= 1,
            "no {lang} message"
        );
    }
    assert!(
        (n * 30 / 100..=n * 45 / 100).contains(&alternative),
        "~35% multipart/alternative"
    );
    assert!(
        (n * 7 / 100..=n * 15 / 100).contains(&html_only),
        "~10% HTML-only"
    );
    assert!(
        (n * 15 / 100..=n * 25 / 100).contains(&with_attachments),
        "~20% with attachments"
    );
    for ext in ["pdf", "ics", "jpg", "docx"] {
        assert!(attachment_kinds.contains_key(ext), "no .{ext} attachment");
    }
    assert!(
        script > 0 && style > 0 && hidden > 0 && data_image > 0,
        "HTML lacks what the cleaner must strip"
    );
    for cs in ["utf-8", "iso-8859-1", "windows-1252", "iso-2022-jp"] {
        assert!(charsets.contains_key(cs), "no {cs} part");
    }
    assert!(qp > 0 && b64 > 0, "both transfer encodings");
    assert!(
        read > 0 && unread > 0 && flagged > 0,
        "read, unread and flagged messages"
    );
    assert!(
        replies > 20 && forwards > 0 && encoded_subjects > 10,
        "threads and encoded subjects"
    );

    // Words the diacritic-insensitive and CJK demos search for, decoded from
    // whatever charset carried them.
    for word in [
        "café",
        "Müller",
        "naïve",
        "São Paulo",
        "打ち合わせ",
        "Grüße",
        "€",
        "œuvre",
    ] {
        assert!(all_text.contains(word), "no {word:?} in the decoded sample");
    }
}

#[test]
fn sample_mbox_framing_is_mboxrd() {
    let bytes = std::fs::read(sample_path()).expect("sample readable");
    assert!(bytes.starts_with(b"From "), "starts with a From line");
    assert!(bytes.len() < 600 * 1024, "kept under 600 KB");
    // Body lines that began with "From " are quoted, and come back unquoted.
    assert!(
        bytes.windows(7).any(|w| w == b"\n>From "),
        "no >From quoting exercised"
    );
    let messages = fetch_all();
    assert!(
        messages
            .iter()
            .any(|m| m.bytes.windows(11).any(|w| w == b"\nFrom my si")),
        "the mbox reader should undo >From quoting"
    );
}
