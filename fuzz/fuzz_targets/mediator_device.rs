//! The device's state machine fed untrusted frames from a "relay", and the
//! envelope opener fed untrusted envelopes: never a panic, and nothing but
//! a genuine envelope ever reaches the application.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sealdex::sync::envelope::{self, ReplayGuard};
use sealdex::sync::keys::{GroupKey, GroupKeys, RelayChallenge};
use sealdex::sync::protocol::device::{DeviceEvent, DeviceMachine, Event};
use sealdex::sync::protocol::frame::FrameType;
use sealdex::sync::protocol::messages::{self as m, SlotsExhaustedPolicy};

fuzz_target!(|data: &[u8]| {
    let keys = Arc::new(GroupKeys::derive(&GroupKey::from_bytes([9; 32])).unwrap());
    assert!(
        envelope::open(&keys, 1, false, data).is_err(),
        "a forged envelope never opens"
    );
    let mut d = DeviceMachine::new(
        keys.clone(),
        2,
        b"fuzz",
        SlotsExhaustedPolicy::Reject,
        ReplayGuard::new(),
    )
    .unwrap();
    // Before the handshake, then after a well-formed one.
    let _ = d.recv(data);
    d.reconnect();
    let hello = m::ServerHello {
        version: m::PROTOCOL_VERSION,
        challenge: vec![1; 32],
        ephemeral_public: RelayChallenge::random()
            .unwrap()
            .ephemeral_public()
            .to_vec(),
    };
    d.recv(&m::frame(FrameType::ServerHello, &hello)).unwrap();
    d.recv(&m::frame(FrameType::ServerInfo, &m::ServerInfo::default()))
        .unwrap();
    for f in data.split(|&b| b == 0xff) {
        if d.recv(f).is_err() {
            break;
        }
    }
    while let Some(ev) = d.poll_event() {
        assert!(
            !matches!(ev, DeviceEvent::App(Event::Reflected { .. })),
            "forged envelopes never reach the application"
        );
    }
    while d.poll_output().is_some() {}
});
