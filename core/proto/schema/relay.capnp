@0xa0482b1c7d271ae9;
# relay protocol messages: see docs/PROTOCOL.md. (Filled in by the issue that builds it.)

struct PlaceholderRelay {
  reserved @0 :Void;
}
