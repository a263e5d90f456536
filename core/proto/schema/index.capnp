@0xdc339d7bfae9f7f7;
# index protocol messages: see docs/PROTOCOL.md. (Filled in by the issue that builds it.)

struct PlaceholderIndex {
  reserved @0 :Void;
}
