//! Offst relay server library and the strelay binary.
