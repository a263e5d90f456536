//! Offst test kit: simulated network, manual clock, seeded randomness.
