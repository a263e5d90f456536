//! Offst index server library and the stindex binary.
