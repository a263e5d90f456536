//! HKDF-SHA256 (RFC 5869): derives the directional session keys and the rekey ratchet.

use ring::hkdf;
use zeroize::Zeroizing;

struct OutputLen(usize);

impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Extract then HKDF-Expand to one 32-byte key.
pub fn derive_key(salt: &[u8], input_key_material: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(input_key_material);
    let mut out = Zeroizing::new([0u8; 32]);
    // Expanding to 32 bytes is far below HKDF's limit of 255 × 32, so neither call can fail.
    if let Ok(okm) = prk.expand(&[info], OutputLen(32)) {
        if okm.fill(&mut out[..]).is_ok() {
            return out;
        }
    }
    unreachable!("HKDF-SHA256 expand to 32 bytes cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5869_test_case_1_prefix() {
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let okm = derive_key(&salt, &ikm, &info);
        assert_eq!(
            hex::encode(&okm[..]),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }
}
