@0xb5f82ea7842670eb;
# The friend channel: the token channel between two friends (docs/PROTOCOL.md, "Friend channel").
# One FriendMessage per frame, inside the secure channel between the two nodes.
# Fixed-size byte strings are `Data` whose length is checked on decode.

using Common = import "common.capnp";

struct FriendMessage {
  union {
    moveToken @0 :MoveTokenMessage;
    # A signed move token (new, or retransmitted).
    tokenWanted @1 :Void;
    # "I have something to send; pass me the token." Sent by the side without the token when it
    # has no signed token of its own to retransmit (at genesis).
    resetTerms @2 :ResetTerms;
    # The channel is inconsistent; these are the sender's terms to restart it.
  }
}

struct MoveTokenMessage {
  token @0 :MoveToken;
  tokenWanted @1 :Bool;        # the sender has more to send and asks for the token back
}

struct MoveToken {
  oldToken @0 :Data;               # 64 bytes: newToken of the previous token, or the genesis/reset link
  inconsistencyCounter @1 :UInt64; # number of resets of this channel (epoch)
  moveTokenCounter @2 :UInt64;     # position in the chain within the epoch (genesis/reset = 0)
  operations @3 :List(FriendOperation);  # at most MAX_OPERATIONS_IN_BATCH
  infoHash @4 :Data;               # 32 bytes: hash of the balance sheet after the operations
  newToken @5 :Data;               # 64 bytes: Ed25519 signature of the sender over the signing bytes
  randNonce @6 :Data;              # 16 random bytes: a node that lost its data never re-creates an old token
}

struct FriendOperation {
  union {
    addCurrency @0 :Text;              # add a currency to the shared sheet (balance 0, limits 0, closed)
    removeCurrency @1 :Text;           # remove a currency whose balance and pending debts are 0
    setRemoteMaxDebt @2 :SetRemoteMaxDebt;
    setCurrencyOpen @3 :SetCurrencyOpen;
    transfer @4 :Transfer;
    requestSendFunds @5 :RequestSendFunds;
    cancelSendFunds @6 :CancelSendFunds;
    collectSendFunds @7 :CollectSendFunds;
    # Multi-hop payments (docs/drafts/payments-protocol.md).
  }
}

struct RequestSendFunds {
  # The sender (upstream) asks the receiver (downstream) to carry a payment toward the seller,
  # freezing destPayment + leftFees as the sender's pending debt until the receiver cancels or
  # collects. Only the receiver can release it.
  requestId @0 :Data;             # 16 bytes, chosen by the buyer, unique per route
  currency @1 :Text;
  route @2 :List(Data);           # 32-byte keys from buyer to seller, 2 ..= MAX_ROUTE_LEN, no repeats
  destPayment @3 :Common.UInt128; # what the seller receives over this route, > 0
  totalDestPayment @4 :Common.UInt128; # the invoice amount (all routes), >= destPayment
  invoiceId @5 :Data;             # 32 bytes
  hashedLock @6 :Data;            # 32 bytes: the invoice's hash lock
  leftFees @7 :Common.UInt128;    # the most the remaining mediators (receiver included) may charge
  expiresAt @8 :UInt64;           # Unix ms; lower at every hop
}

struct CancelSendFunds {
  # The sender (downstream) releases a request it received: nothing is paid.
  currency @0 :Text;
  requestId @1 :Data;             # 16 bytes
}

struct CollectSendFunds {
  # The sender (downstream) reveals the plain lock of a request it received and collects
  # `amount` (at most what was frozen): the receiver now owes it `amount`.
  currency @0 :Text;
  requestId @1 :Data;             # 16 bytes
  plainLock @2 :Data;             # 32 bytes, hash_lock(plainLock) = the request's hashedLock
  amount @3 :Common.UInt128;
}

struct SetRemoteMaxDebt {
  # The sender lets the receiver owe it at most maxDebt in this currency.
  currency @0 :Text;
  maxDebt @1 :Common.UInt128;
}

struct SetCurrencyOpen {
  # Whether the sender accepts new incoming payments in this currency.
  currency @0 :Text;
  open @1 :Bool;
}

struct Transfer {
  # The sender pays the receiver directly (a payment without mediators).
  currency @0 :Text;
  amount @1 :Common.UInt128;      # > 0
  transferId @2 :Data;            # 16 bytes, chosen by the sender
}

struct ResetTerms {
  resetToken @0 :Data;               # 64 random bytes; the accepting reset token chains on it
  inconsistencyCounter @1 :UInt64;   # the epoch the reset starts
  currencies @2 :List(CurrencyBalance);  # strictly sorted by name, at most MAX_CURRENCIES_PER_FRIEND
}

struct CurrencyBalance {
  # One currency of a balance sheet as seen by the sender of the message.
  currency @0 :Text;
  balance @1 :Common.Int128;         # positive: the receiver owes the sender
  localMaxDebt @2 :Common.UInt128;   # the most the sender may owe (set by the receiver)
  remoteMaxDebt @3 :Common.UInt128;  # the most the receiver may owe (set by the sender)
  localOpen @4 :Bool;                # the sender accepts incoming payments
  remoteOpen @5 :Bool;               # the receiver accepts incoming payments
}
