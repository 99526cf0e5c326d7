//! A format-4 store's segment file (`store::blocks`) edited by untrusted
//! bytes: replaced, XORed at an offset, or truncated. Opening the store,
//! reading every record and `verify` must give records or typed errors,
//! never a panic; a store that opens and verifies clean reads back the
//! records that were written.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealdex::{Credential, Index, IndexConfig, KdfParams, Record, SecretKey, Store};

fn cred() -> Credential {
    Credential::AppKey(SecretKey::from_bytes([5; 32]))
}

/// A store of a few records in three batches, made once.
fn template() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sealdex-fuzz-segment-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = IndexConfig {
            kdf: KdfParams::insecure_fast(),
            inverted: false,
            ..IndexConfig::default()
        };
        let index = Index::create(&dir, &cred(), config).expect("a new store");
        for batch in 0..3 {
            let ops = (0..4)
                .map(|i| {
                    sealdex::ops::Op::upsert(Record {
                        id: format!("{batch}-{i}"),
                        source: "fuzz".into(),
                        body: format!("record {batch} {i} ").repeat(1 + i * 40),
                        ..Record::default()
                    })
                })
                .collect();
            index.apply(ops).expect("a write");
        }
        drop(index);
        dir
    })
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &dst);
        } else if e.file_name() != "sealdex.lock" {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = template().with_extension(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy(template(), &dir);
    let seg = dir.join("blocks").join("00000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    match mode % 3 {
        0 => bytes = rest.to_vec(),
        1 => {
            let at = rest
                .first()
                .map_or(0, |&b| usize::from(b) * bytes.len() / 256);
            for (i, x) in rest.iter().skip(1).enumerate() {
                if let Some(b) = bytes.get_mut(at + i) {
                    *b ^= x;
                }
            }
        }
        _ => {
            let keep = rest
                .first()
                .map_or(0, |&b| usize::from(b) * bytes.len() / 256);
            bytes.truncate(keep);
        }
    }
    std::fs::write(&seg, &bytes).unwrap();
    if let Ok(store) = Store::open(&dir, &cred()) {
        let read: Vec<_> = store.records().collect();
        let report = store.verify();
        if report.is_ok() {
            assert!(
                read.iter().all(|r| r.is_ok()),
                "verify passed but a read failed"
            );
            assert_eq!(read.len(), 12, "verify passed but records are missing");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});
