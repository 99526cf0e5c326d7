//! The shared-index messages (`sync::share::wire`) on untrusted bytes: an
//! envelope's plaintext from a group member running another build. Never a
//! panic; whatever decodes to a whole message re-encodes to envelopes that
//! decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::sync::share::wire::{self, Reassembly, Received};

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembly::default();
    // Feed the input as one envelope, then as up to four pieces (parts of
    // one message arrive as several envelopes).
    if let Ok(Received::Msg(msg, _)) = r.receive(1, data) {
        let again = wire::encode(&msg).expect("a decoded message encodes");
        let mut r2 = Reassembly::default();
        let mut whole = None;
        for (i, p) in again.iter().enumerate() {
            if let Received::Msg(m, _) = r2.receive(i as u64, p).expect("own encoding decodes") {
                whole = Some(m);
            }
        }
        assert_eq!(whole.as_deref(), Some(&*msg));
    }
    for (i, piece) in data.chunks(data.len().div_ceil(4).max(1)).enumerate() {
        let _ = r.receive(10 + i as u64, piece);
    }
});
