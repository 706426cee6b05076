//! Entries only the ledger's authority (the control plane, by its node key)
//! may sign: placing a hold when a node accepts an instance, settling or
//! releasing it, and setting an account's credit limit.

use ed25519_dalek::{Signer, SigningKey};
use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Serialize};

use super::canonical::{Obj, SignatureBytes};
use super::transfer::{check_text, verify};
use super::{LedgerError, CONTROL_DOMAIN, PPM};

/// The pledge placed when a provider's node accepts an instance: `amount`
/// milli-units of the workload owner's credit are set aside (they count
/// against the owner's limit) until the hold is settled or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// Unique among open holds, 1–256 bytes (the instance id does well).
    pub id: String,
    /// The workload owner, who will pay.
    pub payer: PublicKey,
    /// The operator of the node that runs the instance, who will be paid.
    pub provider: PublicKey,
    /// Price × promised resources × time, in milli-units, more than zero.
    pub amount: i64,
    /// The same price applied to the node's *measured* capacity: the hold may
    /// not exceed it (MYCELIAL.md §3 Ledger 4).
    pub capacity: i64,
    /// What it pays for (workload and instance), at most 256 bytes.
    pub reference: String,
}

/// Closes a hold, paying for what was delivered.
///
/// With `A` the hold's amount, `d` = `delivered_ppm` and `f` = `fee_ppm`:
/// `paid = ⌊A·d/10⁶⌋` leaves the payer, `fee = ⌊paid·f/10⁶⌋` goes to the
/// commons and `paid − fee` to the provider; `A − paid` is released. Both
/// roundings are floors, so the remainder of the delivered share stays with the
/// payer and the remainder of the fee goes to the provider. The sum is exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settle {
    /// The hold's id.
    pub hold: String,
    /// Share of the promise delivered, in parts per million (0–1,000,000).
    pub delivered_ppm: u32,
    /// Share of the payment that goes to the commons, in parts per million.
    pub fee_ppm: u32,
}

/// Closes a hold without paying anything (the instance never ran).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The hold's id.
    pub hold: String,
}

/// Sets an account's credit limit `L` (computed by the control plane with
/// [`crate::ledger::credit_limit`] from the account's reputation). Lowering a
/// limit below what the account already owes is allowed: the account then
/// cannot take on more debt until it is back within the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLimit {
    /// The account.
    pub account: PublicKey,
    /// Milli-units, zero or more.
    pub limit: i64,
}

/// What a control entry does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ControlAction {
    /// Place a hold.
    Hold(Hold),
    /// Settle a hold.
    Settle(Settle),
    /// Release a hold.
    Release(Release),
    /// Set a credit limit.
    SetLimit(SetLimit),
}

impl ControlAction {
    fn canonical_json(&self) -> String {
        match self {
            ControlAction::Hold(h) => Obj::new()
                .str("action", "hold")
                .str("id", &h.id)
                .str("payer", &h.payer.to_hex())
                .str("provider", &h.provider.to_hex())
                .int("amount", h.amount)
                .int("capacity", h.capacity)
                .str("reference", &h.reference)
                .end(),
            ControlAction::Settle(s) => Obj::new()
                .str("action", "settle")
                .str("hold", &s.hold)
                .int("delivered_ppm", s.delivered_ppm)
                .int("fee_ppm", s.fee_ppm)
                .end(),
            ControlAction::Release(r) => Obj::new()
                .str("action", "release")
                .str("hold", &r.hold)
                .end(),
            ControlAction::SetLimit(l) => Obj::new()
                .str("action", "set_limit")
                .str("account", &l.account.to_hex())
                .int("limit", l.limit)
                .end(),
        }
    }

    /// Checks what needs no ledger state.
    fn check(&self) -> Result<(), LedgerError> {
        match self {
            ControlAction::Hold(h) => {
                check_text("hold id", &h.id, 1)?;
                check_text("reference", &h.reference, 0)?;
                if h.amount <= 0 {
                    return Err(LedgerError::ZeroOrNegativeAmount { amount: h.amount });
                }
                if h.payer == h.provider {
                    return Err(LedgerError::SelfTransfer);
                }
                if h.amount > h.capacity {
                    return Err(LedgerError::HoldExceedsCapacity {
                        amount: h.amount,
                        capacity: h.capacity,
                    });
                }
                Ok(())
            }
            ControlAction::Settle(s) => {
                check_text("hold id", &s.hold, 1)?;
                for (field, ppm) in [("delivered_ppm", s.delivered_ppm), ("fee_ppm", s.fee_ppm)] {
                    if i64::from(ppm) > PPM {
                        return Err(LedgerError::FractionOutOfRange { field, ppm });
                    }
                }
                Ok(())
            }
            ControlAction::Release(r) => check_text("hold id", &r.hold, 1),
            ControlAction::SetLimit(l) => {
                if l.limit < 0 {
                    return Err(LedgerError::NegativeLimit { limit: l.limit });
                }
                Ok(())
            }
        }
    }
}

/// A control entry, before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// The ledger (cluster) it is meant for.
    pub ledger: String,
    /// Strictly above the authority's last control nonce.
    pub nonce: u64,
    /// What it does.
    pub action: ControlAction,
}

impl Control {
    /// The canonical JSON: `{"ledger","nonce","action":{...}}`, each action's
    /// fields in declaration order after its `"action"` tag.
    pub fn canonical_json(&self) -> String {
        Obj::new()
            .str("ledger", &self.ledger)
            .int("nonce", self.nonce)
            .raw("action", &self.action.canonical_json())
            .end()
    }

    /// What the authority signs: `univrs-ledger-control-v1\n` + canonical JSON.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = CONTROL_DOMAIN.as_bytes().to_vec();
        out.extend_from_slice(self.canonical_json().as_bytes());
        out
    }

    /// Signs with the authority's key.
    pub fn sign(self, authority_key: &SigningKey) -> SignedControl {
        let signature = SignatureBytes(authority_key.sign(&self.signing_bytes()).to_bytes());
        SignedControl {
            control: self,
            signature,
        }
    }
}

/// A control entry signed by the ledger's authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedControl {
    /// The entry.
    pub control: Control,
    /// The authority's signature over [`Control::signing_bytes`].
    pub signature: SignatureBytes,
}

impl SignedControl {
    /// Checks the ledger, the signature and the action's own fields.
    pub(crate) fn check(&self, ledger_id: &str, authority: &PublicKey) -> Result<(), LedgerError> {
        if self.control.ledger != ledger_id {
            return Err(LedgerError::WrongLedger {
                expected: ledger_id.to_owned(),
                got: self.control.ledger.clone(),
            });
        }
        verify(authority, &self.control.signing_bytes(), &self.signature)?;
        self.control.action.check()
    }
}
