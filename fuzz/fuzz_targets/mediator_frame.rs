//! The frame codec and every payload decoder of the mediator protocol, on
//! untrusted bytes: never a panic, and what decodes re-encodes to a frame
//! that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealdex::sync::protocol::frame::{self, FrameType};
use sealdex::sync::protocol::messages as m;

fn check<M: prost::Message + Default + PartialEq>(ty: FrameType, payload: &[u8]) {
    if let Ok(msg) = m::decode::<M>("fuzz", payload) {
        let again = m::frame(ty, &msg);
        let (ty2, p2) = frame::decode(&again).expect("a re-encoded frame decodes");
        assert_eq!(ty2, ty);
        assert!(m::decode::<M>("fuzz", p2).expect("re-encoded payload decodes") == msg);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok((ty, payload)) = frame::decode(data) else {
        return;
    };
    use FrameType::*;
    match ty {
        ServerHello => check::<m::ServerHello>(ty, payload),
        ClientHello => check::<m::ClientHello>(ty, payload),
        ServerInfo => check::<m::ServerInfo>(ty, payload),
        DevicesInfo => check::<m::DevicesInfo>(ty, payload),
        DropDevice | DropDeviceAck => check::<m::DeviceRef>(ty, payload),
        BeginTransaction => check::<m::BeginTransaction>(ty, payload),
        TransactionRejected | TransactionEnded => check::<m::TransactionInfo>(ty, payload),
        Reflect => check::<m::Reflect>(ty, payload),
        ReflectAck => check::<m::ReflectAck>(ty, payload),
        Reflected => check::<m::Reflected>(ty, payload),
        ReflectedAck => check::<m::ReflectedAck>(ty, payload),
        _ => check::<m::Empty>(ty, payload),
    }
});
