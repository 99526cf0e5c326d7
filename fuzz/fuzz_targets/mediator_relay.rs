//! The relay's state machine fed untrusted frames, both before the
//! handshake and on an established connection: never a panic; anything it
//! does not accept ends in a close.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::sync::keys::{GroupKey, GroupKeys, RelayChallenge};
use sealdex::sync::protocol::frame::{self, FrameType};
use sealdex::sync::protocol::messages as m;
use sealdex::sync::protocol::relay::{RelayConnection, RelayEvent, RelayOutput};

fn established(keys: &GroupKeys) -> RelayConnection {
    let mut c = RelayConnection::new(
        keys.group_id(),
        RelayChallenge::random().unwrap(),
        0,
        1000,
        8,
    );
    let Some(RelayOutput::Frame(f)) = c.poll_output() else {
        unreachable!()
    };
    let sh: m::ServerHello = m::decode("ServerHello", frame::decode(&f).unwrap().1).unwrap();
    let eph: [u8; 32] = sh.ephemeral_public.clone().try_into().unwrap();
    let chal: [u8; 32] = sh.challenge.try_into().unwrap();
    c.recv(&m::frame(
        FrameType::ClientHello,
        &m::ClientHello {
            version: m::PROTOCOL_VERSION,
            response: keys.answer_challenge(&eph, &chal).unwrap(),
            ephemeral_public: sh.ephemeral_public,
            device_id: 1,
            encrypted_device_info: vec![],
            slots_exhausted_policy: 0,
        },
    ));
    assert!(matches!(
        c.poll_event(),
        Some(RelayEvent::Authenticated { .. })
    ));
    c.accept(m::ServerInfo::default());
    c
}

fuzz_target!(|data: &[u8]| {
    let keys = GroupKeys::derive(&GroupKey::from_bytes([7; 32])).unwrap();
    // Before the handshake.
    let mut fresh = RelayConnection::new(
        keys.group_id(),
        RelayChallenge::random().unwrap(),
        0,
        1000,
        8,
    );
    fresh.recv(data);
    while fresh.poll_output().is_some() {}
    assert!(fresh.device_id().is_none(), "garbage never authenticates");
    // Established: split the input into frames at 0xff 0xff markers.
    let mut c = established(&keys);
    for f in data.split(|&b| b == 0xff) {
        c.recv(f);
        while let Some(ev) = c.poll_event() {
            match ev {
                RelayEvent::Reflect {
                    reflect_id,
                    ephemeral: false,
                    ..
                } => c.reflect_acked(reflect_id, 1),
                RelayEvent::BeginTransaction { .. } => c.transaction_began(),
                RelayEvent::CommitTransaction { staged } => {
                    let ids: Vec<u32> = staged.iter().map(|(i, _)| *i).collect();
                    c.transaction_committed(&ids, 1);
                }
                _ => {}
            }
        }
        while c.poll_output().is_some() {}
    }
});
