//! Offst mutual credit: friends, token channel and payments as a sans-I/O state machine.
