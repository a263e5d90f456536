//! Handshake and record-layer behaviour, and the fixed test vectors of docs/PROTOCOL.md.
//!
//! The vector test re-derives every value from the spec with independent code (canonical
//! bytes, HKDF, raw ChaCha20-Poly1305 from ring), so it checks the implementation against the
//! document, not against itself.

use offst_crypto::handshake::{
    AwaitingFinish, Established, HandshakeError, Initiator, Responder, VersionRange,
};
use offst_crypto::record::{RecordError, RecordKind};
use offst_crypto::{sha512_256, verify_signature, Identity};
use offst_proto::canonical::{domain, CanonicalWriter};
use offst_proto::handshake::{Finish, HandshakeMessage};
use offst_proto::{PublicKey, Signature, WireMessage};
use rand_chacha::rand_core::{CryptoRng, Error, RngCore, SeedableRng};

/// An "RNG" that yields one byte value forever: makes ephemeral keys fixed for test vectors.
struct ConstRng(u8);

impl RngCore for ConstRng {
    fn next_u32(&mut self) -> u32 {
        u32::from_ne_bytes([self.0; 4])
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_ne_bytes([self.0; 8])
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(self.0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        dest.fill(self.0);
        Ok(())
    }
}
impl CryptoRng for ConstRng {}

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

fn v1() -> VersionRange {
    VersionRange { min: 1, max: 1 }
}

/// Runs a full handshake; returns (initiator side, responder side).
fn handshake(initiator: &Identity, responder: &Identity) -> (Established, Established) {
    let (start, hello) = Initiator::start(
        initiator.clone(),
        Some(responder.public_key()),
        v1(),
        &mut rng(1),
    );
    let (waiting, accept) = Responder::new(responder.clone(), v1())
        .handle_hello(&hello, &mut rng(2))
        .unwrap();
    let (initiator_side, finish) = start.handle_reply(&accept).unwrap();
    let responder_side = waiting.handle_finish(&finish).unwrap();
    (initiator_side, responder_side)
}

fn alice() -> Identity {
    Identity::from_seed([1; 32])
}

fn bob() -> Identity {
    Identity::from_seed([2; 32])
}

#[test]
fn handshake_authenticates_both_sides_and_keys_match() {
    let (mut a, mut b) = handshake(&alice(), &bob());
    assert_eq!(a.peer, bob().public_key());
    assert_eq!(b.peer, alice().public_key());
    assert_eq!((a.version, b.version), (1, 1));
    let record = a.channel.sender.seal(RecordKind::Data, b"ping").unwrap();
    assert_eq!(b.channel.receiver.open(&record).unwrap().1, b"ping");
    let record = b.channel.sender.seal(RecordKind::Data, b"pong").unwrap();
    assert_eq!(a.channel.receiver.open(&record).unwrap().1, b"pong");
}

#[test]
fn initiator_refuses_a_responder_with_the_wrong_identity() {
    let mallory = Identity::from_seed([9; 32]);
    let (start, hello) = Initiator::start(alice(), Some(bob().public_key()), v1(), &mut rng(1));
    let (_, accept) = Responder::new(mallory.clone(), v1())
        .handle_hello(&hello, &mut rng(2))
        .unwrap();
    assert_eq!(
        start.handle_reply(&accept).err(),
        Some(HandshakeError::WrongPeer {
            expected: bob().public_key(),
            actual: mallory.public_key()
        })
    );
}

#[test]
fn forged_responder_signature_is_rejected() {
    let (start, hello) = Initiator::start(alice(), None, v1(), &mut rng(1));
    let (_, accept) = Responder::new(bob(), v1())
        .handle_hello(&hello, &mut rng(2))
        .unwrap();
    let HandshakeMessage::Accept(mut accept) = HandshakeMessage::decode(&accept).unwrap() else {
        panic!("expected accept");
    };
    let mut signature = *accept.signature.as_bytes();
    signature[0] ^= 1;
    accept.signature = Signature::from_bytes(signature);
    let forged = HandshakeMessage::Accept(accept).encode();
    assert_eq!(
        start.handle_reply(&forged).err(),
        Some(HandshakeError::BadSignature(bob().public_key()))
    );
}

#[test]
fn responder_impersonation_with_a_replayed_accept_fails() {
    // Mallory replays Bob's Accept from an earlier handshake: its signature covers the old
    // ephemeral key of the initiator, so it does not verify for the new one.
    let (_, old_hello) = Initiator::start(alice(), None, v1(), &mut rng(10));
    let (_, old_accept) = Responder::new(bob(), v1())
        .handle_hello(&old_hello, &mut rng(11))
        .unwrap();
    let (start, _new_hello) = Initiator::start(alice(), None, v1(), &mut rng(12));
    assert_eq!(
        start.handle_reply(&old_accept).err(),
        Some(HandshakeError::BadSignature(bob().public_key()))
    );
}

#[test]
fn forged_initiator_identity_is_rejected() {
    // Mallory completes the handshake but claims to be Alice: she cannot sign as Alice.
    let mallory = Identity::from_seed([9; 32]);
    let (start, hello) = Initiator::start(mallory, None, v1(), &mut rng(1));
    let (waiting, accept) = Responder::new(bob(), v1())
        .handle_hello(&hello, &mut rng(2))
        .unwrap();
    let (_, finish) = start.handle_reply(&accept).unwrap();
    let HandshakeMessage::Finish(finish) = HandshakeMessage::decode(&finish).unwrap() else {
        panic!("expected finish");
    };
    let claimed = HandshakeMessage::Finish(Finish {
        identity: alice().public_key(),
        signature: finish.signature,
    })
    .encode();
    assert_eq!(
        waiting.handle_finish(&claimed).err(),
        Some(HandshakeError::BadSignature(alice().public_key()))
    );
}

#[test]
fn finish_from_another_session_is_rejected() {
    let (start_a, hello_a) = Initiator::start(alice(), None, v1(), &mut rng(1));
    let (_, accept_a) = Responder::new(bob(), v1())
        .handle_hello(&hello_a, &mut rng(2))
        .unwrap();
    let (_, finish_a) = start_a.handle_reply(&accept_a).unwrap();
    let (_, hello_b) = Initiator::start(alice(), None, v1(), &mut rng(3));
    let (waiting_b, _) = Responder::new(bob(), v1())
        .handle_hello(&hello_b, &mut rng(4))
        .unwrap();
    assert_eq!(
        waiting_b.handle_finish(&finish_a).err(),
        Some(HandshakeError::BadSignature(alice().public_key()))
    );
}

#[test]
fn incompatible_versions_are_refused_with_a_reject_both_sides_understand() {
    let (start, hello) =
        Initiator::start(alice(), None, VersionRange { min: 5, max: 7 }, &mut rng(1));
    let refusal = Responder::new(bob(), VersionRange { min: 1, max: 2 })
        .handle_hello(&hello, &mut rng(2))
        .err()
        .unwrap();
    assert_eq!(
        refusal.error,
        HandshakeError::IncompatibleVersion {
            local_min: 1,
            local_max: 2,
            remote_min: 5,
            remote_max: 7
        }
    );
    let reject = refusal.reply.unwrap();
    assert_eq!(
        start.handle_reply(&reject).err(),
        Some(HandshakeError::IncompatibleVersion {
            local_min: 5,
            local_max: 7,
            remote_min: 1,
            remote_max: 2
        })
    );
}

#[test]
fn the_highest_common_version_is_chosen() {
    let (start, hello) =
        Initiator::start(alice(), None, VersionRange { min: 1, max: 3 }, &mut rng(1));
    let (waiting, accept) = Responder::new(bob(), VersionRange { min: 2, max: 9 })
        .handle_hello(&hello, &mut rng(2))
        .unwrap();
    let (a, finish) = start.handle_reply(&accept).unwrap();
    let b = waiting.handle_finish(&finish).unwrap();
    assert_eq!((a.version, b.version), (3, 3));
}

#[test]
fn busy_responder_is_reported_as_busy() {
    let (start, _hello) = Initiator::start(alice(), None, v1(), &mut rng(1));
    assert_eq!(
        start.handle_reply(&Responder::busy_reply(v1())).err(),
        Some(HandshakeError::Busy)
    );
}

#[test]
fn messages_out_of_turn_and_garbage_are_errors() {
    let (start, hello) = Initiator::start(alice(), None, v1(), &mut rng(1));
    assert!(matches!(
        start.handle_reply(&hello),
        Err(HandshakeError::UnexpectedMessage {
            expected: "accept",
            got: "hello"
        })
    ));
    let refusal = Responder::new(bob(), v1())
        .handle_hello(b"\x00\x01garbage", &mut rng(2))
        .err()
        .unwrap();
    assert!(matches!(refusal.error, HandshakeError::Decode(_)));
    assert!(refusal.reply.is_none());
}

#[test]
fn connecting_to_oneself_is_refused() {
    let (start, hello) = Initiator::start(alice(), None, v1(), &mut rng(1));
    let (_, accept) = Responder::new(alice(), v1())
        .handle_hello(&hello, &mut rng(2))
        .unwrap();
    assert_eq!(
        start.handle_reply(&accept).err(),
        Some(HandshakeError::SelfConnection)
    );
}

#[test]
fn tampered_and_replayed_records_are_rejected_after_a_real_handshake() {
    let (mut a, mut b) = handshake(&alice(), &bob());
    let first = a.channel.sender.seal(RecordKind::Data, b"one").unwrap();
    let mut second = a.channel.sender.seal(RecordKind::Data, b"two").unwrap();
    b.channel.receiver.open(&first).unwrap();
    assert_eq!(
        b.channel.receiver.open(&first),
        Err(RecordError::Authentication),
        "replay"
    );
    second[0] ^= 0x40;
    assert_eq!(
        b.channel.receiver.open(&second),
        Err(RecordError::Authentication),
        "tamper"
    );
}

#[test]
fn rekeys_in_both_directions_keep_the_channel_working() {
    let (mut a, mut b) = handshake(&alice(), &bob());
    for round in 0..5u8 {
        if round % 2 == 0 {
            a.channel.sender.request_rekey();
        } else {
            b.channel.sender.request_rekey();
        }
        for i in 0..3u8 {
            let record = a
                .channel
                .sender
                .seal(RecordKind::Data, &[round, i])
                .unwrap();
            assert_eq!(b.channel.receiver.open(&record).unwrap().1, vec![round, i]);
            let record = b.channel.sender.seal(RecordKind::Keepalive, &[]).unwrap();
            assert_eq!(
                a.channel.receiver.open(&record).unwrap().0,
                RecordKind::Keepalive
            );
        }
    }
}

#[test]
fn a_record_from_before_a_rekey_cannot_be_replayed_after_it() {
    let (mut a, mut b) = handshake(&alice(), &bob());
    let before = a.channel.sender.seal(RecordKind::Data, b"old").unwrap();
    b.channel.receiver.open(&before).unwrap();
    a.channel.sender.request_rekey();
    let update = a.channel.sender.seal(RecordKind::Data, b"update").unwrap();
    b.channel.receiver.open(&update).unwrap();
    assert_eq!(
        b.channel.receiver.open(&before),
        Err(RecordError::Authentication)
    );
}

// ---- Test vectors (docs/PROTOCOL.md, "Test vectors") -------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn x25519_public(scalar: [u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(scalar, x25519_dalek::X25519_BASEPOINT_BYTES)
}

fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    struct Len;
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut out = [0u8; 32];
    prk.expand(&[info], Len).unwrap().fill(&mut out).unwrap();
    out
}

#[test]
fn handshake_matches_the_documented_test_vectors() {
    // Inputs: initiator seed 01×32, responder seed 02×32, initiator ephemeral scalar 03×32,
    // responder ephemeral scalar 04×32, both speaking versions 1..=1.
    let initiator = alice();
    let responder = bob();
    let (start, hello) = Initiator::start(initiator.clone(), None, v1(), &mut ConstRng(3));
    let (waiting, accept): (AwaitingFinish, Vec<u8>) = Responder::new(responder.clone(), v1())
        .handle_hello(&hello, &mut ConstRng(4))
        .unwrap();
    let (mut established, finish) = start.handle_reply(&accept).unwrap();
    waiting.handle_finish(&finish).unwrap();

    let e_i = x25519_public([3; 32]);
    let e_r = x25519_public([4; 32]);
    let id_i: PublicKey = initiator.public_key();
    let id_r: PublicKey = responder.public_key();

    let transcript = |writer: &mut CanonicalWriter| {
        writer
            .u32(1)
            .u32(1)
            .fixed(&e_i)
            .u32(1)
            .fixed(&e_r)
            .fixed(id_r.as_bytes());
    };
    let mut responder_bytes = CanonicalWriter::new(domain::HANDSHAKE_RESPONDER);
    transcript(&mut responder_bytes);
    let responder_bytes = responder_bytes.finish();
    let HandshakeMessage::Accept(accept) = HandshakeMessage::decode(&accept).unwrap() else {
        panic!("expected accept")
    };
    verify_signature(&id_r, &responder_bytes, &accept.signature).unwrap();

    let mut initiator_bytes = CanonicalWriter::new(domain::HANDSHAKE_INITIATOR);
    transcript(&mut initiator_bytes);
    initiator_bytes
        .fixed(accept.signature.as_bytes())
        .fixed(id_i.as_bytes());
    let initiator_bytes = initiator_bytes.finish();
    let HandshakeMessage::Finish(finish) = HandshakeMessage::decode(&finish).unwrap() else {
        panic!("expected finish")
    };
    verify_signature(&id_i, &initiator_bytes, &finish.signature).unwrap();

    let mut hash_input = CanonicalWriter::new(domain::HANDSHAKE_TRANSCRIPT);
    transcript(&mut hash_input);
    hash_input
        .fixed(accept.signature.as_bytes())
        .fixed(id_i.as_bytes())
        .fixed(finish.signature.as_bytes());
    let transcript_hash = sha512_256(&hash_input.finish());
    let shared = x25519_dalek::x25519([3; 32], e_r);
    let i2r = hkdf_sha256(
        transcript_hash.as_bytes(),
        &shared,
        b"offst/v1/key/initiator-to-responder",
    );
    let r2i = hkdf_sha256(
        transcript_hash.as_bytes(),
        &shared,
        b"offst/v1/key/responder-to-initiator",
    );

    // The first record, Data "hello", initiator → responder: counter 0, no AAD.
    let record = established
        .channel
        .sender
        .seal(RecordKind::Data, b"hello")
        .unwrap();
    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &i2r).unwrap(),
    );
    let mut opened = record.clone();
    let plain = key
        .open_in_place(
            ring::aead::Nonce::assume_unique_for_key([0; 12]),
            ring::aead::Aad::empty(),
            &mut opened,
        )
        .unwrap();
    assert_eq!(plain, b"\x00hello");

    let values = [
        ("initiator identity", hex(id_i.as_bytes())),
        ("responder identity", hex(id_r.as_bytes())),
        ("initiator ephemeral", hex(&e_i)),
        ("responder ephemeral", hex(&e_r)),
        ("responder signature", hex(accept.signature.as_bytes())),
        ("initiator signature", hex(finish.signature.as_bytes())),
        ("transcript hash", hex(transcript_hash.as_bytes())),
        ("key initiator->responder", hex(&i2r)),
        ("key responder->initiator", hex(&r2i)),
        ("first record", hex(&record)),
    ];
    for (name, value) in &values {
        println!("{name}: {value}");
    }
    let expected = include_str!("handshake_vectors.txt");
    for (name, value) in &values {
        let line = format!("{name}: {value}");
        assert!(
            expected.lines().any(|l| l == line),
            "vector changed or missing: {line}"
        );
    }
}
