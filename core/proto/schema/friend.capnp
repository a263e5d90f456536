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
    # Multi-hop payment operations (request, response, cancel, collect) are added here later.
  }
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
