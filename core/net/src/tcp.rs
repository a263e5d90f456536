//! TCP with the options every Offst connection uses. `TCP_NODELAY` is always on: our messages
//! are small request/response exchanges, and Nagle's algorithm combined with delayed ACKs
//! dominated the original implementation's payment latency (docs/DESIGN.md §6).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::NetError;

/// Dials `address` (`host:port`, resolved by the system resolver) within `timeout` and turns
/// `TCP_NODELAY` on.
pub async fn dial(address: &str, timeout: Duration) -> Result<TcpStream, NetError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
        .await
        .map_err(|_| {
            NetError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting to {address} timed out after {timeout:?}"),
            ))
        })??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Accepts one connection and turns `TCP_NODELAY` on.
pub async fn accept(listener: &TcpListener) -> Result<(TcpStream, SocketAddr), NetError> {
    let (stream, address) = listener.accept().await?;
    stream.set_nodelay(true)?;
    Ok((stream, address))
}

/// Like [`dial`], but from the local IP `local` when given (multi-homed hosts, and load tests
/// that spread their connections over several loopback addresses).
pub async fn dial_from(
    address: &str,
    local: Option<std::net::IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, NetError> {
    let Some(local) = local else {
        return dial(address, timeout).await;
    };
    let attempt = async {
        let remote = tokio::net::lookup_host(address)
            .await?
            .find(|remote| remote.is_ipv4() == local.is_ipv4())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::AddrNotAvailable,
                    format!("{address} has no address of the family of {local}"),
                )
            })?;
        let socket = if local.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(local, 0))?;
        socket.connect(remote).await
    };
    let stream = tokio::time::timeout(timeout, attempt).await.map_err(|_| {
        NetError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to {address} timed out after {timeout:?}"),
        ))
    })??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
