//! Offst index server: collects signed capacity reports from nodes, federates them with trusted
//! index servers, and answers fee-aware route queries (DESIGN.md §4.5).
//!
//! The heart is sans-I/O: [`graph`] (the capacity graph), [`route`] (route search) and the
//! report/federation state never read a clock or touch a socket; the tokio server and the
//! `stindex` binary are thin glue around them.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod graph;
pub mod metrics;
pub mod ratelimit;
pub mod route;
pub mod server;
pub mod state;
