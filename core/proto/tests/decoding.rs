//! Property tests: encode/decode round-trips, and decoding is total (never panics, never
//! accepts a damaged message as a different valid one silently) under truncation and bit flips.

use offst_proto::frame;
use offst_proto::handshake::{Accept, Finish, HandshakeMessage, Hello, Reject, RejectReason};
use offst_proto::limits::MAX_FRAME_LEN;
use offst_proto::{DhPublicKey, PublicKey, Signature, WireMessage};
use proptest::prelude::*;

fn arb_bytes<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    proptest::collection::vec(any::<u8>(), N).prop_map(|v| {
        let mut out = [0u8; N];
        out.copy_from_slice(&v);
        out
    })
}

fn arb_handshake_message() -> impl Strategy<Value = HandshakeMessage> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), arb_bytes::<32>()).prop_map(|(a, b, key)| {
            HandshakeMessage::Hello(Hello {
                min_version: a.min(b),
                max_version: a.max(b),
                ephemeral_key: DhPublicKey::from_bytes(key),
            })
        }),
        (
            any::<u32>(),
            arb_bytes::<32>(),
            arb_bytes::<32>(),
            arb_bytes::<64>()
        )
            .prop_map(|(version, eph, id, sig)| HandshakeMessage::Accept(Accept {
                version,
                ephemeral_key: DhPublicKey::from_bytes(eph),
                identity: PublicKey::from_bytes(id),
                signature: Signature::from_bytes(sig),
            })),
        (any::<bool>(), any::<u32>(), any::<u32>()).prop_map(|(busy, min, max)| {
            HandshakeMessage::Reject(Reject {
                reason: if busy {
                    RejectReason::Busy
                } else {
                    RejectReason::IncompatibleVersion
                },
                min_version: min,
                max_version: max,
            })
        }),
        (arb_bytes::<32>(), arb_bytes::<64>()).prop_map(|(id, sig)| {
            HandshakeMessage::Finish(Finish {
                identity: PublicKey::from_bytes(id),
                signature: Signature::from_bytes(sig),
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn handshake_messages_round_trip(message in arb_handshake_message()) {
        prop_assert_eq!(HandshakeMessage::decode(&message.encode()).unwrap(), message);
    }

    #[test]
    fn truncated_handshake_messages_never_panic(message in arb_handshake_message(), cut in any::<prop::sample::Index>()) {
        let bytes = message.encode();
        let cut = cut.index(bytes.len());
        // Any outcome but a panic is fine; a strict prefix can never be the full message.
        if let Ok(decoded) = HandshakeMessage::decode(&bytes[..cut]) {
            prop_assert_ne!(decoded, message);
        }
    }

    #[test]
    fn bit_flipped_handshake_messages_never_panic(message in arb_handshake_message(), flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8)) {
        let mut bytes = message.encode();
        for (index, bit) in flips {
            let i = index.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        let _ = HandshakeMessage::decode(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = HandshakeMessage::decode(&bytes);
    }

    #[test]
    fn frames_round_trip_in_any_split(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6)) {
        let mut stream = Vec::new();
        for payload in &payloads {
            frame::encode(payload, &mut stream).unwrap();
        }
        let mut decoded = Vec::new();
        let mut rest = &stream[..];
        while let Some((payload, used)) = frame::parse(rest, MAX_FRAME_LEN).unwrap() {
            decoded.push(payload.to_vec());
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(decoded, payloads);
    }

    #[test]
    fn frame_parser_is_total_on_arbitrary_input(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..=MAX_FRAME_LEN) {
        if let Ok(Some((payload, used))) = frame::parse(&bytes, max) {
            prop_assert!(payload.len() <= max);
            prop_assert!(used <= bytes.len());
        }
    }
}
