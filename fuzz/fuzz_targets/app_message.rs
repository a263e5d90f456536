//! App protocol decoders: arbitrary bytes as both `AppToNode` and `NodeToApp`; decoding is
//! total, and decoded messages round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    use offst_proto::app::{AppToNode, NodeToApp};
    use offst_proto::WireMessage as _;
    if let Ok(message) = AppToNode::decode(data) {
        let again = AppToNode::decode(&message.encode()).expect("re-encoding decodes");
        assert_eq!(again, message);
    }
    if let Ok(message) = NodeToApp::decode(data) {
        let again = NodeToApp::decode(&message.encode()).expect("re-encoding decodes");
        assert_eq!(again, message);
    }
});
