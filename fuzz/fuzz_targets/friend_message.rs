//! `FriendMessage` decoder: total, and decoded messages round-trip.
#![no_main]

offst_fuzz::round_trip_target!(offst_proto::friend::FriendMessage);
