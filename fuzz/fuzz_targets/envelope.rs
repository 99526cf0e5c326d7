//! Arbitrary bytes as a sealed envelope read from disk: opening must fail
//! cleanly (truncated, unknown version, bad tag), never panic; and the
//! record decoder must reject garbage the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::SecretKey;
use sealdex::record;
use sealdex::seal::{RecordKind, Sealer};

fuzz_target!(|data: &[u8]| {
    let sealer = Sealer::new(&SecretKey::from_bytes([7; 32]));
    // A forged envelope has a negligible chance of authenticating, so any
    // success here would be a bug worth seeing: the assertion reports it.
    let opened = sealer.open(RecordKind::Document, b"doc-key", data);
    assert!(opened.is_err(), "a forged envelope authenticated");
    let _ = record::decode(data);

    // And a genuine envelope of these bytes opens to them again.
    let sealed = sealer.seal(RecordKind::Document, b"doc-key", data);
    let opened = sealer.open(RecordKind::Document, b"doc-key", &sealed);
    assert_eq!(opened.as_deref(), Ok(data));
});
