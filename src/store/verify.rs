//! [`Store::verify`]: authenticates every sealed record of a store and
//! checks the manifest's counts, reporting every problem found.

use super::{
    DICTIONARY_KEY, MANIFEST_KEY, P_BLOCK, P_CHECKPOINT, P_DICTIONARY, P_DOC, P_FAILURE,
    P_MANIFEST, P_TOMBSTONE, Store,
};
use crate::error::Error;
use crate::seal::RecordKind;

/// What [`Store::verify`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Documents that authenticated and decoded.
    pub documents_ok: u64,
    /// Other sealed records (failures, checkpoints, manifest) that authenticated.
    pub other_ok: u64,
    /// One line per problem; empty when the store is intact.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether every record authenticated and the counts agree.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Authenticates every sealed record and checks the manifest's counts.
    pub fn verify(&self) -> VerifyReport {
        let mut report = VerifyReport::default();
        let manifest = match self.manifest() {
            Ok(m) => Some(m),
            Err(e) => {
                report.problems.push(format!("manifest: {e}"));
                None
            }
        };
        let (mut docs, mut failures) = (0u64, 0u64);
        for item in self.sealed.iter() {
            let (k, v) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    report.problems.push(format!("database: {e}"));
                    break;
                }
            };
            let result = match k.first() {
                Some(&P_DOC) => {
                    docs += 1;
                    self.open_record(&k, &v).map(|_| true)
                }
                Some(&P_FAILURE) => {
                    failures += 1;
                    self.open_failure(&k, &v).map(|_| false)
                }
                // Checkpoints and sync tokens: authenticate (their types
                // differ; each is decoded where it is read).
                Some(&P_CHECKPOINT) => self
                    .keys
                    .state
                    .open(RecordKind::Checkpoint, &k, &v)
                    .map(|_| false)
                    .map_err(|e| e.into_error(RecordKind::Checkpoint)),
                Some(&P_TOMBSTONE) => self
                    .open_state::<u64>(RecordKind::Tombstone, &k, &v)
                    .map(|_| false),
                Some(&P_MANIFEST) if &k[..] == MANIFEST_KEY => continue,
                Some(&P_BLOCK) if self.blocks.is_some() => self
                    .open_state::<super::blocks::Position>(RecordKind::BlockPosition, &k, &v)
                    .map(|_| false),
                Some(&P_DICTIONARY) if &k[..] == DICTIONARY_KEY => self
                    .keys
                    .documents
                    .open(RecordKind::Dictionary, &k, &v)
                    .map(|_| false)
                    .map_err(|e| e.into_error(RecordKind::Dictionary)),
                _ => Err(Error::Corrupt("record with an unknown key".into())),
            };
            match result {
                Ok(true) => report.documents_ok += 1,
                Ok(false) => report.other_ok += 1,
                Err(e) => report.problems.push(e.to_string()),
            }
        }
        if let Some(t) = &self.dictionary_tree {
            match t.get(DICTIONARY_KEY) {
                Ok(Some(v)) => {
                    match self
                        .keys
                        .documents
                        .open(RecordKind::Dictionary, DICTIONARY_KEY, &v)
                    {
                        Ok(_) => report.other_ok += 1,
                        Err(e) => report
                            .problems
                            .push(e.into_error(RecordKind::Dictionary).to_string()),
                    }
                }
                Ok(None) => {}
                Err(e) => report.problems.push(format!("database: {e}")),
            }
        }
        if let Some(t) = &self.tokens_tree {
            for item in t.iter() {
                match item {
                    Ok((k, v)) => match self.keys.state.open(RecordKind::Checkpoint, &k, &v) {
                        Ok(_) => report.other_ok += 1,
                        Err(e) => report
                            .problems
                            .push(e.into_error(RecordKind::Checkpoint).to_string()),
                    },
                    Err(e) => report.problems.push(format!("database: {e}")),
                }
            }
        }
        // Format 4: every block, every record in it (live or not), and
        // each live record against its key.
        if let Some(b) = self.blocks() {
            let firsts: Vec<u64> = b.positions().into_iter().map(|(f, _)| f).collect();
            drop(b);
            for first in firsts {
                match self.verify_block(first) {
                    Ok(live) => docs += live,
                    Err(e) => report.problems.push(format!("block {first}: {e}")),
                }
            }
            report.documents_ok = docs;
            let held = self.blocks().map_or(0, |b| b.live_len() as u64);
            if held != docs {
                report.problems.push(format!(
                    "{held} records are live but {docs} were read from their blocks"
                ));
                docs = held;
            }
        }
        if let Some(m) = manifest {
            report.other_ok += 1;
            if m.documents != docs {
                report.problems.push(format!(
                    "the manifest counts {} documents but {} are stored: records were removed or added outside sealdex",
                    m.documents, docs
                ));
            }
            if m.failures != failures {
                report.problems.push(format!(
                    "the manifest counts {} failures but {} are stored",
                    m.failures, failures
                ));
            }
        }
        report
    }

    /// Opens one block and decodes every record in it; returns how many
    /// of them are live (each checked against its key).
    fn verify_block(&self, first: u64) -> crate::error::Result<u64> {
        let b = self
            .blocks()
            .ok_or_else(|| Error::Corrupt("blocks need a format-4 store".into()))?;
        if !b.has_block(first) {
            // Dropped by a compaction since the blocks were listed.
            return Ok(0);
        }
        let all = b.block_records(&self.keys.documents, self.dictionary.get(), first)?;
        let mut live = 0;
        for (d, m, raw) in all {
            let record = crate::record::decode_raw(&raw)?;
            if b.is_live(d, &m) {
                self.check_mac(&record, &m)?;
                live += 1;
            }
        }
        Ok(live)
    }
}
