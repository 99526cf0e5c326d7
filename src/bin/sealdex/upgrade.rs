//! `sealdex upgrade`: converts an index in an older store format to the
//! current one (see `sealdex::upgrade`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use sealdex::store::FORMAT_VERSION;
use sealdex::{Credential, Index, IndexConfig};

use crate::fail::{FOUND, Fail};
use crate::term::{self, Out};

/// Upgrades the index in `dir`. Other processes cannot open the index
/// while this runs (it holds the index's lock); an app embedding sealdex
/// keeps searching during its own upgrade (`Index::prepare_upgrade`).
pub fn run(dir: &Path, cred: Credential) -> Result<ExitCode, Fail> {
    let config = IndexConfig::default();
    let index = Index::open(dir, &cred, config.clone())?;
    let from = index.store().format();
    if !index.upgrade_available() {
        term::note(&format!(
            "the index is in store format {from}, the current one: nothing to upgrade"
        ));
        return Ok(ExitCode::from(FOUND));
    }
    let before = index.disk_bytes();
    term::note(&format!(
        "upgrading the index from store format {from} to {FORMAT_VERSION}: it is rebuilt beside \
         itself, then swapped in"
    ));
    let started = Instant::now();
    let prepared = index.prepare_upgrade(&cred, config)?;
    let (index, report) = prepared.finish(index)?;
    let mut out = Out::new();
    out.line(&format!(
        "upgraded to store format {FORMAT_VERSION}: {} records in {:.1} s; {} MB on disk, \
         was {} MB",
        report.records,
        started.elapsed().as_secs_f64(),
        index.disk_bytes().div_ceil(1 << 20),
        before.div_ceil(1 << 20),
    ))?;
    if report.tombstones_dropped > 0 || report.state_dropped > 0 {
        out.line(&format!(
            "not carried: {} tombstone(s) of records deleted before, {} checkpoint(s) or sync \
             token(s) of sources with no record left",
            report.tombstones_dropped, report.state_dropped
        ))?;
    }
    out.flush()?;
    Ok(ExitCode::from(FOUND))
}
