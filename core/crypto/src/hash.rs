//! SHA-512/256, the one hash of the protocol, and hash locks.

use offst_proto::canonical::{domain, CanonicalWriter};
use offst_proto::{HashResult, HashedLock, PlainLock};
use ring::digest;

/// SHA-512/256 of `data`.
pub fn sha512_256(data: &[u8]) -> HashResult {
    let digest = digest::digest(&digest::SHA512_256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    HashResult::from_bytes(out)
}

/// The hashed form of a payment lock: SHA-512/256 of the canonical bytes
/// `tag("offst/v1/hash-lock") || plain_lock`. Revealing the plain lock proves knowledge of the
/// preimage to every hop that stored the hashed lock.
pub fn hash_lock(plain_lock: &PlainLock) -> HashedLock {
    let mut writer = CanonicalWriter::new(domain::HASH_LOCK);
    writer.fixed(plain_lock.as_bytes());
    HashedLock::from_bytes(*sha512_256(&writer.finish()).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512_256_matches_the_fips_vector() {
        // FIPS 180-4 example "abc".
        assert_eq!(
            hex::encode(sha512_256(b"abc").as_bytes()),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }

    #[test]
    fn hash_lock_is_domain_separated_from_plain_hash() {
        let plain = PlainLock::from_bytes([9; 32]);
        assert_ne!(
            hash_lock(&plain).as_bytes(),
            sha512_256(plain.as_bytes()).as_bytes()
        );
        assert_eq!(hash_lock(&plain), hash_lock(&plain));
    }
}
