//! `stctrl`'s exit codes: what a script can rely on.

/// Done.
pub const OK: u8 = 0;
/// Something else went wrong (an I/O error writing an output file, an internal error).
pub const FAILURE: u8 = 1;
/// Bad usage or bad input: a malformed card, invoice, receipt, ticket or identity file, an
/// unknown friend name, an amount that is not a number. Nothing was sent to the node.
pub const BAD_INPUT: u8 = 2;
/// The node could not be reached: it is not running, or the ticket is wrong.
pub const NODE_UNREACHABLE: u8 = 3;
/// The node refused the app: its key is not registered, or it lacks the permission the
/// command needs.
pub const NOT_PERMITTED: u8 = 4;
/// The node refused the request (over a limit, no route, unknown friend, expired invoice…);
/// nothing changed.
pub const REFUSED: u8 = 5;
/// The payment did not succeed: it was cancelled, or it had not ended when `stctrl` stopped
/// waiting.
pub const PAYMENT_FAILED: u8 = 6;
/// The receipt does not verify (tampered with, or not for the given invoice).
pub const RECEIPT_INVALID: u8 = 7;

/// The table printed by `stctrl --help`.
pub const HELP: &str = "\
Exit codes:
  0  done
  1  other failure (I/O, internal)
  2  bad usage or input (malformed card/invoice/receipt/ticket/identity, unknown friend name)
  3  the node is not reachable (not running, or a wrong ticket)
  4  not permitted (the app is not registered, or lacks the permission)
  5  the node refused the request (nothing changed)
  6  the payment did not succeed (cancelled, or not done when waiting stopped)
  7  the receipt does not verify";
