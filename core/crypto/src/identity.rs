//! Ed25519 identities: every node, relay, index server and app is its public key.

use std::fmt;
use std::sync::Arc;

use offst_proto::{PublicKey, Signature};
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use zeroize::Zeroizing;

use crate::{CryptoError, SecureRngDyn};

/// A private identity: an Ed25519 key pair. Cheap to clone (shared); the seed is zeroed on drop
/// and never printed (`Debug` shows only the public key).
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    key_pair: Ed25519KeyPair,
    seed: Zeroizing<[u8; 32]>,
    public_key: PublicKey,
}

impl Identity {
    /// The identity whose private key is this 32-byte seed (RFC 8032 secret key).
    pub fn from_seed(seed: [u8; 32]) -> Identity {
        let seed = Zeroizing::new(seed);
        // A 32-byte Ed25519 seed is always valid; `from_seed_unchecked` only fails on a
        // wrong length, which the array type rules out.
        let key_pair = match Ed25519KeyPair::from_seed_unchecked(&seed[..]) {
            Ok(key_pair) => key_pair,
            Err(_) => unreachable!("a 32-byte seed is always a valid Ed25519 secret key"),
        };
        let mut public = [0u8; 32];
        public.copy_from_slice(key_pair.public_key().as_ref());
        Identity {
            inner: Arc::new(Inner {
                key_pair,
                seed,
                public_key: PublicKey::from_bytes(public),
            }),
        }
    }

    /// A fresh identity from the caller's secure RNG.
    pub fn generate(rng: &mut dyn SecureRngDyn) -> Identity {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill(&mut seed[..]);
        Identity::from_seed(*seed)
    }

    /// The public identity.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public_key
    }

    /// Signs `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature {
        let signature = self.inner.key_pair.sign(message);
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(signature.as_ref());
        Signature::from_bytes(bytes)
    }

    /// The secret seed, for writing key files only.
    pub(crate) fn seed(&self) -> &[u8; 32] {
        &self.inner.seed
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.inner.public_key)
    }
}

/// Checks that `signature` is `public_key`'s signature of `message`.
pub fn verify_signature(
    public_key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), CryptoError> {
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key.as_bytes())
        .verify(message, signature.as_bytes())
        .map_err(|_| CryptoError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8032_test_vector_1() {
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let identity = Identity::from_seed(seed);
        assert_eq!(
            hex::encode(identity.public_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let signature = identity.sign(b"");
        assert_eq!(
            hex::encode(signature.as_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        verify_signature(&identity.public_key(), b"", &signature).unwrap();
    }

    #[test]
    fn a_signature_does_not_verify_for_another_message_or_key() {
        let a = Identity::from_seed([1; 32]);
        let b = Identity::from_seed([2; 32]);
        let signature = a.sign(b"pay 5");
        assert_eq!(
            verify_signature(&a.public_key(), b"pay 6", &signature),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            verify_signature(&b.public_key(), b"pay 5", &signature),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let identity = Identity::from_seed([0xab; 32]);
        let text = format!("{identity:?}");
        assert!(text.starts_with("Identity("));
        assert!(!text.contains("abab"));
    }
}
