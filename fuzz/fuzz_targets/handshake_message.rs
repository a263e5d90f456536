//! Handshake message decoder: total, and every decoded message re-encodes to a message that
//! decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_proto::handshake::HandshakeMessage;
use offst_proto::WireMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = HandshakeMessage::decode(data) {
        let again = HandshakeMessage::decode(&message.encode()).expect("re-encoding decodes");
        assert_eq!(again, message);
    }
});
