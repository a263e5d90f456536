//! Key-file decoder: hostile files give typed errors, never panics or unbounded work.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_crypto::keyfile::{decode, KeyProtection};

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, KeyProtection::Plain);
    // Passphrase files would run PBKDF2 for up to MAX_PBKDF2_ITERATIONS per input, which is
    // bounded but slow; the app-secret path exercises the same parsing and sealing code.
    let _ = decode(data, KeyProtection::AppSecret(&[7; 32]));
});
