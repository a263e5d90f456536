//! Offst cryptography.
//!
//! Thin, typed wrappers over `ring` (Ed25519, HKDF-SHA256, ChaCha20-Poly1305, SHA-512/256,
//! PBKDF2) plus X25519 from `x25519-dalek` (ring's X25519 only takes keys from its own OS RNG,
//! which would make handshakes impossible to replay deterministically in tests and fuzzing).
//!
//! The secure-channel [`handshake`] and [`record`] layer are sans-I/O state machines: they take
//! bytes and randomness as arguments and return bytes; they never touch a socket or a clock.
//! Only [`keyfile`] does I/O (reading and writing identity key files).

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod dh;
pub mod handshake;
pub mod hash;
pub mod identity;
pub mod kdf;
pub mod keyfile;
pub mod record;

pub use hash::{hash_lock, sha512_256};
pub use identity::{verify_signature, Identity};

/// A cryptographically secure random number generator, supplied by the caller (the OS RNG in
/// production, a seeded ChaCha RNG in tests and simulations).
pub trait SecureRng: rand_core::RngCore + rand_core::CryptoRng {}
impl<T: rand_core::RngCore + rand_core::CryptoRng> SecureRng for T {}

/// Draws `N` random bytes.
pub fn random_bytes<const N: usize>(rng: &mut dyn SecureRngDyn) -> [u8; N] {
    let mut bytes = [0u8; N];
    rng.fill(&mut bytes);
    bytes
}

/// Object-safe form of [`SecureRng`], so state machines need not be generic over the RNG.
pub trait SecureRngDyn {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

impl<T: SecureRng> SecureRngDyn for T {
    fn fill(&mut self, dest: &mut [u8]) {
        self.fill_bytes(dest);
    }
}

/// Errors of the primitive operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A signature did not verify against the claimed key and message.
    #[error("signature verification failed")]
    BadSignature,
    /// A Diffie-Hellman exchange produced the all-zero secret (a low-order peer key).
    #[error("peer's ephemeral key is of low order")]
    WeakDhKey,
    /// Authenticated decryption failed: forged, tampered, replayed or reordered data.
    #[error("decryption failed: data forged, tampered with, replayed or out of order")]
    Decryption,
    /// A key could not be constructed from the given bytes.
    #[error("invalid key material")]
    InvalidKey,
}
