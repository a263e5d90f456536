//! The one-line relay card parser: total, and a parsed card prints back to a card that parses
//! to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_proto::relay::RelayCard;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(card) = text.parse::<RelayCard>() {
        let again: RelayCard = card.to_string().parse().expect("own form parses");
        assert_eq!(again, card);
    }
});
