@0xa34b232c3c5a0e4b;
# Wire types shared by every Offst protocol. The normative description is docs/PROTOCOL.md.
# Fixed-size byte strings (keys, signatures, hashes) are `Data` whose length is checked on decode.

struct UInt128 {
  # An unsigned 128-bit integer (credits), big-endian halves.
  hi @0 :UInt64;
  lo @1 :UInt64;
}

struct Int128 {
  # A signed 128-bit integer (balances), two's complement, big-endian halves.
  hi @0 :UInt64;
  lo @1 :UInt64;
}

struct RelayAddress {
  # A relay a node can be reached through: the relay's identity and its TCP address.
  publicKey @0 :Data;   # 32 bytes, Ed25519
  address @1 :Text;     # "host:port", at most 255 bytes
}
