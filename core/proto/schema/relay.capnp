@0xa0482b1c7d271ae9;
# The relay protocol (docs/PROTOCOL.md, "Relay"). A node reaches a relay over the secure channel
# (the node initiates, expecting the relay's key); each message below is one record on it.
# Keys are 32-byte Ed25519 public keys (`Data`, length checked on decode).

struct InitConnection {
  # The first message a node sends on a fresh connection to a relay; it fixes the
  # connection's role for its whole life.
  union {
    listen @0 :Void;      # keep this connection as the node's listening connection
    connect @1 :Data;     # reach the listening node with this key (the target)
    accept @2 :Data;      # take the half-open tunnel from this caller (announced before)
  }
}

struct RelayToListener {
  # Relay -> node on a listening connection.
  union {
    listening @0 :Void;            # first message: the node is registered; callers can reach it
    incomingConnection @1 :Data;   # this caller wants a tunnel; answer with an `accept`
                                   # connection or a `rejectConnection`
  }
}

struct ListenerToRelay {
  # Node -> relay on a listening connection.
  rejectConnection @0 :Data;     # the listener refuses this caller (not a friend)
}

struct TunnelReply {
  # Relay -> node on a `connect` or `accept` connection: the last record the relay sends on
  # that connection's secure channel. After `ready` both legs carry raw tunnel bytes.
  union {
    ready @0 :Void;
    refused @1 :RefuseReason;
  }
}

enum RefuseReason {
  notListening @0;       # connect: the target has no listening connection here
  rejected @1;           # connect: the listener refused the caller
  expired @2;            # connect: the listener did not accept in time
  noPendingTunnel @3;    # accept: no half-open tunnel from that caller to this node
  busy @4;               # a limit of the relay (tunnels per key, listener queue) was reached
}
