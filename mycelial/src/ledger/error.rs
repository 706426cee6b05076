//! Why the ledger refused an entry, and why a log failed to replay.

use chrono::{DateTime, Utc};
use orchestrator_shared_types::PublicKey;

/// Why an entry was refused. A refused entry changes nothing, not even the
/// state hash or the payer's nonce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The entry names another ledger (cluster).
    #[error("entry for ledger {got:?} refused by ledger {expected:?}")]
    WrongLedger {
        /// This ledger's id.
        expected: String,
        /// The ledger the entry names.
        got: String,
    },
    /// The signature does not verify under the key that must have signed
    /// (the payer for a transfer, the ledger authority for a control entry),
    /// or that key is not a usable Ed25519 key.
    #[error("signature does not verify under {signer}")]
    BadSignature {
        /// The key that had to sign.
        signer: PublicKey,
    },
    /// A request proof is not a signed `POST` of this very transfer.
    #[error("request proof does not match the transfer: {field} differs")]
    ProofMismatch {
        /// What differs (`method`, `path`, `to`, `amount`, `nonce`, ...).
        field: &'static str,
    },
    /// A transfer request body or its timestamp does not parse.
    #[error("malformed transfer request: {reason}")]
    MalformedRequest {
        /// What was wrong, naming the field.
        reason: String,
    },
    /// The payer's nonce is not above the last one it used.
    #[error("nonce {got} is not above the last one used, {last}")]
    NonceNotIncreasing {
        /// The payer's last accepted nonce (0 when none).
        last: u64,
        /// The nonce of the refused transfer.
        got: u64,
    },
    /// The authority's control nonce is not above the last one it used.
    #[error("control nonce {got} is not above the last one used, {last}")]
    ControlNonceNotIncreasing {
        /// The last accepted control nonce (0 when none).
        last: u64,
        /// The nonce of the refused control entry.
        got: u64,
    },
    /// Payer and payee (or workload owner and provider) are the same key.
    #[error("payer and payee are the same account")]
    SelfTransfer,
    /// An amount is zero or negative.
    #[error("amount {amount} milli-units is not positive")]
    ZeroOrNegativeAmount {
        /// The amount given.
        amount: i64,
    },
    /// The transfer expired before it was applied.
    #[error("transfer expired at {expires_at}, applied at {now}")]
    Expired {
        /// When it expired.
        expires_at: DateTime<Utc>,
        /// When it was applied.
        now: DateTime<Utc>,
    },
    /// The debit would take the account's balance minus holds below minus
    /// its credit limit.
    #[error("credit limit exceeded for {account}: balance minus holds would be {would_be}, limit {limit} milli-units")]
    CreditLimitExceeded {
        /// The account that would pay.
        account: PublicKey,
        /// Its credit limit, in milli-units.
        limit: i64,
        /// Its balance minus holds had the entry been applied.
        would_be: i64,
    },
    /// No open hold has this id.
    #[error("no open hold {id:?}")]
    UnknownHold {
        /// The hold id.
        id: String,
    },
    /// An open hold already has this id.
    #[error("hold {id:?} is already open")]
    DuplicateHold {
        /// The hold id.
        id: String,
    },
    /// A hold is larger than what the provider's measured capacity can deliver.
    #[error("hold of {amount} milli-units exceeds the measured capacity, worth {capacity}")]
    HoldExceedsCapacity {
        /// The pledge.
        amount: i64,
        /// The worth of the measured capacity for the promised time.
        capacity: i64,
    },
    /// A parts-per-million fraction is above 1,000,000.
    #[error("{field} of {ppm} ppm is above 1000000")]
    FractionOutOfRange {
        /// Which fraction (`delivered_ppm` or `fee_ppm`).
        field: &'static str,
        /// The value given.
        ppm: u32,
    },
    /// A credit limit is negative.
    #[error("credit limit {limit} milli-units is negative")]
    NegativeLimit {
        /// The limit given.
        limit: i64,
    },
    /// A text field is empty where it may not be, or too long.
    #[error("{field} of {len} bytes refused: it must be {min} to {max} bytes long")]
    BadText {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The fewest bytes allowed.
        min: usize,
        /// The most bytes allowed.
        max: usize,
    },
    /// A balance or a sum of holds would leave the range of `i64`.
    #[error("applying the entry would overflow the balance of {account}")]
    Overflow {
        /// The account whose figure would overflow (`commons` or a key in hex).
        account: String,
    },
    /// A prepared entry was committed after the ledger had moved on.
    #[error("entry prepared at sequence {prepared_at} but the ledger is at {now_at}")]
    Stale {
        /// The sequence number the entry was prepared after.
        prepared_at: u64,
        /// The ledger's sequence number now.
        now_at: u64,
    },
}

/// The broad class of a refusal, for a front-end to choose its answer
/// (HTTP 400, 401/403, 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Malformed or self-contradictory input (HTTP 400).
    Invalid,
    /// Not signed by whom it must be (HTTP 403).
    Unauthorized,
    /// Well-formed and signed, but refused by the ledger's current state:
    /// over the limit, replayed nonce, unknown or duplicate hold (HTTP 409).
    Conflict,
}

impl LedgerError {
    /// A stable snake_case code for `{error: {code, message}}`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongLedger { .. } => "wrong_ledger",
            Self::BadSignature { .. } => "bad_signature",
            Self::ProofMismatch { .. } => "proof_mismatch",
            Self::MalformedRequest { .. } => "malformed_request",
            Self::NonceNotIncreasing { .. } => "nonce_not_increasing",
            Self::ControlNonceNotIncreasing { .. } => "control_nonce_not_increasing",
            Self::SelfTransfer => "self_transfer",
            Self::ZeroOrNegativeAmount { .. } => "zero_or_negative_amount",
            Self::Expired { .. } => "expired",
            Self::CreditLimitExceeded { .. } => "credit_limit_exceeded",
            Self::UnknownHold { .. } => "unknown_hold",
            Self::DuplicateHold { .. } => "duplicate_hold",
            Self::HoldExceedsCapacity { .. } => "hold_exceeds_capacity",
            Self::FractionOutOfRange { .. } => "fraction_out_of_range",
            Self::NegativeLimit { .. } => "negative_limit",
            Self::BadText { .. } => "bad_text",
            Self::Overflow { .. } => "overflow",
            Self::Stale { .. } => "stale",
        }
    }

    /// The class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BadSignature { .. } | Self::ProofMismatch { .. } => ErrorKind::Unauthorized,
            Self::NonceNotIncreasing { .. }
            | Self::ControlNonceNotIncreasing { .. }
            | Self::CreditLimitExceeded { .. }
            | Self::UnknownHold { .. }
            | Self::DuplicateHold { .. }
            | Self::Overflow { .. }
            | Self::Stale { .. } => ErrorKind::Conflict,
            Self::WrongLedger { .. }
            | Self::MalformedRequest { .. }
            | Self::SelfTransfer
            | Self::ZeroOrNegativeAmount { .. }
            | Self::Expired { .. }
            | Self::HoldExceedsCapacity { .. }
            | Self::FractionOutOfRange { .. }
            | Self::NegativeLimit { .. }
            | Self::BadText { .. } => ErrorKind::Invalid,
        }
    }
}

/// Why a stored log did not replay: it was reordered, truncated in the
/// middle, tampered with, or written by a different ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// A record's sequence number is not the next one.
    #[error("record {got} found where record {expected} was expected")]
    OutOfOrder {
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        got: u64,
    },
    /// A recorded entry is refused on replay.
    #[error("record {seq} is refused on replay: {source}")]
    Refused {
        /// Its sequence number.
        seq: u64,
        /// Why.
        #[source]
        source: LedgerError,
    },
    /// Replaying a record gives another state hash than the one recorded.
    #[error("record {seq} replays to state hash {computed}, but {recorded} was recorded")]
    HashMismatch {
        /// Its sequence number.
        seq: u64,
        /// The hash recorded with it (hex).
        recorded: String,
        /// The hash replay computed (hex).
        computed: String,
    },
}
