@0xdc339d7bfae9f7f7;
# Index protocol (docs/drafts/index-protocol.md): nodes report signed channel capacities to index
# servers, servers flood accepted reports to the servers they trust, nodes ask for routes.
# One IndexMessage per frame, inside the secure channel. Fixed-size byte strings are `Data` whose
# length is checked on decode; all lists are bounded (core/proto/src/limits.rs).

using Common = import "common.capnp";

struct FeeRate {
  # fee(x) = flat + floor(x * proportionalPpm / 1000000), x = the amount forwarded.
  flat @0 :Common.UInt128;
  proportionalPpm @1 :UInt32;     # at most 1000000
}

struct FriendCapacity {
  # What the reporting node can do with one friend in one currency.
  friend @0 :Data;                # 32 bytes, the friend's public key
  currency @1 :Text;              # 1..16 bytes
  sendCapacity @2 :Common.UInt128;   # how much the node can still send to the friend
  recvCapacity @3 :Common.UInt128;   # how much the node can still receive from the friend
  rate @4 :FeeRate;               # what the node charges for requests arriving from the friend
}

struct CapacityReport {
  # A full snapshot of a node's channels, signed by the node. Newer replaces older.
  node @0 :Data;                  # 32 bytes, the reporting node
  sessionId @1 :Data;             # 16 random bytes, new each time the node starts reporting
  counter @2 :UInt64;             # +1 per report within a session
  issuedAt @3 :UInt64;            # unix time in milliseconds, the node's clock
  expiresAt @4 :UInt64;           # unix time in milliseconds; at most 600 s after issuedAt
  friends @5 :List(FriendCapacity);  # at most 2048 entries, no (friend, currency) twice
  signature @6 :Data;             # 64 bytes, Ed25519 over the canonical bytes
}

struct Arc {
  from @0 :Data;                  # 32 bytes
  to @1 :Data;                    # 32 bytes
}

struct RouteRequest {
  requestId @0 :Data;             # 16 bytes, echoed in the response
  currency @1 :Text;
  amount @2 :Common.UInt128;      # what the seller must receive, > 0
  source @3 :Data;                # 32 bytes, the buyer
  destination @4 :Data;           # 32 bytes, the seller
  maxHops @5 :UInt32;             # 1..31 arcs
  maxRoutes @6 :UInt32;           # 1..8; 1 asks for a single route only
  excludeNodes @7 :List(Data);    # at most 16 keys
  excludeArcs @8 :List(Arc);      # at most 16 arcs
}

struct Route {
  nodes @0 :List(Data);           # buyer .. seller, 2..32 keys of 32 bytes
  amount @1 :Common.UInt128;      # what the seller receives over this route
  fees @2 :Common.UInt128;        # what the mediators charge in total for it
  capacity @3 :Common.UInt128;    # the most the seller could receive over it
}

enum RouteFailure {
  noRoute @0;
  unknownSource @1;
  unknownDestination @2;
  invalidRequest @3;
  rateLimited @4;
}

struct RouteResponse {
  requestId @0 :Data;             # 16 bytes
  union {
    routes @1 :List(Route);       # 1..8 routes whose amounts add up to the request's amount
    failure @2 :RouteFailure;
  }
}

enum ReportRejection {
  badSignature @0;
  stale @1;                       # replayed, or not newer than what the index holds
  expired @2;
  fromTheFuture @3;               # issued too far ahead of the index's clock, or lives too long
  notOwnReport @4;                # a client may only report about itself
  untrustedServer @5;             # forwarded by a server this index does not trust
  full @6;                        # the index holds as many nodes as it may
  rateLimited @7;
}

struct ReportAck {
  node @0 :Data;                  # 32 bytes
  sessionId @1 :Data;             # 16 bytes
  counter @2 :UInt64;
}

struct ReportRejected {
  node @0 :Data;
  sessionId @1 :Data;
  counter @2 :UInt64;
  reason @3 :ReportRejection;
}

struct IndexMessage {
  union {
    report @0 :CapacityReport;            # node -> index
    reportAccepted @1 :ReportAck;         # index -> node
    reportRejected @2 :ReportRejected;    # index -> node or server
    requestRoutes @3 :RouteRequest;       # node -> index
    responseRoutes @4 :RouteResponse;     # index -> node
    forwardReports @5 :List(CapacityReport);  # index -> trusted index, at most 64 reports
  }
}
