//! The store's record codec: sealing and opening records (under the
//! documents' key, compressed against the store's dictionary once it has
//! one) and the small sealed state (manifest, checkpoints, failures,
//! tombstones).

use serde::Serialize;

use super::{DICTIONARY_KEY, Store};
use crate::error::{Error, Result};
use crate::record::{self, Dictionary, Record};
use crate::seal::RecordKind;
use crate::store::DocKey;

impl Store {
    pub(super) fn load_dictionary(&self) -> Result<()> {
        if self.format < 2 {
            return Ok(());
        }
        let tree = self.dictionary_tree.as_ref().unwrap_or(&self.sealed);
        let Some(sealed) = tree.get(DICTIONARY_KEY)? else {
            return Ok(());
        };
        let plain = self
            .keys
            .documents
            .open(RecordKind::Dictionary, DICTIONARY_KEY, &sealed)
            .map_err(|e| e.into_error(RecordKind::Dictionary))?;
        let dictionary = Dictionary::from_bytes(plain)
            .ok_or_else(|| Error::Corrupt("the store's dictionary is malformed".into()))?;
        // Set once, here, before the store is shared.
        let _ = self.dictionary.set(dictionary);
        self.dictionary_stored
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// The dictionary to compress `raw` (a record's encoding) against, if
    /// there is one yet. Until there is, keeps a sample of `raw` and makes
    /// the dictionary once the samples are large enough.
    fn dictionary_for(&self, raw: &[u8]) -> Option<&Dictionary> {
        if self.format < 2 {
            return None;
        }
        if let Some(d) = self.dictionary.get() {
            return Some(d);
        }
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(d) = self.dictionary.get() {
            return Some(d);
        }
        let room = record::DICTIONARY_BYTES.saturating_sub(samples.len());
        let take = raw.len().min(record::DICTIONARY_SAMPLE).min(room);
        samples.extend_from_slice(&raw[..take]);
        if samples.len() >= record::DICTIONARY_BYTES {
            let _ = self.dictionary.set(Dictionary::from_samples(&samples));
            // Zeroized as it is replaced.
            *samples = zeroize::Zeroizing::new(Vec::new());
        }
        // This record is part of the dictionary: it goes without.
        None
    }

    /// Encodes and seals a record under `key` (the write path makes the
    /// key first, to read what the store holds there): the CPU-heavy part
    /// of a write, safe to run on many threads at once.
    ///
    /// In a format-4 store, records are sealed a block at a time when the
    /// batch is written: this returns the record's encoding, which the
    /// batch packs (and, until there is a dictionary, samples it).
    pub(crate) fn seal_record_at(&self, key: &DocKey, record: &Record) -> Vec<u8> {
        let raw = record::raw(record);
        if self.blocks.is_some() {
            let _ = self.dictionary_for(&raw);
            return raw;
        }
        let encoded = record::with_layout(match self.dictionary_for(&raw) {
            Some(d) => record::compress_with(raw, d),
            None => record::compress(raw),
        });
        self.keys
            .documents
            .seal(RecordKind::Document, key.as_bytes(), &encoded)
    }

    /// Authenticates and decodes one stored document.
    pub fn open_record(&self, key: &[u8], sealed: &[u8]) -> Result<Record> {
        let plain = self
            .keys
            .documents
            .open(RecordKind::Document, key, sealed)
            .map_err(|e| e.into_error(RecordKind::Document))?;
        let dictionary = self.dictionary.get();
        if dictionary.is_none() && record::needs_dictionary(&plain) {
            return Err(Error::Tampered {
                kind: RecordKind::Dictionary.name(),
                detail: "a record needs the store's dictionary, which is missing".into(),
            });
        }
        record::decode_with(&plain, dictionary)
    }

    pub(super) fn open_state<T: serde::de::DeserializeOwned>(
        &self,
        kind: RecordKind,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<T> {
        let plain = self
            .keys
            .state
            .open(kind, key, sealed)
            .map_err(|e| e.into_error(kind))?;
        let undecodable = || Error::Corrupt(format!("undecodable {} record", kind.name()));
        let plain = if self.format >= 2 {
            record::decompress(&plain, None).map_err(|_| undecodable())?
        } else {
            plain
        };
        postcard::from_bytes(&plain).map_err(|_| undecodable())
    }

    pub(super) fn seal_state<T: Serialize>(
        &self,
        kind: RecordKind,
        key: &[u8],
        value: &T,
    ) -> Vec<u8> {
        let plain = postcard::to_allocvec(value).expect("serialising state cannot fail");
        let plain = if self.format >= 2 {
            record::compress(plain)
        } else {
            plain
        };
        self.keys.state.seal(kind, key, &plain)
    }
}
