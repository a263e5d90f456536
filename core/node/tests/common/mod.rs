//! What the node's integration tests share: a real relay on loopback.

#![allow(dead_code, unreachable_pub)]

use offst_crypto::Identity;
use offst_proto::RelayAddress;
use offst_relay::{RelayConfig, RelayHandle, RelayServer};

/// A real relay on loopback, on a runtime of its own; shut down when dropped.
pub struct Relay {
    /// The relay's runtime (tests run other servers on it too).
    pub runtime: tokio::runtime::Runtime,
    handle: Option<RelayHandle>,
    /// Its card's address (key and `host:port`).
    pub address: RelayAddress,
}

impl Relay {
    /// A relay with the usual test key.
    pub fn start() -> Relay {
        Relay::start_with_seed(200)
    }

    /// A relay whose key comes from `seed` (tests with several relays).
    pub fn start_with_seed(seed: u8) -> Relay {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let config = RelayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics: None,
            ..RelayConfig::default()
        };
        let server = runtime
            .block_on(RelayServer::bind(&config, Identity::from_seed([seed; 32])))
            .unwrap();
        let address = server.card().0.clone();
        let handle = {
            let _guard = runtime.enter();
            server.spawn()
        };
        Relay {
            runtime,
            handle: Some(handle),
            address,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}
