@0xf4ce4ef5a5d5f01b;
# The app protocol: programs (stctrl, wallets, scripts) controlling a node over TCP + the secure
# channel (docs/PROTOCOL.md, "App protocol"). Each app has its own Ed25519 identity, registered
# with the node together with its permissions. After the handshake the node sends
# `NodeToApp.welcome`, then a full `report`, then a stream of `event`s; every `AppToNode`
# request gets exactly one `response` with the same `requestId`.
# Implemented by the app-protocol issue; fields may be added (never renumbered) until then.

using Common = import "common.capnp";

struct Permissions {
  info @0 :Bool;        # read reports, friends, history
  buy @1 :Bool;         # quote and pay invoices
  sell @2 :Bool;        # create and cancel invoices
  config @3 :Bool;      # friends, limits, rates, relays, index servers, resets
  routes @4 :Bool;      # ask index servers for routes
}

struct Rate {
  # Fee a mediator charges for forwarding: flat + amount * proportional / 2^32 (rounded down).
  proportional @0 :UInt32;
  flat @1 :Common.UInt128;
}

struct CurrencyReport {
  currency @0 :Text;
  balance @1 :Common.Int128;            # positive: the friend owes us
  localMaxDebt @2 :Common.UInt128;      # most we may owe the friend (the friend's limit for us)
  remoteMaxDebt @3 :Common.UInt128;     # most the friend may owe us (our limit for the friend)
  localPendingDebt @4 :Common.UInt128;  # frozen by requests we sent
  remotePendingDebt @5 :Common.UInt128; # frozen by requests the friend sent
  rate @6 :Rate;                        # what we charge for forwarding from this friend
  isOpen @7 :Bool;                      # we accept requests in this currency
}

enum FriendStatus {
  disabled @0;
  offline @1;
  online @2;
  inconsistent @3;
}

struct FriendReport {
  publicKey @0 :Data;
  name @1 :Text;
  relays @2 :List(Common.RelayAddress);
  status @3 :FriendStatus;
  currencies @4 :List(CurrencyReport);
}

struct NodeReport {
  publicKey @0 :Data;
  relays @1 :List(Common.RelayAddress);
  indexServers @2 :List(Common.RelayAddress);  # an index server's identity and address
  friends @3 :List(FriendReport);
}

struct FriendCard {
  publicKey @0 :Data;
  relays @1 :List(Common.RelayAddress);
  name @2 :Text;
}

struct Invoice {
  invoiceId @0 :Data;            # 32 bytes
  seller @1 :Data;               # 32 bytes
  sellerRelays @2 :List(Common.RelayAddress);
  currency @3 :Text;
  amount @4 :Common.UInt128;
  expiresAtMs @5 :UInt64;        # Unix time, milliseconds
  description @6 :Text;
  signature @7 :Data;            # the seller's signature (docs/PROTOCOL.md)
}

struct Receipt {
  invoiceId @0 :Data;
  currency @1 :Text;
  amount @2 :Common.UInt128;
  srcPlainLock @3 :Data;
  destPlainLock @4 :Data;
  signature @5 :Data;            # the seller's signature over the response
}

struct PaymentQuote {
  routes @0 :List(QuotedRoute);
  totalFees @1 :Common.UInt128;
}

struct QuotedRoute {
  nodes @0 :List(Data);          # public keys, buyer first, seller last
  amount @1 :Common.UInt128;     # delivered to the seller over this route
  fees @2 :Common.UInt128;
}

enum PaymentState {
  inProgress @0;
  succeeded @1;
  cancelled @2;
}

struct PaymentStatus {
  paymentId @0 :Data;
  invoiceId @1 :Data;
  state @2 :PaymentState;
  amount @3 :Common.UInt128;
  fees @4 :Common.UInt128;
  receipt @5 :Receipt;           # set once succeeded
  failure @6 :Text;              # why, once cancelled
}

struct HistoryEntry {
  timestampMs @0 :UInt64;
  paymentId @1 :Data;
  counterparty @2 :Data;
  currency @3 :Text;
  amount @4 :Common.Int128;      # positive: received
  fees @5 :Common.UInt128;
  state @6 :PaymentState;
}

struct AppToNode {
  requestId @0 :UInt64;
  request :union {
    report @1 :Void;
    addFriend @2 :FriendCard;
    removeFriend @3 :Data;
    setFriendName :group { friend @4 :Data; name @5 :Text; }
    setLimit :group { friend @6 :Data; currency @7 :Text; remoteMaxDebt @8 :Common.UInt128; }
    setRate :group { friend @9 :Data; currency @10 :Text; rate @11 :Rate; }
    enableFriend @12 :Data;
    disableFriend @13 :Data;
    openCurrency :group { friend @14 :Data; currency @15 :Text; }
    closeCurrency :group { friend @16 :Data; currency @17 :Text; }
    acceptResetTerms :group { friend @18 :Data; resetToken @19 :Data; }
    addRelay @20 :Common.RelayAddress;
    removeRelay @21 :Data;
    addIndexServer @22 :Common.RelayAddress;
    removeIndexServer @23 :Data;
    createInvoice :group { currency @24 :Text; amount @25 :Common.UInt128;
                           validForMs @26 :UInt64; description @27 :Text; }
    cancelInvoice @28 :Data;
    quote :group { invoice @29 :Invoice; maxFees @30 :Common.UInt128; }
    pay :group { invoice @31 :Invoice; maxFees @32 :Common.UInt128; }
    paymentStatus @33 :Data;
    history :group { sinceMs @34 :UInt64; limit @35 :UInt32; }
  }
}

enum AppErrorKind {
  permissionDenied @0;
  invalidInput @1;
  unknownFriend @2;
  insufficientCapacity @3;
  noRoute @4;
  expired @5;
  duplicate @6;
  internal @7;
}

struct AppError {
  kind @0 :AppErrorKind;
  message @1 :Text;   # for people: what went wrong and what to do
}

struct NodeEvent {
  union {
    paymentReceived @0 :HistoryEntry;
    paymentSent @1 :PaymentStatus;
    paymentFailed @2 :PaymentStatus;
    friendOnline @3 :Data;
    friendOffline @4 :Data;
    channelInconsistent @5 :Data;
    reportChanged @6 :NodeReport;
  }
}

struct NodeToApp {
  union {
    welcome @0 :Permissions;
    report @1 :NodeReport;
    event @2 :NodeEvent;
    response :group {
      requestId @3 :UInt64;
      result :union {
        ok @4 :Void;
        error @5 :AppError;
        report @6 :NodeReport;
        invoice @7 :Invoice;
        quote @8 :PaymentQuote;
        payment @9 :PaymentStatus;
        history @10 :List(HistoryEntry);
      }
    }
  }
}
