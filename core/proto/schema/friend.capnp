@0xb5f82ea7842670eb;
# friend protocol messages: see docs/PROTOCOL.md. (Filled in by the issue that builds it.)

struct PlaceholderFriend {
  reserved @0 :Void;
}
