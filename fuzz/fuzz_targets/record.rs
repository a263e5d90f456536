//! Record layer: arbitrary records never open (they are not authentic) and never panic; a
//! genuine record stream with arbitrary payloads and rekeys opens exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_crypto::handshake::{Initiator, Responder, VersionRange};
use offst_crypto::record::RecordKind;
use offst_crypto::Identity;
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0);
    let (initiator, hello) = Initiator::start(
        Identity::from_seed([1; 32]),
        None,
        VersionRange::default(),
        &mut rng,
    );
    let (waiting, accept) = Responder::new(Identity::from_seed([2; 32]), VersionRange::default())
        .handle_hello(&hello, &mut rng)
        .expect("honest hello");
    let (mut a, finish) = initiator.handle_reply(&accept).expect("honest accept");
    let mut b = waiting.handle_finish(&finish).expect("honest finish");

    // Hostile bytes first: must be rejected.
    let mut hostile = data.to_vec();
    assert!(b.channel.receiver.open_in_place(&mut hostile).is_err());

    // Then an honest stream shaped by the input: chunk sizes and rekeys.
    let b_fresh = &mut b;
    let mut rest = data;
    while let Some((&control, tail)) = rest.split_first() {
        let len = usize::from(control & 0x3f).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        if control & 0x80 != 0 {
            a.channel.sender.request_rekey();
        }
        let kind = if control & 0x40 != 0 { RecordKind::Keepalive } else { RecordKind::Data };
        let record = a.channel.sender.seal(kind, payload).expect("small payload");
        let (opened_kind, opened) = b_fresh.channel.receiver.open(&record).expect("genuine record");
        assert_eq!((opened_kind, opened.as_slice()), (kind, payload));
        rest = tail;
    }
    let _ = &mut b;
});
