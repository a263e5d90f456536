//! The handshake state machines fed hostile peer messages: the first byte picks the role under
//! attack, the rest is the peer's message(s). No input may panic or complete a handshake
//! without the right signatures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_crypto::handshake::{Initiator, Responder, VersionRange};
use offst_crypto::Identity;
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(*selector));
    let us = Identity::from_seed([1; 32]);
    let versions = VersionRange::default();
    if selector % 2 == 0 {
        // Attack the initiator with an arbitrary reply.
        let (initiator, _hello) = Initiator::start(us, None, versions, &mut rng);
        let result = initiator.handle_reply(rest);
        assert!(result.is_err(), "a forged Accept cannot verify");
    } else {
        // Attack the responder: an arbitrary Hello then an arbitrary Finish.
        let split = rest.first().map_or(0, |b| usize::from(*b)).min(rest.len());
        let (hello, finish) = rest.split_at(split);
        let responder = Responder::new(us, versions);
        if let Ok((waiting, _accept)) = responder.handle_hello(hello, &mut rng) {
            assert!(waiting.handle_finish(finish).is_err(), "a forged Finish cannot verify");
        }
    }
});
