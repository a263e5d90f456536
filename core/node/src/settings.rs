//! The node's network settings: the relays it listens on and the index servers it reports to.
//! They can change at runtime and are persisted in the store's settings, one `<public
//! key>@<address>` line per entry. This module owns their bounds, their stored form and its
//! strict decoder; it never touches the network.

use std::sync::{Arc, PoisonError, RwLock};

use offst_index::client::IndexServerAddress;
use offst_proto::limits::MAX_RELAYS;
use offst_proto::{NetAddress, PublicKey, RelayAddress};
use offst_store::StoreError;

use crate::NodeError;

/// Most index servers a node keeps: they are tried in order of preference, so a handful is
/// all failover needs, and the same bound as relays keeps the stored value small.
pub const MAX_INDEX_SERVERS: usize = 8;

/// Settings key of the relays the node listens on.
pub(crate) const RELAYS_KEY: &str = "node/relays";
/// Settings key of the index servers.
pub(crate) const INDEX_SERVERS_KEY: &str = "node/index_servers";

/// The relays and index servers in use, shared by the driver (the only writer) and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NetworkSettings {
    pub(crate) relays: Vec<RelayAddress>,
    pub(crate) index_servers: Vec<IndexServerAddress>,
}

/// The settings as one shared value: written by the driver after each committed change.
pub(crate) type SharedSettings = Arc<RwLock<NetworkSettings>>;

/// A copy of the current settings (a writer cannot leave them half-changed, so a poisoned lock
/// still holds a whole value).
pub(crate) fn read(settings: &SharedSettings) -> NetworkSettings {
    settings
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Replaces the shared settings.
pub(crate) fn write(settings: &SharedSettings, value: NetworkSettings) {
    *settings.write().unwrap_or_else(PoisonError::into_inner) = value;
}

/// Refuses more than [`MAX_RELAYS`] relays or two with the same key.
pub(crate) fn check_relays(relays: &[RelayAddress]) -> Result<(), NodeError> {
    check_list("relays", MAX_RELAYS, relays.iter().map(|r| r.public_key))
        .map_err(NodeError::InvalidInput)
}

/// Refuses more than [`MAX_INDEX_SERVERS`] servers, two with the same key, or an address that
/// is not `host:port`.
pub(crate) fn check_index_servers(servers: &[IndexServerAddress]) -> Result<(), NodeError> {
    check_list(
        "index servers",
        MAX_INDEX_SERVERS,
        servers.iter().map(|s| s.public_key),
    )
    .map_err(NodeError::InvalidInput)?;
    for server in servers {
        NetAddress::new(&server.address).map_err(|err| {
            NodeError::InvalidInput(format!("index server {}: {err}", server.public_key))
        })?;
    }
    Ok(())
}

fn check_list(
    what: &str,
    max: usize,
    keys: impl ExactSizeIterator<Item = PublicKey>,
) -> Result<(), String> {
    if keys.len() > max {
        return Err(format!("at most {max} {what}, got {}", keys.len()));
    }
    let mut seen = Vec::with_capacity(keys.len());
    for key in keys {
        if seen.contains(&key) {
            return Err(format!("{what}: {key} is listed twice"));
        }
        seen.push(key);
    }
    Ok(())
}

/// The stored form of the relays: one `<public key>@<host:port>` line each.
pub(crate) fn encode_relays(relays: &[RelayAddress]) -> Vec<u8> {
    encode_lines(relays.iter().map(|r| (r.public_key, r.address.to_string())))
}

/// The stored form of the index servers: one `<public key>@<host:port>` line each.
pub(crate) fn encode_index_servers(servers: &[IndexServerAddress]) -> Vec<u8> {
    encode_lines(servers.iter().map(|s| (s.public_key, s.address.clone())))
}

fn encode_lines(entries: impl Iterator<Item = (PublicKey, String)>) -> Vec<u8> {
    entries
        .map(|(key, address)| format!("{key}@{address}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Decodes stored relays; anything but what [`encode_relays`] writes (and [`check_relays`]
/// accepts) is refused.
pub(crate) fn decode_relays(bytes: &[u8]) -> Result<Vec<RelayAddress>, StoreError> {
    let relays = decode_lines(RELAYS_KEY, bytes)?
        .into_iter()
        .map(|(public_key, address)| {
            NetAddress::new(&address)
                .map(|address| RelayAddress {
                    public_key,
                    address,
                })
                .map_err(|err| invalid(RELAYS_KEY, &err.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_relays(&relays).map_err(|err| invalid(RELAYS_KEY, &err.to_string()))?;
    Ok(relays)
}

/// Decodes stored index servers; anything but what [`encode_index_servers`] writes (and
/// [`check_index_servers`] accepts) is refused.
pub(crate) fn decode_index_servers(bytes: &[u8]) -> Result<Vec<IndexServerAddress>, StoreError> {
    let servers: Vec<IndexServerAddress> = decode_lines(INDEX_SERVERS_KEY, bytes)?
        .into_iter()
        .map(|(public_key, address)| IndexServerAddress {
            public_key,
            address,
        })
        .collect();
    check_index_servers(&servers).map_err(|err| invalid(INDEX_SERVERS_KEY, &err.to_string()))?;
    Ok(servers)
}

fn invalid(key: &str, reason: &str) -> StoreError {
    StoreError::InvalidData(format!("setting {key}: {reason}"))
}

/// Splits `<public key>@<address>` lines, each ended by `\n`, without any other whitespace.
fn decode_lines(key: &str, bytes: &[u8]) -> Result<Vec<(PublicKey, String)>, StoreError> {
    let text = std::str::from_utf8(bytes).map_err(|_| invalid(key, "not UTF-8"))?;
    let Some(body) = text.strip_suffix('\n') else {
        return if text.is_empty() {
            Ok(Vec::new())
        } else {
            Err(invalid(key, "the last line is not ended"))
        };
    };
    body.split('\n')
        .enumerate()
        .map(|(number, line)| {
            let bad = |reason: &str| invalid(key, &format!("line {}: {reason}", number + 1));
            if line.chars().any(char::is_whitespace) {
                return Err(bad("contains whitespace"));
            }
            let (public_key, address) = line
                .split_once('@')
                .ok_or_else(|| bad("expected <public key>@<host:port>"))?;
            let public_key: PublicKey = public_key
                .parse()
                .map_err(|err: offst_proto::TypeError| bad(&err.to_string()))?;
            Ok((public_key, address.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(seed: u8, address: &str) -> RelayAddress {
        RelayAddress {
            public_key: PublicKey::from_bytes([seed; 32]),
            address: NetAddress::new(address).unwrap(),
        }
    }

    #[test]
    fn relays_and_index_servers_round_trip() {
        let relays = vec![relay(1, "127.0.0.1:4000"), relay(2, "relay.example:443")];
        assert_eq!(decode_relays(&encode_relays(&relays)).unwrap(), relays);
        assert_eq!(decode_relays(&encode_relays(&[])).unwrap(), Vec::new());
        let servers = vec![IndexServerAddress {
            public_key: PublicKey::from_bytes([3; 32]),
            address: "[::1]:5000".into(),
        }];
        assert_eq!(
            decode_index_servers(&encode_index_servers(&servers)).unwrap(),
            servers
        );
    }

    #[test]
    fn damaged_stored_settings_are_refused() {
        let good = String::from_utf8(encode_relays(&[relay(1, "127.0.0.1:4000")])).unwrap();
        let twice = format!("{good}{good}");
        let bad = [
            good.trim_end(),
            &good.replace('@', "#"),
            &good.replace('\n', " \n"),
            &good.replace("127.0.0.1:4000", "no port"),
            &good[1..],
            &twice,
            "\n",
        ];
        for bytes in bad {
            let err = decode_relays(bytes.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(RELAYS_KEY), "{bytes:?}: {err}");
        }
        assert!(decode_relays(&[0xff, b'\n']).is_err());
    }

    #[test]
    fn lists_are_bounded_and_keys_unique() {
        let many: Vec<_> = (0..=MAX_RELAYS as u8)
            .map(|seed| relay(seed, "127.0.0.1:1"))
            .collect();
        assert!(check_relays(&many[..MAX_RELAYS]).is_ok());
        assert!(matches!(
            check_relays(&many),
            Err(NodeError::InvalidInput(_))
        ));
        let duplicate = [relay(1, "127.0.0.1:1"), relay(1, "127.0.0.1:2")];
        assert!(matches!(
            check_relays(&duplicate),
            Err(NodeError::InvalidInput(_))
        ));
    }
}
