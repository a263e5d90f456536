//! Text forms of wire types (base64url keys, currencies, addresses): total parsers whose
//! accepted values print back to an equivalent form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_proto::{Currency, NetAddress, PublicKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = text.parse::<PublicKey>() {
        assert_eq!(key.to_string().parse::<PublicKey>().expect("own form"), key);
    }
    if let Ok(currency) = Currency::new(text) {
        assert_eq!(currency.as_str(), text);
    }
    if let Ok(address) = NetAddress::new(text) {
        assert_eq!(address.as_str(), text);
    }
});
