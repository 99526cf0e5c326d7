//! `sealdex stats`, `sealdex failures` and `sealdex verify`: what the index
//! holds, what could not be indexed, and whether every record authenticates.

use std::path::Path;
use std::process::ExitCode;

use sealdex::{Credential, IndexConfig, Store};

use crate::fail::{FOUND, Fail, NOT_FOUND};
use crate::ops::{Request, Response};
use crate::output::rfc3339;
use crate::reader::{self, Reader};
use crate::term::{self, Out};

/// `--json` alone.
#[derive(clap::Args, Debug)]
pub struct JsonArg {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn stats(args: &JsonArg, dir: &Path, cred: Credential) -> Result<ExitCode, Fail> {
    let reader = Reader::open(dir, cred, IndexConfig::default())?;
    let Response::Stats(s) = reader.ask(&Request::Stats)? else {
        return Err(reader::unexpected());
    };
    let mut out = Out::new();
    if args.json {
        out.line(&term::json(&s))?;
        out.flush()?;
        return Ok(ExitCode::from(FOUND));
    }
    let num = |k: &str| s[k].as_u64().unwrap_or(0);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    out.line(&format!(
        "index:       {}",
        term::line(s["path"].as_str().unwrap_or(""))
    ))?;
    out.line(&format!("messages:    {}", num("messages")))?;
    out.line(&format!("failures:    {}", num("failures")))?;
    if let Some(by) = s["failures_by_reason"].as_object() {
        for (reason, n) in by {
            out.line(&format!("  {:<16} {n}", term::line(reason)))?;
        }
    }
    out.line(&format!(
        "on disk:     {:.1} MiB",
        mib(num("bytes_on_disk"))
    ))?;
    match s["inverted"].as_str().unwrap_or("") {
        "current" => out.line(&format!(
            "inverted:    current, {} documents, {:.1} MiB",
            num("inverted_documents"),
            mib(num("inverted_bytes_on_disk"))
        ))?,
        "behind" => out.line(
            "inverted:    behind the store (caught up by the next `sealdex index`; \
             searches use the forward scan meanwhile)",
        )?,
        other => out.line(&format!("inverted:    {other}"))?,
    }
    if s["indexing"].as_bool() == Some(true) {
        out.line("indexing:    in progress (answered by the `sealdex index` running now)")?;
    }
    out.flush()?;
    Ok(ExitCode::from(FOUND))
}

pub fn failures(args: &JsonArg, dir: &Path, cred: Credential) -> Result<ExitCode, Fail> {
    let reader = Reader::open(dir, cred, IndexConfig::default())?;
    let Response::Failures(list) = reader.ask(&Request::Failures)? else {
        return Err(reader::unexpected());
    };
    let mut out = Out::new();
    for f in &list {
        if args.json {
            out.line(&term::json(&serde_json::json!({
                "location": f.location,
                "source": f.source,
                "id": f.id,
                "reason": f.reason,
                "detail": f.detail,
                "attempts": f.attempts,
                "last_attempt": rfc3339(Some(f.last_attempt)),
                "retry_after": rfc3339(Some(f.retry_after)),
            })))?;
        } else {
            out.line(&format!(
                "{}  {}: {}",
                term::line(&f.location),
                term::line(&f.reason),
                term::line(&f.detail)
            ))?;
        }
    }
    out.flush()?;
    if !args.json {
        term::note(&format!(
            "{} failed message(s); each is retried on later `sealdex index` runs, with backoff",
            list.len()
        ));
    }
    Ok(ExitCode::from(FOUND))
}

pub fn verify(dir: &Path, cred: Credential) -> Result<ExitCode, Fail> {
    let store = Store::open(dir, &cred)?;
    let report = store.verify();
    for p in &report.problems {
        term::note(&format!("verify: {p}"));
    }
    if report.is_ok() {
        let mut out = Out::new();
        out.line(&format!(
            "ok: {} documents and {} other records authenticated",
            report.documents_ok, report.other_ok
        ))?;
        out.flush()?;
        Ok(ExitCode::from(FOUND))
    } else {
        term::note(&format!(
            "verify: {} problem(s) found",
            report.problems.len()
        ));
        Ok(ExitCode::from(NOT_FOUND))
    }
}

pub fn passwd(dir: &Path, cred: Credential, new_key_file: Option<&Path>) -> Result<ExitCode, Fail> {
    let store = Store::open(dir, &cred)?;
    let new = crate::creds::new(new_key_file, "SEALDEX_NEW_PASSPHRASE", "New passphrase")?;
    store.change_credential(&new, sealdex::KdfParams::default())?;
    term::note("passphrase changed");
    Ok(ExitCode::from(FOUND))
}
