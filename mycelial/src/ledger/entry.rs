//! What the ledger applies ([`Entry`]) and what it records ([`Record`]): the
//! daemon stores each record in the StateStore and rebuilds the ledger by
//! replaying them in order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::canonical::{Obj, StateHash};
use super::control::{ControlAction, SignedControl};
use super::transfer::SignedTransfer;
use super::RECORD_DOMAIN;

/// One ledger operation, with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// A payment signed by the payer.
    Transfer(SignedTransfer),
    /// A hold, settlement, release or limit, signed by the authority.
    Control(SignedControl),
}

/// What kind of operation an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// [`Entry::Transfer`].
    Transfer,
    /// [`ControlAction::Hold`].
    Hold,
    /// [`ControlAction::Settle`].
    Settle,
    /// [`ControlAction::Release`].
    Release,
    /// [`ControlAction::SetLimit`].
    SetLimit,
}

impl Entry {
    /// Its kind.
    pub fn kind(&self) -> EntryKind {
        match self {
            Entry::Transfer(_) => EntryKind::Transfer,
            Entry::Control(c) => match c.control.action {
                ControlAction::Hold(_) => EntryKind::Hold,
                ControlAction::Settle(_) => EntryKind::Settle,
                ControlAction::Release(_) => EntryKind::Release,
                ControlAction::SetLimit(_) => EntryKind::SetLimit,
            },
        }
    }

    /// The canonical JSON of the entry and its proof, which the state hash
    /// chains: `{"type":"transfer","transfer":{...},"proof":{...}}` or
    /// `{"type":"control","control":{...},"signature":"hex"}`.
    pub fn canonical_json(&self) -> String {
        match self {
            Entry::Transfer(t) => Obj::new()
                .str("type", "transfer")
                .raw("transfer", &t.transfer.canonical_json())
                .raw("proof", &t.proof.canonical_json())
                .end(),
            Entry::Control(c) => Obj::new()
                .str("type", "control")
                .raw("control", &c.control.canonical_json())
                .str("signature", &c.signature.to_hex())
                .end(),
        }
    }
}

/// An applied entry as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When it was applied (expiry was checked against this instant, and is
    /// again on replay).
    pub at: DateTime<Utc>,
    /// The entry.
    pub entry: Entry,
    /// The ledger's state hash once it was applied.
    pub state_hash: StateHash,
}

/// The canonical bytes of a record as chained into the state hash:
/// `univrs-ledger-record-v1\n{"seq":N,"at":"…","entry":{…}}`.
pub fn record_bytes(seq: u64, at: &DateTime<Utc>, entry: &Entry) -> Vec<u8> {
    let json = Obj::new()
        .int("seq", seq)
        .time("at", at)
        .raw("entry", &entry.canonical_json())
        .end();
    let mut out = RECORD_DOMAIN.as_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out
}

/// The next state hash: `SHA-256(previous ‖ record_bytes)`.
pub(crate) fn chain(prev: &StateHash, seq: u64, at: &DateTime<Utc>, entry: &Entry) -> StateHash {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(record_bytes(seq, at, entry));
    StateHash(h.finalize().into())
}
