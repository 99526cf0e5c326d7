//! `sealdex demo`: index the sample mailbox bundled in the binary into a
//! throw-away index under a random key, run a few searches, print them, and
//! remove everything.

use sealdex::backends::Mbox;
use sealdex::decrypt::PassThrough;
use std::process::ExitCode;

use sealdex::{Credential, Error, Index, IndexConfig, KdfParams, SearchOptions, SecretKey};

use crate::fail::{FOUND, Fail};
use crate::output::{Style, print_page};
use crate::term::Out;

/// The sample mailbox (see data/demo/README.md), compiled in so the demo
/// works wherever the binary is.
const SAMPLE: &[u8] = include_bytes!("../../../data/demo/sample.mbox");

/// The searches the demo shows, with what each one demonstrates.
const SEARCHES: &[(&str, &str)] = &[
    (
        "invoice",
        "a word, as a prefix: invoice, invoices, invoiced",
    ),
    ("from:alice", "a field: names and addresses both match"),
    ("\"project kickoff\"", "an exact phrase"),
    (
        "has:attachment after:2024-06-01",
        "filters: attachments, dates",
    ),
    (
        "cafe",
        "diacritics and case do not matter: café, Café, CAFE",
    ),
    ("meeting -newsletter", "exclusion"),
    ("subject:meeting OR subject:agenda", "OR, within a field"),
    ("東京", "CJK: every ideograph is a token"),
    ("is:unread -newsletter", "flags, with an exclusion"),
];

pub fn run() -> Result<ExitCode, Fail> {
    let tmp = tempfile::tempdir().map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let mbox = tmp.path().join("sample.mbox");
    std::fs::write(&mbox, SAMPLE).map_err(|e| Error::Io {
        path: mbox.clone(),
        source: e,
    })?;
    let key = Credential::AppKey(SecretKey::random()?);
    let config = IndexConfig {
        kdf: KdfParams::insecure_fast(),
        ..IndexConfig::default()
    };
    let index = Index::create(&tmp.path().join("index"), &key, config)?;
    let mut source = Mbox::open(&mbox).map_err(|e| Error::source("sample mailbox", e))?;
    let report = index.index(&mut source, &PassThrough::default(), &Default::default())?;
    let mut out = Out::new();
    out.line(&format!(
        "Indexed {} sample messages into an encrypted index in {:.0} ms \
         (AES-256-GCM, key in memory only).\n",
        report.stored,
        report.elapsed.as_secs_f64() * 1000.0
    ))?;
    let style = Style {
        json: false,
        colour: crate::term::ColorChoice::Auto.enabled(),
        width: crate::term::stdout_width(),
        summary: false,
    };
    for (query, what) in SEARCHES {
        let started = std::time::Instant::now();
        let results = index.search(
            query,
            &SearchOptions {
                limit: Some(3),
                ..SearchOptions::default()
            },
        )?;
        out.line(&format!(
            "$ sealdex search '{query}'    # {what}\n  {} match(es) in {:.2} ms",
            results.total,
            started.elapsed().as_secs_f64() * 1000.0
        ))?;
        print_page(&mut out, &crate::ops::page_of(results), &style)?;
        out.line("")?;
    }
    out.line("The index and its key are gone now. Index your own mail with `sealdex index PATH`.")?;
    out.flush()?;
    Ok(ExitCode::from(FOUND))
}
