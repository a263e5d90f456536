@0x89ea07fb6d12a790;
# The secure-channel handshake (docs/PROTOCOL.md, "Secure channel").
# One HandshakeMessage per frame. Initiator: hello -> ; responder: accept | reject ; initiator: finish.

struct HandshakeMessage {
  union {
    hello @0 :Hello;
    accept @1 :Accept;
    reject @2 :Reject;
    finish @3 :Finish;
  }
}

struct Hello {
  minVersion @0 :UInt32;     # lowest protocol version the initiator speaks
  maxVersion @1 :UInt32;     # highest protocol version the initiator speaks
  ephemeralKey @2 :Data;     # 32 bytes, X25519
}

struct Accept {
  version @0 :UInt32;        # the version chosen by the responder
  ephemeralKey @1 :Data;     # 32 bytes, X25519
  identity @2 :Data;         # 32 bytes, the responder's Ed25519 key
  signature @3 :Data;        # 64 bytes, over the responder transcript
}

struct Reject {
  reason @0 :RejectReason;
  minVersion @1 :UInt32;     # what the responder speaks
  maxVersion @2 :UInt32;
}

enum RejectReason {
  incompatibleVersion @0;
  busy @1;
}

struct Finish {
  identity @0 :Data;         # 32 bytes, the initiator's Ed25519 key
  signature @1 :Data;        # 64 bytes, over the initiator transcript
}
