//! The pipeline's controls and failure handling: cancel and resume, pause,
//! background runs with progress, retries with backoff.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sealdex::decrypt::PassThrough;
use sealdex::pipeline::{self, Control, IndexOptions, Phase, RetryPolicy};
use sealdex::{
    Credential, DecryptError, Decryptor, Error, Index, IndexConfig, KdfParams, Message, RawMessage,
};

fn mailbox(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("{i:05}.eml")),
            format!(
                "From: Sender {i} <s{i}@example.org>\r\nSubject: message number {i}\r\n\
                 Date: Tue, 1 Oct 2024 10:00:00 +0000\r\n\r\nbody of message {i}\r\n"
            ),
        )
        .unwrap();
    }
}

fn index(dir: &Path) -> Index {
    Index::create(
        dir,
        &Credential::passphrase("pw"),
        IndexConfig {
            kdf: KdfParams::insecure_fast(),
            ..IndexConfig::default()
        },
    )
    .unwrap()
}

fn small_batches() -> IndexOptions {
    IndexOptions {
        batch_messages: 16,
        ..IndexOptions::default()
    }
}

#[test]
fn cancel_then_resume_stores_everything_once() {
    let tmp = tempfile::tempdir().unwrap();
    mailbox(&tmp.path().join("mail"), 600);
    let index = index(&tmp.path().join("idx"));
    let mut source = sealdex::backends::open_path(&tmp.path().join("mail")).unwrap();
    let control = Control::new();
    let c = control.clone();
    let mut events = 0;
    let err = pipeline::run(
        &index,
        source.as_mut(),
        &PassThrough::default(),
        &small_batches(),
        &control,
        &mut |p| {
            events += 1;
            assert!(p.total == Some(600) || p.phase != Phase::Listing);
            if events == 3 {
                c.cancel();
            }
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    let partial = index.store().len().unwrap();
    assert!(partial > 0 && partial < 600, "{partial}");
    assert!(
        index
            .store()
            .checkpoint(source.name())
            .unwrap()
            .unwrap()
            .cursor
            .is_some()
    );

    let mut source = sealdex::backends::open_path(&tmp.path().join("mail")).unwrap();
    let report = pipeline::run(
        &index,
        source.as_mut(),
        &PassThrough::default(),
        &small_batches(),
        &Control::new(),
        &mut |_| {},
    )
    .unwrap();
    assert!(report.stored as usize <= 600 - partial as usize + 16 * 2);
    assert_eq!(index.store().len().unwrap(), 600);
    assert!(index.store().verify().is_ok());
}

#[test]
fn pause_and_resume_from_another_thread() {
    let tmp = tempfile::tempdir().unwrap();
    mailbox(&tmp.path().join("mail"), 200);
    let index = Arc::new(index(&tmp.path().join("idx")));
    let source = sealdex::backends::open_path(&tmp.path().join("mail")).unwrap();
    let handle = pipeline::spawn(
        Arc::clone(&index),
        source,
        Arc::new(PassThrough::default()),
        small_batches(),
    );
    handle.control().pause();
    assert!(handle.control().is_paused());
    std::thread::sleep(Duration::from_millis(100));
    let during_pause = index.store().len().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Paused: at most the batches already in flight land.
    assert!(index.store().len().unwrap() <= during_pause + 16 * 4);
    handle.control().resume();
    let progress = handle.progress().clone();
    let report = handle.join().unwrap();
    assert_eq!(report.stored, 200);
    let events: Vec<_> = progress.try_iter().collect();
    let last = events.last().unwrap();
    assert_eq!(last.phase, Phase::Done);
    assert_eq!(last.done, 200);
    assert!(last.bytes > 0);
    assert_eq!(index.store().len().unwrap(), 200);
}

/// Fails every message whose id contains "7" until switched off.
struct Flaky(AtomicBool);

impl Decryptor for Flaky {
    fn decrypt(&self, raw: &RawMessage) -> Result<Message, DecryptError> {
        if self.0.load(Ordering::SeqCst) && raw.id.contains('7') {
            return Err(DecryptError::CannotDecrypt("key not yet synced".into()));
        }
        PassThrough::default().decrypt(raw)
    }
}

#[test]
fn failures_are_recorded_then_retried_with_backoff() {
    let tmp = tempfile::tempdir().unwrap();
    mailbox(&tmp.path().join("mail"), 100);
    let index = index(&tmp.path().join("idx"));
    let flaky = Flaky(AtomicBool::new(true));
    let options = IndexOptions {
        retry: RetryPolicy {
            base_delay: Duration::ZERO,
            ..RetryPolicy::default()
        },
        ..small_batches()
    };
    let run = |opts: &IndexOptions| {
        let mut source = sealdex::backends::open_path(&tmp.path().join("mail")).unwrap();
        pipeline::run(
            &index,
            source.as_mut(),
            &flaky,
            opts,
            &Control::new(),
            &mut |_| {},
        )
        .unwrap()
    };
    let first = run(&options);
    let failing = (0..100).filter(|i| format!("{i:05}").contains('7')).count();
    assert_eq!(first.failed as usize, failing);
    assert_eq!(index.store().len().unwrap() as usize, 100 - failing);
    let failures = index.store().failures().unwrap();
    assert_eq!(failures.len(), failing);
    assert!(
        failures
            .iter()
            .all(|f| f.reason == "cannot-decrypt" && f.attempts == 1)
    );

    // Still failing: attempts grow.
    let second = run(&options);
    assert_eq!(second.failed as usize, failing);
    assert!(
        index
            .store()
            .failures()
            .unwrap()
            .iter()
            .all(|f| f.attempts == 2)
    );

    // With backoff, a later run does not retry yet.
    let slow = IndexOptions {
        retry: RetryPolicy::default(),
        ..small_batches()
    };
    flaky.0.store(false, Ordering::SeqCst);
    let third = run(&slow);
    assert_eq!(third.failed, 0);
    assert_eq!(index.store().failures().unwrap().len(), failing);

    // Once due, the retry succeeds and the failures are cleared.
    let fourth = run(&options);
    assert_eq!(fourth.stored as usize, failing);
    assert!(index.store().failures().unwrap().is_empty());
    assert_eq!(index.store().len().unwrap(), 100);
    assert!(index.store().verify().is_ok());
}
