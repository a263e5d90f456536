//! Ephemeral X25519 key agreement (RFC 7748).

use offst_proto::DhPublicKey;
use zeroize::Zeroizing;

use crate::{CryptoError, SecureRngDyn};

/// An ephemeral X25519 secret, used for exactly one handshake (consumed by
/// [`EphemeralSecret::agree`]) and zeroed on drop.
pub struct EphemeralSecret {
    scalar: Zeroizing<[u8; 32]>,
}

/// The shared secret of one key agreement, zeroed on drop.
pub struct SharedSecret(pub(crate) Zeroizing<[u8; 32]>);

impl EphemeralSecret {
    /// A fresh secret from the caller's secure RNG.
    pub fn generate(rng: &mut dyn SecureRngDyn) -> EphemeralSecret {
        let mut scalar = Zeroizing::new([0u8; 32]);
        rng.fill(&mut scalar[..]);
        EphemeralSecret { scalar }
    }

    /// The public key to send to the peer.
    pub fn public_key(&self) -> DhPublicKey {
        DhPublicKey::from_bytes(x25519_dalek::x25519(
            *self.scalar,
            x25519_dalek::X25519_BASEPOINT_BYTES,
        ))
    }

    /// Agrees on a shared secret with the peer's public key. A low-order peer key (all-zero
    /// result) is refused: it would let a man in the middle force a known secret.
    pub fn agree(self, peer: &DhPublicKey) -> Result<SharedSecret, CryptoError> {
        let shared = Zeroizing::new(x25519_dalek::x25519(*self.scalar, *peer.as_bytes()));
        if shared.iter().all(|byte| *byte == 0) {
            return Err(CryptoError::WeakDhKey);
        }
        Ok(SharedSecret(shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn both_sides_agree_on_the_same_secret() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let a = EphemeralSecret::generate(&mut rng);
        let b = EphemeralSecret::generate(&mut rng);
        let (a_pub, b_pub) = (a.public_key(), b.public_key());
        assert_eq!(*a.agree(&b_pub).unwrap().0, *b.agree(&a_pub).unwrap().0);
    }

    #[test]
    fn low_order_peer_key_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let a = EphemeralSecret::generate(&mut rng);
        assert!(matches!(
            a.agree(&DhPublicKey::from_bytes([0; 32])),
            Err(CryptoError::WeakDhKey)
        ));
    }
}
