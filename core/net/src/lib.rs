//! Offst networking on tokio: framed TCP, secure channel, keepalive, backoff, relay client.
