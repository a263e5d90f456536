//! The `stindex` configuration file (TOML) and its translation into a [`ServerConfig`].
//! Command-line flags override the file; every field has a default, so an empty file (or none)
//! runs a standalone index on port 7400.
//!
//! ```toml
//! listen = "0.0.0.0:7400"
//! metrics_listen = "127.0.0.1:9400"
//! key_file = "/var/lib/stindex/identity.key"
//! max_connections = 10000
//! max_connections_per_ip = 256
//! max_nodes = 1000000
//! max_entries = 4000000
//! reports_per_second = 2.0
//! report_burst = 10
//! queries_per_second = 20.0
//! query_burst = 50
//!
//! [[peers]]                       # a trusted index server (see `stindex card`)
//! public_key = "base64url..."
//! address = "index2.example.org:7400"   # optional: without it, we wait for it to dial us
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use offst_proto::PublicKey;
use serde::Deserialize;

use crate::ratelimit::RateLimit;
use crate::server::{PeerServer, ServerConfig};
use crate::state::StateConfig;

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid configuration {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// One trusted server in the file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// base64url public key.
    pub public_key: String,
    /// `host:port`, optional.
    pub address: Option<String>,
}

/// The file's contents; absent fields take the defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listening address for nodes and servers.
    pub listen: Option<SocketAddr>,
    /// Listening address of the Prometheus endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the identity key lives (created on first run).
    pub key_file: Option<PathBuf>,
    /// Most simultaneous connections.
    pub max_connections: Option<usize>,
    /// Most simultaneous connections from one IP address.
    pub max_connections_per_ip: Option<usize>,
    /// Most nodes tracked.
    pub max_nodes: Option<usize>,
    /// Most channel entries over all live reports.
    pub max_entries: Option<usize>,
    /// Reports per second per client.
    pub reports_per_second: Option<f64>,
    /// Report burst per client.
    pub report_burst: Option<u32>,
    /// Route queries per second per client.
    pub queries_per_second: Option<f64>,
    /// Query burst per client.
    pub query_burst: Option<u32>,
    /// Trusted servers.
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        FileConfig::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }

    /// The server configuration this file describes.
    pub fn server_config(&self) -> Result<ServerConfig, ConfigError> {
        let defaults = ServerConfig::default();
        let rate = |per_second: Option<f64>, burst: Option<u32>, default: RateLimit, what: &str| {
            let limit = RateLimit {
                per_second: per_second.unwrap_or(default.per_second),
                burst: burst.map_or(default.burst, f64::from),
            };
            if !(limit.per_second > 0.0 && limit.per_second.is_finite() && limit.burst >= 1.0) {
                return Err(ConfigError::Invalid(format!(
                    "{what}: the rate must be positive and the burst at least 1"
                )));
            }
            Ok(limit)
        };
        let mut peers = Vec::with_capacity(self.peers.len());
        for entry in &self.peers {
            let public_key: PublicKey = entry.public_key.parse().map_err(|err| {
                ConfigError::Invalid(format!("peer key {:?}: {err}", entry.public_key))
            })?;
            peers.push(PeerServer {
                public_key,
                address: entry.address.clone(),
            });
        }
        let max_connections = self.max_connections.unwrap_or(defaults.max_connections);
        let max_connections_per_ip = self
            .max_connections_per_ip
            .unwrap_or(defaults.max_connections_per_ip);
        let max_nodes = self.max_nodes.unwrap_or(defaults.state.max_nodes);
        let max_entries = self.max_entries.unwrap_or(defaults.state.max_entries);
        if max_connections == 0 || max_connections_per_ip == 0 || max_nodes == 0 || max_entries == 0
        {
            return Err(ConfigError::Invalid(
                "max_connections, max_connections_per_ip, max_nodes and max_entries must be positive"
                    .into(),
            ));
        }
        Ok(ServerConfig {
            listen: self.listen.unwrap_or(defaults.listen),
            metrics_listen: self.metrics_listen,
            peers,
            max_connections,
            max_connections_per_ip,
            report_limit: rate(
                self.reports_per_second,
                self.report_burst,
                defaults.report_limit,
                "reports",
            )?,
            query_limit: rate(
                self.queries_per_second,
                self.query_burst,
                defaults.query_limit,
                "queries",
            )?,
            state: StateConfig {
                max_nodes,
                max_entries,
                ..defaults.state
            },
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_a_standalone_index_on_the_default_port() {
        let config = FileConfig::parse("").unwrap().server_config().unwrap();
        assert_eq!(config.listen.port(), 7_400);
        assert!(config.peers.is_empty());
        assert!(config.metrics_listen.is_none());
    }

    #[test]
    fn peers_and_limits_are_read_and_checked() {
        let key = PublicKey::from_bytes([3; 32]);
        let text = format!(
            "listen = \"127.0.0.1:9000\"\nqueries_per_second = 5.0\nquery_burst = 7\n\
             [[peers]]\npublic_key = \"{key}\"\naddress = \"b.example:7400\"\n\
             [[peers]]\npublic_key = \"{key}\"\n"
        );
        let config = FileConfig::parse(&text).unwrap().server_config().unwrap();
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.peers[0].public_key, key);
        assert_eq!(config.peers[1].address, None);
        assert_eq!(config.query_limit.burst, 7.0);

        assert!(FileConfig::parse("listne = \"x\"").is_err());
        let bad_key = FileConfig::parse("[[peers]]\npublic_key = \"nope\"").unwrap();
        assert!(matches!(
            bad_key.server_config(),
            Err(ConfigError::Invalid(_))
        ));
        let bad_rate = FileConfig::parse("queries_per_second = 0.0").unwrap();
        assert!(bad_rate.server_config().is_err());
    }
}
