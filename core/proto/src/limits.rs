//! Protocol limits as named constants. Every size or count a peer controls is bounded here;
//! decoders check these before allocating. The values are part of the wire spec
//! (docs/PROTOCOL.md, "Limits").

/// The protocol version this build speaks. Raised on any incompatible wire change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The oldest protocol version this build still speaks.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// Largest frame payload in bytes. Checked on the 4-byte length prefix before any buffer is
/// allocated. 1 MiB holds the largest legitimate message (a full batch of payment operations
/// with maximal routes, about 80 KiB) many times over while capping what a peer can make us buffer.
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Length of the frame length prefix (u32, big-endian).
pub const FRAME_HEADER_LEN: usize = 4;

/// Largest Cap'n Proto nesting depth accepted. Our schemas nest at most 6 levels deep.
pub const CAPNP_NESTING_LIMIT: i32 = 16;

/// Cap'n Proto traversal limit as a multiple of the message size in words. A well-formed
/// message is traversed about once; 4× allows for the few fields read twice while stopping
/// amplification attacks (pointers that alias the same data over and over).
pub const CAPNP_TRAVERSAL_FACTOR: usize = 4;

/// Longest currency name in bytes (as the original: 16).
pub const MAX_CURRENCY_LEN: usize = 16;

/// Longest network address ("host:port") in bytes: a DNS name is at most 253 bytes.
pub const MAX_NET_ADDRESS_LEN: usize = 255;

/// Most relays a node advertises in its friend card and token channel.
pub const MAX_RELAYS: usize = 8;

/// Most operations batched into one move token.
pub const MAX_OPERATIONS_IN_BATCH: usize = 64;

/// Longest payment route in nodes, buyer and seller included.
pub const MAX_ROUTE_LEN: usize = 32;

/// Most currencies per friendship.
pub const MAX_CURRENCIES_PER_FRIEND: usize = 16;

/// Longest free-text field (friend name, invoice description) in bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// Seconds a secure-channel handshake may take from TCP connect to the last handshake message.
/// A slow or silent peer (slow-loris) is dropped after this (docs/PROTOCOL.md, "Transport").
pub const HANDSHAKE_TIMEOUT_SECS: u64 = 10;

/// Seconds a sender may stay silent before it sends a keepalive record. A third of
/// [`IDLE_TIMEOUT_SECS`], so two keepalives may be lost before the peer gives up.
pub const KEEPALIVE_INTERVAL_SECS: u64 = 15;

/// Seconds without any record from the peer after which a connection is considered dead.
pub const IDLE_TIMEOUT_SECS: u64 = 45;

/// Seconds between key updates requested by the transport (on top of
/// `offst_crypto::record::REKEY_AFTER_RECORDS`): one hour, as the original.
pub const REKEY_INTERVAL_SECS: u64 = 3600;

/// Most (friend, currency) entries in one index capacity report. A report is a full snapshot of
/// a node's channels (docs/PROTOCOL.md §11); 2,048 entries encode to about 250 KiB, well
/// inside a frame, and exceed any friend list a personal node keeps.
pub const MAX_INDEX_REPORT_ENTRIES: usize = 2048;

/// Most reports in one index federation message (`forwardReports`). Small batches keep one
/// message well under a frame and let a receiver apply backpressure between batches.
pub const MAX_INDEX_FORWARD_BATCH: usize = 64;

/// Most nodes a route query may exclude.
pub const MAX_INDEX_EXCLUDED_NODES: usize = 16;

/// Most directed arcs a route query may exclude (e.g. the arc closing a rebalancing cycle).
pub const MAX_INDEX_EXCLUDED_ARCS: usize = 16;

/// Most routes in one multi-route answer. Every route is a separate payment request that each
/// mediator on it charges for, so more routes cost the buyer more fees; 8 is the split Offst's
/// multi-route payments are designed for.
pub const MAX_INDEX_ROUTES: usize = 8;

/// Longest lifetime of a capacity report in seconds (`expiresAt - issuedAt`). A node refreshes its
/// report well before it expires; an index forgets a node that stops reporting within this time.
pub const MAX_INDEX_REPORT_TTL_SECS: u64 = 600;

/// Longest name in a friend card, in bytes (cards must stay small enough for one QR code).
pub const MAX_CARD_NAME_LEN: usize = 64;

/// Longest `offst:` URI accepted, in characters (a friend card with the most relays and the
/// longest addresses stays below it; an invoice with a full description too).
pub const MAX_URI_LEN: usize = 4096;

/// Longest invoice description in bytes (an invoice must fit one QR code comfortably).
pub const MAX_INVOICE_DESCRIPTION_LEN: usize = 140;

/// Largest app-protocol message in bytes (`offst_proto::app`). One message is the payload of
/// one secure-channel record, whose payload is at most `MAX_FRAME_LEN - 17`
/// (`offst_crypto::record::MAX_RECORD_PAYLOAD`); 64 bytes of headroom keep every app message
/// inside a record with room to spare, and the value stays a whole number of 8-byte words.
/// Encoders do not truncate: whoever builds a report or a history response checks
/// `encode().len()` against this before sending.
pub const MAX_APP_MESSAGE_LEN: usize = MAX_FRAME_LEN - 64;

/// Most friends in one app report. The report is a full snapshot; 4,096 is far beyond the
/// friend list of a personal node and bounds what a decoder allocates. A report that large
/// does not fit [`MAX_APP_MESSAGE_LEN`] with several currencies per friend: the node checks the
/// encoded size.
pub const MAX_APP_REPORT_FRIENDS: usize = 4096;

/// Most per-currency accounts (fees earned and paid, received, sent) in one app report.
pub const MAX_APP_ACCOUNTS: usize = 256;

/// Most history events in one app response; an app pages through longer histories with
/// `afterId`. The node also keeps a response under [`MAX_APP_MESSAGE_LEN`], so it may send fewer.
pub const MAX_APP_HISTORY: usize = 1000;

/// Longest JSON payload of one history event in bytes (16 KiB): payloads describe one change
/// (a payment, a friend, a limit) and are far smaller; the bound caps what a decoder accepts.
pub const MAX_APP_EVENT_PAYLOAD_LEN: usize = 16 * 1024;

/// Longest history event kind (`payment-succeeded`, …) and event status, in bytes.
pub const MAX_APP_EVENT_KIND_LEN: usize = 64;

/// Longest error message in an app response, in bytes: a sentence or two for people, with the
/// offending value quoted.
pub const MAX_APP_ERROR_LEN: usize = 1024;
