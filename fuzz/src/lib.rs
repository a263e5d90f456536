//! Shared pieces of the fuzz targets.

/// Defines a fuzz target for a wire message type: decoding arbitrary bytes never panics, and a
/// decoded message re-encodes to bytes that decode to the same message.
#[macro_export]
macro_rules! round_trip_target {
    ($message:ty) => {
        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            use offst_proto::WireMessage as _;
            if let Ok(message) = <$message>::decode(data) {
                let again = <$message>::decode(&message.encode()).expect("re-encoding decodes");
                assert_eq!(again, message);
            }
        });
    };
}
