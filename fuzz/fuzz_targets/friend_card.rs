//! Friend-card URIs: the parser is total, and an accepted card prints back to a URI that parses
//! to the same card.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_proto::card::FriendCard;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(card) = text.parse::<FriendCard>() {
        let again: FriendCard = card.to_uri().parse().expect("own URI parses");
        assert_eq!(again, card);
    }
});
