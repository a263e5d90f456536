@0xf4ce4ef5a5d5f01b;
# The app protocol: programs (stctrl, wallets, scripts) controlling a node over TCP + the secure
# channel (docs/PROTOCOL.md, "App protocol"). Each app has its own Ed25519 identity, registered
# with the node together with its permissions. After the handshake the node sends `welcome`
# (or `refused`, then closes); an app with the `info` permission then gets a full `report`,
# a new `report` whenever it changes, and every history `event` as it is committed. Every
# `AppToNode` request gets exactly one `response` with the same `requestId`, in order.
#
# Friend cards and invoices travel as their checksummed `offst:` URIs and receipts as their
# canonical bytes (docs/PROTOCOL.md §11–12), so the app protocol has one strict parser for each.

using Common = import "common.capnp";

struct Permissions {
  info @0 :Bool;        # reports, events, history, payment status, the node's friend card
  buy @1 :Bool;         # quote and pay invoices, payment status
  sell @2 :Bool;        # create and cancel invoices
  config @3 :Bool;      # friends, limits, rates, currencies, relays, index servers, resets
  routes @4 :Bool;      # ask index servers for routes
}

struct Welcome {
  nodePublicKey @0 :Data;
  permissions @1 :Permissions;
  appName @2 :Text;             # the name the app was registered under
}

struct FeeRate {
  # What a mediator charges for forwarding: flat + amount * proportionalPpm / 1,000,000.
  proportionalPpm @0 :UInt32;
  flat @1 :Common.UInt128;
}

struct CurrencyReport {
  currency @0 :Text;
  balance @1 :Common.Int128;            # positive: the friend owes us
  localMaxDebt @2 :Common.UInt128;      # most we may owe the friend (the friend's limit for us)
  remoteMaxDebt @3 :Common.UInt128;     # most the friend may owe us (our limit for the friend)
  localPendingDebt @4 :Common.UInt128;  # frozen by requests we sent
  remotePendingDebt @5 :Common.UInt128; # frozen by requests the friend sent
  rate @6 :FeeRate;                     # what we charge for forwarding from this friend
  isOpen @7 :Bool;                      # we accept requests in this currency
}

enum FriendStatus {
  disabled @0;
  offline @1;
  online @2;
  inconsistent @3;
}

struct CurrencyBalance {
  currency @0 :Text;
  balance @1 :Common.Int128;
}

struct ResetTermsReport {
  resetToken @0 :Data;                   # 64 bytes: accept these terms by naming this token
  balances @1 :List(CurrencyBalance);    # the balances the friend proposes, from our side
}

struct FriendReport {
  publicKey @0 :Data;
  name @1 :Text;
  relays @2 :List(Common.RelayAddress);
  status @3 :FriendStatus;
  currencies @4 :List(CurrencyReport);
  resetTerms :union {                    # set while the channel is inconsistent
    none @5 :Void;
    terms @6 :ResetTermsReport;
  }
}

struct AccountReport {
  currency @0 :Text;
  feesEarned @1 :Common.UInt128;
  feesPaid @2 :Common.UInt128;
  received @3 :Common.UInt128;
  sent @4 :Common.UInt128;
}

struct NodeReport {
  publicKey @0 :Data;
  relays @1 :List(Common.RelayAddress);
  indexServers @2 :List(Common.RelayAddress);  # an index server's identity and address
  friends @3 :List(FriendReport);
  accounts @4 :List(AccountReport);
}

struct Route {
  nodes @0 :List(Data);          # public keys, buyer first, seller last
  amount @1 :Common.UInt128;     # delivered to the seller over this route
  fees @2 :Common.UInt128;
}

struct Quote {
  routes @0 :List(Route);
  totalFees @1 :Common.UInt128;
}

enum PaymentState {
  inProgress @0;
  succeeded @1;
  cancelled @2;
}

struct PaymentStatus {
  paymentId @0 :Data;            # 16 bytes
  invoiceId @1 :Data;            # 32 bytes
  state @2 :PaymentState;
  amount @3 :Common.UInt128;
  fees @4 :Common.UInt128;
  routes @5 :UInt32;
  receipt @6 :Data;              # the receipt's bytes once succeeded, else empty
  startedAtMs @7 :UInt64;
  finishedAtMs @8 :UInt64;       # 0 while in progress
}

struct NodeEvent {
  # One entry of the node's history (docs/PROTOCOL.md lists the kinds and their payloads).
  id @0 :UInt64;
  timestampMs @1 :UInt64;
  kind @2 :Text;
  friend @3 :Data;               # 32 bytes, or empty when the event is not about one friend
  status @4 :Text;
  payloadJson @5 :Text;
}

struct HistoryQuery {
  sinceMs @0 :UInt64;            # 0: from the beginning
  afterId @1 :UInt64;            # 0: from the first event
  friend @2 :Data;               # empty: every friend
  limit @3 :UInt32;              # 0: the most a response carries
}

struct AppToNode {
  requestId @0 :UInt64;
  request :union {
    report @1 :Void;                                               # info
    history @2 :HistoryQuery;                                      # info
    friendCard @3 :Text;                                           # info: the card's name
    paymentStatus @4 :Data;                                        # info or buy
    addFriend :group { card @5 :Text; name @6 :Text; }             # config (empty name: the card's)
    removeFriend :group { friend @7 :Data; force @8 :Bool; }       # config
    setFriendName :group { friend @9 :Data; name @10 :Text; }      # config
    enableFriend @11 :Data;                                        # config
    disableFriend @12 :Data;                                       # config
    setLimit :group { friend @13 :Data; currency @14 :Text;
                      remoteMaxDebt @15 :Common.UInt128; }         # config
    setRate :group { friend @16 :Data; currency @17 :Text;
                     rate @18 :FeeRate; }                          # config
    openCurrency :group { friend @19 :Data; currency @20 :Text; }  # config
    closeCurrency :group { friend @21 :Data; currency @22 :Text; } # config
    acceptResetTerms :group { friend @23 :Data; resetToken @24 :Data; }  # config
    addRelay @25 :Common.RelayAddress;                             # config
    removeRelay @26 :Data;                                         # config: the relay's key
    addIndexServer @27 :Common.RelayAddress;                       # config
    removeIndexServer @28 :Data;                                   # config: the server's key
    createInvoice :group { currency @29 :Text; amount @30 :Common.UInt128;
                           validForMs @31 :UInt64; description @32 :Text; }  # sell
    cancelInvoice @33 :Data;                                       # sell: the invoice id
    quote :group { invoice @34 :Text; maxRoutes @35 :UInt32; }     # buy
    pay :group { invoice @36 :Text; maxFees @37 :Common.UInt128; } # buy
    routes :group { destination @38 :Data; currency @39 :Text;
                    amount @40 :Common.UInt128; maxRoutes @41 :UInt32; }  # routes
  }
}

enum AppErrorKind {
  permissionDenied @0;   # the app's registration lacks the permission the request needs
  invalidInput @1;       # malformed or out-of-range input: fix the request
  refused @2;            # the node refused (unknown friend, over a limit, not consistent…)
  routing @3;            # no index server or no route
  notRunning @4;         # the node is stopping
  storage @5;            # the node could not store the change
  internal @6;
  notRegistered @7;      # (in `refused`) the app's key is not registered with the node
}

struct AppError {
  kind @0 :AppErrorKind;
  message @1 :Text;      # for people: what went wrong and what to do
}

struct NodeToApp {
  union {
    welcome @0 :Welcome;
    refused @1 :AppError;        # the connection is refused; the node closes it
    report @2 :NodeReport;       # the full report (on connect, then whenever it changes)
    event @3 :NodeEvent;
    response :group {
      requestId @4 :UInt64;
      result :union {
        ok @5 :Void;
        error @6 :AppError;
        report @7 :NodeReport;
        history @8 :List(NodeEvent);
        friendCard @9 :Text;     # an `offst:F1…` URI
        invoice @10 :Text;       # an `offst:I1…` URI
        quote @11 :Quote;
        payment @12 :PaymentStatus;
        routes @13 :List(Route);
      }
    }
  }
}
