//! Relay configuration: flags and the optional TOML file of `strelay` map onto
//! [`RelayConfig`]. Every limit has a named default; an operator changes only what they need.
//!
//! ```toml
//! listen = "0.0.0.0:7500"
//! public_address = "relay.example.org:7500"
//! metrics = "127.0.0.1:9750"
//! key_file = "/var/lib/strelay/relay.key"
//!
//! [limits]
//! max_connections = 50000
//! max_connections_per_ip = 256
//! bytes_per_second = 16777216
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use offst_proto::limits::{HANDSHAKE_TIMEOUT_SECS, IDLE_TIMEOUT_SECS};
use serde::{Deserialize, Serialize};

/// Default TCP port of a relay.
pub const DEFAULT_PORT: u16 = 7500;

/// Most open connections in total. A tunnel takes two and a listener one; 50,000 holds
/// 20,000+ tunnels with room for listeners, within a raised file-descriptor limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 50_000;

/// Most open connections from one IP address: generous for a NAT with many nodes behind it,
/// small against one host flooding the relay.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

/// Most half-open tunnels (a `Connect` waiting for its `Accept`) towards one listener, and
/// from one caller. Enough for a node with many friends coming online at once.
pub const DEFAULT_MAX_HALF_OPEN_PER_KEY: usize = 32;

/// How long a half-open tunnel waits for the listener's `Accept`.
pub const DEFAULT_HALF_OPEN_TIMEOUT_MS: u64 = 10_000;

/// How long after the handshake the first message (`Listen`/`Connect`/`Accept`) may take.
pub const DEFAULT_FIRST_MESSAGE_TIMEOUT_MS: u64 = 5_000;

/// How long a spliced tunnel may carry no byte in either direction. The nodes' keepalives
/// inside the tunnel (every 15 s) keep a live tunnel well inside this.
pub const DEFAULT_TUNNEL_IDLE_TIMEOUT_SECS: u64 = 2 * IDLE_TIMEOUT_SECS;

/// Bytes per second each connection may push through a tunnel (token bucket rate). Payment
/// traffic is a few KiB per payment; 16 MiB/s leaves room for bursts while bounding what one
/// client can make the relay copy. 0 means no limit.
pub const DEFAULT_BYTES_PER_SECOND: u64 = 16 * 1024 * 1024;

/// Token bucket depth: bytes a connection may send at once above its rate.
pub const DEFAULT_BURST_BYTES: u64 = 4 * 1024 * 1024;

/// The relay's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// Address to accept nodes on.
    pub listen: SocketAddr,
    /// `host:port` nodes dial, printed in the relay's card (default: the listen address).
    pub public_address: Option<String>,
    /// Address of the Prometheus metrics endpoint (plain HTTP); none to disable.
    pub metrics: Option<SocketAddr>,
    /// The relay's identity key file, created on first run.
    pub key_file: PathBuf,
    /// Limits that protect the relay and its honest users.
    pub limits: Limits,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            public_address: None,
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 9750))),
            key_file: PathBuf::from("strelay.key"),
            limits: Limits::default(),
        }
    }
}

/// Resource limits (see the `DEFAULT_*` constants for the reasoning behind each default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most open connections in total; further ones are refused as busy.
    pub max_connections: usize,
    /// Most open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Most half-open tunnels towards one listener and from one caller.
    pub max_half_open_per_key: usize,
    /// Milliseconds a half-open tunnel waits for the listener.
    pub half_open_timeout_ms: u64,
    /// Milliseconds a secure handshake may take.
    pub handshake_timeout_ms: u64,
    /// Milliseconds from the handshake's end to the first message.
    pub first_message_timeout_ms: u64,
    /// Seconds a listening connection may be silent (nodes send keepalives).
    pub idle_timeout_secs: u64,
    /// Seconds a spliced tunnel may be silent in both directions.
    pub tunnel_idle_timeout_secs: u64,
    /// Bytes per second per connection through a tunnel; 0 for no limit.
    pub bytes_per_second: u64,
    /// Burst allowance above the rate, in bytes.
    pub burst_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_half_open_per_key: DEFAULT_MAX_HALF_OPEN_PER_KEY,
            half_open_timeout_ms: DEFAULT_HALF_OPEN_TIMEOUT_MS,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT_SECS * 1000,
            first_message_timeout_ms: DEFAULT_FIRST_MESSAGE_TIMEOUT_MS,
            idle_timeout_secs: IDLE_TIMEOUT_SECS,
            tunnel_idle_timeout_secs: DEFAULT_TUNNEL_IDLE_TIMEOUT_SECS,
            bytes_per_second: DEFAULT_BYTES_PER_SECOND,
            burst_bytes: DEFAULT_BURST_BYTES,
        }
    }
}

impl Limits {
    /// [`Limits::half_open_timeout_ms`] as a duration.
    pub fn half_open_timeout(&self) -> Duration {
        Duration::from_millis(self.half_open_timeout_ms)
    }

    /// [`Limits::handshake_timeout_ms`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// [`Limits::first_message_timeout_ms`] as a duration.
    pub fn first_message_timeout(&self) -> Duration {
        Duration::from_millis(self.first_message_timeout_ms)
    }

    /// [`Limits::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`Limits::tunnel_idle_timeout_secs`] as a duration.
    pub fn tunnel_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.tunnel_idle_timeout_secs)
    }
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("parsing {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        #[source]
        source: toml::de::Error,
    },
}

impl RelayConfig {
    /// Reads a TOML configuration; missing fields take their defaults, unknown fields are
    /// errors (a typo must not silently fall back to a default).
    pub fn load(path: &Path) -> Result<RelayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_keeps_defaults_for_the_rest() {
        let config: RelayConfig =
            toml::from_str("listen = \"127.0.0.1:8000\"\n[limits]\nmax_connections_per_ip = 3\n")
                .unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8000)));
        assert_eq!(config.limits.max_connections_per_ip, 3);
        assert_eq!(config.limits.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(config.key_file, PathBuf::from("strelay.key"));
    }

    #[test]
    fn shipped_example_config_is_valid_and_shows_the_defaults() {
        let example: RelayConfig = toml::from_str(include_str!("../strelay.toml")).unwrap();
        assert_eq!(example, RelayConfig::default());
    }

    #[test]
    fn unknown_fields_are_errors() {
        assert!(toml::from_str::<RelayConfig>("listn = \"127.0.0.1:8000\"").is_err());
        assert!(toml::from_str::<RelayConfig>("[limits]\nmax_conections = 1").is_err());
    }
}
