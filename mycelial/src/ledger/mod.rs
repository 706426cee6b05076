//! The mutual-credit ledger (MYCELIAL.md §3 "Ledger", SPEC §17): one
//! multilateral ledger per cluster, in integer milli-units, as a
//! deterministic state machine over an ordered log of signed entries.
//!
//! - [`account`]: [`Account`], a key or the `commons`.
//! - [`transfer`]: [`Transfer`] and its [`Proof`], the payer's Ed25519
//!   signature or its signed REST request ([`SignedTransfer::from_request`]).
//! - [`control`]: holds, settlements, releases and limits, signed by the
//!   ledger's authority (the control plane's node key).
//! - [`entry`]: [`Entry`] and the stored [`Record`], with canonical bytes.
//! - [`limits`]: [`credit_limit`] and the [`CreditLimits`] in force.
//! - [`apply`]: [`Ledger::prepare`], [`Ledger::commit`], [`Ledger::apply`].
//! - [`state`]: [`Ledger`], its queries and [`Ledger::replay`].
//! - [`history`]: an account's statement.
//! - [`error`]: [`LedgerError`] and [`ReplayError`].
//!
//! Invariants, checked on every entry: the balances sum to zero (fees go to
//! the commons, nothing is burned or minted); an entry that debits an account
//! (a transfer, a hold) never leaves its balance minus holds below minus its
//! credit limit, which is zero for unattested keys; transfers carry the
//! payer's signature and strictly increasing nonces, control entries the
//! authority's; a refused entry changes nothing, not even the state hash;
//! replaying the records gives the same state hash.
//!
//! The daemon applies an entry with [`Ledger::prepare`], stores
//! [`Prepared::record`] as the StateStore record [`RECORD_KIND`] /
//! [`record_key`]`(seq)`, then [`Ledger::commit`]s it; at start it lists the
//! records (ordered by key) and calls [`Ledger::replay`]. No clock is read:
//! the caller passes the time, and the record keeps it for replay.

pub mod account;
pub mod apply;
mod canonical;
pub mod control;
pub mod entry;
pub mod error;
pub mod history;
pub mod limits;
pub mod state;
pub mod transfer;

#[cfg(test)]
mod tests;

pub use account::{Account, COMMONS};
pub use apply::{Applied, Posting, Prepared};
pub use canonical::{SignatureBytes, StateHash};
pub use control::{Control, ControlAction, Hold, Release, SetLimit, Settle, SignedControl};
pub use entry::{record_bytes, Entry, EntryKind, Record};
pub use error::{ErrorKind, LedgerError, ReplayError};
pub use history::HistoryItem;
pub use limits::{credit_limit, CreditLimits, LimitParams};
pub use state::{AccountSummary, Ledger};
pub use transfer::{Proof, SignedRequest, SignedTransfer, Transfer, TransferRequest};

/// Prefix of what a payer signs for a [`Proof::Ed25519`] transfer.
pub const TRANSFER_DOMAIN: &str = "univrs-credit-transfer-v1\n";
/// Prefix of what the authority signs for a control entry.
pub const CONTROL_DOMAIN: &str = "univrs-ledger-control-v1\n";
/// Prefix of a record's bytes in the state-hash chain.
pub const RECORD_DOMAIN: &str = "univrs-ledger-record-v1\n";
/// Prefix of the bytes hashed into an empty ledger's state hash (followed by
/// the ledger id, `\n` and the authority key in hex).
pub const GENESIS_DOMAIN: &str = "univrs-ledger-genesis-v1\n";
/// The only request target a [`Proof::Request`] may have.
pub const TRANSFER_PATH: &str = "/api/v1/credits/transfer";
/// How long after its signed timestamp a transfer requested over REST may be
/// applied (10 minutes: beyond any sane clock skew; the nonce, not the
/// expiry, is what stops replays).
pub const REQUEST_PROOF_TTL_SECONDS: i64 = 600;
/// The longest reference or hold id, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Parts per million: a whole.
pub const PPM: i64 = 1_000_000;
/// The StateStore record kind of the ledger's records.
pub const RECORD_KIND: &str = "credit_ledger";

/// The StateStore key of record `seq`: zero-padded to 20 digits, so that the
/// store's byte order is the log's order.
pub fn record_key(seq: u64) -> String {
    format!("{seq:020}")
}
