//! The node ticket: what an app needs to reach a node, its public key (checked in the
//! handshake) and the address of its app port, as one line `offst-node:<key>@<host:port>`.
//! `stnode` writes it; `stctrl -T` reads it.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use offst_proto::{NetAddress, PublicKey};

/// The prefix of a ticket line.
pub const TICKET_PREFIX: &str = "offst-node:";

/// Largest ticket file read.
const MAX_TICKET_FILE_LEN: u64 = 4096;

/// How to reach a node's app server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTicket {
    /// The node's identity.
    pub public_key: PublicKey,
    /// `host:port` of its app server.
    pub address: NetAddress,
}

impl fmt::Display for NodeTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TICKET_PREFIX}{}@{}", self.public_key, self.address)
    }
}

impl FromStr for NodeTicket {
    type Err = String;

    fn from_str(text: &str) -> Result<NodeTicket, String> {
        let rest = text
            .trim()
            .strip_prefix(TICKET_PREFIX)
            .ok_or_else(|| format!("a node ticket starts with {TICKET_PREFIX:?}"))?;
        let (key, address) = rest
            .split_once('@')
            .ok_or("a node ticket is offst-node:<key>@<host:port>")?;
        Ok(NodeTicket {
            public_key: key
                .parse()
                .map_err(|err| format!("the node key in the ticket: {err}"))?,
            address: NetAddress::new(address)
                .map_err(|err| format!("the address in the ticket: {err}"))?,
        })
    }
}

impl NodeTicket {
    /// Reads a ticket file: the ticket line, with `#` comment lines and blank lines around it.
    pub fn read(path: &Path) -> Result<NodeTicket, String> {
        let text = read_small_text(path, MAX_TICKET_FILE_LEN)?;
        let line = meaningful_line(&text)
            .ok_or_else(|| format!("{} holds no node ticket", path.display()))?;
        line.parse()
            .map_err(|err| format!("{}: not a node ticket: {err}", path.display()))
    }

    /// Writes the ticket file (replacing it), with a comment saying what it is.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = format!(
            "# Offst node ticket: how apps reach this node (stctrl -T {}).\n{self}\n",
            path.display()
        );
        std::fs::write(path, text).map_err(|err| format!("writing {}: {err}", path.display()))
    }
}

/// Reads a text file of at most `max_len` bytes.
pub fn read_small_text(path: &Path, max_len: u64) -> Result<String, String> {
    let metadata =
        std::fs::metadata(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    if metadata.len() > max_len {
        return Err(format!(
            "{} is {} bytes, more than the {max_len} bytes expected",
            path.display(),
            metadata.len()
        ));
    }
    std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
}

/// The first line that is neither blank nor a `#` comment, trimmed.
pub fn meaningful_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> NodeTicket {
        NodeTicket {
            public_key: PublicKey::from_bytes([7; 32]),
            address: NetAddress::new("127.0.0.1:7600").unwrap(),
        }
    }

    #[test]
    fn a_ticket_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.ticket");
        ticket().write(&path).unwrap();
        assert_eq!(NodeTicket::read(&path).unwrap(), ticket());
    }

    #[test]
    fn malformed_tickets_are_refused_with_a_reason() {
        for bad in [
            "",
            "offst-node:",
            "offst-node:abc@127.0.0.1:1",
            "offst-relay:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc@127.0.0.1:1",
            "offst-node:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
        ] {
            assert!(bad.parse::<NodeTicket>().is_err(), "{bad:?}");
        }
        assert_eq!(
            ticket().to_string().parse::<NodeTicket>().unwrap(),
            ticket()
        );
    }
}
