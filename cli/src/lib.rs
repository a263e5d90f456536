//! What the Offst command-line programs share: the node ticket an app connects with, the
//! registry of apps a node trusts, QR codes in the terminal and the exit codes scripts rely
//! on. The programs themselves are `stnode` (the daemon), `stctrl` (the app that controls
//! it) and `stnet` (a complete local network).

pub mod apps;
pub mod exit;
pub mod qr;
pub mod ticket;
