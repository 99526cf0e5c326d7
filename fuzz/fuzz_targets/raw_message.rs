//! Arbitrary bytes as a fetched message: the plaintext decryptor, the
//! cleaner and the record codec must never panic, normalisation must be
//! stable, and a record must come back from its encoding unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::decrypt::PassThrough;
use sealdex::{Decryptor, RawMessage, clean, record};

fuzz_target!(
    init: {
        // mail-parser has `debug_assert!`s that malformed mail can reach
        // (cargo-fuzz builds with debug assertions on). sealdex catches
        // those panics and reports the message as malformed, which is its
        // documented behaviour; but libFuzzer's panic hook aborts before
        // unwinding, so it would report them as crashes. Let panics raised
        // inside mail-parser unwind to sealdex's catch_unwind; every other
        // panic still aborts and is reported.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !in_mail_parser {
                abort(info);
            }
        }));
    },
    |data: &[u8]| {
        let raw = RawMessage {
            id: "fuzz".into(),
            bytes: data.to_vec(),
            ..RawMessage::default()
        };
        let Ok(msg) = PassThrough::default().decrypt(&raw) else {
            return;
        };
        let rec = clean::clean(msg, "fuzz", None);
        // The normaliser and tokeniser run on everything search will see.
        for field in [&rec.subject, &rec.body, &rec.from, &rec.to] {
            let normalised = clean::normalise(field);
            assert_eq!(clean::normalise(&normalised), normalised);
            for (start, token) in clean::tokens(&normalised) {
                assert_eq!(&normalised[start..start + token.len()], token);
            }
        }
        let encoded = record::encode(&rec);
        let decoded = record::decode(&encoded).expect("an encoded record decodes");
        assert_eq!(decoded, rec);
    }
);
