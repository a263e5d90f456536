//! Frame parser: any byte stream parses into frames or a typed error, never a panic, and never
//! a payload over the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_proto::frame;
use offst_proto::limits::MAX_FRAME_LEN;

fuzz_target!(|data: &[u8]| {
    let max = data.first().map_or(MAX_FRAME_LEN, |b| usize::from(*b) * 4096);
    let mut rest = data;
    while let Ok(Some((payload, used))) = frame::parse(rest, max) {
        assert!(payload.len() <= max.min(MAX_FRAME_LEN));
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
    }
});
